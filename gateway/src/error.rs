//! The gateway's error type, and the one place where errors become S3 codes, HTTP statuses and XML bodies.
//!
//! Every handler returns [`ApiError`]; [`ApiError::aws_code`] and [`ApiError::http_status`] are exhaustive so a
//! new variant cannot ship without its wire mapping. Internal causes are logged, never sent to clients.

use http::StatusCode;

/// An S3 API error, as the client will see it.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Credentials missing where required, or not allowed to do this.
    #[error("Access Denied")]
    AccessDenied,
    /// Authentication refused for a reason S3 states (AccessDenied with its own message).
    #[error("{0}")]
    AccessDeniedWithMessage(String),
    /// The access key is not known.
    #[error("The AWS Access Key Id you provided does not exist in our records.")]
    InvalidAccessKeyId,
    /// The signature did not verify.
    #[error(
        "The request signature we calculated does not match the signature you provided. Check your key and signing method."
    )]
    SignatureDoesNotMatch,
    /// The request date is too far from the server's clock.
    #[error("The difference between the request time and the current time is too large.")]
    RequestTimeTooSkewed,
    /// The Authorization header could not be parsed.
    #[error("The authorization header is malformed; {0}")]
    AuthorizationHeaderMalformed(String),
    /// A presigned URL or query authentication could not be parsed.
    #[error("{0}")]
    AuthorizationQueryParametersError(String),
    /// The presigned URL has expired.
    #[error("Request has expired")]
    ExpiredPresignedRequest,
    /// The payload hash in x-amz-content-sha256 did not match the body.
    #[error("The provided 'x-amz-content-sha256' header does not match what was computed.")]
    XAmzContentSha256Mismatch,
    /// Content-MD5 did not match the body.
    #[error("The Content-MD5 you specified did not match what we received.")]
    BadDigest,
    /// Content-MD5 is not valid base64 of 16 bytes.
    #[error("The Content-MD5 you specified is not valid.")]
    InvalidDigest,
    /// A flexible checksum (x-amz-checksum-*) did not match the body.
    #[error("The {0} you specified did not match the calculated checksum.")]
    BadChecksum(&'static str),
    /// The bucket does not exist.
    #[error("The specified bucket does not exist")]
    NoSuchBucket,
    /// The key does not exist.
    #[error("The specified key does not exist.")]
    NoSuchKey,
    /// The bucket is owned by the caller already.
    #[error("Your previous request to create the named bucket succeeded and you already own it.")]
    BucketAlreadyOwnedByYou,
    /// The bucket is owned by someone else.
    #[error(
        "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."
    )]
    BucketAlreadyExists,
    /// DeleteBucket on a bucket with objects.
    #[error("The bucket you tried to delete is not empty")]
    BucketNotEmpty,
    /// CreateBucket asked for another region than this endpoint's.
    #[error(
        "The {0} location constraint is incompatible for the region specific endpoint this request was sent to."
    )]
    IllegalLocationConstraint(String),
    /// User metadata headers exceed 2 KB.
    #[error("Your metadata headers exceed the maximum allowed metadata size.")]
    MetadataTooLarge,
    /// The bucket name breaks the naming rules.
    #[error("The specified bucket is not valid.")]
    InvalidBucketName,
    /// The key is longer than 1024 bytes.
    #[error("Your key is too long")]
    KeyTooLong,
    /// `x-amz-website-redirect-location` is neither a path nor an http(s) URL.
    #[error("The website redirect location must have a prefix of 'http://' or 'https://' or '/'.")]
    InvalidRedirectLocation,
    /// The Range header cannot be satisfied.
    #[error("The requested range is not satisfiable")]
    InvalidRange,
    /// A precondition (If-Match and friends) failed.
    #[error("At least one of the pre-conditions you specified did not hold")]
    PreconditionFailed,
    /// If-None-Match / If-Modified-Since said the client's copy is current (no body is sent).
    #[error("Not Modified")]
    NotModified,
    /// Conditional create lost a race with another writer.
    #[error(
        "The conditional request cannot succeed due to a conflicting operation against this resource."
    )]
    ConditionalRequestConflict,
    /// The body is larger than allowed.
    #[error("Your proposed upload exceeds the maximum allowed size")]
    EntityTooLarge,
    /// The body is shorter than declared.
    #[error("You did not provide the number of bytes specified by the Content-Length HTTP header.")]
    IncompleteBody,
    /// The request body is not well-formed XML or not the expected document.
    #[error(
        "The XML you provided was not well-formed or did not validate against our published schema."
    )]
    MalformedXml,
    /// A header or parameter value is invalid.
    #[error("{0}")]
    InvalidArgument(String),
    /// A required header is missing (e.g. Content-Length).
    #[error("You must provide the Content-Length HTTP header.")]
    MissingContentLength,
    /// The request asks for something the spec does not allow on this resource.
    #[error("The specified method is not allowed against this resource.")]
    MethodNotAllowed,
    /// The operation exists in S3 but not in Strata yet.
    #[error("A header or query you provided requested a function that is not implemented.")]
    NotImplemented,
    /// The request is not valid as a whole (copy onto itself, conflicting headers...).
    #[error("{0}")]
    InvalidRequest(String),
    /// The version has no retention or legal hold to report.
    #[error("The specified object does not have a ObjectLock configuration")]
    NoSuchObjectLockConfiguration,
    /// The bucket has no object lock configuration (GetObjectLockConfiguration).
    #[error("Object Lock configuration does not exist for this bucket")]
    ObjectLockConfigurationNotFound,
    /// The bucket's state does not allow the request.
    #[error("{0}")]
    InvalidBucketState(String),
    /// GetBucketWebsite, or the website endpoint, on a bucket without a website configuration.
    #[error("The specified bucket does not have a website configuration")]
    NoSuchWebsiteConfiguration,
    /// GetBucketCors on a bucket without CORS rules.
    #[error("The CORS configuration does not exist")]
    NoSuchCorsConfiguration,
    /// A CORS preflight that no rule allows, or for a bucket without CORS or without existence.
    #[error("{message}")]
    CorsForbidden {
        /// Why.
        message: &'static str,
        /// The method asked for (Access-Control-Request-Method, else OPTIONS).
        method: String,
        /// OBJECT when rules were evaluated for a key, else BUCKET.
        resource_type: &'static str,
    },
    /// A CORS preflight missing Origin or Access-Control-Request-Method.
    #[error("{0}")]
    CorsBadRequest(String),
    /// The version does not exist.
    #[error("The specified version does not exist.")]
    NoSuchVersion,
    /// GET/HEAD of a key whose current version is a delete marker (404 NoSuchKey, with marker headers).
    #[error("The specified key does not exist.")]
    CurrentIsDeleteMarker {
        /// The marker's version id.
        version_id: String,
        /// The marker's Last-Modified (HTTP date).
        last_modified: String,
    },
    /// GET/HEAD of a delete marker's version id (405, with marker headers).
    #[error("The specified method is not allowed against this resource.")]
    VersionIsDeleteMarker {
        /// The marker's version id.
        version_id: String,
        /// The marker's Last-Modified (HTTP date).
        last_modified: String,
    },
    /// The multipart upload does not exist.
    #[error(
        "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed."
    )]
    NoSuchUpload,
    /// Parts of CompleteMultipartUpload are not in ascending order.
    #[error(
        "The list of parts was not in ascending order. The parts list must be specified in order by part number."
    )]
    InvalidPartOrder,
    /// A non-last part is below 5 MiB.
    #[error("Your proposed upload is smaller than the minimum allowed object size.")]
    EntityTooSmall,
    /// A part number that does not exist.
    #[error("One or more of the specified parts could not be found.")]
    InvalidPart,
    /// The tag set breaks the tagging rules.
    #[error("{0}")]
    InvalidTag(String),
    /// The client stalled.
    #[error(
        "Your socket connection to the server was not read from or written to within the timeout period."
    )]
    RequestTimeout,
    /// Enough disks failed that the request cannot be served safely.
    #[error("Please reduce your request rate.")]
    SlowDown,
    /// Reading or writing needed more healthy disks than are available.
    #[error("We encountered an internal error. Please try again.")]
    ServiceUnavailable,
    /// A bucket or identity policy is not valid JSON or not a valid policy (AWS's message).
    #[error("{0}")]
    MalformedPolicy(String),
    /// The bucket has no policy.
    #[error("The bucket policy does not exist")]
    NoSuchBucketPolicy,
    /// The bucket has no Block Public Access configuration.
    #[error("The public access block configuration was not found")]
    NoSuchPublicAccessBlockConfiguration,
    /// The bucket has no ownership controls.
    #[error("The bucket ownership controls were not found")]
    OwnershipControlsNotFound,
    /// An ACL other than private / bucket-owner-full-control on a bucket whose ACLs are disabled.
    #[error("The bucket does not allow ACLs")]
    AccessControlListNotSupported,
    /// A bucket ACL together with BucketOwnerEnforced (CreateBucket, PutBucketOwnershipControls).
    #[error("Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting")]
    InvalidBucketAclWithObjectOwnership,
    /// Admin API: the user does not exist.
    #[error("{0}")]
    NoSuchEntity(String),
    /// Admin API: a user with this access key exists already.
    #[error("{0}")]
    EntityAlreadyExists(String),
    /// POST Object: the form is not valid multipart/form-data or misses a required field.
    #[error("{0}")]
    MalformedPostRequest(String),
    /// POST Object: the form breaks its policy (a condition failed, or the policy expired).
    #[error("Invalid according to Policy: {0}")]
    PostPolicyDenied(String),
    /// POST Object: the policy document cannot be parsed.
    #[error("{0}")]
    InvalidPolicyDocument(String),
    /// POST Object: the form fields before the file are too large.
    #[error("Your POST request fields preceeding the upload file was too large.")]
    MaxPostPreDataLengthExceeded,
    /// Anything else. The cause is logged, not sent.
    #[error("We encountered an internal error. Please try again.")]
    Internal(String),
}

