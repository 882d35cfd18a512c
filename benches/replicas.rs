//! Replicas on loopback, side by side in one run: upstream GETs per watched
//! job per poll interval with 1 and 3 replicas, with and without Redis; what
//! Redis adds to a watched job's delivery delay (the simulator's job end to
//! the watcher's terminal message) and to a write's latency (CreateBackup
//! with a request_id). Real redis-server, nginx, gateway processes and a
//! standalone simulator, started by the replicas test harness (included by
//! path). Measures; asserts nothing. `cargo bench --bench replicas`.

#[path = "../tests/replicas/harness.rs"]
mod harness;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio_stream::StreamExt;
use tonic::transport::Channel;
use vbs_gateway::proto::pb::{self, JobStatus, job_service_client::JobServiceClient, watch_job_response};

use harness::{Fleet, STARTUP, eventually};

/// Jobs watched at once, each by `WATCHERS_PER_JOB` streams through nginx.
const JOBS: usize = 10;
const WATCHERS_PER_JOB: usize = 30;
const POLL: &str = "200ms";
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// GETs are counted over this many poll intervals.
const INTERVALS: u32 = 20;
/// Timed sequential writes per store (after `WARM_UP_WRITES`).
const WRITES: usize = 300;
const WARM_UP_WRITES: usize = 30;

/// One fleet's numbers.
#[derive(Debug, Default)]
struct Row {
    name: &'static str,
    /// Whether the replicas share through Redis.
    shared: bool,
    gets_per_job_per_interval: f64,
    /// Milliseconds from each job's end (its `end_time`) to each direct
    /// watcher's terminal message, per replica.
    delays_ms: Vec<Vec<f64>>,
    /// Milliseconds per CreateBackup with a request_id, when measured.
    writes_ms: Vec<f64>,
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run());
}

async fn run() {
    let mut rows = Vec::new();
    for (name, replicas, shared, writes) in [
        ("1 replica, memory", 1, false, true),
        ("1 replica, Redis", 1, true, true),
        ("3 replicas, memory", 3, false, false),
        ("3 replicas, Redis", 3, true, false),
    ] {
        eprintln!("measuring {name} ...");
        let Some(row) = measure(name, replicas, shared, writes).await else {
            eprintln!("SKIPPED: redis-server and nginx are needed");
            return;
        };
        rows.push(row);
    }
    report(&rows);
}

async fn measure(name: &'static str, replicas: usize, shared: bool, writes: bool) -> Option<Row> {
    let mut builder = Fleet::builder()
        .replicas(replicas)
        .replica_args([
            "--watch-poll-initial",
            POLL,
            "--watch-poll-max",
            "1s",
            "--upstream-rate",
            "1000",
            // Hundreds of watches and writes from one caller in a second.
            "--caller-rate",
            "0",
        ])
        .simulator_args(["--sim-volume".to_string(), disks().join(",")])
        .simulator_args(["--sim-job-init", "300ms", "--sim-job-run", "9s"]);
    if !shared {
        builder = builder.without_redis();
    }
    let fleet = builder.start().await?;
    let jobs = start_jobs(&fleet).await;

    // Direct watchers (one per job per replica) time the delivery; the
    // watchers through nginx are the load.
    let mut direct = Vec::new();
    for replica in 0..replicas {
        let channel = fleet.replica_channel(replica).await;
        let mut of_replica = Vec::new();
        for job_id in &jobs {
            of_replica.push(watch(channel.clone(), job_id).await);
        }
        direct.push(of_replica);
    }
    let mut load = Vec::new();
    for job_id in &jobs {
        let channel = fleet.channel().await;
        for _ in 0..WATCHERS_PER_JOB {
            load.push(watch(channel.clone(), job_id).await);
        }
    }
    let everyone: Vec<Watch> = direct.iter().flatten().chain(&load).cloned().collect();
    wait_for(&everyone, "every watcher has a state", |seen| seen.first).await;

    fleet.simulator.clear_requests();
    tokio::time::sleep(POLL_INTERVAL * INTERVALS).await;
    let gets: usize = jobs
        .iter()
        .map(|job| fleet.simulator.count("GET", &format!("/jobs/{job}")))
        .sum();

    wait_for(&everyone, "every watcher has the terminal state", |seen| {
        seen.terminal.is_some()
    })
    .await;
    let delays_ms = direct
        .iter()
        .map(|of_replica| of_replica.iter().map(delay_ms).collect())
        .collect();
    let writes_ms = if writes {
        write_latencies(&fleet).await
    } else {
        Vec::new()
    };
    Some(Row {
        name,
        shared,
        gets_per_job_per_interval: gets as f64 / (JOBS as f64 * f64::from(INTERVALS)),
        delays_ms,
        writes_ms,
    })
}

/// Volume `index` of the simulator.
fn disk(index: usize) -> String {
    format!("6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e{index:04x}")
}

/// One 10 GB volume per watched job and per write.
fn disks() -> Vec<String> {
    (0..JOBS + WARM_UP_WRITES + WRITES)
        .map(|i| format!("{}:10", disk(i)))
        .collect()
}

