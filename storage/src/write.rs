//! The write path: stream a body into erasure-coded shard files on every disk, in parallel, without ever holding
//! more than one block (plus a few in flight per disk) in memory.
//!
//! Body → MD5/checksum → block buffer → Reed-Solomon and per-shard BLAKE3 (one pass over each column slice, see
//! `Codec::encode_hashed`) → one writer per disk (blocking pool)
//! → fsync of file and staging directory. Publication (rename into data/) happens after the metadata commit; a
//! crash between the two is rolled forward at start (see `sweep`). Until the caller commits, dropping the
//! returned [`Staged`] deletes the staged files, so an aborted or failed upload leaves nothing behind.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::buffers::AlignedBuf;
use crate::checksum::{ChecksumAlgorithm, ChecksumHasher, Digests};
use crate::disk::{DataId, Disk, Frame};
use crate::engine::{BodyStream, Engine};
use crate::error::{Error, Result};
use crate::layout::{FrameLayout, ShardHeader};
use crate::md5_lanes::Md5Stream;
use crate::meta::{ObjectData, Segment};

/// Batches queued per disk writer before the encoder waits: with [`BATCH`], bounds memory per upload (at most
/// `WRITER_QUEUE * BATCH` blocks queued, one batch being written, and `BATCH - 1` blocks being gathered: 11
/// blocks of 1 MiB, shared by the six writers; plus, where shards are written in place, up to two more
/// batches a sink still has with the device, `disk::gather_in_place`).
const WRITER_QUEUE: usize = 1;
/// Blocks whose frames go to a disk writer in one message. A writer drains its queue faster than the encoder
/// fills it, so it sleeps after every message: one wake-up (futex on both sides, a context switch) per disk
/// per message. One block per message cost about as much CPU as the writes; two halved that. Four (with a
/// queue of one message instead of two: at most 11 blocks per upload instead of 7) took PUT 64 MiB at c8
/// from 9,500-9,900 to 7,000-7,200 context switches and from 7,500-8,200 to 4,900 futex calls per GiB with
/// io_uring, whose writers sleep more (a write does not hold them up), and from 7,600-8,100 to 6,400-7,000
/// and 4,800-5,500 to 3,700-4,100 with the portable backend (`perf stat` over the server).
const BATCH: usize = 4;

/// Who the data belongs to, for the self-describing shard header.
#[derive(Debug, Clone)]
pub(crate) struct WriteTarget {
    /// Bucket.
    pub(crate) bucket: String,
    /// Key.
    pub(crate) key: String,
    /// Version id.
    pub(crate) version_id: Option<String>,
    /// Part number (1 for a plain PUT).
    pub(crate) part: u32,
    /// The multipart upload this part belongs to.
    pub(crate) upload_id: Option<String>,
}

/// Data written but not yet referenced by metadata.
pub(crate) struct Staged {
    /// Where the bytes are, for the record.
    pub(crate) data: ObjectData,
    /// Inline bytes to store with the record.
    pub(crate) inline: Option<Bytes>,
    /// Digests of the body.
    pub(crate) digests: Digests,
    cleanup: Option<(Vec<Arc<dyn Disk>>, DataId)>,
}

