//! The tower layer every RPC passes through: it gives the call a request id
//! (the caller's `x-request-id`, or a new one, returned in the response
//! headers and, on an error, in the trailers too), runs
//! the call inside an `rpc` span, counts and times it by gRPC code (also when
//! the client goes away or its deadline passes before the answer), and writes
//! its access-log line (caller, method, project, resource ids, code, duration).

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tokio_util::sync::CancellationToken;
use tower::{Layer, Service};
use tracing::Instrument;

use crate::error::Error;
use crate::metrics::{Metrics, RpcName};
use crate::rest::ledger::SentLedger;

const REQUEST_ID: &str = "x-request-id";
/// The target of access-log lines, so a filter can keep or drop them alone.
const ACCESS_TARGET: &str = "vbs_gateway::access";
/// Longest caller-chosen request id kept; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;
/// How much of a path that names no RPC the log keeps.
const MAX_LOGGED_PATH: usize = 128;

/// Adds request ids, spans and (when enabled) metrics to every RPC.
#[derive(Debug, Clone, Default)]
pub(crate) struct RpcLayer {
    metrics: Option<Metrics>,
    drained: CancellationToken,
}

impl RpcLayer {
    /// Once `drained` is cancelled, calls still waiting for their answer are
    /// answered UNAVAILABLE (SHUTTING_DOWN) and their work is dropped.
    pub(crate) fn new(metrics: Option<Metrics>, drained: CancellationToken) -> RpcLayer {
        RpcLayer { metrics, drained }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
            drained: self.drained.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RpcService<S> {
    inner: S,
    metrics: Option<Metrics>,
    drained: CancellationToken,
}

impl<S, ReqBody> Service<Request<ReqBody>> for RpcService<S>
where
    S: Service<Request<ReqBody>, Response = Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
{
    type Response = Response<RpcBody>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let rpc = RpcName::from_path(request.uri().path());
        let request_id = request_id(request.headers());
        let span = tracing::info_span!(
            "rpc",
            rpc.service = %rpc.service,
            rpc.method = %rpc.method,
            rpc.path = tracing::field::Empty,
            request_id = %request_id.to_str().unwrap_or_default(),
        );
        if rpc.is_unknown() {
            // The path names no RPC: logged (shortened) for whoever debugs the caller.
            let path: String = request.uri().path().chars().take(MAX_LOGGED_PATH).collect();
            span.record("rpc.path", path.as_str());
        }
        let note = Arc::new(AccessNote::default());
        request.extensions_mut().insert(note.clone());
        let deadline = grpc_timeout(request.headers()).map(|timeout| started + timeout);
        // The clone that was made ready is the one to call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // The front door names the caller while `call` runs, before the start is counted.
        let future = span.in_scope(|| inner.call(request));
        if let Some(metrics) = &self.metrics {
            metrics.rpc_started(&rpc, note.caller_label());
        }
        let sent = SentLedger::default();
        // Dropped with the future when the client goes away before the
        // answer: the guard then counts the call as cancelled.
        let mut pending = Pending(Some(Finish {
            metrics: self.metrics.clone(),
            rpc,
            started,
            deadline,
            sent: sent.clone(),
            span: span.clone(),
            note,
            request_id: request_id.clone(),
        }));
        let drained = self.drained.clone();
        Box::pin(async move {
            let call = sent.scope(future).instrument(span.clone());
            let called = tokio::select! {
                called = call => called,
                () = drained.cancelled() => {
                    span.in_scope(|| tracing::warn!(sent_upstream = %sent.summary(), "rpc cancelled at the end of the drain"));
                    Ok(tonic::Status::from(Error::Drained).into_http())
                }
            };
            let finish = pending.0.take();
            let mut response = match called {
                Ok(response) => response,
                Err(error) => {
                    if let Some(finish) = finish {
                        finish.record(tonic::Code::Unknown);
                    }
                    return Err(error);
                }
            };
            response.headers_mut().insert(REQUEST_ID, request_id.clone());
            let code_in_headers = grpc_code(response.headers());
            Ok(response.map(|inner| RpcBody {
                inner,
                code_in_headers,
                finish,
            }))
        })
    }
}

/// The caller's request id when it is a sane header value, else a new one.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID_LEN && v.to_str().is_ok())
        .cloned()
        .unwrap_or_else(|| {
            // fastrand, not a v4 UUID: no getrandom system call on every RPC.
            HeaderValue::from_str(&format!("{:032x}", fastrand::u128(..)))
                .unwrap_or_else(|_| HeaderValue::from_static("unknown"))
        })
}

/// The caller's grpc-timeout ("<up to 8 digits><H|M|S|m|u|n>").
fn grpc_timeout(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
    let value: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(value.saturating_mul(3600)),
        "M" => Duration::from_secs(value.saturating_mul(60)),
        "S" => Duration::from_secs(value),
        "m" => Duration::from_millis(value),
        "u" => Duration::from_micros(value),
        "n" => Duration::from_nanos(value),
        _ => return None,
    })
}

fn grpc_code(headers: &HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(tonic::Code::from_i32(value))
}

/// What an RPC's access-log line says beyond its method and code: the
/// caller (set by the front door) and the project and resource ids (set by
/// the service once the request is decoded). Unset parts log as empty.
#[derive(Debug, Default)]
pub(crate) struct AccessNote {
    caller: OnceLock<(Arc<str>, bool)>,
    project: OnceLock<String>,
    resources: OnceLock<String>,
}

