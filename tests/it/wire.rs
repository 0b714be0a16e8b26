//! The wire, where an SDK would hide it: authentication failures, payload hashes, malformed XML, missing
//! Content-Length, hand-built aws-chunked bodies, presigned URLs with a plain HTTP client, traversal keys on raw
//! paths, garbage headers, request ids on every response, unimplemented sub-resources.

use std::path::Path;
use std::time::{Duration, SystemTime};

use aws_sdk_s3::presigning::PresigningConfig;
use chrono::{TimeDelta, Utc};

use crate::cksum::checksum_b64;
use crate::harness::{ACCESS_KEY, SECRET_KEY, Server, get, put, status_and_code};
use crate::sigv4::{
    RawRequest, RawResponse, Signer, aws_chunked, aws_chunked_len, host_of, sha256_hex, xml_elem,
};

fn assert_error(resp: &RawResponse, status: u16, code: &str) {
    assert_eq!(
        resp.status,
        status,
        "want {status} {code}, got: {:?} {}",
        resp.headers,
        resp.text()
    );
    assert_eq!(resp.code().as_deref(), Some(code), "{}", resp.text());
    assert!(
        resp.header("x-amz-request-id")
            .is_some_and(|v| !v.is_empty()),
        "x-amz-request-id on {code}"
    );
    assert_eq!(
        xml_elem(&resp.text(), "RequestId").as_deref(),
        resp.header("x-amz-request-id"),
        "the body's RequestId is the header's"
    );
    assert!(
        resp.header("content-type")
            .is_some_and(|c| c.contains("xml")),
        "{:?}",
        resp.headers
    );
}

async fn bucket_with_object(server: &Server, bucket: &str) -> aws_sdk_s3::Client {
    let s3 = server.client();
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    put(&s3, bucket, "obj", b"wire object").await;
    s3
}

async fn absent(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> bool {
    match s3.head_object().bucket(bucket).key(key).send().await {
        Ok(_) => false,
        Err(e) => status_and_code(&e).0 == 404,
    }
}

#[tokio::test]
async fn unsigned_requests_are_access_denied() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "private").await;
    for (method, path, query) in [
        ("GET", "/", ""),
        ("GET", "/private", "list-type=2"),
        ("GET", "/private/obj", ""),
        ("DELETE", "/private/obj", ""),
    ] {
        let resp = RawRequest::new(method, path, query).send(&server.endpoint);
        assert_error(&resp, 403, "AccessDenied");
    }
    let resp = RawRequest::new("PUT", "/private/anon", "")
        .body("anonymous write")
        .send(&server.endpoint);
    assert_error(&resp, 403, "AccessDenied");
    assert!(
        absent(&s3, "private", "anon").await,
        "an anonymous PUT writes nothing"
    );
    let resp = RawRequest::new("HEAD", "/private/obj", "").send(&server.endpoint);
    assert_eq!(resp.status, 403);
    assert!(resp.body.is_empty(), "HEAD errors carry no body");
    assert!(resp.header("x-amz-request-id").is_some());
    assert_eq!(
        get(&s3, "private", "obj").await,
        b"wire object",
        "the anonymous DELETE deleted nothing"
    );
}

#[tokio::test]
async fn wrong_secret_is_signature_does_not_match() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "sig").await;
    let host = host_of(&server.endpoint);
    let signer = Signer {
        secret: "not-the-secret".into(),
        ..Signer::default()
    };
    let mut req = RawRequest::new("GET", "/sig/obj", "");
    req.sign_with(&signer, &host, None);
    assert_error(&req.send(&server.endpoint), 403, "SignatureDoesNotMatch");
    // A PUT signed with the wrong secret writes nothing.
    let mut req = RawRequest::new("PUT", "/sig/forged", "").body("forged");
    req.sign_with(&signer, &host, None);
    assert_error(&req.send(&server.endpoint), 403, "SignatureDoesNotMatch");
    assert!(absent(&s3, "sig", "forged").await);
    // A correctly signed request whose signed header is then altered.
    let mut req = RawRequest::new("GET", "/sig/obj", "")
        .header("range", "bytes=0-1")
        .signed(&server.endpoint);
    for h in req.headers.iter_mut().filter(|(k, _)| k == "range") {
        h.1 = "bytes=0-5".into();
    }
    assert_error(&req.send(&server.endpoint), 403, "SignatureDoesNotMatch");
    // The same through the SDK.
    let bad = crate::harness::client_for(&server.endpoint, ACCESS_KEY, "wrong-secret");
    let err = bad.list_buckets().send().await.unwrap_err();
    assert_eq!(status_and_code(&err), (403, "SignatureDoesNotMatch".into()));
}

