//! The listener's TLS: certificate, key and client CA read from PEM files, a
//! certificate swapped in place and a server config replaced (for a new client
//! CA) when the files change, so only new handshakes see them; and the poller.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::RootCertStore;
use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert, WebPkiClientVerifier};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;

use crate::config::TlsFiles;
use crate::metrics::Metrics;

/// A TLS file that cannot be used, named as given.
#[derive(Debug, thiserror::Error)]
#[error("{flag} {}: {reason}", path.display())]
pub(crate) struct TlsError {
    flag: &'static str,
    path: PathBuf,
    reason: String,
}

impl TlsError {
    fn new(flag: &'static str, path: &Path, reason: impl ToString) -> TlsError {
        TlsError {
            flag,
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}

/// ring, the one crypto provider of the binary (a second one makes rustls panic).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The bytes of the certificate and key files now (None where unreadable).
type PairBytes = (Option<Vec<u8>>, Option<Vec<u8>>);

/// The bytes of every TLS file now: the pair, and the client CA when one is configured.
#[derive(Clone, PartialEq)]
struct FileBytes {
    pair: PairBytes,
    client_ca: Option<Vec<u8>>,
}

fn read_files(files: &TlsFiles) -> FileBytes {
    FileBytes {
        pair: (std::fs::read(&files.cert).ok(), std::fs::read(&files.key).ok()),
        client_ca: files.client_ca.as_ref().and_then(|ca| std::fs::read(ca).ok()),
    }
}

/// The certificate chain and key of `files` as read in `pair`, checked to belong together.
fn certified_key(files: &TlsFiles, pair: &PairBytes) -> Result<CertifiedKey, TlsError> {
    let (Some(cert), Some(key)) = pair else {
        // Unreadable: read again for the reason.
        let reason = |path: &Path| std::fs::read(path).err().map(|e| e.to_string());
        return Err(match reason(&files.cert) {
            Some(reason) => TlsError::new("--tls-cert", &files.cert, reason),
            None => TlsError::new("--tls-key", &files.key, reason(&files.key).unwrap_or_default()),
        });
    };
    let chain = parse_certificates("--tls-cert", &files.cert, cert)?;
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| TlsError::new("--tls-key", &files.key, e))?;
    CertifiedKey::from_der(chain, key, &provider()).map_err(|e| {
        TlsError::new(
            "--tls-key",
            &files.key,
            format!("does not fit --tls-cert {}: {e}", files.cert.display()),
        )
    })
}

fn parse_certificates(flag: &'static str, path: &Path, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::new(flag, path, e))?;
    if chain.is_empty() {
        return Err(TlsError::new(flag, path, "no CERTIFICATE in the file"));
    }
    Ok(chain)
}

/// Reads every TLS file as the server would at start.
pub(crate) fn check_tls_files(files: &TlsFiles) -> Result<(), TlsError> {
    TlsServer::load(files).map(|_| ())
}

/// The current certificate; the handshake of each new connection asks it.
#[derive(Debug)]
struct SwappableCert {
    current: RwLock<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|key| key.clone())
    }
}

/// Who may connect: a verifier of client certificates (mutual TLS) or anyone.
type ClientVerifier = Option<Arc<dyn ClientCertVerifier>>;

/// The TLS side of the listener: the acceptor for new connections and what
/// reloading needs.
#[derive(Clone)]
pub(crate) struct TlsServer {
    /// Replaced whole when the client CA changes; each handshake takes the current one.
    acceptor: Arc<RwLock<TlsAcceptor>>,
    cert: Arc<SwappableCert>,
    files: TlsFiles,
    /// The file contents the current certificate and client CA came from.
    loaded: FileBytes,
}

impl TlsServer {
    /// The server config for `files`: h2 only (ALPN), client certificates
    /// required and verified when a client CA is given.
    pub(crate) fn load(files: &TlsFiles) -> Result<TlsServer, TlsError> {
        let loaded = read_files(files);
        let cert = Arc::new(SwappableCert {
            current: RwLock::new(Arc::new(certified_key(files, &loaded.pair)?)),
        });
        let verifier = client_verifier(files, &loaded)?;
        let acceptor = acceptor(files, cert.clone(), verifier)?;
        Ok(TlsServer {
            acceptor: Arc::new(RwLock::new(acceptor)),
            cert,
            files: files.clone(),
            loaded,
        })
    }

