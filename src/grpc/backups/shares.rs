//! The sharing RPCs of BackupService: validation, the REST calls of
//! os-vendor-backup-sharing, and the next page read from `shared_links`
//! (its marker or offset only; the link itself is never followed).

use tonic::{Request, Response, Status};

use super::super::wire::WireName;
use super::super::{Upstream, Violations, non_empty, paging, text, timestamp};
use crate::error::Error;
use crate::proto::pb::{self, BackupStatus};
use crate::rest::backups::{Link, next_marker};
use crate::rest::shares::{self as rest, ShareQuery, SharesApi};
use vbs_rules::{self as rules, Problem};

type RpcResult<T> = Result<Response<T>, Status>;

/// Target projects of one ShareBackup call: the gateway's own bound, the
/// tag limit of VBS's other lists (the clients in use name no number).
const TO_PROJECTS_MAX: usize = 10;

pub(super) async fn share(
    upstream: &Upstream,
    request: Request<pb::ShareBackupRequest>,
) -> RpcResult<pb::ShareBackupResponse> {
    let ctx = upstream.context(&request, &request.get_ref().project_id)?;
    let req = request.into_inner();
    validate_share(&req, &ctx.project_id)?;
    let transport = upstream.transport.clone();
    let reply = upstream.writes.run(ctx, req, |ctx, req| async move {
        let body = rest::ShareBackup {
            shared: rest::NewShare {
                backup_id: req.backup_id,
                to_project_ids: req.to_project_ids,
            },
        };
        let made = SharesApi {
            transport: &transport,
            ctx: &ctx,
        }
        .share(&body)
        .await?;
        Ok(pb::ShareBackupResponse {
            shares: made.shared.into_iter().map(pb::BackupShare::from).collect(),
        })
    });
    Ok(Response::new(reply.await?))
}

pub(super) async fn list(
    upstream: &Upstream,
    request: Request<pb::ListSharesRequest>,
) -> RpcResult<pb::ListSharesResponse> {
    let ctx = upstream.context(&request, &request.get_ref().project_id)?;
    let query = share_query(request.get_ref())?;
    let page = SharesApi {
        transport: &upstream.transport,
        ctx: &ctx,
    }
    .list(&query)
    .await?;
    let last = page.shared.last().and_then(|s| s.id.clone());
    let next_marker = next_marker(&page.shared_links, None).unwrap_or_default();
    let next_offset = next_offset(&page.shared_links);
    // A next link that names neither marker nor offset still means "more":
    // the last share's id is the marker VBS pages by.
    let next_page_token = match (next_marker.is_empty(), next_offset) {
        (false, _) => next_marker,
        (true, 1..) => next_offset.to_string(),
        (true, _) if has_next(&page.shared_links) => last.unwrap_or_default(),
        (true, _) => String::new(),
    };
    Ok(Response::new(pb::ListSharesResponse {
        shares: page.shared.into_iter().map(pb::BackupShare::from).collect(),
        next_page_token,
        shared_links: page.shared_links.into_iter().map(pb::Link::from).collect(),
    }))
}

pub(super) async fn get(upstream: &Upstream, request: Request<pb::GetShareRequest>) -> RpcResult<pb::GetShareResponse> {
    let ctx = upstream.context(&request, &request.get_ref().project_id)?;
    let req = request.into_inner();
    let mut v = Violations::default();
    v.uuid("share_id", &req.share_id);
    v.finish()?;
    let one = SharesApi {
        transport: &upstream.transport,
        ctx: &ctx,
    }
    .get(&req.share_id)
    .await?;
    Ok(Response::new(pb::GetShareResponse {
        share: Some(one.shared.into()),
    }))
}

pub(super) async fn delete(
    upstream: &Upstream,
    request: Request<pb::DeleteShareRequest>,
) -> RpcResult<pb::DeleteShareResponse> {
    let ctx = upstream.context(&request, &request.get_ref().project_id)?;
    let req = request.into_inner();
    let mut v = Violations::default();
    v.uuid("id", &req.id);
    v.finish()?;
    let transport = upstream.transport.clone();
    let reply = upstream.writes.run(ctx, req, |ctx, req| async move {
        SharesApi {
            transport: &transport,
            ctx: &ctx,
        }
        .delete(&req.id, req.is_backup_id)
        .await?;
        Ok(pb::DeleteShareResponse {})
    });
    Ok(Response::new(reply.await?))
}

