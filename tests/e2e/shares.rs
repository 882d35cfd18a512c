//! Backup sharing end to end: share with other projects, who then list the
//! backup as theirs; list (both directions, filtered, paged), get, and stop
//! one share or every share of a backup.

use tonic::Code;
use vbs_gateway::proto::pb;

use crate::harness::{DISK_10GB, PROJECT_ID, UNKNOWN_ID, World, assert_rejected, assert_rejected_because};

const TARGET: &str = "7a7a7a7a7a7a4b4b8c8c9d9d9d9d9d9d";
const SECOND_TARGET: &str = "7a7a7a7a7a7a4b4b8c8c9d9d9d9d9d9e";
const THIRD_TARGET: &str = "7a7a7a7a7a7a4b4b8c8c9d9d9d9d9d9f";

async fn share(world: &World, backup_id: &str, targets: &[&str]) -> Vec<pb::BackupShare> {
    world
        .backups
        .clone()
        .share_backup(pb::ShareBackupRequest {
            backup_id: backup_id.into(),
            to_project_ids: targets.iter().map(|t| t.to_string()).collect(),
            ..Default::default()
        })
        .await
        .expect("ShareBackup")
        .into_inner()
        .shares
}

async fn list(world: &World, request: pb::ListSharesRequest) -> pb::ListSharesResponse {
    world
        .backups
        .clone()
        .list_shares(request)
        .await
        .expect("ListShares")
        .into_inner()
}

async fn backups_seen_by(world: &World, project_id: &str) -> Vec<String> {
    let page = world
        .backups
        .clone()
        .list_backups(pb::ListBackupsRequest {
            project_id: project_id.into(),
            ..Default::default()
        })
        .await
        .expect("ListBackups")
        .into_inner();
    page.backups.into_iter().map(|b| b.id).collect()
}

#[tokio::test]
async fn a_shared_backup_is_seen_by_its_target_until_the_share_stops() {
    let world = World::start().await;
    let backup_id = world.make_backup(DISK_10GB, "to-share").await;
    world.sim.clear_requests();

    let made = share(&world, &backup_id, &[TARGET]).await;
    assert_eq!(made.len(), 1);
    assert_eq!(
        (made[0].from_project_id.as_str(), made[0].to_project_id.as_str()),
        (PROJECT_ID, TARGET)
    );
    assert!(made[0].created_at.is_some(), "a time without a zone parses");
    let sent: serde_json::Value = serde_json::from_str(&world.upstream_requests()[0].body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"shared": {"backup_id": backup_id, "to_project_ids": [TARGET]}})
    );
    assert!(backups_seen_by(&world, TARGET).await.contains(&backup_id));

    let received = list(
        &world,
        pb::ListSharesRequest {
            project_id: TARGET.into(),
            share_to_me: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(received.shares.len(), 1);
    let backup = received.shares[0].backup.clone().expect("nested backup");
    assert_eq!(backup.id, backup_id);
    assert!(received.next_page_token.is_empty());

    let one = world
        .backups
        .clone()
        .get_share(pb::GetShareRequest {
            share_id: made[0].id.clone(),
            ..Default::default()
        })
        .await
        .expect("GetShare")
        .into_inner()
        .share
        .expect("share");
    assert_eq!(one.backup_id, backup_id);

    world
        .backups
        .clone()
        .delete_share(pb::DeleteShareRequest {
            id: made[0].id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteShare");
    assert!(!backups_seen_by(&world, TARGET).await.contains(&backup_id));
    let gone = world
        .backups
        .clone()
        .get_share(pb::GetShareRequest {
            share_id: made[0].id.clone(),
            ..Default::default()
        })
        .await
        .expect_err("stopped share");
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn shares_page_by_marker_and_stop_together_by_backup_id() {
    let world = World::start().await;
    let backup_id = world.make_backup(DISK_10GB, "to-many").await;
    share(&world, &backup_id, &[TARGET, SECOND_TARGET, THIRD_TARGET]).await;

    let mut seen = Vec::new();
    let mut marker = String::new();
    for _ in 0..4 {
        let page = list(
            &world,
            pb::ListSharesRequest {
                backup_id: backup_id.clone(),
                page_size: 2,
                page_token: marker.clone(),
                ..Default::default()
            },
        )
        .await;
        seen.extend(page.shares.into_iter().map(|s| s.to_project_id));
        if page.next_page_token.is_empty() {
            break;
        }
        marker = page.next_page_token;
    }
    seen.sort();
    assert_eq!(seen, [TARGET, SECOND_TARGET, THIRD_TARGET]);
    let query = world
        .upstream_requests()
        .last()
        .unwrap()
        .query
        .clone()
        .unwrap_or_default();
    assert!(query.contains("marker=") && query.contains("limit=2"), "{query}");

    world
        .backups
        .clone()
        .delete_share(pb::DeleteShareRequest {
            id: backup_id.clone(),
            is_backup_id: true,
            ..Default::default()
        })
        .await
        .expect("DeleteShare by backup id");
    assert_eq!(
        world.upstream_requests().last().unwrap().query.as_deref(),
        Some("is_backup_id=true")
    );
    let left = list(&world, pb::ListSharesRequest::default()).await;
    assert!(left.shares.is_empty());
}

#[tokio::test]
async fn share_requests_are_checked_before_anything_is_sent() {
    let world = World::start().await;
    let mut backups = world.backups.clone();
    let request = |targets: &[&str]| pb::ShareBackupRequest {
        backup_id: UNKNOWN_ID.into(),
        to_project_ids: targets.iter().map(|t| t.to_string()).collect(),
        ..Default::default()
    };
    assert_rejected_because(
        &world,
        backups.share_backup(request(&[])).await,
        "to_project_ids",
        "FIELD_REQUIRED",
    );
    assert_rejected_because(
        &world,
        backups.share_backup(request(&[PROJECT_ID])).await,
        "to_project_ids[0]",
        "OWN_PROJECT",
    );
    assert_rejected_because(
        &world,
        backups.share_backup(request(&[TARGET, TARGET])).await,
        "to_project_ids[1]",
        "DUPLICATE_VALUE",
    );
    assert_rejected_because(
        &world,
        backups.share_backup(request(&["../x"])).await,
        "to_project_ids[0]",
        "BAD_CHARACTER",
    );
    let get = pb::GetShareRequest {
        share_id: "a/b".into(),
        ..Default::default()
    };
    assert_rejected(&world, backups.get_share(get).await, "share_id");
    let delete = pb::DeleteShareRequest {
        id: "..".into(),
        ..Default::default()
    };
    assert_rejected(&world, backups.delete_share(delete).await, "id");
    let listed = pb::ListSharesRequest {
        page_size: 1001,
        page_token: "x".into(),
        ..Default::default()
    };
    assert_rejected(&world, backups.list_shares(listed).await, "page_size");
}

#[tokio::test]
async fn sharing_an_unknown_backup_is_not_found() {
    let world = World::start().await;
    let status = world
        .backups
        .clone()
        .share_backup(pb::ShareBackupRequest {
            backup_id: UNKNOWN_ID.into(),
            to_project_ids: vec![TARGET.into()],
            ..Default::default()
        })
        .await
        .expect_err("unknown backup");
    assert_eq!(status.code(), Code::NotFound);
}
