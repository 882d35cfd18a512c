//! TaurusDB's job query (GET /v3/{project_id}/jobs?id={job_id}) as a job hub
//! `JobSource`: one poller per (project, job, caller token), its state the
//! contract's Job, terminal at Completed or Failed.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;

use crate::grpc::follow::describe_failure;
use crate::grpc::job_source::{VbsJobSource, caller_token_hash};
use crate::proto::taurusdb::v3 as tdb;
use crate::rest::taurusdb::TaurusDbApi;
use crate::rest::{CallContext, RestError, Transport};
use crate::watch::{Failure, JobSource};

/// Polls TaurusDB jobs for the TaurusDB job hub.
#[derive(Debug, Clone)]
pub(crate) struct TaurusDbJobSource {
    transport: Arc<Transport>,
    poll_deadline: Duration,
}

impl TaurusDbJobSource {
    /// Polls through `transport` (TaurusDB's), each poll bounded by `poll_deadline`.
    pub(crate) fn new(transport: Arc<Transport>, poll_deadline: Duration) -> TaurusDbJobSource {
        TaurusDbJobSource {
            transport,
            poll_deadline,
        }
    }
}

/// One TaurusDB job to watch, with the credentials to poll it.
#[derive(Debug)]
pub(crate) struct WatchedTaurusDbJob {
    ctx: CallContext,
    job_id: String,
}

impl WatchedTaurusDbJob {
    /// The job `job_id` as the caller of `ctx` sees it; its polls outlive the call.
    pub(crate) fn new(ctx: &CallContext, job_id: &str) -> WatchedTaurusDbJob {
        WatchedTaurusDbJob {
            ctx: CallContext {
                project_id: ctx.project_id.clone(),
                deadline: None,
                caller_token: ctx.caller_token.clone(),
                send_by: None,
                caller: None,
            },
            job_id: job_id.to_string(),
        }
    }
}

/// One job as seen with one set of credentials; a caller's token only as its hash.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct TaurusDbJobKey {
    project_id: String,
    job_id: String,
    token: Option<[u8; 32]>,
}

impl fmt::Display for TaurusDbJobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "taurusdb {}", self.job_id)
    }
}

impl JobSource for TaurusDbJobSource {
    type Target = WatchedTaurusDbJob;
    type Key = TaurusDbJobKey;
    type State = tdb::Job;
    type Error = RestError;

    fn key(target: &WatchedTaurusDbJob) -> TaurusDbJobKey {
        let token = caller_token_hash(&target.ctx);
        TaurusDbJobKey {
            project_id: target.ctx.project_id.clone(),
            job_id: target.job_id.clone(),
            token,
        }
    }

    /// `taurusdb:project:job:token hash`: apart from VBS jobs of the same id.
    fn shared_key(key: &TaurusDbJobKey) -> String {
        let token = key.token.map_or_else(|| "-".to_string(), hex::encode);
        format!("taurusdb:{}:{}:{token}", key.project_id, key.job_id)
    }

    fn group(key: &TaurusDbJobKey) -> &str {
        &key.project_id
    }

    async fn poll(&self, target: &WatchedTaurusDbJob) -> Result<tdb::Job, RestError> {
        let ctx = CallContext {
            deadline: Some(Instant::now() + self.poll_deadline),
            ..target.ctx.clone()
        };
        let api = TaurusDbApi {
            transport: &self.transport,
            ctx: &ctx,
        };
        api.get_job(&target.job_id).await.map(tdb::Job::from)
    }

    fn is_terminal(job: &tdb::Job) -> bool {
        matches!(job.status(), tdb::JobStatus::Completed | tdb::JobStatus::Failed)
    }

    fn encode(job: &tdb::Job) -> Vec<u8> {
        job.encode_to_vec()
    }

    fn decode(bytes: &[u8]) -> Option<tdb::Job> {
        tdb::Job::decode(bytes).ok()
    }

    /// The same reading of upstream failures as for VBS jobs.
    fn classify(error: &RestError) -> Failure {
        VbsJobSource::classify(error)
    }

    fn describe(error: &RestError) -> String {
        describe_failure(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_completed_and_failed_end_a_job() {
        let job = |status: tdb::JobStatus| tdb::Job {
            status: status as i32,
            ..Default::default()
        };
        assert!(TaurusDbJobSource::is_terminal(&job(tdb::JobStatus::Completed)));
        assert!(TaurusDbJobSource::is_terminal(&job(tdb::JobStatus::Failed)));
        assert!(!TaurusDbJobSource::is_terminal(&job(tdb::JobStatus::Running)));
        assert!(!TaurusDbJobSource::is_terminal(&job(tdb::JobStatus::Unspecified)));
    }

    #[test]
    fn keys_hold_no_token_and_stay_apart_from_vbs_jobs() {
        let ctx = CallContext {
            project_id: "p".into(),
            caller_token: Some(crate::rest::Secret::new("MIIsecret")),
            ..Default::default()
        };
        let key = TaurusDbJobSource::key(&WatchedTaurusDbJob::new(&ctx, "j1"));
        let shared = TaurusDbJobSource::shared_key(&key);
        assert!(shared.starts_with("taurusdb:p:j1:") && !shared.contains("MIIsecret"));
        assert!(!format!("{key:?} {key}").contains("MIIsecret"));
        let job = tdb::Job {
            id: "j1".into(),
            status: tdb::JobStatus::Running as i32,
            ..Default::default()
        };
        assert_eq!(TaurusDbJobSource::decode(&TaurusDbJobSource::encode(&job)), Some(job));
    }
}
