//! A metadata replica's write-ahead log (`strata.wal`, beside `strata.redb` on each disk).
//!
//! A durable redb commit costs a flush of every B-tree page the commit touched plus an `fdatasync`; for a
//! 4 KiB PUT that was about six page writes per replica per group. Instead each group's batches are appended
//! here, one record per group and one durable write per append (a replica that fell behind appends the groups
//! it catches up on together), and then the group is committed to redb without durability (its pages stay in
//! redb's write buffer). A checkpoint (a durable redb commit) makes everything before it durable in redb; the
//! log then starts again at offset 0, overwriting the previous generation in place so that the file's size,
//! and so its inode, stops changing once it has grown.
//!
//! Appends go through a second handle opened with `O_DIRECT | O_DSYNC`: one system call, durable when it
//! returns, and no page cache to dirty and write back at an `fdatasync` (about 4% less server CPU and 4% more
//! 4 KiB PUTs per second than a buffered write and `fdatasync`, alternated runs). So every append starts at a
//! multiple of [`ALIGN`] and is filled to the next one by a *padding record* (sequence number 0), which replay
//! steps over. Where the file system refuses `O_DIRECT` (tmpfs) the log writes through the page cache and
//! `fdatasync`s, in the same layout.
//!
//! A record is `magic, format, length, seq, BLAKE3(seq ‖ payload), payload`. Replay at open starts from redb's
//! durable commit sequence number `S` and takes records while each is whole, checks out and carries the next
//! sequence number (`S + 1`, `S + 2`, ...), stepping over padding records. A torn tail fails the hash; a
//! record left over from an older generation carries a number at or below the checkpoint's and ends the
//! replay, so no stale record is ever applied twice. Replay never skips bytes that are not a whole padding
//! record, so nothing inside a torn append (whose payload holds object bytes a client chose) is ever read as a
//! record. The payload is postcard, which is not self-describing: a change to [`super::Op`] or the records it
//! holds must bump `FORMAT`. A whole record that is due for replay but carries a format this binary does not
//! read stops the open with an error rather than being skipped, since skipping it would drop acknowledged
//! writes.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// The log's file name inside a disk root.
pub(crate) const WAL_FILE: &str = "strata.wal";

const MAGIC: [u8; 4] = *b"SWAL";
/// Bumped when the payload encoding or the layout of the records changes. The header's layout (and so where
/// `format` and `seq` sit) never changes. Format 2 pads each append with a padding record; its payload is
/// format 1's.
const FORMAT: u8 = 2;
/// Formats this binary replays: 1 (records back to back) reads the same, since replay only ever skips a
/// padding record, and format 1 has none.
const READS: [u8; 2] = [1, FORMAT];
const HEADER: usize = 4 + 1 + 3 + 4 + 8 + 32;
/// Every append starts at a multiple of this and ends at one, as `O_DIRECT` needs.
const ALIGN: usize = 4096;
/// The sequence number of a padding record (commits count from 1): replay steps over it.
const PADDING: u64 = 0;
/// Zeros, the payload of padding records.
static ZEROS: [u8; ALIGN] = [0; ALIGN];

/// One replica's log, opened for appending.
#[derive(Debug)]
pub(super) struct Wal {
    file: File,
    /// The same file opened with `O_DIRECT | O_DSYNC`, which appends through; None where the file system
    /// refuses `O_DIRECT`.
    direct: Option<File>,
    /// Where the next record goes (bytes since the last checkpoint; a multiple of [`ALIGN`]).
    end: u64,
    scratch: Vec<u8>,
}

/// A record to append: its payload, under commit sequence number `seq`, with its [`record_hash`] (every replica
/// logs the same payload under the same number, so the committer hashes it once for all of them).
pub(super) struct Entry<'a> {
    pub(super) seq: u64,
    pub(super) payload: &'a [u8],
    pub(super) hash: blake3::Hash,
}

/// A record read back at open.
#[derive(Debug)]
pub(super) struct Record {
    /// The commit sequence number the record's group produced.
    pub(super) seq: u64,
    /// The encoded group.
    pub(super) payload: Vec<u8>,
}

impl Wal {
    /// Opens (or creates) the log at `path` and returns, in order, the records that follow the durable commit
    /// `durable_seq`. The log appends after them; call [`Wal::restart`] once they are checkpointed.
    pub(super) fn open(path: &Path, durable_seq: u64) -> std::io::Result<(Self, Vec<Record>)> {
        Self::open_with(path, durable_seq, true)
    }

