//! Wiring: one upstream transport shared by the backup, policy and job
//! services, the job hub behind job watching, plus health and reflection,
//! served by tonic until shutdown (which first ends open watches). The other
//! backup services (TaurusDB, ZStack) get a transport and job hub each.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

pub use crate::frontdoor::ServeError;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

use crate::config::Config;
use crate::frontdoor::{FrontDoor, Listener};
use crate::grpc::csbs::source::CsbsBackupSource;
use crate::grpc::csbs::{Csbs, CsbsBackend};
use crate::grpc::jobs::job_source::VbsJobSource;
use crate::grpc::taurusdb::{TaurusDb, job_source::TaurusDbJobSource};
use crate::grpc::writes::Writes;
use crate::grpc::zstack::{ZStack, job_source::ZStackJobSource};
use crate::grpc::{
    Upstream,
    backups::Backups,
    jobs::Jobs,
    operations::{Operations, OtherServices},
    policies::Policies,
};
use crate::metrics::Metrics;
use crate::observe::RpcLayer;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::csbs_pb::csbs_backup_service_server::CsbsBackupServiceServer;
use crate::proto::longrunning::operations_server::OperationsServer;
use crate::proto::pb::backup_policy_service_server::BackupPolicyServiceServer;
use crate::proto::pb::backup_service_server::BackupServiceServer;
use crate::proto::pb::job_service_server::JobServiceServer;
use crate::proto::taurusdb::v3::taurus_db_backup_service_server::TaurusDbBackupServiceServer;
use crate::proto::zstack::v1::z_stack_backup_service_server::ZStackBackupServiceServer;
use crate::rest::UpstreamObserver;
use crate::rest::credentials::Credentials;
pub use crate::rest::transport::TransportBuildError;
use crate::rest::transport::{Transport, TransportConfig};
use crate::store::budget::Rate;
use crate::store::idempotency::Retention;
use crate::store::operations::LogBounds;
use crate::store::redis::{RedisFleet, RedisLink};
use crate::watch::{HubMonitor, JobHub, JobSource, WatchConfig};
use reqwest::Url;

/// After the drain timeout, how long cancelled calls get to send their answer.
const CANCEL_GRACE: Duration = Duration::from_secs(1);

