//! One test per validation rule of the reference: the gateway answers
//! INVALID_ARGUMENT naming the field and the rule's reason, and the
//! simulator receives nothing.

// DeleteCloudBackup is deprecated upstream, and still validated.
#![allow(deprecated)]

use vbs_gateway::proto::pb::{self, PolicyStatus};
use vbs_rules as rules;

use crate::harness::{DISK_10GB, World, assert_rejected, assert_rejected_because};

const BACKUP_ID: &str = "54ba0e69-48a0-4a77-9cdf-a7979a7e2648";
const POLICY_ID: &str = "af8a20b0-117d-4fc3-ae53-aa3968a4f870";

/// Declares a test that sends `$call` in a fresh world and expects `$field` rejected.
/// With `$reason`, the violation of `$field` must carry that reason.
macro_rules! rejects {
    ($name:ident, $field:expr, |$w:ident| $call:expr) => {
        #[tokio::test]
        async fn $name() {
            let $w = World::start().await;
            let result = $call.await;
            assert_rejected(&$w, result, $field);
        }
    };
    ($name:ident, $field:expr, $reason:literal, |$w:ident| $call:expr) => {
        #[tokio::test]
        async fn $name() {
            let $w = World::start().await;
            let result = $call.await;
            assert_rejected_because(&$w, result, $field, $reason);
        }
    };
}

fn backup() -> pb::CreateBackupRequest {
    pb::CreateBackupRequest {
        volume_id: DISK_10GB.into(),
        name: "ok".into(),
        ..Default::default()
    }
}

fn tagged(key: &str, value: &str) -> pb::CreateBackupRequest {
    pb::CreateBackupRequest {
        tags: vec![pb::Tag {
            key: key.into(),
            value: value.into(),
        }],
        ..backup()
    }
}

fn native() -> pb::CreateNativeBackupRequest {
    pb::CreateNativeBackupRequest {
        volume_id: DISK_10GB.into(),
        snapshot_id: "2bb856e1-b3d8-4432-a858-09e4ce939389".into(),
        ..Default::default()
    }
}

fn schedule() -> pb::ScheduledPolicy {
    pb::ScheduledPolicy {
        start_time: "12:00".into(),
        frequency: Some(1),
        status: PolicyStatus::On as i32,
        ..Default::default()
    }
}

fn policy(schedule: pb::ScheduledPolicy) -> pb::CreateBackupPolicyRequest {
    pb::CreateBackupPolicyRequest {
        backup_policy_name: "ok".into(),
        scheduled_policy: Some(schedule),
        ..Default::default()
    }
}

fn named_policy(name: &str) -> pb::CreateBackupPolicyRequest {
    pb::CreateBackupPolicyRequest {
        backup_policy_name: name.into(),
        ..policy(schedule())
    }
}

fn update(schedule: pb::ScheduledPolicyUpdate) -> pb::UpdateBackupPolicyRequest {
    pb::UpdateBackupPolicyRequest {
        backup_policy_id: POLICY_ID.into(),
        scheduled_policy: Some(schedule),
        ..Default::default()
    }
}

fn resources(resources: Vec<pb::PolicyResource>) -> pb::AssociateResourcesRequest {
    pb::AssociateResourcesRequest {
        backup_policy_id: POLICY_ID.into(),
        resources,
        ..Default::default()
    }
}

fn disk(resource_id: &str, resource_type: &str) -> pb::PolicyResource {
    pb::PolicyResource {
        resource_id: resource_id.into(),
        resource_type: resource_type.into(),
    }
}

fn tasks() -> pb::ListBackupPolicyTasksRequest {
    pb::ListBackupPolicyTasksRequest {
        backup_policy_id: POLICY_ID.into(),
        ..Default::default()
    }
}

// Backups: CreateBackup.
rejects!(backup_volume_id_is_required, "volume_id", "FIELD_REQUIRED", |w| w
    .backups
    .clone()
    .create_backup(pb::CreateBackupRequest {
        volume_id: String::new(),
        ..backup()
    }));
rejects!(backup_volume_id_is_a_uuid, "volume_id", "NOT_A_UUID", |w| w
    .backups
    .clone()
    .create_backup(pb::CreateBackupRequest {
        volume_id: "disk-1".into(),
        ..backup()
    }));
rejects!(backup_snapshot_id_is_a_uuid, "snapshot_id", "NOT_A_UUID", |w| w
    .backups
    .clone()
    .create_backup(pb::CreateBackupRequest {
        snapshot_id: "snap".into(),
        ..backup()
    }));
