//! Object operations: PutObject/GetObject round trips, stored headers and metadata, ETag, Content-MD5 and the
//! flexible checksums, overwrite, HeadObject, DeleteObject(s), awkward keys, key length, conditional writes.

use std::collections::HashMap;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode, Delete, ObjectIdentifier};

use crate::cksum::{checksum_b64, md5_b64, md5_hex};
use crate::harness::{Server, all_keys, body_of, get, pattern, put, status_and_code};
use crate::sigv4::RawRequest;

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn round_trips_at_boundary_sizes() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("sizes").send().await.unwrap();
    for (i, len) in [
        0,
        1,
        16 * KIB - 1,
        16 * KIB,
        16 * KIB + 1,
        MIB - 1,
        MIB,
        MIB + 1,
        5 * MIB + 3,
    ]
    .into_iter()
    .enumerate()
    {
        let key = format!("obj-{len}");
        let data = pattern(len, 1000 + i as u64);
        let etag = put(&s3, "sizes", &key, &data).await;
        assert_eq!(
            etag,
            format!("\"{}\"", md5_hex(&data)),
            "ETag of {len} bytes is the quoted MD5"
        );
        let out = s3
            .get_object()
            .bucket("sizes")
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(out.content_length(), Some(len as i64), "{len}");
        assert_eq!(out.e_tag(), Some(etag.as_str()));
        let body = body_of(out).await;
        assert!(
            body == data,
            "{len} bytes did not round trip (got {} bytes)",
            body.len()
        );
        let head = s3
            .head_object()
            .bucket("sizes")
            .key(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(head.content_length(), Some(len as i64));
        assert_eq!(head.e_tag(), Some(etag.as_str()));
    }
}

#[tokio::test]
async fn metadata_and_representation_headers_are_returned() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("meta").send().await.unwrap();
    let expires = DateTime::from_secs(1_900_000_000);
    s3.put_object()
        .bucket("meta")
        .key("doc.txt")
        .body(ByteStream::from_static(b"hello metadata"))
        .metadata("color", "blue")
        .metadata("owner-name", "Ada Lovelace")
        .content_type("text/plain; charset=utf-8")
        .content_encoding("identity")
        .content_disposition("attachment; filename=\"doc.txt\"")
        .content_language("en-GB")
        .cache_control("max-age=60, public")
        .expires(expires)
        .send()
        .await
        .unwrap();
    let want_meta: HashMap<String, String> = [("color", "blue"), ("owner-name", "Ada Lovelace")]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
    let got = s3
        .get_object()
        .bucket("meta")
        .key("doc.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(got.metadata(), Some(&want_meta));
    assert_eq!(got.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(got.content_encoding(), Some("identity"));
    assert_eq!(
        got.content_disposition(),
        Some("attachment; filename=\"doc.txt\"")
    );
    assert_eq!(got.content_language(), Some("en-GB"));
    assert_eq!(got.cache_control(), Some("max-age=60, public"));
    assert_eq!(got.expires_string(), Some("Sun, 17 Mar 2030 17:46:40 GMT"));
    assert!(got.last_modified().is_some());
    assert_eq!(body_of(got).await, b"hello metadata");
    let head = s3
        .head_object()
        .bucket("meta")
        .key("doc.txt")
        .send()
        .await
        .unwrap();
    assert_eq!(head.metadata(), Some(&want_meta));
    assert_eq!(head.content_type(), Some("text/plain; charset=utf-8"));
    assert_eq!(head.content_encoding(), Some("identity"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"doc.txt\"")
    );
    assert_eq!(head.content_language(), Some("en-GB"));
    assert_eq!(head.cache_control(), Some("max-age=60, public"));
    assert_eq!(head.expires_string(), Some("Sun, 17 Mar 2030 17:46:40 GMT"));
    // Without a Content-Type, S3 answers binary/octet-stream (the SDK always sends one, so go raw).
    let raw = RawRequest::new("PUT", "/meta/untyped", "")
        .body("x")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(raw.status, 200, "{}", raw.text());
    let head = s3
        .head_object()
        .bucket("meta")
        .key("untyped")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("binary/octet-stream"));
    assert!(
        head.metadata().is_none_or(HashMap::is_empty),
        "{:?}",
        head.metadata()
    );
}

