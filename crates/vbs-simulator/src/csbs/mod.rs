//! A fake Cloud Server Backup Service (CSBS) on a listener of its own, as the
//! real service has its own endpoint: servers to back up, backups that move
//! protecting -> available (or error) on the crate's clock, and the crate's
//! AK/SK check, request log and injected HTTP errors.

mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{AuthConfig, ClockMode, JobTiming, RecordedRequest, SimState, SimulatorConfig, lock, reachable};
use state::World;

/// One server (ECS) the simulated CSBS can back up; shared by every project.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerSpec {
    /// The server's UUID: the resource_id a protect names.
    pub id: String,
    /// Its name, shown as extend_info.resource_name.
    pub name: String,
    /// ECS status: ACTIVE and SHUTOFF can be backed up; others answer CSBS.6006.
    pub status: String,
    /// EVS disks attached; 0 answers CSBS.6007. A backup is 1 GB per disk.
    pub volumes: u32,
}

/// Ids of the default servers, fixed so docs and examples can name them.
pub const DEFAULT_SERVER_IDS: [&str; 4] = [
    "9506416d-db6c-406e-8bca-c0f43793d914",
    "9506416d-db6c-406e-8bca-c0f43793d915",
    "9506416d-db6c-406e-8bca-c0f43793d916",
    "9506416d-db6c-406e-8bca-c0f43793d917",
];

/// What the CSBS simulator starts with and how fast its backups move.
#[derive(Clone, Debug)]
pub struct CsbsSimulatorConfig {
    /// The servers every project can back up.
    pub servers: Vec<ServerSpec>,
    /// Wall clock, or simulated time that moves only when told.
    pub clock: ClockMode,
    /// How long a backup stays protecting.
    pub protecting: Duration,
    /// Which credentials it asks for; open (no checks) unless set.
    pub auth: AuthConfig,
}

impl CsbsSimulatorConfig {
    /// Four servers with fixed ids:
    ///
    /// | id (…d91N) | status | disks | name | good for |
    /// |---|---|---|---|---|
    /// | `9506416d-db6c-406e-8bca-c0f43793d914` | ACTIVE | 2 | `web-server` | backups |
    /// | `9506416d-db6c-406e-8bca-c0f43793d915` | SHUTOFF | 1 | `batch-worker` | backups of a stopped server |
    /// | `9506416d-db6c-406e-8bca-c0f43793d916` | ERROR | 1 | `broken-vm` | CSBS.6006 (status not protectable) |
    /// | `9506416d-db6c-406e-8bca-c0f43793d917` | ACTIVE | 0 | `diskless` | CSBS.6007 (no disk) |
    pub fn default_servers() -> Vec<ServerSpec> {
        let server = |index: usize, status: &str, volumes: u32, name: &str| ServerSpec {
            id: DEFAULT_SERVER_IDS[index].to_owned(),
            name: name.to_owned(),
            status: status.to_owned(),
            volumes,
        };
        vec![
            server(0, "ACTIVE", 2, "web-server"),
            server(1, "SHUTOFF", 1, "batch-worker"),
            server(2, "ERROR", 1, "broken-vm"),
            server(3, "ACTIVE", 0, "diskless"),
        ]
    }

    /// For people watching: wall clock, backups take a few seconds.
    pub fn demo() -> Self {
        CsbsSimulatorConfig {
            servers: Self::default_servers(),
            clock: ClockMode::Auto,
            protecting: Duration::from_secs(5),
            auth: AuthConfig::open(),
        }
    }

    /// For tests: nothing moves until the test calls `advance`.
    pub fn for_testing() -> Self {
        CsbsSimulatorConfig {
            servers: Self::default_servers(),
            clock: ClockMode::Manual,
            protecting: Duration::from_secs(3),
            auth: AuthConfig::open(),
        }
    }
}

/// A small table of servers (id, status, disks, name) for start-up output.
pub fn describe_servers(servers: &[ServerSpec]) -> String {
    let header = format!("{:<36}  {:<7}  {:<5}  NAME", "ID", "STATUS", "DISKS");
    let rows = servers
        .iter()
        .map(|s| format!("{:<36}  {:<7}  {:<5}  {}", s.id, s.status, s.volumes, s.name));
    std::iter::once(header).chain(rows).collect::<Vec<_>>().join("\n")
}

/// What the CSBS routes share: the crate's state for the clock, credentials,
/// request log and injected faults, and the CSBS world beside it.
#[derive(Clone)]
pub(crate) struct CsbsState {
    sim: SimState,
    world: Arc<Mutex<World>>,
}

impl CsbsState {
    fn world(&self) -> MutexGuard<'_, World> {
        lock(&self.world)
    }
}

/// A running CSBS simulator. Clones share the same server and world.
#[derive(Clone)]
pub struct CsbsSimulator {
    state: CsbsState,
    shutdown: CancellationToken,
}

impl CsbsSimulator {
    /// Serves CSBS on `listener` until `shutdown`. Prints nothing; see
    /// `describe_servers`.
    pub async fn start(config: CsbsSimulatorConfig, listener: TcpListener) -> std::io::Result<CsbsSimulator> {
        let addr = listener.local_addr()?;
        // The crate's state brings the clock, AK/SK checks and request log;
        // it simulates no VBS volumes here.
        let base = SimulatorConfig {
            volumes: Vec::new(),
            clock: config.clock,
            job_timing: JobTiming {
                init: Duration::ZERO,
                running: Duration::ZERO,
            },
            auth: config.auth,
        };
        let sim = SimState::new(base, addr).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let state = CsbsState {
            sim,
            world: Arc::new(Mutex::new(World::new(config.servers, config.protecting))),
        };
        let shutdown = CancellationToken::new();
        let app = routes::router(state.clone());
        let stop = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                tracing::error!(%error, "CSBS simulator stopped serving");
            }
        });
        Ok(CsbsSimulator { state, shutdown })
    }

    /// `http://127.0.0.1:PORT`: the CSBS endpoint.
    pub fn url(&self) -> String {
        format!("http://{}", reachable(self.local_addr()))
    }

    /// The address the simulator listens on, as bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.state.sim.addr()
    }

    /// The servers it can back up.
    pub fn servers(&self) -> Vec<ServerSpec> {
        self.state.world().servers().to_vec()
    }

    /// Moves simulated time forward (in Auto mode: adds to the wall clock).
    pub fn advance(&self, by: Duration) {
        self.state.sim.advance(by);
    }

    /// The CSBS requests received so far, in order, rejected ones included.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.sim.inner.requests).iter().cloned().collect()
    }

    /// Forgets the requests received so far.
    pub fn clear_requests(&self) {
        lock(&self.state.sim.inner.requests).clear();
    }

    /// The next `count` backups end in error, with extend_info.fail_code
    /// `code` and fail_reason `reason`.
    pub fn fail_next_backups(&self, count: usize, code: &str, reason: &str) {
        self.state.world().fail_next_backups(count, code, reason);
    }

    /// The next `count` CSBS requests answer `status` with an error body.
    pub fn inject_http_errors(&self, status: u16, count: usize) {
        self.state.sim.world().faults.inject_http_errors(status, count);
    }

    /// Stops accepting connections and lets requests in flight finish.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_table_names_every_server() {
        let table = describe_servers(&CsbsSimulatorConfig::default_servers());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("ID"));
        assert!(lines[1].contains("web-server") && lines[1].contains("ACTIVE"));
    }
}
