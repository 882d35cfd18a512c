//! TaurusDbBackupService end to end: a manual backup created by the
//! document's rules, its job followed to the end through the job hub, errors
//! mapped by the one table, and a gateway without TaurusDB.

use std::time::Duration;

use tonic::Code;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use vbs_gateway::proto::pb::{Coordination, WaitOutcome};
use vbs_gateway::proto::taurusdb::v3::{
    self as tdb, taurus_db_backup_service_client::TaurusDbBackupServiceClient, watch_backup_job_response::Event,
};
use vbs_gateway::rest::credentials::{Credentials, Secret};
use vbs_simulator::taurusdb::{INSTANCE_NOT_FOUND, JOB_NOT_FOUND, TAURUSDB_INSTANCE_IDS};
use vbs_simulator::{RecordedRequest, SimulatorConfig};

use crate::harness::{PROJECT_ID, World, error_metadata, listed_operations, vbs_code};
use crate::observability::{sample, scrape};

const INSTANCE: &str = TAURUSDB_INSTANCE_IDS[0];
/// Well-formed, unknown to the simulator.
const UNKNOWN_INSTANCE: &str = "00000000000000000000000000000000in07";
const PATIENCE: Duration = Duration::from_secs(10);

fn client(world: &World) -> TaurusDbBackupServiceClient<Channel> {
    TaurusDbBackupServiceClient::new(world.channel.clone())
}

/// The requests that reached the simulated TaurusDB (IAM's are elsewhere).
fn taurusdb_requests(world: &World) -> Vec<RecordedRequest> {
    world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.starts_with(&format!("/v3/{PROJECT_ID}/")))
        .collect()
}

fn create_request(instance_id: &str, name: &str) -> tdb::CreateManualBackupRequest {
    tdb::CreateManualBackupRequest {
        instance_id: instance_id.into(),
        name: name.into(),
        description: "Manual backup".into(),
        ..Default::default()
    }
}

async fn create(world: &World) -> tdb::CreateManualBackupResponse {
    client(world)
        .create_manual_backup(create_request(INSTANCE, "backup-1"))
        .await
        .expect("CreateManualBackup")
        .into_inner()
}

async fn wait(world: &World, job_id: &str) -> tdb::WaitBackupJobResponse {
    let mut client = client(world);
    let request = tdb::WaitBackupJobRequest {
        job_id: job_id.into(),
        ..Default::default()
    };
    let waiting = tokio::spawn(async move { client.wait_backup_job(request).await });
    world.advance(3);
    tokio::time::timeout(PATIENCE, waiting)
        .await
        .expect("the wait answers")
        .unwrap()
        .expect("WaitBackupJob")
        .into_inner()
}

#[tokio::test]
async fn a_manual_backup_is_created_and_watched_to_its_end() {
    let world = World::start().await;
    let created = create(&world).await;
    let backup = created.backup.expect("backup");
    assert_eq!(backup.status(), tdb::BackupStatus::Building);
    assert_eq!((backup.name.as_str(), backup.r#type.as_str()), ("backup-1", "manual"));
    assert_eq!(backup.instance_id, INSTANCE);
    assert!(backup.begin_time.is_some(), "{}", backup.begin_time_raw);
    assert_eq!(
        created.operation.as_ref().map(|op| op.name.as_str()),
        Some(format!("projects/{PROJECT_ID}/taurusdb-jobs/{}", created.job_id).as_str())
    );
    let sent = &taurusdb_requests(&world)[0];
    assert_eq!(sent.path, format!("/v3/{PROJECT_ID}/backups/create"));
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"instance_id": INSTANCE, "name": "backup-1", "description": "Manual backup"})
    );
    assert!(
        sent.headers
            .iter()
            .any(|(name, value)| name == "authorization" && value.starts_with("SDK-HMAC-SHA256")),
        "signed with the gateway's AK/SK"
    );

    let mut stream = client(&world)
        .watch_backup_job(tdb::WatchBackupJobRequest {
            job_id: created.job_id.clone(),
            ..Default::default()
        })
        .await
        .expect("WatchBackupJob")
        .into_inner();
    let first = next_job(&mut stream).await;
    assert_eq!(first.status(), tdb::JobStatus::Running);
    assert_eq!(first.instance_name, "orders");
    world.advance(3);
    let last = next_job(&mut stream).await;
    assert_eq!(last.status(), tdb::JobStatus::Completed, "{last:?}");
    assert_eq!(last.status_raw, "Completed");
    assert_eq!(last.entities.get("backup_id"), Some(&backup.id));
    assert!(last.ended.is_some());
    let end = tokio::time::timeout(PATIENCE, stream.message()).await.unwrap();
    assert!(end.expect("ends with OK").is_none());
    let polls = taurusdb_requests(&world)
        .into_iter()
        .filter(|r| r.method == "GET" && r.query.as_deref() == Some(&format!("id={}", created.job_id)))
        .count();
    assert!(polls >= 2, "the job query was polled: {polls}");
}

