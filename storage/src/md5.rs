//! MD5 (RFC 1321) for ETags, in safe Rust, written for the latency of its dependency chain.
//!
//! MD5 is one serial chain of 64 steps per 64-byte block, so its speed is the length of that chain, not the
//! instruction count. Each step is `b + rotl(a + m + k + f(b, c, d), s)`; only `f` and what follows depend on
//! the previous step. Two things keep the chain short (about 4.5 cycles per byte, against about 5.5 for the
//! md-5 crate's assembly backend and 5 for OpenSSL's, measured on this project's machine):
//!
//! - `a + m + k` is summed before `f` is known. The round constants are read through an opaque reference:
//!   seen as literals, LLVM re-associates them to the end of the sum, one add after `f`, on the chain.
//! - Round 2's `G = (b & d) | (c & !d)` is added as two terms, `c & !d` early and only `b & d` on the chain.
//!
//! ETags are what the S3 API returns; this is not used for anything that needs collision resistance.

/// Per-step additive constants, `floor(abs(sin(i + 1)) * 2^32)`.
pub(crate) const K: [u32; 64] = [
    0xd76a_a478,
    0xe8c7_b756,
    0x2420_70db,
    0xc1bd_ceee,
    0xf57c_0faf,
    0x4787_c62a,
    0xa830_4613,
    0xfd46_9501,
    0x6980_98d8,
    0x8b44_f7af,
    0xffff_5bb1,
    0x895c_d7be,
    0x6b90_1122,
    0xfd98_7193,
    0xa679_438e,
    0x49b4_0821,
    0xf61e_2562,
    0xc040_b340,
    0x265e_5a51,
    0xe9b6_c7aa,
    0xd62f_105d,
    0x0244_1453,
    0xd8a1_e681,
    0xe7d3_fbc8,
    0x21e1_cde6,
    0xc337_07d6,
    0xf4d5_0d87,
    0x455a_14ed,
    0xa9e3_e905,
    0xfcef_a3f8,
    0x676f_02d9,
    0x8d2a_4c8a,
    0xfffa_3942,
    0x8771_f681,
    0x6d9d_6122,
    0xfde5_380c,
    0xa4be_ea44,
    0x4bde_cfa9,
    0xf6bb_4b60,
    0xbebf_bc70,
    0x289b_7ec6,
    0xeaa1_27fa,
    0xd4ef_3085,
    0x0488_1d05,
    0xd9d4_d039,
    0xe6db_99e5,
    0x1fa2_7cf8,
    0xc4ac_5665,
    0xf429_2244,
    0x432a_ff97,
    0xab94_23a7,
    0xfc93_a039,
    0x655b_59c3,
    0x8f0c_cc92,
    0xffef_f47d,
    0x8584_5dd1,
    0x6fa8_7e4f,
    0xfe2c_e6e0,
    0xa301_4314,
    0x4e08_11a1,
    0xf753_7e82,
    0xbd3a_f235,
    0x2ad7_d2bb,
    0xeb86_d391,
];

const INIT: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];

#[inline(always)]
fn step_f(a: u32, b: u32, c: u32, d: u32, mk: u32, s: u32) -> u32 {
    a.wrapping_add(mk)
        .wrapping_add(d ^ (b & (c ^ d)))
        .rotate_left(s)
        .wrapping_add(b)
}

#[inline(always)]
fn step_g(a: u32, b: u32, c: u32, d: u32, mk: u32, s: u32) -> u32 {
    a.wrapping_add(mk)
        .wrapping_add(c & !d)
        .wrapping_add(b & d)
        .rotate_left(s)
        .wrapping_add(b)
}

#[inline(always)]
fn step_h(a: u32, b: u32, c: u32, d: u32, mk: u32, s: u32) -> u32 {
    a.wrapping_add(mk)
        .wrapping_add(b ^ (c ^ d))
        .rotate_left(s)
        .wrapping_add(b)
}

#[inline(always)]
fn step_i(a: u32, b: u32, c: u32, d: u32, mk: u32, s: u32) -> u32 {
    a.wrapping_add(mk)
        .wrapping_add(c ^ (b | !d))
        .rotate_left(s)
        .wrapping_add(b)
}

/// MD5's 64 steps (RFC 1321, 3.4) as sixteen groups of four: `$four!(round function, index of the first step,
/// its four message words, their four shifts)`. Each kernel (scalar here, four and eight lanes in `md5_lanes`, AVX2
/// in `md5_avx2`) expands this one schedule with its own `four!` and round functions.
macro_rules! md5_schedule {
    ($four:ident, $f:ident, $g:ident, $h:ident, $i:ident) => {
        $four!($f, 0, [0, 1, 2, 3], [7, 12, 17, 22]);
        $four!($f, 4, [4, 5, 6, 7], [7, 12, 17, 22]);
        $four!($f, 8, [8, 9, 10, 11], [7, 12, 17, 22]);
        $four!($f, 12, [12, 13, 14, 15], [7, 12, 17, 22]);
        $four!($g, 16, [1, 6, 11, 0], [5, 9, 14, 20]);
        $four!($g, 20, [5, 10, 15, 4], [5, 9, 14, 20]);
        $four!($g, 24, [9, 14, 3, 8], [5, 9, 14, 20]);
        $four!($g, 28, [13, 2, 7, 12], [5, 9, 14, 20]);
        $four!($h, 32, [5, 8, 11, 14], [4, 11, 16, 23]);
        $four!($h, 36, [1, 4, 7, 10], [4, 11, 16, 23]);
        $four!($h, 40, [13, 0, 3, 6], [4, 11, 16, 23]);
        $four!($h, 44, [9, 12, 15, 2], [4, 11, 16, 23]);
        $four!($i, 48, [0, 7, 14, 5], [6, 10, 15, 21]);
        $four!($i, 52, [12, 3, 10, 1], [6, 10, 15, 21]);
        $four!($i, 56, [8, 15, 6, 13], [6, 10, 15, 21]);
        $four!($i, 60, [4, 11, 2, 9], [6, 10, 15, 21]);
    };
}
pub(crate) use md5_schedule;

