//! Builds the [`RequestEnv`] that policy conditions look at from a request head and its TCP peer.
//!
//! Trusted proxies: the gateway listens on plain HTTP, and the edge (in `strata serve`, on the same host)
//! reaches it over loopback, adding `X-Forwarded-For` (the viewer's chain plus the address that connected to
//! the edge) and `X-Forwarded-Proto` (`https` when the viewer used TLS). Those headers are believed only when
//! the TCP peer is a loopback address; from anyone else they are ignored, and aws:SourceIp is the peer and
//! aws:SecureTransport is false. The client address is the right-most X-Forwarded-For entry that is not itself
//! a loopback address (so a viewer cannot choose its own address by sending the header to the edge).

use std::net::{IpAddr, SocketAddr};

use chrono::{DateTime, Utc};
use http::HeaderMap;

use super::RequestEnv;

/// Whether forwarded headers from `peer` are believed.
fn trusted_proxy(peer: IpAddr) -> bool {
    peer.to_canonical().is_loopback()
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// The client's address: the peer, or (from a trusted proxy) the right-most untrusted X-Forwarded-For entry.
fn client_ip(headers: &HeaderMap, peer: IpAddr) -> IpAddr {
    let peer = peer.to_canonical();
    if !trusted_proxy(peer) {
        return peer;
    }
    let Some(chain) = header(headers, "x-forwarded-for") else {
        return peer;
    };
    let mut hops = chain
        .split(',')
        .rev()
        .filter_map(|h| h.trim().parse::<IpAddr>().ok())
        .map(|ip| ip.to_canonical());
    let mut last = peer;
    for ip in hops.by_ref() {
        if !trusted_proxy(ip) {
            return ip;
        }
        last = ip;
    }
    last
}

/// Request headers S3 offers as condition keys `s3:<name>` (besides x-amz-acl): a policy can, for example, deny
/// unsigned payloads (`s3:x-amz-content-sha256` = `UNSIGNED-PAYLOAD`) or copies from elsewhere.
pub(crate) const CONDITION_HEADERS: [&str; 5] = [
    "x-amz-content-sha256",
    "x-amz-copy-source",
    "x-amz-metadata-directive",
    "x-amz-server-side-encryption",
    "x-amz-storage-class",
];

impl RequestEnv {
    /// The environment of a request from `peer` with these headers; `prefix` is a listing's prefix parameter.
    pub fn from_request(
        headers: &HeaderMap,
        peer: Option<SocketAddr>,
        prefix: Option<&str>,
        now: DateTime<Utc>,
    ) -> Self {
        let trusted = peer.is_some_and(|p| trusted_proxy(p.ip()));
        let secure_transport = trusted
            && header(headers, "x-forwarded-proto")
                .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"));
        Self {
            source_ip: peer.map(|p| client_ip(headers, p.ip())),
            secure_transport,
            referer: header(headers, "referer").map(str::to_owned),
            user_agent: header(headers, "user-agent").map(str::to_owned),
            prefix: prefix.map(str::to_owned),
            delimiter: None,
            max_keys: None,
            acl: None,
            condition_headers: Vec::new(),
            version_id: None,
            now,
            signing: None,
        }
        .with_header_keys(|name| header(headers, name))
    }

    /// Sets the header condition keys (s3:x-amz-acl and [`CONDITION_HEADERS`]) from `field`, asked by header
    /// name: the request's headers in [`RequestEnv::from_request`]; a browser-upload form's fields, which its
    /// policy binds and the upload applies, where the HTTP head of the POST is not signed.
    pub fn with_header_keys<'a>(mut self, field: impl Fn(&str) -> Option<&'a str>) -> Self {
        self.acl = field("x-amz-acl").map(|a| a.trim().to_owned());
        self.condition_headers = CONDITION_HEADERS
            .iter()
            .filter_map(|&name| field(name).map(|v| (name, v.trim().to_owned())))
            .collect();
        self
    }

    /// Records how the request was signed (s3:signatureversion and s3:authType).
    pub fn with_signing(mut self, signing: Option<crate::auth::Signing>) -> Self {
        self.signing = signing;
        self
    }

    /// Names the object version the request acts on (`?versionId=`; s3:versionid). Object ACLs and ownership
    /// are read from that version.
    pub fn with_version(mut self, version_id: Option<&str>) -> Self {
        self.version_id = version_id.map(str::to_owned);
        self
    }

    /// Adds a listing's `delimiter` and `max-keys` parameters (s3:delimiter, s3:max-keys).
    pub fn with_listing(mut self, delimiter: Option<&str>, max_keys: Option<&str>) -> Self {
        self.delimiter = delimiter.map(str::to_owned);
        self.max_keys = max_keys.map(str::to_owned);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(peer: &str, xff: Option<&str>, proto: Option<&str>) -> RequestEnv {
        let mut h = HeaderMap::new();
        if let Some(x) = xff {
            h.insert("x-forwarded-for", x.parse().unwrap());
        }
        if let Some(p) = proto {
            h.insert("x-forwarded-proto", p.parse().unwrap());
        }
        RequestEnv::from_request(&h, Some(peer.parse().unwrap()), None, Utc::now())
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn header_keys_come_from_the_headers_or_whatever_stands_in_for_them() {
        let mut h = HeaderMap::new();
        h.insert("x-amz-acl", " public-read ".parse().unwrap());
        h.insert("x-amz-storage-class", "GLACIER".parse().unwrap());
        h.insert("x-amz-meta-other", "not a key".parse().unwrap());
        let e = RequestEnv::from_request(&h, None, None, Utc::now());
        assert_eq!(e.acl.as_deref(), Some("public-read"));
        assert_eq!(
            e.condition_headers,
            [("x-amz-storage-class", "GLACIER".to_owned())]
        );
        let e = e.with_header_keys(|name| {
            (name == "x-amz-content-sha256").then_some("UNSIGNED-PAYLOAD")
        });
        assert_eq!(e.acl, None);
        assert_eq!(
            e.condition_headers,
            [("x-amz-content-sha256", "UNSIGNED-PAYLOAD".to_owned())]
        );
    }

    #[test]
    fn forwarded_headers_only_from_loopback() {
        let e = env("127.0.0.1:5000", Some("10.1.2.3"), Some("https"));
        assert_eq!(e.source_ip, ip("10.1.2.3"));
        assert!(e.secure_transport);
        let e = env("192.0.2.7:5000", Some("10.1.2.3"), Some("https"));
        assert_eq!(e.source_ip, ip("192.0.2.7"));
        assert!(!e.secure_transport);
        let e = env("[::1]:5000", None, Some("http"));
        assert_eq!(e.source_ip, ip("::1"));
        assert!(!e.secure_transport);
        // A viewer-supplied entry left of the edge's own cannot win.
        let e = env("127.0.0.1:5000", Some("10.9.9.9, 198.51.100.4"), None);
        assert_eq!(e.source_ip, ip("198.51.100.4"));
        let e = env("127.0.0.1:5000", Some("198.51.100.4, 127.0.0.1"), None);
        assert_eq!(e.source_ip, ip("198.51.100.4"));
        let e = env("127.0.0.1:5000", Some("127.0.0.1"), None);
        assert_eq!(e.source_ip, ip("127.0.0.1"));
        let e = env("[::ffff:127.0.0.1]:5000", Some("garbage"), None);
        assert_eq!(e.source_ip, ip("127.0.0.1"));
    }
}