/// Why the gateway cannot start or stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The configuration names no upstream.
    #[error("no upstream endpoint configured")]
    NoEndpoint,
    /// The upstream client cannot be built.
    #[error(transparent)]
    Transport(#[from] TransportBuildError),
    /// The contract's descriptors do not load (a build fault).
    #[error("reflection descriptors are invalid: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The callers file cannot be used.
    #[error(transparent)]
    Callers(#[from] crate::frontdoor::CallersFileError),
    /// A TLS file of the listener cannot be used.
    #[error("{0}")]
    Tls(String),
    /// The Redis settings cannot be used.
    #[error("{0}")]
    Redis(String),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(#[from] crate::frontdoor::ServeError),
}

/// The gateway, ready to serve.
pub struct App {
    upstream: Upstream,
    hub: JobHub<VbsJobSource>,
    watch: WatchConfig,
    metrics: Option<Metrics>,
    front_door: FrontDoor,
    reflection: bool,
    drain_timeout: Duration,
    listener: Listener,
    redis: Option<RedisLink>,
    /// CSBS, when it has an endpoint; None: its RPCs answer UNIMPLEMENTED.
    csbs: Option<CsbsBackend>,
    /// TaurusDbBackupService, and its job hub when TaurusDB is configured.
    taurusdb: (TaurusDb, Option<JobHub<TaurusDbJobSource>>),
    /// ZStackBackupService, and its job hub when ZStack is configured.
    zstack: (ZStack, Option<JobHub<ZStackJobSource>>),
}

impl App {
    /// The gateway for `config`: its upstream client, job hub and services.
    pub fn new(config: &Config) -> Result<App, AppError> {
        let endpoint = config.endpoint.clone().ok_or(AppError::NoEndpoint)?;
        let metrics = config.metrics_listen.map(|_| Metrics::new());
        let redis = config
            .redis
            .as_ref()
            .map(|redis| {
                let password = redis.password.as_ref().map(|secret| secret.expose());
                RedisLink::new(redis.url.as_str(), password, &redis.prefix)
            })
            .transpose();
        let redis = redis.map_err(|e| AppError::Redis(e.to_string()))?;
        // One budget per project for every upstream service the gateway calls.
        let budget = config.budget.rate.map(|per_second| {
            let rate = Rate {
                per_second,
                burst: config.budget.burst,
            };
            crate::store::upstream_budget(redis.as_ref(), rate)
        });
        let transport_to = |endpoint: Url, credentials: Credentials, pass_through_token: bool| {
            Transport::new(TransportConfig {
                endpoint,
                timeout: config.upstream_timeout,
                connect_timeout: config.connect_timeout,
                insecure_skip_tls_verify: config.insecure_skip_tls_verify,
                ca_certificates_pem: config.ca_certificates_pem.clone(),
                credentials,
                pass_through_token,
                retry: config.retry,
                observer: metrics.clone().map(|m| Arc::new(m) as Arc<dyn UpstreamObserver>),
                max_body: config.bounds.max_upstream_body,
                default_deadline: config.bounds.default_deadline,
                budget: budget.clone(),
            })
            .map(Arc::new)
        };
        let transport = transport_to(endpoint, config.credentials.clone(), config.pass_through_token)?;
        let front_door = FrontDoor::new(config.callers.front_door(), metrics.clone())?;
        if config.callers.allow_unauthenticated && config.callers.callers_file.is_none() {
            tracing::warn!(
                "no --callers: anyone who reaches the gRPC port acts with the gateway's credentials (--allow-unauthenticated)"
            );
        }
        let poll_deadline = config.upstream_timeout.min(config.watch.heartbeat);
        let csbs = match &config.csbs.endpoint {
            Some(endpoint) => {
                let credentials = config.csbs.effective_credentials(&config.credentials);
                let transport = transport_to(endpoint.clone(), credentials, config.pass_through_token)?;
                let source = CsbsBackupSource::new(transport.clone(), poll_deadline);
                Some(CsbsBackend {
                    transport,
                    hub: job_hub(config, source, redis.as_ref()),
                })
            }
            None => None,
        };
        if config.insecure_skip_tls_verify {
            tracing::warn!("upstream TLS certificates are NOT verified (--insecure-skip-tls-verify)");
        }
        let upstream = Upstream {
            transport: transport.clone(),
            default_project_id: config.default_project_id.clone(),
            pass_through_token: config.pass_through_token,
            writes: Writes::new(
                crate::store::idempotency_store(redis.as_ref(), retention(config), claim_lifetime(config)),
                metrics.clone(),
            ),
            default_deadline: config.bounds.default_deadline,
            operations: crate::store::operation_log(redis.as_ref(), LogBounds::default()),
        };
        // TaurusDB: its own endpoint and transport (its credentials, else the
        // gateway's), the gateway's call defaults, and a job hub of its own.
        let taurusdb = match &config.taurusdb.endpoint {
            Some(endpoint) => {
                let credentials = config.taurusdb.credentials.clone();
                let credentials = credentials.unwrap_or(config.credentials.clone());
                let transport = transport_to(endpoint.clone(), credentials, config.pass_through_token)?;
                let source = TaurusDbJobSource::new(transport.clone(), poll_deadline);
                let hub = job_hub(config, source, redis.as_ref());
                let upstream = Upstream {
                    transport,
                    ..upstream.clone()
                };
                (TaurusDb::new(upstream, hub.clone()), Some(hub))
            }
            None => (TaurusDb::unconfigured(), None),
        };
        // ZStack: logged in with its own account; a caller's IAM token means
        // nothing there, so it never passes through.
        let zstack = match config.zstack.login() {
            Some(account) => {
                let endpoint = account.endpoint.clone();
                let transport = transport_to(endpoint, Credentials::ZStack(account), false)?;
                let hub = job_hub(
                    config,
                    ZStackJobSource::new(transport.clone(), poll_deadline),
                    redis.as_ref(),
                );
                let service = ZStack::new(
                    transport,
                    config.bounds.default_deadline,
                    hub.clone(),
                    upstream.writes.clone(),
                    upstream.operations.clone(),
                );
                (service, Some(hub))
            }
            None => (ZStack::unconfigured(), None),
        };
        Ok(App {
            upstream,
            hub: job_hub(config, VbsJobSource::new(transport, poll_deadline), redis.as_ref()),
            watch: config.watch.clone(),
            listener: Listener::new(&config.front_door, metrics.clone()).map_err(|e| AppError::Tls(e.to_string()))?,
            metrics,
            front_door,
            reflection: config.callers.reflection,
            drain_timeout: config.bounds.drain_timeout,
            redis,
            csbs,
            taurusdb,
            zstack,
        })
    }

    /// How the gateway authenticates upstream, in words (never a secret).
    pub fn upstream_credentials(&self) -> String {
        self.upstream.transport.authorizer().describe()
    }

    /// The job hub's counters, readable while the app serves: what
    /// `/metrics` exports, for a process that embeds the gateway and exports
    /// its own way.
    pub fn hub_monitor(&self) -> HubMonitor {
        self.hub.monitor()
    }

    /// Each configured backup service's job hub, by the name /metrics labels
    /// its series with.
    fn hub_monitors(&self) -> Vec<(&'static str, HubMonitor)> {
        let mut hubs = vec![("vbs", self.hub.monitor())];
        if let Some(csbs) = &self.csbs {
            hubs.push(("csbs", csbs.hub.monitor()));
        }
        if let Some(hub) = &self.taurusdb.1 {
            hubs.push(("taurusdb", hub.monitor()));
        }
        if let Some(hub) = &self.zstack.1 {
            hubs.push(("zstack", hub.monitor()));
        }
        hubs
    }

    /// Serves GET /metrics on `listener` until `shutdown` completes; None
    /// when metrics are off (no --metrics-listen).
    pub fn serve_metrics(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Option<impl Future<Output = std::io::Result<()>> + Send + 'static> {
        let metrics = self.metrics.clone()?;
        let hubs = self.hub_monitors();
        let transport = self.upstream.transport.clone();
        let redis = self.redis.clone();
        let render = move || {
            if let Some(redis) = &redis {
                metrics.redis_up(redis.is_up());
            }
            let tokens = transport.authorizer().token_stats();
            let hubs: Vec<_> = hubs.iter().map(|(service, hub)| (*service, hub.stats())).collect();
            metrics.render(&hubs, tokens)
        };
        Some(crate::metrics::serve(listener, render, shutdown))
    }

    /// Serves on `listener` until `shutdown` completes, then reports NOT_SERVING
    /// to health checks, ends open job watches with UNAVAILABLE (so their
    /// clients watch again elsewhere) and drains in-flight calls for at most
    /// the drain timeout; calls still waiting for their answer then get
    /// UNAVAILABLE (SHUTTING_DOWN) and their upstream work is dropped.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send) -> Result<(), AppError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<BackupServiceServer<Backups>>().await;
        health.set_serving::<BackupPolicyServiceServer<Policies>>().await;
        health.set_serving::<JobServiceServer<Jobs>>().await;
        health.set_serving::<OperationsServer<Operations>>().await;
        health.set_serving::<CsbsBackupServiceServer<Csbs>>().await;
        health.set_serving::<TaurusDbBackupServiceServer<TaurusDb>>().await;
        health.set_serving::<ZStackBackupServiceServer<ZStack>>().await;

        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1 = reflection().build_v1()?;
        let reflection_v1alpha = reflection().build_v1alpha()?;

        let gzip = CompressionEncoding::Gzip;
        let backups = BackupServiceServer::new(Backups::new(self.upstream.clone()));
        let policies = BackupPolicyServiceServer::new(Policies::new(self.upstream.clone()));
        let writes = self.upstream.writes.clone();
        let csbs = Arc::new(Csbs::new(self.upstream.clone(), self.csbs.clone()));
        let csbs_backend = self.csbs;
        let jobs = Arc::new(Jobs::new(self.upstream.clone(), self.hub.clone()));
        let (taurusdb, taurusdb_hub) = self.taurusdb;
        let taurusdb = Arc::new(taurusdb);
        let (zstack, zstack_hub) = self.zstack;
        let zstack = Arc::new(zstack);
        let others = OtherServices {
            csbs: csbs.clone(),
            taurusdb: taurusdb.clone(),
            zstack: zstack.clone(),
        };
        let operations = OperationsServer::new(Operations::new(self.upstream, jobs.clone(), others));
        let jobs = JobServiceServer::from_arc(jobs);
        let csbs = CsbsBackupServiceServer::from_arc(csbs);
        let taurusdb = TaurusDbBackupServiceServer::from_arc(taurusdb);
        let zstack = ZStackBackupServiceServer::from_arc(zstack);
        // tonic's graceful shutdown waits for every open stream, and a watch
        // may stay open for hours: end the watches as soon as shutdown starts.
        let hub = self.hub;
        let (draining, drain_started) = tokio::sync::oneshot::channel();
        let shutdown = async move {
            shutdown.await;
            health.set_not_serving::<BackupServiceServer<Backups>>().await;
            health.set_not_serving::<BackupPolicyServiceServer<Policies>>().await;
            health.set_not_serving::<JobServiceServer<Jobs>>().await;
            health.set_not_serving::<OperationsServer<Operations>>().await;
            health.set_not_serving::<CsbsBackupServiceServer<Csbs>>().await;
            health.set_not_serving::<TaurusDbBackupServiceServer<TaurusDb>>().await;
            health.set_not_serving::<ZStackBackupServiceServer<ZStack>>().await;
            // "" is the whole server, what most load balancers ask about.
            health
                .set_service_status("", tonic_health::ServingStatus::NotServing)
                .await;
            hub.shutdown();
            if let Some(csbs) = &csbs_backend {
                csbs.shutdown();
            }
            if let Some(hub) = taurusdb_hub {
                hub.shutdown();
            }
            if let Some(hub) = zstack_hub {
                hub.shutdown();
            }
            let _ = draining.send(());
        };
        let drain_timeout = self.drain_timeout;
        let drained = tokio_util::sync::CancellationToken::new();
        let drain_over = async move {
            if drain_started.await.is_err() {
                std::future::pending::<()>().await;
            }
            tokio::time::sleep(drain_timeout).await;
        };

        self.front_door.watch_callers_file();
        let router = self
            .listener
            .server()
            .layer(RpcLayer::new(self.metrics, drained.clone()))
            .layer(self.front_door)
            .http2_keepalive_interval(self.watch.http2_keepalive_interval)
            .http2_keepalive_timeout(Some(self.watch.http2_keepalive_timeout))
            .add_service(health_service)
            .add_optional_service(self.reflection.then_some(reflection_v1))
            .add_optional_service(self.reflection.then_some(reflection_v1alpha))
            .add_service(backups.accept_compressed(gzip).send_compressed(gzip))
            .add_service(policies.accept_compressed(gzip).send_compressed(gzip))
            .add_service(jobs.accept_compressed(gzip).send_compressed(gzip))
            .add_service(operations.accept_compressed(gzip).send_compressed(gzip))
            .add_service(csbs.accept_compressed(gzip).send_compressed(gzip))
            .add_service(taurusdb.accept_compressed(gzip).send_compressed(gzip))
            .add_service(zstack.accept_compressed(gzip).send_compressed(gzip));
        let serving = self.listener.serve(router, listener, shutdown);
        tokio::pin!(serving);
        tokio::pin!(drain_over);
        tokio::select! {
            served = &mut serving => served?,
            () = &mut drain_over => {
                tracing::warn!(?drain_timeout, "drain timeout passed; cancelling the calls still in flight");
                drained.cancel();
                // The cancelled calls answer at once; their connections then close.
                if let Ok(served) = tokio::time::timeout(CANCEL_GRACE, serving).await {
                    served?;
                }
                return Ok(());
            }
        }
        // Every call has answered, but a write whose caller left may still be
        // on its way upstream: it gets the rest of the drain to record its answer.
        tokio::select! {
            () = writes.finish_detached() => {}
            () = &mut drain_over => {
                let running = writes.detached_running();
                tracing::warn!(?drain_timeout, running, "drain timeout passed; dropping writes still running upstream");
            }
        }
        Ok(())
    }
}

/// A job hub (VBS's or another service's); with --redis-url its pollers are
/// shared by every replica.
fn job_hub<S: JobSource>(config: &Config, source: S, redis: Option<&RedisLink>) -> JobHub<S> {
    match redis {
        Some(link) => JobHub::shared(source, config.watch.clone(), Arc::new(RedisFleet::new(link.clone()))),
        None => JobHub::new(source, config.watch.clone()),
    }
}

/// How long and how many write answers the idempotency records keep.
fn retention(config: &Config) -> Retention {
    Retention {
        ttl: config.idempotency.ttl,
        max_records: config.idempotency.max_records,
    }
}

/// The longest a write may run: the deadline of all its upstream attempts,
/// plus a shutdown's drain. A shared claim outlives its writer no longer.
fn claim_lifetime(config: &Config) -> Duration {
    config.bounds.default_deadline + config.bounds.drain_timeout
}
