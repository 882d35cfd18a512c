//! Safe retries end to end: writes sent with a `request_id` reach VBS once,
//! retries get the first answer (or wait for it), a reused id is refused,
//! and a write outlives its caller's deadline so a retry finds its answer.

use std::time::Duration;

use tonic::{Code, Request};
use tonic_types::StatusExt;
use vbs_gateway::proto::pb::{self, PolicyStatus};

use crate::harness::{DISK_10GB, UNKNOWN_ID, World, assert_rejected_because};

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn create(name: &str, request_id: &str) -> pb::CreateBackupRequest {
    pb::CreateBackupRequest {
        volume_id: DISK_10GB.into(),
        name: name.into(),
        request_id: request_id.into(),
        ..Default::default()
    }
}

/// The VBS requests with `method` whose path ends with `suffix`.
fn sent(world: &World, method: &str, suffix: &str) -> usize {
    world
        .upstream_requests()
        .iter()
        .filter(|r| r.method == method && r.path.ends_with(suffix))
        .count()
}

fn creates_sent(world: &World) -> usize {
    sent(world, "POST", "/cloudbackups")
}

#[tokio::test]
async fn a_retry_with_the_same_request_id_gets_the_first_answer_and_sends_nothing() {
    let world = World::start().await;
    let id = request_id();
    let mut backups = world.backups.clone();
    let first = backups.create_backup(create("once", &id)).await.unwrap().into_inner();
    let again = backups.create_backup(create("once", &id)).await.unwrap().into_inner();
    assert_eq!(first.job_id, again.job_id);
    assert_eq!(creates_sent(&world), 1);
    // Upper case is the same UUID.
    let upper = backups.create_backup(create("once", &id.to_uppercase())).await.unwrap();
    assert_eq!(upper.into_inner().job_id, first.job_id);
    assert_eq!(creates_sent(&world), 1);
}

#[tokio::test]
async fn a_call_without_request_id_is_sent_every_time() {
    let world = World::start().await;
    let mut backups = world.backups.clone();
    let first = backups.create_backup(create("twice", "")).await.unwrap().into_inner();
    // VBS takes one backup of a disk at a time.
    world.finish_job(&first.job_id).await;
    let second = backups.create_backup(create("twice", "")).await.unwrap().into_inner();
    assert_ne!(first.job_id, second.job_id);
    assert_eq!(creates_sent(&world), 2);
}

#[tokio::test]
async fn the_same_request_id_with_another_request_is_refused() {
    let world = World::start_with(vbs_simulator::SimulatorConfig::for_testing(), |config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let id = request_id();
    let mut backups = world.backups.clone();
    backups.create_backup(create("first", &id)).await.unwrap();
    backups.create_backup(create("first", &id)).await.unwrap();
    let status = backups
        .create_backup(create("second", &id))
        .await
        .expect_err("a reused request_id");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "REQUEST_ID_REUSED");
    assert_eq!(details.bad_request().unwrap().field_violations[0].field, "request_id");
    // Another method with the same id is another request too.
    let delete = pb::DeleteBackupRequest {
        backup_id: UNKNOWN_ID.into(),
        request_id: id.clone(),
        ..Default::default()
    };
    let status = backups.delete_backup(delete).await.expect_err("a reused request_id");
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "REQUEST_ID_REUSED"
    );
    assert_eq!(world.upstream_requests().len(), 1);

    let text = reqwest::get(world.metrics_url.clone().unwrap())
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(r#"vbs_idempotent_replays_total{grpc_method="CreateBackup"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"vbs_request_id_reused_total{grpc_method="CreateBackup"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"vbs_request_id_reused_total{grpc_method="DeleteBackup"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn a_malformed_request_id_names_the_field() {
    let world = World::start().await;
    let result = world.backups.clone().create_backup(create("bad", "not-a-uuid")).await;
    assert_rejected_because(&world, result, "request_id", "NOT_A_UUID");
}

#[tokio::test]
async fn a_recorded_failure_is_replayed() {
    let world = World::start().await;
    let id = request_id();
    let request = pb::CreateBackupRequest {
        volume_id: UNKNOWN_ID.into(),
        ..create("missing-disk", &id)
    };
    let mut backups = world.backups.clone();
    let first = backups.create_backup(request.clone()).await.expect_err("unknown disk");
    let again = backups.create_backup(request).await.expect_err("unknown disk");
    assert_eq!(first.code(), Code::NotFound);
    assert_eq!(again.code(), first.code());
    assert_eq!(again.message(), first.message());
    assert_eq!(again.details(), first.details());
    assert_eq!(creates_sent(&world), 1);
}

#[tokio::test]
async fn a_failure_that_left_nothing_upstream_is_not_recorded() {
    let world = World::start().await;
    let id = request_id();
    let mut backups = world.backups.clone();
    world.sim.inject_http_errors(503, 1);
    let status = backups
        .create_backup(create("after-outage", &id))
        .await
        .expect_err("an outage");
    assert_eq!(status.code(), Code::Unavailable);
    let created = backups.create_backup(create("after-outage", &id)).await.unwrap();
    assert!(!created.into_inner().job_id.is_empty());
    assert_eq!(creates_sent(&world), 2);
}

