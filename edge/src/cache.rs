//! The response cache: a memory tier (moka, weighed in bytes, per-entry expiry) over an optional disk tier that
//! survives restarts, plus the bookkeeping around them: Vary variants, "hit-for-pass" memory of uncacheable keys,
//! and invalidation by path pattern.
//!
//! An entry outlives its TTL by its stale-if-error window plus a revalidation grace, so an expired entry can still
//! be revalidated with a conditional request (a 304 costs no body transfer) or stand in for a failing origin.
//! Whether an entry is fresh is decided by the caller from `stored_at` and `ttl`, never by its presence.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use moka::Expiry;
use serde::{Deserialize, Serialize};
use strata_config::edge::CacheConfig;

use crate::distribution::{invalidation_matches, key_path};
use crate::metrics::CacheGauges;

/// How long an expired entry is kept, beyond its stale-if-error window, for revalidation.
const REVALIDATION_GRACE: Duration = Duration::from_secs(3600);
/// How long a key found uncacheable (no-store, too large) skips the cache and coalescing.
const PASS_MEMORY: Duration = Duration::from_secs(60);
/// Fixed overhead charged per entry on top of body and header bytes.
const ENTRY_OVERHEAD: u64 = 512;
const DISK_MAGIC: &[u8; 8] = b"STRATAE1";

/// A cached origin response.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Origin status (200, 301, 404, ...).
    pub status: StatusCode,
    /// Origin headers, hop-by-hop ones removed.
    pub headers: HeaderMap,
    /// The whole body.
    pub body: Bytes,
    /// When it was stored or last refreshed by a 304.
    pub stored_at: SystemTime,
    /// Freshness lifetime from `stored_at`.
    pub ttl: Duration,
    /// The origin's Age header when stored.
    pub origin_age: Duration,
    /// How long past expiry it may be served when the origin fails.
    pub stale_if_error: Duration,
}

impl Entry {
    /// Still fresh at `now`.
    pub fn is_fresh(&self, now: SystemTime) -> bool {
        now.duration_since(self.stored_at)
            .is_ok_and(|held| held < self.ttl)
            || now < self.stored_at
    }

    /// May stand in for a failing origin at `now`.
    pub fn stale_usable(&self, now: SystemTime) -> bool {
        now.duration_since(self.stored_at)
            .map_or(true, |held| held < self.ttl + self.stale_if_error)
    }

    /// The Age to report: origin's age plus time held here.
    pub fn age(&self, now: SystemTime) -> Duration {
        self.origin_age + now.duration_since(self.stored_at).unwrap_or_default()
    }

    /// The ETag header as sent by the origin.
    pub fn etag(&self) -> Option<&str> {
        self.headers.get(http::header::ETAG)?.to_str().ok()
    }

    /// The Last-Modified header as sent by the origin.
    pub fn last_modified(&self) -> Option<&str> {
        self.headers.get(http::header::LAST_MODIFIED)?.to_str().ok()
    }

    fn weight(&self) -> u64 {
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| k.as_str().len() + v.len() + 4)
            .sum();
        self.body.len() as u64 + headers as u64 + ENTRY_OVERHEAD
    }

    fn keep_for(&self) -> Duration {
        let until = self.stored_at + self.ttl + self.stale_if_error + REVALIDATION_GRACE;
        until
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
    }
}

struct KeepUntil;

impl Expiry<String, Arc<Entry>> for KeepUntil {
    fn expire_after_create(&self, _: &String, v: &Arc<Entry>, _: Instant) -> Option<Duration> {
        Some(v.keep_for())
    }
    fn expire_after_update(
        &self,
        _: &String,
        v: &Arc<Entry>,
        _: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        Some(v.keep_for())
    }
}

/// Both tiers and their bookkeeping.
pub struct Cache {
    memory: moka::sync::Cache<String, Arc<Entry>>,
    disk: Option<DiskTier>,
    vary: moka::sync::Cache<String, Arc<Vec<HeaderName>>>,
    pass: moka::sync::Cache<String, ()>,
    epoch: Arc<AtomicU64>,
    max_object: u64,
}