#[tokio::test]
async fn unknown_access_key_is_invalid_access_key_id() {
    let server = Server::start();
    bucket_with_object(&server, "akid").await;
    let host = host_of(&server.endpoint);
    let signer = Signer {
        access: "AKIDONTEXIST00000000".into(),
        ..Signer::default()
    };
    let mut req = RawRequest::new("GET", "/akid/obj", "");
    req.sign_with(&signer, &host, None);
    assert_error(&req.send(&server.endpoint), 403, "InvalidAccessKeyId");
    let bad = crate::harness::client_for(&server.endpoint, "AKIDONTEXIST00000000", SECRET_KEY);
    let err = bad.list_buckets().send().await.unwrap_err();
    assert_eq!(status_and_code(&err), (403, "InvalidAccessKeyId".into()));
}

#[tokio::test]
async fn skewed_request_time_is_request_time_too_skewed() {
    let server = Server::start();
    bucket_with_object(&server, "skew").await;
    let host = host_of(&server.endpoint);
    for offset in [TimeDelta::minutes(-20), TimeDelta::minutes(20)] {
        let signer = Signer {
            time: Utc::now() + offset,
            ..Signer::default()
        };
        let mut req = RawRequest::new("GET", "/skew/obj", "");
        req.sign_with(&signer, &host, None);
        assert_error(&req.send(&server.endpoint), 403, "RequestTimeTooSkewed");
    }
    // Inside the 15-minute window is fine.
    let signer = Signer {
        time: Utc::now() - TimeDelta::minutes(10),
        ..Signer::default()
    };
    let mut req = RawRequest::new("GET", "/skew/obj", "");
    req.sign_with(&signer, &host, None);
    let resp = req.send(&server.endpoint);
    assert_eq!(
        (resp.status, resp.body.as_slice()),
        (200, &b"wire object"[..])
    );
}

#[tokio::test]
async fn malformed_authorization_header() {
    let server = Server::start();
    bucket_with_object(&server, "malauth").await;
    let amz_date = Signer::default().amz_date();
    for auth in [
        "AWS4-HMAC-SHA256 Credential=garbage",
        "AWS4-HMAC-SHA256 Credential=STRATATESTACCESSKEY1/20200101/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=zz",
    ] {
        let resp = RawRequest::new("GET", "/malauth/obj", "")
            .header("x-amz-date", &amz_date)
            .header("x-amz-content-sha256", crate::sigv4::EMPTY_SHA256)
            .header("authorization", auth)
            .send(&server.endpoint);
        assert_eq!(resp.status, 400, "{auth}: {}", resp.text());
        assert!(
            resp.code()
                .is_some_and(|c| c.starts_with("Authorization") || c == "InvalidArgument"),
            "{}",
            resp.text()
        );
    }
}

#[tokio::test]
async fn content_sha256_mismatch_creates_nothing() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "sha").await;
    let host = host_of(&server.endpoint);
    for len in [10usize, 300_000] {
        let key = format!("mismatch-{len}");
        let body = crate::harness::pattern(len, 1);
        let mut req = RawRequest::new("PUT", &format!("/sha/{key}"), "").body(body.clone());
        req.sign_with(
            &Signer::default(),
            &host,
            Some(&sha256_hex(b"a different body")),
        );
        assert_error(
            &req.send(&server.endpoint),
            400,
            "XAmzContentSHA256Mismatch",
        );
        assert!(absent(&s3, "sha", &key).await, "{key} must not exist");
    }
    // And the hash of the real body works.
    let mut req = RawRequest::new("PUT", "/sha/ok", "").body("exact");
    req.sign_with(&Signer::default(), &host, None);
    assert_eq!(req.send(&server.endpoint).status, 200);
    assert_eq!(get(&s3, "sha", "ok").await, b"exact");
    // UNSIGNED-PAYLOAD skips the body hash.
    let mut req = RawRequest::new("PUT", "/sha/unsigned", "").body("unsigned body");
    req.sign_with(&Signer::default(), &host, Some("UNSIGNED-PAYLOAD"));
    assert_eq!(req.send(&server.endpoint).status, 200);
    assert_eq!(get(&s3, "sha", "unsigned").await, b"unsigned body");
}

