//! The AK/SK signer checked byte for byte against vectors from the official Python
//! SDK, and the simulator's verifier (written separately) checked against both.

use apig_signer::{Credentials, RequestView, Signature, VerifyError, sign};
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use serde::Deserialize;

mod common;
use common::{Received, pairs_of};

const VECTORS_JSON: &str = include_str!("data/signing_vectors.json");
/// All 15 vectors of the file use SDK-HMAC-SHA256 (group `vbs`). The other
/// schemes have vectors of their own, checked in `tests/algorithms.rs`.
const EXPECTED_SDK_HMAC_SHA256_VECTORS: usize = 15;

#[derive(Deserialize)]
struct VectorFile {
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
}

#[derive(Deserialize)]
struct Expected {
    canonical_uri: String,
    canonical_query_string: String,
    signed_headers: String,
    payload_hash: String,
    canonical_request: String,
    string_to_sign: String,
    signature: String,
    authorization: String,
    sent_url: String,
    sent_headers: serde_json::Map<String, serde_json::Value>,
}

impl Vector {
    fn date(&self) -> DateTime<Utc> {
        parse_date(&self.header("X-Sdk-Date").expect("vector has X-Sdk-Date"))
    }

    fn header(&self, name: &str) -> Option<String> {
        header_of(&self.headers, name)
    }

    /// The headers given to the signer: the vector's, less the fixed X-Sdk-Date,
    /// which reaches the signer as its `time` argument instead.
    fn caller_headers(&self) -> Vec<(String, String)> {
        pairs_of(&self.headers)
            .into_iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case("x-sdk-date"))
            .collect()
    }

    fn sign(&self) -> Signature {
        let headers = self.caller_headers();
        let request = RequestView {
            method: &self.method,
            host: &self.host,
            path: &self.path,
            query: &self.query,
            headers: &headers,
            body: self.body.as_bytes(),
        };
        sign(&request, &self.credentials(), self.date())
    }

    fn credentials(&self) -> Credentials<'_> {
        Credentials {
            access_key: &self.ak,
            secret_key: &self.sk,
            security_token: None,
        }
    }

    /// The request as the SDK sent it, as the simulator would receive it.
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

fn parse_date(text: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ")
        .expect("X-Sdk-Date format")
        .and_utc()
}

fn header_of(map: &serde_json::Map<String, serde_json::Value>, name: &str) -> Option<String> {
    map.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.as_str().map(str::to_owned))
}

fn load_vectors() -> Vec<Vector> {
    let file: VectorFile = serde_json::from_str(VECTORS_JSON).expect("vector file parses");
    assert_eq!(file.count, file.vectors.len(), "vector file count field");
    file.vectors
        .into_iter()
        .filter(|v| v.algorithm == "SDK-HMAC-SHA256")
        .collect()
}

fn vector(id: &str) -> Vector {
    load_vectors()
        .into_iter()
        .find(|v| v.id == id)
        .unwrap_or_else(|| panic!("vector {id} exists"))
}

fn line(text: &str, index: usize) -> &str {
    text.split('\n').nth(index).unwrap_or("<missing line>")
}

/// Every mismatch of one vector, each naming the vector and the field.
fn mismatches(v: &Vector) -> Vec<String> {
    let got = v.sign();
    let e = &v.expected;
    let query = apig_signer::canonical_query_string(&v.query);
    let sent_url = if query.is_empty() {
        format!("{}://{}{}", v.scheme, v.host, v.path)
    } else {
        format!("{}://{}{}?{query}", v.scheme, v.host, v.path)
    };
    let payload_hash = got.canonical_request.rsplit('\n').next().unwrap_or("");
    let sent = |name: &str| header_of(&e.sent_headers, name).unwrap_or_default();
    let checks: [(&str, &str, String); 14] = [
        ("canonical_uri", &e.canonical_uri, apig_signer::canonical_uri(&v.path)),
        (
            "canonical_uri (in canonical_request)",
            &e.canonical_uri,
            line(&got.canonical_request, 1).to_owned(),
        ),
        ("canonical_query_string", &e.canonical_query_string, query.clone()),
        ("signed_headers", &e.signed_headers, got.signed_headers.clone()),
        ("payload_hash", &e.payload_hash, payload_hash.to_owned()),
        ("canonical_request", &e.canonical_request, got.canonical_request.clone()),
        ("string_to_sign", &e.string_to_sign, got.string_to_sign.clone()),
        ("signature", &e.signature, got.signature.clone()),
        ("authorization", &e.authorization, got.authorization.clone()),
        ("sent_url", &e.sent_url, sent_url),
        ("sent_headers.Host", &sent("Host"), got.host.clone()),
        ("sent_headers.X-Sdk-Date", &sent("X-Sdk-Date"), got.x_sdk_date.clone()),
        (
            "sent_headers.Authorization",
            &sent("Authorization"),
            got.authorization.clone(),
        ),
        ("security_token", "None", format!("{:?}", got.security_token)),
    ];
    checks
        .into_iter()
        .filter(|(_, want, got)| want != got)
        .map(|(field, want, got)| format!("vector {}: {field}\n  want {want:?}\n  got  {got:?}", v.id))
        .collect()
}

