//! Authentication for the S3 API (AWS Signature Version 4, and Version 2 for older clients' presigned URLs): who
//! sent a request, how it was signed, and how its body must be checked.
//!
//! [`authenticate`] looks only at the request head (method, URI, headers) and the clock the caller passes in; it
//! picks header auth, query-string (presigned) auth or anonymous, verifies the signature and says how the body
//! must be verified ([`Payload`]). [`verified_body`] then wraps the raw body so that it only ends cleanly if the
//! body matches what was signed. Deciding what an identity may do happens elsewhere.
//!
//! Layout: `canonical` holds the pure SigV4 pieces, `header` the Authorization-header flavour, `presigned` the
//! query-string flavour, `v2` Signature Version 2 (header and query), `post_form` the browser-upload (POST form)
//! flavour and `chunked` the aws-chunked decoder and the verified body stream.

mod canonical;
mod chunked;
mod header;
mod post_form;
mod presigned;
mod v2;

use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, TimeDelta, Utc};
use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::error::{ApiError, ApiResult};

pub use chunked::ChunkSigner;
pub use post_form::{FormSignature, authenticate_form};
pub use v2::authenticate_form as authenticate_form_v2;

/// Who is making the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The access key the request was signed with.
    pub access_key: String,
    /// Human-readable owner name (used in listings and ACL documents).
    pub display_name: String,
    /// Whether this is the root user, who may do anything.
    pub is_root: bool,
}

/// Looks up secrets by access key. Implemented elsewhere (root user from env, more users later).
pub trait CredentialStore: Send + Sync + 'static {
    /// The identity and secret key for `access_key`, or `None` if the key is unknown.
    fn lookup(&self, access_key: &str) -> Option<(Identity, String /* secret key */)>;
}

/// How the request body must be checked/decoded.
#[derive(Debug, Clone)]
pub enum Payload {
    /// Body must hash (SHA-256) to this value (x-amz-content-sha256 was a hex digest).
    Sha256([u8; 32]),
    /// UNSIGNED-PAYLOAD, presigned URL, or anonymous: nothing to verify.
    Unsigned,
    /// STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER): aws-chunked with chunk signatures chained from the seed.
    StreamingSigned {
        /// Signing state, seeded with the request signature.
        ctx: ChunkSigner,
        /// Whether signed trailing headers follow the final chunk.
        trailer: bool,
    },
    /// STREAMING-UNSIGNED-PAYLOAD-TRAILER: aws-chunked without signatures, trailers at the end.
    StreamingUnsignedTrailer,
}

/// How an authenticated request was signed: the values of the `s3:signatureversion` and `s3:authType` policy
/// condition keys, with which a bucket policy can refuse Version 2 signatures or presigned URLs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Signing {
    /// `AWS` (Signature Version 2) or `AWS4-HMAC-SHA256`.
    pub version: &'static str,
    /// `REST-HEADER`, `REST-QUERY-STRING` or `POST`.
    pub auth_type: &'static str,
}

impl Signing {
    pub(crate) const V4_HEADER: Signing = Signing {
        version: canonical::ALGORITHM,
        auth_type: "REST-HEADER",
    };
    pub(crate) const V4_QUERY: Signing = Signing {
        version: canonical::ALGORITHM,
        auth_type: "REST-QUERY-STRING",
    };
    pub(crate) const V4_POST: Signing = Signing {
        version: canonical::ALGORITHM,
        auth_type: "POST",
    };
    pub(crate) const V2_HEADER: Signing = Signing {
        version: v2::SCHEME,
        auth_type: "REST-HEADER",
    };
    pub(crate) const V2_QUERY: Signing = Signing {
        version: v2::SCHEME,
        auth_type: "REST-QUERY-STRING",
    };
    pub(crate) const V2_POST: Signing = Signing {
        version: v2::SCHEME,
        auth_type: "POST",
    };
}

/// What authentication established.
#[derive(Debug, Clone)]
pub struct AuthOutcome {
    /// None for an anonymous request (no Authorization header and no X-Amz-Signature query).
    pub identity: Option<Identity>,
    /// How the request was signed; `None` when anonymous.
    pub signing: Option<Signing>,
    /// How the body must be verified; hand it to [`verified_body`].
    pub payload: Payload,
    /// x-amz-decoded-content-length for aws-chunked bodies.
    pub decoded_content_length: Option<u64>,
}

/// How far a request's timestamp may be from the server clock.
pub(crate) const MAX_SKEW: TimeDelta = TimeDelta::minutes(15);

