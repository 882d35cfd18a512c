//! VBS backup-sharing calls and their wire models: share a backup with other
//! projects, list, read and stop shares (os-vendor-backup-sharing).

use http::Method;
use serde::{Deserialize, Serialize};

use super::backups::{BackupDetail, Link};
use super::lenient;
use super::transport::{Call, Transport};
use super::{CallContext, Operation, RestError, query_pairs};

/// One share of a backup with another project.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Share {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) backup_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) to_project_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) from_project_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) updated_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub(crate) deleted: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) deleted_at: Option<String>,
    /// The shared backup, in the detail calls.
    #[serde(default)]
    pub(crate) backup: Option<BackupDetail>,
}

/// Reply of creating shares and of listing them: `{"shared": [...]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ShareList {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) shared: Vec<Share>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) shared_links: Vec<Link>,
}

/// Reply of reading one share: `{"shared": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct OneShare {
    pub(crate) shared: Share,
}

/// Body of POST /v2/{project_id}/os-vendor-backup-sharing.
#[derive(Debug, Serialize)]
pub(crate) struct ShareBackup {
    pub(crate) shared: NewShare,
}

#[derive(Debug, Serialize)]
pub(crate) struct NewShare {
    pub(crate) backup_id: String,
    pub(crate) to_project_ids: Vec<String>,
}

/// Filters and paging of the share list, as query pairs.
#[derive(Debug, Default)]
pub(crate) struct ShareQuery {
    pub(crate) share_to_me: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) backup_id: Option<String>,
    pub(crate) from_project_id: Option<String>,
    pub(crate) to_project_id: Option<String>,
    pub(crate) availability_zone: Option<String>,
    pub(crate) volume_id: Option<String>,
    pub(crate) sort_dir: Option<String>,
    pub(crate) marker: Option<String>,
    pub(crate) limit: Option<i64>,
    pub(crate) offset: Option<i64>,
}

impl ShareQuery {
    fn pairs(&self) -> Vec<(String, String)> {
        let texts = [
            ("share_to_me", &self.share_to_me),
            ("name", &self.name),
            ("status", &self.status),
            ("backup_id", &self.backup_id),
            ("from_project_id", &self.from_project_id),
            ("to_project_id", &self.to_project_id),
            ("availability_zone", &self.availability_zone),
            ("volume_id", &self.volume_id),
            ("sort_dir", &self.sort_dir),
            ("marker", &self.marker),
        ];
        query_pairs(&texts, &[("limit", self.limit), ("offset", self.offset)])
    }
}

/// Typed calls of backup sharing.
pub(crate) struct SharesApi<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) ctx: &'a CallContext,
}

const SHARING: &str = "os-vendor-backup-sharing";

impl SharesApi<'_> {
    fn project(&self) -> &str {
        &self.ctx.project_id
    }

    pub(crate) async fn share(&self, body: &ShareBackup) -> Result<ShareList, RestError> {
        let path = ["v2", self.project(), SHARING];
        let call = Call::new(Operation::ShareBackup, Method::POST, &path).json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn list(&self, query: &ShareQuery) -> Result<ShareList, RestError> {
        let path = ["v2", self.project(), SHARING, "detail"];
        let call = Call::new(Operation::ListShares, Method::GET, &path).query(query.pairs());
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn get(&self, share_id: &str) -> Result<OneShare, RestError> {
        let path = ["v2", self.project(), SHARING, share_id];
        let call = Call::new(Operation::GetShare, Method::GET, &path);
        self.transport.call_json(self.ctx, &call).await
    }

    /// Stops one share, or with `is_backup_id` every share of the backup `id`.
    pub(crate) async fn delete(&self, id: &str, is_backup_id: bool) -> Result<(), RestError> {
        let path = ["v2", self.project(), SHARING, id];
        let mut call = Call::new(Operation::DeleteShare, Method::DELETE, &path);
        if is_backup_id {
            call = call.query(vec![("is_backup_id".into(), "true".into())]);
        }
        self.transport.call_empty(self.ctx, &call).await
    }
}
