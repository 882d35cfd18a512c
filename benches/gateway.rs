//! Gateway overhead on loopback, side by side: a bare tonic echo hop, the signed REST call straight
//! to the simulator, and the same call through the gateway; each server is a process of its own, so
//! its CPU comes from /proc. Measures; asserts nothing. `cargo bench --bench gateway [-- --json PATH]`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use apig_signer::{self as signer, Credentials, RequestView};
use bytes::Bytes;
use chrono::Utc;
use prost::Message as _;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint, Server};
use tonic::{Request, Response, Status};
use vbs_gateway::proto::pb::backup_service_server::{BackupService, BackupServiceServer};
use vbs_gateway::proto::pb::{self, backup_service_client::BackupServiceClient};

mod support;
use support::{
    ACCESS_KEY, BenchResult, LATENCY_BLOCK, LATENCY_CALLS, Machine, Meter, OTHER_LOAD_WARNING, PROJECT_ID, Process,
    READY_TIMEOUT, SECRET_KEY, Stack, Usage, VOLUME_ID, WARM_UP_CALLS, WorkDir, build_gateway_binary,
    clock_ticks_per_second, cpu_nanos, free_port, revision,
};

const CONCURRENCY: [usize; 2] = [16, 64];
/// The concurrency at which the echo server also runs at the gateway's rate.
const PACED_CONCURRENCY: usize = 16;
/// Callers run this long before the counted window opens.
const THROUGHPUT_WARM_UP: Duration = Duration::from_millis(300);
/// Long enough for a steady state, and for 10 ms clock ticks (the fallback
/// CPU clock) to stay under 1% of any busy process's CPU.
const THROUGHPUT_WINDOW: Duration = Duration::from_secs(2);

/// Targets of the issue, as ratios from the same run.
const ADDED_LATENCY_TARGET: f64 = 1.3;
/// Gateway CPU per call against its two unavoidable halves (an echo gRPC
/// server and a direct REST client), at the throughput concurrencies.
const CPU_TARGET: f64 = 1.2;

const BACKUP_NAME: &str = "bench-backup";
const BACKUP_DESCRIPTION: &str = "gateway overhead benchmark";
const JSON: &str = "application/json";
/// Arguments of the echo server role: `--echo-server PORT GET_RESPONSE_FILE JOB_ID`.
const ECHO_ROLE: &str = "--echo-server";

fn main() -> BenchResult<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(ECHO_ROLE) {
        return echo::run(&args[1..]);
    }
    // `cargo bench` adds `--bench`; only `--json PATH` is ours.
    let json_path = args
        .iter()
        .position(|a| a == "--json")
        .map(|i| args.get(i + 1).map(PathBuf::from).ok_or("--json needs a path"))
        .transpose()?;
    let only = Only(
        args.iter()
            .position(|a| a == "--only")
            .map(|i| args.get(i + 1).cloned().ok_or("--only needs OPERATION[/ROUTE]"))
            .transpose()?,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let report = runtime.block_on(run(only))?;
    print!("{}", report.render());
    if let Some(path) = json_path {
        std::fs::write(&path, serde_json::to_string_pretty(&report)?)?;
        println!("results written to {}", path.display());
    }
    Ok(())
}

// ------------------------------------------------------------------ the run

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
enum Op {
    GetBackup,
    CreateBackup,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
enum Route {
    /// The bare gRPC hop: a tonic server answering a canned message.
    Echo,
    /// A client signing its own REST call to the simulator.
    DirectRest,
    /// The gateway, signing its REST call to the simulator.
    Gateway,
}

impl Route {
    const ALL: [Route; 3] = [Route::Echo, Route::DirectRest, Route::Gateway];

    /// As `--only` names it: echo, direct, gateway.
    fn slug(self) -> &'static str {
        match self {
            Route::Echo => "echo",
            Route::DirectRest => "direct",
            Route::Gateway => "gateway",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Echo => "echo (bare gRPC)",
            Route::DirectRest => "direct REST",
            Route::Gateway => "gateway",
        }
    }
}

/// `--only GetBackup/gateway` (or any part of it, e.g. `CreateBackup`, `/echo`)
/// measures only the matching rows, for profiling one of them; the ratios
/// need all three rows of an operation.
struct Only(Option<String>);

impl Only {
    fn selects(&self, op: Op, route: Route) -> bool {
        self.0
            .as_deref()
            .is_none_or(|only| format!("{op:?}/{}", route.slug()).contains(only))
    }
}

