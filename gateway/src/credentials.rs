//! The users the gateway knows: the root user (from the environment or the data directory, never stored in the
//! metadata) and the users `strata admin user add` creates, which live in the replicated metadata
//! (`Engine::users`) and are mirrored here in memory so that [`CredentialStore::lookup`] stays synchronous.
//!
//! Every change goes to storage first and to memory only once it is durable, under one lock, so the mirror never
//! shows a user that a restart would lose. Identity is kept apart from the root special case: the root user is
//! just an [`Identity`] with `is_root` set.

use std::collections::HashMap;
use std::sync::{PoisonError, RwLock};

use strata_storage::{Engine, UserRecord};

use crate::auth::{CredentialStore, Identity};
use crate::error::{ApiError, ApiResult};

/// Root plus the stored users, keyed by access key.
#[derive(Debug)]
pub struct UserStore {
    root: Identity,
    root_secret: String,
    users: RwLock<HashMap<String, UserRecord>>,
    /// Serialises changes so that storage and the in-memory mirror apply them in the same order.
    writes: tokio::sync::Mutex<()>,
}

impl UserStore {
    /// A store holding only the root user (tests, and servers without stored users).
    pub fn with_root(access_key: &str, secret_key: &str) -> Self {
        Self {
            root: Identity {
                access_key: access_key.to_owned(),
                display_name: "root".to_owned(),
                is_root: true,
            },
            root_secret: secret_key.to_owned(),
            users: RwLock::default(),
            writes: tokio::sync::Mutex::default(),
        }
    }

    /// The root user plus every user stored in `engine`.
    pub async fn load(engine: &Engine, access_key: &str, secret_key: &str) -> ApiResult<Self> {
        let store = Self::with_root(access_key, secret_key);
        let users = engine.users().await?;
        store
            .users
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(users.into_iter().filter(|(ak, _)| ak != access_key));
        Ok(store)
    }

    /// The root user's identity.
    pub fn root(&self) -> &Identity {
        &self.root
    }

    /// Every stored user (root excluded), sorted by access key.
    pub fn list(&self) -> Vec<(String, UserRecord)> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<_> = users.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// One stored user.
    pub fn user(&self, access_key: &str) -> Option<UserRecord> {
        self.users
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(access_key)
            .cloned()
    }

    /// The identity policy attached to a stored user, if any (root has none: it may do anything).
    pub fn policy(&self, access_key: &str) -> Option<String> {
        self.user(access_key).and_then(|u| u.policy)
    }

    /// The display name for an owner id (an access key); the id itself for a user that no longer exists.
    pub fn display_name(&self, access_key: &str) -> String {
        match self.lookup(access_key) {
            Some((identity, _)) => identity.display_name,
            None => access_key.to_owned(),
        }
    }

    /// Adds a new user, durably. EntityAlreadyExists when the access key is taken (root's included), or when
    /// the new user could be confused with another in a policy (see [`Self::conflict`]).
    pub async fn add(
        &self,
        engine: &Engine,
        access_key: &str,
        record: UserRecord,
    ) -> ApiResult<()> {
        let _guard = self.writes.lock().await;
        if let Some(message) = self.conflict(access_key, &record.display_name) {
            return Err(ApiError::EntityAlreadyExists(message));
        }
        engine.put_user(access_key, record.clone()).await?;
        self.mirror(access_key, Some(record));
        Ok(())
    }

    /// Removes a user, durably. NoSuchEntity when there is none.
    pub async fn remove(&self, engine: &Engine, access_key: &str) -> ApiResult<()> {
        let _guard = self.writes.lock().await;
        self.existing(access_key)?;
        engine.delete_user(access_key).await?;
        self.mirror(access_key, None);
        Ok(())
    }

    /// Attaches (Some) or detaches (None) a user's identity policy, durably. NoSuchEntity when there is none.
    pub async fn set_policy(
        &self,
        engine: &Engine,
        access_key: &str,
        policy: Option<String>,
    ) -> ApiResult<()> {
        let _guard = self.writes.lock().await;
        let mut record = self.existing(access_key)?;
        record.policy = policy;
        engine.put_user(access_key, record.clone()).await?;
        self.mirror(access_key, Some(record));
        Ok(())
    }

