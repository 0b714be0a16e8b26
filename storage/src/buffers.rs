//! Recycled block buffers for the write path, and shard read buffers for the read path.
//!
//! Each block of a PUT needs a fresh buffer (its shards are still queued for the disk writers while the next
//! block fills), and so does each block's parity. Allocated fresh, every one was new memory from the kernel:
//! page faults and zeroing came to about 5% of the server's CPU on PUT. A buffer given out here comes back
//! when the last `Bytes` slice of it is dropped (by the disk writer), and is handed out again; disk writers'
//! own buffers come from here too. The pool keeps at most [`KEEP`] buffers and [`KEEP_BYTES`], the most
//! recently returned, and frees those unused for [`IDLE`], so what it holds follows what the server does now
//! and goes once it stops.

use std::sync::{Mutex, MutexGuard, Once};
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Buffers kept for reuse: enough that 8 concurrent uploads at 1 MiB and 4+2 recycle what they free rather than
/// allocate afresh. Per upload, up to about 16 blocks are with the disk writers (see `write::BATCH`: queued,
/// being gathered, and up to two writes per disk with the device, which reads full shards from the block
/// itself, see `disk::gather_in_place`), their parity, a sink buffer per disk, and the blocks the MD5 lanes
/// still hold (see `md5_lanes::BACKLOG`): counted on PUT 64 MiB at c8, at most 360 buffers out at once
/// with io_uring and 220 with the portable backend. A buffer evicted at a peak comes back as fresh memory
/// (page faults and zeroing) at the next: with 160 kept, 40,000-140,000 page faults per 10 s run against
/// about 4,000 with 384 (`perf stat` over the server). Buffers are about 1 MiB each.
const KEEP: usize = 384;
/// Bytes kept for reuse, whatever the buffers' size: above what [`KEEP`] buffers of the default 1 MiB blocks
/// take, so it binds only with larger configured blocks (at 64 MiB blocks, eight buffers).
const KEEP_BYTES: usize = 512 << 20;
/// How long a buffer stays in the pool unused before it is freed: a burst's buffers do not outlive it by
/// more than this (and a little: the trimming thread looks every `IDLE / 2`).
const IDLE: Duration = Duration::from_secs(10);
/// Smaller buffers (small objects, last blocks) are not worth keeping.
const MIN_KEPT: usize = 64 * 1024;

/// Buffers and when each came back, oldest first.
static POOL: Mutex<Vec<(Vec<u8>, Instant)>> = Mutex::new(Vec::new());

fn pool() -> MutexGuard<'static, Vec<(Vec<u8>, Instant)>> {
    POOL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes out of `pool` (oldest first) the buffers that came back more than `IDLE` before `now`.
fn take_stale(pool: &mut Vec<(Vec<u8>, Instant)>, now: Instant) -> Vec<(Vec<u8>, Instant)> {
    let stale = pool
        .iter()
        .take_while(|(_, at)| now.duration_since(*at) > IDLE)
        .count();
    pool.drain(..stale).collect()
}

/// Starts the thread that trims the pool, once (if it cannot start, `KEEP` still bounds the pool).
fn start_trimming() {
    static START: Once = Once::new();
    START.call_once(|| {
        let _ = std::thread::Builder::new()
            .name("buffer-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(IDLE / 2);
                    let stale = take_stale(&mut pool(), Instant::now());
                    // Freed outside the lock: freeing a large buffer may unmap it.
                    drop(stale);
                }
            });
    });
}

/// An empty buffer with room for `cap` bytes: a recycled one of about that size when there is one.
pub(crate) fn take(cap: usize) -> Vec<u8> {
    let mut buf = take_keeping(cap);
    buf.clear();
    buf
}

/// Like [`take`], but a recycled buffer keeps its length and contents.
fn take_keeping(cap: usize) -> Vec<u8> {
    if cap >= MIN_KEPT {
        let mut pool = pool();
        if let Some(i) = pool
            .iter()
            .rposition(|(b, _)| b.capacity() >= cap && b.capacity() <= 2 * cap)
        {
            // `remove`, not `swap_remove`: the pool stays ordered oldest first for `give_back` and `trim`.
            return pool.remove(i).0;
        }
    }
    Vec::with_capacity(cap)
}

