//! One fleet per test, as in production: `redis-server`, a standalone VBS
//! simulator, N gateway replicas (real processes of this crate's binary) and
//! `nginx` balancing gRPC over them, all on free loopback ports in a temp dir
//! of their own, all killed when the fleet is dropped. Waits are bounded
//! polls of a condition, never fixed sleeps.

#![allow(dead_code)] // Each test uses part of the harness.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use vbs_gateway::proto::pb::{
    backup_policy_service_client::BackupPolicyServiceClient, backup_service_client::BackupServiceClient,
    job_service_client::JobServiceClient,
};

/// The AK/SK the simulator accepts and the replicas sign with.
pub(crate) const ACCESS_KEY: &str = "VBSGWTESTAKID0000001";
pub(crate) const SECRET_KEY: &str = "vbsGwTestSecretKey0000000000000000000001";
/// The replicas' default project.
pub(crate) const PROJECT_ID: &str = "5f0e1d2c3b4a49586776a5b4c3d2e1f0";
/// The simulator's demo disks (SimulatorConfig::default_volumes).
pub(crate) const DISK_10GB: &str = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a01";
pub(crate) const DISK_20GB: &str = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a02";

/// The nginx configuration the README quotes; `${LISTEN}` and `${REPLICAS}` are filled in.
pub(crate) const NGINX_TEMPLATE: &str = include_str!("../../deploy/nginx-grpc.conf");

/// The ZStack password of `FleetBuilder::every_service`.
const ZSTACK_PASSWORD: &str = "fleet-zstack-password";
/// The simulator's flags of `FleetBuilder::every_service`.
const EVERY_SERVICE: [&str; 8] = [
    "--taurusdb-listen",
    "127.0.0.1:0",
    "--zstack-listen",
    "127.0.0.1:0",
    "--zstack-password",
    ZSTACK_PASSWORD,
    "--csbs-listen",
    "127.0.0.1:0",
];

/// How long a process may take to come up, or a condition to hold.
pub(crate) const STARTUP: Duration = Duration::from_secs(30);

/// How a fleet is made: `Fleet::builder().replicas(3).replica_args([...]).start()`.
#[derive(Debug, Clone)]
pub(crate) struct FleetBuilder {
    replicas: usize,
    replica_args: Vec<String>,
    simulator_args: Vec<String>,
    shared: bool,
    every_service: bool,
}

impl FleetBuilder {
    /// Replicas without --redis-url, each with its state in memory (Redis
    /// still runs): the baseline a measurement compares with.
    pub(crate) fn without_redis(mut self) -> Self {
        self.shared = false;
        self
    }

    /// How many gateway replicas (default 3).
    pub(crate) fn replicas(mut self, count: usize) -> Self {
        self.replicas = count;
        self
    }

    /// Extra flags for every replica (e.g. `--upstream-rate 5`).
    pub(crate) fn replica_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.replica_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Extra flags for the simulator (e.g. `--sim-job-run 2s`).
    pub(crate) fn simulator_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.simulator_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// The simulator serves TaurusDB, ZStack and CSBS beside VBS, and every
    /// replica is pointed at them.
    pub(crate) fn every_service(mut self) -> Self {
        self.every_service = true;
        self
    }

    /// Starts everything and waits until nginx serves; None (after a loud
    /// SKIPPED line) when redis-server or nginx is not installed, outside CI.
    pub(crate) async fn start(self) -> Option<Fleet> {
        let (redis_server, nginx) = required_programs()?;
        let dir = TempDir::new();
        let redis = Redis::start(&redis_server, dir.path(), free_port());
        let mut simulator_args = self.simulator_args.clone();
        let mut replica_args = self.replica_args.clone();
        if self.every_service {
            simulator_args.extend(EVERY_SERVICE.iter().map(|arg| arg.to_string()));
        }
        let simulator = Sim::start(dir.path(), &simulator_args);
        if self.every_service {
            for (flag, service) in [
                ("--taurusdb-endpoint", "TaurusDB"),
                ("--zstack-endpoint", "ZStack"),
                ("--csbs-endpoint", "CSBS"),
            ] {
                replica_args.extend([flag.to_string(), simulator.url_of(service)]);
            }
            replica_args.extend(["--zstack-account", "admin", "--zstack-password", ZSTACK_PASSWORD].map(String::from));
        }
        let mut replicas = Vec::new();
        for index in 0..self.replicas {
            let replica = Replica {
                index,
                grpc: SocketAddr::from(([127, 0, 0, 1], free_port())),
                metrics: SocketAddr::from(([127, 0, 0, 1], free_port())),
                args: replica_args.clone(),
                log: dir.path().join(format!("replica-{index}.log")),
                child: None,
            };
            replicas.push(replica);
        }
        let redis_url = self.shared.then(|| redis.url());
        for replica in &mut replicas {
            replica.spawn(&simulator.url, redis_url.as_deref());
        }
        for replica in &mut replicas {
            replica.wait_serving().await;
        }
        let nginx = Nginx::start(&nginx, dir.path(), &replicas);
        let fleet = Fleet {
            redis,
            simulator,
            replicas,
            nginx,
            dir,
            shared: self.shared,
        };
        fleet.wait_nginx_serving().await;
        Some(fleet)
    }
}

