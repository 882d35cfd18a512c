//! Wire models of the VBS backup-sharing and tag APIs. Real clients exchange
//! these bodies with VBS; the gRPC contract does not offer these operations
//! yet (the API reference it follows does not document them), so only decoding lives here.

use serde::Deserialize;

use super::backups::{BackupDetail, Tag};
use super::lenient;

/// One share of a backup with another project.
#[derive(Debug, Clone, Deserialize)]
pub struct Share {
    pub id: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub backup_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub to_project_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub from_project_id: Option<String>,
    /// The shared backup, in the detail calls.
    #[serde(default)]
    pub backup: Option<BackupDetail>,
}

/// Reply of creating shares and of listing them: `{"shared": [...]}`.
#[derive(Debug, Deserialize)]
pub struct ShareList {
    #[serde(default, deserialize_with = "lenient::list")]
    pub shared: Vec<Share>,
}

/// Reply of reading one share: `{"shared": {...}}`.
#[derive(Debug, Deserialize)]
pub struct OneShare {
    pub shared: Share,
}

/// Reply of listing a resource's tags.
#[derive(Debug, Deserialize)]
pub struct TagList {
    #[serde(default, deserialize_with = "lenient::list")]
    pub tags: Vec<Tag>,
}

/// Reply of filtering resources by tags.
#[derive(Debug, Deserialize)]
pub struct TaggedResources {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub total_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub resources: Vec<TaggedResource>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct TaggedResource {
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub resource_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub resource_name: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub resource_detail: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub tags: Vec<Tag>,
}
