//! Every recorded VBS response body (tests/data/fixtures, from the test suites
//! of independent VBS clients) decodes through the gateway's REST models and,
//! where the contract has the operation, converts to the gRPC types.

use std::path::Path;

use crate::proto::pb::{self, BackupStatus, JobStatus, PolicyStatus, TaskStatus};
use crate::rest::{backups as rb, jobs as rj, policies as rp, shares as rs, tags as rt};
use serde::de::DeserializeOwned;

fn fixture<T: DeserializeOwned>(name: &str) -> T {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/fixtures")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} does not decode: {e}"))
}

/// Decodes and checks one response fixture; false when the name is unknown.
fn check(name: &str) -> bool {
    match name {
        "gopher_cloudbackups_create_response.json" => {
            let reply: rb::JobStarted = fixture(name);
            assert_eq!(reply.job_id, "ff8080826576401e01657b99fc444986");
        }
        "gopher_backups_list_detail_response.json" => {
            let page: rb::BackupDetailPage = fixture(name);
            assert!(page.backups_links.is_empty());
            let b = pb::Backup::from(page.backups[0].clone());
            assert_eq!(
                (b.status(), b.size, b.name.as_str()),
                (BackupStatus::Available, 10, "c2c-test-buckup")
            );
            assert_eq!(b.tenant_id, "17fbda95add24720a4038ba4b1c705ed");
            assert!(b.created_at.is_none());
            assert_eq!((b.is_incremental, b.has_dependent_backups), (Some(false), Some(false)));
        }
        "gopher_backups_get_response.json" => {
            let one: rb::OneBackup = fixture(name);
            let b = pb::Backup::from(one.backup);
            assert_eq!(b.availability_zone, "eu-de-01");
            assert_eq!(b.object_count, Some(0));
            assert_eq!(b.links.len(), 2);
        }
        "gopher_backups_restore_response.json" => {
            let reply: rb::NativeRestoreStarted = fixture(name);
            assert_eq!(reply.restore.volume_name.as_deref(), Some("c2c-test-disk"));
        }
        "gopher_backuppolicy_create_response.json" | "gopher_backuppolicy_update_response.json" => {
            let reply: rp::PolicyIdReply = fixture(name);
            assert_eq!(reply.backup_policy_id, None, "this VBS echoes the policy instead");
            let echoed = pb::BackupPolicy::from(fixture::<rp::Policy>(name));
            assert_eq!(echoed.scheduled_policy.unwrap().status(), PolicyStatus::On);
        }
        "gopher_backuppolicy_list_response.json" | "otce_backuppolicy_list_response.json" => {
            let list: rp::PolicyList = fixture(name);
            let converted: Vec<_> = list.backup_policies.into_iter().map(pb::BackupPolicy::from).collect();
            assert_eq!(converted.len(), 2);
            assert_eq!(converted[1].backup_policy_name, "plan02");
            assert_eq!(converted[1].policy_resource_count, 10);
            let schedule = converted[0].scheduled_policy.clone().unwrap();
            assert_eq!((schedule.frequency, schedule.retention_num), (Some(1), Some(10)));
            assert_eq!(schedule.start_time, "12:00");
        }
        "gopher_backuppolicyresources_associate_response.json" | "otce_backuppolicyresources_link_response.json" => {
            let outcome: rp::ResourceOutcomes = fixture(name);
            assert_eq!(outcome.success_resources[0].resource_type.as_deref(), Some("volume"));
            assert!(
                outcome.success_resources[0]
                    .os_vol_host_attr
                    .as_deref()
                    .unwrap()
                    .starts_with("pod01")
            );
            if let Some(failed) = outcome.fail_resources.first() {
                assert_eq!(failed.code.as_deref(), Some("VBS.0002"));
            }
        }
        "gopher_backuppolicyresources_disassociate_response.json"
        | "otce_backuppolicyresources_unlink_response.json" => {
            let outcome: rp::ResourceOutcomes = fixture(name);
            assert!(outcome.success_resources[0].resource_id.is_some());
            assert!(outcome.success_resources[0].resource_type.is_none());
        }
        "gopher_shares_create_response.json" | "gopher_shares_list_detail_response.json" => {
            let list: rs::ShareList = fixture(name);
            assert!(list.shared_links.is_empty());
            let share = pb::BackupShare::from(list.shared[0].clone());
            assert_eq!(share.to_project_id, "91d687759aed45d28b5f6084bc2fa8ad");
            assert_eq!(share.from_project_id, "17fbda95add24720a4038ba4b1c705ed");
            assert!(share.created_at.is_none() && !share.deleted);
            assert_eq!(share.backup.is_some(), name.contains("list"));
        }
        "gopher_shares_get_response.json" => {
            let one: rs::OneShare = fixture(name);
            let share = pb::BackupShare::from(one.shared);
            assert_eq!(share.id, "ac0fb374-a288-4399-ac63-cc080a13a2ee");
            let shared = share.backup.expect("nested backup");
            assert_eq!(shared.status(), BackupStatus::Available);
            assert_eq!(shared.size, 10);
        }
        "gopher_tags_get_response.json" => {
            let tags: rt::TagList = fixture(name);
            assert_eq!(
                tags.tags[0].value.as_deref(),
                Some("0781095c-b8ab-4ce5-99f3-4c5f6ff75319")
            );
            assert_eq!(
                tags.tags[1].value.as_deref(),
                Some("2016-12-03T06:24:34.467"),
                "the `values` spelling"
            );
        }
        "gopher_tags_resource_instances_action_response.json" => {
            let found: rt::TaggedResources = fixture(name);
            assert_eq!(found.total_count, Some(1));
            assert_eq!(found.resources[0].tags[0].key, "key");
            assert!(found.resources[0].resource_detail.is_none());
            let policy = pb::TaggedPolicy::from(found.resources[0].clone());
            assert_eq!(policy.resource_id, "0781095c-b8ab-4ce5-99f3-4c5f6ff75319");
            assert_eq!(
                (policy.resource_name.as_str(), policy.resource_detail.as_str()),
                ("name", "")
            );
        }
        "otce_backups_create_native_response.json" => {
            let created: rb::NativeBackupCreated = fixture(name);
            assert_eq!(created.backup.name.as_deref(), Some("backup1"));
        }
        "otce_backups_list_response.json" => {
            let page: rb::BackupSummaryPage = fixture(name);
            assert!(page.backups[0].name.is_none());
            let last = page.backups.last().map(|b| b.id.as_str());
            assert_eq!(
                rb::next_marker(&page.backups_links, last).as_deref(),
                Some("b3cf7a16-decc-4beb-8077-682737d94a58")
            );
        }
        "otce_backups_list_detail_response.json" | "otce_backups_get_response.json" => {
            let details: Vec<rb::BackupDetail> = if name.contains("list") {
                fixture::<rb::BackupDetailPage>(name).backups
            } else {
                vec![fixture::<rb::OneBackup>(name).backup]
            };
            let b = pb::Backup::from(details[0].clone());
            assert_eq!(b.status(), BackupStatus::Error);
            assert_eq!(b.fail_reason, "Connection to swift failed: [Errno 111] ECONNREFUSED");
            assert!(b.description.is_none() && b.object_count.is_none());
            let metadata = b.service_metadata.expect("service metadata");
            assert_eq!(
                (metadata.bootable, metadata.progress, metadata.r#type),
                (Some(false), Some(0), Some(0))
            );
            assert_eq!(metadata.backupurl, "58d94782-6509-45ad-9442-970d2a005050");
            assert_eq!(b.created_at.map(|t| t.seconds), Some(1_372_322_883));
        }
        "otce_backuppolicy_backuptasks_list_response.json" => {
            let page: rp::TaskPage = fixture(name);
            assert_eq!(page.count, Some(2));
            let tasks: Vec<_> = page.tasks.into_iter().map(pb::BackupTask::from).collect();
            assert_eq!(tasks[0].status(), TaskStatus::Running);
            assert!(tasks[0].finished_at.is_none());
            assert_eq!(tasks[1].status(), TaskStatus::ExecuteSuccess);
            assert_eq!(tasks[1].finished_at.map(|t| t.nanos), Some(121_000_000));
        }
        "otce_jobs_get_response.json" => {
            let job = crate::grpc::jobs::job_of_project("p", fixture::<rj::Job>(name));
            assert_eq!(
                (job.status(), job.job_type.as_str()),
                (JobStatus::Success, "bksCreateBackup")
            );
            assert_eq!(job.entities["backup_id"], "ba5401a2-7cd2-4c01-8c0d-c936ab412d6d");
            let made = pb::BackupJobResult {
                backup_id: "ba5401a2-7cd2-4c01-8c0d-c936ab412d6d".into(),
                volume_id: "7e5fdc5a-5e36-4b22-8bcc-7f17037290cc".into(),
                snapshot_id: "a77a96bf-dd18-40bf-a446-fdcefc1719ec".into(),
                volume_name: "autobk_volume".into(),
            };
            assert_eq!(job.result, Some(pb::job::Result::Backup(made)));
            assert_eq!(job.operation_name, "projects/p/jobs/4010b39b5281d3590152874bfa3b1604");
            assert!(job.sub_jobs.is_empty() && job.error_code.is_empty());
            assert_eq!(job.begin_time.map(|t| t.seconds), Some(1_453_997_649));
        }
        _ => return false,
    }
    true
}

#[test]
fn every_recorded_response_decodes() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/fixtures");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("fixtures folder")
        .map(|entry| entry.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with("_response.json"))
        .collect();
    names.sort();
    assert_eq!(names.len(), 23, "a response fixture was added or removed: {names:?}");
    let unknown: Vec<&String> = names.iter().filter(|name| !check(name)).collect();
    assert!(unknown.is_empty(), "no check for {unknown:?}");
}

