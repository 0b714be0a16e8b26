//! Turns a request line (method, host, path, query) into one [`Endpoint`]: the S3 operation and its bucket
//! and key. Parsed once, before authorization and dispatch; handlers never look at the raw path again.

use http::Method;

use crate::error::{ApiError, ApiResult};

/// Query parameters, percent-decoded, in request order.
#[derive(Debug, Clone, Default)]
pub struct Query(pub Vec<(String, String)>);

impl Query {
    /// Parses a raw query string.
    pub fn parse(raw: Option<&str>) -> Self {
        let Some(raw) = raw else {
            return Self::default();
        };
        let pairs = raw
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (decode_query(k), decode_query(v))
            })
            .collect();
        Self(pairs)
    }

    /// The first value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Whether `name` is present (with or without a value).
    pub fn has(&self, name: &str) -> bool {
        self.0.iter().any(|(k, _)| k == name)
    }
}

fn decode_query(s: &str) -> String {
    let plus_as_space = s.replace('+', " ");
    percent_encoding::percent_decode_str(&plus_as_space)
        .decode_utf8_lossy()
        .into_owned()
}

/// Every S3 operation the gateway knows, with the resource it addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// GET /
    ListBuckets,
    /// PUT /bucket
    CreateBucket { bucket: String },
    /// HEAD /bucket
    HeadBucket { bucket: String },
    /// DELETE /bucket
    DeleteBucket { bucket: String },
    /// GET /bucket?location
    GetBucketLocation { bucket: String },
    /// GET /bucket?versioning
    GetBucketVersioning { bucket: String },
    /// GET /bucket (list-type absent)
    ListObjects { bucket: String },
    /// GET /bucket?list-type=2
    ListObjectsV2 { bucket: String },
    /// POST /bucket?delete
    DeleteObjects { bucket: String },
    /// POST /bucket with a multipart/form-data body: a browser-based upload.
    PostObject { bucket: String },
    /// PUT /bucket/key
    PutObject { bucket: String, key: String },
    /// PUT /bucket/key with x-amz-copy-source
    CopyObject { bucket: String, key: String },
    /// GET /bucket/key
    GetObject { bucket: String, key: String },
    /// HEAD /bucket/key
    HeadObject { bucket: String, key: String },
    /// DELETE /bucket/key
    DeleteObject { bucket: String, key: String },
    /// PUT /bucket/key?tagging
    PutObjectTagging { bucket: String, key: String },
    /// GET /bucket/key?tagging
    GetObjectTagging { bucket: String, key: String },
    /// DELETE /bucket/key?tagging
    DeleteObjectTagging { bucket: String, key: String },
    /// GET /bucket?uploads
    ListMultipartUploads { bucket: String },
    /// PUT /bucket?versioning
    PutBucketVersioning { bucket: String },
    /// PUT /bucket?object-lock
    PutObjectLockConfiguration { bucket: String },
    /// GET /bucket?object-lock
    GetObjectLockConfiguration { bucket: String },
    /// PUT /bucket/key?retention
    PutObjectRetention { bucket: String, key: String },
    /// GET /bucket/key?retention
    GetObjectRetention { bucket: String, key: String },
    /// PUT /bucket/key?legal-hold
    PutObjectLegalHold { bucket: String, key: String },
    /// GET /bucket/key?legal-hold
    GetObjectLegalHold { bucket: String, key: String },
    /// GET /bucket?versions
    ListObjectVersions { bucket: String },
    /// POST /bucket/key?uploads
    CreateMultipartUpload { bucket: String, key: String },
    /// PUT /bucket/key?partNumber&uploadId
    UploadPart { bucket: String, key: String },
    /// PUT /bucket/key?partNumber&uploadId with x-amz-copy-source
    UploadPartCopy { bucket: String, key: String },
    /// POST /bucket/key?uploadId
    CompleteMultipartUpload { bucket: String, key: String },
    /// DELETE /bucket/key?uploadId
    AbortMultipartUpload { bucket: String, key: String },
    /// GET /bucket/key?uploadId
    ListParts { bucket: String, key: String },
    /// GET /bucket/key?attributes
    GetObjectAttributes { bucket: String, key: String },
    /// PUT /bucket?website
    PutBucketWebsite { bucket: String },
    /// GET /bucket?website
    GetBucketWebsite { bucket: String },
    /// DELETE /bucket?website
    DeleteBucketWebsite { bucket: String },
    /// PUT /bucket?cors
    PutBucketCors { bucket: String },
    /// GET /bucket?cors
    GetBucketCors { bucket: String },
    /// DELETE /bucket?cors
    DeleteBucketCors { bucket: String },
    /// PUT /bucket?policy
    PutBucketPolicy { bucket: String },
    /// GET /bucket?policy
    GetBucketPolicy { bucket: String },
    /// DELETE /bucket?policy
    DeleteBucketPolicy { bucket: String },
    /// GET /bucket?policyStatus
    GetBucketPolicyStatus { bucket: String },
    /// PUT /bucket?publicAccessBlock
    PutPublicAccessBlock { bucket: String },
    /// GET /bucket?publicAccessBlock
    GetPublicAccessBlock { bucket: String },
    /// DELETE /bucket?publicAccessBlock
    DeletePublicAccessBlock { bucket: String },
    /// PUT /bucket?ownershipControls
    PutBucketOwnershipControls { bucket: String },
    /// GET /bucket?ownershipControls
    GetBucketOwnershipControls { bucket: String },
    /// DELETE /bucket?ownershipControls
    DeleteBucketOwnershipControls { bucket: String },
    /// GET /bucket?acl
    GetBucketAcl { bucket: String },
    /// PUT /bucket?acl
    PutBucketAcl { bucket: String },
    /// GET /bucket/key?acl
    GetObjectAcl { bucket: String, key: String },
    /// PUT /bucket/key?acl
    PutObjectAcl { bucket: String, key: String },
    /// An S3 operation Strata does not implement yet.
    NotImplemented {
        bucket: Option<String>,
        operation: &'static str,
    },
}

