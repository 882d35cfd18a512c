//! Job watching end to end: WatchJob, WaitJob and WatchJobs against the
//! simulator's stepped clock, and the hub's promise of one upstream poller per
//! job whatever the number of watchers. These tests start their gateway
//! themselves (not through `harness::World`) because they read the hub's
//! counters, which only the `App` hands out (`App::hub_monitor`).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Request, Status, Streaming};
use tonic_types::StatusExt;
use vbs_gateway::app::App;
use vbs_gateway::config::{Config, DEMO_PROJECT_ID};
use vbs_gateway::proto::pb::{
    self, JobStatus, WaitOutcome, backup_service_client::BackupServiceClient, job_service_client::JobServiceClient,
    watch_job_response, watch_jobs_response,
};
use vbs_gateway::watch::{HubMonitor, HubStats};
use vbs_simulator::{Simulator, SimulatorConfig, VolumeSpec};

use crate::harness::{DISK_10GB, vbs_code};

/// Longest wait for any one message; a healthy run needs milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);
/// Well formed, unknown to the simulator.
const UNKNOWN_JOB: &str = "4010b39b5281d3590152874bfa3b1604";

/// A simulator on a stepped clock and a gateway polling it with the short
/// intervals of `WatchConfig::for_testing`, each on port 0.
struct Gateway {
    sim: Simulator,
    hub: HubMonitor,
    jobs: JobServiceClient<Channel>,
    backups: BackupServiceClient<Channel>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

impl Gateway {
    async fn start() -> Gateway {
        Gateway::start_with(SimulatorConfig::for_testing(), |_| {}).await
    }

    async fn start_with(sim_config: SimulatorConfig, adjust: impl FnOnce(&mut Config)) -> Gateway {
        let sim = Simulator::start(sim_config, TcpListener::bind("127.0.0.1:0").await.unwrap())
            .await
            .unwrap();
        let mut config = Config::for_testing(sim.url().parse().unwrap());
        adjust(&mut config);
        let app = App::new(&config).unwrap();
        let hub = app.hub_monitor();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        });
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .unwrap();
        Gateway {
            sim,
            hub,
            jobs: JobServiceClient::new(channel.clone()),
            backups: BackupServiceClient::new(channel),
            stop: Some(stop),
            server: Some(server),
        }
    }

    fn advance(&self, seconds: u64) {
        self.sim.advance(Duration::from_secs(seconds));
    }

    /// Starts a backup of `volume_id`; returns its job id (the job is INIT).
    async fn start_job(&self, volume_id: &str) -> String {
        let request = pb::CreateBackupRequest {
            volume_id: volume_id.into(),
            name: "watched".into(),
            ..Default::default()
        };
        self.backups
            .clone()
            .create_backup(request)
            .await
            .unwrap()
            .into_inner()
            .job_id
    }

    /// GETs of the job that reached the simulator.
    fn job_gets(&self, job_id: &str) -> usize {
        let path = format!("/v1/{DEMO_PROJECT_ID}/jobs/{job_id}");
        self.sim
            .requests()
            .iter()
            .filter(|r| r.method == "GET" && r.path == path)
            .count()
    }

    async fn watch(&self, job_id: &str) -> Streaming<pb::WatchJobResponse> {
        self.jobs
            .clone()
            .watch_job(watch_request(job_id))
            .await
            .expect("WatchJob")
            .into_inner()
    }

    /// Starts the gateway's shutdown and waits until it has drained.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.unwrap();
        }
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.sim.shutdown();
    }
}

fn watch_request(job_id: &str) -> pb::WatchJobRequest {
    pb::WatchJobRequest {
        job_id: job_id.into(),
        ..Default::default()
    }
}

fn wait_request(job_id: &str, timeout: Option<Duration>) -> pb::WaitJobRequest {
    pb::WaitJobRequest {
        job_id: job_id.into(),
        timeout: timeout.map(|t| t.try_into().unwrap()),
        ..Default::default()
    }
}

/// The next message, or None when the stream ended with OK.
async fn next<T>(stream: &mut Streaming<T>) -> Result<Option<T>, Status> {
    tokio::time::timeout(PATIENCE, stream.message())
        .await
        .expect("the stream said nothing for 10 s")
}

