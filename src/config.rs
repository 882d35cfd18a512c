//! Command line and environment, parsed by clap and validated once into a
//! `Config`. Every flag has an environment variable; flags win over the environment.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use reqwest::Url;

use crate::rest::credentials::{Credentials, Secret};
use crate::rest::retry::RetryPolicy;
use crate::rules;
use crate::simulator::{ClockMode, JobTiming, SimulatorConfig, VolumeSpec};
use crate::watch::{WatchConfig, WatchConfigError};

/// Project used with the embedded simulator when none is configured.
pub const DEMO_PROJECT_ID: &str = "5f0e1d2c3b4a49586776a5b4c3d2e1f0";

#[derive(Debug, Parser)]
#[command(
    name = "vbs-gateway",
    version,
    about = "gRPC gateway for the Volume Backup Service (VBS) of Huawei Cloud and Open Telekom Cloud",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// With no subcommand the gateway serves, with these options.
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the gRPC gateway (the default). With no --endpoint it starts the
    /// embedded VBS simulator and uses it.
    Serve(Box<ServeArgs>),
    /// Run the VBS simulator alone, as a fake VBS REST endpoint.
    Simulator(SimulatorArgs),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
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
    /// Static IAM token sent upstream as X-Auth-Token.
    #[arg(long, env = "VBS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
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
    pub simulator: SimulatorOptions,
    #[command(flatten)]
    pub log: LogArgs,
}

