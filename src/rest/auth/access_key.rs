//! AK/SK mode: every attempt is signed (SDK-HMAC-SHA256, V11-HMAC-SHA256 or
//! SDK-HMAC-SM3, as configured) over exactly what is sent: host, content type,
//! project, path, query and body. Nothing to renew, so a rejection is final.

use chrono::{DateTime, Utc};
use futures_util::future::{self, BoxFuture};
use http::{HeaderMap, HeaderName};
use reqwest::Url;

use super::{Authorization, Authorizer, Outgoing, Rejection, header_value, secret_value};
use crate::rest::credentials::{AccessKey, Secret};
use crate::rest::error::RestError;
use apig_signer::{self as signer, RequestView};

/// Signs each request with the configured key pair.
#[derive(Debug, Clone)]
pub(crate) struct AccessKeySignature {
    key: AccessKey,
}

impl AccessKeySignature {
    /// Signs with `key` (and sends its security token, when it has one).
    pub(crate) fn new(key: AccessKey) -> AccessKeySignature {
        AccessKeySignature { key }
    }

    /// X-Sdk-Date, Authorization (and X-Security-Token, and the unsigned-payload
    /// header for a body that is not JSON) for `request` at `time`. Signed: host
    /// (from the URL, as the HTTP client sends it), the headers already set,
    /// x-sdk-date, and the exact path, query and body bytes.
    fn sign(&self, request: &Outgoing<'_>, time: DateTime<Utc>) -> Result<Authorization, RestError> {
        let operation = request.operation;
        let host = authority(request.url);
        let signed = request
            .headers
            .iter()
            .map(|(name, value)| {
                let value = value.to_str().map_err(|_| RestError::Build {
                    operation,
                    detail: format!("header {name} is not visible ASCII and cannot be signed"),
                })?;
                Ok((name.as_str().to_string(), value.to_string()))
            })
            .collect::<Result<Vec<_>, RestError>>()?;
        let view = RequestView {
            method: request.method.as_str(),
            host: &host,
            path: request.url.path(),
            query: request.query,
            headers: &signed,
            body: request.body.unwrap_or_default(),
        };
        let credentials = signer::Credentials {
            access_key: self.key.access_key.expose(),
            secret_key: self.key.secret_key.expose(),
            security_token: self.key.security_token.as_ref().map(Secret::expose),
        };
        let signature = signer::sign_with(&view, &credentials, &self.key.signing.scheme(), time);
        let mut headers = HeaderMap::new();
        for (name, value) in signature.headers() {
            let value = match name {
                // Credentials: the HTTP stack never prints them.
                "authorization" | "x-security-token" => secret_value(operation, &Secret::new(value))?,
                _ => header_value(operation, value)?,
            };
            headers.insert(HeaderName::from_static(name), value);
        }
        Ok(Authorization { headers, token: None })
    }
}

impl Authorizer for AccessKeySignature {
    fn authorize<'a>(&'a self, request: &'a Outgoing<'a>) -> BoxFuture<'a, Result<Authorization, RestError>> {
        Box::pin(future::ready(self.sign(request, Utc::now())))
    }

    fn on_rejection<'a>(&'a self, _request: &'a Outgoing<'a>, _sent: &'a Authorization) -> BoxFuture<'a, Rejection> {
        Box::pin(future::ready(Rejection::GiveUp))
    }

    fn secrets(&self) -> Vec<&str> {
        let mut secrets = vec![self.key.access_key.expose(), self.key.secret_key.expose()];
        secrets.extend(self.key.security_token.as_ref().map(Secret::expose));
        secrets
    }

    fn describe(&self) -> String {
        format!("AK/SK signatures ({})", self.key.signing.scheme().algorithm())
    }
}

