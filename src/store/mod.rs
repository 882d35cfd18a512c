//! State that must be one per service rather than one per call: the records
//! of idempotent writes and the upstream budget. In memory by default; each
//! kind sits behind a small trait so a shared store (Redis, for replicas) can stand in.

pub(crate) mod budget;
pub(crate) mod idempotency;
pub(crate) mod redis;

/// A shared store could not be asked (it is down or unreachable).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the shared store is unavailable: {0}")]
pub(crate) struct StoreError(pub(crate) String);
