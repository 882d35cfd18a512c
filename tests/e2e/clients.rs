//! Clients in other languages against the real gateway: tests/clients/python (grpcio stubs
//! generated at test time, google-api-core's operation helper) and tests/clients/node
//! (@grpc/grpc-js + proto-loader), each run as a process and its printed steps checked.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tonic::transport::Channel;
use vbs_gateway::app::App;
use vbs_gateway::config::Config;
use vbs_gateway::proto::pb::{self, JobStatus, WaitOutcome};
use vbs_gateway::proto::pb::{backup_service_client::BackupServiceClient, job_service_client::JobServiceClient};
use vbs_simulator::{ClockMode, JobTiming, Simulator, SimulatorConfig};

use crate::harness::{DISK_10GB, DISK_20GB, DISK_40GB_IN_USE, PROJECT_ID, enforcing, gateway_credentials};

/// Longest a client process may run: its jobs take about a second of wall time.
const CLIENT_PATIENCE: Duration = Duration::from_secs(120);
/// Backups that exist before the client runs, so that its listing has two pages of two.
const EARLIER_BACKUPS: [(&str, &str); 2] = [(DISK_20GB, "earlier-a"), (DISK_40GB_IN_USE, "earlier-b")];

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// A simulator on the wall clock (a client process cannot step a simulated one) whose jobs
/// take about a second, and a gateway on port 0 in front of it.
struct ClientWorld {
    _sim: Simulator,
    address: SocketAddr,
    channel: Channel,
    _stop: oneshot::Sender<()>,
}

impl ClientWorld {
    async fn start() -> ClientWorld {
        let sim_config = SimulatorConfig {
            clock: ClockMode::Auto,
            job_timing: JobTiming {
                init: Duration::from_millis(300),
                running: Duration::from_millis(700),
            },
            auth: enforcing(SimulatorConfig::for_testing().auth),
            ..SimulatorConfig::for_testing()
        };
        let sim = Simulator::start(sim_config, TcpListener::bind("127.0.0.1:0").await.unwrap())
            .await
            .unwrap();
        let mut config = Config::for_testing(sim.url().parse().unwrap());
        config.credentials = gateway_credentials(crate::AUTH, &sim.url());
        let app = App::new(&config).expect("gateway config");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            app.serve(listener, async {
                let _ = stopped.await;
            })
            .await
            .expect("gateway serves");
        });
        let channel = Channel::from_shared(format!("http://{address}"))
            .unwrap()
            .connect()
            .await
            .expect("connect to gateway");
        ClientWorld {
            _sim: sim,
            address,
            channel,
            _stop: stop,
        }
    }

    /// Backs up each of EARLIER_BACKUPS and waits for its job to succeed.
    async fn make_earlier_backups(&self) {
        for (volume_id, name) in EARLIER_BACKUPS {
            let created = BackupServiceClient::new(self.channel.clone())
                .create_backup(pb::CreateBackupRequest {
                    volume_id: volume_id.into(),
                    name: name.into(),
                    ..Default::default()
                })
                .await
                .expect("CreateBackup")
                .into_inner();
            let waited = JobServiceClient::new(self.channel.clone())
                .wait_job(pb::WaitJobRequest {
                    job_id: created.job_id,
                    timeout: Some(prost_types::Duration { seconds: 30, nanos: 0 }),
                    ..Default::default()
                })
                .await
                .expect("WaitJob")
                .into_inner();
            assert_eq!(waited.outcome(), WaitOutcome::Terminal, "{waited:?}");
            let job = waited.job.expect("job");
            assert_eq!(job.status(), JobStatus::Success, "{job:?}");
        }
    }

    /// The backup named `name`, read back through the gateway.
    async fn backup_named(&self, name: &str) -> pb::Backup {
        let mut backups = BackupServiceClient::new(self.channel.clone());
        let listed = backups
            .list_backups(pb::ListBackupsRequest {
                name: name.into(),
                ..Default::default()
            })
            .await
            .expect("ListBackups")
            .into_inner();
        let [summary] = listed.backups.as_slice() else {
            panic!("one backup named {name}: {listed:?}");
        };
        let request = pb::GetBackupRequest {
            backup_id: summary.id.clone(),
            ..Default::default()
        };
        backups
            .get_backup(request)
            .await
            .expect("GetBackup")
            .into_inner()
            .backup
            .expect("backup")
    }
}

