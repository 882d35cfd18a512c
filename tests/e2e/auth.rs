//! Credentials end to end, against a simulator that checks signatures and
//! tokens as the cloud does: wrong keys, clock skew, token expiry and renewal,
//! static tokens, temporary credentials, and per-call pass-through.

use std::time::Duration;

use tonic::{Code, Request};
use tonic_types::StatusExt;
use vbs_gateway::config::Config;
use vbs_gateway::proto::pb;
use vbs_gateway::rest::credentials::{AccessKey, Credentials, Secret, Signing};
use vbs_simulator::{self as simulator, SimulatorConfig};

use crate::harness::{
    ACCESS_KEY, AuthMode, DISK_10GB, IAM_PASSWORD, SECRET_KEY, World, error_metadata, gateway_credentials,
};

fn list() -> pb::ListBackupsRequest {
    pb::ListBackupsRequest::default()
}

async fn iam_world(sim_config: SimulatorConfig, adjust: impl FnOnce(&mut Config)) -> World {
    World::start_with(sim_config, |config| {
        config.credentials = gateway_credentials(AuthMode::Iam, config.endpoint.as_ref().unwrap().as_str());
        adjust(config);
    })
    .await
}

fn header<'a>(request: &'a simulator::RecordedRequest, name: &str) -> Option<&'a str> {
    request.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

#[tokio::test]
async fn requests_are_signed_with_the_gateways_key() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.credentials = gateway_credentials(AuthMode::AkSk, "http://unused");
    })
    .await;
    world.backups.clone().list_backups(list()).await.expect("signed call");
    let sent = &world.upstream_requests()[0];
    let authorization = header(sent, "authorization").expect("Authorization");
    assert!(authorization.starts_with(&format!("SDK-HMAC-SHA256 Access={ACCESS_KEY}, SignedHeaders=")));
    assert!(
        authorization.contains("content-type;host;x-project-id;x-sdk-date"),
        "{authorization}"
    );
    assert!(header(sent, "x-sdk-date").is_some());
    assert!(header(sent, "x-auth-token").is_none());
}

#[tokio::test]
async fn a_wrong_secret_key_is_unauthenticated_with_details() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.credentials = Credentials::AccessKey(AccessKey {
            access_key: Secret::new(ACCESS_KEY),
            secret_key: Secret::new("not-the-secret-key"),
            security_token: None,
            signing: Signing::default(),
        });
    })
    .await;
    let status = world
        .backups
        .clone()
        .list_backups(list())
        .await
        .expect_err("bad signature");
    assert_eq!(status.code(), Code::Unauthenticated);
    let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
    assert_eq!(info.reason, "UPSTREAM_UNAUTHENTICATED");
    assert_eq!(info.metadata.get("httpStatus").map(String::as_str), Some("401"));
    assert_eq!(info.metadata.get("vbsCode").map(String::as_str), Some("APIGW.0301"));
    assert!(!status.message().contains(SECRET_KEY) && !status.message().contains(ACCESS_KEY));
    assert_eq!(
        world.upstream_requests().len(),
        1,
        "a rejected signature is not retried"
    );
}

#[tokio::test]
async fn a_clock_skew_beyond_fifteen_minutes_is_rejected() {
    for (skew_minutes, accepted) in [(16, false), (-16, false), (14, true), (-14, true)] {
        let mut sim_config = SimulatorConfig::for_testing();
        sim_config.auth.clock_offset_secs = skew_minutes * 60;
        let world = World::start_with(sim_config, |config| {
            config.credentials = gateway_credentials(AuthMode::AkSk, "http://unused");
        })
        .await;
        let result = world.backups.clone().list_backups(list()).await;
        match result {
            Ok(_) => assert!(accepted, "{skew_minutes} min of skew must be rejected"),
            Err(status) => {
                assert!(!accepted, "{skew_minutes} min of skew must pass: {status:?}");
                assert_eq!(status.code(), Code::Unauthenticated);
                let message = error_metadata(&status).get("vbsMessage").cloned().unwrap_or_default();
                assert!(message.contains("signature expired"), "{message}");
            }
        }
    }
}

#[tokio::test]
async fn temporary_credentials_send_and_sign_their_security_token() {
    let mut sim_config = SimulatorConfig::for_testing();
    sim_config.auth.access_keys.push(simulator::AccessKey {
        access_key: "TEMPORARYAKID0000001".into(),
        secret_key: Secret::new("temporarySecretKey000000000000000000001"),
        security_token: Some(Secret::new("temporary-security-token")),
    });
    let world = World::start_with(sim_config, |config| {
        config.credentials = Credentials::AccessKey(AccessKey {
            access_key: Secret::new("TEMPORARYAKID0000001"),
            secret_key: Secret::new("temporarySecretKey000000000000000000001"),
            security_token: Some(Secret::new("temporary-security-token")),
            signing: Signing::default(),
        });
    })
    .await;
    world
        .backups
        .clone()
        .list_backups(list())
        .await
        .expect("temporary credentials");
    let sent = &world.upstream_requests()[0];
    assert_eq!(header(sent, "x-security-token"), Some("temporary-security-token"));
    assert!(header(sent, "authorization").unwrap().contains("x-security-token"));
}

