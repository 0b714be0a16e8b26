//! Object operations: PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, CopyObject.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use http::StatusCode;
use strata_storage::names::{KeyProblem, check_key};
use strata_storage::{BodyStream, ChecksumAlgorithm, Condition, Digests, ObjectRecord, PutOptions};

use super::{Ctx, Req, Resp, empty, set_header, streaming, xml};
use crate::conditional::{Conditions, etag_list_matches, http_date, iso8601};
use crate::error::{ApiError, ApiResult};
use crate::range::parse_range;
use crate::router::Query;
use crate::xml::{Delete, XmlWriter, parse};

/// Representation headers stored with an object and returned on GET/HEAD.
const STORED_HEADERS: [&str; 7] = [
    "content-type",
    "content-encoding",
    "content-disposition",
    "content-language",
    "cache-control",
    "expires",
    "x-amz-website-redirect-location",
];
/// Most bytes of user metadata (names plus values), as AWS.
pub(crate) const MAX_USER_META: usize = 2048;
/// Most keys in one DeleteObjects request.
const MAX_DELETE_KEYS: usize = 1000;
/// Largest object CopyObject may copy in one request, as AWS.
const MAX_COPY_SIZE: u64 = 5 * 1024 * 1024 * 1024;

pub(crate) fn validate_key(key: &str) -> ApiResult<()> {
    match check_key(key) {
        Ok(()) => Ok(()),
        Err(KeyProblem::TooLong) => Err(ApiError::KeyTooLong),
        Err(KeyProblem::Empty) => Err(ApiError::InvalidArgument(
            "Object key must not be empty".into(),
        )),
    }
}

pub(crate) fn record_time(record: &ObjectRecord) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(record.last_modified_ms).unwrap_or_default()
}

/// Representation headers and user metadata from a request.
/// Name/value pairs, in order.
pub(crate) type Pairs = Vec<(String, String)>;

pub(crate) fn stored_headers(req: &Req) -> ApiResult<(Pairs, Pairs)> {
    check_redirect_location(req)?;
    let mut headers = Vec::new();
    for name in STORED_HEADERS {
        let Some(value) = req.header(name) else {
            continue;
        };
        let value = if name == "content-encoding" {
            // aws-chunked is transport framing, not a property of the object.
            let rest: Vec<&str> = value
                .split(',')
                .map(str::trim)
                .filter(|t| !t.eq_ignore_ascii_case("aws-chunked") && !t.is_empty())
                .collect();
            if rest.is_empty() {
                continue;
            }
            rest.join(",")
        } else {
            value.to_owned()
        };
        headers.push((name.to_owned(), value));
    }
    let mut meta = Vec::new();
    let mut total = 0;
    for (name, value) in req.headers() {
        if let Some(n) = name.as_str().strip_prefix("x-amz-meta-") {
            let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
            total += n.len() + v.len();
            meta.push((n.to_owned(), v));
        }
    }
    if total > MAX_USER_META {
        return Err(ApiError::MetadataTooLarge);
    }
    Ok((headers, meta))
}

/// Refuses an `x-amz-website-redirect-location` that is neither a path in the bucket (`/…`) nor an http(s) URL
/// (InvalidRedirectLocation, as AWS): the website endpoint sends it back as a Location header.
pub(crate) fn check_redirect_location(req: &Req) -> ApiResult<()> {
    match req.header("x-amz-website-redirect-location") {
        Some(v) if !valid_redirect_location(v) => Err(ApiError::InvalidRedirectLocation),
        _ => Ok(()),
    }
}

fn valid_redirect_location(v: &str) -> bool {
    v.starts_with('/') || v.starts_with("http://") || v.starts_with("https://")
}

/// Tags from an `x-amz-tagging` header (URL query form).
pub(crate) fn tags_from_header(value: Option<&str>) -> ApiResult<Vec<(String, String)>> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let tags = Query::parse(Some(value)).0;
    super::tagging::validate_tags(&tags)?;
    Ok(tags)
}

