//! A minimal S3 client for load generation: path-style or virtual-hosted-style requests over a pooled
//! keep-alive hyper 1 connection pool (HTTP or HTTPS, [`crate::transport`]), signed with [`crate::sigv4`]. It speaks only what the benchmark needs (put, get, head, delete, list,
//! list versions, multi-delete, multipart create/upload part/complete/abort, bucket create/head/delete) and
//! never buffers object bodies: downloads are counted and dropped.

use std::fmt;
use std::sync::Arc;

use anyhow::{Context as _, bail};
use base64::Engine as _;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body_util::BodyExt as _;
use hyper::body::Incoming;
use md5::Digest as _;

use crate::Addressing;
use crate::payload::PayloadBody;
use crate::sigv4::{self, EMPTY_SHA256, SignInput, Signer, UNSIGNED_PAYLOAD};
use crate::transport::{self, HttpClient, TlsOptions};

/// Largest error or listing document read into memory.
const MAX_DOC: usize = 16 << 20;

/// Why one operation failed; its [`fmt::Display`] is the key errors are counted under.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OpError {
    /// The server answered with a non-success status and, when it sent one, an S3 error code.
    Http { status: u16, code: Option<String> },
    /// A GET returned fewer or more bytes than the object size.
    ShortBody { expected: u64, got: u64 },
    /// Connecting, sending or receiving failed.
    Transport(String),
    /// The operation exceeded `--timeout`.
    Timeout,
}

impl fmt::Display for OpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OpError::Http {
                status,
                code: Some(code),
            } => write!(f, "{status} {code}"),
            OpError::Http { status, code: None } => write!(f, "{status}"),
            OpError::ShortBody { expected, got } => write!(f, "body length {got} != {expected}"),
            OpError::Transport(e) => write!(f, "transport: {e}"),
            OpError::Timeout => f.write_str("timeout"),
        }
    }
}

impl std::error::Error for OpError {}

impl OpError {
    /// Whether the request failed for want of an answer (no connection, a broken one, the time limit) rather
    /// than with one.
    pub(crate) fn unanswered(&self) -> bool {
        matches!(self, OpError::Timeout | OpError::Transport(_))
    }

    /// Whether an error counted under `label` (its [`fmt::Display`], as reports count errors) got no answer.
    pub(crate) fn label_unanswered(label: &str) -> bool {
        label == "timeout" || label.starts_with("transport: ")
    }
}

type OpResult<T> = Result<T, OpError>;

/// Connection settings for [`S3Client::new`].
pub(crate) struct ClientConfig<'a> {
    pub(crate) endpoint: &'a str,
    pub(crate) addressing: Addressing,
    pub(crate) access_key: &'a str,
    pub(crate) secret_key: &'a str,
    pub(crate) region: &'a str,
    pub(crate) bucket: &'a str,
    pub(crate) unsigned_payload: bool,
    /// Idle connections kept per host (the concurrency).
    pub(crate) pool_size: usize,
    pub(crate) tls: &'a TlsOptions,
}

/// One page of a listing.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ListPage {
    /// Where the next page starts: the continuation token (ListObjectsV2) or the key marker
    /// (ListObjectVersions); `None` on the last page.
    pub(crate) next_token: Option<String>,
    /// ListObjectVersions: the version-id marker that goes with `next_token`.
    pub(crate) next_version: Option<String>,
}

/// One page of ListMultipartUploads.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct UploadsPage {
    /// `(key, upload id)` of every upload on the page.
    pub(crate) uploads: Vec<(String, String)>,
    /// Where the next page starts (key marker, upload-id marker); `None` on the last page.
    pub(crate) next: Option<(String, String)>,
}

/// Signs and sends S3 requests to one bucket of one endpoint.
pub(crate) struct S3Client {
    http: HttpClient,
    signer: Arc<Signer>,
    endpoint: Arc<Endpoint>,
    /// Where requests for the bucket go: `http(s)://host:port`, with `bucket.` before the host in
    /// virtual-hosted style; no trailing slash.
    base: String,
    /// The `Host` header value: the endpoint's, with `bucket.` before it in virtual-hosted style.
    host: String,
    bucket: String,
    unsigned_payload: bool,
}

/// The endpoint as given, split for addressing buckets.
struct Endpoint {
    /// `http` or `https`.
    scheme: &'static str,
    /// `host:port` as in the endpoint URL.
    authority: String,
    /// The `Host` header value for the endpoint itself: its authority, less a default port.
    host: String,
    /// The host alone (no port).
    name: String,
    addressing: Addressing,
    /// HTTPS with the server's certificate checked (not `--insecure`).
    checks_certificate: bool,
}

