//! VBS backup-policy calls and their wire models, field names exactly as VBS
//! spells them (including "rentention_num" and "remain_first_backup_of_curMonth").

use http::Method;
use serde::{Deserialize, Serialize};

use super::backups::Tag;
use super::lenient;
use super::transport::{Call, Transport};
use super::{CallContext, Operation, RestError, query_pairs};

/// A schedule as sent: only the fields set go on the wire.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub(crate) struct SchedulePatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) start_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) frequency: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) week_frequency: Option<Vec<String>>,
    #[serde(rename = "rentention_num", skip_serializing_if = "Option::is_none")]
    pub(crate) retention_num: Option<i64>,
    #[serde(rename = "rentention_day", skip_serializing_if = "Option::is_none")]
    pub(crate) retention_day: Option<i64>,
    /// "Y" or "N".
    #[serde(rename = "remain_first_backup_of_curMonth", skip_serializing_if = "Option::is_none")]
    pub(crate) remain_first_backup_of_cur_month: Option<&'static str>,
    /// "ON" or "OFF".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) status: Option<&'static str>,
}

impl SchedulePatch {
    /// Whether VBS will find the frequency it requires on every update.
    pub(crate) fn has_frequency(&self) -> bool {
        self.frequency.is_some() || self.week_frequency.as_ref().is_some_and(|w| !w.is_empty())
    }
}

/// A schedule as upstream reports it; every field may be missing.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Schedule {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) start_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub(crate) frequency: Option<i64>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) week_frequency: Vec<String>,
    #[serde(
        default,
        rename = "rentention_num",
        alias = "retention_num",
        deserialize_with = "lenient::opt_i64"
    )]
    pub(crate) retention_num: Option<i64>,
    #[serde(
        default,
        rename = "rentention_day",
        alias = "retention_day",
        deserialize_with = "lenient::opt_i64"
    )]
    pub(crate) retention_day: Option<i64>,
    #[serde(
        default,
        rename = "remain_first_backup_of_curMonth",
        deserialize_with = "lenient::opt_bool"
    )]
    pub(crate) remain_first_backup_of_cur_month: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) status: Option<String>,
}

/// A backup policy as upstream reports it.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Policy {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) backup_policy_id: Option<String>,
    /// The reference's own example spells the key with a trailing space.
    #[serde(default, alias = "backup_policy_name ", deserialize_with = "lenient::opt_text")]
    pub(crate) backup_policy_name: Option<String>,
    #[serde(default)]
    pub(crate) scheduled_policy: Option<Schedule>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub(crate) policy_resource_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) tags: Vec<Tag>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) time_zone: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct PolicyList {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) backup_policies: Vec<Policy>,
}

/// Body of POST /v2/{project_id}/backuppolicy.
#[derive(Debug, Serialize)]
pub(crate) struct CreatePolicy {
    pub(crate) backup_policy_name: String,
    pub(crate) scheduled_policy: SchedulePatch,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<Tag>,
}

/// Body of PUT /v2/{project_id}/backuppolicy/{policy_id}.
#[derive(Debug, Serialize)]
pub(crate) struct UpdatePolicy {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) backup_policy_name: Option<String>,
    pub(crate) scheduled_policy: SchedulePatch,
}

/// Reply of create and update. Some VBS versions echo the policy instead of
/// returning its id, so the id may be missing.
#[derive(Debug, Deserialize)]
pub(crate) struct PolicyIdReply {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) backup_policy_id: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct ResourceRef {
    pub(crate) resource_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) resource_type: Option<String>,
}

/// Body of POST /v2/{project_id}/backuppolicyresources.
#[derive(Debug, Serialize)]
pub(crate) struct Associate {
    pub(crate) backup_policy_id: String,
    pub(crate) resources: Vec<ResourceRef>,
}

/// Body of POST .../backuppolicyresources/{policy_id}/deleted_resources.
#[derive(Debug, Serialize)]
pub(crate) struct Disassociate {
    pub(crate) resources: Vec<ResourceRef>,
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct ResourceOutcome {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) resource_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) resource_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) availability_zone: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) os_vol_host_attr: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) message: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ResourceOutcomes {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) success_resources: Vec<ResourceOutcome>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) fail_resources: Vec<ResourceOutcome>,
}

