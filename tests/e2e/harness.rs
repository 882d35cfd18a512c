//! One world per test: a simulator with a stepped clock that checks
//! credentials, and a gateway authenticating the way the test binary says
//! (`crate::AUTH`), each on port 0, and gRPC clients connected to the gateway.
//! Nothing is shared between tests and nothing sleeps for a fixed time.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;
use tonic::{Code, Status};
use tonic_types::StatusExt;
use vbs_gateway::app::App;
use vbs_gateway::config::Config;
use vbs_gateway::proto::pb::{
    self, JobStatus, backup_policy_service_client::BackupPolicyServiceClient,
    backup_service_client::BackupServiceClient, job_service_client::JobServiceClient,
};
use vbs_gateway::rest::credentials::{self, Credentials, ProjectScope, Secret};
use vbs_simulator::csbs::{CsbsSimulator, CsbsSimulatorConfig};
use vbs_simulator::{self as simulator, AuthConfig, RecordedRequest, Simulator, SimulatorConfig};

/// The four simulated disks (see SimulatorConfig::default_volumes).
pub(crate) const DISK_10GB: &str = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a01";
pub(crate) const DISK_20GB: &str = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a02";
pub(crate) const DISK_40GB_IN_USE: &str = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a03";
pub(crate) const DISK_5GB: &str = "6f1a8c52-0b3e-4d5a-9c7e-2f4b8d1e0a04";
/// A well-formed disk id the simulator does not know.
pub(crate) const UNKNOWN_ID: &str = "00000000-0000-4000-8000-000000000000";

/// The test credentials (the AK/SK of the official signing vectors).
pub(crate) const ACCESS_KEY: &str = "VBSGWTESTAKID0000001";
pub(crate) const SECRET_KEY: &str = "vbsGwTestSecretKey0000000000000000000001";
pub(crate) const IAM_USER: &str = "e2e-user";
pub(crate) const IAM_PASSWORD: &str = "e2e-password-never-logged";
pub(crate) const IAM_DOMAIN: &str = "e2e-domain";
/// The ZStack account the gateway logs in with.
pub(crate) const ZSTACK_ACCOUNT: &str = "e2e-zstack-admin";
pub(crate) const ZSTACK_PASSWORD: &str = "zstack-password-never-logged";
/// The project the gateway defaults to (config::DEMO_PROJECT_ID).
pub(crate) const PROJECT_ID: &str = "5f0e1d2c3b4a49586776a5b4c3d2e1f0";

/// How the gateway of a test binary authenticates to the simulator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AuthMode {
    /// SDK-HMAC-SHA256 signatures with the test AK/SK.
    AkSk,
    /// Tokens the simulator's IAM issues to the test user.
    Iam,
}

pub(crate) struct World {
    pub(crate) sim: Simulator,
    pub(crate) backups: BackupServiceClient<Channel>,
    pub(crate) policies: BackupPolicyServiceClient<Channel>,
    pub(crate) jobs: JobServiceClient<Channel>,
    pub(crate) channel: Channel,
    /// Where the gateway listens (for clients other than `channel`, such as the command line).
    pub(crate) address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
    /// http://.../metrics when the test turned metrics on (config.metrics_listen).
    pub(crate) metrics_url: Option<String>,
}

impl World {
    pub(crate) async fn start() -> World {
        World::start_with(SimulatorConfig::for_testing(), |_| {}).await
    }

    /// A world whose simulator and gateway settings the test adjusts. The
    /// simulator enforces the binary's auth mode; `sim_config.auth` is extended.
    pub(crate) async fn start_with(mut sim_config: SimulatorConfig, adjust: impl FnOnce(&mut Config)) -> World {
        sim_config.auth = enforcing(sim_config.auth);
        let sim_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind simulator");
        let sim = Simulator::start(sim_config, sim_listener)
            .await
            .expect("start simulator");
        let mut config = Config::for_testing(sim.url().parse().expect("simulator URL"));
        config.credentials = gateway_credentials(crate::AUTH, &sim.url());
        // Served as the binary serves by default: connections on threads of
        // their own, two as on a two-core machine.
        config.front_door.serve_threads = 2;
        let taurusdb_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind TaurusDB");
        let taurusdb_url = sim.serve_taurusdb(taurusdb_listener).expect("serve TaurusDB");
        config.taurusdb.endpoint = Some(taurusdb_url.parse().expect("TaurusDB URL"));
        let zstack_listener = TcpListener::bind("127.0.0.1:0").await.expect("bind ZStack");
        let zstack_url = sim.serve_zstack(zstack_listener).expect("serve ZStack");
        sim.add_zstack_account(ZSTACK_ACCOUNT, &Secret::new(ZSTACK_PASSWORD));
        config.zstack = vbs_gateway::config::ZStackConfig {
            endpoint: Some(zstack_url.parse().expect("ZStack URL")),
            account: Some(ZSTACK_ACCOUNT.into()),
            password: Some(Secret::new(ZSTACK_PASSWORD)),
        };
        adjust(&mut config);
        let app = App::new(&config).expect("gateway config");
        let metrics_url = match config.metrics_listen {
            Some(_) => Some(serve_metrics(&app).await),
            None => None,
        };
        let (channel, address, stop, server) = serve_app_at(app).await;
        World {
            sim,
            backups: BackupServiceClient::new(channel.clone()),
            policies: BackupPolicyServiceClient::new(channel.clone()),
            jobs: JobServiceClient::new(channel.clone()),
            channel,
            address,
            stop: Some(stop),
            server: Some(server),
            metrics_url,
        }
    }

