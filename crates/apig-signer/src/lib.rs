//! AK/SK request signing as the API gateways of Huawei Cloud and Open Telekom
//! Cloud check it, in the three HMAC schemes of the official SDKs ([`Algorithm`]):
//! [`sign_with`] for clients, [`verify`] for servers, and [`Secret`] for the keys
//! and tokens both handle. Pure: no runtime, no HTTP.
//!
//! The scheme is the gateways', not one service's: VBS, CSBS and TaurusDB all
//! take it, which is why this crate is named after the API gateway (APIG).
//!
//! [`sign`] is a pure function of a borrowed view of the request, the key pair
//! and the time; it returns the headers to send together with every
//! intermediate string, so a rejected signature can be compared by hand.
//! [`verify`] rebuilds the signature from the raw request as a server received
//! it. The two are written apart on purpose: a misreading of the algorithm in
//! one of them shows up as a failure of the other, and both are checked against
//! vectors from the official SDK (`tests/vectors.rs`).

mod algorithm;
mod secret;
mod sign;
mod verify;

pub use algorithm::{Algorithm, EMPTY_BODY_SHA256, Scheme, UNSIGNED_PAYLOAD, UnknownAlgorithm};
pub use secret::Secret;
pub use sign::{
    ALGORITHM, Credentials, RequestView, Signature, canonical_query_string, canonical_uri, encode, format_sdk_date,
    sign, sign_with,
};
pub use verify::{IncomingRequest, VerifyError, verify};
