//! Measurement: per-worker, per-operation latency histograms (hdrhistogram, microseconds), byte and error
//! counts, merged once at the end; the shared live counters behind the once-a-second progress line.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::client::OpError;
use crate::units::OpKind;

/// Highest latency the histograms track exactly (one hour, in microseconds); longer ones are clamped.
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What one worker (or, merged, the whole run) measured for one kind of operation.
pub(crate) struct KindStats {
    /// Latencies of successful operations, in microseconds.
    pub(crate) hist: Histogram<u64>,
    /// Successful operations.
    pub(crate) ops: u64,
    /// Object bytes moved by successful operations (uploaded or downloaded).
    pub(crate) bytes: u64,
    /// Failed operations by [`OpError`] label.
    pub(crate) errors: BTreeMap<String, u64>,
}

impl KindStats {
    fn new() -> KindStats {
        KindStats {
            hist: Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("valid histogram bounds"),
            ops: 0,
            bytes: 0,
            errors: BTreeMap::new(),
        }
    }

    /// Number of failed operations.
    pub(crate) fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }

    fn merge(&mut self, other: &KindStats) {
        self.hist
            .add(&other.hist)
            .expect("histograms share the same bounds");
        self.ops += other.ops;
        self.bytes += other.bytes;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
    }
}

/// Measurements per operation kind.
#[derive(Default)]
pub(crate) struct Stats {
    kinds: BTreeMap<OpKind, KindStats>,
    /// Edge-get mode: how the edge says it answered successful GETs.
    pub(crate) edge_cache: CacheCounts,
}

/// Successful edge GETs by their `X-Cache` header: hits (`Hit from ...`, `RefreshHit ...`, `TCP_HIT`), misses,
/// other values, and answers without the header (a cache that does not say).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct CacheCounts {
    pub(crate) hit: u64,
    pub(crate) miss: u64,
    pub(crate) other: u64,
    pub(crate) absent: u64,
}

impl CacheCounts {
    /// Counts one answer with this `X-Cache` value (`None`: no header).
    pub(crate) fn count(&mut self, x_cache: Option<&str>) {
        let Some(v) = x_cache else {
            self.absent += 1;
            return;
        };
        let v = v.to_ascii_lowercase();
        // "Miss" is checked first: no miss value contains "hit", but be safe with odd ones like "hit-miss"
        if v.contains("miss") {
            self.miss += 1;
        } else if v.contains("hit") {
            self.hit += 1;
        } else {
            self.other += 1;
        }
    }

    fn merge(&mut self, other: &CacheCounts) {
        self.hit += other.hit;
        self.miss += other.miss;
        self.other += other.other;
        self.absent += other.absent;
    }

    /// Hits over the answers that said hit or miss; `None` when none did.
    pub(crate) fn hit_ratio(&self) -> Option<f64> {
        let said = self.hit + self.miss;
        (said > 0).then(|| self.hit as f64 / said as f64)
    }
}

impl Stats {
    /// Records one operation's outcome: its latency and bytes when it succeeded, its error label otherwise.
    pub(crate) fn record(
        &mut self,
        kind: OpKind,
        latency: Duration,
        outcome: &Result<u64, OpError>,
    ) {
        let s = self.kinds.entry(kind).or_insert_with(KindStats::new);
        match outcome {
            Ok(bytes) => {
                let us = u64::try_from(latency.as_micros()).unwrap_or(u64::MAX);
                s.hist.saturating_record(us.clamp(1, MAX_LATENCY_US));
                s.ops += 1;
                s.bytes += bytes;
            }
            Err(e) => *s.errors.entry(e.to_string()).or_default() += 1,
        }
    }

    /// Adds another worker's measurements.
    pub(crate) fn merge(&mut self, other: &Stats) {
        self.edge_cache.merge(&other.edge_cache);
        for (kind, s) in &other.kinds {
            self.kinds
                .entry(*kind)
                .or_insert_with(KindStats::new)
                .merge(s);
        }
    }

    /// The kinds that saw at least one operation, in [`OpKind`] order.
    pub(crate) fn kinds(&self) -> impl Iterator<Item = (OpKind, &KindStats)> {
        self.kinds.iter().map(|(k, s)| (*k, s))
    }

    /// All kinds merged into one, except the parts of multipart uploads (their bytes and errors are already
    /// those of their objects).
    pub(crate) fn total(&self) -> KindStats {
        let mut t = KindStats::new();
        for (_, s) in self.kinds.iter().filter(|(k, _)| **k != OpKind::Part) {
            t.merge(s);
        }
        t
    }
}

/// Counters shared by all workers, read by the progress line.
#[derive(Default)]
pub(crate) struct Progress {
    pub(crate) ops: AtomicU64,
    pub(crate) bytes: AtomicU64,
    pub(crate) errors: AtomicU64,
}

impl Progress {
    /// Counts one finished operation.
    pub(crate) fn add(&self, outcome: &Result<u64, OpError>) {
        match outcome {
            Ok(bytes) => {
                self.ops.fetch_add(1, Ordering::Relaxed);
                self.bytes.fetch_add(*bytes, Ordering::Relaxed);
            }
            Err(_) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts bytes moved by an operation still under way (the parts of a multipart upload).
    pub(crate) fn add_bytes(&self, bytes: u64) {
        self.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// `(ops, bytes, errors)` so far.
    pub(crate) fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.ops.load(Ordering::Relaxed),
            self.bytes.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_and_merge() {
        let mut a = Stats::default();
        a.record(OpKind::Get, Duration::from_millis(2), &Ok(100));
        a.record(OpKind::Get, Duration::from_millis(4), &Ok(100));
        let mut b = Stats::default();
        b.record(OpKind::Put, Duration::from_millis(8), &Ok(50));
        b.record(
            OpKind::Get,
            Duration::ZERO,
            &Err(OpError::Http {
                status: 404,
                code: Some("NoSuchKey".into()),
            }),
        );
        a.merge(&b);
        let kinds: Vec<_> = a.kinds().map(|(k, _)| k).collect();
        assert_eq!(kinds, [OpKind::Put, OpKind::Get]);
        let t = a.total();
        assert_eq!((t.ops, t.bytes, t.error_count()), (3, 250, 1));
        assert_eq!(t.errors.get("404 NoSuchKey"), Some(&1));
        assert_eq!(t.hist.max(), t.hist.highest_equivalent(8000));
        // parts stay out of the total
        a.record(OpKind::Part, Duration::from_millis(1), &Ok(1000));
        let t = a.total();
        assert_eq!((t.ops, t.bytes, t.error_count()), (3, 250, 1));
        let p = Progress::default();
        p.add(&Ok(10));
        p.add(&Err(OpError::Timeout));
        assert_eq!(p.snapshot(), (1, 10, 1));
    }

    #[test]
    fn x_cache_values_are_classified() {
        let mut c = CacheCounts::default();
        for v in [
            Some("Hit from strata"),
            Some("RefreshHit from cloudfront"),
            Some("TCP_HIT"),
            Some("Miss from strata"),
            Some("BYPASS"),
            None,
        ] {
            c.count(v);
        }
        assert_eq!(
            c,
            CacheCounts {
                hit: 3,
                miss: 1,
                other: 1,
                absent: 1
            }
        );
        assert_eq!(c.hit_ratio(), Some(0.75));
        assert_eq!(CacheCounts::default().hit_ratio(), None);
    }
}
