//! The tower layer every RPC passes through: it gives the call a request id
//! (the caller's `x-request-id`, or a new one, returned in the response), runs
//! the call inside an `rpc` span, counts and times it by gRPC code, and writes
//! its access-log line (caller, method, project, resource ids, code, duration).

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use tower::{Layer, Service};
use tracing::Instrument;

use crate::metrics::{Metrics, RpcName};

const REQUEST_ID: &str = "x-request-id";
/// The target of access-log lines, so a filter can keep or drop them alone.
const ACCESS_TARGET: &str = "vbs_gateway::access";
/// Longest caller-chosen request id kept; longer ones are replaced.
const MAX_REQUEST_ID_LEN: usize = 128;

/// Adds request ids, spans and (when enabled) metrics to every RPC.
#[derive(Debug, Clone, Default)]
pub(crate) struct RpcLayer {
    metrics: Option<Metrics>,
}

impl RpcLayer {
    pub(crate) fn new(metrics: Option<Metrics>) -> RpcLayer {
        RpcLayer { metrics }
    }
}

impl<S> Layer<S> for RpcLayer {
    type Service = RpcService<S>;

    fn layer(&self, inner: S) -> RpcService<S> {
        RpcService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct RpcService<S> {
    inner: S,
    metrics: Option<Metrics>,
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
            request_id = %request_id.to_str().unwrap_or_default(),
        );
        let note = Arc::new(AccessNote::default());
        request.extensions_mut().insert(note.clone());
        // The clone that was made ready is the one to call (tower's usual swap).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        // The front door names the caller while `call` runs, before the start is counted.
        let future = span.in_scope(|| inner.call(request));
        if let Some(metrics) = &self.metrics {
            metrics.rpc_started(&rpc, note.caller_label());
        }
        let metrics = self.metrics.clone();
        Box::pin(async move {
            let mut response = future.instrument(span.clone()).await?;
            let finish = Finish {
                metrics,
                rpc,
                started,
                note,
                request_id: request_id.clone(),
            };
            response.headers_mut().insert(REQUEST_ID, request_id);
            let code_in_headers = grpc_code(response.headers());
            Ok(response.map(|inner| RpcBody {
                inner,
                span,
                code_in_headers,
                finish: Some(finish),
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
    note: Arc<AccessNote>,
    request_id: HeaderValue,
}

impl Finish {
    fn record(self, code: tonic::Code) {
        let elapsed = self.started.elapsed();
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
}

/// The response body, polled inside the RPC's span (streams run their work
/// as they are polled) and watched for the grpc-status that ends the call.
pub(crate) struct RpcBody {
    inner: tonic::body::Body,
    span: tracing::Span,
    code_in_headers: Option<tonic::Code>,
    finish: Option<Finish>,
}

impl RpcBody {
    fn finish(&mut self, code: tonic::Code) {
        if let Some(finish) = self.finish.take() {
            let _entered = self.span.enter();
            finish.record(code);
        }
    }
}

impl Body for RpcBody {
    type Data = Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, tonic::Status>>> {
        let this = &mut *self;
        let polled = {
            let _entered = this.span.enter();
            Pin::new(&mut this.inner).poll_frame(cx)
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_code) {
                    this.finish(code);
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
        let code = self.code_in_headers.unwrap_or(tonic::Code::Cancelled);
        self.finish(code);
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
}
