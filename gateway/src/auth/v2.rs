//! AWS Signature Version 2: `Authorization: AWS <access key>:<signature>`, and presigned URLs carrying
//! `AWSAccessKeyId`, `Expires` and `Signature`.
//!
//! Why a server that speaks SigV4 takes it: boto3 and aws-cli v1 (botocore) still presign URLs for `us-east-1`
//! with Version 2 unless told otherwise (`aws s3 presign`, `generate_presigned_url`), and `us-east-1` is the
//! region most people give a self-hosted endpoint. Those URLs would otherwise reach the server as anonymous
//! requests and fail with a puzzling AccessDenied.
//!
//! The signature is a base64 HMAC-SHA1 over the StringToSign of AWS's "Signing and authenticating REST requests
//! (AWS signature version 2)": the method, Content-MD5, Content-Type, the date (the `Date` header; empty when
//! `x-amz-date` is sent, which then signs as an amz header; `Expires` in a presigned URL), the `x-amz-*` headers,
//! and the resource: `/bucket` for a virtual-hosted request, the path as sent, and the subresources of the query
//! that S3 signs. The body is never signed. A query parameter that is neither signed nor a known harmless
//! option is refused ([`check_query`]): operations S3 added after Version 2 (`?retention`, `?publicAccessBlock`,
//! ...) are outside the signed resource and need SigV4. The admin API takes SigV4 only; a bucket policy can
//! refuse Version 2 altogether (`s3:signatureversion`, see [`super::Signing`]).
//!
//! What Version 2 cannot protect, by its design: it signs no body (a captured DeleteObjects or configuration PUT
//! can be replayed with another body within the 15-minute skew unless Content-MD5 was signed), and a signed
//! value can be split where it holds `&` (a URL presigned with `response-content-disposition=...&versionId=V`
//! in its value verifies with the `&` unencoded, which the router reads as a second parameter; such a URL made
//! honestly is refused here, see [`hides_a_subresource`]).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::request::Parts;
use sha1::Sha1;
use subtle::ConstantTimeEq;

use super::canonical::{self, X_AMZ_CONTENT_SHA256, X_AMZ_DATE};
use super::{AuthOutcome, ContentSha256, CredentialStore, Payload, Signing};
use crate::error::{ApiError, ApiResult};

/// The scheme word of a Version 2 Authorization header.
pub(crate) const SCHEME: &str = "AWS";

const ACCESS_KEY_ID: &str = "AWSAccessKeyId";
const SIGNATURE: &str = "Signature";
const EXPIRES: &str = "Expires";

/// The query parameters that are part of the signed resource (botocore's list, which holds AWS's): a request's
/// other parameters (`prefix`, `max-keys`, ...) are not signed in Version 2.
const SIGNED_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "cors",
    "delete",
    "inventory",
    "lifecycle",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "partNumber",
    "policy",
    "replication",
    "requestPayment",
    "response-cache-control",
    "response-content-disposition",
    "response-content-encoding",
    "response-content-language",
    "response-content-type",
    "response-expires",
    "restore",
    "select",
    "select-type",
    "storageClass",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// Query parameters that select nothing the signature must cover: listing options, the auth parameters
/// themselves, and what botocore copies from headers into a presigned URL. With [`SIGNED_SUBRESOURCES`], the only
/// parameters a Version 2 request may carry: any other (`?retention`, `?publicAccessBlock`, ... which S3 added
/// after Version 2 and botocore does not sign) could pick an operation the signature does not name, so that a
/// presigned upload would also sign `PUT ?retention` on the same key. Those operations need SigV4.
const UNSIGNED_PARAMETERS: &[&str] = &[
    ACCESS_KEY_ID,
    SIGNATURE,
    EXPIRES,
    "continuation-token",
    "content-md5",
    "content-type",
    "delimiter",
    "encoding-type",
    "fetch-owner",
    "key-marker",
    "list-type",
    "marker",
    "max-keys",
    "max-parts",
    "max-uploads",
    "part-number-marker",
    "prefix",
    "start-after",
    "upload-id-marker",
    "version-id-marker",
    "x-id",
];

