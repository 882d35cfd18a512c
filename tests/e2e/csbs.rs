//! CsbsBackupService end to end: a real gRPC client, the gateway, and the
//! CSBS simulator on its own port checking the test AK/SK; backups are
//! followed to their end by stepping the simulator's clock.

use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use vbs_gateway::proto::csbs_pb::{self as pb, BackupStatus, csbs_backup_service_client::CsbsBackupServiceClient};
use vbs_gateway::proto::pb::WaitOutcome;
use vbs_gateway::rest::credentials::{AccessKey, Credentials, Secret, Signing};
use vbs_simulator::csbs::{CsbsSimulator, CsbsSimulatorConfig, DEFAULT_SERVER_IDS};
use vbs_simulator::{RecordedRequest, SimulatorConfig};

use crate::harness::{
    ACCESS_KEY, PROJECT_ID, UNKNOWN_ID, World, error_metadata, listed_operations, start_csbs, vbs_code,
};

const WEB_SERVER: &str = DEFAULT_SERVER_IDS[0];
const BROKEN_SERVER: &str = DEFAULT_SERVER_IDS[2];
const CSBS_PROVIDER: &str = "fc4d5750-22e7-4798-8a46-f48f62c4c1da";

/// A gateway whose CSBS upstream is a fresh CSBS simulator.
struct CsbsWorld {
    world: World,
    csbs: CsbsSimulator,
    client: CsbsBackupServiceClient<Channel>,
}

impl CsbsWorld {
    async fn start() -> CsbsWorld {
        CsbsWorld::start_with(|_| {}).await
    }

    async fn start_with(adjust: impl FnOnce(&mut vbs_gateway::config::Config)) -> CsbsWorld {
        let csbs = start_csbs(CsbsSimulatorConfig::for_testing()).await;
        let url = csbs.url().parse().expect("CSBS URL");
        let world = World::start_with(SimulatorConfig::for_testing(), |config| {
            config.csbs.endpoint = Some(url);
            adjust(config);
        })
        .await;
        let client = CsbsBackupServiceClient::new(world.channel.clone());
        CsbsWorld { world, csbs, client }
    }

    async fn create(&self, req: pb::CreateBackupRequest) -> Result<pb::CreateBackupResponse, Status> {
        self.client.clone().create_backup(req).await.map(|r| r.into_inner())
    }

    async fn get(&self, backup_id: &str) -> Result<pb::Backup, Status> {
        let req = pb::GetBackupRequest {
            backup_id: backup_id.into(),
            ..Default::default()
        };
        let reply = self.client.clone().get_backup(req).await?;
        Ok(reply.into_inner().backup.expect("backup in reply"))
    }

    /// CreateBackup of the web server, which must succeed.
    async fn back_up_web_server(&self) -> pb::CreateBackupResponse {
        self.create(server_backup(WEB_SERVER)).await.expect("CreateBackup")
    }

    fn csbs_requests(&self) -> Vec<RecordedRequest> {
        self.csbs.requests()
    }
}

fn server_backup(resource_id: &str) -> pb::CreateBackupRequest {
    pb::CreateBackupRequest {
        resource_id: resource_id.into(),
        backup_name: "nightly-web".into(),
        description: "before the upgrade".into(),
        tags: vec![pb::Tag {
            key: "team".into(),
            value: "ops".into(),
        }],
        ..Default::default()
    }
}

