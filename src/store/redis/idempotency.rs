//! Idempotency records in Redis, shared by every replica: a claim is
//! `SET key <pending> NX PX <claim lifetime>`, the answer replaces it (only
//! while the claim is ours), and waiters on other replicas re-read the key.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::future::BoxFuture;
use redis::Script;
use tokio::time::Instant;

use super::RedisLink;
use crate::store::StoreError;
use crate::store::idempotency::{Answer, Begin, Fingerprint, IdempotencyStore, Pending};

/// Replaces our pending claim with the answer; when the claim has lapsed and
/// nobody took the id since, the answer is recorded all the same (a retry
/// had better find it). ARGV: our claim, the record, its lifetime in ms.
const FINISH: &str = r"
local current = redis.call('GET', KEYS[1])
if current == false or current == ARGV[1] then
    redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
    return 1
end
return 0
";

/// Deletes the key only while it still holds our claim. ARGV: our claim.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
    return redis.call('DEL', KEYS[1])
end
return 0
";

/// How often a waiter re-reads a claim held by another replica: quickly at
/// first (most writes answer in well under a second), then every 250 ms.
const FIRST_RECHECK: Duration = Duration::from_millis(10);
const LAST_RECHECK: Duration = Duration::from_millis(250);

/// Records of writes with a `request_id` in Redis.
///
/// A claim lives `claim_lifetime` (the longest a write may run: the default
/// deadline that bounds all its upstream attempts, plus the drain timeout of
/// a shutdown). A replica that dies mid-write leaves its claim behind; once
/// the claim lapses a retry claims the id and sends the write again. That
/// only happens when the first writer died, and it is the one case where the
/// write may reach VBS twice; before it lapses, retries wait (within their
/// deadline) rather than risk that.
#[derive(Debug, Clone)]
pub(crate) struct RedisIdempotencyStore {
    link: RedisLink,
    /// How long an answer is kept after its call began (--idempotency-ttl).
    ttl: Duration,
    claim_lifetime: Duration,
    /// The claims this process holds: the value it wrote, and when.
    claims: Arc<Mutex<HashMap<String, OurClaim>>>,
    finish: Arc<Script>,
    release: Arc<Script>,
}

#[derive(Debug, Clone)]
struct OurClaim {
    value: Vec<u8>,
    at: Instant,
}

impl RedisIdempotencyStore {
    /// Records on `link`, answers kept `ttl`, claims kept at most `claim_lifetime`.
    pub(crate) fn new(link: RedisLink, ttl: Duration, claim_lifetime: Duration) -> RedisIdempotencyStore {
        RedisIdempotencyStore {
            link,
            ttl,
            claim_lifetime: claim_lifetime.min(ttl),
            claims: Arc::default(),
            finish: Arc::new(Script::new(FINISH)),
            release: Arc::new(Script::new(RELEASE)),
        }
    }

    fn key(&self, request_id: &str) -> String {
        self.link.key(&["idem", request_id])
    }

    fn claims(&self) -> std::sync::MutexGuard<'_, HashMap<String, OurClaim>> {
        self.claims.lock().unwrap_or_else(PoisonError::into_inner)
    }

    async fn begin_now(&self, request_id: &str, fingerprint: Fingerprint) -> Result<Begin, StoreError> {
        let key = self.key(request_id);
        let claim = Record::Pending {
            fingerprint,
            token: uuid::Uuid::new_v4().into_bytes(),
        }
        .encode();
        // A record that lapses between our SET and GET is claimed on the next turn.
        for _ in 0..3 {
            let claimed: Option<String> = self
                .link
                .query(
                    redis::cmd("SET")
                        .arg(&key)
                        .arg(&claim)
                        .arg("NX")
                        .arg("PX")
                        .arg(millis(self.claim_lifetime)),
                )
                .await?;
            if claimed.is_some() {
                self.claims().insert(
                    request_id.to_string(),
                    OurClaim {
                        value: claim,
                        at: Instant::now(),
                    },
                );
                return Ok(Begin::New);
            }
            let current: Option<Vec<u8>> = self.link.query(redis::cmd("GET").arg(&key)).await?;
            let Some(current) = current else { continue };
            return Ok(match Record::decode(&current)? {
                record if record.fingerprint() != fingerprint => Begin::Reused,
                Record::Done { answer, .. } => Begin::Done(answer),
                Record::Pending { .. } => Begin::InFlight(self.wait_for(key, current, fingerprint)),
            });
        }
        Err(StoreError(
            "Redis: the request_id's record changed three times in a row".into(),
        ))
    }

    /// Re-reads `key` until the claim `seen` gives way: to its answer
    /// (`Some`), or to nothing or another claim (`None`: begin again).
    fn wait_for(&self, key: String, seen: Vec<u8>, waited_for: Fingerprint) -> Pending {
        let link = self.link.clone();
        Box::pin(async move {
            let mut pause = FIRST_RECHECK;
            loop {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(LAST_RECHECK);
                let current: Option<Vec<u8>> = link.query(redis::cmd("GET").arg(&key)).await.ok()?;
                let current = current?;
                if current == seen {
                    continue;
                }
                // Anything but the answer to this request: begin again, which
                // claims the id, waits for the new claim, or finds a reuse.
                return match Record::decode(&current).ok()? {
                    Record::Done { fingerprint, answer } if fingerprint == waited_for => Some(answer),
                    _ => None,
                };
            }
        })
    }

    async fn finish_now(&self, request_id: &str, answer: Answer) -> Result<(), StoreError> {
        let Some(claim) = self.claims().remove(request_id) else {
            return Ok(());
        };
        let Record::Pending { fingerprint, .. } = Record::decode(&claim.value)? else {
            return Ok(());
        };
        let record = Record::Done { fingerprint, answer }.encode();
        // The answer is kept --idempotency-ttl from the call's start, as in memory.
        let left = self
            .ttl
            .saturating_sub(claim.at.elapsed())
            .max(Duration::from_millis(1));
        let key = self.key(request_id);
        let lifetime = millis(left).to_string();
        let recorded: i64 = self
            .link
            .script(&self.finish, &[&key], &[&claim.value, &record, lifetime.as_bytes()])
            .await?;
        if recorded == 0 {
            tracing::warn!(
                claim_lifetime = ?self.claim_lifetime,
                "a write outlived its claim on its request_id and another call holds the id now; its answer is not recorded"
            );
        }
        Ok(())
    }

    async fn release_now(&self, request_id: &str) -> Result<(), StoreError> {
        let Some(claim) = self.claims().remove(request_id) else {
            return Ok(());
        };
        let key = self.key(request_id);
        let _: i64 = self.link.script(&self.release, &[&key], &[&claim.value]).await?;
        Ok(())
    }
}

