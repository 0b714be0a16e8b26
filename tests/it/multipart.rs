//! Multipart uploads end to end: create, parallel and replaced parts, UploadPartCopy, complete (ETag, errors,
//! retries), abort with space reclaimed, ListParts and ListMultipartUploads paging, partNumber and Range reads,
//! COMPOSITE and FULL_OBJECT checksums, GetObjectAttributes, and uploads that survive a restart, a kill -9 and a
//! client that drops its connection mid-part.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_s3::Client;
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    ChecksumAlgorithm, ChecksumMode, ChecksumType, CompletedMultipartUpload, CompletedPart,
    ObjectAttributes, StorageClass,
};
use aws_smithy_types::base64;
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Server, get, pattern, put, status_and_code};

/// Deterministic bytes; unlike `pattern` (which ORs the seed with 1), every seed gives different bytes.
fn blob(len: usize, seed: u64) -> Vec<u8> {
    pattern(len, seed.wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

const MIB: usize = 1024 * 1024;
/// The smallest part that may be followed by another.
const PART: usize = 5 * MIB;

async fn create(s3: &Client, bucket: &str, key: &str) -> String {
    let out = s3
        .create_multipart_upload()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("create multipart upload");
    out.upload_id().expect("upload id").to_owned()
}

async fn upload(s3: &Client, bucket: &str, key: &str, id: &str, n: i32, data: &[u8]) -> String {
    let out = s3
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .part_number(n)
        .body(ByteStream::from(data.to_vec()))
        .send()
        .await
        .unwrap_or_else(|e| panic!("upload part {n}: {e:?}"));
    out.e_tag().expect("part etag").to_owned()
}

fn completed(parts: &[(i32, &str)]) -> CompletedMultipartUpload {
    CompletedMultipartUpload::builder()
        .set_parts(Some(
            parts
                .iter()
                .map(|(n, etag)| {
                    CompletedPart::builder()
                        .part_number(*n)
                        .e_tag(*etag)
                        .build()
                })
                .collect(),
        ))
        .build()
}

async fn complete(
    s3: &Client,
    bucket: &str,
    key: &str,
    id: &str,
    parts: &[(i32, &str)],
) -> Result<
    aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadOutput,
    aws_sdk_s3::error::SdkError<
        aws_sdk_s3::operation::complete_multipart_upload::CompleteMultipartUploadError,
    >,
> {
    s3.complete_multipart_upload()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .multipart_upload(completed(parts))
        .send()
        .await
}

fn md5(data: &[u8]) -> [u8; 16] {
    Md5::digest(data).into()
}

/// `"<md5 of the concatenated part MD5s>-N"`, as S3 computes a multipart ETag.
fn multipart_etag(parts: &[&[u8]]) -> String {
    let mut all = Md5::new();
    for p in parts {
        all.update(md5(p));
    }
    format!("\"{}-{}\"", hex::encode(all.finalize()), parts.len())
}

fn b64(raw: &[u8]) -> String {
    base64::encode(raw)
}

fn crc32(data: &[u8]) -> [u8; 4] {
    crc32fast::hash(data).to_be_bytes()
}

fn crc64nvme(data: &[u8]) -> [u8; 8] {
    crc::Crc::<u64>::new(&crc::CRC_64_NVME)
        .checksum(data)
        .to_be_bytes()
}

/// The COMPOSITE CRC32 of parts: CRC32 of the concatenated raw part CRC32s, base64, `-N`.
fn composite_crc32(parts: &[&[u8]]) -> String {
    let joined: Vec<u8> = parts.iter().flat_map(|p| crc32(p)).collect();
    format!("{}-{}", b64(&crc32(&joined)), parts.len())
}

/// Every regular file below `dir` (none when it does not exist).
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

fn data_files(server: &Server) -> usize {
    server
        .disks()
        .iter()
        .map(|d| files_under(&d.join("data")).len())
        .sum()
}

fn tmp_files(server: &Server) -> Vec<PathBuf> {
    server
        .disks()
        .iter()
        .flat_map(|d| files_under(&d.join("tmp")))
        .collect()
}

/// Polls `cond` every 200 ms for at most `limit`; returns whether it held.
async fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Part numbers and ETags of an upload, as ListParts reports them (one page).
async fn listed_parts(s3: &Client, bucket: &str, key: &str, id: &str) -> Vec<(i32, String, i64)> {
    let out = s3
        .list_parts()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .send()
        .await
        .expect("list parts");
    out.parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap(),
                p.e_tag().unwrap_or_default().to_owned(),
                p.size().unwrap_or_default(),
            )
        })
        .collect()
}

