//! One unit of concurrency: a worker issues one operation at a time over the shared connection pool and
//! records into its own histograms (no shared locks on the hot path; only relaxed atomic counters for the
//! progress bar). It draws the size of every PUT and picks the pool object of every read itself, from its own
//! RNG. In multipart mode one operation is one whole object, whose parts it sends as parallel tasks
//! ([`crate::multipart`]), recording each part's latency too.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::rngs::SmallRng;
use rand::{Rng as _, SeedableRng as _};

use crate::Mode;
use crate::client::{OpError, S3Client};
use crate::dist::{KeyPicker, SizeSampler};
use crate::edge_client::EdgeClient;
use crate::layout::{Layout, Object};
use crate::multipart::{self, Uploader};
use crate::payload::Payload;
use crate::stats::{Progress, Stats};
use crate::units::{Mix, OpKind};

/// What every worker shares.
pub(crate) struct Ctx {
    /// One client per bucket of the run, sharing one connection pool.
    pub(crate) clients: Vec<Arc<S3Client>>,
    /// Edge-get mode: the edge.
    pub(crate) edge: Option<EdgeClient>,
    pub(crate) payload: Arc<Payload>,
    pub(crate) mode: Mode,
    pub(crate) mix: Mix,
    /// Prepared objects that get, stat and edge-get read.
    pub(crate) pool: Arc<Vec<Object>>,
    pub(crate) layout: Layout,
    /// Number of workers (spreads the workers' new keys over buckets and prefixes).
    pub(crate) workers: usize,
    pub(crate) max_keys: u32,
    /// List modes: the prefix listed.
    pub(crate) list_prefix: String,
    /// List modes: every pass starts after this key.
    pub(crate) start_after: Option<String>,
    /// Multipart mode: UploadPart requests in flight per object.
    pub(crate) parts_parallel: usize,
    pub(crate) timeout: Duration,
    pub(crate) stop: Arc<AtomicBool>,
    pub(crate) progress: Arc<Progress>,
}

impl Ctx {
    /// Bucket and key of the `n`-th object worker `worker` PUTs: `[p<i>/]bench/<run>/<worker>/<n>`.
    pub(crate) fn put_key(&self, worker: usize, n: u64) -> (usize, String) {
        put_key(self.layout, self.workers, worker, n)
    }
}

/// Bucket and key of the `n`-th object worker `worker` (of `workers`) PUTs.
pub(crate) fn put_key(layout: Layout, workers: usize, worker: usize, n: u64) -> (usize, String) {
    let seq = n * workers as u64 + worker as u64;
    layout.place(seq, &layout.name(format_args!("{worker}/{n}")))
}

/// When a phase ends.
pub(crate) enum Limit {
    /// No operation starts after this instant.
    Until(Instant),
    /// Operations left to start, and when a worker was first refused one.
    Count(AtomicU64, std::sync::OnceLock<Instant>),
}

impl Limit {
    /// No operation starts after `n` more.
    pub(crate) fn count(n: u64) -> Limit {
        Limit::Count(AtomicU64::new(n), std::sync::OnceLock::new())
    }

    /// Claims the right to start one more operation.
    fn take(&self) -> bool {
        match self {
            Limit::Until(deadline) => Instant::now() < *deadline,
            Limit::Count(left, refused) => {
                let taken = left
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                    .is_ok();
                if !taken {
                    let _ = refused.set(Instant::now());
                }
                taken
            }
        }
    }

    /// When the phase began to wind down (no operation starts any more, those under way finish), if it has.
    pub(crate) fn winding_down(&self) -> Option<Instant> {
        match self {
            Limit::Until(deadline) => (Instant::now() >= *deadline).then_some(*deadline),
            Limit::Count(_, refused) => refused.get().copied(),
        }
    }
}

/// One unit of concurrency.
pub(crate) struct Worker {
    pub(crate) id: usize,
    rng: SmallRng,
    sizes: SizeSampler,
    keys: KeyPicker,
    /// Number of the next object this worker PUTs (`bench/<run>/<id>/<n>`).
    next: u64,
    /// Numbers of objects this worker PUT and has not deleted, oldest first (cleanup, mixed-mode deletes).
    pub(crate) live: VecDeque<u64>,
    /// Delete mode: prepared objects still to delete.
    pub(crate) to_delete: Vec<Object>,
    /// List modes: where the next page starts (continuation token or key marker); `None`: a new pass.
    list_token: Option<String>,
    /// List-versions mode: the version-id marker that goes with `list_token`.
    list_version: Option<String>,
    pub(crate) stats: Stats,
}

impl Worker {
    pub(crate) fn new(id: usize, sizes: SizeSampler, keys: KeyPicker) -> Worker {
        Worker {
            id,
            rng: SmallRng::from_rng(&mut rand::rng()),
            sizes,
            keys,
            next: 0,
            live: VecDeque::new(),
            to_delete: Vec::new(),
            list_token: None,
            list_version: None,
            stats: Stats::default(),
        }
    }