#[tokio::test]
async fn wait_answers_once_the_job_is_over_and_get_reads_it() {
    let world = World::start().await;
    let created = create(&world).await;
    let reply = wait(&world, &created.job_id).await;
    assert_eq!(reply.outcome(), WaitOutcome::Terminal);
    assert_eq!(reply.job.unwrap().status(), tdb::JobStatus::Completed);
    let job = client(&world)
        .get_backup_job(tdb::GetBackupJobRequest {
            job_id: created.job_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .job
        .unwrap();
    assert_eq!(
        (job.id.as_str(), job.status()),
        (created.job_id.as_str(), tdb::JobStatus::Completed)
    );
}

#[tokio::test]
async fn a_failed_job_is_data_with_its_reason() {
    let world = World::start().await;
    world.sim.fail_next_taurusdb_jobs(1, "the backup space is used up");
    let created = create(&world).await;
    let job = wait(&world, &created.job_id).await.job.unwrap();
    assert_eq!(job.status(), tdb::JobStatus::Failed);
    assert_eq!(job.fail_reason, "the backup space is used up");
}

#[tokio::test]
async fn requests_that_break_the_documents_rules_are_not_sent() {
    let world = World::start().await;
    let cases = [
        (
            create_request("07033b125fd94a8a96896f8bcfee6dda", "backup-1"),
            "instance_id",
        ),
        (create_request(INSTANCE, "bak"), "name"),
        (create_request(INSTANCE, "1-backup"), "name"),
        (
            tdb::CreateManualBackupRequest {
                description: "before <the> upgrade".into(),
                ..create_request(INSTANCE, "backup-1")
            },
            "description",
        ),
    ];
    for (request, field) in cases {
        let status = client(&world).create_manual_backup(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let details = status.get_error_details();
        let violations = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(violations[0].field, field);
    }
    let bad_job = client(&world)
        .get_backup_job(tdb::GetBackupJobRequest {
            job_id: "../backups".into(),
            ..Default::default()
        })
        .await
        .expect_err("unsafe job id");
    assert_eq!(bad_job.code(), Code::InvalidArgument);
    assert!(taurusdb_requests(&world).is_empty(), "{:?}", taurusdb_requests(&world));
}

#[tokio::test]
async fn taurusdb_refusals_are_mapped_by_the_error_table() {
    let world = World::start().await;
    let unknown = client(&world)
        .create_manual_backup(create_request(UNKNOWN_INSTANCE, "backup-1"))
        .await
        .expect_err("unknown instance");
    assert_eq!(unknown.code(), Code::NotFound);
    assert_eq!(vbs_code(&unknown).as_deref(), Some(INSTANCE_NOT_FOUND));
    assert!(
        unknown.message().starts_with("TaurusDB could not find"),
        "{}",
        unknown.message()
    );
    assert_eq!(
        error_metadata(&unknown).get("operation").map(String::as_str),
        Some("TaurusDbCreateBackup")
    );

    let no_job = client(&world)
        .wait_backup_job(tdb::WaitBackupJobRequest {
            job_id: "e0fbbfc8-1ac4-4721-b9e9-7dd685c5bdd7".into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown job");
    assert_eq!(no_job.code(), Code::NotFound);
    assert_eq!(vbs_code(&no_job).as_deref(), Some(JOB_NOT_FOUND));

    world.sim.inject_http_errors(500, 1);
    let outage = client(&world)
        .create_manual_backup(create_request(INSTANCE, "backup-1"))
        .await
        .expect_err("TaurusDB fails");
    assert_eq!(outage.code(), Code::Internal);
}

#[tokio::test]
async fn the_simulator_checks_taurusdbs_own_token() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.taurusdb.credentials = Some(Credentials::Token(Secret::new("not-a-token-of-this-cloud")));
    })
    .await;
    let status = client(&world)
        .create_manual_backup(create_request(INSTANCE, "backup-1"))
        .await
        .expect_err("a token the simulator never issued");
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(vbs_code(&status).as_deref(), Some("APIGW.0307"));
    assert!(!status.message().contains("not-a-token"), "{}", status.message());
    let sent = &taurusdb_requests(&world)[0];
    assert!(sent.headers.iter().any(|(name, _)| name == "x-auth-token"));
}

#[tokio::test]
async fn without_an_endpoint_every_rpc_is_unimplemented_and_names_the_flag() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.taurusdb.endpoint = None;
    })
    .await;
    let create = client(&world)
        .create_manual_backup(create_request(INSTANCE, "backup-1"))
        .await
        .expect_err("not configured");
    let watch = client(&world)
        .watch_backup_job(tdb::WatchBackupJobRequest {
            job_id: "j1".into(),
            ..Default::default()
        })
        .await
        .expect_err("not configured");
    let list = vbs_gateway::proto::longrunning::operations_client::OperationsClient::new(world.channel.clone())
        .list_operations(vbs_gateway::proto::longrunning::ListOperationsRequest {
            name: format!("projects/{PROJECT_ID}/taurusdb-jobs"),
            ..Default::default()
        })
        .await
        .expect_err("not configured");
    for status in [create, watch, list] {
        assert_eq!(status.code(), Code::Unimplemented);
        assert!(status.message().contains("--taurusdb-endpoint"), "{}", status.message());
        let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
        assert_eq!(info.reason, "SERVICE_NOT_CONFIGURED");
        assert_eq!(
            info.metadata.get("flag").map(String::as_str),
            Some("--taurusdb-endpoint")
        );
    }
    assert!(taurusdb_requests(&world).is_empty());
}

