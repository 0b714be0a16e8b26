//! Reed-Solomon coding of one block into `k` data and `m` parity shards, and reconstruction from any `k`.
//!
//! A block is cut into `k` equal data shards (the last zero-padded; shard length rounded up to even, as the
//! Leopard codec needs), then `m` parity shards are computed. Shards are `Bytes` slices of one allocation so the
//! write path can hand them to disks without copying.
//!
//! Two codes exist ([`ErasureCode`]); they compute different parity from the same data, so each segment records
//! the code that wrote it (inside its [`Geometry`]) and is always reconstructed with that code. New segments use
//! [`ErasureCode::preferred`].

use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use reed_solomon_erasure::galois_8::ReedSolomon as Vandermonde;
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::buffers::AlignedBuf;
use crate::error::{Error, Result};

/// Which Reed-Solomon code computed a segment's parity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErasureCode {
    /// Leopard-RS over GF(2^16) (reed-solomon-simd). Every segment written before the code was recorded uses it.
    Leopard,
    /// Vandermonde-matrix Reed-Solomon over GF(2^8) (reed-solomon-erasure and its C SIMD kernels). Faster at
    /// every geometry Strata allows: 1.3x the encode speed at 4+2 and 5 to 18x the reconstruct speed
    /// (bench/KERNELS.md). Its kernels are compiled for Haswell on x86-64, so it only runs where the CPU has
    /// AVX2 ([`ErasureCode::usable`]).
    Vandermonde,
}

impl ErasureCode {
    /// The code new segments are written with: Vandermonde where this CPU can run it, else Leopard.
    pub fn preferred(data: u8, parity: u8) -> Self {
        let code = ErasureCode::Vandermonde;
        if parity > 0 && code.usable() && usize::from(data) + usize::from(parity) <= 256 {
            code
        } else {
            ErasureCode::Leopard
        }
    }

    /// Whether this machine can run the code's kernels.
    pub fn usable(self) -> bool {
        match self {
            ErasureCode::Leopard => true,
            // reed-solomon-erasure's build compiles its C kernels with -march=haswell on x86-64: running them on
            // a CPU without AVX2 would be an illegal instruction, so such a machine never calls them.
            #[cfg(target_arch = "x86_64")]
            ErasureCode::Vandermonde => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                    && std::arch::is_x86_feature_detected!("bmi2")
            }
            #[cfg(not(target_arch = "x86_64"))]
            ErasureCode::Vandermonde => true,
        }
    }
}

/// Erasure-coding geometry: `data` shards needed to read, `parity` shards that may be lost, and the code.
///
/// Stored in every segment record and shard header as two bytes, `data` then `parity`, with the top bit of the
/// parity byte set for [`ErasureCode::Vandermonde`]. Records written before the code existed had that bit clear
/// (parity is at most 16) and so read back as [`ErasureCode::Leopard`], which is what wrote them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Geometry {
    /// k: data shards.
    pub data: u8,
    /// m: parity shards.
    pub parity: u8,
    /// The code that computes (or computed) the parity.
    pub code: ErasureCode,
}

/// Bytes of each shard the Vandermonde engine codes per call (measured: 4, 16, 64 KiB and whole shards; 64 KiB was
/// best with the block in cache and out of it).
const VANDERMONDE_SLICE: usize = 64 * 1024;

/// The parity byte's flag for [`ErasureCode::Vandermonde`].
const VANDERMONDE_FLAG: u8 = 0x80;

impl Serialize for Geometry {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        let flag = match self.code {
            ErasureCode::Leopard => 0,
            ErasureCode::Vandermonde => VANDERMONDE_FLAG,
        };
        (self.data, self.parity | flag).serialize(s)
    }
}

impl<'de> Deserialize<'de> for Geometry {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let (data, parity) = <(u8, u8)>::deserialize(d)?;
        let code = if parity & VANDERMONDE_FLAG != 0 {
            ErasureCode::Vandermonde
        } else {
            ErasureCode::Leopard
        };
        Ok(Self {
            data,
            parity: parity & !VANDERMONDE_FLAG,
            code,
        })
    }
}

