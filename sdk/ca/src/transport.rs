//! One HTTPS exchange per request (HTTP/1.1 over rustls with the aws-lc-rs provider), and the
//! Fabric CA response envelope.
//!
//! A CA is asked a handful of times per identity, so connections are not pooled: each
//! request opens a TCP connection, does the TLS handshake against the configured roots only
//! (never the system's), sends one request and reads one answer, all within the timeout.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE, HOST, HeaderValue};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::ClientConfig;
use tokio_rustls::rustls::pki_types::ServerName;

use crate::error::{Error, Operation, ServerError};

/// Largest response body read (a CRL of many revoked certificates stays far below).
const MAX_RESPONSE_BYTES: usize = 4 << 20;

/// The API prefix of every Fabric CA endpoint.
pub(crate) const API_PREFIX: &str = "/api/v1/";

/// Where and how to reach one CA server.
#[derive(Clone)]
pub(crate) struct Endpoint {
    /// Host to connect to (IPv6 without brackets).
    pub host: String,
    pub port: u16,
    /// The `Host` header (`host:port`, IPv6 in brackets).
    pub authority: String,
    pub server_name: ServerName<'static>,
    pub tls: Arc<ClientConfig>,
    pub timeout: Duration,
}

/// How a request authenticates.
pub(crate) enum Auth {
    None,
    /// `Authorization: Basic …` (enrol).
    Basic(zeroize::Zeroizing<String>),
    /// `Authorization: <token>` (everything made with a certificate).
    Token(String),
}

/// A raw answer.
pub(crate) struct Response {
    pub status: u16,
    pub body: Bytes,
}

impl Endpoint {
    /// POSTs `body` (JSON) to `path` (which must start with [`API_PREFIX`]).
    pub(crate) async fn post(
        &self,
        operation: Operation,
        path: &str,
        body: Vec<u8>,
        auth: Auth,
    ) -> Result<Response, Error> {
        tokio::time::timeout(self.timeout, self.exchange(operation, path, body, auth))
            .await
            .map_err(|_| Error::Timeout {
                operation,
                after: self.timeout,
            })?
    }

    async fn exchange(
        &self,
        operation: Operation,
        path: &str,
        body: Vec<u8>,
        auth: Auth,
    ) -> Result<Response, Error> {
        let transport = |source: Box<dyn std::error::Error + Send + Sync>| Error::Transport {
            operation,
            source,
        };
        let tcp = TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|source| Error::Connect {
                operation,
                address: self.authority.clone(),
                source,
            })?;
        // Small request and answer: do not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let tls = TlsConnector::from(Arc::clone(&self.tls))
            .connect(self.server_name.clone(), tcp)
            .await
            .map_err(|source| Error::Tls {
                operation,
                address: self.authority.clone(),
                source,
            })?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
            .await
            .map_err(|e| transport(e.into()))?;
        let driver = tokio::spawn(async move {
            // Its errors surface through `send_request` as well.
            let _ = connection.await;
        });

        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(path)
            .header(HOST, &self.authority)
            .header(CONTENT_TYPE, "application/json");
        match auth {
            Auth::None => {}
            Auth::Basic(value) => {
                let mut value = HeaderValue::from_str(&value).map_err(|e| transport(e.into()))?;
                value.set_sensitive(true);
                request = request.header(AUTHORIZATION, value);
            }
            Auth::Token(token) => {
                let mut value = HeaderValue::from_str(&token).map_err(|e| transport(e.into()))?;
                value.set_sensitive(true);
                request = request.header(AUTHORIZATION, value);
            }
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| transport(e.into()))?;
        let result = async {
            let response = sender
                .send_request(request)
                .await
                .map_err(|e| transport(e.into()))?;
            let status = response.status().as_u16();
            let body = Limited::new(response.into_body(), MAX_RESPONSE_BYTES)
                .collect()
                .await
                .map_err(transport)?
                .to_bytes();
            Ok(Response { status, body })
        }
        .await;
        driver.abort();
        result
    }
}

/// `{"code": 20, "message": "..."}`
#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
}

/// cfssl's `api.Response`, which Fabric CA answers every request with.
#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    success: bool,
    #[serde(default)]
    result: Option<serde_json::Value>,
    #[serde(default)]
    errors: Option<Vec<WireMessage>>,
}

