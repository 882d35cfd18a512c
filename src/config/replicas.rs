//! Where replicas share their state: a Redis server, and its password from a
//! file or the environment (never a URL that shows it in the process list).

use super::*;

/// The Redis server replicas share state through.
#[derive(Debug, Args)]
pub(crate) struct RedisArgs {
    /// Redis server shared by every replica: redis://HOST:PORT/DB, or
    /// rediss:// for TLS. Without it, all state stays in this process.
    #[arg(long, env = "VBS_REDIS_URL")]
    pub redis_url: Option<Url>,
    /// Password of the Redis server (better: --redis-password-file or the environment).
    #[arg(long, env = "VBS_REDIS_PASSWORD", hide_env_values = true)]
    pub redis_password: Option<String>,
    #[arg(long, env = "VBS_REDIS_PASSWORD_FILE")]
    pub redis_password_file: Option<PathBuf>,
    /// Prefix of every key the gateway writes, so that several deployments
    /// can share one Redis.
    #[arg(long, env = "VBS_REDIS_PREFIX", default_value = "vbs-gateway")]
    pub redis_prefix: String,
}

/// The Redis server replicas share state through.
#[derive(Debug, Clone)]
pub struct RedisConfig {
    /// redis:// or rediss://, without a password.
    pub url: Url,
    /// The server's password, if it has one.
    pub password: Option<Secret>,
    /// Prefix of every key the gateway writes.
    pub prefix: String,
}

impl RedisArgs {
    pub(super) fn to_config(&self) -> Result<Option<RedisConfig>, ConfigError> {
        let Some(url) = &self.redis_url else {
            if self.redis_password.is_some() || self.redis_password_file.is_some() {
                return Err(ConfigError::Redis("a Redis password needs --redis-url".into()));
            }
            return Ok(None);
        };
        if !matches!(url.scheme(), "redis" | "rediss") || url.host_str().is_none() {
            return Err(ConfigError::Redis(format!(
                "--redis-url {}: must be redis://HOST:PORT/DB or rediss://HOST:PORT/DB",
                url.scheme()
            )));
        }
        if url.password().is_some() {
            return Err(ConfigError::Redis(
                "--redis-url must not hold the password (any local user can read it): use --redis-password-file or VBS_REDIS_PASSWORD".into(),
            ));
        }
        let prefix_ok = !self.redis_prefix.is_empty()
            && self.redis_prefix.len() <= 64
            && self
                .redis_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if !prefix_ok {
            return Err(ConfigError::Redis(format!(
                "--redis-prefix {:?}: 1 to 64 letters, digits, '-', '_' or '.'",
                self.redis_prefix
            )));
        }
        let password = credentials::secret("redis-password", &self.redis_password, &self.redis_password_file)
            .map_err(ConfigError::Redis)?;
        Ok(Some(RedisConfig {
            url: url.clone(),
            password,
            prefix: self.redis_prefix.clone(),
        }))
    }
}
