//! Plain, unsigned GETs of objects through a CDN edge (a Strata edge or any HTTP cache in front of the S3
//! endpoint), for cache-hit benchmarks. URLs are path-style, `<edge-url>/<bucket>/<key>`: a Strata edge whose
//! S3 origin has no `bucket` (the viewer's path names it) or a cache in front of a path-style endpoint. With
//! `--edge-root-bucket` they are `<edge-url>/<key>`, for a distribution that serves one bucket at its root
//! (`bucket = "..."` in the origin). Bodies are counted and dropped, never buffered.

use anyhow::{Context as _, bail};
use http::{HeaderValue, Method, Request, StatusCode, Uri};

use crate::client::{OpError, check_authority, drain_counting, read_doc, transport};
use crate::payload::PayloadBody;
use crate::sigv4;
use crate::transport::{HttpClient, TlsOptions, http_client};

/// Sends GETs to one edge.
pub(crate) struct EdgeClient {
    http: HttpClient,
    /// `scheme://authority[/path prefix]`, no trailing slash.
    base: String,
    /// Whether the bucket name is the first path segment.
    bucket_in_path: bool,
}

impl EdgeClient {
    /// A client for `edge_url` (`http(s)://host[:port][/prefix]`).
    pub(crate) fn new(
        edge_url: &str,
        bucket_in_path: bool,
        tls: &TlsOptions,
        pool_size: usize,
    ) -> anyhow::Result<EdgeClient> {
        let uri: Uri = edge_url
            .parse()
            .with_context(|| format!("invalid --edge-url {edge_url:?}"))?;
        if !matches!(uri.scheme_str(), Some("http" | "https")) {
            bail!("--edge-url must start with http:// or https:// (got {edge_url:?})");
        }
        let Some(authority) = uri.authority().filter(|_| uri.query().is_none()) else {
            bail!(
                "--edge-url must be scheme://host[:port][/path], without a query (got {edge_url:?})"
            );
        };
        check_authority(authority, "--edge-url", edge_url)?;
        Ok(EdgeClient {
            http: http_client(tls, pool_size)?,
            base: edge_url.trim_end_matches('/').to_owned(),
            bucket_in_path,
        })
    }

    /// The URL of `key` in `bucket`.
    pub(crate) fn url(&self, bucket: &str, key: &str) -> String {
        let path = if self.bucket_in_path {
            format!("/{bucket}/{key}")
        } else {
            format!("/{key}")
        };
        format!("{}{}", self.base, sigv4::uri_encode(&path, true))
    }

    /// GETs `key` of `bucket`; it must answer 200 with exactly `expected` bytes. Returns the bytes received
    /// and the `X-Cache` header (how the cache says it answered), when there is one.
    pub(crate) async fn get(
        &self,
        bucket: &str,
        key: &str,
        expected: u64,
    ) -> Result<(u64, Option<HeaderValue>), OpError> {
        let req = Request::builder()
            .method(Method::GET)
            .uri(self.url(bucket, key))
            .body(PayloadBody::empty())
            .map_err(|e| OpError::Transport(format!("building request: {e}")))?;
        let resp = self.http.request(req).await.map_err(transport)?;
        if resp.status() != StatusCode::OK {
            let status = resp.status().as_u16();
            // drain a short error page so the connection can be reused
            let _ = read_doc(resp.into_body()).await;
            return Err(OpError::Http { status, code: None });
        }
        let x_cache = resp.headers().get("x-cache").cloned();
        let got = drain_counting(resp.into_body()).await?;
        if got != expected {
            return Err(OpError::ShortBody { expected, got });
        }
        Ok((got, x_cache))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_path_style_and_encoded() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let tls = TlsOptions::default();
        let c = EdgeClient::new("http://127.0.0.1:8080/", true, &tls, 1).unwrap();
        assert_eq!(
            c.url("b", "p1/bench/1a2b3c4d/pool/3"),
            "http://127.0.0.1:8080/b/p1/bench/1a2b3c4d/pool/3"
        );
        assert_eq!(c.url("b", "a b+c"), "http://127.0.0.1:8080/b/a%20b%2Bc");
        let root = EdgeClient::new("https://cdn.example/s3", false, &tls, 1).unwrap();
        assert_eq!(root.url("b", "k"), "https://cdn.example/s3/k");
        assert!(EdgeClient::new("127.0.0.1:8080", true, &tls, 1).is_err());
        assert!(EdgeClient::new("ftp://h", true, &tls, 1).is_err());
        assert!(EdgeClient::new("http://h/?x=1", true, &tls, 1).is_err());
        let bad_port = EdgeClient::new("http://h:99999/", true, &tls, 1)
            .err()
            .unwrap();
        assert!(bad_port.to_string().contains("invalid port"), "{bad_port}");
        assert!(EdgeClient::new("http://u:p@h/", true, &tls, 1).is_err());
    }
}
