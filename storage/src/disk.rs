//! The `Disk` trait: where shard files live on one disk directory, and the portable backend over std::fs.
//!
//! Files are named only by random data ids (hex), never by bucket or key, so no key can reach a path
//! outside the disk. Layout of a disk root:
//!
//! ```text
//! strata.redb          metadata replica (see meta/); only on the first 2m + 1 disks of a larger set
//! strata.wal           that replica's write-ahead log (see meta/wal.rs)
//! format.json          which shard slot of the erasure set this disk is
//! tmp/<id>             shard files being written; rolled forward or swept at start
//! tmp/<id>.repair      a repair in progress; always swept at start
//! data/<id[..2]>/<id>  published shard files
//! ```
//!
//! Every method blocks; callers run them on the blocking pool so the disks work in parallel.

use std::collections::VecDeque;
use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use bytes::Bytes;

use crate::layout::{FrameLayout, HASH_LEN, HASH_SLOT, hash_slot};

/// A 128-bit random identifier of one stored data segment (the same id on every disk of the set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DataId(pub [u8; 16]);

impl DataId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// A fresh id that sorts after those made before it: microseconds since the epoch, then random bytes.
    ///
    /// For data kept in the metadata B-trees (inline objects): consecutive inserts then land in the same
    /// rightmost leaf instead of dirtying a random leaf and its branch path each. Shard files keep
    /// [`DataId::random`], whose first byte spreads them over the disks' fan-out directories.
    pub fn ordered() -> Self {
        let micros = chrono::Utc::now().timestamp_micros().max(0) as u64;
        let mut id = [0u8; 16];
        id[..8].copy_from_slice(&micros.to_be_bytes());
        id[8..].copy_from_slice(&rand::random::<[u8; 8]>());
        Self(id)
    }

    /// Lowercase hex form, used as the file name.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }

    /// Parses the hex form; `None` for anything else (so stray files are never mistaken for shards).
    pub fn from_hex(s: &str) -> Option<Self> {
        let mut out = [0u8; 16];
        hex::decode_to_slice(s, &mut out).ok()?;
        Some(Self(out))
    }
}

/// One block's frame for one disk: BLAKE3 of the shard, and the shard.
pub type Frame = ([u8; HASH_LEN], Bytes);

/// A shard file being written. Not `Send`: a sink is written and finished on the thread that created it
/// (the io_uring sink's ring belongs to that thread and can wait for its writes only there).
pub trait ShardSink {
    /// Appends bytes.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Appends block frames as `layout` lays them out: each block's hash slot, then its shard. The sinks of
    /// both backends write aligned shards from where they are when the device allows it
    /// ([`gather_in_place`]); this default copies them through `write_all`.
    fn write_frames(&mut self, frames: Vec<Frame>, layout: FrameLayout) -> io::Result<()> {
        for frame in frames {
            copy_frame(self, frame, layout)?;
        }
        Ok(())
    }
    /// Flushes and, if `fsync`, makes the file durable.
    fn finish(self: Box<Self>, fsync: bool) -> io::Result<()>;
}

/// A published shard file open for positional reads.
pub trait ShardSource: Send + Sync {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;

    /// Like [`ShardSource::read_exact_at`], but only if the bytes are all in the page cache: never waits for the
    /// disk. `Ok(false)` when they are not (or the kernel cannot tell), and the caller reads them the blocking
    /// way. This lets a reader on an async task skip the blocking-pool hand-off for cached data.
    fn read_cached_at(&self, _buf: &mut [u8], _offset: u64) -> io::Result<bool> {
        Ok(false)
    }
}

