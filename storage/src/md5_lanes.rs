//! MD5 of concurrent uploads, up to eight at a time: a multi-buffer kernel that runs independent MD5 streams in
//! the 32-bit lanes of SIMD registers, and the worker threads that gather the blocks of concurrent uploads into
//! those lanes. [`Md5Stream`] is what the write path uses.
//!
//! Why: MD5 is one serial chain of dependent steps per stream (about 4.5 cycles per byte here, see
//! [`crate::md5`]), and it was half of the server's CPU on large PUTs. One step over four lanes costs about the
//! same instructions as over one, so four uploads hashed in lockstep cost about a third each; a second
//! register of four more runs largely in the first one's shadow, since the chain, not the instruction count,
//! sets the pace (`speed::kernel_throughput`: scalar 0.63 GiB/s, four lanes 1.7, eight 2.9 in aggregate). A
//! lone stream gains nothing from lanes and is hashed by the scalar code (on the worker, so still off the
//! request's task).
//! The same idea as MinIO's md5-simd.
//!
//! Each stream may have up to [`BACKLOG`] blocks handed over and not yet hashed: the worker chains them itself
//! (a block's state is the next one's start), and the stream waits only when its backlog is full, when it
//! finishes, or when it must hash something in place (an input too small to hand over, or one that follows a
//! partial 64-byte block). That slack is what lets a worker wait for the other uploads' blocks and run its
//! lanes full: uploads deliver their blocks at their own pace and phase, and with one block in flight per
//! stream a worker could wait only a few milliseconds for the others before the stream needed its state back.
//! Small inputs are hashed in place, since a hand-over costs more than hashing a few KiB.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;
use wide::{u32x4, u32x8};

use crate::md5::{K, Md5, compress, md5_schedule};

/// Streams hashed at once by one worker: eight, in one AVX2 register where the CPU has AVX2 (`md5_avx2`), else
/// in two SSE registers (see [`compress_x8`]); four or fewer streams use the four-lane kernel, which costs half
/// the instructions of two SSE registers.
const LANES: usize = 8;
/// Bytes each lane advances between two looks at the queue, so that new streams join soon.
const STEP: usize = 64 * 1024;
/// Inputs shorter than this are hashed on the caller's thread.
const MIN_OFFLOAD: usize = 64 * 1024;
/// Blocks (of the write path: 1 MiB each by default) a stream may have handed over and not yet hashed. They are
/// the body's own buffers, so this bounds the memory MD5 holds back at 4 MiB per upload.
const BACKLOG: usize = 4;
/// How long a block may wait, queued or paused in a lane, for other streams to fill the lanes (when every lane
/// of every worker is taken, it also waits for one to free up). A stream waits for its blocks only when its
/// backlog is full or it finishes, and then marks itself urgent (see [`Md5Stream::wait_for`]), so waiting here
/// usually costs it nothing: at c8 a stream hands over a block every 10-13 ms, so its backlog fills in about
/// 40 ms. Measured on 64 MiB PUTs at c8, the share of MD5 bytes hashed in full eight-lane steps: 16 ms 61-64%,
/// 30 ms 64-75%, 40 ms with 6 blocks of backlog 61-63%. With one block in flight per stream and 4 ms (before
/// the backlog), MD5 was 26.5% of the server's samples in a perf pair, 21.2% with the backlog and 16 ms.
const GATHER: Duration = Duration::from_millis(30);

/// Incremental MD5 of one body whose whole blocks are hashed by the lane workers.
pub(crate) struct Md5Stream {
    /// The byte count and partial block; its state is current only while nothing is handed over (`handed`).
    md5: Md5,
    /// Shared with the workers from the first hand-over on (and counted in [`STREAMS`] from then to its drop).
    shared: Option<Arc<Shared>>,
    /// Blocks were handed over since the state was last taken back.
    handed: bool,
}

/// Streams that hand blocks to the workers now. A worker waits for others to fill the lanes only when there
/// are other streams to wait for: a lone upload's block is hashed at once, in parallel with its next block.
static STREAMS: AtomicUsize = AtomicUsize::new(0);

