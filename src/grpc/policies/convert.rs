//! Conversions of the policy area between the contract and the VBS wire
//! models: request pieces into REST bodies and queries (only the schedule
//! fields the caller set), replies into the typed contract.

use super::VOLUME;
use crate::error::Error;
use crate::grpc::paging::{self, PageStart};
use crate::grpc::wire::{WireName, wire_enum};
use crate::grpc::{Violations, non_empty, text, timestamp};
use crate::proto::pb::{self, PolicyStatus, TaskStatus, Weekday};
use crate::rest::backups::Tag;
use crate::rest::policies::{self as rest, SchedulePatch, TaskQuery};
use vbs_rules as rules;

wire_enum!(PolicyStatus {
    On <=> "ON",
    Off <=> "OFF",
});

// VBS documents day names in upper case only; replies are read in any case,
// so a lower-case schedule still shows its days.
wire_enum!(Weekday, ignore_ascii_case {
    Sun <=> "SUN",
    Mon <=> "MON",
    Tue <=> "TUE",
    Wed <=> "WED",
    Thu <=> "THU",
    Fri <=> "FRI",
    Sat <=> "SAT",
});

wire_enum!(TaskStatus {
    Running <=> "RUNNING",
    ExecuteTimeout <=> "EXECUTE_TIMEOUT",
    Waiting <=> "WAITING",
    ExecuteFail <=> "EXECUTE_FAIL",
    ExecuteSuccess <=> "EXECUTE_SUCCESS",
    Skip <=> "SKIP",
});

impl From<pb::CreateBackupPolicyRequest> for rest::CreatePolicy {
    fn from(req: pb::CreateBackupPolicyRequest) -> Self {
        rest::CreatePolicy {
            backup_policy_name: req.backup_policy_name,
            scheduled_policy: SchedulePatch::from(&req.scheduled_policy.unwrap_or_default()),
            tags: req.tags.into_iter().map(Tag::from).collect(),
        }
    }
}

impl From<&pb::UpdateBackupPolicyRequest> for rest::UpdatePolicy {
    fn from(req: &pb::UpdateBackupPolicyRequest) -> Self {
        rest::UpdatePolicy {
            backup_policy_name: non_empty(&req.backup_policy_name),
            scheduled_policy: req
                .scheduled_policy
                .as_ref()
                .map(|update| SchedulePatch::from(&pb::ScheduledPolicy::from(update)))
                .unwrap_or_default(),
        }
    }
}

/// An update's schedule fields are a create's, each of them optional; the
/// two messages share their field numbers.
impl From<&pb::ScheduledPolicyUpdate> for pb::ScheduledPolicy {
    fn from(update: &pb::ScheduledPolicyUpdate) -> Self {
        pb::ScheduledPolicy {
            start_time: update.start_time.clone(),
            frequency: update.frequency,
            week_frequency: update.week_frequency.clone(),
            retention_num: update.retention_num,
            retention_day: update.retention_day,
            remain_first_backup_of_cur_month: update.remain_first_backup_of_cur_month,
            status: update.status,
        }
    }
}

/// Only the schedule fields the caller set go on the wire.
impl From<&pb::ScheduledPolicy> for SchedulePatch {
    fn from(schedule: &pb::ScheduledPolicy) -> Self {
        let days: Vec<String> = schedule
            .week_frequency
            .iter()
            .filter_map(|d| Weekday::try_from(*d).ok().and_then(Weekday::wire))
            .map(str::to_string)
            .collect();
        SchedulePatch {
            start_time: non_empty(&schedule.start_time),
            frequency: schedule.frequency.map(i64::from),
            week_frequency: (!days.is_empty()).then_some(days),
            retention_num: schedule.retention_num.map(i64::from),
            retention_day: schedule.retention_day.map(i64::from),
            remain_first_backup_of_cur_month: schedule
                .remain_first_backup_of_cur_month
                .map(|keep| if keep { "Y" } else { "N" }),
            status: PolicyStatus::try_from(schedule.status)
                .ok()
                .and_then(PolicyStatus::wire),
        }
    }
}

/// A disk to associate; an empty type means the only one VBS takes.
impl From<pb::PolicyResource> for rest::ResourceRef {
    fn from(resource: pb::PolicyResource) -> Self {
        let resource_type = non_empty(&resource.resource_type).unwrap_or_else(|| VOLUME.to_string());
        rest::ResourceRef {
            resource_id: resource.resource_id,
            resource_type: Some(resource_type),
        }
    }
}

