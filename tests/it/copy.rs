//! CopyObject: same and other bucket, metadata and tagging directives, copy onto itself, copy-source
//! conditions, missing sources.

use std::collections::HashMap;

use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{MetadataDirective, TaggingDirective};

use crate::cksum::md5_hex;
use crate::harness::{Server, get, pattern, put, status_and_code};
use crate::sigv4::uri_encode;

fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).into(), (*v).into()))
        .collect()
}

async fn put_with_meta(s3: &aws_sdk_s3::Client, bucket: &str, key: &str, data: &[u8]) {
    s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .content_type("text/x-source")
        .cache_control("max-age=5")
        .metadata("origin", "source")
        .metadata("shade", "green")
        .tagging("team=storage&tier=hot")
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn copy_within_and_across_buckets_keeps_bytes_and_etag() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("src").send().await.unwrap();
    s3.create_bucket().bucket("dst").send().await.unwrap();
    for (i, len) in [0usize, 100, 16 * 1024 + 1, 5 * 1024 * 1024 + 3]
        .into_iter()
        .enumerate()
    {
        let key = format!("obj-{len}");
        let data = pattern(len, 70 + i as u64);
        let src_etag = put(&s3, "src", &key, &data).await;
        assert_eq!(src_etag, format!("\"{}\"", md5_hex(&data)));
        for (bucket, dest) in [("src", format!("{key}-copy")), ("dst", key.clone())] {
            let out = s3
                .copy_object()
                .bucket(bucket)
                .key(&dest)
                .copy_source(format!("src/{key}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("copy to {bucket}/{dest}: {e:?}"));
            let result = out.copy_object_result().expect("CopyObjectResult");
            assert_eq!(
                result.e_tag(),
                Some(src_etag.as_str()),
                "copied ETag is the source MD5"
            );
            assert!(result.last_modified().is_some());
            assert!(
                get(&s3, bucket, &dest).await == data,
                "{bucket}/{dest}: bytes equal"
            );
            let head = s3
                .head_object()
                .bucket(bucket)
                .key(&dest)
                .send()
                .await
                .unwrap();
            assert_eq!(head.e_tag(), Some(src_etag.as_str()));
        }
    }
    // The source is untouched.
    assert_eq!(get(&s3, "src", "obj-100").await, pattern(100, 71));
}

#[tokio::test]
async fn copy_source_with_encoded_awkward_keys() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("enc").send().await.unwrap();
    for key in [
        "with space/and+plus",
        "unicode-ü-日本",
        "percent%sign",
        "../up",
        "q?mark#hash",
    ] {
        put(&s3, "enc", key, key.as_bytes()).await;
        let dest = format!("copied/{key}");
        s3.copy_object()
            .bucket("enc")
            .key(&dest)
            .copy_source(format!("enc/{}", uri_encode(key.as_bytes(), true)))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{key:?}: {e:?}"));
        assert_eq!(get(&s3, "enc", &dest).await, key.as_bytes(), "{key:?}");
    }
    // A leading slash on the copy source is accepted too.
    s3.copy_object()
        .bucket("enc")
        .key("slashed")
        .copy_source("/enc/unicode-%C3%BC-%E6%97%A5%E6%9C%AC")
        .send()
        .await
        .unwrap();
    assert_eq!(
        get(&s3, "enc", "slashed").await,
        "unicode-ü-日本".as_bytes()
    );
}

#[tokio::test]
async fn metadata_directive_copy_and_replace() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mdb").send().await.unwrap();
    put_with_meta(&s3, "mdb", "src", b"metadata source").await;
    // COPY (the default): metadata and representation headers come from the source; request headers are ignored.
    s3.copy_object()
        .bucket("mdb")
        .key("copied")
        .copy_source("mdb/src")
        .metadata("ignored", "yes")
        .content_type("application/ignored")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("mdb")
        .key("copied")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata(),
        Some(&meta(&[("origin", "source"), ("shade", "green")]))
    );
    assert_eq!(head.content_type(), Some("text/x-source"));
    assert_eq!(head.cache_control(), Some("max-age=5"));
    s3.copy_object()
        .bucket("mdb")
        .key("copied-explicit")
        .copy_source("mdb/src")
        .metadata_directive(MetadataDirective::Copy)
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("mdb")
        .key("copied-explicit")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.metadata(),
        Some(&meta(&[("origin", "source"), ("shade", "green")]))
    );
    // REPLACE: only what the request carries.
    s3.copy_object()
        .bucket("mdb")
        .key("replaced")
        .copy_source("mdb/src")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("fresh", "value")
        .content_type("application/fresh")
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("mdb")
        .key("replaced")
        .send()
        .await
        .unwrap();
    assert_eq!(head.metadata(), Some(&meta(&[("fresh", "value")])));
    assert_eq!(head.content_type(), Some("application/fresh"));
    assert_eq!(
        head.cache_control(),
        None,
        "REPLACE drops headers the request did not send"
    );
    assert_eq!(get(&s3, "mdb", "replaced").await, b"metadata source");
}

