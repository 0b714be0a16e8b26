//! Criterion benches for the CPU kernels that bound the storage data path (issue #7): Reed-Solomon encode and
//! reconstruct of one block, BLAKE3 over shard blocks, MD5 for ETags, the shard sinks' copy into their
//! aligned buffers, and a GET's read of a shard frame from the page cache (by `pread`, and hashed through a mapping).
//!
//! Reed-Solomon runs at every geometry we expect to configure, with the default 1 MiB block, four ways: through
//! Strata's own [`Codec`] with each of its two codes (what the PUT and GET paths call, copies and buffer pool
//! included: `strata-leopard`, `strata-vandermonde`), directly through reed-solomon-simd (the Leopard engine;
//! encoder and decoder reused, no copy out) and directly through reed-solomon-erasure with its C SIMD kernels (the
//! Vandermonde engine, restoring in place). Throughput is
//! bytes of object data, so numbers compare across geometries: an encode of 1 MiB at 8+4 counts 1 MiB, not the
//! 1.5 MiB of shards it produces.
//!
//! Every engine's output is checked once before it is timed (reconstruction must give back the shards that were
//! lost), so a bench cannot report the speed of a wrong answer. `cargo test -p strata-storage --benches` runs
//! each bench once in criterion's test mode (under a second): the checks without the timing.
//!
//! Times are CPU time of the benchmarking thread (`benches/support/thread_cpu.rs`), not wall time: the kernels
//! are single-threaded and the machine is shared, so this is the cost per core that a busy neighbour cannot
//! inflate.
//!
//! Run: `cargo bench -p strata-storage --bench kernels -- --warm-up-time 1 --measurement-time 3`; results and
//! what they mean per GiB are in bench/KERNELS.md.

mod support {
    pub(crate) mod thread_cpu;
}

use std::hint::black_box;

use bytes::Bytes;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use md5_reference::Digest;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use strata_storage::erasure::{Codec, ErasureCode, Geometry};
use strata_storage::md5::Md5;
use support::thread_cpu::ThreadCpuTime;

/// `storage.block_size` default (config/src/lib.rs).
const BLOCK: usize = 1024 * 1024;

/// The default geometry first, then the others an operator is likely to pick.
const GEOMETRIES: [(u8, u8); 4] = [(4, 2), (2, 1), (8, 4), (12, 4)];

/// Deterministic incompressible-looking bytes (xorshift64*), so no engine gets an easy all-zero input.
fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        out.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

fn label(g: Geometry) -> String {
    format!("{}+{}", g.data, g.parity)
}

/// Which shards a reconstruction bench loses: always `m` of them, as many as the geometry tolerates.
#[derive(Clone, Copy)]
enum Loss {
    /// All `m` from the data shards: a GET that lost disks decodes these.
    Data,
    /// Half data, half parity (data rounded up): what a repair of a block restores.
    Mixed,
}

impl Loss {
    fn name(self) -> &'static str {
        match self {
            Loss::Data => "lose-data",
            Loss::Mixed => "lose-mixed",
        }
    }

    /// Indices of the lost shards.
    fn lost(self, g: Geometry) -> Vec<usize> {
        let (k, m) = (usize::from(g.data), usize::from(g.parity));
        let from_data = match self {
            Loss::Data => m.min(k),
            Loss::Mixed => m.div_ceil(2).min(k),
        };
        (0..from_data).chain(k..k + (m - from_data)).collect()
    }

    /// The losses worth measuring for `g`: with one parity shard a mix is the same as a data loss.
    fn cases(g: Geometry) -> &'static [Loss] {
        if g.parity >= 2 {
            &[Loss::Data, Loss::Mixed]
        } else {
            &[Loss::Data]
        }
    }
}

/// One block cut and encoded the way each engine wants it, shared by the encode and reconstruct benches.
struct Fixture {
    geometry: Geometry,
    shard_len: usize,
    block: Bytes,
    /// Strata's Leopard shards (data then parity) for the block: what reed-solomon-simd computes.
    codec_shards: Vec<Bytes>,
    /// reed-solomon-erasure's shards for the same data (its parity differs: another code).
    rse_shards: Vec<Vec<u8>>,
}

