//! `Fleet`: how the replicas of a gateway share one poller per job. For each
//! watched job one replica holds a lease and polls; the others follow the
//! states it publishes. The hub owns this interface; a shared store (Redis)
//! implements it, and without one every replica polls its own jobs.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use tokio::sync::mpsc;

/// What a fleet call gives back, boxed so that a hub can hold any fleet.
pub type FleetFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, FleetError>> + Send + 'a>>;

/// One state of a job as the fleet keeps and publishes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedState {
    /// Grows with every new state of the job, across holders: a replica
    /// takes a state only when its version is newer than the one it has.
    /// Versions start from the observation time in milliseconds, so they keep
    /// growing after the store lost its data (or a replica polled alone).
    pub version: u64,
    /// When the holder last read this state upstream, in milliseconds since
    /// the Unix epoch: the freshness the followers' heartbeats report.
    pub observed_ms: u64,
    /// Whether the job is over; a terminal state ends the lease for good.
    pub terminal: bool,
    /// The state as `JobSource::encode` wrote it.
    pub state: Vec<u8>,
}

/// The answer to a claim: who polls the job now, and what the fleet has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// True when this replica holds the lease (it took it or renewed it).
    pub holder: bool,
    /// The job's stored state, if any. A terminal one is never leased.
    pub stored: Option<SharedState>,
}

/// What a follower hears about a job between claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// The holder stored a new state.
    Published(SharedState),
    /// The holder let the lease go: a follower should claim it now.
    Released,
}

/// The shared store could not be asked; the hub polls locally meanwhile.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the fleet cannot be reached: {0}")]
pub struct FleetError(pub String);

/// The replicas' shared leases and job states. Every call is bounded (the
/// hub also puts a deadline on each); a failed call means "the fleet is
/// unreachable" and the hub falls back to polling by itself. `job` is
/// `JobSource::shared_key`: the same on every replica, free of secrets.
pub trait Fleet: Send + Sync + 'static {
    /// Takes the job's lease for `lease` when nobody holds it, or renews it
    /// when this replica does, unless the stored state is terminal; and says
    /// what is stored.
    fn claim<'a>(&'a self, job: &'a str, lease: Duration) -> FleetFuture<'a, Claim>;

    /// Stores `state` (kept for `keep`) and, when `changed`, publishes it to
    /// the followers, if this replica still holds the lease. A changed state
    /// gets a version above the stored one (`state.version` at least);
    /// an unchanged one only refreshes `observed_ms`. A terminal state ends
    /// the lease. Answers the version stored, or None when another replica
    /// holds the lease.
    fn store<'a>(
        &'a self,
        job: &'a str,
        state: &'a SharedState,
        changed: bool,
        keep: Duration,
    ) -> FleetFuture<'a, Option<u64>>;

    /// Gives the lease up, if this replica holds it, and tells the followers.
    fn release<'a>(&'a self, job: &'a str) -> FleetFuture<'a, ()>;

    /// Starts hearing what is published about `job`, until the receiver is
    /// dropped. Best effort: a missed notice is made up for by the next claim.
    fn follow(&self, job: &str) -> mpsc::Receiver<Notice>;
}

/// How long one fleet call may take before the hub counts the fleet as
/// unreachable, whatever the implementation's own timeouts.
pub(super) const FLEET_CALL_LIMIT: Duration = Duration::from_secs(2);

/// The lease lasts this many paces, so a holder that misses one renewal
/// keeps it, and one that died is replaced within a few paces.
pub(super) const LEASE_PACES: u32 = 3;

/// Runs one fleet call within `FLEET_CALL_LIMIT`.
pub(super) async fn bounded<T>(call: FleetFuture<'_, T>) -> Result<T, FleetError> {
    match tokio::time::timeout(FLEET_CALL_LIMIT, call).await {
        Ok(result) => result,
        Err(_) => Err(FleetError("no answer in time".into())),
    }
}
