//! The VBS job call (GET /v1/{project_id}/jobs/{job_id}) and its wire model,
//! sub-jobs included.

use std::collections::BTreeMap;

use http::Method;
use serde::Deserialize;

use super::lenient;
use super::transport::{Call, Transport};
use super::{CallContext, Operation, RestError};

/// A job as upstream reports it; sub-jobs have the same shape.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
pub(crate) struct Job {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) job_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) job_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) status: Option<String>,
    #[serde(default, deserialize_with = "lenient::text_map")]
    pub(crate) entities: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) begin_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) end_time: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) error_code: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) fail_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) sub_jobs: Vec<Job>,
}

/// Typed calls of the job area.
pub(crate) struct JobsApi<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) ctx: &'a CallContext,
}

impl JobsApi<'_> {
    pub(crate) async fn get_job(&self, job_id: &str) -> Result<Job, RestError> {
        let path = ["v1", &self.ctx.project_id, "jobs", job_id];
        let call = Call::new(Operation::GetJob, Method::GET, &path);
        self.transport.call_json(self.ctx, &call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_sub_jobs_recursively_and_flattens_entities() {
        let body = r#"{
            "status": "RUNNING", "job_id": "j1", "job_type": "bksBatchCreateBackup",
            "entities": {"backup_id": "b1", "count": 2, "nested": {"a": [1]}, "gone": null},
            "sub_jobs": [{"status": "SUCCESS", "job_id": "j2",
                          "sub_jobs": [{"status": "FAIL", "job_id": "j3", "error_code": "VolumeBackup.0064"}]}]
        }"#;
        let job: Job = serde_json::from_str(body).unwrap();
        assert_eq!(job.entities.get("count").map(String::as_str), Some("2"));
        assert_eq!(job.entities.get("nested").map(String::as_str), Some(r#"{"a":[1]}"#));
        assert!(!job.entities.contains_key("gone"));
        assert_eq!(
            job.sub_jobs[0].sub_jobs[0].error_code.as_deref(),
            Some("VolumeBackup.0064")
        );
    }
}
