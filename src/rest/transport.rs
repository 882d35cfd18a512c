//! The upstream client (a pool of connections per thread, pools.rs): builds
//! each upstream request from safe path segments, has the authorizer authorize
//! it, sends it within the caller's deadline, sends again what the retry
//! policy allows, and hands back the status and body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, header};
use reqwest::Url;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::auth::{self, Authorization, Authorizer, Outgoing, Rejection, header_value};
use super::credentials::{Credentials, Secret, scrub};
use super::error::{LOGGED_TEXT_LIMIT, RestError, TransportKind, UpstreamFault, cut};
use super::ledger;
use super::observer::UpstreamObserver;
use super::pools::{ClientSettings, ThreadPools};
use super::retry::{Next, Progress, RetryPolicy};
use super::{CallContext, Operation};
use crate::store::budget::{Slot, UpstreamBudget};
use apig_signer as signer;

const JSON: &str = "application/json";
/// The most an upstream call stops ahead of the caller's deadline.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);
/// Upstream bodies logged on a decode failure are cut here.
const LOGGED_BODY_LIMIT: usize = 2048;
/// Default cap of an upstream body (`--max-upstream-body`).
pub(crate) const DEFAULT_MAX_BODY: usize = 8 * 1024 * 1024;
/// Default time a call without a deadline of its own may take, all attempts together.
pub(crate) const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);
/// VBS error codes are short; a longer one is cut here.
const FAULT_CODE_LIMIT: usize = 128;

/// Settings of the upstream connection.
#[derive(Debug, Clone)]
pub(crate) struct TransportConfig {
    /// Base URL of VBS, e.g. https://vbs.eu-de.otc.t-systems.com.
    pub(crate) endpoint: Url,
    /// Longest time one upstream request may take.
    pub(crate) timeout: Duration,
    pub(crate) connect_timeout: Duration,
    /// Accept any TLS certificate. Only for test endpoints; off by default.
    pub(crate) insecure_skip_tls_verify: bool,
    /// Extra PEM root certificates to trust (a private CA).
    pub(crate) ca_certificates_pem: Option<Vec<u8>>,
    /// How upstream calls are authenticated.
    pub(crate) credentials: Credentials,
    /// Send a caller's own token (`CallContext::caller_token`) instead of the credentials.
    pub(crate) pass_through_token: bool,
    /// Which failed attempts are sent again, and when.
    pub(crate) retry: RetryPolicy,
    /// Hears of every upstream request (metrics), when metrics are on.
    pub(crate) observer: Option<Arc<dyn UpstreamObserver>>,
    /// Longest upstream body read; a longer one fails the call and its
    /// connection is dropped.
    pub(crate) max_body: usize,
    /// What bounds all attempts of a call whose caller set no deadline.
    pub(crate) default_deadline: Duration,
    /// The per-project budget every request draws from; None: unbounded.
    pub(crate) budget: Option<Arc<dyn UpstreamBudget>>,
}

/// One upstream request, before it is sent.
#[derive(Debug, Clone)]
pub(crate) struct Call {
    pub(crate) operation: Operation,
    pub(crate) method: Method,
    /// Path segments after the endpoint's own path, e.g. ["v2", project, "backups"].
    pub(crate) path: Vec<String>,
    /// Decoded query pairs; sent sorted and encoded, exactly as signed.
    pub(crate) query: Vec<(String, String)>,
    /// JSON body bytes.
    pub(crate) body: Option<Vec<u8>>,
}

