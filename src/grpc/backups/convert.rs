//! Conversions of the backup area between the contract and the VBS wire
//! models: request pieces into REST bodies and queries, replies into the typed
//! contract (description and service_metadata decoded from the JSON text VBS stores).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::Error;
use crate::grpc::wire::{WireName, wire_enum};
use crate::grpc::{Violations, non_empty, paging, text, timestamp};
use crate::proto::pb::{self, BackupStatus};
use crate::rest::backups::{self as rest, BackupQuery};
use crate::rest::lenient;
use vbs_rules as rules;

wire_enum!(BackupStatus {
    Available <=> "available",
    Error <=> "error",
    Restoring <=> "restoring",
    Creating <=> "creating",
    Deleting <=> "deleting",
    ErrorRestoring <=> "error_restoring",
});

impl From<pb::CreateBackupRequest> for rest::CreateCloudBackup {
    fn from(req: pb::CreateBackupRequest) -> Self {
        let extend_param = req
            .full_backup
            .map(|full| BTreeMap::from([("FullBackup".to_string(), full.to_string())]))
            .unwrap_or_default();
        rest::CreateCloudBackup {
            backup: rest::CloudBackupSpec {
                volume_id: req.volume_id,
                snapshot_id: non_empty(&req.snapshot_id),
                name: req.name,
                description: non_empty(&req.description),
                tags: req.tags.into_iter().map(rest::Tag::from).collect(),
                extend_param,
            },
        }
    }
}

impl From<pb::CreateNativeBackupRequest> for rest::CreateNativeBackup {
    fn from(req: pb::CreateNativeBackupRequest) -> Self {
        rest::CreateNativeBackup {
            backup: rest::NativeBackupSpec {
                volume_id: req.volume_id,
                snapshot_id: req.snapshot_id,
                name: non_empty(&req.name),
                description: non_empty(&req.description),
                container: non_empty(&req.container),
                incremental: req.incremental,
                force: req.force,
            },
        }
    }
}

impl From<&pb::RestoreBackupRequest> for rest::Restore {
    fn from(req: &pb::RestoreBackupRequest) -> Self {
        restore_to(&req.volume_id)
    }
}

impl From<&pb::RestoreNativeBackupRequest> for rest::Restore {
    fn from(req: &pb::RestoreNativeBackupRequest) -> Self {
        restore_to(&req.volume_id)
    }
}

fn restore_to(volume_id: &str) -> rest::Restore {
    rest::Restore {
        restore: rest::RestoreTarget {
            volume_id: volume_id.to_string(),
        },
    }
}

/// The filters both list RPCs share, taken from either request type.
macro_rules! list_filter {
    ($req:expr) => {
        ListFilter {
            name: &$req.name,
            status: $req.status,
            volume_id: &$req.volume_id,
            page_size: $req.page_size,
            page_token: &$req.page_token,
        }
    };
}

impl TryFrom<&pb::ListBackupsRequest> for BackupQuery {
    type Error = Error;

    fn try_from(req: &pb::ListBackupsRequest) -> Result<Self, Error> {
        list_filter!(req).query(Violations::default())
    }
}

impl TryFrom<&pb::ListBackupDetailsRequest> for BackupQuery {
    type Error = Error;

    fn try_from(req: &pb::ListBackupDetailsRequest) -> Result<Self, Error> {
        let mut violations = Violations::default();
        violations.optional_word("sort_key", &req.sort_key, rules::BACKUP_SORT_KEYS);
        violations.optional_word("sort_dir", &req.sort_dir, rules::SORT_DIRECTIONS);
        let mut query = list_filter!(req).query(violations)?;
        query.sort_key = non_empty(&req.sort_key);
        query.sort_dir = non_empty(&req.sort_dir);
        Ok(query)
    }
}

/// The filters both list RPCs share.
struct ListFilter<'a> {
    name: &'a str,
    status: i32,
    volume_id: &'a str,
    page_size: i32,
    page_token: &'a str,
}

