//! Metadata: buckets, object records and the GC queue, behind the [`MetaStore`] trait.
//!
//! The only implementation today is [`replicated::ReplicatedMeta`]: one redb database on each of the
//! first `2m + 1` disks (every disk of a smaller set), every commit
//! applied to all online replicas in parallel and acknowledged once a write quorum made it durable. A shared
//! database backend (PostgreSQL wire protocol) can implement the same trait later.

pub mod records;
pub mod replicated;
mod wal;
pub(crate) use wal::WAL_FILE;

use std::ops::Bound;

use crate::disk::DataId;
use crate::error::Result;
pub use records::{
    BucketRecord, ChecksumType, MultipartInfo, ObjectData, ObjectLockConfig, ObjectRecord,
    PartRecord, Segment, StoredChecksum, UploadRecord, UserRecord, VersionKey, Versioning,
};

/// What must hold, at commit time, for an object write to apply.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Condition {
    /// Always apply.
    #[default]
    None,
    /// The key must not exist (If-None-Match: *).
    Absent,
    /// The current version's ETag must equal this (If-Match).
    EtagIs(String),
    /// The current record must still reference exactly these data ids (read-modify-write of metadata).
    Unchanged(Vec<DataId>),
}

/// One change inside an atomic [`Batch`].
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub enum Op {
    /// Create a bucket; fails if it exists.
    CreateBucket {
        /// Bucket name.
        name: String,
        /// Record to store.
        record: BucketRecord,
    },
    /// Delete a bucket; fails if it does not exist or holds objects.
    DeleteBucket {
        /// Bucket name.
        name: String,
    },
    /// Write a new object version (and its inline bytes). A `null` version replaces the previous `null`
    /// version, whose data is queued for GC; other versions stay. The newest version becomes the current one.
    PutObject {
        /// Bucket (must exist).
        bucket: String,
        /// Key.
        key: String,
        /// New record.
        record: Box<ObjectRecord>,
        /// Inline bytes, for `ObjectData::Inline` records written with new data.
        inline: Option<bytes::Bytes>,
        /// Precondition.
        condition: Condition,
    },
    /// Remove the `null` version of a key (an unversioned bucket's only version); its data is queued for GC.
    /// Missing keys are not an error.
    DeleteObject {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Precondition.
        condition: Condition,
    },
    /// Remove one version; its data is queued for GC, and if it was current the next newest becomes current.
    /// A missing version is not an error.
    DeleteVersion {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Which version.
        version: VersionKey,
        /// The caller may bypass GOVERNANCE retention.
        bypass_governance: bool,
    },
    /// Change a version's retention or legal hold, as the object lock rules allow.
    ChangeLock {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Which version.
        version: VersionKey,
        /// What to change.
        change: LockChange,
    },
    /// Set a bucket's object lock configuration; the bucket must be versioned.
    SetObjectLock {
        /// Bucket.
        bucket: String,
        /// Configuration.
        config: ObjectLockConfig,
    },
    /// Rewrite one version's metadata in place (tags), if its data is still the one the caller saw.
    UpdateVersion {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// The changed record (its `version_key` names the version).
        record: Box<ObjectRecord>,
        /// Data ids the caller saw.
        expected: Vec<DataId>,
    },
    /// Set (Some) or remove (None) one of a bucket's configuration documents (policy, website, CORS, public
    /// access block, ownership controls, ACL...), stored as the bytes the gateway gives; the bucket must exist.
    SetBucketConfig {
        /// Bucket.
        bucket: String,
        /// Which document, e.g. `policy` (the gateway names them).
        kind: String,
        /// The document, or None to remove it.
        document: Option<Vec<u8>>,
    },
    /// Create or replace a user.
    PutUser {
        /// Access key.
        access_key: String,
        /// Record.
        record: UserRecord,
    },
    /// Remove a user (missing users are not an error).
    DeleteUser {
        /// Access key.
        access_key: String,
    },
    /// Set a bucket's versioning state.
    SetVersioning {
        /// Bucket.
        bucket: String,
        /// New state (Enabled or Suspended).
        state: Versioning,
    },
    /// Start a multipart upload.
    CreateUpload {
        /// Bucket (must exist).
        bucket: String,
        /// Key.
        key: String,
        /// Upload id.
        upload_id: String,
        /// Record.
        record: Box<UploadRecord>,
    },
    /// Store (or replace) one part; the replaced part's data is queued for GC.
    PutPart {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Upload id (must exist).
        upload_id: String,
        /// Part number.
        part_number: u32,
        /// Record.
        record: Box<PartRecord>,
    },
    /// Turn an upload into an object: the record references the parts' data, the upload and its part rows
    /// are removed, and parts left out are queued for GC.
    CompleteUpload {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Upload id (must exist).
        upload_id: String,
        /// The assembled object.
        record: Box<ObjectRecord>,
        /// The parts the record was built from; if any changed meanwhile, the batch fails.
        parts: Vec<(u32, DataId)>,
    },
    /// Remove an upload and queue all its parts for GC.
    AbortUpload {
        /// Bucket.
        bucket: String,
        /// Key.
        key: String,
        /// Upload id (must exist).
        upload_id: String,
    },
    /// Forget GC entries whose files are gone.
    GcDone {
        /// Data ids removed from every disk.
        ids: Vec<DataId>,
    },
}

