//! GET/HEAD semantics: byte ranges, conditional requests with AWS's precedence rules, response-* overrides,
//! and HEAD errors without a body.

use aws_sdk_s3::primitives::DateTime;
use chrono::{TimeDelta, Utc};

use crate::harness::{Server, body_of, pattern, put, status_and_code};
use crate::sigv4::{RawRequest, RawResponse};

const MIB: usize = 1024 * 1024;

fn raw_get(server: &Server, path: &str, headers: &[(&str, &str)]) -> RawResponse {
    raw(server, "GET", path, "", headers)
}

fn raw(
    server: &Server,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(&str, &str)],
) -> RawResponse {
    let mut req = RawRequest::new(method, path, query);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    req.signed(&server.endpoint).send(&server.endpoint)
}

#[tokio::test]
async fn byte_ranges_are_206_with_content_range() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("ranges").send().await.unwrap();
    let size = 3 * MIB + 11;
    let data = pattern(size, 42);
    put(&s3, "ranges", "obj", &data).await;
    let n = size as u64;
    let cases: Vec<(String, u64, u64)> = vec![
        ("bytes=0-0".into(), 0, 0),
        ("bytes=0-9".into(), 0, 9),
        ("bytes=100-199".into(), 100, 199),
        // Across the 1 MiB block boundaries.
        (
            format!("bytes={}-{}", MIB - 5, MIB + 5),
            MIB as u64 - 5,
            MIB as u64 + 5,
        ),
        (
            format!("bytes={}-{}", MIB - 1, 2 * MIB),
            MIB as u64 - 1,
            2 * MIB as u64,
        ),
        (format!("bytes={}-", 3 * MIB), 3 * MIB as u64, n - 1),
        ("bytes=-1".into(), n - 1, n - 1),
        ("bytes=-500".into(), n - 500, n - 1),
        // Suffix longer than the object: the whole object, still 206.
        (format!("bytes=-{}", n + 100), 0, n - 1),
        // End past the object: clamped.
        (format!("bytes={}-{}", n - 3, n + 1000), n - 3, n - 1),
        (format!("bytes={}-", n - 1), n - 1, n - 1),
    ];
    for (range, start, end) in cases {
        let resp = raw_get(&server, "/ranges/obj", &[("range", &range)]);
        assert_eq!(resp.status, 206, "{range}: {}", resp.text());
        assert_eq!(
            resp.header("content-range"),
            Some(format!("bytes {start}-{end}/{n}").as_str()),
            "{range}"
        );
        assert_eq!(
            resp.header("content-length"),
            Some((end - start + 1).to_string().as_str()),
            "{range}"
        );
        assert!(
            resp.body == data[start as usize..=end as usize],
            "{range}: wrong bytes"
        );
        assert_eq!(resp.header("accept-ranges"), Some("bytes"));
    }
    // The SDK agrees.
    let out = s3
        .get_object()
        .bucket("ranges")
        .key("obj")
        .range("bytes=10-19")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.content_range(),
        Some(format!("bytes 10-19/{n}").as_str())
    );
    assert_eq!(body_of(out).await, &data[10..20]);
    // HEAD with a range answers like GET without the body.
    let resp = raw(
        &server,
        "HEAD",
        "/ranges/obj",
        "",
        &[("range", "bytes=5-9")],
    );
    assert_eq!(resp.status, 206);
    assert_eq!(
        resp.header("content-range"),
        Some(format!("bytes 5-9/{n}").as_str())
    );
    assert_eq!(resp.header("content-length"), Some("5"));
}

#[tokio::test]
async fn unsatisfiable_ranges_are_416_invalid_range() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("r416").send().await.unwrap();
    put(&s3, "r416", "ten", b"0123456789").await;
    put(&s3, "r416", "empty", b"").await;
    for (key, range) in [
        ("ten", "bytes=10-"),
        ("ten", "bytes=10-20"),
        ("ten", "bytes=1000-2000"),
        ("empty", "bytes=0-"),
    ] {
        let resp = raw_get(&server, &format!("/r416/{key}"), &[("range", range)]);
        assert_eq!(
            (resp.status, resp.code().as_deref()),
            (416, Some("InvalidRange")),
            "{key} {range}: {}",
            resp.text()
        );
        assert!(resp.header("x-amz-request-id").is_some());
    }
    let err = s3
        .get_object()
        .bucket("r416")
        .key("ten")
        .range("bytes=10-")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (416, "InvalidRange".into()));
}

