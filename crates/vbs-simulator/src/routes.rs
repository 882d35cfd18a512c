//! The HTTP face of the simulator: VBS paths and status codes, JSON in and
//! out, the error body shape of each API family, request recording, and the
//! admin routes demos use to steer it.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};

use super::auth::{self, IAM_TOKENS_PATH};
use super::faults::answer_injected_errors;
use super::state::backups::list::BackupQuery;
use super::state::backups::{Backup, CloudBackupInput, NativeBackupInput};
use super::state::jobs::{JobStatus, JobView};
use super::state::policies::schedule::Schedule;
use super::state::policies::tasks::{TaskQuery, TaskView};
use super::state::policies::{AssociateInput, DisassociateInput, Policy, PolicyInput, ResourceOutcome, ResourceRef};
use super::state::{AVAILABILITY_ZONE, Project, Rejection, Resource, SortDir, code, table_message};
use super::{RecordedRequest, SimState, reachable};
use vbs_rules as rules;

/// Requests above this are refused before routing (AK/SK signing allows 12 MB).
pub(crate) const MAX_BODY: usize = 12 * 1024 * 1024;
/// What the admin fail route uses when the caller does not say.
const DEFAULT_FAIL_CODE: &str = "VolumeBackup.0064";
const DEFAULT_FAIL_REASON: &str = "backup failed (simulated)";

// ------------------------------------------------------------ composition

/// The whole simulator: request recording (outermost, so it sees every API
/// request), injected outages, the authentication check, the VBS routes, the
/// IAM token endpoint and the admin routes.
pub fn router(state: SimState) -> Router {
    router_with(state, |api| api)
}

/// Like `router`, with `wrap_api` applied to the VBS routes only, outside the
/// authentication check (which is always there; `AuthConfig::enforce` turns
/// it on). Unknown paths still answer APIGW.0101 without passing through
/// either, as the real API gateway does. The IAM endpoint is another service
/// in the real cloud, so it is neither authenticated nor part of injected
/// VBS outages; it is recorded, with its body redacted.
pub fn router_with(state: SimState, wrap_api: impl FnOnce(Router) -> Router) -> Router {
    let api = api_routes(state.clone()).layer(middleware::from_fn_with_state(state.clone(), auth::authenticate));
    Router::new()
        .merge(admin_routes(state.clone()))
        .merge(wrap_api(api))
        .fallback(unknown_api)
        .layer(middleware::from_fn_with_state(state.clone(), answer_injected_errors))
        .merge(iam_routes(state.clone()))
        .layer(middleware::from_fn_with_state(state, record_requests))
}

/// The VBS REST API, under the paths VBS serves it.
pub fn api_routes(state: SimState) -> Router {
    Router::new()
        .route("/v2/{project_id}/cloudbackups", post(create_cloud_backup))
        .route("/v2/{project_id}/cloudbackups/{backup_id}", post(delete_cloud_backup))
        .route(
            "/v2/{project_id}/cloudbackups/{backup_id}/restore",
            post(restore_cloud_backup),
        )
        .route("/v2/{project_id}/backups", post(create_native_backup).get(list_backups))
        .route("/v2/{project_id}/backups/detail", get(list_backup_details))
        .route(
            "/v2/{project_id}/backups/{backup_id}",
            get(show_backup).delete(delete_native_backup),
        )
        .route(
            "/v2/{project_id}/backups/{backup_id}/restore",
            post(restore_native_backup),
        )
        .route("/v2/{project_id}/backuppolicy", post(create_policy).get(list_policies))
        .route(
            "/v2/{project_id}/backuppolicy/{policy_id}",
            put(update_policy).delete(delete_policy),
        )
        .route("/v2/{project_id}/backuppolicy/{policy_id}/action", post(execute_policy))
        .route("/v2/{project_id}/backuppolicy/{policy_id}/backuptasks", get(list_tasks))
        .route("/v2/{project_id}/backuppolicyresources", post(associate_resources))
        .route(
            "/v2/{project_id}/backuppolicyresources/{policy_id}/deleted_resources",
            post(disassociate_resources),
        )
        .route("/v1/{project_id}/jobs/{job_id}", get(show_job))
        // The API gateway publishes each method of a path as its own API.
        .method_not_allowed_fallback(unknown_api)
        .with_state(state)
}

