//! What operators see: the Prometheus endpoint after a few calls (RPCs by
//! code, upstream requests by status, the job hub, IAM token refreshes), and
//! the request id that every response carries back.

use tonic::Request;
use tonic_types::StatusExt;
use vbs_gateway::proto::pb;
use vbs_simulator::SimulatorConfig;

use crate::harness::{AuthMode, DISK_10GB, UNKNOWN_ID, World, gateway_credentials};

pub(crate) async fn scrape(world: &World) -> String {
    let url = world.metrics_url.as_ref().expect("metrics are on");
    let response = reqwest::get(url).await.expect("GET /metrics");
    assert_eq!(response.status(), 200);
    response.text().await.expect("metrics text")
}

/// The value of the sample whose line starts with `series` (name and labels).
pub(crate) fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

fn rpc(service: &str, method: &str) -> String {
    format!(r#"grpc_service="vbs.v2.{service}",grpc_method="{method}",grpc_type="unary""#)
}

#[tokio::test]
async fn the_metrics_endpoint_counts_rpcs_upstream_calls_watches_and_tokens() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.credentials = gateway_credentials(AuthMode::Iam, config.endpoint.as_ref().unwrap().as_str());
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    let mut backups = world.backups.clone();
    backups.list_backups(pb::ListBackupsRequest::default()).await.unwrap();
    backups.list_backups(pb::ListBackupsRequest::default()).await.unwrap();
    let missing = pb::GetBackupRequest {
        backup_id: UNKNOWN_ID.into(),
        ..Default::default()
    };
    backups.get_backup(missing).await.expect_err("not found");
    backups
        .create_backup(pb::CreateBackupRequest::default())
        .await
        .expect_err("invalid");
    let job_id = backups
        .create_backup(pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "metered".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    world.advance(10);
    let wait = pb::WaitJobRequest {
        job_id,
        ..Default::default()
    };
    world.jobs.clone().wait_job(wait).await.expect("WaitJob");

    let text = scrape(&world).await;
    let list = rpc("BackupService", "ListBackups");
    assert_eq!(
        sample(&text, &format!("grpc_server_started_total{{{list}}}")),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &format!(r#"grpc_server_handled_total{{{list},grpc_code="OK"}}"#)),
        Some(2.0)
    );
    assert_eq!(
        sample(&text, &format!("grpc_server_handling_seconds_count{{{list}}}")),
        Some(2.0)
    );
    let get = rpc("BackupService", "GetBackup");
    assert_eq!(
        sample(
            &text,
            &format!(r#"grpc_server_handled_total{{{get},grpc_code="NotFound"}}"#)
        ),
        Some(1.0)
    );
    let create = rpc("BackupService", "CreateBackup");
    let invalid = format!(r#"grpc_server_handled_total{{{create},grpc_code="InvalidArgument"}}"#);
    assert_eq!(sample(&text, &invalid), Some(1.0));
    let wait = rpc("JobService", "WaitJob");
    assert_eq!(
        sample(&text, &format!(r#"grpc_server_handled_total{{{wait},grpc_code="OK"}}"#)),
        Some(1.0)
    );

    let upstream = |operation: &str, status: &str| {
        sample(
            &text,
            &format!(r#"vbs_upstream_requests_total{{operation="{operation}",status="{status}"}}"#),
        )
    };
    assert_eq!(upstream("ListBackups", "200"), Some(2.0));
    assert_eq!(upstream("GetBackup", "404"), Some(1.0));
    assert_eq!(
        upstream("CreateBackup", "200"),
        Some(1.0),
        "the invalid create never went upstream"
    );
    assert!(upstream("GetJob", "200").is_some_and(|polls| polls >= 1.0));
    let duration = r#"vbs_upstream_request_duration_seconds_count{operation="ListBackups"}"#;
    assert_eq!(sample(&text, duration), Some(2.0));

    assert!(
        sample(&text, r#"vbs_watch_upstream_polls_total{service="vbs"}"#).is_some_and(|polls| polls >= 1.0),
        "{text}"
    );
    assert_eq!(sample(&text, r#"vbs_watch_active_watchers{service="vbs"}"#), Some(0.0));
    assert_eq!(sample(&text, "vbs_credential_refreshes_total"), Some(1.0));
    assert_eq!(sample(&text, "vbs_credential_refresh_failures_total"), Some(0.0));
    assert!(text.contains("# HELP grpc_server_handled_total"), "{text}");
}

#[tokio::test]
async fn metrics_are_off_unless_asked_for() {
    let world = World::start().await;
    assert!(world.metrics_url.is_none());
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let world = World::start().await;
    let mut backups = world.backups.clone();
    let mut request = Request::new(pb::ListBackupsRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "caller-chosen-id-17".parse().unwrap());
    let reply = backups.list_backups(request).await.unwrap();
    assert_eq!(reply.metadata().get("x-request-id").unwrap(), "caller-chosen-id-17");

    let reply = backups.list_backups(pb::ListBackupsRequest::default()).await.unwrap();
    let generated = reply
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert_eq!(generated.len(), 32, "{generated}");

    let mut request = Request::new(pb::GetBackupRequest {
        backup_id: "bad".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-request-id", "caller-chosen-id-18".parse().unwrap());
    let status = backups.get_backup(request).await.expect_err("invalid");
    // A unary error is trailers-only: its one header block is its trailers.
    assert_eq!(status.metadata().get("x-request-id").unwrap(), "caller-chosen-id-18");
    assert_eq!(status.get_error_details().error_info().unwrap().reason, "NOT_A_UUID");
}

#[tokio::test]
async fn calls_to_paths_that_name_no_rpc_share_one_series() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    })
    .await;
    for path in [
        "/vbs.v2.BackupService/NoSuchMethod",
        "/made.up.Service/Anything",
        "/no-slash",
    ] {
        let mut grpc = tonic::client::Grpc::new(world.channel.clone());
        grpc.ready().await.expect("ready");
        let status = grpc
            .unary::<_, pb::GetBackupResponse, _>(
                Request::new(pb::GetBackupRequest::default()),
                http::uri::PathAndQuery::from_static(path),
                tonic_prost::ProstCodec::default(),
            )
            .await
            .expect_err("no such RPC");
        assert_eq!(status.code(), tonic::Code::Unimplemented, "{path}: {status:?}");
    }

    let text = scrape(&world).await;
    for name in ["NoSuchMethod", "made.up.Service", "Anything", "no-slash"] {
        assert!(
            !text.contains(name),
            "a caller's made-up path became a label: {name}\n{text}"
        );
    }
    let unknown = r#"grpc_server_handled_total{grpc_service="unknown",grpc_method="unknown",grpc_type="unary",grpc_code="Unimplemented"}"#;
    assert_eq!(sample(&text, unknown), Some(3.0), "{text}");
}
