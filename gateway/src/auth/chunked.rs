//! The request body side of SigV4: the aws-chunked decoder with its chained chunk and trailer signatures, and
//! the stream that turns a raw body into verified payload bytes.
//!
//! The decoder is a push parser fed with whatever frames the socket produced, so chunk headers, CRLFs and
//! trailer lines may be split anywhere. Payload bytes are never copied: they are `Bytes` slices of the input
//! frames. Only header and trailer lines (a few hundred bytes) are assembled in a small buffer. Signed chunks
//! are held (as slices) until their signature verifies, so downstream never sees unauthenticated bytes;
//! chunk sizes are capped at 16 MiB, which bounds what is held.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::{Buf, Bytes};
use futures_util::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::canonical::{self, EMPTY_SHA256_HEX, SigningContext};
use super::{Payload, Trailers};
use crate::error::{ApiError, ApiResult};

/// The largest chunk accepted. SDKs use 64 KiB to a few MiB.
pub(crate) const MAX_CHUNK_SIZE: u64 = 16 * 1024 * 1024;
/// A signed chunk header is under 100 bytes; anything much longer is garbage or an attack.
const MAX_CHUNK_HEADER_LEN: usize = 4096;
/// Total size of all trailer lines.
const MAX_TRAILER_LEN: usize = 16 * 1024;
const TRAILER_SIGNATURE: &str = "x-amz-trailer-signature";

/// The chunk-signing state of one aws-chunked request: the signing key, timestamp and scope of the seed
/// request, and the previous signature in the chain (initially the seed signature).
#[derive(Clone)]
pub struct ChunkSigner {
    ctx: SigningContext,
    previous: [u8; 32],
}

impl fmt::Debug for ChunkSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signing key is a credential: keep it out of logs.
        f.debug_struct("ChunkSigner")
            .field("amz_date", &self.ctx.amz_date)
            .field("scope", &self.ctx.scope)
            .field("previous", &hex::encode(self.previous))
            .finish_non_exhaustive()
    }
}

impl ChunkSigner {
    pub(crate) fn new(ctx: SigningContext, seed: [u8; 32]) -> Self {
        ChunkSigner {
            ctx,
            previous: seed,
        }
    }

    fn chunk_signature(&self, chunk_hash: &[u8; 32]) -> [u8; 32] {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{}\n{}\n{}\n{EMPTY_SHA256_HEX}\n{}",
            self.ctx.amz_date,
            self.ctx.scope,
            hex::encode(self.previous),
            hex::encode(chunk_hash)
        );
        canonical::hmac_sha256(&self.ctx.key, string_to_sign.as_bytes())
    }

    fn trailer_signature(&self, trailer_hash: &[u8; 32]) -> [u8; 32] {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-TRAILER\n{}\n{}\n{}\n{}",
            self.ctx.amz_date,
            self.ctx.scope,
            hex::encode(self.previous),
            hex::encode(trailer_hash)
        );
        canonical::hmac_sha256(&self.ctx.key, string_to_sign.as_bytes())
    }

    /// Checks the next chunk's signature and advances the chain.
    pub(crate) fn verify_chunk(
        &mut self,
        chunk_hash: &[u8; 32],
        provided: &[u8; 32],
    ) -> ApiResult<()> {
        let expected = self.chunk_signature(chunk_hash);
        if !canonical::signatures_equal(&expected, provided) {
            return Err(ApiError::SignatureDoesNotMatch);
        }
        self.previous = expected;
        Ok(())
    }

    /// Checks the trailer signature, which chains from the final (empty) chunk's signature.
    pub(crate) fn verify_trailer(
        &mut self,
        trailer_hash: &[u8; 32],
        provided: &[u8; 32],
    ) -> ApiResult<()> {
        let expected = self.trailer_signature(trailer_hash);
        if !canonical::signatures_equal(&expected, provided) {
            return Err(ApiError::SignatureDoesNotMatch);
        }
        self.previous = expected;
        Ok(())
    }

    /// Signs the next chunk as a client would (tests only).
    #[cfg(test)]
    pub(crate) fn sign_chunk(&mut self, data: &[u8]) -> [u8; 32] {
        self.previous = self.chunk_signature(&canonical::sha256(data));
        self.previous
    }

    /// Signs trailers as a client would (tests only).
    #[cfg(test)]
    pub(crate) fn sign_trailers(&mut self, trailers: &[(String, String)]) -> [u8; 32] {
        self.previous = self.trailer_signature(&canonical_trailer_hash(trailers));
        self.previous
    }
}

