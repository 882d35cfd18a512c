//! CsbsBackupService: backs up servers through Cloud Server Backup Service
//! (CSBS) and follows each backup to AVAILABLE or ERROR through a job hub of
//! its own (`source`: checkpoint items as a `JobSource`). Without a CSBS
//! upstream every RPC answers UNIMPLEMENTED. Conversions in `convert`.

mod convert;
pub(crate) mod source;

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::resource_ids::ResourceIds;
use super::writes::WriteRequest;
use super::{Upstream, Violations, caller_deadline, follow};
use crate::error::Error;
use crate::grpc::watched::Watched;
use crate::proto::csbs_pb::{self as pb, csbs_backup_service_server::CsbsBackupService};
use crate::rest::csbs::{self as rest, CsbsApi};
use crate::rest::{Operation, Transport};
use crate::store::operations::note_started;
use crate::watch::{self, JobHub};
use source::CsbsBackupSource;
use vbs_rules::csbs as csbs_rules;
use vbs_rules::{self as rules, Problem};

type RpcResult<T> = Result<Response<T>, Status>;
type Event = watch::Event<CsbsBackupSource>;

/// The flag that gives the gateway a CSBS upstream, named by UNIMPLEMENTED.
pub(crate) const ENDPOINT_FLAG: &str = "--csbs-endpoint";
/// The collection segment of CSBS operation names, which the operations view
/// routes by: `projects/{project_id}/checkpoints/{backup_id}`.
pub(crate) const OPERATION_COLLECTION: &str = "checkpoints";

/// A CSBS upstream: its transport and the hub that polls its backups.
#[derive(Debug, Clone)]
pub(crate) struct CsbsBackend {
    pub(crate) transport: Arc<Transport>,
    pub(crate) hub: JobHub<CsbsBackupSource>,
}

impl CsbsBackend {
    /// Stops the backup watches (at shutdown), as the VBS hub's.
    pub(crate) fn shutdown(&self) {
        self.hub.shutdown();
    }
}

/// The operation name of a backup: `projects/{project_id}/checkpoints/{backup_id}`.
pub(crate) fn operation_name(project_id: &str, backup_id: &str) -> String {
    format!("{}/{backup_id}", operations_list(project_id))
}

/// The ListOperations name of a project's backups: `projects/{project_id}/checkpoints`.
pub(crate) fn operations_list(project_id: &str) -> String {
    format!("projects/{project_id}/{OPERATION_COLLECTION}")
}

pub(crate) struct Csbs {
    upstream: Upstream,
    backend: Option<CsbsBackend>,
}

impl Csbs {
    /// The service over `backend`; None: every RPC answers UNIMPLEMENTED.
    /// `upstream` gives the defaults every service shares (project,
    /// deadline, pass-through, writes); its VBS transport is not used.
    pub(crate) fn new(upstream: Upstream, backend: Option<CsbsBackend>) -> Csbs {
        Csbs { upstream, backend }
    }

    /// Whether the caller of `request` may read the project's backups, on a
    /// gateway that serves CSBS (for ListOperations).
    pub(crate) fn admit<T: ResourceIds>(&self, request: &Request<T>, project_id: &str) -> Result<(), Error> {
        self.backend()?;
        self.upstream.context(request, project_id).map(drop)
    }

    fn backend(&self) -> Result<&CsbsBackend, Error> {
        self.backend.as_ref().ok_or(Error::NotConfigured {
            service: "CSBS",
            flag: ENDPOINT_FLAG,
        })
    }
}

