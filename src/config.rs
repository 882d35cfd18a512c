//! Command line and environment, parsed by clap and validated once into a
//! `Config`. Every flag has an environment variable; flags win over the environment.

use std::ffi::OsString;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};
use reqwest::Url;

pub use crate::frontdoor::CallersFileError;
use crate::rest::credentials::{AccessKey, Credentials, IamUser, ProjectScope, Secret};
pub use crate::rest::retry::RetryPolicy;
use crate::watch::{WatchConfig, WatchConfigError};
#[cfg(feature = "embedded-simulator")]
use vbs_simulator::{
    ClockMode, SimulatorConfig,
    cli::{SimulatorArgs, SimulatorOptions},
};

/// Project used with the embedded simulator when none is configured.
pub const DEMO_PROJECT_ID: &str = "5f0e1d2c3b4a49586776a5b4c3d2e1f0";

#[derive(Debug, Parser)]
#[command(
    name = "vbs-gateway",
    version,
    about = "gRPC gateway for the Volume Backup Service (VBS) of Huawei Cloud and Open Telekom Cloud",
    args_conflicts_with_subcommands = true
)]
/// The command line: `vbs-gateway [serve] [OPTIONS]` or `vbs-gateway simulator [OPTIONS]`.
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// With no subcommand the gateway serves, with these options.
    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Serve the gRPC gateway (the default). With no --endpoint it starts the
    /// embedded VBS simulator and uses it.
    Serve(Box<ServeArgs>),
    /// Run the VBS simulator alone, as a fake VBS REST endpoint.
    #[cfg(feature = "embedded-simulator")]
    Simulator(Box<SimulatorCommand>),
    /// Read a caller's key on stdin and print its `key_sha256 = "..."` line
    /// for the callers file (--callers).
    HashKey,
}

#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address the gRPC server listens on.
    #[arg(long, env = "VBS_GATEWAY_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,
    /// VBS endpoint, e.g. https://vbs.eu-de.otc.t-systems.com. Empty starts the
    /// embedded simulator on a loopback port and uses it.
    #[arg(long, env = "VBS_ENDPOINT")]
    pub endpoint: Option<Url>,
    /// Project used when a request leaves project_id empty.
    #[arg(long, env = "VBS_PROJECT_ID")]
    pub project_id: Option<String>,
    /// A TOML file of defaults for these options (keys are the long flag names).
    /// Flags and environment variables win over it.
    #[arg(long, env = "VBS_GATEWAY_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub credentials: CredentialArgs,
    /// Send a caller's own `x-auth-token` metadata upstream instead of the
    /// gateway's credentials, so the caller acts with its own rights.
    #[arg(long, env = "VBS_PASS_THROUGH_TOKEN")]
    pub pass_through_token: bool,
    /// Longest time one upstream request may take (e.g. 30s, 500ms).
    #[arg(long, env = "VBS_UPSTREAM_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub upstream_timeout: Duration,
    /// Longest time opening an upstream connection may take.
    #[arg(long, env = "VBS_CONNECT_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// PEM file of extra root certificates to trust upstream (a private CA).
    #[arg(long, env = "VBS_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// Accept any upstream TLS certificate. Only for test endpoints.
    #[arg(long, env = "VBS_INSECURE_SKIP_TLS_VERIFY")]
    pub insecure_skip_tls_verify: bool,
    #[command(flatten)]
    pub watch: Box<WatchArgs>,
    #[command(flatten)]
    pub idempotency: IdempotencyArgs,
    /// How the embedded simulator behaves.
    #[cfg(feature = "embedded-simulator")]
    #[command(flatten)]
    pub simulator: SimulatorOptions,
    /// Address of the Prometheus endpoint (GET /metrics). Metrics are off unless set.
    #[arg(long, env = "VBS_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
    /// Threads of the async runtime; default one per core.
    #[arg(long, env = "VBS_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub callers: CallerArgs,
    #[command(flatten)]
    pub bounds: BoundsArgs,
    #[command(flatten)]
    pub front_door: FrontDoorArgs,
}

/// Who may call the gateway, and how much (the front door's callers and limits).
#[derive(Debug, Args)]
pub(crate) struct CallerArgs {
    /// TOML file of the callers allowed: `[[caller]]` entries with name,
    /// key_sha256 (see `vbs-gateway hash-key`) or client_cert_dns, projects
    /// and role (reader, operator, admin). Re-read when it changes.
    #[arg(long, env = "VBS_GATEWAY_CALLERS")]
    pub callers: Option<PathBuf>,
    /// Serve callers without an identity on a non-loopback --listen address
    /// (no --callers). Anyone who reaches the port acts with the gateway's credentials.
    #[arg(long, env = "VBS_GATEWAY_ALLOW_UNAUTHENTICATED")]
    pub allow_unauthenticated: bool,
    /// Serve gRPC server reflection (grpcurl without the protos); it needs no identity.
    #[arg(long, env = "VBS_GATEWAY_REFLECTION", default_value = "on")]
    pub reflection: Switch,
    /// Calls per second each caller may make (a token bucket); 0 turns the limit off.
    #[arg(long, env = "VBS_GATEWAY_CALLER_RATE", default_value = "100")]
    pub caller_rate: f64,
    /// Calls a caller may make at once after a quiet spell.
    #[arg(long, env = "VBS_GATEWAY_CALLER_BURST", default_value = "200", value_parser = clap::value_parser!(u32).range(1..))]
    pub caller_burst: u32,
    /// Job watches (WatchJob, WatchJobs, WaitJob) each caller may hold open; 0 turns the limit off.
    #[arg(long, env = "VBS_GATEWAY_MAX_WATCHES_PER_CALLER", default_value = "1000")]
    pub max_watches_per_caller: usize,
}

/// A setting that is on or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    /// On.
    On,
    /// Off.
    Off,
}

/// Who may call the gateway, and how much.
#[derive(Debug, Clone)]
pub struct CallerConfig {
    /// The callers file; None: one anonymous caller, admin of every project.
    pub callers_file: Option<PathBuf>,
    /// Serve without identities on a non-loopback address.
    pub allow_unauthenticated: bool,
    /// Whether gRPC server reflection is served.
    pub reflection: bool,
    /// Calls per second per caller; None: no limit.
    pub caller_rate: Option<f64>,
    /// Calls a caller may make at once after a quiet spell.
    pub caller_burst: u32,
    /// Open job watches per caller; None: no limit.
    pub max_watches_per_caller: Option<usize>,
    /// How often the callers file is looked at for changes.
    pub callers_reload_interval: Duration,
}

impl CallerConfig {
    /// No callers file, reflection on, no per-caller limits.
    pub fn unlimited() -> CallerConfig {
        CallerConfig {
            callers_file: None,
            allow_unauthenticated: false,
            reflection: true,
            caller_rate: None,
            caller_burst: 1,
            max_watches_per_caller: None,
            callers_reload_interval: Duration::from_secs(2),
        }
    }

