//! The HTTP server: accepts connections, runs each request through authenticate → route → dispatch, renders
//! errors, stamps request ids, and shuts down gracefully (in-flight requests finish; new ones are refused).
//! The same machinery runs the website endpoint ([`serve_website`]), which answers with [`crate::website`].

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;

use crate::access::{self, RequestEnv};
use crate::admin;
use crate::auth::{self, Trailers};
use crate::error::{ApiError, ApiResult};
use crate::handlers::object::copy_source;
use crate::handlers::{Ctx, Req, Resp, dispatch, set_header};
use crate::router::{Endpoint, Query, route, split_resource};

/// Which API a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frontend {
    /// The S3 REST API.
    S3,
    /// The anonymous static website endpoint.
    Website,
}

/// Serves the S3 API on `listener` until `shutdown` resolves, then waits (up to `grace`) for in-flight requests.
pub async fn serve(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    run(listener, ctx, shutdown, grace, Frontend::S3).await
}

/// Serves the static website endpoint on `listener`, with the same timeouts and shutdown as [`serve`].
pub async fn serve_website(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) {
    run(listener, ctx, shutdown, grace, Frontend::Website).await
}

async fn run(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
    frontend: Frontend,
) {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(ctx.client_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let ctx = ctx.clone();
        let io = TokioIo::new(WriteTimeout::new(stream, ctx.client_timeout));
        let service = service_fn(move |req| {
            let ctx = ctx.clone();
            async move {
                Ok::<_, Infallible>(match frontend {
                    Frontend::S3 => handle(ctx, req, Some(peer)).await,
                    Frontend::Website => handle_website(ctx, req, peer).await,
                })
            }
        });
        let conn = builder
            .serve_connection_with_upgrades(io, service)
            .into_owned();
        let conn = graceful.watch(conn);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "connection ended with error");
            }
        });
    }
    drop(listener);
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("all connections drained"),
        () = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}

fn request_id() -> String {
    format!("{:016X}", rand::random::<u64>())
}

/// The id every response carries, in `x-amz-request-id` and (doubled) `x-amz-id-2`, plus `Server`.
fn stamp(resp: &mut Resp, id: &str) {
    set_header(resp, "x-amz-request-id", id);
    set_header(resp, "x-amz-id-2", &host_id(id));
    resp.headers_mut()
        .insert(http::header::SERVER, HeaderValue::from_static("Strata"));
}

/// The host id reported with a request id (`x-amz-id-2`, and HostId on website error pages).
pub(crate) fn host_id(request_id: &str) -> String {
    format!("{request_id}{request_id}")
}

/// Runs one website request to a response (HTML error pages, never XML).
async fn handle_website(ctx: Arc<Ctx>, req: Request<Incoming>, peer: SocketAddr) -> Resp {
    let started = Instant::now();
    let id = request_id();
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let mut resp = crate::website::handle(&ctx, req, peer, &id).await;
    stamp(&mut resp, &id);
    tracing::info!(
        target: "strata::access",
        request_id = %id, %method, path, op = "Website", status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
    );
    resp
}

/// Runs one request from `peer` to a response; never fails (errors become S3 error documents).
pub async fn handle(ctx: Arc<Ctx>, req: Request<Incoming>, peer: Option<SocketAddr>) -> Resp {
    let started = Instant::now();
    let id = request_id();
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let mut op = "unknown";
    // CORS: what the response's Access-Control-* headers depend on, kept before the request is consumed.
    let cors = parts
        .headers
        .contains_key(http::header::ORIGIN)
        .then(|| (parts.headers.clone(), request_resource(&ctx, &parts)));
    let result = match (&method, &cors) {
        (&Method::OPTIONS, Some((headers, (bucket, key)))) => {
            op = "PreflightCors";
            crate::cors::preflight(&ctx, bucket.as_deref(), *key, headers).await
        }
        (&Method::OPTIONS, None) => {
            op = "PreflightCors";
            crate::cors::preflight(&ctx, None, false, &parts.headers).await
        }
        _ => handle_inner(&ctx, parts, body, peer, &mut op).await,
    };
    let mut resp = match result {
        Ok(r) => r,
        Err(e) => error_response(&e, &path, &id, method == Method::HEAD),
    };
    if let Some((headers, (bucket, _))) = &cors
        && method != Method::OPTIONS
    {
        crate::cors::decorate(&ctx, bucket.as_deref(), headers, &method, &mut resp).await;
    }
    stamp(&mut resp, &id);
    tracing::info!(
        target: "strata::access",
        request_id = %id, %method, path, query, op, status = resp.status().as_u16(),
        ms = started.elapsed().as_millis() as u64,
    );
    resp
}