impl From<pb::AssociateResourcesRequest> for rest::Associate {
    fn from(req: pb::AssociateResourcesRequest) -> Self {
        rest::Associate {
            backup_policy_id: req.backup_policy_id,
            resources: req.resources.into_iter().map(rest::ResourceRef::from).collect(),
        }
    }
}

/// Disassociate names the disks only, without a type.
impl From<&pb::DisassociateResourcesRequest> for rest::Disassociate {
    fn from(req: &pb::DisassociateResourcesRequest) -> Self {
        let untyped = |resource: &pb::PolicyResource| rest::ResourceRef {
            resource_id: resource.resource_id.clone(),
            resource_type: None,
        };
        rest::Disassociate {
            resources: req.resources.iter().map(untyped).collect(),
        }
    }
}

impl TryFrom<&pb::ListBackupPolicyTasksRequest> for TaskQuery {
    type Error = Error;

    fn try_from(req: &pb::ListBackupPolicyTasksRequest) -> Result<Self, Error> {
        let mut v = Violations::default();
        v.uuid("backup_policy_id", &req.backup_policy_id);
        v.optional_word("sort_order", &req.sort_order, rules::SORT_DIRECTIONS);
        v.optional_word("sort_key", &req.sort_key, &[rules::TASK_SORT_KEY]);
        v.limit("page_size", req.page_size);
        let start = paging::after_marker(&mut v, &req.page_token);
        v.optional_uuid("task_id", &req.task_id);
        let status = TaskStatus::try_from(req.status);
        v.known_enum("status", status.is_ok());
        v.finish()?;
        Ok(TaskQuery {
            sort_order: non_empty(&req.sort_order),
            limit: (req.page_size != 0).then_some(i64::from(req.page_size)),
            marker: start.marker(),
            job_id: non_empty(&req.task_id),
            status: status.ok().and_then(TaskStatus::wire).map(str::to_string),
            sort_key: non_empty(&req.sort_key),
            offset: None,
        })
    }
}

/// The page of policies a ListBackupPolicies call asks for. VBS answers every
/// policy at once, so the gateway cuts the page itself.
pub(super) struct PolicyPage {
    start: PageStart,
    /// 0: every policy from the start on.
    size: usize,
}

impl TryFrom<&pb::ListBackupPoliciesRequest> for PolicyPage {
    type Error = Error;

    fn try_from(req: &pb::ListBackupPoliciesRequest) -> Result<Self, Error> {
        let mut v = Violations::default();
        let start = paging::at_position(&mut v, &req.page_token);
        v.limit("page_size", req.page_size);
        v.finish()?;
        Ok(PolicyPage {
            start,
            size: usize::try_from(req.page_size).unwrap_or(0),
        })
    }
}

impl PolicyPage {
    pub(super) fn of(&self, list: rest::PolicyList) -> pb::ListBackupPoliciesResponse {
        let total = list.backup_policies.len();
        let skip = self.start.position() as usize;
        let take = if self.size == 0 { total } else { self.size };
        let backup_policies: Vec<pb::BackupPolicy> = list
            .backup_policies
            .into_iter()
            .skip(skip)
            .take(take)
            .map(pb::BackupPolicy::from)
            .collect();
        pb::ListBackupPoliciesResponse {
            next_page_token: paging::next_position(&self.start, backup_policies.len(), total),
            backup_policies,
        }
    }
}

impl From<rest::Policy> for pb::BackupPolicy {
    fn from(policy: rest::Policy) -> Self {
        pb::BackupPolicy {
            backup_policy_id: text(policy.backup_policy_id),
            backup_policy_name: text(policy.backup_policy_name),
            status_raw: policy
                .scheduled_policy
                .as_ref()
                .and_then(|schedule| schedule.status.clone())
                .unwrap_or_default(),
            scheduled_policy: policy.scheduled_policy.map(pb::ScheduledPolicy::from),
            policy_resource_count: policy
                .policy_resource_count
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or_default(),
            tags: policy.tags.into_iter().map(pb::Tag::from).collect(),
            time_zone: text(policy.time_zone),
        }
    }
}

impl From<rest::Schedule> for pb::ScheduledPolicy {
    fn from(schedule: rest::Schedule) -> Self {
        let small = |n: Option<i64>| n.and_then(|n| i32::try_from(n).ok());
        let status_raw = text(schedule.status);
        pb::ScheduledPolicy {
            start_time: text(schedule.start_time),
            frequency: small(schedule.frequency),
            week_frequency: schedule
                .week_frequency
                .iter()
                .map(|d| Weekday::from_wire(d) as i32)
                .collect(),
            retention_num: small(schedule.retention_num),
            retention_day: small(schedule.retention_day),
            remain_first_backup_of_cur_month: schedule.remain_first_backup_of_cur_month,
            status: PolicyStatus::from_wire(&status_raw) as i32,
        }
    }
}

