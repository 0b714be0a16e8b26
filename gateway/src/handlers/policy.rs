//! Bucket policies and Block Public Access: Put/Get/DeleteBucketPolicy, GetBucketPolicyStatus,
//! Put/Get/DeletePublicAccessBlock. The documents are stored with the bucket; every change drops the bucket's
//! cached access state so the next request sees it.

use http::{HeaderValue, StatusCode};

use super::{Ctx, Req, Resp, empty, xml};
use crate::access::policy::MAX_BUCKET_POLICY_BYTES;
use crate::access::{Policy, PublicAccessBlock, Scope, kinds};
use crate::error::{ApiError, ApiResult};
use crate::xml::XmlWriter;

/// PUT /bucket?policy
pub async fn handle_put_bucket_policy(ctx: &Ctx, mut req: Req, bucket: &str) -> ApiResult<Resp> {
    let access = ctx.access.existing(&ctx.engine, bucket).await?;
    let body = req
        .read_small_body(ctx.client_timeout, 4 * MAX_BUCKET_POLICY_BYTES)
        .await?;
    if body.len() > MAX_BUCKET_POLICY_BYTES {
        return Err(ApiError::MalformedPolicy(
            "Policy exceeds the maximum allowed document size.".into(),
        ));
    }
    let policy = Policy::parse(&body, Scope::Bucket(bucket))?;
    if access.block.block_public_policy && policy.is_public() {
        tracing::debug!(bucket, "public policy refused by BlockPublicPolicy");
        return Err(ApiError::AccessDenied);
    }
    ctx.engine
        .set_bucket_config(bucket, kinds::POLICY, Some(body.to_vec()))
        .await?;
    ctx.access.invalidate(bucket);
    Ok(empty(StatusCode::NO_CONTENT))
}

/// GET /bucket?policy: the document as it was put.
pub async fn handle_get_bucket_policy(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    ctx.access.existing(&ctx.engine, bucket).await?;
    let doc = ctx
        .engine
        .bucket_config(bucket, kinds::POLICY)
        .await?
        .ok_or(ApiError::NoSuchBucketPolicy)?;
    let mut resp = Resp::new(super::full_body(doc));
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

/// DELETE /bucket?policy
pub async fn handle_delete_bucket_policy(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    ctx.access.existing(&ctx.engine, bucket).await?;
    ctx.engine
        .set_bucket_config(bucket, kinds::POLICY, None)
        .await?;
    ctx.access.invalidate(bucket);
    Ok(empty(StatusCode::NO_CONTENT))
}

/// GET /bucket?policyStatus
pub async fn handle_get_bucket_policy_status(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    let access = ctx.access.existing(&ctx.engine, bucket).await?;
    if access.policy.is_none() {
        return Err(ApiError::NoSuchBucketPolicy);
    }
    let mut w = XmlWriter::new("PolicyStatus");
    w.elem(
        "IsPublic",
        if access.policy_public {
            "true"
        } else {
            "false"
        },
    );
    Ok(xml(StatusCode::OK, w.finish("PolicyStatus")))
}

/// PUT /bucket?publicAccessBlock
pub async fn handle_put_public_access_block(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
) -> ApiResult<Resp> {
    ctx.access.existing(&ctx.engine, bucket).await?;
    let body = req.read_small_body(ctx.client_timeout, 64 * 1024).await?;
    let block = PublicAccessBlock::parse(&body)?;
    ctx.engine
        .set_bucket_config(
            bucket,
            kinds::PUBLIC_ACCESS_BLOCK,
            Some(block.to_xml().into_bytes()),
        )
        .await?;
    ctx.access.invalidate(bucket);
    Ok(empty(StatusCode::OK))
}

/// GET /bucket?publicAccessBlock: all four flags on when none was ever put; 404 after a delete.
pub async fn handle_get_public_access_block(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    ctx.access.existing(&ctx.engine, bucket).await?;
    let doc = ctx
        .engine
        .bucket_config(bucket, kinds::PUBLIC_ACCESS_BLOCK)
        .await?;
    match PublicAccessBlock::from_stored(doc.as_deref()) {
        (block, true) => Ok(xml(StatusCode::OK, block.to_xml())),
        (_, false) => Err(ApiError::NoSuchPublicAccessBlockConfiguration),
    }
}

/// DELETE /bucket?publicAccessBlock: nothing is blocked afterwards.
pub async fn handle_delete_public_access_block(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    ctx.access.existing(&ctx.engine, bucket).await?;
    ctx.engine
        .set_bucket_config(bucket, kinds::PUBLIC_ACCESS_BLOCK, Some(Vec::new()))
        .await?;
    ctx.access.invalidate(bucket);
    Ok(empty(StatusCode::NO_CONTENT))
}
