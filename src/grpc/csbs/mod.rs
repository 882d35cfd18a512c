//! CsbsBackupService: backs up servers through Cloud Server Backup Service
//! (CSBS) and follows each backup to AVAILABLE or ERROR through a job hub of
//! its own (`source`: checkpoint items as a `JobSource`). Without a CSBS
//! upstream every RPC answers UNIMPLEMENTED. Conversions in `convert`.

mod convert;
pub(crate) mod source;

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, Stream};
use tonic::{Request, Response, Status};

use super::resource_ids::{ResourceIds, describe};
use super::writes::WriteRequest;
use super::{Upstream, Violations, caller_deadline};
use crate::error::Error;
use crate::proto::csbs_pb::{self as pb, csbs_backup_service_server::CsbsBackupService};
use crate::proto::pb::WaitOutcome;
use crate::rest::csbs::{self as rest, CsbsApi};
use crate::rest::{Operation, RestError, Transport};
use crate::watch::{self, JobHub};
use source::{CsbsBackupSource, WatchedBackup};
use vbs_rules::csbs as csbs_rules;
use vbs_rules::{self as rules, Problem};

type RpcResult<T> = Result<Response<T>, Status>;
type ResponseStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send>>;
type Event = watch::Event<CsbsBackupSource>;
type BackupState = watch::JobState<CsbsBackupSource>;
type WatchError = watch::WatchError<RestError>;
type Watcher = watch::Watcher<CsbsBackupSource>;