#[tokio::test]
async fn copy_onto_itself_needs_replace() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("self").send().await.unwrap();
    put_with_meta(&s3, "self", "k", b"self copy").await;
    let err = s3
        .copy_object()
        .bucket("self")
        .key("k")
        .copy_source("self/k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidRequest".into()));
    let err = s3
        .copy_object()
        .bucket("self")
        .key("k")
        .copy_source("self/k")
        .metadata_directive(MetadataDirective::Copy)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidRequest".into()));
    let before = s3
        .head_object()
        .bucket("self")
        .key("k")
        .send()
        .await
        .unwrap();
    s3.copy_object()
        .bucket("self")
        .key("k")
        .copy_source("self/k")
        .metadata_directive(MetadataDirective::Replace)
        .metadata("generation", "2")
        .send()
        .await
        .unwrap();
    let after = s3
        .head_object()
        .bucket("self")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(after.metadata(), Some(&meta(&[("generation", "2")])));
    assert_eq!(after.e_tag(), before.e_tag(), "same bytes, same ETag");
    assert_eq!(get(&s3, "self", "k").await, b"self copy");
}

#[tokio::test]
async fn copy_source_conditions() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("ccb").send().await.unwrap();
    let etag = put(&s3, "ccb", "src", b"conditional source").await;
    let lm = s3
        .head_object()
        .bucket("ccb")
        .key("src")
        .send()
        .await
        .unwrap()
        .last_modified()
        .copied()
        .unwrap();
    let day_before = DateTime::from_secs(lm.secs() - 86_400);
    let other = "\"00000000000000000000000000000000\"";
    let copy = |dest: &str| {
        s3.copy_object()
            .bucket("ccb")
            .key(dest)
            .copy_source("ccb/src")
    };
    // Failing conditions: 412 PreconditionFailed and no object.
    let failing = [
        (
            "if-match",
            copy("f1").copy_source_if_match(other).send().await,
        ),
        (
            "if-none-match",
            copy("f2").copy_source_if_none_match(&etag).send().await,
        ),
        (
            "if-modified-since",
            copy("f3").copy_source_if_modified_since(lm).send().await,
        ),
        (
            "if-unmodified-since",
            copy("f4")
                .copy_source_if_unmodified_since(day_before)
                .send()
                .await,
        ),
    ];
    for (i, (name, result)) in failing.into_iter().enumerate() {
        let err = result.expect_err(name);
        assert_eq!(
            status_and_code(&err),
            (412, "PreconditionFailed".into()),
            "{name}"
        );
        let err = s3
            .head_object()
            .bucket("ccb")
            .key(format!("f{}", i + 1))
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_and_code(&err).0, 404, "{name}: nothing written");
    }
    // Holding conditions copy.
    copy("p1").copy_source_if_match(&etag).send().await.unwrap();
    copy("p2")
        .copy_source_if_none_match(other)
        .send()
        .await
        .unwrap();
    copy("p3")
        .copy_source_if_modified_since(day_before)
        .send()
        .await
        .unwrap();
    copy("p4")
        .copy_source_if_unmodified_since(lm)
        .send()
        .await
        .unwrap();
    // AWS precedence: if-match true with if-unmodified-since false copies; if-none-match false with
    // if-modified-since true fails.
    copy("p5")
        .copy_source_if_match(&etag)
        .copy_source_if_unmodified_since(day_before)
        .send()
        .await
        .unwrap();
    let err = copy("f5")
        .copy_source_if_none_match(&etag)
        .copy_source_if_modified_since(day_before)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (412, "PreconditionFailed".into()));
    for k in ["p1", "p2", "p3", "p4", "p5"] {
        assert_eq!(get(&s3, "ccb", k).await, b"conditional source", "{k}");
    }
}

