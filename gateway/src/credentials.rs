//! A fixed set of users held in memory: the root user from the environment or the data directory, and later
//! the users `strata admin user add` creates. Identity is kept apart from the root special case: the root user
//! is just an [`Identity`] with `is_root` set.

use std::collections::HashMap;

use crate::auth::{CredentialStore, Identity};

/// Users keyed by access key.
#[derive(Debug, Default)]
pub struct StaticCredentials {
    users: HashMap<String, (Identity, String)>,
}

impl StaticCredentials {
    /// A store holding only the root user.
    pub fn with_root(access_key: &str, secret_key: &str) -> Self {
        let mut s = Self::default();
        s.add(
            Identity {
                access_key: access_key.to_owned(),
                display_name: "root".to_owned(),
                is_root: true,
            },
            secret_key,
        );
        s
    }

    /// Adds (or replaces) a user.
    pub fn add(&mut self, identity: Identity, secret_key: &str) {
        self.users.insert(
            identity.access_key.clone(),
            (identity, secret_key.to_owned()),
        );
    }
}

impl CredentialStore for StaticCredentials {
    fn lookup(&self, access_key: &str) -> Option<(Identity, String)> {
        self.users.get(access_key).cloned()
    }
}