#[tokio::test]
async fn parallel_parts_complete_with_multipart_etag_and_part_reads() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let key = "dir/big object";
    let id = create(&s3, "mpu", key).await;
    let (p1, p2, p3) = (blob(PART, 1), blob(PART, 2), blob(MIB + 12_345, 3));
    let (e1, e2, e3) = tokio::join!(
        upload(&s3, "mpu", key, &id, 1, &p1),
        upload(&s3, "mpu", key, &id, 2, &p2),
        upload(&s3, "mpu", key, &id, 3, &p3),
    );
    assert_eq!(e1, format!("\"{}\"", hex::encode(md5(&p1))));
    assert_eq!(e2, format!("\"{}\"", hex::encode(md5(&p2))));
    assert_eq!(e3, format!("\"{}\"", hex::encode(md5(&p3))));
    let listed = listed_parts(&s3, "mpu", key, &id).await;
    assert_eq!(
        listed,
        vec![
            (1, e1.clone(), PART as i64),
            (2, e2.clone(), PART as i64),
            (3, e3.clone(), p3.len() as i64)
        ]
    );

    let done = complete(&s3, "mpu", key, &id, &[(1, &e1), (2, &e2), (3, &e3)])
        .await
        .expect("complete");
    let etag = multipart_etag(&[&p1, &p2, &p3]);
    assert_eq!(done.e_tag(), Some(etag.as_str()));
    assert_eq!(done.key(), Some(key));
    assert_eq!(done.bucket(), Some("mpu"));

    let whole: Vec<u8> = [&p1[..], &p2[..], &p3[..]].concat();
    let total = whole.len();
    let got = s3.get_object().bucket("mpu").key(key).send().await.unwrap();
    assert_eq!(got.e_tag(), Some(etag.as_str()));
    assert_eq!(got.content_length(), Some(total as i64));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == &whole[..], "whole object bytes differ");

    let head = s3
        .head_object()
        .bucket("mpu")
        .key(key)
        .part_number(2)
        .send()
        .await
        .expect("head part 2");
    assert_eq!(head.content_length(), Some(PART as i64));
    assert_eq!(head.parts_count(), Some(3));
    assert_eq!(
        head.content_range(),
        Some(format!("bytes {}-{}/{total}", PART, 2 * PART - 1).as_str())
    );
    assert_eq!(head.e_tag(), Some(etag.as_str()));

    let part2 = s3
        .get_object()
        .bucket("mpu")
        .key(key)
        .part_number(2)
        .send()
        .await
        .expect("get part 2");
    assert_eq!(part2.parts_count(), Some(3));
    assert_eq!(
        part2.content_range(),
        Some(format!("bytes {}-{}/{total}", PART, 2 * PART - 1).as_str())
    );
    let body = part2.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == &p2[..], "part 2 bytes differ");

    let part3 = s3
        .get_object()
        .bucket("mpu")
        .key(key)
        .part_number(3)
        .send()
        .await
        .expect("get part 3");
    assert_eq!(
        part3.content_range(),
        Some(format!("bytes {}-{}/{total}", 2 * PART, total - 1).as_str())
    );
    let body = part3.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == &p3[..], "part 3 bytes differ");

    // A part number the object does not have.
    let err = s3
        .get_object()
        .bucket("mpu")
        .key(key)
        .part_number(4)
        .send()
        .await
        .unwrap_err();
    let (status, code) = status_and_code(&err);
    assert!(
        (status, code.as_str()) == (400, "InvalidPart")
            || (status, code.as_str()) == (416, "InvalidPartNumber"),
        "{status} {code}"
    );

    // Ranges across part boundaries, and one across all three parts.
    for (first, last) in [
        (PART - 10, PART + 9),
        (2 * PART - 1, 2 * PART + 100),
        (100, 2 * PART + 50),
        (0, total - 1),
        (total - 1, total - 1),
    ] {
        let out = s3
            .get_object()
            .bucket("mpu")
            .key(key)
            .range(format!("bytes={first}-{last}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("range {first}-{last}: {e:?}"));
        assert_eq!(
            out.content_range(),
            Some(format!("bytes {first}-{last}/{total}").as_str())
        );
        let body = out.body.collect().await.unwrap().into_bytes();
        assert!(
            body.as_ref() == &whole[first..=last],
            "range {first}-{last} bytes differ"
        );
    }
    let out = s3
        .get_object()
        .bucket("mpu")
        .key(key)
        .range(format!("bytes=-{}", MIB + 20_000))
        .send()
        .await
        .unwrap();
    let body = out.body.collect().await.unwrap().into_bytes();
    assert!(
        body.as_ref() == &whole[total - MIB - 20_000..],
        "suffix range bytes differ"
    );
}

#[tokio::test]
async fn part_number_read_of_a_single_part_object() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let data = blob(100_000, 9);
    put(&s3, "mpu", "plain", &data).await;
    let out = s3
        .get_object()
        .bucket("mpu")
        .key("plain")
        .part_number(1)
        .send()
        .await
        .expect("part 1 of a plain object");
    let body = out.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == &data[..]);
    let err = s3
        .get_object()
        .bucket("mpu")
        .key("plain")
        .part_number(2)
        .send()
        .await
        .unwrap_err();
    let (status, code) = status_and_code(&err);
    assert!(
        (status, code.as_str()) == (400, "InvalidPart")
            || (status, code.as_str()) == (416, "InvalidPartNumber"),
        "{status} {code}"
    );
}

/// S3 returns x-amz-mp-parts-count only when the request names a partNumber.
#[tokio::test]
async fn parts_count_only_with_part_number() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;
    let e1 = upload(&s3, "mpu", "k", &id, 1, b"only part").await;
    complete(&s3, "mpu", "k", &id, &[(1, &e1)]).await.unwrap();
    let head = s3
        .head_object()
        .bucket("mpu")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.parts_count(), None);
    let head = s3
        .head_object()
        .bucket("mpu")
        .key("k")
        .part_number(1)
        .send()
        .await
        .unwrap();
    assert_eq!(head.parts_count(), Some(1));
}

/// S3 refuses a GetObject that names both a partNumber and a Range.
#[tokio::test]
async fn part_number_with_range_is_refused() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;
    let e1 = upload(&s3, "mpu", "k", &id, 1, b"only part").await;
    complete(&s3, "mpu", "k", &id, &[(1, &e1)]).await.unwrap();
    let err = s3
        .get_object()
        .bucket("mpu")
        .key("k")
        .part_number(1)
        .range("bytes=0-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidRequest".into()));
}

#[tokio::test]
async fn reuploaded_part_replaces_the_old_one() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;
    let (old, new, tail) = (blob(PART, 10), blob(PART, 11), blob(1000, 12));
    let old_etag = upload(&s3, "mpu", "k", &id, 1, &old).await;
    let e2 = upload(&s3, "mpu", "k", &id, 2, &tail).await;
    let new_etag = upload(&s3, "mpu", "k", &id, 1, &new).await;
    assert_ne!(old_etag, new_etag);
    let listed = listed_parts(&s3, "mpu", "k", &id).await;
    assert_eq!(
        listed,
        vec![(1, new_etag.clone(), PART as i64), (2, e2.clone(), 1000)]
    );

    let err = complete(&s3, "mpu", "k", &id, &[(1, &old_etag), (2, &e2)])
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidPart".into()));

    let done = complete(&s3, "mpu", "k", &id, &[(1, &new_etag), (2, &e2)])
        .await
        .expect("complete");
    assert_eq!(done.e_tag(), Some(multipart_etag(&[&new, &tail]).as_str()));
    assert!(
        get(&s3, "mpu", "k").await == [&new[..], &tail[..]].concat(),
        "bytes are not the new part's"
    );
}

/// Two uploads of the same part number at once: one wins whole, the other leaves no trace in the object.
#[tokio::test]
async fn concurrent_uploads_of_one_part_number_do_not_mix() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;
    let (a, b) = (blob(2 * MIB + 3, 20), blob(2 * MIB + 3, 21));
    let (ea, eb) = tokio::join!(
        upload(&s3, "mpu", "k", &id, 1, &a),
        upload(&s3, "mpu", "k", &id, 1, &b)
    );
    let listed = listed_parts(&s3, "mpu", "k", &id).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let winner = listed[0].1.clone();
    assert!(
        winner == ea || winner == eb,
        "{winner} is neither {ea} nor {eb}"
    );
    let loser = if winner == ea { &eb } else { &ea };
    let err = complete(&s3, "mpu", "k", &id, &[(1, loser)])
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidPart".into()));
    complete(&s3, "mpu", "k", &id, &[(1, &winner)])
        .await
        .expect("complete");
    let expect = if winner == ea { &a } else { &b };
    assert!(
        get(&s3, "mpu", "k").await == *expect,
        "object bytes are not the winning part's"
    );
}