    pub(crate) async fn run(&mut self, ctx: &Ctx, limit: &Limit, record: bool) {
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
            Mode::EdgeGet => OpKind::EdgeGet,
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

    /// The pool object the next read goes to.
    fn pick<'a>(&mut self, ctx: &'a Ctx) -> &'a Object {
        &ctx.pool[self.keys.pick(&mut self.rng, ctx.pool.len())]
    }

    /// Performs one operation; returns the object bytes it moved. `record`: keep the part figures of a
    /// multipart upload.
    async fn op(&mut self, ctx: &Ctx, kind: OpKind, record: bool) -> Result<u64, OpError> {
        match kind {
            OpKind::Multipart => self.multipart(ctx, record).await,
            // never chosen: parts are recorded by the multipart upload they belong to
            OpKind::Part => Err(OpError::Transport(
                "a part is no operation of its own".into(),
            )),
            OpKind::Put => {
                let n = self.next;
                self.next += 1;
                // Tracked before the request, for cleanup: a PUT cut off by the timeout may have landed.
                self.live.push_back(n);
                let size = self.sizes.sample(&mut self.rng);
                let variant = self.rng.random_range(0..ctx.payload.variants());
                let (body, hash) = ctx.payload.body_sized(variant, size);
                let (bucket, key) = ctx.put_key(self.id, n);
                let put = ctx.clients[bucket].put_object(&key, body, &hash).await;
                self.forget_if_refused(&put);
                put.map(|()| size)
            }
            OpKind::Get => {
                let obj = self.pick(ctx);
                let client = &ctx.clients[obj.bucket];
                client.get_object(&obj.key, Some(obj.size)).await
            }
            OpKind::EdgeGet => {
                let obj = self.pick(ctx);
                let edge = ctx
                    .edge
                    .as_ref()
                    .ok_or_else(|| OpError::Transport("edge-get without an edge client".into()))?;
                let bucket = ctx.clients[obj.bucket].bucket();
                let (bytes, x_cache) = edge.get(bucket, &obj.key, obj.size).await?;
                if record {
                    let x_cache = x_cache.as_ref().map(|v| v.to_str().unwrap_or("(not text)"));
                    self.stats.edge_cache.count(x_cache);
                }
                Ok(bytes)
            }
            OpKind::Stat => {
                let obj = self.pick(ctx);
                let client = &ctx.clients[obj.bucket];
                client.head_object(&obj.key).await.map(|()| 0)
            }
            OpKind::Delete => {
                // The target stays tracked (for cleanup, and for the next delete to try again) until the
                // server confirms it is gone.
                let target = match ctx.mode {
                    Mode::Delete => self.to_delete.last().map(|o| (o.bucket, o.key.clone())),
                    _ => self.live.front().map(|&n| ctx.put_key(self.id, n)),
                };
                let (bucket, key) =
                    target.ok_or_else(|| OpError::Transport("nothing left to delete".into()))?;
                let deleted = ctx.clients[bucket].delete_object(&key).await;
                let done = matches!(deleted, Ok(()) | Err(OpError::Http { status: 404, .. }));
                // A key whose DELETE failed goes to the back of the line, so one that keeps failing (object
                // lock, a policy) does not take every later delete of this worker.
                match ctx.mode {
                    Mode::Delete => {
                        let target = self.to_delete.pop();
                        if let (false, Some(t)) = (done, target) {
                            self.to_delete.insert(0, t);
                        }
                    }
                    _ => {
                        let target = self.live.pop_front();
                        if let (false, Some(n)) = (done, target) {
                            self.live.push_back(n);
                        }
                    }
                }
                deleted.map(|()| 0)
            }
            OpKind::List => {
                let page = ctx.clients[0]
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
                let page = ctx.clients[0]
                    .list_versions_page(&ctx.list_prefix, ctx.max_keys, key_marker, version_marker)
                    .await?;
                (self.list_token, self.list_version) = (page.next_token, page.next_version);
                Ok(0)
            }
        }
    }

    /// One object as a multipart upload.
    async fn multipart(&mut self, ctx: &Ctx, record: bool) -> Result<u64, OpError> {
        let n = self.next;
        self.next += 1;
        self.live.push_back(n);
        let variant = self.rng.random_range(0..ctx.payload.variants());
        let (bucket, key) = ctx.put_key(self.id, n);
        let uploader = Uploader {
            client: &ctx.clients[bucket],
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
        let uploaded = uploader.upload(&key, variant, &mut on_part).await;
        self.forget_if_refused(&uploaded);
        uploaded.map(|_| ctx.payload.size())
    }

    /// Stops tracking the object the last PUT or multipart upload meant to create when the server refused
    /// it with a 4xx: nothing was stored. A 5xx (a proxy's 502 or 504 while the store finishes the PUT), a
    /// timeout or a broken connection may have stored it, so those stay tracked for cleanup.
    fn forget_if_refused<T>(&mut self, outcome: &Result<T, OpError>) {
        if let Err(OpError::Http {
            status: 400..=499, ..
        }) = outcome
        {
            self.live.pop_back();
        }
    }
}
