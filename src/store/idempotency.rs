//! Records of writes sent with a `request_id` (AIP-155): who claimed an id,
//! for which request (its fingerprint), and what it answered. `IdempotencyStore`
//! is the interface; `MemoryStore` keeps records in this process, bounded by
//! age and by count (oldest evicted first).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sha2::{Digest, Sha256};
use tokio::sync::watch;
use tokio::time::Instant;

pub(crate) use super::StoreError;

/// What a write answered, as plain data any store can keep: the encoded
/// response message, or the error status in parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The response message, encoded (prost).
    Reply(Vec<u8>),
    /// The error: gRPC code, message and encoded details (google.rpc.Status).
    Failure {
        /// The gRPC code as its number.
        code: i32,
        /// The status message.
        message: String,
        /// The status details, as encoded by the error table.
        details: Vec<u8>,
    },
}

/// A hash of what a request asks for (method, project, request without its
/// `request_id`): the same id with another fingerprint is a reuse.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Fingerprint([u8; 32]);

impl Fingerprint {
    /// The fingerprint of `method` on `project` with the request's encoded bytes.
    pub(crate) fn of(method: &str, project: &str, request: &[u8]) -> Fingerprint {
        let mut hash = Sha256::new();
        // Lengths first, so no two different triples hash the same bytes.
        for part in [method.as_bytes(), project.as_bytes(), request] {
            hash.update((part.len() as u64).to_be_bytes());
            hash.update(part);
        }
        Fingerprint(hash.finalize().into())
    }

    /// The hash, for a store that keeps it elsewhere.
    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A hash read back from a store.
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Fingerprint {
        Fingerprint(bytes)
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let short: String = self.0[..6].iter().map(|b| format!("{b:02x}")).collect();
        write!(f, "Fingerprint({short}…)")
    }
}

/// Waits for the answer of a write still running elsewhere; `None` when that
/// write was given up before it was sent (the caller may claim the id again).
pub(crate) type Pending = BoxFuture<'static, Option<Answer>>;

/// What `begin` found for a request id.
pub(crate) enum Begin {
    /// Nobody has it: the caller now holds it and must `finish` or `release` it.
    New,
    /// A write with this id and fingerprint has answered.
    Done(Answer),
    /// A write with this id and fingerprint is running: wait for its answer.
    InFlight(Pending),
    /// The id was used for a different request.
    Reused,
}

impl fmt::Debug for Begin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Begin::New => f.write_str("New"),
            Begin::Done(answer) => f.debug_tuple("Done").field(answer).finish(),
            Begin::InFlight(_) => f.write_str("InFlight"),
            Begin::Reused => f.write_str("Reused"),
        }
    }
}

/// Where idempotency records live. A key is claimed by `begin` and then
/// either `finish`ed with its answer or `release`d when nothing was done
/// upstream, so the next call with that key runs again.
pub(crate) trait IdempotencyStore: Send + Sync + fmt::Debug {
    /// Claims `key` for a request with `fingerprint`, or says what became of
    /// the call that claimed it first.
    fn begin(&self, key: &str, fingerprint: Fingerprint) -> BoxFuture<'_, Result<Begin, StoreError>>;
    /// Records the answer of the call that holds `key`, and hands it to its waiters.
    fn finish(&self, key: &str, answer: Answer) -> BoxFuture<'_, Result<(), StoreError>>;
    /// Forgets a claim whose call did nothing upstream; waiters claim anew.
    fn release(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>>;
}

/// How long and how many records a store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Retention {
    /// How long a record is kept after its call began.
    pub(crate) ttl: Duration,
    /// The most records kept; the oldest go first.
    pub(crate) max_records: usize,
}

/// Records in this process's memory.
#[derive(Debug, Clone)]
pub(crate) struct MemoryStore {
    records: Arc<Mutex<Records>>,
    retention: Retention,
}

#[derive(Debug, Default)]
struct Records {
    by_key: HashMap<String, Record>,
    /// Keys in the order they were claimed, with their claim number; an entry
    /// whose number no longer matches its record is stale and skipped.
    order: VecDeque<(String, u64, Instant)>,
    next_claim: u64,
}

#[derive(Debug)]
struct Record {
    fingerprint: Fingerprint,
    claim: u64,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Sends `Some(answer)` when the call finishes; dropped on release.
    Running(watch::Sender<Option<Answer>>),
    Done(Answer),
}

impl MemoryStore {
    /// An empty store keeping records as `retention` says.
    pub(crate) fn new(retention: Retention) -> MemoryStore {
        MemoryStore {
            records: Arc::default(),
            retention,
        }
    }

    fn records(&self) -> MutexGuard<'_, Records> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn begin_now(&self, key: &str, fingerprint: Fingerprint) -> Begin {
        let mut records = self.records();
        records.forget_old(Instant::now(), self.retention);
        if let Some(record) = records.by_key.get(key) {
            if record.fingerprint != fingerprint {
                return Begin::Reused;
            }
            return match &record.state {
                State::Done(answer) => Begin::Done(answer.clone()),
                State::Running(sender) => Begin::InFlight(wait(sender.subscribe())),
            };
        }
        while records.by_key.len() >= self.retention.max_records.max(1) {
            if !records.evict_oldest() {
                break;
            }
        }
        let claim = records.next_claim;
        records.next_claim += 1;
        records.order.push_back((key.to_string(), claim, Instant::now()));
        let (sender, _) = watch::channel(None);
        records.by_key.insert(
            key.to_string(),
            Record {
                fingerprint,
                claim,
                state: State::Running(sender),
            },
        );
        Begin::New
    }

    fn finish_now(&self, key: &str, answer: Answer) {
        let mut records = self.records();
        if let Some(record) = records.by_key.get_mut(key)
            && let State::Running(sender) = &record.state
        {
            sender.send_replace(Some(answer.clone()));
            record.state = State::Done(answer);
        }
    }

    fn release_now(&self, key: &str) {
        let mut records = self.records();
        if matches!(
            records.by_key.get(key),
            Some(Record {
                state: State::Running(_),
                ..
            })
        ) {
            // Dropping the sender tells the waiters to claim the id themselves.
            records.by_key.remove(key);
        }
    }

    /// How many records are kept now (for tests).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.records().by_key.len()
    }
}

