//! The front door: callers known by a bearer key (the callers file, re-read
//! when it changes), their roles and projects checked before anything is sent,
//! their limits, and what needs no identity (health, reflection). Also the
//! binary's own answers: `hash-key`, and exit 64 for an unguarded --listen.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient};
use tonic_types::StatusExt;
use vbs_gateway::config::{Config, key_sha256_line};
use vbs_gateway::proto::{FILE_DESCRIPTOR_SET, pb};
use vbs_simulator::SimulatorConfig;

use crate::harness::{DISK_10GB, PROJECT_ID, World};

const READER_KEY: &str = "reader-key-3b9d0c1e";
const OPERATOR_KEY: &str = "operator-key-77aa41f0";
const ADMIN_KEY: &str = "admin-key-51e2c9d8";
const NARROW_ADMIN_KEY: &str = "narrow-admin-key-0c4f";
const OTHER_PROJECT: &str = "0123456789abcdef0123456789abcdef";

fn entry(name: &str, key: &str, projects: &str, role: &str) -> String {
    format!(
        "[[caller]]\nname = \"{name}\"\n{}\nprojects = {projects}\nrole = \"{role}\"\n\n",
        key_sha256_line(key)
    )
}

fn callers_text() -> String {
    [
        entry("billing", READER_KEY, &format!("[\"{PROJECT_ID}\"]"), "reader"),
        entry("deployer", OPERATOR_KEY, "[\"*\"]", "operator"),
        entry("ops", ADMIN_KEY, "[\"*\"]", "admin"),
        entry("narrow", NARROW_ADMIN_KEY, &format!("[\"{PROJECT_ID}\"]"), "admin"),
    ]
    .concat()
}

