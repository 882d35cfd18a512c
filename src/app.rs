//! Wiring: one upstream transport shared by the backup, policy and job
//! services, the job hub behind job watching, plus health and reflection,
//! served by tonic until shutdown (which first ends open watches).

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;

use crate::config::Config;
use crate::frontdoor::FrontDoor;
use crate::grpc::job_source::VbsJobSource;
use crate::grpc::{Upstream, backups::Backups, jobs::Jobs, policies::Policies};
use crate::metrics::Metrics;
use crate::observe::RpcLayer;
use crate::proto::FILE_DESCRIPTOR_SET;
use crate::proto::pb::backup_policy_service_server::BackupPolicyServiceServer;
use crate::proto::pb::backup_service_server::BackupServiceServer;
use crate::proto::pb::job_service_server::JobServiceServer;
use crate::rest::UpstreamObserver;
pub use crate::rest::transport::TransportBuildError;
use crate::rest::transport::{Transport, TransportConfig};
use crate::watch::{HubMonitor, JobHub, WatchConfig};

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
    /// A TLS file of the listener cannot be used.
    #[error("{0}")]
    Tls(String),
    /// The gRPC server failed.
    #[error("gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// The gateway, ready to serve.
pub struct App {
    upstream: Upstream,
    hub: JobHub<VbsJobSource>,
    watch: WatchConfig,
    metrics: Option<Metrics>,
    front_door: FrontDoor,
}

impl App {
    /// The gateway for `config`: its upstream client, job hub and services.
    pub fn new(config: &Config) -> Result<App, AppError> {
        let endpoint = config.endpoint.clone().ok_or(AppError::NoEndpoint)?;
        let metrics = config.metrics_listen.map(|_| Metrics::new());
        let transport = Arc::new(Transport::new(TransportConfig {
            endpoint,
            timeout: config.upstream_timeout,
            connect_timeout: config.connect_timeout,
            insecure_skip_tls_verify: config.insecure_skip_tls_verify,
            ca_certificates_pem: config.ca_certificates_pem.clone(),
            credentials: config.credentials.clone(),
            pass_through_token: config.pass_through_token,
            retry: config.retry,
            observer: metrics.clone().map(|m| Arc::new(m) as Arc<dyn UpstreamObserver>),
        })?);
        if config.insecure_skip_tls_verify {
            tracing::warn!("upstream TLS certificates are NOT verified (--insecure-skip-tls-verify)");
        }
        Ok(App {
            upstream: Upstream {
                transport: transport.clone(),
                default_project_id: config.default_project_id.clone(),
                pass_through_token: config.pass_through_token,
            },
            hub: JobHub::new(VbsJobSource::new(transport), config.watch.clone()),
            watch: config.watch.clone(),
            front_door: FrontDoor::new(&config.front_door, metrics.clone())
                .map_err(|e| AppError::Tls(e.to_string()))?,
            metrics,
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

    /// Serves GET /metrics on `listener` until `shutdown` completes; None
    /// when metrics are off (no --metrics-listen).
    pub fn serve_metrics(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Option<impl Future<Output = std::io::Result<()>> + Send + 'static> {
        let metrics = self.metrics.clone()?;
        let hub = self.hub.monitor();
        let transport = self.upstream.transport.clone();
        let render = move || {
            let tokens = transport.authorizer().token_stats();
            metrics.render(Some(hub.stats()), tokens)
        };
        Some(crate::metrics::serve(listener, render, shutdown))
    }

    /// Serves on `listener` until `shutdown` completes, then ends open job
    /// watches with UNAVAILABLE (so their clients watch again elsewhere) and
    /// drains in-flight calls.
    pub async fn serve(self, listener: TcpListener, shutdown: impl Future<Output = ()> + Send) -> Result<(), AppError> {
        let (health, health_service) = tonic_health::server::health_reporter();
        health.set_serving::<BackupServiceServer<Backups>>().await;
        health.set_serving::<BackupPolicyServiceServer<Policies>>().await;
        health.set_serving::<JobServiceServer<Jobs>>().await;

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
        let jobs = JobServiceServer::new(Jobs::new(self.upstream, self.hub.clone()));
        // tonic's graceful shutdown waits for every open stream, and a watch
        // may stay open for hours: end the watches as soon as shutdown starts.
        let hub = self.hub;
        let shutdown = async move {
            shutdown.await;
            hub.shutdown();
        };

        let router = self
            .front_door
            .server()
            .layer(RpcLayer::new(self.metrics))
            .http2_keepalive_interval(self.watch.http2_keepalive_interval)
            .http2_keepalive_timeout(Some(self.watch.http2_keepalive_timeout))
            .add_service(health_service)
            .add_service(reflection_v1)
            .add_service(reflection_v1alpha)
            .add_service(backups.accept_compressed(gzip).send_compressed(gzip))
            .add_service(policies.accept_compressed(gzip).send_compressed(gzip))
            .add_service(jobs.accept_compressed(gzip).send_compressed(gzip));
        self.front_door.serve(router, listener, shutdown).await?;
        Ok(())
    }
}
