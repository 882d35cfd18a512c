//! Upstream credentials from flags, the environment or files: one mode at a time,
//! and for AK/SK the signing scheme (with V11's region and service).

use super::*;
use crate::rest::credentials::Signing;

/// The SDKs' HMAC signing schemes, as `--signing-algorithm` spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum SigningAlgorithm {
    /// HMAC-SHA256 keyed with the SK (the SDKs' default).
    SdkHmacSha256,
    /// HMAC-SHA256 keyed with a key derived for a day, region and service.
    V11HmacSha256,
    /// HMAC-SM3 keyed with the SK.
    SdkHmacSm3,
}

/// V11's scope names the service; this gateway's is VBS.
const DEFAULT_SIGNING_SERVICE: &str = "vbs";

/// Upstream credentials: one mode of AK/SK, an IAM user, or a static token.
/// Every secret can come from a flag, an environment variable, or a file
/// (`*-file`, read once at start-up; a trailing newline is dropped).
#[derive(Debug, Args)]
pub(crate) struct CredentialArgs {
    /// Access key (AK) for request signing (see --signing-algorithm).
    #[arg(long, env = "VBS_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    #[arg(long, env = "VBS_ACCESS_KEY_FILE")]
    pub access_key_file: Option<PathBuf>,
    /// Secret key (SK) belonging to the access key.
    #[arg(long, env = "VBS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    #[arg(long, env = "VBS_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Security token of temporary AK/SK credentials.
    #[arg(long, env = "VBS_SECURITY_TOKEN", hide_env_values = true)]
    pub security_token: Option<String>,
    #[arg(long, env = "VBS_SECURITY_TOKEN_FILE")]
    pub security_token_file: Option<PathBuf>,
    /// How AK/SK requests are signed [default: sdk-hmac-sha256]. v11-hmac-sha256
    /// signs with a key derived for --signing-region and --signing-service.
    #[arg(long, env = "VBS_SIGNING_ALGORITHM", value_enum)]
    pub signing_algorithm: Option<SigningAlgorithm>,
    /// Region id in a V11 key's scope, e.g. eu-de. Default: the region the
    /// endpoint host names (vbs.eu-de.otc.t-systems.com: eu-de), as the SDKs'
    /// region ids and endpoint hosts agree.
    #[arg(long, env = "VBS_SIGNING_REGION")]
    pub signing_region: Option<String>,
    /// Service name in a V11 key's scope [default: vbs].
    #[arg(long, env = "VBS_SIGNING_SERVICE")]
    pub signing_service: Option<String>,
    /// IAM user the gateway exchanges for project-scoped tokens.
    #[arg(long, env = "VBS_IAM_USER")]
    pub iam_user: Option<String>,
    #[arg(long, env = "VBS_IAM_PASSWORD", hide_env_values = true)]
    pub iam_password: Option<String>,
    #[arg(long, env = "VBS_IAM_PASSWORD_FILE")]
    pub iam_password_file: Option<PathBuf>,
    /// Account (domain) name of the IAM user.
    #[arg(long, env = "VBS_IAM_DOMAIN")]
    pub iam_domain: Option<String>,
    /// Project name the tokens are scoped to; without it, --project-id scopes them.
    #[arg(long, env = "VBS_IAM_PROJECT")]
    pub iam_project: Option<String>,
    /// IAM endpoint, e.g. https://iam.eu-de.otc.t-systems.com. With the
    /// embedded simulator it defaults to the simulator's own IAM.
    #[arg(long, env = "VBS_IAM_ENDPOINT")]
    pub iam_endpoint: Option<Url>,
    /// A fixed IAM token sent upstream as X-Auth-Token.
    #[arg(long, env = "VBS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    #[arg(long, env = "VBS_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

/// Who the credentials are for: what is required and what is made up differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum CredentialUse {
    /// A real VBS: an IAM user needs its IAM endpoint.
    Upstream,
    /// The embedded simulator: its own IAM; fresh AK/SK when none are given.
    EmbeddedSimulator,
}

