//! The front door with mutual TLS hands the client's certificate to the
//! services: `tonic::Request::peer_certs()` sees it, as caller identity needs.

#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
use tower::util::MapRequestLayer;

use super::Listener;
use super::{FrontDoorConfig, TlsFiles};

fn ca() -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap()
}

fn leaf(ca: &CertifiedIssuer<'static, KeyPair>, dns: &str) -> (rcgen::Certificate, KeyPair) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![dns.to_string()])
        .unwrap()
        .signed_by(&key, ca)
        .unwrap();
    (cert, key)
}

#[tokio::test]
async fn services_see_the_client_certificate() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = std::env::temp_dir().join(format!("vbs-gateway-peer-certs-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (server_ca, client_ca) = (ca(), ca());
    let (server_cert, server_key) = leaf(&server_ca, "localhost");
    let files = TlsFiles {
        cert: dir.join("server.pem"),
        key: dir.join("server.key"),
        client_ca: Some(dir.join("clients.pem")),
    };
    std::fs::write(&files.cert, server_cert.pem()).unwrap();
    std::fs::write(&files.key, server_key.serialize_pem()).unwrap();
    std::fs::write(dir.join("clients.pem"), client_ca.pem()).unwrap();
    let config = FrontDoorConfig {
        tls: Some(files),
        ..FrontDoorConfig::default()
    };

    let seen: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let record = {
        let seen = seen.clone();
        move |request: http::Request<tonic::body::Body>| {
            let (parts, body) = request.into_parts();
            let view = tonic::Request::from_parts(tonic::metadata::MetadataMap::new(), parts.extensions.clone(), ());
            if let Some(certs) = view.peer_certs() {
                seen.lock().unwrap().extend(certs.iter().map(|c| c.to_vec()));
            }
            http::Request::from_parts(parts, body)
        }
    };
    let door = Listener::new(&config, None).unwrap();
    let (_, health) = tonic_health::server::health_reporter();
    let router = door.server().layer(MapRequestLayer::new(record)).add_service(health);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(door.serve(router, listener, async {
        let _ = stopped.await;
    }));

    let (client_cert, client_key) = leaf(&client_ca, "billing.internal");
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(server_ca.pem()))
        .domain_name("localhost")
        .identity(Identity::from_pem(client_cert.pem(), client_key.serialize_pem()));
    let channel = Channel::from_shared(format!("https://{address}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .unwrap();
    HealthClient::new(channel)
        .check(HealthCheckRequest::default())
        .await
        .unwrap();

    assert_eq!(*seen.lock().unwrap(), vec![client_cert.der().to_vec()]);
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}