/// Authenticates a request from its head.
///
/// Header auth and query-string auth are mutually exclusive; a request with neither is anonymous. `region` is
/// the region this server answers for, `host_bucket` the bucket the Host header names in virtual-hosted style
/// (signed by Signature Version 2, see [`v2`]), and `now` the current time (passed in so that tests need no
/// clock).
pub fn authenticate(
    parts: &http::request::Parts,
    creds: &dyn CredentialStore,
    region: &str,
    host_bucket: Option<&str>,
    now: DateTime<Utc>,
) -> ApiResult<AuthOutcome> {
    let mut auth_headers = parts.headers.get_all(AUTHORIZATION).iter();
    let auth = auth_headers.next();
    if auth.is_some() && auth_headers.next().is_some() {
        return Err(ApiError::AuthorizationHeaderMalformed(
            "more than one Authorization header was sent".into(),
        ));
    }
    let query = parts.uri.query();
    let v4_query = presigned::has_query_auth(query);
    let query_auth = v4_query || v2::has_query_auth(query);
    match (auth, query_auth) {
        (Some(_), true) => Err(ApiError::InvalidArgument(
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string \
             parameter or the Authorization header should be specified"
                .into(),
        )),
        (Some(value), false) => match v2::header_credentials(value) {
            Some(credentials) => v2::authenticate_header(parts, credentials, creds, host_bucket, now),
            None => header::authenticate(parts, value, creds, region, now),
        },
        (None, true) if v4_query => presigned::authenticate(parts, creds, region, now),
        (None, true) => v2::authenticate_query(parts, creds, host_bucket, now),
        (None, false) => anonymous(parts),
    }
}

fn anonymous(parts: &http::request::Parts) -> ApiResult<AuthOutcome> {
    let streaming = parts
        .headers
        .get(canonical::X_AMZ_CONTENT_SHA256)
        .is_some_and(|v| v.as_bytes() == STREAMING_UNSIGNED_TRAILER.as_bytes());
    let payload = if streaming {
        Payload::StreamingUnsignedTrailer
    } else {
        Payload::Unsigned
    };
    outcome(None, None, payload, &parts.headers)
}

/// Fails if `time` is more than [`MAX_SKEW`] away from `now`.
pub(crate) fn check_skew(time: DateTime<Utc>, now: DateTime<Utc>) -> ApiResult<()> {
    if (now - time).abs() > MAX_SKEW {
        return Err(ApiError::RequestTimeTooSkewed);
    }
    Ok(())
}

const STREAMING_SIGNED: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD";
const STREAMING_SIGNED_TRAILER: &str = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER";
const STREAMING_UNSIGNED_TRAILER: &str = "STREAMING-UNSIGNED-PAYLOAD-TRAILER";

/// The meaning of an x-amz-content-sha256 value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ContentSha256 {
    Hex([u8; 32]),
    Unsigned,
    StreamingSigned { trailer: bool },
    StreamingUnsignedTrailer,
}

impl ContentSha256 {
    pub(crate) fn parse(value: &str) -> ApiResult<Self> {
        Ok(match value {
            canonical::UNSIGNED_PAYLOAD => ContentSha256::Unsigned,
            STREAMING_SIGNED => ContentSha256::StreamingSigned { trailer: false },
            STREAMING_SIGNED_TRAILER => ContentSha256::StreamingSigned { trailer: true },
            STREAMING_UNSIGNED_TRAILER => ContentSha256::StreamingUnsignedTrailer,
            other => ContentSha256::Hex(canonical::parse_hex32(other).ok_or_else(|| {
                ApiError::InvalidArgument(
                    "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, \
                     STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid \
                     sha256 value."
                        .into(),
                )
            })?),
        })
    }
}

impl ContentSha256 {
    /// How the body of a request whose signature covers no chunk signatures (a presigned URL, Version 2) is
    /// checked: a hex value is still enforced, unsigned trailers are decoded, and signed aws-chunked bodies are
    /// refused with `refusal`.
    pub(crate) fn unchunked_payload(content: Option<Self>, refusal: &str) -> ApiResult<Payload> {
        Ok(match content {
            None | Some(ContentSha256::Unsigned) => Payload::Unsigned,
            Some(ContentSha256::Hex(hash)) => Payload::Sha256(hash),
            Some(ContentSha256::StreamingUnsignedTrailer) => Payload::StreamingUnsignedTrailer,
            Some(ContentSha256::StreamingSigned { .. }) => {
                return Err(ApiError::InvalidArgument(refusal.into()));
            }
        })
    }
}

