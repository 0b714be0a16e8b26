//! Ownership controls and canned ACLs: Put/Get/DeleteBucketOwnershipControls, Get/PutBucketAcl,
//! Get/PutObjectAcl, and the `x-amz-acl` checks shared by CreateBucket, PutObject, CopyObject and
//! CreateMultipartUpload. Only canned ACLs are supported; an AccessControlPolicy body or `x-amz-grant-*`
//! headers are NotImplemented.

use http::StatusCode;

use super::object::{current_or_version, validate_key, version_header};
use super::{Ctx, Req, Resp, empty, xml};
use crate::access::acl::{CannedAcl, OBJECT_ACL_HEADER, ObjectOwnership, parse_ownership_controls};
use crate::access::{PublicAccessBlock, RequestEnv, kinds};
use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};

const GRANT_HEADERS: &[&str] = &[
    "x-amz-grant-read",
    "x-amz-grant-write",
    "x-amz-grant-read-acp",
    "x-amz-grant-write-acp",
    "x-amz-grant-full-control",
];

/// The `x-amz-acl` of a request (None when absent); explicit grants are not supported.
fn requested(req: &Req) -> ApiResult<Option<CannedAcl>> {
    if GRANT_HEADERS.iter().any(|h| req.headers().contains_key(*h)) {
        return Err(ApiError::NotImplemented);
    }
    req.header("x-amz-acl").map(CannedAcl::parse).transpose()
}

/// Whether a bucket with these settings accepts `acl`: BucketOwnerEnforced refuses all but private and
/// bucket-owner-full-control (400), BlockPublicAcls refuses public ones (403).
fn check_allowed(
    acl: CannedAcl,
    ownership: ObjectOwnership,
    block: PublicAccessBlock,
) -> ApiResult<()> {
    if !ownership.acls_enabled() && !acl.allowed_when_enforced() {
        return Err(ApiError::AccessControlListNotSupported);
    }
    if block.block_public_acls && acl.is_public() {
        tracing::debug!(acl = acl.name(), "public ACL refused by BlockPublicAcls");
        return Err(ApiError::AccessDenied);
    }
    Ok(())
}