#[tokio::test]
async fn complete_rejects_bad_part_lists() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;
    let (small1, small2) = (blob(MIB, 30), blob(MIB, 31));
    let e1 = upload(&s3, "mpu", "k", &id, 1, &small1).await;
    let e2 = upload(&s3, "mpu", "k", &id, 2, &small2).await;

    let err = complete(&s3, "mpu", "k", &id, &[(2, &e2), (1, &e1)])
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidPartOrder".into()));
    let err = complete(&s3, "mpu", "k", &id, &[(1, &e1), (1, &e1)])
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidPartOrder".into()));

    let err = complete(&s3, "mpu", "k", &id, &[(1, &e1), (2, &e2)])
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "EntityTooSmall".into()));

    let err = complete(&s3, "mpu", "k", &id, &[(7, &e2)])
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidPart".into()));
    let err = complete(
        &s3,
        "mpu",
        "k",
        &id,
        &[(1, "\"0123456789abcdef0123456789abcdef\"")],
    )
    .await
    .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidPart".into()));

    let err = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .multipart_upload(CompletedMultipartUpload::builder().build())
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "MalformedXML".into()));
    let err = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "MalformedXML".into()));

    // None of the failures consumed the upload: the last part alone may be small.
    assert!(!listed_parts(&s3, "mpu", "k", &id).await.is_empty());
    let done = complete(&s3, "mpu", "k", &id, &[(2, &e2)])
        .await
        .expect("complete with one part");
    assert_eq!(done.e_tag(), Some(multipart_etag(&[&small2]).as_str()));
    assert!(get(&s3, "mpu", "k").await == small2);
}

#[tokio::test]
async fn unknown_upload_and_bad_part_numbers() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let bogus = "0000000000000000deadbeefdeadbeefdeadbeef";

    let err = s3
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(bogus)
        .part_number(1)
        .body(ByteStream::from_static(b"x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchUpload".into()));
    let err = complete(&s3, "mpu", "k", bogus, &[(1, "\"00\"")])
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchUpload".into()));
    let err = s3
        .abort_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(bogus)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchUpload".into()));
    let err = s3
        .list_parts()
        .bucket("mpu")
        .key("k")
        .upload_id(bogus)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchUpload".into()));

    // An upload id is bound to its key.
    let id = create(&s3, "mpu", "k").await;
    let err = s3
        .list_parts()
        .bucket("mpu")
        .key("other")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchUpload".into()));

    for n in [0, 10_001] {
        let err = s3
            .upload_part()
            .bucket("mpu")
            .key("k")
            .upload_id(&id)
            .part_number(n)
            .body(ByteStream::from_static(b"x"))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            status_and_code(&err),
            (400, "InvalidArgument".into()),
            "part number {n}"
        );
    }
    // The edges of the range are fine.
    upload(&s3, "mpu", "k", &id, 10_000, b"last").await;
    let e1 = upload(&s3, "mpu", "k", &id, 1, &blob(PART, 40)).await;
    let parts: Vec<i32> = listed_parts(&s3, "mpu", "k", &id)
        .await
        .iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(parts, [1, 10_000]);
    assert!(!e1.is_empty());

    let err = s3
        .create_multipart_upload()
        .bucket("nobucket")
        .key("k")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchBucket".into()));
}

#[tokio::test]
async fn second_complete_answers_like_s3() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;
    let (p1, p2) = (blob(PART, 50), blob(4096, 51));
    let e1 = upload(&s3, "mpu", "k", &id, 1, &p1).await;
    let e2 = upload(&s3, "mpu", "k", &id, 2, &p2).await;
    let first = complete(&s3, "mpu", "k", &id, &[(1, &e1), (2, &e2)])
        .await
        .expect("complete");
    let etag = multipart_etag(&[&p1, &p2]);
    assert_eq!(first.e_tag(), Some(etag.as_str()));

    // Retried with the same parts while the object from that upload still exists: 200 and the same ETag.
    let again = complete(&s3, "mpu", "k", &id, &[(1, &e1), (2, &e2)])
        .await
        .expect("second complete");
    assert_eq!(again.e_tag(), Some(etag.as_str()));
    assert!(get(&s3, "mpu", "k").await == [&p1[..], &p2[..]].concat());
    // The upload itself is gone.
    let err = s3
        .list_parts()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchUpload".into()));
    let uploads = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty());

    // Once the object is replaced, the upload is simply unknown.
    put(&s3, "mpu", "k", b"replaced").await;
    let err = complete(&s3, "mpu", "k", &id, &[(1, &e1), (2, &e2)])
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchUpload".into()));
    assert_eq!(get(&s3, "mpu", "k").await, b"replaced");
}

#[tokio::test]
async fn abort_removes_the_upload_and_reclaims_its_parts() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let before = data_files(&server);
    let id = create(&s3, "mpu", "k").await;
    let keep = create(&s3, "mpu", "k").await;
    upload(&s3, "mpu", "k", &id, 1, &blob(PART, 60)).await;
    upload(&s3, "mpu", "k", &id, 2, &blob(MIB, 61)).await;
    let with_parts = data_files(&server);
    assert!(
        with_parts > before,
        "parts wrote no data files ({before} -> {with_parts})"
    );

    let out = s3
        .abort_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .send()
        .await;
    out.expect("abort");
    let uploads = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = uploads
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id())
        .collect();
    assert_eq!(ids, [keep.as_str()], "only the other upload remains");
    let err = s3
        .list_parts()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchUpload".into()));
    let err = upload_err(&s3, &id).await;
    assert_eq!(err, (404, "NoSuchUpload".into()));
    let err = s3
        .abort_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchUpload".into()));

    // GC runs every 2 s and waits a 10 s grace period.
    let reclaimed = eventually(Duration::from_secs(30), || data_files(&server) == before).await;
    assert!(
        reclaimed,
        "part files still on disk after abort: {} (before {before})",
        data_files(&server)
    );
    // The other upload of the same key is untouched.
    assert!(listed_parts(&s3, "mpu", "k", &keep).await.is_empty());
}

async fn upload_err(s3: &Client, id: &str) -> (u16, String) {
    let err = s3
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(id)
        .part_number(3)
        .body(ByteStream::from_static(b"late"))
        .send()
        .await
        .unwrap_err();
    status_and_code(&err)
}

#[tokio::test]
async fn list_parts_pages_with_max_parts_and_marker() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;
    let numbers = [1, 2, 3, 5, 8];
    let mut expect = Vec::new();
    for n in numbers {
        let data = blob(1000 + n as usize, n as u64);
        let etag = upload(&s3, "mpu", "k", &id, n, &data).await;
        expect.push((n, etag, data.len() as i64));
    }

    let full = s3
        .list_parts()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(full.is_truncated(), Some(false));
    assert_eq!(full.upload_id(), Some(id.as_str()));
    assert_eq!(full.parts().len(), 5);

    let mut got = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = Vec::new();
    for _ in 0..10 {
        let out = s3
            .list_parts()
            .bucket("mpu")
            .key("k")
            .upload_id(&id)
            .max_parts(2)
            .set_part_number_marker(marker.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(out.max_parts(), Some(2));
        let page: Vec<i32> = out.parts().iter().filter_map(|p| p.part_number()).collect();
        got.extend(out.parts().iter().map(|p| {
            (
                p.part_number().unwrap(),
                p.e_tag().unwrap().to_owned(),
                p.size().unwrap(),
            )
        }));
        pages.push(page.clone());
        if out.is_truncated() != Some(true) {
            break;
        }
        let next = out
            .next_part_number_marker()
            .expect("NextPartNumberMarker on a truncated page");
        assert_eq!(next, page.last().unwrap().to_string());
        marker = Some(next.to_owned());
    }
    assert_eq!(pages, vec![vec![1, 2], vec![3, 5], vec![8]]);
    assert_eq!(got, expect);

    let out = s3
        .list_parts()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number_marker("8")
        .send()
        .await
        .unwrap();
    assert!(out.parts().is_empty());
    assert_eq!(out.is_truncated(), Some(false));
    let out = s3
        .list_parts()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number_marker("4")
        .send()
        .await
        .unwrap();
    let after: Vec<i32> = out.parts().iter().filter_map(|p| p.part_number()).collect();
    assert_eq!(after, [5, 8]);
}

