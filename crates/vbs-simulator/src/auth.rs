//! What the cloud checks before VBS sees a request (AK/SK signatures, IAM tokens),
//! and the IAM endpoint that issues those tokens. Off unless `AuthConfig::enforce`,
//! so plain tests and demos need no credentials.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Value, json};

use super::apig::{MAX_BODY, request_id};
use super::clock::delta;
use super::{SimState, lock};
use apig_signer::{IncomingRequest, Secret, VerifyError};

/// Where IAM hands out tokens (Keystone v3).
pub(crate) const IAM_TOKENS_PATH: &str = "/v3/auth/tokens";
/// Tokens last 24 hours on the real IAM.
const DEFAULT_TOKEN_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// The API gateway refuses an X-Sdk-Date more than 15 minutes off.
const DEFAULT_MAX_CLOCK_SKEW: Duration = Duration::from_secs(15 * 60);
/// Real tokens start with "MII" (base64 of DER); the rest says where it came from.
const TOKEN_PREFIX: &str = "MIIsim";
const TOKEN_RANDOM_LEN: usize = 64;
const ACCESS_KEY_LEN: usize = 20;
const SECRET_KEY_LEN: usize = 40;
const UPPER_ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// Which credentials the simulated cloud accepts, and how strictly it checks.
#[derive(Clone, Debug)]
pub struct AuthConfig {
    /// false: no checks at all, and IAM issues a token to any well-formed
    /// request (the default for `SimulatorConfig::for_testing` and `demo`).
    pub enforce: bool,
    /// AK/SK pairs accepted, signed with any of SDK-HMAC-SHA256,
    /// V11-HMAC-SHA256 and SDK-HMAC-SM3 (whichever the Authorization names).
    pub access_keys: Vec<AccessKey>,
    /// Users the IAM endpoint issues tokens to.
    pub users: Vec<IamUser>,
    /// Tokens accepted besides issued ones; they never expire.
    pub static_tokens: Vec<Secret>,
    /// Lifetime of issued tokens, on the simulated clock.
    pub token_ttl: Duration,
    /// How far X-Sdk-Date may be from the signature clock.
    pub max_clock_skew: Duration,
    /// The signature clock is the wall clock plus this many seconds, so tests
    /// can play a client whose clock is off.
    pub clock_offset_secs: i64,
}

/// An AK/SK pair; with `security_token` it is a temporary one, and requests
/// must carry that token, signed, as X-Security-Token.
#[derive(Clone, Debug)]
pub struct AccessKey {
    /// The access key id (AK) named in the Authorization header.
    pub access_key: String,
    /// The secret key (SK) signatures are checked with.
    pub secret_key: Secret,
    /// The token temporary credentials must carry as X-Security-Token.
    pub security_token: Option<Secret>,
}

/// An IAM user that can get a token scoped to its one project.
#[derive(Clone, Debug)]
pub struct IamUser {
    /// The user name given in the token request.
    pub name: String,
    /// The password given in the token request.
    pub password: Secret,
    /// The account (domain) name the user belongs to.
    pub domain: String,
    /// Accepted as the scope's project name or id.
    pub project: String,
}

impl AuthConfig {
    /// Everything is let through.
    pub fn open() -> AuthConfig {
        AuthConfig {
            enforce: false,
            ..AuthConfig::enforcing()
        }
    }

    /// Checks every VBS request; nothing is accepted until keys, users or
    /// tokens are added.
    pub fn enforcing() -> AuthConfig {
        AuthConfig {
            enforce: true,
            access_keys: Vec::new(),
            users: Vec::new(),
            static_tokens: Vec::new(),
            token_ttl: DEFAULT_TOKEN_TTL,
            max_clock_skew: DEFAULT_MAX_CLOCK_SKEW,
            clock_offset_secs: 0,
        }
    }

    /// Adds a fresh random AK/SK pair and returns it too, so an embedded
    /// simulator and its gateway can share credentials nobody had to set up.
    pub fn with_generated_access_key(mut self) -> (AuthConfig, AccessKey) {
        let key = AccessKey {
            access_key: random_text(UPPER_ALNUM, ACCESS_KEY_LEN),
            secret_key: Secret::new(random_text(ALNUM, SECRET_KEY_LEN)),
            security_token: None,
        };
        self.access_keys.push(key.clone());
        (self, key)
    }

