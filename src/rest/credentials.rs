//! The gateway's upstream credentials and the `Secret` wrapper that keeps
//! tokens and keys out of logs, errors and Debug output.

use std::fmt;

/// A secret string (token, key, password). Its Debug and Display print a
/// placeholder; only `expose` gives the value, at the one place it is sent.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// How the gateway authenticates its upstream calls.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// No authentication (a simulator that does not check).
    Anonymous,
    /// A fixed token sent as X-Auth-Token.
    Token(Secret),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_redact_themselves() {
        let token = Secret::new("MIIPAgYJKoZIhvcNAQcCo");
        let shown = format!("{token:?} {token} {:?}", Credentials::Token(token.clone()));
        assert!(!shown.contains("MIIPAg"), "{shown}");
        assert_eq!(token.expose(), "MIIPAgYJKoZIhvcNAQcCo");
    }
}
