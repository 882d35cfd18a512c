//! What the benches that run the real gateway share: starting the simulator and a gateway in front
//! of it as processes of their own, one plan of sequential calls, and reading CPU time from /proc.

use std::collections::BTreeMap;
use std::error::Error;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

pub(crate) type BenchResult<T> = Result<T, Box<dyn Error>>;

/// How long a started process may take to accept connections.
pub(crate) const READY_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) const ACCESS_KEY: &str = "BENCHAKID00000000001";
pub(crate) const SECRET_KEY: &str = "benchSecretKeyForTheGatewayOverhead00001";
pub(crate) const PROJECT_ID: &str = "0b5e4d3c2a1f49e8b7c6d5e4f3a2b1c0";
/// The first demo disk of the simulator (10 GB, available).
pub(crate) const VOLUME_ID: &str = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a01";

// ------------------------------------------------------------- latency plan

/// Sequential calls per route before the timed ones: connections, caches,
/// a client's lazy imports.
pub(crate) const WARM_UP_CALLS: usize = 500;
/// Timed sequential calls per route (p99 rests on the slowest 30), made in
/// blocks of LATENCY_BLOCK that alternate between the routes, so a busy
/// neighbour or a slow minute hits every route alike.
pub(crate) const LATENCY_CALLS: usize = 3_000;
pub(crate) const LATENCY_BLOCK: usize = 250;
/// "Other load" above this (% of the machine) gets a warning under the tables.
pub(crate) const OTHER_LOAD_WARNING: f64 = 5.0;

// ------------------------------------------------------------- CPU time

/// Reads the CPU time of a set of processes: those serving a route, and this
/// one (the client).
#[derive(Clone)]
pub(crate) struct Meter {
    hz: u64,
    processes: Vec<(&'static str, u32)>,
}

impl Meter {
    pub(crate) fn new(hz: u64, processes: &[(&'static str, u32)]) -> Meter {
        let mut processes = processes.to_vec();
        processes.push(("client", std::process::id()));
        Meter { hz, processes }
    }

    pub(crate) fn sample(&self) -> Usage {
        Usage {
            ticks: self.processes.iter().map(|(_, pid)| cpu_ticks(*pid)).collect(),
            nanos: self.processes.iter().map(|(_, pid)| cpu_nanos(*pid)).collect(),
            machine: machine_busy_ticks(),
        }
    }

    /// CPU microseconds per call of each process: from the per-thread
    /// nanosecond counters when the kernel keeps them, else from clock ticks.
    pub(crate) fn per_call(&self, usage: &Usage, calls: u64) -> BTreeMap<&'static str, f64> {
        if usage.nanos.iter().any(Option::is_none) {
            return self.per_call_from_ticks(usage, calls);
        }
        self.processes
            .iter()
            .zip(&usage.nanos)
            .map(|((name, _), nanos)| (*name, nanos.unwrap_or(0) as f64 / 1e3 / calls.max(1) as f64))
            .collect()
    }

    /// The same from utime + stime in /proc/PID/stat (10 ms resolution at 100 Hz).
    pub(crate) fn per_call_from_ticks(&self, usage: &Usage, calls: u64) -> BTreeMap<&'static str, f64> {
        self.processes
            .iter()
            .zip(&usage.ticks)
            .map(|((name, _), ticks)| (*name, *ticks as f64 * 1e6 / self.hz as f64 / calls.max(1) as f64))
            .collect()
    }

