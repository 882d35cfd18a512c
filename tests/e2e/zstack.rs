//! ZStackBackupService end to end: the gateway logs in with its account,
//! backs a VM up from its root volume, follows the API job to the end, renews
//! an expired session by logging in again, and maps ZStack's error object.

use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use vbs_gateway::proto::pb::WaitOutcome;
use vbs_gateway::proto::zstack::v1::{
    self as zs, watch_vm_backup_job_response::Event, z_stack_backup_service_client::ZStackBackupServiceClient,
};
use vbs_simulator::zstack::{ARGUMENT_ERROR, SESSION_TTL, ZSTACK_BACKUP_STORAGES, ZSTACK_ROOT_VOLUMES};
use vbs_simulator::{RecordedRequest, SimulatorConfig};

use crate::harness::{World, ZSTACK_PASSWORD, listed_operations, vbs_code};

const PATIENCE: Duration = Duration::from_secs(10);
const LOGIN_PATH: &str = "/zstack/v1/accounts/login";

fn client(world: &World) -> ZStackBackupServiceClient<Channel> {
    ZStackBackupServiceClient::new(world.channel.clone())
}

fn zstack_requests(world: &World) -> Vec<RecordedRequest> {
    world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with("/zstack/"))
        .collect()
}

fn backup_request(root_volume_uuid: &str) -> zs::CreateVmBackupRequest {
    zs::CreateVmBackupRequest {
        root_volume_uuid: root_volume_uuid.into(),
        backup_storage_uuid: ZSTACK_BACKUP_STORAGES[0].into(),
        name: "nightly".into(),
        description: "VM backup".into(),
        volume_read_bandwidth: Some(104_857_600),
        user_tags: vec!["team::web".into()],
        ..Default::default()
    }
}

async fn create(world: &World, root_volume_uuid: &str) -> zs::CreateVmBackupResponse {
    client(world)
        .create_vm_backup(backup_request(root_volume_uuid))
        .await
        .expect("CreateVmBackup")
        .into_inner()
}

async fn wait(world: &World, job_uuid: &str) -> zs::WaitVmBackupJobResponse {
    let mut client = client(world);
    let request = zs::WaitVmBackupJobRequest {
        job_uuid: job_uuid.into(),
        ..Default::default()
    };
    let waiting = tokio::spawn(async move { client.wait_vm_backup_job(request).await });
    world.advance(3);
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("the wait answers")
        .unwrap()
        .expect("WaitVmBackupJob")
        .into_inner()
}

#[tokio::test]
async fn a_vm_backup_is_made_with_a_session_and_watched_to_its_end() {
    let world = World::start().await;
    let created = create(&world, ZSTACK_ROOT_VOLUMES[1]).await;
    assert_eq!(created.job_uuid.len(), 32, "{created:?}");
    assert_eq!(
        created.operation.as_ref().map(|op| op.name.as_str()),
        Some(format!("zstack/jobs/{}", created.job_uuid).as_str())
    );

    let sent = zstack_requests(&world);
    assert_eq!(sent[0].path, LOGIN_PATH);
    assert_eq!(sent[0].method, "PUT");
    let create_call = &sent[1];
    assert_eq!(
        create_call.path,
        format!("/zstack/v1/volumes/{}/vm-backups", ZSTACK_ROOT_VOLUMES[1])
    );
    let authorization = create_call
        .headers
        .iter()
        .find(|(name, _)| name == "authorization")
        .map(|(_, value)| value.clone())
        .expect("Authorization");
    assert!(authorization.starts_with("OAuth "), "{authorization}");
    assert!(!create_call.headers.iter().any(|(name, _)| name == "x-project-id"));
    let body: serde_json::Value = serde_json::from_str(&create_call.body).unwrap();
    assert_eq!(body["params"]["backupStorageUuid"], ZSTACK_BACKUP_STORAGES[0]);
    assert_eq!(body["params"]["volumeReadBandwidth"], 104_857_600);
    assert_eq!(body["userTags"], serde_json::json!(["team::web"]));

    let mut stream = client(&world)
        .watch_vm_backup_job(zs::WatchVmBackupJobRequest {
            job_uuid: created.job_uuid.clone(),
        })
        .await
        .expect("WatchVmBackupJob")
        .into_inner();
    assert_eq!(next_job(&mut stream).await.state(), zs::JobState::Running);
    world.advance(3);
    let done = next_job(&mut stream).await;
    assert_eq!(done.state(), zs::JobState::Succeeded, "{done:?}");
    assert_eq!(done.inventories.len(), 3, "root and two data volumes");
    let root = &done.inventories[0];
    assert_eq!(root.volume_uuid, ZSTACK_ROOT_VOLUMES[1]);
    assert_eq!(root.size, 1_073_741_824);
    assert!(root.create_date.is_some(), "{}", root.create_date_raw);
    assert_eq!(
        root.backup_storage_refs[0].backup_storage_uuid,
        ZSTACK_BACKUP_STORAGES[0]
    );
    let end = tokio::time::timeout(PATIENCE, stream.message()).await.unwrap();
    assert!(end.expect("ends with OK").is_none());
    assert_eq!(world.sim.zstack_login_count(), 1, "one session for every call");
}