async fn run(only: Only) -> BenchResult<Report> {
    let binary = build_gateway_binary()?;
    let work = WorkDir::new()?;
    let secret_key_file = work.path.join("secret-key");
    std::fs::write(&secret_key_file, SECRET_KEY)?;
    let hz = clock_ticks_per_second()?;
    let machine = Machine::read();
    let revision = revision();
    eprintln!(
        "machine: {} ({} cores); clock ticks: {hz}/s",
        machine.cpu, machine.cores
    );

    // Setup on a first simulator + gateway: one backup for every GetBackup,
    // and the gateway's real answers, which the echo server then repeats.
    let stack = Stack::start(&binary, &secret_key_file).await?;
    let setup_rest = Direct::new(stack.simulator_port, "")?;
    let started: JobStarted = serde_json::from_slice(&setup_rest.create().await?)?;
    let backup_id = backup_of_job(&setup_rest, &started.job_id).await?;
    let grpc = Grpc::connect(stack.gateway_port, &backup_id).await?;
    let get_answer = grpc.get_backup_response().await?;
    let create_answer = grpc.create_backup_response().await?;
    let answer_file = work.path.join("get-backup-response.bin");
    std::fs::write(&answer_file, get_answer.encode_to_vec())?;
    eprintln!(
        "message sizes: GetBackupResponse {} bytes, CreateBackupResponse {} bytes",
        get_answer.encoded_len(),
        create_answer.encoded_len()
    );

    let echo_port = free_port()?;
    let echo_process = Process::spawn(
        "echo server",
        Command::new(std::env::current_exe()?)
            .arg(ECHO_ROLE)
            .arg(echo_port.to_string())
            .arg(&answer_file)
            .arg(&create_answer.job_id),
    )?;
    let echo = Target {
        caller: Caller::Grpc(Grpc::connect(echo_port, &backup_id).await?),
        meter: Meter::new(hz, &[("echo", echo_process.pid())]),
        _stack: None,
    };
    let targets = Targets {
        binary,
        secret_key_file,
        backup_id,
        hz,
        stack,
        echo,
    };

    let mut rows = Vec::new();
    for op in [Op::GetBackup, Op::CreateBackup] {
        let routes: Vec<Route> = Route::ALL.into_iter().filter(|r| only.selects(op, *r)).collect();
        if routes.is_empty() {
            continue;
        }
        eprintln!("{op:?}: latency at concurrency 1, routes interleaved");
        let mut latency_targets = Vec::new();
        for route in &routes {
            latency_targets.push(targets.get(op, *route).await?);
        }
        let latencies = latency(op, &mut latency_targets).await;
        drop(latency_targets);
        for (route, (percentiles, phase)) in routes.into_iter().zip(latencies) {
            let mut phases = vec![phase];
            for concurrency in CONCURRENCY {
                eprintln!("{op:?} via {}: throughput at concurrency {concurrency}", route.label());
                let target = targets.get(op, route).await?;
                phases.push(throughput(op, &target, concurrency, None).await);
            }
            let row = Row {
                operation: op,
                route,
                p50_us: percentiles[0],
                p90_us: percentiles[1],
                p99_us: percentiles[2],
                phases,
            };
            if row.failures() > 0 {
                eprintln!(
                    "!!! {} failed calls measuring {op:?} via {}",
                    row.failures(),
                    route.label()
                );
            }
            rows.push(row);
        }
        // At full speed the echo server answers several times as many calls
        // as the gateway and batches more of them per wake-up, which lowers
        // its CPU per call; compare CPU at the gateway's own rate too.
        let rate_of = |route| {
            let row = rows.iter().find(|r: &&Row| r.operation == op && r.route == route)?;
            Some(row.phase(PACED_CONCURRENCY)?.requests_per_second)
        };
        if let (Some(_), Some(rate)) = (rate_of(Route::Echo), rate_of(Route::Gateway)) {
            eprintln!("{op:?} via echo: concurrency {PACED_CONCURRENCY} at the gateway's {rate:.0} calls/s");
            let target = targets.get(op, Route::Echo).await?;
            let phase = throughput(op, &target, PACED_CONCURRENCY, Some(rate)).await;
            if let Some(row) = rows.iter_mut().find(|r| r.operation == op && r.route == Route::Echo) {
                row.phases.push(phase);
            }
        }
    }
    drop(targets);
    drop(echo_process);
    Ok(Report::new(machine, revision, hz, get_answer.encoded_len(), rows))
}

/// Hands out a caller and meter for each route and phase.
struct Targets {
    binary: PathBuf,
    secret_key_file: PathBuf,
    backup_id: String,
    hz: u64,
    /// The setup simulator and gateway, which serve every GetBackup.
    stack: Stack,
    echo: Target,
}

impl Targets {
    async fn get(&self, op: Op, route: Route) -> BenchResult<Target> {
        match (op, route) {
            (_, Route::Echo) => Ok(self.echo.shared()),
            // Reads change nothing: every phase uses the setup stack.
            (Op::GetBackup, route) => self.on_stack(route, &self.stack).await,
            // Each create leaves a backup and a job behind, and the simulator
            // scans them all on every request, so it slows down as they pile
            // up: each create phase gets a fresh simulator (and gateway), so
            // both routes see a simulator in the same state.
            (Op::CreateBackup, route) => {
                let stack = Stack::start(&self.binary, &self.secret_key_file).await?;
                let mut target = self.on_stack(route, &stack).await?;
                target._stack = Some(stack);
                Ok(target)
            }
        }
    }