#[tokio::test]
async fn concurrent_duplicates_send_one_request() {
    let world = World::start().await;
    world.sim.delay_next_requests(1, Duration::from_millis(500));
    let id = request_id();
    let calls = (0..5).map(|_| {
        let mut backups = world.backups.clone();
        let request = create("together", &id);
        tokio::spawn(async move { backups.create_backup(request).await.map(|r| r.into_inner().job_id) })
    });
    let mut job_ids = Vec::new();
    for call in calls.collect::<Vec<_>>() {
        job_ids.push(call.await.unwrap().expect("CreateBackup"));
    }
    job_ids.dedup();
    assert_eq!(job_ids.len(), 1, "{job_ids:?}");
    assert_eq!(creates_sent(&world), 1);
}

#[tokio::test]
async fn a_write_outlives_its_callers_deadline_and_the_retry_finds_its_answer() {
    let world = World::start().await;
    world.sim.delay_next_requests(1, Duration::from_secs(3));
    let id = request_id();
    let mut backups = world.backups.clone();
    let mut timed_out = 0;
    let mut job_id = None;
    // The upstream takes 3 s, each call waits 1 s: the first calls give up,
    // a later retry gets the answer the first call's write recorded.
    for _ in 0..8 {
        let mut request = Request::new(create("slow", &id));
        request.set_timeout(Duration::from_secs(1));
        match backups.create_backup(request).await {
            Ok(reply) => {
                job_id = Some(reply.into_inner().job_id);
                break;
            }
            Err(status) => {
                assert!(
                    matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
                    "{status:?}"
                );
                timed_out += 1;
            }
        }
    }
    let job_id = job_id.expect("a retry after the upstream answered gets the job id");
    assert!(timed_out >= 2, "only {timed_out} calls timed out");
    assert_eq!(creates_sent(&world), 1);
    assert_eq!(world.job(&job_id).await.job_id, job_id);
}

#[tokio::test]
async fn policy_writes_are_replayed_too() {
    let world = World::start().await;
    let mut policies = world.policies.clone();
    let create = pb::CreateBackupPolicyRequest {
        backup_policy_name: "nightly".into(),
        scheduled_policy: Some(pb::ScheduledPolicy {
            start_time: "12:00".into(),
            frequency: Some(1),
            retention_num: Some(10),
            status: PolicyStatus::On as i32,
            ..Default::default()
        }),
        request_id: request_id(),
        ..Default::default()
    };
    let first = policies
        .create_backup_policy(create.clone())
        .await
        .unwrap()
        .into_inner();
    let again = policies.create_backup_policy(create).await.unwrap().into_inner();
    assert_eq!(first.backup_policy_id, again.backup_policy_id);
    assert_eq!(sent(&world, "POST", "/backuppolicy"), 1);

    let disable = pb::DisableBackupPolicyRequest {
        backup_policy_id: first.backup_policy_id.clone(),
        request_id: request_id(),
        ..Default::default()
    };
    policies.disable_backup_policy(disable.clone()).await.unwrap();
    policies.disable_backup_policy(disable).await.unwrap();
    let updates = sent(&world, "PUT", &format!("/backuppolicy/{}", first.backup_policy_id));
    assert_eq!(updates, 1);
}

#[tokio::test]
async fn shutdown_lets_a_write_whose_caller_left_finish_within_the_drain() {
    use tokio::net::TcpListener;
    use vbs_gateway::config::Config;
    use vbs_simulator::{Simulator, SimulatorConfig};

    use crate::harness::{enforcing, gateway_credentials, serve};

    let mut sim_config = SimulatorConfig::for_testing();
    sim_config.auth = enforcing(sim_config.auth);
    let sim = Simulator::start(sim_config, TcpListener::bind("127.0.0.1:0").await.unwrap())
        .await
        .unwrap();
    let mut config = Config::for_testing(sim.url().parse().unwrap());
    config.credentials = gateway_credentials(crate::AUTH, &sim.url());
    let (channel, stop, server) = serve(&config).await;

    sim.delay_next_requests(1, Duration::from_secs(2));
    let mut request = Request::new(create("outlives-shutdown", &request_id()));
    request.set_timeout(Duration::from_millis(300));
    let status = pb::backup_service_client::BackupServiceClient::new(channel)
        .create_backup(request)
        .await
        .expect_err("the caller leaves before upstream answers");
    assert!(
        matches!(status.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{status:?}"
    );
    let _ = stop.send(());
    server.await.unwrap();

    // The gateway's shutdown waited for the write: a new gateway finds its backup.
    let (channel, _stop, _server) = serve(&config).await;
    let backups = pb::backup_service_client::BackupServiceClient::new(channel)
        .list_backups(pb::ListBackupsRequest {
            name: "outlives-shutdown".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .backups;
    assert_eq!(backups.len(), 1, "{backups:?}");
    sim.shutdown();
}