impl ListFilter<'_> {
    /// Validates the filters beside the violations already found, and builds the query.
    fn query(&self, mut v: Violations) -> Result<BackupQuery, Error> {
        let status = BackupStatus::try_from(self.status);
        v.check("name", rules::text_at_most(self.name, rules::NAME_FILTER_MAX));
        v.known_enum("status", status.is_ok());
        v.optional_uuid("volume_id", self.volume_id);
        let start = paging::after_marker(&mut v, self.page_token);
        v.limit("page_size", self.page_size);
        v.finish()?;
        Ok(BackupQuery {
            name: non_empty(self.name),
            status: status.ok().and_then(BackupStatus::wire).map(str::to_string),
            volume_id: non_empty(self.volume_id),
            limit: (self.page_size != 0).then_some(i64::from(self.page_size)),
            marker: start.marker(),
            ..BackupQuery::default()
        })
    }
}

impl From<pb::Tag> for rest::Tag {
    fn from(tag: pb::Tag) -> Self {
        rest::Tag {
            key: tag.key,
            value: Some(tag.value),
        }
    }
}

impl From<rest::Tag> for pb::Tag {
    fn from(tag: rest::Tag) -> Self {
        pb::Tag {
            key: tag.key,
            value: text(tag.value),
        }
    }
}

impl From<rest::Link> for pb::Link {
    fn from(link: rest::Link) -> Self {
        pb::Link {
            href: link.href,
            rel: link.rel,
        }
    }
}

impl From<rest::BackupSummary> for pb::BackupSummary {
    fn from(backup: rest::BackupSummary) -> Self {
        pb::BackupSummary {
            id: backup.id,
            name: text(backup.name),
            links: backup.links.into_iter().map(pb::Link::from).collect(),
        }
    }
}

impl From<rest::BackupSummaryPage> for pb::ListBackupsResponse {
    fn from(page: rest::BackupSummaryPage) -> Self {
        let last_id = page.backups.last().map(|b| b.id.as_str());
        pb::ListBackupsResponse {
            next_page_token: text(rest::next_marker(&page.backups_links, last_id)),
            backups_links: page.backups_links.into_iter().map(pb::Link::from).collect(),
            backups: page.backups.into_iter().map(pb::BackupSummary::from).collect(),
        }
    }
}

impl From<rest::BackupDetailPage> for pb::ListBackupDetailsResponse {
    fn from(page: rest::BackupDetailPage) -> Self {
        let last_id = page.backups.last().map(|b| b.id.as_str());
        pb::ListBackupDetailsResponse {
            next_page_token: text(rest::next_marker(&page.backups_links, last_id)),
            backups_links: page.backups_links.into_iter().map(pb::Link::from).collect(),
            backups: page.backups.into_iter().map(pb::Backup::from).collect(),
        }
    }
}

impl From<rest::NativeRestore> for pb::RestoreNativeBackupResponse {
    fn from(restore: rest::NativeRestore) -> Self {
        pb::RestoreNativeBackupResponse {
            backup_id: text(restore.backup_id),
            volume_id: text(restore.volume_id),
            volume_name: text(restore.volume_name),
        }
    }
}

impl From<rest::BackupDetail> for pb::Backup {
    fn from(detail: rest::BackupDetail) -> Self {
        let status_raw = text(detail.status);
        pb::Backup {
            status: BackupStatus::from_wire(&status_raw) as i32,
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
            links: detail.links.into_iter().map(pb::Link::from).collect(),
        }
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
    use crate::grpc::wire::assert_round_trips;

    #[test]
    fn backup_statuses_round_trip_through_their_wire_names() {
        assert_round_trips::<BackupStatus>();
        assert_eq!(BackupStatus::from_wire("error_restoring"), BackupStatus::ErrorRestoring);
    }

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
        let b = pb::Backup::from(detail);
        assert_eq!(b.status, BackupStatus::Unspecified as i32);
        assert_eq!(b.status_raw, "frozen");
    }
}
