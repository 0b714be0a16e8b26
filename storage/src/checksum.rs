//! Digests computed while a body streams through: MD5 for the ETag and at most one S3 flexible checksum.

use md5::{Digest, Md5};
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
        Self {
            md5: Md5::new(),
            checksum,
            len: 0,
        }
    }

    /// Feeds bytes.
    pub fn update(&mut self, data: &[u8]) {
        self.md5.update(data);
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
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True before any byte was fed.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Finishes every digest.
    pub fn finish(self) -> Digests {
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
            md5: self.md5.finalize().into(),
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
