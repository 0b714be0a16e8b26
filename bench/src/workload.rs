//! The run itself: one worker task per unit of concurrency, each issuing one operation at a time over the
//! shared connection pool and recording into its own histograms (no shared locks on the hot path; only
//! relaxed atomic counters for the progress line). Phases (warm-up, measured) are bounded by a deadline or a
//! count of operations, and by the interrupt flag; every worker loop checks them before each operation.
//! In multipart mode one operation is one whole object, whose parts the worker sends as parallel tasks
//! ([`crate::multipart`]), recording each part's latency too.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use crate::client::{ClientConfig, OpError, S3Client};
use crate::cpu::{CpuTimes, Memory};
use crate::multipart::{self, Uploader};
use crate::payload::Payload;
use crate::report::{self, CpuCost, Report};
use crate::stats::{Progress, Stats};
use crate::units::{Mix, OpKind};
use crate::{BenchArgs, Mode, setup};

/// Measured-phase length when neither `--duration` nor `--count` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// Warm-up when running by duration and `--warmup` is not given.
const DEFAULT_WARMUP: Duration = Duration::from_secs(2);
/// Prefix of the objects listed in list mode.
const LIST_PREFIX: &str = "bench/list/";

/// Runs `strata bench`: prepare, warm up, measure, report, clean up.
pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mix = Mix::parse(&args.mix).map_err(anyhow::Error::msg)?;
    args.validate()?;
    let concurrency = args.concurrency();
    // Multipart: every object has up to --parts-parallel requests (connections) in flight.
    let connections = match args.mode {
        Mode::Multipart => concurrency * args.parts_parallel(),
        _ => concurrency,
    };
    let server_pid = args.server_pid.map(|p| p.to_string());
    if let Some(pid) = &server_pid {
        CpuTimes::of(pid).with_context(|| format!("--server-pid: cannot read /proc/{pid}/stat"))?;
    }
    let client = Arc::new(S3Client::new(&ClientConfig {
        endpoint: &args.endpoint,
        access_key: &args.access_key,
        secret_key: &args.secret_key,
        region: &args.region,
        bucket: &args.bucket,
        unsigned_payload: args.unsigned_payload,
        pool_size: connections,
    })?);
    let stop = Arc::new(AtomicBool::new(false));
    let interrupt = spawn_interrupt_handler(stop.clone());
    let created_bucket = setup::ensure_bucket(&client, &args.region).await?;
    if created_bucket && !args.quiet {
        eprintln!("created bucket {}", args.bucket);
    }
    let prepared = Arc::new(prepared_keys(&args));
    let mut workers: Vec<Worker> = (0..concurrency).map(Worker::new).collect();
    if args.mode == Mode::Delete {
        for (i, key) in prepared.iter().enumerate().rev() {
            workers[i % concurrency].to_delete.push(key.clone());
        }
    }
    let bench = Bench {
        args: &args,
        mix,
        client: &client,
        stop: &stop,
        prepared: &prepared,
    };
    let outcome = bench.run(&mut workers, server_pid.as_deref()).await;
    match &outcome {
        Ok(report) if args.json => println!("{}", report.to_json()),
        Ok(report) => print!("{}", report.to_table()),
        Err(_) => {}
    }
    let cleaned = if args.keep {
        Ok(())
    } else {
        let mut keys: Vec<String> = prepared.iter().cloned().collect();
        for w in &workers {
            keys.extend(w.live.iter().map(|n| put_key(w.id, *n)));
        }
        setup::cleanup(&client, keys, created_bucket, args.timeout, args.quiet).await
    };
    interrupt.abort();
    outcome?;
    cleaned
}

/// Keys uploaded before the run: the pool that get, mixed and list read, or the objects delete removes.
fn prepared_keys(args: &BenchArgs) -> Vec<String> {
    let (prefix, n) = match args.mode {
        Mode::Put | Mode::Multipart => return Vec::new(),
        Mode::Get | Mode::Mixed => ("bench/pool/", args.pool_objects()),
        // with --prefix, the objects already there are listed
        Mode::List | Mode::ListVersions if args.prefix.is_some() => return Vec::new(),
        Mode::List | Mode::ListVersions => (LIST_PREFIX, args.pool_objects()),
        Mode::Delete => (
            "bench/del/",
            args.count.unwrap_or_else(|| args.pool_objects()),
        ),
    };
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

fn put_key(worker: usize, n: u64) -> String {
    format!("bench/{worker}/{n}")
}

/// First Ctrl-C: stop the run (then report and clean up). Second: exit at once.
fn spawn_interrupt_handler(stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        eprintln!("interrupted: stopping (Ctrl-C again to exit without cleanup)");
        stop.store(true, Ordering::Relaxed);
        if tokio::signal::ctrl_c().await.is_ok() {
            std::process::exit(130);
        }
    })
}

