//! The read path: stream a byte range of an object, block by block, from the first `k` shards that verify.
//!
//! Every shard block's BLAKE3 is checked; a block whose data shards are missing or corrupt is rebuilt from
//! parity, and the bad shard is queued for repair.
//!
//! Where the blocks are read depends on how busy the runtime is ([`Pace`]). While the other open streams
//! leave a worker free, a task of their own reads up to [`READ_AHEAD`] blocks ahead, so one stream's reads
//! and checks run on one core while another sends. Once there is no core to spare, the blocks are read on
//! the response's own task, as hyper polls its body ([`BlockStream`]): a block from the page cache is read
//! only once hyper has taken every piece of the one before, so that no task hand-off runs per block and the
//! kernel copies to the socket bytes just checked on this core. A block that had to come from disk lets the
//! next read go ahead there too, so disk reads overlap the socket.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::mpsc;

use crate::buffers::AlignedBuf;
use crate::disk::{DataId, Disk, ShardSource};
use crate::engine::{BodyStream, Engine};
use crate::erasure::Codec;
use crate::error::{Error, Result};
use crate::layout::{BlockMap, FrameLayout, Frames, HASH_LEN, ShardHeader};
use crate::meta::{ObjectData, ObjectRecord, Segment};

/// Blocks read ahead of the consumer (by a read-ahead task, or on the response's task while reads come
/// from disk).
const READ_AHEAD: usize = 2;

/// How a stream's blocks are read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    /// On a task of their own, [`READ_AHEAD`] blocks ahead of the socket.
    Ahead,
    /// On the response's task, each page-cache read once the body has sent the block before.
    OnDemand,
}

impl Pace {
    /// Reads ahead on a task of their own only while the other open streams leave a worker free. Measured
    /// on two cores with GET 64 MiB (ARCHITECTURE.md, GET): at concurrency 8, on-demand reads cost about 7%
    /// less server CPU per GiB; at concurrency 1 they cut the stream's throughput by a quarter, as its reads
    /// no longer run beside its sends. An inline object is one piece with nothing to overlap, so it is read
    /// on demand always: the task and channel it no longer needs were about a sixth of a 4 KiB GET's CPU.
    ///
    /// The pace is chosen once, when the stream opens. `open_streams` counts every object body being
    /// streamed (GETs, CopyObject and UploadPartCopy sources), including one waiting on a slow client: a
    /// rough measure of busy workers, which errs towards on-demand reads, the cheaper in CPU.
    fn choose(data: &ObjectData, open_streams: usize, workers: usize) -> Self {
        match data {
            ObjectData::Segments(_) if open_streams < workers => Pace::Ahead,
            _ => Pace::OnDemand,
        }
    }
}

/// Counts a stream in the engine's open streams while it lives.
struct OpenStream(Arc<AtomicUsize>);

impl OpenStream {
    /// Registers a stream; returns it with the number open before it.
    fn register(open: &Arc<AtomicUsize>) -> (Self, usize) {
        let before = open.fetch_add(1, Ordering::Relaxed);
        (OpenStream(open.clone()), before)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Where a shard block was read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    /// Copied from the page cache on the calling task.
    PageCache,
    /// Read on the blocking pool: the page cache did not hold all of it.
    Disk,
}

/// One block of an object, as slices of its data shards.
struct Block {
    pieces: Vec<Bytes>,
    /// Whether any shard of it had to be read from disk (so the next one likely will too).
    from_disk: bool,
}

/// One opened shard: the file and where its frames are.
struct OpenShard {
    src: Box<dyn ShardSource>,
    frames: Frames,
}

/// The shard files of one segment, opened up front so a concurrent overwrite cannot pull them away mid-read.
pub(crate) struct SegmentReader {
    segment: Segment,
    codec: Codec,
    shards: Vec<Option<Arc<OpenShard>>>,
    /// Slots found missing or corrupt; reported for repair.
    bad: Vec<bool>,
}

fn open_shard(disk: &dyn Disk, id: DataId, slot: usize) -> std::io::Result<OpenShard> {
    let src = disk.open(id)?;
    let (header, frames) = ShardHeader::read(src.as_ref())?;
    if header.data_id != id || usize::from(header.shard_index) != slot {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "shard header names another shard",
        ));
    }
    Ok(OpenShard { src, frames })
}

