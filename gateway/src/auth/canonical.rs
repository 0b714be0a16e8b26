//! The byte-exact pieces of AWS Signature Version 4 as S3 defines them: URI encoding, the canonical request,
//! the string to sign, the signing-key chain, credential scopes and timestamps.
//!
//! Everything here is pure (no clock, no credential lookup) so it can be checked against the published AWS
//! examples directly. The canonical request is built as bytes, not a `String`, because header values may
//! legally carry non-UTF-8 octets and a lossy conversion would change what gets hashed.

use std::borrow::Cow;

use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::request::Parts;
use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{ApiError, ApiResult};

/// The only signing algorithm accepted.
pub(crate) const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// The service name in every S3 credential scope.
pub(crate) const SERVICE: &str = "s3";
/// The last element of every credential scope.
pub(crate) const TERMINATOR: &str = "aws4_request";
/// Payload hash placeholder for bodies that are not hashed.
pub(crate) const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";
/// Hex SHA-256 of the empty string; part of every chunk string to sign.
pub(crate) const EMPTY_SHA256_HEX: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/// ISO 8601 basic format used by x-amz-date and X-Amz-Date.
pub(crate) const AMZ_DATE_FORMAT: &str = "%Y%m%dT%H%M%SZ";
/// The x-amz-content-sha256 header.
pub(crate) const X_AMZ_CONTENT_SHA256: &str = "x-amz-content-sha256";
/// The x-amz-date header.
pub(crate) const X_AMZ_DATE: &str = "x-amz-date";

const HEX_UPPER: &[u8; 16] = b"0123456789ABCDEF";

pub(crate) fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

pub(crate) fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date), region), "s3"), "aws4_request").
pub(crate) fn signing_key(secret: &str, date: &str, region: &str) -> [u8; 32] {
    let mut seed = Vec::with_capacity(4 + secret.len());
    seed.extend_from_slice(b"AWS4");
    seed.extend_from_slice(secret.as_bytes());
    let k_date = hmac_sha256(&seed, date.as_bytes());
    let k_region = hmac_sha256(&k_date, region.as_bytes());
    let k_service = hmac_sha256(&k_region, SERVICE.as_bytes());
    hmac_sha256(&k_service, TERMINATOR.as_bytes())
}

/// Constant-time equality so response timing does not reveal how much of a forged signature was right.
pub(crate) fn signatures_equal(expected: &[u8; 32], provided: &[u8; 32]) -> bool {
    expected.ct_eq(provided).into()
}

/// Parses a 64-hex-digit signature or hash.
pub(crate) fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    if s.len() != 64 {
        return None;
    }
    hex::decode_to_slice(s, &mut out).ok()?;
    Some(out)
}

/// AWS `UriEncode`: RFC 3986 unreserved bytes verbatim, everything else `%XX` with uppercase hex; `/` is kept
/// only in paths.
pub(crate) fn uri_encode(out: &mut String, bytes: &[u8], encode_slash: bool) {
    for &b in bytes {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if !encode_slash => out.push('/'),
            _ => {
                out.push('%');
                out.push(HEX_UPPER[usize::from(b >> 4)] as char);
                out.push(HEX_UPPER[usize::from(b & 0x0f)] as char);
            }
        }
    }
}

/// The path as it arrived, with `/` standing in for an empty one.
pub(crate) fn raw_path(parts: &Parts) -> &str {
    match parts.uri.path() {
        "" => "/",
        p => p,
    }
}

/// The canonical URI: the path percent-decoded once and re-encoded once. S3 does not normalise `.`, `..` or
/// repeated slashes, because they are legal in keys.
pub(crate) fn canonical_uri(raw_path: &str) -> String {
    let decoded: Cow<'_, [u8]> = percent_decode_str(raw_path).into();
    let mut out = String::with_capacity(raw_path.len() + 8);
    uri_encode(&mut out, &decoded, false);
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// The query as `(name, value)` pairs, percent-decoded, in arrival order. Pieces without `=` get an empty value.
pub(crate) fn decoded_query_pairs(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or("")
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (decode_lossy(name), decode_lossy(value))
        })
        .collect()
}

/// Why a query parameter that must appear once does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotOnce {
    Missing,
    Repeated,
}

