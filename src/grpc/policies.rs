//! BackupPolicyService: validates each policy RPC, turns it into its VBS REST
//! call (conversions in `convert`), and fills the frequency VBS requires on
//! every update from the policy's current schedule when the caller left it out.

mod convert;
mod tags;

use tonic::{Request, Response, Status};

use super::wire::WireName;
use super::{Upstream, Violations};
use crate::error::Error;
use crate::proto::pb::{self, PolicyStatus, Weekday, backup_policy_service_server::BackupPolicyService};
use crate::rest::policies::{self as rest, PoliciesApi, SchedulePatch, TaskQuery};
use crate::rest::{CallContext, Transport};
use vbs_rules::{self as rules, Problem};

type RpcResult<T> = Result<Response<T>, Status>;

/// The only resource type VBS policies take.
const VOLUME: &str = "volume";

pub(crate) struct Policies {
    upstream: Upstream,
}

impl Policies {
    pub(crate) fn new(upstream: Upstream) -> Policies {
        Policies { upstream }
    }

    fn api<'a>(&'a self, ctx: &'a CallContext) -> PoliciesApi<'a> {
        api(&self.upstream.transport, ctx)
    }
}

/// The policy calls of one RPC; writes own their transport handle, as they
/// may outlive the call.
fn api<'a>(transport: &'a Transport, ctx: &'a CallContext) -> PoliciesApi<'a> {
    PoliciesApi { transport, ctx }
}