rejects!(backup_name_is_required, "name", "FIELD_REQUIRED", |w| w
    .backups
    .clone()
    .create_backup(pb::CreateBackupRequest {
        name: String::new(),
        ..backup()
    }));
rejects!(backup_name_is_at_most_64, "name", "TOO_LONG", |w| w
    .backups
    .clone()
    .create_backup(pb::CreateBackupRequest {
        name: "n".repeat(65),
        ..backup()
    }));
rejects!(backup_name_characters, "name", "BAD_CHARACTER", |w| w
    .backups
    .clone()
    .create_backup(pb::CreateBackupRequest {
        name: "my backup".into(),
        ..backup()
    }));
rejects!(backup_name_not_auto, "name", "NAME_RESERVED_PREFIX", |w| w
    .backups
    .clone()
    .create_backup(pb::CreateBackupRequest {
        name: "autobk_1".into(),
        ..backup()
    }));
rejects!(backup_description_is_at_most_64, "description", "TOO_LONG", |w| w
    .backups
    .clone()
    .create_backup(pb::CreateBackupRequest {
        description: "d".repeat(65),
        ..backup()
    }));
rejects!(
    backup_description_has_no_angle_brackets,
    "description",
    "BAD_CHARACTER",
    |w| w.backups.clone().create_backup(pb::CreateBackupRequest {
        description: "<script>".into(),
        ..backup()
    })
);
rejects!(tag_key_is_required, "tags[0].key", "FIELD_REQUIRED", |w| w
    .backups
    .clone()
    .create_backup(tagged("", "v")));
rejects!(tag_key_is_at_most_36, "tags[0].key", "TOO_LONG", |w| w
    .backups
    .clone()
    .create_backup(tagged(&"k".repeat(37), "v")));
rejects!(tag_key_characters, "tags[0].key", "BAD_CHARACTER", |w| w
    .backups
    .clone()
    .create_backup(tagged("a=b", "v")));
rejects!(tag_value_is_at_most_43, "tags[0].value", "TOO_LONG", |w| w
    .backups
    .clone()
    .create_backup(tagged("k", &"v".repeat(44))));
rejects!(tag_value_characters, "tags[0].value", "BAD_CHARACTER", |w| w
    .backups
    .clone()
    .create_backup(tagged("k", "line\nbreak")));

// Backups: the other RPCs.
rejects!(restore_backup_id_is_a_uuid, "backup_id", "NOT_A_UUID", |w| w
    .backups
    .clone()
    .restore_backup(pb::RestoreBackupRequest {
        backup_id: "b1".into(),
        volume_id: DISK_10GB.into(),
        ..Default::default()
    }));
rejects!(restore_volume_id_is_required, "volume_id", "FIELD_REQUIRED", |w| w
    .backups
    .clone()
    .restore_backup(pb::RestoreBackupRequest {
        backup_id: BACKUP_ID.into(),
        ..Default::default()
    }));
rejects!(delete_cloud_backup_id_is_a_uuid, "backup_id", "NOT_A_UUID", |w| w
    .backups
    .clone()
    .delete_cloud_backup(pb::DeleteCloudBackupRequest {
        backup_id: "x".into(),
        ..Default::default()
    }));
rejects!(native_snapshot_id_is_required, "snapshot_id", "FIELD_REQUIRED", |w| w
    .backups
    .clone()
    .create_native_backup(pb::CreateNativeBackupRequest {
        snapshot_id: String::new(),
        ..native()
    }));
rejects!(native_description_is_at_most_255, "description", "TOO_LONG", |w| w
    .backups
    .clone()
    .create_native_backup(pb::CreateNativeBackupRequest {
        description: "d".repeat(256),
        ..native()
    }));
rejects!(native_name_not_auto, "name", "NAME_RESERVED_PREFIX", |w| w
    .backups
    .clone()
    .create_native_backup(pb::CreateNativeBackupRequest {
        name: "auto-1".into(),
        ..native()
    }));
rejects!(list_status_is_a_known_value, "status", "UNKNOWN_ENUM_VALUE", |w| w
    .backups
    .clone()
    .list_backups(pb::ListBackupsRequest {
        status: 99,
        ..Default::default()
    }));
rejects!(list_page_size_is_at_most_1000, "page_size", "OUT_OF_RANGE", |w| w
    .backups
    .clone()
    .list_backups(pb::ListBackupsRequest {
        page_size: 1001,
        ..Default::default()
    }));