    fn access_key(&self, access_key: &str) -> Option<&AccessKey> {
        self.access_keys.iter().find(|key| key.access_key == access_key)
    }

    /// The clock X-Sdk-Date is compared with.
    fn signature_now(&self) -> DateTime<Utc> {
        let offset = TimeDelta::try_seconds(self.clock_offset_secs).unwrap_or(TimeDelta::MAX);
        Utc::now()
            .checked_add_signed(offset)
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }
}

/// The configuration plus the tokens issued so far.
pub(crate) struct AuthState {
    config: AuthConfig,
    issued: Mutex<IssuedTokens>,
}

/// No Debug on purpose: it holds live tokens.
#[derive(Default)]
struct IssuedTokens {
    /// Token -> when it stops being accepted (simulated clock).
    live: HashMap<String, DateTime<Utc>>,
    count: usize,
}

impl AuthState {
    pub(crate) fn new(config: AuthConfig) -> AuthState {
        AuthState {
            config,
            issued: Mutex::new(IssuedTokens::default()),
        }
    }

    /// How many tokens IAM has issued, revoked or expired ones included.
    pub(crate) fn issued_count(&self) -> usize {
        lock(&self.issued).count
    }

    pub(crate) fn revoke_all(&self) {
        lock(&self.issued).live.clear();
    }

    fn issue(&self, now: DateTime<Utc>) -> (String, DateTime<Utc>) {
        let token = format!("{TOKEN_PREFIX}{}", random_text(ALNUM, TOKEN_RANDOM_LEN));
        let expires_at = now
            .checked_add_signed(delta(self.config.token_ttl))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        let mut issued = lock(&self.issued);
        // Forget what can never be accepted again, so a long demo does not grow.
        issued.live.retain(|_, expiry| *expiry > now);
        issued.live.insert(token.clone(), expires_at);
        issued.count += 1;
        (token, expires_at)
    }

    fn accepts_token(&self, token: &str, now: DateTime<Utc>) -> bool {
        if token.is_empty() {
            return false;
        }
        let is_static = self
            .config
            .static_tokens
            .iter()
            .any(|known| same_secret(known.expose(), token));
        is_static || lock(&self.issued).live.get(token).is_some_and(|expiry| now < *expiry)
    }
}

// ------------------------------------------------------------ VBS API check

/// Why a VBS request was refused; the text is what the API gateway says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refusal {
    SignatureMismatch,
    UnknownAccessKey,
    SignatureExpired,
    DateNotSigned,
    NoCredentials,
    SecurityTokenMismatch,
    /// X-Auth-Token that is not (or no longer) valid.
    BadToken,
}

impl Refusal {
    fn reason(self) -> &'static str {
        match self {
            Refusal::SignatureMismatch => "verify aksk signature fail",
            Refusal::UnknownAccessKey => "ak not exist",
            Refusal::SignatureExpired => "signature expired",
            Refusal::DateNotSigned => "x-sdk-date not signed",
            Refusal::NoCredentials => "no credentials in the request",
            Refusal::SecurityTokenMismatch => "security token mismatch",
            Refusal::BadToken => "the token must be updated",
        }
    }
}

impl IntoResponse for Refusal {
    /// The API gateway's error body. Nothing from the request is echoed back.
    fn into_response(self) -> Response {
        let body = match self {
            Refusal::BadToken => json!({
                "error_code": "APIGW.0307",
                "error_msg": "The token must be updated.",
                "request_id": request_id(),
            }),
            _ => json!({
                "error_code": "APIGW.0301",
                "error_msg": format!("Incorrect IAM authentication information: {}", self.reason()),
                "request_id": request_id(),
            }),
        };
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    }
}

