//! The simulator's check of AK/SK signatures (whichever of the three HMAC schemes
//! the Authorization header names), rebuilt from the raw request as received.
//! Written apart from the signer on purpose, so a misreading shows up as a failure.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};
use sm3::Sm3;

use crate::algorithm::Algorithm;

/// A request as the server received it: nothing decoded, nothing normalised.
#[derive(Debug, Clone, Copy)]
pub struct IncomingRequest<'a> {
    /// Upper case, as received.
    pub method: &'a str,
    /// Raw path as received (still percent-encoded), without the query.
    pub path: &'a str,
    /// Raw query as received, without the `?`.
    pub raw_query: Option<&'a str>,
    /// Received headers, names in any case. Must include `Host`.
    pub headers: &'a [(String, String)],
    /// The body bytes as received.
    pub body: &'a [u8],
}

/// Why a request was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum VerifyError {
    /// No Authorization header.
    MissingAuthorization,
    /// An Authorization header that is not `<scheme> Access=..., SignedHeaders=..., Signature=...`
    /// (V11: `Credential=<AK>/<date>/<region>/<service>` instead of `Access=`), or
    /// names a scheme other than the three.
    MalformedAuthorization,
    /// A V11 credential scope whose date is not the X-Sdk-Date's.
    ScopeDateMismatch,
    /// The AK is not one the server knows.
    UnknownAccessKey,
    /// No X-Sdk-Date header.
    MissingSdkDate,
    /// An X-Sdk-Date that is not `YYYYMMDDTHHMMSSZ`.
    BadSdkDate,
    /// X-Sdk-Date is not among the signed headers.
    DateNotSigned,
    /// A header named in SignedHeaders did not arrive (lower-case name).
    SignedHeaderMissing(String),
    /// X-Sdk-Date is further from `now` than the allowed skew.
    StaleDate,
    /// The server's canonical request is returned so a client can diff its own
    /// against it, as the real gateway's error message allows.
    SignatureMismatch {
        /// The canonical request the server built.
        canonical_request: String,
    },
}

/// The three parameters of an Authorization header, and its scheme.
struct AuthorizationParts<'a> {
    algorithm: Algorithm,
    access_key: &'a str,
    /// V11 only: `YYYYMMDD/<region>/<service>`.
    scope: Option<&'a str>,
    signed_headers: Vec<&'a str>,
    signature: Vec<u8>,
}

/// Checks the request's signature and returns the access key that made it.
/// `lookup_secret` maps an AK to its SK; `max_skew` is 15 minutes on the real
/// gateway.
pub fn verify(
    request: &IncomingRequest,
    lookup_secret: impl Fn(&str) -> Option<String>,
    now: DateTime<Utc>,
    max_skew: Duration,
) -> Result<String, VerifyError> {
    let authorization = header_value(request.headers, "authorization").ok_or(VerifyError::MissingAuthorization)?;
    let parts = parse_authorization(authorization)?;
    let secret = lookup_secret(parts.access_key).ok_or(VerifyError::UnknownAccessKey)?;

    let date_text = header_value(request.headers, "x-sdk-date").ok_or(VerifyError::MissingSdkDate)?;
    let date = parse_sdk_date(date_text.trim()).ok_or(VerifyError::BadSdkDate)?;
    if !parts.signed_headers.contains(&"x-sdk-date") {
        return Err(VerifyError::DateNotSigned);
    }
    if !within_skew(date, now, max_skew) {
        return Err(VerifyError::StaleDate);
    }

    if let Some(scope) = parts.scope
        && !scope.starts_with(&date_text.trim()[..8])
    {
        return Err(VerifyError::ScopeDateMismatch);
    }

    let algorithm = parts.algorithm;
    let canonical_request = build_canonical_request(request, &parts.signed_headers, algorithm)?;
    let mut string_to_sign = format!("{}\n{}\n", algorithm.name(), date_text.trim());
    if let Some(scope) = parts.scope {
        string_to_sign.push_str(scope);
        string_to_sign.push('\n');
    }
    string_to_sign.push_str(&hash_hex(algorithm, canonical_request.as_bytes()));
    let matches = match (algorithm, parts.scope) {
        (Algorithm::SdkHmacSm3, _) => mac_matches::<Hmac<Sm3>>(secret.as_bytes(), &string_to_sign, &parts.signature),
        (Algorithm::V11HmacSha256, Some(scope)) => {
            let key = hex::encode(derive_key(parts.access_key, &secret, scope));
            mac_matches::<Hmac<Sha256>>(key.as_bytes(), &string_to_sign, &parts.signature)
        }
        _ => mac_matches::<Hmac<Sha256>>(secret.as_bytes(), &string_to_sign, &parts.signature),
    };
    if !matches {
        return Err(VerifyError::SignatureMismatch { canonical_request });
    }
    Ok(parts.access_key.to_owned())
}

