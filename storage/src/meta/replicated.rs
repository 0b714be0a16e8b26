//! [`MetaStore`] over one redb database on each of the first disks of the set (`engine::metadata_replicas`:
//! `2m + 1` of them, or every disk of a smaller set), kept identical by applying every commit to every replica.
//!
//! Writes go through a single committer thread that gathers whatever batches are waiting (group commit), applies
//! them in the same order to every online replica in parallel, and reports success once a write quorum of
//! replicas committed durably: appended to the replica's write-ahead log ([`super::wal`]). Two replicas (eager)
//! apply each group to redb, without durability, as soon as they logged it, and give its outcomes; the others
//! (lazy) apply what they logged later, many groups per transaction (see [`EAGER`]). Periodic checkpoints
//! empty the log. Replicas past the quorum finish the group in the background (a replica in a checkpoint may
//! lag a few groups); reads go to a replica that has applied every acknowledged group. A replica that fails is
//! taken offline until restart.
//! At start, each replica replays its log; then replicas are compared by their commit sequence number. One that
//! lags applies the missing groups from the newest replica's log when that still holds them; any other (further
//! behind, missing or unreadable) is replaced by a copy of the newest. Both happen before anything is served:
//! that is the resync of a disk that comes back. Fewer than `replicas - write_quorum + 1` readable replicas (an
//! empty one does not count once another holds commits) fail the open instead: the newest of them might lack
//! an acknowledged write.

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};

use redb::{Database, Durability, ReadableDatabase, ReadableTable, TableDefinition};

use super::LockChange;
use super::records::{VersionKey, Versioning};
use super::records::{
    decode_bucket, decode_object, decode_part, decode_upload, decode_user, encode_bucket,
    encode_object, encode_part, encode_upload, encode_user,
};
use super::{
    Applied, Batch, BucketRecord, Condition, MetaStore, ObjectData, ObjectRecord, Op, PartRecord,
    UploadRecord, UserRecord,
};
use crate::disk::DataId;
use crate::error::{Error, Result};
use crate::lock;

use super::wal::{self, WAL_FILE, Wal};

const BUCKETS: TableDefinition<&str, &[u8]> = TableDefinition::new("buckets");
const OBJECTS: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("objects");
/// Inline object bytes: data id → the first [`INLINE_CHUNK`] bytes. The rest is in [`INLINE_TAIL`].
const INLINE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("inline");
/// Inline bytes past the first chunk: (data id ‖ chunk number from 1, big-endian u16) → up to
/// [`INLINE_CHUNK`] bytes.
const INLINE_TAIL: TableDefinition<&[u8], &[u8]> = TableDefinition::new("inline_tail");
/// Bytes of an inline row: with its key (at most 18 bytes) and redb's leaf header (4 bytes, then a 4-byte key
/// end and a 4-byte value end per row) a full chunk fills one 4 KiB page. A whole 4 KiB object in one row takes
/// an 8 KiB page instead: half of it empty, written at every checkpoint on every replica.
///
/// Rows written before chunking hold a whole object of any size; a head row longer or shorter than a chunk
/// has no tail, so both read the same.
const INLINE_CHUNK: usize = 4096 - 4 - 4 - 4 - INLINE_TAIL_KEY;
/// Length of an [`INLINE_TAIL`] key.
const INLINE_TAIL_KEY: usize = 16 + 2;
const UPLOADS: TableDefinition<(&str, &[u8], &str), &[u8]> = TableDefinition::new("uploads");
const PARTS: TableDefinition<(&str, u32), &[u8]> = TableDefinition::new("parts");
/// Every version of every key: (bucket, key, version key) → record. Version keys sort newest first.
///
/// Except a *lone null version*: a `null` version that is its key's only version lives in [`OBJECTS`] alone,
/// without a row here or in [`NULLS`], so a PUT to an unversioned bucket writes one record instead of three. The
/// key's first other version moves it here ([`Tables::put_version`]). An objects row with no versions row of the
/// same version key is therefore lone, and every reader of versions falls back to it.
const VERSIONS: TableDefinition<VersionRow<'static>, &[u8]> = TableDefinition::new("versions");
/// Key of the versions table: bucket, object key, version key.
type VersionRow<'a> = (&'a str, &'a [u8], &'a [u8]);
/// Where each key's `null` version is, unless it is lone: (bucket, key) → version key.
const NULLS: TableDefinition<(&str, &[u8]), &[u8]> = TableDefinition::new("nulls");
const GC: TableDefinition<&[u8], i64> = TableDefinition::new("gc");
const STATE: TableDefinition<&str, u64> = TableDefinition::new("state");
/// Bucket configuration documents: (bucket, kind) → document bytes.
const BUCKET_CONFIGS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("bucket_configs");
/// Users other than root: access key → user record.
const USERS: TableDefinition<&str, &[u8]> = TableDefinition::new("users");
const SEQ: &str = "seq";
/// How many checkpoints the replica made (written by each, so a checkpoint is never an empty commit).
const CHECKPOINTS: &str = "checkpoints";
/// File name of the metadata replica inside each disk root.
pub const DB_FILE: &str = "strata.redb";
/// Most batches folded into one commit.
const MAX_GROUP: usize = 512;
/// Most groups a replica may have queued or in progress: past it the committer waits for the replica rather than
/// queue more, which bounds the memory of a slow replica's backlog.
const MAX_LAG: usize = 4;
/// Replicas that apply each group as soon as they log it (the first this many online): they give the group's
/// per-batch outcomes and serve reads. The others (*lazy*) log each group at once, which is all the write
/// quorum needs, and apply what they logged later, many groups per redb transaction: a transaction's fixed
/// work (table roots, page copies of the leaves it touches, dirty-page checksums) is then shared by hundreds of
/// PUTs rather than a dozen. Two, so one in a checkpoint or lost does not hold up reads or outcomes.
const EAGER: usize = 2;
/// Log bytes a lazy replica holds unapplied before it applies them in one transaction: bounds the memory of
/// the groups it holds and how far behind it is when it must take over reads.
const LAZY_BYTES: u64 = 256 << 10;
/// A lazy replica applies what it holds after this long without a group.
const LAZY_IDLE: std::time::Duration = std::time::Duration::from_millis(20);
/// How long a read waits for a lagging replica when none that holds every acknowledged write is online.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

struct Replica {
    index: usize,
    db: Database,
    online: AtomicBool,
    /// Number of the last group this replica applied (a lazy replica may have logged later ones); see
    /// [`Acked`].
    applied: AtomicU64,
    /// Makes this replica's next group fail before it logs it, as a disk error would (tests of the committer's
    /// failure paths).
    #[cfg(test)]
    fail_next_group: AtomicBool,
    /// Makes this replica's next apply to redb fail, after the groups are logged (tests, as above).
    #[cfg(test)]
    fail_next_apply: AtomicBool,
}

/// Number of the last group acknowledged to its callers. A replica whose `applied` is at least this holds
/// every acknowledged write, so it can serve a read that follows any of them.
type Acked = Arc<AtomicU64>;

struct Pending {
    batch: Batch,
    reply: Reply,
}

/// Where a batch's outcome goes: a blocked thread ([`MetaStore::commit`]) or a task
/// ([`ReplicatedMeta::enqueue`], which spares the async write path a blocking-pool hand-over per commit).
enum Reply {
    Blocking(mpsc::SyncSender<Result<Applied>>),
    Task(tokio::sync::oneshot::Sender<Result<Applied>>),
}

impl Reply {
    fn send(self, outcome: Result<Applied>) {
        // The caller may be gone (a dropped request): the outcome is durable either way.
        match self {
            Reply::Blocking(tx) => drop(tx.send(outcome)),
            Reply::Task(tx) => drop(tx.send(outcome)),
        }
    }
}

/// The replicated redb metadata store.
pub struct ReplicatedMeta {
    replicas: Arc<Vec<Replica>>,
    acked: Acked,
    submit: mpsc::Sender<Pending>,
    /// Joined on drop, so a closed store has finished every group and released its files.
    committer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for ReplicatedMeta {
    fn drop(&mut self) {
        // Closing the queue ends the committer, which ends every replica's thread (each checkpoints first).
        drop(std::mem::replace(&mut self.submit, mpsc::channel().0));
        if let Some(committer) = self.committer.take()
            && committer.join().is_err()
        {
            tracing::error!("metadata committer panicked");
        }
    }
}

impl std::fmt::Debug for ReplicatedMeta {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicatedMeta")
            .field("replicas", &self.replicas.len())
            .finish()
    }
}

fn copy_replica(from: &Path, to: &Path) -> std::io::Result<()> {
    let tmp = to.with_extension("redb.resync");
    std::fs::copy(from, &tmp)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, to)?;
    if let Some(dir) = to.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// One replica as opened at start: its database with its log replayed and checkpointed, the log, and the
/// commit sequence number it reached.
struct Opened {
    db: Database,
    wal: Wal,
    seq: u64,
    /// The log records replayed at open: they can bring a lagging replica up to this one.
    replayed: Vec<wal::Record>,
}

/// Opens one replica: creates its tables, replays the groups its log holds past redb's durable state, and
/// checkpoints them so the log starts empty.
fn open_replica(root: &Path, cache_bytes: usize) -> std::result::Result<Opened, Opening> {
    replay(root, open_db(root, cache_bytes)?).map_err(Opening::Unreadable)
}

/// Why a replica did not open.
enum Opening {
    /// Another store holds it: fail the open, retrying may succeed.
    Busy(Error),
    /// Missing pieces, corruption, a log that does not replay: replace it with a copy of the newest.
    Unreadable(Error),
}

fn open_db(root: &Path, cache_bytes: usize) -> std::result::Result<Database, Opening> {
    let db = match redb::Builder::new()
        .set_cache_size(cache_bytes)
        .create(root.join(DB_FILE))
    {
        Ok(db) => db,
        // Held by another store (another process on the same disks): not a replica to replace.
        Err(e @ redb::DatabaseError::DatabaseAlreadyOpen) => {
            return Err(Opening::Busy(Error::meta(e)));
        }
        Err(e) => return Err(Opening::Unreadable(Error::meta(e))),
    };
    create_tables(&db).map_err(Opening::Unreadable)?;
    Ok(db)
}

fn create_tables(db: &Database) -> Result<()> {
    let txn = db.begin_write().map_err(Error::meta)?;
    {
        // Create every table up front so read transactions never see a missing table.
        txn.open_table(BUCKETS).map_err(Error::meta)?;
        txn.open_table(OBJECTS).map_err(Error::meta)?;
        txn.open_table(INLINE).map_err(Error::meta)?;
        txn.open_table(INLINE_TAIL).map_err(Error::meta)?;
        txn.open_table(GC).map_err(Error::meta)?;
        txn.open_table(UPLOADS).map_err(Error::meta)?;
        txn.open_table(PARTS).map_err(Error::meta)?;
        txn.open_table(VERSIONS).map_err(Error::meta)?;
        txn.open_table(NULLS).map_err(Error::meta)?;
        txn.open_table(STATE).map_err(Error::meta)?;
        txn.open_table(BUCKET_CONFIGS).map_err(Error::meta)?;
        txn.open_table(USERS).map_err(Error::meta)?;
    }
    txn.commit().map_err(Error::meta)
}

fn replay(root: &Path, db: Database) -> Result<Opened> {
    let durable = current_seq(&db)?;
    let (mut wal, records) = Wal::open(&root.join(WAL_FILE), durable).map_err(Error::Io)?;
    let seq = apply_logged(root, &db, durable, &records)?;
    if !records.is_empty() {
        tracing::info!(disk = %root.display(), groups = records.len(), seq, "metadata log replayed");
        checkpoint(&db)?;
    }
    wal.restart();
    Ok(Opened {
        db,
        wal,
        seq,
        replayed: records,
    })
}

/// Applies the logged groups that follow `seq` (the database's commit sequence number) in order, from the
/// replica's own log or from a peer's (see [`ReplicatedMeta::open`]); returns the number reached. The records
/// must continue `seq` without a gap.
fn apply_logged(root: &Path, db: &Database, seq: u64, records: &[wal::Record]) -> Result<u64> {
    let start = seq;
    let mut seq = seq;
    for record in records.iter().filter(|r| r.seq > start) {
        let (now, batches): (i64, Vec<Batch>) = postcard::from_bytes(&record.payload)
            .map_err(|e| Error::Meta(format!("metadata log for {}: {e}", root.display())))?;
        let (_, reached) = apply_groups(db, &[(&batches, now)])?;
        if reached != record.seq {
            return Err(Error::Meta(format!(
                "metadata log for {}: replay reached commit {reached}, the log says {}",
                root.display(),
                record.seq
            )));
        }
        seq = reached;
    }
    Ok(seq)
}

fn current_seq(db: &Database) -> Result<u64> {
    let txn = db.begin_read().map_err(Error::meta)?;
    let state = txn.open_table(STATE).map_err(Error::meta)?;
    Ok(state
        .get(SEQ)
        .map_err(Error::meta)?
        .map(|v| v.value())
        .unwrap_or(0))
}

/// Makes every commit so far durable in redb (which lets the log start again).
fn checkpoint(db: &Database) -> Result<()> {
    let mut txn = db.begin_write().map_err(Error::meta)?;
    txn.set_durability(Durability::Immediate)
        .map_err(Error::meta)?;
    {
        // A real change, so the commit cannot be skipped as empty.
        let mut state = txn.open_table(STATE).map_err(Error::meta)?;
        let n = state
            .get(CHECKPOINTS)
            .map_err(Error::meta)?
            .map(|v| v.value())
            .unwrap_or(0);
        state.insert(CHECKPOINTS, n + 1).map_err(Error::meta)?;
    }
    txn.commit().map_err(Error::meta)
}

