//! Strata storage engine.
//!
//! Owns buckets, objects and their bytes: objects are cut into blocks, each Reed-Solomon coded into
//! `k + m` shards written to distinct disks with a BLAKE3 checksum per shard block; metadata lives in a
//! replicated embedded KV store. Nothing here knows about HTTP, S3 XML or signatures.
//!
//! Modules: [`engine`] (the public API), [`write`] and [`read`] (data paths), [`erasure`], [`layout`] (shard file
//! format), [`disk`] (the disk trait and portable backend), [`uring`] (the io_uring backend), [`meta`] (metadata store), [`checksum`], [`md5`], [`names`], [`stream_copy`] (copies
//! into device-bound buffers), [`sweep`] (start-up recovery and garbage collection).

mod backend;
mod buffers;
pub mod checksum;
pub mod disk;
pub mod engine;
pub mod erasure;
pub mod error;
pub mod layout;
pub mod list;
pub mod lock;
pub mod md5;
#[cfg(target_arch = "x86_64")]
mod md5_avx2;
mod md5_lanes;
pub mod meta;
pub mod multipart;
pub mod names;
mod read;
pub mod stream_copy;
mod sweep;
pub mod uring;
mod write;

pub use checksum::{ChecksumAlgorithm, Digests};
pub use engine::{BodyStream, BucketInfo, Deleted, Engine, PutOptions, Settings};
pub use error::{BoxError, Error, Result};
pub use list::{ListPage, ListQuery, VersionPage, VersionQuery};
pub use meta::{
    ChecksumType, Condition, ObjectData, ObjectRecord, PartRecord, UploadRecord, UserRecord,
    VersionKey, Versioning,
};
pub use multipart::{CompletePart, UploadListQuery, UploadPage};
