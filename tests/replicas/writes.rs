//! Writes with a `request_id` are one per fleet: a retry that lands on
//! another replica gets the first answer, also while the first is in flight.

use std::time::Duration;

use tonic::{Code, Request};
use tonic_types::StatusExt;
use vbs_gateway::proto::pb;

use crate::harness::{DISK_10GB, DISK_20GB, Fleet};

pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

pub(crate) fn create(volume_id: &str, request_id: &str) -> pb::CreateBackupRequest {
    pb::CreateBackupRequest {
        volume_id: volume_id.into(),
        name: "nightly".into(),
        request_id: request_id.into(),
        ..Default::default()
    }
}

pub(crate) fn creates_sent(fleet: &Fleet) -> usize {
    fleet.simulator.count("POST", "/cloudbackups")
}

#[tokio::test]
async fn a_create_backup_retried_through_nginx_creates_one_backup() {
    let Some(fleet) = Fleet::start(3).await else {
        return;
    };
    let mut backups = fleet.backups().await;
    let id = request_id();
    let mut job_ids = Vec::new();
    // Round robin: each try lands on another replica.
    for _ in 0..3 {
        let reply = backups
            .create_backup(create(DISK_10GB, &id))
            .await
            .expect("CreateBackup");
        job_ids.push(reply.into_inner().job_id);
    }
    assert_eq!(creates_sent(&fleet), 1, "{:?}", fleet.simulator.requests());
    assert!(job_ids.iter().all(|j| *j == job_ids[0]), "{job_ids:?}");
    assert_eq!(fleet.metric_total("vbs_idempotent_replays_total", &[]), 2.0);
    for replica in 0..3 {
        let served = fleet.metric(replica, "grpc_server_handled_total", &[("grpc_method", "CreateBackup")]);
        assert_eq!(served, 1.0, "replica {replica} served {served} of the three tries");
    }
}

#[tokio::test]
async fn a_retry_on_another_replica_waits_for_the_write_in_flight() {
    let Some(fleet) = Fleet::start(2).await else {
        return;
    };
    let id = request_id();
    // VBS takes 2 s to answer the create.
    fleet.simulator.delay_next_requests(1, Duration::from_secs(2));
    let mut first = pb::backup_service_client::BackupServiceClient::new(fleet.replica_channel(0).await);
    let mut retry = pb::backup_service_client::BackupServiceClient::new(fleet.replica_channel(1).await);
    // The first caller gives up after 500 ms; its write goes on.
    let mut request = Request::new(create(DISK_10GB, &id));
    request.set_timeout(Duration::from_millis(500));
    let gave_up = first
        .create_backup(request)
        .await
        .expect_err("the first caller's deadline passes");
    // The client's own timer or the gateway's answer, whichever comes first.
    assert!(
        matches!(gave_up.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{gave_up:?}"
    );
    assert_eq!(creates_sent(&fleet), 1);
    // The retry lands on the other replica while the create is still in flight.
    let reply = retry
        .create_backup(create(DISK_10GB, &id))
        .await
        .expect("the retry gets the answer");
    assert!(!reply.get_ref().job_id.is_empty());
    assert_eq!(creates_sent(&fleet), 1, "{:?}", fleet.simulator.requests());
    assert_eq!(fleet.metric(1, "vbs_idempotent_replays_total", &[]), 1.0);
    // And a third try, anywhere, gets the same recorded answer.
    let again = first.create_backup(create(DISK_10GB, &id)).await.expect("replayed");
    assert_eq!(again.get_ref().job_id, reply.get_ref().job_id);
    assert_eq!(creates_sent(&fleet), 1);
}

#[tokio::test]
async fn the_same_request_id_for_another_request_is_refused_on_any_replica() {
    let Some(fleet) = Fleet::start(2).await else {
        return;
    };
    let id = request_id();
    let mut on_first = pb::backup_service_client::BackupServiceClient::new(fleet.replica_channel(0).await);
    let mut on_second = pb::backup_service_client::BackupServiceClient::new(fleet.replica_channel(1).await);
    on_first
        .create_backup(create(DISK_10GB, &id))
        .await
        .expect("CreateBackup");
    let refused = on_second
        .create_backup(create(DISK_20GB, &id))
        .await
        .expect_err("another disk with the same request_id");
    assert_eq!(refused.code(), Code::InvalidArgument);
    let reason = refused.get_error_details().error_info().map(|i| i.reason.clone());
    assert_eq!(reason.as_deref(), Some("REQUEST_ID_REUSED"));
    assert_eq!(creates_sent(&fleet), 1);
}

#[tokio::test]
async fn a_claim_left_by_a_replica_that_died_gives_way_after_the_longest_write() {
    // A write may run 2 s (its deadline) plus 1 s of drain: a claim lives 3 s.
    let Some(mut fleet) = Fleet::builder()
        .replicas(2)
        .replica_args(["--default-deadline", "2s", "--drain-timeout", "1s"])
        .start()
        .await
    else {
        return;
    };
    let id = request_id();
    fleet.simulator.delay_next_requests(1, Duration::from_secs(10));
    let mut doomed = pb::backup_service_client::BackupServiceClient::new(fleet.replica_channel(0).await);
    let first_try = create(DISK_10GB, &id);
    let first = tokio::spawn(async move { doomed.create_backup(first_try).await });
    let simulator_saw_it = || async { creates_sent(&fleet) == 1 };
    crate::harness::eventually(Duration::from_secs(5), "the first create reaches VBS", simulator_saw_it).await;
    fleet.kill_replica(0);
    let _ = first.await;
    let claim_left = claim_lifetime_left(&fleet, &id).await;
    assert!((1..=3000).contains(&claim_left), "the claim lives {claim_left} ms more");
    let mut retry = pb::backup_service_client::BackupServiceClient::new(fleet.replica_channel(1).await);
    let started = std::time::Instant::now();
    // Longer than the claim's lifetime: without one, the retry's own default
    // deadline (2 s) would end its wait first.
    let mut request = Request::new(create(DISK_10GB, &id));
    request.set_timeout(Duration::from_secs(5));
    let reply = retry.create_backup(request).await;
    let waited = started.elapsed();
    reply.expect("the retry claims the id once the dead replica's claim lapses");
    assert!(waited < Duration::from_secs(4), "waited {waited:?}");
    assert_eq!(creates_sent(&fleet), 2);
}

/// How many ms the record of `request_id` has left in the fleet's Redis.
async fn claim_lifetime_left(fleet: &Fleet, request_id: &str) -> i64 {
    let mut redis = fleet.redis.connection().await;
    redis::cmd("PTTL")
        .arg(format!("vbs-gateway:idem:{request_id}"))
        .query_async(&mut redis)
        .await
        .expect("PTTL")
}
