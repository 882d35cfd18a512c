//! Which failed upstream attempts are sent again, and after how long: reads on
//! 5xx (but 501), 429 and transport failures; anything else only when the request
//! provably never left; and, once per call, one whose credentials upstream rejected.

use std::time::Duration;

use http::Method;

use super::error::{RestError, TransportKind};

/// The status upstream answers when it does not accept the credentials.
const UNAUTHORIZED: u16 = 401;
/// "Not implemented" will not change by asking again.
const NOT_IMPLEMENTED: u16 = 501;

/// Exponential backoff with jitter, bounded in attempts and pause length.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first one included. 1 disables retries.
    pub max_attempts: u32,
    /// Pause before the second attempt (before jitter); doubles with each retry.
    pub base_pause: Duration,
    /// No backoff pause is longer, whatever the attempt count. A longer
    /// Retry-After from upstream is still honoured (the call's deadline bounds it).
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

/// What the retry decision needs to know of one failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// Upstream answered with an error status, maybe saying when to come back.
    Status {
        /// The HTTP status.
        status: u16,
        /// Upstream's Retry-After.
        retry_after: Option<Duration>,
    },
    /// No answer came; the kind says whether the request may have left.
    Transport(TransportKind),
    /// Nothing another attempt could fix (a deadline, a request that cannot be built).
    Final,
}

impl From<&RestError> for Failure {
    fn from(error: &RestError) -> Failure {
        match error {
            RestError::Status {
                status, retry_after, ..
            } => Failure::Status {
                status: *status,
                retry_after: *retry_after,
            },
            RestError::Transport { kind, .. } => Failure::Transport(*kind),
            _ => Failure::Final,
        }
    }
}

/// How far one call has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Progress {
    /// Attempts counted against `max_attempts` so far, the first one included.
    pub(crate) attempt: u32,
    /// Whether a rejection of the credentials was already answered by sending again.
    pub(crate) resent_after_rejection: bool,
}

