//! The simulator's state driven directly, without HTTP, for the crate's
//! benchmarks; not a stable API.

use std::time::Duration;

use crate::SimulatorConfig;
use crate::state::World;
use crate::state::backups::CloudBackupInput;

/// One project's world on a clock that moves only when told.
#[derive(Debug)]
pub struct StateBench {
    world: World,
    volume_id: String,
    step: Duration,
}

impl StateBench {
    /// A world with the default volumes and no backups or jobs yet.
    pub fn new() -> Self {
        let config = SimulatorConfig::for_testing();
        let step = config.job_timing.init + config.job_timing.running;
        let volume_id = config.volumes[0].id.clone();
        StateBench {
            world: World::new(config),
            volume_id,
            step,
        }
    }

    /// Creates a backup of the first volume, reads its job, then lets the
    /// job end (as the next request would see it), so the volume is free
    /// again. Each call adds one backup and one job.
    pub fn create_and_get_job(&mut self, project_id: &str) {
        let input = CloudBackupInput {
            volume_id: Some(self.volume_id.clone()),
            name: Some("bench".into()),
            ..Default::default()
        };
        let job_id = self
            .world
            .create_cloud_backup(project_id, input)
            .expect("the volume is free");
        let job = self.world.job(project_id, &job_id).expect("the job exists");
        std::hint::black_box(job);
        self.world.advance(self.step);
        self.world.settle();
    }
}

impl Default for StateBench {
    fn default() -> Self {
        Self::new()
    }
}
