//! Geo-restriction inputs: the viewer's address, its country, and whether a distribution serves that country.
//!
//! This module owns three things and nothing else:
//! - [`GeoDb`], a MaxMind-format `.mmdb` country database read into memory. One lookup handles both schemas in
//!   use: MaxMind's and DB-IP's (`country.iso_code`, falling back to `registered_country.iso_code`) and the flat
//!   `country_code` of the CC0 ip-location-db files (npm `@ip-location-db/geo-whois-asn-country-mmdb`).
//! - [`TrustedProxies`], the trust rule for `X-Forwarded-For`: the header is only believed when the TCP peer is
//!   one of the configured proxies, and then only up to the first hop that is not itself trusted.
//! - [`allowed`], the allow/block decision of a [`GeoRestriction`], a pure function.
//!
//! The edge answers a refused viewer with 403 and the page of [`crate::pages`]; that wiring lives with the
//! request path, not here.

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use anyhow::{Context, anyhow};
use ipnet::IpNet;
use serde::Deserialize;
use strata_config::edge::{GeoMode, GeoRestriction};

/// A country database loaded whole into memory (no mmap), shared read-only between requests.
pub struct GeoDb {
    reader: maxminddb::Reader<Vec<u8>>,
}

/// The fields of a database record this module reads; every other field of the record is skipped.
#[derive(Deserialize)]
struct CountryRecord<'a> {
    /// MaxMind / DB-IP: where the address is used.
    #[serde(borrow, default)]
    country: Option<IsoCode<'a>>,
    /// MaxMind / DB-IP: where the block is registered, for records without `country`.
    #[serde(borrow, default)]
    registered_country: Option<IsoCode<'a>>,
    /// ip-location-db: the flat schema.
    #[serde(borrow, default)]
    country_code: Option<&'a str>,
}

#[derive(Deserialize)]
struct IsoCode<'a> {
    #[serde(borrow, default)]
    iso_code: Option<&'a str>,
}

impl<'a> CountryRecord<'a> {
    fn iso_code(&self) -> Option<&'a str> {
        fn nested<'a>(c: &Option<IsoCode<'a>>) -> Option<&'a str> {
            c.as_ref().and_then(|c| c.iso_code)
        }
        nested(&self.country)
            .or_else(|| nested(&self.registered_country))
            .or(self.country_code)
            .map(str::trim)
            .filter(|code| !code.is_empty())
    }
}

impl GeoDb {
    /// Reads the whole database at `path` into memory.
    pub fn open(path: &Path) -> anyhow::Result<Self> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read the geo database {}", path.display()))?;
        let reader = maxminddb::Reader::from_source(bytes).with_context(|| {
            format!(
                "{} is not a MaxMind-format (.mmdb) database",
                path.display()
            )
        })?;
        Ok(Self { reader })
    }

    /// The ISO 3166-1 alpha-2 code (uppercase) of `ip`'s country, or `None` when the database has no entry
    /// for it (private, loopback and unallocated addresses included). IPv4-mapped IPv6 addresses are looked up
    /// as the IPv4 address they carry.
    pub fn country(&self, ip: IpAddr) -> Option<String> {
        let ip = ip.to_canonical();
        if is_special_purpose(ip) {
            // Not left to the database: geo-whois-asn-country (2026-06) maps 192.168.0.0/16, 172.16.0.0/12 and
            // 2001:db8::/32 to countries.
            return None;
        }
        match self.reader.lookup::<CountryRecord<'_>>(ip) {
            Ok(record) => record?.iso_code().map(str::to_ascii_uppercase),
            Err(err) => {
                // An IPv6 address in an IPv4-only database, or a corrupt record: unknown, not fatal.
                tracing::debug!(%ip, error = %err, "geo lookup failed");
                None
            }
        }
    }
}

/// Addresses that belong to no country: private, shared (CGNAT), loopback, link-local, documentation,
/// benchmarking, multicast and reserved space (RFC 6890 / the IANA special-purpose registries).
fn is_special_purpose(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_multicast()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 198 && (18..20).contains(&b))
        }
        IpAddr::V6(v6) => {
            let [first, second, ..] = v6.segments();
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && second == 0x0db8)
        }
    }
}

impl std::fmt::Debug for GeoDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let meta = &self.reader.metadata;
        f.debug_struct("GeoDb")
            .field("database_type", &meta.database_type)
            .field("ip_version", &meta.ip_version)
            .field("build_epoch", &meta.build_epoch)
            .finish()
    }
}

/// The peers whose `X-Forwarded-For` header is believed (`edge.trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies {
    nets: Vec<IpNet>,
}