impl Geometry {
    /// `data + parity` with the code new segments are written with ([`ErasureCode::preferred`]).
    pub fn new(data: u8, parity: u8) -> Self {
        Self::with_code(data, parity, ErasureCode::preferred(data, parity))
    }

    /// `data + parity` with the given code.
    pub fn with_code(data: u8, parity: u8, code: ErasureCode) -> Self {
        Self { data, parity, code }
    }

    /// The same counts with another code.
    pub fn with(self, code: ErasureCode) -> Self {
        Self { code, ..self }
    }

    /// Total shards per block.
    pub fn total(self) -> usize {
        usize::from(self.data) + usize::from(self.parity)
    }

    /// Bytes each shard holds for a block of `block_len` bytes.
    pub fn shard_len(self, block_len: usize) -> usize {
        let k = usize::from(self.data);
        let per = block_len.div_ceil(k).max(2);
        per + (per & 1)
    }
}

/// Encoder/decoder for one geometry.
#[derive(Debug, Clone)]
pub struct Codec {
    geometry: Geometry,
    /// The Vandermonde coder, for segments of that code on a machine that can run it.
    vandermonde: Option<Arc<Vandermonde>>,
}

impl Codec {
    /// A codec for `geometry`; fails for shard counts the codec cannot handle.
    pub fn new(geometry: Geometry) -> Result<Self> {
        if geometry.data == 0 {
            return Err(Error::Config(
                "erasure geometry needs at least one data shard".into(),
            ));
        }
        if geometry.parity >= VANDERMONDE_FLAG {
            return Err(Error::Config(format!("unsupported geometry {geometry:?}")));
        }
        let supported = match geometry.code {
            ErasureCode::Leopard => {
                geometry.parity == 0
                    || ReedSolomonEncoder::supports(
                        usize::from(geometry.data),
                        usize::from(geometry.parity),
                    )
            }
            ErasureCode::Vandermonde => geometry.total() <= 256,
        };
        if !supported {
            return Err(Error::Config(format!("unsupported geometry {geometry:?}")));
        }
        // A segment of a code this CPU cannot run still opens: its data shards read without any coding, and
        // only a reconstruction fails (with a clear error) if one is needed.
        let vandermonde = if geometry.code == ErasureCode::Vandermonde
            && geometry.parity > 0
            && geometry.code.usable()
        {
            Some(vandermonde(geometry)?)
        } else {
            None
        };
        Ok(Self {
            geometry,
            vandermonde,
        })
    }

    /// The geometry this codec codes.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Splits `block` into `k + m` shards (data first, then parity).
    ///
    /// A block that divides evenly (every full block at the default geometry) is sliced without copying.
    pub fn encode(&self, block: Bytes) -> Result<Vec<Bytes>> {
        self.encode_inner(block, None)
    }

    /// [`Self::encode`], with BLAKE3 of every shard (the write path's bitrot checksums). The Vandermonde engine
    /// hashes each column slice of every shard right after coding it, while it is in cache: hashed in a pass of
    /// their own, the shards came from memory again (measured on PUT 64 MiB at c8: BLAKE3 ran at about 2.7 GiB/s
    /// in the server against 3.9 in the kernels bench).
    pub fn encode_hashed(&self, block: Bytes) -> Result<(Vec<Bytes>, Vec<[u8; 32]>)> {
        let mut hashers = Vec::new();
        let shards = self.encode_inner(block, Some(&mut hashers))?;
        let hashes = if hashers.len() == shards.len() {
            hashers.iter().map(|h| *h.finalize().as_bytes()).collect()
        } else {
            // A code without the column loop: each shard whole.
            shards.iter().map(|s| *blake3::hash(s).as_bytes()).collect()
        };
        Ok((shards, hashes))
    }

