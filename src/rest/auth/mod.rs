//! Upstream authentication behind one trait: each credential mode authorizes an
//! outgoing request, says whether a rejected one is worth sending again, and
//! names the secrets to scrub from upstream text. `for_credentials` picks the mode.

mod access_key;
mod anonymous;
mod iam_tokens;
mod pass_through;
mod static_token;
mod zstack_session;

use std::fmt;
use std::time::Duration;

use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Method};
use reqwest::Url;

use super::Operation;
use super::credentials::{Credentials, Secret};
use super::error::RestError;
use super::iam::TokenStats;

pub(crate) use access_key::AccessKeySignature;
pub(crate) use anonymous::Anonymous;
pub(crate) use iam_tokens::IamTokens;
pub(crate) use pass_through::PassThrough;
pub(crate) use static_token::StaticToken;
pub(crate) use zstack_session::{ZSTACK_DATE, ZStackSessions};

/// Header of a bearer token (the gateway's, or a caller's own).
const AUTH_TOKEN: &str = "x-auth-token";

/// One request as it will be sent, before its authorization: everything a
/// signature covers, and the caller's own token.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Outgoing<'a> {
    pub(crate) operation: Operation,
    pub(crate) method: &'a Method,
    /// Endpoint, encoded path and canonical query, exactly as sent.
    pub(crate) url: &'a Url,
    /// The decoded query pairs the URL carries.
    pub(crate) query: &'a [(String, String)],
    /// Headers already set (content type, project); sent unchanged.
    pub(crate) headers: &'a HeaderMap,
    /// The exact body bytes, when there is a body.
    pub(crate) body: Option<&'a [u8]>,
    /// The caller's own token; only set when pass-through is on.
    pub(crate) caller_token: Option<&'a Secret>,
}

/// What one attempt carries to say who sends it.
#[derive(Debug, Default)]
pub(crate) struct Authorization {
    /// Headers to add to the request; secret values are marked sensitive.
    pub(crate) headers: HeaderMap,
    /// The bearer token sent, if any: what a rejection refers to, and one
    /// more secret to scrub from the answer.
    pub(crate) token: Option<Secret>,
}

/// An authorizer's answer when upstream rejected an attempt's credentials (401).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The rejected credentials were dropped and fresh ones will be had: send again.
    SendAgain,
    /// Sending again would send the same thing: the rejection is final.
    GiveUp,
}

/// One way of authenticating upstream calls.
pub(crate) trait Authorizer: fmt::Debug + Send + Sync {
    /// The headers that authorize this request, computed over exactly what is sent.
    fn authorize<'a>(&'a self, request: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Authorization, RestError>>;

    /// Upstream answered 401 to `request` sent with `sent`.
    fn on_rejection<'a>(&'a self, request: &'a Outgoing<'a>, sent: &'a Authorization) -> BoxFuture<'a, Rejection>;

    /// The configured secret values, to scrub from upstream text.
    fn secrets(&self) -> Vec<&str>;

    /// The mode in a few words, never a secret ("AK/SK signatures (SDK-HMAC-SHA256)").
    fn describe(&self) -> String;

    /// How often tokens were obtained, for modes that obtain them.
    fn token_stats(&self) -> Option<TokenStats> {
        None
    }
}

/// The authorizer for the configured credentials: the one place a credential
/// mode becomes behaviour. With `pass_through`, a caller's own token goes
/// first. IAM tokens are fetched with `http` within `timeout`.
pub(crate) fn for_credentials(
    credentials: Credentials,
    pass_through: bool,
    http: &reqwest::Client,
    timeout: Duration,
) -> Box<dyn Authorizer> {
    let configured: Box<dyn Authorizer> = match credentials {
        Credentials::Anonymous => Box::new(Anonymous),
        Credentials::Token(token) => Box::new(StaticToken::new(token)),
        Credentials::AccessKey(key) => Box::new(AccessKeySignature::new(key)),
        Credentials::Iam(user) => Box::new(IamTokens::new(http.clone(), user, timeout)),
        Credentials::ZStack(account) => Box::new(ZStackSessions::new(http.clone(), account, timeout)),
    };
    if pass_through {
        Box::new(PassThrough::new(configured))
    } else {
        configured
    }
}

/// An authorization by bearer token, sent as X-Auth-Token.
fn bearer(operation: Operation, token: Secret) -> Result<Authorization, RestError> {
    let mut headers = HeaderMap::new();
    headers.insert(AUTH_TOKEN, secret_value(operation, &token)?);
    Ok(Authorization {
        headers,
        token: Some(token),
    })
}

/// A header value the HTTP stack never prints (its Debug shows "Sensitive").
pub(crate) fn secret_value(operation: Operation, secret: &Secret) -> Result<HeaderValue, RestError> {
    let mut value = header_value(operation, secret.expose())?;
    value.set_sensitive(true);
    Ok(value)
}

/// A header value, or the build error that names the call.
pub(crate) fn header_value(operation: Operation, value: &str) -> Result<HeaderValue, RestError> {
    HeaderValue::from_str(value).map_err(|_| RestError::Build {
        operation,
        detail: "a header value has characters HTTP does not allow".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::credentials::{AccessKey, IamUser, Signing};

    /// A GET of the backups list for `headers` and, in pass-through, a caller token.
    pub(super) fn get<'a>(url: &'a Url, headers: &'a HeaderMap, caller_token: Option<&'a Secret>) -> Outgoing<'a> {
        Outgoing {
            operation: Operation::ListBackups,
            method: &Method::GET,
            url,
            query: &[],
            headers,
            body: None,
            caller_token,
        }
    }

    /// A client for authorizers that hold one; none of these tests sends with it.
    pub(super) fn http() -> reqwest::Client {
        // rustls needs one process-wide crypto provider, as Transport::new installs.
        let _ = rustls::crypto::ring::default_provider().install_default();
        reqwest::Client::new()
    }

    pub(super) fn url() -> Url {
        "https://vbs.example.com/v2/0123/backups".parse().unwrap()
    }

    #[test]
    fn each_configured_mode_becomes_its_authorizer() {
        let http = http();
        let make = |credentials, pass_through| {
            for_credentials(credentials, pass_through, &http, Duration::from_secs(1)).describe()
        };
        let key = AccessKey {
            access_key: Secret::new("AKAKAKAK"),
            secret_key: Secret::new("SKSKSKSK"),
            security_token: None,
            signing: Signing::default(),
        };
        let user = IamUser::example();
        assert_eq!(make(Credentials::Anonymous, false), "no credentials");
        assert_eq!(make(Credentials::Token(Secret::new("t0k3n")), false), "static token");
        assert_eq!(
            make(Credentials::AccessKey(key.clone()), false),
            "AK/SK signatures (SDK-HMAC-SHA256)"
        );
        assert_eq!(make(Credentials::Iam(user), false), "IAM tokens");
        assert_eq!(
            make(Credentials::AccessKey(key), true),
            "caller tokens, else AK/SK signatures (SDK-HMAC-SHA256)"
        );
    }

    #[test]
    fn bearer_tokens_are_sensitive_headers() {
        let authorization = bearer(Operation::GetJob, Secret::new("t0k3n-value")).unwrap();
        let value = &authorization.headers[AUTH_TOKEN];
        assert_eq!(value, "t0k3n-value");
        assert!(value.is_sensitive());
        assert!(!format!("{authorization:?}").contains("t0k3n"));
        assert!(header_value(Operation::GetJob, "line\nbreak").is_err());
    }
}