impl TrustedProxies {
    /// Parses CIDRs ("10.0.0.0/8", "2001:db8::/32") and bare addresses ("192.0.2.7", a /32 or /128).
    pub fn parse(list: &[String]) -> anyhow::Result<Self> {
        let nets = list
            .iter()
            .map(|entry| parse_net(entry))
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(Self { nets })
    }

    /// The viewer's address: `peer` unless `peer` is trusted, then the right-most address of
    /// X-Forwarded-For that is not itself trusted (walking right to left), falling back to the left-most.
    ///
    /// Every `X-Forwarded-For` header counts, in order, as one comma-separated list. Entries that are not an
    /// address ("unknown", garbage) are skipped; `[v6]:port` and `v4:port` forms are accepted. IPv4-mapped
    /// IPv6 addresses are returned as IPv4. With no usable entry the answer is `peer`.
    pub fn client_ip(&self, peer: IpAddr, headers: &http::HeaderMap) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.is_trusted(peer) {
            return peer;
        }
        let hops: Vec<IpAddr> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .filter_map(parse_hop)
            .collect();
        hops.iter()
            .rev()
            .find(|hop| !self.is_trusted(**hop))
            .or(hops.first())
            .copied()
            .unwrap_or(peer)
    }

    fn is_trusted(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|net| net.contains(&ip))
    }
}