fn reason(status: &Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|info| info.reason.clone())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_server_backup_is_watched_from_protecting_to_available() {
    let world = CsbsWorld::start().await;
    let created = world.back_up_web_server().await;
    let backup = created.backup.clone().expect("backup");
    assert_eq!(backup.status(), BackupStatus::Protecting);
    assert_eq!(backup.resource_id, WEB_SERVER);
    assert_eq!(backup.checkpoint_id, created.checkpoint_id);
    let operation = created.operation.clone().expect("operation");
    assert_eq!(
        operation.name,
        format!("projects/{PROJECT_ID}/checkpoints/{}", backup.id)
    );
    assert!(!operation.done);
    let sent = world.csbs_requests();
    assert_eq!(sent[0].method, "POST");
    assert_eq!(
        sent[0].path,
        format!("/v1/{PROJECT_ID}/providers/{CSBS_PROVIDER}/resources/{WEB_SERVER}/action")
    );
    let body: serde_json::Value = serde_json::from_str(&sent[0].body).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"protect": {"backup_name": "nightly-web", "description": "before the upgrade",
                                       "tags": [{"key": "team", "value": "ops"}]}})
    );
    assert_eq!(sent[1].path, format!("/v1/{PROJECT_ID}/checkpoint_items"));
    assert_eq!(
        sent[1].query.as_deref(),
        Some(format!("checkpoint_id={}", created.checkpoint_id).as_str())
    );

    let request = pb::WatchBackupRequest {
        backup_id: backup.id.clone(),
        ..Default::default()
    };
    let mut stream = world.client.clone().watch_backup(request).await.unwrap().into_inner();
    let first = next_backup(&mut stream).await;
    assert_eq!(first.status(), BackupStatus::Protecting);
    world.csbs.advance(Duration::from_secs(3));
    let last = next_backup(&mut stream).await;
    assert_eq!(last.status(), BackupStatus::Available, "{last:?}");
    assert_eq!(last.progress, 100);
    assert!(last.finished_at.is_some());
    let end = tokio::time::timeout(Duration::from_secs(10), stream.next()).await;
    assert!(matches!(end, Ok(None)), "the stream ends after AVAILABLE: {end:?}");
}

/// The next backup state of a watch, passing over heartbeats (bounded).
async fn next_backup(stream: &mut tonic::Streaming<pb::WatchBackupResponse>) -> pb::Backup {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.next())
            .await
            .expect("a watch message in time")
            .expect("the stream goes on")
            .expect("no error");
        if let Some(pb::watch_backup_response::Event::Backup(backup)) = message.event {
            return backup;
        }
    }
}

#[tokio::test]
async fn wait_backup_answers_once_the_backup_is_available() {
    let world = CsbsWorld::start().await;
    let backup_id = world.back_up_web_server().await.backup.unwrap().id;
    let now = world
        .client
        .clone()
        .wait_backup(pb::WaitBackupRequest {
            backup_id: backup_id.clone(),
            timeout: Some(prost_types::Duration::default()),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(now.outcome(), WaitOutcome::Timeout);
    assert_eq!(now.backup.unwrap().status(), BackupStatus::Protecting);

    let mut client = world.client.clone();
    let id = backup_id.clone();
    let waiting = tokio::spawn(async move {
        client
            .wait_backup(pb::WaitBackupRequest {
                backup_id: id,
                timeout: Some(prost_types::Duration { seconds: 30, nanos: 0 }),
                ..Default::default()
            })
            .await
    });
    world.csbs.advance(Duration::from_secs(3));
    let done = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("WaitBackup answers in time")
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(done.outcome(), WaitOutcome::Terminal);
    let backup = done.backup.unwrap();
    assert_eq!(backup.status(), BackupStatus::Available);
    assert_eq!(backup.size_mb, 2048);

    let read = world.get(&backup_id).await.unwrap();
    assert_eq!(read.status_text, "available");
    assert_eq!(read.name, "nightly-web");
    assert_eq!(read.resource_name, "web-server");
    assert_eq!(
        read.tags,
        [pb::Tag {
            key: "team".into(),
            value: "ops".into()
        }]
    );
    assert!(read.created_at.is_some() && read.updated_at.is_some());
}

#[tokio::test]
async fn an_injected_failure_ends_the_backup_in_error() {
    let world = CsbsWorld::start().await;
    world
        .csbs
        .fail_next_backups(1, "CSBS.9998", "snapshot of a disk failed");
    let backup_id = world.back_up_web_server().await.backup.unwrap().id;
    let mut client = world.client.clone();
    let waiting = tokio::spawn(async move {
        client
            .wait_backup(pb::WaitBackupRequest {
                backup_id,
                ..Default::default()
            })
            .await
    });
    world.csbs.advance(Duration::from_secs(3));
    let done = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("WaitBackup answers in time")
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(done.outcome(), WaitOutcome::Terminal);
    let backup = done.backup.unwrap();
    assert_eq!(backup.status(), BackupStatus::Error);
    assert_eq!(backup.fail_code, "CSBS.9998");
    assert_eq!(backup.fail_reason, "snapshot of a disk failed");
}

#[tokio::test]
async fn requests_breaking_the_reference_name_each_field_and_send_nothing() {
    let world = CsbsWorld::start().await;
    let tag = |key: &str, value: &str| pb::Tag {
        key: key.into(),
        value: value.into(),
    };
    let cases: Vec<(&str, pb::CreateBackupRequest)> = vec![
        ("resource_id", server_backup("not-a-uuid")),
        (
            "backup_name",
            pb::CreateBackupRequest {
                backup_name: "with space".into(),
                ..server_backup(WEB_SERVER)
            },
        ),
        (
            "backup_name",
            pb::CreateBackupRequest {
                backup_name: "n".repeat(256),
                ..server_backup(WEB_SERVER)
            },
        ),
        (
            "description",
            pb::CreateBackupRequest {
                description: "<script>".into(),
                ..server_backup(WEB_SERVER)
            },
        ),
        (
            "resource_type",
            pb::CreateBackupRequest {
                resource_type: "OS::Cinder::Volume".into(),
                ..server_backup(WEB_SERVER)
            },
        ),
        (
            "tags",
            pb::CreateBackupRequest {
                tags: (0..11).map(|i| tag(&format!("k{i}"), "v")).collect(),
                ..server_backup(WEB_SERVER)
            },
        ),
        (
            "tags[1].key",
            pb::CreateBackupRequest {
                tags: vec![tag("env", "a"), tag(" env ", "b")],
                ..server_backup(WEB_SERVER)
            },
        ),
        (
            "tags[0].value",
            pb::CreateBackupRequest {
                tags: vec![tag("env", "not/allowed")],
                ..server_backup(WEB_SERVER)
            },
        ),
        (
            "project_id",
            pb::CreateBackupRequest {
                project_id: "../other".into(),
                ..server_backup(WEB_SERVER)
            },
        ),
    ];
    for (field, request) in cases {
        let status = world.create(request).await.expect_err(field);
        assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
        let details = status.get_error_details();
        let fields: Vec<&str> = details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.as_str()).collect())
            .unwrap_or_default();
        assert!(fields.contains(&field), "expected {field}, got {fields:?}");
    }
    let bad_id = world.get("../../etc").await.expect_err("unsafe id");
    assert_eq!(bad_id.code(), Code::InvalidArgument);
    let sent = world.csbs_requests();
    assert!(sent.is_empty(), "the gateway sent {sent:?}");
    assert!(world.world.upstream_requests().is_empty(), "nothing went to VBS either");
}

