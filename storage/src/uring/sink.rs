//! The io_uring shard sink: the portable sink's aligned `O_DIRECT` buffers, but written by a ring of the sink's
//! own ([`LocalRing`], on the writing thread) while the writer goes on filling the next buffer.
//!
//! `write_all` hands a full buffer to the ring and carries on with a spare one; it waits only when all
//! [`BUFFERS`] are with the device. `write_frames` hands full shards to the ring where they are, as one
//! `IORING_OP_WRITEV` per message of frames that owns them until it completes (`disk::gather_in_place`), and
//! waits for the write before to finish first ([`GATHERED_IN_FLIGHT`]); at most `BUFFERS` writes of either
//! kind are in flight. The file is allocated ahead of the writes so the ring can start them
//! without a worker thread. `finish` sends the tail write, the truncation back to the real length (the tail
//! goes out padded to the alignment, and the allocation may reach further), the `fdatasync` of the file (all three linked, so each runs
//! only after the one before succeeded) and the `fsync` of the staging directory, in one submission.
//! Anything the fast path cannot do (a file system refusing `O_DIRECT` writes, a short write, a kernel
//! without `IORING_OP_FTRUNCATE`) is finished with plain system calls, as the portable sink does.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use super::ring::{LocalRing, Op, Supported, Ticket};
use crate::disk::{
    DIRECT_ALIGN, Frame, Gathered, InPlaceSink, PortableDisk, SINK_BUFFER, ShardSink,
    fill_sink_buffer, sink_buffer, write_all_vectored_at, write_frames_in_place,
};
use crate::layout::FrameLayout;

/// Buffers per sink: one filling while the other is written (a third would add a buffer per disk per upload
/// for writes that already keep up: the writer waits for the device rarely).
const BUFFERS: usize = 2;

/// Gathered writes (shards in place, about 1 MiB each) a sink has with the device at once. One, as the portable
/// sink's `pwritev` has: the writer still goes on to its next message while the write runs, and a second in
/// flight only deepened the device's queue, to up to 96 writes on a 64 MiB PUT at c8 across 48 files, against
/// 48 for the portable backend. Measured on 64 MiB PUTs at c8 with 4+2 (`storage.io = "uring"`, alternated
/// pairs): server CPU per GiB 0.95 of two in flight (lower in 7 of 8 pairs), ops/s 1.01; against the portable
/// backend, ops/s went from 0.95 (6 pairs) to 1.00 (5 pairs).
const GATHERED_IN_FLIGHT: usize = 1;

/// How far ahead of the writes a sink allocates its file (`fallocate`, which also moves the file's size):
/// an `O_DIRECT` write into allocated space inside the size needs no worker thread (see [`Op::Write`]).
const PREALLOCATE: u64 = 4 * SINK_BUFFER as u64;

/// A write handed to the ring.
struct InFlight {
    ticket: Ticket,
    offset: u64,
    len: usize,
}

/// A staged shard file written through a ring of its own ([`LocalRing`]).
pub(super) struct UringSink {
    ring: LocalRing,
    supported: Supported,
    file: Arc<File>,
    path: PathBuf,
    /// The staging directory, kept open by the disk so its `fsync` needs no `open`.
    dir: Arc<File>,
    /// The buffer being filled: `SINK_BUFFER + DIRECT_ALIGN` bytes, aligned from `start`.
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    spare: Vec<Vec<u8>>,
    /// Buffers this sink has taken from the pool (filling, spare or with the ring).
    taken: usize,
    in_flight: VecDeque<InFlight>,
    /// Bytes handed to the ring so far (a multiple of `DIRECT_ALIGN` while `direct`).
    written: u64,
    direct: bool,
    /// Whether full shards are written from where they are (`disk::gather_in_place`).
    in_place: bool,
    /// Bytes allocated from the start of the file by `fallocate`; 0 where the file system refuses it.
    allocated: u64,
    /// False once `fallocate` was refused: the sink then extends the file as it writes.
    preallocate: bool,
}

impl UringSink {
    /// Creates the staged file at `path`, with `ring`, made on the calling thread, which writes and finishes
    /// the sink: the sink is not `Send`, since only that thread may wait on the ring.
    pub(super) fn create(
        ring: LocalRing,
        supported: Supported,
        disk: &PortableDisk,
        path: PathBuf,
        dir: Arc<File>,
    ) -> io::Result<Self> {
        let (file, direct) = crate::disk::create_staged_file(&path)?;
        let in_place = disk.in_place(&file, direct);
        let (buf, start) = sink_buffer();
        Ok(Self {
            ring,
            supported,
            file: Arc::new(file),
            path,
            dir,
            buf,
            start,
            filled: 0,
            spare: Vec::new(),
            taken: 1,
            in_flight: VecDeque::new(),
            written: 0,
            direct,
            in_place,
            allocated: 0,
            preallocate: direct,
        })
    }

