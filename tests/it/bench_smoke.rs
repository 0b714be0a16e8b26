//! `strata bench` works end to end against a real server: a few hundred operations in each basic mode, with
//! size and key distributions over several buckets and prefixes, through a real `strata edge` (HTTP and
//! HTTPS), and `--compare` on the reports. The JSON reports are parsed and checked for errors. No timing
//! assertions: the figures are only read, not judged.

use std::path::Path;
use std::process::{Command, Output};

use crate::harness::{ACCESS_KEY, EdgeProcess, SECRET_KEY, Server};

/// Runs `strata bench` against `server` with `--json --quiet`; the bucket is `bench-smoke` unless `args`
/// names one, and the endpoint the server's unless `args` names one.
fn run_bench(server: &Server, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_strata"));
    cmd.arg("bench");
    if !args.contains(&"--endpoint") {
        cmd.args(["--endpoint", &server.endpoint]);
    }
    cmd.args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
        .args(["--json", "--quiet"]);
    if !args.contains(&"--bucket") {
        cmd.args(["--bucket", "bench-smoke"]);
    }
    cmd.args(args).output().expect("run strata bench")
}

fn bench(server: &Server, args: &[&str]) -> serde_json::Value {
    let out = run_bench(server, args);
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
    let runs: [&[&str]; 7] = [
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
        // By time, so the seconds are recorded (how many depends on the sampler's timing, so only their sums
        // are checked).
        &[
            "--mode",
            "put",
            "--size",
            "1KiB",
            "--concurrency",
            "2",
            "--duration",
            "2s",
            "--warmup",
            "0s",
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
        &[
            "--mode",
            "delete",
            "--size",
            "1KiB",
            "--concurrency",
            "4",
            "--count",
            "40",
        ],
    ];
    for args in runs {
        let report = bench(&server, args);
        let (ops, errors) = total_ops_and_errors(&report);
        assert!(ops > 0, "{args:?} measured nothing: {report}");
        assert_eq!(errors, 0, "{args:?} had errors: {}", report["errors"]);
        // What finished in each whole second adds up to no more than the run's total.
        let seconds = &report["per_second"];
        let column = |name: &str| -> Vec<u64> {
            seconds[name]
                .as_array()
                .unwrap_or_else(|| panic!("per_second {name}: {report}"))
                .iter()
                .map(|v| v.as_u64().expect("a count"))
                .collect()
        };
        let (per_ops, per_errors) = (column("ops"), column("errors"));
        assert_eq!(per_ops.len(), column("bytes").len());
        assert_eq!(per_ops.len(), per_errors.len());
        assert!(per_ops.iter().sum::<u64>() + per_errors.iter().sum::<u64>() <= ops + errors);
        // The whole machine's figures are there (read, not judged: clock ticks over a short phase are coarse).
        let machine = &report["machine_cpu"];
        assert!(machine["cores"].as_u64().expect("machine cores") >= 1);
        for figure in ["busy_cores", "other_cores", "steal_cores"] {
            let v = machine[figure].as_f64().expect(figure);
            assert!(v.is_finite() && v >= 0.0, "{figure} {v}: {machine}");
        }
    }
    // Cleanup (no --keep) removed the bucket the runs created.
    assert_eq!(
        bucket_names(&server),
        Vec::<String>::new(),
        "bench left its bucket behind"
    );
}

#[test]
fn bench_smoke_refuses_bad_options_and_fails_a_run_where_nothing_succeeds() {
    let server = Server::start();
    for (args, says) in [
        (&["--duration", "0"][..], "more than zero"),
        (&["--timeout", "0ms"][..], "more than zero"),
        (&["--mode", "put", "--mix", "get=100"][..], "--mix applies"),
        (&["--mode", "mixed", "--mix", "get=0,get=5"][..], "twice"),
        (&["--mode", "delete", "--warmup", "1s"][..], "--warmup"),
    ] {
        let out = run_bench(&server, args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} was accepted");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
    // Unsigned GETs of a private bucket through its S3 endpoint: every one is refused (403). The report is
    // still printed, and the run fails.
    let out = run_bench(
        &server,
        &[
            "--mode",
            "edge-get",
            "--edge-url",
            &server.endpoint,
            "--size",
            "1KiB",
            "--count",
            "20",
            "--objects",
            "4",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a run of 20 refused GETs passed");
    assert!(stderr.contains("every operation failed"), "{stderr}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("the report");
    assert_eq!(total_ops_and_errors(&report), (0, 20), "{report}");
    assert_eq!(report["errors"]["403"], 20, "{report}");
    assert_eq!(bucket_names(&server), Vec::<String>::new());
}

#[test]
fn bench_smoke_a_run_leaves_the_objects_of_an_earlier_kept_run_alone() {
    let server = Server::start();
    let put = [
        "--mode", "put", "--size", "1KiB", "--count", "30", "--bucket", "kept",
    ];
    let kept = bench(&server, &[&put[..], &["--keep"]].concat());
    let run = kept["run"]
        .as_str()
        .expect("the report names its run")
        .to_owned();
    // The same options again, without --keep: its cleanup deletes its own objects and only those.
    let second = bench(&server, &put);
    assert_ne!(second["run"], kept["run"]);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listed = rt
        .block_on(server.client().list_objects_v2().bucket("kept").send())
        .unwrap();
    let keys: Vec<&str> = listed.contents().iter().filter_map(|o| o.key()).collect();
    assert_eq!(keys.len(), 30, "{keys:?}");
    let root = format!("bench/{run}/");
    assert!(keys.iter().all(|k| k.starts_with(&root)), "{keys:?}");
}

#[test]
fn bench_smoke_virtual_hosted_style() {
    let server = Server::start();
    // `strata serve` takes `BUCKET.localhost` as virtual-hosted style, and the bench resolves names under
    // `localhost` to the loopback.
    let endpoint = server.endpoint.replace("127.0.0.1", "localhost");
    let virtual_hosted = ["--endpoint", &endpoint, "--addressing-style", "virtual"];
    // Every kind of request of a run: CreateBucket and HEAD bucket, PUT, GET, HEAD, DELETE, and the cleanup's
    // DeleteObjects and DeleteBucket, over two buckets.
    let mixed = [
        "--mode",
        "mixed",
        "--size",
        "4KiB",
        "--objects",
        "20",
        "--count",
        "300",
        "--buckets",
        "2",
    ];
    let report = bench(&server, &[&virtual_hosted[..], &mixed].concat());
    assert_eq!(report["addressing_style"], "virtual");
    let total = row(&report, "total");
    assert_eq!(
        (&total["ops"], &total["errors"]),
        (&300.into(), &0.into()),
        "{report}"
    );
    assert_eq!(bucket_names(&server), Vec::<String>::new());
    // ListObjectsV2 pages with the bucket in the host name.
    let list = [
        "--mode",
        "list",
        "--objects",
        "30",
        "--max-keys",
        "7",
        "--count",
        "20",
    ];
    let report = bench(&server, &[&virtual_hosted[..], &list].concat());
    assert_eq!(row(&report, "list")["errors"], 0, "{report}");
    assert_eq!(bucket_names(&server), Vec::<String>::new());
    // An IP address has no subdomains: refused before any request.
    let out = run_bench(
        &server,
        &[
            "--addressing-style",
            "virtual",
            "--mode",
            "put",
            "--count",
            "1",
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("not an IP address"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bench_smoke_a_multipart_run_leaves_no_upload_in_progress_even_when_creates_time_out() {
    let server = Server::start();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = server.client();
    rt.block_on(client.create_bucket().bucket("uploads").send())
        .unwrap();
    // With a 1 ms limit, CreateMultipartUpload times out on the client while the server makes the upload:
    // nobody has its id, and only cleanup's listing can find and abort it.
    let out = run_bench(
        &server,
        &[
            "--bucket",
            "uploads",
            "--mode",
            "multipart",
            "--size",
            "6MiB",
            "--part-size",
            "5MiB",
            "--count",
            "4",
            "--timeout",
            "1ms",
        ],
    );
    assert!(!out.status.success(), "every upload timed out");
    let left = rt
        .block_on(client.list_multipart_uploads().bucket("uploads").send())
        .unwrap();
    assert_eq!(
        left.uploads().len(),
        0,
        "{:?}\n{}",
        left.uploads(),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn bucket_names(server: &Server) -> Vec<String> {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let buckets = rt.block_on(server.client().list_buckets().send()).unwrap();
    buckets
        .buckets()
        .iter()
        .filter_map(|b| b.name().map(str::to_owned))
        .collect()
}

/// The report row of `op`.
fn row<'a>(report: &'a serde_json::Value, op: &str) -> &'a serde_json::Value {
    report["ops"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["op"] == op))
        .unwrap_or_else(|| panic!("no {op} row in {report}"))
}

/// Runs `strata bench --compare a b`.
fn compare(a: &Path, b: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["bench", "--compare"])
        .args([a, b])
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .output()
        .expect("run strata bench --compare")
}

#[test]
fn bench_smoke_distributions_buckets_prefixes_and_compare() {
    let server = Server::start();
    // Sizes drawn from a range, Zipf keys, objects spread over 3 buckets and 4 prefixes.
    let zipf = bench(
        &server,
        &[
            "--mode",
            "get",
            "--size",
            "4KiB..64KiB",
            "--keys",
            "zipf",
            "--zipf-s",
            "1.2",
            "--objects",
            "30",
            "--buckets",
            "3",
            "--prefixes",
            "4",
            "--concurrency",
            "8",
            "--count",
            "300",
        ],
    );
    assert_eq!(total_ops_and_errors(&zipf), (300, 0), "{zipf}");
    assert_eq!(zipf["sizes"], "uniform 4KiB..64KiB");
    assert_eq!(zipf["keys"], "zipf s=1.2");
    assert_eq!(
        (zipf["buckets"].as_u64(), zipf["prefixes"].as_u64()),
        (Some(3), Some(4))
    );
    let get = row(&zipf, "get");
    let bytes = get["bytes"].as_u64().unwrap();
    assert!(
        (300 * 4096..=300 * 65536).contains(&bytes),
        "bytes moved are the drawn sizes: {bytes}"
    );
    // Log-normal sizes (signed payloads of many sizes), sequential keys, mixed operations.
    let mixed = bench(
        &server,
        &[
            "--mode",
            "mixed",
            "--size-dist",
            "lognormal",
            "--size",
            "8KiB",
            "--size-sigma",
            "0.8",
            "--size-max",
            "128KiB",
            "--keys",
            "seq",
            "--objects",
            "20",
            "--buckets",
            "2",
            "--prefixes",
            "3",
            "--concurrency",
            "4",
            "--count",
            "300",
        ],
    );
    assert_eq!(total_ops_and_errors(&mixed).1, 0, "{mixed}");
    assert_eq!(mixed["keys"], "seq");
    // PUTs of drawn sizes, spread too.
    let put = bench(
        &server,
        &[
            "--mode",
            "put",
            "--size",
            "1..20KiB",
            "--buckets",
            "2",
            "--prefixes",
            "5",
            "--concurrency",
            "6",
            "--count",
            "200",
        ],
    );
    assert_eq!(total_ops_and_errors(&put), (200, 0), "{put}");
    assert_eq!(
        bucket_names(&server),
        Vec::<String>::new(),
        "every bucket the runs created was deleted"
    );
    // --compare on two of the reports.
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a.json"), tmp.path().join("b.json"));
    std::fs::write(&a, zipf.to_string()).unwrap();
    std::fs::write(&b, mixed.to_string()).unwrap();
    let out = compare(&a, &b);
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for figure in [
        "get ops/s",
        "get MiB/s",
        "get p50 ms",
        "get p99.9 ms",
        "get max ms",
        "get errors",
        "generator CPU s/1k ops",
    ] {
        let line = table
            .lines()
            .find(|l| l.starts_with(figure))
            .unwrap_or_else(|| panic!("no {figure:?} row:\n{table}"));
        assert!(
            line.ends_with('x') || line.ends_with('=') || line.ends_with('-'),
            "{figure}: no ratio in {line:?}"
        );
    }
    assert!(table.contains("stat: only in B"), "{table}");
    // A file that is not a report is refused with its name.
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{\"not\": \"a report\"}").unwrap();
    let out = compare(&a, &junk);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("junk.json is not a `strata bench --json` report"),
        "{err}"
    );
}

/// The sample value of `series` on the edge's metrics page.
async fn edge_metric(admin: &str, series: &str) -> f64 {
    let page = reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    page.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[test]
fn bench_smoke_edge_get_through_a_real_edge_over_http_and_https() {
    let server = Server::start();
    // A signing S3 origin without a bucket: the viewer's path names the bucket, as the bench's URLs do.
    let config = format!(
        "listen = \"127.0.0.1:0\"\ntls_listen = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\n\
         edge_id = \"BENCH1\"\n[[distribution]]\nid = \"s3\"\nhostnames = [\"*\"]\n\
         [distribution.origin]\ntype = \"s3\"\nendpoint = \"{}\"\nregion = \"us-east-1\"\n\
         access_key = \"{ACCESS_KEY}\"\nsecret_key = \"{SECRET_KEY}\"\n",
        server.endpoint
    );
    let tmp = tempfile::tempdir().unwrap();
    let edge = EdgeProcess::start(&config, tmp.path());
    let ca = tmp.path().join("self-signed.pem");
    let ca = ca.to_str().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let hits_before = rt.block_on(edge_metric(
        &edge.admin,
        "strata_edge_requests_total{result=\"Hit\"}",
    ));
    let mut reported_hits = 0;
    let runs: [&[&str]; 3] = [
        &[
            "--edge-url",
            &edge.http,
            "--keys",
            "zipf",
            "--buckets",
            "2",
            "--prefixes",
            "2",
        ],
        &[
            "--edge-url",
            &edge.https,
            "--ca-cert",
            ca,
            "--keys",
            "uniform",
        ],
        &["--edge-url", &edge.https, "--insecure", "--keys", "seq"],
    ];
    for extra in runs {
        let mut args = vec![
            "--mode",
            "edge-get",
            "--size",
            "1KiB..32KiB",
            "--objects",
            "12",
            "--concurrency",
            "6",
            "--count",
            "200",
            "--bucket",
            "bench-edge",
        ];
        args.extend_from_slice(extra);
        let report = bench(&server, &args);
        assert_eq!(
            total_ops_and_errors(&report),
            (200, 0),
            "{extra:?}: {report}"
        );
        assert_eq!(row(&report, "edge-get")["ops"], 200);
        assert!(report["edge_url"].as_str().unwrap().starts_with("http"));
        let cache = &report["edge_cache"];
        let answered: u64 = ["hit", "miss", "other", "absent"]
            .iter()
            .map(|k| cache[k].as_u64().unwrap())
            .sum();
        assert_eq!(answered, 200, "every GET's X-Cache was counted: {cache}");
        reported_hits += cache["hit"].as_u64().unwrap();
    }
    assert!(reported_hits > 0, "the bench saw X-Cache hits");
    let hits = rt.block_on(edge_metric(
        &edge.admin,
        "strata_edge_requests_total{result=\"Hit\"}",
    )) - hits_before;
    assert!(hits > 0.0, "the edge answered from its cache");
    // Without trusting the self-signed certificate, HTTPS fails: verification is on by default.
    let out = run_bench(
        &server,
        &[
            "--mode",
            "edge-get",
            "--edge-url",
            &edge.https,
            "--objects",
            "2",
            "--count",
            "4",
            "--size",
            "1KiB",
            "--bucket",
            "bench-edge",
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let errors = report["errors"].as_object().unwrap();
    assert!(
        errors.keys().any(|e| e.starts_with("transport:")),
        "an unverified certificate is an error: {report}"
    );
    assert_eq!(bucket_names(&server), Vec::<String>::new());
}