impl Cache {
    /// Opens the tiers; the disk tier's surviving entries are indexed again.
    pub fn open(cfg: &CacheConfig) -> anyhow::Result<Self> {
        let memory = moka::sync::Cache::builder()
            .max_capacity(cfg.memory_bytes)
            .weigher(|_: &String, v: &Arc<Entry>| v.weight().min(u32::MAX as u64) as u32)
            .expire_after(KeepUntil)
            .build();
        let disk = match &cfg.disk_dir {
            Some(dir) => Some(DiskTier::open(dir, cfg.disk_bytes)?),
            None => None,
        };
        Ok(Self {
            memory,
            disk,
            vary: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(86_400))
                .build(),
            pass: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(PASS_MEMORY)
                .build(),
            epoch: Arc::new(AtomicU64::new(0)),
            max_object: cfg.max_object_bytes,
        })
    }

    /// Largest body that is cached.
    pub fn max_object(&self) -> u64 {
        self.max_object
    }

    /// The key of the variant of `primary` that these request headers select (the response's Vary names).
    pub fn variant_key(&self, primary: &str, request: &HeaderMap) -> String {
        match self.vary.get(primary) {
            Some(names) => variant_key(primary, &names, request),
            None => primary.to_owned(),
        }
    }

    /// Remembers the Vary names of `primary`'s responses; returns the variant key for `request`.
    pub fn learn_vary(&self, primary: &str, names: Vec<HeaderName>, request: &HeaderMap) -> String {
        if names.is_empty() {
            self.vary.invalidate(primary);
            return primary.to_owned();
        }
        let key = variant_key(primary, &names, request);
        self.vary.insert(primary.to_owned(), Arc::new(names));
        key
    }

    /// Memory, then disk (a disk hit is promoted to memory).
    pub async fn lookup(&self, key: &str) -> Option<Arc<Entry>> {
        if let Some(e) = self.memory.get(key) {
            return Some(e);
        }
        let disk = self.disk.as_ref()?;
        let found = disk.index.get(key)?;
        let path = found.path.clone();
        let entry = tokio::task::spawn_blocking(move || read_entry(&path))
            .await
            .ok()?;
        match entry {
            Ok((stored_key, entry)) if stored_key == key => {
                let entry = Arc::new(entry);
                self.memory.insert(key.to_owned(), entry.clone());
                Some(entry)
            }
            Ok(_) | Err(_) => {
                // Corrupt or foreign file: forget it (the eviction listener deletes it).
                disk.index.invalidate(key);
                None
            }
        }
    }

    /// The invalidation epoch: a fill started before an invalidation must not store what it fetched.
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Stores an entry in memory, and in the background on disk, unless an invalidation happened since `epoch`.
    ///
    /// An invalidation bumps the epoch, then removes what it finds. So each tier stores first and checks the epoch
    /// after: either the invalidation's scan sees the new entry, or the check sees the bump and takes it back.
    /// Checking only before storing would let an invalidation slip in between and miss the entry.
    pub fn insert(&self, key: String, entry: Arc<Entry>, epoch: u64) -> bool {
        if self.epoch() != epoch {
            return false;
        }
        self.pass.invalidate(&key);
        self.memory.insert(key.clone(), entry.clone());
        if self.epoch() != epoch {
            self.memory.invalidate(&key);
            return false;
        }
        if let Some(disk) = &self.disk {
            disk.write_behind(key, entry, epoch, self.epoch.clone());
        }
        true
    }

    /// Marks a key as not worth caching for a while: requests for it go straight to the origin.
    pub fn mark_pass(&self, key: &str) {
        self.pass.insert(key.to_owned(), ());
    }

    /// Whether a key was recently found uncacheable.
    pub fn is_pass(&self, key: &str) -> bool {
        self.pass.contains_key(key)
    }

    /// Removes every entry of distribution `site` whose path matches `pattern` (exact, or prefix with a
    /// trailing `*`), in both tiers. Returns how many entries went.
    pub fn invalidate(&self, site: &str, pattern: &str) -> u64 {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        let matches = |key: &str| {
            key_path(key)
                .is_some_and(|(id, path)| id == site && invalidation_matches(pattern, path))
        };
        let mut removed = 0;
        let keys: Vec<Arc<String>> = self
            .memory
            .iter()
            .filter(|(k, _)| matches(k))
            .map(|(k, _)| k)
            .collect();
        for k in keys {
            self.memory.invalidate(k.as_str());
            removed += 1;
        }
        if let Some(disk) = &self.disk {
            let keys: Vec<Arc<String>> = disk
                .index
                .iter()
                .filter(|(k, _)| matches(k))
                .map(|(k, _)| k)
                .collect();
            for k in keys {
                if !self.memory.contains_key(k.as_str()) {
                    removed += 1;
                }
                disk.index.invalidate(k.as_str());
            }
        }
        let passes: Vec<Arc<String>> = self
            .pass
            .iter()
            .filter(|(k, _)| matches(k))
            .map(|(k, _)| k)
            .collect();
        for k in passes {
            self.pass.invalidate(k.as_str());
        }
        removed
    }

    /// Sizes for the metrics endpoint.
    pub fn gauges(&self) -> CacheGauges {
        self.memory.run_pending_tasks();
        let (disk_bytes, disk_entries) = self.disk.as_ref().map_or((0, 0), |d| {
            d.index.run_pending_tasks();
            (d.index.weighted_size(), d.index.entry_count())
        });
        CacheGauges {
            memory_bytes: self.memory.weighted_size(),
            memory_entries: self.memory.entry_count(),
            disk_bytes,
            disk_entries,
        }
    }
}

