//! ZStackBackupService: validates a VM backup, sends it through ZStack's own
//! transport (signed in with the gateway's ZStack session), and follows the
//! API job ZStack answers with through a job hub of its own (`job_source`).
//! Unconfigured, every RPC answers UNIMPLEMENTED and names the enabling flag.

mod convert;
pub(crate) mod job_source;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tonic::{Request, Response, Status};

use super::follow::{self, ResponseStream};
use super::resource_ids::ResourceIds;
use super::writes::{WriteRequest, Writes};
use super::{Violations, caller_deadline};
use crate::error::Error;
use crate::frontdoor::Admission;
use crate::observe::AccessNote;
use crate::proto::zstack::v1::{self as zs, z_stack_backup_service_server::ZStackBackupService};
use crate::rest::zstack::{CreateVmBackup, Created, VmBackupParams, ZStackApi};
use crate::rest::{CallContext, Operation, Transport};
use crate::store::operations::{OperationLog, note_started};
use crate::watch::{Event, JobHub};
use job_source::ZStackJobSource;
use vbs_rules::zstack as rules;

type RpcResult<T> = Result<Response<T>, Status>;

/// What ZStack calls count as, where the gateway thinks in projects: the
/// caller's projects (--callers) and the upstream budget.
pub(crate) const ZSTACK_PROJECT: &str = "zstack";
/// The collection of ZStack API jobs in operation names: `zstack/jobs/{job_uuid}`.
pub(crate) const OPERATION_COLLECTION: &str = "zstack/jobs";
const ENABLING_FLAG: &str = "--zstack-endpoint";

/// The API job's name as a long-running operation.
pub(crate) fn operation_name(job_uuid: &str) -> String {
    format!("{OPERATION_COLLECTION}/{job_uuid}")
}

/// The service; without a backend (no ZStack endpoint) it answers UNIMPLEMENTED.
pub(crate) struct ZStack {
    backend: Option<Backend>,
}

struct Backend {
    transport: Arc<Transport>,
    /// Bounds a call whose caller sent no deadline.
    default_deadline: Duration,
    hub: JobHub<ZStackJobSource>,
    /// Runs the creates: once per `request_id`, detached once sent.
    writes: Writes,
    /// Where started jobs are noted for ListOperations.
    operations: Arc<dyn OperationLog>,
}

impl ZStack {
    /// The service calling ZStack through `transport`, following jobs with `hub`.
    pub(crate) fn new(
        transport: Arc<Transport>,
        default_deadline: Duration,
        hub: JobHub<ZStackJobSource>,
        writes: Writes,
        operations: Arc<dyn OperationLog>,
    ) -> ZStack {
        ZStack {
            backend: Some(Backend {
                transport,
                default_deadline,
                hub,
                writes,
                operations,
            }),
        }
    }

    /// The service of a gateway that knows no ZStack.
    pub(crate) fn unconfigured() -> ZStack {
        ZStack { backend: None }
    }

    /// Whether the caller of `request` may read ZStack's jobs, on a gateway
    /// that serves ZStack (for ListOperations).
    pub(crate) fn admit<T: ResourceIds>(&self, request: &Request<T>) -> Result<(), Error> {
        self.backend()?.context(request).map(drop)
    }

    fn backend(&self) -> Result<&Backend, Error> {
        self.backend.as_ref().ok_or(Error::NotConfigured {
            service: "ZStack",
            flag: ENABLING_FLAG,
        })
    }
}

impl Backend {
    /// The call's context: the caller may act in "zstack", within its deadline.
    fn context<T: ResourceIds>(&self, request: &Request<T>) -> Result<CallContext, Error> {
        Admission::permit(request.extensions(), ZSTACK_PROJECT)?;
        if let Some(note) = request.extensions().get::<Arc<AccessNote>>() {
            note.set_target(ZSTACK_PROJECT, request.get_ref().resource_ids());
        }
        Ok(CallContext {
            project_id: ZSTACK_PROJECT.to_string(),
            deadline: Some(caller_deadline(request).unwrap_or_else(|| Instant::now() + self.default_deadline)),
            caller_token: None,
            send_by: None,
            caller: Admission::caller_name(request.extensions()),
        })
    }
}