/// A file in the temp folder with `text`, named uniquely for this test.
fn temp_file(text: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("vbs-gateway-callers-{}.toml", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path
}

/// A world whose gateway knows the callers of `text`, with metrics on.
async fn world_with_callers(text: &str, adjust: impl FnOnce(&mut Config)) -> (World, PathBuf) {
    let path = temp_file(text);
    let file = path.clone();
    let world = World::start_with(SimulatorConfig::for_testing(), move |config| {
        config.callers.callers_file = Some(file);
        config.callers.callers_reload_interval = Duration::from_millis(20);
        config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
        adjust(config);
    })
    .await;
    (world, path)
}

fn with_key<T>(message: T, key: &str) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

/// Asserts a front-door refusal: the code, the reason, ErrorInfo metadata,
/// and no key anywhere in what the client sees.
fn assert_refused(status: &Status, code: Code, reason: &str, method: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
    assert_eq!(info.domain, "vbs-gateway");
    assert_eq!(info.reason, reason);
    assert_eq!(
        info.metadata.get("method").map(String::as_str),
        Some(method),
        "{info:?}"
    );
    let seen = format!("{status:?} {info:?}");
    for key in [READER_KEY, OPERATOR_KEY, ADMIN_KEY, NARROW_ADMIN_KEY] {
        assert!(!seen.contains(key), "a key reached the client: {seen}");
    }
}

async fn scrape(world: &World) -> String {
    let url = world.metrics_url.as_ref().expect("metrics are on");
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// Retries `check` every 10 ms for at most five seconds.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..500 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within 5 s");
}

#[tokio::test]
async fn a_call_without_a_known_key_is_unauthenticated_and_sends_nothing() {
    let (world, _) = world_with_callers(&callers_text(), |_| {}).await;
    let mut backups = world.backups.clone();
    let none = backups
        .list_backups(pb::ListBackupsRequest::default())
        .await
        .unwrap_err();
    assert_refused(&none, Code::Unauthenticated, "CALLER_UNKNOWN", "ListBackups");
    let wrong = with_key(pb::ListBackupsRequest::default(), "reader-key-3b9d0c1f");
    let wrong = backups.list_backups(wrong).await.unwrap_err();
    assert_refused(&wrong, Code::Unauthenticated, "CALLER_UNKNOWN", "ListBackups");
    assert!(world.upstream_requests().is_empty());

    let known = with_key(pb::ListBackupsRequest::default(), READER_KEY);
    backups.list_backups(known).await.expect("a reader lists");

    // Health needs no identity; reflection (on by default) neither.
    let mut health = HealthClient::new(world.channel.clone());
    let reply = health.check(HealthCheckRequest::default()).await.unwrap();
    assert_eq!(reply.into_inner().status(), ServingStatus::Serving);
    let text = scrape(&world).await;
    assert!(
        text.contains(r#"vbs_caller_refusals_total{caller="unknown",reason="CALLER_UNKNOWN"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"grpc_server_handled_total{grpc_service="vbs.v2.BackupService",grpc_method="ListBackups",grpc_type="unary",caller="billing",grpc_code="OK"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn roles_and_projects_decide_before_anything_is_sent() {
    let (world, _) = world_with_callers(&callers_text(), |_| {}).await;
    let mut backups = world.backups.clone();
    let create = || pb::CreateBackupRequest {
        volume_id: DISK_10GB.into(),
        name: "by-role".into(),
        ..Default::default()
    };
    let denied = backups.create_backup(with_key(create(), READER_KEY)).await.unwrap_err();
    assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED", "CreateBackup");
    // An empty project_id is checked as the default project.
    assert_eq!(
        crate::harness::error_metadata(&denied)
            .get("project")
            .map(String::as_str),
        Some(PROJECT_ID)
    );
    let elsewhere = pb::GetBackupRequest {
        project_id: OTHER_PROJECT.into(),
        backup_id: DISK_10GB.into(),
    };
    let denied = backups.get_backup(with_key(elsewhere, READER_KEY)).await.unwrap_err();
    assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED", "GetBackup");
    assert_eq!(
        crate::harness::error_metadata(&denied)
            .get("project")
            .map(String::as_str),
        Some(OTHER_PROJECT)
    );
    let delete = pb::DeleteBackupRequest {
        backup_id: DISK_10GB.into(),
        ..Default::default()
    };
    let denied = backups.delete_backup(with_key(delete, OPERATOR_KEY)).await.unwrap_err();
    assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED", "DeleteBackup");
    assert!(world.upstream_requests().is_empty(), "{:?}", world.upstream_requests());

    let job = backups
        .create_backup(with_key(create(), OPERATOR_KEY))
        .await
        .expect("an operator creates");
    let policy = pb::CreateBackupPolicyRequest {
        backup_policy_name: "nightly".into(),
        ..Default::default()
    };
    let denied = world
        .policies
        .clone()
        .create_backup_policy(with_key(policy, OPERATOR_KEY))
        .await
        .unwrap_err();
    assert_refused(
        &denied,
        Code::PermissionDenied,
        "CALLER_NOT_ALLOWED",
        "CreateBackupPolicy",
    );
    let wait = pb::WaitJobRequest {
        job_id: job.into_inner().job_id,
        ..Default::default()
    };
    world.advance(10);
    world
        .jobs
        .clone()
        .wait_job(with_key(wait, READER_KEY))
        .await
        .expect("a reader waits");
}

/// A request of any RPC: every request message has `project_id` as field 1.
#[derive(Clone, PartialEq, Message)]
struct ProjectOnly {
    #[prost(string, tag = "1")]
    project_id: String,
}

/// Every RPC of the contract, as gRPC paths, read from the descriptors.
fn every_rpc() -> Vec<(String, String)> {
    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "vbs.v2") {
        for service in &file.service {
            for method in &service.method {
                rpcs.push((
                    format!("/vbs.v2.{}/{}", service.name(), method.name()),
                    method.name().to_string(),
                ));
            }
        }
    }
    assert!(rpcs.len() >= 23, "{rpcs:?}");
    rpcs
}

async fn raw_call(channel: &Channel, path: &str, project_id: &str, key: &str) -> Status {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let codec = tonic_prost::ProstCodec::<ProjectOnly, ()>::default();
    let request = with_key(
        ProjectOnly {
            project_id: project_id.into(),
        },
        key,
    );
    match grpc.unary(request, path.parse().unwrap(), codec).await {
        Ok(_) => Status::ok(""),
        Err(status) => status,
    }
}

#[tokio::test]
async fn every_rpc_checks_its_project_and_role() {
    let (world, _) = world_with_callers(&callers_text(), |_| {}).await;
    for (path, method) in every_rpc() {
        let status = raw_call(&world.channel, &path, OTHER_PROJECT, NARROW_ADMIN_KEY).await;
        assert_refused(&status, Code::PermissionDenied, "CALLER_NOT_ALLOWED", &method);
        let status = raw_call(&world.channel, &path, "", READER_KEY).await;
        let reader_may = ["Get", "List", "Count", "Watch", "Wait"]
            .iter()
            .any(|verb| method.starts_with(verb));
        if reader_may {
            assert_ne!(status.code(), Code::PermissionDenied, "{method}: {status:?}");
        } else {
            assert_refused(&status, Code::PermissionDenied, "CALLER_NOT_ALLOWED", &method);
        }
    }
    let writes: Vec<_> = world
        .upstream_requests()
        .into_iter()
        // The tag search reads by POST.
        .filter(|r| r.method != "GET" && !r.path.ends_with("/resource_instances/action"))
        .collect();
    assert!(writes.is_empty(), "{writes:?}");
}

#[tokio::test]
async fn the_callers_file_is_read_again_when_it_changes() {
    let (world, path) = world_with_callers(&entry("billing", READER_KEY, "[\"*\"]", "reader"), |_| {}).await;
    let list = |key: &'static str| {
        let mut backups = world.backups.clone();
        async move {
            backups
                .list_backups(with_key(pb::ListBackupsRequest::default(), key))
                .await
        }
    };
    let status = list(OPERATOR_KEY).await.unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);

    // A broken file is refused and the previous one stays in force.
    std::fs::write(&path, "[[caller]]\nname = \"deployer\"\nrole = \"wizard\"\n").unwrap();
    eventually("the broken file is refused", || async {
        scrape(&world)
            .await
            .contains(r#"vbs_callers_file_reloads_total{result="failed"} 1"#)
    })
    .await;
    list(READER_KEY).await.expect("the previous callers stay");

    std::fs::write(&path, callers_text()).unwrap();
    eventually("the new caller is known", || async { list(OPERATOR_KEY).await.is_ok() }).await;
    list(READER_KEY).await.expect("billing is still known");
}

#[tokio::test]
async fn reflection_can_be_turned_off() {
    let (world, _) = world_with_callers(&callers_text(), |config| config.callers.reflection = false).await;
    let mut client =
        tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient::new(world.channel.clone());
    let request = tonic_reflection::pb::v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(
            tonic_reflection::pb::v1::server_reflection_request::MessageRequest::ListServices(String::new()),
        ),
    };
    let status = match client.server_reflection_info(tokio_stream::iter([request])).await {
        Ok(mut replies) => replies.get_mut().message().await.unwrap_err(),
        Err(status) => status,
    };
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

#[tokio::test]
async fn a_caller_over_its_rate_is_told_when_to_retry_and_health_still_answers() {
    let (world, _) = world_with_callers(&callers_text(), |config| {
        config.callers.caller_rate = Some(0.5);
        config.callers.caller_burst = 2;
    })
    .await;
    let mut backups = world.backups.clone();
    let list = |key| with_key(pb::ListBackupsRequest::default(), key);
    backups.list_backups(list(READER_KEY)).await.unwrap();
    backups.list_backups(list(READER_KEY)).await.unwrap();
    let status = backups.list_backups(list(READER_KEY)).await.unwrap_err();
    assert_refused(&status, Code::ResourceExhausted, "CALLER_RATE_LIMITED", "ListBackups");
    let delay = status.get_error_details().retry_info().and_then(|r| r.retry_delay);
    assert!(
        delay.is_some_and(|d| d > Duration::ZERO && d <= Duration::from_secs(2)),
        "{delay:?}"
    );
    // Each caller has its own bucket; health has none.
    backups.list_backups(list(ADMIN_KEY)).await.expect("another caller");
    let mut health = HealthClient::new(world.channel.clone());
    for _ in 0..5 {
        health
            .check(HealthCheckRequest::default())
            .await
            .expect("health answers");
    }
    let text = scrape(&world).await;
    assert!(
        text.contains(r#"vbs_caller_refusals_total{caller="billing",reason="CALLER_RATE_LIMITED"} 1"#),
        "{text}"
    );
}

#[tokio::test]
async fn without_callers_the_anonymous_caller_has_the_limits() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.callers.caller_rate = Some(0.5);
        config.callers.caller_burst = 1;
    })
    .await;
    let mut backups = world.backups.clone();
    backups.list_backups(pb::ListBackupsRequest::default()).await.unwrap();
    let status = backups
        .list_backups(pb::ListBackupsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted);
    assert_eq!(
        status
            .get_error_details()
            .error_info()
            .map(|i| i.reason.clone())
            .as_deref(),
        Some("CALLER_RATE_LIMITED")
    );
}