/// The next job state of a watch, passing over heartbeats.
async fn next_job(stream: &mut tonic::Streaming<tdb::WatchBackupJobResponse>) -> tdb::Job {
    loop {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("the stream said nothing for 10 s")
            .expect("no error")
            .expect("a message, not the end");
        match message.event.expect("an event") {
            Event::Job(job) => {
                assert!(message.observed_at.is_some());
                return job;
            }
            Event::Heartbeat(beat) => assert_eq!(beat.coordination(), Coordination::Alone),
        }
    }
}

#[tokio::test]
async fn a_taurusdb_job_is_an_operation_done_with_the_job_or_its_failure() {
    use vbs_gateway::proto::longrunning::{self as lro, operation, operations_client::OperationsClient};

    let world = World::start().await;
    let mut operations = OperationsClient::new(world.channel.clone());
    let name = create(&world).await.operation.expect("operation").name;
    let running = operations
        .get_operation(lro::GetOperationRequest { name: name.clone() })
        .await
        .expect("GetOperation")
        .into_inner();
    assert!(!running.done, "{running:?}");
    world.advance(3);
    let done = operations
        .get_operation(lro::GetOperationRequest { name: name.clone() })
        .await
        .expect("GetOperation once done")
        .into_inner();
    let Some(operation::Result::Response(response)) = done.result else {
        panic!("a completed job is the operation's response: {done:?}");
    };
    assert_eq!(response.type_url, "type.googleapis.com/taurusdb.v3.Job");

    world.sim.fail_next_taurusdb_jobs(1, "the backup space is used up");
    let failing = create(&world).await.operation.unwrap().name;
    world.advance(3);
    let failed = operations
        .get_operation(lro::GetOperationRequest { name: failing.clone() })
        .await
        .expect("GetOperation of a failed job")
        .into_inner();
    let Some(operation::Result::Error(error)) = failed.result else {
        panic!("a failed job is the operation's error: {failed:?}");
    };
    assert_eq!(error.message, "the backup space is used up");

    // Both are listed, newest first, each read again as it is now.
    let listed = listed_operations(&world.channel, &format!("projects/{PROJECT_ID}/taurusdb-jobs")).await;
    assert_eq!(listed, [(failing, true), (name, true)]);
    let vbs_jobs = listed_operations(&world.channel, &format!("projects/{PROJECT_ID}/jobs")).await;
    assert!(vbs_jobs.is_empty(), "TaurusDB jobs are not VBS jobs: {vbs_jobs:?}");
}

#[tokio::test]
async fn a_create_retried_with_its_request_id_makes_one_backup() {
    let world = World::start().await;
    let request = tdb::CreateManualBackupRequest {
        request_id: "6c1e4b0a-4f63-4c55-9a64-3f3c8e1d2b7a".into(),
        ..create_request(INSTANCE, "backup-once")
    };
    let mut answers = Vec::new();
    for _ in 0..2 {
        let reply = client(&world)
            .create_manual_backup(request.clone())
            .await
            .expect("create");
        answers.push(reply.into_inner().job_id);
    }
    assert_eq!(answers[0], answers[1], "the retry gets the first answer");
    let creates = taurusdb_requests(&world)
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/backups/create"))
        .count();
    assert_eq!(creates, 1, "one create reached TaurusDB");
    let reused = client(&world)
        .create_manual_backup(tdb::CreateManualBackupRequest {
            name: "another-name".into(),
            ..request
        })
        .await
        .expect_err("the same request_id for another backup");
    assert_eq!(reused.code(), Code::InvalidArgument);
    assert_eq!(
        reused.get_error_details().error_info().unwrap().reason,
        "REQUEST_ID_REUSED"
    );
}

#[tokio::test]
async fn the_taurusdb_job_hub_has_metrics_series_of_its_own() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let created = create(&world).await;
    wait(&world, &created.job_id).await;

    let text = scrape(&world).await;
    let series = |name: &str, service: &str| sample(&text, &format!(r#"{name}{{service="{service}"}}"#));
    assert!(
        series("vbs_watch_upstream_polls_total", "taurusdb").is_some_and(|polls| polls >= 1.0),
        "{text}"
    );
    assert_eq!(series("vbs_watch_active_watchers", "taurusdb"), Some(0.0));
    // Nothing watched a VBS or ZStack job: their hubs polled nothing.
    assert_eq!(series("vbs_watch_upstream_polls_total", "vbs"), Some(0.0), "{text}");
    assert_eq!(series("vbs_watch_upstream_polls_total", "zstack"), Some(0.0));
    assert_eq!(series("vbs_watch_active_pollers", "zstack"), Some(0.0));
    // CSBS has no endpoint in this world, so no hub and no series.
    assert_eq!(series("vbs_watch_upstream_polls_total", "csbs"), None);
}
