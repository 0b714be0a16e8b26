//! Talking to origins: the pooled HTTP(S) client, building the origin request for a viewer request (URL, the
//! headers that are forwarded, Host), SigV4 signing for S3 origins with credentials (CloudFront's origin access
//! control), and timeouts on response headers and on every body read.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Request, Response, Uri};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use http_body_util::combinators::BoxBody;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use strata_config::edge::Origin;

/// Errors crossing the proxy: boxed, as hyper wants them.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// Request and response bodies everywhere in the edge.
pub type Body = BoxBody<Bytes, BoxError>;

/// What went wrong reaching the origin.
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// No response headers within the origin timeout.
    #[error("origin timed out")]
    Timeout,
    /// Connection refused, reset, TLS failure, bad response.
    #[error("origin unreachable: {0}")]
    Unreachable(String),
    /// The request could not be built or signed.
    #[error("bad origin request: {0}")]
    Request(String),
}

/// Headers that belong to one connection, never forwarded (RFC 9110 §7.6.1), plus ones the edge sets itself.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
];

/// Characters S3's canonical URI leaves alone: unreserved ones and '/'.
const PATH_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Whether a header must not cross the proxy.
pub fn is_hop_by_hop(name: &HeaderName) -> bool {
    HOP_BY_HOP.contains(&name.as_str())
}

/// Removes hop-by-hop headers, including those the Connection header names.
pub fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().to_ascii_lowercase().as_bytes()).ok())
        .collect();
    for n in named {
        headers.remove(n);
    }
    for n in HOP_BY_HOP {
        headers.remove(*n);
    }
}

/// The pooled client shared by every distribution.
#[derive(Clone)]
pub struct OriginClient {
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>,
    timeout: Duration,
}

impl OriginClient {
    /// A client with keep-alive pools, HTTP/1.1 and HTTP/2 (by ALPN) over TLS with the webpki roots.
    pub fn new(timeout: Duration) -> anyhow::Result<Self> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(https);
        Ok(Self { client, timeout })
    }

    /// The per-read and header timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// Sends a request; the response body is wrapped so that a stalled origin fails the body instead of hanging.
    pub async fn send(&self, req: Request<Body>) -> Result<Response<Body>, OriginError> {
        match tokio::time::timeout(self.timeout, self.client.request(req)).await {
            Err(_) => Err(OriginError::Timeout),
            Ok(Err(e)) => Err(OriginError::Unreachable(error_chain(&e))),
            Ok(Ok(resp)) => {
                let timeout = self.timeout;
                Ok(resp.map(|b| IdleTimeout::new(b, timeout).boxed()))
            }
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// Which viewer headers go to the origin.
pub enum Forward<'a> {
    /// A cacheable request: only the behaviour's cache-key headers (the response must not depend on others).
    CacheKeyOnly(&'a [HeaderName]),
    /// A request that is never cached: every end-to-end header.
    All,
}

/// The origin request for a viewer request.
pub struct OriginRequest<'a> {
    /// Distribution origin.
    pub origin: &'a Origin,
    /// Viewer method.
    pub method: Method,
    /// Viewer path, as received (percent-encoded).
    pub path: &'a str,
    /// Query string to forward, already filtered by the behaviour.
    pub query: Option<&'a str>,
    /// Viewer headers.
    pub viewer_headers: &'a HeaderMap,
    /// Viewer Host header.
    pub viewer_host: &'a str,
    /// Which headers are forwarded.
    pub forward: Forward<'a>,
    /// Extra headers the edge adds (conditional revalidation, X-Forwarded-For).
    pub extra: HeaderMap,
    /// Whether the body is empty (GET/HEAD fills), for the payload hash.
    pub empty_body: bool,
}

impl OriginRequest<'_> {
    /// Builds (and, for S3 origins with credentials, signs) the request.
    pub fn build(self, body: Body) -> Result<Request<Body>, OriginError> {
        let bad = |m: String| OriginError::Request(m);
        let (base, prefix, forward_host, signer) = match self.origin {
            Origin::S3 {
                endpoint,
                bucket,
                region,
                access_key,
                secret_key,
            } => {
                let prefix = bucket
                    .as_ref()
                    .map(|b| format!("/{}", utf8_percent_encode(b, PATH_ENCODE)))
                    .unwrap_or_default();
                let signer = access_key
                    .as_ref()
                    .zip(secret_key.as_ref())
                    .map(|(a, s)| (a.as_str(), s.as_str(), region.as_str()));
                // Unsigned S3 origins see the viewer's own request, signature included, so they need its Host.
                (endpoint.as_str(), prefix, signer.is_none(), signer)
            }
            Origin::Http { url, forward_host } => {
                (url.as_str(), String::new(), *forward_host, None)
            }
        };
        let base = base.trim_end_matches('/');
        // One canonical spelling of the path: what S3 signs is what goes on the wire.
        let decoded = percent_decode_str(self.path).collect::<Vec<u8>>();
        let path = percent_encoding::percent_encode(&decoded, PATH_ENCODE).to_string();
        let mut url = format!("{base}{prefix}{path}");
        // The edge's signature reads objects only: S3 subresources (?acl, ?versionId, ?tagging, ...) never ride on it.
        let query = match (signer.is_some(), self.query) {
            (true, Some(q)) => without_s3_subresources(q),
            (_, q) => q.map(str::to_owned),
        };
        if let Some(q) = query.filter(|q| !q.is_empty()) {
            url.push('?');
            url.push_str(&q);
        }
        let uri: Uri = url.parse().map_err(|e| bad(format!("{url}: {e}")))?;
        let mut headers = HeaderMap::new();
        match self.forward {
            Forward::CacheKeyOnly(names) => {
                for n in names {
                    for v in self.viewer_headers.get_all(n) {
                        headers.append(n.clone(), v.clone());
                    }
                }
            }
            Forward::All => {
                headers = self.viewer_headers.clone();
                strip_hop_by_hop(&mut headers);
            }
        }
        for (n, v) in &self.extra {
            headers.insert(n.clone(), v.clone());
        }
        if forward_host && let Ok(v) = HeaderValue::from_str(self.viewer_host) {
            headers.insert(header::HOST, v);
        }
        headers
            .entry(header::USER_AGENT)
            .or_insert(HeaderValue::from_static("strata-edge"));
        if let Some((access, secret, region)) = signer {
            // The edge's signature replaces whatever the viewer sent.
            for n in [
                "authorization",
                "x-amz-date",
                "x-amz-content-sha256",
                "x-amz-security-token",
            ] {
                headers.remove(n);
            }
            sign(
                &mut headers,
                &self.method,
                &uri,
                access,
                secret,
                region,
                self.empty_body,
            )?;
        }
        let mut req = Request::builder()
            .method(self.method)
            .uri(uri)
            .body(body)
            .map_err(|e| bad(e.to_string()))?;
        *req.headers_mut() = headers;
        Ok(req)
    }
}