    /// Encodes; where `hashers` is given and the code runs the column loop, fills it with one hasher per shard
    /// that has seen the whole shard.
    fn encode_inner(
        &self,
        block: Bytes,
        hashers: Option<&mut Vec<blake3::Hasher>>,
    ) -> Result<Vec<Bytes>> {
        let k = usize::from(self.geometry.data);
        let m = usize::from(self.geometry.parity);
        let shard_len = self.geometry.shard_len(block.len());
        let data = if block.len() == shard_len * k {
            block
        } else {
            let mut buf = BytesMut::zeroed(shard_len * k);
            buf[..block.len()].copy_from_slice(&block);
            buf.freeze()
        };
        let mut shards: Vec<Bytes> = (0..k)
            .map(|i| data.slice(i * shard_len..(i + 1) * shard_len))
            .collect();
        if m == 0 {
            return Ok(shards);
        }
        if self.geometry.code == ErasureCode::Vandermonde {
            let rs = self.vandermonde()?;
            // All parity of the block in one recycled buffer, computed in place and sliced per shard.
            // Every byte is overwritten: a recycled buffer need not be zeroed first.
            let mut parity = AlignedBuf::with_len(m * shard_len);
            let mut hashers = hashers;
            if let Some(h) = hashers.as_deref_mut() {
                h.clear();
                h.resize_with(k + m, blake3::Hasher::new);
            }
            // In column slices that keep every shard's slice in L2 together: the engine makes one pass over
            // each output per input, and whole 256 KiB shards (k inputs, m outputs) overflow L2, so in the
            // write path (a block not in cache) whole-shard calls cost 2.5 times Leopard's encode time.
            let mut start = 0;
            while start < shard_len {
                let end = (start + VANDERMONDE_SLICE).min(shard_len);
                let inputs: Vec<&[u8]> = shards.iter().map(|s| &s[start..end]).collect();
                let mut outputs: Vec<&mut [u8]> = parity
                    .as_mut_slice()
                    .chunks_mut(shard_len)
                    .map(|p| &mut p[start..end])
                    .collect();
                rs.encode_sep(&inputs, &mut outputs)
                    .map_err(vandermonde_err)?;
                if let Some(hashers) = hashers.as_deref_mut() {
                    let slices = inputs.iter().copied().chain(outputs.iter().map(|o| &o[..]));
                    for (hasher, slice) in hashers.iter_mut().zip(slices) {
                        hasher.update(slice);
                    }
                }
                start = end;
            }
            let parity = parity.freeze();
            shards.extend((0..m).map(|j| parity.slice(j * shard_len..(j + 1) * shard_len)));
            return Ok(shards);
        }
        ENCODER.with_borrow_mut(|slot| -> Result<()> {
            // Reusing the encoder keeps its work buffers: a fresh one per block costs an allocation and page
            // faults for several times the block size.
            let encoder = match slot {
                Some(e) => {
                    e.reset(k, m, shard_len).map_err(codec_err)?;
                    e
                }
                None => slot.insert(ReedSolomonEncoder::new(k, m, shard_len).map_err(codec_err)?),
            };
            for shard in &shards[..k] {
                encoder.add_original_shard(shard).map_err(codec_err)?;
            }
            let result = encoder.encode().map_err(codec_err)?;
            // All parity of the block in one recycled buffer, sliced per shard.
            let mut parity = AlignedBuf::with_capacity(m * shard_len);
            for p in result.recovery_iter() {
                parity.extend_from_slice(p);
            }
            let parity = parity.freeze();
            shards.extend((0..m).map(|j| parity.slice(j * shard_len..(j + 1) * shard_len)));
            Ok(())
        })?;
        Ok(shards)
    }

