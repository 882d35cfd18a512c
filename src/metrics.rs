//! Prometheus metrics of one gateway: its own registry (not process-global,
//! so every gateway and every test counts alone), what is recorded where, and
//! the /metrics endpoint served on its own address.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use metrics::{Key, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusRecorder};
use prost::Message;
use prost_types::FileDescriptorSet;
use tokio::net::TcpListener;

use crate::rest::iam::TokenStats;
use crate::rest::{Operation, UpstreamObserver};
use crate::watch::HubStats;

const METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Latency buckets from half a millisecond (a cached read) to a minute (a
/// long-lived watch), in seconds.
const BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

const RPC_STARTED: &str = "grpc_server_started_total";
const RPC_HANDLED: &str = "grpc_server_handled_total";
const RPC_SECONDS: &str = "grpc_server_handling_seconds";
const UPSTREAM_REQUESTS: &str = "vbs_upstream_requests_total";
const UPSTREAM_SECONDS: &str = "vbs_upstream_request_duration_seconds";
const WATCHERS: &str = "vbs_watch_active_watchers";
const POLLERS: &str = "vbs_watch_active_pollers";
const LOCAL_FALLBACK: &str = "vbs_watch_local_fallback";
const BUDGET_WAIT_SECONDS: &str = "vbs_upstream_budget_wait_seconds";
const BUDGET_EXHAUSTED: &str = "vbs_upstream_budget_exhausted_total";
const POLLS: &str = "vbs_watch_upstream_polls_total";
const REFRESHES: &str = "vbs_credential_refreshes_total";
const REFRESH_FAILURES: &str = "vbs_credential_refresh_failures_total";
const REPLAYS: &str = "vbs_idempotent_replays_total";
const REUSES: &str = "vbs_request_id_reused_total";
const CALLER_REFUSALS: &str = "vbs_caller_refusals_total";
const CALLER_WATCHES: &str = "vbs_caller_open_watches";
const CALLERS_RELOADS: &str = "vbs_callers_file_reloads_total";
const CONNECTIONS_OPEN: &str = "vbs_frontdoor_connections_open";
const CONNECTIONS_REFUSED: &str = "vbs_frontdoor_connections_refused_total";
const CONNECTIONS_IDLE_CLOSED: &str = "vbs_frontdoor_connections_idle_closed_total";
const STREAMS_AT_LIMIT: &str = "vbs_frontdoor_streams_at_limit_total";
const TLS_RELOADS: &str = "vbs_frontdoor_tls_reloads_total";
const REDIS_UP: &str = "vbs_redis_up";

/// The gateway's metrics; cheap to clone.
#[derive(Clone)]
pub(crate) struct Metrics {
    recorder: Arc<PrometheusRecorder>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

/// What a gRPC call is, for labels: "/vbs.v2.JobService/WatchJob" gives
/// service "vbs.v2.JobService", method "WatchJob". Only the RPCs the gateway
/// serves have names of their own; any other path a caller sends is
/// "unknown", so callers cannot add series (and their memory) at will.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RpcName {
    pub(crate) service: &'static str,
    pub(crate) method: &'static str,
    /// The call shape, as go-grpc-prometheus labels it.
    kind: &'static str,
}

impl RpcName {
    const UNKNOWN: RpcName = RpcName {
        service: "unknown",
        method: "unknown",
        kind: "unary",
    };

    pub(crate) fn from_path(path: &str) -> RpcName {
        // The table is a static, so its names live as long as the process.
        RPCS.get(path).map_or(RpcName::UNKNOWN, |rpc| RpcName {
            service: &rpc.service,
            method: &rpc.method,
            kind: rpc.kind,
        })
    }

    /// Whether the path named none of the RPCs served.
    pub(crate) fn is_unknown(&self) -> bool {
        self.service == RpcName::UNKNOWN.service
    }

    fn labels(&self) -> Vec<Label> {
        vec![
            Label::new("grpc_service", self.service),
            Label::new("grpc_method", self.method),
        ]
    }
}

/// One RPC the gateway serves.
struct Rpc {
    service: String,
    method: String,
    kind: &'static str,
}

/// Every RPC served, by path, read once from the descriptors the gateway
/// serves: its own contract, health checks and both reflection versions.
static RPCS: LazyLock<HashMap<String, Rpc>> = LazyLock::new(|| {
    let sets = [
        crate::proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut rpcs = HashMap::new();
    for file in sets
        .into_iter()
        .filter_map(|set| FileDescriptorSet::decode(set).ok())
        .flat_map(|set| set.file)
    {
        for service in &file.service {
            let service_name = match file.package() {
                "" => service.name().to_string(),
                package => format!("{package}.{}", service.name()),
            };
            for method in &service.method {
                let kind = match (method.client_streaming(), method.server_streaming()) {
                    (false, false) => "unary",
                    (false, true) => "server_stream",
                    (true, false) => "client_stream",
                    (true, true) => "bidi_stream",
                };
                let rpc = Rpc {
                    service: service_name.clone(),
                    method: method.name().to_string(),
                    kind,
                };
                rpcs.insert(format!("/{service_name}/{}", method.name()), rpc);
            }
        }
    }
    rpcs
});

impl Metrics {
    pub(crate) fn new() -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&BUCKETS)
            .map(PrometheusBuilder::build_recorder)
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        describe(&recorder);
        Metrics {
            recorder: Arc::new(recorder),
        }
    }

    /// `caller`: the caller's name when a callers file bounds the names.
    pub(crate) fn rpc_started(&self, rpc: &RpcName, caller: Option<&str>) {
        let mut labels = rpc.labels();
        labels.push(Label::new("grpc_type", rpc.kind));
        push_caller(&mut labels, caller);
        self.counter(RPC_STARTED, labels).increment(1);
    }

    pub(crate) fn rpc_handled(&self, rpc: &RpcName, caller: Option<&str>, code: tonic::Code, elapsed: Duration) {
        let mut labels = rpc.labels();
        labels.push(Label::new("grpc_type", rpc.kind));
        push_caller(&mut labels, caller);
        self.histogram(RPC_SECONDS, labels.clone())
            .record(elapsed.as_secs_f64());
        labels.push(Label::new("grpc_code", code_name(code)));
        self.counter(RPC_HANDLED, labels).increment(1);
    }

    /// A write answered from the record of an earlier call with its request_id.
    pub(crate) fn idempotent_replay(&self, method: &str) {
        let labels = vec![Label::new("grpc_method", method.to_string())];
        self.counter(REPLAYS, labels).increment(1);
    }

    /// A request_id sent again with a different request.
    pub(crate) fn request_id_reused(&self, method: &str) {
        let labels = vec![Label::new("grpc_method", method.to_string())];
        self.counter(REUSES, labels).increment(1);
    }

    /// A call the front door turned away, by caller ("unknown" when it has
    /// no known identity) and reason.
    pub(crate) fn caller_refused(&self, caller: &str, reason: &'static str) {
        let labels = vec![Label::new("caller", caller.to_string()), Label::new("reason", reason)];
        self.counter(CALLER_REFUSALS, labels).increment(1);
    }

    /// A changed callers file read again: in force (`ok`), or refused.
    pub(crate) fn callers_reloaded(&self, ok: bool) {
        let result = Label::new("result", if ok { "ok" } else { "failed" });
        self.counter(CALLERS_RELOADS, vec![result]).increment(1);
    }

    /// The gauge of a caller's open job watches.
    pub(crate) fn caller_watches(&self, caller: &str) -> metrics::Gauge {
        let key = Key::from_parts(CALLER_WATCHES, vec![Label::new("caller", caller.to_string())]);
        self.recorder.register_gauge(&key, &METADATA)
    }

    /// A client connection was accepted (and holds a slot of --max-connections).
    pub(crate) fn connection_started(&self) {
        self.gauge(CONNECTIONS_OPEN, vec![]).increment(1.0);
    }

    /// A client connection ended, for whatever reason.
    pub(crate) fn connection_ended(&self) {
        self.gauge(CONNECTIONS_OPEN, vec![]).decrement(1.0);
    }

    /// A connection was closed before serving: `max_connections`, `handshake` or `handshake_timeout`.
    pub(crate) fn connection_refused(&self, reason: &'static str) {
        self.counter(CONNECTIONS_REFUSED, vec![Label::new("reason", reason)])
            .increment(1);
    }

    /// A connection with no open call for --idle-timeout was closed.
    pub(crate) fn connection_closed_idle(&self) {
        self.counter(CONNECTIONS_IDLE_CLOSED, vec![]).increment(1);
    }

    /// A call filled its connection's last stream slot (--max-streams-per-connection).
    pub(crate) fn streams_at_limit(&self) {
        self.counter(STREAMS_AT_LIMIT, vec![]).increment(1);
    }

    /// The TLS files changed and were loaded (`ok`) or kept out.
    pub(crate) fn tls_reload(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.counter(TLS_RELOADS, vec![Label::new("result", result)])
            .increment(1);
    }

    /// Whether the last command sent to Redis got an answer (with --redis-url only).
    pub(crate) fn redis_up(&self, up: bool) {
        self.gauge(REDIS_UP, vec![]).set(if up { 1.0 } else { 0.0 });
    }

    /// The Prometheus text, with the job hubs' (by backup service) and the
    /// IAM token source's own counts read at this moment.
    pub(crate) fn render(&self, hubs: &[(&'static str, HubStats)], tokens: Option<TokenStats>) -> String {
        for (service, hub) in hubs {
            let by_service = || vec![Label::new("service", *service)];
            self.gauge(WATCHERS, by_service()).set(hub.active_watchers as f64);
            self.gauge(POLLERS, by_service()).set(hub.active_pollers as f64);
            self.gauge(LOCAL_FALLBACK, by_service()).set(hub.local_fallback as f64);
            self.counter(POLLS, by_service()).absolute(hub.polls_total);
        }
        if let Some(tokens) = tokens {
            self.counter(REFRESHES, vec![]).absolute(tokens.issued);
            self.counter(REFRESH_FAILURES, vec![]).absolute(tokens.failures);
        }
        self.recorder.handle().render()
    }

    fn counter(&self, name: &'static str, labels: Vec<Label>) -> metrics::Counter {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &METADATA)
    }

    fn gauge(&self, name: &'static str, labels: Vec<Label>) -> metrics::Gauge {
        self.recorder.register_gauge(&Key::from_parts(name, labels), &METADATA)
    }

    fn histogram(&self, name: &'static str, labels: Vec<Label>) -> metrics::Histogram {
        self.recorder
            .register_histogram(&Key::from_parts(name, labels), &METADATA)
    }
}

fn push_caller(labels: &mut Vec<Label>, caller: Option<&str>) {
    if let Some(caller) = caller {
        labels.push(Label::new("caller", caller.to_string()));
    }
}

/// The transport reports each upstream request here.
impl UpstreamObserver for Metrics {
    fn upstream_request(&self, operation: Operation, status: Option<u16>, elapsed: Duration) {
        let status = status.map_or_else(|| "none".to_string(), |s| s.to_string());
        let operation = Label::new("operation", operation.name());
        self.histogram(UPSTREAM_SECONDS, vec![operation.clone()])
            .record(elapsed.as_secs_f64());
        self.counter(UPSTREAM_REQUESTS, vec![operation, Label::new("status", status)])
            .increment(1);
    }

    fn budget_waited(&self, waited: Duration) {
        self.histogram(BUDGET_WAIT_SECONDS, vec![]).record(waited.as_secs_f64());
    }

    fn budget_exhausted(&self, operation: Operation) {
        self.counter(BUDGET_EXHAUSTED, vec![Label::new("operation", operation.name())])
            .increment(1);
    }
}

fn describe(recorder: &PrometheusRecorder) {
    let counters = [
        (RPC_STARTED, "RPCs started on the server."),
        (RPC_HANDLED, "RPCs completed on the server, by gRPC code."),
        (
            UPSTREAM_REQUESTS,
            "Requests sent to VBS, by operation and HTTP status (none: no answer).",
        ),
        (
            POLLS,
            "Upstream polls made by a backup service's job hub for all its watchers, by service.",
        ),
        (
            BUDGET_EXHAUSTED,
            "Calls refused because their project's upstream budget had no slot before their deadline, by operation.",
        ),
        (REFRESHES, "IAM tokens obtained."),
        (REFRESH_FAILURES, "Failed attempts to obtain an IAM token."),
        (
            REPLAYS,
            "Writes answered from the record of an earlier call with the same request_id.",
        ),
        (
            REUSES,
            "Writes refused because their request_id was used for a different request.",
        ),
        (
            CALLER_REFUSALS,
            "Calls the front door refused, by caller and reason (CALLER_UNKNOWN, CALLER_NOT_ALLOWED, CALLER_RATE_LIMITED, CALLER_TOO_MANY_WATCHES).",
        ),
        (
            CALLERS_RELOADS,
            "Changes of the callers file read, by result (failed: the previous file stays in force).",
        ),
        (
            CONNECTIONS_REFUSED,
            "Client connections closed before serving, by reason (max_connections, handshake, handshake_timeout).",
        ),
        (
            CONNECTIONS_IDLE_CLOSED,
            "Client connections closed after --idle-timeout with no open call.",
        ),
        (
            STREAMS_AT_LIMIT,
            "Calls that filled their connection's last stream slot (--max-streams-per-connection).",
        ),
        (TLS_RELOADS, "Changes of the TLS files seen, by result (ok, error)."),
    ];
    for (name, help) in counters {
        recorder.describe_counter(name.into(), None, help.into());
    }
    recorder.describe_gauge(
        WATCHERS.into(),
        None,
        "Open job watches and waits, by backup service.".into(),
    );
    recorder.describe_gauge(
        CONNECTIONS_OPEN.into(),
        None,
        "Client connections open (TLS handshakes included).".into(),
    );
    recorder.describe_gauge(
        REDIS_UP.into(),
        None,
        "1 while Redis answers the replica's commands, 0 during an outage (with --redis-url only).".into(),
    );
    recorder.describe_gauge(
        POLLERS.into(),
        None,
        "Jobs (CSBS: backups) a backup service's hub is polling now, by service.".into(),
    );
    recorder.describe_gauge(
        LOCAL_FALLBACK.into(),
        None,
        "Watched jobs this replica polls by itself because Redis cannot be reached (0 when shared or alone), by service.".into(),
    );
    recorder.describe_gauge(
        CALLER_WATCHES.into(),
        None,
        "Open job watches per caller (limit: --max-watches-per-caller).".into(),
    );
    recorder.describe_histogram(
        RPC_SECONDS.into(),
        Some(Unit::Seconds),
        "Time from an RPC's arrival to its last message.".into(),
    );
    recorder.describe_histogram(
        BUDGET_WAIT_SECONDS.into(),
        Some(Unit::Seconds),
        "Time upstream requests waited for a slot of their project's budget (--upstream-rate).".into(),
    );
    recorder.describe_histogram(
        UPSTREAM_SECONDS.into(),
        Some(Unit::Seconds),
        "Duration of requests to VBS.".into(),
    );
}

/// The name Prometheus dashboards expect for a gRPC code ("OK", "NotFound", ...).
fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "Canceled",
        Unknown => "Unknown",
        InvalidArgument => "InvalidArgument",
        DeadlineExceeded => "DeadlineExceeded",
        NotFound => "NotFound",
        AlreadyExists => "AlreadyExists",
        PermissionDenied => "PermissionDenied",
        ResourceExhausted => "ResourceExhausted",
        FailedPrecondition => "FailedPrecondition",
        Aborted => "Aborted",
        OutOfRange => "OutOfRange",
        Unimplemented => "Unimplemented",
        Internal => "Internal",
        Unavailable => "Unavailable",
        DataLoss => "DataLoss",
        Unauthenticated => "Unauthenticated",
    }
}

