//! The final report: one row per operation kind (and a total row when there are several; in multipart mode
//! a `multipart` row per object and a `part` row per UploadPart, outside any total) with ops, errors,
//! ops/s, MiB/s and latency percentiles, the errors by type, and the CPU cost of the generator and, when its
//! pid was given, of the server, per 1,000 operations and per GiB moved. Printed as a table or as one JSON
//! object (`--json`), which `--compare` reads back.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::cpu::{CpuTimes, MachineTimes, Memory};
use crate::stats::{CacheCounts, KindStats, PerSecond, Stats};
use crate::units::OpKind;

const MIB: f64 = (1u64 << 20) as f64;
const GIB: f64 = (1u64 << 30) as f64;

/// Everything a run measured. Fields added after the first version have serde defaults, so `--compare`
/// reads older reports too.
#[derive(Serialize, Deserialize)]
pub(crate) struct Report {
    pub(crate) endpoint: String,
    /// How requests named the bucket (reports from before the field used the path style).
    #[serde(default)]
    pub(crate) addressing_style: crate::Addressing,
    pub(crate) bucket: String,
    pub(crate) mode: String,
    /// Only for mixed runs: the ratio used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) mix: Option<String>,
    /// The fixed object size, or the median of the size distribution.
    pub(crate) object_size: u64,
    /// How sizes were drawn: `4KiB`, `uniform 4KiB..1MiB`, `lognormal median 64KiB sigma 1 max 1.4MiB`.
    #[serde(default)]
    pub(crate) sizes: String,
    /// Which pool objects reads picked: `uniform`, `seq`, `zipf s=1.1` (modes that read a pool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) keys: Option<String>,
    #[serde(default = "one")]
    pub(crate) buckets: u32,
    #[serde(default = "one")]
    pub(crate) prefixes: u32,
    /// Edge-get mode: the edge's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) edge_url: Option<String>,
    /// Edge-get mode: successful GETs by the edge's `X-Cache` answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) edge_cache: Option<CacheCounts>,
    pub(crate) concurrency: usize,
    /// Multipart mode: size of every part but the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) part_size: Option<u64>,
    /// Multipart mode: UploadPart requests in flight per object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) parts_parallel: Option<usize>,
    /// The requested duration of the measured phase, when run by time.
    pub(crate) duration_s: Option<f64>,
    /// The requested number of operations, when run by count.
    pub(crate) count: Option<u64>,
    pub(crate) warmup_s: f64,
    pub(crate) unsigned_payload: bool,
    /// Wall time of the measured phase.
    pub(crate) elapsed_s: f64,
    /// One entry per operation kind, then `total` when there is more than one kind, then `part` (the
    /// UploadParts of multipart mode, not in the total).
    pub(crate) ops: Vec<OpRow>,
    /// Failed operations by type, all kinds together.
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) generator_cpu: CpuCost,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server_pid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server_cpu: Option<CpuCost>,
    /// The whole machine over the measured phase: what else ran beside the run, and steal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) machine_cpu: Option<MachineCpu>,
    /// The server's resident memory right after the measured phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) server_memory: Option<Memory>,
    /// The run's id: its objects' keys start `bench/<run>/` (after any `p<i>/` prefix).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) run: Option<String>,
    /// Whether Ctrl-C ended the measured phase early.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) interrupted: bool,
    /// The measured phase second by second: whether the rates held or the run had slow stretches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) per_second: Option<PerSecond>,
}

fn one() -> u32 {
    1
}

/// The figures of one operation kind.
#[derive(Serialize, Deserialize)]
pub(crate) struct OpRow {
    pub(crate) op: String,
    pub(crate) ops: u64,
    pub(crate) errors: u64,
    pub(crate) bytes: u64,
    pub(crate) ops_per_s: f64,
    pub(crate) mib_per_s: f64,
    pub(crate) latency_ms: Latency,
}

/// Latency percentiles of successful operations, in milliseconds.
#[derive(Serialize, Deserialize)]
pub(crate) struct Latency {
    pub(crate) mean: f64,
    pub(crate) p50: f64,
    pub(crate) p90: f64,
    pub(crate) p99: f64,
    pub(crate) p999: f64,
    pub(crate) max: f64,
}

