//! The resource ids a request names, for its access-log line: one list per
//! request type, bounded in length and stripped of control characters.

use crate::proto::taurusdb::v3 as tdb;
use crate::proto::zstack::v1 as zs;
use crate::proto::{csbs_pb, longrunning as lro, pb};

/// Ids longer than this are cut in the log; a real VBS id is 36 characters.
const MAX_ID_LEN: usize = 64;
/// WatchJobs may name up to 100 jobs; the log names the first few.
const MAX_IDS: usize = 5;

/// The resource ids of a request, as `field=id` pairs for the access log.
pub(crate) trait ResourceIds {
    /// "backup_id=... volume_id=...", empty when the request names none.
    fn resource_ids(&self) -> String;
}

fn describe<'a>(pairs: impl IntoIterator<Item = (&'static str, &'a str)>) -> String {
    let mut out = String::new();
    let mut named = 0;
    for (field, id) in pairs.into_iter().filter(|(_, id)| !id.is_empty()) {
        named += 1;
        if named > MAX_IDS {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(field);
        out.push('=');
        out.extend(
            id.chars()
                .take(MAX_ID_LEN)
                .map(|c| if c.is_control() || c.is_whitespace() { '?' } else { c }),
        );
    }
    if named > MAX_IDS {
        out.push_str(&format!(" (+{} more)", named - MAX_IDS));
    }
    out
}

macro_rules! resource_ids {
    ($($request:path => [$($field:ident),*];)*) => {
        $(impl ResourceIds for $request {
            fn resource_ids(&self) -> String {
                describe([$((stringify!($field), self.$field.as_str())),*])
            }
        })*
    };
}

resource_ids! {
    pb::CreateBackupRequest => [volume_id, snapshot_id];
    pb::RestoreBackupRequest => [backup_id, volume_id];
    pb::DeleteCloudBackupRequest => [backup_id];
    pb::CreateNativeBackupRequest => [volume_id, snapshot_id];
    pb::ListBackupsRequest => [volume_id];
    pb::ListBackupDetailsRequest => [volume_id];
    pb::GetBackupRequest => [backup_id];
    pb::DeleteBackupRequest => [backup_id];
    pb::RestoreNativeBackupRequest => [backup_id, volume_id];
    pb::CreateBackupPolicyRequest => [];
    pb::ListBackupPoliciesRequest => [];
    pb::UpdateBackupPolicyRequest => [backup_policy_id];
    pb::DeleteBackupPolicyRequest => [backup_policy_id];
    pb::ExecuteBackupPolicyRequest => [backup_policy_id];
    pb::EnableBackupPolicyRequest => [backup_policy_id];
    pb::DisableBackupPolicyRequest => [backup_policy_id];
    pb::ListBackupPolicyTasksRequest => [backup_policy_id, task_id];
    pb::AddPolicyTagRequest => [backup_policy_id];
    pb::DeletePolicyTagRequest => [backup_policy_id, key];
    pb::ListPolicyTagsRequest => [backup_policy_id];
    pb::BatchPolicyTagsRequest => [backup_policy_id];
    pb::ListPoliciesByTagsRequest => [];
    pb::CountPoliciesByTagsRequest => [];
    pb::ShareBackupRequest => [backup_id];
    pb::ListSharesRequest => [backup_id];
    pb::GetShareRequest => [share_id];
    pb::DeleteShareRequest => [id];
    pb::GetJobRequest => [job_id];
    pb::WatchJobRequest => [job_id];
    pb::WaitJobRequest => [job_id];
    csbs_pb::CreateBackupRequest => [resource_id];
    csbs_pb::GetBackupRequest => [backup_id];
    csbs_pb::WatchBackupRequest => [backup_id];
    csbs_pb::WaitBackupRequest => [backup_id];
    tdb::CreateManualBackupRequest => [instance_id];
    tdb::GetBackupJobRequest => [job_id];
    tdb::WatchBackupJobRequest => [job_id];
    tdb::WaitBackupJobRequest => [job_id];
    zs::CreateVmBackupRequest => [root_volume_uuid, backup_storage_uuid];
    zs::GetVmBackupJobRequest => [job_uuid];
    zs::WatchVmBackupJobRequest => [job_uuid];
    zs::WaitVmBackupJobRequest => [job_uuid];
}

/// An operation names its job: `projects/{project_id}/jobs/{job_id}`.
macro_rules! operation_ids {
    ($($request:ident),*) => {
        $(impl ResourceIds for lro::$request {
            fn resource_ids(&self) -> String {
                describe([("name", self.name.as_str())])
            }
        })*
    };
}

operation_ids!(
    GetOperationRequest,
    ListOperationsRequest,
    WaitOperationRequest,
    CancelOperationRequest,
    DeleteOperationRequest
);

impl ResourceIds for pb::AssociateResourcesRequest {
    fn resource_ids(&self) -> String {
        let resources = self.resources.iter().map(|r| ("resource_id", r.resource_id.as_str()));
        describe(std::iter::once(("backup_policy_id", self.backup_policy_id.as_str())).chain(resources))
    }
}

impl ResourceIds for pb::DisassociateResourcesRequest {
    fn resource_ids(&self) -> String {
        let resources = self.resources.iter().map(|r| ("resource_id", r.resource_id.as_str()));
        describe(std::iter::once(("backup_policy_id", self.backup_policy_id.as_str())).chain(resources))
    }
}

impl ResourceIds for pb::WatchJobsRequest {
    fn resource_ids(&self) -> String {
        describe(self.job_ids.iter().map(|id| ("job_id", id.as_str())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_ids_bounded_and_printable() {
        let request = pb::RestoreBackupRequest {
            backup_id: "b-1".into(),
            volume_id: "v\n2".into(),
            ..Default::default()
        };
        assert_eq!(request.resource_ids(), "backup_id=b-1 volume_id=v?2");
        let many = pb::WatchJobsRequest {
            job_ids: (0..8).map(|i| format!("j{i}")).collect(),
            ..Default::default()
        };
        assert_eq!(
            many.resource_ids(),
            "job_id=j0 job_id=j1 job_id=j2 job_id=j3 job_id=j4 (+3 more)"
        );
        assert_eq!(pb::ListBackupPoliciesRequest::default().resource_ids(), "");
    }
}
