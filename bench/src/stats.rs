//! Measurement: per-worker, per-operation latency histograms (hdrhistogram, microseconds), byte and error
//! counts, merged once at the end; the shared live counters behind the once-a-second progress line, and the
//! second-by-second record of the measured phase taken from them.

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

/// Seconds recorded at most (a day): a longer run's report covers its first day second by second.
const MAX_SECONDS: usize = 86_400;

/// What finished in each whole second of the measured phase, counted from its start: successful operations,
/// their bytes (multipart parts count as they finish) and failures. A last part-second is left out, as a rate
/// over a fraction of a second would be noise.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct PerSecond {
    pub(crate) ops: Vec<u64>,
    pub(crate) bytes: Vec<u64>,
    pub(crate) errors: Vec<u64>,
}

/// The slowest, median and fastest second of a [`PerSecond`] record.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Spread {
    pub(crate) seconds: usize,
    /// Operations per second: slowest, median, fastest.
    pub(crate) ops: [u64; 3],
    /// MiB per second: slowest, median, fastest.
    pub(crate) mib: [f64; 3],
}

impl PerSecond {
    /// The spread of the seconds; `None` under two (no spread to speak of).
    pub(crate) fn spread(&self) -> Option<Spread> {
        fn three(values: &[u64]) -> [u64; 3] {
            let mut v = values.to_vec();
            v.sort_unstable();
            [v[0], v[v.len() / 2], v[v.len() - 1]]
        }
        if self.ops.len() < 2 {
            return None;
        }
        let bytes = three(&self.bytes);
        Some(Spread {
            seconds: self.ops.len(),
            ops: three(&self.ops),
            mib: bytes.map(|b| b as f64 / (1u64 << 20) as f64),
        })
    }

    fn push(&mut self, (ops, bytes, errors): (u64, u64, u64)) {
        self.ops.push(ops);
        self.bytes.push(bytes);
        self.errors.push(errors);
    }
}

/// Records [`PerSecond`] from the live counters while a phase runs.
pub(crate) struct SecondSampler {
    task: tokio::task::JoinHandle<()>,
    seconds: std::sync::Arc<std::sync::Mutex<PerSecond>>,
}

impl SecondSampler {
    /// Starts sampling `progress` every second from now.
    pub(crate) fn start(progress: std::sync::Arc<Progress>) -> SecondSampler {
        let seconds = std::sync::Arc::new(std::sync::Mutex::new(PerSecond::default()));
        let record = seconds.clone();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut last = progress.snapshot();
            for n in 1..=MAX_SECONDS as u32 {
                // At whole seconds from the start, not one second after each wake-up: no drift.
                tokio::time::sleep_until(start + Duration::from_secs(u64::from(n))).await;
                let now = progress.snapshot();
                let delta = (now.0 - last.0, now.1 - last.1, now.2 - last.2);
                last = now;
                record.lock().unwrap_or_else(|e| e.into_inner()).push(delta);
            }
        });
        SecondSampler { task, seconds }
    }

    /// Stops sampling; the whole seconds recorded.
    pub(crate) fn finish(self) -> PerSecond {
        self.task.abort();
        std::mem::take(&mut *self.seconds.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn the_sampler_records_whole_seconds_only() {
        let progress = std::sync::Arc::new(Progress::default());
        let sampler = SecondSampler::start(progress.clone());
        for second in 0..3u64 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            for _ in 0..=second {
                progress.add(&Ok(10));
            }
            progress.add(&Err(OpError::Timeout));
            tokio::time::sleep(Duration::from_millis(600)).await;
        }
        // Half a second more: not a whole one, so not recorded.
        tokio::time::sleep(Duration::from_millis(100)).await;
        progress.add(&Ok(10));
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(
            sampler.finish(),
            PerSecond {
                ops: vec![1, 2, 3],
                bytes: vec![10, 20, 30],
                errors: vec![1, 1, 1],
            }
        );
    }

    #[test]
    fn the_spread_is_of_whole_seconds() {
        let one = PerSecond {
            ops: vec![5],
            bytes: vec![5 << 20],
            errors: vec![0],
        };
        assert_eq!(one.spread(), None);
        let four = PerSecond {
            ops: vec![9, 3, 7, 8],
            bytes: vec![9 << 20, 3 << 20, 7 << 20, 8 << 20],
            errors: vec![0; 4],
        };
        assert_eq!(
            four.spread(),
            Some(Spread {
                seconds: 4,
                ops: [3, 8, 9],
                mib: [3.0, 8.0, 9.0],
            })
        );
    }

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
