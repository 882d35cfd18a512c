//! A fake ZStack management node for VM backups: account login with sessions
//! that expire on the simulator's clock, CreateVmBackup answered with an API
//! job location (202), and the API job query that answers 202 while the
//! backup runs and then the reference document's (004) 200 body: the
//! `inventories`, one per volume of the VM, or the `error`.

mod routes;
mod state;

pub use routes::{ARGUMENT_ERROR, INVALID_SESSION, WRONG_PASSWORD, router};
pub use state::SESSION_TTL;
pub(crate) use state::ZStackState;

/// A VM the simulator knows: its root volume backs up the VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZStackVm {
    /// The VM's uuid.
    pub uuid: String,
    /// The VM's name.
    pub name: String,
    /// The root volume, which CreateVmBackup names.
    pub root_volume_uuid: String,
    /// Data volumes, backed up with the VM.
    pub data_volume_uuids: Vec<String>,
}

/// A backup storage VM backups can go to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZStackBackupStorage {
    /// The storage's uuid.
    pub uuid: String,
    /// The storage's name.
    pub name: String,
}

/// Root volumes of the simulated VMs, fixed so docs and tests can name them.
pub const ZSTACK_ROOT_VOLUMES: [&str; 2] = ["2ae6b881bb1239cd907d48993e86a2e8", "5b1f0c2d3e4a4b5c8d9e0f1a2b3c4d5e"];
/// Uuids of the simulated backup storages.
pub const ZSTACK_BACKUP_STORAGES: [&str; 2] = ["9c1d2e3f4a5b4c6d8e7f0a1b2c3d4e5f", "0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d"];

/// Two VMs (web with one data volume, db with two) and two backup storages.
pub fn default_vms() -> Vec<ZStackVm> {
    vec![
        ZStackVm {
            uuid: "c0ffee01c0ffee01c0ffee01c0ffee01".into(),
            name: "web-1".into(),
            root_volume_uuid: ZSTACK_ROOT_VOLUMES[0].into(),
            data_volume_uuids: vec!["f6c7d5276c873eba8accddd4a09a1ee6".into()],
        },
        ZStackVm {
            uuid: "c0ffee02c0ffee02c0ffee02c0ffee02".into(),
            name: "db-1".into(),
            root_volume_uuid: ZSTACK_ROOT_VOLUMES[1].into(),
            data_volume_uuids: vec![
                "d1d1d1d1d1d14d1d8d1d1d1d1d1d1d01".into(),
                "d1d1d1d1d1d14d1d8d1d1d1d1d1d1d02".into(),
            ],
        },
    ]
}

/// The backup storages every simulator starts with.
pub fn default_backup_storages() -> Vec<ZStackBackupStorage> {
    ["imagestore-1", "imagestore-2"]
        .iter()
        .zip(ZSTACK_BACKUP_STORAGES)
        .map(|(name, uuid)| ZStackBackupStorage {
            uuid: uuid.into(),
            name: (*name).into(),
        })
        .collect()
}

/// VMs and backup storages as small tables for start-up output.
pub fn describe(vms: &[ZStackVm], storages: &[ZStackBackupStorage]) -> String {
    let mut lines = vec![format!("{:<32}  {:<8}  VOLUMES", "ROOT VOLUME", "VM")];
    lines.extend(vms.iter().map(|vm| {
        format!(
            "{:<32}  {:<8}  {}",
            vm.root_volume_uuid,
            vm.name,
            1 + vm.data_volume_uuids.len()
        )
    }));
    lines.push(format!("{:<32}  NAME", "BACKUP STORAGE"));
    lines.extend(storages.iter().map(|s| format!("{:<32}  {}", s.uuid, s.name)));
    lines.join("\n")
}
