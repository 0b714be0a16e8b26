//! Persisted metadata records. Each is stored as a versioned enum (`V1` today) encoded with postcard, so a
//! future layout adds `V2` and a migration instead of changing a persisted struct in place.

use serde::{Deserialize, Serialize};

use crate::checksum::ChecksumAlgorithm;
use crate::disk::DataId;
use crate::erasure::Geometry;
use crate::error::{Error, Result};

/// A bucket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BucketRecord {
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
    /// Access key of the owner.
    pub owner: String,
    /// Region given at creation (LocationConstraint).
    pub region: String,
    /// Versioning state.
    pub versioning: Versioning,
    /// Object lock: `None` when the bucket was not created with (or later given) object lock.
    pub object_lock: Option<ObjectLockConfig>,
}

/// A user other than root: an access key (the table's key) with its secret, a display name and an optional
/// identity policy (an IAM policy document, JSON, as the user gave it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// Secret key (SigV4 needs it in the clear to compute signatures).
    pub secret_key: String,
    /// Display name shown as the owner's DisplayName.
    pub display_name: String,
    /// Identity policy document, if one is attached.
    pub policy: Option<String>,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_ms: i64,
}

/// A bucket's object lock configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectLockConfig {
    /// Retention applied to new versions written without lock headers.
    pub default_retention: Option<crate::lock::DefaultRetention>,
}

/// A bucket's versioning state. Once enabled, a bucket never returns to `Unversioned`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Versioning {
    /// Never enabled: writes replace the `null` version.
    #[default]
    Unversioned,
    /// Every write creates a new version.
    Enabled,
    /// Writes replace the `null` version; older versions stay.
    Suspended,
}

/// The layout of a bucket record before versioning existed (read and migrated, never written).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct BucketRecordV1 {
    created_ms: i64,
    owner: String,
    region: String,
}

impl From<BucketRecordV1> for BucketRecord {
    fn from(v1: BucketRecordV1) -> Self {
        Self {
            created_ms: v1.created_ms,
            owner: v1.owner,
            region: v1.region,
            versioning: Versioning::Unversioned,
            object_lock: None,
        }
    }
}

/// Where a version sorts among the versions of its key: newest first (inverted microseconds, then a random
/// tiebreak). Non-null version ids are this key in hex, so an id leads straight to its record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VersionKey(pub [u8; 16]);

impl VersionKey {
    /// A key for a version written now.
    pub fn now() -> Self {
        let micros = chrono::Utc::now().timestamp_micros().max(0) as u64;
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&(u64::MAX - micros).to_be_bytes());
        k[8..].copy_from_slice(&rand::random::<[u8; 8]>());
        Self(k)
    }

    /// The version id S3 clients see.
    pub fn to_id(self) -> String {
        hex::encode(self.0)
    }

    /// Parses a version id; `None` for anything that is not one of ours.
    pub fn from_id(id: &str) -> Option<Self> {
        let mut k = [0u8; 16];
        hex::decode_to_slice(id, &mut k).ok()?;
        Some(Self(k))
    }
}

/// A stored flexible checksum of a whole object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// Algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// Raw digest bytes.
    pub value: Vec<u8>,
    /// `Some(n)` for a multipart COMPOSITE checksum (checksum of the `n` part checksums, shown with `-n`).
    pub composite_parts: Option<u32>,
}

/// How a multipart upload's whole-object checksum is formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumType {
    /// Checksum of the part checksums.
    Composite,
    /// Checksum of the whole object's bytes (CRC algorithms only; combined from the parts).
    FullObject,
}

impl ChecksumType {
    /// The name S3 uses in x-amz-checksum-type.
    pub fn name(self) -> &'static str {
        match self {
            Self::Composite => "COMPOSITE",
            Self::FullObject => "FULL_OBJECT",
        }
    }
}

/// A multipart upload in progress.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadRecord {
    /// When CreateMultipartUpload ran, milliseconds since the Unix epoch.
    pub initiated_ms: i64,
    /// Owner's access key.
    pub owner: String,
    /// Representation headers for the final object.
    pub headers: Vec<(String, String)>,
    /// User metadata for the final object.
    pub user_meta: Vec<(String, String)>,
    /// Tags for the final object.
    pub tags: Vec<(String, String)>,
    /// Storage class for the final object.
    pub storage_class: String,
    /// Checksum algorithm every part must carry, and how the whole-object checksum is formed.
    pub checksum: Option<(ChecksumAlgorithm, ChecksumType)>,
    /// Lock state for the final object (explicit headers at CreateMultipartUpload).
    pub lock: Option<crate::lock::VersionLock>,
}

