//! Static website hosting: Put/Get/DeleteBucketWebsite with the SDK, and the website endpoint driven with a
//! plain HTTP client (Host header choosing the bucket, redirects not followed) for index documents, error
//! documents, routing rules, redirects, HTML error pages, HEAD and Range.

use aws_sdk_s3::Client;
use aws_sdk_s3::types::{
    Condition, ErrorDocument, IndexDocument, Protocol, Redirect, RedirectAllRequestsTo,
    RoutingRule, WebsiteConfiguration,
};

use crate::harness::{Server, put, status_and_code};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("http client")
}

fn index(suffix: &str) -> IndexDocument {
    IndexDocument::builder().suffix(suffix).build().unwrap()
}

fn site(index_suffix: &str, error_key: Option<&str>) -> WebsiteConfiguration {
    let mut b = WebsiteConfiguration::builder().index_document(index(index_suffix));
    if let Some(k) = error_key {
        b = b.error_document(ErrorDocument::builder().key(k).build().unwrap());
    }
    b.build()
}

async fn set_website(s3: &Client, bucket: &str, cfg: WebsiteConfiguration) {
    s3.put_bucket_website()
        .bucket(bucket)
        .website_configuration(cfg)
        .send()
        .await
        .unwrap_or_else(|e| panic!("put website on {bucket}: {e:?}"));
}

/// A response as the test needs it.
struct Page {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Page {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// `method` on the website endpoint for `path`, with `host` as the Host header and extra headers.
async fn visit(
    server: &Server,
    method: reqwest::Method,
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> Page {
    let mut req = http()
        .request(method, format!("{}{path}", server.website))
        .header("host", host);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let resp = req.send().await.expect("website request");
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.text().await.expect("body");
    Page {
        status,
        headers,
        body,
    }
}

async fn get_page(server: &Server, host: &str, path: &str) -> Page {
    visit(server, reqwest::Method::GET, host, path, &[]).await
}

#[tokio::test]
async fn website_configuration_round_trips_and_is_deleted() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("site").send().await.unwrap();
    let err = s3
        .get_bucket_website()
        .bucket("site")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (404, "NoSuchWebsiteConfiguration".into())
    );
    let rule = RoutingRule::builder()
        .condition(Condition::builder().key_prefix_equals("docs/").build())
        .redirect(
            Redirect::builder()
                .replace_key_prefix_with("documents/")
                .http_redirect_code("302")
                .build(),
        )
        .build();
    let cfg = WebsiteConfiguration::builder()
        .index_document(index("index.html"))
        .error_document(ErrorDocument::builder().key("error.html").build().unwrap())
        .routing_rules(rule)
        .build();
    set_website(&s3, "site", cfg).await;
    let got = s3.get_bucket_website().bucket("site").send().await.unwrap();
    assert_eq!(got.index_document().unwrap().suffix(), "index.html");
    assert_eq!(got.error_document().unwrap().key(), "error.html");
    let rules = got.routing_rules();
    assert_eq!(rules.len(), 1);
    assert_eq!(
        rules[0].condition().unwrap().key_prefix_equals(),
        Some("docs/")
    );
    assert_eq!(
        rules[0].redirect().unwrap().replace_key_prefix_with(),
        Some("documents/")
    );
    assert_eq!(
        rules[0].redirect().unwrap().http_redirect_code(),
        Some("302")
    );
    s3.delete_bucket_website()
        .bucket("site")
        .send()
        .await
        .unwrap();
    let err = s3
        .get_bucket_website()
        .bucket("site")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).1, "NoSuchWebsiteConfiguration");
    let err = s3
        .get_bucket_website()
        .bucket("absent")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
}