impl Endpoint {
    /// Refuses a bucket this endpoint cannot address (see [`check_virtual`]).
    fn check(&self, bucket: &str) -> anyhow::Result<()> {
        if bucket.is_empty() || bucket.contains('/') {
            bail!("invalid bucket name {bucket:?}");
        }
        match self.addressing {
            Addressing::Path => Ok(()),
            Addressing::Virtual => check_virtual(&self.name, bucket, self.checks_certificate),
        }
    }

    /// `(base, host)` for requests to `bucket`.
    fn addressed(&self, bucket: &str) -> (String, String) {
        match self.addressing {
            Addressing::Path => (
                format!("{}://{}", self.scheme, self.authority),
                self.host.clone(),
            ),
            Addressing::Virtual => (
                format!("{}://{bucket}.{}", self.scheme, self.authority),
                format!("{bucket}.{}", self.host),
            ),
        }
    }
}

/// Refuses a virtual-hosted-style setup that cannot reach the bucket: an IP address has no subdomains, and a
/// bucket name must be a host name label (one label where the certificate is checked, since `a.b.host` would
/// not match a wildcard certificate for `*.host`; with `--insecure` nothing is matched). Names the server would
/// refuse otherwise are left to the server.
fn check_virtual(host: &str, bucket: &str, checks_certificate: bool) -> anyhow::Result<()> {
    if host.starts_with('[') || host.parse::<std::net::IpAddr>().is_ok() {
        bail!(
            "--addressing-style virtual needs an endpoint host name, not an IP address ({host}); \
             use the path style, or a name such as localhost"
        );
    }
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    };
    if !bucket.split('.').all(label_ok) {
        bail!(
            "--addressing-style virtual: bucket {bucket:?} is not a host name (labels of 1-63 lowercase \
             letters, digits and hyphens, between dots); use the path style"
        );
    }
    if bucket.len() + 1 + host.len() > 253 {
        bail!(
            "--addressing-style virtual: {bucket}.{host} is longer than a host name may be (253); \
             use the path style"
        );
    }
    if checks_certificate && bucket.contains('.') {
        bail!(
            "--addressing-style virtual over HTTPS: bucket {bucket:?} has a dot, so {bucket}.{host} would not \
             match the endpoint's certificate; use the path style (or --insecure with a test certificate)"
        );
    }
    Ok(())
}

impl S3Client {
    pub(crate) fn new(cfg: &ClientConfig<'_>) -> anyhow::Result<S3Client> {
        let uri: Uri = cfg
            .endpoint
            .parse()
            .with_context(|| format!("invalid endpoint {:?}", cfg.endpoint))?;
        let default_port = match uri.scheme_str() {
            Some("http") => 80,
            Some("https") => 443,
            _ => bail!(
                "endpoint must start with http:// or https:// (got {:?})",
                cfg.endpoint
            ),
        };
        if !matches!(uri.path(), "" | "/") || uri.query().is_some() {
            bail!(
                "endpoint must not have a path or query (got {:?})",
                cfg.endpoint
            );
        }
        let authority = uri.authority().context("endpoint has no host")?;
        check_authority(authority, "endpoint", cfg.endpoint)?;
        let host = match authority.port_u16() {
            Some(p) if p == default_port => authority.host().to_owned(),
            _ => authority.as_str().to_owned(),
        };
        let endpoint = Arc::new(Endpoint {
            scheme: if default_port == 443 { "https" } else { "http" },
            authority: authority.as_str().to_owned(),
            host,
            name: authority.host().to_owned(),
            addressing: cfg.addressing,
            checks_certificate: default_port == 443 && !cfg.tls.insecure,
        });
        endpoint.check(cfg.bucket)?;
        let (base, host) = endpoint.addressed(cfg.bucket);
        Ok(S3Client {
            http: transport::http_client(cfg.tls, cfg.pool_size)?,
            signer: Arc::new(Signer::new(cfg.access_key, cfg.secret_key, cfg.region)),
            endpoint,
            base,
            host,
            bucket: cfg.bucket.to_owned(),
            unsigned_payload: cfg.unsigned_payload,
        })
    }

    /// The same client (and connection pool) for another bucket.
    pub(crate) fn with_bucket(&self, bucket: &str) -> anyhow::Result<S3Client> {
        self.endpoint.check(bucket)?;
        let (base, host) = self.endpoint.addressed(bucket);
        Ok(S3Client {
            http: self.http.clone(),
            signer: self.signer.clone(),
            endpoint: self.endpoint.clone(),
            base,
            host,
            bucket: bucket.to_owned(),
            unsigned_payload: self.unsigned_payload,
        })
    }

    /// The bucket this client addresses.
    pub(crate) fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Uploads `body`; `sha256` is its hex SHA-256 (ignored with `--unsigned-payload`).
    pub(crate) async fn put_object(
        &self,
        key: &str,
        body: PayloadBody,
        sha256: &str,
    ) -> OpResult<()> {
        let len = http_body::Body::size_hint(&body).exact().unwrap_or(0);
        let hash = if self.unsigned_payload {
            UNSIGNED_PAYLOAD
        } else {
            sha256
        };
        let extra = [("content-length", len.to_string())];
        let resp = self
            .send(Method::PUT, Some(key), &[], &extra, body, hash)
            .await?;
        expect_success(resp).await.map(drop)
    }

