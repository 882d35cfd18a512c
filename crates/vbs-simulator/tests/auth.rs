//! The simulator's authentication, as the real cloud checks it: AK/SK
//! signatures (made with the gateway's signer), static and IAM-issued tokens,
//! the IAM token endpoint, and the API gateway's 401 bodies.

use std::time::Duration;

use apig_signer::Secret;
use apig_signer::{self as signer, Credentials, RequestView};
use reqwest::Method;
use serde_json::{Value, json};
use vbs_simulator::{AccessKey, AuthConfig, IamUser, Simulator, SimulatorConfig};

const PROJECT: &str = "0a1b2c3d4e5f40718293a4b5c6d7e8f9";
const PROJECT_NAME: &str = "eu-de";
const USER: &str = "backup-operator";
const PASSWORD: &str = "Pa55word-never-kept";
const DOMAIN: &str = "OTC00000000001000000001";
const STATIC_TOKEN: &str = "MIIstatic-token-for-tests";
const TEMP_TOKEN: &str = "temporary-security-token-value";

// ---------------------------------------------------------------- harness

struct Vbs {
    sim: Simulator,
    http: reqwest::Client,
}

struct Answer {
    status: u16,
    headers: reqwest::header::HeaderMap,
    text: String,
    body: Value,
}

/// A request as it is signed and then sent, so a test can change one part.
#[derive(Clone)]
struct Call {
    method: &'static str,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Call {
    fn get(path: String) -> Call {
        Call {
            method: "GET",
            path,
            query: Vec::new(),
            headers: vec![
                ("Content-Type".into(), "application/json".into()),
                ("X-Project-Id".into(), PROJECT.into()),
            ],
            body: Vec::new(),
        }
    }

    fn post(path: String, body: &Value) -> Call {
        Call {
            method: "POST",
            body: body.to_string().into_bytes(),
            ..Call::get(path)
        }
    }
}

/// An enforcing config with one generated AK/SK, a user, and a static token.
fn enforcing() -> (AuthConfig, AccessKey) {
    let (mut config, key) = AuthConfig::enforcing().with_generated_access_key();
    config.users.push(IamUser {
        name: USER.into(),
        password: Secret::new(PASSWORD),
        domain: DOMAIN.into(),
        project: PROJECT_NAME.into(),
    });
    config.static_tokens.push(Secret::new(STATIC_TOKEN));
    (config, key)
}

async fn start(auth: AuthConfig) -> Vbs {
    // The crate's reqwest has no built-in TLS provider; plain HTTP still
    // needs one installed to build a client.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind port 0");
    let config = SimulatorConfig {
        auth,
        ..SimulatorConfig::for_testing()
    };
    let sim = Simulator::start(config, listener).await.expect("simulator starts");
    Vbs {
        sim,
        http: reqwest::Client::new(),
    }
}

fn v2(rest: &str) -> String {
    format!("/v2/{PROJECT}{rest}")
}

fn policies() -> String {
    v2("/backuppolicy")
}

fn policy_body(name: &str) -> Value {
    json!({
        "backup_policy_name": name,
        "scheduled_policy": {
            "remain_first_backup_of_curMonth": "Y",
            "rentention_num": 10,
            "frequency": 1,
            "start_time": "12:00",
            "status": "ON"
        }
    })
}

fn credentials(key: &AccessKey) -> Credentials<'_> {
    Credentials {
        access_key: &key.access_key,
        secret_key: key.secret_key.expose(),
        security_token: key.security_token.as_ref().map(Secret::expose),
    }
}

impl Vbs {
    /// `127.0.0.1:PORT`, what reqwest sends as Host.
    fn host(&self) -> String {
        self.sim.local_addr().to_string()
    }

    fn sign(&self, call: &Call, credentials: &Credentials, skew: chrono::TimeDelta) -> signer::Signature {
        let host = self.host();
        let view = RequestView {
            method: call.method,
            host: &host,
            path: &call.path,
            query: &call.query,
            headers: &call.headers,
            body: &call.body,
        };
        signer::sign(&view, credentials, chrono::Utc::now() + skew)
    }

