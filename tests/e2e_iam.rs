//! The gateway core suite again, with the gateway authenticating as an IAM
//! user whose tokens the simulator's IAM issues and its VBS API checks.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

#[path = "e2e/backups.rs"]
mod backups;
#[path = "e2e/errors.rs"]
mod errors;
// This binary starts every world as an IAM user, so AK/SK-only helpers go unused.
#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;
#[path = "e2e/jobs.rs"]
mod jobs;
#[path = "e2e/observability.rs"]
mod observability;
#[path = "e2e/policies.rs"]
mod policies;
#[path = "e2e/server.rs"]
mod server;
#[path = "e2e/validation.rs"]
mod validation;

/// How the gateway authenticates in this binary's worlds.
pub(crate) const AUTH: harness::AuthMode = harness::AuthMode::Iam;
