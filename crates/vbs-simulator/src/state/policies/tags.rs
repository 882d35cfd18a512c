//! A policy's tags through the tag API (one, a batch, the list) and the
//! search of policies by tag, with the rules of the tag API
//! (vbs_rules::tag_api_*) and at most ten tags per policy.

use serde::Deserialize;
use serde_json::Value;

use super::Policy;
use crate::state::{Rejection, Tag, TagInput, World, check, code};
use vbs_rules as rules;

/// One condition of a search: the key and the values that match (any value
/// when none are listed).
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TagMatchInput {
    pub(crate) key: Option<String>,
    pub(crate) values: Option<Vec<String>>,
}

/// Body of POST /backuppolicy/resource_instances/action. `limit` and
/// `offset` come as numbers or, from one client, as strings: both are taken.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct TagSearchInput {
    pub(crate) action: Option<String>,
    pub(crate) tags: Option<Vec<TagMatchInput>>,
    pub(crate) tags_any: Option<Vec<TagMatchInput>>,
    pub(crate) not_tags: Option<Vec<TagMatchInput>>,
    pub(crate) not_tags_any: Option<Vec<TagMatchInput>>,
    pub(crate) limit: Option<Value>,
    pub(crate) offset: Option<Value>,
}

/// What a search found: one page (empty for count) and the number matching.
pub(crate) struct TagSearchResult<'a> {
    pub(crate) page: Vec<&'a Policy>,
    pub(crate) total: usize,
    pub(crate) count_only: bool,
}

struct Condition {
    key: String,
    values: Vec<String>,
}

impl Condition {
    fn holds(&self, tags: &[Tag]) -> bool {
        tags.iter()
            .any(|t| t.key == self.key && (self.values.is_empty() || self.values.contains(&t.value)))
    }
}

fn invalid(detail: impl std::fmt::Display) -> Rejection {
    Rejection::invalid_because(code::POLICY_TAG_INVALID, detail)
}

fn checked_tag(tag: TagInput) -> Result<Tag, Rejection> {
    let key = tag.key.unwrap_or_default();
    let value = tag.value.unwrap_or_default();
    check(rules::tag_api_key(&key), "tag key", |_| code::POLICY_TAG_INVALID)?;
    check(rules::tag_api_value(&value), "tag value", |_| code::POLICY_TAG_INVALID)?;
    Ok(Tag { key, value })
}

fn conditions(input: Option<Vec<TagMatchInput>>, set: &str) -> Result<Vec<Condition>, Rejection> {
    let input = input.unwrap_or_default();
    if input.len() > rules::TAG_MATCHES_MAX {
        return Err(invalid(format!(
            "{set} holds more than {} conditions",
            rules::TAG_MATCHES_MAX
        )));
    }
    input
        .into_iter()
        .map(|m| {
            let key = m.key.unwrap_or_default();
            check(rules::tag_api_key(&key), &format!("{set} key"), |_| {
                code::POLICY_TAG_INVALID
            })?;
            let values = m.values.unwrap_or_default();
            for value in &values {
                check(rules::tag_api_value(value), &format!("{set} value"), |_| {
                    code::POLICY_TAG_INVALID
                })?;
            }
            Ok(Condition { key, values })
        })
        .collect()
}

/// A page number given as a number or as a numeric string.
fn page_number(value: Option<&Value>, name: &str, default: i64) -> Result<i64, Rejection> {
    let number = match value {
        None | Some(Value::Null) => return Ok(default),
        Some(Value::Number(n)) => n.as_i64(),
        Some(Value::String(s)) => s.trim().parse().ok(),
        Some(_) => None,
    };
    number.ok_or_else(|| invalid(format!("{name} must be an integer")))
}

fn upsert(tags: &mut Vec<Tag>, tag: Tag) {
    match tags.iter_mut().find(|t| t.key == tag.key) {
        Some(existing) => existing.value = tag.value,
        None => tags.push(tag),
    }
}

fn within_limit(tags: &[Tag]) -> Result<(), Rejection> {
    check(rules::entries_at_most(tags.len(), rules::TAGS_MAX), "tags", |_| {
        code::TOO_MANY_TAGS
    })
}

impl World {
    /// POST /backuppolicy/{id}/tags: sets one tag (a key already there gets the new value).
    pub(crate) fn add_policy_tag(
        &mut self,
        project_id: &str,
        policy_id: &str,
        tag: Option<TagInput>,
    ) -> Result<(), Rejection> {
        let tag = checked_tag(tag.ok_or_else(|| invalid("the body must hold a \"tag\" object"))?)?;
        let policy = self.policy_mut(project_id, policy_id)?;
        let mut tags = policy.tags.clone();
        upsert(&mut tags, tag);
        within_limit(&tags)?;
        policy.tags = tags;
        Ok(())
    }

    /// DELETE /backuppolicy/{id}/tags/{key}: removing an absent key is no error.
    pub(crate) fn delete_policy_tag(&mut self, project_id: &str, policy_id: &str, key: &str) -> Result<(), Rejection> {
        check(rules::tag_api_key(key), "tag key", |_| code::POLICY_TAG_INVALID)?;
        self.policy_mut(project_id, policy_id)?.tags.retain(|t| t.key != key);
        Ok(())
    }

    pub(crate) fn policy_tags(&self, project_id: &str, policy_id: &str) -> Result<&[Tag], Rejection> {
        Ok(&self.checked_policy(project_id, policy_id)?.tags)
    }

