//! Strata's CDN edge node, in the manner of CloudFront: viewers talk HTTP or HTTPS to the edge, which answers
//! from its cache and fetches from the origin only on a miss.
//!
//! The edge owns TLS termination, distributions (hostname → origin and cache behaviours), the TTL policy, the
//! memory and disk cache tiers, request coalescing, revalidation, stale-if-error, geo-restriction, the
//! invalidation API, access logs and metrics. It reaches origins over HTTP only and knows nothing about the
//! storage engine or the gateway's internals.

pub mod access_log;
pub mod cache;
pub mod coalesce;
pub mod distribution;
pub mod geo;
pub mod log_upload;
pub mod metrics;
pub mod origin;
pub mod pages;
pub mod proxy;
pub mod server;
pub mod tls;
pub mod ttl;
pub mod viewer;

pub use server::{EdgeServer, Reloader};

/// How a request was answered, as CloudFront's `x-edge-result-type` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResultType {
    /// Served from cache.
    Hit,
    /// Served from cache after the origin confirmed it with a 304.
    RefreshHit,
    /// Fetched from the origin (including responses that are never cached).
    Miss,
    /// The edge or the origin failed, or the viewer was refused.
    Error,
    /// The edge redirected the viewer (HTTP to HTTPS).
    Redirect,
}

impl ResultType {
    /// The log and metrics spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "Hit",
            Self::RefreshHit => "RefreshHit",
            Self::Miss => "Miss",
            Self::Error => "Error",
            Self::Redirect => "Redirect",
        }
    }
}