    /// A caller of `route` on `stack`, with a meter of the processes serving it.
    async fn on_stack(&self, route: Route, stack: &Stack) -> BenchResult<Target> {
        let (caller, processes) = match route {
            Route::DirectRest => (
                Caller::Rest(Direct::new(stack.simulator_port, &self.backup_id)?),
                vec![("simulator", stack.simulator.pid())],
            ),
            Route::Gateway => (
                Caller::Grpc(Grpc::connect(stack.gateway_port, &self.backup_id).await?),
                vec![("gateway", stack.gateway.pid()), ("simulator", stack.simulator.pid())],
            ),
            Route::Echo => return Err("the echo server is not on a stack".into()),
        };
        Ok(Target {
            caller,
            meter: Meter::new(self.hz, &processes),
            _stack: None,
        })
    }
}

/// One phase's caller and the processes whose CPU it reads.
struct Target {
    caller: Caller,
    meter: Meter,
    /// Keeps a fresh stack running for the phase.
    _stack: Option<Stack>,
}

impl Target {
    /// Another handle on the same servers and connections.
    fn shared(&self) -> Target {
        Target {
            caller: self.caller.clone(),
            meter: self.meter.clone(),
            _stack: None,
        }
    }
}

/// The backup that a (finished) create job made.
async fn backup_of_job(rest: &Direct, job_id: &str) -> BenchResult<String> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let job: serde_json::Value = serde_json::from_slice(&rest.get_job(job_id).await?)?;
        if job["status"] == "SUCCESS" {
            let id = job["entities"]["backup_id"]
                .as_str()
                .ok_or("job without entities.backup_id")?;
            return Ok(id.to_owned());
        }
        if Instant::now() > deadline {
            return Err(format!("the setup backup job did not succeed: {job}").into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------- callers

/// One way of making the operation; cheap to clone (clones share connections).
#[derive(Clone)]
enum Caller {
    Grpc(Grpc),
    Rest(Direct),
}

impl Caller {
    async fn call(&mut self, op: Op) -> Result<(), String> {
        match (self, op) {
            (Caller::Grpc(grpc), Op::GetBackup) => grpc.get().await,
            (Caller::Grpc(grpc), Op::CreateBackup) => grpc.create().await,
            (Caller::Rest(rest), Op::GetBackup) => {
                let body = rest.get().await?;
                let reply: OneBackup = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                black_box(reply);
                Ok(())
            }
            (Caller::Rest(rest), Op::CreateBackup) => {
                let body = rest.create().await?;
                let reply: JobStarted = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
                black_box(reply);
                Ok(())
            }
        }
    }
}

/// A gRPC client on one channel: concurrent callers clone it and share one
/// HTTP/2 connection, as the callers in one client process would.
#[derive(Clone)]
struct Grpc {
    client: BackupServiceClient<Channel>,
    backup_id: String,
}

impl Grpc {
    async fn connect(port: u16, backup_id: &str) -> BenchResult<Grpc> {
        let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?;
        let deadline = Instant::now() + READY_TIMEOUT;
        let channel = loop {
            match endpoint.connect().await {
                Ok(channel) => break channel,
                Err(error) if Instant::now() > deadline => {
                    return Err(format!("nothing accepts gRPC on port {port}: {error}").into());
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        };
        Ok(Grpc {
            client: BackupServiceClient::new(channel),
            backup_id: backup_id.to_owned(),
        })
    }

    fn get_request(&self) -> pb::GetBackupRequest {
        pb::GetBackupRequest {
            backup_id: self.backup_id.clone(),
            ..Default::default()
        }
    }

    fn create_request() -> pb::CreateBackupRequest {
        pb::CreateBackupRequest {
            volume_id: VOLUME_ID.into(),
            name: BACKUP_NAME.into(),
            description: BACKUP_DESCRIPTION.into(),
            ..Default::default()
        }
    }

    async fn get(&mut self) -> Result<(), String> {
        let reply = self.client.get_backup(self.get_request()).await.map_err(status_text)?;
        black_box(reply.into_inner());
        Ok(())
    }

    async fn create(&mut self) -> Result<(), String> {
        let reply = self
            .client
            .create_backup(Grpc::create_request())
            .await
            .map_err(status_text)?;
        black_box(reply.into_inner());
        Ok(())
    }

    async fn get_backup_response(&self) -> BenchResult<pb::GetBackupResponse> {
        Ok(self.client.clone().get_backup(self.get_request()).await?.into_inner())
    }

    async fn create_backup_response(&self) -> BenchResult<pb::CreateBackupResponse> {
        Ok(self
            .client
            .clone()
            .create_backup(Grpc::create_request())
            .await?
            .into_inner())
    }
}

fn status_text(status: Status) -> String {
    format!("{:?}: {}", status.code(), status.message())
}

/// What a client without the gateway does: one pooled reqwest client, every
/// request signed with the crate's signer over the same headers and body
/// bytes the gateway sends, the JSON answer decoded into the same models.
#[derive(Clone)]
struct Direct(Arc<DirectInner>);

struct DirectInner {
    http: reqwest::Client,
    base: String,
    host: String,
    signed_headers: Vec<(String, String)>,
    get_path: String,
    create_path: String,
    create_body: Bytes,
}

impl Direct {
    fn new(port: u16, backup_id: &str) -> BenchResult<Direct> {
        // reqwest is built with rustls but no provider; plain http needs none,
        // but the builder wants one installed.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let body = CreateCloudBackup {
            backup: CloudBackupSpec {
                volume_id: VOLUME_ID.into(),
                snapshot_id: None,
                name: BACKUP_NAME.into(),
                description: Some(BACKUP_DESCRIPTION.into()),
            },
        };
        let host = format!("127.0.0.1:{port}");
        Ok(Direct(Arc::new(DirectInner {
            http: reqwest::Client::builder().build()?,
            base: format!("http://{host}"),
            host,
            signed_headers: vec![
                ("content-type".into(), JSON.into()),
                ("x-project-id".into(), PROJECT_ID.into()),
            ],
            get_path: format!("/v2/{PROJECT_ID}/backups/{backup_id}"),
            create_path: format!("/v2/{PROJECT_ID}/cloudbackups"),
            create_body: Bytes::from(serde_json::to_vec(&body)?),
        })))
    }

    async fn get(&self) -> Result<Bytes, String> {
        self.send(reqwest::Method::GET, &self.0.get_path, Bytes::new()).await
    }

    async fn create(&self) -> Result<Bytes, String> {
        self.send(reqwest::Method::POST, &self.0.create_path, self.0.create_body.clone())
            .await
    }

    async fn get_job(&self, job_id: &str) -> Result<Bytes, String> {
        let path = format!("/v1/{PROJECT_ID}/jobs/{job_id}");
        self.send(reqwest::Method::GET, &path, Bytes::new()).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Bytes) -> Result<Bytes, String> {
        let inner = &self.0;
        let view = RequestView {
            method: method.as_str(),
            host: &inner.host,
            path,
            query: &[],
            headers: &inner.signed_headers,
            body: &body,
        };
        let credentials = Credentials {
            access_key: ACCESS_KEY,
            secret_key: SECRET_KEY,
            security_token: None,
        };
        let signature = signer::sign(&view, &credentials, Utc::now());
        let mut request = inner
            .http
            .request(method, format!("{}{path}", inner.base))
            .header("content-type", JSON)
            .header("x-project-id", PROJECT_ID)
            .header("x-sdk-date", signature.x_sdk_date)
            .header("authorization", signature.authorization);
        if !body.is_empty() {
            request = request.body(body);
        }
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&bytes)));
        }
        Ok(bytes)
    }
}

