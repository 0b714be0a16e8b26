//! The storage engine's public API: buckets and objects over the erasure-coded disks and the metadata store.
//!
//! The gateway calls these methods and nothing else. Every write is: stream data to staged shard files →
//! atomic, quorum-durable metadata commit (with the caller's preconditions) → publish the files. Every read
//! takes one metadata snapshot of the record and streams exactly that record's bytes.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::Stream;

use crate::checksum::{ChecksumAlgorithm, Digests};
use crate::disk::{DataId, Disk, PortableDisk};
use crate::erasure::{Codec, Geometry};
use crate::error::{BoxError, Error, Result};
use crate::list::{ListPage, ListQuery};
use crate::meta::replicated::ReplicatedMeta;
use crate::meta::{
    Applied, Batch, BucketRecord, Condition, MetaStore, ObjectData, ObjectRecord, Op,
    StoredChecksum,
};
use crate::sweep::{self, RepairJob};
use crate::write::{self, WriteTarget};

/// A stream of body bytes.
pub type BodyStream = Pin<Box<dyn Stream<Item = std::result::Result<Bytes, BoxError>> + Send>>;

/// Engine settings, derived from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Disk directories, one per shard slot.
    pub disks: Vec<PathBuf>,
    /// Erasure geometry.
    pub geometry: Geometry,
    /// Object bytes per coded block.
    pub block_size: usize,
    /// Objects up to this size are stored inline in metadata.
    pub inline_threshold: usize,
    /// fsync before acknowledging.
    pub fsync: bool,
    /// Largest single PUT.
    pub max_put_size: u64,
    /// Page cache per metadata replica, in bytes.
    pub meta_cache_bytes: usize,
    /// Largest object a multipart upload may assemble.
    pub max_object_size: u64,
}

impl Settings {
    /// Settings from the typed configuration.
    pub fn from_config(cfg: &strata_config::Config) -> Result<Self> {
        let geometry = Geometry {
            data: u8::try_from(cfg.storage.data_shards)
                .map_err(|_| Error::Config("data_shards too large".into()))?,
            parity: u8::try_from(cfg.storage.parity_shards)
                .map_err(|_| Error::Config("parity_shards too large".into()))?,
        };
        Ok(Self {
            disks: cfg.disk_paths(),
            geometry,
            block_size: cfg.storage.block_size,
            inline_threshold: cfg.storage.inline_threshold,
            fsync: cfg.storage.fsync,
            max_put_size: cfg.storage.max_put_size,
            meta_cache_bytes: cfg.storage.meta_cache_bytes,
            max_object_size: cfg.storage.max_object_size,
        })
    }
}

/// Options of an object write.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// Representation headers to store (lowercase names).
    pub headers: Vec<(String, String)>,
    /// User metadata (names without prefix, lowercase).
    pub user_meta: Vec<(String, String)>,
    /// Tags.
    pub tags: Vec<(String, String)>,
    /// Flexible checksum to compute and store.
    pub checksum: Option<ChecksumAlgorithm>,
    /// Declared body length (Content-Length or x-amz-decoded-content-length).
    pub content_length: Option<u64>,
    /// Commit-time precondition.
    pub condition: Condition,
    /// Owner's access key.
    pub owner: String,
    /// Storage class (STANDARD when empty).
    pub storage_class: String,
}

/// Summary of a bucket.
#[derive(Debug, Clone)]
pub struct BucketInfo {
    /// Name.
    pub name: String,
    /// Stored record.
    pub record: BucketRecord,
}

/// The storage engine.
pub struct Engine {
    settings: Settings,
    codec: Codec,
    disks: Vec<Arc<dyn Disk>>,
    meta: Arc<ReplicatedMeta>,
    repairs: tokio::sync::mpsc::UnboundedSender<RepairJob>,
    write_quorum: usize,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("settings", &self.settings)
            .finish()
    }
}