#[tokio::test]
async fn a_static_token_is_sent_as_x_auth_token() {
    let mut sim_config = SimulatorConfig::for_testing();
    sim_config.auth.static_tokens.push(Secret::new("static-token-value"));
    let world = World::start_with(sim_config, |config| {
        config.credentials = Credentials::Token(Secret::new("static-token-value"));
    })
    .await;
    world.backups.clone().list_backups(list()).await.expect("static token");
    let sent = &world.upstream_requests()[0];
    assert_eq!(header(sent, "x-auth-token"), Some("static-token-value"));
    assert!(header(sent, "authorization").is_none());
}

#[tokio::test]
async fn iam_tokens_are_issued_once_and_shared_by_concurrent_calls() {
    let world = iam_world(SimulatorConfig::for_testing(), |_| {}).await;
    let calls = (0..20).map(|_| {
        let mut backups = world.backups.clone();
        async move { backups.list_backups(list()).await }
    });
    for result in futures_util::future::join_all(calls).await {
        result.expect("every call succeeds");
    }
    assert_eq!(world.sim.issued_token_count(), 1);
    let sent = &world.upstream_requests()[0];
    assert!(header(sent, "x-auth-token").is_some());
    let iam_calls: Vec<_> = world
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v3/auth/tokens")
        .collect();
    assert_eq!(iam_calls.len(), 1);
    assert!(!iam_calls[0].body.contains(IAM_PASSWORD));
}

#[tokio::test]
async fn token_expiry_mid_run_is_survived_by_one_renewal() {
    let mut sim_config = SimulatorConfig::for_testing();
    sim_config.auth.token_ttl = Duration::from_secs(24 * 3600);
    let world = iam_world(sim_config, |_| {}).await;
    let backup_id = world.make_backup(DISK_10GB, "before-expiry").await;
    assert_eq!(world.sim.issued_token_count(), 1);

    // A day of simulated time: the simulator now rejects the token.
    world.advance(24 * 3600 + 1);
    let calls = (0..10).map(|_| {
        let mut backups = world.backups.clone();
        let request = pb::GetBackupRequest {
            backup_id: backup_id.clone(),
            ..Default::default()
        };
        async move { backups.get_backup(request).await }
    });
    for result in futures_util::future::join_all(calls).await {
        result.expect("no call fails across the expiry");
    }
    assert_eq!(world.sim.issued_token_count(), 2, "one renewal for all callers");

    world.sim.revoke_tokens();
    let created = world
        .backups
        .clone()
        .create_backup(pb::CreateBackupRequest {
            volume_id: DISK_10GB.into(),
            name: "after-revocation".into(),
            ..Default::default()
        })
        .await;
    created.expect("a write survives a revoked token too");
    assert_eq!(world.sim.issued_token_count(), 3);
    let creates = world
        .upstream_requests()
        .into_iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(creates, 3, "the first backup, the rejected attempt and its resend");
}

#[tokio::test]
async fn tokens_are_renewed_before_they_expire() {
    let mut sim_config = SimulatorConfig::for_testing();
    // One second of life by IAM's clock: the gateway renews after 0.9 s. The
    // simulator's clock stands still, so it never rejects the old token: a
    // second token can only come from renewal ahead of expiry.
    sim_config.auth.token_ttl = Duration::from_secs(1);
    let world = iam_world(sim_config, |_| {}).await;
    let mut backups = world.backups.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while world.sim.issued_token_count() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "the token was never renewed");
        backups.list_backups(list()).await.expect("calls keep working");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_rejected_iam_user_is_unauthenticated() {
    let world = iam_world(SimulatorConfig::for_testing(), |config| {
        if let Credentials::Iam(user) = &mut config.credentials {
            user.password = Secret::new("wrong password");
        }
    })
    .await;
    let status = world
        .backups
        .clone()
        .list_backups(list())
        .await
        .expect_err("wrong password");
    assert_eq!(status.code(), Code::Unauthenticated);
    let info = status.get_error_details().error_info().cloned().unwrap();
    assert_eq!(info.reason, "CREDENTIALS_REJECTED");
    assert!(!status.message().contains("wrong password"));
    assert!(world.upstream_requests().is_empty(), "no VBS call without a token");
}

#[tokio::test]
async fn an_unreachable_iam_is_unavailable() {
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let iam = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let world = iam_world(SimulatorConfig::for_testing(), |config| {
        if let Credentials::Iam(user) = &mut config.credentials {
            user.endpoint = iam.parse().unwrap();
        }
    })
    .await;
    let status = world.backups.clone().list_backups(list()).await.expect_err("IAM down");
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(
        status.get_error_details().error_info().unwrap().reason,
        "CREDENTIALS_UNAVAILABLE"
    );
}

fn with_caller_token<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("x-auth-token", token.parse().unwrap());
    request
}

