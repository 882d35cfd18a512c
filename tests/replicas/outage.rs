//! Redis stopped mid-run and started again: writes with a `request_id` fail
//! UNAVAILABLE (never a possible duplicate), the rest goes on, the outage is
//! logged once, and everything is shared again without restarting a replica.

use std::time::Duration;

use tonic::Code;
use tonic_types::StatusExt;
use vbs_gateway::proto::pb::{self, backup_service_client::BackupServiceClient};

use crate::harness::{DISK_10GB, Fleet, eventually};
use crate::writes::{create, creates_sent, request_id};

const OUTAGE_WARNING: &str = "Redis is unreachable";
const BUDGET_ALONE: &str = "keeps to a budget of its own";

#[tokio::test]
async fn writes_with_a_request_id_wait_out_a_redis_outage_and_the_rest_goes_on() {
    // Jobs end at once, so one disk takes backup after backup.
    let instant_jobs = ["--sim-job-init", "0s", "--sim-job-run", "0s"];
    let Some(mut fleet) = Fleet::builder().replicas(2).simulator_args(instant_jobs).start().await else {
        return;
    };
    let mut backups = BackupServiceClient::new(fleet.replica_channel(0).await);
    backups
        .create_backup(create(DISK_10GB, &request_id()))
        .await
        .expect("shared");
    assert_eq!(fleet.metric(0, "vbs_redis_up", &[]), 1.0);

    fleet.redis.stop();
    for _ in 0..3 {
        let refused = backups
            .create_backup(create(DISK_10GB, &request_id()))
            .await
            .expect_err("no write with a request_id while Redis is down");
        assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
        let reason = refused.get_error_details().error_info().map(|i| i.reason.clone());
        assert_eq!(reason.as_deref(), Some("IDEMPOTENCY_STORE_UNAVAILABLE"));
    }
    assert_eq!(creates_sent(&fleet), 1, "a refused write reached VBS");
    // Without a request_id there is nothing to share: the write goes through,
    // and reads do too (on a budget of the replica's own).
    backups
        .create_backup(create(DISK_10GB, ""))
        .await
        .expect("write without request_id");
    backups
        .list_backups(pb::ListBackupsRequest::default())
        .await
        .expect("read during the outage");
    assert_eq!(creates_sent(&fleet), 2);
    assert_eq!(fleet.metric(0, "vbs_redis_up", &[]), 0.0);
    let log = fleet.replica_log(0);
    assert_eq!(log.matches(OUTAGE_WARNING).count(), 1, "{log}");
    assert_eq!(log.matches(BUDGET_ALONE).count(), 1, "{log}");

    fleet.redis.start_again();
    let id = request_id();
    let recovered = eventually(Duration::from_secs(10), "writes with a request_id work again", || {
        let mut backups = backups.clone();
        let id = id.clone();
        async move { backups.create_backup(create(DISK_10GB, &id)).await.is_ok() }
    });
    recovered.await;
    assert_eq!(fleet.metric(0, "vbs_redis_up", &[]), 1.0);
    // Shared again: the other replica replays that write rather than sending it.
    let mut other = BackupServiceClient::new(fleet.replica_channel(1).await);
    other.create_backup(create(DISK_10GB, &id)).await.expect("replayed");
    assert_eq!(creates_sent(&fleet), 3, "{:?}", fleet.simulator.requests());
    assert!(fleet.replica_log(0).contains("Redis answers again"));
    fleet.kill_replica(1);
}
