//! BackupService: validates each backup RPC, turns it into its VBS REST call,
//! and answers with the reply in the typed contract (conversions in `convert`).

mod convert;
mod shares;

use tonic::{Request, Response, Status};

use super::{Upstream, Violations, operations};
use crate::proto::pb::{self, backup_service_server::BackupService};
use crate::rest::backups::{self as rest, BackupQuery, BackupsApi};
use crate::rest::{CallContext, Transport};
use vbs_rules as rules;

type RpcResult<T> = Result<Response<T>, Status>;

pub(crate) struct Backups {
    upstream: Upstream,
}

impl Backups {
    pub(crate) fn new(upstream: Upstream) -> Backups {
        Backups { upstream }
    }

    fn api<'a>(&'a self, ctx: &'a CallContext) -> BackupsApi<'a> {
        api(&self.upstream.transport, ctx)
    }
}

/// The backup calls of one RPC; writes own their transport handle, as they
/// may outlive the call.
fn api<'a>(transport: &'a Transport, ctx: &'a CallContext) -> BackupsApi<'a> {
    BackupsApi { transport, ctx }
}

#[tonic::async_trait]
impl BackupService for Backups {
    async fn create_backup(&self, request: Request<pb::CreateBackupRequest>) -> RpcResult<pb::CreateBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_create_backup(&req)?;
        let transport = self.upstream.transport.clone();
        let log = self.upstream.operations.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let body = rest::CreateCloudBackup::from(req);
            let started = api(&transport, &ctx).create_cloud_backup(&body).await?;
            Ok(pb::CreateBackupResponse {
                operation: Some(operations::started(log.as_ref(), &ctx, &started.job_id).await),
                job_id: started.job_id,
            })
        });
        Ok(Response::new(reply.await?))
    }

    async fn restore_backup(&self, request: Request<pb::RestoreBackupRequest>) -> RpcResult<pb::RestoreBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_restore(&req.backup_id, &req.volume_id)?;
        let transport = self.upstream.transport.clone();
        let log = self.upstream.operations.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let body = rest::Restore::from(&req);
            let started = api(&transport, &ctx)
                .restore_cloud_backup(&req.backup_id, &body)
                .await?;
            Ok(pb::RestoreBackupResponse {
                operation: Some(operations::started(log.as_ref(), &ctx, &started.job_id).await),
                job_id: started.job_id,
            })
        });
        Ok(Response::new(reply.await?))
    }

    async fn delete_cloud_backup(
        &self,
        request: Request<pb::DeleteCloudBackupRequest>,
    ) -> RpcResult<pb::DeleteCloudBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_backup_id(&req.backup_id)?;
        let transport = self.upstream.transport.clone();
        let log = self.upstream.operations.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let started = api(&transport, &ctx).delete_cloud_backup(&req.backup_id).await?;
            Ok(pb::DeleteCloudBackupResponse {
                operation: Some(operations::started(log.as_ref(), &ctx, &started.job_id).await),
                job_id: started.job_id,
            })
        });
        Ok(Response::new(reply.await?))
    }

    async fn create_native_backup(
        &self,
        request: Request<pb::CreateNativeBackupRequest>,
    ) -> RpcResult<pb::CreateNativeBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_create_native_backup(&req)?;
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let body = rest::CreateNativeBackup::from(req);
            let created = api(&transport, &ctx).create_native_backup(&body).await?;
            Ok(pb::CreateNativeBackupResponse {
                backup: Some(created.backup.into()),
            })
        });
        Ok(Response::new(reply.await?))
    }

    async fn list_backups(&self, request: Request<pb::ListBackupsRequest>) -> RpcResult<pb::ListBackupsResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        let query = BackupQuery::try_from(&req)?;
        let page = self.api(&ctx).list_backups(&query).await?;
        Ok(Response::new(page.into()))
    }

    async fn list_backup_details(
        &self,
        request: Request<pb::ListBackupDetailsRequest>,
    ) -> RpcResult<pb::ListBackupDetailsResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        let query = BackupQuery::try_from(&req)?;
        let page = self.api(&ctx).list_backup_details(&query).await?;
        Ok(Response::new(page.into()))
    }

    async fn get_backup(&self, request: Request<pb::GetBackupRequest>) -> RpcResult<pb::GetBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_backup_id(&req.backup_id)?;
        let reply = self.api(&ctx).get_backup(&req.backup_id).await?;
        Ok(Response::new(pb::GetBackupResponse {
            backup: Some(reply.backup.into()),
        }))
    }

    async fn delete_backup(&self, request: Request<pb::DeleteBackupRequest>) -> RpcResult<pb::DeleteBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_backup_id(&req.backup_id)?;
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            api(&transport, &ctx).delete_backup(&req.backup_id).await?;
            Ok(pb::DeleteBackupResponse {})
        });
        Ok(Response::new(reply.await?))
    }

    async fn restore_native_backup(
        &self,
        request: Request<pb::RestoreNativeBackupRequest>,
    ) -> RpcResult<pb::RestoreNativeBackupResponse> {
        let ctx = self.upstream.context(&request, &request.get_ref().project_id)?;
        let req = request.into_inner();
        validate_restore(&req.backup_id, &req.volume_id)?;
        let transport = self.upstream.transport.clone();
        let reply = self.upstream.writes.run(ctx, req, |ctx, req| async move {
            let body = rest::Restore::from(&req);
            let reply = api(&transport, &ctx)
                .restore_native_backup(&req.backup_id, &body)
                .await?;
            Ok(pb::RestoreNativeBackupResponse::from(reply.restore))
        });
        Ok(Response::new(reply.await?))
    }

    async fn share_backup(&self, request: Request<pb::ShareBackupRequest>) -> RpcResult<pb::ShareBackupResponse> {
        shares::share(&self.upstream, request).await
    }

    async fn list_shares(&self, request: Request<pb::ListSharesRequest>) -> RpcResult<pb::ListSharesResponse> {
        shares::list(&self.upstream, request).await
    }

    async fn get_share(&self, request: Request<pb::GetShareRequest>) -> RpcResult<pb::GetShareResponse> {
        shares::get(&self.upstream, request).await
    }

    async fn delete_share(&self, request: Request<pb::DeleteShareRequest>) -> RpcResult<pb::DeleteShareResponse> {
        shares::delete(&self.upstream, request).await
    }
}

