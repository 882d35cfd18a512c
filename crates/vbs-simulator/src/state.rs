//! The simulator's model (volumes shared by all projects; backups, policies,
//! tasks and jobs per project) and its operations: plain functions of the
//! world that return typed results, or a Rejection carrying the VBS error code.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt::Display;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use super::clock::Clock;
use super::faults::Faults;
use super::jobs::{Job, JobKind, JobStatus};
use super::{JobTiming, SimulatorConfig, VolumeSpec};
use vbs_rules::{self as rules, Problem};

/// VBS error codes the simulator answers with (reference section 6.2).
pub(crate) mod code {
    pub const BAD_BODY: &str = "VolumeBackup.0002";
    pub const NAME_TOO_LONG: &str = "VolumeBackup.0003";
    pub const NAME_BAD_CHARACTER: &str = "VolumeBackup.0004";
    pub const NAME_RESERVED: &str = "VolumeBackup.0005";
    pub const DESCRIPTION_INVALID: &str = "VolumeBackup.0006";
    pub const NAME_MISSING: &str = "VolumeBackup.0007";
    pub const VOLUME_ID_MISSING: &str = "VolumeBackup.0010";
    pub const VOLUME_ID_NOT_UUID: &str = "VolumeBackup.0011";
    pub const VOLUME_BAD_STATUS: &str = "VolumeBackup.0012";
    pub const VOLUME_BACKUP_UNFINISHED: &str = "VolumeBackup.0013";
    pub const VOLUME_NOT_FOUND: &str = "VolumeBackup.0021";
    pub const TAG_INVALID: &str = "VolumeBackup.0049";
    pub const BACKUP_NOT_AVAILABLE: &str = "VolumeBackup.0089";
    pub const RESTORE_NOT_FOUND: &str = "VolumeBackup.0111";
    pub const BACKUP_ID_NOT_UUID: &str = "VolumeBackup.0204";
    pub const RESTORE_TARGET_NOT_AVAILABLE: &str = "VolumeBackup.0205";
    pub const RESTORE_TARGET_BACKING_UP: &str = "VolumeBackup.0206";
    pub const RESTORE_VOLUME_ID_MISSING: &str = "VolumeBackup.0208";
    pub const RESTORE_TARGET_TOO_SMALL: &str = "VolumeBackup.0209";
    pub const JOB_NOT_FOUND: &str = "common.0011";
    pub const POLICY_BODY_EMPTY: &str = "AutoBackup.0000";
    pub const POLICY_EMPTY_STRUCTURE: &str = "AutoBackup.0001";
    pub const POLICY_ID_EMPTY: &str = "AutoBackup.0006";
    pub const POLICY_BAD_BODY: &str = "AutoBackup.0008";
    pub const POLICY_NAME_RESERVED: &str = "AutoBackup.0100";
    pub const POLICY_NAME_LENGTH: &str = "AutoBackup.0101";
    pub const POLICY_NAME_INVALID: &str = "AutoBackup.0102";
    pub const START_TIME_INVALID: &str = "AutoBackup.0103";
    pub const POLICY_STATUS_INVALID: &str = "AutoBackup.0104";
    pub const REMAIN_FIRST_INVALID: &str = "AutoBackup.0105";
    pub const FREQUENCY_INVALID: &str = "AutoBackup.0106";
    pub const RETENTION_NUM_INVALID: &str = "AutoBackup.0107";
    pub const RETENTION_DAY_INVALID: &str = "AutoBackup.0108";
    pub const WEEK_FREQUENCY_INVALID: &str = "AutoBackup.0109";
    pub const TOO_MANY_POLICIES: &str = "AutoBackup.0203";
    pub const POLICY_NOT_FOUND: &str = "AutoBackup.0205";
    pub const BIND_VOLUME_BAD_STATUS: &str = "AutoBackup.0206";
    pub const RESOURCES_EMPTY: &str = "AutoBackup.0207";
    pub const RESOURCE_NOT_FOUND: &str = "AutoBackup.0208";
    pub const RESOURCE_ID_EMPTY: &str = "AutoBackup.0209";
    pub const RESOURCE_TYPE_INVALID: &str = "AutoBackup.0211";
    pub const POLICY_TAG_INVALID: &str = "AutoBackup.0221";
    pub const POLICY_RUNNING: &str = "AutoBackup.0225";
    pub const RESOURCE_ILLEGAL: &str = "AutoBackup.1400";
}

