//! Bucket versioning, checked against the AWS S3 API reference: Put/GetBucketVersioning, version IDs on
//! writes, GET/HEAD/DELETE/CopyObject/tagging with versionId, delete markers, the `null` version of
//! unversioned and Suspended buckets, DeleteObjects, multipart uploads, and ListObjectVersions order and paging.

use aws_sdk_s3::Client;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketVersioningStatus, CompletedMultipartUpload, CompletedPart, Delete, ObjectIdentifier, Tag,
    Tagging, VersioningConfiguration,
};

use crate::harness::{Server, all_keys, body_of, get, pattern, put, status_and_code};
use crate::sigv4::{RawRequest, xml_elem};

/// One entry of a ListObjectVersions answer: key, version ID, IsLatest.
type Entry = (String, String, bool);

async fn set_versioning(s3: &Client, bucket: &str, status: BucketVersioningStatus) {
    s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(VersioningConfiguration::builder().status(status).build())
        .send()
        .await
        .unwrap_or_else(|e| panic!("put-bucket-versioning {bucket}: {e:?}"));
}

/// Creates `bucket` with versioning Enabled.
async fn versioned_bucket(s3: &Client, bucket: &str) {
    s3.create_bucket().bucket(bucket).send().await.unwrap();
    set_versioning(s3, bucket, BucketVersioningStatus::Enabled).await;
}

/// Puts `data` and returns the version ID the server answered (which must be there).
async fn put_v(s3: &Client, bucket: &str, key: &str, data: &[u8]) -> String {
    let out = s3
        .put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("put {bucket}/{key}: {e:?}"));
    let v = out.version_id().unwrap_or_else(|| {
        panic!("PUT {bucket}/{key} in a versioned bucket has no x-amz-version-id")
    });
    assert!(!v.is_empty(), "empty version id");
    v.to_owned()
}

/// Deletes one version (or delete marker) by its ID, which must succeed.
async fn delete_version(s3: &Client, bucket: &str, key: &str, version: &str) {
    s3.delete_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap_or_else(|e| panic!("delete {bucket}/{key}?versionId={version}: {e:?}"));
}

/// GETs one version whole, checking the response echoes its version ID.
async fn get_v(s3: &Client, bucket: &str, key: &str, version: &str) -> Vec<u8> {
    let out = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .version_id(version)
        .send()
        .await
        .unwrap_or_else(|e| panic!("get {bucket}/{key}?versionId={version}: {e:?}"));
    assert_eq!(
        out.version_id(),
        Some(version),
        "GET {key}?versionId={version} echoes x-amz-version-id"
    );
    body_of(out).await
}

/// One page of ListObjectVersions (which must not be truncated): (versions, delete markers).
async fn versions(s3: &Client, bucket: &str, prefix: Option<&str>) -> (Vec<Entry>, Vec<Entry>) {
    let out = s3
        .list_object_versions()
        .bucket(bucket)
        .set_prefix(prefix.map(str::to_owned))
        .send()
        .await
        .unwrap_or_else(|e| panic!("list-object-versions {bucket}: {e:?}"));
    assert_ne!(
        out.is_truncated(),
        Some(true),
        "small listing is not truncated"
    );
    let vs = out
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap_or_default().to_owned(),
                v.version_id().unwrap_or_default().to_owned(),
                v.is_latest().unwrap_or(false),
            )
        })
        .collect();
    let ms = out
        .delete_markers()
        .iter()
        .map(|m| {
            (
                m.key().unwrap_or_default().to_owned(),
                m.version_id().unwrap_or_default().to_owned(),
                m.is_latest().unwrap_or(false),
            )
        })
        .collect();
    (vs, ms)
}

fn entry(key: &str, version: &str, latest: bool) -> Entry {
    (key.to_owned(), version.to_owned(), latest)
}

/// The `<Version>` and `<DeleteMarker>` entries of a raw ListObjectVersions document, in document order:
/// ("Version" | "DeleteMarker", key, version ID, IsLatest). The SDK splits the two kinds into separate lists,
/// so the interleaving AWS defines (key ascending, newest first) is only visible on the wire.
fn raw_entries(server: &Server, bucket: &str) -> Vec<(String, String, String, bool)> {
    let resp = RawRequest::new("GET", &format!("/{bucket}"), "versions")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(resp.status, 200, "{}", resp.text());
    let doc = resp.text();
    let mut out = Vec::new();
    let mut rest = doc.as_str();
    for _ in 0..10_000 {
        let v = rest.find("<Version>").map(|i| (i, "Version"));
        let m = rest.find("<DeleteMarker>").map(|i| (i, "DeleteMarker"));
        let Some((at, kind)) = [v, m].into_iter().flatten().min_by_key(|(i, _)| *i) else {
            return out;
        };
        let close = format!("</{kind}>");
        let body_start = at + kind.len() + 2;
        let end = rest[body_start..]
            .find(&close)
            .map(|e| e + body_start)
            .unwrap_or_else(|| panic!("unclosed <{kind}> in {doc}"));
        let body = &rest[body_start..end];
        out.push((
            kind.to_owned(),
            xml_elem(body, "Key").unwrap_or_default(),
            xml_elem(body, "VersionId").unwrap_or_default(),
            xml_elem(body, "IsLatest").as_deref() == Some("true"),
        ));
        rest = &rest[end + close.len()..];
    }
    panic!("too many entries");
}

