//! Who may do what: the one place that decides whether a caller (a user, root, or anonymous) may perform an S3
//! action on a bucket or key. Handlers and the website endpoint ask [`authorize`]; nothing else reads bucket
//! policies, public access blocks or ACLs to make an access decision.

//!
//! The decision, in order:
//! - a missing bucket: any caller may go on (the handler answers NoSuchBucket), except that CreateBucket needs a
//!   signed caller, and a user's identity policy may still deny;
//! - an explicit Deny in the bucket policy or the caller's identity policy refuses (root: except
//!   Get/Put/DeleteBucketPolicy, which root may always do, as AWS);
//! - root may do anything else; a user may act on buckets they own;
//! - otherwise an Allow in the bucket policy (anonymous callers included) or, for users, in their identity
//!   policy allows. With RestrictPublicBuckets, a public bucket policy allows nothing to anyone but the owner.
//! - when the bucket's ACLs are enabled (ownership other than BucketOwnerEnforced), what the policies left
//!   undecided may be granted by the bucket's or the object's canned ACL (unless IgnorePublicAcls), or by
//!   owning the object (which grants what the owner's FULL_CONTROL grant does: reading the object and its ACL,
//!   writing its ACL). Both are read from the version the request names (`RequestEnv::version_id`).
//! - everything else is refused (implicit deny).

pub mod acl;
pub mod actions;
pub mod cache;
pub mod condition;
pub mod env;
pub mod policy;
pub mod public_block;

use std::net::IpAddr;

use chrono::{DateTime, Utc};

pub use cache::{AccessCache, BucketAccess};
pub use policy::{Decision, Policy, Scope};
pub use public_block::PublicAccessBlock;

use crate::auth::Identity;
use crate::error::{ApiError, ApiResult};
use crate::handlers::Ctx;

/// Names of the bucket configuration documents kept in storage (`Engine::bucket_config`).
pub mod kinds {
    /// Bucket policy (JSON, as the client sent it).
    pub const POLICY: &str = "policy";
    /// Block Public Access settings.
    pub const PUBLIC_ACCESS_BLOCK: &str = "public-access-block";
    /// Object ownership controls.
    pub const OWNERSHIP: &str = "ownership-controls";
    /// Bucket ACL.
    pub const ACL: &str = "acl";
    /// Static website configuration.
    pub const WEBSITE: &str = "website";
    /// CORS rules.
    pub const CORS: &str = "cors";
}

