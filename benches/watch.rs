//! Job watching at scale: 100,000 concurrent WatchJob streams over 1,000 jobs
//! (`-- --jobs N --watchers-per-job M` for other sizes). Measures upstream
//! polls per job per poll interval (against per-watcher GetJob polling, side
//! by side), the gateway's memory per open watch, the delay from the poll that
//! sees a change to each watcher receiving it, and unary latency while the
//! changes fan out (GetJob, which calls upstream, and the health check, which
//! the gateway answers itself). Measures; asserts nothing. Run with
//! `cargo bench --bench watch`.
//!
//! Two processes of this binary: this one runs only the gateway, so its
//! counting allocator sees only gateway memory; a child (the "driver") runs
//! the simulator and all gRPC clients, and steps the simulator's clock. They
//! talk in lines over the child's stdin and stdout.

use std::io::Write as _;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime};

use cap::Cap;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::TcpListener;
use tokio::process::{ChildStdin, ChildStdout, Command};
use vbs_gateway::app::App;
use vbs_gateway::config::Config;
use vbs_gateway::watch::WatchConfig;

/// The gateway's own allocator (mimalloc, as in src/main.rs), counting the
/// bytes it holds (no limit set).
#[global_allocator]
static GLOBAL: Cap<mimalloc::MiMalloc> = Cap::new(mimalloc::MiMalloc, usize::MAX);

/// Default size: one client connection per job, its watchers multiplexed on it.
const JOBS: usize = 1000;
const WATCHERS_PER_JOB: usize = 100;
/// Fixed (no backoff), so "polls per interval" has one meaning.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// How long poll counts are taken while every watch is open.
const STEADY_WINDOW: Duration = Duration::from_secs(10);
/// Per-watcher polling for comparison: this many more jobs, each polled with
/// GetJob by as many pollers as a job has watchers, at POLL_INTERVAL, for
/// COMPARE_WINDOW.
const COMPARE_JOBS: usize = 10;
const COMPARE_WINDOW: Duration = Duration::from_secs(5);
/// The gateway measures memory this long after every watch got its first state.
const SETTLE: Duration = Duration::from_secs(1);
/// Simulated time a job spends in INIT and in RUNNING.
const JOB_INIT: Duration = Duration::from_secs(1);
const JOB_RUN: Duration = Duration::from_secs(1);
/// The jobs start in this many cohorts, COHORT_GAP of simulated time apart;
/// in the spread phase one cohort changes every SPREAD_STEP of real time.
const COHORTS: usize = 10;
const COHORT_GAP: Duration = Duration::from_millis(100);
const SPREAD_STEP: Duration = Duration::from_secs(1);
/// Pause between the unary calls that probe the gateway during the fan-out.
const PROBE_PAUSE: Duration = Duration::from_millis(2);
const ROLE: &str = "VBS_WATCH_BENCH_ROLE";

/// How many jobs and watchers per job: `--jobs N --watchers-per-job M`.
#[derive(Clone, Copy)]
struct Size {
    jobs: usize,
    watchers_per_job: usize,
    /// Each connection opens its watches one after another (each once the
    /// previous one's response headers came), not all in the same instant.
    in_turn: bool,
    /// How many of the COHORTS cohorts of jobs end in the measured burst
    /// (`--burst-cohorts K`, 1 to COHORTS): the burst's size.
    burst_cohorts: usize,
}

impl Size {
    fn from_args() -> Size {
        let mut size = Size {
            jobs: JOBS,
            watchers_per_job: WATCHERS_PER_JOB,
            in_turn: false,
            burst_cohorts: COHORTS,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .and_then(|v| v.parse::<usize>().ok())
                    .filter(|&v| v > 0)
                    .unwrap_or_else(|| panic!("{arg} takes a positive number"))
            };
            match arg.as_str() {
                "--jobs" => size.jobs = value(),
                "--watchers-per-job" => size.watchers_per_job = value(),
                "--open-in-turn" => size.in_turn = true,
                "--burst-cohorts" => {
                    size.burst_cohorts = value();
                    assert!(size.burst_cohorts <= COHORTS, "--burst-cohorts takes 1 to {COHORTS}");
                }
                // cargo bench passes --bench; anything else is a mistake.
                "--bench" => {}
                other => panic!(
                    "unknown argument {other}; expected --jobs N --watchers-per-job M [--open-in-turn] [--burst-cohorts K]"
                ),
            }
        }
        size
    }

    fn watchers(self) -> usize {
        self.jobs * self.watchers_per_job
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let size = Size::from_args();
    if std::env::var(ROLE).is_ok_and(|role| role == "driver") {
        runtime.block_on(driver::run(size));
    } else {
        runtime.block_on(gateway_side(size));
    }
}

