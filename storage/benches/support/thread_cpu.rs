//! A criterion measurement of the benchmarking thread's CPU time (`CLOCK_THREAD_CPUTIME_ID`) instead of wall time.
//!
//! The kernels benched with it are single-threaded, so the CPU time of the thread that runs them is their whole
//! cost, and that is the figure the server's CPU budget is made of. On a machine shared with other builds, wall
//! time also counts the time the thread waited for a core, which says nothing about the kernel. Caches and
//! memory bandwidth are still shared, so a busy machine can still slow a kernel a little.
//!
//! Shared by storage/benches/kernels.rs and gateway/benches/sigv4_chunk.rs (included there by `#[path]`).

use std::time::Duration;

use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use rustix::time::{ClockId, clock_gettime};

/// Thread CPU time; values are formatted (and throughput derived) exactly as criterion does for wall time.
pub(crate) struct ThreadCpuTime {
    wall: WallTime,
}

impl Default for ThreadCpuTime {
    fn default() -> Self {
        ThreadCpuTime { wall: WallTime }
    }
}

fn now() -> Duration {
    let t = clock_gettime(ClockId::ThreadCPUTime);
    // A CPU-time clock never reads negative; clamp rather than wrap if it ever did.
    Duration::new(
        u64::try_from(t.tv_sec).unwrap_or(0),
        u32::try_from(t.tv_nsec).unwrap_or(0),
    )
}

impl Measurement for ThreadCpuTime {
    type Intermediate = Duration;
    type Value = Duration;

    fn start(&self) -> Duration {
        now()
    }

    fn end(&self, started: Duration) -> Duration {
        now().saturating_sub(started)
    }

    fn add(&self, a: &Duration, b: &Duration) -> Duration {
        *a + *b
    }

    fn zero(&self) -> Duration {
        Duration::ZERO
    }

    fn to_f64(&self, value: &Duration) -> f64 {
        value.as_nanos() as f64
    }

    fn formatter(&self) -> &dyn ValueFormatter {
        self.wall.formatter()
    }
}
