//! The simulator's world: volumes shared by all projects, backups shared
//! between projects and, per project, backups, policies (with their tasks)
//! and jobs, one module per area. Every
//! operation returns a typed result, or a Rejection carrying the VBS error code.

pub(crate) mod backups;
pub(crate) mod jobs;
pub(crate) mod policies;
mod rejection;
pub(crate) mod shares;

use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use self::backups::store::Backups;
use self::jobs::{Due, Job};
use self::policies::Policy;
use self::policies::tasks::Task;
use crate::clock::Clock;
use crate::faults::Faults;
use crate::{JobTiming, SimulatorConfig, VolumeSpec};
use vbs_rules::{self as rules, Problem};

pub(crate) use self::rejection::{Rejection, Resource, code, table_message};

/// Where VBS puts backups, and the pod its disks live in.
pub(crate) const AVAILABILITY_ZONE: &str = "eu-de-01";
const VOLUME_HOST: &str = "pod01.eu-de-01";

// ---------------------------------------------------------------- the model

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Tag {
    pub(crate) key: String,
    pub(crate) value: String,
}

/// What one project holds; projects never see each other's.
#[derive(Debug, Default)]
pub(crate) struct Project {
    backups: Backups,
    policies: Vec<Policy>,
    jobs: HashMap<String, Job>,
    tasks: Vec<Task>,
}

/// Everything the simulator knows, behind one lock.
#[derive(Debug)]
pub(crate) struct World {
    clock: Clock,
    timing: JobTiming,
    volumes: Vec<VolumeSpec>,
    projects: HashMap<String, Project>,
    pub(crate) faults: Faults,
    seq: u64,
    /// Jobs whose end is not yet applied, the next to end first, so that
    /// settling looks only at jobs that are due.
    unsettled: BTreeSet<Due>,
    /// Backups shared between projects.
    shares: Vec<shares::Share>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct TagInput {
    pub(crate) key: Option<String>,
    pub(crate) value: Option<String>,
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

// --------------------------------------------------------------- field rules

fn check(check: rules::Check, field: &str, code_for: impl Fn(Problem) -> &'static str) -> Result<(), Rejection> {
    check.map_err(|v| Rejection::invalid_because(code_for(v.problem), format!("{field} {}", v.description)))
}

/// Checks each tag with `error_code`, and their count with `too_many_code`.
fn checked_tags(
    tags: Option<Vec<TagInput>>,
    error_code: &'static str,
    too_many_code: &'static str,
) -> Result<Vec<Tag>, Rejection> {
    let tags = tags.unwrap_or_default();
    check(rules::entries_at_most(tags.len(), rules::TAGS_MAX), "tags", |_| {
        too_many_code
    })?;
    tags.into_iter()
        .map(|tag| {
            let key = tag.key.unwrap_or_default();
            let value = tag.value.unwrap_or_default();
            check(rules::tag_key(&key), "tag key", |_| error_code)?;
            check(rules::tag_value(&value), "tag value", |_| error_code)?;
            Ok(Tag { key, value })
        })
        .collect()
}

fn new_id() -> String {
    Uuid::new_v4().to_string()
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
            unsettled: BTreeSet::new(),
            shares: Vec::new(),
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

    /// Applies the end of every job that has ended by now and was not yet
    /// applied, earliest end first, so a big clock step replays history in
    /// order.
    pub(crate) fn settle(&mut self) {
        let now = self.now();
        while let Some((project_id, job)) = self.next_ended_job(now) {
            if let Some(project) = self.projects.get_mut(&project_id) {
                backups::apply_job_end(project, &mut self.volumes, &job);
            }
        }
    }
}

#[cfg(test)]
mod testing {
    use super::*;

    /// The default volumes, on a clock that moves only when told.
    pub(super) fn world() -> World {
        World::new(SimulatorConfig::for_testing())
    }

    pub(super) fn code_of(rejection: Rejection) -> &'static str {
        match rejection {
            Rejection::Invalid { code, .. } | Rejection::NotFound { code, .. } => code,
            Rejection::BadQuery(_) => "query",
        }
    }
}
