//! Strata's S3 REST gateway.
//!
//! Owns everything that is HTTP: routing requests to S3 operations, SigV4 authentication, XML documents,
//! S3 error codes and the streaming of bodies between sockets and the storage engine. It knows nothing of
//! disks or erasure coding: it calls the storage engine through its public API only.

pub mod auth;
pub mod error;
