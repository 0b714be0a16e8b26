//! Distributions as the request path uses them: the configuration compiled once (at start and on SIGHUP) into
//! a host lookup table, path-pattern matchers and TTL policies, and the cache key of a request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderMap, HeaderName};
use strata_config::edge::{Behavior, Distribution, GeoRestriction, Origin, ViewerProtocolPolicy};

use crate::ttl::TtlPolicy;

/// One distribution, ready for the request path.
#[derive(Debug)]
pub struct Site {
    /// Configured id.
    pub id: String,
    /// Where misses go.
    pub origin: Origin,
    /// What plain HTTP viewers get.
    pub viewer_protocol_policy: ViewerProtocolPolicy,
    /// Country restriction.
    pub geo: GeoRestriction,
    /// The same distribution with `api_origin` as its origin: where API requests go (see [`is_api_request`]).
    pub api: Option<Arc<Site>>,
    behaviors: Vec<CacheBehavior>,
    fallback: CacheBehavior,
}

/// Request headers an origin's CORS answer depends on: always forwarded on misses and part of every cache key
/// (as CloudFront's CORS-S3Origin policies), so a response for one Origin is never served to another, and one
/// without Access-Control-* headers never to a cross-origin viewer. Requests without them share one entry.
pub const CORS_REQUEST_HEADERS: [&str; 3] = [
    "origin",
    "access-control-request-method",
    "access-control-request-headers",
];

/// Whether a request is an API call rather than a browser read: it carries SigV4 credentials (Authorization
/// header, or X-Amz-Credential / X-Amz-Signature in the query), uses a method other than GET, HEAD, OPTIONS, or
/// is the CORS preflight of such a call (it asks for a write method, or for the Authorization or x-amz-* headers
/// a signed request sends).
pub fn is_api_request(method: &http::Method, headers: &HeaderMap, query: Option<&str>) -> bool {
    use http::Method;
    if *method == Method::OPTIONS {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let write = text("access-control-request-method")
            .is_some_and(|m| !matches!(m.trim(), "GET" | "HEAD"));
        let signed_headers = text("access-control-request-headers").is_some_and(|list| {
            list.split(',').any(|h| {
                let h = h.trim().to_ascii_lowercase();
                h == "authorization" || h.starts_with("x-amz-")
            })
        });
        if write || signed_headers {
            return true;
        }
    }
    viewer_signed(headers, query)
        || !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a request carries S3 credentials of the viewer's own: an Authorization header, or any of the
/// presigned-URL parameters, with names percent-decoded as the gateway decodes them (so `X-Amz-Credential` and
/// `X%2DAmz%2DCredential` are the same parameter). Such a request is answered for that viewer only: never
/// cached, never served from the cache.
pub fn viewer_signed(headers: &HeaderMap, query: Option<&str>) -> bool {
    const QUERY_AUTH: [&str; 5] = [
        "X-Amz-Signature",
        "X-Amz-Credential",
        "X-Amz-Algorithm",
        "Signature",
        "AWSAccessKeyId",
    ];
    headers.contains_key(http::header::AUTHORIZATION)
        || query.is_some_and(|q| {
            q.split('&').any(|pair| {
                let raw = pair.split('=').next().unwrap_or("").replace('+', " ");
                let name = percent_encoding::percent_decode_str(&raw).decode_utf8_lossy();
                QUERY_AUTH.contains(&name.as_ref())
            })
        })
}

/// A compiled cache behaviour.
#[derive(Debug, Clone)]
pub struct CacheBehavior {
    pattern: String,
    /// TTL rules.
    pub ttl: TtlPolicy,
    /// Query strings in the cache key and forwarded.
    pub query: QueryRule,
    /// Request headers in the cache key and forwarded (lowercase).
    pub headers: Vec<HeaderName>,
    /// How long past expiry a stale copy may stand in for a failing origin.
    pub stale_if_error: Duration,
}

/// Which query string parameters matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryRule {
    /// None: the query string is dropped.
    None,
    /// All, in the viewer's order.
    All,
    /// These names only.
    Only(Vec<String>),
}