#[tokio::test]
async fn versioning_status_starts_unset_then_enabled_then_suspended() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("vstatus").send().await.unwrap();
    let out = s3
        .get_bucket_versioning()
        .bucket("vstatus")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.status(),
        None,
        "a new bucket has never been versioned: no Status"
    );
    assert_eq!(out.mfa_delete(), None);

    set_versioning(&s3, "vstatus", BucketVersioningStatus::Enabled).await;
    let out = s3
        .get_bucket_versioning()
        .bucket("vstatus")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), Some(&BucketVersioningStatus::Enabled));

    set_versioning(&s3, "vstatus", BucketVersioningStatus::Suspended).await;
    let out = s3
        .get_bucket_versioning()
        .bucket("vstatus")
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), Some(&BucketVersioningStatus::Suspended));

    set_versioning(&s3, "vstatus", BucketVersioningStatus::Enabled).await;
    let out = s3
        .get_bucket_versioning()
        .bucket("vstatus")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.status(),
        Some(&BucketVersioningStatus::Enabled),
        "re-enabled"
    );

    let err = s3
        .get_bucket_versioning()
        .bucket("no-such-bucket")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
    let err = s3
        .put_bucket_versioning()
        .bucket("no-such-bucket")
        .versioning_configuration(
            VersioningConfiguration::builder()
                .status(BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
}

#[tokio::test]
async fn enabled_bucket_keeps_every_version() {
    let server = Server::start();
    let s3 = server.client();
    versioned_bucket(&s3, "multi").await;
    let datas: Vec<Vec<u8>> = (0..3)
        .map(|i| pattern(1000 + i * 10, 100 + i as u64))
        .collect();
    let mut ids = Vec::new();
    for d in &datas {
        ids.push(put_v(&s3, "multi", "k", d).await);
    }
    assert_ne!(ids[0], ids[1]);
    assert_ne!(ids[1], ids[2]);
    assert_ne!(ids[0], ids[2]);
    assert!(
        ids.iter().all(|v| v != "null"),
        "Enabled writes get real IDs: {ids:?}"
    );

    // GET without versionId: the newest, with its version ID.
    let out = s3
        .get_object()
        .bucket("multi")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), Some(ids[2].as_str()));
    assert_eq!(body_of(out).await, datas[2]);

    for (id, d) in ids.iter().zip(&datas) {
        assert_eq!(&get_v(&s3, "multi", "k", id).await, d, "version {id}");
        let head = s3
            .head_object()
            .bucket("multi")
            .key("k")
            .version_id(id)
            .send()
            .await
            .unwrap();
        assert_eq!(
            head.version_id(),
            Some(id.as_str()),
            "HEAD echoes x-amz-version-id"
        );
        assert_eq!(head.content_length(), Some(d.len() as i64));
    }
    let head = s3
        .head_object()
        .bucket("multi")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        head.version_id(),
        Some(ids[2].as_str()),
        "HEAD current version"
    );

    let (vs, ms) = versions(&s3, "multi", None).await;
    assert!(ms.is_empty(), "{ms:?}");
    assert_eq!(
        vs,
        vec![
            entry("k", &ids[2], true),
            entry("k", &ids[1], false),
            entry("k", &ids[0], false),
        ],
        "newest first, IsLatest only on the newest"
    );
    let out = s3
        .list_object_versions()
        .bucket("multi")
        .send()
        .await
        .unwrap();
    let sizes: Vec<_> = out.versions().iter().map(|v| v.size()).collect();
    assert_eq!(sizes, [Some(1020), Some(1010), Some(1000)]);
    // ListObjectsV2 shows the key once.
    assert_eq!(all_keys(&s3, "multi").await, ["k"]);
}