#[tokio::test]
async fn list_multipart_uploads_prefix_delimiter_and_paging() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let mut all = Vec::new();
    for key in ["a/1", "a/2", "b/1", "c", "c", "d/x/y"] {
        all.push((key.to_owned(), create(&s3, "mpu", key).await));
    }
    let uploads = |out: &aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput| -> Vec<(String, String)> {
        out.uploads().iter().map(|u| (u.key().unwrap().to_owned(), u.upload_id().unwrap().to_owned())).collect()
    };
    let prefixes = |out: &aws_sdk_s3::operation::list_multipart_uploads::ListMultipartUploadsOutput| -> Vec<String> {
        out.common_prefixes().iter().filter_map(|p| p.prefix()).map(str::to_owned).collect()
    };

    let out = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert_eq!(
        uploads(&out),
        all,
        "uploads sorted by key, then by initiation"
    );
    assert_eq!(out.is_truncated(), Some(false));
    assert!(out.uploads().iter().all(|u| u.initiated().is_some()));

    let out = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .prefix("a/")
        .send()
        .await
        .unwrap();
    assert_eq!(uploads(&out), all[..2].to_vec());

    let out = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert_eq!(uploads(&out), all[3..5].to_vec());
    assert_eq!(prefixes(&out), ["a/", "b/", "d/"]);

    let out = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .prefix("d/")
        .delimiter("/")
        .send()
        .await
        .unwrap();
    assert!(uploads(&out).is_empty());
    assert_eq!(prefixes(&out), ["d/x/"]);

    // key-marker alone: uploads of later keys only.
    let out = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .key_marker("b/1")
        .send()
        .await
        .unwrap();
    assert_eq!(uploads(&out), all[3..].to_vec());
    // key-marker with upload-id-marker: later uploads of that key too.
    let out = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .key_marker("c")
        .upload_id_marker(&all[3].1)
        .send()
        .await
        .unwrap();
    assert_eq!(uploads(&out), all[4..].to_vec());

    for max in [1, 2, 4] {
        let mut got = Vec::new();
        let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
        let mut done = false;
        for _ in 0..20 {
            let out = s3
                .list_multipart_uploads()
                .bucket("mpu")
                .max_uploads(max)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(id_marker.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(out.max_uploads(), Some(max));
            let page = uploads(&out);
            assert!(page.len() <= max as usize);
            got.extend(page);
            if out.is_truncated() != Some(true) {
                done = true;
                break;
            }
            key_marker = out.next_key_marker().map(str::to_owned);
            id_marker = out.next_upload_id_marker().map(str::to_owned);
            assert!(key_marker.is_some(), "truncated page without NextKeyMarker");
        }
        assert!(done, "paging with max-uploads {max} did not end");
        assert_eq!(got, all, "max-uploads {max}");
    }

    // With a delimiter, common prefixes count toward max-uploads and page like keys.
    let mut got_uploads = Vec::new();
    let mut got_prefixes = Vec::new();
    let (mut key_marker, mut id_marker): (Option<String>, Option<String>) = (None, None);
    for _ in 0..20 {
        let out = s3
            .list_multipart_uploads()
            .bucket("mpu")
            .delimiter("/")
            .max_uploads(2)
            .set_key_marker(key_marker.clone())
            .set_upload_id_marker(id_marker.clone())
            .send()
            .await
            .unwrap();
        assert!(out.uploads().len() + out.common_prefixes().len() <= 2);
        got_uploads.extend(uploads(&out));
        got_prefixes.extend(prefixes(&out));
        if out.is_truncated() != Some(true) {
            break;
        }
        key_marker = out.next_key_marker().map(str::to_owned);
        id_marker = out.next_upload_id_marker().map(str::to_owned);
    }
    assert_eq!(got_uploads, all[3..5].to_vec());
    assert_eq!(got_prefixes, ["a/", "b/", "d/"]);

    let out = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .max_uploads(0)
        .send()
        .await
        .unwrap();
    assert!(uploads(&out).is_empty());
}

#[tokio::test]
async fn create_options_reach_the_object() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let out = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("k")
        .content_type("text/plain")
        .cache_control("max-age=60")
        .content_disposition("attachment; filename=\"k.txt\"")
        .metadata("color", "blue")
        .metadata("shape", "round")
        .tagging("team=storage&tier=hot")
        .storage_class(StorageClass::StandardIa)
        .send()
        .await
        .unwrap();
    let id = out.upload_id().unwrap().to_owned();
    let listed = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    assert_eq!(
        listed.uploads()[0].storage_class(),
        Some(&StorageClass::StandardIa)
    );
    let p1 = blob(PART, 70);
    let p2 = blob(10, 71);
    let e1 = upload(&s3, "mpu", "k", &id, 1, &p1).await;
    let e2 = upload(&s3, "mpu", "k", &id, 2, &p2).await;
    complete(&s3, "mpu", "k", &id, &[(1, &e1), (2, &e2)])
        .await
        .unwrap();

    let head = s3
        .head_object()
        .bucket("mpu")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_type(), Some("text/plain"));
    assert_eq!(head.cache_control(), Some("max-age=60"));
    assert_eq!(
        head.content_disposition(),
        Some("attachment; filename=\"k.txt\"")
    );
    let meta = head.metadata().expect("metadata");
    assert_eq!(meta.get("color").map(String::as_str), Some("blue"));
    assert_eq!(meta.get("shape").map(String::as_str), Some("round"));
    assert_eq!(meta.len(), 2);
    assert_eq!(head.storage_class(), Some(&StorageClass::StandardIa));
    assert_eq!(head.content_length(), Some((PART + 10) as i64));

    let got = s3.get_object().bucket("mpu").key("k").send().await.unwrap();
    assert_eq!(got.tag_count(), Some(2));
    assert_eq!(got.content_type(), Some("text/plain"));
    let tags = s3
        .get_object_tagging()
        .bucket("mpu")
        .key("k")
        .send()
        .await
        .unwrap();
    let mut tags: Vec<(String, String)> = tags
        .tag_set()
        .iter()
        .map(|t| (t.key().to_owned(), t.value().to_owned()))
        .collect();
    tags.sort();
    assert_eq!(
        tags,
        [
            ("team".to_owned(), "storage".to_owned()),
            ("tier".to_owned(), "hot".to_owned())
        ]
    );

    let list = s3.list_objects_v2().bucket("mpu").send().await.unwrap();
    assert_eq!(
        list.contents()[0].e_tag(),
        Some(multipart_etag(&[&p1, &p2]).as_str())
    );
    assert_eq!(list.contents()[0].size(), Some((PART + 10) as i64));

    // Without an additional checksum, GetObjectAttributes counts the parts but lists none (as S3).
    let attrs = s3
        .get_object_attributes()
        .bucket("mpu")
        .key("k")
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::StorageClass)
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::Checksum)
        .send()
        .await
        .unwrap();
    assert_eq!(
        attrs.e_tag(),
        Some(multipart_etag(&[&p1, &p2]).trim_matches('"'))
    );
    assert_eq!(attrs.storage_class(), Some(&StorageClass::StandardIa));
    assert_eq!(attrs.object_size(), Some((PART + 10) as i64));
    assert!(attrs.checksum().is_none());
    let parts = attrs.object_parts().expect("ObjectParts");
    assert_eq!(parts.total_parts_count(), Some(2));
    assert!(parts.parts().is_empty(), "{:?}", parts.parts());
}