/// Sends a policy update, first completing a schedule that lacks the
/// frequency VBS requires, from the policy as it is now.
async fn update(api: &PoliciesApi<'_>, policy_id: &str, mut body: rest::UpdatePolicy) -> Result<String, Error> {
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

async fn set_status(api: &PoliciesApi<'_>, policy_id: &str, status: PolicyStatus) -> Result<String, Error> {
    let body = rest::UpdatePolicy {
        backup_policy_name: None,
        scheduled_policy: SchedulePatch {
            status: status.wire(),
            ..SchedulePatch::default()
        },
    };
    update(api, policy_id, body).await
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
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let body = rest::CreatePolicy::from(req);
            let api = api(&transport, &ctx);
            let reply = api.create_policy(&body).await?;
            let backup_policy_id = match reply.backup_policy_id {
                Some(id) => id,
                // Some VBS versions echo the policy without its id: find it by name.
                None => {
                    let listed = api
                        .list_policies()
                        .await
                        .map_err(|e| Error::AfterWrite(Box::new(e.into())))?;
                    id_by_name(&listed.backup_policies, &body.backup_policy_name)
                }
            };
            Ok(pb::CreateBackupPolicyResponse { backup_policy_id })
        });
        Ok(Response::new(reply.await?))
    }

    async fn list_backup_policies(
        &self,
        request: Request<pb::ListBackupPoliciesRequest>,
    ) -> RpcResult<pb::ListBackupPoliciesResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let page = convert::PolicyPage::try_from(request.get_ref())?;
        let list = self.api(&ctx).list_policies().await?;
        Ok(Response::new(page.of(list)))
    }

    async fn update_backup_policy(
        &self,
        request: Request<pb::UpdateBackupPolicyRequest>,
    ) -> RpcResult<pb::UpdateBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_update(&req)?;
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let body = rest::UpdatePolicy::from(&req);
            let backup_policy_id = update(&api(&transport, &ctx), &req.backup_policy_id, body).await?;
            Ok(pb::UpdateBackupPolicyResponse { backup_policy_id })
        });
        Ok(Response::new(reply.await?))
    }

    async fn delete_backup_policy(
        &self,
        request: Request<pb::DeleteBackupPolicyRequest>,
    ) -> RpcResult<pb::DeleteBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_policy_id(&req.backup_policy_id)?;
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            api(&transport, &ctx).delete_policy(&req.backup_policy_id).await?;
            Ok(pb::DeleteBackupPolicyResponse {})
        });
        Ok(Response::new(reply.await?))
    }

    async fn associate_resources(
        &self,
        request: Request<pb::AssociateResourcesRequest>,
    ) -> RpcResult<pb::AssociateResourcesResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_resources(&req.backup_policy_id, &req.resources)?;
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let body = rest::Associate::from(req);
            let outcome = api(&transport, &ctx).associate(&body).await?;
            Ok(pb::AssociateResourcesResponse::from(outcome))
        });
        Ok(Response::new(reply.await?))
    }

    async fn disassociate_resources(
        &self,
        request: Request<pb::DisassociateResourcesRequest>,
    ) -> RpcResult<pb::DisassociateResourcesResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_resources(&req.backup_policy_id, &req.resources)?;
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let body = rest::Disassociate::from(&req);
            let outcome = api(&transport, &ctx).disassociate(&req.backup_policy_id, &body).await?;
            Ok(pb::DisassociateResourcesResponse::from(outcome))
        });
        Ok(Response::new(reply.await?))
    }

    async fn execute_backup_policy(
        &self,
        request: Request<pb::ExecuteBackupPolicyRequest>,
    ) -> RpcResult<pb::ExecuteBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_policy_id(&req.backup_policy_id)?;
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            api(&transport, &ctx).execute(&req.backup_policy_id).await?;
            Ok(pb::ExecuteBackupPolicyResponse {})
        });
        Ok(Response::new(reply.await?))
    }

    async fn enable_backup_policy(
        &self,
        request: Request<pb::EnableBackupPolicyRequest>,
    ) -> RpcResult<pb::EnableBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_policy_id(&req.backup_policy_id)?;
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let backup_policy_id = set_status(&api(&transport, &ctx), &req.backup_policy_id, PolicyStatus::On).await?;
            Ok(pb::EnableBackupPolicyResponse { backup_policy_id })
        });
        Ok(Response::new(reply.await?))
    }

    async fn disable_backup_policy(
        &self,
        request: Request<pb::DisableBackupPolicyRequest>,
    ) -> RpcResult<pb::DisableBackupPolicyResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_policy_id(&req.backup_policy_id)?;
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let backup_policy_id = set_status(&api(&transport, &ctx), &req.backup_policy_id, PolicyStatus::Off).await?;
            Ok(pb::DisableBackupPolicyResponse { backup_policy_id })
        });
        Ok(Response::new(reply.await?))
    }

    async fn list_backup_policy_tasks(
        &self,
        request: Request<pb::ListBackupPolicyTasksRequest>,
    ) -> RpcResult<pb::ListBackupPolicyTasksResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        let query = TaskQuery::try_from(&req)?;
        let page = self.api(&ctx).list_tasks(&req.backup_policy_id, &query).await?;
        let mut reply = pb::ListBackupPolicyTasksResponse::from(page);
        reply.next_page_token = convert::next_task_token(&reply.tasks, req.page_size);
        Ok(Response::new(reply))
    }

    async fn add_policy_tag(&self, request: Request<pb::AddPolicyTagRequest>) -> RpcResult<pb::AddPolicyTagResponse> {
        tags::add(&self.upstream, request).await
    }

    async fn delete_policy_tag(
        &self,
        request: Request<pb::DeletePolicyTagRequest>,
    ) -> RpcResult<pb::DeletePolicyTagResponse> {
        tags::delete(&self.upstream, request).await
    }

    async fn list_policy_tags(
        &self,
        request: Request<pb::ListPolicyTagsRequest>,
    ) -> RpcResult<pb::ListPolicyTagsResponse> {
        tags::list(&self.upstream, request).await
    }

    async fn batch_policy_tags(
        &self,
        request: Request<pb::BatchPolicyTagsRequest>,
    ) -> RpcResult<pb::BatchPolicyTagsResponse> {
        tags::batch(&self.upstream, request).await
    }

    async fn list_policies_by_tags(
        &self,
        request: Request<pb::ListPoliciesByTagsRequest>,
    ) -> RpcResult<pb::ListPoliciesByTagsResponse> {
        tags::list_by_tags(&self.upstream, request).await
    }

    async fn count_policies_by_tags(
        &self,
        request: Request<pb::CountPoliciesByTagsRequest>,
    ) -> RpcResult<pb::CountPoliciesByTagsResponse> {
        tags::count_by_tags(&self.upstream, request).await
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
        None => v.add("scheduled_policy", Problem::Missing, "required"),
        Some(schedule) => {
            v.check("scheduled_policy.start_time", rules::start_time(&schedule.start_time));
            v.required_enum(
                "scheduled_policy.status",
                schedule.status,
                matches!(
                    PolicyStatus::try_from(schedule.status),
                    Ok(PolicyStatus::On | PolicyStatus::Off)
                ),
                "required: POLICY_STATUS_ON or POLICY_STATUS_OFF",
            );
            if schedule.frequency.is_none() && schedule.week_frequency.is_empty() {
                v.add(
                    "scheduled_policy.frequency",
                    Problem::Missing,
                    "required: set frequency or week_frequency",
                );
            }
            check_schedule_numbers(&mut v, schedule, &ON_CREATE);
        }
    }
    v.check("tags", rules::entries_at_most(req.tags.len(), rules::TAGS_MAX));
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
        check_schedule_numbers(&mut v, &pb::ScheduledPolicy::from(schedule), &ON_UPDATE);
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
    v.check(
        "scheduled_policy.week_frequency",
        rules::entries_at_most(schedule.week_frequency.len(), rules::WEEK_FREQUENCY_MAX),
    );
    for (i, day) in schedule.week_frequency.iter().enumerate() {
        let known = matches!(Weekday::try_from(*day), Ok(d) if d != Weekday::Unspecified);
        if !known {
            v.add(
                &format!("scheduled_policy.week_frequency[{i}]"),
                Problem::UnknownEnumValue,
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
    Violations::only("backup_policy_id", rules::uuid(policy_id))
}

fn validate_resources(policy_id: &str, resources: &[pb::PolicyResource]) -> Result<(), Error> {
    let mut v = Violations::default();
    v.uuid("backup_policy_id", policy_id);
    v.non_empty("resources", resources, "disk");
    v.check(
        "resources",
        rules::entries_at_most(resources.len(), rules::POLICY_RESOURCES_MAX),
    );
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