#[tokio::test]
async fn delete_markers_hide_and_restore() {
    let server = Server::start();
    let s3 = server.client();
    versioned_bucket(&s3, "dmark").await;
    let v1 = put_v(&s3, "dmark", "k", b"first").await;
    let v2 = put_v(&s3, "dmark", "k", b"second").await;
    let other = put_v(&s3, "dmark", "other", b"stays").await;

    let del = s3
        .delete_object()
        .bucket("dmark")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(
        del.delete_marker(),
        Some(true),
        "simple DELETE adds a delete marker"
    );
    let marker = del
        .version_id()
        .expect("x-amz-version-id of the marker")
        .to_owned();
    assert!(marker != v1 && marker != v2 && marker != "null", "{marker}");

    // GET / HEAD of the key: 404 NoSuchKey with x-amz-delete-marker: true.
    let err = s3
        .get_object()
        .bucket("dmark")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    let raw = err.raw_response().expect("raw response");
    assert_eq!(
        raw.headers().get("x-amz-delete-marker"),
        Some("true"),
        "GET of a key whose current version is a marker"
    );
    let err = s3
        .head_object()
        .bucket("dmark")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 404);
    assert_eq!(
        err.raw_response()
            .unwrap()
            .headers()
            .get("x-amz-delete-marker"),
        Some("true"),
        "HEAD of a key whose current version is a marker"
    );

    // GET / HEAD of the marker's versionId: 405 MethodNotAllowed, with Last-Modified.
    let err = s3
        .get_object()
        .bucket("dmark")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (405, "MethodNotAllowed".into()));
    let raw = err.raw_response().unwrap();
    assert!(
        raw.headers().get("last-modified").is_some(),
        "405 for a marker carries Last-Modified"
    );
    let err = s3
        .head_object()
        .bucket("dmark")
        .key("k")
        .version_id(&marker)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 405, "HEAD of a marker's versionId");

    // The older versions are still readable by ID.
    assert_eq!(get_v(&s3, "dmark", "k", &v1).await, b"first");
    assert_eq!(get_v(&s3, "dmark", "k", &v2).await, b"second");

    assert_eq!(
        all_keys(&s3, "dmark").await,
        ["other"],
        "ListObjectsV2 hides the key"
    );
    let (vs, ms) = versions(&s3, "dmark", Some("k")).await;
    assert_eq!(ms, vec![entry("k", &marker, true)]);
    assert_eq!(vs, vec![entry("k", &v2, false), entry("k", &v1, false)]);
    // On the wire the marker comes first: it is the newest version of "k".
    let raw = raw_entries(&server, "dmark");
    let order: Vec<_> = raw
        .iter()
        .map(|(kind, k, v, l)| (kind.as_str(), k.as_str(), v.as_str(), *l))
        .collect();
    assert_eq!(
        order,
        vec![
            ("DeleteMarker", "k", marker.as_str(), true),
            ("Version", "k", v2.as_str(), false),
            ("Version", "k", v1.as_str(), false),
            ("Version", "other", other.as_str(), true),
        ]
    );

    // A second simple DELETE stacks another marker.
    let del2 = s3
        .delete_object()
        .bucket("dmark")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(del2.delete_marker(), Some(true));
    let marker2 = del2.version_id().expect("second marker id").to_owned();
    assert_ne!(marker2, marker);
    let (vs, ms) = versions(&s3, "dmark", Some("k")).await;
    assert_eq!(
        ms,
        vec![entry("k", &marker2, true), entry("k", &marker, false)]
    );
    assert_eq!(vs.len(), 2);

    // DELETE of a marker's versionId: x-amz-delete-marker: true, the ID echoed.
    for m in [&marker2, &marker] {
        let out = s3
            .delete_object()
            .bucket("dmark")
            .key("k")
            .version_id(m)
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.delete_marker(),
            Some(true),
            "the deleted version was a marker"
        );
        assert_eq!(out.version_id(), Some(m.as_str()));
    }
    // The previous version is back.
    assert_eq!(get(&s3, "dmark", "k").await, b"second");
    assert_eq!(all_keys(&s3, "dmark").await, ["k", "other"]);
    let (vs, ms) = versions(&s3, "dmark", Some("k")).await;
    assert!(ms.is_empty(), "{ms:?}");
    assert_eq!(vs, vec![entry("k", &v2, true), entry("k", &v1, false)]);
}

#[tokio::test]
async fn delete_with_version_id_removes_only_that_version() {
    let server = Server::start();
    let s3 = server.client();
    versioned_bucket(&s3, "delver").await;
    let v1 = put_v(&s3, "delver", "k", b"one").await;
    let v2 = put_v(&s3, "delver", "k", b"two").await;
    let v3 = put_v(&s3, "delver", "k", b"three").await;

    // A middle version.
    let out = s3
        .delete_object()
        .bucket("delver")
        .key("k")
        .version_id(&v2)
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.version_id(),
        Some(v2.as_str()),
        "DELETE echoes the version ID"
    );
    assert_ne!(
        out.delete_marker(),
        Some(true),
        "a data version is not a marker"
    );
    let (vs, ms) = versions(&s3, "delver", None).await;
    assert!(ms.is_empty(), "a versioned DELETE adds no marker: {ms:?}");
    assert_eq!(vs, vec![entry("k", &v3, true), entry("k", &v1, false)]);
    assert_eq!(get_v(&s3, "delver", "k", &v1).await, b"one");
    assert_eq!(get_v(&s3, "delver", "k", &v3).await, b"three");
    assert_eq!(get(&s3, "delver", "k").await, b"three");
    let err = s3
        .get_object()
        .bucket("delver")
        .key("k")
        .version_id(&v2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchVersion".into()));

    // The latest: the next newest becomes current.
    delete_version(&s3, "delver", "k", &v3).await;
    let out = s3
        .get_object()
        .bucket("delver")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), Some(v1.as_str()));
    assert_eq!(body_of(out).await, b"one");
    let (vs, _) = versions(&s3, "delver", None).await;
    assert_eq!(vs, vec![entry("k", &v1, true)]);

    // The last one: the key is gone entirely, with no marker left behind.
    delete_version(&s3, "delver", "k", &v1).await;
    let (vs, ms) = versions(&s3, "delver", None).await;
    assert!(vs.is_empty() && ms.is_empty(), "{vs:?} {ms:?}");
    assert!(all_keys(&s3, "delver").await.is_empty());
    let err = s3
        .get_object()
        .bucket("delver")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    assert_eq!(
        err.raw_response()
            .unwrap()
            .headers()
            .get("x-amz-delete-marker"),
        None,
        "no marker, so no x-amz-delete-marker"
    );
}

