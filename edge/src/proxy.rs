//! One viewer request, start to finish: distribution by Host, viewer protocol policy, geo-restriction, then
//! either the cached path (lookup, coalesced fill or revalidation, stale-if-error, answering ranges and
//! conditionals from the entry) or the pass-through path (uploads, signed requests, uncacheable responses),
//! streamed both ways. Every response is counted and logged when its body has been sent.

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use http_body_util::BodyExt;
use strata_config::edge::{Origin, ViewerProtocolPolicy};

use crate::ResultType;
use crate::access_log::{AccessLog, LogRecord};
use crate::cache::{Cache, Entry};
use crate::coalesce::{Flights, Outcome, Role};
use crate::distribution::{
    CacheBehavior, Routing, Site, cache_key, is_api_request, strip_port, viewer_signed,
};
use crate::geo::{GeoDb, TrustedProxies};
use crate::metrics::Metrics;
use crate::origin::{
    Body, BoxError, Forward, OriginClient, OriginError, OriginRequest, empty, framed, full,
    strip_hop_by_hop,
};
use crate::ttl::{self, Decision};
use crate::viewer::{self, Precondition, RangeOutcome};

/// The reloadable part of the edge: what SIGHUP replaces.
pub struct Runtime {
    /// Distributions by host.
    pub routing: Routing,
    /// Country database, when configured.
    pub geo: Option<Arc<GeoDb>>,
    /// Proxies whose X-Forwarded-For is believed.
    pub trusted: TrustedProxies,
}

/// Everything a request needs; shared by all listeners.
pub struct Edge {
    /// Reloadable configuration.
    pub runtime: ArcSwap<Runtime>,
    /// Both cache tiers.
    pub cache: Cache,
    /// Fetches in the air.
    pub flights: Arc<Flights>,
    /// Origin client.
    pub origin: OriginClient,
    /// Counters.
    pub metrics: Metrics,
    /// Access log writer.
    pub log: AccessLog,
    /// Edge location name.
    pub edge_id: String,
    /// Longest wait for a concurrent fetch.
    pub coalesce_wait: Duration,
    /// Port of the HTTPS listener, for redirects.
    pub https_port: u16,
}

/// The connection a request came on.
#[derive(Debug, Clone)]
pub struct Conn {
    /// Peer address.
    pub peer: SocketAddr,
    /// Whether it is TLS.
    pub https: bool,
    /// Negotiated TLS version ("TLSv1.3").
    pub tls_version: Option<&'static str>,
    /// Negotiated cipher suite.
    pub tls_cipher: Option<String>,
}

/// What the viewer asked, kept for the response path and the log.
struct Ask {
    id: String,
    started: Instant,
    method: Method,
    host: String,
    path: String,
    query: Option<String>,
    headers: HeaderMap,
    client_ip: std::net::IpAddr,
    conn: Arc<Conn>,
    version: http::Version,
}

/// Serves one request; never fails (errors become error pages).
pub async fn handle<B>(edge: Arc<Edge>, conn: Arc<Conn>, req: Request<B>) -> Response<Body>
where
    B: HttpBody<Data = Bytes> + Send + Sync + 'static,
    B::Error: Into<BoxError>,
{
    let (parts, body) = req.into_parts();
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_owned)
        .or_else(|| parts.uri.authority().map(|a| a.to_string()))
        .unwrap_or_default();
    let runtime = edge.runtime.load_full();
    let client_ip = runtime.trusted.client_ip(conn.peer.ip(), &parts.headers);
    let ask = Ask {
        id: request_id(),
        started: Instant::now(),
        method: parts.method.clone(),
        host,
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts.headers,
        client_ip,
        conn,
        version: parts.version,
    };
    let body = body.map_err(Into::into).boxed();
    let (resp, result) = route(&edge, &runtime, &ask, body).await;
    finish(edge, ask, resp, result)
}

