//! Object tagging: Put/Get/DeleteObjectTagging, x-amz-tagging on PUT, x-amz-tagging-count, the tag rules.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{Tag, Tagging};

use crate::harness::{Server, get, put, status_and_code};
use crate::sigv4::RawRequest;

fn tagging(pairs: &[(&str, &str)]) -> Tagging {
    let tags: Vec<Tag> = pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
        .collect();
    Tagging::builder().set_tag_set(Some(tags)).build().unwrap()
}

async fn tags(s3: &Client, bucket: &str, key: &str) -> Vec<(String, String)> {
    let out = s3
        .get_object_tagging()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    out.tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect()
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn put_get_delete_object_tagging() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("tagged").send().await.unwrap();
    let etag = put(&s3, "tagged", "k", b"tag me").await;
    assert!(
        tags(&s3, "tagged", "k").await.is_empty(),
        "a new object has no tags"
    );
    let head = s3
        .head_object()
        .bucket("tagged")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.tag_count(),
        None,
        "no x-amz-tagging-count without tags"
    );

    s3.put_object_tagging()
        .bucket("tagged")
        .key("k")
        .tagging(tagging(&[
            ("project", "strata"),
            ("env", "test"),
            ("empty", ""),
        ]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(&s3, "tagged", "k").await,
        owned(&[("project", "strata"), ("env", "test"), ("empty", "")])
    );
    let head = s3
        .head_object()
        .bucket("tagged")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.tag_count(), Some(3));
    assert_eq!(
        head.e_tag(),
        Some(etag.as_str()),
        "tagging does not change the ETag"
    );
    let got = s3
        .get_object()
        .bucket("tagged")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(3));

    // PutObjectTagging replaces the whole set.
    s3.put_object_tagging()
        .bucket("tagged")
        .key("k")
        .tagging(tagging(&[("only", "one")]))
        .send()
        .await
        .unwrap();
    assert_eq!(tags(&s3, "tagged", "k").await, owned(&[("only", "one")]));

    // DeleteObjectTagging: 204, no tags, data untouched.
    let raw = RawRequest::new("DELETE", "/tagged/k", "tagging")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(raw.status, 204, "{}", raw.text());
    assert!(tags(&s3, "tagged", "k").await.is_empty());
    let head = s3
        .head_object()
        .bucket("tagged")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.tag_count(), None);
    assert_eq!(get(&s3, "tagged", "k").await, b"tag me");
    s3.delete_object_tagging()
        .bucket("tagged")
        .key("k")
        .send()
        .await
        .unwrap();

    // Overwriting the object without x-amz-tagging drops its tags.
    s3.put_object_tagging()
        .bucket("tagged")
        .key("k")
        .tagging(tagging(&[("a", "1")]))
        .send()
        .await
        .unwrap();
    put(&s3, "tagged", "k", b"new body").await;
    assert!(
        tags(&s3, "tagged", "k").await.is_empty(),
        "a new object starts without the old tags"
    );
}

#[tokio::test]
async fn x_amz_tagging_on_put_and_tagging_count() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("hdrtags").send().await.unwrap();
    s3.put_object()
        .bucket("hdrtags")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .tagging("color=red&size=large%20ish&sym=a%26b%3Dc")
        .send()
        .await
        .unwrap();
    assert_eq!(
        tags(&s3, "hdrtags", "k").await,
        owned(&[("color", "red"), ("size", "large ish"), ("sym", "a&b=c")])
    );
    let got = s3
        .get_object()
        .bucket("hdrtags")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(3));
    let raw = RawRequest::new("HEAD", "/hdrtags/k", "")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(raw.header("x-amz-tagging-count"), Some("3"));
    // A key with an empty value.
    s3.put_object()
        .bucket("hdrtags")
        .key("e")
        .body(ByteStream::from_static(b"x"))
        .tagging("flag=")
        .send()
        .await
        .unwrap();
    assert_eq!(tags(&s3, "hdrtags", "e").await, owned(&[("flag", "")]));
}

