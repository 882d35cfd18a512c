//! ZStack account sessions: the gateway logs in with its account
//! (PUT /zstack/v1/accounts/login), sends the session as
//! `Authorization: OAuth {uuid}`, renews it before it expires by ZStack's own
//! clock, and once for all concurrent callers when ZStack rejects it.
//!
//! Shapes: the login body `{"logInByAccount": {"accountName", "password"}}`
//! with the password as SHA-512 hex, and the answer's SessionInventory
//! (`inventory.uuid`, `createDate`, `expiredDate`), as ZStack's API reference
//! shows its login calls (zstack.io Dev Guide, "LoginIAM2VirtualID" and
//! "LogInByAccount": `PUT zstack/v1/.../login`, answered `{"inventory": {"uuid"}}`).

use std::time::Duration;

use chrono::NaiveDateTime;
use futures_util::future::BoxFuture;
use http::{HeaderMap, header};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha512};
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::{Authorization, Authorizer, Outgoing, Rejection, secret_value};
use crate::rest::credentials::{Secret, ZStackAccount};
use crate::rest::error::RestError;
use crate::rest::iam::TokenStats;

/// Sessions whose lifetime ZStack does not state are renewed after this long.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(1800);
/// Renew this long before expiry at most.
const MAX_RENEWAL_LEAD: Duration = Duration::from_secs(300);
/// How ZStack writes dates: "Nov 14, 2017 10:20:57 PM".
pub(crate) const ZSTACK_DATE: &str = "%b %d, %Y %I:%M:%S %p";

struct Cached {
    session: Secret,
    renew_at: Instant,
}

/// Logs the account in and keeps its session.
pub(crate) struct ZStackSessions {
    http: reqwest::Client,
    account: ZStackAccount,
    /// The password as ZStack wants it (SHA-512 hex): a secret too.
    password_hash: Secret,
    timeout: Duration,
    cached: Mutex<Option<Cached>>,
    logins: std::sync::atomic::AtomicU64,
    failures: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for ZStackSessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ZStackSessions")
            .field("account", &self.account)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct LoginReply {
    inventory: SessionInventory,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SessionInventory {
    uuid: String,
    #[serde(default)]
    create_date: Option<String>,
    #[serde(default)]
    expired_date: Option<String>,
}

impl ZStackSessions {
    pub(crate) fn new(http: reqwest::Client, account: ZStackAccount, timeout: Duration) -> ZStackSessions {
        let password_hash = Secret::new(hex::encode(Sha512::digest(account.password.expose().as_bytes())));
        ZStackSessions {
            http,
            account,
            password_hash,
            timeout,
            cached: Mutex::new(None),
            logins: Default::default(),
            failures: Default::default(),
        }
    }

    /// A live session; callers that arrive during a login wait for it.
    async fn session(&self) -> Result<Secret, (String, bool)> {
        use std::sync::atomic::Ordering::Relaxed;
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(current.session.clone());
        }
        let fresh = self.log_in().await.inspect_err(|_| {
            self.failures.fetch_add(1, Relaxed);
        })?;
        self.logins.fetch_add(1, Relaxed);
        let session = fresh.session.clone();
        *cached = Some(fresh);
        Ok(session)
    }

    async fn invalidate(&self, rejected: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| &c.session == rejected) {
            *cached = None;
        }
    }

    /// One login; the error says why and whether ZStack refused the account.
    async fn log_in(&self) -> Result<Cached, (String, bool)> {
        let mut url = self.account.endpoint.clone();
        url.set_path(&format!(
            "{}/zstack/v1/accounts/login",
            url.path().trim_end_matches('/')
        ));
        let body = json!({
            "logInByAccount": {
                "accountName": self.account.account,
                "password": self.password_hash.expose(),
            }
        });
        let started = Instant::now();
        let response = self
            .http
            .put(url)
            .header(header::CONTENT_TYPE, "application/json;charset=UTF-8")
            .body(body.to_string())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| (format!("ZStack is unreachable: {}", e.without_url()), false))?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err((
                format!("ZStack answered HTTP {status} to the login"),
                matches!(status, 400 | 401 | 403 | 404),
            ));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| (format!("ZStack login answer unreadable: {}", e.without_url()), false))?;
        let reply: LoginReply = serde_json::from_slice(&body)
            .map_err(|_| ("ZStack login answer has no inventory.uuid".to_string(), false))?;
        let lifetime = lifetime(&reply.inventory);
        tracing::info!(lifetime_secs = lifetime.as_secs(), "logged in to ZStack");
        Ok(Cached {
            session: Secret::new(reply.inventory.uuid),
            renew_at: started + lifetime.saturating_sub((lifetime / 10).min(MAX_RENEWAL_LEAD)),
        })
    }
}

