//! The command line (`vbs-gateway backup|policy|job`): the built binary run
//! against a world's gateway, piped and through a pseudo-terminal, with the
//! simulated clock stepped as the job's progress lines arrive.

use std::io::Read;
use std::os::fd::OwnedFd;
use std::process::{Output, Stdio};
use std::time::Duration;

use rustix::fs::{Mode, OFlags};
use rustix::pty::{OpenptFlags, grantpt, openpt, ptsname, unlockpt};
use rustix::termios::{OptionalActions, OutputModes, tcgetattr, tcsetattr};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;
use vbs_gateway::config::key_sha256_line;
use vbs_simulator::SimulatorConfig;

use crate::harness::{DISK_10GB, DISK_20GB, PROJECT_ID, World};
use crate::tls::{Ca, Gateway, server_files, temp_dir, write_server_pair};

/// Longest any run or awaited output may take; a healthy run needs well under a second.
const PATIENCE: Duration = Duration::from_secs(20);
/// The live line's redraw: carriage return, clear to the end of the line.
const REDRAW: &str = "\r\x1b[K";

/// The binary with a clean environment, pointed at `address`.
fn cli(address: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vbs-gateway"));
    command
        .env_clear()
        .args(args)
        .args(["--server", address])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

fn server(world: &World) -> String {
    format!("http://{}", world.address)
}

/// Runs the command to its end (it must not need the clock to move).
async fn run(command: &mut Command) -> Output {
    tokio::time::timeout(PATIENCE, command.output())
        .await
        .expect("the command ended in time")
        .expect("the command ran")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The words of a piped progress line, "job ID STATUS ELAPSED ...", when it is one.
fn progress_status(line: &str) -> Option<&str> {
    let words: Vec<&str> = line.split_whitespace().collect();
    (words.len() >= 4 && words[0] == "job").then(|| words[2])
}

/// Steps the simulated clock past the state a progress line reports.
fn step_past(world: &World, status: &str) {
    let timing = SimulatorConfig::for_testing().job_timing;
    match status {
        "INIT" => world.sim.advance(timing.init),
        "RUNNING" => world.sim.advance(timing.running),
        _ => {}
    }
}

/// Runs a command that follows a job with its stdout piped, stepping the clock
/// each time a progress line arrives; returns (exit code, stdout, stderr).
async fn drive(world: &World, mut command: Command) -> (i32, String, String) {
    let mut child: Child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let mut stdout = String::new();
    let read = async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(status) = progress_status(&line) {
                step_past(world, status);
            }
            stdout.push_str(&line);
            stdout.push('\n');
        }
        let mut errors = String::new();
        stderr.read_to_string(&mut errors).await.unwrap();
        let status = child.wait().await.unwrap();
        (status.code().expect("exited"), errors)
    };
    let (code, errors) = tokio::time::timeout(PATIENCE, read)
        .await
        .expect("the command ended in time");
    (code, stdout, errors)
}

/// The value of `key` in a key/value block.
fn field<'a>(table: &'a str, key: &str) -> Option<&'a str> {
    table.lines().find_map(|line| {
        let rest = line.strip_prefix(key)?;
        rest.starts_with("  ").then(|| rest.trim())
    })
}

#[tokio::test]
async fn create_wait_piped_prints_a_plain_line_per_state_then_the_job() {
    let world = World::start().await;
    let command = cli(
        &server(&world),
        &[
            "backup",
            "create",
            "--volume-id",
            DISK_10GB,
            "--name",
            "nightly",
            "--tag",
            "team=storage",
            "--wait",
        ],
    );
    let (code, stdout, stderr) = drive(&world, command).await;
    assert_eq!(code, 0, "stdout: {stdout}\nstderr: {stderr}");
    assert!(
        !stdout.contains('\r') && !stdout.contains('\x1b'),
        "piped output is plain: {stdout:?}"
    );
    let states: Vec<&str> = stdout.lines().filter_map(progress_status).collect();
    assert_eq!(states, ["INIT", "RUNNING", "SUCCESS"], "{stdout}");
    assert_eq!(field(&stdout, "status"), Some("SUCCESS"), "{stdout}");
    let backup_id = field(&stdout, "backup").expect("the job's backup");
    let backup = world.get_backup(backup_id).await.expect("the backup exists");
    assert_eq!(backup.name, "nightly");
    assert_eq!(backup.status_raw, "available");
}