    /// Fills in every missing shard (data and parity) of a block from the ones present.
    ///
    /// `shards[i]` is `None` where shard `i` is missing or failed its checksum. Needs at least `k` present.
    pub fn reconstruct(&self, shards: &mut [Option<Bytes>], shard_len: usize) -> Result<()> {
        let k = usize::from(self.geometry.data);
        let m = usize::from(self.geometry.parity);
        let present = shards.iter().filter(|s| s.is_some()).count();
        if present == k + m {
            return Ok(());
        }
        if present < k || m == 0 {
            return Err(Error::Unrecoverable(format!(
                "{present} of {} shards readable, need {k}",
                k + m
            )));
        }
        if self.geometry.code == ErasureCode::Vandermonde {
            return self.reconstruct_vandermonde(shards, shard_len);
        }
        if shards[..k].iter().any(Option::is_none) {
            let mut decoder = ReedSolomonDecoder::new(k, m, shard_len).map_err(codec_err)?;
            for (i, s) in shards.iter().enumerate() {
                if let Some(s) = s {
                    if i < k {
                        decoder.add_original_shard(i, s).map_err(codec_err)?;
                    } else {
                        decoder.add_recovery_shard(i - k, s).map_err(codec_err)?;
                    }
                }
            }
            let result = decoder.decode().map_err(codec_err)?;
            for (i, restored) in result.restored_original_iter() {
                shards[i] = Some(Bytes::copy_from_slice(restored));
            }
        }
        if shards[k..].iter().any(Option::is_none) {
            let mut encoder = ReedSolomonEncoder::new(k, m, shard_len).map_err(codec_err)?;
            for s in &shards[..k] {
                encoder
                    .add_original_shard(s.as_ref().expect("data shards restored"))
                    .map_err(codec_err)?;
            }
            let result = encoder.encode().map_err(codec_err)?;
            for (j, parity) in result.recovery_iter().enumerate() {
                if shards[k + j].is_none() {
                    shards[k + j] = Some(Bytes::copy_from_slice(parity));
                }
            }
        }
        Ok(())
    }

    fn vandermonde(&self) -> Result<&Vandermonde> {
        self.vandermonde.as_deref().ok_or_else(|| {
            Error::Unrecoverable(
                "this segment's Vandermonde Reed-Solomon code needs a CPU with AVX2, FMA and BMI2"
                    .into(),
            )
        })
    }

    /// Restores the missing shards of a Vandermonde-coded block: data only when only data is missing.
    fn reconstruct_vandermonde(
        &self,
        shards: &mut [Option<Bytes>],
        shard_len: usize,
    ) -> Result<()> {
        let rs = self.vandermonde()?;
        let k = usize::from(self.geometry.data);
        // The coder restores into mutable buffers: present shards are copied once (a degraded read only).
        let mut work: Vec<(BytesMut, bool)> = shards
            .iter()
            .map(|s| match s {
                Some(b) => (BytesMut::from(&b[..]), true),
                None => (BytesMut::zeroed(shard_len), false),
            })
            .collect();
        if shards[k..].iter().all(Option::is_some) {
            rs.reconstruct_data(&mut work).map_err(vandermonde_err)?;
        } else {
            rs.reconstruct(&mut work).map_err(vandermonde_err)?;
        }
        for (slot, (restored, _)) in shards.iter_mut().zip(work) {
            if slot.is_none() {
                *slot = Some(restored.freeze());
            }
        }
        Ok(())
    }

    /// The block's first `block_len` bytes as slices of its data shards, in order (no copy).
    pub fn pieces(&self, shards: &[Option<Bytes>], block_len: usize) -> Vec<Bytes> {
        let k = usize::from(self.geometry.data);
        let mut left = block_len;
        let mut out = Vec::with_capacity(k);
        for s in &shards[..k] {
            if left == 0 {
                break;
            }
            let s = s.as_ref().expect("data shard present");
            let take = left.min(s.len());
            out.push(s.slice(..take));
            left -= take;
        }
        out
    }
}

thread_local! {
    static ENCODER: std::cell::RefCell<Option<ReedSolomonEncoder>> = const { std::cell::RefCell::new(None) };
}