/// Builds the outcome, reading x-amz-decoded-content-length for aws-chunked payloads.
pub(crate) fn outcome(
    identity: Option<Identity>,
    signing: Option<Signing>,
    payload: Payload,
    headers: &HeaderMap,
) -> ApiResult<AuthOutcome> {
    let decoded_content_length = match payload {
        Payload::StreamingSigned { .. } | Payload::StreamingUnsignedTrailer => headers
            .get("x-amz-decoded-content-length")
            .map(|v| {
                v.to_str()
                    .ok()
                    .and_then(|s| s.trim().parse::<u64>().ok())
                    .ok_or_else(|| {
                        ApiError::InvalidArgument(
                            "x-amz-decoded-content-length must be a non-negative integer".into(),
                        )
                    })
            })
            .transpose()?,
        Payload::Sha256(_) | Payload::Unsigned => None,
    };
    Ok(AuthOutcome {
        identity,
        signing,
        payload,
        decoded_content_length,
    })
}

/// Trailing headers collected from an aws-chunked body (e.g. ("x-amz-checksum-crc32", "base64...")); filled when the body ends.
#[derive(Debug, Clone, Default)]
pub struct Trailers(pub Arc<Mutex<Vec<(String, String)>>>);

impl Trailers {
    /// The value of trailer `name` (case-insensitive), once the body has ended cleanly.
    pub fn get(&self, name: &str) -> Option<String> {
        let guard = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        guard
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    }

    pub(crate) fn set(&self, trailers: Vec<(String, String)>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = trailers;
    }
}

/// Wraps the raw request body into the verified payload stream:
/// - Sha256: passes bytes through, hashing; at end of stream yields Err(XAmzContentSha256Mismatch) if the hash differs.
/// - Unsigned: passthrough.
/// - Streaming*: decodes aws-chunked framing, verifies chunk and trailer signatures when signed, stores the
///   trailers into `trailers` and yields only payload bytes. Signed chunks are held back until their signature
///   verified, so no unauthenticated byte is ever yielded; at most one chunk (≤ 16 MiB) is held.
///
/// The stream ends cleanly only if everything verified; premature end of input yields Err(IncompleteBody).
/// An error is the last item: bytes that verified before it are yielded first, nothing after it.
pub fn verified_body<S>(
    raw: S,
    payload: Payload,
    trailers: Trailers,
) -> impl futures_util::Stream<Item = ApiResult<bytes::Bytes>> + Send + Unpin + 'static
where
    S: futures_util::Stream<Item = ApiResult<bytes::Bytes>> + Send + Unpin + 'static,
{
    chunked::VerifiedBody::new(raw, payload, trailers)
}

/// Drains a stream built from ready input (tests only): the bytes yielded, and the error that ended it, if any.
#[cfg(test)]
pub(crate) fn collect_now<S>(mut stream: S) -> (Vec<u8>, Option<ApiError>)
where
    S: futures_util::Stream<Item = ApiResult<bytes::Bytes>> + Unpin,
{
    use futures_util::StreamExt;
    use std::task::{Context, Poll, Waker};
    let mut cx = Context::from_waker(Waker::noop());
    let mut out = Vec::new();
    loop {
        match stream.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(Ok(b))) => out.extend_from_slice(&b),
            Poll::Ready(Some(Err(e))) => {
                assert!(
                    matches!(stream.poll_next_unpin(&mut cx), Poll::Ready(None)),
                    "stream must end after an error"
                );
                return (out, Some(e));
            }
            Poll::Ready(None) => return (out, None),
            Poll::Pending => panic!("test input streams never pend"),
        }
    }
}

#[cfg(test)]
pub(crate) mod testutil {
    //! Shared fixtures: the AWS example credentials and a request builder.

    use super::*;

    pub(crate) const AK: &str = "AKIAIOSFODNN7EXAMPLE";
    pub(crate) const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

    pub(crate) struct Store;

    impl CredentialStore for Store {
        fn lookup(&self, access_key: &str) -> Option<(Identity, String)> {
            (access_key == AK).then(|| {
                (
                    Identity {
                        access_key: AK.into(),
                        display_name: "example".into(),
                        is_root: true,
                    },
                    SECRET.into(),
                )
            })
        }
    }

    pub(crate) struct WrongSecretStore;

    impl CredentialStore for WrongSecretStore {
        fn lookup(&self, access_key: &str) -> Option<(Identity, String)> {
            Store
                .lookup(access_key)
                .map(|(id, _)| (id, "not-the-secret".into()))
        }
    }