#[tokio::test]
async fn open_watches_per_caller_are_capped() {
    let (world, _) = world_with_callers(&callers_text(), |config| {
        config.callers.max_watches_per_caller = Some(2);
    })
    .await;
    let job_id = world
        .backups
        .clone()
        .create_backup(with_key(
            pb::CreateBackupRequest {
                volume_id: DISK_10GB.into(),
                name: "watched".into(),
                ..Default::default()
            },
            ADMIN_KEY,
        ))
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let watch = || {
        let mut jobs = world.jobs.clone();
        let request = with_key(
            pb::WatchJobRequest {
                job_id: job_id.clone(),
                ..Default::default()
            },
            READER_KEY,
        );
        async move { jobs.watch_job(request).await }
    };
    let first = watch().await.expect("first watch");
    let _second = watch().await.expect("second watch");
    let status = watch().await.unwrap_err();
    assert_refused(&status, Code::ResourceExhausted, "CALLER_TOO_MANY_WATCHES", "WatchJob");
    assert!(status.get_error_details().retry_info().is_some());
    watch_as(&world, &job_id, ADMIN_KEY)
        .await
        .expect("another caller watches");
    let text = scrape(&world).await;
    assert!(
        text.contains(r#"vbs_caller_open_watches{caller="billing"} 2"#),
        "{text}"
    );

    drop(first);
    eventually("a closed watch frees its slot", || async { watch().await.is_ok() }).await;
}

async fn watch_as(world: &World, job_id: &str, key: &str) -> Result<(), Status> {
    let request = with_key(
        pb::WatchJobRequest {
            job_id: job_id.into(),
            ..Default::default()
        },
        key,
    );
    world.jobs.clone().watch_job(request).await.map(|_| ())
}

/// Runs the built binary with `args` and `stdin`; its exit code and output.
fn run_binary(args: &[&str], stdin: &str) -> (Option<i32>, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vbs-gateway"))
        .args(args)
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), stdin.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
    (output.status.code(), text(output.stdout), text(output.stderr))
}

