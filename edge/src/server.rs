//! The edge's listeners and lifecycle: plain HTTP and HTTPS viewer listeners (HTTP/1.1 and HTTP/2), the admin
//! listener (health, metrics, invalidations), reload of the reloadable configuration, and graceful shutdown.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use serde::{Deserialize, Serialize};
use strata_config::EdgeConfig;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::access_log::{AccessLog, LogSink};
use crate::cache::Cache;
use crate::coalesce::Flights;
use crate::distribution::Routing;
use crate::geo::{GeoDb, TrustedProxies};
use crate::metrics::Metrics;
use crate::origin::{Body, OriginClient, full};
use crate::proxy::{self, Conn, Edge, Runtime};
use crate::tls::{Certificates, SniResolver};

/// Longest TLS handshake a viewer gets.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Invalidation records kept for GET /invalidations/{id}.
const INVALIDATIONS_KEPT: usize = 1000;
/// Largest invalidation request body.
const INVALIDATION_BODY_LIMIT: usize = 1024 * 1024;
/// Paths per invalidation request (CloudFront's limit).
const INVALIDATION_PATHS_MAX: usize = 3000;

/// A bound, ready edge node.
pub struct EdgeServer {
    edge: Arc<Edge>,
    resolver: Arc<SniResolver>,
    state_dir: PathBuf,
    admin_token: String,
    invalidations: Arc<Mutex<VecDeque<Invalidation>>>,
    client_timeout: Duration,
    http: TcpListener,
    https: TcpListener,
    admin: TcpListener,
}

/// Replaces the reloadable configuration of a running edge.
#[derive(Clone)]
pub struct Reloader {
    edge: Arc<Edge>,
    resolver: Arc<SniResolver>,
    state_dir: PathBuf,
}

impl Reloader {
    /// Applies `cfg`'s distributions, certificates, geo database and trusted proxies; on error nothing changes.
    pub fn reload(&self, cfg: &EdgeConfig) -> anyhow::Result<()> {
        cfg.validate()?;
        let runtime = build_runtime(cfg)?;
        let certs = Certificates::load(&cfg.distributions, &self.state_dir)?;
        self.edge.runtime.store(Arc::new(runtime));
        self.resolver.replace(certs);
        tracing::info!(
            distributions = cfg.distributions.len(),
            "edge configuration reloaded"
        );
        Ok(())
    }
}

fn build_runtime(cfg: &EdgeConfig) -> anyhow::Result<Runtime> {
    let geo = match &cfg.geoip_db {
        Some(path) => Some(Arc::new(GeoDb::open(path)?)),
        None => None,
    };
    Ok(Runtime {
        routing: Routing::compile(&cfg.distributions)?,
        geo,
        trusted: TrustedProxies::parse(&cfg.trusted_proxies)?,
    })
}

