//! Who may do what: the three roles and the ONE table of RPC methods to the
//! least role that may call them. A method the table does not name needs admin.

use serde::Deserialize;

/// A caller's role; each includes the rights of the ones before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    /// Every Get, List, Count, Watch and Wait RPC.
    Reader,
    /// Reader, plus create, restore, execute, associate, disassociate, enable and disable.
    Operator,
    /// Everything, including deletes, policy create, update and delete,
    /// policy tag writes, and backup sharing.
    Admin,
}

impl Role {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

/// Method name (the last segment of the gRPC path) -> the least role allowed.
/// Method names are unique across the gateway's services, except that
/// CsbsBackupService's CreateBackup and GetBackup share their rows (and
/// roles) with BackupService's.
const TABLE: &[(&str, Role)] = &[
    // BackupService
    ("ListBackups", Role::Reader),
    ("ListBackupDetails", Role::Reader),
    ("GetBackup", Role::Reader),
    ("CreateBackup", Role::Operator),
    ("CreateNativeBackup", Role::Operator),
    ("RestoreBackup", Role::Operator),
    ("RestoreNativeBackup", Role::Operator),
    ("DeleteCloudBackup", Role::Admin),
    ("DeleteBackup", Role::Admin),
    ("ListShares", Role::Reader),
    ("GetShare", Role::Reader),
    // Sharing hands a backup to another project: as weighty as a delete.
    ("ShareBackup", Role::Admin),
    ("DeleteShare", Role::Admin),
    // BackupPolicyService
    ("ListBackupPolicies", Role::Reader),
    ("ListBackupPolicyTasks", Role::Reader),
    ("AssociateResources", Role::Operator),
    ("DisassociateResources", Role::Operator),
    ("ExecuteBackupPolicy", Role::Operator),
    ("EnableBackupPolicy", Role::Operator),
    ("DisableBackupPolicy", Role::Operator),
    ("CreateBackupPolicy", Role::Admin),
    ("UpdateBackupPolicy", Role::Admin),
    ("DeleteBackupPolicy", Role::Admin),
    ("ListPolicyTags", Role::Reader),
    ("ListPoliciesByTags", Role::Reader),
    ("CountPoliciesByTags", Role::Reader),
    // Tags change a policy, as UpdateBackupPolicy does.
    ("AddPolicyTag", Role::Admin),
    ("DeletePolicyTag", Role::Admin),
    ("BatchPolicyTags", Role::Admin),
    // JobService
    ("GetJob", Role::Reader),
    ("WatchJob", Role::Reader),
    ("WaitJob", Role::Reader),
    ("WatchJobs", Role::Reader),
    // google.longrunning.Operations, a view of the jobs. Cancel and delete
    // are answered UNIMPLEMENTED; they keep the roles their names suggest.
    ("GetOperation", Role::Reader),
    ("ListOperations", Role::Reader),
    ("WaitOperation", Role::Reader),
    ("CancelOperation", Role::Operator),
    ("DeleteOperation", Role::Admin),
    // CsbsBackupService (CreateBackup and GetBackup: the rows above)
    ("WatchBackup", Role::Reader),
    ("WaitBackup", Role::Reader),
    // TaurusDbBackupService
    ("CreateManualBackup", Role::Operator),
    ("GetBackupJob", Role::Reader),
    ("WatchBackupJob", Role::Reader),
    ("WaitBackupJob", Role::Reader),
    // ZStackBackupService
    ("CreateVmBackup", Role::Operator),
    ("GetVmBackupJob", Role::Reader),
    ("WatchVmBackupJob", Role::Reader),
    ("WaitVmBackupJob", Role::Reader),
];

/// The least role that may call `method`; admin for a method not in the table.
pub(crate) fn required_role(method: &str) -> Role {
    TABLE
        .iter()
        .find(|(name, _)| *name == method)
        .map_or(Role::Admin, |(_, role)| *role)
}

/// RPCs that hold a job watch open (each counts against --max-watches-per-caller).
pub(crate) fn is_watch(method: &str) -> bool {
    matches!(
        method,
        "WatchJob"
            | "WatchJobs"
            | "WaitJob"
            | "WaitOperation"
            | "WatchBackup"
            | "WaitBackup"
            | "WatchBackupJob"
            | "WaitBackupJob"
            | "WatchVmBackupJob"
            | "WaitVmBackupJob"
    )
}

/// Services anyone may call without an identity: health always, and
/// reflection while it is served (--reflection on).
pub(crate) fn needs_no_identity(service: &str) -> bool {
    matches!(
        service,
        "grpc.health.v1.Health" | "grpc.reflection.v1.ServerReflection" | "grpc.reflection.v1alpha.ServerReflection"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Every method of the contract, every service's, has a row: a new RPC
    /// gets its role on purpose. (The set holds no service but the gateway's.)
    #[test]
    fn every_rpc_of_the_contract_is_in_the_table() {
        let set = prost_types::FileDescriptorSet::decode(crate::proto::FILE_DESCRIPTOR_SET).unwrap();
        let methods: std::collections::BTreeSet<String> = set
            .file
            .iter()
            .flat_map(|f| &f.service)
            .flat_map(|s| &s.method)
            .map(|m| m.name().to_string())
            .collect();
        assert_eq!(methods.len(), TABLE.len(), "{methods:?}");
        for method in methods {
            assert!(TABLE.iter().any(|(name, _)| *name == method), "{method} has no role");
        }
    }

    #[test]
    fn roles_follow_the_issue() {
        assert_eq!(required_role("WatchJobs"), Role::Reader);
        assert_eq!(required_role("ExecuteBackupPolicy"), Role::Operator);
        assert_eq!(required_role("CreateBackup"), Role::Operator);
        assert_eq!(required_role("CreateBackupPolicy"), Role::Admin);
        assert_eq!(required_role("DeleteBackup"), Role::Admin);
        assert_eq!(required_role("SomethingNew"), Role::Admin);
        assert_eq!(required_role("WaitBackup"), Role::Reader);
        assert!(is_watch("WatchBackup") && is_watch("WaitBackup"));
        assert_eq!(required_role("CreateManualBackup"), Role::Operator);
        assert_eq!(required_role("WaitBackupJob"), Role::Reader);
        assert!(is_watch("WatchBackupJob") && is_watch("WaitBackupJob"));
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Reader);
    }
}
