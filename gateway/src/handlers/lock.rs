//! Object lock operations: Put/GetObjectLockConfiguration, Put/GetObjectRetention, Put/GetObjectLegalHold;
//! and the x-amz-object-lock-* request and response headers shared with PUT, copy and multipart.

use chrono::{DateTime, Utc};
use http::StatusCode;
use strata_storage::lock::{DefaultRetention, LockMode, Retention, VersionLock};
use strata_storage::meta::ObjectLockConfig;
use strata_storage::{ChecksumAlgorithm, ObjectRecord};

use super::object::{current_or_version, validate_key, version_header};
use super::{Ctx, Req, Resp, empty, set_header, xml};
use crate::conditional::iso8601;
use crate::error::{ApiError, ApiResult};
use crate::xml::{LegalHoldXml, ObjectLockConfiguration, RetentionXml, XmlWriter, parse};

fn parse_mode(s: &str) -> ApiResult<LockMode> {
    LockMode::from_name(s.trim())
        .ok_or_else(|| ApiError::InvalidArgument("Unknown wormMode directive.".into()))
}

/// A retain-until date: ISO 8601, in the future.
fn parse_until(s: &str, now: DateTime<Utc>) -> ApiResult<i64> {
    let t = DateTime::parse_from_rfc3339(s.trim()).map_err(|_| {
        ApiError::InvalidArgument("The retain until date is not a valid ISO 8601 date".into())
    })?;
    if t <= now {
        return Err(ApiError::InvalidArgument(
            "The retain until date must be in the future!".into(),
        ));
    }
    Ok(t.timestamp_millis())
}

/// The lock a write asks for with x-amz-object-lock-* headers; `None` when it names none.
pub(crate) fn requested_lock(req: &Req) -> ApiResult<Option<VersionLock>> {
    let mode = req.header("x-amz-object-lock-mode");
    let until = req.header("x-amz-object-lock-retain-until-date");
    let hold = req.header("x-amz-object-lock-legal-hold");
    if mode.is_none() && until.is_none() && hold.is_none() {
        return Ok(None);
    }
    let retention = match (mode, until) {
        (Some(m), Some(u)) => Some(Retention {
            mode: parse_mode(m)?,
            until_ms: parse_until(u, Utc::now())?,
        }),
        (None, None) => None,
        _ => {
            return Err(ApiError::InvalidArgument(
                "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied".into(),
            ));
        }
    };
    let legal_hold = match hold.map(str::trim) {
        None => None,
        Some("OFF") => Some(false),
        Some("ON") => Some(true),
        Some(_) => {
            return Err(ApiError::InvalidArgument(
                "Legal Hold must be either of 'ON' or 'OFF'".into(),
            ));
        }
    };
    // S3 wants an integrity check on every write that sets object lock parameters.
    let has_integrity = req.header("content-md5").is_some()
        || req.header("x-amz-trailer").is_some()
        || req.header("x-amz-sdk-checksum-algorithm").is_some()
        || ChecksumAlgorithm::ALL
            .iter()
            .any(|a| req.header(a.header()).is_some());
    if !has_integrity
        && req.query.get("uploads").is_none()
        && req.header("x-amz-copy-source").is_none()
    {
        return Err(ApiError::InvalidRequest(
            "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters".into(),
        ));
    }
    Ok(Some(VersionLock {
        retention,
        legal_hold,
    }))
}

/// Whether the caller asked to bypass GOVERNANCE retention and may do so (the root user; policies will grant
/// s3:BypassGovernanceRetention to others).
pub(crate) fn bypass_governance(req: &Req) -> bool {
    req.header("x-amz-bypass-governance-retention")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        && req.identity.as_ref().is_some_and(|i| i.is_root)
}

/// The x-amz-object-lock-* response headers of a version.
pub(crate) fn lock_headers(resp: &mut Resp, record: &ObjectRecord) {
    if let Some(r) = record.lock.retention {
        set_header(resp, "x-amz-object-lock-mode", r.mode.name());
        let until = DateTime::from_timestamp_millis(r.until_ms).unwrap_or_default();
        set_header(resp, "x-amz-object-lock-retain-until-date", &iso8601(until));
    }
    if record.lock.is_held() {
        set_header(resp, "x-amz-object-lock-legal-hold", "ON");
    }
}

/// Retention and legal hold exist only on buckets with object lock; elsewhere S3 answers InvalidRequest.
async fn require_lock(ctx: &Ctx, bucket: &str) -> ApiResult<()> {
    match ctx.engine.bucket(bucket).await?.object_lock {
        Some(_) => Ok(()),
        None => Err(ApiError::InvalidRequest(
            "Bucket is missing Object Lock Configuration".into(),
        )),
    }
}