impl Records {
    fn forget_old(&mut self, now: Instant, retention: Retention) {
        while let Some((_, _, claimed)) = self.order.front() {
            if now.saturating_duration_since(*claimed) < retention.ttl {
                break;
            }
            self.evict_oldest();
        }
    }

    /// Drops the oldest record; false when there is none.
    fn evict_oldest(&mut self) -> bool {
        while let Some((key, claim, _)) = self.order.pop_front() {
            if self.by_key.get(&key).is_some_and(|r| r.claim == claim) {
                self.by_key.remove(&key);
                return true;
            }
        }
        false
    }
}

fn wait(mut answers: watch::Receiver<Option<Answer>>) -> Pending {
    Box::pin(async move {
        let answer = answers.wait_for(Option::is_some).await.ok()?;
        answer.clone()
    })
}

impl IdempotencyStore for MemoryStore {
    fn begin(&self, key: &str, fingerprint: Fingerprint) -> BoxFuture<'_, Result<Begin, StoreError>> {
        let begun = self.begin_now(key, fingerprint);
        Box::pin(async move { Ok(begun) })
    }

    fn finish(&self, key: &str, answer: Answer) -> BoxFuture<'_, Result<(), StoreError>> {
        self.finish_now(key, answer);
        Box::pin(async { Ok(()) })
    }

    fn release(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>> {
        self.release_now(key);
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Retention = Retention {
        ttl: Duration::from_secs(86_400),
        max_records: 100,
    };

    fn print(text: &str) -> Fingerprint {
        Fingerprint::of("CreateBackup", "project", text.as_bytes())
    }

    async fn begin(store: &MemoryStore, key: &str, text: &str) -> Begin {
        store.begin(key, print(text)).await.unwrap()
    }

    #[tokio::test]
    async fn a_finished_call_is_replayed_to_the_same_request_only() {
        let store = MemoryStore::new(DAY);
        assert!(matches!(begin(&store, "k", "a").await, Begin::New));
        store.finish("k", Answer::Reply(vec![1, 2])).await.unwrap();
        assert!(matches!(begin(&store, "k", "a").await, Begin::Done(Answer::Reply(b)) if b == [1, 2]));
        assert!(matches!(begin(&store, "k", "b").await, Begin::Reused));
        assert!(matches!(begin(&store, "other", "a").await, Begin::New));
    }

    #[tokio::test]
    async fn waiters_get_the_answer_of_the_call_in_flight() {
        let store = MemoryStore::new(DAY);
        assert!(matches!(begin(&store, "k", "a").await, Begin::New));
        let Begin::InFlight(pending) = begin(&store, "k", "a").await else {
            panic!("expected in flight");
        };
        store.finish("k", Answer::Reply(vec![7])).await.unwrap();
        assert_eq!(pending.await, Some(Answer::Reply(vec![7])));
    }

    #[tokio::test]
    async fn a_released_claim_lets_the_waiters_claim_again() {
        let store = MemoryStore::new(DAY);
        assert!(matches!(begin(&store, "k", "a").await, Begin::New));
        let Begin::InFlight(pending) = begin(&store, "k", "a").await else {
            panic!("expected in flight");
        };
        store.release("k").await.unwrap();
        assert_eq!(pending.await, None);
        assert!(matches!(begin(&store, "k", "a").await, Begin::New));
    }

    #[tokio::test(start_paused = true)]
    async fn records_expire_after_the_ttl() {
        let store = MemoryStore::new(Retention {
            ttl: Duration::from_secs(60),
            max_records: 100,
        });
        assert!(matches!(begin(&store, "k", "a").await, Begin::New));
        store.finish("k", Answer::Reply(vec![])).await.unwrap();
        tokio::time::advance(Duration::from_secs(59)).await;
        assert!(matches!(begin(&store, "k", "a").await, Begin::Done(_)));
        tokio::time::advance(Duration::from_secs(2)).await;
        assert!(matches!(begin(&store, "k", "a").await, Begin::New));
    }

    #[tokio::test]
    async fn the_oldest_records_go_first_when_full() {
        let store = MemoryStore::new(Retention {
            ttl: Duration::from_secs(60),
            max_records: 2,
        });
        for key in ["first", "second", "third"] {
            assert!(matches!(begin(&store, key, "a").await, Begin::New));
            store.finish(key, Answer::Reply(vec![])).await.unwrap();
        }
        assert_eq!(store.len(), 2);
        assert!(matches!(begin(&store, "third", "a").await, Begin::Done(_)));
        assert!(matches!(begin(&store, "first", "a").await, Begin::New));
    }

    #[test]
    fn fingerprints_tell_method_project_and_request_apart() {
        let base = Fingerprint::of("CreateBackup", "p", b"x");
        assert_eq!(base, Fingerprint::of("CreateBackup", "p", b"x"));
        assert_ne!(base, Fingerprint::of("DeleteBackup", "p", b"x"));
        assert_ne!(base, Fingerprint::of("CreateBackup", "q", b"x"));
        assert_ne!(base, Fingerprint::of("CreateBackup", "p", b"y"));
        assert_ne!(Fingerprint::of("ab", "c", b""), Fingerprint::of("a", "bc", b""));
    }
}
