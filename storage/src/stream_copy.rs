//! Copies into buffers that only a device reads next: non-temporal stores, which write around the CPU caches.
//!
//! Why: a shard sink copies every frame into its aligned `O_DIRECT` buffer, 1.5 GiB per GiB of object at 4+2,
//! and the next reader of that buffer is the disk's DMA, not the CPU. An ordinary copy leaves every frame in the
//! cache, evicting the block the encoder and the hashers are working on to make room. Streaming stores write
//! around the cache: the server's CPU on 64 MiB PUTs fell by 3.7% (seven alternated pairs). Alone, in the
//! `sink_copy` bench, the streaming copy is no faster than `memcpy` on a quiet machine (glibc's `rep movsb`
//! already skips reading whole destination lines) and faster beside a busy core (bench/KERNELS.md).
//!
//! The module's unsafe code is the SSE2 intrinsics (part of every x86-64 CPU) on pointers into the two slices,
//! bounds-checked before the loop; elsewhere the copy is `copy_from_slice`.

#![allow(unsafe_code)]

/// Below this, a streaming copy's fence costs more than the cache traffic it saves.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
const MIN_STREAM: usize = 4096;

/// Copies `src` into `dst` (the same length), bypassing the caches for the bulk of it where the CPU can.
pub fn copy(dst: &mut [u8], src: &[u8]) {
    assert_eq!(dst.len(), src.len(), "copy between slices of one length");
    #[cfg(target_arch = "x86_64")]
    if src.len() >= MIN_STREAM {
        // Streaming stores need 16-byte aligned destinations: the head up to that is copied plainly.
        let head = dst.as_ptr().align_offset(16).min(dst.len());
        dst[..head].copy_from_slice(&src[..head]);
        let body = (dst.len() - head) / 64 * 64;
        stream_x86_64(&mut dst[head..head + body], &src[head..head + body]);
        dst[head + body..].copy_from_slice(&src[head + body..]);
        return;
    }
    dst.copy_from_slice(src);
}

/// `dst` 16-byte aligned, both slices the same length, a multiple of 64.
#[cfg(target_arch = "x86_64")]
fn stream_x86_64(dst: &mut [u8], src: &[u8]) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
    assert!(dst.len() == src.len() && dst.len().is_multiple_of(64));
    assert_eq!(dst.as_ptr().align_offset(16), 0);
    let (d, s) = (dst.as_mut_ptr(), src.as_ptr());
    let mut i = 0;
    while i < dst.len() {
        // SAFETY: `i + 64 <= len` for both slices (asserted above); loads are unaligned, and stores go to a
        // 16-byte aligned destination (asserted above; `i` is a multiple of 64). SSE2 is baseline on x86-64.
        unsafe {
            let a = _mm_loadu_si128(s.add(i).cast::<__m128i>());
            let b = _mm_loadu_si128(s.add(i + 16).cast::<__m128i>());
            let c = _mm_loadu_si128(s.add(i + 32).cast::<__m128i>());
            let e = _mm_loadu_si128(s.add(i + 48).cast::<__m128i>());
            _mm_stream_si128(d.add(i).cast::<__m128i>(), a);
            _mm_stream_si128(d.add(i + 16).cast::<__m128i>(), b);
            _mm_stream_si128(d.add(i + 32).cast::<__m128i>(), c);
            _mm_stream_si128(d.add(i + 48).cast::<__m128i>(), e);
        }
        i += 64;
    }
    // Streaming stores are weakly ordered: fence them before the buffer is handed to the kernel or a thread.
    // SAFETY: a fence has no preconditions.
    unsafe { _mm_sfence() };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copies_every_byte_at_any_alignment_and_length() {
        let src: Vec<u8> = (0..20_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for offset in [0, 1, 7, 15, 16, 33] {
            for len in [0, 1, 63, 4095, 4096, 4097, 5000, 12_345, 19_000] {
                let mut dst = vec![0u8; 20_064];
                let s = &src[offset % 5..offset % 5 + len];
                copy(&mut dst[offset..offset + len], s);
                assert_eq!(&dst[offset..offset + len], s, "offset {offset} len {len}");
                assert!(
                    dst[..offset].iter().all(|&b| b == 0),
                    "nothing written before"
                );
                assert!(
                    dst[offset + len..].iter().all(|&b| b == 0),
                    "nothing written after"
                );
            }
        }
    }
}