/// Interprets an answer the way `fabric-ca-client` does: any `errors` entry is a refusal
/// (whatever the status), then a failure status, an empty body, or `success: false`; only
/// then is `result` decoded as `T`.
///
/// # Errors
/// [`Error::Server`] or [`Error::MalformedResponse`].
pub(crate) fn parse_envelope<T: DeserializeOwned>(
    operation: Operation,
    status: u16,
    body: &[u8],
) -> Result<T, Error> {
    let malformed = |reason: String| Error::MalformedResponse {
        operation,
        http_status: status,
        reason,
    };
    let refused = |errors: Vec<ServerError>| Error::Server {
        operation,
        http_status: status,
        errors,
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(if status >= 400 {
            refused(Vec::new())
        } else {
            malformed("empty body".into())
        });
    }
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(envelope) => envelope,
        // A failure status with a foreign body (a proxy's HTML page): the status says more.
        Err(_) if status >= 400 => return Err(refused(Vec::new())),
        Err(e) => return Err(malformed(format!("not a Fabric CA response envelope: {e}"))),
    };
    let errors = envelope.errors.unwrap_or_default();
    if !errors.is_empty() {
        return Err(refused(
            errors
                .into_iter()
                .map(|m| ServerError {
                    code: m.code,
                    message: m.message,
                })
                .collect(),
        ));
    }
    if status >= 400 || !envelope.success {
        return Err(refused(Vec::new()));
    }
    serde_json::from_value(envelope.result.unwrap_or(serde_json::Value::Null))
        .map_err(|e| malformed(format!("unexpected result: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Secret {
        secret: String,
    }

    fn parse(status: u16, body: &str) -> Result<Secret, Error> {
        parse_envelope(Operation::Register, status, body.as_bytes())
    }

    #[test]
    fn success_decodes_the_result() {
        let ok = parse(
            201,
            r#"{"result":{"secret":"s3"},"errors":[],"messages":[],"success":true}"#,
        )
        .expect("success");
        assert_eq!(ok.secret, "s3");
    }

    #[test]
    fn errors_become_typed_server_errors_with_codes() {
        let err = parse(
            401,
            r#"{"result":null,"errors":[{"code":20,"message":"Authentication failure"}],"messages":[],"success":false}"#,
        )
        .expect_err("refused");
        match &err {
            Error::Server {
                operation,
                http_status,
                errors,
            } => {
                assert_eq!(*operation, Operation::Register);
                assert_eq!(*http_status, 401);
                assert_eq!(
                    errors,
                    &[ServerError {
                        code: ServerError::AUTHENTICATION_FAILURE,
                        message: "Authentication failure".into()
                    }]
                );
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.has_server_code(20));
        assert_eq!(err.operation(), Some(Operation::Register));
        let text = err.to_string();
        assert!(
            text.contains("register refused by the CA (HTTP 401)"),
            "{text}"
        );
        assert!(text.contains("[code 20] Authentication failure"), "{text}");

        // Several errors keep their order; errors win even with a 2xx status.
        let err = parse(
            200,
            r#"{"success":true,"result":{"secret":"x"},"errors":[{"code":19,"message":"CA 'x' does not exist"},{"code":0,"message":"second"}]}"#,
        )
        .expect_err("errors present");
        assert_eq!(err.server_codes(), vec![19, 0]);
    }

    #[test]
    fn failures_without_details_and_malformed_answers() {
        // success false, no errors
        assert!(matches!(
            parse(200, r#"{"success":false,"result":null,"errors":[]}"#),
            Err(Error::Server { errors, http_status: 200, .. }) if errors.is_empty()
        ));
        // failure status, no body / HTML body
        for body in ["", "<html>bad gateway</html>"] {
            assert!(matches!(
                parse(502, body),
                Err(Error::Server { errors, http_status: 502, .. }) if errors.is_empty()
            ));
        }
        // 2xx but not JSON, empty, or a result of the wrong shape
        for body in [
            "",
            "not json",
            r#"{"success":true,"result":{"nosecret":1}}"#,
            r#"{"success":true}"#,
        ] {
            assert!(
                matches!(parse(201, body), Err(Error::MalformedResponse { .. })),
                "{body}"
            );
        }
        // null errors (Go's nil slice) are fine
        assert!(
            parse(
                201,
                r#"{"success":true,"result":{"secret":"s"},"errors":null}"#
            )
            .is_ok()
        );
    }

    proptest::proptest! {
        /// Whatever a server (or something posing as one) answers, parsing returns.
        #[test]
        fn arbitrary_answers_never_panic(
            status in 0u16..1000,
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..512),
        ) {
            let _ = parse_envelope::<serde_json::Value>(Operation::Enroll, status, &body);
        }

        #[test]
        fn arbitrary_envelopes_are_classified(
            status in 100u16..600,
            success in proptest::bool::ANY,
            codes in proptest::collection::vec(-5i64..100, 0..4),
            message in "\\PC{0,40}",
        ) {
            let errors: Vec<_> = codes
                .iter()
                .map(|c| serde_json::json!({"code": c, "message": message}))
                .collect();
            let body = serde_json::json!({"success": success, "result": {"secret": "s"}, "errors": errors});
            let result =
                parse_envelope::<Secret>(Operation::Register, status, body.to_string().as_bytes());
            if !codes.is_empty() {
                let refused = matches!(&result, Err(Error::Server { errors, .. })
                    if errors.iter().map(|e| e.code).eq(codes.iter().copied()));
                proptest::prop_assert!(refused);
            } else if status >= 400 || !success {
                let refused =
                    matches!(&result, Err(Error::Server { errors, .. }) if errors.is_empty());
                proptest::prop_assert!(refused);
            } else {
                proptest::prop_assert!(result.is_ok());
            }
        }
    }
}
