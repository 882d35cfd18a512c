//! What the logs say, captured as JSON lines at trace level for every crate:
//! no key, password or token ever appears in them, and an RPC's request id
//! marks the span of each upstream call it makes.

// A test that cannot unwrap has failed; the panic says where.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

use tonic::Request;
use vbs_gateway::proto::pb;
use vbs_gateway::rest::credentials::{AccessKey, Credentials, Secret, Signing};
use vbs_simulator::{self as simulator, SimulatorConfig};

#[allow(dead_code)]
#[path = "e2e/harness.rs"]
mod harness;

use harness::{ACCESS_KEY, AuthMode, DISK_10GB, DISK_20GB, IAM_PASSWORD, SECRET_KEY, World, gateway_credentials};

/// The worlds of this binary start in IAM mode unless a test says otherwise.
pub(crate) const AUTH: AuthMode = AuthMode::Iam;

const STATIC_TOKEN: &str = "static-token-9f8e7d6c5b4a";
const CALLER_TOKEN: &str = "caller-token-1a2b3c4d5e6f";
const TEMPORARY_AK: &str = "TEMPORARYAKID0000009";
const TEMPORARY_SK: &str = "temporarySecretKey000000000000000000009";
const SECURITY_TOKEN: &str = "security-token-0f1e2d3c4b5a";
const CALLER_KEY: &str = "caller-key-8e7f6a5b4c3d";
const WRONG_CALLER_KEY: &str = "caller-key-wrong-2d1c0b";

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

/// The process-wide capture, installed by whichever test runs first.
fn captured() -> &'static Buffer {
    static BUFFER: OnceLock<Buffer> = OnceLock::new();
    BUFFER.get_or_init(|| {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        tracing_subscriber::fmt()
            .json()
            .with_env_filter("trace")
            .with_writer(move || writer.clone())
            .init();
        buffer
    })
}

fn logs() -> String {
    String::from_utf8_lossy(&captured().0.lock().unwrap()).into_owned()
}

