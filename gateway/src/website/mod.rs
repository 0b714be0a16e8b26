//! The static website endpoint: anonymous GET and HEAD of a bucket's objects (and CORS preflights), the bucket
//! chosen by the Host header, with index documents, the bucket's error document, routing rules, redirects and HTML error pages as
//! AWS's website endpoint. Every read is decided by [`crate::access::authorize`] for an anonymous caller.
//!
//! [`config`] holds the configuration document, [`routing`] the pure decisions, [`pages`] the error pages;
//! this file does the I/O.

pub mod config;
pub mod pages;
pub mod routing;

use std::net::SocketAddr;

use http::{HeaderMap, Method, Request, StatusCode};
use hyper::body::Incoming;
use strata_storage::{BodyStream, ObjectRecord};

use self::config::WebsiteConfig;
use self::pages::PageError;
use self::routing::{Origin, Redirection};
use crate::access::{RequestEnv, authorize, hide_missing_key, kinds};
use crate::conditional::{Conditions, http_date};
use crate::error::{ApiError, ApiResult};
use crate::handlers::object::record_time;
use crate::handlers::{Ctx, Resp, empty, set_header, streaming};
use crate::range::parse_range;

/// Representation headers of an object that the website endpoint returns (never user metadata, tags,
/// versions or other x-amz-* headers).
const SERVED_HEADERS: [&str; 5] = [
    "cache-control",
    "content-disposition",
    "content-encoding",
    "content-language",
    "expires",
];

/// One website request, as far as the endpoint cares.
struct Visit<'a> {
    ctx: &'a Ctx,
    headers: &'a HeaderMap,
    head: bool,
    bucket: String,
    env: RequestEnv,
    request_id: &'a str,
}

/// Answers one website request; never fails (errors become HTML pages).
pub async fn handle(ctx: &Ctx, req: Request<Incoming>, peer: SocketAddr, request_id: &str) -> Resp {
    let (parts, _body) = req.into_parts();
    let head = parts.method == Method::HEAD;
    let host = crate::server::request_host(&parts).unwrap_or_default();
    let Some(bucket) = routing::bucket_for_host(&host, &ctx.website_domains) else {
        let e = ApiError::InvalidArgument("A Host header naming the bucket is required.".into());
        return page(&e, vec![], request_id, head);
    };
    let visit = Visit {
        ctx,
        headers: &parts.headers,
        head,
        env: RequestEnv::from_request(&parts.headers, Some(peer), None, chrono::Utc::now()),
        bucket,
        request_id,
    };
    if parts.method == Method::OPTIONS {
        return match crate::cors::preflight(ctx, Some(&visit.bucket), true, &parts.headers).await {
            Ok(resp) => resp,
            Err(e) => {
                let details = vec![
                    ("Method", parts.method.to_string()),
                    ("ResourceType", "OBJECT".to_owned()),
                ];
                page(&e, details, request_id, false)
            }
        };
    }
    if parts.method != Method::GET && !head {
        let e = ApiError::MethodNotAllowed;
        let details = vec![
            ("Method", parts.method.to_string()),
            ("ResourceType", "OBJECT".to_owned()),
        ];
        return page(&e, details, request_id, false);
    }
    let origin = Origin {
        // https when a trusted proxy in front (the edge) says the viewer came over TLS.
        protocol: if visit.env.secure_transport {
            "https"
        } else {
            "http"
        },
        host: &host,
    };
    let path_and_query = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let mut resp = visit.serve(parts.uri.path(), &path_and_query, origin).await;
    crate::cors::decorate(
        ctx,
        Some(&visit.bucket),
        &parts.headers,
        &parts.method,
        &mut resp,
    )
    .await;
    resp
}