/// The bench name of Strata's `Codec` running `code`.
fn strata_engine(code: ErasureCode) -> &'static str {
    match code {
        ErasureCode::Leopard => "strata-leopard",
        ErasureCode::Vandermonde => "strata-vandermonde",
    }
}

impl Fixture {
    /// Each code this CPU runs, with the shards its engine computes for the block (data then parity).
    fn codes(&self) -> Vec<(ErasureCode, Vec<Bytes>)> {
        let mut codes = vec![(ErasureCode::Leopard, self.codec_shards.clone())];
        if ErasureCode::Vandermonde.usable() {
            let rse = self
                .rse_shards
                .iter()
                .map(|s| Bytes::copy_from_slice(s))
                .collect();
            codes.push((ErasureCode::Vandermonde, rse));
        }
        codes
    }

    fn new(geometry: Geometry) -> Self {
        let block = Bytes::from(pseudo_random(BLOCK, 0x5eed));
        let shard_len = geometry.shard_len(BLOCK);
        let codec_shards = Codec::new(geometry.with(ErasureCode::Leopard))
            .expect("geometry supported")
            .encode(block.clone())
            .expect("encode");
        let (k, m) = (usize::from(geometry.data), usize::from(geometry.parity));
        let mut rse_shards: Vec<Vec<u8>> = codec_shards[..k].iter().map(|s| s.to_vec()).collect();
        rse_shards.extend((0..m).map(|_| vec![0u8; shard_len]));
        let (data, parity) = rse_shards.split_at_mut(k);
        rse(geometry).encode_sep(data, parity).expect("rse encode");
        Fixture {
            geometry,
            shard_len,
            block,
            codec_shards,
            rse_shards,
        }
    }

    fn k(&self) -> usize {
        usize::from(self.geometry.data)
    }

    fn m(&self) -> usize {
        usize::from(self.geometry.parity)
    }
}

fn rse(g: Geometry) -> reed_solomon_erasure::galois_8::ReedSolomon {
    reed_solomon_erasure::galois_8::ReedSolomon::new(usize::from(g.data), usize::from(g.parity))
        .expect("rse geometry")
}

fn erasure_encode(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("erasure_encode");
    group.throughput(Throughput::Bytes(BLOCK as u64));
    // Distinct blocks encoded in turn by the `-cold` benches, made once for every geometry: 96 MiB, three
    // times the 32 MiB L3 of the machine the results are from.
    let cold_blocks: Vec<Bytes> = (0..96u64)
        .map(|i| Bytes::from(pseudo_random(BLOCK, 0xc01d + i)))
        .collect();
    for (data, parity) in GEOMETRIES {
        let f = Fixture::new(Geometry::with_code(data, parity, ErasureCode::Leopard));
        let name = label(f.geometry);
        for (code, want) in f.codes() {
            let codec = Codec::new(f.geometry.with(code)).expect("geometry supported");
            let got = codec.encode(f.block.clone()).expect("encode");
            assert!(
                got.iter().zip(&want).all(|(g, w)| g[..] == w[..]),
                "{code:?} encodes as its engine does"
            );
            group.bench_function(BenchmarkId::new(strata_engine(code), &name), |b| {
                b.iter(|| codec.encode(black_box(f.block.clone())).expect("encode"))
            });
            // As in the write path: each block encoded once, so it comes from memory, not from cache.
            let mut next = 0;
            let cold = format!("{}-cold", strata_engine(code));
            group.bench_function(BenchmarkId::new(cold, &name), |b| {
                b.iter(|| {
                    next = (next + 1) % cold_blocks.len();
                    codec
                        .encode(black_box(cold_blocks[next].clone()))
                        .expect("encode")
                })
            });
        }

        let mut encoder = ReedSolomonEncoder::new(f.k(), f.m(), f.shard_len).expect("encoder");
        group.bench_function(BenchmarkId::new("rs-simd", &name), |b| {
            b.iter(|| {
                encoder.reset(f.k(), f.m(), f.shard_len).expect("reset");
                for shard in &f.codec_shards[..f.k()] {
                    encoder.add_original_shard(shard).expect("add");
                }
                let result = encoder.encode().expect("encode");
                black_box(result.recovery(0).map(<[u8]>::len));
            })
        });

        let rs = rse(f.geometry);
        let mut parity_out = vec![vec![0u8; f.shard_len]; f.m()];
        group.bench_function(BenchmarkId::new("rs-erasure", &name), |b| {
            b.iter(|| {
                rs.encode_sep(&f.rse_shards[..f.k()], &mut parity_out)
                    .expect("encode");
                black_box(&parity_out);
            })
        });
    }
    group.finish();
}

