//! TaurusDB's simulated state: its instances, and per project the backups and
//! the jobs making them. A job's status is read off the clock when asked, so
//! nothing moves in the background.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::TaurusDbInstance;
use crate::JobTiming;
use crate::clock::delta;

/// The job name TaurusDB gives a manual backup.
pub(crate) const BACKUP_JOB_NAME: &str = "CreateGaussDBforMySQLBackup";

/// A manual backup and the job making it.
#[derive(Clone, Debug)]
pub(crate) struct BackupJob {
    pub(crate) job_id: String,
    pub(crate) backup_id: String,
    pub(crate) name: String,
    pub(crate) description: String,
    pub(crate) instance: TaurusDbInstance,
    pub(crate) created: DateTime<Utc>,
    pub(crate) ends: DateTime<Utc>,
    /// Set when the job was told to fail: why.
    pub(crate) failure: Option<String>,
}

/// Where a job is at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JobStatus {
    Running,
    Completed,
    Failed,
}

impl JobStatus {
    pub(crate) fn spelling(self) -> &'static str {
        match self {
            JobStatus::Running => "Running",
            JobStatus::Completed => "Completed",
            JobStatus::Failed => "Failed",
        }
    }
}

impl BackupJob {
    pub(crate) fn status_at(&self, now: DateTime<Utc>) -> JobStatus {
        match (&self.failure, now >= self.ends) {
            (_, false) => JobStatus::Running,
            (None, true) => JobStatus::Completed,
            (Some(_), true) => JobStatus::Failed,
        }
    }
}

/// Instances, jobs per project, and failures queued for the next jobs.
#[derive(Debug)]
pub(crate) struct TaurusDbState {
    instances: Vec<TaurusDbInstance>,
    timing: JobTiming,
    jobs: HashMap<String, HashMap<String, BackupJob>>,
    next_failures: VecDeque<String>,
}

impl TaurusDbState {
    pub(crate) fn new(instances: Vec<TaurusDbInstance>, timing: JobTiming) -> TaurusDbState {
        TaurusDbState {
            instances,
            timing,
            jobs: HashMap::new(),
            next_failures: VecDeque::new(),
        }
    }

    pub(crate) fn instances(&self) -> &[TaurusDbInstance] {
        &self.instances
    }

    pub(crate) fn instance(&self, id: &str) -> Option<&TaurusDbInstance> {
        self.instances.iter().find(|i| i.id == id)
    }

    /// Starts a backup of `instance` in `project` at `now`; its job runs for
    /// the simulator's job timing (init and running together).
    pub(crate) fn start_backup(
        &mut self,
        project: &str,
        instance: TaurusDbInstance,
        name: &str,
        description: &str,
        now: DateTime<Utc>,
    ) -> BackupJob {
        let job = BackupJob {
            job_id: Uuid::new_v4().to_string(),
            backup_id: Uuid::new_v4().to_string(),
            name: name.to_owned(),
            description: description.to_owned(),
            instance,
            created: now,
            ends: now + delta(self.timing.init + self.timing.running),
            failure: self.next_failures.pop_front(),
        };
        self.jobs
            .entry(project.to_owned())
            .or_default()
            .insert(job.job_id.clone(), job.clone());
        job
    }

    pub(crate) fn job(&self, project: &str, job_id: &str) -> Option<&BackupJob> {
        self.jobs.get(project)?.get(job_id)
    }

    /// The next `count` backup jobs end Failed with `reason`.
    pub(crate) fn fail_next_jobs(&mut self, count: usize, reason: &str) {
        self.next_failures.extend(std::iter::repeat_n(reason.to_owned(), count));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn jobs_run_then_complete_or_fail_on_the_clock() {
        let timing = JobTiming {
            init: Duration::from_secs(1),
            running: Duration::from_secs(2),
        };
        let mut state = TaurusDbState::new(super::super::default_instances(), timing);
        let instance = state.instances()[0].clone();
        let start = Utc::now();
        let ok = state.start_backup("p", instance.clone(), "backup-1", "", start);
        state.fail_next_jobs(1, "disk full");
        let failing = state.start_backup("p", instance, "backup-2", "", start);
        assert_eq!(ok.status_at(start), JobStatus::Running);
        assert_eq!(
            ok.status_at(start + delta(Duration::from_secs(3))),
            JobStatus::Completed
        );
        assert_eq!(
            failing.status_at(start + delta(Duration::from_secs(3))),
            JobStatus::Failed
        );
        assert!(state.job("p", &ok.job_id).is_some());
        assert!(state.job("other", &ok.job_id).is_none());
    }
}