/// A change to a version's lock state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum LockChange {
    /// New retention (`None` removes it) and whether GOVERNANCE may be bypassed.
    Retention(Option<crate::lock::Retention>, bool),
    /// Legal hold on or off.
    LegalHold(bool),
}

/// Ops committed atomically: all apply or none does.
pub type Batch = Vec<Op>;

/// What a batch changed, for the caller's bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// For each DeleteObject / PutObject: whether a record was replaced or removed.
    pub replaced: Vec<bool>,
}

/// The metadata store.
pub trait MetaStore: Send + Sync + 'static {
    /// A bucket's record.
    fn bucket(&self, name: &str) -> Result<Option<BucketRecord>>;
    /// All buckets, by name.
    fn buckets(&self) -> Result<Vec<(String, BucketRecord)>>;
    /// One of a bucket's configuration documents (see [`Op::SetBucketConfig`]).
    fn bucket_config(&self, bucket: &str, kind: &str) -> Result<Option<Vec<u8>>>;
    /// A user, by access key.
    fn user(&self, access_key: &str) -> Result<Option<UserRecord>>;
    /// All users, by access key.
    fn users(&self) -> Result<Vec<(String, UserRecord)>>;
    /// An object's record.
    fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>>;
    /// The inline bytes stored under `id`, of an object of `len` bytes.
    fn inline(&self, id: DataId, len: u64, replica_hint: usize) -> Result<Option<Vec<u8>>>;
    /// How many replicas could serve [`Self::inline`] (to retry another on a checksum failure).
    fn replica_count(&self) -> usize;
    /// Up to `limit` objects of `bucket` from `start` on, in key byte order.
    fn scan(
        &self,
        bucket: &str,
        start: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord)>>;
    /// One version of an object.
    fn version(&self, bucket: &str, key: &str, version: VersionKey)
    -> Result<Option<ObjectRecord>>;
    /// The `null` version of an object.
    fn null_version(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>>;
    /// Up to `limit` versions of `bucket` after `(key, version)` (exclusive) or from `key` (inclusive), in key
    /// order and newest first within a key.
    fn scan_versions(
        &self,
        bucket: &str,
        start: Bound<(&[u8], VersionKey)>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord)>>;
    /// A multipart upload's record.
    fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Option<UploadRecord>>;
    /// Up to `limit` parts of an upload with part numbers above `after`.
    fn parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<(u32, PartRecord)>>;
    /// Up to `limit` uploads of `bucket` from `(key, upload_id)` on (exclusive), in key then upload-id order.
    fn uploads(
        &self,
        bucket: &str,
        after: Option<(&[u8], &str)>,
        limit: usize,
    ) -> Result<Vec<(String, String, UploadRecord)>>;
    /// Up to `limit` data ids waiting for their files to be deleted, oldest first, with their queue time.
    fn gc_pending(&self, limit: usize) -> Result<Vec<(DataId, i64)>>;
    /// Applies a batch atomically and durably (on a quorum of replicas). Blocks; call off the async runtime.
    fn commit(&self, batch: Batch) -> Result<Applied>;
}