async fn route(
    edge: &Arc<Edge>,
    runtime: &Runtime,
    ask: &Ask,
    body: Body,
) -> (Response<Body>, ResultType) {
    let Some(site) = runtime.routing.site_for(&ask.host).cloned() else {
        return error_response(
            edge,
            ask,
            StatusCode::FORBIDDEN,
            "Bad request. We can't connect to the server for this app or website at this time.",
        );
    };
    if !ask.conn.https {
        match site.viewer_protocol_policy {
            ViewerProtocolPolicy::AllowAll => {}
            ViewerProtocolPolicy::RedirectToHttps
                if ask.method == Method::GET || ask.method == Method::HEAD =>
            {
                return (redirect_to_https(edge, ask), ResultType::Redirect);
            }
            _ => {
                return error_response(
                    edge,
                    ask,
                    StatusCode::FORBIDDEN,
                    "This distribution only serves HTTPS requests.",
                );
            }
        }
    }
    if site.geo.mode != strata_config::edge::GeoMode::None {
        let country = runtime
            .geo
            .as_ref()
            .and_then(|db| db.country(ask.client_ip));
        if !crate::geo::allowed(&site.geo, country.as_deref()) {
            return error_response(edge, ask, StatusCode::FORBIDDEN, crate::pages::GEO_BLOCKED);
        }
    }
    // API requests (signed, writes, their preflights) go to the distribution's API origin and are never cached:
    // that origin reads paths as S3 paths, so its answers must not land under the website's cache keys.
    let (site, to_api) = match &site.api {
        Some(api) if is_api_request(&ask.method, &ask.headers, ask.query.as_deref()) => {
            (api.clone(), true)
        }
        _ => (site, false),
    };
    if let Some(reason) = refused_by_signing_origin(&site, ask) {
        return error_response(edge, ask, StatusCode::FORBIDDEN, reason);
    }
    let behavior = site.behavior(&ask.path).clone();
    if !to_api && is_cacheable_request(&site, ask) {
        cached_get(edge, &site, &behavior, ask).await
    } else {
        pass_through(edge, &site, ask, body, None).await
    }
}

/// Why a request may not go to an origin the edge signs for, if it may not.
///
/// The edge signs with its own credentials (origin access control), so whatever it forwards is done with them on
/// behalf of an anonymous viewer. Like a CloudFront distribution with its default allowed methods and an origin
/// access policy granting only s3:GetObject, only reads of an object pass: GET, HEAD and OPTIONS of a path that
/// names a key. Writes and deletes, and listings of the bucket (or, without a configured bucket, of every bucket),
/// are refused with 403.
fn refused_by_signing_origin(site: &Site, ask: &Ask) -> Option<&'static str> {
    let Origin::S3 {
        access_key: Some(_),
        bucket,
        ..
    } = &site.origin
    else {
        return None;
    };
    if !matches!(ask.method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return Some(crate::pages::reason_for(StatusCode::METHOD_NOT_ALLOWED));
    }
    let rest = ask.path.strip_prefix('/').unwrap_or(&ask.path);
    let key = match bucket {
        Some(_) => rest,
        None => rest.split_once('/').map_or("", |(_, key)| key),
    };
    key.is_empty()
        .then(|| crate::pages::reason_for(StatusCode::FORBIDDEN))
}

/// GET and HEAD without credentials of the viewer's own (unless the edge signs for itself) go through the cache;
/// a viewer's signed request is answered for that viewer only.
fn is_cacheable_request(site: &Site, ask: &Ask) -> bool {
    if ask.method != Method::GET && ask.method != Method::HEAD {
        return false;
    }
    let edge_signs = matches!(
        &site.origin,
        Origin::S3 {
            access_key: Some(_),
            ..
        }
    );
    edge_signs || !viewer_signed(&ask.headers, ask.query.as_deref())
}