impl ReplicatedMeta {
    /// Opens (and resyncs) the replicas in `roots`; `write_quorum` replicas must commit for a write to count.
    pub fn open(
        roots: &[PathBuf],
        write_quorum: usize,
        fsync: bool,
        cache_bytes: usize,
    ) -> Result<Self> {
        let mut opened: Vec<Option<Opened>> = Vec::with_capacity(roots.len());
        let mut first_error = None;
        for (i, root) in roots.iter().enumerate() {
            match open_replica(root, cache_bytes) {
                Ok(o) => opened.push(Some(o)),
                Err(Opening::Busy(e)) => return Err(e),
                Err(Opening::Unreadable(e)) => {
                    tracing::warn!(disk = i, error = %e, "metadata replica unreadable");
                    first_error.get_or_insert(e);
                    opened.push(None);
                }
            }
        }
        let newest = opened
            .iter()
            .enumerate()
            .filter_map(|(i, o)| o.as_ref().map(|o| (o.seq, i)))
            .max();
        let Some((best_seq, best)) = newest else {
            return Err(first_error.unwrap_or_else(|| Error::Meta("no metadata replicas".into())));
        };
        // Every acknowledged group is in the logs of `write_quorum` replicas, so any `replicas - write_quorum
        // + 1` of them include one that holds it. With fewer open, the newest may lack acknowledged writes that
        // only the others hold: copying it over them would lose those writes for good. A replica that holds no
        // group at all (sequence 0) is no evidence once another holds some: it is a disk that was wiped or
        // replaced, whose empty database redb has just created, and counting it would let a stale replica be
        // copied over everything.
        let readable = opened
            .iter()
            .flatten()
            .filter(|o| o.seq > 0 || best_seq == 0)
            .count();
        let needed = roots.len().saturating_sub(write_quorum) + 1;
        if readable < needed {
            let why = first_error.map_or_else(String::new, |e| format!(": {e}"));
            return Err(Error::Meta(format!(
                "only {readable} of {} metadata replicas open with their commits (others are unreadable, \
                 or empty: wiped or new), {needed} are needed to be sure of every acknowledged write; \
                 refusing to resync from them{why}",
                roots.len()
            )));
        }
        for i in 0..roots.len() {
            let have = opened[i].as_ref().map(|o| o.seq);
            if have == Some(best_seq) {
                continue;
            }
            // A replica a few groups behind (the write quorum acknowledges without it) catches up from the
            // newest replica's log when that still holds the groups it misses; copying the database is for
            // the rest.
            if let (Some(lagging), Some(newest)) = (opened[i].as_ref(), opened[best].as_ref())
                && newest
                    .replayed
                    .first()
                    .is_some_and(|r| r.seq <= lagging.seq + 1)
            {
                let caught_up = apply_logged(&roots[i], &lagging.db, lagging.seq, &newest.replayed)
                    .and_then(|seq| checkpoint(&lagging.db).map(|()| seq));
                match caught_up {
                    Ok(seq) if seq == best_seq => {
                        tracing::info!(
                            disk = i,
                            from = lagging.seq,
                            to = seq,
                            "metadata replica caught up from disk {best}'s log"
                        );
                        if let Some(o) = opened[i].as_mut() {
                            o.seq = seq;
                        }
                        continue;
                    }
                    Ok(seq) => {
                        tracing::warn!(disk = i, seq, "metadata replica's catch-up stopped short")
                    }
                    Err(e) => {
                        tracing::warn!(disk = i, error = %e, "metadata replica's catch-up failed")
                    }
                }
            }
            tracing::warn!(
                disk = i,
                ?have,
                newest = best_seq,
                "metadata replica lags: resyncing from disk {best}"
            );
            // Release the file before replacing it; the copy's own log must not be replayed over it.
            opened[i] = None;
            copy_replica(&roots[best].join(DB_FILE), &roots[i].join(DB_FILE))?;
            wal::clear(&roots[i].join(WAL_FILE))?;
            opened[i] = Some(open_replica(&roots[i], cache_bytes).map_err(|e| match e {
                Opening::Busy(e) | Opening::Unreadable(e) => e,
            })?);
        }
        let (replicas, wals): (Vec<Replica>, Vec<(Wal, u64)>) = opened
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(index, o)| {
                let replica = Replica {
                    index,
                    db: o.db,
                    online: AtomicBool::new(true),
                    applied: AtomicU64::new(0),
                    #[cfg(test)]
                    fail_next_group: AtomicBool::new(false),
                    #[cfg(test)]
                    fail_next_apply: AtomicBool::new(false),
                };
                (replica, (o.wal, o.seq))
            })
            .unzip();
        let replicas = Arc::new(replicas);
        let (submit, queue) = mpsc::channel::<Pending>();
        let acked = Acked::default();
        let committer = Committer {
            in_flight: vec![0; replicas.len()],
            replicas: replicas.clone(),
            acked: acked.clone(),
            write_quorum,
            fsync,
            groups: 0,
            first_seq: 0,
        };
        let committer = std::thread::Builder::new()
            .name("strata-meta-commit".into())
            .spawn(move || committer.run(queue, wals))
            .map_err(Error::Io)?;
        Ok(Self {
            replicas,
            acked,
            submit,
            committer: Some(committer),
        })
    }

    /// Queues `batch` for the next group commit without blocking; the receiver gets its outcome once a
    /// quorum of replicas committed it (the async form of [`MetaStore::commit`]).
    pub(crate) fn enqueue(
        &self,
        batch: Batch,
    ) -> Result<tokio::sync::oneshot::Receiver<Result<Applied>>> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.submit
            .send(Pending {
                batch,
                reply: Reply::Task(reply),
            })
            .map_err(|_| Error::Meta("metadata committer stopped".into()))?;
        Ok(answer)
    }

    /// Online replicas that applied every acknowledged group (`acked`, loaded once by the caller), so a read
    /// from any of them sees every acknowledged write. Allocation-free: every point lookup goes through it.
    fn current(&self, acked: u64) -> impl Iterator<Item = &Replica> {
        self.replicas.iter().filter(move |r| {
            r.online.load(Ordering::Relaxed) && r.applied.load(Ordering::Acquire) >= acked
        })
    }

    /// The last acknowledged group, once some online replica has applied it. Normally at once: a group is
    /// acknowledged once a replica applied it (an eager one, see [`EAGER`]). If those replicas all went offline
    /// since, the others (lazy ones apply what they logged within [`LAZY_IDLE`] of the last group, or when the
    /// next group names them eager) are given a moment to catch up rather than serve a read that could miss an
    /// acknowledged write.
    fn acked_and_current(&self) -> Result<u64> {
        let acked = self.acked.load(Ordering::Acquire);
        if self.current(acked).next().is_some() {
            return Ok(acked);
        }
        let deadline = std::time::Instant::now() + CATCH_UP_WAIT;
        while self.current(acked).next().is_none() {
            if std::time::Instant::now() > deadline {
                return Err(Error::QuorumLost {
                    needed: 1,
                    available: 0,
                });
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        Ok(acked)
    }

    fn with_replica<T>(&self, mut f: impl FnMut(&Database) -> Result<T>) -> Result<T> {
        let mut last = None;
        for r in self.current(self.acked_and_current()?) {
            match f(&r.db) {
                Ok(v) => return Ok(v),
                Err(e) => {
                    tracing::error!(disk = r.index, error = %e, "metadata read failed; trying another replica");
                    last = Some(e);
                }
            }
        }
        Err(last.unwrap_or(Error::QuorumLost {
            needed: 1,
            available: 0,
        }))
    }
}

impl MetaStore for ReplicatedMeta {
    fn bucket(&self, name: &str) -> Result<Option<BucketRecord>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let t = txn.open_table(BUCKETS).map_err(Error::meta)?;
            t.get(name)
                .map_err(Error::meta)?
                .map(|v| decode_bucket(v.value()))
                .transpose()
        })
    }

    fn buckets(&self) -> Result<Vec<(String, BucketRecord)>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let t = txn.open_table(BUCKETS).map_err(Error::meta)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(Error::meta)? {
                let (k, v) = item.map_err(Error::meta)?;
                out.push((k.value().to_owned(), decode_bucket(v.value())?));
            }
            Ok(out)
        })
    }

    fn bucket_config(&self, bucket: &str, kind: &str) -> Result<Option<Vec<u8>>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let t = txn.open_table(BUCKET_CONFIGS).map_err(Error::meta)?;
            Ok(t.get((bucket, kind))
                .map_err(Error::meta)?
                .map(|v| v.value().to_vec()))
        })
    }

    fn user(&self, access_key: &str) -> Result<Option<UserRecord>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let t = txn.open_table(USERS).map_err(Error::meta)?;
            t.get(access_key)
                .map_err(Error::meta)?
                .map(|v| decode_user(v.value()))
                .transpose()
        })
    }

    fn users(&self) -> Result<Vec<(String, UserRecord)>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let t = txn.open_table(USERS).map_err(Error::meta)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(Error::meta)? {
                let (k, v) = item.map_err(Error::meta)?;
                out.push((k.value().to_owned(), decode_user(v.value())?));
            }
            Ok(out)
        })
    }

    fn object(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            read_current(&txn.open_table(OBJECTS).map_err(Error::meta)?, bucket, key)
        })
    }

    fn inline(&self, id: DataId, len: u64, replica_hint: usize) -> Result<Option<Vec<u8>>> {
        // Spread over the replicas that hold every acknowledged write.
        let acked = self.acked_and_current()?;
        let count = self.current(acked).count().max(1);
        let Some(r) = self
            .current(acked)
            .nth(replica_hint % count)
            .or_else(|| self.current(acked).next())
        else {
            return Err(Error::QuorumLost {
                needed: 1,
                available: 0,
            });
        };
        let txn = r.db.begin_read().map_err(Error::meta)?;
        read_inline(
            &txn.open_table(INLINE).map_err(Error::meta)?,
            &txn.open_table(INLINE_TAIL).map_err(Error::meta)?,
            id,
            len,
        )
    }

    fn replica_count(&self) -> usize {
        self.replicas
            .iter()
            .filter(|r| r.online.load(Ordering::Relaxed))
            .count()
    }

    fn scan(
        &self,
        bucket: &str,
        start: Bound<&[u8]>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord)>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let t = txn.open_table(OBJECTS).map_err(Error::meta)?;
            let lower = match start {
                Bound::Included(k) => Bound::Included((bucket, k)),
                Bound::Excluded(k) => Bound::Excluded((bucket, k)),
                Bound::Unbounded => Bound::Included((bucket, &b""[..])),
            };
            let mut out = Vec::new();
            for item in t
                .range::<(&str, &[u8])>((lower, Bound::Unbounded))
                .map_err(Error::meta)?
            {
                let (k, v) = item.map_err(Error::meta)?;
                let (b, key) = k.value();
                if b != bucket || out.len() >= limit {
                    break;
                }
                let key = String::from_utf8(key.to_vec()).map_err(Error::meta)?;
                out.push((key, decode_object(v.value())?));
            }
            Ok(out)
        })
    }

    fn version(
        &self,
        bucket: &str,
        key: &str,
        version: VersionKey,
    ) -> Result<Option<ObjectRecord>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let versions = txn.open_table(VERSIONS).map_err(Error::meta)?;
            let objects = txn.open_table(OBJECTS).map_err(Error::meta)?;
            read_version(&versions, &objects, bucket, key, version)
        })
    }

    fn null_version(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let nulls = txn.open_table(NULLS).map_err(Error::meta)?;
            let versions = txn.open_table(VERSIONS).map_err(Error::meta)?;
            let objects = txn.open_table(OBJECTS).map_err(Error::meta)?;
            read_null_version(&nulls, &versions, &objects, bucket, key)
        })
    }

    fn scan_versions(
        &self,
        bucket: &str,
        start: Bound<(&[u8], VersionKey)>,
        limit: usize,
    ) -> Result<Vec<(String, ObjectRecord)>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let objects = txn.open_table(OBJECTS).map_err(Error::meta)?;
            let versions = txn.open_table(VERSIONS).map_err(Error::meta)?;
            scan_versions(&objects, &versions, bucket, start, limit)
        })
    }

    fn upload(&self, bucket: &str, key: &str, upload_id: &str) -> Result<Option<UploadRecord>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let t = txn.open_table(UPLOADS).map_err(Error::meta)?;
            t.get((bucket, key.as_bytes(), upload_id))
                .map_err(Error::meta)?
                .map(|v| decode_upload(v.value()))
                .transpose()
        })
    }

    fn parts(&self, upload_id: &str, after: u32, limit: usize) -> Result<Vec<(u32, PartRecord)>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let t = txn.open_table(PARTS).map_err(Error::meta)?;
            let mut out = Vec::new();
            for item in t
                .range::<(&str, u32)>((Bound::Excluded((upload_id, after)), Bound::Unbounded))
                .map_err(Error::meta)?
            {
                let (k, v) = item.map_err(Error::meta)?;
                let (id, n) = k.value();
                if id != upload_id || out.len() >= limit {
                    break;
                }
                out.push((n, decode_part(v.value())?));
            }
            Ok(out)
        })
    }

    fn uploads(
        &self,
        bucket: &str,
        after: Option<(&[u8], &str)>,
        limit: usize,
    ) -> Result<Vec<(String, String, UploadRecord)>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let t = txn.open_table(UPLOADS).map_err(Error::meta)?;
            let lower = match after {
                Some((k, id)) => Bound::Excluded((bucket, k, id)),
                None => Bound::Included((bucket, &b""[..], "")),
            };
            let mut out = Vec::new();
            for item in t
                .range::<(&str, &[u8], &str)>((lower, Bound::Unbounded))
                .map_err(Error::meta)?
            {
                let (k, v) = item.map_err(Error::meta)?;
                let (b, key, id) = k.value();
                if b != bucket || out.len() >= limit {
                    break;
                }
                let key = String::from_utf8(key.to_vec()).map_err(Error::meta)?;
                out.push((key, id.to_owned(), decode_upload(v.value())?));
            }
            Ok(out)
        })
    }

    fn gc_pending(&self, limit: usize) -> Result<Vec<(DataId, i64)>> {
        self.with_replica(|db| {
            let txn = db.begin_read().map_err(Error::meta)?;
            let t = txn.open_table(GC).map_err(Error::meta)?;
            let mut out = Vec::new();
            for item in t.iter().map_err(Error::meta)?.take(limit) {
                let (k, v) = item.map_err(Error::meta)?;
                if let Ok(id) = <[u8; 16]>::try_from(k.value()) {
                    out.push((DataId(id), v.value()));
                }
            }
            Ok(out)
        })
    }

    fn commit(&self, batch: Batch) -> Result<Applied> {
        let (reply, answer) = mpsc::sync_channel(1);
        self.submit
            .send(Pending {
                batch,
                reply: Reply::Blocking(reply),
            })
            .map_err(|_| Error::Meta("metadata committer stopped".into()))?;
        answer
            .recv()
            .map_err(|_| Error::Meta("metadata committer stopped".into()))?
    }
}

struct Committer {
    replicas: Arc<Vec<Replica>>,
    acked: Acked,
    write_quorum: usize,
    fsync: bool,
    /// Number of the last group handed to the replicas.
    groups: u64,
    /// The replicas' commit sequence number when the store opened (equal on all of them after the resync).
    first_seq: u64,
    /// Per replica, groups handed to it whose outcome has not come back.
    in_flight: Vec<usize>,
}

/// One group of batches, handed to every online replica's thread.
struct GroupJob {
    /// Its number, counting from 1 since the store opened.
    group: u64,
    batches: Vec<Batch>,
    now: i64,
    /// `(now, batches)` encoded once for every replica's log.
    record: Vec<u8>,
    /// The log sequence number every replica gives this group (they all start at the same one and advance
    /// one per group, or go offline) and the record's hash under it, computed once; None without fsync,
    /// which keeps no log. A replica at another number hashes the record itself.
    logged: Option<(u64, blake3::Hash)>,
    /// The replicas that apply this group at once (see [`EAGER`]).
    eager: Vec<usize>,
}

/// What the committer hands a replica's thread.
enum Job {
    /// A group to log, and to apply at once if it names the replica eager.
    Group(Arc<GroupJob>),
    /// Apply every group held, and answer with the per-batch outcomes of this one (the last handed out): asked
    /// of a lazy replica when every eager replica of the group failed before answering.
    Outcomes(u64),
}

/// A replica's result for one group: its index, the group's number and, once it logged the group, the
/// per-batch outcomes if it applied the group too (None from a lazy replica).
type ReplicaOutcome = (usize, u64, Result<Option<Outcomes>>);

/// A group's per-batch outcomes, in order.
type Outcomes = Vec<Result<Applied>>;

/// The group number of the message a replica's thread sends as it ends (groups count from 1).
const GONE: u64 = 0;

/// Sends [`GONE`] when a replica's thread ends.
struct Gone {
    index: usize,
    done: mpsc::Sender<ReplicaOutcome>,
}

impl Drop for Gone {
    fn drop(&mut self) {
        // At close the committer may be gone already: nobody waits then.
        drop(self.done.send((
            self.index,
            GONE,
            Err(Error::Meta("replica thread ended".into())),
        )));
    }
}