/// [`ShardSource::read_cached_at`] for a file: `preadv2(RWF_NOWAIT)` on Linux, which fails with `EAGAIN`
/// instead of starting disk I/O.
fn read_cached(file: &File, buf: &mut [u8], offset: u64) -> io::Result<bool> {
    #[cfg(target_os = "linux")]
    {
        use std::sync::atomic::{AtomicBool, Ordering};
        /// Cleared the first time the kernel or filesystem refuses `RWF_NOWAIT` on a buffered read.
        static SUPPORTED: AtomicBool = AtomicBool::new(true);
        if !SUPPORTED.load(Ordering::Relaxed) {
            return Ok(false);
        }
        let mut filled = 0;
        while filled < buf.len() {
            let mut slice = [io::IoSliceMut::new(&mut buf[filled..])];
            match rustix::io::preadv2(
                file,
                &mut slice,
                offset + filled as u64,
                rustix::io::ReadWriteFlags::NOWAIT,
            ) {
                Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => filled += n,
                Err(rustix::io::Errno::AGAIN) => return Ok(false),
                Err(rustix::io::Errno::INTR) => {}
                Err(
                    rustix::io::Errno::OPNOTSUPP
                    | rustix::io::Errno::INVAL
                    | rustix::io::Errno::NOSYS,
                ) => {
                    SUPPORTED.store(false, Ordering::Relaxed);
                    return Ok(false);
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(true)
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, buf, offset);
        Ok(false)
    }
}

/// One disk directory of the erasure set.
pub trait Disk: Send + Sync + 'static {
    /// Slot of this disk in the set (shard placement is relative to it).
    fn index(&self) -> usize;
    /// The disk's root directory.
    fn root(&self) -> &Path;
    /// Creates the staging file for a new shard (`tmp/<id>`), or a repair file (`tmp/<id>.repair`).
    fn create_staged(&self, id: DataId, repair: bool) -> io::Result<Box<dyn ShardSink>>;
    /// Moves a staged (or repair) file to its published place, replacing any previous file.
    fn publish(&self, id: DataId, repair: bool, fsync: bool) -> io::Result<()>;
    /// Opens a shard for reading: the published file, or the staged one if publication has not happened yet.
    fn open(&self, id: DataId) -> io::Result<Box<dyn ShardSource>>;
    /// Deletes a shard wherever it is; a missing file is not an error.
    fn remove(&self, id: DataId) -> io::Result<()>;
    /// Lists staging leftovers: `(id, is_repair)`.
    fn staged(&self) -> io::Result<Vec<(DataId, bool)>>;
    /// Removes a staging file that is not a valid id (foreign junk left in tmp/).
    fn sweep_foreign(&self) -> io::Result<usize>;
}

/// The portable backend: plain files through std::fs.
#[derive(Debug)]
pub struct PortableDisk {
    index: usize,
    root: PathBuf,
    /// Whether `O_DIRECT` writes on this disk take shards in place ([`direct_allows_in_place`]), learnt from
    /// the first staged file.
    in_place: OnceLock<bool>,
}

impl PortableDisk {
    /// Opens (creating the directories if needed) the disk at `root`.
    pub fn open(index: usize, root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root.join("tmp"))?;
        fs::create_dir_all(root.join("data"))?;
        Ok(Self {
            index,
            root: root.to_owned(),
            in_place: OnceLock::new(),
        })
    }

    /// Whether sinks of this disk may write shards in place, given a staged file just created (and whether
    /// it was opened `O_DIRECT`).
    pub(crate) fn in_place(&self, file: &File, direct: bool) -> bool {
        direct && *self.in_place.get_or_init(|| direct_allows_in_place(file))
    }

    pub(crate) fn staged_path(&self, id: DataId, repair: bool) -> PathBuf {
        let mut name = id.to_hex();
        if repair {
            name.push_str(".repair");
        }
        self.root.join("tmp").join(name)
    }

    pub(crate) fn data_path(&self, id: DataId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join("data").join(&hex[..2]).join(hex)
    }
}

/// Bytes a shard sink gathers before one write: about four shard frames of a 1 MiB block at 4+2 (256 KiB + 32
/// each). Each direct write pins pages and kicks the device once (a VM exit on virtio), so fewer, larger
/// writes cost less; 1 MiB per disk writer keeps memory per upload small.
pub(crate) const SINK_BUFFER: usize = 1024 * 1024;

