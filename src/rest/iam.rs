//! IAM tokens for the gateway's user: exchanged at POST {iam}/v3/auth/tokens
//! (the token comes in X-Subject-Token), cached, renewed before they expire,
//! and renewed once for all concurrent callers when VBS rejects one.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::credentials::{IamUser, ProjectScope, Secret};

/// Renew this long before expiry at most (tokens last 24 h).
const MAX_RENEWAL_LEAD: Duration = Duration::from_secs(3600);
/// Tokens whose expiry IAM does not state are renewed after this long.
const ASSUMED_LIFETIME: Duration = Duration::from_secs(3600);

/// Why no token could be had.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub(crate) struct TokenError {
    pub(crate) detail: String,
    /// IAM refused the user (wrong password, unknown user or project), as
    /// opposed to being unreachable or failing.
    pub(crate) rejected: bool,
}

/// Counts for operators: how often tokens were issued and how often that failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TokenStats {
    pub(crate) issued: u64,
    pub(crate) failures: u64,
}

struct Cached {
    token: Secret,
    renew_at: Instant,
}

/// The process's IAM token for one user; share it behind an Arc.
pub(crate) struct TokenSource {
    http: reqwest::Client,
    user: IamUser,
    timeout: Duration,
    cached: Mutex<Option<Cached>>,
    issued: AtomicU64,
    failures: AtomicU64,
}

impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSource")
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct IssuedBody {
    token: IssuedToken,
}

#[derive(Deserialize)]
struct IssuedToken {
    expires_at: Option<DateTime<Utc>>,
    issued_at: Option<DateTime<Utc>>,
}

impl TokenSource {
    pub(crate) fn new(http: reqwest::Client, user: IamUser, timeout: Duration) -> TokenSource {
        TokenSource {
            http,
            user,
            timeout,
            cached: Mutex::new(None),
            issued: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        }
    }

    pub(crate) fn stats(&self) -> TokenStats {
        TokenStats {
            issued: self.issued.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    /// A valid token. Callers that arrive while one is being issued wait for
    /// it instead of asking IAM themselves.
    pub(crate) async fn token(&self) -> Result<Secret, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(current) = cached.as_ref().filter(|c| Instant::now() < c.renew_at) {
            return Ok(current.token.clone());
        }
        let fresh = self.issue().await.inspect_err(|_| {
            self.failures.fetch_add(1, Ordering::Relaxed);
        })?;
        self.issued.fetch_add(1, Ordering::Relaxed);
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Drops `rejected` if it is still the cached token, so the next call gets
    /// a new one; a token already replaced by another caller is left alone.
    pub(crate) async fn invalidate(&self, rejected: &Secret) {
        let mut cached = self.cached.lock().await;
        if cached.as_ref().is_some_and(|c| &c.token == rejected) {
            *cached = None;
        }
    }

    async fn issue(&self) -> Result<Cached, TokenError> {
        let unreachable = |e: reqwest::Error| TokenError {
            detail: format!("IAM is unreachable: {}", e.without_url()),
            rejected: false,
        };
        let mut url = self.user.endpoint.clone();
        url.set_path(&format!("{}/v3/auth/tokens", url.path().trim_end_matches('/')));
        let started = Instant::now();
        let response = self
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(self.request_body().to_string())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status();
        if !status.is_success() {
            return Err(TokenError {
                detail: format!("IAM answered HTTP {} to the token request", status.as_u16()),
                rejected: matches!(status.as_u16(), 400 | 401 | 403 | 404),
            });
        }
        let token = response
            .headers()
            .get("x-subject-token")
            .and_then(|v| v.to_str().ok())
            .map(Secret::new)
            .ok_or_else(|| TokenError {
                detail: "IAM answered without an X-Subject-Token header".into(),
                rejected: false,
            })?;
        let body = response.bytes().await.map_err(unreachable)?;
        let lifetime = serde_json::from_slice::<IssuedBody>(&body).map_or(ASSUMED_LIFETIME, |b| lifetime(&b.token));
        tracing::info!(lifetime_secs = lifetime.as_secs(), "obtained an IAM token");
        Ok(Cached {
            token,
            renew_at: started + lifetime.saturating_sub(renewal_lead(lifetime)),
        })
    }

    fn request_body(&self) -> serde_json::Value {
        let project = match &self.user.project {
            ProjectScope::Name(name) => json!({ "name": name }),
            ProjectScope::Id(id) => json!({ "id": id }),
        };
        json!({
            "auth": {
                "identity": {
                    "methods": ["password"],
                    "password": {
                        "user": {
                            "name": self.user.user,
                            "password": self.user.password.expose(),
                            "domain": { "name": self.user.domain }
                        }
                    }
                },
                "scope": { "project": project }
            }
        })
    }
}

/// How long a token lives, by IAM's own clock (issued to expiry), so a skewed
/// local clock cannot make the gateway keep an expired token.
fn lifetime(token: &IssuedToken) -> Duration {
    let Some(expires_at) = token.expires_at else {
        return ASSUMED_LIFETIME;
    };
    let from = token.issued_at.unwrap_or_else(Utc::now);
    (expires_at - from).to_std().unwrap_or_default()
}

/// A tenth of the lifetime, at most an hour: renewal happens well before
/// expiry without throwing most of a short-lived token away.
fn renewal_lead(lifetime: Duration) -> Duration {
    (lifetime / 10).min(MAX_RENEWAL_LEAD)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(issued: &str, expires: &str) -> IssuedToken {
        IssuedToken {
            issued_at: Some(issued.parse().unwrap()),
            expires_at: Some(expires.parse().unwrap()),
        }
    }

    #[test]
    fn lifetime_follows_iams_clock() {
        let day = token("2026-11-23T10:00:00Z", "2026-11-24T10:00:00Z");
        assert_eq!(lifetime(&day), Duration::from_secs(86_400));
        assert_eq!(renewal_lead(lifetime(&day)), Duration::from_secs(3600));
        let short = token("2026-11-23T10:00:00Z", "2026-11-23T10:01:40Z");
        assert_eq!(renewal_lead(lifetime(&short)), Duration::from_secs(10));
        let backwards = token("2026-11-23T10:00:00Z", "2026-11-23T09:00:00Z");
        assert_eq!(lifetime(&backwards), Duration::ZERO);
    }
}
