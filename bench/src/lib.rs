//! Strata's S3 load generator, behind `strata bench`.
//!
//! Owns the benchmark: command-line options ([`BenchArgs`]), a cheap S3 client (hyper 1 with keep-alive
//! pooling over HTTP or HTTPS and its own SigV4 signer, no SDK), a plain GET client for CDN edges, the
//! workloads (put, get, mixed, delete, list, list-versions, multipart, edge-get), size and key distributions,
//! measurement (hdrhistogram latencies, errors by type, CPU time of the generator and of the server), the
//! report (table or JSON) and the comparison of two JSON reports (`--compare`). It reaches servers over HTTP
//! only and knows nothing of Strata's internals, so it works against any S3 endpoint.
//!
//! A run: create the buckets if missing → generate one random payload buffer → prepare (upload the object pool
//! that get, mixed, edge-get, list and delete need; not measured) → warm-up (not measured) → measured phase,
//! bounded by `--duration` or `--count` → report → delete what the run created unless `--keep`.
//!
//! Modules: `units` parsing of sizes, durations and the mix; `dist` size and key distributions; `layout`
//! which bucket and prefix each object goes to; `sigv4` signing; `payload` zero-copy bodies (with
//! `prefix_hash` for signed bodies of drawn sizes); `transport` the pooled HTTP(S) client; `client` S3
//! requests; `edge_client` unsigned GETs through an edge; `multipart` one object as a multipart upload (and
//! [`multipart_smoke`]); `workload` workers and phases; `setup` buckets, prepare and cleanup; `stats`
//! histograms and counters (and the per-second record); `progress` the live bar; `cpu` `/proc` accounting;
//! `report` the output; `compare` two reports side by side; `test_support` (tests only) a scripted HTTP
//! server and test clients.

mod client;
mod compare;
mod cpu;
mod dist;
mod edge_client;
mod layout;
mod multipart;
mod payload;
mod prefix_hash;
mod progress;
mod report;
mod setup;
pub mod sigv4;
mod stats;
#[cfg(test)]
mod test_support;
mod transport;
mod units;
mod worker;
mod workload;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;

pub use dist::{KeyDist, SizeArg};
pub use multipart::smoke as multipart_smoke;

use crate::dist::SizeDist;

/// Runs `strata bench`: a benchmark, or with `--compare` the comparison of two reports.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    match &args.compare {
        Some(files) => compare::run(&files[0], &files[1]),
        None => workload::run(args).await,
    }
}

/// How a request names its bucket: aws-cli's `addressing_style`, warp's `--lookup`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Addressing {
    /// `http://HOST/BUCKET/KEY`: works with every endpoint, IP addresses included
    #[default]
    Path,
    /// `http://BUCKET.HOST/KEY`: what AWS prefers and some S3 services require; needs an endpoint host name
    /// under which BUCKET.HOST resolves (names under `localhost` resolve to the loopback here, RFC 6761)
    Virtual,
}

impl Addressing {
    /// What a report's header adds after the endpoint: nothing for the path style.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            Addressing::Path => "",
            Addressing::Virtual => " (virtual-hosted)",
        }
    }
}

/// The workload to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// PUT new objects `bench/<run>/<worker>/<n>`.
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
    /// Upload new objects `bench/<run>/<worker>/<n>` as multipart uploads: CreateMultipartUpload, `--part-size`
    /// parts with up to `--parts-parallel` UploadPart requests at once, CompleteMultipartUpload.
    Multipart,
    /// Plain unsigned GETs of the pool through `--edge-url` (a CDN edge or HTTP cache), for cache hits.
    EdgeGet,
}

/// How `--size` is drawn (`--size-dist`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SizeDistKind {
    /// Every object has `--size`.
    Fixed,
    /// Uniform over `--size MIN..MAX`.
    Uniform,
    /// Log-normal with median `--size`, `--size-sigma`, clamped to `--size-max`.
    Lognormal,
}

impl BenchArgs {
    /// The number of pool objects: `--objects`, or the default for this (largest) object size.
    fn pool_objects(&self) -> u64 {
        let largest = self.size_dist().map_or(0, |d| d.max());
        self.objects
            .unwrap_or_else(|| ((1u64 << 30) / largest.max(1)).clamp(1, DEFAULT_POOL))
    }