/// The flexible checksum requested for an upload: algorithm and, when given up front, the expected value.
pub(crate) fn requested_checksum(
    req: &Req,
) -> ApiResult<Option<(ChecksumAlgorithm, Option<Vec<u8>>)>> {
    let mut found = None;
    for algo in ChecksumAlgorithm::ALL {
        if let Some(v) = req.header(algo.header()) {
            if found.is_some() {
                return Err(ApiError::InvalidRequest(
                    "Expecting a single x-amz-checksum- header".into(),
                ));
            }
            found = Some((algo, Some(decode_checksum(algo, v)?)));
        }
    }
    if found.is_some() {
        return Ok(found);
    }
    if let Some(trailer) = req.header("x-amz-trailer") {
        let algo = ChecksumAlgorithm::from_header(trailer.trim()).ok_or_else(|| {
            ApiError::InvalidArgument(format!("Unsupported x-amz-trailer: {trailer}"))
        })?;
        return Ok(Some((algo, None)));
    }
    if let Some(name) = req
        .header("x-amz-sdk-checksum-algorithm")
        .or_else(|| req.header("x-amz-checksum-algorithm"))
    {
        let algo = ChecksumAlgorithm::from_name(name.trim()).ok_or_else(|| {
            ApiError::InvalidArgument(format!("Unsupported checksum algorithm: {name}"))
        })?;
        return Ok(Some((algo, None)));
    }
    Ok(None)
}

pub(crate) fn decode_checksum(algo: ChecksumAlgorithm, value: &str) -> ApiResult<Vec<u8>> {
    match B64.decode(value.trim()) {
        Ok(raw) if raw.len() == algo.digest_len() => Ok(raw),
        _ => Err(ApiError::InvalidRequest(format!(
            "Value for {} header is invalid.",
            algo.header()
        ))),
    }
}

pub(crate) fn content_md5(req: &Req) -> ApiResult<Option<[u8; 16]>> {
    let Some(v) = req.header("content-md5") else {
        return Ok(None);
    };
    let raw = B64.decode(v.trim()).map_err(|_| ApiError::InvalidDigest)?;
    raw.try_into()
        .map(Some)
        .map_err(|_| ApiError::InvalidDigest)
}

/// The commit-time precondition of a conditional write.
pub(crate) fn write_condition(req: &Req) -> ApiResult<Condition> {
    match (req.header("if-none-match"), req.header("if-match")) {
        (Some(_), Some(_)) => Err(ApiError::NotImplemented),
        (Some(v), None) if v.trim() == "*" => Ok(Condition::Absent),
        (Some(_), None) => Err(ApiError::NotImplemented),
        (None, Some(v)) => Ok(Condition::EtagIs(v.trim().trim_matches('"').to_owned())),
        (None, None) => Ok(Condition::None),
    }
}

/// Checks an If-Match write against the current object before any byte is read, as S3 does: a missing key is
/// 404 NoSuchKey (not 412), `*` matches any existing object, and a list of ETags is accepted. The returned
/// condition names the current ETag exactly, so the commit-time check still catches a concurrent overwrite.
async fn precheck_write(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    condition: Condition,
) -> ApiResult<Condition> {
    let Condition::EtagIs(wanted) = &condition else {
        return Ok(condition);
    };
    let current = ctx.engine.head_object(bucket, key).await?;
    if !etag_list_matches(wanted, &current.etag) {
        return Err(ApiError::PreconditionFailed);
    }
    Ok(Condition::EtagIs(current.etag))
}

/// Builds the check run on the digests before the write commits.
pub(crate) fn verifier(
    req: &Req,
    checksum: Option<(ChecksumAlgorithm, Option<Vec<u8>>)>,
) -> ApiResult<impl FnOnce(&Digests) -> Result<(), strata_storage::BoxError> + Send + use<>> {
    let md5 = content_md5(req)?;
    let trailers = req.trailers.clone();
    Ok(move |d: &Digests| {
        if md5.is_some_and(|m| m != d.md5) {
            return Err(Box::new(ApiError::BadDigest) as strata_storage::BoxError);
        }
        if let (Some((algo, expected)), Some((_, got))) = (checksum, &d.checksum) {
            let expected = match expected {
                Some(e) => e,
                None => match trailers.get(algo.header()) {
                    Some(v) => decode_checksum(algo, &v)
                        .map_err(|e| Box::new(e) as strata_storage::BoxError)?,
                    None if trailers.0.lock().map(|t| t.is_empty()).unwrap_or(true) => {
                        return Ok(());
                    }
                    None => {
                        return Err(Box::new(ApiError::InvalidRequest(format!(
                            "Missing trailer {}",
                            algo.header()
                        ))));
                    }
                },
            };
            if &expected != got {
                return Err(Box::new(ApiError::BadChecksum(algo.name())));
            }
        }
        Ok(())
    })
}