impl Call {
    pub(crate) fn new(operation: Operation, method: Method, path: &[&str]) -> Call {
        Call {
            operation,
            method,
            path: path.iter().map(|s| s.to_string()).collect(),
            query: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn query(mut self, pairs: Vec<(String, String)>) -> Call {
        self.query = pairs;
        self
    }

    pub(crate) fn json_body(mut self, body: &impl serde::Serialize) -> Result<Call, RestError> {
        let bytes = serde_json::to_vec(body).map_err(|e| RestError::Build {
            operation: self.operation,
            detail: e.to_string(),
        })?;
        self.body = Some(bytes);
        Ok(self)
    }
}

/// A success answer from upstream.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: u16,
    pub(crate) body: Bytes,
}

/// The process's upstream client; cheap to share behind an Arc.
#[derive(Debug)]
pub(crate) struct Transport {
    http: ThreadPools,
    endpoint: Url,
    timeout: Duration,
    authorizer: Box<dyn Authorizer>,
    retry: RetryPolicy,
    observer: Option<Arc<dyn UpstreamObserver>>,
    max_body: usize,
    default_deadline: Duration,
    budget: Option<Arc<dyn UpstreamBudget>>,
}

/// Why the upstream client cannot be built from its settings.
#[derive(Debug, thiserror::Error)]
pub enum TransportBuildError {
    /// The endpoint is not a plain http(s) URL.
    #[error("the upstream endpoint {0} must be an http or https URL without query or fragment")]
    Endpoint(Url),
    /// The extra root certificates do not parse.
    #[error("the CA certificate file is not valid PEM: {0}")]
    CaCertificate(String),
    /// The TLS stack refused the settings.
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

impl Transport {
    pub(crate) fn new(config: TransportConfig) -> Result<Transport, TransportBuildError> {
        let endpoint = config.endpoint;
        let usable = matches!(endpoint.scheme(), "http" | "https")
            && endpoint.host_str().is_some()
            && endpoint.query().is_none()
            && endpoint.fragment().is_none();
        if !usable {
            return Err(TransportBuildError::Endpoint(endpoint));
        }
        let extra_roots = match &config.ca_certificates_pem {
            Some(pem) => reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| TransportBuildError::CaCertificate(e.to_string()))?,
            None => Vec::new(),
        };
        let http = ThreadPools::new(ClientSettings {
            connect_timeout: config.connect_timeout,
            insecure_skip_tls_verify: config.insecure_skip_tls_verify,
            extra_roots,
        })
        .map_err(|e| TransportBuildError::Client(e.to_string()))?;
        let authorizer = auth::for_credentials(
            config.credentials,
            config.pass_through_token,
            http.shared(),
            config.timeout,
        );
        Ok(Transport {
            http,
            endpoint,
            timeout: config.timeout,
            authorizer,
            retry: config.retry,
            observer: config.observer,
            max_body: config.max_body,
            default_deadline: config.default_deadline,
            budget: config.budget,
        })
    }

    /// How upstream calls are authenticated.
    pub(crate) fn authorizer(&self) -> &dyn Authorizer {
        self.authorizer.as_ref()
    }

    /// Sends the call, again when the retry policy allows (after a pause) or
    /// the authorizer renewed rejected credentials (at once), and returns the
    /// success reply or the error of the last attempt. The caller's deadline,
    /// or the default one, bounds every attempt and pause together; a pause
    /// upstream asked for (Retry-After) that would pass it ends the call at once.
    pub(crate) async fn send(&self, ctx: &CallContext, call: &Call) -> Result<Reply, RestError> {
        let deadline = ctx.deadline.unwrap_or_else(|| Instant::now() + self.default_deadline);
        let url = call_url(&self.endpoint, call)?;
        let headers = base_headers(ctx, call.operation)?;
        let request = Outgoing {
            operation: call.operation,
            method: &call.method,
            url: &url,
            query: &call.query,
            headers: &headers,
            body: call.body.as_deref(),
            caller_token: ctx.caller_token.as_ref(),
        };
        let mut progress = Progress::first();
        let send_by = ctx.send_by.map_or(deadline, |by| by.min(deadline));
        self.take_slot(ctx, send_by, call.operation).await?;
        loop {
            let authorization = self.authorizer.authorize(&request).await?;
            let result = self.send_once(deadline, &request, &authorization).await;
            let Err(error) = &result else { return result };
            match self.retry.next(&call.method, error.into(), progress, fastrand::f64()) {
                Next::GiveUp => return result,
                Next::AskAuthorizer => match self.authorizer.on_rejection(&request, &authorization).await {
                    Rejection::SendAgain => progress.resent_after_rejection = true,
                    Rejection::GiveUp => return result,
                },
                Next::RetryAfter(pause) => {
                    if Instant::now() + pause >= deadline {
                        return result;
                    }
                    let attempt = progress.attempt;
                    tracing::debug!(operation = %call.operation, attempt, ?pause, error = %error, "retrying upstream call");
                    progress.attempt += 1;
                    tokio::time::sleep(pause).await;
                }
            }
            // A retry without a slot ends with what upstream said last.
            if self.take_slot(ctx, deadline, call.operation).await.is_err() {
                return result;
            }
        }
    }

    /// Waits for the next slot of the project's budget, unless it comes after
    /// the deadline: then nothing is sent, and the caller learns when to retry.
    /// A shared budget that cannot be asked does not stop the call; the store
    /// says so in its own log.
    async fn take_slot(&self, ctx: &CallContext, deadline: Instant, operation: Operation) -> Result<(), RestError> {
        let Some(budget) = &self.budget else { return Ok(()) };
        match budget.reserve(&ctx.project_id, time_left(deadline)).await {
            Ok(Slot::After(wait)) => {
                if let Some(observer) = &self.observer {
                    observer.budget_waited(wait);
                }
                if !wait.is_zero() {
                    tokio::time::sleep(wait).await;
                }
                Ok(())
            }
            Ok(Slot::Exhausted { retry_after }) => {
                if let Some(observer) = &self.observer {
                    observer.budget_exhausted(operation);
                }
                Err(RestError::BudgetExhausted { operation, retry_after })
            }
            Err(_) => Ok(()),
        }
    }

