//! Logging set-up: text or JSON lines on stderr, filtered by an env-filter
//! expression, coloured only on a terminal. Secrets never reach a log line
//! because they are redacted types.

use std::ffi::OsStr;
use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the process-wide subscriber. An invalid filter falls back to "info"
/// and says so, rather than silencing the process.
pub fn init(config: &LogConfig) {
    let (filter, bad_filter) = match EnvFilter::try_new(&config.filter) {
        Ok(filter) => (filter, None),
        Err(error) => (EnvFilter::new("info"), Some(error)),
    };
    let no_color = std::env::var_os("NO_COLOR");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour_wanted(std::io::stderr().is_terminal(), no_color.as_deref()))
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

/// Colour only for a person at a terminal: a pipe or a file gets plain text
/// that grep and log shippers read as is. A non-empty NO_COLOR turns colour
/// off everywhere (no-color.org).
fn colour_wanted(stderr_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    let no_color = no_color.is_some_and(|value| !value.is_empty());
    stderr_is_terminal && !no_color
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(!colour_wanted(false, None), "a pipe or a file");
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        assert!(!colour_wanted(false, Some(OsStr::new("1"))));
        assert!(
            colour_wanted(true, Some(OsStr::new(""))),
            "an empty NO_COLOR does not count"
        );
    }
}