    /// CPU that processes outside this meter used, as a percentage of what
    /// all cores could do in `seconds`: load that skews the numbers.
    /// The machine's busy time comes in clock ticks, charged a whole tick at
    /// a time, so over a short phase this is only good to a few percent.
    pub(crate) fn others_percent(&self, usage: &Usage, seconds: f64) -> f64 {
        let ours = match usage.nanos.iter().copied().sum::<Option<u64>>() {
            Some(nanos) => nanos as f64 * self.hz as f64 / 1e9,
            None => usage.ticks.iter().sum::<u64>() as f64,
        };
        let others = (usage.machine as f64 - ours).max(0.0);
        others * 100.0 / (seconds * self.hz as f64 * cores() as f64)
    }
}

/// CPU counters of the metered processes (clock ticks, and ns where the
/// kernel has them) and busy ticks of the whole machine: a reading, or the
/// difference of two.
#[derive(Debug, Default)]
pub(crate) struct Usage {
    ticks: Vec<u64>,
    nanos: Vec<Option<u64>>,
    machine: u64,
}

impl Usage {
    /// What was used from `earlier` to this reading.
    pub(crate) fn since(&self, earlier: &Usage) -> Usage {
        Usage {
            ticks: self
                .ticks
                .iter()
                .zip(&earlier.ticks)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect(),
            nanos: self
                .nanos
                .iter()
                .zip(&earlier.nanos)
                .map(|(a, b)| Some(a.as_ref()?.saturating_sub(*b.as_ref()?)))
                .collect(),
            machine: self.machine.saturating_sub(earlier.machine),
        }
    }

    pub(crate) fn plus(&self, other: &Usage) -> Usage {
        Usage {
            ticks: self.ticks.iter().zip(&other.ticks).map(|(a, b)| a + b).collect(),
            nanos: self
                .nanos
                .iter()
                .zip(&other.nanos)
                .map(|(a, b)| Some(a.as_ref()? + b.as_ref()?))
                .collect(),
            machine: self.machine + other.machine,
        }
    }
}

/// Busy time of all cores (user, nice, system, irq, softirq, steal) from /proc/stat.
pub(crate) fn machine_busy_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0;
    };
    let fields: Vec<u64> = line.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    [0, 1, 2, 5, 6, 7].iter().filter_map(|&i| fields.get(i)).sum()
}

/// utime + stime of a process (all its threads), from /proc/PID/stat; 0 when
/// it cannot be read (the report then shows no CPU for it).
pub(crate) fn cpu_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // The command name (field 2) may hold spaces; fields after it split cleanly.
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime is field 14, stime field 15.
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok()).unwrap_or(0);
    field(14) + field(15)
}

/// Time on CPU of all threads of a process, in ns, summed from
/// /proc/PID/task/*/schedstat (kernels with schedstats). A thread that ends
/// takes its time with it, so this suits processes with long-lived threads.
pub(crate) fn cpu_nanos(pid: u32) -> Option<u64> {
    let mut total = 0;
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).ok()? {
        let schedstat = std::fs::read_to_string(task.ok()?.path().join("schedstat")).ok()?;
        total += schedstat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(total)
}

/// `git describe`-like name of the measured tree, or "unknown" outside git.
pub(crate) fn revision() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "unknown".into();
    };
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty { format!("{commit}+dirty") } else { commit }
}

pub(crate) fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

pub(crate) fn clock_ticks_per_second() -> BenchResult<u64> {
    let output = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(output.stdout)?.trim().parse()?)
}

// ------------------------------------------------------------- processes

/// Builds the release gateway binary (a no-op when it is current) and returns its path.
pub(crate) fn build_gateway_binary() -> BenchResult<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--release", "--bin", "vbs-gateway", "--manifest-path"])
        .arg(manifest_dir.join("Cargo.toml"));
    // cargo runs this bench with the package's CARGO_PKG_*, CARGO_MANIFEST_*
    // (and more) set; build scripts such as ring's rerun when those change,
    // so passing them on would rebuild half the tree on every run, and again
    // on the next plain `cargo build`.
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        let set_by_cargo_run = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_MANIFEST_")
            || matches!(
                &*name,
                "CARGO_CRATE_NAME" | "CARGO_BIN_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR" | "OUT_DIR"
            );
        if set_by_cargo_run {
            build.env_remove(&key);
        }
    }
    let status = build.status()?;
    if !status.success() {
        return Err(format!("cargo build --release --bin vbs-gateway failed: {status}").into());
    }
    let target_dir = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => manifest_dir.join(dir),
        None => manifest_dir.join("target"),
    };
    Ok(target_dir.join("release").join("vbs-gateway"))
}

