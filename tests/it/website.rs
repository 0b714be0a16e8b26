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
async fn host_names_and_redirect_locations_are_validated() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("site").send().await.unwrap();
    // A HostName goes into a Location header: it must be a host (and optional port), nothing else.
    let all = |host: &str| {
        WebsiteConfiguration::builder()
            .redirect_all_requests_to(
                RedirectAllRequestsTo::builder()
                    .host_name(host)
                    .build()
                    .unwrap(),
            )
            .build()
    };
    let rule = |host: &str| {
        WebsiteConfiguration::builder()
            .index_document(index("index.html"))
            .routing_rules(
                RoutingRule::builder()
                    .redirect(Redirect::builder().host_name(host).build())
                    .build(),
            )
            .build()
    };
    for cfg in [
        all("evil.com/phish"),
        all("evil.com\tx"),
        all("a b.com"),
        all("user@evil.com"),
        rule("evil.com/x"),
        rule("evil.com?x=1"),
    ] {
        let err = s3
            .put_bucket_website()
            .bucket("site")
            .website_configuration(cfg.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_and_code(&err),
            (400, "InvalidArgument".into()),
            "{cfg:?}"
        );
    }
    for cfg in [all("example.com:8080"), rule("www.example.com")] {
        s3.put_bucket_website()
            .bucket("site")
            .website_configuration(cfg)
            .send()
            .await
            .unwrap();
    }

    // x-amz-website-redirect-location must be a path or an http(s) URL.
    let invalid = (400, "InvalidRedirectLocation".to_owned());
    for bad in ["new.html", "javascript:alert(1)", "HTTPS//example.com"] {
        let err = s3
            .put_object()
            .bucket("site")
            .key("p.html")
            .website_redirect_location(bad)
            .body(Vec::new().into())
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_and_code(&err), invalid, "{bad}");
    }
    put(&s3, "site", "src.html", b"x").await;
    let err = s3
        .copy_object()
        .bucket("site")
        .key("c.html")
        .copy_source("site/src.html")
        .website_redirect_location("ftp://example.com/")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), invalid);
    let err = s3
        .copy_object()
        .bucket("site")
        .key("c.html")
        .copy_source("site/src.html")
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .website_redirect_location("example.com")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), invalid);
    let err = s3
        .create_multipart_upload()
        .bucket("site")
        .key("m.html")
        .website_redirect_location("example.com/x")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), invalid);
    s3.put_object()
        .bucket("site")
        .key("p.html")
        .website_redirect_location("http://example.com/")
        .body(Vec::new().into())
        .send()
        .await
        .unwrap();
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

/// Makes `bucket` publicly readable: Block Public Access off, then AWS's public-read policy (s3:GetObject).
pub(crate) async fn public_read(s3: &Client, bucket: &str) {
    public_policy(s3, bucket, false).await;
}

/// Block Public Access off, then a policy letting anyone read objects and, with `list`, list the bucket (which
/// turns missing keys from 403 into 404, as on AWS).
async fn public_policy(s3: &Client, bucket: &str, list: bool) {
    s3.delete_public_access_block()
        .bucket(bucket)
        .send()
        .await
        .unwrap();
    let listing = if list {
        format!(
            r#",{{"Effect":"Allow","Principal":"*","Action":"s3:ListBucket","Resource":"arn:aws:s3:::{bucket}"}}"#
        )
    } else {
        String::new()
    };
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"PublicRead","Effect":"Allow","Principal":"*","Action":"s3:GetObject","Resource":"arn:aws:s3:::{bucket}/*"}}{listing}]}}"#
    );
    s3.put_bucket_policy()
        .bucket(bucket)
        .policy(policy)
        .send()
        .await
        .unwrap();
}

async fn put_typed(s3: &Client, bucket: &str, key: &str, body: &[u8], content_type: &str) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .cache_control("max-age=60")
        .metadata("secret", "not for the web")
        .body(body.to_vec().into())
        .send()
        .await
        .unwrap();
}

