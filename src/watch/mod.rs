//! JobHub: one poller per watched job, shared by every WatchJob, WaitJob and
//! WatchJobs call on every connection. Watchers read the poller's latest state
//! from a `tokio::sync::watch` channel, so N watchers cost one poll per
//! interval and a slow watcher skips stale states instead of queueing them.
//!
//! What is polled is a [`JobSource`]: the hub knows no wire type, transport
//! or contract. `crate::grpc::jobs::job_source` plugs the VBS job API in.

mod config;
mod fleet;
mod poller;
mod schedule;
mod source;
mod watcher;

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use config::{WatchConfig, WatchConfigError};
pub use fleet::{Claim, Fleet, FleetError, FleetFuture, Notice, SharedState};
pub use source::{Failure, JobSource};
pub use watcher::Watcher;

use poller::Poller;

/// Failure descriptions in heartbeats are cut here.
const SHORT_ERROR_LIMIT: usize = 80;

/// Why a watch ended other than with the job's terminal state; `E` is the
/// source's error. `crate::error` turns it into the call's status.
#[derive(Debug, thiserror::Error)]
pub enum WatchError<E> {
    /// The gateway is shutting down; the watcher should watch again elsewhere.
    #[error("the gateway is shutting down")]
    ShuttingDown,
    /// The job's poller went away without a final state (it should not).
    #[error("the watch was interrupted")]
    Interrupted,
    /// `WatchConfig::max_jobs` jobs are being polled; this one would be one more.
    #[error("the gateway already polls its maximum of {limit} jobs")]
    TooManyJobs {
        /// The maximum (`--max-watched-jobs`).
        limit: usize,
    },
    /// The source refused the poll for good (unknown job, bad credentials, ...).
    /// Shared by every watcher of the job, hence the `Arc`.
    #[error(transparent)]
    Upstream(Arc<E>),
}

impl<E> Clone for WatchError<E> {
    fn clone(&self) -> Self {
        match self {
            WatchError::ShuttingDown => WatchError::ShuttingDown,
            WatchError::Interrupted => WatchError::Interrupted,
            WatchError::TooManyJobs { limit } => WatchError::TooManyJobs { limit: *limit },
            WatchError::Upstream(error) => WatchError::Upstream(error.clone()),
        }
    }
}

/// What the poller last learned about a job; watchers read it, never copy it whole.
struct Snapshot<S: JobSource> {
    /// None until the first successful poll.
    job: Option<Arc<S::State>>,
    /// Bumped on every change of `job`; watchers remember the last one they sent.
    version: u64,
    /// Where `job` stands among the states of the job the whole fleet saw
    /// (`SharedState::version`): a state from the fleet is taken only when
    /// it is newer. Unlike `version`, it may grow with no change for watchers.
    order: u64,
    /// When the last successful poll answered.
    observed: Option<Observed>,
    consecutive_failures: u32,
    /// The last transient failure since the last successful poll.
    last_failure: Option<Arc<S::Error>>,
    /// A permanent failure: the poller stopped and watchers end with it.
    end: Option<Arc<S::Error>>,
    /// The hub is shutting down: watchers end with `WatchError::ShuttingDown`.
    /// Told through the snapshot, so a watcher waits on nothing but its
    /// job's channel (and its heartbeat).
    shutting_down: bool,
    /// Whether the job is polled for the fleet or by this process alone.
    coordination: Coordination,
}