/// The whole machine's CPU over the measured phase, in average cores.
#[derive(Serialize, Deserialize)]
pub(crate) struct MachineCpu {
    pub(crate) cores: usize,
    /// Cores busy (user, system, interrupts), whoever used them.
    pub(crate) busy_cores: f64,
    /// Busy cores that neither the generator nor (with `--server-pid`) the server accounts for: other
    /// processes, and kernel work for the run charged to no process of it (kernel threads such as writeback;
    /// interrupts, where the kernel accounts their time apart from the process they interrupted).
    pub(crate) other_cores: f64,
    /// The interrupt (irq and softirq) part of `busy_cores`, whoever it was charged to: mostly network
    /// processing, which on loopback is the run's own.
    #[serde(default)]
    pub(crate) irq_cores: f64,
    /// Cores the hypervisor took away while this machine had work.
    pub(crate) steal_cores: f64,
}

impl MachineCpu {
    pub(crate) fn new(
        t: &MachineTimes,
        generator: &CpuTimes,
        server: Option<&CpuTimes>,
        elapsed_s: f64,
    ) -> MachineCpu {
        let of = |d: std::time::Duration| cores(d.as_secs_f64(), elapsed_s);
        let run = generator.total_secs() + server.map_or(0.0, CpuTimes::total_secs);
        let busy = of(t.busy);
        MachineCpu {
            cores: t.cores,
            busy_cores: busy,
            other_cores: (busy - cores(run, elapsed_s)).max(0.0),
            irq_cores: of(t.irq),
            steal_cores: of(t.steal),
        }
    }
}

/// CPU time of a process during the measured phase and what it comes to per unit of work.
#[derive(Serialize, Deserialize)]
pub(crate) struct CpuCost {
    pub(crate) user_s: f64,
    pub(crate) system_s: f64,
    pub(crate) total_s: f64,
    /// CPU seconds per 1,000 successful operations.
    pub(crate) per_1000_ops_s: Option<f64>,
    /// CPU seconds per GiB of object data moved.
    pub(crate) per_gib_s: Option<f64>,
    /// Average cores busy over the phase.
    pub(crate) cores: f64,
}

impl CpuCost {
    pub(crate) fn new(t: &CpuTimes, ops: u64, bytes: u64, elapsed_s: f64) -> CpuCost {
        let total = t.total_secs();
        CpuCost {
            user_s: t.user.as_secs_f64(),
            system_s: t.system.as_secs_f64(),
            total_s: total,
            per_1000_ops_s: (ops > 0).then(|| total * 1000.0 / ops as f64),
            per_gib_s: (bytes > 0).then(|| total * GIB / bytes as f64),
            cores: cores(total, elapsed_s),
        }
    }
}

/// CPU seconds spent over `elapsed_s` of wall time, as average cores busy (0 for an empty phase).
fn cores(cpu_s: f64, elapsed_s: f64) -> f64 {
    if elapsed_s > 0.0 {
        cpu_s / elapsed_s
    } else {
        0.0
    }
}

/// Rows for every kind in `stats`, plus a total row when there are several kinds; the parts of multipart
/// uploads last, outside the total.
pub(crate) fn rows(stats: &Stats, elapsed_s: f64) -> Vec<OpRow> {
    let mut rows: Vec<OpRow> = stats
        .kinds()
        .filter(|&(kind, _)| kind != OpKind::Part)
        .map(|(kind, s)| row(kind.name(), s, elapsed_s))
        .collect();
    if rows.len() > 1 {
        rows.push(row("total", &stats.total(), elapsed_s));
    }
    rows.extend(
        stats
            .kinds()
            .filter(|&(kind, _)| kind == OpKind::Part)
            .map(|(kind, s)| row(kind.name(), s, elapsed_s)),
    );
    rows
}

fn row(name: &str, s: &KindStats, elapsed_s: f64) -> OpRow {
    let ms = |us: u64| us as f64 / 1000.0;
    let per_s = |v: f64| if elapsed_s > 0.0 { v / elapsed_s } else { 0.0 };
    let h = &s.hist;
    let empty = h.is_empty();
    let q = |quantile: f64| {
        if empty {
            0.0
        } else {
            ms(h.value_at_quantile(quantile))
        }
    };
    OpRow {
        op: name.to_owned(),
        ops: s.ops,
        errors: s.error_count(),
        bytes: s.bytes,
        ops_per_s: per_s(s.ops as f64),
        mib_per_s: per_s(s.bytes as f64 / MIB),
        latency_ms: Latency {
            mean: if empty { 0.0 } else { h.mean() / 1000.0 },
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: if empty { 0.0 } else { ms(h.max()) },
        },
    }
}

impl Report {
    /// Successful operations of every kind (a multipart upload counts once, not per part).
    pub(crate) fn succeeded(&self) -> u64 {
        self.kind_rows().map(|r| r.ops).sum()
    }

