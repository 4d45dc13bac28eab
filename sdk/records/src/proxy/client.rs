//! The proxy client: info, fragment delivery, signed re-encryption requests.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use medfabric_crypto::pre::PublicKey;
use rand_core::RngCore;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{
    FragmentDelivery, ProxyInfo, ReencryptRequest, ReencryptResponse, info_message,
    reencrypt_message,
};
use crate::identity::{Member, certificate_key, fingerprint_of};
use crate::wire::{b64, unb64};

/// How long one proxy call may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(15);

/// A proxy's address (`http://host:port`).
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
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Default for ProxyClient {
    fn default() -> Self {
        Self::new()
    }
}

/// Why one call to one proxy failed (kept as text: the caller aggregates per proxy).
fn failed(endpoint: &ProxyEndpoint, what: impl std::fmt::Display) -> String {
    format!("proxy {}: {what}", endpoint.url)
}

impl ProxyClient {
    /// A client with a connection pool.
    pub fn new() -> Self {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(Duration::from_secs(3)));
        connector.set_nodelay(true);
        Self {
            http: Client::builder(TokioExecutor::new()).build(connector),
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &ProxyEndpoint,
        method: http::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> std::result::Result<T, String> {
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
                .map_err(|e| failed(endpoint, format!("unreachable ({e})")))?;
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