impl<S: JobSource> Default for Snapshot<S> {
    fn default() -> Self {
        Snapshot {
            job: None,
            version: 0,
            order: 0,
            observed: None,
            consecutive_failures: 0,
            last_failure: None,
            end: None,
            shutting_down: false,
            coordination: Coordination::Alone,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Observed {
    wall: SystemTime,
    at: Instant,
}

impl Observed {
    fn now() -> Observed {
        Observed {
            wall: SystemTime::now(),
            at: Instant::now(),
        }
    }

    /// A read made on another replica at `unix_ms`.
    fn at_unix_ms(unix_ms: u64) -> Observed {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_millis(unix_ms);
        let age = SystemTime::now().duration_since(wall).unwrap_or_default();
        let now = Instant::now();
        Observed {
            wall,
            at: now.checked_sub(age).unwrap_or(now),
        }
    }
}

/// Milliseconds since the Unix epoch, for the versions of job states. Read
/// from the monotonic clock (set from the wall clock once per process), so a
/// wall clock set back never numbers a newer state below an older one, and
/// tests on tokio's paused clock number states by that clock.
fn unix_ms_now() -> u64 {
    static ANCHOR: OnceLock<(tokio::time::Instant, SystemTime)> = OnceLock::new();
    let (at, wall) = *ANCHOR.get_or_init(|| (tokio::time::Instant::now(), SystemTime::now()));
    let now = wall + tokio::time::Instant::now().saturating_duration_since(at);
    let since_epoch = now.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

/// How a job is polled, as its heartbeats tell.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Coordination {
    /// No fleet is configured: this gateway polls its jobs itself.
    #[default]
    Alone,
    /// One replica polls the job for every replica (this one or another).
    Shared,
    /// The fleet cannot be reached: this replica polls the job itself
    /// until it can again.
    LocalFallback,
}

/// One state of a job as the gateway read it.
pub struct JobState<S: JobSource> {
    /// The state, shared with every other watcher of the job.
    pub job: Arc<S::State>,
    /// When the poll that read this state answered (or, for a state that has
    /// not changed since, a later poll).
    pub observed_at: SystemTime,
}

impl<S: JobSource> JobState<S> {
    /// Whether the job is over.
    pub fn is_terminal(&self) -> bool {
        S::is_terminal(&self.job)
    }
}

impl<S: JobSource> Clone for JobState<S> {
    fn clone(&self) -> Self {
        JobState {
            job: self.job.clone(),
            observed_at: self.observed_at,
        }
    }
}

impl<S: JobSource> fmt::Debug for JobState<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobState")
            .field("job", &self.job)
            .field("observed_at", &self.observed_at)
            .finish()
    }
}

/// How fresh a watcher's view is, sent when nothing changed for a while.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heartbeat {
    /// When the last successful poll answered; None before the first.
    pub last_observed_at: Option<SystemTime>,
    /// How long ago that was.
    pub staleness: Option<Duration>,
    /// Polls that failed since the last successful one.
    pub consecutive_failures: u32,
    /// Short and free of secrets, e.g. "HTTP 503 (VBS.0001)".
    pub last_error: Option<String>,
    /// Whether the job is polled for the whole fleet or by this replica.
    pub coordination: Coordination,
}

/// What a watcher is told next.
pub enum Event<S: JobSource> {
    /// The first known state of the job, or a new one.
    Job(JobState<S>),
    /// Nothing changed for a while.
    Heartbeat(Heartbeat),
}

impl<S: JobSource> fmt::Debug for Event<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Job(state) => f.debug_tuple("Job").field(state).finish(),
            Event::Heartbeat(beat) => f.debug_tuple("Heartbeat").field(beat).finish(),
        }
    }
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
    /// Polls started since the hub was made. A poll is one call of the
    /// source (for VBS one GET, plus the transport's own retries when that
    /// GET fails transiently).
    pub polls_total: u64,
    /// Polls that failed (transiently or for good).
    pub poll_failures_total: u64,
    /// Jobs this replica polls by itself because the fleet cannot be reached.
    pub local_fallback: usize,
}

/// A read-only view of a hub's counters, whatever its source: for metrics
/// exporters (the gateway's own `/metrics`, or an embedder's) and tests.
#[derive(Clone)]
pub struct HubMonitor(Arc<dyn Counters>);

impl HubMonitor {
    /// The hub's counters now.
    pub fn stats(&self) -> HubStats {
        self.0.stats()
    }
}

impl fmt::Debug for HubMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("HubMonitor").field(&self.stats()).finish()
    }
}

/// Erases the hub's source from its counters.
trait Counters: Send + Sync {
    fn stats(&self) -> HubStats;
}

/// The jobs polled within one poll rate (for VBS, one project's).
struct Group {
    pollers: usize,
    /// When the next new job's first poll may come, once the rate is the limit.
    next_first_poll: tokio::time::Instant,
}

struct Entry<S: JobSource> {
    /// Tells this entry from a later one for the same key.
    id: u64,
    sender: watch::Sender<Snapshot<S>>,
    /// Set once terminal: late watchers get the state until then.
    terminal_until: Option<Instant>,
}