#[tokio::test]
async fn unparseable_ranges_serve_the_whole_object() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("rbad").send().await.unwrap();
    let data = pattern(1000, 5);
    put(&s3, "rbad", "k", &data).await;
    for range in [
        "garbage",
        "bytes=",
        "bytes=abc-def",
        "bytes=9-3",
        "items=0-1",
        "bytes=0-1,5-6",
        "bytes=--1",
    ] {
        let resp = raw_get(&server, "/rbad/k", &[("range", range)]);
        assert_eq!(resp.status, 200, "{range}: {}", resp.text());
        assert!(resp.header("content-range").is_none(), "{range}");
        assert!(resp.body == data, "{range}: whole body");
    }
}

/// The object's ETag and Last-Modified as the server reports them.
fn validators(server: &Server, path: &str) -> (String, chrono::DateTime<Utc>, String) {
    let head = raw(server, "HEAD", path, "", &[]);
    assert_eq!(head.status, 200);
    let etag = head.header("etag").expect("etag").to_owned();
    let lm_text = head
        .header("last-modified")
        .expect("last-modified")
        .to_owned();
    let lm = chrono::DateTime::parse_from_rfc2822(&lm_text)
        .expect("http date")
        .with_timezone(&Utc);
    (etag, lm, lm_text)
}

fn http_date(t: chrono::DateTime<Utc>) -> String {
    t.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

#[tokio::test]
async fn conditional_get_and_head_single_headers() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("cond").send().await.unwrap();
    put(&s3, "cond", "k", b"conditional body").await;
    let (etag, lm, lm_text) = validators(&server, "/cond/k");
    let before = http_date(lm - TimeDelta::days(1));
    let after = http_date(lm + TimeDelta::seconds(1));
    let unquoted = etag.trim_matches('"').to_owned();
    let other = "\"0123456789abcdef0123456789abcdef\"";
    let cases: Vec<(&str, String, u16)> = vec![
        ("if-match", etag.clone(), 200),
        ("if-match", unquoted.clone(), 200),
        ("if-match", "*".into(), 200),
        ("if-match", format!("{other}, {etag}"), 200),
        ("if-match", other.into(), 412),
        ("if-none-match", etag.clone(), 304),
        ("if-none-match", "*".into(), 304),
        ("if-none-match", format!("{other}, {etag}"), 304),
        ("if-none-match", other.into(), 200),
        ("if-modified-since", before.clone(), 200),
        ("if-modified-since", lm_text.clone(), 304),
        ("if-modified-since", "not a date".into(), 200),
        ("if-unmodified-since", before.clone(), 412),
        ("if-unmodified-since", lm_text.clone(), 200),
        ("if-unmodified-since", after.clone(), 200),
        ("if-unmodified-since", "not a date".into(), 200),
    ];
    for (name, value, want) in cases {
        for method in ["GET", "HEAD"] {
            let resp = raw(&server, method, "/cond/k", "", &[(name, &value)]);
            assert_eq!(
                resp.status,
                want,
                "{method} {name}: {value}: {}",
                resp.text()
            );
            match want {
                200 if method == "GET" => assert_eq!(resp.body, b"conditional body"),
                304 => {
                    assert!(resp.body.is_empty(), "304 has no body");
                    assert_eq!(
                        resp.header("etag"),
                        Some(etag.as_str()),
                        "304 carries the ETag ({name})"
                    );
                }
                412 if method == "GET" => {
                    assert_eq!(resp.code().as_deref(), Some("PreconditionFailed"))
                }
                _ => {}
            }
        }
    }
}

#[tokio::test]
async fn conditional_precedence_as_aws() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("prec").send().await.unwrap();
    put(&s3, "prec", "k", b"precedence").await;
    let (etag, lm, lm_text) = validators(&server, "/prec/k");
    let before = http_date(lm - TimeDelta::days(1));
    let later = http_date(lm + TimeDelta::seconds(1));
    let other = "\"ffffffffffffffffffffffffffffffff\"";
    type Case<'a> = (Vec<(&'a str, &'a str)>, u16, &'a str);
    let cases: Vec<Case> = vec![
        // If-Match true wins over If-Unmodified-Since false: 200.
        (
            vec![("if-match", &etag), ("if-unmodified-since", &before)],
            200,
            "If-Match overrides If-Unmodified-Since",
        ),
        // If-Match false: 412 whatever If-Unmodified-Since says.
        (
            vec![("if-match", other), ("if-unmodified-since", &later)],
            412,
            "If-Match false",
        ),
        // If-None-Match false (ETag matches) with If-Modified-Since true: 304.
        (
            vec![("if-none-match", &etag), ("if-modified-since", &before)],
            304,
            "If-None-Match overrides If-Modified-Since",
        ),
        // If-None-Match true with If-Modified-Since false: 200 (If-Modified-Since is ignored).
        (
            vec![("if-none-match", other), ("if-modified-since", &lm_text)],
            200,
            "If-None-Match true ignores If-Modified-Since",
        ),
        // If-Match true and If-None-Match false: 304.
        (
            vec![("if-match", &etag), ("if-none-match", &etag)],
            304,
            "If-Match then If-None-Match",
        ),
        // If-Match false beats If-None-Match false: 412.
        (
            vec![("if-match", other), ("if-none-match", &etag)],
            412,
            "412 before 304",
        ),
    ];
    for (headers, want, why) in cases {
        for method in ["GET", "HEAD"] {
            let resp = raw(&server, method, "/prec/k", "", &headers);
            assert_eq!(
                resp.status,
                want,
                "{method}: {why}: {headers:?}: {}",
                resp.text()
            );
        }
    }
    // Through the SDK: typed errors and the 304.
    let out = s3
        .get_object()
        .bucket("prec")
        .key("k")
        .if_match(&etag)
        .if_unmodified_since(DateTime::from_secs(lm.timestamp() - 86_400))
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(out).await, b"precedence");
    let err = s3
        .get_object()
        .bucket("prec")
        .key("k")
        .if_none_match(&etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 304);
    let err = s3
        .get_object()
        .bucket("prec")
        .key("k")
        .if_match(other)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (412, "PreconditionFailed".into()));
}