/// What `O_DIRECT` needs aligned: buffer address, file offset and length (the page size covers every
/// common device's logical block size). Writes of shards in place need less, and are made only where the
/// device says so ([`direct_allows_in_place`]).
pub(crate) const DIRECT_ALIGN: usize = 4096;

/// Whether `O_DIRECT` writes to `file` may start at any multiple of [`HASH_SLOT`] in the file and in
/// memory, in pieces of such lengths, as writes of shards in place do ([`gather_in_place`]). `statx(STATX_DIOALIGN)` says (Linux 6.1 and later, on file systems that report it);
/// where it does not, shards are copied, as they always were.
pub(crate) fn direct_allows_in_place(file: &File) -> bool {
    use rustix::fs::{AtFlags, StatxFlags};
    let Ok(st) = rustix::fs::statx(file, "", AtFlags::EMPTY_PATH, StatxFlags::DIOALIGN) else {
        return false;
    };
    let fits = |align: u32| align != 0 && HASH_SLOT.is_multiple_of(align as usize);
    st.stx_mask & StatxFlags::DIOALIGN.bits() != 0
        && fits(st.stx_dio_mem_align)
        && fits(st.stx_dio_offset_align)
}

/// Most frames in one vectored write (a writer message, `write::BATCH`, holds four).
const MAX_FRAMES: usize = 32;

/// A piece of a vectored shard write.
enum Piece {
    /// `head[at..at + len]` of the [`Gathered`]: hash slots, the first with what the sink had buffered.
    Head { at: usize, len: usize },
    /// A whole shard, written from where it is.
    Shard(Bytes),
}

/// Frames gathered by [`gather_in_place`] for one vectored write of `len` bytes. It owns all the memory
/// the write reads, so an io_uring write can hold it until the kernel is done.
pub(crate) struct Gathered {
    /// The hash slots (and, before the first, what the sink had buffered) from `head_start`, which is
    /// aligned to [`HASH_SLOT`].
    head: Vec<u8>,
    head_start: usize,
    pieces: Vec<Piece>,
    pub(crate) len: usize,
}

impl Gathered {
    /// The pieces as slices, in file order.
    pub(crate) fn slices(&self) -> Vec<IoSlice<'_>> {
        self.pieces
            .iter()
            .map(|p| match p {
                Piece::Head { at, len } => {
                    let at = self.head_start + at;
                    IoSlice::new(&self.head[at..at + len])
                }
                Piece::Shard(shard) => IoSlice::new(shard),
            })
            .collect()
    }
}

/// Whether a shard can be written from where it is: a whole number of [`HASH_SLOT`]s at an address
/// aligned to one (the encoder's full shards; not a last block's, nor most rebuilt ones).
pub(crate) fn goes_in_place(shard: &Bytes) -> bool {
    !shard.is_empty()
        && shard.len().is_multiple_of(HASH_SLOT)
        && (shard.as_ptr() as usize).is_multiple_of(HASH_SLOT)
}

