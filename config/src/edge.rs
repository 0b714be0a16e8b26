//! The configuration tree of an edge node: listeners, cache tiers, access logs and the distributions it serves.
//!
//! `strata edge --config FILE` reads this tree from the top level of FILE; `strata serve` reads it from the
//! `[edge]` table of its own file. `config/edge.toml` documents every key.

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// Everything an edge node is told.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EdgeConfig {
    /// Plain HTTP viewer listener.
    pub listen: SocketAddr,
    /// HTTPS viewer listener (HTTP/1.1 and HTTP/2 by ALPN).
    pub tls_listen: SocketAddr,
    /// Admin listener: /health, /metrics and the invalidation API. Keep it on a private address.
    pub admin_listen: SocketAddr,
    /// Edge location name written to access logs (CloudFront's x-edge-location), e.g. "FRA56-C1".
    pub edge_id: String,
    /// Directory for the generated self-signed certificate and admin token (created when missing). Unset:
    /// `./edge-state` for `strata edge`, `DATA/edge` for `strata serve`.
    pub state_dir: Option<PathBuf>,
    /// Bearer token of the invalidation API. Empty: one is generated into `state_dir/admin-token`.
    pub admin_token: String,
    /// A MaxMind-format country database (.mmdb); needed by any distribution with geo-restriction.
    pub geoip_db: Option<PathBuf>,
    /// Peers (CIDR) whose X-Forwarded-For header is believed for the client address.
    pub trusted_proxies: Vec<String>,
    /// Seconds to wait for the origin's response headers, and between body reads, before giving up.
    pub origin_timeout_secs: u64,
    /// Seconds a request waits for another request's fetch of the same object before fetching itself.
    pub coalesce_wait_secs: u64,
    /// Seconds a viewer may take to send its request headers.
    pub client_timeout_secs: u64,
    /// Cache tiers.
    pub cache: CacheConfig,
    /// Access logs.
    pub log: LogConfig,
    /// The sites this edge serves, matched by Host header; the first whose hostnames include "*" catches the rest.
    #[serde(rename = "distribution")]
    pub distributions: Vec<Distribution>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        Self {
            listen: ([127, 0, 0, 1], 8080).into(),
            tls_listen: ([127, 0, 0, 1], 8443).into(),
            admin_listen: ([127, 0, 0, 1], 8081).into(),
            edge_id: "LOCAL1".into(),
            state_dir: None,
            admin_token: String::new(),
            geoip_db: None,
            trusted_proxies: Vec::new(),
            origin_timeout_secs: 30,
            coalesce_wait_secs: 30,
            client_timeout_secs: 60,
            cache: CacheConfig::default(),
            log: LogConfig::default(),
            distributions: Vec::new(),
        }
    }
}

/// Memory and disk cache tiers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// Bytes of response bodies (plus headers) kept in memory.
    pub memory_bytes: u64,
    /// Directory of the disk tier; unset means memory only. Survives restarts.
    pub disk_dir: Option<PathBuf>,
    /// Bytes the disk tier may hold.
    pub disk_bytes: u64,
    /// Responses larger than this are streamed through to the viewer and not cached.
    pub max_object_bytes: u64,
}

impl Default for CacheConfig {
    fn default() -> Self {
        Self {
            memory_bytes: 256 * 1024 * 1024,
            disk_dir: None,
            disk_bytes: 10 * 1024 * 1024 * 1024,
            max_object_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Access log settings (CloudFront standard log format).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// Directory of the log files; unset means no access log files (requests are still traced to stderr).
    pub dir: Option<PathBuf>,
    /// Start a new file when the current one reaches this many bytes.
    pub rotate_bytes: u64,
    /// Start a new file after this many seconds.
    pub rotate_secs: u64,
    /// Rotated files kept in `dir` (older ones are deleted once uploaded or when over this count).
    pub keep_files: usize,
    /// Upload rotated files as objects to this S3 bucket (CloudFront's log bucket); unset means keep local.
    pub upload: Option<LogUpload>,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            dir: None,
            rotate_bytes: 64 * 1024 * 1024,
            rotate_secs: 3600,
            keep_files: 24,
            upload: None,
        }
    }
}

/// Where rotated access logs go.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct LogUpload {
    /// S3 endpoint, e.g. http://127.0.0.1:9000.
    pub endpoint: String,
    /// Bucket receiving the log objects.
    pub bucket: String,
    /// Key prefix of the log objects.
    #[serde(default)]
    pub prefix: String,
    /// Region used in the signature.
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key that may PUT into the bucket.
    pub access_key: String,
    /// Its secret.
    pub secret_key: String,
    /// Minutes between uploads; the current file is rotated at each upload.
    #[serde(default = "default_upload_minutes")]
    pub interval_minutes: u64,
}