/// A public site (readable and listable): index.html, docs/index.html, a.txt, error.html.
async fn public_site(server: &Server, bucket: &str, error_key: Option<&str>) -> Client {
    let s3 = server.client();
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    put_typed(&s3, bucket, "index.html", b"<h1>home</h1>", "text/html").await;
    put_typed(
        &s3,
        bucket,
        "docs/index.html",
        b"<h1>docs</h1>",
        "text/html",
    )
    .await;
    put_typed(&s3, bucket, "a.txt", b"0123456789", "text/plain").await;
    put_typed(&s3, bucket, "error.html", b"<h1>oops</h1>", "text/html").await;
    public_policy(&s3, bucket, true).await;
    set_website(&s3, bucket, site("index.html", error_key)).await;
    s3
}

#[tokio::test]
async fn index_documents_directories_and_object_headers() {
    let server = Server::start();
    public_site(&server, "www.example.com", None).await;
    let host = "www.example.com:9001";
    let home = get_page(&server, host, "/").await;
    assert_eq!((home.status, home.body.as_str()), (200, "<h1>home</h1>"));
    assert_eq!(home.header("content-type"), Some("text/html"));
    assert_eq!(home.header("cache-control"), Some("max-age=60"));
    assert!(home.header("etag").is_some_and(|e| e.starts_with('"')));
    assert!(home.header("last-modified").is_some());
    assert!(
        !home
            .headers
            .keys()
            .any(|k| k.as_str().starts_with("x-amz-meta-")),
        "user metadata stays private: {:?}",
        home.headers
    );
    let docs = get_page(&server, host, "/docs/").await;
    assert_eq!((docs.status, docs.body.as_str()), (200, "<h1>docs</h1>"));
    let dir = get_page(&server, host, "/docs").await;
    assert_eq!(dir.status, 302);
    assert_eq!(dir.header("location"), Some("/docs/"));
    let file = get_page(&server, host, "/a.txt").await;
    assert_eq!((file.status, file.body.as_str()), (200, "0123456789"));
    // No error document: AWS's HTML 404 page.
    let missing = get_page(&server, host, "/nope.html").await;
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("<h1>404 Not Found</h1>"));
    assert!(missing.body.contains("<li>Code: NoSuchKey</li>"));
    assert!(missing.body.contains("<li>Key: nope.html</li>"));
    let missing_dir = get_page(&server, host, "/nodir/").await;
    assert!(missing_dir.body.contains("<li>Key: nodir/index.html</li>"));
    // The website domain form names the same bucket.
    let vhost = get_page(&server, "www.example.com.s3-website.localhost", "/").await;
    assert_eq!(vhost.body, "<h1>home</h1>");
}

#[tokio::test]
async fn without_list_permission_missing_pages_are_403_with_the_error_document() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("unlisted").send().await.unwrap();
    put_typed(&s3, "unlisted", "index.html", b"<h1>home</h1>", "text/html").await;
    put_typed(
        &s3,
        "unlisted",
        "docs/index.html",
        b"<h1>docs</h1>",
        "text/html",
    )
    .await;
    put_typed(&s3, "unlisted", "error.html", b"<h1>oops</h1>", "text/html").await;
    public_read(&s3, "unlisted").await;
    set_website(&s3, "unlisted", site("index.html", None)).await;
    let page = get_page(&server, "unlisted", "/").await;
    assert_eq!((page.status, page.body.as_str()), (200, "<h1>home</h1>"));
    let dir = get_page(&server, "unlisted", "/docs").await;
    assert_eq!(dir.status, 302, "the directory redirect needs no listing");
    let missing = get_page(&server, "unlisted", "/nope.html").await;
    assert_eq!(missing.status, 403, "{}", missing.body);
    assert!(missing.body.contains("<li>Code: AccessDenied</li>"));
    set_website(&s3, "unlisted", site("index.html", Some("error.html"))).await;
    let missing = get_page(&server, "unlisted", "/nope.html").await;
    assert_eq!(
        (missing.status, missing.body.as_str()),
        (403, "<h1>oops</h1>")
    );
}

