//! AWS Signature Version 4, header form, for S3 requests: canonical request, string to sign, and the
//! `Authorization` header value. Kept small and allocation-light because every benchmark request goes through
//! it; the signing key is derived once per day and cached. Public so that `strata admin` (and tests that sign
//! browser-upload forms) share this signer instead of writing another.

use std::fmt::Write as _;
use std::sync::Mutex;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

type HmacSha256 = Hmac<Sha256>;

/// The hex SHA-256 of the empty string, the payload hash of requests without a body.
pub const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The payload hash value that tells the server the body is not signed.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// The parts of a request that SigV4 covers.
pub struct SignInput<'a> {
    /// `GET`, `PUT`, ...
    pub method: &'a str,
    /// The URI-encoded path (S3 does not double-encode).
    pub canonical_uri: &'a str,
    /// The canonical query string, see [`canonical_query`].
    pub canonical_query: &'a str,
    /// Signed headers: lowercase names, sorted by name, values trimmed.
    pub headers: &'a [(&'a str, &'a str)],
    /// Hex SHA-256 of the body, or [`UNSIGNED_PAYLOAD`].
    pub payload_hash: &'a str,
    /// `YYYYMMDDTHHMMSSZ`, also sent as `x-amz-date`.
    pub amz_date: &'a str,
}

/// Signs requests for one access key in one region, for the `s3` service.
pub struct Signer {
    access_key: String,
    secret_key: String,
    region: String,
    /// `(YYYYMMDD, signing key)` of the last day used.
    key_cache: Mutex<Option<(String, [u8; 32])>>,
}

impl Signer {
    pub fn new(access_key: &str, secret_key: &str, region: &str) -> Signer {
        Signer {
            access_key: access_key.to_owned(),
            secret_key: secret_key.to_owned(),
            region: region.to_owned(),
            key_cache: Mutex::new(None),
        }
    }

    /// Returns the `Authorization` header value for `input`.
    pub fn authorization(&self, input: &SignInput<'_>) -> String {
        let date = &input.amz_date[..8.min(input.amz_date.len())];
        let scope = format!("{date}/{}/s3/aws4_request", self.region);
        let mut signed_headers = String::with_capacity(64);
        for (i, (name, _)) in input.headers.iter().enumerate() {
            if i > 0 {
                signed_headers.push(';');
            }
            signed_headers.push_str(name);
        }
        let canonical = canonical_request(input, &signed_headers);
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
            input.amz_date,
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let signature = self.signature(date, &string_to_sign);
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
            self.access_key
        )
    }

    /// The hex signature of `string_to_sign` with this key's signing key for `date` (`YYYYMMDD`): what SigV4
    /// headers end with, and what browser-upload (POST) forms carry over their base64 policy.
    pub fn signature(&self, date: &str, string_to_sign: &str) -> String {
        hex::encode(hmac(&self.signing_key(date), string_to_sign.as_bytes()))
    }

    /// The `x-amz-credential` value for `date` (`YYYYMMDD`): `AK/date/region/s3/aws4_request`.
    pub fn credential(&self, date: &str) -> String {
        format!("{}/{date}/{}/s3/aws4_request", self.access_key, self.region)
    }

    fn signing_key(&self, date: &str) -> [u8; 32] {
        let mut cache = self.key_cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((d, key)) = cache.as_ref()
            && d == date
        {
            return *key;
        }
        let k_date = hmac(
            format!("AWS4{}", self.secret_key).as_bytes(),
            date.as_bytes(),
        );
        let k_region = hmac(&k_date, self.region.as_bytes());
        let k_service = hmac(&k_region, b"s3");
        let key = hmac(&k_service, b"aws4_request");
        *cache = Some((date.to_owned(), key));
        key
    }
}

