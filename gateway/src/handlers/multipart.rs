//! Multipart upload operations: CreateMultipartUpload, UploadPart, UploadPartCopy, CompleteMultipartUpload,
//! AbortMultipartUpload, ListParts, ListMultipartUploads; and GetObjectAttributes, which reports parts.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use http::StatusCode;
use strata_storage::meta::StoredChecksum;
use strata_storage::multipart::{MAX_PART_NUMBER, MAX_PART_SIZE};
use strata_storage::{
    ChecksumAlgorithm, ChecksumType, CompletePart, ObjectData, ObjectRecord, PutOptions,
    UploadListQuery,
};

use super::object::{
    checksum_text, copy_source, record_time, requested_checksum, stored_headers, tags_from_header,
    validate_key, verifier,
};
use super::{Ctx, Req, Resp, empty, owner_xml, set_header, xml};
use crate::conditional::{Conditions, iso8601};
use crate::error::{ApiError, ApiResult};
use crate::xml::{CompleteMultipartUpload, XmlWriter, parse};

fn upload_id(req: &Req) -> ApiResult<&str> {
    req.query
        .get("uploadId")
        .filter(|u| !u.is_empty())
        .ok_or(ApiError::NoSuchUpload)
}

fn part_number(raw: Option<&str>) -> ApiResult<u32> {
    raw.and_then(|p| p.parse::<u32>().ok())
        .filter(|n| (1..=MAX_PART_NUMBER).contains(n))
        .ok_or_else(|| {
            ApiError::InvalidArgument(
                "Part number must be an integer between 1 and 10000, inclusive".into(),
            )
        })
}

/// The inclusive byte range of part `raw` of an object (GetObject/HeadObject with partNumber).
pub(crate) fn part_range(record: &ObjectRecord, raw: &str) -> ApiResult<(u64, u64)> {
    let n = part_number(Some(raw))?;
    match (&record.data, &record.multipart) {
        (ObjectData::Segments(segs), Some(_)) => {
            let mut start = 0;
            for s in segs {
                if s.part_number == n {
                    return if s.size == 0 {
                        Err(ApiError::InvalidRange)
                    } else {
                        Ok((start, start + s.size - 1))
                    };
                }
                start += s.size;
            }
            Err(ApiError::InvalidPart)
        }
        _ if n == 1 && record.size > 0 => Ok((0, record.size - 1)),
        _ if n == 1 => Err(ApiError::InvalidRange),
        _ => Err(ApiError::InvalidPart),
    }
}

/// POST /bucket/key?uploads
pub async fn handle_create_multipart_upload(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let (mut headers, user_meta) = stored_headers(req)?;
    let acl = super::acl::object_acl_for_write(ctx, req, bucket, key).await?;
    super::acl::store_object_acl(&mut headers, acl);
    let tags = tags_from_header(req.header("x-amz-tagging"))?;
    let algorithm = match req.header("x-amz-checksum-algorithm") {
        None => None,
        Some(name) => Some(ChecksumAlgorithm::from_name(name.trim()).ok_or_else(|| {
            ApiError::InvalidArgument(format!("Unsupported checksum algorithm: {name}"))
        })?),
    };
    let checksum_type = match req.header("x-amz-checksum-type").map(str::trim) {
        None => None,
        Some(t) if t.eq_ignore_ascii_case("COMPOSITE") => Some(ChecksumType::Composite),
        Some(t) if t.eq_ignore_ascii_case("FULL_OBJECT") => Some(ChecksumType::FullObject),
        Some(t) => {
            return Err(ApiError::InvalidArgument(format!(
                "Invalid x-amz-checksum-type: {t}"
            )));
        }
    };
    match (algorithm, checksum_type) {
        (None, Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.".into(),
            ));
        }
        (
            Some(ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256),
            Some(ChecksumType::FullObject),
        )
        | (Some(ChecksumAlgorithm::Crc64Nvme), Some(ChecksumType::Composite)) => {
            return Err(ApiError::InvalidRequest(
                "The checksum type is not supported with this checksum algorithm.".into(),
            ));
        }
        _ => {}
    }
    let opts = PutOptions {
        headers,
        user_meta,
        tags,
        checksum: algorithm,
        owner: req.owner_id().to_owned(),
        storage_class: req
            .header("x-amz-storage-class")
            .unwrap_or_default()
            .to_owned(),
        lock: super::lock::requested_lock(req)?,
        ..PutOptions::default()
    };
    let id = ctx
        .engine
        .create_multipart_upload(bucket, key, opts, checksum_type)
        .await?;
    let mut w = XmlWriter::new("InitiateMultipartUploadResult");
    w.elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", &id);
    let mut resp = xml(StatusCode::OK, w.finish("InitiateMultipartUploadResult"));
    if let Some(a) = algorithm {
        set_header(&mut resp, "x-amz-checksum-algorithm", a.name());
        let kind = checksum_type.unwrap_or(if a == ChecksumAlgorithm::Crc64Nvme {
            ChecksumType::FullObject
        } else {
            ChecksumType::Composite
        });
        set_header(&mut resp, "x-amz-checksum-type", kind.name());
    }
    Ok(resp)
}

