//! BackupPolicyService: validates each policy RPC, turns it into its VBS REST
//! call, and fills the frequency VBS requires on every update from the
//! policy's current schedule when the caller left it out.

use tonic::{Request, Response, Status};

use super::backups::{pb_tag, rest_tag};
use super::{Upstream, Violations, non_empty, text, timestamp};
use crate::error::Error;
use crate::proto::pb::{self, PolicyStatus, TaskStatus, Weekday, backup_policy_service_server::BackupPolicyService};
use crate::rest::CallContext;
use crate::rest::policies::{self as rest, PoliciesApi, SchedulePatch, TaskQuery};
use vbs_rules as rules;

type RpcResult<T> = Result<Response<T>, Status>;

/// The only resource type VBS policies take.
const VOLUME: &str = "volume";

pub struct Policies {
    upstream: Upstream,
}

impl Policies {
    pub fn new(upstream: Upstream) -> Policies {
        Policies { upstream }
    }

    fn api<'a>(&'a self, ctx: &'a CallContext) -> PoliciesApi<'a> {
        PoliciesApi {
            transport: &self.upstream.transport,
            ctx,
        }
    }

    /// Sends a policy update, first completing a schedule that lacks the
    /// frequency VBS requires, from the policy as it is now.
    async fn update(&self, ctx: &CallContext, policy_id: &str, mut body: rest::UpdatePolicy) -> Result<String, Error> {
        let api = self.api(ctx);
        if !body.scheduled_policy.has_frequency() {
            let current = api.find_policy(policy_id).await?.ok_or_else(|| Error::NotFound {
                what: "backup policy",
                id: policy_id.to_string(),
            })?;
            let schedule = current.scheduled_policy.unwrap_or_default();
            if schedule.week_frequency.is_empty() {
                body.scheduled_policy.frequency = schedule.frequency;
            } else {
                body.scheduled_policy.week_frequency = Some(schedule.week_frequency);
            }
        }
        let reply = api.update_policy(policy_id, &body).await?;
        Ok(reply.backup_policy_id.unwrap_or_else(|| policy_id.to_string()))
    }

    async fn set_status(&self, ctx: &CallContext, policy_id: &str, status: PolicyStatus) -> Result<String, Error> {
        let body = rest::UpdatePolicy {
            backup_policy_name: None,
            scheduled_policy: SchedulePatch {
                status: policy_status_wire(status),
                ..SchedulePatch::default()
            },
        };
        self.update(ctx, policy_id, body).await
    }
}