#[tokio::test]
async fn list_all_follows_every_page_and_one_page_says_how_to_go_on() {
    let world = World::start().await;
    let mut made = Vec::new();
    for name in ["one", "two", "three"] {
        made.push(world.make_backup(DISK_10GB, name).await);
    }
    let all = run(&mut cli(
        &server(&world),
        &["backup", "list", "--all", "--page-size", "1", "-o", "json"],
    ))
    .await;
    assert!(all.status.success(), "{}", text(&all.stderr));
    let json: serde_json::Value = serde_json::from_slice(&all.stdout).expect("JSON on stdout");
    let mut listed: Vec<String> = json["backups"]
        .as_array()
        .expect("backups")
        .iter()
        .map(|b| b["id"].as_str().unwrap().to_string())
        .collect();
    listed.sort();
    made.sort();
    assert_eq!(listed, made);
    assert!(
        json.get("nextPageToken").is_none(),
        "the last page has no token: {json}"
    );
    let pages = world
        .upstream_requests()
        .iter()
        .filter(|r| r.path.ends_with("/backups/detail"))
        .count();
    assert!(pages >= 3, "one upstream request per page of one, got {pages}");

    let one = run(&mut cli(&server(&world), &["backup", "list", "--page-size", "1"])).await;
    assert!(one.status.success(), "{}", text(&one.stderr));
    let table = text(&one.stdout);
    assert_eq!(table.lines().count(), 2, "a header and one backup: {table}");
    assert!(table.starts_with("ID "), "{table}");
    assert!(
        text(&one.stderr).contains("more: --page-token "),
        "{}",
        text(&one.stderr)
    );
}

#[tokio::test]
async fn get_shows_a_backup_as_a_table_or_as_protobuf_json() {
    let world = World::start().await;
    let backup_id = world.make_backup(DISK_20GB, "weekly").await;
    let table = run(&mut cli(&server(&world), &["backup", "get", &backup_id])).await;
    assert!(table.status.success(), "{}", text(&table.stderr));
    let table = text(&table.stdout);
    assert_eq!(field(&table, "id"), Some(backup_id.as_str()), "{table}");
    assert_eq!(field(&table, "status"), Some("available"), "{table}");
    assert_eq!(field(&table, "size"), Some("20 GB"), "{table}");

    let json = run(&mut cli(
        &server(&world),
        &["backup", "get", &backup_id, "--output", "json"],
    ))
    .await;
    let json: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON on stdout");
    assert_eq!(json["id"], backup_id.as_str());
    assert_eq!(json["status"], "BACKUP_STATUS_AVAILABLE");
    assert_eq!(json["volumeId"], DISK_20GB);
    assert_eq!(json["size"], "20", "int64 is a string in the JSON mapping");
    assert_eq!(json["tenantId"], PROJECT_ID);
}

#[tokio::test]
async fn an_invalid_request_exits_1_with_code_reason_and_field_on_stderr() {
    let world = World::start().await;
    let output = run(&mut cli(
        &server(&world),
        &["backup", "create", "--volume-id", "not-a-uuid", "--name", "fine"],
    ))
    .await;
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty(), "{}", text(&output.stdout));
    let stderr = text(&output.stderr);
    assert!(stderr.contains("INVALID_ARGUMENT (3)"), "{stderr}");
    assert!(stderr.contains("reason: NOT_A_UUID (vbs-gateway)"), "{stderr}");
    assert!(stderr.contains("field volume_id: "), "{stderr}");
    assert!(stderr.contains("[NOT_A_UUID]"), "{stderr}");
    assert!(world.upstream_requests().is_empty(), "nothing went upstream");
}

#[tokio::test]
async fn a_failed_job_exits_2_with_its_reason() {
    let world = World::start().await;
    world.sim.fail_next_jobs(1, "VolumeBackup.0064", "the disk went away");
    let command = cli(
        &server(&world),
        &[
            "backup",
            "create",
            "--volume-id",
            DISK_10GB,
            "--name",
            "doomed",
            "--wait",
        ],
    );
    let (code, stdout, stderr) = drive(&world, command).await;
    assert_eq!(code, 2, "stdout: {stdout}\nstderr: {stderr}");
    assert_eq!(field(&stdout, "status"), Some("FAIL"), "{stdout}");
    assert_eq!(field(&stdout, "error code"), Some("VolumeBackup.0064"), "{stdout}");
    assert_eq!(field(&stdout, "fail reason"), Some("the disk went away"), "{stdout}");
}

