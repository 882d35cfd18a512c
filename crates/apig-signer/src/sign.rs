//! AK/SK request signing (SDK-HMAC-SHA256, V11-HMAC-SHA256, SDK-HMAC-SM3) as the
//! Huawei Cloud SDKs do it: a pure function of (request view, credentials, scheme,
//! time) that returns the headers to send and every intermediate string.

use std::borrow::Cow;
use std::fmt::{self, Write as _};

use chrono::{DateTime, Datelike, Timelike, Utc};
use hkdf::Hkdf;
use hmac::{Hmac, KeyInit, Mac};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, percent_encode};
use sha2::{Digest, Sha256};
use sm3::Sm3;

use crate::algorithm::{Algorithm, Scheme, UNSIGNED_PAYLOAD};

/// Name of the default scheme, first word of its Authorization header and line 1
/// of its string to sign.
pub const ALGORITHM: &str = Algorithm::SdkHmacSha256.name();

/// A SHA-256 or SM3 digest written as hex.
const HEX_DIGEST_LEN: usize = 64;
/// Bytes of the V11 derived key (before it is written as hex).
const DERIVED_KEY_LEN: usize = 32;

/// Everything but `A-Za-z0-9-_.~` is encoded, for path pieces, query keys and
/// query values alike (ALGORITHM.md section 3).
const UNRESERVED_KEPT: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// Headers the signer sets itself; a caller's copy is ignored so that what is
/// signed and what is sent come from one place.
const SIGNER_OWNED_HEADERS: [&str; 4] = ["host", "x-sdk-date", "x-security-token", "authorization"];

/// Content types whose bodies are hashed; any other gets an unsigned payload,
/// as the SDKs do.
const HASHED_CONTENT_TYPES: [&str; 2] = ["application/json", "application/bson"];

/// The key pair to sign with. `Debug` never shows the secret key or the token.
#[derive(Clone, Copy)]
pub struct Credentials<'a> {
    /// The access key (AK): names the key pair in the Authorization header.
    pub access_key: &'a str,
    /// The secret key (SK): the HMAC key (V11: what the key is derived from), never sent.
    pub secret_key: &'a str,
    /// Present with temporary credentials; then sent and signed as `X-Security-Token`.
    pub security_token: Option<&'a str>,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("security_token", &self.security_token.map(|_| "<redacted>"))
            .finish()
    }
}

/// The parts of a request that go into its signature, exactly as they will be sent.
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// Upper case: `GET`, `POST`, `PUT`, `DELETE`.
    pub method: &'a str,
    /// URL authority, including `:port` when the URL has one; sent as `Host`.
    pub host: &'a str,
    /// Path exactly as sent (percent-encoded), without the query.
    pub path: &'a str,
    /// Decoded query pairs in caller order; repeated keys allowed. The URL must
    /// carry [`canonical_query_string`] of these pairs.
    pub query: &'a [(String, String)],
    /// Headers set before signing, names in any case. Host, X-Sdk-Date,
    /// X-Security-Token and Authorization belong to the signer and are ignored here.
    pub headers: &'a [(String, String)],
    /// The exact body bytes that will be sent.
    pub body: &'a [u8],
}

/// What to add to the request, plus the intermediate strings for diagnostics.
#[derive(Clone, PartialEq, Eq)]
pub struct Signature {
    /// Value of the `X-Sdk-Date` header.
    pub x_sdk_date: String,
    /// Value of the `Authorization` header.
    pub authorization: String,
    /// Value of the `Host` header; the HTTP client must not send another one.
    pub host: String,
    /// Value of the `X-Security-Token` header, with temporary credentials.
    pub security_token: Option<String>,
    /// The scheme that made the signature.
    pub algorithm: Algorithm,
    /// Set when the signer marked the body unsigned (a content type that is not
    /// JSON): the lower-case header name to send with [`UNSIGNED_PAYLOAD`].
    pub unsigned_payload_header: Option<&'static str>,
    /// Lower-case names of the signed headers, `;`-separated, sorted.
    pub signed_headers: String,
    /// The canonical request the signature covers (ALGORITHM.md section 2).
    pub canonical_request: String,
    /// The string whose HMAC is the signature (ALGORITHM.md section 7).
    pub string_to_sign: String,
    /// Lower-case hex HMAC of the string to sign.
    pub signature: String,
}

impl Signature {
    /// Every header the signer adds, lower-case names: `x-sdk-date`,
    /// `authorization`, and when they apply `x-security-token` and the
    /// unsigned-payload header. (`Host` is [`Signature::host`].)
    pub fn headers(&self) -> Vec<(&'static str, &str)> {
        let mut headers = vec![
            ("x-sdk-date", self.x_sdk_date.as_str()),
            ("authorization", self.authorization.as_str()),
        ];
        if let Some(token) = &self.security_token {
            headers.push(("x-security-token", token.as_str()));
        }
        if let Some(name) = self.unsigned_payload_header {
            headers.push((name, UNSIGNED_PAYLOAD));
        }
        headers
    }
}