// ------------------------------------------------------------- measuring

#[derive(Debug, Serialize)]
struct Row {
    operation: Op,
    route: Route,
    /// Latency at concurrency 1, microseconds.
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    /// Concurrency 1 (the latency calls), then each of CONCURRENCY.
    phases: Vec<Phase>,
}

impl Row {
    /// The phase at `concurrency` at full speed.
    fn phase(&self, concurrency: usize) -> Option<&Phase> {
        self.phases
            .iter()
            .find(|p| p.concurrency == concurrency && p.paced_at.is_none())
    }

    /// The phase held to another route's rate, if any.
    fn paced(&self) -> Option<&Phase> {
        self.phases.iter().find(|p| p.paced_at.is_some())
    }

    /// The most CPU that processes outside the benchmark took in any phase.
    fn others_cpu_percent(&self) -> f64 {
        self.phases.iter().map(|p| p.others_cpu_percent).fold(0.0, f64::max)
    }

    /// The same over phases long enough for clock ticks to tell.
    fn others_cpu_percent_measurable(&self) -> f64 {
        self.phases
            .iter()
            .filter(|p| p.seconds >= 1.0)
            .map(|p| p.others_cpu_percent)
            .fold(0.0, f64::max)
    }

    fn failures(&self) -> u64 {
        self.phases.iter().map(|p| p.failed).sum()
    }

    /// CPU microseconds per RPC of one process at one concurrency.
    fn cpu(&self, process: &str, concurrency: usize) -> Option<f64> {
        self.phase(concurrency)?.cpu_us_per_rpc.get(process).copied()
    }
}

#[derive(Debug, Serialize)]
struct Phase {
    concurrency: usize,
    /// Calls per second the callers were held to (the gateway's rate), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    paced_at: Option<f64>,
    ok: u64,
    failed: u64,
    seconds: f64,
    requests_per_second: f64,
    /// Per process ("echo", "gateway", "simulator", "client"): CPU time
    /// (user + system) during the phase divided by the successful calls, from
    /// the source in `Report::cpu_source`.
    cpu_us_per_rpc: BTreeMap<&'static str, f64>,
    /// The same from /proc/PID/stat clock ticks, as a cross-check.
    cpu_us_per_rpc_from_ticks: BTreeMap<&'static str, f64>,
    /// CPU used by processes outside the benchmark during the phase, in % of
    /// the machine: above a few percent the phase ran on a busy machine.
    others_cpu_percent: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
}

