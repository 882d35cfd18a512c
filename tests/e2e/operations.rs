//! google.longrunning.Operations end to end: the jobs' operation names, the
//! typed response of a done operation, a failed job as the operation's
//! error, listing, and the calls VBS jobs cannot support.

use prost::Message;
use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use vbs_gateway::proto::longrunning::{self as lro, operation, operations_client::OperationsClient};
use vbs_gateway::proto::pb::{self, BackupStatus, JobStatus};

use crate::harness::{DISK_10GB, DISK_20GB, PROJECT_ID, World};

fn operations(world: &World) -> OperationsClient<Channel> {
    OperationsClient::new(world.channel.clone())
}

async fn create(world: &World, name: &str) -> pb::CreateBackupResponse {
    world
        .backups
        .clone()
        .create_backup(pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: name.into(),
            ..Default::default()
        })
        .await
        .expect("CreateBackup")
        .into_inner()
}

async fn get(world: &World, name: &str) -> lro::Operation {
    operations(world)
        .get_operation(lro::GetOperationRequest { name: name.into() })
        .await
        .expect("GetOperation")
        .into_inner()
}

fn unpack<M: Message + Default>(any: &prost_types::Any, full_name: &str) -> M {
    assert_eq!(any.type_url, format!("type.googleapis.com/{full_name}"));
    M::decode(any.value.as_slice()).expect("packed message decodes")
}

#[tokio::test]
async fn a_backup_job_is_an_operation_whose_response_is_the_backup() {
    let world = World::start().await;
    let started = create(&world, "lro").await;
    let operation = started.operation.expect("operation in CreateBackupResponse");
    assert_eq!(operation.name, format!("projects/{PROJECT_ID}/jobs/{}", started.job_id));
    assert!(!operation.done && operation.result.is_none());

    let running = get(&world, &operation.name).await;
    assert!(!running.done, "{running:?}");
    let job: pb::Job = unpack(running.metadata.as_ref().expect("metadata"), "vbs.v2.Job");
    assert_eq!(job.job_id, started.job_id);
    assert_eq!(job.operation_name, operation.name);

    let finished = world.finish_job(&started.job_id).await;
    let Some(pb::job::Result::Backup(made)) = finished.result.clone() else {
        panic!("a backup job has a typed backup result: {finished:?}");
    };
    assert_eq!(made.backup_id, finished.entities["backup_id"]);
    assert_eq!(made.volume_id, DISK_10GB);

    let done = get(&world, &operation.name).await;
    assert!(done.done);
    let Some(operation::Result::Response(response)) = &done.result else {
        panic!("a successful job's operation has a response: {done:?}");
    };
    let backup: pb::Backup = unpack(response, "vbs.v2.Backup");
    assert_eq!(backup.id, made.backup_id);
    assert_eq!(backup.status(), BackupStatus::Available);
    assert_eq!(backup.name, "lro");
}

#[tokio::test]
async fn wait_operation_answers_at_once_for_a_done_job_and_by_its_timeout_otherwise() {
    let world = World::start().await;
    let started = create(&world, "wait").await;
    let name = started.operation.unwrap().name;
    let pending = operations(&world)
        .wait_operation(lro::WaitOperationRequest {
            name: name.clone(),
            timeout: Some(prost_types::Duration::default()),
        })
        .await
        .expect("WaitOperation with a zero timeout")
        .into_inner();
    assert!(!pending.done);

    world.finish_job(&started.job_id).await;
    let done = operations(&world)
        .wait_operation(lro::WaitOperationRequest { name, timeout: None })
        .await
        .expect("WaitOperation")
        .into_inner();
    assert!(done.done && matches!(done.result, Some(operation::Result::Response(_))));
}

