//! The simulator's command line, shared by the `vbs-simulator` binary and the
//! gateway's `vbs-gateway simulator` subcommand: where it listens (and where
//! the other simulated services do), which credentials it accepts, and its
//! volumes and job timing.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use apig_signer::Secret;
use clap::Args;

use crate::{AccessKey, AuthConfig, ClockMode, IamUser, JobTiming, SimulatorConfig, VolumeSpec};

/// Options of a simulator that runs alone, as a fake VBS REST endpoint.
#[derive(Debug, Args)]
pub struct SimulatorArgs {
    /// Address the simulator's REST API listens on.
    #[arg(long, env = "VBS_SIMULATOR_LISTEN", default_value = "127.0.0.1:8776")]
    pub listen: SocketAddr,
    /// The credentials the simulator accepts, given as to the gateway; with
    /// none it checks nothing. An IAM user gets tokens from its /v3/auth/tokens.
    #[command(flatten)]
    pub credentials: AcceptedCredentials,
    /// Lifetime of the tokens the simulator's IAM issues.
    #[arg(long = "sim-token-ttl", env = "VBS_SIM_TOKEN_TTL", default_value = "24h", value_parser = parse_duration)]
    pub token_ttl: Duration,
    /// Volumes and job timing.
    #[command(flatten)]
    pub simulator: SimulatorOptions,
    /// The other simulated services, each served only when its address is given.
    #[command(flatten)]
    pub beside: BesideArgs,
}

impl SimulatorArgs {
    /// The simulator these options describe, on the wall clock, and the
    /// services it serves beside VBS.
    pub fn into_config(self) -> Result<(SimulatorConfig, Beside), String> {
        let mut auth = self.credentials.accepted()?;
        auth.token_ttl = self.token_ttl;
        let beside = self.beside.into_beside()?;
        let config = SimulatorConfig {
            auth,
            ..self.simulator.into_config(ClockMode::Auto)
        };
        Ok((config, beside))
    }
}

/// Where a standalone simulator serves TaurusDB, ZStack and CSBS, with the
/// gateway's names for the ZStack login, so one set of settings serves both.
#[derive(Debug, Args)]
pub struct BesideArgs {
    /// Address of a simulated TaurusDB backup API (checking VBS's credentials).
    #[arg(long, env = "VBS_SIMULATOR_TAURUSDB_LISTEN")]
    pub taurusdb_listen: Option<SocketAddr>,
    /// Address of a simulated ZStack API (logins with --zstack-account).
    #[arg(long, env = "VBS_SIMULATOR_ZSTACK_LISTEN")]
    pub zstack_listen: Option<SocketAddr>,
    /// The ZStack account that may log in.
    #[arg(long, env = "VBS_ZSTACK_ACCOUNT", default_value = "admin")]
    pub zstack_account: String,
    /// Its password; required with --zstack-listen.
    #[arg(long, env = "VBS_ZSTACK_PASSWORD", hide_env_values = true)]
    pub zstack_password: Option<String>,
    /// File holding its password.
    #[arg(long, env = "VBS_ZSTACK_PASSWORD_FILE")]
    pub zstack_password_file: Option<PathBuf>,
    /// Address of a simulated CSBS API (checking VBS's AK/SK or token).
    #[arg(long, env = "VBS_SIMULATOR_CSBS_LISTEN")]
    pub csbs_listen: Option<SocketAddr>,
}

impl BesideArgs {
    fn into_beside(self) -> Result<Beside, String> {
        let password = secret("zstack-password", &self.zstack_password, &self.zstack_password_file)?;
        let zstack = match (self.zstack_listen, password) {
            (Some(listen), Some(password)) => Some(ZStackLogin {
                listen,
                account: self.zstack_account,
                password,
            }),
            (Some(_), None) => return Err("--zstack-listen needs --zstack-password (or --zstack-password-file)".into()),
            (None, _) => None,
        };
        Ok(Beside {
            taurusdb: self.taurusdb_listen,
            zstack,
            csbs: self.csbs_listen,
        })
    }
}