/// verify_slice compares in constant time, so response timing leaks nothing
/// about how many leading bytes of a forged signature were right.
fn mac_matches<M: Mac + KeyInit>(key: &[u8], message: &str, signature: &[u8]) -> bool {
    // HMAC takes keys of any length; were that ever not so, nothing can match.
    let Ok(mut mac) = <M as KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(message.as_bytes());
    mac.verify_slice(signature).is_ok()
}

/// RFC 5869 written out for one block: PRK = HMAC(salt = AK, SK), then
/// OKM = HMAC(PRK, scope || 0x01), which is 32 bytes, the length V11 uses.
fn derive_key(access_key: &str, secret_key: &str, scope: &str) -> Vec<u8> {
    let hmac = |key: &[u8], parts: &[&[u8]]| -> Vec<u8> {
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
            return Vec::new();
        };
        for part in parts {
            mac.update(part);
        }
        mac.finalize().into_bytes().to_vec()
    };
    let prk = hmac(access_key.as_bytes(), &[secret_key.as_bytes()]);
    hmac(&prk, &[scope.as_bytes(), &[1]])
}

/// `<scheme> Access=<AK>, SignedHeaders=<a;b>, Signature=<hex>`, where V11 has
/// `Credential=<AK>/<YYYYMMDD>/<region>/<service>` in place of `Access=<AK>`.
fn parse_authorization(value: &str) -> Result<AuthorizationParts<'_>, VerifyError> {
    let (name, params) = value
        .trim()
        .split_once(' ')
        .ok_or(VerifyError::MalformedAuthorization)?;
    let algorithm = Algorithm::from_name(name).ok_or(VerifyError::MalformedAuthorization)?;
    let access_label = match algorithm {
        Algorithm::V11HmacSha256 => "Credential",
        Algorithm::SdkHmacSha256 | Algorithm::SdkHmacSm3 => "Access",
    };
    let (mut access, mut signed, mut signature) = (None, None, None);
    for param in params.split(',') {
        let (name, val) = param
            .trim()
            .split_once('=')
            .ok_or(VerifyError::MalformedAuthorization)?;
        let slot = match name {
            _ if name == access_label => &mut access,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(VerifyError::MalformedAuthorization),
        };
        if slot.replace(val).is_some() {
            return Err(VerifyError::MalformedAuthorization);
        }
    }
    let (Some(access), Some(signed), Some(signature)) = (access, signed, signature) else {
        return Err(VerifyError::MalformedAuthorization);
    };
    let (access_key, scope) = match algorithm {
        Algorithm::V11HmacSha256 => {
            let (access_key, scope) = access.split_once('/').ok_or(VerifyError::MalformedAuthorization)?;
            (access_key, Some(scope).filter(|scope| is_scope(scope)))
        }
        Algorithm::SdkHmacSha256 | Algorithm::SdkHmacSm3 => (access, None),
    };
    if algorithm == Algorithm::V11HmacSha256 && scope.is_none() {
        return Err(VerifyError::MalformedAuthorization);
    }
    let signed_headers: Vec<&str> = signed.split(';').collect();
    let well_formed =
        !access_key.is_empty() && signature.len() == 64 && signed_headers.iter().all(|name| is_lower_token(name));
    let signature = hex::decode(signature).map_err(|_| VerifyError::MalformedAuthorization)?;
    if !well_formed {
        return Err(VerifyError::MalformedAuthorization);
    }
    Ok(AuthorizationParts {
        algorithm,
        access_key,
        scope,
        signed_headers,
        signature,
    })
}

