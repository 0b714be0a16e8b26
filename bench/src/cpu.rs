//! CPU and memory accounting from `/proc`: user and system time of the generator itself (`/proc/self/stat`)
//! and, with `--server-pid`, of the server under test, plus the server's resident memory (`VmRSS`, `VmHWM`);
//! and the whole machine's busy and stolen time (`/proc/stat`), which says whether anything besides the run
//! used the cores it measured on. Linux only; elsewhere the figures are absent.

use std::time::Duration;

/// User and system CPU time consumed by a process so far.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct CpuTimes {
    pub(crate) user: Duration,
    pub(crate) system: Duration,
}

impl CpuTimes {
    /// Reads `/proc/<pid>/stat` (`pid` may be `"self"`).
    pub(crate) fn of(pid: &str) -> std::io::Result<CpuTimes> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
        parse_stat(&stat, rustix::param::clock_ticks_per_second()).ok_or_else(|| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("unexpected /proc/{pid}/stat"),
            )
        })
    }

    /// The time spent between `earlier` and `self`.
    pub(crate) fn since(&self, earlier: &CpuTimes) -> CpuTimes {
        CpuTimes {
            user: self.user.saturating_sub(earlier.user),
            system: self.system.saturating_sub(earlier.system),
        }
    }

    /// User plus system time in seconds.
    pub(crate) fn total_secs(&self) -> f64 {
        (self.user + self.system).as_secs_f64()
    }
}

/// Parses utime and stime (fields 14 and 15, in clock ticks) of a `/proc/PID/stat` line. The command name
/// (field 2) may contain spaces and parentheses, so fields are counted after its last `)`.
fn parse_stat(stat: &str, ticks_per_sec: u64) -> Option<CpuTimes> {
    let after_comm = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_comm.split_whitespace();
    // After the comm: field 3 (state) is index 0, so utime (14) is index 11 and stime (15) index 12.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(CpuTimes {
        user: from_ticks(utime, ticks_per_sec),
        system: from_ticks(stime, ticks_per_sec),
    })
}

/// `/proc` times are in clock ticks (`USER_HZ`).
fn from_ticks(ticks: u64, ticks_per_sec: u64) -> Duration {
    Duration::from_secs_f64(ticks as f64 / ticks_per_sec.max(1) as f64)
}

/// The whole machine's CPU time so far, from the `cpu` line of `/proc/stat`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct MachineTimes {
    /// Time not idle, waiting for I/O or stolen: user, nice, system, irq and softirq (guest time is in user).
    pub(crate) busy: Duration,
    /// The irq and softirq part of `busy`.
    pub(crate) irq: Duration,
    /// Time the hypervisor ran something else while this machine had work (steal).
    pub(crate) steal: Duration,
    /// Online CPUs.
    pub(crate) cores: usize,
}

impl MachineTimes {
    pub(crate) fn now() -> std::io::Result<MachineTimes> {
        let stat = std::fs::read_to_string("/proc/stat")?;
        parse_machine(&stat, rustix::param::clock_ticks_per_second()).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::InvalidData, "unexpected /proc/stat")
        })
    }

    /// The time spent between `earlier` and `self`.
    pub(crate) fn since(&self, earlier: &MachineTimes) -> MachineTimes {
        MachineTimes {
            busy: self.busy.saturating_sub(earlier.busy),
            irq: self.irq.saturating_sub(earlier.irq),
            steal: self.steal.saturating_sub(earlier.steal),
            cores: self.cores,
        }
    }
}

/// Parses the aggregate `cpu` line (user nice system idle iowait irq softirq steal ..., in clock ticks) and
/// counts the `cpuN` lines.
fn parse_machine(stat: &str, ticks_per_sec: u64) -> Option<MachineTimes> {
    let line = stat.lines().find(|l| l.starts_with("cpu "))?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|v| v.parse().ok())
        .collect::<Option<_>>()?;
    let field = |i: usize| f.get(i).copied().unwrap_or(0);
    let secs = |t: u64| from_ticks(t, ticks_per_sec);
    Some(MachineTimes {
        busy: secs(field(0) + field(1) + field(2) + field(5) + field(6)),
        irq: secs(field(5) + field(6)),
        steal: secs(field(7)),
        cores: stat
            .lines()
            .filter(|l| l.starts_with("cpu") && l.as_bytes().get(3).is_some_and(u8::is_ascii_digit))
            .count(),
    })
}

/// Resident memory of a process: current (`VmRSS`) and peak (`VmHWM`), in KiB.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Memory {
    pub(crate) rss_kib: u64,
    pub(crate) hwm_kib: u64,
}

impl Memory {
    /// Reads `/proc/<pid>/status`.
    pub(crate) fn of(pid: &str) -> std::io::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        Ok(parse_status(&status))
    }
}

fn parse_status(status: &str) -> Memory {
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    Memory {
        rss_kib: field("VmRSS:"),
        hwm_kib: field("VmHWM:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line() {
        let line =
            "1234 (strata (x) y) S 1 1234 1234 0 -1 4194560 5000 0 0 0 250 75 0 0 20 0 8 0 100 0 0";
        let t = parse_stat(line, 100).unwrap();
        assert_eq!(t.user, Duration::from_millis(2500));
        assert_eq!(t.system, Duration::from_millis(750));
        assert!((t.total_secs() - 3.25).abs() < 1e-9);
        assert!(parse_stat("garbage", 100).is_none());
    }

    #[test]
    fn own_process() {
        if cfg!(target_os = "linux") {
            let t = CpuTimes::of("self").unwrap();
            assert!(t.total_secs() >= 0.0);
            let m = Memory::of("self").unwrap();
            assert!(m.hwm_kib >= m.rss_kib && m.rss_kib > 0);
        }
    }

    #[test]
    fn machine_line() {
        let stat = "cpu  500 10 200 9000 40 5 25 60 0 0\ncpu0 250 5 100 4500 20 2 12 30 0 0\n\
                    cpu1 250 5 100 4500 20 3 13 30 0 0\nintr 1 2 3\nctxt 99\n";
        let t = parse_machine(stat, 100).unwrap();
        // user + nice + system + irq + softirq; iowait and idle are not busy, steal is apart.
        assert_eq!(t.busy, Duration::from_millis(7400));
        assert_eq!(t.irq, Duration::from_millis(300));
        assert_eq!(t.steal, Duration::from_millis(600));
        assert_eq!(t.cores, 2);
        assert!(parse_machine("intr 1 2\n", 100).is_none());
        if cfg!(target_os = "linux") {
            let now = MachineTimes::now().unwrap();
            assert!(now.cores >= 1 && now.busy > Duration::ZERO);
        }
    }

    #[test]
    fn status_fields() {
        let m = parse_status("Name:\tstrata\nVmHWM:\t  123456 kB\nVmRSS:\t   65432 kB\n");
        assert_eq!(
            m,
            Memory {
                rss_kib: 65432,
                hwm_kib: 123456
            }
        );
    }
}
