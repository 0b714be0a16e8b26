//! Multipart uploads: create, upload (or copy) parts, complete, abort, and list.
//!
//! Parts are written like any object data (erasure-coded shard files, never inline) and recorded in the
//! metadata `parts` table. Completing is a metadata operation only: the object's record lists the parts'
//! segments in order, in the same atomic commit that removes the upload, so no part byte is copied.

use std::sync::Arc;

use crate::md5::Md5;

use crate::checksum::{self, ChecksumAlgorithm, Digests};
use crate::engine::{BodyStream, Engine, PutOptions};
use crate::error::{BoxError, Error, Result};
use crate::list::prefix_successor;
use crate::meta::{
    ChecksumType, MetaStore, MultipartInfo, ObjectData, ObjectRecord, Op, PartRecord,
    StoredChecksum, UploadRecord,
};
use crate::write::{self, WriteTarget};

/// Smallest part other than the last, as AWS.
pub const MIN_PART_SIZE: u64 = 5 * 1024 * 1024;
/// Largest part, as AWS.
pub const MAX_PART_SIZE: u64 = 5 * 1024 * 1024 * 1024;
/// Highest part number.
pub const MAX_PART_NUMBER: u32 = 10_000;

/// One entry of a CompleteMultipartUpload request.
#[derive(Debug, Clone)]
pub struct CompletePart {
    /// Part number.
    pub number: u32,
    /// ETag the client got for the part (quotes optional).
    pub etag: String,
    /// Part checksum the client asserts, raw.
    pub checksum: Option<Vec<u8>>,
}

/// What to list of the uploads in progress.
#[derive(Debug, Clone, Default)]
pub struct UploadListQuery {
    /// Key prefix.
    pub prefix: String,
    /// Delimiter for common prefixes.
    pub delimiter: Option<String>,
    /// Start after this key...
    pub key_marker: Option<String>,
    /// ...and, within it, after this upload id.
    pub upload_id_marker: Option<String>,
    /// Most uploads plus prefixes.
    pub max: usize,
}

/// A page of uploads.
#[derive(Debug, Clone, Default)]
pub struct UploadPage {
    /// `(key, upload id, record)`.
    pub uploads: Vec<(String, String, UploadRecord)>,
    /// Rolled-up prefixes.
    pub common_prefixes: Vec<String>,
    /// More follow.
    pub truncated: bool,
    /// Where to continue: key marker and upload id marker.
    pub next: Option<(String, String)>,
}

fn new_upload_id() -> String {
    let micros = chrono::Utc::now().timestamp_micros();
    format!("{micros:016x}{}", hex::encode(rand::random::<[u8; 12]>()))
}

impl Engine {
    async fn upload_record(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<UploadRecord> {
        let (b, k, u) = (bucket.to_owned(), key.to_owned(), upload_id.to_owned());
        match self.lookup_meta(move |m| m.upload(&b, &k, &u)).await? {
            Some(r) => Ok(r),
            None => {
                self.bucket(bucket).await?;
                Err(Error::NoSuchUpload)
            }
        }
    }

    /// Starts a multipart upload; returns its id.
    pub async fn create_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        opts: PutOptions,
        checksum_type: Option<ChecksumType>,
    ) -> Result<String> {
        let checksum = opts.checksum.map(|a| {
            let default = if a == ChecksumAlgorithm::Crc64Nvme {
                ChecksumType::FullObject
            } else {
                ChecksumType::Composite
            };
            (a, checksum_type.unwrap_or(default))
        });
        let bucket_record = self.bucket(bucket).await?;
        crate::engine::version_lock(&bucket_record, opts.lock)?;
        let record = UploadRecord {
            lock: opts.lock,
            initiated_ms: chrono::Utc::now().timestamp_millis(),
            owner: opts.owner,
            headers: opts.headers,
            user_meta: opts.user_meta,
            tags: opts.tags,
            storage_class: if opts.storage_class.is_empty() {
                "STANDARD".into()
            } else {
                opts.storage_class
            },
            checksum,
        };
        let upload_id = new_upload_id();
        self.commit(vec![Op::CreateUpload {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.clone(),
            record: Box::new(record),
        }])
        .await?;
        Ok(upload_id)
    }

