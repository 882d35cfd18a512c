//! Job watching under one upstream budget: 10, 1,000 and 10,000 watched jobs
//! of one project, one budget. Prints the upstream requests per second the
//! polls make, the time to each job's first state, the delay from the jobs'
//! end to their watchers, and how long a GetJob RPC waits meanwhile.
//! Measures; asserts nothing. Run with `cargo bench --bench budget`.

use std::time::Duration;

use reqwest::Url;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tonic::transport::Channel;
use vbs_gateway::app::App;
use vbs_gateway::config::{BudgetConfig, Config, DEMO_PROJECT_ID};
use vbs_gateway::proto::pb::{
    self, JobStatus, backup_service_client::BackupServiceClient, job_service_client::JobServiceClient,
    watch_jobs_response,
};
use vbs_gateway::watch::WatchConfig;
use vbs_simulator::{Simulator, SimulatorConfig, VolumeSpec};

/// The budget of the one project: requests per second and burst.
const RATE: f64 = 200.0;
const BURST: u32 = 200;
/// The share of it the job hub plans its polls in.
const WATCH_SHARE: f64 = 0.5;
const POLL_INITIAL: Duration = Duration::from_secs(1);
/// Upstream requests are counted over this window while nothing changes.
const WINDOW: Duration = Duration::from_secs(20);
/// Most job ids per WatchJobs call.
const IDS_PER_STREAM: usize = 100;
const SCALES: [usize; 3] = [10, 1_000, 10_000];

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(async {
        println!(
            "budget: {RATE} requests/s per project, burst {BURST}; polls planned in {WATCH_SHARE} of it ({} /s); --watch-poll-initial {POLL_INITIAL:?}",
            RATE * WATCH_SHARE
        );
        println!(
            "| watched jobs | poll pace | job GETs/s (window) | first state p50 / p99 / max | job end -> watcher p50 / p99 / max | GetJob RPC p50 / max |"
        );
        println!("|---:|---:|---:|---:|---:|---:|");
        for jobs in SCALES {
            let row = measure(jobs).await;
            println!("{row}");
        }
    });
}

/// A gateway on port 0 for `config`, and a channel to it.
async fn serve(config: Config) -> Channel {
    let app = App::new(&config).expect("gateway config");
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move { app.serve(listener, std::future::pending()).await });
    Channel::from_shared(format!("http://{address}"))
        .expect("url")
        .connect()
        .await
        .expect("connect")
}

fn volumes(count: usize) -> SimulatorConfig {
    let mut config = SimulatorConfig::for_testing();
    config.volumes = (0..count)
        .map(|i| {
            format!("6f1a8c52-0b3e-4d5a-9c7e-{i:012}:10")
                .parse::<VolumeSpec>()
                .expect("volume spec")
        })
        .collect();
    config
}

fn job_gets(sim: &Simulator) -> usize {
    let prefix = format!("/v1/{DEMO_PROJECT_ID}/jobs/");
    sim.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with(&prefix))
        .count()
}

