//! Backup sharing (os-vendor-backup-sharing): a project shares an available
//! backup with other projects, which then see it in their backup lists;
//! shares are listed, read and stopped (one, or every share of a backup).

use chrono::{DateTime, Utc};

use super::backups::{Backup, BackupStatus};
use super::{Rejection, Resource, SortDir, World, code, new_id};
use vbs_rules as rules;

/// One backup shared by one project with another.
#[derive(Clone, Debug)]
pub(crate) struct Share {
    pub(crate) id: String,
    pub(crate) backup_id: String,
    pub(crate) from_project_id: String,
    pub(crate) to_project_id: String,
    pub(crate) created_at: DateTime<Utc>,
}

/// GET /os-vendor-backup-sharing/detail parameters, already checked by the route.
#[derive(Clone, Debug, Default)]
pub(crate) struct ShareQuery {
    pub(crate) share_to_me: bool,
    pub(crate) name: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) backup_id: Option<String>,
    pub(crate) from_project_id: Option<String>,
    pub(crate) to_project_id: Option<String>,
    pub(crate) availability_zone: Option<String>,
    pub(crate) volume_id: Option<String>,
    pub(crate) sort_dir: Option<SortDir>,
    pub(crate) marker: Option<String>,
    pub(crate) offset: usize,
    pub(crate) limit: usize,
}

/// One page of shares, each with its backup.
pub(crate) struct SharePage<'a> {
    pub(crate) shares: Vec<(&'a Share, &'a Backup)>,
    pub(crate) more: bool,
}

fn not_found(id: &str) -> Rejection {
    Rejection::not_found(code::RESTORE_NOT_FOUND, Resource::Backup, id)
}

impl World {
    /// POST /os-vendor-backup-sharing: one share per target project.
    pub(crate) fn share_backup(
        &mut self,
        project_id: &str,
        backup_id: &str,
        to_project_ids: &[String],
    ) -> Result<Vec<Share>, Rejection> {
        rules::uuid(backup_id).map_err(|v| Rejection::invalid_because(code::BACKUP_ID_NOT_UUID, v.description))?;
        let backup = self.backup(project_id, backup_id).ok_or_else(|| not_found(backup_id))?;
        if backup.status != BackupStatus::Available {
            return Err(Rejection::invalid_because(
                code::BACKUP_NOT_AVAILABLE,
                format!("backup {backup_id} is {}", backup.status.as_str()),
            ));
        }
        if to_project_ids.is_empty() {
            return Err(Rejection::invalid_because(code::BAD_BODY, "to_project_ids is empty"));
        }
        for (i, target) in to_project_ids.iter().enumerate() {
            let known = self
                .shares
                .iter()
                .any(|s| s.backup_id == backup_id && &s.to_project_id == target);
            if rules::path_id(target).is_err() || target == project_id || known || to_project_ids[..i].contains(target)
            {
                return Err(Rejection::invalid_because(
                    code::BAD_BODY,
                    format!("backup {backup_id} cannot be shared with project {target}"),
                ));
            }
        }
        let now = self.now();
        let made: Vec<Share> = to_project_ids
            .iter()
            .map(|target| Share {
                id: new_id(),
                backup_id: backup_id.to_owned(),
                from_project_id: project_id.to_owned(),
                to_project_id: target.clone(),
                created_at: now,
            })
            .collect();
        self.shares.extend(made.iter().cloned());
        Ok(made)
    }

    /// The backup a share names, wherever its project keeps it.
    fn shared_backup(&self, share: &Share) -> Option<&Backup> {
        self.backup(&share.from_project_id, &share.backup_id)
    }

    /// Backups other projects shared with `project_id`.
    pub(crate) fn backups_shared_with(&self, project_id: &str) -> Vec<&Backup> {
        self.shares
            .iter()
            .filter(|s| s.to_project_id == project_id)
            .filter_map(|s| self.shared_backup(s))
            .collect()
    }

