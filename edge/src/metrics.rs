//! The edge's Prometheus metrics, served on the admin listener.
//!
//! This module owns the counters (viewer requests by result type and status class, bytes sent, origin
//! fetches and failures, coalesced requests, invalidated entries), the origin latency histogram, and their
//! rendering in the Prometheus text exposition format 0.0.4. Recording is a handful of relaxed atomic adds:
//! no locks, no allocation on the request path. Cache sizes are gauges owned by the cache and passed in at
//! render time.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::ResultType;

/// Every result type, in rendering order.
const RESULTS: [ResultType; 5] = [
    ResultType::Hit,
    ResultType::RefreshHit,
    ResultType::Miss,
    ResultType::Error,
    ResultType::Redirect,
];

/// Status classes counted by `strata_edge_responses_total`.
const CLASSES: [&str; 4] = ["2xx", "3xx", "4xx", "5xx"];

/// Upper bounds of the origin latency histogram buckets, in seconds (Prometheus' default buckets), and the
/// same in nanoseconds for the comparison on the request path.
const BUCKETS_SECONDS: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
];
const BUCKETS_NANOS: [u64; 11] = [
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
];

/// The edge's counters. Share one behind an `Arc`; every method takes `&self`.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: [AtomicU64; 5],
    responses: [AtomicU64; 4],
    bytes_sent: AtomicU64,
    origin_requests: AtomicU64,
    origin_errors: AtomicU64,
    /// Per-bucket (not cumulative) observation counts; the last slot is the +Inf overflow.
    latency_buckets: [AtomicU64; 12],
    latency_sum_nanos: AtomicU64,
    coalesced: AtomicU64,
    invalidated: AtomicU64,
}

/// Cache sizes at render time, as the cache tiers report them.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheGauges {
    /// Bytes held by the memory tier.
    pub memory_bytes: u64,
    /// Entries held by the memory tier.
    pub memory_entries: u64,
    /// Bytes held by the disk tier (0 without one).
    pub disk_bytes: u64,
    /// Entries held by the disk tier (0 without one).
    pub disk_entries: u64,
}

impl Metrics {
    /// All counters at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// One finished viewer request.
    pub fn request(&self, result: ResultType, status: u16, bytes_sent: u64) {
        self.requests[result_index(result)].fetch_add(1, Relaxed);
        if let Some(class) = class_index(status) {
            self.responses[class].fetch_add(1, Relaxed);
        }
        self.bytes_sent.fetch_add(bytes_sent, Relaxed);
    }

    /// One origin fetch: its latency to response headers, and whether it failed (connect error, timeout, 5xx).
    pub fn origin_fetch(&self, latency: Duration, failed: bool) {
        self.origin_requests.fetch_add(1, Relaxed);
        if failed {
            self.origin_errors.fetch_add(1, Relaxed);
        }
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        let bucket = BUCKETS_NANOS
            .iter()
            .position(|&le| nanos <= le)
            .unwrap_or(BUCKETS_NANOS.len());
        self.latency_buckets[bucket].fetch_add(1, Relaxed);
        // Saturating, so that one absurd observation cannot wrap the sum around.
        let _ = self
            .latency_sum_nanos
            .fetch_update(Relaxed, Relaxed, |sum| Some(sum.saturating_add(nanos)));
    }

    /// A request that waited for another's fetch (coalesced) instead of going to the origin.
    pub fn coalesced(&self) {
        self.coalesced.fetch_add(1, Relaxed);
    }

    /// An invalidation removed `entries` cached entries.
    pub fn invalidated(&self, entries: u64) {
        self.invalidated.fetch_add(entries, Relaxed);
    }

