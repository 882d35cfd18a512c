//! VBS policy-tag calls and their wire models: one tag, a batch, a policy's
//! tags, and the search of policies by tag (resource_instances/action).

use http::Method;
use serde::{Deserialize, Serialize};

use super::backups::Tag;
use super::lenient;
use super::transport::{Call, Transport};
use super::{CallContext, Operation, RestError};

/// Body of POST .../backuppolicy/{policy_id}/tags.
#[derive(Debug, Serialize)]
pub(crate) struct OneTag {
    pub(crate) tag: WireTag,
}

/// A tag as the tag API takes it: the value is always sent, empty or not.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct WireTag {
    pub(crate) key: String,
    pub(crate) value: String,
}

/// Body of POST .../backuppolicy/{policy_id}/tags/action.
#[derive(Debug, Serialize)]
pub(crate) struct TagBatch {
    /// "create" or "delete".
    pub(crate) action: &'static str,
    pub(crate) tags: Vec<WireTag>,
}

/// Reply of listing a policy's tags.
#[derive(Debug, Deserialize)]
pub(crate) struct TagList {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) tags: Vec<Tag>,
}

/// One condition of a tag search: a key and the values that match.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct TagMatch {
    pub(crate) key: String,
    pub(crate) values: Vec<String>,
}

/// Body of POST .../backuppolicy/resource_instances/action. VBS lists page
/// sizes as integers throughout its reference, so `limit` and `offset` go out
/// as numbers (the simulator also takes the strings one client sends).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct TagSearch {
    /// "filter" or "count".
    pub(crate) action: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<TagMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags_any: Vec<TagMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) not_tags: Vec<TagMatch>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) not_tags_any: Vec<TagMatch>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) limit: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) offset: Option<i64>,
}

/// Reply of a tag search (`count` sends only `total_count`).
#[derive(Debug, Deserialize)]
pub(crate) struct TaggedResources {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub(crate) total_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) resources: Vec<TaggedResource>,
}

/// A policy found by its tags.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TaggedResource {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) resource_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) resource_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) resource_detail: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) tags: Vec<Tag>,
}

/// Typed calls of the policy tags.
pub(crate) struct TagsApi<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) ctx: &'a CallContext,
}

impl TagsApi<'_> {
    fn project(&self) -> &str {
        &self.ctx.project_id
    }

    pub(crate) async fn add_tag(&self, policy_id: &str, body: &OneTag) -> Result<(), RestError> {
        let path = ["v2", self.project(), "backuppolicy", policy_id, "tags"];
        let call = Call::new(Operation::AddPolicyTag, Method::POST, &path).json_body(body)?;
        self.transport.call_empty(self.ctx, &call).await
    }

    pub(crate) async fn delete_tag(&self, policy_id: &str, key: &str) -> Result<(), RestError> {
        let path = ["v2", self.project(), "backuppolicy", policy_id, "tags", key];
        let call = Call::new(Operation::DeletePolicyTag, Method::DELETE, &path);
        self.transport.call_empty(self.ctx, &call).await
    }

    pub(crate) async fn list_tags(&self, policy_id: &str) -> Result<TagList, RestError> {
        let path = ["v2", self.project(), "backuppolicy", policy_id, "tags"];
        let call = Call::new(Operation::ListPolicyTags, Method::GET, &path);
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn batch(&self, policy_id: &str, body: &TagBatch) -> Result<(), RestError> {
        let path = ["v2", self.project(), "backuppolicy", policy_id, "tags", "action"];
        let call = Call::new(Operation::BatchPolicyTags, Method::POST, &path).json_body(body)?;
        self.transport.call_empty(self.ctx, &call).await
    }

    pub(crate) async fn search(&self, body: &TagSearch) -> Result<TaggedResources, RestError> {
        let path = ["v2", self.project(), "backuppolicy", "resource_instances", "action"];
        let operation = if body.action == "count" {
            Operation::CountPoliciesByTags
        } else {
            Operation::ListPoliciesByTags
        };
        let call = Call::new(operation, Method::POST, &path).json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }
}