#[tokio::test]
async fn csbs_errors_map_through_the_gateway_table() {
    let world = CsbsWorld::start().await;
    let unknown = world
        .create(server_backup(UNKNOWN_ID))
        .await
        .expect_err("unknown server");
    assert_eq!(unknown.code(), Code::NotFound, "{unknown:?}");
    assert_eq!(vbs_code(&unknown).as_deref(), Some("CSBS.6000"));
    assert!(
        unknown.message().starts_with("CSBS could not find"),
        "{}",
        unknown.message()
    );
    let metadata = error_metadata(&unknown);
    assert_eq!(metadata.get("httpStatus").map(String::as_str), Some("400"));
    assert_eq!(metadata.get("service").map(String::as_str), Some("CSBS"));

    let broken = world
        .create(server_backup(BROKEN_SERVER))
        .await
        .expect_err("ERROR server");
    assert_eq!(broken.code(), Code::FailedPrecondition);
    assert_eq!(vbs_code(&broken).as_deref(), Some("CSBS.6006"));

    world.back_up_web_server().await;
    let busy = world
        .create(server_backup(WEB_SERVER))
        .await
        .expect_err("already protecting");
    assert_eq!(busy.code(), Code::FailedPrecondition);
    assert_eq!(vbs_code(&busy).as_deref(), Some("CSBS.6005"));

    let missing = world.get(UNKNOWN_ID).await.expect_err("unknown backup");
    assert_eq!(missing.code(), Code::NotFound);
    assert_eq!(reason(&missing), "UPSTREAM_NOT_FOUND");

    world.csbs.inject_http_errors(403, 1);
    let denied = world.get(UNKNOWN_ID).await.expect_err("denied");
    assert_eq!(denied.code(), Code::PermissionDenied);
}

