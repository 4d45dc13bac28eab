//! Building the gRPC channel to a peer's gateway: TLS by default, mutual TLS and a server
//! name override when asked.
//!
//! The [`Gateway`](crate::Gateway) takes any [`tonic::transport::Channel`]; this builder is a
//! convenience for the usual Fabric cases (a TLS CA certificate from the organisation's
//! `tlscacerts/`, optionally a client TLS key pair when the peer requires client auth).

use std::time::Duration;

use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use zeroize::Zeroizing;

use crate::error::Error;

/// Builds a [`Channel`] to a Fabric peer.
///
/// ```no_run
/// # async fn example() -> Result<(), Box<dyn std::error::Error>> {
/// use medfabric_gateway::ChannelBuilder;
/// let ca = std::fs::read("peer0/tls/ca.crt")?;
/// let channel = ChannelBuilder::new("127.0.0.1:7051", ca)
///     .server_name_override("peer0.hospital1.medfabric.local")
///     .connect()
///     .await?;
/// # let _ = channel; Ok(()) }
/// ```
pub struct ChannelBuilder {
    address: String,
    tls: Option<TlsMaterial>,
    connect_timeout: Duration,
    keep_alive: Option<Duration>,
}

struct TlsMaterial {
    ca_pem: Vec<u8>,
    client: Option<(Vec<u8>, Zeroizing<Vec<u8>>)>,
    server_name: Option<String>,
}

impl std::fmt::Debug for ChannelBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelBuilder")
            .field("address", &self.address)
            .field("tls", &self.tls.is_some())
            .field(
                "mutual_tls",
                &self.tls.as_ref().is_some_and(|t| t.client.is_some()),
            )
            .field(
                "server_name",
                &self.tls.as_ref().and_then(|t| t.server_name.as_deref()),
            )
            .finish_non_exhaustive()
    }
}

impl ChannelBuilder {
    /// A TLS channel to `address` (`host:port`, or a full `https://` URL) that trusts the
    /// given PEM CA certificate(s).
    #[must_use]
    pub fn new(address: impl Into<String>, tls_ca_pem: impl Into<Vec<u8>>) -> Self {
        Self {
            address: address.into(),
            tls: Some(TlsMaterial {
                ca_pem: tls_ca_pem.into(),
                client: None,
                server_name: None,
            }),
            connect_timeout: Duration::from_secs(10),
            keep_alive: Some(Duration::from_secs(60)),
        }
    }

    /// A channel without TLS. Fabric peers run TLS in any real deployment; this exists for
    /// local experiments only and is named so that it stands out in review.
    #[must_use]
    pub fn insecure_plaintext(address: impl Into<String>) -> Self {
        Self {
            address: address.into(),
            tls: None,
            connect_timeout: Duration::from_secs(10),
            keep_alive: Some(Duration::from_secs(60)),
        }
    }

    /// Presents a client certificate (mutual TLS), for peers with `clientAuthRequired`.
    /// Ignored on a plaintext channel.
    #[must_use]
    pub fn client_identity(
        mut self,
        certificate_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        if let Some(tls) = &mut self.tls {
            tls.client = Some((certificate_pem.into(), Zeroizing::new(key_pem.into())));
        }
        self
    }

    /// Verifies the server certificate against this name instead of the address's host
    /// (when dialling an IP or a tunnel whose name is not in the certificate).
    #[must_use]
    pub fn server_name_override(mut self, name: impl Into<String>) -> Self {
        if let Some(tls) = &mut self.tls {
            tls.server_name = Some(name.into());
        }
        self
    }

    /// How long dialling may take (default 10 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// HTTP/2 keep-alive ping interval (default 60 s; `None` disables pings).
    #[must_use]
    pub fn keep_alive(mut self, interval: Option<Duration>) -> Self {
        self.keep_alive = interval;
        self
    }

    /// SHA-256 of the client TLS certificate (DER), which block event requests carry when
    /// the peer requires mutual TLS (see
    /// [`BlockEventsBuilder::tls_certificate_hash`](crate::BlockEventsBuilder::tls_certificate_hash)).
    ///
    /// # Errors
    /// [`Error::Connect`] if the client certificate is not PEM.
    pub fn client_certificate_hash(&self) -> Result<Option<[u8; 32]>, Error> {
        let Some((cert_pem, _)) = self.tls.as_ref().and_then(|t| t.client.as_ref()) else {
            return Ok(None);
        };
        let block = x509_parser::pem::Pem::iter_from_buffer(cert_pem)
            .find_map(|b| b.ok().filter(|b| b.label == "CERTIFICATE"))
            .ok_or_else(|| connect_error("client TLS certificate is not PEM", None))?;
        Ok(Some(crate::rpc::sha256(&block.contents)))
    }

    /// Dials now and returns the connected channel.
    ///
    /// # Errors
    /// [`Error::Connect`] for a bad address, bad TLS material or a failed dial.
    pub async fn connect(self) -> Result<Channel, Error> {
        let endpoint = self.endpoint()?;
        endpoint
            .connect()
            .await
            .map_err(|e| connect_error(&format!("dialling {} failed", self.address), Some(e)))
    }

    /// Returns a channel that dials on first use (and redials after failures).
    ///
    /// # Errors
    /// [`Error::Connect`] for a bad address or bad TLS material.
    pub fn connect_lazy(self) -> Result<Channel, Error> {
        Ok(self.endpoint()?.connect_lazy())
    }

    fn endpoint(&self) -> Result<Endpoint, Error> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let url = if self.address.contains("://") {
            self.address.clone()
        } else {
            format!("{scheme}://{}", self.address)
        };
        let mut endpoint = Endpoint::from_shared(url)
            .map_err(|e| connect_error("invalid address", Some(e)))?
            .connect_timeout(self.connect_timeout)
            .tcp_nodelay(true);
        if let Some(interval) = self.keep_alive {
            endpoint = endpoint
                .http2_keep_alive_interval(interval)
                .keep_alive_timeout(Duration::from_secs(20))
                .keep_alive_while_idle(true);
        }
        if let Some(tls) = &self.tls {
            let mut config =
                ClientTlsConfig::new().ca_certificate(Certificate::from_pem(&tls.ca_pem));
            if let Some((cert, key)) = &tls.client {
                config =
                    config.identity(tonic::transport::Identity::from_pem(cert, key.as_slice()));
            }
            if let Some(name) = &tls.server_name {
                config = config.domain_name(name.clone());
            }
            endpoint = endpoint
                .tls_config(config)
                .map_err(|e| connect_error("invalid TLS configuration", Some(e)))?;
        }
        Ok(endpoint)
    }
}

/// The innermost error of a chain: the one that says what actually went wrong.
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

/// A [`Error::Connect`] whose message ends with the transport error's first-hand cause
/// (refused connection, TLS name or root mismatch, timeout, bad address).
fn connect_error(message: &str, transport: Option<tonic::transport::Error>) -> Error {
    let message = match &transport {
        Some(e) => format!("{message}: {}", root_cause(e)),
        None => message.to_owned(),
    };
    Error::Connect { message, transport }
}