/// What policy conditions can look at, besides the caller and the resource.
#[derive(Debug, Clone)]
pub struct RequestEnv {
    /// The client's address (aws:SourceIp).
    pub source_ip: Option<IpAddr>,
    /// Whether the request came over TLS (aws:SecureTransport).
    pub secure_transport: bool,
    /// The Referer header (aws:Referer).
    pub referer: Option<String>,
    /// The User-Agent header (aws:UserAgent).
    pub user_agent: Option<String>,
    /// The `prefix` parameter of a listing (s3:prefix).
    pub prefix: Option<String>,
    /// The `delimiter` parameter of a listing (s3:delimiter); set with [`RequestEnv::with_listing`].
    pub delimiter: Option<String>,
    /// The `max-keys` parameter of a listing (s3:max-keys); set with [`RequestEnv::with_listing`].
    pub max_keys: Option<String>,
    /// The `x-amz-acl` header (s3:x-amz-acl).
    pub acl: Option<String>,
    /// The other headers that are condition keys of their own, `s3:<name>` (see `env::CONDITION_HEADERS`), as
    /// sent; absent ones are left out.
    pub condition_headers: Vec<(&'static str, String)>,
    /// The object version the request names (`?versionId=`, or a copy source's or a DeleteObjects entry's
    /// version; s3:versionid); set with [`RequestEnv::with_version`]. None: the current version.
    pub version_id: Option<String>,
    /// When the request arrived (aws:CurrentTime).
    pub now: DateTime<Utc>,
    /// How the request was signed (s3:signatureversion, s3:authType); `None` when anonymous. Set with
    /// [`RequestEnv::with_signing`].
    pub signing: Option<crate::auth::Signing>,
}

/// Actions root may always perform on its buckets, whatever the bucket policy says (so a policy that denies
/// everyone cannot lock the account out).
const ROOT_ALWAYS: &[&str] = &[
    "s3:GetBucketPolicy",
    "s3:PutBucketPolicy",
    "s3:DeleteBucketPolicy",
];

/// Decides whether `identity` (None: anonymous) may perform `action` (an IAM action name such as
/// `s3:GetObject`) on `bucket` and, for object actions, `key`. AccessDenied otherwise.
///
/// `bucket` is empty for requests that name no bucket (ListBuckets): those need a signed caller.
pub async fn authorize(
    ctx: &Ctx,
    identity: Option<&Identity>,
    action: &str,
    bucket: &str,
    key: Option<&str>,
    env: &RequestEnv,
) -> ApiResult<()> {
    let resource = if bucket.is_empty() {
        "*".to_owned()
    } else {
        policy::resource_arn(bucket, key)
    };
    let user_policy = match identity {
        Some(id) if !id.is_root => identity_policy(ctx, id).await?,
        _ => None,
    };
    let user_decision = user_policy.as_ref().map_or(Decision::Implicit, |p| {
        p.evaluate(identity, action, &resource, env)
    });
    if user_decision == Decision::Deny {
        return Err(ApiError::AccessDenied);
    }
    let access = if bucket.is_empty() || action == "s3:CreateBucket" {
        None
    } else {
        ctx.access.bucket(&ctx.engine, bucket).await?
    };
    let Some(access) = access else {
        // No bucket to protect (or one being created, which the handler checks): signed callers go on; an
        // anonymous caller may learn that a bucket does not exist, but never create one or list buckets.
        let anonymous_ok = !bucket.is_empty() && action != "s3:CreateBucket";
        return if identity.is_some() || anonymous_ok {
            Ok(())
        } else {
            Err(ApiError::AccessDenied)
        };
    };
    let is_owner = identity.is_some_and(|id| id.is_root || id.access_key == access.owner);
    let bucket_decision = match &access.policy {
        None => Decision::Implicit,
        Some(p) => match p.evaluate(identity, action, &resource, env) {
            Decision::Allow
                if access.policy_public && access.block.restrict_public_buckets && !is_owner =>
            {
                Decision::Implicit
            }
            d => d,
        },
    };
    let mut allowed = match identity {
        Some(id) if id.is_root => {
            bucket_decision != Decision::Deny || ROOT_ALWAYS.contains(&action)
        }
        _ if bucket_decision == Decision::Deny => false,
        _ if is_owner => true,
        _ => bucket_decision == Decision::Allow || user_decision == Decision::Allow,
    };
    if !allowed && bucket_decision != Decision::Deny && access.ownership.acls_enabled() {
        allowed = acl_allows(ctx, &access, identity, action, bucket, key, env).await?;
    }
    if allowed {
        Ok(())
    } else {
        Err(ApiError::AccessDenied)
    }
}

/// What owning an object grants through ACLs: the owner's implicit FULL_CONTROL grant on the object, which in
/// AWS covers reading the object and reading and writing its ACL, nothing else (not deleting it, nor its
/// tags, retention or legal hold).
const OWNER_FULL_CONTROL: &[&str] = &[
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:GetObjectAcl",
    "s3:GetObjectVersionAcl",
    "s3:PutObjectAcl",
    "s3:PutObjectVersionAcl",
];

/// What ACLs grant: the bucket's canned ACL, the object's, or owning the object (FULL_CONTROL). Object ACLs and
/// owners are read from the version the request names (`env.version_id`), or the current version.
async fn acl_allows(
    ctx: &Ctx,
    access: &BucketAccess,
    identity: Option<&Identity>,
    action: &str,
    bucket: &str,
    key: Option<&str>,
    env: &RequestEnv,
) -> ApiResult<bool> {
    let public_ok = !access.block.ignore_public_acls;
    let signed = identity.is_some();
    if public_ok && access.acl.grants(true, action, signed) {
        return Ok(true);
    }
    let Some(key) = key else {
        return Ok(false);
    };
    let record = match ctx
        .engine
        .head_version(bucket, key, env.version_id.as_deref())
        .await
    {
        Ok(r) if r.is_delete_marker() => return Ok(false),
        Ok(r) => r,
        Err(
            strata_storage::Error::NoSuchKey
            | strata_storage::Error::NoSuchVersion
            | strata_storage::Error::InvalidVersion,
        ) => return Ok(false),
        Err(e) => return Err(e.into()),
    };
    if identity.is_some_and(|id| id.access_key == record.owner) && owner_grants(action) {
        return Ok(true);
    }
    let canned = acl::CannedAcl::from_stored(record.header(acl::OBJECT_ACL_HEADER));
    Ok(public_ok && canned.grants(false, action, signed))
}

/// Whether owning an object grants `action` on it.
fn owner_grants(action: &str) -> bool {
    OWNER_FULL_CONTROL.contains(&action)
}

/// A user's identity policy (None: the user has none, or is not in the user store).
async fn identity_policy(ctx: &Ctx, id: &Identity) -> ApiResult<Option<std::sync::Arc<Policy>>> {
    // The user store mirrors the stored users in memory, so no metadata read is needed per request.
    match ctx.creds.policy(&id.access_key) {
        None => Ok(None),
        Some(text) => ctx.access.user_policy(&id.access_key, &text).map(Some),
    }
}

/// As S3: a caller who may read a key but not list its bucket learns nothing about keys that do not exist, so
/// `missing` (NoSuchKey, or a delete marker's error) becomes AccessDenied for them. The REST and website
/// endpoints both answer missing keys through this.
pub async fn hide_missing_key(
    ctx: &Ctx,
    identity: Option<&Identity>,
    bucket: &str,
    env: &RequestEnv,
    missing: ApiError,
) -> ApiError {
    match authorize(ctx, identity, "s3:ListBucket", bucket, None, env).await {
        Ok(()) => missing,
        Err(e) => e,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ownership_grants_only_what_full_control_does() {
        for a in OWNER_FULL_CONTROL {
            assert!(owner_grants(a), "{a}");
        }
        for a in [
            "s3:DeleteObject",
            "s3:DeleteObjectVersion",
            "s3:PutObject",
            "s3:PutObjectRetention",
            "s3:PutObjectLegalHold",
            "s3:PutObjectTagging",
            "s3:GetObjectTagging",
            "s3:DeleteObjectTagging",
            "s3:ListBucket",
        ] {
            assert!(!owner_grants(a), "{a}");
        }
    }
}
