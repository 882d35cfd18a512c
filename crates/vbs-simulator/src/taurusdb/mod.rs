//! A fake TaurusDB (GaussDB for MySQL) for manual backups: a few instances,
//! POST /v3/{project_id}/backups/create answered as the reference document
//! (002) shows, and the job query GET /v3/{project_id}/jobs?id= with jobs that
//! move Running -> Completed (or Failed, when told) on the simulator's clock.

mod routes;
mod state;

pub use routes::{INSTANCE_NOT_FOUND, INVALID_PARAMETER, JOB_NOT_FOUND, router};
pub(crate) use state::TaurusDbState;

/// One TaurusDB instance the simulator knows; every project can back it up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TaurusDbInstance {
    /// 36 letters and digits ending in `in07`, as the document's ids.
    pub id: String,
    /// The instance's name, shown in its jobs.
    pub name: String,
}

/// Ids of the simulated instances, fixed so docs and tests can name them.
pub const TAURUSDB_INSTANCE_IDS: [&str; 3] = [
    "07033b125fd94a8a96896f8bcfee6ddain07",
    "5a3c1e2f9b8d4c7e8f6a5b4c3d2e1f0ain07",
    "9e8d7c6b5a4f4e3d2c1b0a9f8e7d6c5bin07",
];

/// The instances every simulator starts with: orders, inventory and analytics.
pub fn default_instances() -> Vec<TaurusDbInstance> {
    ["orders", "inventory", "analytics"]
        .iter()
        .zip(TAURUSDB_INSTANCE_IDS)
        .map(|(name, id)| TaurusDbInstance {
            id: id.to_owned(),
            name: (*name).to_owned(),
        })
        .collect()
}

/// The instances as a small table for start-up output.
pub fn describe_instances(instances: &[TaurusDbInstance]) -> String {
    let mut lines = vec![format!("{:<36}  NAME", "INSTANCE ID")];
    lines.extend(instances.iter().map(|i| format!("{:<36}  {}", i.id, i.name)));
    lines.join("\n")
}