/// Everything a test runs against; dropping it kills every process.
pub(crate) struct Fleet {
    // Fields drop in this order: the front first, the files last.
    nginx: Nginx,
    replicas: Vec<Replica>,
    /// The standalone simulator and its admin API.
    pub(crate) simulator: Sim,
    /// The shared Redis.
    pub(crate) redis: Redis,
    /// Whether the replicas were given --redis-url.
    shared: bool,
    dir: TempDir,
}

impl Fleet {
    /// Three replicas with default flags.
    pub(crate) fn builder() -> FleetBuilder {
        FleetBuilder {
            replicas: 3,
            replica_args: Vec::new(),
            simulator_args: Vec::new(),
            shared: true,
            every_service: false,
        }
    }

    /// `Fleet::builder().replicas(count).start()`.
    pub(crate) async fn start(count: usize) -> Option<Fleet> {
        Fleet::builder().replicas(count).start().await
    }

    /// nginx's gRPC address (plaintext HTTP/2).
    pub(crate) fn nginx_address(&self) -> SocketAddr {
        self.nginx.address
    }

    /// A new connection through nginx (round robin per call over the replicas).
    pub(crate) async fn channel(&self) -> Channel {
        connect(self.nginx.address).await
    }

    /// A new connection straight to replica `index`.
    pub(crate) async fn replica_channel(&self, index: usize) -> Channel {
        connect(self.replicas[index].grpc).await
    }

    /// BackupService through nginx.
    pub(crate) async fn backups(&self) -> BackupServiceClient<Channel> {
        BackupServiceClient::new(self.channel().await)
    }

    /// BackupPolicyService through nginx.
    pub(crate) async fn policies(&self) -> BackupPolicyServiceClient<Channel> {
        BackupPolicyServiceClient::new(self.channel().await)
    }

    /// JobService through nginx.
    pub(crate) async fn jobs(&self) -> JobServiceClient<Channel> {
        JobServiceClient::new(self.channel().await)
    }

    /// How many replicas the fleet has (running or not).
    pub(crate) fn replica_count(&self) -> usize {
        self.replicas.len()
    }

    /// Replica `index`'s gRPC address.
    pub(crate) fn replica_address(&self, index: usize) -> SocketAddr {
        self.replicas[index].grpc
    }

    /// Kills replica `index` at once (SIGKILL: it dies, nothing is drained).
    pub(crate) fn kill_replica(&mut self, index: usize) {
        self.replicas[index].kill();
    }

    /// Stops replica `index` as an operator would (SIGTERM, then it drains),
    /// and waits for it to exit.
    pub(crate) async fn stop_replica(&mut self, index: usize) {
        self.replicas[index].terminate().await;
    }

    /// Starts replica `index` again on its ports and waits until it serves.
    pub(crate) async fn restart_replica(&mut self, index: usize) {
        let url = self.simulator.url.clone();
        let redis_url = self.shared.then(|| self.redis.url());
        let replica = &mut self.replicas[index];
        replica.kill();
        replica.spawn(&url, redis_url.as_deref());
        replica.wait_serving().await;
    }

    /// Everything replica `index` logged so far (all its runs).
    pub(crate) fn replica_log(&self, index: usize) -> String {
        std::fs::read_to_string(&self.replicas[index].log).unwrap_or_default()
    }

    /// The Prometheus text of replica `index`.
    pub(crate) fn metrics_text(&self, index: usize) -> String {
        let (status, body) = http(self.replicas[index].metrics, "GET", "/metrics");
        assert_eq!(status, 200, "GET /metrics of replica {index}: {body}");
        body
    }