/// Latency at concurrency 1 of each target: after a warm-up, calls go in
/// blocks, one block per target in turn, so that every route sees the same
/// machine (a busy neighbour or a slow minute hits all of them alike).
/// Returns p50/p90/p99 in microseconds and the phase, per target.
async fn latency(op: Op, targets: &mut [Target]) -> Vec<([f64; 3], Phase)> {
    struct Tally {
        samples: Vec<Duration>,
        ok: u64,
        failed: u64,
        first_error: Option<String>,
        busy: Duration,
        usage: Option<Usage>,
    }
    let mut tallies: Vec<Tally> = targets
        .iter()
        .map(|_| Tally {
            samples: Vec::with_capacity(LATENCY_CALLS),
            ok: 0,
            failed: 0,
            first_error: None,
            busy: Duration::ZERO,
            usage: None,
        })
        .collect();
    for (target, tally) in targets.iter_mut().zip(&mut tallies) {
        for _ in 0..WARM_UP_CALLS {
            if let Err(error) = target.caller.call(op).await {
                tally.failed += 1;
                tally.first_error.get_or_insert(error);
            }
        }
    }
    for _ in 0..LATENCY_CALLS / LATENCY_BLOCK {
        for (target, tally) in targets.iter_mut().zip(&mut tallies) {
            let before = target.meter.sample();
            let started = Instant::now();
            for _ in 0..LATENCY_BLOCK {
                let call_started = Instant::now();
                let result = target.caller.call(op).await;
                tally.samples.push(call_started.elapsed());
                match result {
                    Ok(()) => tally.ok += 1,
                    Err(error) => {
                        tally.failed += 1;
                        tally.first_error.get_or_insert(error);
                    }
                }
            }
            tally.busy += started.elapsed();
            let used = target.meter.sample().since(&before);
            tally.usage = Some(match tally.usage.take() {
                Some(total) => total.plus(&used),
                None => used,
            });
        }
    }
    targets
        .iter()
        .zip(tallies)
        .map(|(target, mut tally)| {
            tally.samples.sort();
            let percentile = |p: f64| {
                let rank = ((p * tally.samples.len() as f64).ceil() as usize).clamp(1, tally.samples.len());
                tally.samples[rank - 1].as_secs_f64() * 1e6
            };
            let seconds = tally.busy.as_secs_f64();
            let usage = tally.usage.unwrap_or_default();
            let phase = Phase {
                concurrency: 1,
                paced_at: None,
                ok: tally.ok,
                failed: tally.failed,
                seconds,
                requests_per_second: tally.ok as f64 / seconds,
                cpu_us_per_rpc: target.meter.per_call(&usage, tally.ok),
                cpu_us_per_rpc_from_ticks: target.meter.per_call_from_ticks(&usage, tally.ok),
                others_cpu_percent: target.meter.others_percent(&usage, seconds),
                first_error: tally.first_error,
            };
            ([percentile(0.50), percentile(0.90), percentile(0.99)], phase)
        })
        .collect()
}

const WARMING: u8 = 0;
const COUNTING: u8 = 1;
const STOPPED: u8 = 2;

/// `concurrency` tasks call back to back (or, with `pace`, no faster than
/// that many calls per second in all); only calls that finish while the
/// window is open count, and CPU is read as the window opens and closes.
async fn throughput(op: Op, target: &Target, concurrency: usize, pace: Option<f64>) -> Phase {
    let meter = &target.meter;
    let state = Arc::new(AtomicU8::new(WARMING));
    let ok = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let permits = pace.map(|rate| Arc::new(Pacer::start(rate)));
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (state, ok, failed, permits) = (state.clone(), ok.clone(), failed.clone(), permits.clone());
            let mut caller = target.caller.clone();
            tokio::spawn(async move {
                let mut first_error = None;
                loop {
                    if let Some(permits) = &permits {
                        permits.wait().await;
                    }
                    let result = caller.call(op).await;
                    match state.load(Ordering::Relaxed) {
                        STOPPED => return first_error,
                        COUNTING => match result {
                            Ok(()) => ok.fetch_add(1, Ordering::Relaxed),
                            Err(error) => {
                                first_error.get_or_insert(error);
                                failed.fetch_add(1, Ordering::Relaxed)
                            }
                        },
                        _ => 0,
                    };
                }
            })
        })
        .collect();
    tokio::time::sleep(THROUGHPUT_WARM_UP).await;
    let before = meter.sample();
    let started = Instant::now();
    state.store(COUNTING, Ordering::Relaxed);
    tokio::time::sleep(THROUGHPUT_WINDOW).await;
    state.store(STOPPED, Ordering::Relaxed);
    let seconds = started.elapsed().as_secs_f64();
    let usage = meter.sample().since(&before);
    let mut first_error = None;
    for task in tasks {
        match task.await {
            Ok(error) => first_error = first_error.or(error),
            Err(error) => first_error = first_error.or(Some(format!("caller task failed: {error}"))),
        }
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    Phase {
        concurrency,
        paced_at: pace,
        ok,
        failed,
        seconds,
        requests_per_second: ok as f64 / seconds,
        cpu_us_per_rpc: meter.per_call(&usage, ok),
        cpu_us_per_rpc_from_ticks: meter.per_call_from_ticks(&usage, ok),
        others_cpu_percent: meter.others_percent(&usage, seconds),
        first_error,
    }
}