fn validate_create_backup(req: &pb::CreateBackupRequest) -> Result<(), crate::error::Error> {
    let mut v = Violations::default();
    v.uuid("volume_id", &req.volume_id);
    v.optional_uuid("snapshot_id", &req.snapshot_id);
    v.check("name", rules::backup_name(&req.name));
    v.check(
        "description",
        rules::description(&req.description, rules::CLOUD_BACKUP_DESCRIPTION_MAX),
    );
    v.check("tags", rules::entries_at_most(req.tags.len(), rules::TAGS_MAX));
    for (i, tag) in req.tags.iter().enumerate() {
        v.check(&format!("tags[{i}].key"), rules::tag_key(&tag.key));
        v.check(&format!("tags[{i}].value"), rules::tag_value(&tag.value));
    }
    v.finish()
}

fn validate_create_native_backup(req: &pb::CreateNativeBackupRequest) -> Result<(), crate::error::Error> {
    let mut v = Violations::default();
    v.uuid("volume_id", &req.volume_id);
    v.uuid("snapshot_id", &req.snapshot_id);
    if !req.name.is_empty() {
        v.check("name", rules::backup_name(&req.name));
    }
    v.check(
        "description",
        rules::description(&req.description, rules::NATIVE_BACKUP_DESCRIPTION_MAX),
    );
    v.check("container", rules::text_at_most(&req.container, rules::CONTAINER_MAX));
    v.finish()
}

fn validate_backup_id(backup_id: &str) -> Result<(), crate::error::Error> {
    Violations::only("backup_id", rules::uuid(backup_id))
}

fn validate_restore(backup_id: &str, volume_id: &str) -> Result<(), crate::error::Error> {
    let mut v = Violations::default();
    v.uuid("backup_id", backup_id);
    v.uuid("volume_id", volume_id);
    v.finish()
}