/// Query parameters that make an S3 request something other than a plain read of the current object.
const S3_SUBRESOURCES: &[&str] = &[
    "accelerate",
    "acl",
    "analytics",
    "attributes",
    "cors",
    "delete",
    "encryption",
    "intelligent-tiering",
    "inventory",
    "legal-hold",
    "lifecycle",
    "list-type",
    "location",
    "logging",
    "metrics",
    "notification",
    "object-lock",
    "ownershipControls",
    "partNumber",
    "policy",
    "policyStatus",
    "prefix",
    "delimiter",
    "publicAccessBlock",
    "replication",
    "requestPayment",
    "restore",
    "retention",
    "select",
    "tagging",
    "torrent",
    "uploadId",
    "uploads",
    "versionId",
    "versioning",
    "versions",
    "website",
];

/// `query` without S3 subresources and API parameters (case-sensitive, as S3 treats them).
fn without_s3_subresources(query: &str) -> Option<String> {
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let name = pair.split('=').next().unwrap_or("");
            !pair.is_empty() && !S3_SUBRESOURCES.contains(&name)
        })
        .collect();
    (!kept.is_empty()).then(|| kept.join("&"))
}

fn sign(
    headers: &mut HeaderMap,
    method: &Method,
    uri: &Uri,
    access: &str,
    secret: &str,
    region: &str,
    empty_body: bool,
) -> Result<(), OriginError> {
    use aws_sigv4::http_request::{
        PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings,
        UriPathNormalizationMode, sign,
    };
    let bad = |e: &dyn std::fmt::Display| OriginError::Request(format!("signing: {e}"));
    let identity =
        aws_credential_types::Credentials::new(access, secret, None, None, "strata-edge").into();
    let mut settings = SigningSettings::default();
    settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    settings.percent_encoding_mode = PercentEncodingMode::Single;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("s3")
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| bad(&e))?
        .into();
    let body = if empty_body {
        SignableBody::Bytes(&[])
    } else {
        SignableBody::UnsignedPayload
    };
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(method.as_str(), uri.to_string(), pairs.into_iter(), body)
        .map_err(|e| bad(&e))?;
    let (instructions, _) = sign(signable, &params).map_err(|e| bad(&e))?.into_parts();
    let (new_headers, _) = instructions.into_parts();
    for h in new_headers {
        let name = HeaderName::from_bytes(h.name().as_bytes()).map_err(|e| bad(&e))?;
        let value = HeaderValue::from_str(h.value()).map_err(|e| bad(&e))?;
        headers.insert(name, value);
    }
    Ok(())
}

