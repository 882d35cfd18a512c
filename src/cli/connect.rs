//! The connection flags of every client command and the one channel they make:
//! plain HTTP/2 or verified TLS (a private CA, or the Mozilla roots), a client
//! certificate for mutual TLS, and a bearer key that never reaches output.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::Interceptor;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Request, Status};

use super::Failure;
use super::output::Format;
use crate::proto::pb::{
    backup_policy_service_client::BackupPolicyServiceClient, backup_service_client::BackupServiceClient,
    job_service_client::JobServiceClient,
};
use crate::rest::credentials::Secret;
use crate::units::parse_duration;

/// The environment variable that holds the bearer key itself (never a flag:
/// a command line is readable by every local user).
pub const KEY_ENV: &str = "VBS_GATEWAY_KEY";

/// Which gateway to call, how, and how to show the answer. Accepted before or
/// after the command (`vbs-gateway backup list --server ...`).
#[derive(Debug, Args)]
pub struct ClientArgs {
    /// The gateway: http://HOST:PORT, or https://HOST:PORT for TLS.
    #[arg(
        long,
        global = true,
        env = "VBS_GATEWAY_SERVER",
        default_value = "http://127.0.0.1:50051"
    )]
    pub server: String,
    /// Project to act in; empty means the gateway's default project.
    #[arg(long, global = true, env = "VBS_PROJECT_ID", default_value = "")]
    pub project_id: String,
    /// PEM certificates of the CA that signed the gateway's TLS certificate
    /// (https only). Without it the Mozilla root certificates are trusted.
    #[arg(long, global = true, env = "VBS_GATEWAY_CA_CERT")]
    pub ca_cert: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (the gateway's --tls-client-ca signs it).
    #[arg(long, global = true, env = "VBS_GATEWAY_CLIENT_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, global = true, env = "VBS_GATEWAY_CLIENT_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Name the gateway's certificate must carry, when it is not the --server host.
    #[arg(long, global = true, env = "VBS_GATEWAY_TLS_SERVER_NAME")]
    pub tls_server_name: Option<String>,
    /// File holding the bearer key of a caller of the gateway's --callers file
    /// (one trailing newline is dropped). VBS_GATEWAY_KEY may hold the key instead.
    #[arg(long, global = true, env = "VBS_GATEWAY_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Send the bearer key over plain http to a host that is not this one.
    #[arg(long, global = true)]
    pub allow_plaintext: bool,
    /// Longest time opening the connection may take.
    #[arg(long, global = true, default_value = "10s", value_parser = parse_duration)]
    pub connect_timeout: Duration,
    /// Longest time one call may take (watching and waiting for a job are not bounded by it).
    #[arg(long, global = true, default_value = "60s", value_parser = parse_duration)]
    pub call_timeout: Duration,
    /// table for people, json (the protobuf JSON mapping) for scripts.
    #[arg(long, short = 'o', global = true, env = "VBS_GATEWAY_OUTPUT", value_enum, default_value_t = Format::Table)]
    pub output: Format,
}

/// Adds `authorization: Bearer KEY` to every call when a key is set.
#[derive(Clone)]
pub(crate) struct Bearer(Option<MetadataValue<Ascii>>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = if self.0.is_some() { "<redacted>" } else { "none" };
        write!(f, "Bearer({state})")
    }
}

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The channel every client shares.
pub(crate) type Transport = InterceptedService<Channel, Bearer>;

/// A connected gateway and what every command needs beside it.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    pub(crate) backups: BackupServiceClient<Transport>,
    pub(crate) policies: BackupPolicyServiceClient<Transport>,
    pub(crate) jobs: JobServiceClient<Transport>,
    pub(crate) project_id: String,
    pub(crate) call_timeout: Duration,
    pub(crate) format: Format,
}

impl Session {
    /// A request with the call deadline.
    pub(crate) fn request<T>(&self, message: T) -> Request<T> {
        let mut request = Request::new(message);
        request.set_timeout(self.call_timeout);
        request
    }
}

/// Opens the channel (at once, so an unreachable gateway is one clear error).
pub(crate) async fn connect(args: &ClientArgs) -> Result<Session, Failure> {
    let endpoint = endpoint(args)?;
    let bearer = Bearer(bearer_value(args)?);
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| Failure::Unreachable(format!("cannot reach the gateway at {}: {}", args.server, chain(&e))))?;
    let transport = InterceptedService::new(channel, bearer);
    Ok(Session {
        backups: BackupServiceClient::new(transport.clone()),
        policies: BackupPolicyServiceClient::new(transport.clone()),
        jobs: JobServiceClient::new(transport),
        project_id: args.project_id.clone(),
        call_timeout: args.call_timeout,
        format: args.output,
    })
}

