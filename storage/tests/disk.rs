//! The `Disk` trait's contract, checked on both backends: every test runs once per backend, under
//! `portable::` and `uring::`.

use std::fs;
use std::io;
use std::path::Path;

use bytes::Bytes;
use strata_storage::disk::{DataId, Disk, Frame, PortableDisk};
use strata_storage::layout::{FrameLayout, HASH_SLOT, hash_slot};
use strata_storage::uring::UringDisk;

type Opener = fn(usize, &Path) -> Box<dyn Disk>;

fn portable_disk(i: usize, root: &Path) -> Box<dyn Disk> {
    Box::new(PortableDisk::open(i, root).unwrap())
}

fn uring_disk(i: usize, root: &Path) -> Box<dyn Disk> {
    Box::new(UringDisk::open(i, root).expect("this kernel allows io_uring"))
}

macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        mod portable {
            $( #[test] fn $name() { super::$name(super::portable_disk) } )*
        }
        mod uring {
            $( #[test] fn $name() { super::$name(super::uring_disk) } )*
        }
    };
}

both_backends!(
    staged_file_holds_exactly_what_was_written,
    a_shard_is_readable_before_and_after_publication,
    remove_deletes_wherever_the_shard_is,
    staging_leftovers_are_listed_and_junk_swept,
    publish_replaces_and_recreates_a_missing_fan_out_directory,
    reading_past_the_end_is_an_error,
    a_file_system_refusing_direct_io_still_gets_the_bytes,
    concurrent_writers_and_readers_share_one_disk,
    a_sink_dropped_mid_write_leaves_the_disk_usable,
    frames_give_the_same_file_whether_shards_go_in_place_or_are_copied,
    a_sink_dropped_with_shards_in_flight_leaves_the_disk_usable,
);

/// The sink's buffer (1 MiB): sizes around it matter.
const MIB: usize = 1024 * 1024;

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 251) as u8 ^ seed).collect()
}

fn staged_path(disk: &dyn Disk, id: DataId, repair: bool) -> std::path::PathBuf {
    let name = if repair {
        format!("{}.repair", id.to_hex())
    } else {
        id.to_hex()
    };
    disk.root().join("tmp").join(name)
}

fn data_path(disk: &dyn Disk, id: DataId) -> std::path::PathBuf {
    let hex = id.to_hex();
    disk.root().join("data").join(&hex[..2]).join(hex)
}

/// Writes `data` as the write path does: a 32-byte hash then a shard, in pieces.
fn write_shard(disk: &dyn Disk, id: DataId, repair: bool, data: &[u8], fsync: bool) {
    let mut sink = disk.create_staged(id, repair).unwrap();
    for piece in data.chunks(32 + (1 << 18)) {
        let (hash, shard) = piece.split_at(piece.len().min(32));
        sink.write_all(hash).unwrap();
        sink.write_all(shard).unwrap();
    }
    sink.finish(fsync).unwrap();
}

fn read_all(disk: &dyn Disk, id: DataId, len: usize) -> Vec<u8> {
    let src = disk.open(id).unwrap();
    let mut back = vec![0u8; len];
    src.read_exact_at(&mut back, 0).unwrap();
    back
}

fn staged_file_holds_exactly_what_was_written(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(0, dir.path());
    // Awkward sizes crossing the buffer and alignment boundaries, unaligned tails, several buffers in flight.
    for total in [
        0,
        1,
        4095,
        4096,
        4097,
        MIB - 1,
        MIB,
        MIB + 1,
        3 * MIB + 12_345,
        5 * MIB,
    ] {
        let id = DataId::random();
        let data = pattern(total, total as u8);
        write_shard(disk.as_ref(), id, false, &data, total % 2 == 0);
        let staged = fs::read(staged_path(disk.as_ref(), id, false)).unwrap();
        assert_eq!(staged.len(), total, "length for {total}");
        assert!(staged == data, "content for {total}");
        disk.publish(id, false, true).unwrap();
        assert!(
            read_all(disk.as_ref(), id, total) == data,
            "read back {total}"
        );
    }
}

