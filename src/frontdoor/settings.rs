//! The settings of the listener: TLS files and connection limits. The
//! command line makes them; the front door owns their shape.

use std::path::PathBuf;
use std::time::Duration;

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
    /// Threads that serve connections, each on a single-threaded runtime of
    /// its own, so that a connection's calls, their upstream requests and
    /// their writes stay on one thread; 0 serves on the caller's runtime.
    pub serve_threads: usize,
}

impl Default for FrontDoorConfig {
    fn default() -> Self {
        FrontDoorConfig {
            tls: None,
            tls_reload_interval: Duration::from_secs(2),
            max_streams_per_connection: 256,
            max_connections: 4096,
            idle_timeout: Duration::from_secs(300),
            serve_threads: 0,
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
