//! Backups: the model and the service metadata VBS reports, and the create,
//! native create, restore, delete and get operations of both backup APIs,
//! with their field checks. Listing, with its filters and sorting, is list.rs.

pub(crate) mod list;
pub(crate) mod store;

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::jobs::{Job, JobKind, new_job_id};
use super::{Project, Rejection, Resource, TagInput, World, check, checked_tags, code, new_id};
use crate::VolumeSpec;
use vbs_rules::{self as rules, Problem};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BackupStatus {
    Creating,
    Available,
    Restoring,
    Deleting,
    Error,
}

impl BackupStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            BackupStatus::Creating => "creating",
            BackupStatus::Available => "available",
            BackupStatus::Restoring => "restoring",
            BackupStatus::Deleting => "deleting",
            BackupStatus::Error => "error",
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Backup {
    pub(crate) id: String,
    pub(crate) name: Option<String>,
    /// The text as VBS stores it (for /cloudbackups a JSON text with DESC and INC).
    pub(crate) description: Option<String>,
    pub(crate) volume_id: String,
    pub(crate) snapshot_id: String,
    pub(crate) size_gb: u64,
    pub(crate) status: BackupStatus,
    pub(crate) fail_reason: Option<String>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) updated_at: DateTime<Utc>,
    pub(crate) incremental: bool,
    /// The backup image id on the backup system (`backupurl`).
    pub(crate) image_id: String,
    seq: u64,
}

impl Backup {
    /// `service_metadata` as VBS sends it: JSON text padded with spaces.
    pub(crate) fn service_metadata(&self) -> String {
        let done = self.status != BackupStatus::Creating;
        format!(
            " {{\"bootable\": false, \"backupurl\": \"{}\", \"BackupSize\": {}, \"progress\": \"{}\", \"snap_id\": \"{}\", \"Type\": {}}} ",
            self.image_id,
            if done { self.size_gb * 1024 } else { 0 },
            if done { "100" } else { "0" },
            self.snapshot_id.replace('-', ""),
            u8::from(self.incremental),
        )
    }
}

/// The description text of a /cloudbackups backup, spaced like VBS's Python.
fn vbs_description(desc: &str, incremental: bool) -> String {
    let desc = serde_json::Value::String(desc.to_owned());
    format!("{{\"DESC\": {desc}, \"INC\": {}}}", u8::from(incremental))
}

// ------------------------------------------------------------ request input

/// The `backup` object of POST /cloudbackups.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CloudBackupInput {
    pub(crate) volume_id: Option<String>,
    pub(crate) snapshot_id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) tags: Option<Vec<TagInput>>,
    /// Values are strings on the wire; a JSON boolean is taken too.
    pub(crate) extend_param: Option<HashMap<String, serde_json::Value>>,
}

/// The `backup` object of the native POST /backups. `container` and
/// `incremental` are skipped, as the reference says, but must have their
/// types (a string `incremental` is a bad body); `force` lets an attached
/// (in-use) disk be backed up.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NativeBackupInput {
    pub(crate) volume_id: Option<String>,
    pub(crate) snapshot_id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
    #[allow(dead_code)] // Typed so that a wrong type is refused; otherwise skipped.
    pub(crate) container: Option<String>,
    #[allow(dead_code)] // Typed so that a wrong type is refused; otherwise skipped.
    pub(crate) incremental: Option<bool>,
    pub(crate) force: Option<bool>,
}

/// The snapshot every simulated disk has: the id of the reference's own
/// native-create example, so that example works as written. The snapshots
/// of the backups the simulator made exist too.
pub(crate) const REFERENCE_SNAPSHOT_ID: &str = "2bb856e1-b3d8-4432-a858-09e4ce939389";

// ----------------------------------------------------------------- results

/// A restore that was accepted.
#[derive(Clone, Debug)]
pub(crate) struct RestoreStarted {
    pub(crate) job_id: String,
    pub(crate) backup_id: String,
    pub(crate) volume_id: String,
    pub(crate) volume_name: String,
}