async fn start_jobs(fleet: &Fleet) -> Vec<String> {
    let mut backups = fleet.backups().await;
    let mut jobs = Vec::new();
    for index in 0..JOBS {
        let job_id = backups
            .create_backup(pb::CreateBackupRequest {
                volume_id: disk(index),
                name: format!("watched-{index}"),
                ..Default::default()
            })
            .await
            .expect("CreateBackup")
            .into_inner()
            .job_id;
        jobs.push(job_id);
    }
    jobs
}

/// CreateBackup with a fresh request_id each time, straight to replica 0.
async fn write_latencies(fleet: &Fleet) -> Vec<f64> {
    let mut backups = pb::backup_service_client::BackupServiceClient::new(fleet.replica_channel(0).await);
    let mut times = Vec::with_capacity(WRITES);
    for index in 0..WARM_UP_WRITES + WRITES {
        // A volume takes one backup at a time: each write backs up another.
        let request = pb::CreateBackupRequest {
            volume_id: disk(JOBS + index),
            name: format!("write-{index}"),
            request_id: uuid::Uuid::new_v4().to_string(),
            ..Default::default()
        };
        let started = Instant::now();
        backups.create_backup(request).await.expect("CreateBackup");
        if index >= WARM_UP_WRITES {
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
    }
    times
}

/// What one watcher has seen.
#[derive(Debug, Default)]
struct Seen {
    first: bool,
    /// When the terminal message came, and the job it carried.
    terminal: Option<(SystemTime, pb::Job)>,
}

type Watch = Arc<Mutex<Seen>>;

async fn watch(channel: Channel, job_id: &str) -> Watch {
    let seen = Watch::default();
    let mut stream = JobServiceClient::new(channel)
        .watch_job(pb::WatchJobRequest {
            job_id: job_id.into(),
            ..Default::default()
        })
        .await
        .expect("WatchJob")
        .into_inner();
    let record = seen.clone();
    tokio::spawn(async move {
        while let Some(Ok(message)) = stream.next().await {
            let Some(watch_job_response::Event::Job(job)) = message.event else {
                continue;
            };
            let now = SystemTime::now();
            let mut seen = record.lock().expect("not poisoned");
            seen.first = true;
            if matches!(job.status(), JobStatus::Success | JobStatus::Fail) {
                seen.terminal = Some((now, job));
            }
        }
    });
    seen
}

async fn wait_for(watchers: &[Watch], what: &str, check: fn(&Seen) -> bool) {
    let watchers = watchers.to_vec();
    eventually(STARTUP, what, || {
        let done = watchers.iter().all(|w| check(&w.lock().expect("not poisoned")));
        async move { done }
    })
    .await;
}

fn delay_ms(watcher: &Watch) -> f64 {
    let seen = watcher.lock().expect("not poisoned");
    let (received, job) = seen.terminal.as_ref().expect("terminal");
    let ended: SystemTime = job.end_time.expect("end_time").try_into().expect("a time");
    received.duration_since(ended).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank]
}

fn report(rows: &[Row]) {
    println!(
        "\n## Upstream GETs per job per {POLL} interval ({JOBS} jobs, {WATCHERS_PER_JOB} watchers each through nginx)\n"
    );
    println!("| fleet | GETs per job per interval |");
    println!("|---|---:|");
    for row in rows {
        println!("| {} | {:.2} |", row.name, row.gets_per_job_per_interval);
    }

    println!("\n## Delivery delay: job end to the terminal message (ms, poll every {POLL})\n");
    println!("| fleet | watchers | median | p90 | max |");
    println!("|---|---:|---:|---:|---:|");
    for row in rows {
        let all: Vec<f64> = row.delays_ms.iter().flatten().copied().collect();
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} |",
            row.name,
            all.len(),
            percentile(&all, 50.0),
            percentile(&all, 90.0),
            percentile(&all, 100.0)
        );
    }
    // Per job, the replica that polled delivers first; the others get the
    // state through Redis: their extra delay is what Redis adds.
    for row in rows.iter().filter(|r| r.shared && r.delays_ms.len() > 1) {
        let jobs = row.delays_ms[0].len();
        let mut extra = Vec::new();
        for job in 0..jobs {
            let per_replica: Vec<f64> = row.delays_ms.iter().map(|r| r[job]).collect();
            let first = per_replica.iter().copied().fold(f64::INFINITY, f64::min);
            extra.extend(per_replica.iter().map(|d| d - first).filter(|d| *d > 0.0));
        }
        println!(
            "\n{}: a follower's terminal message after the holder's: median {:.2} ms, p90 {:.2} ms, max {:.2} ms ({} samples)",
            row.name,
            percentile(&extra, 50.0),
            percentile(&extra, 90.0),
            percentile(&extra, 100.0),
            extra.len()
        );
    }

    println!("\n## CreateBackup with a request_id, straight to one replica ({WRITES} sequential calls, ms)\n");
    println!("| store | median | p90 | p99 |");
    println!("|---|---:|---:|---:|");
    for row in rows.iter().filter(|r| !r.writes_ms.is_empty()) {
        println!(
            "| {} | {:.2} | {:.2} | {:.2} |",
            row.name,
            percentile(&row.writes_ms, 50.0),
            percentile(&row.writes_ms, 90.0),
            percentile(&row.writes_ms, 99.0)
        );
    }
}