impl Drop for Md5Stream {
    fn drop(&mut self) {
        if self.shared.is_some() {
            STREAMS.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// One stream, as the workers see it.
struct Shared {
    queue: Mutex<Backlog>,
    /// Told whenever one of its blocks is hashed.
    hashed: Notify,
    /// The stream waits for its blocks: they run without waiting for lanes to fill.
    urgent: AtomicBool,
}

/// A stream's blocks handed over and not yet hashed.
struct Backlog {
    /// The state after the blocks hashed so far.
    state: [u32; 4],
    /// Oldest first, each with the time it was handed over. The front one may be in a lane, partly hashed
    /// there: it leaves only once hashed, so the stream can redo it should its worker fail.
    blocks: VecDeque<(Bytes, Instant)>,
    /// A worker failed while holding the stream: the stream hashes what is left itself.
    orphaned: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Backlog> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Md5Stream {
    /// A fresh stream.
    pub(crate) fn new() -> Self {
        Self {
            md5: Md5::new(),
            shared: None,
            handed: false,
        }
    }

    /// Feeds the next bytes of the body; large inputs are hashed by the workers while the caller goes on.
    pub(crate) async fn feed(&mut self, data: Bytes) {
        let workers = match workers() {
            Some(w) if data.len() >= MIN_OFFLOAD && self.md5.is_block_aligned() => w,
            _ => {
                self.take_state().await;
                self.md5.update(&data);
                return;
            }
        };
        let shared = match &self.shared {
            Some(shared) => shared.clone(),
            None => {
                STREAMS.fetch_add(1, Ordering::Relaxed);
                let shared = Arc::new(Shared {
                    queue: Mutex::new(Backlog {
                        state: self.md5.state(),
                        blocks: VecDeque::with_capacity(BACKLOG),
                        orphaned: false,
                    }),
                    hashed: Notify::new(),
                    urgent: AtomicBool::new(false),
                });
                self.shared = Some(shared.clone());
                shared
            }
        };
        Self::wait_for(workers, &shared, |b| b.blocks.len() < BACKLOG).await;
        let whole = data.len() / 64 * 64;
        let first = {
            let mut backlog = shared.lock();
            if backlog.orphaned {
                None
            } else {
                if !self.handed {
                    // The state may have moved on here since (small inputs are hashed in place).
                    backlog.state = self.md5.state();
                }
                backlog
                    .blocks
                    .push_back((data.slice(..whole), Instant::now()));
                Some(backlog.blocks.len() == 1)
            }
        };
        match first {
            // No worker holds a stream with nothing to hash: hand it to them.
            Some(true) => workers.schedule(shared),
            Some(false) => {}
            // Its worker failed: this stream hashes in place from now on.
            None => {
                self.take_state().await;
                self.md5.update(&data);
                return;
            }
        }
        self.handed = true;
        self.md5.count_whole_blocks(whole as u64);
        // Fewer than 64 bytes: they only wait in the partial block, no compression runs before `take_state`.
        self.md5.update(&data[whole..]);
    }

    /// Hashes `tail` (the last bytes, hashed in place) and returns the digest of everything fed.
    pub(crate) async fn finish(mut self, tail: &[u8]) -> [u8; 16] {
        self.take_state().await;
        self.md5.update(tail);
        self.md5.clone().finalize()
    }

    /// Waits for every block handed over to be hashed and takes the state back.
    async fn take_state(&mut self) {
        if !self.handed {
            return;
        }
        let shared = self
            .shared
            .clone()
            .expect("a stream that handed blocks over is shared");
        if let Some(w) = workers() {
            Self::wait_for(w, &shared, |b| b.blocks.is_empty()).await;
        }
        let mut backlog = shared.lock();
        // Blocks are left only if the stream's worker failed (it cannot on valid input, but a lost hash is never
        // acceptable): the front one from the last state the worker handed back.
        while let Some((block, _)) = backlog.blocks.pop_front() {
            let state = &mut backlog.state;
            compress(state, &block);
        }
        self.md5.set_state(backlog.state);
        self.handed = false;
    }

    /// Waits until `ready` holds for the stream's backlog, telling the workers to run its blocks at once
    /// meanwhile (sharing a step costs the waiting stream little: a lane of four runs at about 0.7 of the
    /// scalar speed, a lane of eight at about 0.6). Also returns when the stream's worker failed.
    async fn wait_for(workers: &Workers, shared: &Shared, ready: impl Fn(&Backlog) -> bool) {
        if ready(&shared.lock()) {
            return;
        }
        workers.hurry(&shared.urgent);
        loop {
            // A block hashed between the look and the wait leaves a permit: the wake-up is not lost.
            let done = {
                let backlog = shared.lock();
                ready(&backlog) || backlog.orphaned
            };
            if done {
                break;
            }
            shared.hashed.notified().await;
        }
        shared.urgent.store(false, Ordering::Relaxed);
    }
}

/// A stream in a lane, hashing the front block of its backlog.
struct Lane {
    stream: Arc<Shared>,
    /// The state after the bytes of `block` hashed so far.
    state: [u32; 4],
    block: Bytes,
    /// When `block` was handed over.
    since: Instant,
    /// Bytes of `block` hashed so far.
    done: usize,
}

impl Lane {
    /// The stream's front block, or `None` if it has none (or was dropped: nobody needs its digest).
    fn enter(stream: Arc<Shared>) -> Option<Self> {
        if Arc::strong_count(&stream) == 1 {
            return None;
        }
        let backlog = stream.lock();
        let (block, since) = backlog.blocks.front()?.clone();
        let state = backlog.state;
        drop(backlog);
        Some(Self {
            stream,
            state,
            block,
            since,
            done: 0,
        })
    }

    fn left(&self) -> usize {
        self.block.len() - self.done
    }

    /// Hands the hashed block's state to the stream. Returns the stream if it has more blocks waiting.
    fn leave(self) -> Option<Arc<Shared>> {
        let mut backlog = self.stream.lock();
        backlog.blocks.pop_front();
        backlog.state = self.state;
        let more = !backlog.blocks.is_empty();
        drop(backlog);
        self.stream.hashed.notify_one();
        more.then_some(self.stream)
    }
}

/// The queue shared by the lane workers.
struct Workers {
    /// Streams with blocks to hash and no lane, in the order they asked.
    queue: Mutex<VecDeque<Arc<Shared>>>,
    ready: Condvar,
    /// Workers running: each expects its share of the streams in its lanes, since a woken worker takes what
    /// is queued into its own lanes.
    running: AtomicUsize,
}

/// The process's lane workers, started on first use: one per two cores (each fills up to eight lanes, and the
/// rest of a PUT's work needs the other cores), at least one. `None` if no thread could be started: streams
/// then hash on their own task.
fn workers() -> Option<&'static Arc<Workers>> {
    static WORKERS: OnceLock<Option<Arc<Workers>>> = OnceLock::new();
    let workers = WORKERS.get_or_init(|| {
        let workers = Arc::new(Workers {
            queue: Mutex::new(VecDeque::new()),
            ready: Condvar::new(),
            running: AtomicUsize::new(0),
        });
        let count = std::thread::available_parallelism().map_or(1, |n| n.get().div_ceil(2));
        let mut started = 0;
        for i in 0..count {
            let w = workers.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("strata-md5-{i}"))
                .spawn(move || w.run());
            match spawned {
                Ok(_) => started += 1,
                Err(e) => tracing::error!(error = %e, "could not start an MD5 lane worker"),
            }
        }
        workers.running.store(started, Ordering::Relaxed);
        (started > 0).then_some(workers)
    });
    workers.as_ref()
}

impl Workers {
    fn lock(&self) -> MutexGuard<'_, VecDeque<Arc<Shared>>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a stream whose backlog was empty.
    fn schedule(&self, stream: Arc<Shared>) {
        self.lock().push_back(stream);
        self.ready.notify_one();
    }

    /// Marks a stream urgent, so its blocks run (queued or in a lane) without waiting for lanes to fill.
    fn hurry(&self, urgent: &AtomicBool) {
        urgent.store(true, Ordering::Relaxed);
        // Through the lock, so a worker between its look at the flags and its wait cannot miss the wake-up.
        drop(self.lock());
        self.ready.notify_all();
    }

    /// The worker's thread. Should it fail anywhere (it cannot on valid input), the streams it held hash their
    /// blocks themselves, and it goes on.
    fn run(&self) {
        let mut lanes: Vec<Lane> = Vec::with_capacity(LANES);
        let mut more: Vec<Arc<Shared>> = Vec::with_capacity(LANES);
        loop {
            let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.serve(&mut lanes, &mut more)
            }));
            if failed.is_err() {
                tracing::error!("an MD5 lane worker failed; its streams hash in place");
                for stream in lanes.drain(..).map(|l| l.stream).chain(more.drain(..)) {
                    stream.lock().orphaned = true;
                    stream.hashed.notify_one();
                }
            }
        }
    }

    /// Gathers streams into the lanes and steps them, for good.
    fn serve(&self, lanes: &mut Vec<Lane>, more: &mut Vec<Arc<Shared>>) {
        loop {
            let mut queue = self.lock();
            // Streams with more blocks go to the back of the queue, behind those that waited for a lane (a
            // stream that waits for its blocks is taken first below, wherever it is).
            queue.extend(more.drain(..));
            // Before every step, not only when the lanes are empty: streams that join a running step one by one
            // end one by one, and left to run on their own they would keep the lanes a quarter full.
            loop {
                while lanes.len() < LANES {
                    // A stream that waits for its blocks first.
                    let urgent = queue
                        .iter()
                        .position(|s| s.urgent.load(Ordering::Relaxed))
                        .unwrap_or(0);
                    match queue.remove(urgent) {
                        Some(stream) => lanes.extend(Lane::enter(stream)),
                        None => break,
                    }
                }
                let Some(oldest) = lanes.iter().map(|l| l.since).min() else {
                    queue = self.ready.wait(queue).unwrap_or_else(|e| e.into_inner());
                    continue;
                };
                let waited = oldest.elapsed();
                let running = self.running.load(Ordering::Relaxed).max(1);
                let expected = STREAMS
                    .load(Ordering::Relaxed)
                    .div_ceil(running)
                    .clamp(1, LANES);
                if lanes.len() >= expected
                    || waited >= GATHER
                    || lanes
                        .iter()
                        .any(|l| l.stream.urgent.load(Ordering::Relaxed))
                {
                    break;
                }
                queue = self
                    .ready
                    .wait_timeout(queue, GATHER - waited)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            // Streams left over for another worker (there is one per two cores).
            let leftover = !queue.is_empty();
            drop(queue);
            if leftover {
                self.ready.notify_one();
            }
            step(lanes, more);
        }
    }
}