impl Committer {
    fn run(mut self, queue: mpsc::Receiver<Pending>, wals: Vec<(Wal, u64)>) {
        let (done_tx, done) = mpsc::channel::<ReplicaOutcome>();
        self.first_seq = wals.iter().map(|(_, seq)| *seq).max().unwrap_or(0);
        let appliers = self.start_appliers(&done_tx, wals);
        // Only the appliers hold senders now: `done` reports it when none is left.
        drop(done_tx);
        while let Ok(first) = queue.recv() {
            let mut group = vec![first];
            while group.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(p) => group.push(p),
                    Err(_) => break,
                }
            }
            let (batches, replies): (Vec<Batch>, Vec<Reply>) =
                group.into_iter().map(|p| (p.batch, p.reply)).unzip();
            match self.commit_group(&appliers, &done, batches) {
                Ok(per_batch) => {
                    for (reply, outcome) in replies.into_iter().zip(per_batch) {
                        reply.send(outcome);
                    }
                }
                Err(e) => {
                    let msg = e.to_string();
                    for reply in replies {
                        let err = match &e {
                            Error::QuorumLost { needed, available } => Error::QuorumLost {
                                needed: *needed,
                                available: *available,
                            },
                            _ => Error::Meta(msg.clone()),
                        };
                        reply.send(Err(err));
                    }
                }
            }
        }
        // Store closing: let the replicas that lag finish their groups and checkpoint rather than stop them
        // mid-way (which would leave them to catch up at the next start), and wait for every replica's thread
        // to end (`done` fails once none is left).
        drop(appliers);
        while let Ok(outcome) = done.recv() {
            self.settle(outcome);
        }
    }

    /// Starts one thread per replica, kept for the life of the store: spawning them for every group cost
    /// more CPU than a small group's commit. `None` where a thread could not start (that replica is offline).
    fn start_appliers(
        &self,
        done: &mpsc::Sender<ReplicaOutcome>,
        wals: Vec<(Wal, u64)>,
    ) -> Vec<Option<mpsc::Sender<Job>>> {
        wals.into_iter()
            .enumerate()
            .map(|(i, (wal, seq))| {
                let (tx, rx) = mpsc::channel::<Job>();
                let applier = Applier::new(self.replicas.clone(), i, wal, seq, self.fsync);
                let done = done.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("strata-meta-{i}"))
                    .spawn(move || {
                        // Reports the thread's end however it ends (a panic included), so the committer never
                        // waits for groups this replica will not answer.
                        let _gone = Gone {
                            index: i,
                            done: done.clone(),
                        };
                        // Locals drop before captures, and in reverse: bound here, after `_gone`, the job
                        // channel closes before `_gone` reports the end even when `run` panics, so no job can
                        // be handed to this replica after the committer has settled its end.
                        let (mut applier, rx, done) = (applier, rx, done);
                        applier.run(&rx, &done);
                        // Before `_gone` reports the end: the replica's files are released by then.
                        drop((applier, rx, done));
                    });
                match spawned {
                    Ok(_) => Some(tx),
                    Err(e) => {
                        tracing::error!(disk = i, error = %e, "cannot start the metadata replica's thread; replica offline");
                        self.replicas[i].online.store(false, Ordering::Relaxed);
                        None
                    }
                }
            })
            .collect()
    }

    /// Applies the group on every online replica in parallel and returns the per-batch outcomes once a write
    /// quorum logged it (every replica computes the same ones). Replicas still working on it, or on earlier
    /// groups, finish in the background; their outcomes are collected by later calls.
    fn commit_group(
        &mut self,
        appliers: &[Option<mpsc::Sender<Job>>],
        done: &mpsc::Receiver<ReplicaOutcome>,
        batches: Vec<Batch>,
    ) -> Result<Vec<Result<Applied>>> {
        // A replica that fell MAX_LAG groups behind is waited for here, before it is handed another group.
        while let Some(i) = (0..self.replicas.len()).find(|&i| self.in_flight[i] >= MAX_LAG) {
            let Ok(outcome) = done.recv() else {
                self.take_offline(i, "its thread is gone");
                continue;
            };
            self.settle(outcome);
        }
        let online: Vec<usize> = (0..self.replicas.len())
            .filter(|&i| self.replicas[i].online.load(Ordering::Relaxed) && appliers[i].is_some())
            .collect();
        if online.len() < self.write_quorum {
            return Err(Error::QuorumLost {
                needed: self.write_quorum,
                available: online.len(),
            });
        }
        let now = chrono::Utc::now().timestamp_millis();
        let record = postcard::to_stdvec(&(now, &batches))
            .map_err(|e| Error::Meta(format!("encoding a metadata log record: {e}")))?;
        self.groups += 1;
        let group = self.groups;
        let seq = self.first_seq + group;
        let logged = self.fsync.then(|| (seq, wal::record_hash(seq, &record)));
        let eager: Vec<usize> = online.iter().copied().take(EAGER).collect();
        let job = Arc::new(GroupJob {
            group,
            batches,
            now,
            record,
            logged,
            eager,
        });
        for &i in &online {
            let delivered = appliers[i]
                .as_ref()
                .is_some_and(|tx| tx.send(Job::Group(job.clone())).is_ok());
            if delivered {
                self.in_flight[i] += 1;
            } else {
                self.take_offline(i, "its thread is gone");
            }
        }
        // Replicas that logged the group, and the outcomes of the first that applied it.
        let mut logged = vec![false; self.replicas.len()];
        let mut ok = 0;
        let mut first = None;
        // Replicas expected to answer with the outcomes: the eager ones, then any lazy one asked for them.
        let mut answering = job.eager.clone();
        // Whether replica `i` still owes an answer: handed a group (or a request) it has not answered. Not its
        // `online` flag: a replica that goes offline by itself may have answers on their way (one that logged a
        // group and failed its apply answers, then goes offline), and every replica's thread sends something
        // for each job, or its end (`GONE`) which settles the rest; one the committer took offline owes
        // nothing more (`take_offline`).
        let owes = |c: &Self, i: usize| c.in_flight[i] > 0;
        loop {
            if ok >= self.write_quorum && first.is_some() {
                break;
            }
            let owing = online
                .iter()
                .filter(|&&i| !logged[i] && owes(self, i))
                .count();
            if ok + owing < self.write_quorum {
                break;
            }
            if first.is_none() && !answering.iter().any(|&i| owes(self, i)) {
                // Every replica that was to apply the group failed before answering. A lazy one that logged it
                // holds it (with everything before it, this being the last group handed out): ask it.
                let asked = online.iter().copied().find(|&i| {
                    logged[i]
                        && !answering.contains(&i)
                        && self.replicas[i].online.load(Ordering::Relaxed)
                        && appliers[i]
                            .as_ref()
                            .is_some_and(|tx| tx.send(Job::Outcomes(group)).is_ok())
                });
                if let Some(i) = asked {
                    self.in_flight[i] += 1;
                    answering.push(i);
                } else if !online
                    .iter()
                    .any(|&i| !logged[i] && !answering.contains(&i) && owes(self, i))
                {
                    break;
                }
                // Otherwise the failures came back before any lazy replica's log did: wait for one, and ask
                // it then. Giving up here would report a group as failed that the lazy ones go on to apply.
            }
            let Ok(outcome) = done.recv() else { break };
            if let Some((i, _, per_batch)) = self.settle(outcome).filter(|(_, g, _)| *g == group) {
                if !logged[i] {
                    logged[i] = true;
                    ok += 1;
                }
                if let Some(per_batch) = per_batch {
                    first.get_or_insert(per_batch);
                }
            }
        }
        if ok < self.write_quorum {
            return Err(Error::QuorumLost {
                needed: self.write_quorum,
                available: ok,
            });
        }
        // Logged by a write quorum, so every replica applies it, but no replica that applied it could answer:
        // its outcomes are unknown.
        let first = first.ok_or_else(|| {
            Error::Meta(
                "no replica could give the group's outcome; it may have been applied".into(),
            )
        })?;
        self.acked.store(group, Ordering::Release);
        Ok(first)
    }

    /// Records one replica's outcome; a replica that failed goes offline. Returns the group's number and
    /// per-batch outcomes when it succeeded.
    fn settle(
        &mut self,
        (i, group, outcome): ReplicaOutcome,
    ) -> Option<(usize, u64, Option<Outcomes>)> {
        if group == GONE {
            if self.in_flight[i] > 0 {
                self.take_offline(i, "its thread ended with groups unanswered");
            }
            return None;
        }
        self.in_flight[i] = self.in_flight[i].saturating_sub(1);
        match outcome {
            Ok(per_batch) => Some((i, group, per_batch)),
            Err(e) => {
                self.take_offline(i, &e.to_string());
                None
            }
        }
    }

    fn take_offline(&mut self, i: usize, why: &str) {
        tracing::error!(
            disk = i,
            error = why,
            "metadata replica offline until restart"
        );
        self.replicas[i].online.store(false, Ordering::Relaxed);
        // Its thread stops at a failure, so nothing more comes back from it.
        self.in_flight[i] = 0;
    }
}

/// Log bytes after which a replica checkpoints: bounds the replay at start and the pages redb holds unsaved.
/// Measured on 4 KiB PUTs at c32 (server CPU per 1k PUTs): 1 MiB 0.79 s, 4 MiB 0.69-0.77 s, 16 MiB 0.85 s
/// (with 16 MiB redb's write buffer overflows and evicts pages one by one before the checkpoint).
const CHECKPOINT_BYTES: u64 = 4 << 20;
/// A replica with unsaved commits checkpoints after this long without a group.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Log bytes before replica `index` of `count` first checkpoints: replicas start a fraction of a checkpoint
/// apart and stay so (they log the same groups), because a checkpoint stalls the group it falls in, and all at
/// once on shared cores and disks stall it far longer than one.
fn staggered(index: usize, count: usize) -> u64 {
    CHECKPOINT_BYTES * (index as u64 + 1) / count.max(1) as u64
}

/// One replica's thread: logs each group (one durable append, for every group waiting when it fell behind),
/// applies it to redb without durability (at once if the group names it eager, else later with others, see
/// [`EAGER`]), and checkpoints now and then (see [`super::wal`]).
struct Applier {
    replicas: Arc<Vec<Replica>>,
    index: usize,
    wal: Wal,
    /// The replica's commit sequence number: groups applied since it was created.
    seq: u64,
    /// The sequence number of the last group logged: `seq` plus the groups in `unapplied`.
    logged_seq: u64,
    fsync: bool,
    /// Log bytes (counted without fsync too) left before the next checkpoint.
    until_checkpoint: u64,
    /// Whether a group was logged since the last checkpoint.
    unsaved: bool,
    /// Groups logged but not yet applied (a lazy replica's), in order, and their records' bytes.
    unapplied: Vec<Arc<GroupJob>>,
    unapplied_bytes: u64,
    /// The per-batch outcomes of the last group applied after its commit answered (see [`Job::Outcomes`]).
    last_outcomes: Option<(u64, Outcomes)>,
}

impl Applier {
    fn new(replicas: Arc<Vec<Replica>>, index: usize, wal: Wal, seq: u64, fsync: bool) -> Self {
        let count = replicas.len();
        Self {
            replicas,
            index,
            wal,
            seq,
            logged_seq: seq,
            fsync,
            until_checkpoint: staggered(index, count),
            unsaved: false,
            unapplied: Vec::new(),
            unapplied_bytes: 0,
            last_outcomes: None,
        }
    }

    fn run(&mut self, jobs: &mpsc::Receiver<Job>, done: &mpsc::Sender<ReplicaOutcome>) {
        let mut taken: Vec<Arc<GroupJob>> = Vec::with_capacity(MAX_LAG);
        loop {
            let wait = if self.unapplied.is_empty() {
                CHECKPOINT_IDLE
            } else {
                LAZY_IDLE
            };
            let mut asked = None;
            match jobs.recv_timeout(wait) {
                Ok(Job::Outcomes(group)) => asked = Some(group),
                Ok(Job::Group(job)) => {
                    // A replica that fell behind takes every group waiting for it at once: one durable log
                    // write and one redb transaction for all of them.
                    taken.clear();
                    taken.push(job);
                    while taken.len() < MAX_LAG {
                        match jobs.try_recv() {
                            Ok(Job::Group(job)) => taken.push(job),
                            Ok(Job::Outcomes(group)) => {
                                asked = Some(group);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let logged_before = self.logged_seq;
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        self.commit(&taken)
                    }))
                    .unwrap_or_else(|_| Err(Error::Meta("replica panicked".into())));
                    match outcome {
                        Ok(per_group) => {
                            for (job, per_batch) in taken.drain(..).zip(per_group) {
                                if done.send((self.index, job.group, Ok(per_batch))).is_err() {
                                    return;
                                }
                            }
                        }
                        Err(e)
                            if self.fsync
                                && self.logged_seq == logged_before + taken.len() as u64 =>
                        {
                            // Logged durably, then the apply failed: the groups are this replica's as much as
                            // a lazy replica's (a restart replays them), so they count toward the quorum. It
                            // goes offline, so no later group names it eager, and answers them without
                            // outcomes, as a lazy replica does (the committer then asks another for them, and
                            // waits for these answers whatever the flag says). Without fsync there is no log:
                            // the groups die with the thread, and the error below is the answer.
                            self.replicas[self.index]
                                .online
                                .store(false, Ordering::Relaxed);
                            for job in taken.drain(..) {
                                drop(done.send((self.index, job.group, Ok(None))));
                            }
                            tracing::error!(
                                disk = self.index,
                                error = %e,
                                "metadata replica failed to apply groups it logged; offline until restart"
                            );
                            return;
                        }
                        Err(e) => {
                            // A failed replica is offline until restart: it must not go on (or checkpoint)
                            // with a log that misses a group. The committer takes it offline at this first
                            // failure, reported against the first group taken (the transaction held them all),
                            // and expects nothing more from it.
                            drop(done.send((self.index, taken[0].group, Err(e))));
                            return;
                        }
                    }
                    // After the outcomes are sent, so the groups need not wait for this replica's apply or
                    // checkpoint.
                    if asked.is_none()
                        && self.unapplied_bytes >= LAZY_BYTES
                        && !self.apply_unapplied(done)
                    {
                        return;
                    }
                    if self.until_checkpoint == 0 && !self.checkpoint_if_unsaved(done) {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    let ok = if self.unapplied.is_empty() {
                        self.checkpoint_if_unsaved(done)
                    } else {
                        self.apply_unapplied(done)
                    };
                    if !ok {
                        return;
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Shutting down: leave nothing to replay.
                    self.checkpoint_if_unsaved(done);
                    return;
                }
            }
            if let Some(group) = asked {
                if !self.apply_unapplied(done) {
                    return;
                }
                // None if this replica applied the group at once after all: it answered with them then.
                let outcomes = self
                    .last_outcomes
                    .take()
                    .filter(|(applied, _)| *applied == group)
                    .map(|(_, outcomes)| outcomes);
                if done.send((self.index, group, Ok(outcomes))).is_err() {
                    return;
                }
            }
        }
    }

    /// Logs the groups, then (if the last names this replica eager) applies them with any logged before that
    /// wait: readers of this replica never see a group its log does not hold. Returns, per group in order, its
    /// per-batch outcomes if it was applied.
    fn commit(&mut self, jobs: &[Arc<GroupJob>]) -> Result<Vec<Option<Outcomes>>> {
        #[cfg(test)]
        if self.replicas[self.index]
            .fail_next_group
            .swap(false, Ordering::Relaxed)
        {
            return Err(Error::Meta("injected failure".into()));
        }
        let first = self.logged_seq + 1;
        if self.fsync {
            let entries: Vec<wal::Entry<'_>> = (first..)
                .zip(jobs)
                .map(|(seq, job)| wal::Entry {
                    seq,
                    payload: &job.record,
                    hash: match job.logged {
                        Some((logged_seq, hash)) if logged_seq == seq => hash,
                        _ => wal::record_hash(seq, &job.record),
                    },
                })
                .collect();
            self.wal.append_all(&entries).map_err(Error::Io)?;
        }
        self.logged_seq += jobs.len() as u64;
        self.unsaved = true;
        let logged: u64 = jobs.iter().map(|j| j.record.len() as u64).sum();
        self.until_checkpoint = self.until_checkpoint.saturating_sub(logged);
        self.unapplied.extend(jobs.iter().cloned());
        self.unapplied_bytes += logged;
        let eager = jobs
            .last()
            .is_some_and(|job| job.eager.contains(&self.index));
        if !eager {
            return Ok(jobs.iter().map(|_| None).collect());
        }
        let mut outcomes = self.apply()?;
        let taken = outcomes.split_off(outcomes.len() - jobs.len());
        Ok(taken.into_iter().map(Some).collect())
    }

    /// Applies every logged group not applied yet, in one transaction; returns their per-batch outcomes.
    fn apply(&mut self) -> Result<Vec<Outcomes>> {
        let Some(last) = self.unapplied.last().map(|job| job.group) else {
            return Ok(Vec::new());
        };
        #[cfg(test)]
        if self.replicas[self.index]
            .fail_next_apply
            .swap(false, Ordering::Relaxed)
        {
            return Err(Error::Meta("injected apply failure".into()));
        }
        let db = &self.replicas[self.index].db;
        let groups: Vec<(&[Batch], i64)> = self
            .unapplied
            .iter()
            .map(|j| (&j.batches[..], j.now))
            .collect();
        let (outcomes, reached) = apply_groups(db, &groups)?;
        let seq = self.seq + groups.len() as u64;
        if reached != seq {
            return Err(Error::Meta(format!(
                "commit reached sequence number {reached}, {seq} expected"
            )));
        }
        self.seq = seq;
        self.replicas[self.index]
            .applied
            .store(last, Ordering::Release);
        self.unapplied.clear();
        self.unapplied_bytes = 0;
        Ok(outcomes)
    }

    /// [`Self::apply`] outside a group's commit: a failure is reported against the first group held and
    /// takes the replica offline until restart, like a failed commit; false then, and the thread must stop.
    fn apply_unapplied(&mut self, done: &mpsc::Sender<ReplicaOutcome>) -> bool {
        let Some(first) = self.unapplied.first().map(|job| job.group) else {
            return true;
        };
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.apply()))
            .unwrap_or_else(|_| Err(Error::Meta("replica panicked".into())));
        match outcome {
            Ok(mut outcomes) => {
                let last = self.replicas[self.index].applied.load(Ordering::Acquire);
                self.last_outcomes = outcomes.pop().map(|o| (last, o));
                true
            }
            Err(e) => {
                // Offline at once, so the committer names it eager for no further group; it learns why from
                // the message.
                self.replicas[self.index]
                    .online
                    .store(false, Ordering::Relaxed);
                drop(done.send((self.index, first, Err(e))));
                false
            }
        }
    }