impl Staged {
    /// Publishes shard files after the metadata commit made them part of an object.
    pub(crate) async fn publish(mut self, fsync: bool) {
        let Some((disks, id)) = self.cleanup.take() else {
            return;
        };
        let tasks: Vec<_> = disks
            .into_iter()
            .map(|d| {
                tokio::task::spawn_blocking(move || {
                    if let Err(e) = d.publish(id, false, fsync) {
                        // The staged file stays; it is rolled forward at next start or repaired on read.
                        tracing::warn!(disk = d.index(), error = %e, "publishing shard failed");
                    }
                })
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
    }
}

impl Drop for Staged {
    fn drop(&mut self) {
        if let Some((disks, id)) = self.cleanup.take() {
            remove_everywhere(disks, id);
        }
    }
}

fn remove_everywhere(disks: Vec<Arc<dyn Disk>>, id: DataId) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    rt.spawn_blocking(move || {
        for d in disks {
            if let Err(e) = d.remove(id) {
                tracing::warn!(disk = d.index(), error = %e, "removing abandoned shard failed");
            }
        }
    });
}

/// What a [`DiskWriter`]'s thread is sent.
pub(crate) enum ToWriter {
    /// Frames to append.
    Frames(Vec<Frame>),
    /// The last frame was sent: finish the file. A channel closed without this drops the sink unfinished
    /// (no tail, no sync), which is what an aborted upload or repair wants.
    Finish,
}

/// One staged shard file being written by a blocking-pool thread of its own, fed frames over a channel.
pub(crate) struct DiskWriter {
    disk: Arc<dyn Disk>,
    tx: Option<mpsc::Sender<ToWriter>>,
    task: JoinHandle<std::io::Result<()>>,
    /// Frames gathered for the next message.
    batch: Vec<Frame>,
}

impl DiskWriter {
    /// Starts writing the staged file `id` (a `.repair` file if `repair`) on `disk`: `header`, then every frame
    /// sent as `layout` lays them out (the header's own), then `finish(fsync)` when told to
    /// ([`DiskWriter::finish`]). The sink is created, written and
    /// finished on the one thread, as a sink must be (the io_uring sink's ring belongs to the thread that
    /// created it).
    pub(crate) fn spawn(
        disk: Arc<dyn Disk>,
        id: DataId,
        repair: bool,
        header: Vec<u8>,
        layout: FrameLayout,
        fsync: bool,
    ) -> Self {
        let (tx, mut rx) = mpsc::channel::<ToWriter>(WRITER_QUEUE);
        let d = disk.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut sink = d.create_staged(id, repair)?;
            sink.write_all(&header)?;
            while let Some(message) = rx.blocking_recv() {
                match message {
                    ToWriter::Frames(batch) => sink.write_frames(batch, layout)?,
                    ToWriter::Finish => return sink.finish(fsync),
                }
            }
            Err(std::io::Error::other("shard writer abandoned"))
        });
        Self {
            disk,
            tx: Some(tx),
            task,
            batch: Vec::with_capacity(BATCH),
        }
    }

    /// Sends frames now; false if the writer has stopped (its error comes from [`DiskWriter::finish`]).
    pub(crate) async fn send_now(&mut self, frames: Vec<Frame>) -> bool {
        match &self.tx {
            Some(tx) if tx.send(ToWriter::Frames(frames)).await.is_ok() => true,
            _ => {
                self.tx = None;
                false
            }
        }
    }

    /// Tells the writer the file is complete and waits for it to be finished (and synced, if asked).
    pub(crate) async fn finish(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.tx.take() {
            // If the writer already stopped, its error comes from the task below.
            let _ = tx.send(ToWriter::Finish).await;
        }
        self.join().await
    }

    /// Stops the writer without finishing its file and waits until it has let go of it, so that nothing
    /// writes to the file once this returns (the caller may remove it, or a repair may start it afresh).
    pub(crate) async fn abandon(mut self) {
        self.tx.take();
        let _ = self.join().await;
    }

    async fn join(self) -> std::io::Result<()> {
        match self.task.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(format!("shard writer panicked: {e}"))),
        }
    }
}

/// Writers for one segment; aborting deletes whatever they wrote.
struct SegmentWriters {
    id: DataId,
    writers: Vec<DiskWriter>,
}

impl SegmentWriters {
    /// Starts the writers of a segment of at least `size` bytes (the real size where known, for the headers:
    /// `exact`).
    fn start(engine: &Engine, target: &WriteTarget, rotation: u8, size: u64, exact: bool) -> Self {
        let id = DataId::random();
        let block_size = engine.settings().block_size;
        let layout = FrameLayout::for_segment(size, block_size as u64, engine.codec().geometry());
        let geometry = engine.codec().geometry();
        let n = geometry.total();
        let fsync = engine.settings().fsync;
        let writers = (0..n)
            .map(|slot| {
                let disk = engine.disk_for(rotation, slot);
                let header = ShardHeader {
                    data_id: id,
                    bucket: target.bucket.clone(),
                    key: target.key.clone(),
                    version_id: target.version_id.clone(),
                    part: target.part,
                    upload_id: target.upload_id.clone(),
                    shard_index: slot as u8,
                    geometry,
                    block_size: block_size as u32,
                    size: if exact { size } else { 0 },
                }
                .encode(layout);
                DiskWriter::spawn(disk, id, false, header, layout, fsync)
            })
            .collect();
        Self { id, writers }
    }

    /// Adds one block's shards and their hashes ([`crate::erasure::Codec::encode_hashed`]), sending every
    /// [`BATCH`] blocks.
    async fn send(&mut self, (shards, hashes): (Vec<Bytes>, Vec<[u8; 32]>)) {
        for ((w, shard), hash) in self.writers.iter_mut().zip(shards).zip(hashes) {
            w.batch.push((hash, shard));
        }
        if self.writers[0].batch.len() >= BATCH {
            self.flush().await;
        }
    }