#[tokio::test]
async fn job_wait_exits_3_when_the_timeout_runs_out_first() {
    let world = World::start().await;
    let created = run(&mut cli(
        &server(&world),
        &[
            "backup",
            "create",
            "--volume-id",
            DISK_10GB,
            "--name",
            "slow",
            "-o",
            "json",
        ],
    ))
    .await;
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).expect("JSON on stdout");
    let job_id = created["jobId"].as_str().expect("jobId").to_string();
    assert_eq!(
        created["operation"]["name"],
        format!("projects/{PROJECT_ID}/jobs/{job_id}").as_str()
    );

    let waited = run(&mut cli(&server(&world), &["job", "wait", &job_id, "--timeout", "0s"])).await;
    assert_eq!(waited.status.code(), Some(3), "{}", text(&waited.stderr));
    assert_eq!(field(&text(&waited.stdout), "status"), Some("INIT"));
    assert!(
        text(&waited.stderr).contains("is still INIT"),
        "{}",
        text(&waited.stderr)
    );

    world.finish_job(&job_id).await;
    let waited = run(&mut cli(&server(&world), &["job", "wait", &job_id, "-o", "json"])).await;
    assert_eq!(waited.status.code(), Some(0), "{}", text(&waited.stderr));
    let json: serde_json::Value = serde_json::from_slice(&waited.stdout).unwrap();
    assert_eq!(json["outcome"], "WAIT_OUTCOME_TERMINAL");
    assert_eq!(json["job"]["status"], "JOB_STATUS_SUCCESS");
    assert!(json["job"]["backup"]["backupId"].is_string(), "{json}");
}

#[tokio::test]
async fn policies_are_created_listed_run_and_deleted() {
    let world = World::start().await;
    let address = server(&world);
    let created = run(&mut cli(
        &address,
        &[
            "policy",
            "create",
            "--name",
            "nightly",
            "--start-time",
            "02:00",
            "--frequency",
            "1",
            "--retention-num",
            "7",
        ],
    ))
    .await;
    assert!(created.status.success(), "{}", text(&created.stderr));
    let policy_id = field(&text(&created.stdout), "policy").expect("the new id").to_string();

    let associated = run(&mut cli(
        &address,
        &["policy", "associate", &policy_id, "--volume-id", DISK_10GB],
    ))
    .await;
    assert!(associated.status.success(), "{}", text(&associated.stderr));
    assert!(text(&associated.stdout).contains(&format!("{DISK_10GB}  ok")));

    let listed = run(&mut cli(&address, &["policy", "list"])).await;
    let listed = text(&listed.stdout);
    let row = listed
        .lines()
        .find(|l| l.starts_with(&policy_id))
        .expect("the policy is listed");
    for expected in ["nightly", "ON", "02:00", "every day", "7 backups"] {
        assert!(row.contains(expected), "{expected} in {row}");
    }

    let disabled = run(&mut cli(&address, &["policy", "disable", &policy_id])).await;
    assert!(disabled.status.success(), "{}", text(&disabled.stderr));
    let shown = run(&mut cli(&address, &["policy", "get", &policy_id, "-o", "json"])).await;
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(shown["scheduledPolicy"]["status"], "POLICY_STATUS_OFF");

    let executed = run(&mut cli(&address, &["policy", "execute", &policy_id])).await;
    assert!(executed.status.success(), "{}", text(&executed.stderr));
    let tasks = run(&mut cli(&address, &["policy", "tasks", &policy_id, "-o", "json"])).await;
    let tasks: serde_json::Value = serde_json::from_slice(&tasks.stdout).unwrap();
    assert_eq!(tasks["tasks"][0]["resourceId"], DISK_10GB, "{tasks}");

    let deleted = run(&mut cli(&address, &["policy", "delete", &policy_id])).await;
    assert!(deleted.status.success(), "{}", text(&deleted.stderr));
    let gone = run(&mut cli(&address, &["policy", "get", &policy_id])).await;
    assert_eq!(gone.status.code(), Some(1));
    assert!(text(&gone.stderr).contains("NOT_FOUND"), "{}", text(&gone.stderr));
}

