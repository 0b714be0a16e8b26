//! POST Object: browser-based uploads with an HTML form (multipart/form-data) posted to the bucket URL, signed
//! with SigV4 over a policy document instead of the request head.
//!
//! The form fields before `file` are read (bounded: [`MAX_FIELD`] per field, [`MAX_PRE_DATA`] in all); then the
//! signature is verified ([`crate::auth::authenticate_form`]), the policy checked ([`crate::post_policy`]), the
//! upload authorised as `s3:PutObject` for the signer (the request head is unsigned, so the router leaves this
//! decision to the handler), and the `file` part streamed into the same write path as
//! PutObject, never buffered. Fields after `file` are ignored, as AWS does.

use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;
use hyper::body::Incoming;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use strata_storage::{BodyStream, BoxError, Condition, Digests, ObjectRecord, PutOptions};

use super::object::{MAX_USER_META, Pairs, validate_key, version_header};
use super::{Ctx, Req, Resp, empty, raw_stream, set_header, xml};
use crate::access;
use crate::auth::{FormSignature, Identity, Signing, authenticate_form, authenticate_form_v2};
use crate::error::{ApiError, ApiResult, xml_escape};
use crate::post_policy::PostPolicy;

/// Largest single form field before the file (the policy is the big one).
const MAX_FIELD: u64 = 20 * 1024;
/// Largest total of the form fields before the file.
const MAX_PRE_DATA: usize = 64 * 1024;
/// Most form fields before the file.
const MAX_FIELDS: usize = 128;
/// Form fields stored as the object's representation headers.
const STORED_FIELDS: [&str; 5] = [
    "content-type",
    "cache-control",
    "content-disposition",
    "content-encoding",
    "expires",
];
/// Characters escaped in the redirect's query values.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// Characters escaped in the Location's key.
const KEY_PATH: &AsciiSet = &QUERY_VALUE.remove(b'/');

/// Allowed file sizes in bytes, `(min, max)`, from a content-length-range condition.
type SizeRange = (u64, u64);

/// The form fields before the file (lowercase names) and the file part.
struct Form {
    fields: Vec<(String, String)>,
    file: multer::Field<'static>,
}

impl Form {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, name: &str) -> ApiResult<&str> {
        self.get(name).ok_or_else(|| {
            ApiError::InvalidArgument(format!(
                "Bucket POST must contain a field named '{name}'.  If it is specified, please check the order of the fields."
            ))
        })
    }
}

/// POST /bucket (multipart/form-data)
pub async fn handle_post_object(ctx: &Ctx, req: Req, bucket: &str) -> ApiResult<Resp> {
    let Req {
        parts, body, env, ..
    } = req;
    let mut form = read_form(ctx, &parts, body).await?;
    let filename = form.file.file_name().unwrap_or_default().to_owned();
    let key = form.required("key")?.replace("${filename}", &filename);
    validate_key(&key)?;
    if let Some(k) = form.fields.iter_mut().find(|(n, _)| n == "key") {
        k.1 = key.clone();
    }
    let (identity, signing, range) = check_signature_and_policy(ctx, &form, bucket)?;
    let env = env
        .with_signing(signing)
        // A form names the x-amz-acl header's value `acl`; the other keys by their header names.
        .with_header_keys(|name| form.get(if name == "x-amz-acl" { "acl" } else { name }));
    if form.get("tagging").is_some() {
        return Err(ApiError::NotImplemented);
    }
    access::authorize(
        ctx,
        identity.as_ref(),
        "s3:PutObject",
        bucket,
        Some(&key),
        &env,
    )
    .await?;
    let owner = match &identity {
        Some(id) => id.access_key.clone(),
        None => ctx.engine.bucket(bucket).await?.owner,
    };
    let (mut headers, user_meta) = stored_fields(&form.fields)?;
    let caller = (identity.as_ref(), &env);
    let acl = super::acl::form_acl_for_write(ctx, caller, bucket, &key, form.get("acl")).await?;
    super::acl::store_object_acl(&mut headers, acl);
    let opts = PutOptions {
        headers,
        user_meta,
        tags: Vec::new(),
        checksum: None,
        content_length: None,
        condition: Condition::None,
        owner,
        storage_class: form
            .get("x-amz-storage-class")
            .unwrap_or_default()
            .to_owned(),
        lock: None,
    };
    let (min, max) = range.unwrap_or((0, u64::MAX));
    let max = max.min(ctx.engine.settings().max_put_size);
    let md5 = content_md5(form.get("content-md5"))?;
    let fields = std::mem::take(&mut form.fields);
    let body = file_body(form.file, max);
    let verify = move |d: &Digests| {
        if d.len < min {
            return Err(Box::new(ApiError::EntityTooSmall) as BoxError);
        }
        if md5.is_some_and(|m| m != d.md5) {
            return Err(Box::new(ApiError::BadDigest) as BoxError);
        }
        Ok(())
    };
    let record = ctx
        .engine
        .put_object(bucket, &key, opts, body, verify)
        .await?;
    Ok(respond(&parts, &fields, bucket, &key, &record))
}