    /// How object sizes are drawn, from `--size`, `--size-dist`, `--size-sigma` and `--size-max`.
    fn size_dist(&self) -> anyhow::Result<SizeDist> {
        let kind = self.size_dist.unwrap_or(match self.size {
            SizeArg::Fixed(_) => SizeDistKind::Fixed,
            SizeArg::Range { .. } => SizeDistKind::Uniform,
        });
        if kind != SizeDistKind::Lognormal {
            anyhow::ensure!(
                self.size_sigma.is_none() && self.size_max.is_none(),
                "--size-sigma and --size-max apply to --size-dist lognormal only"
            );
        }
        match (kind, self.size) {
            (SizeDistKind::Fixed, SizeArg::Fixed(s)) => Ok(SizeDist::Fixed(s)),
            (SizeDistKind::Uniform, SizeArg::Range { min, max }) => {
                Ok(SizeDist::Uniform { min, max })
            }
            (SizeDistKind::Lognormal, SizeArg::Fixed(median)) => SizeDist::lognormal(
                median,
                self.size_sigma.unwrap_or(DEFAULT_SIGMA),
                self.size_max,
            )
            .map_err(anyhow::Error::msg),
            (SizeDistKind::Uniform, SizeArg::Fixed(_)) => {
                anyhow::bail!("--size-dist uniform needs a range, e.g. --size 4KiB..1MiB")
            }
            (_, SizeArg::Range { .. }) => anyhow::bail!(
                "--size MIN..MAX is a uniform range; --size-dist {} takes one --size",
                if kind == SizeDistKind::Fixed {
                    "fixed"
                } else {
                    "lognormal (the median)"
                }
            ),
        }
    }

    /// Whether reads pick from the pool (and so `--keys` applies).
    fn reads_pool(&self) -> bool {
        matches!(self.mode, Mode::Get | Mode::Mixed | Mode::EdgeGet)
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
        let sizes = self.size_dist()?;
        if !self.reads_pool() {
            anyhow::ensure!(
                self.keys == KeyDist::Uniform,
                "--keys applies to --mode get, mixed and edge-get only (puts always write new keys)"
            );
        }
        anyhow::ensure!(
            self.zipf_s.is_none() || self.keys == KeyDist::Zipf,
            "--zipf-s applies to --keys zipf only"
        );
        if self.lists() {
            anyhow::ensure!(
                self.prefixes == 1 && self.buckets == 1,
                "--prefixes and --buckets do not apply to the list modes (list one prefix with --prefix)"
            );
        }
        match (self.mode, &self.edge_url) {
            (Mode::EdgeGet, None) => anyhow::bail!("--mode edge-get needs --edge-url"),
            (Mode::EdgeGet, Some(_)) => anyhow::ensure!(
                !(self.edge_root_bucket && self.buckets > 1),
                "--edge-root-bucket serves one bucket at the edge's root; it cannot be used with --buckets"
            ),
            (_, Some(_)) => anyhow::bail!("--edge-url applies to --mode edge-get only"),
            (_, None) => anyhow::ensure!(
                !self.edge_root_bucket,
                "--edge-root-bucket applies to --mode edge-get only"
            ),
        }
        anyhow::ensure!(
            self.mix.is_none() || self.mode == Mode::Mixed,
            "--mix applies to --mode mixed only"
        );
        anyhow::ensure!(
            self.warmup.is_none() || self.mode != Mode::Delete,
            "--warmup does not apply to --mode delete (a warm-up would delete the objects it measures)"
        );
        if self.mode == Mode::Multipart {
            anyhow::ensure!(
                sizes.is_fixed(),
                "--mode multipart takes one --size (no size distribution)"
            );
        }
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
        let size = sizes.max();
        let parts = multipart::part_count(size, self.part_size());
        anyhow::ensure!(
            parts <= multipart::MAX_PARTS as u64,
            "--size {} in parts of --part-size {} makes {parts} parts; S3 allows at most {}",
            units::format_size(size),
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
/// `--size-sigma` when not given.
const DEFAULT_SIGMA: f64 = 1.0;
/// `--zipf-s` when not given.
const DEFAULT_ZIPF_S: f64 = 1.1;

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
            Mode::EdgeGet => "edge-get",
        }
    }
}

