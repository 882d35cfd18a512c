//! How an upstream call can fail, by stage: refused before sending, lost in
//! transport, answered with an error status, or answered with a body that
//! does not decode. Also reads every error body shape VBS and its API gateway use.

use std::time::Duration;

use serde_json::Value;

use super::Operation;

/// A failed upstream call. Carries what the error table in `crate::error`
/// needs and what the log needs, never a secret.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RestError {
    /// A path segment that is not a safe id; nothing was sent.
    #[error("{operation}: refusing to put {segment:?} into a URL path")]
    UnsafePathSegment { operation: Operation, segment: String },
    /// The request could not be built (a body that does not serialize, a bad URL).
    #[error("{operation}: could not build the request: {detail}")]
    Build { operation: Operation, detail: String },
    /// Connecting, sending or receiving failed.
    #[error("{operation}: {kind} talking to upstream")]
    Transport {
        operation: Operation,
        kind: TransportKind,
        #[source]
        source: reqwest::Error,
    },
    /// The caller's deadline passed before upstream answered.
    #[error("{operation}: the caller's deadline passed before upstream answered")]
    DeadlineExceeded { operation: Operation },
    /// Upstream answered with a non-success status.
    #[error("{operation}: upstream answered HTTP {status}{}", fault.describe())]
    Status {
        operation: Operation,
        status: u16,
        fault: UpstreamFault,
        retry_after: Option<Duration>,
    },
    /// Upstream answered success with a body that does not decode.
    #[error("{operation}: upstream body (HTTP {status}) does not decode: {source}")]
    Decode {
        operation: Operation,
        status: u16,
        #[source]
        source: serde_json::Error,
    },
    /// Upstream sent a success body longer than `--max-upstream-body`; the
    /// gateway stopped reading at the cap and dropped the connection.
    #[error("{operation}: upstream body (HTTP {status}) is over the {limit}-byte cap")]
    BodyTooLarge {
        operation: Operation,
        status: u16,
        limit: usize,
    },
    /// The project's upstream budget (`--upstream-rate`) has no slot before
    /// the call's deadline; nothing was sent.
    #[error("{operation}: the project's upstream budget is used up for {retry_after:?}")]
    BudgetExhausted {
        operation: Operation,
        /// When a slot is free again.
        retry_after: Duration,
    },
    /// The gateway could not obtain credentials to authorize the call.
    #[error("{operation}: no usable credentials: {detail}")]
    Credentials {
        operation: Operation,
        detail: String,
        /// IAM refused the gateway's user, rather than being unreachable.
        rejected: bool,
    },
}

/// Why a transport-level failure happened; the error table maps each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TransportKind {
    /// The connection could not be opened: the request provably was not sent.
    Connect,
    /// The configured upstream timeout passed.
    Timeout,
    /// The connection broke while the request or response was in flight.
    Io,
}

impl std::fmt::Display for TransportKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            TransportKind::Connect => "connection failure",
            TransportKind::Timeout => "timeout",
            TransportKind::Io => "I/O failure",
        })
    }
}

impl TransportKind {
    pub(crate) fn of(error: &reqwest::Error) -> TransportKind {
        if error.is_connect() {
            TransportKind::Connect
        } else if error.is_timeout() {
            TransportKind::Timeout
        } else {
            TransportKind::Io
        }
    }
}

impl RestError {
    pub(crate) fn operation(&self) -> Operation {
        match self {
            RestError::UnsafePathSegment { operation, .. }
            | RestError::Build { operation, .. }
            | RestError::Transport { operation, .. }
            | RestError::DeadlineExceeded { operation }
            | RestError::Status { operation, .. }
            | RestError::Decode { operation, .. }
            | RestError::BodyTooLarge { operation, .. }
            | RestError::BudgetExhausted { operation, .. }
            | RestError::Credentials { operation, .. } => *operation,
        }
    }