#[tokio::test]
async fn an_expired_session_is_renewed_once_and_the_call_sent_again() {
    let world = World::start().await;
    let first = create(&world, ZSTACK_ROOT_VOLUMES[0]).await;
    let reply = wait(&world, &first.job_uuid).await;
    assert_eq!(reply.outcome(), WaitOutcome::Terminal);
    assert_eq!(world.sim.zstack_login_count(), 1);

    world.sim.advance(SESSION_TTL);
    world.sim.clear_requests();
    let job = client(&world)
        .get_vm_backup_job(zs::GetVmBackupJobRequest {
            job_uuid: first.job_uuid.clone(),
        })
        .await
        .expect("answered after logging in again")
        .into_inner()
        .job
        .unwrap();
    assert_eq!(job.state(), zs::JobState::Succeeded);
    assert_eq!(world.sim.zstack_login_count(), 2);
    let paths: Vec<String> = zstack_requests(&world).into_iter().map(|r| r.path).collect();
    let get = format!("/zstack/v1/api-jobs/{}", first.job_uuid);
    assert_eq!(
        paths,
        [get.clone(), LOGIN_PATH.to_string(), get],
        "rejected, logged in, sent again"
    );
}

#[tokio::test]
async fn a_failed_backup_is_a_failed_job_with_zstacks_error() {
    let world = World::start().await;
    world
        .sim
        .fail_next_zstack_backups(1, "BS.1001", "the backup storage is full");
    let created = create(&world, ZSTACK_ROOT_VOLUMES[0]).await;
    let job = wait(&world, &created.job_uuid).await.job.unwrap();
    assert_eq!(job.state(), zs::JobState::Failed);
    let error = job.error.expect("ZStack's error");
    assert_eq!(error.code, "BS.1001");
    assert_eq!(error.details, "the backup storage is full");
    assert!(job.inventories.is_empty());
}

#[tokio::test]
async fn requests_that_break_a_rule_are_not_sent() {
    let world = World::start().await;
    let cases = [
        (
            backup_request("2ae6b881-bb12-39cd-907d-48993e86a2e8"),
            "root_volume_uuid",
        ),
        (
            zs::CreateVmBackupRequest {
                backup_storage_uuid: String::new(),
                ..backup_request(ZSTACK_ROOT_VOLUMES[0])
            },
            "backup_storage_uuid",
        ),
        (
            zs::CreateVmBackupRequest {
                name: String::new(),
                ..backup_request(ZSTACK_ROOT_VOLUMES[0])
            },
            "name",
        ),
        (
            zs::CreateVmBackupRequest {
                network_write_bandwidth: Some(0),
                ..backup_request(ZSTACK_ROOT_VOLUMES[0])
            },
            "network_write_bandwidth",
        ),
    ];
    for (request, field) in cases {
        let status = client(&world).create_vm_backup(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let details = status.get_error_details();
        assert_eq!(
            details.bad_request().expect("BadRequest").field_violations[0].field,
            field
        );
    }
    let unsafe_job = client(&world)
        .wait_vm_backup_job(zs::WaitVmBackupJobRequest {
            job_uuid: "../../accounts/login".into(),
            ..Default::default()
        })
        .await
        .expect_err("not a uuid");
    assert_eq!(unsafe_job.code(), Code::InvalidArgument);
    assert!(
        zstack_requests(&world).is_empty(),
        "not even a login: {:?}",
        zstack_requests(&world)
    );
}

#[tokio::test]
async fn zstacks_error_object_is_mapped_by_the_error_table() {
    let world = World::start().await;
    let unknown_volume = "0123456789abcdef0123456789abcdef";
    let status = client(&world)
        .create_vm_backup(backup_request(unknown_volume))
        .await
        .expect_err("no such root volume");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert_eq!(vbs_code(&status).as_deref(), Some(ARGUMENT_ERROR));
    assert!(
        status.message().starts_with("ZStack rejected the request"),
        "{}",
        status.message()
    );
    assert!(
        status.message().contains(unknown_volume),
        "details carried: {}",
        status.message()
    );
}

#[tokio::test]
async fn a_wrong_password_is_refused_and_never_shown() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.zstack.password = Some(vbs_gateway::rest::credentials::Secret::new("not-the-password"));
    })
    .await;
    let status = client(&world)
        .create_vm_backup(backup_request(ZSTACK_ROOT_VOLUMES[0]))
        .await
        .expect_err("ZStack refuses the login");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(status.message().contains("--zstack-account"), "{}", status.message());
    assert!(!status.message().contains("not-the-password"));
    let sent = zstack_requests(&world);
    assert_eq!(sent.len(), 1, "only the login: {sent:?}");
    assert_eq!(sent[0].body, "<redacted>");
    assert!(!format!("{sent:?}").contains(ZSTACK_PASSWORD));
}