/// Options of `strata bench`.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// S3 endpoint, e.g. http://127.0.0.1:9000 or https://s3.example.com.
    #[arg(long, required_unless_present = "compare")]
    pub endpoint: Option<String>,
    /// How requests name the bucket: in the path, or in the host name (virtual-hosted style).
    #[arg(long, value_enum, default_value_t = Addressing::Path)]
    pub addressing_style: Addressing,
    /// Access key.
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        hide_env_values = true,
        required_unless_present = "compare"
    )]
    pub access_key: Option<String>,
    /// Secret key.
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        hide_env_values = true,
        required_unless_present = "compare"
    )]
    pub secret_key: Option<String>,
    /// Compare two `--json` reports side by side (ratio B/A per row) instead of running a benchmark.
    #[arg(long, num_args = 2, value_names = ["A.json", "B.json"], conflicts_with = "endpoint")]
    pub compare: Option<Vec<PathBuf>>,
    /// Region used in signatures (and in CreateBucket outside us-east-1).
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Bucket to use; created when missing (and then deleted at the end unless --keep).
    #[arg(long, default_value = "strata-bench")]
    pub bucket: String,
    /// Workload.
    #[arg(long, value_enum, default_value_t = Mode::Put)]
    pub mode: Mode,
    /// Object size: 4KiB, 1MiB, 64MiB, 1GiB (binary), 10MB (decimal), or bytes; MIN..MAX (e.g. 4KiB..1MiB)
    /// draws sizes uniformly; with --size-dist lognormal it is the median.
    #[arg(long, default_value = "1MiB", value_parser = dist::parse_size_arg)]
    pub size: SizeArg,
    /// How sizes are drawn [default: fixed for one --size, uniform for MIN..MAX].
    #[arg(long, value_enum)]
    pub size_dist: Option<SizeDistKind>,
    /// Log-normal sizes: σ of the natural log of the size [default: 1.0].
    #[arg(long, value_parser = dist::parse_sigma)]
    pub size_sigma: Option<f64>,
    /// Log-normal sizes: the largest size drawn, at most 5GiB [default: the 99.9th percentile,
    /// median·e^(3.09σ), or 5GiB if less].
    #[arg(long, value_parser = units::parse_size)]
    pub size_max: Option<u64>,
    /// Which pool object a GET or HEAD reads (get, mixed, edge-get).
    #[arg(long, value_enum, default_value_t = KeyDist::Uniform)]
    pub keys: KeyDist,
    /// Exponent of --keys zipf: object i is read with weight 1/i^s [default: 1.1].
    #[arg(long, value_parser = dist::parse_zipf_s)]
    pub zipf_s: Option<f64>,
    /// Spread the keys over N prefixes `p<i>/` (1: no prefix).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub prefixes: u32,
    /// Spread the objects over N buckets `<bucket>-<i>` (created when missing, deleted at the end unless
    /// --keep); 1: just --bucket.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub buckets: u32,
    /// Edge-get mode: base URL of the edge or cache, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub edge_url: Option<String>,
    /// Edge-get mode: the edge serves --bucket at its root (URLs `<edge-url>/<key>`, a distribution whose S3
    /// origin names the bucket) instead of `<edge-url>/<bucket>/<key>`.
    #[arg(long)]
    pub edge_root_bucket: bool,
    /// HTTPS: do not verify server certificates (self-signed test certificates).
    #[arg(long, conflicts_with = "ca_cert")]
    pub insecure: bool,
    /// HTTPS: also trust the CA certificate(s) in this PEM file.
    #[arg(long)]
    pub ca_cert: Option<PathBuf>,
    /// Operations in flight (one worker, and one pooled connection, each) [default: 32; 1 in multipart mode,
    /// where each object has --parts-parallel requests in flight].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub concurrency: Option<u32>,
    /// Length of the measured phase: 30s, 500ms, 2m, 1m30s. Default 10s when --count is not given.
    #[arg(long, value_parser = units::parse_positive_duration, conflicts_with = "count")]
    pub duration: Option<Duration>,
    /// Number of operations of the measured phase, instead of a duration.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub count: Option<u64>,
    /// Unmeasured warm-up before the measured phase. Default 2s with --duration, none with --count; refused
    /// in delete mode.
    #[arg(long, value_parser = units::parse_duration)]
    pub warmup: Option<Duration>,
    /// Objects uploaded before the run for get, mixed and list (and delete by duration). Default 64, fewer
    /// for large objects so the pool holds at most 1 GiB (at least one object).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub objects: Option<u64>,
    /// Mixed-mode ratio of operations (get, put, delete, stat) [default: get=70,put=20,delete=5,stat=5].
    #[arg(long, value_parser = units::parse_mix_arg)]
    pub mix: Option<String>,
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
    /// instead of uploading `--objects` objects under bench/<run>/list/ first.
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
    /// Give up on one operation after this long (set-up requests wait at most 30s of it; cleanup requests at
    /// least 30s).
    #[arg(long, default_value = "5m", value_parser = units::parse_positive_duration)]
    pub timeout: Duration,
    /// No progress bar or progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

impl BenchArgs {
    /// `(endpoint, access key, secret key)`, which every run needs (clap requires them without --compare).
    fn credentials(&self) -> anyhow::Result<(&str, &str, &str)> {
        Ok((
            self.endpoint.as_deref().context("--endpoint is required")?,
            self.access_key
                .as_deref()
                .context("--access-key (or AWS_ACCESS_KEY_ID) is required")?,
            self.secret_key
                .as_deref()
                .context("--secret-key (or AWS_SECRET_ACCESS_KEY) is required")?,
        ))
    }