/// The "Error Message" column of the reference's table, by code.
pub(crate) fn table_message(error_code: &str) -> &'static str {
    match error_code {
        code::BAD_BODY => "api request parameter instance null",
        code::NAME_TOO_LONG => "api request parameter name over length",
        code::NAME_BAD_CHARACTER => "api request parameter name invalid character",
        code::NAME_RESERVED => "api request parameter name invalid prefix",
        code::DESCRIPTION_INVALID => "api request parameter description is invalid",
        code::NAME_MISSING => "api request parameter name is null",
        code::VOLUME_ID_MISSING => "api request parameter volume_id null",
        code::VOLUME_ID_NOT_UUID => "api request parameter volume_id invalid UUID pattern",
        code::VOLUME_BAD_STATUS => "volume status is not available or in-use",
        code::VOLUME_BACKUP_UNFINISHED => "volume's last backup progress is not finished",
        code::VOLUME_NOT_FOUND => "volume not exists",
        code::TAG_INVALID => "api request tag parameter is invalid",
        code::BACKUP_NOT_AVAILABLE => "backup status is not available",
        code::RESTORE_NOT_FOUND => "the volume info or backup detail is not exist",
        code::BACKUP_ID_NOT_UUID => "api request parameter backup_id invalid UUID pattern",
        code::RESTORE_TARGET_NOT_AVAILABLE => "volume for restore state is not available",
        code::RESTORE_TARGET_BACKING_UP => "volume for restore is creating backup",
        code::RESTORE_VOLUME_ID_MISSING => "volumeID in body is null or empty",
        code::RESTORE_TARGET_TOO_SMALL => "volume size is less than backup size",
        code::JOB_NOT_FOUND => "query job fail",
        code::POLICY_BODY_EMPTY => "request body is empty",
        code::POLICY_EMPTY_STRUCTURE => "request body exist empty structure",
        code::POLICY_ID_EMPTY => "request policy id is empty",
        code::POLICY_BAD_BODY => "convert request to JSON object failed",
        code::POLICY_NAME_RESERVED => "normal tenant has no right to operator default policy",
        code::POLICY_NAME_LENGTH => "backup policy name length is illegal",
        code::POLICY_NAME_INVALID => "backup policy name is invalid",
        code::START_TIME_INVALID => "schedule policy start time format error",
        code::POLICY_STATUS_INVALID => "schedule policy status is illegal",
        code::REMAIN_FIRST_INVALID => "schedule policy remain firstbackup of cur month is illegal",
        code::FREQUENCY_INVALID => "schedule policy frequency is out of range",
        code::RETENTION_NUM_INVALID => "schedule policy retention num is out of range",
        code::RETENTION_DAY_INVALID => "schedule policy retention day is out of range",
        code::WEEK_FREQUENCY_INVALID => {
            "schedule policy week frequency is illegal, must in (SUN, MON, TUE, WED, THU, FRI, SAT)"
        }
        code::TOO_MANY_POLICIES => "backup policy num over limit",
        code::POLICY_NOT_FOUND => "policyId is not exist",
        code::BIND_VOLUME_BAD_STATUS => "volume to bind is in bad status",
        code::RESOURCES_EMPTY => "resource to bind is empty",
        code::RESOURCE_NOT_FOUND => "unable to get specified resource detail, may be incorrect resource id",
        code::RESOURCE_ID_EMPTY => "resource id or resource name is empty",
        code::RESOURCE_TYPE_INVALID => "bad resource type",
        code::POLICY_TAG_INVALID => "The request contains invalid parameters",
        code::POLICY_RUNNING => "the backup policy is being executed, failed to execute the backup task",
        code::RESOURCE_ILLEGAL => "policy bind resources: resources illegal",
        _ => "request failed",
    }
}

/// Why an operation was refused; the routes choose the body shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// 400 with a VBS error code.
    Invalid { code: &'static str, message: String },
    /// 404: the named thing does not exist.
    NotFound {
        code: &'static str,
        resource: Resource,
        id: String,
    },
    /// 400 for a list parameter; VBS checks these the OpenStack way.
    BadQuery(String),
}

impl Rejection {
    fn invalid(code: &'static str) -> Self {
        Rejection::Invalid {
            code,
            message: table_message(code).to_owned(),
        }
    }

    fn invalid_because(code: &'static str, detail: impl Display) -> Self {
        Rejection::Invalid {
            code,
            message: format!("{}: {detail}", table_message(code)),
        }
    }

    fn not_found(code: &'static str, resource: Resource, id: &str) -> Self {
        Rejection::NotFound {
            code,
            resource,
            id: id.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Backup,
    Volume,
    Policy,
    Job,
}

impl Resource {
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Resource::Backup => "Backup",
            Resource::Volume => "Volume",
            Resource::Policy => "Policy",
            Resource::Job => "Job",
        }
    }
}

/// Where VBS puts backups, and the pod its disks live in.
pub(crate) const AVAILABILITY_ZONE: &str = "eu-de-01";
const VOLUME_HOST: &str = "pod01.eu-de-01";

// ---------------------------------------------------------------- the model

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

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tag {
    pub(crate) key: String,
    pub(crate) value: String,
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

/// A policy's schedule, holding only the keys that were set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub(crate) start_time: Option<String>,
    pub(crate) frequency: Option<i64>,
    pub(crate) week_frequency: Option<Vec<String>>,
    pub(crate) retention_num: Option<i64>,
    pub(crate) retention_day: Option<i64>,
    pub(crate) remain_first_backup_of_cur_month: Option<String>,
    pub(crate) status: Option<String>,
}

#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) schedule: Schedule,
    pub(crate) tags: Vec<Tag>,
    /// Ids of the bound volumes, in binding order.
    pub(crate) resources: Vec<String>,
}

/// One volume's part in one run of a policy.
#[derive(Clone, Debug)]
pub(crate) struct Task {
    pub(crate) id: String,
    pub(crate) policy_id: String,
    /// The backup job; none when the volume was skipped.
    pub(crate) job_id: Option<String>,
    pub(crate) backup_name: String,
    pub(crate) resource_id: String,
    pub(crate) created_at: DateTime<Utc>,
    seq: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TaskStatus {
    Waiting,
    Running,
    ExecuteSuccess,
    ExecuteFail,
    Skip,
}

impl TaskStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Waiting => "WAITING",
            TaskStatus::Running => "RUNNING",
            TaskStatus::ExecuteSuccess => "EXECUTE_SUCCESS",
            TaskStatus::ExecuteFail => "EXECUTE_FAIL",
            TaskStatus::Skip => "SKIP",
        }
    }

    fn is_unfinished(self) -> bool {
        matches!(self, TaskStatus::Waiting | TaskStatus::Running)
    }
}

