//! TaurusDbBackupService: validates a manual backup by the TaurusDB document's
//! rules, sends it through TaurusDB's own transport, and follows its job
//! through a job hub of its own (`job_source`). Unconfigured, every RPC
//! answers UNIMPLEMENTED and names the flag that enables it.

mod convert;
pub(crate) mod job_source;

use tonic::{Request, Response, Status};

use super::follow::{self, ResponseStream};
use super::resource_ids::ResourceIds;
use super::writes::WriteRequest;
use super::{Upstream, Violations, caller_deadline};
use crate::error::Error;
use crate::grpc::jobs::validate_job_id;
use crate::grpc::watched::Watched;
use crate::proto::taurusdb::v3::{self as tdb, taurus_db_backup_service_server::TaurusDbBackupService};
use crate::rest::Operation;
use crate::rest::taurusdb::{CreateManualBackup, TaurusDbApi};
use crate::store::operations::note_started;
use crate::watch::{Event, JobHub};
use job_source::TaurusDbJobSource;
use vbs_rules::{self as rules, taurusdb as taurus_rules};

type RpcResult<T> = Result<Response<T>, Status>;

/// The collection of TaurusDB jobs in operation names:
/// `projects/{project_id}/taurusdb-jobs/{job_id}`.
pub(crate) const OPERATION_COLLECTION: &str = "taurusdb-jobs";
/// What enables the service, for the UNIMPLEMENTED answer.
const ENABLING_FLAG: &str = "--taurusdb-endpoint";

/// The job's name as a long-running operation.
pub(crate) fn operation_name(project_id: &str, job_id: &str) -> String {
    format!("{}/{job_id}", operations_list(project_id))
}

/// The ListOperations name of a project's jobs: `projects/{project_id}/taurusdb-jobs`.
pub(crate) fn operations_list(project_id: &str) -> String {
    format!("projects/{project_id}/{OPERATION_COLLECTION}")
}

/// The service; without a backend (no TaurusDB endpoint) it answers UNIMPLEMENTED.
pub(crate) struct TaurusDb {
    backend: Option<Backend>,
}

/// What the service needs when TaurusDB is configured.
struct Backend {
    /// The gateway's call defaults, with TaurusDB's transport.
    upstream: Upstream,
    hub: JobHub<TaurusDbJobSource>,
}

impl TaurusDb {
    /// The service calling TaurusDB through `upstream` and following its jobs with `hub`.
    pub(crate) fn new(upstream: Upstream, hub: JobHub<TaurusDbJobSource>) -> TaurusDb {
        TaurusDb {
            backend: Some(Backend { upstream, hub }),
        }
    }

    /// The service of a gateway that knows no TaurusDB.
    pub(crate) fn unconfigured() -> TaurusDb {
        TaurusDb { backend: None }
    }

    /// Whether the caller of `request` may read the project's jobs, on a
    /// gateway that serves TaurusDB (for ListOperations).
    pub(crate) fn admit<T: ResourceIds>(&self, request: &Request<T>, project_id: &str) -> Result<(), Error> {
        self.backend()?.upstream.context(request, project_id).map(drop)
    }

    fn backend(&self) -> Result<&Backend, Error> {
        self.backend.as_ref().ok_or(Error::NotConfigured {
            service: "TaurusDB",
            flag: ENABLING_FLAG,
        })
    }
}

#[tonic::async_trait]
impl TaurusDbBackupService for TaurusDb {
    async fn create_manual_backup(
        &self,
        request: Request<tdb::CreateManualBackupRequest>,
    ) -> RpcResult<tdb::CreateManualBackupResponse> {
        let backend = self.backend()?;
        let ctx = backend.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_create(&req)?;
        let transport = backend.upstream.transport.clone();
        let log = backend.upstream.operations.clone();
        let reply = backend.upstream.writes.run(ctx, req, |ctx, req| async move {
            let api = TaurusDbApi {
                transport: &transport,
                ctx: &ctx,
            };
            let body = CreateManualBackup {
                instance_id: req.instance_id,
                name: req.name,
                description: (!req.description.is_empty()).then_some(req.description),
            };
            let created = api.create_manual_backup(&body).await.map_err(Error::from)?;
            let job_id = created.job_id.unwrap_or_default();
            if !job_id.is_empty() {
                note_started(log.as_ref(), &operations_list(&ctx.project_id), &job_id).await;
            }
            Ok(tdb::CreateManualBackupResponse {
                backup: Some(created.backup.into()),
                operation: Some(crate::proto::longrunning::Operation {
                    name: operation_name(&ctx.project_id, &job_id),
                    ..Default::default()
                }),
                job_id,
            })
        });
        Ok(Response::new(reply.await?))
    }