/// Whether a client's toolchain is there: with CI set its absence fails the test, without CI
/// the test says loudly how to get it and is skipped.
fn required(present: bool, missing: impl FnOnce() -> String) -> bool {
    if present {
        return true;
    }
    let missing = missing();
    assert!(std::env::var_os("CI").is_none(), "{missing}; CI is set, so this fails");
    eprintln!("\n*** SKIPPED: {missing} ***\n");
    false
}

async fn run(command: &mut tokio::process::Command) -> Output {
    let run = command.kill_on_drop(true).output();
    tokio::time::timeout(CLIENT_PATIENCE, run)
        .await
        .expect("the client ended in time")
        .expect("start the client")
}

/// The client's stdout after checking that it succeeded.
fn succeeded(output: &Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    stdout
}

/// The rest of the line starting with `step: `; exactly one such line.
fn step<'a>(stdout: &'a str, name: &str) -> &'a str {
    let prefix = format!("{name}: ");
    let lines: Vec<&str> = stdout.lines().filter_map(|l| l.strip_prefix(&prefix)).collect();
    let [line] = lines.as_slice() else {
        panic!("one '{name}' line expected in:\n{stdout}");
    };
    line
}

/// The statuses of a watched job in the order sent: none earlier than the one before (a change
/// of entities repeats a status), the last SUCCESS.
fn assert_watched_to_success(watched: &str, backup_id: &str) {
    let (statuses, backup) = watched.split_once(" (backup ").expect("watched: STATUSES (backup ID)");
    assert_eq!(backup, format!("{backup_id})"), "{watched}");
    let order = ["JOB_STATUS_INIT", "JOB_STATUS_RUNNING", "JOB_STATUS_SUCCESS"];
    let ranks: Vec<usize> = statuses
        .split(' ')
        .map(|s| {
            order
                .iter()
                .position(|o| *o == s)
                .unwrap_or_else(|| panic!("status {s} in {watched}"))
        })
        .collect();
    assert!(ranks.windows(2).all(|w| w[0] <= w[1]), "{watched}");
    assert_eq!(ranks.last(), Some(&2), "{watched}");
}

/// The steps both clients print the same way: created, watched to the end, listed in pages,
/// the error decoded. Returns the backup the client made, as the gateway reads it, and its job id.
async fn assert_common_steps(world: &ClientWorld, stdout: &str, name: &str) -> (pb::Backup, String) {
    let backup = world.backup_named(name).await;
    assert_eq!(backup.status(), pb::BackupStatus::Available);
    let created = step(stdout, "created");
    let job_id = created.split(' ').nth(1).expect("job id").to_owned();
    assert_eq!(
        created,
        format!("job {job_id} operation projects/{PROJECT_ID}/jobs/{job_id} done=false")
    );
    assert_watched_to_success(step(stdout, "watched"), &backup.id);
    let pages: Vec<&str> = stdout.lines().filter(|l| l.starts_with("page: ")).collect();
    assert_eq!(pages.len(), 2, "two pages of two: {pages:?}");
    assert_eq!(
        step(stdout, "listed"),
        format!("3 backups in 2 pages: earlier-a earlier-b {name}")
    );
    assert_eq!(
        step(stdout, "error"),
        "INVALID_ARGUMENT reason FIELD_REQUIRED domain vbs-gateway violations volume_id (must not be empty, FIELD_REQUIRED)"
    );
    (backup, job_id)
}

