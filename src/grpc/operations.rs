//! google.longrunning.Operations as a view of the work the gateway follows:
//! `projects/{project_id}/jobs/{job_id}` is a VBS job (its `metadata`), done
//! once the job is, with the typed result as `response` or the job's failure
//! as `error`; `projects/{project_id}/checkpoints/{backup_id}` a CSBS backup,
//! `projects/{project_id}/taurusdb-jobs/{job_id}` a TaurusDB job and
//! `zstack/jobs/{job_uuid}` a ZStack API job, each read through its service.
//! ListOperations lists the work started through the gateway, per project
//! and service (`store/operations.rs`), read again through the service.

use std::sync::Arc;

use futures_util::stream::{self, StreamExt};
use prost::Message;
use tonic::{Request, Response, Status};

use super::csbs::{self, Csbs};
use super::jobs::Jobs;
use super::taurusdb::{self, TaurusDb};
use super::zstack::{self, ZStack};
use super::{Upstream, Violations};
use crate::error::{self, Error};
use crate::proto::csbs_pb::{self, csbs_backup_service_server::CsbsBackupService};
use crate::proto::longrunning::{self as lro, Operation, operation};
use crate::proto::pb::{self, JobStatus, job_service_server::JobService};
use crate::proto::taurusdb::v3::{self as tdb, taurus_db_backup_service_server::TaurusDbBackupService};
use crate::proto::zstack::v1::{self as zs, z_stack_backup_service_server::ZStackBackupService};
use crate::rest::CallContext;
use crate::rest::backups::BackupsApi;
use crate::store::operations::{OperationLog, note_started};
use vbs_rules::{self as rules, Problem};

type RpcResult<T> = Result<Response<T>, Status>;

/// Where the type of a packed message is named, as protobuf's `Any` expects.
const TYPE_URL_PREFIX: &str = "type.googleapis.com/";
/// ListOperations pages hold this many operations unless asked otherwise.
const PAGE_DEFAULT: usize = 10;
/// The most operations one ListOperations page reads upstream.
const PAGE_MAX: usize = 50;
/// Operations of one page read at once: a page costs a few upstream round
/// trips rather than one or two per operation, and stays within the
/// upstream budget's default burst.
const READS_AT_ONCE: usize = 8;

/// The name of the operation that is job `job_id` of `project_id`.
pub(crate) fn operation_name(project_id: &str, job_id: &str) -> String {
    format!("projects/{project_id}/jobs/{job_id}")
}

/// The collection of VBS jobs in operation names.
const JOBS: &str = "jobs";
/// What a name must look like, for the caller who sent another.
const NAME_FORMS: &str = "must be projects/{project_id}/jobs/{job_id}, projects/{project_id}/checkpoints/{backup_id}, \
     projects/{project_id}/taurusdb-jobs/{job_id} or zstack/jobs/{job_uuid}";

/// What an operation name names, its ids checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Named {
    /// A VBS job.
    Job(JobName),
    /// A CSBS backup (checkpoint item).
    Checkpoint { project_id: String, backup_id: String },
    /// A TaurusDB job.
    TaurusDbJob { project_id: String, job_id: String },
    /// A ZStack API job (ZStack has no projects).
    ZStackJob { job_uuid: String },
}

/// An operation named `projects/{project_id}/jobs/{job_id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct JobName {
    project_id: String,
    job_id: String,
}

impl Named {
    /// The operation's name, as `parse` reads it.
    fn name(&self) -> String {
        match self {
            Named::Job(JobName { project_id, job_id }) => operation_name(project_id, job_id),
            Named::Checkpoint { project_id, backup_id } => csbs::operation_name(project_id, backup_id),
            Named::TaurusDbJob { project_id, job_id } => taurusdb::operation_name(project_id, job_id),
            Named::ZStackJob { job_uuid } => zstack::operation_name(job_uuid),
        }
    }