/// Reads the form up to and including the head of the `file` part.
async fn read_form(
    ctx: &Ctx,
    parts: &http::request::Parts,
    body: Option<Incoming>,
) -> ApiResult<Form> {
    let boundary = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|ct| multer::parse_boundary(ct).ok())
        .ok_or(ApiError::PreconditionFailed)?;
    let limits = multer::SizeLimit::new()
        .per_field(MAX_FIELD)
        .for_field("file", u64::MAX);
    let constraints = multer::Constraints::new().size_limit(limits);
    let raw = raw_stream(body, ctx.client_timeout);
    let mut multipart = multer::Multipart::with_constraints(raw, boundary, constraints);
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut total = 0;
    loop {
        let field = multipart
            .next_field()
            .await
            .map_err(form_error)?
            .ok_or_else(|| {
                ApiError::InvalidArgument(
                    "POST requires exactly one file upload per request.".into(),
                )
            })?;
        let name = field.name().unwrap_or_default().to_ascii_lowercase();
        if name == "file" {
            return Ok(Form {
                fields,
                file: field,
            });
        }
        let value = field.text().await.map_err(form_error)?;
        total += name.len() + value.len();
        if total > MAX_PRE_DATA || fields.len() >= MAX_FIELDS {
            return Err(ApiError::MaxPostPreDataLengthExceeded);
        }
        if fields.iter().any(|(n, _)| *n == name) {
            return Err(ApiError::InvalidArgument(format!(
                "The form field '{name}' appears more than once."
            )));
        }
        fields.push((name, value));
    }
}

/// Maps a multipart parsing failure: the body's own error (timeout, cut-off) when there is one.
fn form_error(e: multer::Error) -> ApiError {
    match e {
        multer::Error::FieldSizeExceeded { .. } | multer::Error::StreamSizeExceeded { .. } => {
            ApiError::MaxPostPreDataLengthExceeded
        }
        multer::Error::StreamReadFailed(inner) => match inner.downcast::<ApiError>() {
            Ok(api) => *api,
            Err(_) => ApiError::IncompleteBody,
        },
        other => ApiError::MalformedPostRequest(format!(
            "The body of your POST request is not well-formed multipart/form-data: {other}"
        )),
    }
}

/// Verifies the signature (SigV4, or Version 2 when the form has `AWSAccessKeyId` and no `x-amz-algorithm`) and
/// the policy; who signed, how, and the policy's size range. `(None, None, None)` for an unsigned (anonymous)
/// form.
fn check_signature_and_policy(
    ctx: &Ctx,
    form: &Form,
    bucket: &str,
) -> ApiResult<(Option<Identity>, Option<Signing>, Option<SizeRange>)> {
    let Some(policy) = form.get("policy") else {
        if let Some(f) = [
            "x-amz-signature",
            "x-amz-credential",
            "x-amz-algorithm",
            "awsaccesskeyid",
            "signature",
        ]
        .into_iter()
        .find(|f| form.get(f).is_some())
        {
            return Err(ApiError::InvalidArgument(format!(
                "Bucket POST must contain a field named 'policy' when '{f}' is given."
            )));
        }
        return Ok((None, None, None));
    };
    let (identity, signing) = match form.get("awsaccesskeyid") {
        Some(access_key) if form.get("x-amz-algorithm").is_none() => {
            let signature = form.required("signature")?;
            let identity = authenticate_form_v2(access_key, signature, policy, ctx.creds.as_ref())?;
            (identity, Signing::V2_POST)
        }
        _ => {
            let signature = FormSignature {
                algorithm: form.required("x-amz-algorithm")?,
                credential: form.required("x-amz-credential")?,
                date: form.required("x-amz-date")?,
                policy,
                signature: form.required("x-amz-signature")?,
            };
            let identity = authenticate_form(&signature, ctx.creds.as_ref(), &ctx.region)?;
            (identity, Signing::V4_POST)
        }
    };
    let policy = PostPolicy::parse(policy)?;
    policy.check(chrono::Utc::now(), bucket, &form.fields)?;
    Ok((Some(identity), Some(signing), policy.length_range()))
}

/// The optional Content-MD5 field: base64 of 16 bytes, checked against the file before the write commits.
fn content_md5(value: Option<&str>) -> ApiResult<Option<[u8; 16]>> {
    use base64::Engine as _;
    let Some(v) = value else { return Ok(None) };
    let raw = base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .map_err(|_| ApiError::InvalidDigest)?;
    raw.try_into()
        .map(Some)
        .map_err(|_| ApiError::InvalidDigest)
}

