//! BackupPolicyService end to end: the policy lifecycle, resources, runs and
//! tasks, and the frequency the gateway fills in on updates.

use tonic::Code;
use vbs_gateway::proto::pb::{self, JobStatus, PolicyStatus, TaskStatus, Weekday};

use crate::harness::{DISK_10GB, DISK_20GB, UNKNOWN_ID, World, vbs_code};

fn schedule(frequency: i32) -> pb::ScheduledPolicy {
    pb::ScheduledPolicy {
        start_time: "12:00".into(),
        frequency: Some(frequency),
        retention_num: Some(10),
        remain_first_backup_of_cur_month: Some(true),
        status: PolicyStatus::On as i32,
        ..Default::default()
    }
}

async fn create_policy(world: &World, name: &str) -> String {
    world
        .policies
        .clone()
        .create_backup_policy(pb::CreateBackupPolicyRequest {
            backup_policy_name: name.into(),
            scheduled_policy: Some(schedule(3)),
            ..Default::default()
        })
        .await
        .expect("CreateBackupPolicy")
        .into_inner()
        .backup_policy_id
}

async fn find_policy(world: &World, id: &str) -> pb::BackupPolicy {
    let list = world
        .policies
        .clone()
        .list_backup_policies(pb::ListBackupPoliciesRequest::default())
        .await
        .expect("ListBackupPolicies")
        .into_inner();
    list.backup_policies
        .into_iter()
        .find(|p| p.backup_policy_id == id)
        .expect("policy listed")
}