impl SegmentReader {
    pub(crate) async fn open(engine: &Engine, segment: &Segment) -> Result<Self> {
        let codec = Codec::new(segment.geometry)?;
        let n = segment.geometry.total();
        let tasks: Vec<_> = (0..n)
            .map(|slot| {
                let disk = engine.disk_for(segment.rotation, slot);
                let id = segment.data_id;
                tokio::task::spawn_blocking(move || open_shard(disk.as_ref(), id, slot))
            })
            .collect();
        let mut shards = Vec::with_capacity(n);
        let mut bad = vec![false; n];
        for (slot, t) in tasks.into_iter().enumerate() {
            match t.await {
                Ok(Ok(s)) => shards.push(Some(Arc::new(s))),
                Ok(Err(e)) => {
                    tracing::warn!(slot, id = %segment.data_id.to_hex(), error = %e, "shard unavailable");
                    shards.push(None);
                    bad[slot] = true;
                }
                Err(e) => return Err(Error::Unrecoverable(e.to_string())),
            }
        }
        let present = shards.iter().filter(|s| s.is_some()).count();
        if present < usize::from(segment.geometry.data) {
            return Err(Error::Unrecoverable(format!(
                "only {present} shards of {} readable for {}",
                n,
                segment.data_id.to_hex()
            )));
        }
        Ok(Self {
            segment: segment.clone(),
            codec,
            shards,
            bad,
        })
    }

    fn map(&self) -> BlockMap {
        BlockMap {
            geometry: self.segment.geometry,
            block_size: u64::from(self.segment.block_size),
            size: self.segment.size,
        }
    }

    /// Reads shard `slot` of `block`, verifying its checksum.
    async fn read_shard(&self, slot: usize, block: u64) -> Option<(Bytes, Source)> {
        let shard = self.shards[slot].clone()?;
        let map = self.map();
        let len = map.shard_len(block);
        // The hash and the shard after it, in either layout.
        let offset = shard.frames.hash_offset(&map, block);
        // A recycled buffer, not zeroed: the read overwrites all of it. Page-aligned (from 64 KiB on), so that
        // in the aligned layout, where the hash ends its 4 KiB slot, the kernel's copy lands HASH_LEN bytes
        // past where it reads: the fast distance for `rep movsb` (see `layout::HASH_LEN`).
        let mut buf = AlignedBuf::with_len(HASH_LEN + len);
        // From the page cache on this task when the block is there (a copy, no disk wait); otherwise on the
        // blocking pool, so a disk read never holds up the runtime's threads.
        let (read, source) = match shard.src.read_cached_at(buf.as_mut_slice(), offset) {
            Ok(true) => (buf, Source::PageCache),
            Ok(false) => {
                let read = tokio::task::spawn_blocking(move || {
                    shard
                        .src
                        .read_exact_at(buf.as_mut_slice(), offset)
                        .map(|()| buf)
                })
                .await
                .ok()?
                .ok()?;
                (read, Source::Disk)
            }
            Err(_) => return None,
        };
        let (hash, data) = read.as_slice().split_at(HASH_LEN);
        if blake3::hash(data).as_bytes() != hash {
            tracing::warn!(slot, block, id = %self.segment.data_id.to_hex(), "shard block checksum mismatch");
            return None;
        }
        Some((read.freeze().slice(HASH_LEN..), source))
    }

    /// Returns block `i`'s object bytes (as slices of its data shards), reconstructing from parity when a data
    /// shard fails.
    async fn block(&mut self, i: u64) -> Result<Block> {
        let k = usize::from(self.segment.geometry.data);
        let n = self.segment.geometry.total();
        let mut got: Vec<Option<Bytes>> = vec![None; n];
        let mut from_disk = false;
        let first: Vec<usize> = (0..k).collect();
        let reads =
            futures_util::future::join_all(first.iter().map(|&s| self.read_shard(s, i))).await;
        for (&slot, r) in first.iter().zip(reads) {
            from_disk |= matches!(r, Some((_, Source::Disk)));
            got[slot] = r.map(|(bytes, _)| bytes);
        }
        let mut tried = k;
        while got.iter().filter(|g| g.is_some()).count() < k && tried < n {
            let need = k - got.iter().filter(|g| g.is_some()).count();
            let next: Vec<usize> = (tried..n).take(need).collect();
            tried += next.len();
            let reads =
                futures_util::future::join_all(next.iter().map(|&s| self.read_shard(s, i))).await;
            for (&slot, r) in next.iter().zip(reads) {
                from_disk |= matches!(r, Some((_, Source::Disk)));
                got[slot] = r.map(|(bytes, _)| bytes);
            }
        }
        for (slot, g) in got.iter().enumerate().take(tried) {
            if g.is_none() {
                self.bad[slot] = true;
            }
        }
        let map = self.map();
        if got[..k].iter().any(Option::is_none) {
            self.codec.reconstruct(&mut got, map.shard_len(i))?;
        }
        Ok(Block {
            pieces: self.codec.pieces(&got, map.block_len(i)),
            from_disk,
        })
    }