fn variant_key(primary: &str, names: &[HeaderName], request: &HeaderMap) -> String {
    let mut key = String::from(primary);
    key.push_str("\0vary");
    for name in names {
        key.push('\0');
        key.push_str(name.as_str());
        key.push('=');
        for v in request.get_all(name) {
            key.push_str(&String::from_utf8_lossy(v.as_bytes()));
            key.push(',');
        }
    }
    key
}

/// Where a disk entry is.
#[derive(Debug)]
struct DiskEntry {
    path: PathBuf,
    size: u64,
    keep_until: SystemTime,
}

struct DiskExpiry;

impl Expiry<String, Arc<DiskEntry>> for DiskExpiry {
    fn expire_after_create(&self, _: &String, v: &Arc<DiskEntry>, _: Instant) -> Option<Duration> {
        Some(
            v.keep_until
                .duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO),
        )
    }
    fn expire_after_update(
        &self,
        k: &String,
        v: &Arc<DiskEntry>,
        at: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        self.expire_after_create(k, v, at)
    }
}

/// Files under one directory, one per entry, indexed in memory; each file is written to a temporary name and
/// renamed, and carries a BLAKE3 of its contents so a torn or corrupt file is never served.
struct DiskTier {
    dir: PathBuf,
    index: moka::sync::Cache<String, Arc<DiskEntry>>,
}

#[derive(Serialize, Deserialize)]
struct DiskHeader {
    key: String,
    status: u16,
    headers: Vec<(String, String)>,
    stored_at_ms: u64,
    ttl_ms: u64,
    origin_age_ms: u64,
    stale_ms: u64,
}