#[test]
fn hash_key_prints_the_line_a_callers_file_takes() {
    let (code, stdout, _) = run_binary(&["hash-key"], &format!("{READER_KEY}\n"));
    assert_eq!(code, Some(0));
    assert_eq!(stdout.trim_end(), key_sha256_line(READER_KEY));
    assert!(
        stdout.starts_with("key_sha256 = \"") && stdout.trim_end().len() == 79,
        "{stdout}"
    );
    let (code, _, stderr) = run_binary(&["hash-key"], "");
    assert_eq!(code, Some(64), "{stderr}");
}

#[test]
fn the_binary_refuses_an_unguarded_address_and_a_broken_callers_file() {
    let (code, _, stderr) = run_binary(&["--listen", "0.0.0.0:0"], "");
    assert_eq!(code, Some(64), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("--allow-unauthenticated") && stderr.contains("--callers"),
        "{stderr}"
    );

    let broken = temp_file("[[caller]]\nname = \"x\"\nkey_sha256 = \"abc\"\nprojects = [\"*\"]\nrole = \"reader\"\n");
    let (code, _, stderr) = run_binary(&["--callers", broken.to_str().unwrap()], "");
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains(&format!("{}:3:", broken.display())), "{stderr}");
}

#[tokio::test]
async fn a_compressed_request_is_checked_like_any_other() {
    let (world, _) = world_with_callers(&callers_text(), |_| {}).await;
    let mut backups = pb::backup_service_client::BackupServiceClient::new(world.channel.clone())
        .send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let elsewhere = pb::ListBackupsRequest {
        project_id: OTHER_PROJECT.into(),
        ..Default::default()
    };
    let denied = backups.list_backups(with_key(elsewhere, READER_KEY)).await.unwrap_err();
    assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED", "ListBackups");
    assert!(world.upstream_requests().is_empty());
}

