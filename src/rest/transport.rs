//! The one pooled HTTP client: builds each upstream request from safe path
//! segments, authorizes it, sends it within the caller's deadline, retries what
//! is safe to retry, and hands back the status and body.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use http::{HeaderMap, HeaderValue, Method, header};
use reqwest::Url;
use serde::de::DeserializeOwned;
use tracing::Instrument;

use super::credentials::{AccessKey, Credentials, Secret, scrub};
use super::error::{RestError, TransportKind, UpstreamFault};
use super::iam::TokenSource;
use super::observer::UpstreamObserver;
use super::retry::RetryPolicy;
use super::signer;
use super::{CallContext, Operation};

const USER_AGENT: &str = concat!("vbs-gateway/", env!("CARGO_PKG_VERSION"));
const JSON: &str = "application/json";
/// The most an upstream call stops ahead of the caller's deadline.
const DEADLINE_MARGIN: Duration = Duration::from_millis(100);
/// Upstream bodies logged on a decode failure are cut here.
const LOGGED_BODY_LIMIT: usize = 2048;

/// Settings of the upstream connection.
#[derive(Debug, Clone)]
pub struct TransportConfig {
    /// Base URL of VBS, e.g. https://vbs.eu-de.otc.t-systems.com.
    pub endpoint: Url,
    /// Longest time one upstream request may take.
    pub timeout: Duration,
    pub connect_timeout: Duration,
    /// Accept any TLS certificate. Only for test endpoints; off by default.
    pub insecure_skip_tls_verify: bool,
    /// Extra PEM root certificates to trust (a private CA).
    pub ca_certificates_pem: Option<Vec<u8>>,
    pub credentials: Credentials,
    pub retry: RetryPolicy,
    /// Hears of every upstream request (metrics), when metrics are on.
    pub observer: Option<Arc<dyn UpstreamObserver>>,
}

/// One upstream request, before it is sent.
#[derive(Debug, Clone)]
pub struct Call {
    pub operation: Operation,
    pub method: Method,
    /// Path segments after the endpoint's own path, e.g. ["v2", project, "backups"].
    pub path: Vec<String>,
    /// Decoded query pairs; sent sorted and encoded, exactly as signed.
    pub query: Vec<(String, String)>,
    /// JSON body bytes.
    pub body: Option<Vec<u8>>,
}

impl Call {
    pub fn new(operation: Operation, method: Method, path: &[&str]) -> Call {
        Call {
            operation,
            method,
            path: path.iter().map(|s| s.to_string()).collect(),
            query: Vec::new(),
            body: None,
        }
    }

    pub fn query(mut self, pairs: Vec<(String, String)>) -> Call {
        self.query = pairs;
        self
    }

