//! The task that polls one job for all its watchers: it publishes each change
//! to the job's watch channel and stops at a terminal state, a permanent
//! failure, shutdown, or when the last watcher leaves. With a fleet, only the
//! replica holding the job's lease polls; the others follow what it stores.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use super::fleet::{LEASE_PACES, bounded};
use super::schedule::{PollOutcome, jittered, next_pause};
use super::{Coordination, Failure, Fleet, Inner, JobSource, Notice, Observed, SharedState, Snapshot, unix_ms_now};

/// The task that polls one job for all its watchers.
pub(super) struct Poller<S: JobSource> {
    hub: Arc<Inner<S>>,
    key: S::Key,
    /// The jobs whose polls share one poll rate (`JobSource::group`).
    group: String,
    /// Tells this poller's entry from a later one for the same key.
    id: u64,
    sender: watch::Sender<Snapshot<S>>,
    target: S::Target,
    /// The fleet and the job's name in it; None when this process is alone.
    shared: Option<(Arc<dyn Fleet>, String)>,
    /// Whether this replica holds the job's lease (it polls for the fleet).
    holding: bool,
    /// The newest version of the job's state the fleet is known to have.
    stored_version: u64,
}

/// How a poller's polling ended.
enum Stop {
    Terminal,
    Failed,
    Unwatched,
    Shutdown,
}

/// What this replica does for its job in one round.
enum Role {
    /// Poll upstream: alone, as the lease holder, or while the fleet is unreachable.
    Poll,
    /// Another replica polls; take what it publishes.
    Follow,
}

/// What ended a pause.
enum Wake {
    Shutdown,
    Unwatched,
    Notice(Option<Notice>),
    Over,
}

impl<S: JobSource> Poller<S> {
    pub(super) fn new(
        hub: Arc<Inner<S>>,
        key: S::Key,
        group: String,
        id: u64,
        sender: watch::Sender<Snapshot<S>>,
        target: S::Target,
    ) -> Self {
        let shared = hub.fleet.clone().map(|fleet| (fleet, S::shared_key(&key)));
        Poller {
            hub,
            key,
            group,
            id,
            sender,
            target,
            shared,
            holding: false,
            stored_version: 0,
        }
    }

