//! Request bodies without per-request copies or allocation of data: one random (incompressible) buffer is
//! generated at start, and every upload is a [`PayloadBody`] that hands out `Bytes` slices of it, wrapping
//! around when the object is larger than the buffer (so a 1 GiB object costs at most 64 MiB of memory).
//!
//! Each upload starts at one of a fixed set of offsets (a "variant"). When payloads are signed, the SHA-256 of
//! every variant is computed once before the measured phase, so signing a request never hashes its body.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use rand::RngCore as _;
use sha2::{Digest, Sha256};

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
    /// `(start offset, hex SHA-256 of the object body starting there)`; hashes are empty when unsigned.
    variants: Vec<(u64, String)>,
}

impl Payload {
    /// Generates the buffer for objects of `size` bytes. With `signed`, hashes every variant (costly for large
    /// objects, which is why large objects get few variants; done before anything is measured).
    pub(crate) fn new(size: u64, signed: bool) -> Payload {
        let len = size.min(MAX_BUFFER) + SLACK;
        let mut data = vec![0u8; len as usize];
        rand::rng().fill_bytes(&mut data);
        let buf = Bytes::from(data);
        // Small objects get up to 1024 distinct bodies; each variant's hash costs `size` bytes of SHA-256, so
        // about 256 MiB of hashing at most overall.
        let count = ((256u64 << 20) / size.max(1)).clamp(1, 1024);
        let mut variants: Vec<(u64, String)> = (0..count)
            .map(|i| ((i * VARIANT_STEP) % len, String::new()))
            .collect();
        if signed {
            for (offset, hash) in &mut variants {
                *hash = hash_body(&buf, *offset, size);
            }
        }
        Payload {
            buf,
            size,
            variants,
        }
    }

    /// The object size every body has.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Number of variants to pick from.
    pub(crate) fn variants(&self) -> usize {
        self.variants.len()
    }

    /// The body of variant `i` (taken modulo the count) and its hex SHA-256 (empty when unsigned).
    pub(crate) fn body(&self, i: usize) -> (PayloadBody, &str) {
        let (offset, hash) = &self.variants[i % self.variants.len()];
        (PayloadBody::new(self.buf.clone(), *offset, self.size), hash)
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

    fn next_chunk(&mut self) -> Option<Bytes> {
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
        let (body, hash) = p.body(3);
        let data = collect(body);
        assert_eq!(data.len(), 4096);
        assert_eq!(hash, crate::sigv4::sha256_hex(&data));
        let (other, _) = p.body(4);
        assert_ne!(data, collect(other));
    }

    #[test]
    fn large_bodies_wrap_around() {
        let p = Payload::new(200 << 20, false);
        assert_eq!(p.variants(), 1);
        let (body, hash) = p.body(0);
        assert!(hash.is_empty());
        assert_eq!(body.size_hint().exact(), Some(200 << 20));
        let data = collect(body);
        assert_eq!(data.len(), 200 << 20);
        let period = (MAX_BUFFER + SLACK) as usize;
        assert_eq!(data[..1000], data[period..period + 1000]);
    }

    #[test]
    fn empty_body() {
        let b = PayloadBody::empty();
        assert!(b.is_end_stream());
        assert_eq!(collect(b).len(), 0);
    }
}