fn canonical_request(input: &SignInput<'_>, signed_headers: &str) -> String {
    let mut c = String::with_capacity(256);
    let _ = write!(
        c,
        "{}\n{}\n{}\n",
        input.method, input.canonical_uri, input.canonical_query
    );
    for (name, value) in input.headers {
        let _ = writeln!(c, "{name}:{}", value.trim());
    }
    let _ = write!(c, "\n{signed_headers}\n{}", input.payload_hash);
    c
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// URI-encodes `s` as SigV4 wants: unreserved characters kept, everything else `%XX` (uppercase hex); `/` kept
/// when `keep_slash` (paths) and encoded otherwise (query keys and values).
pub fn uri_encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for &b in s.as_bytes() {
        let unreserved = b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~');
        if unreserved || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

/// Builds the canonical query string from raw `(key, value)` pairs: each encoded, sorted, `&`-joined. The same
/// string is used as the request's actual query, so what is signed is what is sent.
pub fn canonical_query(pairs: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = pairs
        .iter()
        .map(|(k, v)| (uri_encode(k, false), uri_encode(v, false)))
        .collect();
    encoded.sort();
    let mut out = String::new();
    for (i, (k, v)) in encoded.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        let _ = write!(out, "{k}={v}");
    }
    out
}

/// The current time as `YYYYMMDDTHHMMSSZ`.
pub fn amz_date_now() -> String {
    chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string()
}

/// Hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The GET Object example of the AWS documentation ("Signature Calculations for the Authorization Header:
    /// Transferring Payload in a Single Chunk").
    #[test]
    fn aws_get_object_example() {
        let signer = Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        );
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("range", "bytes=0-9"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ];
        let auth = signer.authorization(&SignInput {
            method: "GET",
            canonical_uri: "/test.txt",
            canonical_query: "",
            headers: &headers,
            payload_hash: EMPTY_SHA256,
            amz_date: "20130524T000000Z",
        });
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        // The cached signing key gives the same answer the second time.
        let again = signer.authorization(&SignInput {
            method: "GET",
            canonical_uri: "/test.txt",
            canonical_query: "",
            headers: &headers,
            payload_hash: EMPTY_SHA256,
            amz_date: "20130524T000000Z",
        });
        assert_eq!(auth, again);
    }

    /// The GET Bucket (ListObjects) example of the same AWS page: query parameters in the canonical request.
    #[test]
    fn aws_list_objects_example() {
        let signer = Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        );
        let headers = [
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", EMPTY_SHA256),
            ("x-amz-date", "20130524T000000Z"),
        ];
        let query = canonical_query(&[("prefix", "J"), ("max-keys", "2")]);
        assert_eq!(query, "max-keys=2&prefix=J");
        let auth = signer.authorization(&SignInput {
            method: "GET",
            canonical_uri: "/",
            canonical_query: &query,
            headers: &headers,
            payload_hash: EMPTY_SHA256,
            amz_date: "20130524T000000Z",
        });
        assert!(
            auth.ends_with(
                "Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"
            ),
            "{auth}"
        );
    }

    /// The PUT Object example of the same AWS page: a signed payload hash and an encoded path.
    #[test]
    fn aws_put_object_example() {
        let signer = Signer::new(
            "AKIAIOSFODNN7EXAMPLE",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "us-east-1",
        );
        let body_hash = sha256_hex(b"Welcome to Amazon S3.");
        assert_eq!(
            body_hash,
            "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072"
        );
        let headers = [
            ("date", "Fri, 24 May 2013 00:00:00 GMT"),
            ("host", "examplebucket.s3.amazonaws.com"),
            ("x-amz-content-sha256", body_hash.as_str()),
            ("x-amz-date", "20130524T000000Z"),
            ("x-amz-storage-class", "REDUCED_REDUNDANCY"),
        ];
        let uri = uri_encode("/test$file.text", true);
        assert_eq!(uri, "/test%24file.text");
        let auth = signer.authorization(&SignInput {
            method: "PUT",
            canonical_uri: &uri,
            canonical_query: "",
            headers: &headers,
            payload_hash: &body_hash,
            amz_date: "20130524T000000Z",
        });
        assert!(
            auth.ends_with(
                "Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"
            ),
            "{auth}"
        );
    }

    #[test]
    fn encoding() {
        assert_eq!(uri_encode("bench/1/2", true), "bench/1/2");
        assert_eq!(uri_encode("a b/c", false), "a%20b%2Fc");
        assert_eq!(uri_encode("~x-y_z.", false), "~x-y_z.");
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
    }
}
