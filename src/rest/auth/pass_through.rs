//! Pass-through mode: a caller's own token (its `x-auth-token` metadata) is
//! sent instead of the gateway's credentials, so the call runs with the
//! caller's rights; calls without one use the configured mode.

use futures_util::future::{self, BoxFuture};

use super::{Authorization, Authorizer, Outgoing, Rejection, bearer};
use crate::rest::error::RestError;
use crate::rest::iam::TokenStats;

/// The caller's token when it sent one, else the configured authorizer.
#[derive(Debug)]
pub(crate) struct PassThrough {
    configured: Box<dyn Authorizer>,
}

impl PassThrough {
    /// Falls back to `configured` for calls without a caller token.
    pub(crate) fn new(configured: Box<dyn Authorizer>) -> PassThrough {
        PassThrough { configured }
    }
}

impl Authorizer for PassThrough {
    fn authorize<'a>(&'a self, request: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Authorization, RestError>> {
        match request.caller_token {
            Some(token) => Box::pin(future::ready(bearer(request.operation, token.clone()))),
            None => self.configured.authorize(request),
        }
    }

    /// The gateway cannot renew a caller's token: that rejection is the caller's answer.
    fn on_rejection<'a>(&'a self, request: &'a Outgoing<'a>, sent: &'a Authorization) -> BoxFuture<'a, Rejection> {
        match request.caller_token {
            Some(_) => Box::pin(future::ready(Rejection::GiveUp)),
            None => self.configured.on_rejection(request, sent),
        }
    }

    /// The configured secrets; a caller's token is scrubbed as the one sent.
    fn secrets(&self) -> Vec<&str> {
        self.configured.secrets()
    }

    fn describe(&self) -> String {
        format!("caller tokens, else {}", self.configured.describe())
    }

    fn token_stats(&self) -> Option<TokenStats> {
        self.configured.token_stats()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::rest::auth::StaticToken;
    use crate::rest::auth::tests::{get, url};
    use crate::rest::credentials::Secret;

    /// A configured mode that renews, to see who answers a rejection.
    #[derive(Debug)]
    struct Renewing;

    impl Authorizer for Renewing {
        fn authorize<'a>(&'a self, request: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Authorization, RestError>> {
            Box::pin(future::ready(bearer(request.operation, Secret::new("gateway-token"))))
        }

        fn on_rejection<'a>(
            &'a self,
            _request: &'a Outgoing<'a>,
            _sent: &'a Authorization,
        ) -> BoxFuture<'a, Rejection> {
            Box::pin(future::ready(Rejection::SendAgain))
        }

        fn secrets(&self) -> Vec<&str> {
            vec!["gateway-password"]
        }

        fn describe(&self) -> String {
            "renewing tokens".into()
        }
    }

    #[tokio::test]
    async fn sends_the_callers_token_and_never_renews_it() {
        let authorizer = PassThrough::new(Box::new(Renewing));
        let (url, headers) = (url(), HeaderMap::new());
        let caller = Secret::new("caller-own-token");
        let request = get(&url, &headers, Some(&caller));
        let sent = authorizer.authorize(&request).await.unwrap();
        assert_eq!(sent.headers["x-auth-token"], "caller-own-token");
        assert!(sent.headers["x-auth-token"].is_sensitive());
        assert_eq!(sent.headers.len(), 1);
        assert_eq!(sent.token.as_ref(), Some(&caller), "scrubbed as the token sent");
        assert_eq!(authorizer.on_rejection(&request, &sent).await, Rejection::GiveUp);
    }

    #[tokio::test]
    async fn without_a_caller_token_the_configured_mode_answers() {
        let authorizer = PassThrough::new(Box::new(Renewing));
        let (url, headers) = (url(), HeaderMap::new());
        let request = get(&url, &headers, None);
        let sent = authorizer.authorize(&request).await.unwrap();
        assert_eq!(sent.headers["x-auth-token"], "gateway-token");
        assert_eq!(authorizer.on_rejection(&request, &sent).await, Rejection::SendAgain);
        assert_eq!(authorizer.secrets(), ["gateway-password"]);
        assert_eq!(authorizer.token_stats(), None);
    }

    #[tokio::test]
    async fn a_static_token_gives_way_to_the_callers() {
        let authorizer = PassThrough::new(Box::new(StaticToken::new(Secret::new("static-token-value"))));
        let (url, headers) = (url(), HeaderMap::new());
        let caller = Secret::new("caller-own-token");
        let sent = authorizer.authorize(&get(&url, &headers, Some(&caller))).await.unwrap();
        assert_eq!(sent.headers["x-auth-token"], "caller-own-token");
        assert_eq!(authorizer.secrets(), ["static-token-value"]);
    }
}
