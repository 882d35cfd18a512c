//! ListOperations is one list for the fleet: jobs started through any
//! replica are listed by every replica, newest first, one page after another.

use tonic::transport::Channel;
use vbs_gateway::proto::longrunning::{self as lro, operations_client::OperationsClient};
use vbs_gateway::proto::pb;

use crate::harness::{DISK_10GB, DISK_20GB, Fleet};

async fn list_all(channel: Channel, project_operations: &str) -> Vec<String> {
    let mut client = OperationsClient::new(channel);
    let mut names = Vec::new();
    let mut page_token = String::new();
    for _ in 0..10 {
        let page = client
            .list_operations(lro::ListOperationsRequest {
                name: project_operations.into(),
                page_size: 1,
                page_token,
                ..Default::default()
            })
            .await
            .expect("ListOperations")
            .into_inner();
        names.extend(page.operations.into_iter().map(|op| op.name));
        if page.next_page_token.is_empty() {
            return names;
        }
        page_token = page.next_page_token;
    }
    panic!("paging does not end: {names:?}");
}

#[tokio::test]
async fn every_replica_lists_the_operations_all_of_them_started() {
    let Some(fleet) = Fleet::start(2).await else {
        return;
    };
    let mut started = Vec::new();
    for (replica, disk) in [(0, DISK_10GB), (1, DISK_20GB)] {
        let mut backups = pb::backup_service_client::BackupServiceClient::new(fleet.replica_channel(replica).await);
        let reply = backups
            .create_backup(pb::CreateBackupRequest {
                volume_id: disk.into(),
                name: format!("from-{replica}"),
                ..Default::default()
            })
            .await
            .expect("CreateBackup")
            .into_inner();
        started.push(reply.operation.expect("operation").name);
    }
    started.reverse();
    let parent = started[0].rsplit_once('/').expect("a job name").0.to_string();
    for replica in 0..2 {
        let listed = list_all(fleet.replica_channel(replica).await, &parent).await;
        assert_eq!(listed, started, "replica {replica}");
    }
}