#[test]
fn signer_matches_every_official_sdk_vector() {
    let vectors = load_vectors();
    let failures: Vec<String> = vectors.iter().flat_map(mismatches).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(vectors.len(), EXPECTED_SDK_HMAC_SHA256_VECTORS, "vectors checked");
}

#[test]
fn vectors_send_only_the_headers_given_plus_the_signers() {
    for v in load_vectors() {
        let mut want: Vec<String> = v.expected.sent_headers.keys().cloned().collect();
        let mut got: Vec<String> = v.headers.keys().cloned().collect();
        got.extend(["Host".to_owned(), "Authorization".to_owned()]);
        want.sort();
        got.sort();
        assert_eq!(want, got, "vector {}: sent_headers names", v.id);
    }
}

#[test]
fn verifier_accepts_every_vector_as_sent() {
    let vectors = load_vectors();
    for v in &vectors {
        let result = v.received().verify_with(&v.ak, &v.sk, v.date());
        assert_eq!(result, Ok(v.ak.clone()), "vector {}: verify", v.id);
    }
    assert_eq!(vectors.len(), EXPECTED_SDK_HMAC_SHA256_VECTORS, "vectors verified");
}

fn assert_mismatch(result: Result<String, VerifyError>, what: &str) {
    assert!(
        matches!(result, Err(VerifyError::SignatureMismatch { .. })),
        "{what}: {result:?}"
    );
}

#[test]
fn verifier_rejects_a_changed_body_byte() {
    let v = vector("vbs_create_cloudbackup");
    let mut request = v.received();
    request.body[20] ^= 0x01;
    assert_mismatch(request.verify_with(&v.ak, &v.sk, v.date()), "changed body");
}

#[test]
fn verifier_rejects_a_changed_query_value() {
    let v = vector("vbs_list_backups_detail");
    let mut request = v.received();
    let query = request.query.take().expect("vector has a query");
    assert!(query.contains("limit=10"));
    request.query = Some(query.replace("limit=10", "limit=11"));
    assert_mismatch(request.verify_with(&v.ak, &v.sk, v.date()), "changed query");
}

#[test]
fn verifier_rejects_a_wrong_secret_key() {
    let v = vector("vbs_get_job");
    let wrong = v.sk.replace('1', "2");
    assert_mismatch(v.received().verify_with(&v.ak, &wrong, v.date()), "wrong SK");
}

#[test]
fn verifier_rejects_an_unsigned_sdk_date() {
    let v = vector("vbs_get_job");
    let mut request = v.received();
    let authorization = v.expected.authorization.replace(";x-sdk-date,", ",");
    assert_ne!(authorization, v.expected.authorization);
    request.set_header("Authorization", &authorization);
    assert_eq!(
        request.verify_with(&v.ak, &v.sk, v.date()),
        Err(VerifyError::DateNotSigned)
    );
}

#[test]
fn verifier_allows_fourteen_minutes_of_skew_but_not_sixteen() {
    let v = vector("vbs_get_job");
    let request = v.received();
    let minutes = |m: i64| v.date() + TimeDelta::minutes(m);
    for ok in [-14, 14, -15, 15] {
        let result = request.verify_with(&v.ak, &v.sk, minutes(ok));
        assert_eq!(result, Ok(v.ak.clone()), "{ok} minutes off");
    }
    for stale in [-16, 16] {
        let result = request.verify_with(&v.ak, &v.sk, minutes(stale));
        assert_eq!(result, Err(VerifyError::StaleDate), "{stale} minutes off");
    }
}