    /// The front door's settings.
    pub(crate) fn front_door(&self) -> crate::frontdoor::FrontDoorSettings {
        crate::frontdoor::FrontDoorSettings {
            callers_file: self.callers_file.clone(),
            limits: crate::frontdoor::Limits {
                rate: self.caller_rate,
                burst: self.caller_burst,
                max_watches: self.max_watches_per_caller,
            },
            reload_interval: self.callers_reload_interval,
        }
    }
}

/// Bounds on what upstream may send and how long calls and shutdown may
/// take, and where credentials may travel.
#[derive(Debug, Args)]
pub(crate) struct BoundsArgs {
    /// Longest upstream response body read (e.g. 8MiB, 512KiB, 1048576); a
    /// longer one fails the call (INTERNAL, UPSTREAM_BODY_TOO_LARGE).
    #[arg(long, env = "VBS_MAX_UPSTREAM_BODY", default_value = "8MiB", value_parser = parse_size)]
    pub max_upstream_body: usize,
    /// Time a call may take, all upstream attempts and pauses together, when
    /// its caller sent no deadline.
    #[arg(long, env = "VBS_DEFAULT_DEADLINE", default_value = "60s", value_parser = parse_duration)]
    pub default_deadline: Duration,
    /// On shutdown, how long in-flight calls may finish before the rest are cancelled.
    #[arg(long, env = "VBS_DRAIN_TIMEOUT", default_value = "30s", value_parser = parse_duration)]
    pub drain_timeout: Duration,
    /// Send credentials to a plain-http endpoint that is not on loopback.
    /// Without it such a configuration does not start.
    #[arg(long, env = "VBS_ALLOW_PLAINTEXT_UPSTREAM")]
    pub allow_plaintext_upstream: bool,
}

/// Bounds on what upstream may send and how long calls and shutdown may take.
#[derive(Debug, Clone)]
pub struct BoundsConfig {
    /// Longest upstream response body read; a longer one fails the call.
    pub max_upstream_body: usize,
    /// What bounds a call whose caller sent no deadline, all attempts together.
    pub default_deadline: Duration,
    /// How long shutdown waits for in-flight calls before cancelling them.
    pub drain_timeout: Duration,
    /// Secret options given inline on the command line (readable in the
    /// process list), named so the gateway can warn once at start.
    pub inline_secrets: Vec<String>,
}

impl Default for BoundsConfig {
    fn default() -> Self {
        BoundsConfig {
            max_upstream_body: crate::rest::transport::DEFAULT_MAX_BODY,
            default_deadline: crate::rest::transport::DEFAULT_DEADLINE,
            drain_timeout: Duration::from_secs(30),
            inline_secrets: Vec::new(),
        }
    }
}

impl CallerArgs {
    /// Checks the callers file now, so a bad one stops the start (exit 64).
    fn into_config(self, listen: SocketAddr) -> Result<CallerConfig, ConfigError> {
        if let Some(path) = &self.callers {
            crate::frontdoor::load_callers(path)?;
        }
        if !(self.caller_rate.is_finite() && self.caller_rate >= 0.0) {
            return Err(ConfigError::CallerRate(self.caller_rate));
        }
        let config = CallerConfig {
            callers_file: self.callers,
            allow_unauthenticated: self.allow_unauthenticated,
            reflection: self.reflection == Switch::On,
            caller_rate: (self.caller_rate > 0.0).then_some(self.caller_rate),
            caller_burst: self.caller_burst,
            max_watches_per_caller: (self.max_watches_per_caller > 0).then_some(self.max_watches_per_caller),
            callers_reload_interval: Duration::from_secs(2),
        };
        check_exposure(listen, &config)?;
        Ok(config)
    }
}

/// Safe by default: off loopback, every caller needs an identity unless the
/// operator says otherwise.
pub(crate) fn check_exposure(listen: SocketAddr, callers: &CallerConfig) -> Result<(), ConfigError> {
    let guarded = listen.ip().is_loopback() || callers.callers_file.is_some() || callers.allow_unauthenticated;
    if guarded {
        Ok(())
    } else {
        Err(ConfigError::Unguarded(listen))
    }
}

/// The line `vbs-gateway hash-key` prints for `key`: `key_sha256 = "<hex>"`.
pub fn key_sha256_line(key: &str) -> String {
    crate::frontdoor::key_sha256_line(key)
}

impl BoundsArgs {
    fn to_config(&self) -> Result<BoundsConfig, ConfigError> {
        if self.max_upstream_body == 0 || self.default_deadline.is_zero() {
            return Err(ConfigError::ZeroBound);
        }
        Ok(BoundsConfig {
            max_upstream_body: self.max_upstream_body,
            default_deadline: self.default_deadline,
            drain_timeout: self.drain_timeout,
            inline_secrets: Vec::new(),
        })
    }

    /// Credentials (ours or a caller's) may cross the network in the clear
    /// only when the operator said so; loopback never leaves the host.
    fn check_plaintext(&self, endpoints: &[&Url]) -> Result<(), ConfigError> {
        if self.allow_plaintext_upstream {
            return Ok(());
        }
        match endpoints.iter().find(|url| url.scheme() == "http" && !is_loopback(url)) {
            Some(url) => Err(ConfigError::PlaintextUpstream(without_userinfo(url))),
            None => Ok(()),
        }
    }
}

/// The URL as an error may show it: a password in it is a secret too.
fn without_userinfo(url: &Url) -> Url {
    let mut shown = url.clone();
    let _ = shown.set_password(None);
    let _ = shown.set_username("");
    shown
}