/// A buffer of exactly `len` bytes to be overwritten whole (a read target): recycled when there is one, and
/// then not zeroed first; its old contents are garbage to the caller.
pub(crate) fn take_len(len: usize) -> Vec<u8> {
    let mut buf = take_keeping(len);
    buf.resize(len, 0);
    buf
}

/// Freezes `buf`; once every slice of the result is dropped the buffer goes back to the pool.
pub(crate) fn freeze(buf: Vec<u8>) -> Bytes {
    if buf.capacity() < MIN_KEPT {
        return Bytes::from(buf);
    }
    Bytes::from_owner(Recycled(buf))
}

struct Recycled(Vec<u8>);

impl AsRef<[u8]> for Recycled {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Recycled {
    fn drop(&mut self) {
        give_back(std::mem::take(&mut self.0));
    }
}

/// Memory alignment of the buffers shards are cut from (blocks and their parity): a shard that starts at a
/// multiple of it can go to an `O_DIRECT` write from where it is (see `disk::FileSink`). A page covers every
/// device's DMA alignment.
pub(crate) const SHARD_ALIGN: usize = 4096;

/// A pooled buffer whose contents start at a [`SHARD_ALIGN`]-aligned address, for the blocks and parity that
/// shards are sliced from. Buffers under [`MIN_KEPT`] bytes (small objects) are not worth the padding and
/// start where the allocation does.
#[derive(Default)]
pub(crate) struct AlignedBuf {
    /// `buf[..start]` is padding; the contents are `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
}

impl AlignedBuf {
    /// An empty buffer with room for `cap` bytes.
    pub(crate) fn with_capacity(cap: usize) -> Self {
        if cap < MIN_KEPT {
            return Self {
                buf: take(cap),
                start: 0,
            };
        }
        let mut buf = take(cap + SHARD_ALIGN);
        let start = buf.as_ptr().align_offset(SHARD_ALIGN);
        buf.resize(start, 0);
        Self { buf, start }
    }

    /// A buffer of `len` bytes to be overwritten whole (recycled ones are not zeroed, as with [`take_len`]:
    /// zeroing each block's 512 KiB of parity first was 3.6% of a 64 MiB PUT's server samples).
    pub(crate) fn with_len(len: usize) -> Self {
        if len < MIN_KEPT {
            return Self {
                buf: take_len(len),
                start: 0,
            };
        }
        let mut buf = take_len(len + SHARD_ALIGN);
        let start = buf.as_ptr().align_offset(SHARD_ALIGN);
        buf.truncate(start + len);
        Self { buf, start }
    }

    /// Bytes of contents.
    pub(crate) fn len(&self) -> usize {
        self.buf.len() - self.start
    }

    /// Whether the buffer holds no contents.
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Room for contents; 0 for a buffer taken with `mem::take`.
    pub(crate) fn capacity(&self) -> usize {
        self.buf.capacity() - self.start
    }