/// SHA-256 over the canonical trailers: `name:value\n` per trailer, names lowercase and sorted, values
/// trimmed, repeated names joined with `,` (the SDKs canonicalise trailers like request headers).
fn canonical_trailer_hash(trailers: &[(String, String)]) -> [u8; 32] {
    let mut sorted: Vec<&(String, String)> = trailers.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut text = String::new();
    let mut previous: Option<&str> = None;
    for (name, value) in sorted {
        if previous == Some(name.as_str()) {
            text.pop();
            text.push(',');
        } else {
            text.push_str(name);
            text.push(':');
        }
        text.push_str(value);
        text.push('\n');
        previous = Some(name);
    }
    canonical::sha256(text.as_bytes())
}

fn invalid(msg: impl Into<String>) -> ApiError {
    ApiError::InvalidArgument(msg.into())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading `<hex-size>[;chunk-signature=<sig>]\r\n`.
    Header,
    /// Inside a chunk's data.
    Data { remaining: u64 },
    /// Expecting the CRLF that ends a chunk's data.
    DataEnd { seen_cr: bool },
    /// After the final chunk: trailer lines, then an empty line.
    Trailer,
    /// Everything verified; no more input allowed.
    Done,
}

/// Push decoder for aws-chunked bodies.
pub(crate) struct ChunkedDecoder {
    /// `Some` for STREAMING-AWS4-HMAC-SHA256-PAYLOAD(-TRAILER).
    signer: Option<ChunkSigner>,
    /// Whether trailing headers may follow the final chunk.
    trailers_allowed: bool,
    state: State,
    /// A header or trailer line split across frames.
    line: Vec<u8>,
    chunk_signature: Option<[u8; 32]>,
    hasher: Sha256,
    /// Slices of the current signed chunk, released once its signature verifies.
    held: Vec<Bytes>,
    trailers: Vec<(String, String)>,
    trailer_signature: Option<[u8; 32]>,
    trailer_len: usize,
    /// Some encoders put an extra CRLF between the final chunk and the trailers; tolerated once.
    reopened: bool,
}

impl ChunkedDecoder {
    pub(crate) fn new(signer: Option<ChunkSigner>, trailers_allowed: bool) -> Self {
        ChunkedDecoder {
            signer,
            trailers_allowed,
            state: State::Header,
            line: Vec::new(),
            chunk_signature: None,
            hasher: Sha256::new(),
            held: Vec::new(),
            trailers: Vec::new(),
            trailer_signature: None,
            trailer_len: 0,
            reopened: false,
        }
    }