async fn cached_get(
    edge: &Arc<Edge>,
    site: &Arc<Site>,
    behavior: &CacheBehavior,
    ask: &Ask,
) -> (Response<Body>, ResultType) {
    let kept_query = behavior.kept_query(ask.query.as_deref());
    let primary = cache_key(
        site,
        behavior,
        ask.conn.https,
        &ask.host,
        &ask.path,
        kept_query.as_deref(),
        &ask.headers,
    );
    if edge.cache.is_pass(&primary) {
        return pass_through(edge, site, ask, empty(), kept_query.as_deref()).await;
    }
    let key = edge.cache.variant_key(&primary, &ask.headers);
    let existing = edge.cache.lookup(&key).await;
    let now = SystemTime::now();
    if let Some(e) = &existing
        && e.is_fresh(now)
    {
        return (
            serve_entry(edge, ask, e, ResultType::Hit, false),
            ResultType::Hit,
        );
    }
    if existing.is_none() && ask.method == Method::HEAD {
        return pass_through(edge, site, ask, empty(), kept_query.as_deref()).await;
    }
    match edge.flights.join(&key) {
        Role::Follower(waiter) => match waiter.wait(edge.coalesce_wait).await {
            Some(Outcome::Stored(entry, _)) => {
                edge.metrics.coalesced();
                (
                    serve_entry(edge, ask, &entry, ResultType::Hit, false),
                    ResultType::Hit,
                )
            }
            Some(Outcome::NotShareable) | None => {
                pass_through(edge, site, ask, empty(), kept_query.as_deref()).await
            }
        },
        Role::Leader(flight) => {
            // The fill runs on its own task: a viewer that hangs up must not abort a fetch others wait for.
            let fill = Fill {
                edge: edge.clone(),
                site: site.clone(),
                behavior: behavior.clone(),
                primary,
                existing,
                path: ask.path.clone(),
                query: kept_query.clone(),
                host: ask.host.clone(),
                headers: ask.headers.clone(),
                peer_ip: ask.conn.peer.ip().to_canonical(),
                https: ask.conn.https,
            };
            let outcome = tokio::spawn(async move {
                let result = fill.run().await;
                match &result {
                    Filled::Serve(entry, r, _) if *r != ResultType::Error => {
                        flight.publish(Outcome::Stored(entry.clone(), *r))
                    }
                    Filled::Serve(..) | Filled::Pass(_) => flight.publish(Outcome::NotShareable),
                    Filled::Failed(_) => drop(flight),
                }
                result
            })
            .await;
            match outcome {
                Ok(Filled::Serve(entry, result, stale)) => {
                    let shown = if result == ResultType::Error {
                        ResultType::Hit
                    } else {
                        result
                    };
                    (serve_entry(edge, ask, &entry, shown, stale), result)
                }
                // The fill asked for the whole object; a viewer who wanted part of it asks the origin again
                // with its own headers, so a large video's range is not answered with the full body.
                Ok(Filled::Pass(_)) if ask.headers.contains_key(header::RANGE) => {
                    pass_through(edge, site, ask, empty(), kept_query.as_deref()).await
                }
                Ok(Filled::Pass(resp)) => (
                    decorate_passed(edge, ask, resp, ResultType::Miss),
                    ResultType::Miss,
                ),
                Ok(Filled::Failed(e)) => origin_failure(edge, ask, &e),
                Err(e) => {
                    tracing::error!(error = %e, "edge fill task failed");
                    origin_failure(edge, ask, &OriginError::Unreachable("internal".into()))
                }
            }
        }
    }
}

/// What a fill produced for its leader.
enum Filled {
    /// Serve this entry with this result; `true` when it is a stale copy standing in for a failed origin
    /// (then the result is Error, shown to the viewer as a Hit with a Warning).
    Serve(Arc<Entry>, ResultType, bool),
    /// Stream this origin response through (not cacheable).
    Pass(Response<Body>),
    /// The origin could not be reached and nothing stale may stand in.
    Failed(OriginError),
}

struct Fill {
    edge: Arc<Edge>,
    site: Arc<Site>,
    behavior: CacheBehavior,
    primary: String,
    existing: Option<Arc<Entry>>,
    path: String,
    query: Option<String>,
    host: String,
    headers: HeaderMap,
    /// The address of whoever connected to the edge (the viewer, or a proxy in front of it).
    peer_ip: std::net::IpAddr,
    /// Whether the viewer's connection was TLS (X-Forwarded-Proto).
    https: bool,
}

