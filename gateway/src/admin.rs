//! The admin API behind `strata admin user ...`: a small JSON API on the S3 listener, under
//! [`PREFIX`] (`/_strata/admin/v1/`), which can never be a bucket because bucket names cannot contain `_`.
//! Requests are SigV4-signed in the Authorization header with the body's SHA-256 (a presigned URL, an unsigned
//! payload or Signature Version 2 could be replayed with another body, so they get InvalidRequest) and only the
//! root user may call it; anyone else gets AccessDenied. Errors are S3 error documents (NoSuchEntity,
//! EntityAlreadyExists, InvalidArgument, MalformedPolicy), so one client error parser serves both APIs.
//!
//! | request | meaning |
//! | --- | --- |
//! | `GET users` | list users: `{"users":[{"access_key","display_name","created","has_policy"}]}` |
//! | `POST users` `{"name", "access_key"?, "secret_key"?}` | add a user (random keys when absent); answers the keys |
//! | `DELETE users/AK` | remove a user |
//! | `GET users/AK/policy` | the user's identity policy (NoSuchEntity when none) |
//! | `PUT users/AK/policy` (policy JSON) | attach an identity policy |
//! | `DELETE users/AK/policy` | detach it |

use bytes::Bytes;
use http::{HeaderValue, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use rand::Rng;
use serde::{Deserialize, Serialize};
use strata_storage::UserRecord;

use crate::error::{ApiError, ApiResult};
use crate::handlers::{Ctx, Req, Resp, empty};

/// The bucket-position path segment that marks an admin request (`/_strata/...`).
pub const SEGMENT: &str = "_strata";
/// Path prefix of the admin API, version 1.
pub const PREFIX: &str = "/_strata/admin/v1/";
/// Largest request body accepted (a policy document is at most a few KiB in AWS: 2 KiB for users).
const MAX_BODY: usize = 64 * 1024;

/// POST users body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AddUser {
    name: String,
    access_key: Option<String>,
    secret_key: Option<String>,
}

/// One user as the API shows it; the secret only in the answer to the request that created it.
#[derive(Debug, Serialize)]
struct UserView {
    access_key: String,
    display_name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret_key: Option<String>,
    created: String,
    has_policy: bool,
}

/// Serves one admin request; `rest` is the path after `/_strata/` (already percent-decoded).
pub async fn handle(ctx: &Ctx, mut req: Req, rest: &str) -> ApiResult<Resp> {
    if !req.identity.as_ref().is_some_and(|i| i.is_root) {
        return Err(ApiError::AccessDenied);
    }
    let segments: Vec<&str> = rest.trim_end_matches('/').split('/').collect();
    let method = req.parts.method.clone();
    match (method, segments.as_slice()) {
        (Method::GET, ["admin", "v1", "users"]) => list_users(ctx),
        (Method::POST, ["admin", "v1", "users"]) => {
            let body = req.read_small_body(ctx.client_timeout, MAX_BODY).await?;
            add_user(ctx, &body).await
        }
        (Method::DELETE, ["admin", "v1", "users", ak]) => {
            ctx.creds.remove(&ctx.engine, ak).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::GET, ["admin", "v1", "users", ak, "policy"]) => get_policy(ctx, ak),
        (Method::PUT, ["admin", "v1", "users", ak, "policy"]) => {
            let body = req.read_small_body(ctx.client_timeout, MAX_BODY).await?;
            let policy = validate_policy(&body)?;
            ctx.creds.set_policy(&ctx.engine, ak, Some(policy)).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (Method::DELETE, ["admin", "v1", "users", ak, "policy"]) => {
            ctx.creds.set_policy(&ctx.engine, ak, None).await?;
            Ok(empty(StatusCode::NO_CONTENT))
        }
        (
            _,
            ["admin", "v1", "users"]
            | ["admin", "v1", "users", _]
            | ["admin", "v1", "users", _, "policy"],
        ) => Err(ApiError::MethodNotAllowed),
        _ => Err(ApiError::InvalidRequest(format!(
            "Unknown admin API path /{SEGMENT}/{rest}"
        ))),
    }
}

fn list_users(ctx: &Ctx) -> ApiResult<Resp> {
    let users: Vec<UserView> = ctx
        .creds
        .list()
        .into_iter()
        .map(|(ak, r)| view(ak, &r, false))
        .collect();
    json(StatusCode::OK, &serde_json::json!({ "users": users }))
}

async fn add_user(ctx: &Ctx, body: &[u8]) -> ApiResult<Resp> {
    let add: AddUser = serde_json::from_slice(body)
        .map_err(|e| ApiError::InvalidArgument(format!("Invalid user document: {e}")))?;
    check_display_name(&add.name)?;
    let access_key = match add.access_key {
        Some(ak) => check_key("access key", ak, 3, "._-")?,
        None => random_key(20, ACCESS_ALPHABET),
    };
    let secret_key = match add.secret_key {
        Some(sk) => check_key("secret key", sk, 8, "+/=._-")?,
        None => random_key(40, SECRET_ALPHABET),
    };
    let record = UserRecord {
        secret_key,
        display_name: add.name,
        policy: None,
        created_ms: chrono::Utc::now().timestamp_millis(),
    };
    ctx.creds
        .add(&ctx.engine, &access_key, record.clone())
        .await?;
    json(StatusCode::OK, &view(access_key, &record, true))
}

fn get_policy(ctx: &Ctx, access_key: &str) -> ApiResult<Resp> {
    let user = ctx.creds.user(access_key).ok_or_else(|| {
        ApiError::NoSuchEntity(format!(
            "The user with access key {access_key} cannot be found."
        ))
    })?;
    let policy = user.policy.ok_or_else(|| {
        ApiError::NoSuchEntity(format!(
            "The user with access key {access_key} has no policy."
        ))
    })?;
    Ok(body_response(
        StatusCode::OK,
        Bytes::from(policy),
        "application/json",
    ))
}

fn view(access_key: String, r: &UserRecord, with_secret: bool) -> UserView {
    let created = chrono::DateTime::from_timestamp_millis(r.created_ms).unwrap_or_default();
    UserView {
        access_key,
        display_name: r.display_name.clone(),
        secret_key: with_secret.then(|| r.secret_key.clone()),
        created: crate::conditional::iso8601(created),
        has_policy: r.policy.is_some(),
    }
}

/// Checks that `body` is a valid identity policy (the access module's parser: JSON, Statement, actions,
/// resources, conditions, no Principal) and returns it as text.
pub fn validate_policy(body: &[u8]) -> ApiResult<String> {
    crate::access::Policy::parse(body, crate::access::Scope::Identity)?;
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::MalformedPolicy("Policy is not valid UTF-8".into()))?;
    Ok(text.to_owned())
}

