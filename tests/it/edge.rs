//! Edge tests: the real `strata edge` process (and the edge inside `strata serve`) in front of a real HTTP origin
//! that runs inside the test (a small hyper server whose answers are programmed per path and which counts and
//! records every request it gets), or in front of the real gateway.
//!
//! No test asserts a duration: freshness is observed through origin request counts and `X-Cache`, with TTLs of
//! one or two seconds and sleeps past them where expiry must pass.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::AbortHandle;

use crate::harness::{ACCESS_KEY, EdgeProcess, SECRET_KEY, Server, client_for, pattern};

// ---------------------------------------------------------------------------------------------------------------
// The in-test origin.
// ---------------------------------------------------------------------------------------------------------------

/// What the origin answers for one path.
#[derive(Clone, Default)]
struct Route {
    /// Status; 0 means 200.
    status: u16,
    /// Response headers (ETag, Cache-Control, Expires, Vary, Set-Cookie, ...).
    headers: Vec<(String, String)>,
    body: Bytes,
    /// Wait this long before answering.
    delay: Duration,
    /// Append `|<value of this request header>` to the body (what the origin saw).
    echo_header: Option<&'static str>,
    /// Send the body in 64 KiB chunks without Content-Length.
    chunked: bool,
}

impl Route {
    fn ok(body: impl Into<Bytes>) -> Self {
        Self {
            body: body.into(),
            ..Self::default()
        }
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    fn status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    fn echo(mut self, header: &'static str) -> Self {
        self.echo_header = Some(header);
        self
    }

    fn chunked(mut self) -> Self {
        self.chunked = true;
        self
    }

    fn etag(&self) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("etag"))
            .map(|(_, v)| v.as_str())
    }
}

/// One request as the origin received it.
#[derive(Debug, Clone)]
struct Seen {
    method: Method,
    path: String,
    /// Path and query.
    uri: String,
    headers: HeaderMap,
    body_len: usize,
    body_sha256: Vec<u8>,
    /// The status the origin answered (0 while it has not yet).
    status: u16,
}

#[derive(Default)]
struct OriginState {
    routes: Mutex<HashMap<String, Route>>,
    seen: Mutex<Vec<Seen>>,
}

type OriginBody = BoxBody<Bytes, Infallible>;

/// A real HTTP/1.1 origin on 127.0.0.1:0. PUT and POST store the request body as the path's new content.
struct Origin {
    addr: SocketAddr,
    state: Arc<OriginState>,
    tasks: Arc<Mutex<Vec<AbortHandle>>>,
    accept: AbortHandle,
}