    /// Makes redb durable and starts the log again. False when that failed: the replica is then offline until
    /// restart (the commit may have reached the disk without the log restarting, and the next start sorts that
    /// out from the log or a peer), and its thread must stop.
    fn checkpoint_if_unsaved(&mut self, done: &mpsc::Sender<ReplicaOutcome>) -> bool {
        if !self.unsaved {
            return true;
        }
        // The log starts again below: every group it holds must be in redb first.
        if !self.apply_unapplied(done) {
            return false;
        }
        let idle = self.until_checkpoint > 0;
        self.until_checkpoint = CHECKPOINT_BYTES;
        match checkpoint(&self.replicas[self.index].db) {
            Ok(()) => {
                self.wal.restart();
                self.unsaved = false;
                if idle {
                    // After a pause every replica checkpointed at once: spread them out again.
                    self.until_checkpoint = staggered(self.index, self.replicas.len());
                }
            }
            Err(e) => {
                tracing::error!(disk = self.index, error = %e, "metadata checkpoint failed; replica offline until restart");
                self.replicas[self.index]
                    .online
                    .store(false, Ordering::Relaxed);
                return false;
            }
        }
        true
    }
}

/// Refuses a version that carries a lock (retention or legal hold) in a bucket without object lock. The engine
/// refuses those too, but from a read made before the commit; checked here, inside the commit, it makes this
/// hold: no version of a bucket without object lock holds a lock (object lock, once on, stays on, and a bucket
/// is deleted only when empty), which lets [`Tables::check_null_removable`] skip its lookups there.
fn check_lock_allowed(bucket: &BucketRecord, record: &ObjectRecord) -> Result<()> {
    if bucket.object_lock.is_none() && record.lock != lock::VersionLock::default() {
        return Err(Error::NoObjectLockConfiguration);
    }
    Ok(())
}

/// Key of an [`INLINE_TAIL`] row.
fn inline_tail_key(id: DataId, chunk: u16) -> [u8; INLINE_TAIL_KEY] {
    let mut k = [0; INLINE_TAIL_KEY];
    k[..16].copy_from_slice(&id.0);
    k[16..].copy_from_slice(&chunk.to_be_bytes());
    k
}

/// An inline object's bytes, `len` of them: its head row, then, when the head is a whole chunk and the object
/// longer, its tail rows (a point lookup each, cheaper in redb than a range). A row missing or of the wrong length
/// gives bytes that fail the caller's hash check.
fn read_inline(
    head: &impl ReadableTable<&'static [u8], &'static [u8]>,
    tail: &impl ReadableTable<&'static [u8], &'static [u8]>,
    id: DataId,
    len: u64,
) -> Result<Option<Vec<u8>>> {
    let Some(first) = head.get(&id.0[..]).map_err(Error::meta)? else {
        return Ok(None);
    };
    let first = first.value();
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    if first.len() != INLINE_CHUNK || len <= INLINE_CHUNK {
        return Ok(Some(first.to_vec()));
    }
    let mut bytes = Vec::with_capacity(len);
    bytes.extend_from_slice(first);
    let chunks = len.div_ceil(INLINE_CHUNK);
    for n in 1..chunks {
        let Ok(n) = u16::try_from(n) else { break };
        match tail.get(&inline_tail_key(id, n)[..]).map_err(Error::meta)? {
            Some(chunk) => bytes.extend_from_slice(chunk.value()),
            None => break,
        }
    }
    Ok(Some(bytes))
}

/// Key of the objects and nulls tables: bucket, object key.
type KeyRow = (&'static str, &'static [u8]);

/// A key's current record (its objects row). These readers serve both a read transaction's tables and a
/// write transaction's ([`Tables`]), so the lone-version rule is written once.
fn read_current(
    objects: &impl ReadableTable<KeyRow, &'static [u8]>,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRecord>> {
    objects
        .get((bucket, key.as_bytes()))
        .map_err(Error::meta)?
        .map(|v| decode_object(v.value()))
        .transpose()
}

/// One version of a key, lone null versions included.
fn read_version(
    versions: &impl ReadableTable<VersionRow<'static>, &'static [u8]>,
    objects: &impl ReadableTable<KeyRow, &'static [u8]>,
    bucket: &str,
    key: &str,
    v: VersionKey,
) -> Result<Option<ObjectRecord>> {
    if let Some(r) = versions
        .get((bucket, key.as_bytes(), &v.0[..]))
        .map_err(Error::meta)?
    {
        return decode_object(r.value()).map(Some);
    }
    // A lone null version: the current record, when it is this version.
    Ok(
        read_current(objects, bucket, key)?
            .filter(|c| c.version_key == v && c.version_id.is_none()),
    )
}

/// The version key of a key's `null` version in the nulls table (a lone one has none).
fn read_null_row(
    nulls: &impl ReadableTable<KeyRow, &'static [u8]>,
    bucket: &str,
    key: &str,
) -> Result<Option<VersionKey>> {
    Ok(nulls
        .get((bucket, key.as_bytes()))
        .map_err(Error::meta)?
        .and_then(|v| <[u8; 16]>::try_from(v.value()).ok())
        .map(VersionKey))
}

/// A key's `null` version, lone or not.
fn read_null_version(
    nulls: &impl ReadableTable<KeyRow, &'static [u8]>,
    versions: &impl ReadableTable<VersionRow<'static>, &'static [u8]>,
    objects: &impl ReadableTable<KeyRow, &'static [u8]>,
    bucket: &str,
    key: &str,
) -> Result<Option<ObjectRecord>> {
    match read_null_row(nulls, bucket, key)? {
        Some(v) => read_version(versions, objects, bucket, key, v),
        // Every null version outside the nulls table is lone, hence current.
        None => Ok(read_current(objects, bucket, key)?.filter(|c| c.version_id.is_none())),
    }
}

/// Up to `limit` versions of `bucket` from `start` on, in (key, version key) order: a key's rows of the versions
/// table, or its lone null version, which only the objects table holds. Walks the objects table beside the
/// versions table: every key with a version has its current record there.
fn scan_versions(
    objects: &redb::ReadOnlyTable<(&'static str, &'static [u8]), &'static [u8]>,
    versions: &redb::ReadOnlyTable<VersionRow<'static>, &'static [u8]>,
    bucket: &str,
    start: Bound<(&[u8], VersionKey)>,
    limit: usize,
) -> Result<Vec<(String, ObjectRecord)>> {
    let (start_key, lower) = match &start {
        Bound::Included((k, v)) => (*k, Bound::Included((bucket, *k, &v.0[..]))),
        Bound::Excluded((k, v)) => (*k, Bound::Excluded((bucket, *k, &v.0[..]))),
        Bound::Unbounded => (&b""[..], Bound::Included((bucket, &b""[..], &b""[..]))),
    };
    let after_start = |key: &[u8], v: &VersionKey| match &start {
        Bound::Included((k, sv)) => (key, &v.0[..]) >= (*k, &sv.0[..]),
        Bound::Excluded((k, sv)) => (key, &v.0[..]) > (*k, &sv.0[..]),
        Bound::Unbounded => true,
    };
    let mut rows = versions
        .range::<VersionRow<'_>>((lower, Bound::Unbounded))
        .map_err(Error::meta)?;
    let mut pending = next_version_row(&mut rows, bucket)?;
    let mut out = Vec::new();
    let key_name = |key: Vec<u8>| String::from_utf8(key).map_err(Error::meta);
    for item in objects
        .range::<(&str, &[u8])>((bucket, start_key)..)
        .map_err(Error::meta)?
    {
        let (k, v) = item.map_err(Error::meta)?;
        let (b, key) = k.value();
        if b != bucket || out.len() >= limit {
            break;
        }
        let mut has_rows = false;
        while let Some((row_key, _)) = &pending
            && row_key.as_slice() <= key
        {
            if out.len() >= limit {
                return Ok(out);
            }
            has_rows |= row_key.as_slice() == key;
            if let Some((row_key, record)) = pending.take() {
                out.push((key_name(row_key)?, record));
            }
            pending = next_version_row(&mut rows, bucket)?;
        }
        if has_rows || out.len() >= limit {
            continue;
        }
        // No versions row in range: the record is lone, or (the start key only) its versions all lie before
        // `start`, and then so does the record, a copy of the newest of them.
        let current = decode_object(v.value())?;
        if current.version_id.is_none() && after_start(key, &current.version_key) {
            out.push((key_name(key.to_vec())?, current));
        }
    }
    // Versions rows of keys without a current record: no write leaves any, but they are versions all the same.
    while out.len() < limit
        && let Some((row_key, record)) = pending.take()
    {
        out.push((key_name(row_key)?, record));
        pending = next_version_row(&mut rows, bucket)?;
    }
    Ok(out)
}

/// The next row of a versions range while it is in `bucket`: the object key and the record.
fn next_version_row(
    rows: &mut redb::Range<'_, VersionRow<'static>, &'static [u8]>,
    bucket: &str,
) -> Result<Option<(Vec<u8>, ObjectRecord)>> {
    let Some(item) = rows.next() else {
        return Ok(None);
    };
    let (k, v) = item.map_err(Error::meta)?;
    let (b, key, _) = k.value();
    if b != bucket {
        return Ok(None);
    }
    Ok(Some((key.to_vec(), decode_object(v.value())?)))
}

/// Applies groups, each `(batches, now)`, in order in one redb transaction without durability (the log or a
/// later checkpoint provides it), each advancing the commit sequence number by one; returns each group's
/// per-batch outcomes and the number reached. Deterministic: replaying the logged groups one transaction each
/// on the state they were first applied to gives the same result, since nothing depends on where a
/// transaction ends.
fn apply_groups(
    db: &Database,
    groups: &[(&[Batch], i64)],
) -> Result<(Vec<Vec<Result<Applied>>>, u64)> {
    let mut txn = db.begin_write().map_err(Error::meta)?;
    txn.set_durability(Durability::None).map_err(Error::meta)?;
    let mut outcomes = Vec::with_capacity(groups.len());
    let reached;
    {
        let mut buckets = txn.open_table(BUCKETS).map_err(Error::meta)?;
        let mut objects = txn.open_table(OBJECTS).map_err(Error::meta)?;
        let mut inline = txn.open_table(INLINE).map_err(Error::meta)?;
        let mut inline_tail = txn.open_table(INLINE_TAIL).map_err(Error::meta)?;
        let mut gc = txn.open_table(GC).map_err(Error::meta)?;
        let mut uploads = txn.open_table(UPLOADS).map_err(Error::meta)?;
        let mut parts = txn.open_table(PARTS).map_err(Error::meta)?;
        let mut versions = txn.open_table(VERSIONS).map_err(Error::meta)?;
        let mut nulls = txn.open_table(NULLS).map_err(Error::meta)?;
        let mut state = txn.open_table(STATE).map_err(Error::meta)?;
        let mut bucket_configs = txn.open_table(BUCKET_CONFIGS).map_err(Error::meta)?;
        let mut users = txn.open_table(USERS).map_err(Error::meta)?;
        let mut tables = Tables {
            bucket_configs: &mut bucket_configs,
            users: &mut users,
            buckets: &mut buckets,
            objects: &mut objects,
            inline: &mut inline,
            inline_tail: &mut inline_tail,
            gc: &mut gc,
            uploads: &mut uploads,
            parts: &mut parts,
            versions: &mut versions,
            nulls: &mut nulls,
        };
        for &(batches, now) in groups {
            let mut per_batch = Vec::with_capacity(batches.len());
            for batch in batches {
                let outcome = match tables.check(batch, now) {
                    Ok(()) => tables.apply(batch, now),
                    Err(e) => Err(e),
                };
                // A storage failure mid-apply would leave a half batch: fail the whole transaction instead.
                if let Err(Error::Meta(m)) = &outcome {
                    return Err(Error::Meta(m.clone()));
                }
                per_batch.push(outcome);
            }
            outcomes.push(per_batch);
        }
        let seq = state
            .get(SEQ)
            .map_err(Error::meta)?
            .map(|v| v.value())
            .unwrap_or(0);
        reached = seq + groups.len() as u64;
        state.insert(SEQ, reached).map_err(Error::meta)?;
    }
    txn.commit().map_err(Error::meta)?;
    Ok((outcomes, reached))
}

