//! Running a policy: one task per bound volume, each following its backup
//! job, and the task list with its filters, sorting and paging.

use std::cmp::Ordering;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::state::backups::{NewBackup, can_back_up};
use crate::state::jobs::JobStatus;
use crate::state::{Project, Rejection, SortDir, World, code, new_id};

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

/// Names VBS gives policy backups: "autobk_" and four hex digits.
fn auto_backup_name() -> String {
    format!("autobk_{}", &Uuid::new_v4().simple().to_string()[..4])
}

impl Project {
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

impl World {
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