/// The check the API gateway makes before a request reaches VBS: a token if
/// one is sent, else an AK/SK signature. The body is read to verify the
/// signature and handed on unchanged.
pub(crate) async fn authenticate(State(state): State<SimState>, request: Request, next: Next) -> Response {
    let auth = state.auth();
    if !auth.config.enforce {
        return next.run(request).await;
    }
    let method = request.method().clone();
    let path = request.uri().path().to_owned();
    let refuse = |refusal: Refusal, detail: &str| {
        tracing::debug!(%method, %path, reason = refusal.reason(), detail, "simulated API gateway refused a request");
        refusal.into_response()
    };

    if let Some(token) = request.headers().get("x-auth-token") {
        let accepted = token.to_str().is_ok_and(|token| auth.accepts_token(token, state.now()));
        if accepted {
            return next.run(request).await;
        }
        return refuse(Refusal::BadToken, "token unknown, revoked or expired");
    }
    if !request.headers().contains_key(header::AUTHORIZATION) {
        return refuse(Refusal::NoCredentials, "neither X-Auth-Token nor Authorization");
    }

    let (parts, body) = request.into_parts();
    let Ok(body) = axum::body::to_bytes(body, MAX_BODY).await else {
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    };
    match check_signature(&auth.config, &parts, &body) {
        Ok(()) => next.run(Request::from_parts(parts, Body::from(body))).await,
        Err((refusal, detail)) => refuse(refusal, &detail),
    }
}

/// Verifies the signature of the request as received, in whichever of the
/// three HMAC schemes its Authorization header names.
/// The detail is for the debug log and never holds a secret.
fn check_signature(config: &AuthConfig, parts: &Parts, body: &[u8]) -> Result<(), (Refusal, String)> {
    let headers = received_headers(parts);
    let incoming = IncomingRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        raw_query: parts.uri.query(),
        headers: &headers,
        body,
    };
    let lookup = |ak: &str| config.access_key(ak).map(|key| key.secret_key.expose().to_owned());
    let access_key = apig_signer::verify(&incoming, lookup, config.signature_now(), config.max_clock_skew)
        .map_err(|error| (refusal_for(&error), describe(&error)))?;

    let Some(expected) = config
        .access_key(&access_key)
        .and_then(|key| key.security_token.as_ref())
    else {
        return Ok(());
    };
    let sent = header_text(&headers, "x-security-token");
    if !sent.is_some_and(|sent| same_secret(sent.trim(), expected.expose())) {
        let detail = if sent.is_some() {
            "wrong X-Security-Token"
        } else {
            "no X-Security-Token"
        };
        return Err((Refusal::SecurityTokenMismatch, detail.to_owned()));
    }
    let signed = header_text(&headers, "authorization").is_some_and(|value| signs(value, "x-security-token"));
    if !signed {
        return Err((Refusal::SecurityTokenMismatch, "X-Security-Token not signed".to_owned()));
    }
    Ok(())
}

/// The headers as received; over HTTP/2 there is no Host header, so the URI
/// authority stands in for it, as it does on the real gateway.
fn received_headers(parts: &Parts) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect();
    if !parts.headers.contains_key(header::HOST)
        && let Some(authority) = parts.uri.authority()
    {
        headers.push(("host".to_owned(), authority.to_string()));
    }
    headers
}

fn header_text<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Whether the Authorization header's SignedHeaders names `name`.
fn signs(authorization: &str, name: &str) -> bool {
    authorization
        .split(',')
        .filter_map(|param| param.trim().strip_prefix("SignedHeaders="))
        .flat_map(|list| list.split(';'))
        .any(|signed| signed == name)
}

/// The gateway answers only a handful of reasons; everything about a
/// malformed signature is "verify aksk signature fail".
fn refusal_for(error: &VerifyError) -> Refusal {
    match error {
        VerifyError::MissingAuthorization => Refusal::NoCredentials,
        VerifyError::UnknownAccessKey => Refusal::UnknownAccessKey,
        VerifyError::StaleDate => Refusal::SignatureExpired,
        VerifyError::DateNotSigned => Refusal::DateNotSigned,
        VerifyError::MalformedAuthorization
        | VerifyError::MissingSdkDate
        | VerifyError::BadSdkDate
        | VerifyError::SignedHeaderMissing(_)
        | VerifyError::ScopeDateMismatch
        | VerifyError::SignatureMismatch { .. } => Refusal::SignatureMismatch,
    }
}