/// IAM's token endpoint, as far as VBS clients need it: password in, token out.
pub fn iam_routes(state: SimState) -> Router {
    Router::new()
        .route(IAM_TOKENS_PATH, post(auth::issue_token))
        .with_state(state)
}

/// Routes for demos and manual testing; not part of VBS, never recorded.
pub fn admin_routes(state: SimState) -> Router {
    Router::new()
        .route("/simulator/jobs/{job_id}/fail", post(admin_fail_job))
        .route("/simulator/clock/advance", post(admin_advance_clock))
        .route("/simulator/volumes", get(admin_volumes))
        .with_state(state)
}

pub(crate) fn is_admin_path(path: &str) -> bool {
    path == "/simulator" || path.starts_with("/simulator/")
}

/// A request id like the API gateway's: 32 hex digits.
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

async fn record_requests(State(state): State<SimState>, request: Request, next: Next) -> Response {
    if is_admin_path(request.uri().path()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    state.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_ascii_lowercase(), value)
            })
            .collect(),
        body: recorded_body(parts.uri.path(), &bytes),
    });
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// IAM bodies carry passwords: the log keeps that the call happened, not what
/// it said. Every /v3 path is IAM's, mistyped ones too.
fn recorded_body(path: &str, bytes: &[u8]) -> String {
    if path == "/v3" || path.starts_with("/v3/") {
        REDACTED.to_owned()
    } else {
        String::from_utf8_lossy(bytes).into_owned()
    }
}

const REDACTED: &str = "<redacted>";

async fn unknown_api() -> Response {
    let body = json!({
        "error_code": "APIGW.0101",
        "error_msg": "The API does not exist or has not been published in the environment",
        "request_id": request_id(),
    });
    (StatusCode::NOT_FOUND, Json(body)).into_response()
}

// ------------------------------------------------------------- error shapes

/// The API families differ in how they shape errors.
#[derive(Clone, Copy, Debug)]
enum Family {
    /// /cloudbackups and /v1 jobs: `{"error": {"message", "code"}}`.
    Cloud,
    /// Native OpenStack /backups: `badRequest` / `itemNotFound`.
    Native,
    /// /backuppolicy and /backuppolicyresources: `{"error": {"code", "message"}}`.
    Policy,
}

impl Family {
    fn bad_body_code(self) -> &'static str {
        match self {
            Family::Cloud | Family::Native => code::BAD_BODY,
            Family::Policy => code::POLICY_BAD_BODY,
        }
    }
}

struct Failure(Family, Rejection);

type Reply = Result<Response, Failure>;

trait Within<T> {
    fn within(self, family: Family) -> Result<T, Failure>;
}

impl<T> Within<T> for Result<T, Rejection> {
    fn within(self, family: Family) -> Result<T, Failure> {
        self.map_err(|rejection| Failure(family, rejection))
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let Failure(family, rejection) = self;
        match (family, rejection) {
            (Family::Native, Rejection::NotFound { resource, id, .. }) => {
                let message = format!("{} {id} could not be found.", resource.noun());
                let body = json!({"itemNotFound": {"message": message, "code": 404}});
                (StatusCode::NOT_FOUND, Json(body)).into_response()
            }
            (Family::Native, Rejection::Invalid { code, message }) => {
                let body = json!({"badRequest": {"message": message, "code": code}});
                (StatusCode::BAD_REQUEST, Json(body)).into_response()
            }
            (Family::Native, Rejection::BadQuery(message)) => {
                let body = json!({"badRequest": {"message": message, "code": 400}});
                (StatusCode::BAD_REQUEST, Json(body)).into_response()
            }
            (_, Rejection::NotFound { code, id, .. }) => {
                vbs_error(StatusCode::NOT_FOUND, code, format!("{}: {id}", table_message(code)))
            }
            (_, Rejection::Invalid { code, message }) => vbs_error(StatusCode::BAD_REQUEST, code, message),
            (family, Rejection::BadQuery(message)) => {
                vbs_error(StatusCode::BAD_REQUEST, family.bad_body_code(), message)
            }
        }
    }
}

