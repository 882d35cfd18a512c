//! Which failed upstream calls may be tried again, and after how long: reads
//! on 5xx, 429 and transport failures; anything else only when the request
//! provably never left (the connection could not be opened).

use std::time::Duration;

use http::Method;

use super::error::{RestError, TransportKind};

/// Exponential backoff with jitter, bounded in attempts and pause length.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included. 1 disables retries.
    pub max_attempts: u32,
    pub base_pause: Duration,
    pub max_pause: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            base_pause: Duration::from_millis(100),
            max_pause: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// The pause before attempt `attempt + 1`, or None when the call must not be retried.
    pub fn pause_before_retry(&self, method: &Method, error: &RestError, attempt: u32) -> Option<Duration> {
        if attempt >= self.max_attempts || !is_retryable(method, error) {
            return None;
        }
        let exponential = self.base_pause.saturating_mul(1 << (attempt - 1).min(16));
        // Full jitter in the upper half keeps a herd of retries from lining up.
        let pause = exponential.min(self.max_pause).mul_f64(0.5 + fastrand::f64() / 2.0);
        let asked = match error {
            RestError::Status { retry_after, .. } => retry_after.map(|d| d.min(self.max_pause)),
            _ => None,
        };
        Some(asked.map_or(pause, |asked| asked.max(pause)))
    }
}

fn is_retryable(method: &Method, error: &RestError) -> bool {
    let read = method == Method::GET || method == Method::HEAD;
    match error {
        RestError::Transport {
            kind: TransportKind::Connect,
            ..
        } => true,
        RestError::Transport { .. } => read,
        RestError::Status { status, .. } => read && (*status == 429 || *status >= 500),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::{Operation, error::UpstreamFault};

    fn status(code: u16) -> RestError {
        RestError::Status {
            operation: Operation::GetJob,
            status: code,
            fault: UpstreamFault::default(),
            retry_after: None,
        }
    }

    #[test]
    fn retries_reads_on_server_trouble_only() {
        let policy = RetryPolicy::default();
        assert!(policy.pause_before_retry(&Method::GET, &status(503), 1).is_some());
        assert!(policy.pause_before_retry(&Method::GET, &status(429), 2).is_some());
        assert!(policy.pause_before_retry(&Method::GET, &status(503), 3).is_none());
        assert!(policy.pause_before_retry(&Method::GET, &status(404), 1).is_none());
        assert!(policy.pause_before_retry(&Method::POST, &status(503), 1).is_none());
    }

    #[test]
    fn pauses_grow_and_stay_bounded() {
        let policy = RetryPolicy {
            max_attempts: 10,
            ..RetryPolicy::default()
        };
        let first = policy.pause_before_retry(&Method::GET, &status(500), 1).unwrap();
        assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
        let late = policy.pause_before_retry(&Method::GET, &status(500), 9).unwrap();
        assert!(late <= policy.max_pause);
    }
}