    /// The HTTP status upstream answered, when it answered.
    pub(crate) fn http_status(&self) -> Option<u16> {
        match self {
            RestError::Status { status, .. }
            | RestError::Decode { status, .. }
            | RestError::BodyTooLarge { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The code and message of an upstream error body, whatever its shape.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct UpstreamFault {
    /// VBS or API gateway error code, e.g. "VolumeBackup.0021", "APIGW.0301".
    pub(crate) code: Option<String>,
    pub(crate) message: Option<String>,
}

impl UpstreamFault {
    /// Reads `{"error":{"code","message"}}`, `{"badRequest":{...}}`,
    /// `{"itemNotFound":{...}}` (any OpenStack fault name), `{"error_code","error_msg"}`
    /// and flat `{"code","message"}`. Codes may be strings or numbers.
    pub(crate) fn parse(body: &[u8]) -> UpstreamFault {
        let Ok(Value::Object(top)) = serde_json::from_slice::<Value>(body) else {
            return UpstreamFault::default();
        };
        if top.contains_key("error_code") || top.contains_key("error_msg") {
            return UpstreamFault {
                code: text(top.get("error_code")),
                message: text(top.get("error_msg")),
            };
        }
        if top.contains_key("code") || top.contains_key("message") {
            return UpstreamFault {
                code: text(top.get("code")),
                message: text(top.get("message")),
            };
        }
        // OpenStack wraps the fault in one object named after its kind.
        top.values()
            .find_map(|inner| match inner {
                // ZStack's error object says it in `details` and `description`.
                Value::Object(fault) => Some(UpstreamFault {
                    code: text(fault.get("code")),
                    message: text(fault.get("message"))
                        .or_else(|| text(fault.get("details")))
                        .or_else(|| text(fault.get("description"))),
                }),
                _ => None,
            })
            .unwrap_or_default()
    }

    fn describe(&self) -> String {
        match (&self.code, &self.message) {
            (Some(code), Some(message)) => format!(" {code}: {message}"),
            (Some(code), None) => format!(" {code}"),
            (None, Some(message)) => format!(": {message}"),
            (None, None) => String::new(),
        }
    }
}

/// Upstream text kept in logs: more is cut, with a marker.
pub(crate) const LOGGED_TEXT_LIMIT: usize = 4096;
/// Upstream text kept in what the client gets (status message and ErrorInfo
/// metadata): more is cut, with a marker, so the trailers stay far below
/// the 16 KiB that clients accept.
pub(crate) const CLIENT_TEXT_LIMIT: usize = 1024;
/// Ends a text that was cut.
const CUT_MARKER: &str = "…[cut]";

/// `text` cut to at most `limit` bytes (on a character boundary) plus a
/// marker that says it was cut; unchanged when it fits.
pub(crate) fn cut(text: &str, limit: usize) -> std::borrow::Cow<'_, str> {
    if text.len() <= limit {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    std::borrow::Cow::Owned(format!("{}{CUT_MARKER}", &text[..end]))
}

fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fault(body: &str) -> (Option<String>, Option<String>) {
        let f = UpstreamFault::parse(body.as_bytes());
        (f.code, f.message)
    }

    #[test]
    fn reads_every_error_shape() {
        let expected = (Some("VolumeBackup.0005".to_string()), Some("bad".to_string()));
        assert_eq!(
            fault(r#"{"error":{"code":"VolumeBackup.0005","message":"bad"}}"#),
            expected
        );
        assert_eq!(
            fault(r#"{"badRequest":{"message":"bad","code":"VolumeBackup.0005"}}"#),
            expected
        );
        assert_eq!(
            fault(r#"{"error_code":"VolumeBackup.0005","error_msg":"bad"}"#),
            expected
        );
        assert_eq!(fault(r#"{"code":"VolumeBackup.0005","message":"bad"}"#), expected);
        assert_eq!(
            fault(
                r#"{"error":{"code":"ID.1001","description":"Session expired","details":"session s is expired","cause":null}}"#
            ),
            (Some("ID.1001".into()), Some("session s is expired".into()))
        );
        assert_eq!(
            fault(r#"{"itemNotFound":{"message":"Backup x could not be found.","code":404}}"#),
            (Some("404".into()), Some("Backup x could not be found.".into()))
        );
    }

    #[test]
    fn long_texts_are_cut_on_a_character_boundary_with_a_marker() {
        assert_eq!(cut("short", 10), "short");
        let long = "é".repeat(10);
        let shortened = cut(&long, 5);
        assert_eq!(shortened, format!("éé{CUT_MARKER}"));
        assert_eq!(
            cut(&"x".repeat(5000), LOGGED_TEXT_LIMIT).len(),
            LOGGED_TEXT_LIMIT + CUT_MARKER.len()
        );
    }

    #[test]
    fn tolerates_bodies_that_are_not_faults() {
        assert_eq!(fault(""), (None, None));
        assert_eq!(fault("<html>502</html>"), (None, None));
        assert_eq!(fault(r#"{"error":"x"}"#), (None, None));
    }
}
