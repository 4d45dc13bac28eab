//! The proxy client: info, fragment delivery, signed re-encryption requests.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use medfabric_crypto::pre::PublicKey;
use rand_core::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::tls;
use super::{
    FragmentDelivery, ProxyInfo, ReencryptRequest, ReencryptResponse, info_message,
    reencrypt_message,
};
use crate::error::Result;
use crate::identity::{Member, certificate_key, fingerprint_of};
use crate::wire::{b64, unb64};

/// How long one proxy call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// A proxy's address: `https://host:port`, or `http://127.0.0.1:port` on the loopback
/// interface.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProxyEndpoint {
    /// Base URL.
    pub url: String,
}

impl ProxyEndpoint {
    /// An endpoint at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into().trim_end_matches('/').to_owned(),
        }
    }
}

/// A proxy as its verified info describes it.
#[derive(Clone, Debug)]
pub struct VerifiedProxy {
    /// Where it is.
    pub endpoint: ProxyEndpoint,
    /// Its certificate fingerprint.
    pub fingerprint: String,
    /// Its MSP.
    pub msp_id: String,
    /// The key fragments are sealed to.
    pub sealing_key: PublicKey,
}

/// An HTTP client for proxies.
#[derive(Clone, Debug)]
pub struct ProxyClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    /// Whether TLS roots were given (`https://` proxies can be verified).
    tls: bool,
}

impl Default for ProxyClient {
    fn default() -> Self {
        Self::new()
    }
}

/// An error with its sources (the connector's "client error (Connect)" alone does not say
/// that a certificate was refused).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Why one call to one proxy failed (kept as text: the caller aggregates per proxy).
fn failed(endpoint: &ProxyEndpoint, what: impl std::fmt::Display) -> String {
    format!("proxy {}: {what}", endpoint.url)
}

