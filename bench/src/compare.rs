//! `strata bench --compare A.json B.json`: two `--json` reports side by side, one row per figure (per
//! operation kind: ops/s, MiB/s, latency percentiles, errors; then errors by type and the CPU cost of the
//! generator and the server per GiB and per 1,000 operations) with the ratio B/A.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::report::{CpuCost, OpRow, Report};
use crate::stats::PerSecond;

/// Reads both reports and prints the comparison on stdout.
pub(crate) fn run(a: &Path, b: &Path) -> anyhow::Result<()> {
    let (ra, rb) = (read(a)?, read(b)?);
    print!("{}", table(a, &ra, b, &rb));
    Ok(())
}

/// One report, or an error naming the file and what is wrong with it.
fn read(path: &Path) -> anyhow::Result<Report> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("--compare: cannot read {}", path.display()))?;
    let report: Report = serde_json::from_str(text.trim()).with_context(|| {
        format!(
            "--compare: {} is not a `strata bench --json` report",
            path.display()
        )
    })?;
    anyhow::ensure!(
        !report.ops.is_empty(),
        "--compare: {} has no operation rows (the run measured nothing)",
        path.display()
    );
    Ok(report)
}

/// The side-by-side table.
fn table(pa: &Path, a: &Report, pb: &Path, b: &Report) -> String {
    let mut out = String::new();
    for (tag, path, r) in [("A", pa, a), ("B", pb, b)] {
        let _ = writeln!(
            out,
            "{tag}: {} — {}{} mode={} size={} concurrency={} measured {:.2}s",
            path.display(),
            r.endpoint,
            r.addressing_style.tag(),
            r.mode,
            r.describe_sizes(),
            r.concurrency,
            r.elapsed_s
        );
    }
    let differ: Vec<&str> = [
        ("mode", a.mode != b.mode),
        ("sizes", a.describe_sizes() != b.describe_sizes()),
        ("mix", a.mix != b.mix),
        // Reports from before the field have none: unknown, not different.
        (
            "key distribution",
            a.keys.is_some() && b.keys.is_some() && a.keys != b.keys,
        ),
        ("concurrency", a.concurrency != b.concurrency),
        ("part size", a.part_size != b.part_size),
        ("parallel parts", a.parts_parallel != b.parts_parallel),
        ("buckets", a.buckets != b.buckets),
        ("prefixes", a.prefixes != b.prefixes),
        ("payload signing", a.unsigned_payload != b.unsigned_payload),
        // Virtual-hosted style keeps connections per bucket host: with several buckets, more of them.
        ("addressing style", a.addressing_style != b.addressing_style),
        ("interrupted", a.interrupted != b.interrupted),
    ]
    .into_iter()
    .filter_map(|(what, differs)| differs.then_some(what))
    .collect();
    if !differ.is_empty() {
        let _ = writeln!(
            out,
            "note: the runs differ in {}; the ratios compare unlike workloads",
            differ.join(", ")
        );
    }
    let _ = writeln!(out, "{:<28} {:>14} {:>14} {:>9}", "figure", "A", "B", "B/A");
    let mut rows = Rows(&mut out);
    for ra in &a.ops {
        let Some(rb) = b.ops.iter().find(|r| r.op == ra.op) else {
            continue;
        };
        op_rows(&mut rows, ra, rb);
    }
    for r in b.ops.iter().filter(|r| !a.ops.iter().any(|x| x.op == r.op)) {
        rows.note(&format!("{}: only in B", r.op));
    }
    for r in a.ops.iter().filter(|r| !b.ops.iter().any(|x| x.op == r.op)) {
        rows.note(&format!("{}: only in A", r.op));
    }
    let mut labels: Vec<&String> = a.errors.keys().chain(b.errors.keys()).collect();
    labels.sort();
    labels.dedup();
    for label in labels {
        let count = |r: &Report| r.errors.get(label).copied().unwrap_or(0) as f64;
        rows.figure(&format!("errors {label}"), count(a), count(b), 0);
    }
    if let (Some(ca), Some(cb)) = (&a.edge_cache, &b.edge_cache)
        && let (Some(ra), Some(rb)) = (ca.hit_ratio(), cb.hit_ratio())
    {
        rows.figure("edge hit %", ra * 100.0, rb * 100.0, 1);
    }
    if let (Some(sa), Some(sb)) = (
        a.per_second.as_ref().and_then(PerSecond::spread),
        b.per_second.as_ref().and_then(PerSecond::spread),
    ) {
        // The slowest second: a stall that the averages above smooth over.
        rows.figure("slowest second ops", sa.ops[0] as f64, sb.ops[0] as f64, 0);
        if sa.mib[2] > 0.0 || sb.mib[2] > 0.0 {
            rows.figure("slowest second MiB", sa.mib[0], sb.mib[0], 1);
        }
    }
    cpu_rows(
        &mut rows,
        "generator",
        Some(&a.generator_cpu),
        Some(&b.generator_cpu),
    );
    cpu_rows(
        &mut rows,
        "server",
        a.server_cpu.as_ref(),
        b.server_cpu.as_ref(),
    );
    if let (Some(ma), Some(mb)) = (&a.machine_cpu, &b.machine_cpu) {
        // Whether either run shared its cores: a ratio of two near-zero figures says nothing, the values do.
        rows.values("machine other cores", ma.other_cores, mb.other_cores, 2);
        rows.values("machine irq cores", ma.irq_cores, mb.irq_cores, 2);
        rows.values("machine steal cores", ma.steal_cores, mb.steal_cores, 2);
    }
    out
}

