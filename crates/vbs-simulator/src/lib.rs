//! The embedded VBS simulator: an axum app that answers like the VBS REST API,
//! with volumes, backups, policies and jobs in memory, a clock tests can step,
//! and hooks to make jobs fail or the service go down. The other backup
//! services (`taurusdb`, `zstack`) are served beside it, each on a listener of its own.

mod apig;
mod auth;
#[doc(hidden)]
pub mod bench_support;
pub mod cli;
mod clock;
pub mod csbs;
mod faults;
mod routes;
mod state;
pub mod taurusdb;
pub mod zstack;

use std::collections::VecDeque;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use auth::{AccessKey, AuthConfig, IamUser};
pub use routes::{router, router_with};

use auth::AuthState;
use state::World;

/// The request log keeps this many of the latest requests, so a simulator
/// that runs for days does not grow without bound.
const REQUEST_LOG_LIMIT: usize = 100_000;

/// What the simulator starts with and how fast its jobs move.
#[derive(Clone, Debug)]
pub struct SimulatorConfig {
    /// The EVS disks every project can back up and restore onto.
    pub volumes: Vec<VolumeSpec>,
    /// Wall clock, or simulated time that moves only when told.
    pub clock: ClockMode,
    /// How long each job stays INIT and RUNNING.
    pub job_timing: JobTiming,
    /// Which credentials the VBS API asks for; open (no checks) unless set.
    pub auth: AuthConfig,
}

/// Where the simulator's "now" comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockMode {
    /// The wall clock (plus whatever `advance` added): jobs finish by themselves.
    Auto,
    /// Simulated time that moves only with `Simulator::advance`, so tests are
    /// deterministic.
    Manual,
}

/// How long a job stays in each of its non-terminal states.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobTiming {
    /// Time from the request until the job is RUNNING.
    pub init: Duration,
    /// Time from RUNNING until SUCCESS or FAIL.
    pub running: Duration,
}

/// One EVS disk the simulator knows. Volumes are shared by every project.
#[derive(Clone, Debug, PartialEq)]
pub struct VolumeSpec {
    /// The volume's UUID, which requests must name exactly.
    pub id: String,
    /// The display name; a native restore answers with it.
    pub name: String,
    /// Size in GB: its backups are this big, and a restore target must be at
    /// least as big as the backup.
    pub size_gb: u64,
    /// EVS status: `available` and `in-use` can be backed up, only `available`
    /// restored onto.
    pub status: String,
}

/// Why a `--volume` style text did not describe a volume.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid volume \"{input}\": {reason} (expected ID:SIZE[:STATUS[:NAME]], e.g. 6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a01:10:available:data)"
)]
pub struct VolumeSpecError {
    input: String,
    reason: String,
}

impl FromStr for VolumeSpec {
    type Err = VolumeSpecError;

    /// Parses `ID:SIZE[:STATUS[:NAME]]`; the name may itself contain colons.
    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let fail = |reason: String| VolumeSpecError {
            input: input.to_owned(),
            reason,
        };
        let mut parts = input.splitn(4, ':');
        let id = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
        vbs_rules::uuid(&id).map_err(|v| fail(format!("ID {}", v.description)))?;
        let size = parts.next().ok_or_else(|| fail("SIZE is missing".into()))?.trim();
        let size_gb = size
            .parse::<u64>()
            .ok()
            .filter(|gb| *gb > 0)
            .ok_or_else(|| fail(format!("SIZE must be a whole number of GB above 0, got \"{size}\"")))?;
        let status = match parts.next().map(str::trim) {
            None | Some("") => "available".to_owned(),
            Some(status) if is_status_word(status) => status.to_owned(),
            Some(status) => {
                return Err(fail(format!(
                    "STATUS must be a word of lower-case letters, '-' and '_' such as available or in-use, got \"{status}\""
                )));
            }
        };
        let name = match parts.next().map(str::trim) {
            None | Some("") => default_volume_name(&id),
            Some(name) => name.to_owned(),
        };
        Ok(VolumeSpec {
            id,
            name,
            size_gb,
            status,
        })
    }
}