#[tokio::test]
async fn upload_part_copy_ranges_buckets_and_conditions() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("src").send().await.unwrap();
    s3.create_bucket().bucket("dst").send().await.unwrap();
    let source = blob(7 * MIB, 80);
    let src_etag = put(&s3, "src", "big source", &source).await;
    let local = blob(300 * 1024, 81);
    put(&s3, "dst", "local", &local).await;

    let id = create(&s3, "dst", "k").await;
    // Part 1: 5 MiB from the middle of an object in another bucket, with a matching condition.
    let out = s3
        .upload_part_copy()
        .bucket("dst")
        .key("k")
        .upload_id(&id)
        .part_number(1)
        .copy_source("src/big%20source")
        .copy_source_range(format!("bytes={}-{}", MIB, MIB + PART - 1))
        .copy_source_if_match(&src_etag)
        .send()
        .await
        .expect("upload part copy with range");
    let e1 = out
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .expect("copy etag")
        .to_owned();
    let slice = &source[MIB..MIB + PART];
    assert_eq!(e1, format!("\"{}\"", hex::encode(md5(slice))));
    assert!(out.copy_part_result().unwrap().last_modified().is_some());

    // Part 2: a whole object of the same bucket.
    let out = s3
        .upload_part_copy()
        .bucket("dst")
        .key("k")
        .upload_id(&id)
        .part_number(2)
        .copy_source("dst/local")
        .send()
        .await
        .expect("upload part copy whole");
    let e2 = out
        .copy_part_result()
        .and_then(|r| r.e_tag())
        .unwrap()
        .to_owned();
    assert_eq!(e2, format!("\"{}\"", hex::encode(md5(&local))));

    // Failing conditions record nothing.
    let err = s3
        .upload_part_copy()
        .bucket("dst")
        .key("k")
        .upload_id(&id)
        .part_number(3)
        .copy_source("src/big%20source")
        .copy_source_if_match("\"0123456789abcdef0123456789abcdef\"")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (412, "PreconditionFailed".into()));
    let err = s3
        .upload_part_copy()
        .bucket("dst")
        .key("k")
        .upload_id(&id)
        .part_number(3)
        .copy_source("src/big%20source")
        .copy_source_if_none_match(&src_etag)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (412, "PreconditionFailed".into()));
    let err = s3
        .upload_part_copy()
        .bucket("dst")
        .key("k")
        .upload_id(&id)
        .part_number(3)
        .copy_source("src/missing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (404, "NoSuchKey".into()));
    let parts: Vec<i32> = listed_parts(&s3, "dst", "k", &id)
        .await
        .iter()
        .map(|p| p.0)
        .collect();
    assert_eq!(parts, [1, 2]);

    let done = complete(&s3, "dst", "k", &id, &[(1, &e1), (2, &e2)])
        .await
        .expect("complete");
    assert_eq!(
        done.e_tag(),
        Some(multipart_etag(&[slice, &local]).as_str())
    );
    assert!(
        get(&s3, "dst", "k").await == [slice, &local[..]].concat(),
        "copied object bytes differ"
    );
}