/// Bucket sub-resources that name operations Strata does not implement yet.
const UNIMPLEMENTED_BUCKET_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "analytics",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "lifecycle",
    "logging",
    "metrics",
    "notification",
    "replication",
    "requestPayment",
    "tagging",
];
const UNIMPLEMENTED_OBJECT_SUBRESOURCES: &[&str] = &["restore", "select", "torrent"];

impl Endpoint {
    /// The bucket addressed, if any.
    pub fn bucket(&self) -> Option<&str> {
        use Endpoint::*;
        match self {
            ListBuckets => None,
            NotImplemented { bucket, .. } => bucket.as_deref(),
            CreateBucket { bucket }
            | HeadBucket { bucket }
            | DeleteBucket { bucket }
            | GetBucketLocation { bucket }
            | GetBucketVersioning { bucket }
            | ListObjects { bucket }
            | ListObjectsV2 { bucket }
            | DeleteObjects { bucket }
            | PostObject { bucket }
            | PutObject { bucket, .. }
            | CopyObject { bucket, .. }
            | GetObject { bucket, .. }
            | HeadObject { bucket, .. }
            | DeleteObject { bucket, .. }
            | PutObjectTagging { bucket, .. }
            | GetObjectTagging { bucket, .. }
            | DeleteObjectTagging { bucket, .. }
            | ListMultipartUploads { bucket }
            | PutBucketVersioning { bucket }
            | PutObjectLockConfiguration { bucket }
            | GetObjectLockConfiguration { bucket }
            | PutObjectRetention { bucket, .. }
            | GetObjectRetention { bucket, .. }
            | PutObjectLegalHold { bucket, .. }
            | GetObjectLegalHold { bucket, .. }
            | ListObjectVersions { bucket }
            | CreateMultipartUpload { bucket, .. }
            | UploadPart { bucket, .. }
            | UploadPartCopy { bucket, .. }
            | CompleteMultipartUpload { bucket, .. }
            | AbortMultipartUpload { bucket, .. }
            | ListParts { bucket, .. }
            | GetObjectAttributes { bucket, .. }
            | PutBucketWebsite { bucket }
            | GetBucketWebsite { bucket }
            | DeleteBucketWebsite { bucket }
            | PutBucketCors { bucket }
            | GetBucketCors { bucket }
            | DeleteBucketCors { bucket }
            | GetObjectAcl { bucket, .. }
            | PutObjectAcl { bucket, .. } => Some(bucket),
            PutBucketOwnershipControls { bucket } => Some(bucket),
            GetBucketOwnershipControls { bucket } => Some(bucket),
            DeleteBucketOwnershipControls { bucket } => Some(bucket),
            GetBucketAcl { bucket } => Some(bucket),
            PutBucketAcl { bucket } => Some(bucket),
            PutBucketPolicy { bucket } => Some(bucket),
            GetBucketPolicy { bucket } => Some(bucket),
            DeleteBucketPolicy { bucket } => Some(bucket),
            GetBucketPolicyStatus { bucket } => Some(bucket),
            PutPublicAccessBlock { bucket } => Some(bucket),
            GetPublicAccessBlock { bucket } => Some(bucket),
            DeletePublicAccessBlock { bucket } => Some(bucket),
        }
    }