fn erasure_reconstruct(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("erasure_reconstruct");
    group.throughput(Throughput::Bytes(BLOCK as u64));
    for (data, parity) in GEOMETRIES {
        let f = Fixture::new(Geometry::with_code(data, parity, ErasureCode::Leopard));
        for &loss in Loss::cases(f.geometry) {
            let name = format!("{}/{}", label(f.geometry), loss.name());
            let lost = loss.lost(f.geometry);
            bench_codec_reconstruct(&mut group, &f, &lost, &name);
            bench_simd_reconstruct(&mut group, &f, &lost, &name);
            bench_rse_reconstruct(&mut group, &f, &lost, &name);
        }
    }
    group.finish();
}

type Group<'a> = criterion::BenchmarkGroup<'a, ThreadCpuTime>;

fn bench_codec_reconstruct(group: &mut Group<'_>, f: &Fixture, lost: &[usize], name: &str) {
    for (code, shards) in f.codes() {
        let codec = Codec::new(f.geometry.with(code)).expect("geometry supported");
        let damaged = || {
            let mut damaged: Vec<Option<Bytes>> = shards.iter().cloned().map(Some).collect();
            for &i in lost {
                damaged[i] = None;
            }
            damaged
        };
        let mut check = damaged();
        codec
            .reconstruct(&mut check, f.shard_len)
            .expect("reconstruct");
        assert!(
            check
                .iter()
                .zip(&shards)
                .all(|(got, want)| got.as_ref() == Some(want)),
            "{code:?} restores what was lost"
        );

        group.bench_function(BenchmarkId::new(strata_engine(code), name), |b| {
            b.iter(|| {
                let mut restored = damaged();
                codec
                    .reconstruct(&mut restored, f.shard_len)
                    .expect("reconstruct");
                restored
            })
        });
    }
}

/// reed-solomon-simd used as well as it can be: decoder and encoder reused, restored shards left in place.
/// Parity that was lost is re-encoded from the data, as `Codec::reconstruct` does.
fn bench_simd_reconstruct(group: &mut Group<'_>, f: &Fixture, lost: &[usize], name: &str) {
    let (k, m, len) = (f.k(), f.m(), f.shard_len);
    let mut decoder = ReedSolomonDecoder::new(k, m, len).expect("decoder");
    let mut encoder = ReedSolomonEncoder::new(k, m, len).expect("encoder");
    let mut run = |check: bool| {
        decoder.reset(k, m, len).expect("reset");
        for (i, shard) in f.codec_shards.iter().enumerate() {
            if lost.contains(&i) {
                continue;
            }
            if i < k {
                decoder.add_original_shard(i, shard).expect("add");
            } else {
                decoder.add_recovery_shard(i - k, shard).expect("add");
            }
        }
        let restored = decoder.decode().expect("decode");
        if check {
            for (i, shard) in restored.restored_original_iter() {
                assert_eq!(
                    shard,
                    &f.codec_shards[i][..],
                    "rs-simd restored data shard {i}"
                );
            }
        }
        let mut data: Vec<&[u8]> = f.codec_shards[..k].iter().map(|s| &s[..]).collect();
        for (i, shard) in restored.restored_original_iter() {
            data[i] = shard;
        }
        if lost.iter().any(|&i| i >= k) {
            encoder.reset(k, m, len).expect("reset");
            for shard in &data {
                encoder.add_original_shard(shard).expect("add");
            }
            let parity = encoder.encode().expect("encode");
            if check {
                for (j, shard) in parity.recovery_iter().enumerate() {
                    assert_eq!(shard, &f.codec_shards[k + j][..], "rs-simd parity {j}");
                }
            }
        }
    };
    run(true);
    group.bench_function(BenchmarkId::new("rs-simd", name), |b| b.iter(|| run(false)));
}