fn vbs_error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(json!({"error": {"code": code, "message": message}}))).into_response()
}

fn bad_body(family: Family, detail: impl std::fmt::Display) -> Failure {
    let code = family.bad_body_code();
    let message = format!("{}: {detail}", table_message(code));
    Failure(family, Rejection::Invalid { code, message })
}

/// Reads a JSON body; policies tell an empty body apart, as VBS does.
fn json_body<T: DeserializeOwned>(body: &Bytes, family: Family) -> Result<T, Failure> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(match family {
            Family::Policy => Failure(
                family,
                Rejection::Invalid {
                    code: code::POLICY_BODY_EMPTY,
                    message: table_message(code::POLICY_BODY_EMPTY).to_owned(),
                },
            ),
            _ => bad_body(family, "the request body is empty"),
        });
    }
    serde_json::from_slice(body).map_err(|error| bad_body(family, error))
}

/// `{"<key>": {...}}` bodies: the inner object must be there.
#[derive(Deserialize)]
struct Wrapped<T> {
    backup: Option<T>,
}

#[derive(Deserialize)]
struct RestoreBody {
    restore: Option<RestoreInput>,
}

#[derive(Deserialize)]
struct RestoreInput {
    volume_id: Option<String>,
}

fn backup_object<T: DeserializeOwned>(body: &Bytes, family: Family) -> Result<T, Failure> {
    json_body::<Wrapped<T>>(body, family)?
        .backup
        .ok_or_else(|| bad_body(family, "the body must hold a \"backup\" object"))
}

fn restore_volume_id(body: &Bytes, family: Family) -> Result<Option<String>, Failure> {
    let restore = json_body::<RestoreBody>(body, family)?
        .restore
        .ok_or_else(|| bad_body(family, "the body must hold a \"restore\" object"))?;
    Ok(restore.volume_id)
}

fn checked_cloud_backup_id(backup_id: &str) -> Result<(), Failure> {
    rules::uuid(backup_id).map_err(|v| {
        let message = format!(
            "{}: backup_id {}",
            table_message(code::BACKUP_ID_NOT_UUID),
            v.description
        );
        Failure(
            Family::Cloud,
            Rejection::Invalid {
                code: code::BACKUP_ID_NOT_UUID,
                message,
            },
        )
    })
}

// ------------------------------------------------------------------ helpers

/// `http://<host>` as the caller reached us, for links that point back here.
struct BaseUrl(String);

impl FromRequestParts<SimState> for BaseUrl {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &SimState) -> Result<Self, Self::Rejection> {
        let host = parts
            .headers
            .get(header::HOST)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
            .or_else(|| parts.uri.authority().map(|a| a.to_string()))
            .unwrap_or_else(|| reachable(state.addr()).to_string());
        Ok(BaseUrl(format!("http://{host}")))
    }
}

type Params = Vec<(String, String)>;

fn param<'a>(params: &'a [(String, String)], key: &str) -> Option<&'a str> {
    params.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn query_params(
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
    family: Family,
) -> Result<Params, Failure> {
    query
        .map(|Query(params)| params)
        .map_err(|error| Failure(family, Rejection::BadQuery(error.body_text())))
}

fn integer_param(params: &[(String, String)], key: &str) -> Result<Option<i64>, Rejection> {
    param(params, key)
        .map(|text| {
            text.parse::<i64>()
                .map_err(|_| Rejection::BadQuery(format!("{key} param must be an integer, got \"{text}\"")))
        })
        .transpose()
}

fn backup_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn task_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

fn job_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

fn ok(status: StatusCode, body: Value) -> Reply {
    Ok((status, Json(body)).into_response())
}

// ------------------------------------------------------------ cloudbackups