#[tokio::test]
async fn malformed_xml_bodies_are_malformed_xml() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "xml").await;
    let bodies = [
        "<Delete><Object><Key>obj</Key>",
        "not xml at all",
        "<Delete></Delete>",
        "<Delete><Object></Object></Delete>",
        "",
    ];
    for body in bodies {
        let resp = RawRequest::new("POST", "/xml", "delete")
            .body(body)
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_error(&resp, 400, "MalformedXML");
    }
    let tagging_bodies = [
        "<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet>",
        "<Tagging><TagSet><Tag><Key>a</Key></Tag></TagSet></Tagging>",
        "<Tagging></Tagging>",
        "{\"TagSet\": []}",
        "",
    ];
    for body in tagging_bodies {
        let resp = RawRequest::new("PUT", "/xml/obj", "tagging")
            .body(body)
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_error(&resp, 400, "MalformedXML");
    }
    assert_eq!(
        get(&s3, "xml", "obj").await,
        b"wire object",
        "nothing was deleted"
    );
}

#[tokio::test]
async fn xml_bodies_with_the_wrong_root_element_are_malformed() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "xmlroot").await;
    let resp = RawRequest::new("POST", "/xmlroot", "delete")
        .body("<NotDelete><Object><Key>obj</Key></Object></NotDelete>")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_error(&resp, 400, "MalformedXML");
    assert_eq!(
        get(&s3, "xmlroot", "obj").await,
        b"wire object",
        "a document that is not <Delete> deletes nothing"
    );
    let resp = RawRequest::new("PUT", "/xmlroot/obj", "tagging")
        .body("<Tags><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tags>")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_error(&resp, 400, "MalformedXML");
    // The namespaced AWS form is fine.
    let resp = RawRequest::new("PUT", "/xmlroot/obj", "tagging")
        .body(r#"<?xml version="1.0" encoding="UTF-8"?><Tagging xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>"#)
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(resp.status, 200, "{}", resp.text());
}

#[tokio::test]
async fn put_without_content_length_is_411() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "length").await;
    let host = host_of(&server.endpoint);
    let mut req =
        RawRequest::new("PUT", "/length/chunked", "").header("transfer-encoding", "chunked");
    req.content_length = false;
    req.sign_with(&Signer::default(), &host, Some("UNSIGNED-PAYLOAD"));
    req.body = b"5\r\nhello\r\n0\r\n\r\n".to_vec();
    let resp = req.send(&server.endpoint);
    assert_error(&resp, 411, "MissingContentLength");
    assert!(absent(&s3, "length", "chunked").await);
}

