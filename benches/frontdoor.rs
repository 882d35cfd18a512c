//! What the front door costs per unary RPC, side by side in one run: ListBackups through the
//! in-process gateway over plaintext and TLS, each without and with a callers file (bearer key,
//! permission check), sequential and 32 at once. Measures; asserts nothing. `cargo bench --bench frontdoor`.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::runtime::Runtime;
use tonic::Request;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use vbs_gateway::app::App;
use vbs_gateway::config::{Config, TlsFiles, key_sha256_line};
use vbs_gateway::proto::pb::{self, backup_service_client::BackupServiceClient};
use vbs_gateway::rest::credentials::{AccessKey, Credentials, Secret, Signing};
use vbs_simulator::{Simulator, SimulatorConfig};

type BenchResult<T> = Result<T, Box<dyn Error>>;

/// Calls on each connection before anything is timed (handshakes, pools, caches).
const WARM_UP_CALLS: usize = 300;
/// Rounds over all cases, each starting with the next case, so a drift of the
/// machine spreads over every case alike.
const ROUNDS: usize = 8;
/// Timed calls per case and round, one at a time.
const SEQUENTIAL_CALLS: usize = 1_000;
/// Calls in flight at once on the case's one connection, and the timed calls per case and round.
const CONCURRENCY: usize = 32;
const CONCURRENT_CALLS: usize = 3_000;

const ACCESS_KEY: &str = "BENCHAKID00000000002";
const SECRET_KEY: &str = "benchSecretKeyForTheFrontDoorCost000002";
const CALLER_KEY: &str = "bench-caller-key-5c1e9a";
/// The gateway's default project (config::DEMO_PROJECT_ID), the one the caller may read.
const PROJECT_ID: &str = "5f0e1d2c3b4a49586776a5b4c3d2e1f0";

/// Thread names of the runtimes, so CPU time is told apart by thread.
const GATEWAY_THREADS: &str = "gateway";
const SIMULATOR_THREADS: &str = "simulator";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Case {
    Plaintext,
    PlaintextCallers,
    Tls,
    TlsCallers,
}

impl Case {
    const ALL: [Case; 4] = [Case::Plaintext, Case::PlaintextCallers, Case::Tls, Case::TlsCallers];

    fn label(self) -> &'static str {
        match self {
            Case::Plaintext => "plaintext",
            Case::PlaintextCallers => "plaintext + callers",
            Case::Tls => "TLS",
            Case::TlsCallers => "TLS + callers",
        }
    }

    fn tls(self) -> bool {
        matches!(self, Case::Tls | Case::TlsCallers)
    }

    fn callers(self) -> bool {
        matches!(self, Case::PlaintextCallers | Case::TlsCallers)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Sequential,
    Concurrent,
}

fn main() -> BenchResult<()> {
    let simulator_runtime = runtime(SIMULATOR_THREADS, 1)?;
    let gateway_runtime = runtime(GATEWAY_THREADS, 2)?;
    let client_runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let files = Files::write()?;
    eprintln!("load average at start: {}", load_average());

    let simulator = simulator_runtime.block_on(start_simulator())?;
    let mut clients = BTreeMap::new();
    for case in Case::ALL {
        let address = gateway_runtime.block_on(start_gateway(case, &simulator.url(), &files))?;
        let client = client_runtime.block_on(Client::connect(case, address, &files))?;
        clients.insert(case, client);
    }
    let mut totals: BTreeMap<(Case, Mode), Totals> = BTreeMap::new();
    let started = Instant::now();
    let (machine_before, process_before) = (machine_busy_ticks(), process_ticks());
    for round in 0..ROUNDS {
        eprintln!("round {} of {ROUNDS}", round + 1);
        for i in 0..Case::ALL.len() {
            let case = Case::ALL[(round + i) % Case::ALL.len()];
            let client = &clients[&case];
            for mode in [Mode::Sequential, Mode::Concurrent] {
                let before = ThreadCpu::now();
                let phase = client_runtime.block_on(client.run(mode))?;
                let cpu = ThreadCpu::now().since(&before);
                totals.entry((case, mode)).or_default().add(phase, cpu);
            }
        }
    }
    let wall = started.elapsed().as_secs_f64();
    let others = machine_busy_ticks().saturating_sub(machine_before) as f64
        - process_ticks().saturating_sub(process_before) as f64;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    print_report(totals);
    println!(
        "\nmeasured in {wall:.1} s; other processes used {:.0}% of the machine's {cores} cores meanwhile",
        (others / TICKS_PER_SECOND / wall / cores as f64 * 100.0).max(0.0)
    );
    println!("\nload average at the end: {}", load_average());
    drop(clients);
    simulator.shutdown();
    drop(gateway_runtime);
    drop(simulator_runtime);
    Ok(())
}