/// A task as of now: its status follows its backup job.
#[derive(Clone, Debug)]
pub(crate) struct TaskView {
    pub(crate) task: Task,
    pub(crate) status: TaskStatus,
    pub(crate) finished_at: Option<DateTime<Utc>>,
}

/// A job as of now.
#[derive(Clone, Debug)]
pub(crate) struct JobView {
    pub(crate) job: Job,
    pub(crate) status: JobStatus,
    pub(crate) ended_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Default)]
pub(crate) struct Project {
    pub(crate) backups: Vec<Backup>,
    pub(crate) policies: Vec<Policy>,
    pub(crate) jobs: HashMap<String, Job>,
    pub(crate) tasks: Vec<Task>,
}

impl Project {
    fn backup(&self, id: &str) -> Option<&Backup> {
        self.backups.iter().find(|b| b.id == id)
    }

    fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }

    fn has_available_backup_of(&self, volume_id: &str) -> bool {
        self.backups
            .iter()
            .any(|b| b.volume_id == volume_id && b.status == BackupStatus::Available)
    }

    /// Whether a later incremental backup of the same volume builds on this one.
    pub(crate) fn has_dependent_backups(&self, backup: &Backup) -> bool {
        self.backups
            .iter()
            .any(|b| b.volume_id == backup.volume_id && b.incremental && b.seq > backup.seq)
    }

    fn task_view(&self, task: &Task, now: DateTime<Utc>) -> TaskView {
        let job = task.job_id.as_ref().and_then(|id| self.jobs.get(id));
        let (status, finished_at) = match job {
            None => (TaskStatus::Skip, Some(task.created_at)),
            Some(job) => {
                let status = match job.status_at(now) {
                    JobStatus::Init => TaskStatus::Waiting,
                    JobStatus::Running => TaskStatus::Running,
                    JobStatus::Success => TaskStatus::ExecuteSuccess,
                    JobStatus::Fail => TaskStatus::ExecuteFail,
                };
                (status, job.ended_at(now))
            }
        };
        TaskView {
            task: task.clone(),
            status,
            finished_at,
        }
    }
}

/// Everything the simulator knows, behind one lock.
#[derive(Debug)]
pub(crate) struct World {
    clock: Clock,
    timing: JobTiming,
    pub(crate) volumes: Vec<VolumeSpec>,
    pub(crate) projects: HashMap<String, Project>,
    pub(crate) faults: Faults,
    seq: u64,
}

// ------------------------------------------------------------ request input

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TagInput {
    pub(crate) key: Option<String>,
    pub(crate) value: Option<String>,
}

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

/// The `backup` object of the native POST /backups. `container`,
/// `incremental` and `force` are accepted and, as the reference says, skipped.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct NativeBackupInput {
    pub(crate) volume_id: Option<String>,
    pub(crate) snapshot_id: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) description: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PolicyInput {
    pub(crate) backup_policy_name: Option<String>,
    pub(crate) scheduled_policy: Option<ScheduleInput>,
    pub(crate) tags: Option<Vec<TagInput>>,
}

/// `scheduled_policy`, with VBS's own spelling of the retention keys.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ScheduleInput {
    pub(crate) start_time: Option<String>,
    pub(crate) frequency: Option<i64>,
    pub(crate) week_frequency: Option<Vec<String>>,
    #[serde(rename = "rentention_num")]
    pub(crate) retention_num: Option<i64>,
    #[serde(rename = "rentention_day")]
    pub(crate) retention_day: Option<i64>,
    /// Taken as any JSON value so a wrong type is a 0105, not a parse error.
    #[serde(rename = "remain_first_backup_of_curMonth")]
    pub(crate) remain_first_backup_of_cur_month: Option<serde_json::Value>,
    pub(crate) status: Option<String>,
}