impl Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A walk that touches every code path that handles credentials.
async fn walk(world: &World) {
    let backup_id = world.make_backup(DISK_10GB, "secret-walk").await;
    let mut backups = world.backups.clone();
    let restore = backups
        .restore_backup(pb::RestoreBackupRequest {
            backup_id,
            volume_id: DISK_20GB.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    world.finish_job(&restore.job_id).await;
    backups
        .list_backup_details(pb::ListBackupDetailsRequest::default())
        .await
        .unwrap();
}

/// A world in this binary's IAM mode, or with `credentials` instead.
async fn world_with(credentials: Option<Credentials>, sim: impl FnOnce(&mut SimulatorConfig)) -> World {
    let mut sim_config = SimulatorConfig::for_testing();
    sim(&mut sim_config);
    World::start_with(sim_config, |config| {
        if let Some(credentials) = credentials {
            config.credentials = credentials;
        }
        config.pass_through_token = true;
    })
    .await
}

/// A world whose callers file knows CALLER_KEY as the reader "billing".
async fn world_with_caller_key() -> World {
    let path = std::env::temp_dir().join(format!("vbs-gateway-logs-{}.toml", uuid::Uuid::new_v4()));
    let entry = vbs_gateway::config::key_sha256_line(CALLER_KEY);
    std::fs::write(
        &path,
        format!("[[caller]]\nname = \"billing\"\n{entry}\nprojects = [\"*\"]\nrole = \"reader\"\n"),
    )
    .unwrap();
    World::start_with(SimulatorConfig::for_testing(), |config| {
        config.callers.callers_file = Some(path);
    })
    .await
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_any_log_line() {
    captured();
    let mut tokens = Vec::new();

    // IAM user: token issued, used, expired, renewed; then a refused password.
    let world = world_with(None, |_| {}).await;
    walk(&world).await;
    world.advance(25 * 3600);
    walk(&world).await;
    tokens.extend(
        world
            .sim
            .requests()
            .iter()
            .flat_map(|r| r.headers.clone())
            .filter(|(k, _)| k == "x-auth-token"),
    );
    drop(world);
    let world = world_with(None, |_| {}).await;
    world.sim.revoke_tokens();
    let mut backups = world.backups.clone();
    let _ = backups.list_backups(pb::ListBackupsRequest::default()).await;

    // AK/SK, right and wrong.
    let world = world_with(Some(gateway_credentials(AuthMode::AkSk, "http://unused")), |_| {}).await;
    walk(&world).await;
    let wrong = Credentials::AccessKey(AccessKey {
        access_key: Secret::new(ACCESS_KEY),
        secret_key: Secret::new("wrong-secret-key-4d3c2b1a"),
        security_token: None,
        signing: Signing::default(),
    });
    let world = world_with(Some(wrong), |_| {}).await;
    let _ = world
        .backups
        .clone()
        .list_backups(pb::ListBackupsRequest::default())
        .await;

    // Temporary AK/SK with a security token.
    let temporary = Credentials::AccessKey(AccessKey {
        access_key: Secret::new(TEMPORARY_AK),
        secret_key: Secret::new(TEMPORARY_SK),
        security_token: Some(Secret::new(SECURITY_TOKEN)),
        signing: Signing::default(),
    });
    let world = world_with(Some(temporary), |sim| {
        sim.auth.access_keys.push(simulator::AccessKey {
            access_key: TEMPORARY_AK.into(),
            secret_key: Secret::new(TEMPORARY_SK),
            security_token: Some(Secret::new(SECURITY_TOKEN)),
        })
    })
    .await;
    walk(&world).await;

    // A static token, and a caller's own token passed through.
    let world = world_with(Some(Credentials::Token(Secret::new(STATIC_TOKEN))), |sim| {
        sim.auth.static_tokens.push(Secret::new(STATIC_TOKEN));
        sim.auth.static_tokens.push(Secret::new(CALLER_TOKEN));
    })
    .await;
    walk(&world).await;
    let mut request = Request::new(pb::ListBackupsRequest::default());
    request
        .metadata_mut()
        .insert("x-auth-token", CALLER_TOKEN.parse().unwrap());
    world.backups.clone().list_backups(request).await.unwrap();
    drop(world);

    // Callers with bearer keys, known and unknown.
    let world = world_with_caller_key().await;
    let get = pb::GetBackupRequest {
        backup_id: "54ba0e69-48a0-4a77-9cdf-a7979a7e2648".into(),
        ..Default::default()
    };
    let status = world
        .backups
        .clone()
        .get_backup(with_key(get, CALLER_KEY))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let list = with_key(pb::ListBackupsRequest::default(), WRONG_CALLER_KEY);
    let status = world.backups.clone().list_backups(list).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);
    drop(world);

    let logs = logs();
    let access = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| event["fields"]["caller"] == "billing" && event["fields"]["method"] == "GetBackup")
        .expect("an access-log line of the caller's GetBackup");
    let fields = &access["fields"];
    assert_eq!(access["level"], "INFO");
    assert_eq!(fields["project"], harness::PROJECT_ID);
    assert_eq!(fields["resources"], "backup_id=54ba0e69-48a0-4a77-9cdf-a7979a7e2648");
    assert_eq!(fields["code"], "NotFound");
    assert!(
        fields["duration_ms"].is_f64() && fields["request_id"].is_string(),
        "{fields}"
    );
    assert!(logs.contains(r#""level":"TRACE""#), "trace logging was not captured");
    assert!(
        logs.contains("upstream call"),
        "the gateway's own lines were not captured"
    );
    assert!(tokens.len() >= 2, "the IAM walk used no tokens: {tokens:?}");
    let mut secrets = vec![
        ACCESS_KEY,
        SECRET_KEY,
        IAM_PASSWORD,
        STATIC_TOKEN,
        CALLER_TOKEN,
        TEMPORARY_AK,
        TEMPORARY_SK,
        SECURITY_TOKEN,
        "wrong-secret-key-4d3c2b1a",
        CALLER_KEY,
        WRONG_CALLER_KEY,
    ];
    secrets.extend(tokens.iter().map(|(_, token)| token.as_str()));
    for secret in secrets {
        if let Some(at) = logs.find(secret) {
            let line = logs[..at].rsplit('\n').next().unwrap_or_default();
            panic!("a secret reached the logs: {line}{secret}...");
        }
    }
}

#[tokio::test]
async fn the_request_id_marks_the_upstream_call_span() {
    captured();
    let world = world_with(Some(gateway_credentials(AuthMode::AkSk, "http://unused")), |_| {}).await;
    let mut request = Request::new(pb::GetBackupRequest {
        backup_id: "54ba0e69-48a0-4a77-9cdf-a7979a7e2648".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("x-request-id", "trace-me-4f1d9c".parse().unwrap());
    let status = world
        .backups
        .clone()
        .get_backup(request)
        .await
        .expect_err("no such backup");
    assert_eq!(status.metadata().get("x-request-id").unwrap(), "trace-me-4f1d9c");

    let logs = logs();
    let line = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| {
            event["fields"]["message"] == "upstream call"
                && event["spans"].as_array().is_some_and(|spans| {
                    spans
                        .iter()
                        .any(|s| s["name"] == "rpc" && s["request_id"] == "trace-me-4f1d9c")
                })
        })
        .expect("an upstream call logged inside the RPC's span");
    let upstream = &line["span"];
    assert_eq!(upstream["name"], "upstream");
    assert_eq!(upstream["operation"], "GetBackup");
    assert_eq!(upstream["status"], 404);
    assert!(upstream["elapsed_ms"].is_u64(), "{upstream}");
    assert_eq!(rpc_span(&line)["rpc.method"], "GetBackup");
}

#[tokio::test]
async fn serving_without_identities_off_loopback_is_a_warning_at_start() {
    captured();
    let _world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.callers.allow_unauthenticated = true;
    })
    .await;
    let warning = logs()
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|event| {
            event["level"] == "WARN"
                && event["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("--allow-unauthenticated"))
        });
    assert!(warning.is_some(), "no start-up warning for --allow-unauthenticated");
}

/// An upstream that reads each request, notes it, and answers `reply` (or never, when None).
async fn scripted_upstream(reply: Option<String>) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (counter, reply) = (counter.clone(), reply.clone());
            tokio::spawn(async move {
                let mut buffer = [0u8; 8192];
                if socket.read(&mut buffer).await.unwrap_or(0) == 0 {
                    return;
                }
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                match reply {
                    Some(reply) => {
                        let _ = socket.write_all(reply.as_bytes()).await;
                    }
                    None => while socket.read(&mut buffer).await.is_ok_and(|n| n > 0) {},
                }
            });
        }
    });
    (url, requests)
}