#[tokio::test]
async fn composite_crc32_checksum_and_object_attributes() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let out = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    assert_eq!(out.checksum_algorithm(), Some(&ChecksumAlgorithm::Crc32));
    assert_eq!(out.checksum_type(), Some(&ChecksumType::Composite));
    let id = out.upload_id().unwrap().to_owned();
    let parts = [blob(PART, 90), blob(PART, 91), blob(MIB + 1, 92)];
    let mut done_parts = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket("mpu")
            .key("k")
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        let sum = out.checksum_crc32().expect("part checksum").to_owned();
        assert_eq!(sum, b64(&crc32(data)), "part {n}");
        done_parts.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .checksum_crc32(sum)
                .build(),
        );
    }
    let listed = s3
        .list_parts()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.checksum_algorithm(), Some(&ChecksumAlgorithm::Crc32));
    let sums: Vec<_> = listed
        .parts()
        .iter()
        .map(|p| p.checksum_crc32().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        sums,
        parts.iter().map(|p| b64(&crc32(p))).collect::<Vec<_>>()
    );

    // A part checksum that does not match the stored one is refused.
    let mut wrong = done_parts.clone();
    wrong[0] = CompletedPart::builder()
        .part_number(1)
        .e_tag(done_parts[0].e_tag().unwrap())
        .checksum_crc32(done_parts[1].checksum_crc32().unwrap())
        .build();
    let err = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(wrong))
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "InvalidPart".into()));

    let done = s3
        .complete_multipart_upload()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .multipart_upload(
            CompletedMultipartUpload::builder()
                .set_parts(Some(done_parts))
                .build(),
        )
        .send()
        .await
        .expect("complete");
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    let expect = composite_crc32(&refs);
    let etag = multipart_etag(&refs);
    assert_eq!(done.checksum_crc32(), Some(expect.as_str()));
    assert_eq!(done.checksum_type(), Some(&ChecksumType::Composite));
    assert_eq!(done.e_tag(), Some(etag.as_str()));

    let head = s3
        .head_object()
        .bucket("mpu")
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32(), Some(expect.as_str()));
    assert_eq!(head.checksum_type(), Some(&ChecksumType::Composite));
    let got = s3
        .get_object()
        .bucket("mpu")
        .key("k")
        .checksum_mode(ChecksumMode::Enabled)
        .send()
        .await
        .unwrap();
    assert_eq!(got.checksum_crc32(), Some(expect.as_str()));
    let body = got.body.collect().await.unwrap().into_bytes();
    assert!(body.as_ref() == parts.concat().as_slice());
    // Without checksum mode no checksum is sent.
    let head = s3
        .head_object()
        .bucket("mpu")
        .key("k")
        .send()
        .await
        .unwrap();
    assert_eq!(head.checksum_crc32(), None);

    let attrs = s3
        .get_object_attributes()
        .bucket("mpu")
        .key("k")
        .object_attributes(ObjectAttributes::Etag)
        .object_attributes(ObjectAttributes::Checksum)
        .object_attributes(ObjectAttributes::ObjectParts)
        .object_attributes(ObjectAttributes::ObjectSize)
        .object_attributes(ObjectAttributes::StorageClass)
        .send()
        .await
        .expect("get object attributes");
    assert_eq!(
        attrs.e_tag(),
        Some(etag.trim_matches('"')),
        "ETag without quotes"
    );
    assert_eq!(
        attrs.object_size(),
        Some(parts.iter().map(Vec::len).sum::<usize>() as i64)
    );
    assert_eq!(attrs.storage_class(), Some(&StorageClass::Standard));
    assert!(attrs.last_modified().is_some());
    let checksum = attrs.checksum().expect("Checksum");
    let value = checksum.checksum_crc32().expect("ChecksumCRC32");
    // S3 shows the checksum of checksums; accept it with or without the "-3" suffix.
    assert_eq!(
        value.split('-').next(),
        expect.split('-').next(),
        "{value} vs {expect}"
    );
    assert_eq!(checksum.checksum_type(), Some(&ChecksumType::Composite));
    let op = attrs.object_parts().expect("ObjectParts");
    assert_eq!(op.total_parts_count(), Some(3));
    assert_eq!(op.is_truncated(), Some(false));
    let listed: Vec<(i32, i64, String)> = op
        .parts()
        .iter()
        .map(|p| {
            (
                p.part_number().unwrap(),
                p.size().unwrap(),
                p.checksum_crc32().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let expect_parts: Vec<(i32, i64, String)> = parts
        .iter()
        .enumerate()
        .map(|(i, p)| (i as i32 + 1, p.len() as i64, b64(&crc32(p))))
        .collect();
    assert_eq!(listed, expect_parts);

    // ObjectParts pages with max-parts and part-number-marker.
    let attrs = s3
        .get_object_attributes()
        .bucket("mpu")
        .key("k")
        .object_attributes(ObjectAttributes::ObjectParts)
        .max_parts(2)
        .part_number_marker("1")
        .send()
        .await
        .unwrap();
    let op = attrs.object_parts().unwrap();
    let numbers: Vec<i32> = op.parts().iter().filter_map(|p| p.part_number()).collect();
    assert_eq!(numbers, [2, 3]);
    assert_eq!(op.total_parts_count(), Some(3));
    assert!(
        attrs.e_tag().is_none() && attrs.object_size().is_none(),
        "only the asked-for attributes"
    );
}

#[tokio::test]
async fn full_object_checksums_crc32_and_crc64nvme() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let parts = [blob(PART, 100), blob(MIB + 7, 101)];
    let whole = parts.concat();
    for (algo, kind, expect) in [
        (
            ChecksumAlgorithm::Crc32,
            Some(ChecksumType::FullObject),
            b64(&crc32(&whole)),
        ),
        (ChecksumAlgorithm::Crc64Nvme, None, b64(&crc64nvme(&whole))),
    ] {
        let key = format!("full-{}", algo.as_str());
        let out = s3
            .create_multipart_upload()
            .bucket("mpu")
            .key(&key)
            .checksum_algorithm(algo.clone())
            .set_checksum_type(kind.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.checksum_type(),
            Some(&ChecksumType::FullObject),
            "{algo:?}"
        );
        let id = out.upload_id().unwrap().to_owned();
        let mut done_parts = Vec::new();
        for (i, data) in parts.iter().enumerate() {
            let n = i as i32 + 1;
            let out = s3
                .upload_part()
                .bucket("mpu")
                .key(&key)
                .upload_id(&id)
                .part_number(n)
                .checksum_algorithm(algo.clone())
                .body(ByteStream::from(data.clone()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{algo:?} part {n}: {e:?}"));
            let part = CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap());
            let part = match algo {
                ChecksumAlgorithm::Crc32 => {
                    assert_eq!(out.checksum_crc32(), Some(b64(&crc32(data)).as_str()));
                    part.checksum_crc32(out.checksum_crc32().unwrap())
                }
                _ => {
                    assert_eq!(
                        out.checksum_crc64_nvme(),
                        Some(b64(&crc64nvme(data)).as_str())
                    );
                    part.checksum_crc64_nvme(out.checksum_crc64_nvme().unwrap())
                }
            };
            done_parts.push(part.build());
        }
        let done = s3
            .complete_multipart_upload()
            .bucket("mpu")
            .key(&key)
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(done_parts))
                    .build(),
            )
            .send()
            .await
            .unwrap_or_else(|e| panic!("{algo:?} complete: {e:?}"));
        assert_eq!(
            done.checksum_type(),
            Some(&ChecksumType::FullObject),
            "{algo:?}"
        );
        let pick = |crc32: Option<&str>, crc64: Option<&str>| {
            match algo {
                ChecksumAlgorithm::Crc32 => crc32,
                _ => crc64,
            }
            .map(str::to_owned)
        };
        assert_eq!(
            pick(done.checksum_crc32(), done.checksum_crc64_nvme()),
            Some(expect.clone()),
            "{algo:?}"
        );

        let head = s3
            .head_object()
            .bucket("mpu")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            pick(head.checksum_crc32(), head.checksum_crc64_nvme()),
            Some(expect.clone()),
            "{algo:?}"
        );
        assert_eq!(head.checksum_type(), Some(&ChecksumType::FullObject));
        // The SDK also validates a full-object checksum against the body it reads.
        let got = s3
            .get_object()
            .bucket("mpu")
            .key(&key)
            .checksum_mode(ChecksumMode::Enabled)
            .send()
            .await
            .unwrap();
        assert_eq!(
            pick(got.checksum_crc32(), got.checksum_crc64_nvme()),
            Some(expect.clone()),
            "{algo:?}"
        );
        let body = got
            .body
            .collect()
            .await
            .expect("body passes the SDK's checksum check")
            .into_bytes();
        assert!(body.as_ref() == whole.as_slice());

        let attrs = s3
            .get_object_attributes()
            .bucket("mpu")
            .key(&key)
            .object_attributes(ObjectAttributes::Checksum)
            .object_attributes(ObjectAttributes::ObjectParts)
            .send()
            .await
            .unwrap();
        let c = attrs.checksum().expect("Checksum");
        assert_eq!(
            pick(c.checksum_crc32(), c.checksum_crc64_nvme()),
            Some(expect.clone()),
            "{algo:?}"
        );
        assert_eq!(c.checksum_type(), Some(&ChecksumType::FullObject));
        assert_eq!(
            attrs.object_parts().and_then(|p| p.total_parts_count()),
            Some(2)
        );
    }
}

/// A part in another algorithm than the upload's is refused; so is FULL_OBJECT with SHA256 (S3 allows it for
/// CRCs only).
#[tokio::test]
async fn checksum_algorithm_mismatches_are_refused() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let out = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = out.upload_id().unwrap();
    let err = s3
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(id)
        .part_number(1)
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .body(ByteStream::from_static(b"abc"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 400);
    assert!(listed_parts(&s3, "mpu", "k", id).await.is_empty());

    let err = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Sha256)
        .checksum_type(ChecksumType::FullObject)
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 400);
}