    fn parse(name: &str) -> Result<Named, Error> {
        if let Some(job_uuid) = name
            .strip_prefix(zstack::OPERATION_COLLECTION)
            .and_then(|r| r.strip_prefix('/'))
        {
            let mut v = Violations::default();
            v.check("name", rules::path_id(job_uuid));
            v.finish()?;
            return Ok(Named::ZStackJob {
                job_uuid: job_uuid.to_string(),
            });
        }
        let parts: Vec<&str> = name.split('/').collect();
        let ["projects", project_id, collection, id] = parts.as_slice() else {
            return Err(Error::invalid("name", Problem::BadFormat, NAME_FORMS));
        };
        let mut v = Violations::default();
        v.check("name", rules::path_id(project_id));
        v.check("name", rules::path_id(id));
        v.finish()?;
        let (project_id, id) = (project_id.to_string(), id.to_string());
        match *collection {
            JOBS => Ok(Named::Job(JobName { project_id, job_id: id })),
            csbs::OPERATION_COLLECTION => Ok(Named::Checkpoint {
                project_id,
                backup_id: id,
            }),
            taurusdb::OPERATION_COLLECTION => Ok(Named::TaurusDbJob { project_id, job_id: id }),
            _ => Err(Error::invalid("name", Problem::BadFormat, NAME_FORMS)),
        }
    }
}

/// What a ListOperations `name` lists, its project id checked.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Listed {
    /// `projects/{project_id}/jobs`: the project's VBS jobs.
    Jobs { project_id: String },
    /// `projects/{project_id}/checkpoints`: the project's CSBS backups.
    Checkpoints { project_id: String },
    /// `projects/{project_id}/taurusdb-jobs`: the project's TaurusDB jobs.
    TaurusDbJobs { project_id: String },
    /// `zstack/jobs`: ZStack's API jobs.
    ZStackJobs,
}

/// What a list name must look like, for the caller who sent another.
const LIST_FORMS: &str = "must be projects/{project_id}/jobs, projects/{project_id}/checkpoints, \
     projects/{project_id}/taurusdb-jobs or zstack/jobs";

impl Listed {
    fn parse(name: &str) -> Result<Listed, Error> {
        if name == zstack::OPERATION_COLLECTION {
            return Ok(Listed::ZStackJobs);
        }
        let parts: Vec<&str> = name.split('/').collect();
        let ["projects", project_id, collection] = parts.as_slice() else {
            return Err(Error::invalid("name", Problem::BadFormat, LIST_FORMS));
        };
        let mut v = Violations::default();
        v.check("name", rules::path_id(project_id));
        v.finish()?;
        let project_id = (*project_id).to_string();
        match *collection {
            JOBS => Ok(Listed::Jobs { project_id }),
            csbs::OPERATION_COLLECTION => Ok(Listed::Checkpoints { project_id }),
            taurusdb::OPERATION_COLLECTION => Ok(Listed::TaurusDbJobs { project_id }),
            _ => Err(Error::invalid("name", Problem::BadFormat, LIST_FORMS)),
        }
    }

    /// Where the operation log keeps the list: a project's VBS jobs under
    /// the bare project id (their key from before the other services were
    /// listed), the others under their list name.
    fn log_key(&self) -> String {
        match self {
            Listed::Jobs { project_id } => project_id.clone(),
            Listed::Checkpoints { project_id } => csbs::operations_list(project_id),
            Listed::TaurusDbJobs { project_id } => taurusdb::operations_list(project_id),
            Listed::ZStackJobs => zstack::OPERATION_COLLECTION.to_string(),
        }
    }

    /// The operation `id` of the list.
    fn member(&self, id: &str) -> Named {
        let id = id.to_string();
        match self {
            Listed::Jobs { project_id } => Named::Job(JobName {
                project_id: project_id.clone(),
                job_id: id,
            }),
            Listed::Checkpoints { project_id } => Named::Checkpoint {
                project_id: project_id.clone(),
                backup_id: id,
            },
            Listed::TaurusDbJobs { project_id } => Named::TaurusDbJob {
                project_id: project_id.clone(),
                job_id: id,
            },
            Listed::ZStackJobs => Named::ZStackJob { job_uuid: id },
        }
    }
}

/// A message packed the way `Any` carries it.
fn pack<M: Message>(full_name: &str, message: &M) -> prost_types::Any {
    prost_types::Any {
        type_url: format!("{TYPE_URL_PREFIX}{full_name}"),
        value: message.encode_to_vec(),
    }
}

/// A VBS job just started in the call's project: noted for ListOperations,
/// and the operation a caller follows, not done yet.
pub(crate) async fn started(log: &dyn OperationLog, ctx: &CallContext, job_id: &str) -> Operation {
    note_started(log, &ctx.project_id, job_id).await;
    Operation {
        name: operation_name(&ctx.project_id, job_id),
        ..Operation::default()
    }
}

