//! The one tower layer every RPC passes first after the observe layer: it
//! knows the caller (bearer key or client certificate), applies the caller's
//! limits, and hands the service an `Admission` that decides the permission
//! once the request's project is known (`Upstream::context`, the first thing
//! every handler does), so the request is decoded once, by tonic.

use std::path::PathBuf;
use std::sync::{Arc, RwLock, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use super::callers::{self, ANONYMOUS, Caller, CallerTable, CallersFileError};
use super::limits::{Limits, WatchPermit};
use super::permissions::{is_watch, needs_no_identity, required_role};
use crate::error::{Error, Refusal};
use crate::metrics::Metrics;
use crate::observe::AccessNote;

/// What the front door needs from the configuration.
#[derive(Debug, Clone)]
pub(crate) struct FrontDoorSettings {
    /// The callers file; None: every call is the one anonymous admin caller.
    pub(crate) callers_file: Option<PathBuf>,
    /// Per-caller limits.
    pub(crate) limits: Limits,
    /// How often the callers file is looked at for changes.
    pub(crate) reload_interval: Duration,
}

/// Who may call, shared by every connection; cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct FrontDoor {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    /// None: no callers file.
    table: Option<RwLock<Arc<CallerTable>>>,
    /// The bytes of the callers file in force at start, to see the first change.
    loaded: Option<Vec<u8>>,
    anonymous: Arc<Caller>,
    settings: FrontDoorSettings,
    metrics: Option<Metrics>,
}

impl FrontDoor {
    /// The front door of `settings`, with the callers file read now.
    pub(crate) fn new(settings: FrontDoorSettings, metrics: Option<Metrics>) -> Result<FrontDoor, CallersFileError> {
        let (table, loaded) = match &settings.callers_file {
            Some(path) => {
                let (table, bytes) = callers::load(path)?;
                (Some(RwLock::new(Arc::new(table))), Some(bytes))
            }
            None => (None, None),
        };
        Ok(FrontDoor {
            shared: Arc::new(Shared {
                table,
                loaded,
                anonymous: Arc::new(Caller::anonymous()),
                settings,
                metrics,
            }),
        })
    }

    /// Re-reads the callers file whenever its bytes change, for as long as
    /// the front door is in use. A file that does not parse is logged and
    /// the previous one stays in force.
    pub(crate) fn watch_callers_file(&self) {
        let Some(path) = self.shared.settings.callers_file.clone() else {
            return;
        };
        let every = self.shared.settings.reload_interval;
        let mut seen = self.shared.loaded.clone();
        let shared = Arc::downgrade(&self.shared);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(shared) = Weak::upgrade(&shared) else {
                    return;
                };
                let now = tokio::fs::read(&path).await.ok();
                if now == seen {
                    continue;
                }
                seen = now;
                match &seen {
                    Some(bytes) => shared.reload(callers::from_bytes(&path, bytes)),
                    None => {
                        tracing::warn!(path = %path.display(), "the callers file cannot be read; the previous one stays in force")
                    }
                }
            }
        });
    }

    fn identify(&self, headers: &HeaderMap, extensions: &http::Extensions) -> Option<Arc<Caller>> {
        let Some(table) = &self.shared.table else {
            return Some(self.shared.anonymous.clone());
        };
        let table = table.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone();
        if let Some(key) = bearer_key(headers) {
            return table.by_key(key);
        }
        let certificates = extensions.get::<TlsConnectInfo<TcpConnectInfo>>()?.peer_certs()?;
        let end_entity = certificates.first()?;
        caller_of_certificate(&table, end_entity)
    }

    fn refuse(&self, refusal: Refusal, caller: Option<&str>) -> Response<tonic::body::Body> {
        if let Some(metrics) = &self.shared.metrics {
            metrics.caller_refused(caller.unwrap_or(callers::UNKNOWN), refusal.reason());
        }
        tonic::Status::from(Error::Refused(refusal)).into_http()
    }
}

