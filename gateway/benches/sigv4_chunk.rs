//! Criterion benches for verifying aws-chunked SigV4 uploads (issue #7): the per-chunk signature chain plus
//! SHA-256 of every chunk, through the gateway's public entry points and nothing else.
//!
//! The seed request is AWS's published "PUT Object in multiple chunks" example, authenticated with
//! [`authenticate`] as the server does; its `Payload::StreamingSigned` then drives [`verified_body`] over a body
//! this file signs the way a client does (its own HMAC chain, checked against AWS's first chunk signature). So
//! no gateway item had to be made public, and what is timed is exactly the server's code. The example's signed
//! length headers say 66560 bytes; the body verifier does not read them (the handler does), so longer bodies
//! are fine here.
//!
//! The body is cut into 32 KiB frames regardless of chunk boundaries, so chunk headers straddle frames as they
//! do off a socket. Throughput is payload bytes (what the client uploads, framing excluded).
//!
//! Times are CPU time of the benchmarking thread (the verifier runs on it alone), not wall time, so a shared
//! machine does not inflate them; the measurement lives with the storage benches and is included from there.
//!
//! Run: `cargo bench -p strata-gateway --bench sigv4_chunk -- --warm-up-time 1 --measurement-time 3`; results
//! are in bench/KERNELS.md.

#[path = "../../storage/benches/support/thread_cpu.rs"]
mod thread_cpu;

use std::hint::black_box;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use strata_gateway::auth::{
    AuthOutcome, CredentialStore, Identity, Payload, Trailers, authenticate, verified_body,
};
use strata_gateway::error::ApiError;
use thread_cpu::ThreadCpuTime;

const ACCESS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const AMZ_DATE: &str = "20130524T000000Z";
const SCOPE: &str = "20130524/us-east-1/s3/aws4_request";
/// AWS's seed signature for the example request below.
const SEED: &str = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9";
/// AWS's signature of the example's first chunk (65536 bytes of `a`), chained from [`SEED`].
const FIRST_CHUNK_SIGNATURE: &str =
    "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648";
const EMPTY_SHA256_HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// Payload per verified body: large enough that per-request costs vanish, a few chunks even at 1 MiB.
const BODY_LEN: usize = 4 * 1024 * 1024;
const FRAME_LEN: usize = 32 * 1024;
const CHUNK_SIZES: [(&str, usize); 2] = [("64KiB", 64 * 1024), ("1MiB", 1024 * 1024)];

struct ExampleUser;

impl CredentialStore for ExampleUser {
    fn lookup(&self, access_key: &str) -> Option<(Identity, String)> {
        (access_key == ACCESS_KEY).then(|| {
            let identity = Identity {
                access_key: ACCESS_KEY.into(),
                display_name: "example".into(),
                is_root: true,
            };
            (identity, SECRET.into())
        })
    }
}

fn example_time() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2013-05-24T00:00:00Z")
        .expect("valid time")
        .with_timezone(&Utc)
}

/// AWS's seed request, exactly as published (path-style).
fn seed_request() -> http::request::Parts {
    let signed = "content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;\
                  x-amz-decoded-content-length;x-amz-storage-class";
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{SCOPE}, SignedHeaders={signed}, Signature={SEED}"
    );
    http::Request::builder()
        .method("PUT")
        .uri("/examplebucket/chunkObject.txt")
        .header("host", "s3.amazonaws.com")
        .header("x-amz-date", AMZ_DATE)
        .header("x-amz-storage-class", "REDUCED_REDUNDANCY")
        .header("x-amz-content-sha256", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
        .header("content-encoding", "aws-chunked")
        .header("x-amz-decoded-content-length", "66560")
        .header("content-length", "66824")
        .header("authorization", authorization)
        .body(())
        .expect("valid request")
        .into_parts()
        .0
}

