//! The policy-tag RPCs of BackupPolicyService: validation by the tag API's
//! rules (vbs_rules::tag_api_*), the REST bodies, and the search of policies
//! by tag (filter and count).

use tonic::{Request, Response, Status};

use super::super::{Upstream, Violations, paging, text};
use crate::error::Error;
use crate::proto::pb::{self, TagAction};
use crate::rest::tags::{self as rest, TagsApi};
use vbs_rules::{self as rules, Problem};

type RpcResult<T> = Result<Response<T>, Status>;

pub(super) async fn add(
    upstream: &Upstream,
    request: Request<pb::AddPolicyTagRequest>,
) -> RpcResult<pb::AddPolicyTagResponse> {
    let ctx = upstream.context(&request, &request.get_ref().project_id)?;
    let req = request.into_inner();
    validate_add(&req)?;
    let transport = upstream.transport.clone();
    let reply = upstream.writes.run(ctx, req, |ctx, req| async move {
        let tag = req.tag.map(wire_tag).unwrap_or_else(|| wire_tag(pb::Tag::default()));
        let api = TagsApi {
            transport: &transport,
            ctx: &ctx,
        };
        api.add_tag(&req.backup_policy_id, &rest::OneTag { tag }).await?;
        Ok(pb::AddPolicyTagResponse {})
    });
    Ok(Response::new(reply.await?))
}

pub(super) async fn delete(
    upstream: &Upstream,
    request: Request<pb::DeletePolicyTagRequest>,
) -> RpcResult<pb::DeletePolicyTagResponse> {
    let ctx = upstream.context(&request, &request.get_ref().project_id)?;
    let req = request.into_inner();
    let mut v = Violations::default();
    v.uuid("backup_policy_id", &req.backup_policy_id);
    v.check("key", rules::tag_api_key(&req.key));
    v.finish()?;
    let transport = upstream.transport.clone();
    let reply = upstream.writes.run(ctx, req, |ctx, req| async move {
        let api = TagsApi {
            transport: &transport,
            ctx: &ctx,
        };
        api.delete_tag(&req.backup_policy_id, &req.key).await?;
        Ok(pb::DeletePolicyTagResponse {})
    });
    Ok(Response::new(reply.await?))
}

pub(super) async fn list(
    upstream: &Upstream,
    request: Request<pb::ListPolicyTagsRequest>,
) -> RpcResult<pb::ListPolicyTagsResponse> {
    let ctx = upstream.context(&request, &request.get_ref().project_id)?;
    let req = request.into_inner();
    let mut v = Violations::default();
    v.uuid("backup_policy_id", &req.backup_policy_id);
    v.finish()?;
    let api = TagsApi {
        transport: &upstream.transport,
        ctx: &ctx,
    };
    let list = api.list_tags(&req.backup_policy_id).await?;
    Ok(Response::new(pb::ListPolicyTagsResponse {
        tags: list.tags.into_iter().map(pb::Tag::from).collect(),
    }))
}

pub(super) async fn batch(
    upstream: &Upstream,
    request: Request<pb::BatchPolicyTagsRequest>,
) -> RpcResult<pb::BatchPolicyTagsResponse> {
    let ctx = upstream.context(&request, &request.get_ref().project_id)?;
    let req = request.into_inner();
    let action = validate_batch(&req)?;
    let transport = upstream.transport.clone();
    let reply = upstream.writes.run(ctx, req, move |ctx, req| async move {
        let body = rest::TagBatch {
            action,
            tags: req.tags.into_iter().map(wire_tag).collect(),
        };
        let api = TagsApi {
            transport: &transport,
            ctx: &ctx,
        };
        api.batch(&req.backup_policy_id, &body).await?;
        Ok(pb::BatchPolicyTagsResponse {})
    });
    Ok(Response::new(reply.await?))
}

pub(super) async fn list_by_tags(
    upstream: &Upstream,
    request: Request<pb::ListPoliciesByTagsRequest>,
) -> RpcResult<pb::ListPoliciesByTagsResponse> {
    let ctx = upstream.context(&request, &request.get_ref().project_id)?;
    let req = request.into_inner();
    let mut v = Violations::default();
    let mut search = checked_search("filter", req.filter.as_ref(), &mut v);
    let start = paging::at_position(&mut v, &req.page_token);
    v.limit("page_size", req.page_size);
    v.finish()?;
    search.limit = (req.page_size != 0).then_some(i64::from(req.page_size));
    search.offset = start.offset().map(i64::from);
    let api = TagsApi {
        transport: &upstream.transport,
        ctx: &ctx,
    };
    let found = api.search(&search).await?;
    let total_size = count(found.total_count);
    let next_page_token =
        paging::next_position(&start, found.resources.len(), usize::try_from(total_size).unwrap_or(0));
    Ok(Response::new(pb::ListPoliciesByTagsResponse {
        total_size,
        next_page_token,
        resources: found.resources.into_iter().map(pb::TaggedPolicy::from).collect(),
    }))
}