/// PUT /bucket/key?partNumber&uploadId
pub async fn handle_upload_part(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let upload = upload_id(&req)?.to_owned();
    let n = part_number(req.query.get("partNumber"))?;
    let len = req
        .content_length()?
        .ok_or(ApiError::MissingContentLength)?;
    if len > MAX_PART_SIZE {
        return Err(ApiError::EntityTooLarge);
    }
    let checksum = requested_checksum(&req)?;
    let verify = verifier(&req, checksum.clone())?;
    let body = req.body_stream(ctx.client_timeout);
    let (part, algo) = ctx
        .engine
        .upload_part(
            bucket,
            key,
            &upload,
            n,
            body,
            Some(len),
            checksum.map(|(a, _)| a),
            verify,
        )
        .await?;
    let mut resp = empty(StatusCode::OK);
    set_header(&mut resp, "etag", &format!("\"{}\"", part.etag));
    if let (Some(a), Some(raw)) = (algo, &part.segment.checksum) {
        set_header(&mut resp, a.header(), &B64.encode(raw));
    }
    Ok(resp)
}

/// Parses `x-amz-copy-source-range: bytes=a-b` against the source size.
fn copy_range(req: &Req, size: u64) -> ApiResult<(u64, u64)> {
    let Some(raw) = req.header("x-amz-copy-source-range") else {
        return Ok((0, size.saturating_sub(1)));
    };
    let invalid = || {
        ApiError::InvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy".into())
    };
    let (a, b) = raw
        .trim()
        .strip_prefix("bytes=")
        .and_then(|r| r.split_once('-'))
        .ok_or_else(invalid)?;
    let (a, b): (u64, u64) = (
        a.trim().parse().map_err(|_| invalid())?,
        b.trim().parse().map_err(|_| invalid())?,
    );
    if a > b {
        return Err(invalid());
    }
    if b >= size {
        return Err(ApiError::InvalidRange);
    }
    Ok((a, b))
}

/// PUT /bucket/key?partNumber&uploadId with x-amz-copy-source
pub async fn handle_upload_part_copy(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let upload = upload_id(req)?;
    let n = part_number(req.query.get("partNumber"))?;
    let (src_bucket, src_key, src_version) = copy_source(req)?;
    validate_key(&src_key)?;
    let source =
        super::object::copy_source_record(ctx, &src_bucket, &src_key, src_version.as_deref())
            .await?;
    Conditions::from_headers(req.headers(), "x-amz-copy-source-if-").check(
        &source.etag,
        record_time(&source),
        || ApiError::PreconditionFailed,
    )?;
    let (start, end) = copy_range(req, source.size)?;
    if source.size > 0 && end - start + 1 > MAX_PART_SIZE {
        return Err(ApiError::EntityTooLarge);
    }
    let (part, _) = ctx
        .engine
        .upload_part_copy(
            bucket,
            key,
            upload,
            n,
            (&src_bucket, &src_key, &source),
            start,
            end,
        )
        .await?;
    let mut w = XmlWriter::new("CopyPartResult");
    let modified =
        chrono::DateTime::from_timestamp_millis(part.last_modified_ms).unwrap_or_default();
    w.elem("LastModified", &iso8601(modified))
        .elem("ETag", &format!("\"{}\"", part.etag));
    Ok(xml(StatusCode::OK, w.finish("CopyPartResult")))
}

