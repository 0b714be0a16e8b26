//! A metadata replica's write-ahead log (`strata.wal`, beside `strata.redb` on each disk).
//!
//! A durable redb commit costs a flush of every B-tree page the commit touched plus an `fdatasync`; for a
//! 4 KiB PUT that was about six page writes per replica per group. Instead each group's batches are appended
//! here, one record per group and one `fdatasync` per append (a replica that fell behind appends the groups it
//! catches up on together), and then the group is committed to redb without
//! durability (its pages stay in redb's write buffer). A checkpoint (a durable redb commit) makes everything
//! before it durable in redb; the log then starts again at offset 0, overwriting the previous generation in
//! place so that the file's size, and so its inode, stops changing once it has grown.
//!
//! A record is `magic, format, length, seq, BLAKE3(seq ‖ payload), payload`. Replay at open starts from redb's
//! durable commit sequence number `S` and takes records while each is whole, checks out and carries the next
//! sequence number (`S + 1`, `S + 2`, ...). A torn tail fails the hash; a record left over from an older
//! generation carries a number at or below the checkpoint's and ends the replay, so no stale record is ever
//! applied twice. The payload is postcard, which is not self-describing: a change to [`super::Op`] or the
//! records it holds must bump `FORMAT`. A whole record that is due for replay but carries another format stops
//! the open with an error rather than being skipped, since skipping it would drop acknowledged writes.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read};
use std::os::unix::fs::FileExt;
use std::path::Path;

/// The log's file name inside a disk root.
pub(super) const WAL_FILE: &str = "strata.wal";

const MAGIC: [u8; 4] = *b"SWAL";
/// Bumped when the payload encoding changes. The header's layout (and so where `format` and `seq` sit) never
/// changes.
const FORMAT: u8 = 1;
const HEADER: usize = 4 + 1 + 3 + 4 + 8 + 32;

/// One replica's log, opened for appending.
#[derive(Debug)]
pub(super) struct Wal {
    file: File,
    /// Where the next record goes (bytes since the last checkpoint).
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
        let mut expected = durable_seq + 1;
        while let Some((record, format, len)) = parse(&bytes[at..]) {
            if record.seq != expected {
                break;
            }
            if format != FORMAT {
                return Err(std::io::Error::other(format!(
                    "{}: commit {} is logged in format {format}, this binary reads format {FORMAT}; \
                     start the version that wrote it once to checkpoint its log",
                    path.display(),
                    record.seq
                )));
            }
            expected += 1;
            at += len;
            records.push(record);
        }
        let wal = Self {
            file,
            end: at as u64,
            scratch: Vec::new(),
        };
        Ok((wal, records))
    }

    /// Appends one record and makes it durable (`fdatasync`) before returning.
    #[cfg(test)]
    pub(super) fn append(&mut self, seq: u64, payload: &[u8]) -> std::io::Result<()> {
        self.append_all(&[Entry {
            seq,
            payload,
            hash: record_hash(seq, payload),
        }])
    }

    /// Appends records in order with one write and makes them durable with one `fdatasync`: a replica that
    /// fell behind logs the groups it caught up on together.
    pub(super) fn append_all(&mut self, entries: &[Entry<'_>]) -> std::io::Result<()> {
        self.scratch.clear();
        for e in entries {
            let len = u32::try_from(e.payload.len()).map_err(|_| {
                std::io::Error::new(ErrorKind::InvalidInput, "metadata log record too large")
            })?;
            self.scratch.extend_from_slice(&MAGIC);
            self.scratch.push(FORMAT);
            self.scratch.extend_from_slice(&[0; 3]);
            self.scratch.extend_from_slice(&len.to_le_bytes());
            self.scratch.extend_from_slice(&e.seq.to_le_bytes());
            self.scratch.extend_from_slice(e.hash.as_bytes());
            self.scratch.extend_from_slice(e.payload);
        }
        self.file.write_all_at(&self.scratch, self.end)?;
        self.file.sync_data()?;
        self.end += self.scratch.len() as u64;
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
        // A durable seq already past the log's start replays nothing: the records do not follow it.
        let (_, records) = Wal::open(&path, 12).unwrap();
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

    #[test]
    fn a_torn_tail_ends_the_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(WAL_FILE);
        let (mut wal, _) = Wal::open(&path, 0).unwrap();
        wal.append(1, &[7; 100]).unwrap();
        wal.append(2, &[8; 100]).unwrap();
        drop(wal);
        let full = std::fs::metadata(&path).unwrap().len();
        // Cut the second record short, then flip a byte of it instead: both must end the replay at record 1.
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(full - 1).unwrap();
        let (mut wal, records) = Wal::open(&path, 0).unwrap();
        assert_eq!(seqs(&records), [1]);
        // The next append overwrites the torn record.
        wal.append(2, &[9; 100]).unwrap();
        drop(wal);
        let (_, records) = Wal::open(&path, 0).unwrap();
        assert_eq!(seqs(&records), [1, 2]);
        assert_eq!(records[1].payload, [9; 100]);
        let mut bytes = std::fs::read(&path).unwrap();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
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
        let second = HEADER + 3;
        bytes[second + 4] = FORMAT + 1;
        std::fs::write(&path, &bytes).unwrap();
        let err = Wal::open(&path, 0).unwrap_err();
        assert!(err.to_string().contains("format"), "{err}");
        // Once checkpointed past it, the record is stale and ignored.
        let (_, records) = Wal::open(&path, 2).unwrap();
        assert!(records.is_empty());
    }
}
