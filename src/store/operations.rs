//! The operations the gateway started, per list, newest first: what
//! ListOperations lists, since no backup service has a call that lists its
//! jobs. A list is a project's VBS jobs (named by the project id) or another
//! service's collection (named as ListOperations names it). Bounded in
//! entries per list, in lists, and in age; in memory, or in Redis
//! (`store/redis/operations.rs`) when replicas share one list.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::{BoxFuture, FutureExt};

use super::StoreError;

/// One page of a list: the entries, newest first, and whether
/// older ones follow.
pub(crate) type LogPage = (Vec<Logged>, bool);

/// The jobs started through the gateway, per list.
pub(crate) trait OperationLog: Send + Sync + fmt::Debug {
    /// Notes a job the gateway started, in `list`.
    fn record<'a>(&'a self, list: &'a str, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
    /// Up to `size` entries of `list` older than `before` (all when
    /// None), newest first, and whether more follow them.
    fn page<'a>(
        &'a self,
        list: &'a str,
        before: Option<u64>,
        size: usize,
    ) -> BoxFuture<'a, Result<LogPage, StoreError>>;
    /// Drops a job its service no longer knows.
    fn forget<'a>(&'a self, list: &'a str, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>>;
}

/// Notes work `id` just started in `list` (a project id for VBS jobs, else
/// the ListOperations name of the service's collection). The work goes on
/// whether or not the note could be made, so a store outage costs only the
/// listing. An id that is no safe path segment (the upstream chose it) is
/// not noted: every later read of the list would refuse it.
pub(crate) async fn note_started(log: &dyn OperationLog, list: &str, id: &str) {
    if vbs_rules::path_id(id).is_err() {
        tracing::warn!(
            id_len = id.len(),
            "the operation is not in ListOperations: its id is not a safe path segment"
        );
        return;
    }
    if let Err(error) = log.record(list, id).await {
        tracing::warn!(%error, id, "the operation is not in ListOperations: its record failed");
    }
}

/// The bounds of an operation log.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LogBounds {
    /// Entries kept per list; the oldest go first.
    pub(crate) per_list: usize,
    /// Lists kept; the one that took nothing for longest goes first.
    pub(crate) lists: usize,
    /// How long an entry is listed.
    pub(crate) max_age: Duration,
}

impl Default for LogBounds {
    /// A day of a busy project's jobs, for as many lists as callers have projects.
    fn default() -> Self {
        LogBounds {
            per_list: 1_000,
            lists: 10_000,
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
    lists: HashMap<String, VecDeque<Entry>>,
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

    fn record_now(&self, list: &str, job_id: &str) {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        inner.next_seq += 1;
        let seq = inner.next_seq;
        if !inner.lists.contains_key(list) && inner.lists.len() >= self.bounds.lists {
            evict_quietest(&mut inner.lists);
        }
        let entries = inner.lists.entry(list.to_string()).or_default();
        entries.push_front(Entry {
            logged: Logged {
                seq,
                job_id: job_id.to_string(),
            },
            at: now,
        });
        entries.truncate(self.bounds.per_list);
    }

    fn page_now(&self, list: &str, before: Option<u64>, size: usize) -> LogPage {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(entries) = inner.lists.get_mut(list) else {
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

    fn forget_now(&self, list: &str, job_id: &str) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entries) = inner.lists.get_mut(list) {
            entries.retain(|e| e.logged.job_id != job_id);
        }
    }
}

impl OperationLog for MemoryLog {
    fn record<'a>(&'a self, list: &'a str, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.record_now(list, job_id);
        futures_util::future::ready(Ok(())).boxed()
    }

    fn page<'a>(
        &'a self,
        list: &'a str,
        before: Option<u64>,
        size: usize,
    ) -> BoxFuture<'a, Result<LogPage, StoreError>> {
        futures_util::future::ready(Ok(self.page_now(list, before, size))).boxed()
    }

    fn forget<'a>(&'a self, list: &'a str, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        self.forget_now(list, job_id);
        futures_util::future::ready(Ok(())).boxed()
    }
}

/// Removes the list whose newest entry is the oldest.
fn evict_quietest(lists: &mut HashMap<String, VecDeque<Entry>>) {
    let quietest = lists
        .iter()
        .min_by_key(|(_, entries)| entries.front().map(|e| e.at))
        .map(|(list, _)| list.clone());
    if let Some(list) = quietest {
        lists.remove(&list);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_ids_that_are_safe_path_segments_are_noted() {
        let log = MemoryLog::new(LogBounds::default());
        note_started(&log, "p", "4010b39b5281d3590152874bfa3b1604").await;
        for hostile in ["", "../x", "a/b", "a b", &"x".repeat(200)] {
            note_started(&log, "p", hostile).await;
        }
        let (page, more) = log.page("p", None, 10).await.unwrap();
        let ids: Vec<&str> = page.iter().map(|entry| entry.job_id.as_str()).collect();
        assert_eq!((ids, more), (vec!["4010b39b5281d3590152874bfa3b1604"], false));
    }

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
            per_list: 3,
            lists: 2,
            max_age: Duration::ZERO,
        };
        let log = MemoryLog::new(bounds);
        for job in ["a", "b", "c", "d"] {
            log.record_now("p", job);
        }
        let inner = log.inner.lock().unwrap();
        assert_eq!(inner.lists["p"].len(), 3);
        drop(inner);
        log.record_now("q", "x");
        log.record_now("r", "y");
        assert_eq!(log.inner.lock().unwrap().lists.len(), 2);
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