impl CredentialArgs {
    /// The one credential mode configured (none: Anonymous, which the demo
    /// replaces by a fresh AK/SK pair that its simulator learns too).
    pub(super) fn resolve(
        &self,
        project_id: Option<&str>,
        purpose: CredentialUse,
        endpoint: Option<&Url>,
    ) -> Result<Credentials, String> {
        let access_key = secret("access-key", &self.access_key, &self.access_key_file)?;
        let secret_key = secret("secret-key", &self.secret_key, &self.secret_key_file)?;
        let security_token = secret("security-token", &self.security_token, &self.security_token_file)?;
        let password = secret("iam-password", &self.iam_password, &self.iam_password_file)?;
        let token = secret("token", &self.token, &self.token_file)?;
        let signing = access_key.is_some() || secret_key.is_some();
        let iam = self.iam_user.is_some() || password.is_some();
        if [signing, iam, token.is_some()].iter().filter(|&&on| on).count() > 1 {
            return Err(
                "choose one credential mode: AK/SK (--access-key), an IAM user (--iam-user) or a token (--token)"
                    .into(),
            );
        }
        if security_token.is_some() && !signing {
            return Err("--security-token belongs to AK/SK credentials: give --access-key and --secret-key too".into());
        }
        let signing_flags =
            self.signing_algorithm.is_some() || self.signing_region.is_some() || self.signing_service.is_some();
        if signing_flags && !signing {
            return Err("--signing-* flags belong to AK/SK credentials: give --access-key and --secret-key too".into());
        }
        if signing {
            let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
                return Err("AK/SK signing needs both --access-key and --secret-key".into());
            };
            return Ok(Credentials::AccessKey(AccessKey {
                access_key,
                secret_key,
                security_token,
                signing: self.signing(endpoint)?,
            }));
        }
        if iam {
            return self.iam_user(password, project_id, purpose).map(Credentials::Iam);
        }
        Ok(match token {
            Some(token) => Credentials::Token(token),
            None => Credentials::Anonymous,
        })
    }

    /// The scheme chosen; V11 also needs a region (flag, else the endpoint
    /// host's) and a service (flag, else vbs).
    fn signing(&self, endpoint: Option<&Url>) -> Result<Signing, String> {
        let algorithm = self.signing_algorithm.unwrap_or(SigningAlgorithm::SdkHmacSha256);
        if algorithm != SigningAlgorithm::V11HmacSha256 {
            if self.signing_region.is_some() || self.signing_service.is_some() {
                return Err(
                    "--signing-region and --signing-service belong to --signing-algorithm v11-hmac-sha256".into(),
                );
            }
            return Ok(match algorithm {
                SigningAlgorithm::SdkHmacSm3 => Signing::SdkHmacSm3,
                _ => Signing::SdkHmacSha256,
            });
        }
        let region = match &self.signing_region {
            Some(region) => region.clone(),
            None => endpoint.and_then(Url::host_str).and_then(region_of_host).ok_or(
                "v11-hmac-sha256 needs --signing-region: the endpoint host names no region (vbs.<region>.<domain>)",
            )?,
        };
        let service = self
            .signing_service
            .clone()
            .unwrap_or_else(|| DEFAULT_SIGNING_SERVICE.into());
        let well_formed = |text: &str| {
            !text.is_empty()
                && text
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !well_formed(&region) || !well_formed(&service) {
            return Err("--signing-region and --signing-service take letters, digits, '-' and '_'".into());
        }
        Ok(Signing::V11HmacSha256 { region, service })
    }

    fn iam_user(
        &self,
        password: Option<Secret>,
        project_id: Option<&str>,
        purpose: CredentialUse,
    ) -> Result<IamUser, String> {
        let (Some(user), Some(password), Some(domain)) = (&self.iam_user, password, &self.iam_domain) else {
            return Err(
                "an IAM user needs --iam-user, --iam-password (or --iam-password-file) and --iam-domain".into(),
            );
        };
        let project = match (&self.iam_project, project_id) {
            (Some(name), _) => ProjectScope::Name(name.clone()),
            (None, Some(id)) => ProjectScope::Id(id.to_string()),
            (None, None) => return Err("an IAM user needs --iam-project or --project-id to scope its tokens".into()),
        };
        let endpoint = match (&self.iam_endpoint, purpose) {
            (Some(endpoint), CredentialUse::Upstream) => endpoint.clone(),
            (None, CredentialUse::Upstream) => return Err("an IAM user needs --iam-endpoint".into()),
            // A simulator accepts only tokens from its own IAM: the address is
            // filled in once it listens.
            _ => Url::parse("http://127.0.0.1/").map_err(|e| e.to_string())?,
        };
        Ok(IamUser {
            endpoint,
            user: user.clone(),
            password,
            domain: domain.clone(),
            project,
        })
    }
}

/// The region id of a cloud endpoint host `<service>.<region>.<domain>`, such as
/// `eu-de` of vbs.eu-de.otc.t-systems.com or `ap-southeast-1` of
/// vbs.ap-southeast-1.myhuaweicloud.com: the second label when it has the shape
/// of a region id (`<letters>-<letters>[-<digits>]`), else none.
fn region_of_host(host: &str) -> Option<String> {
    let labels: Vec<&str> = host.split('.').collect();
    let candidate = *labels.get(1).filter(|_| labels.len() >= 4)?;
    let mut parts = candidate.split('-');
    let letters = |part: Option<&str>| part.is_some_and(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()));
    let shaped = letters(parts.next())
        && letters(parts.next())
        && parts
            .next()
            .is_none_or(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        && parts.next().is_none();
    shaped.then(|| candidate.to_owned())
}

/// A secret given inline or in a file, not both.
pub(super) fn secret(name: &str, value: &Option<String>, file: &Option<PathBuf>) -> Result<Option<Secret>, String> {
    let text = match (value, file) {
        (Some(_), Some(_)) => return Err(format!("give --{name} or --{name}-file, not both")),
        (Some(value), None) => value.clone(),
        (None, Some(path)) => std::fs::read_to_string(path)
            .map_err(|e| format!("--{name}-file {}: {e}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_string(),
        (None, None) => return Ok(None),
    };
    if text.is_empty() {
        return Err(format!("--{name} must not be empty"));
    }
    Ok(Some(Secret::new(text)))
}
