//! The front door: TLS on the gRPC listener (only TLS, reloaded when its
//! files change without dropping open streams), mutual TLS, and the
//! connection limits (streams per connection, connections, idle time), with
//! certificates made here by rcgen and a real tonic TLS client.

use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tonic::Streaming;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use vbs_gateway::app::App;
use vbs_gateway::config::{Config, TlsFiles};
use vbs_gateway::proto::pb::{self, JobStatus, job_service_client::JobServiceClient, watch_job_response};
use vbs_simulator::{Simulator, SimulatorConfig};

use crate::harness::{DISK_10GB, enforcing, gateway_credentials};

/// Longest any awaited condition may take before the test fails.
const PATIENCE: Duration = Duration::from_secs(10);

/// A certificate authority of a test.
pub(crate) struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Ca {
    pub(crate) fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        Ca {
            issuer: CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    pub(crate) fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A certificate for `dns` signed by this CA: (certificate PEM, key PEM).
    pub(crate) fn leaf(&self, dns: &str) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(vec![dns.to_string()])
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

/// A directory of its own for one test's PEM files.
pub(crate) fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("vbs-gateway-e2e-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Writes a server certificate for localhost signed by `ca` to `files`.
pub(crate) fn write_server_pair(ca: &Ca, files: &TlsFiles) {
    let (cert, key) = ca.leaf("localhost");
    // Write beside, then rename, as a deploy tool would: the reader sees old or new, never half.
    for (path, text) in [(&files.key, key), (&files.cert, cert)] {
        let partial = path.with_extension("partial");
        std::fs::write(&partial, text).unwrap();
        std::fs::rename(&partial, path).unwrap();
    }
}

pub(crate) fn server_files(dir: &Path, client_ca: Option<&Ca>) -> TlsFiles {
    let client_ca = client_ca.map(|ca| {
        let path = dir.join("client-ca.pem");
        std::fs::write(&path, ca.pem()).unwrap();
        path
    });
    TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca,
    }
}

/// A simulator and a gateway on port 0; the test connects its own clients.
pub(crate) struct Gateway {
    pub(crate) sim: Simulator,
    pub(crate) address: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    /// http://.../metrics when the test turned metrics on.
    metrics_url: Option<String>,
}

impl Gateway {
    pub(crate) async fn start(adjust: impl FnOnce(&mut Config)) -> Gateway {
        let sim_config = SimulatorConfig {
            auth: enforcing(SimulatorConfig::for_testing().auth),
            ..SimulatorConfig::for_testing()
        };
        let sim = Simulator::start(sim_config, TcpListener::bind("127.0.0.1:0").await.unwrap())
            .await
            .unwrap();
        let mut config = Config::for_testing(sim.url().parse().unwrap());
        config.credentials = gateway_credentials(crate::AUTH, &sim.url());
        config.front_door.tls_reload_interval = Duration::from_millis(50);
        adjust(&mut config);
        let app = App::new(&config).expect("gateway config");
        let metrics_url = match config.metrics_listen {
            Some(_) => {
                let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("http://{}/metrics", listener.local_addr().unwrap());
                tokio::spawn(app.serve_metrics(listener, std::future::pending()).unwrap());
                Some(url)
            }
            None => None,
        };
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
        Gateway {
            sim,
            address,
            stop: Some(stop),
            metrics_url,
        }
    }

    /// A new TLS connection trusting `ca`, presenting `identity` if given.
    pub(crate) async fn connect_tls(
        &self,
        ca: &Ca,
        identity: Option<(String, String)>,
    ) -> Result<Channel, tonic::transport::Error> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut tls = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(ca.pem()))
            .domain_name("localhost");
        if let Some((cert, key)) = identity {
            tls = tls.identity(Identity::from_pem(cert, key));
        }
        Channel::from_shared(format!("https://{}", self.address))
            .unwrap()
            .tls_config(tls)?
            .connect_timeout(PATIENCE)
            .connect()
            .await
    }

    /// A new plaintext connection.
    async fn connect_plain(&self) -> Result<Channel, tonic::transport::Error> {
        Channel::from_shared(format!("http://{}", self.address))
            .unwrap()
            .connect_timeout(PATIENCE)
            .connect()
            .await
    }

    /// Starts a backup and returns its job id (the job waits for the simulated clock).
    async fn start_job(&self, channel: &Channel) -> String {
        pb::backup_service_client::BackupServiceClient::new(channel.clone())
            .create_backup(pb::CreateBackupRequest {
                volume_id: DISK_10GB.into(),
                name: "front-door".into(),
                ..Default::default()
            })
            .await
            .expect("CreateBackup")
            .into_inner()
            .job_id
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

/// A call that reaches the simulator through `channel`.
async fn list_backups(channel: &Channel) -> Result<pb::ListBackupsResponse, tonic::Status> {
    pb::backup_service_client::BackupServiceClient::new(channel.clone())
        .list_backups(pb::ListBackupsRequest::default())
        .await
        .map(tonic::Response::into_inner)
}

async fn health(channel: &Channel) -> Result<ServingStatus, tonic::Status> {
    let reply = HealthClient::new(channel.clone())
        .check(HealthCheckRequest::default())
        .await?;
    Ok(reply.into_inner().status())
}

async fn watch(channel: &Channel, job_id: &str) -> Streaming<pb::WatchJobResponse> {
    JobServiceClient::new(channel.clone())
        .watch_job(pb::WatchJobRequest {
            job_id: job_id.into(),
            ..Default::default()
        })
        .await
        .expect("WatchJob")
        .into_inner()
}

/// The next job state of a watch, passing over heartbeats.
async fn next_job(stream: &mut Streaming<pb::WatchJobResponse>) -> pb::Job {
    loop {
        let message = tokio::time::timeout(PATIENCE, stream.message())
            .await
            .expect("the watch said nothing for 10 s")
            .expect("no error")
            .expect("a message, not the end");
        if let Some(watch_job_response::Event::Job(job)) = message.event {
            return job;
        }
    }
}

/// The gateway's /metrics text.
async fn scrape(gateway: &Gateway) -> String {
    let url = gateway.metrics_url.as_ref().expect("metrics are on");
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

fn metrics_on(config: &mut Config) {
    config.metrics_listen = Some(([127, 0, 0, 1], 0).into());
}

/// Polls `condition` until it holds, at most PATIENCE.
async fn eventually<F: Future<Output = bool>>(what: &str, mut condition: impl FnMut() -> F) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "not within 10 s: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn the_listener_speaks_only_tls_when_given_a_certificate() {
    let dir = temp_dir();
    let ca = Ca::new("server");
    let files = server_files(&dir, None);
    write_server_pair(&ca, &files);
    let gateway = Gateway::start(|c| c.front_door.tls = Some(files.clone())).await;

    let channel = gateway.connect_tls(&ca, None).await.expect("TLS connects");
    list_backups(&channel).await.expect("a call over TLS reaches VBS");
    assert_eq!(health(&channel).await.unwrap(), ServingStatus::Serving);

    let plain_failed = match gateway.connect_plain().await {
        Ok(channel) => list_backups(&channel).await.is_err(),
        Err(_) => true, // refused while connecting: as good
    };
    assert!(plain_failed, "a plaintext client fails");
    let untrusting = gateway.connect_tls(&Ca::new("stranger"), None).await;
    assert!(untrusting.is_err(), "a client that does not trust the CA fails");
}

#[tokio::test]
async fn a_new_certificate_is_served_to_new_connections_while_open_streams_go_on() {
    let dir = temp_dir();
    let (old_ca, new_ca) = (Ca::new("old"), Ca::new("new"));
    let files = server_files(&dir, None);
    write_server_pair(&old_ca, &files);
    let gateway = Gateway::start(|c| c.front_door.tls = Some(files.clone())).await;
    let old = gateway.connect_tls(&old_ca, None).await.expect("TLS connects");
    let job_id = gateway.start_job(&old).await;
    let mut stream = watch(&old, &job_id).await;
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Init);

    write_server_pair(&new_ca, &files);
    eventually("a new connection sees the new certificate", || async {
        gateway.connect_tls(&new_ca, None).await.is_ok()
    })
    .await;
    assert!(
        gateway.connect_tls(&old_ca, None).await.is_err(),
        "new connections no longer get the old certificate"
    );

    // The stream opened under the old certificate keeps receiving to the end.
    gateway.sim.advance(Duration::from_secs(600));
    let mut states = vec![];
    while states.last() != Some(&JobStatus::Success) {
        states.push(next_job(&mut stream).await.status());
        assert!(states.len() < 5, "no SUCCESS in {states:?}");
    }
    list_backups(&old).await.expect("the old connection still serves calls");
}

#[tokio::test]
async fn a_bad_new_pair_keeps_the_previous_certificate_in_force() {
    let dir = temp_dir();
    let ca = Ca::new("server");
    let files = server_files(&dir, None);
    write_server_pair(&ca, &files);
    let gateway = Gateway::start(|c| {
        c.front_door.tls = Some(files.clone());
        metrics_on(c);
    })
    .await;
    // A key that belongs to another certificate, and then a certificate that is not PEM.
    let (_, other_key) = ca.leaf("localhost");
    std::fs::write(&files.key, other_key).unwrap();
    std::fs::write(&files.cert, "not a certificate\n").unwrap();
    eventually("the reloader saw the bad files", || async {
        scrape(&gateway)
            .await
            .contains("vbs_frontdoor_tls_reloads_total{result=\"error\"}")
    })
    .await;
    for _ in 0..3 {
        let channel = gateway
            .connect_tls(&ca, None)
            .await
            .expect("the old pair is still served");
        list_backups(&channel).await.expect("calls go on");
    }
}

#[tokio::test]
async fn mutual_tls_refuses_clients_without_a_certificate_of_the_client_ca() {
    let dir = temp_dir();
    let (server_ca, client_ca, stranger_ca) = (Ca::new("server"), Ca::new("clients"), Ca::new("stranger"));
    let files = server_files(&dir, Some(&client_ca));
    write_server_pair(&server_ca, &files);
    let gateway = Gateway::start(|c| c.front_door.tls = Some(files.clone())).await;

    let member = gateway
        .connect_tls(&server_ca, Some(client_ca.leaf("billing.internal")))
        .await
        .expect("a client with a certificate of the client CA connects");
    list_backups(&member).await.expect("and calls");

    for (who, identity) in [
        ("no certificate", None),
        ("another CA", Some(stranger_ca.leaf("billing.internal"))),
    ] {
        let refused = match gateway.connect_tls(&server_ca, identity).await {
            Err(_) => true,
            // TLS 1.3 may finish the client's side before the server's verdict arrives.
            Ok(channel) => list_backups(&channel).await.is_err(),
        };
        assert!(refused, "{who}: the handshake must fail");
    }
}

/// Writes `text` over `path` by renaming a file written beside it.
fn replace_file(path: &Path, text: &str) {
    let partial = path.with_extension("partial");
    std::fs::write(&partial, text).unwrap();
    std::fs::rename(&partial, path).unwrap();
}

/// Whether a client of `identity` gets a call through (TLS 1.3 may finish the
/// client's handshake before the server's verdict, so a call decides).
async fn gets_in(gateway: &Gateway, server_ca: &Ca, identity: (String, String)) -> bool {
    match gateway.connect_tls(server_ca, Some(identity)).await {
        Ok(channel) => list_backups(&channel).await.is_ok(),
        Err(_) => false,
    }
}

#[tokio::test]
async fn a_new_client_ca_decides_new_connections_while_open_streams_go_on() {
    let dir = temp_dir();
    let (server_ca, old_clients, new_clients) = (Ca::new("server"), Ca::new("old clients"), Ca::new("new clients"));
    let files = server_files(&dir, Some(&old_clients));
    write_server_pair(&server_ca, &files);
    let gateway = Gateway::start(|c| {
        c.front_door.tls = Some(files.clone());
        metrics_on(c);
    })
    .await;
    let old = gateway
        .connect_tls(&server_ca, Some(old_clients.leaf("billing.internal")))
        .await
        .expect("a client of the first CA connects");
    let job_id = gateway.start_job(&old).await;
    let mut stream = watch(&old, &job_id).await;
    assert_eq!(next_job(&mut stream).await.status(), JobStatus::Init);

    let client_ca = files.client_ca.clone().unwrap();
    replace_file(&client_ca, &new_clients.pem());
    eventually("a client of the new CA gets in", || async {
        gets_in(&gateway, &server_ca, new_clients.leaf("billing.internal")).await
    })
    .await;
    assert!(
        !gets_in(&gateway, &server_ca, old_clients.leaf("billing.internal")).await,
        "a new connection with a certificate of the old CA is refused"
    );

    // A client CA that is not PEM keeps the new one in force.
    replace_file(&client_ca, "not a certificate\n");
    eventually("the reloader saw the bad client CA", || async {
        scrape(&gateway)
            .await
            .contains("vbs_frontdoor_tls_reloads_total{result=\"error\"} 1")
    })
    .await;
    assert!(gets_in(&gateway, &server_ca, new_clients.leaf("billing.internal")).await);
    assert!(!gets_in(&gateway, &server_ca, old_clients.leaf("billing.internal")).await);

    // The connection made under the old CA goes on: its stream to the end, and new calls.
    gateway.sim.advance(Duration::from_secs(600));
    let mut states = vec![];
    while states.last() != Some(&JobStatus::Success) {
        states.push(next_job(&mut stream).await.status());
        assert!(states.len() < 5, "no SUCCESS in {states:?}");
    }
    list_backups(&old).await.expect("the old connection still serves calls");
}

#[tokio::test]
async fn stream_257_on_one_connection_waits_until_one_of_256_ends() {
    let gateway = Gateway::start(|c| {
        assert_eq!(c.front_door.max_streams_per_connection, 256);
        metrics_on(c);
    })
    .await;
    let channel = gateway.connect_plain().await.unwrap();
    let job_id = gateway.start_job(&channel).await;
    let mut open = Vec::new();
    for _ in 0..256 {
        let mut stream = watch(&channel, &job_id).await;
        next_job(&mut stream).await;
        open.push(stream);
    }
    let job_id_257 = job_id.clone();
    let channel_257 = channel.clone();
    let mut stream_257 = tokio::spawn(async move { watch(&channel_257, &job_id_257).await });
    let waited = tokio::time::timeout(Duration::from_millis(300), &mut stream_257).await;
    assert!(waited.is_err(), "stream 257 must wait while 256 are open");
    assert!(
        scrape(&gateway)
            .await
            .contains("vbs_frontdoor_streams_at_limit_total 1")
    );

    let other = gateway.connect_plain().await.unwrap();
    assert_eq!(
        health(&other).await.unwrap(),
        ServingStatus::Serving,
        "health answers on another connection"
    );

    drop(open.pop());
    let mut stream = tokio::time::timeout(PATIENCE, stream_257)
        .await
        .expect("stream 257 opens once a slot is free")
        .unwrap();
    next_job(&mut stream).await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_closed_while_existing_ones_keep_working() {
    let gateway = Gateway::start(|c| {
        c.front_door.max_connections = 2;
        metrics_on(c);
    })
    .await;
    let first = gateway.connect_plain().await.unwrap();
    let second = gateway.connect_plain().await.unwrap();
    list_backups(&first).await.unwrap();
    list_backups(&second).await.unwrap();

    let third_failed = match gateway.connect_plain().await {
        Err(_) => true,
        Ok(channel) => list_backups(&channel).await.is_err(),
    };
    assert!(third_failed, "the connection beyond the limit is closed");
    let metrics = scrape(&gateway).await;
    assert!(
        metrics.contains("vbs_frontdoor_connections_refused_total{reason=\"max_connections\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("vbs_frontdoor_connections_open 2"), "{metrics}");
    list_backups(&first).await.expect("existing connections keep working");
    assert_eq!(health(&second).await.unwrap(), ServingStatus::Serving);

    drop(first);
    eventually("a freed slot takes a new connection", || async {
        match gateway.connect_plain().await {
            Ok(channel) => list_backups(&channel).await.is_ok(),
            Err(_) => false,
        }
    })
    .await;
}

#[tokio::test]
async fn a_silent_connection_is_closed_after_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let gateway = Gateway::start(|c| {
        c.front_door.idle_timeout = idle;
        metrics_on(c);
    })
    .await;
    let silent = TcpStream::connect(gateway.address).await.unwrap();
    let started = tokio::time::Instant::now();
    closed_within_patience(silent).await;
    assert!(started.elapsed() >= idle, "not closed before the idle timeout");
    let metrics = scrape(&gateway).await;
    assert!(
        metrics.contains("vbs_frontdoor_connections_idle_closed_total 1"),
        "{metrics}"
    );
}

/// Reads until the server closes the socket (EOF or reset), at most PATIENCE.
async fn closed_within_patience(mut socket: TcpStream) {
    let mut buffer = [0u8; 1024];
    loop {
        match tokio::time::timeout(PATIENCE, socket.read(&mut buffer)).await {
            Err(_) => panic!("the silent connection was still open after 10 s"),
            Ok(Ok(0)) | Ok(Err(_)) => return,
            Ok(Ok(_)) => continue, // the server's SETTINGS
        }
    }
}

#[tokio::test]
async fn a_connection_with_an_open_stream_is_not_idle() {
    let idle = Duration::from_millis(300);
    let gateway = Gateway::start(|c| c.front_door.idle_timeout = idle).await;
    let channel = gateway.connect_plain().await.unwrap();
    let job_id = gateway.start_job(&channel).await;
    let mut stream = watch(&channel, &job_id).await;
    next_job(&mut stream).await;
    // A silent connection opened now is closed once the idle timeout has passed...
    let silent = TcpStream::connect(gateway.address).await.unwrap();
    closed_within_patience(silent).await;
    // ...while the connection with the open stream goes on.
    gateway.sim.advance(Duration::from_secs(600));
    assert_ne!(next_job(&mut stream).await.status(), JobStatus::Init);
}

#[tokio::test]
async fn a_silent_tls_connection_is_closed_too() {
    let dir = temp_dir();
    let ca = Ca::new("server");
    let files = server_files(&dir, None);
    write_server_pair(&ca, &files);
    let idle = Duration::from_millis(300);
    let gateway = Gateway::start(|c| {
        c.front_door.tls = Some(files.clone());
        c.front_door.idle_timeout = idle;
    })
    .await;
    closed_within_patience(TcpStream::connect(gateway.address).await.unwrap()).await;
}

#[test]
fn a_bad_certificate_file_at_start_exits_64_naming_it() {
    let missing = temp_dir().join("missing.pem");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vbs-gateway"))
        .args(["--endpoint", "https://vbs.example.com", "--listen", "127.0.0.1:0"])
        .arg("--tls-cert")
        .arg(&missing)
        .arg("--tls-key")
        .arg(&missing)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(64));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(&format!("--tls-cert {}", missing.display())),
        "{stderr}"
    );
}

/// The caller named by a client certificate's DNS SAN (`client_cert_dns`),
/// through the real TLS listener: its role decides, and a certificate of the
/// client CA that names no caller is no identity.
#[tokio::test]
async fn a_client_certificate_names_its_caller() {
    use tonic::Code;
    use tonic_types::StatusExt;

    let dir = temp_dir();
    let (server_ca, client_ca) = (Ca::new("server"), Ca::new("clients"));
    let files = server_files(&dir, Some(&client_ca));
    write_server_pair(&server_ca, &files);
    let callers = dir.join("callers.toml");
    std::fs::write(
        &callers,
        "[[caller]]\nname = \"billing\"\nclient_cert_dns = \"billing.internal\"\nprojects = [\"*\"]\nrole = \"reader\"\n",
    )
    .unwrap();
    let gateway = Gateway::start(|c| {
        c.front_door.tls = Some(files.clone());
        c.callers.callers_file = Some(callers.clone());
    })
    .await;

    let billing = gateway
        .connect_tls(&server_ca, Some(client_ca.leaf("billing.internal")))
        .await
        .expect("billing connects");
    list_backups(&billing).await.expect("a reader may list");
    let denied = pb::backup_service_client::BackupServiceClient::new(billing.clone())
        .delete_backup(pb::DeleteBackupRequest {
            backup_id: "c68ae7fb-0aa5-4a97-ab01-ed02c5b7e768".into(),
            ..Default::default()
        })
        .await
        .expect_err("a reader may not delete");
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");
    assert_eq!(
        denied.get_error_details().error_info().map(|i| i.reason.as_str()),
        Some("CALLER_NOT_ALLOWED")
    );

    let stranger = gateway
        .connect_tls(&server_ca, Some(client_ca.leaf("unknown.internal")))
        .await
        .expect("a certificate of the client CA connects");
    let unknown = list_backups(&stranger).await.expect_err("but names no caller");
    assert_eq!(unknown.code(), Code::Unauthenticated, "{unknown:?}");
    assert_eq!(
        unknown.get_error_details().error_info().map(|i| i.reason.as_str()),
        Some("CALLER_UNKNOWN")
    );
    let deletes = gateway.sim.requests().iter().filter(|r| r.method == "DELETE").count();
    assert_eq!(deletes, 0, "nothing refused reached upstream");
}
