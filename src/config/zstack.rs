//! ZStack's endpoint and the account the gateway logs in with; the password
//! comes from a flag, the environment, a file or the config file, like every
//! secret, and is never shown.

use super::credentials::secret;
use super::taurusdb::usable_endpoint;
use super::*;
use crate::rest::credentials::ZStackAccount;

/// Where ZStack is and which account logs in.
#[derive(Debug, Args)]
pub(crate) struct ZStackArgs {
    /// ZStack management node, e.g. http://zstack.example.com:8080. Unset: with
    /// --endpoint, ZStackBackupService answers UNIMPLEMENTED; without it, the
    /// embedded simulator's ZStack is used.
    #[arg(long, env = "VBS_ZSTACK_ENDPOINT")]
    pub zstack_endpoint: Option<Url>,
    /// ZStack account the gateway logs in with (LogInByAccount).
    #[arg(long, env = "VBS_ZSTACK_ACCOUNT")]
    pub zstack_account: Option<String>,
    /// The account's password (sent only as its SHA-512 digest).
    #[arg(long, env = "VBS_ZSTACK_PASSWORD", hide_env_values = true)]
    pub zstack_password: Option<String>,
    #[arg(long, env = "VBS_ZSTACK_PASSWORD_FILE")]
    pub zstack_password_file: Option<PathBuf>,
}

/// ZStack as configured.
#[derive(Debug, Clone, Default)]
pub struct ZStackConfig {
    /// None: ZStack is not served (unless the embedded simulator fills it in).
    pub endpoint: Option<Url>,
    /// The account name; the embedded simulator makes one up when unset.
    pub account: Option<String>,
    /// The account's password.
    pub password: Option<Secret>,
}

impl ZStackConfig {
    /// The account to log in with, once an endpoint and both parts are known.
    pub(crate) fn login(&self) -> Option<ZStackAccount> {
        Some(ZStackAccount {
            endpoint: self.endpoint.clone()?,
            account: self.account.clone()?,
            password: self.password.clone()?,
        })
    }
}

impl ZStackArgs {
    /// With an endpoint, the account and its password are required.
    pub(super) fn to_config(&self) -> Result<ZStackConfig, ConfigError> {
        if let Some(endpoint) = &self.zstack_endpoint
            && !usable_endpoint(endpoint)
        {
            return Err(ConfigError::Endpoint(endpoint.clone()));
        }
        let password = secret("zstack-password", &self.zstack_password, &self.zstack_password_file)
            .map_err(ConfigError::Credentials)?;
        let config = ZStackConfig {
            endpoint: self.zstack_endpoint.clone(),
            account: self.zstack_account.clone(),
            password,
        };
        if config.endpoint.is_some() && config.login().is_none() {
            return Err(ConfigError::Credentials(
                "--zstack-endpoint needs --zstack-account and --zstack-password (or --zstack-password-file)".into(),
            ));
        }
        if config.account.is_some() != config.password.is_some() {
            return Err(ConfigError::Credentials(
                "a ZStack account needs both --zstack-account and --zstack-password (or --zstack-password-file)".into(),
            ));
        }
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zstack(args: &[&str]) -> Result<ZStackConfig, ConfigError> {
        let mut argv = vec!["vbs-gateway", "--endpoint", "https://vbs.example.com"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("arguments parse").into_mode()? {
            Mode::Serve(config) => Ok(config.zstack),
            _ => panic!("expected serve"),
        }
    }

    #[test]
    fn an_endpoint_needs_an_account_and_its_password() {
        assert!(zstack(&[]).unwrap().login().is_none());
        let endpoint = ["--zstack-endpoint", "https://zstack.example.com:8080"];
        assert!(zstack(&endpoint).is_err());
        assert!(zstack(&[&endpoint[..], &["--zstack-account", "admin"]].concat()).is_err());
        let full = [
            &endpoint[..],
            &["--zstack-account", "admin", "--zstack-password", "pw-never-shown"],
        ]
        .concat();
        let config = zstack(&full).unwrap();
        assert_eq!(config.login().unwrap().account, "admin");
        assert!(!format!("{config:?} {:?}", config.login()).contains("pw-never-shown"));
    }
}