#[test]
fn verifier_rejects_a_signed_header_that_did_not_arrive() {
    let v = vector("vbs_get_job");
    let mut request = v.received();
    request.remove_header("X-Project-Id");
    assert_eq!(
        request.verify_with(&v.ak, &v.sk, v.date()),
        Err(VerifyError::SignedHeaderMissing("x-project-id".to_owned()))
    );
}

#[test]
fn verifier_names_each_other_failure() {
    let v = vector("vbs_get_job");
    let check = |request: &Received, want: VerifyError| {
        assert_eq!(request.verify_with(&v.ak, &v.sk, v.date()), Err(want));
    };
    let mut no_auth = v.received();
    no_auth.remove_header("Authorization");
    check(&no_auth, VerifyError::MissingAuthorization);

    for bad in [
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date",
        "AWS4-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=00",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=host;x-sdk-date, Signature=zz",
        "SDK-HMAC-SHA256 Access=AK, SignedHeaders=Host;x-sdk-date, Signature=",
    ] {
        let mut request = v.received();
        request.set_header("Authorization", bad);
        check(&request, VerifyError::MalformedAuthorization);
    }

    let mut unknown = v.received();
    let other_ak = v.expected.authorization.replace(&v.ak, "SOMEONEELSE");
    unknown.set_header("Authorization", &other_ak);
    check(&unknown, VerifyError::UnknownAccessKey);

    let mut no_date = v.received();
    no_date.remove_header("X-Sdk-Date");
    check(&no_date, VerifyError::MissingSdkDate);

    for bad_date in ["2024-06-15T08:30:15Z", "20240615T083015", "20241315T083015Z"] {
        let mut request = v.received();
        request.set_header("X-Sdk-Date", bad_date);
        check(&request, VerifyError::BadSdkDate);
    }
}

#[test]
fn verifier_mismatch_carries_its_canonical_request() {
    let v = vector("vbs_get_job");
    let mut request = v.received();
    request.set_header("User-Agent", "tampered");
    let Err(VerifyError::SignatureMismatch { canonical_request }) = request.verify_with(&v.ak, &v.sk, v.date()) else {
        panic!("tampered header must not verify");
    };
    let want = v
        .expected
        .canonical_request
        .replace("user-agent:huaweicloud-usdk-python/3.0", "user-agent:tampered");
    assert_eq!(canonical_request, want);
}

// ---------------------------------------------------------------------------
// Pitfalls. Expected strings below were produced with the official signer of
// huaweicloudsdkcore 3.1.219 (Signer.sign, X-Sdk-Date fixed at DATE, the same
// AK/SK as the vector file); they are pinned here, not re-derived by hand.

const DATE: &str = "20240615T083015Z";
const AK: &str = "VBSGWTESTAKID0000001";
const SK: &str = "vbsGwTestSecretKey0000000000000000000001";
const VBS_HOST: &str = "vbs.eu-de.otc.t-systems.com";
const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// One request to sign, with owned parts so cases read as plain data.
struct Case {
    method: &'static str,
    host: &'static str,
    path: &'static str,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: &'static str,
    token: Option<&'static str>,
}

impl Case {
    fn get(path: &'static str) -> Self {
        Case {
            method: "GET",
            host: VBS_HOST,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: "",
            token: None,
        }
    }

    fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query = owned(pairs);
        self
    }

    fn headers(mut self, pairs: &[(&str, &str)]) -> Self {
        self.headers = owned(pairs);
        self
    }

    fn sign(&self) -> Signature {
        let request = RequestView {
            method: self.method,
            host: self.host,
            path: self.path,
            query: &self.query,
            headers: &self.headers,
            body: self.body.as_bytes(),
        };
        let credentials = Credentials {
            access_key: AK,
            secret_key: SK,
            security_token: self.token,
        };
        sign(&request, &credentials, parse_date(DATE))
    }

    /// Sends the signed request the way a transport would and verifies it.
    fn received(&self, signature: &Signature) -> Received {
        let mut headers = self.headers.clone();
        headers.push(("Host".to_owned(), signature.host.clone()));
        headers.push(("X-Sdk-Date".to_owned(), signature.x_sdk_date.clone()));
        headers.push(("Authorization".to_owned(), signature.authorization.clone()));
        if let Some(token) = &signature.security_token {
            headers.push(("X-Security-Token".to_owned(), token.clone()));
        }
        let query = apig_signer::canonical_query_string(&self.query);
        Received {
            method: self.method.to_owned(),
            path: self.path.to_owned(),
            query: (!query.is_empty()).then_some(query),
            headers,
            body: self.body.as_bytes().to_vec(),
        }
    }

    /// Signs, compares with the official SDK's output, and has the verifier
    /// accept what would be sent.
    fn assert_official(&self, canonical_request: &str, signature: &str) -> Signature {
        let got = self.sign();
        assert_eq!(got.canonical_request, canonical_request, "{}", self.path);
        assert_eq!(got.signature, signature, "{}", self.path);
        let verified = self.received(&got).verify_with(AK, SK, parse_date(DATE));
        assert_eq!(verified, Ok(AK.to_owned()), "verify {}", self.path);
        got
    }
}

fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

/// Canonical request of a GET that signs only host and x-sdk-date.
fn plain_get(uri: &str, query: &str) -> String {
    format!("GET\n{uri}\n{query}\nhost:{VBS_HOST}\nx-sdk-date:{DATE}\n\nhost;x-sdk-date\n{EMPTY}")
}

#[test]
fn query_sorts_on_decoded_text_not_on_the_encoding() {
    let pairs = owned(&[("k:1", "a"), ("k0", "b"), ("zeta", "z"), ("élan", "e")]);
    let want = "k0=b&k%3A1=a&zeta=z&%C3%A9lan=e";
    assert_eq!(apig_signer::canonical_query_string(&pairs), want);
    Case::get("/v2/p/backups")
        .query(&[("k:1", "a"), ("k0", "b"), ("zeta", "z"), ("élan", "e")])
        .assert_official(
            &plain_get("/v2/p/backups/", want),
            "4d2bd159f1fb2258c85fa65d164f16cebe4def0ee3d59c331b53e2427e234cbb",
        );
}

#[test]
fn query_encoding_keeps_case_repeats_and_empty_values() {
    let want = "Limit=5&dup=1&dup=2&empty=&limit=10&name=a%20b%2Bc~d%2Fe%3Df";
    Case::get("/v2/p/backups")
        .query(&[
            ("name", "a b+c~d/e=f"),
            ("Limit", "5"),
            ("limit", "10"),
            ("empty", ""),
            ("dup", "2"),
            ("dup", "1"),
        ])
        .assert_official(
            &plain_get("/v2/p/backups/", want),
            "a86dea91988c2347d9cb198e2adf403648edd8b6369acb2def3b12dee8808954",
        );
    assert_eq!(apig_signer::canonical_query_string(&[]), "");
}

#[test]
fn encode_escapes_plus_and_space_but_not_tilde() {
    assert_eq!(apig_signer::encode("a b+c~d"), "a%20b%2Bc~d");
    assert_eq!(apig_signer::encode("/=:@é"), "%2F%3D%3A%40%C3%A9");
    assert_eq!(apig_signer::encode("AZaz09-_.~"), "AZaz09-_.~");
    assert_eq!(apig_signer::encode("\u{7f}\n"), "%7F%0A");
}

#[test]
fn path_is_decoded_then_encoded_so_both_spellings_sign_alike() {
    let canonical = plain_get("/v2/p/backups/bkp%3A2024%40eu~x/", "");
    let signature = "c00f391acb70a186a77f9243d26ecb92988a0511efbd9369d64271c31f6c9700";
    Case::get("/v2/p/backups/bkp%3a2024%40eu~x").assert_official(&canonical, signature);
    Case::get("/v2/p/backups/bkp:2024@eu~x").assert_official(&canonical, signature);
}

