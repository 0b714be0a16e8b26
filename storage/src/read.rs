//! The read path: stream a byte range of an object, block by block, from the first `k` shards that verify.
//!
//! Every shard block's BLAKE3 is checked; a block whose data shards are missing or corrupt is rebuilt from
//! parity, and the bad shard is queued for repair. A producer task reads ahead one block while the previous
//! one is being sent, so disk reads overlap the socket.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::buffers::AlignedBuf;
use crate::disk::{DataId, Disk, ShardSource};
use crate::engine::{BodyStream, Engine};
use crate::erasure::Codec;
use crate::error::{Error, Result};
use crate::layout::{BlockMap, FrameLayout, Frames, HASH_LEN, ShardHeader};
use crate::meta::{ObjectData, ObjectRecord, Segment};

/// Blocks read ahead of the consumer.
const READ_AHEAD: usize = 2;

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
    async fn read_shard(&self, slot: usize, block: u64) -> Option<Bytes> {
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
        let read = match shard.src.read_cached_at(buf.as_mut_slice(), offset) {
            Ok(true) => buf,
            Ok(false) => tokio::task::spawn_blocking(move || {
                shard
                    .src
                    .read_exact_at(buf.as_mut_slice(), offset)
                    .map(|()| buf)
            })
            .await
            .ok()?
            .ok()?,
            Err(_) => return None,
        };
        let (hash, data) = read.as_slice().split_at(HASH_LEN);
        if blake3::hash(data).as_bytes() != hash {
            tracing::warn!(slot, block, id = %self.segment.data_id.to_hex(), "shard block checksum mismatch");
            return None;
        }
        Some(read.freeze().slice(HASH_LEN..))
    }

    /// Returns block `i`'s object bytes (as slices of its data shards), reconstructing from parity when a data
    /// shard fails.
    pub(crate) async fn block(&mut self, i: u64) -> Result<Vec<Bytes>> {
        let k = usize::from(self.segment.geometry.data);
        let n = self.segment.geometry.total();
        let mut got: Vec<Option<Bytes>> = vec![None; n];
        let first: Vec<usize> = (0..k).collect();
        let reads =
            futures_util::future::join_all(first.iter().map(|&s| self.read_shard(s, i))).await;
        for (&slot, r) in first.iter().zip(reads) {
            got[slot] = r;
        }
        let mut tried = k;
        while got.iter().filter(|g| g.is_some()).count() < k && tried < n {
            let need = k - got.iter().filter(|g| g.is_some()).count();
            let next: Vec<usize> = (tried..n).take(need).collect();
            tried += next.len();
            let reads =
                futures_util::future::join_all(next.iter().map(|&s| self.read_shard(s, i))).await;
            for (&slot, r) in next.iter().zip(reads) {
                got[slot] = r;
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
        Ok(self.codec.pieces(&got, map.block_len(i)))
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
            futures_util::future::join_all((0..n).map(|s| self.read_shard(s, block))).await;
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
    let (tx, mut rx) = mpsc::channel::<Result<Vec<Bytes>>>(READ_AHEAD);
    tokio::spawn(async move {
        if let Err(e) = produce(&engine, &bucket, &key, &record, start, end, &tx).await {
            tracing::error!(bucket, key, error = %e, "read failed mid-stream");
            let _ = tx.send(Err(e)).await;
        }
    });
    let mut ready = std::collections::VecDeque::new();
    Box::pin(futures_util::stream::poll_fn(move |cx| {
        loop {
            if let Some(b) = ready.pop_front() {
                return std::task::Poll::Ready(Some(Ok(b)));
            }
            match std::task::ready!(rx.poll_recv(cx)) {
                Some(Ok(pieces)) => ready.extend(pieces),
                Some(Err(e)) => {
                    return std::task::Poll::Ready(Some(
                        Err(Box::new(e) as crate::error::BoxError),
                    ));
                }
                None => return std::task::Poll::Ready(None),
            }
        }
    }))
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

async fn produce(
    engine: &Arc<Engine>,
    bucket: &str,
    key: &str,
    record: &ObjectRecord,
    start: u64,
    end: u64,
    tx: &mpsc::Sender<Result<Vec<Bytes>>>,
) -> Result<()> {
    if record.size == 0 || start > end {
        return Ok(());
    }
    match &record.data {
        ObjectData::DeleteMarker => Ok(()),
        ObjectData::Inline { data_id, hash } => {
            let bytes = engine.read_inline(*data_id, record.size, hash).await?;
            let _ = tx
                .send(Ok(vec![bytes.slice(start as usize..=end as usize)]))
                .await;
            Ok(())
        }
        ObjectData::Segments(segments) => {
            let mut seg_start = 0u64;
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
                for b in from / bs..=to / bs {
                    let pieces = reader.block(b).await?;
                    let b0 = b * bs;
                    let wanted = slice_pieces(pieces, from.max(b0) - b0, to.min(b0 + bs - 1) - b0);
                    if tx.send(Ok(wanted)).await.is_err() {
                        break; // client went away
                    }
                }
                if reader.needs_repair() {
                    engine.queue_repair(bucket, key, seg.data_id);
                }
                seg_start = seg_end;
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::slice_pieces;
    use bytes::Bytes;

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