/// Takes frames from the front of `frames` for one write with their shards in place: the hash slots go
/// into a small buffer of the write's own, after whatever the sink has buffered (`buffered`, a whole
/// number of `HASH_SLOT`s: the header, or frames copied before), and each shard is written from its own
/// memory. The caller writes the pieces at the sink's `written` offset; its buffer is then empty. `None`
/// when the first frame cannot go this way ([`goes_in_place`]) or what is buffered would leave the
/// shards off alignment. Only for sinks whose device allows it ([`direct_allows_in_place`]).
///
/// Why: copying every shard into the sink's buffer cost about 8% of the server's CPU on 64 MiB PUTs
/// (1.5 GiB copied per GiB of object at 4+2). The encoder's block and parity buffers are aligned
/// (`buffers::AlignedBuf`) and the format puts each full shard at a multiple of `HASH_SLOT`, so the device
/// can read them where they are. The slots go in a buffer of their own, not the sink's 1 MiB one, so that
/// a write in flight holds about 24 KiB of buffer (four slots, the header, alignment) rather than a
/// megabyte; only where frames were copied before (a repair's rebuilt shards) does what was buffered make
/// it larger.
pub(crate) fn gather_in_place(buffered: &[u8], frames: &mut VecDeque<Frame>) -> Option<Gathered> {
    if !buffered.len().is_multiple_of(HASH_SLOT) {
        return None;
    }
    let n = frames
        .iter()
        .take(MAX_FRAMES)
        .take_while(|(_, shard)| goes_in_place(shard))
        .count();
    if n == 0 {
        return None;
    }
    let head_len = buffered.len() + n * HASH_SLOT;
    let mut head = vec![0u8; head_len + HASH_SLOT];
    let head_start = head.as_ptr().align_offset(HASH_SLOT);
    head[head_start..head_start + buffered.len()].copy_from_slice(buffered);
    let mut pieces = Vec::with_capacity(2 * n);
    let mut len = 0;
    let mut from = 0;
    let mut to = buffered.len();
    for (hash, shard) in frames.drain(..n) {
        to += HASH_SLOT;
        head[head_start + to - HASH_LEN..head_start + to].copy_from_slice(&hash);
        pieces.push(Piece::Head {
            at: from,
            len: to - from,
        });
        len += to - from + shard.len();
        from = to;
        pieces.push(Piece::Shard(shard));
    }
    Some(Gathered {
        head,
        head_start,
        pieces,
        len,
    })
}

/// A sink with an aligned buffer that can write shards in place (both backends' sinks).
pub(crate) trait InPlaceSink: ShardSink {
    /// What the sink has buffered and not yet written, if it writes shards in place (`None` if not).
    fn buffered_if_in_place(&self) -> Option<&[u8]>;
    /// Writes what [`gather_in_place`] gave at the end of the file; the buffer is empty after.
    fn write_gathered(&mut self, gathered: Gathered) -> io::Result<()>;
}

/// Appends one frame as `layout` lays it out, copied through `write_all`.
fn copy_frame<S: ShardSink + ?Sized>(
    sink: &mut S,
    (hash, shard): Frame,
    layout: FrameLayout,
) -> io::Result<()> {
    sink.write_all(layout.slot_of(&hash_slot(&hash)))?;
    sink.write_all(&shard)
}

/// [`ShardSink::write_frames`] for an [`InPlaceSink`]: in the aligned layout, shards in place where they can
/// go so, copied through the buffer where not, in order.
pub(crate) fn write_frames_in_place(
    sink: &mut impl InPlaceSink,
    frames: Vec<Frame>,
    layout: FrameLayout,
) -> io::Result<()> {
    let mut frames = VecDeque::from(frames);
    while !frames.is_empty() {
        if layout == FrameLayout::Aligned
            && let Some(gathered) = sink
                .buffered_if_in_place()
                .and_then(|buffered| gather_in_place(buffered, &mut frames))
        {
            sink.write_gathered(gathered)?;
            continue;
        }
        copy_frame(sink, frames.pop_front().expect("a frame left"), layout)?;
    }
    Ok(())
}

