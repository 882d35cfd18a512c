//! VBS backup calls (cloudbackups and the native OpenStack backups API) and
//! their wire models, field names exactly as VBS spells them.

use std::collections::BTreeMap;

use http::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::lenient;
use super::transport::{Call, Transport};
use super::{CallContext, Operation, RestError, query_pairs};

/// A key/value tag on a backup or policy.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Tag {
    pub key: String,
    /// Some real bodies spell it `values`; both decode.
    #[serde(default, alias = "values", deserialize_with = "lenient::opt_text")]
    pub value: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Link {
    #[serde(default)]
    pub href: String,
    #[serde(default)]
    pub rel: String,
}

/// Body of POST /v2/{project_id}/cloudbackups.
#[derive(Debug, Serialize)]
pub struct CreateCloudBackup {
    pub backup: CloudBackupSpec,
}

#[derive(Debug, Serialize)]
pub struct CloudBackupSpec {
    pub volume_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extend_param: BTreeMap<String, String>,
}

/// Body of the two restore calls.
#[derive(Debug, Serialize)]
pub struct Restore {
    pub restore: RestoreTarget,
}

#[derive(Debug, Serialize)]
pub struct RestoreTarget {
    pub volume_id: String,
}

/// Reply of the VBS calls that start a job.
#[derive(Debug, Deserialize)]
pub struct JobStarted {
    pub job_id: String,
}

/// Body of the native POST /v2/{project_id}/backups.
#[derive(Debug, Serialize)]
pub struct CreateNativeBackup {
    pub backup: NativeBackupSpec,
}

#[derive(Debug, Serialize)]
pub struct NativeBackupSpec {
    pub volume_id: String,
    pub snapshot_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub incremental: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub force: Option<bool>,
}

/// A backup in summary form (list and native create replies).
#[derive(Debug, Clone, Deserialize)]
pub struct BackupSummary {
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub links: Vec<Link>,
}

#[derive(Debug, Deserialize)]
pub struct NativeBackupCreated {
    pub backup: BackupSummary,
}

/// A backup with every detail. Every field but `id` may be missing or null upstream.
#[derive(Debug, Clone, Deserialize)]
pub struct BackupDetail {
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub description: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub links: Vec<Link>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub availability_zone: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub volume_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub fail_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub size: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub object_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub container: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub updated_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub data_timestamp: Option<String>,
    #[serde(
        default,
        rename = "os-bak-tenant-attr:tenant_id",
        deserialize_with = "lenient::opt_text"
    )]
    pub tenant_id: Option<String>,
    /// JSON text in practice; an object is accepted too.
    #[serde(default)]
    pub service_metadata: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub has_dependent_backups: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub snapshot_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub is_incremental: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub struct BackupSummaryPage {
    #[serde(default, deserialize_with = "lenient::list")]
    pub backups: Vec<BackupSummary>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub backups_links: Vec<Link>,
}

#[derive(Debug, Deserialize)]
pub struct BackupDetailPage {
    #[serde(default, deserialize_with = "lenient::list")]
    pub backups: Vec<BackupDetail>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub backups_links: Vec<Link>,
}

#[derive(Debug, Deserialize)]
pub struct OneBackup {
    pub backup: BackupDetail,
}

/// Reply of the native restore.
#[derive(Debug, Deserialize)]
pub struct NativeRestoreStarted {
    pub restore: NativeRestore,
}

#[derive(Debug, Deserialize)]
pub struct NativeRestore {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub backup_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub volume_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub volume_name: Option<String>,
}

/// Filters and paging of the two list calls, as query pairs.
#[derive(Debug, Default)]
pub struct BackupQuery {
    pub name: Option<String>,
    pub status: Option<String>,
    pub volume_id: Option<String>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
    pub marker: Option<String>,
    pub sort_key: Option<String>,
    pub sort_dir: Option<String>,
}

impl BackupQuery {
    fn pairs(&self) -> Vec<(String, String)> {
        let texts = [
            ("name", &self.name),
            ("status", &self.status),
            ("volume_id", &self.volume_id),
            ("marker", &self.marker),
            ("sort_key", &self.sort_key),
            ("sort_dir", &self.sort_dir),
        ];
        query_pairs(&texts, &[("limit", self.limit), ("offset", self.offset)])
    }
}