#[test]
fn the_request_builders_produce_the_recorded_request_shapes() {
    let policy = rp::CreatePolicy {
        backup_policy_name: "Test_Policy".into(),
        scheduled_policy: rp::SchedulePatch {
            start_time: Some("12:00".into()),
            frequency: Some(1),
            retention_num: Some(10),
            remain_first_backup_of_cur_month: Some("Y"),
            status: Some("ON"),
            ..Default::default()
        },
        tags: vec![rb::Tag {
            key: "key".into(),
            value: Some("value".into()),
        }],
    };
    let recorded: serde_json::Value = fixture("gopher_backuppolicy_create_request.json");
    assert_eq!(serde_json::to_value(&policy).unwrap(), recorded);

    let associate = rp::Associate {
        backup_policy_id: "915d1fd8-63cb-4054-a2b0-2778210e3a75".into(),
        resources: vec![rp::ResourceRef {
            resource_id: "0f187b65-8d0e-4fc0-9096-3b55d330531e".into(),
            resource_type: Some("volume".into()),
        }],
    };
    let recorded: serde_json::Value = fixture("gopher_backuppolicyresources_associate_request.json");
    assert_eq!(serde_json::to_value(&associate).unwrap(), recorded);

    let disassociate = rp::Disassociate {
        resources: vec![rp::ResourceRef {
            resource_id: "0f187b65-8d0e-4fc0-9096-3b55d330531e".into(),
            resource_type: None,
        }],
    };
    let recorded: serde_json::Value = fixture("gopher_backuppolicyresources_disassociate_request.json");
    assert_eq!(serde_json::to_value(&disassociate).unwrap(), recorded);
}

