//! One object as a multipart upload: CreateMultipartUpload, the parts with up to `parallel` UploadPart
//! requests in flight (each its own task, so the parts of one object use several connections and cores),
//! CompleteMultipartUpload with the part numbers and ETags; on any failure, timeout or interrupt the upload is
//! aborted (best effort) so a run leaves no parts behind. Also the pure helpers (part splitting, the Complete
//! request document) and [`smoke`], an end-to-end check of these requests against a live endpoint.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use md5::{Digest as _, Md5};
use tokio::task::JoinSet;

use crate::client::{ClientConfig, OpError, S3Client};
use crate::payload::{Payload, PayloadBody};
use crate::setup;
use crate::sigv4::EMPTY_SHA256;

/// Most parts one upload may have (S3's limit).
pub(crate) const MAX_PARTS: usize = 10_000;
/// How long the AbortMultipartUpload after a failure may take.
pub(crate) const ABORT_TIMEOUT: Duration = Duration::from_secs(30);

/// Number of parts of an object of `size` bytes in parts of `part_size`: at least one (an empty object is
/// one empty part).
pub(crate) fn part_count(size: u64, part_size: u64) -> u64 {
    size.div_ceil(part_size.max(1)).max(1)
}

/// `(offset, length)` of every part of an object of `size` bytes: `part_size` each, the last one holding the
/// rest (shorter, never empty unless the object is).
pub(crate) fn split_parts(size: u64, part_size: u64) -> Vec<(u64, u64)> {
    let part_size = part_size.max(1);
    (0..part_count(size, part_size))
        .map(|i| {
            let offset = i * part_size;
            (offset, part_size.min(size - offset))
        })
        .collect()
}

/// The CompleteMultipartUpload request document for `parts` (`(part number, ETag as the server sent it)`,
/// in ascending order).
pub(crate) fn complete_xml(parts: &[(u32, String)]) -> String {
    let mut doc = String::with_capacity(96 + parts.len() * 80);
    doc.push_str(r#"<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">"#);
    for (number, etag) in parts {
        let _ = write!(
            doc,
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            escape_text(etag)
        );
    }
    doc.push_str("</CompleteMultipartUpload>");
    doc
}

/// Escapes XML element text (`&`, `<`, `>`); quotes stay as they are, as in the SDKs' documents.
fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// What every multipart upload of a run shares.
pub(crate) struct Uploader<'a> {
    pub(crate) client: &'a Arc<S3Client>,
    /// Built [`Payload::with_parts`]: its parts are the upload's parts.
    pub(crate) payload: &'a Arc<Payload>,
    /// UploadPart requests in flight at most.
    pub(crate) parallel: usize,
    /// Limit for the whole object (create, parts, complete); the abort after a failure comes on top.
    pub(crate) timeout: Duration,
    /// Set on Ctrl-C: no further part starts and the upload is aborted.
    pub(crate) stop: &'a AtomicBool,
}