impl Fill {
    async fn run(self) -> Filled {
        let edge = &self.edge;
        let epoch = edge.cache.epoch();
        let mut extra = HeaderMap::new();
        if let Some(e) = &self.existing {
            if let Some(v) = e.headers.get(header::ETAG) {
                extra.insert(header::IF_NONE_MATCH, v.clone());
            }
            if let Some(v) = e.headers.get(header::LAST_MODIFIED) {
                extra.insert(header::IF_MODIFIED_SINCE, v.clone());
            }
        }
        add_forwarded_for(&mut extra, &self.headers, self.peer_ip, self.https);
        let req = OriginRequest {
            origin: &self.site.origin,
            method: Method::GET,
            path: &self.path,
            query: self.query.as_deref(),
            viewer_headers: &self.headers,
            viewer_host: &self.host,
            forward: Forward::CacheKeyOnly(&self.behavior.headers),
            extra,
            empty_body: true,
        }
        .build(empty());
        let req = match req {
            Ok(r) => r,
            Err(e) => return Filled::Failed(e),
        };
        let sent = Instant::now();
        let resp = edge.origin.send(req).await;
        let failed = match &resp {
            Ok(r) => r.status().is_server_error(),
            Err(_) => true,
        };
        edge.metrics.origin_fetch(sent.elapsed(), failed);
        let now = SystemTime::now();
        let stale = self
            .existing
            .as_ref()
            .filter(|e| e.stale_usable(now))
            .cloned();
        let resp = match resp {
            Err(e) => {
                return match stale {
                    Some(s) => Filled::Serve(s, ResultType::Error, true),
                    None => Filled::Failed(e),
                };
            }
            Ok(r) if r.status().is_server_error() && stale.is_some() => {
                return Filled::Serve(
                    stale.unwrap_or_else(|| unreachable!()),
                    ResultType::Error,
                    true,
                );
            }
            Ok(r) => r,
        };
        if resp.status() == StatusCode::NOT_MODIFIED
            && let Some(old) = &self.existing
        {
            return self.refresh(old, resp.headers(), epoch, now);
        }
        self.store_or_pass(resp, epoch, now, stale).await
    }

    /// A 304 confirmed the entry: merge the new validators and caching headers, restart its TTL.
    fn refresh(&self, old: &Arc<Entry>, fresh: &HeaderMap, epoch: u64, now: SystemTime) -> Filled {
        let mut headers = old.headers.clone();
        for (name, _) in fresh {
            if is_hop_by_hop_or_length(name) {
                continue;
            }
            headers.remove(name);
        }
        for (name, value) in fresh {
            if !is_hop_by_hop_or_length(name) {
                headers.append(name.clone(), value.clone());
            }
        }
        match ttl::decide(&self.behavior.ttl, old.status, &headers, now) {
            Decision::Store(ttl) => {
                let entry = Arc::new(Entry {
                    status: old.status,
                    headers,
                    body: old.body.clone(),
                    stored_at: now,
                    ttl,
                    origin_age: ttl::origin_age(fresh),
                    stale_if_error: self.behavior.stale_if_error,
                });
                let key = self.edge.cache.variant_key(&self.primary, &self.headers);
                self.edge.cache.insert(key, entry.clone(), epoch);
                Filled::Serve(entry, ResultType::RefreshHit, false)
            }
            Decision::DoNotStore => Filled::Serve(old.clone(), ResultType::RefreshHit, false),
        }
    }

    async fn store_or_pass(
        &self,
        resp: Response<Body>,
        epoch: u64,
        now: SystemTime,
        stale: Option<Arc<Entry>>,
    ) -> Filled {
        let edge = &self.edge;
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let vary = vary_names(&parts.headers);
        let too_large = content_length(&parts.headers).is_some_and(|l| l > edge.cache.max_object());
        let decision = ttl::decide(&self.behavior.ttl, parts.status, &parts.headers, now);
        let shareable = !parts.headers.contains_key(header::SET_COOKIE) && vary.is_some();
        let ttl = match decision {
            Decision::Store(ttl) if shareable && !too_large => ttl,
            _ => {
                if too_large || decision == Decision::DoNotStore {
                    edge.cache.mark_pass(&self.primary);
                }
                return Filled::Pass(Response::from_parts(parts, body));
            }
        };
        // Read the body up to the cacheable size; a body that turns out larger is streamed on.
        let limit = edge.cache.max_object() as usize;
        let mut buf = BytesMut::new();
        let mut body = body;
        loop {
            match body.frame().await {
                None => break,
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        buf.extend_from_slice(&data);
                        if buf.len() > limit {
                            edge.cache.mark_pass(&self.primary);
                            let head = futures_util::stream::once(async move {
                                Ok::<_, BoxError>(Frame::data(buf.freeze()))
                            });
                            let rest = http_body_util::BodyStream::new(body);
                            let chained = futures_util::StreamExt::chain(head, rest);
                            let body = http_body_util::StreamBody::new(chained).boxed();
                            return Filled::Pass(Response::from_parts(parts, body));
                        }
                    }
                }
                Some(Err(e)) => {
                    let e = OriginError::Unreachable(e.to_string());
                    return match stale {
                        Some(s) => Filled::Serve(s, ResultType::Error, true),
                        None => Filled::Failed(e),
                    };
                }
            }
        }
        let names = vary.unwrap_or_default();
        let key = edge.cache.learn_vary(&self.primary, names, &self.headers);
        parts.headers.remove(header::CONTENT_LENGTH);
        let entry = Arc::new(Entry {
            status: parts.status,
            origin_age: ttl::origin_age(&parts.headers),
            headers: parts.headers,
            body: buf.freeze(),
            stored_at: now,
            ttl,
            stale_if_error: self.behavior.stale_if_error,
        });
        edge.cache.insert(key, entry.clone(), epoch);
        Filled::Serve(entry, ResultType::Miss, false)
    }
}