/// A CSBS backup as an operation: done once AVAILABLE (the backup is the
/// `response`) or ERROR (its failure is the `error`).
fn of_checkpoint(name: String, backup: csbs_pb::Backup) -> Operation {
    let result = match backup.status() {
        csbs_pb::BackupStatus::Available => Some(operation::Result::Response(pack("csbs.v1.Backup", &backup))),
        csbs_pb::BackupStatus::Error => Some(operation::Result::Error(error::backup_failure(
            &backup.fail_code,
            &backup.fail_reason,
            &backup.id,
        ))),
        _ => None,
    };
    Operation {
        name,
        metadata: Some(pack("csbs.v1.Backup", &backup)),
        done: result.is_some(),
        result,
    }
}

/// A TaurusDB job as an operation: done once COMPLETED (the job is the
/// `response`) or FAILED (its fail reason is the `error`).
fn of_taurusdb_job(name: String, job: tdb::Job) -> Operation {
    let result = match job.status() {
        tdb::JobStatus::Completed => Some(operation::Result::Response(pack("taurusdb.v3.Job", &job))),
        tdb::JobStatus::Failed => Some(operation::Result::Error(error::backup_failure(
            "",
            &job.fail_reason,
            &job.id,
        ))),
        _ => None,
    };
    Operation {
        name,
        metadata: Some(pack("taurusdb.v3.Job", &job)),
        done: result.is_some(),
        result,
    }
}

/// A ZStack API job as an operation: done once SUCCEEDED (the job is the
/// `response`) or FAILED (ZStack's error is the `error`).
fn of_zstack_job(name: String, job: zs::Job) -> Operation {
    let result = match job.state() {
        zs::JobState::Succeeded => Some(operation::Result::Response(pack("zstack.v1.Job", &job))),
        zs::JobState::Failed => {
            let failure = job.error.clone().unwrap_or_default();
            // `details` says what went wrong; `description` is the code's category.
            let reason = if failure.details.is_empty() {
                &failure.description
            } else {
                &failure.details
            };
            Some(operation::Result::Error(error::backup_failure(
                &failure.code,
                reason,
                &job.job_uuid,
            )))
        }
        _ => None,
    };
    Operation {
        name,
        metadata: Some(pack("zstack.v1.Job", &job)),
        done: result.is_some(),
        result,
    }
}

/// The services besides VBS whose work is an operation too.
pub(crate) struct OtherServices {
    pub(crate) csbs: Arc<Csbs>,
    pub(crate) taurusdb: Arc<TaurusDb>,
    pub(crate) zstack: Arc<ZStack>,
}

/// The Operations service over the job service, the backup reads and the
/// other backup services.
pub(crate) struct Operations {
    upstream: Upstream,
    jobs: Arc<Jobs>,
    others: OtherServices,
}

impl Operations {
    pub(crate) fn new(upstream: Upstream, jobs: Arc<Jobs>, others: OtherServices) -> Operations {
        Operations { upstream, jobs, others }
    }

    /// The job as an operation; a successful backup job's backup is read
    /// for its `response`.
    async fn of_job(&self, ctx: &CallContext, job: pb::Job) -> Result<Operation, Error> {
        let result = match job.status() {
            JobStatus::Success => Some(operation::Result::Response(self.response(ctx, &job).await?)),
            JobStatus::Fail => Some(operation::Result::Error(error::job_failure(&job))),
            _ => None,
        };
        Ok(Operation {
            name: job.operation_name.clone(),
            metadata: Some(pack("vbs.v2.Job", &job)),
            done: result.is_some(),
            result,
        })
    }

    /// What a finished job produced: the Backup for a backup job, the
    /// RestoreJobResult for a restore, Empty for a delete or a job type this
    /// gateway does not know.
    async fn response(&self, ctx: &CallContext, job: &pb::Job) -> Result<prost_types::Any, Error> {
        match &job.result {
            Some(pb::job::Result::Backup(made)) => Ok(pack("vbs.v2.Backup", &self.backup(ctx, made).await?)),
            Some(pb::job::Result::Restore(restore)) => Ok(pack("vbs.v2.RestoreJobResult", restore)),
            Some(pb::job::Result::Delete(_)) | None => Ok(pack("google.protobuf.Empty", &())),
        }
    }