pub(crate) fn checksum_header(resp: &mut Resp, record: &ObjectRecord) {
    if let Some(c) = &record.checksum {
        set_header(resp, c.algorithm.header(), &checksum_text(c));
        let kind = if c.composite_parts.is_some() {
            "COMPOSITE"
        } else {
            "FULL_OBJECT"
        };
        set_header(resp, "x-amz-checksum-type", kind);
    }
}

/// A stored checksum as S3 shows it: base64, with `-N` for a composite of N parts.
pub(crate) fn checksum_text(c: &strata_storage::meta::StoredChecksum) -> String {
    match c.composite_parts {
        Some(n) => format!("{}-{n}", B64.encode(&c.value)),
        None => B64.encode(&c.value),
    }
}

/// PUT /bucket/key
pub async fn handle_put_object(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let len = req
        .content_length()?
        .ok_or(ApiError::MissingContentLength)?;
    if len > ctx.engine.settings().max_put_size {
        return Err(ApiError::EntityTooLarge);
    }
    let (mut headers, user_meta) = stored_headers(&req)?;
    let acl = super::acl::object_acl_for_write(ctx, &req, bucket, key).await?;
    super::acl::store_object_acl(&mut headers, acl);
    let tags = tags_from_header(req.header("x-amz-tagging"))?;
    let checksum = requested_checksum(&req)?;
    let condition = precheck_write(ctx, bucket, key, write_condition(&req)?).await?;
    let verify = verifier(&req, checksum.clone())?;
    let opts = PutOptions {
        headers,
        user_meta,
        tags,
        checksum: checksum.map(|(a, _)| a),
        content_length: Some(len),
        condition,
        owner: req.owner_id().to_owned(),
        storage_class: req
            .header("x-amz-storage-class")
            .unwrap_or_default()
            .to_owned(),
        lock: super::lock::requested_lock(&req)?,
    };
    let body = req.body_stream(ctx.client_timeout);
    let record = ctx
        .engine
        .put_object(bucket, key, opts, body, verify)
        .await?;
    let mut resp = empty(StatusCode::OK);
    set_header(&mut resp, "etag", &format!("\"{}\"", record.etag));
    checksum_header(&mut resp, &record);
    version_header(&mut resp, &record, false);
    Ok(resp)
}

/// Response-header overrides a signed GET may ask for.
const RESPONSE_OVERRIDES: [(&str, &str); 6] = [
    ("response-content-type", "content-type"),
    ("response-content-language", "content-language"),
    ("response-expires", "expires"),
    ("response-cache-control", "cache-control"),
    ("response-content-disposition", "content-disposition"),
    ("response-content-encoding", "content-encoding"),
];

fn object_headers(resp: &mut Resp, record: &ObjectRecord) {
    set_header(resp, "etag", &format!("\"{}\"", record.etag));
    set_header(resp, "last-modified", &http_date(record_time(record)));
    set_header(resp, "accept-ranges", "bytes");
    set_header(
        resp,
        "content-type",
        record
            .header("content-type")
            .unwrap_or("binary/octet-stream"),
    );
    for (name, value) in &record.headers {
        if name != "content-type" && name != crate::access::acl::OBJECT_ACL_HEADER {
            set_header(resp, name, value);
        }
    }
    for (name, value) in &record.user_meta {
        set_header(resp, &format!("x-amz-meta-{name}"), value);
    }
    if !record.tags.is_empty() {
        set_header(resp, "x-amz-tagging-count", &record.tags.len().to_string());
    }
    if record.storage_class != "STANDARD" {
        set_header(resp, "x-amz-storage-class", &record.storage_class);
    }
}

/// 304 Not Modified: no body, but the validators and caching headers a 200 would carry (RFC 7232 section 4.1),
/// so caches can refresh their copy.
fn not_modified(record: &ObjectRecord) -> Resp {
    let mut resp = empty(StatusCode::NOT_MODIFIED);
    set_header(&mut resp, "etag", &format!("\"{}\"", record.etag));
    set_header(&mut resp, "last-modified", &http_date(record_time(record)));
    for name in ["cache-control", "expires"] {
        if let Some(v) = record.header(name) {
            set_header(&mut resp, name, v);
        }
    }
    resp
}

