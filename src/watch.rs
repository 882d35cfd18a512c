//! JobHub: one upstream poller per watched job, shared by every WatchJob,
//! WaitJob and WatchJobs call on every connection. Watchers read the poller's
//! latest state from a `tokio::sync::watch` channel, so N watchers cost one
//! poll per interval and a slow watcher skips stale states instead of queueing them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::proto::pb::{self, JobStatus};
use crate::rest::jobs::JobsApi;
use crate::rest::{CallContext, RestError, Transport};

/// Upstream failure descriptions in heartbeats are cut here.
const SHORT_ERROR_LIMIT: usize = 80;

/// How watched jobs are polled and how watch streams are kept alive.
#[derive(Debug, Clone, PartialEq)]
pub struct WatchConfig {
    /// Pause before the next poll after a change (and after the first poll).
    pub poll_initial: Duration,
    /// The pause grows while the job does not change, up to this.
    pub poll_max: Duration,
    /// Factor the pause grows by after each poll that saw no change or
    /// failed; 1 keeps it at `poll_initial`.
    pub poll_backoff: f64,
    /// Random spread of each pause, as a fraction: 0.1 is +-10%. Keeps the
    /// pollers of jobs started together from polling in lockstep.
    pub poll_jitter: f64,
    /// A watch stream that sent nothing for this long sends a heartbeat.
    pub heartbeat: Duration,
    /// How long a terminal state is remembered, so later watchers get it
    /// without an upstream call.
    pub terminal_ttl: Duration,
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
        if self.heartbeat.is_zero() || self.http2_keepalive_timeout.is_zero() {
            return Err(WatchConfigError::Zero);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WatchConfigError {
    #[error("--watch-poll-initial must be more than zero and at most --watch-poll-max")]
    PollInterval,
    #[error("--watch-poll-backoff {0}: must be from 1 to 10")]
    Backoff(f64),
    #[error("--watch-poll-jitter {0}: must be from 0 up to (not including) 0.5")]
    Jitter(f64),
    #[error("--watch-heartbeat and --http2-keepalive-timeout must be more than zero")]
    Zero,
}

/// Why a watch ended other than with the job's terminal state. `crate::error`
/// turns it into the call's status.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WatchError {
    /// The gateway is shutting down; the watcher should watch again elsewhere.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// The job's poller went away without a final state (it should not).
    #[error("the watch was interrupted")]
    Interrupted,
    /// Upstream refused the poll for good (unknown job, bad credentials, ...).
    #[error(transparent)]
    Upstream(Arc<RestError>),
}

/// What the poller last learned about a job; watchers read it, never copy it whole.
#[derive(Debug, Default)]
struct Snapshot {
    /// None until the first successful poll.
    job: Option<Arc<pb::Job>>,
    /// Bumped on every change of `job`; watchers remember the last one they sent.
    version: u64,
    /// When the last successful poll answered.
    observed: Option<Observed>,
    consecutive_failures: u32,
    /// The last transient failure since the last successful poll.
    last_failure: Option<Arc<RestError>>,
    /// A permanent failure: the poller stopped and watchers end with it.
    end: Option<Arc<RestError>>,
}

#[derive(Debug, Clone, Copy)]
struct Observed {
    wall: SystemTime,
    at: Instant,
}

/// One state of a job as the gateway read it.
#[derive(Debug, Clone)]
pub struct JobState {
    pub job: Arc<pb::Job>,
    /// When the poll that read this state answered (or, for a state that has
    /// not changed since, a later poll).
    pub observed_at: SystemTime,
}

impl JobState {
    pub fn is_terminal(&self) -> bool {
        is_terminal(&self.job)
    }
}

/// How fresh a watcher's view is, sent when nothing changed for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    pub last_observed_at: Option<SystemTime>,
    pub staleness: Option<Duration>,
    pub consecutive_failures: u32,
    /// Short and free of secrets, e.g. "HTTP 503 (VBS.0001)".
    pub last_error: Option<String>,
}

#[derive(Debug, Clone)]
pub enum Event {
    Job(JobState),
    Heartbeat(Heartbeat),
}

/// Counters for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HubStats {
    /// Jobs being polled now.
    pub active_pollers: usize,
    /// Open watches (streams and waiting WaitJob calls, one per job of a WatchJobs).
    pub active_watchers: usize,
    /// Terminal jobs remembered for late watchers.
    pub remembered_terminal: usize,
    /// Polls started since the hub was made. A poll is one GET, plus the
    /// transport's own retries when that GET fails transiently.
    pub polls_total: u64,
    /// Polls that failed (transiently or for good).
    pub poll_failures_total: u64,
}