/// `YYYYMMDD/<region>/<service>`, neither of the last two empty.
fn is_scope(scope: &str) -> bool {
    let mut parts = scope.split('/');
    let date = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()) && rest.len() == 2 && rest.iter().all(|p| !p.is_empty())
}

/// Signers always write the names lower-cased; anything else is not their output.
fn is_lower_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Strict `YYYYMMDDTHHMMSSZ`: exactly 16 characters, no sign, no fraction.
fn parse_sdk_date(text: &str) -> Option<DateTime<Utc>> {
    let b = text.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let number = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let year = i32::try_from(number(0..4)?).ok()?;
    NaiveDate::from_ymd_opt(year, number(4..6)?, number(6..8)?)?
        .and_hms_opt(number(9..11)?, number(11..13)?, number(13..15)?)
        .map(|naive| naive.and_utc())
}

fn within_skew(date: DateTime<Utc>, now: DateTime<Utc>, max_skew: Duration) -> bool {
    (now - date).abs().to_std().is_ok_and(|distance| distance <= max_skew)
}

fn build_canonical_request(
    request: &IncomingRequest,
    signed_headers: &[&str],
    algorithm: Algorithm,
) -> Result<String, VerifyError> {
    let mut header_block = String::new();
    let mut content_hash = None;
    for &name in signed_headers {
        let value = header_value(request.headers, name)
            .ok_or_else(|| VerifyError::SignedHeaderMissing(name.to_owned()))?
            .trim();
        if name == algorithm.content_hash_header() {
            content_hash = Some(value);
        }
        header_block.push_str(name);
        header_block.push(':');
        header_block.push_str(value);
        header_block.push('\n');
    }
    // Only a signed X-Sdk-Content-Sha256 (-Sm3) may stand in for the body
    // hash; an unsigned one could be added by anyone on the way.
    let payload_hash = if request.body.is_empty() {
        hash_hex(algorithm, b"")
    } else if let Some(value) = content_hash {
        value.to_owned()
    } else {
        hash_hex(algorithm, request.body)
    };
    Ok([
        request.method,
        &canonical_path(request.path),
        &canonical_query(request.raw_query.unwrap_or("")),
        &header_block,
        &signed_headers.join(";"),
        &payload_hash,
    ]
    .join("\n"))
}

/// First header of that name, compared without regard to case.
fn header_value<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn canonical_path(raw: &str) -> String {
    let decoded = unescape(raw);
    let mut path = decoded.split(|&b| b == b'/').map(escape).collect::<Vec<_>>().join("/");
    if !path.ends_with('/') {
        path.push('/');
    }
    path
}

/// Pairs are decoded from the raw query ('+' is a literal plus, a key without
/// '=' has an empty value), sorted on the decoded bytes, then re-encoded.
fn canonical_query(raw: &str) -> String {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = raw
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (key, value) = piece.split_once('=').unwrap_or((piece, ""));
            (unescape(key), unescape(value))
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(key, value)| format!("{}={}", escape(key), escape(value)))
        .collect::<Vec<_>>()
        .join("&")
}

/// `%XX` to the byte it names; a '%' not followed by two hex digits stays as is.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| Some((hex_digit(*bytes.get(i + 1)?)?, hex_digit(*bytes.get(i + 2)?)?)))
            .flatten();
        match escaped {
            Some((high, low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

fn hex_digit(c: u8) -> Option<u8> {
    char::from(c).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Every byte but `A-Za-z0-9-_.~` becomes `%XX` with upper-case hex.
fn escape(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0F)]));
        }
    }
    out
}

fn hash_hex(algorithm: Algorithm, data: &[u8]) -> String {
    match algorithm {
        Algorithm::SdkHmacSm3 => hex::encode(Sm3::digest(data)),
        Algorithm::SdkHmacSha256 | Algorithm::V11HmacSha256 => hex::encode(Sha256::digest(data)),
    }
}
