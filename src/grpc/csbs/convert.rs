//! Conversions of the CSBS area: a CreateBackup request into protect_param,
//! and a checkpoint item into the contract's Backup.

use crate::grpc::wire::{WireName, wire_enum};
use crate::grpc::{non_empty, text, timestamp};
use crate::proto::csbs_pb::{self as pb, BackupStatus};
use crate::rest::csbs as rest;

wire_enum!(BackupStatus {
    WaitingProtect <=> "waiting_protect",
    Protecting <=> "protecting",
    Available <=> "available",
    WaitingRestore <=> "waiting_restore",
    Restoring <=> "restoring",
    Error <=> "error",
    WaitingDelete <=> "waiting_delete",
    Deleting <=> "deleting",
    Deleted <=> "deleted",
});

/// protect_param from a validated request: empty fields are left out, tags
/// and their texts trimmed as CSBS keeps them.
impl From<pb::CreateBackupRequest> for rest::Protect {
    fn from(req: pb::CreateBackupRequest) -> Self {
        let tags: Vec<rest::ResourceTag> = req
            .tags
            .into_iter()
            .map(|tag| rest::ResourceTag {
                key: Some(tag.key.trim().to_string()),
                value: Some(tag.value.trim().to_string()),
            })
            .collect();
        rest::Protect {
            protect: rest::ProtectParam {
                backup_name: non_empty(&req.backup_name),
                description: non_empty(&req.description),
                incremental: req.incremental,
                resource_type: non_empty(&req.resource_type),
                tags: (!tags.is_empty()).then_some(tags),
                extra_info: (!req.extra_info.is_empty()).then(|| req.extra_info.into_iter().collect()),
            },
        }
    }
}

impl From<rest::CheckpointItem> for pb::Backup {
    fn from(item: rest::CheckpointItem) -> Self {
        let info = item.extend_info();
        let status_text = text(item.status);
        pb::Backup {
            id: text(item.id),
            checkpoint_id: text(item.checkpoint_id),
            name: text(item.name),
            description: text(item.description),
            resource_id: text(item.resource_id),
            resource_type: text(item.resource_type),
            status: BackupStatus::from_wire(&status_text) as i32,
            status_text,
            created_at: timestamp(item.created_at.as_deref()),
            updated_at: timestamp(item.updated_at.as_deref()),
            progress: info.progress.and_then(|p| i32::try_from(p).ok()).unwrap_or_default(),
            resource_name: text(info.resource_name),
            incremental: info.incremental.unwrap_or_default(),
            size_mb: info.size.unwrap_or_default(),
            fail_code: text(info.fail_code),
            fail_reason: text(info.fail_reason),
            finished_at: timestamp(info.finished_at.as_deref()),
            tags: item
                .tags
                .into_iter()
                .map(|tag| pb::Tag {
                    key: text(tag.key),
                    value: text(tag.value),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::wire::assert_round_trips;

    #[test]
    fn every_status_has_its_csbs_spelling() {
        assert_round_trips::<BackupStatus>();
    }

    #[test]
    fn a_request_becomes_protect_param_without_empty_fields() {
        let req = pb::CreateBackupRequest {
            resource_id: "9506416d-db6c-406e-8bca-c0f43793d914".into(),
            backup_name: "nightly".into(),
            tags: vec![pb::Tag {
                key: " team ".into(),
                value: "ops".into(),
            }],
            ..Default::default()
        };
        let body = serde_json::to_value(rest::Protect::from(req)).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"protect": {"backup_name": "nightly", "tags": [{"key": "team", "value": "ops"}]}})
        );
    }
}
