//! Following a job of any upstream through its job hub, for every service
//! (VBS's WaitJob, CSBS, TaurusDB, ZStack): the watch stream, the wait with
//! its timeout and deadline, and what a heartbeat may say of a failed poll.

use std::pin::Pin;
use std::time::{Duration, Instant};

use futures_util::stream::{self, Stream};
use tonic::Status;

use super::Violations;
use crate::error::Error;
use crate::proto::pb::WaitOutcome;
use crate::rest::{Operation, RestError};
use crate::watch::{Event, JobSource, JobState, WatchError, Watcher};
use vbs_rules::Problem;

/// A server stream of one service's messages.
pub(crate) type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;

/// The longest wait `timeout` accepted, as for VBS's WaitJob.
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// A wait answers this much (at most) before the caller's deadline, so the
/// answer arrives before the caller gives up.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

/// The watcher as a stream: each state or heartbeat made into the service's
/// message by `respond`; an upstream failure ends the stream with its status.
/// No queue: a slow reader only ever gets the latest state.
pub(crate) fn watch_stream<S, T>(watcher: Watcher<S>, respond: fn(Event<S>) -> T) -> ResponseStream<T>
where
    S: JobSource<Error = RestError>,
    T: Send + 'static,
{
    let events = stream::unfold(watcher, move |mut watcher| async move {
        let item = watcher.next().await?;
        let response = item.map(respond).map_err(|error| Status::from(Error::from(error)));
        Some((response, watcher))
    });
    Box::pin(events)
}

/// A wait's `timeout`: unset, or 0 to 1 hour.
pub(crate) fn wait_timeout(v: &mut Violations, timeout: Option<prost_types::Duration>) -> Option<Duration> {
    let timeout = timeout?;
    if timeout.seconds < 0 || timeout.nanos < 0 {
        v.add("timeout", Problem::OutOfRange, "must not be negative");
        return None;
    }
    match Duration::try_from(timeout) {
        Ok(timeout) if timeout <= MAX_WAIT => Some(timeout),
        Ok(_) => {
            v.add("timeout", Problem::OutOfRange, "must be at most 1 hour");
            None
        }
        Err(_) => {
            v.add("timeout", Problem::BadFormat, "is not a valid duration");
            None
        }
    }
}

/// Waits on `watcher` for the job's terminal state, or until `timeout` or
/// the caller's `deadline` (whichever is first); then answers the latest state
/// read and why. The answer is always a state the gateway read: past the
/// timeout (not the deadline) it waits for the first read. `poll` names the
/// upstream call in a deadline error.
pub(crate) async fn wait<S>(
    mut watcher: Watcher<S>,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
    poll: Operation,
) -> Result<(JobState<S>, WaitOutcome), Error>
where
    S: JobSource<Error = RestError>,
{
    let now = Instant::now();
    let by_timeout = timeout.map(|t| (now + t, WaitOutcome::Timeout));
    let by_deadline = deadline.map(|d| (answer_before(d, now), WaitOutcome::Deadline));
    let limit = match (by_timeout, by_deadline) {
        (Some(t), Some(d)) => Some(if t.0 <= d.0 { t } else { d }),
        (t, d) => t.or(d),
    };
    let finished = match limit {
        Some((until, _)) => tokio::time::timeout_at(until.into(), until_terminal(&mut watcher))
            .await
            .ok(),
        None => Some(until_terminal(&mut watcher).await),
    };
    match (finished, limit) {
        (Some(result), _) => Ok((result?, WaitOutcome::Terminal)),
        (None, Some((_, outcome))) => match watcher.latest() {
            Some(state) => Ok((state, outcome)),
            None if outcome == WaitOutcome::Timeout => {
                let first = match by_deadline {
                    Some((until, _)) => tokio::time::timeout_at(until.into(), first_state(&mut watcher))
                        .await
                        .map_err(|_| not_read_in_time(&watcher, poll))?,
                    None => first_state(&mut watcher).await,
                };
                let state = first?;
                let outcome = if state.is_terminal() {
                    WaitOutcome::Terminal
                } else {
                    WaitOutcome::Timeout
                };
                Ok((state, outcome))
            }
            None => Err(not_read_in_time(&watcher, poll)),
        },
        (None, None) => Err(Error::from(WatchError::Interrupted)),
    }
}

async fn until_terminal<S: JobSource<Error = RestError>>(
    watcher: &mut Watcher<S>,
) -> Result<JobState<S>, WatchError<RestError>> {
    loop {
        match watcher.next().await {
            Some(Ok(Event::Job(state))) if state.is_terminal() => return Ok(state),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error),
            None => return Err(WatchError::Interrupted),
        }
    }
}

async fn first_state<S: JobSource<Error = RestError>>(
    watcher: &mut Watcher<S>,
) -> Result<JobState<S>, WatchError<RestError>> {
    loop {
        match watcher.next().await {
            Some(Ok(Event::Job(state))) => return Ok(state),
            Some(Ok(Event::Heartbeat(_))) => {}
            Some(Err(error)) => return Err(error),
            None => return Err(WatchError::Interrupted),
        }
    }
}

/// Like the transport: stop a fifth of the time left (at most 100 ms) early.
fn answer_before(deadline: Instant, now: Instant) -> Instant {
    let left = deadline.saturating_duration_since(now);
    now + left.saturating_sub((left / 5).min(DEADLINE_MARGIN))
}

/// The last upstream failure if there was one, else the deadline itself.
fn not_read_in_time<S: JobSource<Error = RestError>>(watcher: &Watcher<S>, poll: Operation) -> Error {
    match watcher.last_failure() {
        Some(failure) => Error::Watch(WatchError::Upstream(failure)),
        None => Error::Rest(RestError::DeadlineExceeded { operation: poll }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wait_timeouts_are_bounded() {
        let check = |seconds: i64, nanos: i32| {
            let mut v = Violations::default();
            let timeout = wait_timeout(&mut v, Some(prost_types::Duration { seconds, nanos }));
            (timeout, v.finish().is_ok())
        };
        assert_eq!(check(30, 0), (Some(Duration::from_secs(30)), true));
        assert_eq!(check(3600, 0), (Some(MAX_WAIT), true));
        assert!(!check(3601, 0).1);
        assert!(!check(-1, 0).1);
        let mut v = Violations::default();
        assert_eq!(wait_timeout(&mut v, None), None);
    }
}
