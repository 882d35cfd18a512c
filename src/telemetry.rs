//! Logging set-up: text or JSON lines on stderr, filtered by an env-filter
//! expression. Secrets never reach a log line because they are redacted types.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the process-wide subscriber. An invalid filter falls back to "info"
/// and says so, rather than silencing the process.
pub fn init(config: &LogConfig) {
    let (filter, bad_filter) = match EnvFilter::try_new(&config.filter) {
        Ok(filter) => (filter, None),
        Err(error) => (EnvFilter::new("info"), Some(error)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let installed = match config.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    if installed.is_err() {
        return;
    }
    if let Some(error) = bad_filter {
        tracing::warn!(filter = %config.filter, %error, "invalid log filter; using \"info\"");
    }
}