#[tokio::test]
async fn without_an_endpoint_every_rpc_is_unimplemented_and_names_the_flag() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.zstack = Default::default();
    })
    .await;
    let status = client(&world)
        .get_vm_backup_job(zs::GetVmBackupJobRequest {
            job_uuid: "967a26b7431c49c0b1d50d709ef1aef3".into(),
        })
        .await
        .expect_err("not configured");
    assert_eq!(status.code(), Code::Unimplemented);
    assert!(status.message().contains("--zstack-endpoint"), "{}", status.message());
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.reason, "SERVICE_NOT_CONFIGURED");
    assert!(zstack_requests(&world).is_empty());
}

async fn next_job(stream: &mut tonic::Streaming<zs::WatchVmBackupJobResponse>) -> zs::Job {
    loop {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("the stream said nothing for 10 s")
            .expect("no error")
            .expect("a message, not the end");
        if let Some(Event::Job(job)) = message.event {
            assert!(message.observed_at.is_some());
            return job;
        }
    }
}

#[tokio::test]
async fn a_zstack_job_is_an_operation_done_with_the_job_or_zstacks_error() {
    use vbs_gateway::proto::longrunning::{self as lro, operation, operations_client::OperationsClient};

    let world = World::start().await;
    let mut operations = OperationsClient::new(world.channel.clone());
    let name = create(&world, ZSTACK_ROOT_VOLUMES[1])
        .await
        .operation
        .expect("operation")
        .name;
    let running = operations
        .get_operation(lro::GetOperationRequest { name: name.clone() })
        .await
        .expect("GetOperation")
        .into_inner();
    assert!(!running.done, "{running:?}");
    let waiting = tokio::spawn({
        let mut operations = operations.clone();
        let name = name.clone();
        async move {
            operations
                .wait_operation(lro::WaitOperationRequest { name, timeout: None })
                .await
        }
    });
    world.advance(3);
    let done = tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("WaitOperation answers")
        .unwrap()
        .expect("WaitOperation")
        .into_inner();
    let Some(operation::Result::Response(response)) = done.result else {
        panic!("a succeeded job is the operation's response: {done:?}");
    };
    assert_eq!(response.type_url, "type.googleapis.com/zstack.v1.Job");

    world
        .sim
        .fail_next_zstack_backups(1, "BS.1001", "the backup storage is full");
    let failing = create(&world, ZSTACK_ROOT_VOLUMES[0]).await.operation.unwrap().name;
    world.advance(3);
    let failed = operations
        .get_operation(lro::GetOperationRequest { name: failing.clone() })
        .await
        .expect("GetOperation of a failed job")
        .into_inner();
    let Some(operation::Result::Error(error)) = failed.result else {
        panic!("a failed job is the operation's error: {failed:?}");
    };
    assert_eq!(error.message, "the backup storage is full");

    // Both are listed, newest first, each read again as it is now.
    let listed = listed_operations(&world.channel, "zstack/jobs").await;
    assert_eq!(listed, [(failing, true), (name, true)]);
}

#[tokio::test]
async fn a_create_retried_with_its_request_id_makes_one_vm_backup() {
    let world = World::start().await;
    let request = zs::CreateVmBackupRequest {
        request_id: "0d3f9a6e-2b1c-4e57-8f90-1a2b3c4d5e6f".into(),
        ..backup_request(ZSTACK_ROOT_VOLUMES[1])
    };
    let mut answers = Vec::new();
    for _ in 0..2 {
        let reply = client(&world).create_vm_backup(request.clone()).await.expect("create");
        answers.push(reply.into_inner().job_uuid);
    }
    assert_eq!(answers[0], answers[1], "the retry gets the first answer");
    let creates = zstack_requests(&world)
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/vm-backups"))
        .count();
    assert_eq!(creates, 1, "one create reached ZStack");
}
