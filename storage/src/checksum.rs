//! Digests computed while a body streams through: MD5 for the ETag and at most one S3 flexible checksum.

use sha1::Digest;

use crate::md5::Md5;
use serde::{Deserialize, Serialize};

/// The S3 flexible checksum algorithms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChecksumAlgorithm {
    /// CRC-32 (IEEE).
    Crc32,
    /// CRC-32C (Castagnoli).
    Crc32c,
    /// CRC-64/NVME.
    Crc64Nvme,
    /// SHA-1.
    Sha1,
    /// SHA-256.
    Sha256,
}

impl ChecksumAlgorithm {
    /// Every algorithm, in the order S3 documents them.
    pub const ALL: [ChecksumAlgorithm; 5] = [
        Self::Crc32,
        Self::Crc32c,
        Self::Crc64Nvme,
        Self::Sha1,
        Self::Sha256,
    ];

    /// The name S3 uses in x-amz-checksum-algorithm / x-amz-sdk-checksum-algorithm.
    pub fn name(self) -> &'static str {
        match self {
            Self::Crc32 => "CRC32",
            Self::Crc32c => "CRC32C",
            Self::Crc64Nvme => "CRC64NVME",
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
        }
    }

    /// The header carrying the value, e.g. `x-amz-checksum-crc32`.
    pub fn header(self) -> &'static str {
        match self {
            Self::Crc32 => "x-amz-checksum-crc32",
            Self::Crc32c => "x-amz-checksum-crc32c",
            Self::Crc64Nvme => "x-amz-checksum-crc64nvme",
            Self::Sha1 => "x-amz-checksum-sha1",
            Self::Sha256 => "x-amz-checksum-sha256",
        }
    }

    /// Parses an algorithm name, case-insensitively.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.name().eq_ignore_ascii_case(name))
    }

    /// Parses a header name such as `x-amz-checksum-sha256`.
    pub fn from_header(name: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|a| a.header().eq_ignore_ascii_case(name))
    }

    /// Length in bytes of a raw digest.
    pub fn digest_len(self) -> usize {
        match self {
            Self::Crc32 | Self::Crc32c => 4,
            Self::Crc64Nvme => 8,
            Self::Sha1 => 20,
            Self::Sha256 => 32,
        }
    }
}

static CRC64_NVME: crc::Crc<u64> = crc::Crc::<u64>::new(&crc::CRC_64_NVME);

enum ChecksumState {
    Crc32(crc32fast::Hasher),
    Crc32c(u32),
    Crc64(crc::Digest<'static, u64>),
    Sha1(sha1::Sha1),
    Sha256(sha2::Sha256),
}

/// Incremental MD5 plus an optional flexible checksum.
pub struct BodyHasher {
    md5: Md5,
    rest: ChecksumHasher,
}

/// The length and optional flexible checksum of a body, for callers that compute its MD5 elsewhere (the write
/// path hands MD5 to [`crate::md5_lanes`]).
pub(crate) struct ChecksumHasher {
    checksum: Option<(ChecksumAlgorithm, ChecksumState)>,
    len: u64,
}

/// What a finished [`BodyHasher`] computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digests {
    /// MD5 of the body.
    pub md5: [u8; 16],
    /// The flexible checksum, raw bytes.
    pub checksum: Option<(ChecksumAlgorithm, Vec<u8>)>,
    /// Bytes hashed.
    pub len: u64,
}