    /// Sends `call` with the given extra headers (the signature's, usually).
    async fn send(&self, call: &Call, extra: &[(&str, &str)]) -> Answer {
        let mut url = format!("{}{}", self.sim.url(), call.path);
        if !call.query.is_empty() {
            url.push('?');
            url.push_str(&signer::canonical_query_string(&call.query));
        }
        let method = Method::from_bytes(call.method.as_bytes()).expect("method");
        let mut request = self.http.request(method, url).body(call.body.clone());
        for (name, value) in &call.headers {
            request = request.header(name, value);
        }
        for (name, value) in extra {
            request = request.header(*name, *value);
        }
        let response = request.send().await.expect("simulator answers");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Answer {
            status,
            headers,
            text,
            body,
        }
    }

    /// Signs `call` now and sends it with the signature's headers.
    async fn signed(&self, call: &Call, credentials: &Credentials<'_>) -> Answer {
        self.signed_at(call, credentials, chrono::TimeDelta::zero()).await
    }

    async fn signed_at(&self, call: &Call, credentials: &Credentials<'_>, skew: chrono::TimeDelta) -> Answer {
        let signature = self.sign(call, credentials, skew);
        self.send(call, &signature_headers(&signature)).await
    }

    async fn with_token(&self, call: &Call, token: &str) -> Answer {
        self.send(call, &[("X-Auth-Token", token)]).await
    }

    async fn ask_token(&self, body: &Value) -> Answer {
        self.send(&Call::post("/v3/auth/tokens".into(), body), &[]).await
    }

    /// A token for the test user; panics unless IAM issues one.
    async fn token(&self) -> String {
        let answer = self
            .ask_token(&password_body(USER, PASSWORD, DOMAIN, PROJECT_NAME))
            .await;
        assert_eq!(answer.status, 201, "{}", answer.text);
        subject_token(&answer)
    }

    /// The simulated now, as the admin route tells it (advancing by nothing).
    async fn sim_now(&self) -> String {
        let url = format!("{}/simulator/clock/advance?seconds=0", self.sim.url());
        let response = self.http.post(url).send().await.expect("simulator answers");
        assert_eq!(response.status(), 200);
        let body: Value = serde_json::from_str(&response.text().await.expect("body")).expect("JSON");
        body["now"].as_str().expect("now").to_owned()
    }
}

fn signature_headers(signature: &signer::Signature) -> Vec<(&str, &str)> {
    let mut headers = vec![
        ("X-Sdk-Date", signature.x_sdk_date.as_str()),
        ("Authorization", signature.authorization.as_str()),
    ];
    if let Some(token) = &signature.security_token {
        headers.push(("X-Security-Token", token.as_str()));
    }
    headers
}

fn password_body(name: &str, password: &str, domain: &str, project: &str) -> Value {
    json!({
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {"user": {"name": name, "password": password, "domain": {"name": domain}}}
            },
            "scope": {"project": {"name": project}}
        }
    })
}

fn subject_token(answer: &Answer) -> String {
    answer
        .headers
        .get("x-subject-token")
        .expect("X-Subject-Token")
        .to_str()
        .expect("ASCII")
        .to_owned()
}

/// The API gateway's `{"error_code": "APIGW.0301", ...}` with this reason.
#[track_caller]
fn assert_refused(answer: &Answer, reason: &str) {
    assert_eq!(answer.status, 401, "{}", answer.text);
    let message = format!("Incorrect IAM authentication information: {reason}");
    assert_gateway_error(answer, "APIGW.0301", &message);
}

#[track_caller]
fn assert_token_refused(answer: &Answer) {
    assert_eq!(answer.status, 401, "{}", answer.text);
    assert_gateway_error(answer, "APIGW.0307", "The token must be updated.");
}

#[track_caller]
fn assert_gateway_error(answer: &Answer, code: &str, message: &str) {
    let object = answer
        .body
        .as_object()
        .unwrap_or_else(|| panic!("not JSON: {}", answer.text));
    assert_eq!(object.len(), 3, "{}", answer.text);
    assert_eq!(answer.body["error_code"], code, "{}", answer.text);
    assert_eq!(answer.body["error_msg"], message, "{}", answer.text);
    let request_id = answer.body["request_id"].as_str().expect("request_id");
    assert_eq!(request_id.len(), 32, "{request_id}");
    assert!(request_id.bytes().all(|b| b.is_ascii_hexdigit()), "{request_id}");
}