/// The value of query parameter `name` among `params` (from [`decoded_query_pairs`]), which must appear once.
pub(crate) fn only_value<'a>(
    params: &'a [(String, String)],
    name: &str,
) -> Result<&'a str, NotOnce> {
    let mut values = params
        .iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str());
    match (values.next(), values.next()) {
        (Some(value), None) => Ok(value),
        (None, _) => Err(NotOnce::Missing),
        (Some(_), Some(_)) => Err(NotOnce::Repeated),
    }
}

fn decode_lossy(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

/// The canonical query string: every parameter decoded then `UriEncode`d (with `/` encoded), sorted by name
/// then value. `skip_signature` drops `X-Amz-Signature`, which a presigned URL cannot sign.
pub(crate) fn canonical_query(query: Option<&str>, skip_signature: bool) -> String {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in query
        .unwrap_or("")
        .split('&')
        .filter(|piece| !piece.is_empty())
    {
        let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
        let name: Cow<'_, [u8]> = percent_decode_str(name).into();
        if skip_signature && *name == *b"X-Amz-Signature" {
            continue;
        }
        let value: Cow<'_, [u8]> = percent_decode_str(value).into();
        let mut enc_name = String::with_capacity(name.len());
        uri_encode(&mut enc_name, &name, true);
        let mut enc_value = String::with_capacity(value.len());
        uri_encode(&mut enc_value, &value, true);
        pairs.push((enc_name, enc_value));
    }
    pairs.sort_unstable();
    let mut out = String::new();
    for (i, (name, value)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(name);
        out.push('=');
        out.push_str(value);
    }
    out
}

/// Appends a header value with leading/trailing whitespace removed and inner runs of spaces collapsed.
fn push_trimmed(out: &mut Vec<u8>, value: &[u8]) {
    let is_ws = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ws(b)).unwrap_or(value.len());
    let end = value
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |i| i + 1);
    let mut in_space = false;
    for &b in &value[start..end] {
        if b == b' ' || b == b'\t' {
            if !in_space {
                out.push(b' ');
            }
            in_space = true;
        } else {
            out.push(b);
            in_space = false;
        }
    }
}

/// The lowercase header names from `SignedHeaders` / `X-Amz-SignedHeaders`, in the order given.
pub(crate) fn parse_signed_headers(s: &str) -> Result<Vec<String>, String> {
    let names: Vec<String> = s
        .split(';')
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    if names
        .iter()
        .any(|n| n.is_empty() || !n.bytes().all(is_token_byte))
    {
        return Err(format!(
            "the SignedHeaders value '{s}' is not a ';'-separated list of header names"
        ));
    }
    if !names.iter().any(|n| n == "host") {
        return Err("the host header must be signed".to_owned());
    }
    Ok(names)
}

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Every `x-amz-*` header the client sent must be signed, as S3 requires, or a man in the middle could add
/// one (an ACL, a copy source) to a signed request. x-amz-content-sha256 and x-amz-date are bound into the
/// signature through the payload hash and the string to sign even when not listed.
pub(crate) fn check_amz_headers_signed(headers: &HeaderMap, signed: &[String]) -> ApiResult<()> {
    for name in headers.keys() {
        let name = name.as_str();
        if name.starts_with("x-amz-")
            && name != X_AMZ_CONTENT_SHA256
            && name != X_AMZ_DATE
            && !signed.iter().any(|s| s == name)
        {
            tracing::debug!(
                header = name,
                "rejecting request with an unsigned x-amz-* header"
            );
            return Err(ApiError::AccessDenied);
        }
    }
    Ok(())
}

/// Everything the canonical request needs besides the URI, so the same input can be tried with two URIs.
pub(crate) struct RequestToCheck<'a> {
    pub(crate) parts: &'a Parts,
    pub(crate) canonical_query: String,
    pub(crate) signed_headers: &'a [String],
    pub(crate) payload_hash: &'a str,
}