    /// CreateMultipartUpload; returns the upload ID.
    pub(crate) async fn create_multipart_upload(&self, key: &str) -> OpResult<String> {
        let extra = [("content-length", "0".to_owned())];
        let resp = self
            .send(
                Method::POST,
                Some(key),
                &[("uploads", "")],
                &extra,
                PayloadBody::empty(),
                EMPTY_SHA256,
            )
            .await?;
        let doc = expect_success(resp).await?;
        let doc = String::from_utf8_lossy(&doc);
        match xml_text(&doc, "UploadId") {
            Some(id) if !id.is_empty() => Ok(xml_unescape(id)),
            _ => Err(OpError::Transport(
                "CreateMultipartUpload answer has no UploadId".into(),
            )),
        }
    }

    /// UploadPart of part `number` (1-based); returns the part's ETag as sent (with its quotes). `sha256` is
    /// the body's hex SHA-256 (ignored with `--unsigned-payload`).
    pub(crate) async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        number: u32,
        body: PayloadBody,
        sha256: &str,
    ) -> OpResult<String> {
        let len = http_body::Body::size_hint(&body).exact().unwrap_or(0);
        let hash = if self.unsigned_payload {
            UNSIGNED_PAYLOAD
        } else {
            sha256
        };
        let number = number.to_string();
        let query = [("partNumber", number.as_str()), ("uploadId", upload_id)];
        let extra = [("content-length", len.to_string())];
        let resp = self
            .send(Method::PUT, Some(key), &query, &extra, body, hash)
            .await?;
        let resp = check_status(resp).await?;
        let etag = resp
            .headers()
            .get(http::header::ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        read_doc(resp.into_body()).await?;
        etag.filter(|e| !e.is_empty()).ok_or_else(|| {
            OpError::Transport(format!("UploadPart {number}: no ETag in the answer"))
        })
    }

    /// CompleteMultipartUpload with the request document `doc` (see [`crate::multipart::complete_xml`]);
    /// returns the object's ETag. An error document in a 200 answer (S3 may send one after it started
    /// answering) counts as a failure, labelled `200 <Code>`.
    pub(crate) async fn complete_multipart_upload(
        &self,
        key: &str,
        upload_id: &str,
        doc: String,
    ) -> OpResult<String> {
        let body = Bytes::from(doc);
        let hash = sigv4::sha256_hex(&body);
        let extra = [("content-length", body.len().to_string())];
        let resp = self
            .send(
                Method::POST,
                Some(key),
                &[("uploadId", upload_id)],
                &extra,
                PayloadBody::from_bytes(body),
                &hash,
            )
            .await?;
        let status = resp.status().as_u16();
        let answer = expect_success(resp).await?;
        parse_complete(status, &String::from_utf8_lossy(&answer))
    }

    /// AbortMultipartUpload.
    pub(crate) async fn abort_multipart_upload(&self, key: &str, upload_id: &str) -> OpResult<()> {
        let resp = self
            .send(
                Method::DELETE,
                Some(key),
                &[("uploadId", upload_id)],
                &[],
                PayloadBody::empty(),
                EMPTY_SHA256,
            )
            .await?;
        expect_success(resp).await.map(drop)
    }

    /// Downloads an object, counting and discarding its bytes; fails when the length is not `expected`.
    pub(crate) async fn get_object(&self, key: &str, expected: Option<u64>) -> OpResult<u64> {
        let resp = self
            .send(
                Method::GET,
                Some(key),
                &[],
                &[],
                PayloadBody::empty(),
                EMPTY_SHA256,
            )
            .await?;
        let resp = check_status(resp).await?;
        let got = drain_counting(resp.into_body()).await?;
        match expected {
            Some(e) if e != got => Err(OpError::ShortBody { expected: e, got }),
            _ => Ok(got),
        }
    }

    /// Downloads an object; returns its length and the MD5 of its bytes (checks, not load: this hashes).
    pub(crate) async fn get_object_md5(&self, key: &str) -> OpResult<(u64, [u8; 16])> {
        let resp = self
            .send(
                Method::GET,
                Some(key),
                &[],
                &[],
                PayloadBody::empty(),
                EMPTY_SHA256,
            )
            .await?;
        let mut body = check_status(resp).await?.into_body();
        let (mut len, mut md5) = (0u64, md5::Md5::new());
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(transport)?;
            if let Some(data) = frame.data_ref() {
                len += data.len() as u64;
                md5.update(data);
            }
        }
        Ok((len, md5.finalize().into()))
    }

    /// HEAD of an object.
    pub(crate) async fn head_object(&self, key: &str) -> OpResult<()> {
        let resp = self
            .send(
                Method::HEAD,
                Some(key),
                &[],
                &[],
                PayloadBody::empty(),
                EMPTY_SHA256,
            )
            .await?;
        expect_success(resp).await.map(drop)
    }

    /// DELETE of an object.
    pub(crate) async fn delete_object(&self, key: &str) -> OpResult<()> {
        let resp = self
            .send(
                Method::DELETE,
                Some(key),
                &[],
                &[],
                PayloadBody::empty(),
                EMPTY_SHA256,
            )
            .await?;
        expect_success(resp).await.map(drop)
    }

    /// One ListObjectsV2 page under `prefix`: the first after `start_after` without a token.
    pub(crate) async fn list_page(
        &self,
        prefix: &str,
        max_keys: u32,
        token: Option<&str>,
        start_after: Option<&str>,
    ) -> OpResult<ListPage> {
        let max = max_keys.to_string();
        let mut query = vec![
            ("list-type", "2"),
            ("prefix", prefix),
            ("max-keys", max.as_str()),
        ];
        match (token, start_after) {
            (Some(t), _) => query.push(("continuation-token", t)),
            (None, Some(k)) => query.push(("start-after", k)),
            (None, None) => {}
        }
        let doc = self.get_listing(&query).await?;
        Ok(parse_list_page(&String::from_utf8_lossy(&doc)))
    }

    /// One ListObjectVersions page under `prefix`, starting after `key_marker` (and `version_marker`).
    pub(crate) async fn list_versions_page(
        &self,
        prefix: &str,
        max_keys: u32,
        key_marker: Option<&str>,
        version_marker: Option<&str>,
    ) -> OpResult<ListPage> {
        let max = max_keys.to_string();
        let mut query = vec![
            ("versions", ""),
            ("prefix", prefix),
            ("max-keys", max.as_str()),
        ];
        if let Some(k) = key_marker {
            query.push(("key-marker", k));
            if let Some(v) = version_marker {
                query.push(("version-id-marker", v));
            }
        }
        let doc = self.get_listing(&query).await?;
        Ok(parse_versions_page(&String::from_utf8_lossy(&doc)))
    }

    /// One ListMultipartUploads page of the uploads in progress under `prefix`, after `marker`.
    pub(crate) async fn list_uploads_page(
        &self,
        prefix: &str,
        marker: Option<&(String, String)>,
    ) -> OpResult<UploadsPage> {
        let mut query = vec![("uploads", ""), ("prefix", prefix)];
        if let Some((key, id)) = marker {
            query.push(("key-marker", key));
            // An empty one would mean "this key's uploads from the first" to some servers, not "after it".
            if !id.is_empty() {
                query.push(("upload-id-marker", id));
            }
        }
        let doc = self.get_listing(&query).await?;
        Ok(parse_uploads_page(&String::from_utf8_lossy(&doc)))
    }

    /// GET on the bucket with `query`; the listing document.
    async fn get_listing(&self, query: &[(&str, &str)]) -> OpResult<Bytes> {
        let resp = self
            .send(
                Method::GET,
                None,
                query,
                &[],
                PayloadBody::empty(),
                EMPTY_SHA256,
            )
            .await?;
        expect_success(resp).await
    }

    /// DeleteObjects (quiet) of up to 1,000 keys; returns the per-key errors the server reported.
    pub(crate) async fn delete_objects(&self, keys: &[String]) -> OpResult<u64> {
        let mut doc = String::with_capacity(keys.len() * 48 + 64);
        doc.push_str("<Delete><Quiet>true</Quiet>");
        for k in keys {
            doc.push_str("<Object><Key>");
            doc.push_str(&xml_escape(k));
            doc.push_str("</Key></Object>");
        }
        doc.push_str("</Delete>");
        let body = Bytes::from(doc);
        let md5 = base64::engine::general_purpose::STANDARD.encode(md5::Md5::digest(&body));
        let hash = sigv4::sha256_hex(&body);
        let extra = [
            ("content-length", body.len().to_string()),
            ("content-md5", md5),
        ];
        let resp = self
            .send(
                Method::POST,
                None,
                &[("delete", "")],
                &extra,
                PayloadBody::from_bytes(body),
                &hash,
            )
            .await?;
        let doc = expect_success(resp).await?;
        Ok(String::from_utf8_lossy(&doc).matches("<Error>").count() as u64)
    }

    /// HEAD of the bucket: `Ok(true)` when it exists, `Ok(false)` on 404.
    pub(crate) async fn bucket_exists(&self) -> OpResult<bool> {
        let resp = self
            .send(
                Method::HEAD,
                None,
                &[],
                &[],
                PayloadBody::empty(),
                EMPTY_SHA256,
            )
            .await?;
        match resp.status() {
            StatusCode::NOT_FOUND => Ok(false),
            _ => expect_success(resp).await.map(|_| true),
        }
    }

    /// CreateBucket, with a location constraint outside us-east-1.
    pub(crate) async fn create_bucket(&self, region: &str) -> OpResult<()> {
        let body = if region == "us-east-1" {
            Bytes::new()
        } else {
            Bytes::from(format!(
                "<CreateBucketConfiguration><LocationConstraint>{}</LocationConstraint></CreateBucketConfiguration>",
                xml_escape(region)
            ))
        };
        let hash = sigv4::sha256_hex(&body);
        let extra = [("content-length", body.len().to_string())];
        let resp = self
            .send(
                Method::PUT,
                None,
                &[],
                &extra,
                PayloadBody::from_bytes(body),
                &hash,
            )
            .await?;
        expect_success(resp).await.map(drop)
    }

    /// DeleteBucket.
    pub(crate) async fn delete_bucket(&self) -> OpResult<()> {
        let resp = self
            .send(
                Method::DELETE,
                None,
                &[],
                &[],
                PayloadBody::empty(),
                EMPTY_SHA256,
            )
            .await?;
        expect_success(resp).await.map(drop)
    }

    /// Builds, signs and sends one request. `extra` holds additional signed headers (lowercase names).
    async fn send(
        &self,
        method: Method,
        key: Option<&str>,
        query: &[(&str, &str)],
        extra: &[(&str, String)],
        body: PayloadBody,
        payload_hash: &str,
    ) -> OpResult<Response<Incoming>> {
        let mut path = String::with_capacity(self.bucket.len() + 64);
        if self.endpoint.addressing == Addressing::Path {
            path.push('/');
            path.push_str(&self.bucket);
        }
        match key {
            Some(k) => {
                path.push('/');
                path.push_str(k);
            }
            // The bucket itself: `/bucket` in the path style, `/` when the host names it.
            None if path.is_empty() => path.push('/'),
            None => {}
        }
        let path = sigv4::uri_encode(&path, true);
        let query = sigv4::canonical_query(query);
        let amz_date = sigv4::amz_date_now();
        let mut headers: Vec<(&str, &str)> = Vec::with_capacity(4 + extra.len());
        headers.push(("host", &self.host));
        headers.push(("x-amz-content-sha256", payload_hash));
        headers.push(("x-amz-date", &amz_date));
        headers.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
        headers.sort_unstable_by_key(|&(k, _)| k);
        let authorization = self.signer.authorization(&SignInput {
            method: method.as_str(),
            canonical_uri: &path,
            canonical_query: &query,
            headers: &headers,
            payload_hash,
            amz_date: &amz_date,
        });
        let uri = if query.is_empty() {
            format!("{}{path}", self.base)
        } else {
            format!("{}{path}?{query}", self.base)
        };
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in &headers {
            builder = builder.header(*name, header_value(value)?);
        }
        let req = builder
            .header("authorization", header_value(&authorization)?)
            .body(body)
            .map_err(|e| OpError::Transport(format!("building request: {e}")))?;
        self.http.request(req).await.map_err(transport)
    }
}

