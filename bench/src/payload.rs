//! Request bodies without per-request copies or allocation of data: one random (incompressible) buffer is
//! generated at start, and every upload is a [`PayloadBody`] that hands out `Bytes` slices of it, wrapping
//! around when the object is larger than the buffer (so a 1 GiB object costs at most 64 MiB of memory).
//!
//! Each upload starts at one of a fixed set of offsets (a "variant"). When payloads are signed, the SHA-256 of
//! every variant (of every part of it, for multipart uploads) is computed once before the measured phase, so
//! signing a request never hashes its body. Payloads for drawn sizes ([`Payload::for_sizes`]) keep a SHA-256
//! state every KiB of each variant instead ([`crate::prefix_hash`]), so a body of any size is signed after
//! hashing at most 1 KiB of it.

use std::borrow::Cow;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

use crate::prefix_hash::PrefixHashes;

/// Largest buffer kept in memory; bigger objects wrap around it.
const MAX_BUFFER: u64 = 64 << 20;
/// Extra bytes beyond the object size, so different variants start at different offsets.
const SLACK: u64 = 1 << 20;
/// Distance between variant start offsets (odd so starts are not page aligned).
const VARIANT_STEP: u64 = 1021;
/// Bytes of one variant hashed or sent per frame at most.
const FRAME: u64 = 4 << 20;

/// The shared random buffer and the variants that uploads start from.
pub(crate) struct Payload {
    buf: Bytes,
    size: u64,
    /// `(offset, length)` of each part of an object: one part covering the whole object, except for
    /// multipart uploads.
    parts: Vec<(u64, u64)>,
    variants: Vec<Variant>,
}

/// One of the fixed bodies: where in the buffer it starts, and the hex SHA-256 of each of its parts (empty
/// strings when unsigned), or for drawn sizes the saved states that hash any prefix of it.
struct Variant {
    offset: u64,
    hashes: Vec<String>,
    prefixes: Option<PrefixHashes>,
}

impl Payload {
    /// Generates the buffer for objects of `size` bytes sent whole. With `signed`, hashes every variant
    /// (costly for large objects, which is why large objects get few variants; done before anything is
    /// measured).
    pub(crate) fn new(size: u64, signed: bool) -> Payload {
        Payload::with_parts(size, vec![(0, size)], signed)
    }

    /// Like [`Payload::new`] for objects uploaded in the parts `parts` (`(offset, length)`, in order,
    /// covering `0..size`); with `signed` every part of every variant is hashed once. Part `n` of a variant
    /// is exactly bytes `offset..offset + length` of the whole-object body of that variant.
    pub(crate) fn with_parts(size: u64, parts: Vec<(u64, u64)>, signed: bool) -> Payload {
        debug_assert_eq!(parts.iter().map(|p| p.1).sum::<u64>(), size);
        let len = size.min(MAX_BUFFER) + SLACK;
        let mut data = vec![0u8; len as usize];
        rand::rng().fill_bytes(&mut data);
        let buf = Bytes::from(data);
        // Small objects get up to 1024 distinct bodies; each variant's hashes cost `size` bytes of SHA-256,
        // so about 256 MiB of hashing at most overall (or one object's size when that is larger).
        let count = ((256u64 << 20) / size.max(1)).clamp(1, 1024);
        let variants = (0..count)
            .map(|i| {
                let offset = (i * VARIANT_STEP) % len;
                let hashes = parts
                    .iter()
                    .map(|&(off, n)| {
                        if signed {
                            hash_body(&buf, (offset + off) % len, n)
                        } else {
                            String::new()
                        }
                    })
                    .collect();
                Variant {
                    offset,
                    hashes,
                    prefixes: None,
                }
            })
            .collect();
        Payload {
            buf,
            size,
            parts,
            variants,
        }
    }

    /// A payload for objects of any size up to `max`, drawn per upload ([`Payload::body_sized`]). With
    /// `signed`, every variant is hashed once over `max` bytes, keeping a SHA-256 state every KiB (32 bytes
    /// of memory per KiB of `max` per variant); fewer variants the larger `max` is.
    pub(crate) fn for_sizes(max: u64, signed: bool) -> Payload {
        let len = max.min(MAX_BUFFER) + SLACK;
        let mut data = vec![0u8; len as usize];
        rand::rng().fill_bytes(&mut data);
        let buf = Bytes::from(data);
        let count = ((256u64 << 20) / max.max(1)).clamp(1, 256);
        let variants = (0..count)
            .map(|i| {
                let offset = (i * VARIANT_STEP) % len;
                let prefixes = signed
                    .then(|| PrefixHashes::new(max, &|pos, out| fill(&buf, offset + pos, out)));
                Variant {
                    offset,
                    hashes: vec![String::new()],
                    prefixes,
                }
            })
            .collect();
        Payload {
            buf,
            size: max,
            parts: vec![(0, max)],
            variants,
        }
    }