#[tokio::test]
async fn content_encoding_survives_aws_chunked_framing() {
    // The SDK frames bodies as aws-chunked when it sends a trailing checksum; the object keeps only "gzip".
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("enc").send().await.unwrap();
    s3.put_object()
        .bucket("enc")
        .key("z")
        .body(ByteStream::from_static(b"not really gzip"))
        .content_encoding("gzip")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("enc")
        .key("z")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_encoding(), Some("gzip"));
}

#[tokio::test]
async fn user_metadata_over_2_kib_is_metadata_too_large() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("bigmeta").send().await.unwrap();
    let err = s3
        .put_object()
        .bucket("bigmeta")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .metadata("big", "v".repeat(2100))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "MetadataTooLarge".into()));
    let err = s3
        .head_object()
        .bucket("bigmeta")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
    // The limit is 2048 bytes of names (without the x-amz-meta- prefix) plus values.
    let at_limit = s3
        .put_object()
        .bucket("bigmeta")
        .key("edge")
        .body(ByteStream::from_static(b"x"))
        .metadata("ab", "v".repeat(1000))
        .metadata("cd", "w".repeat(1044))
        .send()
        .await;
    assert!(
        at_limit.is_ok(),
        "2048 bytes of metadata is allowed: {at_limit:?}"
    );
    let err = s3
        .put_object()
        .bucket("bigmeta")
        .key("edge2")
        .body(ByteStream::from_static(b"x"))
        .metadata("ab", "v".repeat(1000))
        .metadata("cd", "w".repeat(1045))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "MetadataTooLarge".into()));
}

#[tokio::test]
async fn content_md5_right_passes_wrong_is_bad_digest() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("md5").send().await.unwrap();
    let data = pattern(40_000, 7);
    s3.put_object()
        .bucket("md5")
        .key("good")
        .body(ByteStream::from(data.clone()))
        .content_md5(md5_b64(&data))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s3, "md5", "good").await, data);
    let err = s3
        .put_object()
        .bucket("md5")
        .key("bad")
        .body(ByteStream::from(data.clone()))
        .content_md5(md5_b64(b"something else"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "BadDigest".into()));
    let err = s3
        .head_object()
        .bucket("md5")
        .key("bad")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err).0,
        404,
        "a BadDigest upload leaves nothing behind"
    );
    // The same on the wire, with a plain signed body.
    let resp = RawRequest::new("PUT", "/md5/raw-bad", "")
        .header("content-md5", &md5_b64(b"other"))
        .body(data.clone())
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(
        (resp.status, resp.code().as_deref()),
        (400, Some("BadDigest")),
        "{}",
        resp.text()
    );
    let resp = RawRequest::new("PUT", "/md5/raw-good", "")
        .header("content-md5", &md5_b64(&data))
        .body(data.clone())
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.header("etag"),
        Some(format!("\"{}\"", md5_hex(&data)).as_str())
    );
    // Not base64 of 16 bytes: InvalidDigest.
    let resp = RawRequest::new("PUT", "/md5/raw-invalid", "")
        .header("content-md5", "not-a-digest")
        .body(data)
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(
        (resp.status, resp.code().as_deref()),
        (400, Some("InvalidDigest")),
        "{}",
        resp.text()
    );
}

fn returned_checksum(
    algo: &ChecksumAlgorithm,
    crc32: Option<&str>,
    crc32c: Option<&str>,
    crc64: Option<&str>,
    sha1: Option<&str>,
    sha256: Option<&str>,
) -> Option<String> {
    match algo {
        ChecksumAlgorithm::Crc32 => crc32,
        ChecksumAlgorithm::Crc32C => crc32c,
        ChecksumAlgorithm::Crc64Nvme => crc64,
        ChecksumAlgorithm::Sha1 => sha1,
        ChecksumAlgorithm::Sha256 => sha256,
        other => panic!("unexpected {other:?}"),
    }
    .map(str::to_owned)
}