    /// The operation name, for logs.
    pub fn name(&self) -> &'static str {
        use Endpoint::*;
        match self {
            ListBuckets => "ListBuckets",
            CreateBucket { .. } => "CreateBucket",
            HeadBucket { .. } => "HeadBucket",
            DeleteBucket { .. } => "DeleteBucket",
            GetBucketLocation { .. } => "GetBucketLocation",
            GetBucketVersioning { .. } => "GetBucketVersioning",
            ListObjects { .. } => "ListObjects",
            ListObjectsV2 { .. } => "ListObjectsV2",
            DeleteObjects { .. } => "DeleteObjects",
            PostObject { .. } => "PostObject",
            PutObject { .. } => "PutObject",
            CopyObject { .. } => "CopyObject",
            GetObject { .. } => "GetObject",
            HeadObject { .. } => "HeadObject",
            DeleteObject { .. } => "DeleteObject",
            PutObjectTagging { .. } => "PutObjectTagging",
            GetObjectTagging { .. } => "GetObjectTagging",
            DeleteObjectTagging { .. } => "DeleteObjectTagging",
            ListMultipartUploads { .. } => "ListMultipartUploads",
            PutBucketVersioning { .. } => "PutBucketVersioning",
            PutObjectLockConfiguration { .. } => "PutObjectLockConfiguration",
            GetObjectLockConfiguration { .. } => "GetObjectLockConfiguration",
            PutObjectRetention { .. } => "PutObjectRetention",
            GetObjectRetention { .. } => "GetObjectRetention",
            PutObjectLegalHold { .. } => "PutObjectLegalHold",
            GetObjectLegalHold { .. } => "GetObjectLegalHold",
            ListObjectVersions { .. } => "ListObjectVersions",
            CreateMultipartUpload { .. } => "CreateMultipartUpload",
            UploadPart { .. } => "UploadPart",
            UploadPartCopy { .. } => "UploadPartCopy",
            CompleteMultipartUpload { .. } => "CompleteMultipartUpload",
            AbortMultipartUpload { .. } => "AbortMultipartUpload",
            ListParts { .. } => "ListParts",
            GetObjectAttributes { .. } => "GetObjectAttributes",
            PutBucketWebsite { .. } => "PutBucketWebsite",
            GetBucketWebsite { .. } => "GetBucketWebsite",
            DeleteBucketWebsite { .. } => "DeleteBucketWebsite",
            PutBucketCors { .. } => "PutBucketCors",
            GetBucketCors { .. } => "GetBucketCors",
            DeleteBucketCors { .. } => "DeleteBucketCors",
            NotImplemented { operation, .. } => operation,
            PutBucketOwnershipControls { .. } => "PutBucketOwnershipControls",
            GetBucketOwnershipControls { .. } => "GetBucketOwnershipControls",
            DeleteBucketOwnershipControls { .. } => "DeleteBucketOwnershipControls",
            GetBucketAcl { .. } => "GetBucketAcl",
            PutBucketAcl { .. } => "PutBucketAcl",
            GetObjectAcl { .. } => "GetObjectAcl",
            PutObjectAcl { .. } => "PutObjectAcl",
            PutBucketPolicy { .. } => "PutBucketPolicy",
            GetBucketPolicy { .. } => "GetBucketPolicy",
            DeleteBucketPolicy { .. } => "DeleteBucketPolicy",
            GetBucketPolicyStatus { .. } => "GetBucketPolicyStatus",
            PutPublicAccessBlock { .. } => "PutPublicAccessBlock",
            GetPublicAccessBlock { .. } => "GetPublicAccessBlock",
            DeletePublicAccessBlock { .. } => "DeletePublicAccessBlock",
        }
    }

    /// The key addressed, if any.
    pub fn key(&self) -> Option<&str> {
        use Endpoint::*;
        match self {
            PutObject { key, .. }
            | CopyObject { key, .. }
            | GetObject { key, .. }
            | HeadObject { key, .. }
            | DeleteObject { key, .. }
            | PutObjectTagging { key, .. }
            | GetObjectTagging { key, .. }
            | DeleteObjectTagging { key, .. }
            | PutObjectRetention { key, .. }
            | GetObjectRetention { key, .. }
            | PutObjectLegalHold { key, .. }
            | GetObjectLegalHold { key, .. }
            | CreateMultipartUpload { key, .. }
            | UploadPart { key, .. }
            | UploadPartCopy { key, .. }
            | CompleteMultipartUpload { key, .. }
            | AbortMultipartUpload { key, .. }
            | ListParts { key, .. }
            | GetObjectAttributes { key, .. }
            | GetObjectAcl { key, .. }
            | PutObjectAcl { key, .. } => Some(key),
            _ => None,
        }
    }

    /// The IAM action the operation needs (`versioned`: the request names a version id, which turns object
    /// reads and deletes into their `...Version` actions). None for DeleteObjects (authorized per key by its
    /// handler) and for operations Strata does not implement.
    pub fn action(&self, versioned: bool) -> Option<&'static str> {
        use Endpoint::*;
        let v =
            |plain: &'static str, version: &'static str| if versioned { version } else { plain };
        Some(match self {
            ListBuckets => "s3:ListAllMyBuckets",
            CreateBucket { .. } => "s3:CreateBucket",
            HeadBucket { .. } | ListObjects { .. } | ListObjectsV2 { .. } => "s3:ListBucket",
            DeleteBucket { .. } => "s3:DeleteBucket",
            GetBucketLocation { .. } => "s3:GetBucketLocation",
            GetBucketVersioning { .. } => "s3:GetBucketVersioning",
            PutBucketVersioning { .. } => "s3:PutBucketVersioning",
            ListObjectVersions { .. } => "s3:ListBucketVersions",
            PutObject { .. }
            | CopyObject { .. }
            | CreateMultipartUpload { .. }
            | UploadPart { .. }
            | UploadPartCopy { .. }
            | CompleteMultipartUpload { .. } => "s3:PutObject",
            GetObject { .. } | HeadObject { .. } => v("s3:GetObject", "s3:GetObjectVersion"),
            DeleteObject { .. } => v("s3:DeleteObject", "s3:DeleteObjectVersion"),
            PutObjectTagging { .. } => v("s3:PutObjectTagging", "s3:PutObjectVersionTagging"),
            GetObjectTagging { .. } => v("s3:GetObjectTagging", "s3:GetObjectVersionTagging"),
            DeleteObjectTagging { .. } => {
                v("s3:DeleteObjectTagging", "s3:DeleteObjectVersionTagging")
            }
            GetObjectAttributes { .. } => {
                v("s3:GetObjectAttributes", "s3:GetObjectVersionAttributes")
            }
            ListMultipartUploads { .. } => "s3:ListBucketMultipartUploads",
            AbortMultipartUpload { .. } => "s3:AbortMultipartUpload",
            ListParts { .. } => "s3:ListMultipartUploadParts",
            PutObjectLockConfiguration { .. } => "s3:PutBucketObjectLockConfiguration",
            GetObjectLockConfiguration { .. } => "s3:GetBucketObjectLockConfiguration",
            PutObjectRetention { .. } => "s3:PutObjectRetention",
            GetObjectRetention { .. } => "s3:GetObjectRetention",
            PutObjectLegalHold { .. } => "s3:PutObjectLegalHold",
            GetObjectLegalHold { .. } => "s3:GetObjectLegalHold",
            PutBucketPolicy { .. } => "s3:PutBucketPolicy",
            GetBucketPolicy { .. } => "s3:GetBucketPolicy",
            DeleteBucketPolicy { .. } => "s3:DeleteBucketPolicy",
            GetBucketPolicyStatus { .. } => "s3:GetBucketPolicyStatus",
            PutPublicAccessBlock { .. } | DeletePublicAccessBlock { .. } => {
                "s3:PutBucketPublicAccessBlock"
            }
            GetPublicAccessBlock { .. } => "s3:GetBucketPublicAccessBlock",
            PutBucketWebsite { .. } => "s3:PutBucketWebsite",
            GetBucketWebsite { .. } => "s3:GetBucketWebsite",
            DeleteBucketWebsite { .. } => "s3:DeleteBucketWebsite",
            PutBucketCors { .. } | DeleteBucketCors { .. } => "s3:PutBucketCORS",
            GetBucketCors { .. } => "s3:GetBucketCORS",
            PutBucketOwnershipControls { .. } | DeleteBucketOwnershipControls { .. } => {
                "s3:PutBucketOwnershipControls"
            }
            GetBucketOwnershipControls { .. } => "s3:GetBucketOwnershipControls",
            GetBucketAcl { .. } => "s3:GetBucketAcl",
            PutBucketAcl { .. } => "s3:PutBucketAcl",
            GetObjectAcl { .. } => v("s3:GetObjectAcl", "s3:GetObjectVersionAcl"),
            PutObjectAcl { .. } => v("s3:PutObjectAcl", "s3:PutObjectVersionAcl"),
            DeleteObjects { .. } | PostObject { .. } | NotImplemented { .. } => return None,
        })
    }
}