    /// The backup a job made, as it is now; only its ids when it is gone
    /// since (or VBS did not name it).
    async fn backup(&self, ctx: &CallContext, made: &pb::BackupJobResult) -> Result<pb::Backup, Error> {
        let ids_only = pb::Backup {
            id: made.backup_id.clone(),
            volume_id: made.volume_id.clone(),
            snapshot_id: made.snapshot_id.clone(),
            ..pb::Backup::default()
        };
        if rules::uuid(&made.backup_id).is_err() {
            return Ok(ids_only);
        }
        let api = BackupsApi {
            transport: &self.upstream.transport,
            ctx,
        };
        match api.get_backup(&made.backup_id).await {
            Ok(found) => Ok(found.backup.into()),
            Err(e) if e.http_status() == Some(404) => Ok(ids_only),
            Err(e) => Err(e.into()),
        }
    }

    /// Reads one job through the job service, with the caller's metadata and
    /// extensions (identity, deadline, access note).
    async fn read_job<T>(&self, request: Request<T>, name: &JobName) -> Result<pb::Job, Status> {
        let (metadata, extensions, _) = request.into_parts();
        let get = pb::GetJobRequest {
            project_id: name.project_id.clone(),
            job_id: name.job_id.clone(),
        };
        let reply = self
            .jobs
            .get_job(Request::from_parts(metadata, extensions, get))
            .await?;
        Ok(reply.into_inner().job.unwrap_or_default())
    }

    /// The operation `named` as it is now, read through its service with the
    /// caller's metadata and extensions.
    async fn read(&self, request: Request<()>, named: Named) -> Result<Operation, Status> {
        let full_name = named.name();
        let (metadata, extensions, ()) = request.into_parts();
        match named {
            Named::Job(name) => {
                // The access log names the operation read.
                let get = lro::GetOperationRequest { name: full_name };
                let request = Request::from_parts(metadata, extensions, get);
                let ctx = self.upstream.context(&request, &name.project_id)?;
                let job = self.read_job(request, &name).await?;
                Ok(self.of_job(&ctx, job).await?)
            }
            Named::Checkpoint { project_id, backup_id } => {
                let get = csbs_pb::GetBackupRequest { project_id, backup_id };
                let reply = self
                    .others
                    .csbs
                    .get_backup(Request::from_parts(metadata, extensions, get))
                    .await?;
                Ok(of_checkpoint(full_name, reply.into_inner().backup.unwrap_or_default()))
            }
            Named::TaurusDbJob { project_id, job_id } => {
                let get = tdb::GetBackupJobRequest { project_id, job_id };
                let reply = self
                    .others
                    .taurusdb
                    .get_backup_job(Request::from_parts(metadata, extensions, get))
                    .await?;
                Ok(of_taurusdb_job(full_name, reply.into_inner().job.unwrap_or_default()))
            }
            Named::ZStackJob { job_uuid } => {
                let get = zs::GetVmBackupJobRequest { job_uuid };
                let reply = self
                    .others
                    .zstack
                    .get_vm_backup_job(Request::from_parts(metadata, extensions, get))
                    .await?;
                Ok(of_zstack_job(full_name, reply.into_inner().job.unwrap_or_default()))
            }
        }
    }
}

#[tonic::async_trait]
impl lro::operations_server::Operations for Operations {
    async fn list_operations(
        &self,
        request: Request<lro::ListOperationsRequest>,
    ) -> RpcResult<lro::ListOperationsResponse> {
        let req = request.get_ref();
        let listed = Listed::parse(&req.name)?;
        let page = ListPage::try_from(req)?;
        // The caller's rights on what is listed, before anything is read.
        match &listed {
            Listed::Jobs { project_id } => self.upstream.context(&request, project_id).map(drop)?,
            Listed::Checkpoints { project_id } => self.others.csbs.admit(&request, project_id)?,
            Listed::TaurusDbJobs { project_id } => self.others.taurusdb.admit(&request, project_id)?,
            Listed::ZStackJobs => self.others.zstack.admit(&request)?,
        }
        let log_key = listed.log_key();
        let (logged, more) = self
            .upstream
            .operations
            .page(&log_key, page.before, page.size)
            .await
            .map_err(Error::OperationLog)?;
        let (metadata, extensions, _) = request.into_parts();
        let mut reads = Vec::with_capacity(logged.len());
        for entry in &logged {
            let copy = Request::from_parts(metadata.clone(), extensions.clone(), ());
            reads.push(self.read(copy, listed.member(&entry.job_id)));
        }
        // Answered in the log's order, whichever read ends first.
        let mut reads = stream::iter(reads).buffered(READS_AT_ONCE);
        let mut operations = Vec::with_capacity(logged.len());
        for entry in &logged {
            let Some(read) = reads.next().await else { break };
            match read {
                Ok(operation) => operations.push(operation),
                // Its service forgot it: so does the list.
                Err(status) if status.code() == tonic::Code::NotFound => {
                    // Dropping it is tidying: the page is right either way.
                    let _ = self.upstream.operations.forget(&log_key, &entry.job_id).await;
                }
                Err(status) => return Err(status),
            }
        }
        let next_page_token = match logged.last() {
            Some(last) if more => last.seq.to_string(),
            _ => String::new(),
        };
        Ok(Response::new(lro::ListOperationsResponse {
            operations,
            next_page_token,
        }))
    }

