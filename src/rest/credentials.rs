//! The gateway's upstream credentials as configured (AK/SK, an IAM user, a
//! static token; `rest::auth` turns them into an authorizer) and the `Secret`
//! wrapper that keeps keys, passwords and tokens out of logs, errors and Debug.

use reqwest::Url;

use apig_signer::Scheme;
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
    /// Which of the SDKs' HMAC schemes signs the requests.
    pub signing: Signing,
}

/// How AK/SK requests are signed (`--signing-algorithm`), with what the
/// scheme needs besides the key pair.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Signing {
    /// SDK-HMAC-SHA256: HMAC-SHA256 keyed with the SK, the SDKs' default.
    #[default]
    SdkHmacSha256,
    /// V11-HMAC-SHA256: HMAC-SHA256 keyed with a key derived (HKDF) from the
    /// key pair for one day, region and service.
    V11HmacSha256 {
        /// Region id in the key's scope, e.g. `eu-de`.
        region: String,
        /// Service name in the key's scope, e.g. `vbs`.
        service: String,
    },
    /// SDK-HMAC-SM3: HMAC-SM3 keyed with the SK, SM3 for every hash.
    SdkHmacSm3,
}

impl Signing {
    /// The signer's view of this choice.
    pub(crate) fn scheme(&self) -> Scheme<'_> {
        match self {
            Signing::SdkHmacSha256 => Scheme::SdkHmacSha256,
            Signing::V11HmacSha256 { region, service } => Scheme::V11HmacSha256 { region, service },
            Signing::SdkHmacSm3 => Scheme::SdkHmacSm3,
        }
    }
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

/// A ZStack account the gateway logs in with for sessions.
#[derive(Debug, Clone)]
pub struct ZStackAccount {
    /// The ZStack management node, e.g. `http://zstack.example.com:8080`.
    pub endpoint: Url,
    /// The account's name.
    pub account: String,
    /// The account's password; sent only as its SHA-512 hex digest.
    pub password: Secret,
}

/// How the gateway authenticates its upstream calls.
#[derive(Debug, Clone)]
pub enum Credentials {
    /// No authentication (an upstream that does not check).
    Anonymous,
    /// A fixed token sent as X-Auth-Token.
    Token(Secret),
    /// AK/SK signatures (SDK-HMAC-SHA256, V11-HMAC-SHA256 or SDK-HMAC-SM3).
    AccessKey(AccessKey),
    /// Tokens issued by IAM for this user, cached and refreshed.
    Iam(IamUser),
    /// Sessions of a ZStack account, logged in and renewed (ZStack only).
    ZStack(ZStackAccount),
}

/// Secrets shorter than this are not scrubbed: they would match ordinary words.
const SHORTEST_SCRUBBED_SECRET: usize = 4;
/// An echo of a secret's first this many characters is scrubbed too: upstream
/// messages cut tokens short.
const SHORTEST_SCRUBBED_PREFIX: usize = 8;
const REDACTED: &str = "<redacted>";

/// Replaces every occurrence of a secret in `text` (an upstream error message,
/// say) by a placeholder, so upstream echoes never carry them further. Matches
/// ignore ASCII case (services upper- or lower-case what they echo), and a
/// prefix of a secret of 8 characters or more counts as the secret.
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    secrets
        .iter()
        .filter(|s| s.len() >= SHORTEST_SCRUBBED_SECRET)
        .fold(text.to_string(), |text, secret| scrub_one(&text, secret))
}

fn scrub_one(text: &str, secret: &str) -> String {
    let shortest = secret.len().min(SHORTEST_SCRUBBED_PREFIX);
    let (text_bytes, secret_bytes) = (text.as_bytes(), secret.as_bytes());
    let mut scrubbed = String::with_capacity(text.len());
    let mut kept_from = 0;
    let mut at = 0;
    while at < text.len() {
        let mut matched = text_bytes[at..]
            .iter()
            .zip(secret_bytes)
            .take_while(|(a, b)| a.eq_ignore_ascii_case(b))
            .count();
        while !text.is_char_boundary(at + matched) {
            matched -= 1;
        }
        if matched >= shortest {
            scrubbed.push_str(&text[kept_from..at]);
            scrubbed.push_str(REDACTED);
            at += matched;
            kept_from = at;
        } else {
            at += text[at..].chars().next().map_or(1, char::len_utf8);
        }
    }
    scrubbed.push_str(&text[kept_from..]);
    scrubbed
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
            signing: Signing::SdkHmacSm3,
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

    #[test]
    fn scrubs_secrets_in_any_case() {
        let token = "MIIPAgYJKoZIhvcNAQcCo";
        assert_eq!(
            scrub("token miipagyjkozihvcnaqcco bad", &[token]),
            "token <redacted> bad"
        );
        assert_eq!(scrub("TOKEN=MIIPAGYJKOZIHVCNAQCCO", &[token]), "TOKEN=<redacted>");
    }

    #[test]
    fn scrubs_echoed_prefixes_of_eight_characters_or_more() {
        let token = "MIIPAgYJKoZIhvcNAQcCo";
        assert_eq!(
            scrub("token MIIPAgYJ... is expired", &[token]),
            "token <redacted>... is expired"
        );
        assert_eq!(scrub("token miipagyjko…", &[token]), "token <redacted>…");
        assert_eq!(
            scrub("token MIIPAgY is short", &[token]),
            "token MIIPAgY is short",
            "7 characters stay"
        );
        assert_eq!(
            scrub("a MIIPAgYJ b MIIPAgYJKo c", &[token]),
            "a <redacted> b <redacted> c"
        );
        assert_eq!(
            scrub("key abcd!", &["abcd"]),
            "key <redacted>!",
            "a short secret only in full"
        );
        assert_eq!(scrub("key abc", &["abcd"]), "key abc");
        assert_eq!(scrub("é MIIPAgYJé", &[token]), "é <redacted>é");
        assert_eq!(scrub("nothing here", &[]), "nothing here");
    }
}