    /// Sends the gathered frames; a writer that died is dropped from the set.
    async fn flush(&mut self) {
        let sends = self.writers.iter_mut().map(|w| {
            let batch = std::mem::replace(&mut w.batch, Vec::with_capacity(BATCH));
            async move {
                if !batch.is_empty() {
                    w.send_now(batch).await;
                }
            }
        });
        futures_util::future::join_all(sends).await;
    }

    /// Closes the writers and waits for them; Ok with the disks that made their shard durable. Every writer is
    /// told at once, so the shards' tail writes and syncs run side by side rather than one disk after another.
    async fn finish(mut self, quorum: usize) -> Result<(DataId, Vec<Arc<dyn Disk>>)> {
        self.flush().await;
        let all: Vec<Arc<dyn Disk>> = self.writers.iter().map(|w| w.disk.clone()).collect();
        let outcomes =
            futures_util::future::join_all(self.writers.into_iter().map(DiskWriter::finish)).await;
        let mut good = Vec::new();
        for (disk, outcome) in all.iter().zip(outcomes) {
            match outcome {
                Ok(()) => good.push(disk.clone()),
                Err(e) => tracing::warn!(disk = disk.index(), error = %e, "shard write failed"),
            }
        }
        if good.len() < quorum {
            remove_everywhere(all, self.id);
            return Err(Error::QuorumLost {
                needed: quorum,
                available: good.len(),
            });
        }
        Ok((self.id, all))
    }

    fn abort(self) {
        let disks: Vec<_> = self.writers.iter().map(|w| w.disk.clone()).collect();
        let id = self.id;
        let writers = self.writers;
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                for w in writers {
                    w.abandon().await;
                }
                remove_everywhere(disks, id);
            });
        }
    }
}