    /// The acceptor for a connection arriving now.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        match self.acceptor.read() {
            Ok(acceptor) => acceptor.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Checks the TLS files every `interval`; a changed pair or client CA that
    /// loads replaces the current one for new handshakes, a bad one is logged
    /// and the current one stays. Ends when the returned task is aborted.
    pub(crate) fn spawn_reloader(&self, interval: Duration, metrics: Option<Metrics>) -> tokio::task::JoinHandle<()> {
        let server = self.clone();
        tokio::spawn(async move {
            let mut seen = server.loaded.clone();
            let mut ticks = tokio::time::interval(interval);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let files = server.files.clone();
                let Ok(now) = tokio::task::spawn_blocking(move || read_files(&files)).await else {
                    continue;
                };
                if now.pair != seen.pair {
                    let reloaded = server.reload_pair(&now);
                    record(metrics.as_ref(), "TLS certificate", reloaded);
                }
                if now.client_ca != seen.client_ca {
                    let reloaded = server.reload_client_ca(&now);
                    record(metrics.as_ref(), "TLS client CA", reloaded);
                }
                seen = now;
            }
        })
    }

    /// Serves the certificate and key of `now` to new handshakes.
    fn reload_pair(&self, now: &FileBytes) -> Result<(), TlsError> {
        let key = certified_key(&self.files, &now.pair)?;
        if let Ok(mut current) = self.cert.current.write() {
            *current = Arc::new(key);
        }
        Ok(())
    }

    /// Verifies the client certificates of new handshakes with the CA of `now`.
    /// The whole server config is new, so no session resumes past the old CA.
    fn reload_client_ca(&self, now: &FileBytes) -> Result<(), TlsError> {
        let verifier = client_verifier(&self.files, now)?;
        let acceptor = acceptor(&self.files, self.cert.clone(), verifier)?;
        if let Ok(mut current) = self.acceptor.write() {
            *current = acceptor;
        }
        Ok(())
    }
}

/// Logs and counts one reload of `what`.
fn record(metrics: Option<&Metrics>, what: &str, reloaded: Result<(), TlsError>) {
    if let Some(metrics) = metrics {
        metrics.tls_reload(reloaded.is_ok());
    }
    match reloaded {
        Ok(()) => tracing::info!("{what} reloaded"),
        Err(error) => tracing::warn!(%error, "{what} not reloaded; the previous one stays in force"),
    }
}

fn acceptor(files: &TlsFiles, cert: Arc<SwappableCert>, verifier: ClientVerifier) -> Result<TlsAcceptor, TlsError> {
    let builder = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::new("--tls-cert", &files.cert, e))?;
    let builder = match verifier {
        Some(verifier) => builder.with_client_cert_verifier(verifier),
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_cert_resolver(cert);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The verifier for the client CA of `files` as read in `now`; None without a client CA.
fn client_verifier(files: &TlsFiles, now: &FileBytes) -> Result<ClientVerifier, TlsError> {
    let Some(ca) = &files.client_ca else {
        return Ok(None);
    };
    let error = |reason: &dyn std::fmt::Display| TlsError::new("--tls-client-ca", ca, reason);
    let pem = match &now.client_ca {
        Some(pem) => pem,
        None => {
            return Err(error(
                &std::fs::read(ca).err().map(|e| e.to_string()).unwrap_or_default(),
            ));
        }
    };
    let mut roots = RootCertStore::empty();
    for cert in parse_certificates("--tls-client-ca", ca, pem)? {
        roots.add(cert).map_err(|e| error(&e))?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
        .build()
        .map_err(|e| error(&e))?;
    Ok(Some(verifier))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn pair(dir: &Path, name: &str) -> (PathBuf, PathBuf, rcgen::KeyPair) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let cert_path = dir.join(format!("{name}.pem"));
        let key_path = dir.join(format!("{name}.key"));
        std::fs::write(&cert_path, cert.pem()).unwrap();
        std::fs::write(&key_path, key.serialize_pem()).unwrap();
        (cert_path, key_path, key)
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("vbs-gateway-tls-{name}-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn files(cert: &Path, key: &Path, client_ca: Option<&Path>) -> TlsFiles {
        TlsFiles {
            cert: cert.into(),
            key: key.into(),
            client_ca: client_ca.map(Path::to_path_buf),
        }
    }

    #[test]
    fn a_good_pair_loads_with_and_without_a_client_ca() {
        let dir = temp_dir("good");
        let (cert, key, _) = pair(&dir, "server");
        check_tls_files(&files(&cert, &key, None)).unwrap();
        check_tls_files(&files(&cert, &key, Some(&cert))).unwrap();
    }

    #[test]
    fn each_bad_file_is_named_with_its_flag() {
        let dir = temp_dir("bad");
        let (cert, key, _) = pair(&dir, "server");
        let (_, other_key, _) = pair(&dir, "other");
        let missing = dir.join("missing.pem");
        let garbage = dir.join("garbage.pem");
        std::fs::write(&garbage, "not a pem file\n").unwrap();

        let cases = [
            (files(&missing, &key, None), "--tls-cert", &missing),
            (files(&garbage, &key, None), "--tls-cert", &garbage),
            (files(&cert, &garbage, None), "--tls-key", &garbage),
            (files(&cert, &other_key, None), "--tls-key", &other_key),
            (files(&cert, &key, Some(&missing)), "--tls-client-ca", &missing),
            (files(&cert, &key, Some(&garbage)), "--tls-client-ca", &garbage),
        ];
        for (files, flag, path) in cases {
            let message = check_tls_files(&files).unwrap_err().to_string();
            let expected = format!("{flag} {}: ", path.display());
            assert!(
                message.starts_with(&expected),
                "{message:?} should start with {expected:?}"
            );
            assert!(!message.contains('\n'), "one line: {message:?}");
        }
    }
}