fn endpoint(args: &ClientArgs) -> Result<Endpoint, Failure> {
    let usage = |e: &dyn std::fmt::Display| Failure::Usage(format!("--server {}: {e}", args.server));
    let uri: http::Uri = args.server.parse().map_err(|e| usage(&e))?;
    let tls = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(usage(&"must be http://HOST:PORT or https://HOST:PORT")),
    };
    if uri.host().is_none() {
        return Err(usage(&"names no host"));
    }
    let tls_flags = args.ca_cert.is_some() || args.tls_cert.is_some() || args.tls_server_name.is_some();
    if tls_flags && !tls {
        return Err(Failure::Usage(format!(
            "--ca-cert, --tls-cert and --tls-server-name need an https:// --server, not {}",
            args.server
        )));
    }
    let mut endpoint = Endpoint::from(uri).connect_timeout(args.connect_timeout);
    if tls {
        endpoint = endpoint
            .tls_config(tls_config(args)?)
            .map_err(|e| Failure::Usage(format!("TLS settings: {}", chain(&e))))?;
    }
    Ok(endpoint)
}

/// Verified TLS, always: the given CA or the Mozilla roots; there is no opt-out.
fn tls_config(args: &ClientArgs) -> Result<ClientTlsConfig, Failure> {
    let mut config = match &args.ca_cert {
        Some(path) => ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read("--ca-cert", path)?)),
        None => ClientTlsConfig::new().with_webpki_roots(),
    };
    if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        config = config.identity(Identity::from_pem(read("--tls-cert", cert)?, read("--tls-key", key)?));
    }
    if let Some(name) = &args.tls_server_name {
        config = config.domain_name(name.clone());
    }
    Ok(config)
}

fn read(flag: &str, path: &Path) -> Result<Vec<u8>, Failure> {
    std::fs::read(path).map_err(|e| Failure::Usage(format!("{flag} {}: {e}", path.display())))
}

/// The `authorization` value, from --key-file or VBS_GATEWAY_KEY; refused
/// over plain http off this host unless --allow-plaintext.
fn bearer_value(args: &ClientArgs) -> Result<Option<MetadataValue<Ascii>>, Failure> {
    let Some(key) = bearer_key(args.key_file.as_deref())? else {
        return Ok(None);
    };
    if args.server.starts_with("http://") && !is_loopback(&args.server) && !args.allow_plaintext {
        return Err(Failure::Usage(format!(
            "{} is plain http and not this host: the bearer key would travel unencrypted; use https, or --allow-plaintext if you mean it",
            args.server
        )));
    }
    let mut value: MetadataValue<Ascii> = format!("Bearer {}", key.expose())
        .parse()
        .map_err(|_| Failure::Usage("the bearer key must be visible ASCII".into()))?;
    // Kept out of HPACK's table and out of any debug output of the value.
    value.set_sensitive(true);
    Ok(Some(value))
}

fn bearer_key(key_file: Option<&Path>) -> Result<Option<Secret>, Failure> {
    let text = match key_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| Failure::Usage(format!("--key-file {}: {e}", path.display())))?;
            let text = text.strip_suffix('\n').unwrap_or(&text);
            text.strip_suffix('\r').unwrap_or(text).to_string()
        }
        None => match std::env::var(KEY_ENV) {
            Ok(key) => key,
            Err(_) => return Ok(None),
        },
    };
    if text.is_empty() {
        return Err(Failure::Usage("the bearer key is empty".into()));
    }
    Ok(Some(Secret::new(text)))
}

fn is_loopback(server: &str) -> bool {
    let Ok(uri) = server.parse::<http::Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// An error with its causes, on one line (a TLS failure hides in the sources).
fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_hosts_count_as_this_host() {
        for local in ["http://127.0.0.1:50051", "http://localhost:1", "http://[::1]:50051"] {
            assert!(is_loopback(local), "{local}");
        }
        for remote in ["http://10.0.0.1:50051", "http://gateway.example.com", "not a url"] {
            assert!(!is_loopback(remote), "{remote}");
        }
    }

    #[test]
    fn the_bearer_never_shows_in_debug_output() {
        let mut value: MetadataValue<Ascii> = "Bearer s3cr3t-key".parse().unwrap();
        value.set_sensitive(true);
        let text = format!("{:?}", Bearer(Some(value)));
        assert!(!text.contains("s3cr3t"), "{text}");
        assert_eq!(text, "Bearer(<redacted>)");
    }
}