#[tokio::test]
async fn without_a_csbs_endpoint_every_rpc_is_unimplemented_and_names_the_flag() {
    let world = World::start().await;
    let mut client = CsbsBackupServiceClient::new(world.channel.clone());
    let create = client
        .create_backup(server_backup(WEB_SERVER))
        .await
        .expect_err("no CSBS");
    let wait = client
        .wait_backup(pb::WaitBackupRequest {
            backup_id: UNKNOWN_ID.into(),
            ..Default::default()
        })
        .await
        .expect_err("no CSBS");
    for status in [create, wait] {
        assert_eq!(status.code(), Code::Unimplemented);
        assert_eq!(reason(&status), "SERVICE_NOT_CONFIGURED");
        assert!(status.message().contains("--csbs-endpoint"), "{}", status.message());
        assert_eq!(
            error_metadata(&status).get("flag").map(String::as_str),
            Some("--csbs-endpoint")
        );
    }
    assert!(world.upstream_requests().is_empty());
}

#[tokio::test]
async fn csbs_calls_are_signed_and_the_simulator_checks_the_signature() {
    let world = CsbsWorld::start().await;
    world.back_up_web_server().await;
    for request in world.csbs_requests() {
        let authorization = request
            .headers
            .iter()
            .find(|(name, _)| name == "authorization")
            .map(|(_, value)| value.as_str())
            .expect("signed");
        assert!(
            authorization.starts_with(&format!("SDK-HMAC-SHA256 Access={ACCESS_KEY}")),
            "{authorization}"
        );
    }

    // CSBS keys of its own that the simulator does not know: refused upstream.
    let wrong = CsbsWorld::start_with(|config| {
        config.csbs.credentials = Some(Credentials::AccessKey(AccessKey {
            access_key: Secret::new(ACCESS_KEY),
            secret_key: Secret::new("not-the-secret-key-0000000000000000000000"),
            security_token: None,
            signing: Signing::default(),
        }));
    })
    .await;
    let refused = wrong
        .create(server_backup(WEB_SERVER))
        .await
        .expect_err("bad signature");
    assert_eq!(refused.code(), Code::Unauthenticated, "{refused:?}");
    assert!(!refused.message().contains("not-the-secret-key"));
    assert_eq!(wrong.csbs_requests().len(), 1, "a signature refusal is not retried");
}

#[tokio::test]
async fn a_server_backup_is_an_operation_done_with_its_backup_or_its_failure() {
    use prost::Message;
    use vbs_gateway::proto::longrunning::{self as lro, operation, operations_client::OperationsClient};

    let world = CsbsWorld::start().await;
    let mut operations = OperationsClient::new(world.world.channel.clone());
    let name = world.back_up_web_server().await.operation.expect("operation").name;
    let running = operations
        .get_operation(lro::GetOperationRequest { name: name.clone() })
        .await
        .expect("GetOperation")
        .into_inner();
    assert!(!running.done && running.metadata.is_some(), "{running:?}");

    world.csbs.advance(Duration::from_secs(3));
    let done = operations
        .wait_operation(lro::WaitOperationRequest {
            name: name.clone(),
            timeout: None,
        })
        .await
        .expect("WaitOperation")
        .into_inner();
    let Some(operation::Result::Response(response)) = done.result else {
        panic!("an available backup is the operation's response: {done:?}");
    };
    assert_eq!(response.type_url, "type.googleapis.com/csbs.v1.Backup");
    let backup = pb::Backup::decode(response.value.as_slice()).unwrap();
    assert_eq!(
        (backup.status(), name.ends_with(&backup.id)),
        (BackupStatus::Available, true)
    );

    world
        .csbs
        .fail_next_backups(1, "CSBS.9998", "snapshot of a disk failed");
    let failing = world.back_up_web_server().await.operation.unwrap().name;
    world.csbs.advance(Duration::from_secs(3));
    let failed = operations
        .get_operation(lro::GetOperationRequest { name: failing.clone() })
        .await
        .expect("GetOperation of the failed backup")
        .into_inner();
    let Some(operation::Result::Error(error)) = failed.result else {
        panic!("a failed backup is the operation's error: {failed:?}");
    };
    assert_eq!(error.message, "snapshot of a disk failed");
    let status = Status::with_details(
        Code::from(error.code),
        error.message.clone(),
        error.encode_to_vec().into(),
    );
    let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
    assert_eq!(
        (info.reason.as_str(), info.metadata["upstreamCode"].as_str()),
        ("BACKUP_FAILED", "CSBS.9998")
    );

    // Both are listed, newest first, each read again as it is now.
    let listed = listed_operations(&world.world.channel, &format!("projects/{PROJECT_ID}/checkpoints")).await;
    assert_eq!(listed, [(failing, true), (name, true)]);
}