    /// [`Wal::open`], appending through the page cache unless `direct` (and the file system allows it).
    fn open_with(
        path: &Path,
        durable_seq: u64,
        direct: bool,
    ) -> std::io::Result<(Self, Vec<Record>)> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let mut records = Vec::new();
        let mut at = 0usize;
        // The log holds one run of consecutive records from its start. Those up to `durable_seq` are in the
        // database already: a replica that applies groups some time after logging them (a lazy one) may be
        // made durable part-way through its log (redb makes its last commit durable when it is closed). A run
        // that starts past `durable_seq + 1` leaves a gap and is not replayed; stale records of an older
        // generation carry numbers at or below the checkpoint's and end the run.
        let mut expected = None;
        while let Some((record, format, len)) = parse(&bytes[at..]) {
            if record.seq == PADDING {
                at += len;
                continue;
            }
            let follows = match expected {
                None => record.seq <= durable_seq + 1,
                Some(next) => record.seq == next,
            };
            if !follows {
                break;
            }
            expected = Some(record.seq + 1);
            at += len;
            if record.seq <= durable_seq {
                continue;
            }
            if !READS.contains(&format) {
                return Err(std::io::Error::other(format!(
                    "{}: commit {} is logged in format {format}, this binary reads formats {READS:?}; \
                     start the version that wrote it once to checkpoint its log",
                    path.display(),
                    record.seq
                )));
            }
            records.push(record);
        }
        let direct = match OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT | libc::O_DSYNC)
            .open(path)
        {
            Ok(f) if direct => Some(f),
            Ok(_) => None,
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => None,
            Err(e) => return Err(e),
        };
        if !at.is_multiple_of(ALIGN) {
            // A log of format 1, or a torn append's start: seal it with a padding record so that the next
            // append starts aligned and replay still reaches it.
            let mut pad = Vec::new();
            push_padding(&mut pad, at);
            file.write_all_at(&pad, at as u64)?;
            file.sync_data()?;
            at += pad.len();
        }
        let wal = Self {
            file,
            direct,
            end: at as u64,
            scratch: Vec::new(),
        };
        Ok((wal, records))
    }

    /// Appends one record and makes it durable before returning.
    #[cfg(test)]
    pub(super) fn append(&mut self, seq: u64, payload: &[u8]) -> std::io::Result<()> {
        self.append_all(&[Entry {
            seq,
            payload,
            hash: record_hash(seq, payload),
        }])
    }

    /// Appends records in order, padded to the alignment, with one durable write: a replica that fell behind
    /// logs the groups it caught up on together.
    pub(super) fn append_all(&mut self, entries: &[Entry<'_>]) -> std::io::Result<()> {
        let len: usize = entries.iter().map(|e| HEADER + e.payload.len()).sum();
        self.scratch.clear();
        self.scratch.reserve(len + 2 * ALIGN);
        // The appended bytes start at an aligned address inside the scratch buffer (`O_DIRECT`).
        let start = self.scratch.as_ptr().align_offset(ALIGN);
        self.scratch.resize(start, 0);
        for e in entries {
            let len = u32::try_from(e.payload.len()).map_err(|_| {
                std::io::Error::new(ErrorKind::InvalidInput, "metadata log record too large")
            })?;
            push_header(&mut self.scratch, len, e.seq, &e.hash);
            self.scratch.extend_from_slice(e.payload);
        }
        push_padding(&mut self.scratch, self.end as usize + len);
        let bytes = &self.scratch[start..];
        let written = match &self.direct {
            Some(direct) => match direct.write_all_at(bytes, self.end) {
                // O_DSYNC: durable when the write returns.
                Ok(()) => true,
                // A file system that takes O_DIRECT at open but not these writes (an alignment it wants
                // larger): EINVAL comes before any I/O. Go on through the page cache rather than take the
                // replica offline.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    tracing::warn!(error = %e, "metadata log: O_DIRECT write refused, writing through the page cache");
                    self.direct = None;
                    false
                }
                Err(e) => return Err(e),
            },
            None => false,
        };
        if !written {
            self.file.write_all_at(bytes, self.end)?;
            self.file.sync_data()?;
        }
        self.end += bytes.len() as u64;
        if self.scratch.capacity() > 1 << 20 {
            self.scratch = Vec::new();
        }
        Ok(())
    }

    /// Starts a new generation at offset 0, after a checkpoint made every record so far durable in redb.
    /// Nothing is written: the old records stay until overwritten and replay skips them by sequence number.
    pub(super) fn restart(&mut self) {
        self.end = 0;
    }
}

