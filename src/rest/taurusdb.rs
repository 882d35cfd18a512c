//! TaurusDB's manual backup and job calls (POST /v3/{project_id}/backups/create,
//! GET /v3/{project_id}/jobs?id={job_id}) and their wire models, read from
//! the reference document (002) and TaurusDB's job query.

use std::collections::BTreeMap;

use http::Method;
use serde::{Deserialize, Serialize};

use super::lenient;
use super::transport::{Call, Transport};
use super::{CallContext, Operation, RestError};

/// The body of a manual backup request; `description` is left out when empty.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct CreateManualBackup {
    pub(crate) instance_id: String,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
}

/// TaurusDB's 201 answer: the backup being made and the job making it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct CreatedBackup {
    #[serde(default)]
    pub(crate) backup: Backup,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) job_id: Option<String>,
}

/// A backup as the create call answers it.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct Backup {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) description: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) begin_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) status: Option<String>,
    #[serde(default, rename = "type", deserialize_with = "lenient::opt_text")]
    pub(crate) backup_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) instance_id: Option<String>,
}

/// The job query's answer: `{"job": {...}}`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct JobReply {
    #[serde(default)]
    pub(crate) job: Job,
}

/// A TaurusDB job.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct Job {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) created: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) ended: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) process: Option<String>,
    #[serde(default)]
    pub(crate) instance: Option<JobInstance>,
    #[serde(default, deserialize_with = "lenient::text_map")]
    pub(crate) entities: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) fail_reason: Option<String>,
}

/// The instance a job works on.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct JobInstance {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) name: Option<String>,
}

/// Typed TaurusDB calls, through the TaurusDB transport.
pub(crate) struct TaurusDbApi<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) ctx: &'a CallContext,
}

impl TaurusDbApi<'_> {
    /// POST /v3/{project_id}/backups/create
    pub(crate) async fn create_manual_backup(&self, body: &CreateManualBackup) -> Result<CreatedBackup, RestError> {
        let path = ["v3", &self.ctx.project_id, "backups", "create"];
        let call = Call::new(Operation::TaurusDbCreateBackup, Method::POST, &path).json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    /// GET /v3/{project_id}/jobs?id={job_id}
    pub(crate) async fn get_job(&self, job_id: &str) -> Result<Job, RestError> {
        let path = ["v3", &self.ctx.project_id, "jobs"];
        let call = Call::new(Operation::TaurusDbGetJob, Method::GET, &path)
            .query(vec![("id".to_string(), job_id.to_string())]);
        let reply: JobReply = self.transport.call_json(self.ctx, &call).await?;
        Ok(reply.job)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documents_example_answer() {
        // The reference's example, with the comma it leaves out after "description".
        let body = r#"{ "backup" : { "id" : "2f4ddb93-b901-4b08-93d8-1d2e472f30fe", "name" : "backup-1",
            "description": "Manual backup", "begin_time" : "2020-07-07T01:17:05+0800", "status" : "BUILDING",
            "type" : "manual", "instance_id" : "07033b125fd94a8a96896f8bcfee6ddain07" },
            "job_id" : "e0fbbfc8-1ac4-4721-b9e9-7dd685c5bdd7" }"#;
        let created: CreatedBackup = serde_json::from_str(body).unwrap();
        assert_eq!(created.job_id.as_deref(), Some("e0fbbfc8-1ac4-4721-b9e9-7dd685c5bdd7"));
        assert_eq!(created.backup.status.as_deref(), Some("BUILDING"));
        assert_eq!(created.backup.backup_type.as_deref(), Some("manual"));
    }

    #[test]
    fn reads_a_job_with_its_instance_and_entities() {
        let body = r#"{"job": {"id": "j1", "name": "CreateGaussDBforMySQLBackup", "status": "Completed",
            "created": "2020-07-07T01:17:05+0800", "ended": "2020-07-07T01:19:05+0800", "process": "",
            "instance": {"id": "07033b125fd94a8a96896f8bcfee6ddain07", "name": "orders"},
            "entities": {"backup_id": "b1", "size": 12}, "fail_reason": null}}"#;
        let job = serde_json::from_str::<JobReply>(body).unwrap().job;
        assert_eq!(job.status.as_deref(), Some("Completed"));
        assert_eq!(job.instance.and_then(|i| i.name).as_deref(), Some("orders"));
        assert_eq!(job.entities.get("size").map(String::as_str), Some("12"));
        assert_eq!(job.fail_reason, None);
    }

    #[test]
    fn an_empty_description_is_left_out() {
        let body = CreateManualBackup {
            instance_id: "i".into(),
            name: "backup-1".into(),
            description: None,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"instance_id":"i","name":"backup-1"}"#
        );
    }
}