/// A signed aws-chunked PUT of `data` in `chunk`-byte chunks, optionally with one payload byte flipped.
fn chunked_put(
    server: &Server,
    key: &str,
    data: &[u8],
    chunk: usize,
    tamper: Option<(usize, usize)>,
) -> RawResponse {
    let host = host_of(&server.endpoint);
    let mut req = RawRequest::new("PUT", &format!("/chunked/{key}"), "")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", &data.len().to_string())
        .header(
            "content-length",
            &aws_chunked_len(data.len(), chunk).to_string(),
        );
    req.content_length = false;
    let signed = req.sign_with(
        &Signer::default(),
        &host,
        Some("STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
    );
    req.body = aws_chunked(&signed, data, chunk, tamper);
    req.send(&server.endpoint)
}

#[tokio::test]
async fn aws_chunked_signed_upload_by_hand() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("chunked").send().await.unwrap();
    for (key, len, chunk) in [
        ("small", 10usize, 64 * 1024),
        ("multi", 200_000, 64 * 1024),
        ("empty", 0, 8192),
    ] {
        let data = crate::harness::pattern(len, len as u64);
        let resp = chunked_put(&server, key, &data, chunk, None);
        assert_eq!(resp.status, 200, "{key}: {}", resp.text());
        assert_eq!(
            resp.header("etag"),
            Some(format!("\"{}\"", crate::cksum::md5_hex(&data)).as_str())
        );
        assert!(get(&s3, "chunked", key).await == data, "{key}");
        let head = s3
            .head_object()
            .bucket("chunked")
            .key(key)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.content_encoding(),
            None,
            "aws-chunked is framing, not a stored Content-Encoding"
        );
    }
    // A flipped byte in the second chunk: SignatureDoesNotMatch, and no object.
    let data = crate::harness::pattern(200_000, 9);
    let resp = chunked_put(&server, "tampered", &data, 64 * 1024, Some((1, 17)));
    assert_error(&resp, 403, "SignatureDoesNotMatch");
    assert!(absent(&s3, "chunked", "tampered").await);
    // Tampering with the last data chunk, and with a one-chunk body, fails the same way.
    let resp = chunked_put(&server, "tampered-last", &data, 64 * 1024, Some((3, 0)));
    assert_error(&resp, 403, "SignatureDoesNotMatch");
    assert!(absent(&s3, "chunked", "tampered-last").await);
    let resp = chunked_put(&server, "tampered-one", b"tiny", 64 * 1024, Some((0, 3)));
    assert_error(&resp, 403, "SignatureDoesNotMatch");
    assert!(absent(&s3, "chunked", "tampered-one").await);
    // Overwriting with a tampered body keeps the old object.
    let resp = chunked_put(&server, "multi", &data, 64 * 1024, Some((2, 5)));
    assert_eq!(resp.status, 403);
    assert!(get(&s3, "chunked", "multi").await == crate::harness::pattern(200_000, 200_000));
}

#[tokio::test]
async fn aws_chunked_unsigned_trailer_checksum() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("trailer").send().await.unwrap();
    let host = host_of(&server.endpoint);
    let data = crate::harness::pattern(100_000, 4);
    for (key, crc, want) in [
        ("good", checksum_b64("CRC32", &data), 200u16),
        ("bad", checksum_b64("CRC32", b"x"), 400),
    ] {
        let mut body = Vec::new();
        for piece in data.chunks(30_000) {
            body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            body.extend_from_slice(piece);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(format!("0\r\nx-amz-checksum-crc32:{crc}\r\n\r\n").as_bytes());
        let mut req = RawRequest::new("PUT", &format!("/trailer/{key}"), "")
            .header("content-encoding", "aws-chunked")
            .header("x-amz-decoded-content-length", &data.len().to_string())
            .header("x-amz-trailer", "x-amz-checksum-crc32")
            .header("content-length", &body.len().to_string());
        req.content_length = false;
        req.sign_with(
            &Signer::default(),
            &host,
            Some("STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
        );
        req.body = body;
        let resp = req.send(&server.endpoint);
        assert_eq!(resp.status, want, "{key}: {}", resp.text());
        if want == 200 {
            assert_eq!(resp.header("x-amz-checksum-crc32"), Some(crc.as_str()));
            assert!(get(&s3, "trailer", key).await == data);
        } else {
            assert_eq!(resp.code().as_deref(), Some("BadDigest"));
            assert!(absent(&s3, "trailer", key).await);
        }
    }
}

#[tokio::test]
async fn presigned_get_and_put_with_a_plain_http_client() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "presign").await;
    let http = reqwest::Client::new();
    let cfg = PresigningConfig::expires_in(Duration::from_secs(300)).unwrap();

    let get_req = s3
        .get_object()
        .bucket("presign")
        .key("obj")
        .presigned(cfg.clone())
        .await
        .unwrap();
    let mut rb = http.get(get_req.uri());
    for (k, v) in get_req.headers() {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert!(resp.headers().contains_key("x-amz-request-id"));
    assert_eq!(resp.bytes().await.unwrap().as_ref(), b"wire object");

    let put_req = s3
        .put_object()
        .bucket("presign")
        .key("uploaded via url")
        .presigned(cfg.clone())
        .await
        .unwrap();
    let mut rb = http.put(put_req.uri()).body(b"presigned upload".to_vec());
    for (k, v) in put_req.headers() {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await.unwrap();
    let status = resp.status().as_u16();
    assert_eq!(status, 200, "{}", resp.text().await.unwrap_or_default());
    assert_eq!(
        get(&s3, "presign", "uploaded via url").await,
        b"presigned upload"
    );

    // A tampered signature.
    let tampered = flip_signature(get_req.uri());
    let resp = http.get(&tampered).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    assert!(
        resp.text()
            .await
            .unwrap()
            .contains("<Code>SignatureDoesNotMatch</Code>")
    );

    // Expired: signed an hour ago, valid for a minute.
    let old = PresigningConfig::builder()
        .start_time(SystemTime::now() - Duration::from_secs(3600))
        .expires_in(Duration::from_secs(60))
        .build()
        .unwrap();
    let expired = s3
        .get_object()
        .bucket("presign")
        .key("obj")
        .presigned(old.clone())
        .await
        .unwrap();
    let resp = http.get(expired.uri()).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let text = resp.text().await.unwrap();
    assert!(text.contains("<Code>AccessDenied</Code>"), "{text}");
    let expired_put = s3
        .put_object()
        .bucket("presign")
        .key("late")
        .presigned(old)
        .await
        .unwrap();
    let mut rb = http.put(expired_put.uri()).body(b"too late".to_vec());
    for (k, v) in expired_put.headers() {
        rb = rb.header(k, v);
    }
    assert_eq!(rb.send().await.unwrap().status().as_u16(), 403);
    assert!(absent(&s3, "presign", "late").await);
}

/// Changes the last hex digit of X-Amz-Signature.
fn flip_signature(uri: &str) -> String {
    let start = uri.find("X-Amz-Signature=").expect("signature param") + "X-Amz-Signature=".len();
    let end = uri[start..].find('&').map_or(uri.len(), |i| start + i);
    let mut sig: Vec<u8> = uri[start..end].bytes().collect();
    let last = sig.last_mut().unwrap();
    *last = if *last == b'0' { b'1' } else { b'0' };
    format!(
        "{}{}{}",
        &uri[..start],
        String::from_utf8(sig).unwrap(),
        &uri[end..]
    )
}

/// Every path under `root`, relative to it.
fn walk(root: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
            if path.is_dir() && !path.is_symlink() {
                stack.push(path);
            }
        }
    }
    out
}

