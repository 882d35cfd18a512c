//! The one connection to Redis that every shared store uses, and what an
//! outage looks like from here: commands fail fast with `StoreError`, one
//! warning per outage, one line when Redis answers again.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig, PubSub};
use redis::{Cmd, FromRedisValue, IntoConnectionInfo, Script, ToRedisArgs};

use super::StoreError;

pub(crate) mod budget;
mod fleet;
pub(crate) mod idempotency;
pub(crate) mod operations;

pub(crate) use fleet::RedisFleet;

/// How long one command may wait for its answer; Redis answers in
/// microseconds, so a longer wait means it is gone.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(1);

/// A multiplexed connection to Redis that reconnects by itself, shared by
/// every store; cheap to clone.
#[derive(Clone)]
pub(crate) struct RedisLink {
    connection: ConnectionManager,
    /// For connections of their own (a subscriber can send nothing else).
    client: redis::Client,
    prefix: Arc<str>,
    up: Arc<AtomicBool>,
}

impl fmt::Debug for RedisLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLink")
            .field("prefix", &self.prefix)
            .field("up", &self.is_up())
            .finish()
    }
}

/// Why the Redis settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("--redis-url: {0}")]
pub(crate) struct RedisSetupError(String);

impl RedisLink {
    /// A link to the Redis server at `url` (redis:// or rediss://), whose keys
    /// all start with `prefix`. It connects on first use, so the
    /// gateway starts (and serves, unshared) while Redis is down.
    pub(crate) fn new(url: &str, password: Option<&str>, prefix: &str) -> Result<RedisLink, RedisSetupError> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut info = url.into_connection_info().map_err(|e| RedisSetupError(e.to_string()))?;
        if let Some(password) = password {
            let settings = info.redis_settings().clone().set_password(password);
            info = info.set_redis_settings(settings);
        }
        let client = redis::Client::open(info).map_err(|e| RedisSetupError(e.to_string()))?;
        let manager_config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|e| RedisSetupError(e.to_string()))?;
        Ok(RedisLink {
            connection,
            client,
            prefix: prefix.into(),
            up: Arc::new(AtomicBool::new(true)),
        })
    }

    /// The key `parts` under this deployment's prefix, e.g. `vbs-gateway:idem:<id>`.
    pub(crate) fn key(&self, parts: &[&str]) -> String {
        let mut key = self.prefix.to_string();
        for part in parts {
            key.push(':');
            key.push_str(part);
        }
        key
    }

    /// Whether the last command got an answer.
    pub(crate) fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// Sends one command.
    pub(crate) async fn query<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, StoreError> {
        let mut connection = self.connection.clone();
        let result = command.query_async(&mut connection).await;
        self.noted(result)
    }

    /// A connection of its own for SUBSCRIBE, within the connection timeout.
    pub(crate) async fn pubsub(&self) -> Result<PubSub, StoreError> {
        match tokio::time::timeout(CONNECTION_TIMEOUT + RESPONSE_TIMEOUT, self.client.get_async_pubsub()).await {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(error)) => Err(StoreError(format!("Redis: {error}"))),
            Err(_) => Err(StoreError("Redis: no connection in time".into())),
        }
    }

    /// Runs a Lua script (atomic on the server) with `keys` and `args`
    /// (text, or bytes for records that are not text).
    pub(crate) async fn script<T: FromRedisValue, A: ToRedisArgs>(
        &self,
        script: &Script,
        keys: &[&str],
        args: &[A],
    ) -> Result<T, StoreError> {
        let mut invocation = script.prepare_invoke();
        for key in keys {
            invocation.key(*key);
        }
        for arg in args {
            invocation.arg(arg);
        }
        let mut connection = self.connection.clone();
        let result = invocation.invoke_async(&mut connection).await;
        self.noted(result)
    }

    /// Tracks outages: a warning when the first command fails, a line when one
    /// answers again. Errors of a command Redis did answer (a bad script) are
    /// not outages.
    fn noted<T>(&self, result: redis::RedisResult<T>) -> Result<T, StoreError> {
        match result {
            Ok(value) => {
                if !self.up.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis answers again; state is shared with the other replicas");
                }
                Ok(value)
            }
            Err(error) => {
                let outage = error.is_io_error() || error.is_timeout() || error.is_connection_dropped();
                if outage && self.up.swap(false, Ordering::Relaxed) {
                    tracing::warn!(%error, "Redis is unreachable; watches poll locally and writes with a request_id fail until it answers");
                }
                Err(StoreError(format!("Redis: {error}")))
            }
        }
    }
}