/// Advances every stream in `lanes` by one step (at most [`STEP`] bytes, no further than the shortest block);
/// streams whose block is done leave, and those with more blocks go to `more`.
fn step(lanes: &mut Vec<Lane>, more: &mut Vec<Arc<Shared>>) {
    #[cfg(test)]
    if tests::FAIL_NEXT_STEP.swap(false, Ordering::Relaxed) {
        panic!("a failure injected by a test");
    }
    let n = lanes.iter().map(Lane::left).min().unwrap_or(0).min(STEP);
    match lanes.len() {
        0 => return,
        1 => {
            let lane = &mut lanes[0];
            compress(&mut lane.state, &lane.block[lane.done..lane.done + n]);
        }
        2..=4 => hash_in_lanes::<4>(lanes, n, compress_x4),
        _ => hash_in_lanes::<LANES>(lanes, n, compress_x8),
    }
    for lane in lanes.iter_mut() {
        lane.done += n;
    }
    let mut i = 0;
    while i < lanes.len() {
        if lanes[i].left() == 0 {
            more.extend(lanes.swap_remove(i).leave());
        } else {
            i += 1;
        }
    }
}

/// A SIMD vector holding one 32-bit MD5 word of `N` streams, one per lane.
trait Lanes<const N: usize>:
    Copy
    + std::ops::Add<Output = Self>
    + std::ops::AddAssign
    + std::ops::BitAnd<Output = Self>
    + std::ops::BitOr<Output = Self>
    + std::ops::BitXor<Output = Self>
    + std::ops::Not<Output = Self>
    + std::ops::Shl<u32, Output = Self>
    + std::ops::Shr<u32, Output = Self>
{
    fn from_lanes(words: [u32; N]) -> Self;
    fn to_lanes(self) -> [u32; N];
    /// The sixteen words of the 64-byte block at `at` of every input, each word across the lanes.
    fn block(inputs: &[&[u8]; N], at: usize) -> [Self; 16];
}