fn authenticate_seed() -> AuthOutcome {
    authenticate(
        &seed_request(),
        &ExampleUser,
        "us-east-1",
        None,
        example_time(),
    )
    .expect("seed verifies")
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A client's side of the chunk signature chain, written independently of the gateway's.
struct ClientSigner {
    key: [u8; 32],
    previous: String,
}

impl ClientSigner {
    fn new() -> Self {
        let mut key = hmac_sha256(format!("AWS4{SECRET}").as_bytes(), b"20130524");
        for part in ["us-east-1", "s3", "aws4_request"] {
            key = hmac_sha256(&key, part.as_bytes());
        }
        ClientSigner {
            key,
            previous: SEED.into(),
        }
    }

    fn sign(&mut self, chunk: &[u8]) -> String {
        let string_to_sign = format!(
            "AWS4-HMAC-SHA256-PAYLOAD\n{AMZ_DATE}\n{SCOPE}\n{}\n{EMPTY_SHA256_HEX}\n{}",
            self.previous,
            hex::encode(Sha256::digest(chunk))
        );
        self.previous = hex::encode(hmac_sha256(&self.key, string_to_sign.as_bytes()));
        self.previous.clone()
    }
}

/// `payload` aws-chunked in `chunk_len` chunks with chained signatures, then cut into socket-sized frames.
fn signed_body(payload: &[u8], chunk_len: usize) -> Vec<Bytes> {
    let mut signer = ClientSigner::new();
    let mut body = Vec::with_capacity(payload.len() + payload.len() / chunk_len * 100 + 200);
    for chunk in payload.chunks(chunk_len).chain([&[][..]]) {
        let header = format!(
            "{:x};chunk-signature={}\r\n",
            chunk.len(),
            signer.sign(chunk)
        );
        body.extend_from_slice(header.as_bytes());
        body.extend_from_slice(chunk);
        body.extend_from_slice(b"\r\n");
    }
    let body = Bytes::from(body);
    (0..body.len())
        .step_by(FRAME_LEN)
        .map(|at| body.slice(at..(at + FRAME_LEN).min(body.len())))
        .collect()
}

/// Runs the gateway's verified body over `frames` to the end: verified payload bytes, or the error.
fn verify(frames: &[Bytes], payload: &Payload) -> Result<usize, ApiError> {
    let raw = futures_util::stream::iter(frames.to_vec()).map(Ok::<Bytes, ApiError>);
    let mut body = verified_body(raw, payload.clone(), Trailers::default());
    let mut cx = Context::from_waker(Waker::noop());
    let mut len = 0;
    loop {
        match body.poll_next_unpin(&mut cx) {
            Poll::Ready(Some(Ok(bytes))) => len += black_box(bytes).len(),
            Poll::Ready(Some(Err(e))) => return Err(e),
            Poll::Ready(None) => return Ok(len),
            Poll::Pending => unreachable!("a stream over ready frames never pends"),
        }
    }
}

fn chunked_verification(c: &mut Criterion<ThreadCpuTime>) {
    let mut first = ClientSigner::new();
    assert_eq!(
        first.sign(&[b'a'; 65536]),
        FIRST_CHUNK_SIGNATURE,
        "the bench's client signer agrees with AWS's example"
    );
    let outcome = authenticate_seed();
    assert!(matches!(
        outcome.payload,
        Payload::StreamingSigned { trailer: false, .. }
    ));
    let payload: Vec<u8> = (0..BODY_LEN).map(|i| (i * 31 % 251) as u8).collect();

    let mut group = c.benchmark_group("sigv4_chunked_verify");
    group.throughput(Throughput::Bytes(BODY_LEN as u64));
    for (name, chunk_len) in CHUNK_SIZES {
        let frames = signed_body(&payload, chunk_len);
        assert_eq!(verify(&frames, &outcome.payload).ok(), Some(BODY_LEN));
        let mut tampered = frames.clone();
        let middle = tampered.len() / 2;
        let mut flipped = tampered[middle].to_vec();
        flipped[FRAME_LEN / 2] ^= 1;
        tampered[middle] = Bytes::from(flipped);
        assert!(
            verify(&tampered, &outcome.payload).is_err(),
            "a flipped bit fails"
        );
        group.bench_with_input(BenchmarkId::new("chunk", name), &frames, |b, frames| {
            b.iter(|| verify(frames, &outcome.payload))
        });
    }
    group.finish();
}

/// SHA-256 alone over one chunk: the floor under chunk verification, so the chain's own cost can be read off.
fn sha256_floor(c: &mut Criterion<ThreadCpuTime>) {
    let mut group = c.benchmark_group("sha256");
    let data = vec![0x5a_u8; 1024 * 1024];
    for (name, len) in CHUNK_SIZES {
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_with_input(BenchmarkId::new("chunk", name), &data[..len], |b, d| {
            b.iter(|| Sha256::digest(d))
        });
    }
    group.finish();
}

/// The fixed cost per streaming request: verifying the seed signature of the request head.
fn seed_signature(c: &mut Criterion<ThreadCpuTime>) {
    let parts = seed_request();
    c.bench_function("sigv4_seed_authenticate", |b| {
        b.iter(|| authenticate(&parts, &ExampleUser, "us-east-1", None, example_time()))
    });
}

criterion_group! {
    name = sigv4;
    config = Criterion::default().with_measurement(ThreadCpuTime::default());
    targets = chunked_verification, sha256_floor, seed_signature
}
criterion_main!(sigv4);