/// One job as seen with one set of credentials. Callers with different
/// pass-through tokens never share a poller (the token itself is not kept).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    project_id: String,
    job_id: String,
    token: Option<[u8; 32]>,
}

impl Key {
    fn new(ctx: &CallContext, job_id: &str) -> Key {
        let token = ctx.caller_token.as_ref().map(|token| {
            let mut hash = [0u8; 32];
            hash.copy_from_slice(&Sha256::digest(token.expose().as_bytes()));
            hash
        });
        Key {
            project_id: ctx.project_id.clone(),
            job_id: job_id.to_string(),
            token,
        }
    }
}

struct Entry {
    /// Tells this entry from a later one for the same key.
    id: u64,
    sender: watch::Sender<Snapshot>,
    polls: Arc<AtomicU64>,
    /// Set once terminal: late watchers get the state until then.
    terminal_until: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        self.terminal_until.is_some_and(|until| until <= now)
    }
}

struct Inner {
    transport: Arc<Transport>,
    config: WatchConfig,
    entries: Mutex<HashMap<Key, Entry>>,
    shutdown: CancellationToken,
    next_id: AtomicU64,
    active_pollers: AtomicUsize,
    active_watchers: AtomicUsize,
    polls_total: AtomicU64,
    poll_failures_total: AtomicU64,
}

/// The process's job watching hub; cheap to clone.
#[derive(Clone)]
pub struct JobHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JobHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JobHub").field("stats", &self.stats()).finish()
    }
}

impl JobHub {
    pub fn new(transport: Arc<Transport>, config: WatchConfig) -> JobHub {
        JobHub {
            inner: Arc::new(Inner {
                transport,
                config,
                entries: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                next_id: AtomicU64::new(1),
                active_pollers: AtomicUsize::new(0),
                active_watchers: AtomicUsize::new(0),
                polls_total: AtomicU64::new(0),
                poll_failures_total: AtomicU64::new(0),
            }),
        }
    }

    pub fn config(&self) -> &WatchConfig {
        &self.inner.config
    }

    /// Watches a job with heartbeats: for WatchJob and WatchJobs.
    pub fn watch(&self, ctx: &CallContext, job_id: &str) -> Result<Watcher, WatchError> {
        self.subscribe(ctx, job_id, Some(self.inner.config.heartbeat))
    }

    /// Watches a job without heartbeats: for WaitJob.
    pub fn wait(&self, ctx: &CallContext, job_id: &str) -> Result<Watcher, WatchError> {
        self.subscribe(ctx, job_id, None)
    }

    /// Ends every open watch with `WatchError::ShuttingDown`, stops every
    /// poller and refuses new watches. tonic's graceful shutdown waits for
    /// open streams, so this must run when shutdown starts.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    pub fn stats(&self) -> HubStats {
        let remembered_terminal = self
            .inner
            .entries()
            .values()
            .filter(|e| e.terminal_until.is_some())
            .count();
        HubStats {
            active_pollers: self.inner.active_pollers.load(Ordering::Relaxed),
            active_watchers: self.inner.active_watchers.load(Ordering::Relaxed),
            remembered_terminal,
            polls_total: self.inner.polls_total.load(Ordering::Relaxed),
            poll_failures_total: self.inner.poll_failures_total.load(Ordering::Relaxed),
        }
    }

    /// Polls started for a job the hub knows now (polling or remembered),
    /// whatever the caller's token; 0 when it knows none.
    pub fn job_polls(&self, project_id: &str, job_id: &str) -> u64 {
        self.inner
            .entries()
            .iter()
            .filter(|(key, _)| key.project_id == project_id && key.job_id == job_id)
            .map(|(_, entry)| entry.polls.load(Ordering::Relaxed))
            .sum()
    }

    fn subscribe(&self, ctx: &CallContext, job_id: &str, heartbeat: Option<Duration>) -> Result<Watcher, WatchError> {
        let inner = &self.inner;
        if inner.shutdown.is_cancelled() {
            return Err(WatchError::ShuttingDown);
        }
        let key = Key::new(ctx, job_id);
        let mut entries = inner.entries();
        let receiver = match entries.get(&key) {
            Some(entry) if !entry.expired(Instant::now()) => entry.sender.subscribe(),
            _ => {
                let (sender, receiver) = watch::channel(Snapshot::default());
                let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
                let polls = Arc::new(AtomicU64::new(0));
                let poller = Poller {
                    hub: inner.clone(),
                    key: key.clone(),
                    id,
                    sender: sender.clone(),
                    polls: polls.clone(),
                    ctx: CallContext {
                        project_id: ctx.project_id.clone(),
                        deadline: None,
                        caller_token: ctx.caller_token.clone(),
                    },
                };
                inner.active_pollers.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(poller.run());
                entries.insert(
                    key,
                    Entry {
                        id,
                        sender,
                        polls,
                        terminal_until: None,
                    },
                );
                receiver
            }
        };
        drop(entries);
        inner.active_watchers.fetch_add(1, Ordering::Relaxed);
        Ok(Watcher {
            receiver,
            hub: WatcherGuard(inner.clone()),
            heartbeat,
            sent_version: 0,
            finished: false,
        })
    }
}