/// The session's lifetime by ZStack's own clock (created to expired).
fn lifetime(inventory: &SessionInventory) -> Duration {
    let date = |text: &Option<String>| {
        text.as_deref()
            .and_then(|t| NaiveDateTime::parse_from_str(t.trim(), ZSTACK_DATE).ok())
    };
    match (date(&inventory.create_date), date(&inventory.expired_date)) {
        (Some(created), Some(expired)) => (expired - created).to_std().unwrap_or_default(),
        _ => ASSUMED_LIFETIME,
    }
}

impl Authorizer for ZStackSessions {
    fn authorize<'a>(&'a self, request: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Authorization, RestError>> {
        let operation = request.operation;
        Box::pin(async move {
            let session = self
                .session()
                .await
                .map_err(|(detail, rejected)| RestError::Credentials {
                    operation,
                    detail,
                    rejected,
                })?;
            let mut headers = HeaderMap::new();
            let value = Secret::new(format!("OAuth {}", session.expose()));
            headers.insert(header::AUTHORIZATION, secret_value(operation, &value)?);
            Ok(Authorization {
                headers,
                token: Some(session),
            })
        })
    }

    /// An expired or revoked session (ZStack's ID.1001): log in again, once.
    fn on_rejection<'a>(&'a self, request: &'a Outgoing<'a>, sent: &'a Authorization) -> BoxFuture<'a, Rejection> {
        Box::pin(async move {
            let Some(session) = &sent.token else {
                return Rejection::GiveUp;
            };
            tracing::info!(operation = %request.operation, "ZStack rejected the session; logging in again");
            self.invalidate(session).await;
            Rejection::SendAgain
        })
    }

    fn secrets(&self) -> Vec<&str> {
        vec![self.account.password.expose(), self.password_hash.expose()]
    }

    fn describe(&self) -> String {
        "ZStack account sessions".into()
    }

    fn token_stats(&self) -> Option<TokenStats> {
        use std::sync::atomic::Ordering::Relaxed;
        Some(TokenStats {
            issued: self.logins.load(Relaxed),
            failures: self.failures.load(Relaxed),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::auth::tests::http;

    #[test]
    fn lifetime_follows_zstacks_clock() {
        let inventory = |created: &str, expired: &str| SessionInventory {
            uuid: "s".into(),
            create_date: Some(created.into()),
            expired_date: Some(expired.into()),
        };
        let two_hours = inventory("Nov 14, 2017 10:20:57 PM", "Nov 15, 2017 12:20:57 AM");
        assert_eq!(lifetime(&two_hours), Duration::from_secs(7200));
        let unreadable = inventory("yesterday", "tomorrow");
        assert_eq!(lifetime(&unreadable), ASSUMED_LIFETIME);
    }

    #[test]
    fn the_password_and_its_hash_stay_out_of_debug_and_are_scrubbed() {
        let account = ZStackAccount {
            endpoint: "http://zstack.example.com:8080".parse().unwrap(),
            account: "admin".into(),
            password: Secret::new("zstack-password-never-logged"),
        };
        let sessions = ZStackSessions::new(http(), account, Duration::from_secs(1));
        let shown = format!("{sessions:?}");
        assert!(!shown.contains("zstack-password") && !shown.contains(sessions.password_hash.expose()));
        assert_eq!(sessions.password_hash.expose().len(), 128, "SHA-512 hex");
        assert_eq!(sessions.secrets().len(), 2);
    }
}