/// Serves `GET /metrics` on `listener` until `shutdown` completes. `render`
/// produces the text (it reads the live counts).
pub(crate) async fn serve(
    listener: TcpListener,
    render: impl Fn() -> String + Clone + Send + Sync + 'static,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let app = Router::new().route(
        "/metrics",
        get(move || {
            let render = render.clone();
            async move { ([(http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], render()) }
        }),
    );
    let address: SocketAddr = listener.local_addr()?;
    tracing::info!(%address, "serving metrics at /metrics");
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_rpc_and_upstream_series_with_their_labels() {
        let metrics = Metrics::new();
        let rpc = RpcName::from_path("/vbs.v2.BackupService/GetBackup");
        metrics.rpc_started(&rpc, None);
        metrics.rpc_handled(&rpc, None, tonic::Code::NotFound, Duration::from_millis(3));
        metrics.upstream_request(Operation::GetBackup, Some(404), Duration::from_millis(2));
        let text = metrics.render(&[], None);
        assert!(text.contains(r#"grpc_server_started_total{grpc_service="vbs.v2.BackupService",grpc_method="GetBackup",grpc_type="unary"} 1"#), "{text}");
        assert!(text.contains(r#"grpc_code="NotFound""#), "{text}");
        assert!(text.contains("grpc_server_handling_seconds_bucket"), "{text}");
        assert!(
            text.contains(r#"vbs_upstream_requests_total{operation="GetBackup",status="404"} 1"#),
            "{text}"
        );
    }

    #[test]
    fn every_served_rpc_has_its_name_and_shape_and_other_paths_none() {
        let shape = |path: &str| {
            let rpc = RpcName::from_path(path);
            (rpc.service, rpc.method, rpc.kind)
        };
        assert_eq!(
            shape("/vbs.v2.JobService/WatchJob"),
            ("vbs.v2.JobService", "WatchJob", "server_stream")
        );
        assert_eq!(shape("/zstack.v1.ZStackBackupService/CreateVmBackup").2, "unary");
        assert_eq!(shape("/grpc.health.v1.Health/Watch").2, "server_stream");
        assert_eq!(
            shape("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo").2,
            "bidi_stream"
        );
        assert_eq!(
            shape("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo").2,
            "bidi_stream"
        );
        assert_eq!(shape("/google.longrunning.Operations/GetOperation").2, "unary");
        for made_up in [
            "/vbs.v2.JobService/Nope",
            "/x.Y/WatchJob",
            "vbs.v2.JobService/WatchJob",
            "",
            "/",
        ] {
            assert!(RpcName::from_path(made_up).is_unknown(), "{made_up}");
        }
    }

    #[test]
    fn redis_up_is_a_gauge_of_one_or_zero() {
        let metrics = Metrics::new();
        metrics.redis_up(true);
        assert!(metrics.render(&[], None).contains("vbs_redis_up 1"));
        metrics.redis_up(false);
        assert!(metrics.render(&[], None).contains("vbs_redis_up 0"));
    }

    #[test]
    fn every_gateway_counts_alone() {
        let first = Metrics::new();
        let second = Metrics::new();
        first.upstream_request(Operation::GetJob, Some(200), Duration::from_millis(1));
        assert!(!second.render(&[], None).contains("GetJob"));
    }
}
