//! The run itself: set-up (clients, buckets, the object pool with drawn sizes), the phases (warm-up, measured)
//! with one worker task per unit of concurrency ([`crate::worker`]), the report, and cleanup. Phases are
//! bounded by a deadline or a count of operations, and by the interrupt flag; every worker loop checks them
//! before each operation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use futures_util::FutureExt as _;
use rand::SeedableRng as _;
use rand::rngs::SmallRng;

use crate::client::{ClientConfig, OpError, S3Client};
use crate::cpu::{CpuTimes, MachineTimes, Memory};
use crate::dist::{KeyPicker, SizeDist};
use crate::edge_client::EdgeClient;
use crate::layout::{Layout, Object, RunId};
use crate::multipart;
use crate::payload::Payload;
use crate::progress::{Length, Output, PhaseBar};
use crate::report::{self, CpuCost, MachineCpu, Report};
use crate::stats::{PerSecond, Progress, SecondSampler, Stats};
use crate::transport::TlsOptions;
use crate::units::{DEFAULT_MIX, Mix};
use crate::worker::{Ctx, Limit, Worker};
use crate::{BenchArgs, KeyDist, Mode, setup};

/// Measured-phase length when neither `--duration` nor `--count` is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);
/// How long a multipart run that had requests go unanswered waits before cleanup lists its uploads.
const SETTLE: Duration = Duration::from_secs(1);
/// Warm-up when running by duration and `--warmup` is not given.
const DEFAULT_WARMUP: Duration = Duration::from_secs(2);
/// Seed of the pool's object sizes: the same options prepare the same sizes, so runs compare.
const POOL_SEED: u64 = 0x5752_4154_4131;

/// Runs a benchmark: prepare, warm up, measure, report, clean up.
pub(crate) async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let mix = Mix::parse(args.mix.as_deref().unwrap_or(DEFAULT_MIX)).map_err(anyhow::Error::msg)?;
    args.validate()?;
    let sizes = args.size_dist()?;
    let (endpoint, access_key, secret_key) = args.credentials()?;
    let out = Output::new(args.quiet, args.json);
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
    let tls = TlsOptions {
        insecure: args.insecure,
        ca_cert: args.ca_cert.clone(),
    };
    let names = args.bucket_names();
    let first = S3Client::new(&ClientConfig {
        endpoint,
        addressing: args.addressing_style,
        access_key,
        secret_key,
        region: &args.region,
        bucket: &names[0],
        unsigned_payload: args.unsigned_payload,
        pool_size: connections,
        tls: &tls,
    })?;
    let clients: Vec<Arc<S3Client>> = names
        .iter()
        .map(|n| first.with_bucket(n).map(Arc::new))
        .collect::<anyhow::Result<_>>()?;
    let edge = match &args.edge_url {
        Some(url) => Some(EdgeClient::new(
            url,
            !args.edge_root_bucket,
            &tls,
            concurrency,
        )?),
        None => None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let cleaning = Arc::new(AtomicBool::new(false));
    let interrupt = spawn_interrupt_handler(stop.clone(), cleaning.clone());
    let created =
        setup::ensure_buckets(&clients, &args.region, out.lines, args.timeout, &stop).await?;
    let layout = Layout {
        buckets: clients.len(),
        prefixes: args.prefixes as usize,
        run: RunId::random(),
    };
    let prepared = Arc::new(prepared_objects(&args, layout, &sizes));
    let mut workers: Vec<Worker> = (0..concurrency)
        .map(|id| {
            let keys = KeyPicker::new(args.keys, args.zipf_s(), prepared.len(), id, concurrency);
            Worker::new(id, sizes.sampler(), keys)
        })
        .collect();
    if args.mode == Mode::Delete {
        for (i, obj) in prepared.iter().enumerate().rev() {
            workers[i % concurrency].to_delete.push(obj.clone());
        }
    }
    let bench = Bench {
        args: &args,
        mix,
        sizes: &sizes,
        out,
        layout,
        clients: &clients,
        stop: &stop,
        prepared: &prepared,
    };
    let outcome = bench.run(&mut workers, edge, server_pid.as_deref()).await;
    match &outcome {
        Ok(report) if args.json => println!("{}", report.to_json()),
        Ok(report) => print!("{}", report.to_table()),
        Err(_) => {}
    }
    let cleaned = if args.keep {
        Ok(())
    } else {
        let mut keys: Vec<Vec<String>> = vec![Vec::new(); clients.len()];
        // Delete mode: only what the run did not delete.
        let left: Vec<&Object> = match args.mode {
            Mode::Delete => workers.iter().flat_map(|w| &w.to_delete).collect(),
            _ => prepared.iter().collect(),
        };
        for obj in left {
            keys[obj.bucket].push(obj.key.clone());
        }
        for w in &workers {
            for &n in &w.live {
                let (bucket, key) = crate::worker::put_key(layout, concurrency, w.id, n);
                keys[bucket].push(key);
            }
        }
        cleaning.store(true, Ordering::Relaxed);
        let uploads_of = (args.mode == Mode::Multipart).then_some(layout);
        // A CreateMultipartUpload the run stopped waiting for may still be under way on the server: a moment
        // for it to land, so that cleanup's listing finds it.
        let unanswered = outcome.as_ref().map_or(true, |r| {
            r.errors.keys().any(|e| OpError::label_unanswered(e))
        });
        if uploads_of.is_some() && unanswered {
            tokio::time::sleep(SETTLE).await;
        }
        setup::cleanup_all(
            &clients,
            keys,
            &created,
            uploads_of,
            args.timeout,
            out.lines,
        )
        .await
    };
    interrupt.abort();
    let report = outcome?;
    cleaned?;
    anyhow::ensure!(
        !report.interrupted,
        "interrupted: the report covers the {:.2}s before Ctrl-C",
        report.elapsed_s
    );
    anyhow::ensure!(
        report.succeeded() > 0 || report.failed() == 0,
        "every operation failed ({} errors, by type in the report)",
        report.failed()
    );
    Ok(())
}