    /// Prometheus text exposition format 0.0.4 (`# HELP`, `# TYPE` lines; counters end in `_total`).
    pub fn render(&self, cache: &CacheGauges) -> String {
        let mut out = String::with_capacity(4096);

        header(
            &mut out,
            "strata_edge_requests_total",
            "counter",
            "Viewer requests answered, by x-edge-result-type.",
        );
        for (i, result) in RESULTS.iter().enumerate() {
            let n = self.requests[i].load(Relaxed);
            let _ = writeln!(
                out,
                "strata_edge_requests_total{{result=\"{}\"}} {n}",
                result.as_str()
            );
        }

        header(
            &mut out,
            "strata_edge_responses_total",
            "counter",
            "Viewer responses, by status class.",
        );
        for (i, class) in CLASSES.iter().enumerate() {
            let n = self.responses[i].load(Relaxed);
            let _ = writeln!(out, "strata_edge_responses_total{{class=\"{class}\"}} {n}");
        }

        counter(
            &mut out,
            "strata_edge_bytes_sent_total",
            "Bytes sent to viewers.",
            self.bytes_sent.load(Relaxed),
        );
        counter(
            &mut out,
            "strata_edge_origin_requests_total",
            "Requests sent to origins.",
            self.origin_requests.load(Relaxed),
        );
        counter(
            &mut out,
            "strata_edge_origin_errors_total",
            "Origin requests that failed: connection error, timeout or 5xx.",
            self.origin_errors.load(Relaxed),
        );

        header(
            &mut out,
            "strata_edge_origin_latency_seconds",
            "histogram",
            "Time from sending an origin request to receiving its response headers.",
        );
        let mut cumulative = 0u64;
        for (i, le) in BUCKETS_SECONDS.iter().enumerate() {
            cumulative += self.latency_buckets[i].load(Relaxed);
            let _ = writeln!(
                out,
                "strata_edge_origin_latency_seconds_bucket{{le=\"{le}\"}} {cumulative}"
            );
        }
        cumulative += self.latency_buckets[BUCKETS_NANOS.len()].load(Relaxed);
        let _ = writeln!(
            out,
            "strata_edge_origin_latency_seconds_bucket{{le=\"+Inf\"}} {cumulative}"
        );
        let sum = Duration::from_nanos(self.latency_sum_nanos.load(Relaxed)).as_secs_f64();
        let _ = writeln!(out, "strata_edge_origin_latency_seconds_sum {sum}");
        let _ = writeln!(out, "strata_edge_origin_latency_seconds_count {cumulative}");

        counter(
            &mut out,
            "strata_edge_coalesced_total",
            "Viewer requests that waited for another request's origin fetch instead of making their own.",
            self.coalesced.load(Relaxed),
        );
        counter(
            &mut out,
            "strata_edge_invalidated_entries_total",
            "Cached entries removed by invalidations.",
            self.invalidated.load(Relaxed),
        );

        header(
            &mut out,
            "strata_edge_cache_bytes",
            "gauge",
            "Bytes held by each cache tier.",
        );
        let _ = writeln!(
            out,
            "strata_edge_cache_bytes{{tier=\"memory\"}} {}",
            cache.memory_bytes
        );
        let _ = writeln!(
            out,
            "strata_edge_cache_bytes{{tier=\"disk\"}} {}",
            cache.disk_bytes
        );
        header(
            &mut out,
            "strata_edge_cache_entries",
            "gauge",
            "Entries held by each cache tier.",
        );
        let _ = writeln!(
            out,
            "strata_edge_cache_entries{{tier=\"memory\"}} {}",
            cache.memory_entries
        );
        let _ = writeln!(
            out,
            "strata_edge_cache_entries{{tier=\"disk\"}} {}",
            cache.disk_entries
        );
        out
    }
}

fn result_index(result: ResultType) -> usize {
    match result {
        ResultType::Hit => 0,
        ResultType::RefreshHit => 1,
        ResultType::Miss => 2,
        ResultType::Error => 3,
        ResultType::Redirect => 4,
    }
}