async fn create_cloud_backup(State(state): State<SimState>, Path(project): Path<String>, body: Bytes) -> Reply {
    let input: CloudBackupInput = backup_object(&body, Family::Cloud)?;
    let job_id = state
        .world()
        .create_cloud_backup(&project, input)
        .within(Family::Cloud)?;
    ok(StatusCode::OK, json!({"job_id": job_id}))
}

async fn restore_cloud_backup(
    State(state): State<SimState>,
    Path((project, backup_id)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    checked_cloud_backup_id(&backup_id)?;
    let volume_id = restore_volume_id(&body, Family::Cloud)?;
    let started = state
        .world()
        .restore_backup(&project, &backup_id, volume_id.as_deref(), false)
        .within(Family::Cloud)?;
    ok(StatusCode::OK, json!({"job_id": started.job_id}))
}

/// The deprecated delete: POST with no body.
async fn delete_cloud_backup(
    State(state): State<SimState>,
    Path((project, backup_id)): Path<(String, String)>,
) -> Reply {
    checked_cloud_backup_id(&backup_id)?;
    let job_id = state
        .world()
        .delete_backup(&project, &backup_id, false)
        .within(Family::Cloud)?;
    ok(StatusCode::OK, json!({"job_id": job_id}))
}

// ------------------------------------------------------------ native backups

fn backup_links(base: &str, project: &str, id: &str) -> Value {
    json!([
        {"href": format!("{base}/v2/{project}/backups/{id}"), "rel": "self"},
        {"href": format!("{base}/{project}/backups/{id}"), "rel": "bookmark"},
    ])
}

fn backup_summary(backup: &Backup, base: &str, project: &str) -> Value {
    json!({
        "id": backup.id,
        "links": backup_links(base, project, &backup.id),
        "name": backup.name,
    })
}

fn backup_detail(backup: &Backup, base: &str, project_id: &str, project: Option<&Project>) -> Value {
    json!({
        "id": backup.id,
        "name": backup.name,
        "status": backup.status.as_str(),
        "description": backup.description,
        "links": backup_links(base, project_id, &backup.id),
        "availability_zone": AVAILABILITY_ZONE,
        "volume_id": backup.volume_id,
        "fail_reason": backup.fail_reason,
        "size": backup.size_gb,
        "object_count": 0,
        "container": backup.snapshot_id,
        "created_at": backup_time(backup.created_at),
        "updated_at": backup_time(backup.updated_at),
        "data_timestamp": backup_time(backup.created_at),
        "os-bak-tenant-attr:tenant_id": project_id,
        "service_metadata": backup.service_metadata(),
        "has_dependent_backups": project.is_some_and(|p| p.has_dependent_backups(backup)),
        "snapshot_id": backup.snapshot_id,
        "is_incremental": backup.incremental,
    })
}

async fn create_native_backup(
    State(state): State<SimState>,
    Path(project): Path<String>,
    BaseUrl(base): BaseUrl,
    body: Bytes,
) -> Reply {
    let input: NativeBackupInput = backup_object(&body, Family::Native)?;
    let backup = state
        .world()
        .create_native_backup(&project, input)
        .within(Family::Native)?;
    ok(
        StatusCode::ACCEPTED,
        json!({"backup": backup_summary(&backup, &base, &project)}),
    )
}

async fn show_backup(
    State(state): State<SimState>,
    Path((project_id, backup_id)): Path<(String, String)>,
    BaseUrl(base): BaseUrl,
) -> Reply {
    let world = state.world();
    let backup = world
        .backup(&project_id, &backup_id)
        .ok_or_else(|| backup_not_found(&backup_id))?;
    let detail = backup_detail(backup, &base, &project_id, world.project(&project_id));
    ok(StatusCode::OK, json!({"backup": detail}))
}

fn backup_not_found(backup_id: &str) -> Failure {
    Failure(
        Family::Native,
        Rejection::NotFound {
            code: code::RESTORE_NOT_FOUND,
            resource: Resource::Backup,
            id: backup_id.to_owned(),
        },
    )
}

async fn delete_native_backup(
    State(state): State<SimState>,
    Path((project, backup_id)): Path<(String, String)>,
) -> Reply {
    state
        .world()
        .delete_backup(&project, &backup_id, true)
        .within(Family::Native)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn restore_native_backup(
    State(state): State<SimState>,
    Path((project, backup_id)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let volume_id = restore_volume_id(&body, Family::Native)?;
    let started = state
        .world()
        .restore_backup(&project, &backup_id, volume_id.as_deref(), true)
        .within(Family::Native)?;
    let restore = json!({
        "backup_id": started.backup_id,
        "volume_id": started.volume_id,
        "volume_name": started.volume_name,
    });
    ok(StatusCode::ACCEPTED, json!({"restore": restore}))
}

/// Everything but RFC 3986's unreserved characters is escaped in link queries.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Filters a caller gave, echoed into the next link so the next page is the
/// same list.
const LINK_FILTERS: &[&str] = &["name", "status", "volume_id", "sort_key", "sort_dir"];

/// Reads list parameters the way Cinder does: limit and offset must be
/// non-negative integers, a limit of 0 or above 1000 means 1000.
fn backup_query(params: &[(String, String)]) -> Result<BackupQuery, Rejection> {
    let max = *rules::LIST_LIMIT.end();
    let limit = match integer_param(params, "limit")? {
        None | Some(0) => max,
        Some(limit) if limit < 0 => {
            return Err(Rejection::BadQuery(format!(
                "limit param must be positive, got {limit}"
            )));
        }
        Some(limit) => limit.min(max),
    };
    let offset = integer_param(params, "offset")?.unwrap_or(0);
    rules::offset(offset).map_err(|v| Rejection::BadQuery(format!("offset param {}", v.description)))?;
    let sort_key = param(params, "sort_key").unwrap_or("created_at");
    rules::one_of(sort_key, rules::BACKUP_SORT_KEYS)
        .map_err(|v| Rejection::BadQuery(format!("Invalid sort key {sort_key}: {}", v.description)))?;
    let sort_dir = param(params, "sort_dir").unwrap_or("desc");
    let sort_dir = SortDir::parse(sort_dir)
        .ok_or_else(|| Rejection::BadQuery(format!("Invalid sort direction {sort_dir}: must be one of asc, desc")))?;
    let text = |key: &str| param(params, key).map(str::to_owned);
    Ok(BackupQuery {
        name: text("name"),
        status: text("status"),
        volume_id: text("volume_id"),
        sort_key: sort_key.to_owned(),
        sort_dir,
        marker: text("marker"),
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    })
}

fn next_link(base: &str, project: &str, path: &str, params: &[(String, String)], limit: usize, marker: &str) -> Value {
    let encode = |text: &str| utf8_percent_encode(text, QUERY_VALUE).to_string();
    let mut href = format!("{base}/v2/{project}/{path}?limit={limit}&marker={}", encode(marker));
    for key in LINK_FILTERS {
        if let Some(value) = param(params, key) {
            href.push_str(&format!("&{key}={}", encode(value)));
        }
    }
    json!([{"href": href, "rel": "next"}])
}

async fn list_backups(
    State(state): State<SimState>,
    Path(project): Path<String>,
    BaseUrl(base): BaseUrl,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    list_backups_as(&state, &project, &base, query, false)
}

async fn list_backup_details(
    State(state): State<SimState>,
    Path(project): Path<String>,
    BaseUrl(base): BaseUrl,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    list_backups_as(&state, &project, &base, query, true)
}

fn list_backups_as(
    state: &SimState,
    project_id: &str,
    base: &str,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
    detail: bool,
) -> Reply {
    let params = query_params(query, Family::Native)?;
    let query = backup_query(&params).within(Family::Native)?;
    let world = state.world();
    let page = world.list_backups(project_id, &query).within(Family::Native)?;
    let backups: Vec<Value> = page
        .backups
        .iter()
        .map(|b| {
            if detail {
                backup_detail(b, base, project_id, page.project)
            } else {
                backup_summary(b, base, project_id)
            }
        })
        .collect();
    let mut body = json!({"backups": backups});
    if let Some(last) = page.backups.last().filter(|_| page.more) {
        let path = if detail { "backups/detail" } else { "backups" };
        body["backups_links"] = next_link(base, project_id, path, &params, query.limit, &last.id);
    }
    ok(StatusCode::OK, body)
}

// --------------------------------------------------------------------- jobs

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

async fn show_job(State(state): State<SimState>, Path((project, job_id)): Path<(String, String)>) -> Reply {
    let view = state.world().job(&project, &job_id).within(Family::Cloud)?;
    ok(StatusCode::OK, job_json(&view))
}

// ----------------------------------------------------------------- policies

fn schedule_json(schedule: &Schedule) -> Value {
    let mut map = Map::new();
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(value) = value {
            map.insert(key.to_owned(), value);
        }
    };
    set("start_time", schedule.start_time.clone().map(Value::from));
    set("frequency", schedule.frequency.map(Value::from));
    set("week_frequency", schedule.week_frequency.clone().map(Value::from));
    set("rentention_num", schedule.retention_num.map(Value::from));
    set("rentention_day", schedule.retention_day.map(Value::from));
    set(
        "remain_first_backup_of_curMonth",
        schedule.remain_first_backup_of_cur_month.clone().map(Value::from),
    );
    set("status", schedule.status.clone().map(Value::from));
    Value::Object(map)
}

fn policy_json(policy: &Policy) -> Value {
    let mut body = json!({
        "backup_policy_id": policy.id,
        "backup_policy_name": policy.name,
        "scheduled_policy": schedule_json(&policy.schedule),
        "policy_resource_count": policy.resources.len(),
    });
    if !policy.tags.is_empty() {
        let tags: Vec<Value> = policy
            .tags
            .iter()
            .map(|t| json!({"key": t.key, "value": t.value}))
            .collect();
        body["tags"] = Value::from(tags);
    }
    body
}

async fn create_policy(State(state): State<SimState>, Path(project): Path<String>, body: Bytes) -> Reply {
    let input: PolicyInput = json_body(&body, Family::Policy)?;
    let id = state.world().create_policy(&project, input).within(Family::Policy)?;
    ok(StatusCode::OK, json!({"backup_policy_id": id}))
}

async fn list_policies(State(state): State<SimState>, Path(project): Path<String>) -> Reply {
    let policies: Vec<Value> = state.world().policies(&project).iter().map(policy_json).collect();
    ok(StatusCode::OK, json!({"backup_policies": policies}))
}

async fn update_policy(
    State(state): State<SimState>,
    Path((project, policy_id)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let input: PolicyInput = json_body(&body, Family::Policy)?;
    let id = state
        .world()
        .update_policy(&project, &policy_id, input)
        .within(Family::Policy)?;
    ok(StatusCode::OK, json!({"backup_policy_id": id}))
}

async fn delete_policy(State(state): State<SimState>, Path((project, policy_id)): Path<(String, String)>) -> Reply {
    state
        .world()
        .delete_policy(&project, &policy_id)
        .within(Family::Policy)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

async fn execute_policy(State(state): State<SimState>, Path((project, policy_id)): Path<(String, String)>) -> Reply {
    state
        .world()
        .execute_policy(&project, &policy_id)
        .within(Family::Policy)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn outcome_json(outcome: &ResourceOutcome, full: bool) -> Value {
    let resource = |r: &ResourceRef| {
        if full {
            json!({
                "resource_id": r.resource_id,
                "resource_type": "volume",
                "availability_zone": r.availability_zone,
                "os_vol_host_attr": r.host,
            })
        } else {
            json!({"resource_id": r.resource_id})
        }
    };
    let failures: Vec<Value> = outcome
        .failures
        .iter()
        .map(|f| {
            let mut entry = resource(&f.resource);
            entry["code"] = Value::from(f.code);
            entry["message"] = Value::from(f.message.clone());
            entry
        })
        .collect();
    let successes: Vec<Value> = outcome.successes.iter().map(resource).collect();
    json!({"success_resources": successes, "fail_resources": failures})
}

async fn associate_resources(State(state): State<SimState>, Path(project): Path<String>, body: Bytes) -> Reply {
    let input: AssociateInput = json_body(&body, Family::Policy)?;
    let outcome = state.world().associate(&project, input).within(Family::Policy)?;
    ok(StatusCode::OK, outcome_json(&outcome, true))
}

async fn disassociate_resources(
    State(state): State<SimState>,
    Path((project, policy_id)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let input: DisassociateInput = json_body(&body, Family::Policy)?;
    let outcome = state
        .world()
        .disassociate(&project, &policy_id, input)
        .within(Family::Policy)?;
    ok(StatusCode::OK, outcome_json(&outcome, false))
}

/// Reads task list parameters: newest first, 20 a page unless asked.
fn task_query(params: &[(String, String)]) -> Result<TaskQuery, Rejection> {
    let sort_order = param(params, "sort_order").unwrap_or("desc");
    let sort_dir = SortDir::parse(sort_order)
        .ok_or_else(|| Rejection::BadQuery(format!("sort_order must be asc or desc, got \"{sort_order}\"")))?;
    if let Some(key) = param(params, "sort_key") {
        rules::one_of(key, &[rules::TASK_SORT_KEY])
            .map_err(|v| Rejection::BadQuery(format!("sort_key {}", v.description)))?;
    }
    let limit = integer_param(params, "limit")?.unwrap_or(20);
    rules::in_range(limit, &rules::LIST_LIMIT).map_err(|v| Rejection::BadQuery(format!("limit {}", v.description)))?;
    let offset = integer_param(params, "offset")?.unwrap_or(0);
    rules::offset(offset).map_err(|v| Rejection::BadQuery(format!("offset {}", v.description)))?;
    let text = |key: &str| param(params, key).map(str::to_owned);
    Ok(TaskQuery {
        sort_dir,
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        marker: text("marker"),
        job_id: text("job_id"),
        status: text("status"),
    })
}

fn task_json(view: &TaskView) -> Value {
    let task = &view.task;
    let mut body = json!({
        "status": view.status.as_str(),
        "job_id": task.id,
        "created_at": task_time(task.created_at),
        "backup_name": task.backup_name,
        "resource_id": task.resource_id,
        "resource_type": "volume",
    });
    if let Some(finished) = view.finished_at {
        body["finished_at"] = Value::from(task_time(finished));
    }
    if let Some(job_id) = &task.job_id {
        body["vbs_job_id"] = Value::from(job_id.clone());
    }
    body
}

async fn list_tasks(
    State(state): State<SimState>,
    Path((project, policy_id)): Path<(String, String)>,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let params = query_params(query, Family::Policy)?;
    let query = task_query(&params).within(Family::Policy)?;
    let page = state
        .world()
        .list_tasks(&project, &policy_id, &query)
        .within(Family::Policy)?;
    let tasks: Vec<Value> = page.tasks.iter().map(task_json).collect();
    ok(StatusCode::OK, json!({"count": page.count, "tasks": tasks}))
}

// -------------------------------------------------------------------- admin

#[derive(Deserialize, Default)]
struct FailRequest {
    error_code: Option<String>,
    fail_reason: Option<String>,
}

fn admin_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": {"code": "SIMULATOR.BAD_REQUEST", "message": message.into()}});
    (status, Json(body)).into_response()
}

async fn admin_fail_job(State(state): State<SimState>, Path(job_id): Path<String>, body: Bytes) -> Response {
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

async fn admin_advance_clock(State(state): State<SimState>, Query(params): Query<Params>) -> Response {
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

async fn admin_volumes(State(state): State<SimState>) -> Response {
    let volumes: Vec<Value> = state
        .world()
        .volumes()
        .iter()
        .map(|v| json!({"id": v.id, "name": v.name, "size": v.size_gb, "status": v.status}))
        .collect();
    (StatusCode::OK, Json(json!({"volumes": volumes}))).into_response()
}