    pub(crate) fn at(s: &str) -> DateTime<Utc> {
        canonical::parse_amz_date(s).unwrap()
    }

    pub(crate) fn parts(method: &str, uri: &str, headers: &[(&str, &str)]) -> http::request::Parts {
        let mut b = http::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        b.body(()).unwrap().into_parts().0
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn no_credentials_is_anonymous() {
        let p = parts("GET", "/bucket/key?list-type=2", &[("host", "h")]);
        let out = authenticate(&p, &Store, "us-east-1", None, at("20130524T000000Z")).unwrap();
        assert!(out.identity.is_none());
        assert!(matches!(out.payload, Payload::Unsigned));
        assert_eq!(out.decoded_content_length, None);
    }

    #[test]
    fn anonymous_streaming_unsigned_trailer() {
        let p = parts(
            "PUT",
            "/bucket/key",
            &[
                ("host", "h"),
                ("x-amz-content-sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER"),
                ("x-amz-decoded-content-length", "11"),
            ],
        );
        let out = authenticate(&p, &Store, "us-east-1", None, at("20130524T000000Z")).unwrap();
        assert!(out.identity.is_none());
        assert!(matches!(out.payload, Payload::StreamingUnsignedTrailer));
        assert_eq!(out.decoded_content_length, Some(11));
    }

    #[test]
    fn anonymous_with_a_hash_is_still_unsigned() {
        let p = parts(
            "PUT",
            "/b/k",
            &[
                ("host", "h"),
                ("x-amz-content-sha256", canonical::EMPTY_SHA256_HEX),
            ],
        );
        let out = authenticate(&p, &Store, "us-east-1", None, at("20130524T000000Z")).unwrap();
        assert!(matches!(out.payload, Payload::Unsigned));
    }

    #[test]
    fn both_mechanisms_are_refused() {
        let p = parts(
            "GET",
            "/test.txt?X-Amz-Signature=abc",
            &[
                ("host", "h"),
                ("authorization", "AWS4-HMAC-SHA256 Credential=x"),
            ],
        );
        let err = authenticate(&p, &Store, "us-east-1", None, at("20130524T000000Z")).unwrap_err();
        assert!(
            matches!(&err, ApiError::InvalidArgument(m) if m.starts_with("Only one auth mechanism allowed"))
        );
    }

    #[test]
    fn content_sha256_values() {
        assert_eq!(
            ContentSha256::parse("UNSIGNED-PAYLOAD").unwrap(),
            ContentSha256::Unsigned
        );
        assert_eq!(
            ContentSha256::parse("STREAMING-AWS4-HMAC-SHA256-PAYLOAD").unwrap(),
            ContentSha256::StreamingSigned { trailer: false }
        );
        assert_eq!(
            ContentSha256::parse("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER").unwrap(),
            ContentSha256::StreamingSigned { trailer: true }
        );
        assert_eq!(
            ContentSha256::parse("STREAMING-UNSIGNED-PAYLOAD-TRAILER").unwrap(),
            ContentSha256::StreamingUnsignedTrailer
        );
        assert!(matches!(
            ContentSha256::parse(canonical::EMPTY_SHA256_HEX).unwrap(),
            ContentSha256::Hex(_)
        ));
        assert!(matches!(
            ContentSha256::parse("abc"),
            Err(ApiError::InvalidArgument(_))
        ));
        assert!(matches!(
            ContentSha256::parse("STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"),
            Err(ApiError::InvalidArgument(_))
        ));
    }

    #[test]
    fn skew_is_symmetric() {
        let now = at("20130524T001500Z");
        assert!(check_skew(at("20130524T000000Z"), now).is_ok());
        assert!(check_skew(at("20130524T003000Z"), now).is_ok());
        assert!(matches!(
            check_skew(at("20130523T235959Z"), now),
            Err(ApiError::RequestTimeTooSkewed)
        ));
        assert!(matches!(
            check_skew(at("20130524T003001Z"), now),
            Err(ApiError::RequestTimeTooSkewed)
        ));
    }

    #[test]
    fn trailers_lookup_is_case_insensitive() {
        let t = Trailers::default();
        assert_eq!(t.get("x-amz-checksum-crc32"), None);
        t.set(vec![("x-amz-checksum-crc32".into(), "AAAAAA==".into())]);
        assert_eq!(
            t.clone().get("X-Amz-Checksum-CRC32").as_deref(),
            Some("AAAAAA==")
        );
    }
}