/// Hands out calls at a fixed rate: a task adds the permits due each
/// millisecond, and callers take one per call.
struct Pacer {
    permits: Arc<tokio::sync::Semaphore>,
    refill: tokio::task::JoinHandle<()>,
}

impl Pacer {
    fn start(rate: f64) -> Pacer {
        let permits = Arc::new(tokio::sync::Semaphore::new(0));
        let refill = tokio::spawn({
            let permits = permits.clone();
            async move {
                let mut tick = tokio::time::interval(Duration::from_millis(1));
                let started = Instant::now();
                let mut granted = 0;
                loop {
                    tick.tick().await;
                    let due = (started.elapsed().as_secs_f64() * rate) as usize;
                    permits.add_permits(due.saturating_sub(granted));
                    granted = due.max(granted);
                }
            }
        });
        Pacer { permits, refill }
    }

    async fn wait(&self) {
        if let Ok(permit) = self.permits.acquire().await {
            permit.forget();
        }
    }
}

impl Drop for Pacer {
    fn drop(&mut self) {
        self.refill.abort();
    }
}

#[derive(Debug, Serialize)]
struct Ratio {
    operation: Op,
    name: &'static str,
    /// Concurrency of the CPU comparison; 1 for the latency ratio.
    concurrency: usize,
    value: f64,
    /// None for ratios shown to explain the others.
    target: Option<f64>,
    pass: Option<bool>,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: Machine,
    /// The commit measured, "+dirty" when the work tree had changes.
    revision: String,
    clock_ticks_per_second: u64,
    /// Where CPU times come from.
    cpu_source: &'static str,
    get_backup_response_bytes: usize,
    latency_calls: usize,
    throughput_window_seconds: f64,
    rows: Vec<Row>,
    ratios: Vec<Ratio>,
    failed_calls: u64,
}