/// Little-endian words of `bytes` (whose length is `4 * W`).
#[inline(always)]
fn words<const W: usize>(bytes: &[u8]) -> [u32; W] {
    std::array::from_fn(|w| {
        u32::from_le_bytes(bytes[4 * w..4 * w + 4].try_into().expect("4 bytes"))
    })
}

impl Lanes<4> for u32x4 {
    fn from_lanes(words: [u32; 4]) -> Self {
        u32x4::new(words)
    }
    fn to_lanes(self) -> [u32; 4] {
        self.to_array()
    }
    #[inline(always)]
    fn block(inputs: &[&[u8]; 4], at: usize) -> [Self; 16] {
        // Four consecutive words of each lane (one 16-byte load), then a 4x4 transpose.
        let mut x = [u32x4::ZERO; 16];
        for quarter in 0..4 {
            let p = at + 16 * quarter;
            let rows: [u32x4; 4] =
                std::array::from_fn(|l| u32x4::new(words(&inputs[l][p..p + 16])));
            x[4 * quarter..4 * quarter + 4].copy_from_slice(&u32x4::transpose(rows));
        }
        x
    }
}

impl Lanes<8> for u32x8 {
    fn from_lanes(words: [u32; 8]) -> Self {
        u32x8::new(words)
    }
    fn to_lanes(self) -> [u32; 8] {
        self.to_array()
    }
    #[inline(always)]
    fn block(inputs: &[&[u8]; 8], at: usize) -> [Self; 16] {
        // Each half of the lanes as four-lane blocks (4x4 SSE transposes), then the halves side by side:
        // without AVX2, `u32x8::transpose` gathers the 64 words one by one.
        let low = u32x4::block(&[inputs[0], inputs[1], inputs[2], inputs[3]], at);
        let high = u32x4::block(&[inputs[4], inputs[5], inputs[6], inputs[7]], at);
        std::array::from_fn(|w| {
            let (l, h) = (low[w].to_array(), high[w].to_array());
            u32x8::new([l[0], l[1], l[2], l[3], h[0], h[1], h[2], h[3]])
        })
    }
}