fn watch_config() -> WatchConfig {
    WatchConfig {
        poll_initial: POLL_INTERVAL,
        poll_max: POLL_INTERVAL,
        poll_backoff: 1.0,
        poll_jitter: 0.1,
        // Quiet streams: no heartbeat in the measured windows.
        heartbeat: Duration::from_secs(600),
        terminal_ttl: Duration::from_secs(600),
        ..WatchConfig::default()
    }
}

/// Net bytes held now that were not held at `baseline`.
fn net_bytes(baseline: &i64) -> i64 {
    GLOBAL.allocated() as i64 - baseline
}

/// CPU time (user + system) used so far by process `pid`, from /proc.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .expect("stat format")
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>().expect("utime") + fields[12].parse::<u64>().expect("stime");
    // Linux reports these in USER_HZ, 100 on every platform it runs on.
    Duration::from_millis(ticks * 10)
}

async fn expect_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    lines
        .next_line()
        .await
        .expect("read from the driver")
        .expect("the driver ended early")
}

async fn send(to: &mut ChildStdin, line: &str) {
    to.write_all(format!("{line}\n").as_bytes())
        .await
        .expect("write to the driver");
    to.flush().await.expect("flush to the driver");
}

/// The gateway process: serves, measures its own memory and poll counts, and
/// prints the table.
async fn gateway_side(size: Size) {
    let mut child = Command::new(std::env::current_exe().expect("own path"))
        .args(std::env::args().skip(1))
        .env(ROLE, "driver")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start the driver");
    let mut to_driver = child.stdin.take().expect("driver stdin");
    let mut from_driver = BufReader::new(child.stdout.take().expect("driver stdout")).lines();

    let sim_url = expect_line(&mut from_driver).await;
    let sim_url = sim_url.strip_prefix("SIM ").expect("SIM <url>");
    let mut config = Config::for_testing(sim_url.parse().expect("simulator URL"));
    config.watch = watch_config();
    // As the binary serves by default: one serving thread per core.
    config.front_door.serve_threads = std::thread::available_parallelism().map_or(1, usize::from);
    let app = App::new(&config).expect("gateway config");
    let hub = app.hub_monitor();
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.serve(listener, async {
        let _ = stopped.await;
    }));
    send(&mut to_driver, &format!("GATEWAY {address}")).await;

    let mut baseline = None;
    let mut open = (0i64, hub.stats());
    let mut results = Vec::new();
    loop {
        let line = expect_line(&mut from_driver).await;
        match line.split_once(' ').map_or((line.as_str(), ""), |(a, b)| (a, b)) {
            // Jobs exist, nothing watches them yet: memory from here on is the watches'.
            ("JOBS", _) => {
                baseline = Some(GLOBAL.allocated() as i64);
                send(&mut to_driver, "OK").await;
            }
            ("OPEN", _) => {
                tokio::time::sleep(SETTLE).await;
                let baseline = baseline.as_ref().expect("JOBS before OPEN");
                open = (net_bytes(baseline), hub.stats());
                send(&mut to_driver, "OK").await;
            }
            ("POLLS", _) => send(&mut to_driver, &format!("POLLS {}", hub.stats().polls_total)).await,
            ("RESULT", result) => results.push(result.to_string()),
            ("DONE", _) => break,
            _ => panic!("unexpected line from the driver: {line}"),
        }
    }
    // Every stream ended: what is still held is what the gateway keeps (the
    // remembered terminal states, pooled connections, the allocator's caches).
    while hub.stats().active_watchers > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let after = baseline.as_ref().map_or(0, net_bytes);
    let _ = stop.send(());
    let _ = server.await;
    let _ = child.wait().await;

    let (open_bytes, open_stats) = open;
    let watchers = size.watchers() as i64;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "\nJob watching: {} jobs x {} watchers = {watchers} WatchJob streams on {} connections ({}), poll interval {POLL_INTERVAL:?} (+-10% jitter)",
        size.jobs,
        size.watchers_per_job,
        size.jobs,
        if size.in_turn {
            "each opening its watches one after another"
        } else {
            "each opening its watches at once"
        }
    );
    let _ = writeln!(out, "{:<58} {:>14}", "measure", "value");
    for result in results {
        if let Some((name, value)) = result.split_once('=') {
            let _ = writeln!(out, "{name:<58} {value:>14}");
        }
    }
    let _ = writeln!(
        out,
        "{:<58} {:>14}",
        "gateway memory held with every watch open (net bytes)", open_bytes
    );
    let _ = writeln!(
        out,
        "{:<58} {:>14}",
        "gateway memory per watcher (bytes)",
        open_bytes / watchers
    );
    let _ = writeln!(
        out,
        "{:<58} {:>14}",
        "  hub then: pollers / watchers",
        format!("{} / {}", open_stats.active_pollers, open_stats.active_watchers)
    );
    let _ = writeln!(
        out,
        "{:<58} {:>14}",
        "gateway memory still held after every watch ended", after
    );
    let _ = writeln!(
        out,
        "reproduce: cargo bench --bench watch -- --jobs {} --watchers-per-job {} --burst-cohorts {}{}",
        size.jobs,
        size.watchers_per_job,
        size.burst_cohorts,
        if size.in_turn { " --open-in-turn" } else { "" }
    );
}