impl Report {
    fn new(machine: Machine, revision: String, hz: u64, get_backup_response_bytes: usize, rows: Vec<Row>) -> Report {
        let mut ratios = Vec::new();
        for op in [Op::GetBackup, Op::CreateBackup] {
            let find = |route: Route| rows.iter().find(|r| r.operation == op && r.route == route);
            let (Some(echo), Some(direct), Some(gateway)) =
                (find(Route::Echo), find(Route::DirectRest), find(Route::Gateway))
            else {
                continue;
            };
            let added = gateway.p50_us - direct.p50_us;
            let value = added / echo.p50_us;
            ratios.push(Ratio {
                operation: op,
                name: "added latency / bare gRPC hop (p50, c=1)",
                concurrency: 1,
                value,
                target: Some(ADDED_LATENCY_TARGET),
                pass: Some(value <= ADDED_LATENCY_TARGET),
                detail: format!("({:.0} - {:.0}) / {:.0} us", gateway.p50_us, direct.p50_us, echo.p50_us),
            });
            for concurrency in std::iter::once(1).chain(CONCURRENCY) {
                let (Some(gw), Some(floor)) = (gateway.cpu("gateway", concurrency), echo.cpu("echo", concurrency))
                else {
                    continue;
                };
                let value = gw / floor;
                ratios.push(Ratio {
                    operation: op,
                    name: "gateway CPU / echo server CPU per RPC",
                    concurrency,
                    value,
                    target: None,
                    pass: None,
                    detail: format!("{gw:.1} / {floor:.1} us"),
                });
            }
            let paced_echo = echo.paced().and_then(|p| p.cpu_us_per_rpc.get("echo").copied());
            if let (Some(gw), Some(floor)) = (gateway.cpu("gateway", PACED_CONCURRENCY), paced_echo) {
                let value = gw / floor;
                ratios.push(Ratio {
                    operation: op,
                    name: "gateway CPU / echo server CPU per RPC, echo held to the gateway's rate",
                    concurrency: PACED_CONCURRENCY,
                    value,
                    target: None,
                    pass: None,
                    detail: format!("{gw:.1} / {floor:.1} us"),
                });
            }
            // A gateway runs a gRPC server and a REST client: the echo server
            // and the direct client are its two halves doing nothing else.
            for concurrency in std::iter::once(1).chain(CONCURRENCY) {
                let parts = (
                    gateway.cpu("gateway", concurrency),
                    echo.cpu("echo", concurrency),
                    direct.cpu("client", concurrency),
                );
                let (Some(gw), Some(server), Some(client)) = parts else {
                    continue;
                };
                let value = gw / (server + client);
                // At c=1 every process mostly measures its idle wake-ups.
                let target = (concurrency > 1).then_some(CPU_TARGET);
                ratios.push(Ratio {
                    operation: op,
                    name: "gateway CPU / (echo server + direct REST client CPU) per RPC",
                    concurrency,
                    value,
                    target,
                    pass: target.map(|t| value <= t),
                    detail: format!("{gw:.1} / ({server:.1} + {client:.1}) us"),
                });
            }
        }
        let failed_calls = rows.iter().map(Row::failures).sum();
        Report {
            machine,
            revision,
            clock_ticks_per_second: hz,
            cpu_source: if cpu_nanos(std::process::id()).is_some() {
                "user + system of all threads, ns, /proc/PID/task/*/schedstat"
            } else {
                "user + system, clock ticks, /proc/PID/stat"
            },
            get_backup_response_bytes,
            latency_calls: LATENCY_CALLS,
            throughput_window_seconds: THROUGHPUT_WINDOW.as_secs_f64(),
            rows,
            ratios,
            failed_calls,
        }
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nmachine: {}, {} cores, Linux {}; tree {}; {} sequential calls per route for latency, {} s windows for throughput",
            self.machine.cpu,
            self.machine.cores,
            self.machine.kernel,
            self.revision,
            LATENCY_CALLS,
            self.throughput_window_seconds
        );
        let _ = writeln!(
            out,
            "\n| operation | path | p50 us | p90 us | p99 us | rps c=16 | rps c=64 | failed | other load |"
        );
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|");
        for row in &self.rows {
            let rps = |c| row.phase(c).map_or(0.0, |p| p.requests_per_second);
            let _ = writeln!(
                out,
                "| {:?} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} | {} | {:.0}% |",
                row.operation,
                row.route.label(),
                row.p50_us,
                row.p90_us,
                row.p99_us,
                rps(16),
                rps(64),
                row.failures(),
                row.others_cpu_percent()
            );
        }
        let _ = writeln!(
            out,
            "\nCPU microseconds per RPC, by process ({}; client = this bench)\n",
            self.cpu_source
        );
        let _ = writeln!(
            out,
            "| operation | path | process | c=1 | c=16 | c=64 | c={PACED_CONCURRENCY} at the gateway's rate |"
        );
        let _ = writeln!(out, "|---|---|---|--:|--:|--:|--:|");
        for row in &self.rows {
            let processes = row
                .phases
                .first()
                .map(|p| p.cpu_us_per_rpc.keys().copied().collect::<Vec<_>>());
            for process in processes.unwrap_or_default() {
                let text = |cpu: Option<f64>| cpu.map_or("-".to_owned(), |v| format!("{v:.1}"));
                let cell = |c| text(row.cpu(process, c));
                let paced = text(row.paced().and_then(|p| p.cpu_us_per_rpc.get(process).copied()));
                let _ = writeln!(
                    out,
                    "| {:?} | {} | {process} | {} | {} | {} | {paced} |",
                    row.operation,
                    row.route.label(),
                    cell(1),
                    cell(16),
                    cell(64)
                );
            }
        }
        let _ = writeln!(out, "\n| operation | ratio | c | value | target | result |");
        let _ = writeln!(out, "|---|---|--:|--:|--:|---|");
        for ratio in &self.ratios {
            let _ = writeln!(
                out,
                "| {:?} | {} = {} | {} | {:.2} | {} | {} |",
                ratio.operation,
                ratio.name,
                ratio.detail,
                ratio.concurrency,
                ratio.value,
                ratio.target.map_or("-".to_owned(), |t| format!("<= {t}")),
                match ratio.pass {
                    Some(true) => "PASS",
                    Some(false) => "FAIL",
                    None => "(context)",
                }
            );
        }
        let busiest = self
            .rows
            .iter()
            .map(Row::others_cpu_percent_measurable)
            .fold(0.0, f64::max);
        if busiest > OTHER_LOAD_WARNING {
            let _ = writeln!(
                out,
                "\n!!! other processes used up to {busiest:.0}% of the machine during a phase: numbers are skewed"
            );
        }
        if self.failed_calls > 0 {
            let _ = writeln!(
                out,
                "\n!!! {} CALLS FAILED: these numbers do not describe working calls",
                self.failed_calls
            );
            for row in &self.rows {
                for phase in &row.phases {
                    if let Some(error) = &phase.first_error {
                        let _ = writeln!(
                            out,
                            "!!! {:?} via {} at c={}: {} failed, first: {error}",
                            row.operation,
                            row.route.label(),
                            phase.concurrency,
                            phase.failed
                        );
                    }
                }
            }
        }
        out
    }
}

// ------------------------------------------------------------ echo server

/// The floor of one gRPC hop: the same service and messages as the gateway,
/// answered from memory (GetBackup with the gateway's real answer, captured
/// during setup; CreateBackup with a job id).
use wire::{CloudBackupSpec, CreateCloudBackup, JobStarted, OneBackup};

mod echo {
    use super::*;

    struct Echo {
        get: pb::GetBackupResponse,
        job_id: String,
    }

    type RpcResult<T> = Result<Response<T>, Status>;

    pub(super) fn run(args: &[String]) -> BenchResult<()> {
        let [port, answer_file, job_id] = args else {
            return Err(format!("usage: {ECHO_ROLE} PORT GET_BACKUP_RESPONSE_FILE JOB_ID").into());
        };
        let port: u16 = port.parse()?;
        let get = pb::GetBackupResponse::decode(std::fs::read(answer_file)?.as_slice())?;
        let echo = Echo {
            get,
            job_id: job_id.clone(),
        };
        // Like the gateway's main: a multi-threaded runtime with one worker per core.
        let runtime = tokio::runtime::Runtime::new()?;
        runtime.block_on(async {
            Server::builder()
                .add_service(BackupServiceServer::new(echo))
                .serve(([127, 0, 0, 1], port).into())
                .await
        })?;
        Ok(())
    }