/// reed-solomon-erasure restoring into preallocated buffers: only the lost shards are written.
fn bench_rse_reconstruct(group: &mut Group<'_>, f: &Fixture, lost: &[usize], name: &str) {
    let rs = rse(f.geometry);
    let mut buffers = f.rse_shards.clone();
    for &i in lost {
        buffers[i].fill(0);
    }
    rse_restore(&rs, &mut buffers, lost, f.k());
    assert_eq!(
        buffers, f.rse_shards,
        "rs-erasure restored every lost shard"
    );
    group.bench_function(BenchmarkId::new("rs-erasure", name), |b| {
        b.iter(|| rse_restore(&rs, &mut buffers, lost, f.k()))
    });
}

/// Marks `lost` shards missing and restores them in place; data only when no parity was lost, as `Codec` does.
fn rse_restore(
    rs: &reed_solomon_erasure::galois_8::ReedSolomon,
    buffers: &mut [Vec<u8>],
    lost: &[usize],
    k: usize,
) {
    let mut shards: Vec<(&mut [u8], bool)> = buffers
        .iter_mut()
        .enumerate()
        .map(|(i, s)| (s.as_mut_slice(), !lost.contains(&i)))
        .collect();
    if lost.iter().all(|&i| i < k) {
        rs.reconstruct_data(&mut shards).expect("reconstruct");
    } else {
        rs.reconstruct(&mut shards).expect("reconstruct");
    }
}

/// BLAKE3 over one shard block at each geometry (what write.rs hashes per shard and read.rs checks), and over
/// a whole 1 MiB block for scale.
fn blake3_blocks(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("blake3");
    let data = pseudo_random(BLOCK, 0xb1a3e);
    let mut sizes: Vec<(String, usize)> = GEOMETRIES
        .iter()
        .map(|&(data, parity)| {
            let g = Geometry::new(data, parity);
            (format!("shard-{}", label(g)), g.shard_len(BLOCK))
        })
        .collect();
    sizes.push(("block-1MiB".into(), BLOCK));
    for (name, len) in sizes {
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new(name, len), &data[..len], |b, bytes| {
            b.iter(|| blake3::hash(bytes))
        });
    }
    group.finish();
}

/// Strata's MD5 against the md-5 crate. The crate's `asm` backend is measured by running again with
/// `--features md5_reference/asm` (features unify, so one build cannot hold both).
fn md5_etag(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("md5");
    let data = pseudo_random(BLOCK, 0x3d5);
    for (name, len) in [("64KiB", 64 * 1024), ("1MiB", BLOCK)] {
        let bytes = &data[..len];
        let want: [u8; 16] = md5_reference::Md5::digest(bytes).into();
        assert_eq!(Md5::digest(bytes), want, "strata md5 agrees with md-5");
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("strata", name), bytes, |b, bytes| {
            b.iter(|| Md5::digest(bytes))
        });
        group.bench_with_input(BenchmarkId::new("md-5-crate", name), bytes, |b, bytes| {
            b.iter(|| md5_reference::Md5::digest(bytes))
        });
    }
    group.finish();
}

