//! The no-setup demo: the VBS simulator started in-process on a loopback port
//! when no endpoint is configured, checking exactly the gateway's own
//! credentials, and beside it the other backup services (CSBS, TaurusDB,
//! ZStack) that have no endpoint of their own, each on a port of its own.

use reqwest::Url;
use tokio::net::TcpListener;
use vbs_simulator::csbs::{CsbsSimulator, CsbsSimulatorConfig};
use vbs_simulator::{AuthConfig, Simulator, VolumeSpec};

use crate::config::Config;
use crate::rest::credentials::{AccessKey, Credentials, ProjectScope, Secret, Signing};

/// The simulators the demo runs in-process.
pub struct Embedded {
    /// The VBS simulator (with its IAM).
    pub vbs: Simulator,
    /// The CSBS simulator; None when --csbs-endpoint names a real one.
    pub csbs: Option<CsbsSimulator>,
}

impl Embedded {
    /// The VBS simulator's base URL.
    pub fn url(&self) -> String {
        self.vbs.url()
    }

    /// The simulated disks.
    pub fn volumes(&self) -> Vec<VolumeSpec> {
        self.vbs.volumes()
    }

    /// Stops every simulator.
    pub fn shutdown(&self) {
        self.vbs.shutdown();
        if let Some(csbs) = &self.csbs {
            csbs.shutdown();
        }
    }
}

/// Starts the embedded simulators and points `config` at them: the VBS
/// endpoint, the IAM endpoint of an IAM user and, unless configured, the CSBS
/// endpoint. With no credentials configured, the gateway gets a fresh AK/SK
/// pair, so even the demo signs like production.
pub async fn start(config: &mut Config) -> Result<Embedded, Box<dyn std::error::Error>> {
    let vbs = start_vbs(config).await?;
    let csbs = match config.csbs.endpoint {
        Some(_) => None,
        None => Some(start_csbs(config).await?),
    };
    Ok(Embedded { vbs, csbs })
}

async fn start_vbs(config: &mut Config) -> Result<Simulator, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let url: Url = format!("http://{}", listener.local_addr()?).parse()?;
    match &mut config.credentials {
        Credentials::Iam(user) => user.endpoint = url.clone(),
        Credentials::Anonymous => config.credentials = Credentials::AccessKey(generated_access_key()),
        Credentials::Token(_) | Credentials::AccessKey(_) | Credentials::ZStack(_) => {}
    }
    let mut auth = accepting(&config.credentials);
    if let Some(own) = &config.taurusdb.credentials {
        auth = also_accepting(auth, own);
    }
    let simulator_config = vbs_simulator::SimulatorConfig {
        auth,
        ..config.simulator.clone()
    };
    let simulator = Simulator::start(simulator_config, listener).await?;
    config.endpoint = Some(url);
    if config.taurusdb.endpoint.is_none() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        config.taurusdb.endpoint = Some(simulator.serve_taurusdb(listener)?.parse()?);
    }
    if config.zstack.endpoint.is_none() {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let zstack = &mut config.zstack;
        zstack.endpoint = Some(simulator.serve_zstack(listener)?.parse()?);
        let account = zstack.account.get_or_insert_with(|| DEMO_ZSTACK_ACCOUNT.to_string());
        // No password given: a fresh one, known to the gateway and the simulator only.
        let password = zstack
            .password
            .get_or_insert_with(|| Secret::new(uuid::Uuid::new_v4().simple().to_string()));
        simulator.add_zstack_account(account, password);
    }
    Ok(simulator)
}

/// A CSBS simulator that checks the credentials CSBS calls use, on the
/// clock the VBS simulator runs on; `config` is pointed at it.
async fn start_csbs(config: &mut Config) -> Result<CsbsSimulator, Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
    let credentials = config.csbs.effective_credentials(&config.credentials);
    let csbs_config = CsbsSimulatorConfig {
        auth: match credentials {
            // IAM tokens come from the VBS simulator's IAM, which CSBS cannot check.
            Credentials::Iam(_) => AuthConfig::open(),
            ref other => accepting(other),
        },
        clock: config.simulator.clock,
        ..CsbsSimulatorConfig::demo()
    };
    let simulator = CsbsSimulator::start(csbs_config, listener).await?;
    config.csbs.endpoint = Some(simulator.url().parse()?);
    Ok(simulator)
}

