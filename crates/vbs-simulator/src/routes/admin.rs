//! Routes for demos and manual testing, not part of VBS: fail a job, move
//! the clock, look at the volumes, read the request log and inject faults
//! (what tests of a simulator running in another process need).

use std::time::Duration;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::jobs::job_time;
use super::{Params, param};
use crate::{SimState, lock};

/// What the admin fail route uses when the caller does not say.
const DEFAULT_FAIL_CODE: &str = "VolumeBackup.0064";
const DEFAULT_FAIL_REASON: &str = "backup failed (simulated)";

#[derive(Deserialize, Default)]
struct FailRequest {
    error_code: Option<String>,
    fail_reason: Option<String>,
}

fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": "SIMULATOR.BAD_REQUEST", "message": message.into()}});
    (status, Json(body)).into_response()
}

pub(super) async fn fail_job(State(state): State<SimState>, Path(job_id): Path<String>, body: Bytes) -> Response {
    let request = if body.iter().all(u8::is_ascii_whitespace) {
        FailRequest::default()
    } else {
        match serde_json::from_slice::<FailRequest>(&body) {
            Ok(request) => request,
            Err(error) => return admin_error(StatusCode::BAD_REQUEST, format!("invalid JSON body: {error}")),
        }
    };
    let error_code = request.error_code.unwrap_or_else(|| DEFAULT_FAIL_CODE.to_owned());
    let fail_reason = request.fail_reason.unwrap_or_else(|| DEFAULT_FAIL_REASON.to_owned());
    if !state.world().fail_job(&job_id, &error_code, &fail_reason) {
        return admin_error(
            StatusCode::NOT_FOUND,
            format!("job {job_id} is unknown or already finished"),
        );
    }
    let body = json!({"job_id": job_id, "error_code": error_code, "fail_reason": fail_reason});
    (StatusCode::OK, Json(body)).into_response()
}

pub(super) async fn advance_clock(State(state): State<SimState>, Query(params): Query<Params>) -> Response {
    let seconds = param(&params, "seconds")
        .and_then(|text| text.parse::<f64>().ok())
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok());
    let Some(by) = seconds else {
        return admin_error(
            StatusCode::BAD_REQUEST,
            "seconds must be a number of seconds, 0 or more",
        );
    };
    let now = state.advance(by);
    (StatusCode::OK, Json(json!({"now": job_time(now)}))).into_response()
}

pub(super) async fn volumes(State(state): State<SimState>) -> Response {
    let volumes: Vec<Value> = state
        .world()
        .volumes()
        .iter()
        .map(|v| json!({"id": v.id, "name": v.name, "size": v.size_gb, "status": v.status}))
        .collect();
    (StatusCode::OK, Json(json!({"volumes": volumes}))).into_response()
}

pub(super) async fn requests(State(state): State<SimState>) -> Response {
    let requests: Vec<Value> = lock(&state.inner.requests)
        .iter()
        .map(|r| json!({"method": r.method, "path": r.path, "query": r.query}))
        .collect();
    (StatusCode::OK, Json(json!({"requests": requests}))).into_response()
}

pub(super) async fn clear_requests(State(state): State<SimState>) -> Response {
    lock(&state.inner.requests).clear();
    StatusCode::NO_CONTENT.into_response()
}

/// `?count=N&seconds=S`: the next N API requests are answered after S seconds.
pub(super) async fn delay_requests(State(state): State<SimState>, Query(params): Query<Params>) -> Response {
    let count = param(&params, "count").and_then(|text| text.parse::<usize>().ok());
    let by = param(&params, "seconds")
        .and_then(|text| text.parse::<f64>().ok())
        .and_then(|secs| Duration::try_from_secs_f64(secs).ok());
    let (Some(count), Some(by)) = (count, by) else {
        return admin_error(StatusCode::BAD_REQUEST, "give count=N and seconds=S");
    };
    state.world().faults.delay_next_requests(count, by);
    StatusCode::NO_CONTENT.into_response()
}

/// `?count=N&status=CODE`: the next N API requests answer CODE with an error body.
pub(super) async fn inject_errors(State(state): State<SimState>, Query(params): Query<Params>) -> Response {
    let count = param(&params, "count").and_then(|text| text.parse::<usize>().ok());
    let status = param(&params, "status").and_then(|text| text.parse::<u16>().ok());
    let (Some(count), Some(status)) = (count, status) else {
        return admin_error(StatusCode::BAD_REQUEST, "give count=N and status=CODE");
    };
    state.world().faults.inject_http_errors(status, count);
    StatusCode::NO_CONTENT.into_response()
}