    /// Stores one part from a body stream; `verify` may reject it before it is recorded.
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: BodyStream,
        content_length: Option<u64>,
        request_algorithm: Option<ChecksumAlgorithm>,
        verify: impl FnOnce(&Digests) -> std::result::Result<(), BoxError> + Send,
    ) -> Result<(PartRecord, Option<ChecksumAlgorithm>)> {
        let upload = self.upload_record(bucket, key, upload_id).await?;
        let upload_algorithm = upload.checksum.map(|(a, _)| a);
        if let (Some(r), Some(u)) = (request_algorithm, upload_algorithm)
            && r != u
        {
            return Err(Error::InvalidRequest(format!(
                "Checksum Type mismatch occurred, expected checksum Type: {}, actual checksum Type: {}",
                u.name().to_lowercase(),
                r.name().to_lowercase()
            )));
        }
        let algorithm = request_algorithm.or(upload_algorithm);
        let target = WriteTarget {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: None,
            part: part_number,
            upload_id: Some(upload_id.to_owned()),
        };
        let staged = write::write_body(
            self,
            &target,
            body,
            content_length,
            MAX_PART_SIZE,
            algorithm,
            false,
        )
        .await?;
        verify(&staged.digests).map_err(Error::Rejected)?;
        let ObjectData::Segments(segments) = &staged.data else {
            return Err(Error::Meta("part data written inline".into()));
        };
        let record = PartRecord {
            etag: hex::encode(staged.digests.md5),
            last_modified_ms: chrono::Utc::now().timestamp_millis(),
            // Only a checksum in the upload's algorithm can take part in the whole-object checksum.
            checksum: staged
                .digests
                .checksum
                .as_ref()
                .filter(|(a, _)| Some(*a) == upload_algorithm)
                .map(|(_, raw)| raw.clone()),
            segment: segments[0].clone(),
        };
        self.commit(vec![Op::PutPart {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            part_number,
            record: Box::new(record.clone()),
        }])
        .await?;
        let computed = staged.digests.checksum.as_ref().map(|(a, _)| *a);
        staged.publish(self.settings().fsync).await;
        Ok((record, computed))
    }

    /// Stores bytes `start..=end` of a source object snapshot as one part (UploadPartCopy).
    #[allow(clippy::too_many_arguments)]
    pub async fn upload_part_copy(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        upload_id: &str,
        part_number: u32,
        src: (&str, &str, &ObjectRecord),
        start: u64,
        end: u64,
    ) -> Result<(PartRecord, Option<ChecksumAlgorithm>)> {
        let (src_bucket, src_key, record) = src;
        let len = if record.size == 0 { 0 } else { end - start + 1 };
        let body: BodyStream = if len == 0 {
            Box::pin(futures_util::stream::empty())
        } else {
            self.read_object(src_bucket, src_key, record, start, end)
        };
        self.upload_part(
            bucket,
            key,
            upload_id,
            part_number,
            body,
            Some(len),
            None,
            |_| Ok(()),
        )
        .await
    }

    /// Assembles the listed parts into the object (a metadata-only commit).
    pub async fn complete_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        requested: Vec<CompletePart>,
    ) -> Result<ObjectRecord> {
        let upload = match self.upload_record(bucket, key, upload_id).await {
            Ok(u) => u,
            Err(Error::NoSuchUpload) => {
                // A retried Complete of an upload that already completed answers with the object it made.
                if let Ok(current) = self.head_object(bucket, key).await
                    && current
                        .multipart
                        .as_ref()
                        .is_some_and(|m| m.upload_id == upload_id)
                {
                    return Ok(current);
                }
                return Err(Error::NoSuchUpload);
            }
            Err(e) => return Err(e),
        };
        if requested.windows(2).any(|w| w[0].number >= w[1].number) {
            return Err(Error::InvalidPartOrder);
        }
        // As S3: with an additional checksum the parts must be 1..=N, and a COMPOSITE one needs every part's.
        if let Some((algo, kind)) = upload.checksum {
            if requested.iter().zip(1..).any(|(p, n)| p.number != n) {
                return Err(Error::InvalidPartOrder);
            }
            if let Some(p) = requested.iter().find(|p| p.checksum.is_none())
                && kind == ChecksumType::Composite
            {
                return Err(Error::InvalidRequest(format!(
                    "The upload was created using a {} checksum. The complete request must include the checksum for \
                     each part. It was missing for part {} in the request.",
                    algo.name().to_lowercase(),
                    p.number
                )));
            }
        }
        let id = upload_id.to_owned();
        let stored = self
            .read_meta(move |m| m.parts(&id, 0, MAX_PART_NUMBER as usize + 1))
            .await?;
        let mut chosen = Vec::with_capacity(requested.len());
        for (i, want) in requested.iter().enumerate() {
            let Some((_, part)) = stored.iter().find(|(n, _)| *n == want.number) else {
                return Err(Error::InvalidPart(format!(
                    "part {} was not uploaded",
                    want.number
                )));
            };
            if want.etag.trim().trim_matches('"') != part.etag {
                return Err(Error::InvalidPart(format!(
                    "part {} has another ETag",
                    want.number
                )));
            }
            if let (Some(w), Some(have)) = (&want.checksum, &part.checksum)
                && w != have
            {
                return Err(Error::InvalidPart(format!(
                    "part {} has another checksum",
                    want.number
                )));
            }
            if i + 1 < requested.len() && part.segment.size < MIN_PART_SIZE {
                return Err(Error::EntityTooSmall);
            }
            chosen.push((want.number, part.clone()));
        }
        let size: u64 = chosen.iter().map(|(_, p)| p.segment.size).sum();
        if size > self.settings().max_object_size {
            return Err(Error::EntityTooLarge);
        }
        let mut md5 = Md5::new();
        for (_, p) in &chosen {
            md5.update(&p.segment.md5);
        }
        let etag = format!("{}-{}", hex::encode(md5.finalize()), chosen.len());
        let checksum = upload
            .checksum
            .and_then(|(algo, kind)| whole_checksum(algo, kind, &chosen));
        let bucket_record = self.bucket(bucket).await?;
        let lock = crate::engine::version_lock(&bucket_record, upload.lock)?;
        let (version_key, version_id) = crate::engine::new_version(bucket_record.versioning);
        let record = ObjectRecord {
            version_id,
            version_key,
            size,
            etag,
            last_modified_ms: chrono::Utc::now().timestamp_millis(),
            headers: upload.headers,
            user_meta: upload.user_meta,
            tags: upload.tags,
            checksum,
            storage_class: upload.storage_class,
            owner: upload.owner,
            data: ObjectData::Segments(chosen.iter().map(|(_, p)| p.segment.clone()).collect()),
            lock,
            multipart: Some(MultipartInfo {
                upload_id: upload_id.to_owned(),
                checksum_type: upload.checksum.map(|(_, k)| k),
            }),
        };
        self.commit(vec![Op::CompleteUpload {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
            record: Box::new(record.clone()),
            parts: chosen
                .iter()
                .map(|(n, p)| (*n, p.segment.data_id))
                .collect(),
        }])
        .await?;
        Ok(record)
    }

    /// Aborts an upload; its parts' space is reclaimed by GC.
    pub async fn abort_multipart_upload(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
    ) -> Result<()> {
        self.commit(vec![Op::AbortUpload {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            upload_id: upload_id.to_owned(),
        }])
        .await?;
        Ok(())
    }

    /// Parts of an upload after `marker`, at most `max`; also whether more follow.
    pub async fn list_parts(
        &self,
        bucket: &str,
        key: &str,
        upload_id: &str,
        marker: u32,
        max: usize,
    ) -> Result<(UploadRecord, Vec<(u32, PartRecord)>, bool)> {
        let upload = self.upload_record(bucket, key, upload_id).await?;
        let id = upload_id.to_owned();
        let mut parts = self
            .read_meta(move |m| m.parts(&id, marker, max + 1))
            .await?;
        let truncated = parts.len() > max;
        parts.truncate(max);
        Ok((upload, parts, truncated))
    }

    /// Uploads in progress in a bucket.
    pub async fn list_multipart_uploads(
        &self,
        bucket: &str,
        q: UploadListQuery,
    ) -> Result<UploadPage> {
        self.bucket(bucket).await?;
        let b = bucket.to_owned();
        self.read_meta(move |m| list_uploads(m, &b, &q)).await
    }
}