impl EdgeServer {
    /// Binds the three listeners and prepares the cache, certificates and origin client.
    pub async fn bind(
        cfg: &EdgeConfig,
        state_dir: &Path,
        log_sink: Option<Arc<dyn LogSink>>,
    ) -> anyhow::Result<Self> {
        cfg.validate()?;
        std::fs::create_dir_all(state_dir)
            .map_err(|e| anyhow::anyhow!("creating {}: {e}", state_dir.display()))?;
        let runtime = build_runtime(cfg)?;
        let resolver = Arc::new(SniResolver::new(Certificates::load(
            &cfg.distributions,
            state_dir,
        )?));
        let admin_token = admin_token(cfg, state_dir)?;
        let bind = |addr: SocketAddr, what: &'static str| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|e| anyhow::anyhow!("binding edge {what} listener on {addr}: {e}"))
        };
        let http = bind(cfg.listen, "HTTP").await?;
        let https = bind(cfg.tls_listen, "HTTPS").await?;
        let admin = bind(cfg.admin_listen, "admin").await?;
        let https_port = https.local_addr()?.port();
        let edge = Arc::new(Edge {
            runtime: ArcSwap::from_pointee(runtime),
            cache: Cache::open(&cfg.cache)?,
            flights: Arc::new(Flights::default()),
            origin: OriginClient::new(Duration::from_secs(cfg.origin_timeout_secs))?,
            metrics: Metrics::new(),
            log: AccessLog::start(&cfg.log, &cfg.edge_id, log_sink)?,
            edge_id: cfg.edge_id.clone(),
            coalesce_wait: Duration::from_secs(cfg.coalesce_wait_secs),
            https_port,
        });
        Ok(Self {
            edge,
            resolver,
            state_dir: state_dir.to_owned(),
            admin_token,
            invalidations: Arc::default(),
            client_timeout: Duration::from_secs(cfg.client_timeout_secs),
            http,
            https,
            admin,
        })
    }

    /// Bound addresses: HTTP, HTTPS, admin.
    pub fn addrs(&self) -> (SocketAddr, SocketAddr, SocketAddr) {
        let a = |l: &TcpListener| l.local_addr().expect("bound listener has an address");
        (a(&self.http), a(&self.https), a(&self.admin))
    }

    /// The invalidation API's bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// A handle for SIGHUP reloads.
    pub fn reloader(&self) -> Reloader {
        Reloader {
            edge: self.edge.clone(),
            resolver: self.resolver.clone(),
            state_dir: self.state_dir.clone(),
        }
    }

    /// Serves until `shutdown` resolves, then drains connections for up to `grace`.
    pub async fn run(self, shutdown: impl Future<Output = ()>, grace: Duration) {
        let graceful = Arc::new(GracefulShutdown::new());
        let mut builder = auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(self.client_timeout)
            .keep_alive(true);
        builder.http2().timer(TokioTimer::new());
        let builder = Arc::new(builder);
        let tls = TlsAcceptor::from(Arc::new(
            crate::tls::server_config(self.resolver.clone()).expect("TLS configuration builds"),
        ));
        let admin = AdminApi {
            edge: self.edge.clone(),
            token: self.admin_token.clone(),
            invalidations: self.invalidations.clone(),
        };
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                accepted = self.http.accept() => {
                    if let Ok((stream, peer)) = accepted {
                        let _ = stream.set_nodelay(true);
                        let conn = Arc::new(Conn { peer, https: false, tls_version: None, tls_cipher: None });
                        serve_viewer(&builder, &graceful, &self.edge, conn, TokioIo::new(stream));
                    }
                }
                accepted = self.https.accept() => {
                    if let Ok((stream, peer)) = accepted {
                        let _ = stream.set_nodelay(true);
                        let tls = tls.clone();
                        let builder = builder.clone();
                        let graceful = graceful.clone();
                        let edge = self.edge.clone();
                        tokio::spawn(async move {
                            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
                                Ok(Ok(s)) => s,
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                                    return;
                                }
                                Err(_) => return,
                            };
                            let session = stream.get_ref().1;
                            let tls_version = session.protocol_version().map(|v| match v {
                                rustls::ProtocolVersion::TLSv1_3 => "TLSv1.3",
                                rustls::ProtocolVersion::TLSv1_2 => "TLSv1.2",
                                _ => "TLS",
                            });
                            let tls_cipher = session
                                .negotiated_cipher_suite()
                                .and_then(|c| c.suite().as_str().map(str::to_owned));
                            let conn = Arc::new(Conn { peer, https: true, tls_version, tls_cipher });
                            serve_viewer(&builder, &graceful, &edge, conn, TokioIo::new(stream));
                        });
                    }
                }
                accepted = self.admin.accept() => {
                    if let Ok((stream, _)) = accepted {
                        let admin = admin.clone();
                        let service = service_fn(move |req| {
                            let admin = admin.clone();
                            async move { Ok::<_, Infallible>(admin.handle(req).await) }
                        });
                        let conn = builder.serve_connection(TokioIo::new(stream), service).into_owned();
                        let conn = graceful.watch(conn);
                        tokio::spawn(async move { let _ = conn.await; });
                    }
                }
                () = &mut shutdown => break,
            }
        }
        drop(self.http);
        drop(self.https);
        drop(self.admin);
        let graceful = Arc::try_unwrap(graceful).unwrap_or_else(|_| GracefulShutdown::new());
        tokio::select! {
            () = graceful.shutdown() => tracing::info!("edge connections drained"),
            () = tokio::time::sleep(grace) => tracing::warn!("edge grace period over"),
        }
        self.edge.log.shutdown().await;
    }
}

fn serve_viewer<I>(
    builder: &Arc<auto::Builder<TokioExecutor>>,
    graceful: &Arc<GracefulShutdown>,
    edge: &Arc<Edge>,
    conn: Arc<Conn>,
    io: TokioIo<I>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let edge = edge.clone();
    let peer = conn.peer;
    let service = service_fn(move |req: Request<Incoming>| {
        let edge = edge.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(proxy::handle(edge, conn, req).await) }
    });
    let conn = builder.serve_connection(io, service).into_owned();
    let conn = graceful.watch(conn);
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            tracing::debug!(%peer, error = %e, "viewer connection ended with error");
        }
    });
}

fn admin_token(cfg: &EdgeConfig, state_dir: &Path) -> anyhow::Result<String> {
    if !cfg.admin_token.is_empty() {
        return Ok(cfg.admin_token.clone());
    }
    let path = state_dir.join("admin-token");
    if let Ok(t) = std::fs::read_to_string(&path)
        && !t.trim().is_empty()
    {
        return Ok(t.trim().to_owned());
    }
    let token = hex::encode(rand::random::<[u8; 24]>());
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    use std::io::Write;
    opts.open(&path)
        .and_then(|mut f| f.write_all(token.as_bytes()))
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(token)
}

