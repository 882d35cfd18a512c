//! Bounds on what upstream may send, how long calls and shutdown may take,
//! and where credentials may travel.

use super::*;

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

impl BoundsArgs {
    pub(super) fn to_config(&self) -> Result<BoundsConfig, ConfigError> {
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
    pub(super) fn check_plaintext(&self, endpoints: &[&Url]) -> Result<(), ConfigError> {
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
