//! Command line and environment, parsed by clap and validated once into a
//! `Config`. Every flag has an environment variable; flags win over the
//! environment. Each group of options has a file of its own beside this one.

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
use crate::units::{parse_duration, parse_size};
use crate::watch::{WatchConfig, WatchConfigError};
#[cfg(feature = "embedded-simulator")]
use vbs_simulator::{
    ClockMode, SimulatorConfig,
    cli::{Beside, SimulatorArgs, SimulatorOptions},
};

mod bounds;
mod budget;
mod callers;
mod credentials;
mod csbs;
mod front_door;
mod idempotency;
mod replicas;
mod taurusdb;
mod watch;
mod zstack;

pub use crate::frontdoor::{FrontDoorConfig, TlsFiles};
use bounds::BoundsArgs;
pub use bounds::BoundsConfig;
use budget::BudgetArgs;
pub use budget::BudgetConfig;
use callers::CallerArgs;
pub use callers::{CallerConfig, Switch, key_sha256_line};
use credentials::{CredentialArgs, CredentialUse};
use csbs::CsbsArgs;
pub use csbs::CsbsConfig;
use front_door::FrontDoorArgs;
use idempotency::IdempotencyArgs;
pub use idempotency::IdempotencyConfig;
use replicas::RedisArgs;
pub use replicas::RedisConfig;
use taurusdb::TaurusDbArgs;
pub use taurusdb::TaurusDbConfig;
use watch::WatchArgs;
use zstack::ZStackArgs;
pub use zstack::ZStackConfig;

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
    /// Run the VBS simulator alone, as a fake VBS REST endpoint (and fake
    /// CSBS, TaurusDB and ZStack endpoints beside it when asked).
    #[cfg(feature = "embedded-simulator")]
    Simulator(Box<SimulatorCommand>),
    /// Read a caller's key on stdin and print its `key_sha256 = "..."` line
    /// for the callers file (--callers).
    HashKey,
    /// The command line for people: `backup`, `policy` and `job`, a gRPC
    /// client of a running gateway (`crate::cli`).
    #[command(flatten)]
    Client(Box<crate::cli::Client>),
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
    #[command(flatten)]
    pub csbs: CsbsArgs,
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
    #[command(flatten)]
    pub budget: BudgetArgs,
    #[command(flatten)]
    pub redis: RedisArgs,
    #[command(flatten)]
    pub taurusdb: TaurusDbArgs,
    #[command(flatten)]
    pub zstack: ZStackArgs,
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
    /// For people: one line per event, coloured on a terminal.
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
        /// The other services it serves (TaurusDB, ZStack, CSBS), if any.
        beside: Box<Beside>,
        /// How it logs.
        log: LogConfig,
    },
    /// Print the `key_sha256` line of a key read on stdin (`vbs-gateway hash-key`).
    HashKey,
    /// Call a running gateway (`vbs-gateway backup|policy|job ...`).
    Client(Box<crate::cli::Client>),
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
    /// Upstream requests per second per project.
    pub budget: BudgetConfig,
    /// The Redis server replicas share state through; None: all in memory.
    pub redis: Option<RedisConfig>,
    /// Cloud Server Backup Service: where it is and its credentials.
    pub csbs: CsbsConfig,
    /// TaurusDB manual backups: endpoint (none: not served) and own credentials.
    pub taurusdb: TaurusDbConfig,
    /// ZStack VM backups: endpoint (none: not served) and the account logging in.
    pub zstack: ZStackConfig,
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
    /// The upstream budget is out of range.
    #[error("{0}")]
    Budget(String),
    /// The Redis settings cannot be used.
    #[error("{0}")]
    Redis(String),
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
            Mode::HashKey | Mode::Client(_) => None,
        }
    }

    /// Threads the async runtime should have; None: one per core.
    pub fn worker_threads(&self) -> Option<usize> {
        match self {
            Mode::Serve(config) => config.worker_threads,
            #[cfg(feature = "embedded-simulator")]
            Mode::Simulator { worker_threads, .. } => *worker_threads,
            Mode::HashKey | Mode::Client(_) => Some(1),
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
            Some(Command::Simulator(command)) => {
                let listen = command.simulator.listen;
                let (simulator, beside) = command.simulator.into_config().map_err(ConfigError::Credentials)?;
                Ok(Mode::Simulator {
                    listen,
                    worker_threads: command.worker_threads.map(usize::from),
                    simulator: Box::new(simulator),
                    beside: Box::new(beside),
                    log: command.log.into_config(),
                })
            }
            Some(Command::Serve(args)) => Ok(Mode::Serve(Box::new(Config::from_args(*args)?))),
            Some(Command::HashKey) => Ok(Mode::HashKey),
            Some(Command::Client(client)) => Ok(Mode::Client(client)),
            None => Ok(Mode::Serve(Box::new(Config::from_args(self.serve)?))),
        }
    }
}