struct Tables<'a, 't> {
    bucket_configs: &'a mut redb::Table<'t, (&'static str, &'static str), &'static [u8]>,
    users: &'a mut redb::Table<'t, &'static str, &'static [u8]>,
    buckets: &'a mut redb::Table<'t, &'static str, &'static [u8]>,
    objects: &'a mut redb::Table<'t, (&'static str, &'static [u8]), &'static [u8]>,
    inline: &'a mut redb::Table<'t, &'static [u8], &'static [u8]>,
    inline_tail: &'a mut redb::Table<'t, &'static [u8], &'static [u8]>,
    gc: &'a mut redb::Table<'t, &'static [u8], i64>,
    uploads: &'a mut redb::Table<'t, (&'static str, &'static [u8], &'static str), &'static [u8]>,
    parts: &'a mut redb::Table<'t, (&'static str, u32), &'static [u8]>,
    versions: &'a mut redb::Table<'t, VersionRow<'static>, &'static [u8]>,
    nulls: &'a mut redb::Table<'t, (&'static str, &'static [u8]), &'static [u8]>,
}

impl Tables<'_, '_> {
    fn current(&self, bucket: &str, key: &str) -> Result<Option<ObjectRecord>> {
        read_current(self.objects, bucket, key)
    }

    fn bucket_exists(&self, name: &str) -> Result<bool> {
        Ok(self.buckets.get(name).map_err(Error::meta)?.is_some())
    }

    fn bucket_is_empty(&self, name: &str) -> Result<bool> {
        // Versions include delete markers and old versions: a bucket holding only those is not empty. Lone
        // null versions are only in the objects table.
        let lower = (name, &b""[..], &b""[..]);
        let mut range = self
            .versions
            .range::<(&str, &[u8], &[u8])>(lower..)
            .map_err(Error::meta)?;
        if let Some(item) = range.next()
            && item.map_err(Error::meta)?.0.value().0 == name
        {
            return Ok(false);
        }
        let mut range = self
            .objects
            .range::<(&str, &[u8])>((name, &b""[..])..)
            .map_err(Error::meta)?;
        match range.next() {
            Some(item) => Ok(item.map_err(Error::meta)?.0.value().0 != name),
            None => Ok(true),
        }
    }

    fn bucket_record(&self, name: &str) -> Result<BucketRecord> {
        match self.buckets.get(name).map_err(Error::meta)? {
            Some(v) => decode_bucket(v.value()),
            None => Err(Error::NoSuchBucket),
        }
    }

    /// A new null version replaces the old one: that is a removal, so the lock check applies.
    fn check_null_removable(
        &self,
        b: &BucketRecord,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        now: i64,
    ) -> Result<()> {
        // Without object lock on the bucket no version of it holds a lock (see `check_lock_allowed`): skip the
        // two lookups on every PUT to such a bucket.
        if record.version_id.is_some() || b.object_lock.is_none() {
            return Ok(());
        }
        match read_null_version(self.nulls, self.versions, self.objects, bucket, key)? {
            Some(v) => lock::check_removal(&v.lock, now, false),
            None => Ok(()),
        }
    }

    /// Writes a changed version record in place (and as the current record if it is the current version; a
    /// lone null version is only that).
    fn rewrite_version(&mut self, bucket: &str, key: &str, record: &ObjectRecord) -> Result<()> {
        let encoded = encode_object(record);
        if self.has_version_row(bucket, key, record.version_key)? {
            self.versions
                .insert(
                    (bucket, key.as_bytes(), &record.version_key.0[..]),
                    encoded.as_slice(),
                )
                .map_err(Error::meta)?;
        }
        if self
            .current(bucket, key)?
            .is_some_and(|c| c.version_key == record.version_key)
        {
            self.objects
                .insert((bucket, key.as_bytes()), encoded.as_slice())
                .map_err(Error::meta)?;
        }
        Ok(())
    }

    /// One version, lone null versions included.
    fn version(&self, bucket: &str, key: &str, v: VersionKey) -> Result<Option<ObjectRecord>> {
        read_version(self.versions, self.objects, bucket, key, v)
    }

    fn has_version_row(&self, bucket: &str, key: &str, v: VersionKey) -> Result<bool> {
        Ok(self
            .versions
            .get((bucket, key.as_bytes(), &v.0[..]))
            .map_err(Error::meta)?
            .is_some())
    }

    /// Up to `limit` of the key's rows in the versions table, newest first.
    fn version_rows(&self, bucket: &str, key: &str, limit: usize) -> Result<Vec<ObjectRecord>> {
        let lower = (bucket, key.as_bytes(), &b""[..]);
        let mut rows = Vec::new();
        for item in self
            .versions
            .range::<(&str, &[u8], &[u8])>(lower..)
            .map_err(Error::meta)?
        {
            let (k, v) = item.map_err(Error::meta)?;
            let (b, kk, _) = k.value();
            if b != bucket || kk != key.as_bytes() || rows.len() == limit {
                break;
            }
            rows.push(decode_object(v.value())?);
        }
        Ok(rows)
    }

    /// The version key of a key's `null` version in the nulls table (not a lone one).
    fn null_row(&self, bucket: &str, key: &str) -> Result<Option<VersionKey>> {
        read_null_row(self.nulls, bucket, key)
    }

    /// Points the current record of a key at its newest remaining version, or removes it when none is left.
    /// The version's stored bytes are copied as they are: decoding and encoding them again gave the same
    /// bytes, at a cost on every PUT of every replica.
    fn refresh_current(&mut self, bucket: &str, key: &str) -> Result<()> {
        let lower = (bucket, key.as_bytes(), &b""[..]);
        let mut range = self
            .versions
            .range::<(&str, &[u8], &[u8])>(lower..)
            .map_err(Error::meta)?;
        let newest = match range.next() {
            Some(item) => {
                let (k, v) = item.map_err(Error::meta)?;
                let (b, kk, _) = k.value();
                (b == bucket && kk == key.as_bytes()).then_some(v)
            }
            None => None,
        };
        match newest {
            Some(v) => self
                .objects
                .insert((bucket, key.as_bytes()), v.value())
                .map(drop),
            None => self.objects.remove((bucket, key.as_bytes())).map(drop),
        }
        .map_err(Error::meta)
    }

    /// Adds a version; a null version replaces the previous null one. Returns whether one was replaced.
    ///
    /// A null version that will be its key's only one is written as a lone null version (the objects row
    /// alone); a key's first other version moves a lone null version into the versions and nulls tables.
    fn put_version(
        &mut self,
        bucket: &str,
        key: &str,
        record: &ObjectRecord,
        now: i64,
    ) -> Result<bool> {
        let current = self.current(bucket, key)?;
        let has_current = current.is_some();
        let lone = match current {
            Some(c)
                if c.version_id.is_none()
                    && !self.has_version_row(bucket, key, c.version_key)? =>
            {
                Some(c)
            }
            _ => None,
        };
        let encoded = encode_object(record);
        let mut replaced = false;
        if record.version_id.is_none() {
            let mut old_row = None;
            if let Some(old) = &lone {
                self.retire(old, &record.data_ids(), now)?;
                replaced = true;
            } else if has_current && let Some(old) = self.null_row(bucket, key)? {
                if let Some(old_record) = self.version(bucket, key, old)? {
                    self.retire(&old_record, &record.data_ids(), now)?;
                    replaced = true;
                }
                self.versions
                    .remove((bucket, key.as_bytes(), &old.0[..]))
                    .map_err(Error::meta)?;
                old_row = Some(old);
            }
            let only_version =
                !has_current || lone.is_some() || self.version_rows(bucket, key, 1)?.is_empty();
            if only_version {
                if old_row.is_some() {
                    self.nulls
                        .remove((bucket, key.as_bytes()))
                        .map_err(Error::meta)?;
                }
                self.objects
                    .insert((bucket, key.as_bytes()), encoded.as_slice())
                    .map_err(Error::meta)?;
                return Ok(replaced);
            }
            self.nulls
                .insert((bucket, key.as_bytes()), &record.version_key.0[..])
                .map_err(Error::meta)?;
        } else if let Some(null) = &lone {
            self.versions
                .insert(
                    (bucket, key.as_bytes(), &null.version_key.0[..]),
                    encode_object(null).as_slice(),
                )
                .map_err(Error::meta)?;
            self.nulls
                .insert((bucket, key.as_bytes()), &null.version_key.0[..])
                .map_err(Error::meta)?;
        }
        self.versions
            .insert(
                (bucket, key.as_bytes(), &record.version_key.0[..]),
                encoded.as_slice(),
            )
            .map_err(Error::meta)?;
        self.refresh_current(bucket, key)?;
        Ok(replaced)
    }

    /// Removes a version (retiring its data) and keeps the current pointer on the newest one left.
    fn remove_version(
        &mut self,
        bucket: &str,
        key: &str,
        v: VersionKey,
        now: i64,
    ) -> Result<Option<ObjectRecord>> {
        let Some(old) = self.version(bucket, key, v)? else {
            return Ok(None);
        };
        self.retire(&old, &[], now)?;
        let had_row = self
            .versions
            .remove((bucket, key.as_bytes(), &v.0[..]))
            .map_err(Error::meta)?
            .is_some();
        if !had_row {
            // A lone null version: the key's only one.
            self.objects
                .remove((bucket, key.as_bytes()))
                .map_err(Error::meta)?;
            return Ok(Some(old));
        }
        if self.null_row(bucket, key)? == Some(v) {
            self.nulls
                .remove((bucket, key.as_bytes()))
                .map_err(Error::meta)?;
        }
        self.refresh_current(bucket, key)?;
        self.make_lone_if_only_null(bucket, key)?;
        Ok(Some(old))
    }

    /// Keeps the layout canonical after a removal: a key left with only its null version makes it lone.
    fn make_lone_if_only_null(&mut self, bucket: &str, key: &str) -> Result<()> {
        if let [only] = &self.version_rows(bucket, key, 2)?[..]
            && only.version_id.is_none()
        {
            self.versions
                .remove((bucket, key.as_bytes(), &only.version_key.0[..]))
                .map_err(Error::meta)?;
            self.nulls
                .remove((bucket, key.as_bytes()))
                .map_err(Error::meta)?;
        }
        Ok(())
    }

    fn check_condition(&self, bucket: &str, key: &str, condition: &Condition) -> Result<()> {
        let ok = match condition {
            Condition::None => true,
            Condition::Absent => self
                .current(bucket, key)?
                .is_none_or(|r| r.is_delete_marker()),
            Condition::EtagIs(etag) => self
                .current(bucket, key)?
                .is_some_and(|r| !r.is_delete_marker() && &r.etag == etag),
            Condition::Unchanged(ids) => self
                .current(bucket, key)?
                .is_some_and(|r| &r.data_ids() == ids),
        };
        if ok {
            Ok(())
        } else {
            Err(Error::PreconditionFailed)
        }
    }

    /// Every precondition of the batch, evaluated before anything is written.
    fn check(&self, batch: &Batch, now: i64) -> Result<()> {
        for op in batch {
            match op {
                Op::CreateBucket { name, record } => {
                    if let Some(existing) = self.buckets.get(name.as_str()).map_err(Error::meta)? {
                        let existing = decode_bucket(existing.value())?;
                        return Err(if existing.owner == record.owner {
                            Error::BucketAlreadyOwnedByYou
                        } else {
                            Error::BucketAlreadyExists
                        });
                    }
                }
                Op::DeleteBucket { name } => {
                    if !self.bucket_exists(name)? {
                        return Err(Error::NoSuchBucket);
                    }
                    if !self.bucket_is_empty(name)? {
                        return Err(Error::BucketNotEmpty);
                    }
                }
                Op::PutObject {
                    bucket,
                    key,
                    condition,
                    record,
                    inline,
                } => {
                    let b = self.bucket_record(bucket)?;
                    check_lock_allowed(&b, record)?;
                    // More chunks than a chunk number counts (storage.inline_threshold, at most 1 MiB, stays far
                    // below this).
                    if inline
                        .as_ref()
                        .is_some_and(|b| b.len() > INLINE_CHUNK * (1 + u16::MAX as usize))
                    {
                        return Err(Error::InvalidRequest(
                            "object too large to store inline".into(),
                        ));
                    }
                    self.check_condition(bucket, key, condition)?;
                    self.check_null_removable(&b, bucket, key, record, now)?;
                }
                Op::DeleteObject {
                    bucket,
                    key,
                    condition,
                } => {
                    if !self.bucket_exists(bucket)? {
                        return Err(Error::NoSuchBucket);
                    }
                    self.check_condition(bucket, key, condition)?;
                }
                Op::DeleteVersion {
                    bucket,
                    key,
                    version,
                    bypass_governance,
                } => {
                    if !self.bucket_exists(bucket)? {
                        return Err(Error::NoSuchBucket);
                    }
                    if let Some(v) = self.version(bucket, key, *version)? {
                        lock::check_removal(&v.lock, now, *bypass_governance)?;
                    }
                }
                Op::SetBucketConfig { bucket, .. } => {
                    if !self.bucket_exists(bucket)? {
                        return Err(Error::NoSuchBucket);
                    }
                }
                Op::PutUser { .. } | Op::DeleteUser { .. } => {}
                Op::SetVersioning { bucket, state } => {
                    let b = self.bucket_record(bucket)?;
                    if b.object_lock.is_some() && *state != Versioning::Enabled {
                        return Err(Error::InvalidBucketState(
                            "An Object Lock configuration is present on this bucket, so the versioning state cannot be changed.".into(),
                        ));
                    }
                }
                Op::SetObjectLock { bucket, .. } => {
                    let b = self.bucket_record(bucket)?;
                    if b.versioning != Versioning::Enabled {
                        return Err(Error::InvalidBucketState(
                            "Versioning must be 'Enabled' on the bucket to apply a Object Lock configuration".into(),
                        ));
                    }
                }
                Op::ChangeLock {
                    bucket,
                    key,
                    version,
                    change,
                } => {
                    if self.bucket_record(bucket)?.object_lock.is_none() {
                        return Err(Error::NoObjectLockConfiguration);
                    }
                    let Some(v) = self.version(bucket, key, *version)? else {
                        return Err(Error::NoSuchVersion);
                    };
                    if let LockChange::Retention(new, bypass) = change {
                        lock::check_retention_change(v.lock.retention, *new, now, *bypass)?;
                    }
                }
                Op::UpdateVersion {
                    bucket,
                    key,
                    record,
                    expected,
                } => {
                    check_lock_allowed(&self.bucket_record(bucket)?, record)?;
                    let now = self.version(bucket, key, record.version_key)?;
                    if now.is_none_or(|r| &r.data_ids() != expected) {
                        return Err(Error::PreconditionFailed);
                    }
                }
                Op::CreateUpload { bucket, .. } => {
                    if !self.bucket_exists(bucket)? {
                        return Err(Error::NoSuchBucket);
                    }
                }
                Op::PutPart {
                    bucket,
                    key,
                    upload_id,
                    ..
                }
                | Op::AbortUpload {
                    bucket,
                    key,
                    upload_id,
                } => {
                    self.upload_exists(bucket, key, upload_id)?;
                }
                Op::CompleteUpload {
                    bucket,
                    key,
                    upload_id,
                    parts,
                    record,
                } => {
                    self.upload_exists(bucket, key, upload_id)?;
                    check_lock_allowed(&self.bucket_record(bucket)?, record)?;
                    for (n, id) in parts {
                        let current = self.part(upload_id, *n)?.map(|p| p.segment.data_id);
                        if current != Some(*id) {
                            return Err(Error::InvalidPart(format!(
                                "part {n} changed while completing"
                            )));
                        }
                    }
                }
                Op::GcDone { .. } => {}
            }
        }
        Ok(())
    }

    fn upload_exists(&self, bucket: &str, key: &str, upload_id: &str) -> Result<()> {
        if !self.bucket_exists(bucket)? {
            return Err(Error::NoSuchBucket);
        }
        match self
            .uploads
            .get((bucket, key.as_bytes(), upload_id))
            .map_err(Error::meta)?
        {
            Some(_) => Ok(()),
            None => Err(Error::NoSuchUpload),
        }
    }

    fn part(&self, upload_id: &str, n: u32) -> Result<Option<PartRecord>> {
        self.parts
            .get((upload_id, n))
            .map_err(Error::meta)?
            .map(|v| decode_part(v.value()))
            .transpose()
    }

    /// Removes every part row of an upload, queueing the data of those not in `keep` for GC.
    fn drop_parts(
        &mut self,
        upload_id: &str,
        keep: &[crate::disk::DataId],
        now: i64,
    ) -> Result<()> {
        let mut rows = Vec::new();
        for item in self
            .parts
            .range::<(&str, u32)>((upload_id, 0)..=(upload_id, u32::MAX))
            .map_err(Error::meta)?
        {
            let (k, v) = item.map_err(Error::meta)?;
            rows.push((k.value().1, decode_part(v.value())?.segment.data_id));
        }
        for (n, id) in rows {
            self.parts.remove((upload_id, n)).map_err(Error::meta)?;
            if !keep.contains(&id) {
                self.gc.insert(&id.0[..], now).map_err(Error::meta)?;
            }
        }
        Ok(())
    }

    /// Stores an inline object's bytes in [`INLINE_CHUNK`] rows.
    fn insert_inline(&mut self, id: DataId, bytes: &[u8]) -> Result<()> {
        let mut chunks = bytes.chunks(INLINE_CHUNK);
        self.inline
            .insert(&id.0[..], chunks.next().unwrap_or_default())
            .map_err(Error::meta)?;
        for (n, chunk) in (1..).zip(chunks) {
            // `check` refused larger objects.
            let n = u16::try_from(n)
                .map_err(|_| Error::Meta("inline object too large to store".into()))?;
            self.inline_tail
                .insert(&inline_tail_key(id, n)[..], chunk)
                .map_err(Error::meta)?;
        }
        Ok(())
    }

    fn remove_inline(&mut self, id: DataId) -> Result<()> {
        let head = self.inline.remove(&id.0[..]).map_err(Error::meta)?;
        if head.is_some_and(|h| h.value().len() == INLINE_CHUNK) {
            for n in 1..=u16::MAX {
                let removed = self
                    .inline_tail
                    .remove(&inline_tail_key(id, n)[..])
                    .map_err(Error::meta)?;
                if removed.is_none() {
                    break;
                }
            }
        }
        Ok(())
    }

    fn retire(&mut self, old: &ObjectRecord, keep: &[crate::disk::DataId], now: i64) -> Result<()> {
        for id in old.data_ids() {
            if keep.contains(&id) {
                continue;
            }
            match old.data {
                ObjectData::Inline { .. } => self.remove_inline(id)?,
                ObjectData::Segments(_) => {
                    self.gc.insert(&id.0[..], now).map_err(Error::meta)?;
                }
                ObjectData::DeleteMarker => {}
            }
        }
        Ok(())
    }

    fn apply(&mut self, batch: &Batch, now: i64) -> Result<Applied> {
        let mut applied = Applied::default();
        for op in batch {
            match op {
                Op::CreateBucket { name, record } => {
                    self.buckets
                        .insert(name.as_str(), encode_bucket(record).as_slice())
                        .map_err(Error::meta)?;
                }
                Op::DeleteBucket { name } => {
                    self.buckets.remove(name.as_str()).map_err(Error::meta)?;
                    let mut kinds = Vec::new();
                    for item in self
                        .bucket_configs
                        .range::<(&str, &str)>((name.as_str(), "")..)
                        .map_err(Error::meta)?
                    {
                        let (k, _) = item.map_err(Error::meta)?;
                        let (b, kind) = k.value();
                        if b != name.as_str() {
                            break;
                        }
                        kinds.push(kind.to_owned());
                    }
                    for kind in kinds {
                        self.bucket_configs
                            .remove((name.as_str(), kind.as_str()))
                            .map_err(Error::meta)?;
                    }
                }
                Op::SetBucketConfig {
                    bucket,
                    kind,
                    document,
                } => match document {
                    Some(doc) => {
                        self.bucket_configs
                            .insert((bucket.as_str(), kind.as_str()), doc.as_slice())
                            .map_err(Error::meta)?;
                    }
                    None => {
                        self.bucket_configs
                            .remove((bucket.as_str(), kind.as_str()))
                            .map_err(Error::meta)?;
                    }
                },
                Op::PutUser { access_key, record } => {
                    self.users
                        .insert(access_key.as_str(), encode_user(record).as_slice())
                        .map_err(Error::meta)?;
                }
                Op::DeleteUser { access_key } => {
                    self.users
                        .remove(access_key.as_str())
                        .map_err(Error::meta)?;
                }
                Op::PutObject {
                    bucket,
                    key,
                    record,
                    inline,
                    ..
                } => {
                    if let (Some(bytes), ObjectData::Inline { data_id, .. }) =
                        (inline, &record.data)
                    {
                        self.insert_inline(*data_id, bytes)?;
                    }
                    let replaced = self.put_version(bucket, key, record, now)?;
                    applied.replaced.push(replaced);
                }
                Op::DeleteObject { bucket, key, .. } => {
                    let null =
                        read_null_version(self.nulls, self.versions, self.objects, bucket, key)?
                            .map(|r| r.version_key);
                    let removed = match null {
                        Some(v) => self.remove_version(bucket, key, v, now)?.is_some(),
                        None => false,
                    };
                    applied.replaced.push(removed);
                }
                Op::DeleteVersion {
                    bucket,
                    key,
                    version,
                    ..
                } => {
                    let removed = self.remove_version(bucket, key, *version, now)?;
                    applied.replaced.push(removed.is_some());
                }
                Op::UpdateVersion {
                    bucket,
                    key,
                    record,
                    ..
                } => self.rewrite_version(bucket, key, record)?,
                Op::SetObjectLock { bucket, config } => {
                    let mut b = self.bucket_record(bucket)?;
                    b.object_lock = Some(*config);
                    self.buckets
                        .insert(bucket.as_str(), encode_bucket(&b).as_slice())
                        .map_err(Error::meta)?;
                }
                Op::ChangeLock {
                    bucket,
                    key,
                    version,
                    change,
                } => {
                    if let Some(mut v) = self.version(bucket, key, *version)? {
                        match change {
                            LockChange::Retention(r, _) => v.lock.retention = *r,
                            LockChange::LegalHold(on) => v.lock.legal_hold = Some(*on),
                        }
                        self.rewrite_version(bucket, key, &v)?;
                    }
                }
                Op::SetVersioning { bucket, state } => {
                    let current = self
                        .buckets
                        .get(bucket.as_str())
                        .map_err(Error::meta)?
                        .map(|v| decode_bucket(v.value()))
                        .transpose()?;
                    if let Some(mut b) = current {
                        b.versioning = *state;
                        self.buckets
                            .insert(bucket.as_str(), encode_bucket(&b).as_slice())
                            .map_err(Error::meta)?;
                    }
                }
                Op::CreateUpload {
                    bucket,
                    key,
                    upload_id,
                    record,
                } => {
                    let v = encode_upload(record);
                    self.uploads
                        .insert(
                            (bucket.as_str(), key.as_bytes(), upload_id.as_str()),
                            v.as_slice(),
                        )
                        .map_err(Error::meta)?;
                }
                Op::PutPart {
                    upload_id,
                    part_number,
                    record,
                    ..
                } => {
                    if let Some(old) = self.part(upload_id, *part_number)?
                        && old.segment.data_id != record.segment.data_id
                    {
                        self.gc
                            .insert(&old.segment.data_id.0[..], now)
                            .map_err(Error::meta)?;
                    }
                    let v = encode_part(record);
                    self.parts
                        .insert((upload_id.as_str(), *part_number), v.as_slice())
                        .map_err(Error::meta)?;
                }
                Op::CompleteUpload {
                    bucket,
                    key,
                    upload_id,
                    record,
                    ..
                } => {
                    let keep = record.data_ids();
                    self.drop_parts(upload_id, &keep, now)?;
                    self.uploads
                        .remove((bucket.as_str(), key.as_bytes(), upload_id.as_str()))
                        .map_err(Error::meta)?;
                    let _ = keep;
                    let replaced = self.put_version(bucket, key, record, now)?;
                    applied.replaced.push(replaced);
                }
                Op::AbortUpload {
                    bucket,
                    key,
                    upload_id,
                } => {
                    self.drop_parts(upload_id, &[], now)?;
                    self.uploads
                        .remove((bucket.as_str(), key.as_bytes(), upload_id.as_str()))
                        .map_err(Error::meta)?;
                }
                Op::GcDone { ids } => {
                    for id in ids {
                        self.gc.remove(&id.0[..]).map_err(Error::meta)?;
                    }
                }
            }
        }
        Ok(applied)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Write quorum 2, fsync off. A dropped store has released its files (its drop joins its threads), so a
    /// test reopens at once.
    fn open(roots: &[PathBuf]) -> ReplicatedMeta {
        ReplicatedMeta::open(roots, 2, false, 1 << 20).expect("open")
    }

    /// Write quorum 2, fsync on.
    fn open_fsync(roots: &[PathBuf]) -> ReplicatedMeta {
        open_with_quorum(roots, 2)
    }

    /// Write quorum `quorum`, fsync on.
    fn open_with_quorum(roots: &[PathBuf], quorum: usize) -> ReplicatedMeta {
        ReplicatedMeta::open(roots, quorum, true, 1 << 20).expect("open")
    }

    /// The batch that creates bucket `b`.
    fn create_bucket_b() -> Vec<Op> {
        vec![Op::CreateBucket {
            name: "b".into(),
            record: bucket(),
        }]
    }

    fn bucket() -> BucketRecord {
        BucketRecord {
            created_ms: 1,
            owner: "root".into(),
            region: "us-east-1".into(),
            versioning: Versioning::Unversioned,
            object_lock: None,
        }
    }

    const CHILD: &str = "STRATA_META_ABORT_CHILD";

    /// In a child process: commit durably, then die as kill -9 would, before any checkpoint.
    fn commit_then_abort(dir: &Path) -> ! {
        let (_, meta) = store_with_bucket(dir);
        for i in 0..200 {
            meta.commit(vec![Op::SetBucketConfig {
                bucket: "b".into(),
                kind: format!("doc{i}"),
                document: Some(vec![i as u8; 3000]),
            }])
            .unwrap();
        }
        // A batch refused at commit is logged too, and must be refused again on replay.
        let refused = meta.commit(create_bucket_b());
        assert!(refused.is_err());
        std::process::abort();
    }

    #[test]
    fn acknowledged_commits_survive_a_crash_through_the_log() {
        if let Some(dir) = std::env::var_os(CHILD) {
            commit_then_abort(Path::new(&dir));
        }
        let dir = tempfile::tempdir().unwrap();
        let roots = roots_under(dir.path(), 3);
        let status = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "meta::replicated::tests::acknowledged_commits_survive_a_crash_through_the_log",
            ])
            .env(CHILD, dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap();
        assert!(!status.success(), "the child aborts");
        // Nothing was checkpointed since the bucket's creation: the groups are in the logs only.
        for r in &roots {
            let logged = std::fs::metadata(r.join(WAL_FILE)).unwrap().len();
            // A replica may have been a few groups behind the write quorum when the child died.
            assert!(
                logged > (200 - MAX_LAG as u64) * 3000,
                "{} holds {logged} log bytes",
                r.display()
            );
        }
        // One replica lost its database as well: it is rebuilt from the others once they replayed.
        std::fs::remove_file(roots[1].join(DB_FILE)).unwrap();
        // Another lost the tail of its log (as if the quorum had acknowledged the last groups without it): it
        // catches up from a peer's log, in place, rather than by a copy of the database.
        let log = roots[2].join(WAL_FILE);
        let len = std::fs::metadata(&log).unwrap().len();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&log)
            .unwrap()
            .set_len(len - 5000)
            .unwrap();
        let inode = |p: &Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(p).unwrap());
        let before = inode(&roots[2].join(DB_FILE));
        let meta = open_fsync(&roots);
        assert_eq!(inode(&roots[2].join(DB_FILE)), before, "caught up in place");
        for i in 0..200 {
            let doc = meta.bucket_config("b", &format!("doc{i}")).unwrap();
            assert_eq!(doc, Some(vec![i as u8; 3000]), "doc{i}");
        }
        for r in meta.replicas.iter() {
            assert_eq!(current_seq(&r.db).unwrap(), 202, "replica {}", r.index);
        }
        // And the store goes on from there.
        meta.commit(create_bucket_b()).unwrap_err();
        meta.commit(vec![Op::SetBucketConfig {
            bucket: "b".into(),
            kind: "after".into(),
            document: Some(b"x".to_vec()),
        }])
        .unwrap();
        drop(meta);
        let meta = open_fsync(&roots);
        assert_eq!(
            meta.bucket_config("b", "after").unwrap().as_deref(),
            Some(&b"x"[..])
        );
        assert_eq!(current_seq(&meta.replicas[2].db).unwrap(), 204);
    }

