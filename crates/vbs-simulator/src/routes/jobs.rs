//! The jobs route: GET /v1/{project_id}/jobs/{job_id}, in the /cloudbackups
//! error shape.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{Family, Reply, Within, ok};
use crate::SimState;
use crate::state::jobs::{JobStatus, JobView};

/// Times as the jobs API writes them: milliseconds and a Z; the admin clock
/// route answers in the same form.
pub(super) fn job_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn job_json(view: &JobView) -> Value {
    let failure = view.job.failure.as_ref().filter(|_| view.status == JobStatus::Fail);
    json!({
        "status": view.status.as_str(),
        "entities": view.job.entities,
        "job_id": view.job.id,
        "job_type": view.job.kind.wire_name(),
        "begin_time": job_time(view.job.begin),
        "end_time": view.ended_at.map(job_time),
        "error_code": failure.map(|f| f.error_code.clone()),
        "fail_reason": failure.map(|f| f.fail_reason.clone()),
    })
}

pub(super) async fn show_job(State(state): State<SimState>, Path((project, job_id)): Path<(String, String)>) -> Reply {
    let view = state.world().job(&project, &job_id).within(Family::Cloud)?;
    ok(StatusCode::OK, job_json(&view))
}
