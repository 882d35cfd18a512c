//! All three HMAC schemes (SDK-HMAC-SHA256, V11-HMAC-SHA256, SDK-HMAC-SM3)
//! checked against the official Python SDK's own signers (`data/make_vectors.py`
//! made `data/algorithm_vectors.json`), both ways: the signer reproduces every
//! string, the verifier accepts what the SDK sent and refuses spoiled copies.

use apig_signer::{Algorithm, Credentials, RequestView, Scheme, Signature, VerifyError, sign_with};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::Deserialize;

mod common;
use common::{Received, pairs_of};

const VECTORS_JSON: &str = include_str!("data/algorithm_vectors.json");
/// 15 VBS requests and 3 extra ones, each signed by every scheme.
const VECTORS_PER_ALGORITHM: usize = 18;

#[derive(Deserialize)]
struct VectorFile {
    sdk_package: String,
    sdk_version: String,
    count: usize,
    vectors: Vec<Vector>,
}

#[derive(Deserialize)]
struct Vector {
    id: String,
    algorithm: String,
    ak: String,
    sk: String,
    method: String,
    scheme: String,
    host: String,
    path: String,
    query: Vec<(String, String)>,
    headers: serde_json::Map<String, serde_json::Value>,
    body: String,
    expected: Expected,
    derived: Option<Derived>,
}

#[derive(Deserialize)]
struct Expected {
    canonical_request: String,
    string_to_sign: String,
    signature: String,
    authorization: String,
    signed_headers: String,
    payload_hash: String,
    sent_url: String,
    sent_headers: serde_json::Map<String, serde_json::Value>,
}

#[derive(Deserialize)]
struct Derived {
    region_id: String,
    service: String,
    info: String,
}

fn header_of(map: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    map.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
}

impl Vector {
    fn algorithm(&self) -> Algorithm {
        Algorithm::from_name(&self.algorithm).expect("one of the three schemes")
    }

    fn scheme(&self) -> Scheme<'_> {
        match (self.algorithm(), &self.derived) {
            (Algorithm::V11HmacSha256, Some(derived)) => Scheme::V11HmacSha256 {
                region: &derived.region_id,
                service: &derived.service,
            },
            (Algorithm::V11HmacSha256, None) => panic!("{}: V11 vector without its scope", self.id),
            (Algorithm::SdkHmacSha256, _) => Scheme::SdkHmacSha256,
            (Algorithm::SdkHmacSm3, _) => Scheme::SdkHmacSm3,
        }
    }

    fn date(&self) -> DateTime<Utc> {
        let text = header_of(&self.headers, "X-Sdk-Date").expect("fixed X-Sdk-Date");
        NaiveDateTime::parse_from_str(&text, "%Y%m%dT%H%M%SZ")
            .expect("X-Sdk-Date format")
            .and_utc()
    }

    /// The SDK's X-Security-Token is the signer's to add, from the credentials.
    fn security_token(&self) -> Option<String> {
        header_of(&self.headers, "X-Security-Token")
    }

    fn sign(&self) -> Signature {
        let headers: Vec<(String, String)> = pairs_of(&self.headers)
            .into_iter()
            .filter(|(name, _)| !["x-sdk-date", "x-security-token"].contains(&name.to_ascii_lowercase().as_str()))
            .collect();
        let request = RequestView {
            method: &self.method,
            host: &self.host,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: self.body.as_bytes(),
        };
        let token = self.security_token();
        let credentials = Credentials {
            access_key: &self.ak,
            secret_key: &self.sk,
            security_token: token.as_deref(),
        };
        sign_with(&request, &credentials, &self.scheme(), self.date())
    }

    fn received(&self) -> Received {
        let authority = format!("{}://{}", self.scheme, self.host);
        Received::sent(
            &self.method,
            &authority,
            &self.expected.sent_url,
            &self.expected.sent_headers,
            &self.body,
        )
    }
}

fn load() -> VectorFile {
    let file: VectorFile = serde_json::from_str(VECTORS_JSON).expect("vector file parses");
    assert_eq!(file.count, file.vectors.len(), "count field");
    assert_eq!(
        (file.sdk_package.as_str(), file.sdk_version.as_str()),
        ("huaweicloudsdkcore", "3.1.219")
    );
    file
}

fn vector(id: &str) -> Vector {
    load()
        .vectors
        .into_iter()
        .find(|v| v.id == id)
        .unwrap_or_else(|| panic!("vector {id} exists"))
}

