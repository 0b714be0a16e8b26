//! A small AWS Signature Version 4 signer and a raw HTTP/1.1 client, for tests that must control the wire
//! byte for byte (bad signatures, skewed clocks, aws-chunked bodies, raw paths, missing Content-Length).
//!
//! Everything is blocking over `std::net::TcpStream` with `Connection: close`, bounded by socket timeouts.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::harness::{ACCESS_KEY, SECRET_KEY};

/// Hex SHA-256 of the empty string.
pub(crate) const EMPTY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

pub(crate) fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// AWS UriEncode: unreserved bytes verbatim, everything else `%XX`; `/` kept when `keep_slash`.
pub(crate) fn uri_encode(s: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(b as char)
            }
            b'/' if keep_slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

/// Credentials and clock for one signature.
#[derive(Clone, Debug)]
pub(crate) struct Signer {
    pub(crate) access: String,
    pub(crate) secret: String,
    pub(crate) region: String,
    pub(crate) time: DateTime<Utc>,
}

impl Default for Signer {
    fn default() -> Self {
        Self {
            access: ACCESS_KEY.into(),
            secret: SECRET_KEY.into(),
            region: "us-east-1".into(),
            time: Utc::now(),
        }
    }
}

/// What a signature produced: the Authorization header value, the seed signature and the signing key.
pub(crate) struct Signed {
    pub(crate) authorization: String,
    pub(crate) signature: String,
    pub(crate) key: [u8; 32],
    pub(crate) amz_date: String,
    pub(crate) scope: String,
}

impl Signer {
    pub(crate) fn amz_date(&self) -> String {
        self.time.format("%Y%m%dT%H%M%SZ").to_string()
    }

    fn scope(&self) -> String {
        format!(
            "{}/{}/s3/aws4_request",
            self.time.format("%Y%m%d"),
            self.region
        )
    }

    fn key(&self) -> [u8; 32] {
        let k = hmac(
            format!("AWS4{}", self.secret).as_bytes(),
            self.time.format("%Y%m%d").to_string().as_bytes(),
        );
        let k = hmac(&k, self.region.as_bytes());
        let k = hmac(&k, b"s3");
        hmac(&k, b"aws4_request")
    }

    /// Signs a request. `path` is the raw path as sent, `query` the raw query (without `?`), `headers` must
    /// already hold every header to sign (lower-case names); all of them are signed.
    pub(crate) fn sign(
        &self,
        method: &str,
        path: &str,
        query: &str,
        headers: &[(String, String)],
        payload_hash: &str,
    ) -> Signed {
        let canonical_uri = uri_encode(&percent_decode(path), true);
        let mut pairs: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (
                    uri_encode(&percent_decode(k), false),
                    uri_encode(&percent_decode(v), false),
                )
            })
            .collect();
        pairs.sort();
        let canonical_query = pairs
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        let mut hs: Vec<(String, String)> = headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_ascii_lowercase(),
                    v.split_whitespace().collect::<Vec<_>>().join(" "),
                )
            })
            .collect();
        hs.sort();
        let canonical_headers: String = hs.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
        let signed_headers = hs
            .iter()
            .map(|(k, _)| k.as_str())
            .collect::<Vec<_>>()
            .join(";");
        let creq = format!(
            "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{payload_hash}"
        );
        let amz_date = self.amz_date();
        let scope = self.scope();
        let sts = format!(
            "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
            sha256_hex(creq.as_bytes())
        );
        let key = self.key();
        let signature = hex::encode(hmac(&key, sts.as_bytes()));
        Signed {
            authorization: format!(
                "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                self.access
            ),
            signature,
            key,
            amz_date,
            scope,
        }
    }
}

impl Signed {
    /// The signature of the next aws-chunked chunk, chained from `prev`.
    pub(crate) fn chunk_signature(&self, prev: &str, data: &[u8]) -> String {
        let sts = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{prev}\n{EMPTY_SHA256}\n{}",
            self.amz_date,
            self.scope,
            sha256_hex(data)
        );
        hex::encode(hmac(&self.key, sts.as_bytes()))
    }
}