/// For the debug log. A mismatch shows the server's canonical request with
/// `|` for line breaks (what the real gateway's message offers), minus the
/// values of headers that are credentials.
fn describe(error: &VerifyError) -> String {
    match error {
        VerifyError::SignatureMismatch { canonical_request } => {
            let mut out = String::from("signature mismatch; canonical request: ");
            for (i, line) in canonical_request.split('\n').enumerate() {
                if i > 0 {
                    out.push('|');
                }
                match line.split_once(':') {
                    Some((name, _)) if is_credential_header(name) => {
                        let _ = write!(out, "{name}:<redacted>");
                    }
                    _ => out.push_str(line),
                }
            }
            out
        }
        VerifyError::SignedHeaderMissing(name) => format!("signed header {name} not sent"),
        other => format!("{other:?}"),
    }
}

fn is_credential_header(name: &str) -> bool {
    matches!(name, "x-security-token" | "x-auth-token" | "authorization")
}

// ------------------------------------------------------------ IAM tokens

/// Keystone's error body, as IAM sends it.
fn keystone_error(status: StatusCode, message: &str) -> Response {
    let title = status.canonical_reason().unwrap_or_default();
    let body = json!({"error": {"code": status.as_u16(), "message": message, "title": title}});
    (status, Json(body)).into_response()
}

fn unauthorized() -> Response {
    keystone_error(
        StatusCode::UNAUTHORIZED,
        "The request you have made requires authentication.",
    )
}

fn malformed(field: &str) -> Response {
    let message = format!(
        "Expecting to find {field} in the request body. The server could not comply with the request since it is \
         either malformed or otherwise incorrect. The client is assumed to be in error."
    );
    keystone_error(StatusCode::BAD_REQUEST, &message)
}

/// The fields of a password request. Nothing here is logged.
struct PasswordRequest<'a> {
    name: &'a str,
    password: &'a str,
    domain: &'a str,
    /// The scope's project name or id, whichever was given.
    project: &'a str,
}

/// Reads a Keystone password body. The error names the missing field, never
/// a value (serde's messages may quote one, so they are not passed on).
fn password_request(body: &Value) -> Result<PasswordRequest<'_>, &'static str> {
    let text = |pointer: &str| body.pointer(pointer).and_then(Value::as_str);
    let methods = body.pointer("/auth/identity/methods").and_then(Value::as_array);
    if !methods.is_some_and(|methods| methods.iter().any(|m| m == "password")) {
        return Err("auth.identity.methods with \"password\"");
    }
    let user = "/auth/identity/password/user";
    let project = text("/auth/scope/project/name").or_else(|| text("/auth/scope/project/id"));
    Ok(PasswordRequest {
        name: text(&format!("{user}/name")).ok_or("auth.identity.password.user.name")?,
        password: text(&format!("{user}/password")).ok_or("auth.identity.password.user.password")?,
        domain: text(&format!("{user}/domain/name")).ok_or("auth.identity.password.user.domain.name")?,
        project: project.ok_or("auth.scope.project.name or auth.scope.project.id")?,
    })
}

/// `POST /v3/auth/tokens`: a password-scoped token in X-Subject-Token, 201.
pub(crate) async fn issue_token(State(state): State<SimState>, body: Bytes) -> Response {
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return malformed("a JSON object");
    };
    let request = match password_request(&body) {
        Ok(request) => request,
        Err(field) => return malformed(field),
    };
    let auth = state.auth();
    if auth.config.enforce {
        let user = auth.config.users.iter().find(|user| {
            user.name == request.name
                && user.domain == request.domain
                && same_secret(user.password.expose(), request.password)
        });
        let Some(user) = user else {
            tracing::debug!("simulated IAM refused a token: unknown user, domain or password");
            return unauthorized();
        };
        if user.project != request.project {
            tracing::debug!(user = %user.name, "simulated IAM refused a token: project outside the user's scope");
            return unauthorized();
        }
    }

    let now = state.now();
    let (token, expires_at) = auth.issue(now);
    let Ok(subject_token) = HeaderValue::from_str(&token) else {
        // Alphanumerics always make a valid header value.
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let body = json!({
        "token": {
            "expires_at": iam_time(expires_at),
            "issued_at": iam_time(now),
            "methods": ["password"],
            "project": {"id": request.project, "name": request.project},
            "user": {"name": request.name, "domain": {"name": request.domain}},
        }
    });
    let mut response = (StatusCode::CREATED, Json(body)).into_response();
    response.headers_mut().insert("x-subject-token", subject_token);
    response
}

