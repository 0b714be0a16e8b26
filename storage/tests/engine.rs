//! The storage engine's behaviour through its public API, run once per disk backend (`portable::` and
//! `uring::`): object sizes around the inline and block boundaries, ranges, overwrite, delete, multipart,
//! a corrupted shard, lost disks, and a restart that finds staged files.

use std::path::Path;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::StreamExt;
use strata_config::{Config, IoBackend};
use strata_storage::erasure::{ErasureCode, Geometry};
use strata_storage::layout::{BlockMap, FrameLayout, HASH_LEN, ShardHeader};
use strata_storage::multipart::MIN_PART_SIZE;
use strata_storage::{
    BodyStream, CompletePart, Engine, Error, ObjectData, ObjectRecord, PutOptions, Settings,
};

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod portable {
            $( #[test] fn $name() { super::$name(strata_config::IoBackend::Portable) } )*
        }
        mod uring {
            $( #[test] fn $name() { super::$name(strata_config::IoBackend::Uring) } )*
        }
    };
}

both_backends!(
    objects_of_every_size_come_back_whole,
    ranges_return_exactly_the_bytes_asked_for,
    overwrite_then_delete,
    multipart_upload_assembles_its_parts,
    a_corrupted_shard_is_rebuilt_not_served,
    data_survives_losing_parity_many_disks,
    metadata_survives_losing_parity_many_replicas,
    restart_rolls_committed_staged_files_forward,
    segments_of_either_erasure_code_are_rebuilt_after_an_upgrade,
    a_failed_upload_leaves_nothing_staged,
    segments_of_either_shard_layout_are_read_and_repaired,
);

/// Small blocks so that multi-block objects stay small.
const BLOCK: usize = 64 * 1024;
const INLINE: usize = 16 * 1024;
const BUCKET: &str = "b";

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn settings(dir: &Path, io: IoBackend) -> Settings {
    let mut cfg = Config::default();
    cfg.server.data_dir = dir.to_owned();
    cfg.storage.block_size = BLOCK;
    cfg.storage.inline_threshold = INLINE;
    cfg.storage.meta_cache_bytes = 1024 * 1024;
    cfg.storage.io = io;
    cfg.validate().unwrap();
    Settings::from_config(&cfg).unwrap()
}

async fn open(dir: &Path, io: IoBackend) -> Arc<Engine> {
    let engine = Engine::open(settings(dir, io)).await.unwrap();
    assert_eq!(
        engine.io_backend(),
        io,
        "the backend under test is the one in use"
    );
    engine
}

/// Opens the engine again after its runtime was dropped: the metadata committer thread of the previous
/// engine lets go of the files a moment later.
async fn reopen(dir: &Path, io: IoBackend) -> Arc<Engine> {
    for _ in 0..100 {
        match Engine::open(settings(dir, io)).await {
            Ok(engine) => {
                assert_eq!(engine.io_backend(), io);
                return engine;
            }
            Err(Error::Meta(m)) if m.contains("already open") => {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            Err(e) => panic!("reopening: {e}"),
        }
    }
    open(dir, io).await
}

async fn open_with_bucket(dir: &Path, io: IoBackend) -> Arc<Engine> {
    let engine = open(dir, io).await;
    engine
        .create_bucket(BUCKET, "owner", "us-east-1", false)
        .await
        .unwrap();
    engine
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i * 131 + i / 509) as u8 ^ seed).collect()
}

/// A body in awkward 7,000-byte chunks.
fn body(data: &[u8]) -> BodyStream {
    let chunks: Vec<_> = data
        .chunks(7000)
        .map(|c| Ok(Bytes::copy_from_slice(c)))
        .collect();
    Box::pin(futures_util::stream::iter(chunks))
}

async fn put(engine: &Engine, key: &str, data: &[u8]) -> ObjectRecord {
    let opts = PutOptions {
        content_length: Some(data.len() as u64),
        owner: "owner".into(),
        ..PutOptions::default()
    };
    engine
        .put_object(BUCKET, key, opts, body(data), |_| Ok(()))
        .await
        .unwrap()
}

