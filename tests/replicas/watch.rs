//! Job watching across replicas: one upstream poller per job for the whole
//! fleet, a lease holder killed mid-job, and Redis stopped and started again
//! mid-watch. Watchers are real gRPC streams through nginx or straight to
//! one replica; upstream GETs are counted at the simulator.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_stream::StreamExt;
use tonic::transport::Channel;
use vbs_gateway::proto::pb::{self, Coordination, JobStatus, job_service_client::JobServiceClient, watch_job_response};

use crate::harness::{Fleet, STARTUP, eventually};

/// Every replica polls each job this often while it is the only poller.
const POLL: &str = "250ms";
const POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What one watcher has seen so far; shared with the test while it runs.
#[derive(Debug, Default)]
struct Seen {
    statuses: Vec<JobStatus>,
    /// Each state message, to tell a repeated message from a new one.
    jobs: Vec<pb::Job>,
    coordination: Vec<Coordination>,
    /// None while open; the status code it ended with.
    ended: Option<tonic::Code>,
}

impl Seen {
    fn terminal_messages(&self) -> usize {
        self.statuses
            .iter()
            .filter(|s| matches!(s, JobStatus::Success | JobStatus::Fail))
            .count()
    }

    /// States only move forward, no message repeats the one before, and the
    /// stream ended OK right after its one terminal state.
    fn assert_complete(&self, who: &str) {
        assert_eq!(self.ended, Some(tonic::Code::Ok), "{who}: {self:?}");
        assert_eq!(self.terminal_messages(), 1, "{who}: {self:?}");
        assert!(
            matches!(self.statuses.last(), Some(JobStatus::Success | JobStatus::Fail)),
            "{who}: {self:?}"
        );
        assert!(
            self.statuses.windows(2).all(|w| w[0] <= w[1]),
            "{who}: an older state after a newer one: {self:?}"
        );
        assert!(
            self.jobs.windows(2).all(|w| w[0] != w[1]),
            "{who}: a message repeated: {self:?}"
        );
    }
}

type Shared = Arc<Mutex<Seen>>;

/// Watches `job_id` on `channel` in a task of its own, recording what comes.
async fn watch(channel: Channel, job_id: &str) -> Shared {
    let seen = Shared::default();
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
        let ended = loop {
            match stream.next().await {
                None => break tonic::Code::Ok,
                Some(Err(status)) => break status.code(),
                Some(Ok(message)) => {
                    let mut seen = record.lock().expect("not poisoned");
                    match message.event {
                        Some(watch_job_response::Event::Job(job)) => {
                            seen.statuses.push(job.status());
                            seen.jobs.push(job);
                        }
                        Some(watch_job_response::Event::Heartbeat(beat)) => {
                            let coordination = beat.coordination();
                            if seen.coordination.last() != Some(&coordination) {
                                seen.coordination.push(coordination);
                            }
                        }
                        None => {}
                    }
                }
            }
        };
        record.lock().expect("not poisoned").ended = Some(ended);
    });
    seen
}

/// `count` disks for the simulator, so that as many backups run at once.
fn disks(count: usize) -> Vec<String> {
    (0..count)
        .map(|i| format!("6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e{i:04x}:10"))
        .collect()
}

