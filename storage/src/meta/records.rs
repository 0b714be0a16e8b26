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
}

/// A stored flexible checksum of a whole object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredChecksum {
    /// Algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// Raw digest bytes.
    pub value: Vec<u8>,
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
}

/// One object version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectRecord {
    /// Version id; `None` is the `null` version.
    pub version_id: Option<String>,
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
}

impl ObjectRecord {
    /// Data ids whose files or inline entry belong to this record.
    pub fn data_ids(&self) -> Vec<DataId> {
        match &self.data {
            ObjectData::Inline { data_id, .. } => vec![*data_id],
            ObjectData::Segments(segs) => segs.iter().map(|s| s.data_id).collect(),
        }
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
    V1(BucketRecord),
}

#[derive(Serialize, Deserialize)]
enum ObjectOnDisk {
    V1(ObjectRecord),
}

/// Encodes a bucket record.
pub fn encode_bucket(r: &BucketRecord) -> Vec<u8> {
    postcard::to_stdvec(&BucketOnDisk::V1(r.clone())).expect("bucket record serialises")
}

/// Decodes a bucket record.
pub fn decode_bucket(b: &[u8]) -> Result<BucketRecord> {
    match postcard::from_bytes(b).map_err(Error::meta)? {
        BucketOnDisk::V1(r) => Ok(r),
    }
}

/// Encodes an object record.
pub fn encode_object(r: &ObjectRecord) -> Vec<u8> {
    postcard::to_stdvec(&ObjectOnDisk::V1(r.clone())).expect("object record serialises")
}

/// Decodes an object record.
pub fn decode_object(b: &[u8]) -> Result<ObjectRecord> {
    match postcard::from_bytes(b).map_err(Error::meta)? {
        ObjectOnDisk::V1(r) => Ok(r),
    }
}