/// Advances every stream in `lanes` (at most `N`) by `n` bytes with an `N`-lane kernel. Idle lanes repeat the
/// last stream's input; their results are dropped.
fn hash_in_lanes<const N: usize>(
    lanes: &mut [Lane],
    n: usize,
    kernel: fn(&mut [[u32; 4]; N], [&[u8]; N]),
) {
    let pick = |i: usize| &lanes[i.min(lanes.len() - 1)];
    let mut states: [[u32; 4]; N] = std::array::from_fn(|i| pick(i).state);
    let inputs: [&[u8]; N] = std::array::from_fn(|i| {
        let lane = pick(i);
        &lane.block[lane.done..lane.done + n]
    });
    kernel(&mut states, inputs);
    for (lane, state) in lanes.iter_mut().zip(states) {
        lane.state = state;
    }
}

#[inline(always)]
fn rotl<const N: usize, V: Lanes<N>>(x: V, s: u32) -> V {
    (x << s) | (x >> (32 - s))
}

/// Runs the compression function over the whole 64-byte blocks of `N` equally long inputs, one per lane.
///
/// Eight lanes are two SSE registers where AVX2 is not compiled in: one step of the chain then advances two
/// independent vectors, which the core overlaps, so eight streams cost about 1.2 times what four do (measured
/// by `speed::kernel_throughput`).
#[inline(always)]
fn compress_lanes<const N: usize, V: Lanes<N>>(states: &mut [[u32; 4]; N], inputs: [&[u8]; N]) {
    let len = inputs[0].len();
    debug_assert!(len.is_multiple_of(64) && inputs.iter().all(|i| i.len() == len));
    let lane = |word: usize| V::from_lanes(std::array::from_fn(|l| states[l][word]));
    let (mut a, mut b, mut c, mut d) = (lane(0), lane(1), lane(2), lane(3));
    let k: &[u32; 64] = std::hint::black_box(&K);
    let splat = |x: u32| V::from_lanes([x; N]);
    for at in (0..len).step_by(64) {
        let x = V::block(&inputs, at);
        let (a0, b0, c0, d0) = (a, b, c, d);
        // The same four-step pattern as the scalar code: `$j` is the first step's index.
        macro_rules! four {
            ($f:expr, $j:expr, [$x0:expr, $x1:expr, $x2:expr, $x3:expr], [$s0:expr, $s1:expr, $s2:expr, $s3:expr]) => {
                a = b + rotl(a + x[$x0] + splat(k[$j]) + $f(b, c, d), $s0);
                d = a + rotl(d + x[$x1] + splat(k[$j + 1]) + $f(a, b, c), $s1);
                c = d + rotl(c + x[$x2] + splat(k[$j + 2]) + $f(d, a, b), $s2);
                b = c + rotl(b + x[$x3] + splat(k[$j + 3]) + $f(c, d, a), $s3);
            };
        }
        let f = |b: V, c: V, d: V| d ^ (b & (c ^ d));
        let g = |b: V, c: V, d: V| (b & d) | (c & !d);
        let h = |b: V, c: V, d: V| b ^ c ^ d;
        let i = |b: V, c: V, d: V| c ^ (b | !d);
        md5_schedule!(four, f, g, h, i);
        a += a0;
        b += b0;
        c += c0;
        d += d0;
    }
    let (a, b, c, d) = (a.to_lanes(), b.to_lanes(), c.to_lanes(), d.to_lanes());
    for (l, state) in states.iter_mut().enumerate() {
        *state = [a[l], b[l], c[l], d[l]];
    }
}