/// A shard sink's copy of one frame (BLAKE3 and a 4+2 shard of a 1 MiB block) into its aligned buffer:
/// `copy_from_slice` against the streaming stores the sinks use (`stream_copy`). The destinations rotate over
/// 64 MiB of buffers, more than the caches hold, so each copy lands in cold memory as in the server, where the
/// sink buffers are recycled and last touched by the disk's DMA.
fn sink_copy(c: &mut Criterion<ThreadCpuTime>) {
    const FRAME: usize = 32 + BLOCK / 4;
    const DESTINATIONS: usize = 64;
    let mut group = c.benchmark_group("sink_copy");
    let frame = pseudo_random(FRAME, 0x5c0);
    let mut buffers: Vec<Vec<u8>> = (0..DESTINATIONS).map(|_| vec![0u8; BLOCK]).collect();
    // An odd offset into the buffer, as a frame's after the shard header.
    let at = 211;
    strata_storage::stream_copy::copy(&mut buffers[0][at..at + FRAME], &frame);
    assert_eq!(
        &buffers[0][at..at + FRAME],
        &frame[..],
        "the streaming copy copies"
    );
    group.throughput(Throughput::Bytes(FRAME as u64));
    type Copy = fn(&mut [u8], &[u8]);
    let plain: Copy = |dst, src| dst.copy_from_slice(src);
    let streaming: Copy = strata_storage::stream_copy::copy;
    for (name, copy) in [("copy_from_slice", plain), ("streaming", streaming)] {
        let mut next = 0;
        group.bench_function(BenchmarkId::new(name, FRAME), |b| {
            b.iter(|| {
                next = (next + 1) % DESTINATIONS;
                copy(
                    black_box(&mut buffers[next][at..at + FRAME]),
                    black_box(&frame),
                );
            })
        });
    }
    group.finish();
}

/// A GET's read of one 4+2 frame (BLAKE3 + 256 KiB shard) of an aligned-layout shard file from the page cache
/// into a page-aligned buffer, as `read::SegmentReader::read_shard` does: the read starts 32 bytes before a
/// page of the file, so the kernel's copy writes 32 bytes (mod 4 KiB) past where it reads. Also timed: the
/// same read landing 16 bytes past and 0 bytes past, to show what a change of hash length or of where the
/// read starts would cost (ARCHITECTURE.md, GET).
fn page_cache_read(c: &mut Criterion<ThreadCpuTime>) {
    use std::os::unix::fs::FileExt;
    const SLOT: usize = 4096;
    const FRAME: usize = 32 + BLOCK / 4;
    // 65 MiB: more than the L3 cache, so frames come from memory, as a GET's do.
    const FRAMES: usize = 256;
    let stride = SLOT + BLOCK / 4;
    let path = std::env::temp_dir().join(format!("strata-bench-page-cache-{}", std::process::id()));
    let contents = pseudo_random(FRAMES * stride, 0xfa9e);
    std::fs::write(&path, &contents).expect("write the shard file");
    let file = std::fs::File::open(&path).expect("open the shard file");
    let _ = std::fs::remove_file(&path);
    let mut buf = vec![0u8; FRAME + 2 * SLOT];
    let page = buf.as_ptr().align_offset(SLOT);
    let mut group = c.benchmark_group("page_cache_read");
    group.throughput(Throughput::Bytes(FRAME as u64));
    for distance in [32usize, 16, 0] {
        // The frame starts at `SLOT - 32` (mod 4 KiB) in the file.
        let at = page + (SLOT - 32 + distance) % SLOT;
        let frame = |i: usize| (i * stride + SLOT - 32) as u64;
        for i in 0..FRAMES {
            file.read_exact_at(&mut buf[at..at + FRAME], frame(i))
                .expect("read a frame");
            let start = frame(i) as usize;
            assert_eq!(
                &buf[at..at + FRAME],
                &contents[start..start + FRAME],
                "the read reads"
            );
        }
        let mut next = 0;
        group.bench_function(BenchmarkId::new("distance", distance), |b| {
            b.iter(|| {
                next = (next + 1) % FRAMES;
                file.read_exact_at(black_box(&mut buf[at..at + FRAME]), frame(next))
                    .expect("read a frame");
            })
        });
    }
    group.finish();
}