#[test]
fn canonical_uri_gets_one_trailing_slash_but_the_sent_path_keeps_its_form() {
    let signature = "25babc6b7e1f12db92f0d0fc0a57c5b8411f45c604552a2e7b2b281ebeaaf6c3";
    let canonical = plain_get("/v2/p/backups/detail/", "");
    let with = Case::get("/v2/p/backups/detail/").assert_official(&canonical, signature);
    let without = Case::get("/v2/p/backups/detail").assert_official(&canonical, signature);
    assert_eq!(with, without);
    assert_eq!(apig_signer::canonical_uri("/"), "/");
    assert_eq!(apig_signer::canonical_uri(""), "/");
    assert_eq!(apig_signer::canonical_uri("/a//b"), "/a//b/");
    assert_eq!(apig_signer::canonical_uri("/a/./../b%20c"), "/a/./../b%20c/");
}

#[test]
fn host_with_a_port_is_signed_and_sent_with_the_port() {
    let case = Case {
        method: "POST",
        host: "127.0.0.1:8443",
        path: "/v2/p/cloudbackups",
        query: Vec::new(),
        headers: owned(&[("Content-Type", "application/json")]),
        body: r#"{"backup": {"volume_id": "v"}}"#,
        token: None,
    };
    let got = case.assert_official(
        "POST\n/v2/p/cloudbackups/\n\ncontent-type:application/json\nhost:127.0.0.1:8443\n\
         x-sdk-date:20240615T083015Z\n\ncontent-type;host;x-sdk-date\n\
         a9ed6f34f9264c14a77e7811be45feb8f6bb9c519eb65263159ea52a219ea5ad",
        "52a19aec9f26a363b27a0100d29bc733faa49b66467a5827e87ce0ce5aebf0e4",
    );
    assert_eq!(got.host, "127.0.0.1:8443");
    // A client that drops the port from Host breaks the signature.
    let mut portless = case.received(&got);
    portless.set_header("Host", "127.0.0.1");
    assert_mismatch(portless.verify_with(AK, SK, parse_date(DATE)), "Host without port");
}

#[test]
fn temporary_credentials_sign_the_security_token() {
    let case = Case {
        token: Some("tmp-token/+=abc"),
        ..Case::get("/v1/p/jobs/j").headers(&[("X-Project-Id", "p")])
    };
    let got = case.assert_official(
        "GET\n/v1/p/jobs/j/\n\nhost:vbs.eu-de.otc.t-systems.com\nx-project-id:p\n\
         x-sdk-date:20240615T083015Z\nx-security-token:tmp-token/+=abc\n\n\
         host;x-project-id;x-sdk-date;x-security-token\n\
         e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "937883d850215526f9b465edbc9d3aa0b2d415a7d0f907fd4819fb7204e809e9",
    );
    assert_eq!(got.security_token.as_deref(), Some("tmp-token/+=abc"));
    assert_eq!(got.signed_headers, "host;x-project-id;x-sdk-date;x-security-token");
    let mut swapped = case.received(&got);
    swapped.set_header("X-Security-Token", "another-token");
    assert_mismatch(swapped.verify_with(AK, SK, parse_date(DATE)), "other token");
}

#[test]
fn underscore_names_are_unsigned_and_values_trimmed_not_collapsed() {
    let case = Case {
        method: "DELETE",
        body: "{}",
        ..Case::get("/v2/p/backups/b").headers(&[
            ("X_Custom_Header", "dropped"),
            ("X-Note", "  a  b  "),
            ("Content-Type", "application/json"),
        ])
    };
    let got = case.assert_official(
        "DELETE\n/v2/p/backups/b/\n\ncontent-type:application/json\n\
         host:vbs.eu-de.otc.t-systems.com\nx-note:a  b\nx-sdk-date:20240615T083015Z\n\n\
         content-type;host;x-note;x-sdk-date\n\
         44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
        "f7326c1e18a0082044418232f98f1e316fe1747f5bdcd4e6f744c285dd148be4",
    );
    assert!(!got.signed_headers.contains('_'));
}