fn page(e: &ApiError, details: Vec<(&'static str, String)>, request_id: &str, head: bool) -> Resp {
    pages::response(&PageError { error: e, details }, None, request_id, head)
}

fn redirect(r: &Redirection) -> Resp {
    let mut resp = empty(StatusCode::from_u16(r.status).unwrap_or(StatusCode::MOVED_PERMANENTLY));
    set_header(&mut resp, "location", &r.location);
    set_header(&mut resp, "content-length", "0");
    resp
}

impl Visit<'_> {
    async fn serve(&self, path: &str, path_and_query: &str, origin: Origin<'_>) -> Resp {
        let cfg = match self.config().await {
            Ok(c) => c,
            Err(e) => {
                let details = vec![("BucketName", self.bucket.clone())];
                return page(&e, details, self.request_id, self.head);
            }
        };
        if let Some(all) = &cfg.redirect_all {
            return redirect(&routing::redirect_all(all, origin, path_and_query));
        }
        let Some(key) = routing::key_for_path(path) else {
            let e = ApiError::InvalidArgument("The request path is not valid UTF-8.".into());
            return page(&e, vec![], self.request_id, self.head);
        };
        if let Some(rule) = routing::rule_before_fetch(&cfg, &key) {
            return redirect(&routing::rule_redirect(rule, &key, origin));
        }
        let suffix = cfg.index_suffix.as_deref().unwrap_or("index.html");
        let target = routing::index_key(&key, suffix);
        match self.fetch(&target).await {
            Ok(record) => self.object(&target, &record),
            Err(ApiError::NoSuchKey) if target == key => {
                let dir_index = format!("{key}/{suffix}");
                if self.fetch(&dir_index).await.is_ok() {
                    return redirect(&routing::directory_redirect(&key));
                }
                let e = self.hide_missing(ApiError::NoSuchKey).await;
                self.error(&cfg, &key, &target, e, origin).await
            }
            Err(ApiError::NoSuchKey) => {
                let e = self.hide_missing(ApiError::NoSuchKey).await;
                self.error(&cfg, &key, &target, e, origin).await
            }
            Err(e) => self.error(&cfg, &key, &target, e, origin).await,
        }
    }

    /// A missing key as the visitor may learn of it ([`hide_missing_key`]).
    async fn hide_missing(&self, missing: ApiError) -> ApiError {
        hide_missing_key(self.ctx, None, &self.bucket, &self.env, missing).await
    }

    /// The bucket's website configuration; NoSuchBucket or NoSuchWebsiteConfiguration when there is none.
    async fn config(&self) -> ApiResult<WebsiteConfig> {
        self.ctx
            .access
            .existing(&self.ctx.engine, &self.bucket)
            .await?;
        match self
            .ctx
            .engine
            .bucket_config(&self.bucket, kinds::WEBSITE)
            .await?
        {
            Some(doc) => WebsiteConfig::from_stored(&doc),
            None => Err(ApiError::NoSuchWebsiteConfiguration),
        }
    }

    /// The current record of `key`, if an anonymous caller may read it.
    async fn fetch(&self, key: &str) -> ApiResult<ObjectRecord> {
        authorize(
            self.ctx,
            None,
            "s3:GetObject",
            &self.bucket,
            Some(key),
            &self.env,
        )
        .await?;
        if key.is_empty() {
            return Err(ApiError::NoSuchKey);
        }
        Ok(self.ctx.engine.head_object(&self.bucket, key).await?)
    }

    /// Serves a readable object: its redirect location, a 304, a range or the whole body.
    fn object(&self, key: &str, record: &ObjectRecord) -> Resp {
        if let Some(location) = record.header("x-amz-website-redirect-location") {
            return redirect(&Redirection {
                status: 301,
                location: location.to_owned(),
            });
        }
        match Conditions::from_headers(self.headers, "if-").check(
            &record.etag,
            record_time(record),
            || ApiError::NotModified,
        ) {
            Ok(()) => {}
            Err(ApiError::NotModified) => {
                let mut resp = empty(StatusCode::NOT_MODIFIED);
                validators(&mut resp, record);
                return resp;
            }
            Err(e) => {
                return page(
                    &e,
                    vec![("Key", key.to_owned())],
                    self.request_id,
                    self.head,
                );
            }
        }
        let range = self
            .headers
            .get(http::header::RANGE)
            .and_then(|v| v.to_str().ok());
        let range = match parse_range(range, record.size) {
            Ok(r) => r,
            Err(e) => {
                let mut resp = page(
                    &e,
                    vec![("Key", key.to_owned())],
                    self.request_id,
                    self.head,
                );
                set_header(
                    &mut resp,
                    "content-range",
                    &format!("bytes */{}", record.size),
                );
                return resp;
            }
        };
        let (status, start, end) = match range {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e),
            None => (StatusCode::OK, 0, record.size.saturating_sub(1)),
        };
        let mut resp = self.body(status, key, record, start, end);
        if range.is_some() {
            set_header(
                &mut resp,
                "content-range",
                &format!("bytes {start}-{end}/{}", record.size),
            );
        }
        resp
    }

    /// A response streaming bytes `start..=end` of `record` (nothing for HEAD) with its headers.
    fn body(
        &self,
        status: StatusCode,
        key: &str,
        record: &ObjectRecord,
        start: u64,
        end: u64,
    ) -> Resp {
        let len = if record.size == 0 { 0 } else { end - start + 1 };
        let body: BodyStream = if self.head || len == 0 {
            Box::pin(futures_util::stream::empty())
        } else {
            self.ctx
                .engine
                .read_object(&self.bucket, key, record, start, end)
        };
        let mut resp = streaming(status, body);
        validators(&mut resp, record);
        set_header(&mut resp, "accept-ranges", "bytes");
        set_header(
            &mut resp,
            "content-type",
            record
                .header("content-type")
                .unwrap_or("binary/octet-stream"),
        );
        set_header(&mut resp, "content-length", &len.to_string());
        for name in SERVED_HEADERS {
            if let Some(v) = record.header(name) {
                set_header(&mut resp, name, v);
            }
        }
        resp
    }

    /// Serving `target` (asked as `key`) failed with `e`: an error-code routing rule, the bucket's error
    /// document with the error's status, or the HTML page.
    async fn error(
        &self,
        cfg: &WebsiteConfig,
        key: &str,
        target: &str,
        e: ApiError,
        origin: Origin<'_>,
    ) -> Resp {
        let status = e.http_status();
        if let Some(rule) = routing::rule_after_error(cfg, key, status.as_u16()) {
            return redirect(&routing::rule_redirect(rule, key, origin));
        }
        let main = PageError {
            error: &e,
            details: vec![("Key", target.to_owned())],
        };
        let Some(doc_key) = cfg
            .error_key
            .as_deref()
            .filter(|_| status.is_client_error())
        else {
            return pages::response(&main, None, self.request_id, self.head);
        };
        match self.fetch(doc_key).await {
            Ok(record) => {
                let end = record.size.saturating_sub(1);
                self.body(status, doc_key, &record, 0, end)
            }
            Err(doc_error) => {
                let doc = PageError {
                    error: &doc_error,
                    details: vec![("Key", doc_key.to_owned())],
                };
                pages::response(&main, Some(&doc), self.request_id, self.head)
            }
        }
    }
}

/// ETag and Last-Modified, plus the caching headers a 304 must repeat.
fn validators(resp: &mut Resp, record: &ObjectRecord) {
    set_header(resp, "etag", &format!("\"{}\"", record.etag));
    set_header(resp, "last-modified", &http_date(record_time(record)));
    for name in ["cache-control", "expires"] {
        if let Some(v) = record.header(name) {
            set_header(resp, name, v);
        }
    }
}