/// The services a standalone simulator serves beside VBS; none by default.
#[derive(Debug, Default)]
pub struct Beside {
    /// Where TaurusDB listens.
    pub taurusdb: Option<SocketAddr>,
    /// Where ZStack listens, and who may log in.
    pub zstack: Option<ZStackLogin>,
    /// Where CSBS listens.
    pub csbs: Option<SocketAddr>,
}

/// A simulated ZStack's address and its one account.
#[derive(Debug)]
pub struct ZStackLogin {
    /// Where it listens.
    pub listen: SocketAddr,
    /// The account that may log in.
    pub account: String,
    /// Its password.
    pub password: Secret,
}

/// How the simulator behaves, embedded in the gateway or alone.
#[derive(Debug, Args)]
pub struct SimulatorOptions {
    /// A simulated disk, ID:SIZE_GB[:STATUS[:NAME]]; repeat for several.
    /// Without any, four demo disks with fixed ids.
    // This text is also the --help line, where the brackets read as typed.
    #[allow(rustdoc::broken_intra_doc_links)]
    #[arg(long = "sim-volume", env = "VBS_SIM_VOLUMES", value_delimiter = ',')]
    pub volumes: Vec<VolumeSpec>,
    /// How long simulated jobs stay INIT.
    #[arg(long = "sim-job-init", env = "VBS_SIM_JOB_INIT", default_value = "1s", value_parser = parse_duration)]
    pub job_init: Duration,
    /// How long simulated jobs stay RUNNING.
    #[arg(long = "sim-job-run", env = "VBS_SIM_JOB_RUN", default_value = "4s", value_parser = parse_duration)]
    pub job_run: Duration,
}

impl SimulatorOptions {
    /// The demo simulator with these volumes and this job timing.
    pub fn into_config(self, clock: ClockMode) -> SimulatorConfig {
        let volumes = if self.volumes.is_empty() {
            SimulatorConfig::default_volumes()
        } else {
            self.volumes
        };
        SimulatorConfig {
            volumes,
            clock,
            job_timing: JobTiming {
                init: self.job_init,
                running: self.job_run,
            },
            ..SimulatorConfig::demo()
        }
    }
}

/// The one credential mode a standalone simulator accepts: AK/SK, an IAM user
/// or a static token, with the gateway's flag names, so one set of settings
/// serves both. Every secret can come from a flag, the environment or a file.
#[derive(Debug, Args)]
pub struct AcceptedCredentials {
    /// Access key (AK) of accepted SDK-HMAC-SHA256 signatures.
    #[arg(long, env = "VBS_ACCESS_KEY", hide_env_values = true)]
    pub access_key: Option<String>,
    /// File holding the access key.
    #[arg(long, env = "VBS_ACCESS_KEY_FILE")]
    pub access_key_file: Option<PathBuf>,
    /// Secret key (SK) belonging to the access key.
    #[arg(long, env = "VBS_SECRET_KEY", hide_env_values = true)]
    pub secret_key: Option<String>,
    /// File holding the secret key.
    #[arg(long, env = "VBS_SECRET_KEY_FILE")]
    pub secret_key_file: Option<PathBuf>,
    /// Security token of temporary AK/SK credentials.
    #[arg(long, env = "VBS_SECURITY_TOKEN", hide_env_values = true)]
    pub security_token: Option<String>,
    /// File holding the security token.
    #[arg(long, env = "VBS_SECURITY_TOKEN_FILE")]
    pub security_token_file: Option<PathBuf>,
    /// IAM user the simulator's IAM issues tokens to.
    #[arg(long, env = "VBS_IAM_USER")]
    pub iam_user: Option<String>,
    /// Password of the IAM user.
    #[arg(long, env = "VBS_IAM_PASSWORD", hide_env_values = true)]
    pub iam_password: Option<String>,
    /// File holding the IAM user's password.
    #[arg(long, env = "VBS_IAM_PASSWORD_FILE")]
    pub iam_password_file: Option<PathBuf>,
    /// Account (domain) name of the IAM user.
    #[arg(long, env = "VBS_IAM_DOMAIN")]
    pub iam_domain: Option<String>,
    /// Project (name or id) the IAM user's tokens are scoped to.
    #[arg(long, env = "VBS_IAM_PROJECT")]
    pub iam_project: Option<String>,
    /// A fixed token accepted as X-Auth-Token.
    #[arg(long, env = "VBS_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// File holding the fixed token.
    #[arg(long, env = "VBS_TOKEN_FILE")]
    pub token_file: Option<PathBuf>,
}