#[tokio::test]
async fn copy_of_missing_source_or_bucket() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("have").send().await.unwrap();
    put(&s3, "have", "k", b"x").await;
    let err = s3
        .copy_object()
        .bucket("have")
        .key("dest")
        .copy_source("have/missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    let err = s3
        .copy_object()
        .bucket("have")
        .key("dest")
        .copy_source("nobucket/k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
    let err = s3
        .copy_object()
        .bucket("nobucket")
        .key("dest")
        .copy_source("have/k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
    let err = s3
        .head_object()
        .bucket("have")
        .key("dest")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
}

#[tokio::test]
async fn tagging_directive_copy_and_replace() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("tags").send().await.unwrap();
    put_with_meta(&s3, "tags", "src", b"tagged source").await;
    let tags_of = |key: &'static str| {
        let s3 = s3.clone();
        async move {
            let out = s3
                .get_object_tagging()
                .bucket("tags")
                .key(key)
                .send()
                .await
                .unwrap();
            let mut t: Vec<(String, String)> = out
                .tag_set()
                .iter()
                .map(|t| (t.key().to_owned(), t.value().to_owned()))
                .collect();
            t.sort();
            t
        }
    };
    let src_tags = vec![
        ("team".to_owned(), "storage".to_owned()),
        ("tier".to_owned(), "hot".to_owned()),
    ];
    assert_eq!(tags_of("src").await, src_tags);
    // Default (COPY): the source's tags.
    s3.copy_object()
        .bucket("tags")
        .key("default")
        .copy_source("tags/src")
        .tagging("ignored=1")
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of("default").await, src_tags);
    s3.copy_object()
        .bucket("tags")
        .key("copy")
        .copy_source("tags/src")
        .tagging_directive(TaggingDirective::Copy)
        .send()
        .await
        .unwrap();
    assert_eq!(tags_of("copy").await, src_tags);
    // REPLACE: the request's x-amz-tagging.
    s3.copy_object()
        .bucket("tags")
        .key("replace")
        .copy_source("tags/src")
        .tagging_directive(TaggingDirective::Replace)
        .tagging("new=tag&second=2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags_of("replace").await,
        vec![("new".into(), "tag".into()), ("second".into(), "2".into())]
    );
    // REPLACE without x-amz-tagging: no tags.
    s3.copy_object()
        .bucket("tags")
        .key("none")
        .copy_source("tags/src")
        .tagging_directive(TaggingDirective::Replace)
        .send()
        .await
        .unwrap();
    assert!(tags_of("none").await.is_empty());
    let head = s3
        .head_object()
        .bucket("tags")
        .key("replace")
        .send()
        .await
        .unwrap();
    assert_eq!(head.tag_count(), Some(2));
    let got = s3
        .get_object()
        .bucket("tags")
        .key("replace")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(2));
}

#[tokio::test]
async fn unknown_directive_values_are_invalid_argument() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("dirv").send().await.unwrap();
    put(&s3, "dirv", "src", b"x").await;
    for header in ["x-amz-metadata-directive", "x-amz-tagging-directive"] {
        let resp = crate::sigv4::RawRequest::new("PUT", "/dirv/dest", "")
            .header("x-amz-copy-source", "/dirv/src")
            .header(header, "MERGE")
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_eq!(
            (resp.status, resp.code().as_deref()),
            (400, Some("InvalidArgument")),
            "{header}: {}",
            resp.text()
        );
    }
    let err = s3
        .head_object()
        .bucket("dirv")
        .key("dest")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
}

#[tokio::test]
async fn copy_with_a_new_checksum_algorithm() {
    use aws_sdk_s3::types::{ChecksumAlgorithm, ChecksumMode};
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("csum").send().await.unwrap();
    let data = pattern(100_003, 5);
    put(&s3, "csum", "src", &data).await;
    let out = s3
        .copy_object()
        .bucket("csum")
        .key("dst")
        .copy_source("csum/src")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .send()
        .await
        .unwrap();
    let want = crate::cksum::checksum_b64("SHA256", &data);
    assert_eq!(
        out.copy_object_result().and_then(|r| r.checksum_sha256()),
        Some(want.as_str())
    );
    let head = s3
        .head_object()
        .bucket("csum")
        .key("dst")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_sha256(), Some(want.as_str()));
    assert!(get(&s3, "csum", "dst").await == data);
}