    /// Allocates the file up to at least `end` (and `PREALLOCATE` beyond) unless already done; whether
    /// `..end` is now allocated. The size this gives the file is cut back by `finish`.
    fn allocate_to(&mut self, end: u64) -> bool {
        if end <= self.allocated {
            return true;
        }
        if !self.preallocate {
            return false;
        }
        let to = end + PREALLOCATE;
        // SAFETY: fallocate on a file descriptor this sink owns, with in-range arguments.
        let r = unsafe {
            libc::fallocate(
                std::os::fd::AsRawFd::as_raw_fd(&*self.file),
                0,
                self.allocated as libc::off_t,
                (to - self.allocated) as libc::off_t,
            )
        };
        if r == 0 {
            self.allocated = to;
            true
        } else {
            // EOPNOTSUPP (no fallocate on this file system), ENOSPC...: a write that needs the space fails
            // with its own error. A refusal part-way may still have moved the size (ext4 allocates in
            // steps): count it, so `finish` cuts the file back whatever happened.
            self.preallocate = false;
            if let Ok(m) = self.file.metadata() {
                self.allocated = self.allocated.max(m.len());
            }
            false
        }
    }

    /// A buffer to fill next, waiting for the device if none is free.
    fn next_buffer(&mut self) -> io::Result<Vec<u8>> {
        Ok(match self.spare.pop() {
            Some(b) => b,
            None if self.taken < BUFFERS => {
                self.taken += 1;
                sink_buffer().0
            }
            None => {
                // Every other buffer is with a write in flight (a gathered write holds none of them).
                while self.spare.is_empty() && !self.in_flight.is_empty() {
                    self.reap_oldest()?;
                }
                match self.spare.pop() {
                    Some(b) => b,
                    None => {
                        self.taken += 1;
                        sink_buffer().0
                    }
                }
            }
        })
    }

    /// Hands the full buffer to the ring and takes the next one, waiting for the device if none is free.
    fn send_full(&mut self) -> io::Result<()> {
        while self.in_flight.len() >= BUFFERS {
            self.reap_oldest()?;
        }
        let next = self.next_buffer()?;
        let buf = std::mem::replace(&mut self.buf, next);
        let in_place = self.allocate_to(self.written + SINK_BUFFER as u64);
        let op = Op::Write {
            file: self.file.clone(),
            buf,
            start: self.start,
            len: SINK_BUFFER as u32,
            offset: self.written,
            in_place,
        };
        self.start = self.buf.as_ptr().align_offset(DIRECT_ALIGN);
        match self.ring.submit(vec![op], 1) {
            Ok(ticket) => self.in_flight.push_back(InFlight {
                ticket,
                offset: self.written,
                len: SINK_BUFFER,
            }),
            Err((e, ops)) => {
                tracing::debug!(error = %e, "shard write not through io_uring");
                let Some(Op::Write { buf, start, .. }) = ops.into_iter().next() else {
                    unreachable!("one write was submitted");
                };
                let r = self.write_plain(&buf[start..start + SINK_BUFFER], self.written);
                self.spare.push(buf);
                r?;
            }
        }
        self.written += SINK_BUFFER as u64;
        self.filled = 0;
        Ok(())
    }

    /// Writes gathered frames (shards in place) through the ring; the buffer is empty after. It waits until
    /// fewer than [`GATHERED_IN_FLIGHT`] writes of either kind are with the device.
    fn send_gathered(&mut self, gathered: Gathered) -> io::Result<()> {
        let len = gathered.len;
        let offset = self.written;
        if !self.supported.writev {
            self.write_plain_vectored(&gathered, offset)?;
        } else {
            while self.in_flight.len() >= GATHERED_IN_FLIGHT {
                self.reap_oldest()?;
            }
            let in_place = self.allocate_to(offset + len as u64);
            let op = Op::writev(self.file.clone(), gathered, offset, in_place);
            match self.ring.submit(vec![op], 1) {
                Ok(ticket) => self.in_flight.push_back(InFlight {
                    ticket,
                    offset,
                    len,
                }),
                Err((e, ops)) => {
                    tracing::debug!(error = %e, "shard write not through io_uring");
                    let Some(Op::Writev(write)) = ops.into_iter().next() else {
                        unreachable!("one write was submitted");
                    };
                    self.write_plain_vectored(&write.into_gathered(), offset)?;
                }
            }
        }
        self.written += len as u64;
        self.filled = 0;
        Ok(())
    }