    /// Appends `data`.
    pub(crate) fn extend_from_slice(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// The contents.
    pub(crate) fn as_slice(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    /// The contents, to overwrite.
    pub(crate) fn as_mut_slice(&mut self) -> &mut [u8] {
        &mut self.buf[self.start..]
    }

    /// Freezes the contents; as with [`freeze`], the buffer goes back to the pool once every slice is dropped.
    pub(crate) fn freeze(self) -> Bytes {
        let start = self.start;
        freeze(self.buf).slice(start..)
    }
}

/// Returns a buffer taken with [`take`] and no longer used.
pub(crate) fn give_back(buf: Vec<u8>) {
    if !(MIN_KEPT..=KEEP_BYTES).contains(&buf.capacity()) {
        return;
    }
    start_trimming();
    let mut pool = pool();
    let evicted = make_room(&mut pool, buf.capacity());
    pool.push((buf, Instant::now()));
    drop(pool);
    // Freed outside the lock: freeing a large buffer may unmap it.
    drop(evicted);
}

/// Takes out of `pool` the oldest buffers, as many as it takes for one more of `incoming` bytes to stay within
/// [`KEEP`] buffers and [`KEEP_BYTES`]. A full pool drops its oldest buffers, not the one coming back:
/// otherwise what one workload left behind (1 MiB blocks after a run of PUTs) would fill it for good, and a
/// GET's shard buffers, of another size, would be allocated and zeroed afresh every time (about 6% of the
/// server's CPU on 64 MiB GETs).
fn make_room(pool: &mut Vec<(Vec<u8>, Instant)>, incoming: usize) -> Vec<(Vec<u8>, Instant)> {
    let mut held: usize = pool.iter().map(|(b, _)| b.capacity()).sum::<usize>() + incoming;
    let mut oldest = 0;
    // `pool.len() + 1 - oldest`: the buffers kept once the oldest `oldest` go and `incoming` comes.
    while oldest < pool.len() && (pool.len() + 1 - oldest > KEEP || held > KEEP_BYTES) {
        held -= pool[oldest].0.capacity();
        oldest += 1;
    }
    pool.drain(..oldest).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_buffer_is_handed_out_again() {
        let mut buf = take(MIN_KEPT * 3);
        buf.extend_from_slice(&[7u8; 100]);
        let ptr = buf.as_ptr();
        let bytes = freeze(buf);
        let slice = bytes.slice(10..20);
        drop(bytes);
        assert_eq!(&slice[..], &[7u8; 10]);
        drop(slice);
        // Other tests may take from the pool concurrently; look for ours among a few.
        let again: Vec<Vec<u8>> = (0..KEEP).map(|_| take(MIN_KEPT * 3)).collect();
        assert!(again.iter().any(|b| b.as_ptr() == ptr && b.is_empty()));
    }

    #[test]
    fn the_pool_stays_within_its_count_and_its_bytes() {
        let at = Instant::now();
        // Capacity only: the memory is reserved, never touched.
        let big = |n: usize| (Vec::<u8>::with_capacity(n), at);
        let mut pool: Vec<(Vec<u8>, Instant)> = (0..KEEP).map(|_| big(MIN_KEPT)).collect();
        let evicted = make_room(&mut pool, MIN_KEPT);
        assert_eq!(
            (evicted.len(), pool.len()),
            (1, KEEP - 1),
            "a full pool drops one"
        );
        let mut pool = vec![
            big(KEEP_BYTES / 4),
            big(KEEP_BYTES / 4),
            big(KEEP_BYTES / 4),
        ];
        let evicted = make_room(&mut pool, KEEP_BYTES / 2);
        assert_eq!(
            (evicted.len(), pool.len()),
            (1, 2),
            "the oldest goes to make room in bytes"
        );
        assert!(
            make_room(&mut pool, KEEP_BYTES / 2).is_empty(),
            "exactly full fits"
        );
    }

    #[test]
    fn buffers_unused_for_the_idle_time_are_taken_out() {
        let start = Instant::now();
        let mut pool: Vec<(Vec<u8>, Instant)> = (0..4u8)
            .map(|i| (vec![i], start + Duration::from_secs(u64::from(i) * 4)))
            .collect();
        // At start + IDLE + 5 s, the buffers back at 0 and 4 s are stale, those at 8 and 12 s are not.
        let stale = take_stale(&mut pool, start + IDLE + Duration::from_secs(5));
        let ids = |v: &[(Vec<u8>, Instant)]| v.iter().map(|(b, _)| b[0]).collect::<Vec<_>>();
        assert_eq!(ids(&stale), [0, 1]);
        assert_eq!(ids(&pool), [2, 3]);
        assert!(take_stale(&mut pool, start + IDLE).is_empty());
    }

    #[test]
    fn aligned_buffers_start_aligned_and_freeze_to_their_contents() {
        for cap in [MIN_KEPT, 1 << 20, (1 << 20) + 3] {
            for _ in 0..3 {
                let mut buf = AlignedBuf::with_capacity(cap);
                assert!(buf.is_empty());
                assert!(buf.capacity() >= cap);
                buf.extend_from_slice(&vec![9u8; cap]);
                assert_eq!(buf.as_slice().as_ptr() as usize % SHARD_ALIGN, 0);
                let bytes = buf.freeze();
                assert_eq!(bytes.len(), cap);
                assert_eq!(bytes.as_ptr() as usize % SHARD_ALIGN, 0);
                assert!(bytes.iter().all(|&b| b == 9));
            }
            let mut buf = AlignedBuf::with_len(cap);
            assert_eq!(buf.len(), cap);
            assert_eq!(buf.as_mut_slice().as_ptr() as usize % SHARD_ALIGN, 0);
        }
        let small = AlignedBuf::with_capacity(100);
        assert!(small.capacity() >= 100);
        assert_eq!(AlignedBuf::default().capacity(), 0);
    }
}