impl RequestToCheck<'_> {
    /// The canonical request for the given canonical URI.
    pub(crate) fn canonical_request(&self, canonical_uri: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        out.extend_from_slice(self.parts.method.as_str().as_bytes());
        out.push(b'\n');
        out.extend_from_slice(canonical_uri.as_bytes());
        out.push(b'\n');
        out.extend_from_slice(self.canonical_query.as_bytes());
        out.push(b'\n');
        for name in self.signed_headers {
            out.extend_from_slice(name.as_bytes());
            out.push(b':');
            let mut values = self.parts.headers.get_all(name.as_str()).iter().peekable();
            if values.peek().is_none() && name == "host" {
                // HTTP/2 carries the host in :authority, which lands in the URI rather than the header map.
                if let Some(authority) = self.parts.uri.authority() {
                    push_trimmed(&mut out, authority.as_str().as_bytes());
                }
            }
            let mut first = true;
            for value in values {
                if !first {
                    out.push(b',');
                }
                first = false;
                push_trimmed(&mut out, value.as_bytes());
            }
            out.push(b'\n');
        }
        out.push(b'\n');
        for (i, name) in self.signed_headers.iter().enumerate() {
            if i > 0 {
                out.push(b';');
            }
            out.extend_from_slice(name.as_bytes());
        }
        out.push(b'\n');
        out.extend_from_slice(self.payload_hash.as_bytes());
        out
    }

    /// Checks `provided` against the signature over the decoded-and-re-encoded path, then, if that fails and
    /// differs, over the path exactly as received: some clients sign what they put on the wire.
    pub(crate) fn verify(&self, ctx: &SigningContext, provided: &[u8; 32]) -> bool {
        let raw = raw_path(self.parts);
        let canonical = canonical_uri(raw);
        if signatures_equal(
            &ctx.sign_canonical_request(&self.canonical_request(&canonical)),
            provided,
        ) {
            return true;
        }
        canonical != raw
            && signatures_equal(
                &ctx.sign_canonical_request(&self.canonical_request(raw)),
                provided,
            )
    }
}

/// The derived key plus the timestamp and scope that go into every string to sign of one request.
#[derive(Clone)]
pub(crate) struct SigningContext {
    pub(crate) key: [u8; 32],
    pub(crate) amz_date: String,
    pub(crate) scope: String,
}

impl SigningContext {
    pub(crate) fn new(secret: &str, time: DateTime<Utc>, region: &str) -> Self {
        let date = time.format("%Y%m%d").to_string();
        let key = signing_key(secret, &date, region);
        SigningContext {
            key,
            amz_date: time.format(AMZ_DATE_FORMAT).to_string(),
            scope: scope(&date, region),
        }
    }

    pub(crate) fn string_to_sign(&self, canonical_request: &[u8]) -> String {
        format!(
            "{ALGORITHM}\n{}\n{}\n{}",
            self.amz_date,
            self.scope,
            hex::encode(sha256(canonical_request))
        )
    }

    pub(crate) fn sign_canonical_request(&self, canonical_request: &[u8]) -> [u8; 32] {
        hmac_sha256(&self.key, self.string_to_sign(canonical_request).as_bytes())
    }
}

/// `yyyymmdd/region/s3/aws4_request`.
pub(crate) fn scope(date: &str, region: &str) -> String {
    format!("{date}/{region}/{SERVICE}/{TERMINATOR}")
}

/// The parsed `Credential` / `X-Amz-Credential` value.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Credential<'a> {
    pub(crate) access_key: &'a str,
    pub(crate) date: &'a str,
}

/// Parses `AK/yyyymmdd/region/s3/aws4_request` and checks region, service and terminator. Parsed from the
/// right so an access key containing `/` still works. The error is a sentence for the client.
pub(crate) fn parse_credential<'a>(s: &'a str, region: &str) -> Result<Credential<'a>, String> {
    let malformed = || {
        format!(
            "the Credential '{s}' is mal-formed; expecting \"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request\""
        )
    };
    let mut it = s.rsplitn(5, '/');
    let (Some(terminator), Some(service), Some(cred_region), Some(date), Some(access_key)) =
        (it.next(), it.next(), it.next(), it.next(), it.next())
    else {
        return Err(malformed());
    };
    if access_key.is_empty() || date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed());
    }
    if terminator != TERMINATOR {
        return Err(format!(
            "incorrect terminal '{terminator}'; this endpoint uses '{TERMINATOR}'"
        ));
    }
    if service != SERVICE {
        return Err(format!(
            "incorrect service '{service}'; this endpoint belongs to '{SERVICE}'"
        ));
    }
    if cred_region != region {
        return Err(format!(
            "the region '{cred_region}' is wrong; expecting '{region}'"
        ));
    }
    Ok(Credential { access_key, date })
}

