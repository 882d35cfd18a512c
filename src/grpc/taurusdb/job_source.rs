//! TaurusDB's job query (GET /v3/{project_id}/jobs?id={job_id}) as a job hub
//! `JobSource`: one poller per (project, job, caller token), its state the
//! contract's Job, terminal at Completed or Failed.

use std::sync::Arc;
use std::time::Duration;

use crate::grpc::watched::{ProjectSource, Watched, project_job_source};
use crate::proto::taurusdb::v3 as tdb;
use crate::rest::taurusdb::TaurusDbApi;
use crate::rest::{RestError, Transport};

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

impl ProjectSource for TaurusDbJobSource {
    const SERVICE: &'static str = "taurusdb";
    type State = tdb::Job;

    async fn read(&self, target: &Watched) -> Result<tdb::Job, RestError> {
        let ctx = target.poll_context(self.poll_deadline);
        let api = TaurusDbApi {
            transport: &self.transport,
            ctx: &ctx,
        };
        api.get_job(target.id()).await.map(tdb::Job::from)
    }

    fn is_over(job: &tdb::Job) -> bool {
        matches!(job.status(), tdb::JobStatus::Completed | tdb::JobStatus::Failed)
    }
}

project_job_source!(TaurusDbJobSource);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::JobSource;

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
        let ctx = crate::rest::CallContext {
            project_id: "p".into(),
            caller_token: Some(crate::rest::Secret::new("MIIsecret")),
            ..Default::default()
        };
        let key = TaurusDbJobSource::key(&Watched::new(&ctx, "j1"));
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