/// Refuses a query the signature cannot be trusted for: a parameter that is neither signed nor harmless (see
/// [`UNSIGNED_PARAMETERS`]), or a signed value that hides another signed parameter (`partNumber=1%26uploadId%3DU`
/// prints into the StringToSign like `partNumber=1&uploadId=U`, but the router sees no upload id and would take
/// a presigned UploadPart for a PutObject).
fn check_query(query: Option<&str>) -> ApiResult<()> {
    for (name, value) in query_pairs(query) {
        if SIGNED_SUBRESOURCES.contains(&name.as_str()) {
            if value.is_some_and(|v| hides_a_subresource(&v)) {
                return Err(ApiError::SignatureDoesNotMatch);
            }
        } else if !UNSIGNED_PARAMETERS.contains(&name.as_str()) && !name.starts_with("x-amz-") {
            return Err(ApiError::InvalidRequest(
                "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256."
                    .into(),
            ));
        }
    }
    Ok(())
}

/// Whether a decoded value holds `&name` for a signed subresource `name` (followed by `=`, `&` or its end).
fn hides_a_subresource(value: &[u8]) -> bool {
    value.split(|&b| b == b'&').skip(1).any(|piece| {
        let name = piece.split(|&b| b == b'=').next().unwrap_or_default();
        SIGNED_SUBRESOURCES.iter().any(|s| s.as_bytes() == name)
    })
}

/// Whether the query attempts Version 2 query auth (`AWSAccessKeyId` or `Signature` counts, so a URL that lost
/// the other or `Expires` is reported as incomplete rather than served as anonymous).
pub(crate) fn has_query_auth(query: Option<&str>) -> bool {
    query.is_some_and(|q| {
        canonical::decoded_query_pairs(Some(q))
            .iter()
            .any(|(name, _)| name == ACCESS_KEY_ID || name == SIGNATURE)
    })
}

/// What follows the scheme in a Version 2 Authorization header (`AWS <access key>:<signature>`); `None` for any
/// other header.
pub(crate) fn header_credentials(value: &http::HeaderValue) -> Option<&str> {
    let (scheme, credentials) = value.to_str().ok()?.trim().split_once([' ', '\t'])?;
    (scheme == SCHEME).then_some(credentials)
}

/// Authenticates `Authorization: AWS <access key>:<signature>` (`credentials` is what follows `AWS `).
/// `host_bucket` is the bucket the Host header names in virtual-hosted style.
pub(crate) fn authenticate_header(
    parts: &Parts,
    credentials: &str,
    creds: &dyn CredentialStore,
    host_bucket: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<AuthOutcome> {
    let (access_key, signature) = credentials
        .trim()
        .split_once(':')
        .filter(|(key, signature)| !key.is_empty() && !signature.is_empty())
        .ok_or_else(|| {
            ApiError::InvalidArgument(
                "AWS authorization header is invalid.  Expected AwsAccessKeyId:signature".into(),
            )
        })?;
    let amz_date = header_str(&parts.headers, X_AMZ_DATE)?;
    let date = header_str(&parts.headers, http::header::DATE.as_str())?;
    let time = amz_date.or(date).and_then(parse_date).ok_or_else(|| {
        ApiError::AccessDeniedWithMessage(
            "AWS authentication requires a valid Date or x-amz-date header".into(),
        )
    })?;
    check_query(parts.uri.query())?;
    let (identity, secret) = creds
        .lookup(access_key)
        .ok_or(ApiError::InvalidAccessKeyId)?;
    super::check_skew(time, now)?;
    let payload = payload(&parts.headers)?;
    // With x-amz-date the date slot is empty (AWS's rule); some clients sign their Date header there as well.
    let slots: &[&str] = match (amz_date, date) {
        (Some(_), Some(date)) => &["", date],
        (Some(_), None) => &[""],
        (None, date) => &[date.unwrap_or_default()],
    };
    if !slots
        .iter()
        .any(|date| signed(parts, &secret, date, host_bucket, signature))
    {
        return Err(ApiError::SignatureDoesNotMatch);
    }
    super::outcome(
        Some(identity),
        Some(Signing::V2_HEADER),
        payload,
        &parts.headers,
    )
}

/// Authenticates a Version 2 presigned URL.
pub(crate) fn authenticate_query(
    parts: &Parts,
    creds: &dyn CredentialStore,
    host_bucket: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<AuthOutcome> {
    let params = canonical::decoded_query_pairs(parts.uri.query());
    let get = |name: &str| -> ApiResult<&str> {
        canonical::only_value(&params, name).map_err(|_| {
            ApiError::AccessDeniedWithMessage(
                "Query-string authentication requires the Signature, Expires and AWSAccessKeyId parameters"
                    .into(),
            )
        })
    };
    let (access_key, signature, expires) = (get(ACCESS_KEY_ID)?, get(SIGNATURE)?, get(EXPIRES)?);
    let expires_at = expires
        .parse::<i64>()
        .ok()
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| {
            ApiError::AccessDeniedWithMessage(format!(
                "Invalid date (should be seconds since epoch): {expires}"
            ))
        })?;
    check_query(parts.uri.query())?;
    let (identity, secret) = creds
        .lookup(access_key)
        .ok_or(ApiError::InvalidAccessKeyId)?;
    if now > expires_at {
        return Err(ApiError::ExpiredPresignedRequest);
    }
    let payload = payload(&parts.headers)?;
    if !signed(parts, &secret, expires, host_bucket, signature) {
        return Err(ApiError::SignatureDoesNotMatch);
    }
    super::outcome(
        Some(identity),
        Some(Signing::V2_QUERY),
        payload,
        &parts.headers,
    )
}

/// Verifies a Version 2 browser-upload form (`AWSAccessKeyId`, `signature`, `policy` fields: what boto3's
/// `generate_presigned_post` makes in us-east-1): `signature` is the base64 HMAC-SHA1 of the base64 policy.
pub fn authenticate_form(
    access_key: &str,
    signature: &str,
    policy: &str,
    creds: &dyn CredentialStore,
) -> ApiResult<super::Identity> {
    let (identity, secret) = creds
        .lookup(access_key)
        .ok_or(ApiError::InvalidAccessKeyId)?;
    if !signature_matches(&secret, policy.as_bytes(), signature) {
        return Err(ApiError::SignatureDoesNotMatch);
    }
    Ok(identity)
}

/// A header's value, `None` when absent; an error when it is not text.
fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> ApiResult<Option<&'a str>> {
    headers
        .get(name)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::InvalidArgument(format!("the {name} header is not ASCII")))
        })
        .transpose()
}