rejects!(list_page_size_is_positive, "page_size", "OUT_OF_RANGE", |w| w
    .backups
    .clone()
    .list_backups(pb::ListBackupsRequest {
        page_size: -1,
        ..Default::default()
    }));
rejects!(
    list_page_token_is_one_it_handed_out,
    "page_token",
    "INVALID_PAGE_TOKEN",
    |w| w.backups.clone().list_backups(pb::ListBackupsRequest {
        page_token: "20".into(),
        ..Default::default()
    })
);
rejects!(list_page_token_is_not_a_path, "page_token", "INVALID_PAGE_TOKEN", |w| w
    .backups
    .clone()
    .list_backups(pb::ListBackupsRequest {
        page_token: "../page-2".into(),
        ..Default::default()
    }));
rejects!(list_volume_id_is_a_uuid, "volume_id", "NOT_A_UUID", |w| w
    .backups
    .clone()
    .list_backup_details(pb::ListBackupDetailsRequest {
        volume_id: "vol".into(),
        ..Default::default()
    }));
rejects!(details_sort_key_is_known, "sort_key", "NOT_IN_SET", |w| w
    .backups
    .clone()
    .list_backup_details(pb::ListBackupDetailsRequest {
        sort_key: "colour".into(),
        ..Default::default()
    }));
rejects!(details_sort_dir_is_asc_or_desc, "sort_dir", "NOT_IN_SET", |w| w
    .backups
    .clone()
    .list_backup_details(pb::ListBackupDetailsRequest {
        sort_dir: "up".into(),
        ..Default::default()
    }));
rejects!(
    get_backup_id_cannot_leave_its_path_segment,
    "backup_id",
    "NOT_A_UUID",
    |w| w.backups.clone().get_backup(pb::GetBackupRequest {
        backup_id: "../../v3/auth/tokens".into(),
        ..Default::default()
    })
);
rejects!(delete_backup_id_is_a_uuid, "backup_id", "NOT_A_UUID", |w| w
    .backups
    .clone()
    .delete_backup(pb::DeleteBackupRequest {
        backup_id: "b%2F1".into(),
        ..Default::default()
    }));
rejects!(native_restore_volume_id_is_a_uuid, "volume_id", "NOT_A_UUID", |w| w
    .backups
    .clone()
    .restore_native_backup(pb::RestoreNativeBackupRequest {
        backup_id: BACKUP_ID.into(),
        volume_id: "v".into(),
        ..Default::default()
    }));
rejects!(project_id_is_a_safe_path_segment, "project_id", "BAD_CHARACTER", |w| w
    .backups
    .clone()
    .list_backups(pb::ListBackupsRequest {
        project_id: "p/../q".into(),
        ..Default::default()
    }));

// Policies: CreateBackupPolicy.
rejects!(policy_name_is_required, "backup_policy_name", "FIELD_REQUIRED", |w| w
    .policies
    .clone()
    .create_backup_policy(named_policy("")));
rejects!(policy_name_is_at_most_64, "backup_policy_name", "TOO_LONG", |w| w
    .policies
    .clone()
    .create_backup_policy(named_policy(&"p".repeat(65))));
rejects!(policy_name_characters, "backup_policy_name", "BAD_CHARACTER", |w| w
    .policies
    .clone()
    .create_backup_policy(named_policy("my.policy")));
rejects!(
    policy_name_not_default,
    "backup_policy_name",
    "NAME_RESERVED_PREFIX",
    |w| w.policies.clone().create_backup_policy(named_policy("default_copy"))
);
rejects!(policy_schedule_is_required, "scheduled_policy", "FIELD_REQUIRED", |w| w
    .policies
    .clone()
    .create_backup_policy(pb::CreateBackupPolicyRequest {
        backup_policy_name: "ok".into(),
        ..Default::default()
    }));