/// Parses `20130524T000000Z`. Only the exact 16-character form is accepted (chrono alone would take e.g. a
/// five-digit year).
pub(crate) fn parse_amz_date(s: &str) -> Option<DateTime<Utc>> {
    if s.len() != 16 || !s.is_ascii() {
        return None;
    }
    NaiveDateTime::parse_from_str(s, AMZ_DATE_FORMAT)
        .ok()
        .map(|t| t.and_utc())
}

/// Parses an HTTP `Date` header (IMF-fixdate, RFC 850 or asctime).
pub(crate) fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    httpdate::parse_http_date(s).ok().map(DateTime::<Utc>::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }

    fn example_ctx() -> SigningContext {
        SigningContext::new(
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            parse_amz_date("20130524T000000Z").unwrap(),
            "us-east-1",
        )
    }

    fn signed(names: &str) -> Vec<String> {
        parse_signed_headers(names).unwrap()
    }

    #[test]
    fn uri_encode_follows_aws_rules() {
        let mut s = String::new();
        uri_encode(&mut s, b"a b/c~d_e-f.g$h+i*%", false);
        assert_eq!(s, "a%20b/c~d_e-f.g%24h%2Bi%2A%25");
        let mut s = String::new();
        uri_encode(&mut s, "é/".as_bytes(), true);
        assert_eq!(s, "%C3%A9%2F");
    }

    #[test]
    fn canonical_uri_decodes_once_and_keeps_dot_segments() {
        assert_eq!(canonical_uri("/test$file.text"), "/test%24file.text");
        assert_eq!(canonical_uri("/test%24file.text"), "/test%24file.text");
        assert_eq!(canonical_uri("/a%20b//./../c"), "/a%20b//./../c");
        assert_eq!(canonical_uri("/a%2Fb"), "/a/b");
        assert_eq!(canonical_uri("/%zz"), "/%25zz");
        assert_eq!(canonical_uri(""), "/");
    }

    #[test]
    fn canonical_query_sorts_and_encodes() {
        assert_eq!(
            canonical_query(Some("prefix=J&max-keys=2"), false),
            "max-keys=2&prefix=J"
        );
        assert_eq!(canonical_query(Some("lifecycle"), false), "lifecycle=");
        assert_eq!(
            canonical_query(Some("b=2&a=x%20y&a=1&&c="), false),
            "a=1&a=x%20y&b=2&c="
        );
        assert_eq!(
            canonical_query(Some("k=a/b&k2=%2f"), false),
            "k=a%2Fb&k2=%2F"
        );
        assert_eq!(canonical_query(Some("X-Amz-Signature=ab&x=1"), true), "x=1");
        assert_eq!(canonical_query(None, false), "");
    }

    #[test]
    fn header_values_are_trimmed_and_collapsed() {
        let mut out = Vec::new();
        push_trimmed(&mut out, b"  a   b \t c  ");
        assert_eq!(out, b"a b c");
        let mut out = Vec::new();
        push_trimmed(&mut out, b"   ");
        assert!(out.is_empty());
    }

    #[test]
    fn credential_parsing() {
        assert_eq!(
            parse_credential(
                "AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
                "us-east-1"
            ),
            Ok(Credential {
                access_key: "AKIAIOSFODNN7EXAMPLE",
                date: "20130524"
            })
        );
        assert_eq!(
            parse_credential("a/b/20130524/us-east-1/s3/aws4_request", "us-east-1")
                .unwrap()
                .access_key,
            "a/b"
        );
        let err =
            parse_credential("AK/20130524/eu-west-1/s3/aws4_request", "us-east-1").unwrap_err();
        assert_eq!(
            err,
            "the region 'eu-west-1' is wrong; expecting 'us-east-1'"
        );
        assert!(parse_credential("AK/20130524/us-east-1/ec2/aws4_request", "us-east-1").is_err());
        assert!(parse_credential("AK/20130524/us-east-1/s3/aws5_request", "us-east-1").is_err());
        assert!(parse_credential("AK/2013052/us-east-1/s3/aws4_request", "us-east-1").is_err());
        assert!(parse_credential("/20130524/us-east-1/s3/aws4_request", "us-east-1").is_err());
        assert!(parse_credential("garbage", "us-east-1").is_err());
    }

    #[test]
    fn dates() {
        let t = parse_amz_date("20130524T000000Z").unwrap();
        assert_eq!(t.to_rfc3339(), "2013-05-24T00:00:00+00:00");
        assert!(parse_amz_date("20130524T000000").is_none());
        assert!(parse_amz_date("2013-05-24T00:00:00Z").is_none());
        assert!(parse_amz_date("+20130524T00000Z").is_none());
        assert_eq!(parse_http_date("Fri, 24 May 2013 00:00:00 GMT"), Some(t));
        assert!(parse_http_date("yesterday").is_none());
    }

    #[test]
    fn signed_headers_must_include_host() {
        assert_eq!(
            signed("host;Range;x-amz-date"),
            vec!["host", "range", "x-amz-date"]
        );
        assert!(parse_signed_headers("range;x-amz-date").is_err());
        assert!(parse_signed_headers("host;;range").is_err());
        assert!(parse_signed_headers("host;a b").is_err());
    }

    /// AWS example "GET Object": the canonical request and string to sign as published.
    #[test]
    fn aws_example_get_object_canonical_request() {
        let p = parts(
            "GET",
            "/test.txt",
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY_SHA256_HEX),
                ("x-amz-date", "20130524T000000Z"),
            ],
        );
        let names = signed("host;range;x-amz-content-sha256;x-amz-date");
        let req = RequestToCheck {
            parts: &p,
            canonical_query: canonical_query(p.uri.query(), false),
            signed_headers: &names,
            payload_hash: EMPTY_SHA256_HEX,
        };
        let creq = req.canonical_request(&canonical_uri(raw_path(&p)));
        let expected = "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
            x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
            x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\
            e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(String::from_utf8(creq.clone()).unwrap(), expected);
        let ctx = example_ctx();
        assert_eq!(
            ctx.string_to_sign(&creq),
            "AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/aws4_request\n\
             7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972"
        );
        assert_eq!(
            hex::encode(ctx.sign_canonical_request(&creq)),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    /// AWS example "GET Bucket Lifecycle": a query parameter without a value.
    #[test]
    fn aws_example_get_bucket_lifecycle_string_to_sign() {
        let p = parts(
            "GET",
            "/?lifecycle",
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", EMPTY_SHA256_HEX),
                ("x-amz-date", "20130524T000000Z"),
            ],
        );
        let names = signed("host;x-amz-content-sha256;x-amz-date");
        let req = RequestToCheck {
            parts: &p,
            canonical_query: canonical_query(p.uri.query(), false),
            signed_headers: &names,
            payload_hash: EMPTY_SHA256_HEX,
        };
        let creq = req.canonical_request("/");
        assert_eq!(
            hex::encode(sha256(&creq)),
            "9766c798316ff2757b517bc739a67f6213b4ab36dd5da2f94eaebf79c77395ca"
        );
        assert_eq!(
            hex::encode(example_ctx().sign_canonical_request(&creq)),
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"
        );
    }

    #[test]
    fn multiple_header_values_are_joined_with_commas() {
        let p = parts(
            "GET",
            "/",
            &[
                ("host", "h"),
                ("x-amz-meta-a", " one "),
                ("x-amz-meta-a", "two  three"),
            ],
        );
        let names = signed("host;x-amz-meta-a");
        let req = RequestToCheck {
            parts: &p,
            canonical_query: String::new(),
            signed_headers: &names,
            payload_hash: "P",
        };
        assert_eq!(
            String::from_utf8(req.canonical_request("/")).unwrap(),
            "GET\n/\n\nhost:h\nx-amz-meta-a:one,two three\n\nhost;x-amz-meta-a\nP"
        );
    }

    #[test]
    fn host_falls_back_to_the_uri_authority() {
        let p = parts("GET", "http://examplebucket.s3.amazonaws.com/x", &[]);
        let names = signed("host");
        let req = RequestToCheck {
            parts: &p,
            canonical_query: String::new(),
            signed_headers: &names,
            payload_hash: "P",
        };
        assert_eq!(
            String::from_utf8(req.canonical_request("/x")).unwrap(),
            "GET\n/x\n\nhost:examplebucket.s3.amazonaws.com\n\nhost\nP"
        );
    }

    #[test]
    fn unsigned_amz_headers_are_refused() {
        let p = parts(
            "GET",
            "/",
            &[
                ("host", "h"),
                ("x-amz-acl", "public-read"),
                ("x-amz-date", "d"),
            ],
        );
        assert!(matches!(
            check_amz_headers_signed(&p.headers, &signed("host")),
            Err(ApiError::AccessDenied)
        ));
        assert!(check_amz_headers_signed(&p.headers, &signed("host;x-amz-acl")).is_ok());
    }
}