/// Filters and paging of the backup-task list, as query pairs.
#[derive(Debug, Default)]
pub(crate) struct TaskQuery {
    pub(crate) sort_order: Option<String>,
    pub(crate) limit: Option<i64>,
    pub(crate) marker: Option<String>,
    pub(crate) job_id: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) sort_key: Option<String>,
    pub(crate) offset: Option<i64>,
}

impl TaskQuery {
    fn pairs(&self) -> Vec<(String, String)> {
        let texts = [
            ("sort_order", &self.sort_order),
            ("marker", &self.marker),
            ("job_id", &self.job_id),
            ("status", &self.status),
            ("sort_key", &self.sort_key),
        ];
        query_pairs(&texts, &[("limit", self.limit), ("offset", self.offset)])
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Task {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) job_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) finished_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) backup_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) resource_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) resource_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) vbs_job_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct TaskPage {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub(crate) count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) tasks: Vec<Task>,
}

/// Typed calls of the policy area.
pub(crate) struct PoliciesApi<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) ctx: &'a CallContext,
}

impl PoliciesApi<'_> {
    fn project(&self) -> &str {
        &self.ctx.project_id
    }

    pub(crate) async fn create_policy(&self, body: &CreatePolicy) -> Result<PolicyIdReply, RestError> {
        let path = ["v2", self.project(), "backuppolicy"];
        let call = Call::new(Operation::CreateBackupPolicy, Method::POST, &path).json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn list_policies(&self) -> Result<PolicyList, RestError> {
        let path = ["v2", self.project(), "backuppolicy"];
        let call = Call::new(Operation::ListBackupPolicies, Method::GET, &path);
        self.transport.call_json(self.ctx, &call).await
    }

    /// The policy with this id, if the project has one.
    pub(crate) async fn find_policy(&self, policy_id: &str) -> Result<Option<Policy>, RestError> {
        let list = self.list_policies().await?;
        Ok(list
            .backup_policies
            .into_iter()
            .find(|p| p.backup_policy_id.as_deref() == Some(policy_id)))
    }

    pub(crate) async fn update_policy(&self, policy_id: &str, body: &UpdatePolicy) -> Result<PolicyIdReply, RestError> {
        let path = ["v2", self.project(), "backuppolicy", policy_id];
        let call = Call::new(Operation::UpdateBackupPolicy, Method::PUT, &path).json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn delete_policy(&self, policy_id: &str) -> Result<(), RestError> {
        let path = ["v2", self.project(), "backuppolicy", policy_id];
        let call = Call::new(Operation::DeleteBackupPolicy, Method::DELETE, &path);
        self.transport.call_empty(self.ctx, &call).await
    }

    pub(crate) async fn associate(&self, body: &Associate) -> Result<ResourceOutcomes, RestError> {
        let path = ["v2", self.project(), "backuppolicyresources"];
        let call = Call::new(Operation::AssociateResources, Method::POST, &path).json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn disassociate(
        &self,
        policy_id: &str,
        body: &Disassociate,
    ) -> Result<ResourceOutcomes, RestError> {
        let path = [
            "v2",
            self.project(),
            "backuppolicyresources",
            policy_id,
            "deleted_resources",
        ];
        let call = Call::new(Operation::DisassociateResources, Method::POST, &path).json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn execute(&self, policy_id: &str) -> Result<(), RestError> {
        let path = ["v2", self.project(), "backuppolicy", policy_id, "action"];
        let call = Call::new(Operation::ExecuteBackupPolicy, Method::POST, &path);
        self.transport.call_empty(self.ctx, &call).await
    }

    pub(crate) async fn list_tasks(&self, policy_id: &str, query: &TaskQuery) -> Result<TaskPage, RestError> {
        let path = ["v2", self.project(), "backuppolicy", policy_id, "backuptasks"];
        let call = Call::new(Operation::ListBackupPolicyTasks, Method::GET, &path).query(query.pairs());
        self.transport.call_json(self.ctx, &call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_patches_use_the_wire_spelling() {
        let patch = SchedulePatch {
            frequency: Some(1),
            retention_num: Some(10),
            remain_first_backup_of_cur_month: Some("Y"),
            status: Some("ON"),
            ..Default::default()
        };
        let json = serde_json::to_value(&patch).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"frequency": 1, "rentention_num": 10, "remain_first_backup_of_curMonth": "Y", "status": "ON"})
        );
        assert!(patch.has_frequency());
        assert!(!SchedulePatch::default().has_frequency());
    }
}