    #[tonic::async_trait]
    impl BackupService for Echo {
        async fn get_backup(&self, request: Request<pb::GetBackupRequest>) -> RpcResult<pb::GetBackupResponse> {
            black_box(request.into_inner());
            Ok(Response::new(self.get.clone()))
        }

        async fn create_backup(
            &self,
            request: Request<pb::CreateBackupRequest>,
        ) -> RpcResult<pb::CreateBackupResponse> {
            black_box(request.into_inner());
            // The same answer the gateway gives: the job id and its operation.
            Ok(Response::new(pb::CreateBackupResponse {
                job_id: self.job_id.clone(),
                operation: Some(vbs_gateway::proto::longrunning::Operation {
                    name: format!("projects/p/jobs/{}", self.job_id),
                    ..Default::default()
                }),
            }))
        }

        async fn restore_backup(&self, _: Request<pb::RestoreBackupRequest>) -> RpcResult<pb::RestoreBackupResponse> {
            Err(Status::unimplemented("echo"))
        }

        async fn delete_cloud_backup(
            &self,
            _: Request<pb::DeleteCloudBackupRequest>,
        ) -> RpcResult<pb::DeleteCloudBackupResponse> {
            Err(Status::unimplemented("echo"))
        }

        async fn create_native_backup(
            &self,
            _: Request<pb::CreateNativeBackupRequest>,
        ) -> RpcResult<pb::CreateNativeBackupResponse> {
            Err(Status::unimplemented("echo"))
        }

        async fn list_backups(&self, _: Request<pb::ListBackupsRequest>) -> RpcResult<pb::ListBackupsResponse> {
            Err(Status::unimplemented("echo"))
        }

        async fn list_backup_details(
            &self,
            _: Request<pb::ListBackupDetailsRequest>,
        ) -> RpcResult<pb::ListBackupDetailsResponse> {
            Err(Status::unimplemented("echo"))
        }

        async fn delete_backup(&self, _: Request<pb::DeleteBackupRequest>) -> RpcResult<pb::DeleteBackupResponse> {
            Err(Status::unimplemented("echo"))
        }

        async fn restore_native_backup(
            &self,
            _: Request<pb::RestoreNativeBackupRequest>,
        ) -> RpcResult<pb::RestoreNativeBackupResponse> {
            Err(Status::unimplemented("echo"))
        }

        async fn share_backup(&self, _: Request<pb::ShareBackupRequest>) -> RpcResult<pb::ShareBackupResponse> {
            Err(Status::unimplemented("echo"))
        }

        async fn list_shares(&self, _: Request<pb::ListSharesRequest>) -> RpcResult<pb::ListSharesResponse> {
            Err(Status::unimplemented("echo"))
        }

        async fn get_share(&self, _: Request<pb::GetShareRequest>) -> RpcResult<pb::GetShareResponse> {
            Err(Status::unimplemented("echo"))
        }

        async fn delete_share(&self, _: Request<pb::DeleteShareRequest>) -> RpcResult<pb::DeleteShareResponse> {
            Err(Status::unimplemented("echo"))
        }
    }
}

/// The direct REST client's own view of the VBS bodies it sends and reads,
/// typed as any client would type them (the gateway's models are its own).
mod wire {
    use serde::{Deserialize, Serialize};

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
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct JobStarted {
        pub(crate) job_id: String,
    }

    #[derive(Debug, Deserialize)]
    pub(crate) struct OneBackup {
        #[allow(dead_code)] // read only to be decoded
        pub(crate) backup: BackupDetail,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    #[allow(dead_code)] // read only to be decoded
    pub(crate) struct BackupDetail {
        pub(crate) id: String,
        pub(crate) name: Option<String>,
        pub(crate) status: Option<String>,
        pub(crate) description: Option<String>,
        pub(crate) links: Vec<Link>,
        pub(crate) availability_zone: Option<String>,
        pub(crate) volume_id: Option<String>,
        pub(crate) fail_reason: Option<String>,
        pub(crate) size: Option<i64>,
        pub(crate) object_count: Option<i64>,
        pub(crate) container: Option<String>,
        pub(crate) created_at: Option<String>,
        pub(crate) updated_at: Option<String>,
        pub(crate) data_timestamp: Option<String>,
        #[serde(rename = "os-bak-tenant-attr:tenant_id")]
        pub(crate) tenant_id: Option<String>,
        pub(crate) service_metadata: Option<serde_json::Value>,
        pub(crate) has_dependent_backups: Option<bool>,
        pub(crate) snapshot_id: Option<String>,
        pub(crate) is_incremental: Option<bool>,
    }

    #[derive(Debug, Default, Deserialize)]
    #[serde(default)]
    #[allow(dead_code)] // read only to be decoded
    pub(crate) struct Link {
        pub(crate) href: String,
        pub(crate) rel: String,
    }
}
