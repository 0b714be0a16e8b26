//! CORS: Put/Get/DeleteBucketCors with the SDK, preflights and the Access-Control-* headers of actual requests
//! on the REST endpoint and the website endpoint, checked on the wire with a plain HTTP client.

use std::time::Duration;

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::types::{CorsConfiguration, CorsRule, IndexDocument, WebsiteConfiguration};

use crate::harness::{Server, put, status_and_code};

const VARY: &str = "Origin, Access-Control-Request-Headers, Access-Control-Request-Method";

fn rules() -> CorsConfiguration {
    CorsConfiguration::builder()
        .cors_rules(
            CorsRule::builder()
                .id("app")
                .allowed_origins("https://app.example")
                .allowed_origins("http://*.dev.example")
                .allowed_methods("GET")
                .allowed_methods("PUT")
                .allowed_headers("x-amz-*")
                .allowed_headers("Content-Type")
                .expose_headers("ETag")
                .max_age_seconds(600)
                .build()
                .unwrap(),
        )
        .cors_rules(
            CorsRule::builder()
                .allowed_origins("*")
                .allowed_methods("GET")
                .allowed_methods("HEAD")
                .build()
                .unwrap(),
        )
        .build()
        .unwrap()
}

async fn bucket_with_cors(server: &Server, bucket: &str) -> Client {
    let s3 = server.client();
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    put(&s3, bucket, "obj", b"cors object").await;
    s3.put_bucket_cors()
        .bucket(bucket)
        .cors_configuration(rules())
        .send()
        .await
        .unwrap();
    s3
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

async fn send(
    method: reqwest::Method,
    url: &str,
    host: Option<&str>,
    headers: &[(&str, &str)],
) -> Answer {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut req = client.request(method, url);
    if let Some(h) = host {
        req = req.header("host", h);
    }
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let resp = req.send().await.expect("request");
    Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().await.unwrap_or_default(),
    }
}

async fn preflight(url: &str, host: Option<&str>, headers: &[(&str, &str)]) -> Answer {
    send(reqwest::Method::OPTIONS, url, host, headers).await
}

fn code(body: &str) -> Option<String> {
    let start = body.find("<Code>")? + 6;
    let end = body[start..].find("</Code>")? + start;
    Some(body[start..end].to_owned())
}

#[tokio::test]
async fn cors_configuration_round_trips_and_is_validated() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("cfg").send().await.unwrap();
    let err = s3.get_bucket_cors().bucket("cfg").send().await.unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (404, "NoSuchCORSConfiguration".into())
    );
    s3.put_bucket_cors()
        .bucket("cfg")
        .cors_configuration(rules())
        .send()
        .await
        .unwrap();
    let got = s3.get_bucket_cors().bucket("cfg").send().await.unwrap();
    let r = &got.cors_rules()[0];
    assert_eq!(r.id(), Some("app"));
    assert_eq!(
        r.allowed_origins(),
        ["https://app.example", "http://*.dev.example"]
    );
    assert_eq!(r.allowed_methods(), ["GET", "PUT"]);
    assert_eq!(r.allowed_headers(), ["x-amz-*", "Content-Type"]);
    assert_eq!(r.expose_headers(), ["ETag"]);
    assert_eq!(r.max_age_seconds(), Some(600));
    assert_eq!(got.cors_rules().len(), 2);

    let bad = |origin: &str, method: &str| {
        CorsConfiguration::builder()
            .cors_rules(
                CorsRule::builder()
                    .allowed_origins(origin)
                    .allowed_methods(method)
                    .build()
                    .unwrap(),
            )
            .build()
            .unwrap()
    };
    for (cfg, want) in [
        (bad("*", "PATCH"), "InvalidRequest"),
        (bad("*a*", "GET"), "InvalidRequest"),
    ] {
        let e = s3
            .put_bucket_cors()
            .bucket("cfg")
            .cors_configuration(cfg)
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_and_code(&e), (400, want.into()));
    }
    s3.delete_bucket_cors().bucket("cfg").send().await.unwrap();
    let err = s3.get_bucket_cors().bucket("cfg").send().await.unwrap_err();
    assert_eq!(status_and_code(&err).1, "NoSuchCORSConfiguration");
}