    /// The VBS requests the simulator received (IAM token requests left out).
    pub(crate) fn upstream_requests(&self) -> Vec<RecordedRequest> {
        self.sim
            .requests()
            .into_iter()
            .filter(|r| !r.path.starts_with("/v3/"))
            .collect()
    }

    /// Moves simulated time on by whole seconds.
    pub(crate) fn advance(&self, seconds: u64) {
        self.sim.advance(Duration::from_secs(seconds));
    }

    pub(crate) async fn job(&self, job_id: &str) -> pb::Job {
        let reply = self
            .jobs
            .clone()
            .get_job(pb::GetJobRequest {
                job_id: job_id.into(),
                ..Default::default()
            })
            .await
            .expect("GetJob");
        reply.into_inner().job.expect("job in reply")
    }

    /// GetBackup, for the result.
    pub(crate) async fn get_backup(&self, backup_id: &str) -> Result<pb::Backup, Status> {
        let request = pb::GetBackupRequest {
            backup_id: backup_id.into(),
            ..Default::default()
        };
        let reply = self.backups.clone().get_backup(request).await?;
        Ok(reply.into_inner().backup.expect("backup in reply"))
    }

    /// Steps the simulated clock a second at a time until the job is terminal
    /// (at most a minute of simulated time) and returns it.
    pub(crate) async fn finish_job(&self, job_id: &str) -> pb::Job {
        for _ in 0..60 {
            let job = self.job(job_id).await;
            if matches!(job.status(), JobStatus::Success | JobStatus::Fail) {
                return job;
            }
            self.advance(1);
        }
        panic!("job {job_id} did not finish within a minute of simulated time");
    }

    /// Creates a backup of `volume_id` and runs its job to the end; returns the backup id.
    pub(crate) async fn make_backup(&self, volume_id: &str, name: &str) -> String {
        let job_id = self
            .backups
            .clone()
            .create_backup(pb::CreateBackupRequest {
                volume_id: volume_id.into(),
                name: name.into(),
                ..Default::default()
            })
            .await
            .expect("CreateBackup")
            .into_inner()
            .job_id;
        let job = self.finish_job(&job_id).await;
        assert_eq!(job.status(), JobStatus::Success, "{job:?}");
        job.entities.get("backup_id").cloned().expect("backup_id entity")
    }

    /// Shuts the gateway down and waits for it to drain.
    pub(crate) async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.sim.shutdown();
    }
}

/// A CSBS simulator with a stepped clock that checks the test AK/SK, on
/// port 0; a world uses it when the test sets `config.csbs.endpoint` to its URL.
pub(crate) async fn start_csbs(mut config: CsbsSimulatorConfig) -> CsbsSimulator {
    config.auth = enforcing(config.auth);
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind CSBS simulator");
    CsbsSimulator::start(config, listener)
        .await
        .expect("start CSBS simulator")
}

/// The simulator's auth settings with the test AK/SK and IAM user added, enforced.
pub(crate) fn enforcing(mut auth: AuthConfig) -> AuthConfig {
    auth.enforce = true;
    auth.access_keys.push(simulator::AccessKey {
        access_key: ACCESS_KEY.into(),
        secret_key: Secret::new(SECRET_KEY),
        security_token: None,
    });
    auth.users.push(simulator::IamUser {
        name: IAM_USER.into(),
        password: Secret::new(IAM_PASSWORD),
        domain: IAM_DOMAIN.into(),
        project: PROJECT_ID.into(),
    });
    auth
}

/// The gateway's credentials for `mode`, against the simulator at `sim_url`.
pub(crate) fn gateway_credentials(mode: AuthMode, sim_url: &str) -> Credentials {
    match mode {
        AuthMode::AkSk => Credentials::AccessKey(credentials::AccessKey {
            access_key: Secret::new(ACCESS_KEY),
            secret_key: Secret::new(SECRET_KEY),
            security_token: None,
            signing: credentials::Signing::default(),
        }),
        AuthMode::Iam => Credentials::Iam(credentials::IamUser {
            endpoint: sim_url.parse().expect("simulator URL"),
            user: IAM_USER.into(),
            password: Secret::new(IAM_PASSWORD),
            domain: IAM_DOMAIN.into(),
            project: ProjectScope::Id(PROJECT_ID.into()),
        }),
    }
}

