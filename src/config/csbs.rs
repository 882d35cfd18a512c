//! The CSBS upstream: its endpoint (`--csbs-endpoint`) and optionally AK/SK
//! of its own; without them CSBS calls use the gateway's VBS credentials.

use super::credentials::secret;
use super::*;
use crate::rest::credentials::Signing;

/// V11 signing scopes its key to a service: CSBS's is csbs.
const SIGNING_SERVICE: &str = "csbs";

/// Cloud Server Backup Service options. Secrets come from a flag, the
/// environment or a file (`*-file`), as the VBS ones do.
#[derive(Debug, Args)]
pub(crate) struct CsbsArgs {
    /// CSBS endpoint, e.g. https://csbs.eu-de.otc.t-systems.com. Unset: the
    /// CSBS RPCs answer UNIMPLEMENTED, unless the embedded simulator runs (no
    /// --endpoint), which then simulates CSBS too.
    #[arg(long, env = "CSBS_ENDPOINT")]
    pub csbs_endpoint: Option<Url>,
    /// Access key (AK) for CSBS. Unset: CSBS calls use the VBS credentials.
    #[arg(long, env = "CSBS_ACCESS_KEY", hide_env_values = true)]
    pub csbs_access_key: Option<String>,
    #[arg(long, env = "CSBS_ACCESS_KEY_FILE")]
    pub csbs_access_key_file: Option<PathBuf>,
    /// Secret key (SK) belonging to --csbs-access-key.
    #[arg(long, env = "CSBS_SECRET_KEY", hide_env_values = true)]
    pub csbs_secret_key: Option<String>,
    #[arg(long, env = "CSBS_SECRET_KEY_FILE")]
    pub csbs_secret_key_file: Option<PathBuf>,
    /// Security token of temporary CSBS AK/SK credentials.
    #[arg(long, env = "CSBS_SECURITY_TOKEN", hide_env_values = true)]
    pub csbs_security_token: Option<String>,
    #[arg(long, env = "CSBS_SECURITY_TOKEN_FILE")]
    pub csbs_security_token_file: Option<PathBuf>,
}

/// Where CSBS is and how it is called.
#[derive(Debug, Clone, Default)]
pub struct CsbsConfig {
    /// The CSBS endpoint; None: no CSBS (the embedded demo fills it in with
    /// its own CSBS simulator).
    pub endpoint: Option<Url>,
    /// CSBS's own AK/SK; None: the gateway's VBS credentials.
    pub credentials: Option<Credentials>,
}

impl CsbsArgs {
    /// The CSBS settings; AK/SK of its own only when both keys are given.
    pub(super) fn to_config(&self) -> Result<CsbsConfig, String> {
        if let Some(endpoint) = &self.csbs_endpoint {
            let usable = matches!(endpoint.scheme(), "http" | "https")
                && endpoint.host_str().is_some()
                && endpoint.query().is_none()
                && endpoint.fragment().is_none();
            if !usable {
                return Err(format!(
                    "--csbs-endpoint {endpoint}: must be an http or https URL without query or fragment"
                ));
            }
        }
        let access_key = secret("csbs-access-key", &self.csbs_access_key, &self.csbs_access_key_file)?;
        let secret_key = secret("csbs-secret-key", &self.csbs_secret_key, &self.csbs_secret_key_file)?;
        let security_token = secret(
            "csbs-security-token",
            &self.csbs_security_token,
            &self.csbs_security_token_file,
        )?;
        let credentials = match (access_key, secret_key) {
            (Some(access_key), Some(secret_key)) => Some(Credentials::AccessKey(AccessKey {
                access_key,
                secret_key,
                security_token,
                signing: Signing::default(),
            })),
            (None, None) if security_token.is_none() => None,
            _ => return Err("CSBS AK/SK needs both --csbs-access-key and --csbs-secret-key".into()),
        };
        Ok(CsbsConfig {
            endpoint: self.csbs_endpoint.clone(),
            credentials,
        })
    }
}

impl CsbsConfig {
    /// The credentials CSBS calls use: CSBS's own, else the VBS ones. Either
    /// way AK/SK signs with the VBS scheme (--signing-algorithm); a V11 key
    /// is derived for the csbs service.
    pub fn effective_credentials(&self, vbs: &Credentials) -> Credentials {
        let vbs_signing = match vbs {
            Credentials::AccessKey(key) => key.signing.clone(),
            _ => Signing::default(),
        };
        let mut credentials = self.credentials.clone().unwrap_or_else(|| vbs.clone());
        if let Credentials::AccessKey(key) = &mut credentials {
            key.signing = match vbs_signing {
                Signing::V11HmacSha256 { region, .. } => Signing::V11HmacSha256 {
                    region,
                    service: SIGNING_SERVICE.into(),
                },
                other => other,
            };
        }
        credentials
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(access: Option<&str>, secret: Option<&str>) -> CsbsArgs {
        CsbsArgs {
            csbs_endpoint: Some("https://csbs.eu-de.otc.t-systems.com".parse().unwrap()),
            csbs_access_key: access.map(str::to_string),
            csbs_access_key_file: None,
            csbs_secret_key: secret.map(str::to_string),
            csbs_secret_key_file: None,
            csbs_security_token: None,
            csbs_security_token_file: None,
        }
    }

    fn vbs_key(signing: Signing) -> Credentials {
        Credentials::AccessKey(AccessKey {
            access_key: Secret::new("VBSAK"),
            secret_key: Secret::new("VBSSK"),
            security_token: None,
            signing,
        })
    }

    #[test]
    fn without_keys_of_its_own_csbs_uses_the_vbs_credentials() {
        let config = args(None, None).to_config().unwrap();
        assert!(config.credentials.is_none());
        let v11 = Signing::V11HmacSha256 {
            region: "eu-de".into(),
            service: "vbs".into(),
        };
        let Credentials::AccessKey(key) = config.effective_credentials(&vbs_key(v11)) else {
            panic!("expected AK/SK")
        };
        assert_eq!(key.access_key.expose(), "VBSAK");
        assert_eq!(
            key.signing,
            Signing::V11HmacSha256 {
                region: "eu-de".into(),
                service: "csbs".into()
            }
        );
    }

    #[test]
    fn keys_of_its_own_win_and_come_in_pairs() {
        let config = args(Some("CSBSAK"), Some("CSBSSK")).to_config().unwrap();
        let Credentials::AccessKey(key) = config.effective_credentials(&vbs_key(Signing::SdkHmacSm3)) else {
            panic!("expected AK/SK")
        };
        assert_eq!(key.access_key.expose(), "CSBSAK");
        assert_eq!(key.signing, Signing::SdkHmacSm3);
        assert!(args(Some("CSBSAK"), None).to_config().is_err());
        let mut bad = args(None, None);
        bad.csbs_endpoint = Some("ftp://csbs.example.com".parse().unwrap());
        assert!(bad.to_config().is_err());
    }
}