#[tokio::test]
async fn traversal_keys_on_raw_paths_stay_keys() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("bkt").send().await.unwrap();
    let marker = format!(
        "strata-escape-{}-{}",
        std::process::id(),
        Utc::now().timestamp_nanos_opt().unwrap_or_default()
    );
    let deep = format!("{}tmp/{marker}", "../".repeat(16));
    let deep_raw = format!("/bkt/{}tmp%2F{marker}", "..%2F".repeat(16));
    let cases: Vec<(String, String)> = vec![
        (
            "/bkt/..%2F..%2F..%2Fetc%2Fpasswd".into(),
            "../../../etc/passwd".into(),
        ),
        (
            "/bkt/..%2F..%2F..%2F..%2Fetc%2Fpasswd".into(),
            "../../../../etc/passwd".into(),
        ),
        (
            "/bkt/../../literal/passwd".into(),
            "../../literal/passwd".into(),
        ),
        ("/bkt/%2e%2e/%2e%2e/dots".into(), "../../dots".into()),
        (
            "/bkt/%2e%2e%2f%2e%2e%2fslashes".into(),
            "../../slashes".into(),
        ),
        ("/bkt//abs/passwd".into(), "/abs/passwd".into()),
        ("/bkt/a/..%2F..%2F..%2Fb".into(), "a/../../../b".into()),
        (deep_raw, deep.clone()),
    ];
    for (i, (path, key)) in cases.iter().enumerate() {
        let body = format!("traversal #{i}");
        let resp = RawRequest::new("PUT", path, "")
            .body(body.clone())
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_eq!(resp.status, 200, "PUT {path}: {}", resp.text());
        let resp = RawRequest::new("GET", path, "")
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_eq!(
            (resp.status, resp.text()),
            (200, body.clone()),
            "GET {path}"
        );
        assert_eq!(
            get(&s3, "bkt", key).await,
            body.as_bytes(),
            "the SDK reads key {key:?}"
        );
    }
    let mut want: Vec<String> = cases.iter().map(|(_, k)| k.clone()).collect();
    want.sort();
    assert_eq!(crate::harness::all_keys(&s3, "bkt").await, want);
    // Nothing outside the data directory: the temp dir holds only data/ and the harness's data.log.
    let tmp = server.data.parent().unwrap();
    for rel in walk(tmp) {
        let ok = rel.starts_with("data") && (rel == Path::new("data") || rel.starts_with("data/"))
            || rel == Path::new("data.log");
        assert!(
            ok,
            "unexpected path {} in the server's temp dir",
            rel.display()
        );
        let name = rel.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !["passwd", "dots", "slashes", "b"].contains(&name.as_str())
                && !name.contains("strata-escape"),
            "a key became a file: {}",
            rel.display()
        );
    }
    assert!(
        !Path::new("/tmp").join(&marker).exists(),
        "the deep traversal key escaped to /tmp"
    );
    assert!(
        !std::fs::read_to_string("/etc/passwd")
            .unwrap_or_default()
            .contains("traversal #")
    );
    // Delete through the raw path removes exactly that key.
    let resp = RawRequest::new("DELETE", &cases[0].0, "")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(resp.status, 204);
    assert!(absent(&s3, "bkt", &cases[0].1).await);
    assert_eq!(
        crate::harness::all_keys(&s3, "bkt").await.len(),
        cases.len() - 1
    );
}