fn validate_share(req: &pb::ShareBackupRequest, own_project: &str) -> Result<(), Error> {
    let mut v = Violations::default();
    v.uuid("backup_id", &req.backup_id);
    v.non_empty("to_project_ids", &req.to_project_ids, "project");
    v.check(
        "to_project_ids",
        rules::entries_at_most(req.to_project_ids.len(), TO_PROJECTS_MAX),
    );
    for (i, project) in req.to_project_ids.iter().enumerate() {
        let field = format!("to_project_ids[{i}]");
        v.check(&field, rules::path_id(project));
        if project == own_project {
            v.add(&field, Problem::OwnProject, "is the backup's own project");
        }
        v.unique(&field, req.to_project_ids[..i].contains(project), "appears twice");
    }
    v.finish()
}

fn share_query(req: &pb::ListSharesRequest) -> Result<ShareQuery, Error> {
    let mut v = Violations::default();
    v.optional_uuid("backup_id", &req.backup_id);
    v.optional_uuid("volume_id", &req.volume_id);
    let start = paging::marker_or_position(&mut v, &req.page_token);
    for (field, project) in [
        ("from_project_id", &req.from_project_id),
        ("to_project_id", &req.to_project_id),
    ] {
        if !project.is_empty() {
            v.check(field, rules::path_id(project));
        }
    }
    v.check("name", rules::text_at_most(&req.name, rules::NAME_FILTER_MAX));
    v.check(
        "availability_zone",
        rules::text_at_most(&req.availability_zone, rules::BACKUP_NAME_MAX),
    );
    v.optional_word("sort_dir", &req.sort_dir, rules::SORT_DIRECTIONS);
    let status = BackupStatus::try_from(req.status);
    v.known_enum("status", status.is_ok());
    v.limit("page_size", req.page_size);
    v.finish()?;
    Ok(ShareQuery {
        share_to_me: req.share_to_me.then(|| "true".to_string()),
        name: non_empty(&req.name),
        status: status.ok().and_then(WireName::wire).map(str::to_string),
        backup_id: non_empty(&req.backup_id),
        from_project_id: non_empty(&req.from_project_id),
        to_project_id: non_empty(&req.to_project_id),
        availability_zone: non_empty(&req.availability_zone),
        volume_id: non_empty(&req.volume_id),
        sort_dir: non_empty(&req.sort_dir),
        marker: start.marker(),
        limit: (req.page_size != 0).then_some(i64::from(req.page_size)),
        offset: start.offset().map(i64::from),
    })
}

fn has_next(links: &[Link]) -> bool {
    links.iter().any(|l| l.rel == "next")
}

/// The `offset` of the rel=next href, read from its query only.
fn next_offset(links: &[Link]) -> i32 {
    let Some(next) = links.iter().find(|l| l.rel == "next") else {
        return 0;
    };
    let query = next.href.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .find_map(|pair| pair.strip_prefix("offset=")?.parse::<i32>().ok())
        .filter(|offset| *offset > 0)
        .unwrap_or(0)
}

impl From<rest::Share> for pb::BackupShare {
    fn from(share: rest::Share) -> Self {
        pb::BackupShare {
            created_at: timestamp(share.created_at.as_deref()),
            updated_at: timestamp(share.updated_at.as_deref()),
            deleted_at: timestamp(share.deleted_at.as_deref()),
            id: text(share.id),
            backup_id: text(share.backup_id),
            from_project_id: text(share.from_project_id),
            to_project_id: text(share.to_project_id),
            deleted: share.deleted.unwrap_or(false),
            backup: share.backup.map(pb::Backup::from),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(href: &str) -> Link {
        Link {
            href: href.into(),
            rel: "next".into(),
        }
    }

    #[test]
    fn the_next_page_comes_from_the_query_of_the_link_only() {
        let foreign = [link(
            "https://evil.example/v2/p/os-vendor-backup-sharing/detail?limit=2&offset=4",
        )];
        assert_eq!(next_offset(&foreign), 4);
        assert_eq!(next_marker(&foreign, None), None);
        let marked = [link("http://h/x?marker=3b5c2a0e-0000-4000-8000-000000000001&limit=1")];
        assert_eq!(
            next_marker(&marked, None).as_deref(),
            Some("3b5c2a0e-0000-4000-8000-000000000001")
        );
        assert_eq!(next_offset(&marked), 0);
        assert_eq!(next_offset(&[link("http://h/x?offset=abc")]), 0);
    }
}
