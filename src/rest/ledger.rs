//! What one RPC has sent upstream so far, kept per task: the RPC layer names
//! it when a call is cancelled or runs out of time, and the REST client notes
//! each request without knowing anything of gRPC.

use std::future::Future;
use std::sync::{Arc, Mutex};

use http::Method;

use super::Operation;

/// Requests named in full; later ones are only counted.
const NAMED_REQUESTS: usize = 8;

tokio::task_local! {
    static SENT: SentLedger;
}

/// The upstream requests of one RPC, shared between its task and its RPC layer.
#[derive(Debug, Clone, Default)]
pub(crate) struct SentLedger(Arc<Mutex<Sent>>);

#[derive(Debug, Default)]
struct Sent {
    named: Vec<String>,
    count: usize,
}

impl SentLedger {
    /// Runs `future` with this ledger noting what it sends upstream.
    pub(crate) fn scope<F: Future>(&self, future: F) -> impl Future<Output = F::Output> + use<F> {
        SENT.scope(self.clone(), future)
    }

    /// Runs `work` (one poll of a stream, say) with this ledger noting what it sends.
    pub(crate) fn sync_scope<R>(&self, work: impl FnOnce() -> R) -> R {
        SENT.sync_scope(self.clone(), work)
    }

    /// The ledger of the current task, if it keeps one: a task spawned for
    /// the RPC's work (a detached write) carries it on.
    pub(crate) fn current() -> Option<SentLedger> {
        SENT.try_with(SentLedger::clone).ok()
    }

    /// "nothing", or the requests sent, e.g. "POST /v2/p/cloudbackups (CreateBackup)".
    pub(crate) fn summary(&self) -> String {
        let sent = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if sent.count == 0 {
            return "nothing".to_string();
        }
        let mut text = sent.named.join(", ");
        if sent.count > sent.named.len() {
            text.push_str(&format!(" and {} more", sent.count - sent.named.len()));
        }
        text
    }

    fn push(&self, request: String) {
        let mut sent = self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        sent.count += 1;
        if sent.named.len() < NAMED_REQUESTS {
            sent.named.push(request);
        }
    }
}

/// Notes one request about to be sent, when the current task keeps a ledger.
pub(crate) fn note(operation: Operation, method: &Method, path: &str) {
    let _ = SENT.try_with(|ledger| ledger.push(format!("{method} {path} ({operation})")));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notes_what_is_sent_inside_its_scope_only() {
        let ledger = SentLedger::default();
        note(Operation::GetJob, &Method::GET, "/outside");
        assert_eq!(ledger.summary(), "nothing");
        ledger
            .scope(async {
                for _ in 0..10 {
                    note(Operation::CreateBackup, &Method::POST, "/v2/p/cloudbackups");
                }
            })
            .await;
        let summary = ledger.summary();
        assert!(
            summary.starts_with("POST /v2/p/cloudbackups (CreateBackup), "),
            "{summary}"
        );
        assert!(summary.ends_with(" and 2 more"), "{summary}");
    }
}