#[tonic::async_trait]
impl BackupPolicyService for Policies {
    async fn create_backup_policy(
        &self,
        request: Request<pb::CreateBackupPolicyRequest>,
    ) -> RpcResult<pb::CreateBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_create(&req)?;
        let name = req.backup_policy_name;
        let body = rest::CreatePolicy {
            backup_policy_name: name.clone(),
            scheduled_policy: schedule_patch(&req.scheduled_policy.unwrap_or_default()),
            tags: req.tags.into_iter().map(rest_tag).collect(),
        };
        let api = self.api(&ctx);
        let reply = api.create_policy(&body).await?;
        let backup_policy_id = match reply.backup_policy_id {
            Some(id) => id,
            // Some VBS versions echo the policy without its id: find it by name.
            None => id_by_name(&api.list_policies().await?.backup_policies, &name),
        };
        Ok(Response::new(pb::CreateBackupPolicyResponse { backup_policy_id }))
    }

    async fn list_backup_policies(
        &self,
        request: Request<pb::ListBackupPoliciesRequest>,
    ) -> RpcResult<pb::ListBackupPoliciesResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let list = self.api(&ctx).list_policies().await?;
        Ok(Response::new(pb::ListBackupPoliciesResponse {
            backup_policies: list.backup_policies.into_iter().map(policy).collect(),
        }))
    }

    async fn update_backup_policy(
        &self,
        request: Request<pb::UpdateBackupPolicyRequest>,
    ) -> RpcResult<pb::UpdateBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_update(&req)?;
        let body = rest::UpdatePolicy {
            backup_policy_name: non_empty(&req.backup_policy_name),
            scheduled_policy: req.scheduled_policy.as_ref().map(schedule_patch).unwrap_or_default(),
        };
        let backup_policy_id = self.update(&ctx, &req.backup_policy_id, body).await?;
        Ok(Response::new(pb::UpdateBackupPolicyResponse { backup_policy_id }))
    }

    async fn delete_backup_policy(
        &self,
        request: Request<pb::DeleteBackupPolicyRequest>,
    ) -> RpcResult<pb::DeleteBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_policy_id(&req.backup_policy_id)?;
        self.api(&ctx).delete_policy(&req.backup_policy_id).await?;
        Ok(Response::new(pb::DeleteBackupPolicyResponse {}))
    }

    async fn associate_resources(
        &self,
        request: Request<pb::AssociateResourcesRequest>,
    ) -> RpcResult<pb::AssociateResourcesResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_resources(&req.backup_policy_id, &req.resources)?;
        let body = rest::Associate {
            backup_policy_id: req.backup_policy_id,
            resources: req.resources.into_iter().map(|r| resource_ref(r, true)).collect(),
        };
        let outcome = self.api(&ctx).associate(&body).await?;
        Ok(Response::new(pb::AssociateResourcesResponse {
            success_resources: outcome.success_resources.into_iter().map(resource_result).collect(),
            fail_resources: outcome.fail_resources.into_iter().map(resource_result).collect(),
        }))
    }

    async fn disassociate_resources(
        &self,
        request: Request<pb::DisassociateResourcesRequest>,
    ) -> RpcResult<pb::DisassociateResourcesResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_resources(&req.backup_policy_id, &req.resources)?;
        let body = rest::Disassociate {
            resources: req.resources.into_iter().map(|r| resource_ref(r, false)).collect(),
        };
        let outcome = self.api(&ctx).disassociate(&req.backup_policy_id, &body).await?;
        Ok(Response::new(pb::DisassociateResourcesResponse {
            success_resources: outcome.success_resources.into_iter().map(resource_result).collect(),
            fail_resources: outcome.fail_resources.into_iter().map(resource_result).collect(),
        }))
    }

    async fn execute_backup_policy(
        &self,
        request: Request<pb::ExecuteBackupPolicyRequest>,
    ) -> RpcResult<pb::ExecuteBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_policy_id(&req.backup_policy_id)?;
        self.api(&ctx).execute(&req.backup_policy_id).await?;
        Ok(Response::new(pb::ExecuteBackupPolicyResponse {}))
    }

    async fn enable_backup_policy(
        &self,
        request: Request<pb::EnableBackupPolicyRequest>,
    ) -> RpcResult<pb::EnableBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_policy_id(&req.backup_policy_id)?;
        let backup_policy_id = self.set_status(&ctx, &req.backup_policy_id, PolicyStatus::On).await?;
        Ok(Response::new(pb::EnableBackupPolicyResponse { backup_policy_id }))
    }

    async fn disable_backup_policy(
        &self,
        request: Request<pb::DisableBackupPolicyRequest>,
    ) -> RpcResult<pb::DisableBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_policy_id(&req.backup_policy_id)?;
        let backup_policy_id = self.set_status(&ctx, &req.backup_policy_id, PolicyStatus::Off).await?;
        Ok(Response::new(pb::DisableBackupPolicyResponse { backup_policy_id }))
    }

    async fn list_backup_policy_tasks(
        &self,
        request: Request<pb::ListBackupPolicyTasksRequest>,
    ) -> RpcResult<pb::ListBackupPolicyTasksResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        let query = task_query(&req)?;
        let page = self.api(&ctx).list_tasks(&req.backup_policy_id, &query).await?;
        Ok(Response::new(pb::ListBackupPolicyTasksResponse {
            count: page
                .count
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(page.tasks.len() as i32),
            tasks: page.tasks.into_iter().map(task).collect(),
        }))
    }
}

