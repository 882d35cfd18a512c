//! TaurusDB's endpoint and, optionally, its own credentials (a token or an
//! AK/SK pair, each from a flag, the environment or a file); without them
//! TaurusDB is called with the gateway's VBS credentials (one cloud account).

use super::credentials::secret;
use super::*;

/// Where TaurusDB is and how to authenticate there.
#[derive(Debug, Args)]
pub(crate) struct TaurusDbArgs {
    /// TaurusDB endpoint, e.g. https://gaussdb-mysql.eu-de.otc.t-systems.com.
    /// Unset: with --endpoint, TaurusDbBackupService answers UNIMPLEMENTED;
    /// without it, the embedded simulator's TaurusDB is used.
    #[arg(long, env = "VBS_TAURUSDB_ENDPOINT")]
    pub taurusdb_endpoint: Option<Url>,
    /// A fixed IAM token for TaurusDB (X-Auth-Token); default: the gateway's credentials.
    #[arg(long, env = "VBS_TAURUSDB_TOKEN", hide_env_values = true)]
    pub taurusdb_token: Option<String>,
    #[arg(long, env = "VBS_TAURUSDB_TOKEN_FILE")]
    pub taurusdb_token_file: Option<PathBuf>,
    /// Access key (AK) that signs TaurusDB requests (SDK-HMAC-SHA256); default:
    /// the gateway's credentials.
    #[arg(long, env = "VBS_TAURUSDB_ACCESS_KEY", hide_env_values = true)]
    pub taurusdb_access_key: Option<String>,
    #[arg(long, env = "VBS_TAURUSDB_ACCESS_KEY_FILE")]
    pub taurusdb_access_key_file: Option<PathBuf>,
    /// Secret key (SK) belonging to --taurusdb-access-key.
    #[arg(long, env = "VBS_TAURUSDB_SECRET_KEY", hide_env_values = true)]
    pub taurusdb_secret_key: Option<String>,
    #[arg(long, env = "VBS_TAURUSDB_SECRET_KEY_FILE")]
    pub taurusdb_secret_key_file: Option<PathBuf>,
}

/// TaurusDB as configured.
#[derive(Debug, Clone, Default)]
pub struct TaurusDbConfig {
    /// None: TaurusDB is not served (unless the embedded simulator fills it in).
    pub endpoint: Option<Url>,
    /// None: the gateway's own upstream credentials.
    pub credentials: Option<Credentials>,
}

impl TaurusDbArgs {
    pub(super) fn to_config(&self) -> Result<TaurusDbConfig, ConfigError> {
        if let Some(endpoint) = &self.taurusdb_endpoint
            && !usable_endpoint(endpoint)
        {
            return Err(ConfigError::Endpoint(endpoint.clone()));
        }
        let fail = ConfigError::Credentials;
        let token = secret("taurusdb-token", &self.taurusdb_token, &self.taurusdb_token_file).map_err(fail)?;
        let access_key = secret(
            "taurusdb-access-key",
            &self.taurusdb_access_key,
            &self.taurusdb_access_key_file,
        )
        .map_err(fail)?;
        let secret_key = secret(
            "taurusdb-secret-key",
            &self.taurusdb_secret_key,
            &self.taurusdb_secret_key_file,
        )
        .map_err(fail)?;
        let credentials = match (token, access_key, secret_key) {
            (None, None, None) => None,
            (Some(token), None, None) => Some(Credentials::Token(token)),
            (None, Some(access_key), Some(secret_key)) => Some(Credentials::AccessKey(AccessKey {
                access_key,
                secret_key,
                security_token: None,
                signing: Default::default(),
            })),
            (Some(_), _, _) => {
                return Err(fail(
                    "choose one TaurusDB credential mode: --taurusdb-token or --taurusdb-access-key".into(),
                ));
            }
            _ => {
                return Err(fail(
                    "TaurusDB AK/SK signing needs both --taurusdb-access-key and --taurusdb-secret-key".into(),
                ));
            }
        };
        Ok(TaurusDbConfig {
            endpoint: self.taurusdb_endpoint.clone(),
            credentials,
        })
    }
}

/// An http(s) URL with a host and neither query nor fragment.
pub(super) fn usable_endpoint(endpoint: &Url) -> bool {
    matches!(endpoint.scheme(), "http" | "https")
        && endpoint.host_str().is_some()
        && endpoint.query().is_none()
        && endpoint.fragment().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taurusdb(args: &[&str]) -> Result<TaurusDbConfig, ConfigError> {
        let mut argv = vec!["vbs-gateway", "--endpoint", "https://vbs.example.com"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv).expect("arguments parse").into_mode()? {
            Mode::Serve(config) => Ok(config.taurusdb),
            _ => panic!("expected serve"),
        }
    }

    #[test]
    fn taurusdb_is_optional_and_takes_one_credential_mode() {
        let none = taurusdb(&[]).unwrap();
        assert!(none.endpoint.is_none() && none.credentials.is_none());
        let endpoint = ["--taurusdb-endpoint", "https://gaussdb-mysql.example.com"];
        let with = |extra: &[&str]| taurusdb(&[&endpoint[..], extra].concat());
        assert!(
            with(&[]).unwrap().credentials.is_none(),
            "the gateway's own credentials"
        );
        assert!(matches!(
            with(&["--taurusdb-token", "MIIPAgYJKoZIhvcNAQcCo"])
                .unwrap()
                .credentials,
            Some(Credentials::Token(_))
        ));
        assert!(matches!(
            with(&["--taurusdb-access-key", "AK", "--taurusdb-secret-key", "SK"])
                .unwrap()
                .credentials,
            Some(Credentials::AccessKey(_))
        ));
        assert!(with(&["--taurusdb-access-key", "AK"]).is_err());
        assert!(with(&["--taurusdb-token", "t", "--taurusdb-access-key", "AK"]).is_err());
        assert!(taurusdb(&["--taurusdb-endpoint", "ftp://x"]).is_err());
        assert!(taurusdb(&["--taurusdb-endpoint", "http://gaussdb.example.com", "--token", "t"]).is_err());
    }

    #[test]
    fn taurusdb_secrets_do_not_show_in_debug_output() {
        let config = taurusdb(&[
            "--taurusdb-endpoint",
            "https://gaussdb-mysql.example.com",
            "--taurusdb-token",
            "MIIPAgYJKoZIhvcNAQcCo",
        ])
        .unwrap();
        assert!(!format!("{config:?}").contains("MIIPAg"));
    }
}
