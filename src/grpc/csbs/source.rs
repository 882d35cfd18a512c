//! CSBS backups (GET /v1/{project_id}/checkpoint_items/{id}) as a job hub
//! `JobSource`: a backup is watched until AVAILABLE or ERROR, and its state
//! is the contract's Backup, converted once per poll for every watcher.

use std::sync::Arc;
use std::time::Duration;

use crate::grpc::watched::{ProjectSource, Watched, project_job_source};
use crate::proto::csbs_pb::{self as pb, BackupStatus};
use crate::rest::csbs::CsbsApi;
use crate::rest::{RestError, Transport};

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

impl ProjectSource for CsbsBackupSource {
    const SERVICE: &'static str = "csbs";
    type State = pb::Backup;

    async fn read(&self, target: &Watched) -> Result<pb::Backup, RestError> {
        let ctx = target.poll_context(self.poll_deadline);
        let api = CsbsApi {
            transport: &self.transport,
            ctx: &ctx,
        };
        api.get_backup(target.id()).await.map(pb::Backup::from)
    }

    fn is_over(backup: &pb::Backup) -> bool {
        matches!(backup.status(), BackupStatus::Available | BackupStatus::Error)
    }
}

project_job_source!(CsbsBackupSource);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::Operation;
    use crate::rest::error::UpstreamFault;
    use crate::watch::{Failure, JobSource};

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
        let ctx = crate::rest::CallContext {
            project_id: "p".into(),
            caller_token: Some(crate::rest::Secret::new("MIIsecret")),
            ..crate::rest::CallContext::default()
        };
        let key = CsbsBackupSource::key(&Watched::new(&ctx, "b"));
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
