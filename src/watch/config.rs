//! WatchConfig: how watched jobs are polled and how watch streams are kept
//! alive, checked once when the gateway starts.

use std::time::Duration;

/// How watched jobs are polled and how watch streams are kept alive.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// Pause between polls of a job while few jobs share the poll rate.
    pub poll_initial: Duration,
    /// The pause after failed polls grows up to this.
    pub poll_max: Duration,
    /// Factor the pause grows by after each failed poll; 1 keeps it at
    /// `poll_initial`.
    pub poll_backoff: f64,
    /// Random spread of each pause, as a fraction: 0.1 is +-10%. Keeps the
    /// pollers of jobs started together from polling in lockstep.
    pub poll_jitter: f64,
    /// A watch stream that sent nothing for this long sends a heartbeat.
    pub heartbeat: Duration,
    /// How long a terminal state is remembered, so later watchers get it
    /// without an upstream call (in the fleet too, when replicas share
    /// their pollers; there also the last state of a job still running).
    pub terminal_ttl: Duration,
    /// Most jobs polled at once; a watch of one more job is refused.
    pub max_jobs: usize,
    /// Polls per second the jobs of one group (for VBS, a project) may make
    /// together; with many jobs each is polled less often so that the group
    /// stays within it. None: every job is polled every `poll_initial`.
    pub poll_rate: Option<f64>,
    /// HTTP/2 PING interval on client connections; None turns pings off.
    pub http2_keepalive_interval: Option<Duration>,
    /// A connection whose PING is not answered within this is closed.
    pub http2_keepalive_timeout: Duration,
}

impl Default for WatchConfig {
    fn default() -> Self {
        WatchConfig {
            poll_initial: Duration::from_secs(1),
            poll_max: Duration::from_secs(10),
            poll_backoff: 1.5,
            poll_jitter: 0.1,
            heartbeat: Duration::from_secs(15),
            terminal_ttl: Duration::from_secs(120),
            max_jobs: 10_000,
            poll_rate: None,
            http2_keepalive_interval: Some(Duration::from_secs(30)),
            http2_keepalive_timeout: Duration::from_secs(10),
        }
    }
}

impl WatchConfig {
    /// Short intervals, so tests see changes within milliseconds of a clock step.
    pub fn for_testing() -> Self {
        WatchConfig {
            poll_initial: Duration::from_millis(20),
            poll_max: Duration::from_millis(100),
            heartbeat: Duration::from_secs(1),
            terminal_ttl: Duration::from_secs(5),
            ..WatchConfig::default()
        }
    }

    /// Checks the settings against each other and their ranges.
    pub fn validate(&self) -> Result<(), WatchConfigError> {
        if self.poll_initial.is_zero() || self.poll_initial > self.poll_max {
            return Err(WatchConfigError::PollInterval);
        }
        if !(1.0..=10.0).contains(&self.poll_backoff) {
            return Err(WatchConfigError::Backoff(self.poll_backoff));
        }
        if !(0.0..0.5).contains(&self.poll_jitter) {
            return Err(WatchConfigError::Jitter(self.poll_jitter));
        }
        if self.heartbeat.is_zero() || self.http2_keepalive_timeout.is_zero() || self.max_jobs == 0 {
            return Err(WatchConfigError::Zero);
        }
        if self.poll_rate.is_some_and(|rate| !(rate.is_finite() && rate > 0.0)) {
            return Err(WatchConfigError::PollRate);
        }
        Ok(())
    }
}

/// A watch setting out of range; the message names the flag.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WatchConfigError {
    /// The first pause is zero or longer than the longest.
    #[error("--watch-poll-initial must be more than zero and at most --watch-poll-max")]
    PollInterval,
    /// The backoff factor is outside 1..=10.
    #[error("--watch-poll-backoff {0}: must be from 1 to 10")]
    Backoff(f64),
    /// The jitter is outside 0..0.5.
    #[error("--watch-poll-jitter {0}: must be from 0 up to (not including) 0.5")]
    Jitter(f64),
    /// A heartbeat, keepalive timeout or job cap of zero.
    #[error("--watch-heartbeat, --http2-keepalive-timeout and --max-watched-jobs must be more than zero")]
    Zero,
    /// A poll rate that is not a positive number.
    #[error("the job hub's poll rate (--upstream-rate times --watch-budget-share) must be more than zero")]
    PollRate,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked() {
        assert_eq!(WatchConfig::default().validate(), Ok(()));
        assert_eq!(WatchConfig::for_testing().validate(), Ok(()));
        let bad = |change: fn(&mut WatchConfig)| {
            let mut config = WatchConfig::default();
            change(&mut config);
            config.validate().expect_err("invalid")
        };
        assert_eq!(bad(|c| c.poll_initial = Duration::ZERO), WatchConfigError::PollInterval);
        assert_eq!(
            bad(|c| c.poll_max = Duration::from_millis(10)),
            WatchConfigError::PollInterval
        );
        assert_eq!(bad(|c| c.poll_backoff = 0.5), WatchConfigError::Backoff(0.5));
        assert_eq!(bad(|c| c.poll_jitter = 0.5), WatchConfigError::Jitter(0.5));
        assert_eq!(bad(|c| c.heartbeat = Duration::ZERO), WatchConfigError::Zero);
        assert_eq!(bad(|c| c.max_jobs = 0), WatchConfigError::Zero);
        assert_eq!(bad(|c| c.poll_rate = Some(0.0)), WatchConfigError::PollRate);
    }
}