fn is_status_word(status: &str) -> bool {
    status.chars().all(|c| c.is_ascii_lowercase() || c == '-' || c == '_')
}

fn default_volume_name(id: &str) -> String {
    format!("volume-{}", &id[..8.min(id.len())])
}

impl fmt::Display for VolumeSpec {
    /// The same `ID:SIZE:STATUS:NAME` form `FromStr` reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}:{}", self.id, self.size_gb, self.status, self.name)
    }
}

/// Ids of the default volumes, fixed so that docs and examples can name them.
pub const DEFAULT_VOLUME_IDS: [&str; 4] = [
    "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a01",
    "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a02",
    "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a03",
    "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a04",
];

impl SimulatorConfig {
    /// Four volumes with fixed ids:
    ///
    /// | id (…0a0N) | size | status | name | good for |
    /// |---|---|---|---|---|
    /// | `6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a01` | 10 GB | available | `web-data` | backups, restores |
    /// | `6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a02` | 20 GB | available | `db-data` | a roomy restore target |
    /// | `6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a03` | 40 GB | in-use | `app-boot` | backups of an attached disk; not a restore target |
    /// | `6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a04` | 5 GB | available | `scratch-small` | a restore target too small for the others |
    pub fn default_volumes() -> Vec<VolumeSpec> {
        let volume = |index: usize, size_gb: u64, status: &str, name: &str| VolumeSpec {
            id: DEFAULT_VOLUME_IDS[index].to_owned(),
            name: name.to_owned(),
            size_gb,
            status: status.to_owned(),
        };
        vec![
            volume(0, 10, "available", "web-data"),
            volume(1, 20, "available", "db-data"),
            volume(2, 40, "in-use", "app-boot"),
            volume(3, 5, "available", "scratch-small"),
        ]
    }

    /// For people watching: wall clock, jobs take a few seconds.
    pub fn demo() -> Self {
        SimulatorConfig {
            volumes: Self::default_volumes(),
            clock: ClockMode::Auto,
            job_timing: JobTiming {
                init: Duration::from_secs(1),
                running: Duration::from_secs(4),
            },
            auth: AuthConfig::open(),
        }
    }

    /// For tests: nothing moves until the test calls `advance`.
    pub fn for_testing() -> Self {
        SimulatorConfig {
            volumes: Self::default_volumes(),
            clock: ClockMode::Manual,
            job_timing: JobTiming {
                init: Duration::from_secs(1),
                running: Duration::from_secs(2),
            },
            auth: AuthConfig::open(),
        }
    }
}

