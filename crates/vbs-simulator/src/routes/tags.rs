//! The policy-tag routes: /backuppolicy/{id}/tags (add, list, delete one,
//! batch action) and /backuppolicy/resource_instances/action (filter, count).

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Family, Reply, Within, json_body, ok};
use crate::SimState;
use crate::state::policies::tags::TagSearchInput;
use crate::state::{Tag, TagInput};

#[derive(Debug, Default, Deserialize)]
struct OneTagBody {
    tag: Option<TagInput>,
}

#[derive(Debug, Default, Deserialize)]
struct BatchBody {
    action: Option<String>,
    tags: Option<Vec<TagInput>>,
}

fn tags_json(tags: &[Tag]) -> Value {
    Value::from(
        tags.iter()
            .map(|t| json!({"key": t.key, "value": t.value}))
            .collect::<Vec<_>>(),
    )
}

pub(super) async fn add_tag(
    State(state): State<SimState>,
    Path((project, policy_id)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let input: OneTagBody = json_body(&body, Family::Policy)?;
    state
        .world()
        .add_policy_tag(&project, &policy_id, input.tag)
        .within(Family::Policy)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn list_tags(
    State(state): State<SimState>,
    Path((project, policy_id)): Path<(String, String)>,
) -> Reply {
    let world = state.world();
    let tags = world.policy_tags(&project, &policy_id).within(Family::Policy)?;
    ok(StatusCode::OK, json!({"tags": tags_json(tags)}))
}

pub(super) async fn delete_tag(
    State(state): State<SimState>,
    Path((project, policy_id, key)): Path<(String, String, String)>,
) -> Reply {
    state
        .world()
        .delete_policy_tag(&project, &policy_id, &key)
        .within(Family::Policy)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// DELETE .../tags/action: the tag whose key is "action", whose path the
/// batch route shares.
pub(super) async fn delete_action_tag(
    State(state): State<SimState>,
    Path((project, policy_id)): Path<(String, String)>,
) -> Reply {
    delete_tag(State(state), Path((project, policy_id, "action".to_owned()))).await
}

pub(super) async fn batch_tags(
    State(state): State<SimState>,
    Path((project, policy_id)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    let input: BatchBody = json_body(&body, Family::Policy)?;
    state
        .world()
        .batch_policy_tags(&project, &policy_id, input.action.as_deref(), input.tags)
        .within(Family::Policy)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn search_policies(State(state): State<SimState>, Path(project): Path<String>, body: Bytes) -> Reply {
    let input: TagSearchInput = json_body(&body, Family::Policy)?;
    let world = state.world();
    let found = world.search_policies(&project, input).within(Family::Policy)?;
    if found.count_only {
        return ok(StatusCode::OK, json!({"total_count": found.total}));
    }
    let resources: Vec<Value> = found
        .page
        .iter()
        .map(|p| {
            json!({
                "resource_id": p.id,
                "resource_name": p.name,
                "resource_detail": null,
                "tags": tags_json(&p.tags),
            })
        })
        .collect();
    ok(
        StatusCode::OK,
        json!({"resources": resources, "total_count": found.total}),
    )
}