#[tokio::test]
async fn flexible_checksums_are_verified_stored_and_returned() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("sums").send().await.unwrap();
    let algos = [
        ChecksumAlgorithm::Crc32,
        ChecksumAlgorithm::Crc32C,
        ChecksumAlgorithm::Crc64Nvme,
        ChecksumAlgorithm::Sha1,
        ChecksumAlgorithm::Sha256,
    ];
    for (i, algo) in algos.iter().enumerate() {
        for len in [0usize, 70_001] {
            let key = format!("{}-{len}", algo.as_str());
            let data = pattern(len, 50 + i as u64);
            let want = checksum_b64(algo.as_str(), &data);
            let out = s3
                .put_object()
                .bucket("sums")
                .key(&key)
                .body(ByteStream::from(data.clone()))
                .checksum_algorithm(algo.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{key}: {e:?}"));
            let put_sum = returned_checksum(
                algo,
                out.checksum_crc32(),
                out.checksum_crc32_c(),
                out.checksum_crc64_nvme(),
                out.checksum_sha1(),
                out.checksum_sha256(),
            );
            assert_eq!(
                put_sum.as_deref(),
                Some(want.as_str()),
                "PutObject echoes the {key} checksum"
            );
            let got = s3
                .get_object()
                .bucket("sums")
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            let get_sum = returned_checksum(
                algo,
                got.checksum_crc32(),
                got.checksum_crc32_c(),
                got.checksum_crc64_nvme(),
                got.checksum_sha1(),
                got.checksum_sha256(),
            );
            assert_eq!(
                get_sum.as_deref(),
                Some(want.as_str()),
                "GetObject returns the {key} checksum"
            );
            assert_eq!(body_of(got).await, data);
            let head = s3
                .head_object()
                .bucket("sums")
                .key(&key)
                .checksum_mode(ChecksumMode::Enabled)
                .send()
                .await
                .unwrap();
            let head_sum = returned_checksum(
                algo,
                head.checksum_crc32(),
                head.checksum_crc32_c(),
                head.checksum_crc64_nvme(),
                head.checksum_sha1(),
                head.checksum_sha256(),
            );
            assert_eq!(
                head_sum.as_deref(),
                Some(want.as_str()),
                "HeadObject returns the {key} checksum"
            );
        }
    }
    // Without x-amz-checksum-mode: ENABLED no checksum header is sent.
    let raw = RawRequest::new("HEAD", "/sums/SHA256-0", "")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(raw.status, 200);
    assert!(
        raw.header("x-amz-checksum-sha256").is_none(),
        "{:?}",
        raw.headers
    );
    let raw = RawRequest::new("HEAD", "/sums/SHA256-0", "")
        .header("x-amz-checksum-mode", "ENABLED")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(
        raw.header("x-amz-checksum-sha256"),
        Some(checksum_b64("SHA256", b"").as_str())
    );
}

#[tokio::test]
async fn checksum_headers_sent_up_front_are_verified() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("hdr").send().await.unwrap();
    let data = pattern(12_345, 3);
    for algo in ["CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"] {
        let header = format!("x-amz-checksum-{}", algo.to_ascii_lowercase());
        let good = RawRequest::new("PUT", &format!("/hdr/{algo}"), "")
            .header(&header, &checksum_b64(algo, &data))
            .body(data.clone())
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_eq!(good.status, 200, "{algo}: {}", good.text());
        assert_eq!(
            good.header(&header),
            Some(checksum_b64(algo, &data).as_str()),
            "{algo}"
        );
        let bad = RawRequest::new("PUT", &format!("/hdr/{algo}-bad"), "")
            .header(&header, &checksum_b64(algo, b"different bytes"))
            .body(data.clone())
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_eq!(
            (bad.status, bad.code().as_deref()),
            (400, Some("BadDigest")),
            "{algo}: {}",
            bad.text()
        );
        let err = s3
            .head_object()
            .bucket("hdr")
            .key(format!("{algo}-bad"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_and_code(&err).0,
            404,
            "{algo}: a refused upload leaves nothing behind"
        );
    }
    // The SDK path: a caller-provided CRC32 that does not match.
    let err = s3
        .put_object()
        .bucket("hdr")
        .key("sdk-bad")
        .body(ByteStream::from(data.clone()))
        .checksum_crc32(checksum_b64("CRC32", b"nope"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "BadDigest".into()));
}

#[tokio::test]
async fn overwrite_returns_the_new_object() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("over").send().await.unwrap();
    let sizes = [3 * MIB + 5, 10, 2 * MIB, 0, 20 * KIB];
    for (i, len) in sizes.into_iter().enumerate() {
        let data = pattern(len, 500 + i as u64);
        let etag = put(&s3, "over", "same", &data).await;
        let out = s3
            .get_object()
            .bucket("over")
            .key("same")
            .send()
            .await
            .unwrap();
        assert_eq!(out.e_tag(), Some(etag.as_str()));
        assert_eq!(out.content_length(), Some(len as i64));
        assert!(
            body_of(out).await == data,
            "overwrite #{i} ({len} bytes) reads back exactly"
        );
    }
    assert_eq!(all_keys(&s3, "over").await, ["same"]);
}

