//! Request context, body plumbing and response helpers shared by the operation handlers.
//!
//! One module per operation family ([`bucket`], [`object`], [`list`], [`tagging`]), each a set of
//! `handle_<op>` functions called from the single dispatch `match` in [`dispatch`].

pub mod acl;
pub mod bucket;
pub mod cors;
pub mod list;
pub mod lock;
pub mod multipart;
pub mod object;
pub mod policy;
pub mod post_object;
pub mod tagging;
pub mod versioning;
pub mod website;

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, StreamBody, combinators::UnsyncBoxBody};
use hyper::body::{Frame, Incoming};
use strata_storage::{BodyStream, BoxError, Engine};

use crate::access::{AccessCache, RequestEnv};
use crate::auth::{Identity, Payload, Trailers, verified_body};
use crate::credentials::UserStore;
use crate::error::{ApiError, ApiResult};
use crate::router::{Endpoint, Query};

/// Everything a handler may use that outlives one request.
pub struct Ctx {
    /// The storage engine.
    pub engine: Arc<Engine>,
    /// Access keys and secrets: root and the stored users.
    pub creds: Arc<UserStore>,
    /// This region's name.
    pub region: String,
    /// Domains under which `<bucket>.<domain>` hosts mean virtual-hosted-style requests.
    pub vhost_domains: Vec<String>,
    /// Domains under which `<bucket>.<domain>` hosts name a bucket on the website endpoint.
    pub website_domains: Vec<String>,
    /// How long a client may stall while sending a body.
    pub client_timeout: Duration,
    /// Per-bucket access state (owner, policy, Block Public Access) for access decisions.
    pub access: AccessCache,
}

impl std::fmt::Debug for Ctx {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ctx").field("region", &self.region).finish()
    }
}

/// The response body type: a stream of byte frames.
pub type RespBody = UnsyncBoxBody<Bytes, BoxError>;
/// A response.
pub type Resp = Response<RespBody>;

/// One authenticated request, ready for its handler.
pub struct Req {
    /// Request head.
    pub parts: http::request::Parts,
    /// Unread body.
    pub body: Option<Incoming>,
    /// Query parameters.
    pub query: Query,
    /// Who is calling (None: anonymous, allowed here by a bucket policy).
    pub identity: Option<Identity>,
    /// What policy conditions look at (source address, TLS, Referer, ...).
    pub env: RequestEnv,
    /// How the body is verified.
    pub payload: Payload,
    /// x-amz-decoded-content-length, for aws-chunked bodies.
    pub decoded_content_length: Option<u64>,
    /// Trailers of an aws-chunked body, available once it has been read.
    pub trailers: Trailers,
}

impl Req {
    /// A request header as a string.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.parts.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The canonical id that owns what this request creates: the caller's access key, or `anonymous`.
    pub fn owner_id(&self) -> &str {
        self.identity
            .as_ref()
            .map_or("anonymous", |i| i.access_key.as_str())
    }

    /// The headers.
    pub fn headers(&self) -> &HeaderMap {
        &self.parts.headers
    }

    /// The length of the payload the client declared (decoded length for aws-chunked bodies).
    pub fn content_length(&self) -> ApiResult<Option<u64>> {
        if let Some(n) = self.decoded_content_length {
            return Ok(Some(n));
        }
        match self.header("content-length") {
            None => Ok(None),
            Some(v) => v
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| ApiError::InvalidArgument("Invalid Content-Length".into())),
        }
    }

    /// The verified body as a storage stream (payload bytes only; errors carry an [`ApiError`]).
    pub fn body_stream(&mut self, timeout: Duration) -> BodyStream {
        let raw = raw_stream(self.body.take(), timeout);
        let verified = verified_body(raw, self.payload.clone(), self.trailers.clone());
        Box::pin(verified.map(|r| r.map_err(|e| Box::new(e) as BoxError)))
    }

    /// Reads a small body (an XML document) whole, checking Content-MD5 when given; more than `limit`
    /// bytes is refused.
    pub async fn read_small_body(&mut self, timeout: Duration, limit: usize) -> ApiResult<Bytes> {
        let expected_md5 = object::content_md5(self)?;
        let mut stream = verified_body(
            raw_stream(self.body.take(), timeout),
            self.payload.clone(),
            self.trailers.clone(),
        );
        let mut out = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if out.len() + chunk.len() > limit {
                return Err(ApiError::EntityTooLarge);
            }
            out.extend_from_slice(&chunk);
        }
        if let Some(md5) = expected_md5
            && md5 != <[u8; 16]>::from(<md5::Md5 as md5::Digest>::digest(&out))
        {
            return Err(ApiError::BadDigest);
        }
        Ok(out.freeze())
    }
}