fn default_region() -> String {
    "us-east-1".into()
}

fn default_upload_minutes() -> u64 {
    5
}

/// One site: hostnames, an origin, and cache behaviours.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Distribution {
    /// Name used in logs, metrics and the invalidation API.
    pub id: String,
    /// Host names (alternate domain names) this distribution answers; "*" matches any host.
    pub hostnames: Vec<String>,
    /// Where misses are fetched from.
    pub origin: Origin,
    /// Where API requests go instead of `origin`: requests carrying SigV4 credentials (an Authorization header
    /// or an X-Amz-Credential query parameter) and every method but GET, HEAD and OPTIONS. Unset: everything goes
    /// to `origin`. `strata serve` uses it to put its edge in front of the website endpoint (`origin`) while
    /// aws-cli and SDKs still reach the S3 API (`api_origin`) through the same listener.
    #[serde(default)]
    pub api_origin: Option<Origin>,
    /// What plain HTTP viewers get.
    #[serde(default)]
    pub viewer_protocol_policy: ViewerProtocolPolicy,
    /// PEM certificate chain served for these hostnames (by SNI); unset means the generated self-signed one.
    #[serde(default)]
    pub certificate: Option<PathBuf>,
    /// PEM private key of `certificate`.
    #[serde(default)]
    pub private_key: Option<PathBuf>,
    /// Country restriction.
    #[serde(default)]
    pub geo: GeoRestriction,
    /// Cache behaviours, tried in order by path pattern; a request matching none uses the defaults.
    #[serde(default, rename = "behavior")]
    pub behaviors: Vec<Behavior>,
}

/// The origin of a distribution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase", deny_unknown_fields)]
pub enum Origin {
    /// A bucket on Strata or any S3 endpoint. With credentials the edge signs every origin request with SigV4
    /// (CloudFront's origin access control), so the bucket can stay private; without, viewer requests (and
    /// their own signatures) pass through unchanged.
    S3 {
        /// S3 endpoint, e.g. http://127.0.0.1:9000.
        endpoint: String,
        /// Bucket served at the root of the distribution; unset means the viewer's path names the bucket.
        #[serde(default)]
        bucket: Option<String>,
        /// Region used in signatures.
        #[serde(default = "default_region")]
        region: String,
        /// Access key the edge signs with.
        #[serde(default)]
        access_key: Option<String>,
        /// Its secret.
        #[serde(default)]
        secret_key: Option<String>,
    },
    /// Any HTTP(S) server; the viewer's path and kept query strings are appended to `url`.
    Http {
        /// Base URL, e.g. https://origin.example.com or http://127.0.0.1:9001.
        url: String,
        /// Send the viewer's Host header instead of the origin's.
        #[serde(default)]
        forward_host: bool,
    },
}

/// CloudFront's viewer protocol policy.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "kebab-case")]
pub enum ViewerProtocolPolicy {
    /// HTTP and HTTPS both served.
    #[default]
    AllowAll,
    /// HTTP GET and HEAD get 301 to the HTTPS URL; other HTTP methods get 403.
    RedirectToHttps,
    /// HTTP requests get 403.
    HttpsOnly,
}

/// Geo-restriction of a distribution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct GeoRestriction {
    /// none, allow (only `countries` served) or block (`countries` refused).
    pub mode: GeoMode,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    /// Serve viewers whose country is unknown (private addresses, missing database entries).
    pub allow_unknown: bool,
}

/// Kind of geo-restriction.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum GeoMode {
    /// No restriction.
    #[default]
    None,
    /// Allowlist.
    Allow,
    /// Blocklist.
    Block,
}

/// A cache behaviour: TTLs and cache key for paths matching a pattern.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Behavior {
    /// Path pattern with `*` (any run of characters) and `?` (one character), e.g. "/images/*.jpg"; "*" matches all.
    pub path_pattern: String,
    /// Minimum TTL in seconds: the floor of any origin max-age, and the TTL of no-cache/private responses when > 0.
    pub min_ttl: u64,
    /// TTL in seconds when the origin sends neither Cache-Control max-age/s-maxage nor Expires.
    pub default_ttl: u64,
    /// Maximum TTL in seconds: the ceiling of any origin max-age or Expires.
    pub max_ttl: u64,
    /// Query string names in the cache key (and forwarded to the origin); ["*"] means all, [] none.
    pub query_strings: Vec<String>,
    /// Request header names in the cache key (and forwarded to the origin).
    pub headers: Vec<String>,
    /// Seconds past expiry a stale copy may be served when the origin fails or times out.
    pub stale_if_error_secs: u64,
    /// TTL in seconds of cached 404 and 410 responses (CloudFront's error caching minimum TTL).
    pub error_ttl: u64,
}

