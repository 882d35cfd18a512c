//! The upstream REST clients: one pooled HTTP transport, one authorizer per
//! credential mode, and one typed client per area (VBS backups, shares,
//! policies, tags, jobs; TaurusDB's in taurusdb.rs, ZStack's in zstack.rs).
//! Nothing here knows about gRPC or metrics.

pub(crate) mod auth;
pub(crate) mod backups;
pub mod credentials;
pub(crate) mod csbs;
pub(crate) mod error;
pub(crate) mod iam;
pub(crate) mod jobs;
pub(crate) mod ledger;
pub(crate) mod lenient;
pub(crate) mod observer;
pub(crate) mod policies;
pub(crate) mod pools;
pub(crate) mod retry;
pub(crate) mod shares;
pub(crate) mod tags;
pub(crate) mod taurusdb;
pub(crate) mod transport;
pub(crate) mod zstack;

use std::time::Instant;

pub(crate) use credentials::Secret;
pub(crate) use error::RestError;
pub(crate) use observer::UpstreamObserver;
pub(crate) use transport::Transport;

/// Every upstream REST operation the gateway calls (VBS's, then the other
/// backup services'). Names the call in errors, logs and metrics, and tells
/// the error table which calls create things and which service answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Operation {
    CreateBackup,
    RestoreBackup,
    DeleteCloudBackup,
    CreateNativeBackup,
    ListBackups,
    ListBackupDetails,
    GetBackup,
    DeleteBackup,
    RestoreNativeBackup,
    CreateBackupPolicy,
    ListBackupPolicies,
    UpdateBackupPolicy,
    DeleteBackupPolicy,
    AssociateResources,
    DisassociateResources,
    ExecuteBackupPolicy,
    ListBackupPolicyTasks,
    GetJob,
    AddPolicyTag,
    DeletePolicyTag,
    ListPolicyTags,
    BatchPolicyTags,
    ListPoliciesByTags,
    CountPoliciesByTags,
    ShareBackup,
    ListShares,
    GetShare,
    DeleteShare,
    /// CSBS: the protect action on a server.
    CsbsProtect,
    /// CSBS: the backups (checkpoint items) of a backup record.
    CsbsListBackups,
    /// CSBS: one backup (checkpoint item).
    CsbsGetBackup,
    TaurusDbCreateBackup,
    TaurusDbGetJob,
    ZStackCreateVmBackup,
    ZStackGetApiJob,
}

impl Operation {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Operation::CreateBackup => "CreateBackup",
            Operation::RestoreBackup => "RestoreBackup",
            Operation::DeleteCloudBackup => "DeleteCloudBackup",
            Operation::CreateNativeBackup => "CreateNativeBackup",
            Operation::ListBackups => "ListBackups",
            Operation::ListBackupDetails => "ListBackupDetails",
            Operation::GetBackup => "GetBackup",
            Operation::DeleteBackup => "DeleteBackup",
            Operation::RestoreNativeBackup => "RestoreNativeBackup",
            Operation::CreateBackupPolicy => "CreateBackupPolicy",
            Operation::ListBackupPolicies => "ListBackupPolicies",
            Operation::UpdateBackupPolicy => "UpdateBackupPolicy",
            Operation::DeleteBackupPolicy => "DeleteBackupPolicy",
            Operation::AssociateResources => "AssociateResources",
            Operation::DisassociateResources => "DisassociateResources",
            Operation::ExecuteBackupPolicy => "ExecuteBackupPolicy",
            Operation::ListBackupPolicyTasks => "ListBackupPolicyTasks",
            Operation::GetJob => "GetJob",
            Operation::AddPolicyTag => "AddPolicyTag",
            Operation::DeletePolicyTag => "DeletePolicyTag",
            Operation::ListPolicyTags => "ListPolicyTags",
            Operation::BatchPolicyTags => "BatchPolicyTags",
            Operation::ListPoliciesByTags => "ListPoliciesByTags",
            Operation::CountPoliciesByTags => "CountPoliciesByTags",
            Operation::ShareBackup => "ShareBackup",
            Operation::ListShares => "ListShares",
            Operation::GetShare => "GetShare",
            Operation::DeleteShare => "DeleteShare",
            Operation::CsbsProtect => "CsbsProtect",
            Operation::CsbsListBackups => "CsbsListBackups",
            Operation::CsbsGetBackup => "CsbsGetBackup",
            Operation::TaurusDbCreateBackup => "TaurusDbCreateBackup",
            Operation::TaurusDbGetJob => "TaurusDbGetJob",
            Operation::ZStackCreateVmBackup => "ZStackCreateVmBackup",
            Operation::ZStackGetApiJob => "ZStackGetApiJob",
        }
    }

    /// The upstream service the call goes to, as messages name it.
    pub(crate) fn service(self) -> &'static str {
        match self {
            Operation::CsbsProtect | Operation::CsbsListBackups | Operation::CsbsGetBackup => "CSBS",
            Operation::TaurusDbCreateBackup | Operation::TaurusDbGetJob => "TaurusDB",
            Operation::ZStackCreateVmBackup | Operation::ZStackGetApiJob => "ZStack",
            _ => "VBS",
        }
    }

    /// Whether the call names a cloud project (X-Project-Id); ZStack has none.
    pub(crate) fn in_project(self) -> bool {
        self.service() != "ZStack"
    }

    /// Calls that create a resource: upstream 409 means it already exists.
    pub(crate) fn creates(self) -> bool {
        matches!(
            self,
            Operation::CreateBackup
                | Operation::CreateNativeBackup
                | Operation::CreateBackupPolicy
                | Operation::ShareBackup
                | Operation::CsbsProtect
                | Operation::TaurusDbCreateBackup
                | Operation::ZStackCreateVmBackup
        )
    }
}

impl std::fmt::Display for Operation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// What one gRPC call hands to its upstream calls.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallContext {
    /// Validated project id for the URL and X-Project-Id.
    pub(crate) project_id: String,
    /// The caller's deadline (from grpc-timeout); upstream calls stop there.
    pub(crate) deadline: Option<Instant>,
    /// The caller's own token, when pass-through is enabled and it sent one.
    pub(crate) caller_token: Option<Secret>,
    /// A call not sent by then is not sent at all: the caller's deadline of
    /// a write that runs on detached (whose `deadline` is the default one),
    /// so a write its caller gave up on before it left is never made.
    pub(crate) send_by: Option<Instant>,
    /// The caller's name in the callers file: its request ids are its own.
    pub(crate) caller: Option<std::sync::Arc<str>>,
}

/// The query pairs of the filters that are set, texts first, then numbers.
fn query_pairs(texts: &[(&str, &Option<String>)], numbers: &[(&str, Option<i64>)]) -> Vec<(String, String)> {
    let texts = texts
        .iter()
        .filter_map(|(key, value)| value.as_ref().map(|v| (key.to_string(), v.clone())));
    let numbers = numbers
        .iter()
        .filter_map(|(key, value)| value.map(|v| (key.to_string(), v.to_string())));
    texts.chain(numbers).collect()
}