fn header_value(v: &str) -> OpResult<HeaderValue> {
    HeaderValue::from_str(v).map_err(|_| OpError::Transport(format!("invalid header value {v:?}")))
}

/// Refuses what `http` lets through in a URL's authority: credentials (`user:pw@host`) and a port that is
/// no u16 (`:99999`, which it keeps without reporting). `what` names the option in the error.
pub(crate) fn check_authority(
    authority: &http::uri::Authority,
    what: &str,
    url: &str,
) -> anyhow::Result<()> {
    if authority.as_str().contains('@') {
        bail!("{what} must not carry credentials (got {url:?})");
    }
    let after_host = authority
        .as_str()
        .rsplit_once(']')
        .map_or(authority.as_str(), |(_, rest)| rest);
    if let Some((_, port)) = after_host.rsplit_once(':')
        && port.parse::<u16>().is_err()
    {
        bail!("invalid port {port:?} in {what} {url:?}");
    }
    Ok(())
}

pub(crate) fn transport(e: impl std::error::Error) -> OpError {
    let mut msg = e.to_string();
    let mut source = e.source();
    // Bounded: error chains are short, but never follow more than a few links.
    for _ in 0..4 {
        let Some(s) = source else { break };
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        source = s.source();
    }
    OpError::Transport(msg)
}