/// The next job state, passing over heartbeats.
async fn next_job(stream: &mut Streaming<pb::WatchJobResponse>) -> pb::Job {
    loop {
        let message = next(stream).await.expect("no error").expect("a message, not the end");
        match message.event.expect("an event") {
            watch_job_response::Event::Job(job) => {
                assert!(message.observed_at.is_some(), "job states say when they were read");
                return job;
            }
            watch_job_response::Event::Heartbeat(_) => {}
        }
    }
}

/// The next heartbeat that passes `check`, passing over everything else.
async fn heartbeat_where(
    stream: &mut Streaming<pb::WatchJobResponse>,
    check: impl Fn(&pb::Heartbeat) -> bool,
) -> pb::Heartbeat {
    loop {
        let message = next(stream).await.expect("no error").expect("a message, not the end");
        if let Some(watch_job_response::Event::Heartbeat(beat)) = message.event
            && check(&beat)
        {
            return beat;
        }
    }
}

/// Asserts the stream ends with OK and nothing more.
async fn assert_ends_ok<T: std::fmt::Debug>(stream: &mut Streaming<T>) {
    assert!(next(stream).await.expect("ends with OK").is_none());
}

/// The status a watch ended with, whether the call or its first message carried it.
async fn watch_error(result: Result<tonic::Response<Streaming<pb::WatchJobResponse>>, Status>) -> Status {
    match result {
        Err(status) => status,
        Ok(response) => next(&mut response.into_inner()).await.expect_err("an error"),
    }
}

/// Waits (boundedly) until the hub's counters say `done`.
async fn until_hub(hub: &HubMonitor, done: impl Fn(&HubStats) -> bool) {
    let waited = tokio::time::timeout(PATIENCE, async {
        while !done(&hub.stats()) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the hub never got there: {:?}", hub.stats());
}

fn volumes(count: usize) -> SimulatorConfig {
    let mut config = SimulatorConfig::for_testing();
    config.volumes = (0..count)
        .map(|i| {
            format!("6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0b{i:02}:10")
                .parse::<VolumeSpec>()
                .unwrap()
        })
        .collect();
    config
}

#[tokio::test]
async fn a_watcher_sees_init_running_success_then_the_stream_ends_ok() {
    let gateway = Gateway::start().await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut stream = gateway.watch(&job_id).await;

    let first = next_job(&mut stream).await;
    assert_eq!(
        (first.job_id.as_str(), first.status()),
        (job_id.as_str(), JobStatus::Init)
    );
    gateway.advance(1);
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Running);
    gateway.advance(2);
    let last = next_job(&mut stream).await;
    assert_eq!(last.status(), JobStatus::Success);
    assert!(last.end_time.is_some());
    assert!(last.entities.contains_key("backup_id"), "{last:?}");
    assert_ends_ok(&mut stream).await;
}

#[tokio::test]
async fn a_failed_job_is_its_last_message_and_the_stream_ends_ok() {
    let gateway = Gateway::start().await;
    gateway.sim.fail_next_jobs(1, "VolumeBackup.0064", "the disk went away");
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut stream = gateway.watch(&job_id).await;
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Init);

    gateway.advance(3);
    let last = next_job(&mut stream).await;
    assert_eq!(last.status(), JobStatus::Fail);
    assert_eq!(last.error_code, "VolumeBackup.0064");
    assert_eq!(last.fail_reason, "the disk went away");
    assert_ends_ok(&mut stream).await;
}