impl Signer {
    /// A presigned query string (query-string SigV4, `UNSIGNED-PAYLOAD`, only `host` signed) valid for
    /// `expires` seconds from the signer's time.
    pub(crate) fn presign_query(
        &self,
        method: &str,
        path: &str,
        host: &str,
        expires: u64,
    ) -> String {
        let credential = format!("{}/{}", self.access, self.scope());
        let query = format!(
            "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={}&X-Amz-Date={}&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host",
            uri_encode(credential.as_bytes(), false),
            self.amz_date()
        );
        let signed = self.sign(
            method,
            path,
            &query,
            &[("host".to_owned(), host.to_owned())],
            "UNSIGNED-PAYLOAD",
        );
        format!("{query}&X-Amz-Signature={}", signed.signature)
    }
}

/// A parsed HTTP response.
#[derive(Debug)]
pub(crate) struct RawResponse {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawResponse {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The `<Code>` of an S3 error document.
    pub(crate) fn code(&self) -> Option<String> {
        xml_elem(&self.text(), "Code")
    }
}

/// The text of the first `<name>` element of `doc` (no unescaping).
pub(crate) fn xml_elem(doc: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find(&format!("</{name}>"))? + start;
    Some(doc[start..end].to_owned())
}

/// A request to send raw.
#[derive(Debug, Clone)]
pub(crate) struct RawRequest {
    pub(crate) method: String,
    /// Raw path, as it goes on the wire.
    pub(crate) path: String,
    /// Raw query without `?` (may be empty).
    pub(crate) query: String,
    /// Headers other than Host, Content-Length and Connection.
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    /// Send Content-Length (true) or nothing about the length (false; use with a Transfer-Encoding header).
    pub(crate) content_length: bool,
    /// Host header to send instead of the endpoint's `host:port` (virtual-hosted style).
    pub(crate) host: Option<String>,
}

impl RawRequest {
    pub(crate) fn new(method: &str, path: &str, query: &str) -> Self {
        Self {
            method: method.into(),
            path: path.into(),
            query: query.into(),
            headers: Vec::new(),
            body: Vec::new(),
            content_length: true,
            host: None,
        }
    }

    /// Sends `host` as the Host header (and signs it).
    pub(crate) fn with_host(mut self, host: &str) -> Self {
        self.host = Some(host.to_owned());
        self
    }

    pub(crate) fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.to_ascii_lowercase(), v.to_owned()));
        self
    }

    pub(crate) fn body(mut self, b: impl Into<Vec<u8>>) -> Self {
        self.body = b.into();
        self
    }

    /// Adds x-amz-date, x-amz-content-sha256 (`payload_hash`, or the body's hash when None) and Authorization.
    /// Returns the signature details (for aws-chunked).
    pub(crate) fn sign_with(
        &mut self,
        signer: &Signer,
        host: &str,
        payload_hash: Option<&str>,
    ) -> Signed {
        let hash = payload_hash
            .map(str::to_owned)
            .unwrap_or_else(|| sha256_hex(&self.body));
        self.headers.retain(|(k, _)| {
            k != "authorization" && k != "x-amz-date" && k != "x-amz-content-sha256"
        });
        self.headers.push(("x-amz-date".into(), signer.amz_date()));
        self.headers
            .push(("x-amz-content-sha256".into(), hash.clone()));
        let mut to_sign = self.headers.clone();
        to_sign.push(("host".into(), host.into()));
        if self.content_length && !self.body.is_empty() {
            to_sign.push(("content-length".into(), self.body.len().to_string()));
        }
        let signed = signer.sign(&self.method, &self.path, &self.query, &to_sign, &hash);
        self.headers
            .push(("authorization".into(), signed.authorization.clone()));
        signed
    }

    /// Signs with the root credentials at the current time.
    pub(crate) fn signed(mut self, endpoint: &str) -> Self {
        let host = self.host.clone().unwrap_or_else(|| host_of(endpoint));
        self.sign_with(&Signer::default(), &host, None);
        self
    }

    /// Sends the request to `endpoint` (`http://host:port`) and reads the whole response.
    pub(crate) fn send(&self, endpoint: &str) -> RawResponse {
        let addr = host_of(endpoint);
        let host = self.host.clone().unwrap_or_else(|| addr.clone());
        let mut stream = TcpStream::connect(&addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        let target = if self.query.is_empty() {
            self.path.clone()
        } else {
            format!("{}?{}", self.path, self.query)
        };
        let mut head = format!(
            "{} {target} HTTP/1.1\r\nhost: {host}\r\nconnection: close\r\n",
            self.method
        );
        if self.content_length
            && (!self.body.is_empty() || matches!(self.method.as_str(), "PUT" | "POST"))
        {
            head.push_str(&format!("content-length: {}\r\n", self.body.len()));
        }
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        let mut out = head.into_bytes();
        out.extend_from_slice(&self.body);
        // The server may answer and close before reading the whole body; a write error is then expected.
        let _ = stream.write_all(&out);
        let _ = stream.flush();
        let mut raw = Vec::new();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset && !raw.is_empty() => {
                    break;
                }
                Err(e) => panic!(
                    "reading response: {e}; got so far: {}",
                    String::from_utf8_lossy(&raw)
                ),
            }
        }
        parse_response(&raw, self.method == "HEAD")
    }
}