/// The bucket a request addresses (path-style or virtual-hosted), if any, and whether it names a key.
fn request_resource(ctx: &Ctx, parts: &http::request::Parts) -> (Option<String>, bool) {
    match split_resource(request_host_bucket(ctx, parts).as_deref(), parts.uri.path()) {
        Ok((bucket, key)) => (bucket, key.is_some()),
        Err(_) => (None, false),
    }
}

/// The Host header, or the URI's authority (HTTP/2).
pub(crate) fn request_host(parts: &http::request::Parts) -> Option<String> {
    parts
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| parts.uri.authority().map(|a| a.as_str()))
        .map(str::to_owned)
}

/// The bucket the request's Host header names in virtual-hosted style (under `ctx.vhost_domains`), if any.
fn request_host_bucket(ctx: &Ctx, parts: &http::request::Parts) -> Option<String> {
    request_host(parts).and_then(|h| crate::host::virtual_bucket(&h, &ctx.vhost_domains))
}

async fn handle_inner(
    ctx: &Ctx,
    parts: http::request::Parts,
    body: Incoming,
    peer: Option<SocketAddr>,
    op: &mut &'static str,
) -> ApiResult<Resp> {
    let host_bucket = request_host_bucket(ctx, &parts);
    let outcome = auth::authenticate(
        &parts,
        ctx.creds.as_ref(),
        &ctx.region,
        host_bucket.as_deref(),
        chrono::Utc::now(),
    )?;
    let query = Query::parse(parts.uri.query());
    let (bucket, key) = split_resource(host_bucket.as_deref(), parts.uri.path())?;
    if bucket.as_deref() == Some(admin::SEGMENT) {
        *op = "Admin";
        let identity = outcome.identity.ok_or(ApiError::AccessDenied)?;
        // Only a request whose body is signed: a presigned URL, an unsigned payload or Version 2 could be
        // replayed with other users or policies in the body. `strata admin` signs the body's SHA-256.
        let body_signed = matches!(
            outcome.payload,
            auth::Payload::Sha256(_) | auth::Payload::StreamingSigned { .. }
        );
        if outcome.signing != Some(auth::Signing::V4_HEADER) || !body_signed {
            return Err(ApiError::InvalidRequest(
                "The admin API takes only AWS4-HMAC-SHA256 in the Authorization header with a signed payload \
                 (x-amz-content-sha256 of the body)."
                    .into(),
            ));
        }
        let env = RequestEnv::from_request(&parts.headers, peer, None, chrono::Utc::now())
            .with_signing(outcome.signing);
        let req = Req {
            parts,
            body: Some(body),
            query,
            identity: Some(identity),
            env,
            payload: outcome.payload,
            decoded_content_length: outcome.decoded_content_length,
            trailers: Trailers::default(),
        };
        return admin::handle(ctx, req, key.as_deref().unwrap_or_default()).await;
    }
    let endpoint = route(
        &parts.method,
        bucket,
        key,
        &query,
        parts.headers.contains_key("x-amz-copy-source"),
    )?;
    *op = endpoint.name();
    let env = RequestEnv::from_request(
        &parts.headers,
        peer,
        query.get("prefix"),
        chrono::Utc::now(),
    )
    .with_listing(query.get("delimiter"), query.get("max-keys"))
    .with_version(query.get("versionId"))
    .with_signing(outcome.signing);
    let req = Req {
        parts,
        body: Some(body),
        query,
        identity: outcome.identity,
        env,
        payload: outcome.payload,
        decoded_content_length: outcome.decoded_content_length,
        trailers: Trailers::default(),
    };
    authorize_endpoint(ctx, &endpoint, &req).await?;
    let missing_key_check = match &endpoint {
        Endpoint::GetObject { bucket, .. } | Endpoint::HeadObject { bucket, .. } => {
            Some((bucket.clone(), req.identity.clone(), req.env.clone()))
        }
        _ => None,
    };
    let result = dispatch(ctx, endpoint, req).await;
    match (result, missing_key_check) {
        (
            Err(e @ (ApiError::NoSuchKey | ApiError::CurrentIsDeleteMarker { .. })),
            Some((bucket, identity, env)),
        ) => Err(access::hide_missing_key(ctx, identity.as_ref(), &bucket, &env, e).await),
        (result, _) => result,
    }
}