/// A GET's read and check of one 4+2 shard frame from the page cache, two ways: `pread` into a page-aligned
/// buffer and BLAKE3 over the copy (what `read.rs` does), and BLAKE3 straight over a fresh `mmap` of the frame
/// (mapped, hashed, unmapped), the copy a mapping would save. Single-threaded, so the unmap costs no TLB
/// shootdown on other cores, as it would in the server: the mapping's best case.
#[allow(unsafe_code)] // mmap and munmap: no safe wrapper is worth a dependency for one bench
fn page_cache_verify(c: &mut Criterion<ThreadCpuTime>) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::FileExt;
    const SLOT: usize = 4096;
    const SHARD: usize = BLOCK / 4;
    // As in `page_cache_read`: 65 MiB, more than the L3 cache, so frames come from memory, as a GET's do.
    const FRAMES: usize = 256;
    let stride = SLOT + SHARD;
    let path = std::env::temp_dir().join(format!(
        "strata-bench-page-cache-verify-{}",
        std::process::id()
    ));
    let mut contents = pseudo_random(FRAMES * stride, 0x7e51);
    // Each frame: its shard's hash at the end of a 4 KiB slot, then the shard (the aligned layout).
    for i in 0..FRAMES {
        let shard = i * stride + SLOT;
        let hash = *blake3::hash(&contents[shard..shard + SHARD]).as_bytes();
        contents[shard - 32..shard].copy_from_slice(&hash);
    }
    std::fs::write(&path, &contents).expect("write the shard file");
    let file = std::fs::File::open(&path).expect("open the shard file");
    let _ = std::fs::remove_file(&path);
    drop(contents);

    let mut buf = vec![0u8; stride + SLOT];
    let at = buf.as_ptr().align_offset(SLOT) + SLOT - 32;
    let pread = |buf: &mut [u8], i: usize| -> bool {
        let frame = &mut buf[at..at + 32 + SHARD];
        file.read_exact_at(frame, (i * stride + SLOT - 32) as u64)
            .expect("read a frame");
        blake3::hash(&frame[32..]).as_bytes() == &frame[..32]
    };
    let mapped = |i: usize| -> bool {
        // SAFETY: a read-only mapping of a file nothing truncates, unmapped before return; the slice
        // does not outlive it.
        unsafe {
            let map = libc::mmap(
                std::ptr::null_mut(),
                stride,
                libc::PROT_READ,
                libc::MAP_SHARED,
                file.as_raw_fd(),
                (i * stride) as libc::off_t,
            );
            assert_ne!(map, libc::MAP_FAILED, "map a frame");
            let frame = std::slice::from_raw_parts(map.cast::<u8>(), stride);
            let ok = blake3::hash(&frame[SLOT..]).as_bytes() == &frame[SLOT - 32..SLOT];
            libc::munmap(map, stride);
            ok
        }
    };
    for i in 0..FRAMES {
        assert!(pread(&mut buf, i), "frame {i} read verifies");
        assert!(mapped(i), "frame {i} mapped verifies");
    }
    let mut group = c.benchmark_group("page_cache_verify");
    group.throughput(Throughput::Bytes(SHARD as u64));
    let mut next = 0;
    group.bench_function("pread_then_hash", |b| {
        b.iter(|| {
            next = (next + 1) % FRAMES;
            black_box(pread(&mut buf, next))
        })
    });
    group.bench_function("mmap_hash", |b| {
        b.iter(|| {
            next = (next + 1) % FRAMES;
            black_box(mapped(next))
        })
    });
    group.finish();
}

criterion_group! {
    name = kernels;
    config = Criterion::default().with_measurement(ThreadCpuTime::default());
    targets = erasure_encode, erasure_reconstruct, blake3_blocks, md5_etag, sink_copy, page_cache_read,
        page_cache_verify
}
criterion_main!(kernels);
