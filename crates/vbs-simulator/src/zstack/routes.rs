//! ZStack's HTTP face: PUT /zstack/v1/accounts/login, POST
//! /zstack/v1/volumes/{rootVolumeUuid}/vm-backups (202 with a job location)
//! and GET /zstack/v1/api-jobs/{uuid}, each refusal in ZStack's error object
//! (`{"error": {"code", "description", "details", ...}}`). Every API but the
//! login needs `Authorization: OAuth {session}` with a live session.

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::state::zstack_date;
use crate::SimState;
use crate::apig::MAX_BODY;
use crate::faults::answer_injected_errors;
use crate::routes::record;
use vbs_rules::zstack as rules;

/// ZStack's code for an invalid API argument.
pub const ARGUMENT_ERROR: &str = "SYS.1007";
/// ZStack's code for a missing, unknown or expired session.
pub const INVALID_SESSION: &str = "ID.1001";
/// ZStack's code for a login that names no account with that password.
pub const WRONG_PASSWORD: &str = "ID.1000";
const LOGIN_PATH: &str = "/zstack/v1/accounts/login";

/// The ZStack API on a listener of its own: requests recorded (the login's
/// body, which carries a password digest, redacted), injected outages, the
/// session check, then the routes.
pub fn router(state: SimState) -> Router {
    let api = Router::new()
        .route(
            "/zstack/v1/volumes/{root_volume_uuid}/vm-backups",
            post(create_vm_backup),
        )
        .route("/zstack/v1/api-jobs/{job_uuid}", get(show_api_job))
        .with_state(state.clone())
        .layer(middleware::from_fn_with_state(state.clone(), check_session));
    Router::new()
        .route(LOGIN_PATH, put(log_in))
        .with_state(state.clone())
        .merge(api)
        .fallback(no_such_api)
        .layer(middleware::from_fn_with_state(state.clone(), answer_injected_errors))
        .layer(middleware::from_fn_with_state(state, record_redacting_login))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

async fn record_redacting_login(State(state): State<SimState>, request: Request, next: Next) -> Response {
    record(&state, request, next, |path, bytes| {
        if path == LOGIN_PATH {
            "<redacted>".to_owned()
        } else {
            String::from_utf8_lossy(bytes).into_owned()
        }
    })
    .await
}

async fn check_session(State(state): State<SimState>, request: Request, next: Next) -> Response {
    let session = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("OAuth "))
        .map(str::trim);
    let now = state.now();
    match session {
        Some(session) if state.zstack().session_valid(session, now) => next.run(request).await,
        Some(_) => error(
            StatusCode::UNAUTHORIZED,
            INVALID_SESSION,
            "Session expired",
            "the session is expired or unknown; log in again",
        ),
        None => error(
            StatusCode::UNAUTHORIZED,
            INVALID_SESSION,
            "Invalid session",
            "Authorization: OAuth {session} is required",
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginBody {
    log_in_by_account: LoginParams,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct LoginParams {
    account_name: String,
    password: String,
}

async fn log_in(State(state): State<SimState>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<LoginBody>(&body) else {
        return argument_error("the body must be {\"logInByAccount\": {\"accountName\", \"password\"}}".into());
    };
    let now = state.now();
    let login = state.zstack().log_in(
        &body.log_in_by_account.account_name,
        &body.log_in_by_account.password,
        now,
    );
    match login {
        Some((session, expires)) => {
            let inventory = json!({
                "uuid": session,
                "accountUuid": "36c27e8ff05c4780bf6d2fa65700f22e",
                "userUuid": "36c27e8ff05c4780bf6d2fa65700f22e",
                "createDate": zstack_date(now),
                "expiredDate": zstack_date(expires),
            });
            (StatusCode::OK, Json(json!({"inventory": inventory}))).into_response()
        }
        None => error(
            StatusCode::UNAUTHORIZED,
            WRONG_PASSWORD,
            "Authentication error",
            "wrong account name or password",
        ),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateBody {
    params: Option<CreateParams>,
    #[serde(default)]
    system_tags: Vec<String>,
    #[serde(default)]
    user_tags: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateParams {
    #[serde(default)]
    backup_storage_uuid: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    volume_read_bandwidth: Option<i64>,
    #[serde(default)]
    volume_write_bandwidth: Option<i64>,
    #[serde(default)]
    network_read_bandwidth: Option<i64>,
    #[serde(default)]
    network_write_bandwidth: Option<i64>,
}

async fn create_vm_backup(
    State(state): State<SimState>,
    Path(root_volume_uuid): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    let Ok(CreateBody {
        params: Some(params),
        system_tags,
        user_tags,
    }) = serde_json::from_slice::<CreateBody>(&body)
    else {
        return argument_error("the body must hold params with backupStorageUuid and name".into());
    };
    let description = params.description.unwrap_or_default();
    let mut checks = vec![
        ("rootVolumeUuid", rules::uuid(&root_volume_uuid)),
        ("backupStorageUuid", rules::uuid(&params.backup_storage_uuid)),
        ("name", rules::name(&params.name)),
        ("description", rules::description(&description)),
    ];
    for (field, value) in [
        ("volumeReadBandwidth", params.volume_read_bandwidth),
        ("volumeWriteBandwidth", params.volume_write_bandwidth),
        ("networkReadBandwidth", params.network_read_bandwidth),
        ("networkWriteBandwidth", params.network_write_bandwidth),
    ] {
        if let Some(value) = value {
            checks.push((field, rules::bandwidth(value)));
        }
    }
    for tag in system_tags.iter().chain(&user_tags) {
        checks.push(("tags", rules::tag(tag)));
    }
    if let Some((field, Err(violation))) = checks.into_iter().find(|(_, check)| check.is_err()) {
        return argument_error(format!("{field} {}", violation.description));
    }
    let now = state.now();
    let mut zstack = state.zstack();
    let Some(vm) = zstack.vm_of_root(&root_volume_uuid).cloned() else {
        return argument_error(format!("no root volume of a VM has uuid {root_volume_uuid}"));
    };
    if zstack.storage(&params.backup_storage_uuid).is_none() {
        return argument_error(format!("no backup storage has uuid {}", params.backup_storage_uuid));
    }
    let job = zstack.start_backup(&vm, &params.backup_storage_uuid, &params.name, &description, now);
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost");
    let location = format!("http://{host}/zstack/v1/api-jobs/{job}");
    (StatusCode::ACCEPTED, Json(json!({"location": location}))).into_response()
}

async fn show_api_job(State(state): State<SimState>, Path(job_uuid): Path<String>) -> Response {
    let now = state.now();
    let zstack = state.zstack();
    match zstack.job(&job_uuid) {
        None => error(
            StatusCode::NOT_FOUND,
            "SYS.1006",
            "Resource not found",
            &format!("no API job has uuid {job_uuid}"),
        ),
        Some(job) if now < job.ends => (StatusCode::ACCEPTED, Json(json!({}))).into_response(),
        Some(job) => (StatusCode::OK, Json(job.result.clone())).into_response(),
    }
}

fn argument_error(details: String) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        ARGUMENT_ERROR,
        "One or more API argument is invalid",
        &details,
    )
}

fn error(status: StatusCode, code: &str, description: &str, details: &str) -> Response {
    let body: Value = json!({"error": {
        "code": code,
        "description": description,
        "details": details,
        "elaboration": null,
        "opaque": null,
        "cause": null,
    }});
    (status, Json(body)).into_response()
}

async fn no_such_api() -> Response {
    error(
        StatusCode::NOT_FOUND,
        "SYS.1006",
        "Resource not found",
        "no API at this path",
    )
}
