//! What the gateway puts on the wire beyond the body: bodiless POSTs carry
//! `Content-Length: 0`, as the SDK sends them (some proxies answer 411 without).

use vbs_gateway::proto::pb::{self, PolicyStatus};

use crate::harness::{DISK_10GB, World};

fn content_length(world: &World, method: &str, path_end: &str) -> Option<String> {
    let request = world
        .upstream_requests()
        .into_iter()
        .rfind(|r| r.method == method && r.path.ends_with(path_end))
        .unwrap_or_else(|| panic!("no {method} ...{path_end} reached the simulator"));
    let lengths: Vec<&String> = request
        .headers
        .iter()
        .filter(|(name, _)| name == "content-length")
        .map(|(_, value)| value)
        .collect();
    assert!(lengths.len() <= 1, "one Content-Length at most: {lengths:?}");
    lengths.first().map(|value| value.to_string())
}

#[tokio::test]
async fn bodiless_posts_say_content_length_zero() {
    let world = World::start().await;
    let policy_id = world
        .policies
        .clone()
        .create_backup_policy(pb::CreateBackupPolicyRequest {
            backup_policy_name: "run-now".into(),
            scheduled_policy: Some(pb::ScheduledPolicy {
                start_time: "12:00".into(),
                frequency: Some(1),
                status: PolicyStatus::On as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("CreateBackupPolicy")
        .into_inner()
        .backup_policy_id;
    world
        .policies
        .clone()
        .execute_backup_policy(pb::ExecuteBackupPolicyRequest {
            backup_policy_id: policy_id.clone(),
            ..Default::default()
        })
        .await
        .expect("ExecuteBackupPolicy");
    assert_eq!(
        content_length(&world, "POST", &format!("{policy_id}/action")).as_deref(),
        Some("0")
    );

    let backup_id = world.make_backup(DISK_10GB, "to-delete").await;
    #[allow(deprecated)] // The deprecated call is one of the two bodiless POSTs.
    world
        .backups
        .clone()
        .delete_cloud_backup(pb::DeleteCloudBackupRequest {
            backup_id: backup_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteCloudBackup");
    assert_eq!(
        content_length(&world, "POST", &format!("cloudbackups/{backup_id}")).as_deref(),
        Some("0")
    );
}
