//! Jobs: a job is INIT for a while, RUNNING for a while, then SUCCESS or FAIL
//! on the simulated clock; when it ends, its effect lands on backups and
//! volumes (in the order the jobs ended). Also the jobs API's view of one.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Rejection, Resource, World, code};
use crate::JobTiming;
use crate::clock::delta;
use crate::faults::JobFailure;

/// What a job does, with its VBS `job_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobKind {
    Create,
    Restore,
    Delete,
}

impl JobKind {
    pub(crate) fn wire_name(self) -> &'static str {
        match self {
            JobKind::Create => "bksCreateBackup",
            JobKind::Restore => "bksRestoreBackup",
            JobKind::Delete => "bksDeleteBackup",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobStatus {
    Init,
    Running,
    Success,
    Fail,
}

impl JobStatus {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            JobStatus::Init => "INIT",
            JobStatus::Running => "RUNNING",
            JobStatus::Success => "SUCCESS",
            JobStatus::Fail => "FAIL",
        }
    }

    pub(crate) fn is_terminal(self) -> bool {
        matches!(self, JobStatus::Success | JobStatus::Fail)
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub(crate) id: String,
    pub(crate) kind: JobKind,
    pub(crate) backup_id: String,
    /// The backed-up volume, or the restore target; empty for deletes.
    pub(crate) volume_id: String,
    pub(crate) entities: BTreeMap<String, String>,
    pub(crate) begin: DateTime<Utc>,
    pub(crate) timing: JobTiming,
    /// Set when the job must end in FAIL.
    pub(crate) failure: Option<JobFailure>,
    /// Whether the job's end has been applied to backups and volumes.
    pub(crate) settled: bool,
    /// Jobs behind the native API: VBS runs them too, but never hands out
    /// their id, so the jobs API does not show them.
    pub(crate) internal: bool,
    pub(crate) seq: u64,
}

impl Job {
    fn running_from(&self) -> DateTime<Utc> {
        after(self.begin, self.timing.init)
    }

    pub(crate) fn end_time(&self) -> DateTime<Utc> {
        after(self.running_from(), self.timing.running)
    }

    pub(crate) fn status_at(&self, now: DateTime<Utc>) -> JobStatus {
        if now < self.running_from() {
            JobStatus::Init
        } else if now < self.end_time() {
            JobStatus::Running
        } else if self.failure.is_some() {
            JobStatus::Fail
        } else {
            JobStatus::Success
        }
    }

    /// When the job ended, if it has by `now`.
    pub(crate) fn ended_at(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.status_at(now).is_terminal().then(|| self.end_time())
    }
}

fn after(start: DateTime<Utc>, duration: std::time::Duration) -> DateTime<Utc> {
    start
        .checked_add_signed(delta(duration))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A job not yet settled, ordered by when it ends (then by creation), the
/// order in which job ends are applied.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Due {
    end: DateTime<Utc>,
    seq: u64,
    project_id: String,
    job_id: String,
}

/// A job as of now.
#[derive(Clone, Debug)]
pub(crate) struct JobView {
    pub(crate) job: Job,
    pub(crate) status: JobStatus,
    pub(crate) ended_at: Option<DateTime<Utc>>,
}

/// Job ids are 32 hex digits, unlike the UUIDs of backups and policies.
pub(super) fn new_job_id() -> String {
    Uuid::new_v4().simple().to_string()
}

impl World {
    /// GET /v1/{project}/jobs/{id}: jobs of the native API stay hidden.
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

    /// Starts a restore or delete job now; returns its id.
    pub(super) fn add_job(
        &mut self,
        project_id: &str,
        kind: JobKind,
        backup_id: &str,
        volume_id: &str,
        internal: bool,
    ) -> String {
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
        self.schedule(project_id, job);
        job_id
    }

    /// Keeps a new job and queues it for settling when it ends.
    pub(super) fn schedule(&mut self, project_id: &str, job: Job) {
        let due = Due {
            end: job.end_time(),
            seq: job.seq,
            project_id: project_id.to_owned(),
            job_id: job.id.clone(),
        };
        self.project_mut(project_id).jobs.insert(job.id.clone(), job);
        self.unsettled.insert(due);
    }

    /// The earliest job that ended by `now` and was not yet settled, now
    /// marked settled, with its project's id.
    pub(super) fn next_ended_job(&mut self, now: DateTime<Utc>) -> Option<(String, Job)> {
        while self.unsettled.first().is_some_and(|due| due.end <= now) {
            let due = self.unsettled.pop_first()?;
            let Some(job) = self
                .projects
                .get_mut(&due.project_id)
                .and_then(|project| project.jobs.get_mut(&due.job_id))
            else {
                continue;
            };
            job.settled = true;
            return Some((due.project_id, job.clone()));
        }
        None
    }

    /// Makes a job that has not ended yet end in FAIL. False when no project
    /// has the job or it is already over.
    pub(crate) fn fail_job(&mut self, job_id: &str, error_code: &str, fail_reason: &str) -> bool {
        let now = self.now();
        let job = self
            .projects
            .values_mut()
            .find_map(|project| project.jobs.get_mut(job_id));
        match job {
            Some(job) if !job.settled && !job.status_at(now).is_terminal() => {
                job.failure = Some(JobFailure::new(error_code, fail_reason));
                true
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn job(failure: Option<JobFailure>) -> Job {
        Job {
            id: "j".into(),
            kind: JobKind::Create,
            backup_id: "b".into(),
            volume_id: "v".into(),
            entities: BTreeMap::new(),
            begin: DateTime::<Utc>::UNIX_EPOCH,
            timing: JobTiming {
                init: Duration::from_secs(1),
                running: Duration::from_secs(2),
            },
            failure,
            settled: false,
            internal: false,
            seq: 0,
        }
    }

    #[test]
    fn a_job_walks_init_running_success() {
        let job = job(None);
        let at = |secs: i64| DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::seconds(secs);
        assert_eq!(job.status_at(at(0)), JobStatus::Init);
        assert_eq!(job.status_at(at(1)), JobStatus::Running);
        assert_eq!(job.status_at(at(2)), JobStatus::Running);
        assert_eq!(job.status_at(at(3)), JobStatus::Success);
        assert_eq!(job.ended_at(at(2)), None);
        assert_eq!(job.ended_at(at(9)), Some(at(3)));
    }

    #[test]
    fn a_failed_job_ends_in_fail_at_the_same_time() {
        let job = job(Some(JobFailure::new("VolumeBackup.0064", "boom")));
        let end = DateTime::<Utc>::UNIX_EPOCH + chrono::TimeDelta::seconds(3);
        assert_eq!(job.status_at(end), JobStatus::Fail);
    }
}
