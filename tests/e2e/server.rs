//! What every gRPC server of ours offers besides the VBS services: health and
//! reflection (v1 and v1alpha) with the error-detail types grpcurl needs.

use tokio_stream::StreamExt;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_reflection::pb::v1::{
    ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
    server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
};
use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient as AlphaClient;

use crate::harness::World;

#[tokio::test]
async fn every_service_reports_serving() {
    let world = World::start().await;
    let mut health = HealthClient::new(world.channel.clone());
    for service in [
        "",
        "vbs.v2.BackupService",
        "vbs.v2.BackupPolicyService",
        "vbs.v2.JobService",
    ] {
        let reply = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("{service:?}: {e}"));
        assert_eq!(reply.into_inner().status(), ServingStatus::Serving, "{service:?}");
    }
}

async fn reflect(world: &World, request: MessageRequest) -> MessageResponse {
    let mut client = ServerReflectionClient::new(world.channel.clone());
    let outbound = tokio_stream::iter([ServerReflectionRequest {
        host: String::new(),
        message_request: Some(request),
    }]);
    let mut replies = client
        .server_reflection_info(outbound)
        .await
        .expect("reflection")
        .into_inner();
    let reply = replies.next().await.expect("one reply").expect("reply ok");
    reply.message_response.expect("message response")
}

#[tokio::test]
async fn reflection_lists_and_describes_everything() {
    let world = World::start().await;
    let MessageResponse::ListServicesResponse(list) =
        reflect(&world, MessageRequest::ListServices(String::new())).await
    else {
        panic!("expected a service list")
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    for expected in [
        "vbs.v2.BackupService",
        "vbs.v2.BackupPolicyService",
        "vbs.v2.JobService",
        "grpc.health.v1.Health",
    ] {
        assert!(names.iter().any(|n| n == expected), "{expected} missing from {names:?}");
    }
    for symbol in [
        "vbs.v2.BackupService",
        "google.rpc.ErrorInfo",
        "google.rpc.BadRequest",
        "grpc.health.v1.Health",
    ] {
        let reply = reflect(&world, MessageRequest::FileContainingSymbol(symbol.into())).await;
        let MessageResponse::FileDescriptorResponse(files) = reply else {
            panic!("{symbol}: expected descriptors, got {reply:?}")
        };
        assert!(!files.file_descriptor_proto.is_empty(), "{symbol}");
    }
}

#[tokio::test]
async fn the_older_reflection_protocol_answers_too() {
    use tonic_reflection::pb::v1alpha::{
        ServerReflectionRequest as AlphaRequest, server_reflection_request::MessageRequest as AlphaMessage,
    };
    let world = World::start().await;
    let mut client = AlphaClient::new(world.channel.clone());
    let outbound = tokio_stream::iter([AlphaRequest {
        host: String::new(),
        message_request: Some(AlphaMessage::ListServices(String::new())),
    }]);
    let mut replies = client
        .server_reflection_info(outbound)
        .await
        .expect("v1alpha")
        .into_inner();
    assert!(replies.next().await.expect("one reply").is_ok());
}

#[tokio::test]
async fn a_stopped_gateway_drains_and_refuses_new_calls() {
    let world = World::start().await;
    let mut backups = world.backups.clone();
    backups
        .list_backups(vbs_gateway::proto::pb::ListBackupsRequest::default())
        .await
        .expect("serving");
    world.stop().await;
    let status = backups
        .list_backups(vbs_gateway::proto::pb::ListBackupsRequest::default())
        .await
        .expect_err("stopped");
    assert_eq!(status.code(), tonic::Code::Unavailable);
}