#[tokio::test]
async fn preflights_on_the_rest_endpoint() {
    let server = Server::start();
    bucket_with_cors(&server, "pre").await;
    let url = format!("{}/pre/obj", server.endpoint);
    let ok = preflight(
        &url,
        None,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "X-Amz-Date, content-type"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(ok.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(
        ok.header("access-control-allow-headers"),
        Some("x-amz-date, content-type")
    );
    assert_eq!(ok.header("access-control-max-age"), Some("600"));
    assert_eq!(ok.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(ok.header("access-control-expose-headers"), Some("ETag"));
    assert_eq!(ok.header("vary"), Some(VARY));
    // The wildcard rule answers `*`, without credentials.
    let any = preflight(
        &url,
        None,
        &[
            ("origin", "https://elsewhere.example"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(any.status, 200);
    assert_eq!(any.header("access-control-allow-origin"), Some("*"));
    assert_eq!(any.header("access-control-allow-credentials"), None);
    // Refused: a method, a header, or an origin no rule allows.
    for headers in [
        vec![
            ("origin", "https://elsewhere.example"),
            ("access-control-request-method", "PUT"),
        ],
        vec![
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
            ("access-control-request-headers", "authorization"),
        ],
        vec![
            ("origin", "http://a.dev.example.evil"),
            ("access-control-request-method", "DELETE"),
        ],
    ] {
        let no = preflight(&url, None, &headers).await;
        assert_eq!(no.status, 403, "{headers:?}");
        assert_eq!(code(&no.body).as_deref(), Some("AccessForbidden"));
        assert!(
            no.body
                .contains("CORSResponse: This CORS request is not allowed.")
        );
        let method = headers[1].1;
        assert!(
            no.body.contains(&format!(
                "<Method>{method}</Method><ResourceType>OBJECT</ResourceType><RequestId>"
            )),
            "{}",
            no.body
        );
        assert_eq!(no.header("access-control-allow-origin"), None);
    }
    // Missing Origin or method: 400.
    let no_origin = preflight(&url, None, &[("access-control-request-method", "GET")]).await;
    assert_eq!(no_origin.status, 400);
    assert_eq!(code(&no_origin.body).as_deref(), Some("BadRequest"));
    let no_method = preflight(&url, None, &[("origin", "https://app.example")]).await;
    assert_eq!(no_method.status, 400);
    // A bucket without CORS, and one that does not exist.
    server
        .client()
        .create_bucket()
        .bucket("bare")
        .send()
        .await
        .unwrap();
    for (bucket, message) in [
        ("bare", "CORS is not enabled for this bucket."),
        ("absent", "Bucket not found"),
    ] {
        let no = preflight(
            &format!("{}/{bucket}/k", server.endpoint),
            None,
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "GET"),
            ],
        )
        .await;
        assert_eq!(no.status, 403);
        assert!(no.body.contains(message), "{}", no.body);
        assert!(
            no.body
                .contains("<Method>GET</Method><ResourceType>BUCKET</ResourceType>")
        );
    }
}

#[tokio::test]
async fn actual_requests_carry_the_matched_rules_headers() {
    let server = Server::start();
    let s3 = bucket_with_cors(&server, "act").await;
    let presigned = s3
        .get_object()
        .bucket("act")
        .key("obj")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let got = send(
        reqwest::Method::GET,
        presigned.uri(),
        None,
        &[("origin", "http://x.dev.example")],
    )
    .await;
    assert_eq!(got.status, 200);
    assert_eq!(got.body, "cors object");
    assert_eq!(
        got.header("access-control-allow-origin"),
        Some("http://x.dev.example")
    );
    assert_eq!(got.header("access-control-allow-methods"), Some("GET, PUT"));
    assert_eq!(got.header("access-control-expose-headers"), Some("ETag"));
    assert_eq!(got.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(got.header("vary"), Some(VARY));
    // Errors carry them too (an anonymous GET is refused).
    let refused = send(
        reqwest::Method::GET,
        &format!("{}/act/obj", server.endpoint),
        None,
        &[("origin", "https://other.example")],
    )
    .await;
    assert_eq!(refused.status, 403);
    assert_eq!(refused.header("access-control-allow-origin"), Some("*"));
    // No Origin, or an origin and method no rule allows: no CORS headers.
    let plain = send(reqwest::Method::GET, presigned.uri(), None, &[]).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("access-control-allow-origin"), None);
    let put_url = s3
        .put_object()
        .bucket("act")
        .key("obj2")
        .presigned(PresigningConfig::expires_in(Duration::from_secs(300)).unwrap())
        .await
        .unwrap();
    let stored = send(
        reqwest::Method::PUT,
        put_url.uri(),
        None,
        &[("origin", "https://other.example"), ("content-length", "0")],
    )
    .await;
    assert_eq!(stored.status, 200, "{}", stored.body);
    assert_eq!(stored.header("access-control-allow-origin"), None);
    assert_eq!(stored.header("vary"), None);
}

#[tokio::test]
async fn the_website_endpoint_answers_cors_too() {
    let server = Server::start();
    let s3 = bucket_with_cors(&server, "www").await;
    s3.put_bucket_website()
        .bucket("www")
        .website_configuration(
            WebsiteConfiguration::builder()
                .index_document(
                    IndexDocument::builder()
                        .suffix("index.html")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let url = format!("{}/obj", server.website);
    let ok = preflight(
        &url,
        Some("www"),
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "GET"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(ok.header("vary"), Some(VARY));
    let no = preflight(
        &url,
        Some("www"),
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "DELETE"),
        ],
    )
    .await;
    assert_eq!(no.status, 403);
    assert!(
        no.body.contains("<li>Code: AccessForbidden</li>"),
        "{}",
        no.body
    );
    // An actual request: the anonymous read is refused (no policy), with the rule's headers.
    let got = send(
        reqwest::Method::GET,
        &url,
        Some("www"),
        &[("origin", "https://app.example")],
    )
    .await;
    assert_eq!(got.status, 403);
    assert_eq!(
        got.header("access-control-allow-origin"),
        Some("https://app.example")
    );
}

#[tokio::test]
async fn cors_through_the_serve_edge() {
    let server = Server::start();
    let s3 = bucket_with_cors(&server, "cdn").await;
    crate::website::public_read(&s3, "cdn").await;
    s3.put_bucket_website()
        .bucket("cdn")
        .website_configuration(
            WebsiteConfiguration::builder()
                .index_document(
                    IndexDocument::builder()
                        .suffix("index.html")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .send()
        .await
        .unwrap();
    let edge = &server.edge_http;
    let url = format!("{edge}/obj");
    // A browser preflight for a plain read goes to the website endpoint (Host names the bucket), uncached.
    for _ in 0..2 {
        let ok = preflight(
            &url,
            Some("cdn"),
            &[
                ("origin", "https://app.example"),
                ("access-control-request-method", "GET"),
            ],
        )
        .await;
        assert_eq!(ok.status, 200, "{}", ok.body);
        assert_eq!(
            ok.header("access-control-allow-origin"),
            Some("https://app.example")
        );
        assert_ne!(ok.header("x-cache"), Some("Hit from strata"));
    }
    // The preflight of a signed call goes to the S3 API (path-style).
    let api = preflight(
        &format!("{edge}/cdn/obj"),
        None,
        &[
            ("origin", "https://app.example"),
            ("access-control-request-method", "PUT"),
            (
                "access-control-request-headers",
                "x-amz-date,x-amz-content-sha256",
            ),
        ],
    )
    .await;
    assert_eq!(api.status, 200, "{}", api.body);
    assert_eq!(
        api.header("access-control-allow-headers"),
        Some("x-amz-date, x-amz-content-sha256")
    );
    // Cached reads vary by Origin: each viewer gets the headers for its own origin, and none without one.
    let get = |origin: Option<&'static str>| {
        let url = url.clone();
        async move {
            let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
            send(reqwest::Method::GET, &url, Some("cdn"), &headers).await
        }
    };
    let a = get(Some("https://app.example")).await;
    assert_eq!((a.status, a.body.as_str()), (200, "cors object"));
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    assert_eq!(a.header("vary"), Some(VARY));
    let plain = get(None).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("access-control-allow-origin"), None);
    let other = get(Some("https://other.example")).await;
    assert_eq!(other.header("access-control-allow-origin"), Some("*"));
    let a_again = get(Some("https://app.example")).await;
    assert_eq!(a_again.header("x-cache"), Some("Hit from strata"));
    assert_eq!(
        a_again.header("access-control-allow-origin"),
        Some("https://app.example")
    );
    let plain_again = get(None).await;
    assert_eq!(plain_again.header("x-cache"), Some("Hit from strata"));
    assert_eq!(plain_again.header("access-control-allow-origin"), None);
}