/// `host:port` of an `http://host:port` endpoint.
pub(crate) fn host_of(endpoint: &str) -> String {
    endpoint
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned()
}

fn parse_response(raw: &[u8], head: bool) -> RawResponse {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head_text = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().expect("status line");
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status code");
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let rest = &raw[split + 4..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.to_ascii_lowercase().contains("chunked"));
    let body = if head || status == 204 || status == 304 {
        Vec::new()
    } else if chunked {
        dechunk(rest)
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
    {
        let len: usize = len;
        assert!(rest.len() >= len, "short body: {} < {len}", rest.len());
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    RawResponse {
        status,
        headers,
        body,
    }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..1_000_000 {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            break;
        };
        let size_text = String::from_utf8_lossy(&b[..eol]).into_owned();
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .expect("chunk size");
        b = &b[eol + 2..];
        if size == 0 {
            break;
        }
        out.extend_from_slice(&b[..size]);
        b = &b[size + 2..];
    }
    out
}

/// Encodes `data` as an aws-chunked body with chunk signatures (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), chunks of
/// `chunk` bytes. Returns the encoded body; `tamper` flips one payload byte after signing (chunk index, byte).
pub(crate) fn aws_chunked(
    signed: &Signed,
    data: &[u8],
    chunk: usize,
    tamper: Option<(usize, usize)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    let mut prev = signed.signature.clone();
    let mut pieces: Vec<&[u8]> = data.chunks(chunk).collect();
    pieces.push(&[]);
    for (i, piece) in pieces.iter().enumerate() {
        let sig = signed.chunk_signature(&prev, piece);
        out.extend_from_slice(format!("{:x};chunk-signature={sig}\r\n", piece.len()).as_bytes());
        let mut bytes = piece.to_vec();
        if let Some((ci, bi)) = tamper
            && ci == i
        {
            bytes[bi] ^= 0x01;
        }
        out.extend_from_slice(&bytes);
        out.extend_from_slice(b"\r\n");
        prev = sig;
    }
    out
}

/// The length of an aws-chunked encoding of `len` bytes in chunks of `chunk` (signed form).
pub(crate) fn aws_chunked_len(len: usize, chunk: usize) -> usize {
    let sig_line = |n: usize| format!("{n:x};chunk-signature=").len() + 64 + 2;
    let mut total = 0;
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk);
        total += sig_line(n) + n + 2;
        left -= n;
    }
    total + sig_line(0) + 2
}

#[test]
fn signer_matches_the_aws_get_object_example() {
    // https://docs.aws.amazon.com/AmazonS3/latest/API/sig-v4-header-based-auth.html, "GET Object".
    let signer = Signer {
        access: "AKIAIOSFODNN7EXAMPLE".into(),
        secret: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        region: "us-east-1".into(),
        time: DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
    };
    let headers = vec![
        (
            "host".to_owned(),
            "examplebucket.s3.amazonaws.com".to_owned(),
        ),
        ("range".to_owned(), "bytes=0-9".to_owned()),
        ("x-amz-content-sha256".to_owned(), EMPTY_SHA256.to_owned()),
        ("x-amz-date".to_owned(), "20130524T000000Z".to_owned()),
    ];
    let s = signer.sign("GET", "/test.txt", "", &headers, EMPTY_SHA256);
    assert_eq!(
        s.signature,
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
    );
}

#[test]
fn aws_chunked_length_formula() {
    let s = Signer::default().sign("PUT", "/b/k", "", &[("host".into(), "h".into())], "x");
    for (len, chunk) in [(0, 10), (1, 10), (10, 10), (65_536 + 5, 65_536)] {
        let data = vec![7u8; len];
        assert_eq!(
            aws_chunked(&s, &data, chunk, None).len(),
            aws_chunked_len(len, chunk),
            "{len}/{chunk}"
        );
    }
}