/// The child: simulator, clients, clock.
mod driver {

    use tokio::io::{AsyncBufReadExt, BufReader, Lines, Stdin};
    use tonic::transport::Channel;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    use vbs_gateway::config::DEMO_PROJECT_ID;
    use vbs_gateway::proto::pb::{
        self, JobStatus, backup_service_client::BackupServiceClient, job_service_client::JobServiceClient,
        watch_job_response,
    };
    use vbs_simulator::{JobTiming, Simulator, SimulatorConfig, VolumeSpec};

    use super::*;

    /// What one watcher saw: the delay of each change it received.
    #[derive(Default)]
    struct Seen {
        running: Vec<Duration>,
        success: Vec<Duration>,
    }

    fn say(line: &str) {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}").expect("write to the gateway process");
        out.flush().expect("flush to the gateway process");
    }

    fn result(name: &str, value: impl std::fmt::Display) {
        say(&format!("RESULT {name}={value}"));
    }

    async fn hear(lines: &mut Lines<BufReader<Stdin>>) -> String {
        lines
            .next_line()
            .await
            .expect("read from the gateway process")
            .expect("the gateway process ended early")
    }

    async fn hub_polls(lines: &mut Lines<BufReader<Stdin>>) -> u64 {
        say("POLLS");
        let line = hear(lines).await;
        line.strip_prefix("POLLS ")
            .and_then(|n| n.parse().ok())
            .expect("POLLS <n>")
    }

    fn job_path(job_id: &str) -> String {
        format!("/v1/{DEMO_PROJECT_ID}/jobs/{job_id}")
    }

    /// GETs the simulator received for each of `job_ids`.
    fn gets(sim: &Simulator, job_ids: &[String]) -> usize {
        let paths: std::collections::HashSet<String> = job_ids.iter().map(|id| job_path(id)).collect();
        sim.requests()
            .iter()
            .filter(|r| r.method == "GET" && paths.contains(&r.path))
            .count()
    }

    fn percentile(sorted: &[Duration], p: f64) -> Duration {
        if sorted.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
        sorted[rank.clamp(1, sorted.len()) - 1]
    }

    fn ms(d: Duration) -> String {
        format!("{:.2}", d.as_secs_f64() * 1000.0)
    }

    pub(crate) async fn run(size: Size) {
        let Size {
            jobs, watchers_per_job, ..
        } = size;
        let mut from_gateway = BufReader::new(tokio::io::stdin()).lines();
        let volumes = (0..jobs + COMPARE_JOBS)
            .map(|i| {
                format!("6f1a8c52-0b3e-4d5a-9c7e-{i:012x}:10")
                    .parse::<VolumeSpec>()
                    .expect("volume")
            })
            .collect();
        let sim_config = SimulatorConfig {
            volumes,
            job_timing: JobTiming {
                init: JOB_INIT,
                running: JOB_RUN,
            },
            ..SimulatorConfig::for_testing()
        };
        let sim = Simulator::start(
            sim_config,
            tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        )
        .await
        .expect("simulator");
        say(&format!("SIM {}", sim.url()));
        let gateway = hear(&mut from_gateway).await;
        let address = gateway.strip_prefix("GATEWAY ").expect("GATEWAY <address>").to_string();
        let connect = || async {
            Channel::from_shared(format!("http://{address}"))
                .expect("URL")
                .connect()
                .await
                .expect("connect to the gateway")
        };

        let setup = connect().await;
        let mut backups = BackupServiceClient::new(setup.clone());
        let mut job_ids = Vec::new();
        let cohort = jobs.div_ceil(COHORTS);
        for (index, volume) in sim.volumes().iter().enumerate() {
            // Each cohort of jobs starts COHORT_GAP of simulated time after the last.
            if index > 0 && index < jobs && index % cohort == 0 {
                sim.advance(COHORT_GAP);
            }
            let request = pb::CreateBackupRequest {
                volume_id: volume.id.clone(),
                name: "bench".into(),
                ..Default::default()
            };
            job_ids.push(
                backups
                    .create_backup(request)
                    .await
                    .expect("CreateBackup")
                    .into_inner()
                    .job_id,
            );
        }
        let compare_ids = job_ids.split_off(jobs);
        say("JOBS");
        hear(&mut from_gateway).await;

        // One connection per job, its watchers multiplexed on it.
        let received_first = Arc::new(AtomicUsize::new(0));
        let mut watchers = Vec::new();
        for job_id in &job_ids {
            let client = JobServiceClient::new(connect().await);
            let mut previous_opened: Option<tokio::sync::oneshot::Receiver<()>> = None;
            for _ in 0..watchers_per_job {
                let mut client = client.clone();
                let job_id = job_id.clone();
                let received_first = received_first.clone();
                let (opened, next_may_open) = tokio::sync::oneshot::channel();
                let wait_for = if size.in_turn {
                    previous_opened.replace(next_may_open)
                } else {
                    None
                };
                watchers.push(tokio::spawn(async move {
                    if let Some(previous) = wait_for {
                        let _ = previous.await;
                    }
                    let request = pb::WatchJobRequest {
                        job_id,
                        ..Default::default()
                    };
                    let mut stream = client.watch_job(request).await.expect("WatchJob").into_inner();
                    let _ = opened.send(());
                    let mut seen = Seen::default();
                    while let Some(message) = stream.message().await.expect("watch ends OK") {
                        let arrived = SystemTime::now();
                        let Some(watch_job_response::Event::Job(job)) = message.event else {
                            continue;
                        };
                        let observed = message
                            .observed_at
                            .and_then(|t| SystemTime::try_from(t).ok())
                            .expect("observed_at");
                        let delay = arrived.duration_since(observed).unwrap_or_default();
                        match job.status() {
                            JobStatus::Init => {
                                received_first.fetch_add(1, Ordering::Relaxed);
                            }
                            JobStatus::Running => seen.running.push(delay),
                            _ => seen.success.push(delay),
                        }
                    }
                    seen
                }));
            }
        }
        let all = size.watchers();
        while received_first.load(Ordering::Relaxed) < all {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        say("OPEN");
        hear(&mut from_gateway).await;

        // Shared polling: every job watched by `watchers_per_job` streams.
        let gets_before = gets(&sim, &job_ids);
        let polls_before = hub_polls(&mut from_gateway).await;
        tokio::time::sleep(STEADY_WINDOW).await;
        let shared_gets = gets(&sim, &job_ids) - gets_before;
        let hub_polls_in_window = hub_polls(&mut from_gateway).await - polls_before;
        let intervals = STEADY_WINDOW.as_secs_f64() / POLL_INTERVAL.as_secs_f64();

        // Per-watcher polling, side by side: the same number of pollers per
        // job, each calling GetJob at the same interval.
        let compare_before = gets(&sim, &compare_ids);
        let mut pollers = Vec::new();
        for job_id in &compare_ids {
            let client = JobServiceClient::new(connect().await);
            for _ in 0..watchers_per_job {
                let mut client = client.clone();
                let job_id = job_id.clone();
                pollers.push(tokio::spawn(async move {
                    // Spread over the first interval, like independent clients.
                    tokio::time::sleep(POLL_INTERVAL.mul_f64(fastrand::f64())).await;
                    loop {
                        let request = pb::GetJobRequest {
                            job_id: job_id.clone(),
                            ..Default::default()
                        };
                        client.get_job(request).await.expect("GetJob");
                        tokio::time::sleep(POLL_INTERVAL.mul_f64(0.9 + 0.2 * fastrand::f64())).await;
                    }
                }));
            }
        }
        tokio::time::sleep(COMPARE_WINDOW).await;
        let compare_gets = gets(&sim, &compare_ids) - compare_before;
        for poller in &pollers {
            poller.abort();
        }
        let compare_intervals = COMPARE_WINDOW.as_secs_f64() / POLL_INTERVAL.as_secs_f64();

        result(
            "upstream GETs per job per interval, hub (shared poller)",
            format!("{:.2}", shared_gets as f64 / jobs as f64 / intervals),
        );
        result(
            "  hub's own poll count per job per interval",
            format!("{:.2}", hub_polls_in_window as f64 / jobs as f64 / intervals),
        );
        result(
            "upstream GETs per job per interval, per-watcher GetJob",
            format!("{:.2}", compare_gets as f64 / COMPARE_JOBS as f64 / compare_intervals),
        );

        // Two changes for every job while a client on a connection of its
        // own keeps making unary calls. INIT -> RUNNING spread out: one cohort
        // of jobs every SPREAD_STEP. RUNNING -> SUCCESS in a burst: every job
        // at the same moment, so every watcher hears within one poll interval.
        let gateway_pid = std::os::unix::process::parent_id();
        let cpus = || (cpu_time(gateway_pid), cpu_time(std::process::id()));
        let probe = Probe::start(&address, compare_ids[0].clone());
        let spread_cpu = cpus();
        // Cohort 0 reaches RUNNING JOB_INIT after it was made, the others follow.
        sim.advance(JOB_INIT - COHORT_GAP * (COHORTS as u32 - 1));
        for _ in 1..COHORTS {
            tokio::time::sleep(SPREAD_STEP).await;
            sim.advance(COHORT_GAP);
        }
        // Give every poller time to see RUNNING before the next change.
        tokio::time::sleep(POLL_INTERVAL * 2).await;
        let spread_cpu = (cpus().0 - spread_cpu.0, cpus().1 - spread_cpu.1);
        let spread_probed = probe.stop().await;

        // The burst: the first `burst_cohorts` cohorts end in one clock step
        // (cohort i ends i * COHORT_GAP after cohort 0), the others after it,
        // unmeasured.
        let unmeasured_cohorts = COHORTS - size.burst_cohorts;
        let burst_jobs = (cohort * size.burst_cohorts).min(jobs);
        let unmeasured = watchers.split_off(burst_jobs * watchers_per_job);
        let probe = Probe::start(&address, compare_ids[0].clone());
        let burst_cpu = cpus();
        sim.advance(JOB_RUN - COHORT_GAP * unmeasured_cohorts as u32);
        let mut seen = Vec::with_capacity(all);
        for watcher in watchers {
            seen.push(watcher.await.expect("watcher task"));
        }
        let burst_cpu = (cpus().0 - burst_cpu.0, cpus().1 - burst_cpu.1);
        let burst_probed = probe.stop().await;
        if !unmeasured.is_empty() {
            sim.advance(COHORT_GAP * unmeasured_cohorts as u32);
        }
        for watcher in unmeasured {
            seen.push(watcher.await.expect("watcher task"));
        }

        let spread = Phase::new(&seen, watchers_per_job, |s| &s.running, spread_cpu, spread_probed);
        spread.report(&format!(
            "spread: {} jobs every {SPREAD_STEP:?} change (INIT -> RUNNING)",
            jobs.div_ceil(COHORTS)
        ));
        let burst_seen = &seen[..burst_jobs * watchers_per_job];
        let burst = Phase::new(burst_seen, watchers_per_job, |s| &s.success, burst_cpu, burst_probed);
        burst.report(&format!(
            "burst: {burst_jobs} of {jobs} jobs change at once (RUNNING -> SUCCESS)"
        ));
        say("DONE");
    }

    /// What the watchers saw of one change of every job, and what it cost.
    struct Phase {
        /// Every delivery's delay, sorted.
        delays: Vec<Duration>,
        /// Per job, the delay of its last watcher, sorted.
        lasts: Vec<Duration>,
        /// CPU of the gateway and of this process over the phase.
        cpu: (Duration, Duration),
        /// The probe's latencies meanwhile, sorted.
        probed: Probed,
    }

    impl Phase {
        fn new(
            seen: &[Seen],
            watchers_per_job: usize,
            change: fn(&Seen) -> &Vec<Duration>,
            cpu: (Duration, Duration),
            mut probed: Probed,
        ) -> Phase {
            let mut delays: Vec<Duration> = seen.iter().flat_map(|s| change(s).iter().copied()).collect();
            let mut lasts: Vec<Duration> = seen
                .chunks(watchers_per_job)
                .filter_map(|job| job.iter().flat_map(|s| change(s).iter().copied()).max())
                .collect();
            delays.sort();
            lasts.sort();
            probed.get_job.sort();
            probed.health.sort();
            Phase {
                delays,
                lasts,
                cpu,
                probed,
            }
        }

        fn report(&self, name: &str) {
            let per_delivery = |cpu: Duration| cpu.as_secs_f64() * 1e6 / self.delays.len().max(1) as f64;
            result(name, "");
            result("  changes delivered (of 1 per watcher)", self.delays.len());
            result(
                "  poll -> watcher delay p50 / p90 / p99 / max (ms)",
                format!(
                    "{} / {} / {} / {}",
                    ms(percentile(&self.delays, 50.0)),
                    ms(percentile(&self.delays, 90.0)),
                    ms(percentile(&self.delays, 99.0)),
                    ms(percentile(&self.delays, 100.0))
                ),
            );
            result(
                "  poll -> last watcher of the job, p50 / p99 / max (ms)",
                format!(
                    "{} / {} / {}",
                    ms(percentile(&self.lasts, 50.0)),
                    ms(percentile(&self.lasts, 99.0)),
                    ms(percentile(&self.lasts, 100.0))
                ),
            );
            let calls = |sorted: &[Duration]| {
                format!(
                    "{}, {} / {} / {}",
                    sorted.len(),
                    ms(percentile(sorted, 50.0)),
                    ms(percentile(sorted, 99.0)),
                    ms(percentile(sorted, 100.0))
                )
            };
            result(
                "  unary GetJob meanwhile: calls, p50 / p99 / max (ms)",
                calls(&self.probed.get_job),
            );
            result(
                "  health check meanwhile: calls, p50 / p99 / max (ms)",
                calls(&self.probed.health),
            );
            result(
                "  CPU: gateway / clients+simulator (s)",
                format!("{:.2} / {:.2}", self.cpu.0.as_secs_f64(), self.cpu.1.as_secs_f64()),
            );
            result(
                "  CPU per delivered change: gateway / clients+simulator (us)",
                format!("{:.1} / {:.1}", per_delivery(self.cpu.0), per_delivery(self.cpu.1)),
            );
        }
    }

    /// Unary calls one after another (PROBE_PAUSE apart) until stopped: how
    /// the gateway answers other callers while it fans out. Each GetJob (which
    /// calls upstream) is followed by a health check on the same connection
    /// (which the gateway answers itself), to tell the gateway's own wait
    /// from the upstream leg's. The probe stands for another service, so it
    /// runs on a thread and runtime of its own: its latency is the gateway's,
    /// not this process's queue of 100,000 watcher tasks.
    struct Probe {
        stop: tokio::sync::watch::Sender<bool>,
        thread: std::thread::JoinHandle<Probed>,
    }

    /// What the probe measured, call by call.
    struct Probed {
        get_job: Vec<Duration>,
        health: Vec<Duration>,
    }

    impl Probe {
        fn start(address: &str, job_id: String) -> Probe {
            let (stop, mut stopped) = tokio::sync::watch::channel(false);
            let url = format!("http://{address}");
            let (connected, is_connected) = std::sync::mpsc::channel();
            let thread = std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("probe runtime");
                runtime.block_on(async move {
                    let channel = Channel::from_shared(url).expect("URL").connect().await;
                    let channel = channel.expect("probe connects to the gateway");
                    let mut client = JobServiceClient::new(channel.clone());
                    let mut health = HealthClient::new(channel);
                    let _ = connected.send(());
                    let mut probed = Probed {
                        get_job: Vec::new(),
                        health: Vec::new(),
                    };
                    while !*stopped.borrow_and_update() {
                        let request = pb::GetJobRequest {
                            job_id: job_id.clone(),
                            ..Default::default()
                        };
                        let started = std::time::Instant::now();
                        client.get_job(request).await.expect("GetJob during the fan-out");
                        probed.get_job.push(started.elapsed());
                        let started = std::time::Instant::now();
                        health
                            .check(HealthCheckRequest::default())
                            .await
                            .expect("health check during the fan-out");
                        probed.health.push(started.elapsed());
                        let _ = tokio::time::timeout(PROBE_PAUSE, stopped.changed()).await;
                    }
                    probed
                })
            });
            // Measured phases start once the probe is calling.
            is_connected.recv().expect("probe thread connects");
            Probe { stop, thread }
        }

        async fn stop(self) -> Probed {
            let _ = self.stop.send(true);
            let thread = self.thread;
            tokio::task::spawn_blocking(move || thread.join().expect("probe thread"))
                .await
                .expect("join the probe")
        }
    }
}