/// The object ACL a write of `bucket/key` asks for (None: no `x-amz-acl`), checked against the bucket's
/// settings (a missing bucket is left to the write to report). Setting an ACL needs s3:PutObjectAcl besides the
/// write's own permission, as AWS.
pub(crate) async fn object_acl_for_write(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Option<CannedAcl>> {
    let Some(acl) = requested(req)? else {
        return Ok(None);
    };
    authorize_acl(ctx, req.identity.as_ref(), &req.env, bucket, key).await?;
    check_for_bucket(ctx, bucket, acl).await?;
    Ok(Some(acl))
}

/// Whether the caller of a write may also set the new object's ACL (s3:PutObjectAcl); AccessDenied otherwise.
async fn authorize_acl(
    ctx: &Ctx,
    identity: Option<&Identity>,
    env: &RequestEnv,
    bucket: &str,
    key: &str,
) -> ApiResult<()> {
    let env = env.clone().with_version(None);
    crate::access::authorize(ctx, identity, "s3:PutObjectAcl", bucket, Some(key), &env).await
}

/// Checks an object ACL against the bucket's ownership and Block Public Access settings (a missing bucket is
/// left to the write to report).
pub(crate) async fn check_for_bucket(ctx: &Ctx, bucket: &str, acl: CannedAcl) -> ApiResult<()> {
    match ctx.access.bucket(&ctx.engine, bucket).await? {
        Some(access) => check_allowed(acl, access.ownership, access.block),
        None => Ok(()),
    }
}

/// Records `acl` in a new object's stored headers (private is the default and is not stored).
pub(crate) fn store_object_acl(headers: &mut Vec<(String, String)>, acl: Option<CannedAcl>) {
    headers.retain(|(n, _)| n != OBJECT_ACL_HEADER);
    if let Some(acl) = acl.filter(|a| *a != CannedAcl::Private) {
        headers.push((OBJECT_ACL_HEADER.to_owned(), acl.name().to_owned()));
    }
}

/// CreateBucket's `x-amz-object-ownership` and `x-amz-acl`, checked before the bucket exists.
pub(crate) fn bucket_settings_for_create(
    req: &Req,
) -> ApiResult<(Option<ObjectOwnership>, Option<CannedAcl>)> {
    let ownership = match req.header("x-amz-object-ownership") {
        None => None,
        Some(v) => Some(ObjectOwnership::parse(v).ok_or_else(|| {
            ApiError::InvalidArgument("Invalid x-amz-object-ownership header".into())
        })?),
    };
    let acl = requested(req)?;
    if let Some(a) = acl {
        let effective = ownership.unwrap_or(ObjectOwnership::BucketOwnerEnforced);
        if !effective.acls_enabled() && !a.allowed_when_enforced() {
            return Err(ApiError::InvalidBucketAclWithObjectOwnership);
        }
        // A new bucket blocks public access, so a public ACL cannot be set at creation.
        check_allowed(a, effective, PublicAccessBlock::ALL)?;
    }
    Ok((ownership, acl))
}

/// Stores what [`bucket_settings_for_create`] accepted, once the bucket exists.
pub(crate) async fn apply_bucket_settings(
    ctx: &Ctx,
    bucket: &str,
    ownership: Option<ObjectOwnership>,
    acl: Option<CannedAcl>,
) -> ApiResult<()> {
    if let Some(o) = ownership {
        let doc = o.name().as_bytes().to_vec();
        ctx.engine
            .set_bucket_config(bucket, kinds::OWNERSHIP, Some(doc))
            .await?;
    }
    if let Some(a) = acl.filter(|a| *a != CannedAcl::Private) {
        let doc = a.name().as_bytes().to_vec();
        ctx.engine
            .set_bucket_config(bucket, kinds::ACL, Some(doc))
            .await?;
    }
    ctx.access.invalidate(bucket);
    Ok(())
}

/// PUT /bucket?ownershipControls
pub async fn handle_put_bucket_ownership_controls(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
) -> ApiResult<Resp> {
    let access = ctx.access.existing(&ctx.engine, bucket).await?;
    let body = req.read_small_body(ctx.client_timeout, 64 * 1024).await?;
    let ownership = parse_ownership_controls(&body)?;
    if !ownership.acls_enabled() && !access.acl.allowed_when_enforced() {
        return Err(ApiError::InvalidBucketAclWithObjectOwnership);
    }
    let doc = ownership.name().as_bytes().to_vec();
    ctx.engine
        .set_bucket_config(bucket, kinds::OWNERSHIP, Some(doc))
        .await?;
    ctx.access.invalidate(bucket);
    Ok(empty(StatusCode::OK))
}

/// GET /bucket?ownershipControls: BucketOwnerEnforced when never set; 404 after a delete.
pub async fn handle_get_bucket_ownership_controls(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    ctx.access.existing(&ctx.engine, bucket).await?;
    let doc = ctx.engine.bucket_config(bucket, kinds::OWNERSHIP).await?;
    match ObjectOwnership::from_stored(doc.as_deref()) {
        (o, true) => Ok(xml(StatusCode::OK, o.to_xml())),
        (_, false) => Err(ApiError::OwnershipControlsNotFound),
    }
}

/// DELETE /bucket?ownershipControls: ACLs count afterwards (as for buckets older than ownership controls).
pub async fn handle_delete_bucket_ownership_controls(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    ctx.access.existing(&ctx.engine, bucket).await?;
    ctx.engine
        .set_bucket_config(bucket, kinds::OWNERSHIP, Some(Vec::new()))
        .await?;
    ctx.access.invalidate(bucket);
    Ok(empty(StatusCode::NO_CONTENT))
}

/// GET /bucket?acl
pub async fn handle_get_bucket_acl(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    let access = ctx.access.existing(&ctx.engine, bucket).await?;
    let name = ctx.creds.display_name(&access.owner);
    let doc = access.acl.to_xml((&access.owner, &name), None, true);
    Ok(xml(StatusCode::OK, doc))
}

/// The canned ACL of a PutBucketAcl / PutObjectAcl: the header; a body or explicit grants are not supported.
async fn acl_to_put(ctx: &Ctx, req: &mut Req) -> ApiResult<CannedAcl> {
    let acl = requested(req)?;
    let body = req.read_small_body(ctx.client_timeout, 64 * 1024).await?;
    match acl {
        Some(a) if body.iter().all(u8::is_ascii_whitespace) => Ok(a),
        Some(_) => Err(ApiError::InvalidRequest(
            "Specifying both Canned ACLs and Header Grants is not allowed".into(),
        )),
        None if body.iter().all(u8::is_ascii_whitespace) => Err(ApiError::MalformedXml),
        None => Err(ApiError::NotImplemented),
    }
}

/// PUT /bucket?acl (x-amz-acl)
pub async fn handle_put_bucket_acl(ctx: &Ctx, mut req: Req, bucket: &str) -> ApiResult<Resp> {
    let access = ctx.access.existing(&ctx.engine, bucket).await?;
    let acl = acl_to_put(ctx, &mut req).await?;
    check_allowed(acl, access.ownership, access.block)?;
    let doc = (acl != CannedAcl::Private).then(|| acl.name().as_bytes().to_vec());
    ctx.engine
        .set_bucket_config(bucket, kinds::ACL, doc)
        .await?;
    ctx.access.invalidate(bucket);
    Ok(empty(StatusCode::OK))
}

/// GET /bucket/key?acl: under BucketOwnerEnforced the bucket owner owns every object.
pub async fn handle_get_object_acl(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let access = ctx.access.existing(&ctx.engine, bucket).await?;
    let version = req.query.get("versionId");
    let record = current_or_version(ctx, bucket, key, version).await?;
    let owner = if access.ownership.acls_enabled() {
        record.owner.clone()
    } else {
        access.owner.clone()
    };
    let owner_name = ctx.creds.display_name(&owner);
    let bucket_owner_name = ctx.creds.display_name(&access.owner);
    let acl = CannedAcl::from_stored(record.header(OBJECT_ACL_HEADER));
    let doc = acl.to_xml(
        (&owner, &owner_name),
        Some((&access.owner, &bucket_owner_name)),
        false,
    );
    let mut resp = xml(StatusCode::OK, doc);
    version_header(&mut resp, &record, version.is_some());
    Ok(resp)
}

/// PUT /bucket/key?acl (x-amz-acl)
pub async fn handle_put_object_acl(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let access = ctx.access.existing(&ctx.engine, bucket).await?;
    let acl = acl_to_put(ctx, &mut req).await?;
    check_allowed(acl, access.ownership, access.block)?;
    let version = req.query.get("versionId");
    let record = ctx
        .engine
        .update_object(bucket, key, version, move |r| {
            store_object_acl(&mut r.headers, Some(acl));
        })
        .await?;
    let mut resp = empty(StatusCode::OK);
    version_header(&mut resp, &record, version.is_some());
    Ok(resp)
}

/// The object ACL of a browser upload's `acl` form field, checked like `x-amz-acl` on PutObject (for the user
/// who signed the form).
pub(crate) async fn form_acl_for_write(
    ctx: &Ctx,
    (identity, env): (Option<&Identity>, &RequestEnv),
    bucket: &str,
    key: &str,
    value: Option<&str>,
) -> ApiResult<Option<CannedAcl>> {
    let Some(acl) = value.map(CannedAcl::parse).transpose()? else {
        return Ok(None);
    };
    authorize_acl(ctx, identity, env, bucket, key).await?;
    check_for_bucket(ctx, bucket, acl).await?;
    Ok(Some(acl))
}