    pub(super) async fn run(mut self) {
        let stop = self.poll_until_done().await;
        if matches!(stop, Stop::Shutdown) {
            // Watchers hear it now, not after the fleet is let go.
            self.sender.send_modify(|snapshot| snapshot.shutting_down = true);
        }
        self.let_go(&stop).await;
        self.set_coordination(Coordination::Alone);
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

    async fn poll_until_done(&mut self) -> Stop {
        let hub = self.hub.clone();
        let config = &hub.config;
        let mut follow = self.shared.as_ref().map(|(fleet, name)| fleet.follow(name));
        let mut pause = hub.pace(&self.group);
        // A job another replica saw end is answered from the fleet at once,
        // with no wait and no upstream call.
        let mut claimed = None;
        if self.shared.is_some() {
            match self.claim(pause).await {
                Ok(role) => claimed = Some(role),
                Err(stop) => return stop,
            }
        }
        let first = hub.first_poll_wait(&self.group);
        if !first.is_zero() {
            // Claim again after the wait: the fleet may have moved on.
            claimed = None;
        }
        if let Some(stop) = self.pause(first, &mut follow).await {
            return stop;
        }
        loop {
            let role = match claimed.take() {
                Some(role) => role,
                None => match self.claim(pause).await {
                    Ok(role) => role,
                    Err(stop) => return stop,
                },
            };
            let outcome = match role {
                Role::Follow => PollOutcome::Answered,
                Role::Poll => match self.poll_once().await {
                    Ok(outcome) => outcome,
                    Err(stop) => return stop,
                },
            };
            pause = next_pause(pause, outcome, hub.pace(&self.group), config);
            if let Some(stop) = self
                .pause(jittered(pause, config.poll_jitter, fastrand::f64()), &mut follow)
                .await
            {
                return stop;
            }
        }
    }

    /// Takes or renews the job's lease, and takes the stored state when it
    /// is newer. Alone, or when the fleet cannot be reached, this replica polls.
    async fn claim(&mut self, pause: Duration) -> Result<Role, Stop> {
        let Some((fleet, name)) = self.shared.clone() else {
            return Ok(Role::Poll);
        };
        let lease = pause.max(self.hub.pace(&self.group)) * LEASE_PACES;
        match bounded(fleet.claim(&name, lease)).await {
            Ok(claim) => {
                self.set_coordination(Coordination::Shared);
                self.holding = claim.holder;
                if let Some(stored) = claim.stored
                    && self.take_shared(stored)
                {
                    return Err(Stop::Terminal);
                }
                Ok(if claim.holder { Role::Poll } else { Role::Follow })
            }
            Err(error) => {
                self.holding = false;
                if self.set_coordination(Coordination::LocalFallback) {
                    tracing::debug!(job_id = %self.key, %error, "the fleet cannot be reached; polling the job here");
                }
                Ok(Role::Poll)
            }
        }
    }

    /// Polls upstream once (again at once if a watcher came back while the
    /// last one was leaving), and shares the answer when holding the lease.
    async fn poll_once(&mut self) -> Result<PollOutcome, Stop> {
        let result = loop {
            self.hub.polls_total.fetch_add(1, Ordering::Relaxed);
            tokio::select! {
                biased;
                () = self.hub.shutdown.cancelled() => return Err(Stop::Shutdown),
                () = self.sender.closed() => {
                    if self.hub.forget_if_unwatched(&self.key, self.id, &self.sender) {
                        return Err(Stop::Unwatched);
                    }
                }
                result = self.hub.source.poll(&self.target) => break result,
            }
        };
        match result {
            Ok(state) => {
                let terminal = S::is_terminal(&state);
                self.publish(state);
                if self.holding {
                    self.share(terminal).await;
                }
                if terminal {
                    return Err(Stop::Terminal);
                }
                Ok(PollOutcome::Answered)
            }
            Err(error) => match S::classify(&error) {
                Failure::Transient { retry_after } => {
                    self.record_transient(error);
                    Ok(PollOutcome::FailedTransiently { retry_after })
                }
                Failure::Permanent => {
                    self.hub.poll_failures_total.fetch_add(1, Ordering::Relaxed);
                    self.sender.send_modify(|snapshot| snapshot.end = Some(Arc::new(error)));
                    Err(Stop::Failed)
                }
            },
        }
    }

    /// Stores the state in hand in the fleet (publishing it when the fleet
    /// does not have it yet), so the followers get it.
    async fn share(&mut self, terminal: bool) {
        let Some((fleet, name)) = self.shared.clone() else {
            return;
        };
        let (state, order, observed_ms) = {
            let snapshot = self.sender.borrow();
            let Some(job) = snapshot.job.clone() else { return };
            let observed_ms = snapshot.observed.map_or(0, |o| {
                let since_epoch = o.wall.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
            });
            (job, snapshot.order, observed_ms)
        };
        let shared = SharedState {
            version: order,
            observed_ms,
            terminal,
            state: S::encode(&state),
        };
        let changed = order > self.stored_version;
        let keep = self.hub.config.terminal_ttl;
        match bounded(fleet.store(&name, &shared, changed, keep)).await {
            Ok(Some(version)) => {
                self.stored_version = version;
                // The fleet may number it above ours (a state stored by an
                // earlier holder); watchers do not see the number.
                self.sender.send_if_modified(|snapshot| {
                    snapshot.order = snapshot.order.max(version);
                    false
                });
            }
            Ok(None) => self.holding = false,
            Err(error) => {
                self.holding = false;
                if self.set_coordination(Coordination::LocalFallback) {
                    tracing::debug!(job_id = %self.key, %error, "the fleet cannot be reached; polling the job here");
                }
            }
        }
    }

    /// Sleeps `pause`, unless shutdown comes first or the last watcher
    /// leaves; meanwhile takes the states the lease holder publishes. Ends
    /// early when the holder lets the lease go, to claim it at once.
    async fn pause(&mut self, pause: Duration, follow: &mut Option<mpsc::Receiver<Notice>>) -> Option<Stop> {
        if pause.is_zero() {
            return None;
        }
        let until = tokio::time::Instant::now() + pause;
        loop {
            let wake = tokio::select! {
                biased;
                () = self.hub.shutdown.cancelled() => Wake::Shutdown,
                () = self.sender.closed() => Wake::Unwatched,
                notice = next_notice(follow) => Wake::Notice(notice),
                () = tokio::time::sleep_until(until) => Wake::Over,
            };
            match wake {
                Wake::Shutdown => return Some(Stop::Shutdown),
                Wake::Unwatched => {
                    if self.hub.forget_if_unwatched(&self.key, self.id, &self.sender) {
                        return Some(Stop::Unwatched);
                    }
                    // A watcher came back meanwhile: poll now rather than sleep on.
                    return None;
                }
                Wake::Notice(Some(Notice::Published(shared))) => {
                    if self.take_shared(shared) {
                        return Some(Stop::Terminal);
                    }
                }
                Wake::Notice(Some(Notice::Released)) if !self.holding => return None,
                Wake::Notice(Some(Notice::Released)) => {}
                Wake::Notice(None) => *follow = None,
                Wake::Over => return None,
            }
        }
    }

    /// Records a successful local poll. Watchers are woken only by a change;
    /// freshness alone is read by their heartbeats.
    fn publish(&self, state: S::State) {
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
            snapshot.order = unix_ms_now().max(snapshot.order + 1);
            true
        });
    }

    /// Takes a state from the fleet when it is newer than the one in hand (a
    /// terminal state always ends a job still running here); true when the
    /// job is over.
    fn take_shared(&mut self, shared: SharedState) -> bool {
        self.stored_version = self.stored_version.max(shared.version);
        let mut over = false;
        self.sender.send_if_modified(|snapshot| {
            let running = !snapshot.job.as_deref().is_some_and(S::is_terminal);
            if shared.version < snapshot.order && !(shared.terminal && running) {
                return false;
            }
            let Some(state) = S::decode(&shared.state) else {
                tracing::warn!(job_id = %self.key, "a job state from the fleet does not decode; ignored");
                return false;
            };
            let observed = Observed::at_unix_ms(shared.observed_ms);
            snapshot.order = snapshot.order.max(shared.version);
            if snapshot.job.as_deref() == Some(&state) {
                // The same state, read again upstream since.
                if snapshot.observed.is_none_or(|o| o.wall < observed.wall) {
                    snapshot.observed = Some(observed);
                }
                return false;
            }
            // Two states of one number were read in the same millisecond:
            // either may be taken, and skipping one could skip a change.
            over = S::is_terminal(&state);
            snapshot.observed = Some(observed);
            snapshot.consecutive_failures = 0;
            snapshot.last_failure = None;
            snapshot.job = Some(Arc::new(state));
            snapshot.version += 1;
            true
        });
        over
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

    /// Notes how the job is polled now, for heartbeats and the fallback
    /// count; true when that changed.
    fn set_coordination(&self, mode: Coordination) -> bool {
        let mut previous = mode;
        self.sender.send_if_modified(|snapshot| {
            previous = std::mem::replace(&mut snapshot.coordination, mode);
            false
        });
        let fallback = &self.hub.local_fallback;
        match (previous, mode) {
            (Coordination::LocalFallback, Coordination::LocalFallback) => {}
            (_, Coordination::LocalFallback) => {
                fallback.fetch_add(1, Ordering::Relaxed);
            }
            (Coordination::LocalFallback, _) => {
                fallback.fetch_sub(1, Ordering::Relaxed);
            }
            _ => {}
        }
        previous != mode
    }

    /// Gives the lease up when leaving a job that is not over, so a replica
    /// still watching it takes over at once rather than after the lease.
    async fn let_go(&mut self, stop: &Stop) {
        if !self.holding || matches!(stop, Stop::Terminal) {
            return;
        }
        self.holding = false;
        if let Some((fleet, name)) = &self.shared
            && let Err(error) = bounded(fleet.release(name)).await
        {
            tracing::debug!(job_id = %self.key, %error, "could not give the job's lease up; it expires by itself");
        }
    }
}

/// The next notice about the job, or never when nothing is followed.
async fn next_notice(follow: &mut Option<mpsc::Receiver<Notice>>) -> Option<Notice> {
    match follow {
        Some(receiver) => receiver.recv().await,
        None => std::future::pending().await,
    }
}
