//! TaurusDB's HTTP face: the manual backup and job query paths, 201 and 200
//! answers shaped as the document shows, and `{"error_code","error_msg"}`
//! bodies for every refusal. The error codes are the simulator's own, in
//! TaurusDB's `DBS.` shape: the document points to an error code page it does
//! not include.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::state::{BACKUP_JOB_NAME, BackupJob, JobStatus};
use crate::SimState;
use crate::apig::MAX_BODY;
use crate::auth;
use crate::faults::answer_injected_errors;
use crate::routes::record_unredacted;
use vbs_rules::taurusdb as rules;

/// A request that breaks a rule of the document.
pub const INVALID_PARAMETER: &str = "DBS.280001";
/// The instance named is not known.
pub const INSTANCE_NOT_FOUND: &str = "DBS.280002";
/// The job asked for is not known in the project.
pub const JOB_NOT_FOUND: &str = "DBS.280003";
/// No API at this path and method.
const NO_SUCH_API: &str = "APIGW.0101";

/// The TaurusDB API on a listener of its own: requests recorded (bodies
/// kept: none carries a password), injected outages, the API gateway's
/// token or AK/SK check, then the two routes.
pub fn router(state: SimState) -> Router {
    let api = Router::new()
        .route("/v3/{project_id}/backups/create", post(create_backup))
        .route("/v3/{project_id}/jobs", get(show_job))
        .method_not_allowed_fallback(no_such_api)
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .merge(api)
        .fallback(no_such_api)
        .layer(middleware::from_fn_with_state(state.clone(), answer_injected_errors))
        .layer(middleware::from_fn_with_state(state, record_unredacted))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

#[derive(Deserialize)]
struct CreateBody {
    #[serde(default)]
    instance_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
}

async fn create_backup(State(state): State<SimState>, Path(project_id): Path<String>, body: Bytes) -> Response {
    if let Some(refusal) = project_refusal(&project_id) {
        return refusal;
    }
    let body: CreateBody = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(error) => return invalid(format!("the request body is not valid JSON: {error}")),
    };
    let instance_id = body.instance_id.unwrap_or_default();
    let name = body.name.unwrap_or_default();
    let description = body.description.unwrap_or_default();
    let checks = [
        ("instance_id", rules::instance_id(&instance_id)),
        ("name", rules::backup_name(&name)),
        ("description", rules::backup_description(&description)),
    ];
    if let Some((field, Err(violation))) = checks.into_iter().find(|(_, check)| check.is_err()) {
        return invalid(format!("{field} {}", violation.description));
    }
    let now = state.now();
    let mut taurusdb = state.taurusdb();
    let Some(instance) = taurusdb.instance(&instance_id).cloned() else {
        return error(
            StatusCode::NOT_FOUND,
            INSTANCE_NOT_FOUND,
            format!("The DB instance does not exist: {instance_id}"),
        );
    };
    let job = taurusdb.start_backup(&project_id, instance, &name, &description, now);
    let answer = json!({
        "backup": {
            "id": job.backup_id,
            "name": job.name,
            "description": job.description,
            "begin_time": taurusdb_time(job.created),
            "status": "BUILDING",
            "type": "manual",
            "instance_id": job.instance.id,
        },
        "job_id": job.job_id,
    });
    (StatusCode::CREATED, Json(answer)).into_response()
}

async fn show_job(
    State(state): State<SimState>,
    Path(project_id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Some(refusal) = project_refusal(&project_id) {
        return refusal;
    }
    let Some(job_id) = query.iter().find(|(key, _)| key == "id").map(|(_, id)| id.as_str()) else {
        return invalid("id is required".into());
    };
    let now = state.now();
    let taurusdb = state.taurusdb();
    match taurusdb.job(&project_id, job_id) {
        Some(job) => (StatusCode::OK, Json(json!({"job": job_body(job, now)}))).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            JOB_NOT_FOUND,
            format!("The job does not exist: {job_id}"),
        ),
    }
}

fn job_body(job: &BackupJob, now: DateTime<Utc>) -> Value {
    let status = job.status_at(now);
    let ended = (status != JobStatus::Running).then(|| taurusdb_time(job.ends));
    json!({
        "id": job.job_id,
        "name": BACKUP_JOB_NAME,
        "status": status.spelling(),
        "created": taurusdb_time(job.created),
        "ended": ended,
        "process": if status == JobStatus::Running { "50%" } else { "" },
        "instance": {"id": job.instance.id, "name": job.instance.name},
        "entities": {"backup_id": job.backup_id, "instance_id": job.instance.id},
        "fail_reason": match status {
            JobStatus::Failed => job.failure.clone(),
            _ => None,
        },
    })
}

/// The refusal of a project id that is not the document's 32 letters and digits.
fn project_refusal(project_id: &str) -> Option<Response> {
    let valid = project_id.len() == 32 && project_id.bytes().all(|b| b.is_ascii_alphanumeric());
    (!valid).then(|| invalid("project_id must be 32 letters and digits".into()))
}

/// "2020-07-07T01:17:05+0800", as the document writes times.
fn taurusdb_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%z").to_string()
}

fn invalid(message: String) -> Response {
    error(StatusCode::BAD_REQUEST, INVALID_PARAMETER, message)
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({"error_code": code, "error_msg": message}))).into_response()
}

async fn no_such_api() -> Response {
    error(
        StatusCode::NOT_FOUND,
        NO_SUCH_API,
        "The API does not exist or has not been published in the environment".into(),
    )
}