    pub fn json_body(mut self, body: &impl serde::Serialize) -> Result<Call, RestError> {
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
pub struct Reply {
    pub status: u16,
    pub body: Bytes,
}

/// The process's upstream client; cheap to share behind an Arc.
#[derive(Debug)]
pub struct Transport {
    http: reqwest::Client,
    endpoint: Url,
    timeout: Duration,
    credentials: Credentials,
    /// Present with IAM user credentials.
    tokens: Option<TokenSource>,
    retry: RetryPolicy,
    observer: Option<Arc<dyn UpstreamObserver>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TransportBuildError {
    #[error("the upstream endpoint {0} must be an http or https URL without query or fragment")]
    Endpoint(Url),
    #[error("the CA certificate file is not valid PEM: {0}")]
    CaCertificate(String),
    #[error("could not build the HTTP client: {0}")]
    Client(String),
}

impl Transport {
    pub fn new(config: TransportConfig) -> Result<Transport, TransportBuildError> {
        let endpoint = config.endpoint;
        let usable = matches!(endpoint.scheme(), "http" | "https")
            && endpoint.host_str().is_some()
            && endpoint.query().is_none()
            && endpoint.fragment().is_none();
        if !usable {
            return Err(TransportBuildError::Endpoint(endpoint));
        }
        // rustls needs one process-wide crypto provider; ring is the one we ship.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut builder = reqwest::Client::builder()
            .user_agent(USER_AGENT)
            .connect_timeout(config.connect_timeout)
            .pool_idle_timeout(Duration::from_secs(90))
            .redirect(reqwest::redirect::Policy::none())
            .tls_danger_accept_invalid_certs(config.insecure_skip_tls_verify);
        if let Some(pem) = &config.ca_certificates_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| TransportBuildError::CaCertificate(e.to_string()))?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder
            .build()
            .map_err(|e| TransportBuildError::Client(e.to_string()))?;
        let tokens = match &config.credentials {
            Credentials::Iam(user) => Some(TokenSource::new(http.clone(), user.clone(), config.timeout)),
            _ => None,
        };
        Ok(Transport {
            http,
            endpoint,
            timeout: config.timeout,
            credentials: config.credentials,
            tokens,
            retry: config.retry,
            observer: config.observer,
        })
    }

    /// The IAM token source, when the gateway authenticates as an IAM user.
    pub fn token_source(&self) -> Option<&TokenSource> {
        self.tokens.as_ref()
    }

    /// Sends the call, retrying what the retry policy allows, and returns the
    /// success reply or the error of the last attempt.
    pub async fn send(&self, ctx: &CallContext, call: &Call) -> Result<Reply, RestError> {
        let url = self.url(call)?;
        let mut attempt = 1;
        let mut renewed = false;
        loop {
            let iam_token = self.iam_token(ctx, call.operation).await?;
            let result = self.send_once(ctx, call, &url, iam_token.as_ref()).await;
            let Err(error) = &result else { return result };
            if let (Some(token), Some(source)) = (&iam_token, &self.tokens)
                && error.http_status() == Some(401)
                && !renewed
            {
                // VBS no longer takes the token (revoked, or expired early by
                // its clock): renew it once. A 401 means nothing was done, so
                // even a write may be sent again.
                tracing::info!(operation = %call.operation, "upstream rejected the IAM token; renewing it");
                source.invalidate(token).await;
                renewed = true;
                continue;
            }
            let Some(pause) = self.retry.pause_before_retry(&call.method, error, attempt) else {
                return result;
            };
            if ctx.deadline.is_some_and(|d| Instant::now() + pause >= d) {
                return result;
            }
            tracing::debug!(operation = %call.operation, attempt, ?pause, error = %error, "retrying upstream call");
            attempt += 1;
            tokio::time::sleep(pause).await;
        }
    }

    /// The gateway's IAM token for this call: none when the caller brings its
    /// own token or the gateway does not authenticate as an IAM user.
    async fn iam_token(&self, ctx: &CallContext, operation: Operation) -> Result<Option<Secret>, RestError> {
        match (&self.tokens, &ctx.caller_token) {
            (Some(source), None) => source.token().await.map(Some).map_err(|e| RestError::Credentials {
                operation,
                detail: e.detail,
                rejected: e.rejected,
            }),
            _ => Ok(None),
        }
    }

    /// Sends the call and decodes a JSON reply.
    pub async fn call_json<T: DeserializeOwned>(&self, ctx: &CallContext, call: &Call) -> Result<T, RestError> {
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
    pub async fn call_empty(&self, ctx: &CallContext, call: &Call) -> Result<(), RestError> {
        self.send(ctx, call).await.map(|_| ())
    }

    /// The endpoint plus percent-encoded path segments and the canonical
    /// query, written out once and parsed once.
    fn url(&self, call: &Call) -> Result<Url, RestError> {
        let mut url = self.endpoint.as_str().trim_end_matches('/').to_string();
        for segment in &call.path {
            if !is_safe_segment(segment) {
                return Err(RestError::UnsafePathSegment {
                    operation: call.operation,
                    segment: segment.clone(),
                });
            }
            url.push('/');
            url.push_str(&signer::encode(segment));
        }
        let query = signer::canonical_query_string(&call.query);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        Url::parse(&url).map_err(|e| RestError::Build {
            operation: call.operation,
            detail: e.to_string(),
        })
    }

    async fn send_once(
        &self,
        ctx: &CallContext,
        call: &Call,
        url: &Url,
        iam_token: Option<&Secret>,
    ) -> Result<Reply, RestError> {
        let operation = call.operation;
        let (timeout, deadline_bound) = self.budget(ctx, operation)?;
        let headers = self.headers(ctx, call, url, iam_token)?;
        let mut request = self
            .http
            .request(call.method.clone(), url.clone())
            .headers(headers)
            .timeout(timeout);
        if let Some(body) = &call.body {
            request = request.body(body.clone());
        }
        let span = tracing::info_span!(
            "upstream",
            %operation,
            method = %call.method,
            path = url.path(),
            status = tracing::field::Empty,
            elapsed_ms = tracing::field::Empty,
        );
        let started = Instant::now();
        let exchange = async {
            let response = request.send().await?;
            let status = response.status().as_u16();
            let retry_after = retry_after(response.headers());
            Ok::<_, reqwest::Error>((status, retry_after, response.bytes().await?))
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
        if (200..300).contains(&status) {
            return Ok(Reply { status, body });
        }
        Err(RestError::Status {
            operation,
            status,
            fault: self.scrubbed(UpstreamFault::parse(&body), ctx, iam_token),
            retry_after,
        })
    }

    /// Upstream messages sometimes echo what they rejected; no secret of
    /// ours travels on in one.
    fn scrubbed(&self, mut fault: UpstreamFault, ctx: &CallContext, iam_token: Option<&Secret>) -> UpstreamFault {
        let mut secrets = self.credentials.secrets();
        secrets.extend(ctx.caller_token.iter().chain(iam_token).map(Secret::expose));
        fault.message = fault.message.map(|m| scrub(&m, &secrets));
        fault.code = fault.code.map(|c| scrub(&c, &secrets));
        fault
    }

    /// How long this attempt may take, and whether that limit is the caller's deadline.
    fn budget(&self, ctx: &CallContext, operation: Operation) -> Result<(Duration, bool), RestError> {
        let Some(deadline) = ctx.deadline else {
            return Ok((self.timeout, false));
        };
        // Stop a little early, so the DEADLINE_EXCEEDED answer (with its
        // details) reaches the caller before the caller's own timer fires.
        let left = deadline.saturating_duration_since(Instant::now());
        let left = left.saturating_sub((left / 5).min(DEADLINE_MARGIN));
        if left.is_zero() {
            return Err(RestError::DeadlineExceeded { operation });
        }
        Ok(if left < self.timeout {
            (left, true)
        } else {
            (self.timeout, false)
        })
    }

    /// The headers of one attempt: content type, project, and the call's
    /// authorization: the caller's token, else the gateway's token, else an
    /// AK/SK signature over exactly what is sent.
    fn headers(
        &self,
        ctx: &CallContext,
        call: &Call,
        url: &Url,
        iam_token: Option<&Secret>,
    ) -> Result<HeaderMap, RestError> {
        let operation = call.operation;
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
        headers.insert("x-project-id", header_value(operation, &ctx.project_id)?);
        let static_token = match &self.credentials {
            Credentials::Token(token) => Some(token),
            _ => None,
        };
        if let Some(token) = ctx.caller_token.as_ref().or(iam_token).or(static_token) {
            headers.insert("x-auth-token", secret_value(operation, token)?);
        } else if let Credentials::AccessKey(key) = &self.credentials {
            sign(ctx, call, url, key, &mut headers)?;
        }
        Ok(headers)
    }
}

/// Adds X-Sdk-Date, Authorization (and X-Security-Token) for this attempt.
/// Signed: host (from the URL, as the HTTP client sends it), content-type,
/// x-project-id, x-sdk-date, and the exact path, query and body bytes.
fn sign(ctx: &CallContext, call: &Call, url: &Url, key: &AccessKey, headers: &mut HeaderMap) -> Result<(), RestError> {
    let operation = call.operation;
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (host, None) => host.unwrap_or_default().to_string(),
        (None, Some(_)) => String::new(),
    };
    let signed = [
        ("content-type".to_string(), JSON.to_string()),
        ("x-project-id".to_string(), ctx.project_id.clone()),
    ];
    let view = signer::RequestView {
        method: call.method.as_str(),
        host: &host,
        path: url.path(),
        query: &call.query,
        headers: &signed,
        body: call.body.as_deref().unwrap_or_default(),
    };
    let credentials = signer::Credentials {
        access_key: key.access_key.expose(),
        secret_key: key.secret_key.expose(),
        security_token: key.security_token.as_ref().map(Secret::expose),
    };
    let signature = signer::sign(&view, &credentials, Utc::now());
    headers.insert("x-sdk-date", header_value(operation, &signature.x_sdk_date)?);
    headers.insert(
        header::AUTHORIZATION,
        secret_value(operation, &Secret::new(signature.authorization))?,
    );
    if let Some(token) = &key.security_token {
        headers.insert("x-security-token", secret_value(operation, token)?);
    }
    Ok(())
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

/// A header value the HTTP stack never prints (its Debug shows "Sensitive").
fn secret_value(operation: Operation, secret: &Secret) -> Result<HeaderValue, RestError> {
    let mut value = header_value(operation, secret.expose())?;
    value.set_sensitive(true);
    Ok(value)
}

fn header_value(operation: Operation, value: &str) -> Result<HeaderValue, RestError> {
    HeaderValue::from_str(value).map_err(|_| RestError::Build {
        operation,
        detail: "a header value has characters HTTP does not allow".into(),
    })
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
}