impl CacheBehavior {
    fn compile(b: &Behavior) -> anyhow::Result<Self> {
        let query = if b.query_strings.is_empty() {
            QueryRule::None
        } else if b.query_strings.iter().any(|q| q == "*") {
            QueryRule::All
        } else {
            QueryRule::Only(b.query_strings.clone())
        };
        let mut headers = b
            .headers
            .iter()
            .map(|h| {
                HeaderName::from_bytes(h.to_ascii_lowercase().as_bytes()).map_err(|_| {
                    anyhow::anyhow!("behaviour {:?}: bad header name {h:?}", b.path_pattern)
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for h in CORS_REQUEST_HEADERS {
            let h = HeaderName::from_static(h);
            if !headers.contains(&h) {
                headers.push(h);
            }
        }
        let pattern = if b.path_pattern == "*" || b.path_pattern.starts_with('/') {
            b.path_pattern.clone()
        } else {
            format!("/{}", b.path_pattern)
        };
        Ok(Self {
            pattern,
            ttl: TtlPolicy::from(b),
            query,
            headers,
            stale_if_error: Duration::from_secs(b.stale_if_error_secs),
        })
    }

    /// The query string kept for the cache key and the origin, or None.
    pub fn kept_query(&self, query: Option<&str>) -> Option<String> {
        let q = query.filter(|q| !q.is_empty())?;
        match &self.query {
            QueryRule::None => None,
            QueryRule::All => Some(q.to_owned()),
            QueryRule::Only(names) => {
                let kept: Vec<&str> = q
                    .split('&')
                    .filter(|pair| {
                        let name = pair.split('=').next().unwrap_or("");
                        names.iter().any(|n| n == name)
                    })
                    .collect();
                (!kept.is_empty()).then(|| kept.join("&"))
            }
        }
    }
}

impl Site {
    fn compile(d: &Distribution) -> anyhow::Result<Self> {
        let behaviors = d
            .behaviors
            .iter()
            .map(CacheBehavior::compile)
            .collect::<anyhow::Result<Vec<_>>>()?;
        let api = match &d.api_origin {
            None => None,
            Some(o) => Some(Arc::new(Self::compile(&Distribution {
                origin: o.clone(),
                api_origin: None,
                ..d.clone()
            })?)),
        };
        Ok(Self {
            id: d.id.clone(),
            origin: d.origin.clone(),
            viewer_protocol_policy: d.viewer_protocol_policy,
            geo: d.geo.clone(),
            api,
            behaviors,
            fallback: CacheBehavior::compile(&Behavior::default())?,
        })
    }

    /// The first behaviour whose pattern matches `path`, else CloudFront's defaults.
    pub fn behavior(&self, path: &str) -> &CacheBehavior {
        self.behaviors
            .iter()
            .find(|b| glob_match(b.pattern.as_bytes(), path.as_bytes()))
            .unwrap_or(&self.fallback)
    }
}

/// `*` matches any run of bytes (slashes included, as CloudFront's path patterns do), `?` exactly one.
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if let Some((sp, st)) = star {
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

/// All distributions, found by Host header.
#[derive(Debug, Default)]
pub struct Routing {
    sites: Vec<Arc<Site>>,
    by_host: HashMap<String, usize>,
    wildcard: Option<usize>,
}

impl Routing {
    /// Compiles the configured distributions.
    pub fn compile(distributions: &[Distribution]) -> anyhow::Result<Self> {
        let mut routing = Self::default();
        for (i, d) in distributions.iter().enumerate() {
            routing.sites.push(Arc::new(Site::compile(d)?));
            for h in &d.hostnames {
                if h == "*" {
                    routing.wildcard.get_or_insert(i);
                } else if routing.by_host.insert(h.to_ascii_lowercase(), i).is_some() {
                    anyhow::bail!("hostname {h:?} belongs to two distributions");
                }
            }
        }
        Ok(routing)
    }

    /// The distribution answering `host` (port ignored), or the catch-all one.
    pub fn site_for(&self, host: &str) -> Option<&Arc<Site>> {
        let name = strip_port(host).to_ascii_lowercase();
        self.by_host
            .get(name.trim_end_matches('.'))
            .or(self.wildcard.as_ref())
            .map(|&i| &self.sites[i])
    }

    /// A distribution by id (invalidation API).
    pub fn by_id(&self, id: &str) -> Option<&Arc<Site>> {
        self.sites.iter().find(|s| s.id == id)
    }

    /// Every distribution.
    pub fn sites(&self) -> &[Arc<Site>] {
        &self.sites
    }
}

/// `host` without a `:port` suffix (IPv6 literals keep their brackets).
pub fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':')
        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(h, _)| h)
}

/// The cache key of a request: distribution, viewer protocol and host, path, kept query and named headers.
///
/// The protocol is in the key because the edge forwards it to the origin (X-Forwarded-Proto), and so is the
/// whole Host, port included, when the origin receives the viewer's Host header: an origin may answer from them
/// (the website endpoint's redirects name the host and scheme they were asked on). Without them one viewer could
/// fill the cache with a redirect to another port, or a downgrade to http, that every viewer would then get.
/// Origins that do not see the viewer's Host are keyed on the host name alone.
///
/// Fields are joined with NUL, which cannot occur in any of them, so two requests share a key only when they
/// agree on every field. [`key_path`] recovers the path for invalidation.
pub fn cache_key(
    site: &Site,
    behavior: &CacheBehavior,
    https: bool,
    host: &str,
    path: &str,
    query: Option<&str>,
    headers: &HeaderMap,
) -> String {
    let mut key = String::with_capacity(site.id.len() + host.len() + path.len() + 24);
    key.push_str(&site.id);
    key.push('\0');
    key.push_str(if https { "https://" } else { "http://" });
    let origin_sees_host = matches!(
        site.origin,
        Origin::Http {
            forward_host: true,
            ..
        }
    );
    let host = if origin_sees_host {
        host
    } else {
        strip_port(host)
    };
    key.push_str(&host.to_ascii_lowercase());
    key.push('\0');
    key.push_str(path);
    key.push('\0');
    if let Some(q) = query {
        key.push_str(q);
    }
    for name in &behavior.headers {
        key.push('\0');
        key.push_str(name.as_str());
        key.push('=');
        for v in headers.get_all(name) {
            key.push_str(&String::from_utf8_lossy(v.as_bytes()));
            key.push(',');
        }
    }
    key
}

/// The distribution id and path of a cache key.
pub fn key_path(key: &str) -> Option<(&str, &str)> {
    let mut parts = key.splitn(4, '\0');
    let id = parts.next()?;
    let _host = parts.next()?;
    let path = parts.next()?;
    Some((id, path))
}

/// Whether an invalidation path (exact, or ending in `*` for a prefix) covers `path`.
pub fn invalidation_matches(pattern: &str, path: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => path.starts_with(prefix),
        None => pattern == path,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presigned_parameters_count_however_they_are_encoded() {
        let none = HeaderMap::new();
        for q in [
            "X-Amz-Credential=x",
            "a=1&X-Amz-Signature=abc",
            "X%2DAmz%2DCredential=x",
            "x-id=GetObject&X-Amz-Algorithm",
            "Signature=s&AWSAccessKeyId=k",
        ] {
            assert!(viewer_signed(&none, Some(q)), "{q}");
        }
        for q in [
            "",
            "x-amz-credential=x",
            "X-Amz-Credentials=x",
            "v=X-Amz-Signature",
        ] {
            assert!(!viewer_signed(&none, Some(q)), "{q}");
        }
        let mut auth = HeaderMap::new();
        auth.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 x".parse().unwrap(),
        );
        assert!(viewer_signed(&auth, None));
    }

    #[test]
    fn api_requests_are_signed_ones_and_writes() {
        use http::Method;
        let none = HeaderMap::new();
        assert!(!is_api_request(&Method::GET, &none, None));
        assert!(!is_api_request(&Method::OPTIONS, &none, Some("a=1")));
        assert!(is_api_request(&Method::PUT, &none, None));
        assert!(is_api_request(&Method::POST, &none, None));
        assert!(is_api_request(
            &Method::GET,
            &none,
            Some("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a%2Fb")
        ));
        let mut signed = HeaderMap::new();
        signed.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 x".parse().unwrap(),
        );
        assert!(is_api_request(&Method::HEAD, &signed, None));
        let preflight = |method: &str, headers: &str| {
            let mut h = HeaderMap::new();
            h.insert("access-control-request-method", method.parse().unwrap());
            h.insert("access-control-request-headers", headers.parse().unwrap());
            is_api_request(&Method::OPTIONS, &h, None)
        };
        assert!(!preflight("GET", "range"));
        assert!(preflight("PUT", "content-type"));
        assert!(preflight("GET", "authorization, x-amz-date"));
        assert!(preflight("GET", "X-Amz-Content-Sha256"));
    }