#[tokio::test]
async fn a_hundred_watchers_share_one_upstream_poll() {
    // A long ceiling keeps the poll count low however slow the machine is.
    let gateway = Gateway::start_with(SimulatorConfig::for_testing(), |config| {
        config.watch.poll_initial = Duration::from_millis(20);
        config.watch.poll_max = Duration::from_millis(500);
        config.watch.poll_backoff = 2.0;
    })
    .await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut streams = Vec::new();
    for _ in 0..100 {
        streams.push(gateway.watch(&job_id).await);
    }
    for (advance, expected) in [(0, JobStatus::Init), (1, JobStatus::Running), (2, JobStatus::Success)] {
        gateway.advance(advance);
        for stream in &mut streams {
            assert_eq!(next_job(stream).await.status(), expected);
        }
    }
    for stream in &mut streams {
        assert_ends_ok(stream).await;
    }

    // The only job watched: every poll of the hub was one of it.
    let polls = gateway.hub.stats().polls_total;
    let gets = gateway.job_gets(&job_id);
    assert_eq!(gets as u64, polls, "one GET per poll, whatever the number of watchers");
    assert!(
        polls < 100,
        "{polls} polls for 3 states of 100 watchers: per-watcher polling would need 100 per state"
    );
}

#[tokio::test]
async fn a_late_watcher_gets_the_final_state_at_once_without_an_upstream_call() {
    let gateway = Gateway::start().await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut stream = gateway.watch(&job_id).await;
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Init);
    gateway.advance(3);
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Success);
    assert_ends_ok(&mut stream).await;
    let gets = gateway.job_gets(&job_id);

    let mut late = gateway.watch(&job_id).await;
    assert_eq!(next_job(&mut late).await.status(), JobStatus::Success);
    assert_ends_ok(&mut late).await;
    let waited = gateway
        .jobs
        .clone()
        .wait_job(wait_request(&job_id, None))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(waited.outcome(), WaitOutcome::Terminal);
    assert_eq!(waited.job.unwrap().status(), JobStatus::Success);
    assert_eq!(gateway.job_gets(&job_id), gets, "the remembered state answered");
    assert_eq!(gateway.hub.stats().remembered_terminal, 1);
}

#[tokio::test]
async fn the_last_watcher_leaving_stops_the_poller() {
    let gateway = Gateway::start().await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut first = gateway.watch(&job_id).await;
    let mut second = gateway.watch(&job_id).await;
    next_job(&mut first).await;
    next_job(&mut second).await;
    let stats = gateway.hub.stats();
    assert_eq!((stats.active_pollers, stats.active_watchers), (1, 2));

    drop(first);
    until_hub(&gateway.hub, |s| s.active_watchers == 1).await;
    assert_eq!(gateway.hub.stats().active_pollers, 1, "one watcher is left");

    drop(second);
    until_hub(&gateway.hub, |s| s.active_watchers == 0 && s.active_pollers == 0).await;
    assert_eq!(gateway.hub.stats().remembered_terminal, 0, "the job is forgotten");
    let gets = gateway.job_gets(&job_id);
    let mut again = gateway.watch(&job_id).await;
    next_job(&mut again).await;
    assert!(gateway.job_gets(&job_id) > gets, "a new poller read the job again");
}

#[tokio::test]
async fn an_upstream_outage_mid_watch_is_survived_and_heartbeats_say_how_stale() {
    let gateway = Gateway::start_with(SimulatorConfig::for_testing(), |config| {
        config.watch.heartbeat = Duration::from_millis(50);
        // Fail each poll fast instead of honouring the simulator's Retry-After.
        config.retry.max_pause = Duration::from_millis(20);
    })
    .await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut stream = gateway.watch(&job_id).await;
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Init);

    gateway.sim.inject_http_errors(503, 100_000);
    let beat = heartbeat_where(&mut stream, |b| b.consecutive_failures >= 2).await;
    assert_eq!(beat.last_error, "HTTP 503 (VBS.SIMULATED)");
    assert!(beat.last_observed_at.is_some());
    assert!(beat.staleness.is_some_and(|s| s.seconds > 0 || s.nanos > 0), "{beat:?}");
    // A gateway without --redis-url polls its jobs alone.
    assert_eq!(beat.coordination(), pb::Coordination::Alone);

    gateway.sim.inject_http_errors(503, 0);
    gateway.advance(3);
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Success);
    assert_ends_ok(&mut stream).await;
}

