//! The `Disk` trait: where shard files live on one disk directory, and the portable backend over std::fs.
//!
//! Files are named only by random data ids (hex), never by bucket or key, so no key can reach a path
//! outside the disk. Layout of a disk root:
//!
//! ```text
//! strata.redb          metadata replica (see meta/)
//! format.json          which shard slot of the erasure set this disk is
//! tmp/<id>             shard files being written; rolled forward or swept at start
//! tmp/<id>.repair      a repair in progress; always swept at start
//! data/<id[..2]>/<id>  published shard files
//! ```
//!
//! Every method blocks; callers run them on the blocking pool so the disks work in parallel.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// A 128-bit random identifier of one stored data segment (the same id on every disk of the set).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct DataId(pub [u8; 16]);

impl DataId {
    /// A fresh random id.
    pub fn random() -> Self {
        Self(rand::random())
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

/// A shard file being written.
pub trait ShardSink: Send {
    /// Appends bytes.
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()>;
    /// Flushes and, if `fsync`, makes the file durable.
    fn finish(self: Box<Self>, fsync: bool) -> io::Result<()>;
}

/// A published shard file open for positional reads.
pub trait ShardSource: Send + Sync {
    /// Reads exactly `buf.len()` bytes at `offset`.
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()>;
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
}

impl PortableDisk {
    /// Opens (creating the directories if needed) the disk at `root`.
    pub fn open(index: usize, root: &Path) -> io::Result<Self> {
        fs::create_dir_all(root.join("tmp"))?;
        fs::create_dir_all(root.join("data"))?;
        Ok(Self {
            index,
            root: root.to_owned(),
        })
    }

    fn staged_path(&self, id: DataId, repair: bool) -> PathBuf {
        let mut name = id.to_hex();
        if repair {
            name.push_str(".repair");
        }
        self.root.join("tmp").join(name)
    }

    fn data_path(&self, id: DataId) -> PathBuf {
        let hex = id.to_hex();
        self.root.join("data").join(&hex[..2]).join(hex)
    }
}

/// Larger than one shard frame of a 1 MiB block at 4+2 (256 KiB + 32), so the 32-byte checksum and its shard
/// go out in one write instead of two.
const SINK_BUFFER: usize = 512 * 1024;

struct FileSink {
    file: io::BufWriter<File>,
    dir: PathBuf,
}

impl ShardSink for FileSink {
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file.write_all(buf)
    }

    fn finish(self: Box<Self>, fsync: bool) -> io::Result<()> {
        let file = self.file.into_inner().map_err(|e| e.into_error())?;
        if fsync {
            // The file's data and its directory entry must both be durable before metadata points at it:
            // a crash after the commit rolls the staged file forward, so it has to be there.
            file.sync_data()?;
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
        let path = self.staged_path(id, repair);
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        Ok(Box::new(FileSink {
            file: io::BufWriter::with_capacity(SINK_BUFFER, file),
            dir: self.root.join("tmp"),
        }))
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