/// Streams `body` to disks. `expected_len` (Content-Length) is enforced; `max_len` caps the body.
pub(crate) async fn write_body(
    engine: &Engine,
    target: &WriteTarget,
    mut body: BodyStream,
    expected_len: Option<u64>,
    max_len: u64,
    algorithm: Option<ChecksumAlgorithm>,
    allow_inline: bool,
) -> Result<Staged> {
    let settings = engine.settings();
    let block_size = settings.block_size;
    let rotation = engine.rotation_for(&target.bucket, &target.key);
    let mut hasher = ChecksumHasher::new(algorithm);
    let mut md5 = Md5Stream::new();
    let first_cap = expected_len.map_or(block_size, |l| (l as usize).min(block_size));
    let mut block = AlignedBuf::with_capacity(first_cap.max(1));
    let mut writers: Option<SegmentWriters> = None;
    let result: Result<()> = async {
        while let Some(chunk) = body.next().await {
            let mut chunk = chunk.map_err(Error::Body)?;
            if hasher.len() + chunk.len() as u64 > max_len {
                return Err(Error::EntityTooLarge);
            }
            if let Some(expected) = expected_len
                && hasher.len() + chunk.len() as u64 > expected
            {
                return Err(Error::Body("body longer than Content-Length".into()));
            }
            hasher.update(&chunk);
            while !chunk.is_empty() {
                if block.capacity() == 0 {
                    // Taken only once bytes of a next block arrive: a body that ends on a block boundary takes
                    // no buffer it will not fill.
                    block = AlignedBuf::with_capacity(block_size);
                }
                let take = (block_size - block.len()).min(chunk.len());
                block.extend_from_slice(&chunk[..take]);
                chunk.advance(take);
                if block.len() == block_size {
                    let w = writers.get_or_insert_with(|| match expected_len {
                        Some(len) => SegmentWriters::start(engine, target, rotation, len, true),
                        None => {
                            SegmentWriters::start(engine, target, rotation, hasher.len(), false)
                        }
                    });
                    let full = std::mem::take(&mut block).freeze();
                    // Hashed by the MD5 lanes while this task encodes and receives the next block.
                    md5.feed(full.clone()).await;
                    w.send(engine.codec().encode_hashed(full)?).await;
                }
            }
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        if let Some(w) = writers {
            w.abort();
        }
        return Err(e);
    }
    let total = hasher.len();
    if let Some(expected) = expected_len
        && total != expected
    {
        if let Some(w) = writers {
            w.abort();
        }
        return Err(Error::IncompleteBody {
            expected,
            got: total,
        });
    }
    let digests = hasher.finish(md5.finish(block.as_slice()).await);
    if allow_inline && writers.is_none() && (total as usize) <= settings.inline_threshold {
        let bytes = block.freeze();
        let data = ObjectData::Inline {
            data_id: DataId::ordered(),
            hash: *blake3::hash(&bytes).as_bytes(),
        };
        return Ok(Staged {
            data,
            inline: Some(bytes),
            digests,
            cleanup: None,
        });
    }
    let mut w = match writers {
        Some(w) => w,
        // Without Content-Length the header's size is only known now; shards carry the real one.
        None => SegmentWriters::start(engine, target, rotation, total, true),
    };
    if !block.is_empty() {
        w.send(engine.codec().encode_hashed(block.freeze())?).await;
    }
    let (data_id, disks) = w.finish(engine.write_quorum()).await?;
    let segment = Segment {
        data_id,
        size: total,
        geometry: engine.codec().geometry(),
        block_size: block_size as u32,
        rotation,
        part_number: target.part,
        md5: digests.md5,
        checksum: digests.checksum.as_ref().map(|(_, raw)| raw.clone()),
    };
    Ok(Staged {
        data: ObjectData::Segments(vec![segment]),
        inline: None,
        digests,
        cleanup: Some((disks, data_id)),
    })
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    use super::*;
    use crate::disk::{PortableDisk, ShardSink, ShardSource};

    /// Sinks in `finish` at the same moment, and the most seen at once.
    #[derive(Default)]
    struct Finishing {
        now: Mutex<(usize, usize)>,
        changed: Condvar,
    }

    /// A portable disk whose sinks, in `finish`, wait (up to a bound) for every other sink of the segment to
    /// be finishing too: writers told one after another never get there.
    struct Rendezvous {
        inner: PortableDisk,
        finishing: Arc<Finishing>,
        of: usize,
    }

    struct RendezvousSink {
        inner: Box<dyn ShardSink>,
        finishing: Arc<Finishing>,
        of: usize,
    }

    impl ShardSink for RendezvousSink {
        fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
            self.inner.write_all(buf)
        }

        fn finish(self: Box<Self>, fsync: bool) -> std::io::Result<()> {
            let f = &self.finishing;
            let mut now = f.now.lock().unwrap();
            now.0 += 1;
            now.1 = now.1.max(now.0);
            f.changed.notify_all();
            let (mut now, _) = f
                .changed
                .wait_timeout_while(now, Duration::from_secs(5), |n| n.1 < self.of)
                .unwrap();
            now.0 -= 1;
            drop(now);
            self.inner.finish(fsync)
        }
    }

    impl Disk for Rendezvous {
        fn index(&self) -> usize {
            self.inner.index()
        }
        fn root(&self) -> &Path {
            self.inner.root()
        }
        fn create_staged(&self, id: DataId, repair: bool) -> std::io::Result<Box<dyn ShardSink>> {
            Ok(Box::new(RendezvousSink {
                inner: self.inner.create_staged(id, repair)?,
                finishing: self.finishing.clone(),
                of: self.of,
            }))
        }
        fn publish(&self, id: DataId, repair: bool, fsync: bool) -> std::io::Result<()> {
            self.inner.publish(id, repair, fsync)
        }
        fn open(&self, id: DataId) -> std::io::Result<Box<dyn ShardSource>> {
            self.inner.open(id)
        }
        fn remove(&self, id: DataId) -> std::io::Result<()> {
            self.inner.remove(id)
        }
        fn staged(&self) -> std::io::Result<Vec<(DataId, bool)>> {
            self.inner.staged()
        }
        fn sweep_foreign(&self) -> std::io::Result<usize> {
            self.inner.sweep_foreign()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_segments_writers_finish_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let finishing = Arc::new(Finishing::default());
        let n = 6;
        let id = DataId::random();
        let writers = (0..n)
            .map(|i| {
                let disk: Arc<dyn Disk> = Arc::new(Rendezvous {
                    inner: PortableDisk::open(i, &dir.path().join(format!("d{i}"))).unwrap(),
                    finishing: finishing.clone(),
                    of: n,
                });
                DiskWriter::spawn(
                    disk,
                    id,
                    false,
                    b"header".to_vec(),
                    FrameLayout::Aligned,
                    true,
                )
            })
            .collect();
        let mut segment = SegmentWriters { id, writers };
        segment
            .send((
                vec![Bytes::from_static(b"shard"); n],
                vec![*blake3::hash(b"shard").as_bytes(); n],
            ))
            .await;
        let (_, disks) = segment.finish(n).await.unwrap();
        assert_eq!(disks.len(), n);
        assert_eq!(
            finishing.now.lock().unwrap().1,
            n,
            "every writer of the segment was finishing at once"
        );
        for i in 0..n {
            let staged = dir.path().join(format!("d{i}/tmp/{}", id.to_hex()));
            assert_eq!(
                std::fs::read(staged).unwrap(),
                [
                    &b"header"[..],
                    &crate::layout::hash_slot(blake3::hash(b"shard").as_bytes()),
                    b"shard"
                ]
                .concat()
            );
        }
    }
}
