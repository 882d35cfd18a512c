//! The gateway against an upstream written to misbehave: slow, endless,
//! oversized, resetting, rate limiting and unimplemented. Each test checks
//! the answer, how many requests reached upstream and, where a body could
//! eat memory, that the gateway stopped reading and let the connection go.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::{Code, Request, Status};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt;
use vbs_gateway::config::Config;
use vbs_gateway::proto::pb::{self, watch_job_response};
use vbs_simulator::SimulatorConfig;

use crate::harness::World;

/// How long a test waits for a condition before it fails.
const PATIENCE: Duration = Duration::from_secs(20);
/// Upstream writes this much of a body at a time.
const CHUNK: usize = 64 * 1024;

/// What the hostile upstream does with one request.
#[derive(Debug, Clone)]
enum Act {
    /// Reads the request and never answers.
    Hang,
    /// Answers `status` with these extra headers and a JSON body of about
    /// `size` bytes: `{"error":{"code":"X.1","message":"xxx…"}}`, or exactly
    /// `json` when given.
    Answer {
        status: u16,
        headers: Vec<(&'static str, String)>,
        json: Option<&'static str>,
        size: usize,
    },
    /// 200 with a chunked body that never ends.
    Endless,
    /// Reads the request, then resets the connection.
    Reset,
}

impl Act {
    fn json(status: u16, json: &'static str) -> Act {
        Act::Answer {
            status,
            headers: Vec::new(),
            json: Some(json),
            size: 0,
        }
    }

    fn error_of_size(status: u16, size: usize) -> Act {
        Act::Answer {
            status,
            headers: Vec::new(),
            json: None,
            size,
        }
    }

    fn retry_after(status: u16, seconds: u64) -> Act {
        Act::Answer {
            status,
            headers: vec![("retry-after", seconds.to_string())],
            json: Some(r#"{"error":{"code":"APIGW.0308","message":"slow down"}}"#),
            size: 0,
        }
    }
}

/// A misbehaving HTTP/1.1 upstream on port 0. It plays its acts in order,
/// one per request, and repeats the last one.
#[derive(Clone)]
struct Hostile {
    url: String,
    acts: Arc<Vec<Act>>,
    /// When each request arrived.
    arrivals: Arc<Mutex<Vec<Instant>>>,
    /// Body bytes written for endless answers, and whether one of them broke off.
    endless_written: Arc<AtomicU64>,
    endless_cut: Arc<AtomicBool>,
    open_connections: Arc<AtomicUsize>,
}

impl Hostile {
    async fn start(acts: Vec<Act>) -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hostile = Hostile {
            url: format!("http://{}", listener.local_addr().unwrap()),
            acts: Arc::new(acts),
            arrivals: Arc::default(),
            endless_written: Arc::default(),
            endless_cut: Arc::default(),
            open_connections: Arc::default(),
        };
        let server = hostile.clone();
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let server = server.clone();
                tokio::spawn(async move {
                    server.open_connections.fetch_add(1, Ordering::SeqCst);
                    server.serve(socket).await;
                    server.open_connections.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        hostile
    }

    fn requests(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }

    fn arrivals(&self) -> Vec<Instant> {
        self.arrivals.lock().unwrap().clone()
    }

    /// One connection: requests one after another until the socket closes.
    async fn serve(&self, mut socket: TcpStream) {
        while read_request(&mut socket).await.is_some() {
            let act = {
                let mut arrivals = self.arrivals.lock().unwrap();
                arrivals.push(Instant::now());
                self.acts[(arrivals.len() - 1).min(self.acts.len() - 1)].clone()
            };
            if !self.act(&mut socket, act).await {
                return;
            }
        }
    }

    /// Plays one act; false when the connection is done.
    async fn act(&self, socket: &mut TcpStream, act: Act) -> bool {
        match act {
            Act::Hang => {
                // Until the gateway gives up and closes its side.
                let mut rest = [0u8; 1024];
                while socket.read(&mut rest).await.is_ok_and(|n| n > 0) {}
                false
            }
            Act::Reset => {
                let _ = socket.set_zero_linger();
                false
            }
            Act::Endless => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return false;
                }
                let chunk = [
                    format!("{CHUNK:x}\r\n").into_bytes(),
                    vec![b' '; CHUNK],
                    b"\r\n".to_vec(),
                ]
                .concat();
                while socket.write_all(&chunk).await.is_ok() {
                    self.endless_written.fetch_add(CHUNK as u64, Ordering::SeqCst);
                }
                self.endless_cut.store(true, Ordering::SeqCst);
                false
            }
            Act::Answer {
                status,
                headers,
                json,
                size,
            } => answer(socket, status, &headers, json, size).await,
        }
    }
}

/// Reads one request head and its content-length body; None at the end of the connection.
async fn read_request(socket: &mut TcpStream) -> Option<()> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if socket.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    socket.read_exact(&mut body).await.ok()?;
    Some(())
}