/// GET or HEAD /bucket/key
pub async fn handle_get_object(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
    head: bool,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let version = req.query.get("versionId");
    let record = current_or_version(ctx, bucket, key, version).await?;
    match Conditions::from_headers(req.headers(), "if-").check(
        &record.etag,
        record_time(&record),
        || ApiError::NotModified,
    ) {
        Ok(()) => {}
        Err(ApiError::NotModified) => return Ok(not_modified(&record)),
        Err(e) => return Err(e),
    }
    let part_number = req.query.get("partNumber");
    let range = match (part_number, req.header("range")) {
        (Some(_), Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "Cannot specify both Range header and partNumber query parameter".into(),
            ));
        }
        (Some(part), None) => Some(super::multipart::part_range(&record, part)?),
        (None, range) => parse_range(range, record.size)?,
    };
    let (status, start, end) = match range {
        Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
        None => (StatusCode::OK, 0, record.size.saturating_sub(1)),
    };
    let len = if record.size == 0 { 0 } else { end - start + 1 };
    let body: BodyStream = if head || len == 0 {
        Box::pin(futures_util::stream::empty())
    } else {
        ctx.engine.read_object(bucket, key, &record, start, end)
    };
    let mut resp = streaming(status, body);
    object_headers(&mut resp, &record);
    version_header(&mut resp, &record, version.is_some());
    super::lock::lock_headers(&mut resp, &record);
    set_header(&mut resp, "content-length", &len.to_string());
    // S3 reports the part count only to a request that names a part.
    if record.multipart.is_some() && part_number.is_some() {
        set_header(
            &mut resp,
            "x-amz-mp-parts-count",
            &record.parts_count().to_string(),
        );
    }
    if range.is_some() {
        set_header(
            &mut resp,
            "content-range",
            &format!("bytes {start}-{end}/{}", record.size),
        );
    } else if req
        .header("x-amz-checksum-mode")
        .is_some_and(|m| m.eq_ignore_ascii_case("ENABLED"))
    {
        checksum_header(&mut resp, &record);
    }
    for (param, header) in RESPONSE_OVERRIDES {
        if let Some(v) = req.query.get(param) {
            set_header(&mut resp, header, v);
        }
    }
    Ok(resp)
}

/// DELETE /bucket/key
pub async fn handle_delete_object(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let deleted = ctx
        .engine
        .delete_object(
            bucket,
            key,
            req.query.get("versionId"),
            super::lock::bypass_governance(req),
        )
        .await?;
    let mut resp = empty(StatusCode::NO_CONTENT);
    if deleted.delete_marker {
        set_header(&mut resp, "x-amz-delete-marker", "true");
    }
    if let Some(v) = &deleted.version_id {
        set_header(&mut resp, "x-amz-version-id", v);
    }
    Ok(resp)
}