    async fn get_backup_job(&self, request: Request<tdb::GetBackupJobRequest>) -> RpcResult<tdb::GetBackupJobResponse> {
        let backend = self.backend()?;
        let ctx = backend.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_job_id(&req.job_id)?;
        let api = TaurusDbApi {
            transport: &backend.upstream.transport,
            ctx: &ctx,
        };
        let job = api.get_job(&req.job_id).await.map_err(Error::from)?;
        Ok(Response::new(tdb::GetBackupJobResponse { job: Some(job.into()) }))
    }

    type WatchBackupJobStream = ResponseStream<tdb::WatchBackupJobResponse>;

    async fn watch_backup_job(
        &self,
        request: Request<tdb::WatchBackupJobRequest>,
    ) -> RpcResult<Self::WatchBackupJobStream> {
        let backend = self.backend()?;
        let ctx = backend.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_job_id(&req.job_id)?;
        let watcher = backend
            .hub
            .watch(Watched::new(&ctx, &req.job_id))
            .map_err(Error::from)?;
        Ok(Response::new(follow::watch_stream(watcher, watch_response)))
    }

    async fn wait_backup_job(
        &self,
        request: Request<tdb::WaitBackupJobRequest>,
    ) -> RpcResult<tdb::WaitBackupJobResponse> {
        let backend = self.backend()?;
        let ctx = backend.upstream.context(&request, &request.get_ref().project_id)?;
        // Waiting is bounded by the request's own timeout, not the default deadline.
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let mut v = Violations::default();
        v.check("job_id", rules::path_id(&req.job_id));
        let timeout = follow::wait_timeout(&mut v, req.timeout);
        v.finish()?;
        let watcher = backend.hub.wait(Watched::new(&ctx, &req.job_id)).map_err(Error::from)?;
        let (state, outcome) = follow::wait(watcher, timeout, deadline, Operation::TaurusDbGetJob).await?;
        Ok(Response::new(tdb::WaitBackupJobResponse {
            job: Some(state.job.as_ref().clone()),
            outcome: outcome as i32,
            observed_at: Some(state.observed_at.into()),
        }))
    }
}

fn watch_response(event: Event<TaurusDbJobSource>) -> tdb::WatchBackupJobResponse {
    use tdb::watch_backup_job_response::Event as Carried;
    match event {
        Event::Job(state) => tdb::WatchBackupJobResponse {
            observed_at: Some(state.observed_at.into()),
            event: Some(Carried::Job(state.job.as_ref().clone())),
        },
        Event::Heartbeat(beat) => tdb::WatchBackupJobResponse {
            observed_at: None,
            event: Some(Carried::Heartbeat(beat.into())),
        },
    }
}

/// Every rule of the document's request table, all broken ones at once.
fn validate_create(req: &tdb::CreateManualBackupRequest) -> Result<(), Error> {
    let mut v = Violations::default();
    v.check("instance_id", taurus_rules::instance_id(&req.instance_id));
    v.check("name", taurus_rules::backup_name(&req.name));
    v.check("description", taurus_rules::backup_description(&req.description));
    v.finish()
}

/// A retried create with the same `request_id` gets the first answer.
impl WriteRequest for tdb::CreateManualBackupRequest {
    const METHOD: &'static str = "CreateManualBackup";
    fn take_request_id(&mut self) -> String {
        std::mem::take(&mut self.request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broken_rule_is_named() {
        let request = tdb::CreateManualBackupRequest {
            instance_id: "07033b125fd94a8a96896f8bcfee6dda".into(),
            name: "1st".into(),
            description: "a <b>".into(),
            ..Default::default()
        };
        let Err(Error::InvalidArgument(violations)) = validate_create(&request) else {
            panic!("expected violations")
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(fields, ["instance_id", "name", "description"]);
    }

    #[test]
    fn operation_names_follow_the_vbs_scheme() {
        assert_eq!(
            operation_name("619d3e78f61b4be68bc5aa0b59edcf7b", "e0fbbfc8"),
            "projects/619d3e78f61b4be68bc5aa0b59edcf7b/taurusdb-jobs/e0fbbfc8"
        );
    }
}