fn op_rows(rows: &mut Rows<'_>, a: &OpRow, b: &OpRow) {
    let op = &a.op;
    rows.figure(&format!("{op} ops/s"), a.ops_per_s, b.ops_per_s, 1);
    rows.figure(&format!("{op} MiB/s"), a.mib_per_s, b.mib_per_s, 1);
    let (la, lb) = (&a.latency_ms, &b.latency_ms);
    for (name, va, vb) in [
        ("p50", la.p50, lb.p50),
        ("p90", la.p90, lb.p90),
        ("p99", la.p99, lb.p99),
        ("p99.9", la.p999, lb.p999),
        ("max", la.max, lb.max),
    ] {
        rows.figure(&format!("{op} {name} ms"), va, vb, 3);
    }
    rows.figure(&format!("{op} errors"), a.errors as f64, b.errors as f64, 0);
}

fn cpu_rows(rows: &mut Rows<'_>, who: &str, a: Option<&CpuCost>, b: Option<&CpuCost>) {
    match (a, b) {
        (Some(a), Some(b)) => {
            let pair = |x: Option<f64>, y: Option<f64>| x.zip(y);
            if let Some((x, y)) = pair(a.per_gib_s, b.per_gib_s) {
                rows.figure(&format!("{who} CPU s/GiB"), x, y, 3);
            }
            if let Some((x, y)) = pair(a.per_1000_ops_s, b.per_1000_ops_s) {
                rows.figure(&format!("{who} CPU s/1k ops"), x, y, 3);
            }
            rows.figure(&format!("{who} CPU cores"), a.cores, b.cores, 2);
        }
        (None, None) => {}
        (Some(_), None) => rows.note(&format!("{who} CPU: only in A (--server-pid)")),
        (None, Some(_)) => rows.note(&format!("{who} CPU: only in B (--server-pid)")),
    }
}

/// Writes figure rows.
struct Rows<'a>(&'a mut String);

impl Rows<'_> {
    fn figure(&mut self, name: &str, a: f64, b: f64, decimals: usize) {
        self.row(name, a, b, decimals, &ratio(a, b));
    }

    /// A figure row without the ratio.
    fn values(&mut self, name: &str, a: f64, b: f64, decimals: usize) {
        self.row(name, a, b, decimals, "");
    }

    fn row(&mut self, name: &str, a: f64, b: f64, decimals: usize, ratio: &str) {
        let _ = writeln!(
            self.0,
            "{name:<28} {a:>14.decimals$} {b:>14.decimals$} {ratio:>9}"
        );
    }

    fn note(&mut self, text: &str) {
        let _ = writeln!(self.0, "{text}");
    }
}