/// Writes every byte of `slices` at `offset` (`pwritev`, again after a short write).
pub(crate) fn write_all_vectored_at(
    file: &File,
    mut slices: &mut [IoSlice<'_>],
    mut offset: u64,
) -> io::Result<()> {
    IoSlice::advance_slices(&mut slices, 0);
    while !slices.is_empty() {
        match rustix::io::pwritev(file, slices, offset) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                offset += n as u64;
                IoSlice::advance_slices(&mut slices, n);
            }
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// A staged shard file written through an aligned buffer, with `O_DIRECT` where the file system allows it.
///
/// Why direct I/O: shard files are written once, fsynced, and not read back soon, so the page cache only
/// costs here. Buffered writes paid a copy into the page cache, per-page delayed allocation, and the
/// writeback at `fdatasync` (about 0.5 CPU-s per GiB of object on ext4, and `fdatasync` of buffered data
/// ran at a fifth of the device's direct-write rate). Full shards go to the device from where they are
/// ([`gather_in_place`]); the rest (header, a last block's shard, compact files) is copied into this sink's
/// buffer, as `BufWriter` would. Durability is unchanged: `finish` still `fdatasync`s the file (its size and
/// extents, and a device cache flush) and `fsync`s the directory.
struct FileSink {
    file: File,
    path: PathBuf,
    dir: PathBuf,
    /// `SINK_BUFFER + DIRECT_ALIGN` bytes, of which `buf[start..start + SINK_BUFFER]` is aligned.
    buf: Vec<u8>,
    start: usize,
    filled: usize,
    /// Bytes written to the file so far (a multiple of `DIRECT_ALIGN` while `direct`).
    written: u64,
    direct: bool,
    /// Whether full shards are written from where they are ([`gather_in_place`]).
    in_place: bool,
}

/// A sink buffer: `SINK_BUFFER + DIRECT_ALIGN` bytes, and where its aligned `SINK_BUFFER` start. Recycled
/// buffers are not zeroed (every byte written out is filled first, the tail's padding included): zeroing
/// 1 MiB for each of a segment's sink buffers was about 1% of the server's CPU on 64 MiB PUTs.
pub(crate) fn sink_buffer() -> (Vec<u8>, usize) {
    let buf = crate::buffers::take_len(SINK_BUFFER + DIRECT_ALIGN);
    let start = buf.as_ptr().align_offset(DIRECT_ALIGN);
    (buf, start)
}

/// Creates a staged shard file for writing, with `O_DIRECT` where the file system allows it; the flag says
/// whether it did.
///
/// The file is always a new inode: a file left at `path` (a repair that failed part-way and is tried again
/// under the same name) is unlinked first, never truncated and reused. A write of the abandoned attempt that
/// is still in flight (an io_uring operation leaked when its ring failed) then lands in the unlinked file, not
/// in the new one.
pub(crate) fn create_staged_file(path: &Path) -> io::Result<(File, bool)> {
    let open = |direct: bool| {
        let mut o = OpenOptions::new();
        o.write(true).create_new(true);
        if direct {
            o.custom_flags(libc::O_DIRECT);
        }
        o.open(path)
    };
    let open_new = |direct: bool| match open(direct) {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            fs::remove_file(path)?;
            open(direct)
        }
        r => r,
    };
    match open_new(true) {
        Ok(f) => Ok((f, true)),
        // tmpfs and some FUSE file systems refuse O_DIRECT: write through the page cache there.
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok((open_new(false)?, false)),
        Err(e) => Err(e),
    }
}

impl FileSink {
    fn create(disk: &PortableDisk, path: PathBuf, dir: PathBuf) -> io::Result<Self> {
        let (file, direct) = create_staged_file(&path)?;
        let in_place = disk.in_place(&file, direct);
        let (buf, start) = sink_buffer();
        Ok(Self {
            file,
            path,
            dir,
            buf,
            start,
            filled: 0,
            written: 0,
            direct,
            in_place,
        })
    }

    /// Writes the buffer's first `len` bytes (aligned as `written` says while `direct`) at `written`.
    fn write_out(&mut self, len: usize) -> io::Result<()> {
        let range = self.start..self.start + len;
        match self
            .file
            .write_all_at(&self.buf[range.clone()], self.written)
        {
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                self.reopen_buffered()?;
                self.file.write_all_at(&self.buf[range], self.written)?;
            }
            r => r?,
        }
        self.written += len as u64;
        Ok(())
    }

    /// Writes gathered frames (which hold what was buffered) at `written`; the buffer is empty after.
    fn write_gathered(&mut self, gathered: Gathered) -> io::Result<()> {
        match write_all_vectored_at(&self.file, &mut gathered.slices(), self.written) {
            Err(e) if self.direct && e.raw_os_error() == Some(libc::EINVAL) => {
                self.reopen_buffered()?;
                // Positional writes: whatever part went out before the refusal is written again, the same.
                write_all_vectored_at(&self.file, &mut gathered.slices(), self.written)?;
            }
            r => r?,
        }
        self.written += gathered.len as u64;
        self.filled = 0;
        Ok(())
    }

    /// The file system took the `O_DIRECT` open but refuses a write: carry on through the page cache.
    fn reopen_buffered(&mut self) -> io::Result<()> {
        tracing::debug!(path = %self.path.display(), "O_DIRECT write refused; writing buffered");
        self.file = OpenOptions::new().write(true).open(&self.path)?;
        self.direct = false;
        self.in_place = false;
        Ok(())
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        crate::buffers::give_back(std::mem::take(&mut self.buf));
    }
}

