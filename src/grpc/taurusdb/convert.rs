//! TaurusDB's wire models in the contract's shape: statuses typed by their
//! documented spellings (the raw text kept beside), times as Timestamps.

use crate::grpc::{text, timestamp};
use crate::proto::taurusdb::v3 as tdb;
use crate::rest::taurusdb as rest;

impl From<rest::Backup> for tdb::Backup {
    fn from(backup: rest::Backup) -> Self {
        let status_raw = text(backup.status);
        let begin_time_raw = text(backup.begin_time);
        tdb::Backup {
            id: text(backup.id),
            name: text(backup.name),
            description: text(backup.description),
            begin_time: timestamp(Some(&begin_time_raw)),
            begin_time_raw,
            status: backup_status(&status_raw) as i32,
            status_raw,
            r#type: text(backup.backup_type),
            instance_id: text(backup.instance_id),
        }
    }
}

impl From<rest::Job> for tdb::Job {
    fn from(job: rest::Job) -> Self {
        let status_raw = text(job.status);
        let created_raw = text(job.created);
        let ended_raw = text(job.ended);
        let instance = job.instance.unwrap_or_default();
        tdb::Job {
            id: text(job.id),
            name: text(job.name),
            status: job_status(&status_raw) as i32,
            status_raw,
            created: timestamp(Some(&created_raw)),
            created_raw,
            ended: timestamp(Some(&ended_raw)),
            ended_raw,
            process: text(job.process),
            instance_id: text(instance.id),
            instance_name: text(instance.name),
            entities: job.entities.into_iter().collect(),
            fail_reason: text(job.fail_reason),
        }
    }
}

/// TaurusDB spells backup statuses in capitals.
fn backup_status(raw: &str) -> tdb::BackupStatus {
    match raw.to_ascii_uppercase().as_str() {
        "BUILDING" => tdb::BackupStatus::Building,
        "COMPLETED" => tdb::BackupStatus::Completed,
        "FAILED" => tdb::BackupStatus::Failed,
        "DELETING" => tdb::BackupStatus::Deleting,
        _ => tdb::BackupStatus::Unspecified,
    }
}

/// TaurusDB spells job statuses capitalised ("Running"); any case is read.
fn job_status(raw: &str) -> tdb::JobStatus {
    match raw.to_ascii_lowercase().as_str() {
        "running" => tdb::JobStatus::Running,
        "completed" => tdb::JobStatus::Completed,
        "failed" => tdb::JobStatus::Failed,
        _ => tdb::JobStatus::Unspecified,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_typed_and_kept_raw() {
        let job = tdb::Job::from(rest::Job {
            status: Some("Completed".into()),
            created: Some("2020-07-07T01:17:05+0800".into()),
            ..Default::default()
        });
        assert_eq!(job.status(), tdb::JobStatus::Completed);
        assert_eq!(job.status_raw, "Completed");
        assert_eq!(job.created.map(|t| t.seconds), Some(1_594_055_825));
        let unknown = tdb::Job::from(rest::Job {
            status: Some("Paused".into()),
            ..Default::default()
        });
        assert_eq!(unknown.status(), tdb::JobStatus::Unspecified);
        assert_eq!(unknown.status_raw, "Paused");
        let backup = tdb::Backup::from(rest::Backup {
            status: Some("BUILDING".into()),
            ..Default::default()
        });
        assert_eq!(backup.status(), tdb::BackupStatus::Building);
    }
}