/// `B/A` as `1.23x`; `-` when A is 0 (both 0: `=`).
fn ratio(a: f64, b: f64) -> String {
    match (a, b) {
        (0.0, 0.0) => "=".to_owned(),
        (0.0, _) => "-".to_owned(),
        _ => format!("{:.2}x", b / a),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report_json(ops_per_s: f64, p99: f64, errors: &str) -> String {
        format!(
            r#"{{"endpoint":"http://e","bucket":"b","mode":"get","object_size":4096,"concurrency":8,
            "duration_s":null,"count":100,"warmup_s":0.0,"unsigned_payload":false,"elapsed_s":1.0,
            "ops":[{{"op":"get","ops":100,"errors":0,"bytes":409600,"ops_per_s":{ops_per_s},"mib_per_s":0.39,
            "latency_ms":{{"mean":1.0,"p50":1.0,"p90":2.0,"p99":{p99},"p999":4.0,"max":5.0}}}}],
            "errors":{errors},
            "generator_cpu":{{"user_s":0.1,"system_s":0.1,"total_s":0.2,"per_1000_ops_s":2.0,"per_gib_s":null,"cores":0.2}}}}"#
        )
    }

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn side_by_side_with_ratios() {
        let dir = std::env::temp_dir().join(format!("strata-compare-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let a = write(&dir, "a.json", &report_json(100.0, 3.0, "{}"));
        let b = write(
            &dir,
            "b.json",
            &report_json(250.0, 1.5, r#"{"503 SlowDown":2}"#),
        );
        let (ra, rb) = (read(&a).unwrap(), read(&b).unwrap());
        let t = table(&a, &ra, &b, &rb);
        let line = |prefix: &str| {
            t.lines()
                .find(|l| l.starts_with(prefix))
                .unwrap_or_else(|| panic!("no {prefix:?} row in\n{t}"))
                .split_whitespace()
                .last()
                .unwrap()
                .to_owned()
        };
        assert_eq!(line("get ops/s"), "2.50x");
        assert_eq!(line("get p99 ms"), "0.50x");
        assert_eq!(line("errors 503 SlowDown"), "-");
        assert_eq!(line("generator CPU s/1k ops"), "1.00x");
        assert!(
            !t.contains("s/GiB"),
            "no per-GiB figure when a report has none"
        );
        assert!(!t.contains("note:"), "alike runs get no note:\n{t}");
        assert!(
            !t.contains("machine"),
            "no machine rows when a report has none"
        );
        // A report like `a` with more fields.
        let with_fields = |name: &str, extra: &str| {
            write(
                &dir,
                name,
                &report_json(100.0, 3.0, "{}")
                    .replace(r#""concurrency":8"#, &format!(r#""concurrency":8,{extra}"#)),
            )
        };
        let with_machine = |name: &str, other: f64| {
            with_fields(
                name,
                &format!(
                    r#""machine_cpu":{{"cores":2,"busy_cores":1.9,"other_cores":{other},"irq_cores":0.1,"steal_cores":0.0}}"#
                ),
            )
        };
        let (ma, mb) = (with_machine("ma.json", 0.02), with_machine("mb.json", 0.5));
        let t = table(&ma, &read(&ma).unwrap(), &mb, &read(&mb).unwrap());
        let other = t.lines().find(|l| l.starts_with("machine other cores"));
        assert_eq!(
            other.map(|l| l.split_whitespace().skip(3).collect::<Vec<_>>()),
            Some(vec!["0.02", "0.50"]),
            "values, no ratio:\n{t}"
        );
        let put = write(
            &dir,
            "put.json",
            &report_json(100.0, 3.0, "{}").replace(r#""mode":"get""#, r#""mode":"put""#),
        );
        let t = table(&a, &ra, &put, &read(&put).unwrap());
        assert!(
            t.contains("note: the runs differ in mode;"),
            "unlike runs are pointed out:\n{t}"
        );
        let uniform = with_fields("uniform.json", r#""keys":"uniform""#);
        let zipf = with_fields("zipf.json", r#""keys":"zipf s=1.1","prefixes":4"#);
        let ru = read(&uniform).unwrap();
        let t = table(&uniform, &ru, &zipf, &read(&zipf).unwrap());
        assert!(
            t.contains("note: the runs differ in key distribution, prefixes;"),
            "{t}"
        );
        // A report from before the key field (`a`) compares with a newer one without a false note.
        let t = table(&a, &ra, &uniform, &ru);
        assert!(!t.contains("note:"), "{t}");
        // Nor from before the addressing field, which read as the path style.
        let path = with_fields("path.json", r#""addressing_style":"path""#);
        let t = table(&a, &ra, &path, &read(&path).unwrap());
        assert!(!t.contains("note:"), "{t}");
        let hosted = with_fields("hosted.json", r#""addressing_style":"virtual""#);
        let t = table(&a, &ra, &hosted, &read(&hosted).unwrap());
        assert!(
            t.contains("note: the runs differ in addressing style;"),
            "{t}"
        );
        assert!(t.contains("(virtual-hosted) mode="), "{t}");
        // The slowest second of each, when both were recorded second by second.
        let steady = with_fields(
            "steady.json",
            r#""per_second":{"ops":[10,11,12],"bytes":[10485760,11534336,12582912],"errors":[0,0,0]}"#,
        );
        let stalled = with_fields(
            "stalled.json",
            r#""per_second":{"ops":[12,0,12],"bytes":[12582912,0,12582912],"errors":[0,0,0]}"#,
        );
        let t = table(
            &steady,
            &read(&steady).unwrap(),
            &stalled,
            &read(&stalled).unwrap(),
        );
        assert!(t.contains("slowest second ops"), "{t}");
        assert!(
            t.lines().any(|l| l.starts_with("slowest second MiB")
                && l.contains("10.0")
                && l.ends_with("0.00x")),
            "{t}"
        );
        let t = table(&a, &ra, &stalled, &read(&stalled).unwrap());
        assert!(!t.contains("slowest second"), "only one run has them:\n{t}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bad_files_get_clear_errors() {
        let dir = std::env::temp_dir().join(format!("strata-compare-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.json");
        let err = format!("{:#}", read(&missing).err().unwrap());
        assert!(
            err.contains("cannot read") && err.contains("missing.json"),
            "{err}"
        );
        let junk = write(&dir, "junk.json", "not json");
        let err = format!("{:#}", read(&junk).err().unwrap());
        assert!(
            err.contains("is not a `strata bench --json` report"),
            "{err}"
        );
        let other = write(&dir, "other.json", r#"{"hello":1}"#);
        let err = format!("{:#}", read(&other).err().unwrap());
        assert!(err.contains("missing field"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn ratios() {
        assert_eq!(ratio(2.0, 3.0), "1.50x");
        assert_eq!(ratio(0.0, 0.0), "=");
        assert_eq!(ratio(0.0, 1.0), "-");
    }
}