/// Passes a success response on; turns anything else into [`OpError::Http`] with the S3 code of its body.
async fn check_status(resp: Response<Incoming>) -> OpResult<Response<Incoming>> {
    if resp.status().is_success() {
        return Ok(resp);
    }
    let status = resp.status().as_u16();
    let doc = read_doc(resp.into_body()).await.unwrap_or_default();
    let code = xml_text(&String::from_utf8_lossy(&doc), "Code").map(str::to_owned);
    Err(OpError::Http { status, code })
}

/// Checks the status and reads the (small) body.
async fn expect_success(resp: Response<Incoming>) -> OpResult<Bytes> {
    let resp = check_status(resp).await?;
    read_doc(resp.into_body()).await
}

/// Reads a response body to its end without keeping it; returns its length.
pub(crate) async fn drain_counting(mut body: Incoming) -> OpResult<u64> {
    let mut got = 0u64;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(transport)?;
        if let Some(data) = frame.data_ref() {
            got += data.len() as u64;
        }
    }
    Ok(got)
}

pub(crate) async fn read_doc(mut body: Incoming) -> OpResult<Bytes> {
    let mut out = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(transport)?;
        if let Some(data) = frame.data_ref() {
            if out.len() + data.len() > MAX_DOC {
                return Err(OpError::Transport("response document too large".into()));
            }
            out.extend_from_slice(data);
        }
    }
    Ok(out.freeze())
}

