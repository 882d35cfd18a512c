//! Watcher: one watcher of one job. It holds no queue, only a receiver of the
//! poller's latest state, and tells its caller each new state, heartbeats
//! when nothing changed for a while, and how the watch ended.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::{Event, Heartbeat, Inner, JobSource, JobState, Snapshot, WatchError, shortened};

/// Counts a watcher for as long as it lives and gives it the hub.
struct WatcherGuard<S: JobSource>(Arc<Inner<S>>);

impl<S: JobSource> Drop for WatcherGuard<S> {
    fn drop(&mut self) {
        self.0.active_watchers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One watcher of one job. Holds no queue: only a receiver of the poller's
/// latest state. Dropping it is leaving; the last one to leave stops the poller.
pub struct Watcher<S: JobSource> {
    receiver: watch::Receiver<Snapshot<S>>,
    hub: WatcherGuard<S>,
    heartbeat: Option<Duration>,
    sent_version: u64,
    finished: bool,
}

impl<S: JobSource> Watcher<S> {
    pub(super) fn new(receiver: watch::Receiver<Snapshot<S>>, hub: Arc<Inner<S>>, heartbeat: Option<Duration>) -> Self {
        hub.active_watchers.fetch_add(1, Ordering::Relaxed);
        Watcher {
            receiver,
            hub: WatcherGuard(hub),
            heartbeat,
            sent_version: 0,
            finished: false,
        }
    }

    /// The next thing to tell this watcher: the first known state, each new
    /// state, or a heartbeat after a quiet `heartbeat`. None once the
    /// terminal state or an error was returned.
    pub async fn next(&mut self) -> Option<Result<Event<S>, WatchError<S::Error>>> {
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
                changed = self.receiver.changed() => {
                    if changed.is_err() {
                        // The poller left without a final state.
                        self.finished = true;
                        return Some(Err(if self.hub.0.shutdown.is_cancelled() {
                            WatchError::ShuttingDown
                        } else {
                            WatchError::Interrupted
                        }));
                    }
                }
                () = sleep_until(quiet_until) => return Some(Ok(Event::Heartbeat(self.heartbeat_now()))),
            }
        }
    }

    /// The latest state read, if any.
    pub fn latest(&self) -> Option<JobState<S>> {
        let snapshot = self.receiver.borrow();
        Some(JobState {
            job: snapshot.job.clone()?,
            observed_at: snapshot.observed.map_or(SystemTime::UNIX_EPOCH, |o| o.wall),
        })
    }

    /// The transient failure of the last poll, if it failed.
    pub fn last_failure(&self) -> Option<Arc<S::Error>> {
        self.receiver.borrow().last_failure.clone()
    }

    fn take_news(&mut self) -> Option<Result<Event<S>, WatchError<S::Error>>> {
        let snapshot = self.receiver.borrow_and_update();
        if snapshot.shutting_down {
            self.finished = true;
            return Some(Err(WatchError::ShuttingDown));
        }
        if let Some(error) = &snapshot.end {
            self.finished = true;
            return Some(Err(WatchError::Upstream(error.clone())));
        }
        let job = snapshot.job.as_ref()?;
        if snapshot.version == self.sent_version {
            return None;
        }
        self.sent_version = snapshot.version;
        self.finished = S::is_terminal(job);
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
            last_error: snapshot.last_failure.as_deref().map(|e| shortened(S::describe(e))),
            coordination: snapshot.coordination,
        }
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
