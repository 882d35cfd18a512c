//! JobService: reads VBS jobs and turns them, sub-jobs included, into the
//! typed contract; watches them through the job hub (`crate::watch`), which
//! polls upstream (`job_source`) once per job for all watchers.
//! Conversions in `convert`.

mod convert;
pub(crate) mod job_source;

pub(crate) use convert::job_of_project;

use std::collections::HashSet;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use tonic::{Request, Response, Status};

use super::follow::{self, ResponseStream};
use super::watched::Watched;
use super::{Upstream, Violations, caller_deadline};
use crate::error::Error;
use crate::proto::pb::{self, job_service_server::JobService};
use crate::rest::jobs::JobsApi;
use crate::rest::{Operation, RestError};
use crate::watch::{self, JobHub};
use job_source::VbsJobSource;
use vbs_rules as rules;

type RpcResult<T> = Result<Response<T>, Status>;
type Event = watch::Event<VbsJobSource>;
type WatchError = watch::WatchError<RestError>;

pub(crate) struct Jobs {
    upstream: Upstream,
    hub: JobHub<VbsJobSource>,
}

impl Jobs {
    pub(crate) fn new(upstream: Upstream, hub: JobHub<VbsJobSource>) -> Jobs {
        Jobs { upstream, hub }
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
            job: Some(job_of_project(&ctx.project_id, job)),
        }))
    }

    type WatchJobStream = ResponseStream<pb::WatchJobResponse>;

    async fn watch_job(&self, request: Request<pb::WatchJobRequest>) -> RpcResult<Self::WatchJobStream> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_job_id(&req.job_id)?;
        let watcher = self.hub.watch(Watched::new(&ctx, &req.job_id)).map_err(Error::from)?;
        Ok(Response::new(follow::watch_stream(watcher, |event| match event {
            Event::Job(state) => pb::WatchJobResponse {
                observed_at: Some(state.observed_at.into()),
                event: Some(pb::watch_job_response::Event::Job(state.job.as_ref().clone())),
            },
            Event::Heartbeat(beat) => pb::WatchJobResponse {
                observed_at: None,
                event: Some(pb::watch_job_response::Event::Heartbeat(beat.into())),
            },
        })))
    }

    async fn wait_job(&self, request: Request<pb::WaitJobRequest>) -> RpcResult<pb::WaitJobResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        // Waiting is bounded by the request's own timeout, not the default deadline.
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let timeout = validate_wait(&req)?;
        let watcher = self.hub.wait(Watched::new(&ctx, &req.job_id)).map_err(Error::from)?;
        let (state, outcome) = follow::wait(watcher, timeout, deadline, Operation::GetJob).await?;
        Ok(Response::new(pb::WaitJobResponse {
            job: Some(state.job.as_ref().clone()),
            outcome: outcome as i32,
            observed_at: Some(state.observed_at.into()),
        }))
    }

    type WatchJobsStream = ResponseStream<pb::WatchJobsResponse>;

    async fn watch_jobs(&self, request: Request<pb::WatchJobsRequest>) -> RpcResult<Self::WatchJobsStream> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_job_ids(&req.job_ids)?;
        let mut watchers = Vec::with_capacity(req.job_ids.len());
        for job_id in req.job_ids {
            let watcher = self.hub.watch(Watched::new(&ctx, &job_id)).map_err(Error::from)?;
            watchers.push((job_id, watcher));
        }
        let merged = stream::select_all(watchers.into_iter().map(|(job_id, watcher)| {
            stream::unfold((job_id, watcher), |(job_id, mut watcher)| async move {
                let item = watcher.next().await?;
                Some((tag(&job_id, item), (job_id, watcher)))
            })
            .boxed()
        }));
        // Shutdown ends the whole stream: after the first error nothing follows.
        let events = stream::unfold(Some(merged), |merged| async move {
            let mut merged = merged?;
            let item = merged.next().await?;
            let rest = item.is_ok().then_some(merged);
            Some((item, rest))
        });
        Ok(Response::new(Box::pin(events)))
    }
}

/// One WatchJobs message for `job_id`. A job's own upstream failure is data
/// for that job; only the gateway's own trouble (shutdown) ends the stream.
fn tag(job_id: &str, item: Result<Event, WatchError>) -> Result<pb::WatchJobsResponse, Status> {
    use pb::watch_jobs_response::Event as Tagged;
    let (event, observed_at) = match item {
        Ok(Event::Job(state)) => (Tagged::Job(state.job.as_ref().clone()), Some(state.observed_at)),
        Ok(Event::Heartbeat(beat)) => (Tagged::Heartbeat(beat.into()), None),
        Err(error @ WatchError::Upstream(_)) => (Tagged::Error(Status::from(Error::from(error)).into()), None),
        Err(error) => return Err(Status::from(Error::from(error))),
    };
    Ok(pb::WatchJobsResponse {
        job_id: job_id.to_string(),
        event: Some(event),
        observed_at: observed_at.map(Into::into),
    })
}

fn validate_wait(req: &pb::WaitJobRequest) -> Result<Option<Duration>, Error> {
    let mut v = Violations::default();
    v.check("job_id", rules::path_id(&req.job_id));
    let timeout = follow::wait_timeout(&mut v, req.timeout);
    v.finish()?;
    Ok(timeout)
}

fn validate_job_ids(job_ids: &[String]) -> Result<(), Error> {
    let mut v = Violations::default();
    v.non_empty("job_ids", job_ids, "job id");
    v.check(
        "job_ids",
        rules::entries_at_most(job_ids.len(), rules::WATCHED_JOB_IDS_MAX),
    );
    let mut seen = HashSet::new();
    for (i, job_id) in job_ids.iter().enumerate() {
        let field = format!("job_ids[{i}]");
        v.check(&field, rules::path_id(job_id));
        v.unique(&field, !seen.insert(job_id.as_str()), "repeats an earlier job id");
    }
    v.finish()
}

pub(crate) fn validate_job_id(job_id: &str) -> Result<(), crate::error::Error> {
    Violations::only("job_id", rules::path_id(job_id))
}
