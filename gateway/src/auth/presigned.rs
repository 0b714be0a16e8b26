//! SigV4 carried in the query string (presigned URLs): `X-Amz-Algorithm`, `X-Amz-Credential`, `X-Amz-Date`,
//! `X-Amz-Expires`, `X-Amz-SignedHeaders` and `X-Amz-Signature`, with the validity window checked against the
//! caller's clock.
//!
//! The signature covers every query parameter except `X-Amz-Signature` itself. The body is not signed
//! (`UNSIGNED-PAYLOAD`) unless the client signed an x-amz-content-sha256 header.

use chrono::{DateTime, TimeDelta, Utc};
use http::request::Parts;

use super::canonical::{self, RequestToCheck, SigningContext, X_AMZ_CONTENT_SHA256};
use super::{AuthOutcome, ContentSha256, CredentialStore, MAX_SKEW, Signing};
use crate::error::{ApiError, ApiResult};

/// The longest validity S3 allows: seven days.
const MAX_EXPIRES_SECS: i64 = 604_800;

const ALGORITHM: &str = "X-Amz-Algorithm";
const CREDENTIAL: &str = "X-Amz-Credential";
const DATE: &str = "X-Amz-Date";
const EXPIRES: &str = "X-Amz-Expires";
const SIGNED_HEADERS: &str = "X-Amz-SignedHeaders";
const SIGNATURE: &str = "X-Amz-Signature";

const MISSING: &str = "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, \
                       X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.";

fn qp_error(msg: impl Into<String>) -> ApiError {
    ApiError::AuthorizationQueryParametersError(msg.into())
}

/// Whether the query attempts SigV4 query auth. Any of the identifying parameters counts, so a presigned URL
/// that lost its signature is reported as incomplete rather than silently served as anonymous.
pub(crate) fn has_query_auth(query: Option<&str>) -> bool {
    let Some(query) = query else { return false };
    canonical::decoded_query_pairs(Some(query))
        .iter()
        .any(|(name, _)| name == SIGNATURE || name == ALGORITHM || name == CREDENTIAL)
}

pub(crate) fn authenticate(
    parts: &Parts,
    creds: &dyn CredentialStore,
    region: &str,
    now: DateTime<Utc>,
) -> ApiResult<AuthOutcome> {
    let params = canonical::decoded_query_pairs(parts.uri.query());
    let get = |name: &str| -> ApiResult<&str> {
        canonical::only_value(&params, name).map_err(|e| match e {
            canonical::NotOnce::Missing => qp_error(MISSING),
            canonical::NotOnce::Repeated => qp_error(format!("{name} must appear only once")),
        })
    };
    let (algorithm, credential, date, expires, signed_headers, signature) = (
        get(ALGORITHM)?,
        get(CREDENTIAL)?,
        get(DATE)?,
        get(EXPIRES)?,
        get(SIGNED_HEADERS)?,
        get(SIGNATURE)?,
    );

    if algorithm != canonical::ALGORITHM {
        return Err(qp_error(
            "X-Amz-Algorithm only supports \"AWS4-HMAC-SHA256\"",
        ));
    }
    let credential = canonical::parse_credential(credential, region)
        .map_err(|m| qp_error(format!("Error parsing the X-Amz-Credential parameter; {m}")))?;
    let time = canonical::parse_amz_date(date).ok_or_else(|| {
        qp_error("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
    })?;
    let expires = parse_expires(expires)?;
    let signed_headers = canonical::parse_signed_headers(signed_headers).map_err(|m| {
        qp_error(format!(
            "Error parsing the X-Amz-SignedHeaders parameter; {m}"
        ))
    })?;
    let provided = canonical::parse_hex32(signature)
        .ok_or_else(|| qp_error("X-Amz-Signature must be 64 hexadecimal characters"))?;
    let scope_date = time.format("%Y%m%d").to_string();
    if credential.date != scope_date {
        return Err(qp_error(format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{scope_date}\".",
            credential.date
        )));
    }

    // The body hash is signed only if the client listed x-amz-content-sha256; an unsigned hex value is still
    // enforced on the body, which can only make the upload stricter.
    let content_header = parts
        .headers
        .get(X_AMZ_CONTENT_SHA256)
        .map(|v| {
            v.to_str()
                .map_err(|_| ApiError::InvalidArgument("x-amz-content-sha256 is not ASCII".into()))
        })
        .transpose()?;
    let content = content_header.map(ContentSha256::parse).transpose()?;
    let payload_hash = match content_header {
        Some(value) if signed_headers.iter().any(|h| h == X_AMZ_CONTENT_SHA256) => value,
        _ => canonical::UNSIGNED_PAYLOAD,
    };
    let payload = ContentSha256::unchunked_payload(
        content,
        "signed streaming payloads (STREAMING-AWS4-HMAC-SHA256-PAYLOAD) require Authorization header \
         authentication",
    )?;

    let (identity, secret) = creds
        .lookup(credential.access_key)
        .ok_or(ApiError::InvalidAccessKeyId)?;
    if time - now > MAX_SKEW {
        return Err(ApiError::RequestTimeTooSkewed);
    }
    if now > time + expires {
        return Err(ApiError::ExpiredPresignedRequest);
    }
    canonical::check_amz_headers_signed(&parts.headers, &signed_headers)?;

    let ctx = SigningContext::new(&secret, time, region);
    let request = RequestToCheck {
        parts,
        canonical_query: canonical::canonical_query(parts.uri.query(), true),
        signed_headers: &signed_headers,
        payload_hash,
    };
    if !request.verify(&ctx, &provided) {
        return Err(ApiError::SignatureDoesNotMatch);
    }
    super::outcome(
        Some(identity),
        Some(Signing::V4_QUERY),
        payload,
        &parts.headers,
    )
}