/// How a schedule's numbers are bounded: VBS allows more on create than on update.
struct ScheduleRanges {
    frequency: std::ops::RangeInclusive<i64>,
    retention_num: std::ops::RangeInclusive<i64>,
}

const ON_CREATE: ScheduleRanges = ScheduleRanges {
    frequency: rules::FREQUENCY_ON_CREATE,
    retention_num: rules::RETENTION_NUM_ON_CREATE,
};

const ON_UPDATE: ScheduleRanges = ScheduleRanges {
    frequency: rules::FREQUENCY_ON_UPDATE,
    retention_num: rules::RETENTION_NUM_ON_UPDATE,
};

fn validate_create(req: &pb::CreateBackupPolicyRequest) -> Result<(), Error> {
    let mut v = Violations::default();
    v.check("backup_policy_name", rules::policy_name(&req.backup_policy_name));
    match &req.scheduled_policy {
        None => v.add("scheduled_policy", "required"),
        Some(schedule) => {
            v.check("scheduled_policy.start_time", rules::start_time(&schedule.start_time));
            if !matches!(
                PolicyStatus::try_from(schedule.status),
                Ok(PolicyStatus::On | PolicyStatus::Off)
            ) {
                v.add(
                    "scheduled_policy.status",
                    "required: POLICY_STATUS_ON or POLICY_STATUS_OFF",
                );
            }
            if schedule.frequency.is_none() && schedule.week_frequency.is_empty() {
                v.add(
                    "scheduled_policy.frequency",
                    "required: set frequency or week_frequency",
                );
            }
            check_schedule_numbers(&mut v, schedule, &ON_CREATE);
        }
    }
    for (i, tag) in req.tags.iter().enumerate() {
        v.check(&format!("tags[{i}].key"), rules::tag_key(&tag.key));
        v.check(&format!("tags[{i}].value"), rules::tag_value(&tag.value));
    }
    v.finish()
}

fn validate_update(req: &pb::UpdateBackupPolicyRequest) -> Result<(), Error> {
    let mut v = Violations::default();
    v.uuid("backup_policy_id", &req.backup_policy_id);
    if !req.backup_policy_name.is_empty() {
        v.check("backup_policy_name", rules::policy_name(&req.backup_policy_name));
    }
    if let Some(schedule) = &req.scheduled_policy {
        if !schedule.start_time.is_empty() {
            v.check("scheduled_policy.start_time", rules::start_time(&schedule.start_time));
        }
        v.known_enum(
            "scheduled_policy.status",
            PolicyStatus::try_from(schedule.status).is_ok(),
        );
        check_schedule_numbers(&mut v, schedule, &ON_UPDATE);
    }
    v.finish()
}

fn check_schedule_numbers(v: &mut Violations, schedule: &pb::ScheduledPolicy, ranges: &ScheduleRanges) {
    if let Some(frequency) = schedule.frequency {
        v.check(
            "scheduled_policy.frequency",
            rules::in_range(frequency.into(), &ranges.frequency),
        );
    }
    for (i, day) in schedule.week_frequency.iter().enumerate() {
        let known = matches!(Weekday::try_from(*day), Ok(d) if d != Weekday::Unspecified);
        if !known {
            v.add(
                &format!("scheduled_policy.week_frequency[{i}]"),
                "must be a day, WEEKDAY_SUN to WEEKDAY_SAT",
            );
        }
    }
    if let Some(num) = schedule.retention_num {
        v.check(
            "scheduled_policy.retention_num",
            rules::in_range(num.into(), &ranges.retention_num),
        );
    }
    if let Some(days) = schedule.retention_day {
        v.check(
            "scheduled_policy.retention_day",
            rules::in_range(days.into(), &rules::RETENTION_DAY),
        );
    }
}

fn validate_policy_id(policy_id: &str) -> Result<(), Error> {
    let mut v = Violations::default();
    v.uuid("backup_policy_id", policy_id);
    v.finish()
}