/// One run's settings, borrowed for the phases.
struct Bench<'a> {
    args: &'a BenchArgs,
    mix: Mix,
    client: &'a Arc<S3Client>,
    stop: &'a Arc<AtomicBool>,
    prepared: &'a Arc<Vec<String>>,
}

impl Bench<'_> {
    /// Generates the payload, prepares, warms up and measures; `workers` keep what they created, for cleanup.
    async fn run(
        &self,
        workers: &mut Vec<Worker>,
        server_pid: Option<&str>,
    ) -> anyhow::Result<Report> {
        let args = self.args;
        let (size, signed) = (args.size, !args.unsigned_payload);
        let parts =
            (args.mode == Mode::Multipart).then(|| multipart::split_parts(size, args.part_size()));
        let payload = Arc::new(
            tokio::task::spawn_blocking(move || match parts {
                Some(parts) => Payload::with_parts(size, parts, signed),
                None => Payload::new(size, signed),
            })
            .await
            .context("generating the payload")?,
        );
        let concurrency = workers.len();
        setup::upload_all(
            self.client,
            &payload,
            self.prepared,
            concurrency,
            args.timeout,
            self.stop,
            args.quiet,
        )
        .await?;
        let ctx = Arc::new(Ctx {
            client: self.client.clone(),
            payload,
            mode: args.mode,
            mix: self.mix.clone(),
            pool: self.prepared.clone(),
            max_keys: args.max_keys,
            list_prefix: args
                .prefix
                .clone()
                .unwrap_or_else(|| LIST_PREFIX.to_owned()),
            start_after: args.start_after.clone(),
            parts_parallel: args.parts_parallel(),
            timeout: args.timeout,
            stop: self.stop.clone(),
            progress: Progress::default(),
            quiet: args.quiet,
        });
        let warmup = match (args.mode, args.warmup) {
            (Mode::Delete, _) => Duration::ZERO,
            (_, Some(w)) => w,
            (_, None) if args.count.is_some() => Duration::ZERO,
            (_, None) => DEFAULT_WARMUP,
        };
        if !warmup.is_zero() {
            run_phase(
                &ctx,
                workers,
                Limit::Until(Instant::now() + warmup),
                false,
                "warmup",
            )
            .await?;
        }
        let limit = match args.count {
            Some(n) => Limit::Count(AtomicU64::new(n)),
            None => Limit::Until(Instant::now() + args.duration.unwrap_or(DEFAULT_DURATION)),
        };
        let cpu_before = CpuTimes::of("self").unwrap_or_default();
        let server_before = server_pid.map(CpuTimes::of).transpose()?;
        let elapsed = run_phase(&ctx, workers, limit, true, args.mode.name()).await?;
        let cpu = CpuTimes::of("self").unwrap_or_default().since(&cpu_before);
        let server = match (server_pid, server_before) {
            (Some(pid), Some(before)) => {
                Some((CpuTimes::of(pid)?.since(&before), Memory::of(pid)?))
            }
            _ => None,
        };
        let mut stats = Stats::default();
        for w in workers.iter() {
            stats.merge(&w.stats);
        }
        Ok(self.report(&stats, elapsed.as_secs_f64(), warmup, cpu, server))
    }

    fn report(
        &self,
        stats: &Stats,
        elapsed_s: f64,
        warmup: Duration,
        cpu: CpuTimes,
        server: Option<(CpuTimes, Memory)>,
    ) -> Report {
        let args = self.args;
        let total = stats.total();
        let ops = report::rows(stats, elapsed_s);
        Report {
            endpoint: args.endpoint.clone(),
            bucket: args.bucket.clone(),
            mode: args.mode.name().to_owned(),
            mix: (args.mode == Mode::Mixed).then(|| self.mix.to_string()),
            object_size: args.size,
            concurrency: args.concurrency(),
            part_size: (args.mode == Mode::Multipart).then(|| args.part_size()),
            parts_parallel: (args.mode == Mode::Multipart).then(|| args.parts_parallel()),
            duration_s: match args.count {
                Some(_) => None,
                None => Some(args.duration.unwrap_or(DEFAULT_DURATION).as_secs_f64()),
            },
            count: args.count,
            warmup_s: warmup.as_secs_f64(),
            unsigned_payload: args.unsigned_payload,
            elapsed_s,
            ops,
            errors: total.errors.clone(),
            generator_cpu: CpuCost::new(&cpu, total.ops, total.bytes, elapsed_s),
            server_pid: args.server_pid,
            server_cpu: server.map(|(c, _)| CpuCost::new(&c, total.ops, total.bytes, elapsed_s)),
            server_memory: server.map(|(_, m)| m),
        }
    }
}

