//! BackupService: validates each backup RPC, turns it into its VBS REST call,
//! and turns the reply into the typed contract (description and
//! service_metadata decoded from the JSON text VBS stores).

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use tonic::{Request, Response, Status};

use super::{Upstream, Violations, non_empty, text, timestamp};
use crate::proto::pb::{self, BackupStatus, backup_service_server::BackupService};
use crate::rest::backups::{self as rest, BackupQuery, BackupsApi};
use crate::rest::{CallContext, lenient};
use vbs_rules as rules;

type RpcResult<T> = Result<Response<T>, Status>;

pub struct Backups {
    upstream: Upstream,
}

impl Backups {
    pub fn new(upstream: Upstream) -> Backups {
        Backups { upstream }
    }

    fn api<'a>(&'a self, ctx: &'a CallContext) -> BackupsApi<'a> {
        BackupsApi {
            transport: &self.upstream.transport,
            ctx,
        }
    }
}

#[tonic::async_trait]
impl BackupService for Backups {
    async fn create_backup(&self, request: Request<pb::CreateBackupRequest>) -> RpcResult<pb::CreateBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_create_backup(&req)?;
        let extend_param = req
            .full_backup
            .map(|full| BTreeMap::from([("FullBackup".to_string(), full.to_string())]))
            .unwrap_or_default();
        let body = rest::CreateCloudBackup {
            backup: rest::CloudBackupSpec {
                volume_id: req.volume_id,
                snapshot_id: non_empty(&req.snapshot_id),
                name: req.name,
                description: non_empty(&req.description),
                tags: req.tags.into_iter().map(rest_tag).collect(),
                extend_param,
            },
        };
        let started = self.api(&ctx).create_cloud_backup(&body).await?;
        Ok(Response::new(pb::CreateBackupResponse { job_id: started.job_id }))
    }

    async fn restore_backup(&self, request: Request<pb::RestoreBackupRequest>) -> RpcResult<pb::RestoreBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_restore(&req.backup_id, &req.volume_id)?;
        let started = self
            .api(&ctx)
            .restore_cloud_backup(&req.backup_id, &restore_body(req.volume_id))
            .await?;
        Ok(Response::new(pb::RestoreBackupResponse { job_id: started.job_id }))
    }

    async fn delete_cloud_backup(
        &self,
        request: Request<pb::DeleteCloudBackupRequest>,
    ) -> RpcResult<pb::DeleteCloudBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_backup_id(&req.backup_id)?;
        let started = self.api(&ctx).delete_cloud_backup(&req.backup_id).await?;
        Ok(Response::new(pb::DeleteCloudBackupResponse { job_id: started.job_id }))
    }

    async fn create_native_backup(
        &self,
        request: Request<pb::CreateNativeBackupRequest>,
    ) -> RpcResult<pb::CreateNativeBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_create_native_backup(&req)?;
        let body = rest::CreateNativeBackup {
            backup: rest::NativeBackupSpec {
                volume_id: req.volume_id,
                snapshot_id: req.snapshot_id,
                name: non_empty(&req.name),
                description: non_empty(&req.description),
                container: non_empty(&req.container),
                incremental: req.incremental,
                force: req.force,
            },
        };
        let created = self.api(&ctx).create_native_backup(&body).await?;
        Ok(Response::new(pb::CreateNativeBackupResponse {
            backup: Some(summary(created.backup)),
        }))
    }

    async fn list_backups(&self, request: Request<pb::ListBackupsRequest>) -> RpcResult<pb::ListBackupsResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        let filter = list_filter!(req);
        let query = filter.query()?;
        let page = self.api(&ctx).list_backups(&query).await?;
        let last_id = page.backups.last().map(|b| b.id.clone());
        Ok(Response::new(pb::ListBackupsResponse {
            next_marker: text(rest::next_marker(&page.backups_links, last_id.as_deref())),
            backups_links: page.backups_links.into_iter().map(link).collect(),
            backups: page.backups.into_iter().map(summary).collect(),
        }))
    }

    async fn list_backup_details(
        &self,
        request: Request<pb::ListBackupDetailsRequest>,
    ) -> RpcResult<pb::ListBackupDetailsResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        let filter = list_filter!(req);
        let mut violations = Violations::default();
        violations.optional_word("sort_key", &req.sort_key, rules::BACKUP_SORT_KEYS);
        violations.optional_word("sort_dir", &req.sort_dir, rules::SORT_DIRECTIONS);
        let mut query = filter.query_checked(violations)?;
        query.sort_key = non_empty(&req.sort_key);
        query.sort_dir = non_empty(&req.sort_dir);
        let page = self.api(&ctx).list_backup_details(&query).await?;
        let last_id = page.backups.last().map(|b| b.id.clone());
        Ok(Response::new(pb::ListBackupDetailsResponse {
            next_marker: text(rest::next_marker(&page.backups_links, last_id.as_deref())),
            backups_links: page.backups_links.into_iter().map(link).collect(),
            backups: page.backups.into_iter().map(backup).collect(),
        }))
    }

    async fn get_backup(&self, request: Request<pb::GetBackupRequest>) -> RpcResult<pb::GetBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_backup_id(&req.backup_id)?;
        let reply = self.api(&ctx).get_backup(&req.backup_id).await?;
        Ok(Response::new(pb::GetBackupResponse {
            backup: Some(backup(reply.backup)),
        }))
    }

    async fn delete_backup(&self, request: Request<pb::DeleteBackupRequest>) -> RpcResult<pb::DeleteBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_backup_id(&req.backup_id)?;
        self.api(&ctx).delete_backup(&req.backup_id).await?;
        Ok(Response::new(pb::DeleteBackupResponse {}))
    }

    async fn restore_native_backup(
        &self,
        request: Request<pb::RestoreNativeBackupRequest>,
    ) -> RpcResult<pb::RestoreNativeBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_restore(&req.backup_id, &req.volume_id)?;
        let reply = self
            .api(&ctx)
            .restore_native_backup(&req.backup_id, &restore_body(req.volume_id))
            .await?;
        let restore = reply.restore;
        Ok(Response::new(pb::RestoreNativeBackupResponse {
            backup_id: text(restore.backup_id),
            volume_id: text(restore.volume_id),
            volume_name: text(restore.volume_name),
        }))
    }
}