fn check_display_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+=,.@_-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(ApiError::InvalidArgument(
            "A user name must be 1 to 64 characters of letters, digits and +=,.@_-".into(),
        ))
    }
}

/// Access keys appear in URL paths and credential scopes, so they are letters, digits and `._-` only;
/// secrets may also hold `+/=` (base64).
fn check_key(what: &str, key: String, min: usize, extra: &str) -> ApiResult<String> {
    const MAX: usize = 128;
    let ok = (min..=MAX).contains(&key.len())
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.as_bytes().contains(&b));
    if ok {
        Ok(key)
    } else {
        Err(ApiError::InvalidArgument(format!(
            "The {what} must be {min} to {MAX} characters of letters, digits and {extra}"
        )))
    }
}

const ACCESS_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

fn random_key(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

fn json<T: Serialize>(status: StatusCode, value: &T) -> ApiResult<Resp> {
    let body = serde_json::to_vec(value).map_err(ApiError::internal)?;
    Ok(body_response(status, Bytes::from(body), "application/json"))
}

fn body_response(status: StatusCode, body: Bytes, content_type: &'static str) -> Resp {
    let mut r = Resp::new(Full::new(body).map_err(|e| match e {}).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static(content_type),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_need_json_with_a_statement() {
        let ok = br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#;
        assert!(validate_policy(ok).is_ok());
        let unknown_action = br#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:Fly","Resource":"*"}]}"#;
        assert!(matches!(
            validate_policy(unknown_action),
            Err(ApiError::MalformedPolicy(_))
        ));
        for bad in [
            &b"not json"[..],
            b"[]",
            br#"{"Version":"2012-10-17"}"#,
            br#"{"Statement":[]}"#,
            br#"{"Statement":"x"}"#,
            br#"{"Statement":{"Effect":"Allow","Action":"s3:Nope","Resource":"*"}}"#,
            br#"{"Statement":{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}}"#,
        ] {
            assert!(
                matches!(validate_policy(bad), Err(ApiError::MalformedPolicy(_))),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn names_and_keys_are_checked() {
        assert!(check_display_name("alice").is_ok());
        assert!(check_display_name("").is_err());
        assert!(check_display_name("a b").is_err());
        assert!(check_key("access key", "AK".into(), 3, "._-").is_err());
        assert!(check_key("access key", "AKIA123".into(), 3, "._-").is_ok());
        assert!(check_key("access key", "AK/IA123".into(), 3, "._-").is_err());
        assert!(check_key("secret key", "short".into(), 8, "+/=._-").is_err());
        assert!(check_key("secret key", "a+b/c=d0".into(), 8, "+/=._-").is_ok());
        assert_eq!(random_key(20, ACCESS_ALPHABET).len(), 20);
    }
}