/// Whether the URL names this host: `localhost` or a loopback address.
fn is_loopback(url: &Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// How watched jobs are polled (WatchJob, WaitJob, WatchJobs) and how
/// long-lived streams are kept alive.
#[derive(Debug, Args)]
pub(crate) struct WatchArgs {
    /// Pause between upstream polls of a watched job after it changed; it
    /// grows while the job stays the same.
    #[arg(long = "watch-poll-initial", env = "VBS_WATCH_POLL_INITIAL", default_value = "1s", value_parser = parse_duration)]
    pub poll_initial: Duration,
    /// Longest pause between upstream polls of a watched job.
    #[arg(long = "watch-poll-max", env = "VBS_WATCH_POLL_MAX", default_value = "10s", value_parser = parse_duration)]
    pub poll_max: Duration,
    /// Factor the poll pause grows by after each poll that saw no change (1 to 10; 1 keeps it fixed).
    #[arg(long = "watch-poll-backoff", env = "VBS_WATCH_POLL_BACKOFF", default_value = "1.5")]
    pub poll_backoff: f64,
    /// Random spread of each poll pause, as a fraction (0.1 is +-10%; below 0.5).
    #[arg(long = "watch-poll-jitter", env = "VBS_WATCH_POLL_JITTER", default_value = "0.1")]
    pub poll_jitter: f64,
    /// A watch stream that sent nothing for this long sends a heartbeat.
    #[arg(long = "watch-heartbeat", env = "VBS_WATCH_HEARTBEAT", default_value = "15s", value_parser = parse_duration)]
    pub heartbeat: Duration,
    /// How long a finished job's final state is kept for late watchers.
    #[arg(long = "watch-terminal-ttl", env = "VBS_WATCH_TERMINAL_TTL", default_value = "2m", value_parser = parse_duration)]
    pub terminal_ttl: Duration,
    /// Interval of HTTP/2 PINGs to gRPC clients; 0 turns them off.
    #[arg(long = "http2-keepalive-interval", env = "VBS_HTTP2_KEEPALIVE_INTERVAL", default_value = "30s", value_parser = parse_duration)]
    pub http2_keepalive_interval: Duration,
    /// A client connection that does not answer a PING within this is closed.
    #[arg(long = "http2-keepalive-timeout", env = "VBS_HTTP2_KEEPALIVE_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub http2_keepalive_timeout: Duration,
}

impl WatchArgs {
    fn to_config(&self) -> Result<WatchConfig, WatchConfigError> {
        let config = WatchConfig {
            poll_initial: self.poll_initial,
            poll_max: self.poll_max,
            poll_backoff: self.poll_backoff,
            poll_jitter: self.poll_jitter,
            heartbeat: self.heartbeat,
            terminal_ttl: self.terminal_ttl,
            http2_keepalive_interval: (!self.http2_keepalive_interval.is_zero())
                .then_some(self.http2_keepalive_interval),
            http2_keepalive_timeout: self.http2_keepalive_timeout,
        };
        config.validate()?;
        Ok(config)
    }
}

/// How long and how many answers of writes sent with a `request_id` are kept.
#[derive(Debug, Args)]
pub(crate) struct IdempotencyArgs {
    /// How long the answer of a write sent with a request_id is kept for
    /// retries with the same id.
    #[arg(long = "idempotency-ttl", env = "VBS_IDEMPOTENCY_TTL", default_value = "24h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// The most answers kept; the oldest are forgotten first.
    #[arg(long = "idempotency-max-records", env = "VBS_IDEMPOTENCY_MAX_RECORDS", default_value = "100000",
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_records: u64,
}

impl IdempotencyArgs {
    fn to_config(&self) -> Result<IdempotencyConfig, ConfigError> {
        if self.ttl.is_zero() {
            return Err(ConfigError::ZeroIdempotencyTtl);
        }
        Ok(IdempotencyConfig {
            ttl: self.ttl,
            max_records: usize::try_from(self.max_records).unwrap_or(usize::MAX),
        })
    }
}

/// How writes sent with a `request_id` are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// How long an answer is kept.
    pub ttl: Duration,
    /// The most answers kept; the oldest are forgotten first.
    pub max_records: usize,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            ttl: Duration::from_secs(24 * 3600),
            max_records: 100_000,
        }
    }
}

/// `vbs-gateway simulator`: the simulator's own options plus the process's.
#[cfg(feature = "embedded-simulator")]
#[derive(Debug, Args)]
pub(crate) struct SimulatorCommand {
    /// Where the simulator listens, what it accepts, how it behaves.
    #[command(flatten)]
    pub simulator: SimulatorArgs,
    /// Threads of the async runtime; default one per core.
    #[arg(long, env = "VBS_WORKER_THREADS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    pub worker_threads: Option<u16>,
    /// Log format and filter.
    #[command(flatten)]
    pub log: LogArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LogArgs {
    /// Log line format.
    #[arg(long, env = "VBS_GATEWAY_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter in env-filter syntax, e.g. "info,vbs_gateway=debug".
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// For people: one coloured line per event.
    Text,
    /// For log collectors: one JSON object per line.
    Json,
}

/// Where logging starts from.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Text or JSON lines.
    pub format: LogFormat,
    /// Which events are written, in env-filter syntax.
    pub filter: String,
}

/// What the process was asked to do, validated.
#[derive(Debug)]
pub enum Mode {
    /// Serve the gateway.
    Serve(Box<Config>),
    /// Run the simulator alone (`vbs-gateway simulator`).
    #[cfg(feature = "embedded-simulator")]
    Simulator {
        /// Where its REST API listens.
        listen: SocketAddr,
        /// Threads of the async runtime; None: one per core.
        worker_threads: Option<usize>,
        /// What it holds and checks.
        simulator: Box<SimulatorConfig>,
        /// How it logs.
        log: LogConfig,
    },
    /// Print the `key_sha256` line of a key read on stdin (`vbs-gateway hash-key`).
    HashKey,
}

/// The gateway's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where the gRPC server listens.
    pub listen: SocketAddr,
    /// None: start the embedded simulator and use it.
    pub endpoint: Option<Url>,
    /// Project used when a request leaves `project_id` empty.
    pub default_project_id: Option<String>,
    /// How upstream calls are authenticated.
    pub credentials: Credentials,
    /// Send a caller's own `x-auth-token` upstream instead of the gateway's credentials.
    pub pass_through_token: bool,
    /// Longest time one upstream request may take.
    pub upstream_timeout: Duration,
    /// Longest time opening an upstream connection may take.
    pub connect_timeout: Duration,
    /// Extra PEM root certificates to trust upstream (a private CA).
    pub ca_certificates_pem: Option<Vec<u8>>,
    /// Accept any upstream TLS certificate: for test endpoints only.
    pub insecure_skip_tls_verify: bool,
    /// Which failed upstream calls are tried again, and how often.
    pub retry: RetryPolicy,
    /// How job watches poll and keep their streams alive.
    pub watch: WatchConfig,
    /// How answers of writes sent with a `request_id` are kept.
    pub idempotency: IdempotencyConfig,
    /// Where GET /metrics is served; None turns metrics off.
    pub metrics_listen: Option<SocketAddr>,
    /// Threads of the async runtime; None: one per core.
    pub worker_threads: Option<usize>,
    /// The embedded simulator, used when `endpoint` is None.
    #[cfg(feature = "embedded-simulator")]
    pub simulator: SimulatorConfig,
    /// How the gateway logs.
    pub log: LogConfig,
    /// Who may call, and how much.
    pub callers: CallerConfig,
    /// Bounds on upstream bodies, call time and shutdown.
    pub bounds: BoundsConfig,
    /// TLS and the connection limits of the gRPC listener.
    pub front_door: FrontDoorConfig,
}

