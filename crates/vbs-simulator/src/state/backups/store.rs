//! A project's backups in creation order, indexed by id and by volume, so
//! that reads, creates and the checks behind them never walk every backup.

use std::collections::{BTreeSet, HashMap};
use std::ops::Deref;

use super::{Backup, BackupStatus};

/// The backups, read as a slice in creation order; changes go through the
/// methods so that the indexes stay true.
#[derive(Debug, Default)]
pub(crate) struct Backups {
    in_order: Vec<Backup>,
    position: HashMap<String, usize>,
    by_volume: HashMap<String, VolumeBackups>,
}

/// What the checks on one volume ask about its backups.
#[derive(Debug, Default)]
struct VolumeBackups {
    creating: usize,
    available: usize,
    incremental_seqs: BTreeSet<u64>,
    snapshots: HashMap<String, usize>,
}

impl VolumeBackups {
    fn count_status(&mut self, status: BackupStatus, up: bool) {
        let counter = match status {
            BackupStatus::Creating => &mut self.creating,
            BackupStatus::Available => &mut self.available,
            _ => return,
        };
        *counter = if up { *counter + 1 } else { counter.saturating_sub(1) };
    }

    fn add(&mut self, backup: &Backup) {
        self.count_status(backup.status, true);
        if backup.incremental {
            self.incremental_seqs.insert(backup.seq);
        }
        *self.snapshots.entry(backup.snapshot_id.clone()).or_default() += 1;
    }

    fn remove(&mut self, backup: &Backup) {
        self.count_status(backup.status, false);
        self.incremental_seqs.remove(&backup.seq);
        if let Some(count) = self.snapshots.get_mut(&backup.snapshot_id) {
            *count -= 1;
            if *count == 0 {
                self.snapshots.remove(&backup.snapshot_id);
            }
        }
    }
}

impl Deref for Backups {
    type Target = [Backup];

    fn deref(&self) -> &[Backup] {
        &self.in_order
    }
}

impl Backups {
    pub(crate) fn push(&mut self, backup: Backup) {
        self.by_volume.entry(backup.volume_id.clone()).or_default().add(&backup);
        self.position.insert(backup.id.clone(), self.in_order.len());
        self.in_order.push(backup);
    }

    pub(crate) fn get(&self, id: &str) -> Option<&Backup> {
        self.position.get(id).map(|&at| &self.in_order[at])
    }

    /// Changes a backup's status, times or fail reason (never its volume,
    /// snapshot, seq or incremental flag, which the indexes hold).
    pub(crate) fn update(&mut self, id: &str, change: impl FnOnce(&mut Backup)) {
        let Some(&at) = self.position.get(id) else {
            return;
        };
        let backup = &mut self.in_order[at];
        let before = backup.status;
        change(backup);
        let after = backup.status;
        if before != after
            && let Some(volume) = self.by_volume.get_mut(&backup.volume_id)
        {
            volume.count_status(before, false);
            volume.count_status(after, true);
        }
    }

    /// Removes a backup; the later ones shift down, so this one walks them.
    pub(crate) fn remove(&mut self, id: &str) {
        let Some(at) = self.position.remove(id) else {
            return;
        };
        let backup = self.in_order.remove(at);
        if let Some(volume) = self.by_volume.get_mut(&backup.volume_id) {
            volume.remove(&backup);
        }
        for later in &self.in_order[at..] {
            if let Some(position) = self.position.get_mut(&later.id) {
                *position -= 1;
            }
        }
    }

    fn volume(&self, volume_id: &str) -> Option<&VolumeBackups> {
        self.by_volume.get(volume_id)
    }

    pub(crate) fn is_creating_of(&self, volume_id: &str) -> bool {
        self.volume(volume_id).is_some_and(|v| v.creating > 0)
    }

    pub(crate) fn has_available_of(&self, volume_id: &str) -> bool {
        self.volume(volume_id).is_some_and(|v| v.available > 0)
    }

    pub(crate) fn has_snapshot_of(&self, volume_id: &str, snapshot_id: &str) -> bool {
        self.volume(volume_id)
            .is_some_and(|v| v.snapshots.contains_key(snapshot_id))
    }

    /// Whether an incremental backup of the volume was made after `seq`.
    pub(crate) fn has_incremental_after(&self, volume_id: &str, seq: u64) -> bool {
        self.volume(volume_id)
            .is_some_and(|v| v.incremental_seqs.range(seq + 1..).next().is_some())
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    fn backup(id: &str, volume_id: &str, seq: u64, incremental: bool) -> Backup {
        Backup {
            id: id.into(),
            name: None,
            description: None,
            volume_id: volume_id.into(),
            snapshot_id: format!("snap-{id}"),
            size_gb: 1,
            status: BackupStatus::Creating,
            fail_reason: None,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
            updated_at: DateTime::<Utc>::UNIX_EPOCH,
            incremental,
            image_id: String::new(),
            seq,
        }
    }

    #[test]
    fn ids_still_find_their_backup_after_an_earlier_one_is_removed() {
        let mut backups = Backups::default();
        for (seq, id) in ["a", "b", "c"].into_iter().enumerate() {
            backups.push(backup(id, "v", seq as u64, seq > 0));
        }
        backups.remove("a");
        assert_eq!(backups.get("c").map(|b| b.id.as_str()), Some("c"));
        assert!(backups.get("a").is_none());
        let order: Vec<&str> = backups.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(order, ["b", "c"]);
        assert!(backups.has_incremental_after("v", 1));
        backups.remove("c");
        assert!(!backups.has_incremental_after("v", 1));
        assert!(!backups.has_snapshot_of("v", "snap-c"));
    }

    #[test]
    fn status_changes_move_the_volume_between_busy_and_backed_up() {
        let mut backups = Backups::default();
        backups.push(backup("a", "v", 1, false));
        assert!(backups.is_creating_of("v") && !backups.has_available_of("v"));
        backups.update("a", |b| b.status = BackupStatus::Available);
        assert!(!backups.is_creating_of("v") && backups.has_available_of("v"));
        backups.update("a", |b| b.status = BackupStatus::Deleting);
        assert!(!backups.has_available_of("v"));
    }
}