    /// POST /backuppolicy/{id}/tags/action. "update", which some clients
    /// send, is taken as "create" (which already replaces values).
    pub(crate) fn batch_policy_tags(
        &mut self,
        project_id: &str,
        policy_id: &str,
        action: Option<&str>,
        tags: Option<Vec<TagInput>>,
    ) -> Result<(), Rejection> {
        let tags = tags
            .unwrap_or_default()
            .into_iter()
            .map(checked_tag)
            .collect::<Result<Vec<Tag>, Rejection>>()?;
        if tags.is_empty() {
            return Err(invalid("tags must list at least one tag"));
        }
        let policy = self.policy_mut(project_id, policy_id)?;
        match action {
            Some("create" | "update") => {
                let mut all = policy.tags.clone();
                for tag in tags {
                    upsert(&mut all, tag);
                }
                within_limit(&all)?;
                policy.tags = all;
            }
            Some("delete") => policy.tags.retain(|t| !tags.iter().any(|gone| gone.key == t.key)),
            _ => return Err(invalid("action must be create or delete")),
        }
        Ok(())
    }

    /// POST /backuppolicy/resource_instances/action: filter (a page) or count.
    pub(crate) fn search_policies(
        &self,
        project_id: &str,
        input: TagSearchInput,
    ) -> Result<TagSearchResult<'_>, Rejection> {
        let count_only = match input.action.as_deref() {
            Some("filter") => false,
            Some("count") => true,
            _ => return Err(invalid("action must be filter or count")),
        };
        let all = conditions(input.tags, "tags")?;
        let any = conditions(input.tags_any, "tags_any")?;
        let not_all = conditions(input.not_tags, "not_tags")?;
        let not_any = conditions(input.not_tags_any, "not_tags_any")?;
        let limit = page_number(input.limit.as_ref(), "limit", *rules::LIST_LIMIT.end())?;
        let offset = page_number(input.offset.as_ref(), "offset", 0)?;
        check(rules::in_range(limit, &rules::LIST_LIMIT), "limit", |_| {
            code::POLICY_TAG_INVALID
        })?;
        check(rules::offset(offset), "offset", |_| code::POLICY_TAG_INVALID)?;
        let matching: Vec<&Policy> = self
            .policies(project_id)
            .iter()
            .filter(|p| all.iter().all(|c| c.holds(&p.tags)))
            .filter(|p| any.is_empty() || any.iter().any(|c| c.holds(&p.tags)))
            .filter(|p| not_all.is_empty() || !not_all.iter().all(|c| c.holds(&p.tags)))
            .filter(|p| !not_any.iter().any(|c| c.holds(&p.tags)))
            .collect();
        let total = matching.len();
        let page = if count_only {
            Vec::new()
        } else {
            let skip = usize::try_from(offset).unwrap_or(usize::MAX);
            let take = usize::try_from(limit).unwrap_or(usize::MAX);
            matching.into_iter().skip(skip).take(take).collect()
        };
        Ok(TagSearchResult {
            page,
            total,
            count_only,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::state::policies::PolicyInput;
    use crate::state::testing::{code_of, world};

    fn policy(world: &mut World, name: &str) -> String {
        let input: PolicyInput = serde_json::from_value(json!({
            "backup_policy_name": name,
            "scheduled_policy": {"start_time": "12:00", "frequency": 1, "status": "ON"}
        }))
        .unwrap();
        world.create_policy("p", input).unwrap()
    }

    fn tag(key: &str, value: &str) -> TagInput {
        TagInput {
            key: Some(key.into()),
            value: Some(value.into()),
        }
    }

    #[test]
    fn eleven_tags_are_one_too_many() {
        let mut world = world();
        let id = policy(&mut world, "a");
        let ten: Vec<TagInput> = (0..10).map(|i| tag(&format!("k{i}"), "v")).collect();
        world.batch_policy_tags("p", &id, Some("create"), Some(ten)).unwrap();
        world.add_policy_tag("p", &id, Some(tag("k0", "w"))).unwrap();
        let refused = world.add_policy_tag("p", &id, Some(tag("k10", "v"))).unwrap_err();
        assert_eq!(code_of(refused), code::TOO_MANY_TAGS);
        let bad = world.add_policy_tag("p", &id, Some(tag("a b", "v"))).unwrap_err();
        assert_eq!(code_of(bad), code::POLICY_TAG_INVALID);
    }

    #[test]
    fn searches_match_the_four_sets_and_take_string_pages() {
        let mut world = world();
        let a = policy(&mut world, "a");
        let b = policy(&mut world, "b");
        world.add_policy_tag("p", &a, Some(tag("env", "prod"))).unwrap();
        world.add_policy_tag("p", &b, Some(tag("env", "dev"))).unwrap();
        let search = |body: Value| {
            let input: TagSearchInput = serde_json::from_value(body).unwrap();
            let found = world.search_policies("p", input).unwrap();
            (
                found.total,
                found.page.iter().map(|p| p.name.clone()).collect::<Vec<_>>(),
            )
        };
        assert_eq!(
            search(
                json!({"action": "filter", "tags": [{"key": "env", "values": ["prod"]}], "limit": "10", "offset": "0"})
            ),
            (1, vec!["a".to_string()])
        );
        assert_eq!(
            search(json!({"action": "count", "tags_any": [{"key": "env", "values": []}]})).0,
            2
        );
        assert_eq!(
            search(json!({"action": "filter", "not_tags_any": [{"key": "env", "values": ["dev"]}]})).1,
            vec!["a".to_string()]
        );
        assert_eq!(
            search(json!({"action": "filter", "limit": 1, "offset": 1})).1,
            vec!["b".to_string()]
        );
    }
}
