//! JobService end to end: job states, unknown jobs, project isolation.

use tonic::Code;
use vbs_gateway::proto::pb::{self, JobStatus};

use crate::harness::{DISK_10GB, World, vbs_code};

#[tokio::test]
async fn an_unknown_job_is_not_found() {
    let world = World::start().await;
    let status = world
        .jobs
        .clone()
        .get_job(pb::GetJobRequest {
            job_id: "4010b39b5281d3590152874bfa3b1604".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown job");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(vbs_code(&status).as_deref(), Some("common.0011"));
    let sent = &world.upstream_requests()[0];
    assert_eq!(
        sent.path,
        "/v1/5f0e1d2c3b4a49586776a5b4c3d2e1f0/jobs/4010b39b5281d3590152874bfa3b1604"
    );
}

#[tokio::test]
async fn jobs_belong_to_their_project() {
    let world = World::start().await;
    let job_id = world
        .backups
        .clone()
        .create_backup(pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "mine".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let elsewhere = world
        .jobs
        .clone()
        .get_job(pb::GetJobRequest {
            job_id: job_id.clone(),
            project_id: "0123456789abcdef0123456789abcdef".into(),
        })
        .await
        .expect_err("another project's job");
    assert_eq!(elsewhere.code(), Code::NotFound);
    let job = world.job(&job_id).await;
    assert_eq!(job.status(), JobStatus::Init);
    assert_eq!(job.status_raw, "INIT");
    assert_eq!(job.job_id, job_id);
    assert!(job.end_time.is_none());
    assert_eq!(job.entities.get("volume_id").map(String::as_str), Some(DISK_10GB));
}