/// 2xx → 0 … 5xx → 3; other statuses (1xx, out of range) are not counted by class.
fn class_index(status: u16) -> Option<usize> {
    match status {
        200..=599 => Some(usize::from(status / 100 - 2)),
        _ => None,
    }
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

fn counter(out: &mut String, name: &str, help: &str, value: u64) {
    header(out, name, "counter", help);
    let _ = writeln!(out, "{name} {value}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Parses the exposition: every non-comment line must be `name{labels} value` or `name value`; returns
    /// a map from `name{labels}` to value, and checks each sample's family has HELP and TYPE lines before it.
    fn parse(text: &str) -> BTreeMap<String, f64> {
        let mut samples = BTreeMap::new();
        let mut typed: BTreeMap<String, String> = BTreeMap::new();
        let mut helped = std::collections::BTreeSet::new();
        assert!(text.ends_with('\n'));
        for line in text.lines() {
            assert!(!line.is_empty(), "blank line");
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP text");
                assert!(!help.is_empty());
                assert!(helped.insert(name.to_owned()), "duplicate HELP {name}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE kind");
                assert!(["counter", "gauge", "histogram"].contains(&kind), "{kind}");
                if kind == "counter" {
                    assert!(
                        name.ends_with("_total"),
                        "counter {name} must end in _total"
                    );
                }
                assert!(
                    typed.insert(name.to_owned(), kind.to_owned()).is_none(),
                    "duplicate TYPE {name}"
                );
                continue;
            }
            assert!(!line.starts_with('#'), "stray comment {line}");
            let (key, value) = line.rsplit_once(' ').expect("sample has a value");
            let value: f64 = value.parse().expect("value is a number");
            let name = match key.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect("labels closed");
                    for pair in labels.split(',') {
                        let (k, v) = pair.split_once('=').expect("label k=v");
                        assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
                        assert!(v.len() >= 2 && v.starts_with('"') && v.ends_with('"'));
                    }
                    name
                }
                None => key,
            };
            assert!(
                name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{name}"
            );
            let family = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| {
                    name.strip_suffix(s)
                        .filter(|f| typed.get(*f).is_some_and(|k| k == "histogram"))
                })
                .unwrap_or(name);
            assert!(typed.contains_key(family), "{name} has no TYPE before it");
            assert!(helped.contains(family), "{name} has no HELP before it");
            assert!(
                samples.insert(key.to_owned(), value).is_none(),
                "duplicate {key}"
            );
        }
        samples
    }

    #[test]
    fn empty_render_parses() {
        let m = Metrics::new();
        let s = parse(&m.render(&CacheGauges::default()));
        assert_eq!(s["strata_edge_requests_total{result=\"Hit\"}"], 0.0);
        assert_eq!(
            s["strata_edge_origin_latency_seconds_bucket{le=\"+Inf\"}"],
            0.0
        );
        assert_eq!(s["strata_edge_origin_latency_seconds_count"], 0.0);
        assert_eq!(s["strata_edge_origin_latency_seconds_sum"], 0.0);
        assert_eq!(s.len(), 5 + 4 + 3 + 12 + 2 + 2 + 4);
    }

    #[test]
    fn counts_add_up() {
        let m = Metrics::new();
        let requests = [
            (ResultType::Hit, 200, 100),
            (ResultType::Hit, 206, 10),
            (ResultType::RefreshHit, 304, 0),
            (ResultType::Miss, 200, 1000),
            (ResultType::Miss, 404, 50),
            (ResultType::Error, 403, 20),
            (ResultType::Error, 502, 30),
            (ResultType::Redirect, 301, 5),
            (ResultType::Error, 101, 0),
        ];
        for (r, status, bytes) in requests {
            m.request(r, status, bytes);
        }
        m.coalesced();
        m.coalesced();
        m.invalidated(7);
        m.invalidated(0);
        m.invalidated(3);
        let gauges = CacheGauges {
            memory_bytes: 1,
            memory_entries: 2,
            disk_bytes: 3,
            disk_entries: 4,
        };
        let s = parse(&m.render(&gauges));
        let req = |r: &str| s[&format!("strata_edge_requests_total{{result=\"{r}\"}}")];
        assert_eq!(req("Hit"), 2.0);
        assert_eq!(req("RefreshHit"), 1.0);
        assert_eq!(req("Miss"), 2.0);
        assert_eq!(req("Error"), 3.0);
        assert_eq!(req("Redirect"), 1.0);
        let class = |c: &str| s[&format!("strata_edge_responses_total{{class=\"{c}\"}}")];
        assert_eq!(class("2xx"), 3.0);
        assert_eq!(class("3xx"), 2.0);
        assert_eq!(class("4xx"), 2.0);
        assert_eq!(class("5xx"), 1.0);
        let total_requests: f64 = RESULTS.iter().map(|r| req(r.as_str())).sum();
        let total_classes: f64 = CLASSES.iter().map(|c| class(c)).sum();
        // Every request except the 101 has a class.
        assert_eq!(total_requests, requests.len() as f64);
        assert_eq!(total_classes, total_requests - 1.0);
        assert_eq!(s["strata_edge_bytes_sent_total"], 1215.0);
        assert_eq!(s["strata_edge_coalesced_total"], 2.0);
        assert_eq!(s["strata_edge_invalidated_entries_total"], 10.0);
        assert_eq!(s["strata_edge_cache_bytes{tier=\"memory\"}"], 1.0);
        assert_eq!(s["strata_edge_cache_entries{tier=\"memory\"}"], 2.0);
        assert_eq!(s["strata_edge_cache_bytes{tier=\"disk\"}"], 3.0);
        assert_eq!(s["strata_edge_cache_entries{tier=\"disk\"}"], 4.0);
    }

    #[test]
    fn histogram_is_cumulative_and_monotone() {
        let m = Metrics::new();
        let latencies_ms = [
            1u64, 5, 6, 10, 30, 99, 100, 101, 700, 1_000, 4_000, 10_000, 10_001, 60_000,
        ];
        for (i, ms) in latencies_ms.iter().enumerate() {
            m.origin_fetch(Duration::from_millis(*ms), i % 3 == 0);
        }
        m.origin_fetch(Duration::MAX, true);
        let text = m.render(&CacheGauges::default());
        let s = parse(&text);
        let n = latencies_ms.len() + 1;
        assert_eq!(s["strata_edge_origin_requests_total"], n as f64);
        assert_eq!(s["strata_edge_origin_errors_total"], 6.0);

        // Buckets in the order rendered, le ascending, counts cumulative and monotone, +Inf = count.
        let buckets: Vec<(f64, f64)> = text
            .lines()
            .filter_map(|l| l.strip_prefix("strata_edge_origin_latency_seconds_bucket{le=\""))
            .map(|l| {
                let (le, v) = l.split_once("\"} ").unwrap();
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (le, v.parse().unwrap())
            })
            .collect();
        assert_eq!(buckets.len(), 12);
        for w in buckets.windows(2) {
            assert!(w[0].0 < w[1].0, "le ascending");
            assert!(w[0].1 <= w[1].1, "cumulative counts never decrease");
        }
        for (le, count) in &buckets {
            let expected = latencies_ms
                .iter()
                .filter(|&&ms| (ms as f64) / 1000.0 <= *le)
                .count()
                + usize::from(le.is_infinite());
            assert_eq!(*count, expected as f64, "le={le}");
        }
        assert_eq!(buckets[11].1, n as f64);
        assert_eq!(s["strata_edge_origin_latency_seconds_count"], n as f64);
        // Duration::MAX saturates to u64::MAX nanoseconds in the sum; the sum is at least the finite part.
        assert!(s["strata_edge_origin_latency_seconds_sum"] > 76.0);
    }

    #[test]
    fn sum_is_in_seconds() {
        let m = Metrics::new();
        m.origin_fetch(Duration::from_millis(250), false);
        m.origin_fetch(Duration::from_millis(1_750), false);
        let s = parse(&m.render(&CacheGauges::default()));
        assert!((s["strata_edge_origin_latency_seconds_sum"] - 2.0).abs() < 1e-9);
        assert_eq!(
            s["strata_edge_origin_latency_seconds_bucket{le=\"0.25\"}"],
            1.0
        );
        assert_eq!(
            s["strata_edge_origin_latency_seconds_bucket{le=\"2.5\"}"],
            2.0
        );
    }

    #[test]
    fn concurrent_recording() {
        let m = std::sync::Arc::new(Metrics::new());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let m = m.clone();
                std::thread::spawn(move || {
                    for i in 0..1000u64 {
                        m.request(ResultType::Hit, 200, 1);
                        m.origin_fetch(Duration::from_millis(i % 20), false);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = parse(&m.render(&CacheGauges::default()));
        assert_eq!(s["strata_edge_requests_total{result=\"Hit\"}"], 8000.0);
        assert_eq!(s["strata_edge_bytes_sent_total"], 8000.0);
        assert_eq!(s["strata_edge_origin_latency_seconds_count"], 8000.0);
    }
}
