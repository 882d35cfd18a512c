//! Who may call the gateway and how much: the callers file, the safe-by-
//! default check of the listen address, and the per-caller limits.

use super::*;

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

impl CallerArgs {
    /// Checks the callers file now, so a bad one stops the start (exit 64).
    pub(super) fn into_config(self, listen: SocketAddr) -> Result<CallerConfig, ConfigError> {
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
