//! End-to-end tests: the real `strata` binary on an ephemeral port, driven by the official AWS SDK for Rust and
//! by raw HTTP where an SDK would hide the wire. One test binary, one module per topic.

mod harness;
mod smoke;