#[tokio::test]
async fn a_quiet_watch_gets_heartbeats() {
    let gateway = Gateway::start_with(SimulatorConfig::for_testing(), |config| {
        config.watch.heartbeat = Duration::from_millis(50);
    })
    .await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut stream = gateway.watch(&job_id).await;
    next_job(&mut stream).await;
    let message = next(&mut stream).await.unwrap().unwrap();
    let Some(watch_job_response::Event::Heartbeat(beat)) = message.event else {
        panic!("expected a heartbeat, got {message:?}")
    };
    assert_eq!((beat.consecutive_failures, beat.last_error.as_str()), (0, ""));
    assert!(beat.last_observed_at.is_some() && beat.staleness.is_some());
    assert!(message.observed_at.is_none());
}

#[tokio::test]
async fn wait_job_with_a_short_deadline_returns_the_latest_state() {
    let gateway = Gateway::start().await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut request = Request::new(wait_request(&job_id, None));
    request.set_timeout(Duration::from_millis(800));
    let reply = gateway.jobs.clone().wait_job(request).await.unwrap().into_inner();
    assert_eq!(reply.outcome(), WaitOutcome::Deadline);
    assert_eq!(reply.job.unwrap().status(), JobStatus::Init);
    assert!(reply.observed_at.is_some());

    // The shorter of the two bounds decides.
    let mut request = Request::new(wait_request(&job_id, Some(Duration::from_secs(3600))));
    request.set_timeout(Duration::from_millis(800));
    let reply = gateway.jobs.clone().wait_job(request).await.unwrap().into_inner();
    assert_eq!(reply.outcome(), WaitOutcome::Deadline);
}

#[tokio::test]
async fn wait_job_with_a_timeout_returns_the_latest_state() {
    let gateway = Gateway::start().await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let reply = gateway
        .jobs
        .clone()
        .wait_job(wait_request(&job_id, Some(Duration::from_millis(200))))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.outcome(), WaitOutcome::Timeout);
    assert_eq!(reply.job.unwrap().status(), JobStatus::Init);

    let mut request = Request::new(wait_request(&job_id, Some(Duration::from_millis(200))));
    request.set_timeout(Duration::from_secs(30));
    let reply = gateway.jobs.clone().wait_job(request).await.unwrap().into_inner();
    assert_eq!(reply.outcome(), WaitOutcome::Timeout);

    let reply = gateway
        .jobs
        .clone()
        .wait_job(wait_request(&job_id, Some(Duration::ZERO)))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.outcome(), WaitOutcome::Timeout, "0 answers with the state now");
}