/// The raw body as frames of data, with an idle timeout between frames.
pub(crate) fn raw_stream(
    body: Option<Incoming>,
    timeout: Duration,
) -> impl Stream<Item = ApiResult<Bytes>> + Send + Unpin + 'static {
    Box::pin(futures_util::stream::unfold(
        body,
        move |state| async move {
            let mut body = state?;
            loop {
                match tokio::time::timeout(timeout, body.frame()).await {
                    Err(_) => return Some((Err(ApiError::RequestTimeout), None)),
                    Ok(None) => return None,
                    Ok(Some(Err(e))) => {
                        tracing::debug!(error = %e, "client body failed");
                        return Some((Err(ApiError::IncompleteBody), None));
                    }
                    Ok(Some(Ok(frame))) => match frame.into_data() {
                        Ok(data) if data.is_empty() => continue,
                        Ok(data) => return Some((Ok(data), Some(body))),
                        Err(_) => continue, // HTTP trailers: S3 uses aws-chunked trailers instead
                    },
                }
            }
        },
    ))
}

/// A whole in-memory body.
pub fn full_body(data: impl Into<Bytes>) -> RespBody {
    Full::new(data.into())
        .map_err(|e| match e {})
        .boxed_unsync()
}

/// A response with an empty body.
pub fn empty(status: StatusCode) -> Resp {
    let mut r = Response::new(
        Full::new(Bytes::new())
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r
}

/// A response carrying an XML document.
pub fn xml(status: StatusCode, doc: String) -> Resp {
    let mut r = Response::new(
        Full::new(Bytes::from(doc))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml"),
    );
    r
}

/// A response streaming `body`.
pub fn streaming(status: StatusCode, body: BodyStream) -> Resp {
    let frames = body.map(|r| r.map(Frame::data));
    let mut r = Response::new(BodyExt::boxed_unsync(StreamBody::new(frames)));
    *r.status_mut() = status;
    r
}

/// Writes `<tag><ID>id</ID><DisplayName>name</DisplayName></tag>` for an owner id (the access key of the user
/// who owns the bucket or object, or who started the upload), with the display name from the user store.
pub fn owner_xml(ctx: &Ctx, w: &mut crate::xml::XmlWriter, tag: &str, id: &str) {
    w.open(tag)
        .elem("ID", id)
        .elem("DisplayName", &ctx.creds.display_name(id))
        .close(tag);
}

/// Sets a header from a string, skipping values that are not valid header text.
pub fn set_header(resp: &mut Resp, name: &str, value: &str) {
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::from_bytes(name.as_bytes()),
        HeaderValue::from_str(value),
    ) {
        resp.headers_mut().insert(n, v);
    }
}

