//! The simulated CSBS world: servers that can be backed up and the backups
//! (checkpoint items) made of them, which move from protecting to available,
//! or to error when a failure was injected, on the simulator's clock.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::ServerSpec;
use crate::clock::delta;

/// Server statuses CSBS backs up (ECS spelling).
const PROTECTABLE_STATUSES: &[&str] = &["ACTIVE", "SHUTOFF"];

/// A refusal as CSBS answers it: HTTP 400 and `{"error_code", "error_msg"}`
/// (the CSBS error code table), or 404 for an unknown backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// HTTP 400 with a CSBS error code and message.
    Invalid { code: &'static str, message: String },
    /// No such backup in the project.
    NotFound { id: String },
}

impl Refusal {
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> Refusal {
        Refusal::Invalid {
            code,
            message: message.into(),
        }
    }
}

/// What a protect asks for, read from the body.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProtectRequest {
    pub(crate) backup_name: Option<String>,
    pub(crate) description: Option<String>,
    pub(crate) incremental: Option<bool>,
    pub(crate) tags: Vec<(String, String)>,
    pub(crate) extra_info: Value,
}

/// How a backup ends, set when it starts.
#[derive(Debug, Clone)]
struct Failure {
    code: String,
    reason: String,
}

/// One backup (checkpoint item) and its checkpoint.
#[derive(Debug, Clone)]
struct Item {
    id: String,
    checkpoint_id: String,
    project_id: String,
    name: String,
    description: String,
    resource_id: String,
    resource_name: String,
    incremental: bool,
    tags: Vec<(String, String)>,
    extra_info: Value,
    created_at: DateTime<Utc>,
    done_at: DateTime<Utc>,
    size_mb: u64,
    failure: Option<Failure>,
}

impl Item {
    fn status(&self, now: DateTime<Utc>) -> &'static str {
        match (&self.failure, now >= self.done_at) {
            (_, false) => "protecting",
            (None, true) => "available",
            (Some(_), true) => "error",
        }
    }

    fn progress(&self, now: DateTime<Utc>) -> i64 {
        let total = (self.done_at - self.created_at).num_milliseconds().max(1);
        let done = (now - self.created_at).num_milliseconds().clamp(0, total);
        done * 100 / total
    }
}

/// Every CSBS project's backups, and the servers (shared by all projects).
#[derive(Debug)]
pub(crate) struct World {
    servers: Vec<ServerSpec>,
    items: BTreeMap<String, Item>,
    protecting: Duration,
    fail_next: VecDeque<Failure>,
}

impl World {
    pub(crate) fn new(servers: Vec<ServerSpec>, protecting: Duration) -> World {
        World {
            servers,
            items: BTreeMap::new(),
            protecting,
            fail_next: VecDeque::new(),
        }
    }

    pub(crate) fn servers(&self) -> &[ServerSpec] {
        &self.servers
    }

    /// The next `count` backups end in error with `code` and `reason`.
    pub(crate) fn fail_next_backups(&mut self, count: usize, code: &str, reason: &str) {
        for _ in 0..count {
            self.fail_next.push_back(Failure {
                code: code.to_owned(),
                reason: reason.to_owned(),
            });
        }
    }

    /// Starts a backup of `resource_id` and answers with the checkpoint, as
    /// the protect action does; the server's state rules are checked first.
    pub(crate) fn protect(
        &mut self,
        project_id: &str,
        resource_id: &str,
        request: ProtectRequest,
        now: DateTime<Utc>,
    ) -> Result<Value, Refusal> {
        let server = self
            .servers
            .iter()
            .find(|s| s.id.eq_ignore_ascii_case(resource_id))
            .cloned()
            .ok_or_else(|| Refusal::invalid("CSBS.6000", "server do not exist"))?;
        if !PROTECTABLE_STATUSES.contains(&server.status.as_str()) {
            return Err(Refusal::invalid(
                "CSBS.6006",
                format!(
                    "Server ({}) status ({}) is not allowed to protect.",
                    server.id, server.status
                ),
            ));
        }
        if server.volumes == 0 {
            return Err(Refusal::invalid(
                "CSBS.6007",
                format!("No volume attached to the server ({}) for protect.", server.id),
            ));
        }
        let busy = self
            .items
            .values()
            .any(|item| item.resource_id == server.id && item.status(now) == "protecting");
        if busy {
            return Err(Refusal::invalid(
                "CSBS.6005",
                format!("Server ({}) is already in service.", server.id),
            ));
        }
        let earlier = self.items.values().any(|item| item.resource_id == server.id);
        let item = Item {
            id: uuid::Uuid::new_v4().to_string(),
            checkpoint_id: uuid::Uuid::new_v4().to_string(),
            project_id: project_id.to_owned(),
            name: request
                .backup_name
                .unwrap_or_else(|| format!("manualbk_{}", &server.id[..4])),
            description: request.description.unwrap_or_default(),
            resource_id: server.id.clone(),
            resource_name: server.name.clone(),
            // "For the initial backup, full backup is always adopted."
            incremental: earlier && request.incremental.unwrap_or(true),
            tags: request.tags,
            extra_info: request.extra_info,
            created_at: now,
            done_at: now + delta(self.protecting),
            size_mb: u64::from(server.volumes) * 1024,
            failure: self.fail_next.pop_front(),
        };
        let answer = json!({"checkpoint": {
            "status": "protecting",
            "created_at": time(item.created_at),
            "id": item.checkpoint_id,
            "resource_graph": null,
            "project_id": project_id,
            "extra_info": null,
            "protection_plan": {
                "id": format!("fake_{}", uuid::Uuid::new_v4()),
                "resources": [{
                    "type": vbs_rules::csbs::SERVER_RESOURCE_TYPE,
                    "id": server.id,
                    "name": format!("resource_{}", server.id),
                    "extra_info": {},
                }],
                "name": format!("server protect plan for {}", server.id),
            },
        }});
        self.items.insert(item.id.clone(), item);
        Ok(answer)
    }