#[tokio::test]
async fn conditions_apply_before_ranges() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("crb").send().await.unwrap();
    put(&s3, "crb", "k", b"0123456789").await;
    let (etag, _, _) = validators(&server, "/crb/k");
    let resp = raw_get(
        &server,
        "/crb/k",
        &[("if-match", &etag), ("range", "bytes=2-4")],
    );
    assert_eq!((resp.status, resp.body.as_slice()), (206, &b"234"[..]));
    let resp = raw_get(
        &server,
        "/crb/k",
        &[("if-none-match", &etag), ("range", "bytes=2-4")],
    );
    assert_eq!(resp.status, 304);
    let resp = raw_get(
        &server,
        "/crb/k",
        &[("if-match", "\"nope\""), ("range", "bytes=20-")],
    );
    assert_eq!(resp.status, 412, "precondition checked before the range");
}

#[tokio::test]
async fn response_header_overrides() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("over").send().await.unwrap();
    s3.put_object()
        .bucket("over")
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"override me",
        ))
        .content_type("text/plain")
        .cache_control("no-cache")
        .send()
        .await
        .unwrap();
    let out = s3
        .get_object()
        .bucket("over")
        .key("k")
        .response_content_type("application/json")
        .response_content_language("fr")
        .response_expires(DateTime::from_secs(1_900_000_000))
        .response_cache_control("max-age=3600")
        .response_content_disposition("attachment; filename=\"x.json\"")
        .response_content_encoding("identity")
        .send()
        .await
        .unwrap();
    assert_eq!(out.content_type(), Some("application/json"));
    assert_eq!(out.content_language(), Some("fr"));
    assert_eq!(out.expires_string(), Some("Sun, 17 Mar 2030 17:46:40 GMT"));
    assert_eq!(out.cache_control(), Some("max-age=3600"));
    assert_eq!(
        out.content_disposition(),
        Some("attachment; filename=\"x.json\"")
    );
    assert_eq!(out.content_encoding(), Some("identity"));
    assert_eq!(body_of(out).await, b"override me");
    // The stored headers are unchanged.
    let head = s3
        .head_object()
        .bucket("over")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.cache_control(), Some("no-cache"));
    // Overrides on the raw wire, with characters that need escaping in the query.
    let resp = raw(
        &server,
        "GET",
        "/over/k",
        "response-content-type=image%2Fpng%3B%20q%3D1",
        &[],
    );
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.header("content-type"), Some("image/png; q=1"));
}

#[tokio::test]
async fn head_of_a_missing_key_is_404_without_body() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("hhh").send().await.unwrap();
    let resp = raw(&server, "HEAD", "/hhh/missing", "", &[]);
    assert_eq!(resp.status, 404);
    assert!(resp.body.is_empty());
    assert!(resp.header("x-amz-request-id").is_some());
    let err = s3
        .head_object()
        .bucket("hhh")
        .key("missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
    // GET of the same key carries the XML error.
    let resp = raw(&server, "GET", "/hhh/missing", "", &[]);
    assert_eq!(
        (resp.status, resp.code().as_deref()),
        (404, Some("NoSuchKey"))
    );
    assert!(
        resp.text().contains("<Key>missing</Key>") || resp.text().contains("<Resource>"),
        "{}",
        resp.text()
    );
}

