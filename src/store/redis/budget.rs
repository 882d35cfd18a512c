//! The upstream budget in Redis, shared by every replica: the same GCRA as
//! `MemoryBudget`, run by one Lua script (budget.lua) so a reservation is
//! atomic, on Redis's clock. While Redis is unreachable each replica keeps to
//! a budget of its own in memory.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::Script;
use tokio::time::Instant;

use super::RedisLink;
use crate::store::StoreError;
use crate::store::budget::{MemoryBudget, Rate, Slot, UpstreamBudget};

/// The reservation script; the replicas suite runs the same text against a real Redis.
pub(crate) const SCRIPT: &str = include_str!("budget.lua");

/// After Redis failed, how long reservations stay local before Redis is
/// asked again (so an outage costs one failed command per second, not one per request).
const RETRY_REDIS_AFTER: Duration = Duration::from_secs(1);

/// Per-project token buckets in Redis, with a local fallback.
///
/// The script reads Redis's `TIME` rather than taking the caller's clock:
/// replicas on different hosts drift apart, and a replica whose clock runs
/// ahead would find every bucket fuller than it is. With one clock the
/// arrival time stored is comparable whoever wrote it. Keys expire once their
/// bucket is full again, so idle projects cost nothing.
#[derive(Debug, Clone)]
pub(crate) struct RedisBudget {
    link: RedisLink,
    rate: Rate,
    script: Arc<Script>,
    local: MemoryBudget,
    /// Whether reservations are being made locally (Redis failed).
    on_local: Arc<AtomicBool>,
    /// Until when Redis is not asked again.
    local_until: Arc<Mutex<Option<Instant>>>,
}

impl RedisBudget {
    /// Buckets refilled at `rate`, kept in Redis through `link`.
    pub(crate) fn new(link: RedisLink, rate: Rate) -> RedisBudget {
        RedisBudget {
            link,
            rate,
            script: Arc::new(Script::new(SCRIPT)),
            local: MemoryBudget::new(rate),
            on_local: Arc::default(),
            local_until: Arc::default(),
        }
    }

    async fn reserve_now(&self, project: &str, max_wait: Duration) -> Slot {
        if !self.redis_due() {
            return self.reserve_locally(project, max_wait).await;
        }
        match self.reserve_shared(project, max_wait).await {
            Ok(slot) => {
                if self.on_local.swap(false, Ordering::Relaxed) {
                    tracing::info!("the upstream budget is shared through Redis again");
                }
                slot
            }
            Err(error) => {
                *self.local_until.lock().unwrap_or_else(PoisonError::into_inner) =
                    Some(Instant::now() + RETRY_REDIS_AFTER);
                if !self.on_local.swap(true, Ordering::Relaxed) {
                    tracing::warn!(%error, "the upstream budget cannot reach Redis; this replica keeps to a budget of its own until it answers");
                }
                self.reserve_locally(project, max_wait).await
            }
        }
    }

    fn redis_due(&self) -> bool {
        let until = *self.local_until.lock().unwrap_or_else(PoisonError::into_inner);
        until.is_none_or(|until| Instant::now() >= until)
    }

    async fn reserve_locally(&self, project: &str, max_wait: Duration) -> Slot {
        // MemoryBudget never fails.
        self.local
            .reserve(project, max_wait)
            .await
            .unwrap_or(Slot::After(Duration::ZERO))
    }

    async fn reserve_shared(&self, project: &str, max_wait: Duration) -> Result<Slot, StoreError> {
        let key = self.link.key(&["budget", project]);
        let args = [
            micros(self.rate.interval()),
            micros(self.rate.tolerance()),
            micros(max_wait),
        ]
        .map(|n| n.to_string());
        let (granted, wait): (i64, i64) = self
            .link
            .script(&self.script, &[&key], &[&args[0], &args[1], &args[2]])
            .await?;
        let wait = Duration::from_micros(u64::try_from(wait).unwrap_or(0));
        Ok(if granted == 1 {
            Slot::After(wait)
        } else {
            Slot::Exhausted { retry_after: wait }
        })
    }
}

impl UpstreamBudget for RedisBudget {
    fn reserve(&self, project: &str, max_wait: Duration) -> BoxFuture<'_, Result<Slot, StoreError>> {
        let project = project.to_string();
        Box::pin(async move { Ok(self.reserve_now(&project, max_wait).await) })
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}