/// Four streams in one SSE register.
fn compress_x4(states: &mut [[u32; 4]; 4], inputs: [&[u8]; 4]) {
    compress_lanes::<4, u32x4>(states, inputs);
}

/// Eight streams in lockstep: in one AVX2 register where the CPU has AVX2, else in two SSE registers.
fn compress_x8(states: &mut [[u32; 4]; 8], inputs: [&[u8]; 8]) {
    #[cfg(target_arch = "x86_64")]
    if crate::md5_avx2::compress_x8(states, inputs) {
        return;
    }
    compress_x8_sse(states, inputs);
}

/// Eight streams in lockstep in two SSE registers (or one AVX2 register where that is compiled in).
fn compress_x8_sse(states: &mut [[u32; 4]; 8], inputs: [&[u8]; 8]) {
    compress_lanes::<8, u32x8>(states, inputs);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Makes the next step of a lane worker fail, as a bug would.
    pub(super) static FAIL_NEXT_STEP: AtomicBool = AtomicBool::new(false);
    use md5_reference::Digest;

    fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn lanes_match_the_scalar_code<const N: usize>(kernel: fn(&mut [[u32; 4]; N], [&[u8]; N])) {
        let inputs: Vec<Vec<u8>> = (0..N).map(|i| pseudo_random(64 * 37, i as u64)).collect();
        let mut states: [[u32; 4]; N] =
            std::array::from_fn(|i| [i as u32, 0x1234_5678, !(i as u32), 0xdead_beef]);
        let mut want = states;
        for (s, input) in want.iter_mut().zip(&inputs) {
            compress(s, input);
        }
        kernel(&mut states, std::array::from_fn(|i| &inputs[i][..]));
        assert_eq!(states, want);
    }

    #[test]
    fn four_lanes_match_the_scalar_code() {
        lanes_match_the_scalar_code::<4>(compress_x4);
    }

    #[test]
    fn eight_lanes_match_the_scalar_code() {
        lanes_match_the_scalar_code::<8>(compress_x8);
        lanes_match_the_scalar_code::<8>(compress_x8_sse);
    }

    fn stream_of(state: [u32; 4], blocks: &[Bytes]) -> Arc<Shared> {
        Arc::new(Shared {
            queue: Mutex::new(Backlog {
                state,
                blocks: blocks.iter().map(|b| (b.clone(), Instant::now())).collect(),
                orphaned: false,
            }),
            hashed: Notify::new(),
            urgent: AtomicBool::new(false),
        })
    }

    /// One to eleven streams with backlogs of unequal blocks share the lanes step by step, as in a worker (idle
    /// lanes padded, streams leaving as their blocks end and queueing again behind the others): each ends
    /// with the scalar state of all its blocks.
    #[test]
    fn steps_over_backlogs_of_unequal_blocks_match_the_scalar_code() {
        for count in 1..=LANES + 3 {
            let mut streams = Vec::new();
            let mut want = Vec::new();
            for i in 0..count {
                let blocks: Vec<Bytes> = (0..1 + i % 3)
                    .map(|j| {
                        Bytes::from(pseudo_random(
                            64 * (3 + 1500 * i + 7 * j),
                            (i * 4 + j) as u64,
                        ))
                    })
                    .collect();
                let from = [i as u32, 7, 8, 9];
                let mut state = from;
                for block in &blocks {
                    compress(&mut state, block);
                }
                want.push(state);
                streams.push(stream_of(from, &blocks));
            }
            let mut queue: VecDeque<Arc<Shared>> = streams.iter().cloned().collect();
            let (mut lanes, mut more) = (Vec::new(), Vec::new());
            loop {
                while lanes.len() < LANES {
                    match queue.pop_front() {
                        Some(stream) => lanes.extend(Lane::enter(stream)),
                        None => break,
                    }
                }
                if lanes.is_empty() {
                    break;
                }
                step(&mut lanes, &mut more);
                queue.extend(more.drain(..));
            }
            for (i, (stream, want)) in streams.iter().zip(want).enumerate() {
                let backlog = stream.lock();
                assert!(backlog.blocks.is_empty(), "{count} streams, stream {i}");
                assert_eq!(backlog.state, want, "{count} streams, stream {i}");
            }
        }
    }

    /// A stream whose worker failed while holding its blocks (the front one partly hashed, perhaps) hashes
    /// them itself from the last state the worker handed back.
    #[tokio::test]
    async fn a_stream_whose_worker_failed_hashes_its_backlog_itself() {
        let data = Bytes::from(pseudo_random(3 << 20, 11));
        let mut stream = Md5Stream::new();
        let blocks: Vec<Bytes> = (0..3).map(|i| data.slice(i << 20..(i + 1) << 20)).collect();
        let shared = stream_of(stream.md5.state(), &blocks);
        shared.lock().orphaned = true;
        STREAMS.fetch_add(1, Ordering::Relaxed);
        stream.shared = Some(shared);
        stream.handed = true;
        stream.md5.count_whole_blocks(data.len() as u64);
        // A further block arrives after the failure: hashed in place.
        let more = Bytes::from(pseudo_random(MIN_OFFLOAD + 64, 12));
        stream.feed(more.clone()).await;
        let got = stream.finish(b"end").await;
        let mut all = data.to_vec();
        all.extend_from_slice(&more);
        all.extend_from_slice(b"end");
        let want: [u8; 16] = md5_reference::Md5::digest(&all).into();
        assert_eq!(got, want);
    }

    /// Feeds `blocks` aligned 1 MiB blocks of a stream seeded `seed` and checks its digest.
    async fn stream_of_blocks(blocks: usize, seed: u64) {
        let data = Bytes::from(pseudo_random(blocks << 20, seed));
        let mut stream = Md5Stream::new();
        for i in 0..blocks {
            stream.feed(data.slice(i << 20..(i + 1) << 20)).await;
        }
        let got = stream.finish(b"tail").await;
        let mut all = data.to_vec();
        all.extend_from_slice(b"tail");
        let want: [u8; 16] = md5_reference::Md5::digest(&all).into();
        assert_eq!(got, want, "seed {seed}");
    }

    /// Waits for every task; a stream left waiting for good would hang here, so fail instead.
    async fn all_within_a_minute(tasks: Vec<tokio::task::JoinHandle<()>>) {
        tokio::time::timeout(Duration::from_secs(60), async {
            for t in tasks {
                t.await.unwrap();
            }
        })
        .await
        .expect("every stream's digest within a minute");
    }

    /// More streams than lanes, each feeding more blocks than its backlog holds as fast as it can: streams wait
    /// for room in their backlogs, queue behind each other and share full lanes, and every digest is right.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn streams_with_full_backlogs_match_the_reference() {
        let tasks: Vec<_> = (0..LANES as u64 + 3)
            .map(|seed| tokio::spawn(stream_of_blocks(2 * BACKLOG + 1, 100 + seed)))
            .collect();
        all_within_a_minute(tasks).await;
    }

    /// A stream dropped with blocks still queued (a failed upload) holds up nobody.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_stream_dropped_with_blocks_queued_holds_up_nobody() {
        let data = Bytes::from(pseudo_random(BACKLOG << 20, 7));
        let mut dropped = Md5Stream::new();
        for i in 0..BACKLOG {
            dropped.feed(data.slice(i << 20..(i + 1) << 20)).await;
        }
        drop(dropped);
        tokio::time::timeout(Duration::from_secs(60), stream_of_blocks(3, 8))
            .await
            .expect("the other stream's digest within a minute");
    }

    /// A worker that fails mid-way (as a bug would make it) leaves the streams it held to hash their blocks
    /// themselves, and goes on serving others: every digest is still right.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_worker_loses_no_hash() {
        FAIL_NEXT_STEP.store(true, Ordering::Relaxed);
        tokio::time::timeout(Duration::from_secs(60), async {
            let streams: Vec<_> = (0..3)
                .map(|seed| tokio::spawn(stream_of_blocks(BACKLOG + 2, 200 + seed)))
                .collect();
            for s in streams {
                s.await.unwrap();
            }
            // The worker still serves.
            stream_of_blocks(2, 300).await;
        })
        .await
        .expect("every stream's digest within a minute");
        assert!(
            !FAIL_NEXT_STEP.load(Ordering::Relaxed),
            "a step failed as injected"
        );
    }

    /// Many streams at once, of sizes around the offload threshold and the step, fed in uneven pieces: every
    /// digest must be the reference's, whichever lanes the streams shared.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_streams_match_the_reference() {
        let sizes = [
            0,
            1,
            63,
            64,
            MIN_OFFLOAD - 1,
            MIN_OFFLOAD,
            MIN_OFFLOAD + 65,
            STEP * 3 + 7,
            1 << 20,
            (1 << 20) + 4095,
            5 << 20,
        ];
        let tasks: Vec<_> = sizes
            .iter()
            .enumerate()
            .flat_map(|(i, &size)| (0..3).map(move |r| (i * 3 + r, size)))
            .map(|(seed, size)| {
                tokio::spawn(async move {
                    let data = Bytes::from(pseudo_random(size, seed as u64));
                    let mut stream = Md5Stream::new();
                    let piece = [MIN_OFFLOAD + 100, 1 << 20, 333][seed % 3];
                    let mut at = 0;
                    while data.len() - at > piece {
                        stream.feed(data.slice(at..at + piece)).await;
                        at += piece;
                    }
                    let got = stream.finish(&data[at..]).await;
                    let want: [u8; 16] = md5_reference::Md5::digest(&data).into();
                    assert_eq!(got, want, "size {size}, seed {seed}");
                })
            })
            .collect();
        all_within_a_minute(tasks).await;
    }
}