    async fn get_operation(&self, request: Request<lro::GetOperationRequest>) -> RpcResult<Operation> {
        let named = Named::parse(&request.get_ref().name)?;
        let (metadata, extensions, _) = request.into_parts();
        let operation = self.read(Request::from_parts(metadata, extensions, ()), named).await?;
        Ok(Response::new(operation))
    }

    async fn wait_operation(&self, request: Request<lro::WaitOperationRequest>) -> RpcResult<Operation> {
        let full_name = request.get_ref().name.clone();
        let named = Named::parse(&full_name)?;
        let timeout = request.get_ref().timeout;
        // The backup read after the wait gets a deadline of its own.
        let (metadata, extensions, _) = request.into_parts();
        let name = match named {
            Named::Job(name) => name,
            Named::Checkpoint { project_id, backup_id } => {
                let wait = csbs_pb::WaitBackupRequest {
                    project_id,
                    backup_id,
                    timeout,
                };
                let reply = self
                    .others
                    .csbs
                    .wait_backup(Request::from_parts(metadata, extensions, wait))
                    .await?;
                let backup = reply.into_inner().backup.unwrap_or_default();
                return Ok(Response::new(of_checkpoint(full_name, backup)));
            }
            Named::TaurusDbJob { project_id, job_id } => {
                let wait = tdb::WaitBackupJobRequest {
                    project_id,
                    job_id,
                    timeout,
                };
                let reply = self
                    .others
                    .taurusdb
                    .wait_backup_job(Request::from_parts(metadata, extensions, wait))
                    .await?;
                let job = reply.into_inner().job.unwrap_or_default();
                return Ok(Response::new(of_taurusdb_job(full_name, job)));
            }
            Named::ZStackJob { job_uuid } => {
                let wait = zs::WaitVmBackupJobRequest { job_uuid, timeout };
                let reply = self
                    .others
                    .zstack
                    .wait_vm_backup_job(Request::from_parts(metadata, extensions, wait))
                    .await?;
                let job = reply.into_inner().job.unwrap_or_default();
                return Ok(Response::new(of_zstack_job(full_name, job)));
            }
        };
        let wait = pb::WaitJobRequest {
            project_id: name.project_id.clone(),
            job_id: name.job_id.clone(),
            timeout,
        };
        let waited = self
            .jobs
            .wait_job(Request::from_parts(metadata.clone(), extensions.clone(), wait))
            .await?;
        let job = waited.into_inner().job.unwrap_or_default();
        let after = Request::from_parts(metadata, extensions, lro::GetOperationRequest::default());
        let ctx = self.upstream.context(&after, &name.project_id)?;
        Ok(Response::new(self.of_job(&ctx, job).await?))
    }

    async fn delete_operation(&self, request: Request<lro::DeleteOperationRequest>) -> RpcResult<()> {
        Named::parse(&request.get_ref().name)?;
        Err(Error::OperationUnsupported {
            reason: "OPERATION_DELETE_UNSUPPORTED",
            what: "the backup services keep their jobs and backups; an operation cannot be deleted",
        }
        .into())
    }

    async fn cancel_operation(&self, request: Request<lro::CancelOperationRequest>) -> RpcResult<()> {
        Named::parse(&request.get_ref().name)?;
        Err(Error::OperationUnsupported {
            reason: "OPERATION_CANCEL_UNSUPPORTED",
            what: "the backup services cannot cancel a job or backup once started",
        }
        .into())
    }
}

/// One ListOperations page: its size and where it starts.
struct ListPage {
    size: usize,
    /// Operations older than this place in the log (the last one shown).
    before: Option<u64>,
}

impl TryFrom<&lro::ListOperationsRequest> for ListPage {
    type Error = Error;

