//! The policy routes: /backuppolicy (create, list, update, delete, execute,
//! tasks) and /backuppolicyresources (associate, disassociate).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

use super::{Family, Params, Reply, Within, integer_param, json_body, ok, param, query_params};
use crate::SimState;
use crate::state::policies::schedule::Schedule;
use crate::state::policies::tasks::{TaskQuery, TaskView};
use crate::state::policies::{AssociateInput, DisassociateInput, Policy, PolicyInput, ResourceOutcome, ResourceRef};
use crate::state::{Rejection, SortDir};
use vbs_rules as rules;

fn task_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
}

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

pub(super) async fn create_policy(State(state): State<SimState>, Path(project): Path<String>, body: Bytes) -> Reply {
    let input: PolicyInput = json_body(&body, Family::Policy)?;
    let id = state.world().create_policy(&project, input).within(Family::Policy)?;
    ok(StatusCode::OK, json!({"backup_policy_id": id}))
}

pub(super) async fn list_policies(State(state): State<SimState>, Path(project): Path<String>) -> Reply {
    let policies: Vec<Value> = state.world().policies(&project).iter().map(policy_json).collect();
    ok(StatusCode::OK, json!({"backup_policies": policies}))
}

pub(super) async fn update_policy(
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

pub(super) async fn delete_policy(
    State(state): State<SimState>,
    Path((project, policy_id)): Path<(String, String)>,
) -> Reply {
    state
        .world()
        .delete_policy(&project, &policy_id)
        .within(Family::Policy)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

pub(super) async fn execute_policy(
    State(state): State<SimState>,
    Path((project, policy_id)): Path<(String, String)>,
) -> Reply {
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

pub(super) async fn associate_resources(
    State(state): State<SimState>,
    Path(project): Path<String>,
    body: Bytes,
) -> Reply {
    let input: AssociateInput = json_body(&body, Family::Policy)?;
    let outcome = state.world().associate(&project, input).within(Family::Policy)?;
    ok(StatusCode::OK, outcome_json(&outcome, true))
}

pub(super) async fn disassociate_resources(
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

pub(super) async fn list_tasks(
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