/// One uploaded part.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    /// Hex MD5 of the part.
    pub etag: String,
    /// Upload time, milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    /// Part checksum (raw), in the upload's algorithm.
    pub checksum: Option<Vec<u8>>,
    /// The part's bytes.
    pub segment: Segment,
}

/// One erasure-coded run of object bytes (a single PUT has one; a multipart object one per part).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Shard files on every disk are named by this id.
    pub data_id: DataId,
    /// Object bytes in this segment.
    pub size: u64,
    /// Erasure geometry.
    pub geometry: Geometry,
    /// Object bytes per coded block.
    pub block_size: u32,
    /// Shard `i` lives on disk `(rotation + i) % disks`.
    pub rotation: u8,
    /// Part number this segment was uploaded as (1 for a single PUT).
    pub part_number: u32,
    /// MD5 of the segment's bytes (the part ETag).
    pub md5: [u8; 16],
    /// Flexible checksum of the segment's bytes, if one was computed.
    pub checksum: Option<Vec<u8>>,
}

/// Where an object's bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ObjectData {
    /// Small object: bytes kept in the metadata store's inline table (on every replica) under `data_id`.
    Inline {
        /// Key into the inline table.
        data_id: DataId,
        /// BLAKE3 of the bytes, checked on read.
        hash: [u8; 32],
    },
    /// Erasure-coded shard files.
    Segments(Vec<Segment>),
    /// A delete marker: a version without data.
    DeleteMarker,
}

/// One object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Version id; `None` is the `null` version.
    pub version_id: Option<String>,
    /// Position among the key's versions (also the id of non-null versions).
    pub version_key: VersionKey,
    /// Size in bytes.
    pub size: u64,
    /// ETag without quotes: hex MD5, or `hex-N` for multipart.
    pub etag: String,
    /// Last modification, milliseconds since the Unix epoch.
    pub last_modified_ms: i64,
    /// Stored representation headers (lowercase name, value): content-type, content-encoding, ...
    pub headers: Vec<(String, String)>,
    /// User metadata without the `x-amz-meta-` prefix, names lowercased.
    pub user_meta: Vec<(String, String)>,
    /// Object tags, in the order given.
    pub tags: Vec<(String, String)>,
    /// Flexible checksum, if one was requested at upload.
    pub checksum: Option<StoredChecksum>,
    /// Storage class name.
    pub storage_class: String,
    /// Owner's access key.
    pub owner: String,
    /// Where the bytes are.
    pub data: ObjectData,
    /// Set when the object was assembled by CompleteMultipartUpload.
    pub multipart: Option<MultipartInfo>,
    /// Retention and legal hold of this version.
    pub lock: crate::lock::VersionLock,
}

/// How a multipart object came to be.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MultipartInfo {
    /// The upload id that completed into this object (answers a repeated Complete).
    pub upload_id: String,
    /// Checksum type of the upload.
    pub checksum_type: Option<ChecksumType>,
}

impl ObjectRecord {
    /// Number of parts (1 for a single PUT).
    pub fn parts_count(&self) -> usize {
        match &self.data {
            ObjectData::Segments(s) if self.multipart.is_some() => s.len(),
            _ => 1,
        }
    }

    /// Data ids whose files or inline entry belong to this record.
    pub fn data_ids(&self) -> Vec<DataId> {
        match &self.data {
            ObjectData::Inline { data_id, .. } => vec![*data_id],
            ObjectData::Segments(segs) => segs.iter().map(|s| s.data_id).collect(),
            ObjectData::DeleteMarker => Vec::new(),
        }
    }

    /// True for a delete marker.
    pub fn is_delete_marker(&self) -> bool {
        matches!(self.data, ObjectData::DeleteMarker)
    }

    /// The version id as S3 shows it (`null` for the null version).
    pub fn version_id_or_null(&self) -> &str {
        self.version_id.as_deref().unwrap_or("null")
    }