/// Starts one backup per disk through nginx; their job ids.
async fn start_jobs(fleet: &Fleet, count: usize) -> Vec<String> {
    let mut backups = fleet.backups().await;
    let mut jobs = Vec::new();
    for disk in disks(count) {
        let volume_id = disk.trim_end_matches(":10").to_string();
        let job_id = backups
            .create_backup(pb::CreateBackupRequest {
                volume_id,
                name: "watched".into(),
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

fn fleet_with_jobs(replicas: usize, disks_needed: usize, job_run: &str) -> crate::harness::FleetBuilder {
    Fleet::builder()
        .replicas(replicas)
        .replica_args([
            "--watch-poll-initial",
            POLL,
            "--watch-poll-max",
            "1s",
            "--watch-heartbeat",
            "300ms",
            // Enough budget that every job is polled every POLL, not less often.
            "--upstream-rate",
            "400",
        ])
        .simulator_args(["--sim-volume".to_string(), disks(disks_needed).join(",")])
        .simulator_args(["--sim-job-init", "500ms", "--sim-job-run", job_run])
}

async fn all_have_a_state(watchers: &[Shared]) {
    let watchers = watchers.to_vec();
    eventually(STARTUP, "every watcher has its first state", || {
        let watchers = watchers.clone();
        async move {
            watchers
                .iter()
                .all(|w| !w.lock().expect("not poisoned").statuses.is_empty())
        }
    })
    .await;
}

async fn all_ended(watchers: &[Shared]) {
    let watchers = watchers.to_vec();
    eventually(STARTUP, "every watch ended", || {
        let watchers = watchers.clone();
        async move { watchers.iter().all(|w| w.lock().expect("not poisoned").ended.is_some()) }
    })
    .await;
}

/// The replica polling upstream for the fleet: the only one whose poll
/// count grows.
async fn lease_holder(fleet: &Fleet, alive: &[usize]) -> usize {
    let polls = |i: usize| fleet.metric(i, "vbs_watch_upstream_polls_total", &[]);
    let before: Vec<f64> = alive.iter().map(|&i| polls(i)).collect();
    let mut holder = None;
    eventually(STARTUP, "one replica polls", || {
        let grown: Vec<usize> = alive
            .iter()
            .zip(&before)
            .filter(|(i, before)| polls(**i) > **before)
            .map(|(i, _)| *i)
            .collect();
        if grown.len() == 1 {
            holder = Some(grown[0]);
        }
        async move { grown.len() == 1 }
    })
    .await;
    holder.expect("a holder")
}

#[tokio::test]
async fn three_hundred_watchers_on_three_replicas_cost_one_get_per_job_per_interval() {
    const JOBS: usize = 10;
    const WATCHERS_PER_JOB: usize = 30;
    let Some(fleet) = fleet_with_jobs(3, JOBS, "30s").start().await else {
        return;
    };
    let jobs = start_jobs(&fleet, JOBS).await;
    let mut watchers = Vec::new();
    for job_id in &jobs {
        // One connection per job through nginx; nginx spreads its streams
        // over the replicas in turn.
        let channel = fleet.channel().await;
        for _ in 0..WATCHERS_PER_JOB {
            watchers.push(watch(channel.clone(), job_id).await);
        }
    }
    all_have_a_state(&watchers).await;
    for replica in 0..3 {
        let open = fleet.metric(replica, "vbs_watch_active_watchers", &[]);
        assert!(open >= 50.0, "replica {replica} has {open} watchers");
    }

    fleet.simulator.clear_requests();
    let window = POLL_INTERVAL * 16;
    tokio::time::sleep(window).await;
    let gets: usize = jobs
        .iter()
        .map(|job| fleet.simulator.count("GET", &format!("/jobs/{job}")))
        .sum();
    let per_job_per_interval = gets as f64 / (JOBS as f64 * 16.0);
    // Alone, each of the three replicas would poll every job: 3 per interval.
    assert!(
        (0.5..=1.3).contains(&per_job_per_interval),
        "{gets} GETs: {per_job_per_interval:.2} per job per interval"
    );
    for watcher in &watchers {
        let seen = watcher.lock().expect("not poisoned");
        assert!(
            seen.ended.is_none() && !seen.coordination.contains(&Coordination::LocalFallback),
            "{seen:?}"
        );
    }
}

#[tokio::test]
async fn killing_the_lease_holder_loses_no_watchers_terminal_state() {
    let Some(mut fleet) = fleet_with_jobs(3, 1, "6s").start().await else {
        return;
    };
    let job_id = start_jobs(&fleet, 1).await.remove(0);
    let mut direct = Vec::new();
    for replica in 0..3 {
        let channel = fleet.replica_channel(replica).await;
        for _ in 0..3 {
            direct.push((replica, watch(channel.clone(), &job_id).await));
        }
    }
    let everyone: Vec<Shared> = direct.iter().map(|(_, w)| w.clone()).collect();
    all_have_a_state(&everyone).await;
    let holder = lease_holder(&fleet, &[0, 1, 2]).await;

    fleet.kill_replica(holder);
    // The holder's own watchers lose their stream and watch again through nginx.
    let mut survivors = Vec::new();
    let mut reconnected = Vec::new();
    for (replica, watcher) in direct {
        if replica != holder {
            survivors.push(watcher);
            continue;
        }
        eventually(STARTUP, "the killed replica's stream breaks", || {
            let ended = watcher.lock().expect("not poisoned").ended.is_some();
            async move { ended }
        })
        .await;
        let last = *watcher.lock().expect("not poisoned").statuses.last().expect("a state");
        let again = watch(fleet.channel().await, &job_id).await;
        reconnected.push((last, again));
    }
    let others: Vec<usize> = (0..3).filter(|&i| i != holder).collect();
    let new_holder = lease_holder(&fleet, &others).await;
    assert_ne!(new_holder, holder);

    all_ended(&survivors).await;
    for watcher in &survivors {
        watcher
            .lock()
            .expect("not poisoned")
            .assert_complete("a survivor's watcher");
    }
    let again: Vec<Shared> = reconnected.iter().map(|(_, w)| w.clone()).collect();
    all_ended(&again).await;
    for (last, watcher) in &reconnected {
        let seen = watcher.lock().expect("not poisoned");
        seen.assert_complete("a watcher that came back through nginx");
        assert!(
            seen.statuses[0] >= *last,
            "older than before the kill: {last:?} then {seen:?}"
        );
    }
}

#[tokio::test]
async fn watches_poll_locally_while_redis_is_down_and_share_again_after() {
    let Some(mut fleet) = fleet_with_jobs(2, 1, "12s").start().await else {
        return;
    };
    let job_id = start_jobs(&fleet, 1).await.remove(0);
    let mut watchers = Vec::new();
    for replica in 0..2 {
        let channel = fleet.replica_channel(replica).await;
        watchers.push(watch(channel.clone(), &job_id).await);
        watchers.push(watch(channel, &job_id).await);
    }
    all_have_a_state(&watchers).await;
    says(&watchers, Coordination::Shared).await;

    fleet.redis.stop();
    says(&watchers, Coordination::LocalFallback).await;
    for replica in 0..2 {
        assert_eq!(
            fleet.metric(replica, "vbs_watch_local_fallback", &[]),
            1.0,
            "replica {replica}"
        );
    }
    // Both replicas poll the job now.
    let polls = |i| fleet.metric(i, "vbs_watch_upstream_polls_total", &[]);
    let before = [polls(0), polls(1)];
    eventually(STARTUP, "both replicas poll", || {
        let both = polls(0) > before[0] && polls(1) > before[1];
        async move { both }
    })
    .await;

    fleet.redis.start_again();
    says(&watchers, Coordination::Shared).await;
    eventually(STARTUP, "no job is polled without the fleet", || {
        let none =
            fleet.metric(0, "vbs_watch_local_fallback", &[]) + fleet.metric(1, "vbs_watch_local_fallback", &[]) == 0.0;
        async move { none }
    })
    .await;
    all_ended(&watchers).await;
    for watcher in &watchers {
        let seen = watcher.lock().expect("not poisoned");
        seen.assert_complete("a watcher across the outage");
        let outage = seen.coordination.iter().position(|c| *c == Coordination::LocalFallback);
        assert!(
            outage.is_some_and(|at| seen.coordination[at..].contains(&Coordination::Shared)),
            "{seen:?}"
        );
    }
}

#[tokio::test]
async fn a_replica_answers_a_job_that_ended_elsewhere_from_redis() {
    let Some(fleet) = fleet_with_jobs(2, 1, "1s").start().await else {
        return;
    };
    let job_id = start_jobs(&fleet, 1).await.remove(0);
    let first = vec![watch(fleet.replica_channel(0).await, &job_id).await];
    all_ended(&first).await;
    first[0]
        .lock()
        .expect("not poisoned")
        .assert_complete("the first replica's watcher");
    let gets = fleet.simulator.count("GET", &format!("/jobs/{job_id}"));

    let late = vec![watch(fleet.replica_channel(1).await, &job_id).await];
    all_ended(&late).await;
    let seen = late[0].lock().expect("not poisoned");
    seen.assert_complete("the other replica's watcher");
    assert_eq!(seen.statuses, [JobStatus::Success]);
    assert_eq!(
        fleet.simulator.count("GET", &format!("/jobs/{job_id}")),
        gets,
        "no upstream call"
    );
}

/// Waits until the latest heartbeat of every watcher says `coordination`.
async fn says(watchers: &[Shared], coordination: Coordination) {
    let watchers = watchers.to_vec();
    eventually(
        STARTUP,
        &format!("every watcher's heartbeat says {coordination:?}"),
        || {
            let watchers = watchers.clone();
            async move {
                watchers
                    .iter()
                    .all(|w| w.lock().expect("not poisoned").coordination.last() == Some(&coordination))
            }
        },
    )
    .await;
}