impl Inner {
    fn entries(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Removes the entry `id` of `key`, unless it was replaced meanwhile.
    fn forget(&self, key: &Key, id: u64) {
        let mut entries = self.entries();
        if entries.get(key).is_some_and(|e| e.id == id) {
            entries.remove(key);
        }
    }

    /// Removes the entry when nobody watches it; false when a watcher came
    /// back (subscribing happens under the same lock, so this cannot race).
    fn forget_if_unwatched(&self, key: &Key, id: u64, sender: &watch::Sender<Snapshot>) -> bool {
        let mut entries = self.entries();
        if sender.receiver_count() > 0 {
            return false;
        }
        if entries.get(key).is_some_and(|e| e.id == id) {
            entries.remove(key);
        }
        true
    }

    fn remember_terminal(&self, key: &Key, id: u64) {
        let until = Instant::now() + self.config.terminal_ttl;
        if let Some(entry) = self.entries().get_mut(key).filter(|e| e.id == id) {
            entry.terminal_until = Some(until);
        }
    }
}

/// The task that polls one job for all its watchers.
struct Poller {
    hub: Arc<Inner>,
    key: Key,
    id: u64,
    sender: watch::Sender<Snapshot>,
    polls: Arc<AtomicU64>,
    ctx: CallContext,
}

/// How a poller's polling ended.
enum Stop {
    Terminal,
    Failed,
    Unwatched,
    Shutdown,
}

impl Poller {
    async fn run(self) {
        let stop = self.poll_until_done().await;
        self.hub.active_pollers.fetch_sub(1, Ordering::Relaxed);
        match stop {
            Stop::Terminal => {
                self.hub.remember_terminal(&self.key, self.id);
                let ttl = self.hub.config.terminal_ttl;
                tokio::select! {
                    () = self.hub.shutdown.cancelled() => {}
                    () = tokio::time::sleep(ttl) => {}
                }
                self.hub.forget(&self.key, self.id);
            }
            Stop::Failed | Stop::Shutdown => self.hub.forget(&self.key, self.id),
            Stop::Unwatched => {}
        }
    }