    fn try_from(req: &lro::ListOperationsRequest) -> Result<Self, Error> {
        let mut v = Violations::default();
        if !req.filter.is_empty() {
            v.add("filter", Problem::NotInSet, "is not supported: leave it empty");
        }
        let size = match usize::try_from(req.page_size) {
            Ok(0) => PAGE_DEFAULT,
            Ok(size) if size <= PAGE_MAX => size,
            _ => {
                v.add("page_size", Problem::OutOfRange, format!("must be 0 to {PAGE_MAX}"));
                PAGE_DEFAULT
            }
        };
        let before = match req.page_token.as_str() {
            "" => None,
            token => match token.parse::<u64>() {
                Ok(seq) if !token.starts_with('0') && !token.starts_with('+') => Some(seq),
                _ => {
                    v.add(
                        "page_token",
                        Problem::NotAPageToken,
                        "is not a page token of this list: pass the previous response's next_page_token unchanged",
                    );
                    None
                }
            },
        };
        v.finish()?;
        Ok(ListPage { size, before })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_hostile_ones_are_refused() {
        let name = operation_name("p-1", "4010b39b5281d3590152874bfa3b1604");
        assert_eq!(
            Named::parse(&name).unwrap(),
            Named::Job(JobName {
                project_id: "p-1".into(),
                job_id: "4010b39b5281d3590152874bfa3b1604".into()
            })
        );
        assert_eq!(
            Named::parse(&csbs::operation_name("p", "b")).unwrap(),
            Named::Checkpoint {
                project_id: "p".into(),
                backup_id: "b".into()
            }
        );
        assert_eq!(
            Named::parse(&taurusdb::operation_name("p", "j")).unwrap(),
            Named::TaurusDbJob {
                project_id: "p".into(),
                job_id: "j".into()
            }
        );
        assert_eq!(
            Named::parse(&zstack::operation_name("u")).unwrap(),
            Named::ZStackJob { job_uuid: "u".into() }
        );
        assert!(Named::parse("zstack/jobs/../x").is_err());
        assert!(Named::parse("zstack/jobs/").is_err());
        for bad in [
            "",
            "projects/p/jobs",
            "projects/p/jobs/j/x",
            "projects/../jobs/j",
            "projects/p/jobs/a%2Fb",
            "operations/j",
            "projects/p/backups/j",
        ] {
            assert!(Named::parse(bad).is_err(), "{bad}");
        }
        for id in ["j", "4010b39b5281d3590152874bfa3b1604"] {
            for name in [
                operation_name("p", id),
                csbs::operation_name("p", id),
                taurusdb::operation_name("p", id),
                zstack::operation_name(id),
            ] {
                assert_eq!(Named::parse(&name).unwrap().name(), name);
            }
        }
    }

    #[test]
    fn each_service_has_a_list_and_its_members_are_its_operations() {
        let cases = [
            ("projects/p/jobs", "p", operation_name("p", "j")),
            (
                "projects/p/checkpoints",
                "projects/p/checkpoints",
                csbs::operation_name("p", "j"),
            ),
            (
                "projects/p/taurusdb-jobs",
                "projects/p/taurusdb-jobs",
                taurusdb::operation_name("p", "j"),
            ),
            ("zstack/jobs", "zstack/jobs", zstack::operation_name("j")),
        ];
        for (name, log_key, member) in cases {
            let listed = Listed::parse(name).unwrap();
            assert_eq!(listed.log_key(), log_key, "{name}");
            assert_eq!(listed.member("j").name(), member, "{name}");
        }
        for bad in [
            "",
            "projects/p",
            "projects/p/backups",
            "projects/../jobs",
            "projects/p/jobs/j",
            "zstack",
            "zstack/jobs/",
            "projects//jobs",
        ] {
            assert!(Listed::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn list_pages_are_bounded_and_tokens_checked() {
        let page = |size: i32, token: &str, filter: &str| {
            ListPage::try_from(&lro::ListOperationsRequest {
                name: "projects/p/jobs".into(),
                filter: filter.into(),
                page_size: size,
                page_token: token.into(),
            })
        };
        let first = page(0, "", "").unwrap();
        assert_eq!((first.size, first.before), (PAGE_DEFAULT, None));
        assert_eq!(page(5, "17", "").unwrap().before, Some(17));
        assert!(page(51, "", "").is_err());
        assert!(page(-1, "", "").is_err());
        assert!(page(5, "x", "").is_err());
        assert!(page(5, "017", "").is_err());
        assert!(page(5, "", "done=true").is_err());
    }
}