    /// Reads every shard of every block; returns the slots that are missing or fail verification anywhere.
    pub(crate) async fn scan_all(&mut self, blocks: u64) -> Result<Vec<usize>> {
        let n = self.segment.geometry.total();
        let mut bad: Vec<bool> = self.shards.iter().map(Option::is_none).collect();
        for b in 0..blocks {
            let reads = futures_util::future::join_all((0..n).map(|s| self.read_shard(s, b))).await;
            for (slot, r) in reads.into_iter().enumerate() {
                bad[slot] |= r.is_none();
            }
        }
        Ok((0..n).filter(|&s| bad[s]).collect())
    }

    /// All `k + m` shards of a block, reconstructing the ones that fail.
    pub(crate) async fn all_shards(&self, block: u64) -> Result<Vec<Bytes>> {
        let n = self.segment.geometry.total();
        let mut got: Vec<Option<Bytes>> =
            futures_util::future::join_all((0..n).map(|s| self.read_shard(s, block)))
                .await
                .into_iter()
                .map(|r| r.map(|(bytes, _)| bytes))
                .collect();
        self.codec
            .reconstruct(&mut got, self.map().shard_len(block))?;
        Ok(got.into_iter().map(|g| g.expect("reconstructed")).collect())
    }

    /// The layout of the segment's shard files, for a repair to write the file it replaces as it was: a write
    /// gives every file of a segment the same one, so it is what most readable files have (the format number
    /// is outside the header's hash, and a file whose number flipped must not decide for its siblings).
    pub(crate) fn layout(&self) -> FrameLayout {
        let readable = self.shards.iter().flatten();
        let aligned = readable
            .clone()
            .filter(|s| s.frames.layout == FrameLayout::Aligned)
            .count();
        if 2 * aligned > readable.count() {
            FrameLayout::Aligned
        } else {
            FrameLayout::Compact
        }
    }

    pub(crate) fn needs_repair(&self) -> bool {
        self.bad.iter().any(|&b| b)
    }
}

/// Streams bytes `start..=end` of `record` (which must not be empty for a non-empty range).
pub(crate) fn stream_range(
    engine: Arc<Engine>,
    bucket: String,
    key: String,
    record: ObjectRecord,
    start: u64,
    end: u64,
) -> BodyStream {
    let (open, others) = OpenStream::register(engine.open_streams());
    let workers = tokio::runtime::Handle::current().metrics().num_workers();
    let pace = Pace::choose(&record.data, others, workers);
    let read = RangeRead {
        engine,
        bucket,
        key,
        record,
        start,
        end,
    };
    stream_paced(read, pace, open, Arc::default())
}

/// What one body reads: bytes `start..=end` of one version of an object.
struct RangeRead {
    engine: Arc<Engine>,
    bucket: String,
    key: String,
    record: ObjectRecord,
    start: u64,
    end: u64,
}

/// [`stream_range`] at a given pace.
fn stream_paced(read: RangeRead, pace: Pace, open: OpenStream, demand: Arc<Demand>) -> BodyStream {
    let (tx, rx) = mpsc::channel::<Result<Vec<Bytes>>>(READ_AHEAD);
    let out = Outlet {
        blocks: tx,
        pace,
        demand: demand.clone(),
    };
    let producer = async move {
        if let Err(e) = produce(&read, &out).await {
            tracing::error!(bucket = read.bucket, key = read.key, error = %e, "read failed mid-stream");
            let _ = out.blocks.send(Err(e)).await;
        }
    };
    let producer: Option<Pin<Box<dyn Future<Output = ()> + Send>>> = match pace {
        Pace::Ahead => {
            tokio::spawn(producer);
            None
        }
        Pace::OnDemand => Some(Box::pin(producer)),
    };
    Box::pin(BlockStream {
        producer,
        blocks: rx,
        demand,
        ready: VecDeque::new(),
        _open: open,
    })
}