/// A setting that cannot be used, named as the user gave it.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The endpoint is not a plain http(s) URL.
    #[error("--endpoint {0}: must be an http or https URL without query or fragment")]
    Endpoint(Url),
    /// The default project id cannot be a path segment.
    #[error("--project-id {0:?}: {1}")]
    ProjectId(String, String),
    /// The CA certificate file cannot be read.
    #[error("--ca-cert {path}: {reason}")]
    CaCert {
        /// The file as given.
        path: PathBuf,
        /// Why it cannot be read.
        reason: String,
    },
    /// The credential settings are contradictory or incomplete.
    #[error("{0}")]
    Credentials(String),
    /// The config file cannot be read or names an unknown option.
    #[error("config file {path}: {reason}")]
    ConfigFile {
        /// The file as given.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A timeout of zero would fail every call.
    #[error("--upstream-timeout and --connect-timeout must be more than zero")]
    ZeroTimeout,
    /// Answers kept for no time at all would make request_id useless.
    #[error("--idempotency-ttl must be more than zero")]
    ZeroIdempotencyTtl,
    /// A body cap or default deadline of zero would fail every call.
    #[error("--max-upstream-body and --default-deadline must be more than zero")]
    ZeroBound,
    /// Credentials would cross the network unencrypted.
    #[error(
        "{0} is plain http and not on this host: credentials would travel unencrypted; use https, or --allow-plaintext-upstream if you mean it"
    )]
    PlaintextUpstream(Url),
    /// A job-watching setting is out of range.
    #[error(transparent)]
    Watch(#[from] WatchConfigError),
    /// The callers file cannot be used.
    #[error(transparent)]
    Callers(#[from] CallersFileError),
    /// A non-loopback address without callers or --allow-unauthenticated.
    #[error("--listen {0} is not a loopback address: give --callers FILE (who may call) or --allow-unauthenticated")]
    Unguarded(SocketAddr),
    /// The call rate is not a number of calls per second.
    #[error("--caller-rate {0}: must be 0 (off) or more")]
    CallerRate(f64),
    /// A TLS file of the gRPC listener cannot be used.
    #[error("{0}")]
    Tls(String),
    /// A connection limit of the gRPC listener is out of range.
    #[error("{0}")]
    FrontDoor(String),
    /// Nothing to call: no endpoint and no simulator in this build.
    #[error("no --endpoint given, and this build has no embedded simulator (feature embedded-simulator)")]
    NoEndpoint,
}

impl Mode {
    fn serve_config(&mut self) -> Option<&mut Config> {
        match self {
            Mode::Serve(config) => Some(config),
            #[cfg(feature = "embedded-simulator")]
            Mode::Simulator { .. } => None,
            Mode::HashKey => None,
        }
    }

    /// Threads the async runtime should have; None: one per core.
    pub fn worker_threads(&self) -> Option<usize> {
        match self {
            Mode::Serve(config) => config.worker_threads,
            #[cfg(feature = "embedded-simulator")]
            Mode::Simulator { worker_threads, .. } => *worker_threads,
            Mode::HashKey => Some(1),
        }
    }
}

/// Why the process cannot start as asked.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A command-line usage error, or a request for --help / --version.
    #[error(transparent)]
    Usage(#[from] clap::Error),
    /// The settings parse but cannot be used.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

impl Cli {
    /// Reads the command line and environment; a TOML config file named by
    /// --config or VBS_GATEWAY_CONFIG supplies defaults beneath both.
    /// Precedence: flag, then environment variable, then config file, then built-in default.
    pub fn load() -> Result<Mode, LoadError> {
        let config_file = std::env::var_os("VBS_GATEWAY_CONFIG").map(PathBuf::from);
        Cli::load_from(std::env::args_os().collect(), config_file)
    }

    /// Like `load`, from given arguments and config file (for tests).
    pub fn load_from(args: Vec<OsString>, env_config_file: Option<PathBuf>) -> Result<Mode, LoadError> {
        let mut command = Cli::command();
        if let Some(path) = config_flag(&args).or(env_config_file) {
            command = with_file_defaults(command, &path)?;
        }
        let matches = command.try_get_matches_from_mut(args)?;
        let mut mode = Cli::from_arg_matches(&matches)?.into_mode()?;
        if let Some(config) = mode.serve_config() {
            config.bounds.inline_secrets = inline_secrets(&command, &matches);
        }
        Ok(mode)
    }

    /// Validates the parsed options into what the process does.
    pub fn into_mode(self) -> Result<Mode, ConfigError> {
        match self.command {
            #[cfg(feature = "embedded-simulator")]
            Some(Command::Simulator(command)) => Ok(Mode::Simulator {
                listen: command.simulator.listen,
                worker_threads: command.worker_threads.map(usize::from),
                simulator: Box::new(command.simulator.into_config().map_err(ConfigError::Credentials)?),
                log: command.log.into_config(),
            }),
            Some(Command::Serve(args)) => Ok(Mode::Serve(Box::new(Config::from_args(*args)?))),
            Some(Command::HashKey) => Ok(Mode::HashKey),
            None => Ok(Mode::Serve(Box::new(Config::from_args(self.serve)?))),
        }
    }
}

impl LogArgs {
    fn into_config(self) -> LogConfig {
        LogConfig {
            format: self.log_format,
            filter: self.log_filter,
        }
    }
}

impl Config {
    fn from_args(args: ServeArgs) -> Result<Config, ConfigError> {
        if let Some(endpoint) = &args.endpoint {
            let usable = matches!(endpoint.scheme(), "http" | "https")
                && endpoint.host_str().is_some()
                && endpoint.query().is_none()
                && endpoint.fragment().is_none();
            if !usable {
                return Err(ConfigError::Endpoint(endpoint.clone()));
            }
        }
        if let Some(project) = &args.project_id {
            vbs_rules::path_id(project).map_err(|v| ConfigError::ProjectId(project.clone(), v.description))?;
        }
        if args.upstream_timeout.is_zero() || args.connect_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        let bounds = args.bounds.to_config()?;
        let embedded = args.endpoint.is_none();
        if embedded && !cfg!(feature = "embedded-simulator") {
            return Err(ConfigError::NoEndpoint);
        }
        let purpose = if embedded {
            CredentialUse::EmbeddedSimulator
        } else {
            CredentialUse::Upstream
        };
        let default_project_id = args
            .project_id
            .clone()
            .or_else(|| embedded.then(|| DEMO_PROJECT_ID.to_string()));
        let credentials = args
            .credentials
            .resolve(default_project_id.as_deref(), purpose)
            .map_err(ConfigError::Credentials)?;
        let ca_certificates_pem = match &args.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| ConfigError::CaCert {
                path: path.clone(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let sends_credentials = !matches!(credentials, Credentials::Anonymous) || args.pass_through_token;
        if sends_credentials {
            let iam = match &credentials {
                Credentials::Iam(user) if !embedded => Some(&user.endpoint),
                _ => None,
            };
            let endpoints: Vec<&Url> = args.endpoint.iter().chain(iam).collect();
            args.bounds.check_plaintext(&endpoints)?;
        }
        Ok(Config {
            listen: args.listen,
            default_project_id,
            endpoint: args.endpoint,
            credentials,
            pass_through_token: args.pass_through_token,
            upstream_timeout: args.upstream_timeout,
            connect_timeout: args.connect_timeout,
            ca_certificates_pem,
            insecure_skip_tls_verify: args.insecure_skip_tls_verify,
            retry: RetryPolicy::default(),
            watch: args.watch.to_config()?,
            idempotency: args.idempotency.to_config()?,
            metrics_listen: args.metrics_listen,
            worker_threads: args.worker_threads.map(usize::from),
            #[cfg(feature = "embedded-simulator")]
            simulator: args.simulator.into_config(ClockMode::Auto),
            log: args.log.into_config(),
            callers: args.callers.into_config(args.listen)?,
            bounds,
            front_door: args.front_door.into_config()?,
        })
    }

    /// A gateway for tests: the given upstream, the demo project, short timeouts.
    pub fn for_testing(endpoint: Url) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            endpoint: Some(endpoint),
            default_project_id: Some(DEMO_PROJECT_ID.to_string()),
            credentials: Credentials::Anonymous,
            pass_through_token: false,
            upstream_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            ca_certificates_pem: None,
            insecure_skip_tls_verify: false,
            retry: RetryPolicy {
                base_pause: Duration::from_millis(10),
                ..RetryPolicy::default()
            },
            watch: WatchConfig::for_testing(),
            idempotency: IdempotencyConfig::default(),
            metrics_listen: None,
            worker_threads: None,
            #[cfg(feature = "embedded-simulator")]
            simulator: SimulatorConfig::for_testing(),
            log: LogConfig {
                format: LogFormat::Text,
                filter: "info".into(),
            },
            callers: CallerConfig::unlimited(),
            bounds: BoundsConfig::default(),
            front_door: FrontDoorConfig::default(),
        }
    }
}

/// TLS and the connection limits of the gRPC listener.
#[derive(Debug, Args)]
pub(crate) struct FrontDoorArgs {
    /// PEM certificate chain the gRPC listener presents; with --tls-key the
    /// listener speaks only TLS. Re-read when the file changes.
    #[arg(long, env = "VBS_GATEWAY_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert. Re-read when the file changes.
    #[arg(long, env = "VBS_GATEWAY_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// PEM certificates of the CA that signs client certificates: mutual TLS,
    /// a client without such a certificate is refused at the handshake.
    #[arg(long, env = "VBS_GATEWAY_TLS_CLIENT_CA", requires = "tls_cert")]
    pub tls_client_ca: Option<PathBuf>,
    /// How often the TLS files are checked for a change.
    #[arg(long, env = "VBS_GATEWAY_TLS_RELOAD_INTERVAL", default_value = "2s", value_parser = parse_duration)]
    pub tls_reload_interval: Duration,
    /// HTTP/2 streams (calls) one connection may have open at once; more wait.
    #[arg(long, env = "VBS_GATEWAY_MAX_STREAMS_PER_CONNECTION", default_value_t = 256)]
    pub max_streams_per_connection: u32,
    /// Client connections at most; beyond it new ones are closed at once.
    #[arg(long, env = "VBS_GATEWAY_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// A connection with no open call for this long is closed (also one that never speaks).
    #[arg(long, env = "VBS_GATEWAY_IDLE_TIMEOUT", default_value = "5m", value_parser = parse_duration)]
    pub idle_timeout: Duration,
}

impl FrontDoorArgs {
    fn into_config(self) -> Result<FrontDoorConfig, ConfigError> {
        let limits_usable = self.max_streams_per_connection > 0
            && self.max_connections > 0
            && !self.idle_timeout.is_zero()
            && !self.tls_reload_interval.is_zero();
        if !limits_usable {
            return Err(ConfigError::FrontDoor(
                "--max-streams-per-connection, --max-connections, --idle-timeout and --tls-reload-interval must be more than zero".into(),
            ));
        }
        let tls = match (self.tls_cert, self.tls_key) {
            (Some(cert), Some(key)) => Some(TlsFiles {
                cert,
                key,
                client_ca: self.tls_client_ca,
            }),
            _ => None,
        };
        if let Some(files) = &tls {
            crate::frontdoor::check_tls_files(files).map_err(|e| ConfigError::Tls(e.to_string()))?;
        }
        Ok(FrontDoorConfig {
            tls,
            tls_reload_interval: self.tls_reload_interval,
            max_streams_per_connection: self.max_streams_per_connection,
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
        })
    }
}

/// TLS and the connection limits of the gRPC listener.
#[derive(Debug, Clone)]
pub struct FrontDoorConfig {
    /// None: plaintext gRPC.
    pub tls: Option<TlsFiles>,
    /// How often the TLS files are checked for a change.
    pub tls_reload_interval: Duration,
    /// HTTP/2 streams one connection may have open at once (advertised in SETTINGS).
    pub max_streams_per_connection: u32,
    /// Client connections at most; beyond it new ones are closed at once.
    pub max_connections: usize,
    /// A connection with no open call for this long is closed.
    pub idle_timeout: Duration,
}

impl Default for FrontDoorConfig {
    fn default() -> Self {
        FrontDoorConfig {
            tls: None,
            tls_reload_interval: Duration::from_secs(2),
            max_streams_per_connection: 256,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// The PEM files of the listener's TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key of the leaf.
    pub key: PathBuf,
    /// The CA of client certificates; Some turns on mutual TLS.
    pub client_ca: Option<PathBuf>,
}

/// The value of --config in the raw arguments, before clap parses them.
fn config_flag(args: &[OsString]) -> Option<PathBuf> {
    let args: Vec<&str> = args.iter().filter_map(|a| a.to_str()).collect();
    args.iter()
        .enumerate()
        .find_map(|(i, arg)| match arg.strip_prefix("--config") {
            Some("") => args.get(i + 1).map(PathBuf::from),
            Some(rest) => rest.strip_prefix('=').map(PathBuf::from),
            None => None,
        })
}

/// Makes each key of the config file the default of the gateway option with
/// that long name (`upstream-timeout = "10s"`; `_` works for `-`).
fn with_file_defaults(mut command: clap::Command, path: &Path) -> Result<clap::Command, ConfigError> {
    let fail = |reason: String| ConfigError::ConfigFile {
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
    let table: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| fail(e.message().to_string()))?;
    for (key, value) in table {
        let long = key.replace('_', "-");
        let id = command
            .get_arguments()
            .find(|arg| arg.get_long() == Some(long.as_str()) && long != "config")
            .map(|arg| arg.get_id().clone())
            .ok_or_else(|| fail(format!("unknown option {key:?}")))?;
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Array(items) => items.iter().map(toml_text).collect::<Vec<_>>().join(","),
            toml::Value::Table(_) => return Err(fail(format!("{key:?} must be a value, not a table"))),
            other => toml_text(&other),
        };
        // A default is shown in --help; a secret's never is.
        let set_default = |arg: clap::Arg, value: String| {
            let secret = arg.is_hide_env_values_set();
            arg.default_value(value).hide_default_value(secret)
        };
        command = command
            .mut_arg(&id, |arg| set_default(arg, value.clone()))
            .mut_subcommand("serve", |serve| serve.mut_arg(&id, |arg| set_default(arg, value)));
    }
    Ok(command)
}

/// The secret options (those whose environment values are hidden) that were
/// given on the command line itself, where any local user can read them.
fn inline_secrets(command: &clap::Command, matches: &ArgMatches) -> Vec<String> {
    let (command, matches) = match matches.subcommand() {
        Some(("serve", serve)) => match command.find_subcommand("serve") {
            Some(sub) => (sub, serve),
            None => return Vec::new(),
        },
        _ => (command, matches),
    };
    command
        .get_arguments()
        .filter(|arg| arg.is_hide_env_values_set())
        .filter(|arg| matches.value_source(arg.get_id().as_str()) == Some(ValueSource::CommandLine))
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect()
}

fn toml_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// Upstream credentials: one mode of AK/SK, an IAM user, or a static token.
/// Every secret can come from a flag, an environment variable, or a file
/// (`*-file`, read once at start-up; a trailing newline is dropped).
#[derive(Debug, Args)]
pub(crate) struct CredentialArgs {
    /// Access key (AK) for SDK-HMAC-SHA256 request signing.
    #[arg(long, env = "VBS_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    #[arg(long, env = "VBS_ACCESS_KEY_FILE")]
    pub access_key_file: Option<PathBuf>,
    /// Secret key (SK) belonging to the access key.
    #[arg(long, env = "VBS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    #[arg(long, env = "VBS_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Security token of temporary AK/SK credentials.
    #[arg(long, env = "VBS_SECURITY_TOKEN", hide_env_values = true)]
    pub security_token: Option<String>,
    #[arg(long, env = "VBS_SECURITY_TOKEN_FILE")]
    pub security_token_file: Option<PathBuf>,
    /// IAM user the gateway exchanges for project-scoped tokens.
    #[arg(long, env = "VBS_IAM_USER")]
    pub iam_user: Option<String>,
    #[arg(long, env = "VBS_IAM_PASSWORD", hide_env_values = true)]
    pub iam_password: Option<String>,
    #[arg(long, env = "VBS_IAM_PASSWORD_FILE")]
    pub iam_password_file: Option<PathBuf>,
    /// Account (domain) name of the IAM user.
    #[arg(long, env = "VBS_IAM_DOMAIN")]
    pub iam_domain: Option<String>,
    /// Project name the tokens are scoped to; without it, --project-id scopes them.
    #[arg(long, env = "VBS_IAM_PROJECT")]
    pub iam_project: Option<String>,
    /// IAM endpoint, e.g. https://iam.eu-de.otc.t-systems.com. With the
    /// embedded simulator it defaults to the simulator's own IAM.
    #[arg(long, env = "VBS_IAM_ENDPOINT")]
    pub iam_endpoint: Option<Url>,
    /// A fixed IAM token sent upstream as X-Auth-Token.
    #[arg(long, env = "VBS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, env = "VBS_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// Who the credentials are for: what is required and what is made up differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CredentialUse {
    /// A real VBS: an IAM user needs its IAM endpoint.
    Upstream,
    /// The embedded simulator: its own IAM; fresh AK/SK when none are given.
    EmbeddedSimulator,
}

impl CredentialArgs {
    /// The one credential mode configured (none: Anonymous, which the demo
    /// replaces by a fresh AK/SK pair that its simulator learns too).
    fn resolve(&self, project_id: Option<&str>, purpose: CredentialUse) -> Result<Credentials, String> {
        let access_key = secret("access-key", &self.access_key, &self.access_key_file)?;
        let secret_key = secret("secret-key", &self.secret_key, &self.secret_key_file)?;
        let security_token = secret("security-token", &self.security_token, &self.security_token_file)?;
        let password = secret("iam-password", &self.iam_password, &self.iam_password_file)?;
        let token = secret("token", &self.token, &self.token_file)?;
        let signing = access_key.is_some() || secret_key.is_some();
        let iam = self.iam_user.is_some() || password.is_some();
        if [signing, iam, token.is_some()].iter().filter(|&&on| on).count() > 1 {
            return Err(
                "choose one credential mode: AK/SK (--access-key), an IAM user (--iam-user) or a token (--token)"
                    .into(),
            );
        }
        if security_token.is_some() && !signing {
            return Err("--security-token belongs to AK/SK credentials: give --access-key and --secret-key too".into());
        }
        if signing {
            let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
                return Err("AK/SK signing needs both --access-key and --secret-key".into());
            };
            return Ok(Credentials::AccessKey(AccessKey {
                access_key,
                secret_key,
                security_token,
            }));
        }
        if iam {
            return self.iam_user(password, project_id, purpose).map(Credentials::Iam);
        }
        Ok(match token {
            Some(token) => Credentials::Token(token),
            None => Credentials::Anonymous,
        })
    }

    fn iam_user(
        &self,
        password: Option<Secret>,
        project_id: Option<&str>,
        purpose: CredentialUse,
    ) -> Result<IamUser, String> {
        let (Some(user), Some(password), Some(domain)) = (&self.iam_user, password, &self.iam_domain) else {
            return Err(
                "an IAM user needs --iam-user, --iam-password (or --iam-password-file) and --iam-domain".into(),
            );
        };
        let project = match (&self.iam_project, project_id) {
            (Some(name), _) => ProjectScope::Name(name.clone()),
            (None, Some(id)) => ProjectScope::Id(id.to_string()),
            (None, None) => return Err("an IAM user needs --iam-project or --project-id to scope its tokens".into()),
        };
        let endpoint = match (&self.iam_endpoint, purpose) {
            (Some(endpoint), CredentialUse::Upstream) => endpoint.clone(),
            (None, CredentialUse::Upstream) => return Err("an IAM user needs --iam-endpoint".into()),
            // A simulator accepts only tokens from its own IAM: the address is
            // filled in once it listens.
            _ => Url::parse("http://127.0.0.1/").map_err(|e| e.to_string())?,
        };
        Ok(IamUser {
            endpoint,
            user: user.clone(),
            password,
            domain: domain.clone(),
            project,
        })
    }
}

/// A secret given inline or in a file, not both.
fn secret(name: &str, value: &Option<String>, file: &Option<PathBuf>) -> Result<Option<Secret>, String> {
    let text = match (value, file) {
        (Some(_), Some(_)) => return Err(format!("give --{name} or --{name}-file, not both")),
        (Some(value), None) => value.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("--{name}-file {}: {e}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        (None, None) => return Ok(None),
    };
    if text.is_empty() {
        return Err(format!("--{name} must not be empty"));
    }
    Ok(Some(Secret::new(text)))
}

/// "8MiB", "512KiB", "1GiB", "64KB" (KB, MB, GB are the same binary units), or plain bytes.
pub fn parse_size(text: &str) -> Result<usize, String> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: usize = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a size like 8MiB, 512KiB or 1048576"))?;
    let factor: usize = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use B, KiB, MiB or GiB)")),
    };
    value
        .checked_mul(factor)
        .ok_or_else(|| format!("{text:?} is too large"))
}