/// Keystone's `{"error": {"code", "message", "title"}}`.
#[track_caller]
fn assert_keystone_error(answer: &Answer, code: u16) {
    assert_eq!(answer.status, code, "{}", answer.text);
    assert_eq!(answer.body["error"]["code"], code, "{}", answer.text);
    assert!(answer.body["error"]["title"].is_string(), "{}", answer.text);
    if code == 401 {
        assert_eq!(
            answer.body["error"]["message"],
            "The request you have made requires authentication."
        );
        assert_eq!(answer.body["error"]["title"], "Unauthorized");
    } else {
        assert!(answer.body["error"]["message"].is_string(), "{}", answer.text);
    }
    assert!(!answer.text.contains(PASSWORD), "{}", answer.text);
}

/// Replaces the SignedHeaders list of an Authorization value.
fn with_signed_headers(authorization: &str, names: &[&str]) -> String {
    authorization
        .split(", ")
        .map(|param| match param.strip_prefix("SignedHeaders=") {
            Some(_) => format!("SignedHeaders={}", names.join(";")),
            None => param.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

// ------------------------------------------------------------------- open

#[tokio::test]
async fn an_open_simulator_accepts_anything() {
    let vbs = start(AuthConfig::open()).await;
    let call = Call::get(policies());
    assert_eq!(vbs.send(&call, &[]).await.status, 200);
    assert_eq!(vbs.with_token(&call, "not-a-token").await.status, 200);
    let garbage = [
        ("Authorization", "SDK-HMAC-SHA256 nonsense"),
        ("X-Sdk-Date", "yesterday"),
    ];
    assert_eq!(vbs.send(&call, &garbage).await.status, 200);

    // IAM hands a token to whoever asks in the right shape.
    let answer = vbs
        .ask_token(&password_body("anyone", "anything", "any", "eu-de"))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_eq!(answer.body["token"]["user"]["name"], "anyone");
    assert_keystone_error(&vbs.ask_token(&json!({"auth": {}})).await, 400);
}

// ------------------------------------------------------------------ AK/SK

#[tokio::test]
async fn a_good_signature_is_accepted_and_the_body_reaches_the_route() {
    let (config, key) = enforcing();
    let vbs = start(config).await;
    let credentials = credentials(&key);

    let create = Call::post(policies(), &policy_body("signed-policy"));
    let answer = vbs.signed(&create, &credentials).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert!(answer.body["backup_policy_id"].is_string(), "{}", answer.text);

    let mut list = Call::get(v2("/backups/detail"));
    list.query = vec![("limit".into(), "5".into()), ("name".into(), "a b+c/é".into())];
    let answer = vbs.signed(&list, &credentials).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    let answer = vbs.signed(&Call::get(policies()), &credentials).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["backup_policies"][0]["backup_policy_name"], "signed-policy");
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused() {
    let (config, key) = enforcing();
    let vbs = start(config).await;
    let wrong = Credentials {
        secret_key: "0000000000000000000000000000000000000000",
        ..credentials(&key)
    };
    let answer = vbs.signed(&Call::get(policies()), &wrong).await;
    assert_refused(&answer, "verify aksk signature fail");
    assert!(!answer.text.contains(key.secret_key.expose()));
}

#[tokio::test]
async fn an_unknown_access_key_is_refused_without_echoing_it() {
    let (config, _) = enforcing();
    let vbs = start(config).await;
    let stranger = Credentials {
        access_key: "UNKNOWNAKSTRANGER123",
        secret_key: "whatever-secret",
        security_token: None,
    };
    let answer = vbs.signed(&Call::get(policies()), &stranger).await;
    assert_refused(&answer, "ak not exist");
    assert!(!answer.text.contains("UNKNOWNAKSTRANGER123"), "{}", answer.text);
}

#[tokio::test]
async fn a_date_more_than_fifteen_minutes_off_is_refused() {
    for offset_minutes in [16, -16] {
        let (mut config, key) = enforcing();
        config.clock_offset_secs = offset_minutes * 60;
        let vbs = start(config).await;
        let answer = vbs.signed(&Call::get(policies()), &credentials(&key)).await;
        assert_refused(&answer, "signature expired");
    }
    for offset_minutes in [14, -14] {
        let (mut config, key) = enforcing();
        config.clock_offset_secs = offset_minutes * 60;
        let vbs = start(config).await;
        let answer = vbs.signed(&Call::get(policies()), &credentials(&key)).await;
        assert_eq!(answer.status, 200, "offset {offset_minutes} min: {}", answer.text);
    }
    // The signer's clock off instead of the simulator's: the same rule.
    let (config, key) = enforcing();
    let vbs = start(config).await;
    let late = vbs
        .signed_at(
            &Call::get(policies()),
            &credentials(&key),
            chrono::TimeDelta::minutes(-16),
        )
        .await;
    assert_refused(&late, "signature expired");
}

#[tokio::test]
async fn x_sdk_date_must_be_signed() {
    let (config, key) = enforcing();
    let vbs = start(config).await;
    let call = Call::get(policies());
    let signature = vbs.sign(&call, &credentials(&key), chrono::TimeDelta::zero());
    let names: Vec<&str> = signature
        .signed_headers
        .split(';')
        .filter(|name| *name != "x-sdk-date")
        .collect();
    let authorization = with_signed_headers(&signature.authorization, &names);
    let headers = [
        ("X-Sdk-Date", signature.x_sdk_date.as_str()),
        ("Authorization", authorization.as_str()),
    ];
    assert_refused(&vbs.send(&call, &headers).await, "x-sdk-date not signed");
}

#[tokio::test]
async fn a_body_changed_after_signing_is_refused() {
    let (config, key) = enforcing();
    let vbs = start(config).await;
    let call = Call::post(policies(), &policy_body("policy-a"));
    let signature = vbs.sign(&call, &credentials(&key), chrono::TimeDelta::zero());
    let mut tampered = call.clone();
    let at = tampered.body.iter().position(|b| *b == b'a').expect("an 'a'");
    tampered.body[at] = b'b';
    let answer = vbs.send(&tampered, &signature_headers(&signature)).await;
    assert_refused(&answer, "verify aksk signature fail");
    // Nothing was created.
    let list = vbs.signed(&Call::get(policies()), &credentials(&key)).await;
    assert_eq!(list.body["backup_policies"], json!([]), "{}", list.text);
}

#[tokio::test]
async fn temporary_credentials_need_their_security_token_signed() {
    let (mut config, mut key) = enforcing();
    key.security_token = Some(Secret::new(TEMP_TOKEN));
    config.access_keys[0] = key.clone();
    let vbs = start(config).await;
    let call = Call::get(policies());

    let answer = vbs.signed(&call, &credentials(&key)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    let without = Credentials {
        security_token: None,
        ..credentials(&key)
    };
    assert_refused(&vbs.signed(&call, &without).await, "security token mismatch");

    let wrong = Credentials {
        security_token: Some("some-other-security-token"),
        ..credentials(&key)
    };
    let answer = vbs.signed(&call, &wrong).await;
    assert_refused(&answer, "security token mismatch");
    assert!(!answer.text.contains(TEMP_TOKEN));

    // Sent but not signed: anyone on the way could have added it.
    let signature = vbs.sign(&call, &without, chrono::TimeDelta::zero());
    let mut headers = signature_headers(&signature);
    headers.push(("X-Security-Token", TEMP_TOKEN));
    assert_refused(&vbs.send(&call, &headers).await, "security token mismatch");
}

// ----------------------------------------------------------------- tokens

#[tokio::test]
async fn a_static_token_is_accepted_and_others_are_not() {
    let (config, _) = enforcing();
    let vbs = start(config).await;
    let call = Call::get(policies());
    assert_eq!(vbs.with_token(&call, STATIC_TOKEN).await.status, 200);
    let answer = vbs.with_token(&call, "MIIforged").await;
    assert_token_refused(&answer);
    assert!(!answer.text.contains("MIIforged"));
}

#[tokio::test]
async fn a_request_without_credentials_is_refused() {
    let (config, _) = enforcing();
    let vbs = start(config).await;
    let answer = vbs.send(&Call::get(policies()), &[]).await;
    assert_refused(&answer, "no credentials in the request");
    let answer = vbs.send(&Call::post(policies(), &policy_body("anonymous")), &[]).await;
    assert_refused(&answer, "no credentials in the request");
}

#[tokio::test]
async fn iam_issues_tokens_that_open_the_vbs_api() {
    let (config, _) = enforcing();
    let vbs = start(config).await;
    let now = vbs.sim_now().await;

    let answer = vbs
        .ask_token(&password_body(USER, PASSWORD, DOMAIN, PROJECT_NAME))
        .await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    let token = subject_token(&answer);
    assert!(token.starts_with("MIIsim") && token.len() == 70, "{token}");
    assert!(token.bytes().all(|b| b.is_ascii_alphanumeric()));
    let body = &answer.body["token"];
    let issued_at = chrono::DateTime::parse_from_rfc3339(body["issued_at"].as_str().expect("issued_at")).expect("time");
    let expires_at =
        chrono::DateTime::parse_from_rfc3339(body["expires_at"].as_str().expect("expires_at")).expect("time");
    assert_eq!(body["issued_at"], now);
    assert_eq!(expires_at - issued_at, chrono::TimeDelta::hours(24));
    assert!(body["expires_at"].as_str().expect("text").ends_with('Z'));
    assert_eq!(body["methods"], json!(["password"]));
    assert_eq!(body["user"], json!({"name": USER, "domain": {"name": DOMAIN}}));
    assert_eq!(body["project"]["name"], PROJECT_NAME);
    assert!(!answer.text.contains(PASSWORD));

    let answer = vbs.with_token(&Call::get(policies()), &token).await;
    assert_eq!(answer.status, 200, "{}", answer.text);

    // The scope may name the project by id as well.
    let mut by_id = password_body(USER, PASSWORD, DOMAIN, PROJECT_NAME);
    by_id["auth"]["scope"]["project"] = json!({"id": PROJECT_NAME});
    let answer = vbs.ask_token(&by_id).await;
    assert_eq!(answer.status, 201, "{}", answer.text);
    assert_ne!(subject_token(&answer), token);
    assert_eq!(vbs.sim.issued_token_count(), 2);
}

#[tokio::test]
async fn iam_refuses_wrong_credentials_and_malformed_bodies() {
    let (config, _) = enforcing();
    let vbs = start(config).await;
    for body in [
        password_body(USER, "wrong-password", DOMAIN, PROJECT_NAME),
        password_body("someone-else", PASSWORD, DOMAIN, PROJECT_NAME),
        password_body(USER, PASSWORD, "OTHER-DOMAIN", PROJECT_NAME),
        password_body(USER, PASSWORD, DOMAIN, "ap-southeast-1"),
    ] {
        let answer = vbs.ask_token(&body).await;
        assert_keystone_error(&answer, 401);
        assert!(answer.headers.get("x-subject-token").is_none());
    }

    let mut no_password = password_body(USER, PASSWORD, DOMAIN, PROJECT_NAME);
    no_password["auth"]["identity"]["password"]["user"]["password"] = json!(12345);
    let mut no_scope = password_body(USER, PASSWORD, DOMAIN, PROJECT_NAME);
    no_scope["auth"]["scope"] = json!({});
    let mut token_method = password_body(USER, PASSWORD, DOMAIN, PROJECT_NAME);
    token_method["auth"]["identity"]["methods"] = json!(["token"]);
    for body in [json!({}), json!([]), no_password, no_scope, token_method] {
        assert_keystone_error(&vbs.ask_token(&body).await, 400);
    }
    let not_json = Call {
        body: b"{\"auth\": ".to_vec(),
        ..Call::post("/v3/auth/tokens".into(), &json!({}))
    };
    assert_keystone_error(&vbs.send(&not_json, &[]).await, 400);
    assert_eq!(vbs.sim.issued_token_count(), 0);
}

#[tokio::test]
async fn issued_tokens_expire_on_the_simulated_clock() {
    let (mut config, _) = enforcing();
    config.token_ttl = Duration::from_secs(3600);
    let vbs = start(config).await;
    let token = vbs.token().await;
    let call = Call::get(policies());

    vbs.sim.advance(Duration::from_secs(3599));
    assert_eq!(vbs.with_token(&call, &token).await.status, 200);
    vbs.sim.advance(Duration::from_secs(2));
    assert_token_refused(&vbs.with_token(&call, &token).await);

    // A new token works; static tokens do not expire.
    let fresh = vbs.token().await;
    assert_eq!(vbs.with_token(&call, &fresh).await.status, 200);
    vbs.sim.advance(Duration::from_secs(3601));
    assert_token_refused(&vbs.with_token(&call, &fresh).await);
    assert_eq!(vbs.with_token(&call, STATIC_TOKEN).await.status, 200);
    assert_eq!(vbs.sim.issued_token_count(), 2);
}

#[tokio::test]
async fn revoked_tokens_are_refused_and_fresh_ones_work() {
    let (config, _) = enforcing();
    let vbs = start(config).await;
    let call = Call::get(policies());
    let first = vbs.token().await;
    let second = vbs.token().await;
    assert_eq!(vbs.sim.issued_token_count(), 2);
    assert_eq!(vbs.with_token(&call, &first).await.status, 200);

    vbs.sim.revoke_tokens();
    assert_token_refused(&vbs.with_token(&call, &first).await);
    assert_token_refused(&vbs.with_token(&call, &second).await);
    assert_eq!(vbs.with_token(&call, STATIC_TOKEN).await.status, 200);
    let third = vbs.token().await;
    assert_eq!(vbs.with_token(&call, &third).await.status, 200);
    assert_eq!(vbs.sim.issued_token_count(), 3);
}

// --------------------------------------------------- recording and routes

#[tokio::test]
async fn iam_calls_and_refused_calls_are_recorded_without_the_password() {
    let (config, _) = enforcing();
    let vbs = start(config).await;
    vbs.token().await;
    vbs.ask_token(&password_body(USER, "wrong-password", DOMAIN, PROJECT_NAME))
        .await;
    let refused = vbs.send(&Call::get(policies()), &[]).await;
    assert_eq!(refused.status, 401);

    let requests = vbs.sim.requests();
    assert_eq!(requests.len(), 3, "{requests:?}");
    let iam: Vec<_> = requests.iter().filter(|r| r.path == "/v3/auth/tokens").collect();
    assert_eq!(iam.len(), 2);
    assert!(iam.iter().all(|r| r.method == "POST" && r.body == "<redacted>"));
    assert_eq!(requests[2].path, policies());
    let everything = format!("{requests:?}");
    assert!(!everything.contains(PASSWORD), "{everything}");
    assert!(!everything.contains("wrong-password"), "{everything}");
}

#[tokio::test]
async fn admin_routes_and_unknown_paths_need_no_credentials() {
    let (config, _) = enforcing();
    let vbs = start(config).await;
    let volumes = vbs.send(&Call::get("/simulator/volumes".into()), &[]).await;
    assert_eq!(volumes.status, 200, "{}", volumes.text);
    vbs.sim_now().await;
    let unknown = vbs.send(&Call::get("/v2/whatever".into()), &[]).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.body["error_code"], "APIGW.0101");
}

#[tokio::test]
async fn an_outage_does_not_reach_iam() {
    let (config, _) = enforcing();
    let vbs = start(config).await;
    vbs.sim.inject_http_errors(503, 1);
    let token = vbs.token().await;
    let answer = vbs.with_token(&Call::get(policies()), &token).await;
    assert_eq!(answer.status, 503, "{}", answer.text);
    assert_eq!(vbs.with_token(&Call::get(policies()), &token).await.status, 200);
}

#[test]
fn auth_config_debug_shows_no_secret() {
    let (mut config, key) = enforcing();
    config.access_keys[0].security_token = Some(Secret::new(TEMP_TOKEN));
    let shown = format!("{config:?} {key:?}");
    for secret in [key.secret_key.expose(), PASSWORD, STATIC_TOKEN, TEMP_TOKEN] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains(&key.access_key));
}

#[test]
fn generated_keys_look_like_huawei_cloud_keys() {
    let (config, key) = AuthConfig::enforcing().with_generated_access_key();
    assert_eq!(config.access_keys.len(), 1);
    assert_eq!(config.access_keys[0].access_key, key.access_key);
    assert_eq!(key.access_key.len(), 20);
    assert!(
        key.access_key
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );
    let sk = key.secret_key.expose();
    assert_eq!(sk.len(), 40);
    assert!(sk.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(key.security_token.is_none());
    let (_, other) = config.with_generated_access_key();
    assert_ne!(other.access_key, key.access_key);
    assert_ne!(other.secret_key.expose(), sk);
    let open = AuthConfig::open();
    assert!(!open.enforce);
    assert_eq!(open.token_ttl, Duration::from_secs(24 * 3600));
    assert_eq!(open.max_clock_skew, Duration::from_secs(15 * 60));
    assert!(AuthConfig::enforcing().enforce);
    assert!(!SimulatorConfig::for_testing().auth.enforce);
    assert!(!SimulatorConfig::demo().auth.enforce);
}

/// The three HMAC schemes the official SDKs sign with.
const SCHEMES: [signer::Scheme<'static>; 3] = [
    signer::Scheme::SdkHmacSha256,
    signer::Scheme::V11HmacSha256 {
        region: "eu-de",
        service: "vbs",
    },
    signer::Scheme::SdkHmacSm3,
];

impl Vbs {
    async fn signed_with(&self, call: &Call, credentials: &Credentials<'_>, scheme: &signer::Scheme<'_>) -> Answer {
        let host = self.host();
        let view = RequestView {
            method: call.method,
            host: &host,
            path: &call.path,
            query: &call.query,
            headers: &call.headers,
            body: &call.body,
        };
        let signature = signer::sign_with(&view, credentials, scheme, chrono::Utc::now());
        self.send(call, &signature.headers()).await
    }
}

#[tokio::test]
async fn every_sdk_signing_scheme_is_accepted_with_the_right_key_only() {
    let (config, key) = enforcing();
    let vbs = start(config).await;
    let good = credentials(&key);
    let wrong = Credentials {
        secret_key: "0000000000000000000000000000000000000000",
        ..credentials(&key)
    };
    for scheme in SCHEMES {
        let create = Call::post(policies(), &policy_body(&format!("policy-{}", scheme.algorithm())));
        let answer = vbs.signed_with(&create, &good, &scheme).await;
        assert_eq!(answer.status, 200, "{scheme:?}: {}", answer.text);

        let mut list = Call::get(v2("/backups/detail"));
        list.query = vec![("limit".into(), "5".into()), ("name".into(), "a b+c/é".into())];
        let answer = vbs.signed_with(&list, &good, &scheme).await;
        assert_eq!(answer.status, 200, "{scheme:?}: {}", answer.text);

        let answer = vbs.signed_with(&Call::get(policies()), &wrong, &scheme).await;
        assert_refused(&answer, "verify aksk signature fail");
    }
}

#[tokio::test]
async fn a_body_changed_after_signing_is_refused_under_every_scheme() {
    let (config, key) = enforcing();
    let vbs = start(config).await;
    let credentials = credentials(&key);
    for scheme in SCHEMES {
        let signed = Call::post(policies(), &policy_body("before"));
        let host = vbs.host();
        let view = RequestView {
            method: signed.method,
            host: &host,
            path: &signed.path,
            query: &signed.query,
            headers: &signed.headers,
            body: &signed.body,
        };
        let signature = signer::sign_with(&view, &credentials, &scheme, chrono::Utc::now());
        let changed = Call {
            body: policy_body("after!").to_string().into_bytes(),
            ..signed
        };
        let answer = vbs.send(&changed, &signature.headers()).await;
        assert_refused(&answer, "verify aksk signature fail");
    }
}
