//! Bucket CORS configuration: PutBucketCors, GetBucketCors, DeleteBucketCors. The rules are validated by
//! [`crate::cors`] and stored as a bucket configuration document; preflights and response headers read them.

use http::StatusCode;

use super::{Ctx, Req, Resp, empty, xml};
use crate::access::kinds;
use crate::cors::CorsConfig;
use crate::error::{ApiError, ApiResult};

/// Largest CORS configuration accepted, as AWS (64 KB).
const MAX_BODY: usize = 64 * 1024;

/// PUT /bucket?cors
pub async fn handle_put_bucket_cors(ctx: &Ctx, mut req: Req, bucket: &str) -> ApiResult<Resp> {
    ctx.engine.bucket(bucket).await?;
    let body = req.read_small_body(ctx.client_timeout, MAX_BODY).await?;
    let cfg = CorsConfig::from_xml(&body)?;
    ctx.engine
        .set_bucket_config(bucket, kinds::CORS, Some(cfg.to_xml().into_bytes()))
        .await?;
    Ok(empty(StatusCode::OK))
}

/// GET /bucket?cors
pub async fn handle_get_bucket_cors(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    let cfg = crate::cors::load(ctx, bucket)
        .await?
        .ok_or(ApiError::NoSuchCorsConfiguration)?;
    Ok(xml(StatusCode::OK, cfg.to_xml()))
}

/// DELETE /bucket?cors
pub async fn handle_delete_bucket_cors(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    ctx.engine.bucket(bucket).await?;
    ctx.engine
        .set_bucket_config(bucket, kinds::CORS, None)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
