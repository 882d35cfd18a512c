//! State that must be one per service rather than one per call: the records
//! of idempotent writes. In memory by default; each kind sits behind a small
//! trait so a shared store (Redis, for replicas) can stand in.

pub(crate) mod idempotency;