#[tokio::test]
async fn head_range_and_conditional_requests() {
    let server = Server::start();
    public_site(&server, "ranges", None).await;
    let head = visit(&server, reqwest::Method::HEAD, "ranges", "/a.txt", &[]).await;
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("10"));
    assert!(head.body.is_empty());
    let part = visit(
        &server,
        reqwest::Method::GET,
        "ranges",
        "/a.txt",
        &[("range", "bytes=2-5")],
    )
    .await;
    assert_eq!((part.status, part.body.as_str()), (206, "2345"));
    assert_eq!(part.header("content-range"), Some("bytes 2-5/10"));
    let past = visit(
        &server,
        reqwest::Method::GET,
        "ranges",
        "/a.txt",
        &[("range", "bytes=20-")],
    )
    .await;
    assert_eq!(past.status, 416);
    let etag = head.header("etag").unwrap().to_owned();
    let same = visit(
        &server,
        reqwest::Method::GET,
        "ranges",
        "/a.txt",
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(same.status, 304);
    assert_eq!(same.header("etag"), Some(etag.as_str()));
    let changed = visit(
        &server,
        reqwest::Method::GET,
        "ranges",
        "/a.txt",
        &[("if-match", "\"other\"")],
    )
    .await;
    assert_eq!(changed.status, 412);
    let missing_head = visit(&server, reqwest::Method::HEAD, "ranges", "/nope", &[]).await;
    assert_eq!(missing_head.status, 404);
    assert!(missing_head.body.is_empty());
}

#[tokio::test]
async fn error_document_and_error_code_rules() {
    let server = Server::start();
    let s3 = public_site(&server, "errs", Some("error.html")).await;
    let missing = get_page(&server, "errs", "/nope.html").await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.body, "<h1>oops</h1>");
    assert_eq!(missing.header("content-type"), Some("text/html"));
    // An error document that is itself missing: the HTML page with AWS's second section.
    s3.delete_object()
        .bucket("errs")
        .key("error.html")
        .send()
        .await
        .unwrap();
    let broken = get_page(&server, "errs", "/nope.html").await;
    assert_eq!(broken.status, 404);
    assert!(broken.body.contains("<li>Code: NoSuchKey</li>"));
    assert!(
        broken
            .body
            .contains("An Error Occurred While Attempting to Retrieve a Custom Error Document")
    );
    // A 404 rule with a prefix condition redirects, others keep the 404.
    let rule = RoutingRule::builder()
        .condition(
            Condition::builder()
                .key_prefix_equals("old/")
                .http_error_code_returned_equals("404")
                .build(),
        )
        .redirect(
            Redirect::builder()
                .host_name("archive.example")
                .replace_key_prefix_with("legacy/")
                .build(),
        )
        .build();
    set_website(
        &s3,
        "errs",
        WebsiteConfiguration::builder()
            .index_document(index("index.html"))
            .routing_rules(rule)
            .build(),
    )
    .await;
    let moved = get_page(&server, "errs", "/old/page.html").await;
    assert_eq!(moved.status, 301);
    assert_eq!(
        moved.header("location"),
        Some("http://archive.example/legacy/page.html")
    );
    put(&s3, "errs", "old/kept.html", b"still here").await;
    let kept = get_page(&server, "errs", "/old/kept.html").await;
    assert_eq!((kept.status, kept.body.as_str()), (200, "still here"));
    let other = get_page(&server, "errs", "/new/page.html").await;
    assert_eq!(other.status, 404);
}

#[tokio::test]
async fn object_redirect_location_and_prefix_rules_on_a_public_site() {
    let server = Server::start();
    let s3 = public_site(&server, "moves", None).await;
    s3.put_object()
        .bucket("moves")
        .key("old.html")
        .website_redirect_location("/a.txt")
        .body(Vec::new().into())
        .send()
        .await
        .unwrap();
    let moved = get_page(&server, "moves", "/old.html").await;
    assert_eq!(moved.status, 301);
    assert_eq!(moved.header("location"), Some("/a.txt"));
    let rule = RoutingRule::builder()
        .condition(Condition::builder().key_prefix_equals("docs/").build())
        .redirect(
            Redirect::builder()
                .replace_key_with("index.html")
                .http_redirect_code("302")
                .build(),
        )
        .build();
    set_website(
        &s3,
        "moves",
        WebsiteConfiguration::builder()
            .index_document(index("index.html"))
            .routing_rules(rule)
            .build(),
    )
    .await;
    let redirected = get_page(&server, "moves:9001", "/docs/").await;
    assert_eq!(redirected.status, 302);
    assert_eq!(
        redirected.header("location"),
        Some("http://moves:9001/index.html")
    );
}