fn a_shard_is_readable_before_and_after_publication(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(1, dir.path());
    assert_eq!(disk.index(), 1);
    let id = DataId::random();
    let data = pattern(2 * MIB + 77, 3);
    write_shard(disk.as_ref(), id, false, &data, true);
    // Before publication the staged file is what open finds.
    let src = disk.open(id).unwrap();
    let mut piece = vec![0u8; 1000];
    src.read_exact_at(&mut piece, MIB as u64 - 500).unwrap();
    assert_eq!(piece, &data[MIB - 500..MIB + 500]);
    disk.publish(id, false, true).unwrap();
    assert!(!staged_path(disk.as_ref(), id, false).exists());
    assert!(data_path(disk.as_ref(), id).exists());
    // A source opened before the rename still reads the same file.
    src.read_exact_at(&mut piece, 10).unwrap();
    assert_eq!(piece, &data[10..1010]);
    assert!(read_all(disk.as_ref(), id, data.len()) == data);
    let err = disk.open(DataId::random()).err().expect("no such shard");
    assert_eq!(err.kind(), io::ErrorKind::NotFound);
}

fn remove_deletes_wherever_the_shard_is(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(0, dir.path());
    let (published, staged) = (DataId::random(), DataId::random());
    write_shard(disk.as_ref(), published, false, b"published", false);
    disk.publish(published, false, false).unwrap();
    write_shard(disk.as_ref(), staged, false, b"staged", false);
    disk.remove(published).unwrap();
    disk.remove(staged).unwrap();
    assert!(!data_path(disk.as_ref(), published).exists());
    assert!(!staged_path(disk.as_ref(), staged, false).exists());
    // Removing what is not there is not an error.
    disk.remove(DataId::random()).unwrap();
    disk.remove(published).unwrap();
}

fn staging_leftovers_are_listed_and_junk_swept(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(0, dir.path());
    let (a, b) = (DataId::random(), DataId::random());
    write_shard(disk.as_ref(), a, false, b"a", false);
    write_shard(disk.as_ref(), b, true, b"b", false);
    fs::write(disk.root().join("tmp").join("upload.part"), b"junk").unwrap();
    let mut staged = disk.staged().unwrap();
    staged.sort_by_key(|(id, _)| id.0);
    let mut want = vec![(a, false), (b, true)];
    want.sort_by_key(|(id, _)| id.0);
    assert_eq!(staged, want);
    assert_eq!(disk.sweep_foreign().unwrap(), 1);
    assert!(!disk.root().join("tmp").join("upload.part").exists());
    assert_eq!(disk.staged().unwrap().len(), 2);
}

fn publish_replaces_and_recreates_a_missing_fan_out_directory(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(0, dir.path());
    let id = DataId::random();
    write_shard(disk.as_ref(), id, false, b"first", true);
    disk.publish(id, false, true).unwrap();
    // A repair replaces the published file.
    write_shard(disk.as_ref(), id, true, b"second!", true);
    disk.publish(id, true, true).unwrap();
    assert_eq!(fs::read(data_path(disk.as_ref(), id)).unwrap(), b"second!");
    // The fan-out directory vanishes (an operator cleaning up): the next publish into it recreates it.
    let fan_out = data_path(disk.as_ref(), id).parent().unwrap().to_owned();
    fs::remove_dir_all(&fan_out).unwrap();
    write_shard(disk.as_ref(), id, false, b"third", true);
    disk.publish(id, false, true).unwrap();
    assert_eq!(fs::read(data_path(disk.as_ref(), id)).unwrap(), b"third");
    // Publishing what was never staged fails.
    assert!(disk.publish(DataId::random(), false, true).is_err());
}

fn reading_past_the_end_is_an_error(open: Opener) {
    let dir = tempfile::tempdir().unwrap();
    let disk = open(0, dir.path());
    let id = DataId::random();
    write_shard(disk.as_ref(), id, false, &pattern(5000, 1), false);
    let src = disk.open(id).unwrap();
    let mut buf = vec![0u8; 100];
    let err = src.read_exact_at(&mut buf, 4950).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    src.read_exact_at(&mut buf, 4900).unwrap();
    assert_eq!(buf, &pattern(5000, 1)[4900..]);
}