/// Result alias for the gateway.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// The S3 error code placed in `<Code>`.
    pub fn aws_code(&self) -> &'static str {
        use ApiError::*;
        match self {
            AccessDenied | AccessDeniedWithMessage(_) => "AccessDenied",
            InvalidAccessKeyId => "InvalidAccessKeyId",
            SignatureDoesNotMatch => "SignatureDoesNotMatch",
            RequestTimeTooSkewed => "RequestTimeTooSkewed",
            AuthorizationHeaderMalformed(_) => "AuthorizationHeaderMalformed",
            AuthorizationQueryParametersError(_) => "AuthorizationQueryParametersError",
            ExpiredPresignedRequest => "AccessDenied",
            XAmzContentSha256Mismatch => "XAmzContentSHA256Mismatch",
            BadDigest => "BadDigest",
            InvalidDigest => "InvalidDigest",
            BadChecksum(_) => "BadDigest",
            NoSuchBucket => "NoSuchBucket",
            NoSuchKey => "NoSuchKey",
            BucketAlreadyOwnedByYou => "BucketAlreadyOwnedByYou",
            BucketAlreadyExists => "BucketAlreadyExists",
            BucketNotEmpty => "BucketNotEmpty",
            InvalidBucketName => "InvalidBucketName",
            IllegalLocationConstraint(_) => "IllegalLocationConstraintException",
            MetadataTooLarge => "MetadataTooLarge",
            KeyTooLong => "KeyTooLongError",
            InvalidRedirectLocation => "InvalidRedirectLocation",
            InvalidRange => "InvalidRange",
            PreconditionFailed => "PreconditionFailed",
            NotModified => "NotModified",
            ConditionalRequestConflict => "ConditionalRequestConflict",
            EntityTooLarge => "EntityTooLarge",
            IncompleteBody => "IncompleteBody",
            MalformedXml => "MalformedXML",
            InvalidArgument(_) => "InvalidArgument",
            MissingContentLength => "MissingContentLength",
            MethodNotAllowed => "MethodNotAllowed",
            NotImplemented => "NotImplemented",
            InvalidRequest(_) => "InvalidRequest",
            InvalidPart => "InvalidPart",
            NoSuchUpload => "NoSuchUpload",
            NoSuchVersion => "NoSuchVersion",
            NoSuchObjectLockConfiguration => "NoSuchObjectLockConfiguration",
            ObjectLockConfigurationNotFound => "ObjectLockConfigurationNotFoundError",
            InvalidBucketState(_) => "InvalidBucketState",
            NoSuchWebsiteConfiguration => "NoSuchWebsiteConfiguration",
            NoSuchCorsConfiguration => "NoSuchCORSConfiguration",
            CorsForbidden { .. } => "AccessForbidden",
            CorsBadRequest(_) => "BadRequest",
            CurrentIsDeleteMarker { .. } => "NoSuchKey",
            VersionIsDeleteMarker { .. } => "MethodNotAllowed",
            InvalidPartOrder => "InvalidPartOrder",
            EntityTooSmall => "EntityTooSmall",
            InvalidTag(_) => "InvalidTag",
            RequestTimeout => "RequestTimeout",
            SlowDown => "SlowDown",
            ServiceUnavailable => "ServiceUnavailable",
            MalformedPolicy(_) => "MalformedPolicy",
            NoSuchBucketPolicy => "NoSuchBucketPolicy",
            NoSuchPublicAccessBlockConfiguration => "NoSuchPublicAccessBlockConfiguration",
            OwnershipControlsNotFound => "OwnershipControlsNotFoundError",
            AccessControlListNotSupported => "AccessControlListNotSupported",
            InvalidBucketAclWithObjectOwnership => "InvalidBucketAclWithObjectOwnership",
            NoSuchEntity(_) => "NoSuchEntity",
            EntityAlreadyExists(_) => "EntityAlreadyExists",
            MalformedPostRequest(_) => "MalformedPOSTRequest",
            PostPolicyDenied(_) => "AccessDenied",
            InvalidPolicyDocument(_) => "InvalidPolicyDocument",
            MaxPostPreDataLengthExceeded => "MaxPostPreDataLengthExceeded",
            Internal(_) => "InternalError",
        }
    }

    /// The HTTP status that goes with [`Self::aws_code`].
    pub fn http_status(&self) -> StatusCode {
        use ApiError::*;
        match self {
            AccessDenied
            | AccessDeniedWithMessage(_)
            | InvalidAccessKeyId
            | SignatureDoesNotMatch
            | RequestTimeTooSkewed
            | ExpiredPresignedRequest
            | CorsForbidden { .. }
            | PostPolicyDenied(_) => StatusCode::FORBIDDEN,
            AuthorizationHeaderMalformed(_)
            | AuthorizationQueryParametersError(_)
            | XAmzContentSha256Mismatch
            | BadDigest
            | InvalidDigest
            | BadChecksum(_)
            | InvalidBucketName
            | IllegalLocationConstraint(_)
            | MetadataTooLarge
            | KeyTooLong
            | InvalidRedirectLocation
            | EntityTooLarge
            | IncompleteBody
            | MalformedXml
            | InvalidArgument(_)
            | InvalidRequest(_)
            | InvalidPart
            | InvalidPartOrder
            | EntityTooSmall
            | InvalidTag(_)
            | CorsBadRequest(_)
            | MalformedPolicy(_)
            | AccessControlListNotSupported
            | InvalidBucketAclWithObjectOwnership
            | MalformedPostRequest(_)
            | InvalidPolicyDocument(_)
            | MaxPostPreDataLengthExceeded
            | RequestTimeout => StatusCode::BAD_REQUEST,
            MissingContentLength => StatusCode::LENGTH_REQUIRED,
            NoSuchBucket
            | NoSuchKey
            | NoSuchUpload
            | NoSuchVersion
            | NoSuchObjectLockConfiguration
            | ObjectLockConfigurationNotFound
            | NoSuchWebsiteConfiguration
            | NoSuchCorsConfiguration
            | NoSuchBucketPolicy
            | NoSuchPublicAccessBlockConfiguration
            | OwnershipControlsNotFound
            | NoSuchEntity(_)
            | CurrentIsDeleteMarker { .. } => StatusCode::NOT_FOUND,
            VersionIsDeleteMarker { .. } => StatusCode::METHOD_NOT_ALLOWED,
            BucketAlreadyOwnedByYou
            | BucketAlreadyExists
            | BucketNotEmpty
            | InvalidBucketState(_)
            | EntityAlreadyExists(_)
            | ConditionalRequestConflict => StatusCode::CONFLICT,
            InvalidRange => StatusCode::RANGE_NOT_SATISFIABLE,
            PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            NotModified => StatusCode::NOT_MODIFIED,
            MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            NotImplemented => StatusCode::NOT_IMPLEMENTED,
            SlowDown | ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The message placed in `<Message>`; internal details are never exposed.
    pub fn message(&self) -> String {
        self.to_string()
    }

    /// Wraps an unexpected internal failure, logging where it came from.
    #[track_caller]
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        let loc = std::panic::Location::caller();
        tracing::error!(%cause, at = %loc, "internal error");
        ApiError::Internal(cause.to_string())
    }

    /// Renders the S3 XML error document for this error.
    pub fn to_xml(&self, resource: &str, request_id: &str) -> String {
        let mut out = String::with_capacity(256);
        out.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>");
        out.push_str(self.aws_code());
        out.push_str("</Code><Message>");
        out.push_str(&xml_escape(&self.message()));
        out.push_str("</Message>");
        if let ApiError::CorsForbidden {
            method,
            resource_type,
            ..
        } = self
        {
            // S3's CORS refusals name the method and the kind of resource instead of the resource.
            out.push_str("<Method>");
            out.push_str(&xml_escape(method));
            out.push_str("</Method><ResourceType>");
            out.push_str(resource_type);
            out.push_str("</ResourceType>");
        } else {
            out.push_str("<Resource>");
            out.push_str(&xml_escape(resource));
            out.push_str("</Resource>");
        }
        out.push_str("<RequestId>");
        out.push_str(request_id);
        out.push_str("</RequestId></Error>");
        out
    }
}