impl Uploader<'_> {
    /// Uploads variant `variant` of the payload to `key`; returns the object's ETag. `on_part` sees every
    /// finished part (latency, and its bytes or its error) as it finishes, in the caller's task.
    pub(crate) async fn upload(
        &self,
        key: &str,
        variant: usize,
        on_part: &mut (dyn FnMut(Duration, &Result<u64, OpError>) + Send),
    ) -> Result<String, OpError> {
        let deadline = tokio::time::Instant::now() + self.timeout;
        let create = self.client.create_multipart_upload(key);
        let upload_id: Arc<str> = match tokio::time::timeout_at(deadline, create).await {
            Ok(id) => Arc::from(id?),
            Err(_) => return Err(OpError::Timeout),
        };
        let key: Arc<str> = Arc::from(key);
        let rest = self.parts_and_complete(&key, &upload_id, variant, on_part);
        let outcome = match tokio::time::timeout_at(deadline, rest).await {
            Ok(r) => r,
            Err(_) => Err(OpError::Timeout),
        };
        if outcome.is_err() {
            // Best effort; the part tasks are already cancelled (their JoinSet was dropped).
            let abort = self.client.abort_multipart_upload(&key, &upload_id);
            let _ = tokio::time::timeout(ABORT_TIMEOUT, abort).await;
        }
        outcome
    }

    async fn parts_and_complete(
        &self,
        key: &Arc<str>,
        upload_id: &Arc<str>,
        variant: usize,
        on_part: &mut (dyn FnMut(Duration, &Result<u64, OpError>) + Send),
    ) -> Result<String, OpError> {
        let n = self.payload.parts();
        let mut etags: Vec<Option<String>> = vec![None; n];
        // Dropping the set (early return, timeout) aborts the parts still in flight.
        let mut tasks = JoinSet::new();
        let mut next = 0;
        loop {
            while next < n && tasks.len() < self.parallel.max(1) {
                if self.stop.load(Ordering::Relaxed) {
                    return Err(OpError::Transport("interrupted".into()));
                }
                let (client, payload) = (self.client.clone(), self.payload.clone());
                let (key, upload_id, i) = (key.clone(), upload_id.clone(), next);
                tasks.spawn(async move {
                    let started = Instant::now();
                    let (body, hash) = payload.part(variant, i);
                    let number = u32::try_from(i + 1).unwrap_or(u32::MAX);
                    let r = client
                        .upload_part(&key, &upload_id, number, body, hash)
                        .await;
                    (i, started.elapsed(), r)
                });
                next += 1;
            }
            let Some(joined) = tasks.join_next().await else {
                break;
            };
            let (i, latency, result) =
                joined.map_err(|e| OpError::Transport(format!("part task failed: {e}")))?;
            let counted = match &result {
                Ok(_) => Ok(self.payload.part_len(i)),
                Err(e) => Err(e.clone()),
            };
            on_part(latency, &counted);
            etags[i] = Some(result?);
        }
        let parts = etags
            .into_iter()
            .enumerate()
            .map(|(i, etag)| {
                let etag =
                    etag.ok_or_else(|| OpError::Transport(format!("part {} lost", i + 1)))?;
                Ok((u32::try_from(i + 1).unwrap_or(u32::MAX), etag))
            })
            .collect::<Result<Vec<_>, OpError>>()?;
        self.client
            .complete_multipart_upload(key, upload_id, complete_xml(&parts))
            .await
    }
}

/// Key of the object [`smoke`] uploads.
const SMOKE_KEY: &str = "strata-bench-smoke/multipart";
/// Key of the upload [`smoke`] aborts.
const SMOKE_ABORT_KEY: &str = "strata-bench-smoke/aborted";

/// End-to-end check of the multipart requests the benchmark sends, against a live endpoint (region
/// us-east-1, signed payloads): uploads an 11 MiB object as three parts (5 MiB, 5 MiB, 1 MiB + 12,345 bytes)
/// two at a time and checks the ETag Complete answers (MD5 of the part MD5s, `-3`) and the bytes read back
/// (length and MD5); then creates an upload, uploads one part, aborts it and checks that a further (empty)
/// part of it is refused with 404 and that no object appeared. Creates `bucket` when missing and removes
/// what it created.
pub async fn smoke(
    endpoint: &str,
    access_key: &str,
    secret_key: &str,
    bucket: &str,
) -> anyhow::Result<()> {
    let client = Arc::new(S3Client::new(&ClientConfig {
        endpoint,
        addressing: crate::Addressing::Path,
        access_key,
        secret_key,
        region: "us-east-1",
        bucket,
        unsigned_payload: false,
        pool_size: 4,
        tls: &crate::transport::TlsOptions::default(),
    })?);
    let never = std::sync::atomic::AtomicBool::new(false);
    let created = setup::ensure_bucket(&client, "us-east-1", Duration::MAX, &never).await?;
    let outcome = smoke_checks(&client).await;
    let mut cleanup = match client.delete_object(SMOKE_KEY).await {
        Ok(()) | Err(OpError::Http { status: 404, .. }) => Ok(()),
        Err(e) => Err(e).context("smoke cleanup: DELETE object"),
    };
    if created && cleanup.is_ok() {
        cleanup = client
            .delete_bucket()
            .await
            .context("smoke cleanup: DeleteBucket");
    }
    outcome.and(cleanup)
}

