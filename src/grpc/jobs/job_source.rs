//! The VBS job API (GET /v1/{project_id}/jobs/{job_id}) as the job hub's
//! source (a `ProjectSource`), the job already in the contract's shape, so
//! every watcher shares one copy.

use std::sync::Arc;
use std::time::Duration;

use super::job_of_project;
use crate::grpc::watched::{ProjectSource, Watched, project_job_source};
use crate::proto::pb::{self, JobStatus};
use crate::rest::jobs::JobsApi;
use crate::rest::{RestError, Transport};

/// Polls VBS jobs for the hub, through the process's one transport.
#[derive(Debug, Clone)]
pub(crate) struct VbsJobSource {
    transport: Arc<Transport>,
    poll_deadline: Duration,
}

impl VbsJobSource {
    /// A source that polls through `transport`, each poll (its retries
    /// included) bounded by `poll_deadline`: a hung upstream then shows as
    /// failed polls in heartbeats instead of one poll that never ends.
    pub(crate) fn new(transport: Arc<Transport>, poll_deadline: Duration) -> VbsJobSource {
        VbsJobSource {
            transport,
            poll_deadline,
        }
    }
}

impl ProjectSource for VbsJobSource {
    const SERVICE: &'static str = "";
    // The converted job rather than the wire model: converting once per poll
    // (one per job per interval, microseconds) lets the hub compare and share
    // the very message every watcher is sent, with no second type for "what
    // watchers get". Two wire bodies that convert alike (a time with and
    // without its trailing Z) are one state, as a watcher would see them.
    type State = pb::Job;

    async fn read(&self, target: &Watched) -> Result<pb::Job, RestError> {
        let ctx = target.poll_context(self.poll_deadline);
        let api = JobsApi {
            transport: &self.transport,
            ctx: &ctx,
        };
        api.get_job(target.id())
            .await
            .map(|job| job_of_project(&ctx.project_id, job))
    }

    fn is_over(job: &pb::Job) -> bool {
        matches!(job.status(), JobStatus::Success | JobStatus::Fail)
    }
}

project_job_source!(VbsJobSource);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::watch::JobSource;

    #[test]
    fn only_success_and_fail_end_a_job() {
        let job = |status: JobStatus| pb::Job {
            status: status as i32,
            ..Default::default()
        };
        assert!(VbsJobSource::is_terminal(&job(JobStatus::Success)));
        assert!(VbsJobSource::is_terminal(&job(JobStatus::Fail)));
        assert!(!VbsJobSource::is_terminal(&job(JobStatus::Running)));
        assert!(!VbsJobSource::is_terminal(&job(JobStatus::Unspecified)));
    }

    #[test]
    fn a_job_reads_back_as_it_was_shared() {
        let job = pb::Job {
            job_id: "4010b39b5281d3590152874bfa3b1604".into(),
            status: JobStatus::Running as i32,
            ..Default::default()
        };
        assert_eq!(VbsJobSource::decode(&VbsJobSource::encode(&job)), Some(job));
        assert_eq!(VbsJobSource::decode(b"\xff\xff not a job"), None);
    }
}
