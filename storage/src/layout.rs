//! The shard file format: a self-describing header, then one `[BLAKE3][shard bytes]` frame per block.
//!
//! ```text
//! "STRATASH" | format u16 LE | header_len u32 LE | header (postcard) | BLAKE3(header)
//! block 0:  BLAKE3(shard) 32 bytes | shard bytes (geometry.shard_len(block_size))
//! ...
//! last:     BLAKE3(shard) 32 bytes | shard bytes (geometry.shard_len(last block length))
//! ```
//!
//! The header names bucket, key, version, part and shard slot, so the index can be rebuilt from disks alone.

use serde::{Deserialize, Serialize};

use crate::disk::{DataId, ShardSource};
use crate::erasure::Geometry;

const MAGIC: &[u8; 8] = b"STRATASH";
const FORMAT: u16 = 1;
/// Bytes of the per-block checksum.
pub const HASH_LEN: usize = 32;

/// What a shard file says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardHeader {
    /// Data id shared by all shards of this segment.
    pub data_id: DataId,
    /// Bucket at the time of writing.
    pub bucket: String,
    /// Key at the time of writing.
    pub key: String,
    /// Version id, `None` for the null version.
    pub version_id: Option<String>,
    /// Part number (1 for a single PUT).
    pub part: u32,
    /// Multipart upload id, for parts.
    pub upload_id: Option<String>,
    /// Which shard of each block this file holds.
    pub shard_index: u8,
    /// Erasure geometry.
    pub geometry: Geometry,
    /// Object bytes per block.
    pub block_size: u32,
    /// Bytes of object data in this segment.
    pub size: u64,
}

impl ShardHeader {
    /// Serialises the header with its framing and checksum.
    pub fn encode(&self) -> Vec<u8> {
        let body = postcard::to_stdvec(self).expect("header serialises");
        let mut out = Vec::with_capacity(8 + 2 + 4 + body.len() + HASH_LEN);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT.to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(blake3::hash(&body).as_bytes());
        out
    }

    /// Reads and verifies the header at the start of a shard file; returns it and where the blocks start.
    pub fn read(src: &dyn ShardSource) -> std::io::Result<(Self, u64)> {
        let bad = |what: &str| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("shard header: {what}"),
            )
        };
        let mut fixed = [0u8; 14];
        src.read_exact_at(&mut fixed, 0)?;
        if &fixed[..8] != MAGIC {
            return Err(bad("bad magic"));
        }
        if u16::from_le_bytes([fixed[8], fixed[9]]) != FORMAT {
            return Err(bad("unknown format"));
        }
        let len = u32::from_le_bytes(fixed[10..14].try_into().expect("4 bytes")) as usize;
        if len > 64 * 1024 {
            return Err(bad("oversized"));
        }
        let mut rest = vec![0u8; len + HASH_LEN];
        src.read_exact_at(&mut rest, 14)?;
        let (body, hash) = rest.split_at(len);
        if blake3::hash(body).as_bytes() != hash {
            return Err(bad("checksum mismatch"));
        }
        let header: Self = postcard::from_bytes(body).map_err(|_| bad("undecodable"))?;
        Ok((header, (14 + len + HASH_LEN) as u64))
    }
}

/// Block arithmetic for one segment.
#[derive(Debug, Clone, Copy)]
pub struct BlockMap {
    /// Erasure geometry.
    pub geometry: Geometry,
    /// Object bytes per full block.
    pub block_size: u64,
    /// Object bytes in the segment.
    pub size: u64,
}

impl BlockMap {
    /// Number of blocks.
    pub fn blocks(&self) -> u64 {
        self.size.div_ceil(self.block_size)
    }

    /// Object bytes in block `i`.
    pub fn block_len(&self, i: u64) -> usize {
        let start = i * self.block_size;
        (self.size - start).min(self.block_size) as usize
    }

    /// Shard bytes of block `i`.
    pub fn shard_len(&self, i: u64) -> usize {
        self.geometry.shard_len(self.block_len(i))
    }

    /// Offset of block `i`'s frame (hash first) relative to the start of the blocks.
    pub fn frame_offset(&self, i: u64) -> u64 {
        let full = (HASH_LEN + self.geometry.shard_len(self.block_size as usize)) as u64;
        i * full
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_map_arithmetic() {
        let map = BlockMap {
            geometry: Geometry::new(4, 2),
            block_size: 1 << 20,
            size: (5 << 20) + 10,
        };
        assert_eq!(map.blocks(), 6);
        assert_eq!(map.block_len(5), 10);
        assert_eq!(map.shard_len(0), 1 << 18);
        assert_eq!(map.shard_len(5), 4);
        assert_eq!(map.frame_offset(2), 2 * (32 + (1 << 18)));
    }
}