/// Moves the front of `data` into a sink's aligned buffer, `buf[start..start + SINK_BUFFER]` of which
/// `filled` bytes are taken, as far as it fits; true when the buffer is then full and must be written out.
pub(crate) fn fill_sink_buffer(
    buf: &mut [u8],
    start: usize,
    filled: &mut usize,
    data: &mut &[u8],
) -> bool {
    let take = (SINK_BUFFER - *filled).min(data.len());
    let at = start + *filled;
    // The device reads this buffer next, not the CPU: written around the caches (see `stream_copy`).
    crate::stream_copy::copy(&mut buf[at..at + take], &data[..take]);
    *filled += take;
    *data = &data[take..];
    *filled == SINK_BUFFER
}

impl InPlaceSink for FileSink {
    fn buffered_if_in_place(&self) -> Option<&[u8]> {
        self.in_place
            .then(|| &self.buf[self.start..self.start + self.filled])
    }

    fn write_gathered(&mut self, gathered: Gathered) -> io::Result<()> {
        FileSink::write_gathered(self, gathered)
    }
}

impl ShardSink for FileSink {
    fn write_all(&mut self, mut data: &[u8]) -> io::Result<()> {
        while !data.is_empty() {
            if fill_sink_buffer(&mut self.buf, self.start, &mut self.filled, &mut data) {
                self.write_out(SINK_BUFFER)?;
                self.filled = 0;
            }
        }
        Ok(())
    }

    fn write_frames(&mut self, frames: Vec<Frame>, layout: FrameLayout) -> io::Result<()> {
        write_frames_in_place(self, frames, layout)
    }

    fn finish(mut self: Box<Self>, fsync: bool) -> io::Result<()> {
        let len = self.written + self.filled as u64;
        if self.filled > 0 {
            let mut out = self.filled;
            if self.direct {
                // The tail goes out padded to the alignment and the file is cut back to its length.
                out = self.filled.next_multiple_of(DIRECT_ALIGN);
                let at = self.start + self.filled;
                self.buf[at..self.start + out].fill(0);
            }
            self.write_out(out)?;
            if self.written != len {
                self.file.set_len(len)?;
            }
        }
        if fsync {
            // The file's data and its directory entry must both be durable before metadata points at it:
            // a crash after the commit rolls the staged file forward, so it has to be there.
            self.file.sync_data()?;
            sync_dir(&self.dir)?;
        }
        Ok(())
    }
}

struct FileSource {
    file: File,
}

impl ShardSource for FileSource {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.file.read_exact_at(buf, offset)
    }

    fn read_cached_at(&self, buf: &mut [u8], offset: u64) -> io::Result<bool> {
        read_cached(&self.file, buf, offset)
    }
}

fn sync_dir(path: &Path) -> io::Result<()> {
    File::open(path)?.sync_all()
}

impl Disk for PortableDisk {
    fn index(&self) -> usize {
        self.index
    }

    fn root(&self) -> &Path {
        &self.root
    }