    /// Waits for the oldest write, finishing it with plain system calls if the ring could not do it all.
    fn reap_oldest(&mut self) -> io::Result<()> {
        let Some(w) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let done = self.ring.wait(w.ticket)?;
        let result = done.result(0);
        match done.ops.into_iter().next() {
            Some(Op::Write {
                file, buf, start, ..
            }) => {
                let direct = self.issued_direct(&file);
                let outcome = match result {
                    Ok(n) if n as usize == w.len => Ok(()),
                    Ok(n) => {
                        let n = n as usize;
                        self.write_plain(&buf[start + n..start + w.len], w.offset + n as u64)
                    }
                    Err(e) => {
                        self.write_after_error(e, direct, &buf[start..start + w.len], w.offset)
                    }
                };
                self.spare.push(buf);
                outcome
            }
            Some(Op::Writev(write)) => {
                let direct = self.issued_direct(write.file());
                let gathered = write.into_gathered();
                match result {
                    Ok(n) if n as usize == w.len => Ok(()),
                    Ok(n) => {
                        let mut slices = gathered.slices();
                        let mut rest = &mut slices[..];
                        IoSlice::advance_slices(&mut rest, n as usize);
                        match write_all_vectored_at(&self.file, rest, w.offset + u64::from(n)) {
                            Err(e) => {
                                let direct = self.direct;
                                self.write_vectored_after_error(e, direct, &gathered, w.offset)
                            }
                            ok => ok,
                        }
                    }
                    Err(e) => self.write_vectored_after_error(e, direct, &gathered, w.offset),
                }
            }
            _ => unreachable!("a write request holds one write"),
        }
    }

    /// Whether a write issued on `file` went out `O_DIRECT`: the sink's file is reopened buffered at most
    /// once, so a write on any other file than the current one was issued on the direct one.
    fn issued_direct(&self, file: &Arc<File>) -> bool {
        !Arc::ptr_eq(file, &self.file) || self.direct
    }