/// Serves the app's metrics on port 0 (whatever address the config names).
async fn serve_metrics(app: &App) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind metrics");
    let address = listener.local_addr().expect("metrics address");
    let server = app
        .serve_metrics(listener, std::future::pending())
        .expect("metrics are on");
    tokio::spawn(server);
    format!("http://{address}/metrics")
}

/// Starts a gateway for `config` on port 0 and connects a channel to it.
pub(crate) async fn serve(config: &Config) -> (Channel, oneshot::Sender<()>, JoinHandle<()>) {
    let app = App::new(config).expect("gateway config");
    serve_app(app).await
}

/// Serves `app` on port 0 and connects a channel to it.
pub(crate) async fn serve_app(app: App) -> (Channel, oneshot::Sender<()>, JoinHandle<()>) {
    let (channel, _, stop, server) = serve_app_at(app).await;
    (channel, stop, server)
}

/// Serves `app` on port 0 and connects a channel to it; also says where it listens.
async fn serve_app_at(app: App) -> (Channel, SocketAddr, oneshot::Sender<()>, JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind gateway");
    let address = listener.local_addr().expect("gateway address");
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.serve(listener, async {
            let _ = stopped.await;
        })
        .await
        .expect("gateway serves");
    });
    let channel = Channel::from_shared(format!("http://{address}"))
        .expect("gateway URL")
        .connect()
        .await
        .expect("connect to gateway");
    (channel, address, stop, server)
}

/// Asserts an INVALID_ARGUMENT naming `field`, and that nothing reached the
/// simulator. Every BadRequest violation must carry an UPPER_SNAKE reason,
/// and ErrorInfo their one reason (MULTIPLE_VIOLATIONS when they differ) and
/// the fields. Returns the reason of `field`'s violation.
pub(crate) fn assert_rejected<T: std::fmt::Debug>(world: &World, result: Result<T, Status>, field: &str) -> String {
    let status = result.expect_err("the gateway must reject the request");
    let reason = assert_violation(&status, field);
    let sent = world.upstream_requests();
    assert!(sent.is_empty(), "{field}: the gateway sent {sent:?}");
    reason
}

/// [`assert_rejected`], and `field`'s violation has `reason`.
pub(crate) fn assert_rejected_because<T: std::fmt::Debug>(
    world: &World,
    result: Result<T, Status>,
    field: &str,
    reason: &str,
) {
    assert_eq!(assert_rejected(world, result, field), reason, "{field}");
}

/// Checks the details of an INVALID_ARGUMENT naming `field`, and returns
/// the reason of `field`'s violation.
pub(crate) fn assert_violation(status: &Status, field: &str) -> String {
    assert_eq!(status.code(), Code::InvalidArgument, "{field}: {status:?}");
    let details = status.get_error_details();
    let violations = details
        .bad_request()
        .map(|b| b.field_violations.clone())
        .unwrap_or_default();
    for v in &violations {
        assert!(
            !v.reason.is_empty() && v.reason.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
            "{}: reason {:?}",
            v.field,
            v.reason
        );
    }
    let Some(mine) = violations.iter().find(|v| v.field == field) else {
        let fields: Vec<&str> = violations.iter().map(|v| v.field.as_str()).collect();
        panic!("expected a violation of {field}, got {fields:?}");
    };
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.domain, "vbs-gateway");
    let shared = violations.iter().all(|v| v.reason == mine.reason);
    let expected = if shared {
        mine.reason.as_str()
    } else {
        "MULTIPLE_VIOLATIONS"
    };
    assert_eq!(info.reason, expected, "{field}: {violations:?}");
    let fields = info.metadata.get("fields").map(String::as_str).unwrap_or_default();
    assert!(
        fields.split(',').any(|f| f == field),
        "{field} not in ErrorInfo fields {fields:?}"
    );
    mine.reason.clone()
}

/// The one page ListOperations answers for `list` (it must have no other):
/// each operation's name and whether it is done, newest first.
pub(crate) async fn listed_operations(channel: &Channel, list: &str) -> Vec<(String, bool)> {
    use vbs_gateway::proto::longrunning::{ListOperationsRequest, operations_client::OperationsClient};
    let page = OperationsClient::new(channel.clone())
        .list_operations(ListOperationsRequest {
            name: list.into(),
            ..Default::default()
        })
        .await
        .unwrap_or_else(|status| panic!("ListOperations {list}: {status:?}"))
        .into_inner();
    assert!(page.next_page_token.is_empty(), "{list}: one page expected");
    page.operations.into_iter().map(|op| (op.name, op.done)).collect()
}

/// The VBS error code an error status carries (ErrorInfo metadata `vbsCode`).
pub(crate) fn vbs_code(status: &Status) -> Option<String> {
    error_metadata(status).remove("vbsCode")
}

/// The ErrorInfo metadata of an error status.
pub(crate) fn error_metadata(status: &Status) -> std::collections::HashMap<String, String> {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.metadata.clone())
        .unwrap_or_default()
}