impl Engine {
    /// Opens the disks and metadata, recovers from any crash, and starts the background workers.
    /// Must be called inside a tokio runtime.
    pub async fn open(settings: Settings) -> Result<Arc<Self>> {
        let codec = Codec::new(settings.geometry)?;
        let n = settings.geometry.total();
        if settings.disks.len() != n {
            return Err(Error::Config(format!(
                "{} disks for a {n}-shard geometry",
                settings.disks.len()
            )));
        }
        let (k, m) = (
            usize::from(settings.geometry.data),
            usize::from(settings.geometry.parity),
        );
        // With k == m a k-disk write could split into two disjoint halves; require one more.
        let write_quorum = if k == m { k + 1 } else { k };
        let s = settings.clone();
        let (disks, meta) = tokio::task::spawn_blocking(move || -> Result<_> {
            let mut disks: Vec<Arc<dyn Disk>> = Vec::with_capacity(n);
            for (i, path) in s.disks.iter().enumerate() {
                disks.push(Arc::new(PortableDisk::open(i, path)?));
            }
            let meta = ReplicatedMeta::open(&s.disks, write_quorum, s.fsync, s.meta_cache_bytes)?;
            sweep::recover_staged(&disks, &meta, s.fsync)?;
            Ok((disks, meta))
        })
        .await
        .map_err(|e| Error::Meta(e.to_string()))??;
        let (repairs, jobs) = tokio::sync::mpsc::unbounded_channel();
        let engine = Arc::new(Self {
            settings,
            codec,
            disks,
            meta: Arc::new(meta),
            repairs,
            write_quorum,
        });
        tokio::spawn(sweep::gc_loop(engine.clone()));
        tokio::spawn(sweep::repair_loop(engine.clone(), jobs));
        Ok(engine)
    }