    fn create_staged(&self, id: DataId, repair: bool) -> io::Result<Box<dyn ShardSink>> {
        Ok(Box::new(FileSink::create(
            self,
            self.staged_path(id, repair),
            self.root.join("tmp"),
        )?))
    }

    fn publish(&self, id: DataId, repair: bool, fsync: bool) -> io::Result<()> {
        let to = self.data_path(id);
        let parent = to.parent().expect("data path has a parent");
        if let Err(e) = fs::rename(self.staged_path(id, repair), &to) {
            if e.kind() != io::ErrorKind::NotFound {
                return Err(e);
            }
            fs::create_dir_all(parent)?;
            fs::rename(self.staged_path(id, repair), &to)?;
        }
        if fsync {
            sync_dir(parent)?;
        }
        Ok(())
    }

    fn open(&self, id: DataId) -> io::Result<Box<dyn ShardSource>> {
        let file = match File::open(self.data_path(id)) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                File::open(self.staged_path(id, false))?
            }
            Err(e) => return Err(e),
        };
        Ok(Box::new(FileSource { file }))
    }

    fn remove(&self, id: DataId) -> io::Result<()> {
        for path in [self.data_path(id), self.staged_path(id, false)] {
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn staged(&self) -> io::Result<Vec<(DataId, bool)>> {
        let mut out = Vec::new();
        for entry in fs::read_dir(self.root.join("tmp"))? {
            let name = entry?.file_name();
            let name = name.to_string_lossy();
            let (stem, repair) = match name.strip_suffix(".repair") {
                Some(stem) => (stem, true),
                None => (&*name, false),
            };
            if let Some(id) = DataId::from_hex(stem) {
                out.push((id, repair));
            }
        }
        Ok(out)
    }

    fn sweep_foreign(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in fs::read_dir(self.root.join("tmp"))? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let stem = name.strip_suffix(".repair").unwrap_or(&name);
            if DataId::from_hex(stem).is_none() && entry.file_type()?.is_file() {
                fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 31 + i / 251) as u8).collect()
    }

    #[test]
    fn cached_reads_return_the_bytes_or_decline_never_a_short_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data = pattern(300_000);
        fs::write(&path, &data).unwrap();
        let file = File::open(&path).unwrap();
        let mut buf = vec![0u8; 100_000];
        // Just written, so in the page cache: on Linux the read is served; elsewhere it declines.
        let served = read_cached(&file, &mut buf, 123_456).unwrap();
        assert_eq!(served, cfg!(target_os = "linux"));
        if served {
            assert!(buf[..] == data[123_456..223_456]);
        }
        // Past the end is an error, as for read_exact_at, not a short buffer taken for data.
        let mut past = vec![0u8; 10];
        if cfg!(target_os = "linux") {
            assert!(read_cached(&file, &mut past, 299_995).is_err());
        }
    }

    #[test]
    fn staged_file_holds_exactly_what_was_written() {
        let dir = tempfile::tempdir().unwrap();
        let disk = PortableDisk::open(0, dir.path()).unwrap();
        // Pieces of awkward sizes crossing the buffer and alignment boundaries, and an unaligned tail.
        for total in [
            0,
            1,
            4095,
            4096,
            SINK_BUFFER,
            SINK_BUFFER + 1,
            3 * SINK_BUFFER + 12_345,
        ] {
            let id = DataId::random();
            let data = pattern(total);
            let mut sink = disk.create_staged(id, false).unwrap();
            for piece in data.chunks(32 + (1 << 18)) {
                let (hash, shard) = piece.split_at(piece.len().min(32));
                sink.write_all(hash).unwrap();
                sink.write_all(shard).unwrap();
            }
            sink.finish(true).unwrap();
            let staged = fs::read(disk.staged_path(id, false)).unwrap();
            assert_eq!(staged.len(), total, "length for {total}");
            assert!(staged == data, "content for {total}");
            disk.publish(id, false, true).unwrap();
            let src = disk.open(id).unwrap();
            let mut back = vec![0u8; total];
            src.read_exact_at(&mut back, 0).unwrap();
            assert!(back == data);
        }
    }

    #[test]
    fn a_staged_file_made_again_is_a_new_file_a_late_write_of_the_old_one_cannot_reach() {
        let dir = tempfile::tempdir().unwrap();
        let disk = PortableDisk::open(0, dir.path()).unwrap();
        let id = DataId::random();
        // A repair attempt that failed with a write still in flight: its file stays open with that write.
        let (abandoned, _) = create_staged_file(&disk.staged_path(id, true)).unwrap();
        let data = pattern(3 * 4096 + 100);
        let mut sink = disk.create_staged(id, true).unwrap();
        sink.write_all(&data).unwrap();
        sink.finish(true).unwrap();
        // The late write lands now (aligned, as an O_DIRECT write must be).
        let late = vec![0xEE; 2 * DIRECT_ALIGN];
        let at = late.as_ptr().align_offset(DIRECT_ALIGN);
        abandoned
            .write_all_at(&late[at..at + DIRECT_ALIGN], 0)
            .unwrap();
        assert!(fs::read(disk.staged_path(id, true)).unwrap() == data);
        disk.publish(id, true, true).unwrap();
        let mut back = vec![0u8; data.len()];
        disk.open(id).unwrap().read_exact_at(&mut back, 0).unwrap();
        assert!(back == data);
    }

    /// `len` bytes at an address aligned as the encoder's buffers are.
    fn aligned(data: &[u8]) -> Bytes {
        let mut buf = crate::buffers::AlignedBuf::with_capacity(data.len());
        buf.extend_from_slice(data);
        buf.freeze()
    }

    #[test]
    fn full_shards_go_in_place_where_the_device_allows_it() {
        let dir = tempfile::tempdir().unwrap();
        let disk = PortableDisk::open(0, dir.path()).unwrap();
        let id = DataId::random();
        let mut sink =
            FileSink::create(&disk, disk.staged_path(id, false), dir.path().into()).unwrap();
        let allowed = sink.in_place;
        assert_eq!(allowed, sink.direct && direct_allows_in_place(&sink.file));
        let reported = rustix::fs::statx(
            &sink.file,
            "",
            rustix::fs::AtFlags::EMPTY_PATH,
            rustix::fs::StatxFlags::DIOALIGN,
        )
        .is_ok_and(|st| st.stx_mask & rustix::fs::StatxFlags::DIOALIGN.bits() != 0);
        if sink.direct && reported {
            // Linux 6.1+ on ext4 or xfs (this project's machines) reports a DIO alignment of 512 or 4096.
            assert!(allowed, "statx(STATX_DIOALIGN) allows shards in place here");
        }
        let header = pattern(HASH_SLOT);
        sink.write_all(&header).unwrap();
        let shards: Vec<Bytes> = (0..4)
            .map(|i| aligned(&pattern((1 << 18) + i)[i..]))
            .collect();
        let frames: Vec<Frame> = shards
            .iter()
            .map(|s| (*blake3::hash(s).as_bytes(), s.clone()))
            .collect();
        sink.write_frames(frames.clone(), FrameLayout::Aligned)
            .unwrap();
        if allowed {
            // One vectored write took the header, the hash slots and the shards: nothing left buffered.
            assert_eq!(sink.filled, 0);
            assert_eq!(
                sink.written as usize,
                HASH_SLOT + 4 * (HASH_SLOT + (1 << 18))
            );
        } else {
            assert_ne!(sink.filled, 0);
        }
        Box::new(sink).finish(true).unwrap();
        let mut expected = header;
        for (hash, shard) in &frames {
            expected.extend_from_slice(&hash_slot(hash));
            expected.extend_from_slice(shard);
        }
        assert!(fs::read(disk.staged_path(id, false)).unwrap() == expected);
    }
}