    #[test]
    fn cors_request_headers_are_always_in_the_key() {
        let c = CacheBehavior::compile(&Behavior::default()).unwrap();
        for h in CORS_REQUEST_HEADERS {
            assert!(c.headers.iter().any(|n| n == h), "{h}");
        }
    }

    #[test]
    fn glob_patterns() {
        assert!(glob_match(b"*", b"/a/b/c"));
        assert!(glob_match(b"/images/*.jpg", b"/images/x/y.jpg"));
        assert!(!glob_match(b"/images/*.jpg", b"/images/x.png"));
        assert!(glob_match(b"/a?c", b"/abc"));
        assert!(!glob_match(b"/a?c", b"/ac"));
        assert!(glob_match(b"/a*b*c", b"/axxbyyc"));
        assert!(!glob_match(b"/a*b*c", b"/axxbyy"));
    }

    #[test]
    fn ports_are_stripped() {
        assert_eq!(strip_port("example.com:8080"), "example.com");
        assert_eq!(strip_port("example.com"), "example.com");
        assert_eq!(strip_port("[::1]:8443"), "[::1]");
        assert_eq!(strip_port("[::1]"), "[::1]");
    }

    #[test]
    fn invalidation_wildcards() {
        assert!(invalidation_matches("/images/*", "/images/a.png"));
        assert!(invalidation_matches("/*", "/x"));
        assert!(invalidation_matches("/a.html", "/a.html"));
        assert!(!invalidation_matches("/a.html", "/a.html2"));
        assert!(!invalidation_matches("/images/*", "/img/a.png"));
    }

    #[test]
    fn query_rules() {
        let mut b = Behavior {
            query_strings: vec!["v".into()],
            ..Behavior::default()
        };
        let c = CacheBehavior::compile(&b).unwrap();
        assert_eq!(c.kept_query(Some("a=1&v=2&b=3")).as_deref(), Some("v=2"));
        assert_eq!(c.kept_query(Some("a=1")), None);
        b.query_strings = vec!["*".into()];
        let c = CacheBehavior::compile(&b).unwrap();
        assert_eq!(c.kept_query(Some("a=1")).as_deref(), Some("a=1"));
        b.query_strings = vec![];
        let c = CacheBehavior::compile(&b).unwrap();
        assert_eq!(c.kept_query(Some("a=1")), None);
    }
}