#[tokio::test]
async fn invalid_website_configurations_are_refused_as_aws() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("site").send().await.unwrap();
    let refused = |cfg: WebsiteConfiguration| {
        let s3 = s3.clone();
        async move {
            let e = s3
                .put_bucket_website()
                .bucket("site")
                .website_configuration(cfg)
                .send()
                .await
                .unwrap_err();
            let (status, code) = status_and_code(&e);
            let msg = e
                .as_service_error()
                .and_then(|s| aws_sdk_s3::error::ProvideErrorMetadata::message(s))
                .unwrap_or_default()
                .to_owned();
            (status, code, msg)
        }
    };
    assert_eq!(
        refused(WebsiteConfiguration::builder().build()).await,
        (
            400,
            "InvalidArgument".into(),
            "A value for IndexDocument Suffix must be provided if RedirectAllRequestsTo is empty"
                .into()
        )
    );
    assert_eq!(
        refused(site("a/index.html", None)).await,
        (
            400,
            "InvalidArgument".into(),
            "The IndexDocument Suffix is not well formed".into()
        )
    );
    let both = WebsiteConfiguration::builder()
        .index_document(index("index.html"))
        .redirect_all_requests_to(
            RedirectAllRequestsTo::builder()
                .host_name("example.com")
                .build()
                .unwrap(),
        )
        .build();
    assert_eq!(refused(both).await.1, "InvalidArgument");
    let both_keys = WebsiteConfiguration::builder()
        .index_document(index("index.html"))
        .routing_rules(
            RoutingRule::builder()
                .redirect(
                    Redirect::builder()
                        .replace_key_with("a")
                        .replace_key_prefix_with("b")
                        .build(),
                )
                .build(),
        )
        .build();
    assert_eq!(
        refused(both_keys).await,
        (
            400,
            "InvalidRequest".into(),
            "You can only define ReplaceKeyPrefix or ReplaceKey but not both.".into()
        )
    );
    let err = s3
        .get_bucket_website()
        .bucket("site")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err).1,
        "NoSuchWebsiteConfiguration",
        "nothing refused was stored"
    );
}

#[tokio::test]
async fn website_redirect_location_is_stored_by_put_copy_and_multipart() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("site").send().await.unwrap();
    s3.put_object()
        .bucket("site")
        .key("old.html")
        .website_redirect_location("/new.html")
        .body(Vec::new().into())
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("site")
        .key("old.html")
        .send()
        .await
        .unwrap();
    assert_eq!(head.website_redirect_location(), Some("/new.html"));
    s3.copy_object()
        .bucket("site")
        .key("copied.html")
        .copy_source("site/old.html")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("site")
        .key("copied.html")
        .send()
        .await
        .unwrap();
    assert_eq!(head.website_redirect_location(), Some("/new.html"));
    let up = s3
        .create_multipart_upload()
        .bucket("site")
        .key("mp.html")
        .website_redirect_location("https://example.com/")
        .send()
        .await
        .unwrap();
    let part = s3
        .upload_part()
        .bucket("site")
        .key("mp.html")
        .upload_id(up.upload_id().unwrap())
        .part_number(1)
        .body(b"x".to_vec().into())
        .send()
        .await
        .unwrap();
    s3.complete_multipart_upload()
        .bucket("site")
        .key("mp.html")
        .upload_id(up.upload_id().unwrap())
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .parts(
                    aws_sdk_s3::types::CompletedPart::builder()
                        .part_number(1)
                        .e_tag(part.e_tag().unwrap())
                        .build(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let got = s3
        .get_object()
        .bucket("site")
        .key("mp.html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        got.website_redirect_location(),
        Some("https://example.com/")
    );
}

#[tokio::test]
async fn without_a_policy_anonymous_reads_are_403_pages() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("site").send().await.unwrap();
    put(&s3, "site", "index.html", b"<h1>home</h1>").await;
    set_website(&s3, "site", site("index.html", Some("error.html"))).await;
    let page = get_page(&server, "site", "/").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body.contains("<h1>403 Forbidden</h1>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<li>Code: AccessDenied</li>"));
    assert!(page.body.contains("<li>Key: index.html</li>"));
    // The error document is unreadable too: AWS's second section says so.
    assert!(page.body.contains(
        "<h3>An Error Occurred While Attempting to Retrieve a Custom Error Document</h3>"
    ));
    assert!(page.body.contains("<li>Key: error.html</li>"));
    assert!(
        page.header("content-type")
            .is_some_and(|c| c.starts_with("text/html"))
    );
    let request_id = page.header("x-amz-request-id").unwrap_or_default();
    assert!(!request_id.is_empty());
    assert!(
        page.body
            .contains(&format!("<li>RequestId: {request_id}</li>"))
    );
    assert!(!page.body.contains("home"), "nothing of the object leaks");
}