fn validate_resources(policy_id: &str, resources: &[pb::PolicyResource]) -> Result<(), Error> {
    let mut v = Violations::default();
    v.uuid("backup_policy_id", policy_id);
    if resources.is_empty() {
        v.add("resources", "must list at least one disk");
    }
    for (i, resource) in resources.iter().enumerate() {
        v.uuid(&format!("resources[{i}].resource_id"), &resource.resource_id);
        v.optional_word(
            &format!("resources[{i}].resource_type"),
            &resource.resource_type,
            &[VOLUME],
        );
    }
    v.finish()
}

fn task_query(req: &pb::ListBackupPolicyTasksRequest) -> Result<TaskQuery, Error> {
    let mut v = Violations::default();
    v.uuid("backup_policy_id", &req.backup_policy_id);
    v.optional_word("sort_order", &req.sort_order, rules::SORT_DIRECTIONS);
    v.optional_word("sort_key", &req.sort_key, &[rules::TASK_SORT_KEY]);
    v.limit("limit", req.limit);
    v.offset("offset", req.offset);
    v.optional_uuid("marker", &req.marker);
    v.optional_uuid("job_id", &req.job_id);
    let status = TaskStatus::try_from(req.status);
    v.known_enum("status", status.is_ok());
    v.finish()?;
    Ok(TaskQuery {
        sort_order: non_empty(&req.sort_order),
        limit: (req.limit != 0).then_some(i64::from(req.limit)),
        marker: non_empty(&req.marker),
        job_id: non_empty(&req.job_id),
        status: status.ok().and_then(task_status_wire).map(str::to_string),
        sort_key: non_empty(&req.sort_key),
        offset: (req.offset != 0).then_some(i64::from(req.offset)),
    })
}

/// Only the schedule fields the caller set go on the wire.
fn schedule_patch(schedule: &pb::ScheduledPolicy) -> SchedulePatch {
    let days: Vec<String> = schedule
        .week_frequency
        .iter()
        .filter_map(|d| Weekday::try_from(*d).ok().and_then(weekday_wire))
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
            .and_then(policy_status_wire),
    }
}

fn resource_ref(resource: pb::PolicyResource, with_type: bool) -> rest::ResourceRef {
    let resource_type = non_empty(&resource.resource_type).unwrap_or_else(|| VOLUME.to_string());
    rest::ResourceRef {
        resource_id: resource.resource_id,
        resource_type: with_type.then_some(resource_type),
    }
}

fn id_by_name(policies: &[rest::Policy], name: &str) -> String {
    let mut matches = policies
        .iter()
        .filter(|p| p.backup_policy_name.as_deref() == Some(name))
        .filter_map(|p| p.backup_policy_id.clone());
    match (matches.next(), matches.next()) {
        (Some(id), None) => id,
        _ => String::new(),
    }
}

fn policy_status_wire(status: PolicyStatus) -> Option<&'static str> {
    match status {
        PolicyStatus::On => Some("ON"),
        PolicyStatus::Off => Some("OFF"),
        PolicyStatus::Unspecified => None,
    }
}

fn policy_status(raw: &str) -> PolicyStatus {
    match raw {
        "ON" => PolicyStatus::On,
        "OFF" => PolicyStatus::Off,
        _ => PolicyStatus::Unspecified,
    }
}

fn weekday_wire(day: Weekday) -> Option<&'static str> {
    let index = (day as usize).checked_sub(1)?;
    rules::WEEKDAYS.get(index).copied()
}

fn weekday(raw: &str) -> Weekday {
    rules::WEEKDAYS
        .iter()
        .position(|d| d.eq_ignore_ascii_case(raw))
        .and_then(|i| Weekday::try_from(i as i32 + 1).ok())
        .unwrap_or(Weekday::Unspecified)
}

