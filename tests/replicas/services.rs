//! TaurusDB, ZStack and CSBS across a fleet, against the standalone simulator
//! serving them beside VBS: each service's create and wait through nginx, one
//! list of operations per service for the fleet, and one upstream poller per
//! TaurusDB job.

use tokio_stream::StreamExt;
use vbs_gateway::proto::csbs_pb::{self as csbs, csbs_backup_service_client::CsbsBackupServiceClient};
use vbs_gateway::proto::longrunning::{self as lro, operations_client::OperationsClient};
use vbs_gateway::proto::pb::WaitOutcome;
use vbs_gateway::proto::taurusdb::v3::{self as tdb, taurus_db_backup_service_client::TaurusDbBackupServiceClient};
use vbs_gateway::proto::zstack::v1::{self as zs, z_stack_backup_service_client::ZStackBackupServiceClient};
use vbs_simulator::csbs::DEFAULT_SERVER_IDS;
use vbs_simulator::taurusdb::TAURUSDB_INSTANCE_IDS;
use vbs_simulator::zstack::{ZSTACK_BACKUP_STORAGES, ZSTACK_ROOT_VOLUMES};

use crate::harness::{Fleet, PROJECT_ID, STARTUP, eventually};

/// A wait's own bound: well past every simulated job's end.
fn wait_timeout() -> Option<prost_types::Duration> {
    Some(prost_types::Duration {
        seconds: STARTUP.as_secs() as i64,
        nanos: 0,
    })
}

#[tokio::test]
async fn taurusdb_zstack_and_csbs_back_up_through_a_fleet() {
    let Some(fleet) = Fleet::builder()
        .replicas(2)
        .every_service()
        .simulator_args(["--sim-job-init", "0s", "--sim-job-run", "500ms"])
        .start()
        .await
    else {
        return;
    };
    let channel = fleet.channel().await;

    let mut taurusdb = TaurusDbBackupServiceClient::new(channel.clone());
    let created = taurusdb
        .create_manual_backup(tdb::CreateManualBackupRequest {
            instance_id: TAURUSDB_INSTANCE_IDS[0].into(),
            name: "fleet-backup".into(),
            ..Default::default()
        })
        .await
        .expect("CreateManualBackup")
        .into_inner();
    let waited = taurusdb
        .wait_backup_job(tdb::WaitBackupJobRequest {
            job_id: created.job_id.clone(),
            timeout: wait_timeout(),
            ..Default::default()
        })
        .await
        .expect("WaitBackupJob")
        .into_inner();
    assert_eq!(waited.outcome(), WaitOutcome::Terminal);
    let job = waited.job.expect("the job");
    assert_eq!(
        (job.id.as_str(), job.status()),
        (created.job_id.as_str(), tdb::JobStatus::Completed)
    );
    let mut started = vec![(
        format!("projects/{PROJECT_ID}/taurusdb-jobs"),
        created.operation.expect("operation").name,
    )];

    let mut zstack = ZStackBackupServiceClient::new(channel.clone());
    let created = zstack
        .create_vm_backup(zs::CreateVmBackupRequest {
            root_volume_uuid: ZSTACK_ROOT_VOLUMES[0].into(),
            backup_storage_uuid: ZSTACK_BACKUP_STORAGES[0].into(),
            name: "fleet-backup".into(),
            ..Default::default()
        })
        .await
        .expect("CreateVmBackup")
        .into_inner();
    assert!(!created.job_uuid.is_empty(), "{created:?}");
    started.push(("zstack/jobs".into(), created.operation.clone().expect("operation").name));
    let waited = zstack
        .wait_vm_backup_job(zs::WaitVmBackupJobRequest {
            job_uuid: created.job_uuid.clone(),
            timeout: wait_timeout(),
        })
        .await
        .expect("WaitVmBackupJob")
        .into_inner();
    assert_eq!(waited.outcome(), WaitOutcome::Terminal);
    let job = waited.job.expect("the job");
    assert_eq!(job.state(), zs::JobState::Succeeded, "{job:?}");
    assert!(!job.inventories.is_empty(), "{job:?}");

    let mut csbs = CsbsBackupServiceClient::new(channel);
    let created = csbs
        .create_backup(csbs::CreateBackupRequest {
            resource_id: DEFAULT_SERVER_IDS[0].into(),
            backup_name: "fleet-backup".into(),
            ..Default::default()
        })
        .await
        .expect("CreateBackup")
        .into_inner();
    started.push((
        format!("projects/{PROJECT_ID}/checkpoints"),
        created.operation.expect("operation").name,
    ));
    let backup_id = created.backup.expect("the backup").id;
    let waited = csbs
        .wait_backup(csbs::WaitBackupRequest {
            backup_id: backup_id.clone(),
            timeout: wait_timeout(),
            ..Default::default()
        })
        .await
        .expect("WaitBackup")
        .into_inner();
    assert_eq!(waited.outcome(), WaitOutcome::Terminal);
    let backup = waited.backup.expect("the backup");
    assert_eq!(
        (backup.id.as_str(), backup.status()),
        (backup_id.as_str(), csbs::BackupStatus::Available)
    );

    // Each service's list is the fleet's: every replica lists what one started.
    for replica in 0..fleet.replica_count() {
        let mut operations = OperationsClient::new(fleet.replica_channel(replica).await);
        for (list, name) in &started {
            let listed = operations
                .list_operations(lro::ListOperationsRequest {
                    name: list.clone(),
                    ..Default::default()
                })
                .await
                .expect("ListOperations")
                .into_inner();
            let names: Vec<&str> = listed.operations.iter().map(|op| op.name.as_str()).collect();
            assert_eq!(names, [name.as_str()], "replica {replica}, {list}");
            assert!(listed.operations[0].done, "replica {replica}, {list}");
        }
    }
}