async fn measure(jobs: usize) -> String {
    let sim = Simulator::start(volumes(jobs), TcpListener::bind("127.0.0.1:0").await.expect("bind"))
        .await
        .expect("simulator");
    let url: Url = sim.url().parse().expect("simulator URL");
    // The jobs are started through a gateway without a budget, so setting up
    // does not spend the budget being measured.
    let setup = serve(Config::for_testing(url.clone())).await;
    let mut config = Config::for_testing(url);
    config.budget = BudgetConfig {
        rate: Some(RATE),
        burst: BURST,
        watch_share: WATCH_SHARE,
    };
    config.watch = WatchConfig {
        poll_initial: POLL_INITIAL,
        poll_rate: config.budget.watch_poll_rate(),
        heartbeat: Duration::from_secs(3600),
        terminal_ttl: Duration::from_secs(3600),
        max_jobs: jobs.max(10_000),
        ..WatchConfig::default()
    };
    let pace = Duration::from_secs_f64((jobs as f64 / (RATE * WATCH_SHARE)).max(POLL_INITIAL.as_secs_f64()));
    let watched = serve(config).await;

    let job_ids = start_jobs(&setup, &sim).await;
    let (events, mut received) = mpsc::unbounded_channel();
    let opened = Instant::now();
    for chunk in job_ids.chunks(IDS_PER_STREAM) {
        tokio::spawn(watch(watched.clone(), chunk.to_vec(), events.clone()));
    }
    let mut first = Vec::with_capacity(jobs);
    while first.len() < jobs {
        let (status, at) = received.recv().await.expect("watch events");
        assert_eq!(status, JobStatus::Init);
        first.push(at - opened);
    }

    let before = job_gets(&sim);
    let window_start = Instant::now();
    let mut rpc_waits = Vec::new();
    while window_start.elapsed() < WINDOW {
        let started = Instant::now();
        JobServiceClient::new(watched.clone())
            .get_job(pb::GetJobRequest {
                job_id: job_ids[0].clone(),
                ..Default::default()
            })
            .await
            .expect("GetJob");
        rpc_waits.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let per_second = (job_gets(&sim) - before) as f64 / window_start.elapsed().as_secs_f64();

    // Every job ends at the same moment of simulated time.
    let ended = Instant::now();
    sim.advance(Duration::from_secs(3));
    let mut delays = Vec::with_capacity(jobs);
    while delays.len() < jobs {
        let (status, at) = received.recv().await.expect("watch events");
        if status == JobStatus::Success {
            delays.push(at - ended);
        }
    }
    sim.shutdown();
    format!(
        "| {jobs} | {pace:.1?} | {per_second:.1} | {} | {} | {} |",
        quantiles(&mut first, &[0.5, 0.99, 1.0]),
        quantiles(&mut delays, &[0.5, 0.99, 1.0]),
        quantiles(&mut rpc_waits, &[0.5, 1.0]),
    )
}

/// Starts one backup per volume, 32 at a time; returns the job ids.
async fn start_jobs(setup: &Channel, sim: &Simulator) -> Vec<String> {
    let volumes: Vec<String> = sim.volumes().into_iter().map(|v| v.id).collect();
    let mut job_ids = Vec::with_capacity(volumes.len());
    for chunk in volumes.chunks(32) {
        let calls = chunk.iter().map(|volume| {
            let mut backups = BackupServiceClient::new(setup.clone());
            let volume = volume.clone();
            async move {
                backups
                    .create_backup(pb::CreateBackupRequest {
                        volume_id: volume,
                        name: "budget-bench".into(),
                        ..Default::default()
                    })
                    .await
                    .expect("CreateBackup")
                    .into_inner()
                    .job_id
            }
        });
        job_ids.extend(futures_util::future::join_all(calls).await);
    }
    job_ids
}

/// Watches `job_ids` in one WatchJobs stream; sends each job's INIT and SUCCESS with when it came.
async fn watch(channel: Channel, job_ids: Vec<String>, events: mpsc::UnboundedSender<(JobStatus, Instant)>) {
    let request = pb::WatchJobsRequest {
        job_ids,
        ..Default::default()
    };
    let mut stream = JobServiceClient::new(channel)
        .watch_jobs(request)
        .await
        .expect("WatchJobs")
        .into_inner();
    while let Some(message) = stream.message().await.expect("watch stream") {
        if let Some(watch_jobs_response::Event::Job(job)) = message.event
            && matches!(job.status(), JobStatus::Init | JobStatus::Success)
        {
            let _ = events.send((job.status(), Instant::now()));
        }
    }
}

/// "a / b / c" of the given quantiles.
fn quantiles(values: &mut [Duration], at: &[f64]) -> String {
    values.sort();
    at.iter()
        .map(|q| {
            let index = ((values.len() as f64 - 1.0) * q).round() as usize;
            format!("{:.2?}", values[index])
        })
        .collect::<Vec<_>>()
        .join(" / ")
}