#[tokio::test]
async fn suspended_bucket_writes_and_replaces_the_null_version() {
    let server = Server::start();
    let s3 = server.client();
    versioned_bucket(&s3, "susp").await;
    let v1 = put_v(&s3, "susp", "k", b"v1").await;
    let v2 = put_v(&s3, "susp", "k", b"v2").await;
    set_versioning(&s3, "susp", BucketVersioningStatus::Suspended).await;

    // First PUT: a null version on top of the real ones.
    let out = s3
        .put_object()
        .bucket("susp")
        .key("k")
        .body(ByteStream::from_static(b"null-a"))
        .send()
        .await
        .unwrap();
    if let Some(v) = out.version_id() {
        assert_eq!(v, "null", "a Suspended PUT writes the null version");
    }
    let (vs, ms) = versions(&s3, "susp", None).await;
    assert!(ms.is_empty());
    assert_eq!(
        vs,
        vec![
            entry("k", "null", true),
            entry("k", &v2, false),
            entry("k", &v1, false),
        ]
    );
    assert_eq!(get(&s3, "susp", "k").await, b"null-a");
    assert_eq!(get_v(&s3, "susp", "k", "null").await, b"null-a");

    // Second PUT: replaces the null version; still exactly one null entry.
    put(&s3, "susp", "k", b"null-bb").await;
    let (vs, _) = versions(&s3, "susp", None).await;
    assert_eq!(
        vs,
        vec![
            entry("k", "null", true),
            entry("k", &v2, false),
            entry("k", &v1, false),
        ],
        "the null version is replaced, not added"
    );
    let out = s3
        .list_object_versions()
        .bucket("susp")
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.versions()[0].size(),
        Some(7),
        "the null entry is the second PUT's"
    );
    assert_eq!(get(&s3, "susp", "k").await, b"null-bb");
    assert_eq!(get_v(&s3, "susp", "k", "null").await, b"null-bb");
    assert_eq!(get_v(&s3, "susp", "k", &v1).await, b"v1");
    assert_eq!(get_v(&s3, "susp", "k", &v2).await, b"v2");

    // Simple DELETE: a null delete marker replaces the null version.
    let del = s3
        .delete_object()
        .bucket("susp")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    if let Some(v) = del.version_id() {
        assert_eq!(v, "null", "the Suspended marker is the null version");
    }
    let (vs, ms) = versions(&s3, "susp", None).await;
    assert_eq!(ms, vec![entry("k", "null", true)]);
    assert_eq!(
        vs,
        vec![entry("k", &v2, false), entry("k", &v1, false)],
        "the null data version is gone, the real ones stay"
    );
    let err = s3
        .get_object()
        .bucket("susp")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    let err = s3
        .get_object()
        .bucket("susp")
        .key("k")
        .version_id("null")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (405, "MethodNotAllowed".into()),
        "versionId=null now names a marker"
    );

    // Removing the null marker makes v2 current again.
    let out = s3
        .delete_object()
        .bucket("susp")
        .key("k")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert_eq!(out.delete_marker(), Some(true));
    assert_eq!(get(&s3, "susp", "k").await, b"v2");

    // A Suspended PUT onto a key with no null version, then re-enable: the null version is kept under newer
    // real versions.
    put(&s3, "susp", "k", b"null-c").await;
    set_versioning(&s3, "susp", BucketVersioningStatus::Enabled).await;
    let v3 = put_v(&s3, "susp", "k", b"v3").await;
    let (vs, _) = versions(&s3, "susp", None).await;
    assert_eq!(
        vs,
        vec![
            entry("k", &v3, true),
            entry("k", "null", false),
            entry("k", &v2, false),
            entry("k", &v1, false),
        ]
    );
    assert_eq!(get_v(&s3, "susp", "k", "null").await, b"null-c");

    // Suspended simple DELETE on a key without a null version adds a null marker and removes nothing.
    let f1 = put_v(&s3, "susp", "fresh", b"f1").await;
    set_versioning(&s3, "susp", BucketVersioningStatus::Suspended).await;
    let del = s3
        .delete_object()
        .bucket("susp")
        .key("fresh")
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    let (vs, ms) = versions(&s3, "susp", Some("fresh")).await;
    assert_eq!(ms, vec![entry("fresh", "null", true)]);
    assert_eq!(vs, vec![entry("fresh", &f1, false)]);
    assert_eq!(get_v(&s3, "susp", "fresh", &f1).await, b"f1");
}

#[tokio::test]
async fn unversioned_bucket_has_only_null_versions() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("plain").send().await.unwrap();
    let out = s3
        .put_object()
        .bucket("plain")
        .key("k")
        .body(ByteStream::from_static(b"old"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.version_id(),
        None,
        "no x-amz-version-id in an unversioned bucket"
    );
    put(&s3, "plain", "k", b"data").await;

    let (vs, ms) = versions(&s3, "plain", None).await;
    assert!(ms.is_empty());
    assert_eq!(
        vs,
        vec![entry("k", "null", true)],
        "one null version, overwritten in place"
    );
    let out = s3
        .get_object()
        .bucket("plain")
        .key("k")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert_eq!(body_of(out).await, b"data");
    let head = s3
        .head_object()
        .bucket("plain")
        .key("k")
        .version_id("null")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(4));

    // A simple DELETE removes the object outright: no marker.
    let del = s3
        .delete_object()
        .bucket("plain")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_ne!(del.delete_marker(), Some(true));
    let (vs, ms) = versions(&s3, "plain", None).await;
    assert!(vs.is_empty() && ms.is_empty(), "{vs:?} {ms:?}");
}