fn is_hop_by_hop_or_length(name: &HeaderName) -> bool {
    crate::origin::is_hop_by_hop(name) || name == header::CONTENT_LENGTH
}

/// The response's Vary names: Some(empty) without Vary, None for `Vary: *` (never shareable).
fn vary_names(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for v in headers.get_all(header::VARY) {
        for n in v.to_str().unwrap_or("*").split(',') {
            let n = n.trim();
            if n == "*" {
                return None;
            }
            if let Ok(h) = HeaderName::from_bytes(n.to_ascii_lowercase().as_bytes()) {
                names.push(h);
            }
        }
    }
    Some(names)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// Builds the viewer's response from a cache entry: conditionals, range, Age and X-Cache.
fn serve_entry(
    edge: &Edge,
    ask: &Ask,
    entry: &Entry,
    result: ResultType,
    stale: bool,
) -> Response<Body> {
    let now = SystemTime::now();
    let mut headers = entry.headers.clone();
    let age = entry.age(now).as_secs();
    headers.insert(header::AGE, HeaderValue::from(age));
    let x_cache = match result {
        ResultType::RefreshHit => "RefreshHit from strata",
        ResultType::Miss => "Miss from strata",
        _ => "Hit from strata",
    };
    headers.insert("x-cache", HeaderValue::from_static(x_cache));
    if stale {
        headers.append(
            header::WARNING,
            HeaderValue::from_static("110 strata \"Response is Stale\""),
        );
        headers.append(
            header::WARNING,
            HeaderValue::from_static("111 strata \"Revalidation Failed\""),
        );
    }
    edge_headers(edge, ask, &mut headers);
    let len = entry.body.len() as u64;
    let mut status = entry.status;
    let mut body = entry.body.clone();
    if entry.status == StatusCode::OK {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        match viewer::evaluate(
            &ask.method,
            &ask.headers,
            entry.etag(),
            entry.last_modified(),
        ) {
            Precondition::NotModified => {
                for h in [
                    header::CONTENT_TYPE,
                    header::CONTENT_ENCODING,
                    header::CONTENT_LANGUAGE,
                ] {
                    headers.remove(h);
                }
                return build(StatusCode::NOT_MODIFIED, headers, empty());
            }
            Precondition::PreconditionFailed => {
                return build(StatusCode::PRECONDITION_FAILED, headers, empty());
            }
            Precondition::Proceed => {}
        }
        match viewer::range(&ask.headers, len, entry.etag(), entry.last_modified()) {
            RangeOutcome::Full => {}
            RangeOutcome::Partial {
                start,
                end_inclusive,
            } => {
                status = StatusCode::PARTIAL_CONTENT;
                let content_range = viewer::content_range(start, end_inclusive, len);
                if let Ok(v) = HeaderValue::from_str(&content_range) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
                body = body.slice(start as usize..=end_inclusive as usize);
            }
            RangeOutcome::Unsatisfiable => {
                if let Ok(v) = HeaderValue::from_str(&viewer::unsatisfied_range(len)) {
                    headers.insert(header::CONTENT_RANGE, v);
                }
                headers.remove(header::CONTENT_TYPE);
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
                return build(StatusCode::RANGE_NOT_SATISFIABLE, headers, empty());
            }
        }
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    let body = if ask.method == Method::HEAD {
        empty()
    } else {
        framed(body)
    };
    build(status, headers, body)
}

/// Headers the edge adds to everything it answers.
fn edge_headers(edge: &Edge, ask: &Ask, headers: &mut HeaderMap) {
    if let Ok(v) = HeaderValue::from_str(&format!("1.1 {} (strata)", edge.edge_id)) {
        headers.append(header::VIA, v);
    }
    if let Ok(v) = HeaderValue::from_str(&edge.edge_id) {
        headers.insert("x-amz-cf-pop", v);
    }
    if let Ok(v) = HeaderValue::from_str(&ask.id) {
        headers.insert("x-amz-cf-id", v);
    }
}

fn build(status: StatusCode, headers: HeaderMap, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    *resp.headers_mut() = headers;
    resp
}

/// Streams a request to the origin and the response back, uncached. Successful writes invalidate their path.
async fn pass_through(
    edge: &Arc<Edge>,
    site: &Arc<Site>,
    ask: &Ask,
    body: Body,
    query_override: Option<&str>,
) -> (Response<Body>, ResultType) {
    let mut extra = HeaderMap::new();
    add_forwarded_for(
        &mut extra,
        &ask.headers,
        ask.conn.peer.ip().to_canonical(),
        ask.conn.https,
    );
    let has_body = ask
        .headers
        .get(header::CONTENT_LENGTH)
        .is_some_and(|v| v.as_bytes() != b"0")
        || ask.headers.contains_key(header::TRANSFER_ENCODING);
    let cacheable_method = ask.method == Method::GET || ask.method == Method::HEAD;
    // A cacheable GET that skipped the cache keeps the behaviour's query rule; API calls keep everything.
    let query = if cacheable_method && query_override.is_some() {
        query_override
    } else {
        ask.query.as_deref()
    };
    let req = OriginRequest {
        origin: &site.origin,
        method: ask.method.clone(),
        path: &ask.path,
        query,
        viewer_headers: &ask.headers,
        viewer_host: &ask.host,
        forward: Forward::All,
        extra,
        empty_body: !has_body,
    }
    .build(body);
    let req = match req {
        Ok(r) => r,
        Err(e) => return origin_failure(edge, ask, &e),
    };
    let sent = Instant::now();
    let resp = edge.origin.send(req).await;
    edge.metrics.origin_fetch(
        sent.elapsed(),
        resp.as_ref().map_or(true, |r| r.status().is_server_error()),
    );
    match resp {
        Ok(resp) => {
            let writes = matches!(
                ask.method,
                Method::PUT | Method::POST | Method::DELETE | Method::PATCH
            );
            if writes && resp.status().is_success() {
                let n = edge.cache.invalidate(&site.id, &ask.path);
                edge.metrics.invalidated(n);
            }
            (
                decorate_passed(edge, ask, resp, ResultType::Miss),
                ResultType::Miss,
            )
        }
        Err(e) => origin_failure(edge, ask, &e),
    }
}

fn decorate_passed(
    edge: &Edge,
    ask: &Ask,
    resp: Response<Body>,
    result: ResultType,
) -> Response<Body> {
    let (mut parts, body) = resp.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    let label = if result == ResultType::Error {
        "Error from strata"
    } else {
        "Miss from strata"
    };
    parts
        .headers
        .insert("x-cache", HeaderValue::from_static(label));
    edge_headers(edge, ask, &mut parts.headers);
    Response::from_parts(parts, body)
}

/// X-Forwarded-For for the origin: the viewer's chain with the address of the edge's peer appended, as every
/// proxy does (and CloudFront: "the IP address of the viewer or the proxy that connected to CloudFront"). Not the
/// client address derived through a trusted proxy: that is already the chain's last entry, and the proxy itself
/// would go missing. X-Forwarded-Proto says how the viewer connected (replacing any the viewer sent), so the
/// gateway can answer aws:SecureTransport for requests that reached the edge over TLS.
fn add_forwarded_for(
    extra: &mut HeaderMap,
    viewer: &HeaderMap,
    peer: std::net::IpAddr,
    https: bool,
) {
    extra.insert(
        "x-forwarded-proto",
        HeaderValue::from_static(if https { "https" } else { "http" }),
    );
    let chain = match viewer.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
        Some(prev) => format!("{prev}, {peer}"),
        None => peer.to_string(),
    };
    if let Ok(v) = HeaderValue::from_str(&chain) {
        extra.insert("x-forwarded-for", v);
    }
}

fn origin_failure(edge: &Edge, ask: &Ask, e: &OriginError) -> (Response<Body>, ResultType) {
    tracing::warn!(host = %ask.host, path = %ask.path, error = %e, "origin request failed");
    let status = match e {
        OriginError::Timeout => StatusCode::GATEWAY_TIMEOUT,
        _ => StatusCode::BAD_GATEWAY,
    };
    let reason = crate::pages::reason_for(status);
    error_response(edge, ask, status, reason)
}

fn error_response(
    edge: &Edge,
    ask: &Ask,
    status: StatusCode,
    reason: &str,
) -> (Response<Body>, ResultType) {
    let page = crate::pages::error_page(status, reason, &edge.edge_id, &ask.id);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(page.len()));
    headers.insert("x-cache", HeaderValue::from_static("Error from strata"));
    edge_headers(edge, ask, &mut headers);
    let body = if ask.method == Method::HEAD {
        empty()
    } else {
        full(page)
    };
    (build(status, headers, body), ResultType::Error)
}