impl Origin {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind origin");
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(OriginState::default());
        let tasks: Arc<Mutex<Vec<AbortHandle>>> = Arc::default();
        let accept = {
            let state = state.clone();
            let tasks = tasks.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let state = state.clone();
                    let service = service_fn(move |req| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(answer(&state, req).await) }
                    });
                    let conn = tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                    tasks.lock().unwrap().push(conn.abort_handle());
                }
            })
            .abort_handle()
        };
        Self {
            addr,
            state,
            tasks,
            accept,
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, path: &str, route: Route) {
        self.state
            .routes
            .lock()
            .unwrap()
            .insert(path.to_owned(), route);
    }

    /// Every request for `path` (any method, any query), in order.
    fn seen(&self, path: &str) -> Vec<Seen> {
        self.state
            .seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == path)
            .cloned()
            .collect()
    }

    /// How many requests reached the origin for `path`.
    fn count(&self, path: &str) -> usize {
        self.seen(path).len()
    }

    /// Closes the listener and every open connection: the origin is down.
    fn stop(&self) {
        self.accept.abort();
        for t in self.tasks.lock().unwrap().drain(..) {
            t.abort();
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn answer(state: &OriginState, req: Request<Incoming>) -> Response<OriginBody> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_owned();
    let uri = parts
        .uri
        .path_and_query()
        .map_or(path.clone(), |pq| pq.to_string());
    let route = state.routes.lock().unwrap().get(&path).cloned();
    // Counted on arrival (a viewer may give up before the answer); the status is filled in when answered.
    let index = {
        let mut seen = state.seen.lock().unwrap();
        seen.push(Seen {
            method: parts.method.clone(),
            path: path.clone(),
            uri,
            headers: parts.headers.clone(),
            body_len: body.len(),
            body_sha256: Sha256::digest(&body).to_vec(),
            status: 0,
        });
        seen.len() - 1
    };
    let resp = respond(state, &parts, body, route).await;
    state.seen.lock().unwrap()[index].status = resp.status().as_u16();
    resp
}

async fn respond(
    state: &OriginState,
    parts: &http::request::Parts,
    body: Bytes,
    route: Option<Route>,
) -> Response<OriginBody> {
    let path = parts.uri.path();
    if parts.method == Method::PUT || parts.method == Method::POST {
        let mut routes = state.routes.lock().unwrap();
        let r = routes.entry(path.to_owned()).or_default();
        r.body = body;
        r.status = 0;
        return plain(200, Vec::new(), Bytes::from_static(b"stored"));
    }
    let Some(route) = route else {
        return plain(404, Vec::new(), Bytes::from_static(b"no such route"));
    };
    if !route.delay.is_zero() {
        tokio::time::sleep(route.delay).await;
    }
    let status = if route.status == 0 { 200 } else { route.status };
    let inm = parts
        .headers
        .get("if-none-match")
        .and_then(|v| v.to_str().ok());
    if status == 200
        && let (Some(inm), Some(etag)) = (inm, route.etag())
        && inm.split(',').any(|t| t.trim() == etag)
    {
        return plain(304, route.headers.clone(), Bytes::new());
    }
    let mut content = route.body.to_vec();
    if let Some(h) = route.echo_header {
        content.push(b'|');
        if let Some(v) = parts.headers.get(h) {
            content.extend_from_slice(v.as_bytes());
        }
    }
    let mut headers = route.headers.clone();
    let mut status = status;
    if status == 200
        && let Some(range) = parts.headers.get("range").and_then(|v| v.to_str().ok())
        && let Some((start, end)) = parse_range(range, content.len() as u64)
    {
        headers.push((
            "content-range".into(),
            format!("bytes {start}-{end}/{}", content.len()),
        ));
        content = content[start as usize..=end as usize].to_vec();
        status = 206;
    }
    if route.chunked {
        let chunks: Vec<Result<Frame<Bytes>, Infallible>> = content
            .chunks(64 * 1024)
            .map(|c| Ok(Frame::data(Bytes::copy_from_slice(c))))
            .collect();
        let body = StreamBody::new(futures_util::stream::iter(chunks)).boxed();
        let mut resp = Response::new(body);
        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
        for (n, v) in headers {
            resp.headers_mut().append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        return resp;
    }
    plain(status, headers, Bytes::from(content))
}

/// A single `bytes=a-b`, `bytes=a-` or `bytes=-n` range, inclusive.
fn parse_range(v: &str, len: u64) -> Option<(u64, u64)> {
    let (a, b) = v.strip_prefix("bytes=")?.split_once('-')?;
    if a.is_empty() {
        let n: u64 = b.parse().ok()?;
        return (n > 0 && len > 0).then(|| (len.saturating_sub(n), len - 1));
    }
    let start: u64 = a.parse().ok()?;
    let end = if b.is_empty() {
        len.checked_sub(1)?
    } else {
        b.parse::<u64>().ok()?.min(len.checked_sub(1)?)
    };
    (start <= end).then_some((start, end))
}

fn plain(status: u16, headers: Vec<(String, String)>, body: Bytes) -> Response<OriginBody> {
    let mut resp = Response::new(Full::new(body).boxed());
    *resp.status_mut() = http::StatusCode::from_u16(status).unwrap();
    for (n, v) in headers {
        resp.headers_mut().append(
            http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    resp
}

// ---------------------------------------------------------------------------------------------------------------
// Configuration and client helpers.
// ---------------------------------------------------------------------------------------------------------------

/// An edge configuration: top-level keys (`top`), then tables (`[cache]`, `[log]`, distributions).
fn config(top: &str, tables: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         edge_id = \"TEST1\"\n{top}\n{tables}\n"
    )
}

/// A distribution with an HTTP origin. `fields` are distribution keys (policy, certificate), `rest` is more
/// tables (`[distribution.geo]`, behaviours).
fn http_dist(id: &str, hostnames: &[&str], origin: &str, fields: &str, rest: &str) -> String {
    let hosts = hostnames
        .iter()
        .map(|h| format!("{h:?}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "[[distribution]]\nid = \"{id}\"\nhostnames = [{hosts}]\n{fields}\n\
         [distribution.origin]\ntype = \"http\"\nurl = \"{origin}\"\n{rest}\n"
    )
}

/// One cache behaviour; `more` adds keys (query_strings, headers, stale_if_error_secs, error_ttl).
fn behavior(pattern: &str, min: u64, default: u64, max: u64, more: &str) -> String {
    format!(
        "[[distribution.behavior]]\npath_pattern = \"{pattern}\"\nmin_ttl = {min}\ndefault_ttl = {default}\n\
         max_ttl = {max}\n{more}\n"
    )
}

/// A plain HTTP client that does not follow redirects, with a bound on every request.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

/// A response read whole.
struct Resp {
    status: u16,
    version: http::Version,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    fn x_cache(&self) -> &str {
        self.header("x-cache").unwrap_or("")
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

async fn read(resp: reqwest::Response) -> Resp {
    let status = resp.status().as_u16();
    let version = resp.version();
    let headers = resp.headers().clone();
    let body = resp.bytes().await.expect("read response body");
    Resp {
        status,
        version,
        headers,
        body,
    }
}

async fn send(rb: reqwest::RequestBuilder) -> Resp {
    read(rb.send().await.expect("request")).await
}

/// GET `base + path` with extra headers.
async fn get(c: &reqwest::Client, base: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut rb = c.get(format!("{base}{path}"));
    for (n, v) in headers {
        rb = rb.header(*n, *v);
    }
    send(rb).await
}

fn sha256(data: &[u8]) -> Vec<u8> {
    Sha256::digest(data).to_vec()
}

fn http_date(t: std::time::SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(t)
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string()
}

/// Polls `check` every 100 ms until it holds, for at most `limit`.
async fn eventually<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return;
        }
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The value of one sample line of a Prometheus text page (`name{labels} value`).
fn metric(page: &str, series: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("{series} missing from metrics:\n{page}"))
        .trim()
        .parse()
        .unwrap()
}

async fn metrics(admin: &str) -> String {
    let r = get(&client(), admin, "/metrics", &[]).await;
    assert_eq!(r.status, 200);
    r.text()
}

/// An HTTPS client trusting only `roots` (PEM), resolving every name in `names` to `addr`.
fn tls_client(roots: &[&[u8]], names: &[&str], addr: SocketAddr) -> reqwest::ClientBuilder {
    let mut b = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .tls_info(true);
    for r in roots {
        b = b.add_root_certificate(reqwest::Certificate::from_pem(r).expect("PEM certificate"));
    }
    for n in names {
        b = b.resolve(n, addr);
    }
    b
}

/// The database named by STRATA_TEST_MMDB (see tests/clients/fetch-mmdb.sh); None (skip) when unset, a panic
/// when unset under CI.
fn test_mmdb(test: &str) -> Option<String> {
    match std::env::var("STRATA_TEST_MMDB") {
        Ok(p) if !p.is_empty() => Some(p),
        _ => {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{test}: CI is set but STRATA_TEST_MMDB is not; \
                     export STRATA_TEST_MMDB=$(bash tests/clients/fetch-mmdb.sh)"
                );
            }
            println!(
                "{test}: skipped, STRATA_TEST_MMDB is not set \
                 (export STRATA_TEST_MMDB=$(bash tests/clients/fetch-mmdb.sh))"
            );
            None
        }
    }
}

/// A tiny HTTP/1.1 client on one kept-alive TCP connection (bodies framed by Content-Length).
struct RawConn {
    stream: tokio::net::TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    async fn open(addr: SocketAddr) -> Self {
        let stream = tokio::time::timeout(
            Duration::from_secs(10),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        .expect("connect in time")
        .expect("connect");
        Self {
            stream,
            buf: Vec::new(),
        }
    }

    /// Sends a GET and reads the response: (status, lowercase headers, body).
    async fn get(&mut self, host: &str, path: &str) -> (u16, HashMap<String, String>, Vec<u8>) {
        let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n");
        self.stream
            .write_all(req.as_bytes())
            .await
            .expect("write request");
        tokio::time::timeout(Duration::from_secs(30), self.read_response())
            .await
            .expect("response in time")
    }

    async fn read_response(&mut self) -> (u16, HashMap<String, String>, Vec<u8>) {
        let head_end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            self.fill().await;
        };
        let head = String::from_utf8_lossy(&self.buf[..head_end]).into_owned();
        self.buf.drain(..head_end + 4);
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let headers: HashMap<String, String> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let len: usize = headers
            .get("content-length")
            .expect("content-length framed response")
            .parse()
            .unwrap();
        while self.buf.len() < len {
            self.fill().await;
        }
        let body = self.buf.drain(..len).collect();
        (status, headers, body)
    }

    async fn fill(&mut self) {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "the edge closed the kept-alive connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

const HIT: &str = "Hit from strata";
const MISS: &str = "Miss from strata";
const REFRESH_HIT: &str = "RefreshHit from strata";

// ---------------------------------------------------------------------------------------------------------------
// Tests against `strata edge` and the in-test origin.
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ttl_policy_follows_cloudfront_rules() {
    let origin = Origin::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let behaviors = [
        behavior("/min/*", 4, 4, 100, ""),
        behavior("/max/*", 0, 2, 2, ""),
        behavior("/zero/*", 0, 0, 100, ""),
        behavior("/default/*", 0, 2, 100, ""),
        behavior("*", 0, 60, 3600, ""),
    ]
    .concat();
    let edge = EdgeProcess::start(
        &config("", &http_dist("d", &["*"], &origin.url(), "", &behaviors)),
        tmp.path(),
    );
    let c = client();
    let future = http_date(std::time::SystemTime::now() + Duration::from_secs(120));
    let routes: &[(&str, &[(&str, &str)])] = &[
        // min_ttl 4 raises max-age=0: cached.
        ("/min/max-age-0", &[("cache-control", "max-age=0")]),
        // min_ttl > 0: no-store / private / no-cache are cached for min_ttl.
        ("/min/no-store", &[("cache-control", "no-store")]),
        ("/min/private", &[("cache-control", "private")]),
        // max_ttl 2 lowers max-age=3600.
        ("/max/max-age-3600", &[("cache-control", "max-age=3600")]),
        // With min 0 / default 0: what the origin says decides.
        ("/zero/max-age-60", &[("cache-control", "max-age=60")]),
        ("/zero/max-age-0", &[("cache-control", "max-age=0")]),
        (
            "/zero/s-maxage-60",
            &[("cache-control", "max-age=0, s-maxage=60")],
        ),
        (
            "/zero/s-maxage-0",
            &[("cache-control", "max-age=60, s-maxage=0")],
        ),
        ("/zero/expires-future", &[("expires", future.as_str())]),
        (
            "/zero/expires-past",
            &[("expires", "Thu, 01 Jan 1970 00:00:00 GMT")],
        ),
        (
            "/zero/max-age-beats-expires",
            &[("cache-control", "max-age=0"), ("expires", future.as_str())],
        ),
        ("/zero/no-store", &[("cache-control", "no-store")]),
        ("/zero/private", &[("cache-control", "private, max-age=60")]),
        ("/zero/no-cache", &[("cache-control", "no-cache")]),
        // No headers: the default TTL (2 s here, 0 under /zero/).
        ("/default/none", &[]),
        ("/zero/none", &[]),
    ];
    for (path, headers) in routes {
        let mut r = Route::ok(format!("body of {path}"));
        for (n, v) in *headers {
            r = r.header(n, v);
        }
        origin.set(path, r);
    }
    // Two requests each, back to back.
    let mut second = HashMap::new();
    for (path, _) in routes {
        let a = get(&c, &edge.http, path, &[]).await;
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.x_cache(), MISS, "{path}: first request");
        assert_eq!(a.text(), format!("body of {path}"));
        let b = get(&c, &edge.http, path, &[]).await;
        assert_eq!(b.status, 200, "{path}");
        assert_eq!(b.text(), format!("body of {path}"), "{path}");
        second.insert(*path, (b.x_cache().to_owned(), origin.count(path)));
    }
    let cached = [
        "/min/max-age-0",
        "/min/no-store",
        "/min/private",
        "/max/max-age-3600",
        "/zero/max-age-60",
        "/zero/s-maxage-60",
        "/zero/expires-future",
        "/default/none",
    ];
    let not_cached = [
        "/zero/max-age-0",
        "/zero/s-maxage-0",
        "/zero/expires-past",
        "/zero/max-age-beats-expires",
        "/zero/no-store",
        "/zero/private",
        "/zero/no-cache",
        "/zero/none",
    ];
    for p in cached {
        assert_eq!(second[p], (HIT.to_owned(), 1), "{p} should be cached");
    }
    for p in not_cached {
        assert_eq!(second[p], (MISS.to_owned(), 2), "{p} should not be cached");
    }
    // Past 2 s: max_ttl 2 and default_ttl 2 have expired, min_ttl 4 and max-age=60 have not.
    tokio::time::sleep(Duration::from_millis(2300)).await;
    for (p, want_hit) in [
        ("/max/max-age-3600", false),
        ("/default/none", false),
        ("/min/max-age-0", true),
        ("/min/private", true),
        ("/zero/max-age-60", true),
        ("/zero/s-maxage-60", true),
        ("/zero/expires-future", true),
    ] {
        let r = get(&c, &edge.http, p, &[]).await;
        assert_eq!(r.status, 200);
        if want_hit {
            assert_eq!((r.x_cache(), origin.count(p)), (HIT, 1), "{p} still fresh");
        } else {
            assert_eq!((r.x_cache(), origin.count(p)), (MISS, 2), "{p} expired");
        }
    }
    // Past 4 s: min_ttl 4 has expired too.
    tokio::time::sleep(Duration::from_millis(2000)).await;
    for p in ["/min/max-age-0", "/min/no-store"] {
        let r = get(&c, &edge.http, p, &[]).await;
        assert_eq!((r.x_cache(), origin.count(p)), (MISS, 2), "{p} expired");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn age_header_grows_and_includes_the_origin_age() {
    let origin = Origin::start().await;
    origin.set(
        "/aged",
        Route::ok("aged")
            .header("cache-control", "max-age=600")
            .header("age", "100"),
    );
    origin.set("/fresh", Route::ok("fresh"));
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config("", &http_dist("d", &["*"], &origin.url(), "", "")),
        tmp.path(),
    );
    let c = client();
    let age = |r: &Resp| -> u64 { r.header("age").expect("Age header").parse().unwrap() };
    let a1 = get(&c, &edge.http, "/aged", &[]).await;
    let f1 = get(&c, &edge.http, "/fresh", &[]).await;
    assert!(age(&a1) >= 100, "origin Age counts: {}", age(&a1));
    assert!(age(&a1) < 110);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let a2 = get(&c, &edge.http, "/aged", &[]).await;
    let f2 = get(&c, &edge.http, "/fresh", &[]).await;
    assert_eq!(a2.x_cache(), HIT);
    assert_eq!(f2.x_cache(), HIT);
    assert!(
        age(&a2) >= age(&a1) + 2,
        "Age grows: {} then {}",
        age(&a1),
        age(&a2)
    );
    assert!(age(&f2) >= age(&f1) + 2);
    for r in [&a1, &a2] {
        assert!(r.header("via").unwrap().contains("TEST1"));
        assert_eq!(r.header("x-amz-cf-pop"), Some("TEST1"));
        assert!(r.header("x-amz-cf-id").is_some_and(|v| !v.is_empty()));
    }
    assert_eq!(origin.count("/aged"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_make_one_origin_request() {
    let origin = Origin::start().await;
    let data = Bytes::from(pattern(256 * 1024, 7));
    origin.set(
        "/hot",
        Route::ok(data.clone()).delay(Duration::from_millis(500)),
    );
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config("", &http_dist("d", &["*"], &origin.url(), "", "")),
        tmp.path(),
    );
    let c = client();
    let url = format!("{}/hot", edge.http);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..100 {
        let c = c.clone();
        let url = url.clone();
        tasks.spawn(async move { read(c.get(&url).send().await.expect("GET")).await });
    }
    let mut results = HashMap::<String, usize>::new();
    let all = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(r) = tasks.join_next().await {
            let r = r.unwrap();
            assert_eq!(r.status, 200);
            assert!(r.body == data, "every viewer gets the whole object");
            *results.entry(r.x_cache().to_owned()).or_default() += 1;
        }
    })
    .await;
    assert!(all.is_ok(), "100 GETs finished in time");
    assert_eq!(origin.count("/hot"), 1, "one origin fetch: {results:?}");
    assert_eq!(results.get(MISS), Some(&1), "{results:?}");
    assert_eq!(results.get(HIT), Some(&99), "{results:?}");
    let m = metrics(&edge.admin).await;
    assert!(metric(&m, "strata_edge_coalesced_total") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn expired_entries_revalidate_with_conditional_requests() {
    let origin = Origin::start().await;
    let lm = "Wed, 21 Oct 2015 07:28:00 GMT";
    origin.set(
        "/doc",
        Route::ok("version one")
            .header("etag", "\"v1\"")
            .header("last-modified", lm)
            .header("cache-control", "max-age=2"),
    );
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config("", &http_dist("d", &["*"], &origin.url(), "", "")),
        tmp.path(),
    );
    let c = client();
    let r = get(&c, &edge.http, "/doc", &[]).await;
    assert_eq!((r.status, r.x_cache()), (200, MISS));
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let r = get(&c, &edge.http, "/doc", &[]).await;
    assert_eq!((r.status, r.x_cache()), (200, REFRESH_HIT));
    assert_eq!(r.text(), "version one");
    assert_eq!(r.header("etag"), Some("\"v1\""));
    let seen = origin.seen("/doc");
    assert_eq!(seen.len(), 2);
    let reval = &seen[1];
    assert_eq!(
        reval.headers.get("if-none-match").unwrap(),
        "\"v1\"",
        "the edge revalidates with the ETag"
    );
    assert_eq!(reval.headers.get("if-modified-since").unwrap(), lm);
    assert_eq!(reval.status, 304, "the origin sent no body");
    // The 304 restarted the TTL.
    let r = get(&c, &edge.http, "/doc", &[]).await;
    assert_eq!((r.x_cache(), origin.count("/doc")), (HIT, 2));
    // A changed object: the revalidation gets a 200 and the new body.
    origin.set(
        "/doc",
        Route::ok("version two")
            .header("etag", "\"v2\"")
            .header("cache-control", "max-age=60"),
    );
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let r = get(&c, &edge.http, "/doc", &[]).await;
    assert_eq!((r.status, r.x_cache()), (200, MISS));
    assert_eq!(r.text(), "version two");
    assert_eq!(origin.seen("/doc")[2].status, 200);
    let r = get(&c, &edge.http, "/doc", &[]).await;
    assert_eq!((r.x_cache(), r.text().as_str()), (HIT, "version two"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn stale_if_error_serves_the_stale_copy_else_502() {
    let origin = Origin::start().await;
    let behaviors = [
        behavior("/stale/*", 0, 1, 100, "stale_if_error_secs = 60"),
        behavior(
            "/nostale/*",
            0,
            1,
            100,
            "stale_if_error_secs = 0\nerror_ttl = 0",
        ),
        behavior("*", 0, 60, 3600, ""),
    ]
    .concat();
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config("", &http_dist("d", &["*"], &origin.url(), "", &behaviors)),
        tmp.path(),
    );
    let c = client();
    origin.set("/stale/a", Route::ok("stale copy"));
    origin.set("/nostale/a", Route::ok("no stale copy"));
    for p in ["/stale/a", "/nostale/a"] {
        assert_eq!(get(&c, &edge.http, p, &[]).await.x_cache(), MISS);
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    // The origin fails with 500.
    origin.set("/stale/a", Route::ok("boom").status(500));
    origin.set("/nostale/a", Route::ok("boom").status(500));
    let warned = |r: &Resp| {
        let w: Vec<&str> = r
            .headers
            .get_all("warning")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        w.iter().any(|v| v.starts_with("110 ")) && w.iter().any(|v| v.starts_with("111 "))
    };
    let r = get(&c, &edge.http, "/stale/a", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "stale copy"));
    assert!(warned(&r), "Warning 110 and 111: {:?}", r.headers);
    assert_eq!(origin.count("/stale/a"), 2);
    let r = get(&c, &edge.http, "/nostale/a", &[]).await;
    assert_eq!(
        (r.status, r.text().as_str()),
        (500, "boom"),
        "no stale window: the origin's 500 passes through"
    );
    assert!(!warned(&r));
    // The origin goes away.
    origin.stop();
    let r = get(&c, &edge.http, "/stale/a", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "stale copy"));
    assert!(warned(&r));
    for p in ["/nostale/a", "/never-cached"] {
        let r = get(&c, &edge.http, p, &[]).await;
        assert_eq!(r.status, 502, "{p}");
        assert_eq!(r.x_cache(), "Error from strata");
        assert!(r.header("content-type").unwrap().starts_with("text/html"));
        assert!(r.text().contains("The request could not be satisfied"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn origin_timeout_gives_504_or_the_stale_copy() {
    let origin = Origin::start().await;
    let behaviors = [
        behavior("/sto/*", 0, 1, 100, "stale_if_error_secs = 60"),
        behavior("*", 0, 60, 3600, ""),
    ]
    .concat();
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config(
            "origin_timeout_secs = 1",
            &http_dist("d", &["*"], &origin.url(), "", &behaviors),
        ),
        tmp.path(),
    );
    let c = client();
    origin.set("/slow", Route::ok("late").delay(Duration::from_secs(3)));
    let r = get(&c, &edge.http, "/slow", &[]).await;
    assert_eq!(r.status, 504);
    assert_eq!(r.x_cache(), "Error from strata");
    assert!(r.text().contains("The request could not be satisfied"));
    assert_eq!(origin.count("/slow"), 1);
    // A stale copy stands in for an origin that times out.
    origin.set("/sto/a", Route::ok("kept"));
    assert_eq!(get(&c, &edge.http, "/sto/a", &[]).await.x_cache(), MISS);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    origin.set("/sto/a", Route::ok("late").delay(Duration::from_secs(3)));
    let r = get(&c, &edge.http, "/sto/a", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "kept"));
    assert!(r.header("warning").is_some_and(|w| w.starts_with("110")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ranges_and_conditionals_are_answered_from_the_cache() {
    let origin = Origin::start().await;
    // 64 MiB: exactly the default max_object_bytes, so cached whole.
    let len = 64 * 1024 * 1024;
    let data = Bytes::from(pattern(len, 64));
    let lm = "Wed, 21 Oct 2015 07:28:00 GMT";
    origin.set(
        "/video.bin",
        Route::ok(data.clone())
            .header("etag", "\"big\"")
            .header("last-modified", lm),
    );
    origin.set("/small.txt", Route::ok("0123456789abcdefghij"));
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config("", &http_dist("d", &["*"], &origin.url(), "", "")),
        tmp.path(),
    );
    let c = client();
    let full = get(&c, &edge.http, "/video.bin", &[]).await;
    assert_eq!((full.status, full.x_cache()), (200, MISS));
    assert_eq!(sha256(&full.body), sha256(&data));
    let len = len as u64;
    for (range, start, end) in [
        ("bytes=0-9", 0, 9),
        ("bytes=-5", len - 5, len - 1),
        ("bytes=33554432-33558527", 33_554_432, 33_558_527),
        ("bytes=10-", 10, len - 1),
    ] {
        let r = get(&c, &edge.http, "/video.bin", &[("range", range)]).await;
        assert_eq!(r.status, 206, "{range}");
        assert_eq!(r.x_cache(), HIT, "{range}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes {start}-{end}/{len}"),
            "{range}"
        );
        assert!(
            r.body == data.slice(start as usize..=end as usize),
            "{range}: body"
        );
    }
    let r = get(
        &c,
        &edge.http,
        "/video.bin",
        &[("range", "bytes=67108864-")],
    )
    .await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").unwrap(), format!("bytes */{len}"));
    // Viewer conditionals, answered by the edge.
    let r = get(
        &c,
        &edge.http,
        "/video.bin",
        &[("if-none-match", "\"big\"")],
    )
    .await;
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    let r = get(&c, &edge.http, "/video.bin", &[("if-modified-since", lm)]).await;
    assert_eq!(r.status, 304);
    let later = "Thu, 22 Oct 2015 07:28:00 GMT";
    let r = get(
        &c,
        &edge.http,
        "/video.bin",
        &[("if-modified-since", later)],
    )
    .await;
    assert_eq!(r.status, 304);
    let earlier = "Tue, 20 Oct 2015 07:28:00 GMT";
    let r = get(
        &c,
        &edge.http,
        "/video.bin",
        &[("if-modified-since", earlier), ("range", "bytes=0-3")],
    )
    .await;
    assert_eq!(r.status, 206, "modified since: the range is served");
    let r = get(
        &c,
        &edge.http,
        "/video.bin",
        &[("if-none-match", "\"other\""), ("range", "bytes=0-3")],
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(origin.count("/video.bin"), 1, "one origin fetch");
    // A first request that is a range: the edge fetches the whole object, then serves the range.
    let r = get(&c, &edge.http, "/small.txt", &[("range", "bytes=5-9")]).await;
    assert_eq!((r.status, r.text().as_str()), (206, "56789"));
    assert_eq!(r.header("content-range"), Some("bytes 5-9/20"));
    let seen = origin.seen("/small.txt");
    assert_eq!(seen.len(), 1);
    assert!(seen[0].headers.get("range").is_none());
    let r = get(&c, &edge.http, "/small.txt", &[]).await;
    assert_eq!((r.x_cache(), r.text().len()), (HIT, 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cache_key_has_the_named_query_strings_and_headers_and_respects_vary() {
    let origin = Origin::start().await;
    let behaviors = [
        behavior("/qs/*", 0, 60, 3600, "query_strings = [\"v\"]"),
        behavior("/hdr/*", 0, 60, 3600, "headers = [\"X-Variant\"]"),
        behavior("*", 0, 60, 3600, ""),
    ]
    .concat();
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config("", &http_dist("d", &["*"], &origin.url(), "", &behaviors)),
        tmp.path(),
    );
    let c = client();
    // Query strings the behaviour does not name are dropped: one object.
    origin.set("/plain", Route::ok("plain"));
    let a = get(&c, &edge.http, "/plain?a=1", &[]).await;
    let b = get(&c, &edge.http, "/plain?a=2", &[]).await;
    assert_eq!((a.x_cache(), b.x_cache()), (MISS, HIT));
    assert_eq!(origin.count("/plain"), 1);
    assert_eq!(
        origin.seen("/plain")[0].uri,
        "/plain",
        "query not forwarded"
    );
    // A named query string separates objects; others are ignored.
    origin.set("/qs/a", Route::ok("qs"));
    let v1 = get(&c, &edge.http, "/qs/a?v=1", &[]).await;
    let v2 = get(&c, &edge.http, "/qs/a?v=2", &[]).await;
    let v1x = get(&c, &edge.http, "/qs/a?x=9&v=1", &[]).await;
    assert_eq!(
        (v1.x_cache(), v2.x_cache(), v1x.x_cache()),
        (MISS, MISS, HIT)
    );
    let uris: Vec<String> = origin.seen("/qs/a").into_iter().map(|s| s.uri).collect();
    assert_eq!(uris, ["/qs/a?v=1", "/qs/a?v=2"]);
    // A named header separates variants and is forwarded; other headers are not.
    origin.set("/hdr/a", Route::ok("hdr").echo("x-variant"));
    let red = get(
        &c,
        &edge.http,
        "/hdr/a",
        &[("x-variant", "red"), ("x-other", "1")],
    )
    .await;
    let blue = get(&c, &edge.http, "/hdr/a", &[("x-variant", "blue")]).await;
    let red2 = get(&c, &edge.http, "/hdr/a", &[("x-variant", "red")]).await;
    assert_eq!(
        (
            red.text().as_str(),
            blue.text().as_str(),
            red2.text().as_str()
        ),
        ("hdr|red", "hdr|blue", "hdr|red")
    );
    assert_eq!(
        (red.x_cache(), blue.x_cache(), red2.x_cache()),
        (MISS, MISS, HIT)
    );
    assert_eq!(origin.count("/hdr/a"), 2);
    assert!(origin.seen("/hdr/a")[0].headers.get("x-other").is_none());
    // Vary on the origin's response separates variants by that request header.
    origin.set(
        "/vary/a",
        Route::ok("vary").header("vary", "Accept-Language"),
    );
    let en = get(&c, &edge.http, "/vary/a", &[("accept-language", "en")]).await;
    let de = get(&c, &edge.http, "/vary/a", &[("accept-language", "de")]).await;
    let en2 = get(&c, &edge.http, "/vary/a", &[("accept-language", "en")]).await;
    let de2 = get(&c, &edge.http, "/vary/a", &[("accept-language", "de")]).await;
    assert_eq!(
        [en.x_cache(), de.x_cache(), en2.x_cache(), de2.x_cache()],
        [MISS, MISS, HIT, HIT]
    );
    assert_eq!(origin.count("/vary/a"), 2);
    // Vary: * and Set-Cookie are never shared.
    origin.set("/vary/star", Route::ok("star").header("vary", "*"));
    origin.set(
        "/cookie",
        Route::ok("cookie").header("set-cookie", "session=secret"),
    );
    for p in ["/vary/star", "/cookie"] {
        get(&c, &edge.http, p, &[]).await;
        let r = get(&c, &edge.http, p, &[]).await;
        assert_eq!((r.x_cache(), origin.count(p)), (MISS, 2), "{p}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn behaviours_are_chosen_by_path_pattern() {
    let origin = Origin::start().await;
    let behaviors = [
        behavior("/static/*", 0, 3600, 86400, ""),
        behavior("*.jpg", 0, 3600, 86400, ""),
        behavior("*", 0, 1, 3600, ""),
    ]
    .concat();
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config("", &http_dist("d", &["*"], &origin.url(), "", &behaviors)),
        tmp.path(),
    );
    let c = client();
    let paths = [
        "/static/app.css",
        "/static/deep/er/x.js",
        "/img/a.jpg",
        "/page.html",
    ];
    for p in paths {
        origin.set(p, Route::ok(p));
        assert_eq!(get(&c, &edge.http, p, &[]).await.x_cache(), MISS);
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    for p in paths {
        let r = get(&c, &edge.http, p, &[]).await;
        if p == "/page.html" {
            assert_eq!(
                (r.x_cache(), origin.count(p)),
                (MISS, 2),
                "{p}: default 1 s"
            );
        } else {
            assert_eq!((r.x_cache(), origin.count(p)), (HIT, 1), "{p}: long TTL");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn objects_over_the_size_limit_stream_through_uncached() {
    let origin = Origin::start().await;
    let data = Bytes::from(pattern(3 * 1024 * 1024 + 17, 9));
    origin.set("/big.bin", Route::ok(data.clone()));
    origin.set("/big-chunked.bin", Route::ok(data.clone()).chunked());
    origin.set("/small.bin", Route::ok(data.slice(..1000)).chunked());
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config(
            "",
            &format!(
                "[cache]\nmemory_bytes = 16777216\nmax_object_bytes = 1048576\n{}",
                http_dist("d", &["*"], &origin.url(), "", "")
            ),
        ),
        tmp.path(),
    );
    let c = client();
    for p in ["/big.bin", "/big-chunked.bin"] {
        for i in 1..=3 {
            let r = get(&c, &edge.http, p, &[]).await;
            assert_eq!(r.status, 200, "{p}");
            assert_eq!(r.x_cache(), MISS, "{p} #{i}");
            assert_eq!(r.body.len(), data.len(), "{p} #{i}");
            assert_eq!(sha256(&r.body), sha256(&data), "{p} #{i}: intact");
            assert_eq!(origin.count(p), i, "{p}: not cached");
        }
        // A range on an uncached object goes to the origin.
        let r = get(&c, &edge.http, p, &[("range", "bytes=1000000-1999999")]).await;
        assert_eq!(r.status, 206, "{p}");
        assert_eq!(
            r.header("content-range").unwrap(),
            format!("bytes 1000000-1999999/{}", data.len())
        );
        assert!(
            r.body == data.slice(1_000_000..2_000_000),
            "{p}: range body"
        );
        let last = origin.seen(p).pop().unwrap();
        assert_eq!(
            last.headers.get("range").unwrap(),
            "bytes=1000000-1999999",
            "{p}: range forwarded"
        );
    }
    // A chunked body under the limit is cached.
    get(&c, &edge.http, "/small.bin", &[]).await;
    let r = get(&c, &edge.http, "/small.bin", &[]).await;
    assert_eq!((r.x_cache(), r.body.len()), (HIT, 1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn uploads_reach_the_origin_intact_and_invalidate_the_cached_copy() {
    let origin = Origin::start().await;
    origin.set("/up/file", Route::ok("old content"));
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config("", &http_dist("d", &["*"], &origin.url(), "", "")),
        tmp.path(),
    );
    let c = client();
    assert_eq!(get(&c, &edge.http, "/up/file", &[]).await.x_cache(), MISS);
    let r = get(&c, &edge.http, "/up/file", &[]).await;
    assert_eq!((r.x_cache(), r.text().as_str()), (HIT, "old content"));
    let upload = pattern(4 * 1024 * 1024 + 3, 11);
    for i in 1..=2 {
        let r = send(c.put(format!("{}/up/file", edge.http)).body(upload.clone())).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.x_cache(), MISS, "writes are never cached");
        let puts: Vec<Seen> = origin
            .seen("/up/file")
            .into_iter()
            .filter(|s| s.method == Method::PUT)
            .collect();
        assert_eq!(puts.len(), i, "every PUT reaches the origin");
        let last = puts.last().unwrap();
        assert_eq!(last.body_len, upload.len());
        assert_eq!(last.body_sha256, sha256(&upload), "body intact");
    }
    // The write invalidated the cached GET.
    let r = get(&c, &edge.http, "/up/file", &[]).await;
    assert_eq!(r.x_cache(), MISS);
    assert_eq!(sha256(&r.body), sha256(&upload));
    let r = get(&c, &edge.http, "/up/file", &[]).await;
    assert_eq!(r.x_cache(), HIT);
    // POST too.
    let r = send(c.post(format!("{}/up/form", edge.http)).body("a=1&b=2")).await;
    assert_eq!(r.status, 200);
    let seen = origin.seen("/up/form");
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, Method::POST);
    assert_eq!(seen[0].body_sha256, sha256(b"a=1&b=2"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalidation_api_removes_exact_and_wildcard_paths() {
    let origin = Origin::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config("", &http_dist("site", &["*"], &origin.url(), "", "")),
        tmp.path(),
    );
    assert!(!edge.token.is_empty());
    let c = client();
    let paths = ["/page.html", "/img/a.png", "/img/b/c.png", "/image.png"];
    for p in paths {
        origin.set(p, Route::ok(p));
        get(&c, &edge.http, p, &[]).await;
        assert_eq!(get(&c, &edge.http, p, &[]).await.x_cache(), HIT);
    }
    let post = |token: Option<&str>, body: serde_json::Value| {
        let mut rb = c
            .post(format!("{}/invalidations", edge.admin))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(t) = token {
            rb = rb.header("authorization", format!("Bearer {t}"));
        }
        send(rb)
    };
    let body = serde_json::json!({"distribution": "site", "paths": ["/page.html"]});
    assert_eq!(post(None, body.clone()).await.status, 401);
    assert_eq!(post(Some("wrong-token"), body.clone()).await.status, 401);
    let r = get(&c, &edge.admin, "/invalidations/Ixyz", &[]).await;
    assert_eq!(r.status, 401);
    // Still cached after the refused calls.
    assert_eq!(get(&c, &edge.http, "/page.html", &[]).await.x_cache(), HIT);

    let r = post(Some(&edge.token), body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let created: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(created["status"], "Completed");
    assert_eq!(created["invalidated_entries"], 1);
    let id = created["id"].as_str().unwrap().to_owned();
    let r = send(
        c.get(format!("{}/invalidations/{id}", edge.admin))
            .bearer_auth(&edge.token),
    )
    .await;
    assert_eq!(r.status, 200);
    let got: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(got["id"], id.as_str());
    assert_eq!(got["status"], "Completed");
    assert_eq!(got["paths"], serde_json::json!(["/page.html"]));
    assert_eq!(get(&c, &edge.http, "/page.html", &[]).await.x_cache(), MISS);
    assert_eq!(get(&c, &edge.http, "/img/a.png", &[]).await.x_cache(), HIT);

    let r = post(
        Some(&edge.token),
        serde_json::json!({"distribution": "site", "paths": ["/img/*"]}),
    )
    .await;
    assert_eq!(r.status, 201);
    let created: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(created["invalidated_entries"], 2);
    for (p, want) in [
        ("/img/a.png", MISS),
        ("/img/b/c.png", MISS),
        ("/image.png", HIT),
        ("/page.html", HIT),
    ] {
        assert_eq!(get(&c, &edge.http, p, &[]).await.x_cache(), want, "{p}");
    }
    assert_eq!(origin.count("/img/a.png"), 2);
    // Bad requests.
    let r = post(
        Some(&edge.token),
        serde_json::json!({"distribution": "nope", "paths": ["/x"]}),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = post(
        Some(&edge.token),
        serde_json::json!({"distribution": "site", "paths": ["/a*b"]}),
    )
    .await;
    assert_eq!(r.status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn geo_restriction_by_country_with_a_trusted_proxy() {
    let Some(mmdb) = test_mmdb("geo_restriction_by_country_with_a_trusted_proxy") else {
        return;
    };
    let origin = Origin::start().await;
    origin.set("/", Route::ok("welcome"));
    let geo = |mode: &str, countries: &str, unknown: bool| {
        format!(
            "[distribution.geo]\nmode = \"{mode}\"\ncountries = [{countries}]\nallow_unknown = {unknown}\n"
        )
    };
    let dists = [
        http_dist(
            "block",
            &["block.test"],
            &origin.url(),
            "",
            &geo("block", "\"DE\"", true),
        ),
        http_dist(
            "allow",
            &["allow.test"],
            &origin.url(),
            "",
            &geo("allow", "\"JP\"", false),
        ),
    ]
    .concat();
    let top = format!("geoip_db = {mmdb:?}\ntrusted_proxies = [\"127.0.0.1/32\"]");
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(&config(&top, &dists), &tmp.path().join("trusted"));
    let c = client();
    let from = |host: &'static str, xff: Option<&'static str>| {
        let mut h = vec![("host", host)];
        if let Some(x) = xff {
            h.push(("x-forwarded-for", x));
        }
        h
    };
    let refused = |r: &Resp| {
        r.status == 403
            && r.header("content-type")
                .is_some_and(|t| t.starts_with("text/html"))
            && r.text().contains("could not be satisfied")
            && r.x_cache() == "Error from strata"
    };
    // Block mode: Germany refused, the US and unknown (loopback) served.
    let r = get(&c, &edge.http, "/", &from("block.test", Some("80.128.0.1"))).await;
    assert!(refused(&r), "DE blocked: {} {}", r.status, r.text());
    let r = get(&c, &edge.http, "/", &from("block.test", Some("8.8.8.8"))).await;
    assert_eq!((r.status, r.text().as_str()), (200, "welcome"));
    let r = get(&c, &edge.http, "/", &from("block.test", None)).await;
    assert_eq!(r.status, 200, "unknown country allowed");
    // The right-most untrusted address counts.
    let r = get(
        &c,
        &edge.http,
        "/",
        &from("block.test", Some("8.8.8.8, 80.128.0.1")),
    )
    .await;
    assert!(refused(&r));
    // Allow mode: only Japan; unknown refused.
    let r = get(&c, &edge.http, "/", &from("allow.test", Some("133.11.0.1"))).await;
    assert_eq!(r.status, 200);
    let r = get(&c, &edge.http, "/", &from("allow.test", Some("8.8.8.8"))).await;
    assert!(refused(&r));
    let r = get(&c, &edge.http, "/", &from("allow.test", None)).await;
    assert!(refused(&r), "unknown country refused");
    // Over HTTPS too.
    let pem = std::fs::read(tmp.path().join("trusted/self-signed.pem")).unwrap();
    let tc = tls_client(&[&pem], &["block.test"], edge.https_addr())
        .build()
        .unwrap();
    let port = edge.https_addr().port();
    let r = send(
        tc.get(format!("https://block.test:{port}/"))
            .header("x-forwarded-for", "80.128.0.1"),
    )
    .await;
    assert!(refused(&r));
    let blocked_count = origin.count("/");

    // No trusted proxy: X-Forwarded-For is ignored, the loopback peer's country is unknown.
    let dists = [
        http_dist(
            "lenient",
            &["lenient.test"],
            &origin.url(),
            "",
            &geo("block", "\"DE\"", true),
        ),
        http_dist(
            "strict",
            &["strict.test"],
            &origin.url(),
            "",
            &geo("block", "\"DE\"", false),
        ),
    ]
    .concat();
    let top = format!("geoip_db = {mmdb:?}\ntrusted_proxies = []");
    let untrusted = EdgeProcess::start(&config(&top, &dists), &tmp.path().join("untrusted"));
    let r = get(
        &c,
        &untrusted.http,
        "/",
        &from("lenient.test", Some("80.128.0.1")),
    )
    .await;
    assert_eq!(
        r.status, 200,
        "a spoofed header from an untrusted peer is ignored"
    );
    let r = get(
        &c,
        &untrusted.http,
        "/",
        &from("strict.test", Some("8.8.8.8")),
    )
    .await;
    assert!(
        refused(&r),
        "unknown country refused, whatever the header says"
    );
    assert!(origin.count("/") > blocked_count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn origin_sees_the_forwarded_for_chain_with_the_edge_peer() {
    let origin = Origin::start().await;
    origin.set("/a", Route::ok("a"));
    origin.set("/b", Route::ok("b"));
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config(
            "trusted_proxies = [\"127.0.0.1/32\"]",
            &http_dist("d", &["*"], &origin.url(), "", ""),
        ),
        tmp.path(),
    );
    let c = client();
    // Through a trusted proxy at 127.0.0.1: the chain gains the proxy, not the viewer a second time.
    get(&c, &edge.http, "/a", &[("x-forwarded-for", "203.0.113.9")]).await;
    let r = send(
        c.put(format!("{}/b", edge.http))
            .header("x-forwarded-for", "198.51.100.7, 203.0.113.9")
            .body("b2"),
    )
    .await;
    assert_eq!(r.status, 200);
    get(&c, &edge.http, "/b", &[]).await;
    let xff = |path: &str, i: usize| {
        origin.seen(path)[i]
            .headers
            .get("x-forwarded-for")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    assert_eq!(
        xff("/a", 0).as_deref(),
        Some("203.0.113.9, 127.0.0.1"),
        "cache fill"
    );
    assert_eq!(
        xff("/b", 0).as_deref(),
        Some("198.51.100.7, 203.0.113.9, 127.0.0.1"),
        "pass-through"
    );
    assert_eq!(
        xff("/b", 1).as_deref(),
        Some("127.0.0.1"),
        "no header: the peer"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn viewer_protocol_policy() {
    let origin = Origin::start().await;
    origin.set("/p", Route::ok("page"));
    let dists = [
        http_dist(
            "redir",
            &["redir.test"],
            &origin.url(),
            "viewer_protocol_policy = \"redirect-to-https\"",
            "",
        ),
        http_dist(
            "only",
            &["only.test"],
            &origin.url(),
            "viewer_protocol_policy = \"https-only\"",
            "",
        ),
        http_dist(
            "all",
            &["*"],
            &origin.url(),
            "viewer_protocol_policy = \"allow-all\"",
            "",
        ),
    ]
    .concat();
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(&config("", &dists), tmp.path());
    let c = client();
    let port = edge.https_addr().port();
    let r = get(&c, &edge.http, "/p?x=1", &[("host", "redir.test")]).await;
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location").unwrap(),
        format!("https://redir.test:{port}/p?x=1")
    );
    assert_eq!(r.x_cache(), "Redirect from strata");
    let r = send(
        c.head(format!("{}/p", edge.http))
            .header("host", "redir.test:80"),
    )
    .await;
    assert_eq!(r.status, 301);
    let r = send(
        c.post(format!("{}/p", edge.http))
            .header("host", "redir.test")
            .body("x"),
    )
    .await;
    assert_eq!(r.status, 403, "POST over HTTP is refused, not redirected");
    let r = get(&c, &edge.http, "/p", &[("host", "only.test")]).await;
    assert_eq!(r.status, 403);
    assert!(r.text().contains("could not be satisfied"));
    let r = get(&c, &edge.http, "/p", &[("host", "anything.test")]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "page"));
    // HTTP/2 over plain HTTP (prior knowledge), and HEAD from the cache.
    let h2c = reqwest::Client::builder()
        .http2_prior_knowledge()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let r = get(&h2c, &edge.http, "/p", &[]).await;
    assert_eq!(
        (r.status, r.version, r.text().as_str()),
        (200, http::Version::HTTP_2, "page")
    );
    assert_eq!(r.x_cache(), MISS, "a new host: its own cache key");
    let r = send(c.head(format!("{}/p", edge.http))).await;
    assert_eq!(
        (r.status, r.x_cache(), r.header("content-length")),
        (200, HIT, Some("4"))
    );
    assert!(r.body.is_empty());
    // Over HTTPS every policy serves.
    let pem = std::fs::read(tmp.path().join("self-signed.pem")).unwrap();
    let tc = tls_client(&[&pem], &["redir.test", "only.test"], edge.https_addr())
        .build()
        .unwrap();
    for host in ["redir.test", "only.test"] {
        let r = send(tc.get(format!("https://{host}:{port}/p"))).await;
        assert_eq!((r.status, r.text().as_str()), (200, "page"), "{host}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tls_self_signed_versions_alpn_and_certificates_by_sni() {
    let origin = Origin::start().await;
    origin.set("/t", Route::ok("tls"));
    let tmp = tempfile::tempdir().unwrap();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let mut made = HashMap::new();
    for name in ["www.example.test", "two.example.test"] {
        let ck = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
        let cert = certs.join(format!("{name}.pem"));
        let key = certs.join(format!("{name}.key"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        made.insert(
            name,
            (
                ck.cert.pem().into_bytes(),
                ck.cert.der().to_vec(),
                cert,
                key,
            ),
        );
    }
    let cert_fields = |name: &str| {
        let (_, _, cert, key) = &made[name];
        format!("certificate = {cert:?}\nprivate_key = {key:?}")
    };
    let dists = [
        http_dist(
            "www",
            &["www.example.test"],
            &origin.url(),
            &cert_fields("www.example.test"),
            "",
        ),
        http_dist(
            "two",
            &["two.example.test"],
            &origin.url(),
            &cert_fields("two.example.test"),
            "",
        ),
        http_dist("any", &["*"], &origin.url(), "", ""),
    ]
    .concat();
    let state = tmp.path().join("state");
    let edge = EdgeProcess::start(&config("", &dists), &state);
    let addr = edge.https_addr();
    let port = addr.port();
    let self_signed = std::fs::read(state.join("self-signed.pem")).expect("self-signed.pem");
    let names = ["localhost", "www.example.test", "two.example.test"];

    // The generated self-signed certificate, for names without their own.
    let peer = |r: &reqwest::Response| -> Vec<u8> {
        r.extensions()
            .get::<reqwest::tls::TlsInfo>()
            .and_then(|i| i.peer_certificate())
            .expect("peer certificate")
            .to_vec()
    };
    let c = tls_client(&[&self_signed], &names, addr).build().unwrap();
    let resp = c
        .get(format!("https://localhost:{port}/t"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2, "h2 by ALPN");
    let r = read(resp).await;
    assert_eq!((r.status, r.text().as_str()), (200, "tls"));
    let h1 = tls_client(&[&self_signed], &names, addr)
        .http1_only()
        .build()
        .unwrap();
    let r = send(h1.get(format!("https://localhost:{port}/t"))).await;
    assert_eq!((r.status, r.version), (200, http::Version::HTTP_11));
    for (v, what) in [
        (reqwest::tls::Version::TLS_1_2, "TLS 1.2"),
        (reqwest::tls::Version::TLS_1_3, "TLS 1.3"),
    ] {
        let only = tls_client(&[&self_signed], &names, addr)
            .min_tls_version(v)
            .max_tls_version(v)
            .build()
            .unwrap();
        let r = send(only.get(format!("https://localhost:{port}/t"))).await;
        assert_eq!(r.status, 200, "{what}");
    }
    // The self-signed root does not validate the hostnames that have their own certificate.
    for host in ["www.example.test", "two.example.test"] {
        let err = c.get(format!("https://{host}:{port}/t")).send().await;
        assert!(
            err.is_err(),
            "{host} must not present the self-signed certificate"
        );
    }
    // Each configured certificate is chosen by SNI.
    for (host, other) in [
        ("www.example.test", "two.example.test"),
        ("two.example.test", "www.example.test"),
    ] {
        let (pem, der, _, _) = &made[host];
        let c = tls_client(&[pem.as_slice()], &names, addr).build().unwrap();
        let resp = c
            .get(format!("https://{host}:{port}/t"))
            .send()
            .await
            .unwrap();
        assert_eq!(peer(&resp), *der, "{host}: its own certificate");
        assert_eq!(resp.version(), http::Version::HTTP_2);
        let r = read(resp).await;
        assert_eq!((r.status, r.text().as_str()), (200, "tls"));
        assert!(
            c.get(format!("https://{other}:{port}/t"))
                .send()
                .await
                .is_err(),
            "{other} presents another certificate"
        );
        assert!(
            c.get(format!("https://localhost:{port}/t"))
                .send()
                .await
                .is_err()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sighup_reloads_distributions_and_ttls_without_dropping_connections() {
    let origin = Origin::start().await;
    for p in ["/a", "/b"] {
        origin.set(p, Route::ok(p));
    }
    let tmp = tempfile::tempdir().unwrap();
    let make = |hosts: &[&str], default_ttl: u64| {
        config(
            "",
            &http_dist(
                "main",
                hosts,
                &origin.url(),
                "",
                &behavior("*", 0, default_ttl, 3600, ""),
            ),
        )
    };
    let mut edge = EdgeProcess::start(&make(&["old.test"], 3600), tmp.path());
    let pid = edge.pid();
    let mut conn = RawConn::open(edge.http_addr()).await;
    let (s, h, body) = conn.get("old.test", "/a").await;
    assert_eq!(
        (s, h["x-cache"].as_str(), body.as_slice()),
        (200, MISS, b"/a".as_slice())
    );
    let (s, h, _) = conn.get("old.test", "/a").await;
    assert_eq!((s, h["x-cache"].as_str()), (200, HIT));
    let (s, _, _) = conn.get("new.test", "/a").await;
    assert_eq!(s, 403, "no distribution answers new.test yet");

    edge.write_config(&make(&["old.test", "new.test"], 0));
    edge.reload();
    let start = Instant::now();
    loop {
        let (s, _, _) = conn.get("new.test", "/a").await;
        if s == 200 {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "reload applied in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // default_ttl 0 now: every request goes back to the origin.
    let (_, h, _) = conn.get("old.test", "/b").await;
    assert_eq!(h["x-cache"], MISS);
    let (s, h, body) = conn.get("old.test", "/b").await;
    assert_eq!(
        (s, h["x-cache"].as_str(), body.as_slice()),
        (200, MISS, b"/b".as_slice())
    );
    assert_eq!(origin.count("/b"), 2);
    // The entry stored before the reload keeps its TTL.
    let (_, h, _) = conn.get("old.test", "/a").await;
    assert_eq!(h["x-cache"], HIT);
    assert_eq!(edge.pid(), pid);
    assert!(edge.running(), "the same process, not restarted");

    // A broken file is refused and the running configuration stays.
    edge.write_config("this is not toml [");
    edge.reload();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (s, _, _) = conn.get("new.test", "/a").await;
    assert_eq!(s, 200);
    assert!(edge.running());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disk_tier_survives_a_restart() {
    let origin = Origin::start().await;
    let data = Bytes::from(pattern(300_000, 3));
    origin.set("/kept.bin", Route::ok(data.clone()));
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    let mut edge = EdgeProcess::start(
        &config(
            "",
            &format!(
                "[cache]\ndisk_dir = {disk:?}\n{}",
                http_dist("d", &["*"], &origin.url(), "", "")
            ),
        ),
        &tmp.path().join("state"),
    );
    let c = client();
    assert_eq!(get(&c, &edge.http, "/kept.bin", &[]).await.x_cache(), MISS);
    let has_entry = |d: &Path| {
        std::fs::read_dir(d).is_ok_and(|mut it| {
            it.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".e")))
        })
    };
    eventually(Duration::from_secs(15), "the disk tier write", || {
        let d = disk.clone();
        async move { has_entry(&d) }
    })
    .await;
    let token = edge.token.clone();
    edge.restart();
    assert_eq!(
        edge.token, token,
        "the admin token is kept in the state dir"
    );
    let r = get(&c, &edge.http, "/kept.bin", &[]).await;
    assert_eq!(r.x_cache(), HIT, "served from disk after the restart");
    assert!(r.body == data);
    assert_eq!(origin.count("/kept.bin"), 1);
    let m = metrics(&edge.admin).await;
    assert!(metric(&m, "strata_edge_cache_entries{tier=\"disk\"}") >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_write_right_after_a_fill_is_not_undone_by_the_disk_tier() {
    let origin = Origin::start().await;
    let old = Bytes::from(pattern(32 * 1024 * 1024, 1));
    let tmp = tempfile::tempdir().unwrap();
    let disk = tmp.path().join("disk");
    let mut edge = EdgeProcess::start(
        &config(
            "",
            &format!(
                "[cache]\ndisk_dir = {disk:?}\n{}",
                http_dist("d", &["*"], &origin.url(), "", "")
            ),
        ),
        &tmp.path().join("state"),
    );
    let c = client();
    let paths: Vec<String> = (0..3).map(|i| format!("/race{i}.bin")).collect();
    for path in &paths {
        origin.set(path, Route::ok(old.clone()));
        let filling = c.get(format!("{}{path}", edge.http)).send().await.unwrap();
        assert_eq!(filling.headers()["x-cache"], MISS);
        // The write lands while the disk tier may still be writing the old copy.
        let r = send(c.put(format!("{}{path}", edge.http)).body("new")).await;
        assert_eq!(r.status, 200);
        assert!(read(filling).await.body == old);
    }
    // Let the disk writes finish, then lose the memory tier.
    tokio::time::sleep(Duration::from_secs(3)).await;
    edge.restart();
    for path in &paths {
        let r = get(&c, &edge.http, path, &[]).await;
        assert_eq!(
            (r.x_cache(), r.body.len()),
            (MISS, 3),
            "{path}: the invalidated copy must not come back from disk"
        );
        assert_eq!(r.text(), "new");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_log_has_cloudfront_standard_fields() {
    let origin = Origin::start().await;
    origin.set("/l", Route::ok("logged"));
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let mut edge = EdgeProcess::start(
        &config(
            "",
            &format!(
                "[log]\ndir = {logs:?}\n{}",
                http_dist("d", &["*"], &origin.url(), "", "")
            ),
        ),
        &tmp.path().join("state"),
    );
    let c = client();
    assert_eq!(
        get(&c, &edge.http, "/l?q=1", &[("user-agent", "edge test/1.0")])
            .await
            .status,
        200
    );
    assert_eq!(get(&c, &edge.http, "/l", &[]).await.x_cache(), HIT);
    assert_eq!(get(&c, &edge.http, "/missing", &[]).await.status, 404);
    let pem = std::fs::read(tmp.path().join("state/self-signed.pem")).unwrap();
    let tc = tls_client(&[&pem], &["localhost"], edge.https_addr())
        .http1_only()
        .min_tls_version(reqwest::tls::Version::TLS_1_3)
        .build()
        .unwrap();
    let port = edge.https_addr().port();
    assert_eq!(
        send(tc.get(format!("https://localhost:{port}/l")))
            .await
            .status,
        200
    );
    assert!(
        edge.terminate(Duration::from_secs(30)),
        "clean exit on SIGTERM"
    );
    assert!(
        edge.last_exit.is_some_and(|s| s.success()),
        "exit status {:?}; log:\n{}",
        edge.last_exit,
        edge.log()
    );

    let mut lines = Vec::new();
    for f in std::fs::read_dir(&logs).expect("log dir exists") {
        let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
        let mut it = text.lines();
        assert_eq!(it.next(), Some("#Version: 1.0"));
        assert!(
            it.next()
                .unwrap()
                .starts_with("#Fields: date time x-edge-location")
        );
        lines.extend(it.map(str::to_owned));
    }
    let records: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    assert_eq!(records.len(), 4, "{lines:#?}");
    for r in &records {
        assert_eq!(r.len(), 33, "33 fields: {r:?}");
        assert_eq!(r[2], "TEST1");
        assert_eq!(r[5], "GET");
    }
    let find = |stem: &str, result: &str| {
        records
            .iter()
            .find(|r| r[7] == stem && r[13] == result)
            .unwrap_or_else(|| panic!("no {stem} {result} record in {lines:#?}"))
    };
    let miss = find("/l", "Miss");
    assert_eq!((miss[8], miss[11]), ("200", "q=1"));
    assert!(miss[10].contains("edge") && miss[10].contains("test"));
    assert_eq!(miss[16], "http");
    assert_eq!(miss[4], "127.0.0.1");
    let hit = find("/l", "Hit");
    assert_eq!(hit[8], "200");
    assert!(hit[3].parse::<u64>().unwrap() >= 6);
    let missing = find("/missing", "Miss");
    assert_eq!(missing[8], "404");
    let tls = records
        .iter()
        .find(|r| r[16] == "https")
        .expect("the HTTPS request");
    assert_eq!((tls[7], tls[20]), ("/l", "TLSv1.3"));
    assert_eq!(tls[23], "HTTP/1.1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn access_logs_are_uploaded_gzipped_to_a_bucket() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("edge-logs").send().await.unwrap();
    let origin = Origin::start().await;
    origin.set("/u", Route::ok("uploaded"));
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    let tables = format!(
        "[log]\ndir = {logs:?}\n[log.upload]\nendpoint = \"{}\"\nbucket = \"edge-logs\"\nprefix = \"TEST1\"\n\
         access_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\ninterval_minutes = 60\n{}",
        server.endpoint,
        http_dist("d", &["*"], &origin.url(), "", "")
    );
    let mut edge = EdgeProcess::start(&config("", &tables), &tmp.path().join("state"));
    let c = client();
    get(&c, &edge.http, "/u", &[]).await;
    get(&c, &edge.http, "/u", &[]).await;
    assert!(
        edge.terminate(Duration::from_secs(30)),
        "clean exit on SIGTERM"
    );
    assert!(
        edge.last_exit.is_some_and(|s| s.success()),
        "exit status {:?}; log:\n{}",
        edge.last_exit,
        edge.log()
    );
    // Shutdown rotates the file and uploads it.
    let keys = crate::harness::all_keys(&s3, "edge-logs").await;
    assert_eq!(
        keys.len(),
        1,
        "{keys:?}; left: {:?}; edge log:\n{}",
        std::fs::read_dir(&logs).map(|d| d
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect::<Vec<_>>()),
        edge.log()
    );
    assert!(
        keys[0].starts_with("TEST1/TEST1.") && keys[0].ends_with(".gz"),
        "{}",
        keys[0]
    );
    let gz = crate::harness::get(&s3, "edge-logs", &keys[0]).await;
    let mut text = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(gz.as_slice()), &mut text)
        .expect("gzip");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("#Version: 1.0"));
    assert!(lines.next().unwrap().starts_with("#Fields: "));
    let results: Vec<&str> = lines.map(|l| l.split('\t').nth(13).unwrap()).collect();
    assert_eq!(results, ["Miss", "Hit"]);
    let left: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.file_name())
        .collect();
    assert!(
        left.is_empty(),
        "uploaded files are deleted locally: {left:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_move_and_health_answers() {
    let origin = Origin::start().await;
    origin.set("/m", Route::ok("metered"));
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(
        &config("", &http_dist("d", &["*"], &origin.url(), "", "")),
        tmp.path(),
    );
    let c = client();
    let r = get(&c, &edge.admin, "/health", &[]).await;
    assert_eq!((r.status, r.text().trim()), (200, "ok"));
    let before = metrics(&edge.admin).await;
    get(&c, &edge.http, "/m", &[]).await;
    get(&c, &edge.http, "/m", &[]).await;
    get(&c, &edge.http, "/m", &[]).await;
    let after = metrics(&edge.admin).await;
    let delta = |s: &str| metric(&after, s) - metric(&before, s);
    assert_eq!(delta("strata_edge_requests_total{result=\"Miss\"}"), 1.0);
    assert_eq!(delta("strata_edge_requests_total{result=\"Hit\"}"), 2.0);
    assert_eq!(delta("strata_edge_origin_requests_total"), 1.0);
    assert!(delta("strata_edge_bytes_sent_total") >= 21.0);
    assert_eq!(delta("strata_edge_origin_latency_seconds_count"), 1.0);
    assert!(metric(&after, "strata_edge_cache_bytes{tier=\"memory\"}") > 0.0);
    assert!(metric(&after, "strata_edge_cache_entries{tier=\"memory\"}") >= 1.0);
    assert!(after.contains("# TYPE strata_edge_requests_total counter"));
}

// ---------------------------------------------------------------------------------------------------------------
// Against the real gateway.
// ---------------------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sdk_through_the_serve_edge_writes_and_reads_the_bucket() {
    let server = Server::start();
    assert!(server.edge_http.starts_with("http://127.0.0.1:"));
    assert!(server.edge_https.starts_with("https://127.0.0.1:"));
    assert!(!server.edge_token.is_empty());
    let before = metrics(&server.edge_admin).await;
    let s3 = client_for(&server.edge_http, ACCESS_KEY, SECRET_KEY);
    s3.create_bucket().bucket("via-edge").send().await.unwrap();
    let small = pattern(10_000, 1);
    crate::harness::put(&s3, "via-edge", "small", &small).await;
    assert_eq!(crate::harness::get(&s3, "via-edge", "small").await, small);
    // Multipart: two 5 MiB parts.
    let part1 = pattern(5 * 1024 * 1024, 2);
    let part2 = pattern(5 * 1024 * 1024, 3);
    let up = s3
        .create_multipart_upload()
        .bucket("via-edge")
        .key("multi")
        .send()
        .await
        .unwrap();
    let id = up.upload_id().unwrap();
    let mut parts = Vec::new();
    for (n, data) in [(1, &part1), (2, &part2)] {
        let out = s3
            .upload_part()
            .bucket("via-edge")
            .key("multi")
            .upload_id(id)
            .part_number(n)
            .body(aws_sdk_s3::primitives::ByteStream::from(data.clone()))
            .send()
            .await
            .unwrap();
        parts.push(
            aws_sdk_s3::types::CompletedPart::builder()
                .part_number(n)
                .e_tag(out.e_tag().unwrap())
                .build(),
        );
    }
    s3.complete_multipart_upload()
        .bucket("via-edge")
        .key("multi")
        .upload_id(id)
        .multipart_upload(
            aws_sdk_s3::types::CompletedMultipartUpload::builder()
                .set_parts(Some(parts))
                .build(),
        )
        .send()
        .await
        .unwrap();
    let whole = [part1, part2].concat();
    let got = crate::harness::get(&s3, "via-edge", "multi").await;
    assert_eq!(sha256(&got), sha256(&whole));
    // The writes landed in the bucket (read directly from the S3 API).
    let direct = server.client();
    assert_eq!(
        crate::harness::get(&direct, "via-edge", "small").await,
        small
    );
    assert_eq!(
        sha256(&crate::harness::get(&direct, "via-edge", "multi").await),
        sha256(&whole)
    );
    // They went through the edge.
    let after = metrics(&server.edge_admin).await;
    let passed = metric(&after, "strata_edge_requests_total{result=\"Miss\"}")
        - metric(&before, "strata_edge_requests_total{result=\"Miss\"}");
    assert!(passed >= 7.0, "requests through the edge: {passed}");
    // Anonymous reads go to the website endpoint, which serves no bucket here: nothing leaks.
    let r = get(&client(), &server.edge_http, "/via-edge/small", &[]).await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.text().contains("<li>Code: NoSuchBucket</li>"));
    let r = get(
        &client(),
        &server.edge_http,
        "/small",
        &[("host", "via-edge")],
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(
        r.text()
            .contains("<li>Code: NoSuchWebsiteConfiguration</li>")
    );
    // An anonymous write still reaches the S3 API, which refuses it.
    let r = send(
        client()
            .put(format!("{}/via-edge/evil", server.edge_http))
            .body("anonymous"),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert!(r.text().contains("<Code>AccessDenied</Code>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_origin_serves_a_private_bucket_anonymously() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("private").send().await.unwrap();
    let data = pattern(100_000, 5);
    crate::harness::put(&s3, "private", "doc.bin", &data).await;
    crate::harness::put(&s3, "private", "dir/a b+c.txt", b"odd name").await;
    let c = client();
    let direct = get(&c, &server.endpoint, "/private/doc.bin", &[]).await;
    assert_eq!(direct.status, 403, "the bucket is private");
    let dist = format!(
        "[[distribution]]\nid = \"oac\"\nhostnames = [\"*\"]\n[distribution.origin]\ntype = \"s3\"\n\
         endpoint = \"{}\"\nbucket = \"private\"\nregion = \"us-east-1\"\naccess_key = \"{ACCESS_KEY}\"\n\
         secret_key = \"{SECRET_KEY}\"\n",
        server.endpoint
    );
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(&config("", &dist), tmp.path());
    let r = get(&c, &edge.http, "/doc.bin", &[]).await;
    assert_eq!((r.status, r.x_cache()), (200, MISS), "{}", r.text());
    assert!(r.body == data);
    let r = get(&c, &edge.http, "/doc.bin", &[]).await;
    assert_eq!((r.status, r.x_cache()), (200, HIT));
    assert!(r.body == data);
    let r = get(&c, &edge.http, "/dir/a%20b%2Bc.txt", &[]).await;
    assert_eq!((r.status, r.text().as_str()), (200, "odd name"));
    let r = get(&c, &edge.http, "/nope", &[]).await;
    assert_eq!(r.status, 404);
    // The edge's credentials do not turn anonymous viewers into writers or listers of the bucket.
    let r = send(
        c.put(format!("{}/evil.txt", edge.http))
            .body("anonymous write"),
    )
    .await;
    assert_eq!(r.status, 403, "anonymous PUT refused: {}", r.text());
    assert!(r.text().contains("could not be satisfied"));
    let r = send(c.delete(format!("{}/doc.bin", edge.http))).await;
    assert_eq!(r.status, 403, "anonymous DELETE refused");
    let r = send(c.post(format!("{}/doc.bin?uploads", edge.http))).await;
    assert_eq!(r.status, 403, "anonymous multipart upload refused");
    for p in ["/", "/?list-type=2"] {
        let r = get(&c, &edge.http, p, &[]).await;
        assert_eq!(r.status, 403, "{p}: no listing");
        assert!(!r.text().contains("doc.bin"), "{p}: no listing");
    }
    assert_eq!(
        crate::harness::all_keys(&s3, "private").await,
        ["dir/a b+c.txt", "doc.bin"]
    );
    // Without a configured bucket the path names it; listing buckets or a bucket is refused just the same.
    let dist = format!(
        "[[distribution]]\nid = \"oac\"\nhostnames = [\"*\"]\n[distribution.origin]\ntype = \"s3\"\n\
         endpoint = \"{}\"\nregion = \"us-east-1\"\naccess_key = \"{ACCESS_KEY}\"\n\
         secret_key = \"{SECRET_KEY}\"\n",
        server.endpoint
    );
    let any_bucket = EdgeProcess::start(&config("", &dist), &tmp.path().join("any"));
    let r = get(&c, &any_bucket.http, "/private/doc.bin", &[]).await;
    assert_eq!(r.status, 200);
    assert!(r.body == data);
    for p in ["/", "/private", "/private/"] {
        let r = get(&c, &any_bucket.http, p, &[]).await;
        assert_eq!(r.status, 403, "{p}: no listing");
    }
    // Still private.
    assert_eq!(
        get(&c, &server.endpoint, "/private/doc.bin", &[])
            .await
            .status,
        403
    );
}