/// A port that was free a moment ago (the race with other programs is accepted).
pub(crate) fn free_port() -> BenchResult<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A child process, killed when dropped (also when the bench panics).
pub(crate) struct Process {
    name: &'static str,
    child: std::process::Child,
}

impl Process {
    pub(crate) fn spawn(name: &'static str, command: &mut Command) -> BenchResult<Process> {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start the {name}: {e}"))?;
        Ok(Process { name, child })
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if let Err(error) = self.child.kill() {
            eprintln!("could not stop the {}: {error}", self.name);
        }
        let _ = self.child.wait();
    }
}

/// A standalone simulator checking AK/SK signatures, with jobs that finish
/// at once, and a gateway in front of it signing with the same key.
pub(crate) struct Stack {
    // Dropped in field order: the gateway first.
    pub(crate) gateway: Process,
    pub(crate) simulator: Process,
    pub(crate) simulator_port: u16,
    pub(crate) gateway_port: u16,
}

impl Stack {
    pub(crate) async fn start(binary: &Path, secret_key_file: &Path) -> BenchResult<Stack> {
        let simulator_port = free_port()?;
        let simulator = Process::spawn(
            "simulator",
            Command::new(binary)
                .arg("simulator")
                .args(["--listen", &format!("127.0.0.1:{simulator_port}")])
                .args(["--access-key", ACCESS_KEY, "--secret-key-file"])
                .arg(secret_key_file)
                .args(["--sim-job-init", "0s", "--sim-job-run", "0s", "--log-filter", "warn"]),
        )?;
        wait_for_tcp(simulator_port).await?;
        let gateway_port = free_port()?;
        let gateway = Process::spawn(
            "gateway",
            Command::new(binary)
                .args(["--listen", &format!("127.0.0.1:{gateway_port}")])
                .args(["--endpoint", &format!("http://127.0.0.1:{simulator_port}")])
                .args([
                    "--project-id",
                    PROJECT_ID,
                    "--access-key",
                    ACCESS_KEY,
                    "--secret-key-file",
                ])
                .arg(secret_key_file)
                // One client makes every call: the per-caller rate would measure itself.
                .args(["--caller-rate", "0", "--max-watches-per-caller", "0"])
                // The per-project upstream budget (10 requests/s by default) would hold
                // every call after the first 20 to a 100 ms pace: these benches measure
                // a call's cost, not the budget.
                .args(["--upstream-rate", "0"])
                .args(["--log-filter", "warn"]),
        )?;
        wait_for_tcp(gateway_port).await?;
        Ok(Stack {
            gateway,
            simulator,
            simulator_port,
            gateway_port,
        })
    }
}

pub(crate) async fn wait_for_tcp(port: u16) -> BenchResult<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(_) => return Ok(()),
            Err(error) if Instant::now() > deadline => {
                return Err(format!("nothing listens on port {port}: {error}").into());
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A private scratch directory (secret key file, canned answer), removed at the end.
pub(crate) struct WorkDir {
    pub(crate) path: PathBuf,
}

impl WorkDir {
    pub(crate) fn new() -> BenchResult<WorkDir> {
        let path = std::env::temp_dir().join(format!("vbs-gateway-bench-{}", std::process::id()));
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir { path })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct Machine {
    pub(crate) cpu: String,
    pub(crate) cores: usize,
    pub(crate) kernel: String,
}

impl Machine {
    pub(crate) fn read() -> Machine {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu = cpuinfo
            .lines()
            .find_map(|line| {
                line.strip_prefix("model name")?
                    .split_once(':')
                    .map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown".into());
        let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
        Machine {
            cpu,
            cores: cores(),
            kernel: kernel.trim().to_owned(),
        }
    }
}