#[tokio::test]
async fn concurrent_overwrites_never_expose_a_mix() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mix").send().await.unwrap();
    let a = pattern(2 * MIB + 17, 1);
    let b = pattern(2 * MIB + 17, 2);
    put(&s3, "mix", "k", &a).await;
    let writer = {
        let (s3, a, b) = (s3.clone(), a.clone(), b.clone());
        tokio::spawn(async move {
            for i in 0..6 {
                put(&s3, "mix", "k", if i % 2 == 0 { &b } else { &a }).await;
            }
        })
    };
    for _ in 0..12 {
        let body = get(&s3, "mix", "k").await;
        assert!(
            body == a || body == b,
            "a read saw neither version ({} bytes)",
            body.len()
        );
    }
    writer.await.unwrap();
    assert!(get(&s3, "mix", "k").await == a, "the last write (A) wins");
}

#[tokio::test]
async fn head_object_fields_and_missing_key() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("head").send().await.unwrap();
    let data = pattern(777, 9);
    let etag = put(&s3, "head", "k", &data).await;
    let head = s3
        .head_object()
        .bucket("head")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(777));
    assert_eq!(head.e_tag(), Some(etag.as_str()));
    assert_eq!(head.accept_ranges(), Some("bytes"));
    assert!(head.last_modified().is_some());
    let err = s3
        .head_object()
        .bucket("head")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
    let err = s3
        .get_object()
        .bucket("head")
        .key("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
}

#[tokio::test]
async fn delete_object_existing_and_missing() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("del").send().await.unwrap();
    put(&s3, "del", "k", b"bye").await;
    s3.delete_object()
        .bucket("del")
        .key("k")
        .send()
        .await
        .unwrap();
    let err = s3
        .get_object()
        .bucket("del")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    // Deleting a key that does not exist succeeds with 204.
    s3.delete_object()
        .bucket("del")
        .key("never-was")
        .send()
        .await
        .unwrap();
    let raw = RawRequest::new("DELETE", "/del/never-was", "")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(raw.status, 204);
    assert!(raw.body.is_empty());
    assert!(all_keys(&s3, "del").await.is_empty());
}

fn delete_request(keys: &[&str], quiet: bool) -> Delete {
    let mut d = Delete::builder().quiet(quiet);
    for k in keys {
        d = d.objects(ObjectIdentifier::builder().key(*k).build().unwrap());
    }
    d.build().unwrap()
}

#[tokio::test]
async fn delete_objects_reports_each_key_and_quiet_reports_none() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("batch").send().await.unwrap();
    for k in ["one", "two", "dir/three", "four", "five", "six"] {
        put(&s3, "batch", k, k.as_bytes()).await;
    }
    let out = s3
        .delete_objects()
        .bucket("batch")
        .delete(delete_request(&["one", "two", "dir/three"], false))
        .send()
        .await
        .unwrap();
    let mut deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    assert_eq!(deleted, ["dir/three", "one", "two"]);
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    // Quiet: successes are not reported; a missing key counts as deleted.
    let out = s3
        .delete_objects()
        .bucket("batch")
        .delete(delete_request(&["four", "five", "missing"], true))
        .send()
        .await
        .unwrap();
    assert!(
        out.deleted().is_empty(),
        "quiet mode lists no deletions: {:?}",
        out.deleted()
    );
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    assert_eq!(all_keys(&s3, "batch").await, ["six"]);
    // A missing key in verbose mode is reported as deleted too.
    let out = s3
        .delete_objects()
        .bucket("batch")
        .delete(delete_request(&["ghost"], false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.deleted()
            .iter()
            .filter_map(|d| d.key())
            .collect::<Vec<_>>(),
        ["ghost"]
    );
}

#[tokio::test]
async fn delete_objects_over_1000_keys_is_malformed() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("toomany").send().await.unwrap();
    let keys: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
    let err = s3
        .delete_objects()
        .bucket("toomany")
        .delete(delete_request(&refs, true))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "MalformedXML".into()));
}

