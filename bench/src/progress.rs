//! What a run shows on stderr while it works: a live indicatif bar per phase (operations per second and MiB/s
//! over the last second, errors, elapsed and remaining time) when stderr is a terminal, and one summary line
//! per phase. Without the bar (`--json`, or a stderr that is not a terminal, as in CI logs) a progress line
//! every [`LINE_EVERY`] of a phase takes its place. `--quiet` hides all of it.

use std::io::IsTerminal as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How often the bar is redrawn.
const TICK: Duration = Duration::from_millis(250);
/// The window the rates are measured over.
const RATE_WINDOW: Duration = Duration::from_secs(1);
/// How often a progress line is printed where there is no bar.
const LINE_EVERY: Duration = Duration::from_secs(10);
const _: () = assert!(LINE_EVERY.as_millis() >= RATE_WINDOW.as_millis());

/// What to show on stderr.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Output {
    /// The live bar.
    pub(crate) bar: bool,
    /// Phase summaries and setup messages.
    pub(crate) lines: bool,
}

impl Output {
    pub(crate) fn new(quiet: bool, json: bool) -> Output {
        Output {
            bar: !quiet && !json && std::io::stderr().is_terminal(),
            lines: !quiet,
        }
    }
}

/// How long a phase runs: a number of operations or a time.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Length {
    Count(u64),
    Time(Duration),
}

/// Reads `(ops, bytes, errors)` so far.
pub(crate) type Counters = Arc<dyn Fn() -> (u64, u64, u64) + Send + Sync>;

/// The live bar of one phase; hidden when the output has no bar.
pub(crate) struct PhaseBar {
    bar: ProgressBar,
    ticker: Option<tokio::task::JoinHandle<()>>,
}

impl PhaseBar {
    /// Starts drawing `label`'s progress from `counters` (counted from their values now).
    pub(crate) fn start(out: Output, label: &str, length: Length, counters: Counters) -> PhaseBar {
        if !out.bar {
            return PhaseBar {
                bar: ProgressBar::hidden(),
                ticker: out
                    .lines
                    .then(|| tokio::spawn(lines(label.to_owned(), counters))),
            };
        }
        let total = match length {
            Length::Count(n) => n,
            Length::Time(d) => d.as_millis() as u64,
        };
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix:>9} [{elapsed_precise}] {wide_bar} {percent:>3}% eta {eta:<4} {msg}",
            )
            .expect("a valid template"),
        );
        bar.set_prefix(label.to_owned());
        let ticker = tokio::spawn(tick(bar.clone(), length, counters));
        PhaseBar {
            bar,
            ticker: Some(ticker),
        }
    }

    /// Removes the bar.
    pub(crate) fn finish(self) {
        if let Some(t) = self.ticker {
            t.abort();
        }
        self.bar.finish_and_clear();
    }
}

async fn tick(bar: ProgressBar, length: Length, counters: Counters) {
    let started = Instant::now();
    let (ops0, bytes0, errors0) = counters();
    let mut window = Window::new(started, ops0, bytes0);
    let mut interval = tokio::time::interval(TICK);
    loop {
        interval.tick().await;
        let (ops, bytes, errors) = counters();
        let now = Instant::now();
        let (ops_s, mib_s) = window.rates(now, ops, bytes);
        bar.set_position(match length {
            Length::Count(_) => ops + errors - ops0 - errors0,
            Length::Time(_) => now.duration_since(started).as_millis() as u64,
        });
        bar.set_message(format!(
            "{ops_s:>9.1} ops/s {mib_s:>9.1} MiB/s  {} errors",
            errors - errors0
        ));
    }
}

/// A progress line every [`LINE_EVERY`]: the phase's totals so far and the rates since the last line.
async fn lines(label: String, counters: Counters) {
    let started = Instant::now();
    let (ops0, bytes0, errors0) = counters();
    // Lines are further apart than the rate window, so each line's rates cover the time since the last.
    let mut window = Window::new(started, ops0, bytes0);
    let mut interval = tokio::time::interval_at((started + LINE_EVERY).into(), LINE_EVERY);
    loop {
        let now = interval.tick().await.into_std();
        let (ops, bytes, errors) = counters();
        let (ops_s, mib_s) = window.rates(now, ops, bytes);
        eprintln!(
            "[{label}] {:.0}s: {} ops, {:.1} MiB, {} errors; since the last line: {ops_s:.1} ops/s, {mib_s:.1} MiB/s",
            now.duration_since(started).as_secs_f64(),
            ops - ops0,
            (bytes - bytes0) as f64 / (1u64 << 20) as f64,
            errors - errors0,
        );
    }
}

/// Rates over roughly the last [`RATE_WINDOW`]: the counters a window ago are kept and moved on.
struct Window {
    at: Instant,
    ops: u64,
    bytes: u64,
    rates: (f64, f64),
}

impl Window {
    fn new(at: Instant, ops: u64, bytes: u64) -> Window {
        Window {
            at,
            ops,
            bytes,
            rates: (0.0, 0.0),
        }
    }

    /// `(ops/s, MiB/s)` since the window's start; a new window starts once this one is a second old.
    fn rates(&mut self, now: Instant, ops: u64, bytes: u64) -> (f64, f64) {
        let dt = now.duration_since(self.at);
        if dt >= RATE_WINDOW {
            let secs = dt.as_secs_f64();
            self.rates = (
                (ops - self.ops) as f64 / secs,
                (bytes - self.bytes) as f64 / (1u64 << 20) as f64 / secs,
            );
            (self.at, self.ops, self.bytes) = (now, ops, bytes);
        }
        self.rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_cover_the_last_window() {
        let t0 = Instant::now();
        let mut w = Window::new(t0, 0, 0);
        assert_eq!(
            w.rates(t0 + Duration::from_millis(500), 50, 1 << 20),
            (0.0, 0.0)
        );
        let (ops, mib) = w.rates(t0 + Duration::from_secs(2), 200, 4 << 20);
        assert!((ops - 100.0).abs() < 1e-9 && (mib - 2.0).abs() < 1e-9);
        // held until the next window is complete
        assert_eq!(
            w.rates(t0 + Duration::from_millis(2500), 1000, 1 << 30),
            (ops, mib)
        );
    }

    #[test]
    fn no_bar_when_quiet_or_json() {
        assert!(!Output::new(true, false).bar && !Output::new(true, false).lines);
        assert!(!Output::new(false, true).bar && Output::new(false, true).lines);
    }
}