/// The URL's authority as the HTTP client sends it in Host: the port only
/// when the URL names one that is not the scheme's default.
fn authority(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (host, None) => host.unwrap_or_default().to_string(),
        (None, Some(_)) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use http::{HeaderValue, Method, header};

    use super::*;
    use crate::rest::Operation;
    use crate::rest::credentials::Signing;

    const AK: &str = "VBSGWTESTAKID0000001";
    const SK: &str = "vbsGwTestSecretKey0000000000000000000001";
    const SECURITY_TOKEN: &str = "temporary-token-value";

    fn key(security_token: Option<&str>) -> AccessKeySignature {
        AccessKeySignature::new(AccessKey {
            access_key: Secret::new(AK),
            secret_key: Secret::new(SK),
            security_token: security_token.map(Secret::new),
            signing: Signing::default(),
        })
    }

    fn time() -> DateTime<Utc> {
        "2026-11-23T10:00:00Z".parse().unwrap()
    }

    /// The signature the signer gives for what this request sends, written out by hand.
    fn expected(security_token: Option<&str>, body: &[u8]) -> signer::Signature {
        let headers = [
            ("content-type".to_string(), "application/json".to_string()),
            ("x-project-id".to_string(), "0123".to_string()),
        ];
        let query = [("limit".to_string(), "10".to_string())];
        let view = RequestView {
            method: "POST",
            host: "vbs.example.com:8443",
            path: "/v2/0123/cloudbackups",
            query: &query,
            headers: &headers,
            body,
        };
        let credentials = signer::Credentials {
            access_key: AK,
            secret_key: SK,
            security_token,
        };
        signer::sign(&view, &credentials, time())
    }

    fn sent_headers() -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert("x-project-id", HeaderValue::from_static("0123"));
        headers
    }

    fn post<'a>(url: &'a Url, headers: &'a HeaderMap, query: &'a [(String, String)], body: &'a [u8]) -> Outgoing<'a> {
        Outgoing {
            operation: Operation::CreateBackup,
            method: &Method::POST,
            url,
            query,
            headers,
            body: Some(body),
            caller_token: None,
        }
    }

    #[test]
    fn signs_host_headers_path_query_and_body_as_sent() {
        let url: Url = "https://vbs.example.com:8443/v2/0123/cloudbackups?limit=10"
            .parse()
            .unwrap();
        let headers = sent_headers();
        let query = [("limit".to_string(), "10".to_string())];
        let body = br#"{"backup":{"volume_id":"v"}}"#;
        let sent = key(None).sign(&post(&url, &headers, &query, body), time()).unwrap();
        let want = expected(None, body);
        assert_eq!(sent.headers["x-sdk-date"], want.x_sdk_date.as_str());
        assert_eq!(sent.headers[header::AUTHORIZATION], want.authorization.as_str());
        assert!(sent.headers[header::AUTHORIZATION].is_sensitive());
        assert!(sent.headers.get("x-security-token").is_none());
        assert_eq!(sent.headers.len(), 2);
        assert!(sent.token.is_none());
        let other_body = key(None).sign(&post(&url, &headers, &query, b"{}"), time()).unwrap();
        assert_ne!(other_body.headers[header::AUTHORIZATION], want.authorization.as_str());
    }

    #[test]
    fn temporary_keys_send_and_sign_their_security_token() {
        let url: Url = "https://vbs.example.com:8443/v2/0123/cloudbackups?limit=10"
            .parse()
            .unwrap();
        let headers = sent_headers();
        let query = [("limit".to_string(), "10".to_string())];
        let sent = key(Some(SECURITY_TOKEN))
            .sign(&post(&url, &headers, &query, b"{}"), time())
            .unwrap();
        let want = expected(Some(SECURITY_TOKEN), b"{}");
        assert_eq!(sent.headers[header::AUTHORIZATION], want.authorization.as_str());
        assert!(want.signed_headers.contains("x-security-token"));
        assert_eq!(sent.headers["x-security-token"], SECURITY_TOKEN);
        assert!(sent.headers["x-security-token"].is_sensitive());
    }

    #[tokio::test]
    async fn gives_up_on_a_rejection_and_scrubs_every_key_part() {
        let authorizer = key(Some(SECURITY_TOKEN));
        let url: Url = "http://vbs.example.com/v2/0123/backups".parse().unwrap();
        let headers = sent_headers();
        let request = post(&url, &headers, &[], b"{}");
        let sent = authorizer.authorize(&request).await.unwrap();
        assert!(sent.headers.contains_key(header::AUTHORIZATION));
        assert_eq!(authorizer.on_rejection(&request, &sent).await, Rejection::GiveUp);
        assert_eq!(authorizer.secrets(), [AK, SK, SECURITY_TOKEN]);
        let shown = format!("{authorizer:?} {sent:?}");
        for secret in [AK, SK, SECURITY_TOKEN] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }

    #[test]
    fn signs_with_the_configured_scheme_and_marks_non_json_bodies_unsigned() {
        let url: Url = "https://vbs.example.com:8443/v2/0123/cloudbackups".parse().unwrap();
        let mut headers = sent_headers();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        );
        let request = post(&url, &headers, &[], b"raw");
        for (signing, name, content_header) in [
            (Signing::SdkHmacSha256, "SDK-HMAC-SHA256 ", "x-sdk-content-sha256"),
            (
                Signing::V11HmacSha256 {
                    region: "eu-de".into(),
                    service: "vbs".into(),
                },
                "V11-HMAC-SHA256 Credential=",
                "x-sdk-content-sha256",
            ),
            (Signing::SdkHmacSm3, "SDK-HMAC-SM3 ", "x-sdk-content-sm3"),
        ] {
            let authorizer = AccessKeySignature::new(AccessKey {
                signing: signing.clone(),
                ..key(None).key
            });
            let sent = authorizer.sign(&request, time()).unwrap();
            let authorization = sent.headers[header::AUTHORIZATION].to_str().unwrap();
            assert!(authorization.starts_with(name), "{authorization}");
            assert!(authorization.contains(content_header), "{authorization}");
            assert_eq!(sent.headers[content_header], "UNSIGNED-PAYLOAD", "{signing:?}");
        }
        let json = key(None)
            .sign(&post(&url, &sent_headers(), &[], b"{}"), time())
            .unwrap();
        assert!(json.headers.get("x-sdk-content-sha256").is_none());
    }

    #[test]
    fn the_host_carries_only_a_port_the_url_names() {
        let host = |url: &str| authority(&url.parse().unwrap());
        assert_eq!(host("https://vbs.example.com/v2"), "vbs.example.com");
        assert_eq!(host("https://vbs.example.com:443/v2"), "vbs.example.com");
        assert_eq!(host("http://127.0.0.1:8080/"), "127.0.0.1:8080");
    }
}