impl Progress {
    /// Before the first attempt's outcome is known.
    pub(crate) fn first() -> Progress {
        Progress {
            attempt: 1,
            resent_after_rejection: false,
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Next {
    /// Upstream rejected the credentials: the authorizer decides whether fresh
    /// ones are worth sending at once. A 401 means nothing was done, so even a
    /// write may go again; it does not count as an attempt.
    AskAuthorizer,
    /// Send again after this pause.
    RetryAfter(Duration),
    /// The failure is final.
    GiveUp,
}

impl RetryPolicy {
    /// The decision after a failed attempt. `jitter` is a number in [0, 1)
    /// that spreads the pause; the caller draws it, so the decision is exact.
    pub(crate) fn next(&self, method: &Method, failure: Failure, progress: Progress, jitter: f64) -> Next {
        let rejected = matches!(
            failure,
            Failure::Status {
                status: UNAUTHORIZED,
                ..
            }
        );
        if rejected && !progress.resent_after_rejection {
            return Next::AskAuthorizer;
        }
        match self.pause_before_retry(method, failure, progress.attempt, jitter) {
            Some(pause) => Next::RetryAfter(pause),
            None => Next::GiveUp,
        }
    }

    /// The pause before attempt `attempt + 1`, or None when the call must not be retried.
    pub(crate) fn pause_before_retry(
        &self,
        method: &Method,
        failure: Failure,
        attempt: u32,
        jitter: f64,
    ) -> Option<Duration> {
        if attempt >= self.max_attempts || !is_retryable(method, failure) {
            return None;
        }
        let exponential = self.base_pause.saturating_mul(1 << (attempt - 1).min(16));
        // Full jitter in the upper half keeps a herd of retries from lining up.
        let pause = exponential
            .min(self.max_pause)
            .mul_f64(0.5 + jitter.clamp(0.0, 1.0) / 2.0);
        // Never undercut what upstream asked: coming back sooner only earns another refusal.
        let asked = match failure {
            Failure::Status { retry_after, .. } => retry_after,
            _ => None,
        };
        Some(asked.map_or(pause, |asked| asked.max(pause)))
    }
}

/// Whether sending again is safe: a request that never left may always go
/// again; one that may have been acted on only when it is a read.
pub(crate) fn is_retryable(method: &Method, failure: Failure) -> bool {
    let read = method == Method::GET || method == Method::HEAD;
    match failure {
        Failure::Transport(TransportKind::Connect) => true,
        Failure::Transport(_) => read,
        Failure::Status { status, .. } => read && (status == 429 || (status >= 500 && status != NOT_IMPLEMENTED)),
        Failure::Final => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::{Operation, error::UpstreamFault};

    fn status(code: u16) -> Failure {
        Failure::Status {
            status: code,
            retry_after: None,
        }
    }

    fn after(attempt: u32) -> Progress {
        Progress {
            attempt,
            resent_after_rejection: false,
        }
    }

    /// (method, failure, attempt) -> retried?, for every row of the table.
    #[test]
    fn retries_reads_on_server_trouble_and_anything_that_never_left() {
        let policy = RetryPolicy::default();
        let connect = Failure::Transport(TransportKind::Connect);
        let timeout = Failure::Transport(TransportKind::Timeout);
        let broken = Failure::Transport(TransportKind::Io);
        let rows: [(Method, Failure, bool); 16] = [
            (Method::GET, status(429), true),
            (Method::GET, status(500), true),
            (Method::GET, status(501), false),
            (Method::GET, status(503), true),
            (Method::GET, status(404), false),
            (Method::GET, connect, true),
            (Method::GET, timeout, true),
            (Method::GET, broken, true),
            (Method::POST, status(429), false),
            (Method::POST, status(500), false),
            (Method::POST, status(501), false),
            (Method::POST, status(503), false),
            (Method::POST, status(404), false),
            (Method::POST, connect, true),
            (Method::POST, timeout, false),
            (Method::POST, broken, false),
        ];
        for (method, failure, retried) in rows {
            for attempt in 1..policy.max_attempts {
                let pause = policy.pause_before_retry(&method, failure, attempt, 0.5);
                assert_eq!(pause.is_some(), retried, "{method} {failure:?} attempt {attempt}");
            }
            let last = policy.pause_before_retry(&method, failure, policy.max_attempts, 0.5);
            assert_eq!(last, None, "{method} {failure:?}: no attempt after the last");
        }
        assert!(is_retryable(&Method::HEAD, status(502)));
        assert!(!is_retryable(&Method::PUT, status(502)));
        assert!(!is_retryable(&Method::DELETE, timeout));
        assert!(!is_retryable(&Method::GET, Failure::Final));
    }

    #[test]
    fn pauses_double_within_their_jitter_and_stay_bounded() {
        let policy = RetryPolicy {
            max_attempts: 10,
            ..RetryPolicy::default()
        };
        let pause = |attempt, jitter| policy.pause_before_retry(&Method::GET, status(500), attempt, jitter);
        assert_eq!(pause(1, 0.0), Some(Duration::from_millis(50)));
        assert_eq!(pause(1, 0.5), Some(Duration::from_millis(75)));
        assert_eq!(pause(2, 0.0), Some(Duration::from_millis(100)));
        assert_eq!(pause(3, 0.0), Some(Duration::from_millis(200)));
        assert_eq!(pause(9, 0.0), Some(Duration::from_secs(1)), "half the cap");
        assert_eq!(pause(9, 1.0), Some(Duration::from_secs(2)), "the cap");
    }

    #[test]
    fn retry_after_is_honoured_even_past_the_backoff_cap() {
        let policy = RetryPolicy::default();
        let asked = |seconds| Failure::Status {
            status: 503,
            retry_after: Some(Duration::from_secs(seconds)),
        };
        assert_eq!(
            policy.pause_before_retry(&Method::GET, asked(1), 1, 0.0),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            policy.pause_before_retry(&Method::GET, asked(3), 1, 1.0),
            Some(Duration::from_secs(3)),
            "never sooner than asked"
        );
        assert_eq!(
            policy.pause_before_retry(&Method::GET, asked(60), 1, 0.0),
            Some(Duration::from_secs(60))
        );
        assert_eq!(policy.pause_before_retry(&Method::POST, asked(1), 1, 0.0), None);
    }

    #[test]
    fn a_rejection_of_the_credentials_is_put_to_the_authorizer_once() {
        let policy = RetryPolicy::default();
        for method in [Method::GET, Method::POST] {
            assert_eq!(policy.next(&method, status(401), after(1), 0.0), Next::AskAuthorizer);
            assert_eq!(policy.next(&method, status(401), after(2), 0.0), Next::AskAuthorizer);
            let resent = Progress {
                resent_after_rejection: true,
                ..after(1)
            };
            assert_eq!(policy.next(&method, status(401), resent, 0.0), Next::GiveUp);
            assert_eq!(policy.next(&method, status(403), after(1), 0.0), Next::GiveUp);
        }
        assert_eq!(
            policy.next(&Method::GET, status(503), after(1), 0.0),
            Next::RetryAfter(Duration::from_millis(50))
        );
        assert_eq!(policy.next(&Method::GET, status(503), after(3), 0.0), Next::GiveUp);
    }

    #[test]
    fn reads_what_an_error_says_about_retrying() {
        let error = RestError::Status {
            operation: Operation::GetJob,
            status: 429,
            fault: UpstreamFault::default(),
            retry_after: Some(Duration::from_secs(3)),
        };
        assert_eq!(
            Failure::from(&error),
            Failure::Status {
                status: 429,
                retry_after: Some(Duration::from_secs(3))
            }
        );
        let deadline = RestError::DeadlineExceeded {
            operation: Operation::GetJob,
        };
        assert_eq!(Failure::from(&deadline), Failure::Final);
    }
}