impl ScheduleInput {
    fn is_empty(&self) -> bool {
        self.start_time.is_none()
            && self.frequency.is_none()
            && self.week_frequency.is_none()
            && self.retention_num.is_none()
            && self.retention_day.is_none()
            && self.remain_first_backup_of_cur_month.is_none()
            && self.status.is_none()
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResourceInput {
    pub(crate) resource_id: Option<String>,
    pub(crate) resource_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AssociateInput {
    pub(crate) backup_policy_id: Option<String>,
    pub(crate) resources: Option<Vec<ResourceInput>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DisassociateInput {
    pub(crate) resources: Option<Vec<ResourceInput>>,
}

// ----------------------------------------------------------------- results

/// A restore that was accepted.
#[derive(Clone, Debug)]
pub(crate) struct RestoreStarted {
    pub(crate) job_id: String,
    pub(crate) backup_id: String,
    pub(crate) volume_id: String,
    pub(crate) volume_name: String,
}

/// A volume in an associate/disassociate answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceRef {
    pub(crate) resource_id: String,
    /// Empty for volumes the simulator does not know.
    pub(crate) availability_zone: String,
    pub(crate) host: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FailedResource {
    pub(crate) resource: ResourceRef,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ResourceOutcome {
    pub(crate) successes: Vec<ResourceRef>,
    pub(crate) failures: Vec<FailedResource>,
}

impl ResourceOutcome {
    fn fail(&mut self, resource: ResourceRef, code: &'static str, detail: &str) {
        self.failures.push(FailedResource {
            resource,
            code,
            message: format!("{}: {detail}", table_message(code)),
        });
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SortDir {
    Asc,
    Desc,
}

impl SortDir {
    pub(crate) fn parse(value: &str) -> Option<Self> {
        match value {
            "asc" => Some(SortDir::Asc),
            "desc" => Some(SortDir::Desc),
            _ => None,
        }
    }

    fn apply(self, ordering: Ordering) -> Ordering {
        match self {
            SortDir::Asc => ordering,
            SortDir::Desc => ordering.reverse(),
        }
    }
}

/// GET /backups[/detail] parameters, already checked by the route.
#[derive(Clone, Debug)]
pub(crate) struct BackupQuery {
    pub(crate) name: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) volume_id: Option<String>,
    /// One of `rules::BACKUP_SORT_KEYS`.
    pub(crate) sort_key: String,
    pub(crate) sort_dir: SortDir,
    pub(crate) marker: Option<String>,
    pub(crate) offset: usize,
    pub(crate) limit: usize,
}

pub(crate) struct BackupPage<'a> {
    pub(crate) backups: Vec<&'a Backup>,
    /// Whether backups remain after this page.
    pub(crate) more: bool,
    pub(crate) project: Option<&'a Project>,
}

/// GET /backuppolicy/{id}/backuptasks parameters, already checked by the route.
#[derive(Clone, Debug)]
pub(crate) struct TaskQuery {
    pub(crate) sort_dir: SortDir,
    pub(crate) limit: usize,
    pub(crate) offset: usize,
    pub(crate) marker: Option<String>,
    pub(crate) job_id: Option<String>,
    pub(crate) status: Option<String>,
}

pub(crate) struct TaskPage {
    /// How many tasks match the filters, over all pages.
    pub(crate) count: usize,
    pub(crate) tasks: Vec<TaskView>,
}

// --------------------------------------------------------------- field rules

fn check(check: rules::Check, field: &str, code_for: impl Fn(Problem) -> &'static str) -> Result<(), Rejection> {
    check.map_err(|v| Rejection::invalid_because(code_for(v.problem), format!("{field} {}", v.description)))
}

fn backup_name_code(problem: Problem) -> &'static str {
    match problem {
        Problem::Missing => code::NAME_MISSING,
        Problem::TooLong => code::NAME_TOO_LONG,
        Problem::ReservedPrefix => code::NAME_RESERVED,
        _ => code::NAME_BAD_CHARACTER,
    }
}

fn policy_name_code(problem: Problem) -> &'static str {
    match problem {
        Problem::Missing | Problem::TooLong => code::POLICY_NAME_LENGTH,
        Problem::ReservedPrefix => code::POLICY_NAME_RESERVED,
        _ => code::POLICY_NAME_INVALID,
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

fn checked_tags(tags: Option<Vec<TagInput>>, error_code: &'static str) -> Result<Vec<Tag>, Rejection> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|tag| {
            let key = tag.key.unwrap_or_default();
            let value = tag.value.unwrap_or_default();
            check(rules::tag_key(&key), "tag key", |_| error_code)?;
            check(rules::tag_value(&value), "tag value", |_| error_code)?;
            Ok(Tag { key, value })
        })
        .collect()
}

/// VBS backs up disks that are available or attached, nothing in between.
fn can_back_up(volume: &VolumeSpec) -> bool {
    matches!(volume.status.as_str(), "available" | "in-use")
}

fn new_id() -> String {
    Uuid::new_v4().to_string()
}

fn new_job_id() -> String {
    Uuid::new_v4().simple().to_string()
}

/// Names VBS gives policy backups: "autobk_" and four hex digits.
fn auto_backup_name() -> String {
    format!("autobk_{}", &Uuid::new_v4().simple().to_string()[..4])
}

/// What a backup about to be created needs.
struct NewBackup {
    name: Option<String>,
    description: Option<String>,
    vbs_description: bool,
    volume_id: String,
    snapshot_id: Option<String>,
    full: bool,
    internal: bool,
}

// --------------------------------------------------------------- operations

impl World {
    pub(crate) fn new(config: SimulatorConfig) -> Self {
        World {
            clock: Clock::new(config.clock),
            timing: config.job_timing,
            volumes: config.volumes,
            projects: HashMap::new(),
            faults: Faults::default(),
            seq: 0,
        }
    }

    pub(crate) fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub(crate) fn advance(&mut self, by: Duration) {
        self.clock.advance(by);
    }

    pub(crate) fn volumes(&self) -> &[VolumeSpec] {
        &self.volumes
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    fn volume(&self, id: &str) -> Option<&VolumeSpec> {
        self.volumes.iter().find(|v| v.id == id)
    }

    pub(crate) fn project(&self, id: &str) -> Option<&Project> {
        self.projects.get(id)
    }

    fn project_mut(&mut self, id: &str) -> &mut Project {
        self.projects.entry(id.to_owned()).or_default()
    }

    /// A backup of the volume still being made, in any project (volumes are
    /// shared, and so is the snapshot machinery behind them).
    fn is_backing_up(&self, volume_id: &str) -> bool {
        self.projects.values().any(|project| {
            project
                .backups
                .iter()
                .any(|b| b.volume_id == volume_id && b.status == BackupStatus::Creating)
        })
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

    /// POST /cloudbackups: checks the request and starts a create job.
    pub(crate) fn create_cloud_backup(&mut self, project: &str, input: CloudBackupInput) -> Result<String, Rejection> {
        let volume_id = checked_volume_id(input.volume_id.as_deref())?;
        let name = checked_backup_name(input.name.as_deref())?;
        checked_description(input.description.as_deref(), rules::CLOUD_BACKUP_DESCRIPTION_MAX)?;
        // VBS keeps backup tags in its tag service, not on the backup itself.
        checked_tags(input.tags, code::TAG_INVALID)?;
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
    fn start_backup(&mut self, project_id: &str, new: NewBackup) -> (Backup, String) {
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
        project.jobs.insert(job.id.clone(), job);
        started
    }

    fn add_job(&mut self, project_id: &str, kind: JobKind, backup_id: &str, volume_id: &str, internal: bool) -> String {
        let now = self.now();
        let failure = self.faults.take_job_failure();
        let seq = self.next_seq();
        let mut entities = vec![("backup_id".to_owned(), backup_id.to_owned())];
        if kind == JobKind::Restore {
            entities.push(("volume_id".to_owned(), volume_id.to_owned()));
        }
        let job = Job {
            id: new_job_id(),
            kind,
            backup_id: backup_id.to_owned(),
            volume_id: volume_id.to_owned(),
            entities: entities.into_iter().collect(),
            begin: now,
            timing: self.timing,
            failure,
            settled: false,
            internal,
            seq,
        };
        let job_id = job.id.clone();
        self.project_mut(project_id).jobs.insert(job_id.clone(), job);
        job_id
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
        if let Some(backup) = self.backup_mut(project_id, backup_id) {
            backup.status = BackupStatus::Restoring;
            backup.updated_at = now;
        }
        let job_id = self.add_job(project_id, JobKind::Restore, backup_id, volume_id, internal);
        Ok(RestoreStarted {
            job_id,
            backup_id: backup_id.to_owned(),
            volume_id: volume_id.to_owned(),
            volume_name,
        })
    }

    fn backup_mut(&mut self, project_id: &str, backup_id: &str) -> Option<&mut Backup> {
        self.projects
            .get_mut(project_id)?
            .backups
            .iter_mut()
            .find(|b| b.id == backup_id)
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
        if let Some(backup) = self.backup_mut(project_id, backup_id) {
            backup.status = BackupStatus::Deleting;
            backup.updated_at = now;
        }
        Ok(self.add_job(project_id, JobKind::Delete, backup_id, "", internal))
    }

    pub(crate) fn backup(&self, project_id: &str, backup_id: &str) -> Option<&Backup> {
        self.project(project_id)?.backup(backup_id)
    }

    /// Filters, sorts and pages a project's backups the way Cinder does:
    /// marker first, then offset, then limit.
    pub(crate) fn list_backups(&self, project_id: &str, query: &BackupQuery) -> Result<BackupPage<'_>, Rejection> {
        let project = self.project(project_id);
        let all: Vec<&Backup> = project.map(|p| p.backups.iter().collect()).unwrap_or_default();
        let order = |a: &Backup, b: &Backup| {
            query
                .sort_dir
                .apply(compare_by_key(a, b, &query.sort_key).then_with(|| a.id.cmp(&b.id)))
        };
        let marker = match &query.marker {
            None => None,
            Some(id) => Some(
                all.iter()
                    .find(|b| &b.id == id)
                    .copied()
                    .ok_or_else(|| Rejection::BadQuery(format!("Marker {id} could not be found.")))?,
            ),
        };
        let mut matching: Vec<&Backup> = all
            .into_iter()
            .filter(|b| query.name.as_ref().is_none_or(|name| b.name.as_ref() == Some(name)))
            .filter(|b| query.status.as_ref().is_none_or(|s| b.status.as_str() == s))
            .filter(|b| query.volume_id.as_ref().is_none_or(|v| &b.volume_id == v))
            .filter(|b| marker.is_none_or(|m| order(b, m) == Ordering::Greater))
            .collect();
        matching.sort_by(|a, b| order(a, b));
        let rest: Vec<&Backup> = matching.into_iter().skip(query.offset).collect();
        let more = rest.len() > query.limit;
        Ok(BackupPage {
            backups: rest.into_iter().take(query.limit).collect(),
            more,
            project,
        })
    }

    pub(crate) fn job(&self, project_id: &str, job_id: &str) -> Result<JobView, Rejection> {
        let now = self.now();
        self.project(project_id)
            .and_then(|p| p.jobs.get(job_id))
            .filter(|job| !job.internal)
            .map(|job| JobView {
                job: job.clone(),
                status: job.status_at(now),
                ended_at: job.ended_at(now),
            })
            .ok_or_else(|| Rejection::not_found(code::JOB_NOT_FOUND, Resource::Job, job_id))
    }

    // ------------------------------------------------------------ policies

    pub(crate) fn create_policy(&mut self, project_id: &str, input: PolicyInput) -> Result<String, Rejection> {
        let name = input.backup_policy_name.unwrap_or_default();
        check(rules::policy_name(&name), "backup_policy_name", policy_name_code)?;
        let schedule = match input.scheduled_policy {
            Some(schedule) if !schedule.is_empty() => schedule,
            _ => {
                return Err(Rejection::invalid_because(
                    code::POLICY_EMPTY_STRUCTURE,
                    "scheduled_policy is required",
                ));
            }
        };
        let schedule = checked_schedule(&schedule, Schedule::default(), &CREATE_RANGES)?;
        let tags = checked_tags(input.tags, code::POLICY_TAG_INVALID)?;
        if self.project(project_id).map_or(0, |p| p.policies.len()) >= rules::MAX_POLICIES {
            return Err(Rejection::invalid_because(
                code::TOO_MANY_POLICIES,
                format!("a project holds at most {} backup policies", rules::MAX_POLICIES),
            ));
        }
        let policy = Policy {
            id: new_id(),
            name,
            schedule,
            tags,
            resources: Vec::new(),
        };
        let id = policy.id.clone();
        self.project_mut(project_id).policies.push(policy);
        Ok(id)
    }

    pub(crate) fn policies(&self, project_id: &str) -> &[Policy] {
        self.project(project_id).map_or(&[], |p| &p.policies)
    }

    fn checked_policy(&self, project_id: &str, policy_id: &str) -> Result<&Policy, Rejection> {
        self.project(project_id)
            .and_then(|p| p.policy(policy_id))
            .ok_or_else(|| Rejection::not_found(code::POLICY_NOT_FOUND, Resource::Policy, policy_id))
    }

    fn policy_mut(&mut self, project_id: &str, policy_id: &str) -> Result<&mut Policy, Rejection> {
        self.projects
            .get_mut(project_id)
            .and_then(|p| p.policies.iter_mut().find(|policy| policy.id == policy_id))
            .ok_or_else(|| Rejection::not_found(code::POLICY_NOT_FOUND, Resource::Policy, policy_id))
    }

    /// PUT /backuppolicy/{id}: a partial update, except that VBS wants the
    /// frequency (or week days) every time.
    pub(crate) fn update_policy(
        &mut self,
        project_id: &str,
        policy_id: &str,
        input: PolicyInput,
    ) -> Result<String, Rejection> {
        if let Some(name) = &input.backup_policy_name {
            check(rules::policy_name(name), "backup_policy_name", policy_name_code)?;
        }
        let Some(schedule) = input.scheduled_policy.as_ref() else {
            return Err(Rejection::invalid_because(
                code::FREQUENCY_INVALID,
                "scheduled_policy with frequency or week_frequency is required",
            ));
        };
        let tags = match input.tags {
            Some(tags) => Some(checked_tags(Some(tags), code::POLICY_TAG_INVALID)?),
            None => None,
        };
        let current = self.checked_policy(project_id, policy_id)?.schedule.clone();
        let schedule = checked_schedule(schedule, current, &UPDATE_RANGES)?;
        let policy = self.policy_mut(project_id, policy_id)?;
        if let Some(name) = input.backup_policy_name {
            policy.name = name;
        }
        policy.schedule = schedule;
        if let Some(tags) = tags {
            policy.tags = tags;
        }
        Ok(policy.id.clone())
    }

    /// Deletes a policy; its volumes become free to bind elsewhere.
    pub(crate) fn delete_policy(&mut self, project_id: &str, policy_id: &str) -> Result<(), Rejection> {
        self.checked_policy(project_id, policy_id)?;
        let project = self.project_mut(project_id);
        project.policies.retain(|p| p.id != policy_id);
        project.tasks.retain(|t| t.policy_id != policy_id);
        Ok(())
    }

    fn resource_ref(&self, resource_id: &str) -> ResourceRef {
        let known = self.volume(resource_id).is_some();
        let or_empty = |text: &str| if known { text.to_owned() } else { String::new() };
        ResourceRef {
            resource_id: resource_id.to_owned(),
            availability_zone: or_empty(AVAILABILITY_ZONE),
            host: or_empty(VOLUME_HOST),
        }
    }

    /// POST /backuppolicyresources: binds each volume, or says why not.
    pub(crate) fn associate(&mut self, project_id: &str, input: AssociateInput) -> Result<ResourceOutcome, Rejection> {
        let policy_id = input.backup_policy_id.unwrap_or_default();
        if policy_id.is_empty() {
            return Err(Rejection::invalid(code::POLICY_ID_EMPTY));
        }
        self.checked_policy(project_id, &policy_id)?;
        let resource_ids = checked_resources(input.resources, true)?;
        let mut outcome = ResourceOutcome::default();
        for resource_id in resource_ids {
            let resource = self.resource_ref(&resource_id);
            let bound_elsewhere = self
                .policies(project_id)
                .iter()
                .find(|p| p.id != policy_id && p.resources.contains(&resource_id))
                .map(|p| p.id.clone());
            match (self.volume(&resource_id), bound_elsewhere) {
                (None, _) => outcome.fail(
                    resource,
                    code::RESOURCE_NOT_FOUND,
                    &format!("volume {resource_id} does not exist"),
                ),
                (Some(_), Some(other)) => outcome.fail(
                    resource,
                    code::RESOURCE_ILLEGAL,
                    &format!("volume {resource_id} is already bound to policy {other}"),
                ),
                (Some(volume), None) if !can_back_up(volume) => {
                    let detail = format!("volume {resource_id} is {}", volume.status);
                    outcome.fail(resource, code::BIND_VOLUME_BAD_STATUS, &detail);
                }
                (Some(_), None) => {
                    let policy = self.policy_mut(project_id, &policy_id)?;
                    if !policy.resources.contains(&resource_id) {
                        policy.resources.push(resource_id);
                    }
                    outcome.successes.push(resource);
                }
            }
        }
        Ok(outcome)
    }

    /// POST /backuppolicyresources/{id}/deleted_resources.
    pub(crate) fn disassociate(
        &mut self,
        project_id: &str,
        policy_id: &str,
        input: DisassociateInput,
    ) -> Result<ResourceOutcome, Rejection> {
        self.checked_policy(project_id, policy_id)?;
        let resource_ids = checked_resources(input.resources, false)?;
        let mut outcome = ResourceOutcome::default();
        for resource_id in resource_ids {
            let resource = self.resource_ref(&resource_id);
            let policy = self.policy_mut(project_id, policy_id)?;
            if let Some(index) = policy.resources.iter().position(|id| id == &resource_id) {
                policy.resources.remove(index);
                outcome.successes.push(resource);
            } else {
                let detail = format!("volume {resource_id} is not bound to policy {policy_id}");
                outcome.fail(resource, code::RESOURCE_NOT_FOUND, &detail);
            }
        }
        Ok(outcome)
    }

    /// POST /backuppolicy/{id}/action: one task, and one backup job, per
    /// bound volume; a volume that cannot be backed up now is skipped.
    pub(crate) fn execute_policy(&mut self, project_id: &str, policy_id: &str) -> Result<(), Rejection> {
        let now = self.now();
        let volume_ids = self.checked_policy(project_id, policy_id)?.resources.clone();
        let project = self.project(project_id);
        let still_running = project.is_some_and(|p| {
            p.tasks
                .iter()
                .filter(|t| t.policy_id == policy_id)
                .any(|t| p.task_view(t, now).status.is_unfinished())
        });
        if still_running {
            return Err(Rejection::invalid(code::POLICY_RUNNING));
        }
        for volume_id in volume_ids {
            let name = auto_backup_name();
            let can_run = self.volume(&volume_id).is_some_and(can_back_up) && !self.is_backing_up(&volume_id);
            let job_id = can_run.then(|| {
                self.start_backup(
                    project_id,
                    NewBackup {
                        name: Some(name.clone()),
                        description: None,
                        vbs_description: true,
                        volume_id: volume_id.clone(),
                        snapshot_id: None,
                        full: false,
                        internal: false,
                    },
                )
                .1
            });
            let seq = self.next_seq();
            self.project_mut(project_id).tasks.push(Task {
                id: new_id(),
                policy_id: policy_id.to_owned(),
                job_id,
                backup_name: name,
                resource_id: volume_id,
                created_at: now,
                seq,
            });
        }
        Ok(())
    }

    /// GET /backuppolicy/{id}/backuptasks.
    pub(crate) fn list_tasks(
        &self,
        project_id: &str,
        policy_id: &str,
        query: &TaskQuery,
    ) -> Result<TaskPage, Rejection> {
        self.checked_policy(project_id, policy_id)?;
        let now = self.now();
        let Some(project) = self.project(project_id) else {
            return Ok(TaskPage {
                count: 0,
                tasks: Vec::new(),
            });
        };
        let order = |a: &Task, b: &Task| query.sort_dir.apply((a.created_at, a.seq).cmp(&(b.created_at, b.seq)));
        let mine: Vec<&Task> = project.tasks.iter().filter(|t| t.policy_id == policy_id).collect();
        let marker = match &query.marker {
            None => None,
            Some(id) => Some(
                mine.iter()
                    .find(|t| &t.id == id)
                    .copied()
                    .ok_or_else(|| Rejection::BadQuery(format!("marker {id} is not a task of policy {policy_id}")))?,
            ),
        };
        let mut matching: Vec<TaskView> = mine
            .into_iter()
            .filter(|t| query.job_id.as_ref().is_none_or(|id| &t.id == id))
            .map(|t| project.task_view(t, now))
            .filter(|v| query.status.as_ref().is_none_or(|s| v.status.as_str() == s))
            .collect();
        matching.sort_by(|a, b| order(&a.task, &b.task));
        let count = matching.len();
        let tasks = matching
            .into_iter()
            .filter(|v| marker.is_none_or(|m| order(&v.task, m) == Ordering::Greater))
            .skip(query.offset)
            .take(query.limit)
            .collect();
        Ok(TaskPage { count, tasks })
    }
}

fn compare_by_key(a: &Backup, b: &Backup, key: &str) -> Ordering {
    match key {
        "name" => a.name.cmp(&b.name),
        "status" => a.status.as_str().cmp(b.status.as_str()),
        "size" => a.size_gb.cmp(&b.size_gb),
        "id" => a.id.cmp(&b.id),
        "created_at" => a.created_at.cmp(&b.created_at),
        "updated_at" => a.updated_at.cmp(&b.updated_at),
        // Image keys backups do not have: every backup ties, ids decide.
        _ => Ordering::Equal,
    }
}

/// The resource ids of an associate/disassociate body; a bad entry fails the
/// whole request.
fn checked_resources(resources: Option<Vec<ResourceInput>>, type_required: bool) -> Result<Vec<String>, Rejection> {
    let resources = resources.unwrap_or_default();
    if resources.is_empty() {
        return Err(Rejection::invalid(code::RESOURCES_EMPTY));
    }
    resources
        .into_iter()
        .map(|resource| {
            let id = resource.resource_id.unwrap_or_default();
            if id.is_empty() {
                return Err(Rejection::invalid(code::RESOURCE_ID_EMPTY));
            }
            match resource.resource_type.as_deref() {
                None if type_required => Err(Rejection::invalid_because(
                    code::RESOURCE_ID_EMPTY,
                    "resource_type is required",
                )),
                Some(other) if type_required && other != "volume" => Err(Rejection::invalid_because(
                    code::RESOURCE_TYPE_INVALID,
                    format!("resource_type must be volume, got \"{other}\""),
                )),
                _ => Ok(id),
            }
        })
        .collect()
}

/// The limits that differ between creating and updating a policy.
struct ScheduleRanges {
    frequency: std::ops::RangeInclusive<i64>,
    retention_num: std::ops::RangeInclusive<i64>,
    /// On create, start time and status must be given.
    creating: bool,
}

const CREATE_RANGES: ScheduleRanges = ScheduleRanges {
    frequency: rules::FREQUENCY_ON_CREATE,
    retention_num: rules::RETENTION_NUM_ON_CREATE,
    creating: true,
};

const UPDATE_RANGES: ScheduleRanges = ScheduleRanges {
    frequency: rules::FREQUENCY_ON_UPDATE,
    retention_num: rules::RETENTION_NUM_ON_UPDATE,
    creating: false,
};

/// Checks a schedule and lays it over `current`. Frequency and week days
/// are two ways of saying when to run, so setting one drops the other.
fn checked_schedule(input: &ScheduleInput, current: Schedule, ranges: &ScheduleRanges) -> Result<Schedule, Rejection> {
    let mut schedule = current;
    match (&input.start_time, ranges.creating) {
        (Some(start_time), _) => {
            check(rules::start_time(start_time), "start_time", |_| {
                code::START_TIME_INVALID
            })?;
            schedule.start_time = Some(start_time.clone());
        }
        (None, true) => {
            return Err(Rejection::invalid_because(
                code::START_TIME_INVALID,
                "start_time is required",
            ));
        }
        (None, false) => {}
    }
    if input.frequency.is_none() && input.week_frequency.is_none() {
        return Err(Rejection::invalid_because(
            code::FREQUENCY_INVALID,
            "frequency or week_frequency is required",
        ));
    }
    if let Some(frequency) = input.frequency {
        check(rules::in_range(frequency, &ranges.frequency), "frequency", |_| {
            code::FREQUENCY_INVALID
        })?;
    }
    if let Some(days) = &input.week_frequency {
        if days.is_empty() {
            return Err(Rejection::invalid_because(
                code::WEEK_FREQUENCY_INVALID,
                "week_frequency must name at least one day",
            ));
        }
        for day in days {
            check(rules::one_of(day, rules::WEEKDAYS), "week_frequency", |_| {
                code::WEEK_FREQUENCY_INVALID
            })?;
        }
    }
    schedule.frequency = input.frequency;
    schedule.week_frequency = input.week_frequency.clone();
    if let Some(num) = input.retention_num {
        check(rules::in_range(num, &ranges.retention_num), "rentention_num", |_| {
            code::RETENTION_NUM_INVALID
        })?;
        schedule.retention_num = Some(num);
    }
    if let Some(days) = input.retention_day {
        check(rules::in_range(days, &rules::RETENTION_DAY), "rentention_day", |_| {
            code::RETENTION_DAY_INVALID
        })?;
        schedule.retention_day = Some(days);
    }
    if let Some(value) = &input.remain_first_backup_of_cur_month {
        let text = value.as_str().unwrap_or_default();
        check(
            rules::one_of(text, &["Y", "N"]),
            "remain_first_backup_of_curMonth",
            |_| code::REMAIN_FIRST_INVALID,
        )?;
        schedule.remain_first_backup_of_cur_month = Some(text.to_owned());
    }
    match (&input.status, ranges.creating) {
        (Some(status), _) => {
            check(rules::one_of(status, &["ON", "OFF"]), "status", |_| {
                code::POLICY_STATUS_INVALID
            })?;
            schedule.status = Some(status.clone());
        }
        (None, true) => {
            return Err(Rejection::invalid_because(
                code::POLICY_STATUS_INVALID,
                "status is required",
            ));
        }
        (None, false) => {}
    }
    Ok(schedule)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new(SimulatorConfig::for_testing())
    }

    const VOLUME: &str = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a01";

    fn cloud_backup(name: &str) -> CloudBackupInput {
        CloudBackupInput {
            volume_id: Some(VOLUME.into()),
            name: Some(name.into()),
            ..Default::default()
        }
    }

    fn code_of(rejection: Rejection) -> &'static str {
        match rejection {
            Rejection::Invalid { code, .. } | Rejection::NotFound { code, .. } => code,
            Rejection::BadQuery(_) => "query",
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

    #[test]
    fn policy_updates_must_say_when_to_run() {
        let mut world = world();
        let input = PolicyInput {
            backup_policy_name: Some("nightly".into()),
            scheduled_policy: Some(ScheduleInput {
                start_time: Some("12:00".into()),
                frequency: Some(30),
                status: Some("ON".into()),
                ..Default::default()
            }),
            tags: None,
        };
        let id = world.create_policy("p", input).expect("created");
        let rename_only = PolicyInput {
            backup_policy_name: Some("renamed".into()),
            scheduled_policy: None,
            tags: None,
        };
        let error = world.update_policy("p", &id, rename_only).expect_err("no frequency");
        assert_eq!(code_of(error), code::FREQUENCY_INVALID);
        let weekly = PolicyInput {
            scheduled_policy: Some(ScheduleInput {
                week_frequency: Some(vec!["MON".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        world.update_policy("p", &id, weekly).expect("updated");
        let schedule = &world.policies("p")[0].schedule;
        assert_eq!(schedule.frequency, None);
        assert_eq!(schedule.week_frequency, Some(vec!["MON".to_owned()]));
        assert_eq!(schedule.start_time.as_deref(), Some("12:00"));
    }
}