/// An HTTP date: IMF-fixdate (what botocore sends), RFC 850 or asctime, or RFC 2822 with a numeric zone (what
/// AWS's own examples show).
fn parse_date(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    canonical::parse_http_date(value).or_else(|| {
        DateTime::parse_from_rfc2822(value)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    })
}

/// How the body is checked: Version 2 signs no body, but an x-amz-content-sha256 a client sends is still
/// enforced, and aws-chunked framing without chunk signatures is still decoded (chunk signatures need SigV4).
fn payload(headers: &HeaderMap) -> ApiResult<Payload> {
    let content = header_str(headers, X_AMZ_CONTENT_SHA256)?
        .map(ContentSha256::parse)
        .transpose()?;
    ContentSha256::unchunked_payload(
        content,
        "signed streaming payloads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) require AWS Signature Version 4",
    )
}

/// The paths a client may have signed as the resource: `/bucket` before the path of a virtual-hosted request;
/// for a path-style request that names only a bucket, `/bucket/` (what botocore signs, as for a virtual-hosted
/// request of the bucket) and the path as sent.
fn resource_paths(parts: &Parts, host_bucket: Option<&str>) -> Vec<String> {
    let path = parts.uri.path();
    match host_bucket {
        Some(bucket) => vec![format!("/{bucket}{path}")],
        // Decoded, as the router reads it: `/b%2Fk` names object `k`, not a bare bucket.
        None if path.len() > 1 && !decode(&path[1..]).contains(&b'/') => {
            vec![format!("{path}/"), path.to_owned()]
        }
        None => vec![path.to_owned()],
    }
}

/// Whether `signature` signs the request with `date` in the date slot, for any of its resource paths.
fn signed(
    parts: &Parts,
    secret: &str,
    date: &str,
    host_bucket: Option<&str>,
    signature: &str,
) -> bool {
    resource_paths(parts, host_bucket).iter().any(|path| {
        let string_to_sign = string_to_sign(parts, date, parts.uri.query(), path);
        signature_matches(secret, &string_to_sign, signature)
    })
}

