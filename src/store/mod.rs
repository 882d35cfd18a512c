//! State that must be one per service rather than one per call: the records
//! of idempotent writes, the upstream budget and the log of started operations. In memory by default; each
//! kind sits behind a small trait so a shared store (Redis, for replicas) can stand in.

use std::sync::Arc;
use std::time::Duration;

pub(crate) mod budget;
pub(crate) mod idempotency;
pub(crate) mod operations;
pub(crate) mod redis;

/// A shared store could not be asked (it is down or unreachable).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the shared store is unavailable: {0}")]
pub(crate) struct StoreError(pub(crate) String);

/// The upstream budget: in Redis when replicas share one, else in memory.
pub(crate) fn upstream_budget(redis: Option<&redis::RedisLink>, rate: budget::Rate) -> Arc<dyn budget::UpstreamBudget> {
    match redis {
        Some(link) => Arc::new(redis::budget::RedisBudget::new(link.clone(), rate)),
        None => Arc::new(budget::MemoryBudget::new(rate)),
    }
}

/// The log of started operations: in Redis when replicas share it, else in memory.
pub(crate) fn operation_log(
    redis: Option<&redis::RedisLink>,
    bounds: operations::LogBounds,
) -> Arc<dyn operations::OperationLog> {
    match redis {
        Some(link) => Arc::new(redis::operations::RedisOperationLog::new(link.clone(), bounds)),
        None => Arc::new(operations::MemoryLog::new(bounds)),
    }
}

/// The idempotency records: in Redis when replicas share them, else in memory.
/// `claim_lifetime`: the longest a write may run (see `RedisIdempotencyStore`).
pub(crate) fn idempotency_store(
    redis: Option<&redis::RedisLink>,
    retention: idempotency::Retention,
    claim_lifetime: Duration,
) -> Arc<dyn idempotency::IdempotencyStore> {
    match redis {
        Some(link) => Arc::new(redis::idempotency::RedisIdempotencyStore::new(
            link.clone(),
            retention.ttl,
            claim_lifetime,
        )),
        None => Arc::new(idempotency::MemoryStore::new(retention)),
    }
}