#[tokio::test]
async fn create_associate_execute_tasks_disassociate_delete() {
    let world = World::start().await;
    let mut policies = world.policies.clone();
    let policy_id = policies
        .create_backup_policy(pb::CreateBackupPolicyRequest {
            backup_policy_name: "nightly".into(),
            scheduled_policy: Some(schedule(1)),
            tags: vec![pb::Tag {
                key: "env".into(),
                value: "prod".into(),
            }],
            ..Default::default()
        })
        .await
        .expect("CreateBackupPolicy")
        .into_inner()
        .backup_policy_id;
    let body: serde_json::Value = serde_json::from_str(&world.upstream_requests()[0].body).unwrap();
    assert_eq!(body["scheduled_policy"]["rentention_num"], 10);
    assert_eq!(body["scheduled_policy"]["remain_first_backup_of_curMonth"], "Y");

    let listed = find_policy(&world, &policy_id).await;
    assert_eq!(listed.backup_policy_name, "nightly");
    let listed_schedule = listed.scheduled_policy.expect("schedule");
    assert_eq!(listed_schedule.status(), PolicyStatus::On);
    assert_eq!(
        (listed_schedule.frequency, listed_schedule.retention_num),
        (Some(1), Some(10))
    );
    assert_eq!(listed_schedule.remain_first_backup_of_cur_month, Some(true));

    let associated = policies
        .associate_resources(pb::AssociateResourcesRequest {
            backup_policy_id: policy_id.clone(),
            resources: vec![
                pb::PolicyResource {
                    resource_id: DISK_10GB.into(),
                    resource_type: String::new(),
                },
                pb::PolicyResource {
                    resource_id: DISK_20GB.into(),
                    resource_type: "volume".into(),
                },
                pb::PolicyResource {
                    resource_id: UNKNOWN_ID.into(),
                    resource_type: "volume".into(),
                },
            ],
            ..Default::default()
        })
        .await
        .expect("AssociateResources")
        .into_inner();
    let ok: Vec<&str> = associated
        .success_resources
        .iter()
        .map(|r| r.resource_id.as_str())
        .collect();
    assert_eq!(ok, [DISK_10GB, DISK_20GB]);
    assert_eq!(associated.fail_resources.len(), 1);
    assert_eq!(associated.fail_resources[0].resource_id, UNKNOWN_ID);
    assert!(!associated.fail_resources[0].code.is_empty());
    assert_eq!(find_policy(&world, &policy_id).await.policy_resource_count, 2);

    policies
        .execute_backup_policy(pb::ExecuteBackupPolicyRequest {
            backup_policy_id: policy_id.clone(),
            ..Default::default()
        })
        .await
        .expect("ExecuteBackupPolicy");
    let tasks = policies
        .list_backup_policy_tasks(pb::ListBackupPolicyTasksRequest {
            backup_policy_id: policy_id.clone(),
            ..Default::default()
        })
        .await
        .expect("ListBackupPolicyTasks")
        .into_inner();
    assert_eq!(tasks.total_size, 2);
    assert_eq!(tasks.tasks.len(), 2);
    for task in &tasks.tasks {
        assert!(task.backup_name.starts_with("autobk_"), "{task:?}");
        assert!(task.created_at.is_some());
        assert!(!task.vbs_job_id.is_empty());
        let job = world.finish_job(&task.vbs_job_id).await;
        assert_eq!(job.status(), JobStatus::Success);
    }
    let done = policies
        .list_backup_policy_tasks(pb::ListBackupPolicyTasksRequest {
            backup_policy_id: policy_id.clone(),
            status: TaskStatus::ExecuteSuccess as i32,
            sort_order: "asc".into(),
            page_size: 1,
            ..Default::default()
        })
        .await
        .expect("filtered tasks")
        .into_inner();
    assert_eq!(done.total_size, 2);
    assert_eq!(done.tasks.len(), 1);
    // A full page means more may follow: the token continues after its last task.
    assert_eq!(done.next_page_token, done.tasks[0].task_id);
    let rest = policies
        .list_backup_policy_tasks(pb::ListBackupPolicyTasksRequest {
            backup_policy_id: policy_id.clone(),
            status: TaskStatus::ExecuteSuccess as i32,
            sort_order: "asc".into(),
            page_size: 1,
            page_token: done.next_page_token.clone(),
            ..Default::default()
        })
        .await
        .expect("second page of tasks")
        .into_inner();
    assert_eq!(rest.tasks.len(), 1);
    assert_ne!(rest.tasks[0].task_id, done.tasks[0].task_id);
    assert!(done.tasks[0].finished_at.is_some());
    assert_eq!(done.tasks[0].status_raw, "EXECUTE_SUCCESS");

    let disassociated = policies
        .disassociate_resources(pb::DisassociateResourcesRequest {
            backup_policy_id: policy_id.clone(),
            resources: vec![pb::PolicyResource {
                resource_id: DISK_20GB.into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .expect("DisassociateResources")
        .into_inner();
    assert_eq!(disassociated.success_resources[0].resource_id, DISK_20GB);
    assert_eq!(find_policy(&world, &policy_id).await.policy_resource_count, 1);

    policies
        .delete_backup_policy(pb::DeleteBackupPolicyRequest {
            backup_policy_id: policy_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DeleteBackupPolicy");
    let list = policies
        .list_backup_policies(pb::ListBackupPoliciesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(list.backup_policies.is_empty());
    let again = policies
        .delete_backup_policy(pb::DeleteBackupPolicyRequest {
            backup_policy_id: policy_id,
            ..Default::default()
        })
        .await
        .expect_err("already deleted");
    assert_eq!(again.code(), Code::NotFound);
    assert_eq!(vbs_code(&again).as_deref(), Some("AutoBackup.0205"));
}

#[tokio::test]
async fn updates_without_a_frequency_send_the_current_one() {
    let world = World::start().await;
    let policy_id = create_policy(&world, "weekly").await;
    world.sim.clear_requests();
    world
        .policies
        .clone()
        .update_backup_policy(pb::UpdateBackupPolicyRequest {
            backup_policy_id: policy_id.clone(),
            backup_policy_name: "renamed".into(),
            scheduled_policy: Some(pb::ScheduledPolicyUpdate {
                retention_num: Some(5),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("UpdateBackupPolicy");
    let sent = world.upstream_requests();
    let put = sent.iter().find(|r| r.method == "PUT").expect("a PUT upstream");
    let body: serde_json::Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(body["scheduled_policy"]["frequency"], 3, "{body}");
    assert_eq!(body["scheduled_policy"]["rentention_num"], 5);
    let policy = find_policy(&world, &policy_id).await;
    assert_eq!(policy.backup_policy_name, "renamed");
    assert_eq!(policy.scheduled_policy.unwrap().retention_num, Some(5));
}

#[tokio::test]
async fn an_update_that_sets_the_frequency_is_sent_as_is() {
    let world = World::start().await;
    let policy_id = create_policy(&world, "daily").await;
    world.sim.clear_requests();
    world
        .policies
        .clone()
        .update_backup_policy(pb::UpdateBackupPolicyRequest {
            backup_policy_id: policy_id.clone(),
            scheduled_policy: Some(pb::ScheduledPolicyUpdate {
                week_frequency: vec![Weekday::Mon as i32, Weekday::Thu as i32],
                start_time: "22:00,02:00".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("UpdateBackupPolicy");
    let sent = world.upstream_requests();
    assert_eq!(sent.len(), 1, "no lookup needed: {sent:?}");
    let policy = find_policy(&world, &policy_id).await;
    let schedule = policy.scheduled_policy.unwrap();
    assert_eq!(schedule.week_frequency, [Weekday::Mon as i32, Weekday::Thu as i32]);
    assert_eq!(schedule.start_time, "22:00,02:00");
}

#[tokio::test]
async fn enable_and_disable_keep_the_schedule_complete() {
    let world = World::start().await;
    let policy_id = create_policy(&world, "toggled").await;
    let mut policies = world.policies.clone();
    let disabled = policies
        .disable_backup_policy(pb::DisableBackupPolicyRequest {
            backup_policy_id: policy_id.clone(),
            ..Default::default()
        })
        .await
        .expect("DisableBackupPolicy")
        .into_inner();
    assert_eq!(disabled.backup_policy_id, policy_id);
    let put = world
        .upstream_requests()
        .into_iter()
        .rfind(|r| r.method == "PUT")
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&put.body).unwrap();
    assert_eq!(
        body["scheduled_policy"],
        serde_json::json!({"status": "OFF", "frequency": 3})
    );
    assert_eq!(
        find_policy(&world, &policy_id).await.scheduled_policy.unwrap().status(),
        PolicyStatus::Off
    );

    policies
        .enable_backup_policy(pb::EnableBackupPolicyRequest {
            backup_policy_id: policy_id.clone(),
            ..Default::default()
        })
        .await
        .expect("EnableBackupPolicy");
    let policy = find_policy(&world, &policy_id).await;
    assert_eq!(policy.scheduled_policy.unwrap().status(), PolicyStatus::On);
    assert_eq!(policy.status_raw, "ON");

    let unknown = policies
        .enable_backup_policy(pb::EnableBackupPolicyRequest {
            backup_policy_id: UNKNOWN_ID.into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown policy");
    assert_eq!(unknown.code(), Code::NotFound);
}

#[tokio::test]
async fn the_eleventh_policy_exhausts_the_quota() {
    let world = World::start().await;
    for i in 0..10 {
        create_policy(&world, &format!("p{i}")).await;
    }
    let status = world
        .policies
        .clone()
        .create_backup_policy(pb::CreateBackupPolicyRequest {
            backup_policy_name: "p10".into(),
            scheduled_policy: Some(schedule(1)),
            ..Default::default()
        })
        .await
        .expect_err("past 10 policies");
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(vbs_code(&status).as_deref(), Some("AutoBackup.0203"));
}

#[tokio::test]
async fn executing_twice_while_running_is_a_failed_precondition() {
    let world = World::start().await;
    let policy_id = create_policy(&world, "busy").await;
    let mut policies = world.policies.clone();
    policies
        .associate_resources(pb::AssociateResourcesRequest {
            backup_policy_id: policy_id.clone(),
            resources: vec![pb::PolicyResource {
                resource_id: DISK_10GB.into(),
                ..Default::default()
            }],
            ..Default::default()
        })
        .await
        .unwrap();
    let execute = pb::ExecuteBackupPolicyRequest {
        backup_policy_id: policy_id,
        ..Default::default()
    };
    policies
        .execute_backup_policy(execute.clone())
        .await
        .expect("first run");
    let status = policies
        .execute_backup_policy(execute)
        .await
        .expect_err("still running");
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(vbs_code(&status).as_deref(), Some("AutoBackup.0225"));
}

#[tokio::test]
async fn the_default_deadline_bounds_all_upstream_calls_of_an_rpc_together() {
    // DisableBackupPolicy reads the policy, then updates it: two upstream
    // calls of 700 ms each, under a default deadline of 1 s for the RPC.
    let world = World::start_with(vbs_simulator::SimulatorConfig::for_testing(), |config| {
        config.bounds.default_deadline = std::time::Duration::from_secs(1);
    })
    .await;
    let policy_id = create_policy(&world, "slow-toggle").await;
    world.sim.delay_next_requests(2, std::time::Duration::from_millis(700));
    let status = world
        .policies
        .clone()
        .disable_backup_policy(pb::DisableBackupPolicyRequest {
            backup_policy_id: policy_id,
            ..Default::default()
        })
        .await
        .expect_err("1.4 s of upstream calls do not fit in 1 s");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
}