fn a_file_system_refusing_direct_io_still_gets_the_bytes(open: Opener) {
    // /dev/shm is tmpfs, which refuses O_DIRECT: the sinks fall back to buffered writes there.
    let shm = Path::new("/dev/shm");
    assert!(shm.is_dir(), "this test needs a tmpfs at /dev/shm");
    let dir = tempfile::tempdir_in(shm).unwrap();
    let disk = open(0, dir.path());
    for total in [1, MIB + 4097] {
        let id = DataId::random();
        let data = pattern(total, 9);
        write_shard(disk.as_ref(), id, false, &data, true);
        disk.publish(id, false, true).unwrap();
        assert!(
            read_all(disk.as_ref(), id, total) == data,
            "{total} bytes on tmpfs"
        );
    }
    // Frames whose shards would go in place on a disk that takes O_DIRECT are copied here.
    let header = pattern(HASH_SLOT, 5);
    let batches: Vec<Vec<Frame>> = vec![
        (0..5u8)
            .map(|i| frame(aligned(&pattern(1 << 18, i))))
            .collect(),
    ];
    let id = write_frames(disk.as_ref(), &header, &batches, FrameLayout::Aligned, true);
    let expected = expected_file(&header, &batches, FrameLayout::Aligned);
    assert!(fs::read(staged_path(disk.as_ref(), id, false)).unwrap() == expected);
}