/// A body that fails when no frame arrives within `timeout` (a stalled origin never hangs a viewer forever).
pub struct IdleTimeout<B> {
    inner: B,
    timeout: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl<B> IdleTimeout<B> {
    /// Wraps `inner`.
    pub fn new(inner: B, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            sleep: Box::pin(tokio::time::sleep(timeout)),
        }
    }
}

impl<B> HttpBody for IdleTimeout<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                let deadline = tokio::time::Instant::now() + this.timeout;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(frame.map(|f| f.map_err(Into::into)))
            }
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err("origin body stalled".into()))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A body from bytes in memory.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

/// A cached body served in frames of at most `FRAME` bytes (zero-copy slices), so that one large hit does not
/// hold a worker for a whole object's write while other viewers wait: this keeps tail latency flat under load.
pub fn framed(bytes: Bytes) -> Body {
    const FRAME: usize = 256 * 1024;
    if bytes.len() <= FRAME {
        return full(bytes);
    }
    let frames = (0..bytes.len()).step_by(FRAME).map(move |start| {
        let end = (start + FRAME).min(bytes.len());
        Ok::<_, BoxError>(hyper::body::Frame::data(bytes.slice(start..end)))
    });
    http_body_util::StreamBody::new(futures_util::stream::iter(frames)).boxed()
}

/// An empty body.
pub fn empty() -> Body {
    http_body_util::Empty::new()
        .map_err(|never| match never {})
        .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_origin_request_is_path_style_canonical_and_signed() {
        let origin = Origin::S3 {
            endpoint: "http://127.0.0.1:9000/".into(),
            bucket: Some("site".into()),
            region: "us-east-1".into(),
            access_key: Some("AK".into()),
            secret_key: Some("SK".into()),
        };
        let mut viewer = HeaderMap::new();
        viewer.insert("authorization", HeaderValue::from_static("viewer's"));
        viewer.insert("accept-language", HeaderValue::from_static("de"));
        let req = OriginRequest {
            origin: &origin,
            method: Method::GET,
            path: "/a%20b/c!d",
            query: None,
            viewer_headers: &viewer,
            viewer_host: "www.example.com",
            forward: Forward::CacheKeyOnly(&[]),
            extra: HeaderMap::new(),
            empty_body: true,
        }
        .build(empty())
        .unwrap();
        assert_eq!(
            req.uri().to_string(),
            "http://127.0.0.1:9000/site/a%20b/c%21d"
        );
        let auth = req.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AK/"),
            "{auth}"
        );
        assert!(req.headers().get("accept-language").is_none());
        assert!(req.headers().contains_key("x-amz-date"));
    }

    #[test]
    fn signing_origins_never_forward_s3_subresources() {
        assert_eq!(without_s3_subresources("acl"), None);
        assert_eq!(
            without_s3_subresources("v=2&versionId=abc&tagging&x=1").as_deref(),
            Some("v=2&x=1")
        );
    }

    #[test]
    fn http_origin_forwards_all_but_hop_by_hop() {
        let origin = Origin::Http {
            url: "http://127.0.0.1:1234".into(),
            forward_host: true,
        };
        let mut viewer = HeaderMap::new();
        viewer.insert("connection", HeaderValue::from_static("x-secret"));
        viewer.insert("x-secret", HeaderValue::from_static("1"));
        viewer.insert("te", HeaderValue::from_static("trailers"));
        viewer.insert("content-type", HeaderValue::from_static("text/plain"));
        let req = OriginRequest {
            origin: &origin,
            method: Method::PUT,
            path: "/k",
            query: Some("a=1"),
            viewer_headers: &viewer,
            viewer_host: "site.example",
            forward: Forward::All,
            extra: HeaderMap::new(),
            empty_body: false,
        }
        .build(empty())
        .unwrap();
        assert_eq!(req.uri().to_string(), "http://127.0.0.1:1234/k?a=1");
        assert_eq!(req.headers()["host"], "site.example");
        assert_eq!(req.headers()["content-type"], "text/plain");
        assert!(req.headers().get("x-secret").is_none());
        assert!(req.headers().get("te").is_none());
    }
}
