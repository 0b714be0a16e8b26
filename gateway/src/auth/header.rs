//! SigV4 carried in the `Authorization` header: parsing
//! `AWS4-HMAC-SHA256 Credential=AK/date/region/s3/aws4_request, SignedHeaders=a;b, Signature=hex`, checking
//! scope, clock and x-amz-content-sha256, verifying the signature, and choosing how the body is verified.
//!
//! Checks run cheapest and most specific first, so a client gets the most useful error: syntax, then the
//! credential scope, then the timestamp, then the key, then the signature.

use chrono::{DateTime, Utc};
use http::HeaderValue;
use http::header::DATE;
use http::request::Parts;

use super::canonical::{self, RequestToCheck, SigningContext, X_AMZ_CONTENT_SHA256, X_AMZ_DATE};
use super::{AuthOutcome, ChunkSigner, ContentSha256, CredentialStore, Payload, Signing};
use crate::error::{ApiError, ApiResult};

/// The three components of the header.
#[derive(Debug, PartialEq, Eq)]
struct AuthHeader<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn malformed(msg: impl Into<String>) -> ApiError {
    ApiError::AuthorizationHeaderMalformed(msg.into())
}

/// Splits the header into its components. Tolerates any whitespace around commas and `=`.
fn parse(value: &str) -> ApiResult<AuthHeader<'_>> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != canonical::ALGORITHM {
        if algorithm.starts_with(canonical::ALGORITHM) {
            return Err(malformed("expected a space after AWS4-HMAC-SHA256"));
        }
        let shown: String = algorithm.chars().take(64).collect();
        return Err(ApiError::InvalidArgument(format!(
            "Unsupported Authorization Type '{shown}'; only AWS4-HMAC-SHA256 is supported"
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for component in rest.split(',').map(str::trim).filter(|c| !c.is_empty()) {
        let Some((key, val)) = component.split_once('=') else {
            return Err(malformed(format!(
                "the authorization component '{component}' is malformed"
            )));
        };
        let slot = match key.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(malformed(format!(
                    "unknown authorization component '{other}'"
                )));
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(malformed(format!(
                "the authorization component '{}' appears twice",
                key.trim()
            )));
        }
    }
    Ok(AuthHeader {
        credential: credential.ok_or_else(|| malformed("missing Credential"))?,
        signed_headers: signed_headers.ok_or_else(|| malformed("missing SignedHeaders"))?,
        signature: signature.ok_or_else(|| malformed("missing Signature"))?,
    })
}

/// The request time from x-amz-date, or from Date when x-amz-date is absent. S3 answers AccessDenied here.
fn request_time(parts: &Parts) -> ApiResult<DateTime<Utc>> {
    let time = match parts.headers.get(X_AMZ_DATE) {
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| canonical::parse_amz_date(s.trim())),
        None => parts
            .headers
            .get(DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(canonical::parse_http_date),
    };
    time.ok_or_else(|| {
        tracing::debug!("AWS authentication requires a valid Date or x-amz-date header");
        ApiError::AccessDenied
    })
}

pub(crate) fn authenticate(
    parts: &Parts,
    value: &HeaderValue,
    creds: &dyn CredentialStore,
    region: &str,
    now: DateTime<Utc>,
) -> ApiResult<AuthOutcome> {
    let value = value
        .to_str()
        .map_err(|_| malformed("the header contains bytes that are not visible ASCII"))?;
    let auth = parse(value)?;
    let credential = canonical::parse_credential(auth.credential, region).map_err(malformed)?;
    let signed_headers = canonical::parse_signed_headers(auth.signed_headers).map_err(malformed)?;
    let provided = canonical::parse_hex32(auth.signature)
        .ok_or_else(|| malformed("the Signature must be 64 hexadecimal characters"))?;

    let payload_hash = parts
        .headers
        .get(X_AMZ_CONTENT_SHA256)
        .ok_or_else(|| {
            ApiError::InvalidArgument(
                "Missing required header for this request: x-amz-content-sha256".into(),
            )
        })?
        .to_str()
        .map_err(|_| ApiError::InvalidArgument("x-amz-content-sha256 is not ASCII".into()))?;
    let content = ContentSha256::parse(payload_hash)?;

    let time = request_time(parts)?;
    let date = time.format("%Y%m%d").to_string();
    if credential.date != date {
        return Err(malformed(format!(
            "Invalid credential date \"{}\". This date is not the same as X-Amz-Date: \"{date}\".",
            credential.date
        )));
    }
    let (identity, secret) = creds
        .lookup(credential.access_key)
        .ok_or(ApiError::InvalidAccessKeyId)?;
    super::check_skew(time, now)?;
    canonical::check_amz_headers_signed(&parts.headers, &signed_headers)?;

    let ctx = SigningContext::new(&secret, time, region);
    let request = RequestToCheck {
        parts,
        canonical_query: canonical::canonical_query(parts.uri.query(), false),
        signed_headers: &signed_headers,
        payload_hash,
    };
    if !request.verify(&ctx, &provided) {
        return Err(ApiError::SignatureDoesNotMatch);
    }

    let payload = match content {
        ContentSha256::Hex(hash) => Payload::Sha256(hash),
        ContentSha256::Unsigned => Payload::Unsigned,
        ContentSha256::StreamingSigned { trailer } => Payload::StreamingSigned {
            ctx: ChunkSigner::new(ctx, provided),
            trailer,
        },
        ContentSha256::StreamingUnsignedTrailer => Payload::StreamingUnsignedTrailer,
    };
    super::outcome(
        Some(identity),
        Some(Signing::V4_HEADER),
        payload,
        &parts.headers,
    )
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{Trailers, authenticate as auth, collect_now, verified_body};
    use super::*;
    use bytes::Bytes;

    const EMPTY: &str = canonical::EMPTY_SHA256_HEX;
    const REGION: &str = "us-east-1";

    fn authorization(signed: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request, SignedHeaders={signed}, \
             Signature={signature}"
        )
    }

    /// Signs `parts` the way a client would, over `canonical_uri`, and adds the Authorization header.
    fn sign(parts: &mut Parts, signed: &str, time: &str, canonical_uri: &str) {
        let names = canonical::parse_signed_headers(signed).unwrap();
        let payload_hash = parts.headers[X_AMZ_CONTENT_SHA256]
            .to_str()
            .unwrap()
            .to_owned();
        let req = RequestToCheck {
            parts,
            canonical_query: canonical::canonical_query(parts.uri.query(), false),
            signed_headers: &names,
            payload_hash: &payload_hash,
        };
        let ctx = SigningContext::new(SECRET, at(time), REGION);
        let sig = hex::encode(ctx.sign_canonical_request(&req.canonical_request(canonical_uri)));
        let value = format!(
            "AWS4-HMAC-SHA256 Credential={AK}/{}/us-east-1/s3/aws4_request,SignedHeaders={signed},Signature={sig}",
            &time[..8]
        );
        parts
            .headers
            .insert("authorization", value.parse().unwrap());
    }

    fn get_object(signature: &str) -> Parts {
        parts(
            "GET",
            "/test.txt",
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("range", "bytes=0-9"),
                ("x-amz-content-sha256", EMPTY),
                ("x-amz-date", "20130524T000000Z"),
                (
                    "authorization",
                    &authorization("host;range;x-amz-content-sha256;x-amz-date", signature),
                ),
            ],
        )
    }

    const GET_OBJECT_SIG: &str = "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41";

    #[test]
    fn aws_example_get_object() {
        let p = get_object(GET_OBJECT_SIG);
        let out = auth(&p, &Store, REGION, None, at("20130524T000500Z")).unwrap();
        assert_eq!(out.identity.unwrap().access_key, AK);
        assert!(matches!(out.payload, Payload::Sha256(h) if h == canonical::sha256(b"")));
        assert_eq!(out.decoded_content_length, None);
    }

    #[test]
    fn aws_example_get_object_without_spaces() {
        let value = format!(
            "AWS4-HMAC-SHA256 Credential={AK}/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;\
             x-amz-content-sha256;x-amz-date,Signature={GET_OBJECT_SIG}"
        );
        let mut p = get_object(GET_OBJECT_SIG);
        p.headers.insert("authorization", value.parse().unwrap());
        assert!(auth(&p, &Store, REGION, None, at("20130524T000000Z")).is_ok());
    }

    #[test]
    fn aws_example_put_object() {
        let body = "Welcome to Amazon S3.";
        let body_hash = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
        assert_eq!(hex::encode(canonical::sha256(body.as_bytes())), body_hash);
        let signed = "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class";
        let sig = "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd";
        // Sent unencoded and sent encoded: both canonicalise to /test%24file.text.
        for uri in ["/test$file.text", "/test%24file.text"] {
            let p = parts(
                "PUT",
                uri,
                &[
                    ("host", "examplebucket.s3.amazonaws.com"),
                    ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                    ("x-amz-date", "20130524T000000Z"),
                    ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                    ("x-amz-content-sha256", body_hash),
                    ("authorization", &authorization(signed, sig)),
                ],
            );
            let out = auth(&p, &Store, REGION, None, at("20130524T000000Z")).unwrap();
            let Payload::Sha256(hash) = out.payload else {
                panic!("expected a hashed payload")
            };
            assert_eq!(hex::encode(hash), body_hash);

            let frames = futures_util::stream::iter(vec![
                Ok(Bytes::from_static(b"Welcome to ")),
                Ok(Bytes::from_static(b"Amazon S3.")),
            ]);
            let (bytes, err) = collect_now(verified_body(
                frames,
                out.payload.clone(),
                Trailers::default(),
            ));
            assert_eq!((bytes.as_slice(), err.is_none()), (body.as_bytes(), true));

            let frames =
                futures_util::stream::iter(vec![Ok(Bytes::from_static(b"Welcome to Amazon S4."))]);
            let (_, err) = collect_now(verified_body(frames, out.payload, Trailers::default()));
            assert!(matches!(err, Some(ApiError::XAmzContentSha256Mismatch)));
        }
    }

    fn bucket_get(uri: &str, signature: &str) -> Parts {
        parts(
            "GET",
            uri,
            &[
                ("host", "examplebucket.s3.amazonaws.com"),
                ("x-amz-content-sha256", EMPTY),
                ("x-amz-date", "20130524T000000Z"),
                (
                    "authorization",
                    &authorization("host;x-amz-content-sha256;x-amz-date", signature),
                ),
            ],
        )
    }

    #[test]
    fn aws_example_get_bucket_lifecycle() {
        let p = bucket_get(
            "/?lifecycle",
            "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        );
        assert!(auth(&p, &Store, REGION, None, at("20130524T000000Z")).is_ok());
    }

    #[test]
    fn aws_example_list_objects() {
        let sig = "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7";
        // Arrival order does not matter: the canonical query is sorted.
        for uri in ["/?max-keys=2&prefix=J", "/?prefix=J&max-keys=2"] {
            assert!(
                auth(
                    &bucket_get(uri, sig),
                    &Store,
                    REGION,
                    None,
                    at("20130524T000000Z")
                )
                .is_ok()
            );
        }
        let err = auth(
            &bucket_get("/?max-keys=3&prefix=J", sig),
            &Store,
            REGION,
            None,
            at("20130524T000000Z"),
        );
        assert!(matches!(err, Err(ApiError::SignatureDoesNotMatch)));
    }

    /// AWS example "PUT Object" in multiple chunks: seed signature, then the chunk chain over the body.
    #[test]
    fn aws_example_chunked_upload() {
        let seed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
        let signed = "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
                      x-amz-decoded-content-length;x-amz-storage-class";
        let p = parts(
            "PUT",
            "/examplebucket/chunkObject.txt",
            &[
                ("host", "s3.amazonaws.com"),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                ("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"),
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", "66560"),
                ("content-length", "66824"),
                ("authorization", &authorization(signed, seed)),
            ],
        );
        let out = auth(&p, &Store, REGION, None, at("20130524T000000Z")).unwrap();
        assert_eq!(out.decoded_content_length, Some(66560));
        let Payload::StreamingSigned { trailer: false, .. } = &out.payload else {
            panic!("expected streaming")
        };

        let mut body = Vec::new();
        body.extend_from_slice(
            b"10000;chunk-signature=ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648\r\n",
        );
        body.extend_from_slice(&[b'a'; 65536]);
        body.extend_from_slice(
            b"\r\n400;chunk-signature=0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497\r\n",
        );
        body.extend_from_slice(&[b'a'; 1024]);
        body.extend_from_slice(
            b"\r\n0;chunk-signature=b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9\r\n\r\n",
        );
        assert_eq!(body.len(), 66824);

        let frames: Vec<ApiResult<Bytes>> = body
            .chunks(7000)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let (bytes, err) = collect_now(verified_body(
            futures_util::stream::iter(frames),
            out.payload.clone(),
            Trailers::default(),
        ));
        assert!(err.is_none(), "{err:?}");
        assert_eq!(bytes, vec![b'a'; 66560]);

        // One flipped payload byte in the first chunk breaks its signature; nothing of it is released.
        body[100] = b'b';
        let frames = futures_util::stream::iter(vec![Ok(Bytes::from(body))]);
        let (bytes, err) = collect_now(verified_body(frames, out.payload, Trailers::default()));
        assert!(matches!(err, Some(ApiError::SignatureDoesNotMatch)));
        assert!(bytes.is_empty());
    }

    /// AWS example "PUT Object" in chunks with a signed trailing checksum. Encoders differ on whether an empty
    /// line separates the final chunk from the trailers; both layouts are accepted.
    #[test]
    fn aws_example_chunked_upload_with_trailer() {
        let seed = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e";
        let signed = "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;\
                      x-amz-storage-class;x-amz-trailer";
        let p = parts(
            "PUT",
            "/examplebucket/chunkObject.txt",
            &[
                ("host", "s3.amazonaws.com"),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
                (
                    "x-amz-content-sha256",
                    "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
                ),
                ("content-encoding", "aws-chunked"),
                ("x-amz-decoded-content-length", "66560"),
                ("x-amz-trailer", "x-amz-checksum-crc32c"),
                ("authorization", &authorization(signed, seed)),
            ],
        );
        let out = auth(&p, &Store, REGION, None, at("20130524T000000Z")).unwrap();
        let Payload::StreamingSigned { trailer: true, .. } = &out.payload else {
            panic!("expected streaming with trailer")
        };

        let mut chunks = Vec::new();
        chunks.extend_from_slice(
            b"10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n",
        );
        chunks.extend_from_slice(&[b'a'; 65536]);
        chunks.extend_from_slice(
            b"\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n",
        );
        chunks.extend_from_slice(&[b'a'; 1024]);
        chunks.extend_from_slice(
            b"\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n",
        );
        let trailer = b"x-amz-checksum-crc32c:sOO8/Q==\r\n\
            x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n";
        for separator in [&b""[..], b"\r\n"] {
            let body = [&chunks[..], separator, trailer].concat();
            let frames: Vec<ApiResult<Bytes>> = body
                .chunks(777)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect();
            let trailers = Trailers::default();
            let (bytes, err) = collect_now(verified_body(
                futures_util::stream::iter(frames),
                out.payload.clone(),
                trailers.clone(),
            ));
            assert!(err.is_none(), "{err:?}");
            assert_eq!(bytes.len(), 66560);
            assert_eq!(
                trailers.get("x-amz-checksum-crc32c").as_deref(),
                Some("sOO8/Q==")
            );

            let forged = String::from_utf8(body)
                .unwrap()
                .replace("sOO8/Q==", "AAAAAA==");
            let frames = futures_util::stream::iter(vec![Ok(Bytes::from(forged))]);
            let trailers = Trailers::default();
            let (_, err) =
                collect_now(verified_body(frames, out.payload.clone(), trailers.clone()));
            assert!(
                matches!(err, Some(ApiError::SignatureDoesNotMatch)),
                "{err:?}"
            );
            assert_eq!(trailers.get("x-amz-checksum-crc32c"), None);
        }
    }

    #[test]
    fn wrong_secret_is_signature_does_not_match() {
        let err = auth(
            &get_object(GET_OBJECT_SIG),
            &WrongSecretStore,
            REGION,
            None,
            at("20130524T000000Z"),
        );
        assert!(matches!(err, Err(ApiError::SignatureDoesNotMatch)));
        let tampered = GET_OBJECT_SIG.replace('f', "e");
        let err = auth(
            &get_object(&tampered),
            &Store,
            REGION,
            None,
            at("20130524T000000Z"),
        );
        assert!(matches!(err, Err(ApiError::SignatureDoesNotMatch)));
    }

    #[test]
    fn skewed_clock_is_refused() {
        let err = auth(
            &get_object(GET_OBJECT_SIG),
            &Store,
            REGION,
            None,
            at("20130524T001501Z"),
        );
        assert!(matches!(err, Err(ApiError::RequestTimeTooSkewed)));
        let err = auth(
            &get_object(GET_OBJECT_SIG),
            &Store,
            REGION,
            None,
            at("20130523T234459Z"),
        );
        assert!(matches!(err, Err(ApiError::RequestTimeTooSkewed)));
        assert!(
            auth(
                &get_object(GET_OBJECT_SIG),
                &Store,
                REGION,
                None,
                at("20130524T001500Z")
            )
            .is_ok()
        );
    }

    #[test]
    fn unknown_access_key() {
        let mut p = get_object(GET_OBJECT_SIG);
        let value = authorization("host;range;x-amz-content-sha256;x-amz-date", GET_OBJECT_SIG)
            .replace(AK, "AKIDUNKNOWN");
        p.headers.insert("authorization", value.parse().unwrap());
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::InvalidAccessKeyId)
        ));
    }

    #[test]
    fn wrong_region_names_both_regions() {
        let err = auth(
            &get_object(GET_OBJECT_SIG),
            &Store,
            "eu-west-1",
            None,
            at("20130524T000000Z"),
        )
        .unwrap_err();
        let ApiError::AuthorizationHeaderMalformed(msg) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            msg,
            "the region 'us-east-1' is wrong; expecting 'eu-west-1'"
        );
    }

    #[test]
    fn header_syntax_errors() {
        let cases = [
            "AWS4-HMAC-SHA256",
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request",
            "AWS4-HMAC-SHA256 Credential=x/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=zz",
            "AWS4-HMAC-SHA256 Credential=x/20130524/us-east-1/s3/aws4_request, SignedHeaders=host, Signature",
            "AWS4-HMAC-SHA256 Credential=a, Credential=b, SignedHeaders=host, Signature=00",
            "AWS4-HMAC-SHA256 Foo=bar",
            "AWS4-HMAC-SHA256Credential=x",
        ];
        for value in cases {
            let mut p = get_object(GET_OBJECT_SIG);
            p.headers.insert("authorization", value.parse().unwrap());
            let err = auth(&p, &Store, REGION, None, at("20130524T000000Z"));
            assert!(
                matches!(err, Err(ApiError::AuthorizationHeaderMalformed(_))),
                "{value}: {err:?}"
            );
        }
    }

    #[test]
    fn other_algorithms_are_refused_clearly() {
        for value in ["Bearer token", "AWS4 x"] {
            let mut p = get_object(GET_OBJECT_SIG);
            p.headers.insert("authorization", value.parse().unwrap());
            let err = auth(&p, &Store, REGION, None, at("20130524T000000Z"));
            assert!(
                matches!(err, Err(ApiError::InvalidArgument(_))),
                "{value}: {err:?}"
            );
        }
    }

    #[test]
    fn host_must_be_signed() {
        let mut p = get_object(GET_OBJECT_SIG);
        p.headers.insert(
            "authorization",
            authorization("range;x-amz-date", GET_OBJECT_SIG)
                .parse()
                .unwrap(),
        );
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::AuthorizationHeaderMalformed(_))
        ));
    }

    #[test]
    fn content_sha256_is_required_and_checked() {
        let mut p = get_object(GET_OBJECT_SIG);
        p.headers.remove(X_AMZ_CONTENT_SHA256);
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::InvalidArgument(_))
        ));
        p.headers
            .insert(X_AMZ_CONTENT_SHA256, "SOMETHING-ELSE".parse().unwrap());
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::InvalidArgument(_))
        ));
    }

    #[test]
    fn date_problems() {
        let mut p = get_object(GET_OBJECT_SIG);
        p.headers.insert(X_AMZ_DATE, "2013-05-24".parse().unwrap());
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::AccessDenied)
        ));
        p.headers.remove(X_AMZ_DATE);
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::AccessDenied)
        ));
        // The scope date must be the request's date.
        p.headers
            .insert(X_AMZ_DATE, "20130525T000000Z".parse().unwrap());
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130525T000000Z")),
            Err(ApiError::AuthorizationHeaderMalformed(_))
        ));
    }

    #[test]
    fn date_header_stands_in_for_x_amz_date() {
        let mut p = parts(
            "GET",
            "/b/k",
            &[
                ("host", "h"),
                ("date", "Fri, 24 May 2013 00:00:00 GMT"),
                ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ],
        );
        sign(&mut p, "date;host", "20130524T000000Z", "/b/k");
        let out = auth(&p, &Store, REGION, None, at("20130524T000000Z")).unwrap();
        assert!(matches!(out.payload, Payload::Unsigned));
    }

    #[test]
    fn raw_path_is_tried_when_the_canonical_one_fails() {
        // The key "a/b" sent as a%2Fb and signed as sent; canonicalising would turn it into /b/a/b.
        let mut p = parts(
            "GET",
            "/b/a%2Fb",
            &[
                ("host", "h"),
                ("x-amz-date", "20130524T000000Z"),
                ("x-amz-content-sha256", "UNSIGNED-PAYLOAD"),
            ],
        );
        sign(&mut p, "host;x-amz-date", "20130524T000000Z", "/b/a%2Fb");
        assert!(auth(&p, &Store, REGION, None, at("20130524T000000Z")).is_ok());
        sign(&mut p, "host;x-amz-date", "20130524T000000Z", "/b/a/b");
        assert!(auth(&p, &Store, REGION, None, at("20130524T000000Z")).is_ok());
        sign(&mut p, "host;x-amz-date", "20130524T000000Z", "/b/a%252Fb");
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::SignatureDoesNotMatch)
        ));
    }

    #[test]
    fn unsigned_amz_header_is_refused() {
        let mut p = get_object(GET_OBJECT_SIG);
        p.headers
            .insert("x-amz-acl", "public-read".parse().unwrap());
        assert!(matches!(
            auth(&p, &Store, REGION, None, at("20130524T000000Z")),
            Err(ApiError::AccessDenied)
        ));
    }

    #[test]
    fn streaming_trailer_variants() {
        for (value, signed_trailer) in [
            ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER", Some(true)),
            ("STREAMING-UNSIGNED-PAYLOAD-TRAILER", None),
        ] {
            let mut p = parts(
                "PUT",
                "/b/k",
                &[
                    ("host", "h"),
                    ("x-amz-date", "20130524T000000Z"),
                    ("x-amz-content-sha256", value),
                    ("x-amz-decoded-content-length", "5"),
                    ("x-amz-trailer", "x-amz-checksum-crc32"),
                ],
            );
            sign(
                &mut p,
                "host;x-amz-date;x-amz-decoded-content-length;x-amz-trailer",
                "20130524T000000Z",
                "/b/k",
            );
            let out = auth(&p, &Store, REGION, None, at("20130524T000000Z")).unwrap();
            assert_eq!(out.decoded_content_length, Some(5));
            match (out.payload, signed_trailer) {
                (Payload::StreamingSigned { trailer, .. }, Some(expected)) => {
                    assert_eq!(trailer, expected)
                }
                (Payload::StreamingUnsignedTrailer, None) => {}
                (other, _) => panic!("{value}: {other:?}"),
            }
        }
    }

    #[test]
    fn parse_tolerates_whitespace() {
        let h = parse("AWS4-HMAC-SHA256   Credential = a/b ,SignedHeaders=host;x ,  Signature=00 ")
            .unwrap();
        assert_eq!(
            h,
            AuthHeader {
                credential: "a/b",
                signed_headers: "host;x",
                signature: "00"
            }
        );
    }
}