fn checksum_elem(w: &mut XmlWriter, c: &StoredChecksum) {
    w.elem(
        &format!("Checksum{}", c.algorithm.name()),
        &checksum_text(c),
    );
}

/// POST /bucket/key?uploadId
pub async fn handle_complete_multipart_upload(
    ctx: &Ctx,
    mut req: Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let upload = upload_id(&req)?.to_owned();
    let body = req
        .read_small_body(ctx.client_timeout, 4 * 1024 * 1024)
        .await?;
    let doc: CompleteMultipartUpload = parse(&body)?;
    if doc.parts.is_empty() || doc.parts.len() > MAX_PART_NUMBER as usize {
        return Err(ApiError::MalformedXml);
    }
    let mut parts = Vec::with_capacity(doc.parts.len());
    for p in doc.parts {
        let given = [
            (ChecksumAlgorithm::Crc32, p.checksum_crc32),
            (ChecksumAlgorithm::Crc32c, p.checksum_crc32c),
            (ChecksumAlgorithm::Crc64Nvme, p.checksum_crc64nvme),
            (ChecksumAlgorithm::Sha1, p.checksum_sha1),
            (ChecksumAlgorithm::Sha256, p.checksum_sha256),
        ];
        let checksum = given
            .into_iter()
            .find_map(|(a, v)| v.map(|v| (a, v)))
            .map(|(a, v)| match B64.decode(v.trim()) {
                Ok(raw) if raw.len() == a.digest_len() => Ok(raw),
                _ => Err(ApiError::InvalidPart),
            })
            .transpose()?;
        parts.push(CompletePart {
            number: p.part_number,
            etag: p.etag,
            checksum,
        });
    }
    let record = ctx
        .engine
        .complete_multipart_upload(bucket, key, &upload, parts)
        .await?;
    let host = req.header("host").unwrap_or("localhost");
    let mut w = XmlWriter::new("CompleteMultipartUploadResult");
    w.elem("Location", &format!("http://{host}/{bucket}/{key}"))
        .elem("Bucket", bucket)
        .elem("Key", key)
        .elem("ETag", &format!("\"{}\"", record.etag));
    if let Some(c) = &record.checksum {
        checksum_elem(&mut w, c);
        w.elem(
            "ChecksumType",
            if c.composite_parts.is_some() {
                "COMPOSITE"
            } else {
                "FULL_OBJECT"
            },
        );
    }
    let mut resp = xml(StatusCode::OK, w.finish("CompleteMultipartUploadResult"));
    super::object::version_header(&mut resp, &record, false);
    Ok(resp)
}