impl BodyHasher {
    /// A hasher computing MD5 and, if given, one flexible checksum.
    pub fn new(algorithm: Option<ChecksumAlgorithm>) -> Self {
        Self {
            md5: Md5::new(),
            rest: ChecksumHasher::new(algorithm),
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
        self.rest.update(data);
    }

    /// Bytes fed so far.
    pub fn len(&self) -> u64 {
        self.rest.len
    }

    /// True before any byte was fed.
    pub fn is_empty(&self) -> bool {
        self.rest.len == 0
    }

    /// Finishes every digest.
    pub fn finish(self) -> Digests {
        self.rest.finish(self.md5.finalize())
    }
}

impl ChecksumHasher {
    /// Counts bytes and computes `algorithm`'s checksum, if given.
    pub(crate) fn new(algorithm: Option<ChecksumAlgorithm>) -> Self {
        let checksum = algorithm.map(|a| {
            let state = match a {
                ChecksumAlgorithm::Crc32 => ChecksumState::Crc32(crc32fast::Hasher::new()),
                ChecksumAlgorithm::Crc32c => ChecksumState::Crc32c(0),
                ChecksumAlgorithm::Crc64Nvme => ChecksumState::Crc64(CRC64_NVME.digest()),
                ChecksumAlgorithm::Sha1 => ChecksumState::Sha1(sha1::Sha1::new()),
                ChecksumAlgorithm::Sha256 => ChecksumState::Sha256(sha2::Sha256::new()),
            };
            (a, state)
        });
        Self { checksum, len: 0 }
    }

    /// Feeds bytes.
    pub(crate) fn update(&mut self, data: &[u8]) {
        self.len += data.len() as u64;
        if let Some((_, state)) = &mut self.checksum {
            match state {
                ChecksumState::Crc32(h) => h.update(data),
                ChecksumState::Crc32c(c) => *c = crc32c::crc32c_append(*c, data),
                ChecksumState::Crc64(d) => d.update(data),
                ChecksumState::Sha1(h) => h.update(data),
                ChecksumState::Sha256(h) => h.update(data),
            }
        }
    }