/// The python of a venv with tests/clients/python/requirements.txt (VBS_GATEWAY_PYTHON, else
/// the venv the README client's test uses too).
async fn client_python() -> Option<PathBuf> {
    let python = std::env::var_os("VBS_GATEWAY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path("target/python-client/bin/python"));
    let imports = tokio::process::Command::new(&python)
        .args(["-c", "import google.api_core.operation, grpc_status, grpc_tools"])
        .output()
        .await;
    let usable = imports.is_ok_and(|o| o.status.success());
    required(usable, || {
        format!(
            "no Python with tests/clients/python/requirements.txt at {} (make it with \
             clients/python/make-venv target/python-client tests/clients/python/requirements.txt, \
             or point VBS_GATEWAY_PYTHON at one)",
            python.display()
        )
    })
    .then_some(python)
}

/// `node` (VBS_GATEWAY_NODE, else the one on PATH) when the packages of package-lock.json are
/// installed at the repository root.
async fn client_node() -> Option<PathBuf> {
    let node = std::env::var_os("VBS_GATEWAY_NODE").map_or_else(|| PathBuf::from("node"), PathBuf::from);
    let version = tokio::process::Command::new(&node).arg("--version").output().await;
    let modules = repo_path("node_modules/@grpc/proto-loader/package.json").exists();
    let usable = modules && version.is_ok_and(|o| o.status.success());
    required(usable, || {
        format!(
            "no {} with the packages of package-lock.json (install Node.js, then run `npm ci` \
             at the repository root)",
            node.display()
        )
    })
    .then_some(node)
}

#[tokio::test]
async fn the_python_client_follows_its_backup_with_the_operation_helper_and_watch_job() {
    let Some(python) = client_python().await else { return };
    let world = ClientWorld::start().await;
    world.make_earlier_backups().await;
    let mut command = tokio::process::Command::new(python);
    command.arg(repo_path("tests/clients/python/client.py")).args([
        &world.address.to_string(),
        DISK_10GB,
        "from-python",
    ]);
    let stdout = succeeded(&run(&mut command).await);

    assert_eq!(step(&stdout, "stubs"), "4 files of vbs/v2 generated");
    let wire = step(&stdout, "operations.proto");
    assert!(
        wire.starts_with("wire-compatible with googleapis-common-protos (7 messages, 5 methods; "),
        "{wire}"
    );
    let (backup, job_id) = assert_common_steps(&world, &stdout, "from-python").await;
    assert_eq!(
        step(&stdout, "operation"),
        format!(
            "done, response vbs.v2.Backup {} from-python BACKUP_STATUS_AVAILABLE, metadata job {job_id} \
             JOB_STATUS_SUCCESS",
            backup.id
        )
    );
    assert_eq!(
        step(&stdout, "got"),
        format!("{} from-python BACKUP_STATUS_AVAILABLE size 10", backup.id)
    );
}

#[tokio::test]
async fn the_node_client_watches_its_backup_and_needs_the_readme_loader_options() {
    let Some(node) = client_node().await else { return };
    let world = ClientWorld::start().await;
    world.make_earlier_backups().await;
    let mut command = tokio::process::Command::new(node);
    command
        .arg(repo_path("tests/clients/node/client.js"))
        .args([&world.address.to_string(), DISK_10GB, "from-node"]);
    let stdout = succeeded(&run(&mut command).await);

    let (backup, _) = assert_common_steps(&world, &stdout, "from-node").await;
    assert_eq!(
        step(&stdout, "operation"),
        format!(
            "done=true result=response, response vbs.v2.Backup {} from-node BACKUP_STATUS_AVAILABLE",
            backup.id
        )
    );
    // longs: String gives int64 as a decimal string, not a Long object.
    assert_eq!(
        step(&stdout, "got"),
        format!("{} from-node BACKUP_STATUS_AVAILABLE size 10 (string)", backup.id)
    );
    // Without keepCase the request's volume_id key is dropped before it is sent.
    assert_eq!(
        step(&stdout, "default options"),
        "INVALID_ARGUMENT invalid request: volume_id: must not be empty"
    );
}