// --------------------------------------------------------------- field rules

fn backup_name_code(problem: Problem) -> &'static str {
    match problem {
        Problem::Missing => code::NAME_MISSING,
        Problem::TooLong => code::NAME_TOO_LONG,
        Problem::ReservedPrefix => code::NAME_RESERVED,
        _ => code::NAME_BAD_CHARACTER,
    }
}

fn volume_id_code(problem: Problem) -> &'static str {
    match problem {
        Problem::Missing => code::VOLUME_ID_MISSING,
        _ => code::VOLUME_ID_NOT_UUID,
    }
}

fn checked_volume_id(volume_id: Option<&str>) -> Result<String, Rejection> {
    let volume_id = volume_id.unwrap_or_default();
    check(rules::uuid(volume_id), "volume_id", volume_id_code)?;
    Ok(volume_id.to_owned())
}

fn checked_backup_name(name: Option<&str>) -> Result<String, Rejection> {
    let name = name.unwrap_or_default();
    check(rules::backup_name(name), "name", backup_name_code)?;
    Ok(name.to_owned())
}

fn checked_description(description: Option<&str>, max: usize) -> Result<(), Rejection> {
    match description {
        None => Ok(()),
        Some(text) => check(rules::description(text, max), "description", |_| {
            code::DESCRIPTION_INVALID
        }),
    }
}

/// VBS backs up disks that are available or attached, nothing in between.
pub(super) fn can_back_up(volume: &VolumeSpec) -> bool {
    matches!(volume.status.as_str(), "available" | "in-use")
}

/// What a backup about to be created needs.
pub(super) struct NewBackup {
    pub(super) name: Option<String>,
    pub(super) description: Option<String>,
    /// Whether the description is stored as the JSON text /cloudbackups keeps.
    pub(super) vbs_description: bool,
    pub(super) volume_id: String,
    pub(super) snapshot_id: Option<String>,
    /// Asked for a full backup even when an incremental one could be made.
    pub(super) full: bool,
    /// Whether the job is hidden from the jobs API (native API backups).
    pub(super) internal: bool,
}

// --------------------------------------------------------------- operations

impl Project {
    fn backup(&self, id: &str) -> Option<&Backup> {
        self.backups.get(id)
    }

    fn has_available_backup_of(&self, volume_id: &str) -> bool {
        self.backups.has_available_of(volume_id)
    }

    /// Whether a later incremental backup of the same volume builds on this one.
    pub(crate) fn has_dependent_backups(&self, backup: &Backup) -> bool {
        self.backups.has_incremental_after(&backup.volume_id, backup.seq)
    }
}

impl World {
    /// A backup of the volume still being made, in any project (volumes are
    /// shared, and so is the snapshot machinery behind them).
    pub(super) fn is_backing_up(&self, volume_id: &str) -> bool {
        self.projects
            .values()
            .any(|project| project.backups.is_creating_of(volume_id))
    }

    fn check_volume_can_be_backed_up(&self, volume_id: &str) -> Result<(), Rejection> {
        let volume = self
            .volume(volume_id)
            .ok_or_else(|| Rejection::not_found(code::VOLUME_NOT_FOUND, Resource::Volume, volume_id))?;
        if !can_back_up(volume) {
            return Err(Rejection::invalid_because(
                code::VOLUME_BAD_STATUS,
                format!("volume {volume_id} is {}", volume.status),
            ));
        }
        if self.is_backing_up(volume_id) {
            return Err(Rejection::invalid_because(
                code::VOLUME_BACKUP_UNFINISHED,
                format!("volume {volume_id} has a backup still being created"),
            ));
        }
        Ok(())
    }

