//! Strata's S3 REST gateway.
//!
//! Owns everything that is HTTP: routing requests to S3 operations ([`router`]), SigV4 authentication
//! ([`auth`]), XML documents ([`xml`]), S3 error codes ([`error`], the one place errors become codes and
//! statuses), conditional requests and ranges, and streaming bodies between sockets and the storage engine.
//! It knows nothing of disks or erasure coding: it calls `strata_storage::Engine` only.
//!
//! A request flows: [`server`] (connection, timeouts, request id) → [`auth::authenticate`] → [`router::route`]
//! → authorization → [`handlers::dispatch`] → one `handle_<op>` in the operation family's module.

pub mod access;
pub mod admin;
pub mod auth;
pub mod conditional;
pub mod cors;
pub mod credentials;
pub mod error;
pub mod handlers;
mod host;
pub mod post_policy;
pub mod range;
pub mod router;
pub mod server;
pub mod website;
pub mod xml;

pub use credentials::UserStore;
pub use handlers::Ctx;
pub use server::serve;
