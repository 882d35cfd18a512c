//! Per-caller limits: a token bucket of calls per second and a count of open
//! job watches. Both are kept per caller name and survive a callers-file reload.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

/// What a caller may use at once; None turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Limits {
    /// Calls per second, refilled continuously.
    pub(crate) rate: Option<f64>,
    /// Calls a caller may make at once after a quiet spell.
    pub(crate) burst: u32,
    /// Job watches (WatchJob, WatchJobs, WaitJob) a caller may hold open.
    pub(crate) max_watches: Option<usize>,
}

/// The running counts of one caller.
#[derive(Debug, Default)]
pub(crate) struct CallerLimits {
    bucket: OnceLock<Mutex<TokenBucket>>,
    watches: Arc<AtomicUsize>,
}

impl CallerLimits {
    /// Takes one call from the bucket, or says how long until one is there.
    pub(crate) fn take_call(&self, limits: &Limits, now: Instant) -> Result<(), Duration> {
        let Some(rate) = limits.rate else {
            return Ok(());
        };
        let bucket = self
            .bucket
            .get_or_init(|| Mutex::new(TokenBucket::new(rate, limits.burst, now)));
        let mut bucket = bucket.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        bucket.take(now)
    }

    /// Holds one open watch until the permit is dropped, unless the caller
    /// already holds its maximum.
    pub(crate) fn open_watch(&self, limits: &Limits) -> Option<WatchPermit> {
        let open = self.watches.fetch_add(1, Ordering::AcqRel) + 1;
        let permit = WatchPermit {
            watches: self.watches.clone(),
        };
        match limits.max_watches {
            Some(max) if open > max => None,
            _ => Some(permit),
        }
    }
}

/// One open watch of a caller; dropping it closes the watch in the count.
#[derive(Debug)]
pub(crate) struct WatchPermit {
    watches: Arc<AtomicUsize>,
}

impl Drop for WatchPermit {
    fn drop(&mut self) {
        self.watches.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Calls per second with a burst: tokens refill at `rate` up to `burst`.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate: f64, burst: u32, now: Instant) -> TokenBucket {
        let burst = f64::from(burst.max(1));
        TokenBucket {
            rate,
            burst,
            tokens: burst,
            updated: now,
        }
    }

    /// One token, or the time until the next one.
    pub(crate) fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now.max(self.updated);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / self.rate))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let start = Instant::now();
        let mut bucket = TokenBucket::new(10.0, 3, start);
        assert!((0..3).all(|_| bucket.take(start).is_ok()));
        let wait = bucket.take(start).unwrap_err();
        assert!(
            wait > Duration::from_millis(90) && wait <= Duration::from_millis(100),
            "{wait:?}"
        );
        assert!(bucket.take(start + Duration::from_millis(100)).is_ok());
        assert!(bucket.take(start + Duration::from_millis(100)).is_err());
        let later = start + Duration::from_secs(60);
        assert!(
            (0..3).all(|_| bucket.take(later).is_ok()),
            "refills to the burst, not beyond"
        );
        assert!(bucket.take(later).is_err());
    }

    #[test]
    fn watches_are_counted_until_their_permit_drops() {
        let limits = Limits {
            rate: None,
            burst: 1,
            max_watches: Some(2),
        };
        let caller = CallerLimits::default();
        let first = caller.open_watch(&limits).unwrap();
        let _second = caller.open_watch(&limits).unwrap();
        assert!(caller.open_watch(&limits).is_none());
        assert_eq!(caller.watches.load(Ordering::Acquire), 2);
        drop(first);
        assert!(caller.open_watch(&limits).is_some());
        assert!(caller.take_call(&limits, Instant::now()).is_ok(), "no rate: no limit");
    }
}