#[tokio::test]
async fn wait_job_returns_when_the_job_ends() {
    let gateway = Gateway::start().await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut jobs = gateway.jobs.clone();
    let request = wait_request(&job_id, None);
    let waiting = tokio::spawn(async move { jobs.wait_job(request).await });
    until_hub(&gateway.hub, |s| s.active_watchers == 1).await;
    gateway.advance(3);
    let reply = tokio::time::timeout(PATIENCE, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap()
        .into_inner();
    assert_eq!(reply.outcome(), WaitOutcome::Terminal);
    assert_eq!(reply.job.unwrap().status(), JobStatus::Success);
}

#[tokio::test]
async fn wait_job_on_a_finished_job_answers_at_once() {
    let gateway = Gateway::start().await;
    let job_id = gateway.start_job(DISK_10GB).await;
    gateway.advance(3);
    // No deadline and an hour's timeout: only a terminal state can answer.
    let reply = tokio::time::timeout(
        PATIENCE,
        gateway
            .jobs
            .clone()
            .wait_job(wait_request(&job_id, Some(Duration::from_secs(3600)))),
    )
    .await
    .unwrap()
    .unwrap()
    .into_inner();
    assert_eq!(reply.outcome(), WaitOutcome::Terminal);
    assert_eq!(reply.job.unwrap().status(), JobStatus::Success);
    assert_eq!(gateway.job_gets(&job_id), 1);
}

#[tokio::test]
async fn watch_jobs_follows_five_jobs_and_ends_after_the_last() {
    let gateway = Gateway::start_with(volumes(5), |_| {}).await;
    let mut job_ids = Vec::new();
    for volume in gateway.sim.volumes() {
        if job_ids.len() == 4 {
            gateway.sim.fail_next_jobs(1, "VolumeBackup.0064", "failed on purpose");
        }
        job_ids.push(gateway.start_job(&volume.id).await);
    }
    let request = pb::WatchJobsRequest {
        job_ids: job_ids.clone(),
        ..Default::default()
    };
    let mut stream = gateway.jobs.clone().watch_jobs(request).await.unwrap().into_inner();

    let mut latest: HashMap<String, pb::Job> = HashMap::new();
    while latest.len() < 5 {
        let message = next(&mut stream).await.unwrap().expect("a first state for each job");
        if let Some(watch_jobs_response::Event::Job(job)) = message.event {
            assert_eq!(job.status(), JobStatus::Init);
            latest.insert(message.job_id, job);
        }
    }
    gateway.advance(1);
    gateway.advance(2);
    let mut finished = HashSet::new();
    while let Some(message) = next(&mut stream).await.expect("ends with OK") {
        assert!(job_ids.contains(&message.job_id), "{message:?}");
        assert!(
            !finished.contains(&message.job_id),
            "nothing after a job's end: {message:?}"
        );
        if let Some(watch_jobs_response::Event::Job(job)) = message.event {
            if matches!(job.status(), JobStatus::Success | JobStatus::Fail) {
                finished.insert(message.job_id.clone());
            }
            latest.insert(message.job_id, job);
        }
    }
    assert_eq!(finished.len(), 5, "the stream ended only after every job");
    let status = |i: usize| latest[&job_ids[i]].status();
    assert_eq!((0..4).map(status).collect::<Vec<_>>(), [JobStatus::Success; 4]);
    assert_eq!(status(4), JobStatus::Fail);
}

#[tokio::test]
async fn watch_jobs_reports_an_unknown_job_as_data_for_that_job() {
    let gateway = Gateway::start().await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let request = pb::WatchJobsRequest {
        job_ids: vec![UNKNOWN_JOB.into(), job_id.clone()],
        ..Default::default()
    };
    let mut stream = gateway.jobs.clone().watch_jobs(request).await.unwrap().into_inner();
    let mut error = None;
    let mut last = None;
    let mut advanced = false;
    while let Some(message) = next(&mut stream).await.expect("ends with OK") {
        match message.event.unwrap() {
            watch_jobs_response::Event::Error(e) => error = Some((message.job_id, e)),
            watch_jobs_response::Event::Job(job) => last = Some(job),
            watch_jobs_response::Event::Heartbeat(_) => {}
        }
        if error.is_some() && last.is_some() && !advanced {
            gateway.advance(3);
            advanced = true;
        }
    }
    let (id, error) = error.expect("an error for the unknown job");
    assert_eq!(id, UNKNOWN_JOB);
    assert_eq!(error.code, Code::NotFound as i32);
    assert_eq!(error.reason, "UPSTREAM_NOT_FOUND");
    assert_eq!(last.unwrap().status(), JobStatus::Success);
}

#[tokio::test]
async fn watching_or_waiting_for_an_unknown_job_is_not_found() {
    let gateway = Gateway::start().await;
    let status = watch_error(gateway.jobs.clone().watch_job(watch_request(UNKNOWN_JOB)).await).await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(vbs_code(&status).as_deref(), Some("common.0011"));
    let status = gateway
        .jobs
        .clone()
        .wait_job(wait_request(UNKNOWN_JOB, None))
        .await
        .expect_err("unknown job");
    assert_eq!(status.code(), Code::NotFound);
    until_hub(&gateway.hub, |s| s.active_pollers == 0 && s.active_watchers == 0).await;
}

/// Asserts INVALID_ARGUMENT naming `field` for `reason`, and that nothing went upstream.
fn assert_invalid<T: std::fmt::Debug>(gateway: &Gateway, result: Result<T, Status>, field: &str, reason: &str) {
    let status = result.expect_err("must be rejected");
    assert_eq!(crate::harness::assert_violation(&status, field), reason, "{field}");
    assert!(
        gateway.sim.requests().is_empty(),
        "{field}: something was sent upstream"
    );
}

#[tokio::test]
async fn job_ids_and_timeouts_are_checked_before_anything_is_sent() {
    let gateway = Gateway::start().await;
    let mut jobs = gateway.jobs.clone();
    let too_long = "x".repeat(65);
    let bad_ids = [
        ("", "FIELD_REQUIRED"),
        ("../backups", "BAD_CHARACTER"),
        ("a/b", "BAD_CHARACTER"),
        (too_long.as_str(), "TOO_LONG"),
    ];
    for (bad, reason) in bad_ids {
        assert_invalid(&gateway, jobs.watch_job(watch_request(bad)).await, "job_id", reason);
        assert_invalid(&gateway, jobs.wait_job(wait_request(bad, None)).await, "job_id", reason);
    }
    let negative = pb::WaitJobRequest {
        timeout: Some(prost_types::Duration { seconds: -1, nanos: 0 }),
        ..wait_request(UNKNOWN_JOB, None)
    };
    assert_invalid(&gateway, jobs.wait_job(negative).await, "timeout", "OUT_OF_RANGE");
    let too_long = wait_request(UNKNOWN_JOB, Some(Duration::from_secs(3601)));
    assert_invalid(&gateway, jobs.wait_job(too_long).await, "timeout", "OUT_OF_RANGE");

    let watch_jobs = |ids: Vec<String>| pb::WatchJobsRequest {
        job_ids: ids,
        ..Default::default()
    };
    let empty = jobs.watch_jobs(watch_jobs(vec![])).await;
    assert_invalid(&gateway, empty, "job_ids", "FIELD_REQUIRED");
    let many = (0..101).map(|i| format!("job-{i}")).collect();
    let many = jobs.watch_jobs(watch_jobs(many)).await;
    assert_invalid(&gateway, many, "job_ids", "TOO_MANY_ENTRIES");
    let twice = vec![UNKNOWN_JOB.to_string(), UNKNOWN_JOB.to_string()];
    let twice = jobs.watch_jobs(watch_jobs(twice)).await;
    assert_invalid(&gateway, twice, "job_ids[1]", "DUPLICATE_VALUE");
    let bad = vec![UNKNOWN_JOB.to_string(), "../x".to_string()];
    let bad = jobs.watch_jobs(watch_jobs(bad)).await;
    assert_invalid(&gateway, bad, "job_ids[1]", "BAD_CHARACTER");
    assert_eq!(gateway.hub.stats().polls_total, 0);
}

/// A WatchJob stream sent with `request_id` as its `x-request-id`, checked
/// to come back in the response headers.
async fn watch_as(gateway: &Gateway, job_id: &str, request_id: &str) -> Streaming<pb::WatchJobResponse> {
    let mut request = Request::new(watch_request(job_id));
    request
        .metadata_mut()
        .insert("x-request-id", request_id.parse().unwrap());
    let response = gateway.jobs.clone().watch_job(request).await.expect("WatchJob");
    assert_eq!(response.metadata().get("x-request-id").unwrap(), request_id);
    response.into_inner()
}

/// Reads `stream` until it ends with an error, which it must.
async fn ending_error<T>(stream: &mut Streaming<T>) -> Status {
    loop {
        match next(stream).await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the stream ended with OK"),
            Err(status) => return status,
        }
    }
}

