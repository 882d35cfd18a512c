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
pub(crate) struct Tag {
    pub(crate) key: String,
    /// Some real bodies spell it `values`; both decode.
    #[serde(default, alias = "values", deserialize_with = "lenient::opt_text")]
    pub(crate) value: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub(crate) struct Link {
    #[serde(default)]
    pub(crate) href: String,
    #[serde(default)]
    pub(crate) rel: String,
}

/// Body of POST /v2/{project_id}/cloudbackups.
#[derive(Debug, Serialize)]
pub(crate) struct CreateCloudBackup {
    pub(crate) backup: CloudBackupSpec,
}

#[derive(Debug, Serialize)]
pub(crate) struct CloudBackupSpec {
    pub(crate) volume_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) snapshot_id: Option<String>,
    pub(crate) name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tags: Vec<Tag>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub(crate) extend_param: BTreeMap<String, String>,
}

/// Body of the two restore calls.
#[derive(Debug, Serialize)]
pub(crate) struct Restore {
    pub(crate) restore: RestoreTarget,
}

#[derive(Debug, Serialize)]
pub(crate) struct RestoreTarget {
    pub(crate) volume_id: String,
}

/// Reply of the VBS calls that start a job.
#[derive(Debug, Deserialize)]
pub(crate) struct JobStarted {
    pub(crate) job_id: String,
}

/// Body of the native POST /v2/{project_id}/backups.
#[derive(Debug, Serialize)]
pub(crate) struct CreateNativeBackup {
    pub(crate) backup: NativeBackupSpec,
}

#[derive(Debug, Serialize)]
pub(crate) struct NativeBackupSpec {
    pub(crate) volume_id: String,
    pub(crate) snapshot_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) container: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) incremental: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) force: Option<bool>,
}

/// A backup in summary form (list and native create replies).
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BackupSummary {
    pub(crate) id: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) name: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) links: Vec<Link>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NativeBackupCreated {
    pub(crate) backup: BackupSummary,
}

/// A backup with every detail. Every field but `id` may be missing or null upstream.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct BackupDetail {
    pub(crate) id: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) status: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) description: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) links: Vec<Link>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) availability_zone: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) volume_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) fail_reason: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub(crate) size: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub(crate) object_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) container: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) created_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) updated_at: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) data_timestamp: Option<String>,
    #[serde(
        default,
        rename = "os-bak-tenant-attr:tenant_id",
        deserialize_with = "lenient::opt_text"
    )]
    pub(crate) tenant_id: Option<String>,
    /// JSON text in practice; an object is accepted too.
    #[serde(default)]
    pub(crate) service_metadata: Option<Value>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub(crate) has_dependent_backups: Option<bool>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) snapshot_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_bool")]
    pub(crate) is_incremental: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BackupSummaryPage {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) backups: Vec<BackupSummary>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) backups_links: Vec<Link>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct BackupDetailPage {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) backups: Vec<BackupDetail>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) backups_links: Vec<Link>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct OneBackup {
    pub(crate) backup: BackupDetail,
}

/// Reply of the native restore.
#[derive(Debug, Deserialize)]
pub(crate) struct NativeRestoreStarted {
    pub(crate) restore: NativeRestore,
}

#[derive(Debug, Deserialize)]
pub(crate) struct NativeRestore {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) backup_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) volume_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) volume_name: Option<String>,
}

/// Filters and paging of the two list calls, as query pairs.
#[derive(Debug, Default)]
pub(crate) struct BackupQuery {
    pub(crate) name: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) volume_id: Option<String>,
    pub(crate) limit: Option<i64>,
    pub(crate) offset: Option<i64>,
    pub(crate) marker: Option<String>,
    pub(crate) sort_key: Option<String>,
    pub(crate) sort_dir: Option<String>,
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
pub(crate) fn next_marker(links: &[Link], last_id: Option<&str>) -> Option<String> {
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
pub(crate) struct BackupsApi<'a> {
    pub(crate) transport: &'a Transport,
    pub(crate) ctx: &'a CallContext,
}

impl BackupsApi<'_> {
    fn project(&self) -> &str {
        &self.ctx.project_id
    }

    pub(crate) async fn create_cloud_backup(&self, body: &CreateCloudBackup) -> Result<JobStarted, RestError> {
        let call = Call::new(
            Operation::CreateBackup,
            Method::POST,
            &["v2", self.project(), "cloudbackups"],
        )
        .json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn restore_cloud_backup(&self, backup_id: &str, body: &Restore) -> Result<JobStarted, RestError> {
        let path = ["v2", self.project(), "cloudbackups", backup_id, "restore"];
        let call = Call::new(Operation::RestoreBackup, Method::POST, &path).json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn delete_cloud_backup(&self, backup_id: &str) -> Result<JobStarted, RestError> {
        let path = ["v2", self.project(), "cloudbackups", backup_id];
        let call = Call::new(Operation::DeleteCloudBackup, Method::POST, &path);
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn create_native_backup(
        &self,
        body: &CreateNativeBackup,
    ) -> Result<NativeBackupCreated, RestError> {
        let call = Call::new(
            Operation::CreateNativeBackup,
            Method::POST,
            &["v2", self.project(), "backups"],
        )
        .json_body(body)?;
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn list_backups(&self, query: &BackupQuery) -> Result<BackupSummaryPage, RestError> {
        let call =
            Call::new(Operation::ListBackups, Method::GET, &["v2", self.project(), "backups"]).query(query.pairs());
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn list_backup_details(&self, query: &BackupQuery) -> Result<BackupDetailPage, RestError> {
        let path = ["v2", self.project(), "backups", "detail"];
        let call = Call::new(Operation::ListBackupDetails, Method::GET, &path).query(query.pairs());
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn get_backup(&self, backup_id: &str) -> Result<OneBackup, RestError> {
        let path = ["v2", self.project(), "backups", backup_id];
        let call = Call::new(Operation::GetBackup, Method::GET, &path);
        self.transport.call_json(self.ctx, &call).await
    }

    pub(crate) async fn delete_backup(&self, backup_id: &str) -> Result<(), RestError> {
        let path = ["v2", self.project(), "backups", backup_id];
        let call = Call::new(Operation::DeleteBackup, Method::DELETE, &path);
        self.transport.call_empty(self.ctx, &call).await
    }

    pub(crate) async fn restore_native_backup(
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
