//! The task that polls one job for all its watchers: it publishes each change
//! to the job's watch channel and stops at a terminal state, a permanent
//! failure, shutdown, or when the last watcher leaves.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::watch;

use super::schedule::{PollOutcome, first_pause, jittered, next_pause};
use super::{Failure, Inner, JobSource, Observed, Snapshot};

/// The task that polls one job for all its watchers.
pub(super) struct Poller<S: JobSource> {
    pub(super) hub: Arc<Inner<S>>,
    pub(super) key: S::Key,
    /// The jobs whose polls share one poll rate (`JobSource::group`).
    pub(super) group: String,
    /// Tells this poller's entry from a later one for the same key.
    pub(super) id: u64,
    pub(super) sender: watch::Sender<Snapshot<S>>,
    pub(super) target: S::Target,
}

/// How a poller's polling ended.
enum Stop {
    Terminal,
    Failed,
    Unwatched,
    Shutdown,
}

impl<S: JobSource> Poller<S> {
    pub(super) async fn run(self) {
        let stop = self.poll_until_done().await;
        self.hub.leave_group(&self.group);
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
        let mut pause = self.hub.pace(&self.group);
        if let Some(stop) = self.pause(first_pause(pause, config, fastrand::f64())).await {
            return stop;
        }
        loop {
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
                result = self.hub.source.poll(&self.target) => result,
            };
            let outcome = match result {
                Ok(state) => {
                    let terminal = S::is_terminal(&state);
                    if self.publish(state) && terminal {
                        return Stop::Terminal;
                    }
                    PollOutcome::Answered
                }
                Err(error) => match S::classify(&error) {
                    Failure::Transient { retry_after } => {
                        self.record_transient(error);
                        PollOutcome::FailedTransiently { retry_after }
                    }
                    Failure::Permanent => {
                        self.hub.poll_failures_total.fetch_add(1, Ordering::Relaxed);
                        self.sender.send_modify(|snapshot| snapshot.end = Some(Arc::new(error)));
                        return Stop::Failed;
                    }
                },
            };
            pause = next_pause(pause, outcome, self.hub.pace(&self.group), config);
            if let Some(stop) = self.pause(jittered(pause, config.poll_jitter, fastrand::f64())).await {
                return stop;
            }
        }
    }

    /// Sleeps `pause`, unless shutdown comes first or the last watcher leaves.
    async fn pause(&self, pause: Duration) -> Option<Stop> {
        if pause.is_zero() {
            return None;
        }
        tokio::select! {
            biased;
            () = self.hub.shutdown.cancelled() => Some(Stop::Shutdown),
            () = self.sender.closed() => {
                if self.hub.forget_if_unwatched(&self.key, self.id, &self.sender) {
                    return Some(Stop::Unwatched);
                }
                // A watcher came back meanwhile: poll now rather than sleep on.
                None
            }
            () = tokio::time::sleep(pause) => None,
        }
    }

    /// Records a successful poll; true when `state` is new. Watchers are
    /// woken only by a change; freshness alone is read by their heartbeats.
    fn publish(&self, state: S::State) -> bool {
        let observed = Observed::now();
        self.sender.send_if_modified(|snapshot| {
            snapshot.observed = Some(observed);
            snapshot.consecutive_failures = 0;
            snapshot.last_failure = None;
            if snapshot.job.as_deref() == Some(&state) {
                return false;
            }
            snapshot.job = Some(Arc::new(state));
            snapshot.version += 1;
            true
        })
    }

    /// Keeps the last good state and notes the failure for heartbeats,
    /// without waking anyone.
    fn record_transient(&self, error: S::Error) {
        self.hub.poll_failures_total.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(job_id = %self.key, error = %error, "job poll failed; will retry");
        self.sender.send_if_modified(|snapshot| {
            snapshot.consecutive_failures = snapshot.consecutive_failures.saturating_add(1);
            snapshot.last_failure = Some(Arc::new(error));
            false
        });
    }
}