#[tokio::test]
async fn a_watch_failing_after_it_opened_names_its_request_id_in_the_trailers() {
    let gateway = Gateway::start().await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut stream = watch_as(&gateway, &job_id, "watch-then-404").await;
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Init);

    // The job vanishes upstream: the next poll ends the stream with NOT_FOUND.
    gateway.sim.inject_http_errors(404, 100_000);
    let status = ending_error(&mut stream).await;
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "UPSTREAM_NOT_FOUND"
    );
    // tonic builds a mid-stream status from the trailers alone.
    assert_eq!(status.metadata().get("x-request-id").unwrap(), "watch-then-404");
}

#[tokio::test]
async fn shutdown_ends_open_watches_with_unavailable() {
    let gateway = Gateway::start().await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut stream = watch_as(&gateway, &job_id, "watch-at-shutdown").await;
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Init);
    let mut jobs = gateway.jobs.clone();
    let request = wait_request(&job_id, None);
    let waiting = tokio::spawn(async move { jobs.wait_job(request).await });
    until_hub(&gateway.hub, |s| s.active_watchers == 2).await;

    let hub = gateway.hub.clone();
    let stopping = tokio::spawn(gateway.stop());
    let status = loop {
        match next(&mut stream).await {
            Ok(Some(_)) => {}
            Ok(None) => panic!("the watch ended with OK"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "SHUTTING_DOWN");
    // Watch again, on another instance, after a short pause.
    assert_eq!(
        details.retry_info().and_then(|r| r.retry_delay),
        Some(Duration::from_secs(1))
    );
    // The headers went out long ago: the trailers name the call again.
    assert_eq!(status.metadata().get("x-request-id").unwrap(), "watch-at-shutdown");
    let waited = tokio::time::timeout(PATIENCE, waiting).await.unwrap().unwrap();
    let waited = waited.expect_err("WaitJob ends too");
    assert_eq!(waited.code(), Code::Unavailable);
    assert!(waited.get_error_details().retry_info().is_some(), "{waited:?}");
    tokio::time::timeout(PATIENCE, stopping)
        .await
        .expect("the gateway drains once the watches end")
        .unwrap();
    assert_eq!(hub.stats().active_pollers, 0);
}

#[tokio::test]
async fn a_watch_through_the_standard_world_polls_with_the_gateways_credentials() {
    // harness::World makes the simulator check the gateway's credentials, so
    // this covers the hub's polls being authorized like any other call.
    let world = crate::harness::World::start().await;
    let job_id = world
        .backups
        .clone()
        .create_backup(pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "watched".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let mut stream = world
        .jobs
        .clone()
        .watch_job(watch_request(&job_id))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Init);
    world.advance(3);
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Success);
    assert_ends_ok(&mut stream).await;
}

