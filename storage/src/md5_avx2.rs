//! The eight-lane MD5 kernel in one AVX2 register, for CPUs that have AVX2 (detected at run time, since the
//! binary is built for any x86-64).
//!
//! Why: without AVX2 compiled in, [`crate::md5_lanes`] runs eight lanes as two SSE registers, so every step of
//! the chain is two instructions where AVX2 needs one. The chain's latency sets the pace either way, but the
//! halved instruction count leaves the core room to run other work (the lanes' loads, another thread on the
//! sibling) and shortens each step; `md5_lanes::speed::kernel_throughput` measures the gain.
//!
//! The module's unsafe code is the call into the AVX2 function once the CPU is known to have AVX2, and the
//! unaligned loads and stores of SIMD registers from and to byte arrays of the right length.
#![allow(unsafe_code)]

use std::arch::x86_64::{
    __m128i, __m256i, _mm_loadu_si128, _mm256_add_epi32, _mm256_and_si256, _mm256_andnot_si256,
    _mm256_or_si256, _mm256_set_m128i, _mm256_set1_epi32, _mm256_setr_epi32, _mm256_slli_epi32,
    _mm256_srli_epi32, _mm256_storeu_si256, _mm256_unpackhi_epi32, _mm256_unpackhi_epi64,
    _mm256_unpacklo_epi32, _mm256_unpacklo_epi64, _mm256_xor_si256,
};

use crate::md5::{K, md5_schedule};

/// Runs the compression function over the whole 64-byte blocks of eight equally long inputs, one per lane, and
/// returns true; returns false, having done nothing, where the CPU lacks AVX2.
pub(crate) fn compress_x8(states: &mut [[u32; 4]; 8], inputs: [&[u8]; 8]) -> bool {
    // The standard library caches the answer: this is an atomic load.
    if !std::arch::is_x86_feature_detected!("avx2") {
        return false;
    }
    // SAFETY: the CPU has AVX2, the one requirement of the target feature.
    unsafe { compress_x8_avx2(states, inputs) };
    true
}

#[target_feature(enable = "avx2")]
fn compress_x8_avx2(states: &mut [[u32; 4]; 8], inputs: [&[u8]; 8]) {
    let len = inputs[0].len();
    assert!(len.is_multiple_of(64) && inputs.iter().all(|i| i.len() == len));
    macro_rules! lane {
        ($w:expr) => {
            _mm256_setr_epi32(
                states[0][$w] as i32,
                states[1][$w] as i32,
                states[2][$w] as i32,
                states[3][$w] as i32,
                states[4][$w] as i32,
                states[5][$w] as i32,
                states[6][$w] as i32,
                states[7][$w] as i32,
            )
        };
    }
    let (mut a, mut b, mut c, mut d) = (lane!(0), lane!(1), lane!(2), lane!(3));
    let ones = _mm256_set1_epi32(-1);
    for at in (0..len).step_by(64) {
        let x = block(&inputs, at);
        let (a0, b0, c0, d0) = (a, b, c, d);
        macro_rules! f {
            ($b:expr, $c:expr, $d:expr) => {
                _mm256_xor_si256($d, _mm256_and_si256($b, _mm256_xor_si256($c, $d)))
            };
        }
        macro_rules! g {
            ($b:expr, $c:expr, $d:expr) => {
                _mm256_or_si256(_mm256_and_si256($b, $d), _mm256_andnot_si256($d, $c))
            };
        }
        macro_rules! h {
            ($b:expr, $c:expr, $d:expr) => {
                _mm256_xor_si256(_mm256_xor_si256($b, $c), $d)
            };
        }
        macro_rules! i {
            ($b:expr, $c:expr, $d:expr) => {
                _mm256_xor_si256($c, _mm256_or_si256($b, _mm256_xor_si256($d, ones)))
            };
        }
        // One step: `$a = $b + rotl($a + x[$x] + K[$j] + $f($b, $c, $d), $s)`.
        macro_rules! step {
            ($f:ident, $a:ident, $b:ident, $c:ident, $d:ident, $x:expr, $j:expr, $s:expr) => {
                let sum = _mm256_add_epi32(
                    _mm256_add_epi32($a, x[$x]),
                    _mm256_add_epi32(_mm256_set1_epi32(K[$j] as i32), $f!($b, $c, $d)),
                );
                $a = _mm256_add_epi32(
                    $b,
                    _mm256_or_si256(
                        _mm256_slli_epi32::<{ $s }>(sum),
                        _mm256_srli_epi32::<{ 32 - $s }>(sum),
                    ),
                );
            };
        }
        // The same four-step pattern as the scalar code: `$j` is the first step's index.
        macro_rules! four {
            ($f:ident, $j:expr, [$x0:expr, $x1:expr, $x2:expr, $x3:expr], [$s0:expr, $s1:expr, $s2:expr, $s3:expr]) => {
                step!($f, a, b, c, d, $x0, $j, $s0);
                step!($f, d, a, b, c, $x1, $j + 1, $s1);
                step!($f, c, d, a, b, $x2, $j + 2, $s2);
                step!($f, b, c, d, a, $x3, $j + 3, $s3);
            };
        }
        md5_schedule!(four, f, g, h, i);
        a = _mm256_add_epi32(a, a0);
        b = _mm256_add_epi32(b, b0);
        c = _mm256_add_epi32(c, c0);
        d = _mm256_add_epi32(d, d0);
    }
    let mut words = [[0u32; 8]; 4];
    for (out, v) in words.iter_mut().zip([a, b, c, d]) {
        // SAFETY: `out` is 32 writable bytes; the store needs no alignment.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast::<__m256i>(), v) };
    }
    for (l, state) in states.iter_mut().enumerate() {
        *state = [words[0][l], words[1][l], words[2][l], words[3][l]];
    }
}

/// The sixteen words of the 64-byte block at `at` of every input, each word across the lanes (lane `l` in
/// element `l`). Lanes `l` and `l + 4` share a register (low and high half), so one 4x4 transpose per half,
/// which is what AVX2's unpacks do, turns four such registers into four words of all eight lanes.
#[target_feature(enable = "avx2")]
fn block(inputs: &[&[u8]; 8], at: usize) -> [__m256i; 16] {
    let mut x = [_mm256_set1_epi32(0); 16];
    for quarter in 0..4 {
        let p = at + 16 * quarter;
        let mut rows = [_mm256_set1_epi32(0); 4];
        for (l, row) in rows.iter_mut().enumerate() {
            *row = _mm256_set_m128i(load16(inputs[l + 4], p), load16(inputs[l], p));
        }
        let t0 = _mm256_unpacklo_epi32(rows[0], rows[1]);
        let t1 = _mm256_unpacklo_epi32(rows[2], rows[3]);
        let t2 = _mm256_unpackhi_epi32(rows[0], rows[1]);
        let t3 = _mm256_unpackhi_epi32(rows[2], rows[3]);
        x[4 * quarter] = _mm256_unpacklo_epi64(t0, t1);
        x[4 * quarter + 1] = _mm256_unpackhi_epi64(t0, t1);
        x[4 * quarter + 2] = _mm256_unpacklo_epi64(t2, t3);
        x[4 * quarter + 3] = _mm256_unpackhi_epi64(t2, t3);
    }
    x
}

/// The 16 bytes of `input` at `p`.
#[target_feature(enable = "avx2")]
fn load16(input: &[u8], p: usize) -> __m128i {
    let bytes: &[u8; 16] = input[p..p + 16].try_into().expect("16 bytes");
    // SAFETY: `bytes` is 16 readable bytes; the load needs no alignment.
    unsafe { _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>()) }
}