    /// The shares `project_id` made (or, with `share_to_me`, received),
    /// filtered, newest first unless asked, then marker, offset and limit.
    pub(crate) fn list_shares(&self, project_id: &str, query: &ShareQuery) -> Result<SharePage<'_>, Rejection> {
        let text = |wanted: &Option<String>, actual: &str| wanted.as_deref().is_none_or(|w| w == actual);
        let mut matching: Vec<(&Share, &Backup)> = self
            .shares
            .iter()
            .filter(|s| {
                if query.share_to_me {
                    s.to_project_id == project_id
                } else {
                    s.from_project_id == project_id
                }
            })
            .filter_map(|s| self.shared_backup(s).map(|b| (s, b)))
            .filter(|(s, b)| {
                text(&query.backup_id, &s.backup_id)
                    && text(&query.from_project_id, &s.from_project_id)
                    && text(&query.to_project_id, &s.to_project_id)
                    && text(&query.status, b.status.as_str())
                    && text(&query.volume_id, &b.volume_id)
                    && text(&query.availability_zone, super::AVAILABILITY_ZONE)
                    && query.name.as_ref().is_none_or(|n| b.name.as_ref() == Some(n))
            })
            .collect();
        let dir = query.sort_dir.unwrap_or(SortDir::Desc);
        matching.sort_by(|(a, _), (b, _)| dir.apply(a.created_at.cmp(&b.created_at).then_with(|| a.id.cmp(&b.id))));
        if let Some(marker) = &query.marker {
            let at = matching
                .iter()
                .position(|(s, _)| &s.id == marker)
                .ok_or_else(|| Rejection::BadQuery(format!("Marker {marker} could not be found.")))?;
            matching.drain(..=at);
        }
        let rest: Vec<(&Share, &Backup)> = matching.into_iter().skip(query.offset).collect();
        let more = rest.len() > query.limit;
        Ok(SharePage {
            shares: rest.into_iter().take(query.limit).collect(),
            more,
        })
    }

    /// One share, seen from either of its projects.
    pub(crate) fn share(&self, project_id: &str, share_id: &str) -> Result<(&Share, &Backup), Rejection> {
        self.shares
            .iter()
            .filter(|s| s.id == share_id && (s.from_project_id == project_id || s.to_project_id == project_id))
            .find_map(|s| self.shared_backup(s).map(|b| (s, b)))
            .ok_or_else(|| not_found(share_id))
    }

    /// Stops a share of `project_id`, or with `is_backup_id` every share of that backup.
    pub(crate) fn delete_share(&mut self, project_id: &str, id: &str, is_backup_id: bool) -> Result<(), Rejection> {
        let before = self.shares.len();
        self.shares.retain(|s| {
            let named = if is_backup_id { s.backup_id == id } else { s.id == id };
            !(named && s.from_project_id == project_id)
        });
        if self.shares.len() == before {
            return Err(not_found(id));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::state::backups::CloudBackupInput;
    use crate::state::testing::world;

    #[test]
    fn a_shared_backup_is_seen_by_its_target_until_the_share_stops() {
        let mut world = world();
        let input: CloudBackupInput = serde_json::from_value(serde_json::json!({
            "volume_id": "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a01", "name": "b1"
        }))
        .unwrap();
        world.create_cloud_backup("from", input).unwrap();
        world.advance(Duration::from_secs(600));
        world.settle();
        let backup_id = world.project("from").unwrap().backups[0].id.clone();
        let made = world.share_backup("from", &backup_id, &["to".to_string()]).unwrap();
        assert_eq!(world.backups_shared_with("to").len(), 1);
        assert!(world.share("to", &made[0].id).is_ok());
        assert!(world.share_backup("from", &backup_id, &["to".to_string()]).is_err());
        world.delete_share("from", &backup_id, true).unwrap();
        assert!(world.backups_shared_with("to").is_empty());
    }
}
