//! The CSBS calls (protect a server, find and read its backup) and their wire
//! models, through the same transport as VBS: deadlines, retries, budget,
//! body caps and signing. Shapes from CSBS API v1: "Creating a Backup for a
//! Resource" (reference 003) and "Querying a Single Backup" / "Querying All
//! Backups" (public CSBS API reference, checkpoint_items).

use std::collections::BTreeMap;

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient;
use super::transport::{Call, Transport};
use super::{CallContext, Operation, RestError};
use vbs_rules::csbs as rules;

/// The body of the protect action: `{"protect": {...}}`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Protect {
    pub(crate) protect: ProtectParam,
}

/// protect_param: every field optional; unset ones are not sent.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub(crate) struct ProtectParam {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backup_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) incremental: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_type: Option<String>,
    /// CSBS refuses an empty list: None when there are no tags.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tags: Option<Vec<ResourceTag>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) extra_info: Option<BTreeMap<String, String>>,
}

/// resource_tag, in requests and in checkpoint items.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct ResourceTag {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) key: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) value: Option<String>,
}

/// The protect answer: `{"checkpoint": protect_resp}`.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ProtectReply {
    pub(crate) checkpoint: Checkpoint,
}

/// protect_resp, as far as the gateway reads it: the backup record's id
/// (its status, protection_plan and resource_graph are the backup's, which
/// the gateway reads from the checkpoint item itself).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Checkpoint {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) id: Option<String>,
}

/// GET checkpoint_items/{id}: `{"checkpoint_item": {...}}`.
#[derive(Debug, Clone, Deserialize)]
struct CheckpointItemReply {
    checkpoint_item: CheckpointItem,
}

/// GET checkpoint_items: `{"checkpoint_items": [...], "count": n}`.
#[derive(Debug, Clone, Deserialize)]
struct CheckpointItemList {
    #[serde(default, deserialize_with = "lenient::list")]
    checkpoint_items: Vec<CheckpointItem>,
}

/// checkpoint_item: one server backup.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct CheckpointItem {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) checkpoint_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) description: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) resource_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) resource_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) updated_at: Option<String>,
    /// extend_info: a dict of many optional fields; read field by field
    /// (`ExtendInfo`), as their types vary between regions and versions.
    #[serde(default)]
    pub(crate) extend_info: Value,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) tags: Vec<ResourceTag>,
}

/// The fields of extend_info a watcher needs, read leniently.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ExtendInfo {
    pub(crate) progress: Option<i64>,
    pub(crate) resource_name: Option<String>,
    pub(crate) incremental: Option<bool>,
    pub(crate) size: Option<i64>,
    /// fail_code.Code (an object `{"Code", "Description"}`; a bare string too).
    pub(crate) fail_code: Option<String>,
    pub(crate) fail_reason: Option<String>,
    pub(crate) finished_at: Option<String>,
}

impl CheckpointItem {
    pub(crate) fn extend_info(&self) -> ExtendInfo {
        let field = |name: &str| self.extend_info.get(name).filter(|v| !v.is_null());
        let text = |name: &str| field(name).and_then(lenient::as_text).filter(|t| !t.is_empty());
        let fail_code = match field("fail_code") {
            Some(Value::Object(code)) => code.get("Code").and_then(lenient::as_text),
            Some(other) => lenient::as_text(other),
            None => None,
        };
        ExtendInfo {
            progress: field("progress").and_then(lenient::as_i64),
            resource_name: text("resource_name"),
            incremental: field("incremental").and_then(lenient::as_bool),
            size: field("size").and_then(lenient::as_i64),
            fail_code: fail_code.filter(|c| !c.is_empty()),
            fail_reason: text("fail_reason"),
            finished_at: text("finished_at"),
        }
    }
}

/// Typed calls of CSBS.
pub(crate) struct CsbsApi<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) ctx: &'a CallContext,
}

impl CsbsApi<'_> {
    /// POST /v1/{project_id}/providers/{provider_id}/resources/{resource_id}/action
    pub(crate) async fn protect(&self, resource_id: &str, body: &Protect) -> Result<Checkpoint, RestError> {
        let path = [
            "v1",
            &self.ctx.project_id,
            "providers",
            rules::PROVIDER_ID,
            "resources",
            resource_id,
            "action",
        ];
        let call = Call::new(Operation::CsbsProtect, Method::POST, &path).json_body(body)?;
        let reply: ProtectReply = self.transport.call_json(self.ctx, &call).await?;
        Ok(reply.checkpoint)
    }

    /// GET /v1/{project_id}/checkpoint_items?checkpoint_id={checkpoint_id}:
    /// the backups of one backup record (one for a protect of one server).
    pub(crate) async fn backups_of(&self, checkpoint_id: &str) -> Result<Vec<CheckpointItem>, RestError> {
        let path = ["v1", &self.ctx.project_id, "checkpoint_items"];
        let query = vec![("checkpoint_id".to_string(), checkpoint_id.to_string())];
        let call = Call::new(Operation::CsbsListBackups, Method::GET, &path).query(query);
        let list: CheckpointItemList = self.transport.call_json(self.ctx, &call).await?;
        Ok(list.checkpoint_items)
    }

    /// GET /v1/{project_id}/checkpoint_items/{checkpoint_item_id}
    pub(crate) async fn get_backup(&self, backup_id: &str) -> Result<CheckpointItem, RestError> {
        let path = ["v1", &self.ctx.project_id, "checkpoint_items", backup_id];
        let call = Call::new(Operation::CsbsGetBackup, Method::GET, &path);
        let reply: CheckpointItemReply = self.transport.call_json(self.ctx, &call).await?;
        Ok(reply.checkpoint_item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unset_protect_fields_are_not_sent() {
        let body = Protect {
            protect: ProtectParam {
                backup_name: Some("backup".into()),
                ..ProtectParam::default()
            },
        };
        assert_eq!(
            serde_json::to_value(&body).unwrap(),
            serde_json::json!({"protect": {"backup_name": "backup"}})
        );
    }

    #[test]
    fn reads_a_checkpoint_item_of_the_reference_leniently() {
        let body = r#"{"checkpoint_item": {
            "id": "94f0f7f4-3d5c-4c3c-a8f5-6e0b6a3c0f11", "checkpoint_id": "4468f4b8-7c78-4222-a2ca-346b5d557dd2",
            "status": "error", "resource_type": "OS::Nova::Server", "tags": null,
            "created_at": "2017-04-18T01:21:52.701973",
            "extend_info": {"progress": "40", "incremental": "false", "size": 1024, "resource_name": "web",
                            "fail_code": {"Code": "CSBS.6007", "Description": "no volume"},
                            "fail_reason": "No volume attached", "finished_at": null}
        }}"#;
        let item = serde_json::from_str::<CheckpointItemReply>(body)
            .unwrap()
            .checkpoint_item;
        let info = item.extend_info();
        assert_eq!(info.progress, Some(40));
        assert_eq!(info.incremental, Some(false));
        assert_eq!(info.fail_code.as_deref(), Some("CSBS.6007"));
        assert_eq!(info.finished_at, None);
        assert!(item.tags.is_empty());
        let bare = CheckpointItem {
            extend_info: Value::Null,
            ..CheckpointItem::default()
        };
        assert_eq!(bare.extend_info(), ExtendInfo::default());
    }
}
