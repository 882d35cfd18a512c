//! How long and how many answers of writes sent with a `request_id` are kept.

use super::*;

/// How long and how many answers of writes sent with a `request_id` are kept.
#[derive(Debug, Args)]
pub(crate) struct IdempotencyArgs {
    /// How long the answer of a write sent with a request_id is kept for
    /// retries with the same id.
    #[arg(long = "idempotency-ttl", env = "VBS_IDEMPOTENCY_TTL", default_value = "24h", value_parser = parse_duration)]
    pub ttl: Duration,
    /// The most answers kept; the oldest are forgotten first.
    #[arg(long = "idempotency-max-records", env = "VBS_IDEMPOTENCY_MAX_RECORDS", default_value = "100000",
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub max_records: u64,
}

impl IdempotencyArgs {
    pub(super) fn to_config(&self) -> Result<IdempotencyConfig, ConfigError> {
        if self.ttl.is_zero() {
            return Err(ConfigError::ZeroIdempotencyTtl);
        }
        Ok(IdempotencyConfig {
            ttl: self.ttl,
            max_records: usize::try_from(self.max_records).unwrap_or(usize::MAX),
        })
    }
}

/// How writes sent with a `request_id` are remembered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdempotencyConfig {
    /// How long an answer is kept.
    pub ttl: Duration,
    /// The most answers kept; the oldest are forgotten first.
    pub max_records: usize,
}

impl Default for IdempotencyConfig {
    fn default() -> Self {
        IdempotencyConfig {
            ttl: Duration::from_secs(24 * 3600),
            max_records: 100_000,
        }
    }
}