async fn smoke_checks(client: &Arc<S3Client>) -> anyhow::Result<()> {
    const SIZE: u64 = (11 << 20) + 12_345;
    let payload = Arc::new(Payload::with_parts(SIZE, split_parts(SIZE, 5 << 20), true));
    let variant = 3;
    let mut part_md5s = Vec::new();
    let mut whole = Md5::new();
    for n in 0..payload.parts() {
        let (mut body, _) = payload.part(variant, n);
        let mut md5 = Md5::new();
        while let Some(chunk) = body.next_chunk() {
            md5.update(&chunk);
            whole.update(&chunk);
        }
        part_md5s.extend_from_slice(&md5.finalize());
    }
    let whole: [u8; 16] = whole.finalize().into();
    let expected_etag = format!(
        "\"{}-{}\"",
        hex::encode(Md5::digest(&part_md5s)),
        payload.parts()
    );
    let stop = AtomicBool::new(false);
    let uploader = Uploader {
        client,
        payload: &payload,
        parallel: 2,
        timeout: Duration::from_secs(120),
        stop: &stop,
    };
    let mut parts_ok = 0;
    let etag = uploader
        .upload(SMOKE_KEY, variant, &mut |_, r| {
            parts_ok += u32::from(r.is_ok())
        })
        .await
        .context("multipart upload of 3 parts")?;
    ensure!(parts_ok == 3, "{parts_ok} parts reported done, expected 3");
    ensure!(
        etag == expected_etag,
        "Complete answered ETag {etag}, expected {expected_etag}"
    );
    let (len, md5) = client
        .get_object_md5(SMOKE_KEY)
        .await
        .context("GET of the completed object")?;
    ensure!(len == SIZE, "GET returned {len} bytes, expected {SIZE}");
    ensure!(md5 == whole, "GET returned other bytes than were uploaded");

    let id = client
        .create_multipart_upload(SMOKE_ABORT_KEY)
        .await
        .context("CreateMultipartUpload")?;
    let (body, hash) = payload.part(variant, 0);
    client
        .upload_part(SMOKE_ABORT_KEY, &id, 1, body, hash)
        .await
        .context("UploadPart before the abort")?;
    client
        .abort_multipart_upload(SMOKE_ABORT_KEY, &id)
        .await
        .context("AbortMultipartUpload")?;
    // An empty part: a server that refuses before reading a body may close the connection while a large
    // body is still being sent, and the client may then see that instead of the answer.
    let empty = PayloadBody::empty();
    match client
        .upload_part(SMOKE_ABORT_KEY, &id, 2, empty, EMPTY_SHA256)
        .await
    {
        Err(OpError::Http { status: 404, .. }) => {}
        other => bail!("UploadPart after the abort: expected 404 NoSuchUpload, got {other:?}"),
    }
    match client.head_object(SMOKE_ABORT_KEY).await {
        Err(OpError::Http { status: 404, .. }) => Ok(()),
        other => bail!("HEAD of the aborted upload's key: expected 404, got {other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_split_with_a_shorter_last_part() {
        let mib = 1u64 << 20;
        assert_eq!(
            split_parts(20 * mib, 8 * mib),
            [(0, 8 * mib), (8 * mib, 8 * mib), (16 * mib, 4 * mib)]
        );
        // exact multiple: no empty tail part
        assert_eq!(
            split_parts(2 << 30, 256 * mib),
            (0..8)
                .map(|i| (i * 256 * mib, 256 * mib))
                .collect::<Vec<_>>()
        );
        // smaller than one part, and empty
        assert_eq!(split_parts(1000, 64 * mib), [(0, 1000)]);
        assert_eq!(split_parts(0, 64 * mib), [(0, 0)]);
        assert_eq!(split_parts(10, 3), [(0, 3), (3, 3), (6, 3), (9, 1)]);
        assert_eq!(part_count(10, 3), 4);
        assert_eq!(part_count(0, 3), 1);
        assert_eq!(part_count(1 << 40, 1 << 20), 1 << 20);
        // every byte exactly once, in order
        let parts = split_parts(1_000_003, 65_536);
        assert_eq!(parts.len() as u64, part_count(1_000_003, 65_536));
        let mut end = 0;
        for &(off, len) in &parts {
            assert_eq!(off, end);
            assert!(len > 0 && len <= 65_536);
            end = off + len;
        }
        assert_eq!(end, 1_000_003);
        assert_eq!(parts.last(), Some(&(983_040, 16_963)));
    }

    #[test]
    fn complete_document() {
        let parts = vec![
            (1, "\"0cc175b9c0f1b6a831c399e269772661\"".to_owned()),
            (2, "\"92eb5ffee6ae2fec3ad71c777531578f\"".to_owned()),
            (3, "odd<&>".to_owned()),
        ];
        assert_eq!(
            complete_xml(&parts),
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <Part><PartNumber>1</PartNumber><ETag>\"0cc175b9c0f1b6a831c399e269772661\"</ETag></Part>\
             <Part><PartNumber>2</PartNumber><ETag>\"92eb5ffee6ae2fec3ad71c777531578f\"</ETag></Part>\
             <Part><PartNumber>3</PartNumber><ETag>odd&lt;&amp;&gt;</ETag></Part>\
             </CompleteMultipartUpload>"
        );
        assert_eq!(
            complete_xml(&[]),
            "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"></CompleteMultipartUpload>"
        );
    }
}
