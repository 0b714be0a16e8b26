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

/// What finished in each second of the measured phase (see [`SecondSampler`]): successful operations, bytes
/// (multipart parts count as they finish, those of an upload that fails later too) and failures. A last
/// part-second is left out, as a rate over a fraction of a second would be noise.
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

/// How late the sampler may wake for a second to count: one it reads later covers more than a second (and
/// the next one less), so it is left out and the seconds start again from the late reading.
const LATE: Duration = Duration::from_millis(100);

/// Records [`PerSecond`] from the live counters while a phase runs, on a thread of its own: a busy runtime
/// delays its timers, and the record would then show the generator's own hiccups as the server's stalls.
pub(crate) struct SecondSampler {
    stop: std::sync::mpsc::Sender<()>,
    thread: std::thread::JoinHandle<PerSecond>,
}

impl SecondSampler {
    /// Starts sampling `progress` every second from now, until [`Self::finish`] or until `winding_down`
    /// says since when no operation starts any more: the seconds after that, with fewer and fewer
    /// operations under way, say nothing of the server's pace.
    pub(crate) fn start(
        progress: std::sync::Arc<Progress>,
        winding_down: impl Fn() -> Option<std::time::Instant> + Send + 'static,
    ) -> SecondSampler {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let mut from = std::time::Instant::now();
        let mut last = progress.snapshot();
        let thread = std::thread::Builder::new()
            .name("bench-seconds".into())
            .spawn(move || {
                let mut seconds = PerSecond::default();
                while seconds.ops.len() < MAX_SECONDS {
                    let due = from + Duration::from_secs(1);
                    let wait = due.saturating_duration_since(std::time::Instant::now());
                    if stopped.recv_timeout(wait) != Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                    {
                        break;
                    }
                    if winding_down().is_some_and(|at| at < due) {
                        break;
                    }
                    let now = progress.snapshot();
                    let read = std::time::Instant::now();
                    if read.duration_since(due) <= LATE {
                        seconds.push((now.0 - last.0, now.1 - last.1, now.2 - last.2));
                        from = due;
                    } else {
                        from = read;
                    }
                    last = now;
                }
                seconds
            })
            .expect("spawn the per-second sampler");
        SecondSampler { stop, thread }
    }

    /// Stops sampling; the whole seconds recorded.
    pub(crate) fn finish(self) -> PerSecond {
        drop(self.stop);
        self.thread.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sampler_records_whole_seconds_until_the_phase_winds_down() {
        let progress = std::sync::Arc::new(Progress::default());
        let ends = std::sync::Arc::new(std::sync::OnceLock::new());
        let winding = ends.clone();
        let sampler = SecondSampler::start(progress.clone(), move || winding.get().copied());
        let started = std::time::Instant::now();
        let at = |ms: u64| {
            let t = started + Duration::from_millis(ms);
            std::thread::sleep(t.saturating_duration_since(std::time::Instant::now()));
        };
        // Mid-second work, well away from the sampler's readings at 1 s and 2 s.
        at(400);
        progress.add(&Ok(10));
        progress.add(&Err(OpError::Timeout));
        at(1400);
        progress.add(&Ok(10));
        progress.add(&Ok(10));
        // The phase winds down at 2.5 s: the third second is not recorded, nor anything after.
        at(2500);
        ends.set(std::time::Instant::now()).unwrap();
        progress.add(&Ok(10));
        at(3300);
        assert_eq!(
            sampler.finish(),
            PerSecond {
                ops: vec![1, 2],
                bytes: vec![10, 20],
                errors: vec![1, 0],
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
