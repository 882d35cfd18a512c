//! `Secret`: a key, password or token that never shows itself in logs, errors
//! or Debug output.

use std::fmt;

/// A secret string (key, password, token). Its Debug and Display print a
/// placeholder; only `expose` gives the value, at the one place it is sent.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place it is sent or compared.
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_nothing_but_a_placeholder() {
        let secret = Secret::new("MIIPAgYJKoZIhvcNAQcCo");
        assert_eq!(
            format!("{secret:?} {secret} {secret:#?}"),
            "Secret(<redacted>) <redacted> Secret(<redacted>)"
        );
        assert_eq!(secret.expose(), "MIIPAgYJKoZIhvcNAQcCo");
    }
}
