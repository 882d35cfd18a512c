//! IAM-password mode: the gateway's IAM user is exchanged for a cached token
//! (rest/iam.rs) sent as X-Auth-Token. A rejected token is dropped once, and
//! the request goes again with a fresh one.

use std::time::Duration;

use futures_util::future::BoxFuture;

use super::{Authorization, Authorizer, Outgoing, Rejection, bearer};
use crate::rest::credentials::{IamUser, Secret};
use crate::rest::error::RestError;
use crate::rest::iam::{TokenSource, TokenStats};

/// Sends the IAM user's current token.
#[derive(Debug)]
pub(crate) struct IamTokens {
    source: TokenSource,
    /// Kept to scrub: an upstream echo of the token request must not carry it.
    password: Secret,
}

impl IamTokens {
    /// Tokens for `user`, fetched with `http` within `timeout`.
    pub(crate) fn new(http: reqwest::Client, user: IamUser, timeout: Duration) -> IamTokens {
        IamTokens {
            password: user.password.clone(),
            source: TokenSource::new(http, user, timeout),
        }
    }
}

impl Authorizer for IamTokens {
    fn authorize<'a>(&'a self, request: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Authorization, RestError>> {
        let operation = request.operation;
        Box::pin(async move {
            let token = self.source.token().await.map_err(|e| RestError::Credentials {
                operation,
                detail: e.detail,
                rejected: e.rejected,
            })?;
            bearer(operation, token)
        })
    }

    /// VBS no longer takes the token (revoked, or expired early by its
    /// clock): drop it, so the next attempt gets a new one.
    fn on_rejection<'a>(&'a self, request: &'a Outgoing<'a>, sent: &'a Authorization) -> BoxFuture<'a, Rejection> {
        Box::pin(async move {
            let Some(token) = &sent.token else {
                return Rejection::GiveUp;
            };
            tracing::info!(operation = %request.operation, "upstream rejected the IAM token; renewing it");
            self.source.invalidate(token).await;
            Rejection::SendAgain
        })
    }

    fn secrets(&self) -> Vec<&str> {
        vec![self.password.expose()]
    }

    fn describe(&self) -> String {
        "IAM tokens".into()
    }

    fn token_stats(&self) -> Option<TokenStats> {
        Some(self.source.stats())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rest::auth::tests::http;

    /// Issuing tokens needs an IAM (tests/e2e/auth.rs and tests/e2e_iam.rs run
    /// one); what needs none is checked here.
    #[test]
    fn scrubs_the_password_and_counts_no_token_yet() {
        let user = IamUser::example();
        let authorizer = IamTokens::new(http(), user, Duration::from_secs(1));
        assert_eq!(authorizer.secrets(), ["correct horse battery"]);
        assert_eq!(authorizer.token_stats(), Some(TokenStats::default()));
        assert!(!format!("{authorizer:?}").contains("correct horse"));
    }
}