impl<S: JobSource> Entry<S> {
    fn expired(&self, now: Instant) -> bool {
        self.terminal_until.is_some_and(|until| until <= now)
    }
}

struct Inner<S: JobSource> {
    source: S,
    config: WatchConfig,
    /// The replicas this one shares its pollers with; None: it is alone.
    fleet: Option<Arc<dyn Fleet>>,
    entries: Mutex<HashMap<S::Key, Entry<S>>>,
    /// Jobs being polled per group, which sets each group's pace.
    groups: Mutex<HashMap<String, Group>>,
    shutdown: CancellationToken,
    next_id: AtomicU64,
    active_pollers: AtomicUsize,
    active_watchers: AtomicUsize,
    polls_total: AtomicU64,
    poll_failures_total: AtomicU64,
    local_fallback: AtomicUsize,
}

/// The process's job watching hub for one source; cheap to clone.
pub struct JobHub<S: JobSource> {
    inner: Arc<Inner<S>>,
}

impl<S: JobSource> Clone for JobHub<S> {
    fn clone(&self) -> Self {
        JobHub {
            inner: self.inner.clone(),
        }
    }
}

impl<S: JobSource> fmt::Debug for JobHub<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobHub").field("stats", &self.stats()).finish()
    }
}

impl<S: JobSource> JobHub<S> {
    /// A hub that polls `source`, timed by `config`.
    pub fn new(source: S, config: WatchConfig) -> JobHub<S> {
        Self::build(source, config, None)
    }

    /// A hub that shares its pollers with the other replicas of `fleet`:
    /// each job is polled by one replica and followed by the others; while
    /// the fleet cannot be reached, this hub polls its jobs itself.
    pub fn shared(source: S, config: WatchConfig, fleet: Arc<dyn Fleet>) -> JobHub<S> {
        Self::build(source, config, Some(fleet))
    }

    fn build(source: S, config: WatchConfig, fleet: Option<Arc<dyn Fleet>>) -> JobHub<S> {
        JobHub {
            inner: Arc::new(Inner {
                source,
                config,
                fleet,
                entries: Mutex::new(HashMap::new()),
                groups: Mutex::new(HashMap::new()),
                shutdown: CancellationToken::new(),
                next_id: AtomicU64::new(1),
                active_pollers: AtomicUsize::new(0),
                active_watchers: AtomicUsize::new(0),
                polls_total: AtomicU64::new(0),
                poll_failures_total: AtomicU64::new(0),
                local_fallback: AtomicUsize::new(0),
            }),
        }
    }

    /// Watches a job with heartbeats: for WatchJob and WatchJobs.
    pub fn watch(&self, target: S::Target) -> Result<Watcher<S>, WatchError<S::Error>> {
        self.subscribe(target, Some(self.inner.config.heartbeat))
    }

    /// Watches a job without heartbeats: for WaitJob.
    pub fn wait(&self, target: S::Target) -> Result<Watcher<S>, WatchError<S::Error>> {
        self.subscribe(target, None)
    }

    /// Ends every open watch with `WatchError::ShuttingDown`, stops every
    /// poller and refuses new watches. tonic's graceful shutdown waits for
    /// open streams, so this must run when shutdown starts.
    pub fn shutdown(&self) {
        self.inner.shutdown.cancel();
    }

    /// The hub's counters now.
    pub fn stats(&self) -> HubStats {
        self.inner.stats()
    }

    /// A view of the counters that outlives no more than it must and names
    /// no source type.
    pub fn monitor(&self) -> HubMonitor {
        HubMonitor(self.inner.clone())
    }

    /// Joins the job's poller, starting one unless the job has a live
    /// (polling or remembered) one. `target` is kept only by a new poller.
    fn subscribe(&self, target: S::Target, heartbeat: Option<Duration>) -> Result<Watcher<S>, WatchError<S::Error>> {
        let inner = &self.inner;
        if inner.shutdown.is_cancelled() {
            return Err(WatchError::ShuttingDown);
        }
        let key = S::key(&target);
        let mut entries = inner.entries();
        let receiver = match entries.get(&key) {
            Some(entry) if !entry.expired(Instant::now()) => entry.sender.subscribe(),
            _ => {
                let limit = inner.config.max_jobs;
                if inner.active_pollers.load(Ordering::Relaxed) >= limit {
                    return Err(WatchError::TooManyJobs { limit });
                }
                let (sender, receiver) = watch::channel(Snapshot::default());
                let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
                let group = S::group(&key).to_string();
                inner.join_group(&group);
                let poller = Poller::new(inner.clone(), key.clone(), group, id, sender.clone(), target);
                inner.active_pollers.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(poller.run());
                entries.insert(
                    key,
                    Entry {
                        id,
                        sender,
                        terminal_until: None,
                    },
                );
                receiver
            }
        };
        drop(entries);
        Ok(Watcher::new(receiver, inner.clone(), heartbeat))
    }
}