#[cfg(test)]
mod speed {
    use super::*;

    /// Not a test: `cargo test --release -p strata-storage --lib md5_lanes::speed -- --ignored --nocapture`.
    #[test]
    #[ignore = "a measurement, run by hand"]
    fn kernel_throughput() {
        let data = vec![7u8; 1 << 20];
        let rounds = 200;
        let t = Instant::now();
        let mut s = [0u32; 4];
        for _ in 0..rounds {
            compress(&mut s, &data);
        }
        let scalar = t.elapsed();
        let mut states = [[0u32; 4]; 4];
        let t = Instant::now();
        for _ in 0..rounds {
            compress_x4(&mut states, [&data, &data, &data, &data]);
        }
        let lanes = t.elapsed();
        let mut states8 = [[0u32; 4]; 8];
        let t = Instant::now();
        for _ in 0..rounds {
            compress_x8(&mut states8, [&data[..]; 8]);
        }
        let lanes8 = t.elapsed();
        let t = Instant::now();
        for _ in 0..rounds {
            compress_x8_sse(&mut states8, [&data[..]; 8]);
        }
        let lanes8_sse = t.elapsed();
        let gib = rounds as f64 / 1024.0;
        println!(
            "scalar {:.2} GiB/s, 4 lanes {:.2} GiB/s, 8 lanes {:.2} GiB/s aggregate (two SSE registers: {:.2}) \
             ({s:?} {:?} {:?})",
            gib / scalar.as_secs_f64(),
            4.0 * gib / lanes.as_secs_f64(),
            8.0 * gib / lanes8.as_secs_f64(),
            8.0 * gib / lanes8_sse.as_secs_f64(),
            states[0],
            states8[7]
        );
    }
}
