//! The simulator's check of AK/SK (SDK-HMAC-SHA256) signatures, rebuilt from the
//! raw request as received. Written apart from the gateway's signer on purpose,
//! so that a misreading of the algorithm in one of them shows up as a failure.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

const SCHEME: &str = "SDK-HMAC-SHA256";

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
    /// An Authorization header that is not `SDK-HMAC-SHA256 Access=..., SignedHeaders=..., Signature=...`.
    MalformedAuthorization,
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

/// The three parameters of an Authorization header.
struct AuthorizationParts<'a> {
    access_key: &'a str,
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

    let canonical_request = build_canonical_request(request, &parts.signed_headers)?;
    let string_to_sign = format!(
        "{SCHEME}\n{}\n{}",
        date_text.trim(),
        sha256_hex(canonical_request.as_bytes())
    );
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        // HMAC takes keys of any length; were that ever not so, nothing can match.
        return Err(VerifyError::SignatureMismatch { canonical_request });
    };
    mac.update(string_to_sign.as_bytes());
    // verify_slice compares in constant time, so response timing leaks nothing
    // about how many leading bytes of a forged signature were right.
    mac.verify_slice(&parts.signature)
        .map_err(|_| VerifyError::SignatureMismatch { canonical_request })?;
    Ok(parts.access_key.to_owned())
}

/// `SDK-HMAC-SHA256 Access=<AK>, SignedHeaders=<a;b>, Signature=<hex>`.
fn parse_authorization(value: &str) -> Result<AuthorizationParts<'_>, VerifyError> {
    let params = value
        .trim()
        .strip_prefix(SCHEME)
        .and_then(|rest| rest.strip_prefix(' '))
        .ok_or(VerifyError::MalformedAuthorization)?;
    let (mut access, mut signed, mut signature) = (None, None, None);
    for param in params.split(',') {
        let (name, val) = param
            .trim()
            .split_once('=')
            .ok_or(VerifyError::MalformedAuthorization)?;
        let slot = match name {
            "Access" => &mut access,
            "SignedHeaders" => &mut signed,
            "Signature" => &mut signature,
            _ => return Err(VerifyError::MalformedAuthorization),
        };
        if slot.replace(val).is_some() {
            return Err(VerifyError::MalformedAuthorization);
        }
    }
    let (Some(access_key), Some(signed), Some(signature)) = (access, signed, signature) else {
        return Err(VerifyError::MalformedAuthorization);
    };
    let signed_headers: Vec<&str> = signed.split(';').collect();
    let well_formed =
        !access_key.is_empty() && signature.len() == 64 && signed_headers.iter().all(|name| is_lower_token(name));
    let signature = hex::decode(signature).map_err(|_| VerifyError::MalformedAuthorization)?;
    if !well_formed {
        return Err(VerifyError::MalformedAuthorization);
    }
    Ok(AuthorizationParts {
        access_key,
        signed_headers,
        signature,
    })
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

fn build_canonical_request(request: &IncomingRequest, signed_headers: &[&str]) -> Result<String, VerifyError> {
    let mut header_block = String::new();
    let mut content_sha256 = None;
    for &name in signed_headers {
        let value = header_value(request.headers, name)
            .ok_or_else(|| VerifyError::SignedHeaderMissing(name.to_owned()))?
            .trim();
        if name == "x-sdk-content-sha256" {
            content_sha256 = Some(value);
        }
        header_block.push_str(name);
        header_block.push(':');
        header_block.push_str(value);
        header_block.push('\n');
    }
    // Only a signed X-Sdk-Content-Sha256 may stand in for the body hash; an
    // unsigned one could be added by anyone on the way.
    let payload_hash = if request.body.is_empty() {
        sha256_hex(b"")
    } else if let Some(value) = content_sha256 {
        value.to_owned()
    } else {
        sha256_hex(request.body)
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

fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}