#[test]
fn content_sha256_header_replaces_the_hash_of_a_non_empty_body() {
    let case = Case {
        method: "PUT",
        body: "raw body",
        ..Case::get("/v2/p/x").headers(&[
            ("Content-Type", "application/json"),
            ("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD"),
        ])
    };
    case.assert_official(
        "PUT\n/v2/p/x/\n\ncontent-type:application/json\nhost:vbs.eu-de.otc.t-systems.com\n\
         x-sdk-content-sha256:UNSIGNED-PAYLOAD\nx-sdk-date:20240615T083015Z\n\n\
         content-type;host;x-sdk-content-sha256;x-sdk-date\nUNSIGNED-PAYLOAD",
        "c57ed30f96dea88390a3fedbcc0518d264a618f7f2fdb338bad68cbca2fdd4ef",
    );
    // With no body the empty-body hash wins (the Python SDK's behaviour too).
    let empty = Case {
        body: "",
        ..Case::get("/v2/p/x").headers(&[("X-Sdk-Content-Sha256", "UNSIGNED-PAYLOAD")])
    };
    let got = empty.sign();
    assert!(got.canonical_request.ends_with(EMPTY), "{}", got.canonical_request);
    let verified = empty.received(&got).verify_with(AK, SK, parse_date(DATE));
    assert_eq!(verified, Ok(AK.to_owned()));
}

#[test]
fn signer_owns_date_host_and_token_headers_and_dedups_names() {
    let case = Case::get("/v2/p/backups").headers(&[
        ("X-Sdk-Date", "19990101T000000Z"),
        ("host", "evil.example"),
        ("Authorization", "stale"),
        ("Content-Type", "application/json"),
        ("content-type", "text/plain"),
    ]);
    let got = case.sign();
    assert_eq!(got.x_sdk_date, DATE);
    assert_eq!(got.host, VBS_HOST);
    assert_eq!(got.signed_headers, "content-type;host;x-sdk-date");
    assert!(got.canonical_request.contains("\ncontent-type:application/json\n"));
    assert!(!got.canonical_request.contains("19990101"));
    assert!(!got.canonical_request.contains("evil"));
    assert!(got.string_to_sign.starts_with("SDK-HMAC-SHA256\n20240615T083015Z\n"));
}

#[test]
fn header_name_case_does_not_change_the_signature() {
    let mixed = Case::get("/v2/p/backups").headers(&[("Content-Type", "application/json"), ("X-Project-Id", "p")]);
    let lower = Case::get("/v2/p/backups").headers(&[("content-type", "application/json"), ("x-project-id", "p")]);
    assert_eq!(mixed.sign(), lower.sign());
}

#[test]
fn sdk_date_is_zero_padded_utc() {
    let time = parse_date("20240105T030405Z");
    assert_eq!(apig_signer::format_sdk_date(time), "20240105T030405Z");
    let with_fraction = time + TimeDelta::milliseconds(999);
    assert_eq!(apig_signer::format_sdk_date(with_fraction), "20240105T030405Z");
}

// ---------------------------------------------------------------------------
// Secrets.

#[test]
fn debug_output_never_shows_the_secret_key_or_token() {
    let token = "tmp-token-SECRET-VALUE";
    let credentials = Credentials {
        access_key: AK,
        secret_key: SK,
        security_token: Some(token),
    };
    let shown = format!("{credentials:?} {credentials:#?}");
    assert!(shown.contains(AK), "{shown}");
    assert!(!shown.contains(SK), "{shown}");
    assert!(!shown.contains(token), "{shown}");

    let case = Case {
        token: Some(token),
        ..Case::get("/v2/p/backups")
    };
    let signature = case.sign();
    let shown = format!("{signature:?} {signature:#?}");
    assert!(!shown.contains(SK), "{shown}");
    assert!(!shown.contains(token), "{shown}");
    assert!(shown.contains(&signature.signature), "diagnostics stay: {shown}");

    let mut spoiled = case.received(&signature);
    spoiled.body = b"x".to_vec();
    let error = spoiled.verify_with(AK, SK, parse_date(DATE));
    assert!(!format!("{error:?}").contains(SK));
}

#[test]
fn no_signature_field_carries_the_secret_key() {
    for v in load_vectors() {
        let s = v.sign();
        let fields = [
            &s.x_sdk_date,
            &s.authorization,
            &s.host,
            &s.signed_headers,
            &s.canonical_request,
            &s.string_to_sign,
            &s.signature,
        ];
        assert!(fields.iter().all(|f| !f.contains(&v.sk)), "vector {}", v.id);
    }
}