/// Keys that look like paths, escapes or URL syntax; each must stay exactly that key.
fn awkward_keys() -> Vec<String> {
    let mut keys: Vec<String> = [
        "with space",
        "  leading and trailing  ",
        "unicode-ü-日本語-🎉",
        "plus+sign",
        "percent%literal",
        "already%20encoded",
        "question?mark",
        "hash#tag",
        "amp&eq=semi;colon",
        "../x",
        "/abs",
        "a/../../b",
        "%2e%2e",
        "%2e%2e/%2e%2e/x",
        "..",
        "./dot",
        "a//double//slash",
        "trailing/",
        "back\\slash",
        "quote\"apos'lt<gt>",
        "tab\tnewline\n",
        "star*brackets[]{}|^`",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    // Very long segments: exactly 1024 bytes in total, one segment 1000 bytes.
    let long = format!("seg/{}/{}", "s".repeat(1000), "t".repeat(1024 - 1000 - 5));
    assert_eq!(long.len(), 1024);
    keys.push(long);
    // 1024 bytes of two-byte characters.
    keys.push("é".repeat(512));
    keys
}

#[tokio::test]
async fn awkward_keys_round_trip_and_list_back_exactly() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("keys").send().await.unwrap();
    let keys = awkward_keys();
    for (i, key) in keys.iter().enumerate() {
        let data = format!("body of key #{i}").into_bytes();
        s3.put_object()
            .bucket("keys")
            .key(key)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap_or_else(|e| panic!("put {key:?}: {e:?}"));
        let got = s3
            .get_object()
            .bucket("keys")
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("get {key:?}: {e:?}"));
        assert_eq!(body_of(got).await, data, "{key:?}");
    }
    let mut want = keys.clone();
    want.sort(); // UTF-8 byte order, as S3 lists
    // The SDK does not ask for encoding-type=url, so keys come back raw in the XML (newline included).
    let listed = all_keys(&s3, "keys").await;
    assert_eq!(listed, want);
    // And with encoding-type=url, decoded by the SDK.
    let out = s3
        .list_objects_v2()
        .bucket("keys")
        .encoding_type(aws_sdk_s3::types::EncodingType::Url)
        .send()
        .await
        .unwrap();
    let decoded: Vec<String> = out
        .contents()
        .iter()
        .filter_map(|o| o.key())
        .map(crate::list::query_unescape)
        .collect();
    assert_eq!(decoded, want);
    // Each key deletes as itself and nothing else.
    for key in &keys {
        s3.delete_object()
            .bucket("keys")
            .key(key)
            .send()
            .await
            .unwrap_or_else(|e| panic!("delete {key:?}: {e:?}"));
    }
    assert!(all_keys(&s3, "keys").await.is_empty());
}

#[tokio::test]
async fn nul_in_a_key_is_just_a_byte() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("nul").send().await.unwrap();
    put(&s3, "nul", "a\0b", b"nul key").await;
    assert_eq!(get(&s3, "nul", "a\0b").await, b"nul key");
    let err = s3
        .get_object()
        .bucket("nul")
        .key("a")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
    let raw = RawRequest::new("GET", "/nul", "list-type=2&encoding-type=url")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert!(raw.text().contains("<Key>a%00b</Key>"), "{}", raw.text());
}

#[tokio::test]
async fn key_longer_than_1024_bytes_is_key_too_long() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("long").send().await.unwrap();
    put(&s3, "long", &"k".repeat(1024), b"ok").await;
    for key in ["k".repeat(1025), format!("{}é", "k".repeat(1023))] {
        assert_eq!(key.len(), 1025);
        let err = s3
            .put_object()
            .bucket("long")
            .key(&key)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_and_code(&err), (400, "KeyTooLongError".into()));
    }
    assert_eq!(all_keys(&s3, "long").await, ["k".repeat(1024)]);
}

#[tokio::test]
async fn put_larger_than_5_gib_is_entity_too_large() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("huge").send().await.unwrap();
    // Declared length only: the server must refuse before reading a byte.
    let mut req = RawRequest::new("PUT", "/huge/k", "");
    req.content_length = false;
    let req = req.header(
        "content-length",
        &(5u64 * 1024 * 1024 * 1024 + 1).to_string(),
    );
    let mut req = req;
    let host = crate::sigv4::host_of(&server.endpoint);
    req.sign_with(
        &crate::sigv4::Signer::default(),
        &host,
        Some("UNSIGNED-PAYLOAD"),
    );
    let resp = req.send(&server.endpoint);
    assert_eq!(
        (resp.status, resp.code().as_deref()),
        (400, Some("EntityTooLarge")),
        "{}",
        resp.text()
    );
}