#[tokio::test]
async fn an_unreachable_gateway_exits_69() {
    // A port that was just free: nothing listens there.
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let output = run(&mut cli(
        &format!("http://{address}"),
        &["job", "get", "4010b39b5281d3590152874bfa3b1604"],
    ))
    .await;
    assert_eq!(output.status.code(), Some(69), "{}", text(&output.stderr));
    assert!(
        text(&output.stderr).contains("cannot reach the gateway"),
        "{}",
        text(&output.stderr)
    );
}

#[tokio::test]
async fn the_bearer_key_comes_from_the_environment_or_a_file_and_is_never_printed() {
    const KEY: &str = "cli-admin-key-6d1f0a";
    let callers = temp_dir().join("callers.toml");
    std::fs::write(
        &callers,
        format!(
            "[[caller]]\nname = \"ops\"\n{}\nprojects = [\"*\"]\nrole = \"admin\"\n",
            key_sha256_line(KEY)
        ),
    )
    .unwrap();
    let file = callers.clone();
    let world = World::start_with(SimulatorConfig::for_testing(), move |config| {
        config.callers.callers_file = Some(file);
    })
    .await;
    let address = server(&world);

    let with_env = run(cli(&address, &["backup", "list"]).env("VBS_GATEWAY_KEY", KEY)).await;
    assert!(with_env.status.success(), "{}", text(&with_env.stderr));
    let key_file = callers.with_file_name("key");
    std::fs::write(&key_file, format!("{KEY}\n")).unwrap();
    let with_file = run(&mut cli(
        &address,
        &["backup", "list", "--key-file", key_file.to_str().unwrap()],
    ))
    .await;
    assert!(with_file.status.success(), "{}", text(&with_file.stderr));

    let wrong = run(cli(&address, &["backup", "list"]).env("VBS_GATEWAY_KEY", "not-the-key-93c1")).await;
    assert_eq!(wrong.status.code(), Some(1));
    let stderr = text(&wrong.stderr);
    assert!(
        stderr.contains("UNAUTHENTICATED") && stderr.contains("CALLER_UNKNOWN"),
        "{stderr}"
    );
    assert!(!stderr.contains("not-the-key"), "the key is never printed: {stderr}");

    let plain = run(cli("http://192.0.2.1:50051", &["backup", "list"]).env("VBS_GATEWAY_KEY", KEY)).await;
    assert_eq!(plain.status.code(), Some(64), "no key over plain http off this host");
    assert!(!text(&plain.stderr).contains(KEY), "{}", text(&plain.stderr));
}

#[tokio::test]
async fn tls_is_verified_against_the_given_ca_with_a_client_certificate() {
    let dir = temp_dir();
    let (server_ca, client_ca) = (Ca::new("server"), Ca::new("clients"));
    let files = server_files(&dir, Some(&client_ca));
    write_server_pair(&server_ca, &files);
    let gateway = Gateway::start(|c| c.front_door.tls = Some(files.clone())).await;
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let ca = write("ca.pem", server_ca.pem());
    let (cert, key) = client_ca.leaf("billing.internal");
    let (cert, key) = (write("client.pem", cert), write("client.key", key));
    let address = format!("https://{}", gateway.address);
    let tls = [
        "--ca-cert",
        ca.as_str(),
        "--tls-cert",
        cert.as_str(),
        "--tls-key",
        key.as_str(),
        "--tls-server-name",
        "localhost",
    ];

    let listed = run(&mut cli(&address, &[&["backup", "list"][..], &tls].concat())).await;
    assert!(listed.status.success(), "{}", text(&listed.stderr));
    assert!(text(&listed.stdout).starts_with("ID "), "{}", text(&listed.stdout));

    // Without the private CA the gateway's certificate is not trusted.
    let untrusted = run(&mut cli(
        &address,
        &[
            "backup",
            "list",
            "--tls-server-name",
            "localhost",
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
        ],
    ))
    .await;
    assert_eq!(untrusted.status.code(), Some(69), "{}", text(&untrusted.stderr));
    assert!(
        text(&untrusted.stderr).contains("cannot reach the gateway"),
        "{}",
        text(&untrusted.stderr)
    );
}

