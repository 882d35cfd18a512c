//! Wire models of the VBS backup-sharing and tag APIs. Real clients exchange
//! these bodies with VBS; the gRPC contract does not offer these operations
//! yet (the API reference it follows does not document them), so only decoding lives here.
// Decoded by the fixture tests; nothing reads the fields until the sharing RPCs do.
#![allow(dead_code)]

use serde::Deserialize;

use super::backups::{BackupDetail, Tag};
use super::lenient;

/// One share of a backup with another project.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Share {
    pub(crate) id: String,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) backup_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) to_project_id: Option<String>,
    #[serde(default, deserialize_with = "lenient::opt_text")]
    pub(crate) from_project_id: Option<String>,
    /// The shared backup, in the detail calls.
    #[serde(default)]
    pub(crate) backup: Option<BackupDetail>,
}

/// Reply of creating shares and of listing them: `{"shared": [...]}`.
#[derive(Debug, Deserialize)]
pub(crate) struct ShareList {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) shared: Vec<Share>,
}

/// Reply of reading one share: `{"shared": {...}}`.
#[derive(Debug, Deserialize)]
pub(crate) struct OneShare {
    pub(crate) shared: Share,
}

/// Reply of listing a resource's tags.
#[derive(Debug, Deserialize)]
pub(crate) struct TagList {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) tags: Vec<Tag>,
}

/// Reply of filtering resources by tags.
#[derive(Debug, Deserialize)]
pub(crate) struct TaggedResources {
    #[serde(default, deserialize_with = "lenient::opt_i64")]
    pub(crate) total_count: Option<i64>,
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) resources: Vec<TaggedResource>,
}

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