async fn get_range(engine: &Arc<Engine>, key: &str, start: u64, end: u64) -> Vec<u8> {
    let record = engine.head_object(BUCKET, key).await.unwrap();
    let mut stream = engine.read_object(BUCKET, key, &record, start, end);
    let mut out = Vec::new();
    while let Some(piece) = stream.next().await {
        out.extend_from_slice(&piece.unwrap());
    }
    out
}

async fn get(engine: &Arc<Engine>, key: &str) -> Vec<u8> {
    let size = engine.head_object(BUCKET, key).await.unwrap().size;
    if size == 0 {
        return Vec::new();
    }
    get_range(engine, key, 0, size - 1).await
}

fn objects_of_every_size_come_back_whole(io: IoBackend) {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let engine = open_with_bucket(dir.path(), io).await;
        for size in [
            0,
            1,
            INLINE - 1,
            INLINE,
            INLINE + 1,
            BLOCK - 1,
            BLOCK,
            BLOCK + 1,
            3 * BLOCK + 4097,
        ] {
            let key = format!("size-{size}");
            let data = pattern(size, size as u8);
            let record = put(&engine, &key, &data).await;
            assert_eq!(record.size, size as u64);
            assert_eq!(
                engine.shard_paths(&record).len(),
                usize::from(size > INLINE),
                "inline or shard files for {size}"
            );
            assert!(get(&engine, &key).await == data, "content of {size}");
        }
    });
}

fn ranges_return_exactly_the_bytes_asked_for(io: IoBackend) {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let engine = open_with_bucket(dir.path(), io).await;
        let len = 3 * BLOCK + 4097;
        let data = pattern(len, 7);
        put(&engine, "ranged", &data).await;
        let b = BLOCK as u64;
        for (start, end) in [
            (0, 0),
            (b - 1, b),
            (100, len as u64 - 1),
            (len as u64 - 1, len as u64 - 1),
            (b, 2 * b - 1),
            (12_345, 2 * b + 54_321),
        ] {
            let got = get_range(&engine, "ranged", start, end).await;
            assert!(
                got == data[start as usize..=end as usize],
                "range {start}..={end}"
            );
        }
        let small = pattern(INLINE, 8);
        put(&engine, "inline", &small).await;
        assert_eq!(get_range(&engine, "inline", 5, 9).await, &small[5..=9]);
    });
}

fn overwrite_then_delete(io: IoBackend) {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let engine = open_with_bucket(dir.path(), io).await;
        let first = pattern(2 * BLOCK + 3, 1);
        let second = pattern(BLOCK + 5, 2);
        let old = put(&engine, "k", &first).await;
        put(&engine, "k", &second).await;
        assert!(get(&engine, "k").await == second);
        // A reader holding the old record still gets the old bytes (its files outlive the overwrite).
        let mut stream = engine.read_object(BUCKET, "k", &old, 0, old.size - 1);
        let mut back = Vec::new();
        while let Some(piece) = stream.next().await {
            back.extend_from_slice(&piece.unwrap());
        }
        assert!(back == first);
        engine
            .delete_object(BUCKET, "k", None, false)
            .await
            .unwrap();
        assert!(matches!(
            engine.head_object(BUCKET, "k").await,
            Err(Error::NoSuchKey)
        ));
        // Deleting again is not an error.
        engine
            .delete_object(BUCKET, "k", None, false)
            .await
            .unwrap();
    });
}

fn multipart_upload_assembles_its_parts(io: IoBackend) {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let engine = open_with_bucket(dir.path(), io).await;
        let opts = PutOptions {
            owner: "owner".into(),
            ..PutOptions::default()
        };
        let upload = engine
            .create_multipart_upload(BUCKET, "mp", opts, None)
            .await
            .unwrap();
        let parts = [pattern(MIN_PART_SIZE as usize, 1), pattern(BLOCK + 777, 2)];
        let mut complete = Vec::new();
        for (i, data) in parts.iter().enumerate() {
            let number = i as u32 + 1;
            let (part, _) = engine
                .upload_part(
                    BUCKET,
                    "mp",
                    &upload,
                    number,
                    body(data),
                    Some(data.len() as u64),
                    None,
                    |_| Ok(()),
                )
                .await
                .unwrap();
            complete.push(CompletePart {
                number,
                etag: part.etag,
                checksum: None,
            });
        }
        let record = engine
            .complete_multipart_upload(BUCKET, "mp", &upload, complete)
            .await
            .unwrap();
        let whole = parts.concat();
        assert_eq!(record.size, whole.len() as u64);
        assert!(get(&engine, "mp").await == whole);
        // A range across the part boundary.
        let at = MIN_PART_SIZE;
        assert!(
            get_range(&engine, "mp", at - 10, at + 10).await
                == whole[at as usize - 10..=at as usize + 10]
        );
    });
}