/// The StringToSign, with `date` in the date slot and `path` as the resource's path. Built as bytes, as header
/// values may not be UTF-8 and must sign as sent.
fn string_to_sign(parts: &Parts, date: &str, query: Option<&str>, path: &str) -> Vec<u8> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map_or(&[][..], |v| v.as_bytes().trim_ascii())
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b'\n');
    out.extend_from_slice(header("content-md5"));
    out.push(b'\n');
    out.extend_from_slice(header("content-type"));
    out.push(b'\n');
    out.extend_from_slice(date.as_bytes());
    out.push(b'\n');
    for (name, value) in amz_headers(&parts.headers) {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        out.extend_from_slice(&value);
        out.push(b'\n');
    }
    out.extend_from_slice(path.as_bytes());
    let mut subresources: Vec<(String, Option<Vec<u8>>)> = query_pairs(query)
        .filter(|(name, _)| SIGNED_SUBRESOURCES.contains(&name.as_str()))
        .collect();
    // A stable sort by name, as botocore's: repeated names keep their order.
    subresources.sort_by(|a, b| a.0.cmp(&b.0));
    for (i, (name, value)) in subresources.iter().enumerate() {
        out.push(if i == 0 { b'?' } else { b'&' });
        out.extend_from_slice(name.as_bytes());
        if let Some(value) = value {
            out.push(b'=');
            out.extend_from_slice(value);
        }
    }
    out
}

/// The query's parameters, decoded as the router decodes them (`+` is a space): the name as text, the value
/// as bytes (`None` for a bare name such as `?acl`).
fn query_pairs(query: Option<&str>) -> impl Iterator<Item = (String, Option<Vec<u8>>)> + '_ {
    query
        .unwrap_or("")
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece
                .split_once('=')
                .map_or((piece, None), |(n, v)| (n, Some(v)));
            let name = String::from_utf8_lossy(&decode(name)).into_owned();
            (name, value.map(decode))
        })
}

fn decode(s: &str) -> Vec<u8> {
    percent_encoding::percent_decode_str(&s.replace('+', " ")).collect()
}

/// The `x-amz-*` headers, names lower-cased and sorted, a repeated header's values joined with commas, each
/// value trimmed (as botocore signs them; HTTP/1.1 as hyper reads it has no folded lines to unfold).
fn amz_headers(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = Vec::new();
    for name in headers.keys().filter(|n| n.as_str().starts_with("x-amz-")) {
        let values: Vec<&[u8]> = headers
            .get_all(name)
            .iter()
            .map(|v| v.as_bytes().trim_ascii())
            .collect();
        out.push((name.as_str().to_owned(), values.join(&b',')));
    }
    out.sort();
    out
}

/// Whether `provided` (base64) is the HMAC-SHA1 of `string_to_sign` under `secret`, compared in constant time.
fn signature_matches(secret: &str, string_to_sign: &[u8], provided: &str) -> bool {
    let expected = sign(secret, string_to_sign);
    expected.as_bytes().ct_eq(provided.trim().as_bytes()).into()
}

