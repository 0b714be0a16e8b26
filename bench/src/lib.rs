//! Strata's S3 load generator, behind `strata bench`.
//!
//! Owns the benchmark: command-line options ([`BenchArgs`]), a cheap S3 client (hyper 1 with keep-alive
//! pooling and its own SigV4 signer, no SDK), the workloads (put, get, mixed, delete, list, list-versions,
//! multipart), measurement (hdrhistogram latencies, errors by type, CPU time of the generator and of the
//! server) and the report (table or JSON). It reaches servers over HTTP only and knows nothing of Strata's
//! internals, so it works against any S3 endpoint.
//!
//! A run: create the bucket if missing → generate one random payload buffer → prepare (upload the object pool
//! that get, mixed, list and delete need; not measured) → warm-up (not measured) → measured phase, bounded by
//! `--duration` or `--count` → report → delete what the run created unless `--keep`.
//!
//! Modules: `units` parsing of sizes, durations and the mix; `sigv4` signing; `payload` zero-copy bodies;
//! `client` S3 requests; `multipart` one object as a multipart upload (and [`multipart_smoke`]); `workload`
//! workers and phases; `setup` bucket, prepare and cleanup; `stats` histograms and counters; `cpu` `/proc`
//! accounting; `report` the output.

mod client;
mod cpu;
mod multipart;
mod payload;
mod report;
mod setup;
pub mod sigv4;
mod stats;
mod units;
mod workload;

use std::time::Duration;

pub use multipart::smoke as multipart_smoke;
pub use workload::run;

/// The workload to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// PUT new objects `bench/<worker>/<n>`.
    Put,
    /// GET random objects of a pool of `--objects` objects uploaded first.
    Get,
    /// GET, PUT, DELETE and HEAD by the `--mix` ratio.
    Mixed,
    /// DELETE objects uploaded first (`--count`, or `--objects` when run by duration); stops when none are left.
    Delete,
    /// ListObjectsV2 pages of `--max-keys` over a prefix of `--objects` objects uploaded first, or over the
    /// objects already under `--prefix`.
    List,
    /// ListObjectVersions pages of `--max-keys`, over the same objects as list mode.
    ListVersions,
    /// Upload new objects `bench/<worker>/<n>` as multipart uploads: CreateMultipartUpload, `--part-size`
    /// parts with up to `--parts-parallel` UploadPart requests at once, CompleteMultipartUpload.
    Multipart,
}

impl BenchArgs {
    /// The number of pool objects: `--objects`, or the default for this object size.
    fn pool_objects(&self) -> u64 {
        self.objects
            .unwrap_or_else(|| ((1u64 << 30) / self.size.max(1)).clamp(1, DEFAULT_POOL))
    }

    /// Objects (operations) in flight: `--concurrency`, else 1 in multipart mode (each object already has
    /// `--parts-parallel` requests in flight) and 32 otherwise.
    fn concurrency(&self) -> usize {
        let default = match self.mode {
            Mode::Multipart => 1,
            _ => DEFAULT_CONCURRENCY,
        };
        self.concurrency.unwrap_or(default) as usize
    }

    /// Part size of multipart mode.
    fn part_size(&self) -> u64 {
        self.part_size.unwrap_or(DEFAULT_PART_SIZE)
    }

    /// UploadPart requests in flight per object in multipart mode.
    fn parts_parallel(&self) -> usize {
        self.parts_parallel.unwrap_or(DEFAULT_PARTS_PARALLEL) as usize
    }

    /// Whether the mode pages through a listing.
    fn lists(&self) -> bool {
        matches!(self.mode, Mode::List | Mode::ListVersions)
    }

    /// Checks the options that depend on each other.
    fn validate(&self) -> anyhow::Result<()> {
        if !self.lists() {
            anyhow::ensure!(
                self.prefix.is_none() && self.start_after.is_none(),
                "--prefix and --start-after apply to --mode list and list-versions only"
            );
        }
        if self.mode != Mode::Multipart {
            anyhow::ensure!(
                self.part_size.is_none() && self.parts_parallel.is_none(),
                "--part-size and --parts-parallel apply to --mode multipart only"
            );
            return Ok(());
        }
        let parts = multipart::part_count(self.size, self.part_size());
        anyhow::ensure!(
            parts <= multipart::MAX_PARTS as u64,
            "--size {} in parts of --part-size {} makes {parts} parts; S3 allows at most {}",
            units::format_size(self.size),
            units::format_size(self.part_size()),
            multipart::MAX_PARTS
        );
        Ok(())
    }
}