impl Default for Behavior {
    fn default() -> Self {
        // CloudFront's CachingOptimized managed policy.
        Self {
            path_pattern: "*".into(),
            min_ttl: 1,
            default_ttl: 86_400,
            max_ttl: 31_536_000,
            query_strings: Vec::new(),
            headers: Vec::new(),
            stale_if_error_secs: 86_400,
            error_ttl: 10,
        }
    }
}

impl EdgeConfig {
    /// Reads a TOML file (the top level is the edge tree).
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| Error::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Checks ranges and cross-field rules.
    pub fn validate(&self) -> Result<()> {
        let invalid = |m: String| Err(Error::Invalid(m));
        if self.edge_id.is_empty() || self.edge_id.contains(char::is_whitespace) {
            return invalid("edge.edge_id must be a non-empty word".into());
        }
        if self.origin_timeout_secs == 0 || self.coalesce_wait_secs == 0 {
            return invalid("edge timeouts must be positive".into());
        }
        if self.cache.max_object_bytes > self.cache.memory_bytes {
            return invalid(
                "edge.cache.max_object_bytes must not exceed edge.cache.memory_bytes".into(),
            );
        }
        let mut ids = std::collections::HashSet::new();
        for d in &self.distributions {
            if !ids.insert(d.id.as_str()) {
                return invalid(format!("distribution id {:?} is used twice", d.id));
            }
            if d.hostnames.is_empty() {
                return invalid(format!("distribution {:?} has no hostnames", d.id));
            }
            if d.certificate.is_some() != d.private_key.is_some() {
                return invalid(format!(
                    "distribution {:?}: certificate and private_key go together",
                    d.id
                ));
            }
            let half_keyed = |o: &Origin| {
                matches!(o, Origin::S3 { access_key, secret_key, .. }
                    if access_key.is_some() != secret_key.is_some())
            };
            if half_keyed(&d.origin) || d.api_origin.as_ref().is_some_and(half_keyed) {
                return invalid(format!(
                    "distribution {:?}: origin access_key and secret_key go together",
                    d.id
                ));
            }
            if d.geo.mode != GeoMode::None && self.geoip_db.is_none() {
                return invalid(format!(
                    "distribution {:?} restricts countries but edge.geoip_db is not set",
                    d.id
                ));
            }
            for c in &d.geo.countries {
                if c.len() != 2 || !c.bytes().all(|b| b.is_ascii_uppercase()) {
                    return invalid(format!(
                        "distribution {:?}: {c:?} is not an ISO 3166 alpha-2 code (two capital letters)",
                        d.id
                    ));
                }
            }
            for b in &d.behaviors {
                if !(b.min_ttl <= b.default_ttl && b.default_ttl <= b.max_ttl) {
                    return invalid(format!(
                        "distribution {:?} behaviour {:?}: TTLs must satisfy min <= default <= max",
                        d.id, b.path_pattern
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_edge_file_parses_and_validates() {
        let text = include_str!("../edge.toml");
        let parsed: EdgeConfig = toml::from_str(text).expect("config/edge.toml parses");
        assert!(!parsed.distributions.is_empty());
        let mut without_geo = parsed.clone();
        without_geo.geoip_db = Some("/dev/null".into());
        without_geo.validate().expect("example validates");
    }

    #[test]
    fn ttl_order_is_checked() {
        let mut c = EdgeConfig::default();
        c.distributions.push(Distribution {
            id: "d".into(),
            hostnames: vec!["*".into()],
            origin: Origin::Http {
                url: "http://127.0.0.1:1".into(),
                forward_host: false,
            },
            api_origin: None,
            viewer_protocol_policy: ViewerProtocolPolicy::AllowAll,
            certificate: None,
            private_key: None,
            geo: GeoRestriction::default(),
            behaviors: vec![Behavior {
                min_ttl: 10,
                default_ttl: 5,
                ..Behavior::default()
            }],
        });
        assert!(c.validate().is_err());
    }
}