impl AcceptedCredentials {
    /// What the simulator checks: exactly these credentials, or nothing when none are given.
    pub(crate) fn accepted(&self) -> Result<AuthConfig, String> {
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
        let mut auth = AuthConfig::enforcing();
        if signing {
            let (Some(access_key), Some(secret_key)) = (access_key, secret_key) else {
                return Err("AK/SK signing needs both --access-key and --secret-key".into());
            };
            auth.access_keys.push(AccessKey {
                access_key: access_key.expose().to_string(),
                secret_key,
                security_token,
            });
        } else if iam {
            let (Some(name), Some(password), Some(domain)) = (&self.iam_user, password, &self.iam_domain) else {
                return Err(
                    "an IAM user needs --iam-user, --iam-password (or --iam-password-file) and --iam-domain".into(),
                );
            };
            let Some(project) = &self.iam_project else {
                return Err("an IAM user needs --iam-project to scope its tokens".into());
            };
            auth.users.push(IamUser {
                name: name.clone(),
                password,
                domain: domain.clone(),
                project: project.clone(),
            });
        } else if let Some(token) = token {
            auth.static_tokens.push(token);
        } else {
            return Ok(AuthConfig::open());
        }
        Ok(auth)
    }
}

/// A secret given inline or in a file, not both (a file's trailing newline is dropped).
fn secret(name: &str, value: &Option<String>, file: &Option<PathBuf>) -> Result<Option<Secret>, String> {
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

/// "250ms", "30s", "5m", "1h", or plain seconds ("2.5").
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .trim()
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 30s, 5m or 1h"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => return Err(format!("{text:?}: unknown unit {unit:?} (use ms, s, m or h)")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("{text:?} is not a valid duration"))
}

/// Serves the simulator alone on `listen`, and `beside` it the other services
/// asked for, until `shutdown` completes, telling on stdout where each listens,
/// what it checks and which volumes it holds.
pub async fn serve_alone(
    listen: SocketAddr,
    config: SimulatorConfig,
    beside: Beside,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), Box<dyn std::error::Error>> {
    let listener = bind(listen, "the VBS simulator").await?;
    let checks = if config.auth.enforce {
        "checks AK/SK signatures, its tokens and the configured credentials"
    } else {
        "checks no credentials"
    };
    let csbs_config = beside.csbs.map(|listen| (listen, csbs_config(&config)));
    let simulator = crate::Simulator::start(config, listener).await?;
    println!(
        "VBS simulator serving the VBS REST API at {} ({checks})",
        simulator.url()
    );
    println!("simulated volumes:\n{}", crate::describe_volumes(&simulator.volumes()));
    if let Some(listen) = beside.taurusdb {
        let url = simulator.serve_taurusdb(bind(listen, "the TaurusDB simulator").await?)?;
        println!("TaurusDB simulator serving the TaurusDB backup API at {url} (the same credentials as VBS)");
        let instances = crate::taurusdb::describe_instances(&simulator.taurusdb_instances());
        println!("simulated TaurusDB instances:\n{instances}");
    }
    if let Some(login) = &beside.zstack {
        let url = simulator.serve_zstack(bind(login.listen, "the ZStack simulator").await?)?;
        simulator.add_zstack_account(&login.account, &login.password);
        println!(
            "ZStack simulator serving the ZStack API at {url} (account {:?})",
            login.account
        );
        let (vms, storages) = simulator.zstack_inventory();
        println!(
            "simulated VMs and backup storages:\n{}",
            crate::zstack::describe(&vms, &storages)
        );
    }
    let csbs = match csbs_config {
        Some((listen, (csbs_config, checks))) => {
            let listener = bind(listen, "the CSBS simulator").await?;
            let csbs = crate::csbs::CsbsSimulator::start(csbs_config, listener).await?;
            println!("CSBS simulator serving the CSBS API at {} ({checks})", csbs.url());
            println!("simulated servers:\n{}", crate::csbs::describe_servers(&csbs.servers()));
            Some(csbs)
        }
        None => None,
    };
    shutdown.await;
    if let Some(csbs) = csbs {
        csbs.shutdown();
    }
    simulator.shutdown();
    Ok(())
}