    /// With 3 replicas and a write quorum of 2, an acknowledged write may be on 2 of them only: if 2 cannot be
    /// read, the third may lack it, and copying it over them would lose the write. The open refuses instead
    /// and leaves the files alone.
    #[test]
    fn too_few_readable_replicas_refuse_to_resync() {
        let dir = tempfile::tempdir().unwrap();
        let (roots, meta) = store_with_bucket(dir.path());
        drop(meta);
        // The drop waited for the replicas' threads: the files are released.
        let garbage = vec![0x5a_u8; 64 * 1024];
        for r in &roots[1..] {
            std::fs::write(r.join(DB_FILE), &garbage).unwrap();
        }
        let err = ReplicatedMeta::open(&roots, 2, true, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("only 1 of 3"), "{err}");
        for r in &roots[1..] {
            assert_eq!(
                std::fs::read(r.join(DB_FILE)).unwrap(),
                garbage,
                "left alone"
            );
        }
        // One unreadable replica of three is resynced as before.
        std::fs::remove_file(roots[2].join(DB_FILE)).unwrap();
        std::fs::copy(roots[0].join(DB_FILE), roots[2].join(DB_FILE)).unwrap();
        let meta = open_fsync(&roots);
        assert!(meta.bucket("b").unwrap().is_some());
        for r in meta.replicas.iter() {
            assert_eq!(current_seq(&r.db).unwrap(), 1, "replica {}", r.index);
        }
    }

    /// `count` replica roots under `dir` (`d0`, `d1`, ...), created.
    fn roots_under(dir: &Path, count: usize) -> Vec<PathBuf> {
        let roots: Vec<PathBuf> = (0..count).map(|i| dir.join(format!("d{i}"))).collect();
        for r in &roots {
            std::fs::create_dir_all(r).unwrap();
        }
        roots
    }

    /// Replaces the replica directories with empty ones, as a wiped or new disk.
    fn wipe(roots: &[PathBuf]) {
        for r in roots {
            std::fs::remove_dir_all(r).unwrap();
            std::fs::create_dir_all(r).unwrap();
        }
    }

    /// Waits until every replica applied group `group` (lazy ones within `LAZY_IDLE`), so that failures armed
    /// next hit the next group alone: a replica that lagged would take both at once and fail them both.
    fn wait_until_every_replica_applied(meta: &ReplicatedMeta, group: u64) {
        wait_until(&format!("replicas apply group {group}"), || {
            meta.replicas
                .iter()
                .all(|r| r.applied.load(Ordering::Acquire) >= group)
        });
    }

