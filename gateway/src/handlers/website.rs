//! Bucket website configuration: PutBucketWebsite, GetBucketWebsite, DeleteBucketWebsite. The document is
//! validated by [`crate::website::config`] and stored as a bucket configuration document; the website endpoint
//! ([`crate::website`]) reads it.

use http::StatusCode;

use super::{Ctx, Req, Resp, empty, xml};
use crate::access::kinds;
use crate::error::{ApiError, ApiResult};
use crate::website::config::WebsiteConfig;

/// Largest website configuration accepted (50 routing rules fit easily).
const MAX_BODY: usize = 256 * 1024;

/// PUT /bucket?website
pub async fn handle_put_bucket_website(ctx: &Ctx, mut req: Req, bucket: &str) -> ApiResult<Resp> {
    ctx.engine.bucket(bucket).await?;
    let body = req.read_small_body(ctx.client_timeout, MAX_BODY).await?;
    let cfg = WebsiteConfig::from_xml(&body)?;
    ctx.engine
        .set_bucket_config(bucket, kinds::WEBSITE, Some(cfg.to_xml().into_bytes()))
        .await?;
    Ok(empty(StatusCode::OK))
}

/// GET /bucket?website
pub async fn handle_get_bucket_website(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    ctx.engine.bucket(bucket).await?;
    let doc = ctx
        .engine
        .bucket_config(bucket, kinds::WEBSITE)
        .await?
        .ok_or(ApiError::NoSuchWebsiteConfiguration)?;
    let cfg = WebsiteConfig::from_stored(&doc)?;
    Ok(xml(StatusCode::OK, cfg.to_xml()))
}

/// DELETE /bucket?website
pub async fn handle_delete_bucket_website(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    ctx.engine.bucket(bucket).await?;
    ctx.engine
        .set_bucket_config(bucket, kinds::WEBSITE, None)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}