/// How watched jobs are polled (WatchJob, WaitJob, WatchJobs) and how
/// long-lived streams are kept alive.
#[derive(Debug, Args)]
pub struct WatchArgs {
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

#[derive(Debug, Args)]
pub struct SimulatorArgs {
    /// Address the simulator's REST API listens on.
    #[arg(long, env = "VBS_SIMULATOR_LISTEN", default_value = "127.0.0.1:8776")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub simulator: SimulatorOptions,
    #[command(flatten)]
    pub log: LogArgs,
}

/// How the simulator behaves (embedded or alone).
#[derive(Debug, Args)]
pub struct SimulatorOptions {
    /// A simulated disk, ID:SIZE_GB[:STATUS[:NAME]]; repeat for several.
    /// Without any, four demo disks with fixed ids.
    #[arg(long = "sim-volume", env = "VBS_SIM_VOLUMES", value_delimiter = ',')]
    pub volumes: Vec<VolumeSpec>,
    /// How long simulated jobs stay INIT.
    #[arg(long = "sim-job-init", env = "VBS_SIM_JOB_INIT", default_value = "1s", value_parser = parse_duration)]
    pub job_init: Duration,
    /// How long simulated jobs stay RUNNING.
    #[arg(long = "sim-job-run", env = "VBS_SIM_JOB_RUN", default_value = "4s", value_parser = parse_duration)]
    pub job_run: Duration,
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log line format.
    #[arg(long, env = "VBS_GATEWAY_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
    /// Log filter in env-filter syntax, e.g. "info,vbs_gateway=debug".
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    pub log_filter: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    pub filter: String,
}

/// What the process was asked to do, validated.
#[derive(Debug)]
pub enum Mode {
    Serve(Box<Config>),
    Simulator {
        listen: SocketAddr,
        simulator: SimulatorConfig,
        log: LogConfig,
    },
}

/// The gateway's validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub listen: SocketAddr,
    /// None: start the embedded simulator and use it.
    pub endpoint: Option<Url>,
    pub default_project_id: Option<String>,
    pub credentials: Credentials,
    pub upstream_timeout: Duration,
    pub connect_timeout: Duration,
    pub ca_certificates_pem: Option<Vec<u8>>,
    pub insecure_skip_tls_verify: bool,
    pub retry: RetryPolicy,
    /// How job watches poll and keep their streams alive.
    pub watch: WatchConfig,
    pub simulator: SimulatorConfig,
    pub log: LogConfig,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--endpoint {0}: must be an http or https URL without query or fragment")]
    Endpoint(Url),
    #[error("--project-id {0:?}: {1}")]
    ProjectId(String, String),
    #[error("--ca-cert {path}: {reason}")]
    CaCert { path: PathBuf, reason: String },
    #[error("--token: must not be empty")]
    EmptyToken,
    #[error("--upstream-timeout and --connect-timeout must be more than zero")]
    ZeroTimeout,
    #[error(transparent)]
    Watch(#[from] WatchConfigError),
}

impl Cli {
    pub fn into_mode(self) -> Result<Mode, ConfigError> {
        match self.command {
            Some(Command::Simulator(args)) => Ok(Mode::Simulator {
                listen: args.listen,
                simulator: args.simulator.into_config(ClockMode::Auto),
                log: args.log.into_config(),
            }),
            Some(Command::Serve(args)) => Ok(Mode::Serve(Box::new(Config::from_args(*args)?))),
            None => Ok(Mode::Serve(Box::new(Config::from_args(self.serve)?))),
        }
    }
}

impl SimulatorOptions {
    fn into_config(self, clock: ClockMode) -> SimulatorConfig {
        let volumes = if self.volumes.is_empty() {
            SimulatorConfig::default_volumes()
        } else {
            self.volumes
        };
        SimulatorConfig {
            volumes,
            clock,
            job_timing: JobTiming {
                init: self.job_init,
                running: self.job_run,
            },
            ..SimulatorConfig::demo()
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
    pub fn from_args(args: ServeArgs) -> Result<Config, ConfigError> {
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
            rules::path_id(project).map_err(|v| ConfigError::ProjectId(project.clone(), v.description))?;
        }
        if args.upstream_timeout.is_zero() || args.connect_timeout.is_zero() {
            return Err(ConfigError::ZeroTimeout);
        }
        let credentials = match args.token {
            Some(token) if token.is_empty() => return Err(ConfigError::EmptyToken),
            Some(token) => Credentials::Token(Secret::new(token)),
            None => Credentials::Anonymous,
        };
        let ca_certificates_pem = match &args.ca_cert {
            Some(path) => Some(std::fs::read(path).map_err(|e| ConfigError::CaCert {
                path: path.clone(),
                reason: e.to_string(),
            })?),
            None => None,
        };
        let embedded = args.endpoint.is_none();
        Ok(Config {
            listen: args.listen,
            default_project_id: args
                .project_id
                .or_else(|| embedded.then(|| DEMO_PROJECT_ID.to_string())),
            endpoint: args.endpoint,
            credentials,
            upstream_timeout: args.upstream_timeout,
            connect_timeout: args.connect_timeout,
            ca_certificates_pem,
            insecure_skip_tls_verify: args.insecure_skip_tls_verify,
            retry: RetryPolicy::default(),
            watch: args.watch.to_config()?,
            simulator: args.simulator.into_config(ClockMode::Auto),
            log: args.log.into_config(),
        })
    }

    /// A gateway for tests: the given upstream, the demo project, short timeouts.
    pub fn for_testing(endpoint: Url) -> Config {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            endpoint: Some(endpoint),
            default_project_id: Some(DEMO_PROJECT_ID.to_string()),
            credentials: Credentials::Anonymous,
            upstream_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(2),
            ca_certificates_pem: None,
            insecure_skip_tls_verify: false,
            retry: RetryPolicy {
                base_pause: Duration::from_millis(10),
                ..RetryPolicy::default()
            },
            watch: WatchConfig::for_testing(),
            simulator: SimulatorConfig::for_testing(),
            log: LogConfig {
                format: LogFormat::Text,
                filter: "info".into(),
            },
        }
    }
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
        assert!(matches!(parse(&["--token", ""]), Err(ConfigError::EmptyToken)));
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

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert!(parse_duration("fast").is_err());
    }
}