    /// Polls `done` every 5 ms until it holds; fails the test saying `what` after 10 s.
    fn wait_until(what: &str, done: impl Fn() -> bool) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !done() {
            assert!(std::time::Instant::now() < deadline, "{what}");
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Commits bucket `b` to every replica, then a document that replicas `missing` fail to log (they go
    /// offline): the second commit is acknowledged by the others alone.
    fn commit_missing_on(meta: &ReplicatedMeta, missing: &[usize]) {
        meta.commit(create_bucket_b()).unwrap();
        wait_until_every_replica_applied(meta, 1);
        for &i in missing {
            meta.replicas[i]
                .fail_next_group
                .store(true, Ordering::Relaxed);
        }
        meta.commit(vec![Op::SetBucketConfig {
            bucket: "b".into(),
            kind: "doc".into(),
            document: Some(b"acknowledged".to_vec()),
        }])
        .unwrap();
    }

    /// A store written by a build that kept a replica on every disk of a 4+2 set (quorum 4 of 6) opens on the
    /// first five with a quorum of 3, as the engine now opens it. A commit acknowledged by replicas 0, 1, 2
    /// and 5 alone is still found after disks 0 and 1 are lost: at least three of the first five held it.
    /// Writes go on, and the sixth replica is left as it was.
    #[test]
    fn a_store_of_six_replicas_opens_on_five_after_losing_two() {
        let dir = tempfile::tempdir().unwrap();
        let roots = roots_under(dir.path(), 6);
        let meta = open_with_quorum(&roots, 4);
        commit_missing_on(&meta, &[3, 4]);
        drop(meta);
        wipe(&roots[..2]);
        let file_hash = |p: PathBuf| blake3::hash(&std::fs::read(p).unwrap());
        let sixth = file_hash(roots[5].join(DB_FILE));
        let meta = open_with_quorum(&roots[..5], 3);
        assert_eq!(
            meta.bucket_config("b", "doc").unwrap().as_deref(),
            Some(&b"acknowledged"[..])
        );
        meta.commit(vec![Op::SetBucketConfig {
            bucket: "b".into(),
            kind: "after".into(),
            document: Some(b"x".to_vec()),
        }])
        .unwrap();
        drop(meta);
        let meta = open_with_quorum(&roots[..5], 3);
        for r in meta.replicas.iter() {
            assert_eq!(current_seq(&r.db).unwrap(), 3, "replica {}", r.index);
        }
        assert_eq!(
            file_hash(roots[5].join(DB_FILE)),
            sixth,
            "the sixth left alone"
        );
    }

    /// A commit acknowledged by replicas 0, 1 and 2 of five (quorum 3); then those three disks are wiped.
    /// redb creates an empty database on each at the next open, but an empty replica is no evidence: with two
    /// replicas left that hold commits, of three needed, the open refuses rather than copy the stale ones over
    /// everything.
    #[test]
    fn wiped_replicas_do_not_count_toward_those_needed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let roots = roots_under(dir.path(), 5);
        let meta = open_with_quorum(&roots, 3);
        commit_missing_on(&meta, &[3, 4]);
        drop(meta);
        wipe(&roots[..3]);
        let err = ReplicatedMeta::open(&roots, 3, true, 1 << 20).unwrap_err();
        assert!(err.to_string().contains("only 2 of 5"), "{err}");
    }

    /// Both replicas a group names eager fail before they even log it, so their failures come back before any
    /// lazy replica's answer; the three lazy ones log it (a write quorum of 3 of 5). The commit still gives the
    /// group's own outcome (here a refusal), asked of a lazy replica once one has logged it, rather than a lost
    /// quorum for a group every replica left goes on to apply.
    #[test]
    fn a_group_whose_eager_replicas_both_fail_gets_its_outcome_from_a_lazy_one() {
        let dir = tempfile::tempdir().unwrap();
        let roots = roots_under(dir.path(), 5);
        let meta = open_with_quorum(&roots, 3);
        meta.commit(create_bucket_b()).unwrap();
        for r in &meta.replicas[..EAGER] {
            r.fail_next_group.store(true, Ordering::Relaxed);
        }
        let refused = meta.commit(create_bucket_b()).unwrap_err();
        assert!(
            !matches!(refused, Error::QuorumLost { .. } | Error::Meta(_)),
            "the group's own outcome: {refused}"
        );
        assert!(!meta.replicas[0].online.load(Ordering::Relaxed));
        // The three left go on, and a read sees what they applied.
        meta.commit(vec![Op::SetBucketConfig {
            bucket: "b".into(),
            kind: "after".into(),
            document: Some(b"x".to_vec()),
        }])
        .unwrap();
        assert_eq!(
            meta.bucket_config("b", "after").unwrap().as_deref(),
            Some(&b"x"[..])
        );
        drop(meta);
        let meta = open_with_quorum(&roots, 3);
        for r in meta.replicas.iter() {
            assert_eq!(current_seq(&r.db).unwrap(), 3, "replica {}", r.index);
        }
    }

    /// Both eager replicas log a group and then fail to apply it; one lazy replica fails before it logs it.
    /// Four of five logged it, so it is acknowledged (a replica that logged a group replays it at restart,
    /// whatever befell its apply), with its own outcome asked of a lazy replica; before, the two eager
    /// replicas' failures did not count as logged and the group was reported as a lost quorum.
    #[test]
    fn replicas_that_logged_a_group_count_toward_the_quorum_even_if_their_apply_fails() {
        let dir = tempfile::tempdir().unwrap();
        let roots = roots_under(dir.path(), 5);
        let meta = open_with_quorum(&roots, 3);
        meta.commit(create_bucket_b()).unwrap();
        wait_until_every_replica_applied(&meta, 1);
        for r in &meta.replicas[..EAGER] {
            r.fail_next_apply.store(true, Ordering::Relaxed);
        }
        meta.replicas[2]
            .fail_next_group
            .store(true, Ordering::Relaxed);
        let refused = meta.commit(create_bucket_b()).unwrap_err();
        assert!(
            !matches!(refused, Error::QuorumLost { .. } | Error::Meta(_)),
            "the group's own outcome: {refused}"
        );
        // The eager ones go offline once they answered (the third, whose failure the commit did not wait for,
        // once the committer reads it).
        wait_until("failed replicas go offline", || {
            meta.replicas[..EAGER]
                .iter()
                .all(|r| !r.online.load(Ordering::Relaxed))
        });
        drop(meta);
        // The two that logged it replay it; the one that did not catches up.
        let meta = open_with_quorum(&roots, 3);
        for r in meta.replicas.iter() {
            assert_eq!(current_seq(&r.db).unwrap(), 2, "replica {}", r.index);
        }
        meta.commit(vec![Op::SetBucketConfig {
            bucket: "b".into(),
            kind: "after".into(),
            document: Some(b"x".to_vec()),
        }])
        .unwrap();
    }

    /// A commit is acknowledged once a write quorum logged it, so other replicas may lag behind it (a replica in
    /// a checkpoint does). Every read that follows an acknowledgement must still see the write.
    #[test]
    fn a_read_after_an_acknowledged_write_sees_it_while_replicas_lag() {
        let dir = tempfile::tempdir().unwrap();
        let (roots, meta) = store_with_bucket(dir.path());
        // 8 writers, 150 commits of 8 KiB each: about 10 MiB of log, so every replica checkpoints twice.
        std::thread::scope(|scope| {
            for t in 0..8 {
                let meta = &meta;
                scope.spawn(move || {
                    for i in 0..150 {
                        let kind = format!("t{t}-{i}");
                        meta.commit(vec![Op::SetBucketConfig {
                            bucket: "b".into(),
                            kind: kind.clone(),
                            document: Some(vec![t as u8; 8192]),
                        }])
                        .unwrap();
                        let read = meta.bucket_config("b", &kind).unwrap();
                        assert_eq!(read.map(|d| d.len()), Some(8192), "{kind} read back");
                    }
                });
            }
        });
        drop(meta);
        let meta = open_fsync(&roots);
        assert_eq!(
            meta.bucket_config("b", "t7-149").unwrap().map(|d| d.len()),
            Some(8192)
        );
    }

    /// Three replicas under `dir`, write quorum 2, fsync on, holding bucket `b`.
    fn store_with_bucket(dir: &Path) -> (Vec<PathBuf>, ReplicatedMeta) {
        let roots = roots_under(dir, 3);
        let meta = open_fsync(&roots);
        meta.commit(create_bucket_b()).unwrap();
        (roots, meta)
    }

    #[test]
    fn bucket_configs_and_users_persist_and_go_with_their_bucket() {
        let dir = tempfile::tempdir().unwrap();
        let roots = roots_under(dir.path(), 3);
        let meta = open(&roots);
        // A document for a bucket that does not exist is refused.
        let orphan = meta.commit(vec![Op::SetBucketConfig {
            bucket: "nope".into(),
            kind: "policy".into(),
            document: Some(b"{}".to_vec()),
        }]);
        assert!(matches!(orphan, Err(Error::NoSuchBucket)), "{orphan:?}");
        assert_eq!(meta.bucket_config("nope", "policy").unwrap(), None);
        for name in ["a", "ab"] {
            meta.commit(vec![Op::CreateBucket {
                name: name.into(),
                record: bucket(),
            }])
            .unwrap();
            for kind in ["cors", "policy", "website"] {
                meta.commit(vec![Op::SetBucketConfig {
                    bucket: name.into(),
                    kind: kind.into(),
                    document: Some(format!("{name}/{kind}").into_bytes()),
                }])
                .unwrap();
            }
        }
        meta.commit(vec![Op::PutUser {
            access_key: "AKUSER".into(),
            record: UserRecord {
                secret_key: "s".into(),
                display_name: "alice".into(),
                policy: None,
                created_ms: 2,
            },
        }])
        .unwrap();
        drop(meta);

        let meta = open(&roots);
        assert_eq!(
            meta.bucket_config("a", "policy").unwrap().as_deref(),
            Some(&b"a/policy"[..])
        );
        assert_eq!(meta.user("AKUSER").unwrap().unwrap().display_name, "alice");
        meta.commit(vec![Op::SetBucketConfig {
            bucket: "a".into(),
            kind: "cors".into(),
            document: None,
        }])
        .unwrap();
        assert_eq!(meta.bucket_config("a", "cors").unwrap(), None);
        meta.commit(vec![Op::DeleteBucket { name: "a".into() }])
            .unwrap();
        assert_eq!(meta.bucket_config("a", "policy").unwrap(), None);
        assert_eq!(meta.bucket_config("a", "website").unwrap(), None);
        // The neighbour whose name extends the deleted one keeps its documents.
        assert_eq!(
            meta.bucket_config("ab", "website").unwrap().as_deref(),
            Some(&b"ab/website"[..])
        );
        meta.commit(vec![Op::DeleteUser {
            access_key: "AKUSER".into(),
        }])
        .unwrap();
        assert!(meta.users().unwrap().is_empty());
    }

    /// An inline record of key `vk`, versioned (its id is the key in hex) or `null`; a delete marker without
    /// `data_id`.
    fn inline_record(vk: VersionKey, versioned: bool, data_id: Option<DataId>) -> ObjectRecord {
        ObjectRecord {
            version_id: versioned.then(|| hex::encode(vk.0)),
            version_key: vk,
            size: 3,
            etag: "\"e\"".into(),
            last_modified_ms: 1,
            headers: Vec::new(),
            user_meta: Vec::new(),
            tags: Vec::new(),
            checksum: None,
            storage_class: "STANDARD".into(),
            owner: "root".into(),
            data: match data_id {
                Some(data_id) => ObjectData::Inline {
                    data_id,
                    hash: [0; 32],
                },
                None => ObjectData::DeleteMarker,
            },
            multipart: None,
            lock: crate::lock::VersionLock::default(),
        }
    }

    /// Every version the store lists for bucket `b`, paged `limit` at a time as ListObjectVersions pages.
    fn listed(meta: &ReplicatedMeta, limit: usize) -> Vec<(String, VersionKey)> {
        let mut out: Vec<(String, VersionKey)> = Vec::new();
        loop {
            let rows = match out.last() {
                None => meta.scan_versions("b", Bound::Unbounded, limit),
                Some((k, v)) => meta.scan_versions("b", Bound::Excluded((k.as_bytes(), *v)), limit),
            }
            .unwrap();
            let done = rows.len() < limit;
            out.extend(rows.into_iter().map(|(k, r)| (k, r.version_key)));
            if done {
                return out;
            }
        }
    }

    /// Checks every read of versions against `model` (key → versions, newest first).
    fn check_against(
        meta: &ReplicatedMeta,
        model: &std::collections::BTreeMap<String, Vec<ObjectRecord>>,
        step: usize,
    ) {
        let expected: Vec<(String, VersionKey)> = model
            .iter()
            .flat_map(|(k, vs)| vs.iter().map(move |v| (k.clone(), v.version_key)))
            .collect();
        for limit in [1, 2, 3, 1000] {
            assert_eq!(listed(meta, limit), expected, "step {step}, limit {limit}");
        }
        // A replica that applied every acknowledged commit: the quorum acknowledges without the others.
        let acked = meta.acked_and_current().unwrap();
        let db = &meta.current(acked).next().unwrap().db;
        let txn = db.begin_read().unwrap();
        let versions = txn.open_table(VERSIONS).unwrap();
        let nulls = txn.open_table(NULLS).unwrap();
        for (key, vs) in model {
            // From each key's first version on, with the first version's key as an inclusive bound.
            if let Some(first) = vs.first() {
                let from = meta
                    .scan_versions(
                        "b",
                        Bound::Included((key.as_bytes(), first.version_key)),
                        1000,
                    )
                    .unwrap();
                let want = expected.iter().skip_while(|(k, _)| k < key).count();
                assert_eq!(from.len(), want, "step {step}, from {key}");
            }
            assert_eq!(
                meta.object("b", key).unwrap().as_ref(),
                vs.first(),
                "step {step} {key}"
            );
            let null = vs.iter().find(|v| v.version_id.is_none());
            assert_eq!(
                meta.null_version("b", key).unwrap().as_ref(),
                null,
                "step {step} {key}"
            );
            for v in vs {
                assert_eq!(
                    meta.version("b", key, v.version_key).unwrap().as_ref(),
                    Some(v)
                );
                for id in v.data_ids() {
                    assert!(
                        meta.inline(id, 3, 0).unwrap().is_some(),
                        "step {step}: live data gone"
                    );
                }
            }
            // A key whose only version is its null version keeps no versions row: the point of the layout.
            if let [only] = &vs[..]
                && only.version_id.is_none()
            {
                let row = versions
                    .get(("b", key.as_bytes(), &only.version_key.0[..]))
                    .unwrap();
                assert!(
                    row.is_none(),
                    "step {step}: {key}'s lone null version has a versions row"
                );
                let null_row = nulls.get(("b", key.as_bytes())).unwrap();
                assert!(
                    null_row.is_none(),
                    "step {step}: {key}'s lone null version has a nulls row"
                );
            }
        }
    }

    #[test]
    fn lone_null_versions_read_as_versions_and_move_out_when_a_key_gains_another() {
        let dir = tempfile::tempdir().unwrap();
        let roots = roots_under(dir.path(), 3);
        let meta = open(&roots);
        // Neighbours on both sides, one named with "b" as a prefix: none of their rows may show in "b".
        for name in ["a", "b", "b2"] {
            meta.commit(vec![Op::CreateBucket {
                name: name.into(),
                record: bucket(),
            }])
            .unwrap();
        }
        for (name, versioned) in [("a", false), ("b2", false), ("b2", true)] {
            let mut vk = [0xee; 16];
            vk[0] = u8::from(versioned);
            let record = inline_record(VersionKey(vk), versioned, Some(DataId([0xee; 16])));
            meta.commit(vec![Op::PutObject {
                bucket: name.into(),
                key: "k1".into(),
                record: Box::new(record),
                inline: Some(bytes::Bytes::from_static(b"abc")),
                condition: Condition::None,
            }])
            .unwrap();
        }
        let mut model: std::collections::BTreeMap<String, Vec<ObjectRecord>> = Default::default();
        let mut retired: Vec<DataId> = Vec::new();
        // A fixed linear congruential sequence: the same steps on every run.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % n
        };
        let only_null = |vs: &[ObjectRecord]| vs.len() == 1 && vs[0].version_id.is_none();
        // How often a key went from lone to versioned, and back: both paths must have run.
        let (mut moved_out, mut made_lone) = (0, 0);
        for step in 0..1000usize {
            let key = format!("k{}", next(6));
            let vs = model.entry(key.clone()).or_default();
            let (was_lone, had_others) = (only_null(vs), vs.len() > 1);
            // Version keys sort newest first: each step's key is smaller than the last.
            let mut vk = [0u8; 16];
            vk[..8].copy_from_slice(&(u64::MAX - step as u64).to_be_bytes());
            let vk = VersionKey(vk);
            let mut data_id = DataId([0; 16]);
            data_id.0[..8].copy_from_slice(&(step as u64).to_be_bytes());
            let op = match next(11) {
                kind @ (0..=2 | 7 | 8) => {
                    // 0, 1: a null PUT; 2: a versioned one; 7, 8: a delete marker, null or versioned.
                    let versioned = kind == 2 || kind == 8;
                    let data = (kind < 7).then_some(data_id);
                    let record = inline_record(vk, versioned, data);
                    if !versioned && let Some(i) = vs.iter().position(|v| v.version_id.is_none()) {
                        retired.extend(vs.remove(i).data_ids());
                    }
                    vs.insert(0, record.clone());
                    Op::PutObject {
                        bucket: "b".into(),
                        key: key.clone(),
                        record: Box::new(record),
                        inline: data.map(|_| bytes::Bytes::from_static(b"abc")),
                        condition: Condition::None,
                    }
                }
                3 => {
                    if let Some(i) = vs.iter().position(|v| v.version_id.is_none()) {
                        retired.extend(vs.remove(i).data_ids());
                    }
                    Op::DeleteObject {
                        bucket: "b".into(),
                        key: key.clone(),
                        condition: Condition::None,
                    }
                }
                4 | 5 | 9 | 10 if !vs.is_empty() => {
                    let i = next(vs.len() as u64) as usize;
                    let old = vs.remove(i);
                    retired.extend(old.data_ids());
                    Op::DeleteVersion {
                        bucket: "b".into(),
                        key: key.clone(),
                        version: old.version_key,
                        bypass_governance: false,
                    }
                }
                _ if !vs.is_empty() => {
                    let i = next(vs.len() as u64) as usize;
                    let expected = vs[i].data_ids();
                    vs[i].tags = vec![("step".into(), step.to_string())];
                    Op::UpdateVersion {
                        bucket: "b".into(),
                        key: key.clone(),
                        record: Box::new(vs[i].clone()),
                        expected,
                    }
                }
                _ => continue,
            };
            moved_out += usize::from(was_lone && vs.len() == 2);
            made_lone += usize::from(had_others && only_null(vs));
            if vs.is_empty() {
                model.remove(&key);
            }
            meta.commit(vec![op]).unwrap();
            check_against(&meta, &model, step);
            for id in &retired {
                assert_eq!(
                    meta.inline(*id, 3, 0).unwrap(),
                    None,
                    "step {step}: retired inline data kept"
                );
            }
        }
        assert!(
            moved_out > 5 && made_lone > 5,
            "{moved_out} moved out, {made_lone} made lone"
        );
        // A bucket is empty only once every key's versions are gone, lone null versions included.
        let lone = inline_record(VersionKey([0; 16]), false, Some(DataId([0xff; 16])));
        meta.commit(vec![Op::PutObject {
            bucket: "b".into(),
            key: "lone".into(),
            record: Box::new(lone.clone()),
            inline: Some(bytes::Bytes::from_static(b"abc")),
            condition: Condition::None,
        }])
        .unwrap();
        model.insert("lone".into(), vec![lone]);
        check_against(&meta, &model, 1000);
        let refused = meta.commit(vec![Op::DeleteBucket { name: "b".into() }]);
        assert!(matches!(refused, Err(Error::BucketNotEmpty)), "{refused:?}");
        for (key, vs) in &model {
            for v in vs {
                meta.commit(vec![Op::DeleteVersion {
                    bucket: "b".into(),
                    key: key.clone(),
                    version: v.version_key,
                    bypass_governance: false,
                }])
                .unwrap();
            }
        }
        meta.commit(vec![Op::DeleteBucket { name: "b".into() }])
            .unwrap();
    }

    /// The roots of test replicas, the replicas, and each one's log and commit sequence number.
    type TestReplicas = (Vec<PathBuf>, Arc<Vec<Replica>>, Vec<(Wal, u64)>);

    /// `count` replicas opened under `dir` (`d0`, `d1`, ...), online and with nothing applied, with their logs
    /// and commit sequence numbers for [`Applier::new`].
    fn replicas_under(dir: &Path, count: usize) -> TestReplicas {
        let roots = roots_under(dir, count);
        let mut replicas = Vec::new();
        let mut wals = Vec::new();
        for (i, root) in roots.iter().enumerate() {
            let opened = open_replica(root, 1 << 20).unwrap_or_else(|_| panic!("open"));
            replicas.push(Replica {
                index: i,
                db: opened.db,
                online: AtomicBool::new(true),
                applied: AtomicU64::new(0),
                fail_next_group: AtomicBool::new(false),
                fail_next_apply: AtomicBool::new(false),
            });
            wals.push((opened.wal, opened.seq));
        }
        (roots, Arc::new(replicas), wals)
    }

    /// Group `index + 1` of a test's `groups`, stamped `1_000 + index`, applied at once by `eager`.
    fn group_job(index: usize, batches: Vec<Batch>, eager: Vec<usize>) -> Arc<GroupJob> {
        let now = 1_000 + index as i64;
        Arc::new(GroupJob {
            group: index as u64 + 1,
            record: postcard::to_stdvec(&(now, &batches)).unwrap(),
            batches,
            now,
            logged: None,
            eager,
        })
    }

    /// A `null` PUT of `len` inline bytes to `key` of bucket `b`, its version key and data id all `n`.
    fn inline_put(key: &str, n: u8, len: usize, condition: Condition) -> Op {
        let mut record = inline_record(VersionKey([n; 16]), false, Some(DataId([n; 16])));
        record.size = len as u64;
        Op::PutObject {
            bucket: "b".into(),
            key: key.into(),
            record: Box::new(record),
            inline: Some(object_bytes(n, len)),
            condition,
        }
    }