/// Escapes text for inclusion in XML character data.
pub fn xml_escape(s: &str) -> String {
    quick_xml::escape::escape(s).into_owned()
}

impl From<strata_storage::Error> for ApiError {
    #[track_caller]
    fn from(e: strata_storage::Error) -> Self {
        use strata_storage::Error as S;
        match e {
            S::NoSuchBucket => ApiError::NoSuchBucket,
            S::NoSuchKey => ApiError::NoSuchKey,
            S::BucketAlreadyOwnedByYou => ApiError::BucketAlreadyOwnedByYou,
            S::BucketAlreadyExists => ApiError::BucketAlreadyExists,
            S::BucketNotEmpty => ApiError::BucketNotEmpty,
            S::PreconditionFailed => ApiError::PreconditionFailed,
            S::NoSuchUpload => ApiError::NoSuchUpload,
            S::NoSuchVersion => ApiError::NoSuchVersion,
            S::ObjectLocked(why) => {
                tracing::debug!(why, "refused by object lock");
                ApiError::AccessDenied
            }
            S::NoObjectLockConfiguration => {
                ApiError::InvalidRequest("Bucket is missing Object Lock Configuration".into())
            }
            S::NoSuchObjectLockConfiguration => ApiError::NoSuchObjectLockConfiguration,
            S::InvalidBucketState(m) => ApiError::InvalidBucketState(m),
            S::InvalidVersion => ApiError::InvalidArgument("Invalid version id specified".into()),
            S::MethodNotAllowed => ApiError::MethodNotAllowed,
            S::InvalidPart(why) => {
                tracing::debug!(why, "invalid part");
                ApiError::InvalidPart
            }
            S::InvalidPartOrder => ApiError::InvalidPartOrder,
            S::EntityTooSmall => ApiError::EntityTooSmall,
            S::InvalidRequest(m) => ApiError::InvalidRequest(m),
            S::EntityTooLarge => ApiError::EntityTooLarge,
            S::IncompleteBody { .. } => ApiError::IncompleteBody,
            // Body and verification failures carry the gateway's own error back through the engine.
            S::Body(inner) | S::Rejected(inner) => match inner.downcast::<ApiError>() {
                Ok(api) => *api,
                Err(other) => ApiError::InvalidArgument(other.to_string()),
            },
            S::QuorumLost { .. } => {
                tracing::error!(error = %e, "not enough disks");
                ApiError::ServiceUnavailable
            }
            S::Unrecoverable(_) | S::Io(_) | S::Meta(_) | S::Config(_) => ApiError::internal(e),
        }
    }
}