/// Splits a request into (bucket, key) for path-style or virtual-hosted-style addressing.
///
/// `host_bucket` is the bucket the Host header names in virtual-hosted style ([`crate::host::virtual_bucket`],
/// resolved once per request since authentication signs it too); without one, the path names the bucket.
/// `path` is the raw (percent-encoded) request path.
pub fn split_resource(
    host_bucket: Option<&str>,
    path: &str,
) -> ApiResult<(Option<String>, Option<String>)> {
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| ApiError::InvalidArgument("The request path is not valid UTF-8.".into()))?;
    let path = decoded.strip_prefix('/').unwrap_or(&decoded);
    let (bucket, key) = match host_bucket.map(str::to_owned) {
        Some(b) => (Some(b), Some(path.to_owned())),
        None => match path.split_once('/') {
            Some((b, k)) => (Some(b.to_owned()), Some(k.to_owned())),
            None => (Some(path.to_owned()), None),
        },
    };
    let bucket = bucket.filter(|b| !b.is_empty());
    let key = key.filter(|k| !k.is_empty());
    Ok((bucket, key))
}

/// The website and CORS sub-resources of a bucket, if the query names one.
fn bucket_config_endpoint(method: &Method, bucket: &str, q: &Query) -> Option<ApiResult<Endpoint>> {
    use Endpoint::*;
    let bucket = bucket.to_owned();
    let ep = if q.has("website") {
        match *method {
            Method::PUT => PutBucketWebsite { bucket },
            Method::GET => GetBucketWebsite { bucket },
            Method::DELETE => DeleteBucketWebsite { bucket },
            _ => return Some(Err(ApiError::MethodNotAllowed)),
        }
    } else if q.has("cors") {
        match *method {
            Method::PUT => PutBucketCors { bucket },
            Method::GET => GetBucketCors { bucket },
            Method::DELETE => DeleteBucketCors { bucket },
            _ => return Some(Err(ApiError::MethodNotAllowed)),
        }
    } else {
        return None;
    };
    Some(Ok(ep))
}