/// The record a GET/HEAD (or tagging) of `key` addresses; delete markers become the errors S3 gives.
pub(crate) async fn current_or_version(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> ApiResult<ObjectRecord> {
    let record = ctx.engine.head_version(bucket, key, version).await?;
    if record.is_delete_marker() {
        let version_id = record.version_id_or_null().to_owned();
        let last_modified = http_date(record_time(&record));
        return Err(match version {
            Some(_) => ApiError::VersionIsDeleteMarker {
                version_id,
                last_modified,
            },
            None => ApiError::CurrentIsDeleteMarker {
                version_id,
                last_modified,
            },
        });
    }
    Ok(record)
}

/// `x-amz-version-id` for versioned records, and for the null version when it was asked for by id.
pub(crate) fn version_header(resp: &mut Resp, record: &ObjectRecord, asked: bool) {
    if record.version_id.is_some() || asked {
        set_header(resp, "x-amz-version-id", record.version_id_or_null());
    }
}

/// POST /bucket?delete
pub async fn handle_delete_objects(ctx: &Ctx, mut req: Req, bucket: &str) -> ApiResult<Resp> {
    let body = req
        .read_small_body(ctx.client_timeout, 4 * 1024 * 1024)
        .await?;
    let doc: Delete = parse(&body)?;
    if doc.objects.is_empty() || doc.objects.len() > MAX_DELETE_KEYS {
        return Err(ApiError::MalformedXml);
    }
    let quiet = doc.quiet.unwrap_or(false);
    let (valid, invalid): (Vec<_>, Vec<_>) = doc
        .objects
        .into_iter()
        .partition(|o| validate_key(&o.key).is_ok());
    let mut entries: Vec<(String, Option<String>)> = Vec::with_capacity(valid.len());
    let mut refused: Vec<(String, Option<String>)> = Vec::new();
    for o in &valid {
        let action = if o.version_id.is_some() {
            "s3:DeleteObjectVersion"
        } else {
            "s3:DeleteObject"
        };
        let identity = req.identity.as_ref();
        let entry = (o.key.clone(), o.version_id.clone());
        let env = req.env.clone().with_version(o.version_id.as_deref());
        match crate::access::authorize(ctx, identity, action, bucket, Some(&o.key), &env).await {
            Ok(()) => entries.push(entry),
            Err(ApiError::AccessDenied) => refused.push(entry),
            Err(e) => return Err(e),
        }
    }
    let bypass = super::lock::bypass_governance(&req);
    let results = if entries.is_empty() {
        ctx.engine.bucket(bucket).await?;
        Vec::new()
    } else {
        ctx.engine.delete_objects(bucket, &entries, bypass).await?
    };
    let mut w = XmlWriter::new("DeleteResult");
    for ((key, asked), result) in entries.iter().zip(results) {
        match result {
            Ok(d) if !quiet => {
                w.open("Deleted").elem("Key", key);
                if let Some(v) = asked {
                    w.elem("VersionId", v);
                }
                if d.delete_marker {
                    w.elem("DeleteMarker", "true");
                    if let Some(v) = d.version_id.as_ref().filter(|_| asked.is_none()) {
                        w.elem("DeleteMarkerVersionId", v);
                    }
                }
                w.close("Deleted");
            }
            Ok(_) => {}
            Err(e) => delete_error(&mut w, key, asked.as_deref(), &ApiError::from(e)),
        }
    }
    for (key, asked) in &refused {
        delete_error(&mut w, key, asked.as_deref(), &ApiError::AccessDenied);
    }
    for o in &invalid {
        let err = validate_key(&o.key).expect_err("partitioned as invalid");
        delete_error(&mut w, &o.key, None, &err);
    }
    Ok(xml(StatusCode::OK, w.finish("DeleteResult")))
}

/// One `<Error>` entry of a DeleteResult.
fn delete_error(w: &mut XmlWriter, key: &str, version: Option<&str>, e: &ApiError) {
    w.open("Error").elem("Key", key);
    if let Some(v) = version {
        w.elem("VersionId", v);
    }
    w.elem("Code", e.aws_code())
        .elem("Message", &e.message())
        .close("Error");
}

/// The record a copy source names: the current version, or the one `?versionId=` asks for (never a delete
/// marker, as S3).
pub(crate) async fn copy_source_record(
    ctx: &Ctx,
    bucket: &str,
    key: &str,
    version: Option<&str>,
) -> ApiResult<ObjectRecord> {
    match version {
        None => Ok(ctx.engine.head_object(bucket, key).await?),
        Some(_) => match ctx.engine.head_version(bucket, key, version).await? {
            r if r.is_delete_marker() => Err(ApiError::InvalidRequest(
                "The source of a copy request may not specifically refer to a delete marker by version id."
                    .into(),
            )),
            r => Ok(r),
        },
    }
}

/// Parses `x-amz-copy-source` into (bucket, key, version id).
pub(crate) fn copy_source(req: &Req) -> ApiResult<(String, String, Option<String>)> {
    let raw = req
        .header("x-amz-copy-source")
        .ok_or_else(|| ApiError::InvalidArgument("Missing copy source".into()))?;
    let (path, query) = raw
        .split_once('?')
        .map_or((raw, None), |(p, q)| (p, Some(q)));
    let version = Query::parse(query).get("versionId").map(str::to_owned);
    let decoded = percent_encoding::percent_decode_str(path)
        .decode_utf8()
        .map_err(|_| ApiError::InvalidArgument("Invalid copy source encoding".into()))?;
    let decoded = decoded.strip_prefix('/').unwrap_or(&decoded);
    match decoded.split_once('/') {
        Some((b, k)) if !b.is_empty() && !k.is_empty() => Ok((b.to_owned(), k.to_owned(), version)),
        _ => Err(ApiError::InvalidArgument(
            "Copy Source must mention the source bucket and key: sourcebucket/sourcekey".into(),
        )),
    }
}

pub(crate) fn directive(req: &Req, name: &str) -> ApiResult<bool> {
    match req.header(name) {
        None => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("COPY") => Ok(false),
        Some(v) if v.eq_ignore_ascii_case("REPLACE") => Ok(true),
        Some(v) => Err(ApiError::InvalidArgument(format!(
            "Unknown {name} value: {v}"
        ))),
    }
}

/// PUT /bucket/key with x-amz-copy-source
pub async fn handle_copy_object(ctx: &Ctx, req: Req, bucket: &str, key: &str) -> ApiResult<Resp> {
    validate_key(key)?;
    let (src_bucket, src_key, src_version) = copy_source(&req)?;
    validate_key(&src_key)?;
    let source = copy_source_record(ctx, &src_bucket, &src_key, src_version.as_deref()).await?;
    Conditions::from_headers(req.headers(), "x-amz-copy-source-if-").check(
        &source.etag,
        record_time(&source),
        || ApiError::PreconditionFailed,
    )?;
    if source.size > MAX_COPY_SIZE {
        return Err(ApiError::InvalidRequest(format!(
            "The specified copy source is larger than the maximum allowable size for a copy source: {MAX_COPY_SIZE}"
        )));
    }
    let replace_meta = directive(&req, "x-amz-metadata-directive")?;
    let replace_tags = directive(&req, "x-amz-tagging-directive")?;
    let storage_class = req.header("x-amz-storage-class").map(str::to_owned);
    // Copying an older version over its own key is how a version is restored, so that is not "onto itself".
    check_redirect_location(&req)?;
    let same = src_bucket == bucket && src_key == key && src_version.is_none();
    if same
        && !replace_meta
        && storage_class.is_none()
        && req.header("x-amz-website-redirect-location").is_none()
    {
        return Err(ApiError::InvalidRequest(
            "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.".into(),
        ));
    }
    let (mut headers, user_meta) = if replace_meta {
        stored_headers(&req)?
    } else {
        (source.headers.clone(), source.user_meta.clone())
    };
    // A copy never inherits the source's ACL: it gets the one asked for, else private.
    let acl = super::acl::object_acl_for_write(ctx, &req, bucket, key).await?;
    super::acl::store_object_acl(&mut headers, acl);
    let tags = if replace_tags {
        tags_from_header(req.header("x-amz-tagging"))?
    } else {
        source.tags.clone()
    };
    let checksum = match req.header("x-amz-checksum-algorithm") {
        Some(name) => Some(ChecksumAlgorithm::from_name(name.trim()).ok_or_else(|| {
            ApiError::InvalidArgument(format!("Unsupported checksum algorithm: {name}"))
        })?),
        None => None,
    };
    let opts = PutOptions {
        headers,
        user_meta,
        tags,
        checksum,
        content_length: None,
        condition: precheck_write(ctx, bucket, key, write_condition(&req)?).await?,
        owner: req.owner_id().to_owned(),
        storage_class: storage_class.unwrap_or_else(|| source.storage_class.clone()),
        lock: super::lock::requested_lock(&req)?,
    };
    let record = ctx
        .engine
        .copy_object(&src_bucket, &src_key, &source, bucket, key, opts)
        .await?;
    let mut w = XmlWriter::new("CopyObjectResult");
    w.elem("LastModified", &iso8601(record_time(&record)))
        .elem("ETag", &format!("\"{}\"", record.etag));
    if let Some(c) = &record.checksum {
        w.elem(
            &format!("Checksum{}", c.algorithm.name()),
            &B64.encode(&c.value),
        );
    }
    let mut resp = xml(StatusCode::OK, w.finish("CopyObjectResult"));
    version_header(&mut resp, &record, false);
    if source.version_id.is_some() || src_version.is_some() {
        set_header(
            &mut resp,
            "x-amz-copy-source-version-id",
            source.version_id_or_null(),
        );
    }
    Ok(resp)
}

#[cfg(test)]
mod tests {
    use super::valid_redirect_location;

    #[test]
    fn redirect_locations_are_paths_or_http_urls() {
        for ok in ["/other.html", "http://example.com/x", "https://example.com"] {
            assert!(valid_redirect_location(ok), "{ok}");
        }
        for bad in [
            "",
            "other.html",
            "javascript:alert(1)",
            "ftp://x",
            "example.com/",
        ] {
            assert!(!valid_redirect_location(bad), "{bad}");
        }
    }
}