/// The RPC's own span among those a logged event sits in.
fn rpc_span(event: &serde_json::Value) -> &serde_json::Value {
    event["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "rpc")
        .unwrap()
}

/// The JSON log lines inside the span of the RPC with `request_id`.
fn lines_of_rpc(request_id: &str) -> Vec<(String, serde_json::Value)> {
    logs()
        .lines()
        .filter_map(|line| Some((line.to_string(), serde_json::from_str::<serde_json::Value>(line).ok()?)))
        .filter(|(_, event)| {
            event["spans"].as_array().is_some_and(|spans| {
                spans
                    .iter()
                    .any(|s| s["name"] == "rpc" && s["request_id"] == request_id)
            })
        })
        .collect()
}

/// Runs `call` against an upstream that never answers, cancels it once the
/// upstream has its request, and returns the call's "ended without its
/// answer" log line.
async fn log_of_a_cancelled_call<Fut>(
    marker: &str,
    call: impl FnOnce(pb::backup_service_client::BackupServiceClient<tonic::transport::Channel>) -> Fut,
) -> serde_json::Value
where
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    captured();
    let (url, requests) = scripted_upstream(None).await;
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.endpoint = Some(url.parse().unwrap());
    })
    .await;
    let call = tokio::spawn(call(world.backups.clone()));
    let started = std::time::Instant::now();
    while requests.load(std::sync::atomic::Ordering::SeqCst) == 0 {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "the call never reached upstream"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    call.abort();
    loop {
        let found = lines_of_rpc(marker)
            .into_iter()
            .find(|(_, event)| event["fields"]["message"] == "rpc ended without its answer");
        if let Some((_, event)) = found {
            return event;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no log line for the cancelled call"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A request whose log lines carry `marker` as their request id.
fn marked<T>(message: T, marker: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("x-request-id", marker.parse().unwrap());
    request
}

#[tokio::test]
async fn a_cancelled_call_is_logged_with_what_it_sent_upstream() {
    let ended = log_of_a_cancelled_call("cancel-me-7a1e", |mut backups| async move {
        let _ = backups
            .list_backups(marked(pb::ListBackupsRequest::default(), "cancel-me-7a1e"))
            .await;
    })
    .await;
    assert_eq!(ended["fields"]["code"], "Cancelled", "{ended}");
    let sent = ended["fields"]["sent_upstream"].as_str().unwrap();
    assert!(
        sent.starts_with("GET /v2/") && sent.ends_with("/backups (ListBackups)"),
        "{sent}"
    );
}

#[tokio::test]
async fn a_cancelled_write_names_what_its_detached_task_sent() {
    let ended = log_of_a_cancelled_call("cancel-write-4c2d", |mut backups| async move {
        let create = pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "left-behind".into(),
            request_id: "5f2b7a3c-1d4e-4f60-8a9b-0c1d2e3f4a5b".into(),
            ..Default::default()
        };
        let _ = backups.create_backup(marked(create, "cancel-write-4c2d")).await;
    })
    .await;
    assert_eq!(ended["fields"]["code"], "Cancelled", "{ended}");
    let sent = ended["fields"]["sent_upstream"].as_str().unwrap();
    assert!(
        sent.starts_with("POST /v2/") && sent.ends_with("/cloudbackups (CreateBackup)"),
        "{sent}"
    );
}

#[tokio::test]
async fn a_huge_upstream_error_message_is_cut_in_the_logs() {
    captured();
    let message = "m".repeat(50 * 1024);
    let body = format!(r#"{{"error":{{"code":"VolumeBackup.0005","message":"{message}"}}}}"#);
    let reply = format!(
        "HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let (url, _) = scripted_upstream(Some(reply)).await;
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.endpoint = Some(url.parse().unwrap());
    })
    .await;
    let mut request = Request::new(pb::ListBackupsRequest::default());
    request
        .metadata_mut()
        .insert("x-request-id", "cut-me-3b9c".parse().unwrap());
    let status = world
        .backups
        .clone()
        .list_backups(request)
        .await
        .expect_err("upstream refuses");
    assert!(status.message().len() < 1200, "{} bytes", status.message().len());
    let lines = lines_of_rpc("cut-me-3b9c");
    let (line, _) = lines
        .iter()
        .find(|(_, event)| event["fields"]["message"] == "upstream rejected a call")
        .expect("the refusal is logged");
    assert!(line.contains("…[cut]"), "{line}");
    assert!(line.len() < 6 * 1024, "a {}-byte log line", line.len());
}

/// The binary serving with stderr piped: the lines it writes until it says
/// "serving" (at most 60 s), then it is stopped. The endpoint is never called;
/// naming one keeps the test independent of the embedded simulator.
fn stderr_of_a_piped_gateway(format: &str) -> String {
    use std::io::BufRead;
    use std::process::{Command, Stdio};
    use std::time::Duration;

    let mut child = Command::new(env!("CARGO_BIN_EXE_vbs-gateway"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--endpoint",
            "http://127.0.0.1:9",
            "--log-format",
            format,
        ])
        .env_remove("NO_COLOR")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines, received) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !seen.contains("serving") {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match received.recv_timeout(left) {
            Ok(line) => {
                seen.push_str(&line);
                seen.push('\n');
            }
            Err(_) => break,
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        seen.contains("serving"),
        "the gateway never said it was serving: {seen}"
    );
    seen
}

#[tokio::test]
async fn a_path_that_names_no_rpc_is_logged_shortened_as_unknown() {
    captured();
    let world = world_with(Some(gateway_credentials(AuthMode::AkSk, "http://unused")), |_| {}).await;
    let path = format!("/made.up.Service/{}", "A".repeat(300));
    let mut grpc = tonic::client::Grpc::new(world.channel.clone());
    grpc.ready().await.unwrap();
    let status = grpc
        .unary::<_, pb::GetBackupResponse, _>(
            marked(pb::GetBackupRequest::default(), "unknown-path-7c2e"),
            http::uri::PathAndQuery::try_from(path.as_str()).unwrap(),
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("no such RPC");
    assert_eq!(status.code(), tonic::Code::Unimplemented);

    let lines = lines_of_rpc("unknown-path-7c2e");
    let (_, access) = lines
        .iter()
        .find(|(_, event)| event["fields"]["message"] == "rpc")
        .expect("the call's access line");
    assert_eq!(access["fields"]["service"], "unknown", "{access}");
    assert_eq!(access["fields"]["code"], "Unimplemented", "{access}");
    let span = rpc_span(access);
    assert_eq!(span["rpc.path"], path[..128], "{span}");
}

#[test]
fn piped_stderr_gets_no_colour_escapes() {
    for format in ["text", "json"] {
        let stderr = stderr_of_a_piped_gateway(format);
        assert!(
            !stderr.contains('\u{1b}'),
            "{format}: ANSI escape in piped logs:\n{stderr}"
        );
    }
}
