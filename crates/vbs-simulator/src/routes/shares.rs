//! The sharing routes: /os-vendor-backup-sharing (share, list with filters
//! and `shared_links`, show, stop), in the native OpenStack error shapes.
//! Times go out without a zone, as VBS sends them (one client fails on `Z`).

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{BaseUrl, Family, Params, Reply, Within, bad_body, json_body, ok, page_params, param, query_params};
use crate::SimState;
use crate::state::backups::Backup;
use crate::state::shares::{Share, ShareQuery};
use crate::state::{AVAILABILITY_ZONE, Rejection, SortDir};

#[derive(Deserialize)]
struct ShareBody {
    shared: Option<NewShare>,
}

#[derive(Deserialize)]
struct NewShare {
    backup_id: Option<String>,
    to_project_ids: Option<Vec<String>>,
}

fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

fn backup_json(backup: &Backup) -> Value {
    json!({
        "id": backup.id,
        "name": backup.name,
        "status": backup.status.as_str(),
        "availability_zone": AVAILABILITY_ZONE,
        "volume_id": backup.volume_id,
        "snapshot_id": backup.snapshot_id,
        "container": backup.snapshot_id,
        "object_count": 0,
        "size": backup.size_gb,
        "created_at": time(backup.created_at),
        "updated_at": time(backup.updated_at),
    })
}

fn share_json(share: &Share, backup: Option<&Backup>) -> Value {
    let mut body = json!({
        "id": share.id,
        "backup_id": share.backup_id,
        "from_project_id": share.from_project_id,
        "to_project_id": share.to_project_id,
        "created_at": time(share.created_at),
        "updated_at": time(share.created_at),
        "deleted": false,
        "deleted_at": null,
    });
    if let Some(backup) = backup {
        body["backup"] = backup_json(backup);
    }
    body
}

pub(super) async fn share_backup(State(state): State<SimState>, Path(project): Path<String>, body: Bytes) -> Reply {
    let input: ShareBody = json_body(&body, Family::Native)?;
    let shared = input
        .shared
        .ok_or_else(|| bad_body(Family::Native, "the body must hold a \"shared\" object"))?;
    let made = state
        .world()
        .share_backup(
            &project,
            shared.backup_id.as_deref().unwrap_or_default(),
            &shared.to_project_ids.unwrap_or_default(),
        )
        .within(Family::Native)?;
    let shares: Vec<Value> = made.iter().map(|s| share_json(s, None)).collect();
    ok(StatusCode::OK, json!({"shared": shares}))
}

/// Reads the list parameters: Cinder's paging (limit 0 or over 1000 means 1000).
fn share_query(params: &[(String, String)]) -> Result<ShareQuery, Rejection> {
    let (limit, offset) = page_params(params)?;
    let sort_dir =
        match param(params, "sort_dir") {
            None => None,
            Some(dir) => Some(SortDir::parse(dir).ok_or_else(|| {
                Rejection::BadQuery(format!("Invalid sort direction {dir}: must be one of asc, desc"))
            })?),
        };
    let share_to_me = match param(params, "share_to_me") {
        None => false,
        Some(flag) => flag
            .parse::<bool>()
            .map_err(|_| Rejection::BadQuery(format!("share_to_me must be true or false, got \"{flag}\"")))?,
    };
    let text = |key: &str| param(params, key).map(str::to_owned);
    Ok(ShareQuery {
        share_to_me,
        name: text("name"),
        status: text("status"),
        backup_id: text("backup_id"),
        from_project_id: text("from_project_id"),
        to_project_id: text("to_project_id"),
        availability_zone: text("availability_zone"),
        volume_id: text("volume_id"),
        sort_dir,
        marker: text("marker"),
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        limit: usize::try_from(limit).unwrap_or(usize::MAX),
    })
}

pub(super) async fn list_shares(
    State(state): State<SimState>,
    Path(project): Path<String>,
    BaseUrl(base): BaseUrl,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let params = query_params(query, Family::Native)?;
    let query = share_query(&params).within(Family::Native)?;
    let world = state.world();
    let page = world.list_shares(&project, &query).within(Family::Native)?;
    let shares: Vec<Value> = page.shares.iter().map(|(s, b)| share_json(s, Some(b))).collect();
    let mut body = json!({"shared": shares});
    if let Some((last, _)) = page.shares.last().filter(|_| page.more) {
        let mut href = format!(
            "{base}/v2/{project}/os-vendor-backup-sharing/detail?limit={}&marker={}",
            query.limit, last.id
        );
        if query.share_to_me {
            href.push_str("&share_to_me=true");
        }
        body["shared_links"] = json!([{"href": href, "rel": "next"}]);
    }
    ok(StatusCode::OK, body)
}

pub(super) async fn show_share(
    State(state): State<SimState>,
    Path((project, share_id)): Path<(String, String)>,
) -> Reply {
    let world = state.world();
    let (share, backup) = world.share(&project, &share_id).within(Family::Native)?;
    ok(StatusCode::OK, json!({"shared": share_json(share, Some(backup))}))
}

pub(super) async fn delete_share(
    State(state): State<SimState>,
    Path((project, id)): Path<(String, String)>,
    query: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Reply {
    let params = query_params(query, Family::Native)?;
    let is_backup_id = match param(&params, "is_backup_id") {
        None => false,
        Some(flag) => flag
            .parse::<bool>()
            .map_err(|_| Rejection::BadQuery(format!("is_backup_id must be true or false, got \"{flag}\"")))
            .within(Family::Native)?,
    };
    state
        .world()
        .delete_share(&project, &id, is_backup_id)
        .within(Family::Native)?;
    ok(StatusCode::OK, json!({}))
}