impl Shared {
    fn reload(&self, loaded: Result<CallerTable, CallersFileError>) {
        let Some(table) = &self.table else { return };
        if let Some(metrics) = &self.metrics {
            metrics.callers_reloaded(loaded.is_ok());
        }
        match loaded {
            Ok(fresh) => {
                let mut current = table.write().unwrap_or_else(|poisoned| poisoned.into_inner());
                let fresh = fresh.carry_limits_from(&current);
                tracing::info!(callers = fresh.len(), "callers file reloaded");
                *current = Arc::new(fresh);
            }
            Err(error) => tracing::warn!(%error, "callers file not reloaded; the previous one stays in force"),
        }
    }
}

/// The key of `authorization: Bearer <key>`, if the call sent one.
fn bearer_key(headers: &HeaderMap) -> Option<&[u8]> {
    let value = headers.get(http::header::AUTHORIZATION)?.as_bytes();
    let scheme = value.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let key = value[7..].trim_ascii();
    (!key.is_empty()).then_some(key)
}

/// The caller named by a DNS SAN of the client certificate (exact names;
/// a wildcard SAN names no caller).
fn caller_of_certificate(table: &CallerTable, der: &rustls::pki_types::CertificateDer<'_>) -> Option<Arc<Caller>> {
    let certificate = webpki::EndEntityCert::try_from(der).ok()?;
    table.by_dns_name(certificate.valid_dns_names().filter(|name| !name.contains('*')))
}

/// Who is calling which method: set on every call the front door lets
/// through, read by the service once it knows the request's project.
#[derive(Debug, Clone)]
pub(crate) struct Admission {
    caller: Arc<Caller>,
    method: String,
    metrics: Option<Metrics>,
}

impl Admission {
    /// The name of the caller from the callers file the front door let in;
    /// None without a callers file (every call is the one anonymous caller).
    pub(crate) fn caller_name(extensions: &http::Extensions) -> Option<Arc<str>> {
        let caller = &extensions.get::<Admission>()?.caller;
        (&*caller.name != ANONYMOUS).then(|| caller.name.clone())
    }

    /// Whether the call may go on in `project` (the request's, or the
    /// default for an empty one). A call that did not pass the front door
    /// has no admission and is refused.
    pub(crate) fn permit(extensions: &http::Extensions, project: &str) -> Result<(), Error> {
        let Some(admission) = extensions.get::<Admission>() else {
            return Err(Error::Refused(Refusal::CallerUnknown {
                method: "unknown".into(),
            }));
        };
        let caller = &admission.caller;
        if caller.role >= required_role(&admission.method) && caller.may_act_in(project) {
            return Ok(());
        }
        let refusal = Refusal::CallerNotAllowed {
            caller: caller.name.clone(),
            role: caller.role.name(),
            method: admission.method.clone(),
            project: project.to_string(),
        };
        if let Some(metrics) = &admission.metrics {
            metrics.caller_refused(&caller.name, refusal.reason());
        }
        Err(Error::Refused(refusal))
    }
}

impl<S> Layer<S> for FrontDoor {
    type Service = FrontDoorService<S>;

    fn layer(&self, inner: S) -> FrontDoorService<S> {
        FrontDoorService {
            inner,
            door: self.clone(),
        }
    }
}

/// The front door in front of the gRPC services.
#[derive(Debug, Clone)]
pub(crate) struct FrontDoorService<S> {
    inner: S,
    door: FrontDoor,
}