/// The marker of the next page, or None on the last page. Read from the
/// `marker` of the rel=next href (only its query is read; the href's host is
/// never contacted); a next link without a marker means "after the last item".
pub fn next_marker(links: &[Link], last_id: Option<&str>) -> Option<String> {
    let next = links.iter().find(|l| l.rel == "next")?;
    let query = next.href.split_once('?').map(|(_, q)| q).unwrap_or_default();
    let query = query.split('#').next().unwrap_or_default();
    let marker = query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == "marker").then(|| {
            percent_encoding::percent_decode_str(value)
                .decode_utf8_lossy()
                .into_owned()
        })
    });
    marker.or_else(|| last_id.map(str::to_string))
}

/// Typed calls of the backup area.
pub struct BackupsApi<'a> {
    pub transport: &'a Transport,
    pub ctx: &'a CallContext,
}

impl BackupsApi<'_> {
    fn project(&self) -> &str {
        &self.ctx.project_id
    }

    pub async fn create_cloud_backup(&self, body: &CreateCloudBackup) -> Result<JobStarted, RestError> {
        let call = Call::new(
            Operation::CreateBackup,
            Method::POST,
            &["v2", self.project(), "cloudbackups"],
        )
        .json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub async fn restore_cloud_backup(&self, backup_id: &str, body: &Restore) -> Result<JobStarted, RestError> {
        let path = ["v2", self.project(), "cloudbackups", backup_id, "restore"];
        let call = Call::new(Operation::RestoreBackup, Method::POST, &path).json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub async fn delete_cloud_backup(&self, backup_id: &str) -> Result<JobStarted, RestError> {
        let path = ["v2", self.project(), "cloudbackups", backup_id];
        let call = Call::new(Operation::DeleteCloudBackup, Method::POST, &path);
        self.transport.call_json(self.ctx, &call).await
    }

    pub async fn create_native_backup(&self, body: &CreateNativeBackup) -> Result<NativeBackupCreated, RestError> {
        let call = Call::new(
            Operation::CreateNativeBackup,
            Method::POST,
            &["v2", self.project(), "backups"],
        )
        .json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub async fn list_backups(&self, query: &BackupQuery) -> Result<BackupSummaryPage, RestError> {
        let call =
            Call::new(Operation::ListBackups, Method::GET, &["v2", self.project(), "backups"]).query(query.pairs());
        self.transport.call_json(self.ctx, &call).await
    }

    pub async fn list_backup_details(&self, query: &BackupQuery) -> Result<BackupDetailPage, RestError> {
        let path = ["v2", self.project(), "backups", "detail"];
        let call = Call::new(Operation::ListBackupDetails, Method::GET, &path).query(query.pairs());
        self.transport.call_json(self.ctx, &call).await
    }

    pub async fn get_backup(&self, backup_id: &str) -> Result<OneBackup, RestError> {
        let path = ["v2", self.project(), "backups", backup_id];
        let call = Call::new(Operation::GetBackup, Method::GET, &path);
        self.transport.call_json(self.ctx, &call).await
    }

    pub async fn delete_backup(&self, backup_id: &str) -> Result<(), RestError> {
        let path = ["v2", self.project(), "backups", backup_id];
        let call = Call::new(Operation::DeleteBackup, Method::DELETE, &path);
        self.transport.call_empty(self.ctx, &call).await
    }

    pub async fn restore_native_backup(
        &self,
        backup_id: &str,
        body: &Restore,
    ) -> Result<NativeRestoreStarted, RestError> {
        let path = ["v2", self.project(), "backups", backup_id, "restore"];
        let call = Call::new(Operation::RestoreNativeBackup, Method::POST, &path).json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(href: &str) -> Vec<Link> {
        vec![Link {
            href: href.into(),
            rel: "next".into(),
        }]
    }

    #[test]
    fn next_marker_comes_from_the_rel_next_query() {
        let links = next("http://192.168.82.222:8776/p/backups?limit=1&offset=1&marker=b3cf7a16-decc");
        assert_eq!(next_marker(&links, Some("last")).as_deref(), Some("b3cf7a16-decc"));
        let without_marker = next("http://h/p/backups?limit=1");
        assert_eq!(next_marker(&without_marker, Some("last")).as_deref(), Some("last"));
        assert_eq!(next_marker(&[], Some("last")), None);
        let self_only = vec![Link {
            href: "http://h/x?marker=a".into(),
            rel: "self".into(),
        }];
        assert_eq!(next_marker(&self_only, Some("last")), None);
    }

    #[test]
    fn query_pairs_skip_unset_filters() {
        let query = BackupQuery {
            name: Some("a b".into()),
            limit: Some(10),
            ..Default::default()
        };
        assert_eq!(
            query.pairs(),
            vec![
                ("name".to_string(), "a b".to_string()),
                ("limit".to_string(), "10".to_string())
            ]
        );
    }
}