impl AccessNote {
    /// The caller; `labelled`: it also labels metrics (its name comes from
    /// the callers file, so their number is bounded).
    pub(crate) fn set_caller(&self, name: Arc<str>, labelled: bool) {
        let _ = self.caller.set((name, labelled));
    }

    /// The project the call acts in and the resource ids it names.
    pub(crate) fn set_target(&self, project: &str, resources: String) {
        let _ = self.project.set(project.to_string());
        let _ = self.resources.set(resources);
    }

    fn caller(&self) -> &str {
        self.caller.get().map_or("", |(name, _)| name)
    }

    fn caller_label(&self) -> Option<&str> {
        self.caller
            .get()
            .filter(|(_, labelled)| *labelled)
            .map(|(name, _)| &**name)
    }
}

/// Records the end of one RPC, exactly once.
struct Finish {
    metrics: Option<Metrics>,
    rpc: RpcName,
    started: Instant,
    /// When the caller's deadline passes, if it sent one.
    deadline: Option<Instant>,
    /// What the call sent upstream, named when it ends without its answer.
    sent: SentLedger,
    span: tracing::Span,
    note: Arc<AccessNote>,
    request_id: HeaderValue,
}

impl Finish {
    fn record(self, code: tonic::Code) {
        let _entered = self.span.enter();
        let elapsed = self.started.elapsed();
        let elapsed_ms = elapsed.as_millis() as u64;
        match code {
            tonic::Code::Cancelled | tonic::Code::DeadlineExceeded => tracing::info!(
                ?code,
                elapsed_ms,
                sent_upstream = %self.sent.summary(),
                "rpc ended without its answer"
            ),
            _ => {}
        }
        let note = &self.note;
        tracing::info!(
            target: ACCESS_TARGET,
            caller = note.caller(),
            service = %self.rpc.service,
            method = %self.rpc.method,
            project = note.project.get().map_or("", String::as_str),
            resources = note.resources.get().map_or("", String::as_str),
            code = ?code,
            duration_ms = elapsed.as_secs_f64() * 1000.0,
            request_id = self.request_id.to_str().unwrap_or_default(),
            "rpc"
        );
        if let Some(metrics) = &self.metrics {
            metrics.rpc_handled(&self.rpc, note.caller_label(), code, elapsed);
        }
    }

    /// The client went away before the end: past its deadline that is a
    /// timeout, before it a cancellation.
    fn record_abandoned(self) {
        let code = match self.deadline {
            Some(deadline) if Instant::now() >= deadline => tonic::Code::DeadlineExceeded,
            _ => tonic::Code::Cancelled,
        };
        self.record(code);
    }
}

/// Holds the end of an RPC whose answer has not started yet.
struct Pending(Option<Finish>);

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(finish) = self.0.take() {
            finish.record_abandoned();
        }
    }
}

/// The response body, polled inside the RPC's span and ledger (streams run
/// their work, and send upstream, as they are polled) and watched for the
/// grpc-status that ends the call. The span, ledger and request id are the
/// `Finish`'s own: an open watch holds one copy of each.
pub(crate) struct RpcBody {
    inner: tonic::body::Body,
    code_in_headers: Option<tonic::Code>,
    /// Until the call's end is recorded.
    finish: Option<Finish>,
}

impl RpcBody {
    fn finish(&mut self, code: tonic::Code) {
        if let Some(finish) = self.finish.take() {
            finish.record(code);
        }
    }
}

impl Body for RpcBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        let inner = Pin::new(&mut this.inner);
        let mut polled = match &this.finish {
            Some(finish) => {
                let _entered = finish.span.enter();
                finish.sent.sync_scope(|| inner.poll_frame(cx))
            }
            None => inner.poll_frame(cx),
        };
        match &mut polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_mut() {
                    let code = grpc_code(trailers);
                    // A stream that fails long after its headers were read
                    // is then still traceable from its status alone.
                    if code.is_some_and(|code| code != tonic::Code::Ok)
                        && let Some(finish) = &this.finish
                    {
                        trailers.insert(REQUEST_ID, finish.request_id.clone());
                    }
                    if let Some(code) = code {
                        this.finish(code);
                    }
                }
            }
            Poll::Ready(Some(Err(status))) => this.finish(status.code()),
            Poll::Ready(None) => this.finish(this.code_in_headers.unwrap_or(tonic::Code::Unknown)),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for RpcBody {
    /// A body dropped before its status was seen: the client went away.
    fn drop(&mut self) {
        match (self.code_in_headers, self.finish.take()) {
            (Some(code), Some(finish)) => finish.record(code),
            (None, Some(finish)) => finish.record_abandoned(),
            (_, None) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_a_sane_request_id_and_replaces_others() {
        let mut headers = HeaderMap::new();
        headers.insert(REQUEST_ID, HeaderValue::from_static("req-42"));
        assert_eq!(request_id(&headers), "req-42");
        headers.insert(REQUEST_ID, HeaderValue::from_str(&"x".repeat(200)).unwrap());
        assert_eq!(request_id(&headers).len(), 32);
        assert_eq!(request_id(&HeaderMap::new()).len(), 32);
    }

    #[test]
    fn reads_grpc_timeouts() {
        let timeout = |text: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert("grpc-timeout", HeaderValue::from_static(text));
            grpc_timeout(&headers)
        };
        assert_eq!(timeout("1500m"), Some(Duration::from_millis(1500)));
        assert_eq!(timeout("2S"), Some(Duration::from_secs(2)));
        assert_eq!(timeout("1H"), Some(Duration::from_secs(3600)));
        assert_eq!(timeout("x"), None);
        assert_eq!(timeout(""), None);
    }
}