fn a_corrupted_shard_is_rebuilt_not_served(io: IoBackend) {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let engine = open_with_bucket(dir.path(), io).await;
        let data = pattern(3 * BLOCK, 4);
        let record = put(&engine, "c", &data).await;
        let (_, paths) = &engine.shard_paths(&record)[0];
        // Slot 0 holds data: flip a byte in the middle of its file (inside a block, past the header).
        let victim = &paths[0];
        let mut bytes = std::fs::read(victim).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid] ^= 0xff;
        std::fs::write(victim, &bytes).unwrap();
        assert!(get(&engine, "c").await == data);
    });
}

fn data_survives_losing_parity_many_disks(io: IoBackend) {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let engine = open_with_bucket(dir.path(), io).await;
        let data = pattern(2 * BLOCK + 99, 5);
        let record = put(&engine, "lost", &data).await;
        let (_, paths) = &engine.shard_paths(&record)[0];
        // Two (= m) whole disk directories go away, data shards among them.
        for slot in [0, 2] {
            let disk_root = paths[slot].ancestors().nth(3).unwrap();
            std::fs::remove_dir_all(disk_root).unwrap();
        }
        assert!(get(&engine, "lost").await == data);
    });
}

/// A 4+2 store keeps metadata replicas on the first five disks (2m + 1, see `metadata_replicas`), none on the
/// sixth. Losing two of the five (disk directories gone while the store is down) loses no object, inline or
/// erasure-coded, and writes go on.
fn metadata_survives_losing_parity_many_replicas(io: IoBackend) {
    let dir = tempfile::tempdir().unwrap();
    let small = pattern(INLINE / 2, 10);
    let large = pattern(2 * BLOCK + 3, 11);
    let roots = runtime().block_on(async {
        let engine = open_with_bucket(dir.path(), io).await;
        put(&engine, "small", &small).await;
        put(&engine, "large", &large).await;
        engine.settings().disks.clone()
    });
    let holds_replica = |root: &Path| root.join("strata.redb").exists();
    assert_eq!(
        roots.iter().map(|r| holds_replica(r)).collect::<Vec<_>>(),
        [true, true, true, true, true, false]
    );
    for lost in &roots[..2] {
        std::fs::remove_dir_all(lost).unwrap();
        std::fs::create_dir_all(lost).unwrap();
    }
    runtime().block_on(async {
        let engine = reopen(dir.path(), io).await;
        assert!(get(&engine, "small").await == small);
        assert!(get(&engine, "large").await == large);
        put(&engine, "after", &small).await;
        assert!(get(&engine, "after").await == small);
    });
    assert!(!holds_replica(&roots[5]), "the sixth disk holds none");
}

/// A store written with Leopard Reed-Solomon (every segment before the code was recorded), reopened by a build
/// that writes Vandermonde: old and new segments each rebuild lost data shards with their own code.
fn segments_of_either_erasure_code_are_rebuilt_after_an_upgrade(io: IoBackend) {
    let dir = tempfile::tempdir().unwrap();
    let old_data = pattern(3 * BLOCK + 5, 8);
    let new_data = pattern(2 * BLOCK + 77, 9);
    runtime().block_on(async {
        let mut old = settings(dir.path(), io);
        old.geometry = Geometry::with_code(4, 2, ErasureCode::Leopard);
        let engine = Engine::open(old).await.unwrap();
        engine
            .create_bucket(BUCKET, "owner", "us-east-1", false)
            .await
            .unwrap();
        put(&engine, "old", &old_data).await;
    });
    runtime().block_on(async {
        let engine = reopen(dir.path(), io).await;
        let new = put(&engine, "new", &new_data).await;
        let old = engine.head_object(BUCKET, "old").await.unwrap();
        let code = |r: &ObjectRecord| match &r.data {
            ObjectData::Segments(segs) => segs[0].geometry.code,
            other => panic!("expected segments, got {other:?}"),
        };
        assert_eq!(code(&old), ErasureCode::Leopard);
        assert_eq!(code(&new), ErasureCode::preferred(4, 2));
        for (key, record, data) in [("old", &old, &old_data), ("new", &new, &new_data)] {
            // Two data shards (= m) of every block are gone.
            let (_, paths) = &engine.shard_paths(record)[0];
            std::fs::remove_file(&paths[0]).unwrap();
            std::fs::remove_file(&paths[3]).unwrap();
            assert!(&get(&engine, key).await == data, "{key}");
        }
    });
}