rejects!(
    policy_start_time_is_a_full_hour,
    "scheduled_policy.start_time",
    "BAD_FORMAT",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        start_time: "12:30".into(),
        ..schedule()
    }))
);
rejects!(
    policy_start_times_are_all_full_hours,
    "scheduled_policy.start_time",
    "BAD_FORMAT",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        start_time: "22:00,25:00".into(),
        ..schedule()
    }))
);
rejects!(
    policy_start_time_is_required,
    "scheduled_policy.start_time",
    "FIELD_REQUIRED",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        start_time: String::new(),
        ..schedule()
    }))
);
rejects!(
    policy_status_is_required,
    "scheduled_policy.status",
    "FIELD_REQUIRED",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        status: 0,
        ..schedule()
    }))
);
rejects!(
    policy_status_is_on_or_off,
    "scheduled_policy.status",
    "UNKNOWN_ENUM_VALUE",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        status: 7,
        ..schedule()
    }))
);
rejects!(
    policy_frequency_or_weekdays_required,
    "scheduled_policy.frequency",
    "FIELD_REQUIRED",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        frequency: None,
        ..schedule()
    }))
);
rejects!(
    policy_frequency_at_most_30_on_create,
    "scheduled_policy.frequency",
    "OUT_OF_RANGE",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        frequency: Some(31),
        ..schedule()
    }))
);
rejects!(
    policy_frequency_at_least_1,
    "scheduled_policy.frequency",
    "OUT_OF_RANGE",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        frequency: Some(0),
        ..schedule()
    }))
);
rejects!(
    policy_weekdays_are_days,
    "scheduled_policy.week_frequency[0]",
    "UNKNOWN_ENUM_VALUE",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        week_frequency: vec![0],
        ..schedule()
    }))
);
rejects!(
    policy_retention_num_at_least_2,
    "scheduled_policy.retention_num",
    "OUT_OF_RANGE",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        retention_num: Some(1),
        ..schedule()
    }))
);
rejects!(
    policy_retention_num_at_most_99_on_create,
    "scheduled_policy.retention_num",
    "OUT_OF_RANGE",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        retention_num: Some(100),
        ..schedule()
    }))
);
rejects!(
    policy_retention_day_range,
    "scheduled_policy.retention_day",
    "OUT_OF_RANGE",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        retention_day: Some(1),
        ..schedule()
    }))
);
rejects!(policy_tag_key_characters, "tags[0].key", "BAD_CHARACTER", |w| w
    .policies
    .clone()
    .create_backup_policy(pb::CreateBackupPolicyRequest {
        tags: vec![pb::Tag {
            key: "a|b".into(),
            value: String::new()
        }],
        ..policy(schedule())
    }));

// Policies: UpdateBackupPolicy and the id-only RPCs.
rejects!(update_policy_id_is_a_uuid, "backup_policy_id", "NOT_A_UUID", |w| w
    .policies
    .clone()
    .update_backup_policy(pb::UpdateBackupPolicyRequest {
        backup_policy_id: "XX".into(),
        ..update(pb::ScheduledPolicyUpdate::default())
    }));
rejects!(
    update_frequency_at_most_14,
    "scheduled_policy.frequency",
    "OUT_OF_RANGE",
    |w| w
        .policies
        .clone()
        .update_backup_policy(update(pb::ScheduledPolicyUpdate {
            frequency: Some(15),
            ..Default::default()
        }))
);
rejects!(
    update_retention_num_at_most_14,
    "scheduled_policy.retention_num",
    "OUT_OF_RANGE",
    |w| w
        .policies
        .clone()
        .update_backup_policy(update(pb::ScheduledPolicyUpdate {
            retention_num: Some(15),
            ..Default::default()
        }))
);
rejects!(
    update_start_time_is_a_full_hour,
    "scheduled_policy.start_time",
    "BAD_FORMAT",
    |w| w
        .policies
        .clone()
        .update_backup_policy(update(pb::ScheduledPolicyUpdate {
            start_time: "7:00".into(),
            ..Default::default()
        }))
);
rejects!(
    update_status_is_known,
    "scheduled_policy.status",
    "UNKNOWN_ENUM_VALUE",
    |w| w
        .policies
        .clone()
        .update_backup_policy(update(pb::ScheduledPolicyUpdate {
            status: 9,
            ..Default::default()
        }))
);
rejects!(
    update_name_not_default,
    "backup_policy_name",
    "NAME_RESERVED_PREFIX",
    |w| w.policies.clone().update_backup_policy(pb::UpdateBackupPolicyRequest {
        backup_policy_name: "default".into(),
        ..update(pb::ScheduledPolicyUpdate::default())
    })
);
rejects!(delete_policy_id_is_a_uuid, "backup_policy_id", "NOT_A_UUID", |w| w
    .policies
    .clone()
    .delete_backup_policy(pb::DeleteBackupPolicyRequest {
        backup_policy_id: "XX".into(),
        ..Default::default()
    }));
rejects!(execute_policy_id_is_a_uuid, "backup_policy_id", "FIELD_REQUIRED", |w| w
    .policies
    .clone()
    .execute_backup_policy(pb::ExecuteBackupPolicyRequest {
        backup_policy_id: String::new(),
        ..Default::default()
    }));