impl LogArgs {
    pub(super) fn into_config(self) -> LogConfig {
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
        let budget = args.budget.to_config()?;
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
            .resolve(default_project_id.as_deref(), purpose, args.endpoint.as_ref())
            .map_err(ConfigError::Credentials)?;
        let csbs = args.csbs.to_config().map_err(ConfigError::Credentials)?;
        let ca_certificates_pem = match &args.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| ConfigError::CaCert {
                path: path.clone(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let sends_credentials = !matches!(credentials, Credentials::Anonymous) || args.pass_through_token;
        let taurusdb = args.taurusdb.to_config()?;
        let zstack = args.zstack.to_config()?;
        args.bounds
            .check_plaintext(&zstack.endpoint.iter().collect::<Vec<_>>())?;
        if sends_credentials || taurusdb.credentials.is_some() {
            let iam = match &credentials {
                Credentials::Iam(user) if !embedded => Some(&user.endpoint),
                _ => None,
            };
            let endpoints: Vec<&Url> = args
                .endpoint
                .iter()
                .chain(iam)
                .chain(&args.csbs.csbs_endpoint)
                .chain(&taurusdb.endpoint)
                .collect();
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
            watch: args.watch.to_config(budget.watch_poll_rate())?,
            idempotency: args.idempotency.to_config()?,
            metrics_listen: args.metrics_listen,
            worker_threads: args.worker_threads.map(usize::from),
            #[cfg(feature = "embedded-simulator")]
            simulator: args.simulator.into_config(ClockMode::Auto),
            log: args.log.into_config(),
            callers: args.callers.into_config(args.listen)?,
            bounds,
            front_door: args.front_door.into_config()?,
            budget,
            redis: args.redis.to_config()?,
            csbs,
            taurusdb,
            zstack,
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
            budget: BudgetConfig::unlimited(),
            redis: None,
            csbs: CsbsConfig::default(),
            taurusdb: TaurusDbConfig::default(),
            zstack: ZStackConfig::default(),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::callers::check_exposure;
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
    fn signing_algorithm_and_v11_scope_come_from_flags_or_the_endpoint_host() {
        use crate::rest::credentials::Signing;
        let signing = |endpoint: &str, extra: &[&str]| {
            let key = ["--endpoint", endpoint, "--access-key", "AK", "--secret-key", "SK"];
            credentials(&[&key[..], extra].concat()).map(|c| match c {
                Credentials::AccessKey(key) => key.signing,
                _ => panic!("expected AK/SK"),
            })
        };
        let otc = "https://vbs.eu-de.otc.t-systems.com";
        assert_eq!(signing(otc, &[]).unwrap(), Signing::SdkHmacSha256);
        let sm3 = signing(otc, &["--signing-algorithm", "sdk-hmac-sm3"]);
        assert_eq!(sm3.unwrap(), Signing::SdkHmacSm3);
        let v11 = |region: &str, service: &str| Signing::V11HmacSha256 {
            region: region.into(),
            service: service.into(),
        };
        let derived = signing(otc, &["--signing-algorithm", "v11-hmac-sha256"]);
        assert_eq!(derived.unwrap(), v11("eu-de", "vbs"));
        let huawei = signing(
            "https://vbs.ap-southeast-1.myhuaweicloud.com",
            &["--signing-algorithm", "v11-hmac-sha256"],
        );
        assert_eq!(huawei.unwrap(), v11("ap-southeast-1", "vbs"));
        let given = [
            "--signing-algorithm",
            "v11-hmac-sha256",
            "--signing-region",
            "eu-nl",
            "--signing-service",
            "evs",
        ];
        assert_eq!(signing("https://10.0.0.7:8443", &given).unwrap(), v11("eu-nl", "evs"));
        let no_region = ["--signing-algorithm", "v11-hmac-sha256"];
        assert!(
            signing("https://10.0.0.7:8443", &no_region).is_err(),
            "an IP names no region"
        );
        assert!(
            signing("https://vbs.example.com", &no_region).is_err(),
            "nor does a short host"
        );
        assert!(
            signing(otc, &["--signing-region", "eu-de"]).is_err(),
            "a region is V11's"
        );
        assert!(credentials(&["--endpoint", otc, "--signing-algorithm", "sdk-hmac-sm3"]).is_err());
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
    fn client_commands_take_their_connection_flags_before_or_after_the_command() {
        for args in [
            vec!["backup", "--server", "http://gateway:1", "list", "-o", "json"],
            vec!["backup", "list", "--server", "http://gateway:1", "--output", "json"],
        ] {
            let Ok(Mode::Client(client)) = load_args(&args) else {
                panic!("{args:?}: expected a client command")
            };
            let text = format!("{client:?}");
            assert!(text.contains("http://gateway:1") && text.contains("Json"), "{text}");
        }
        assert!(load_args(&["job", "wait"]).is_err(), "a job id is required");
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
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        assert_eq!(front_door.serve_threads, cores, "one serving thread per core");
        for (given, threads) in [("0", 0), ("3", 3)] {
            let Ok(Mode::Serve(config)) = parse(&[&endpoint[..], &["--serve-threads", given]].concat()) else {
                panic!("--serve-threads {given} parses");
            };
            assert_eq!(config.front_door.serve_threads, threads);
        }
        let too_many = ["vbs-gateway", "--serve-threads", "1025"];
        assert!(
            Cli::try_parse_from(too_many).is_err(),
            "--serve-threads is at most 1024"
        );

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
}
