//! ZStack's API job query (GET /zstack/v1/api-jobs/{uuid}) as a job hub
//! `JobSource`: one poller per API job (ZStack has no projects, and every
//! poll uses the gateway's session), terminal when SUCCEEDED or FAILED.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;

use super::{ZSTACK_PROJECT, convert};
use crate::grpc::watched::{classify_failure, describe_failure};
use crate::proto::zstack::v1 as zs;
use crate::rest::zstack::ZStackApi;
use crate::rest::{CallContext, RestError, Transport};
use crate::watch::{Failure, JobSource};

/// Polls ZStack API jobs for the ZStack job hub.
#[derive(Debug, Clone)]
pub(crate) struct ZStackJobSource {
    transport: Arc<Transport>,
    poll_deadline: Duration,
}

impl ZStackJobSource {
    /// Polls through `transport` (ZStack's), each poll bounded by `poll_deadline`.
    pub(crate) fn new(transport: Arc<Transport>, poll_deadline: Duration) -> ZStackJobSource {
        ZStackJobSource {
            transport,
            poll_deadline,
        }
    }
}

impl JobSource for ZStackJobSource {
    /// The API job's uuid, already checked.
    type Target = String;
    type Key = String;
    type State = zs::Job;
    type Error = RestError;

    fn key(target: &String) -> String {
        target.clone()
    }

    fn shared_key(key: &String) -> String {
        format!("zstack:{key}")
    }

    /// One budget group: ZStack has no projects.
    fn group(_: &String) -> &str {
        ZSTACK_PROJECT
    }

    async fn poll(&self, job_uuid: &String) -> Result<zs::Job, RestError> {
        let ctx = CallContext {
            project_id: ZSTACK_PROJECT.to_string(),
            deadline: Some(Instant::now() + self.poll_deadline),
            ..Default::default()
        };
        let api = ZStackApi {
            transport: &self.transport,
            ctx: &ctx,
        };
        Ok(convert::job(job_uuid, api.get_api_job(job_uuid).await?))
    }

    fn is_terminal(job: &zs::Job) -> bool {
        matches!(job.state(), zs::JobState::Succeeded | zs::JobState::Failed)
    }

    fn encode(job: &zs::Job) -> Vec<u8> {
        job.encode_to_vec()
    }

    fn decode(bytes: &[u8]) -> Option<zs::Job> {
        zs::Job::decode(bytes).ok()
    }

    /// The same reading of upstream failures as for VBS jobs.
    fn classify(error: &RestError) -> Failure {
        classify_failure(error)
    }

    fn describe(error: &RestError) -> String {
        describe_failure(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_succeeded_and_failed_end_a_job() {
        let job = |state: zs::JobState| zs::Job {
            state: state as i32,
            ..Default::default()
        };
        assert!(ZStackJobSource::is_terminal(&job(zs::JobState::Succeeded)));
        assert!(ZStackJobSource::is_terminal(&job(zs::JobState::Failed)));
        assert!(!ZStackJobSource::is_terminal(&job(zs::JobState::Running)));
        assert_eq!(ZStackJobSource::shared_key(&"abc".to_string()), "zstack:abc");
    }
}
