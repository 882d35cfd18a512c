//! The upstream budget end to end: every call to VBS takes a slot of its
//! project's token bucket; a call with no slot before its deadline fails
//! RESOURCE_EXHAUSTED with RetryInfo and sends nothing.

use std::time::Duration;

use tonic::{Code, Request};
use tonic_types::StatusExt;
use vbs_gateway::config::BudgetConfig;
use vbs_gateway::proto::pb;
use vbs_simulator::SimulatorConfig;

use crate::harness::World;

/// A world whose project may send `rate` requests a second, `burst` at once.
async fn world_with_budget(rate: f64, burst: u32) -> World {
    World::start_with(SimulatorConfig::for_testing(), |config| {
        config.budget = BudgetConfig {
            rate: Some(rate),
            burst,
            ..BudgetConfig::default()
        };
    })
    .await
}

fn list_within(deadline: Duration) -> Request<pb::ListBackupsRequest> {
    let mut request = Request::new(pb::ListBackupsRequest::default());
    request.set_timeout(deadline);
    request
}

#[tokio::test]
async fn a_read_over_the_budget_fails_at_once_with_retry_info_when_its_deadline_is_too_short() {
    let world = world_with_budget(0.5, 2).await;
    let mut backups = world.backups.clone();
    for _ in 0..2 {
        backups
            .list_backups(list_within(Duration::from_secs(5)))
            .await
            .expect("within the burst");
    }
    let status = backups
        .list_backups(list_within(Duration::from_millis(300)))
        .await
        .expect_err("no slot within 300 ms");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "UPSTREAM_BUDGET_EXHAUSTED");
    let retry = details.retry_info().and_then(|r| r.retry_delay).expect("RetryInfo");
    assert!(
        retry > Duration::from_millis(300) && retry <= Duration::from_secs(2),
        "{retry:?}"
    );
    assert_eq!(world.upstream_requests().len(), 2, "the refused call sent nothing");
}

#[tokio::test]
async fn a_read_over_the_budget_waits_for_its_slot_within_its_deadline() {
    let world = world_with_budget(4.0, 1).await;
    let mut backups = world.backups.clone();
    // Timed from before the first call: its slot was taken after this, and
    // the next comes 250 ms after it, however long the first call took.
    let started = tokio::time::Instant::now();
    backups
        .list_backups(list_within(Duration::from_secs(5)))
        .await
        .expect("the burst");
    backups
        .list_backups(list_within(Duration::from_secs(5)))
        .await
        .expect("waits for the next slot");
    // Not a timing test: the second call cannot have gone before its slot
    // (a margin for the bucket's rounding).
    assert!(
        started.elapsed() >= Duration::from_millis(240),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(world.upstream_requests().len(), 2);
}

#[tokio::test]
async fn a_write_over_the_budget_is_refused_unsent_and_a_retry_with_its_request_id_runs() {
    let world = world_with_budget(0.5, 1).await;
    let mut backups = world.backups.clone();
    backups
        .list_backups(list_within(Duration::from_secs(5)))
        .await
        .expect("the burst");
    let create = |deadline| {
        let mut request = Request::new(pb::CreateBackupRequest {
            volume_id: crate::harness::DISK_10GB.into(),
            name: "budgeted".into(),
            request_id: "7d3f0c2a-5b1e-4c8d-9a6f-0e2b4c6d8f10".into(),
            ..Default::default()
        });
        request.set_timeout(deadline);
        request
    };
    let status = backups
        .create_backup(create(Duration::from_millis(200)))
        .await
        .expect_err("no slot");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(world.upstream_requests().len(), 1, "nothing sent");
    // Nothing was done upstream, so the id is free: the retry runs.
    let job = backups
        .create_backup(create(Duration::from_secs(5)))
        .await
        .expect("the retry waits for its slot and runs");
    assert!(!job.into_inner().job_id.is_empty());
    let posts = world.upstream_requests().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 1);
}

#[tokio::test]
async fn calls_of_many_clients_together_never_exceed_the_budget() {
    const RATE: f64 = 20.0;
    const BURST: u32 = 5;
    let world = world_with_budget(RATE, BURST).await;
    let started = tokio::time::Instant::now();
    let mut calls = Vec::new();
    for _ in 0..60 {
        let mut backups = world.backups.clone();
        calls.push(tokio::spawn(async move {
            backups.list_backups(list_within(Duration::from_secs(10))).await
        }));
    }
    for call in calls {
        call.await.unwrap().expect("every call gets a slot within 10 s");
    }
    let sent = world.upstream_requests().len();
    assert_eq!(sent, 60);
    // 60 requests at 20/s after a burst of 5 need at least 55/20 s.
    assert!(
        started.elapsed() >= Duration::from_secs_f64(55.0 / RATE),
        "{:?}",
        started.elapsed()
    );
}