fn task_status_wire(status: TaskStatus) -> Option<&'static str> {
    Some(match status {
        TaskStatus::Unspecified => return None,
        TaskStatus::Running => "RUNNING",
        TaskStatus::ExecuteTimeout => "EXECUTE_TIMEOUT",
        TaskStatus::Waiting => "WAITING",
        TaskStatus::ExecuteFail => "EXECUTE_FAIL",
        TaskStatus::ExecuteSuccess => "EXECUTE_SUCCESS",
        TaskStatus::Skip => "SKIP",
    })
}

fn task_status(raw: &str) -> TaskStatus {
    match raw {
        "RUNNING" => TaskStatus::Running,
        "EXECUTE_TIMEOUT" => TaskStatus::ExecuteTimeout,
        "WAITING" => TaskStatus::Waiting,
        "EXECUTE_FAIL" => TaskStatus::ExecuteFail,
        "EXECUTE_SUCCESS" => TaskStatus::ExecuteSuccess,
        "SKIP" => TaskStatus::Skip,
        _ => TaskStatus::Unspecified,
    }
}

pub fn policy(policy: rest::Policy) -> pb::BackupPolicy {
    pb::BackupPolicy {
        backup_policy_id: text(policy.backup_policy_id),
        backup_policy_name: text(policy.backup_policy_name),
        scheduled_policy: policy.scheduled_policy.map(schedule),
        policy_resource_count: policy
            .policy_resource_count
            .and_then(|c| i32::try_from(c).ok())
            .unwrap_or_default(),
        tags: policy.tags.into_iter().map(pb_tag).collect(),
        time_zone: text(policy.time_zone),
    }
}

fn schedule(schedule: rest::Schedule) -> pb::ScheduledPolicy {
    let small = |n: Option<i64>| n.and_then(|n| i32::try_from(n).ok());
    let status_raw = text(schedule.status);
    pb::ScheduledPolicy {
        start_time: text(schedule.start_time),
        frequency: small(schedule.frequency),
        week_frequency: schedule.week_frequency.iter().map(|d| weekday(d) as i32).collect(),
        retention_num: small(schedule.retention_num),
        retention_day: small(schedule.retention_day),
        remain_first_backup_of_cur_month: schedule.remain_first_backup_of_cur_month,
        status: policy_status(&status_raw) as i32,
        status_raw,
    }
}

fn resource_result(outcome: rest::ResourceOutcome) -> pb::ResourceResult {
    pb::ResourceResult {
        resource_id: text(outcome.resource_id),
        resource_type: text(outcome.resource_type),
        availability_zone: text(outcome.availability_zone),
        os_vol_host_attr: text(outcome.os_vol_host_attr),
        code: text(outcome.code),
        message: text(outcome.message),
    }
}

pub fn task(task: rest::Task) -> pb::BackupTask {
    let status_raw = text(task.status);
    pb::BackupTask {
        job_id: text(task.job_id),
        status: task_status(&status_raw) as i32,
        status_raw,
        created_at: timestamp(task.created_at.as_deref()),
        finished_at: timestamp(task.finished_at.as_deref()),
        backup_name: text(task.backup_name),
        resource_id: text(task.resource_id),
        resource_type: text(task.resource_type),
        vbs_job_id: text(task.vbs_job_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weekdays_round_trip_through_their_wire_names() {
        for raw in rules::WEEKDAYS {
            assert_eq!(weekday_wire(weekday(raw)), Some(*raw));
        }
        assert_eq!(weekday("someday"), Weekday::Unspecified);
        assert_eq!(weekday_wire(Weekday::Unspecified), None);
    }

    #[test]
    fn schedule_patch_sends_only_what_was_set() {
        let patch = schedule_patch(&pb::ScheduledPolicy {
            week_frequency: vec![Weekday::Mon as i32, Weekday::Fri as i32],
            remain_first_backup_of_cur_month: Some(false),
            ..Default::default()
        });
        assert_eq!(patch.week_frequency, Some(vec!["MON".to_string(), "FRI".to_string()]));
        assert_eq!(patch.remain_first_backup_of_cur_month, Some("N"));
        assert_eq!((patch.start_time, patch.status, patch.frequency), (None, None, None));
    }
}