    /// Whether `snapshot_id` is a snapshot of the volume: the reference's
    /// example one, or one a backup of the volume was made from.
    fn has_snapshot(&self, volume_id: &str, snapshot_id: &str) -> bool {
        snapshot_id == REFERENCE_SNAPSHOT_ID
            || self
                .projects
                .values()
                .any(|p| p.backups.has_snapshot_of(volume_id, snapshot_id))
    }

    /// POST /cloudbackups: checks the request and starts a create job.
    pub(crate) fn create_cloud_backup(&mut self, project: &str, input: CloudBackupInput) -> Result<String, Rejection> {
        let volume_id = checked_volume_id(input.volume_id.as_deref())?;
        let name = checked_backup_name(input.name.as_deref())?;
        checked_description(input.description.as_deref(), rules::CLOUD_BACKUP_DESCRIPTION_MAX)?;
        // VBS keeps backup tags in its tag service, not on the backup itself.
        checked_tags(input.tags, code::TAG_INVALID, code::TOO_MANY_TAGS)?;
        self.check_volume_can_be_backed_up(&volume_id)?;
        let full = input
            .extend_param
            .as_ref()
            .and_then(|params| params.get("FullBackup"))
            .is_some_and(|value| value == "true" || value == &serde_json::Value::Bool(true));
        let (_, job_id) = self.start_backup(
            project,
            NewBackup {
                name: Some(name),
                description: input.description,
                vbs_description: true,
                volume_id,
                snapshot_id: input.snapshot_id,
                full,
                internal: false,
            },
        );
        Ok(job_id)
    }

    /// The native POST /backups: the same job, but the caller gets the backup.
    pub(crate) fn create_native_backup(
        &mut self,
        project: &str,
        input: NativeBackupInput,
    ) -> Result<Backup, Rejection> {
        let volume_id = checked_volume_id(input.volume_id.as_deref())?;
        let snapshot_id = input
            .snapshot_id
            .filter(|id| !id.is_empty())
            .ok_or_else(|| Rejection::invalid_because(code::BAD_BODY, "snapshot_id is required"))?;
        let name = match input.name {
            Some(name) => Some(checked_backup_name(Some(&name))?),
            None => None,
        };
        checked_description(input.description.as_deref(), rules::NATIVE_BACKUP_DESCRIPTION_MAX)?;
        self.check_volume_can_be_backed_up(&volume_id)?;
        if !self.has_snapshot(&volume_id, &snapshot_id) {
            return Err(Rejection::invalid_because(
                code::SNAPSHOT_NOT_FOUND,
                format!("volume {volume_id} has no snapshot {snapshot_id}"),
            ));
        }
        let attached = self.volume(&volume_id).is_some_and(|v| v.status == "in-use");
        if attached && input.force != Some(true) {
            return Err(Rejection::invalid_because(
                code::VOLUME_BAD_STATUS,
                format!("volume {volume_id} is in-use; set force to back up an attached disk"),
            ));
        }
        let (backup, _) = self.start_backup(
            project,
            NewBackup {
                name,
                description: input.description,
                vbs_description: false,
                volume_id,
                snapshot_id: Some(snapshot_id),
                full: false,
                internal: true,
            },
        );
        Ok(backup)
    }