/// With an additional checksum S3 wants parts 1..=N in Complete, and for COMPOSITE every part's checksum.
#[tokio::test]
async fn checksum_uploads_need_consecutive_parts_with_checksums() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let out = s3
        .create_multipart_upload()
        .bucket("mpu")
        .key("k")
        .checksum_algorithm(ChecksumAlgorithm::Crc32)
        .send()
        .await
        .unwrap();
    let id = out.upload_id().unwrap().to_owned();
    let parts = [blob(PART, 140), blob(1000, 141), blob(1000, 142)];
    let mut done = Vec::new();
    for (i, data) in parts.iter().enumerate() {
        let n = i as i32 + 1;
        let out = s3
            .upload_part()
            .bucket("mpu")
            .key("k")
            .upload_id(&id)
            .part_number(n)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        done.push(
            CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .checksum_crc32(out.checksum_crc32().unwrap())
                .build(),
        );
    }
    let send = |parts: Vec<CompletedPart>| {
        s3.complete_multipart_upload()
            .bucket("mpu")
            .key("k")
            .upload_id(&id)
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(parts))
                    .build(),
            )
            .send()
    };
    let err = send(vec![done[0].clone(), done[2].clone()])
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (400, "InvalidPartOrder".into()),
        "a gap"
    );
    let err = send(vec![done[1].clone(), done[2].clone()])
        .await
        .unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (400, "InvalidPartOrder".into()),
        "not from 1"
    );
    let bare = CompletedPart::builder()
        .part_number(2)
        .e_tag(done[1].e_tag().unwrap())
        .build();
    let err = send(vec![done[0].clone(), bare]).await.unwrap_err();
    assert_eq!(
        status_and_code(&err),
        (400, "InvalidRequest".into()),
        "part checksum missing"
    );

    let out = send(vec![done[0].clone(), done[1].clone()])
        .await
        .expect("complete 1..=2");
    assert_eq!(
        out.checksum_crc32(),
        Some(composite_crc32(&[&parts[0], &parts[1]]).as_str())
    );
    assert!(get(&s3, "mpu", "k").await == [&parts[0][..], &parts[1][..]].concat());

    // Without an additional checksum, gaps are fine.
    let id = create(&s3, "mpu", "plain").await;
    let e1 = upload(&s3, "mpu", "plain", &id, 1, &parts[0]).await;
    let e3 = upload(&s3, "mpu", "plain", &id, 3, &parts[2]).await;
    complete(&s3, "mpu", "plain", &id, &[(1, &e1), (3, &e3)])
        .await
        .expect("complete with a gap");
    assert!(get(&s3, "mpu", "plain").await == [&parts[0][..], &parts[2][..]].concat());
}

/// Starts a server that will outlive `server`'s process on the same data directory.
fn restart(server: &mut Server, kill: bool) -> (Server, Option<tempfile::TempDir>) {
    let dir = server.take_tempdir();
    if kill {
        server.kill9();
    } else {
        assert!(
            server.terminate(Duration::from_secs(20)),
            "server did not stop on SIGTERM"
        );
    }
    let data = server.data.clone();
    (Server::start_on(&data, &[]), dir)
}

#[tokio::test]
async fn upload_survives_a_restart() {
    let mut server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;
    let parts = [blob(PART, 110), blob(PART, 111), blob(MIB / 2, 112)];
    let e1 = upload(&s3, "mpu", "k", &id, 1, &parts[0]).await;
    let e2 = upload(&s3, "mpu", "k", &id, 2, &parts[1]).await;

    let (server, _dir) = restart(&mut server, false);
    let s3 = server.client();
    let uploads = s3
        .list_multipart_uploads()
        .bucket("mpu")
        .send()
        .await
        .unwrap();
    let ids: Vec<_> = uploads
        .uploads()
        .iter()
        .filter_map(|u| u.upload_id())
        .collect();
    assert_eq!(ids, [id.as_str()]);
    let listed = listed_parts(&s3, "mpu", "k", &id).await;
    assert_eq!(
        listed,
        vec![(1, e1.clone(), PART as i64), (2, e2.clone(), PART as i64)]
    );
    let e3 = upload(&s3, "mpu", "k", &id, 3, &parts[2]).await;
    let done = complete(&s3, "mpu", "k", &id, &[(1, &e1), (2, &e2), (3, &e3)])
        .await
        .expect("complete after restart");
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    assert_eq!(done.e_tag(), Some(multipart_etag(&refs).as_str()));
    assert!(
        get(&s3, "mpu", "k").await == parts.concat(),
        "bytes differ after restart"
    );
}