/// Runs the compression function over whole 64-byte blocks.
pub(crate) fn compress(state: &mut [u32; 4], blocks: &[u8]) {
    let k: &[u32; 64] = std::hint::black_box(&K);
    let [mut a, mut b, mut c, mut d] = *state;
    for block in blocks.chunks_exact(64) {
        let mut x = [0u32; 16];
        for (w, bytes) in x.iter_mut().zip(block.chunks_exact(4)) {
            *w = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        let (a0, b0, c0, d0) = (a, b, c, d);
        // Four steps rotate the roles of a, b, c, d; `$j` is the first step's index.
        macro_rules! four {
            ($step:ident, $j:expr, [$x0:expr, $x1:expr, $x2:expr, $x3:expr], [$s0:expr, $s1:expr, $s2:expr, $s3:expr]) => {
                a = $step(a, b, c, d, x[$x0].wrapping_add(k[$j]), $s0);
                d = $step(d, a, b, c, x[$x1].wrapping_add(k[$j + 1]), $s1);
                c = $step(c, d, a, b, x[$x2].wrapping_add(k[$j + 2]), $s2);
                b = $step(b, c, d, a, x[$x3].wrapping_add(k[$j + 3]), $s3);
            };
        }
        md5_schedule!(four, step_f, step_g, step_h, step_i);
        a = a.wrapping_add(a0);
        b = b.wrapping_add(b0);
        c = c.wrapping_add(c0);
        d = d.wrapping_add(d0);
    }
    *state = [a, b, c, d];
}

/// Incremental MD5.
#[derive(Clone)]
pub struct Md5 {
    state: [u32; 4],
    /// Bytes of a partial block waiting for the rest.
    pending: [u8; 64],
    pending_len: usize,
    len: u64,
}

impl Default for Md5 {
    fn default() -> Self {
        Self::new()
    }
}

impl Md5 {
    /// A fresh hasher.
    pub fn new() -> Self {
        Self {
            state: INIT,
            pending: [0; 64],
            pending_len: 0,
            len: 0,
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.len = self.len.wrapping_add(data.len() as u64);
        if self.pending_len > 0 {
            let take = (64 - self.pending_len).min(data.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&data[..take]);
            self.pending_len += take;
            data = &data[take..];
            if self.pending_len < 64 {
                return;
            }
            compress(&mut self.state, &self.pending);
            self.pending_len = 0;
        }
        let whole = data.len() / 64 * 64;
        compress(&mut self.state, &data[..whole]);
        let rest = &data[whole..];
        self.pending[..rest.len()].copy_from_slice(rest);
        self.pending_len = rest.len();
    }

    /// The digest of everything fed.
    pub fn finalize(mut self) -> [u8; 16] {
        let bits = self.len.wrapping_mul(8);
        let mut tail = [0u8; 128];
        tail[..self.pending_len].copy_from_slice(&self.pending[..self.pending_len]);
        tail[self.pending_len] = 0x80;
        let tail_len = if self.pending_len < 56 { 64 } else { 128 };
        tail[tail_len - 8..tail_len].copy_from_slice(&bits.to_le_bytes());
        compress(&mut self.state, &tail[..tail_len]);
        let mut out = [0u8; 16];
        for (o, w) in out.chunks_exact_mut(4).zip(self.state) {
            o.copy_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// The chaining state (meaningful to [`crate::md5_lanes`] only while [`Self::is_block_aligned`]).
    pub(crate) fn state(&self) -> [u32; 4] {
        self.state
    }

    /// Sets the chaining state computed elsewhere for the bytes counted by [`Self::count_whole_blocks`].
    pub(crate) fn set_state(&mut self, state: [u32; 4]) {
        self.state = state;
    }

    /// No partial block is waiting: the next bytes start a block.
    pub(crate) fn is_block_aligned(&self) -> bool {
        self.pending_len == 0
    }

    /// Counts `bytes` (whole blocks) hashed elsewhere from [`Self::state`]; their resulting state must be
    /// given to [`Self::set_state`] before any further block is compressed here.
    pub(crate) fn count_whole_blocks(&mut self, bytes: u64) {
        debug_assert!(self.is_block_aligned() && bytes.is_multiple_of(64));
        self.len = self.len.wrapping_add(bytes);
    }

    /// MD5 of `data` in one call.
    pub fn digest(data: &[u8]) -> [u8; 16] {
        let mut h = Self::new();
        h.update(data);
        h.finalize()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use md5_reference::Digest;
    use proptest::prelude::*;

    #[test]
    fn rfc_1321_test_suite() {
        let cases = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                hex::encode(Md5::digest(input.as_bytes())),
                want,
                "{input:?}"
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn matches_the_reference_for_any_split(
            data in proptest::collection::vec(any::<u8>(), 0..1000),
            cuts in proptest::collection::vec(0usize..1000, 0..6),
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(data.len())).collect();
            cuts.sort_unstable();
            let mut h = Md5::new();
            let mut from = 0;
            for c in cuts.into_iter().chain([data.len()]) {
                h.update(&data[from..c]);
                from = c;
            }
            let want: [u8; 16] = md5_reference::Md5::digest(&data).into();
            prop_assert_eq!(h.finalize(), want);
        }
    }
}
