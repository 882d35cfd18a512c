//! What both vector suites need: a request as the SDK sent it, owned so a
//! test can spoil one part before verifying it.

use std::time::Duration;

use apig_signer::{IncomingRequest, VerifyError, verify};
use chrono::{DateTime, Utc};

/// The clock skew the gateway's verifier allows in production.
const SKEW: Duration = Duration::from_secs(15 * 60);

/// The headers of a vector, as (name, value) pairs.
pub(crate) fn pairs_of(map: &serde_json::Map<String, serde_json::Value>) -> Vec<(String, String)> {
    map.iter()
        .map(|(name, value)| (name.clone(), value.as_str().expect("string header").to_owned()))
        .collect()
}

/// A request as the simulator would receive it.
#[derive(Clone)]
pub(crate) struct Received {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) query: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl Received {
    /// The request the SDK sent to `sent_url` (which starts with `scheme://host`).
    pub(crate) fn sent(
        method: &str,
        authority: &str,
        sent_url: &str,
        sent_headers: &serde_json::Map<String, serde_json::Value>,
        body: &str,
    ) -> Received {
        let rest = sent_url
            .strip_prefix(authority)
            .expect("sent_url starts with scheme://host");
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path.to_owned(), Some(query.to_owned())),
            None => (rest.to_owned(), None),
        };
        Received {
            method: method.to_owned(),
            path,
            query,
            headers: pairs_of(sent_headers),
            body: body.as_bytes().to_vec(),
        }
    }

    pub(crate) fn verify_with(&self, ak: &str, sk: &str, now: DateTime<Utc>) -> Result<String, VerifyError> {
        let request = IncomingRequest {
            method: &self.method,
            path: &self.path,
            raw_query: self.query.as_deref(),
            headers: &self.headers,
            body: &self.body,
        };
        verify(&request, |key| (key == ak).then(|| sk.to_owned()), now, SKEW)
    }

    pub(crate) fn set_header(&mut self, name: &str, value: &str) {
        let slot = self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .expect("header present");
        slot.1 = value.to_owned();
    }

    // Only the SDK-HMAC-SHA256 suite takes headers away.
    #[allow(dead_code)]
    pub(crate) fn remove_header(&mut self, name: &str) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
    }
}