/// What a body and its on-demand reads share.
#[derive(Default)]
struct Demand {
    /// Set by the body when it has handed out every piece and none is queued; cleared by the next read.
    wanted: AtomicBool,
    /// Blocks read so far, and how many of them came from disk (for the tests of the pacing).
    #[cfg(test)]
    blocks_read: AtomicUsize,
    #[cfg(test)]
    from_disk: AtomicUsize,
}

/// Where `produce` hands its blocks, and when it may read the next.
struct Outlet {
    blocks: mpsc::Sender<Result<Vec<Bytes>>>,
    pace: Pace,
    demand: Arc<Demand>,
}

impl Outlet {
    /// Waits until the next block may be read and there is room for it, so no more than [`READ_AHEAD`]
    /// blocks wait in the channel; `None` once the body is gone. An on-demand read waits for the body to
    /// ask, unless the block before came from disk: then the next read goes ahead at once.
    async fn slot(&self, after_disk: bool) -> Option<mpsc::Permit<'_, Result<Vec<Bytes>>>> {
        if self.pace == Pace::OnDemand && !after_disk {
            // No waker: an on-demand producer is only polled by `BlockStream::poll_next`, right after it
            // sets the flag, so this waits only after a block was sent in that same poll, and the body
            // returns that block and is polled again.
            std::future::poll_fn(|_| {
                if self.demand.wanted.load(Ordering::Relaxed) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
        }
        let slot = self.blocks.reserve().await.ok();
        // This read answers the go-ahead, whether it waited for it or not.
        self.demand.wanted.store(false, Ordering::Relaxed);
        slot
    }

    /// Notes a block read (tests only).
    fn block_read(&self, _from_disk: bool) {
        #[cfg(test)]
        {
            self.demand.blocks_read.fetch_add(1, Ordering::Relaxed);
            self.demand
                .from_disk
                .fetch_add(usize::from(_from_disk), Ordering::Relaxed);
        }
    }
}

/// A response body: hands out the pieces of the blocks its reads produce (see the module doc).
struct BlockStream {
    /// The reads, when they run on this stream's task ([`Pace::OnDemand`]); `None` when they run on a task
    /// of their own or are done (the channel then drains and closes).
    producer: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    blocks: mpsc::Receiver<Result<Vec<Bytes>>>,
    demand: Arc<Demand>,
    /// Pieces of the current block not yet handed out.
    ready: VecDeque<Bytes>,
    _open: OpenStream,
}

impl Stream for BlockStream {
    type Item = std::result::Result<Bytes, crate::error::BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        let mut asked = false;
        loop {
            if let Some(piece) = this.ready.pop_front() {
                return Poll::Ready(Some(Ok(piece)));
            }
            match this.blocks.poll_recv(cx) {
                Poll::Ready(Some(Ok(pieces))) => this.ready.extend(pieces),
                Poll::Ready(Some(Err(e))) => return Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => {
                    // Nothing left to hand out: an on-demand producer may read the next block now. It then
                    // leaves a block (or an error, or its end) in the channel, or waits on something that
                    // wakes this task (a disk read, a shard file's open).
                    let Some(producer) = this.producer.as_mut().filter(|_| !asked) else {
                        return Poll::Pending;
                    };
                    asked = true;
                    this.demand.wanted.store(true, Ordering::Relaxed);
                    if producer.as_mut().poll(cx).is_ready() {
                        this.producer = None;
                    }
                }
            }
        }
    }
}

/// The bytes `lo..=hi` (offsets within the block) of a block given as consecutive pieces.
fn slice_pieces(pieces: Vec<Bytes>, lo: u64, hi: u64) -> Vec<Bytes> {
    let mut out = Vec::with_capacity(pieces.len());
    let mut at = 0u64;
    for p in pieces {
        let (p0, p1) = (at, at + p.len() as u64); // [p0, p1)
        at = p1;
        if p1 <= lo || p0 > hi {
            continue;
        }
        let a = (lo.max(p0) - p0) as usize;
        let b = (hi.min(p1 - 1) - p0) as usize;
        out.push(p.slice(a..=b));
    }
    out
}