    /// The sum of the series `name` of replica `index` whose labels include
    /// every pair of `labels` (0 when there is none).
    pub(crate) fn metric(&self, index: usize, name: &str, labels: &[(&str, &str)]) -> f64 {
        metric_sum(&self.metrics_text(index), name, labels)
    }

    /// `metric` summed over every running replica.
    pub(crate) fn metric_total(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        (0..self.replicas.len())
            .filter(|&i| self.replicas[i].child.is_some())
            .map(|i| self.metric(i, name, labels))
            .sum()
    }

    /// Waits (bounded) until nginx answers health checks as SERVING.
    pub(crate) async fn wait_nginx_serving(&self) {
        let address = self.nginx.address;
        eventually(STARTUP, "nginx serves gRPC", || async move { serving(address).await }).await;
    }
}

/// A `redis-server` on a fixed port, so it can be stopped and started again
/// at the same address.
pub(crate) struct Redis {
    program: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
    /// The temp dir of a Redis started alone.
    own_dir: Option<TempDir>,
}

impl Redis {
    fn start(program: &Path, dir: &Path, port: u16) -> Redis {
        let mut redis = Redis {
            program: program.to_path_buf(),
            dir: dir.to_path_buf(),
            port,
            child: None,
            own_dir: None,
        };
        redis.spawn();
        redis
    }

    /// Redis alone, for tests of what the gateway stores in it; None (after a
    /// loud SKIPPED line) as `FleetBuilder::start`.
    pub(crate) fn start_alone() -> Option<Redis> {
        let (program, _) = required_programs()?;
        let dir = TempDir::new();
        let mut redis = Redis::start(&program, dir.path(), free_port());
        redis.own_dir = Some(dir);
        Some(redis)
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub(crate) fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills Redis (its data goes with it: nothing is saved).
    pub(crate) fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts Redis again on the same port and waits until it answers.
    pub(crate) fn start_again(&mut self) {
        self.stop();
        self.spawn();
    }

    fn spawn(&mut self) {
        let log = open_log(&self.dir.join("redis.log"));
        let child = Command::new(&self.program)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let address = SocketAddr::from(([127, 0, 0, 1], self.port));
        wait_blocking(STARTUP, "redis-server answers PING", || redis_pings(address));
    }

    /// A connection of our own, for tests that look at keys or run scripts.
    pub(crate) async fn connection(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url())
            .expect("Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis")
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The standalone simulator (`vbs-gateway simulator`) and its admin API.
pub(crate) struct Sim {
    /// `http://127.0.0.1:PORT`, as it printed.
    pub(crate) url: String,
    address: SocketAddr,
    log_path: PathBuf,
    child: Child,
}

/// One request the simulator received.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct SimRequest {
    /// e.g. `POST`.
    pub(crate) method: String,
    /// The path as sent.
    pub(crate) path: String,
    /// The query string, if any.
    pub(crate) query: Option<String>,
}

impl Sim {
    fn start(dir: &Path, extra: &[String]) -> Sim {
        let log_path = dir.join("simulator.log");
        let log = open_log(&log_path);
        let child = gateway_command()
            .args(["simulator", "--listen", "127.0.0.1:0"])
            .args(extra)
            .env("VBS_ACCESS_KEY", ACCESS_KEY)
            .env("VBS_SECRET_KEY", SECRET_KEY)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start the simulator");
        let mut sim = Sim {
            url: String::new(),
            address: SocketAddr::from(([127, 0, 0, 1], 0)),
            log_path,
            child,
        };
        sim.url = sim.url_of("VBS");
        sim.address = sim
            .url
            .trim_start_matches("http://")
            .parse()
            .expect("simulator address");
        sim
    }

    /// The base URL the simulator printed for `service` (VBS, TaurusDB,
    /// ZStack or CSBS), once it has.
    pub(crate) fn url_of(&self, service: &str) -> String {
        let line = format!("{service} simulator serving the ");
        wait_blocking(STARTUP, &format!("the simulator prints the {service} address"), || {
            let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
            let rest = &text[text.find(&line)?..];
            let start = rest.find(" at http://")? + " at ".len();
            let url = rest[start..].split_whitespace().next()?;
            Some(url.to_string())
        })
    }

