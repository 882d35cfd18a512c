//! Static-token mode: one configured IAM token sent as X-Auth-Token on every
//! request. The gateway cannot renew it, so a rejection is final.

use futures_util::future::{self, BoxFuture};

use super::{Authorization, Authorizer, Outgoing, Rejection, bearer};
use crate::rest::credentials::Secret;
use crate::rest::error::RestError;

/// Sends the configured token.
#[derive(Debug, Clone)]
pub(crate) struct StaticToken {
    token: Secret,
}

impl StaticToken {
    /// Sends `token` with every request.
    pub(crate) fn new(token: Secret) -> StaticToken {
        StaticToken { token }
    }
}

impl Authorizer for StaticToken {
    fn authorize<'a>(&'a self, request: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Authorization, RestError>> {
        Box::pin(future::ready(bearer(request.operation, self.token.clone())))
    }

    fn on_rejection<'a>(&'a self, _request: &'a Outgoing<'a>, _sent: &'a Authorization) -> BoxFuture<'a, Rejection> {
        Box::pin(future::ready(Rejection::GiveUp))
    }

    fn secrets(&self) -> Vec<&str> {
        vec![self.token.expose()]
    }

    fn describe(&self) -> String {
        "static token".into()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::rest::auth::tests::{get, url};

    #[tokio::test]
    async fn sends_its_token_and_gives_up_on_a_rejection() {
        let authorizer = StaticToken::new(Secret::new("static-token-value"));
        let (url, headers) = (url(), HeaderMap::new());
        let request = get(&url, &headers, None);
        let sent = authorizer.authorize(&request).await.unwrap();
        assert_eq!(sent.headers.len(), 1);
        assert_eq!(sent.headers["x-auth-token"], "static-token-value");
        assert!(sent.headers["x-auth-token"].is_sensitive());
        assert_eq!(sent.token.as_ref().map(Secret::expose), Some("static-token-value"));
        assert_eq!(authorizer.on_rejection(&request, &sent).await, Rejection::GiveUp);
        assert_eq!(authorizer.secrets(), ["static-token-value"]);
        assert!(!format!("{authorizer:?}").contains("static-token-value"));
    }
}