#[tokio::test]
async fn pass_through_sends_the_callers_own_token() {
    let mut sim_config = SimulatorConfig::for_testing();
    sim_config.auth.static_tokens.push(Secret::new("caller-own-token"));
    let world = World::start_with(sim_config, |config| {
        config.credentials = gateway_credentials(AuthMode::AkSk, "http://unused");
        config.pass_through_token = true;
    })
    .await;
    let mut backups = world.backups.clone();
    backups
        .list_backups(with_caller_token(list(), "caller-own-token"))
        .await
        .expect("the caller's token works");
    backups
        .list_backups(list())
        .await
        .expect("without one, the gateway signs");
    let status = backups
        .list_backups(with_caller_token(list(), "someone-elses-token"))
        .await
        .expect_err("a token the cloud does not know");
    assert_eq!(status.code(), Code::Unauthenticated);

    let sent = world.upstream_requests();
    assert_eq!(header(&sent[0], "x-auth-token"), Some("caller-own-token"));
    assert!(
        header(&sent[0], "authorization").is_none(),
        "no signature beside the caller's token"
    );
    assert!(header(&sent[1], "authorization").is_some());
    assert!(header(&sent[1], "x-auth-token").is_none());
    assert_eq!(sent.len(), 3, "a rejected caller token is not retried");
}

#[tokio::test]
async fn without_pass_through_a_callers_token_is_ignored() {
    let world = World::start_with(SimulatorConfig::for_testing(), |config| {
        config.credentials = gateway_credentials(AuthMode::AkSk, "http://unused");
    })
    .await;
    world
        .backups
        .clone()
        .list_backups(with_caller_token(list(), "caller-own-token"))
        .await
        .expect("signed by the gateway");
    let sent = &world.upstream_requests()[0];
    assert!(header(sent, "x-auth-token").is_none());
    assert!(header(sent, "authorization").is_some());
}

/// The gateway's AK/SK credentials, signing with `signing`.
fn signing_with(signing: Signing) -> Credentials {
    Credentials::AccessKey(AccessKey {
        access_key: Secret::new(ACCESS_KEY),
        secret_key: Secret::new(SECRET_KEY),
        security_token: None,
        signing,
    })
}

fn every_signing_scheme() -> [(Signing, &'static str); 3] {
    [
        (Signing::SdkHmacSha256, "SDK-HMAC-SHA256 Access="),
        (
            Signing::V11HmacSha256 {
                region: "eu-de".into(),
                service: "vbs".into(),
            },
            "V11-HMAC-SHA256 Credential=",
        ),
        (Signing::SdkHmacSm3, "SDK-HMAC-SM3 Access="),
    ]
}

#[tokio::test]
async fn every_sdk_signing_scheme_reaches_vbs_reads_and_writes_alike() {
    for (signing, prefix) in every_signing_scheme() {
        let world = World::start_with(SimulatorConfig::for_testing(), |config| {
            config.credentials = signing_with(signing.clone());
        })
        .await;
        world.backups.clone().list_backups(list()).await.expect("signed read");
        let backup_id = world.make_backup(DISK_10GB, "signed-write").await;
        assert!(!backup_id.is_empty());
        let sent = world.upstream_requests();
        assert!(sent.len() >= 2, "{signing:?}: {} requests", sent.len());
        for request in &sent {
            let authorization = header(request, "authorization").expect("Authorization");
            let want = format!("{prefix}{ACCESS_KEY}");
            assert!(authorization.starts_with(&want), "{signing:?}: {authorization}");
            assert!(
                header(request, "x-sdk-content-sha256").is_none(),
                "JSON bodies are hashed"
            );
            assert!(header(request, "x-sdk-content-sm3").is_none(), "JSON bodies are hashed");
        }
        if let Signing::V11HmacSha256 { .. } = signing {
            // Credential=<AK>/<YYYYMMDD>/eu-de/vbs: the scope the key was derived for.
            let authorization = header(&sent[0], "authorization").unwrap_or_default();
            let scope = authorization
                .split(", ")
                .next()
                .and_then(|credential| credential.split_once('/'))
                .map(|(_, scope)| scope);
            let date = scope.and_then(|scope| scope.strip_suffix("/eu-de/vbs"));
            assert!(date.is_some_and(|d| d.len() == 8), "{authorization}");
        }
    }
}

#[tokio::test]
async fn a_wrong_secret_key_is_refused_under_every_scheme() {
    for (signing, _) in every_signing_scheme() {
        let world = World::start_with(SimulatorConfig::for_testing(), |config| {
            config.credentials = Credentials::AccessKey(AccessKey {
                secret_key: Secret::new("not-the-secret-key"),
                ..match signing_with(signing.clone()) {
                    Credentials::AccessKey(key) => key,
                    _ => unreachable!("AK/SK"),
                }
            });
        })
        .await;
        let status = world
            .backups
            .clone()
            .list_backups(list())
            .await
            .expect_err("bad signature");
        assert_eq!(status.code(), Code::Unauthenticated, "{signing:?}");
        assert_eq!(
            error_metadata(&status).get("vbsCode").map(String::as_str),
            Some("APIGW.0301"),
            "{signing:?}"
        );
    }
}