    /// Engine settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn codec(&self) -> &Codec {
        &self.codec
    }

    pub(crate) fn disks(&self) -> &[Arc<dyn Disk>] {
        &self.disks
    }

    pub(crate) fn meta(&self) -> Arc<ReplicatedMeta> {
        self.meta.clone()
    }

    pub(crate) fn write_quorum(&self) -> usize {
        self.write_quorum
    }

    /// The disk holding shard `slot` of a segment placed with `rotation`.
    pub(crate) fn disk_for(&self, rotation: u8, slot: usize) -> Arc<dyn Disk> {
        self.disks[(usize::from(rotation) + slot) % self.disks.len()].clone()
    }

    /// Spreads objects over the disks so parity and data shards do not always land on the same ones.
    pub(crate) fn rotation_for(&self, bucket: &str, key: &str) -> u8 {
        let mut h = blake3::Hasher::new();
        h.update(bucket.as_bytes());
        h.update(b"/");
        h.update(key.as_bytes());
        (h.finalize().as_bytes()[0] as usize % self.disks.len()) as u8
    }

    pub(crate) async fn commit(&self, batch: Batch) -> Result<Applied> {
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || meta.commit(batch))
            .await
            .map_err(|e| Error::Meta(e.to_string()))?
    }

    async fn read_meta<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReplicatedMeta) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || f(&meta))
            .await
            .map_err(|e| Error::Meta(e.to_string()))?
    }

    pub(crate) async fn read_inline(&self, id: DataId, hash: &[u8; 32]) -> Result<Bytes> {
        let replicas = self.meta.replica_count();
        for hint in 0..replicas.max(1) {
            let meta = self.meta.clone();
            let got = tokio::task::spawn_blocking(move || meta.inline(id, hint))
                .await
                .map_err(|e| Error::Meta(e.to_string()))?;
            match got {
                Ok(Some(bytes)) if blake3::hash(&bytes).as_bytes() == hash => {
                    return Ok(Bytes::from(bytes));
                }
                Ok(_) => tracing::warn!(
                    replica = hint,
                    "inline object missing or corrupt on this replica"
                ),
                Err(e) => tracing::warn!(replica = hint, error = %e, "inline read failed"),
            }
        }
        Err(Error::Unrecoverable(
            "inline object unreadable on every replica".into(),
        ))
    }

    pub(crate) fn queue_repair(&self, bucket: &str, key: &str, data_id: DataId) {
        let _ = self.repairs.send(RepairJob {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            data_id,
        });
    }

    // ---- buckets ----

    /// Creates a bucket.
    pub async fn create_bucket(&self, name: &str, owner: &str, region: &str) -> Result<()> {
        let record = BucketRecord {
            created_ms: chrono::Utc::now().timestamp_millis(),
            owner: owner.to_owned(),
            region: region.to_owned(),
        };
        self.commit(vec![Op::CreateBucket {
            name: name.to_owned(),
            record,
        }])
        .await?;
        Ok(())
    }

    /// A bucket's record, or NoSuchBucket.
    pub async fn bucket(&self, name: &str) -> Result<BucketRecord> {
        let name = name.to_owned();
        self.read_meta(move |m| m.bucket(&name))
            .await?
            .ok_or(Error::NoSuchBucket)
    }

    /// Deletes an empty bucket.
    pub async fn delete_bucket(&self, name: &str) -> Result<()> {
        self.commit(vec![Op::DeleteBucket {
            name: name.to_owned(),
        }])
        .await?;
        Ok(())
    }

    /// All buckets, sorted by name.
    pub async fn list_buckets(&self) -> Result<Vec<BucketInfo>> {
        let all = self.read_meta(|m| m.buckets()).await?;
        Ok(all
            .into_iter()
            .map(|(name, record)| BucketInfo { name, record })
            .collect())
    }

    // ---- objects ----

    /// Stores an object from a body stream. `verify` sees the digests before anything is committed and may
    /// reject the upload (Content-MD5, x-amz-checksum-*, trailers); the engine then leaves no trace of it.
    pub async fn put_object(
        &self,
        bucket: &str,
        key: &str,
        opts: PutOptions,
        body: BodyStream,
        verify: impl FnOnce(&Digests) -> std::result::Result<(), BoxError> + Send,
    ) -> Result<ObjectRecord> {
        self.bucket(bucket).await?;
        if opts.condition == Condition::Absent && self.head_object(bucket, key).await.is_ok() {
            return Err(Error::PreconditionFailed);
        }
        let target = WriteTarget {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: None,
            part: 1,
            upload_id: None,
        };
        let staged = write::write_body(
            self,
            &target,
            body,
            opts.content_length,
            self.settings.max_put_size,
            opts.checksum,
            true,
        )
        .await?;
        verify(&staged.digests).map_err(Error::Rejected)?;
        let record =
            ObjectRecord {
                version_id: None,
                size: staged.digests.len,
                etag: hex::encode(staged.digests.md5),
                last_modified_ms: chrono::Utc::now().timestamp_millis(),
                headers: opts.headers,
                user_meta: opts.user_meta,
                tags: opts.tags,
                checksum: staged.digests.checksum.clone().map(|(algorithm, value)| {
                    StoredChecksum {
                        algorithm,
                        value,
                        composite_parts: None,
                    }
                }),
                storage_class: if opts.storage_class.is_empty() {
                    "STANDARD".into()
                } else {
                    opts.storage_class
                },
                owner: opts.owner,
                data: staged.data.clone(),
                multipart: None,
            };
        self.commit(vec![Op::PutObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            record: Box::new(record.clone()),
            inline: staged.inline.clone(),
            condition: opts.condition,
        }])
        .await?;
        staged.publish(self.settings.fsync).await;
        Ok(record)
    }

    /// An object's current record, or NoSuchKey.
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectRecord> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let found = self.read_meta(move |m| m.object(&b, &k)).await?;
        match found {
            Some(r) => Ok(r),
            None => {
                self.bucket(bucket).await?;
                Err(Error::NoSuchKey)
            }
        }
    }

    /// Streams bytes `start..=end` of exactly this record's data (snapshot from [`Self::head_object`]).
    pub fn read_object(
        self: &Arc<Self>,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        start: u64,
        end: u64,
    ) -> BodyStream {
        crate::read::stream_range(
            self.clone(),
            bucket.to_owned(),
            key.to_owned(),
            record.clone(),
            start,
            end,
        )
    }

    /// Deletes an object; deleting a missing key succeeds (as S3).
    pub async fn delete_object(&self, bucket: &str, key: &str) -> Result<()> {
        self.commit(vec![Op::DeleteObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            condition: Condition::None,
        }])
        .await?;
        Ok(())
    }

    /// Deletes many objects in one atomic metadata commit (DeleteObjects); missing keys are not errors.
    pub async fn delete_objects(&self, bucket: &str, keys: &[String]) -> Result<()> {
        if keys.is_empty() {
            self.bucket(bucket).await?;
            return Ok(());
        }
        let batch = keys
            .iter()
            .map(|k| Op::DeleteObject {
                bucket: bucket.to_owned(),
                key: k.clone(),
                condition: Condition::None,
            })
            .collect();
        self.commit(batch).await?;
        Ok(())
    }

    /// Rewrites an object's metadata (tags, headers) without touching its data, if the data is still the same.
    pub async fn update_object(
        &self,
        bucket: &str,
        key: &str,
        update: impl FnOnce(&mut ObjectRecord) + Send + 'static,
    ) -> Result<ObjectRecord> {
        let mut record = self.head_object(bucket, key).await?;
        let ids = record.data_ids();
        update(&mut record);
        self.commit(vec![Op::PutObject {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            record: Box::new(record.clone()),
            inline: None,
            condition: Condition::Unchanged(ids),
        }])
        .await
        .map_err(|e| match e {
            // Someone replaced or deleted it meanwhile: the caller's view is stale.
            Error::PreconditionFailed => Error::NoSuchKey,
            e => e,
        })?;
        Ok(record)
    }

    /// Copies `source` (a snapshot record of `src_bucket/src_key`) to `bucket/key`, streaming its bytes.
    pub async fn copy_object(
        self: &Arc<Self>,
        src_bucket: &str,
        src_key: &str,
        source: &ObjectRecord,
        bucket: &str,
        key: &str,
        mut opts: PutOptions,
    ) -> Result<ObjectRecord> {
        let body = if source.size == 0 {
            Box::pin(futures_util::stream::empty()) as BodyStream
        } else {
            self.read_object(src_bucket, src_key, source, 0, source.size - 1)
        };
        opts.content_length = Some(source.size);
        if opts.checksum.is_none() {
            opts.checksum = source.checksum.as_ref().map(|c| c.algorithm);
        }
        self.put_object(bucket, key, opts, body, |_| Ok(())).await
    }

    /// Lists objects.
    pub async fn list_objects(&self, bucket: &str, query: ListQuery) -> Result<ListPage> {
        self.bucket(bucket).await?;
        let b = bucket.to_owned();
        self.read_meta(move |m| crate::list::list(m, &b, &query))
            .await
    }

    /// Data ids of an object's record and the disks holding each shard slot (for tests and admin tools).
    pub fn shard_paths(&self, record: &ObjectRecord) -> Vec<(DataId, Vec<PathBuf>)> {
        let ObjectData::Segments(segs) = &record.data else {
            return Vec::new();
        };
        segs.iter()
            .map(|s| {
                let hex = s.data_id.to_hex();
                let paths = (0..s.geometry.total())
                    .map(|slot| {
                        self.disk_for(s.rotation, slot)
                            .root()
                            .join("data")
                            .join(&hex[..2])
                            .join(&hex)
                    })
                    .collect();
                (s.data_id, paths)
            })
            .collect()
    }
}