pub(super) async fn count_by_tags(
    upstream: &Upstream,
    request: Request<pb::CountPoliciesByTagsRequest>,
) -> RpcResult<pb::CountPoliciesByTagsResponse> {
    let ctx = upstream.context(&request, &request.get_ref().project_id)?;
    let req = request.into_inner();
    let mut v = Violations::default();
    let search = checked_search("count", req.filter.as_ref(), &mut v);
    v.finish()?;
    let api = TagsApi {
        transport: &upstream.transport,
        ctx: &ctx,
    };
    let found = api.search(&search).await?;
    Ok(Response::new(pb::CountPoliciesByTagsResponse {
        total_count: count(found.total_count),
    }))
}

fn count(total: Option<i64>) -> i32 {
    total.map_or(0, |n| i32::try_from(n.max(0)).unwrap_or(i32::MAX))
}

fn wire_tag(tag: pb::Tag) -> rest::WireTag {
    rest::WireTag {
        key: tag.key,
        value: tag.value,
    }
}

impl From<rest::TaggedResource> for pb::TaggedPolicy {
    fn from(found: rest::TaggedResource) -> Self {
        pb::TaggedPolicy {
            resource_id: text(found.resource_id),
            resource_name: text(found.resource_name),
            resource_detail: text(found.resource_detail),
            tags: found.tags.into_iter().map(pb::Tag::from).collect(),
        }
    }
}

fn check_tag(v: &mut Violations, field: &str, tag: &pb::Tag) {
    v.check(&format!("{field}.key"), rules::tag_api_key(&tag.key));
    v.check(&format!("{field}.value"), rules::tag_api_value(&tag.value));
}

fn validate_add(req: &pb::AddPolicyTagRequest) -> Result<(), Error> {
    let mut v = Violations::default();
    v.uuid("backup_policy_id", &req.backup_policy_id);
    match &req.tag {
        None => v.add("tag", Problem::Missing, "required"),
        Some(tag) => check_tag(&mut v, "tag", tag),
    }
    v.finish()
}

/// Checks a batch and names its wire action.
fn validate_batch(req: &pb::BatchPolicyTagsRequest) -> Result<&'static str, Error> {
    let mut v = Violations::default();
    v.uuid("backup_policy_id", &req.backup_policy_id);
    let action = match TagAction::try_from(req.action) {
        Ok(TagAction::Create) => "create",
        Ok(TagAction::Delete) => "delete",
        _ => {
            v.required_enum(
                "action",
                req.action,
                false,
                "required: TAG_ACTION_CREATE or TAG_ACTION_DELETE",
            );
            ""
        }
    };
    v.non_empty("tags", &req.tags, "tag");
    v.check("tags", rules::entries_at_most(req.tags.len(), rules::TAGS_MAX));
    for (i, tag) in req.tags.iter().enumerate() {
        check_tag(&mut v, &format!("tags[{i}]"), tag);
        let repeated = req.tags[..i].iter().any(|earlier| earlier.key == tag.key);
        v.unique(&format!("tags[{i}].key"), repeated, "appears twice in the batch");
    }
    v.finish().map(|()| action)
}

/// The search body of `action`, every condition checked into `v`.
fn checked_search(action: &'static str, filter: Option<&pb::PolicyTagFilter>, v: &mut Violations) -> rest::TagSearch {
    let filter = filter.cloned().unwrap_or_default();
    let mut set = |name: &str, matches: Vec<pb::TagMatch>| -> Vec<rest::TagMatch> {
        v.check(
            &format!("filter.{name}"),
            rules::entries_at_most(matches.len(), rules::TAG_MATCHES_MAX),
        );
        matches
            .into_iter()
            .enumerate()
            .map(|(i, m)| {
                let field = format!("filter.{name}[{i}]");
                v.check(&format!("{field}.key"), rules::tag_api_key(&m.key));
                v.check(
                    &format!("{field}.values"),
                    rules::entries_at_most(m.values.len(), rules::TAG_MATCHES_MAX),
                );
                for (j, value) in m.values.iter().enumerate() {
                    v.check(&format!("{field}.values[{j}]"), rules::tag_api_value(value));
                }
                rest::TagMatch {
                    key: m.key,
                    values: m.values,
                }
            })
            .collect()
    };
    rest::TagSearch {
        action,
        tags: set("tags", filter.tags),
        tags_any: set("tags_any", filter.tags_any),
        not_tags: set("not_tags", filter.not_tags),
        not_tags_any: set("not_tags_any", filter.not_tags_any),
        limit: None,
        offset: None,
    }
}