/// The ZStack account the demo logs in with when none is configured.
const DEMO_ZSTACK_ACCOUNT: &str = "admin";

/// What the embedded simulator serves besides VBS, for start-up output.
pub fn describe_other_services(simulator: &Simulator) -> String {
    let mut lines = Vec::new();
    if let Some(url) = simulator.taurusdb_url() {
        let instances = vbs_simulator::taurusdb::describe_instances(&simulator.taurusdb_instances());
        lines.push(format!(
            "TaurusDB: embedded simulator at {url}; simulated instances:\n{instances}"
        ));
    }
    if let Some(url) = simulator.zstack_url() {
        let (vms, storages) = simulator.zstack_inventory();
        let table = vbs_simulator::zstack::describe(&vms, &storages);
        lines.push(format!(
            "ZStack: embedded simulator at {url}; simulated VMs and backup storages:\n{table}"
        ));
    }
    lines.join("\n")
}

/// A simulator that checks for exactly these credentials (none: no checks).
fn accepting(credentials: &Credentials) -> AuthConfig {
    let mut auth = AuthConfig::enforcing();
    match credentials {
        Credentials::Anonymous => return AuthConfig::open(),
        Credentials::Token(token) => auth.static_tokens.push(token.clone()),
        Credentials::AccessKey(key) => auth.access_keys.push(vbs_simulator::AccessKey {
            access_key: key.access_key.expose().to_string(),
            secret_key: key.secret_key.clone(),
            security_token: key.security_token.clone(),
        }),
        // The simulated ZStack checks its accounts itself.
        Credentials::ZStack(_) => {}
        Credentials::Iam(user) => {
            let (ProjectScope::Name(project) | ProjectScope::Id(project)) = &user.project;
            auth.users.push(vbs_simulator::IamUser {
                name: user.user.clone(),
                password: user.password.clone(),
                domain: user.domain.clone(),
                project: project.clone(),
            });
        }
    }
    auth
}

/// `auth` extended by credentials of another service's own (TaurusDB's): the
/// simulated services share one API gateway check.
fn also_accepting(auth: AuthConfig, credentials: &Credentials) -> AuthConfig {
    let extra = accepting(credentials);
    if !auth.enforce {
        return auth;
    }
    AuthConfig {
        access_keys: [auth.access_keys, extra.access_keys].concat(),
        static_tokens: [auth.static_tokens, extra.static_tokens].concat(),
        ..auth
    }
}

/// Fresh credentials for the embedded simulator, so `cargo run` signs its
/// requests like production without any set-up.
fn generated_access_key() -> AccessKey {
    let (_, key) = AuthConfig::enforcing().with_generated_access_key();
    AccessKey {
        access_key: Secret::new(key.access_key),
        secret_key: key.secret_key,
        security_token: None,
        signing: Signing::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_embedded_simulator_gets_fresh_credentials() {
        let mut access_keys = Vec::new();
        for _ in 0..2 {
            let mut config = Config::for_testing("http://unused.invalid".parse().unwrap());
            config.endpoint = None;
            let simulator = start(&mut config).await.unwrap();
            simulator.shutdown();
            let Credentials::AccessKey(key) = config.credentials else {
                panic!("expected generated AK/SK")
            };
            assert_eq!(config.endpoint.unwrap().as_str(), format!("{}/", simulator.url()));
            assert!(config.taurusdb.endpoint.is_some() && config.zstack.login().is_some());
            let others = describe_other_services(&simulator.vbs);
            assert!(others.contains("TaurusDB") && others.contains("ZStack"), "{others}");
            access_keys.push(key);
        }
        assert_eq!(access_keys[0].access_key.expose().len(), 20);
        assert_ne!(access_keys[0].secret_key, access_keys[1].secret_key);
    }
}