impl DiskTier {
    fn open(dir: &Path, capacity: u64) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("creating cache directory {}: {e}", dir.display()))?;
        let index = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .weigher(|_: &String, v: &Arc<DiskEntry>| v.size.min(u32::MAX as u64) as u32)
            .expire_after(DiskExpiry)
            .eviction_listener(|_, v: Arc<DiskEntry>, _| {
                let _ = std::fs::remove_file(&v.path);
            })
            .build();
        let tier = Self {
            dir: dir.to_owned(),
            index,
        };
        tier.scan()?;
        Ok(tier)
    }

    /// Re-indexes the files a previous run left; removes temporaries, corrupt and expired files.
    fn scan(&self) -> anyhow::Result<()> {
        let mut kept = 0u64;
        for item in std::fs::read_dir(&self.dir)? {
            let path = item?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if !name.ends_with(".e") {
                let _ = std::fs::remove_file(&path);
                continue;
            }
            match read_entry(&path) {
                Ok((key, entry)) if entry.keep_for() > Duration::ZERO => {
                    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
                    let keep_until = SystemTime::now() + entry.keep_for();
                    // A newer copy of the same key may already be indexed: keep whichever came last.
                    self.index.insert(
                        key,
                        Arc::new(DiskEntry {
                            path,
                            size,
                            keep_until,
                        }),
                    );
                    kept += 1;
                }
                _ => {
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        tracing::info!(dir = %self.dir.display(), entries = kept, "edge disk cache indexed");
        Ok(())
    }

    /// Writes an entry in the background. The file is indexed only if no invalidation happened since `epoch`
    /// (a write of a large entry can take long enough for a PUT through the edge to invalidate it meanwhile).
    fn write_behind(&self, key: String, entry: Arc<Entry>, epoch: u64, current: Arc<AtomicU64>) {
        let dir = self.dir.clone();
        let index = self.index.clone();
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        rt.spawn_blocking(move || {
            let name = format!(
                "{}-{:016x}.e",
                &blake3::hash(key.as_bytes()).to_hex()[..32],
                rand::random::<u64>()
            );
            let path = dir.join(name);
            match write_entry(&dir, &path, &key, &entry) {
                Ok(size) => {
                    let keep_until = SystemTime::now() + entry.keep_for();
                    index.insert(
                        key.clone(),
                        Arc::new(DiskEntry {
                            path,
                            size,
                            keep_until,
                        }),
                    );
                    // Stored first, checked after: see `Cache::insert`. The eviction listener deletes the file.
                    if current.load(Ordering::SeqCst) != epoch {
                        index.invalidate(&key);
                    }
                }
                Err(e) => tracing::warn!(error = %e, "edge disk cache write failed"),
            }
        });
    }
}

fn millis(d: Duration) -> u64 {
    d.as_millis().min(u64::MAX as u128) as u64
}

fn write_entry(dir: &Path, path: &Path, key: &str, e: &Entry) -> std::io::Result<u64> {
    let header = DiskHeader {
        key: key.to_owned(),
        status: e.status.as_u16(),
        headers: e
            .headers
            .iter()
            .map(|(k, v)| (k.as_str().to_owned(), hex::encode(v.as_bytes())))
            .collect(),
        stored_at_ms: millis(e.stored_at.duration_since(UNIX_EPOCH).unwrap_or_default()),
        ttl_ms: millis(e.ttl),
        origin_age_ms: millis(e.origin_age),
        stale_ms: millis(e.stale_if_error),
    };
    let json = serde_json::to_vec(&header).map_err(std::io::Error::other)?;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&json);
    hasher.update(&e.body);
    let tmp = dir.join(format!(".tmp-{:016x}", rand::random::<u64>()));
    let result = (|| {
        let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        f.write_all(DISK_MAGIC)?;
        f.write_all(&(json.len() as u32).to_le_bytes())?;
        f.write_all(&json)?;
        f.write_all(&e.body)?;
        f.write_all(hasher.finalize().as_bytes())?;
        f.into_inner().map_err(|e| e.into_error())?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| (DISK_MAGIC.len() + 4 + json.len() + e.body.len() + 32) as u64)
}

fn read_entry(path: &Path) -> std::io::Result<(String, Entry)> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let mut data = Vec::new();
    std::fs::File::open(path)?.read_to_end(&mut data)?;
    if data.len() < DISK_MAGIC.len() + 4 + 32 || &data[..8] != DISK_MAGIC {
        return Err(bad("not a cache entry"));
    }
    let (content, sum) = data.split_at(data.len() - 32);
    let json_len = u32::from_le_bytes(content[8..12].try_into().unwrap_or_default()) as usize;
    if 12 + json_len > content.len() {
        return Err(bad("truncated"));
    }
    let json = &content[12..12 + json_len];
    let body = &content[12 + json_len..];
    let mut hasher = blake3::Hasher::new();
    hasher.update(json);
    hasher.update(body);
    if hasher.finalize().as_bytes() != sum {
        return Err(bad("checksum mismatch"));
    }
    let h: DiskHeader = serde_json::from_slice(json).map_err(|_| bad("bad header"))?;
    let mut headers = HeaderMap::with_capacity(h.headers.len());
    for (k, v) in h.headers {
        let name = HeaderName::from_bytes(k.as_bytes()).map_err(|_| bad("bad header name"))?;
        let value = hex::decode(v)
            .ok()
            .and_then(|b| HeaderValue::from_bytes(&b).ok())
            .ok_or_else(|| bad("bad header value"))?;
        headers.append(name, value);
    }
    let entry = Entry {
        status: StatusCode::from_u16(h.status).map_err(|_| bad("bad status"))?,
        headers,
        body: Bytes::copy_from_slice(body),
        stored_at: UNIX_EPOCH + Duration::from_millis(h.stored_at_ms),
        ttl: Duration::from_millis(h.ttl_ms),
        origin_age: Duration::from_millis(h.origin_age_ms),
        stale_if_error: Duration::from_millis(h.stale_ms),
    };
    Ok((h.key, entry))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(body: &'static [u8], ttl: u64) -> Arc<Entry> {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::ETAG, HeaderValue::from_static("\"e1\""));
        Arc::new(Entry {
            status: StatusCode::OK,
            headers,
            body: Bytes::from_static(body),
            stored_at: SystemTime::now(),
            ttl: Duration::from_secs(ttl),
            origin_age: Duration::ZERO,
            stale_if_error: Duration::from_secs(60),
        })
    }

    fn config(dir: Option<&Path>) -> CacheConfig {
        CacheConfig {
            memory_bytes: 1 << 20,
            disk_dir: dir.map(Path::to_owned),
            disk_bytes: 1 << 20,
            max_object_bytes: 1 << 16,
        }
    }

    #[tokio::test]
    async fn disk_tier_survives_a_restart_and_rejects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        {
            let cache = Cache::open(&config(Some(dir.path()))).unwrap();
            cache.insert("d\0h\0/a\0".into(), entry(b"hello", 100), cache.epoch());
            cache.insert("d\0h\0/b\0".into(), entry(b"world", 100), cache.epoch());
            for _ in 0..100 {
                cache.disk.as_ref().unwrap().index.run_pending_tasks();
                if cache.disk.as_ref().unwrap().index.entry_count() == 2 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        // Corrupt one file's body byte.
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(files.len(), 2);
        let victim = files
            .iter()
            .find(|p| {
                let data = std::fs::read(p).unwrap();
                data.windows(5).any(|w| w == b"world")
            })
            .unwrap();
        let mut data = std::fs::read(victim).unwrap();
        let pos = data.windows(5).position(|w| w == b"world").unwrap();
        data[pos] = b'W';
        std::fs::write(victim, data).unwrap();

        let cache = Cache::open(&config(Some(dir.path()))).unwrap();
        let a = cache.lookup("d\0h\0/a\0").await.expect("survived restart");
        assert_eq!(&a.body[..], b"hello");
        assert_eq!(a.etag(), Some("\"e1\""));
        assert!(
            cache.lookup("d\0h\0/b\0").await.is_none(),
            "corrupt entry never served"
        );
        assert!(!victim.exists(), "corrupt file removed");
    }

    #[tokio::test]
    async fn invalidation_by_prefix_and_epoch() {
        let cache = Cache::open(&config(None)).unwrap();
        let epoch = cache.epoch();
        cache.insert("d\0h\0/img/a.png\0".into(), entry(b"a", 100), epoch);
        cache.insert("d\0h\0/img/b.png\0v=1".into(), entry(b"b", 100), epoch);
        cache.insert("d\0h\0/index.html\0".into(), entry(b"i", 100), epoch);
        cache.insert("other\0h\0/img/a.png\0".into(), entry(b"o", 100), epoch);
        assert_eq!(cache.invalidate("d", "/img/*"), 2);
        assert!(cache.lookup("d\0h\0/img/a.png\0").await.is_none());
        assert!(cache.lookup("d\0h\0/index.html\0").await.is_some());
        assert!(cache.lookup("other\0h\0/img/a.png\0").await.is_some());
        // A fill that began before the invalidation does not store its result.
        assert!(!cache.insert("d\0h\0/img/a.png\0".into(), entry(b"old", 100), epoch));
        assert!(cache.insert(
            "d\0h\0/img/a.png\0".into(),
            entry(b"new", 100),
            cache.epoch()
        ));
    }

    #[test]
    fn freshness() {
        let e = entry(b"x", 10);
        let now = SystemTime::now();
        assert!(e.is_fresh(now));
        assert!(!e.is_fresh(now + Duration::from_secs(11)));
        assert!(e.stale_usable(now + Duration::from_secs(65)));
        assert!(!e.stale_usable(now + Duration::from_secs(71)));
    }
}
