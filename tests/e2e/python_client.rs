//! The README's Python client (clients/python/list_backups.py, grpcio with
//! `ssl_channel_credentials` and a bearer key) run against the real gateway
//! over real TLS, and the README checked to show that script verbatim.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use tonic::Request;
use vbs_gateway::config::key_sha256_line;
use vbs_gateway::proto::pb::{self, backup_service_client::BackupServiceClient};

use crate::harness::{DISK_10GB, PROJECT_ID};
use crate::tls::{Ca, Gateway, server_files, temp_dir, write_server_pair};

/// The venv python the tests use unless VBS_GATEWAY_PYTHON names another.
const DEFAULT_PYTHON: &str = "target/python-client/bin/python";
const READER_KEY: &str = "python-reader-key-6d1f";
const OPERATOR_KEY: &str = "python-operator-key-93ab";
const OTHER_PROJECT: &str = "0123456789abcdef0123456789abcdef";

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// The python of the client's venv; without one, None after saying loudly how
/// to make it, except under CI, where a missing venv fails the test.
fn venv_python() -> Option<PathBuf> {
    let python = std::env::var_os("VBS_GATEWAY_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_path(DEFAULT_PYTHON));
    if python.exists() {
        return Some(python);
    }
    let missing = format!(
        "no Python client venv at {} (make it with clients/python/make-venv, \
         or point VBS_GATEWAY_PYTHON at a python with clients/python/requirements.txt)",
        python.display()
    );
    assert!(std::env::var_os("CI").is_none(), "{missing}; CI is set, so this fails");
    eprintln!("\n*** SKIPPED the Python client test: {missing} ***\n");
    None
}

/// Generates the Python stubs of proto/vbs/v2 into `dir`, as the script's docstring says.
async fn generate_stubs(python: &Path, dir: &Path) {
    let proto = repo_path("proto");
    let mut command = tokio::process::Command::new(python);
    command
        .args(["-m", "grpc_tools.protoc", "-I"])
        .arg(&proto)
        .arg(format!("--python_out={}", dir.display()))
        .arg(format!("--grpc_python_out={}", dir.display()));
    for name in ["common", "backup", "backup_policy", "job"] {
        command.arg(proto.join(format!("vbs/v2/{name}.proto")));
    }
    let output = command.output().await.expect("run grpc_tools.protoc");
    assert!(
        output.status.success(),
        "protoc: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs the client script with `args`, the stubs in `stubs` on its path.
async fn run_client(python: &Path, stubs: &Path, args: &[&str]) -> Output {
    let run = tokio::process::Command::new(python)
        .arg(repo_path("clients/python/list_backups.py"))
        .args(args)
        .env("PYTHONPATH", stubs)
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("the Python client ended within 60 s")
        .expect("run the Python client")
}

/// Creates a backup of DISK_10GB named `name` and lets its job finish.
async fn make_backup(gateway: &Gateway, ca: &Ca, name: &str) {
    let channel = gateway.connect_tls(ca, None).await.expect("TLS connects");
    let mut request = Request::new(pb::CreateBackupRequest {
        volume_id: DISK_10GB.into(),
        name: name.into(),
        ..Default::default()
    });
    let bearer = format!("Bearer {OPERATOR_KEY}").parse().unwrap();
    request.metadata_mut().insert("authorization", bearer);
    BackupServiceClient::new(channel)
        .create_backup(request)
        .await
        .expect("CreateBackup");
    gateway.sim.advance(Duration::from_secs(600));
}

#[tokio::test]
async fn the_readme_python_client_lists_backups_over_tls_with_its_key() {
    let Some(python) = venv_python() else { return };
    let dir = temp_dir();
    let ca = Ca::new("server");
    let files = server_files(&dir, None);
    write_server_pair(&ca, &files);
    let ca_file = dir.join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let callers = dir.join("callers.toml");
    let callers_text = format!(
        "[[caller]]\nname = \"billing\"\n{}\nprojects = [\"{PROJECT_ID}\"]\nrole = \"reader\"\n\n\
         [[caller]]\nname = \"deployer\"\n{}\nprojects = [\"*\"]\nrole = \"operator\"\n",
        key_sha256_line(READER_KEY),
        key_sha256_line(OPERATOR_KEY),
    );
    std::fs::write(&callers, callers_text).unwrap();
    let keys = [("reader", READER_KEY), ("wrong", "not-a-key-of-any-caller")].map(|(name, key)| {
        let path = dir.join(format!("{name}.key"));
        std::fs::write(&path, format!("{key}\n")).unwrap();
        path.display().to_string()
    });
    let gateway = Gateway::start(|c| {
        c.front_door.tls = Some(files.clone());
        c.callers.callers_file = Some(callers.clone());
    })
    .await;
    make_backup(&gateway, &ca, "from-rust").await;
    let stubs = dir.join("stubs");
    std::fs::create_dir_all(&stubs).unwrap();
    generate_stubs(&python, &stubs).await;
    let address = format!("localhost:{}", gateway.address.port());
    let ca_file = ca_file.display().to_string();

    let listed = run_client(&python, &stubs, &[&address, &ca_file, &keys[0]]).await;
    let stdout = String::from_utf8_lossy(&listed.stdout);
    let stderr = String::from_utf8_lossy(&listed.stderr);
    assert!(listed.status.success(), "stdout: {stdout}\nstderr: {stderr}");
    let names: Vec<&str> = stdout.lines().filter_map(|line| line.split(' ').nth(1)).collect();
    assert_eq!(names, ["from-rust"], "stdout: {stdout}");

    let unknown = run_client(&python, &stubs, &[&address, &ca_file, &keys[1]]).await;
    assert_eq!(unknown.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.starts_with("UNAUTHENTICATED: "), "{stderr}");

    let elsewhere = run_client(&python, &stubs, &[&address, &ca_file, &keys[0], OTHER_PROJECT]).await;
    let stderr = String::from_utf8_lossy(&elsewhere.stderr);
    assert!(stderr.starts_with("PERMISSION_DENIED: "), "{stderr}");
}

/// The README's Python block is the script, byte for byte, so the README never
/// shows code that the test above does not run.
#[test]
fn the_readme_shows_the_python_client_verbatim() {
    let readme = std::fs::read_to_string(repo_path("README.md")).unwrap();
    let script = std::fs::read_to_string(repo_path("clients/python/list_backups.py")).unwrap();
    let blocks: Vec<&str> = readme
        .split("```python\n")
        .skip(1)
        .filter_map(|rest| rest.split("```").next())
        .collect();
    assert_eq!(blocks.len(), 1, "one Python block in the README");
    assert_eq!(
        blocks[0], script,
        "the README's Python block differs from clients/python/list_backups.py; paste the script into it"
    );
}