/// Objects uploaded before the run: the pool that get, mixed, edge-get and list read, or the objects delete
/// removes. Their sizes are drawn from a fixed seed.
fn prepared_objects(args: &BenchArgs, layout: Layout, sizes: &SizeDist) -> Vec<Object> {
    let (name, n) = match args.mode {
        Mode::Put | Mode::Multipart => return Vec::new(),
        Mode::Get | Mode::Mixed | Mode::EdgeGet => ("pool", args.pool_objects()),
        // with --prefix, the objects already there are listed
        Mode::List | Mode::ListVersions if args.prefix.is_some() => return Vec::new(),
        Mode::List | Mode::ListVersions => ("list", args.pool_objects()),
        Mode::Delete => ("del", args.count.unwrap_or_else(|| args.pool_objects())),
    };
    let sampler = sizes.sampler();
    let mut rng = SmallRng::seed_from_u64(POOL_SEED);
    (0..n)
        .map(|i| {
            let (bucket, key) = layout.place(i, &layout.name(format_args!("{name}/{i}")));
            Object {
                bucket,
                key,
                size: sampler.sample(&mut rng),
            }
        })
        .collect()
}

/// First Ctrl-C: stop the run (then report and clean up). Second: exit at once. A first one during cleanup
/// (the run's report complete) only says how to leave.
fn spawn_interrupt_handler(
    stop: Arc<AtomicBool>,
    cleaning: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        if cleaning.load(Ordering::Relaxed) {
            eprintln!("interrupted: cleanup goes on (Ctrl-C again to exit without it)");
        } else {
            eprintln!("interrupted: stopping (Ctrl-C again to exit without cleanup)");
        }
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
    sizes: &'a SizeDist,
    out: Output,
    layout: Layout,
    clients: &'a [Arc<S3Client>],
    stop: &'a Arc<AtomicBool>,
    prepared: &'a Arc<Vec<Object>>,
}