/// What every worker shares.
struct Ctx {
    client: Arc<S3Client>,
    payload: Arc<Payload>,
    mode: Mode,
    mix: Mix,
    /// Prepared keys that get and stat read.
    pool: Arc<Vec<String>>,
    max_keys: u32,
    /// List modes: the prefix listed.
    list_prefix: String,
    /// List modes: every pass starts after this key.
    start_after: Option<String>,
    /// Multipart mode: UploadPart requests in flight per object.
    parts_parallel: usize,
    timeout: Duration,
    stop: Arc<AtomicBool>,
    progress: Progress,
    quiet: bool,
}

/// When a phase ends.
enum Limit {
    /// No operation starts after this instant.
    Until(Instant),
    /// Operations left to start.
    Count(AtomicU64),
}

impl Limit {
    /// Claims the right to start one more operation.
    fn take(&self) -> bool {
        match self {
            Limit::Until(deadline) => Instant::now() < *deadline,
            Limit::Count(left) => left
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }
}

/// Runs all workers until `limit` (or an interrupt); returns the phase's wall time. Workers are moved into
/// their tasks and back, keeping their key counters and what they created.
async fn run_phase(
    ctx: &Arc<Ctx>,
    workers: &mut Vec<Worker>,
    limit: Limit,
    record: bool,
    label: &'static str,
) -> anyhow::Result<Duration> {
    let limit = Arc::new(limit);
    let (ops0, bytes0, errors0) = ctx.progress.snapshot();
    let started = Instant::now();
    let printer = (!ctx.quiet).then(|| tokio::spawn(print_progress(ctx.clone(), label, started)));
    let mut tasks = Vec::with_capacity(workers.len());
    for mut w in workers.drain(..) {
        let (ctx, limit) = (ctx.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            w.run(&ctx, &limit, record).await;
            w
        }));
    }
    let mut failure = None;
    for t in tasks {
        match t.await {
            Ok(w) => workers.push(w),
            Err(e) => failure = Some(e),
        }
    }
    let elapsed = started.elapsed();
    if let Some(p) = printer {
        p.abort();
        let (ops, bytes, errors) = ctx.progress.snapshot();
        eprintln!(
            "[{label} done] {} ops, {:.1} MiB, {} errors in {:.2}s",
            ops - ops0,
            (bytes - bytes0) as f64 / (1u64 << 20) as f64,
            errors - errors0,
            elapsed.as_secs_f64()
        );
    }
    if let Some(e) = failure {
        return Err(e).context("a worker task failed");
    }
    Ok(elapsed)
}

/// Prints ops/s and MiB/s of the last second to stderr, once a second, until aborted.
async fn print_progress(ctx: Arc<Ctx>, label: &'static str, started: Instant) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.tick().await;
    let (mut last_ops, mut last_bytes, _) = ctx.progress.snapshot();
    let mut last = Instant::now();
    loop {
        tick.tick().await;
        let (ops, bytes, errors) = ctx.progress.snapshot();
        let dt = last.elapsed().as_secs_f64().max(1e-9);
        eprintln!(
            "[{label} {:>4.0}s] {:>9.1} ops/s {:>9.1} MiB/s  errors {errors}",
            started.elapsed().as_secs_f64(),
            (ops - last_ops) as f64 / dt,
            (bytes - last_bytes) as f64 / (1u64 << 20) as f64 / dt,
        );
        (last_ops, last_bytes, last) = (ops, bytes, Instant::now());
    }
}

/// One unit of concurrency: issues one operation at a time.
struct Worker {
    id: usize,
    rng: SmallRng,
    /// Number of the next object this worker PUTs (`bench/<id>/<n>`).
    next: u64,
    /// Numbers of objects this worker PUT and has not deleted, oldest first (cleanup, mixed-mode deletes).
    live: VecDeque<u64>,
    /// Delete mode: prepared keys still to delete.
    to_delete: Vec<String>,
    /// List modes: where the next page starts (continuation token or key marker); `None`: a new pass.
    list_token: Option<String>,
    /// List-versions mode: the version-id marker that goes with `list_token`.
    list_version: Option<String>,
    stats: Stats,
}

impl Worker {
    fn new(id: usize) -> Worker {
        Worker {
            id,
            rng: SmallRng::from_rng(&mut rand::rng()),
            next: 0,
            live: VecDeque::new(),
            to_delete: Vec::new(),
            list_token: None,
            list_version: None,
            stats: Stats::default(),
        }
    }