/// Routes a request to its endpoint.
pub fn route(
    method: &Method,
    bucket: Option<String>,
    key: Option<String>,
    q: &Query,
    copy_source: bool,
) -> ApiResult<Endpoint> {
    use Endpoint::*;
    let Some(bucket) = bucket else {
        return match *method {
            Method::GET => Ok(ListBuckets),
            _ => Err(ApiError::MethodNotAllowed),
        };
    };
    let Some(key) = key else {
        if let Some(ep) = bucket_config_endpoint(method, &bucket, q) {
            return ep;
        }
        if let Some(sub) = UNIMPLEMENTED_BUCKET_SUBRESOURCES.iter().find(|s| q.has(s)) {
            return Ok(NotImplemented {
                bucket: Some(bucket),
                operation: sub,
            });
        }
        if let Some(e) = route_access_subresource(method, &bucket, q) {
            return e;
        }
        return match *method {
            Method::PUT if q.has("versioning") => Ok(PutBucketVersioning { bucket }),
            Method::PUT if q.has("object-lock") => Ok(PutObjectLockConfiguration { bucket }),
            Method::GET if q.has("object-lock") => Ok(GetObjectLockConfiguration { bucket }),
            Method::PUT => Ok(CreateBucket { bucket }),
            Method::HEAD => Ok(HeadBucket { bucket }),
            Method::DELETE => Ok(DeleteBucket { bucket }),
            Method::GET if q.has("uploads") => Ok(ListMultipartUploads { bucket }),
            Method::GET if q.has("versions") => Ok(ListObjectVersions { bucket }),
            Method::GET if q.has("location") => Ok(GetBucketLocation { bucket }),
            Method::GET if q.has("versioning") => Ok(GetBucketVersioning { bucket }),
            Method::GET if q.get("list-type") == Some("2") => Ok(ListObjectsV2 { bucket }),
            Method::GET if q.has("list-type") => {
                Err(ApiError::InvalidArgument("Invalid list-type".into()))
            }
            Method::GET => Ok(ListObjects { bucket }),
            Method::POST if q.has("delete") => Ok(DeleteObjects { bucket }),
            Method::POST => Ok(PostObject { bucket }),
            _ => Err(ApiError::MethodNotAllowed),
        };
    };
    if q.has("tagging") {
        return match *method {
            Method::PUT => Ok(PutObjectTagging { bucket, key }),
            Method::GET => Ok(GetObjectTagging { bucket, key }),
            Method::DELETE => Ok(DeleteObjectTagging { bucket, key }),
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    if q.has("acl") {
        return match *method {
            Method::PUT => Ok(PutObjectAcl { bucket, key }),
            Method::GET => Ok(GetObjectAcl { bucket, key }),
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    if let Some(sub) = UNIMPLEMENTED_OBJECT_SUBRESOURCES.iter().find(|s| q.has(s)) {
        return Ok(NotImplemented {
            bucket: Some(bucket),
            operation: sub,
        });
    }
    if q.has("retention") || q.has("legal-hold") {
        let retention = q.has("retention");
        return match *method {
            Method::PUT if retention => Ok(PutObjectRetention { bucket, key }),
            Method::GET if retention => Ok(GetObjectRetention { bucket, key }),
            Method::PUT => Ok(PutObjectLegalHold { bucket, key }),
            Method::GET => Ok(GetObjectLegalHold { bucket, key }),
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    if q.has("uploadId") {
        return match *method {
            Method::PUT if copy_source => Ok(UploadPartCopy { bucket, key }),
            Method::PUT => Ok(UploadPart { bucket, key }),
            Method::POST => Ok(CompleteMultipartUpload { bucket, key }),
            Method::DELETE => Ok(AbortMultipartUpload { bucket, key }),
            Method::GET => Ok(ListParts { bucket, key }),
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    if q.has("uploads") {
        return match *method {
            Method::POST => Ok(CreateMultipartUpload { bucket, key }),
            _ => Err(ApiError::MethodNotAllowed),
        };
    }
    if q.has("attributes") && *method == Method::GET {
        return Ok(GetObjectAttributes { bucket, key });
    }
    match *method {
        Method::PUT if copy_source => Ok(CopyObject { bucket, key }),
        Method::PUT => Ok(PutObject { bucket, key }),
        Method::GET => Ok(GetObject { bucket, key }),
        Method::HEAD => Ok(HeadObject { bucket, key }),
        Method::DELETE => Ok(DeleteObject { bucket, key }),
        Method::POST => Ok(NotImplemented {
            bucket: Some(bucket),
            operation: "PostObject",
        }),
        _ => Err(ApiError::MethodNotAllowed),
    }
}

/// The bucket policy, Block Public Access, ownership controls and ACL sub-resources.
fn route_access_subresource(
    method: &Method,
    bucket: &str,
    q: &Query,
) -> Option<ApiResult<Endpoint>> {
    use Endpoint::*;
    let bucket = bucket.to_owned();
    let e = if q.has("policyStatus") {
        match *method {
            Method::GET => GetBucketPolicyStatus { bucket },
            _ => return Some(Err(ApiError::MethodNotAllowed)),
        }
    } else if q.has("policy") {
        match *method {
            Method::PUT => PutBucketPolicy { bucket },
            Method::GET => GetBucketPolicy { bucket },
            Method::DELETE => DeleteBucketPolicy { bucket },
            _ => return Some(Err(ApiError::MethodNotAllowed)),
        }
    } else if q.has("ownershipControls") {
        match *method {
            Method::PUT => PutBucketOwnershipControls { bucket },
            Method::GET => GetBucketOwnershipControls { bucket },
            Method::DELETE => DeleteBucketOwnershipControls { bucket },
            _ => return Some(Err(ApiError::MethodNotAllowed)),
        }
    } else if q.has("acl") {
        match *method {
            Method::PUT => PutBucketAcl { bucket },
            Method::GET => GetBucketAcl { bucket },
            _ => return Some(Err(ApiError::MethodNotAllowed)),
        }
    } else if q.has("publicAccessBlock") {
        match *method {
            Method::PUT => PutPublicAccessBlock { bucket },
            Method::GET => GetPublicAccessBlock { bucket },
            Method::DELETE => DeletePublicAccessBlock { bucket },
            _ => return Some(Err(ApiError::MethodNotAllowed)),
        }
    } else {
        return None;
    };
    Some(Ok(e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::virtual_bucket;

    fn r(method: Method, host: &str, path_query: &str) -> Endpoint {
        let (path, query) = path_query
            .split_once('?')
            .map_or((path_query, None), |(p, q)| (p, Some(q)));
        let (b, k) = split_resource(
            virtual_bucket(host, &["localhost".to_string()]).as_deref(),
            path,
        )
        .unwrap();
        route(&method, b, k, &Query::parse(query), false).unwrap()
    }

    #[test]
    fn virtual_hosted_domains_match_without_case_or_a_trailing_dot() {
        let domains = ["localhost".to_string()];
        let hosted = (Some("bkt"), Some("a/b"));
        // Not under the domain: the path names the bucket.
        let pathed = (Some("a"), Some("b"));
        for (host, named) in [
            ("bkt.localhost:9000", hosted),
            ("bkt.LocalHost:9000", hosted),
            ("bkt.localhost.:9000", hosted),
            ("BKT.LOCALHOST.", hosted),
            ("localhost:9000", pathed),
            ("bktlocalhost", pathed),
            (".localhost", pathed),
            ("bkt.localhost.com", pathed),
            ("é.x", pathed),
            ("ééééélocalhost", pathed),
            ("écalhostx", pathed),
            ("[::1]:9000", pathed),
            ("localhost.", pathed),
        ] {
            let (b, k) = split_resource(virtual_bucket(host, &domains).as_deref(), "/a/b").unwrap();
            assert_eq!((b.as_deref(), k.as_deref()), named, "{host}");
        }
    }

    #[test]
    fn table_of_operations() {
        let b = || "bkt".to_string();
        let k = || "a/b c".to_string();
        let cases = [
            (Method::GET, "127.0.0.1:9000", "/", Endpoint::ListBuckets),
            (
                Method::PUT,
                "127.0.0.1:9000",
                "/bkt",
                Endpoint::CreateBucket { bucket: b() },
            ),
            (
                Method::PUT,
                "127.0.0.1:9000",
                "/bkt/",
                Endpoint::CreateBucket { bucket: b() },
            ),
            (
                Method::HEAD,
                "127.0.0.1:9000",
                "/bkt",
                Endpoint::HeadBucket { bucket: b() },
            ),
            (
                Method::DELETE,
                "127.0.0.1:9000",
                "/bkt",
                Endpoint::DeleteBucket { bucket: b() },
            ),
            (
                Method::GET,
                "127.0.0.1:9000",
                "/bkt?location",
                Endpoint::GetBucketLocation { bucket: b() },
            ),
            (
                Method::GET,
                "127.0.0.1:9000",
                "/bkt?list-type=2&prefix=a",
                Endpoint::ListObjectsV2 { bucket: b() },
            ),
            (
                Method::GET,
                "127.0.0.1:9000",
                "/bkt?marker=x",
                Endpoint::ListObjects { bucket: b() },
            ),
            (
                Method::POST,
                "127.0.0.1:9000",
                "/bkt?delete",
                Endpoint::DeleteObjects { bucket: b() },
            ),
            (
                Method::POST,
                "127.0.0.1:9000",
                "/bkt",
                Endpoint::PostObject { bucket: b() },
            ),
            (
                Method::POST,
                "bkt.localhost:9000",
                "/",
                Endpoint::PostObject { bucket: b() },
            ),
            (
                Method::PUT,
                "127.0.0.1:9000",
                "/bkt/a/b%20c",
                Endpoint::PutObject {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::GET,
                "127.0.0.1:9000",
                "/bkt/a/b%20c",
                Endpoint::GetObject {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::HEAD,
                "127.0.0.1:9000",
                "/bkt/a/b%20c",
                Endpoint::HeadObject {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::DELETE,
                "127.0.0.1:9000",
                "/bkt/a/b%20c",
                Endpoint::DeleteObject {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::PUT,
                "127.0.0.1:9000",
                "/bkt/a/b%20c?tagging",
                Endpoint::PutObjectTagging {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::GET,
                "bkt.localhost:9000",
                "/a/b%20c",
                Endpoint::GetObject {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::GET,
                "bkt.localhost",
                "/?list-type=2",
                Endpoint::ListObjectsV2 { bucket: b() },
            ),
            (
                Method::GET,
                "h",
                "/bkt?uploads",
                Endpoint::ListMultipartUploads { bucket: b() },
            ),
            (
                Method::POST,
                "h",
                "/bkt/a/b%20c?uploads",
                Endpoint::CreateMultipartUpload {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::PUT,
                "h",
                "/bkt/a/b%20c?partNumber=1&uploadId=x",
                Endpoint::UploadPart {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::POST,
                "h",
                "/bkt/a/b%20c?uploadId=x",
                Endpoint::CompleteMultipartUpload {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::DELETE,
                "h",
                "/bkt/a/b%20c?uploadId=x",
                Endpoint::AbortMultipartUpload {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::GET,
                "h",
                "/bkt/a/b%20c?uploadId=x",
                Endpoint::ListParts {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::GET,
                "h",
                "/bkt/a/b%20c?attributes",
                Endpoint::GetObjectAttributes {
                    bucket: b(),
                    key: k(),
                },
            ),
        ];
        for (m, host, pq, want) in cases {
            assert_eq!(r(m.clone(), host, pq), want, "{m} {host}{pq}");
        }
    }

    #[test]
    fn website_and_cors_subresources() {
        let bucket = || "bkt".to_owned();
        for (m, pq, want) in [
            (
                Method::PUT,
                "/bkt?website",
                Endpoint::PutBucketWebsite { bucket: bucket() },
            ),
            (
                Method::GET,
                "/bkt?website",
                Endpoint::GetBucketWebsite { bucket: bucket() },
            ),
            (
                Method::DELETE,
                "/bkt?website",
                Endpoint::DeleteBucketWebsite { bucket: bucket() },
            ),
            (
                Method::PUT,
                "/bkt?cors",
                Endpoint::PutBucketCors { bucket: bucket() },
            ),
            (
                Method::GET,
                "/bkt?cors",
                Endpoint::GetBucketCors { bucket: bucket() },
            ),
            (
                Method::DELETE,
                "/bkt?cors",
                Endpoint::DeleteBucketCors { bucket: bucket() },
            ),
        ] {
            assert_eq!(r(m.clone(), "h", pq), want, "{m} {pq}");
        }
    }

    #[test]
    fn traversal_keys_stay_keys() {
        let (b, k) = split_resource(None, "/bkt/..%2F..%2Fetc/passwd").unwrap();
        assert_eq!(b.as_deref(), Some("bkt"));
        assert_eq!(k.as_deref(), Some("../../etc/passwd"));
        let (_, k) = split_resource(None, "/bkt/%2e%2e/x").unwrap();
        assert_eq!(k.as_deref(), Some("../x"));
    }

    #[test]
    fn unimplemented_subresources_say_so() {
        assert!(matches!(
            r(Method::GET, "h", "/bkt?analytics"),
            Endpoint::NotImplemented { .. }
        ));
        assert!(matches!(
            r(Method::PUT, "h", "/bkt?lifecycle"),
            Endpoint::NotImplemented { .. }
        ));
    }

    #[test]
    fn access_subresources() {
        let b = || "bkt".to_string();
        let cases = [
            (
                Method::PUT,
                "/bkt?policy",
                Endpoint::PutBucketPolicy { bucket: b() },
            ),
            (
                Method::GET,
                "/bkt?policy",
                Endpoint::GetBucketPolicy { bucket: b() },
            ),
            (
                Method::DELETE,
                "/bkt?policy",
                Endpoint::DeleteBucketPolicy { bucket: b() },
            ),
            (
                Method::GET,
                "/bkt?policyStatus",
                Endpoint::GetBucketPolicyStatus { bucket: b() },
            ),
            (
                Method::PUT,
                "/bkt?publicAccessBlock",
                Endpoint::PutPublicAccessBlock { bucket: b() },
            ),
            (
                Method::GET,
                "/bkt?publicAccessBlock",
                Endpoint::GetPublicAccessBlock { bucket: b() },
            ),
            (
                Method::DELETE,
                "/bkt?publicAccessBlock",
                Endpoint::DeletePublicAccessBlock { bucket: b() },
            ),
        ];
        for (m, pq, want) in cases {
            assert_eq!(r(m.clone(), "h", pq), want, "{m} {pq}");
        }
        let k = || "k".to_string();
        for (m, pq, want) in [
            (
                Method::GET,
                "/bkt?acl",
                Endpoint::GetBucketAcl { bucket: b() },
            ),
            (
                Method::PUT,
                "/bkt?acl",
                Endpoint::PutBucketAcl { bucket: b() },
            ),
            (
                Method::GET,
                "/bkt/k?acl",
                Endpoint::GetObjectAcl {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::PUT,
                "/bkt/k?acl",
                Endpoint::PutObjectAcl {
                    bucket: b(),
                    key: k(),
                },
            ),
            (
                Method::DELETE,
                "/bkt?ownershipControls",
                Endpoint::DeleteBucketOwnershipControls { bucket: b() },
            ),
        ] {
            assert_eq!(r(m.clone(), "h", pq), want, "{m} {pq}");
        }
        let q = Query::parse(Some("policy"));
        let err = route(&Method::POST, Some(b()), None, &q, false).unwrap_err();
        assert!(matches!(err, ApiError::MethodNotAllowed));
    }

    #[test]
    fn actions() {
        let k = || "k".to_string();
        let b = || "bkt".to_string();
        let get = Endpoint::GetObject {
            bucket: b(),
            key: k(),
        };
        assert_eq!(get.action(false), Some("s3:GetObject"));
        assert_eq!(get.action(true), Some("s3:GetObjectVersion"));
        let head = Endpoint::HeadBucket { bucket: b() };
        assert_eq!(head.action(false), Some("s3:ListBucket"));
        let abort = Endpoint::AbortMultipartUpload {
            bucket: b(),
            key: k(),
        };
        assert_eq!(abort.action(false), Some("s3:AbortMultipartUpload"));
        let versions = Endpoint::ListObjectVersions { bucket: b() };
        assert_eq!(versions.action(false), Some("s3:ListBucketVersions"));
        assert_eq!(Endpoint::DeleteObjects { bucket: b() }.action(false), None);
        // Every action named is a real S3 action.
        for e in [get, head, abort, versions, Endpoint::ListBuckets] {
            let a = e.action(false).unwrap();
            assert!(crate::access::actions::is_valid_action_pattern(a), "{a}");
        }
    }
}