fn redirect_to_https(edge: &Edge, ask: &Ask) -> Response<Body> {
    let host = strip_port(&ask.host);
    let port = if edge.https_port == 443 {
        String::new()
    } else {
        format!(":{}", edge.https_port)
    };
    let mut location = format!("https://{host}{port}{}", ask.path);
    if let Some(q) = &ask.query {
        location.push('?');
        location.push_str(q);
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&location) {
        headers.insert(header::LOCATION, v);
    }
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    headers.insert("x-cache", HeaderValue::from_static("Redirect from strata"));
    edge_headers(edge, ask, &mut headers);
    build(StatusCode::MOVED_PERMANENTLY, headers, empty())
}

fn request_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut rng = rand::rng();
    (0..56)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}

/// Wraps the response body so the request is logged and counted once the body is done (or the viewer left).
fn finish(edge: Arc<Edge>, ask: Ask, resp: Response<Body>, result: ResultType) -> Response<Body> {
    let (parts, body) = resp.into_parts();
    let status = parts.status.as_u16();
    let content_type = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let range = parts
        .headers
        .get(header::CONTENT_RANGE)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_content_range);
    let first_byte = ask.started.elapsed();
    let logged = Logged {
        inner: body,
        sent: 0,
        done: Some(Pending {
            edge,
            ask,
            status,
            result,
            content_type,
            range,
            first_byte,
        }),
    };
    Response::from_parts(parts, logged.boxed())
}

