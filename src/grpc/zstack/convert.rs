//! ZStack's wire models in the contract's shape: dates ("Nov 14, 2017
//! 10:20:57 PM", the management node's local time, read as UTC) as
//! Timestamps with the raw text kept, sizes as whole bytes.

use chrono::NaiveDateTime;

use crate::grpc::text;
use crate::proto::zstack::v1 as zs;
use crate::rest::auth::ZSTACK_DATE;
use crate::rest::zstack::{self as rest, ApiJob};

impl From<rest::VolumeBackup> for zs::VolumeBackup {
    fn from(backup: rest::VolumeBackup) -> Self {
        let size = backup.size_bytes();
        let create_date_raw = text(backup.create_date);
        let last_op_date_raw = text(backup.last_op_date);
        zs::VolumeBackup {
            uuid: text(backup.uuid),
            volume_uuid: text(backup.volume_uuid),
            name: text(backup.name),
            description: text(backup.description),
            r#type: text(backup.volume_type),
            state: text(backup.state),
            status: text(backup.status),
            size,
            metadata: text(backup.metadata),
            group_uuid: text(backup.group_uuid),
            create_date: zstack_time(&create_date_raw),
            create_date_raw,
            last_op_date: zstack_time(&last_op_date_raw),
            last_op_date_raw,
            backup_storage_refs: backup
                .backup_storage_refs
                .into_iter()
                .map(|r| zs::BackupStorageRef {
                    volume_backup_uuid: text(r.volume_backup_uuid),
                    backup_storage_uuid: text(r.backup_storage_uuid),
                    install_path: text(r.install_path),
                    status: text(r.status),
                    create_date_raw: text(r.create_date),
                    last_op_date_raw: text(r.last_op_date),
                })
                .collect(),
        }
    }
}

impl From<rest::ZStackError> for zs::ZStackError {
    fn from(error: rest::ZStackError) -> Self {
        zs::ZStackError {
            code: text(error.code),
            description: text(error.description),
            details: text(error.details),
            elaboration: text(error.elaboration),
            cause: error.cause.map(|cause| zs::ZStackCause {
                code: text(cause.code),
                description: text(cause.description),
                details: text(cause.details),
            }),
        }
    }
}

/// The contract's job for the state ZStack reported of API job `job_uuid`.
pub(crate) fn job(job_uuid: &str, state: ApiJob) -> zs::Job {
    let (state, inventories, error) = match state {
        ApiJob::Running => (zs::JobState::Running, Vec::new(), None),
        ApiJob::Succeeded(inventories) => (zs::JobState::Succeeded, inventories, None),
        ApiJob::Failed(error) => (zs::JobState::Failed, Vec::new(), Some(error.into())),
    };
    zs::Job {
        job_uuid: job_uuid.to_string(),
        state: state as i32,
        inventories: inventories.into_iter().map(Into::into).collect(),
        error,
    }
}

fn zstack_time(text: &str) -> Option<prost_types::Timestamp> {
    let at = NaiveDateTime::parse_from_str(text.trim(), ZSTACK_DATE).ok()?.and_utc();
    Some(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_sizes_and_states_convert() {
        let backup = zs::VolumeBackup::from(rest::VolumeBackup {
            size: Some(serde_json::json!(2.147483648E9)),
            create_date: Some("Nov 14, 2017 10:20:57 PM".into()),
            ..Default::default()
        });
        assert_eq!(backup.size, 2_147_483_648);
        assert_eq!(backup.create_date.map(|t| t.seconds), Some(1_510_698_057));
        assert_eq!(backup.create_date_raw, "Nov 14, 2017 10:20:57 PM");
        let failed = job(
            "j",
            ApiJob::Failed(rest::ZStackError {
                code: Some("SYS.1006".into()),
                ..Default::default()
            }),
        );
        assert_eq!(failed.state(), zs::JobState::Failed);
        assert_eq!(failed.error.unwrap().code, "SYS.1006");
    }
}