    /// Adds a creating backup and its job; returns the backup and the job id.
    /// The volume must exist.
    pub(super) fn start_backup(&mut self, project_id: &str, new: NewBackup) -> (Backup, String) {
        let now = self.now();
        let size_gb = self.volume(&new.volume_id).map_or(0, |v| v.size_gb);
        let failure = self.faults.take_job_failure();
        let (backup_seq, job_seq) = (self.next_seq(), self.next_seq());
        let timing = self.timing;
        let project = self.project_mut(project_id);
        let incremental = !new.full && project.has_available_backup_of(&new.volume_id);
        let description = if new.vbs_description {
            Some(vbs_description(
                new.description.as_deref().unwrap_or_default(),
                incremental,
            ))
        } else {
            new.description
        };
        let backup = Backup {
            id: new_id(),
            name: new.name,
            description,
            volume_id: new.volume_id,
            snapshot_id: new.snapshot_id.unwrap_or_else(new_id),
            size_gb,
            status: BackupStatus::Creating,
            fail_reason: None,
            created_at: now,
            updated_at: now,
            incremental,
            image_id: new_id(),
            seq: backup_seq,
        };
        let entities = [
            ("backup_id", backup.id.as_str()),
            ("volume_id", backup.volume_id.as_str()),
            ("snapshot_id", backup.snapshot_id.as_str()),
            ("bks_create_volume_name", backup.name.as_deref().unwrap_or_default()),
        ];
        let job = Job {
            id: new_job_id(),
            kind: JobKind::Create,
            backup_id: backup.id.clone(),
            volume_id: backup.volume_id.clone(),
            entities: entities.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            begin: now,
            timing,
            failure,
            settled: false,
            internal: new.internal,
            seq: job_seq,
        };
        let started = (backup.clone(), job.id.clone());
        project.backups.push(backup);
        self.schedule(project_id, job);
        started
    }

    /// Restores a backup onto a volume (both APIs); `internal` hides the job.
    pub(crate) fn restore_backup(
        &mut self,
        project_id: &str,
        backup_id: &str,
        volume_id: Option<&str>,
        internal: bool,
    ) -> Result<RestoreStarted, Rejection> {
        let volume_id = volume_id.unwrap_or_default();
        check(rules::uuid(volume_id), "volume_id", |_| code::RESTORE_VOLUME_ID_MISSING)?;
        let backup = self
            .project(project_id)
            .and_then(|p| p.backup(backup_id))
            .ok_or_else(|| Rejection::not_found(code::RESTORE_NOT_FOUND, Resource::Backup, backup_id))?;
        let volume = self
            .volume(volume_id)
            .ok_or_else(|| Rejection::not_found(code::RESTORE_NOT_FOUND, Resource::Volume, volume_id))?;
        if backup.status != BackupStatus::Available {
            return Err(Rejection::invalid_because(
                code::BACKUP_NOT_AVAILABLE,
                format!("backup {backup_id} is {}", backup.status.as_str()),
            ));
        }
        if volume.status != "available" {
            return Err(Rejection::invalid_because(
                code::RESTORE_TARGET_NOT_AVAILABLE,
                format!("volume {volume_id} is {}", volume.status),
            ));
        }
        if self.is_backing_up(volume_id) {
            return Err(Rejection::invalid(code::RESTORE_TARGET_BACKING_UP));
        }
        if volume.size_gb < backup.size_gb {
            return Err(Rejection::invalid_because(
                code::RESTORE_TARGET_TOO_SMALL,
                format!(
                    "volume {volume_id} has {} GB, the backup {} GB",
                    volume.size_gb, backup.size_gb
                ),
            ));
        }
        let volume_name = volume.name.clone();
        let now = self.now();
        if let Some(volume) = self.volumes.iter_mut().find(|v| v.id == volume_id) {
            volume.status = "restoring-backup".to_owned();
        }
        self.update_backup(project_id, backup_id, |backup| {
            backup.status = BackupStatus::Restoring;
            backup.updated_at = now;
        });
        let job_id = self.add_job(project_id, JobKind::Restore, backup_id, volume_id, internal);
        Ok(RestoreStarted {
            job_id,
            backup_id: backup_id.to_owned(),
            volume_id: volume_id.to_owned(),
            volume_name,
        })
    }

    fn update_backup(&mut self, project_id: &str, backup_id: &str, change: impl FnOnce(&mut Backup)) {
        if let Some(project) = self.projects.get_mut(project_id) {
            project.backups.update(backup_id, change);
        }
    }