    /// The VBS requests received so far (IAM token requests left out).
    pub(crate) fn requests(&self) -> Vec<SimRequest> {
        #[derive(serde::Deserialize)]
        struct Log {
            requests: Vec<SimRequest>,
        }
        let (status, body) = http(self.address, "GET", "/simulator/requests");
        assert_eq!(status, 200, "{body}");
        let log: Log = serde_json::from_str(&body).expect("request log JSON");
        log.requests
            .into_iter()
            .filter(|r| !r.path.starts_with("/v3"))
            .collect()
    }

    /// How many requests with `method` whose path ends with `suffix` it received.
    pub(crate) fn count(&self, method: &str, suffix: &str) -> usize {
        self.requests()
            .iter()
            .filter(|r| r.method == method && r.path.ends_with(suffix))
            .count()
    }

    /// Forgets the requests received so far.
    pub(crate) fn clear_requests(&self) {
        self.admin("DELETE", "/simulator/requests");
    }

    /// The next `count` API requests are answered only after `by`.
    pub(crate) fn delay_next_requests(&self, count: usize, by: Duration) {
        let path = format!("/simulator/faults/delay?count={count}&seconds={}", by.as_secs_f64());
        self.admin("POST", &path);
    }

    /// The next `count` API requests answer `status`.
    pub(crate) fn inject_http_errors(&self, status: u16, count: usize) {
        self.admin(
            "POST",
            &format!("/simulator/faults/errors?count={count}&status={status}"),
        );
    }

    /// Moves the simulated clock on.
    pub(crate) fn advance(&self, by: Duration) {
        self.admin(
            "POST",
            &format!("/simulator/clock/advance?seconds={}", by.as_secs_f64()),
        );
    }

    /// Makes job `job_id` end in FAIL.
    pub(crate) fn fail_job(&self, job_id: &str) {
        self.admin("POST", &format!("/simulator/jobs/{job_id}/fail"));
    }

