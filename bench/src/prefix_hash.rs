//! SHA-256 of any prefix of a long byte stream at almost no cost per request: the compression state is saved
//! once every [`CHECKPOINT`] bytes while the stream is hashed up front, so the hash of its first `n` bytes is
//! that state plus at most `CHECKPOINT - 1` bytes and the final padding block. Signed uploads of drawn sizes
//! (every size different) need this: hashing each body whole would make the generator's CPU grow with the
//! object size.

use sha2::compress256;
use sha2::digest::generic_array::GenericArray;

/// Bytes between saved states (a multiple of the 64-byte SHA-256 block).
pub(crate) const CHECKPOINT: usize = 1024;
const BLOCK: usize = 64;
/// SHA-256's initial state.
const H0: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// Saved SHA-256 states of one stream: `states[k]` is the state after its first `k * CHECKPOINT` bytes.
pub(crate) struct PrefixHashes {
    states: Vec<[u32; 8]>,
}

impl PrefixHashes {
    /// Hashes the first `len` bytes of `stream` (`stream(pos, out)` fills `out` with the bytes from `pos`),
    /// saving a state every [`CHECKPOINT`] bytes. Memory: 32 bytes per KiB of `len`.
    pub(crate) fn new(len: u64, stream: &impl Fn(u64, &mut [u8])) -> PrefixHashes {
        let full = (len / CHECKPOINT as u64) as usize;
        let mut states = Vec::with_capacity(full + 1);
        let mut state = H0;
        states.push(state);
        let mut chunk = [0u8; CHECKPOINT];
        for k in 0..full {
            stream((k * CHECKPOINT) as u64, &mut chunk);
            compress(&mut state, &chunk);
            states.push(state);
        }
        PrefixHashes { states }
    }

    /// The hex SHA-256 of the first `len` bytes of the stream this was built over (`len` at most the length
    /// it was built for).
    pub(crate) fn hex(&self, len: u64, stream: &impl Fn(u64, &mut [u8])) -> String {
        let k = ((len / CHECKPOINT as u64) as usize).min(self.states.len() - 1);
        let mut state = self.states[k];
        let start = (k * CHECKPOINT) as u64;
        let tail_len = (len - start) as usize;
        let mut tail = [0u8; CHECKPOINT];
        stream(start, &mut tail[..tail_len]);
        let whole = tail_len / BLOCK * BLOCK;
        compress(&mut state, &tail[..whole]);
        // padding: 0x80, zeros, then the length in bits (big-endian) in the last 8 bytes of a block
        let rest = tail_len - whole;
        let mut last = [0u8; 2 * BLOCK];
        last[..rest].copy_from_slice(&tail[whole..tail_len]);
        last[rest] = 0x80;
        let blocks = if rest + 1 + 8 <= BLOCK { 1 } else { 2 };
        let end = blocks * BLOCK;
        last[end - 8..end].copy_from_slice(&(len * 8).to_be_bytes());
        compress(&mut state, &last[..end]);
        let mut out = [0u8; 32];
        for (o, word) in out.chunks_exact_mut(4).zip(state) {
            o.copy_from_slice(&word.to_be_bytes());
        }
        hex::encode(out)
    }
}

/// Runs the compression function over `data` (a whole number of 64-byte blocks).
fn compress(state: &mut [u32; 8], data: &[u8]) {
    debug_assert_eq!(data.len() % BLOCK, 0);
    for block in data.chunks_exact(BLOCK) {
        compress256(state, &[*GenericArray::from_slice(block)]);
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest as _, Sha256};

    use super::*;

    #[test]
    fn every_prefix_hash_matches_sha256() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let stream = |pos: u64, out: &mut [u8]| {
            let p = pos as usize;
            out.copy_from_slice(&data[p..p + out.len()]);
        };
        let h = PrefixHashes::new(data.len() as u64, &stream);
        for len in (0..=64)
            .chain(1000..1100)
            .chain([2047, 2048, 2049, 4999, 5000])
        {
            assert_eq!(
                h.hex(len as u64, &stream),
                hex::encode(Sha256::digest(&data[..len])),
                "prefix of {len} bytes"
            );
        }
    }
}
