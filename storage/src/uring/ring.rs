//! The two ways this backend drives io_uring.
//!
//! [`Ring`]: one io_uring instance and the thread that drives it, for any caller: callers hand it batches of
//! operations over a channel and get every operation's result back when the last one has completed. The
//! thread owns the ring (so the ring is single-issuer and its completions run as deferred task work in that
//! thread only). It sleeps in `io_uring_enter` waiting for a completion; a read of an eventfd is kept armed in
//! the ring so that a caller queueing a request wakes it. Each time it wakes it takes every queued request
//! before one submission, so concurrent callers share system calls.
//!
//! [`LocalRing`]: a ring without a thread, for one owner on one thread (a shard sink), which submits and waits
//! itself.
//!
//! Memory safety rests on one rule: an [`Op`] owns everything the kernel touches, and the ring's owner keeps
//! the `Op` until that operation's completion has arrived (the thread never exits, and a `LocalRing` is never
//! dropped, while an operation is in flight; if it cannot wait, it leaks the operation instead).

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;

use io_uring::{IoUring, Probe, opcode, squeue, types};

/// Submission queue entries per disk ring ([`Ring`]). A disk has at most a few operations per concurrent
/// request in flight (a publication's rename and fsync, a removal's unlinks); the completion queue is twice
/// this and the kernel keeps overflowing completions (IORING_FEAT_NODROP) rather than dropping them.
const ENTRIES: u32 = 256;

/// `user_data` of the eventfd read that wakes the thread.
const WAKE: u64 = u64::MAX;

/// One operation for the ring, owning what the kernel reads or writes.
pub(super) enum Op {
    /// `pwrite` of `buf[start..start + len]` at `offset`.
    Write {
        file: Arc<File>,
        buf: Vec<u8>,
        start: usize,
        len: u32,
        offset: u64,
        /// Whether the range is already allocated inside the file's size (an `O_DIRECT` write the kernel
        /// can start without blocking, so the ring submits it itself rather than on a worker).
        in_place: bool,
    },
    /// `pwritev` of gathered pieces ([`GatheredWrite`], built only by [`Op::writev`]).
    Writev(GatheredWrite),
    /// `fdatasync` (or `fsync` when not `data_only`).
    Fsync { file: Arc<File>, data_only: bool },
    /// `ftruncate`.
    Ftruncate { file: Arc<File>, len: u64 },
    /// `renameat(AT_FDCWD, from, AT_FDCWD, to)`.
    Rename { from: CString, to: CString },
    /// `unlinkat(AT_FDCWD, path, 0)`.
    Unlink { path: CString },
}

/// A write's entry, sent to an io_uring worker at once unless it lands inside the file's allocated size:
/// ext4 refuses a non-blocking O_DIRECT write that extends the file (EAGAIN) and io_uring then retries it
/// on a worker, so going to the worker at once saves the try.
fn async_unless_in_place(write: squeue::Entry, in_place: bool) -> squeue::Entry {
    if in_place {
        write
    } else {
        write.flags(squeue::Flags::ASYNC)
    }
}

/// A `pwritev` of `gathered`'s pieces at `offset`. Its fields are private to this module so that the iovecs
/// can only be the ones [`Op::writev`] made from the same `gathered` (heap memory the write owns, which stays
/// put while the write moves): safe code elsewhere cannot pair them with other memory and submit that.
pub(super) struct GatheredWrite {
    file: Arc<File>,
    gathered: crate::disk::Gathered,
    iovecs: Iovecs,
    offset: u64,
    /// As for [`Op::Write`].
    in_place: bool,
}

impl GatheredWrite {
    /// The file the write was issued on.
    pub(super) fn file(&self) -> &Arc<File> {
        &self.file
    }

    /// The pieces, once the write is done with (reaped, or refused before it was queued).
    pub(super) fn into_gathered(self) -> crate::disk::Gathered {
        self.gathered
    }
}

/// The iovec array of a [`GatheredWrite`].
struct Iovecs(Vec<libc::iovec>);

// SAFETY: the pointers lead into the `gathered` of the same `GatheredWrite`, heap memory that goes with
// the write to whichever thread holds it; nothing reaches that memory through them but the kernel's write.
unsafe impl Send for Iovecs {}