    /// Bytes fed so far.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Finishes the checksum; `md5` is the body's MD5, computed by the caller.
    pub(crate) fn finish(self, md5: [u8; 16]) -> Digests {
        let checksum = self.checksum.map(|(a, state)| {
            let raw = match state {
                ChecksumState::Crc32(h) => h.finalize().to_be_bytes().to_vec(),
                ChecksumState::Crc32c(c) => c.to_be_bytes().to_vec(),
                ChecksumState::Crc64(d) => d.finalize().to_be_bytes().to_vec(),
                ChecksumState::Sha1(h) => h.finalize().to_vec(),
                ChecksumState::Sha256(h) => h.finalize().to_vec(),
            };
            (a, raw)
        });
        Digests {
            md5,
            checksum,
            len: self.len,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(raw: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(raw)
    }

    #[test]
    fn known_values_for_hello_world() {
        // Reference values for "Hello world" as computed by the AWS SDKs' checksum tests.
        let cases = [
            (ChecksumAlgorithm::Crc32, "i9aeUg=="),
            (ChecksumAlgorithm::Crc32c, "crUfeA=="),
            (ChecksumAlgorithm::Sha1, "e1AsOh9IyGCa4hLN+2Od7jlnP14="),
            (
                ChecksumAlgorithm::Sha256,
                "ZOyIygCyaOW6GjVnihtTFtIS9PNmskdyMlNKiuyjfzw=",
            ),
        ];
        for (algo, expected) in cases {
            let mut h = BodyHasher::new(Some(algo));
            h.update(b"Hello ");
            h.update(b"world");
            let d = h.finish();
            assert_eq!(b64(&d.checksum.unwrap().1), expected, "{algo:?}");
            assert_eq!(hex::encode(d.md5), "3e25960a79dbc69b674cd4ec67a72c62");
        }
    }

    #[test]
    fn crc64nvme_check_value() {
        // The catalogue check value: CRC-64/NVME of "123456789".
        let mut h = BodyHasher::new(Some(ChecksumAlgorithm::Crc64Nvme));
        h.update(b"123456789");
        let raw = h.finish().checksum.unwrap().1;
        assert_eq!(
            u64::from_be_bytes(raw.try_into().unwrap()),
            0xae8b_1486_0a79_9888
        );
    }
}

/// Reflected polynomial and width of the CRC algorithms, for combining.
fn crc_params(algo: ChecksumAlgorithm) -> Option<(u64, u32)> {
    match algo {
        ChecksumAlgorithm::Crc32 => Some((0xEDB8_8320, 32)),
        ChecksumAlgorithm::Crc32c => Some((0x82F6_3B78, 32)),
        ChecksumAlgorithm::Crc64Nvme => Some((0x9A6C_9329_AC4B_C9B5, 64)),
        ChecksumAlgorithm::Sha1 | ChecksumAlgorithm::Sha256 => None,
    }
}

fn gf2_times(mat: &[u64], mut vec: u64) -> u64 {
    let mut sum = 0;
    let mut i = 0;
    while vec != 0 {
        if vec & 1 == 1 {
            sum ^= mat[i];
        }
        vec >>= 1;
        i += 1;
    }
    sum
}

fn gf2_square(square: &mut [u64], mat: &[u64]) {
    for n in 0..mat.len() {
        square[n] = gf2_times(mat, mat[n]);
    }
}

/// CRC of `A || B` from `crc(A)`, `crc(B)` and `len(B)` (zlib's crc32_combine, for any reflected CRC whose
/// initial value equals its final XOR, as CRC-32, CRC-32C and CRC-64/NVME do).
fn crc_combine(poly: u64, width: u32, mut crc1: u64, crc2: u64, mut len2: u64) -> u64 {
    if len2 == 0 {
        return crc1;
    }
    let w = width as usize;
    let mut odd = vec![0u64; w];
    let mut even = vec![0u64; w];
    odd[0] = poly;
    let mut row = 1u64;
    for cell in odd.iter_mut().skip(1) {
        *cell = row;
        row <<= 1;
    }
    gf2_square(&mut even, &odd);
    gf2_square(&mut odd, &even);
    loop {
        gf2_square(&mut even, &odd);
        if len2 & 1 == 1 {
            crc1 = gf2_times(&even, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
        gf2_square(&mut odd, &even);
        if len2 & 1 == 1 {
            crc1 = gf2_times(&odd, crc1);
        }
        len2 >>= 1;
        if len2 == 0 {
            break;
        }
    }
    crc1 ^ crc2
}

/// Combines raw big-endian CRC values of consecutive byte runs `(crc, len)` into the CRC of their
/// concatenation. `None` for algorithms that cannot be combined (SHA).
pub fn combine_crcs(algo: ChecksumAlgorithm, runs: &[(&[u8], u64)]) -> Option<Vec<u8>> {
    let (poly, width) = crc_params(algo)?;
    let as_u64 = |raw: &[u8]| -> Option<u64> {
        let mut buf = [0u8; 8];
        let n = raw.len();
        if n > 8 {
            return None;
        }
        buf[8 - n..].copy_from_slice(raw);
        Some(u64::from_be_bytes(buf))
    };
    let mut acc: Option<u64> = None;
    for (raw, len) in runs {
        let c = as_u64(raw)?;
        acc = Some(match acc {
            None => c,
            Some(a) => crc_combine(poly, width, a, c, *len),
        });
    }
    let v = acc?;
    Some(if width == 32 {
        (v as u32).to_be_bytes().to_vec()
    } else {
        v.to_be_bytes().to_vec()
    })
}

/// Digest of `data` with one algorithm (raw bytes).
pub fn digest(algo: ChecksumAlgorithm, data: &[u8]) -> Vec<u8> {
    let mut h = BodyHasher::new(Some(algo));
    h.update(data);
    h.finish().checksum.expect("algorithm set").1
}

#[cfg(test)]
mod combine_tests {
    use super::*;

    #[test]
    fn combined_crc_equals_crc_of_concatenation() {
        let a = b"The quick brown fox jumps".repeat(37);
        let b = b" over the lazy dog".repeat(91);
        let c = b"!".to_vec();
        let whole = [a.clone(), b.clone(), c.clone()].concat();
        for algo in [
            ChecksumAlgorithm::Crc32,
            ChecksumAlgorithm::Crc32c,
            ChecksumAlgorithm::Crc64Nvme,
        ] {
            let (ca, cb, cc) = (digest(algo, &a), digest(algo, &b), digest(algo, &c));
            let runs = [
                (&ca[..], a.len() as u64),
                (&cb[..], b.len() as u64),
                (&cc[..], c.len() as u64),
            ];
            assert_eq!(
                combine_crcs(algo, &runs).unwrap(),
                digest(algo, &whole),
                "{algo:?}"
            );
        }
        assert!(combine_crcs(ChecksumAlgorithm::Sha256, &[]).is_none());
    }
}