/// "250ms", "30s", "5m", "1h", or plain seconds ("2.5").
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 30s, 5m or 1h"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a valid duration"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Mode, ConfigError> {
        let mut argv = vec!["vbs-gateway"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv).expect("arguments parse").into_mode()
    }

    #[cfg(feature = "embedded-simulator")]
    #[test]
    fn no_arguments_serve_on_the_default_port_with_the_embedded_simulator() {
        let Ok(Mode::Serve(config)) = parse(&[]) else {
            panic!("expected serve")
        };
        assert_eq!(config.listen, "127.0.0.1:50051".parse().unwrap());
        assert!(config.endpoint.is_none());
        assert_eq!(config.default_project_id.as_deref(), Some(DEMO_PROJECT_ID));
        assert_eq!(config.simulator.volumes, SimulatorConfig::default_volumes());
    }

    #[test]
    fn rejects_bad_settings_clearly() {
        assert!(matches!(
            parse(&["--project-id", "../x"]),
            Err(ConfigError::ProjectId(..))
        ));
        assert!(matches!(
            parse(&["--endpoint", "ftp://x"]),
            Err(ConfigError::Endpoint(_))
        ));
        assert!(matches!(parse(&["--token", ""]), Err(ConfigError::Credentials(_))));
        assert!(matches!(
            parse(&["--upstream-timeout", "0s"]),
            Err(ConfigError::ZeroTimeout)
        ));
        assert!(Cli::try_parse_from(["vbs-gateway", "--upstream-timeout", "5 parsecs"]).is_err());
    }

    #[test]
    fn tokens_do_not_show_in_debug_output() {
        let Ok(Mode::Serve(config)) = parse(&["--token", "MIIPAgYJKoZIhvcNAQcCo"]) else {
            panic!("expected serve")
        };
        assert!(!format!("{config:?}").contains("MIIPAg"));
    }

    /// A file in the temp folder with `text`, named uniquely for this test run.
    fn temp_file(text: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("vbs-gateway-test-{}", uuid::Uuid::new_v4()));
        std::fs::write(&path, text).unwrap();
        path
    }

    fn credentials(args: &[&str]) -> Result<Credentials, ConfigError> {
        parse(args).map(|mode| match mode {
            Mode::Serve(config) => config.credentials,
            _ => panic!("expected serve"),
        })
    }

    #[test]
    fn idempotency_records_default_to_a_day_and_must_be_kept_some_time() {
        let serve = |extra: &[&str]| parse(&[&["--endpoint", "https://vbs.example.com"][..], extra].concat());
        let Ok(Mode::Serve(config)) = serve(&[]) else {
            panic!("expected serve")
        };
        assert_eq!(config.idempotency, IdempotencyConfig::default());
        assert_eq!(config.idempotency.ttl, Duration::from_secs(86_400));
        let Ok(Mode::Serve(config)) = serve(&["--idempotency-ttl", "1h", "--idempotency-max-records", "10"]) else {
            panic!("expected serve")
        };
        assert_eq!(config.idempotency.ttl, Duration::from_secs(3600));
        assert_eq!(config.idempotency.max_records, 10);
        assert!(matches!(
            serve(&["--idempotency-ttl", "0s"]),
            Err(ConfigError::ZeroIdempotencyTtl)
        ));
    }

    #[test]
    fn one_credential_mode_at_a_time() {
        let endpoint = ["--endpoint", "https://vbs.example.com"];
        let with = |extra: &[&str]| credentials(&[&endpoint[..], extra].concat());
        assert!(matches!(with(&[]), Ok(Credentials::Anonymous)));
        assert!(matches!(with(&["--token", "t0k"]), Ok(Credentials::Token(_))));
        assert!(matches!(
            with(&["--access-key", "AK", "--secret-key", "SK"]),
            Ok(Credentials::AccessKey(_))
        ));
        assert!(with(&["--access-key", "AK"]).is_err(), "an AK needs its SK");
        assert!(with(&["--access-key", "AK", "--secret-key", "SK", "--token", "t"]).is_err());
        assert!(with(&["--security-token", "st"]).is_err());
        let iam = ["--iam-user", "alice", "--iam-password", "pw", "--iam-domain", "acme"];
        assert!(with(&iam).is_err(), "needs an IAM endpoint and a project");
        let iam_full = [
            &iam[..],
            &["--iam-endpoint", "https://iam.example.com", "--iam-project", "eu-de"],
        ]
        .concat();
        let Ok(Credentials::Iam(user)) = with(&iam_full) else {
            panic!("expected an IAM user")
        };
        assert_eq!(user.project, ProjectScope::Name("eu-de".into()));
    }

    #[test]
    fn secrets_come_from_files_without_their_newline() {
        let sk = temp_file("from-a-file\n");
        let path = sk.to_str().unwrap();
        let Ok(Credentials::AccessKey(key)) = credentials(&["--access-key", "AK", "--secret-key-file", path]) else {
            panic!("expected AK/SK")
        };
        assert_eq!(key.secret_key.expose(), "from-a-file");
        assert!(credentials(&["--access-key", "AK", "--secret-key", "x", "--secret-key-file", path]).is_err());
        assert!(credentials(&["--token-file", "/nonexistent/token"]).is_err());
    }

    #[test]
    fn a_config_file_supplies_defaults_that_flags_override() {
        let file = temp_file(
            "endpoint = \"https://vbs.example.com\"\nupstream_timeout = \"7s\"\nproject-id = \"0123456789abcdef0123456789abcdef\"\n",
        );
        let load = |extra: &[&str]| {
            let mut args: Vec<OsString> = vec!["vbs-gateway".into()];
            args.extend(extra.iter().map(OsString::from));
            match Cli::load_from(args, None) {
                Ok(Mode::Serve(config)) => config,
                other => panic!("expected serve, got {other:?}"),
            }
        };
        let path = file.to_str().unwrap();
        let config = load(&["--config", path]);
        assert_eq!(config.endpoint.unwrap().as_str(), "https://vbs.example.com/");
        assert_eq!(config.upstream_timeout, Duration::from_secs(7));
        assert_eq!(
            config.default_project_id.as_deref(),
            Some("0123456789abcdef0123456789abcdef")
        );
        let config = load(&[&format!("--config={path}"), "--upstream-timeout", "9s"]);
        assert_eq!(config.upstream_timeout, Duration::from_secs(9));
        let bad = temp_file("no_such_option = 1\n");
        let args = vec!["vbs-gateway".into(), "--config".into(), bad.clone().into_os_string()];
        assert!(matches!(
            Cli::load_from(args, None),
            Err(LoadError::Config(ConfigError::ConfigFile { .. }))
        ));
    }

    fn load_args(args: &[&str]) -> Result<Mode, LoadError> {
        let mut argv: Vec<OsString> = vec!["vbs-gateway".into()];
        argv.extend(args.iter().map(OsString::from));
        Cli::load_from(argv, None)
    }

    #[test]
    fn help_never_shows_a_secret_from_the_config_file() {
        let file = temp_file(
            "endpoint = \"https://vbs.example.com\"\naccess-key = \"AKFROMFILE000001\"\nsecret_key = \"SkFromTheFileNeverShown\"\nupstream-timeout = \"7s\"\n",
        );
        let path = file.to_str().unwrap();
        for args in [
            vec!["--config", path, "--help"],
            vec!["serve", "--config", path, "--help"],
        ] {
            let Err(LoadError::Usage(help)) = load_args(&args) else {
                panic!("expected help")
            };
            let text = help.render().to_string();
            assert!(text.contains("7s"), "other defaults from the file are shown: {text}");
            assert!(!text.contains("SkFromTheFile"), "{text}");
            assert!(!text.contains("AKFROMFILE"), "{text}");
        }
    }

    #[test]
    fn secrets_on_the_command_line_are_named_for_a_warning() {
        let sk = temp_file("from-a-file\n");
        let inline = |args: &[&str]| match load_args(args) {
            Ok(Mode::Serve(config)) => config.bounds.inline_secrets,
            other => panic!("expected serve, got {other:?}"),
        };
        let endpoint = ["--endpoint", "https://vbs.example.com"];
        let flags = [&endpoint[..], &["--access-key", "AK", "--secret-key", "SK"]].concat();
        assert_eq!(inline(&flags), ["--access-key", "--secret-key"]);
        let serve = [&["serve"][..], &flags].concat();
        assert_eq!(inline(&serve), ["--access-key", "--secret-key"]);
        let from_file = [
            &endpoint[..],
            &[
                "--access-key-file",
                sk.to_str().unwrap(),
                "--secret-key-file",
                sk.to_str().unwrap(),
            ],
        ]
        .concat();
        assert!(inline(&from_file).is_empty());
    }

    #[test]
    fn credentials_go_over_plain_http_only_to_loopback_or_when_allowed() {
        let token = ["--token", "t0k3n"];
        let with = |endpoint: &str, extra: &[&str]| parse(&[&["--endpoint", endpoint][..], &token, extra].concat());
        assert!(matches!(
            with("http://vbs.example.com", &[]),
            Err(ConfigError::PlaintextUpstream(_))
        ));
        assert!(matches!(
            with("http://10.0.0.1:8080", &[]),
            Err(ConfigError::PlaintextUpstream(_))
        ));
        assert!(with("http://vbs.example.com", &["--allow-plaintext-upstream"]).is_ok());
        for loopback in [
            "http://127.0.0.1:8080",
            "http://localhost:1",
            "http://[::1]:8080",
            "https://vbs.example.com",
        ] {
            assert!(with(loopback, &[]).is_ok(), "{loopback}");
        }
        assert!(
            parse(&["--endpoint", "http://vbs.example.com"]).is_ok(),
            "no credentials, nothing to leak"
        );
        assert!(matches!(
            parse(&["--endpoint", "http://vbs.example.com", "--pass-through-token"]),
            Err(ConfigError::PlaintextUpstream(_))
        ));
        let iam = [
            "--endpoint",
            "https://vbs.example.com",
            "--iam-user",
            "u",
            "--iam-password",
            "p",
            "--iam-domain",
            "d",
            "--iam-project",
            "eu-de",
            "--iam-endpoint",
            "http://iam.example.com",
        ];
        assert!(matches!(parse(&iam), Err(ConfigError::PlaintextUpstream(_))));
        let Err(error) = with("http://user:hunter2secret@vbs.example.com", &[]) else {
            panic!("expected an error")
        };
        assert!(!error.to_string().contains("hunter2"), "{error}");
    }

    #[test]
    fn bounds_have_their_documented_defaults() {
        let Ok(Mode::Serve(config)) = parse(&["--endpoint", "https://vbs.example.com"]) else {
            panic!("expected serve")
        };
        assert_eq!(config.bounds.max_upstream_body, 8 * 1024 * 1024);
        assert_eq!(config.bounds.default_deadline, Duration::from_secs(60));
        assert_eq!(config.bounds.drain_timeout, Duration::from_secs(30));
        assert!(matches!(
            parse(&["--max-upstream-body", "0"]),
            Err(ConfigError::ZeroBound)
        ));
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("8MiB"), Ok(8 << 20));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("64kb"), Ok(64 << 10));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("big").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn off_loopback_every_caller_needs_an_identity_unless_told_otherwise() {
        let open = CallerConfig::unlimited();
        let with_file = CallerConfig {
            callers_file: Some("callers.toml".into()),
            ..CallerConfig::unlimited()
        };
        let allowed = CallerConfig {
            allow_unauthenticated: true,
            ..CallerConfig::unlimited()
        };
        let address = |text: &str| text.parse::<SocketAddr>().unwrap();
        for loopback in ["127.0.0.1:50051", "127.9.9.9:1", "[::1]:50051"] {
            assert!(check_exposure(address(loopback), &open).is_ok(), "{loopback}");
        }
        for exposed in ["0.0.0.0:50051", "10.1.2.3:50051", "[::]:50051"] {
            assert!(matches!(
                check_exposure(address(exposed), &open),
                Err(ConfigError::Unguarded(_))
            ));
            assert!(check_exposure(address(exposed), &with_file).is_ok(), "{exposed}");
            assert!(check_exposure(address(exposed), &allowed).is_ok(), "{exposed}");
        }
        assert!(matches!(
            parse(&["--listen", "0.0.0.0:1"]),
            Err(ConfigError::Unguarded(_))
        ));
        assert!(parse(&["--listen", "0.0.0.0:1", "--allow-unauthenticated"]).is_ok());
    }

    #[test]
    fn caller_limits_default_on_and_zero_turns_them_off() {
        let Ok(Mode::Serve(config)) = parse(&[]) else {
            panic!("expected serve")
        };
        assert_eq!(config.callers.caller_rate, Some(100.0));
        assert_eq!(config.callers.max_watches_per_caller, Some(1000));
        assert!(config.callers.reflection);
        let Ok(Mode::Serve(config)) = parse(&[
            "--caller-rate",
            "0",
            "--max-watches-per-caller",
            "0",
            "--reflection",
            "off",
        ]) else {
            panic!("expected serve")
        };
        assert_eq!(config.callers.caller_rate, None);
        assert_eq!(config.callers.max_watches_per_caller, None);
        assert!(!config.callers.reflection);
        assert!(matches!(parse(&["--caller-rate=-1"]), Err(ConfigError::CallerRate(_))));
    }

    #[test]
    fn front_door_defaults_and_bad_tls_files_named_in_one_line() {
        let endpoint = ["--endpoint", "https://vbs.example.com"];
        let Ok(Mode::Serve(config)) = parse(&endpoint) else {
            panic!("the defaults parse");
        };
        let front_door = config.front_door;
        assert!(front_door.tls.is_none());
        assert_eq!(front_door.max_streams_per_connection, 256);
        assert_eq!(front_door.max_connections, 4096);
        assert_eq!(front_door.idle_timeout, Duration::from_secs(300));

        let missing = std::env::temp_dir().join(format!("vbs-gateway-missing-{}.pem", uuid::Uuid::new_v4()));
        let missing = missing.to_str().unwrap();
        let bad = parse(&[&endpoint[..], &["--tls-cert", missing, "--tls-key", missing]].concat());
        let Err(error @ ConfigError::Tls(_)) = bad else {
            panic!("expected a TLS error, got {bad:?}");
        };
        let message = error.to_string();
        assert!(message.starts_with(&format!("--tls-cert {missing}: ")), "{message}");
        assert!(!message.contains('\n'), "{message}");
        assert!(matches!(
            parse(&[&endpoint[..], &["--max-connections", "0"]].concat()),
            Err(ConfigError::FrontDoor(_))
        ));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("fast").is_err());
    }
}