/// The security token is a credential too: it is shown neither on its own nor
/// inside the canonical request, whose `x-security-token` line carries it.
impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |text: &str| match self.security_token.as_deref() {
            Some(token) if !token.is_empty() => text.replace(token, "<redacted>"),
            _ => text.to_owned(),
        };
        f.debug_struct("Signature")
            .field("x_sdk_date", &self.x_sdk_date)
            .field("authorization", &self.authorization)
            .field("host", &self.host)
            .field("security_token", &self.security_token.as_ref().map(|_| "<redacted>"))
            .field("algorithm", &self.algorithm)
            .field("unsigned_payload_header", &self.unsigned_payload_header)
            .field("signed_headers", &self.signed_headers)
            .field("canonical_request", &redact(&self.canonical_request))
            .field("string_to_sign", &self.string_to_sign)
            .field("signature", &self.signature)
            .finish()
    }
}

/// Signs `request` at `time` with SDK-HMAC-SHA256; see [`sign_with`].
pub fn sign(request: &RequestView, credentials: &Credentials, time: DateTime<Utc>) -> Signature {
    sign_with(request, credentials, &Scheme::SdkHmacSha256, time)
}

/// Signs `request` at `time` with `scheme`. The caller sends `Host` and
/// [`Signature::headers`] from the result, its own headers unchanged, the path
/// as given, [`canonical_query_string`] as the query and the body bytes as given.
pub fn sign_with(request: &RequestView, credentials: &Credentials, scheme: &Scheme, time: DateTime<Utc>) -> Signature {
    let algorithm = scheme.algorithm();
    let x_sdk_date = format_sdk_date(time);
    let unsigned_payload_header = unsigned_payload_header(request, algorithm);
    let headers = canonical_headers(request, credentials, &x_sdk_date, unsigned_payload_header);
    let signed_headers = join_names(&headers);
    let canonical_request = canonical_request(request, &headers, &signed_headers, algorithm);
    let scope = match scheme {
        Scheme::V11HmacSha256 { region, service } => Some(format!("{}/{region}/{service}", &x_sdk_date[..8])),
        Scheme::SdkHmacSha256 | Scheme::SdkHmacSm3 => None,
    };
    let string_to_sign = string_to_sign(algorithm, &x_sdk_date, scope.as_deref(), &canonical_request);
    let signature = match (algorithm, &scope) {
        (Algorithm::V11HmacSha256, Some(scope)) => {
            let key = derived_key_hex(credentials.access_key, credentials.secret_key, scope);
            hmac_hex::<Hmac<Sha256>>(key.as_bytes(), &string_to_sign)
        }
        (Algorithm::SdkHmacSm3, _) => hmac_hex::<Hmac<Sm3>>(credentials.secret_key.as_bytes(), &string_to_sign),
        _ => hmac_hex::<Hmac<Sha256>>(credentials.secret_key.as_bytes(), &string_to_sign),
    };
    let credential = match &scope {
        Some(scope) => Credential::Scoped(credentials.access_key, scope),
        None => Credential::Access(credentials.access_key),
    };
    let authorization = authorization(algorithm, credential, &signed_headers, &signature);
    Signature {
        x_sdk_date,
        authorization,
        host: request.host.to_owned(),
        security_token: credentials.security_token.map(str::to_owned),
        algorithm,
        unsigned_payload_header,
        signed_headers,
        canonical_request,
        string_to_sign,
        signature,
    }
}

/// Like the SDKs: a content type that is neither JSON nor BSON gets the
/// unsigned-payload header, unless the caller set that header already. The
/// value is trimmed first (the Python SDK does not; that quirk is not copied).
fn unsigned_payload_header(request: &RequestView, algorithm: Algorithm) -> Option<&'static str> {
    let name = algorithm.content_hash_header();
    let header = |wanted: &str| {
        request
            .headers
            .iter()
            .find(|(n, _)| n.trim().eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.trim())
    };
    let content_type = header("content-type").filter(|value| !value.is_empty())?;
    let hashed = HASHED_CONTENT_TYPES
        .iter()
        .any(|hashed| content_type.starts_with(hashed));
    (!hashed && header(name).is_none()).then_some(name)
}

/// The query as it is signed and as it must be sent: pairs sorted by decoded key,
/// then decoded value (byte order, which is code-point order), then encoded.
/// Sorting the encoded forms instead would put `k%3A1` before `k0`.
pub fn canonical_query_string(pairs: &[(String, String)]) -> String {
    let mut out = String::with_capacity(canonical_query_len(pairs));
    push_canonical_query(&mut out, pairs);
    out
}