/// Objects written before versioning was enabled keep their null version: a later PUT adds a version on top of
/// it, removing that version makes the null version current (and the key's only version) again, and a delete
/// marker over it comes and goes the same way.
#[tokio::test]
async fn objects_written_before_versioning_keep_their_null_version() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("late").send().await.unwrap();
    put(&s3, "late", "a", b"null-a").await;
    put(&s3, "late", "b", b"null-b").await;
    set_versioning(&s3, "late", BucketVersioningStatus::Enabled).await;

    let v1 = put_v(&s3, "late", "a", b"v1").await;
    let (vs, ms) = versions(&s3, "late", None).await;
    assert!(ms.is_empty(), "{ms:?}");
    assert_eq!(
        vs,
        vec![
            entry("a", &v1, true),
            entry("a", "null", false),
            entry("b", "null", true)
        ]
    );
    assert_eq!(get_v(&s3, "late", "a", "null").await, b"null-a");
    assert_eq!(get_v(&s3, "late", "a", &v1).await, b"v1");

    delete_version(&s3, "late", "a", &v1).await;
    let (vs, _) = versions(&s3, "late", None).await;
    assert_eq!(vs, vec![entry("a", "null", true), entry("b", "null", true)]);
    assert_eq!(get(&s3, "late", "a").await, b"null-a");

    let del = s3
        .delete_object()
        .bucket("late")
        .key("b")
        .send()
        .await
        .unwrap();
    assert_eq!(del.delete_marker(), Some(true));
    let marker = del
        .version_id()
        .expect("the marker's version id")
        .to_owned();
    let (vs, ms) = versions(&s3, "late", None).await;
    assert_eq!(
        vs,
        vec![entry("a", "null", true), entry("b", "null", false)]
    );
    assert_eq!(ms, vec![entry("b", &marker, true)]);
    delete_version(&s3, "late", "b", &marker).await;
    assert_eq!(get(&s3, "late", "b").await, b"null-b");

    // The null versions go by version id; then the bucket is empty and can be deleted.
    for key in ["a", "b"] {
        delete_version(&s3, "late", key, "null").await;
    }
    let (vs, ms) = versions(&s3, "late", None).await;
    assert!(vs.is_empty() && ms.is_empty(), "{vs:?} {ms:?}");
    s3.delete_bucket().bucket("late").send().await.unwrap();
}