    /// The value of a stored header.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Serialize, Deserialize)]
enum BucketOnDisk {
    V1(BucketRecordV1),
    V2(BucketRecord),
}

#[derive(Serialize, Deserialize)]
enum ObjectOnDisk {
    V1(ObjectRecord),
}

/// [`ObjectOnDisk`] by reference, for encoding without a clone: serde writes a reference as its value, so the
/// bytes are the same (tested below).
#[derive(Serialize)]
enum ObjectOnDiskRef<'a> {
    V1(&'a ObjectRecord),
}

#[derive(Serialize, Deserialize)]
enum UploadOnDisk {
    V1(UploadRecord),
}

#[derive(Serialize, Deserialize)]
enum PartOnDisk {
    V1(PartRecord),
}

#[derive(Serialize, Deserialize)]
enum UserOnDisk {
    V1(UserRecord),
}

/// Encodes a user record.
pub fn encode_user(r: &UserRecord) -> Vec<u8> {
    postcard::to_stdvec(&UserOnDisk::V1(r.clone())).expect("user record serialises")
}

/// Decodes a user record.
pub fn decode_user(b: &[u8]) -> Result<UserRecord> {
    match postcard::from_bytes(b).map_err(Error::meta)? {
        UserOnDisk::V1(r) => Ok(r),
    }
}

/// Encodes an upload record.
pub fn encode_upload(r: &UploadRecord) -> Vec<u8> {
    postcard::to_stdvec(&UploadOnDisk::V1(r.clone())).expect("upload record serialises")
}

/// Decodes an upload record.
pub fn decode_upload(b: &[u8]) -> Result<UploadRecord> {
    match postcard::from_bytes(b).map_err(Error::meta)? {
        UploadOnDisk::V1(r) => Ok(r),
    }
}

/// Encodes a part record.
pub fn encode_part(r: &PartRecord) -> Vec<u8> {
    postcard::to_stdvec(&PartOnDisk::V1(r.clone())).expect("part record serialises")
}

/// Decodes a part record.
pub fn decode_part(b: &[u8]) -> Result<PartRecord> {
    match postcard::from_bytes(b).map_err(Error::meta)? {
        PartOnDisk::V1(r) => Ok(r),
    }
}

/// Encodes a bucket record.
pub fn encode_bucket(r: &BucketRecord) -> Vec<u8> {
    postcard::to_stdvec(&BucketOnDisk::V2(r.clone())).expect("bucket record serialises")
}

/// Decodes a bucket record.
pub fn decode_bucket(b: &[u8]) -> Result<BucketRecord> {
    match postcard::from_bytes(b).map_err(Error::meta)? {
        BucketOnDisk::V1(r) => Ok(r.into()),
        BucketOnDisk::V2(r) => Ok(r),
    }
}

/// Encodes an object record.
pub fn encode_object(r: &ObjectRecord) -> Vec<u8> {
    postcard::to_stdvec(&ObjectOnDiskRef::V1(r)).expect("object record serialises")
}

/// Decodes an object record.
pub fn decode_object(b: &[u8]) -> Result<ObjectRecord> {
    match postcard::from_bytes(b).map_err(Error::meta)? {
        ObjectOnDisk::V1(r) => Ok(r),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_record_encodes_by_reference_as_by_value_and_decodes_back() {
        let record = ObjectRecord {
            version_id: Some("v1".into()),
            version_key: VersionKey([7; 16]),
            size: 4096,
            etag: "\"0123456789abcdef0123456789abcdef\"".into(),
            last_modified_ms: 1_700_000_000_000,
            headers: vec![("content-type".into(), "text/plain".into())],
            user_meta: vec![("a".into(), "b".into())],
            tags: vec![("t".into(), "u".into())],
            checksum: None,
            storage_class: "STANDARD".into(),
            owner: "owner".into(),
            data: ObjectData::Inline {
                data_id: DataId([3; 16]),
                hash: [9; 32],
            },
            multipart: None,
            lock: crate::lock::VersionLock::default(),
        };
        let by_value = postcard::to_stdvec(&ObjectOnDisk::V1(record.clone())).unwrap();
        assert_eq!(encode_object(&record), by_value);
        assert_eq!(decode_object(&by_value).unwrap(), record);
    }
}