fn iam_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

// ----------------------------------------------------------------- helpers

/// Compares without stopping at the first difference, so answer times say
/// nothing about how much of a guessed secret was right.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `len` characters from `alphabet`, from the operating system's generator:
/// v4 UUIDs come from it, and 14 of their 16 bytes are wholly random (bytes 6
/// and 8 carry the version and variant). Rejection sampling keeps every
/// character equally likely.
fn random_text(alphabet: &[u8], len: usize) -> String {
    let size = alphabet.len();
    let limit = 256 - 256 % size;
    let mut out = String::with_capacity(len);
    while out.len() < len {
        let bytes = uuid::Uuid::new_v4().into_bytes();
        let random = bytes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != 6 && *i != 8)
            .map(|(_, b)| usize::from(*b));
        for byte in random.filter(|b| *b < limit) {
            if out.len() == len {
                break;
            }
            out.push(char::from(alphabet[byte % size]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_text_uses_only_the_alphabet_and_differs_each_time() {
        let a = random_text(UPPER_ALNUM, 40);
        let b = random_text(UPPER_ALNUM, 40);
        assert_eq!(a.len(), 40);
        assert!(a.bytes().all(|c| UPPER_ALNUM.contains(&c)), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn host_comes_from_the_authority_when_the_header_is_missing() {
        let (parts, ()) = Request::builder()
            .uri("http://127.0.0.1:8443/v2/p/backups")
            .body(())
            .expect("request")
            .into_parts();
        let headers = received_headers(&parts);
        assert_eq!(header_text(&headers, "host"), Some("127.0.0.1:8443"));

        let (parts, ()) = Request::builder()
            .uri("http://127.0.0.1:8443/v2/p/backups")
            .header("Host", "vbs.example:443")
            .body(())
            .expect("request")
            .into_parts();
        let headers = received_headers(&parts);
        let hosts: Vec<_> = headers.iter().filter(|(n, _)| n == "host").collect();
        assert_eq!(hosts.len(), 1);
        assert_eq!(hosts[0].1, "vbs.example:443");
    }

    #[test]
    fn signed_headers_are_read_from_authorization() {
        let authorization = "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date;x-security-token, Signature=00";
        assert!(signs(authorization, "x-security-token"));
        assert!(!signs(authorization, "x-security"));
        assert!(!signs("SDK-HMAC-SHA256 Access=x-security-token", "x-security-token"));
    }

    #[test]
    fn mismatch_detail_hides_credential_header_values() {
        let error = VerifyError::SignatureMismatch {
            canonical_request: "GET\n/v2/p/\n\nhost:h\nx-security-token:SECRET-TOKEN\n\nhost;x-security-token\nabc"
                .to_owned(),
        };
        let detail = describe(&error);
        assert!(!detail.contains("SECRET-TOKEN"), "{detail}");
        assert!(detail.contains("x-security-token:<redacted>|"), "{detail}");
        assert!(detail.contains("host:h|"), "{detail}");
    }

    #[test]
    fn tokens_expire_on_the_given_clock_and_can_be_revoked() {
        let config = AuthConfig {
            token_ttl: Duration::from_secs(60),
            ..AuthConfig::enforcing()
        };
        let state = AuthState::new(config);
        let start = Utc::now();
        let (token, expires_at) = state.issue(start);
        assert_eq!(expires_at - start, TimeDelta::seconds(60));
        assert!(state.accepts_token(&token, start + TimeDelta::seconds(59)));
        assert!(!state.accepts_token(&token, start + TimeDelta::seconds(60)));
        let (token, _) = state.issue(start);
        state.revoke_all();
        assert!(!state.accepts_token(&token, start));
        assert_eq!(state.issued_count(), 2);
        assert!(!state.accepts_token("", start));
    }
}