fn validate_create_backup(req: &pb::CreateBackupRequest) -> Result<(), crate::error::Error> {
    let mut v = Violations::default();
    v.uuid("volume_id", &req.volume_id);
    v.optional_uuid("snapshot_id", &req.snapshot_id);
    v.check("name", rules::backup_name(&req.name));
    v.check(
        "description",
        rules::description(&req.description, rules::CLOUD_BACKUP_DESCRIPTION_MAX),
    );
    for (i, tag) in req.tags.iter().enumerate() {
        v.check(&format!("tags[{i}].key"), rules::tag_key(&tag.key));
        v.check(&format!("tags[{i}].value"), rules::tag_value(&tag.value));
    }
    v.finish()
}

fn validate_create_native_backup(req: &pb::CreateNativeBackupRequest) -> Result<(), crate::error::Error> {
    let mut v = Violations::default();
    v.uuid("volume_id", &req.volume_id);
    v.uuid("snapshot_id", &req.snapshot_id);
    if !req.name.is_empty() {
        v.check("name", rules::backup_name(&req.name));
    }
    v.check(
        "description",
        rules::description(&req.description, rules::NATIVE_BACKUP_DESCRIPTION_MAX),
    );
    v.finish()
}

fn validate_backup_id(backup_id: &str) -> Result<(), crate::error::Error> {
    let mut v = Violations::default();
    v.uuid("backup_id", backup_id);
    v.finish()
}

fn validate_restore(backup_id: &str, volume_id: &str) -> Result<(), crate::error::Error> {
    let mut v = Violations::default();
    v.uuid("backup_id", backup_id);
    v.uuid("volume_id", volume_id);
    v.finish()
}

/// The filters both list RPCs share, taken from either request type.
macro_rules! list_filter {
    ($req:expr) => {
        ListFilter {
            name: &$req.name,
            status: $req.status,
            volume_id: &$req.volume_id,
            limit: $req.limit,
            offset: $req.offset,
            marker: &$req.marker,
        }
    };
}
use list_filter;

