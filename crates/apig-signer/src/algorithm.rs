//! The three HMAC signing schemes of the official SDKs (SDK-HMAC-SHA256,
//! V11-HMAC-SHA256 with its derived key, SDK-HMAC-SM3): their names, empty-body
//! hashes and unsigned-payload headers, shared by the signer and the verifier.

use std::fmt;
use std::str::FromStr;

/// Value of the unsigned-payload header: it replaces the body hash.
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// One HMAC signing scheme, as named in the Authorization header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA256 keyed with the SK itself (the SDKs' default).
    #[default]
    SdkHmacSha256,
    /// HMAC-SHA256 keyed with a key derived from AK, SK, date, region and service (HKDF-SHA256).
    V11HmacSha256,
    /// HMAC-SM3 keyed with the SK, SM3 as the hash too.
    SdkHmacSm3,
}

impl Algorithm {
    /// Every scheme, in the order the SDK lists them.
    pub const ALL: [Algorithm; 3] = [
        Algorithm::SdkHmacSha256,
        Algorithm::V11HmacSha256,
        Algorithm::SdkHmacSm3,
    ];

    /// The name in the Authorization header and line 1 of the string to sign.
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::SdkHmacSha256 => "SDK-HMAC-SHA256",
            Algorithm::V11HmacSha256 => "V11-HMAC-SHA256",
            Algorithm::SdkHmacSm3 => "SDK-HMAC-SM3",
        }
    }

    /// The scheme an Authorization header names, if it is one of the three.
    pub fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|algorithm| algorithm.name() == name)
    }

    /// The payload hash of a request without a body: the scheme's hash of nothing.
    pub const fn empty_body_hash(self) -> &'static str {
        match self {
            Algorithm::SdkHmacSha256 | Algorithm::V11HmacSha256 => EMPTY_BODY_SHA256,
            Algorithm::SdkHmacSm3 => EMPTY_BODY_SM3,
        }
    }

    /// Lower-case name of the header whose signed value stands in for the body
    /// hash (`x-sdk-content-sha256`, or `x-sdk-content-sm3` with SM3).
    pub const fn content_hash_header(self) -> &'static str {
        match self {
            Algorithm::SdkHmacSha256 | Algorithm::V11HmacSha256 => "x-sdk-content-sha256",
            Algorithm::SdkHmacSm3 => "x-sdk-content-sm3",
        }
    }
}

/// SHA-256 of nothing: the payload hash of every request without a body.
pub const EMPTY_BODY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// SM3 of nothing.
pub(crate) const EMPTY_BODY_SM3: &str = "1ab21d8355cfa17f8e61194831e81a8f22bec8c728fefb747ed035eb5082aa2b";

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A name that is none of the three schemes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAlgorithm(pub String);

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown signing algorithm {:?}: use SDK-HMAC-SHA256, V11-HMAC-SHA256 or SDK-HMAC-SM3",
            self.0
        )
    }
}

impl std::error::Error for UnknownAlgorithm {}

/// Reads a scheme name in any case (`sdk-hmac-sm3` as well as `SDK-HMAC-SM3`),
/// so command-line flags can use the lower-case spelling.
impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    fn from_str(text: &str) -> Result<Algorithm, UnknownAlgorithm> {
        Algorithm::ALL
            .into_iter()
            .find(|algorithm| algorithm.name().eq_ignore_ascii_case(text.trim()))
            .ok_or_else(|| UnknownAlgorithm(text.to_owned()))
    }
}

/// An algorithm with what it needs beyond the key pair: V11 scopes its
/// derived key to a region and a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme<'a> {
    /// See [`Algorithm::SdkHmacSha256`].
    SdkHmacSha256,
    /// See [`Algorithm::V11HmacSha256`]; the scope is `YYYYMMDD/<region>/<service>`.
    V11HmacSha256 {
        /// Region id, e.g. `eu-de` (what the SDK's Region object carries).
        region: &'a str,
        /// Service name, e.g. `vbs` (what the SDK's client names for derived auth).
        service: &'a str,
    },
    /// See [`Algorithm::SdkHmacSm3`].
    SdkHmacSm3,
}

impl Scheme<'_> {
    /// The algorithm without its parameters.
    pub const fn algorithm(&self) -> Algorithm {
        match self {
            Scheme::SdkHmacSha256 => Algorithm::SdkHmacSha256,
            Scheme::V11HmacSha256 { .. } => Algorithm::V11HmacSha256,
            Scheme::SdkHmacSm3 => Algorithm::SdkHmacSm3,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_in_any_case() {
        for algorithm in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
            assert_eq!(algorithm.name().to_lowercase().parse(), Ok(algorithm));
            assert_eq!(algorithm.to_string(), algorithm.name());
        }
        assert_eq!(Algorithm::from_name("sdk-hmac-sha256"), None, "headers are exact");
        assert!("SDK-ECDSA-P256-SHA256".parse::<Algorithm>().is_err());
    }
}