/// A small table of volumes (id, size, status, name) for start-up output.
pub fn describe_volumes(volumes: &[VolumeSpec]) -> String {
    let rows: Vec<[String; 4]> = volumes
        .iter()
        .map(|v| {
            [
                v.id.clone(),
                format!("{} GB", v.size_gb),
                v.status.clone(),
                v.name.clone(),
            ]
        })
        .collect();
    let header = ["ID", "SIZE", "STATUS", "NAME"].map(String::from);
    let mut widths = header.clone().map(|h| h.len());
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    std::iter::once(&header)
        .chain(&rows)
        .map(|row| {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .map(|(cell, width)| format!("{cell:<width$}"))
                .collect();
            cells.join("  ").trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One VBS API (or IAM token) request as the simulator received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The HTTP method, e.g. `POST`.
    pub method: String,
    /// The path as sent, percent-encoding kept.
    pub path: String,
    /// The query string without `?`, if there was one.
    pub query: Option<String>,
    /// Header names in lower case, in arrival order.
    pub headers: Vec<(String, String)>,
    /// `<redacted>` for IAM requests, which carry passwords.
    pub body: String,
}

/// Everything the routes share: the world behind one lock, the request log,
/// the credentials accepted and tokens issued, and the address the simulator
/// answers on (for links when no Host is sent).
#[derive(Clone)]
pub struct SimState {
    inner: Arc<Shared>,
}

struct Shared {
    world: Mutex<World>,
    /// TaurusDB's instances and jobs, served on a listener of their own.
    taurusdb: Mutex<taurusdb::TaurusDbState>,
    /// Where TaurusDB is served, once it is.
    taurusdb_url: std::sync::OnceLock<String>,
    /// ZStack's accounts, sessions, VMs and API jobs, on a listener of their own.
    zstack: Mutex<zstack::ZStackState>,
    /// Where ZStack is served, once it is.
    zstack_url: std::sync::OnceLock<String>,
    /// The most recent requests, at most `REQUEST_LOG_LIMIT`.
    requests: Mutex<VecDeque<RecordedRequest>>,
    auth: AuthState,
    addr: SocketAddr,
}

impl SimState {
    /// A fresh world for `config`, answering on `addr`. Fails when two volumes
    /// share an id.
    pub fn new(config: SimulatorConfig, addr: SocketAddr) -> Result<Self, VolumeSpecError> {
        if let Some(duplicate) = first_duplicate_id(&config.volumes) {
            return Err(VolumeSpecError {
                input: duplicate.to_string(),
                reason: "the same volume ID is given twice".into(),
            });
        }
        let auth = AuthState::new(config.auth.clone());
        Ok(SimState {
            inner: Arc::new(Shared {
                taurusdb: Mutex::new(taurusdb::TaurusDbState::new(
                    taurusdb::default_instances(),
                    config.job_timing,
                )),
                taurusdb_url: std::sync::OnceLock::new(),
                zstack: Mutex::new(zstack::ZStackState::new(
                    zstack::default_vms(),
                    zstack::default_backup_storages(),
                    config.job_timing,
                )),
                zstack_url: std::sync::OnceLock::new(),
                world: Mutex::new(World::new(config)),
                requests: Mutex::new(VecDeque::new()),
                auth,
                addr,
            }),
        })
    }

    /// The world with every job transition that is due applied, so whoever
    /// looks sees the state as of now.
    fn world(&self) -> MutexGuard<'_, World> {
        let mut world = lock(&self.inner.world);
        world.settle();
        world
    }

    fn record(&self, request: RecordedRequest) {
        let mut requests = lock(&self.inner.requests);
        if requests.len() == REQUEST_LOG_LIMIT {
            requests.pop_front();
        }
        requests.push_back(request);
    }

    fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// ZStack's state; its sessions and jobs read the time off `now()`.
    fn zstack(&self) -> MutexGuard<'_, zstack::ZStackState> {
        lock(&self.inner.zstack)
    }

    /// TaurusDB's state; its jobs read their status off `now()`.
    fn taurusdb(&self) -> MutexGuard<'_, taurusdb::TaurusDbState> {
        lock(&self.inner.taurusdb)
    }

    fn auth(&self) -> &AuthState {
        &self.inner.auth
    }

    /// The simulated clock, without settling jobs (token expiry needs no more).
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        lock(&self.inner.world).now()
    }

    /// Moves the clock and applies what became due; returns the new now.
    fn advance(&self, by: Duration) -> chrono::DateTime<chrono::Utc> {
        let mut world = lock(&self.inner.world);
        world.advance(by);
        world.settle();
        world.now()
    }
}

fn first_duplicate_id(volumes: &[VolumeSpec]) -> Option<&VolumeSpec> {
    volumes
        .iter()
        .enumerate()
        .find(|(i, v)| volumes[..*i].iter().any(|earlier| earlier.id == v.id))
        .map(|(_, v)| v)
}

/// A poisoned lock only means a handler panicked mid-request; the data is
/// still the simulator's best knowledge, so keep serving it.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A running simulator. Clones share the same server and world.
#[derive(Clone)]
pub struct Simulator {
    state: SimState,
    shutdown: CancellationToken,
}