/// Representation headers and user metadata from the form fields.
fn stored_fields(fields: &[(String, String)]) -> ApiResult<(Pairs, Pairs)> {
    let headers = fields
        .iter()
        .filter(|(n, _)| STORED_FIELDS.contains(&n.as_str()))
        .cloned()
        .collect();
    let meta: Pairs = fields
        .iter()
        .filter_map(|(n, v)| Some((n.strip_prefix("x-amz-meta-")?.to_owned(), v.clone())))
        .collect();
    if meta.iter().map(|(n, v)| n.len() + v.len()).sum::<usize>() > MAX_USER_META {
        return Err(ApiError::MetadataTooLarge);
    }
    Ok((headers, meta))
}

/// The file part as a storage body that fails with EntityTooLarge past `max` bytes.
fn file_body(file: multer::Field<'static>, max: u64) -> BodyStream {
    let mut seen = 0u64;
    Box::pin(file.map(move |chunk| {
        let chunk: Bytes = chunk.map_err(|e| Box::new(form_error(e)) as BoxError)?;
        seen += chunk.len() as u64;
        if seen > max {
            return Err(Box::new(ApiError::EntityTooLarge) as BoxError);
        }
        Ok(chunk)
    }))
}

/// The success response the form asked for: a 303 redirect, or status 200 / 201 (with a PostResponse
/// document) / 204 (the default).
fn respond(
    parts: &http::request::Parts,
    fields: &[(String, String)],
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
) -> Resp {
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let etag = format!("\"{}\"", record.etag);
    let redirect = get("success_action_redirect")
        .or_else(|| get("redirect"))
        .filter(|u| u.parse::<http::Uri>().is_ok_and(|u| u.scheme().is_some()));
    let mut resp = if let Some(url) = redirect {
        let sep = if url.contains('?') { '&' } else { '?' };
        let enc = |s: &str| utf8_percent_encode(s, QUERY_VALUE).to_string();
        let target = format!(
            "{url}{sep}bucket={}&key={}&etag={}",
            enc(bucket),
            enc(key),
            enc(&etag)
        );
        let mut r = empty(StatusCode::SEE_OTHER);
        set_header(&mut r, "location", &target);
        r
    } else {
        let location = location(parts, bucket, key);
        let mut r = match get("success_action_status") {
            Some("200") => empty(StatusCode::OK),
            Some("201") => {
                // AWS sends this document without the S3 namespace.
                let doc = format!(
                    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<PostResponse><Location>{}</Location>\
                     <Bucket>{}</Bucket><Key>{}</Key><ETag>{}</ETag></PostResponse>",
                    xml_escape(&location),
                    xml_escape(bucket),
                    xml_escape(key),
                    xml_escape(&etag)
                );
                xml(StatusCode::CREATED, doc)
            }
            _ => empty(StatusCode::NO_CONTENT),
        };
        set_header(&mut r, "location", &location);
        r
    };
    set_header(&mut resp, "etag", &etag);
    version_header(&mut resp, record, false);
    resp
}

/// The new object's URL, in the addressing style of the request.
fn location(parts: &http::request::Parts, bucket: &str, key: &str) -> String {
    let host = parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    let key = utf8_percent_encode(key, KEY_PATH);
    if host.starts_with(&format!("{bucket}.")) {
        format!("http://{host}/{key}")
    } else {
        format!("http://{host}/{bucket}/{key}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_become_headers_and_metadata() {
        let fields = vec![
            ("content-type".to_owned(), "image/png".to_owned()),
            ("x-amz-meta-color".to_owned(), "blue".to_owned()),
            ("key".to_owned(), "k".to_owned()),
        ];
        let (h, m) = stored_fields(&fields).unwrap();
        assert_eq!(h, vec![("content-type".to_owned(), "image/png".to_owned())]);
        assert_eq!(m, vec![("color".to_owned(), "blue".to_owned())]);
        let big = vec![("x-amz-meta-a".to_owned(), "x".repeat(3000))];
        assert!(matches!(
            stored_fields(&big),
            Err(ApiError::MetadataTooLarge)
        ));
    }

    #[test]
    fn location_follows_the_addressing_style() {
        let parts = |host: &str| {
            http::Request::builder()
                .header("host", host)
                .body(())
                .unwrap()
                .into_parts()
                .0
        };
        assert_eq!(
            location(&parts("127.0.0.1:9000"), "b", "a b/c"),
            "http://127.0.0.1:9000/b/a%20b/c"
        );
        assert_eq!(
            location(&parts("b.localhost:9000"), "b", "k"),
            "http://b.localhost:9000/k"
        );
    }
}