/// Asks [`access::authorize`] for the endpoint's action (and, for copies, s3:GetObject on the source).
/// DeleteObjects is authorized key by key in its handler, and PostObject for the user who signed the form (the
/// request head carries no signature); operations Strata does not implement need a signed caller.
async fn authorize_endpoint(ctx: &Ctx, endpoint: &Endpoint, req: &Req) -> ApiResult<()> {
    let identity = req.identity.as_ref();
    let bucket = endpoint.bucket().unwrap_or_default();
    let versioned = req.query.has("versionId");
    let Some(action) = endpoint.action(versioned) else {
        return match (endpoint, identity) {
            (Endpoint::DeleteObjects { .. } | Endpoint::PostObject { .. }, _) | (_, Some(_)) => {
                Ok(())
            }
            (_, None) => Err(ApiError::AccessDenied),
        };
    };
    access::authorize(ctx, identity, action, bucket, endpoint.key(), &req.env).await?;
    if matches!(
        endpoint,
        Endpoint::CopyObject { .. } | Endpoint::UploadPartCopy { .. }
    ) {
        let (src_bucket, src_key, version) = copy_source(req)?;
        let action = if version.is_some() {
            "s3:GetObjectVersion"
        } else {
            "s3:GetObject"
        };
        let env = req.env.clone().with_version(version.as_deref());
        access::authorize(ctx, identity, action, &src_bucket, Some(&src_key), &env).await?;
    }
    Ok(())
}

/// Renders an error as S3 does: XML body (none for HEAD), the status, and no internal detail.
pub fn error_response(e: &ApiError, resource: &str, request_id: &str, head: bool) -> Resp {
    let status = e.http_status();
    if status.is_server_error() {
        tracing::error!(code = e.aws_code(), error = ?e, "request failed");
    } else {
        tracing::debug!(code = e.aws_code(), "request refused");
    }
    let body = if head || status == http::StatusCode::NOT_MODIFIED {
        Bytes::new()
    } else {
        Bytes::from(e.to_xml(resource, request_id))
    };
    let has_body = !body.is_empty();
    let mut r = Resp::new(Full::new(body).map_err(|e| match e {}).boxed_unsync());
    *r.status_mut() = status;
    if has_body {
        r.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/xml"),
        );
    }
    if let ApiError::CurrentIsDeleteMarker {
        version_id,
        last_modified,
    }
    | ApiError::VersionIsDeleteMarker {
        version_id,
        last_modified,
    } = e
    {
        r.headers_mut()
            .insert("x-amz-delete-marker", HeaderValue::from_static("true"));
        if let Ok(v) = HeaderValue::from_str(version_id) {
            r.headers_mut().insert("x-amz-version-id", v);
        }
        if let Ok(v) = HeaderValue::from_str(last_modified) {
            r.headers_mut().insert(http::header::LAST_MODIFIED, v);
        }
    }
    if status == http::StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

/// Wraps a connection so that a client which stops reading its response is cut off after `timeout`.
struct WriteTimeout<T> {
    inner: T,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<T> WriteTimeout<T> {
    fn new(inner: T, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
        }
    }

    fn check_stall<R>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<R>>,
    ) -> Poll<std::io::Result<R>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client stopped reading",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteTimeout<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check_stall(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check_stall(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check_stall(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