async fn bind(listen: SocketAddr, what: &str) -> Result<tokio::net::TcpListener, String> {
    tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("{what} cannot listen on {listen}: {e}"))
}

/// CSBS checks the AK/SK or token VBS checks. Tokens of the simulated IAM
/// live in the VBS simulator, which CSBS cannot ask, so with an IAM user
/// CSBS checks nothing (and says so).
fn csbs_config(vbs: &SimulatorConfig) -> (crate::csbs::CsbsSimulatorConfig, &'static str) {
    let (auth, checks) = if !vbs.auth.enforce {
        (AuthConfig::open(), "checks no credentials")
    } else if vbs.auth.users.is_empty() {
        (vbs.auth.clone(), "checks the same credentials as VBS")
    } else {
        (
            AuthConfig::open(),
            "checks no credentials: it cannot read the IAM's tokens",
        )
    };
    let config = crate::csbs::CsbsSimulatorConfig {
        auth,
        clock: vbs.clock,
        ..crate::csbs::CsbsSimulatorConfig::demo()
    };
    (config, checks)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        simulator: SimulatorArgs,
    }

    fn parse(args: &[&str]) -> Result<(SimulatorConfig, Beside), String> {
        let argv = std::iter::once("vbs-simulator").chain(args.iter().copied());
        let cli = Cli::try_parse_from(argv).map_err(|e| e.to_string())?;
        cli.simulator.into_config()
    }

    #[test]
    fn other_services_are_served_only_where_asked() {
        let (_, beside) = parse(&[]).unwrap();
        assert!(beside.taurusdb.is_none() && beside.zstack.is_none() && beside.csbs.is_none());
        let (_, beside) = parse(&[
            "--taurusdb-listen",
            "127.0.0.1:9001",
            "--zstack-listen",
            "127.0.0.1:9002",
            "--zstack-password",
            "pw",
            "--csbs-listen",
            "127.0.0.1:9003",
        ])
        .unwrap();
        assert_eq!(beside.taurusdb, Some("127.0.0.1:9001".parse().unwrap()));
        assert_eq!(beside.csbs, Some("127.0.0.1:9003".parse().unwrap()));
        let zstack = beside.zstack.expect("zstack");
        assert_eq!((zstack.listen.port(), zstack.account.as_str()), (9002, "admin"));
        assert_eq!(zstack.password.expose(), "pw");
        assert!(!format!("{zstack:?}").contains("pw\""), "{zstack:?}");
    }

    #[test]
    fn zstack_needs_one_password() {
        let error = parse(&["--zstack-listen", "127.0.0.1:9002"]).unwrap_err();
        assert!(error.contains("--zstack-password"), "{error}");
        let error = parse(&[
            "--zstack-listen",
            "127.0.0.1:9002",
            "--zstack-password",
            "pw",
            "--zstack-password-file",
            "/nonexistent",
        ])
        .unwrap_err();
        assert!(error.contains("not both"), "{error}");
    }

    #[test]
    fn csbs_checks_what_vbs_checks_except_iam_tokens() {
        let (vbs, _) = parse(&["--access-key", "AK", "--secret-key", "SK"]).unwrap();
        let (csbs, _) = csbs_config(&vbs);
        assert!(csbs.auth.enforce);
        assert_eq!(csbs.auth.access_keys[0].access_key, "AK");
        let (open, _) = parse(&[]).unwrap();
        assert!(!csbs_config(&open).0.auth.enforce);
        let (iam, _) = parse(&[
            "--iam-user",
            "u",
            "--iam-password",
            "p",
            "--iam-domain",
            "d",
            "--iam-project",
            "eu-de",
        ])
        .unwrap();
        let (csbs, says) = csbs_config(&iam);
        assert!(!csbs.auth.enforce && says.contains("cannot read the IAM's tokens"));
    }
}
