//! The HTTP face of the simulator: VBS paths and status codes, JSON in and
//! out, the error body shape of each API family, and request recording. One
//! module per area (backups, policies, tags, shares, jobs) and one for admin.

mod admin;
mod backups;
mod jobs;
mod policies;
mod shares;
mod tags;

use std::convert::Infallible;

use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, FromRequestParts, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::apig::{MAX_BODY, is_admin_path, request_id};
use super::auth::{self, IAM_TOKENS_PATH};
use super::faults::answer_injected_errors;
use super::state::{Rejection, code, table_message};
use super::{RecordedRequest, SimState, reachable};

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
        // The gateway's 12 MB limit, not axum's 2 MB default for body extractors.
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The VBS REST API, under the paths VBS serves it.
fn api_routes(state: SimState) -> Router {
    Router::new()
        .route("/v2/{project_id}/cloudbackups", post(backups::create_cloud_backup))
        .route(
            "/v2/{project_id}/cloudbackups/{backup_id}",
            post(backups::delete_cloud_backup),
        )
        .route(
            "/v2/{project_id}/cloudbackups/{backup_id}/restore",
            post(backups::restore_cloud_backup),
        )
        .route(
            "/v2/{project_id}/backups",
            post(backups::create_native_backup).get(backups::list_backups),
        )
        .route("/v2/{project_id}/backups/detail", get(backups::list_backup_details))
        .route(
            "/v2/{project_id}/backups/{backup_id}",
            get(backups::show_backup).delete(backups::delete_native_backup),
        )
        .route(
            "/v2/{project_id}/backups/{backup_id}/restore",
            post(backups::restore_native_backup),
        )
        .route(
            "/v2/{project_id}/backuppolicy",
            post(policies::create_policy).get(policies::list_policies),
        )
        .route(
            "/v2/{project_id}/backuppolicy/{policy_id}",
            put(policies::update_policy).delete(policies::delete_policy),
        )
        .route(
            "/v2/{project_id}/backuppolicy/{policy_id}/action",
            post(policies::execute_policy),
        )
        .route(
            "/v2/{project_id}/backuppolicy/{policy_id}/backuptasks",
            get(policies::list_tasks),
        )
        .route(
            "/v2/{project_id}/backuppolicyresources",
            post(policies::associate_resources),
        )
        .route(
            "/v2/{project_id}/backuppolicyresources/{policy_id}/deleted_resources",
            post(policies::disassociate_resources),
        )
        .route(
            "/v2/{project_id}/backuppolicy/{policy_id}/tags",
            post(tags::add_tag).get(tags::list_tags),
        )
        .route(
            "/v2/{project_id}/backuppolicy/{policy_id}/tags/action",
            post(tags::batch_tags).delete(tags::delete_action_tag),
        )
        .route(
            "/v2/{project_id}/backuppolicy/{policy_id}/tags/{key}",
            delete(tags::delete_tag),
        )
        .route(
            "/v2/{project_id}/backuppolicy/resource_instances/action",
            post(tags::search_policies),
        )
        .route("/v2/{project_id}/os-vendor-backup-sharing", post(shares::share_backup))
        .route(
            "/v2/{project_id}/os-vendor-backup-sharing/detail",
            get(shares::list_shares),
        )
        .route(
            "/v2/{project_id}/os-vendor-backup-sharing/{id}",
            get(shares::show_share).delete(shares::delete_share),
        )
        .route("/v1/{project_id}/jobs/{job_id}", get(jobs::show_job))
        // The API gateway publishes each method of a path as its own API.
        .method_not_allowed_fallback(unknown_api)
        .with_state(state)
}

/// IAM's token endpoint, as far as VBS clients need it: password in, token out.
fn iam_routes(state: SimState) -> Router {
    Router::new()
        .route(IAM_TOKENS_PATH, post(auth::issue_token))
        .with_state(state)
}

/// Routes for demos and manual testing; not part of VBS, never recorded.
fn admin_routes(state: SimState) -> Router {
    Router::new()
        .route("/simulator/jobs/{job_id}/fail", post(admin::fail_job))
        .route("/simulator/clock/advance", post(admin::advance_clock))
        .route("/simulator/volumes", get(admin::volumes))
        .route(
            "/simulator/requests",
            get(admin::requests).delete(admin::clear_requests),
        )
        .route("/simulator/faults/delay", post(admin::delay_requests))
        .route("/simulator/faults/errors", post(admin::inject_errors))
        .with_state(state)
}

pub(crate) async fn record_requests(State(state): State<SimState>, request: Request, next: Next) -> Response {
    record(&state, request, next, recorded_body).await
}

/// Records every request with its body as received: for the other services'
/// listeners, whose requests carry no password.
pub(crate) async fn record_unredacted(State(state): State<SimState>, request: Request, next: Next) -> Response {
    record(&state, request, next, |_, bytes| {
        String::from_utf8_lossy(bytes).into_owned()
    })
    .await
}

/// Records the request, its body as `body_of` keeps it (by path and bytes).
pub(crate) async fn record(
    state: &SimState,
    request: Request,
    next: Next,
    body_of: fn(&str, &[u8]) -> String,
) -> Response {
    if is_admin_path(request.uri().path()) {
        return next.run(request).await;
    }
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return body_too_large();
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
        body: body_of(parts.uri.path(), &bytes),
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

/// 413 in the API gateway's error shape: a client can tell why from the body.
fn body_too_large() -> Response {
    let body = json!({
        "error_code": "APIGW.0201",
        "error_msg": "Request entity too large",
        "request_id": request_id(),
    });
    (StatusCode::PAYLOAD_TOO_LARGE, Json(body)).into_response()
}

pub(crate) async fn unknown_api() -> Response {
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
            // A query error carries a VBS code like a body error does (the
            // reference's badRequest has a string code), not the number 400.
            (Family::Native, Rejection::BadQuery(message)) => {
                let body = json!({"badRequest": {"message": message, "code": code::BAD_BODY}});
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

/// Cinder's paging of a list: limit and offset must be non-negative
/// integers, and a limit of 0 or above 1000 means 1000. Returns (limit, offset).
fn page_params(params: &[(String, String)]) -> Result<(i64, i64), Rejection> {
    let max = *vbs_rules::LIST_LIMIT.end();
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
    vbs_rules::offset(offset).map_err(|v| Rejection::BadQuery(format!("offset param {}", v.description)))?;
    Ok((limit, offset))
}

fn ok(status: StatusCode, body: Value) -> Reply {
    Ok((status, Json(body)).into_response())
}