#[tokio::test]
async fn garbage_range_header_serves_the_whole_object() {
    let server = Server::start();
    bucket_with_object(&server, "rng").await;
    for range in [
        "bytes=abc",
        "bytes=1-2-3",
        "lines=1-2",
        "bytes=--",
        "bytes=99999999999999999999999-",
    ] {
        let resp = RawRequest::new("GET", "/rng/obj", "")
            .header("range", range)
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_eq!(
            (resp.status, resp.text().as_str()),
            (200, "wire object"),
            "{range:?}"
        );
    }
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "ids").await;
    let etag = s3
        .head_object()
        .bucket("ids")
        .key("obj")
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    let e = &server.endpoint;
    let signed = |m: &str, p: &str, q: &str| RawRequest::new(m, p, q).signed(e);
    let responses = vec![
        ("list buckets", signed("GET", "/", "").send(e), 200),
        ("get", signed("GET", "/ids/obj", "").send(e), 200),
        ("head", signed("HEAD", "/ids/obj", "").send(e), 200),
        (
            "range",
            RawRequest::new("GET", "/ids/obj", "")
                .header("range", "bytes=0-1")
                .signed(e)
                .send(e),
            206,
        ),
        (
            "304",
            RawRequest::new("GET", "/ids/obj", "")
                .header("if-none-match", &etag)
                .signed(e)
                .send(e),
            304,
        ),
        (
            "412",
            RawRequest::new("GET", "/ids/obj", "")
                .header("if-match", "\"x\"")
                .signed(e)
                .send(e),
            412,
        ),
        (
            "416",
            RawRequest::new("GET", "/ids/obj", "")
                .header("range", "bytes=100-")
                .signed(e)
                .send(e),
            416,
        ),
        (
            "put",
            RawRequest::new("PUT", "/ids/new", "")
                .body("n")
                .signed(e)
                .send(e),
            200,
        ),
        ("delete", signed("DELETE", "/ids/new", "").send(e), 204),
        (
            "no such key",
            signed("GET", "/ids/missing", "").send(e),
            404,
        ),
        (
            "head missing",
            signed("HEAD", "/ids/missing", "").send(e),
            404,
        ),
        (
            "no such bucket",
            signed("GET", "/nobucket", "list-type=2").send(e),
            404,
        ),
        (
            "anonymous",
            RawRequest::new("GET", "/ids/obj", "").send(e),
            403,
        ),
        ("conflict", signed("DELETE", "/ids", "").send(e), 409),
        (
            "not implemented",
            signed("GET", "/ids", "analytics").send(e),
            501,
        ),
        (
            "bad digest",
            RawRequest::new("PUT", "/ids/bad", "")
                .header("content-md5", "1B2M2Y8AsgTpgAmY7PhCfg==")
                .body("x")
                .signed(e)
                .send(e),
            400,
        ),
    ];
    let mut ids = std::collections::HashSet::new();
    for (what, resp, status) in responses {
        assert_eq!(resp.status, status, "{what}: {}", resp.text());
        let id = resp
            .header("x-amz-request-id")
            .unwrap_or_else(|| panic!("{what}: no x-amz-request-id"));
        assert!(!id.is_empty(), "{what}");
        assert!(resp.header("x-amz-id-2").is_some(), "{what}: no x-amz-id-2");
        assert!(ids.insert(id.to_owned()), "{what}: request ids are unique");
    }
}