#[tokio::test]
async fn delete_objects_reports_markers_and_versions() {
    let server = Server::start();
    let s3 = server.client();
    versioned_bucket(&s3, "batchv").await;
    let a1 = put_v(&s3, "batchv", "a", b"a1").await;
    let b1 = put_v(&s3, "batchv", "b", b"b1").await;
    let c1 = put_v(&s3, "batchv", "c", b"c1").await;
    let c2 = put_v(&s3, "batchv", "c", b"c2").await;

    let del = Delete::builder()
        .objects(ObjectIdentifier::builder().key("a").build().unwrap())
        .objects(ObjectIdentifier::builder().key("b").build().unwrap())
        .objects(
            ObjectIdentifier::builder()
                .key("c")
                .version_id(&c1)
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = s3
        .delete_objects()
        .bucket("batchv")
        .delete(del)
        .send()
        .await
        .unwrap();
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    assert_eq!(out.deleted().len(), 3, "{:?}", out.deleted());
    let mut markers = std::collections::HashMap::new();
    for d in out.deleted() {
        match d.key() {
            Some(k @ ("a" | "b")) => {
                assert_eq!(d.delete_marker(), Some(true), "{k}: a marker was created");
                let m = d
                    .delete_marker_version_id()
                    .unwrap_or_else(|| panic!("{k}: DeleteMarkerVersionId"))
                    .to_owned();
                assert!(m != a1 && m != b1 && m != "null", "{k}: {m}");
                markers.insert(k.to_owned(), m);
            }
            Some("c") => {
                assert_eq!(d.version_id(), Some(c1.as_str()), "VersionId echoed");
                assert_ne!(d.delete_marker(), Some(true), "c1 was not a marker");
            }
            other => panic!("unexpected deleted entry {other:?}"),
        }
    }
    assert_eq!(all_keys(&s3, "batchv").await, ["c"]);
    let (vs, ms) = versions(&s3, "batchv", None).await;
    assert_eq!(
        ms,
        vec![
            entry("a", &markers["a"], true),
            entry("b", &markers["b"], true)
        ]
    );
    assert_eq!(
        vs,
        vec![
            entry("a", &a1, false),
            entry("b", &b1, false),
            entry("c", &c2, true),
        ],
        "c1 is gone, c2 stays"
    );

    // Deleting a marker by VersionId through DeleteObjects: DeleteMarker true, its ID reported.
    let del = Delete::builder()
        .objects(
            ObjectIdentifier::builder()
                .key("a")
                .version_id(&markers["a"])
                .build()
                .unwrap(),
        )
        .build()
        .unwrap();
    let out = s3
        .delete_objects()
        .bucket("batchv")
        .delete(del)
        .send()
        .await
        .unwrap();
    assert!(out.errors().is_empty(), "{:?}", out.errors());
    let d = &out.deleted()[0];
    assert_eq!(d.key(), Some("a"));
    assert_eq!(d.version_id(), Some(markers["a"].as_str()));
    assert_eq!(
        d.delete_marker(),
        Some(true),
        "the deleted version was a marker"
    );
    if let Some(m) = d.delete_marker_version_id() {
        assert_eq!(
            m, markers["a"],
            "DeleteMarkerVersionId names the deleted version"
        );
    }
    assert_eq!(get(&s3, "batchv", "a").await, b"a1", "a is back");
}

#[tokio::test]
async fn list_object_versions_pages_in_order() {
    let server = Server::start();
    let s3 = server.client();
    versioned_bucket(&s3, "pages").await;
    let keys = ["dir/a", "dir/b", "dir/sub/c", "top1", "top2"];
    // Round-robin writes, so versions of different keys interleave in time.
    let mut ids: Vec<Vec<String>> = vec![Vec::new(); keys.len()];
    for round in 0..4u64 {
        for (i, k) in keys.iter().enumerate() {
            let data = pattern(10 + round as usize, round * 10 + i as u64);
            ids[i].push(put_v(&s3, "pages", k, &data).await);
        }
    }
    // Expected order: key ascending, newest first within a key.
    let expected_for = |filter: &dyn Fn(&str) -> bool| -> Vec<Entry> {
        keys.iter()
            .enumerate()
            .filter(|(_, k)| filter(k))
            .flat_map(|(i, k)| {
                ids[i]
                    .iter()
                    .rev()
                    .enumerate()
                    .map(move |(n, v)| entry(k, v, n == 0))
            })
            .collect()
    };

    // Walk pages of `max_keys`, returning every version entry and common prefix in the order seen.
    async fn walk(
        s3: &Client,
        prefix: Option<&str>,
        delimiter: Option<&str>,
        max_keys: i32,
    ) -> (Vec<Entry>, Vec<String>) {
        let mut entries = Vec::new();
        let mut prefixes = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut vid_marker: Option<String> = None;
        for _ in 0..100 {
            let out = s3
                .list_object_versions()
                .bucket("pages")
                .set_prefix(prefix.map(str::to_owned))
                .set_delimiter(delimiter.map(str::to_owned))
                .max_keys(max_keys)
                .set_key_marker(key_marker.clone())
                .set_version_id_marker(vid_marker.clone())
                .send()
                .await
                .unwrap();
            assert!(out.delete_markers().is_empty());
            let n = out.versions().len() + out.common_prefixes().len();
            assert!(n <= max_keys as usize, "page of {n} > max-keys {max_keys}");
            entries.extend(out.versions().iter().map(|v| {
                (
                    v.key().unwrap_or_default().to_owned(),
                    v.version_id().unwrap_or_default().to_owned(),
                    v.is_latest().unwrap_or(false),
                )
            }));
            prefixes.extend(
                out.common_prefixes()
                    .iter()
                    .filter_map(|p| p.prefix().map(str::to_owned)),
            );
            if out.is_truncated() != Some(true) {
                return (entries, prefixes);
            }
            assert!(n > 0, "a truncated page holds something");
            key_marker = Some(
                out.next_key_marker()
                    .expect("a truncated page has NextKeyMarker")
                    .to_owned(),
            );
            vid_marker = out.next_version_id_marker().map(str::to_owned);
        }
        panic!("listing did not end");
    }

    let all = expected_for(&|_| true);
    assert_eq!(all.len(), 20);
    let (got, prefixes) = walk(&s3, None, None, 3).await;
    assert!(prefixes.is_empty());
    assert_eq!(
        got, all,
        "every (key, version) once, key ascending, newest first"
    );
    // Page sizes that split a key's versions differently.
    for mk in [1, 4, 7, 1000] {
        let (got, _) = walk(&s3, None, None, mk).await;
        assert_eq!(got, all, "max-keys {mk}");
    }

    // Prefix.
    let (got, prefixes) = walk(&s3, Some("dir/"), None, 3).await;
    assert!(prefixes.is_empty());
    assert_eq!(got, expected_for(&|k| k.starts_with("dir/")));
    let (got, _) = walk(&s3, Some("top"), None, 1000).await;
    assert_eq!(got, expected_for(&|k| k.starts_with("top")));

    // Delimiter at the root: "dir/" rolls up once, top1/top2 listed.
    for mk in [3, 1000] {
        let (got, prefixes) = walk(&s3, None, Some("/"), mk).await;
        assert_eq!(prefixes, ["dir/"], "max-keys {mk}");
        assert_eq!(got, expected_for(&|k| !k.contains('/')), "max-keys {mk}");
    }
    // Delimiter under a prefix: "dir/sub/" rolls up.
    for mk in [3, 1000] {
        let (got, prefixes) = walk(&s3, Some("dir/"), Some("/"), mk).await;
        assert_eq!(prefixes, ["dir/sub/"], "max-keys {mk}");
        assert_eq!(
            got,
            expected_for(&|k| k == "dir/a" || k == "dir/b"),
            "max-keys {mk}"
        );
    }

    // key-marker alone starts after every version of that key.
    let out = s3
        .list_object_versions()
        .bucket("pages")
        .key_marker("dir/sub/c")
        .send()
        .await
        .unwrap();
    let first = out.versions().first().and_then(|v| v.key());
    assert_eq!(first, Some("top1"));
    // key-marker + version-id-marker starts after that version of that key.
    let out = s3
        .list_object_versions()
        .bucket("pages")
        .key_marker("top1")
        .version_id_marker(&ids[3][2])
        .send()
        .await
        .unwrap();
    let got: Vec<_> = out
        .versions()
        .iter()
        .map(|v| {
            (
                v.key().unwrap_or_default(),
                v.version_id().unwrap_or_default(),
            )
        })
        .take(2)
        .collect();
    assert_eq!(
        got,
        [("top1", ids[3][1].as_str()), ("top1", ids[3][0].as_str())],
        "after top1's third version come its second and first"
    );
}

#[tokio::test]
async fn multipart_upload_in_enabled_bucket_creates_a_version() {
    let server = Server::start();
    let s3 = server.client();
    versioned_bucket(&s3, "mpv").await;
    let v1 = put_v(&s3, "mpv", "big", b"small first version").await;
    let parts = [pattern(5 * 1024 * 1024, 1), pattern(1000, 2)];
    let up = s3
        .create_multipart_upload()
        .bucket("mpv")
        .key("big")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap().to_owned();
    let mut done = Vec::new();
    for (i, p) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket("mpv")
            .key("big")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from(p.clone()))
            .send()
            .await
            .unwrap();
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    let out = s3
        .complete_multipart_upload()
        .bucket("mpv")
        .key("big")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let v2 = out
        .version_id()
        .expect("CompleteMultipartUpload in an Enabled bucket returns x-amz-version-id")
        .to_owned();
    assert!(v2 != v1 && v2 != "null", "{v2}");
    let whole: Vec<u8> = parts.concat();
    let (vs, _) = versions(&s3, "mpv", None).await;
    assert_eq!(vs, vec![entry("big", &v2, true), entry("big", &v1, false)]);
    assert_eq!(get_v(&s3, "mpv", "big", &v2).await, whole);
    assert_eq!(get_v(&s3, "mpv", "big", &v1).await, b"small first version");
    let out = s3
        .list_object_versions()
        .bucket("mpv")
        .send()
        .await
        .unwrap();
    assert_eq!(out.versions()[0].size(), Some(whole.len() as i64));
}

