//! The backup routes: /cloudbackups (create, restore, the deprecated delete)
//! and the native OpenStack /backups (create, list, show, delete, restore),
//! with their links and Cinder's list parameters.

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::{
    BaseUrl, Failure, Family, Params, Reply, Within, bad_body, json_body, ok, page_params, param, query_params,
};
use crate::SimState;
use crate::state::backups::list::BackupQuery;
use crate::state::backups::{Backup, CloudBackupInput, NativeBackupInput};
use crate::state::{AVAILABILITY_ZONE, Project, Rejection, Resource, SortDir, code, table_message};
use vbs_rules as rules;

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

/// The /cloudbackups restore tells an empty body (nothing, or no
/// "restore" object) apart: VolumeBackup.0210, as the reference's table says.
fn cloud_restore_volume_id(body: &Bytes) -> Result<Option<String>, Failure> {
    let empty = || {
        Failure(
            Family::Cloud,
            Rejection::Invalid {
                code: code::RESTORE_BODY_EMPTY,
                message: table_message(code::RESTORE_BODY_EMPTY).to_owned(),
            },
        )
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(empty());
    }
    let restore = json_body::<RestoreBody>(body, Family::Cloud)?
        .restore
        .ok_or_else(empty)?;
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

fn backup_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

// ------------------------------------------------------------ cloudbackups

pub(super) async fn create_cloud_backup(
    State(state): State<SimState>,
    Path(project): Path<String>,
    body: Bytes,
) -> Reply {
    let input: CloudBackupInput = backup_object(&body, Family::Cloud)?;
    let job_id = state
        .world()
        .create_cloud_backup(&project, input)
        .within(Family::Cloud)?;
    ok(StatusCode::OK, json!({"job_id": job_id}))
}

pub(super) async fn restore_cloud_backup(
    State(state): State<SimState>,
    Path((project, backup_id)): Path<(String, String)>,
    body: Bytes,
) -> Reply {
    checked_cloud_backup_id(&backup_id)?;
    let volume_id = cloud_restore_volume_id(&body)?;
    let started = state
        .world()
        .restore_backup(&project, &backup_id, volume_id.as_deref(), false)
        .within(Family::Cloud)?;
    ok(StatusCode::OK, json!({"job_id": started.job_id}))
}

/// The deprecated delete: POST with no body.
pub(super) async fn delete_cloud_backup(
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

pub(super) async fn create_native_backup(
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

pub(super) async fn show_backup(
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

pub(super) async fn delete_native_backup(
    State(state): State<SimState>,
    Path((project, backup_id)): Path<(String, String)>,
) -> Reply {
    state
        .world()
        .delete_backup(&project, &backup_id, true)
        .within(Family::Native)?;
    Ok(StatusCode::ACCEPTED.into_response())
}

pub(super) async fn restore_native_backup(
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
    let (limit, offset) = page_params(params)?;
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

pub(super) async fn list_backups(
    State(state): State<SimState>,
    Path(project): Path<String>,
    BaseUrl(base): BaseUrl,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    list_backups_as(&state, &project, &base, query, false)
}

pub(super) async fn list_backup_details(
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
