//! End-to-end tests: a real gRPC client, the real gateway, real HTTP and the
//! simulator, each test in its own world on port 0. Here the gateway signs
//! with AK/SK; tests/e2e_iam.rs runs the core suite again with IAM tokens.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

mod auth;
mod backups;
mod budget;
mod callers;
mod cli;
mod clients;
mod csbs;
mod errors;
mod fidelity;
mod harness;
mod hostile;
mod idempotency;
mod jobs;
mod observability;
mod operations;
mod policies;
mod python_client;
mod server;
mod shares;
mod tags;
mod taurusdb;
mod tls;
mod validation;
mod watch;
mod zstack;

/// How the gateway authenticates in this binary's worlds.
pub(crate) const AUTH: harness::AuthMode = harness::AuthMode::AkSk;
