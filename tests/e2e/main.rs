//! End-to-end tests: a real gRPC client, the real gateway, real HTTP and the
//! simulator, each test in its own world on port 0.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

mod backups;
mod errors;
mod harness;
mod jobs;
mod policies;
mod rest_models;
mod server;
mod validation;
mod watch;