    fn admin(&self, method: &str, path: &str) {
        let (status, body) = http(self.address, method, path);
        assert!((200..300).contains(&status), "{method} {path}: {status} {body}");
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Replica {
    index: usize,
    grpc: SocketAddr,
    metrics: SocketAddr,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Replica {
    fn spawn(&mut self, simulator_url: &str, redis_url: Option<&str>) {
        let log = open_log(&self.log);
        let mut command = gateway_command();
        if let Some(url) = redis_url {
            command.args(["--redis-url", url]);
        }
        let child = command
            .args(["--listen", &self.grpc.to_string()])
            .args(["--metrics-listen", &self.metrics.to_string()])
            .args(["--endpoint", simulator_url])
            .args(["--project-id", PROJECT_ID])
            .args(["--worker-threads", "2"])
            .args(&self.args)
            .env("VBS_ACCESS_KEY", ACCESS_KEY)
            .env("VBS_SECRET_KEY", SECRET_KEY)
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start a replica");
        self.child = Some(child);
    }

    async fn wait_serving(&mut self) {
        let address = self.grpc;
        let deadline = Instant::now() + STARTUP;
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                let log = std::fs::read_to_string(&self.log).unwrap_or_default();
                panic!("replica {} exited ({status}) while starting:\n{log}", self.index);
            }
            if serving(address).await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "replica {} did not serve within {STARTUP:?}",
                self.index
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    async fn terminate(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
        let deadline = Instant::now() + STARTUP;
        while child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("replica {} did not exit within {STARTUP:?} of SIGTERM", self.index);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// nginx in the foreground, one process, every path in the fleet's dir.
struct Nginx {
    address: SocketAddr,
    child: Child,
}

impl Nginx {
    fn start(program: &Path, dir: &Path, replicas: &[Replica]) -> Nginx {
        let address = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let servers: Vec<String> = replicas.iter().map(|r| format!("server {};", r.grpc)).collect();
        let site = NGINX_TEMPLATE
            .replace("${LISTEN}", &address.to_string())
            .replace("${REPLICAS}", &servers.join("\n    "));
        std::fs::write(dir.join("replicas.conf"), site).expect("write nginx site");
        std::fs::write(dir.join("nginx.conf"), nginx_main(dir)).expect("write nginx.conf");
        let log = open_log(&dir.join("nginx.out"));
        let mut child = Command::new(program)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(log.try_clone().expect("log file"))
            .stderr(log)
            .spawn()
            .expect("start nginx");
        let started = Instant::now();
        while TcpStream::connect(address).is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                let errors = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
                panic!("nginx exited ({status}):\n{errors}");
            }
            assert!(started.elapsed() < STARTUP, "nginx did not listen within {STARTUP:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx { address, child }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The main context around the template: foreground, one process (so a kill
/// ends it all, and it runs unprivileged), logs, pid and temp files in `dir`.
fn nginx_main(dir: &Path) -> String {
    let dir = dir.display();
    format!(
        "daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log notice;
events {{ worker_connections 4096; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/replicas.conf;
}}
"
    )
}

/// A test-only temp dir, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "vbs-replicas-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create the fleet's temp dir");
        TempDir(path)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if std::env::var_os("VBS_KEEP_TEST_DIRS").is_none() {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The gateway binary, with no VBS_* settings inherited from the environment.
fn gateway_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vbs-gateway"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("VBS_") {
            command.env_remove(name);
        }
    }
    // Plain text logs, for tests that read them.
    command
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null());
    command
}

/// redis-server and nginx, found on PATH (nginx also in /usr/sbin, where
/// Debian puts it). Missing: a panic in CI, else a loud SKIPPED and None.
fn required_programs() -> Option<(PathBuf, PathBuf)> {
    let redis = find_program("redis-server");
    let nginx = find_program("nginx");
    let missing: Vec<&str> = [("redis-server", &redis), ("nginx", &nginx)]
        .iter()
        .filter(|(_, found)| found.is_none())
        .map(|(name, _)| *name)
        .collect();
    if missing.is_empty() {
        return Some((redis?, nginx?));
    }
    let message = format!(
        "the replicas suite needs {} (install: apt-get install redis-server nginx)",
        missing.join(" and ")
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}; CI must run it");
    }
    // Straight to stderr: the test runner's capture would hide an eprintln!.
    let line = format!("\n********** SKIPPED: {message} **********\n");
    let _ = std::io::stderr().write_all(line.as_bytes());
    None
}

fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// A loopback port nobody listens on now.
pub(crate) fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

fn open_log(path: &Path) -> std::fs::File {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("open a log file")
}

async fn connect(address: SocketAddr) -> Channel {
    Channel::from_shared(format!("http://{address}"))
        .expect("gRPC URL")
        .connect()
        .await
        .unwrap_or_else(|e| panic!("connect to {address}: {e}"))
}

/// Whether the gRPC server at `address` answers health checks as SERVING.
async fn serving(address: SocketAddr) -> bool {
    let Ok(endpoint) = Channel::from_shared(format!("http://{address}")) else {
        return false;
    };
    let Ok(channel) = endpoint.connect_timeout(Duration::from_secs(1)).connect().await else {
        return false;
    };
    let mut health = HealthClient::new(channel);
    let mut request = tonic::Request::new(HealthCheckRequest { service: String::new() });
    request.set_timeout(Duration::from_secs(1));
    matches!(
        health.check(request).await,
        Ok(reply) if reply.get_ref().status() == ServingStatus::Serving
    )
}

fn redis_pings(address: SocketAddr) -> Option<()> {
    let mut stream = TcpStream::connect(address).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    stream.write_all(b"PING\r\n").ok()?;
    let mut reply = [0u8; 7];
    stream.read_exact(&mut reply).ok()?;
    (&reply == b"+PONG\r\n").then_some(())
}

/// One HTTP/1.1 request with no body; the status and the body.
fn http(address: SocketAddr, method: &str, path: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap_or_else(|e| panic!("connect to {address}: {e}"));
    stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let request =
        format!("{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send HTTP request");
    let mut response = Vec::new();
    stream.read_to_end(&mut response).expect("read HTTP response");
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let status = head.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        unchunk(body)
    } else {
        body.to_string()
    };
    (status, body)
}

fn unchunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// The sum of the series `name` in Prometheus `text` whose labels include `labels`.
pub(crate) fn metric_sum(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, series_labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let matches = series_name == name
                && labels
                    .iter()
                    .all(|(k, v)| series_labels.contains(&format!("{k}=\"{v}\"")));
            matches.then(|| value.parse::<f64>().ok()).flatten()
        })
        .sum()
}

/// Polls `check` until it holds, for at most `within`; panics naming `what`.
pub(crate) async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn wait_blocking<T>(within: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}
