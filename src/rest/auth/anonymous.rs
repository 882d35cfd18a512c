//! No authentication, for an upstream that does not check (a simulator left open).

use futures_util::future::{self, BoxFuture};

use super::{Authorization, Authorizer, Outgoing, Rejection};
use crate::rest::error::RestError;

/// Sends requests as they are.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Anonymous;

impl Authorizer for Anonymous {
    fn authorize<'a>(&'a self, _request: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Authorization, RestError>> {
        Box::pin(future::ready(Ok(Authorization::default())))
    }

    fn on_rejection<'a>(&'a self, _request: &'a Outgoing<'a>, _sent: &'a Authorization) -> BoxFuture<'a, Rejection> {
        Box::pin(future::ready(Rejection::GiveUp))
    }

    fn secrets(&self) -> Vec<&str> {
        Vec::new()
    }

    fn describe(&self) -> String {
        "no credentials".into()
    }
}

#[cfg(test)]
mod tests {
    use http::HeaderMap;

    use super::*;
    use crate::rest::auth::tests::{get, url};

    #[tokio::test]
    async fn adds_nothing_and_gives_up_on_a_rejection() {
        let (url, headers) = (url(), HeaderMap::new());
        let request = get(&url, &headers, None);
        let sent = Anonymous.authorize(&request).await.unwrap();
        assert!(sent.headers.is_empty() && sent.token.is_none());
        assert_eq!(Anonymous.on_rejection(&request, &sent).await, Rejection::GiveUp);
        assert!(Anonymous.secrets().is_empty());
    }
}