/// Rewrites an aligned shard file (format 2) as the compact layout (format 1) that stores written before the
/// aligned layout hold: the same header and frames without the padding.
fn rewrite_compact(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let src = Disk0(bytes.clone());
    let (header, frames) = ShardHeader::read(&src).unwrap();
    assert_eq!(frames.layout, FrameLayout::Aligned, "written aligned");
    let map = BlockMap {
        geometry: header.geometry,
        block_size: u64::from(header.block_size),
        size: header.size,
    };
    let mut out = header.encode(FrameLayout::Compact);
    for block in 0..map.blocks() {
        // The hash and the shard right after it.
        let at = frames.hash_offset(&map, block) as usize;
        out.extend_from_slice(&bytes[at..at + HASH_LEN + map.shard_len(block)]);
    }
    std::fs::write(path, out).unwrap();
}

/// A shard file's bytes, read as a disk would.
struct Disk0(Vec<u8>);

impl strata_storage::disk::ShardSource for Disk0 {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        let at = offset as usize;
        buf.copy_from_slice(&self.0[at..at + buf.len()]);
        Ok(())
    }
}

/// Flips a byte of shard file `path` at `at`, reads object "k" (which must still come back as `data`) and
/// waits for the repair to put back the file's old bytes.
async fn repaired_as_it_was(engine: &Arc<Engine>, path: &Path, at: usize, data: &[u8]) {
    repaired_as_it_was_after(engine, path, |bytes| bytes[at] ^= 0xff, data).await;
}

/// [`repaired_as_it_was`] after any change to the file's bytes.
async fn repaired_as_it_was_after(
    engine: &Arc<Engine>,
    path: &Path,
    corrupt: impl FnOnce(&mut Vec<u8>),
    data: &[u8],
) {
    let before = std::fs::read(path).unwrap();
    let mut bytes = before.clone();
    corrupt(&mut bytes);
    std::fs::write(path, &bytes).unwrap();
    assert!(get(engine, "k").await == data, "despite the corrupt shard");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while std::fs::read(path).unwrap() != before {
        assert!(
            std::time::Instant::now() < deadline,
            "{} repaired within 20 s",
            path.display()
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(get(engine, "k").await == data, "after the repair");
}

fn segments_of_either_shard_layout_are_read_and_repaired(io: IoBackend) {
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        // Blocks of 512 KiB: shards of 128 KiB, the smallest laid out aligned.
        let mut big = settings(dir.path(), io);
        big.block_size = 512 * 1024;
        let engine = Engine::open(big).await.unwrap();
        engine
            .create_bucket(BUCKET, "owner", "us-east-1", false)
            .await
            .unwrap();
        let data = pattern(3 * 512 * 1024 + 1000, 10);
        let record = put(&engine, "k", &data).await;
        let (_, paths) = &engine.shard_paths(&record)[0];
        for path in paths {
            let bytes = std::fs::read(path).unwrap();
            assert_eq!(bytes[8], 2, "aligned layout");
            // Header page, then three full frames and the last block's (1000 / 4, rounded up to even).
            assert_eq!(bytes.len(), 4096 + 3 * (4096 + 128 * 1024) + 4096 + 250);
        }
        assert!(get(&engine, "k").await == data);
        // A corrupt shard is rebuilt, not served, and repaired as it was: the same bytes again.
        repaired_as_it_was(&engine, &paths[2], 300_000, &data).await;
        // The format number is outside the header's hash: shard 0 (the first the reader opens) claiming the
        // compact layout fails its block hashes, and is repaired as its five siblings are laid out.
        repaired_as_it_was_after(&engine, &paths[0], |bytes| bytes[8] = 1, &data).await;
        // The same object as a store written before the aligned layout holds it.
        for path in paths {
            rewrite_compact(path);
        }
        assert!(get(&engine, "k").await == data, "compact files read");
        assert!(get_range(&engine, "k", 600_000, 1_200_000).await == data[600_000..=1_200_000]);
        // Repaired compact, as its sibling files are (an older build still reads it).
        repaired_as_it_was(&engine, &paths[1], 200_000, &data).await;
        assert_eq!(std::fs::read(&paths[1]).unwrap()[8], 1, "still compact");
        // Small objects stay compact: a 100 KB object's shards are short.
        let small = pattern(100_000, 11);
        let record = put(&engine, "small", &small).await;
        for path in &engine.shard_paths(&record)[0].1 {
            assert_eq!(std::fs::read(path).unwrap()[8], 1, "compact layout");
        }
        assert!(get(&engine, "small").await == small);
    });
}

