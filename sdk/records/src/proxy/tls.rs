//! TLS for the proxy protocol (rustls with the aws-lc-rs provider). A proxy serves HTTPS with
//! a certificate from its organisation's TLS CA; clients verify it against the consortium's TLS
//! roots. Plain HTTP stays possible on the loopback interface only (the embedded demo and
//! tests), where nothing crosses a network.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{ClientConfig, RootCertStore, ServerConfig};
use tokio_rustls::server::TlsStream;

use crate::error::{Error, Result};

/// A TLS handshake that takes longer is dropped (a slow or silent client).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes in progress at once; further connections wait in the kernel's backlog.
const MAX_HANDSHAKES: usize = 64;

fn provider() -> Arc<tokio_rustls::rustls::crypto::CryptoProvider> {
    Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider())
}

/// The server side: certificate chain and private key, both PEM.
///
/// # Errors
/// [`Error::Validate`] naming what is wrong with the PEM or the pair.
pub fn server_config(
    certificate_chain_pem: &[u8],
    private_key_pem: &[u8],
) -> Result<Arc<ServerConfig>> {
    let chain = CertificateDer::pem_slice_iter(certificate_chain_pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| Error::Validate(format!("proxy TLS certificate: malformed PEM: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Validate(
            "proxy TLS certificate: no CERTIFICATE block in the PEM".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(private_key_pem).map_err(|e| {
        Error::Validate(format!(
            "proxy TLS key: no usable private key in the PEM ({e})"
        ))
    })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Validate(format!("proxy TLS: {e}")))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| {
            Error::Validate(format!(
                "proxy TLS certificate and key do not go together: {e}"
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The client side: the TLS roots proxies' certificates must chain to (PEM, one or more
/// CERTIFICATE blocks per entry).
///
/// # Errors
/// [`Error::Validate`] for malformed or missing roots.
pub fn client_config(roots_pem: &[String]) -> Result<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for pem in roots_pem {
        for certificate in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            let certificate = certificate
                .map_err(|e| Error::Validate(format!("proxy TLS roots: malformed PEM: {e}")))?;
            roots.add(certificate).map_err(|e| {
                Error::Validate(format!("proxy TLS root certificate unusable: {e}"))
            })?;
        }
    }
    if roots.is_empty() {
        return Err(Error::Validate(
            "no proxy TLS root certificate given (PEM CERTIFICATE blocks expected)".into(),
        ));
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Validate(format!("proxy TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // ALPN stays empty here: the HTTPS connector sets it (http/1.1) and insists on doing so.
    Ok(config)
}

/// True for URLs whose host is the loopback interface (`127.0.0.0/8`, `::1`, `localhost`).
pub(crate) fn is_loopback_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<http::Uri>() else {
        return false;
    };
    match uri.host() {
        Some("localhost") => true,
        Some(host) => host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

/// A listener for `axum::serve` that completes TLS handshakes concurrently, each within
/// [`HANDSHAKE_TIMEOUT`], and hands out the established streams. A failed handshake is
/// logged and dropped; it never stops the listener.
pub(crate) struct TlsListener {
    established: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    pub(crate) fn new(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<Self> {
        let local = listener.local_addr()?;
        let acceptor = TlsAcceptor::from(config);
        let (sender, established) = mpsc::channel(MAX_HANDSHAKES);
        let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
        let acceptor_task = tokio::spawn(async move {
            loop {
                let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                    return;
                };
                let (tcp, peer) = match listener.accept().await {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        tracing::warn!(error = %e, "proxy: accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let _ = tcp.set_nodelay(true);
                let acceptor = acceptor.clone();
                let sender = sender.clone();
                tokio::spawn(async move {
                    let _permit = permit;
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => {
                            let _ = sender.send((stream, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "proxy: TLS handshake failed");
                        }
                        Err(_) => tracing::debug!(%peer, "proxy: TLS handshake timed out"),
                    }
                });
            }
        });
        Ok(Self {
            established,
            local,
            acceptor_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.established.recv().await {
            Some(established) => established,
            // the acceptor task ended (aborted): no more connections
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn plain_http_is_for_the_loopback_interface_only() {
        for url in [
            "http://127.0.0.1:7100",
            "http://127.9.9.9:1",
            "http://localhost:8080",
            "http://[::1]:7100",
        ] {
            assert!(is_loopback_url(url), "{url}");
        }
        for url in [
            "http://10.0.0.5:7100",
            "http://proxy.hospital2.example:7100",
            "http://[2001:db8::1]:7100",
            "not a url",
            "http://127.0.0.1.example.com/",
        ] {
            assert!(!is_loopback_url(url), "{url}");
        }
    }

    #[test]
    fn bad_pem_is_refused_with_the_reason() {
        let err = server_config(b"", b"").unwrap_err().to_string();
        assert!(err.contains("no CERTIFICATE block"), "{err}");
        let err = client_config(&["junk".into()]).unwrap_err().to_string();
        assert!(err.contains("no proxy TLS root certificate"), "{err}");
        let err = client_config(&[]).unwrap_err().to_string();
        assert!(err.contains("no proxy TLS root certificate"), "{err}");
    }
}
