//! Uploading rotated access logs to a bucket, as CloudFront's standard logging does: one signed S3 PUT per file.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, header};
use http_body_util::BodyExt;
use strata_config::edge::{LogUpload, Origin};

use crate::access_log::LogSink;
use crate::origin::{Forward, OriginClient, OriginRequest, full};

/// PUTs log files into the configured bucket with SigV4.
pub struct S3LogSink {
    client: OriginClient,
    origin: Origin,
}

impl S3LogSink {
    /// A sink for `cfg`.
    pub fn new(cfg: &LogUpload, timeout: Duration) -> anyhow::Result<Self> {
        Ok(Self {
            client: OriginClient::new(timeout)?,
            origin: Origin::S3 {
                endpoint: cfg.endpoint.clone(),
                bucket: Some(cfg.bucket.clone()),
                region: cfg.region.clone(),
                access_key: Some(cfg.access_key.clone()),
                secret_key: Some(cfg.secret_key.clone()),
            },
        })
    }

    async fn put_object(&self, key: String, body: Bytes) -> anyhow::Result<()> {
        let mut extra = HeaderMap::new();
        extra.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        extra.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/gzip"),
        );
        let path = format!("/{key}");
        let req = OriginRequest {
            origin: &self.origin,
            method: Method::PUT,
            path: &path,
            query: None,
            viewer_headers: &HeaderMap::new(),
            viewer_host: "",
            forward: Forward::CacheKeyOnly(&[]),
            extra,
            empty_body: false,
        }
        .build(full(body))?;
        let resp = self.client.send(req).await?;
        let status = resp.status();
        if !status.is_success() {
            let detail = resp
                .into_body()
                .collect()
                .await
                .map(|b| String::from_utf8_lossy(&b.to_bytes()).into_owned())
                .unwrap_or_default();
            anyhow::bail!("log upload of {key} answered {status}: {detail}");
        }
        Ok(())
    }
}

impl LogSink for S3LogSink {
    fn put(
        &self,
        key: String,
        body: Bytes,
    ) -> Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + '_>> {
        Box::pin(self.put_object(key, body))
    }
}