/// One Vandermonde coder per geometry for the process: building one inverts no matrix, but its cache of decode
/// matrices (one per pattern of lost shards) is worth sharing between every read of a degraded disk set.
fn vandermonde(geometry: Geometry) -> Result<Arc<Vandermonde>> {
    /// (data, parity) → its coder; a process sees one or two geometries, so a list does.
    type Coders = Vec<((u8, u8), Arc<Vandermonde>)>;
    static CODERS: Mutex<Coders> = Mutex::new(Vec::new());
    let key = (geometry.data, geometry.parity);
    let mut coders = CODERS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, rs)) = coders.iter().find(|(g, _)| *g == key) {
        return Ok(rs.clone());
    }
    let rs = Arc::new(
        Vandermonde::new(usize::from(geometry.data), usize::from(geometry.parity))
            .map_err(vandermonde_err)?,
    );
    coders.push((key, rs.clone()));
    Ok(rs)
}

fn vandermonde_err(e: reed_solomon_erasure::Error) -> Error {
    Error::Unrecoverable(format!("reed-solomon (vandermonde): {e}"))
}

fn codec_err(e: reed_solomon_simd::Error) -> Error {
    Error::Unrecoverable(format!("reed-solomon: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every code this machine can run (the tests of a code the CPU lacks could only crash).
    fn codes() -> Vec<ErasureCode> {
        [ErasureCode::Leopard, ErasureCode::Vandermonde]
            .into_iter()
            .filter(|c| c.usable())
            .collect()
    }

    #[test]
    fn a_full_blocks_shards_can_be_written_in_place() {
        // What the write path hands the disk writers: data shards sliced from the aligned block, parity from
        // its aligned buffer. Were they off alignment, every shard would silently be copied again.
        for code in codes() {
            for (k, m) in [(4, 2), (8, 4), (2, 1)] {
                let mut block = AlignedBuf::with_capacity(1 << 20);
                block.extend_from_slice(&vec![7u8; 1 << 20]);
                let codec = Codec::new(Geometry::with_code(k, m, code)).unwrap();
                let (shards, _) = codec.encode_hashed(block.freeze()).unwrap();
                assert_eq!(shards.len(), usize::from(k + m));
                for (i, shard) in shards.iter().enumerate() {
                    assert!(
                        crate::disk::goes_in_place(shard),
                        "{code:?} {k}+{m}: shard {i} at {:p}, {} bytes",
                        shard.as_ptr(),
                        shard.len()
                    );
                }
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_m_lost_shards_reconstruct(
            k in 1u8..=8, m in 0u8..=4, vandermonde in any::<bool>(),
            data in proptest::collection::vec(any::<u8>(), 1..5000),
            lost_seed in any::<u64>(),
        ) {
            let code = if vandermonde && ErasureCode::Vandermonde.usable() {
                ErasureCode::Vandermonde
            } else {
                ErasureCode::Leopard
            };
            let codec = Codec::new(Geometry::with_code(k, m, code)).unwrap();
            let shards = codec.encode(Bytes::from(data.clone())).unwrap();
            let n = usize::from(k) + usize::from(m);
            prop_assert_eq!(shards.len(), n);
            let shard_len = shards[0].len();
            let mut present: Vec<Option<Bytes>> = shards.iter().cloned().map(Some).collect();
            // Lose up to m distinct shards chosen by the seed.
            let mut seed = lost_seed;
            for _ in 0..m {
                let i = (seed % n as u64) as usize;
                seed = seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15;
                present[i] = None;
            }
            codec.reconstruct(&mut present, shard_len).unwrap();
            for (i, s) in present.iter().enumerate() {
                prop_assert_eq!(s.as_ref().unwrap(), &shards[i]);
            }
            prop_assert_eq!(codec.pieces(&present, data.len()).concat(), data);
        }
    }

    #[test]
    fn encode_hashed_gives_each_shards_blake3() {
        let block: Vec<u8> = (0..(1u32 << 20) + 3)
            .map(|i| (i * 31 + i / 7) as u8)
            .collect();
        for code in codes() {
            for (k, m) in [(4, 2), (2, 1), (3, 0), (12, 4)] {
                let codec = Codec::new(Geometry::with_code(k, m, code)).unwrap();
                // A block that divides evenly (at 4+2 and 2+1), one that is padded, and one shorter than a
                // column slice.
                for len in [1 << 20, block.len(), 1000] {
                    let data = Bytes::copy_from_slice(&block[..len]);
                    let (shards, hashes) = codec.encode_hashed(data.clone()).unwrap();
                    assert_eq!(
                        shards,
                        codec.encode(data).unwrap(),
                        "{code:?} {k}+{m} {len}"
                    );
                    let want: Vec<[u8; 32]> =
                        shards.iter().map(|s| *blake3::hash(s).as_bytes()).collect();
                    assert_eq!(hashes, want, "{code:?} {k}+{m} {len}");
                }
            }
        }
    }

    #[test]
    fn too_many_lost_is_an_error() {
        for code in codes() {
            let codec = Codec::new(Geometry::with_code(4, 2, code)).unwrap();
            let shards = codec.encode(Bytes::from_static(&[7u8; 1000])).unwrap();
            let mut present: Vec<Option<Bytes>> = shards.into_iter().map(Some).collect();
            present[0] = None;
            present[1] = None;
            present[5] = None;
            assert!(codec.reconstruct(&mut present, 250).is_err(), "{code:?}");
        }
    }

    #[test]
    fn the_codes_differ_so_each_segment_is_rebuilt_with_its_own() {
        if !ErasureCode::Vandermonde.usable() {
            return;
        }
        let block = Bytes::from(
            (0..1_000_000u32)
                .map(|i| (i * 7 + i / 13) as u8)
                .collect::<Vec<u8>>(),
        );
        let leopard = Codec::new(Geometry::with_code(4, 2, ErasureCode::Leopard)).unwrap();
        let vandermonde = Codec::new(Geometry::with_code(4, 2, ErasureCode::Vandermonde)).unwrap();
        let a = leopard.encode(block.clone()).unwrap();
        let b = vandermonde.encode(block).unwrap();
        assert_eq!(
            a[..4],
            b[..4],
            "both codes are systematic: the data shards are the block"
        );
        assert_ne!(
            a[4..],
            b[4..],
            "different parity: the code must be recorded"
        );
        // Two data shards lost: each code restores them from its own parity.
        for (codec, shards) in [(&leopard, &a), (&vandermonde, &b)] {
            let mut present: Vec<Option<Bytes>> = shards.iter().cloned().map(Some).collect();
            present[1] = None;
            present[3] = None;
            codec.reconstruct(&mut present, shards[0].len()).unwrap();
            assert!(
                present
                    .iter()
                    .zip(shards)
                    .all(|(p, s)| p.as_ref() == Some(s))
            );
        }
    }

    #[test]
    fn geometry_stores_the_code_in_the_parity_byte_and_old_records_read_as_leopard() {
        for code in [ErasureCode::Leopard, ErasureCode::Vandermonde] {
            let g = Geometry::with_code(12, 4, code);
            let bytes = postcard::to_stdvec(&g).unwrap();
            assert_eq!(bytes.len(), 2);
            assert_eq!(postcard::from_bytes::<Geometry>(&bytes).unwrap(), g);
        }
        // What `#[derive(Serialize)] struct Geometry { data: u8, parity: u8 }` wrote before the code was recorded.
        let old = postcard::to_stdvec(&(4u8, 2u8)).unwrap();
        assert_eq!(
            postcard::from_bytes::<Geometry>(&old).unwrap(),
            Geometry::with_code(4, 2, ErasureCode::Leopard)
        );
        assert_eq!(
            postcard::to_stdvec(&Geometry::with_code(4, 2, ErasureCode::Vandermonde)).unwrap(),
            [4, 0x82]
        );
        assert!(Codec::new(Geometry::with_code(4, 0x80, ErasureCode::Leopard)).is_err());
    }

    #[test]
    fn new_segments_use_the_faster_code_where_the_cpu_runs_it() {
        let expected = if ErasureCode::Vandermonde.usable() {
            ErasureCode::Vandermonde
        } else {
            ErasureCode::Leopard
        };
        assert_eq!(Geometry::new(4, 2).code, expected);
        assert_eq!(Geometry::new(4, 0).code, ErasureCode::Leopard);
    }
}