impl IdempotencyStore for RedisIdempotencyStore {
    fn begin(&self, key: &str, fingerprint: Fingerprint) -> BoxFuture<'_, Result<Begin, StoreError>> {
        let key = key.to_string();
        Box::pin(async move { self.begin_now(&key, fingerprint).await })
    }

    fn finish(&self, key: &str, answer: Answer) -> BoxFuture<'_, Result<(), StoreError>> {
        let key = key.to_string();
        Box::pin(async move { self.finish_now(&key, answer).await })
    }

    fn release(&self, key: &str) -> BoxFuture<'_, Result<(), StoreError>> {
        let key = key.to_string();
        Box::pin(async move { self.release_now(&key).await })
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// What a key holds, as bytes: `P` + fingerprint + a claim token, or `D` +
/// fingerprint + the answer (`R` + reply, or `F` + code + message + details).
#[derive(Debug, PartialEq, Eq)]
enum Record {
    Pending { fingerprint: Fingerprint, token: [u8; 16] },
    Done { fingerprint: Fingerprint, answer: Answer },
}

impl Record {
    fn fingerprint(&self) -> Fingerprint {
        match self {
            Record::Pending { fingerprint, .. } | Record::Done { fingerprint, .. } => *fingerprint,
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        match self {
            Record::Pending { fingerprint, token } => {
                bytes.push(b'P');
                bytes.extend_from_slice(fingerprint.as_bytes());
                bytes.extend_from_slice(token);
            }
            Record::Done { fingerprint, answer } => {
                bytes.push(b'D');
                bytes.extend_from_slice(fingerprint.as_bytes());
                match answer {
                    Answer::Reply(reply) => {
                        bytes.push(b'R');
                        bytes.extend_from_slice(reply);
                    }
                    Answer::Failure { code, message, details } => {
                        bytes.push(b'F');
                        bytes.extend_from_slice(&code.to_be_bytes());
                        let length = u32::try_from(message.len()).unwrap_or(u32::MAX);
                        bytes.extend_from_slice(&length.to_be_bytes());
                        bytes.extend_from_slice(&message.as_bytes()[..length as usize]);
                        bytes.extend_from_slice(details);
                    }
                }
            }
        }
        bytes
    }

    fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
        let bad = || StoreError("Redis: an idempotency record this gateway cannot read".into());
        let (&kind, rest) = bytes.split_first().ok_or_else(bad)?;
        let (fingerprint, rest) = rest.split_first_chunk::<32>().ok_or_else(bad)?;
        let fingerprint = Fingerprint::from_bytes(*fingerprint);
        match kind {
            b'P' => Ok(Record::Pending {
                fingerprint,
                token: *rest.first_chunk::<16>().ok_or_else(bad)?,
            }),
            b'D' => {
                let (&answer_kind, rest) = rest.split_first().ok_or_else(bad)?;
                let answer = match answer_kind {
                    b'R' => Answer::Reply(rest.to_vec()),
                    b'F' => {
                        let (code, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
                        let (length, rest) = rest.split_first_chunk::<4>().ok_or_else(bad)?;
                        let length = u32::from_be_bytes(*length) as usize;
                        if rest.len() < length {
                            return Err(bad());
                        }
                        let (message, details) = rest.split_at(length);
                        Answer::Failure {
                            code: i32::from_be_bytes(*code),
                            message: String::from_utf8_lossy(message).into_owned(),
                            details: details.to_vec(),
                        }
                    }
                    _ => return Err(bad()),
                };
                Ok(Record::Done { fingerprint, answer })
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(text: &str) -> Fingerprint {
        Fingerprint::of("CreateBackup", "project", text.as_bytes())
    }

    #[test]
    fn records_read_back_as_written() {
        let records = [
            Record::Pending {
                fingerprint: print("a"),
                token: [7; 16],
            },
            Record::Done {
                fingerprint: print("b"),
                answer: Answer::Reply(vec![1, 2, 3]),
            },
            Record::Done {
                fingerprint: print("c"),
                answer: Answer::Failure {
                    code: 5,
                    message: "not found ü".into(),
                    details: vec![9, 8],
                },
            },
            Record::Done {
                fingerprint: print("d"),
                answer: Answer::Reply(vec![]),
            },
        ];
        for record in records {
            assert_eq!(Record::decode(&record.encode()).unwrap(), record);
        }
    }

    #[test]
    fn damaged_records_are_errors_not_panics() {
        let whole = Record::Done {
            fingerprint: print("c"),
            answer: Answer::Failure {
                code: 5,
                message: "gone".into(),
                details: vec![],
            },
        }
        .encode();
        for cut in 0..whole.len() - 4 {
            assert!(Record::decode(&whole[..cut]).is_err(), "{cut}");
        }
        assert!(Record::decode(b"X").is_err());
    }
}