#[tokio::test]
async fn copy_object_from_an_old_version() {
    let server = Server::start();
    let s3 = server.client();
    versioned_bucket(&s3, "cpv").await;
    let v1 = put_v(&s3, "cpv", "src", b"old bytes").await;
    let v2 = put_v(&s3, "cpv", "src", b"new bytes!").await;

    let out = s3
        .copy_object()
        .bucket("cpv")
        .key("dst")
        .copy_source(format!("cpv/src?versionId={v1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.copy_source_version_id(), Some(v1.as_str()));
    let dst_v = out
        .version_id()
        .expect("the copy is a new version in an Enabled bucket")
        .to_owned();
    assert!(dst_v != v1 && dst_v != v2 && dst_v != "null");
    assert_eq!(get(&s3, "cpv", "dst").await, b"old bytes");
    assert_eq!(get_v(&s3, "cpv", "dst", &dst_v).await, b"old bytes");

    // Without versionId: the current version.
    let out = s3
        .copy_object()
        .bucket("cpv")
        .key("dst")
        .copy_source("cpv/src")
        .send()
        .await
        .unwrap();
    if let Some(v) = out.copy_source_version_id() {
        assert_eq!(v, v2, "the current version was copied");
    }
    assert_eq!(get(&s3, "cpv", "dst").await, b"new bytes!");

    // Restoring an old version over the current one by copying it onto its own key.
    let out = s3
        .copy_object()
        .bucket("cpv")
        .key("src")
        .copy_source(format!("cpv/src?versionId={v1}"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.copy_source_version_id(), Some(v1.as_str()));
    assert_eq!(get(&s3, "cpv", "src").await, b"old bytes");
    let (vs, _) = versions(&s3, "cpv", Some("src")).await;
    assert_eq!(vs.len(), 3, "the restore is a third version: {vs:?}");

    // A source version that does not exist (a real ID of another key): 404 NoSuchVersion.
    let err = s3
        .copy_object()
        .bucket("cpv")
        .key("dst2")
        .copy_source(format!("cpv/src?versionId={dst_v}"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchVersion".into()));
    // A malformed source version ID: 400 InvalidArgument.
    let err = s3
        .copy_object()
        .bucket("cpv")
        .key("dst2")
        .copy_source("cpv/src?versionId=abc")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidArgument".into()));

    // Source whose current version is a delete marker: 404 NoSuchKey.
    s3.delete_object()
        .bucket("cpv")
        .key("src")
        .send()
        .await
        .unwrap();
    let err = s3
        .copy_object()
        .bucket("cpv")
        .key("dst3")
        .copy_source("cpv/src")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    // ...but an explicit old version still copies.
    s3.copy_object()
        .bucket("cpv")
        .key("dst3")
        .copy_source(format!("cpv/src?versionId={v2}"))
        .send()
        .await
        .unwrap();
    assert_eq!(get(&s3, "cpv", "dst3").await, b"new bytes!");
}

fn tagging(pairs: &[(&str, &str)]) -> Tagging {
    let tags: Vec<Tag> = pairs
        .iter()
        .map(|(k, v)| Tag::builder().key(*k).value(*v).build().unwrap())
        .collect();
    Tagging::builder().set_tag_set(Some(tags)).build().unwrap()
}

async fn tags_of(
    s3: &Client,
    key: &str,
    version: Option<&str>,
) -> (Vec<(String, String)>, Option<String>) {
    let out = s3
        .get_object_tagging()
        .bucket("tagv")
        .key(key)
        .set_version_id(version.map(str::to_owned))
        .send()
        .await
        .unwrap();
    let tags = out
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    (tags, out.version_id().map(str::to_owned))
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn tagging_with_version_id_touches_only_that_version() {
    let server = Server::start();
    let s3 = server.client();
    versioned_bucket(&s3, "tagv").await;
    let v1 = put_v(&s3, "tagv", "k", b"one").await;
    let v2 = put_v(&s3, "tagv", "k", b"two").await;

    let out = s3
        .put_object_tagging()
        .bucket("tagv")
        .key("k")
        .version_id(&v1)
        .tagging(tagging(&[("gen", "one")]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        out.version_id(),
        Some(v1.as_str()),
        "PutObjectTagging echoes the version"
    );
    let (t, v) = tags_of(&s3, "k", Some(&v1)).await;
    assert_eq!(t, owned(&[("gen", "one")]));
    assert_eq!(v.as_deref(), Some(v1.as_str()));
    let (t, v) = tags_of(&s3, "k", None).await;
    assert!(t.is_empty(), "the current version is untouched: {t:?}");
    assert_eq!(
        v.as_deref(),
        Some(v2.as_str()),
        "no versionId: the current version"
    );

    // Without versionId: the current version only.
    let out = s3
        .put_object_tagging()
        .bucket("tagv")
        .key("k")
        .tagging(tagging(&[("gen", "two"), ("x", "y")]))
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), Some(v2.as_str()));
    assert_eq!(
        tags_of(&s3, "k", None).await.0,
        owned(&[("gen", "two"), ("x", "y")])
    );
    assert_eq!(
        tags_of(&s3, "k", Some(&v1)).await.0,
        owned(&[("gen", "one")])
    );
    let got = s3
        .get_object()
        .bucket("tagv")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(got.tag_count(), Some(1), "x-amz-tagging-count of v1");

    // DeleteObjectTagging with versionId.
    let out = s3
        .delete_object_tagging()
        .bucket("tagv")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap();
    assert_eq!(out.version_id(), Some(v1.as_str()));
    assert!(tags_of(&s3, "k", Some(&v1)).await.0.is_empty());
    assert_eq!(
        tags_of(&s3, "k", Some(&v2)).await.0.len(),
        2,
        "v2 keeps its tags"
    );

    // A version that does not exist.
    delete_version(&s3, "tagv", "k", &v1).await;
    let err = s3
        .get_object_tagging()
        .bucket("tagv")
        .key("k")
        .version_id(&v1)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchVersion".into()));
}

#[tokio::test]
async fn unknown_and_malformed_version_ids() {
    let server = Server::start();
    let s3 = server.client();
    versioned_bucket(&s3, "badv").await;
    let gone = put_v(&s3, "badv", "k", b"gone").await;
    put_v(&s3, "badv", "k", b"kept").await;
    let other = put_v(&s3, "badv", "other", b"other").await;
    delete_version(&s3, "badv", "k", &gone).await;

    // Well-formed IDs that name no version of this key: a deleted one, and another key's.
    for missing in [&gone, &other] {
        let err = s3
            .get_object()
            .bucket("badv")
            .key("k")
            .version_id(missing)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_and_code(&err),
            (404, "NoSuchVersion".into()),
            "GET k?versionId={missing}"
        );
        let err = s3
            .head_object()
            .bucket("badv")
            .key("k")
            .version_id(missing)
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_and_code(&err).0, 404, "HEAD k?versionId={missing}");
    }

    // Malformed IDs: 400 InvalidArgument ("Invalid version id specified").
    for bad in ["abc", "!!not-a-version-id!!"] {
        let err = s3
            .get_object()
            .bucket("badv")
            .key("k")
            .version_id(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_and_code(&err),
            (400, "InvalidArgument".into()),
            "GET k?versionId={bad}"
        );
        let err = s3
            .head_object()
            .bucket("badv")
            .key("k")
            .version_id(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(status_and_code(&err).0, 400, "HEAD k?versionId={bad}");
    }
    let raw = RawRequest::new("GET", "/badv/k", "versionId=abc")
        .signed(&server.endpoint)
        .send(&server.endpoint);
    assert_eq!(raw.status, 400);
    assert_eq!(raw.code().as_deref(), Some("InvalidArgument"));
    assert_eq!(
        xml_elem(&raw.text(), "Message").as_deref(),
        Some("Invalid version id specified"),
        "{}",
        raw.text()
    );
    assert_eq!(get(&s3, "badv", "k").await, b"kept", "nothing changed");
}
