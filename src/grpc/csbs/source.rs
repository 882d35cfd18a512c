//! CSBS backups (GET /v1/{project_id}/checkpoint_items/{id}) as a job hub
//! `JobSource`: a backup is watched until AVAILABLE or ERROR, and its state
//! is the contract's Backup, converted once per poll for every watcher.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use prost::Message;

use crate::grpc::follow::describe_failure;
use crate::grpc::job_source::{VbsJobSource, caller_token_hash};
use crate::proto::csbs_pb::{self as pb, BackupStatus};
use crate::rest::csbs::CsbsApi;
use crate::rest::{CallContext, RestError, Transport};
use crate::watch::{Failure, JobSource};

/// Polls CSBS backups for the hub, through the CSBS transport.
#[derive(Debug, Clone)]
pub(crate) struct CsbsBackupSource {
    transport: Arc<Transport>,
    poll_deadline: Duration,
}

impl CsbsBackupSource {
    /// A source that polls through `transport`, each poll (its retries
    /// included) bounded by `poll_deadline`, as VBS job polls are.
    pub(crate) fn new(transport: Arc<Transport>, poll_deadline: Duration) -> CsbsBackupSource {
        CsbsBackupSource {
            transport,
            poll_deadline,
        }
    }
}

/// One backup to watch, with the credentials to poll it.
#[derive(Debug)]
pub(crate) struct WatchedBackup {
    ctx: CallContext,
    backup_id: String,
}

impl WatchedBackup {
    /// The backup `backup_id` as the caller of `ctx` sees it; the poller
    /// outlives the call, so the call's deadline does not bound its polls.
    pub(crate) fn new(ctx: &CallContext, backup_id: &str) -> WatchedBackup {
        WatchedBackup {
            ctx: CallContext {
                project_id: ctx.project_id.clone(),
                deadline: None,
                caller_token: ctx.caller_token.clone(),
                send_by: None,
                caller: None,
            },
            backup_id: backup_id.to_string(),
        }
    }
}

/// One backup as seen with one set of credentials (a pass-through token is
/// kept only as its hash).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WatchedBackupKey {
    project_id: String,
    backup_id: String,
    token: Option<[u8; 32]>,
}

impl fmt::Display for WatchedBackupKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "csbs/{}", self.backup_id)
    }
}

impl JobSource for CsbsBackupSource {
    type Target = WatchedBackup;
    type Key = WatchedBackupKey;
    type State = pb::Backup;
    type Error = RestError;

    fn key(target: &WatchedBackup) -> WatchedBackupKey {
        let token = caller_token_hash(&target.ctx);
        WatchedBackupKey {
            project_id: target.ctx.project_id.clone(),
            backup_id: target.backup_id.clone(),
            token,
        }
    }

    /// `csbs:project:backup:token hash`: the prefix keeps CSBS backups apart
    /// from VBS jobs in a fleet's shared keys.
    fn shared_key(key: &WatchedBackupKey) -> String {
        let token = key.token.map_or_else(|| "-".to_string(), hex::encode);
        format!("csbs:{}:{}:{token}", key.project_id, key.backup_id)
    }

    fn group(key: &WatchedBackupKey) -> &str {
        &key.project_id
    }

    async fn poll(&self, target: &WatchedBackup) -> Result<pb::Backup, RestError> {
        let ctx = CallContext {
            deadline: Some(Instant::now() + self.poll_deadline),
            ..target.ctx.clone()
        };
        let api = CsbsApi {
            transport: &self.transport,
            ctx: &ctx,
        };
        api.get_backup(&target.backup_id).await.map(pb::Backup::from)
    }

    fn is_terminal(backup: &pb::Backup) -> bool {
        matches!(backup.status(), BackupStatus::Available | BackupStatus::Error)
    }

    fn encode(backup: &pb::Backup) -> Vec<u8> {
        backup.encode_to_vec()
    }

    fn decode(bytes: &[u8]) -> Option<pb::Backup> {
        pb::Backup::decode(bytes).ok()
    }

    /// Failures mean the same for a CSBS poll as for a VBS one.
    fn classify(error: &RestError) -> Failure {
        VbsJobSource::classify(error)
    }

    /// Never the upstream message, which may echo request data.
    fn describe(error: &RestError) -> String {
        describe_failure(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::Operation;
    use crate::rest::error::UpstreamFault;

    #[test]
    fn only_available_and_error_end_a_backup() {
        let backup = |status: BackupStatus| pb::Backup {
            status: status as i32,
            ..Default::default()
        };
        assert!(CsbsBackupSource::is_terminal(&backup(BackupStatus::Available)));
        assert!(CsbsBackupSource::is_terminal(&backup(BackupStatus::Error)));
        for open in [
            BackupStatus::Unspecified,
            BackupStatus::WaitingProtect,
            BackupStatus::Protecting,
        ] {
            assert!(!CsbsBackupSource::is_terminal(&backup(open)), "{open:?}");
        }
    }

    #[test]
    fn keys_hold_no_token_and_stay_apart_from_vbs_jobs() {
        let ctx = CallContext {
            project_id: "p".into(),
            caller_token: Some(crate::rest::Secret::new("MIIsecret")),
            ..CallContext::default()
        };
        let key = CsbsBackupSource::key(&WatchedBackup::new(&ctx, "b"));
        let shared = CsbsBackupSource::shared_key(&key);
        assert!(shared.starts_with("csbs:p:b:") && !shared.contains("MIIsecret"));
        assert!(!format!("{key:?}").contains("MIIsecret"));
    }

    #[test]
    fn failures_name_csbs_and_leave_out_its_messages() {
        let error = RestError::Status {
            operation: Operation::CsbsGetBackup,
            status: 503,
            fault: UpstreamFault {
                code: Some("CSBS.9998".into()),
                message: Some("token MIIsecret".into()),
            },
            retry_after: None,
        };
        assert_eq!(CsbsBackupSource::describe(&error), "HTTP 503 (CSBS.9998)");
        assert_eq!(
            CsbsBackupSource::classify(&error),
            Failure::Transient { retry_after: None }
        );
        let deadline = RestError::DeadlineExceeded {
            operation: Operation::CsbsGetBackup,
        };
        assert_eq!(CsbsBackupSource::describe(&deadline), "CSBS did not answer in time");
    }

    #[test]
    fn a_backup_reads_back_as_it_was_shared() {
        let backup = pb::Backup {
            id: "b".into(),
            status: BackupStatus::Protecting as i32,
            ..Default::default()
        };
        assert_eq!(
            CsbsBackupSource::decode(&CsbsBackupSource::encode(&backup)),
            Some(backup)
        );
    }
}