#[tonic::async_trait]
impl ZStackBackupService for ZStack {
    async fn create_vm_backup(
        &self,
        request: Request<zs::CreateVmBackupRequest>,
    ) -> RpcResult<zs::CreateVmBackupResponse> {
        let backend = self.backend()?;
        let ctx = backend.context(&request)?;
        let req = request.into_inner();
        validate_create(&req)?;
        let transport = backend.transport.clone();
        let log = backend.operations.clone();
        let reply = backend.writes.run(ctx, req, |ctx, req| async move {
            let api = ZStackApi {
                transport: &transport,
                ctx: &ctx,
            };
            let root_volume_uuid = req.root_volume_uuid.clone();
            let created = api
                .create_vm_backup(&root_volume_uuid, &body(req))
                .await
                .map_err(Error::from)?;
            Ok(match created {
                Created::Job(job_uuid) => {
                    note_started(log.as_ref(), OPERATION_COLLECTION, &job_uuid).await;
                    zs::CreateVmBackupResponse {
                        operation: Some(crate::proto::longrunning::Operation {
                            name: operation_name(&job_uuid),
                            ..Default::default()
                        }),
                        job_uuid,
                        inventories: Vec::new(),
                    }
                }
                Created::Done(inventories) => zs::CreateVmBackupResponse {
                    inventories: inventories.into_iter().map(Into::into).collect(),
                    ..Default::default()
                },
            })
        });
        Ok(Response::new(reply.await?))
    }

    async fn get_vm_backup_job(
        &self,
        request: Request<zs::GetVmBackupJobRequest>,
    ) -> RpcResult<zs::GetVmBackupJobResponse> {
        let backend = self.backend()?;
        let ctx = backend.context(&request)?;
        let req = request.into_inner();
        validate_job_uuid(&req.job_uuid)?;
        let api = ZStackApi {
            transport: &backend.transport,
            ctx: &ctx,
        };
        let state = api.get_api_job(&req.job_uuid).await.map_err(Error::from)?;
        Ok(Response::new(zs::GetVmBackupJobResponse {
            job: Some(convert::job(&req.job_uuid, state)),
        }))
    }

    type WatchVmBackupJobStream = ResponseStream<zs::WatchVmBackupJobResponse>;

    async fn watch_vm_backup_job(
        &self,
        request: Request<zs::WatchVmBackupJobRequest>,
    ) -> RpcResult<Self::WatchVmBackupJobStream> {
        let backend = self.backend()?;
        backend.context(&request)?;
        let req = request.into_inner();
        validate_job_uuid(&req.job_uuid)?;
        let watcher = backend.hub.watch(req.job_uuid).map_err(Error::from)?;
        Ok(Response::new(follow::watch_stream(watcher, watch_response)))
    }

    async fn wait_vm_backup_job(
        &self,
        request: Request<zs::WaitVmBackupJobRequest>,
    ) -> RpcResult<zs::WaitVmBackupJobResponse> {
        let backend = self.backend()?;
        backend.context(&request)?;
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let mut v = Violations::default();
        v.check("job_uuid", rules::uuid(&req.job_uuid));
        let timeout = follow::wait_timeout(&mut v, req.timeout);
        v.finish()?;
        let watcher = backend.hub.wait(req.job_uuid).map_err(Error::from)?;
        let (state, outcome) = follow::wait(watcher, timeout, deadline, Operation::ZStackGetApiJob).await?;
        Ok(Response::new(zs::WaitVmBackupJobResponse {
            job: Some(state.job.as_ref().clone()),
            outcome: outcome as i32,
            observed_at: Some(state.observed_at.into()),
        }))
    }
}

