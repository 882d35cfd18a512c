//! What a Python service saves by calling VBS through the gateway: a Python client's own CPU and
//! latency per call, grpcio through the gateway against the SDK core's signer with requests straight
//! to the simulator, with the gateway's and simulator's CPU from /proc. `cargo bench --bench python`.

use std::fmt::Write as _;
use std::io::{BufRead as _, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tonic::transport::{Channel, Endpoint};
use vbs_gateway::proto::pb::{self, backup_service_client::BackupServiceClient, job_service_client::JobServiceClient};

mod support;
use support::{
    ACCESS_KEY, BenchResult, LATENCY_BLOCK, LATENCY_CALLS, Machine, Meter, OTHER_LOAD_WARNING, PROJECT_ID,
    READY_TIMEOUT, SECRET_KEY, Stack, Usage, VOLUME_ID, WARM_UP_CALLS, WorkDir, build_gateway_binary,
    clock_ticks_per_second, cpu_nanos, revision,
};

/// The bench's venv, made by clients/python/make-venv, unless VBS_GATEWAY_PYTHON names another python.
const DEFAULT_PYTHON: &str = "target/python-bench/bin/python";
const MAKE_VENV: &str = "clients/python/make-venv target/python-bench benches/python/requirements.txt";
const CLIENT_SCRIPT: &str = "benches/python/client.py";
const SETUP_BACKUP_NAME: &str = "bench-backup";

fn main() {
    if let Err(error) = run_bench() {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

fn run_bench() -> BenchResult<()> {
    let python = venv_python()?;
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let report = runtime.block_on(run(&python))?;
    print!("{}", report.render());
    Ok(())
}

/// The python to run the client with; without one, an error that says how to make it.
fn venv_python() -> BenchResult<PathBuf> {
    let python = std::env::var_os("VBS_GATEWAY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path(DEFAULT_PYTHON));
    if python.exists() {
        return Ok(python);
    }
    Err(format!(
        "no Python for the bench client at {}: make its venv with `{MAKE_VENV}` \
         (from the repository's root), or point VBS_GATEWAY_PYTHON at a python that has \
         benches/python/requirements.txt installed",
        python.display()
    )
    .into())
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

// ------------------------------------------------------------------ the run

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    GetBackup,
    CreateBackup,
}

impl Op {
    /// As the client script's commands name it.
    fn command(self) -> &'static str {
        match self {
            Op::GetBackup => "get",
            Op::CreateBackup => "create",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// grpcio through the gateway, which signs the REST call.
    Gateway,
    /// The SDK core's signer and requests, straight to the simulator.
    Direct,
}

impl Route {
    const ALL: [Route; 2] = [Route::Gateway, Route::Direct];

    /// As the client script's --route names it.
    fn slug(self) -> &'static str {
        match self {
            Route::Gateway => "gateway",
            Route::Direct => "direct",
        }
    }

    fn label(self) -> &'static str {
        match self {
            Route::Gateway => "gateway (grpcio)",
            Route::Direct => "direct (SDK signer + requests)",
        }
    }
}

async fn run(python: &Path) -> BenchResult<Report> {
    let binary = build_gateway_binary()?;
    let work = WorkDir::new()?;
    let secret_key_file = work.path.join("secret-key");
    std::fs::write(&secret_key_file, SECRET_KEY)?;
    let hz = clock_ticks_per_second()?;
    let machine = Machine::read();
    let python_version = python_version(python)?;
    eprintln!("machine: {} ({} cores); {python_version}", machine.cpu, machine.cores);

    // Reads change nothing: both routes read one backup on this stack.
    let stack = Stack::start(&binary, &secret_key_file).await?;
    let backup_id = make_backup(stack.gateway_port).await?;
    let setup = Setup {
        python,
        secret_key_file: &secret_key_file,
        backup_id: &backup_id,
        hz,
    };
    let mut rows = Vec::new();
    for op in [Op::GetBackup, Op::CreateBackup] {
        eprintln!("{op:?}: {WARM_UP_CALLS} warm-up calls, then {LATENCY_CALLS} per route in alternating blocks");
        let mut targets = Vec::new();
        for route in Route::ALL {
            targets.push(match op {
                Op::GetBackup => setup.target(route, &stack)?,
                // Each create leaves a backup and a job behind, and the simulator scans them all
                // on every request: each route gets a fresh simulator (and gateway), and the
                // alternating blocks keep the two growing alike.
                Op::CreateBackup => {
                    let fresh = Stack::start(&binary, &secret_key_file).await?;
                    setup.target(route, &fresh)?.keeping(fresh)
                }
            });
        }
        rows.extend(measure(op, &mut targets)?);
    }
    Ok(Report {
        machine,
        revision: revision(),
        python_version,
        rows,
    })
}

fn python_version(python: &Path) -> BenchResult<String> {
    let output = Command::new(python).arg("--version").output()?;
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// One backup for every GetBackup: created through the gateway, its job waited for.
async fn make_backup(gateway_port: u16) -> BenchResult<String> {
    let channel = connect(gateway_port).await?;
    let created = BackupServiceClient::new(channel.clone())
        .create_backup(pb::CreateBackupRequest {
            volume_id: VOLUME_ID.into(),
            name: SETUP_BACKUP_NAME.into(),
            ..Default::default()
        })
        .await?
        .into_inner();
    let waited = JobServiceClient::new(channel)
        .wait_job(pb::WaitJobRequest {
            job_id: created.job_id,
            timeout: Some(prost_types::Duration { seconds: 10, nanos: 0 }),
            ..Default::default()
        })
        .await?
        .into_inner();
    match waited.job.and_then(|job| job.result) {
        Some(pb::job::Result::Backup(backup)) if !backup.backup_id.is_empty() => Ok(backup.backup_id),
        other => Err(format!("the setup backup job did not make a backup: {other:?}").into()),
    }
}

async fn connect(port: u16) -> BenchResult<Channel> {
    let endpoint = Endpoint::from_shared(format!("http://127.0.0.1:{port}"))?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match endpoint.connect().await {
            Ok(channel) => return Ok(channel),
            Err(error) if Instant::now() > deadline => {
                return Err(format!("nothing accepts gRPC on port {port}: {error}").into());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// What every Python client is started with.
struct Setup<'a> {
    python: &'a Path,
    secret_key_file: &'a Path,
    backup_id: &'a str,
    hz: u64,
}

impl Setup<'_> {
    /// A Python client of `route` on `stack`, with a meter of the processes that serve it.
    fn target(&self, route: Route, stack: &Stack) -> BenchResult<Target> {
        let (port, mut processes) = match route {
            Route::Gateway => (
                stack.gateway_port,
                vec![("gateway", stack.gateway.pid()), ("simulator", stack.simulator.pid())],
            ),
            Route::Direct => (stack.simulator_port, vec![("simulator", stack.simulator.pid())]),
        };
        let client = PythonClient::start(self, route, port)?;
        processes.push(("python", client.pid()));
        Ok(Target {
            route,
            client,
            meter: Meter::new(self.hz, &processes),
            _stack: None,
        })
    }
}

/// One route's Python client and the processes whose CPU it reads.
struct Target {
    route: Route,
    client: PythonClient,
    meter: Meter,
    /// Keeps a fresh stack running for its route.
    _stack: Option<Stack>,
}

impl Target {
    fn keeping(mut self, stack: Stack) -> Target {
        self._stack = Some(stack);
        self
    }
}

// ---------------------------------------------------------- Python client

/// benches/python/client.py, driven over its stdin and stdout; killed when dropped.
struct PythonClient {
    child: Child,
    commands: ChildStdin,
    answers: BufReader<ChildStdout>,
}

/// The client's answer to one `OP CALLS` command.
#[derive(Debug, Deserialize)]
struct Block {
    calls: u64,
    failed: u64,
    first_error: Option<String>,
    /// The client's own CPU time over the block's calls (time.process_time_ns, all threads).
    cpu_ns: u64,
    latencies_us: Vec<f64>,
}

impl PythonClient {
    fn start(setup: &Setup, route: Route, port: u16) -> BenchResult<PythonClient> {
        let mut command = Command::new(setup.python);
        command
            .arg(repo_path(CLIENT_SCRIPT))
            .args(["--route", route.slug(), "--address", &format!("127.0.0.1:{port}")])
            .args([
                "--project-id",
                PROJECT_ID,
                "--backup-id",
                setup.backup_id,
                "--volume-id",
                VOLUME_ID,
            ]);
        if route == Route::Direct {
            // The secret stays in its file: never on a command line.
            command
                .args(["--access-key", ACCESS_KEY, "--secret-key-file"])
                .arg(setup.secret_key_file);
        }
        // requests reads the environment for proxy settings on every call, so the client gets
        // the environment the bench was started in, without the CARGO_* that `cargo bench` adds.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("CARGO") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start {} with {}: {e}", CLIENT_SCRIPT, setup.python.display()))?;
        let (Some(commands), Some(answers)) = (child.stdin.take(), child.stdout.take()) else {
            return Err("the Python client has no stdin or stdout".into());
        };
        Ok(PythonClient {
            child,
            commands,
            answers: BufReader::new(answers),
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `calls` sequential calls of `op`, as the client measured them.
    fn run(&mut self, op: Op, calls: usize) -> BenchResult<Block> {
        writeln!(self.commands, "{} {calls}", op.command())?;
        self.commands.flush()?;
        let mut line = String::new();
        if self.answers.read_line(&mut line)? == 0 {
            return Err(format!("the Python client ({CLIENT_SCRIPT}) ended: its error is above").into());
        }
        Ok(serde_json::from_str(&line)?)
    }
}

impl Drop for PythonClient {
    fn drop(&mut self) {
        if let Err(error) = self.child.kill() {
            eprintln!("could not stop the Python client: {error}");
        }
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------- measuring

/// One route's numbers for one operation.
struct Row {
    operation: Op,
    route: Route,
    /// Latency at concurrency 1 as the client timed it, milliseconds.
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    /// The client's own count, µs per successful call.
    client_cpu_us: f64,
    /// The same process read from /proc, as a cross-check.
    client_cpu_us_from_proc: f64,
    /// None on the direct route, which the gateway is not on.
    gateway_cpu_us: Option<f64>,
    simulator_cpu_us: f64,
    failed: u64,
    first_error: Option<String>,
    /// CPU of processes outside the bench during the timed blocks, % of the machine.
    others_cpu_percent: f64,
}

/// What one route's blocks add up to.
#[derive(Default)]
struct Tally {
    latencies_us: Vec<f64>,
    ok: u64,
    failed: u64,
    first_error: Option<String>,
    client_cpu_ns: u64,
    busy: Duration,
    usage: Option<Usage>,
}

impl Tally {
    fn count(&mut self, block: Block) {
        self.ok += block.calls - block.failed;
        self.failed += block.failed;
        if self.first_error.is_none() {
            self.first_error = block.first_error;
        }
    }
}

/// After a warm-up, calls go in blocks, one block per route in turn, so that a busy
/// neighbour or a slow minute hits both routes alike.
fn measure(op: Op, targets: &mut [Target]) -> BenchResult<Vec<Row>> {
    let mut tallies: Vec<Tally> = targets.iter().map(|_| Tally::default()).collect();
    for (target, tally) in targets.iter_mut().zip(&mut tallies) {
        let warm_up = target.client.run(op, WARM_UP_CALLS)?;
        tally.failed += warm_up.failed;
        tally.first_error = warm_up.first_error;
    }
    for _ in 0..LATENCY_CALLS / LATENCY_BLOCK {
        for (target, tally) in targets.iter_mut().zip(&mut tallies) {
            let before = target.meter.sample();
            let started = Instant::now();
            let mut block = target.client.run(op, LATENCY_BLOCK)?;
            tally.busy += started.elapsed();
            let used = target.meter.sample().since(&before);
            tally.usage = Some(match tally.usage.take() {
                Some(total) => total.plus(&used),
                None => used,
            });
            tally.client_cpu_ns += block.cpu_ns;
            tally.latencies_us.append(&mut block.latencies_us);
            tally.count(block);
        }
    }
    Ok(targets
        .iter()
        .zip(tallies)
        .map(|(target, tally)| row(op, target, tally))
        .collect())
}

fn row(op: Op, target: &Target, mut tally: Tally) -> Row {
    tally.latencies_us.sort_by(f64::total_cmp);
    let percentile_ms = |p: f64| {
        let samples = &tally.latencies_us;
        let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len().max(1));
        samples.get(rank - 1).map_or(f64::NAN, |us| us / 1e3)
    };
    let usage = tally.usage.unwrap_or_default();
    let cpu = target.meter.per_call(&usage, tally.ok);
    Row {
        operation: op,
        route: target.route,
        p50_ms: percentile_ms(0.50),
        p90_ms: percentile_ms(0.90),
        p99_ms: percentile_ms(0.99),
        client_cpu_us: tally.client_cpu_ns as f64 / 1e3 / tally.ok.max(1) as f64,
        client_cpu_us_from_proc: cpu.get("python").copied().unwrap_or(f64::NAN),
        gateway_cpu_us: cpu.get("gateway").copied(),
        simulator_cpu_us: cpu.get("simulator").copied().unwrap_or(f64::NAN),
        failed: tally.failed,
        first_error: tally.first_error,
        others_cpu_percent: target.meter.others_percent(&usage, tally.busy.as_secs_f64()),
    }
}

// ---------------------------------------------------------------- report

struct Report {
    machine: Machine,
    /// The commit measured, "+dirty" when the work tree had changes.
    revision: String,
    python_version: String,
    rows: Vec<Row>,
}

impl Report {
    fn find(&self, op: Op, route: Route) -> Option<&Row> {
        self.rows.iter().find(|r| r.operation == op && r.route == route)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nmachine: {}, {} cores, Linux {}; tree {}; {}; {LATENCY_CALLS} sequential calls per route \
             after {WARM_UP_CALLS} warm-up calls, in alternating blocks of {LATENCY_BLOCK}",
            self.machine.cpu, self.machine.cores, self.machine.kernel, self.revision, self.python_version
        );
        self.render_table(&mut out);
        self.render_savings(&mut out);
        self.render_warnings(&mut out);
        out
    }

    fn render_table(&self, out: &mut String) {
        let cpu_source = if cpu_nanos(std::process::id()).is_some() {
            "/proc/PID/task/*/schedstat"
        } else {
            "/proc/PID/stat clock ticks"
        };
        let _ = writeln!(
            out,
            "\nLatency as the Python client timed each call; CPU per successful call: the client's from its \
             own time.process_time_ns(), the gateway's and simulator's from {cpu_source}\n"
        );
        let _ = writeln!(
            out,
            "| operation | route | p50 ms | p90 ms | p99 ms | Python client CPU us/call | gateway CPU us/call \
             | simulator CPU us/call | failed | other load |"
        );
        let _ = writeln!(out, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|");
        for row in &self.rows {
            let _ = writeln!(
                out,
                "| {:?} | {} | {:.3} | {:.3} | {:.3} | {:.1} | {} | {:.1} | {} | {:.0}% |",
                row.operation,
                row.route.label(),
                row.p50_ms,
                row.p90_ms,
                row.p99_ms,
                row.client_cpu_us,
                row.gateway_cpu_us.map_or("-".to_owned(), |v| format!("{v:.1}")),
                row.simulator_cpu_us,
                row.failed,
                row.others_cpu_percent
            );
        }
        let drift = self
            .rows
            .iter()
            .map(|r| (r.client_cpu_us_from_proc / r.client_cpu_us - 1.0).abs() * 100.0)
            .fold(0.0, f64::max);
        let _ = writeln!(
            out,
            "\n(cross-check: the clients' CPU read from /proc differs from their own count by at most {drift:.1}%)"
        );
    }

    fn render_savings(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "\n| operation | what the gateway route changes for the Python service | value |"
        );
        let _ = writeln!(out, "|---|---|--:|");
        for op in [Op::GetBackup, Op::CreateBackup] {
            let (Some(gateway), Some(direct)) = (self.find(op, Route::Gateway), self.find(op, Route::Direct)) else {
                continue;
            };
            let _ = writeln!(
                out,
                "| {op:?} | client CPU per call, direct / gateway = {:.1} / {:.1} us | {:.2}x |",
                direct.client_cpu_us,
                gateway.client_cpu_us,
                direct.client_cpu_us / gateway.client_cpu_us
            );
            let _ = writeln!(
                out,
                "| {op:?} | p50, gateway - direct = {:.3} - {:.3} ms | {:+.3} ms |",
                gateway.p50_ms,
                direct.p50_ms,
                gateway.p50_ms - direct.p50_ms
            );
            if let Some(gateway_cpu) = gateway.gateway_cpu_us {
                // The saving is not free: the gateway process does the signing and REST work now.
                let _ = writeln!(
                    out,
                    "| {op:?} | (context) client + gateway CPU per call vs direct client = {:.1} + {:.1} vs {:.1} us | {:.2}x |",
                    gateway.client_cpu_us,
                    gateway_cpu,
                    direct.client_cpu_us,
                    (gateway.client_cpu_us + gateway_cpu) / direct.client_cpu_us
                );
            }
        }
    }

    fn render_warnings(&self, out: &mut String) {
        let busiest = self.rows.iter().map(|r| r.others_cpu_percent).fold(0.0, f64::max);
        if busiest > OTHER_LOAD_WARNING {
            let _ = writeln!(
                out,
                "\n!!! other processes used up to {busiest:.0}% of the machine during a route's blocks: \
                 absolute numbers are skewed; the ratios, measured side by side, less so"
            );
        }
        let failed: u64 = self.rows.iter().map(|r| r.failed).sum();
        if failed == 0 {
            return;
        }
        let _ = writeln!(
            out,
            "\n!!! {failed} CALLS FAILED: these numbers do not describe working calls"
        );
        for row in self.rows.iter().filter(|r| r.failed > 0) {
            let _ = writeln!(
                out,
                "!!! {:?} via {}: {} failed, first: {}",
                row.operation,
                row.route.label(),
                row.failed,
                row.first_error.as_deref().unwrap_or("(no message)")
            );
        }
    }
}