#[tokio::test]
async fn request_ids_are_each_callers_own() {
    let (world, _file) = world_with_callers(&callers_text(), |_| {}).await;
    let request_id = uuid::Uuid::new_v4().to_string();
    let create = || pb::CreateBackupRequest {
        volume_id: DISK_10GB.into(),
        name: "scoped".into(),
        request_id: request_id.clone(),
        ..Default::default()
    };
    let mut backups = world.backups.clone();
    let first = backups.create_backup(with_key(create(), OPERATOR_KEY)).await.unwrap();
    let replay = backups.create_backup(with_key(create(), OPERATOR_KEY)).await.unwrap();
    assert_eq!(
        first.get_ref().job_id,
        replay.get_ref().job_id,
        "the same caller's retry replays"
    );
    // Another caller with the same id and request neither gets the first
    // caller's answer nor is refused: its write is its own.
    world.advance(60);
    let other = backups.create_backup(with_key(create(), ADMIN_KEY)).await.unwrap();
    assert_ne!(other.get_ref().job_id, first.get_ref().job_id);
    let posts = world
        .upstream_requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/cloudbackups"))
        .count();
    assert_eq!(posts, 2);
}

#[tokio::test]
async fn every_list_of_operations_checks_the_callers_projects() {
    use vbs_gateway::proto::longrunning::{ListOperationsRequest, operations_client::OperationsClient};

    let (world, _) = world_with_callers(&callers_text(), |_| {}).await;
    let mut operations = OperationsClient::new(world.channel.clone());
    let list = |name: String, key| {
        with_key(
            ListOperationsRequest {
                name,
                ..Default::default()
            },
            key,
        )
    };
    for collection in ["jobs", "taurusdb-jobs"] {
        let mine = format!("projects/{PROJECT_ID}/{collection}");
        operations
            .list_operations(list(mine, READER_KEY))
            .await
            .unwrap_or_else(|status| panic!("a reader lists its project's {collection}: {status:?}"));
        let other = format!("projects/{OTHER_PROJECT}/{collection}");
        let denied = operations
            .list_operations(list(other, NARROW_ADMIN_KEY))
            .await
            .expect_err("another project");
        assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED", "ListOperations");
    }
    // ZStack has no projects: its jobs are the callers' of project "zstack".
    let denied = operations
        .list_operations(list("zstack/jobs".into(), NARROW_ADMIN_KEY))
        .await
        .expect_err("zstack is not the narrow caller's");
    assert_refused(&denied, Code::PermissionDenied, "CALLER_NOT_ALLOWED", "ListOperations");
    operations
        .list_operations(list("zstack/jobs".into(), ADMIN_KEY))
        .await
        .expect("a caller of every project lists ZStack's jobs");
}