#[tokio::test]
async fn zero_byte_object_get_and_head() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("zero").send().await.unwrap();
    put(&s3, "zero", "empty", b"").await;
    let resp = raw(&server, "GET", "/zero/empty", "", &[]);
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-length"), Some("0"));
    assert!(resp.body.is_empty());
    assert_eq!(
        resp.header("etag"),
        Some("\"d41d8cd98f00b204e9800998ecf8427e\"")
    );
}

#[tokio::test]
async fn not_modified_carries_validators_and_cache_headers() {
    // RFC 7232 section 4.1: a 304 repeats ETag, Cache-Control and Expires so a cache (the edge) can refresh.
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("nm304").send().await.unwrap();
    s3.put_object()
        .bucket("nm304")
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"cached"))
        .cache_control("max-age=10")
        .expires(DateTime::from_secs(1_900_000_000))
        .send()
        .await
        .unwrap();
    let (etag, _, lm_text) = validators(&server, "/nm304/k");
    for (name, value) in [
        ("if-none-match", etag.as_str()),
        ("if-modified-since", lm_text.as_str()),
    ] {
        for method in ["GET", "HEAD"] {
            let resp = raw(&server, method, "/nm304/k", "", &[(name, value)]);
            assert_eq!(resp.status, 304, "{method} {name}");
            assert!(resp.body.is_empty());
            assert_eq!(resp.header("etag"), Some(etag.as_str()), "{method} {name}");
            assert_eq!(
                resp.header("last-modified"),
                Some(lm_text.as_str()),
                "{method} {name}"
            );
            assert_eq!(
                resp.header("cache-control"),
                Some("max-age=10"),
                "{method} {name}"
            );
            assert_eq!(
                resp.header("expires"),
                Some("Sun, 17 Mar 2030 17:46:40 GMT"),
                "{method} {name}"
            );
            assert!(resp.header("x-amz-request-id").is_some());
        }
    }
}

#[tokio::test]
async fn ranged_reads_do_not_return_the_full_object_checksum() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("rsum").send().await.unwrap();
    s3.put_object()
        .bucket("rsum")
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"0123456789",
        ))
        .checksum_algorithm(aws_sdk_s3::types::ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let whole = raw_get(&server, "/rsum/k", &[("x-amz-checksum-mode", "ENABLED")]);
    assert_eq!(
        whole.header("x-amz-checksum-sha256"),
        Some(crate::cksum::checksum_b64("SHA256", b"0123456789").as_str())
    );
    let part = raw_get(
        &server,
        "/rsum/k",
        &[("x-amz-checksum-mode", "ENABLED"), ("range", "bytes=2-4")],
    );
    assert_eq!((part.status, part.body.as_slice()), (206, &b"234"[..]));
    assert!(
        part.header("x-amz-checksum-sha256").is_none(),
        "a range is not the object the checksum covers"
    );
}

#[tokio::test]
async fn obsolete_http_date_formats_are_understood() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("dates").send().await.unwrap();
    put(&s3, "dates", "k", b"dated").await;
    // 1994 is long before the object was written.
    for old in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ] {
        let resp = raw_get(&server, "/dates/k", &[("if-unmodified-since", old)]);
        assert_eq!(resp.status, 412, "{old}");
        let resp = raw_get(&server, "/dates/k", &[("if-modified-since", old)]);
        assert_eq!(resp.status, 200, "{old}");
    }
}

#[tokio::test]
async fn part_number_reads_as_s3() {
    use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("parts").send().await.unwrap();
    let up = s3
        .create_multipart_upload()
        .bucket("parts")
        .key("mp")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let part = s3
        .upload_part()
        .bucket("parts")
        .key("mp")
        .upload_id(&id)
        .part_number(1)
        .body(aws_sdk_s3::primitives::ByteStream::from_static(
            b"the only part",
        ))
        .send()
        .await
        .unwrap();
    let done = CompletedMultipartUpload::builder()
        .parts(
            CompletedPart::builder()
                .part_number(1)
                .e_tag(part.e_tag().unwrap())
                .build(),
        )
        .build();
    s3.complete_multipart_upload()
        .bucket("parts")
        .key("mp")
        .upload_id(&id)
        .multipart_upload(done)
        .send()
        .await
        .unwrap();
    // x-amz-mp-parts-count only answers a request that names a part.
    let head = s3
        .head_object()
        .bucket("parts")
        .key("mp")
        .send()
        .await
        .unwrap();
    assert_eq!(head.parts_count(), None);
    let head = s3
        .head_object()
        .bucket("parts")
        .key("mp")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(head.parts_count(), Some(1));
    // partNumber and Range together are refused.
    let err = s3
        .get_object()
        .bucket("parts")
        .key("mp")
        .part_number(1)
        .range("bytes=0-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidRequest".into()));
    let out = s3
        .get_object()
        .bucket("parts")
        .key("mp")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(out).await, b"the only part");
}
