//! The log of started operations in Redis, one sorted set per list, so
//! ListOperations on any replica lists the jobs every replica started. A
//! score is the time of the record in microseconds (Redis's clock, unique per
//! set), which also orders pages and ages entries out.

use std::sync::Arc;

use futures_util::future::{BoxFuture, FutureExt};
use redis::Script;

use super::RedisLink;
use crate::store::StoreError;
use crate::store::operations::{LogBounds, LogPage, Logged, OperationLog};

/// Adds the job with a score later than every other in the set, drops
/// entries past the age or count bound, and keeps the set no longer than
/// the age bound. ARGV: job id, max age in µs, entries kept.
const RECORD: &str = r"
local now = redis.call('TIME')
local score = tonumber(now[1]) * 1000000 + tonumber(now[2])
local newest = redis.call('ZREVRANGE', KEYS[1], 0, 0, 'WITHSCORES')
if newest[2] and tonumber(newest[2]) >= score then score = tonumber(newest[2]) + 1 end
redis.call('ZADD', KEYS[1], score, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', score - tonumber(ARGV[2]))
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -(tonumber(ARGV[3]) + 1))
redis.call('PEXPIRE', KEYS[1], math.floor(tonumber(ARGV[2]) / 1000))
return 1
";

/// Entries older than `before` (exclusive; '+inf' for the first page),
/// newest first, one more than asked so the caller learns whether more
/// follow; entries past the age bound are dropped first. ARGV: before, max
/// age in µs, count.
const PAGE: &str = r"
local now = redis.call('TIME')
local score = tonumber(now[1]) * 1000000 + tonumber(now[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', score - tonumber(ARGV[2]))
return redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[3]) + 1)
";

/// The operation log shared by replicas.
#[derive(Debug, Clone)]
pub(crate) struct RedisOperationLog {
    link: RedisLink,
    bounds: LogBounds,
    record: Arc<Script>,
    page: Arc<Script>,
}

impl RedisOperationLog {
    pub(crate) fn new(link: RedisLink, bounds: LogBounds) -> RedisOperationLog {
        RedisOperationLog {
            link,
            bounds,
            record: Arc::new(Script::new(RECORD)),
            page: Arc::new(Script::new(PAGE)),
        }
    }

    fn key(&self, list: &str) -> String {
        self.link.key(&["ops", list])
    }

    fn max_age_micros(&self) -> String {
        self.bounds.max_age.as_micros().to_string()
    }
}

impl OperationLog for RedisOperationLog {
    fn record<'a>(&'a self, list: &'a str, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let key = self.key(list);
            let args = [
                job_id.to_string(),
                self.max_age_micros(),
                self.bounds.per_list.to_string(),
            ];
            self.link.script::<i64, _>(&self.record, &[&key], &args).await?;
            Ok(())
        }
        .boxed()
    }

    fn page<'a>(
        &'a self,
        list: &'a str,
        before: Option<u64>,
        size: usize,
    ) -> BoxFuture<'a, Result<LogPage, StoreError>> {
        async move {
            let key = self.key(list);
            let before = before.map_or_else(|| "+inf".to_string(), |score| format!("({score}"));
            let args = [before, self.max_age_micros(), size.to_string()];
            let found: Vec<(String, u64)> = self.link.script(&self.page, &[&key], &args).await?;
            let more = found.len() > size;
            let page = found
                .into_iter()
                .take(size)
                .map(|(job_id, seq)| Logged { seq, job_id })
                .collect();
            Ok((page, more))
        }
        .boxed()
    }

    fn forget<'a>(&'a self, list: &'a str, job_id: &'a str) -> BoxFuture<'a, Result<(), StoreError>> {
        async move {
            let command = redis::cmd("ZREM").arg(self.key(list)).arg(job_id).clone();
            self.link.query::<i64>(&command).await?;
            Ok(())
        }
        .boxed()
    }
}
