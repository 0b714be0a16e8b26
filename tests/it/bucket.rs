//! Bucket operations: ListBuckets, CreateBucket (LocationConstraint, name rules, re-create), HeadBucket,
//! DeleteBucket, GetBucketLocation.

use aws_sdk_s3::types::{BucketLocationConstraint, CreateBucketConfiguration};

use crate::harness::{Server, put, status_and_code};
use crate::sigv4::RawRequest;

#[tokio::test]
async fn list_buckets_names_sorted_with_creation_dates() {
    let server = Server::start();
    let s3 = server.client();
    let empty = s3.list_buckets().send().await.unwrap();
    assert!(empty.buckets().is_empty(), "{:?}", empty.buckets());
    for name in ["zeta-bucket", "alpha-bucket", "mid.bucket.1"] {
        s3.create_bucket().bucket(name).send().await.unwrap();
    }
    let out = s3.list_buckets().send().await.unwrap();
    let names: Vec<_> = out.buckets().iter().filter_map(|b| b.name()).collect();
    assert_eq!(names, ["alpha-bucket", "mid.bucket.1", "zeta-bucket"]);
    let year_2020 = aws_smithy_types::DateTime::from_secs(1_577_836_800);
    for b in out.buckets() {
        let created = b
            .creation_date()
            .unwrap_or_else(|| panic!("no CreationDate for {:?}", b.name()));
        assert!(created.secs() > year_2020.secs(), "{created:?}");
    }
    assert!(
        out.owner().and_then(|o| o.id()).is_some(),
        "Owner/ID is present"
    );
}

#[tokio::test]
async fn create_bucket_with_and_without_location_constraint() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("plain").send().await.unwrap();
    // A constraint naming the endpoint's own region is accepted (aws-cli and most SDK users send one).
    s3.create_bucket()
        .bucket("constrained")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::from("us-east-1"))
                .build(),
        )
        .send()
        .await
        .unwrap();
    s3.head_bucket().bucket("constrained").send().await.unwrap();
    let err = s3
        .create_bucket()
        .bucket("elsewhere")
        .create_bucket_configuration(
            CreateBucketConfiguration::builder()
                .location_constraint(BucketLocationConstraint::EuWest1)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (400, "IllegalLocationConstraintException".into())
    );
    let err = s3
        .head_bucket()
        .bucket("elsewhere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err).0,
        404,
        "a refused bucket is not created"
    );
}

#[tokio::test]
async fn create_bucket_malformed_configuration_is_malformed_xml() {
    let server = Server::start();
    let resp = RawRequest::new("PUT", "/badconf", "")
        .body("<CreateBucketConfiguration><LocationConstraint>")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(
        (resp.status, resp.code().as_deref()),
        (400, Some("MalformedXML")),
        "{}",
        resp.text()
    );
}

#[tokio::test]
async fn recreating_an_owned_bucket_is_bucket_already_owned_by_you() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mine").send().await.unwrap();
    put(&s3, "mine", "keep", b"still here").await;
    let err = s3.create_bucket().bucket("mine").send().await.unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (409, "BucketAlreadyOwnedByYou".into())
    );
    assert_eq!(
        crate::harness::get(&s3, "mine", "keep").await,
        b"still here",
        "re-create must not wipe the bucket"
    );
}

