//! Conversions of the job area into the typed contract: VBS jobs (sub-jobs
//! included), the job hub's heartbeats, and a watched job's failure as data.

use tonic::Status;
use tonic_types::StatusExt;

use std::collections::HashMap;

use crate::grpc::operations::operation_name;
use crate::grpc::wire::{WireName, wire_enum};
use crate::grpc::{text, timestamp};
use crate::proto::pb::{self, JobStatus};
use crate::rest::jobs as rest;
use crate::watch::{Coordination, Heartbeat};

wire_enum!(JobStatus {
    Init <=> "INIT",
    Running <=> "RUNNING",
    Success <=> "SUCCESS",
    Fail <=> "FAIL",
});

/// A VBS job of `project_id` in the contract: typed status and result, its
/// operation name, and its sub-jobs likewise.
pub(crate) fn job_of_project(project_id: &str, job: rest::Job) -> pb::Job {
    let status_raw = text(job.status);
    let job_id = text(job.job_id);
    let job_type = text(job.job_type);
    let entities: HashMap<String, String> = job.entities.into_iter().collect();
    pb::Job {
        operation_name: if job_id.is_empty() {
            String::new()
        } else {
            operation_name(project_id, &job_id)
        },
        result: typed_result(&job_type, &entities),
        job_id,
        job_type,
        status: JobStatus::from_wire(&status_raw) as i32,
        status_raw,
        entities,
        begin_time: timestamp(job.begin_time.as_deref()),
        end_time: timestamp(job.end_time.as_deref()),
        error_code: text(job.error_code),
        fail_reason: text(job.fail_reason),
        sub_jobs: job
            .sub_jobs
            .into_iter()
            .map(|sub| job_of_project(project_id, sub))
            .collect(),
    }
}

/// The typed view of a job's `entities`, for the job types VBS documents.
fn typed_result(job_type: &str, entities: &HashMap<String, String>) -> Option<pb::job::Result> {
    let entity = |key: &str| entities.get(key).cloned().unwrap_or_default();
    match job_type {
        "bksCreateBackup" => Some(pb::job::Result::Backup(pb::BackupJobResult {
            backup_id: entity("backup_id"),
            volume_id: entity("volume_id"),
            snapshot_id: entity("snapshot_id"),
            volume_name: entity("bks_create_volume_name"),
        })),
        "bksRestoreBackup" => Some(pb::job::Result::Restore(pb::RestoreJobResult {
            backup_id: entity("backup_id"),
            target_volume_id: entity("volume_id"),
        })),
        "bksDeleteBackup" => Some(pb::job::Result::Delete(pb::DeleteJobResult {
            backup_id: entity("backup_id"),
        })),
        _ => None,
    }
}

impl From<Heartbeat> for pb::Heartbeat {
    fn from(beat: Heartbeat) -> Self {
        pb::Heartbeat {
            last_observed_at: beat.last_observed_at.map(Into::into),
            staleness: beat.staleness.and_then(|s| prost_types::Duration::try_from(s).ok()),
            consecutive_failures: beat.consecutive_failures,
            last_error: beat.last_error.unwrap_or_default(),
            coordination: pb::Coordination::from(beat.coordination) as i32,
        }
    }
}

impl From<Coordination> for pb::Coordination {
    fn from(coordination: Coordination) -> Self {
        match coordination {
            Coordination::Alone => pb::Coordination::Alone,
            Coordination::Shared => pb::Coordination::Shared,
            Coordination::LocalFallback => pb::Coordination::LocalFallback,
        }
    }
}

/// The status a WatchJob of this job alone would have ended with, as data.
impl From<Status> for pb::JobError {
    fn from(status: Status) -> Self {
        let reason = status
            .get_error_details()
            .error_info()
            .map(|info| info.reason.clone())
            .unwrap_or_default();
        pb::JobError {
            code: status.code() as i32,
            reason,
            message: status.message().to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::wire::assert_round_trips;

    #[test]
    fn job_statuses_round_trip_through_their_wire_names() {
        assert_round_trips::<JobStatus>();
    }

    #[test]
    fn unknown_statuses_keep_their_raw_text_in_sub_jobs_too() {
        let job: rest::Job =
            serde_json::from_str(r#"{"status": "PAUSED", "sub_jobs": [{"status": "SUCCESS"}]}"#).unwrap();
        let job = job_of_project("p", job);
        assert_eq!(
            (job.status(), job.status_raw.as_str()),
            (JobStatus::Unspecified, "PAUSED")
        );
        assert_eq!(job.sub_jobs[0].status(), JobStatus::Success);
    }
}
