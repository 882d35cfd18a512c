//! The upstream budget: one token bucket per project that every upstream
//! request draws from (RPCs and job polls alike). `UpstreamBudget` is the
//! interface; `MemoryBudget` keeps the buckets in this process.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use tokio::time::Instant;

use super::StoreError;

/// Requests per second and burst of one project's bucket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rate {
    /// Requests per second, refilled continuously.
    pub(crate) per_second: f64,
    /// Requests that may go at once after a quiet spell.
    pub(crate) burst: u32,
}

impl Rate {
    /// The time one request takes of the budget.
    pub(crate) fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.per_second)
    }

    /// How far ahead of the steady rate a burst may run.
    pub(crate) fn tolerance(&self) -> Duration {
        self.interval() * self.burst.max(1).saturating_sub(1)
    }
}

/// What a reservation got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// The request may go after this pause (zero: at once). The slot is taken.
    After(Duration),
    /// No slot within the wait allowed; nothing was taken. A request made
    /// this much later would go at once.
    Exhausted {
        /// When to try again.
        retry_after: Duration,
    },
}

/// A token bucket per project, shared by everything that calls upstream.
/// Reservations are first come, first served: each takes the next free slot.
pub(crate) trait UpstreamBudget: Send + Sync + fmt::Debug {
    /// Takes the next slot of `project`'s bucket if it comes within `max_wait`.
    fn reserve(&self, project: &str, max_wait: Duration) -> BoxFuture<'_, Result<Slot, StoreError>>;
}

/// Projects whose bucket is full again are forgotten once this many are kept.
const IDLE_PROJECTS_KEPT: usize = 1024;

/// Buckets in this process's memory (the generic cell rate algorithm: one
/// instant per project, the theoretical arrival time of its next request).
#[derive(Debug, Clone)]
pub(crate) struct MemoryBudget {
    rate: Rate,
    next_arrival: Arc<Mutex<HashMap<String, Instant>>>,
}

impl MemoryBudget {
    /// Empty buckets that refill at `rate`.
    pub(crate) fn new(rate: Rate) -> MemoryBudget {
        MemoryBudget {
            rate,
            next_arrival: Arc::default(),
        }
    }

    fn reserve_at(&self, project: &str, max_wait: Duration, now: Instant) -> Slot {
        let mut next_arrival = self.next_arrival.lock().unwrap_or_else(PoisonError::into_inner);
        if next_arrival.len() >= IDLE_PROJECTS_KEPT && !next_arrival.contains_key(project) {
            // A project whose next arrival has passed has a full bucket: the
            // same as one never seen, so forgetting it changes nothing.
            next_arrival.retain(|_, at| *at > now);
        }
        let arrival = next_arrival.get(project).copied().unwrap_or(now).max(now);
        let wait = arrival.saturating_duration_since(now + self.rate.tolerance());
        if wait > max_wait {
            return Slot::Exhausted { retry_after: wait };
        }
        next_arrival.insert(project.to_string(), arrival + self.rate.interval());
        Slot::After(wait)
    }
}

impl UpstreamBudget for MemoryBudget {
    fn reserve(&self, project: &str, max_wait: Duration) -> BoxFuture<'_, Result<Slot, StoreError>> {
        let slot = self.reserve_at(project, max_wait, Instant::now());
        Box::pin(async move { Ok(slot) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    fn budget(per_second: f64, burst: u32) -> MemoryBudget {
        MemoryBudget::new(Rate { per_second, burst })
    }

    #[test]
    fn a_burst_goes_at_once_then_slots_follow_at_the_rate() {
        let budget = budget(10.0, 3);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(budget.reserve_at("p", ms(0), now), Slot::After(ms(0)));
        }
        assert_eq!(budget.reserve_at("p", ms(1000), now), Slot::After(ms(100)));
        assert_eq!(budget.reserve_at("p", ms(1000), now), Slot::After(ms(200)));
        assert_eq!(
            budget.reserve_at("p", ms(250), now),
            Slot::Exhausted { retry_after: ms(300) },
            "a slot beyond the wait allowed is not taken"
        );
        assert_eq!(budget.reserve_at("p", ms(300), now), Slot::After(ms(300)));
    }

    #[test]
    fn projects_have_buckets_of_their_own() {
        let budget = budget(1.0, 1);
        let now = Instant::now();
        assert_eq!(budget.reserve_at("a", ms(0), now), Slot::After(ms(0)));
        assert_eq!(budget.reserve_at("b", ms(0), now), Slot::After(ms(0)));
        assert_eq!(
            budget.reserve_at("a", ms(0), now),
            Slot::Exhausted { retry_after: ms(1000) }
        );
    }

    #[test]
    fn a_quiet_bucket_refills_up_to_its_burst_only() {
        let budget = budget(10.0, 2);
        let start = Instant::now();
        assert_eq!(budget.reserve_at("p", ms(0), start), Slot::After(ms(0)));
        let later = start + Duration::from_secs(60);
        assert_eq!(budget.reserve_at("p", ms(0), later), Slot::After(ms(0)));
        assert_eq!(budget.reserve_at("p", ms(0), later), Slot::After(ms(0)));
        assert_eq!(
            budget.reserve_at("p", ms(0), later),
            Slot::Exhausted { retry_after: ms(100) }
        );
    }

    #[test]
    fn over_any_stretch_of_time_no_more_than_rate_times_time_plus_burst_go() {
        let budget = budget(50.0, 5);
        let start = Instant::now();
        let mut sent = 0;
        // Ask every millisecond for two seconds, never waiting.
        for tick in 0..2000 {
            if budget.reserve_at("p", ms(0), start + ms(tick)) == Slot::After(ms(0)) {
                sent += 1;
            }
        }
        assert!((100..=105).contains(&sent), "{sent}");
    }

    #[test]
    fn many_projects_stay_bounded_in_memory() {
        let budget = budget(10.0, 1);
        let start = Instant::now();
        for i in 0..10 * IDLE_PROJECTS_KEPT {
            let now = start + Duration::from_secs(i as u64);
            budget.reserve_at(&format!("project-{i}"), ms(0), now);
        }
        let kept = budget.next_arrival.lock().unwrap().len();
        assert!(kept <= IDLE_PROJECTS_KEPT, "{kept}");
    }
}