fn parse_content_range(v: &str) -> Option<(u64, u64)> {
    let (range, _) = v.strip_prefix("bytes ")?.split_once('/')?;
    let (a, b) = range.split_once('-')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

struct Pending {
    edge: Arc<Edge>,
    ask: Ask,
    status: u16,
    result: ResultType,
    content_type: Option<String>,
    range: Option<(u64, u64)>,
    first_byte: Duration,
}

struct Logged {
    inner: Body,
    sent: u64,
    done: Option<Pending>,
}

impl Logged {
    fn record(&mut self) {
        let Some(p) = self.done.take() else {
            return;
        };
        p.edge.metrics.request(p.result, p.status, self.sent);
        let header = |name: HeaderName| {
            p.ask
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let bytes_received = p
            .ask
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let time_taken = p.ask.started.elapsed();
        // The access log file is the record; this line is for debugging (RUST_LOG=strata_edge=debug).
        tracing::debug!(
            target: "strata_edge::access",
            method = %p.ask.method,
            host = %p.ask.host,
            path = %p.ask.path,
            status = p.status,
            result = p.result.as_str(),
            bytes = self.sent,
            ms = time_taken.as_millis() as u64,
            "edge request"
        );
        p.edge.log.record(LogRecord {
            time: SystemTime::now(),
            client_ip: p.ask.client_ip,
            client_port: p.ask.conn.peer.port(),
            method: p.ask.method.to_string(),
            host: p.ask.host.clone(),
            uri_stem: p.ask.path.clone(),
            query: p.ask.query.clone(),
            status: p.status,
            bytes_sent: self.sent,
            bytes_received,
            referer: header(header::REFERER),
            user_agent: header(header::USER_AGENT),
            cookie: header(header::COOKIE),
            result: p.result,
            request_id: p.ask.id.clone(),
            scheme: if p.ask.conn.https { "https" } else { "http" },
            http_version: match p.ask.version {
                http::Version::HTTP_2 => "HTTP/2.0",
                http::Version::HTTP_10 => "HTTP/1.0",
                _ => "HTTP/1.1",
            },
            tls_version: p.ask.conn.tls_version,
            tls_cipher: p.ask.conn.tls_cipher.clone(),
            forwarded_for: header(HeaderName::from_static("x-forwarded-for")),
            time_taken,
            time_to_first_byte: p.first_byte,
            content_type: p.content_type,
            content_len: Some(self.sent),
            range: p.range,
        });
    }
}

impl HttpBody for Logged {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    this.sent += d.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.record(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        self.record();
    }
}