    /// After a failed write issued `direct` or not: `Ok` when the caller should write again with a plain call.
    /// That is when the file system refused `O_DIRECT` (carry on through the page cache, reopening the file
    /// unless an earlier refusal did), and when the ring gave up on a write that did not happen (EAGAIN from a
    /// non-blocking attempt that some kernels hand back instead of retrying, or EINTR); any other error is
    /// the write's.
    fn refused_direct(&mut self, e: io::Error, direct: bool) -> io::Result<()> {
        if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EINTR)) {
            return Ok(());
        }
        if !(direct && e.raw_os_error() == Some(libc::EINVAL)) {
            return Err(e);
        }
        if self.direct {
            tracing::debug!(path = %self.path.display(), "O_DIRECT write refused; writing buffered");
            self.file = Arc::new(OpenOptions::new().write(true).open(&self.path)?);
            self.direct = false;
            self.in_place = false;
        }
        Ok(())
    }

    /// A write failed: if the file system refused `O_DIRECT`, carry on through the page cache.
    fn write_after_error(
        &mut self,
        e: io::Error,
        direct: bool,
        chunk: &[u8],
        offset: u64,
    ) -> io::Result<()> {
        self.refused_direct(e, direct)?;
        self.file.write_all_at(chunk, offset)
    }

    /// [`Self::write_after_error`] for gathered frames, written whole again (positional writes: what went out
    /// before the error is written again, the same).
    fn write_vectored_after_error(
        &mut self,
        e: io::Error,
        direct: bool,
        gathered: &Gathered,
        offset: u64,
    ) -> io::Result<()> {
        self.refused_direct(e, direct)?;
        write_all_vectored_at(&self.file, &mut gathered.slices(), offset)
    }

    fn write_plain(&mut self, chunk: &[u8], offset: u64) -> io::Result<()> {
        match self.file.write_all_at(chunk, offset) {
            Err(e) => {
                let direct = self.direct;
                self.write_after_error(e, direct, chunk, offset)
            }
            ok => ok,
        }
    }

    fn write_plain_vectored(&mut self, gathered: &Gathered, offset: u64) -> io::Result<()> {
        match write_all_vectored_at(&self.file, &mut gathered.slices(), offset) {
            Err(e) => {
                let direct = self.direct;
                self.write_vectored_after_error(e, direct, gathered, offset)
            }
            ok => ok,
        }
    }

    /// The tail write, truncation and syncs in one submission; `Ok(false)` when the fast path did not
    /// complete and the plain path must finish the job.
    fn finish_on_ring(&mut self, out: usize, len: u64, fsync: bool) -> io::Result<bool> {
        let mut ops = Vec::with_capacity(4);
        if out > 0 {
            let buf = std::mem::take(&mut self.buf);
            ops.push(Op::Write {
                file: self.file.clone(),
                buf,
                start: self.start,
                len: out as u32,
                offset: self.written,
                in_place: self.written + out as u64 <= self.allocated,
            });
        }
        if self.written + out as u64 != len || self.allocated > len {
            ops.push(Op::Ftruncate {
                file: self.file.clone(),
                len,
            });
        }
        if fsync {
            ops.push(Op::Fsync {
                file: self.file.clone(),
                data_only: true,
            });
        }
        let chain = ops.len();
        if chain == 0 {
            return Ok(true);
        }
        if fsync {
            // Independent of the chain: the staging directory's entry for this file.
            ops.push(Op::Fsync {
                file: self.dir.clone(),
                data_only: false,
            });
        }
        let done = match self.ring.submit(ops, chain) {
            Ok(ticket) => self.ring.wait(ticket)?,
            Err((e, ops)) => {
                tracing::debug!(error = %e, "shard sink finished without io_uring");
                if let Some(Op::Write { buf, .. }) = ops.into_iter().next() {
                    self.buf = buf;
                }
                return Ok(false);
            }
        };
        let results: Vec<io::Result<u32>> =
            (0..done.results.len()).map(|i| done.result(i)).collect();
        if let Some(Op::Write { buf, .. }) = done.ops.into_iter().next() {
            self.buf = buf;
        }
        let tail_ok = out == 0 || matches!(results[0], Ok(n) if n as usize == out);
        if !tail_ok {
            return Ok(false);
        }
        for r in results {
            match r {
                Ok(_) => {}
                // The chain stopped early: only a refused O_DIRECT tail leads here, handled by the plain path.
                Err(e) if e.raw_os_error() == Some(libc::ECANCELED) => return Ok(false),
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// The portable sink's ending, with plain system calls.
    fn finish_plain(&mut self, out: usize, len: u64, fsync: bool) -> io::Result<()> {
        if out > 0 {
            let buf = std::mem::take(&mut self.buf);
            let r = self.write_plain(&buf[self.start..self.start + out], self.written);
            self.buf = buf;
            r?;
        }
        if self.file.metadata()?.len() != len {
            self.file.set_len(len)?;
        }
        if fsync {
            self.file.sync_data()?;
            self.dir.sync_all()?;
        }
        Ok(())
    }
}

impl InPlaceSink for UringSink {
    fn buffered_if_in_place(&self) -> Option<&[u8]> {
        self.in_place
            .then(|| &self.buf[self.start..self.start + self.filled])
    }

    fn write_gathered(&mut self, gathered: Gathered) -> io::Result<()> {
        self.send_gathered(gathered)
    }
}

impl ShardSink for UringSink {
    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if fill_sink_buffer(&mut self.buf, self.start, &mut self.filled, &mut data) {
                self.send_full()?;
            }
        }
        Ok(())
    }

    fn write_frames(&mut self, frames: Vec<Frame>, layout: FrameLayout) -> io::Result<()> {
        write_frames_in_place(self, frames, layout)
    }

    fn finish(mut self: Box<Self>, fsync: bool) -> io::Result<()> {
        while !self.in_flight.is_empty() {
            self.reap_oldest()?;
        }
        let len = self.written + self.filled as u64;
        let mut out = self.filled;
        if self.direct && out > 0 {
            // The tail goes out padded to the alignment and the file is cut back to its length.
            out = self.filled.next_multiple_of(DIRECT_ALIGN);
            let at = self.start + self.filled;
            self.buf[at..self.start + out].fill(0);
        }
        let needs_truncate = self.written + out as u64 != len || self.allocated > len;
        if !needs_truncate || self.supported.ftruncate {
            // A refused O_DIRECT tail write falls through to the plain path, which reopens buffered.
            if self.finish_on_ring(out, len, fsync)? {
                return Ok(());
            }
        }
        self.finish_plain(out, len, fsync)
    }
}

