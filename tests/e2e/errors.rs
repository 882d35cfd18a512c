//! Failures between the gateway and upstream, end to end: outages, retries,
//! deadlines, unreachable and misbehaving upstreams, all mapped by the one table.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::Code;
use tonic_types::StatusExt;
use vbs_gateway::config::Config;
use vbs_gateway::proto::pb::{self, backup_service_client::BackupServiceClient};

use crate::harness::{DISK_10GB, World, error_metadata, serve};

/// An upstream that accepts connections and answers every request with `reply`
/// (or never answers, when `reply` is None).
async fn fake_upstream(reply: Option<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buffer = [0u8; 4096];
                let _ = socket.read(&mut buffer).await;
                match reply {
                    Some(reply) => {
                        let _ = socket.write_all(reply.as_bytes()).await;
                    }
                    None => std::future::pending::<()>().await,
                }
            });
        }
    });
    format!("http://{address}")
}

/// A gateway in front of `endpoint`; it serves until the returned sender drops.
async fn client_for(endpoint: &str) -> (BackupServiceClient<tonic::transport::Channel>, oneshot::Sender<()>) {
    let config = Config::for_testing(endpoint.parse().unwrap());
    let (channel, stop, _server) = serve(&config).await;
    (BackupServiceClient::new(channel), stop)
}

fn get(backup_id: &str) -> pb::GetBackupRequest {
    pb::GetBackupRequest {
        backup_id: backup_id.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn reads_survive_a_short_outage_by_retrying() {
    let world = World::start().await;
    let backup_id = world.make_backup(DISK_10GB, "kept").await;
    world.sim.clear_requests();
    world.sim.inject_http_errors(503, 2);
    let backup = world
        .backups
        .clone()
        .get_backup(get(&backup_id))
        .await
        .expect("third attempt succeeds");
    assert_eq!(backup.into_inner().backup.unwrap().id, backup_id);
    assert_eq!(world.upstream_requests().len(), 3);
}

#[tokio::test]
async fn writes_are_not_retried_once_sent() {
    let world = World::start().await;
    world.sim.inject_http_errors(503, 1);
    let status = world
        .backups
        .clone()
        .create_backup(pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "once".into(),
            ..Default::default()
        })
        .await
        .expect_err("upstream unavailable");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        error_metadata(&status).get("httpStatus").map(String::as_str),
        Some("503")
    );
    assert_eq!(world.upstream_requests().len(), 1);
}

#[tokio::test]
async fn a_long_outage_is_unavailable_after_the_retries() {
    let world = World::start().await;
    world.sim.inject_http_errors(502, 10);
    let status = world
        .backups
        .clone()
        .list_backups(pb::ListBackupsRequest::default())
        .await
        .expect_err("down");
    assert_eq!(status.code(), Code::Unavailable);
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.reason, "UPSTREAM_UNAVAILABLE");
    assert_eq!(info.metadata.get("operation").map(String::as_str), Some("ListBackups"));
    assert_eq!(world.upstream_requests().len(), 3);
}

#[tokio::test]
async fn an_unreachable_upstream_is_unavailable() {
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let (mut client, _gateway) = client_for(&endpoint).await;
    let status = client
        .list_backups(pb::ListBackupsRequest::default())
        .await
        .expect_err("nothing listens");
    assert_eq!(status.code(), Code::Unavailable);
}

#[tokio::test]
async fn the_callers_deadline_bounds_the_upstream_call() {
    let endpoint = fake_upstream(None).await;
    let (mut client, _gateway) = client_for(&endpoint).await;
    let mut request = tonic::Request::new(pb::ListBackupsRequest::default());
    request.set_timeout(Duration::from_secs(1));
    let status = client.list_backups(request).await.expect_err("upstream never answers");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
}

#[tokio::test]
async fn a_body_that_does_not_decode_is_internal_and_not_echoed() {
    let endpoint = fake_upstream(Some(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 21\r\nconnection: close\r\n\r\n{\"backups\": \"secret\"}",
    ))
    .await;
    let (mut client, _gateway) = client_for(&endpoint).await;
    let status = client
        .list_backups(pb::ListBackupsRequest::default())
        .await
        .expect_err("bad body");
    assert_eq!(status.code(), Code::Internal);
    assert!(!status.message().contains("secret"), "{}", status.message());
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.reason, "UPSTREAM_BAD_RESPONSE");
}

#[tokio::test]
async fn upstream_error_bodies_of_the_api_gateway_shape_are_read() {
    let endpoint = fake_upstream(Some(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\ncontent-length: 65\r\nconnection: close\r\n\r\n{\"error_msg\":\"The request is not allowed\",\"error_code\":\"APIGW.0\"}",
    ))
    .await;
    let (mut client, _gateway) = client_for(&endpoint).await;
    let status = client.get_backup(get(DISK_10GB)).await.expect_err("forbidden");
    assert_eq!(status.code(), Code::PermissionDenied);
    let meta = error_metadata(&status);
    assert_eq!(meta.get("vbsCode").map(String::as_str), Some("APIGW.0"));
    assert_eq!(
        meta.get("vbsMessage").map(String::as_str),
        Some("The request is not allowed")
    );
}

#[tokio::test]
async fn no_project_anywhere_is_an_invalid_argument() {
    let world = World::start_with(vbs_simulator::SimulatorConfig::for_testing(), |config| {
        config.default_project_id = None;
    })
    .await;
    let status = world
        .backups
        .clone()
        .list_backups(pb::ListBackupsRequest::default())
        .await
        .expect_err("no project");
    assert_eq!(status.code(), Code::InvalidArgument);
    assert!(world.upstream_requests().is_empty());
}