/// The ETag of a successful CompleteMultipartUpload answer `doc`, sent with `status`. The root element is
/// not checked beyond `Error`: AWS names it CompleteMultipartUploadResult, moto
/// CompleteMultipartUploadResponse, and the SDKs take either.
fn parse_complete(status: u16, doc: &str) -> OpResult<String> {
    match (xml_root(doc), xml_text(doc, "ETag")) {
        (Some("Error"), _) => {
            let code = xml_text(doc, "Code").map(str::to_owned);
            Err(OpError::Http { status, code })
        }
        (Some(_), Some(etag)) => Ok(xml_unescape(etag)),
        _ => Err(OpError::Transport(
            "CompleteMultipartUpload answer has no ETag".into(),
        )),
    }
}

/// The continuation of a ListObjectsV2 document.
fn parse_list_page(doc: &str) -> ListPage {
    let truncated = xml_text(doc, "IsTruncated") == Some("true");
    let next_token = xml_text(doc, "NextContinuationToken")
        .filter(|_| truncated)
        .map(xml_unescape);
    ListPage {
        next_token,
        next_version: None,
    }
}

/// The continuation of a ListObjectVersions document.
fn parse_versions_page(doc: &str) -> ListPage {
    let truncated = xml_text(doc, "IsTruncated") == Some("true");
    let next_token = xml_text(doc, "NextKeyMarker")
        .filter(|_| truncated)
        .map(xml_unescape);
    let next_version = xml_text(doc, "NextVersionIdMarker")
        .filter(|_| next_token.is_some())
        .map(xml_unescape);
    ListPage {
        next_token,
        next_version,
    }
}

/// The uploads of a ListMultipartUploads document, and where the next page starts.
fn parse_uploads_page(doc: &str) -> UploadsPage {
    let uploads = doc
        .split("<Upload>")
        .skip(1)
        .filter_map(|upload| {
            let upload = &upload[..upload.find("</Upload>")?];
            Some((
                xml_unescape(xml_text(upload, "Key")?),
                xml_unescape(xml_text(upload, "UploadId")?),
            ))
        })
        .collect();
    let next = (xml_text(doc, "IsTruncated") == Some("true"))
        .then(|| {
            Some((
                xml_unescape(xml_text(doc, "NextKeyMarker")?),
                xml_unescape(xml_text(doc, "NextUploadIdMarker").unwrap_or_default()),
            ))
        })
        .flatten();
    UploadsPage { uploads, next }
}

/// The name of `doc`'s root element, past an XML declaration, comments and white space.
fn xml_root(doc: &str) -> Option<&str> {
    let mut rest = doc;
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("<?") {
            rest = &after[after.find("?>")? + 2..];
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = &after[after.find("-->")? + 3..];
        } else {
            let name = rest.strip_prefix('<')?;
            let end = name.find(|c: char| c.is_whitespace() || c == '>' || c == '/')?;
            return Some(&name[..end]).filter(|n| !n.is_empty());
        }
    }
}