impl Op {
    /// A `pwritev` of `gathered` at `offset` on `file`; `in_place` as for [`Op::Write`].
    pub(super) fn writev(
        file: Arc<File>,
        gathered: crate::disk::Gathered,
        offset: u64,
        in_place: bool,
    ) -> Self {
        let iovecs = gathered
            .slices()
            .iter()
            .map(|s| libc::iovec {
                iov_base: s.as_ptr() as *mut libc::c_void,
                iov_len: s.len(),
            })
            .collect();
        Op::Writev(GatheredWrite {
            file,
            gathered,
            iovecs: Iovecs(iovecs),
            offset,
            in_place,
        })
    }

    fn entry(&self) -> squeue::Entry {
        let cwd = types::Fd(libc::AT_FDCWD);
        match self {
            Op::Write {
                file,
                buf,
                start,
                len,
                offset,
                in_place,
            } => {
                let write = opcode::Write::new(
                    types::Fd(file.as_raw_fd()),
                    buf[*start..*start + *len as usize].as_ptr(),
                    *len,
                )
                .offset(*offset)
                .build();
                async_unless_in_place(write, *in_place)
            }
            Op::Writev(GatheredWrite {
                file,
                iovecs,
                offset,
                in_place,
                ..
            }) => {
                let write = opcode::Writev::new(
                    types::Fd(file.as_raw_fd()),
                    iovecs.0.as_ptr(),
                    iovecs.0.len() as u32,
                )
                .offset(*offset)
                .build();
                async_unless_in_place(write, *in_place)
            }
            Op::Fsync { file, data_only } => opcode::Fsync::new(types::Fd(file.as_raw_fd()))
                .flags(if *data_only {
                    types::FsyncFlags::DATASYNC
                } else {
                    types::FsyncFlags::empty()
                })
                .build(),
            Op::Ftruncate { file, len } => {
                opcode::Ftruncate::new(types::Fd(file.as_raw_fd()), *len).build()
            }
            Op::Rename { from, to } => {
                opcode::RenameAt::new(cwd, from.as_ptr(), cwd, to.as_ptr()).build()
            }
            Op::Unlink { path } => opcode::UnlinkAt::new(cwd, path.as_ptr()).build(),
        }
    }
}

/// Operations submitted together; the first `chain` of them run in order, each only if the one before
/// succeeded (IOSQE_IO_LINK), the rest independently.
struct Request {
    ops: Vec<Op>,
    chain: usize,
    reply: mpsc::SyncSender<Completed>,
}

/// A request's operations handed back (with their buffers) and their results: the byte count or descriptor,
/// or `-errno` (`-ECANCELED` for a chained operation skipped because an earlier one failed).
pub(super) struct Completed {
    pub(super) ops: Vec<Op>,
    pub(super) results: Vec<i32>,
}

impl Completed {
    /// The result of operation `i` as an `io::Result` of its non-negative value.
    pub(super) fn result(&self, i: usize) -> io::Result<u32> {
        let r = self.results[i];
        if r < 0 {
            Err(io::Error::from_raw_os_error(-r))
        } else {
            Ok(r as u32)
        }
    }
}

/// Which optional opcodes the kernel has (the probe at start); the rest are done with plain system calls.
#[derive(Debug, Clone, Copy)]
pub(super) struct Supported {
    pub(super) writev: bool,
    pub(super) ftruncate: bool,
    pub(super) rename: bool,
    pub(super) unlink: bool,
}

/// A ring and its thread. Dropping it stops the thread once every operation in flight has completed.
pub(super) struct Ring {
    tx: Option<mpsc::Sender<Request>>,
    wake: Arc<OwnedFd>,
    thread: Option<JoinHandle<()>>,
    supported: Supported,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("supported", &self.supported)
            .finish()
    }
}

