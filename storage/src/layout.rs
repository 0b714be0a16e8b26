//! The shard file format: a self-describing header, then one `[BLAKE3][shard bytes]` frame per block, in one
//! of two layouts ([`FrameLayout`]).
//!
//! ```text
//! compact (format 1):
//! "STRATASH" | 1 u16 LE | header_len u32 LE | header (postcard) | BLAKE3(header)
//! block 0:  BLAKE3(shard) 32 bytes | shard bytes (geometry.shard_len(block_size))
//! ...
//! last:     BLAKE3(shard) 32 bytes | shard bytes (geometry.shard_len(last block length))
//!
//! aligned (format 2):
//! "STRATASH" | 2 u16 LE | header_len u32 LE | header (postcard) | BLAKE3(header) | zeros to HASH_SLOT
//! block 0:  zeros (HASH_SLOT - 32 bytes) | BLAKE3(shard) 32 bytes | shard bytes
//! ...
//! ```
//!
//! In both, a block's hash sits right before its shard, so a reader takes the two in one read of the same
//! length, whichever the layout.
//!
//! Segments of at least one full block whose full shards are whole pages of at least [`MIN_ALIGNED_SHARD`]
//! are written aligned, others compact (and so were all segments before the aligned layout existed; both are
//! read). The aligned layout puts every shard at a multiple of [`HASH_SLOT`] (4 KiB, the page and the physical
//! block of nearly every device) in the file, and a full shard (256 KiB at the default block size and
//! geometry) is a whole number of them: a sink then hands the encoder's shard buffers to an `O_DIRECT` write
//! as they are, rather than copying every byte into a buffer of its own (see `disk::gather_in_place`). It
//! costs 4,064 bytes per shard block (1.55% of a 256 KiB shard) and up to 4 KiB of header padding per file.
//! Hence the conditions: a small segment's shards are short and never written in place (a 10 KB object's
//! shard files would triple), and small blocks would pay the padding on every shard.
//!
//! The header names bucket, key, version, part and shard slot, so the index can be rebuilt from disks alone.

use serde::{Deserialize, Serialize};

use crate::disk::{DataId, ShardSource};
use crate::erasure::Geometry;

const MAGIC: &[u8; 8] = b"STRATASH";
/// Bytes of the per-block checksum. In the aligned layout a GET reads hash and shard into a page-aligned buffer
/// (`read::SegmentReader::read_shard`), so the kernel's copy writes 32 bytes (mod 4 KiB) past where it reads;
/// a distance of 1-31 would make that copy about five times slower on AMD Zen 3 (ARCHITECTURE.md, GET).
pub const HASH_LEN: usize = 32;
/// Bytes of a block's hash slot in the aligned layout (its hash, then zeros), and the multiple its header is
/// padded to.
pub const HASH_SLOT: usize = 4096;

/// The smallest full shard laid out aligned: its hash slot's padding is then at most 3.1% of it.
pub const MIN_ALIGNED_SHARD: usize = 128 * 1024;

/// How a shard file lays out its frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameLayout {
    /// Format 1: each shard right after its 32-byte hash.
    Compact,
    /// Format 2: the header and each hash padded to [`HASH_SLOT`], so full shards sit aligned in the file.
    Aligned,
}

impl FrameLayout {
    /// The layout for a segment of at least `size` bytes in blocks of `block_size` coded as `geometry`:
    /// aligned when it has a full block and its full shards are whole pages of at least
    /// [`MIN_ALIGNED_SHARD`] (see the module's doc). The write path chooses with it; a repair instead keeps
    /// the layout of the segment's other files (`read::SegmentReader::layout`), so that segments written
    /// before this rule stay as they were.
    pub fn for_segment(size: u64, block_size: u64, geometry: Geometry) -> Self {
        let shard = geometry.shard_len(block_size as usize);
        if size >= block_size && shard >= MIN_ALIGNED_SHARD && shard.is_multiple_of(HASH_SLOT) {
            Self::Aligned
        } else {
            Self::Compact
        }
    }

    fn format(self) -> u16 {
        match self {
            Self::Compact => 1,
            Self::Aligned => 2,
        }
    }

    /// Bytes before each block's shard.
    pub fn slot_len(self) -> usize {
        match self {
            Self::Compact => HASH_LEN,
            Self::Aligned => HASH_SLOT,
        }
    }

    /// This layout's hash slot, from the aligned one ([`hash_slot`]): its tail, the bare hash when compact.
    pub fn slot_of(self, aligned: &[u8; HASH_SLOT]) -> &[u8] {
        &aligned[HASH_SLOT - self.slot_len()..]
    }
}

/// A block's hash slot as the aligned layout writes it: zeros, then the hash.
pub fn hash_slot(hash: &[u8; HASH_LEN]) -> [u8; HASH_SLOT] {
    let mut slot = [0u8; HASH_SLOT];
    slot[HASH_SLOT - HASH_LEN..].copy_from_slice(hash);
    slot
}

/// Where one shard file's frames are: what its header says about the layout of the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frames {
    /// Offset of block 0's frame.
    pub blocks_at: u64,
    /// The file's layout, which says how many bytes come before each block's shard: its hash and, when
    /// aligned, the padding before it.
    pub layout: FrameLayout,
}