    /// The first `size` bytes (at most the payload's size) of variant `i` (taken modulo the count) and its
    /// hex SHA-256 (empty when unsigned).
    pub(crate) fn body_sized(&self, i: usize, size: u64) -> (PayloadBody, Cow<'_, str>) {
        debug_assert!(size <= self.size);
        let v = &self.variants[i % self.variants.len()];
        let body = PayloadBody::new(self.buf.clone(), v.offset, size);
        let hash = match &v.prefixes {
            Some(p) => Cow::Owned(p.hex(size, &|pos, out| fill(&self.buf, v.offset + pos, out))),
            // unsigned, or a fixed-size payload (whose one size was hashed whole)
            None => {
                debug_assert!(size == self.size || v.hashes[0].is_empty());
                Cow::Borrowed(v.hashes[0].as_str())
            }
        };
        (body, hash)
    }

    /// The object size every body has.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Number of variants to pick from.
    pub(crate) fn variants(&self) -> usize {
        self.variants.len()
    }

    /// Number of parts of an object (1 unless built [`Payload::with_parts`]).
    pub(crate) fn parts(&self) -> usize {
        self.parts.len()
    }

    /// Length of part `n` (0-based).
    pub(crate) fn part_len(&self, n: usize) -> u64 {
        self.parts[n].1
    }

    /// Part `n` (0-based) of variant `i` (taken modulo the count) and its hex SHA-256 (empty when unsigned).
    pub(crate) fn part(&self, i: usize, n: usize) -> (PayloadBody, &str) {
        let v = &self.variants[i % self.variants.len()];
        let (off, len) = self.parts[n];
        let pos = (v.offset + off) % self.buf.len() as u64;
        (PayloadBody::new(self.buf.clone(), pos, len), &v.hashes[n])
    }
}

/// Fills `out` with the buffer's bytes from `pos`, wrapping around (as a [`PayloadBody`] reads them).
fn fill(buf: &Bytes, pos: u64, out: &mut [u8]) {
    let len = buf.len();
    let mut at = (pos % len as u64) as usize;
    let mut done = 0;
    while done < out.len() {
        let n = (out.len() - done).min(len - at);
        out[done..done + n].copy_from_slice(&buf[at..at + n]);
        done += n;
        at = 0;
    }
}

fn hash_body(buf: &Bytes, offset: u64, size: u64) -> String {
    let mut hasher = Sha256::new();
    let mut body = PayloadBody::new(buf.clone(), offset, size);
    while let Some(chunk) = body.next_chunk() {
        hasher.update(&chunk);
    }
    hex::encode(hasher.finalize())
}

/// An upload body: `remaining` bytes of a shared buffer from `pos`, wrapping around, in frames of at most 4 MiB.
pub(crate) struct PayloadBody {
    buf: Bytes,
    pos: u64,
    remaining: u64,
}

impl PayloadBody {
    fn new(buf: Bytes, pos: u64, size: u64) -> PayloadBody {
        PayloadBody {
            buf,
            pos,
            remaining: size,
        }
    }

    /// A body with no bytes, for requests other than uploads.
    pub(crate) fn empty() -> PayloadBody {
        PayloadBody {
            buf: Bytes::new(),
            pos: 0,
            remaining: 0,
        }
    }

    /// A body sending exactly `data` (small request documents such as DeleteObjects).
    pub(crate) fn from_bytes(data: Bytes) -> PayloadBody {
        let remaining = data.len() as u64;
        PayloadBody {
            buf: data,
            pos: 0,
            remaining,
        }
    }

    /// The next slice of the body (at most 4 MiB), `None` at the end.
    pub(crate) fn next_chunk(&mut self) -> Option<Bytes> {
        if self.remaining == 0 {
            return None;
        }
        let len = self.buf.len() as u64;
        if self.pos >= len {
            self.pos = 0;
        }
        let n = self.remaining.min(len - self.pos).min(FRAME);
        let chunk = self.buf.slice(self.pos as usize..(self.pos + n) as usize);
        self.pos += n;
        self.remaining -= n;
        Some(chunk)
    }
}

