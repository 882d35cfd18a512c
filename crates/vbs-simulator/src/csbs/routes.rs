//! The HTTP face of the CSBS simulator: CSBS v1 paths, the protect body
//! checked by the reference's rules, and CSBS's error bodies.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use super::CsbsState;
use super::state::{ProtectRequest, Refusal};
use crate::apig::{MAX_BODY, request_id};
use crate::routes::{record_requests, unknown_api};
use crate::{auth, faults};
use vbs_rules::csbs as rules;

/// The CSBS API behind the crate's authentication, injected faults and
/// request log (outermost), as the VBS simulator's own routes are.
pub(super) fn router(state: CsbsState) -> Router {
    let sim = state.sim.clone();
    let api = Router::new()
        .route(
            "/v1/{project_id}/providers/{provider_id}/resources/{resource_id}/action",
            post(protect),
        )
        .route("/v1/{project_id}/checkpoint_items", get(list_backups))
        .route("/v1/{project_id}/checkpoint_items/{id}", get(show_backup))
        .method_not_allowed_fallback(unknown_api)
        .with_state(state)
        .layer(middleware::from_fn_with_state(sim.clone(), auth::authenticate));
    Router::new()
        .merge(api)
        .fallback(unknown_api)
        .layer(middleware::from_fn_with_state(
            sim.clone(),
            faults::answer_injected_errors,
        ))
        .layer(middleware::from_fn_with_state(sim, record_requests))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            // The CSBS error code table's shape.
            Refusal::Invalid { code, message } => {
                let body = json!({"error_code": code, "error_msg": message, "request_id": request_id()});
                (StatusCode::BAD_REQUEST, Json(body)).into_response()
            }
            // The reference gives no code for an unknown backup; CSBS is
            // built on OpenStack Karbor, which answers a 404 fault.
            Refusal::NotFound { id } => {
                let message = format!("Checkpoint item {id} could not be found.");
                let body = json!({"itemNotFound": {"message": message, "code": 404}});
                (StatusCode::NOT_FOUND, Json(body)).into_response()
            }
        }
    }
}

async fn protect(
    State(state): State<CsbsState>,
    Path((project_id, provider_id, resource_id)): Path<(String, String, String)>,
    body: Bytes,
) -> Result<Response, Refusal> {
    rules::provider_id(&provider_id).map_err(|_| Refusal::invalid("CSBS.9001", "provider invalid"))?;
    let request = protect_request(&body)?;
    let now = state.sim.now();
    let answer = state.world().protect(&project_id, &resource_id, request, now)?;
    Ok((StatusCode::OK, Json(answer)).into_response())
}

async fn show_backup(
    State(state): State<CsbsState>,
    Path((project_id, id)): Path<(String, String)>,
) -> Result<Response, Refusal> {
    let now = state.sim.now();
    let item = state.world().show(&project_id, &id, now)?;
    Ok(Json(json!({"checkpoint_item": item})).into_response())
}

async fn list_backups(
    State(state): State<CsbsState>,
    Path(project_id): Path<String>,
    Query(filters): Query<Vec<(String, String)>>,
) -> Response {
    let now = state.sim.now();
    let items = state.world().list(&project_id, &filters, now);
    Json(json!({"count": items.len(), "checkpoint_items": items})).into_response()
}

/// Reads `{"protect": protect_param}` and checks it by the reference's
/// rules; a broken rule is CSBS.9001 (parameter check failed), a resource
/// type other than a server CSBS.6003.
fn protect_request(body: &[u8]) -> Result<ProtectRequest, Refusal> {
    let invalid = |message: String| Refusal::invalid("CSBS.9001", message);
    let value: Value = serde_json::from_slice(body).map_err(|e| invalid(format!("invalid request body: {e}")))?;
    let Some(Value::Object(param)) = value.get("protect") else {
        return Err(invalid("protect is required and must be an object".into()));
    };
    let text = |key: &str| -> Result<Option<String>, Refusal> {
        match param.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(_) => Err(invalid(format!("{key} must be a string"))),
        }
    };
    let backup_name = text("backup_name")?;
    if let Some(name) = &backup_name {
        rules::backup_name(name).map_err(|v| invalid(format!("backup_name {}", v.description)))?;
    }
    let description = text("description")?;
    if let Some(description) = &description {
        rules::description(description).map_err(|v| invalid(format!("description {}", v.description)))?;
    }
    if let Some(resource_type) = text("resource_type")?
        && rules::resource_type(&resource_type).is_err()
    {
        return Err(Refusal::invalid(
            "CSBS.6003",
            format!("Resource type ({resource_type}) is not support protection."),
        ));
    }
    let incremental = match param.get("incremental") {
        None | Some(Value::Null) => None,
        Some(Value::Bool(flag)) => Some(*flag),
        Some(_) => return Err(invalid("incremental must be a boolean".into())),
    };
    Ok(ProtectRequest {
        backup_name,
        description,
        incremental,
        tags: tags(param)?,
        extra_info: param.get("extra_info").cloned().unwrap_or(Value::Null),
    })
}

/// protect_param.tags: not an empty list, at most 10, unique keys, each key
/// and value by the resource_tag rules (spaces around them dropped).
fn tags(param: &Map<String, Value>) -> Result<Vec<(String, String)>, Refusal> {
    let invalid = |message: String| Refusal::invalid("CSBS.9001", message);
    let list = match param.get("tags") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) if list.is_empty() => return Err(invalid("tags cannot be an empty list".into())),
        Some(Value::Array(list)) => list,
        Some(_) => return Err(invalid("tags must be a list".into())),
    };
    if list.len() > rules::BACKUP_TAGS_MAX {
        return Err(invalid(format!(
            "tags can contain up to {} keys",
            rules::BACKUP_TAGS_MAX
        )));
    }
    let mut tags = Vec::with_capacity(list.len());
    for tag in list {
        let (Some(Value::String(key)), Some(Value::String(value))) = (tag.get("key"), tag.get("value")) else {
            return Err(invalid("each tag needs a string key and value".into()));
        };
        rules::tag_key(key).map_err(|v| invalid(format!("tag key {}", v.description)))?;
        rules::tag_value(value).map_err(|v| invalid(format!("tag value {}", v.description)))?;
        tags.push((key.trim().to_owned(), value.trim().to_owned()));
    }
    if rules::repeated_tag_key(tags.iter().map(|(key, _)| key.as_str())).is_some() {
        return Err(invalid("keys in tags must be unique".into()));
    }
    Ok(tags)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(body: Value) -> (&'static str, String) {
        match protect_request(body.to_string().as_bytes()) {
            Err(Refusal::Invalid { code, message }) => (code, message),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn protect_bodies_are_checked_by_the_reference() {
        let ok = json!({"protect": {"backup_name": "backup", "description": "backup des", "extra_info": {}}});
        assert!(protect_request(ok.to_string().as_bytes()).is_ok());
        assert_eq!(refused(json!({})).0, "CSBS.9001");
        assert!(
            refused(json!({"protect": {"backup_name": "a b"}}))
                .1
                .contains("backup_name")
        );
        assert!(refused(json!({"protect": {"tags": []}})).1.contains("empty list"));
        let twice = json!({"protect": {"tags": [{"key": "a", "value": ""}, {"key": " a", "value": ""}]}});
        assert!(refused(twice).1.contains("unique"));
        let volume = json!({"protect": {"resource_type": "OS::Cinder::Volume"}});
        assert_eq!(refused(volume).0, "CSBS.6003");
    }
}