#[tokio::test]
async fn if_none_match_star_creates_only_once() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("cond").send().await.unwrap();
    s3.put_object()
        .bucket("cond")
        .key("once")
        .body(ByteStream::from_static(b"first"))
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    let err = s3
        .put_object()
        .bucket("cond")
        .key("once")
        .body(ByteStream::from_static(b"second"))
        .if_none_match("*")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (412, "PreconditionFailed".into()));
    assert_eq!(get(&s3, "cond", "once").await, b"first");
    // After a delete the key may be created again.
    s3.delete_object()
        .bucket("cond")
        .key("once")
        .send()
        .await
        .unwrap();
    s3.put_object()
        .bucket("cond")
        .key("once")
        .body(ByteStream::from_static(b"third"))
        .if_none_match("*")
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s3, "cond", "once").await, b"third");
}

#[tokio::test]
async fn if_match_on_put_with_right_and_wrong_etag() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("cas").send().await.unwrap();
    let v1 = put(&s3, "cas", "k", b"version one").await;
    let v2 = s3
        .put_object()
        .bucket("cas")
        .key("k")
        .body(ByteStream::from_static(b"version two"))
        .if_match(&v1)
        .send()
        .await
        .unwrap()
        .e_tag()
        .unwrap()
        .to_owned();
    assert_eq!(get(&s3, "cas", "k").await, b"version two");
    // v1 is stale now.
    let err = s3
        .put_object()
        .bucket("cas")
        .key("k")
        .body(ByteStream::from_static(b"version three"))
        .if_match(&v1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (412, "PreconditionFailed".into()));
    assert_eq!(get(&s3, "cas", "k").await, b"version two");
    // Unquoted ETags are accepted too.
    s3.put_object()
        .bucket("cas")
        .key("k")
        .body(ByteStream::from_static(b"version three"))
        .if_match(v2.trim_matches('"'))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s3, "cas", "k").await, b"version three");
    // If-Match on a key that does not exist: S3 answers 404 NoSuchKey and writes nothing.
    let err = s3
        .put_object()
        .bucket("cas")
        .key("absent")
        .body(ByteStream::from_static(b"x"))
        .if_match(&v1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    // If-Match: * means "any existing object".
    let err = s3
        .put_object()
        .bucket("cas")
        .key("absent")
        .body(ByteStream::from_static(b"x"))
        .if_match("*")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    s3.put_object()
        .bucket("cas")
        .key("k")
        .body(ByteStream::from_static(b"version four"))
        .if_match("*")
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s3, "cas", "k").await, b"version four");
    assert_eq!(all_keys(&s3, "cas").await, ["k"]);
}

#[tokio::test]
async fn racing_conditional_creates_have_one_winner() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("race").send().await.unwrap();
    let mut set = tokio::task::JoinSet::new();
    for i in 0..6u64 {
        let s3 = s3.clone();
        set.spawn(async move {
            let body = pattern(300_000, 900 + i);
            let result = s3
                .put_object()
                .bucket("race")
                .key("k")
                .body(ByteStream::from(body.clone()))
                .if_none_match("*")
                .send()
                .await;
            (body, result.map(|_| ()).map_err(|e| status_and_code(&e)))
        });
    }
    let mut winners = Vec::new();
    while let Some(joined) = set.join_next().await {
        let (body, result) = joined.unwrap();
        match result {
            Ok(()) => winners.push(body),
            Err((status, code)) => assert!(
                (status, code.as_str()) == (412, "PreconditionFailed")
                    || (status, code.as_str()) == (409, "ConditionalRequestConflict"),
                "{status} {code}"
            ),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one conditional create wins");
    assert!(
        get(&s3, "race", "k").await == winners[0],
        "the winner's bytes are stored"
    );
}

#[tokio::test]
async fn delete_objects_with_keys_that_need_xml_escaping() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("xmlkeys").send().await.unwrap();
    let keys = [
        "a&b",
        "<tag>",
        "quote\"s",
        "apos'",
        "ü/日本",
        "sp ace",
        "keep",
    ];
    for k in keys {
        put(&s3, "xmlkeys", k, k.as_bytes()).await;
    }
    let out = s3
        .delete_objects()
        .bucket("xmlkeys")
        .delete(delete_request(&keys[..6], false))
        .send()
        .await
        .unwrap();
    let mut deleted: Vec<_> = out.deleted().iter().filter_map(|d| d.key()).collect();
    deleted.sort();
    let mut want = keys[..6].to_vec();
    want.sort();
    assert_eq!(deleted, want);
    assert_eq!(all_keys(&s3, "xmlkeys").await, ["keep"]);
}
