//! Reed-Solomon coding of one block into `k` data and `m` parity shards, and reconstruction from any `k`.
//!
//! A block is cut into `k` equal data shards (the last zero-padded; shard length rounded up to even, as the
//! SIMD codec needs), then `m` parity shards are computed. Shards are `Bytes` slices of one allocation so the
//! write path can hand them to disks without copying.

use bytes::{Bytes, BytesMut};
use reed_solomon_simd::{ReedSolomonDecoder, ReedSolomonEncoder};

use crate::error::{Error, Result};

/// Erasure-coding geometry: `data` shards needed to read, `parity` shards that may be lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Geometry {
    /// k: data shards.
    pub data: u8,
    /// m: parity shards.
    pub parity: u8,
}

impl Geometry {
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
#[derive(Debug, Clone, Copy)]
pub struct Codec {
    geometry: Geometry,
}

impl Codec {
    /// A codec for `geometry`; fails for shard counts the codec cannot handle.
    pub fn new(geometry: Geometry) -> Result<Self> {
        if geometry.data == 0 {
            return Err(Error::Config(
                "erasure geometry needs at least one data shard".into(),
            ));
        }
        if geometry.parity > 0
            && !ReedSolomonEncoder::supports(
                usize::from(geometry.data),
                usize::from(geometry.parity),
            )
        {
            return Err(Error::Config(format!("unsupported geometry {geometry:?}")));
        }
        Ok(Self { geometry })
    }

    /// The geometry this codec codes.
    pub fn geometry(&self) -> Geometry {
        self.geometry
    }

    /// Splits `block` into `k + m` shards (data first, then parity).
    ///
    /// A block that divides evenly (every full block at the default geometry) is sliced without copying.
    pub fn encode(&self, block: Bytes) -> Result<Vec<Bytes>> {
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
            let mut parity = crate::buffers::take(m * shard_len);
            for p in result.recovery_iter() {
                parity.extend_from_slice(p);
            }
            let parity = crate::buffers::freeze(parity);
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

fn codec_err(e: reed_solomon_simd::Error) -> Error {
    Error::Unrecoverable(format!("reed-solomon: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn geometry(k: u8, m: u8) -> Geometry {
        Geometry { data: k, parity: m }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn any_m_lost_shards_reconstruct(
            k in 1u8..=8, m in 0u8..=4,
            data in proptest::collection::vec(any::<u8>(), 1..5000),
            lost_seed in any::<u64>(),
        ) {
            let codec = Codec::new(geometry(k, m)).unwrap();
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
    fn too_many_lost_is_an_error() {
        let codec = Codec::new(geometry(4, 2)).unwrap();
        let shards = codec.encode(Bytes::from_static(&[7u8; 1000])).unwrap();
        let mut present: Vec<Option<Bytes>> = shards.into_iter().map(Some).collect();
        present[0] = None;
        present[1] = None;
        present[5] = None;
        assert!(codec.reconstruct(&mut present, 250).is_err());
    }
}