/// The filters both list RPCs share.
struct ListFilter<'a> {
    name: &'a str,
    status: i32,
    volume_id: &'a str,
    limit: i32,
    offset: i32,
    marker: &'a str,
}

impl ListFilter<'_> {
    fn query(&self) -> Result<BackupQuery, crate::error::Error> {
        self.query_checked(Violations::default())
    }

    /// Validates the filters beside the violations already found, and builds the query.
    fn query_checked(&self, mut v: Violations) -> Result<BackupQuery, crate::error::Error> {
        let status = BackupStatus::try_from(self.status);
        v.known_enum("status", status.is_ok());
        v.optional_uuid("volume_id", self.volume_id);
        v.optional_uuid("marker", self.marker);
        v.limit("limit", self.limit);
        v.offset("offset", self.offset);
        v.finish()?;
        Ok(BackupQuery {
            name: non_empty(self.name),
            status: status.ok().and_then(backup_status_wire).map(str::to_string),
            volume_id: non_empty(self.volume_id),
            limit: (self.limit != 0).then_some(i64::from(self.limit)),
            offset: (self.offset != 0).then_some(i64::from(self.offset)),
            marker: non_empty(self.marker),
            ..BackupQuery::default()
        })
    }
}

fn restore_body(volume_id: String) -> rest::Restore {
    rest::Restore {
        restore: rest::RestoreTarget { volume_id },
    }
}

pub fn rest_tag(tag: pb::Tag) -> rest::Tag {
    rest::Tag {
        key: tag.key,
        value: Some(tag.value),
    }
}

pub fn pb_tag(tag: rest::Tag) -> pb::Tag {
    pb::Tag {
        key: tag.key,
        value: text(tag.value),
    }
}

fn link(link: rest::Link) -> pb::Link {
    pb::Link {
        href: link.href,
        rel: link.rel,
    }
}

fn summary(backup: rest::BackupSummary) -> pb::BackupSummary {
    pb::BackupSummary {
        id: backup.id,
        name: text(backup.name),
        links: backup.links.into_iter().map(link).collect(),
    }
}

/// The VBS spelling of a backup status.
fn backup_status_wire(status: BackupStatus) -> Option<&'static str> {
    Some(match status {
        BackupStatus::Unspecified => return None,
        BackupStatus::Available => "available",
        BackupStatus::Error => "error",
        BackupStatus::Restoring => "restoring",
        BackupStatus::Creating => "creating",
        BackupStatus::Deleting => "deleting",
        BackupStatus::ErrorRestoring => "error_restoring",
    })
}

fn backup_status(raw: &str) -> BackupStatus {
    match raw {
        "available" => BackupStatus::Available,
        "error" => BackupStatus::Error,
        "restoring" => BackupStatus::Restoring,
        "creating" => BackupStatus::Creating,
        "deleting" => BackupStatus::Deleting,
        "error_restoring" => BackupStatus::ErrorRestoring,
        _ => BackupStatus::Unspecified,
    }
}

pub fn backup(detail: rest::BackupDetail) -> pb::Backup {
    let status_raw = text(detail.status);
    pb::Backup {
        status: backup_status(&status_raw) as i32,
        status_raw,
        id: detail.id,
        name: text(detail.name),
        description: detail.description.map(|raw| description(&raw)),
        availability_zone: text(detail.availability_zone),
        volume_id: text(detail.volume_id),
        fail_reason: text(detail.fail_reason),
        size: detail.size.unwrap_or_default(),
        object_count: detail.object_count,
        container: text(detail.container),
        created_at: timestamp(detail.created_at.as_deref()),
        updated_at: timestamp(detail.updated_at.as_deref()),
        data_timestamp: timestamp(detail.data_timestamp.as_deref()),
        tenant_id: text(detail.tenant_id),
        service_metadata: detail.service_metadata.as_ref().and_then(service_metadata),
        has_dependent_backups: detail.has_dependent_backups,
        snapshot_id: text(detail.snapshot_id),
        is_incremental: detail.is_incremental,
        links: detail.links.into_iter().map(link).collect(),
    }
}

