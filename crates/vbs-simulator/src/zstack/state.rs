//! ZStack's simulated state: accounts (password digests), sessions with their
//! expiry, VMs and backup storages, and the API jobs of VM backups, whose
//! outcome is read off the clock when asked.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha512};
use uuid::Uuid;

use super::{ZStackBackupStorage, ZStackVm};
use crate::JobTiming;
use crate::clock::delta;

/// How long a session lives: ZStack's default session timeout (7200 s).
pub const SESSION_TTL: Duration = Duration::from_secs(7200);

/// One API job: when it ends and how.
#[derive(Clone, Debug)]
pub(crate) struct ApiJob {
    pub(crate) ends: DateTime<Utc>,
    /// The 200 body once the job is over: `inventories` or `error`.
    pub(crate) result: Value,
}

#[derive(Debug)]
pub(crate) struct ZStackState {
    /// Account name -> SHA-512 hex of its password.
    accounts: HashMap<String, String>,
    sessions: HashMap<String, DateTime<Utc>>,
    logins: usize,
    vms: Vec<ZStackVm>,
    storages: Vec<ZStackBackupStorage>,
    jobs: HashMap<String, ApiJob>,
    timing: JobTiming,
    next_failures: VecDeque<(String, String)>,
}

/// A new ZStack uuid: 32 hex digits.
fn zstack_uuid() -> String {
    Uuid::new_v4().simple().to_string()
}

/// How ZStack writes dates: "Nov 14, 2017 10:20:57 PM".
pub(crate) fn zstack_date(at: DateTime<Utc>) -> String {
    at.format("%b %-d, %Y %-I:%M:%S %p").to_string()
}

impl ZStackState {
    pub(crate) fn new(vms: Vec<ZStackVm>, storages: Vec<ZStackBackupStorage>, timing: JobTiming) -> ZStackState {
        ZStackState {
            accounts: HashMap::new(),
            sessions: HashMap::new(),
            logins: 0,
            vms,
            storages,
            jobs: HashMap::new(),
            timing,
            next_failures: VecDeque::new(),
        }
    }

    pub(crate) fn add_account(&mut self, name: &str, password: &str) {
        let digest = hex::encode(Sha512::digest(password.as_bytes()));
        self.accounts.insert(name.to_owned(), digest);
    }

    /// A new session when `password_digest` is the account's.
    pub(crate) fn log_in(
        &mut self,
        name: &str,
        password_digest: &str,
        now: DateTime<Utc>,
    ) -> Option<(String, DateTime<Utc>)> {
        let known = self.accounts.get(name)?;
        if !known.eq_ignore_ascii_case(password_digest) {
            return None;
        }
        let session = zstack_uuid();
        let expires = now + delta(SESSION_TTL);
        self.sessions.insert(session.clone(), expires);
        self.logins += 1;
        Some((session, expires))
    }

    pub(crate) fn session_valid(&self, session: &str, now: DateTime<Utc>) -> bool {
        self.sessions.get(session).is_some_and(|expires| now < *expires)
    }

    pub(crate) fn logins(&self) -> usize {
        self.logins
    }

    pub(crate) fn vms(&self) -> &[ZStackVm] {
        &self.vms
    }

    pub(crate) fn storages(&self) -> &[ZStackBackupStorage] {
        &self.storages
    }

    pub(crate) fn vm_of_root(&self, root_volume_uuid: &str) -> Option<&ZStackVm> {
        self.vms.iter().find(|vm| vm.root_volume_uuid == root_volume_uuid)
    }

    pub(crate) fn storage(&self, uuid: &str) -> Option<&ZStackBackupStorage> {
        self.storages.iter().find(|s| s.uuid == uuid)
    }

    /// Starts backing up `vm` to `storage`; returns the API job's uuid.
    pub(crate) fn start_backup(
        &mut self,
        vm: &ZStackVm,
        storage: &str,
        name: &str,
        description: &str,
        now: DateTime<Utc>,
    ) -> String {
        let ends = now + delta(self.timing.init + self.timing.running);
        let result = match self.next_failures.pop_front() {
            Some((code, details)) => json!({"error": {
                "code": code,
                "description": "An operation failed",
                "details": details,
                "elaboration": null,
                "opaque": null,
                "cause": null,
            }}),
            None => json!({"inventories": inventories(vm, storage, name, description, ends)}),
        };
        let job_uuid = zstack_uuid();
        self.jobs.insert(job_uuid.clone(), ApiJob { ends, result });
        job_uuid
    }

    pub(crate) fn job(&self, uuid: &str) -> Option<&ApiJob> {
        self.jobs.get(uuid)
    }

    pub(crate) fn fail_next_backups(&mut self, count: usize, code: &str, details: &str) {
        self.next_failures
            .extend(std::iter::repeat_n((code.to_owned(), details.to_owned()), count));
    }
}

/// One backup per volume of the VM, root first, in the document's shape.
fn inventories(vm: &ZStackVm, storage: &str, name: &str, description: &str, at: DateTime<Utc>) -> Vec<Value> {
    let group = zstack_uuid();
    let date = zstack_date(at);
    std::iter::once((&vm.root_volume_uuid, "Root"))
        .chain(vm.data_volume_uuids.iter().map(|v| (v, "Data")))
        .map(|(volume, kind)| {
            let uuid = zstack_uuid();
            json!({
                "uuid": uuid,
                "volumeUuid": volume,
                "name": format!("{kind}-Volume-{name}"),
                "description": description,
                "type": kind,
                "state": "Enabled",
                "status": "Ready",
                "size": if kind == "Root" { 1.073741824E9 } else { 2.147483648E9 },
                "metadata": "",
                "groupUuid": group,
                "createDate": date,
                "lastOpDate": date,
                "backupStorageRefs": [{
                    "volumeBackupUuid": uuid,
                    "backupStorageUuid": storage,
                    "installPath": format!("zstore://{storage}/{uuid}"),
                    "status": "Ready",
                    "createDate": date,
                    "lastOpDate": date,
                }],
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> ZStackState {
        let timing = JobTiming {
            init: Duration::from_secs(1),
            running: Duration::from_secs(2),
        };
        ZStackState::new(
            super::super::default_vms(),
            super::super::default_backup_storages(),
            timing,
        )
    }

    #[test]
    fn sessions_need_the_password_digest_and_expire() {
        let mut zstack = state();
        zstack.add_account("admin", "password");
        let now = Utc::now();
        assert!(
            zstack.log_in("admin", "password", now).is_none(),
            "the digest, not the password"
        );
        let digest = hex::encode(Sha512::digest(b"password"));
        let (session, _) = zstack.log_in("admin", &digest, now).unwrap();
        assert!(zstack.session_valid(&session, now));
        assert!(!zstack.session_valid(&session, now + delta(SESSION_TTL)));
        assert_eq!(zstack.logins(), 1);
    }

    #[test]
    fn a_vm_backup_has_one_inventory_per_volume() {
        let mut zstack = state();
        let vm = zstack.vms()[1].clone();
        let job = zstack.start_backup(&vm, "bs", "nightly", "", Utc::now());
        let result = &zstack.job(&job).unwrap().result;
        assert_eq!(result["inventories"].as_array().unwrap().len(), 3);
        assert_eq!(
            zstack_date("2017-11-14T22:20:57Z".parse().unwrap()),
            "Nov 14, 2017 10:20:57 PM"
        );
    }
}
