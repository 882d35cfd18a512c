//! What the transport tells about each upstream request, for whoever counts
//! them (metrics.rs implements it), so the REST client knows no observer.

use std::fmt;
use std::time::Duration;

use super::Operation;

/// Hears of every upstream request once it has its answer or has failed.
pub(crate) trait UpstreamObserver: fmt::Debug + Send + Sync {
    /// One upstream request: `status` is the HTTP status, or None when no
    /// answer came (connection failure, timeout).
    fn upstream_request(&self, operation: Operation, status: Option<u16>, elapsed: Duration);
    /// A request waited `waited` for a slot of its project's upstream budget.
    fn budget_waited(&self, waited: Duration);
    /// A call found no slot of the upstream budget before its deadline.
    fn budget_exhausted(&self, operation: Operation);
}