    /// Failed operations of every kind.
    pub(crate) fn failed(&self) -> u64 {
        self.kind_rows().map(|r| r.errors).sum()
    }

    /// The rows of the operation kinds (not the total, not the parts).
    fn kind_rows(&self) -> impl Iterator<Item = &OpRow> {
        self.ops
            .iter()
            .filter(|r| r.op != "total" && r.op != OpKind::Part.name())
    }

    /// The sizes as given: the distribution, or (reports without one) the object size.
    pub(crate) fn describe_sizes(&self) -> String {
        if self.sizes.is_empty() {
            crate::units::format_size(self.object_size)
        } else {
            self.sizes.clone()
        }
    }

    /// The report as one line of JSON.
    pub(crate) fn to_json(&self) -> String {
        serde_json::to_string(self).expect("the report serialises")
    }

    /// The report as a human-readable table.
    pub(crate) fn to_table(&self) -> String {
        let mut out = String::new();
        let limit = match (self.duration_s, self.count) {
            (_, Some(c)) => format!("count {c}"),
            (Some(d), None) => format!("duration {d}s"),
            (None, None) => String::new(),
        };
        let _ = writeln!(
            out,
            "strata bench: {}{} mode={}{} size={}{}{} concurrency={} {limit} warmup={}s payload={}",
            self.endpoint,
            self.addressing_style.tag(),
            self.mode,
            self.mix
                .as_deref()
                .map(|m| format!(" mix={m}"))
                .unwrap_or_default(),
            self.describe_sizes(),
            self.keys
                .as_deref()
                .map(|k| format!(" keys={k}"))
                .unwrap_or_default(),
            match (self.part_size, self.parts_parallel) {
                (Some(p), Some(n)) => format!(
                    " part-size={} parts-parallel={n}",
                    crate::units::format_size(p)
                ),
                _ => String::new(),
            },
            self.concurrency,
            self.warmup_s,
            if self.unsigned_payload {
                "UNSIGNED-PAYLOAD"
            } else {
                "signed"
            },
        );
        let _ = writeln!(
            out,
            "measured {:.2}s{}, bucket {}{}{}{}{}",
            self.elapsed_s,
            if self.interrupted {
                " (interrupted)"
            } else {
                ""
            },
            self.bucket,
            match self.buckets {
                1 => String::new(),
                n => format!("-0..{} ({n} buckets)", n - 1),
            },
            match self.prefixes {
                1 => String::new(),
                n => format!(", {n} prefixes"),
            },
            self.run
                .as_deref()
                .map(|r| format!(", run {r}"))
                .unwrap_or_default(),
            self.edge_url
                .as_deref()
                .map(|u| format!(", through edge {u}"))
                .unwrap_or_default()
        );
        let _ = writeln!(
            out,
            "{:<13} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "op",
            "ops",
            "errors",
            "ops/s",
            "MiB/s",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms"
        );
        for r in &self.ops {
            let l = &r.latency_ms;
            let _ = writeln!(
                out,
                "{:<13} {:>9} {:>7} {:>10.1} {:>9.1} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
                r.op, r.ops, r.errors, r.ops_per_s, r.mib_per_s, l.p50, l.p90, l.p99, l.p999, l.max
            );
        }
        if self.errors.is_empty() {
            let _ = writeln!(out, "errors: none");
        }
        for (label, n) in &self.errors {
            let _ = writeln!(out, "errors: {n} x {label}");
        }
        if let Some(c) = &self.edge_cache {
            let ratio = c
                .hit_ratio()
                .map_or("no X-Cache hit/miss answers".to_owned(), |r| {
                    format!("{:.1}% hits", r * 100.0)
                });
            let _ = writeln!(
                out,
                "edge X-Cache: {} hit, {} miss, {} other, {} without the header ({ratio})",
                c.hit, c.miss, c.other, c.absent
            );
        }
        if let Some(s) = self.per_second.as_ref().and_then(PerSecond::spread) {
            let [lo, mid, hi] = s.ops;
            let _ = write!(
                out,
                "per second ({} whole seconds, slowest / median / fastest): {lo} / {mid} / {hi} ops",
                s.seconds
            );
            if s.mib[2] > 0.0 {
                let [lo, mid, hi] = s.mib;
                let _ = write!(out, ", {lo:.1} / {mid:.1} / {hi:.1} MiB");
            }
            let _ = writeln!(out);
        }
        write_cpu(&mut out, "generator", &self.generator_cpu);
        if let Some(server) = &self.server_cpu {
            let who = format!("server pid {}", self.server_pid.unwrap_or_default());
            write_cpu(&mut out, &who, server);
        }
        if let Some(m) = &self.machine_cpu {
            let besides = if self.server_cpu.is_some() {
                "the generator and the server"
            } else {
                "the generator (no --server-pid)"
            };
            let _ = writeln!(
                out,
                "machine: {:.2} of {} cores busy ({:.2} interrupts), {:.2} of them besides {besides}; \
                 steal {:.2} cores",
                m.busy_cores, m.cores, m.irq_cores, m.other_cores, m.steal_cores
            );
        }
        if let Some(m) = &self.server_memory {
            let _ = writeln!(
                out,
                "server memory: VmRSS {:.1} MiB, VmHWM (peak) {:.1} MiB",
                m.rss_kib as f64 / 1024.0,
                m.hwm_kib as f64 / 1024.0
            );
        }
        out
    }
}