/// Calls the handler for `endpoint`.
pub async fn dispatch(ctx: &Ctx, endpoint: Endpoint, req: Req) -> ApiResult<Resp> {
    use Endpoint::*;
    match endpoint {
        ListBuckets => bucket::handle_list_buckets(ctx, &req).await,
        CreateBucket { bucket } => bucket::handle_create_bucket(ctx, req, &bucket).await,
        HeadBucket { bucket } => bucket::handle_head_bucket(ctx, &bucket).await,
        DeleteBucket { bucket } => bucket::handle_delete_bucket(ctx, &bucket).await,
        GetBucketLocation { bucket } => bucket::handle_get_bucket_location(ctx, &bucket).await,
        GetBucketVersioning { bucket } => bucket::handle_get_bucket_versioning(ctx, &bucket).await,
        ListObjects { bucket } => list::handle_list_objects(ctx, &req, &bucket, false).await,
        ListObjectsV2 { bucket } => list::handle_list_objects(ctx, &req, &bucket, true).await,
        DeleteObjects { bucket } => object::handle_delete_objects(ctx, req, &bucket).await,
        PostObject { bucket } => post_object::handle_post_object(ctx, req, &bucket).await,
        PutObject { bucket, key } => object::handle_put_object(ctx, req, &bucket, &key).await,
        CopyObject { bucket, key } => object::handle_copy_object(ctx, req, &bucket, &key).await,
        GetObject { bucket, key } => {
            object::handle_get_object(ctx, &req, &bucket, &key, false).await
        }
        HeadObject { bucket, key } => {
            object::handle_get_object(ctx, &req, &bucket, &key, true).await
        }
        DeleteObject { bucket, key } => {
            object::handle_delete_object(ctx, &req, &bucket, &key).await
        }
        PutObjectTagging { bucket, key } => {
            tagging::handle_put_object_tagging(ctx, req, &bucket, &key).await
        }
        GetObjectTagging { bucket, key } => {
            tagging::handle_get_object_tagging(ctx, &req, &bucket, &key).await
        }
        DeleteObjectTagging { bucket, key } => {
            tagging::handle_delete_object_tagging(ctx, &req, &bucket, &key).await
        }
        ListMultipartUploads { bucket } => {
            multipart::handle_list_multipart_uploads(ctx, &req, &bucket).await
        }
        CreateMultipartUpload { bucket, key } => {
            multipart::handle_create_multipart_upload(ctx, &req, &bucket, &key).await
        }
        UploadPart { bucket, key } => multipart::handle_upload_part(ctx, req, &bucket, &key).await,
        UploadPartCopy { bucket, key } => {
            multipart::handle_upload_part_copy(ctx, &req, &bucket, &key).await
        }
        CompleteMultipartUpload { bucket, key } => {
            multipart::handle_complete_multipart_upload(ctx, req, &bucket, &key).await
        }
        AbortMultipartUpload { bucket, key } => {
            multipart::handle_abort_multipart_upload(ctx, &req, &bucket, &key).await
        }
        ListParts { bucket, key } => multipart::handle_list_parts(ctx, &req, &bucket, &key).await,
        GetObjectAttributes { bucket, key } => {
            multipart::handle_get_object_attributes(ctx, &req, &bucket, &key).await
        }
        PutBucketVersioning { bucket } => {
            versioning::handle_put_bucket_versioning(ctx, req, &bucket).await
        }
        ListObjectVersions { bucket } => {
            versioning::handle_list_object_versions(ctx, &req, &bucket).await
        }
        PutObjectLockConfiguration { bucket } => {
            lock::handle_put_object_lock_configuration(ctx, req, &bucket).await
        }
        GetObjectLockConfiguration { bucket } => {
            lock::handle_get_object_lock_configuration(ctx, &bucket).await
        }
        PutObjectRetention { bucket, key } => {
            lock::handle_put_object_retention(ctx, req, &bucket, &key).await
        }
        GetObjectRetention { bucket, key } => {
            lock::handle_get_object_retention(ctx, &req, &bucket, &key).await
        }
        PutObjectLegalHold { bucket, key } => {
            lock::handle_put_object_legal_hold(ctx, req, &bucket, &key).await
        }
        GetObjectLegalHold { bucket, key } => {
            lock::handle_get_object_legal_hold(ctx, &req, &bucket, &key).await
        }
        PutBucketWebsite { bucket } => website::handle_put_bucket_website(ctx, req, &bucket).await,
        GetBucketWebsite { bucket } => website::handle_get_bucket_website(ctx, &bucket).await,
        DeleteBucketWebsite { bucket } => website::handle_delete_bucket_website(ctx, &bucket).await,
        PutBucketCors { bucket } => cors::handle_put_bucket_cors(ctx, req, &bucket).await,
        GetBucketCors { bucket } => cors::handle_get_bucket_cors(ctx, &bucket).await,
        DeleteBucketCors { bucket } => cors::handle_delete_bucket_cors(ctx, &bucket).await,
        PutBucketPolicy { bucket } => policy::handle_put_bucket_policy(ctx, req, &bucket).await,
        GetBucketPolicy { bucket } => policy::handle_get_bucket_policy(ctx, &bucket).await,
        DeleteBucketPolicy { bucket } => policy::handle_delete_bucket_policy(ctx, &bucket).await,
        GetBucketPolicyStatus { bucket } => {
            policy::handle_get_bucket_policy_status(ctx, &bucket).await
        }
        PutPublicAccessBlock { bucket } => {
            policy::handle_put_public_access_block(ctx, req, &bucket).await
        }
        GetPublicAccessBlock { bucket } => {
            policy::handle_get_public_access_block(ctx, &bucket).await
        }
        DeletePublicAccessBlock { bucket } => {
            policy::handle_delete_public_access_block(ctx, &bucket).await
        }
        PutBucketOwnershipControls { bucket } => {
            acl::handle_put_bucket_ownership_controls(ctx, req, &bucket).await
        }
        GetBucketOwnershipControls { bucket } => {
            acl::handle_get_bucket_ownership_controls(ctx, &bucket).await
        }
        DeleteBucketOwnershipControls { bucket } => {
            acl::handle_delete_bucket_ownership_controls(ctx, &bucket).await
        }
        GetBucketAcl { bucket } => acl::handle_get_bucket_acl(ctx, &bucket).await,
        PutBucketAcl { bucket } => acl::handle_put_bucket_acl(ctx, req, &bucket).await,
        GetObjectAcl { bucket, key } => acl::handle_get_object_acl(ctx, &req, &bucket, &key).await,
        PutObjectAcl { bucket, key } => acl::handle_put_object_acl(ctx, req, &bucket, &key).await,
        NotImplemented { .. } => Err(ApiError::NotImplemented),
    }
}