fn whole_checksum(
    algo: ChecksumAlgorithm,
    kind: ChecksumType,
    parts: &[(u32, PartRecord)],
) -> Option<StoredChecksum> {
    let sums: Option<Vec<&Vec<u8>>> = parts.iter().map(|(_, p)| p.checksum.as_ref()).collect();
    let sums = sums?;
    match kind {
        ChecksumType::Composite => {
            let joined: Vec<u8> = sums.iter().flat_map(|s| s.iter().copied()).collect();
            Some(StoredChecksum {
                algorithm: algo,
                value: checksum::digest(algo, &joined),
                composite_parts: Some(parts.len() as u32),
            })
        }
        ChecksumType::FullObject => {
            let runs: Vec<(&[u8], u64)> = sums
                .iter()
                .zip(parts)
                .map(|(s, (_, p))| (s.as_slice(), p.segment.size))
                .collect();
            checksum::combine_crcs(algo, &runs).map(|value| StoredChecksum {
                algorithm: algo,
                value,
                composite_parts: None,
            })
        }
    }
}

fn list_uploads(meta: &dyn MetaStore, bucket: &str, q: &UploadListQuery) -> Result<UploadPage> {
    let mut page = UploadPage::default();
    if q.max == 0 {
        return Ok(page);
    }
    // Upload ids are lowercase hex, so "~" sorts after all of them: "after every upload of this key".
    let mut after: (Vec<u8>, String) = match (&q.key_marker, &q.upload_id_marker) {
        (Some(k), Some(u)) if !u.is_empty() => (k.as_bytes().to_vec(), u.clone()),
        (Some(k), _) if k.as_str() >= q.prefix.as_str() => (k.as_bytes().to_vec(), "~".into()),
        _ => (q.prefix.as_bytes().to_vec(), String::new()),
    };
    'scan: loop {
        let rows = meta.uploads(bucket, Some((&after.0, &after.1)), q.max + 1)?;
        if rows.is_empty() {
            break;
        }
        let exhausted = rows.len() <= q.max;
        for (key, id, record) in rows {
            if !key.starts_with(&q.prefix) {
                break 'scan;
            }
            let rolled = q
                .delimiter
                .as_deref()
                .filter(|d| !d.is_empty())
                .and_then(|d| {
                    key[q.prefix.len()..]
                        .find(d)
                        .map(|i| key[..q.prefix.len() + i + d.len()].to_owned())
                });
            if rolled.is_some() && rolled == q.key_marker {
                // The common prefix the previous page ended on: skip everything under it.
                match rolled
                    .as_deref()
                    .and_then(|cp| prefix_successor(cp.as_bytes()))
                {
                    Some(n) => {
                        after = (n, String::new());
                        continue 'scan;
                    }
                    None => break 'scan,
                }
            }
            if page.uploads.len() + page.common_prefixes.len() == q.max {
                page.truncated = true;
                break 'scan;
            }
            if let Some(cp) = rolled {
                let next = prefix_successor(cp.as_bytes());
                page.next = Some((cp.clone(), String::new()));
                page.common_prefixes.push(cp);
                match next {
                    Some(n) => {
                        after = (n, String::new());
                        continue 'scan;
                    }
                    None => break 'scan,
                }
            }
            after = (key.as_bytes().to_vec(), id.clone());
            page.next = Some((key.clone(), id.clone()));
            page.uploads.push((key, id, record));
        }
        if exhausted {
            break;
        }
    }
    Ok(page)
}
