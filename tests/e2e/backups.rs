//! BackupService end to end: every RPC through gRPC -> gateway -> HTTP ->
//! simulator, with the upstream request checked where its shape matters.

use tonic::Code;
use vbs_gateway::proto::pb::{self, BackupStatus, JobStatus};

use crate::harness::{DISK_5GB, DISK_10GB, DISK_20GB, DISK_40GB_IN_USE, UNKNOWN_ID, World, error_metadata, vbs_code};

#[tokio::test]
async fn create_job_get_restore_delete_walk() {
    let world = World::start().await;
    let mut backups = world.backups.clone();

    let created = backups
        .create_backup(pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "nightly-01".into(),
            description: "before upgrade".into(),
            tags: vec![pb::Tag {
                key: "team".into(),
                value: "storage".into(),
            }],
            full_backup: Some(true),
            ..Default::default()
        })
        .await
        .expect("CreateBackup")
        .into_inner();
    let sent = &world.upstream_requests()[0];
    assert_eq!(
        (sent.method.as_str(), sent.path.as_str()),
        ("POST", "/v2/5f0e1d2c3b4a49586776a5b4c3d2e1f0/cloudbackups")
    );
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body["backup"]["extend_param"]["FullBackup"], "true");
    assert_eq!(body["backup"]["tags"][0]["key"], "team");

    let job = world.job(&created.job_id).await;
    assert_eq!(job.status(), JobStatus::Init);
    assert_eq!(job.job_type, "bksCreateBackup");
    world.advance(1);
    assert_eq!(world.job(&created.job_id).await.status(), JobStatus::Running);
    let done = world.finish_job(&created.job_id).await;
    assert_eq!(done.status(), JobStatus::Success);
    assert!(done.begin_time.is_some() && done.end_time.is_some());
    let backup_id = done.entities["backup_id"].clone();
    assert_eq!(done.entities["volume_id"], DISK_10GB);

    let backup = world.get_backup(&backup_id).await.expect("GetBackup");
    assert_eq!(backup.status(), BackupStatus::Available);
    assert_eq!(backup.status_raw, "available");
    assert_eq!(backup.name, "nightly-01");
    assert_eq!(backup.volume_id, DISK_10GB);
    assert_eq!(backup.size, 10);
    let description = backup.description.expect("description");
    assert_eq!(description.text, "before upgrade");
    assert_eq!(description.incremental, Some(false));
    assert!(description.raw.contains("DESC"));
    assert!(backup.created_at.is_some());
    assert!(backup.service_metadata.is_some());
    assert_eq!(backup.tenant_id, "5f0e1d2c3b4a49586776a5b4c3d2e1f0");

    let restore = backups
        .restore_backup(pb::RestoreBackupRequest {
            backup_id: backup_id.clone(),
            volume_id: DISK_20GB.into(),
            ..Default::default()
        })
        .await
        .expect("RestoreBackup")
        .into_inner();
    world.advance(1);
    let restoring = world.get_backup(&backup_id).await.expect("GetBackup");
    assert_eq!(restoring.status(), BackupStatus::Restoring);
    let restored = world.finish_job(&restore.job_id).await;
    assert_eq!(
        (restored.status(), restored.job_type.as_str()),
        (JobStatus::Success, "bksRestoreBackup")
    );

    backups
        .delete_backup(pb::DeleteBackupRequest {
            backup_id: backup_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteBackup");
    world.advance(10);
    let gone = world
        .get_backup(&backup_id)
        .await
        .expect_err("deleted backups are gone");
    assert_eq!(gone.code(), Code::NotFound);
    assert_eq!(error_metadata(&gone).get("httpStatus").map(String::as_str), Some("404"));
}

#[tokio::test]
async fn attached_disks_can_be_backed_up_but_not_restored_onto() {
    let world = World::start().await;
    let backup_id = world.make_backup(DISK_40GB_IN_USE, "boot").await;
    let status = world
        .backups
        .clone()
        .restore_backup(pb::RestoreBackupRequest {
            backup_id,
            volume_id: DISK_40GB_IN_USE.into(),
            ..Default::default()
        })
        .await
        .expect_err("an in-use disk is no restore target");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(vbs_code(&status).as_deref(), Some("VolumeBackup.0205"));
}

#[tokio::test]
async fn incremental_backups_say_so() {
    let world = World::start().await;
    world.make_backup(DISK_10GB, "first").await;
    let second = world.make_backup(DISK_10GB, "second").await;
    let backup = world.get_backup(&second).await.expect("GetBackup");
    assert_eq!(backup.description.and_then(|d| d.incremental), Some(true));
}

#[tokio::test]
#[allow(deprecated)]
async fn deprecated_delete_runs_a_job() {
    let world = World::start().await;
    let backup_id = world.make_backup(DISK_10GB, "old").await;
    let started = world
        .backups
        .clone()
        .delete_cloud_backup(pb::DeleteCloudBackupRequest {
            backup_id: backup_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteCloudBackup")
        .into_inner();
    let job = world.finish_job(&started.job_id).await;
    assert_eq!(
        (job.status(), job.job_type.as_str()),
        (JobStatus::Success, "bksDeleteBackup")
    );
    let gone = world.get_backup(&backup_id).await.expect_err("deleted");
    assert_eq!(gone.code(), Code::NotFound);
}

#[tokio::test]
async fn native_create_list_and_restore() {
    let world = World::start().await;
    let mut backups = world.backups.clone();
    let created = backups
        .create_native_backup(pb::CreateNativeBackupRequest {
            volume_id: DISK_10GB.into(),
            snapshot_id: "2bb856e1-b3d8-4432-a858-09e4ce939389".into(),
            name: "native-1".into(),
            description: "Backup_Demo".into(),
            force: Some(true),
            ..Default::default()
        })
        .await
        .expect("CreateNativeBackup")
        .into_inner()
        .backup
        .expect("backup");
    assert_eq!(created.name, "native-1");
    assert!(
        created
            .links
            .iter()
            .any(|l| l.rel == "self" && l.href.contains(&created.id))
    );
    world.advance(10);

    let summaries = backups
        .list_backups(pb::ListBackupsRequest::default())
        .await
        .expect("ListBackups")
        .into_inner();
    assert_eq!(summaries.backups.len(), 1);
    assert_eq!(summaries.backups[0].id, created.id);
    assert!(summaries.next_page_token.is_empty());

    let details = backups
        .list_backup_details(pb::ListBackupDetailsRequest {
            volume_id: DISK_10GB.into(),
            status: BackupStatus::Available as i32,
            ..Default::default()
        })
        .await
        .expect("ListBackupDetails")
        .into_inner();
    let detail = &details.backups[0];
    assert_eq!(detail.snapshot_id, "2bb856e1-b3d8-4432-a858-09e4ce939389");
    assert_eq!(
        detail.description.as_ref().map(|d| d.text.as_str()),
        Some("Backup_Demo")
    );
    let query = world
        .upstream_requests()
        .last()
        .unwrap()
        .query
        .clone()
        .unwrap_or_default();
    assert!(
        query.contains("status=available") && query.contains(DISK_10GB),
        "{query}"
    );

    let restored = backups
        .restore_native_backup(pb::RestoreNativeBackupRequest {
            backup_id: created.id.clone(),
            volume_id: DISK_20GB.into(),
            ..Default::default()
        })
        .await
        .expect("RestoreNativeBackup")
        .into_inner();
    assert_eq!(restored.backup_id, created.id);
    assert_eq!(restored.volume_id, DISK_20GB);
    assert_eq!(restored.volume_name, "db-data");
}

#[tokio::test]
async fn pages_through_many_backups_with_limit_and_marker() {
    let world = World::start().await;
    let mut made = Vec::new();
    for i in 0..26 {
        made.push(world.make_backup(DISK_10GB, &format!("b-{i:02}")).await);
    }
    let mut backups = world.backups.clone();
    let mut seen = Vec::new();
    let mut marker = String::new();
    let mut pages = 0;
    loop {
        let page = backups
            .list_backup_details(pb::ListBackupDetailsRequest {
                page_size: 10,
                page_token: marker.clone(),
                sort_key: "name".into(),
                sort_dir: "asc".into(),
                ..Default::default()
            })
            .await
            .expect("ListBackupDetails")
            .into_inner();
        pages += 1;
        seen.extend(page.backups.iter().map(|b| b.name.clone()));
        if page.next_page_token.is_empty() {
            assert!(page.backups_links.is_empty());
            break;
        }
        let next = page.backups_links.iter().find(|l| l.rel == "next").expect("next link");
        assert!(next.href.starts_with(&world.sim.url()), "{}", next.href);
        marker = page.next_page_token;
        assert!(pages < 10, "paging does not end");
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..26).map(|i| format!("b-{i:02}")).collect();
    assert_eq!(seen, expected);

    let mut ids = Vec::new();
    let mut marker = String::new();
    loop {
        let page = backups
            .list_backups(pb::ListBackupsRequest {
                page_size: 7,
                page_token: marker,
                ..Default::default()
            })
            .await
            .expect("ListBackups")
            .into_inner();
        ids.extend(page.backups.into_iter().map(|b| b.id));
        if page.next_page_token.is_empty() {
            break;
        }
        marker = page.next_page_token;
    }
    ids.sort();
    made.sort();
    assert_eq!(ids, made);
}

#[tokio::test]
async fn a_failed_job_is_data_not_an_error() {
    let world = World::start().await;
    world
        .sim
        .fail_next_jobs(1, "VolumeBackup.0064", "fsp cinder return backup status is error");
    let created = world
        .backups
        .clone()
        .create_backup(pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "doomed".into(),
            ..Default::default()
        })
        .await
        .expect("CreateBackup")
        .into_inner();
    let job = world.finish_job(&created.job_id).await;
    assert_eq!(job.status(), JobStatus::Fail);
    assert_eq!(job.status_raw, "FAIL");
    assert_eq!(job.error_code, "VolumeBackup.0064");
    assert_eq!(job.fail_reason, "fsp cinder return backup status is error");
    let backup_id = job.entities["backup_id"].clone();
    let backup = world.get_backup(&backup_id).await.expect("GetBackup");
    assert_eq!(backup.status(), BackupStatus::Error);
    assert!(!backup.fail_reason.is_empty());
}

#[tokio::test]
async fn upstream_rules_come_back_typed() {
    let world = World::start().await;
    let mut backups = world.backups.clone();
    let unknown_disk = backups
        .create_backup(pb::CreateBackupRequest {
            volume_id: UNKNOWN_ID.into(),
            name: "x".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown disk");
    assert_eq!(unknown_disk.code(), Code::NotFound);
    let meta = error_metadata(&unknown_disk);
    assert_eq!(meta.get("vbsCode").map(String::as_str), Some("VolumeBackup.0021"));
    assert_eq!(meta.get("httpStatus").map(String::as_str), Some("404"));

    backups
        .create_backup(pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "first".into(),
            ..Default::default()
        })
        .await
        .expect("first backup");
    let busy = backups
        .create_backup(pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "second".into(),
            ..Default::default()
        })
        .await
        .expect_err("the disk's last backup is unfinished");
    assert_eq!(busy.code(), Code::FailedPrecondition);
    assert_eq!(vbs_code(&busy).as_deref(), Some("VolumeBackup.0013"));

    let backup_id = world.make_backup(DISK_20GB, "big").await;
    let too_small = backups
        .restore_backup(pb::RestoreBackupRequest {
            backup_id,
            volume_id: DISK_5GB.into(),
            ..Default::default()
        })
        .await
        .expect_err("target smaller than the backup");
    assert_eq!(too_small.code(), Code::InvalidArgument);
    assert_eq!(vbs_code(&too_small).as_deref(), Some("VolumeBackup.0209"));
}

#[tokio::test]
async fn the_request_project_wins_over_the_default() {
    let world = World::start().await;
    world
        .backups
        .clone()
        .list_backups(pb::ListBackupsRequest {
            project_id: "0123456789abcdef0123456789abcdef".into(),
            ..Default::default()
        })
        .await
        .expect("ListBackups");
    let sent = &world.upstream_requests()[0];
    assert_eq!(sent.path, "/v2/0123456789abcdef0123456789abcdef/backups");
    let project_header = sent
        .headers
        .iter()
        .find(|(k, _)| k == "x-project-id")
        .map(|(_, v)| v.as_str());
    assert_eq!(project_header, Some("0123456789abcdef0123456789abcdef"));
}