/// Opens a raw connection and sends a presigned UploadPart head declaring `content_length`, then `body`.
async fn raw_part(
    s3: &Client,
    (bucket, key, id): (&str, &str, &str),
    n: i32,
    content_length: u64,
    body: &[u8],
) -> tokio::net::TcpStream {
    let presigned = s3
        .upload_part()
        .bucket(bucket)
        .key(key)
        .upload_id(id)
        .part_number(n)
        .presigned(PresigningConfig::expires_in(Duration::from_secs(600)).unwrap())
        .await
        .expect("presign");
    let rest = presigned
        .uri()
        .strip_prefix("http://")
        .expect("http presigned uri");
    let (authority, path) = rest.split_at(rest.find('/').expect("path"));
    let mut head = format!("PUT {path} HTTP/1.1\r\nHost: {authority}\r\n");
    for (name, value) in presigned.headers() {
        if !name.eq_ignore_ascii_case("host") && !name.eq_ignore_ascii_case("content-length") {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    head.push_str(&format!("Content-Length: {content_length}\r\n\r\n"));
    let mut sock = tokio::net::TcpStream::connect(authority)
        .await
        .expect("connect");
    sock.write_all(head.as_bytes()).await.unwrap();
    sock.write_all(body).await.unwrap();
    sock.flush().await.unwrap();
    sock
}

/// Reads what the server answers on a raw connection: until EOF, a whole error document, or 20 s.
async fn raw_response(sock: &mut tokio::net::TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
            Err(_) => {}
        }
        if got.windows(8).any(|w| w == b"</Error>") {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn kill9_mid_upload_then_finish_with_the_same_upload_id() {
    let mut server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;
    let parts = [blob(PART, 120), blob(PART, 121), blob(3 * MIB + 5, 122)];
    let e1 = upload(&s3, "mpu", "k", &id, 1, &parts[0]).await;
    let e2 = upload(&s3, "mpu", "k", &id, 2, &parts[1]).await;
    // Part 3 is on its way when the server dies.
    let _sock = raw_part(&s3, ("mpu", "k", &id), 3, PART as u64, &blob(3 * MIB, 123)).await;
    let staged = eventually(Duration::from_secs(20), || !tmp_files(&server).is_empty()).await;
    assert!(staged, "no staged file appeared while part 3 was arriving");

    let (server, _dir) = restart(&mut server, true);
    let s3 = server.client();
    // The start-up sweep removed the half-written part.
    assert!(
        tmp_files(&server).is_empty(),
        "staged files survived the restart: {:?}",
        tmp_files(&server)
    );
    let listed = listed_parts(&s3, "mpu", "k", &id).await;
    assert_eq!(
        listed,
        vec![(1, e1.clone(), PART as i64), (2, e2.clone(), PART as i64)]
    );
    let e3 = upload(&s3, "mpu", "k", &id, 3, &parts[2]).await;
    let done = complete(&s3, "mpu", "k", &id, &[(1, &e1), (2, &e2), (3, &e3)])
        .await
        .expect("complete after kill -9");
    let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    assert_eq!(done.e_tag(), Some(multipart_etag(&refs).as_str()));
    assert!(
        get(&s3, "mpu", "k").await == parts.concat(),
        "bytes differ after kill -9"
    );
}

#[tokio::test]
async fn part_cut_off_mid_body_leaves_nothing_behind() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;
    let p1 = blob(PART, 130);
    let e1 = upload(&s3, "mpu", "k", &id, 1, &p1).await;
    assert!(eventually(Duration::from_secs(10), || tmp_files(&server).is_empty()).await);

    let mut sock = raw_part(
        &s3,
        ("mpu", "k", &id),
        2,
        6 * MIB as u64,
        &blob(3 * MIB, 131),
    )
    .await;
    // The server stages the blocks it has received...
    let staged = eventually(Duration::from_secs(20), || !tmp_files(&server).is_empty()).await;
    assert!(
        staged,
        "no staged file appeared while the part was arriving"
    );
    // ...and the client goes away mid-body.
    sock.shutdown().await.unwrap();
    let response = raw_response(&mut sock).await;
    drop(sock);
    assert!(
        !response.starts_with("HTTP/1.1 200"),
        "a cut-off part was accepted: {response}"
    );

    let cleaned = eventually(Duration::from_secs(15), || tmp_files(&server).is_empty()).await;
    assert!(
        cleaned,
        "staged files left behind: {:?}",
        tmp_files(&server)
    );
    let listed = listed_parts(&s3, "mpu", "k", &id).await;
    assert_eq!(
        listed,
        vec![(1, e1.clone(), PART as i64)],
        "the cut-off part was recorded"
    );

    // The upload is still usable.
    let p2 = blob(MIB, 132);
    let e2 = upload(&s3, "mpu", "k", &id, 2, &p2).await;
    complete(&s3, "mpu", "k", &id, &[(1, &e1), (2, &e2)])
        .await
        .expect("complete");
    assert!(get(&s3, "mpu", "k").await == [&p1[..], &p2[..]].concat());
}

/// A part declared larger than 5 GiB is refused before any byte of it is read; bad digests record nothing.
#[tokio::test]
async fn oversized_and_corrupt_parts_are_refused() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let id = create(&s3, "mpu", "k").await;

    let mut sock = raw_part(&s3, ("mpu", "k", &id), 1, 5 * 1024 * MIB as u64 + 1, b"").await;
    let response = raw_response(&mut sock).await;
    drop(sock);
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    assert!(
        response.contains("<Code>EntityTooLarge</Code>"),
        "{response}"
    );

    let body = blob(100_000, 150);
    let err = s3
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number(1)
        .content_md5(b64(&md5(b"something else")))
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "BadDigest".into()));
    let err = s3
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number(1)
        .checksum_crc32(b64(&crc32(b"something else")))
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err).0, 400);
    assert!(
        listed_parts(&s3, "mpu", "k", &id).await.is_empty(),
        "a corrupt part was recorded"
    );
    let cleaned = eventually(Duration::from_secs(15), || tmp_files(&server).is_empty()).await;
    assert!(
        cleaned,
        "staged files left behind: {:?}",
        tmp_files(&server)
    );

    let out = s3
        .upload_part()
        .bucket("mpu")
        .key("k")
        .upload_id(&id)
        .part_number(1)
        .content_md5(b64(&md5(&body)))
        .body(ByteStream::from(body.clone()))
        .send()
        .await
        .expect("part with the right Content-MD5");
    assert_eq!(
        out.e_tag(),
        Some(format!("\"{}\"", hex::encode(md5(&body))).as_str())
    );
}

/// Parts no Complete names, and parts replaced by a re-upload, are reclaimed like aborted ones.
#[tokio::test]
async fn complete_reclaims_parts_it_does_not_use() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("mpu").send().await.unwrap();
    let before = data_files(&server);
    let id = create(&s3, "mpu", "k").await;
    upload(&s3, "mpu", "k", &id, 1, &blob(PART, 160)).await;
    let p1 = blob(PART, 161);
    let e1 = upload(&s3, "mpu", "k", &id, 1, &p1).await;
    let p2 = blob(MIB, 162);
    let e2 = upload(&s3, "mpu", "k", &id, 2, &p2).await;
    upload(&s3, "mpu", "k", &id, 3, &blob(MIB, 163)).await;
    complete(&s3, "mpu", "k", &id, &[(1, &e1), (2, &e2)])
        .await
        .expect("complete");

    // One shard file per disk for each of the two parts kept.
    let want = before + 2 * server.disks().len();
    let reclaimed = eventually(Duration::from_secs(30), || data_files(&server) == want).await;
    assert!(reclaimed, "{} data files, want {want}", data_files(&server));
    assert!(get(&s3, "mpu", "k").await == [&p1[..], &p2[..]].concat());
}

/// The configured maximum object size is enforced when the parts are assembled.
#[tokio::test]
async fn complete_beyond_the_configured_maximum_object_size_is_entity_too_large() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("strata.toml");
    std::fs::write(
        &cfg,
        "[storage]\nmax_put_size = 5242880\nmax_object_size = 8388608\n",
    )
    .unwrap();
    let server = Server::start_on(
        &dir.path().join("data"),
        &["--config", cfg.to_str().unwrap()],
    );
    let s3 = server.client();
    s3.create_bucket().bucket("capped").send().await.unwrap();
    let id = create(&s3, "capped", "big").await;
    let first = blob(5 * 1024 * 1024, 1);
    let second = blob(4 * 1024 * 1024, 2);
    let e1 = upload(&s3, "capped", "big", &id, 1, &first).await;
    let e2 = upload(&s3, "capped", "big", &id, 2, &second).await;
    let err = s3
        .complete_multipart_upload()
        .bucket("capped")
        .key("big")
        .upload_id(&id)
        .multipart_upload(completed(&[(1, &e1), (2, &e2)]))
        .send()
        .await
        .unwrap_err();
    assert_eq!(status_and_code(&err), (400, "EntityTooLarge".to_string()));
    // Under the cap the same upload completes.
    let small = complete(&s3, "capped", "big", &id, &[(1, &e1)])
        .await
        .unwrap();
    assert!(small.e_tag().is_some());
}