impl<S, ReqBody> Service<Request<ReqBody>> for FrontDoorService<S>
where
    S: Service<Request<ReqBody>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let (service, method) = request
            .uri()
            .path()
            .trim_start_matches('/')
            .split_once('/')
            .unwrap_or(("", ""));
        if needs_no_identity(service) {
            return Box::pin(inner.call(request));
        }
        let method = method.to_string();
        let shared = &self.door.shared;
        let note = request.extensions().get::<Arc<AccessNote>>().cloned();
        let Some(caller) = self.door.identify(request.headers(), request.extensions()) else {
            if let Some(note) = note {
                note.set_caller(callers::UNKNOWN.into(), shared.table.is_some());
            }
            let refused = self.door.refuse(Refusal::CallerUnknown { method }, None);
            return Box::pin(std::future::ready(Ok(refused)));
        };
        if let Some(note) = note {
            note.set_caller(caller.name.clone(), shared.table.is_some());
        }
        let limits = &shared.settings.limits;
        if let Err(retry_after) = caller.limits.take_call(limits, Instant::now()) {
            let refusal = Refusal::RateLimited {
                caller: caller.name.clone(),
                method,
                retry_after,
            };
            return Box::pin(std::future::ready(Ok(self.door.refuse(refusal, Some(&caller.name)))));
        }
        let permit = match is_watch(&method) {
            false => None,
            true => match caller.limits.open_watch(limits) {
                Some(permit) => Some(WatchGuard::new(permit, &caller.name, shared.metrics.as_ref())),
                None => {
                    let refusal = Refusal::TooManyWatches {
                        caller: caller.name.clone(),
                        method,
                        limit: limits.max_watches.unwrap_or_default(),
                    };
                    return Box::pin(std::future::ready(Ok(self.door.refuse(refusal, Some(&caller.name)))));
                }
            },
        };
        request.extensions_mut().insert(Admission {
            caller,
            method,
            metrics: shared.metrics.clone(),
        });
        let future = inner.call(request);
        Box::pin(async move {
            let response = future.await?;
            Ok(match permit {
                Some(guard) => response.map(|inner| tonic::body::Body::new(WatchBody { inner, _guard: guard })),
                None => response,
            })
        })
    }
}

/// One open watch, counted in the caller's limit and in metrics while it lives.
struct WatchGuard {
    _permit: WatchPermit,
    gauge: Option<::metrics::Gauge>,
}

impl WatchGuard {
    fn new(permit: WatchPermit, caller: &str, metrics: Option<&Metrics>) -> WatchGuard {
        let gauge = metrics.map(|m| m.caller_watches(caller));
        if let Some(gauge) = &gauge {
            gauge.increment(1.0);
        }
        WatchGuard { _permit: permit, gauge }
    }
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        if let Some(gauge) = &self.gauge {
            gauge.decrement(1.0);
        }
    }
}

/// A watch's response body: the watch stays counted until the stream ends
/// or the client goes away (the body is dropped).
struct WatchBody {
    inner: tonic::body::Body,
    _guard: WatchGuard,
}

impl Body for WatchBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table_with_certificate_caller() -> CallerTable {
        callers::from_bytes(
            std::path::Path::new("callers.toml"),
            b"[[caller]]\nname = \"billing\"\nclient_cert_dns = \"billing.internal\"\nprojects = [\"*\"]\nrole = \"reader\"\n",
        )
        .unwrap()
    }

    fn certificate(names: &[&str]) -> rustls::pki_types::CertificateDer<'static> {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        rcgen::generate_simple_self_signed(names).unwrap().cert.der().clone()
    }

    #[test]
    fn a_client_certificate_names_its_caller_by_dns_san() {
        let table = table_with_certificate_caller();
        let caller = caller_of_certificate(&table, &certificate(&["other.internal", "billing.internal"]));
        assert_eq!(caller.map(|c| c.name.to_string()).as_deref(), Some("billing"));
        assert!(caller_of_certificate(&table, &certificate(&["*.internal"])).is_none());
        assert!(caller_of_certificate(&table, &certificate(&["billing.internal.evil"])).is_none());
        assert!(caller_of_certificate(&table, &rustls::pki_types::CertificateDer::from(vec![1, 2, 3])).is_none());
    }

    #[test]
    fn reads_bearer_keys() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_key(&headers), None);
        headers.insert("authorization", "Bearer  k3y ".parse().unwrap());
        assert_eq!(bearer_key(&headers), Some(&b"k3y"[..]));
        headers.insert("authorization", "bearer k3y".parse().unwrap());
        assert_eq!(bearer_key(&headers), Some(&b"k3y"[..]));
        headers.insert("authorization", "Basic k3y".parse().unwrap());
        assert_eq!(bearer_key(&headers), None);
        headers.insert("authorization", "Bearer ".parse().unwrap());
        assert_eq!(bearer_key(&headers), None);
    }
}
