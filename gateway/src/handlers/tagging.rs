//! Object tagging: PutObjectTagging, GetObjectTagging, DeleteObjectTagging, and the tag rules shared with
//! `x-amz-tagging` on PUT.

use http::StatusCode;

use super::object::{current_or_version, validate_key, version_header};
use super::{Ctx, Req, Resp, empty, xml};
use crate::error::{ApiError, ApiResult};
use crate::xml::{Tagging, XmlWriter, parse};

/// Most tags on one object, as AWS.
const MAX_TAGS: usize = 10;

/// Checks AWS's tag rules: at most 10, keys 1..=128 and values ..=256 characters, keys unique.
pub(crate) fn validate_tags(tags: &[(String, String)]) -> ApiResult<()> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::InvalidTag(
            "Object tags cannot be greater than 10".into(),
        ));
    }
    for (i, (k, v)) in tags.iter().enumerate() {
        if k.is_empty() || k.chars().count() > 128 {
            return Err(ApiError::InvalidTag(
                "The TagKey you have provided is invalid".into(),
            ));
        }
        if v.chars().count() > 256 {
            return Err(ApiError::InvalidTag(
                "The TagValue you have provided is invalid".into(),
            ));
        }
        if tags[..i].iter().any(|(other, _)| other == k) {
            return Err(ApiError::InvalidTag(
                "Cannot provide multiple Tags with the same key".into(),
            ));
        }
    }
    Ok(())
}

/// PUT /bucket/key?tagging
pub async fn handle_put_object_tagging(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let body = req.read_small_body(ctx.client_timeout, 64 * 1024).await?;
    let doc: Tagging = parse(&body)?;
    let tags: Vec<(String, String)> = doc
        .tag_set
        .tags
        .into_iter()
        .map(|t| (t.key, t.value))
        .collect();
    validate_tags(&tags)?;
    let version = req.query.get("versionId");
    let record = ctx
        .engine
        .update_object(bucket, key, version, move |r| r.tags = tags)
        .await?;
    let mut resp = empty(StatusCode::OK);
    version_header(&mut resp, &record, version.is_some());
    Ok(resp)
}

/// GET /bucket/key?tagging
pub async fn handle_get_object_tagging(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let version = req.query.get("versionId");
    let record = current_or_version(ctx, bucket, key, version).await?;
    let mut w = XmlWriter::new("Tagging");
    w.open("TagSet");
    for (k, v) in &record.tags {
        w.open("Tag").elem("Key", k).elem("Value", v).close("Tag");
    }
    w.close("TagSet");
    let mut resp = xml(StatusCode::OK, w.finish("Tagging"));
    version_header(&mut resp, &record, version.is_some());
    Ok(resp)
}

/// DELETE /bucket/key?tagging
pub async fn handle_delete_object_tagging(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let version = req.query.get("versionId");
    let record = ctx
        .engine
        .update_object(bucket, key, version, |r| r.tags.clear())
        .await?;
    let mut resp = empty(StatusCode::NO_CONTENT);
    version_header(&mut resp, &record, version.is_some());
    Ok(resp)
}