fn runtime(name: &'static str, workers: usize) -> BenchResult<Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(name)
        .enable_all()
        .build()?)
}

/// The certificate files of the TLS cases and the callers file, in a temp folder.
struct Files {
    dir: PathBuf,
    ca_pem: String,
    tls: TlsFiles,
    callers: PathBuf,
}

impl Files {
    fn write() -> BenchResult<Files> {
        let dir = std::env::temp_dir().join(format!("vbs-gateway-bench-frontdoor-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new())?;
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = rcgen::CertifiedIssuer::self_signed(ca_params, rcgen::KeyPair::generate()?)?;
        let key = rcgen::KeyPair::generate()?;
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])?.signed_by(&key, &ca)?;
        let tls = TlsFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_ca: None,
        };
        std::fs::write(&tls.cert, cert.pem())?;
        std::fs::write(&tls.key, key.serialize_pem())?;
        let callers = dir.join("callers.toml");
        std::fs::write(
            &callers,
            format!(
                "[[caller]]\nname = \"bench\"\n{}\nprojects = [\"{PROJECT_ID}\"]\nrole = \"reader\"\n",
                key_sha256_line(CALLER_KEY)
            ),
        )?;
        Ok(Files {
            dir,
            ca_pem: ca.pem(),
            tls,
            callers,
        })
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The simulator, checking the gateway's AK/SK signatures as VBS would.
async fn start_simulator() -> BenchResult<Simulator> {
    let mut auth = SimulatorConfig::for_testing().auth;
    auth.enforce = true;
    auth.access_keys.push(vbs_simulator::AccessKey {
        access_key: ACCESS_KEY.into(),
        secret_key: Secret::new(SECRET_KEY),
        security_token: None,
    });
    let config = SimulatorConfig {
        auth,
        ..SimulatorConfig::for_testing()
    };
    Ok(Simulator::start(config, TcpListener::bind("127.0.0.1:0").await?).await?)
}

/// A gateway for `case` on port 0, serving on the runtime this runs on.
async fn start_gateway(case: Case, simulator_url: &str, files: &Files) -> BenchResult<std::net::SocketAddr> {
    let mut config = Config::for_testing(simulator_url.parse()?);
    config.credentials = Credentials::AccessKey(AccessKey {
        access_key: Secret::new(ACCESS_KEY),
        secret_key: Secret::new(SECRET_KEY),
        security_token: None,
        signing: Signing::default(),
    });
    if case.tls() {
        config.front_door.tls = Some(files.tls.clone());
    }
    if case.callers() {
        config.callers.callers_file = Some(files.callers.clone());
    }
    let app = App::new(&config)?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    tokio::spawn(async move {
        if let Err(error) = app.serve(listener, std::future::pending()).await {
            eprintln!("!!! the {} gateway stopped: {error}", case.label());
        }
    });
    Ok(address)
}

/// One HTTP/2 connection to the gateway of a case.
#[derive(Clone)]
struct Client {
    backups: BackupServiceClient<Channel>,
    key: Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
}

/// What one phase measured: each call's latency, and the calls that failed.
struct Phase {
    latencies: Vec<Duration>,
    wall: Duration,
    failures: usize,
}

impl Client {
    async fn connect(case: Case, address: std::net::SocketAddr, files: &Files) -> BenchResult<Client> {
        let channel = if case.tls() {
            let tls = ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&files.ca_pem))
                .domain_name("localhost");
            Channel::from_shared(format!("https://{address}"))?
                .tls_config(tls)?
                .connect()
                .await?
        } else {
            Channel::from_shared(format!("http://{address}"))?.connect().await?
        };
        let key = case
            .callers()
            .then(|| format!("Bearer {CALLER_KEY}").parse())
            .transpose()?;
        let client = Client {
            backups: BackupServiceClient::new(channel),
            key,
        };
        for _ in 0..WARM_UP_CALLS {
            client
                .call()
                .await
                .map_err(|status| format!("{}: {status}", case.label()))?;
        }
        Ok(client)
    }

    async fn call(&self) -> Result<(), tonic::Status> {
        let mut request = Request::new(pb::ListBackupsRequest::default());
        if let Some(key) = &self.key {
            request.metadata_mut().insert("authorization", key.clone());
        }
        self.backups.clone().list_backups(request).await.map(|_| ())
    }

    async fn run(&self, mode: Mode) -> BenchResult<Phase> {
        let (workers, calls) = match mode {
            Mode::Sequential => (1, SEQUENTIAL_CALLS),
            Mode::Concurrent => (CONCURRENCY, CONCURRENT_CALLS),
        };
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..workers {
            let client = self.clone();
            let next = next.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0;
                while next.fetch_add(1, Ordering::Relaxed) < calls {
                    let start = Instant::now();
                    if client.call().await.is_err() {
                        failures += 1;
                    }
                    latencies.push(start.elapsed());
                }
                (latencies, failures)
            }));
        }
        let mut phase = Phase {
            latencies: Vec::with_capacity(calls),
            wall: Duration::ZERO,
            failures: 0,
        };
        for task in tasks {
            let (latencies, failures) = task.await?;
            phase.latencies.extend(latencies);
            phase.failures += failures;
        }
        phase.wall = started.elapsed();
        Ok(phase)
    }
}