    /// The buckets objects go to: --bucket, or `<bucket>-0` .. `<bucket>-(N-1)` with --buckets N > 1.
    fn bucket_names(&self) -> Vec<String> {
        match self.buckets {
            1 => vec![self.bucket.clone()],
            n => (0..n).map(|i| format!("{}-{i}", self.bucket)).collect(),
        }
    }

    /// Exponent of --keys zipf.
    fn zipf_s(&self) -> f64 {
        self.zipf_s.unwrap_or(DEFAULT_ZIPF_S)
    }
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

    #[test]
    fn size_and_key_options() {
        let a = parse(&["--size", "4KiB..1MiB", "--mode", "get", "--keys", "zipf"]).unwrap();
        assert_eq!(
            a.size_dist().unwrap(),
            SizeDist::Uniform {
                min: 4096,
                max: 1 << 20
            }
        );
        assert_eq!((a.keys, a.zipf_s()), (KeyDist::Zipf, 1.1));
        a.validate().unwrap();
        // the default pool holds at most 1 GiB of the largest size
        assert_eq!(
            parse(&["--size", "1KiB..64MiB"]).unwrap().pool_objects(),
            16
        );
        let a = parse(&[
            "--size-dist",
            "lognormal",
            "--size",
            "64KiB",
            "--size-sigma",
            "0.5",
            "--size-max",
            "1MiB",
        ])
        .unwrap();
        assert_eq!(
            a.size_dist().unwrap(),
            SizeDist::LogNormal {
                median: 65536,
                sigma: 0.5,
                max: 1 << 20
            }
        );
        let bad: [&[&str]; 6] = [
            &["--size-dist", "uniform", "--size", "4KiB"],
            &["--size-dist", "lognormal", "--size", "1KiB..2KiB"],
            &["--size-sigma", "1"],
            &["--keys", "zipf", "--mode", "put"],
            &["--zipf-s", "1.2", "--mode", "get"],
            &["--mode", "multipart", "--size", "5MiB..10MiB"],
        ];
        for args in bad {
            let a = parse(args).unwrap();
            assert!(a.validate().is_err(), "{args:?} should be refused");
        }
        assert!(parse(&["--size", "2MiB..1MiB"]).is_err());
        assert!(parse(&["--keys", "pareto"]).is_err());
    }

    #[test]
    fn buckets_prefixes_and_edge_options() {
        let a = parse(&["--buckets", "3", "--prefixes", "4", "--bucket", "b"]).unwrap();
        assert_eq!(a.bucket_names(), ["b-0", "b-1", "b-2"]);
        a.validate().unwrap();
        assert_eq!(parse(&["--bucket", "b"]).unwrap().bucket_names(), ["b"]);
        assert!(parse(&["--buckets", "0"]).is_err());
        let a = parse(&["--mode", "list", "--buckets", "2"]).unwrap();
        assert!(a.validate().is_err(), "--buckets in list mode");
        let a = parse(&["--mode", "edge-get"]).unwrap();
        assert!(a.validate().is_err(), "edge-get without --edge-url");
        let a = parse(&["--mode", "edge-get", "--edge-url", "http://127.0.0.1:8080"]).unwrap();
        a.validate().unwrap();
        let a = parse(&[
            "--mode",
            "edge-get",
            "--edge-url",
            "http://e",
            "--edge-root-bucket",
            "--buckets",
            "2",
        ])
        .unwrap();
        assert!(a.validate().is_err(), "one root bucket, several buckets");
        let a = parse(&["--edge-url", "http://e"]).unwrap();
        assert!(a.validate().is_err(), "--edge-url outside edge-get");
        assert!(parse(&["--insecure", "--ca-cert", "ca.pem"]).is_err());
    }

    #[test]
    fn compare_needs_no_endpoint() {
        let a = Cli::try_parse_from(["bench", "--compare", "a.json", "b.json"])
            .unwrap()
            .args;
        assert_eq!(
            a.compare.as_deref(),
            Some(&[PathBuf::from("a.json"), PathBuf::from("b.json")][..])
        );
        assert!(Cli::try_parse_from(["bench", "--compare", "a.json"]).is_err());
        assert!(
            parse(&["--compare", "a.json", "b.json"]).is_err(),
            "--compare with --endpoint"
        );
        // without --compare, the endpoint is still required
        let no_endpoint = Cli::try_parse_from(["bench", "--access-key", "a", "--secret-key", "s"]);
        assert!(no_endpoint.is_err());
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
        (args.endpoint, args.access_key, args.secret_key) =
            (Some(endpoint), Some(key), Some(secret));
        rt.block_on(run(args)).unwrap();
    }
}