fn parse_expires(s: &str) -> ApiResult<TimeDelta> {
    let secs: i64 = s
        .parse()
        .map_err(|_| qp_error("X-Amz-Expires should be a number"))?;
    if secs < 0 {
        return Err(qp_error("X-Amz-Expires must be non-negative"));
    }
    if secs == 0 {
        return Err(qp_error("X-Amz-Expires must be at least 1 second"));
    }
    if secs > MAX_EXPIRES_SECS {
        return Err(qp_error(
            "X-Amz-Expires must be less than a week (in seconds) that is 604800",
        ));
    }
    Ok(TimeDelta::seconds(secs))
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{Identity, Payload, authenticate as auth};
    use super::*;

    const REGION: &str = "us-east-1";
    const EXAMPLE_SIG: &str = "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404";

    fn example_query(expires: &str, signature: &str) -> String {
        format!(
            "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AK}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
             &X-Amz-Date=20130524T000000Z&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}"
        )
    }

    fn example(uri: &str) -> Parts {
        parts("GET", uri, &[("host", "examplebucket.s3.amazonaws.com")])
    }

    /// AWS example "Authenticating Requests: Using Query Parameters".
    #[test]
    fn aws_example_presigned_get() {
        let p = example(&example_query("86400", EXAMPLE_SIG));
        let out = auth(&p, &Store, REGION, None, at("20130524T120000Z")).unwrap();
        assert_eq!(
            out.identity,
            Some(Identity {
                access_key: AK.into(),
                display_name: "example".into(),
                is_root: true
            })
        );
        assert!(matches!(out.payload, Payload::Unsigned));
        // Still valid at the last second, also within the skew allowance before X-Amz-Date.
        assert!(auth(&p, &Store, REGION, None, at("20130525T000000Z")).is_ok());
        assert!(auth(&p, &Store, REGION, None, at("20130523T234600Z")).is_ok());
    }

    #[test]
    fn parameter_order_and_encoding_do_not_matter() {
        let uri = format!(
            "/test.txt?X-Amz-Signature={EXAMPLE_SIG}&X-Amz-SignedHeaders=host&X-Amz-Expires=86400\
             &X-Amz-Date=20130524T000000Z&X-Amz-Credential={AK}/20130524/us-east-1/s3/aws4_request\
             &X-Amz-Algorithm=AWS4-HMAC-SHA256"
        );
        assert!(auth(&example(&uri), &Store, REGION, None, at("20130524T000000Z")).is_ok());
    }

    #[test]
    fn expired() {
        let p = example(&example_query("86400", EXAMPLE_SIG));
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130525T000001Z")),
            Err(ApiError::ExpiredPresignedRequest)
        ));
    }

    #[test]
    fn not_yet_valid() {
        let p = example(&example_query("86400", EXAMPLE_SIG));
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130523T234459Z")),
            Err(ApiError::RequestTimeTooSkewed)
        ));
    }

    #[test]
    fn tampering_and_wrong_secret() {
        let p = example(&example_query("86401", EXAMPLE_SIG));
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::SignatureDoesNotMatch)
        ));
        let p = example(&example_query("86400", EXAMPLE_SIG));
        let err = auth(&p, &WrongSecretStore, REGION, None, at("20130524T000000Z"));
        assert!(matches!(err, Err(ApiError::SignatureDoesNotMatch)));
        let p = parts(
            "GET",
            &example_query("86400", EXAMPLE_SIG),
            &[("host", "otherbucket.s3.amazonaws.com")],
        );
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::SignatureDoesNotMatch)
        ));
    }

    #[test]
    fn unknown_key() {
        let p = example(&example_query("86400", EXAMPLE_SIG).replace(AK, "AKIDUNKNOWN"));
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::InvalidAccessKeyId)
        ));
    }

    #[test]
    fn expires_range() {
        for bad in ["0", "-1", "604801", "soon", ""] {
            let p = example(&example_query(bad, EXAMPLE_SIG));
            let err = auth(&p, &Store, REGION, None, at("20130524T000000Z"));
            assert!(
                matches!(err, Err(ApiError::AuthorizationQueryParametersError(_))),
                "{bad}: {err:?}"
            );
        }
        // 604800 is allowed (the signature then fails, which shows the range check passed).
        let p = example(&example_query("604800", EXAMPLE_SIG));
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::SignatureDoesNotMatch)
        ));
    }

    #[test]
    fn missing_or_bad_parameters() {
        let full = example_query("86400", EXAMPLE_SIG);
        for param in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&",
            "&X-Amz-SignedHeaders=host",
            "&X-Amz-Date=20130524T000000Z",
        ] {
            let p = example(&full.replace(param, ""));
            let err = auth(&p, &Store, REGION, None, at("20130524T000000Z"));
            assert!(
                matches!(err, Err(ApiError::AuthorizationQueryParametersError(_))),
                "{param}: {err:?}"
            );
        }
        // Credential present but signature stripped: incomplete, not anonymous.
        let p = example(&full.replace(&format!("&X-Amz-Signature={EXAMPLE_SIG}"), ""));
        let err = auth(&p, &Store, REGION, None, at("20130524T000000Z"));
        assert!(
            matches!(err, Err(ApiError::AuthorizationQueryParametersError(_))),
            "{err:?}"
        );
        for (from, to) in [
            ("AWS4-HMAC-SHA256", "AWS4-HMAC-SHA1"),
            ("us-east-1", "eu-west-1"),
            ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130524"),
            ("X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130525T000000Z"),
            ("X-Amz-SignedHeaders=host", "X-Amz-SignedHeaders=range"),
            (EXAMPLE_SIG, "abc"),
        ] {
            let p = example(&full.replace(from, to));
            let err = auth(&p, &Store, REGION, None, at("20130524T000000Z"));
            assert!(
                matches!(err, Err(ApiError::AuthorizationQueryParametersError(_))),
                "{to}: {err:?}"
            );
        }
        let p = example(&format!("{full}&X-Amz-Date=20130524T000000Z"));
        let err = auth(&p, &Store, REGION, None, at("20130524T000000Z"));
        assert!(
            matches!(err, Err(ApiError::AuthorizationQueryParametersError(_))),
            "{err:?}"
        );
    }

    #[test]
    fn content_sha256_header_selects_the_payload() {
        let mut p = example(&example_query("86400", EXAMPLE_SIG));
        p.headers.insert(
            X_AMZ_CONTENT_SHA256,
            "STREAMING-UNSIGNED-PAYLOAD-TRAILER".parse().unwrap(),
        );
        let out = auth(&p, &Store, REGION, None, at("20130524T000000Z")).unwrap();
        assert!(matches!(out.payload, Payload::StreamingUnsignedTrailer));
        p.headers.insert(
            X_AMZ_CONTENT_SHA256,
            canonical::EMPTY_SHA256_HEX.parse().unwrap(),
        );
        let out = auth(&p, &Store, REGION, None, at("20130524T000000Z")).unwrap();
        assert!(matches!(out.payload, Payload::Sha256(_)));
        p.headers.insert(
            X_AMZ_CONTENT_SHA256,
            "STREAMING-AWS4-HMAC-SHA256-PAYLOAD".parse().unwrap(),
        );
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::InvalidArgument(_))
        ));
    }

    #[test]
    fn signed_content_sha256_is_the_payload_hash() {
        let hash = canonical::EMPTY_SHA256_HEX;
        let mut p = parts(
            "PUT",
            &format!(
                "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={AK}%2F20130524%2Fus-east-1%2Fs3%2Faws4_request\
                 &X-Amz-Date=20130524T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host%3Bx-amz-content-sha256"
            ),
            &[("host", "h"), (X_AMZ_CONTENT_SHA256, hash)],
        );
        let names = vec!["host".to_owned(), X_AMZ_CONTENT_SHA256.to_owned()];
        let req = RequestToCheck {
            parts: &p,
            canonical_query: canonical::canonical_query(p.uri.query(), true),
            signed_headers: &names,
            payload_hash: hash,
        };
        let ctx = SigningContext::new(SECRET, at("20130524T000000Z"), REGION);
        let sig = hex::encode(ctx.sign_canonical_request(&req.canonical_request("/b/k")));
        p.uri = format!("{}&X-Amz-Signature={sig}", p.uri).parse().unwrap();
        let out = auth(&p, &Store, REGION, None, at("20130524T000000Z")).unwrap();
        assert!(matches!(out.payload, Payload::Sha256(h) if h == canonical::sha256(b"")));
        p.headers
            .insert(X_AMZ_CONTENT_SHA256, "UNSIGNED-PAYLOAD".parse().unwrap());
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::SignatureDoesNotMatch)
        ));
    }

    #[test]
    fn detection() {
        assert!(!has_query_auth(None));
        assert!(!has_query_auth(Some("prefix=a&x-amz-signature=1")));
        assert!(has_query_auth(Some("a=1&X-Amz-Signature=1")));
        assert!(has_query_auth(Some("X-Amz-Algorithm")));
        assert!(has_query_auth(Some("X%2DAmz%2DCredential=x")));
    }
}
