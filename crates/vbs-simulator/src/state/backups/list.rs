//! Listing backups the way Cinder does: filters by name, status and volume,
//! a sort key with the id as tie-breaker, and marker, offset and limit paging.

use std::cmp::Ordering;

use super::Backup;
use crate::state::{Project, Rejection, SortDir, World};

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

impl World {
    /// Filters, sorts and pages a project's backups the way Cinder does:
    /// marker first, then offset, then limit.
    pub(crate) fn list_backups(&self, project_id: &str, query: &BackupQuery) -> Result<BackupPage<'_>, Rejection> {
        let project = self.project(project_id);
        let mut all: Vec<&Backup> = project.map(|p| p.backups.iter().collect()).unwrap_or_default();
        // Backups other projects shared with this one are listed as its own.
        all.extend(self.backups_shared_with(project_id));
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