    async fn run(&mut self, ctx: &Ctx, limit: &Limit, record: bool) {
        loop {
            if ctx.stop.load(Ordering::Relaxed) {
                return;
            }
            if ctx.mode == Mode::Delete && self.to_delete.is_empty() {
                return;
            }
            if !limit.take() {
                return;
            }
            let kind = self.choose(ctx);
            // A multipart upload enforces --timeout itself, so that it can still abort the upload after it.
            let timeout = match kind {
                OpKind::Multipart => ctx.timeout + multipart::ABORT_TIMEOUT,
                _ => ctx.timeout,
            };
            let started = Instant::now();
            let outcome = match tokio::time::timeout(timeout, self.op(ctx, kind, record)).await {
                Ok(r) => r,
                Err(_) => Err(OpError::Timeout),
            };
            let latency = started.elapsed();
            match (kind, &outcome) {
                // its bytes went to the progress counters part by part
                (OpKind::Multipart, Ok(_)) => ctx.progress.add(&Ok(0)),
                _ => ctx.progress.add(&outcome),
            }
            if record {
                self.stats.record(kind, latency, &outcome);
            }
        }
    }

    fn choose(&mut self, ctx: &Ctx) -> OpKind {
        match ctx.mode {
            Mode::Put => OpKind::Put,
            Mode::Get => OpKind::Get,
            Mode::Delete => OpKind::Delete,
            Mode::List => OpKind::List,
            Mode::ListVersions => OpKind::ListVersions,
            Mode::Multipart => OpKind::Multipart,
            Mode::Mixed => match ctx.mix.pick(self.rng.random_range(0..ctx.mix.total())) {
                // Mixed deletes remove this worker's own oldest PUT; with none yet, PUT instead.
                OpKind::Delete if self.live.is_empty() => OpKind::Put,
                k => k,
            },
        }
    }

    /// Performs one operation; returns the object bytes it moved. `record`: keep the part figures of a
    /// multipart upload.
    async fn op(&mut self, ctx: &Ctx, kind: OpKind, record: bool) -> Result<u64, OpError> {
        match kind {
            OpKind::Multipart => {
                let n = self.next;
                self.next += 1;
                self.live.push_back(n);
                let variant = self.rng.random_range(0..ctx.payload.variants());
                let uploader = Uploader {
                    client: &ctx.client,
                    payload: &ctx.payload,
                    parallel: ctx.parts_parallel,
                    timeout: ctx.timeout,
                    stop: &ctx.stop,
                };
                let stats = &mut self.stats;
                let mut on_part = |latency: Duration, outcome: &Result<u64, OpError>| {
                    if let Ok(bytes) = outcome {
                        ctx.progress.add_bytes(*bytes);
                    }
                    if record {
                        stats.record(OpKind::Part, latency, outcome);
                    }
                };
                uploader
                    .upload(&put_key(self.id, n), variant, &mut on_part)
                    .await?;
                Ok(ctx.payload.size())
            }
            // never chosen: parts are recorded by the multipart upload they belong to
            OpKind::Part => Err(OpError::Transport(
                "a part is no operation of its own".into(),
            )),
            OpKind::Put => {
                let n = self.next;
                self.next += 1;
                self.live.push_back(n);
                let (body, hash) = ctx
                    .payload
                    .body(self.rng.random_range(0..ctx.payload.variants()));
                ctx.client
                    .put_object(&put_key(self.id, n), body, hash)
                    .await?;
                Ok(ctx.payload.size())
            }
            OpKind::Get => {
                let key = &ctx.pool[self.rng.random_range(0..ctx.pool.len())];
                ctx.client.get_object(key, Some(ctx.payload.size())).await
            }
            OpKind::Stat => {
                let key = &ctx.pool[self.rng.random_range(0..ctx.pool.len())];
                ctx.client.head_object(key).await.map(|()| 0)
            }
            OpKind::Delete => {
                let key = match ctx.mode {
                    Mode::Delete => self.to_delete.pop(),
                    _ => self.live.pop_front().map(|n| put_key(self.id, n)),
                };
                let key = key.ok_or_else(|| OpError::Transport("nothing left to delete".into()))?;
                ctx.client.delete_object(&key).await.map(|()| 0)
            }
            OpKind::List => {
                let page = ctx
                    .client
                    .list_page(
                        &ctx.list_prefix,
                        ctx.max_keys,
                        self.list_token.as_deref(),
                        ctx.start_after.as_deref(),
                    )
                    .await?;
                self.list_token = page.next_token;
                Ok(0)
            }
            OpKind::ListVersions => {
                // a new pass starts at --start-after, without a version marker
                let (key_marker, version_marker) = match &self.list_token {
                    Some(k) => (Some(k.as_str()), self.list_version.as_deref()),
                    None => (ctx.start_after.as_deref(), None),
                };
                let page = ctx
                    .client
                    .list_versions_page(&ctx.list_prefix, ctx.max_keys, key_marker, version_marker)
                    .await?;
                (self.list_token, self.list_version) = (page.next_token, page.next_version);
                Ok(0)
            }
        }
    }
}