    /// Why a user with this access key and display name may not be added, if it may not. Policies name users
    /// (`arn:aws:iam::…:user/NAME`) by display name or access key, so every name and key must stand for one
    /// user only: the access key must be new, the display name must be no other user's display name or access
    /// key, and the access key no other user's display name (root's name, `root`, is reserved).
    fn conflict(&self, access_key: &str, name: &str) -> Option<String> {
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        let root = (&self.root.access_key, &self.root.display_name);
        let mut others = users
            .iter()
            .map(|(k, u)| (k, &u.display_name))
            .chain(std::iter::once(root));
        if access_key == self.root.access_key || users.contains_key(access_key) {
            return Some(format!(
                "A user with access key {access_key} already exists."
            ));
        }
        others.find_map(|(key, other)| {
            if name == other || name == key {
                Some(format!("A user named {name} already exists."))
            } else if access_key == other {
                Some(format!(
                    "The access key {access_key} is another user's name."
                ))
            } else {
                None
            }
        })
    }

    fn existing(&self, access_key: &str) -> ApiResult<UserRecord> {
        self.user(access_key).ok_or_else(|| {
            ApiError::NoSuchEntity(format!(
                "The user with access key {access_key} cannot be found."
            ))
        })
    }

    fn mirror(&self, access_key: &str, record: Option<UserRecord>) {
        let mut users = self.users.write().unwrap_or_else(PoisonError::into_inner);
        match record {
            Some(r) => users.insert(access_key.to_owned(), r),
            None => users.remove(access_key),
        };
    }
}

impl CredentialStore for UserStore {
    fn lookup(&self, access_key: &str) -> Option<(Identity, String)> {
        if access_key == self.root.access_key {
            return Some((self.root.clone(), self.root_secret.clone()));
        }
        let users = self.users.read().unwrap_or_else(PoisonError::into_inner);
        users.get(access_key).map(|u| {
            (
                Identity {
                    access_key: access_key.to_owned(),
                    display_name: u.display_name.clone(),
                    is_root: false,
                },
                u.secret_key.clone(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(name: &str) -> UserRecord {
        UserRecord {
            secret_key: format!("{name}-secret"),
            display_name: name.to_owned(),
            policy: None,
            created_ms: 0,
        }
    }

    #[test]
    fn root_and_users_resolve_with_their_roles() {
        let store = UserStore::with_root("ROOT", "rootsecret");
        store.mirror("ALICE", Some(record("alice")));
        let (root, secret) = store.lookup("ROOT").unwrap();
        assert!(root.is_root);
        assert_eq!(secret, "rootsecret");
        let (alice, secret) = store.lookup("ALICE").unwrap();
        assert!(!alice.is_root);
        assert_eq!(alice.display_name, "alice");
        assert_eq!(secret, "alice-secret");
        assert!(store.lookup("NOBODY").is_none());
        assert_eq!(store.display_name("ALICE"), "alice");
        assert_eq!(store.display_name("ROOT"), "root");
        assert_eq!(store.display_name("GONE"), "GONE");
        store.mirror("ALICE", None);
        assert!(store.lookup("ALICE").is_none());
    }

    #[test]
    fn names_and_keys_stand_for_one_user() {
        let store = UserStore::with_root("ROOTKEY", "rootsecret");
        store.mirror("ALICEKEY", Some(record("alice")));
        assert_eq!(store.conflict("BOBKEY", "bob"), None);
        // The user's own access key may double as its name.
        assert_eq!(store.conflict("bob", "bob"), None);
        for (key, name) in [
            ("ALICEKEY", "alice2"),
            ("ROOTKEY", "someone"),
            ("OTHERKEY", "alice"),
            ("OTHERKEY", "ALICEKEY"),
            ("OTHERKEY", "ROOTKEY"),
            ("OTHERKEY", "root"),
            ("alice", "mallory"),
            ("root", "mallory"),
        ] {
            assert!(store.conflict(key, name).is_some(), "{key} {name}");
        }
    }
}
