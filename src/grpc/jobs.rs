//! JobService: reads VBS jobs and turns them, sub-jobs included, into the
//! typed contract.

use tonic::{Request, Response, Status};

use super::{Upstream, Violations, text, timestamp};
use crate::proto::pb::{self, JobStatus, job_service_server::JobService};
use crate::rest::jobs::{self as rest, JobsApi};
use crate::rules;

type RpcResult<T> = Result<Response<T>, Status>;

pub struct Jobs {
    upstream: Upstream,
}

impl Jobs {
    pub fn new(upstream: Upstream) -> Jobs {
        Jobs { upstream }
    }
}

#[tonic::async_trait]
impl JobService for Jobs {
    async fn get_job(&self, request: Request<pb::GetJobRequest>) -> RpcResult<pb::GetJobResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_job_id(&req.job_id)?;
        let api = JobsApi {
            transport: &self.upstream.transport,
            ctx: &ctx,
        };
        let job = api.get_job(&req.job_id).await?;
        Ok(Response::new(pb::GetJobResponse {
            job: Some(job_to_pb(job)),
        }))
    }
}

pub fn validate_job_id(job_id: &str) -> Result<(), crate::error::Error> {
    let mut v = Violations::default();
    v.check("job_id", rules::path_id(job_id));
    v.finish()
}

fn job_status(raw: &str) -> JobStatus {
    match raw {
        "INIT" => JobStatus::Init,
        "RUNNING" => JobStatus::Running,
        "SUCCESS" => JobStatus::Success,
        "FAIL" => JobStatus::Fail,
        _ => JobStatus::Unspecified,
    }
}

pub fn job_to_pb(job: rest::Job) -> pb::Job {
    let status_raw = text(job.status);
    pb::Job {
        job_id: text(job.job_id),
        job_type: text(job.job_type),
        status: job_status(&status_raw) as i32,
        status_raw,
        entities: job.entities.into_iter().collect(),
        begin_time: timestamp(job.begin_time.as_deref()),
        end_time: timestamp(job.end_time.as_deref()),
        error_code: text(job.error_code),
        fail_reason: text(job.fail_reason),
        sub_jobs: job.sub_jobs.into_iter().map(job_to_pb).collect(),
    }
}