/// Pool objects when `--objects` is not given (and objects are at most 16 MiB).
const DEFAULT_POOL: u64 = 64;
/// `--concurrency` when not given, except in multipart mode (1).
const DEFAULT_CONCURRENCY: u32 = 32;
/// `--part-size` when not given.
const DEFAULT_PART_SIZE: u64 = 64 << 20;
/// `--parts-parallel` when not given.
const DEFAULT_PARTS_PARALLEL: u32 = 8;

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Put => "put",
            Mode::Get => "get",
            Mode::Mixed => "mixed",
            Mode::Delete => "delete",
            Mode::List => "list",
            Mode::ListVersions => "list-versions",
            Mode::Multipart => "multipart",
        }
    }
}

/// Options of `strata bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// S3 endpoint, e.g. http://127.0.0.1:9000 (plain HTTP for now; path-style requests).
    #[arg(long)]
    pub endpoint: String,
    /// Access key.
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    pub access_key: String,
    /// Secret key.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub secret_key: String,
    /// Region used in signatures (and in CreateBucket outside us-east-1).
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Bucket to use; created when missing (and then deleted at the end unless --keep).
    #[arg(long, default_value = "strata-bench")]
    pub bucket: String,
    /// Workload.
    #[arg(long, value_enum, default_value_t = Mode::Put)]
    pub mode: Mode,
    /// Object size: 4KiB, 1MiB, 64MiB, 1GiB (binary), 10MB (decimal), or bytes.
    #[arg(long, default_value = "1MiB", value_parser = units::parse_size)]
    pub size: u64,
    /// Operations in flight (one worker, and one pooled connection, each) [default: 32; 1 in multipart mode,
    /// where each object has --parts-parallel requests in flight].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: Option<u32>,
    /// Length of the measured phase: 30s, 500ms, 2m, 1m30s. Default 10s when --count is not given.
    #[arg(long, value_parser = units::parse_duration, conflicts_with = "count")]
    pub duration: Option<Duration>,
    /// Number of operations of the measured phase, instead of a duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Unmeasured warm-up before the measured phase. Default 2s with --duration, none with --count; never
    /// in delete mode.
    #[arg(long, value_parser = units::parse_duration)]
    pub warmup: Option<Duration>,
    /// Objects uploaded before the run for get, mixed and list (and delete by duration). Default 64, fewer
    /// for large objects so the pool holds at most 1 GiB (at least one object).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub objects: Option<u64>,
    /// Mixed-mode ratio of operations (get, put, delete, stat).
    #[arg(long, default_value = "get=70,put=20,delete=5,stat=5", value_parser = units::parse_mix_arg)]
    pub mix: String,
    /// Multipart mode: size of every part but the last (which holds the rest) [default: 64MiB].
    #[arg(long, value_parser = parse_part_size)]
    pub part_size: Option<u64>,
    /// Multipart mode: UploadPart requests in flight per object [default: 8].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub parts_parallel: Option<u32>,
    /// Keys per page in list mode (ListObjectsV2), versions per page in list-versions mode.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub max_keys: u32,
    /// List and list-versions modes: list the objects already under this prefix ("" for the whole bucket)
    /// instead of uploading `--objects` objects under bench/list/ first.
    #[arg(long)]
    pub prefix: Option<String>,
    /// List and list-versions modes: start every pass after this key (ListObjectsV2 start-after,
    /// ListObjectVersions key-marker), e.g. to time pages deep inside a large bucket.
    #[arg(long)]
    pub start_after: Option<String>,
    /// Send x-amz-content-sha256: UNSIGNED-PAYLOAD instead of the body's SHA-256.
    #[arg(long)]
    pub unsigned_payload: bool,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
    /// Leave the objects (and the bucket) in place.
    #[arg(long)]
    pub keep: bool,
    /// Pid of the server, to report its CPU time per 1,000 ops and per GiB, and its memory (Linux /proc).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Give up on one operation after this long.
    #[arg(long, default_value = "5m", value_parser = units::parse_duration)]
    pub timeout: Duration,
    /// No progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `--part-size`: a size of at least one byte (S3 itself wants 5 MiB for every part but the last; smaller