fn restart_rolls_committed_staged_files_forward(io: IoBackend) {
    let dir = tempfile::tempdir().unwrap();
    let data = pattern(2 * BLOCK + 11, 6);
    let mut staged = Vec::new();
    let mut junk = Vec::new();
    runtime().block_on(async {
        let engine = open_with_bucket(dir.path(), io).await;
        let record = put(&engine, "crash", &data).await;
        let (id, paths) = engine.shard_paths(&record).remove(0);
        // As if the process died between the metadata commit and publication: the files are still staged.
        for published in &paths {
            let disk_root = published.ancestors().nth(3).unwrap();
            let tmp = disk_root.join("tmp");
            std::fs::rename(published, tmp.join(id.to_hex())).unwrap();
            // An upload that never committed, and junk that is not a shard at all.
            let orphan = tmp.join(strata_storage::disk::DataId::random().to_hex());
            std::fs::write(&orphan, b"never committed").unwrap();
            std::fs::write(tmp.join("stray.tmp"), b"junk").unwrap();
            junk.push(orphan);
            junk.push(tmp.join("stray.tmp"));
        }
        staged = paths;
    });
    runtime().block_on(async {
        let engine = reopen(dir.path(), io).await;
        for published in &staged {
            assert!(published.exists(), "{} rolled forward", published.display());
        }
        for j in &junk {
            assert!(!j.exists(), "{} swept", j.display());
        }
        assert!(get(&engine, "crash").await == data);
    });
}

/// Files in every disk's staging directory under `dir`.
fn staged_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_owned()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                todo.push(path);
            } else if d.file_name().is_some_and(|n| n == "tmp") {
                found.push(path);
            }
        }
    }
    found
}

fn a_failed_upload_leaves_nothing_staged(io: IoBackend) {
    // Uploads that fail part-way (a body shorter than its Content-Length, a body that breaks off) abandon
    // their shard writers: every staged file goes, and the engine goes on writing.
    let dir = tempfile::tempdir().unwrap();
    runtime().block_on(async {
        let engine = open_with_bucket(dir.path(), io).await;
        let data = pattern(5 * BLOCK + 7, 8);
        let short = PutOptions {
            content_length: Some(data.len() as u64 + 100),
            owner: "owner".into(),
            ..PutOptions::default()
        };
        let r = engine
            .put_object(BUCKET, "short", short, body(&data), |_| Ok(()))
            .await;
        assert!(r.is_err(), "a body shorter than its length is refused");
        let broken: BodyStream = Box::pin(
            futures_util::stream::iter(
                data.chunks(7000)
                    .map(|c| Ok(Bytes::copy_from_slice(c)))
                    .collect::<Vec<_>>(),
            )
            .chain(futures_util::stream::once(async {
                Err(std::io::Error::other("connection reset").into())
            })),
        );
        let opts = PutOptions {
            owner: "owner".into(),
            ..PutOptions::default()
        };
        let r = engine
            .put_object(BUCKET, "broken", opts, broken, |_| Ok(()))
            .await;
        assert!(r.is_err(), "a body that breaks off is refused");
        // Removal runs in the background once the writers have let go of their files.
        let mut left = staged_files(dir.path());
        for _ in 0..200 {
            if left.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            left = staged_files(dir.path());
        }
        assert!(left.is_empty(), "left staged: {left:?}");
        put(&engine, "after", &data).await;
        assert!(get(&engine, "after").await == data);
    });
}