impl Frames {
    /// Offset of block `i`'s frame (its hash slot first) in the file.
    pub fn frame_offset(&self, map: &BlockMap, i: u64) -> u64 {
        let full =
            (self.layout.slot_len() + map.geometry.shard_len(map.block_size as usize)) as u64;
        self.blocks_at + i * full
    }

    /// Offset of block `i`'s hash, which its shard follows.
    pub fn hash_offset(&self, map: &BlockMap, i: u64) -> u64 {
        self.frame_offset(map, i) + (self.layout.slot_len() - HASH_LEN) as u64
    }
}

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
    /// Serialises the header with its framing and checksum (and padding, for the aligned layout).
    pub fn encode(&self, layout: FrameLayout) -> Vec<u8> {
        let body = postcard::to_stdvec(self).expect("header serialises");
        let mut out = Vec::with_capacity(HASH_SLOT.max(8 + 2 + 4 + body.len() + HASH_LEN));
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&layout.format().to_le_bytes());
        out.extend_from_slice(&(body.len() as u32).to_le_bytes());
        out.extend_from_slice(&body);
        out.extend_from_slice(blake3::hash(&body).as_bytes());
        if layout == FrameLayout::Aligned {
            out.resize(out.len().next_multiple_of(HASH_SLOT), 0);
        }
        out
    }

    /// Reads and verifies the header at the start of a shard file; returns it and where the frames are.
    pub fn read(src: &dyn ShardSource) -> std::io::Result<(Self, Frames)> {
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
        let layout = match u16::from_le_bytes([fixed[8], fixed[9]]) {
            1 => FrameLayout::Compact,
            2 => FrameLayout::Aligned,
            _ => return Err(bad("unknown format")),
        };
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
        let end = 14 + len + HASH_LEN;
        let blocks_at = match layout {
            FrameLayout::Compact => end,
            FrameLayout::Aligned => end.next_multiple_of(HASH_SLOT),
        };
        Ok((
            header,
            Frames {
                blocks_at: blocks_at as u64,
                layout,
            },
        ))
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
        let aligned = Frames {
            blocks_at: 4096,
            layout: FrameLayout::Aligned,
        };
        assert_eq!(aligned.frame_offset(&map, 2), 4096 + 2 * (4096 + (1 << 18)));
        assert_eq!(
            aligned.hash_offset(&map, 2),
            4096 + 2 * (4096 + (1 << 18)) + 4064
        );
        let compact = Frames {
            blocks_at: 150,
            layout: FrameLayout::Compact,
        };
        assert_eq!(compact.frame_offset(&map, 2), 150 + 2 * (32 + (1 << 18)));
        assert_eq!(compact.hash_offset(&map, 2), 150 + 2 * (32 + (1 << 18)));
    }

    /// A shard file in memory.
    struct InMemory(Vec<u8>);

    impl ShardSource for InMemory {
        fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
            let at = offset as usize;
            let bytes = self
                .0
                .get(at..at + buf.len())
                .ok_or(std::io::ErrorKind::UnexpectedEof)?;
            buf.copy_from_slice(bytes);
            Ok(())
        }
    }

    #[test]
    fn headers_of_both_layouts_read_back_with_where_their_frames_are() {
        let header = ShardHeader {
            data_id: DataId::random(),
            bucket: "b".into(),
            key: "some/key".into(),
            version_id: Some("v".into()),
            part: 3,
            upload_id: None,
            shard_index: 5,
            geometry: Geometry::new(4, 2),
            block_size: 1 << 20,
            size: 5 << 20,
        };
        let compact = header.encode(FrameLayout::Compact);
        let aligned = header.encode(FrameLayout::Aligned);
        assert_eq!(aligned.len(), HASH_SLOT);
        // The same header but for the format number, then zeros.
        assert_eq!(aligned[10..compact.len()], compact[10..]);
        assert!(aligned[compact.len()..].iter().all(|&b| b == 0));
        assert_eq!(compact[8], 1);
        assert_eq!(aligned[8], 2);
        let (back, frames) = ShardHeader::read(&InMemory(compact.clone())).unwrap();
        assert_eq!(back, header);
        assert_eq!(
            frames,
            Frames {
                blocks_at: compact.len() as u64,
                layout: FrameLayout::Compact
            }
        );
        let (back, frames) = ShardHeader::read(&InMemory(aligned)).unwrap();
        assert_eq!(back, header);
        assert_eq!(
            frames,
            Frames {
                blocks_at: HASH_SLOT as u64,
                layout: FrameLayout::Aligned
            }
        );
        let mut unknown = compact;
        unknown[8] = 3;
        assert!(ShardHeader::read(&InMemory(unknown)).is_err());
        let at = |size, block, k, m| FrameLayout::for_segment(size, block, Geometry::new(k, m));
        assert_eq!(at(1 << 20, 1 << 20, 4, 2), FrameLayout::Aligned);
        assert_eq!(at(5 << 30, 1 << 20, 8, 4), FrameLayout::Aligned);
        // Less than a block; shards under 128 KiB (16 KiB); shards not whole pages (1 MiB / 3).
        assert_eq!(at((1 << 20) - 1, 1 << 20, 4, 2), FrameLayout::Compact);
        assert_eq!(at(1 << 20, 64 << 10, 4, 2), FrameLayout::Compact);
        assert_eq!(at(1 << 20, 1 << 20, 3, 2), FrameLayout::Compact);
    }
}
