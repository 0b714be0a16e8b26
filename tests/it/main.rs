//! End-to-end tests: the real `strata` binary on an ephemeral port, driven by the official AWS SDK for Rust and
//! by raw HTTP where an SDK would hide the wire. One test binary, one module per topic.

mod access;
mod bench_smoke;
mod bucket;
mod cksum;
mod copy;
mod cors;
mod edge;
mod faults;
mod get;
mod harness;
mod list;
mod multipart;
mod object;
mod object_lock;
mod presigned_post;
mod sigv2;
mod sigv4;
mod smoke;
mod tagging;
mod timeouts;
mod users;
mod versioning;
mod website;
mod wire;