async fn produce(read: &RangeRead, out: &Outlet) -> Result<()> {
    let RangeRead {
        engine,
        bucket,
        key,
        record,
        start,
        end,
    } = read;
    let (start, end) = (*start, *end);
    if record.size == 0 || start > end {
        return Ok(());
    }
    match &record.data {
        ObjectData::DeleteMarker => Ok(()),
        ObjectData::Inline { data_id, hash } => {
            let bytes = engine.read_inline(*data_id, record.size, hash).await?;
            let _ = out
                .blocks
                .send(Ok(vec![bytes.slice(start as usize..=end as usize)]))
                .await;
            Ok(())
        }
        ObjectData::Segments(segments) => {
            let mut seg_start = 0u64;
            let mut after_disk = false;
            for seg in segments {
                let seg_end = seg_start + seg.size; // exclusive
                if seg_end <= start || seg_start > end {
                    seg_start = seg_end;
                    continue;
                }
                let mut reader = SegmentReader::open(engine, seg).await?;
                let from = start.max(seg_start) - seg_start;
                let to = end.min(seg_end - 1) - seg_start;
                let bs = u64::from(seg.block_size);
                let mut repair_queued = false;
                for b in from / bs..=to / bs {
                    let Some(slot) = out.slot(after_disk).await else {
                        return Ok(()); // the client went away
                    };
                    let block = reader.block(b).await?;
                    out.block_read(block.from_disk);
                    // Queued as soon as found: a client that goes away mid-object drops these reads.
                    if reader.needs_repair() && !repair_queued {
                        engine.queue_repair(bucket, key, seg.data_id);
                        repair_queued = true;
                    }
                    let b0 = b * bs;
                    slot.send(Ok(slice_pieces(
                        block.pieces,
                        from.max(b0) - b0,
                        to.min(b0 + bs - 1) - b0,
                    )));
                    after_disk = block.from_disk;
                }
                seg_start = seg_end;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Demand, OpenStream, Pace, RangeRead, SegmentReader, slice_pieces, stream_paced};
    use crate::layout::HASH_LEN;
    use crate::meta::{ObjectData, ObjectRecord};
    use crate::{Engine, PutOptions, Settings};
    use bytes::Bytes;
    use futures_util::StreamExt;
    use std::sync::Arc;
    use std::sync::atomic::Ordering;

    const BLOCK: usize = 64 * 1024;
    const BUCKET: &str = "b";

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
    }

    async fn engine(dir: &std::path::Path) -> Arc<Engine> {
        let mut cfg = strata_config::Config::default();
        cfg.server.data_dir = dir.to_owned();
        cfg.storage.block_size = BLOCK;
        cfg.storage.inline_threshold = 16 * 1024;
        cfg.storage.meta_cache_bytes = 1024 * 1024;
        cfg.validate().unwrap();
        let engine = Engine::open(Settings::from_config(&cfg).unwrap())
            .await
            .unwrap();
        engine
            .create_bucket(BUCKET, "owner", "us-east-1", false)
            .await
            .unwrap();
        engine
    }

    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i * 131 + i / 509) as u8 ^ seed).collect()
    }

    async fn put(engine: &Engine, key: &str, data: &[u8]) -> ObjectRecord {
        let opts = PutOptions {
            content_length: Some(data.len() as u64),
            owner: "owner".into(),
            ..PutOptions::default()
        };
        let body = futures_util::stream::iter(
            data.chunks(7000)
                .map(|c| Ok(Bytes::copy_from_slice(c)))
                .collect::<Vec<_>>(),
        );
        engine
            .put_object(BUCKET, key, opts, Box::pin(body), |_| Ok(()))
            .await
            .unwrap()
    }

    fn open_stream(
        engine: &Arc<Engine>,
        record: &ObjectRecord,
        start: u64,
        end: u64,
        pace: Pace,
    ) -> crate::BodyStream {
        open_counted(engine, record, start, end, pace, Arc::default())
    }

    /// [`open_stream`], counting the blocks read in `demand`.
    fn open_counted(
        engine: &Arc<Engine>,
        record: &ObjectRecord,
        start: u64,
        end: u64,
        pace: Pace,
        demand: Arc<Demand>,
    ) -> crate::BodyStream {
        let (open, _) = OpenStream::register(engine.open_streams());
        let read = RangeRead {
            engine: engine.clone(),
            bucket: BUCKET.into(),
            key: "k".into(),
            record: record.clone(),
            start,
            end,
        };
        stream_paced(read, pace, open, demand)
    }

    async fn read(
        engine: &Arc<Engine>,
        record: &ObjectRecord,
        start: u64,
        end: u64,
        pace: Pace,
    ) -> Vec<u8> {
        let mut body = open_stream(engine, record, start, end, pace);
        let mut out = Vec::new();
        while let Some(piece) = body.next().await {
            out.extend_from_slice(&piece.unwrap());
        }
        out
    }

    #[test]
    fn reads_run_ahead_only_while_a_worker_is_free() {
        let segments = ObjectData::Segments(Vec::new());
        assert_eq!(Pace::choose(&segments, 0, 2), Pace::Ahead);
        assert_eq!(Pace::choose(&segments, 1, 2), Pace::Ahead);
        assert_eq!(Pace::choose(&segments, 2, 2), Pace::OnDemand);
        assert_eq!(Pace::choose(&segments, 9, 2), Pace::OnDemand);
        assert_eq!(Pace::choose(&segments, 0, 1), Pace::Ahead);
        let inline = ObjectData::Inline {
            data_id: crate::disk::DataId([7; 16]),
            hash: [0; 32],
        };
        assert_eq!(Pace::choose(&inline, 0, 8), Pace::OnDemand);
    }

    /// Both paces stream exactly the bytes asked for: whole objects, ranges on and across block boundaries,
    /// inline objects.
    #[test]
    fn either_pace_returns_exactly_the_bytes_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let engine = engine(dir.path()).await;
            let data = pattern(5 * BLOCK + 1234, 1);
            let record = put(&engine, "k", &data).await;
            let small = pattern(5000, 2);
            let inline = put(&engine, "small", &small).await;
            assert!(matches!(inline.data, ObjectData::Inline { .. }));
            let last = data.len() as u64 - 1;
            let b = BLOCK as u64;
            for pace in [Pace::Ahead, Pace::OnDemand] {
                for (start, end) in [
                    (0, last),
                    (0, 0),
                    (b - 1, b),
                    (b, 3 * b - 1),
                    (7, 4 * b + 9),
                    (last, last),
                ] {
                    let got = read(&engine, &record, start, end, pace).await;
                    assert!(
                        got == data[start as usize..=end as usize],
                        "{pace:?} {start}..={end}"
                    );
                }
                assert_eq!(
                    read(&engine, &inline, 0, 4999, pace).await,
                    small,
                    "{pace:?}"
                );
                assert_eq!(
                    read(&engine, &inline, 10, 20, pace).await,
                    small[10..=20],
                    "{pace:?}"
                );
            }
            assert_eq!(engine.open_streams().load(Ordering::Relaxed), 0);
        });
    }

    /// From the page cache, an on-demand read waits for the body to hand out the block before; a read-ahead
    /// task runs READ_AHEAD blocks ahead of the body; after a block from disk, an on-demand read goes ahead.
    #[test]
    fn on_demand_reads_wait_for_the_body_and_read_ahead_does_not() {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let engine = engine(dir.path()).await;
            let data = pattern(8 * BLOCK, 5);
            let record = put(&engine, "k", &data).await;
            let end = data.len() as u64 - 1;
            let settle = || tokio::time::sleep(std::time::Duration::from_millis(100));
            let count = |d: &Demand| d.blocks_read.load(Ordering::Relaxed);

            // Out of the page cache, the first block comes from disk and lets the next read go ahead (which
            // may find it cached, by the kernel's own read-ahead, and wait).
            for path in &engine.shard_paths(&record)[0].1 {
                let file = std::fs::File::open(path).unwrap();
                rustix::fs::fadvise(&file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
            }
            let cold = Arc::new(Demand::default());
            let mut body = open_counted(&engine, &record, 0, end, Pace::OnDemand, cold.clone());
            body.next().await.unwrap().unwrap();
            settle().await;
            assert!(cold.from_disk.load(Ordering::Relaxed) >= 1);
            assert!(count(&cold) >= 2, "read {} blocks", count(&cold));
            while let Some(piece) = body.next().await {
                piece.unwrap();
            }

            // Now cached: one block read while the body holds its first piece, two once it is into the second.
            let warm = Arc::new(Demand::default());
            let mut body = open_counted(&engine, &record, 0, end, Pace::OnDemand, warm.clone());
            let mut got = body.next().await.unwrap().unwrap().to_vec();
            settle().await;
            let from_disk = warm.from_disk.load(Ordering::Relaxed);
            assert_eq!(from_disk, 0, "RWF_NOWAIT reads of cached shards");
            assert_eq!(count(&warm), 1);
            while got.len() <= BLOCK {
                got.extend_from_slice(&body.next().await.unwrap().unwrap());
            }
            settle().await;
            assert_eq!(count(&warm), 2);
            while let Some(piece) = body.next().await {
                got.extend_from_slice(&piece.unwrap());
            }
            assert!(got == data);
            assert_eq!(count(&warm), 8);

            // A read-ahead task fills the channel while the body holds its first piece.
            let ahead = Arc::new(Demand::default());
            let mut body = open_counted(&engine, &record, 0, end, Pace::Ahead, ahead.clone());
            body.next().await.unwrap().unwrap();
            settle().await;
            assert_eq!(count(&ahead), 1 + super::READ_AHEAD);
        });
    }

    /// An on-demand read rebuilds a corrupt shard from parity rather than serve it, and queues it for repair
    /// as soon as it is found: the repair does not wait for the body to finish (nor happen only if it does).
    #[test]
    fn an_on_demand_read_rebuilds_a_corrupt_shard_and_queues_it_at_once() {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let engine = engine(dir.path()).await;
            let data = pattern(6 * BLOCK, 3);
            let record = put(&engine, "k", &data).await;
            let (_, paths) = &engine.shard_paths(&record)[0];
            // Data shard 1, inside block 1's bytes, found as the reader finds it.
            let victim = &paths[1];
            let ObjectData::Segments(segments) = &record.data else {
                panic!("not inline: {:?}", record.data);
            };
            let reader = SegmentReader::open(&engine, &segments[0]).await.unwrap();
            let frames = &reader.shards[1].as_ref().unwrap().frames;
            let at = frames.hash_offset(&reader.map(), 1) as usize + HASH_LEN + 100;
            drop(reader);
            let before = std::fs::read(victim).unwrap();
            let mut bytes = before.clone();
            bytes[at] ^= 0xff;
            std::fs::write(victim, &bytes).unwrap();

            let mut body = open_stream(&engine, &record, 0, data.len() as u64 - 1, Pace::OnDemand);
            let mut got = Vec::new();
            while got.len() < 2 * BLOCK {
                got.extend_from_slice(&body.next().await.unwrap().unwrap());
            }
            assert!(got[..] == data[..got.len()], "the corrupt shard was served");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
            while std::fs::read(victim).unwrap() != before {
                assert!(
                    std::time::Instant::now() < deadline,
                    "not repaired while the body is open"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            while let Some(piece) = body.next().await {
                got.extend_from_slice(&piece.unwrap());
            }
            assert!(got == data);
        });
    }

    /// A body dropped part-way (the client went away) leaves nothing open and nothing waiting, at either pace.
    #[test]
    fn a_body_dropped_mid_object_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        runtime().block_on(async {
            let engine = engine(dir.path()).await;
            let data = pattern(8 * BLOCK, 4);
            let record = put(&engine, "k", &data).await;
            for pace in [Pace::Ahead, Pace::OnDemand] {
                let mut body = open_stream(&engine, &record, 0, data.len() as u64 - 1, pace);
                let first = body.next().await.unwrap().unwrap();
                assert!(first[..] == data[..first.len()], "{pace:?}");
                assert_eq!(engine.open_streams().load(Ordering::Relaxed), 1);
                drop(body);
                assert_eq!(engine.open_streams().load(Ordering::Relaxed), 0, "{pace:?}");
            }
            // And a stream opened through the engine is counted while it lives.
            let body = engine.read_object(BUCKET, "k", &record, 0, 10);
            assert_eq!(engine.open_streams().load(Ordering::Relaxed), 1);
            drop(body);
            assert_eq!(engine.open_streams().load(Ordering::Relaxed), 0);
        });
    }

    #[test]
    fn slicing_pieces_matches_slicing_the_whole() {
        let whole: Vec<u8> = (0..100u8).collect();
        let pieces = || {
            vec![
                Bytes::copy_from_slice(&whole[..30]),
                Bytes::copy_from_slice(&whole[30..64]),
                Bytes::copy_from_slice(&whole[64..]),
            ]
        };
        for (lo, hi) in [
            (0, 99),
            (0, 0),
            (29, 30),
            (30, 63),
            (10, 70),
            (99, 99),
            (64, 64),
        ] {
            let got: Vec<u8> = slice_pieces(pieces(), lo, hi).concat();
            assert_eq!(got, &whole[lo as usize..=hi as usize], "{lo}..={hi}");
        }
    }
}
