//! Policy tags end to end: one tag, a batch, the list, the search of
//! policies by tag (filter and count), and the tag API's rules.

use tonic::Code;
use vbs_gateway::proto::pb::{self, PolicyStatus, TagAction};

use crate::harness::{UNKNOWN_ID, World, assert_rejected, assert_rejected_because, vbs_code};

async fn create_policy(world: &World, name: &str) -> String {
    world
        .policies
        .clone()
        .create_backup_policy(pb::CreateBackupPolicyRequest {
            backup_policy_name: name.into(),
            scheduled_policy: Some(pb::ScheduledPolicy {
                start_time: "12:00".into(),
                frequency: Some(1),
                status: PolicyStatus::On as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("CreateBackupPolicy")
        .into_inner()
        .backup_policy_id
}

fn tag(key: &str, value: &str) -> pb::Tag {
    pb::Tag {
        key: key.into(),
        value: value.into(),
    }
}

async fn tags_of(world: &World, policy_id: &str) -> Vec<(String, String)> {
    let list = world
        .policies
        .clone()
        .list_policy_tags(pb::ListPolicyTagsRequest {
            backup_policy_id: policy_id.into(),
            ..Default::default()
        })
        .await
        .expect("ListPolicyTags")
        .into_inner();
    let mut tags: Vec<(String, String)> = list.tags.into_iter().map(|t| (t.key, t.value)).collect();
    tags.sort();
    tags
}

fn pair(key: &str, value: &str) -> (String, String) {
    (key.into(), value.into())
}

#[tokio::test]
async fn add_batch_list_and_delete_policy_tags() {
    let world = World::start().await;
    let mut policies = world.policies.clone();
    let policy_id = create_policy(&world, "tagged").await;
    world.sim.clear_requests();

    policies
        .add_policy_tag(pb::AddPolicyTagRequest {
            backup_policy_id: policy_id.clone(),
            tag: Some(tag("env", "prod")),
            ..Default::default()
        })
        .await
        .expect("AddPolicyTag");
    let sent = &world.upstream_requests()[0];
    assert_eq!(
        sent.path,
        format!("/v2/{}/backuppolicy/{policy_id}/tags", crate::harness::PROJECT_ID)
    );
    let body: serde_json::Value = serde_json::from_str(&sent.body).unwrap();
    assert_eq!(body, serde_json::json!({"tag": {"key": "env", "value": "prod"}}));

    policies
        .batch_policy_tags(pb::BatchPolicyTagsRequest {
            backup_policy_id: policy_id.clone(),
            action: TagAction::Create as i32,
            tags: vec![tag("team.a", "ops"), tag("env", "test")],
            ..Default::default()
        })
        .await
        .expect("BatchPolicyTags create");
    assert_eq!(
        tags_of(&world, &policy_id).await,
        [pair("env", "test"), pair("team.a", "ops")]
    );

    policies
        .delete_policy_tag(pb::DeletePolicyTagRequest {
            backup_policy_id: policy_id.clone(),
            key: "team.a".into(),
            ..Default::default()
        })
        .await
        .expect("DeletePolicyTag");
    policies
        .batch_policy_tags(pb::BatchPolicyTagsRequest {
            backup_policy_id: policy_id.clone(),
            action: TagAction::Delete as i32,
            tags: vec![tag("env", "")],
            ..Default::default()
        })
        .await
        .expect("BatchPolicyTags delete");
    assert!(tags_of(&world, &policy_id).await.is_empty());
    let batch = world
        .upstream_requests()
        .into_iter()
        .rfind(|r| r.path.ends_with("/tags/action"))
        .unwrap();
    let body: serde_json::Value = serde_json::from_str(&batch.body).unwrap();
    assert_eq!(body["action"], "delete");
}

#[tokio::test]
async fn an_eleventh_tag_is_refused_upstream_and_an_unknown_policy_is_not_found() {
    let world = World::start().await;
    let mut policies = world.policies.clone();
    let policy_id = create_policy(&world, "full").await;
    policies
        .batch_policy_tags(pb::BatchPolicyTagsRequest {
            backup_policy_id: policy_id.clone(),
            action: TagAction::Create as i32,
            tags: (0..10).map(|i| tag(&format!("k{i}"), "v")).collect(),
            ..Default::default()
        })
        .await
        .expect("ten tags");
    let refused = policies
        .add_policy_tag(pb::AddPolicyTagRequest {
            backup_policy_id: policy_id.clone(),
            tag: Some(tag("k10", "v")),
            ..Default::default()
        })
        .await
        .expect_err("an eleventh tag");
    assert_eq!(refused.code(), Code::ResourceExhausted, "the tag limit is a quota");
    assert_eq!(vbs_code(&refused).as_deref(), Some("VolumeBackup.0050"));

    let missing = policies
        .list_policy_tags(pb::ListPolicyTagsRequest {
            backup_policy_id: UNKNOWN_ID.into(),
            ..Default::default()
        })
        .await
        .expect_err("unknown policy");
    assert_eq!(missing.code(), Code::NotFound);
}

#[tokio::test]
async fn tag_rules_are_checked_before_anything_is_sent() {
    let world = World::start().await;
    let mut policies = world.policies.clone();
    let policy_id = "3b5c2a0e-0000-4000-8000-000000000001".to_string();
    let add = |key: &str, value: &str| pb::AddPolicyTagRequest {
        backup_policy_id: policy_id.clone(),
        tag: Some(tag(key, value)),
        ..Default::default()
    };
    assert_rejected(&world, policies.add_policy_tag(add("a b", "v")).await, "tag.key");
    assert_rejected(
        &world,
        policies.add_policy_tag(add(&"k".repeat(37), "v")).await,
        "tag.key",
    );
    assert_rejected(&world, policies.add_policy_tag(add("k", "a:b")).await, "tag.value");
    assert_rejected(
        &world,
        policies.add_policy_tag(add("k", &"v".repeat(44))).await,
        "tag.value",
    );
    let delete = |key: &str| pb::DeletePolicyTagRequest {
        backup_policy_id: policy_id.clone(),
        key: key.into(),
        ..Default::default()
    };
    for key in ["..", "a/b", "a%2F", ""] {
        assert_rejected(&world, policies.delete_policy_tag(delete(key)).await, "key");
    }
    let batch = pb::BatchPolicyTagsRequest {
        backup_policy_id: policy_id.clone(),
        action: TagAction::Unspecified as i32,
        tags: (0..11).map(|i| tag(&format!("k{i}"), "v")).collect(),
        ..Default::default()
    };
    let result = policies.batch_policy_tags(batch).await.map(|_| ());
    assert_rejected_because(&world, result.clone(), "action", "FIELD_REQUIRED");
    assert_rejected_because(&world, result, "tags", "TOO_MANY_ENTRIES");
    let twice = pb::BatchPolicyTagsRequest {
        backup_policy_id: policy_id.clone(),
        action: TagAction::Create as i32,
        tags: vec![tag("k", "1"), tag("k", "2")],
        ..Default::default()
    };
    assert_rejected_because(
        &world,
        policies.batch_policy_tags(twice).await,
        "tags[1].key",
        "DUPLICATE_VALUE",
    );
    let search = pb::CountPoliciesByTagsRequest {
        filter: Some(pb::PolicyTagFilter {
            tags_any: vec![pb::TagMatch {
                key: "k".into(),
                values: vec!["a,b".into()],
            }],
            ..Default::default()
        }),
        ..Default::default()
    };
    assert_rejected(
        &world,
        policies.count_policies_by_tags(search).await,
        "filter.tags_any[0].values[0]",
    );
}

fn matching(key: &str, values: &[&str]) -> pb::TagMatch {
    pb::TagMatch {
        key: key.into(),
        values: values.iter().map(|v| v.to_string()).collect(),
    }
}

#[tokio::test]
async fn policies_are_found_and_counted_by_their_tags() {
    let world = World::start().await;
    let mut policies = world.policies.clone();
    let mut ids = Vec::new();
    for (name, env) in [("alpha", "prod"), ("beta", "dev"), ("gamma", "prod")] {
        let id = create_policy(&world, name).await;
        policies
            .add_policy_tag(pb::AddPolicyTagRequest {
                backup_policy_id: id.clone(),
                tag: Some(tag("env", env)),
                ..Default::default()
            })
            .await
            .expect("AddPolicyTag");
        ids.push(id);
    }
    world.sim.clear_requests();
    let prod = pb::PolicyTagFilter {
        tags: vec![matching("env", &["prod"])],
        ..Default::default()
    };
    let page_of = |page_token: String| {
        let mut policies = policies.clone();
        let filter = Some(prod.clone());
        async move {
            policies
                .list_policies_by_tags(pb::ListPoliciesByTagsRequest {
                    filter,
                    page_size: 1,
                    page_token,
                    ..Default::default()
                })
                .await
                .expect("ListPoliciesByTags")
                .into_inner()
        }
    };
    let first = page_of(String::new()).await;
    assert_eq!((first.total_size, first.resources.len()), (2, 1));
    assert!(!first.next_page_token.is_empty());
    let page = page_of(first.next_page_token).await;
    assert_eq!(page.total_size, 2);
    assert_eq!(page.resources.len(), 1);
    assert_eq!(page.resources[0].resource_name, "gamma");
    assert_eq!(page.resources[0].tags[0].value, "prod");
    assert!(page.next_page_token.is_empty(), "the last page says so");
    let sent: serde_json::Value = serde_json::from_str(&world.upstream_requests()[1].body).unwrap();
    assert_eq!(
        sent,
        serde_json::json!({"action": "filter", "tags": [{"key": "env", "values": ["prod"]}], "limit": 1, "offset": 1})
    );

    let count = |filter: pb::PolicyTagFilter| {
        let mut policies = policies.clone();
        async move {
            policies
                .count_policies_by_tags(pb::CountPoliciesByTagsRequest {
                    filter: Some(filter),
                    ..Default::default()
                })
                .await
                .expect("CountPoliciesByTags")
                .into_inner()
                .total_count
        }
    };
    assert_eq!(count(prod).await, 2);
    let not_prod = pb::PolicyTagFilter {
        not_tags_any: vec![matching("env", &["prod"])],
        ..Default::default()
    };
    assert_eq!(count(not_prod).await, 1);
    let any = pb::PolicyTagFilter {
        tags_any: vec![matching("env", &[]), matching("team", &["x"])],
        not_tags: vec![matching("env", &["dev"])],
        ..Default::default()
    };
    assert_eq!(count(any).await, 2);
    assert_eq!(count(pb::PolicyTagFilter::default()).await, 3);
}

#[tokio::test]
async fn a_retried_tag_write_with_its_request_id_is_sent_once() {
    let world = World::start().await;
    let policy_id = create_policy(&world, "retried").await;
    world.sim.clear_requests();
    let request = pb::BatchPolicyTagsRequest {
        backup_policy_id: policy_id.clone(),
        action: TagAction::Create as i32,
        tags: vec![tag("env", "prod")],
        request_id: "9d7f3c1e-2b4a-4c6d-8e0f-1a2b3c4d5e6f".into(),
        ..Default::default()
    };
    let mut policies = world.policies.clone();
    policies.batch_policy_tags(request.clone()).await.expect("first");
    policies.batch_policy_tags(request.clone()).await.expect("retry");
    let sent = world
        .upstream_requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/tags/action"))
        .count();
    assert_eq!(sent, 1);
    let changed = pb::BatchPolicyTagsRequest {
        tags: vec![tag("env", "dev")],
        ..request
    };
    let reused = policies
        .batch_policy_tags(changed)
        .await
        .expect_err("a different request");
    assert_eq!(reused.code(), Code::InvalidArgument);
}