/// The path as it is signed: decoded, split on `/`, each piece encoded, with a
/// trailing `/` added when missing. The path sent keeps its own form.
pub fn canonical_uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len() + 1);
    push_canonical_uri(&mut out, path);
    out
}

/// Percent-encodes every byte but `A-Za-z0-9-_.~`, with upper-case hex.
pub fn encode(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    push_encoded(&mut out, component.as_bytes());
    out
}

/// `YYYYMMDDTHHMMSSZ` in UTC, the `X-Sdk-Date` format.
pub fn format_sdk_date(time: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(16);
    // Writing to a String cannot fail.
    let _ = write!(
        out,
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        time.year(),
        time.month(),
        time.day(),
        time.hour(),
        time.minute(),
        time.second()
    );
    out
}

/// (lower-case name, trimmed value) of every signed header, sorted and deduped.
/// Names borrow when already lower case, as `http::HeaderMap` names always are.
fn canonical_headers<'a>(
    request: &RequestView<'a>,
    credentials: &Credentials<'a>,
    x_sdk_date: &'a str,
    unsigned_payload_header: Option<&'static str>,
) -> Vec<(Cow<'a, str>, &'a str)> {
    let added = 3 + usize::from(unsigned_payload_header.is_some());
    let mut headers = Vec::with_capacity(request.headers.len() + added);
    for (name, value) in request.headers {
        let name = lower_case(name.trim());
        // Names with '_' are left out like the SDKs do: proxies tend to drop them.
        if name.contains('_') || SIGNER_OWNED_HEADERS.contains(&name.as_ref()) {
            continue;
        }
        headers.push((name, value.trim()));
    }
    headers.push((Cow::Borrowed("host"), request.host));
    headers.push((Cow::Borrowed("x-sdk-date"), x_sdk_date));
    if let Some(token) = credentials.security_token {
        headers.push((Cow::Borrowed("x-security-token"), token.trim()));
    }
    if let Some(name) = unsigned_payload_header {
        headers.push((Cow::Borrowed(name), UNSIGNED_PAYLOAD));
    }
    // Stable sort, so of two headers with one name the caller's first one is signed.
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    headers.dedup_by(|later, earlier| later.0 == earlier.0);
    headers
}

fn lower_case(name: &str) -> Cow<'_, str> {
    if name.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(name.to_ascii_lowercase())
    } else {
        Cow::Borrowed(name)
    }
}