#[tokio::test]
async fn more_than_10_tags_is_invalid_tag() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("many").send().await.unwrap();
    put(&s3, "many", "k", b"x").await;
    let ten: Vec<(String, String)> = (0..10)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    let eleven: Vec<(String, String)> = (0..11)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    let as_refs = |v: &[(String, String)]| {
        v.iter()
            .map(|(a, b)| (a.clone(), b.clone()))
            .collect::<Vec<_>>()
    };
    let t = |v: &[(String, String)]| {
        let refs: Vec<(&str, &str)> = v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
        tagging(&refs)
    };
    s3.put_object_tagging()
        .bucket("many")
        .key("k")
        .tagging(t(&ten))
        .send()
        .await
        .unwrap();
    assert_eq!(tags(&s3, "many", "k").await, as_refs(&ten));
    let err = s3
        .put_object_tagging()
        .bucket("many")
        .key("k")
        .tagging(t(&eleven))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidTag".into()));
    assert_eq!(
        tags(&s3, "many", "k").await,
        as_refs(&ten),
        "a refused tag set changes nothing"
    );
    // The same limit through x-amz-tagging.
    let header: String = eleven
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let err = s3
        .put_object()
        .bucket("many")
        .key("new")
        .body(ByteStream::from_static(b"x"))
        .tagging(header)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidTag".into()));
    let err = s3
        .head_object()
        .bucket("many")
        .key("new")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
}

#[tokio::test]
async fn duplicate_and_oversized_tags_are_invalid_tag() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("dups").send().await.unwrap();
    put(&s3, "dups", "k", b"x").await;
    let long_key = "k".repeat(129);
    let long_value = "v".repeat(257);
    let bad: Vec<Vec<(&str, &str)>> = vec![
        vec![("same", "1"), ("same", "2")],
        vec![(long_key.as_str(), "v")],
        vec![("k", long_value.as_str())],
    ];
    for set in bad {
        let err = s3
            .put_object_tagging()
            .bucket("dups")
            .key("k")
            .tagging(tagging(&set))
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_and_code(&err), (400, "InvalidTag".into()), "{set:?}");
    }
    // At the limits is fine.
    let key128 = "k".repeat(128);
    let value256 = "v".repeat(256);
    s3.put_object_tagging()
        .bucket("dups")
        .key("k")
        .tagging(tagging(&[(key128.as_str(), value256.as_str())]))
        .send()
        .await
        .unwrap();
    let err = s3
        .put_object()
        .bucket("dups")
        .key("hdr")
        .body(ByteStream::from_static(b"x"))
        .tagging("a=1&a=2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidTag".into()));
}

#[tokio::test]
async fn tagging_a_missing_key_or_bucket() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("nokey").send().await.unwrap();
    let err = s3
        .put_object_tagging()
        .bucket("nokey")
        .key("ghost")
        .tagging(tagging(&[("a", "b")]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    let err = s3
        .get_object_tagging()
        .bucket("nokey")
        .key("ghost")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    let err = s3
        .delete_object_tagging()
        .bucket("nokey")
        .key("ghost")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    let err = s3
        .get_object_tagging()
        .bucket("nobucket")
        .key("ghost")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
    // Tagging a missing key must not create it.
    let err = s3
        .head_object()
        .bucket("nokey")
        .key("ghost")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
}

#[tokio::test]
async fn get_object_tagging_xml_shape() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("shape").send().await.unwrap();
    s3.put_object()
        .bucket("shape")
        .key("k")
        .body(ByteStream::from_static(b"x"))
        .tagging("a%3Cb=c%26d")
        .send()
        .await
        .unwrap();
    let raw = RawRequest::new("GET", "/shape/k", "tagging")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(raw.status, 200);
    let text = raw.text();
    assert!(text.contains("<Tagging"), "{text}");
    assert!(
        text.contains("<TagSet><Tag><Key>a&lt;b</Key><Value>c&amp;d</Value></Tag></TagSet>"),
        "{text}"
    );
}
