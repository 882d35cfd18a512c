//! How watched jobs are polled and how long-lived streams are kept alive.

use super::*;

/// How watched jobs are polled (WatchJob, WaitJob, WatchJobs) and how
/// long-lived streams are kept alive.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Pause between upstream polls of a watched job while few jobs are
    /// watched; with many, polls are spread over the project's share of
    /// --upstream-rate (--watch-budget-share) and come less often.
    #[arg(long = "watch-poll-initial", env = "VBS_WATCH_POLL_INITIAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_initial: Duration,
    /// Longest pause between upstream polls of a job whose polls fail (a
    /// longer Retry-After is cut to it).
    #[arg(long = "watch-poll-max", env = "VBS_WATCH_POLL_MAX", default_value = "10s", value_parser = parse_duration)]
    pub poll_max: Duration,
    /// Factor the poll pause grows by after each failed poll (1 to 10; 1 keeps it fixed).
    #[arg(long = "watch-poll-backoff", env = "VBS_WATCH_POLL_BACKOFF", default_value = "1.5")]
    pub poll_backoff: f64,
    /// Random spread of each poll pause, as a fraction (0.1 is +-10%; below 0.5).
    #[arg(long = "watch-poll-jitter", env = "VBS_WATCH_POLL_JITTER", default_value = "0.1")]
    pub poll_jitter: f64,
    /// A watch stream that sent nothing for this long sends a heartbeat.
    #[arg(long = "watch-heartbeat", env = "VBS_WATCH_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// How long a finished job's final state is kept for late watchers (in
    /// Redis too with --redis-url, for the watchers of every replica).
    #[arg(long = "watch-terminal-ttl", env = "VBS_WATCH_TERMINAL_TTL", default_value = "2m", value_parser = parse_duration)]
    pub terminal_ttl: Duration,
    /// Most jobs polled at once; watching one more job is RESOURCE_EXHAUSTED
    /// (watchers of jobs already polled are not counted against it).
    #[arg(long = "max-watched-jobs", env = "VBS_MAX_WATCHED_JOBS", default_value = "10000",
          value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
    pub max_jobs: u64,
    /// Interval of HTTP/2 PINGs to gRPC clients; 0 turns them off.
    #[arg(long = "http2-keepalive-interval", env = "VBS_HTTP2_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub http2_keepalive_interval: Duration,
    /// A client connection that does not answer a PING within this is closed.
    #[arg(long = "http2-keepalive-timeout", env = "VBS_HTTP2_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub http2_keepalive_timeout: Duration,
}

impl WatchArgs {
    pub(super) fn to_config(&self, poll_rate: Option<f64>) -> Result<WatchConfig, WatchConfigError> {
        let config = WatchConfig {
            poll_initial: self.poll_initial,
            poll_max: self.poll_max,
            poll_backoff: self.poll_backoff,
            poll_jitter: self.poll_jitter,
            heartbeat: self.heartbeat,
            terminal_ttl: self.terminal_ttl,
            max_jobs: usize::try_from(self.max_jobs).unwrap_or(usize::MAX),
            poll_rate,
            http2_keepalive_interval: (!self.http2_keepalive_interval.is_zero())
                .then_some(self.http2_keepalive_interval),
            http2_keepalive_timeout: self.http2_keepalive_timeout,
        };
        config.validate()?;
        Ok(config)
    }
}