#[tonic::async_trait]
impl CsbsBackupService for Csbs {
    async fn create_backup(&self, request: Request<pb::CreateBackupRequest>) -> RpcResult<pb::CreateBackupResponse> {
        let backend = self.backend()?;
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_create_backup(&req)?;
        let transport = backend.transport.clone();
        let log = self.upstream.operations.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let resource_id = req.resource_id.clone();
            let body = rest::Protect::from(req);
            let api = CsbsApi {
                transport: &transport,
                ctx: &ctx,
            };
            let checkpoint = api.protect(&resource_id, &body).await?;
            let checkpoint_id = checkpoint.id.unwrap_or_default();
            let backup = backup_of_checkpoint(&api, &checkpoint_id)
                .await
                .map_err(|e| Error::AfterWrite(Box::new(e)))?;
            note_started(log.as_ref(), &operations_list(&ctx.project_id), &backup.id).await;
            Ok(pb::CreateBackupResponse {
                operation: Some(crate::proto::longrunning::Operation {
                    name: operation_name(&ctx.project_id, &backup.id),
                    ..Default::default()
                }),
                backup: Some(backup),
                checkpoint_id,
            })
        });
        Ok(Response::new(reply.await?))
    }

    async fn get_backup(&self, request: Request<pb::GetBackupRequest>) -> RpcResult<pb::GetBackupResponse> {
        let backend = self.backend()?;
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_backup_id(&req.backup_id)?;
        let api = CsbsApi {
            transport: &backend.transport,
            ctx: &ctx,
        };
        let backup = api.get_backup(&req.backup_id).await?;
        Ok(Response::new(pb::GetBackupResponse {
            backup: Some(backup.into()),
        }))
    }

    type WatchBackupStream = follow::ResponseStream<pb::WatchBackupResponse>;

    async fn watch_backup(&self, request: Request<pb::WatchBackupRequest>) -> RpcResult<Self::WatchBackupStream> {
        let backend = self.backend()?;
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_backup_id(&req.backup_id)?;
        let watcher = backend
            .hub
            .watch(Watched::new(&ctx, &req.backup_id))
            .map_err(Error::from)?;
        Ok(Response::new(follow::watch_stream(watcher, |event| match event {
            Event::Job(state) => pb::WatchBackupResponse {
                observed_at: Some(state.observed_at.into()),
                event: Some(pb::watch_backup_response::Event::Backup(state.job.as_ref().clone())),
            },
            Event::Heartbeat(beat) => pb::WatchBackupResponse {
                observed_at: None,
                event: Some(pb::watch_backup_response::Event::Heartbeat(beat.into())),
            },
        })))
    }

    async fn wait_backup(&self, request: Request<pb::WaitBackupRequest>) -> RpcResult<pb::WaitBackupResponse> {
        let backend = self.backend()?;
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        // Waiting is bounded by the request's own timeout, not the default deadline.
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let timeout = validate_wait(&req)?;
        let watcher = backend
            .hub
            .wait(Watched::new(&ctx, &req.backup_id))
            .map_err(Error::from)?;
        let (state, outcome) = follow::wait(watcher, timeout, deadline, Operation::CsbsGetBackup).await?;
        Ok(Response::new(pb::WaitBackupResponse {
            backup: Some(state.job.as_ref().clone()),
            outcome: outcome as i32,
            observed_at: Some(state.observed_at.into()),
        }))
    }
}

/// The backup a protect made: the one checkpoint item of its checkpoint.
async fn backup_of_checkpoint(api: &CsbsApi<'_>, checkpoint_id: &str) -> Result<pb::Backup, Error> {
    let mut v = Violations::default();
    v.check("checkpoint.id", rules::path_id(checkpoint_id));
    v.finish().map_err(|_| Error::NotFound {
        what: "CSBS checkpoint",
        id: format!("{checkpoint_id:?} (the protect answer named no usable checkpoint)"),
    })?;
    let items = api.backups_of(checkpoint_id).await?;
    items
        .into_iter()
        .map(pb::Backup::from)
        .find(|backup| !backup.id.is_empty())
        .ok_or_else(|| Error::NotFound {
            what: "backup of CSBS checkpoint",
            id: checkpoint_id.to_string(),
        })
}