fn join_names(headers: &[(Cow<'_, str>, &str)]) -> String {
    let mut out = String::with_capacity(headers.iter().map(|(n, _)| n.len() + 1).sum());
    for (i, (name, _)) in headers.iter().enumerate() {
        if i > 0 {
            out.push(';');
        }
        out.push_str(name);
    }
    out
}

/// Method, URI, query, header lines (each ending in LF), signed names and
/// payload hash, joined with LF. Written into one buffer: this runs per request.
fn canonical_request(
    request: &RequestView,
    headers: &[(Cow<'_, str>, &str)],
    signed_headers: &str,
    algorithm: Algorithm,
) -> String {
    let header_bytes: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 2).sum();
    let mut out = String::with_capacity(
        request.method.len()
            + request.path.len()
            + canonical_query_len(request.query)
            + header_bytes
            + signed_headers.len()
            + HEX_DIGEST_LEN
            + 8,
    );
    out.push_str(request.method);
    out.push('\n');
    push_canonical_uri(&mut out, request.path);
    out.push('\n');
    push_canonical_query(&mut out, request.query);
    out.push('\n');
    for (name, value) in headers {
        out.push_str(name);
        out.push(':');
        out.push_str(value);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(signed_headers);
    out.push('\n');
    push_payload_hash(&mut out, request.body, headers, algorithm);
    out
}

/// An empty body always hashes to the scheme's hash of nothing; otherwise a
/// signed `X-Sdk-Content-Sha256` (`X-Sdk-Content-Sm3`) value, normally
/// `UNSIGNED-PAYLOAD`, stands in for the body's hash.
fn push_payload_hash(out: &mut String, body: &[u8], headers: &[(Cow<'_, str>, &str)], algorithm: Algorithm) {
    if body.is_empty() {
        out.push_str(algorithm.empty_body_hash());
        return;
    }
    match headers.iter().find(|(name, _)| name == algorithm.content_hash_header()) {
        Some((_, value)) => out.push_str(value),
        None => push_digest_hex(out, algorithm, body),
    }
}

/// SM3 for SDK-HMAC-SM3, SHA-256 for the others.
fn push_digest_hex(out: &mut String, algorithm: Algorithm, data: &[u8]) {
    match algorithm {
        Algorithm::SdkHmacSm3 => push_hex(out, &Sm3::digest(data)),
        Algorithm::SdkHmacSha256 | Algorithm::V11HmacSha256 => push_hex(out, &Sha256::digest(data)),
    }
}

/// Name, date, (V11: scope,) hash of the canonical request.
fn string_to_sign(algorithm: Algorithm, x_sdk_date: &str, scope: Option<&str>, canonical_request: &str) -> String {
    let name = algorithm.name();
    let scope_len = scope.map_or(0, |scope| scope.len() + 1);
    let mut out = String::with_capacity(name.len() + x_sdk_date.len() + scope_len + HEX_DIGEST_LEN + 2);
    out.push_str(name);
    out.push('\n');
    out.push_str(x_sdk_date);
    out.push('\n');
    if let Some(scope) = scope {
        out.push_str(scope);
        out.push('\n');
    }
    push_digest_hex(&mut out, algorithm, canonical_request.as_bytes());
    out
}

/// V11's key: HKDF-SHA256 (RFC 5869) with the SK as input key, the AK as salt
/// and the scope as info, 32 bytes, written as lower-case hex. The SDK keys the
/// HMAC with that hex text, not with the raw bytes.
fn derived_key_hex(access_key: &str, secret_key: &str, scope: &str) -> String {
    let mut key = [0u8; DERIVED_KEY_LEN];
    // 32 bytes is one block of SHA-256 output, far below HKDF's limit of 255
    // blocks, so expand cannot refuse it.
    Hkdf::<Sha256>::new(Some(access_key.as_bytes()), secret_key.as_bytes())
        .expand(scope.as_bytes(), &mut key)
        .expect("32 bytes is a valid HKDF-SHA256 output length");
    let mut out = String::with_capacity(2 * DERIVED_KEY_LEN);
    push_hex(&mut out, &key);
    out
}

fn hmac_hex<M: Mac + KeyInit>(key: &[u8], message: &str) -> String {
    // HMAC takes keys of any length (longer ones are hashed), so this cannot
    // fail; hmac's own `KeyInit::new` relies on the same fact.
    let mut mac = <M as KeyInit>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(message.as_bytes());
    let mut out = String::with_capacity(HEX_DIGEST_LEN);
    push_hex(&mut out, &mac.finalize().into_bytes());
    out
}

/// Who signed: the AK alone, or (V11) the AK and its key's scope.
#[derive(Clone, Copy)]
enum Credential<'a> {
    Access(&'a str),
    Scoped(&'a str, &'a str),
}

/// `<name> Access=<AK>, ...` or, for V11, `<name> Credential=<AK>/<scope>, ...`.
fn authorization(algorithm: Algorithm, credential: Credential, signed_headers: &str, signature: &str) -> String {
    let name = algorithm.name();
    let (label, access_key, scope) = match credential {
        Credential::Access(access_key) => (" Access=", access_key, None),
        Credential::Scoped(access_key, scope) => (" Credential=", access_key, Some(scope)),
    };
    let scope_len = scope.map_or(0, |scope| scope.len() + 1);
    let length = name.len() + label.len() + access_key.len() + scope_len + signed_headers.len() + signature.len() + 28;
    let mut out = String::with_capacity(length);
    out.push_str(name);
    out.push_str(label);
    out.push_str(access_key);
    if let Some(scope) = scope {
        out.push('/');
        out.push_str(scope);
    }
    out.push_str(", SignedHeaders=");
    out.push_str(signed_headers);
    out.push_str(", Signature=");
    out.push_str(signature);
    out
}

/// Decodes first so that a pre-encoded path and its plain form sign the same;
/// works on bytes so a path that is not UTF-8 after decoding is still signed
/// exactly as sent.
fn push_canonical_uri(out: &mut String, path: &str) {
    let decoded: Cow<'_, [u8]> = percent_decode_str(path).into();
    for (i, piece) in decoded.split(|&b| b == b'/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        push_encoded(out, piece);
    }
    if !out.ends_with('/') {
        out.push('/');
    }
}

fn push_canonical_query(out: &mut String, pairs: &[(String, String)]) {
    let mut sorted: Vec<&(String, String)> = pairs.iter().collect();
    sorted.sort_unstable();
    for (i, (key, value)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        push_encoded(out, key.as_bytes());
        out.push('=');
        push_encoded(out, value.as_bytes());
    }
}

/// Lower-case hex, written in place rather than through a new String.
fn push_hex(out: &mut String, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
}

/// Exact length (one `&` too many), so a query with spaces or `+` does not
/// make the buffer grow.
fn canonical_query_len(pairs: &[(String, String)]) -> usize {
    let encoded_len = |text: &str| -> usize { percent_encode(text.as_bytes(), UNRESERVED_KEPT).map(str::len).sum() };
    pairs.iter().map(|(k, v)| encoded_len(k) + encoded_len(v) + 2).sum()
}

fn push_encoded(out: &mut String, bytes: &[u8]) {
    out.extend(percent_encode(bytes, UNRESERVED_KEPT));
}