    /// Consumes one input frame, appending verified payload slices to `out`.
    pub(crate) fn feed(&mut self, mut frame: Bytes, out: &mut VecDeque<Bytes>) -> ApiResult<()> {
        while !frame.is_empty() {
            match self.state {
                State::Header | State::Trailer => {
                    let limit = if self.state == State::Header {
                        MAX_CHUNK_HEADER_LEN
                    } else {
                        MAX_TRAILER_LEN
                    };
                    let newline = frame.iter().position(|&b| b == b'\n');
                    let take = newline.unwrap_or(frame.len());
                    if self.line.len() + take > limit {
                        return Err(if self.state == State::Header {
                            invalid("aws-chunked chunk header is too long")
                        } else {
                            invalid("aws-chunked trailers are too long")
                        });
                    }
                    self.line.extend_from_slice(&frame[..take]);
                    let Some(newline) = newline else {
                        return Ok(());
                    };
                    frame.advance(newline + 1);
                    let mut line = std::mem::take(&mut self.line);
                    if line.pop() != Some(b'\r') {
                        return Err(invalid("aws-chunked line is not terminated by CRLF"));
                    }
                    if self.state == State::Header {
                        self.on_chunk_header(&line)?;
                    } else {
                        self.on_trailer_line(&line)?;
                    }
                    // Keep the allocation for the next line.
                    line.clear();
                    self.line = line;
                }
                State::Data { remaining } => {
                    let n = usize::try_from(remaining).map_or(frame.len(), |r| r.min(frame.len()));
                    let data = frame.split_to(n);
                    let remaining = remaining - n as u64;
                    if self.signer.is_some() {
                        self.hasher.update(&data);
                        self.held.push(data);
                    } else {
                        out.push_back(data);
                    }
                    if remaining == 0 {
                        self.end_of_chunk(out)?;
                        self.state = State::DataEnd { seen_cr: false };
                    } else {
                        self.state = State::Data { remaining };
                    }
                }
                State::DataEnd { seen_cr } => {
                    let b = frame[0];
                    frame.advance(1);
                    self.state = match (seen_cr, b) {
                        (false, b'\r') => State::DataEnd { seen_cr: true },
                        (true, b'\n') => State::Header,
                        _ => {
                            return Err(invalid(
                                "aws-chunked chunk data is longer than its declared size",
                            ));
                        }
                    };
                }
                State::Done => {
                    if self.trailers_allowed && !self.reopened && self.trailers.is_empty() {
                        self.reopened = true;
                        self.state = State::Trailer;
                        continue;
                    }
                    return Err(invalid(
                        "unexpected data after the end of the aws-chunked body",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The input ended: succeeds, with the trailers, only if the body was complete and verified.
    pub(crate) fn finish(&mut self) -> ApiResult<Vec<(String, String)>> {
        match self.state {
            State::Done => {}
            // The terminating empty line is missing, but nothing else is: every chunk, including the final
            // one, verified. Signed trailers without their signature line are still an incomplete body.
            State::Trailer if self.line.is_empty() => {
                if self.signer.is_some()
                    && !self.trailers.is_empty()
                    && self.trailer_signature.is_none()
                {
                    return Err(ApiError::IncompleteBody);
                }
                self.end_of_trailers()?;
            }
            _ => return Err(ApiError::IncompleteBody),
        }
        Ok(std::mem::take(&mut self.trailers))
    }

    fn on_chunk_header(&mut self, line: &[u8]) -> ApiResult<()> {
        let line = std::str::from_utf8(line)
            .map_err(|_| invalid("aws-chunked chunk header is not ASCII"))?;
        let (size, extension) = match line.split_once(';') {
            Some((size, extension)) => (size, Some(extension)),
            None => (line, None),
        };
        if size.is_empty() || size.len() > 16 || !size.bytes().all(|b| b.is_ascii_hexdigit()) {
            let shown: String = size.chars().take(32).collect();
            return Err(invalid(format!("invalid aws-chunked chunk size '{shown}'")));
        }
        let size =
            u64::from_str_radix(size, 16).map_err(|_| invalid("invalid aws-chunked chunk size"))?;
        if size > MAX_CHUNK_SIZE {
            return Err(invalid(format!(
                "aws-chunked chunk size {size} exceeds the limit of {MAX_CHUNK_SIZE} bytes"
            )));
        }
        if self.signer.is_some() {
            let signature = extension
                .and_then(|e| e.strip_prefix("chunk-signature="))
                .ok_or_else(|| invalid("aws-chunked chunk header lacks its chunk-signature"))?;
            self.chunk_signature = Some(canonical::parse_hex32(signature).ok_or_else(|| {
                invalid("aws-chunked chunk-signature must be 64 hexadecimal characters")
            })?);
        }
        if size == 0 {
            self.end_of_chunk(&mut VecDeque::new())?;
            self.state = State::Trailer;
        } else {
            self.state = State::Data { remaining: size };
        }
        Ok(())
    }

    /// Verifies the chunk just read (signed mode) and releases its data.
    fn end_of_chunk(&mut self, out: &mut VecDeque<Bytes>) -> ApiResult<()> {
        if let Some(signer) = &mut self.signer {
            let hash: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
            let provided = self
                .chunk_signature
                .take()
                .ok_or(ApiError::SignatureDoesNotMatch)?;
            signer.verify_chunk(&hash, &provided)?;
            out.extend(self.held.drain(..));
        }
        Ok(())
    }

    fn on_trailer_line(&mut self, line: &[u8]) -> ApiResult<()> {
        if line.is_empty() {
            return self.end_of_trailers();
        }
        self.trailer_len += line.len() + 2;
        if self.trailer_len > MAX_TRAILER_LEN {
            return Err(invalid("aws-chunked trailers are too long"));
        }
        if !self.trailers_allowed {
            return Err(invalid(
                "trailing headers need x-amz-content-sha256 STREAMING-UNSIGNED-PAYLOAD-TRAILER or \
                 STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER",
            ));
        }
        let line =
            std::str::from_utf8(line).map_err(|_| invalid("aws-chunked trailer is not UTF-8"))?;
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| invalid("aws-chunked trailer line is not 'name:value'"))?;
        let name = name.trim().to_ascii_lowercase();
        if name.is_empty() {
            return Err(invalid("aws-chunked trailer has an empty name"));
        }
        let value = value.trim();
        if name == TRAILER_SIGNATURE {
            // Meaningless without chunk signatures, so ignored for STREAMING-UNSIGNED-PAYLOAD-TRAILER.
            if self.signer.is_some() {
                let signature = canonical::parse_hex32(value).ok_or_else(|| {
                    invalid("x-amz-trailer-signature must be 64 hexadecimal characters")
                })?;
                if self.trailer_signature.replace(signature).is_some() {
                    return Err(invalid("x-amz-trailer-signature appears twice"));
                }
            }
        } else {
            self.trailers.push((name, value.to_owned()));
        }
        Ok(())
    }

    fn end_of_trailers(&mut self) -> ApiResult<()> {
        if let Some(signer) = &mut self.signer {
            let provided = self.trailer_signature.take();
            match provided {
                Some(provided) => {
                    signer.verify_trailer(&canonical_trailer_hash(&self.trailers), &provided)?
                }
                // Trailers that nobody signed must not be trusted as checksums.
                None if !self.trailers.is_empty() => return Err(ApiError::SignatureDoesNotMatch),
                None => {}
            }
        }
        self.state = State::Done;
        Ok(())
    }
}

enum Mode {
    Passthrough,
    Sha256 { hasher: Sha256, expected: [u8; 32] },
    Chunked(Box<ChunkedDecoder>),
}

/// The stream returned by [`super::verified_body`].
pub(crate) struct VerifiedBody<S> {
    inner: S,
    mode: Mode,
    trailers: Trailers,
    /// Verified payload not yet yielded.
    out: VecDeque<Bytes>,
    /// The input is finished with; `error` (if any) is yielded once `out` drains.
    done: bool,
    error: Option<ApiError>,
}

impl<S> VerifiedBody<S> {
    pub(crate) fn new(inner: S, payload: Payload, trailers: Trailers) -> Self {
        let mode = match payload {
            Payload::Unsigned => Mode::Passthrough,
            Payload::Sha256(expected) => Mode::Sha256 {
                hasher: Sha256::new(),
                expected,
            },
            Payload::StreamingSigned { ctx, trailer } => {
                Mode::Chunked(Box::new(ChunkedDecoder::new(Some(ctx), trailer)))
            }
            Payload::StreamingUnsignedTrailer => {
                Mode::Chunked(Box::new(ChunkedDecoder::new(None, true)))
            }
        };
        VerifiedBody {
            inner,
            mode,
            trailers,
            out: VecDeque::new(),
            done: false,
            error: None,
        }
    }

    /// Ends the stream with `err`, after whatever already verified.
    fn fail(&mut self, err: ApiError) {
        self.done = true;
        self.error = Some(err);
    }

    /// The raw body ended: the last chance to report a verification failure.
    fn end(&mut self) -> Option<ApiError> {
        self.done = true;
        match &mut self.mode {
            Mode::Passthrough => None,
            Mode::Sha256 { hasher, expected } => {
                let actual: [u8; 32] = std::mem::take(hasher).finalize().into();
                (actual != *expected).then_some(ApiError::XAmzContentSha256Mismatch)
            }
            Mode::Chunked(decoder) => match decoder.finish() {
                Ok(trailers) => {
                    self.trailers.set(trailers);
                    None
                }
                Err(e) => Some(e),
            },
        }
    }
}

impl<S> Stream for VerifiedBody<S>
where
    S: Stream<Item = ApiResult<Bytes>> + Unpin,
{
    type Item = ApiResult<Bytes>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            if let Some(bytes) = this.out.pop_front() {
                return Poll::Ready(Some(Ok(bytes)));
            }
            if this.done {
                return Poll::Ready(this.error.take().map(Err));
            }
            match ready!(this.inner.poll_next_unpin(cx)) {
                Some(Ok(frame)) => match &mut this.mode {
                    Mode::Passthrough => return Poll::Ready(Some(Ok(frame))),
                    Mode::Sha256 { hasher, .. } => {
                        hasher.update(&frame);
                        return Poll::Ready(Some(Ok(frame)));
                    }
                    Mode::Chunked(decoder) => {
                        if let Err(e) = decoder.feed(frame, &mut this.out) {
                            this.fail(e);
                        }
                    }
                },
                Some(Err(e)) => this.fail(e),
                None => {
                    if let Some(e) = this.end() {
                        this.fail(e);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::collect_now;
    use super::super::testutil::{SECRET, at};
    use super::*;
    use proptest::prelude::*;

    fn signer() -> ChunkSigner {
        let ctx = SigningContext::new(SECRET, at("20130524T000000Z"), "us-east-1");
        ChunkSigner::new(ctx, [7; 32])
    }

    /// How a test body is framed.
    #[derive(Debug, Clone, Copy)]
    enum Enc {
        Signed,
        SignedTrailer,
        UnsignedTrailer,
    }

    impl Enc {
        fn payload(self, signer: &ChunkSigner) -> Payload {
            match self {
                Enc::Signed => Payload::StreamingSigned {
                    ctx: signer.clone(),
                    trailer: false,
                },
                Enc::SignedTrailer => Payload::StreamingSigned {
                    ctx: signer.clone(),
                    trailer: true,
                },
                Enc::UnsignedTrailer => Payload::StreamingUnsignedTrailer,
            }
        }
    }

    /// aws-chunked encodes `data` in chunks of `chunk` bytes the way the AWS SDKs do.
    fn encode(enc: Enc, data: &[u8], chunk: usize, trailers: &[(String, String)]) -> Vec<u8> {
        let mut signer = signer();
        let mut out = Vec::new();
        let signed = !matches!(enc, Enc::UnsignedTrailer);
        for piece in data.chunks(chunk).chain(std::iter::once(&[][..])) {
            if signed {
                let sig = hex::encode(signer.sign_chunk(piece));
                out.extend_from_slice(
                    format!("{:X};chunk-signature={sig}\r\n", piece.len()).as_bytes(),
                );
            } else {
                out.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            }
            if !piece.is_empty() {
                out.extend_from_slice(piece);
                out.extend_from_slice(b"\r\n");
            }
        }
        for (name, value) in trailers {
            out.extend_from_slice(format!("{name}:{value}\r\n").as_bytes());
        }
        if matches!(enc, Enc::SignedTrailer) && !trailers.is_empty() {
            let sig = hex::encode(signer.sign_trailers(trailers));
            out.extend_from_slice(format!("x-amz-trailer-signature:{sig}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    fn frames(
        body: &[u8],
        cuts: &[usize],
    ) -> futures_util::stream::Iter<std::vec::IntoIter<ApiResult<Bytes>>> {
        let body = Bytes::copy_from_slice(body);
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (body.len() + 1)).collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut start = 0;
        for cut in cuts.into_iter().chain(std::iter::once(body.len())) {
            pieces.push(Ok(body.slice(start..cut)));
            start = cut;
        }
        futures_util::stream::iter(pieces)
    }

    fn decode(enc: Enc, body: &[u8], cuts: &[usize]) -> (Vec<u8>, Option<ApiError>, Trailers) {
        let trailers = Trailers::default();
        let stream = super::super::verified_body(
            frames(body, cuts),
            enc.payload(&signer()),
            trailers.clone(),
        );
        let (bytes, err) = collect_now(stream);
        (bytes, err, trailers)
    }

    fn crc_trailer() -> Vec<(String, String)> {
        vec![("x-amz-checksum-crc32".to_owned(), "sOO8/Q==".to_owned())]
    }

    #[test]
    fn signed_round_trip() {
        let data: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let body = encode(Enc::Signed, &data, 4096, &[]);
        let (bytes, err, _) = decode(Enc::Signed, &body, &[]);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(bytes, data);
    }

    #[test]
    fn signed_trailer_round_trip() {
        let body = encode(Enc::SignedTrailer, b"hello world", 5, &crc_trailer());
        let (bytes, err, trailers) = decode(Enc::SignedTrailer, &body, &[3, 40, 100, 200]);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(bytes, b"hello world");
        assert_eq!(
            trailers.get("x-amz-checksum-crc32").as_deref(),
            Some("sOO8/Q==")
        );
    }

    #[test]
    fn unsigned_trailer_round_trip() {
        let body = encode(Enc::UnsignedTrailer, b"hello world", 64, &crc_trailer());
        assert_eq!(
            body,
            b"b\r\nhello world\r\n0\r\nx-amz-checksum-crc32:sOO8/Q==\r\n\r\n"
        );
        let (bytes, err, trailers) = decode(Enc::UnsignedTrailer, &body, &[1]);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(bytes, b"hello world");
        assert_eq!(
            trailers.get("X-Amz-Checksum-Crc32").as_deref(),
            Some("sOO8/Q==")
        );
    }

    #[test]
    fn empty_bodies() {
        for enc in [Enc::Signed, Enc::SignedTrailer, Enc::UnsignedTrailer] {
            let body = encode(enc, b"", 10, &[]);
            let (bytes, err, _) = decode(enc, &body, &[]);
            assert!(err.is_none() && bytes.is_empty(), "{err:?}");
        }
    }

    #[test]
    fn every_single_split_point() {
        for enc in [Enc::Signed, Enc::SignedTrailer, Enc::UnsignedTrailer] {
            let trailers = if matches!(enc, Enc::Signed) {
                vec![]
            } else {
                crc_trailer()
            };
            let body = encode(enc, b"The quick brown fox", 7, &trailers);
            for cut in 0..=body.len() {
                let (bytes, err, t) = decode(enc, &body, &[cut]);
                assert!(err.is_none(), "cut at {cut}: {err:?}");
                assert_eq!(bytes, b"The quick brown fox");
                assert_eq!(
                    t.get("x-amz-checksum-crc32").is_some(),
                    !trailers.is_empty()
                );
            }
        }
    }

    #[test]
    fn tampered_chunk_data_fails() {
        let data = vec![b'x'; 3000];
        let mut body = encode(Enc::Signed, &data, 1000, &[]);
        // Inside the second chunk's data.
        let pos = body.windows(4).rposition(|w| w == b"xxxx").unwrap() - 1200;
        body[pos] = b'y';
        let (bytes, err, _) = decode(Enc::Signed, &body, &[]);
        assert!(
            matches!(err, Some(ApiError::SignatureDoesNotMatch)),
            "{err:?}"
        );
        // The first chunk verified and was released; the tampered one was not.
        assert_eq!(bytes.len(), 1000);
    }

    #[test]
    fn tampered_or_missing_trailer_signature_fails() {
        let body = encode(Enc::SignedTrailer, b"abc", 10, &crc_trailer());
        let text = String::from_utf8(body).unwrap();
        let tampered = text.replace("sOO8/Q==", "AAAAAA==");
        let (_, err, t) = decode(Enc::SignedTrailer, tampered.as_bytes(), &[]);
        assert!(
            matches!(err, Some(ApiError::SignatureDoesNotMatch)),
            "{err:?}"
        );
        assert_eq!(t.get("x-amz-checksum-crc32"), None);

        let start = text.find("x-amz-trailer-signature").unwrap();
        let unsigned = format!("{}\r\n", &text[..start]);
        let (_, err, _) = decode(Enc::SignedTrailer, unsigned.as_bytes(), &[]);
        assert!(
            matches!(err, Some(ApiError::SignatureDoesNotMatch)),
            "{err:?}"
        );
    }

    #[test]
    fn reordered_chunks_fail() {
        let body = encode(Enc::Signed, b"aaaabbbb", 4, &[]);
        let text = String::from_utf8(body).unwrap();
        let lines: Vec<&str> = text.split("\r\n").collect();
        // Swap the two data chunks (header+data pairs).
        let swapped = [lines[2], lines[3], lines[0], lines[1], lines[4], "", ""].join("\r\n");
        let (bytes, err, _) = decode(Enc::Signed, swapped.as_bytes(), &[]);
        assert!(
            matches!(err, Some(ApiError::SignatureDoesNotMatch)),
            "{err:?}"
        );
        assert!(bytes.is_empty());
    }

    #[test]
    fn truncated_body_is_incomplete() {
        let data = vec![b'z'; 5000];
        for enc in [Enc::Signed, Enc::SignedTrailer, Enc::UnsignedTrailer] {
            let trailers = if matches!(enc, Enc::Signed) {
                vec![]
            } else {
                crc_trailer()
            };
            let body = encode(enc, &data, 2048, &trailers);
            // Cut in the data, in a chunk header, and in the middle of a trailer line.
            for len in [0, 10, 3000, body.len() - 30] {
                let (_, err, _) = decode(enc, &body[..len], &[]);
                assert!(
                    matches!(err, Some(ApiError::IncompleteBody)),
                    "len {len}: {err:?}"
                );
            }
        }
    }

    #[test]
    fn missing_final_crlf_is_tolerated() {
        for enc in [Enc::Signed, Enc::SignedTrailer, Enc::UnsignedTrailer] {
            let trailers = if matches!(enc, Enc::Signed) {
                vec![]
            } else {
                crc_trailer()
            };
            let body = encode(enc, b"data", 2, &trailers);
            let (bytes, err, _) = decode(enc, &body[..body.len() - 2], &[]);
            assert!(err.is_none(), "{err:?}");
            assert_eq!(bytes, b"data");
        }
    }

    #[test]
    fn extra_crlf_before_trailers_is_tolerated() {
        let body = b"4\r\ndata\r\n0\r\n\r\nx-amz-checksum-crc32:sOO8/Q==\r\n\r\n";
        let (bytes, err, t) = decode(Enc::UnsignedTrailer, body, &[]);
        assert!(err.is_none(), "{err:?}");
        assert_eq!(bytes, b"data");
        assert_eq!(t.get("x-amz-checksum-crc32").as_deref(), Some("sOO8/Q=="));
    }

    #[test]
    fn malformed_framing() {
        let cases: &[(&[u8], &str)] = &[
            (b"zz\r\n", "bad size"),
            (b"\r\n", "empty size"),
            (b"4\r\ndataX\r\n0\r\n\r\n", "data longer than size"),
            (b"4\ndata\r\n0\r\n\r\n", "bare LF"),
            (b"1000001\r\n", "chunk above 16 MiB"),
            (b"ffffffffffffffffff\r\n", "size overflow"),
            (b"0\r\nno-colon\r\n\r\n", "bad trailer"),
            (b"0\r\n:v\r\n\r\n", "empty trailer name"),
            (b"0\r\n\r\nx:1\r\n\r\nmore", "data after the end"),
        ];
        for (body, what) in cases {
            let (_, err, _) = decode(Enc::UnsignedTrailer, body, &[]);
            assert!(
                matches!(err, Some(ApiError::InvalidArgument(_))),
                "{what}: {err:?}"
            );
        }
        let long_header = vec![b'0'; MAX_CHUNK_HEADER_LEN + 1];
        let (_, err, _) = decode(Enc::UnsignedTrailer, &long_header, &[]);
        assert!(matches!(err, Some(ApiError::InvalidArgument(_))), "{err:?}");

        let signed_cases: &[(&[u8], &str)] = &[
            (b"4\r\ndata\r\n", "no chunk-signature"),
            (
                b"4;chunk-signature=abc\r\ndata\r\n",
                "short chunk-signature",
            ),
            (b"4;foo=bar\r\ndata\r\n", "other extension"),
        ];
        for (body, what) in signed_cases {
            let (_, err, _) = decode(Enc::Signed, body, &[]);
            assert!(
                matches!(err, Some(ApiError::InvalidArgument(_))),
                "{what}: {err:?}"
            );
        }
        // Trailers are not allowed without a -TRAILER content hash.
        let body = encode(Enc::Signed, b"ab", 2, &[]);
        let mut with_trailer = body[..body.len() - 2].to_vec();
        with_trailer.extend_from_slice(b"x-amz-checksum-crc32:AAAAAA==\r\n\r\n");
        let (_, err, _) = decode(Enc::Signed, &with_trailer, &[]);
        assert!(matches!(err, Some(ApiError::InvalidArgument(_))), "{err:?}");
    }

    #[test]
    fn upstream_errors_pass_through() {
        let input = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"4\r\nda")),
            Err(ApiError::RequestTimeout),
        ]);
        let (_, err) = collect_now(super::super::verified_body(
            input,
            Payload::StreamingUnsignedTrailer,
            Trailers::default(),
        ));
        assert!(matches!(err, Some(ApiError::RequestTimeout)));
    }

    #[test]
    fn unsigned_and_sha256_modes() {
        let input = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Ok(Bytes::from_static(b"c")),
        ]);
        let (bytes, err) = collect_now(super::super::verified_body(
            input,
            Payload::Unsigned,
            Trailers::default(),
        ));
        assert_eq!((bytes.as_slice(), err.is_none()), (&b"abc"[..], true));

        let payload = Payload::Sha256(canonical::sha256(b"abc"));
        let input = futures_util::stream::iter(vec![
            Ok(Bytes::from_static(b"ab")),
            Ok(Bytes::from_static(b"c")),
        ]);
        let (bytes, err) = collect_now(super::super::verified_body(
            input,
            payload.clone(),
            Trailers::default(),
        ));
        assert_eq!((bytes.as_slice(), err.is_none()), (&b"abc"[..], true));

        let input = futures_util::stream::iter(vec![Ok(Bytes::from_static(b"ab"))]);
        let (_, err) = collect_now(super::super::verified_body(
            input,
            payload,
            Trailers::default(),
        ));
        assert!(matches!(err, Some(ApiError::XAmzContentSha256Mismatch)));
    }

    #[test]
    fn payload_is_not_copied() {
        let data = vec![b'q'; 1000];
        let body = Bytes::from(encode(Enc::UnsignedTrailer, &data, 1000, &[]));
        let range = body.as_ptr_range();
        let mut decoder = ChunkedDecoder::new(None, true);
        let mut out = VecDeque::new();
        decoder.feed(body.clone(), &mut out).unwrap();
        assert!(decoder.finish().is_ok());
        assert_eq!(out.len(), 1);
        assert!(
            range.contains(&out[0].as_ptr()),
            "payload must be a slice of the input frame"
        );
    }

    #[test]
    fn chunk_signer_debug_hides_the_key() {
        let text = format!("{:?}", signer());
        assert!(text.contains("20130524/us-east-1/s3/aws4_request"));
        assert!(!text.contains("key"));
    }

    #[test]
    fn trailer_canonical_form() {
        let trailers = vec![
            ("b".to_owned(), "2".to_owned()),
            ("a".to_owned(), "1".to_owned()),
            ("b".to_owned(), "3".to_owned()),
        ];
        assert_eq!(
            canonical_trailer_hash(&trailers),
            canonical::sha256(b"a:1\nb:2,3\n")
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

        /// Any aws-chunked encoding of any data, split at any frame boundaries, decodes to the same bytes.
        #[test]
        fn random_splits_decode_to_the_same_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..20_000),
            chunk in 1usize..5_000,
            cuts in proptest::collection::vec(any::<usize>(), 0..40),
            enc in prop_oneof![Just(Enc::Signed), Just(Enc::SignedTrailer), Just(Enc::UnsignedTrailer)],
            with_trailer in any::<bool>(),
        ) {
            let trailers = if with_trailer && !matches!(enc, Enc::Signed) { crc_trailer() } else { vec![] };
            let body = encode(enc, &data, chunk, &trailers);
            let (bytes, err, t) = decode(enc, &body, &cuts);
            prop_assert!(err.is_none(), "{:?}", err);
            prop_assert_eq!(bytes, data);
            prop_assert_eq!(t.get("x-amz-checksum-crc32").is_some(), !trailers.is_empty());
        }
    }
}