fn mismatches(v: &Vector) -> Vec<String> {
    let got = v.sign();
    let e = &v.expected;
    let sent: Vec<(String, String)> = got
        .headers()
        .into_iter()
        .map(|(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    let mut checks = vec![
        (
            "canonical_request",
            e.canonical_request.clone(),
            got.canonical_request.clone(),
        ),
        ("signed_headers", e.signed_headers.clone(), got.signed_headers.clone()),
        (
            "payload_hash",
            e.payload_hash.clone(),
            got.canonical_request.rsplit('\n').next().unwrap_or_default().to_owned(),
        ),
        ("string_to_sign", e.string_to_sign.clone(), got.string_to_sign.clone()),
        ("signature", e.signature.clone(), got.signature.clone()),
        ("authorization", e.authorization.clone(), got.authorization.clone()),
        ("algorithm", v.algorithm.clone(), got.algorithm.name().to_owned()),
        (
            "host",
            header_of(&e.sent_headers, "Host").unwrap_or_default(),
            got.host.clone(),
        ),
    ];
    // Every header the SDK sent beyond the caller's is one the signer hands back.
    for (name, value) in pairs_of(&e.sent_headers) {
        let added = header_of(&v.headers, &name).is_none() || name.eq_ignore_ascii_case("x-sdk-date");
        if added && !name.eq_ignore_ascii_case("host") {
            let ours = sent
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
                .map(|(_, v)| v.clone());
            checks.push((
                "sent header",
                format!("{name}: {value}"),
                format!("{name}: {}", ours.unwrap_or_default()),
            ));
        }
    }
    if let Some(derived) = &v.derived {
        let scope_line = got.string_to_sign.split('\n').nth(2).unwrap_or_default().to_owned();
        checks.push(("derived.info", derived.info.clone(), scope_line));
    }
    checks
        .into_iter()
        .filter(|(_, want, got)| want != got)
        .map(|(field, want, got)| format!("vector {}: {field}\n  want {want:?}\n  got  {got:?}", v.id))
        .collect()
}

#[test]
fn signer_matches_the_sdk_for_every_algorithm_and_request() {
    let file = load();
    let failures: Vec<String> = file.vectors.iter().flat_map(mismatches).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for algorithm in Algorithm::ALL {
        let count = file.vectors.iter().filter(|v| v.algorithm == algorithm.name()).count();
        assert_eq!(count, VECTORS_PER_ALGORITHM, "{algorithm} vectors checked");
    }
}

#[test]
fn verifier_accepts_every_sdk_request_as_sent() {
    for v in load().vectors {
        assert_eq!(
            v.received().verify_with(&v.ak, &v.sk, v.date()),
            Ok(v.ak.clone()),
            "vector {}",
            v.id
        );
    }
}

fn assert_mismatch(result: Result<String, VerifyError>, what: &str) {
    assert!(
        matches!(result, Err(VerifyError::SignatureMismatch { .. })),
        "{what}: {result:?}"
    );
}

#[test]
fn verifier_refuses_a_wrong_signature_of_each_kind() {
    for algorithm in Algorithm::ALL {
        let v = vector(&format!("{algorithm}/vbs_create_cloudbackup"));
        let wrong_key = v.sk.replace('1', "2");
        assert_mismatch(v.received().verify_with(&v.ak, &wrong_key, v.date()), "wrong SK");

        let mut body = v.received();
        body.body[20] ^= 0x01;
        assert_mismatch(body.verify_with(&v.ak, &v.sk, v.date()), "changed body");

        let mut flipped = v.received();
        let last = v.expected.signature.chars().last().expect("hex");
        let other = if last == '0' { '1' } else { '0' };
        let authorization = format!(
            "{}{other}",
            &v.expected.authorization[..v.expected.authorization.len() - 1]
        );
        flipped.set_header("Authorization", &authorization);
        assert_mismatch(flipped.verify_with(&v.ak, &v.sk, v.date()), "changed signature");
    }
}

#[test]
fn a_signature_is_valid_only_under_the_scheme_that_made_it() {
    let v = vector("SDK-HMAC-SHA256/vbs_get_job");
    let mut relabelled = v.received();
    let as_sm3 = v.expected.authorization.replace("SDK-HMAC-SHA256", "SDK-HMAC-SM3");
    relabelled.set_header("Authorization", &as_sm3);
    assert_mismatch(
        relabelled.verify_with(&v.ak, &v.sk, v.date()),
        "SHA-256 signature named SM3",
    );
}

#[test]
fn v11_scope_binds_region_service_and_date() {
    let v = vector("V11-HMAC-SHA256/vbs_get_job");
    let authorization = &v.expected.authorization;
    assert!(
        authorization.contains("Credential=VBSGWTESTAKID0000001/20240615/eu-de/vbs,"),
        "{authorization}"
    );

    let mut other_region = v.received();
    other_region.set_header("Authorization", &authorization.replace("/eu-de/", "/eu-nl/"));
    assert_mismatch(other_region.verify_with(&v.ak, &v.sk, v.date()), "other region");

    let mut other_day = v.received();
    other_day.set_header("Authorization", &authorization.replace("/20240615/", "/20240614/"));
    assert_eq!(
        other_day.verify_with(&v.ak, &v.sk, v.date()),
        Err(VerifyError::ScopeDateMismatch)
    );

    for bad in [
        authorization.replace("/eu-de/vbs,", ","),
        authorization.replace("Credential=", "Access="),
        authorization.replace("/20240615/", "/2024061x/"),
    ] {
        let mut request = v.received();
        request.set_header("Authorization", &bad);
        assert_eq!(
            request.verify_with(&v.ak, &v.sk, v.date()),
            Err(VerifyError::MalformedAuthorization),
            "{bad}"
        );
    }
}

#[test]
fn non_json_bodies_are_sent_unsigned_under_the_schemes_header() {
    for (algorithm, header) in [
        (Algorithm::SdkHmacSha256, "x-sdk-content-sha256"),
        (Algorithm::V11HmacSha256, "x-sdk-content-sha256"),
        (Algorithm::SdkHmacSm3, "x-sdk-content-sm3"),
    ] {
        let v = vector(&format!("{algorithm}/octet_stream_body"));
        let got = v.sign();
        assert_eq!(got.unsigned_payload_header, Some(header), "{algorithm}");
        assert!(got.canonical_request.ends_with("\nUNSIGNED-PAYLOAD"), "{algorithm}");
        // The unsigned header lets the body change; the verifier accepts that,
        // as the API gateway does, because the header itself is signed.
        let mut changed = v.received();
        changed.body = b"other bytes entirely".to_vec();
        assert_eq!(
            changed.verify_with(&v.ak, &v.sk, v.date()),
            Ok(v.ak.clone()),
            "{algorithm}"
        );

        let json = vector(&format!("{algorithm}/vbs_create_cloudbackup")).sign();
        assert_eq!(json.unsigned_payload_header, None, "{algorithm}: JSON is hashed");
    }
}