#[tokio::test]
async fn invalid_bucket_names_are_refused() {
    let server = Server::start();
    let long = "a".repeat(64);
    let bad = [
        "ab",            // too short
        long.as_str(),   // too long
        "Uppercase",     // upper-case letters
        "under_score",   // underscore
        "-leading-dash", // must start with a letter or digit
        "trailing-dash-",
        "double..dots",
        "dot.-dash",
        "192.168.5.4", // formatted as an IP address
        "xn--prefixed",
        "ends-s3alias",
    ];
    for name in bad {
        let resp = RawRequest::new("PUT", &format!("/{name}"), "")
            .signed(&server.endpoint)
            .send(&server.endpoint);
        assert_eq!(
            (resp.status, resp.code().as_deref()),
            (400, Some("InvalidBucketName")),
            "{name}: {}",
            resp.text()
        );
    }
    // The SDK path reaches the same rule.
    let s3 = server.client();
    let err = s3
        .create_bucket()
        .bucket("Bad_Name")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidBucketName".into()));
    let out = s3.list_buckets().send().await.unwrap();
    assert!(
        out.buckets().is_empty(),
        "no bucket was created: {:?}",
        out.buckets()
    );
    // Edge cases that are valid.
    for good in ["abc", &"b".repeat(63), "a.b-c.1"] {
        s3.create_bucket()
            .bucket(good)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{good}: {e:?}"));
    }
}

#[tokio::test]
async fn head_bucket_existing_and_missing() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("here").send().await.unwrap();
    let out = s3.head_bucket().bucket("here").send().await.unwrap();
    assert_eq!(out.bucket_region(), Some("us-east-1"));
    let err = s3
        .head_bucket()
        .bucket("not-here")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
    let raw = RawRequest::new("HEAD", "/not-here", "")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(raw.status, 404);
    assert!(raw.body.is_empty(), "HEAD errors carry no body");
    assert!(raw.header("x-amz-request-id").is_some());
}

#[tokio::test]
async fn delete_bucket_not_empty_then_empty_then_missing() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("doomed").send().await.unwrap();
    put(&s3, "doomed", "a", b"1").await;
    put(&s3, "doomed", "dir/b", b"2").await;
    let err = s3
        .delete_bucket()
        .bucket("doomed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (409, "BucketNotEmpty".into()));
    s3.head_bucket().bucket("doomed").send().await.unwrap();
    s3.delete_object()
        .bucket("doomed")
        .key("a")
        .send()
        .await
        .unwrap();
    let err = s3
        .delete_bucket()
        .bucket("doomed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (409, "BucketNotEmpty".into()));
    s3.delete_object()
        .bucket("doomed")
        .key("dir/b")
        .send()
        .await
        .unwrap();
    s3.delete_bucket().bucket("doomed").send().await.unwrap();
    let err = s3.head_bucket().bucket("doomed").send().await.unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
    let err = s3
        .delete_bucket()
        .bucket("doomed")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
    let list = s3.list_buckets().send().await.unwrap();
    assert!(list.buckets().is_empty());
    // The name is free again.
    s3.create_bucket().bucket("doomed").send().await.unwrap();
    let listed = s3.list_objects_v2().bucket("doomed").send().await.unwrap();
    assert_eq!(
        listed.key_count(),
        Some(0),
        "a re-created bucket starts empty"
    );
}

#[tokio::test]
async fn get_bucket_location() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("where").send().await.unwrap();
    let out = s3
        .get_bucket_location()
        .bucket("where")
        .send()
        .await
        .unwrap();
    // us-east-1 is reported as an empty LocationConstraint.
    let loc = out
        .location_constraint()
        .map(|l| l.as_str().to_owned())
        .unwrap_or_default();
    assert_eq!(loc, "");
    let raw = RawRequest::new("GET", "/where", "location")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(raw.status, 200);
    assert!(raw.text().contains("<LocationConstraint"), "{}", raw.text());
    let err = s3
        .get_bucket_location()
        .bucket("nowhere")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
}

#[tokio::test]
async fn operations_on_a_missing_bucket_are_no_such_bucket() {
    let server = Server::start();
    let s3 = server.client();
    let err = s3
        .put_object()
        .bucket("ghost")
        .key("k")
        .body(aws_sdk_s3::primitives::ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
    let err = s3
        .get_object()
        .bucket("ghost")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
    let err = s3
        .list_objects_v2()
        .bucket("ghost")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
    let err = s3
        .delete_object()
        .bucket("ghost")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
}