#[tokio::test]
async fn a_restore_answers_its_target_and_a_failed_job_its_error() {
    let world = World::start().await;
    let backup_id = world.make_backup(DISK_10GB, "restore-me").await;
    let restore = world
        .backups
        .clone()
        .restore_backup(pb::RestoreBackupRequest {
            backup_id: backup_id.clone(),
            volume_id: DISK_20GB.into(),
            ..Default::default()
        })
        .await
        .expect("RestoreBackup")
        .into_inner();
    world.finish_job(&restore.job_id).await;
    let done = get(&world, &restore.operation.unwrap().name).await;
    let Some(operation::Result::Response(response)) = &done.result else {
        panic!("{done:?}");
    };
    let result: pb::RestoreJobResult = unpack(response, "vbs.v2.RestoreJobResult");
    assert_eq!(
        (result.backup_id.as_str(), result.target_volume_id.as_str()),
        (backup_id.as_str(), DISK_20GB)
    );

    world.sim.fail_next_jobs(1, "VolumeBackup.0064", "the disk went away");
    let failing = create(&world, "doomed").await;
    let job = world.finish_job(&failing.job_id).await;
    assert_eq!(job.status(), JobStatus::Fail);
    let failed = get(&world, &failing.operation.unwrap().name).await;
    assert!(failed.done);
    let Some(operation::Result::Error(error)) = failed.result else {
        panic!("a failed job's operation has an error");
    };
    assert_eq!(error.code, Code::Unknown as i32);
    assert_eq!(error.message, "the disk went away");
    let status = tonic::Status::with_details(
        Code::from(error.code),
        error.message.clone(),
        error.encode_to_vec().into(),
    );
    let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
    assert_eq!(info.reason, "JOB_FAILED");
    assert_eq!(info.metadata["vbsCode"], "VolumeBackup.0064");
    assert_eq!(info.metadata["jobId"], failing.job_id);
}

#[tokio::test]
async fn list_operations_pages_the_jobs_this_gateway_started_newest_first() {
    let world = World::start().await;
    let mut names = Vec::new();
    for i in 0..3 {
        let started = create(&world, &format!("listed-{i}")).await;
        world.finish_job(&started.job_id).await;
        names.push(started.operation.unwrap().name);
    }
    names.reverse();
    let mut seen = Vec::new();
    let mut page_token = String::new();
    for _ in 0..5 {
        let page = operations(&world)
            .list_operations(lro::ListOperationsRequest {
                name: format!("projects/{PROJECT_ID}/jobs"),
                page_size: 2,
                page_token,
                ..Default::default()
            })
            .await
            .expect("ListOperations")
            .into_inner();
        assert!(page.operations.iter().all(|op| op.done));
        seen.extend(page.operations.into_iter().map(|op| op.name));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(seen, names);
    let other = operations(&world)
        .list_operations(lro::ListOperationsRequest {
            name: "projects/someone-else/jobs".into(),
            ..Default::default()
        })
        .await
        .expect("ListOperations of a project with none")
        .into_inner();
    assert!(other.operations.is_empty());
}

#[tokio::test]
async fn a_page_reads_its_operations_at_once() {
    const JOBS: usize = 4;
    let world = World::start().await;
    let mut names = Vec::new();
    for i in 0..JOBS {
        let started = create(&world, &format!("together-{i}")).await;
        world.finish_job(&started.job_id).await;
        names.push(started.operation.unwrap().name);
    }
    names.reverse();
    // The page's job reads are held until all of them are in: read one
    // after another, the first would wait until the call's deadline.
    world.sim.gather_next_requests(JOBS);
    let mut request = tonic::Request::new(lro::ListOperationsRequest {
        name: format!("projects/{PROJECT_ID}/jobs"),
        ..Default::default()
    });
    request.set_timeout(std::time::Duration::from_secs(20));
    let page = operations(&world)
        .list_operations(request)
        .await
        .expect("ListOperations reads its page at once")
        .into_inner();
    let listed: Vec<(String, bool)> = page.operations.into_iter().map(|op| (op.name, op.done)).collect();
    assert_eq!(listed, names.into_iter().map(|name| (name, true)).collect::<Vec<_>>());
}

#[tokio::test]
async fn cancel_and_delete_say_why_not_and_bad_names_are_refused() {
    let world = World::start().await;
    let name = create(&world, "kept").await.operation.unwrap().name;
    let mut client = operations(&world);
    let cancel = client
        .cancel_operation(lro::CancelOperationRequest { name: name.clone() })
        .await
        .expect_err("cancel");
    let delete = client
        .delete_operation(lro::DeleteOperationRequest { name })
        .await
        .expect_err("delete");
    for (status, reason) in [
        (cancel, "OPERATION_CANCEL_UNSUPPORTED"),
        (delete, "OPERATION_DELETE_UNSUPPORTED"),
    ] {
        assert_eq!(status.code(), Code::Unimplemented);
        assert_eq!(status.get_error_details().error_info().unwrap().reason, reason);
    }
    world.sim.clear_requests();
    for bad in ["operations/x", "projects/p/jobs/../../x", "projects/p/backups/b", ""] {
        let status = client
            .get_operation(lro::GetOperationRequest { name: bad.into() })
            .await
            .expect_err(bad);
        assert_eq!(status.code(), Code::InvalidArgument, "{bad}");
    }
    assert!(world.upstream_requests().is_empty(), "nothing is sent for a bad name");
}