    /// One backup of the project, as GET checkpoint_items/{id} shows it.
    pub(crate) fn show(&self, project_id: &str, id: &str, now: DateTime<Utc>) -> Result<Value, Refusal> {
        self.items
            .get(id)
            .filter(|item| item.project_id == project_id)
            .map(|item| shown(item, now))
            .ok_or_else(|| Refusal::NotFound { id: id.to_owned() })
    }

    /// The project's backups matching every filter given (checkpoint_id,
    /// resource_id, status), oldest first.
    pub(crate) fn list(&self, project_id: &str, filters: &[(String, String)], now: DateTime<Utc>) -> Vec<Value> {
        let matches = |item: &Item| {
            filters.iter().all(|(key, value)| match key.as_str() {
                "checkpoint_id" => item.checkpoint_id == *value,
                "resource_id" => item.resource_id == *value,
                "status" => item.status(now) == value,
                _ => true,
            })
        };
        let mut items: Vec<&Item> = self
            .items
            .values()
            .filter(|item| item.project_id == project_id && matches(item))
            .collect();
        items.sort_by_key(|item| item.created_at);
        items.into_iter().map(|item| shown(item, now)).collect()
    }
}

/// A checkpoint_item as "Querying a Single Backup" shapes it.
fn shown(item: &Item, now: DateTime<Utc>) -> Value {
    let status = item.status(now);
    let over = status != "protecting";
    let (fail_code, fail_reason) = match (&item.failure, status) {
        (Some(failure), "error") => (
            json!({"Code": failure.code, "Description": failure.reason}),
            json!(failure.reason),
        ),
        _ => (Value::Null, Value::Null),
    };
    json!({
        "id": item.id,
        "checkpoint_id": item.checkpoint_id,
        "name": item.name,
        "description": item.description,
        "resource_id": item.resource_id,
        "resource_type": vbs_rules::csbs::SERVER_RESOURCE_TYPE,
        "status": status,
        "created_at": time(item.created_at),
        "updated_at": time(if over { item.done_at } else { now }),
        "tags": item.tags.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>(),
        "backup_data": {},
        "extend_info": {
            "auto_trigger": false,
            "progress": item.progress(now),
            "resource_name": item.resource_name,
            "resource_type": vbs_rules::csbs::SERVER_RESOURCE_TYPE,
            "incremental": item.incremental,
            "size": if status == "available" { item.size_mb } else { 0 },
            "fail_code": fail_code,
            "fail_reason": fail_reason,
            "finished_at": if over { json!(time(item.done_at)) } else { Value::Null },
            "extra_info": item.extra_info,
        },
    })
}

/// CSBS times: "2017-04-18T01:21:52.701973", UTC without a zone.
fn time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new(
            super::super::CsbsSimulatorConfig::default_servers(),
            Duration::from_secs(4),
        )
    }

    #[test]
    fn a_backup_protects_then_becomes_available_on_the_clock() {
        let mut world = world();
        let start = Utc::now();
        let server = world.servers()[0].id.clone();
        let answer = world.protect("p", &server, ProtectRequest::default(), start).unwrap();
        let checkpoint = answer["checkpoint"]["id"].as_str().unwrap().to_owned();
        let filter = [("checkpoint_id".to_owned(), checkpoint)];
        let items = world.list("p", &filter, start);
        assert_eq!(items.len(), 1);
        assert_eq!(items[0]["status"], "protecting");
        assert_eq!(items[0]["extend_info"]["incremental"], false);
        let id = items[0]["id"].as_str().unwrap().to_owned();
        let half = world.show("p", &id, start + delta(Duration::from_secs(2))).unwrap();
        assert_eq!(half["extend_info"]["progress"], 50);
        let done = world.show("p", &id, start + delta(Duration::from_secs(4))).unwrap();
        assert_eq!(done["status"], "available");
        assert_eq!(world.show("other", &id, start), Err(Refusal::NotFound { id }));
    }

    #[test]
    fn injected_failures_end_in_error_with_their_code() {
        let mut world = world();
        let start = Utc::now();
        world.fail_next_backups(1, "CSBS.9998", "disk snapshot failed");
        let server = world.servers()[0].id.clone();
        world.protect("p", &server, ProtectRequest::default(), start).unwrap();
        let item = &world.list("p", &[], start + delta(Duration::from_secs(5)))[0];
        assert_eq!(item["status"], "error");
        assert_eq!(item["extend_info"]["fail_code"]["Code"], "CSBS.9998");
    }

    #[test]
    fn servers_are_refused_by_their_state() {
        let mut world = world();
        let now = Utc::now();
        let code = |result: Result<Value, Refusal>| match result {
            Err(Refusal::Invalid { code, .. }) => code,
            other => panic!("expected a refusal, got {other:?}"),
        };
        let ids: Vec<String> = world.servers().iter().map(|s| s.id.clone()).collect();
        let protect = |world: &mut World, id: &str| world.protect("p", id, ProtectRequest::default(), now);
        assert_eq!(
            code(protect(&mut world, "00000000-0000-4000-8000-000000000000")),
            "CSBS.6000"
        );
        protect(&mut world, &ids[0]).unwrap();
        assert_eq!(code(protect(&mut world, &ids[0])), "CSBS.6005");
        assert_eq!(code(protect(&mut world, &ids[2])), "CSBS.6006");
        assert_eq!(code(protect(&mut world, &ids[3])), "CSBS.6007");
    }
}