rejects!(enable_policy_id_is_a_uuid, "backup_policy_id", "NOT_A_UUID", |w| w
    .policies
    .clone()
    .enable_backup_policy(pb::EnableBackupPolicyRequest {
        backup_policy_id: "pol_id".into(),
        ..Default::default()
    }));
rejects!(disable_policy_id_is_a_uuid, "backup_policy_id", "NOT_A_UUID", |w| w
    .policies
    .clone()
    .disable_backup_policy(pb::DisableBackupPolicyRequest {
        backup_policy_id: "pol_id".into(),
        ..Default::default()
    }));

// Policies: resources.
rejects!(associate_needs_resources, "resources", "FIELD_REQUIRED", |w| w
    .policies
    .clone()
    .associate_resources(resources(vec![])));
rejects!(
    associate_resource_type_is_volume,
    "resources[0].resource_type",
    "NOT_IN_SET",
    |w| w
        .policies
        .clone()
        .associate_resources(resources(vec![disk(DISK_10GB, "server")]))
);
rejects!(
    associate_resource_id_is_a_uuid,
    "resources[0].resource_id",
    "NOT_A_UUID",
    |w| w
        .policies
        .clone()
        .associate_resources(resources(vec![disk("volume-id-1", "volume")]))
);
rejects!(associate_policy_id_is_a_uuid, "backup_policy_id", "NOT_A_UUID", |w| w
    .policies
    .clone()
    .associate_resources(pb::AssociateResourcesRequest {
        backup_policy_id: "pol".into(),
        ..resources(vec![disk(DISK_10GB, "")])
    }));
rejects!(disassociate_needs_resources, "resources", "FIELD_REQUIRED", |w| w
    .policies
    .clone()
    .disassociate_resources(pb::DisassociateResourcesRequest {
        backup_policy_id: POLICY_ID.into(),
        ..Default::default()
    }));

// Policies: ListBackupPolicyTasks.
rejects!(tasks_sort_order_is_asc_or_desc, "sort_order", "NOT_IN_SET", |w| w
    .policies
    .clone()
    .list_backup_policy_tasks(pb::ListBackupPolicyTasksRequest {
        sort_order: "sideways".into(),
        ..tasks()
    }));
rejects!(tasks_sort_key_is_created_at, "sort_key", "NOT_IN_SET", |w| w
    .policies
    .clone()
    .list_backup_policy_tasks(pb::ListBackupPolicyTasksRequest {
        sort_key: "backup_name".into(),
        ..tasks()
    }));
rejects!(tasks_page_size_range, "page_size", "OUT_OF_RANGE", |w| w
    .policies
    .clone()
    .list_backup_policy_tasks(pb::ListBackupPolicyTasksRequest {
        page_size: 5000,
        ..tasks()
    }));
rejects!(
    tasks_page_token_is_one_it_handed_out,
    "page_token",
    "INVALID_PAGE_TOKEN",
    |w| w
        .policies
        .clone()
        .list_backup_policy_tasks(pb::ListBackupPolicyTasksRequest {
            page_token: "m".into(),
            ..tasks()
        })
);
rejects!(tasks_task_id_is_a_uuid, "task_id", "NOT_A_UUID", |w| w
    .policies
    .clone()
    .list_backup_policy_tasks(pb::ListBackupPolicyTasksRequest {
        task_id: "j".into(),
        ..tasks()
    }));
rejects!(tasks_status_is_known, "status", "UNKNOWN_ENUM_VALUE", |w| w
    .policies
    .clone()
    .list_backup_policy_tasks(pb::ListBackupPolicyTasksRequest {
        status: 42,
        ..tasks()
    }));
rejects!(tasks_policy_id_is_a_uuid, "backup_policy_id", "NOT_A_UUID", |w| w
    .policies
    .clone()
    .list_backup_policy_tasks(pb::ListBackupPolicyTasksRequest {
        backup_policy_id: "x".into(),
        ..tasks()
    }));

// Jobs.
rejects!(job_id_is_required, "job_id", "FIELD_REQUIRED", |w| w
    .jobs
    .clone()
    .get_job(pb::GetJobRequest::default()));
rejects!(job_id_cannot_leave_its_path_segment, "job_id", "BAD_CHARACTER", |w| w
    .jobs
    .clone()
    .get_job(pb::GetJobRequest {
        job_id: "../backups".into(),
        ..Default::default()
    }));

