//! The fleet itself: a call through nginx reaches a replica and the simulator.

use vbs_gateway::proto::pb;

use crate::harness::Fleet;

#[tokio::test]
async fn a_call_through_nginx_reaches_a_replica_and_the_simulator() {
    let Some(fleet) = Fleet::start(2).await else {
        return;
    };
    let mut backups = fleet.backups().await;
    for _ in 0..4 {
        backups
            .list_backups(pb::ListBackupsRequest::default())
            .await
            .expect("ListBackups through nginx");
    }
    assert_eq!(
        fleet.simulator.count("GET", "/backups"),
        4,
        "{:?}",
        fleet.simulator.requests()
    );
    // Round robin: both replicas served calls.
    for replica in 0..2 {
        let handled = fleet.metric(
            replica,
            "grpc_server_handled_total",
            &[("grpc_method", "ListBackups"), ("grpc_code", "OK")],
        );
        assert!(handled >= 1.0, "replica {replica} served no call");
    }
}

#[test]
fn the_readme_quotes_the_nginx_configuration_the_suite_uses() {
    let readme = include_str!("../../README.md");
    let quoted: Vec<String> = crate::harness::NGINX_TEMPLATE
        .lines()
        .map(|line| {
            if line.is_empty() {
                String::new()
            } else {
                format!("    {line}")
            }
        })
        .collect();
    let quoted = quoted.join("\n");
    assert!(
        readme.contains(&quoted),
        "README.md (Running several replicas) must quote deploy/nginx-grpc.conf as is, indented four spaces:\n{quoted}"
    );
}
