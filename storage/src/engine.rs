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
use crate::disk::{DataId, Disk};
use crate::erasure::{Codec, Geometry};
use crate::error::{BoxError, Error, Result};
use crate::list::{ListPage, ListQuery};
use crate::lock::{self, Retention, VersionLock};
use crate::meta::replicated::ReplicatedMeta;
use crate::meta::{
    Applied, Batch, BucketRecord, Condition, LockChange, MetaStore, ObjectData, ObjectLockConfig,
    ObjectRecord, Op, StoredChecksum, UserRecord, VersionKey, Versioning,
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
    /// Disk I/O backend asked for (io_uring falls back to portable where the kernel refuses it).
    pub io: strata_config::IoBackend,
}

impl Settings {
    /// Settings from the typed configuration.
    pub fn from_config(cfg: &strata_config::Config) -> Result<Self> {
        let geometry = Geometry::new(
            u8::try_from(cfg.storage.data_shards)
                .map_err(|_| Error::Config("data_shards too large".into()))?,
            u8::try_from(cfg.storage.parity_shards)
                .map_err(|_| Error::Config("parity_shards too large".into()))?,
        );
        Ok(Self {
            disks: cfg.disk_paths(),
            geometry,
            block_size: cfg.storage.block_size,
            inline_threshold: cfg.storage.inline_threshold,
            fsync: cfg.storage.fsync,
            max_put_size: cfg.storage.max_put_size,
            meta_cache_bytes: cfg.storage.meta_cache_bytes,
            max_object_size: cfg.storage.max_object_size,
            io: cfg.storage.io,
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
    /// Explicit retention / legal hold (x-amz-object-lock-*); `None` takes the bucket's default.
    pub lock: Option<VersionLock>,
}

/// Summary of a bucket.
#[derive(Debug, Clone)]
pub struct BucketInfo {
    /// Name.
    pub name: String,
    /// Stored record.
    pub record: BucketRecord,
}

/// How many disks hold a metadata replica (the first ones of the set) and how many of those must log a commit
/// for it to count, for `k` data and `m` parity shards.
///
/// `2m + 1` replicas with a quorum of `m + 1` are enough for everything the metadata must do after any `m`
/// disks are lost: the `m + 1` left still make a write quorum, so writes go on, and they are exactly the
/// `replicas - quorum + 1` that must open for a restart to be sure it holds every acknowledged commit (every
/// two sets of `m + 1` out of `2m + 1` share a replica). More replicas only repeat the work: every commit is
/// logged, applied and checkpointed on each one. At 4+2 that work was 74% of the server's CPU on 4 KiB PUTs,
/// and dropping the sixth replica cut that CPU per PUT by a median 16% over ten alternated pairs
/// (ARCHITECTURE.md, Metadata). Geometries with `n < 2m + 1` keep a replica on
/// every disk with the data's write quorum, and so does `m = 0` (no parity: a replica on every disk is then
/// the only thing that lets buckets and inline objects outlive a lost disk).
///
/// Where `k < m` (a geometry with more parity than data, such as 1+2) the data's write quorum `k` is no
/// majority of the replicas: writes go on after `m` losses, but a restart then needs `n - k + 1` replicas
/// and refuses with fewer. That is the behaviour such sets always had; no quorum gives both at `n < 2m + 1`.
///
/// A store written with a replica on every disk opens the same way: an acknowledged commit was logged on
/// `n - m` replicas, so at least `m + 1` of the first `2m + 1` hold it. The replica on the other disks is
/// then left alone, no longer written (see [`Engine::open`]).
pub(crate) fn metadata_replicas(k: usize, m: usize) -> (usize, usize) {
    let n = k + m;
    if m > 0 && 2 * m + 1 < n {
        (2 * m + 1, m + 1)
    } else {
        (n, data_write_quorum(k, m))
    }
}

/// Shards that must be durable for a write of `k` data and `m` parity shards to count.
fn data_write_quorum(k: usize, m: usize) -> usize {
    // With k == m a k-disk write could split into two disjoint halves; require one more.
    if k == m { k + 1 } else { k }
}

/// The storage engine.
pub struct Engine {
    settings: Settings,
    codec: Codec,
    disks: Vec<Arc<dyn Disk>>,
    io: strata_config::IoBackend,
    meta: Arc<ReplicatedMeta>,
    repairs: tokio::sync::mpsc::UnboundedSender<RepairJob>,
    write_quorum: usize,
    /// Object bodies being streamed (see `read::Pace`).
    open_streams: Arc<std::sync::atomic::AtomicUsize>,
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
        let write_quorum = data_write_quorum(k, m);
        let (meta_replicas, meta_quorum) = metadata_replicas(k, m);
        let s = settings.clone();
        let (disks, io, meta) = tokio::task::spawn_blocking(move || -> Result<_> {
            let (disks, io) = crate::backend::open_disks(s.io, &s.disks)?;
            let meta = ReplicatedMeta::open(
                &s.disks[..meta_replicas],
                meta_quorum,
                s.fsync,
                s.meta_cache_bytes,
            )?;
            for (i, root) in s.disks.iter().enumerate().skip(meta_replicas) {
                if root.join(crate::meta::replicated::DB_FILE).exists()
                    || root.join(crate::meta::WAL_FILE).exists()
                {
                    // Written by a build that kept a replica on every disk; nothing reads it now.
                    tracing::info!(
                        disk = i,
                        "this disk's metadata replica is no longer kept (the first {meta_replicas} disks \
                         hold them): strata.redb and strata.wal here are not read and can be removed"
                    );
                }
            }
            sweep::recover_staged(&disks, &meta, s.fsync)?;
            Ok((disks, io, meta))
        })
        .await
        .map_err(|e| Error::Meta(e.to_string()))??;
        let (repairs, jobs) = tokio::sync::mpsc::unbounded_channel();
        let engine = Arc::new(Self {
            settings,
            codec,
            disks,
            io,
            meta: Arc::new(meta),
            repairs,
            write_quorum,
            open_streams: Arc::default(),
        });
        tokio::spawn(sweep::gc_loop(engine.clone()));
        tokio::spawn(sweep::repair_loop(engine.clone(), jobs));
        Ok(engine)
    }

    /// Engine settings.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The disk I/O backend in use (portable when io_uring was asked for but refused).
    pub fn io_backend(&self) -> strata_config::IoBackend {
        self.io
    }

    pub(crate) fn codec(&self) -> &Codec {
        &self.codec
    }

    pub(crate) fn disks(&self) -> &[Arc<dyn Disk>] {
        &self.disks
    }

    /// The count of object bodies being streamed.
    pub(crate) fn open_streams(&self) -> &Arc<std::sync::atomic::AtomicUsize> {
        &self.open_streams
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
        self.meta
            .enqueue(batch)?
            .await
            .map_err(|_| Error::Meta("metadata committer stopped".into()))?
    }

    /// A point lookup (one key of one table) in the metadata, run on the calling task. redb serves these from
    /// its page cache in microseconds, less than a hand-over to the blocking pool costs: that hand-over (two
    /// thread wake-ups per lookup) was a third of the server's CPU on 4 KiB GETs. Scans and anything that
    /// may read many pages go through [`Self::read_meta`].
    pub(crate) async fn lookup_meta<T>(
        &self,
        f: impl FnOnce(&ReplicatedMeta) -> Result<T>,
    ) -> Result<T> {
        f(&self.meta)
    }

    pub(crate) async fn read_meta<T: Send + 'static>(
        &self,
        f: impl FnOnce(&ReplicatedMeta) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let meta = self.meta.clone();
        tokio::task::spawn_blocking(move || f(&meta))
            .await
            .map_err(|e| Error::Meta(e.to_string()))?
    }

    pub(crate) async fn read_inline(&self, id: DataId, len: u64, hash: &[u8; 32]) -> Result<Bytes> {
        let replicas = self.meta.replica_count();
        for hint in 0..replicas.max(1) {
            // One key of at most the inline threshold: a point lookup per 4,066 bytes (see `lookup_meta`).
            let got = self.meta.inline(id, len, hint);
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

    /// Creates a bucket; with `object_lock`, versioning is enabled for good and object lock is on.
    pub async fn create_bucket(
        &self,
        name: &str,
        owner: &str,
        region: &str,
        object_lock: bool,
    ) -> Result<()> {
        let record = BucketRecord {
            created_ms: chrono::Utc::now().timestamp_millis(),
            owner: owner.to_owned(),
            region: region.to_owned(),
            versioning: if object_lock {
                Versioning::Enabled
            } else {
                Versioning::Unversioned
            },
            object_lock: object_lock.then_some(ObjectLockConfig {
                default_retention: None,
            }),
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
        self.lookup_meta(move |m| m.bucket(&name))
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
        let bucket_record = self.bucket(bucket).await?;
        let versioning = bucket_record.versioning;
        let lock = version_lock(&bucket_record, opts.lock)?;
        if opts.condition == Condition::Absent && self.head_object(bucket, key).await.is_ok() {
            return Err(Error::PreconditionFailed);
        }
        let (version_key, version_id) = new_version(versioning);
        let target = WriteTarget {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version_id: version_id.clone(),
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
                version_id,
                version_key,
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
                lock,
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

    /// An object's current record, or NoSuchKey (also when the current version is a delete marker).
    pub async fn head_object(&self, bucket: &str, key: &str) -> Result<ObjectRecord> {
        match self.head_version(bucket, key, None).await? {
            r if r.is_delete_marker() => Err(Error::NoSuchKey),
            r => Ok(r),
        }
    }

    /// The current version (`version_id` None) or the named one (`"null"` for the null version), delete
    /// markers included.
    pub async fn head_version(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
    ) -> Result<ObjectRecord> {
        let (b, k) = (bucket.to_owned(), key.to_owned());
        let found = match version_id {
            None => self.lookup_meta(move |m| m.object(&b, &k)).await?,
            Some("null") => self.lookup_meta(move |m| m.null_version(&b, &k)).await?,
            Some(id) => {
                let v = VersionKey::from_id(id).ok_or(Error::InvalidVersion)?;
                self.lookup_meta(move |m| m.version(&b, &k, v)).await?
            }
        };
        match found {
            Some(r) => Ok(r),
            None => {
                self.bucket(bucket).await?;
                Err(if version_id.is_some() {
                    Error::NoSuchVersion
                } else {
                    Error::NoSuchKey
                })
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

    /// Deletes an object as S3 does for the bucket's versioning state: with a version id, that version goes;
    /// without one, an unversioned bucket loses the object and a versioned one gains a delete marker.
    /// Deleting something missing succeeds.
    pub async fn delete_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        bypass_governance: bool,
    ) -> Result<Deleted> {
        let entry = [(key.to_owned(), version_id.map(str::to_owned))];
        self.delete_objects(bucket, &entry, bypass_governance)
            .await?
            .remove(0)
    }

    /// Deletes many objects (DeleteObjects) in one atomic metadata commit; per-entry results in order.
    pub async fn delete_objects(
        &self,
        bucket: &str,
        entries: &[(String, Option<String>)],
        bypass_governance: bool,
    ) -> Result<Vec<Result<Deleted>>> {
        let now = chrono::Utc::now().timestamp_millis();
        let owner = self.bucket(bucket).await?;
        let mut ops = Vec::with_capacity(entries.len());
        let mut results = Vec::with_capacity(entries.len());
        for (key, version_id) in entries {
            let (op, result) = match version_id {
                Some(id) => match self.head_version(bucket, key, Some(id)).await {
                    // Checked here for a per-key answer, and again inside the commit against races.
                    Ok(r) if let Err(e) = lock::check_removal(&r.lock, now, bypass_governance) => {
                        (None, Err(e))
                    }
                    Ok(r) => (
                        Some(Op::DeleteVersion {
                            bucket: bucket.to_owned(),
                            key: key.clone(),
                            version: r.version_key,
                            bypass_governance,
                        }),
                        Ok(Deleted {
                            version_id: Some(id.clone()),
                            delete_marker: r.is_delete_marker(),
                        }),
                    ),
                    // Deleting a version that is not there succeeds, as S3.
                    Err(Error::NoSuchVersion) => (
                        None,
                        Ok(Deleted {
                            version_id: Some(id.clone()),
                            delete_marker: false,
                        }),
                    ),
                    Err(e) => (None, Err(e)),
                },
                None if owner.versioning == Versioning::Unversioned => (
                    Some(Op::DeleteObject {
                        bucket: bucket.to_owned(),
                        key: key.clone(),
                        condition: Condition::None,
                    }),
                    Ok(Deleted {
                        version_id: None,
                        delete_marker: false,
                    }),
                ),
                None => {
                    let (version_key, version_id) = new_version(owner.versioning);
                    let shown = version_id.clone().unwrap_or_else(|| "null".into());
                    let marker = delete_marker(version_key, version_id, &owner.owner);
                    (
                        Some(Op::PutObject {
                            bucket: bucket.to_owned(),
                            key: key.clone(),
                            record: Box::new(marker),
                            inline: None,
                            condition: Condition::None,
                        }),
                        Ok(Deleted {
                            version_id: Some(shown),
                            delete_marker: true,
                        }),
                    )
                }
            };
            ops.extend(op);
            results.push(result);
        }
        if !ops.is_empty() {
            self.commit(ops).await?;
        }
        Ok(results)
    }

    /// Sets a bucket's versioning state (Enabled or Suspended; never back to Unversioned).
    pub async fn set_versioning(&self, bucket: &str, state: Versioning) -> Result<()> {
        if state == Versioning::Unversioned {
            return Err(Error::InvalidRequest(
                "versioning cannot be turned off once enabled".into(),
            ));
        }
        self.commit(vec![Op::SetVersioning {
            bucket: bucket.to_owned(),
            state,
        }])
        .await?;
        Ok(())
    }

    /// Rewrites an object's metadata (tags, headers) without touching its data, if the data is still the same.
    pub async fn update_object(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        update: impl FnOnce(&mut ObjectRecord) + Send + 'static,
    ) -> Result<ObjectRecord> {
        let mut record = match version_id {
            None => self.head_object(bucket, key).await?,
            Some(_) => match self.head_version(bucket, key, version_id).await? {
                r if r.is_delete_marker() => return Err(Error::MethodNotAllowed),
                r => r,
            },
        };
        let ids = record.data_ids();
        update(&mut record);
        self.commit(vec![Op::UpdateVersion {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            record: Box::new(record.clone()),
            expected: ids,
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

    /// Lists versions (ListObjectVersions). A `version_id_marker` of `"null"` means the key's null version.
    pub async fn list_versions(
        &self,
        bucket: &str,
        mut query: crate::list::VersionQuery,
        version_id_marker: Option<&str>,
    ) -> Result<crate::list::VersionPage> {
        self.bucket(bucket).await?;
        if let (Some(key), Some(marker)) = (query.key_marker.clone(), version_id_marker) {
            query.version_marker = match self.head_version(bucket, &key, Some(marker)).await {
                Ok(r) => Some(r.version_key),
                Err(Error::NoSuchVersion | Error::NoSuchKey) => VersionKey::from_id(marker),
                Err(e) => return Err(e),
            };
        }
        let b = bucket.to_owned();
        self.read_meta(move |m| crate::list::list_versions(m, &b, &query))
            .await
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

/// What a delete did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deleted {
    /// The version removed or the delete marker created (`"null"` for the null version); `None` in an
    /// unversioned bucket.
    pub version_id: Option<String>,
    /// The version removed was, or the version created is, a delete marker.
    pub delete_marker: bool,
}

/// The version key and id of a write in a bucket with this versioning state.
pub(crate) fn new_version(versioning: Versioning) -> (VersionKey, Option<String>) {
    let key = VersionKey::now();
    let id = (versioning == Versioning::Enabled).then(|| key.to_id());
    (key, id)
}

fn delete_marker(version_key: VersionKey, version_id: Option<String>, owner: &str) -> ObjectRecord {
    ObjectRecord {
        version_id,
        version_key,
        size: 0,
        etag: String::new(),
        last_modified_ms: chrono::Utc::now().timestamp_millis(),
        headers: Vec::new(),
        user_meta: Vec::new(),
        tags: Vec::new(),
        checksum: None,
        storage_class: "STANDARD".into(),
        owner: owner.to_owned(),
        data: ObjectData::DeleteMarker,
        multipart: None,
        lock: VersionLock::default(),
    }
}

/// The lock state a new version gets: the explicit one (which needs object lock on the bucket), else the
/// bucket's default retention.
pub(crate) fn version_lock(
    bucket: &BucketRecord,
    explicit: Option<VersionLock>,
) -> Result<VersionLock> {
    match (bucket.object_lock, explicit) {
        (None, Some(l)) if l != VersionLock::default() => Err(Error::NoObjectLockConfiguration),
        (_, Some(l)) => Ok(l),
        (Some(cfg), None) => Ok(VersionLock {
            retention: cfg
                .default_retention
                .map(|d| d.apply(chrono::Utc::now().timestamp_millis())),
            legal_hold: None,
        }),
        (None, None) => Ok(VersionLock::default()),
    }
}

impl Engine {
    /// Sets (or, with `None`, removes) a version's retention, as the lock rules allow.
    pub async fn set_retention(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        retention: Option<Retention>,
        bypass_governance: bool,
    ) -> Result<ObjectRecord> {
        self.lock_change(
            bucket,
            key,
            version_id,
            LockChange::Retention(retention, bypass_governance),
        )
        .await
    }

    /// Turns a version's legal hold on or off.
    pub async fn set_legal_hold(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        on: bool,
    ) -> Result<ObjectRecord> {
        self.lock_change(bucket, key, version_id, LockChange::LegalHold(on))
            .await
    }

    async fn lock_change(
        &self,
        bucket: &str,
        key: &str,
        version_id: Option<&str>,
        change: LockChange,
    ) -> Result<ObjectRecord> {
        if self.bucket(bucket).await?.object_lock.is_none() {
            return Err(Error::NoObjectLockConfiguration);
        }
        let record = match self.head_version(bucket, key, version_id).await? {
            r if r.is_delete_marker() => return Err(Error::MethodNotAllowed),
            r => r,
        };
        self.commit(vec![Op::ChangeLock {
            bucket: bucket.to_owned(),
            key: key.to_owned(),
            version: record.version_key,
            change,
        }])
        .await?;
        self.head_version(bucket, key, Some(record.version_id_or_null()))
            .await
    }

    /// Sets a bucket's object lock configuration (turning object lock on for a versioned bucket).
    pub async fn set_object_lock(&self, bucket: &str, config: ObjectLockConfig) -> Result<()> {
        self.commit(vec![Op::SetObjectLock {
            bucket: bucket.to_owned(),
            config,
        }])
        .await?;
        Ok(())
    }

    /// One of a bucket's configuration documents (`kind` is the gateway's name for it, e.g. `policy`).
    pub async fn bucket_config(&self, bucket: &str, kind: &str) -> Result<Option<Vec<u8>>> {
        let (bucket, kind) = (bucket.to_owned(), kind.to_owned());
        self.lookup_meta(move |m| m.bucket_config(&bucket, &kind))
            .await
    }

    /// Stores (Some) or removes (None) one of a bucket's configuration documents, durably. NoSuchBucket when the
    /// bucket does not exist; deleting the bucket removes its documents.
    pub async fn set_bucket_config(
        &self,
        bucket: &str,
        kind: &str,
        document: Option<Vec<u8>>,
    ) -> Result<()> {
        self.commit(vec![Op::SetBucketConfig {
            bucket: bucket.to_owned(),
            kind: kind.to_owned(),
            document,
        }])
        .await?;
        Ok(())
    }

    /// A user, by access key.
    pub async fn user(&self, access_key: &str) -> Result<Option<UserRecord>> {
        let access_key = access_key.to_owned();
        self.lookup_meta(move |m| m.user(&access_key)).await
    }

    /// All users, by access key.
    pub async fn users(&self) -> Result<Vec<(String, UserRecord)>> {
        self.read_meta(|m| m.users()).await
    }

    /// Creates or replaces a user, durably.
    pub async fn put_user(&self, access_key: &str, record: UserRecord) -> Result<()> {
        self.commit(vec![Op::PutUser {
            access_key: access_key.to_owned(),
            record,
        }])
        .await?;
        Ok(())
    }

    /// Removes a user, durably (a missing user is not an error).
    pub async fn delete_user(&self, access_key: &str) -> Result<()> {
        self.commit(vec![Op::DeleteUser {
            access_key: access_key.to_owned(),
        }])
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::metadata_replicas;

    #[test]
    fn metadata_lives_on_2m_plus_1_disks_where_there_are_more() {
        // (k, m) → (replicas, quorum)
        assert_eq!(metadata_replicas(4, 2), (5, 3));
        assert_eq!(metadata_replicas(8, 4), (9, 5));
        assert_eq!(metadata_replicas(12, 4), (9, 5));
        assert_eq!(metadata_replicas(6, 3), (7, 4));
        // Up to 2m + 1 disks: a replica on each, the data's write quorum.
        assert_eq!(metadata_replicas(2, 1), (3, 2));
        assert_eq!(metadata_replicas(2, 2), (4, 3));
        assert_eq!(metadata_replicas(1, 1), (2, 2));
        assert_eq!(metadata_replicas(1, 0), (1, 1));
        // No parity: every disk, every disk's commit.
        assert_eq!(metadata_replicas(4, 0), (4, 4));
        // More parity than data: every disk, the data's quorum (see the doc).
        assert_eq!(metadata_replicas(1, 2), (3, 1));
        for k in 1..=16 {
            for m in 0..=16 {
                let (replicas, quorum) = metadata_replicas(k, m);
                assert!(replicas <= k + m && quorum <= replicas, "k {k} m {m}");
                assert!(replicas >= (2 * m + 1).min(k + m), "k {k} m {m}");
                if k < m {
                    continue;
                }
                // Losing m disks leaves a write quorum (not where k == m: the data cannot be written then
                // either), and those left are enough to reopen knowing every acknowledged commit.
                assert!(replicas - m >= quorum || k == m, "k {k} m {m}");
                assert!(replicas - quorum < replicas - m, "k {k} m {m}");
            }
        }
    }
}