fn watch_response(event: Event<ZStackJobSource>) -> zs::WatchVmBackupJobResponse {
    use zs::watch_vm_backup_job_response::Event as Carried;
    match event {
        Event::Job(state) => zs::WatchVmBackupJobResponse {
            observed_at: Some(state.observed_at.into()),
            event: Some(Carried::Job(state.job.as_ref().clone())),
        },
        Event::Heartbeat(beat) => zs::WatchVmBackupJobResponse {
            observed_at: None,
            event: Some(Carried::Heartbeat(beat.into())),
        },
    }
}

fn body(req: zs::CreateVmBackupRequest) -> CreateVmBackup {
    let set = |text: String| (!text.is_empty()).then_some(text);
    CreateVmBackup {
        params: VmBackupParams {
            backup_storage_uuid: req.backup_storage_uuid,
            name: req.name,
            description: set(req.description),
            resource_uuid: set(req.resource_uuid),
            volume_read_bandwidth: req.volume_read_bandwidth,
            volume_write_bandwidth: req.volume_write_bandwidth,
            network_read_bandwidth: req.network_read_bandwidth,
            network_write_bandwidth: req.network_write_bandwidth,
        },
        system_tags: req.system_tags,
        user_tags: req.user_tags,
    }
}

/// Every rule, all broken ones at once.
fn validate_create(req: &zs::CreateVmBackupRequest) -> Result<(), Error> {
    let mut v = Violations::default();
    v.check("root_volume_uuid", rules::uuid(&req.root_volume_uuid));
    v.check("backup_storage_uuid", rules::uuid(&req.backup_storage_uuid));
    v.check("name", rules::name(&req.name));
    v.check("description", rules::description(&req.description));
    if !req.resource_uuid.is_empty() {
        v.check("resource_uuid", rules::uuid(&req.resource_uuid));
    }
    let bandwidths = [
        ("volume_read_bandwidth", req.volume_read_bandwidth),
        ("volume_write_bandwidth", req.volume_write_bandwidth),
        ("network_read_bandwidth", req.network_read_bandwidth),
        ("network_write_bandwidth", req.network_write_bandwidth),
    ];
    for (field, value) in bandwidths {
        if let Some(value) = value {
            v.check(field, rules::bandwidth(value));
        }
    }
    for (field, tags) in [("system_tags", &req.system_tags), ("user_tags", &req.user_tags)] {
        v.check(field, vbs_rules::entries_at_most(tags.len(), rules::TAGS_MAX));
        for (i, tag) in tags.iter().enumerate() {
            v.check(&format!("{field}[{i}]"), rules::tag(tag));
        }
    }
    v.finish()
}

fn validate_job_uuid(job_uuid: &str) -> Result<(), Error> {
    Violations::only("job_uuid", rules::uuid(job_uuid))
}

/// A retried create with the same `request_id` gets the first answer.
impl WriteRequest for zs::CreateVmBackupRequest {
    const METHOD: &'static str = "CreateVmBackup";
    fn take_request_id(&mut self) -> String {
        std::mem::take(&mut self.request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_broken_rule_is_named() {
        let request = zs::CreateVmBackupRequest {
            root_volume_uuid: "2ae6b881-bb12".into(),
            backup_storage_uuid: String::new(),
            name: String::new(),
            volume_read_bandwidth: Some(0),
            user_tags: vec![String::new()],
            ..Default::default()
        };
        let Err(Error::InvalidArgument(violations)) = validate_create(&request) else {
            panic!("expected violations")
        };
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "root_volume_uuid",
                "backup_storage_uuid",
                "name",
                "volume_read_bandwidth",
                "user_tags[0]"
            ]
        );
        assert_eq!(
            operation_name("967a26b7431c49c0b1d50d709ef1aef3"),
            "zstack/jobs/967a26b7431c49c0b1d50d709ef1aef3"
        );
    }
}