/// A pseudo-terminal: (controller, terminal the child writes to), the
/// terminal without output processing so the test sees the bytes as written.
fn pseudo_terminal() -> (std::fs::File, std::fs::File) {
    let controller = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC).unwrap();
    grantpt(&controller).unwrap();
    unlockpt(&controller).unwrap();
    let name = ptsname(&controller, Vec::new()).unwrap();
    let terminal: OwnedFd = rustix::fs::open(
        name.as_c_str(),
        OFlags::RDWR | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .unwrap();
    let mut modes = tcgetattr(&terminal).unwrap();
    modes.output_modes.remove(OutputModes::OPOST);
    tcsetattr(&terminal, OptionalActions::Now, &modes).unwrap();
    (controller.into(), terminal.into())
}

/// Everything read from the controller so far, and the reader's channel.
struct Screen {
    bytes: Vec<u8>,
    chunks: mpsc::UnboundedReceiver<Vec<u8>>,
}

impl Screen {
    fn read_from(mut controller: std::fs::File) -> Screen {
        let (sender, chunks) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            let mut buffer = [0u8; 4096];
            // Linux answers EIO once the child has closed the terminal: the end.
            while let Ok(read @ 1..) = controller.read(&mut buffer) {
                if sender.send(buffer[..read].to_vec()).is_err() {
                    break;
                }
            }
        });
        Screen {
            bytes: Vec::new(),
            chunks,
        }
    }

    fn text(&self) -> String {
        text(&self.bytes)
    }

    /// Reads until the output holds `needle` (bounded).
    async fn until(&mut self, needle: &str) {
        let found = tokio::time::timeout(PATIENCE, async {
            while !self.text().contains(needle) {
                match self.chunks.recv().await {
                    Some(chunk) => self.bytes.extend(chunk),
                    None => return false,
                }
            }
            true
        })
        .await;
        assert_eq!(found, Ok(true), "never saw {needle:?} in {:?}", self.text());
    }

    /// Reads to the end (the child closed the terminal).
    async fn read_to_end(&mut self) {
        let ended = tokio::time::timeout(PATIENCE, async {
            while let Some(chunk) = self.chunks.recv().await {
                self.bytes.extend(chunk);
            }
        })
        .await;
        assert!(ended.is_ok(), "the terminal stayed open: {:?}", self.text());
    }
}

#[tokio::test]
async fn on_a_terminal_job_watch_redraws_one_line_and_ends_with_the_final_status() {
    let world = World::start().await;
    let job_id = world
        .backups
        .clone()
        .create_backup(vbs_gateway::proto::pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "on-a-terminal".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .job_id;
    let (controller, terminal) = pseudo_terminal();
    let mut screen = Screen::read_from(controller);
    let mut command = cli(&server(&world), &["job", "watch", &job_id]);
    command.stdout(terminal).stderr(Stdio::piped());
    let child = command.spawn().unwrap();
    // The child holds the terminal now; the controller sees its end only once every copy is closed.
    drop(command);

    screen.until(&format!("{REDRAW}job {job_id} INIT")).await;
    step_past(&world, "INIT");
    screen.until(&format!("{REDRAW}job {job_id} RUNNING")).await;
    step_past(&world, "RUNNING");
    screen.until(&format!("{REDRAW}job {job_id} SUCCESS")).await;
    let output = tokio::time::timeout(PATIENCE, child.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", text(&output.stderr));
    screen.read_to_end().await;

    let shown = screen.text();
    let (progress, table) = shown.split_once('\n').expect("the line ends when the job does");
    assert!(progress.starts_with(REDRAW), "{progress:?}");
    let last = progress.rsplit(REDRAW).next().unwrap();
    assert!(last.starts_with(&format!("job {job_id} SUCCESS ")), "{last:?}");
    assert!(progress.matches(REDRAW).count() >= 3, "redrawn in place: {progress:?}");
    assert_eq!(field(table, "status"), Some("SUCCESS"), "{table:?}");
    assert!(!table.contains('\x1b'), "the final table is plain: {table:?}");
}