impl Ring {
    /// Sets up a ring on a new thread named `name`. Fails when the kernel refuses io_uring (ENOSYS, EPERM
    /// under seccomp or `io_uring_disabled`) or lacks the write or fsync opcodes, or read (of the eventfd).
    pub(super) fn start(name: String) -> io::Result<Self> {
        // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we now own.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by eventfd and nothing else owns it.
        let wake = Arc::new(unsafe { OwnedFd::from_raw_fd(fd) });
        let (tx, rx) = mpsc::channel();
        let (ready_tx, ready_rx) = mpsc::sync_channel(1);
        let thread_wake = wake.clone();
        let thread = std::thread::Builder::new().name(name).spawn(move || {
            // The ring is built on its own thread: a single-issuer ring only accepts its creator's submissions.
            let ring = match setup() {
                Ok((ring, supported)) => {
                    let _ = ready_tx.send(Ok(supported));
                    ring
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let driver = Driver::new(ring, thread_wake.as_raw_fd());
            // Unwinding would drop the ring with operations in flight, whose buffers their owners may then
            // free while the kernel still writes into them: stop the process instead.
            let run = std::panic::AssertUnwindSafe(|| driver.run(&rx));
            if std::panic::catch_unwind(run).is_err() {
                std::process::abort();
            }
        })?;
        let supported = ready_rx
            .recv()
            .map_err(|_| io::Error::other("io_uring thread died during setup"))?;
        match supported {
            Ok(supported) => Ok(Self {
                tx: Some(tx),
                wake,
                thread: Some(thread),
                supported,
            }),
            Err(e) => {
                let _ = thread.join();
                Err(e)
            }
        }
    }

    pub(super) fn supported(&self) -> Supported {
        self.supported
    }

    /// Runs `ops` (the first `chain` linked in order) on the ring thread and waits for all of them.
    pub(super) fn run(&self, ops: Vec<Op>, chain: usize) -> io::Result<Completed> {
        let stopped = || io::Error::other("io_uring thread stopped");
        let (reply, rx) = mpsc::sync_channel(1);
        let tx = self.tx.as_ref().expect("sender lives until drop");
        tx.send(Request { ops, chain, reply })
            .map_err(|_| stopped())?;
        wake(self.wake.as_raw_fd());
        rx.recv().map_err(|_| stopped())
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        self.tx.take();
        wake(self.wake.as_raw_fd());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn wake(fd: RawFd) {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live local array to an eventfd we own. A failure (counter saturated)
    // means a wake-up is pending anyway.
    unsafe { libc::write(fd, one.as_ptr().cast(), one.len()) };
}

/// A ring of `entries` (completion queue twice that) for one issuing thread: single-issuer with deferred
/// task work, so completion work runs only when that thread asks for completions. Kernels before 6.1 refuse
/// these flags; a plain ring is as correct with one thread (completions then interrupt it as task work).
fn build_ring(entries: u32) -> io::Result<IoUring> {
    IoUring::builder()
        .setup_single_issuer()
        .setup_defer_taskrun()
        .setup_cqsize(entries * 2)
        .build(entries)
        .or_else(|_| IoUring::builder().setup_cqsize(entries * 2).build(entries))
}

fn setup() -> io::Result<(IoUring, Supported)> {
    let ring = build_ring(ENTRIES)?;
    let mut probe = Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    for (code, name) in [
        (opcode::Write::CODE, "write"),
        (opcode::Read::CODE, "read"),
        (opcode::Fsync::CODE, "fsync"),
    ] {
        if !probe.is_supported(code) {
            return Err(io::Error::new(
                io::ErrorKind::Unsupported,
                format!("io_uring lacks the {name} operation"),
            ));
        }
    }
    let supported = Supported {
        writev: probe.is_supported(opcode::Writev::CODE),
        ftruncate: probe.is_supported(opcode::Ftruncate::CODE),
        rename: probe.is_supported(opcode::RenameAt::CODE),
        unlink: probe.is_supported(opcode::UnlinkAt::CODE),
    };
    Ok((ring, supported))
}

/// A request whose operations are in the ring.
struct InFlight {
    ops: Vec<Op>,
    results: Vec<i32>,
    left: usize,
    reply: mpsc::SyncSender<Completed>,
}

/// The loop of the ring thread.
struct Driver {
    ring: IoUring,
    wake_fd: RawFd,
    /// Where the armed eventfd read puts the counter; lives as long as the driver, which outlasts the read.
    wake_buf: Box<u64>,
    wake_armed: bool,
    slots: Vec<Option<InFlight>>,
    free: Vec<usize>,
    in_flight: usize,
    /// Requests taken from the channel that did not fit in the submission queue yet.
    backlog: VecDeque<Request>,
}

impl Driver {
    fn new(ring: IoUring, wake_fd: RawFd) -> Self {
        Self {
            ring,
            wake_fd,
            wake_buf: Box::new(0),
            wake_armed: false,
            slots: Vec::new(),
            free: Vec::new(),
            in_flight: 0,
            backlog: VecDeque::new(),
        }
    }

    fn run(mut self, rx: &mpsc::Receiver<Request>) {
        let mut open = true;
        loop {
            if open && !self.wake_armed {
                self.arm_wake();
            }
            while open {
                match rx.try_recv() {
                    Ok(r) => self.backlog.push_back(r),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => open = false,
                }
            }
            self.push_backlog();
            if !open && self.in_flight == 0 && self.backlog.is_empty() {
                if !self.wake_armed {
                    return;
                }
                // The armed read must complete before its buffer may go away: feed it.
                wake(self.wake_fd);
            }
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR | libc::EBUSY)) => {}
                Err(e) => {
                    tracing::error!(error = %e, "io_uring submit failed; retrying");
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
            self.reap();
        }
    }

    fn arm_wake(&mut self) {
        let entry = opcode::Read::new(
            types::Fd(self.wake_fd),
            std::ptr::from_mut::<u64>(&mut *self.wake_buf).cast(),
            8,
        )
        .build()
        .user_data(WAKE);
        // SAFETY: the eventfd and `wake_buf` live as long as this driver, and `run` does not return while the
        // read is armed.
        if unsafe { self.ring.submission().push(&entry) }.is_ok() {
            self.wake_armed = true;
        }
    }

    /// Moves queued requests into the submission queue, submitting first when one does not fit.
    fn push_backlog(&mut self) {
        while let Some(req) = self.backlog.front() {
            let need = req.ops.len();
            if need > self.ring.params().sq_entries() as usize {
                let req = self.backlog.pop_front().expect("front exists");
                let results = vec![-libc::EINVAL; req.ops.len()];
                let _ = req.reply.send(Completed {
                    ops: req.ops,
                    results,
                });
                continue;
            }
            let room = {
                let sq = self.ring.submission();
                sq.capacity() - sq.len()
            };
            if room < need {
                match self.ring.submit() {
                    Ok(_) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) => return,
                    Err(_) => return,
                }
                let sq = self.ring.submission();
                if sq.capacity() - sq.len() < need {
                    return;
                }
            }
            let req = self.backlog.pop_front().expect("front exists");
            self.push(req);
        }
    }

    fn push(&mut self, req: Request) {
        if req.ops.is_empty() {
            let _ = req.reply.send(Completed {
                ops: Vec::new(),
                results: Vec::new(),
            });
            return;
        }
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let n = req.ops.len();
        // SAFETY: `req.ops` is kept in `slots` until every entry's completion is reaped. Room for all `n`
        // entries was checked by the caller.
        unsafe { push_entries(&mut self.ring, &req.ops, req.chain, slot) };
        self.in_flight += 1;
        self.slots[slot] = Some(InFlight {
            ops: req.ops,
            results: vec![0; n],
            left: n,
            reply: req.reply,
        });
    }

    fn reap(&mut self) {
        let done: Vec<(u64, i32)> = self
            .ring
            .completion()
            .map(|c| (c.user_data(), c.result()))
            .collect();
        for (user_data, result) in done {
            if user_data == WAKE {
                self.wake_armed = false;
                continue;
            }
            let (slot, i) = untag(user_data);
            let Some(entry) = self.slots.get_mut(slot).and_then(Option::as_mut) else {
                continue;
            };
            entry.results[i] = result;
            entry.left -= 1;
            if entry.left == 0 {
                let f = self.slots[slot].take().expect("slot in use");
                self.free.push(slot);
                self.in_flight -= 1;
                // The caller may have gone (its sink dropped); the buffers are then freed here.
                let _ = f.reply.send(Completed {
                    ops: f.ops,
                    results: f.results,
                });
            }
        }
    }
}

/// An entry's `user_data`: the request's slot, and the entry's index within the request.
fn tag(slot: usize, i: usize) -> u64 {
    ((slot as u64) << 16) | i as u64
}

/// The slot and index [`tag`] packed.
fn untag(user_data: u64) -> (usize, usize) {
    ((user_data >> 16) as usize, (user_data & 0xffff) as usize)
}

/// Puts `ops` into the submission queue, the first `chain` linked, tagged with `slot` and their index.
///
/// # Safety
/// Everything the entries point at (buffers, paths, files) is owned by `ops`, which the caller must keep alive
/// and in place until every entry's completion has been reaped; the queue must have room for all of them.
unsafe fn push_entries(ring: &mut IoUring, ops: &[Op], chain: usize, slot: usize) {
    let n = ops.len();
    let mut sq = ring.submission();
    for (i, op) in ops.iter().enumerate() {
        let mut entry = op.entry().user_data(tag(slot, i));
        if i + 1 < chain.min(n) {
            entry = entry.flags(squeue::Flags::IO_LINK);
        }
        // SAFETY: see the function's contract.
        let pushed = unsafe { sq.push(&entry) };
        // Checked in release builds too: an entry lost here would leave its waiter waiting for good.
        assert!(pushed.is_ok(), "room was checked");
    }
}

/// A ring without a thread, for one owner that submits to it and waits on it itself: a shard sink, on the
/// blocking-pool thread that writes its shard. The thread-driven [`Ring`] costs a hand-off each way per write
/// (an eventfd write to wake the ring thread, then a wake-up of the writer on completion); here a write is one
/// `io_uring_enter` (which issues an in-place `O_DIRECT` write itself and returns), and its completion is
/// picked up when the writer next needs the buffer back: usually already there, and otherwise the writer
/// sleeps in `io_uring_enter` until it is. The kernel runs completion work only when the owner asks for
/// completions (`IORING_SETUP_DEFER_TASKRUN`), so a completing write does not interrupt the writer.
///
/// The ring is single-issuer: only the thread that created it may submit to it or wait on it. A call from
/// another thread is refused before anything reaches the kernel ([`LocalRing::submit`] hands the operations
/// back to be done with plain system calls); dropping it elsewhere with operations in flight leaks their
/// buffers rather than free memory the kernel may still write.
pub(super) struct LocalRing {
    ring: IoUring,
    owner: std::thread::ThreadId,
    /// Requests in the ring, by slot (the high bits of `user_data`).
    slots: Vec<Option<Slot>>,
    /// Not `Send` or `Sync` (`IoUring` is both): the ring stays on the thread that may wait on it. The
    /// thread check in `submit` and `wait` remains as a second line.
    _one_thread: std::marker::PhantomData<*const ()>,
}

struct Slot {
    ops: Vec<Op>,
    results: Vec<i32>,
    left: usize,
}

/// A request submitted to a [`LocalRing`], to wait for with [`LocalRing::wait`].
#[must_use = "its buffers come back only through `LocalRing::wait`"]
pub(super) struct Ticket(usize);

/// Entries of a [`LocalRing`]: a sink has at most two writes in flight (`sink::BUFFERS`), or its tail
/// write, truncation and two syncs.
const LOCAL_ENTRIES: u32 = 8;

impl LocalRing {
    /// A ring for the calling thread (a plain one where the kernel, before 6.1, refuses the single-issuer
    /// setup). Fails when the kernel refuses io_uring, or is out of descriptors or memory for a ring.
    pub(super) fn new() -> io::Result<Self> {
        let ring = build_ring(LOCAL_ENTRIES)?;
        Ok(Self {
            ring,
            owner: std::thread::current().id(),
            slots: Vec::new(),
            _one_thread: std::marker::PhantomData,
        })
    }

    fn on_owner_thread(&self) -> bool {
        std::thread::current().id() == self.owner
    }

    /// Starts `ops` (the first `chain` linked in order) and returns without waiting. The operations come back
    /// untouched, with the reason, when they cannot go into the ring (called from another thread, or more
    /// operations than the ring holds at once).
    pub(super) fn submit(
        &mut self,
        ops: Vec<Op>,
        chain: usize,
    ) -> Result<Ticket, (io::Error, Vec<Op>)> {
        if !self.on_owner_thread() {
            return Err((
                io::Error::other("io_uring used from a thread other than its owner's"),
                ops,
            ));
        }
        let room = {
            let sq = self.ring.submission();
            sq.capacity() - sq.len()
        };
        let in_flight: usize = self.slots.iter().flatten().map(|s| s.left).sum();
        if ops.len() > room || in_flight + ops.len() > LOCAL_ENTRIES as usize {
            return Err((io::Error::other("io_uring queue full"), ops));
        }
        let slot = match self.slots.iter().position(Option::is_none) {
            Some(free) => free,
            None => {
                self.slots.push(None);
                self.slots.len() - 1
            }
        };
        #[cfg(test)]
        if let Some(errno) = refusals::take(&ops) {
            self.slots[slot] = Some(Slot {
                results: vec![-errno; ops.len()],
                left: 0,
                ops,
            });
            return Ok(Ticket(slot));
        }
        // SAFETY: `ops` moves into `slots[slot]` below and stays there until every one of its completions is
        // reaped (`wait`), or is leaked when that cannot be known (`Drop`); room was checked above.
        unsafe { push_entries(&mut self.ring, &ops, chain, slot) };
        let n = ops.len();
        self.slots[slot] = Some(Slot {
            results: vec![0; n],
            left: n,
            ops,
        });
        // Failing to enter is not failing the operations: they stay queued, and `wait` submits them.
        if let Err(e) = self.ring.submit() {
            tracing::debug!(error = %e, "io_uring submit deferred");
        }
        Ok(Ticket(slot))
    }

    /// Waits until every operation of `ticket` has completed and hands them back with their results.
    pub(super) fn wait(&mut self, ticket: Ticket) -> io::Result<Completed> {
        loop {
            match &self.slots[ticket.0] {
                Some(slot) if slot.left == 0 => break,
                Some(_) => {}
                None => unreachable!("a ticket's slot is in use until waited for"),
            }
            self.wait_for_completion()?;
        }
        let slot = self.slots[ticket.0].take().expect("checked above");
        Ok(Completed {
            ops: slot.ops,
            results: slot.results,
        })
    }

    /// Submits whatever is queued, waits for at least one completion and records every completion there is.
    fn wait_for_completion(&mut self) -> io::Result<()> {
        if !self.on_owner_thread() {
            return Err(io::Error::other(
                "io_uring waited on from a thread other than its owner's",
            ));
        }
        match self.ring.submit_and_wait(1) {
            Ok(_) => {}
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINTR)) => {}
            // Short of memory for the kernel's completion work, or completions overflowing: retry shortly.
            Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::EBUSY)) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            Err(e) => return Err(e),
        }
        for cqe in self.ring.completion() {
            let (slot, i) = untag(cqe.user_data());
            if let Some(Some(s)) = self.slots.get_mut(slot) {
                s.results[i] = cqe.result();
                s.left -= 1;
            }
        }
        Ok(())
    }
}

