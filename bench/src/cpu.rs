//! CPU and memory accounting of processes from `/proc`: user and system time of the generator itself
//! (`/proc/self/stat`) and, with `--server-pid`, of the server under test, plus the server's resident memory
//! (`VmRSS`, `VmHWM`). Linux only; elsewhere the figures are absent.

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
    let ticks = ticks_per_sec.max(1) as f64;
    Some(CpuTimes {
        user: Duration::from_secs_f64(utime as f64 / ticks),
        system: Duration::from_secs_f64(stime as f64 / ticks),
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