impl<S: JobSource> Counters for Inner<S> {
    fn stats(&self) -> HubStats {
        let remembered_terminal = self.entries().values().filter(|e| e.terminal_until.is_some()).count();
        HubStats {
            active_pollers: self.active_pollers.load(Ordering::Relaxed),
            active_watchers: self.active_watchers.load(Ordering::Relaxed),
            remembered_terminal,
            polls_total: self.polls_total.load(Ordering::Relaxed),
            poll_failures_total: self.poll_failures_total.load(Ordering::Relaxed),
            local_fallback: self.local_fallback.load(Ordering::Relaxed),
        }
    }
}

impl<S: JobSource> Inner<S> {
    fn entries(&self) -> MutexGuard<'_, HashMap<S::Key, Entry<S>>> {
        // A panic while holding the lock cannot leave the map half-updated.
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn groups(&self) -> MutexGuard<'_, HashMap<String, Group>> {
        self.groups.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn join_group(&self, group: &str) {
        self.groups()
            .entry(group.to_string())
            .or_insert_with(|| Group {
                pollers: 0,
                next_first_poll: tokio::time::Instant::now(),
            })
            .pollers += 1;
    }

    fn leave_group(&self, group: &str) {
        let mut groups = self.groups();
        if let Some(entry) = groups.get_mut(group) {
            entry.pollers -= 1;
            if entry.pollers == 0 {
                groups.remove(group);
            }
        }
    }

    /// How often each job of `group` is polled now.
    fn pace(&self, group: &str) -> Duration {
        let pollers = self.groups().get(group).map_or(1, |entry| entry.pollers);
        schedule::pace(pollers, &self.config)
    }

    /// How long a new job of `group` waits for its first poll: its place in
    /// the group's queue of first polls (none while the group's jobs are
    /// few), so that a crowd of new watches is spread evenly over the rate.
    fn first_poll_wait(&self, group: &str) -> Duration {
        let now = tokio::time::Instant::now();
        let mut groups = self.groups();
        let Some(entry) = groups.get_mut(group) else {
            return Duration::ZERO;
        };
        let pace = schedule::pace(entry.pollers, &self.config);
        let (wait, next) = schedule::first_poll(now, entry.next_first_poll, pace, &self.config);
        entry.next_first_poll = next;
        wait
    }

    /// Removes the entry `id` of `key`, unless it was replaced meanwhile.
    fn forget(&self, key: &S::Key, id: u64) {
        let mut entries = self.entries();
        if entries.get(key).is_some_and(|e| e.id == id) {
            entries.remove(key);
        }
    }

    /// Removes the entry when nobody watches it; false when a watcher came
    /// back (subscribing happens under the same lock, so this cannot race).
    fn forget_if_unwatched(&self, key: &S::Key, id: u64, sender: &watch::Sender<Snapshot<S>>) -> bool {
        let mut entries = self.entries();
        if sender.receiver_count() > 0 {
            return false;
        }
        if entries.get(key).is_some_and(|e| e.id == id) {
            entries.remove(key);
        }
        true
    }

    fn remember_terminal(&self, key: &S::Key, id: u64) {
        let until = Instant::now() + self.config.terminal_ttl;
        if let Some(entry) = self.entries().get_mut(key).filter(|e| e.id == id) {
            entry.terminal_until = Some(until);
        }
    }
}

/// `text` cut to `SHORT_ERROR_LIMIT` bytes, on a character boundary.
fn shortened(mut text: String) -> String {
    if text.len() > SHORT_ERROR_LIMIT {
        let mut cut = SHORT_ERROR_LIMIT;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
    }
    text
}

#[cfg(test)]
mod tests;
