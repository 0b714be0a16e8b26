//! The typed configuration tree shared by every Strata component.
//!
//! One serde tree, loaded from TOML, overlaid by environment and flags (in that order: flag > env > file >
//! default), then checked by [`Config::validate`]. Unknown keys are rejected so a typo fails loudly.
//! `config/strata.toml` documents every key; a test keeps that file parseable and complete.
//! This crate knows nothing about HTTP or disks: it only describes what the other crates are told to do.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub mod edge;

pub use edge::EdgeConfig;

/// Errors raised while loading or validating configuration.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The config file could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// File that failed.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML for this tree.
    #[error("parsing {path}: {source}")]
    Parse {
        /// File that failed.
        path: PathBuf,
        /// Underlying parse error.
        source: Box<toml::de::Error>,
    },
    /// A value is out of its allowed range.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, Error>;

/// The whole configuration of `strata serve`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listeners, data directory, region and timeouts.
    pub server: ServerConfig,
    /// Disks, erasure-coding geometry and durability policy.
    pub storage: StorageConfig,
    /// The edge started by `strata serve` (same tree as `strata edge`'s file; see config/edge.toml). Its
    /// listeners are `server.edge_addr` and `server.edge_tls_addr`; `listen` and `tls_listen` here are ignored.
    pub edge: EdgeConfig,
}

/// Listener and process settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Directory holding credentials and, with no disks configured, the default disks.
    pub data_dir: PathBuf,
    /// S3 REST API listener.
    pub s3_addr: SocketAddr,
    /// Edge (CDN) plain HTTP listener.
    pub edge_addr: SocketAddr,
    /// Edge TLS listener.
    pub edge_tls_addr: SocketAddr,
    /// Static website listener.
    pub website_addr: SocketAddr,
    /// On the website endpoint, a Host `BUCKET.<domain>` for one of these names bucket BUCKET; any other Host
    /// names the bucket called exactly like it.
    pub website_domains: Vec<String>,
    /// Region name reported by GetBucketLocation and required in SigV4 scopes.
    pub region: String,
    /// Seconds a client may take to send request headers, or stay idle between body reads, before it is cut off.
    pub client_timeout_secs: u64,
    /// Seconds given to in-flight requests to finish after SIGINT/SIGTERM.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            s3_addr: ([127, 0, 0, 1], 9000).into(),
            edge_addr: ([127, 0, 0, 1], 8080).into(),
            edge_tls_addr: ([127, 0, 0, 1], 8443).into(),
            website_addr: ([127, 0, 0, 1], 9001).into(),
            website_domains: vec!["s3-website.localhost".into()],
            region: "us-east-1".into(),
            client_timeout_secs: 60,
            shutdown_grace_secs: 30,
        }
    }
}

/// Which disk I/O backend the storage engine uses.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum IoBackend {
    /// io_uring where the kernel allows it (falls back to portable with a log line).
    #[default]
    Uring,
    /// std::fs on a blocking thread pool.
    Portable,
}

/// Storage engine settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// Disk directories. Empty means `data_shards + parity_shards` directories under `server.data_dir/disks`.
    pub disks: Vec<PathBuf>,
    /// Reed-Solomon data shards per block (k).
    pub data_shards: usize,
    /// Reed-Solomon parity shards per block (m): this many disks may be lost without losing anything.
    pub parity_shards: usize,
    /// Bytes of object data per erasure-coded block.
    pub block_size: usize,
    /// Objects up to this many bytes are stored inside the metadata record instead of shard files.
    pub inline_threshold: usize,
    /// fsync shard files and metadata before a write is acknowledged. Turning this off trades durability
    /// for speed and is only for benchmarks.
    pub fsync: bool,
    /// Disk I/O backend.
    pub io: IoBackend,
    /// Largest object accepted by a single PUT, in bytes (AWS: 5 GiB).
    pub max_put_size: u64,
    /// Page cache of each metadata replica, in bytes (one replica on each of the first `2 * parity_shards + 1`
    /// disks, or on every disk of a smaller set).
    pub meta_cache_bytes: usize,
    /// Largest object CompleteMultipartUpload may assemble, in bytes (AWS: 5 TiB).
    pub max_object_size: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            disks: Vec::new(),
            data_shards: 4,
            parity_shards: 2,
            block_size: 1024 * 1024,
            inline_threshold: 16 * 1024,
            fsync: true,
            io: IoBackend::Uring,
            max_put_size: 5 * 1024 * 1024 * 1024,
            meta_cache_bytes: 32 * 1024 * 1024,
            max_object_size: 5 * 1024 * 1024 * 1024 * 1024,
        }
    }
}

impl Config {
    /// Reads a TOML file into a config tree (keys not given keep their defaults).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|source| Error::Parse {
            path: path.to_owned(),
            source: Box::new(source),
        })
    }

    /// Parses TOML text into a config tree.
    pub fn from_toml(text: &str) -> std::result::Result<Self, toml::de::Error> {
        toml::from_str(text)
    }

    /// The disk directories to use: the configured ones, or the default set under the data directory.
    pub fn disk_paths(&self) -> Vec<PathBuf> {
        if !self.storage.disks.is_empty() {
            return self.storage.disks.clone();
        }
        let total = self.storage.data_shards + self.storage.parity_shards;
        (0..total)
            .map(|i| self.server.data_dir.join("disks").join(format!("disk{i}")))
            .collect()
    }

    /// Checks ranges and cross-field rules.
    pub fn validate(&self) -> Result<()> {
        let s = &self.storage;
        if s.data_shards == 0 || s.data_shards > 16 || s.parity_shards > 16 {
            return Err(Error::Invalid(format!(
                "geometry {}+{} is outside 1+0 ..= 16+16",
                s.data_shards, s.parity_shards
            )));
        }
        let disks = self.disk_paths().len();
        if disks != s.data_shards + s.parity_shards {
            return Err(Error::Invalid(format!(
                "{disks} disks configured but geometry {}+{} needs exactly {}",
                s.data_shards,
                s.parity_shards,
                s.data_shards + s.parity_shards
            )));
        }
        if s.block_size < 4096 || s.block_size > 64 * 1024 * 1024 {
            return Err(Error::Invalid(
                "storage.block_size must be 4 KiB ..= 64 MiB".into(),
            ));
        }
        if s.inline_threshold > 1024 * 1024 {
            return Err(Error::Invalid(
                "storage.inline_threshold must be at most 1 MiB".into(),
            ));
        }
        if s.max_object_size < s.max_put_size {
            return Err(Error::Invalid(
                "storage.max_object_size must be at least storage.max_put_size".into(),
            ));
        }
        if s.max_put_size == 0 {
            return Err(Error::Invalid(
                "storage.max_put_size must be positive".into(),
            ));
        }
        self.edge.validate()?;
        if self.server.region.is_empty() {
            return Err(Error::Invalid("server.region must not be empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn example_file_parses_and_matches_defaults() {
        let text = include_str!("../strata.toml");
        let parsed = Config::from_toml(text).expect("config/strata.toml parses");
        assert_eq!(
            parsed,
            Config::default(),
            "strata.toml documents the defaults"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        assert!(Config::from_toml("[storage]\ndata_shard = 4\n").is_err());
    }

    #[test]
    fn default_layout_is_six_disks_four_plus_two() {
        let c = Config::default();
        c.validate().unwrap();
        assert_eq!(c.disk_paths().len(), 6);
    }

    #[test]
    fn mismatched_disk_count_is_invalid() {
        let mut c = Config::default();
        c.storage.disks = vec!["/a".into(), "/b".into()];
        assert!(c.validate().is_err());
    }
}