/// DELETE /bucket/key?uploadId
pub async fn handle_abort_multipart_upload(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    ctx.engine
        .abort_multipart_upload(bucket, key, upload_id(req)?)
        .await?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// GET /bucket/key?uploadId
pub async fn handle_list_parts(ctx: &Ctx, req: &Req, bucket: &str, key: &str) -> ApiResult<Resp> {
    validate_key(key)?;
    let upload = upload_id(req)?;
    let max = super::list::page_size(&req.query, "max-parts")?;
    let marker = match req.query.get("part-number-marker") {
        None => 0,
        Some(m) => m
            .parse::<u32>()
            .map_err(|_| ApiError::InvalidArgument("Invalid part-number-marker".into()))?,
    };
    let (record, parts, truncated) = ctx
        .engine
        .list_parts(bucket, key, upload, marker, max)
        .await?;
    let mut w = XmlWriter::new("ListPartsResult");
    w.elem("Bucket", bucket)
        .elem("Key", key)
        .elem("UploadId", upload);
    owner_xml(ctx, &mut w, "Initiator", &record.owner);
    owner_xml(ctx, &mut w, "Owner", &record.owner);
    w.elem("StorageClass", &record.storage_class)
        .elem("PartNumberMarker", &marker.to_string());
    if let Some((n, _)) = parts.last() {
        w.elem("NextPartNumberMarker", &n.to_string());
    }
    w.elem("MaxParts", &max.to_string())
        .elem("IsTruncated", if truncated { "true" } else { "false" });
    if let Some((a, kind)) = record.checksum {
        w.elem("ChecksumAlgorithm", a.name())
            .elem("ChecksumType", kind.name());
    }
    for (n, p) in &parts {
        let modified =
            chrono::DateTime::from_timestamp_millis(p.last_modified_ms).unwrap_or_default();
        w.open("Part")
            .elem("PartNumber", &n.to_string())
            .elem("LastModified", &iso8601(modified))
            .elem("ETag", &format!("\"{}\"", p.etag))
            .elem("Size", &p.segment.size.to_string());
        if let (Some((a, _)), Some(raw)) = (record.checksum, &p.checksum) {
            w.elem(&format!("Checksum{}", a.name()), &B64.encode(raw));
        }
        w.close("Part");
    }
    Ok(xml(StatusCode::OK, w.finish("ListPartsResult")))
}

/// GET /bucket?uploads
pub async fn handle_list_multipart_uploads(ctx: &Ctx, req: &Req, bucket: &str) -> ApiResult<Resp> {
    let q = &req.query;
    let url = super::list::url_encoding(q)?;
    let query = UploadListQuery {
        prefix: q.get("prefix").unwrap_or_default().to_owned(),
        delimiter: q
            .get("delimiter")
            .filter(|d| !d.is_empty())
            .map(str::to_owned),
        key_marker: q
            .get("key-marker")
            .filter(|m| !m.is_empty())
            .map(str::to_owned),
        upload_id_marker: q.get("upload-id-marker").map(str::to_owned),
        max: super::list::page_size(&req.query, "max-uploads")?,
    };
    let page = ctx
        .engine
        .list_multipart_uploads(bucket, query.clone())
        .await?;
    let enc = |s: &str| {
        if url {
            super::list::url_encode(s)
        } else {
            s.to_owned()
        }
    };
    let mut w = XmlWriter::new("ListMultipartUploadsResult");
    w.elem("Bucket", bucket)
        .elem(
            "KeyMarker",
            &enc(query.key_marker.as_deref().unwrap_or_default()),
        )
        .elem(
            "UploadIdMarker",
            query.upload_id_marker.as_deref().unwrap_or_default(),
        );
    if page.truncated
        && let Some((k, u)) = &page.next
    {
        w.elem("NextKeyMarker", &enc(k))
            .elem("NextUploadIdMarker", u);
    }
    w.elem("Prefix", &enc(&query.prefix));
    if let Some(d) = &query.delimiter {
        w.elem("Delimiter", &enc(d));
    }
    w.elem("MaxUploads", &query.max.to_string())
        .elem("IsTruncated", if page.truncated { "true" } else { "false" });
    if url {
        w.elem("EncodingType", "url");
    }
    for (key, id, u) in &page.uploads {
        let initiated = chrono::DateTime::from_timestamp_millis(u.initiated_ms).unwrap_or_default();
        w.open("Upload").elem("Key", &enc(key)).elem("UploadId", id);
        owner_xml(ctx, &mut w, "Initiator", &u.owner);
        owner_xml(ctx, &mut w, "Owner", &u.owner);
        w.elem("StorageClass", &u.storage_class)
            .elem("Initiated", &iso8601(initiated));
        if let Some((a, kind)) = u.checksum {
            w.elem("ChecksumAlgorithm", a.name())
                .elem("ChecksumType", kind.name());
        }
        w.close("Upload");
    }
    for cp in &page.common_prefixes {
        w.open("CommonPrefixes")
            .elem("Prefix", &enc(cp))
            .close("CommonPrefixes");
    }
    Ok(xml(StatusCode::OK, w.finish("ListMultipartUploadsResult")))
}

/// GET /bucket/key?attributes
pub async fn handle_get_object_attributes(
    ctx: &Ctx,
    req: &Req,
    bucket: &str,
    key: &str,
) -> ApiResult<Resp> {
    validate_key(key)?;
    let wanted: Vec<String> = req
        .headers()
        .get_all("x-amz-object-attributes")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    const KNOWN: [&str; 5] = [
        "ETag",
        "Checksum",
        "ObjectParts",
        "StorageClass",
        "ObjectSize",
    ];
    if wanted.is_empty() || wanted.iter().any(|a| !KNOWN.contains(&a.as_str())) {
        return Err(ApiError::InvalidArgument(
            "Invalid attribute name specified.".into(),
        ));
    }
    let has = |a: &str| wanted.iter().any(|w| w == a);
    let record = ctx.engine.head_object(bucket, key).await?;
    let mut w = XmlWriter::new("GetObjectAttributesResponse");
    if has("ETag") {
        w.elem("ETag", &record.etag);
    }
    if has("Checksum")
        && let Some(c) = &record.checksum
    {
        w.open("Checksum");
        checksum_elem(&mut w, c);
        w.elem(
            "ChecksumType",
            if c.composite_parts.is_some() {
                "COMPOSITE"
            } else {
                "FULL_OBJECT"
            },
        );
        w.close("Checksum");
    }
    if has("ObjectParts")
        && record.multipart.is_some()
        && let ObjectData::Segments(segs) = &record.data
    {
        let max = match req.header("x-amz-max-parts") {
            None => 1000,
            Some(v) => v
                .parse::<usize>()
                .map_err(|_| ApiError::InvalidArgument("Invalid x-amz-max-parts".into()))?,
        };
        let marker: u32 = match req.header("x-amz-part-number-marker") {
            None => 0,
            Some(v) => v.parse().map_err(|_| {
                ApiError::InvalidArgument("Invalid x-amz-part-number-marker".into())
            })?,
        };
        let after: Vec<_> = segs.iter().filter(|s| s.part_number > marker).collect();
        let page: Vec<_> = after.iter().take(max).collect();
        let truncated = after.len() > page.len();
        w.open("ObjectParts")
            .elem("PartsCount", &segs.len().to_string())
            .elem("PartNumberMarker", &marker.to_string());
        if let Some(last) = page.last() {
            w.elem("NextPartNumberMarker", &last.part_number.to_string());
        }
        w.elem("MaxParts", &max.to_string())
            .elem("IsTruncated", if truncated { "true" } else { "false" });
        // As S3 for general purpose buckets: Part elements only for an object with an additional checksum.
        for s in page.into_iter().filter(|_| record.checksum.is_some()) {
            w.open("Part")
                .elem("PartNumber", &s.part_number.to_string())
                .elem("Size", &s.size.to_string());
            if let (Some(c), Some(raw)) = (&record.checksum, &s.checksum) {
                w.elem(&format!("Checksum{}", c.algorithm.name()), &B64.encode(raw));
            }
            w.close("Part");
        }
        w.close("ObjectParts");
    }
    if has("StorageClass") {
        w.elem("StorageClass", &record.storage_class);
    }
    if has("ObjectSize") {
        w.elem("ObjectSize", &record.size.to_string());
    }
    let mut resp = xml(StatusCode::OK, w.finish("GetObjectAttributesResponse"));
    set_header(
        &mut resp,
        "last-modified",
        &crate::conditional::http_date(record_time(&record)),
    );
    Ok(resp)
}