fn concurrent_writers_and_readers_share_one_disk(open: Opener) {
    // Many callers at once on one disk: the io_uring backend batches their requests into shared submissions.
    let dir = tempfile::tempdir().unwrap();
    let disk: std::sync::Arc<dyn Disk> = open(0, dir.path()).into();
    let threads: Vec<_> = (0..8u8)
        .map(|t| {
            let disk = disk.clone();
            std::thread::spawn(move || {
                for round in 0..3u8 {
                    let id = DataId::random();
                    let data = pattern(MIB + 1000 * usize::from(t) + 1, t ^ round);
                    write_shard(disk.as_ref(), id, false, &data, true);
                    disk.publish(id, false, true).unwrap();
                    let src = disk.open(id).unwrap();
                    for at in (0..data.len()).step_by(4096 * 13) {
                        let len = (data.len() - at).min(5000);
                        let mut buf = vec![0u8; len];
                        src.read_exact_at(&mut buf, at as u64).unwrap();
                        assert!(
                            buf == data[at..at + len],
                            "thread {t} round {round} at {at}"
                        );
                    }
                    disk.remove(id).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(disk.staged().unwrap().is_empty());
}

fn a_sink_dropped_mid_write_leaves_the_disk_usable(open: Opener) {
    // An abandoned upload drops its sink with writes in flight: they are waited for, not freed under the kernel.
    let dir = tempfile::tempdir().unwrap();
    let disk = open(0, dir.path());
    for _ in 0..4 {
        let mut sink = disk.create_staged(DataId::random(), false).unwrap();
        sink.write_all(&pattern(3 * MIB + 5, 1)).unwrap();
        drop(sink);
    }
    let id = DataId::random();
    let data = pattern(2 * MIB, 2);
    write_shard(disk.as_ref(), id, false, &data, true);
    disk.publish(id, false, true).unwrap();
    assert!(read_all(disk.as_ref(), id, data.len()) == data);
}

/// `data` at a page-aligned address, as the encoder's block and parity buffers hold shards.
fn aligned(data: &[u8]) -> Bytes {
    let mut buf = vec![0u8; data.len() + 4096];
    let at = buf.as_ptr().align_offset(4096);
    buf[at..at + data.len()].copy_from_slice(data);
    Bytes::from(buf).slice(at..at + data.len())
}

/// `data` one byte past an aligned address: never written in place.
fn misaligned(data: &[u8]) -> Bytes {
    let mut buf = vec![0u8; data.len() + 4097];
    let at = buf.as_ptr().align_offset(4096) + 1;
    buf[at..at + data.len()].copy_from_slice(data);
    Bytes::from(buf).slice(at..at + data.len())
}

fn frame(shard: Bytes) -> Frame {
    (*blake3::hash(&shard).as_bytes(), shard)
}

/// What a file of `header` then `batches` of frames in `layout` holds.
fn expected_file(header: &[u8], batches: &[Vec<Frame>], layout: FrameLayout) -> Vec<u8> {
    let mut out = header.to_vec();
    for (hash, shard) in batches.iter().flatten() {
        out.extend_from_slice(layout.slot_of(&hash_slot(hash)));
        out.extend_from_slice(shard);
    }
    out
}

/// Writes `header` and `batches` of frames in `layout` to a new staged file; its id.
fn write_frames(
    disk: &dyn Disk,
    header: &[u8],
    batches: &[Vec<Frame>],
    layout: FrameLayout,
    fsync: bool,
) -> DataId {
    let id = DataId::random();
    let mut sink = disk.create_staged(id, false).unwrap();
    sink.write_all(header).unwrap();
    for batch in batches {
        sink.write_frames(batch.clone(), layout).unwrap();
    }
    sink.finish(fsync).unwrap();
    id
}

fn frames_give_the_same_file_whether_shards_go_in_place_or_are_copied(open: Opener) {
    const SHARD: usize = 1 << 18;
    let dir = tempfile::tempdir().unwrap();
    let disk = open(0, dir.path());
    let shard = |seed: u8| pattern(SHARD, seed);
    /// A case's name, the header, and the batches of frames.
    type Case = (&'static str, Vec<u8>, Vec<Vec<Frame>>);
    let cases: Vec<Case> = vec![
        (
            // The write path's shape: full shards in batches of four (more batches than the sink has
            // buffers), then the last block's short shard.
            "aligned batches and a short tail",
            pattern(HASH_SLOT, 1),
            (0..5u8)
                .map(|b| {
                    (0..4u8)
                        .map(|i| frame(aligned(&shard(b * 4 + i))))
                        .collect()
                })
                .chain([vec![frame(aligned(&pattern(1000, 99)))]])
                .collect(),
        ),
        (
            // A shard that cannot go in place between two that can; a rebuilt shard's odd length.
            "mixed",
            pattern(2 * HASH_SLOT, 2),
            vec![
                vec![
                    frame(aligned(&shard(1))),
                    frame(misaligned(&shard(2))),
                    frame(aligned(&shard(3))),
                ],
                vec![
                    frame(aligned(&pattern(SHARD - 6, 4))),
                    frame(aligned(&shard(5))),
                ],
                vec![frame(aligned(&shard(6)))],
            ],
        ),
        (
            // A header of format 1's unpadded kind leaves everything after it unaligned: all copied.
            "unaligned header",
            pattern(300, 3),
            vec![(0..4u8).map(|i| frame(aligned(&shard(i)))).collect()],
        ),
        ("nothing but the header", pattern(HASH_SLOT, 4), vec![]),
    ];
    for (name, header, batches) in cases {
        for (layout, fsync) in [
            (FrameLayout::Aligned, true),
            (FrameLayout::Aligned, false),
            (FrameLayout::Compact, true),
        ] {
            let id = write_frames(disk.as_ref(), &header, &batches, layout, fsync);
            let expected = expected_file(&header, &batches, layout);
            let staged = fs::read(staged_path(disk.as_ref(), id, false)).unwrap();
            assert_eq!(staged.len(), expected.len(), "{name}: length");
            assert!(staged == expected, "{name}: content");
            disk.publish(id, false, true).unwrap();
            assert!(
                read_all(disk.as_ref(), id, expected.len()) == expected,
                "{name}: read back"
            );
        }
    }
}

fn a_sink_dropped_with_shards_in_flight_leaves_the_disk_usable(open: Opener) {
    // An abandoned upload drops its sink while shards written in place may still be with the device: the
    // sink waits for them before their memory goes.
    let dir = tempfile::tempdir().unwrap();
    let disk = open(0, dir.path());
    for round in 0..4u8 {
        let mut sink = disk.create_staged(DataId::random(), false).unwrap();
        sink.write_all(&pattern(HASH_SLOT, round)).unwrap();
        for b in 0..3u8 {
            let batch = (0..4u8)
                .map(|i| frame(aligned(&pattern(1 << 18, round ^ b ^ i))))
                .collect();
            sink.write_frames(batch, FrameLayout::Aligned).unwrap();
        }
        drop(sink);
    }
    let batches = vec![vec![frame(aligned(&pattern(1 << 18, 7)))]];
    let header = pattern(HASH_SLOT, 8);
    let id = write_frames(disk.as_ref(), &header, &batches, FrameLayout::Aligned, true);
    disk.publish(id, false, true).unwrap();
    let expected = expected_file(&header, &batches, FrameLayout::Aligned);
    assert!(read_all(disk.as_ref(), id, expected.len()) == expected);
}