fn write_cpu(out: &mut String, who: &str, c: &CpuCost) {
    let opt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
    let _ = writeln!(
        out,
        "{who} CPU: {:.2}s (user {:.2}s, sys {:.2}s, {:.2} cores); {} s per 1,000 ops; {} s per GiB",
        c.total_s,
        c.user_s,
        c.system_s,
        c.cores,
        opt(c.per_1000_ops_s),
        opt(c.per_gib_s)
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rows_and_costs() {
        let mut stats = Stats::default();
        for _ in 0..100 {
            stats.record(OpKind::Get, Duration::from_millis(10), &Ok(1 << 20));
        }
        stats.record(OpKind::Stat, Duration::from_millis(1), &Ok(0));
        let rows = rows(&stats, 2.0);
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].op, "get");
        assert!((rows[0].ops_per_s - 50.0).abs() < 1e-9);
        assert!((rows[0].mib_per_s - 50.0).abs() < 1e-9);
        assert!((rows[0].latency_ms.p50 - 10.0).abs() < 0.01);
        assert_eq!(rows[2].op, "total");
        assert_eq!(rows[2].ops, 101);
        let t = CpuTimes {
            user: Duration::from_secs(1),
            system: Duration::from_millis(500),
        };
        let c = CpuCost::new(&t, 1000, 1 << 30, 3.0);
        assert_eq!(c.per_1000_ops_s, Some(1.5));
        assert_eq!(c.per_gib_s, Some(1.5));
        assert!((c.cores - 0.5).abs() < 1e-9);
        assert_eq!(CpuCost::new(&t, 0, 0, 1.0).per_gib_s, None);
        // Over 3 s the machine was busy 5.7 core-seconds: 1.5 of them the generator, 3.6 the server.
        let machine = MachineTimes {
            busy: Duration::from_millis(5700),
            irq: Duration::from_millis(600),
            steal: Duration::from_millis(300),
            cores: 2,
        };
        let server = CpuTimes {
            user: Duration::from_secs(3),
            system: Duration::from_millis(600),
        };
        let m = MachineCpu::new(&machine, &t, Some(&server), 3.0);
        assert!((m.busy_cores - 1.9).abs() < 1e-9);
        assert!((m.other_cores - 0.2).abs() < 1e-9, "{}", m.other_cores);
        assert!((m.steal_cores - 0.1).abs() < 1e-9);
        assert!((m.irq_cores - 0.2).abs() < 1e-9);
        // Without the server's figures, its work counts as other; never below zero.
        assert!((MachineCpu::new(&machine, &t, None, 3.0).other_cores - 1.4).abs() < 1e-9);
        let idle = MachineTimes {
            busy: Duration::from_millis(100),
            ..machine
        };
        assert_eq!(MachineCpu::new(&idle, &t, None, 3.0).other_cores, 0.0);
    }

    #[test]
    fn multipart_rows_keep_parts_apart() {
        let mut stats = Stats::default();
        stats.record(OpKind::Multipart, Duration::from_secs(4), &Ok(1 << 30));
        for _ in 0..4 {
            stats.record(OpKind::Part, Duration::from_secs(2), &Ok(1 << 28));
        }
        let rows = rows(&stats, 4.0);
        let names: Vec<&str> = rows.iter().map(|r| r.op.as_str()).collect();
        assert_eq!(names, ["multipart", "part"]);
        assert!((rows[0].mib_per_s - 256.0).abs() < 1e-9);
        assert_eq!(rows[1].ops, 4);
        assert_eq!(stats.total().bytes, 1 << 30);
    }
}