impl Body for PayloadBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().next_chunk().map(|c| Ok(Frame::data(c))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(mut body: PayloadBody) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(c) = body.next_chunk() {
            assert!(c.len() as u64 <= FRAME);
            out.extend_from_slice(&c);
        }
        out
    }

    #[test]
    fn small_bodies_are_slices_with_hashes() {
        let p = Payload::new(4096, true);
        assert_eq!(p.variants(), 1024);
        let (body, hash) = p.body_sized(3, 4096);
        let data = collect(body);
        assert_eq!(data.len(), 4096);
        assert_eq!(hash, crate::sigv4::sha256_hex(&data));
        let (other, _) = p.body_sized(4, 4096);
        assert_ne!(data, collect(other));
    }

    #[test]
    fn large_bodies_wrap_around() {
        let p = Payload::new(200 << 20, false);
        assert_eq!(p.variants(), 1);
        let (body, hash) = p.body_sized(0, 200 << 20);
        assert!(hash.is_empty());
        assert_eq!(body.size_hint().exact(), Some(200 << 20));
        let data = collect(body);
        assert_eq!(data.len(), 200 << 20);
        let period = (MAX_BUFFER + SLACK) as usize;
        assert_eq!(data[..1000], data[period..period + 1000]);
    }

    #[test]
    fn parts_concatenate_to_the_whole_body() {
        // 3 parts of 40 MiB, 40 MiB and 20 MiB: the buffer (65 MiB) wraps inside the second part
        let size = 100 << 20;
        let parts = crate::multipart::split_parts(size, 40 << 20);
        let whole = Payload::new(size, false);
        let mp = Payload {
            buf: whole.buf.clone(),
            size,
            parts,
            variants: vec![Variant {
                offset: whole.variants[0].offset,
                hashes: vec![String::new(); 3],
                prefixes: None,
            }],
        };
        assert_eq!(mp.parts(), 3);
        let mut joined = Vec::new();
        for n in 0..mp.parts() {
            let (body, _) = mp.part(0, n);
            joined.extend(collect(body));
        }
        assert_eq!(joined, collect(whole.body_sized(0, size).0));
    }

    #[test]
    fn signed_parts_have_their_own_hashes() {
        let size = (2 << 20) + 5;
        let p = Payload::with_parts(size, crate::multipart::split_parts(size, 1 << 20), true);
        assert_eq!(p.parts(), 3);
        assert_eq!(p.variants(), 127); // 256 MiB of hashing / (2 MiB + 5)
        for n in 0..3 {
            let (body, hash) = p.part(7, n);
            let data = collect(body);
            assert_eq!(data.len(), if n == 2 { 5 } else { 1 << 20 });
            assert_eq!(hash, crate::sigv4::sha256_hex(&data));
        }
    }

    #[test]
    fn drawn_sizes_are_signed_with_their_own_hashes() {
        let p = Payload::for_sizes(3 << 20, true);
        assert_eq!(p.variants(), 85);
        for (i, size) in [
            (0, 0),
            (1, 1),
            (2, 1000),
            (3, 4097),
            (84, 3 << 20),
            (85, (3 << 20) - 7),
        ] {
            let (body, hash) = p.body_sized(i, size);
            let data = collect(body);
            assert_eq!(data.len() as u64, size);
            assert_eq!(
                hash,
                crate::sigv4::sha256_hex(&data),
                "variant {i}, {size} bytes"
            );
        }
        // past the end of the buffer, fill() wraps around as a body does
        let (body, _) = p.body_sized(0, 3 << 20);
        let mut wrapped = vec![0u8; 100];
        fill(&p.buf, p.buf.len() as u64 - 40, &mut wrapped);
        assert_eq!(wrapped[..40], p.buf[p.buf.len() - 40..]);
        assert_eq!(wrapped[40..], collect(body)[..60]);
        let unsigned = Payload::for_sizes(1 << 20, false);
        assert_eq!(unsigned.body_sized(5, 12345).1, "");
    }

    #[test]
    fn empty_body() {
        let b = PayloadBody::empty();
        assert!(b.is_end_stream());
        assert_eq!(collect(b).len(), 0);
    }
}