/// One invalidation, as the API reports it.
#[derive(Debug, Clone, Serialize)]
struct Invalidation {
    id: String,
    distribution: String,
    status: &'static str,
    create_time: String,
    paths: Vec<String>,
    invalidated_entries: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvalidationRequest {
    distribution: String,
    paths: Vec<String>,
    #[serde(default)]
    caller_reference: Option<String>,
}

#[derive(Clone)]
struct AdminApi {
    edge: Arc<Edge>,
    token: String,
    invalidations: Arc<Mutex<VecDeque<Invalidation>>>,
}

impl AdminApi {
    async fn handle(&self, req: Request<Incoming>) -> Response<Body> {
        let path = req.uri().path().to_owned();
        match (req.method(), path.as_str()) {
            (&Method::GET, "/health") => text(StatusCode::OK, "text/plain", "ok\n".into()),
            (&Method::GET, "/metrics") => text(
                StatusCode::OK,
                "text/plain; version=0.0.4",
                self.edge.metrics.render(&self.edge.cache.gauges()),
            ),
            (_, p) if p == "/invalidations" || p.starts_with("/invalidations/") => {
                if !self.authorized(&req) {
                    return json_error(
                        StatusCode::UNAUTHORIZED,
                        "AccessDenied",
                        "bearer token required",
                    );
                }
                match (req.method(), p.strip_prefix("/invalidations/")) {
                    (&Method::POST, None) => self.create(req).await,
                    (&Method::GET, Some(id)) => self.get(id),
                    (&Method::GET, None) => self.list(),
                    _ => json_error(
                        StatusCode::METHOD_NOT_ALLOWED,
                        "MethodNotAllowed",
                        "use POST /invalidations or GET /invalidations/{id}",
                    ),
                }
            }
            _ => json_error(StatusCode::NOT_FOUND, "NotFound", "no such admin endpoint"),
        }
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(got) = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        constant_time_eq(got.trim().as_bytes(), self.token.as_bytes())
    }

    async fn create(&self, req: Request<Incoming>) -> Response<Body> {
        let body = match Limited::new(req.into_body(), INVALIDATION_BODY_LIMIT)
            .collect()
            .await
        {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return json_error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "TooLarge",
                    "request body over 1 MiB",
                );
            }
        };
        let ask: InvalidationRequest = match serde_json::from_slice(&body) {
            Ok(a) => a,
            Err(e) => return json_error(StatusCode::BAD_REQUEST, "MalformedInput", &e.to_string()),
        };
        if ask.paths.is_empty() || ask.paths.len() > INVALIDATION_PATHS_MAX {
            return json_error(
                StatusCode::BAD_REQUEST,
                "InvalidArgument",
                "paths must hold 1 to 3000 entries",
            );
        }
        for p in &ask.paths {
            let star = p.find('*');
            if !p.starts_with('/') || star.is_some_and(|i| i != p.len() - 1) {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidArgument",
                    &format!("{p:?}: a path starts with / and may end with one *"),
                );
            }
        }
        let runtime = self.edge.runtime.load();
        let Some(site) = runtime.routing.by_id(&ask.distribution) else {
            return json_error(
                StatusCode::NOT_FOUND,
                "NoSuchDistribution",
                &ask.distribution,
            );
        };
        let mut removed = 0;
        for p in &ask.paths {
            removed += self.edge.cache.invalidate(&site.id, p);
        }
        self.edge.metrics.invalidated(removed);
        let record = Invalidation {
            id: format!("I{}", hex::encode_upper(rand::random::<[u8; 10]>())),
            distribution: site.id.clone(),
            status: "Completed",
            create_time: chrono::DateTime::<chrono::Utc>::from(SystemTime::now())
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string(),
            paths: ask.paths,
            invalidated_entries: removed,
        };
        tracing::info!(id = %record.id, distribution = %record.distribution, paths = record.paths.len(), removed, caller = ?ask.caller_reference, "invalidation");
        {
            let mut list = self.invalidations.lock().unwrap_or_else(|p| p.into_inner());
            list.push_back(record.clone());
            while list.len() > INVALIDATIONS_KEPT {
                list.pop_front();
            }
        }
        let mut resp = json(StatusCode::CREATED, &record);
        if let Ok(v) = HeaderValue::from_str(&format!("/invalidations/{}", record.id)) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        resp
    }

    fn get(&self, id: &str) -> Response<Body> {
        let list = self.invalidations.lock().unwrap_or_else(|p| p.into_inner());
        match list.iter().find(|i| i.id == id) {
            Some(i) => json(StatusCode::OK, i),
            None => json_error(StatusCode::NOT_FOUND, "NoSuchInvalidation", id),
        }
    }

    fn list(&self) -> Response<Body> {
        let list = self.invalidations.lock().unwrap_or_else(|p| p.into_inner());
        let items: Vec<&Invalidation> = list.iter().rev().take(100).collect();
        json(StatusCode::OK, &items)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(full(Bytes::from(body)));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

fn json<T: Serialize + ?Sized>(status: StatusCode, value: &T) -> Response<Body> {
    let body = serde_json::to_string_pretty(value).unwrap_or_else(|_| "{}".into());
    text(status, "application/json", body + "\n")
}

fn json_error(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json(
        status,
        &serde_json::json!({ "error": { "code": code, "message": message } }),
    )
}