impl From<rest::ResourceOutcomes> for pb::AssociateResourcesResponse {
    fn from(outcome: rest::ResourceOutcomes) -> Self {
        pb::AssociateResourcesResponse {
            success_resources: resource_results(outcome.success_resources),
            fail_resources: resource_results(outcome.fail_resources),
        }
    }
}

impl From<rest::ResourceOutcomes> for pb::DisassociateResourcesResponse {
    fn from(outcome: rest::ResourceOutcomes) -> Self {
        pb::DisassociateResourcesResponse {
            success_resources: resource_results(outcome.success_resources),
            fail_resources: resource_results(outcome.fail_resources),
        }
    }
}

fn resource_results(outcomes: Vec<rest::ResourceOutcome>) -> Vec<pb::ResourceResult> {
    outcomes.into_iter().map(pb::ResourceResult::from).collect()
}

impl From<rest::ResourceOutcome> for pb::ResourceResult {
    fn from(outcome: rest::ResourceOutcome) -> Self {
        pb::ResourceResult {
            resource_id: text(outcome.resource_id),
            resource_type: text(outcome.resource_type),
            availability_zone: text(outcome.availability_zone),
            os_vol_host_attr: text(outcome.os_vol_host_attr),
            code: text(outcome.code),
            message: text(outcome.message),
        }
    }
}

impl From<rest::TaskPage> for pb::ListBackupPolicyTasksResponse {
    fn from(page: rest::TaskPage) -> Self {
        pb::ListBackupPolicyTasksResponse {
            total_size: page
                .count
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(page.tasks.len() as i32),
            tasks: page.tasks.into_iter().map(pb::BackupTask::from).collect(),
            next_page_token: String::new(),
        }
    }
}

/// Tasks VBS answers in one page when the request names no size.
const TASK_PAGE_DEFAULT: usize = 20;

/// The token after a page of tasks: VBS pages them by marker and says only
/// how many match in all, so a full page means more may follow (the page
/// after the last full one is empty).
pub(super) fn next_task_token(tasks: &[pb::BackupTask], page_size: i32) -> String {
    let size = usize::try_from(page_size)
        .ok()
        .filter(|s| *s > 0)
        .unwrap_or(TASK_PAGE_DEFAULT);
    match tasks.last() {
        Some(last) if tasks.len() >= size => last.task_id.clone(),
        _ => String::new(),
    }
}

impl From<rest::Task> for pb::BackupTask {
    fn from(task: rest::Task) -> Self {
        let status_raw = text(task.status);
        pb::BackupTask {
            task_id: text(task.job_id),
            status: TaskStatus::from_wire(&status_raw) as i32,
            status_raw,
            created_at: timestamp(task.created_at.as_deref()),
            finished_at: timestamp(task.finished_at.as_deref()),
            backup_name: text(task.backup_name),
            resource_id: text(task.resource_id),
            resource_type: text(task.resource_type),
            vbs_job_id: text(task.vbs_job_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grpc::wire::assert_round_trips;

    #[test]
    fn policy_statuses_round_trip_through_their_wire_names() {
        assert_round_trips::<PolicyStatus>();
        assert_eq!(PolicyStatus::from_wire("on"), PolicyStatus::Unspecified, "case counts");
    }

    #[test]
    fn weekdays_round_trip_through_their_wire_names() {
        assert_round_trips::<Weekday>();
        for raw in rules::WEEKDAYS {
            assert_eq!(Weekday::from_wire(raw).wire(), Some(*raw));
        }
        assert_eq!(Weekday::from_wire("mon"), Weekday::Mon);
        assert_eq!(Weekday::from_wire("someday"), Weekday::Unspecified);
        assert_eq!(Weekday::Unspecified.wire(), None);
    }

    #[test]
    fn task_statuses_round_trip_through_their_wire_names() {
        assert_round_trips::<TaskStatus>();
    }

    #[test]
    fn schedule_patch_sends_only_what_was_set() {
        let patch = SchedulePatch::from(&pb::ScheduledPolicy {
            week_frequency: vec![Weekday::Mon as i32, Weekday::Fri as i32],
            remain_first_backup_of_cur_month: Some(false),
            ..Default::default()
        });
        assert_eq!(patch.week_frequency, Some(vec!["MON".to_string(), "FRI".to_string()]));
        assert_eq!(patch.remain_first_backup_of_cur_month, Some("N"));
        assert_eq!((patch.start_time, patch.status, patch.frequency), (None, None, None));
    }
}