    /// Deletes a backup that is available or failed (both APIs).
    pub(crate) fn delete_backup(
        &mut self,
        project_id: &str,
        backup_id: &str,
        internal: bool,
    ) -> Result<String, Rejection> {
        let backup = self
            .project(project_id)
            .and_then(|p| p.backup(backup_id))
            .ok_or_else(|| Rejection::not_found(code::RESTORE_NOT_FOUND, Resource::Backup, backup_id))?;
        if !matches!(backup.status, BackupStatus::Available | BackupStatus::Error) {
            return Err(Rejection::invalid_because(
                code::BACKUP_NOT_AVAILABLE,
                format!(
                    "backup {backup_id} is {}; only available or error backups can be deleted",
                    backup.status.as_str()
                ),
            ));
        }
        let now = self.now();
        self.update_backup(project_id, backup_id, |backup| {
            backup.status = BackupStatus::Deleting;
            backup.updated_at = now;
        });
        Ok(self.add_job(project_id, JobKind::Delete, backup_id, "", internal))
    }

    pub(crate) fn backup(&self, project_id: &str, backup_id: &str) -> Option<&Backup> {
        self.project(project_id)?.backup(backup_id)
    }
}

/// What a job's end does to its backup (and a restore's to its volume).
pub(super) fn apply_job_end(project: &mut Project, volumes: &mut [VolumeSpec], job: &Job) {
    let ended = job.end_time();
    let failure = job.failure.as_ref();
    if job.kind == JobKind::Delete && failure.is_none() {
        project.backups.remove(&job.backup_id);
        return;
    }
    if job.kind == JobKind::Restore
        && let Some(volume) = volumes.iter_mut().find(|v| v.id == job.volume_id)
    {
        volume.status = if failure.is_some() {
            "error_restoring".to_owned()
        } else {
            "available".to_owned()
        };
    }
    project.backups.update(&job.backup_id, |backup| {
        backup.updated_at = ended;
        backup.status = match (job.kind, failure) {
            (JobKind::Restore, _) => BackupStatus::Available,
            (_, Some(failure)) => {
                backup.fail_reason = Some(failure.fail_reason.clone());
                BackupStatus::Error
            }
            (_, None) => BackupStatus::Available,
        };
    });
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::state::testing::{code_of, world};

    const VOLUME: &str = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a01";

    fn cloud_backup(name: &str) -> CloudBackupInput {
        CloudBackupInput {
            volume_id: Some(VOLUME.into()),
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn descriptions_are_spaced_like_vbs() {
        assert_eq!(vbs_description("nightly", false), r#"{"DESC": "nightly", "INC": 0}"#);
        assert_eq!(vbs_description("a\"b", true), r#"{"DESC": "a\"b", "INC": 1}"#);
    }

    #[test]
    fn a_second_backup_of_a_volume_is_refused_while_the_first_is_creating() {
        let mut world = world();
        world.create_cloud_backup("p", cloud_backup("one")).expect("first");
        let second = world.create_cloud_backup("p", cloud_backup("two")).expect_err("busy");
        assert_eq!(code_of(second), code::VOLUME_BACKUP_UNFINISHED);
    }

    #[test]
    fn backups_after_the_first_are_incremental_unless_full_is_asked() {
        let mut world = world();
        world.create_cloud_backup("p", cloud_backup("one")).expect("first");
        world.advance(Duration::from_secs(10));
        world.settle();
        world.create_cloud_backup("p", cloud_backup("two")).expect("second");
        world.advance(Duration::from_secs(10));
        world.settle();
        let mut full = cloud_backup("three");
        full.extend_param = Some(HashMap::from([("FullBackup".to_owned(), "true".into())]));
        world.create_cloud_backup("p", full).expect("third");
        let incremental: Vec<bool> = world.projects["p"].backups.iter().map(|b| b.incremental).collect();
        assert_eq!(incremental, [false, true, false]);
        let first = &world.projects["p"].backups[0];
        assert!(world.projects["p"].has_dependent_backups(first));
    }
}
