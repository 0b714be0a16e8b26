//! Bucket versioning: PutBucketVersioning, ListObjectVersions (GetBucketVersioning lives with the bucket
//! operations).

use http::StatusCode;
use strata_storage::{ObjectRecord, VersionQuery, Versioning};

use super::{Ctx, Req, Resp, empty, xml};
use crate::conditional::iso8601;
use crate::error::{ApiError, ApiResult};
use crate::xml::{VersioningConfiguration, XmlWriter, parse};

/// PUT /bucket?versioning
pub async fn handle_put_bucket_versioning(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
) -> ApiResult<Resp> {
    let body = req.read_small_body(ctx.client_timeout, 64 * 1024).await?;
    let doc: VersioningConfiguration = parse(&body)?;
    if doc.mfa_delete.as_deref().is_some_and(|m| m != "Disabled") {
        return Err(ApiError::NotImplemented);
    }
    let state = match doc.status.as_deref() {
        Some("Enabled") => Versioning::Enabled,
        Some("Suspended") => Versioning::Suspended,
        _ => return Err(ApiError::MalformedXml),
    };
    ctx.engine.set_versioning(bucket, state).await?;
    Ok(empty(StatusCode::OK))
}

fn version_entry(
    ctx: &Ctx,
    w: &mut XmlWriter,
    key: &str,
    r: &ObjectRecord,
    latest: bool,
    enc: &dyn Fn(&str) -> String,
) {
    let modified = chrono::DateTime::from_timestamp_millis(r.last_modified_ms).unwrap_or_default();
    let tag = if r.is_delete_marker() {
        "DeleteMarker"
    } else {
        "Version"
    };
    w.open(tag)
        .elem("Key", &enc(key))
        .elem("VersionId", r.version_id_or_null())
        .elem("IsLatest", if latest { "true" } else { "false" })
        .elem("LastModified", &iso8601(modified));
    if !r.is_delete_marker() {
        w.elem("ETag", &format!("\"{}\"", r.etag))
            .elem("Size", &r.size.to_string());
        if let Some(c) = &r.checksum {
            w.elem("ChecksumAlgorithm", c.algorithm.name());
        }
        w.elem("StorageClass", &r.storage_class);
    }
    super::owner_xml(ctx, w, "Owner", &r.owner);
    w.close(tag);
}

/// GET /bucket?versions
pub async fn handle_list_object_versions(ctx: &Ctx, req: &Req, bucket: &str) -> ApiResult<Resp> {
    let q = &req.query;
    let url = super::list::url_encoding(q)?;
    let max_keys = super::list::page_size(q, "max-keys")?;
    let key_marker = q
        .get("key-marker")
        .filter(|k| !k.is_empty())
        .map(str::to_owned);
    let version_marker = q.get("version-id-marker").filter(|v| !v.is_empty());
    if version_marker.is_some() && key_marker.is_none() {
        return Err(ApiError::InvalidArgument(
            "A version-id marker cannot be specified without a key marker.".into(),
        ));
    }
    let query = VersionQuery {
        prefix: q.get("prefix").unwrap_or_default().to_owned(),
        delimiter: q
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        key_marker: key_marker.clone(),
        version_marker: None,
        max_keys,
    };
    let page = ctx
        .engine
        .list_versions(bucket, query.clone(), version_marker)
        .await?;
    let enc = |s: &str| {
        if url {
            super::list::url_encode(s)
        } else {
            s.to_owned()
        }
    };
    let mut w = XmlWriter::new("ListVersionsResult");
    w.elem("Name", bucket)
        .elem("Prefix", &enc(&query.prefix))
        .elem("KeyMarker", &enc(key_marker.as_deref().unwrap_or_default()))
        .elem("VersionIdMarker", version_marker.unwrap_or_default());
    if page.truncated
        && let Some((k, v)) = &page.next
    {
        w.elem("NextKeyMarker", &enc(k));
        if !v.is_empty() {
            w.elem("NextVersionIdMarker", v);
        }
    }
    w.elem("MaxKeys", &max_keys.to_string());
    if let Some(d) = &query.delimiter {
        w.elem("Delimiter", &enc(d));
    }
    if url {
        w.elem("EncodingType", "url");
    }
    w.elem("IsTruncated", if page.truncated { "true" } else { "false" });
    for (key, record, latest) in &page.versions {
        version_entry(ctx, &mut w, key, record, *latest, &enc);
    }
    for cp in &page.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc(cp))
            .close("CommonPrefixes");
    }
    Ok(xml(StatusCode::OK, w.finish("ListVersionsResult")))
}