    /// Sends the call and decodes a JSON reply.
    pub(crate) async fn call_json<T: DeserializeOwned>(&self, ctx: &CallContext, call: &Call) -> Result<T, RestError> {
        let reply = self.send(ctx, call).await?;
        serde_json::from_slice(&reply.body).map_err(|source| {
            tracing::warn!(
                operation = %call.operation,
                status = reply.status,
                body = %String::from_utf8_lossy(&reply.body[..reply.body.len().min(LOGGED_BODY_LIMIT)]),
                "upstream body does not decode"
            );
            RestError::Decode {
                operation: call.operation,
                status: reply.status,
                source,
            }
        })
    }

    /// Sends the call; any success status will do and the body is ignored.
    pub(crate) async fn call_empty(&self, ctx: &CallContext, call: &Call) -> Result<(), RestError> {
        self.send(ctx, call).await.map(|_| ())
    }

    async fn send_once(
        &self,
        deadline: Instant,
        request: &Outgoing<'_>,
        authorization: &Authorization,
    ) -> Result<Reply, RestError> {
        let operation = request.operation;
        let (timeout, deadline_bound) = self.attempt_timeout(deadline, operation)?;
        let mut headers = request.headers.clone();
        headers.extend(authorization.headers.clone());
        let mut http_request = self
            .http
            .here()
            .request(request.method.clone(), request.url.clone())
            .headers(headers)
            .timeout(timeout);
        match request.body {
            Some(body) => http_request = http_request.body(body.to_vec()),
            // A bodiless POST or PUT says so with Content-Length: 0, as the
            // SDK does; some proxies answer 411 to one without it.
            None if *request.method == Method::POST || *request.method == Method::PUT => {
                http_request = http_request.header(header::CONTENT_LENGTH, "0").body(Vec::<u8>::new());
            }
            None => {}
        }
        let span = tracing::info_span!(
            "upstream",
            %operation,
            method = %request.method,
            path = request.url.path(),
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        ledger::note(operation, request.method, request.url.path());
        let started = Instant::now();
        let max_body = self.max_body;
        let exchange = async {
            let response = http_request.send().await?;
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            Ok::<_, reqwest::Error>((status, retry_after, read_capped(response, max_body).await?))
        };
        let result = exchange.instrument(span.clone()).await;
        let elapsed = started.elapsed();
        let status = result.as_ref().ok().map(|(status, ..)| *status);
        span.record("elapsed_ms", elapsed.as_millis() as u64);
        if let Some(status) = status {
            span.record("status", status);
        }
        span.in_scope(|| tracing::debug!("upstream call"));
        if let Some(observer) = &self.observer {
            observer.upstream_request(operation, status, elapsed);
        }
        let (status, retry_after, body) = result.map_err(|e| transport_error(operation, e, deadline_bound))?;
        let fault = match body {
            Capped::Whole(body) if (200..300).contains(&status) => return Ok(Reply { status, body }),
            Capped::Whole(body) => self.scrubbed(UpstreamFault::parse(&body), authorization),
            Capped::OverCap if (200..300).contains(&status) => {
                return Err(RestError::BodyTooLarge {
                    operation,
                    status,
                    limit: max_body,
                });
            }
            // The status still says what happened; only the text is lost.
            Capped::OverCap => {
                tracing::warn!(%operation, status, limit = max_body, "upstream error body is over the cap; not read");
                UpstreamFault::default()
            }
        };
        Err(RestError::Status {
            operation,
            status,
            fault,
            retry_after,
        })
    }

    /// Upstream messages sometimes echo what they rejected; no secret of
    /// ours, configured or sent, travels on in one.
    /// Texts are cut before they are scrubbed, so scrubbing work stays
    /// bounded; a secret cut in two is still caught by its echoed prefix.
    fn scrubbed(&self, mut fault: UpstreamFault, sent: &Authorization) -> UpstreamFault {
        let mut secrets = self.authorizer.secrets();
        secrets.extend(sent.token.as_ref().map(Secret::expose));
        fault.message = fault.message.map(|m| scrub(&cut(&m, LOGGED_TEXT_LIMIT), &secrets));
        fault.code = fault.code.map(|c| scrub(&cut(&c, FAULT_CODE_LIMIT), &secrets));
        fault
    }

    /// How long this attempt may take, and whether that limit is the call's deadline.
    fn attempt_timeout(&self, deadline: Instant, operation: Operation) -> Result<(Duration, bool), RestError> {
        let left = time_left(deadline);
        if left.is_zero() {
            return Err(RestError::DeadlineExceeded { operation });
        }
        Ok(if left < self.timeout {
            (left, true)
        } else {
            (self.timeout, false)
        })
    }
}

/// The time left before `deadline`, less a margin: stopping a little early
/// lets the DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED answer (with its details)
/// reach the caller before the caller's own timer fires.
fn time_left(deadline: Instant) -> Duration {
    let left = deadline.saturating_duration_since(Instant::now());
    left.saturating_sub((left / 5).min(DEADLINE_MARGIN))
}

/// The headers every attempt sends before its authorization: content type and
/// project (for the calls in one). The authorizer signs them as they are.
fn base_headers(ctx: &CallContext, operation: Operation) -> Result<HeaderMap, RestError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
    if operation.in_project() {
        headers.insert("x-project-id", header_value(operation, &ctx.project_id)?);
    }
    Ok(headers)
}

/// Ids go into paths as single segments: letters, digits and `-_.~` only, and
/// never `.` or `..`, so no id can change which resource a URL names.
fn is_safe_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment != "."
        && segment != ".."
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// An upstream body, read up to a cap.
enum Capped {
    /// All of it.
    Whole(Bytes),
    /// More than the cap: reading stopped there.
    OverCap,
}

/// Reads the body chunk by chunk and stops at `cap`, so an endless or huge
/// body never sits in memory; the response (and with it the connection,
/// which cannot be reused mid-body) is dropped on return.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<Capped, reqwest::Error> {
    if response.content_length().is_some_and(|length| length > cap as u64) {
        return Ok(Capped::OverCap);
    }
    let mut body = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        if body.len() + chunk.len() > cap {
            return Ok(Capped::OverCap);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Capped::Whole(body.freeze()))
}