#[tokio::test]
async fn a_taurusdb_job_watched_on_every_replica_is_polled_by_one() {
    const REPLICAS: usize = 3;
    let Some(fleet) = Fleet::builder()
        .replicas(REPLICAS)
        .every_service()
        .replica_args(["--watch-poll-initial", "250ms", "--watch-poll-max", "250ms"])
        .simulator_args(["--sim-job-init", "0s", "--sim-job-run", "60s"])
        .start()
        .await
    else {
        return;
    };
    let job_id = TaurusDbBackupServiceClient::new(fleet.channel().await)
        .create_manual_backup(tdb::CreateManualBackupRequest {
            instance_id: TAURUSDB_INSTANCE_IDS[0].into(),
            name: "watched".into(),
            ..Default::default()
        })
        .await
        .expect("CreateManualBackup")
        .into_inner()
        .job_id;
    let mut streams = Vec::new();
    for replica in 0..REPLICAS {
        let mut stream = TaurusDbBackupServiceClient::new(fleet.replica_channel(replica).await)
            .watch_backup_job(tdb::WatchBackupJobRequest {
                job_id: job_id.clone(),
                ..Default::default()
            })
            .await
            .expect("WatchBackupJob")
            .into_inner();
        let first = tokio::time::timeout(STARTUP, stream.next())
            .await
            .expect("a first message in time")
            .expect("a first message")
            .expect("not an error");
        let Some(tdb::watch_backup_job_response::Event::Job(job)) = first.event else {
            panic!("replica {replica}: the first message is not the job: {first:?}");
        };
        assert_eq!(job.status(), tdb::JobStatus::Running, "replica {replica}");
        streams.push(stream);
    }

    // Every replica has a watcher; only the lease holder's TaurusDB polls grow.
    let taurusdb_polls =
        |replica: usize| fleet.metric(replica, "vbs_watch_upstream_polls_total", &[("service", "taurusdb")]);
    let before: Vec<f64> = (0..REPLICAS).map(taurusdb_polls).collect();
    eventually(STARTUP, "one replica polled several times more", || {
        let grown: Vec<f64> = (0..REPLICAS).map(|r| taurusdb_polls(r) - before[r]).collect();
        async move { grown.iter().any(|&g| g >= 4.0) }
    })
    .await;
    let grown: Vec<f64> = (0..REPLICAS).map(|r| taurusdb_polls(r) - before[r]).collect();
    assert_eq!(
        grown.iter().filter(|&&g| g > 0.0).count(),
        1,
        "exactly one replica polls the job for the fleet: {grown:?}"
    );
    drop(streams);
}