/// Writes a whole answer, its body in chunks (a 50 MB body is never in memory).
async fn answer(
    socket: &mut TcpStream,
    status: u16,
    headers: &[(&'static str, String)],
    json: Option<&'static str>,
    size: usize,
) -> bool {
    let (prefix, filler, suffix) = match json {
        Some(json) => (json.to_string(), 0, String::new()),
        None => {
            let prefix = r#"{"error":{"code":"X.1","message":""#.to_string();
            let suffix = r#""}}"#.to_string();
            let filler = size.saturating_sub(prefix.len() + suffix.len());
            (prefix, filler, suffix)
        }
    };
    let length = prefix.len() + filler + suffix.len();
    let mut head =
        format!("HTTP/1.1 {status} Hostile\r\ncontent-type: application/json\r\ncontent-length: {length}\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut written =
        socket.write_all(head.as_bytes()).await.is_ok() && socket.write_all(prefix.as_bytes()).await.is_ok();
    let fill = vec![b'x'; CHUNK];
    let mut left = filler;
    while written && left > 0 {
        let now = left.min(CHUNK);
        written = socket.write_all(&fill[..now]).await.is_ok();
        left -= now;
    }
    written && socket.write_all(suffix.as_bytes()).await.is_ok()
}

/// A gateway (metrics on) in front of the hostile upstream, with `adjust` applied.
async fn gateway(hostile: &Hostile, adjust: impl FnOnce(&mut Config)) -> World {
    let url = hostile.url.parse().unwrap();
    World::start_with(SimulatorConfig::for_testing(), |config| {
        config.endpoint = Some(url);
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        adjust(config);
    })
    .await
}

fn list() -> pb::ListBackupsRequest {
    pb::ListBackupsRequest::default()
}

fn with_request_id<T>(message: T, id: &'static str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("x-request-id", id.parse().unwrap());
    request
}

fn reason(status: &Status) -> String {
    let info = status.get_error_details().error_info().cloned();
    info.unwrap_or_else(|| panic!("no ErrorInfo in {status:?}")).reason
}

/// Waits (bounded) until `condition` holds.
async fn until(what: &str, mut condition: impl FnMut() -> bool) {
    let started = Instant::now();
    while !condition() {
        assert!(started.elapsed() < PATIENCE, "waited {PATIENCE:?} for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// This process's resident memory, where /proc says it (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Asserts the process holds no more than `slack` beyond `before` (other
/// tests run alongside, so the bound is generous; a body kept whole would
/// pass it by far).
fn assert_memory_returned(before: Option<u64>, slack: u64) {
    if let (Some(before), Some(after)) = (before, resident_bytes()) {
        assert!(
            after < before + slack,
            "resident memory grew from {before} to {after} bytes"
        );
    }
}

async fn scrape(world: &World) -> String {
    let url = world.metrics_url.as_ref().expect("metrics are on");
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// The count of BackupService calls of `method` that ended with `code`.
fn handled(metrics: &str, method: &str, code: &str) -> f64 {
    let series = format!(
        r#"grpc_server_handled_total{{grpc_service="vbs.v2.BackupService",grpc_method="{method}",grpc_type="unary",grpc_code="{code}"}}"#
    );
    metrics
        .lines()
        .find(|line| line.starts_with(&series) && line[series.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or(0.0)
}

// --- item 3: bodies and error texts are capped ---

#[tokio::test]
async fn an_endless_body_is_cut_at_the_cap_and_its_connection_dropped() {
    let hostile = Hostile::start(vec![Act::Endless]).await;
    let world = gateway(&hostile, |config| config.bounds.max_upstream_body = 1 << 20).await;
    let before = resident_bytes();
    let status = world
        .backups
        .clone()
        .list_backups(list())
        .await
        .expect_err("over the cap");
    assert_eq!(status.code(), Code::Internal, "{status:?}");
    assert_eq!(reason(&status), "UPSTREAM_BODY_TOO_LARGE");
    assert_eq!(hostile.requests(), 1, "an oversized answer is not asked for again");
    until("upstream to see its connection dropped", || {
        hostile.endless_cut.load(Ordering::SeqCst)
    })
    .await;
    assert_memory_returned(before, 128 << 20);
    let written = hostile.endless_written.load(Ordering::SeqCst);
    // What the gateway read (the cap) plus what the kernel's socket buffers held.
    assert!(
        written < 64 << 20,
        "upstream wrote {written} bytes before the gateway let go"
    );
}

#[tokio::test]
async fn a_body_announced_over_the_cap_is_not_read() {
    let hostile = Hostile::start(vec![Act::error_of_size(200, 4 << 20)]).await;
    let world = gateway(&hostile, |config| config.bounds.max_upstream_body = 1 << 20).await;
    let status = world
        .backups
        .clone()
        .list_backups(list())
        .await
        .expect_err("over the cap");
    assert_eq!(status.code(), Code::Internal);
    assert_eq!(reason(&status), "UPSTREAM_BODY_TOO_LARGE");
    assert_eq!(hostile.requests(), 1);
    until("the connection to close", || {
        hostile.open_connections.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn a_10_kb_upstream_error_reaches_the_client_cut_with_its_details() {
    let hostile = Hostile::start(vec![Act::error_of_size(400, 10 * 1024)]).await;
    let world = gateway(&hostile, |_| {}).await;
    let status = world
        .backups
        .clone()
        .list_backups(with_request_id(list(), "hostile-10kb"))
        .await
        .expect_err("upstream refuses");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.metadata().get("x-request-id").unwrap(), "hostile-10kb");
    assert_eq!(reason(&status), "UPSTREAM_INVALID_ARGUMENT");
    let info = status.get_error_details().error_info().cloned().unwrap();
    let message = &info.metadata["vbsMessage"];
    assert!(
        message.len() <= 1024 + 16 && message.ends_with("…[cut]"),
        "{} bytes",
        message.len()
    );
    assert!(status.message().len() <= 1200 && status.message().contains("…[cut]"));
    assert_eq!(hostile.requests(), 1);
}

#[tokio::test]
async fn a_50_mb_upstream_error_reaches_the_client_by_its_status_alone() {
    let hostile = Hostile::start(vec![Act::error_of_size(503, 50 << 20)]).await;
    let world = gateway(&hostile, |_| {}).await;
    let before = resident_bytes();
    let status = world
        .backups
        .clone()
        .list_backups(with_request_id(list(), "hostile-50mb"))
        .await
        .expect_err("upstream fails");
    assert_memory_returned(before, 128 << 20);
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.metadata().get("x-request-id").unwrap(), "hostile-50mb");
    assert_eq!(reason(&status), "UPSTREAM_UNAVAILABLE");
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.metadata.get("httpStatus").map(String::as_str), Some("503"));
    assert!(!info.metadata.contains_key("vbsMessage"), "the text was never read");
    assert_eq!(hostile.requests(), 3, "a read is retried on 503");
}

// --- item 4: time is bounded ---

#[tokio::test]
async fn a_resetting_upstream_fails_reads_after_their_retries_and_writes_at_once() {
    let hostile = Hostile::start(vec![Act::Reset]).await;
    let world = gateway(&hostile, |_| {}).await;
    let status = world.backups.clone().list_backups(list()).await.expect_err("reset");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(hostile.requests(), 3);
    let create = pb::CreateBackupRequest {
        volume_id: crate::harness::DISK_10GB.into(),
        name: "once".into(),
        ..Default::default()
    };
    let status = world.backups.clone().create_backup(create).await.expect_err("reset");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(hostile.requests(), 4, "a write that may have arrived is not sent again");
}

#[tokio::test]
async fn retry_after_is_waited_out_in_full() {
    let hostile = Hostile::start(vec![Act::retry_after(503, 3), Act::json(200, r#"{"backups":[]}"#)]).await;
    let world = gateway(&hostile, |_| {}).await;
    world
        .backups
        .clone()
        .list_backups(list())
        .await
        .expect("the retry succeeds");
    let arrivals = hostile.arrivals();
    assert_eq!(arrivals.len(), 2);
    let waited = arrivals[1] - arrivals[0];
    assert!(
        waited >= Duration::from_secs(3),
        "retried after {waited:?}, asked for 3 s"
    );
}

#[tokio::test]
async fn a_retry_after_past_the_deadline_fails_at_once_with_retry_info() {
    let hostile = Hostile::start(vec![Act::retry_after(429, 30)]).await;
    let world = gateway(&hostile, |_| {}).await;
    let mut request = Request::new(list());
    request.set_timeout(Duration::from_secs(10));
    let started = Instant::now();
    let status = world
        .backups
        .clone()
        .list_backups(request)
        .await
        .expect_err("rate limited");
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "it failed at once, not at the deadline"
    );
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    let delay = status.get_error_details().retry_info().and_then(|r| r.retry_delay);
    assert_eq!(delay, Some(Duration::from_secs(30)), "the delay upstream asked for");
    assert_eq!(hostile.requests(), 1);
}

#[tokio::test]
async fn not_implemented_is_never_retried() {
    let hostile = Hostile::start(vec![Act::json(501, r#"{"error":{"code":"X.501","message":"no"}}"#)]).await;
    let world = gateway(&hostile, |_| {}).await;
    let status = world.backups.clone().list_backups(list()).await.expect_err("501");
    assert_eq!(status.code(), Code::Unimplemented);
    assert_eq!(hostile.requests(), 1);
}

#[tokio::test]
async fn without_a_deadline_the_default_one_bounds_every_attempt() {
    let hostile = Hostile::start(vec![Act::Hang]).await;
    let world = gateway(&hostile, |config| {
        config.bounds.default_deadline = Duration::from_secs(1);
        config.upstream_timeout = Duration::from_secs(30);
    })
    .await;
    let status = world
        .backups
        .clone()
        .list_backups(list())
        .await
        .expect_err("hung upstream");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(hostile.requests(), 1, "no time was left for another attempt");
}

#[tokio::test]
async fn shutdown_reports_not_serving_and_drains_for_at_most_the_drain_timeout() {
    let hostile = Hostile::start(vec![Act::Hang]).await;
    let world = gateway(&hostile, |config| {
        config.bounds.drain_timeout = Duration::from_millis(300)
    })
    .await;
    let mut health = HealthClient::new(world.channel.clone());
    let watched = HealthCheckRequest {
        service: "vbs.v2.BackupService".into(),
    };
    let mut statuses = health.watch(watched).await.unwrap().into_inner();
    let first = statuses.message().await.unwrap().unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    let whole_server = HealthCheckRequest { service: String::new() };
    let mut whole = health.watch(whole_server).await.unwrap().into_inner();
    assert_eq!(whole.message().await.unwrap().unwrap().status(), ServingStatus::Serving);
    let mut client = world.backups.clone();
    let in_flight = tokio::spawn(async move { client.list_backups(list()).await });
    until("the call to reach upstream", || hostile.requests() == 1).await;

    let stopped = tokio::spawn(world.stop());
    let next = tokio::time::timeout(PATIENCE, statuses.message())
        .await
        .expect("a health update");
    assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
    let next = tokio::time::timeout(PATIENCE, whole.message())
        .await
        .expect("a health update of the whole server");
    assert_eq!(next.unwrap().unwrap().status(), ServingStatus::NotServing);
    tokio::time::timeout(PATIENCE, stopped)
        .await
        .expect("shutdown ends after the drain timeout, though a call hangs")
        .unwrap();
    let status = in_flight.await.unwrap().expect_err("cancelled at the end of the drain");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), "SHUTTING_DOWN");
    assert_eq!(
        status.get_error_details().retry_info().and_then(|r| r.retry_delay),
        Some(Duration::from_secs(1)),
        "ask another instance after a short pause"
    );
    assert!(status.metadata().get("x-request-id").is_some(), "{status:?}");
    until("the hung upstream call to be dropped", || {
        hostile.open_connections.load(Ordering::SeqCst) == 0
    })
    .await;
    assert_eq!(hostile.requests(), 1);
}

#[tokio::test]
async fn heartbeats_count_an_upstream_hang_as_failures() {
    let job = r#"{"job_id":"4010b39b5281d3590152874bfa3b1604","job_type":"bksCreateBackup","status":"RUNNING"}"#;
    let hostile = Hostile::start(vec![Act::json(200, job), Act::Hang]).await;
    let world = gateway(&hostile, |config| config.watch.heartbeat = Duration::from_millis(300)).await;
    let request = pb::WatchJobRequest {
        job_id: "4010b39b5281d3590152874bfa3b1604".into(),
        ..Default::default()
    };
    let mut stream = world.jobs.clone().watch_job(request).await.unwrap().into_inner();
    let started = Instant::now();
    loop {
        assert!(started.elapsed() < PATIENCE, "no heartbeat counted the hang");
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if let Some(watch_job_response::Event::Heartbeat(beat)) = message.event
            && beat.consecutive_failures > 0
        {
            assert_eq!(beat.last_error, "VBS did not answer in time");
            break;
        }
    }
    assert!(hostile.requests() >= 2);
}

// --- item 7: calls that end without their answer are counted ---

#[tokio::test]
async fn cancelled_and_timed_out_calls_are_counted() {
    let hostile = Hostile::start(vec![Act::Hang]).await;
    let world = gateway(&hostile, |_| {}).await;
    let mut client = world.backups.clone();
    let cancelled = tokio::spawn(async move { client.list_backups(list()).await });
    until("the call to reach upstream", || hostile.requests() == 1).await;
    cancelled.abort();
    let mut metrics = String::new();
    for _ in 0..2000 {
        metrics = scrape(&world).await;
        if handled(&metrics, "ListBackups", "Canceled") == 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(handled(&metrics, "ListBackups", "Canceled"), 1.0, "{metrics}");

    let mut request = Request::new(pb::GetBackupRequest {
        backup_id: crate::harness::UNKNOWN_ID.into(),
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(500));
    let status = world
        .backups
        .clone()
        .get_backup(request)
        .await
        .expect_err("hung upstream");
    assert_eq!(status.code(), Code::DeadlineExceeded);
    let metrics = scrape(&world).await;
    assert_eq!(handled(&metrics, "GetBackup", "DeadlineExceeded"), 1.0, "{metrics}");
}