/// `{"DESC": ..., "INC": ...}` text, or a plain description.
fn description(raw: &str) -> pb::BackupDescription {
    let parsed = serde_json::from_str::<Map<String, Value>>(raw.trim())
        .ok()
        .filter(|m| m.contains_key("DESC") || m.contains_key("INC"));
    let Some(fields) = parsed else {
        return pb::BackupDescription {
            text: raw.to_string(),
            incremental: None,
            raw: raw.to_string(),
        };
    };
    pb::BackupDescription {
        text: fields.get("DESC").and_then(lenient::as_text).unwrap_or_default(),
        incremental: fields.get("INC").and_then(lenient::as_bool),
        raw: raw.to_string(),
    }
}

/// The metadata JSON (text or object); keys not in the contract go to `other`.
fn service_metadata(value: &Value) -> Option<pb::ServiceMetadata> {
    let (raw, fields) = match value {
        Value::Null => return None,
        Value::String(raw) => (raw.clone(), serde_json::from_str::<Map<String, Value>>(raw.trim()).ok()),
        Value::Object(fields) => (value.to_string(), Some(fields.clone())),
        other => (other.to_string(), None),
    };
    let mut metadata = pb::ServiceMetadata {
        raw,
        ..Default::default()
    };
    for (key, value) in fields.unwrap_or_default() {
        let int = || lenient::as_i64(&value).and_then(|n| i32::try_from(n).ok());
        let text = || lenient::as_text(&value).unwrap_or_default();
        match key.as_str() {
            "DL" => metadata.dl = int(),
            "VK" => metadata.vk = text(),
            "bootable" => metadata.bootable = lenient::as_bool(&value),
            "backupurl" => metadata.backupurl = text(),
            "SP" => metadata.sp = text(),
            "VMID" => metadata.vmid = text(),
            "ST" => metadata.st = int(),
            "BT" => metadata.bt = int(),
            "SS" => metadata.ss = int(),
            "BP" => metadata.bp = text(),
            "CMKID" => metadata.cmkid = text(),
            "progress" => metadata.progress = int(),
            "CS" => metadata.cs = lenient::as_i64(&value),
            "VT" => metadata.vt = text(),
            "OMID" => metadata.omid = text(),
            "Type" => metadata.r#type = int(),
            "ebk_T_I" => metadata.ebk_t_i = text(),
            "AT" => metadata.at = lenient::as_f64(&value),
            "BackupSize" => metadata.backup_size = lenient::as_i64(&value),
            "snap_id" => metadata.snap_id = text(),
            _ => {
                if let Some(text) = lenient::as_text(&value) {
                    metadata.other.insert(key, text);
                }
            }
        }
    }
    Some(metadata)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_decode_from_json_text_or_stay_text() {
        let d = description(r#"{"DESC": "nightly", "INC": 1}"#);
        assert_eq!((d.text.as_str(), d.incremental), ("nightly", Some(true)));
        let d = description("Backup_Demo");
        assert_eq!(
            (d.text.as_str(), d.incremental, d.raw.as_str()),
            ("Backup_Demo", None, "Backup_Demo")
        );
    }

    #[test]
    fn service_metadata_keeps_known_and_unknown_keys() {
        let raw = Value::String(
            r#" {"bootable": false, "backupurl": "58d9", "BackupSize": 0, "progress": "0", "snap_id": "665e", "Type": 0, "AT": 12.5, "new_key": [1]} "#.into(),
        );
        let m = service_metadata(&raw).unwrap();
        assert_eq!(m.bootable, Some(false));
        assert_eq!(m.progress, Some(0));
        assert_eq!(m.r#type, Some(0));
        assert_eq!(m.at, Some(12.5));
        assert_eq!(m.backup_size, Some(0));
        assert_eq!(m.snap_id, "665e");
        assert_eq!(m.other.get("new_key").map(String::as_str), Some("[1]"));
        assert!(m.raw.contains("backupurl"));
        let garbled = service_metadata(&Value::String("not json".into())).unwrap();
        assert_eq!(garbled.raw, "not json");
    }

    #[test]
    fn unknown_statuses_keep_their_raw_text() {
        let detail: rest::BackupDetail = serde_json::from_str(r#"{"id": "x", "status": "frozen"}"#).unwrap();
        let b = backup(detail);
        assert_eq!(b.status, BackupStatus::Unspecified as i32);
        assert_eq!(b.status_raw, "frozen");
    }
}