/// The text of the first `<tag>...</tag>` element of `doc`.
fn xml_text<'a>(doc: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = doc.find(&open)? + open.len();
    let end = doc[start..].find("</")? + start;
    Some(&doc[start..end])
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn xml_unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_helpers() {
        let doc = "<Error><Code>NoSuchKey</Code><Message>x</Message></Error>";
        assert_eq!(xml_text(doc, "Code"), Some("NoSuchKey"));
        assert_eq!(xml_text(doc, "Missing"), None);
        assert_eq!(xml_root(doc), Some("Error"));
        let declared = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!-- c -->\n\
            <CompleteMultipartUploadResponse xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">";
        assert_eq!(xml_root(declared), Some("CompleteMultipartUploadResponse"));
        assert_eq!(xml_root("<Empty/>"), Some("Empty"));
        assert_eq!(xml_root("not xml"), None);
        assert_eq!(xml_root("<?xml version=\"1.0\""), None);
        assert_eq!(xml_unescape(&xml_escape("a&b<c>'\"")), "a&b<c>'\"");
    }

    #[test]
    fn complete_answers_of_aws_and_of_moto_and_an_error_in_a_200() {
        let aws = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CompleteMultipartUploadResult \
            xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Location>http://b.s3/k</Location>\
            <Bucket>b</Bucket><Key>k</Key><ETag>&quot;3858f62230ac3c915f300c664312c11f-2&quot;</ETag>\
            </CompleteMultipartUploadResult>";
        assert_eq!(
            parse_complete(200, aws).unwrap(),
            "\"3858f62230ac3c915f300c664312c11f-2\""
        );
        let moto = aws.replace(
            "CompleteMultipartUploadResult",
            "CompleteMultipartUploadResponse",
        );
        assert_eq!(
            parse_complete(200, &moto).unwrap(),
            "\"3858f62230ac3c915f300c664312c11f-2\""
        );
        let failed = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n\n<Error><Code>InternalError</Code>\
            <Message>We encountered an internal error. Please try again.</Message></Error>";
        assert_eq!(
            parse_complete(200, failed),
            Err(OpError::Http {
                status: 200,
                code: Some("InternalError".into())
            })
        );
        assert!(matches!(
            parse_complete(200, "<CompleteMultipartUploadResult/>"),
            Err(OpError::Transport(_))
        ));
        assert!(matches!(
            parse_complete(200, ""),
            Err(OpError::Transport(_))
        ));
    }

    #[test]
    fn listing_continuations() {
        let v2 = "<ListBucketResult><IsTruncated>true</IsTruncated>\
                  <NextContinuationToken>a&amp;b</NextContinuationToken></ListBucketResult>";
        assert_eq!(parse_list_page(v2).next_token.as_deref(), Some("a&b"));
        let last = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
        assert_eq!(parse_list_page(last).next_token, None);
        let versions = "<ListVersionsResult><KeyMarker></KeyMarker><VersionIdMarker></VersionIdMarker>\
            <NextKeyMarker>bench/1/&lt;7</NextKeyMarker><NextVersionIdMarker>v9</NextVersionIdMarker>\
            <IsTruncated>true</IsTruncated><Version><Key>bench/1/&lt;7</Key></Version></ListVersionsResult>";
        assert_eq!(
            parse_versions_page(versions),
            ListPage {
                next_token: Some("bench/1/<7".into()),
                next_version: Some("v9".into())
            }
        );
        let end = "<ListVersionsResult><IsTruncated>false</IsTruncated></ListVersionsResult>";
        assert_eq!(
            parse_versions_page(end),
            ListPage {
                next_token: None,
                next_version: None
            }
        );
        let uploads = "<ListMultipartUploadsResult><Bucket>b</Bucket><KeyMarker></KeyMarker>\
            <NextKeyMarker>bench/1/&lt;2</NextKeyMarker><NextUploadIdMarker>u2</NextUploadIdMarker>\
            <IsTruncated>true</IsTruncated>\
            <Upload><Key>bench/1/a</Key><UploadId>u1</UploadId><Initiator><ID>x</ID></Initiator></Upload>\
            <Upload><Key>bench/1/&lt;2</Key><UploadId>u2</UploadId></Upload></ListMultipartUploadsResult>";
        assert_eq!(
            parse_uploads_page(uploads),
            UploadsPage {
                uploads: vec![
                    ("bench/1/a".into(), "u1".into()),
                    ("bench/1/<2".into(), "u2".into())
                ],
                next: Some(("bench/1/<2".into(), "u2".into())),
            }
        );
        let none = "<ListMultipartUploadsResult><IsTruncated>false</IsTruncated></ListMultipartUploadsResult>";
        assert_eq!(
            parse_uploads_page(none),
            UploadsPage {
                uploads: Vec::new(),
                next: None
            }
        );
    }

    #[test]
    fn error_labels() {
        let e = OpError::Http {
            status: 503,
            code: Some("SlowDown".into()),
        };
        assert_eq!(e.to_string(), "503 SlowDown");
        assert_eq!(
            OpError::Http {
                status: 404,
                code: None
            }
            .to_string(),
            "404"
        );
        assert_eq!(OpError::Timeout.to_string(), "timeout");
    }

    #[test]
    fn endpoint_validation() {
        let cfg = |endpoint| crate::test_support::config(endpoint, Addressing::Path, 1);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        assert!(S3Client::new(&cfg("http://127.0.0.1:9000")).is_ok());
        assert_eq!(
            S3Client::new(&cfg("http://localhost:80/")).unwrap().host,
            "localhost"
        );
        assert_eq!(
            S3Client::new(&cfg("https://s3.amazonaws.com:443"))
                .unwrap()
                .host,
            "s3.amazonaws.com"
        );
        let tls_on_8443 = S3Client::new(&cfg("https://127.0.0.1:8443")).unwrap();
        assert_eq!(
            (tls_on_8443.host.as_str(), tls_on_8443.base.as_str()),
            ("127.0.0.1:8443", "https://127.0.0.1:8443")
        );
        assert!(S3Client::new(&cfg("ftp://127.0.0.1")).is_err());
        let bad_port = S3Client::new(&cfg("http://127.0.0.1:99999")).err().unwrap();
        assert!(bad_port.to_string().contains("invalid port"), "{bad_port}");
        assert!(S3Client::new(&cfg("http://[::1]:9000")).is_ok());
        assert!(S3Client::new(&cfg("http://u:p@127.0.0.1:9000")).is_err());
        assert!(S3Client::new(&cfg("127.0.0.1:9000")).is_err());
        assert!(S3Client::new(&cfg("http://h/path")).is_err());
    }

    #[test]
    fn virtual_hosted_style_needs_a_host_name_and_a_bucket_that_is_one() {
        assert!(check_virtual("localhost", "strata-bench", false).is_ok());
        assert!(check_virtual("s3.example.com", "a.b", false).is_ok());
        assert!(check_virtual("localhost", &"b".repeat(63), true).is_ok());
        for (host, bucket, https) in [
            ("127.0.0.1", "b", false),
            ("[::1]", "b", false),
            ("localhost", "Upper", false),
            ("localhost", "-b", false),
            ("localhost", "a..b", false),
            ("localhost", "a_b", false),
            ("s3.example.com", "a.b", true),
            ("localhost", &"b".repeat(64), false),
            (
                &format!("{}.example.com", "h".repeat(60)),
                &format!("{0}.{0}.{0}", "b".repeat(63)),
                false,
            ),
        ] {
            assert!(
                check_virtual(host, bucket, https).is_err(),
                "{host} {bucket} {https}"
            );
        }
        // A dotted bucket over HTTPS is refused for the certificate's sake only, so --insecure lets it through.
        let mut dotted =
            crate::test_support::config("https://s3.example.com", Addressing::Virtual, 1);
        dotted.bucket = "a.b";
        let err = S3Client::new(&dotted)
            .err()
            .expect("refused while certificates are checked");
        assert!(err.to_string().contains("--insecure"), "{err}");
        let insecure = TlsOptions {
            insecure: true,
            ca_cert: None,
        };
        dotted.tls = &insecure;
        let client = S3Client::new(&dotted).expect("taken with --insecure");
        assert_eq!(client.host, "a.b.s3.example.com");
    }

    /// A server that answers every request 200 with no body and records each request line and Host.
    async fn recording_server() -> (u16, Arc<std::sync::Mutex<Vec<(String, String)>>>) {
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        let addr = crate::test_support::scripted_server(move |head| {
            let mut lines = head.lines();
            let request = lines.next().unwrap_or_default().to_owned();
            let host = lines
                .find_map(|l| l.strip_prefix("host: "))
                .unwrap_or_default()
                .to_owned();
            log.lock().unwrap().push((request, host));
            Some("HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_owned())
        })
        .await;
        (addr.port(), seen)
    }

    #[tokio::test]
    async fn the_bucket_goes_in_the_path_or_in_the_host_name() {
        let (port, seen) = recording_server().await;
        let endpoint = format!("http://localhost:{port}");
        for addressing in [Addressing::Path, Addressing::Virtual] {
            let client =
                S3Client::new(&crate::test_support::config(&endpoint, addressing, 1)).unwrap();
            // Another bucket of the run (--buckets) is addressed the same way, and checked the same way.
            let other = client.with_bucket("b-1").unwrap();
            let long = format!("{}-1", "b".repeat(62));
            assert_eq!(
                client.with_bucket(&long).is_ok(),
                addressing == Addressing::Path
            );
            assert!(client.bucket_exists().await.unwrap());
            client.head_object("dir/k").await.unwrap();
            other.head_object("k").await.unwrap();
        }
        let at = |bucket: &str| format!("{bucket}localhost:{port}");
        assert_eq!(
            *seen.lock().unwrap(),
            [
                ("HEAD /b HTTP/1.1".to_owned(), at("")),
                ("HEAD /b/dir/k HTTP/1.1".to_owned(), at("")),
                ("HEAD /b-1/k HTTP/1.1".to_owned(), at("")),
                // The virtual-hosted requests reached the server through `b.localhost`: the loopback.
                ("HEAD / HTTP/1.1".to_owned(), at("b.")),
                ("HEAD /dir/k HTTP/1.1".to_owned(), at("b.")),
                ("HEAD /k HTTP/1.1".to_owned(), at("b-1.")),
            ]
        );
    }
}