#[test]
fn the_tag_request_builders_produce_the_recorded_tag_shapes() {
    let tag = |key: &str| rt::WireTag {
        key: key.into(),
        value: "volume".into(),
    };
    let one = rt::OneTag {
        tag: tag("0f187b65-8d0e-4fc0-9096-3b55d330531e"),
    };
    let recorded: serde_json::Value = fixture("gopher_tags_create_request.json");
    assert_eq!(serde_json::to_value(&one).unwrap(), recorded);

    // The recorded batch says "update"; the gateway sends "create", which
    // replaces values the same way, and is otherwise the same body.
    let batch = rt::TagBatch {
        action: "create",
        tags: vec![
            tag("0f187b65-8d0e-4fc0-9096-3b55d330531e"),
            tag("0f187b65-8d0e-4fc0-9096-3b55d330531d"),
        ],
    };
    let mut recorded: serde_json::Value = fixture("gopher_tags_batch_action_request.json");
    assert_eq!(recorded["action"], "update");
    recorded["action"] = "create".into();
    assert_eq!(serde_json::to_value(&batch).unwrap(), recorded);

    let search = rt::TagSearch {
        action: "filter",
        tags: vec![rt::TagMatch {
            key: "Tag001".into(),
            values: vec!["Value001".into(), "Value002".into()],
        }],
        tags_any: vec![],
        not_tags: vec![],
        not_tags_any: vec![],
        limit: None,
        offset: None,
    };
    let recorded: serde_json::Value = fixture("gopher_tags_resource_instances_action_request.json");
    assert_eq!(serde_json::to_value(&search).unwrap(), recorded);
}
