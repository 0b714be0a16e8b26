//! The website endpoint's HTML error pages, in the format of AWS's website endpoint: a title with the status,
//! then a list of Code, Message, the resource (Key, BucketName, Method...), RequestId and HostId; and a second
//! list when the bucket's own error document could not be served.

use bytes::Bytes;
use http::HeaderValue;
use http_body_util::{BodyExt, Full};

use crate::error::{ApiError, xml_escape};
use crate::handlers::Resp;

/// What a page says about one error: the error and the resource lines that go with it.
#[derive(Debug)]
pub struct PageError<'a> {
    /// The error (its code, message and status).
    pub error: &'a ApiError,
    /// Extra lines, such as `("Key", "index.html")` or `("BucketName", "b")`.
    pub details: Vec<(&'static str, String)>,
}

fn status_line(e: &ApiError) -> String {
    let s = e.http_status();
    format!("{} {}", s.as_u16(), s.canonical_reason().unwrap_or(""))
}

fn list(out: &mut String, lines: &[(&str, &str)]) {
    out.push_str("<ul>\n");
    for (name, value) in lines {
        out.push_str(&format!("<li>{name}: {}</li>\n", xml_escape(value)));
    }
    out.push_str("</ul>\n");
}

/// The HTML page for `main`, with a section for `error_document` when the custom error document failed.
pub fn render(
    main: &PageError<'_>,
    error_document: Option<&PageError<'_>>,
    request_id: &str,
) -> String {
    let title = status_line(main.error);
    let mut out =
        format!("<html>\n<head><title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n");
    let (code, message) = (main.error.aws_code(), main.error.message());
    let host_id = crate::server::host_id(request_id);
    let mut lines: Vec<(&str, &str)> = vec![("Code", code), ("Message", &message)];
    lines.extend(main.details.iter().map(|(n, v)| (*n, v.as_str())));
    lines.push(("RequestId", request_id));
    lines.push(("HostId", &host_id));
    list(&mut out, &lines);
    if let Some(doc) = error_document {
        out.push_str(
            "<h3>An Error Occurred While Attempting to Retrieve a Custom Error Document</h3>\n",
        );
        let message = doc.error.message();
        let mut lines: Vec<(&str, &str)> =
            vec![("Code", doc.error.aws_code()), ("Message", &message)];
        lines.extend(doc.details.iter().map(|(n, v)| (*n, v.as_str())));
        list(&mut out, &lines);
    }
    out.push_str("<hr/>\n</body>\n</html>\n");
    out
}

/// The page as a response with the main error's status (no body for HEAD).
pub fn response(
    main: &PageError<'_>,
    error_document: Option<&PageError<'_>>,
    request_id: &str,
    head: bool,
) -> Resp {
    let html = render(main, error_document, request_id);
    let len = html.len();
    let body = if head {
        Bytes::new()
    } else {
        Bytes::from(html)
    };
    let mut r = Resp::new(Full::new(body).map_err(|e| match e {}).boxed_unsync());
    *r.status_mut() = main.error.http_status();
    let headers = r.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(len));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_page_lists_code_message_key_and_ids() {
        let e = ApiError::NoSuchKey;
        let page = render(
            &PageError {
                error: &e,
                details: vec![("Key", "a<b>.html".into())],
            },
            None,
            "ABC",
        );
        assert!(page.starts_with("<html>\n<head><title>404 Not Found</title></head>"));
        assert!(page.contains("<li>Code: NoSuchKey</li>"));
        assert!(page.contains("<li>Message: The specified key does not exist.</li>"));
        assert!(page.contains("<li>Key: a&lt;b&gt;.html</li>"));
        assert!(page.contains("<li>RequestId: ABC</li>\n<li>HostId: ABCABC</li>"));
        assert!(!page.contains("Custom Error Document"));
    }

    #[test]
    fn failed_error_document_gets_its_own_section() {
        let (main, doc) = (ApiError::AccessDenied, ApiError::NoSuchKey);
        let page = render(
            &PageError {
                error: &main,
                details: vec![],
            },
            Some(&PageError {
                error: &doc,
                details: vec![("Key", "error.html".into())],
            }),
            "ID",
        );
        assert!(page.contains("<h1>403 Forbidden</h1>"));
        assert!(page.contains(
            "<h3>An Error Occurred While Attempting to Retrieve a Custom Error Document</h3>\n<ul>\n<li>Code: NoSuchKey</li>"
        ));
        assert!(page.contains("<li>Key: error.html</li>"));
    }
}