    /// Bytes of test object `seed` of `len` bytes.
    fn object_bytes(seed: u8, len: usize) -> bytes::Bytes {
        (0..len)
            .map(|j| (j as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>()
            .into()
    }

    #[test]
    fn inline_objects_are_stored_in_page_sized_chunks_and_read_back_whole() {
        use redb::ReadableTableMetadata;
        let dir = tempfile::tempdir().unwrap();
        let (_roots, meta) = store_with_bucket(dir.path());
        let c = INLINE_CHUNK;
        let sizes = [
            0,
            1,
            3000,
            c - 1,
            c,
            c + 1,
            4096,
            2 * c,
            2 * c + 1,
            16384,
            40000,
        ];
        let put = |i: usize, len: usize, id: DataId| {
            let vk = VersionKey([i as u8 + 1; 16]);
            let mut record = inline_record(vk, false, Some(id));
            record.size = len as u64;
            meta.commit(vec![Op::PutObject {
                bucket: "b".into(),
                key: format!("k{i}"),
                record: Box::new(record),
                inline: Some(object_bytes(i as u8, len)),
                condition: Condition::None,
            }])
            .unwrap();
        };
        for (i, &len) in sizes.iter().enumerate() {
            put(i, len, DataId([i as u8 + 1; 16]));
        }
        // Twenty more 4 KiB objects for the page check below.
        for i in 0..20 {
            put(100 + i, 4096, DataId([100 + i as u8; 16]));
        }
        for (i, &len) in sizes.iter().enumerate() {
            for hint in 0..3 {
                let read = meta
                    .inline(DataId([i as u8 + 1; 16]), len as u64, hint)
                    .unwrap();
                assert_eq!(
                    read.as_deref(),
                    Some(&object_bytes(i as u8, len)[..]),
                    "size {len}"
                );
            }
        }
        let tail_rows: usize = sizes
            .iter()
            .map(|&len| len.div_ceil(c).saturating_sub(1))
            .sum::<usize>()
            + 20;
        {
            let acked = meta.acked_and_current().unwrap();
            for r in meta.current(acked) {
                let txn = r.db.begin_read().unwrap();
                let head = txn.open_table(INLINE).unwrap();
                let tail = txn.open_table(INLINE_TAIL).unwrap();
                assert_eq!(tail.len().unwrap() as usize, tail_rows);
                // A whole 4 KiB object in one row would leave about half of an 8 KiB page empty: twenty of them
                // about 80 KiB.
                let wasted = head.stats().unwrap().fragmented_bytes();
                assert!(wasted < 16 * 1024, "{wasted} bytes of inline pages unused");
            }
        }
        // Overwriting every object retires its rows, tail rows included.
        for i in (0..sizes.len()).chain(100..120) {
            put(i, 1, DataId([200; 16].map(|b: u8| b.wrapping_add(i as u8))));
        }
        let acked = meta.acked_and_current().unwrap();
        for r in meta.current(acked) {
            let txn = r.db.begin_read().unwrap();
            assert_eq!(
                txn.open_table(INLINE).unwrap().len().unwrap() as usize,
                sizes.len() + 20
            );
            assert!(txn.open_table(INLINE_TAIL).unwrap().is_empty().unwrap());
        }
    }

    #[test]
    fn inline_rows_written_before_chunking_read_back_whole() {
        let dir = tempfile::tempdir().unwrap();
        let db = redb::Database::create(dir.path().join("db")).unwrap();
        create_tables(&db).unwrap();
        let whole = object_bytes(1, 10_000);
        let exact = object_bytes(2, INLINE_CHUNK);
        let txn = db.begin_write().unwrap();
        {
            let mut head = txn.open_table(INLINE).unwrap();
            head.insert(&[1u8; 16][..], &whole[..]).unwrap();
            head.insert(&[2u8; 16][..], &exact[..]).unwrap();
        }
        txn.commit().unwrap();
        let txn = db.begin_read().unwrap();
        let head = txn.open_table(INLINE).unwrap();
        let tail = txn.open_table(INLINE_TAIL).unwrap();
        assert_eq!(
            read_inline(&head, &tail, DataId([1; 16]), 10_000)
                .unwrap()
                .as_deref(),
            Some(&whole[..])
        );
        assert_eq!(
            read_inline(&head, &tail, DataId([2; 16]), INLINE_CHUNK as u64)
                .unwrap()
                .as_deref(),
            Some(&exact[..])
        );
        assert_eq!(read_inline(&head, &tail, DataId([3; 16]), 1).unwrap(), None);
    }

    /// Every row of the tables a PUT writes, for comparing two replicas.
    fn put_rows(db: &Database) -> Vec<(Vec<u8>, Vec<u8>)> {
        let txn = db.begin_read().unwrap();
        let mut rows = Vec::new();
        for row in txn.open_table(OBJECTS).unwrap().iter().unwrap() {
            let (k, v) = row.unwrap();
            let (bucket, key) = k.value();
            rows.push(([bucket.as_bytes(), key].concat(), v.value().to_vec()));
        }
        for table in [INLINE, INLINE_TAIL] {
            for row in txn.open_table(table).unwrap().iter().unwrap() {
                let (k, v) = row.unwrap();
                rows.push((k.value().to_vec(), v.value().to_vec()));
            }
        }
        rows
    }

    #[test]
    fn a_replica_behind_commits_the_waiting_groups_at_once_as_replay_would_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let (roots, replicas, mut wals) = replicas_under(dir.path(), 1);
        let (root, (wal, seq)) = (&roots[0], wals.remove(0));
        let put = |key: &str, n: u8, condition: Condition| inline_put(key, n, 5000, condition);
        // Each group reads what the one before wrote: the bucket, then the key that must be absent.
        let groups: Vec<Vec<Batch>> = vec![
            vec![vec![Op::CreateBucket {
                name: "b".into(),
                record: bucket(),
            }]],
            vec![
                vec![put("k", 1, Condition::None)],
                vec![put("j", 2, Condition::None)],
            ],
            vec![
                vec![put("k", 3, Condition::Absent)],
                vec![put("j", 4, Condition::None)],
            ],
        ];
        let (jobs_tx, jobs) = mpsc::channel();
        for (i, batches) in groups.into_iter().enumerate() {
            jobs_tx
                .send(Job::Group(group_job(i, batches, vec![0])))
                .unwrap();
        }
        // Every group is waiting before the replica's thread starts, as for a replica that fell behind.
        drop(jobs_tx);
        let (done_tx, done) = mpsc::channel();
        let mut applier = Applier::new(replicas.clone(), 0, wal, seq, true);
        applier.run(&jobs, &done_tx);
        drop((applier, done_tx));
        let outcomes: Vec<ReplicaOutcome> = done.iter().collect();
        assert_eq!(
            outcomes
                .iter()
                .map(|(i, g, _)| (*i, *g))
                .collect::<Vec<_>>(),
            [(0, 1), (0, 2), (0, 3)]
        );
        let per_batch: Vec<Vec<bool>> = outcomes
            .into_iter()
            .map(|(_, _, o)| o.unwrap().unwrap().iter().map(|b| b.is_ok()).collect())
            .collect();
        assert_eq!(per_batch, [vec![true], vec![true, true], vec![false, true]]);
        assert_eq!(replicas[0].applied.load(Ordering::Acquire), 3);
        assert_eq!(current_seq(&replicas[0].db).unwrap(), 3);
        // One append for the three groups: about 20 KiB of records, padded once to 24 KiB. Appended one by
        // one they would take 4 + 12 + 12 KiB.
        let log = root.join(WAL_FILE);
        assert_eq!(std::fs::metadata(&log).unwrap().len(), 24 << 10);
        let (_, records) = Wal::open(&log, 0).unwrap();
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        // Replayed one record per transaction on a fresh replica, the log gives the same rows.
        let other = dir.path().join("d1");
        std::fs::create_dir_all(&other).unwrap();
        let fresh = open_replica(&other, 1 << 20).unwrap_or_else(|_| panic!("open"));
        assert_eq!(apply_logged(&other, &fresh.db, 0, &records).unwrap(), 3);
        let rows = put_rows(&replicas[0].db);
        // k and j; the heads and tails of k (1) and j (4): j's first object (2) was retired.
        assert_eq!(rows.len(), 2 + 2 + 2);
        assert_eq!(rows, put_rows(&fresh.db));
    }

    /// A lazy replica logs each group as it comes, durably, and answers at once without applying it; what it
    /// logged is applied later in one transaction, with the same rows as an eager replica applying each group.
    #[test]
    fn a_lazy_replica_logs_each_group_at_once_and_applies_them_together() {
        let dir = tempfile::tempdir().unwrap();
        let (roots, replicas, wals) = replicas_under(dir.path(), 2);
        let mut appliers: Vec<Applier> = wals
            .into_iter()
            .enumerate()
            .map(|(i, (wal, seq))| Applier::new(replicas.clone(), i, wal, seq, true))
            .collect();
        let put = |key: &str, n: u8, condition: Condition| inline_put(key, n, 3, condition);
        let groups: Vec<Vec<Batch>> = vec![
            vec![vec![Op::CreateBucket {
                name: "b".into(),
                record: bucket(),
            }]],
            vec![vec![put("k", 1, Condition::None)]],
            // Refused: k exists by then, which only applying the groups before it in order shows.
            vec![
                vec![put("k", 2, Condition::Absent)],
                vec![put("j", 3, Condition::None)],
            ],
        ];
        for (i, batches) in groups.into_iter().enumerate() {
            // Replica 0 applies at once, replica 1 is lazy.
            let job = group_job(i, batches, vec![0]);
            let eager = appliers[0].commit(std::slice::from_ref(&job)).unwrap();
            assert!(
                eager[0].is_some(),
                "group {} applied by the eager replica",
                job.group
            );
            let lazy = appliers[1].commit(std::slice::from_ref(&job)).unwrap();
            assert!(
                lazy[0].is_none(),
                "group {} only logged by the lazy one",
                job.group
            );
        }
        assert_eq!(replicas[0].applied.load(Ordering::Acquire), 3);
        assert_eq!(replicas[1].applied.load(Ordering::Acquire), 0);
        assert_eq!(current_seq(&replicas[1].db).unwrap(), 0);
        // Logged all the same: a crash here replays the three groups.
        let (_, records) = Wal::open(&roots[1].join(WAL_FILE), 0).unwrap();
        assert_eq!(records.iter().map(|r| r.seq).collect::<Vec<_>>(), [1, 2, 3]);
        let outcomes = appliers[1].apply().unwrap();
        let refused: Vec<Vec<bool>> = outcomes
            .iter()
            .map(|group| group.iter().map(|b| b.is_err()).collect())
            .collect();
        assert_eq!(refused, [vec![false], vec![false], vec![true, false]]);
        assert_eq!(replicas[1].applied.load(Ordering::Acquire), 3);
        assert_eq!(current_seq(&replicas[1].db).unwrap(), 3);
        assert_eq!(put_rows(&replicas[0].db), put_rows(&replicas[1].db));
        assert_eq!(
            put_rows(&replicas[1].db).len(),
            4,
            "k and j, each a row and a head"
        );
    }

    /// A lazy replica closed before its checkpoint (its thread stopped, then the store closed: redb makes its
    /// last commit durable then) opens with every group it logged, not just the ones it applied.
    #[test]
    fn a_lazy_replica_closed_part_way_through_its_log_opens_with_every_group_it_logged() {
        let dir = tempfile::tempdir().unwrap();
        let (roots, replicas, mut wals) = replicas_under(dir.path(), 1);
        let (wal, seq) = wals.remove(0);
        let mut applier = Applier::new(replicas.clone(), 0, wal, seq, true);
        let groups: Vec<Vec<Batch>> = vec![
            vec![vec![Op::CreateBucket {
                name: "b".into(),
                record: bucket(),
            }]],
            vec![vec![inline_put("k", 1, 3, Condition::None)]],
            vec![vec![inline_put("j", 2, 3, Condition::None)]],
        ];
        for (i, batches) in groups.into_iter().enumerate() {
            applier
                .commit(&[group_job(i, batches, Vec::new())])
                .unwrap();
            if i == 1 {
                applier.apply().unwrap();
            }
        }
        assert_eq!(replicas[0].applied.load(Ordering::Acquire), 2);
        drop(applier);
        drop(Arc::into_inner(replicas).expect("the only holder"));
        let reopened = open_replica(&roots[0], 1 << 20).unwrap_or_else(|_| panic!("reopen"));
        assert_eq!(reopened.seq, 3);
        assert_eq!(
            put_rows(&reopened.db).len(),
            4,
            "k and j, each a row and a head"
        );
    }

    /// Asked for a group's outcomes (its eager replicas failed), a lazy replica applies what it holds and
    /// answers with that group's.
    #[test]
    fn a_lazy_replica_asked_for_outcomes_applies_and_gives_them() {
        let dir = tempfile::tempdir().unwrap();
        let (_roots, replicas, mut wals) = replicas_under(dir.path(), 1);
        let (wal, seq) = wals.remove(0);
        let groups: Vec<Vec<Batch>> = vec![
            vec![vec![Op::CreateBucket {
                name: "b".into(),
                record: bucket(),
            }]],
            vec![
                vec![inline_put("k", 1, 3, Condition::None)],
                vec![inline_put("k", 2, 3, Condition::Absent)],
            ],
        ];
        let (jobs_tx, jobs) = mpsc::channel();
        for (i, batches) in groups.into_iter().enumerate() {
            jobs_tx
                .send(Job::Group(group_job(i, batches, Vec::new())))
                .unwrap();
        }
        jobs_tx.send(Job::Outcomes(2)).unwrap();
        drop(jobs_tx);
        let (done_tx, done) = mpsc::channel();
        let mut applier = Applier::new(replicas.clone(), 0, wal, seq, true);
        applier.run(&jobs, &done_tx);
        drop((applier, done_tx));
        let answers: Vec<(u64, Option<Vec<bool>>)> = done
            .iter()
            .map(|(_, g, o)| (g, o.unwrap().map(|b| b.iter().map(|r| r.is_ok()).collect())))
            .collect();
        assert_eq!(
            answers,
            [(1, None), (2, None), (2, Some(vec![true, false]))]
        );
        assert_eq!(replicas[0].applied.load(Ordering::Acquire), 2);
    }

    /// Reads go to the eager replicas. With both offline, a read waits for a lazy replica to apply what it
    /// logged (it does when no group comes for a moment) and then sees every acknowledged write.
    #[test]
    fn reads_fall_back_to_a_lazy_replica_once_it_applied_what_it_logged() {
        let dir = tempfile::tempdir().unwrap();
        let (_roots, meta) = store_with_bucket(dir.path());
        for i in 0..20 {
            meta.commit(vec![Op::SetBucketConfig {
                bucket: "b".into(),
                kind: format!("k{i}"),
                document: Some(vec![i as u8; 100]),
            }])
            .unwrap();
        }
        for r in &meta.replicas[..EAGER] {
            r.online.store(false, Ordering::Relaxed);
        }
        for i in 0..20 {
            assert_eq!(
                meta.bucket_config("b", &format!("k{i}")).unwrap(),
                Some(vec![i as u8; 100])
            );
        }
        assert_eq!(
            meta.replicas[2].applied.load(Ordering::Acquire),
            meta.acked.load(Ordering::Acquire)
        );
    }

    #[test]
    fn versions_hold_locks_only_in_buckets_with_object_lock() {
        let dir = tempfile::tempdir().unwrap();
        let (_roots, meta) = store_with_bucket(dir.path());
        let null_put = |bucket: &str, n: u8, lock: crate::lock::VersionLock| {
            let mut record = inline_record(VersionKey([n; 16]), false, Some(DataId([n; 16])));
            record.lock = lock;
            Op::PutObject {
                bucket: bucket.into(),
                key: "k".into(),
                record: Box::new(record),
                inline: Some(bytes::Bytes::from_static(b"abc")),
                condition: Condition::None,
            }
        };
        let held = crate::lock::VersionLock {
            retention: None,
            legal_hold: Some(true),
        };
        // Bucket b has no object lock: a locked version, or a lock change, is refused inside the commit.
        let refused = meta.commit(vec![null_put("b", 1, held)]).unwrap_err();
        assert!(
            matches!(refused, Error::NoObjectLockConfiguration),
            "{refused:?}"
        );
        meta.commit(vec![null_put("b", 2, Default::default())])
            .unwrap();
        let refused = meta
            .commit(vec![Op::ChangeLock {
                bucket: "b".into(),
                key: "k".into(),
                version: VersionKey([2; 16]),
                change: LockChange::LegalHold(true),
            }])
            .unwrap_err();
        assert!(
            matches!(refused, Error::NoObjectLockConfiguration),
            "{refused:?}"
        );
        // Bucket l: a null version from before versioning, then object lock and a legal hold on that version.
        // A null PUT that an engine prepared from a stale read of the versioning state must not replace it.
        meta.commit(vec![Op::CreateBucket {
            name: "l".into(),
            record: bucket(),
        }])
        .unwrap();
        meta.commit(vec![null_put("l", 3, Default::default())])
            .unwrap();
        meta.commit(vec![Op::SetVersioning {
            bucket: "l".into(),
            state: Versioning::Enabled,
        }])
        .unwrap();
        meta.commit(vec![Op::SetObjectLock {
            bucket: "l".into(),
            config: crate::meta::records::ObjectLockConfig {
                default_retention: None,
            },
        }])
        .unwrap();
        meta.commit(vec![Op::ChangeLock {
            bucket: "l".into(),
            key: "k".into(),
            version: VersionKey([3; 16]),
            change: LockChange::LegalHold(true),
        }])
        .unwrap();
        let refused = meta
            .commit(vec![null_put("l", 4, Default::default())])
            .unwrap_err();
        assert!(matches!(refused, Error::ObjectLocked(_)), "{refused:?}");
        assert_eq!(
            meta.null_version("l", "k").unwrap().unwrap().version_key,
            VersionKey([3; 16])
        );
    }
}