#[tokio::test]
async fn unimplemented_subresources_are_501_not_implemented() {
    let server = Server::start();
    bucket_with_object(&server, "subres").await;
    // Sub-resources nobody is building yet (multipart's ?uploads is being built, so it is not used here).
    for (method, path, query) in [
        ("GET", "/subres", "analytics"),
        ("GET", "/subres", "inventory"),
        ("GET", "/subres", "metrics"),
        ("GET", "/subres", "intelligent-tiering"),
        ("GET", "/subres/obj", "torrent"),
        ("POST", "/subres/obj", "select&select-type=2"),
    ] {
        let resp = RawRequest::new(method, path, query)
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_error(&resp, 501, "NotImplemented");
    }
}

#[tokio::test]
async fn virtual_hosted_style_addressing() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "vhost").await;
    let port = host_of(&server.endpoint)
        .rsplit_once(':')
        .unwrap()
        .1
        .to_owned();
    let host = format!("vhost.localhost:{port}");
    let resp = RawRequest::new("GET", "/obj", "")
        .with_host(&host)
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!((resp.status, resp.text().as_str()), (200, "wire object"));
    let resp = RawRequest::new("PUT", "/dir/via%20vhost", "")
        .with_host(&host)
        .body("vh")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(get(&s3, "vhost", "dir/via vhost").await, b"vh");
    let resp = RawRequest::new("GET", "/", "list-type=2")
        .with_host(&host)
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(resp.status, 200);
    assert!(
        resp.text().contains("<Key>dir/via vhost</Key>"),
        "{}",
        resp.text()
    );
}

#[tokio::test]
async fn presigned_urls_signed_by_hand_honour_the_7_day_limit() {
    let server = Server::start();
    bucket_with_object(&server, "hand").await;
    let host = host_of(&server.endpoint);
    let signer = Signer::default();
    for expires in [1u64, 604_800] {
        let query = signer.presign_query("GET", "/hand/obj", &host, expires);
        let resp = RawRequest::new("GET", "/hand/obj", &query).send(&server.endpoint);
        assert_eq!(
            (resp.status, resp.text().as_str()),
            (200, "wire object"),
            "X-Amz-Expires={expires}"
        );
    }
    let query = signer.presign_query("GET", "/hand/obj", &host, 604_801);
    let resp = RawRequest::new("GET", "/hand/obj", &query).send(&server.endpoint);
    assert_error(&resp, 400, "AuthorizationQueryParametersError");
    // Signed 10 minutes ago for 5 minutes: expired.
    let old = Signer {
        time: Utc::now() - TimeDelta::minutes(10),
        ..Signer::default()
    };
    let query = old.presign_query("GET", "/hand/obj", &host, 300);
    let resp = RawRequest::new("GET", "/hand/obj", &query).send(&server.endpoint);
    assert_error(&resp, 403, "AccessDenied");
    // Signed two days ago for three days: still valid (no 15-minute skew rule for presigned URLs).
    let old = Signer {
        time: Utc::now() - TimeDelta::days(2),
        ..Signer::default()
    };
    let query = old.presign_query("GET", "/hand/obj", &host, 3 * 86_400);
    let resp = RawRequest::new("GET", "/hand/obj", &query).send(&server.endpoint);
    assert_eq!((resp.status, resp.text().as_str()), (200, "wire object"));
    // A presigned GET does not authorise a PUT to the same path.
    let query = signer.presign_query("GET", "/hand/obj", &host, 300);
    let resp = RawRequest::new("PUT", "/hand/obj", &query)
        .body("overwrite")
        .send(&server.endpoint);
    assert_error(&resp, 403, "SignatureDoesNotMatch");
}

