//! The gateway's upstream credentials as configured (AK/SK, an IAM user, a
//! static token; `rest::auth` turns them into an authorizer) and the `Secret`
//! wrapper that keeps keys, passwords and tokens out of logs, errors and Debug.

use reqwest::Url;

pub use apig_signer::Secret;

/// An access key pair, optionally temporary (with a security token).
#[derive(Debug, Clone)]
pub struct AccessKey {
    /// The AK names the account, so it is kept out of logs too.
    pub access_key: Secret,
    /// The SK: the signing key, never sent.
    pub secret_key: Secret,
    /// Present with temporary credentials; sent and signed as X-Security-Token.
    pub security_token: Option<Secret>,
}

/// Which project an IAM token is scoped to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectScope {
    /// By project name, e.g. "eu-de".
    Name(String),
    /// By project id.
    Id(String),
}

/// An IAM user the gateway exchanges for project-scoped tokens.
#[derive(Debug, Clone)]
pub struct IamUser {
    /// IAM endpoint, e.g. `https://iam.eu-de.otc.t-systems.com`.
    pub endpoint: Url,
    /// The user's name.
    pub user: String,
    /// The user's password, exchanged for tokens.
    pub password: Secret,
    /// The account (domain) the user belongs to.
    pub domain: String,
    /// The project the tokens are scoped to.
    pub project: ProjectScope,
}

/// How the gateway authenticates its upstream calls.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// No authentication (an upstream that does not check).
    Anonymous,
    /// A fixed token sent as X-Auth-Token.
    Token(Secret),
    /// SDK-HMAC-SHA256 signatures.
    AccessKey(AccessKey),
    /// Tokens issued by IAM for this user, cached and refreshed.
    Iam(IamUser),
}

/// Replaces every occurrence of a secret in `text` (an upstream error message,
/// say) by a placeholder, so upstream echoes never carry them further.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= 4)
        .fold(text.to_string(), |text, secret| text.replace(secret, "<redacted>"))
}

#[cfg(test)]
impl IamUser {
    /// A user for tests that need one but no IAM: alice of acme, in eu-de.
    pub(crate) fn example() -> IamUser {
        IamUser {
            endpoint: "https://iam.example.com".parse().expect("a URL"),
            user: "alice".into(),
            password: Secret::new("correct horse battery"),
            domain: "acme".into(),
            project: ProjectScope::Name("eu-de".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_redact_themselves() {
        let token = Secret::new("MIIPAgYJKoZIhvcNAQcCo");
        let key = AccessKey {
            access_key: Secret::new("VBSGWTESTAKID0000001"),
            secret_key: Secret::new("vbsGwTestSecretKey0000000000000000000001"),
            security_token: Some(Secret::new("temporary-token-value")),
        };
        let user = IamUser::example();
        let shown = format!(
            "{token:?} {token} {:?} {:?} {:#?}",
            Credentials::Token(token.clone()),
            Credentials::AccessKey(key),
            Credentials::Iam(user)
        );
        for secret in [
            "MIIPAg",
            "VBSGWTESTAKID",
            "vbsGwTestSecretKey",
            "temporary-token",
            "correct horse",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert_eq!(token.expose(), "MIIPAgYJKoZIhvcNAQcCo");
    }

    #[test]
    fn scrubs_echoed_secrets() {
        let text = "Incorrect IAM authentication information: ak VBSGWTESTAKID0000001 not exist";
        assert_eq!(
            scrub(text, &["VBSGWTESTAKID0000001"]),
            "Incorrect IAM authentication information: ak <redacted> not exist"
        );
    }
}
