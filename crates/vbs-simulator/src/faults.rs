//! Failure injection: jobs that are told to fail, outage answers and slow
//! answers for the next API requests, so clients can be tested against a VBS
//! having a bad day; and requests held until several are in flight at once.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::SimState;
use super::apig::{is_admin_path, request_id};

/// How a job told to fail ends.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct JobFailure {
    pub(crate) error_code: String,
    pub(crate) fail_reason: String,
}

impl JobFailure {
    pub(crate) fn new(error_code: &str, fail_reason: &str) -> Self {
        JobFailure {
            error_code: error_code.to_owned(),
            fail_reason: fail_reason.to_owned(),
        }
    }
}

#[derive(Debug, Default)]
pub(crate) struct Faults {
    next_job_failures: VecDeque<JobFailure>,
    http_errors: Option<HttpErrors>,
    delays: Option<Delays>,
    gathering: Option<Gathering>,
}

#[derive(Debug)]
struct Gathering {
    all_in: Arc<tokio::sync::Barrier>,
    remaining: usize,
}

#[derive(Debug)]
struct Delays {
    by: Duration,
    remaining: usize,
}

#[derive(Debug)]
struct HttpErrors {
    status: StatusCode,
    remaining: usize,
}

impl Faults {
    pub(crate) fn fail_next_jobs(&mut self, count: usize, error_code: &str, fail_reason: &str) {
        let failure = JobFailure::new(error_code, fail_reason);
        self.next_job_failures.extend(std::iter::repeat_n(failure, count));
    }

    /// How the job being created now must end, if it was told to fail.
    pub(crate) fn take_job_failure(&mut self) -> Option<JobFailure> {
        self.next_job_failures.pop_front()
    }

    /// Replaces any outage still pending.
    pub(crate) fn inject_http_errors(&mut self, status: u16, count: usize) {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        self.http_errors = (count > 0).then_some(HttpErrors {
            status,
            remaining: count,
        });
    }

    /// Replaces any delay still pending.
    pub(crate) fn delay_next_requests(&mut self, count: usize, by: Duration) {
        self.delays = (count > 0).then_some(Delays { by, remaining: count });
    }

    /// Replaces any gathering still pending.
    pub(crate) fn gather_next_requests(&mut self, count: usize) {
        self.gathering = (count > 0).then(|| Gathering {
            all_in: Arc::new(tokio::sync::Barrier::new(count)),
            remaining: count,
        });
    }

    /// What the current request must wait for, if it is one of a gathering.
    pub(crate) fn take_gathering(&mut self) -> Option<Arc<tokio::sync::Barrier>> {
        let gathering = self.gathering.as_mut()?;
        let all_in = gathering.all_in.clone();
        gathering.remaining -= 1;
        if gathering.remaining == 0 {
            self.gathering = None;
        }
        Some(all_in)
    }

    /// How long the current request must wait before it is served, if at all.
    pub(crate) fn take_delay(&mut self) -> Option<Duration> {
        let delays = self.delays.as_mut()?;
        let by = delays.by;
        delays.remaining -= 1;
        if delays.remaining == 0 {
            self.delays = None;
        }
        Some(by)
    }

    /// The status the current request must answer, if an outage is on.
    pub(crate) fn take_http_error(&mut self) -> Option<StatusCode> {
        let errors = self.http_errors.as_mut()?;
        let status = errors.status;
        errors.remaining -= 1;
        if errors.remaining == 0 {
            self.http_errors = None;
        }
        Some(status)
    }
}

/// Holds back gathered and injected slow requests, then answers injected
/// outages, before the request reaches any route (so a slow write takes
/// effect at its end).
pub(crate) async fn answer_injected_errors(State(state): State<SimState>, request: Request, next: Next) -> Response {
    if is_admin_path(request.uri().path()) {
        return next.run(request).await;
    }
    let gathering = state.world().faults.take_gathering();
    if let Some(all_in) = gathering {
        all_in.wait().await;
    }
    let delay = state.world().faults.take_delay();
    if let Some(delay) = delay {
        tokio::time::sleep(delay).await;
    }
    let injected = state.world().faults.take_http_error();
    match injected {
        Some(status) => outage_response(status),
        None => next.run(request).await,
    }
}

/// The body an outage answers with: throttling looks like the API gateway's
/// own answer, anything else like VBS failing; both say when to come back
/// where real services do.
fn outage_response(status: StatusCode) -> Response {
    let body = if status == StatusCode::TOO_MANY_REQUESTS {
        json!({
            "error_code": "APIGW.0308",
            "error_msg": "The throttling threshold has been reached",
            "request_id": request_id(),
        })
    } else {
        json!({"error": {"code": "VBS.SIMULATED", "message": "simulated outage"}})
    };
    let mut response = (status, axum::Json(body)).into_response();
    if matches!(status, StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE) {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_failures_are_used_once_each_in_order() {
        let mut faults = Faults::default();
        faults.fail_next_jobs(2, "VolumeBackup.0064", "first");
        faults.fail_next_jobs(1, "VolumeBackup.0027", "second");
        let codes: Vec<String> = std::iter::from_fn(|| faults.take_job_failure())
            .map(|f| f.error_code)
            .collect();
        assert_eq!(codes, ["VolumeBackup.0064", "VolumeBackup.0064", "VolumeBackup.0027"]);
    }

    #[test]
    fn http_errors_run_out() {
        let mut faults = Faults::default();
        faults.inject_http_errors(503, 2);
        assert_eq!(faults.take_http_error(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(faults.take_http_error(), Some(StatusCode::SERVICE_UNAVAILABLE));
        assert_eq!(faults.take_http_error(), None);
        faults.inject_http_errors(42, 1);
        assert_eq!(faults.take_http_error(), Some(StatusCode::INTERNAL_SERVER_ERROR));
        faults.inject_http_errors(500, 0);
        assert_eq!(faults.take_http_error(), None);
    }

    #[test]
    fn delays_run_out() {
        let mut faults = Faults::default();
        faults.delay_next_requests(2, Duration::from_secs(3));
        assert_eq!(faults.take_delay(), Some(Duration::from_secs(3)));
        assert_eq!(faults.take_delay(), Some(Duration::from_secs(3)));
        assert_eq!(faults.take_delay(), None);
    }
}