#[tokio::test]
async fn delete_objects_with_a_wrong_content_md5_deletes_nothing() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "delmd5").await;
    let body = "<Delete><Object><Key>obj</Key></Object></Delete>";
    let resp = RawRequest::new("POST", "/delmd5", "delete")
        .header("content-md5", &crate::cksum::md5_b64(b"another body"))
        .body(body)
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_error(&resp, 400, "BadDigest");
    assert_eq!(get(&s3, "delmd5", "obj").await, b"wire object");
    let resp = RawRequest::new("POST", "/delmd5", "delete")
        .header("content-md5", &crate::cksum::md5_b64(body.as_bytes()))
        .body(body)
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(absent(&s3, "delmd5", "obj").await);
}

#[tokio::test]
async fn a_body_cut_short_creates_nothing() {
    use std::io::{Read, Write};
    let server = Server::start();
    let s3 = bucket_with_object(&server, "short").await;
    let host = host_of(&server.endpoint);
    let mut req = RawRequest::new("PUT", "/short/cut", "").header("content-length", "100000");
    req.content_length = false;
    req.sign_with(&Signer::default(), &host, Some("UNSIGNED-PAYLOAD"));
    let mut head = format!("PUT /short/cut HTTP/1.1\r\nhost: {host}\r\n");
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&[b'x'; 40_000]).unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    // Whatever the server answers (400 IncompleteBody, or just closing), it must end the exchange...
    let mut sink = Vec::new();
    let _ = stream.read_to_end(&mut sink);
    if !sink.is_empty() {
        let text = String::from_utf8_lossy(&sink);
        assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    }
    // ...and store nothing.
    assert!(absent(&s3, "short", "cut").await);
    assert_eq!(crate::harness::all_keys(&s3, "short").await, ["obj"]);
}

/// Sends a request head with `Expect: 100-continue`, waits for the interim response, then the body.
/// Returns (interim response head or None, final raw response text).
fn expect_continue(server: &Server, req: &RawRequest) -> (Option<String>, String) {
    use std::io::{Read, Write};
    let host = host_of(&server.endpoint);
    let mut head = format!(
        "{} {} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\nexpect: 100-continue\r\n",
        req.method, req.path
    );
    head.push_str(&format!("content-length: {}\r\n", req.body.len()));
    for (k, v) in &req.headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = std::net::TcpStream::connect(&host).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => got.push(byte[0]),
            _ => break,
        }
        assert!(got.len() < 64 * 1024, "response head too long");
    }
    let first = String::from_utf8_lossy(&got).into_owned();
    if first.starts_with("HTTP/1.1 100") {
        stream.write_all(&req.body).unwrap();
        let mut rest = Vec::new();
        let _ = stream.read_to_end(&mut rest);
        (Some(first), String::from_utf8_lossy(&rest).into_owned())
    } else {
        let mut rest = got;
        let _ = stream.read_to_end(&mut rest);
        (None, String::from_utf8_lossy(&rest).into_owned())
    }
}

#[tokio::test]
async fn expect_100_continue() {
    let server = Server::start();
    let s3 = bucket_with_object(&server, "expect").await;
    let body = crate::harness::pattern(2 * 1024 * 1024, 77);
    // Signed correctly: 100 Continue, then the body, then 200.
    let req = RawRequest::new("PUT", "/expect/big", "")
        .body(body.clone())
        .signed(&server.endpoint);
    let (interim, fin) = expect_continue(&server, &req);
    assert!(
        interim.is_some(),
        "a valid request is told to continue: {fin}"
    );
    assert!(fin.starts_with("HTTP/1.1 200"), "{fin}");
    assert!(get(&s3, "expect", "big").await == body);
    // Refused up front: the final answer comes without 100 Continue and without reading the body.
    let host = host_of(&server.endpoint);
    let mut req = RawRequest::new("PUT", "/expect/forged", "").body(body);
    req.sign_with(
        &Signer {
            secret: "wrong".into(),
            ..Signer::default()
        },
        &host,
        Some("UNSIGNED-PAYLOAD"),
    );
    let (interim, fin) = expect_continue(&server, &req);
    assert!(
        interim.is_none(),
        "a refused request is not told to continue"
    );
    assert!(fin.starts_with("HTTP/1.1 403"), "{fin}");
    assert!(fin.contains("<Code>SignatureDoesNotMatch</Code>"), "{fin}");
    assert!(absent(&s3, "expect", "forged").await);
}