#[tokio::test]
async fn bucket_and_configuration_errors_and_methods() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("plain").send().await.unwrap();
    let page = get_page(&server, "plain", "/").await;
    assert_eq!(page.status, 404);
    assert!(
        page.body
            .contains("<li>Code: NoSuchWebsiteConfiguration</li>"),
        "{}",
        page.body
    );
    assert!(page.body.contains("<li>BucketName: plain</li>"));
    let page = get_page(&server, "nowhere.example", "/").await;
    assert_eq!(page.status, 404);
    assert!(page.body.contains("<li>Code: NoSuchBucket</li>"));
    assert!(page.body.contains("<li>BucketName: nowhere.example</li>"));
    // BUCKET.<website domain> names the bucket too.
    let page = get_page(&server, "plain.s3-website.localhost:9001", "/").await;
    assert!(
        page.body.contains("<li>BucketName: plain</li>"),
        "{}",
        page.body
    );
    for method in [
        reqwest::Method::PUT,
        reqwest::Method::POST,
        reqwest::Method::DELETE,
    ] {
        let page = visit(&server, method.clone(), "plain", "/k", &[]).await;
        assert_eq!(page.status, 405, "{method}");
        assert!(page.body.contains("<li>Code: MethodNotAllowed</li>"));
        assert!(page.body.contains(&format!("<li>Method: {method}</li>")));
        assert!(page.body.contains("<li>ResourceType: OBJECT</li>"));
    }
    let head = visit(&server, reqwest::Method::HEAD, "plain", "/", &[]).await;
    assert_eq!(head.status, 404);
    assert!(head.body.is_empty());
}

#[tokio::test]
async fn redirects_that_need_no_read_access() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket()
        .bucket("old.example")
        .send()
        .await
        .unwrap();
    set_website(
        &s3,
        "old.example",
        WebsiteConfiguration::builder()
            .redirect_all_requests_to(
                RedirectAllRequestsTo::builder()
                    .host_name("new.example")
                    .protocol(Protocol::Https)
                    .build()
                    .unwrap(),
            )
            .build(),
    )
    .await;
    let page = get_page(&server, "old.example", "/a/b.html?x=1").await;
    assert_eq!(page.status, 301);
    assert_eq!(
        page.header("location"),
        Some("https://new.example/a/b.html?x=1")
    );
    s3.create_bucket().bucket("rules").send().await.unwrap();
    let prefix_rule = RoutingRule::builder()
        .condition(Condition::builder().key_prefix_equals("docs/").build())
        .redirect(
            Redirect::builder()
                .replace_key_prefix_with("documents/")
                .build(),
        )
        .build();
    let on_403 = RoutingRule::builder()
        .condition(
            Condition::builder()
                .http_error_code_returned_equals("403")
                .build(),
        )
        .redirect(
            Redirect::builder()
                .host_name("login.example")
                .protocol(Protocol::Https)
                .replace_key_with("signin")
                .http_redirect_code("307")
                .build(),
        )
        .build();
    set_website(
        &s3,
        "rules",
        WebsiteConfiguration::builder()
            .index_document(index("index.html"))
            .routing_rules(prefix_rule)
            .routing_rules(on_403)
            .build(),
    )
    .await;
    let page = get_page(&server, "rules:9001", "/docs/a%20b.html").await;
    assert_eq!(page.status, 301);
    assert_eq!(
        page.header("location"),
        Some("http://rules:9001/documents/a%20b.html")
    );
    // Anonymous reads are refused (no policy): the 403 rule redirects.
    let page = get_page(&server, "rules", "/private.html").await;
    assert_eq!(page.status, 307);
    assert_eq!(
        page.header("location"),
        Some("https://login.example/signin")
    );
}