impl Drop for LocalRing {
    fn drop(&mut self) {
        // Operations still in the ring own memory the kernel may write: wait for them, or, if that cannot be
        // done (another thread, a failing ring), leak them rather than free it.
        while self.slots.iter().flatten().any(|s| s.left > 0) {
            if let Err(e) = self.wait_for_completion() {
                tracing::error!(error = %e, "io_uring operations abandoned in flight; leaking their buffers");
                for slot in self.slots.drain(..).flatten() {
                    if slot.left > 0 {
                        std::mem::forget(slot.ops);
                    }
                }
                return;
            }
        }
    }
}

/// Test-only: writes the ring gives up on without doing them, as a kernel may hand back EAGAIN from a
/// non-blocking attempt instead of retrying it, or a device fails them, to exercise what the sink does then.
#[cfg(test)]
pub(super) mod refusals {
    use std::cell::Cell;

    use super::Op;

    thread_local! {
        static NEXT: Cell<(usize, i32)> = const { Cell::new((0, 0)) };
        static MADE: Cell<Refused> = const { Cell::new(Refused { writes: 0, gathered: 0 }) };
    }

    /// Submissions refused since the last [`refuse_writes`], by the kind of their first operation.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(in crate::uring) struct Refused {
        pub(in crate::uring) writes: usize,
        pub(in crate::uring) gathered: usize,
    }

    /// The next `count` submissions on this thread that start with a write complete at once, untouched by
    /// the kernel, each of their operations with `-errno`.
    pub(in crate::uring) fn refuse_writes(count: usize, errno: i32) {
        NEXT.set((count, errno));
        MADE.set(Refused {
            writes: 0,
            gathered: 0,
        });
    }

    pub(in crate::uring) fn made() -> Refused {
        MADE.get()
    }

    pub(super) fn take(ops: &[Op]) -> Option<i32> {
        let (count, errno) = NEXT.get();
        if count == 0 {
            return None;
        }
        let mut made = MADE.get();
        match ops.first() {
            Some(Op::Write { .. }) => made.writes += 1,
            Some(Op::Writev(_)) => made.gathered += 1,
            _ => return None,
        }
        MADE.set(made);
        NEXT.set((count - 1, errno));
        Some(errno)
    }
}