impl Simulator {
    /// Serves the simulator on `listener` (bind port 0 in tests) until
    /// `shutdown`. Prints nothing; see `describe_volumes`.
    pub async fn start(config: SimulatorConfig, listener: TcpListener) -> std::io::Result<Simulator> {
        let addr = listener.local_addr()?;
        let state =
            SimState::new(config, addr).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let shutdown = CancellationToken::new();
        let app = router(state.clone());
        let stop = shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                tracing::error!(%error, "simulator stopped serving");
            }
        });
        Ok(Simulator { state, shutdown })
    }

    /// `http://127.0.0.1:PORT` (a wildcard bind address is shown as loopback).
    pub fn url(&self) -> String {
        format!("http://{}", reachable(self.local_addr()))
    }

    /// The address the simulator listens on, as bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.state.addr()
    }

    /// The volumes as they are now (restores change their status).
    pub fn volumes(&self) -> Vec<VolumeSpec> {
        self.state.world().volumes().to_vec()
    }

    /// Moves simulated time forward and applies every job transition due. In
    /// Auto mode this adds to the offset from the wall clock.
    pub fn advance(&self, by: Duration) {
        self.state.advance(by);
    }

    /// The VBS API and IAM token requests received so far, in order (admin
    /// routes excluded), rejected ones included; the latest 100,000.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.state.inner.requests).iter().cloned().collect()
    }

    /// Forgets the requests received so far, so a test can look at what comes next.
    pub fn clear_requests(&self) {
        lock(&self.state.inner.requests).clear();
    }

    /// Makes a job end in FAIL instead of SUCCESS. False when the job is
    /// unknown or already over.
    pub fn fail_job(&self, job_id: &str, error_code: &str, fail_reason: &str) -> bool {
        self.state.world().fail_job(job_id, error_code, fail_reason)
    }

    /// The next `count` jobs created (by any API, in any project) will FAIL.
    pub fn fail_next_jobs(&self, count: usize, error_code: &str, fail_reason: &str) {
        self.state.world().faults.fail_next_jobs(count, error_code, fail_reason);
    }

    /// The next `count` VBS API requests answer `status` with an error body
    /// instead of being served (a status that is not valid HTTP becomes 500).
    pub fn inject_http_errors(&self, status: u16, count: usize) {
        self.state.world().faults.inject_http_errors(status, count);
    }

    /// The next `count` VBS API requests are answered only after `by` (real
    /// time), as by a slow VBS; a write takes effect when its answer is sent.
    pub fn delay_next_requests(&self, count: usize, by: Duration) {
        self.state.world().faults.delay_next_requests(count, by);
    }

    /// The next `count` VBS API requests are held until all `count` have
    /// arrived, then served: a test sees that a client sends them at once. A
    /// client that sends them one after another waits for ever, so give its
    /// call a deadline.
    pub fn gather_next_requests(&self, count: usize) {
        self.state.world().faults.gather_next_requests(count);
    }

    /// How many tokens the IAM endpoint has issued so far, revoked and expired
    /// ones included.
    pub fn issued_token_count(&self) -> usize {
        self.state.auth().issued_count()
    }

    /// Forgets every issued token, so the next VBS request with one answers
    /// 401 (APIGW.0307), as after a revocation upstream. Static tokens stay.
    pub fn revoke_tokens(&self) {
        self.state.auth().revoke_all();
    }

    /// Serves the simulated TaurusDB on `listener`, beside the VBS API and
    /// sharing its clock, credentials, faults and request log, until
    /// `shutdown`; returns its base URL.
    pub fn serve_taurusdb(&self, listener: TcpListener) -> std::io::Result<String> {
        let url = self.serve_beside(listener, taurusdb::router(self.state.clone()), "TaurusDB")?;
        let _ = self.state.inner.taurusdb_url.set(url.clone());
        Ok(url)
    }

    /// The simulated TaurusDB's base URL, once `serve_taurusdb` serves it.
    pub fn taurusdb_url(&self) -> Option<String> {
        self.state.inner.taurusdb_url.get().cloned()
    }

    /// The TaurusDB instances every project can back up.
    pub fn taurusdb_instances(&self) -> Vec<taurusdb::TaurusDbInstance> {
        self.state.taurusdb().instances().to_vec()
    }

    /// The next `count` TaurusDB backup jobs end Failed with `reason`.
    pub fn fail_next_taurusdb_jobs(&self, count: usize, reason: &str) {
        self.state.taurusdb().fail_next_jobs(count, reason);
    }

    /// Serves the simulated ZStack on `listener`, beside the VBS API and
    /// sharing its clock, faults and request log, until `shutdown`; returns
    /// its base URL. It accepts the accounts `add_zstack_account` adds.
    pub fn serve_zstack(&self, listener: TcpListener) -> std::io::Result<String> {
        let url = self.serve_beside(listener, zstack::router(self.state.clone()), "ZStack")?;
        let _ = self.state.inner.zstack_url.set(url.clone());
        Ok(url)
    }

    /// The simulated ZStack's base URL, once `serve_zstack` serves it.
    pub fn zstack_url(&self) -> Option<String> {
        self.state.inner.zstack_url.get().cloned()
    }

    /// Lets account `name` log in to the simulated ZStack with `password`.
    pub fn add_zstack_account(&self, name: &str, password: &apig_signer::Secret) {
        self.state.zstack().add_account(name, password.expose());
    }

    /// The VMs whose root volumes can be backed up, and the backup storages.
    pub fn zstack_inventory(&self) -> (Vec<zstack::ZStackVm>, Vec<zstack::ZStackBackupStorage>) {
        let zstack = self.state.zstack();
        (zstack.vms().to_vec(), zstack.storages().to_vec())
    }

    /// How many sessions ZStack logins have opened so far.
    pub fn zstack_login_count(&self) -> usize {
        self.state.zstack().logins()
    }

    /// The next `count` VM backups end with ZStack error `code` and `details`.
    pub fn fail_next_zstack_backups(&self, count: usize, code: &str, details: &str) {
        self.state.zstack().fail_next_backups(count, code, details);
    }

    /// Serves another service's `app` on `listener` until shutdown.
    fn serve_beside(&self, listener: TcpListener, app: axum::Router, service: &'static str) -> std::io::Result<String> {
        let url = format!("http://{}", reachable(listener.local_addr()?));
        let stop = self.shutdown.clone().cancelled_owned();
        tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).with_graceful_shutdown(stop).await {
                tracing::error!(%error, service, "simulator stopped serving");
            }
        });
        Ok(url)
    }

    /// Stops accepting connections and lets requests in flight finish.
    pub fn shutdown(&self) {
        self.shutdown.cancel();
    }
}

fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
    } else {
        addr
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_spec_parses_with_defaults() {
        let spec: VolumeSpec = "6F1A8C52-0b3e-4d5a-9c7e-2f4b8d1e0a09:15".parse().expect("valid");
        assert_eq!(spec.id, "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a09");
        assert_eq!(spec.size_gb, 15);
        assert_eq!(spec.status, "available");
        assert_eq!(spec.name, "volume-6f1a8c52");
    }

    #[test]
    fn volume_spec_keeps_status_and_name() {
        let spec: VolumeSpec = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a09:15:in-use:db:primary"
            .parse()
            .expect("valid");
        assert_eq!(spec.status, "in-use");
        assert_eq!(spec.name, "db:primary");
        assert_eq!(spec.to_string().parse::<VolumeSpec>(), Ok(spec));
    }

    #[test]
    fn volume_spec_errors_say_what_is_wrong() {
        let error = |text: &str| text.parse::<VolumeSpec>().expect_err("invalid").to_string();
        assert!(error("disk-1:10").contains("must be a UUID"));
        assert!(error("6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a09").contains("SIZE is missing"));
        assert!(error("6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a09:0").contains("above 0"));
        assert!(error("6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a09:ten").contains("\"ten\""));
        assert!(error("6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a09:1:In Use").contains("STATUS"));
    }

    #[test]
    fn duplicate_volume_ids_are_refused() {
        let mut config = SimulatorConfig::for_testing();
        config.volumes.push(config.volumes[0].clone());
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        assert!(SimState::new(config, addr).is_err());
    }

    #[test]
    fn volume_table_lines_up() {
        let table = describe_volumes(&SimulatorConfig::default_volumes());
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 5);
        assert!(lines[0].starts_with("ID"));
        assert!(lines[1].contains("10 GB") && lines[1].contains("web-data"));
        let status_column = lines[0].find("STATUS").expect("header");
        assert_eq!(lines[3].find("in-use"), Some(status_column));
    }
}