impl Drop for UringSink {
    fn drop(&mut self) {
        // An abandoned sink may still have writes in the ring: wait for them and take their buffers back (any
        // the ring cannot vouch for stay with it, which leaks them when dropped).
        for w in std::mem::take(&mut self.in_flight) {
            if let Ok(done) = self.ring.wait(w.ticket) {
                for op in done.ops {
                    if let Op::Write { buf, .. } = op {
                        crate::buffers::give_back(buf);
                    }
                }
            }
        }
        crate::buffers::give_back(std::mem::take(&mut self.buf));
        for b in self.spare.drain(..) {
            crate::buffers::give_back(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use bytes::Bytes;

    use super::super::UringDisk;
    use super::super::ring::{LocalRing, refusals};
    use super::UringSink;
    use crate::disk::{DataId, Frame, SINK_BUFFER, ShardSink};
    use crate::layout::{FrameLayout, HASH_SLOT, hash_slot};

    fn pattern(len: usize, seed: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251 + seed) as u8).collect()
    }

    /// Writes a header, three full buffers, four frames and a tail through a sink of `disk`, then finishes
    /// it. Returns the bytes the staged file must hold, whether the frames went to the ring as one gathered
    /// write (where shards are written in place), and the outcome.
    fn write_a_shard(disk: &UringDisk, id: DataId) -> (Vec<u8>, bool, std::io::Result<()>) {
        let header = pattern(HASH_SLOT, 1);
        let body = pattern(3 * SINK_BUFFER, 2);
        let shards: Vec<Bytes> = (0..4)
            .map(|i| {
                let mut buf = crate::buffers::AlignedBuf::with_capacity(1 << 18);
                buf.extend_from_slice(&pattern(1 << 18, 3 + i));
                buf.freeze()
            })
            .collect();
        let frames: Vec<Frame> = shards
            .iter()
            .map(|s| (*blake3::hash(s).as_bytes(), s.clone()))
            .collect();
        let tail = pattern(12_345, 4);
        let mut expected = header.clone();
        expected.extend_from_slice(&body);
        for (hash, shard) in &frames {
            expected.extend_from_slice(&hash_slot(hash));
            expected.extend_from_slice(shard);
        }
        expected.extend_from_slice(&tail);
        let mut sink = UringSink::create(
            LocalRing::new().expect("this kernel allows io_uring"),
            disk.ring.supported(),
            &disk.portable,
            disk.portable.staged_path(id, false),
            disk.tmp_dir.clone(),
        )
        .unwrap();
        let gathered = sink.in_place && sink.supported.writev;
        let outcome = (|| {
            sink.write_all(&header)?;
            sink.write_all(&body)?;
            sink.write_frames(frames, FrameLayout::Aligned)?;
            sink.write_all(&tail)?;
            Box::new(sink).finish(true)
        })();
        (expected, gathered, outcome)
    }

    #[test]
    fn writes_the_ring_gives_up_on_are_written_again_and_other_failures_fail_the_shard() {
        let dir = tempfile::tempdir().unwrap();
        let disk = UringDisk::open(0, dir.path()).expect("this kernel allows io_uring");
        // EAGAIN (a non-blocking attempt some kernels hand back instead of retrying) and EINTR: the write did
        // not happen, and the sink writes it again with a plain call. Every write submitted is refused: the
        // three full buffers, the frames (one gathered write where shards go in place, a fourth buffer where
        // they are copied) and the tail's chain where the kernel can truncate through the ring.
        for errno in [libc::EAGAIN, libc::EINTR] {
            let id = DataId::random();
            refusals::refuse_writes(usize::MAX, errno);
            let (expected, gathered, outcome) = write_a_shard(&disk, id);
            outcome.unwrap();
            let refused = refusals::made();
            assert!(refused.writes >= 3, "{refused:?} (errno {errno})");
            assert_eq!(refused.gathered, usize::from(gathered), "errno {errno}");
            let staged = fs::read(disk.portable.staged_path(id, false)).unwrap();
            assert!(staged == expected, "content after errno {errno}");
        }
        // Any other error is the write's, and the shard fails.
        refusals::refuse_writes(1, libc::EIO);
        let (_, _, outcome) = write_a_shard(&disk, DataId::random());
        assert_eq!(refusals::made().writes, 1);
        assert_eq!(outcome.unwrap_err().raw_os_error(), Some(libc::EIO));
        refusals::refuse_writes(0, 0);
    }
}
