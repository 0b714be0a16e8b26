//! Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation,
//! GetBucketVersioning.

use http::StatusCode;
use strata_storage::names::is_valid_bucket_name;

use super::{Ctx, Req, Resp, empty, set_header, xml};
use crate::conditional::iso8601;
use crate::error::{ApiError, ApiResult};
use crate::xml::{CreateBucketConfiguration, XmlWriter, parse};

fn check_name(bucket: &str) -> ApiResult<()> {
    if is_valid_bucket_name(bucket) {
        Ok(())
    } else {
        Err(ApiError::InvalidBucketName)
    }
}

/// GET / : the caller's buckets.
pub async fn handle_list_buckets(ctx: &Ctx, req: &Req) -> ApiResult<Resp> {
    let caller = req.identity.as_ref().ok_or(ApiError::AccessDenied)?;
    let buckets = ctx.engine.list_buckets().await?;
    let mut w = XmlWriter::new("ListAllMyBucketsResult");
    super::owner_xml(ctx, &mut w, "Owner", &caller.access_key);
    w.open("Buckets");
    for b in buckets
        .iter()
        .filter(|b| caller.is_root || b.record.owner == caller.access_key)
    {
        let created =
            chrono::DateTime::from_timestamp_millis(b.record.created_ms).unwrap_or_default();
        w.open("Bucket")
            .elem("Name", &b.name)
            .elem("CreationDate", &iso8601(created))
            .close("Bucket");
    }
    w.close("Buckets");
    Ok(xml(StatusCode::OK, w.finish("ListAllMyBucketsResult")))
}

/// PUT /bucket
pub async fn handle_create_bucket(ctx: &Ctx, mut req: Req, bucket: &str) -> ApiResult<Resp> {
    check_name(bucket)?;
    let lock_enabled = match req
        .header("x-amz-bucket-object-lock-enabled")
        .map(str::trim)
    {
        None => false,
        Some(v) if v.eq_ignore_ascii_case("true") => true,
        Some(v) if v.eq_ignore_ascii_case("false") => false,
        Some(_) => {
            return Err(ApiError::InvalidArgument(
                "x-amz-bucket-object-lock-enabled must be true or false".into(),
            ));
        }
    };
    let body = req.read_small_body(ctx.client_timeout, 64 * 1024).await?;
    if !body.iter().all(u8::is_ascii_whitespace) {
        let cfg: CreateBucketConfiguration = parse(&body)?;
        if let Some(loc) = cfg.location_constraint.filter(|l| !l.is_empty())
            && loc != ctx.region
        {
            return Err(ApiError::IllegalLocationConstraint(loc));
        }
    }
    let owner = req.identity.as_ref().ok_or(ApiError::AccessDenied)?;
    let (ownership, acl) = super::acl::bucket_settings_for_create(&req)?;
    ctx.engine
        .create_bucket(bucket, &owner.access_key, &ctx.region, lock_enabled)
        .await?;
    ctx.access.invalidate(bucket);
    super::acl::apply_bucket_settings(ctx, bucket, ownership, acl).await?;
    let mut resp = empty(StatusCode::OK);
    set_header(&mut resp, "location", &format!("/{bucket}"));
    Ok(resp)
}

/// HEAD /bucket
pub async fn handle_head_bucket(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    let record = ctx.engine.bucket(bucket).await?;
    let mut resp = empty(StatusCode::OK);
    set_header(&mut resp, "x-amz-bucket-region", &record.region);
    Ok(resp)
}

/// DELETE /bucket
pub async fn handle_delete_bucket(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    ctx.engine.delete_bucket(bucket).await?;
    ctx.access.invalidate(bucket);
    Ok(empty(StatusCode::NO_CONTENT))
}

/// GET /bucket?location
pub async fn handle_get_bucket_location(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    let record = ctx.engine.bucket(bucket).await?;
    // us-east-1 is reported as an empty constraint, as AWS does.
    let loc = if record.region == "us-east-1" {
        ""
    } else {
        record.region.as_str()
    };
    let doc = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<LocationConstraint xmlns=\"{}\">{}</LocationConstraint>",
        crate::xml::S3_NS,
        crate::error::xml_escape(loc)
    );
    Ok(xml(StatusCode::OK, doc))
}

/// GET /bucket?versioning: no Status for a bucket that was never versioned, as S3.
pub async fn handle_get_bucket_versioning(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    let record = ctx.engine.bucket(bucket).await?;
    let mut w = XmlWriter::new("VersioningConfiguration");
    match record.versioning {
        strata_storage::Versioning::Unversioned => {}
        strata_storage::Versioning::Enabled => {
            w.elem("Status", "Enabled");
        }
        strata_storage::Versioning::Suspended => {
            w.elem("Status", "Suspended");
        }
    }
    Ok(xml(StatusCode::OK, w.finish("VersioningConfiguration")))
}