/// Empties the log at `path` (a replica replaced by a copy of another must not keep its own records).
pub(super) fn clear(path: &Path) -> std::io::Result<()> {
    match OpenOptions::new().write(true).open(path) {
        Ok(f) => {
            f.set_len(0)?;
            f.sync_all()
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn push_header(buf: &mut Vec<u8>, len: u32, seq: u64, hash: &blake3::Hash) {
    buf.extend_from_slice(&MAGIC);
    buf.push(FORMAT);
    buf.extend_from_slice(&[0; 3]);
    buf.extend_from_slice(&len.to_le_bytes());
    buf.extend_from_slice(&seq.to_le_bytes());
    buf.extend_from_slice(hash.as_bytes());
}

/// Appends to `buf` the padding record that takes a log ending at offset `end` to the next multiple of
/// [`ALIGN`] (nothing if it is one already). A padding record needs [`HEADER`] bytes, so it may reach one
/// alignment further.
fn push_padding(buf: &mut Vec<u8>, end: usize) {
    let mut pad = end.next_multiple_of(ALIGN) - end;
    if pad == 0 {
        return;
    }
    if pad < HEADER {
        pad += ALIGN;
    }
    let zeros = &ZEROS[..pad - HEADER];
    push_header(
        buf,
        zeros.len() as u32,
        PADDING,
        &record_hash(PADDING, zeros),
    );
    buf.extend_from_slice(zeros);
}

/// The hash a record carries: BLAKE3 of its sequence number and payload.
pub(super) fn record_hash(seq: u64, payload: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(&seq.to_le_bytes());
    h.update(payload);
    h.finalize()
}

/// The record at the start of `bytes`, its format and its length, if one is there whole and intact.
fn parse(bytes: &[u8]) -> Option<(Record, u8, usize)> {
    let header = bytes.get(..HEADER)?;
    if header[..4] != MAGIC {
        return None;
    }
    let len = u32::from_le_bytes(header[8..12].try_into().ok()?) as usize;
    let seq = u64::from_le_bytes(header[12..20].try_into().ok()?);
    let payload = bytes.get(HEADER..HEADER + len)?;
    if record_hash(seq, payload).as_bytes() != &header[20..52] {
        return None;
    }
    let record = Record {
        seq,
        payload: payload.to_vec(),
    };
    Some((record, header[4], HEADER + len))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seqs(records: &[Record]) -> Vec<u64> {
        records.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn replays_records_after_the_durable_seq_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let (mut wal, none) = Wal::open(&path, 10).unwrap();
        assert!(none.is_empty());
        for seq in 11..=14 {
            wal.append(seq, format!("group {seq}").as_bytes()).unwrap();
        }
        drop(wal);
        let (_, records) = Wal::open(&path, 10).unwrap();
        assert_eq!(seqs(&records), [11, 12, 13, 14]);
        assert_eq!(records[2].payload, b"group 13");
        // A durable seq part-way through the log (a lazy replica closed before its checkpoint) replays the
        // rest; one at its end or past it replays nothing, nor does one that leaves a gap before its start.
        let (_, records) = Wal::open(&path, 12).unwrap();
        assert_eq!(seqs(&records), [13, 14]);
        let (_, records) = Wal::open(&path, 14).unwrap();
        assert!(records.is_empty());
        let (_, records) = Wal::open(&path, 20).unwrap();
        assert!(records.is_empty());
        let (_, records) = Wal::open(&path, 9).unwrap();
        assert!(records.is_empty());
    }

    #[test]
    fn records_appended_together_replay_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let (mut wal, _) = Wal::open(&path, 10).unwrap();
        let payloads: Vec<Vec<u8>> = (11..=13u8).map(|n| vec![n; 50 * n as usize]).collect();
        let entries: Vec<Entry<'_>> = (11..)
            .zip(&payloads)
            .map(|(seq, p)| Entry {
                seq,
                payload: p,
                hash: record_hash(seq, p),
            })
            .collect();
        wal.append_all(&entries).unwrap();
        wal.append(14, b"after").unwrap();
        drop(wal);
        let (_, records) = Wal::open(&path, 10).unwrap();
        assert_eq!(seqs(&records), [11, 12, 13, 14]);
        assert_eq!(records[1].payload, payloads[1]);
        assert_eq!(records[3].payload, b"after");
    }

    /// A record as format 1 wrote it: back to back with the one before.
    fn format_1_record(seq: u64, payload: &[u8]) -> Vec<u8> {
        let mut r = Vec::new();
        push_header(
            &mut r,
            payload.len() as u32,
            seq,
            &record_hash(seq, payload),
        );
        r[4] = 1;
        r.extend_from_slice(payload);
        r
    }

    #[test]
    fn a_log_of_format_1_replays_and_takes_aligned_appends_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let mut old = Vec::new();
        for seq in 3..=5 {
            old.extend(format_1_record(seq, &[seq as u8; 100]));
        }
        std::fs::write(&path, &old).unwrap();
        let (mut wal, records) = Wal::open(&path, 2).unwrap();
        assert_eq!(seqs(&records), [3, 4, 5]);
        assert_eq!(records[2].payload, [5; 100]);
        // Sealed with a padding record to the alignment, the log goes on in format 2.
        assert_eq!(wal.end, ALIGN as u64);
        wal.append(6, b"six").unwrap();
        drop(wal);
        let (_, records) = Wal::open(&path, 2).unwrap();
        assert_eq!(seqs(&records), [3, 4, 5, 6]);
        assert_eq!(records[3].payload, b"six");
    }

    #[test]
    fn padding_fills_each_append_to_the_alignment() {
        for end in [
            0,
            1,
            ALIGN - HEADER - 1,
            ALIGN - HEADER,
            ALIGN - HEADER + 1,
            ALIGN - 1,
            ALIGN,
        ] {
            let mut buf = Vec::new();
            push_padding(&mut buf, end);
            assert!((end + buf.len()).is_multiple_of(ALIGN), "end {end}");
            if !buf.is_empty() {
                let (record, _, len) = parse(&buf).unwrap();
                assert_eq!((record.seq, len), (PADDING, buf.len()), "end {end}");
            }
        }
    }

    #[test]
    fn appends_through_the_page_cache_where_o_direct_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let (mut wal, _) = Wal::open_with(&path, 0, false).unwrap();
        assert!(wal.direct.is_none());
        for seq in 1..=3 {
            wal.append(seq, &[seq as u8; 5000]).unwrap();
        }
        drop(wal);
        let (_, records) = Wal::open(&path, 0).unwrap();
        assert_eq!(seqs(&records), [1, 2, 3]);
        assert_eq!(records[2].payload, [3; 5000]);
        // The same layout as direct appends: a log written one way replays and goes on the other.
        let (mut wal, _) = Wal::open(&path, 0).unwrap();
        wal.append(4, b"four").unwrap();
        drop(wal);
        let (_, records) = Wal::open_with(&path, 0, false).unwrap();
        assert_eq!(seqs(&records), [1, 2, 3, 4]);
    }

    #[test]
    fn a_torn_tail_ends_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let (mut wal, _) = Wal::open(&path, 0).unwrap();
        wal.append(1, &[7; 100]).unwrap();
        wal.append(2, &[8; 100]).unwrap();
        drop(wal);
        // Each append fills one aligned block. Cut the second record short, then flip a byte of it instead:
        // both must end the replay at record 1.
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 2 * ALIGN as u64);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len((ALIGN + HEADER + 50) as u64).unwrap();
        let (mut wal, records) = Wal::open(&path, 0).unwrap();
        assert_eq!(seqs(&records), [1]);
        // The next append overwrites the torn record.
        wal.append(2, &[9; 100]).unwrap();
        drop(wal);
        let (_, records) = Wal::open(&path, 0).unwrap();
        assert_eq!(seqs(&records), [1, 2]);
        assert_eq!(records[1].payload, [9; 100]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[ALIGN + HEADER + 99] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (_, records) = Wal::open(&path, 0).unwrap();
        assert_eq!(seqs(&records), [1]);
    }

    #[test]
    fn a_new_generation_never_replays_the_old_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let (mut wal, _) = Wal::open(&path, 0).unwrap();
        for seq in 1..=5 {
            wal.append(seq, &[seq as u8; 64]).unwrap();
        }
        // Checkpoint at 5, then one shorter record: records 2..=5 of the old generation remain behind it.
        wal.restart();
        wal.append(6, &[6; 10]).unwrap();
        drop(wal);
        let (_, records) = Wal::open(&path, 5).unwrap();
        assert_eq!(seqs(&records), [6]);
        // Killed right after the checkpoint, before anything new: the old generation is all at or below it.
        let (mut wal, _) = Wal::open(&path, 6).unwrap();
        wal.restart();
        drop(wal);
        let (_, records) = Wal::open(&path, 6).unwrap();
        assert!(records.is_empty());
        clear(&path).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    }

    #[test]
    fn a_due_record_of_another_format_stops_the_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let (mut wal, _) = Wal::open(&path, 0).unwrap();
        wal.append(1, b"one").unwrap();
        wal.append(2, b"two").unwrap();
        drop(wal);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[ALIGN + 4] = FORMAT + 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Wal::open(&path, 0).unwrap_err();
        assert!(err.to_string().contains("format"), "{err}");
        // Once checkpointed past it, the record is stale and ignored.
        let (_, records) = Wal::open(&path, 2).unwrap();
        assert!(records.is_empty());
    }
}