/// The base64 HMAC-SHA1 of `string_to_sign` under `secret`.
fn sign(secret: &str, string_to_sign: impl AsRef<[u8]>) -> String {
    let mut mac = <Hmac<Sha1> as Mac>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts any key length");
    mac.update(string_to_sign.as_ref());
    BASE64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        parse_date(s).unwrap()
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    #[test]
    fn aws_documentation_example_virtual_hosted_get() {
        // "Signing and authenticating REST requests (AWS signature version 2)", the first example.
        let date = "Tue, 27 Mar 2007 19:36:42 +0000";
        let p = request(
            "GET",
            "/photos/puppy.jpg",
            &[
                ("host", "awsexamplebucket1.us-west-1.s3.amazonaws.com"),
                ("date", date),
            ],
        );
        let string = string_to_sign(&p, date, None, "/awsexamplebucket1/photos/puppy.jpg");
        assert_eq!(
            resource_paths(&p, Some("awsexamplebucket1")),
            ["/awsexamplebucket1/photos/puppy.jpg"]
        );
        assert_eq!(
            text(string.clone()),
            format!("GET\n\n\n{date}\n/awsexamplebucket1/photos/puppy.jpg")
        );
        assert_eq!(sign(SECRET, string), "qgk2+6Sv9/oM7G3qLEjTH1a1l1g=");
        let out = authenticate_header(
            &p,
            &format!("{AK}:qgk2+6Sv9/oM7G3qLEjTH1a1l1g="),
            &Store,
            Some("awsexamplebucket1"),
            at(date),
        )
        .unwrap();
        assert_eq!(out.identity.unwrap().access_key, AK);
        // The documentation's path-style example, of bucket johnsmith.
        let p = request(
            "GET",
            "/johnsmith/photos/puppy.jpg",
            &[("date", "Tue, 27 Mar 2007 19:36:42 +0000")],
        );
        assert_eq!(
            sign(SECRET, string_to_sign(&p, date, None, p.uri.path())),
            "bWq2s1WEIj+Ydj0vQ697zp+IXMU="
        );
    }

    #[test]
    fn a_bucket_named_in_the_path_signs_with_or_without_its_slash() {
        let date = "Tue, 27 Mar 2007 19:42:41 GMT";
        let p = request("GET", "/pre?list-type=2&prefix=v2%2F", &[("date", date)]);
        assert_eq!(resource_paths(&p, None), ["/pre/", "/pre"]);
        for path in ["/pre/", "/pre"] {
            let signature = sign(SECRET, format!("GET\n\n\n{date}\n{path}"));
            let r = authenticate_header(&p, &format!("{AK}:{signature}"), &Store, None, at(date));
            assert!(r.is_ok(), "{path}");
        }
        let separator = request("GET", "/b%2Fk", &[]);
        assert_eq!(resource_paths(&separator, None), ["/b%2Fk"]);
        let root = request("GET", "/", &[]);
        assert_eq!(resource_paths(&root, None), ["/"]);
        assert_eq!(resource_paths(&root, Some("b")), ["/b/"]);
    }

    #[test]
    fn only_signed_subresources_are_in_the_resource_sorted_and_decoded() {
        let p = request("GET", "/b/k", &[]);
        let query =
            Some("versionId=a%2Fb&prefix=x&acl&response-content-type=text%2Fplain&max-keys=5");
        assert_eq!(
            text(string_to_sign(&p, "1", query, "/b/k")),
            "GET\n\n\n1\n/b/k?acl&response-content-type=text/plain&versionId=a/b"
        );
        // `+` is a space, as the router reads it.
        let query = Some("response-content-type=a+b%2Bc");
        assert_eq!(
            text(string_to_sign(&p, "1", query, "/b/k")),
            "GET\n\n\n1\n/b/k?response-content-type=a b+c"
        );
    }

    #[test]
    fn amz_headers_are_lower_cased_sorted_joined_and_trimmed() {
        let p = request(
            "PUT",
            "/b/k",
            &[
                ("X-Amz-Meta-B", " two "),
                ("x-amz-meta-a", " one\t  line "),
                ("x-amz-meta-b", "three"),
                ("Content-Type", "text/plain"),
                ("Content-MD5", "abc="),
                ("x-not-amz", "no"),
            ],
        );
        // Inner white space stays, as botocore signs it.
        assert_eq!(
            text(string_to_sign(&p, "D", None, "/b/k")),
            "PUT\nabc=\ntext/plain\nD\nx-amz-meta-a:one\t  line\nx-amz-meta-b:two,three\n/b/k"
        );
        // Bytes that are not UTF-8 sign as sent, not as a replacement character.
        let mut latin = request("PUT", "/b/k", &[]);
        latin.headers.insert(
            "x-amz-meta-c",
            http::HeaderValue::from_bytes(b"\xfe").unwrap(),
        );
        let mut other = request("PUT", "/b/k", &[]);
        other.headers.insert(
            "x-amz-meta-c",
            http::HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        assert_ne!(
            string_to_sign(&latin, "D", None, "/b/k"),
            string_to_sign(&other, "D", None, "/b/k")
        );
    }

    #[test]
    fn header_auth_checks_date_key_and_signature() {
        let date = "Tue, 27 Mar 2007 19:36:42 GMT";
        let p = request("GET", "/johnsmith/photos/puppy.jpg", &[("date", date)]);
        let good = sign(SECRET, string_to_sign(&p, date, None, p.uri.path()));
        let now = at(date);
        assert!(authenticate_header(&p, &format!("{AK}:{good}"), &Store, None, now).is_ok());
        let wrong = authenticate_header(&p, &format!("{AK}:AAAA{good}"), &Store, None, now);
        assert!(matches!(wrong, Err(ApiError::SignatureDoesNotMatch)));
        let unknown = authenticate_header(&p, &format!("AKIDOTHER:{good}"), &Store, None, now);
        assert!(matches!(unknown, Err(ApiError::InvalidAccessKeyId)));
        let late = now + chrono::TimeDelta::minutes(16);
        let skewed = authenticate_header(&p, &format!("{AK}:{good}"), &Store, None, late);
        assert!(matches!(skewed, Err(ApiError::RequestTimeTooSkewed)));
        for bad in ["", "nocolon", ":sig", "key:"] {
            let r = authenticate_header(&p, bad, &Store, None, now);
            assert!(matches!(r, Err(ApiError::InvalidArgument(_))), "{bad:?}");
        }
        let undated = request("GET", "/johnsmith/photos/puppy.jpg", &[]);
        let r = authenticate_header(&undated, &format!("{AK}:{good}"), &Store, None, now);
        assert!(matches!(r, Err(ApiError::AccessDeniedWithMessage(_))));
    }

    #[test]
    fn x_amz_date_empties_the_date_slot_and_signs_as_an_amz_header() {
        let amz = "Tue, 27 Mar 2007 21:20:26 +0000";
        let p = request(
            "DELETE",
            "/johnsmith/photos/puppy.jpg",
            &[
                ("date", "Tue, 27 Mar 2007 21:20:27 +0000"),
                ("x-amz-date", amz),
            ],
        );
        let string = string_to_sign(&p, "", None, p.uri.path());
        assert_eq!(
            text(string.clone()),
            format!("DELETE\n\n\n\nx-amz-date:{amz}\n/johnsmith/photos/puppy.jpg")
        );
        let signature = sign(SECRET, string);
        assert!(
            authenticate_header(&p, &format!("{AK}:{signature}"), &Store, None, at(amz)).is_ok()
        );
        // Signed with the Date header in the slot instead (as some clients do): also taken.
        let signature = sign(
            SECRET,
            string_to_sign(&p, "Tue, 27 Mar 2007 21:20:27 +0000", None, p.uri.path()),
        );
        assert!(
            authenticate_header(&p, &format!("{AK}:{signature}"), &Store, None, at(amz)).is_ok()
        );
    }

    #[test]
    fn presigned_url_as_botocore_makes_it() {
        // botocore's HmacV1QueryAuth for GET /pre/a/b.txt, Expires 1796505403, AWS's example credentials.
        let signature = sign(SECRET, "GET\n\n\n1796505403\n/pre/a/b.txt");
        let encoded = signature
            .replace('+', "%2B")
            .replace('/', "%2F")
            .replace('=', "%3D");
        let uri =
            format!("/pre/a/b.txt?AWSAccessKeyId={AK}&Signature={encoded}&Expires=1796505403");
        let p = request("GET", &uri, &[]);
        let before = DateTime::from_timestamp(1_796_505_000, 0).unwrap();
        let out = authenticate_query(&p, &Store, None, before).unwrap();
        assert_eq!(out.identity.unwrap().access_key, AK);
        let after = DateTime::from_timestamp(1_796_505_404, 0).unwrap();
        assert!(matches!(
            authenticate_query(&p, &Store, None, after),
            Err(ApiError::ExpiredPresignedRequest)
        ));
        // Any other method, path or subresource is another request.
        for other in [
            request("PUT", &uri, &[]),
            request("GET", &uri.replace("/pre/a/b.txt?", "/pre/a/c.txt?"), &[]),
            request("GET", &format!("{uri}&acl"), &[]),
        ] {
            assert!(matches!(
                authenticate_query(&other, &Store, None, before),
                Err(ApiError::SignatureDoesNotMatch)
            ));
        }
        // Parameters S3 does not sign may be added.
        let extra = request("GET", &format!("{uri}&x-id=GetObject"), &[]);
        assert!(authenticate_query(&extra, &Store, None, before).is_ok());
    }

    #[test]
    fn operations_newer_than_version_2_need_sigv4() {
        let date = "Tue, 27 Mar 2007 19:36:42 GMT";
        // A presigned PUT (an upload) must not carry over to PUT ?retention on the same object.
        let signature = sign(SECRET, "PUT\n\n\n1796505403\n/b/k");
        let query = format!(
            "AWSAccessKeyId={AK}&Signature={}&Expires=1796505403",
            signature.replace('+', "%2B").replace('/', "%2F")
        );
        let before = DateTime::from_timestamp(1_796_505_000, 0).unwrap();
        assert!(
            authenticate_query(
                &request("PUT", &format!("/b/k?{query}"), &[]),
                &Store,
                None,
                before
            )
            .is_ok()
        );
        for operation in [
            "retention",
            "legal-hold",
            "publicAccessBlock",
            "ownershipControls",
            "policyStatus",
            "attributes",
            "encryption",
            "intelligent-tiering",
            "anything-new",
        ] {
            let p = request("PUT", &format!("/b/k?{operation}&{query}"), &[]);
            let r = authenticate_query(&p, &Store, None, before);
            assert!(matches!(r, Err(ApiError::InvalidRequest(_))), "{operation}");
            let p = request("GET", &format!("/b?{operation}"), &[("date", date)]);
            let r = authenticate_header(&p, &format!("{AK}:x"), &Store, None, at(date));
            assert!(matches!(r, Err(ApiError::InvalidRequest(_))), "{operation}");
        }
    }

    #[test]
    fn a_signed_value_may_not_hide_another_signed_parameter() {
        // botocore's presigned UploadPart signs `?partNumber=1&uploadId=U`; the same bytes with the `&` encoded
        // would reach the router as a PutObject.
        let signature = sign(SECRET, "PUT\n\n\n1796505403\n/b/k?partNumber=1&uploadId=U");
        let auth = format!(
            "AWSAccessKeyId={AK}&Signature={}&Expires=1796505403",
            signature
                .replace('+', "%2B")
                .replace('/', "%2F")
                .replace('=', "%3D")
        );
        let before = DateTime::from_timestamp(1_796_505_000, 0).unwrap();
        let honest = request("PUT", &format!("/b/k?partNumber=1&uploadId=U&{auth}"), &[]);
        assert!(authenticate_query(&honest, &Store, None, before).is_ok());
        let merged = request(
            "PUT",
            &format!("/b/k?partNumber=1%26uploadId%3DU&{auth}"),
            &[],
        );
        assert!(matches!(
            authenticate_query(&merged, &Store, None, before),
            Err(ApiError::SignatureDoesNotMatch)
        ));
        assert!(hides_a_subresource(b"x&versionId=3"));
        assert!(hides_a_subresource(b"x&acl"));
        assert!(!hides_a_subresource(b"attachment; filename=\"a&b.csv\""));
    }

    #[test]
    fn forms_sign_their_policy() {
        let policy = "eyJleHBpcmF0aW9uIjoiMjAzMC0wMS0wMVQwMDowMDowMFoifQ==";
        let signature = sign(SECRET, policy);
        assert_eq!(
            authenticate_form(AK, &signature, policy, &Store)
                .unwrap()
                .access_key,
            AK
        );
        assert!(matches!(
            authenticate_form(AK, &signature, "eyJ9", &Store),
            Err(ApiError::SignatureDoesNotMatch)
        ));
        assert!(matches!(
            authenticate_form("NOBODY", &signature, policy, &Store),
            Err(ApiError::InvalidAccessKeyId)
        ));
    }

    #[test]
    fn presigned_url_parameters_must_be_whole() {
        let now = DateTime::from_timestamp(1_000, 0).unwrap();
        for uri in [
            format!("/b/k?AWSAccessKeyId={AK}&Signature=x"),
            format!("/b/k?AWSAccessKeyId={AK}&Expires=2000"),
            "/b/k?Signature=x&Expires=2000".to_owned(),
            format!("/b/k?AWSAccessKeyId={AK}&Signature=x&Signature=y&Expires=2000"),
            format!("/b/k?AWSAccessKeyId={AK}&Signature=x&Expires=soon"),
        ] {
            let r = authenticate_query(&request("GET", &uri, &[]), &Store, None, now);
            assert!(
                matches!(r, Err(ApiError::AccessDeniedWithMessage(_))),
                "{uri}"
            );
        }
        assert!(has_query_auth(Some("AWSAccessKeyId=a")));
        assert!(has_query_auth(Some("x=1&Signature=a")));
        assert!(!has_query_auth(Some("Expires=1&prefix=a")));
        assert!(!has_query_auth(None));
    }
}