/// Upstream GETs of any job the simulator saw.
fn all_job_gets(sim: &Simulator) -> usize {
    let prefix = format!("/v1/{DEMO_PROJECT_ID}/jobs/");
    sim.requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.starts_with(&prefix))
        .count()
}

/// Waits (boundedly) until `done` holds of the simulator.
async fn until_sim(sim: &Simulator, what: &str, done: impl Fn(&Simulator) -> bool) {
    let waited = tokio::time::timeout(Duration::from_secs(20), async {
        while !done(sim) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "the simulator never saw {what}");
}

#[tokio::test]
async fn a_quiet_job_is_polled_every_initial_interval_so_its_end_is_seen_at_once() {
    // With a backoff of 10 and a maximum of 60 s, a schedule that backed off
    // quiet jobs would poll at 50 ms, 0.5 s, 5 s, 50 s...: eight polls would
    // take minutes, and the end would be seen up to a minute late.
    let gateway = Gateway::start_with(SimulatorConfig::for_testing(), |config| {
        config.watch.poll_initial = Duration::from_millis(50);
        config.watch.poll_max = Duration::from_secs(60);
        config.watch.poll_backoff = 10.0;
        config.watch.heartbeat = Duration::from_secs(60);
    })
    .await;
    let job_id = gateway.start_job(DISK_10GB).await;
    let mut stream = gateway.watch(&job_id).await;
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Init);
    until_sim(&gateway.sim, "eight polls of the quiet job", |_| {
        gateway.job_gets(&job_id) >= 8
    })
    .await;
    gateway.advance(1);
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Running);
    gateway.advance(2);
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Success);
    assert_ends_ok(&mut stream).await;
}