impl ProxyClient {
    /// A client for proxies on the loopback interface (plain HTTP), with a connection pool.
    pub fn new() -> Self {
        // No roots: `call` refuses https:// before any connection, so this config never
        // verifies anything.
        let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(Arc::new(
            tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map(|b| {
            b.with_root_certificates(tokio_rustls::rustls::RootCertStore::empty())
                .with_no_client_auth()
        });
        match config {
            Ok(config) => Self::build(config, false),
            // the provider supports the default versions: unreachable in practice
            Err(e) => unreachable!("aws-lc-rs supports TLS 1.2 and 1.3: {e}"),
        }
    }

    /// A client that reaches proxies over HTTPS, verifying their certificates against
    /// `roots_pem` (the consortium's TLS CA certificates), and loopback proxies over HTTP.
    ///
    /// # Errors
    /// [`crate::Error::Validate`] when the roots are malformed or empty.
    pub fn with_tls_roots(roots_pem: &[String]) -> Result<Self> {
        Ok(Self::build(tls::client_config(roots_pem)?, true))
    }

    fn build(config: tokio_rustls::rustls::ClientConfig, tls: bool) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        connector.set_nodelay(true);
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Self {
            http: Client::builder(TokioExecutor::new()).build(https),
            tls,
        }
    }

    /// Refuses what must not be sent: HTTPS without roots to verify with, plain HTTP beyond
    /// the loopback interface.
    fn check_transport(&self, endpoint: &ProxyEndpoint) -> std::result::Result<(), String> {
        if endpoint.url.starts_with("https://") {
            if self.tls {
                return Ok(());
            }
            return Err(failed(
                endpoint,
                "an https:// proxy, but no proxy TLS roots are configured to verify it with",
            ));
        }
        if endpoint.url.starts_with("http://") && tls::is_loopback_url(&endpoint.url) {
            return Ok(());
        }
        Err(failed(
            endpoint,
            "plain HTTP is only allowed to a proxy on this machine's loopback interface; use https://",
        ))
    }

    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &ProxyEndpoint,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> std::result::Result<T, String> {
        self.check_transport(endpoint)?;
        let uri = format!("{}{path}", endpoint.url);
        let request = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| failed(endpoint, e))?;
        let exchange = async {
            let response = self
                .http
                .request(request)
                .await
                .map_err(|e| failed(endpoint, format!("unreachable ({})", error_chain(&e))))?;
            let status = response.status();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| failed(endpoint, e))?
                .to_bytes();
            Ok::<_, String>((status, body))
        };
        let (status, body) = tokio::time::timeout(CALL_TIMEOUT, exchange)
            .await
            .map_err(|_| failed(endpoint, "timed out"))??;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned());
            return Err(failed(endpoint, format!("{status}: {message}")));
        }
        serde_json::from_slice(&body).map_err(|e| failed(endpoint, format!("bad answer: {e}")))
    }

    fn json<T: Serialize>(value: &T) -> Vec<u8> {
        serde_json::to_vec(value).unwrap_or_default()
    }

    /// Fetches and verifies a proxy's info: the signature by its certificate key, and, when
    /// `roots` is not empty, that one of them issued the certificate.
    ///
    /// # Errors
    /// A message naming the proxy.
    pub async fn info(
        &self,
        endpoint: &ProxyEndpoint,
        roots: &[String],
    ) -> std::result::Result<VerifiedProxy, String> {
        let info: ProxyInfo = self
            .call(endpoint, http::Method::GET, "/v1/info", None)
            .await?;
        let (identity, key) = certificate_key(&info.msp_id, &info.certificate_pem, roots)
            .map_err(|e| failed(endpoint, e))?;
        let fingerprint = fingerprint_of(&identity);
        if fingerprint != info.fingerprint {
            return Err(failed(
                endpoint,
                "fingerprint does not match its certificate",
            ));
        }
        let sealing = unb64(&info.sealing_key, "sealing key").map_err(|e| failed(endpoint, e))?;
        let signature = unb64(&info.signature, "signature").map_err(|e| failed(endpoint, e))?;
        key.verify(&info_message(&fingerprint, &sealing), &signature)
            .map_err(|_| failed(endpoint, "info signature does not verify"))?;
        let sealing_key = PublicKey::from_compressed_bytes(&sealing)
            .map_err(|_| failed(endpoint, "bad sealing key"))?;
        Ok(VerifiedProxy {
            endpoint: endpoint.clone(),
            fingerprint,
            msp_id: info.msp_id,
            sealing_key,
        })
    }

    /// Delivers a sealed fragment.
    ///
    /// # Errors
    /// A message naming the proxy.
    pub async fn deliver(
        &self,
        endpoint: &ProxyEndpoint,
        delivery: &FragmentDelivery,
    ) -> std::result::Result<(), String> {
        let _: serde_json::Value = self
            .call(
                endpoint,
                http::Method::POST,
                "/v1/fragments",
                Some(Self::json(delivery)),
            )
            .await?;
        Ok(())
    }

    /// Asks `proxy` to re-encrypt the capsules of `request_id` for `grantee`, with a request
    /// signed by the grantee's certificate key.
    ///
    /// # Errors
    /// A message naming the proxy.
    pub async fn reencrypt(
        &self,
        proxy: &VerifiedProxy,
        grantee: &Member,
        request_id: &str,
    ) -> std::result::Result<ReencryptResponse, String> {
        let mut nonce = [0u8; 16];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let nonce = hex::encode(nonce);
        let timestamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0));
        let signature = grantee
            .sign(&reencrypt_message(
                &proxy.fingerprint,
                request_id,
                timestamp,
                &nonce,
            ))
            .map_err(|e| failed(&proxy.endpoint, e))?;
        let request = ReencryptRequest {
            request_id: request_id.to_owned(),
            msp_id: grantee.msp_id().to_owned(),
            certificate_pem: grantee.certificate_pem().to_owned(),
            timestamp,
            nonce,
            signature: b64(&signature),
        };
        self.call(
            &proxy.endpoint,
            http::Method::POST,
            "/v1/reencrypt",
            Some(Self::json(&request)),
        )
        .await
    }
}

/// Fetches and verifies the info of every endpoint; failures are returned per endpoint.
pub(crate) async fn discover(
    client: &ProxyClient,
    endpoints: &[ProxyEndpoint],
    roots: &[String],
) -> (Vec<VerifiedProxy>, Vec<String>) {
    let mut ok = Vec::new();
    let mut failures = Vec::new();
    let results =
        futures_util::future::join_all(endpoints.iter().map(|e| client.info(e, roots))).await;
    for r in results {
        match r {
            Ok(p) => ok.push(p),
            Err(e) => failures.push(e),
        }
    }
    (ok, failures)
}
