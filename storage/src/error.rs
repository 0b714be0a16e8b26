//! The storage engine's error type. It carries no HTTP: the gateway maps it to S3 codes in one place.

/// Boxed error from outside the engine (a client body stream, a verification callback).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Everything the storage engine can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The bucket does not exist.
    #[error("no such bucket")]
    NoSuchBucket,
    /// The object does not exist.
    #[error("no such key")]
    NoSuchKey,
    /// Object lock forbids this (retention or legal hold).
    #[error("object locked: {0}")]
    ObjectLocked(String),
    /// The bucket has no object lock configuration.
    #[error("bucket has no object lock configuration")]
    NoObjectLockConfiguration,
    /// The version has no retention or legal hold to report.
    #[error("no object lock configuration on this version")]
    NoSuchObjectLockConfiguration,
    /// The bucket's state does not allow this (e.g. suspending versioning under object lock).
    #[error("invalid bucket state: {0}")]
    InvalidBucketState(String),
    /// The operation does not apply to a delete marker.
    #[error("method not allowed on a delete marker")]
    MethodNotAllowed,
    /// The version does not exist.
    #[error("no such version")]
    NoSuchVersion,
    /// A version id that cannot be one of ours.
    #[error("invalid version id")]
    InvalidVersion,
    /// The multipart upload does not exist (never created, aborted or completed).
    #[error("no such upload")]
    NoSuchUpload,
    /// A part named in CompleteMultipartUpload is missing or its ETag/checksum differs.
    #[error("invalid part: {0}")]
    InvalidPart(String),
    /// CompleteMultipartUpload's parts are not in ascending order.
    #[error("parts not in ascending order")]
    InvalidPartOrder,
    /// The request contradicts the upload it belongs to (e.g. another checksum algorithm).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// A part other than the last is smaller than the minimum part size.
    #[error("part too small")]
    EntityTooSmall,
    /// The bucket exists and belongs to the caller.
    #[error("bucket already owned by you")]
    BucketAlreadyOwnedByYou,
    /// The bucket exists and belongs to someone else.
    #[error("bucket already exists")]
    BucketAlreadyExists,
    /// The bucket still holds objects.
    #[error("bucket not empty")]
    BucketNotEmpty,
    /// A write precondition (if-none-match / if-match) did not hold at commit time.
    #[error("precondition failed")]
    PreconditionFailed,
    /// The body was longer than the allowed maximum.
    #[error("entity too large")]
    EntityTooLarge,
    /// The body ended before the declared length.
    #[error("incomplete body: expected {expected} bytes, got {got}")]
    IncompleteBody {
        /// Declared length.
        expected: u64,
        /// Bytes received.
        got: u64,
    },
    /// The client's body stream failed (bad chunk signature, timeout, reset...).
    #[error("request body: {0}")]
    Body(BoxError),
    /// The caller's verification of the digests rejected the upload.
    #[error("upload rejected: {0}")]
    Rejected(BoxError),
    /// Not enough healthy disks to read or write safely.
    #[error("quorum lost: needed {needed} disks, {available} available")]
    QuorumLost {
        /// Disks required.
        needed: usize,
        /// Disks that answered.
        available: usize,
    },
    /// Data could not be reconstructed from the shards that verify.
    #[error("data unrecoverable: {0}")]
    Unrecoverable(String),
    /// Disk I/O failed.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The metadata store failed.
    #[error("metadata: {0}")]
    Meta(String),
    /// The configuration cannot be used.
    #[error("config: {0}")]
    Config(String),
}

/// Result alias for the storage engine.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// Wraps a metadata-store failure.
    pub(crate) fn meta(e: impl std::fmt::Display) -> Self {
        Error::Meta(e.to_string())
    }
}
