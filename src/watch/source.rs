//! `JobSource`: what the hub needs of anything that can be polled for the
//! state of a long-running job. The hub knows nothing else of a job: not its
//! wire format, its transport, nor the contract its watchers are served in.

use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::time::Duration;

/// Something that can be polled for the state of a long-running job, such as
/// the VBS job API. One hub polls one source; each watched job gets one poller.
pub trait JobSource: Send + Sync + 'static {
    /// One job to poll, with everything polling it takes (for VBS: the
    /// project, the job id and the caller's own token when tokens pass
    /// through). Kept by the job's poller for as long as it polls.
    type Target: Send + Sync + 'static;
    /// Tells watched jobs apart: two targets with equal keys share one poller.
    /// It must hold no secret (hash a caller's token instead); its `Display`
    /// names the job in logs.
    type Key: Clone + Eq + Hash + fmt::Display + Send + Sync + 'static;
    /// A job's state as watchers get it. The hub compares states to tell a
    /// change, and shares one copy of each state between all watchers.
    type State: Clone + PartialEq + fmt::Debug + Send + Sync + 'static;
    /// Why a poll failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The key of `target`.
    fn key(target: &Self::Target) -> Self::Key;

    /// The job's name among replicas sharing one poller per job (see
    /// `Fleet`): the same on every replica for the same key, and never a
    /// secret (a hash of a caller's token, never the token).
    fn shared_key(key: &Self::Key) -> String;

    /// The group whose jobs share one poll rate (`WatchConfig::poll_rate`):
    /// for VBS the project, since the upstream budget is per project.
    fn group(key: &Self::Key) -> &str;

    /// Reads the job's current state once.
    fn poll(&self, target: &Self::Target) -> impl Future<Output = Result<Self::State, Self::Error>> + Send;

    /// Whether the job is over: its poller stops there and remembers the state.
    fn is_terminal(state: &Self::State) -> bool;

    /// The state as bytes, for the replicas that follow this job.
    fn encode(state: &Self::State) -> Vec<u8>;

    /// A state `encode` wrote, possibly on another replica (of the same or a
    /// compatible version); None when it does not read.
    fn decode(bytes: &[u8]) -> Option<Self::State>;

    /// Whether polling again may help.
    fn classify(error: &Self::Error) -> Failure;

    /// A few words on a failed poll for heartbeats, free of anything secret or
    /// echoed from the request (e.g. "HTTP 503 (VBS.0001)"). The hub cuts it
    /// to a short length.
    fn describe(error: &Self::Error) -> String;
}

/// What a failed poll means for the job's poller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// May pass: the poller keeps the last good state and polls again, not
    /// sooner than `retry_after` when the source said when to (capped by
    /// the longest pause).
    Transient {
        /// How long the source asked to wait, if it did.
        retry_after: Option<Duration>,
    },
    /// Will not get better by asking again: the poller stops and every
    /// watcher of the job ends with the error.
    Permanent,
}