/// PUT /bucket?object-lock
pub async fn handle_put_object_lock_configuration(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
) -> ApiResult<Resp> {
    let body = req.read_small_body(ctx.client_timeout, 64 * 1024).await?;
    let doc: ObjectLockConfiguration = parse(&body)?;
    if doc
        .object_lock_enabled
        .as_deref()
        .is_some_and(|e| e != "Enabled")
    {
        return Err(ApiError::MalformedXml);
    }
    let default_retention = match doc.rule {
        None => None,
        Some(rule) => {
            let d = rule.default_retention;
            // A bad mode inside an XML body is a schema error, as S3 answers it.
            let mode = d
                .mode
                .as_deref()
                .and_then(LockMode::from_name)
                .ok_or(ApiError::MalformedXml)?;
            let (n, in_years) = match (d.days, d.years) {
                (Some(days), None) => (days, false),
                (None, Some(years)) => (years, true),
                _ => return Err(ApiError::MalformedXml),
            };
            if n <= 0 {
                return Err(ApiError::InvalidArgument(
                    "Default retention period must be a positive integer value".into(),
                ));
            }
            let days = if in_years { n.saturating_mul(365) } else { n };
            let days = u32::try_from(days)
                .ok()
                .filter(|d| *d <= 36_500 * 10)
                .ok_or_else(|| {
                    ApiError::InvalidArgument("Default retention period is too large".into())
                })?;
            Some(DefaultRetention {
                mode,
                days,
                in_years,
            })
        }
    };
    ctx.engine
        .set_object_lock(bucket, ObjectLockConfig { default_retention })
        .await?;
    Ok(empty(StatusCode::OK))
}

/// GET /bucket?object-lock
pub async fn handle_get_object_lock_configuration(ctx: &Ctx, bucket: &str) -> ApiResult<Resp> {
    let record = ctx.engine.bucket(bucket).await?;
    let Some(cfg) = record.object_lock else {
        return Err(ApiError::ObjectLockConfigurationNotFound);
    };
    let mut w = XmlWriter::new("ObjectLockConfiguration");
    w.elem("ObjectLockEnabled", "Enabled");
    if let Some(d) = cfg.default_retention {
        w.open("Rule")
            .open("DefaultRetention")
            .elem("Mode", d.mode.name());
        if d.in_years {
            w.elem("Years", &(d.days / 365).to_string());
        } else {
            w.elem("Days", &d.days.to_string());
        }
        w.close("DefaultRetention").close("Rule");
    }
    Ok(xml(StatusCode::OK, w.finish("ObjectLockConfiguration")))
}

/// PUT /bucket/key?retention
pub async fn handle_put_object_retention(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let body = req.read_small_body(ctx.client_timeout, 64 * 1024).await?;
    let doc: RetentionXml = parse(&body)?;
    let retention = match (doc.mode.as_deref(), doc.retain_until_date.as_deref()) {
        (Some(m), Some(u)) => Some(Retention {
            mode: LockMode::from_name(m.trim()).ok_or(ApiError::MalformedXml)?,
            until_ms: parse_until(u, Utc::now())?,
        }),
        (None, None) => None,
        _ => return Err(ApiError::MalformedXml),
    };
    let version = req.query.get("versionId");
    let bypass = bypass_governance(&req);
    let record = ctx
        .engine
        .set_retention(bucket, key, version, retention, bypass)
        .await?;
    let mut resp = empty(StatusCode::OK);
    version_header(&mut resp, &record, version.is_some());
    Ok(resp)
}

/// GET /bucket/key?retention
pub async fn handle_get_object_retention(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    require_lock(ctx, bucket).await?;
    let record = current_or_version(ctx, bucket, key, req.query.get("versionId")).await?;
    let Some(r) = record.lock.retention else {
        return Err(ApiError::NoSuchObjectLockConfiguration);
    };
    let until = DateTime::from_timestamp_millis(r.until_ms).unwrap_or_default();
    let mut w = XmlWriter::new("Retention");
    w.elem("Mode", r.mode.name())
        .elem("RetainUntilDate", &iso8601(until));
    Ok(xml(StatusCode::OK, w.finish("Retention")))
}

/// PUT /bucket/key?legal-hold
pub async fn handle_put_object_legal_hold(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let body = req.read_small_body(ctx.client_timeout, 64 * 1024).await?;
    let doc: LegalHoldXml = parse(&body)?;
    let on = match doc.status.as_deref() {
        Some("ON") => true,
        Some("OFF") => false,
        _ => return Err(ApiError::MalformedXml),
    };
    let version = req.query.get("versionId");
    let record = ctx.engine.set_legal_hold(bucket, key, version, on).await?;
    let mut resp = empty(StatusCode::OK);
    version_header(&mut resp, &record, version.is_some());
    Ok(resp)
}

/// GET /bucket/key?legal-hold
pub async fn handle_get_object_legal_hold(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    require_lock(ctx, bucket).await?;
    let record = current_or_version(ctx, bucket, key, req.query.get("versionId")).await?;
    let mut w = XmlWriter::new("LegalHold");
    let Some(held) = record.lock.legal_hold else {
        return Err(ApiError::NoSuchObjectLockConfiguration);
    };
    w.elem("Status", if held { "ON" } else { "OFF" });
    Ok(xml(StatusCode::OK, w.finish("LegalHold")))
}
