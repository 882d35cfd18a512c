//! Backup policies: create, update, delete and list, and the volumes bound
//! to them (associate, disassociate). A policy's schedule and the tasks of
//! its runs have files of their own.

pub(crate) mod schedule;
pub(crate) mod tags;
pub(crate) mod tasks;

use serde::Deserialize;

use self::schedule::{CREATE_RANGES, Schedule, ScheduleInput, UPDATE_RANGES, checked_schedule};
use super::backups::can_back_up;
use super::{
    AVAILABILITY_ZONE, Project, Rejection, Resource, Tag, TagInput, VOLUME_HOST, World, check, checked_tags, code,
    new_id, table_message,
};
use vbs_rules::{self as rules, Problem};

#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) schedule: Schedule,
    pub(crate) tags: Vec<Tag>,
    /// Ids of the bound volumes, in binding order.
    pub(crate) resources: Vec<String>,
}

// ------------------------------------------------------------ request input

#[derive(Debug, Default, Deserialize)]
pub(crate) struct PolicyInput {
    pub(crate) backup_policy_name: Option<String>,
    pub(crate) scheduled_policy: Option<ScheduleInput>,
    pub(crate) tags: Option<Vec<TagInput>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResourceInput {
    pub(crate) resource_id: Option<String>,
    pub(crate) resource_type: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct AssociateInput {
    pub(crate) backup_policy_id: Option<String>,
    pub(crate) resources: Option<Vec<ResourceInput>>,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct DisassociateInput {
    pub(crate) resources: Option<Vec<ResourceInput>>,
}

// ----------------------------------------------------------------- results

/// A volume in an associate/disassociate answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ResourceRef {
    pub(crate) resource_id: String,
    /// Empty for volumes the simulator does not know.
    pub(crate) availability_zone: String,
    pub(crate) host: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FailedResource {
    pub(crate) resource: ResourceRef,
    pub(crate) code: &'static str,
    pub(crate) message: String,
}

#[derive(Clone, Debug, Default)]
pub(crate) struct ResourceOutcome {
    pub(crate) successes: Vec<ResourceRef>,
    pub(crate) failures: Vec<FailedResource>,
}

impl ResourceOutcome {
    fn fail(&mut self, resource: ResourceRef, code: &'static str, detail: &str) {
        self.failures.push(FailedResource {
            resource,
            code,
            message: format!("{}: {detail}", table_message(code)),
        });
    }
}

// --------------------------------------------------------------- field rules

fn policy_name_code(problem: Problem) -> &'static str {
    match problem {
        Problem::Missing | Problem::TooLong => code::POLICY_NAME_LENGTH,
        Problem::ReservedPrefix => code::POLICY_NAME_RESERVED,
        _ => code::POLICY_NAME_INVALID,
    }
}

// --------------------------------------------------------------- operations

impl Project {
    fn policy(&self, id: &str) -> Option<&Policy> {
        self.policies.iter().find(|p| p.id == id)
    }
}

impl World {
    pub(crate) fn create_policy(&mut self, project_id: &str, input: PolicyInput) -> Result<String, Rejection> {
        let name = input.backup_policy_name.unwrap_or_default();
        check(rules::policy_name(&name), "backup_policy_name", policy_name_code)?;
        let schedule = match input.scheduled_policy {
            Some(schedule) if !schedule.is_empty() => schedule,
            _ => {
                return Err(Rejection::invalid_because(
                    code::POLICY_EMPTY_STRUCTURE,
                    "scheduled_policy is required",
                ));
            }
        };
        let schedule = checked_schedule(&schedule, Schedule::default(), &CREATE_RANGES)?;
        let tags = checked_tags(input.tags, code::POLICY_TAG_INVALID, code::POLICY_TAG_INVALID)?;
        if self.project(project_id).map_or(0, |p| p.policies.len()) >= rules::MAX_POLICIES {
            return Err(Rejection::invalid_because(
                code::TOO_MANY_POLICIES,
                format!("a project holds at most {} backup policies", rules::MAX_POLICIES),
            ));
        }
        let policy = Policy {
            id: new_id(),
            name,
            schedule,
            tags,
            resources: Vec::new(),
        };
        let id = policy.id.clone();
        self.project_mut(project_id).policies.push(policy);
        Ok(id)
    }

    pub(crate) fn policies(&self, project_id: &str) -> &[Policy] {
        self.project(project_id).map_or(&[], |p| &p.policies)
    }

    fn checked_policy(&self, project_id: &str, policy_id: &str) -> Result<&Policy, Rejection> {
        self.project(project_id)
            .and_then(|p| p.policy(policy_id))
            .ok_or_else(|| Rejection::not_found(code::POLICY_NOT_FOUND, Resource::Policy, policy_id))
    }

    fn policy_mut(&mut self, project_id: &str, policy_id: &str) -> Result<&mut Policy, Rejection> {
        self.projects
            .get_mut(project_id)
            .and_then(|p| p.policies.iter_mut().find(|policy| policy.id == policy_id))
            .ok_or_else(|| Rejection::not_found(code::POLICY_NOT_FOUND, Resource::Policy, policy_id))
    }

    /// PUT /backuppolicy/{id}: a partial update, except that VBS wants the
    /// frequency (or week days) every time.
    pub(crate) fn update_policy(
        &mut self,
        project_id: &str,
        policy_id: &str,
        input: PolicyInput,
    ) -> Result<String, Rejection> {
        if let Some(name) = &input.backup_policy_name {
            check(rules::policy_name(name), "backup_policy_name", policy_name_code)?;
        }
        let Some(schedule) = input.scheduled_policy.as_ref() else {
            return Err(Rejection::invalid_because(
                code::FREQUENCY_INVALID,
                "scheduled_policy with frequency or week_frequency is required",
            ));
        };
        let tags = match input.tags {
            Some(tags) => Some(checked_tags(
                Some(tags),
                code::POLICY_TAG_INVALID,
                code::POLICY_TAG_INVALID,
            )?),
            None => None,
        };
        let current = self.checked_policy(project_id, policy_id)?.schedule.clone();
        let schedule = checked_schedule(schedule, current, &UPDATE_RANGES)?;
        let policy = self.policy_mut(project_id, policy_id)?;
        if let Some(name) = input.backup_policy_name {
            policy.name = name;
        }
        policy.schedule = schedule;
        if let Some(tags) = tags {
            policy.tags = tags;
        }
        Ok(policy.id.clone())
    }

    /// Deletes a policy; its volumes become free to bind elsewhere.
    pub(crate) fn delete_policy(&mut self, project_id: &str, policy_id: &str) -> Result<(), Rejection> {
        self.checked_policy(project_id, policy_id)?;
        let project = self.project_mut(project_id);
        project.policies.retain(|p| p.id != policy_id);
        project.tasks.retain(|t| t.policy_id != policy_id);
        Ok(())
    }

    fn resource_ref(&self, resource_id: &str) -> ResourceRef {
        let known = self.volume(resource_id).is_some();
        let or_empty = |text: &str| if known { text.to_owned() } else { String::new() };
        ResourceRef {
            resource_id: resource_id.to_owned(),
            availability_zone: or_empty(AVAILABILITY_ZONE),
            host: or_empty(VOLUME_HOST),
        }
    }

    /// POST /backuppolicyresources: binds each volume, or says why not.
    pub(crate) fn associate(&mut self, project_id: &str, input: AssociateInput) -> Result<ResourceOutcome, Rejection> {
        let policy_id = input.backup_policy_id.unwrap_or_default();
        if policy_id.is_empty() {
            return Err(Rejection::invalid(code::POLICY_ID_EMPTY));
        }
        self.checked_policy(project_id, &policy_id)?;
        let resource_ids = checked_resources(input.resources, true)?;
        let mut outcome = ResourceOutcome::default();
        for resource_id in resource_ids {
            let resource = self.resource_ref(&resource_id);
            let bound_elsewhere = self
                .policies(project_id)
                .iter()
                .find(|p| p.id != policy_id && p.resources.contains(&resource_id))
                .map(|p| p.id.clone());
            match (self.volume(&resource_id), bound_elsewhere) {
                (None, _) => outcome.fail(
                    resource,
                    code::RESOURCE_NOT_FOUND,
                    &format!("volume {resource_id} does not exist"),
                ),
                (Some(_), Some(other)) => outcome.fail(
                    resource,
                    code::RESOURCE_ILLEGAL,
                    &format!("volume {resource_id} is already bound to policy {other}"),
                ),
                (Some(volume), None) if !can_back_up(volume) => {
                    let detail = format!("volume {resource_id} is {}", volume.status);
                    outcome.fail(resource, code::BIND_VOLUME_BAD_STATUS, &detail);
                }
                (Some(_), None) => {
                    let policy = self.policy_mut(project_id, &policy_id)?;
                    if !policy.resources.contains(&resource_id) {
                        policy.resources.push(resource_id);
                    }
                    outcome.successes.push(resource);
                }
            }
        }
        Ok(outcome)
    }

    /// POST /backuppolicyresources/{id}/deleted_resources.
    pub(crate) fn disassociate(
        &mut self,
        project_id: &str,
        policy_id: &str,
        input: DisassociateInput,
    ) -> Result<ResourceOutcome, Rejection> {
        self.checked_policy(project_id, policy_id)?;
        let resource_ids = checked_resources(input.resources, false)?;
        let mut outcome = ResourceOutcome::default();
        for resource_id in resource_ids {
            let resource = self.resource_ref(&resource_id);
            let policy = self.policy_mut(project_id, policy_id)?;
            if let Some(index) = policy.resources.iter().position(|id| id == &resource_id) {
                policy.resources.remove(index);
                outcome.successes.push(resource);
            } else {
                let detail = format!("volume {resource_id} is not bound to policy {policy_id}");
                outcome.fail(resource, code::RESOURCE_NOT_FOUND, &detail);
            }
        }
        Ok(outcome)
    }
}

/// The resource ids of an associate/disassociate body; a bad entry fails the
/// whole request.
fn checked_resources(resources: Option<Vec<ResourceInput>>, type_required: bool) -> Result<Vec<String>, Rejection> {
    let resources = resources.unwrap_or_default();
    if resources.is_empty() {
        return Err(Rejection::invalid(code::RESOURCES_EMPTY));
    }
    resources
        .into_iter()
        .map(|resource| {
            let id = resource.resource_id.unwrap_or_default();
            if id.is_empty() {
                return Err(Rejection::invalid(code::RESOURCE_ID_EMPTY));
            }
            match resource.resource_type.as_deref() {
                None if type_required => Err(Rejection::invalid_because(
                    code::RESOURCE_ID_EMPTY,
                    "resource_type is required",
                )),
                Some(other) if type_required && other != "volume" => Err(Rejection::invalid_because(
                    code::RESOURCE_TYPE_INVALID,
                    format!("resource_type must be volume, got \"{other}\""),
                )),
                _ => Ok(id),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::testing::{code_of, world};

    #[test]
    fn policy_updates_must_say_when_to_run() {
        let mut world = world();
        let input = PolicyInput {
            backup_policy_name: Some("nightly".into()),
            scheduled_policy: Some(ScheduleInput {
                start_time: Some("12:00".into()),
                frequency: Some(30),
                status: Some("ON".into()),
                ..Default::default()
            }),
            tags: None,
        };
        let id = world.create_policy("p", input).expect("created");
        let rename_only = PolicyInput {
            backup_policy_name: Some("renamed".into()),
            scheduled_policy: None,
            tags: None,
        };
        let error = world.update_policy("p", &id, rename_only).expect_err("no frequency");
        assert_eq!(code_of(error), code::FREQUENCY_INVALID);
        let weekly = PolicyInput {
            scheduled_policy: Some(ScheduleInput {
                week_frequency: Some(vec!["MON".into()]),
                ..Default::default()
            }),
            ..Default::default()
        };
        world.update_policy("p", &id, weekly).expect("updated");
        let schedule = &world.policies("p")[0].schedule;
        assert_eq!(schedule.frequency, None);
        assert_eq!(schedule.week_frequency, Some(vec!["MON".to_owned()]));
        assert_eq!(schedule.start_time.as_deref(), Some("12:00"));
    }
}