    async fn poll_until_done(&self) -> Stop {
        let config = &self.hub.config;
        let api = JobsApi {
            transport: &self.hub.transport,
            ctx: &self.ctx,
        };
        let mut pause = config.poll_initial;
        let mut last: Option<crate::rest::jobs::Job> = None;
        loop {
            self.polls.fetch_add(1, Ordering::Relaxed);
            self.hub.polls_total.fetch_add(1, Ordering::Relaxed);
            let result = tokio::select! {
                biased;
                () = self.hub.shutdown.cancelled() => return Stop::Shutdown,
                () = self.sender.closed() => {
                    if self.hub.forget_if_unwatched(&self.key, self.id, &self.sender) {
                        return Stop::Unwatched;
                    }
                    continue;
                }
                result = api.get_job(&self.key.job_id) => result,
            };
            let observed = Observed {
                wall: SystemTime::now(),
                at: Instant::now(),
            };
            match result {
                Ok(job) => {
                    let changed = (last.as_ref() != Some(&job)).then(|| Arc::new(pb::Job::from(job.clone())));
                    let terminal = changed.as_deref().is_some_and(is_terminal);
                    pause = match changed {
                        Some(_) => config.poll_initial,
                        None => grow(pause, config),
                    };
                    if changed.is_some() {
                        last = Some(job);
                    }
                    // Watchers are woken only by a change; freshness alone is
                    // read by their heartbeats.
                    self.sender.send_if_modified(|snapshot| {
                        snapshot.observed = Some(observed);
                        snapshot.consecutive_failures = 0;
                        snapshot.last_failure = None;
                        let Some(job) = changed else { return false };
                        snapshot.job = Some(job);
                        snapshot.version += 1;
                        true
                    });
                    if terminal {
                        return Stop::Terminal;
                    }
                }
                Err(error) if is_transient(&error) => {
                    self.hub.poll_failures_total.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(job_id = %self.key.job_id, error = %error, "job poll failed; will retry");
                    let asked = match &error {
                        RestError::Status { retry_after, .. } => retry_after.unwrap_or_default(),
                        _ => Duration::ZERO,
                    };
                    pause = grow(pause, config).max(asked.min(config.poll_max));
                    self.sender.send_if_modified(|snapshot| {
                        snapshot.consecutive_failures = snapshot.consecutive_failures.saturating_add(1);
                        snapshot.last_failure = Some(Arc::new(error));
                        false
                    });
                }
                Err(error) => {
                    self.hub.poll_failures_total.fetch_add(1, Ordering::Relaxed);
                    self.sender.send_modify(|snapshot| snapshot.end = Some(Arc::new(error)));
                    return Stop::Failed;
                }
            }
            tokio::select! {
                biased;
                () = self.hub.shutdown.cancelled() => return Stop::Shutdown,
                () = self.sender.closed() => {
                    if self.hub.forget_if_unwatched(&self.key, self.id, &self.sender) {
                        return Stop::Unwatched;
                    }
                }
                () = tokio::time::sleep(jittered(pause, config.poll_jitter)) => {}
            }
        }
    }
}

fn grow(pause: Duration, config: &WatchConfig) -> Duration {
    pause.mul_f64(config.poll_backoff).min(config.poll_max)
}

fn jittered(pause: Duration, jitter: f64) -> Duration {
    pause.mul_f64(1.0 + jitter * (2.0 * fastrand::f64() - 1.0))
}

fn is_terminal(job: &pb::Job) -> bool {
    matches!(job.status(), JobStatus::Success | JobStatus::Fail)
}

/// Failures that may pass: the poller keeps the last good state and retries.
/// Anything else (unknown job, bad credentials, a body that does not decode)
/// will not get better by asking again.
fn is_transient(error: &RestError) -> bool {
    match error {
        RestError::Transport { .. } | RestError::DeadlineExceeded { .. } => true,
        // IAM being unreachable may pass; IAM refusing the gateway's user will not.
        RestError::Credentials { rejected, .. } => !rejected,
        RestError::Status { status, .. } => matches!(status, 408 | 429) || (*status >= 500 && *status != 501),
        RestError::UnsafePathSegment { .. } | RestError::Build { .. } | RestError::Decode { .. } => false,
    }
}

/// A few words on a failed poll for heartbeats: never the upstream message,
/// which may echo request data.
fn short_error(error: &RestError) -> String {
    let mut text = match error {
        RestError::Status { status, fault, .. } => match &fault.code {
            Some(code) => format!("HTTP {status} ({code})"),
            None => format!("HTTP {status}"),
        },
        RestError::Transport { kind, .. } => format!("{kind} talking to VBS"),
        RestError::DeadlineExceeded { .. } => "VBS did not answer in time".to_string(),
        RestError::Credentials { .. } => "no usable upstream credentials".to_string(),
        RestError::UnsafePathSegment { .. } | RestError::Build { .. } => "request could not be built".to_string(),
        RestError::Decode { .. } => "VBS sent an unreadable body".to_string(),
    };
    if text.len() > SHORT_ERROR_LIMIT {
        let mut cut = SHORT_ERROR_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

/// Counts a watcher for as long as it lives and gives it the hub.
struct WatcherGuard(Arc<Inner>);

impl Drop for WatcherGuard {
    fn drop(&mut self) {
        self.0.active_watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One watcher of one job. Holds no queue: only a receiver of the poller's
/// latest state. Dropping it is leaving; the last one to leave stops the poller.
pub struct Watcher {
    receiver: watch::Receiver<Snapshot>,
    hub: WatcherGuard,
    heartbeat: Option<Duration>,
    sent_version: u64,
    finished: bool,
}

impl Watcher {
    /// The next thing to tell this watcher: the first known state, each new
    /// state, or a heartbeat after a quiet `heartbeat`. None once the
    /// terminal state or an error was returned.
    pub async fn next(&mut self) -> Option<Result<Event, WatchError>> {
        if self.finished {
            return None;
        }
        let quiet_until = self.heartbeat.map(|h| tokio::time::Instant::now() + h);
        loop {
            if let Some(news) = self.take_news() {
                return Some(news);
            }
            tokio::select! {
                biased;
                () = self.hub.0.shutdown.cancelled() => {
                    self.finished = true;
                    return Some(Err(WatchError::ShuttingDown));
                }
                changed = self.receiver.changed() => {
                    if changed.is_err() {
                        // The poller left without a final state.
                        self.finished = true;
                        return Some(Err(WatchError::Interrupted));
                    }
                }
                () = sleep_until(quiet_until) => return Some(Ok(Event::Heartbeat(self.heartbeat_now()))),
            }
        }
    }

    /// The latest state read, if any.
    pub fn latest(&self) -> Option<JobState> {
        let snapshot = self.receiver.borrow();
        Some(JobState {
            job: snapshot.job.clone()?,
            observed_at: snapshot.observed.map_or(SystemTime::UNIX_EPOCH, |o| o.wall),
        })
    }

    /// The transient failure of the last poll, if it failed.
    pub fn last_failure(&self) -> Option<Arc<RestError>> {
        self.receiver.borrow().last_failure.clone()
    }

    fn take_news(&mut self) -> Option<Result<Event, WatchError>> {
        let snapshot = self.receiver.borrow_and_update();
        if let Some(error) = &snapshot.end {
            self.finished = true;
            return Some(Err(WatchError::Upstream(error.clone())));
        }
        let job = snapshot.job.as_ref()?;
        if snapshot.version == self.sent_version {
            return None;
        }
        self.sent_version = snapshot.version;
        self.finished = is_terminal(job);
        Some(Ok(Event::Job(JobState {
            job: job.clone(),
            observed_at: snapshot.observed.map_or(SystemTime::UNIX_EPOCH, |o| o.wall),
        })))
    }

    fn heartbeat_now(&self) -> Heartbeat {
        let snapshot = self.receiver.borrow();
        Heartbeat {
            last_observed_at: snapshot.observed.map(|o| o.wall),
            staleness: snapshot.observed.map(|o| o.at.elapsed()),
            consecutive_failures: snapshot.consecutive_failures,
            last_error: snapshot.last_failure.as_deref().map(short_error),
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::Operation;
    use crate::rest::error::UpstreamFault;

    fn status(code: u16) -> RestError {
        RestError::Status {
            operation: Operation::GetJob,
            status: code,
            fault: UpstreamFault {
                code: Some("VBS.0001".into()),
                message: Some("token MIIsecret expired".into()),
            },
            retry_after: None,
        }
    }

    #[test]
    fn only_passing_trouble_is_retried() {
        for code in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient(&status(code)), "{code}");
        }
        for code in [400, 401, 403, 404, 409, 501] {
            assert!(!is_transient(&status(code)), "{code}");
        }
        let credentials = |rejected| RestError::Credentials {
            operation: Operation::GetJob,
            detail: "IAM".into(),
            rejected,
        };
        assert!(is_transient(&credentials(false)));
        assert!(!is_transient(&credentials(true)));
    }

    #[test]
    fn failure_texts_are_short_and_leave_out_upstream_messages() {
        let text = short_error(&status(503));
        assert_eq!(text, "HTTP 503 (VBS.0001)");
        assert!(!text.contains("MIIsecret"));
        let long = RestError::Status {
            operation: Operation::GetJob,
            status: 503,
            fault: UpstreamFault {
                code: Some("é".repeat(100)),
                message: None,
            },
            retry_after: None,
        };
        assert!(short_error(&long).len() <= SHORT_ERROR_LIMIT);
    }

    #[test]
    fn the_pause_grows_to_the_maximum_and_jitters_within_bounds() {
        let config = WatchConfig::default();
        let mut pause = config.poll_initial;
        for _ in 0..20 {
            pause = grow(pause, &config);
        }
        assert_eq!(pause, config.poll_max);
        for _ in 0..1000 {
            let jittered = jittered(Duration::from_secs(10), 0.1);
            assert!(jittered >= Duration::from_secs(9) && jittered <= Duration::from_secs(11));
        }
    }

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
    }

    #[test]
    fn callers_with_different_tokens_never_share_a_key() {
        let ctx = |token: Option<&str>| CallContext {
            project_id: "p".into(),
            deadline: None,
            caller_token: token.map(crate::rest::Secret::new),
        };
        let job = "4010b39b5281d3590152874bfa3b1604";
        assert_eq!(Key::new(&ctx(Some("a")), job), Key::new(&ctx(Some("a")), job));
        assert_ne!(Key::new(&ctx(Some("a")), job), Key::new(&ctx(Some("b")), job));
        assert_ne!(Key::new(&ctx(None), job), Key::new(&ctx(Some("a")), job));
        assert!(!format!("{:?}", Key::new(&ctx(Some("MIIsecret")), job)).contains("MIIsecret"));
    }
}