/// sizes are allowed here to see how a server refuses them).
fn parse_part_size(s: &str) -> Result<u64, String> {
    match units::parse_size(s)? {
        0 => Err("--part-size must be at least 1 byte".into()),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[derive(clap::Parser)]
    struct Cli {
        #[command(flatten)]
        args: BenchArgs,
    }

    fn parse(extra: &[&str]) -> Result<BenchArgs, clap::Error> {
        let base = [
            "bench",
            "--endpoint",
            "http://127.0.0.1:1",
            "--access-key",
            "a",
        ];
        let args = base.iter().chain(["--secret-key", "s"].iter()).chain(extra);
        Cli::try_parse_from(args).map(|c| c.args)
    }

    #[test]
    fn multipart_options() {
        let a = parse(&["--mode", "multipart", "--size", "2GiB"]).unwrap();
        assert_eq!(
            (a.concurrency(), a.part_size(), a.parts_parallel()),
            (1, 64 << 20, 8)
        );
        a.validate().unwrap();
        let a = parse(&["--size", "2GiB", "--part-size", "256MiB"]).unwrap();
        assert_eq!(a.concurrency(), 32);
        assert!(a.validate().is_err(), "--part-size outside multipart mode");
        let a = parse(&[
            "--mode",
            "multipart",
            "--size",
            "1GiB",
            "--part-size",
            "64KiB",
        ])
        .unwrap();
        assert!(a.validate().is_err(), "16,384 parts");
        assert!(parse(&["--mode", "multipart", "--part-size", "0"]).is_err());
        assert!(parse(&["--mode", "multipart", "--parts-parallel", "0"]).is_err());
    }

    #[test]
    fn list_options() {
        let a = parse(&[
            "--mode",
            "list-versions",
            "--prefix",
            "",
            "--start-after",
            "k",
        ])
        .unwrap();
        assert_eq!(a.mode, Mode::ListVersions);
        assert_eq!(
            (a.prefix.as_deref(), a.start_after.as_deref()),
            (Some(""), Some("k"))
        );
        a.validate().unwrap();
        parse(&["--mode", "list", "--prefix", "p/"])
            .unwrap()
            .validate()
            .unwrap();
        let a = parse(&["--mode", "put", "--prefix", "p/"]).unwrap();
        assert!(a.validate().is_err(), "--prefix outside the list modes");
        let a = parse(&["--start-after", "k"]).unwrap();
        assert!(
            a.validate().is_err(),
            "--start-after outside the list modes"
        );
    }

    /// Against a running server: `STRATA_BENCH_LIVE=http://127.0.0.1:9000 AWS_ACCESS_KEY_ID=..
    /// AWS_SECRET_ACCESS_KEY=.. cargo test -p strata-bench -- --ignored live`.
    #[test]
    #[ignore = "needs a running S3 endpoint in STRATA_BENCH_LIVE"]
    fn live_multipart() {
        let endpoint = std::env::var("STRATA_BENCH_LIVE").expect("STRATA_BENCH_LIVE");
        let key = std::env::var("AWS_ACCESS_KEY_ID").expect("AWS_ACCESS_KEY_ID");
        let secret = std::env::var("AWS_SECRET_ACCESS_KEY").expect("AWS_SECRET_ACCESS_KEY");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(multipart_smoke(
            &endpoint,
            &key,
            &secret,
            "strata-bench-live",
        ))
        .unwrap();
        let mut args = parse(&[
            "--mode",
            "multipart",
            "--size",
            "23MiB",
            "--part-size",
            "5MiB",
            "--parts-parallel",
            "3",
            "--concurrency",
            "2",
            "--count",
            "4",
            "--bucket",
            "strata-bench-live",
        ])
        .unwrap();
        (args.endpoint, args.access_key, args.secret_key) = (endpoint, key, secret);
        rt.block_on(run(args)).unwrap();
    }
}
