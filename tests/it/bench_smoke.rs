//! `strata bench` works end to end against a real server: a few hundred operations in each basic mode, with
//! the JSON report parsed and checked for errors. No timing assertions: the figures are only read, not judged.

use std::process::Command;

use crate::harness::{ACCESS_KEY, SECRET_KEY, Server};

fn bench(server: &Server, args: &[&str]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("bench")
        .args([
            "--endpoint",
            &server.endpoint,
            "--access-key",
            ACCESS_KEY,
            "--secret-key",
            SECRET_KEY,
        ])
        .args(["--json", "--quiet", "--bucket", "bench-smoke"])
        .args(args)
        .output()
        .expect("run strata bench");
    assert!(
        out.status.success(),
        "bench {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "bench {args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn total_ops_and_errors(report: &serde_json::Value) -> (u64, u64) {
    let rows = report["ops"].as_array().expect("ops rows");
    let ops = rows.iter().filter_map(|r| r["ops"].as_u64()).sum();
    let errors = rows.iter().filter_map(|r| r["errors"].as_u64()).sum();
    (ops, errors)
}

#[test]
fn bench_smoke_runs_every_basic_mode_cleanly() {
    let server = Server::start();
    let runs: [&[&str]; 5] = [
        &[
            "--mode",
            "put",
            "--size",
            "4KiB",
            "--concurrency",
            "8",
            "--count",
            "200",
        ],
        &[
            "--mode",
            "get",
            "--size",
            "64KiB",
            "--concurrency",
            "8",
            "--count",
            "200",
            "--objects",
            "16",
        ],
        &[
            "--mode",
            "mixed",
            "--size",
            "8KiB",
            "--concurrency",
            "4",
            "--count",
            "200",
            "--objects",
            "16",
        ],
        &[
            "--mode",
            "list",
            "--size",
            "0",
            "--count",
            "20",
            "--objects",
            "50",
            "--max-keys",
            "10",
        ],
        &[
            "--mode",
            "multipart",
            "--size",
            "12MiB",
            "--part-size",
            "5MiB",
            "--parts-parallel",
            "3",
            "--count",
            "2",
        ],
    ];
    for args in runs {
        let report = bench(&server, args);
        let (ops, errors) = total_ops_and_errors(&report);
        assert!(ops > 0, "{args:?} measured nothing: {report}");
        assert_eq!(errors, 0, "{args:?} had errors: {}", report["errors"]);
    }
    // Cleanup (no --keep) removed the bucket the runs created.
    let listed = server.client();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let buckets = rt.block_on(listed.list_buckets().send()).unwrap();
    assert!(
        buckets
            .buckets()
            .iter()
            .all(|b| b.name() != Some("bench-smoke")),
        "bench left its bucket behind"
    );
}