fn parse_net(entry: &str) -> anyhow::Result<IpNet> {
    let text = entry.trim();
    if let Ok(net) = text.parse::<IpNet>() {
        return Ok(net.trunc());
    }
    match text.parse::<IpAddr>() {
        Ok(ip) => Ok(IpNet::from(ip.to_canonical())),
        Err(_) => Err(anyhow!(
            "edge.trusted_proxies: {entry:?} is neither a CIDR (like \"10.0.0.0/8\") nor an IP address"
        )),
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port ("192.0.2.1:4711", "[2001:db8::1]:443").
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let text = entry.trim();
    let ip = text
        .parse::<IpAddr>()
        .ok()
        .or_else(|| text.parse::<SocketAddr>().ok().map(|sa| sa.ip()))
        .or_else(|| {
            let bracketed = text.strip_prefix('[')?.strip_suffix(']')?;
            bracketed.parse::<IpAddr>().ok()
        })?;
    Some(ip.to_canonical())
}

/// Whether a viewer from `country` (None = unknown) may be served under `rule`.
///
/// `none` serves everyone; `allow` serves only the listed countries; `block` serves all but them. A viewer whose
/// country is unknown is served under `allow` and `block` only when `allow_unknown` is set. Codes compare
/// without regard to case.
pub fn allowed(rule: &GeoRestriction, country: Option<&str>) -> bool {
    if rule.mode == GeoMode::None {
        return true;
    }
    let Some(country) = country else {
        return rule.allow_unknown;
    };
    let listed = rule
        .countries
        .iter()
        .any(|c| c.trim().eq_ignore_ascii_case(country.trim()));
    match rule.mode {
        GeoMode::Allow => listed,
        GeoMode::Block => !listed,
        GeoMode::None => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::{HeaderMap, HeaderValue};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn parse_accepts_cidrs_and_bare_addresses() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.7", " 2001:db8::/32 ", "fd00::1"]);
        assert!(p.is_trusted(ip("10.1.2.3")));
        assert!(p.is_trusted(ip("192.0.2.7")));
        assert!(!p.is_trusted(ip("192.0.2.8")));
        assert!(p.is_trusted(ip("2001:db8:1::5")));
        assert!(p.is_trusted(ip("fd00::1")));
        assert!(!p.is_trusted(ip("fd00::2")));
    }

    #[test]
    fn parse_error_names_the_bad_entry() {
        let err = TrustedProxies::parse(&["10.0.0.0/8".into(), "10.0.0.0/33".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"10.0.0.0/33\""), "{err}");
        let err = TrustedProxies::parse(&["proxy.example".into()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("proxy.example"), "{err}");
    }

    #[test]
    fn untrusted_peer_ignores_forwarded_for() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = xff(&["203.0.113.9"]);
        assert_eq!(p.client_ip(ip("198.51.100.1"), &h), ip("198.51.100.1"));
        let none = TrustedProxies::default();
        assert_eq!(none.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }

    #[test]
    fn trusted_peer_takes_the_rightmost_untrusted_hop() {
        let p = proxies(&["10.0.0.0/8"]);
        // The viewer forged the left-most entry; the first untrusted hop from the right is what our proxy saw.
        let h = xff(&["1.2.3.4, 203.0.113.9"]);
        assert_eq!(p.client_ip(ip("10.0.0.5"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn chains_of_trusted_proxies_are_walked() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.0/24"]);
        let h = xff(&["1.2.3.4, 203.0.113.9, 192.0.2.10, 10.9.9.9"]);
        assert_eq!(p.client_ip(ip("10.0.0.5"), &h), ip("203.0.113.9"));
        // Several header lines form one list, in order.
        let h = xff(&["1.2.3.4, 203.0.113.9", "192.0.2.10", "10.9.9.9"]);
        assert_eq!(p.client_ip(ip("10.0.0.5"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn all_hops_trusted_falls_back_to_the_leftmost() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = xff(&["10.1.1.1, 10.2.2.2"]);
        assert_eq!(p.client_ip(ip("10.0.0.5"), &h), ip("10.1.1.1"));
    }

    #[test]
    fn garbage_entries_are_skipped() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = xff(&["203.0.113.9, unknown, , not-an-ip, 10.2.2.2, 999.1.1.1"]);
        assert_eq!(p.client_ip(ip("10.0.0.5"), &h), ip("203.0.113.9"));
        // Nothing usable at all: the peer.
        let h = xff(&["unknown, garbage"]);
        assert_eq!(p.client_ip(ip("10.0.0.5"), &h), ip("10.0.0.5"));
        assert_eq!(
            p.client_ip(ip("10.0.0.5"), &HeaderMap::new()),
            ip("10.0.0.5")
        );
        // A value that is not visible ASCII is skipped as a whole.
        let mut h = xff(&["203.0.113.9"]);
        h.append(
            "x-forwarded-for",
            HeaderValue::from_bytes(b"198.51.100.\xff").unwrap(),
        );
        assert_eq!(p.client_ip(ip("10.0.0.5"), &h), ip("203.0.113.9"));
    }

    #[test]
    fn ports_and_brackets_are_accepted() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = xff(&["203.0.113.9:4711"]);
        assert_eq!(p.client_ip(ip("10.0.0.5"), &h), ip("203.0.113.9"));
        let h = xff(&["[2001:db8::7]:443"]);
        assert_eq!(p.client_ip(ip("10.0.0.5"), &h), ip("2001:db8::7"));
        let h = xff(&["[2001:db8::8]"]);
        assert_eq!(p.client_ip(ip("10.0.0.5"), &h), ip("2001:db8::8"));
    }

    #[test]
    fn ipv6_peers_and_hops() {
        let p = proxies(&["fd00::/8", "2001:db8:ffff::/48"]);
        let h = xff(&["2001:db8::1, 2001:db8:ffff::2"]);
        assert_eq!(p.client_ip(ip("fd12::1"), &h), ip("2001:db8::1"));
        assert_eq!(p.client_ip(ip("2001:db8:1::1"), &h), ip("2001:db8:1::1"));
    }

    #[test]
    fn ipv4_mapped_addresses_are_treated_as_ipv4() {
        let p = proxies(&["10.0.0.0/8"]);
        let h = xff(&["::ffff:203.0.113.9"]);
        // A dual-stack listener reports IPv4 peers as mapped addresses; they still match the IPv4 CIDR.
        assert_eq!(p.client_ip(ip("::ffff:10.0.0.5"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::default().client_ip(ip("::ffff:198.51.100.1"), &HeaderMap::new()),
            ip("198.51.100.1")
        );
    }

    fn rule(mode: GeoMode, countries: &[&str], allow_unknown: bool) -> GeoRestriction {
        GeoRestriction {
            mode,
            countries: countries.iter().map(|c| c.to_string()).collect(),
            allow_unknown,
        }
    }

    #[test]
    fn mode_none_serves_everyone() {
        let r = rule(GeoMode::None, &["US"], false);
        assert!(allowed(&r, Some("US")));
        assert!(allowed(&r, Some("DE")));
        assert!(allowed(&r, None));
    }

    #[test]
    fn allowlist_serves_only_listed_countries() {
        let r = rule(GeoMode::Allow, &["US", "DE"], false);
        assert!(allowed(&r, Some("US")));
        assert!(allowed(&r, Some("de")));
        assert!(!allowed(&r, Some("JP")));
        assert!(!allowed(&r, None));
        assert!(allowed(&rule(GeoMode::Allow, &["US"], true), None));
        assert!(!allowed(&rule(GeoMode::Allow, &[], true), Some("US")));
    }

    #[test]
    fn blocklist_refuses_listed_countries() {
        let r = rule(GeoMode::Block, &["KP"], true);
        assert!(!allowed(&r, Some("KP")));
        assert!(allowed(&r, Some("US")));
        assert!(allowed(&r, None));
        assert!(!allowed(&rule(GeoMode::Block, &["KP"], false), None));
        assert!(allowed(&rule(GeoMode::Block, &[], false), Some("US")));
    }

    #[test]
    fn record_schemas_pick_the_right_code() {
        let maxmind = CountryRecord {
            country: Some(IsoCode {
                iso_code: Some("DE"),
            }),
            registered_country: Some(IsoCode {
                iso_code: Some("FR"),
            }),
            country_code: None,
        };
        assert_eq!(maxmind.iso_code(), Some("DE"));
        let registered = CountryRecord {
            country: Some(IsoCode { iso_code: None }),
            registered_country: Some(IsoCode {
                iso_code: Some("FR"),
            }),
            country_code: None,
        };
        assert_eq!(registered.iso_code(), Some("FR"));
        let flat = CountryRecord {
            country: None,
            registered_country: None,
            country_code: Some("jp"),
        };
        assert_eq!(flat.iso_code(), Some("jp"));
        let empty = CountryRecord {
            country: None,
            registered_country: None,
            country_code: Some(""),
        };
        assert_eq!(empty.iso_code(), None);
    }

    #[test]
    fn open_names_the_path_on_error() {
        let missing = Path::new("/nonexistent/strata-geo.mmdb");
        let err = format!("{:#}", GeoDb::open(missing).unwrap_err());
        assert!(err.contains("/nonexistent/strata-geo.mmdb"), "{err}");
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.mmdb");
        std::fs::write(&junk, b"not a database").unwrap();
        let err = format!("{:#}", GeoDb::open(&junk).unwrap_err());
        assert!(err.contains("junk.mmdb"), "{err}");
    }

    /// The real database named by `STRATA_TEST_MMDB` (see tests/clients/fetch-mmdb.sh). Without it the test is
    /// skipped, except under CI, which always provides it.
    fn real_db(test: &str) -> Option<GeoDb> {
        let Some(path) = std::env::var_os("STRATA_TEST_MMDB") else {
            if std::env::var_os("CI").is_some() {
                panic!(
                    "{test}: CI is set but STRATA_TEST_MMDB is not; \
                     export STRATA_TEST_MMDB=$(bash tests/clients/fetch-mmdb.sh)"
                );
            }
            eprintln!(
                "{test}: skipped, STRATA_TEST_MMDB is not set \
                 (export STRATA_TEST_MMDB=$(bash tests/clients/fetch-mmdb.sh))"
            );
            return None;
        };
        Some(GeoDb::open(Path::new(&path)).expect("STRATA_TEST_MMDB opens"))
    }

    #[test]
    fn real_db_knows_stable_allocations() {
        let Some(db) = real_db("real_db_knows_stable_allocations") else {
            return;
        };
        for (addr, want) in [
            ("8.8.8.8", "US"),              // Google Public DNS
            ("80.128.0.1", "DE"),           // Deutsche Telekom 80.128.0.0/11
            ("133.11.0.1", "JP"),           // University of Tokyo, 133.0.0.0/8 (JPNIC)
            ("210.130.0.1", "JP"),          // IIJ
            ("193.0.0.1", "NL"),            // RIPE NCC, Amsterdam
            ("2001:4860:4860::8888", "US"), // Google Public DNS
            ("2003::1", "DE"),              // Deutsche Telekom 2003::/19
            ("::ffff:8.8.8.8", "US"),       // IPv4-mapped: looked up as IPv4
        ] {
            assert_eq!(db.country(ip(addr)).as_deref(), Some(want), "{addr}");
        }
    }

    #[test]
    fn real_db_has_no_country_for_special_addresses() {
        let Some(db) = real_db("real_db_has_no_country_for_special_addresses") else {
            return;
        };
        for addr in [
            "127.0.0.1",
            "10.0.0.1",
            "192.168.1.1",
            "172.16.0.1",
            "100.64.0.1",
            "169.254.1.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "2001:db8::1",
            "::ffff:10.0.0.1",
        ] {
            assert_eq!(db.country(ip(addr)), None, "{addr}");
        }
    }

    #[test]
    fn special_purpose_ranges() {
        for addr in [
            "10.1.1.1",
            "100.127.255.255",
            "198.19.0.1",
            "240.0.0.1",
            "ff02::1",
            "fc00::1",
        ] {
            assert!(is_special_purpose(ip(addr)), "{addr}");
        }
        for addr in [
            "100.128.0.1",
            "198.20.0.1",
            "8.8.8.8",
            "2001:db9::1",
            "2003::1",
        ] {
            assert!(!is_special_purpose(ip(addr)), "{addr}");
        }
    }
}
