//! The operations the gateway started, per project, newest first: what
//! ListOperations lists, since VBS has no call that lists jobs. Bounded in
//! entries per project, in projects, and in age; in memory, or in Redis
//! (`store/redis/operations.rs`) when replicas share one list.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt};

use super::StoreError;

/// One page of a project's log: the entries, newest first, and whether
/// older ones follow.
pub(crate) type LogPage = (Vec<Logged>, bool);

/// The jobs started through the gateway, per project.
pub(crate) trait OperationLog: Send + Sync + fmt::Debug {
    /// Notes a job the gateway started in `project_id`.
    fn record<'a>(&'a self, project_id: &'a str, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Up to `size` entries of `project_id` older than `before` (all when
    /// None), newest first, and whether more follow them.
    fn page<'a>(
        &'a self,
        project_id: &'a str,
        before: Option<u64>,
        size: usize,
    ) -> BoxFuture<'a, Result<LogPage, StoreError>>;
    /// Drops a job VBS no longer knows.
    fn forget<'a>(&'a self, project_id: &'a str, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// The bounds of an operation log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogBounds {
    /// Entries kept per project; the oldest go first.
    pub(crate) per_project: usize,
    /// Projects kept; the one that started nothing for longest goes first.
    pub(crate) projects: usize,
    /// How long an entry is listed.
    pub(crate) max_age: Duration,
}

impl Default for LogBounds {
    /// A day of a busy project's jobs, for as many projects as callers.
    fn default() -> Self {
        LogBounds {
            per_project: 1_000,
            projects: 10_000,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// One started job, with its place in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Logged {
    /// Grows with every entry: pages continue below the last one they showed.
    pub(crate) seq: u64,
    pub(crate) job_id: String,
}

#[derive(Debug)]
struct Entry {
    logged: Logged,
    at: Instant,
}

#[derive(Debug, Default)]
struct Inner {
    /// Newest first.
    projects: HashMap<String, VecDeque<Entry>>,
    next_seq: u64,
}

/// The log in this process's memory.
#[derive(Debug)]
pub(crate) struct MemoryLog {
    bounds: LogBounds,
    inner: Mutex<Inner>,
}

impl MemoryLog {
    pub(crate) fn new(bounds: LogBounds) -> MemoryLog {
        MemoryLog {
            bounds,
            inner: Mutex::new(Inner::default()),
        }
    }

    fn record_now(&self, project_id: &str, job_id: &str) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.next_seq += 1;
        let seq = inner.next_seq;
        if !inner.projects.contains_key(project_id) && inner.projects.len() >= self.bounds.projects {
            evict_quietest(&mut inner.projects);
        }
        let entries = inner.projects.entry(project_id.to_string()).or_default();
        entries.push_front(Entry {
            logged: Logged {
                seq,
                job_id: job_id.to_string(),
            },
            at: now,
        });
        entries.truncate(self.bounds.per_project);
    }

    fn page_now(&self, project_id: &str, before: Option<u64>, size: usize) -> LogPage {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entries) = inner.projects.get_mut(project_id) else {
            return (Vec::new(), false);
        };
        while entries
            .back()
            .is_some_and(|e| now.saturating_duration_since(e.at) >= self.bounds.max_age)
        {
            entries.pop_back();
        }
        let mut older = entries
            .iter()
            .filter(|e| before.is_none_or(|seq| e.logged.seq < seq))
            .map(|e| e.logged.clone());
        let page: Vec<Logged> = older.by_ref().take(size).collect();
        let more = older.next().is_some();
        (page, more)
    }

    fn forget_now(&self, project_id: &str, job_id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entries) = inner.projects.get_mut(project_id) {
            entries.retain(|e| e.logged.job_id != job_id);
        }
    }
}

impl OperationLog for MemoryLog {
    fn record<'a>(&'a self, project_id: &'a str, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.record_now(project_id, job_id);
        futures_util::future::ready(Ok(())).boxed()
    }

    fn page<'a>(
        &'a self,
        project_id: &'a str,
        before: Option<u64>,
        size: usize,
    ) -> BoxFuture<'a, Result<LogPage, StoreError>> {
        futures_util::future::ready(Ok(self.page_now(project_id, before, size))).boxed()
    }

    fn forget<'a>(&'a self, project_id: &'a str, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.forget_now(project_id, job_id);
        futures_util::future::ready(Ok(())).boxed()
    }
}

/// Removes the project whose newest entry is the oldest.
fn evict_quietest(projects: &mut HashMap<String, VecDeque<Entry>>) {
    let quietest = projects
        .iter()
        .min_by_key(|(_, entries)| entries.front().map(|e| e.at))
        .map(|(project, _)| project.clone());
    if let Some(project) = quietest {
        projects.remove(&project);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(page: &[Logged]) -> Vec<&str> {
        page.iter().map(|l| l.job_id.as_str()).collect()
    }

    #[test]
    fn pages_go_from_newest_to_oldest_without_repeats() {
        let log = MemoryLog::new(LogBounds::default());
        for job in ["a", "b", "c", "d", "e"] {
            log.record_now("p", job);
        }
        log.record_now("q", "x");
        let (first, more) = log.page_now("p", None, 2);
        assert_eq!((ids(&first), more), (vec!["e", "d"], true));
        // A job started meanwhile does not shift the pages after the first.
        log.record_now("p", "f");
        let (second, more) = log.page_now("p", Some(first[1].seq), 2);
        assert_eq!((ids(&second), more), (vec!["c", "b"], true));
        let (last, more) = log.page_now("p", Some(second[1].seq), 2);
        assert_eq!((ids(&last), more), (vec!["a"], false));
        assert_eq!(log.page_now("nobody", None, 2), (Vec::new(), false));
    }

    #[test]
    fn every_bound_holds() {
        let bounds = LogBounds {
            per_project: 3,
            projects: 2,
            max_age: Duration::ZERO,
        };
        let log = MemoryLog::new(bounds);
        for job in ["a", "b", "c", "d"] {
            log.record_now("p", job);
        }
        let inner = log.inner.lock().unwrap();
        assert_eq!(inner.projects["p"].len(), 3);
        drop(inner);
        log.record_now("q", "x");
        log.record_now("r", "y");
        assert_eq!(log.inner.lock().unwrap().projects.len(), 2);
        // Max age zero: everything is already too old to list.
        assert_eq!(log.page_now("r", None, 10).0, Vec::new());
    }

    #[test]
    fn forgotten_jobs_are_not_listed() {
        let log = MemoryLog::new(LogBounds::default());
        log.record_now("p", "a");
        log.record_now("p", "b");
        log.forget_now("p", "b");
        assert_eq!(ids(&log.page_now("p", None, 10).0), vec!["a"]);
    }
}