fn transport_error(operation: Operation, error: reqwest::Error, deadline_bound: bool) -> RestError {
    let kind = TransportKind::of(&error);
    if kind == TransportKind::Timeout && deadline_bound {
        return RestError::DeadlineExceeded { operation };
    }
    RestError::Transport {
        operation,
        kind,
        source: error.without_url(),
    }
}

/// Retry-After in seconds (the HTTP-date form is rare upstream and ignored).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let seconds = headers.get(header::RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds))
}

/// The endpoint plus percent-encoded path segments and the canonical
/// query. Only the path and query are written and parsed: the endpoint's
/// scheme and host were checked once, and parsing a whole URL per call
/// costs microseconds on every call's path.
fn call_url(endpoint: &Url, call: &Call) -> Result<Url, RestError> {
    let mut path = endpoint.path().trim_end_matches('/').to_string();
    for segment in &call.path {
        if !is_safe_segment(segment) {
            return Err(RestError::UnsafePathSegment {
                operation: call.operation,
                segment: segment.clone(),
            });
        }
        path.push('/');
        path.push_str(&signer::encode(segment));
    }
    let query = signer::canonical_query_string(&call.query);
    let mut url = endpoint.clone();
    url.set_path(&path);
    url.set_query((!query.is_empty()).then_some(query.as_str()));
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_ids_make_path_segments() {
        assert!(is_safe_segment("4010b39b5281d3590152874bfa3b1604"));
        assert!(is_safe_segment("c68ae7fb-0aa5-4a97-ab01-ed02c5b7e768"));
        for bad in ["", ".", "..", "a/b", "a%2Fb", "a?b", "a#b", "a b", "é"] {
            assert!(!is_safe_segment(bad), "{bad:?}");
        }
    }

    #[test]
    fn urls_keep_the_endpoint_path_and_carry_the_signed_query() {
        let call = |path: &[&str], query: &[(&str, &str)]| {
            Call::new(Operation::ListBackups, Method::GET, path)
                .query(query.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
        };
        let url = |endpoint: &str, call: &Call| call_url(&Url::parse(endpoint).unwrap(), call).unwrap().to_string();
        let list = call(
            &["v2", "p1", "backups", "detail"],
            &[("status", "available"), ("limit", "2")],
        );
        assert_eq!(
            url("https://vbs.example.com", &list),
            "https://vbs.example.com/v2/p1/backups/detail?limit=2&status=available"
        );
        assert_eq!(
            url("http://10.0.0.1:8443/prefix/", &list),
            "http://10.0.0.1:8443/prefix/v2/p1/backups/detail?limit=2&status=available"
        );
        let encoded = call(&["v2", "p1", "backups"], &[("name", "a b/c")]);
        assert_eq!(
            url("http://h", &encoded),
            "http://h/v2/p1/backups?name=a%20b%2Fc",
            "the query is sent exactly as it is signed"
        );
        assert_eq!(url("http://h/", &call(&[], &[])), "http://h/");
        let unsafe_id = call(&["v2", "p1", "backups", "../x"], &[]);
        assert!(matches!(
            call_url(&Url::parse("http://h").unwrap(), &unsafe_id),
            Err(RestError::UnsafePathSegment { .. })
        ));
    }
}