impl Bench<'_> {
    /// Generates the payload, prepares, warms up and measures; `workers` keep what they created, for cleanup.
    async fn run(
        &self,
        workers: &mut Vec<Worker>,
        edge: Option<EdgeClient>,
        server_pid: Option<&str>,
    ) -> anyhow::Result<Report> {
        let args = self.args;
        let payload = Arc::new(self.payload().await?);
        let concurrency = workers.len();
        let prepare = setup::Prepare {
            clients: self.clients,
            payload: &payload,
            objects: self.prepared,
            concurrency,
            timeout: args.timeout,
            stop: self.stop,
            out: self.out,
        };
        prepare.upload_all().await?;
        let ctx = Arc::new(Ctx {
            clients: self.clients.to_vec(),
            edge,
            payload,
            mode: args.mode,
            mix: self.mix.clone(),
            pool: self.prepared.clone(),
            layout: self.layout,
            workers: concurrency,
            max_keys: args.max_keys,
            list_prefix: args
                .prefix
                .clone()
                .unwrap_or_else(|| self.layout.name(format_args!("list/"))),
            start_after: args.start_after.clone(),
            parts_parallel: args.parts_parallel(),
            timeout: args.timeout,
            stop: self.stop.clone(),
            progress: Arc::new(Progress::default()),
        });
        let warmup = match (args.mode, args.warmup) {
            (Mode::Delete, _) => Duration::ZERO,
            (_, Some(w)) => w,
            (_, None) if args.count.is_some() => Duration::ZERO,
            (_, None) => DEFAULT_WARMUP,
        };
        if !warmup.is_zero() {
            let phase = Phase {
                limit: Limit::Until(Instant::now() + warmup),
                length: Length::Time(warmup),
                record: false,
                label: "warmup",
            };
            run_phase(&ctx, workers, phase, self.out).await?;
        }
        let phase = match args.count {
            Some(n) => Phase {
                limit: Limit::count(n),
                length: Length::Count(n),
                record: true,
                label: args.mode.name(),
            },
            None => {
                let d = args.duration.unwrap_or(DEFAULT_DURATION);
                Phase {
                    limit: Limit::Until(Instant::now() + d),
                    length: Length::Time(d),
                    record: true,
                    label: args.mode.name(),
                }
            }
        };
        let cpu_before = CpuTimes::of("self").unwrap_or_default();
        let server_before = server_pid.and_then(|pid| CpuTimes::of(pid).ok());
        let machine_before = MachineTimes::now().ok();
        let (elapsed, per_second) = run_phase(&ctx, workers, phase, self.out).await?;
        let machine = machine_before
            .zip(MachineTimes::now().ok())
            .map(|(before, now)| now.since(&before));
        let cpu = CpuTimes::of("self").unwrap_or_default().since(&cpu_before);
        // A server that exited mid-run costs the report its server figures, not the report.
        let server = server_pid.and_then(|pid| {
            let after = server_before
                .zip(CpuTimes::of(pid).ok())
                .zip(Memory::of(pid).ok());
            if after.is_none() {
                eprintln!(
                    "warning: --server-pid {pid} is gone (the server exited?); no server figures"
                );
            }
            after.map(|((before, now), memory)| (now.since(&before), memory))
        });
        let mut stats = Stats::default();
        for w in workers.iter() {
            stats.merge(&w.stats);
        }
        let mut report = self.report(&stats, elapsed.as_secs_f64(), warmup, cpu, server, machine);
        report.per_second = per_second;
        Ok(report)
    }

    /// The random buffer every body is sliced from: for one size (whole or in multipart parts), or for the
    /// sizes a distribution draws.
    async fn payload(&self) -> anyhow::Result<Payload> {
        let args = self.args;
        let (sizes, signed) = (self.sizes.clone(), !args.unsigned_payload);
        let parts = (args.mode == Mode::Multipart)
            .then(|| multipart::split_parts(sizes.max(), args.part_size()));
        tokio::task::spawn_blocking(move || match (parts, sizes) {
            (Some(parts), sizes) => Payload::with_parts(sizes.max(), parts, signed),
            (None, SizeDist::Fixed(size)) => Payload::new(size, signed),
            (None, sizes) => Payload::for_sizes(sizes.max(), signed),
        })
        .await
        .context("generating the payload")
    }

    fn report(
        &self,
        stats: &Stats,
        elapsed_s: f64,
        warmup: Duration,
        cpu: CpuTimes,
        server: Option<(CpuTimes, Memory)>,
        machine: Option<MachineTimes>,
    ) -> Report {
        let args = self.args;
        let total = stats.total();
        let ops = report::rows(stats, elapsed_s);
        let reads_pool = matches!(args.mode, Mode::Get | Mode::Mixed | Mode::EdgeGet);
        Report {
            endpoint: args.endpoint.clone().unwrap_or_default(),
            addressing_style: args.addressing_style,
            bucket: args.bucket.clone(),
            mode: args.mode.name().to_owned(),
            mix: (args.mode == Mode::Mixed).then(|| self.mix.to_string()),
            object_size: self.sizes.median(),
            sizes: self.sizes.to_string(),
            keys: reads_pool.then(|| match args.keys {
                KeyDist::Seq => "seq".to_owned(),
                KeyDist::Uniform => "uniform".to_owned(),
                KeyDist::Zipf => format!("zipf s={}", args.zipf_s()),
            }),
            buckets: args.buckets,
            prefixes: args.prefixes,
            edge_url: args.edge_url.clone(),
            edge_cache: (args.mode == Mode::EdgeGet).then_some(stats.edge_cache),
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
            machine_cpu: machine
                .map(|m| MachineCpu::new(&m, &cpu, server.as_ref().map(|(c, _)| c), elapsed_s)),
            run: Some(self.layout.run.to_string()),
            // Read right after the measured phase: a Ctrl-C later (during cleanup) did not cut it short.
            interrupted: self.stop.load(Ordering::Relaxed),
            per_second: None,
        }
    }
}