fn validate_create_backup(req: &pb::CreateBackupRequest) -> Result<(), Error> {
    let mut v = Violations::default();
    v.uuid("resource_id", &req.resource_id);
    if !req.backup_name.is_empty() {
        v.check("backup_name", csbs_rules::backup_name(&req.backup_name));
    }
    v.check("description", csbs_rules::description(&req.description));
    if !req.resource_type.is_empty() {
        v.check("resource_type", csbs_rules::resource_type(&req.resource_type));
    }
    v.check(
        "tags",
        rules::entries_at_most(req.tags.len(), csbs_rules::BACKUP_TAGS_MAX),
    );
    for (i, tag) in req.tags.iter().enumerate() {
        v.check(&format!("tags[{i}].key"), csbs_rules::tag_key(&tag.key));
        v.check(&format!("tags[{i}].value"), csbs_rules::tag_value(&tag.value));
    }
    if let Some(i) = csbs_rules::repeated_tag_key(req.tags.iter().map(|t| t.key.as_str())) {
        v.add(
            &format!("tags[{i}].key"),
            Problem::Duplicate,
            "repeats an earlier key; keys must be unique",
        );
    }
    v.check(
        "extra_info",
        rules::entries_at_most(req.extra_info.len(), csbs_rules::EXTRA_INFO_MAX),
    );
    let mut extra: Vec<_> = req.extra_info.iter().collect();
    extra.sort();
    for (key, value) in extra {
        let field = format!("extra_info[{key:?}]");
        if key.is_empty() {
            v.add(&field, Problem::Missing, "keys must not be empty");
        }
        v.check(&field, rules::text_at_most(key, csbs_rules::EXTRA_INFO_TEXT_MAX));
        v.check(&field, rules::text_at_most(value, csbs_rules::EXTRA_INFO_TEXT_MAX));
    }
    v.finish()
}

fn validate_backup_id(backup_id: &str) -> Result<(), Error> {
    Violations::only("backup_id", rules::uuid(backup_id))
}

fn validate_wait(req: &pb::WaitBackupRequest) -> Result<Option<Duration>, Error> {
    let mut v = Violations::default();
    v.uuid("backup_id", &req.backup_id);
    let timeout = follow::wait_timeout(&mut v, req.timeout);
    v.finish()?;
    Ok(timeout)
}

impl WriteRequest for pb::CreateBackupRequest {
    /// Its own name: a VBS CreateBackup with the same request_id is another write.
    const METHOD: &'static str = "CsbsCreateBackup";
    fn take_request_id(&mut self) -> String {
        std::mem::take(&mut self.request_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> pb::CreateBackupRequest {
        pb::CreateBackupRequest {
            resource_id: "9506416d-db6c-406e-8bca-c0f43793d914".into(),
            ..Default::default()
        }
    }

    fn fields(result: Result<(), Error>) -> Vec<String> {
        match result {
            Err(Error::InvalidArgument(violations)) => violations.into_iter().map(|v| v.field).collect(),
            other => panic!("expected violations, got {other:?}"),
        }
    }

    #[test]
    fn operation_names_follow_the_job_scheme() {
        assert_eq!(operation_name("p1", "b1"), "projects/p1/checkpoints/b1");
    }

    #[test]
    fn every_broken_rule_is_named_by_field() {
        assert!(validate_create_backup(&valid()).is_ok());
        let tag = |key: &str, value: &str| pb::Tag {
            key: key.into(),
            value: value.into(),
        };
        let req = pb::CreateBackupRequest {
            resource_id: "server-1".into(),
            backup_name: "bad name".into(),
            description: "<b>".into(),
            resource_type: "OS::Cinder::Volume".into(),
            tags: vec![tag("a", "x"), tag("a", "y"), tag("b", "has space inside")],
            extra_info: [("".to_string(), "v".to_string())].into(),
            ..valid()
        };
        assert_eq!(
            fields(validate_create_backup(&req)),
            [
                "resource_id",
                "backup_name",
                "description",
                "resource_type",
                "tags[2].value",
                "tags[1].key",
                "extra_info[\"\"]"
            ]
        );
        let too_many = pb::CreateBackupRequest {
            tags: (0..11).map(|i| tag(&format!("k{i}"), "")).collect(),
            ..valid()
        };
        assert_eq!(fields(validate_create_backup(&too_many)), ["tags"]);
    }
}
