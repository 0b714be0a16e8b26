//! What access decisions need to know about a bucket (owner, parsed policy, Block Public Access, ownership
//! controls, ACL), kept in
//! memory per bucket and dropped whenever one of them changes. One server process owns the metadata, so the
//! handlers that change these documents (and CreateBucket / DeleteBucket) invalidate the entry; a generation
//! counter keeps a load that raced with an invalidation from storing what it read before the change.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use strata_storage::Engine;

use super::acl::{CannedAcl, ObjectOwnership};
use super::kinds;
use super::policy::{Policy, Scope};
use super::public_block::PublicAccessBlock;
use crate::error::{ApiError, ApiResult};

/// A bucket's access-relevant state.
#[derive(Debug)]
pub struct BucketAccess {
    /// The owner's access key.
    pub owner: String,
    /// The bucket policy, if any.
    pub policy: Option<Policy>,
    /// Whether the policy is public (AWS's definition).
    pub policy_public: bool,
    /// Effective Block Public Access flags.
    pub block: PublicAccessBlock,
    /// Object ownership (whether ACLs count).
    pub ownership: ObjectOwnership,
    /// The bucket's canned ACL.
    pub acl: CannedAcl,
}

/// Per-bucket cache of [`BucketAccess`], and of parsed user policies by their text.
#[derive(Debug, Default)]
pub struct AccessCache {
    buckets: RwLock<HashMap<String, Arc<BucketAccess>>>,
    users: Mutex<HashMap<String, (String, Arc<Policy>)>>,
    generation: AtomicU64,
}

impl AccessCache {
    /// Forgets what is cached about `bucket` (call after changing its policy, Block Public Access, ACLs, or
    /// creating / deleting it).
    pub fn invalidate(&self, bucket: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        write(&self.buckets).remove(bucket);
    }

    /// The bucket's access state, or None when the bucket does not exist.
    pub async fn bucket(
        &self,
        engine: &Engine,
        bucket: &str,
    ) -> ApiResult<Option<Arc<BucketAccess>>> {
        if let Some(hit) = read(&self.buckets).get(bucket) {
            return Ok(Some(hit.clone()));
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let record = match engine.bucket(bucket).await {
            Ok(r) => r,
            Err(strata_storage::Error::NoSuchBucket) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let policy_doc = engine.bucket_config(bucket, kinds::POLICY).await?;
        let block_doc = engine
            .bucket_config(bucket, kinds::PUBLIC_ACCESS_BLOCK)
            .await?;
        let ownership_doc = engine.bucket_config(bucket, kinds::OWNERSHIP).await?;
        let acl_doc = engine.bucket_config(bucket, kinds::ACL).await?;
        let policy = match policy_doc {
            // A stored policy was validated when it was put; if it no longer parses, fail closed.
            Some(doc) => Some(Policy::parse(&doc, Scope::Bucket(bucket)).map_err(|e| {
                ApiError::internal(format!("stored policy of {bucket} does not parse: {e}"))
            })?),
            None => None,
        };
        let access = Arc::new(BucketAccess {
            owner: record.owner,
            policy_public: policy.as_ref().is_some_and(Policy::is_public),
            policy,
            block: PublicAccessBlock::from_stored(block_doc.as_deref()).0,
            ownership: ObjectOwnership::from_stored(ownership_doc.as_deref()).0,
            acl: CannedAcl::from_stored(
                acl_doc.as_deref().and_then(|d| std::str::from_utf8(d).ok()),
            ),
        });
        let mut map = write(&self.buckets);
        if self.generation.load(Ordering::SeqCst) == generation {
            map.insert(bucket.to_owned(), access.clone());
        }
        Ok(Some(access))
    }

    /// The access state of a bucket that must exist: NoSuchBucket otherwise. Also the cheap way to learn that a
    /// bucket exists on a per-request path (no metadata read once cached).
    pub async fn existing(&self, engine: &Engine, bucket: &str) -> ApiResult<Arc<BucketAccess>> {
        self.bucket(engine, bucket)
            .await?
            .ok_or(ApiError::NoSuchBucket)
    }

    /// A user's identity policy, parsed once per text.
    pub fn user_policy(&self, access_key: &str, text: &str) -> ApiResult<Arc<Policy>> {
        if let Some((cached_text, p)) = lock(&self.users).get(access_key)
            && cached_text == text
        {
            return Ok(p.clone());
        }
        let p = Arc::new(
            Policy::parse(text.as_bytes(), Scope::Identity).map_err(|e| {
                ApiError::internal(format!(
                    "identity policy of {access_key} does not parse: {e}"
                ))
            })?,
        );
        lock(&self.users).insert(access_key.to_owned(), (text.to_owned(), p.clone()));
        Ok(p)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(std::sync::PoisonError::into_inner)
}