/// The flag that gives the gateway a CSBS upstream, named by UNIMPLEMENTED.
pub(crate) const ENDPOINT_FLAG: &str = "--csbs-endpoint";
/// The collection segment of CSBS operation names, which the operations view
/// routes by: `projects/{project_id}/checkpoints/{backup_id}`.
pub(crate) const OPERATION_COLLECTION: &str = "checkpoints";
/// The longest WaitBackup `timeout` accepted, as for WaitJob.
const MAX_WAIT: Duration = Duration::from_secs(3600);
/// WaitBackup answers this much (at most) before the caller's deadline.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);

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
    format!("projects/{project_id}/{OPERATION_COLLECTION}/{backup_id}")
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

    type WatchBackupStream = ResponseStream<pb::WatchBackupResponse>;

    async fn watch_backup(&self, request: Request<pb::WatchBackupRequest>) -> RpcResult<Self::WatchBackupStream> {
        let backend = self.backend()?;
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_backup_id(&req.backup_id)?;
        let watcher = backend
            .hub
            .watch(WatchedBackup::new(&ctx, &req.backup_id))
            .map_err(Error::from)?;
        // The stream is the watcher itself: a slow reader only gets the latest state.
        let events = stream::unfold(watcher, |mut watcher| async move {
            let item = watcher.next().await?;
            let response = match item {
                Ok(Event::Job(state)) => Ok(pb::WatchBackupResponse {
                    observed_at: Some(state.observed_at.into()),
                    event: Some(pb::watch_backup_response::Event::Backup(state.job.as_ref().clone())),
                }),
                Ok(Event::Heartbeat(beat)) => Ok(pb::WatchBackupResponse {
                    observed_at: None,
                    event: Some(pb::watch_backup_response::Event::Heartbeat(beat.into())),
                }),
                Err(error) => Err(Status::from(Error::from(error))),
            };
            Some((response, watcher))
        });
        Ok(Response::new(Box::pin(events)))
    }

    async fn wait_backup(&self, request: Request<pb::WaitBackupRequest>) -> RpcResult<pb::WaitBackupResponse> {
        let backend = self.backend()?;
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        // Waiting is bounded by the request's own timeout, not the default deadline.
        let deadline = caller_deadline(&request);
        let req = request.into_inner();
        let timeout = validate_wait(&req)?;
        let mut watcher = backend
            .hub
            .wait(WatchedBackup::new(&ctx, &req.backup_id))
            .map_err(Error::from)?;
        let (state, outcome) = wait(&mut watcher, timeout, deadline).await?;
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

/// Waits for the terminal state until the timeout or the deadline (minus a
/// margin), whichever comes first; past the timeout it still waits (within
/// the deadline) for a first read, so the answer is always a state read
/// from CSBS. Mirrors WaitJob.
async fn wait(
    watcher: &mut Watcher,
    timeout: Option<Duration>,
    deadline: Option<Instant>,
) -> Result<(BackupState, WaitOutcome), Error> {
    let now = Instant::now();
    let by_timeout = timeout.map(|t| (now + t, WaitOutcome::Timeout));
    let by_deadline = deadline.map(|d| (answer_before(d, now), WaitOutcome::Deadline));
    let limit = match (by_timeout, by_deadline) {
        (Some(t), Some(d)) => Some(if t.0 <= d.0 { t } else { d }),
        (t, d) => t.or(d),
    };
    let finished = match limit {
        Some((until, _)) => tokio::time::timeout_at(until.into(), until_terminal(watcher))
            .await
            .ok(),
        None => Some(until_terminal(watcher).await),
    };
    match (finished, limit) {
        (Some(result), _) => Ok((result?, WaitOutcome::Terminal)),
        (None, Some((_, outcome))) => match watcher.latest() {
            Some(state) => Ok((state, outcome)),
            None if outcome == WaitOutcome::Timeout => {
                let first = match by_deadline {
                    Some((until, _)) => tokio::time::timeout_at(until.into(), first_state(watcher))
                        .await
                        .map_err(|_| not_read_in_time(watcher))?,
                    None => first_state(watcher).await,
                };
                let state = first?;
                let outcome = if state.is_terminal() {
                    WaitOutcome::Terminal
                } else {
                    WaitOutcome::Timeout
                };
                Ok((state, outcome))
            }
            None => Err(not_read_in_time(watcher)),
        },
        (None, None) => Err(WatchError::Interrupted.into()),
    }
}

/// Waits for the terminal state, passing over the states before it.
async fn until_terminal(watcher: &mut Watcher) -> Result<BackupState, WatchError> {
    loop {
        match watcher.next().await {
            Some(Ok(Event::Job(state))) if state.is_terminal() => return Ok(state),
            Some(Ok(_)) => {}
            Some(Err(error)) => return Err(error),
            None => return Err(WatchError::Interrupted),
        }
    }
}

/// Waits for the first state read.
async fn first_state(watcher: &mut Watcher) -> Result<BackupState, WatchError> {
    loop {
        match watcher.next().await {
            Some(Ok(Event::Job(state))) => return Ok(state),
            Some(Ok(Event::Heartbeat(_))) => {}
            Some(Err(error)) => return Err(error),
            None => return Err(WatchError::Interrupted),
        }
    }
}

/// Stop a fifth of the time left (at most 100 ms) early, as WaitJob does.
fn answer_before(deadline: Instant, now: Instant) -> Instant {
    let left = deadline.saturating_duration_since(now);
    now + left.saturating_sub((left / 5).min(DEADLINE_MARGIN))
}

/// The last upstream failure if there was one, else the deadline itself.
fn not_read_in_time(watcher: &Watcher) -> Error {
    match watcher.last_failure() {
        Some(failure) => Error::Watch(WatchError::Upstream(failure)),
        None => Error::Rest(RestError::DeadlineExceeded {
            operation: Operation::CsbsGetBackup,
        }),
    }
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
    let mut v = Violations::default();
    v.uuid("backup_id", backup_id);
    v.finish()
}

fn validate_wait(req: &pb::WaitBackupRequest) -> Result<Option<Duration>, Error> {
    let mut v = Violations::default();
    v.uuid("backup_id", &req.backup_id);
    let timeout = match req.timeout {
        None => None,
        Some(timeout) if timeout.seconds < 0 || timeout.nanos < 0 => {
            v.add("timeout", Problem::OutOfRange, "must not be negative");
            None
        }
        Some(timeout) => match Duration::try_from(timeout) {
            Ok(timeout) if timeout <= MAX_WAIT => Some(timeout),
            Ok(_) => {
                v.add("timeout", Problem::OutOfRange, "must be at most 1 hour");
                None
            }
            Err(_) => {
                v.add("timeout", Problem::BadFormat, "is not a valid duration");
                None
            }
        },
    };
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

impl ResourceIds for pb::CreateBackupRequest {
    fn resource_ids(&self) -> String {
        describe([("resource_id", self.resource_id.as_str())])
    }
}

impl ResourceIds for pb::GetBackupRequest {
    fn resource_ids(&self) -> String {
        describe([("backup_id", self.backup_id.as_str())])
    }
}

impl ResourceIds for pb::WatchBackupRequest {
    fn resource_ids(&self) -> String {
        describe([("backup_id", self.backup_id.as_str())])
    }
}

impl ResourceIds for pb::WaitBackupRequest {
    fn resource_ids(&self) -> String {
        describe([("backup_id", self.backup_id.as_str())])
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