/// CPU time by thread group, in clock ticks, from /proc/self/task/*/stat.
#[derive(Debug, Default, Clone)]
struct ThreadCpu {
    gateway: u64,
    simulator: u64,
    client: u64,
}

impl ThreadCpu {
    fn now() -> ThreadCpu {
        let mut cpu = ThreadCpu::default();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return cpu;
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                continue;
            };
            // The thread name is field 2, in parentheses; utime and stime are fields 14 and 15.
            let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
                continue;
            };
            let name = &stat[open + 1..close];
            let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
            let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
            let ticks = field(14) + field(15);
            match name {
                GATEWAY_THREADS => cpu.gateway += ticks,
                SIMULATOR_THREADS => cpu.simulator += ticks,
                _ => cpu.client += ticks,
            }
        }
        cpu
    }

    fn since(&self, earlier: &ThreadCpu) -> ThreadCpu {
        ThreadCpu {
            gateway: self.gateway.saturating_sub(earlier.gateway),
            simulator: self.simulator.saturating_sub(earlier.simulator),
            client: self.client.saturating_sub(earlier.client),
        }
    }
}

/// A case and mode summed over the rounds.
#[derive(Default)]
struct Totals {
    latencies: Vec<Duration>,
    wall: Duration,
    failures: usize,
    cpu: ThreadCpu,
}

impl Totals {
    fn add(&mut self, phase: Phase, cpu: ThreadCpu) {
        self.latencies.extend(phase.latencies);
        self.wall += phase.wall;
        self.failures += phase.failures;
        self.cpu.gateway += cpu.gateway;
        self.cpu.simulator += cpu.simulator;
        self.cpu.client += cpu.client;
    }

    fn percentile_us(&mut self, p: f64) -> f64 {
        self.latencies.sort_unstable();
        let index = ((self.latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        self.latencies.get(index).map_or(f64::NAN, |d| d.as_secs_f64() * 1e6)
    }

    /// Microseconds of CPU per call from `ticks` (clock ticks of 10 ms).
    fn per_call_us(&self, ticks: u64) -> f64 {
        ticks as f64 * 1e6 / TICKS_PER_SECOND / self.latencies.len() as f64
    }
}

/// USER_HZ, 100 on Linux for every architecture the gateway targets.
const TICKS_PER_SECOND: f64 = 100.0;

fn print_report(totals: BTreeMap<(Case, Mode), Totals>) {
    let mut rows: Vec<_> = totals.into_iter().collect();
    rows.sort_by_key(|((case, mode), _)| (*mode, *case));
    println!(
        "\nListBackups through the gateway, {ROUNDS} rounds; CPU per call in us by thread group, from 10 ms ticks\n"
    );
    println!(
        "| case | calls at once | calls | calls/s | p50 us | p99 us | CPU us/call: gateway | simulator | client | process | failed |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for ((case, mode), mut totals) in rows {
        let calls = totals.latencies.len();
        let at_once = match mode {
            Mode::Sequential => 1,
            Mode::Concurrent => CONCURRENCY,
        };
        let cpu = totals.cpu.clone();
        println!(
            "| {} | {at_once} | {calls} | {:.0} | {:.0} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} | {} |",
            case.label(),
            calls as f64 / totals.wall.as_secs_f64(),
            totals.percentile_us(0.50),
            totals.percentile_us(0.99),
            totals.per_call_us(cpu.gateway),
            totals.per_call_us(cpu.simulator),
            totals.per_call_us(cpu.client),
            totals.per_call_us(cpu.gateway + cpu.simulator + cpu.client),
            totals.failures,
        );
    }
}

/// Busy time of all cores (user, nice, system, irq, softirq, steal) from /proc/stat.
fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| fields.get(i)).sum()
}

/// utime + stime of this process, all its threads, from /proc/self/stat.
fn process_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}