#[tokio::test]
async fn many_watched_jobs_share_the_poll_rate_fairly_and_stay_within_it() {
    const JOBS: usize = 12;
    const POLL_RATE: f64 = 4.0;
    let gateway = Gateway::start_with(volumes(JOBS), |config| {
        config.watch.poll_initial = Duration::from_millis(20);
        config.watch.poll_rate = Some(POLL_RATE);
        config.watch.heartbeat = Duration::from_secs(60);
    })
    .await;
    let mut job_ids = Vec::new();
    for volume in gateway.sim.volumes() {
        job_ids.push(gateway.start_job(&volume.id).await);
    }
    let mut streams = Vec::new();
    for job_id in &job_ids {
        streams.push(gateway.watch(job_id).await);
    }
    for stream in &mut streams {
        assert_eq!(next_job(stream).await.status(), JobStatus::Init);
    }
    let started = tokio::time::Instant::now();
    let before = all_job_gets(&gateway.sim);
    // Every job gets polled again (fair: nobody starves)...
    let counts_before: Vec<usize> = job_ids.iter().map(|id| gateway.job_gets(id)).collect();
    until_sim(&gateway.sim, "a second poll of every job", |_| {
        job_ids
            .iter()
            .zip(&counts_before)
            .all(|(id, before)| gateway.job_gets(id) > *before)
    })
    .await;
    // ...and all of them together stay within the rate (a 20 ms schedule
    // alone would make 600 GETs a second). One pace of slack covers jitter.
    let polls = all_job_gets(&gateway.sim) - before;
    let allowed = POLL_RATE * started.elapsed().as_secs_f64() * 1.1 + JOBS as f64;
    assert!(
        (polls as f64) <= allowed,
        "{polls} polls in {:?}, allowed {allowed}",
        started.elapsed()
    );
    gateway.advance(1);
    gateway.advance(2);
    for stream in &mut streams {
        while next_job(stream).await.status() != JobStatus::Success {}
    }
}

#[tokio::test]
async fn watching_more_jobs_than_the_cap_is_resource_exhausted_but_more_watchers_are_not() {
    let gateway = Gateway::start_with(volumes(3), |config| config.watch.max_jobs = 2).await;
    let mut job_ids = Vec::new();
    for volume in gateway.sim.volumes() {
        job_ids.push(gateway.start_job(&volume.id).await);
    }
    let _first = gateway.watch(&job_ids[0]).await;
    let _second = gateway.watch(&job_ids[1]).await;
    until_hub(&gateway.hub, |s| s.active_pollers == 2).await;
    let status = watch_error(gateway.jobs.clone().watch_job(watch_request(&job_ids[2])).await).await;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let details = status.get_error_details();
    assert_eq!(details.error_info().unwrap().reason, "TOO_MANY_WATCHED_JOBS");
    assert!(details.retry_info().is_some(), "says when to retry");
    assert!(status.message().contains("--max-watched-jobs"), "{}", status.message());
    // Another watcher of a job already polled costs no poller.
    let mut again = gateway.watch(&job_ids[0]).await;
    assert_eq!(next_job(&mut again).await.status(), JobStatus::Init);
    assert_eq!(gateway.hub.stats().active_pollers, 2);
    assert_eq!(
        gateway.job_gets(&job_ids[2]),
        0,
        "nothing was polled for the refused job"
    );
}

#[tokio::test]
async fn watches_of_made_up_job_ids_cost_one_get_each_and_no_poller_stays() {
    const WATCHES: usize = 200;
    // On a loaded machine a poll of 200 at once may take over a second: with
    // the default test heartbeat it would time out and be retried, and
    // heartbeats would come before the answer. What is tested is that a 404
    // is asked once, so give the polls all the time they need.
    let gateway = Gateway::start_with(SimulatorConfig::for_testing(), |config| {
        config.watch.heartbeat = Duration::from_secs(60);
        config.upstream_timeout = Duration::from_secs(60);
    })
    .await;
    let mut calls = Vec::new();
    for i in 0..WATCHES {
        let mut jobs = gateway.jobs.clone();
        calls.push(tokio::spawn(async move {
            let job_id = format!("4010b39b5281d3590152874bfa3b{i:04}");
            watch_error(jobs.watch_job(watch_request(&job_id)).await).await
        }));
    }
    for call in calls {
        assert_eq!(call.await.unwrap().code(), Code::NotFound);
    }
    until_hub(&gateway.hub, |s| s.active_pollers == 0 && s.active_watchers == 0).await;
    assert_eq!(
        all_job_gets(&gateway.sim),
        WATCHES,
        "one GET per made-up job, no retries"
    );
}