#[tokio::test]
async fn every_broken_rule_is_reported_at_once() {
    let world = World::start().await;
    let result = world
        .backups
        .clone()
        .create_backup(pb::CreateBackupRequest {
            volume_id: "v".into(),
            name: "auto".into(),
            description: ">".into(),
            ..Default::default()
        })
        .await;
    let status = result.expect_err("rejected");
    for field in ["volume_id", "name", "description"] {
        assert_rejected(&world, Err::<(), _>(status.clone()), field);
    }
}

// Bounds on repeated fields and free text (constants in vbs-rules).

fn tags(count: usize) -> Vec<pb::Tag> {
    (0..count)
        .map(|i| pb::Tag {
            key: format!("k{i}"),
            value: "v".into(),
        })
        .collect()
}

fn disks(count: usize) -> Vec<pb::PolicyResource> {
    (0..count)
        .map(|i| disk(&format!("{i:08x}-0000-4000-8000-{i:012x}"), "volume"))
        .collect()
}

fn every_day_and_one() -> Vec<i32> {
    let mut days: Vec<i32> = (1..=7).collect();
    days.push(1);
    days
}

rejects!(backup_tags_are_at_most_10, "tags", "TOO_MANY_ENTRIES", |w| w
    .backups
    .clone()
    .create_backup(pb::CreateBackupRequest {
        tags: tags(rules::TAGS_MAX + 1),
        ..backup()
    }));
rejects!(native_container_is_at_most_255, "container", "TOO_LONG", |w| w
    .backups
    .clone()
    .create_native_backup(pb::CreateNativeBackupRequest {
        container: "c".repeat(rules::CONTAINER_MAX + 1),
        ..native()
    }));
rejects!(list_name_filter_is_at_most_64, "name", "TOO_LONG", |w| w
    .backups
    .clone()
    .list_backups(pb::ListBackupsRequest {
        name: "n".repeat(rules::NAME_FILTER_MAX + 1),
        ..Default::default()
    }));
rejects!(details_name_filter_is_at_most_64, "name", "TOO_LONG", |w| w
    .backups
    .clone()
    .list_backup_details(pb::ListBackupDetailsRequest {
        name: "n".repeat(rules::NAME_FILTER_MAX + 1),
        ..Default::default()
    }));
rejects!(policy_tags_are_at_most_10, "tags", "TOO_MANY_ENTRIES", |w| w
    .policies
    .clone()
    .create_backup_policy(pb::CreateBackupPolicyRequest {
        tags: tags(rules::TAGS_MAX + 1),
        ..policy(schedule())
    }));
rejects!(
    policy_week_frequency_is_at_most_7_days,
    "scheduled_policy.week_frequency",
    "TOO_MANY_ENTRIES",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        frequency: None,
        week_frequency: every_day_and_one(),
        ..schedule()
    }))
);
rejects!(
    update_week_frequency_is_at_most_7_days,
    "scheduled_policy.week_frequency",
    "TOO_MANY_ENTRIES",
    |w| w
        .policies
        .clone()
        .update_backup_policy(update(pb::ScheduledPolicyUpdate {
            week_frequency: every_day_and_one(),
            ..Default::default()
        }))
);
rejects!(
    associate_resources_are_at_most_100,
    "resources",
    "TOO_MANY_ENTRIES",
    |w| w
        .policies
        .clone()
        .associate_resources(resources(disks(rules::POLICY_RESOURCES_MAX + 1)))
);
rejects!(
    disassociate_resources_are_at_most_100,
    "resources",
    "TOO_MANY_ENTRIES",
    |w| w
        .policies
        .clone()
        .disassociate_resources(pb::DisassociateResourcesRequest {
            backup_policy_id: POLICY_ID.into(),
            resources: disks(rules::POLICY_RESOURCES_MAX + 1),
            ..Default::default()
        })
);
rejects!(watch_jobs_follows_at_most_100, "job_ids", "TOO_MANY_ENTRIES", |w| w
    .jobs
    .clone()
    .watch_jobs(pb::WatchJobsRequest {
        job_ids: (0..=rules::WATCHED_JOB_IDS_MAX).map(|i| format!("job-{i}")).collect(),
        ..Default::default()
    }));
rejects!(
    policy_start_time_is_at_most_24_hours,
    "scheduled_policy.start_time",
    "TOO_MANY_ENTRIES",
    |w| w.policies.clone().create_backup_policy(policy(pb::ScheduledPolicy {
        start_time: vec!["12:00"; rules::START_TIMES_MAX + 1].join(","),
        ..schedule()
    }))
);