/// One phase: when it ends, how long the bar is, whether it is measured.
struct Phase {
    limit: Limit,
    length: Length,
    record: bool,
    label: &'static str,
}

/// Runs all workers through `phase` (or until an interrupt); returns the phase's wall time. Workers are moved
/// into their tasks and back, keeping their key counters and what they created.
async fn run_phase(
    ctx: &Arc<Ctx>,
    workers: &mut Vec<Worker>,
    phase: Phase,
    out: Output,
) -> anyhow::Result<(Duration, Option<PerSecond>)> {
    let limit = Arc::new(phase.limit);
    let (ops0, bytes0, errors0) = ctx.progress.snapshot();
    let started = Instant::now();
    let sampler = phase.record.then(|| {
        let limit = limit.clone();
        SecondSampler::start(ctx.progress.clone(), move || limit.winding_down())
    });
    let counters = ctx.progress.clone();
    let bar = PhaseBar::start(
        out,
        phase.label,
        phase.length,
        Arc::new(move || counters.snapshot()),
    );
    let mut tasks = Vec::with_capacity(workers.len());
    for mut w in workers.drain(..) {
        let (ctx, limit) = (ctx.clone(), limit.clone());
        let record = phase.record;
        tasks.push(tokio::spawn(async move {
            // A panic must not lose the worker: what it created and has yet to delete is cleanup's list.
            let run = std::panic::AssertUnwindSafe(w.run(&ctx, &limit, record));
            let panicked = run.catch_unwind().await.err().map(|payload| {
                let text = payload
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| payload.downcast_ref::<String>().cloned());
                text.unwrap_or_else(|| "a panic without a message".to_owned())
            });
            (w, panicked)
        }));
    }
    let mut failure: Option<anyhow::Error> = None;
    for t in tasks {
        let failed = match t.await {
            Ok((w, panicked)) => {
                let id = w.id;
                workers.push(w);
                panicked.map(|why| anyhow::anyhow!("worker {id} panicked: {why}"))
            }
            Err(e) => Some(e.into()),
        };
        if failure.is_none() {
            failure = failed;
        }
    }
    let elapsed = started.elapsed();
    let per_second = sampler.map(SecondSampler::finish);
    bar.finish();
    if out.lines {
        let (ops, bytes, errors) = ctx.progress.snapshot();
        eprintln!(
            "[{} done] {} ops, {:.1} MiB, {} errors in {:.2}s",
            phase.label,
            ops - ops0,
            (bytes - bytes0) as f64 / (1u64 << 20) as f64,
            errors - errors0,
            elapsed.as_secs_f64()
        );
    }
    if let Some(e) = failure {
        return Err(e.context("a worker task failed"));
    }
    Ok((elapsed, per_second))
}