#[tokio::test]
async fn a_public_site_through_the_serve_edge_over_https() {
    let server = Server::start();
    public_site(&server, "edge-site", Some("error.html")).await;
    let name = "edge-site.s3-website.localhost";
    let addr: std::net::SocketAddr = server
        .edge_https
        .rsplit_once("//")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let client = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve(name, addr)
        .build()
        .unwrap();
    let base = format!("https://{name}:{}", addr.port());
    let first = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(first.status().as_u16(), 200);
    assert_eq!(first.text().await.unwrap(), "<h1>home</h1>");
    let again = client.get(format!("{base}/")).send().await.unwrap();
    assert_eq!(
        again.headers().get("x-cache").and_then(|v| v.to_str().ok()),
        Some("Hit from strata"),
        "{:?}",
        again.headers()
    );
    let dir = client.get(format!("{base}/docs")).send().await.unwrap();
    assert_eq!(dir.status().as_u16(), 302);
    let missing = client.get(format!("{base}/nope")).send().await.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert_eq!(missing.text().await.unwrap(), "<h1>oops</h1>");
    // aws-cli-style signed requests on the same listener still reach the S3 API.
    let s3 = crate::harness::client_for(
        &server.edge_http,
        crate::harness::ACCESS_KEY,
        crate::harness::SECRET_KEY,
    );
    put(&s3, "edge-site", "new.html", b"fresh").await;
    let fresh = client.get(format!("{base}/new.html")).send().await.unwrap();
    assert_eq!(fresh.text().await.unwrap(), "fresh");
}

/// What one viewer sends through the edge must not decide what the next viewer gets: a request dressed as a
/// presigned URL goes to the S3 API uncached (it reads the path as bucket/key, so its answer would be another
/// bucket's object under the site's key), and a redirect built from the Host's port or the viewer's protocol is
/// cached per port and protocol.
#[tokio::test]
async fn viewers_cannot_poison_the_edge_cache_of_a_site() {
    let server = Server::start();
    let s3 = public_site(&server, "site", None).await;
    put_typed(&s3, "site", "assets/app.js", b"legit()", "text/javascript").await;
    // Another public bucket whose name is the site's first path segment.
    s3.create_bucket().bucket("assets").send().await.unwrap();
    put_typed(&s3, "assets", "app.js", b"pwned()", "text/javascript").await;
    public_read(&s3, "assets").await;
    let rule = RoutingRule::builder()
        .condition(Condition::builder().key_prefix_equals("old/").build())
        .redirect(Redirect::builder().replace_key_prefix_with("new/").build())
        .build();
    set_website(
        &s3,
        "site",
        WebsiteConfiguration::builder()
            .index_document(index("index.html"))
            .routing_rules(rule)
            .build(),
    )
    .await;
    let edge = &server.edge_http;
    let get = |host: &'static str, path: String| async move {
        let resp = http()
            .get(format!("{edge}{path}"))
            .header("host", host)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get("location")
            .map(|v| v.to_str().unwrap().to_owned());
        (status, location, resp.text().await.unwrap())
    };
    for param in [
        "X-Amz-Credential=x",
        "X%2DAmz%2DCredential=x",
        "Signature=x",
    ] {
        let _ = get("site", format!("/assets/app.js?{param}")).await;
        let (status, _, body) = get("site", "/assets/app.js".into()).await;
        assert_eq!((status, body.as_str()), (200, "legit()"), "after ?{param}");
    }
    let (status, location, _) = get("site:1", "/old/page".into()).await;
    assert_eq!(
        (status, location.as_deref()),
        (301, Some("http://site:1/new/page"))
    );
    let (_, location, _) = get("site", "/old/page".into()).await;
    assert_eq!(location.as_deref(), Some("http://site/new/page"));
    // The same path over HTTPS gets an https redirect, not the cached http one.
    let addr: std::net::SocketAddr = server
        .edge_https
        .rsplit_once("//")
        .unwrap()
        .1
        .parse()
        .unwrap();
    let tls = reqwest::Client::builder()
        .danger_accept_invalid_certs(true)
        .redirect(reqwest::redirect::Policy::none())
        .resolve("site", addr)
        .build()
        .unwrap();
    let resp = tls
        .get(format!("https://site:{}/old/page", addr.port()))
        .send()
        .await
        .unwrap();
    let location = resp.headers().get("location").unwrap().to_str().unwrap();
    assert!(location.starts_with("https://site:"), "{location}");
}
