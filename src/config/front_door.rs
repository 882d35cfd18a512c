//! The flags of TLS and the connection limits of the gRPC listener; the
//! settings they make are the front door's own (`crate::frontdoor`).

use super::*;

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
    /// Re-read when the file changes.
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
    /// Threads that serve client connections, each with a runtime of its own
    /// (a connection stays on one); 0 serves them on the --worker-threads
    /// runtime. Default: one per core.
    #[arg(long, env = "VBS_GATEWAY_SERVE_THREADS", value_parser = clap::value_parser!(u16).range(0..=1024))]
    pub serve_threads: Option<u16>,
}

impl FrontDoorArgs {
    pub(super) fn into_config(self) -> Result<FrontDoorConfig, ConfigError> {
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
            serve_threads: self.serve_threads.map_or_else(crate::frontdoor::cores, usize::from),
        })
    }
}
