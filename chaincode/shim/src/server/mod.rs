//! The chaincode-as-a-service server: the peer dials us, we register under the package id and
//! then serve transactions on the stream, each on its own blocking thread so transactions run
//! concurrently and a slow one never holds up the stream.

mod handler;
mod stub;

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_stream::Stream;
use tokio_stream::wrappers::UnboundedReceiverStream;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};

use medfabric_protos::protos::ChaincodeMessage;
use medfabric_protos::protos::chaincode_server::{Chaincode as ChaincodeRpc, ChaincodeServer};

use crate::chaincode::Chaincode;
use crate::error::ServerError;

/// How long in-flight transactions get to finish after a shutdown request. Peer streams never
/// end on their own, so waiting for every connection to close would never return.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Largest gRPC message accepted or sent; the peer's own default.
const MAX_MESSAGE_BYTES: usize = 100 * 1024 * 1024;

/// How the server protects its listener.
#[derive(Clone)]
pub enum TlsConfig {
    /// Server TLS, and mutual TLS when `client_ca_pem` is set (the peer must present a
    /// certificate issued by that CA).
    Enabled {
        /// Server certificate chain (PEM).
        cert_pem: Vec<u8>,
        /// Server private key (PEM).
        key_pem: Vec<u8>,
        /// CA that issues the peers' client certificates (PEM).
        client_ca_pem: Option<Vec<u8>>,
    },
    /// Plain text. Only for development networks: chaincode traffic carries every proposal.
    DangerousPlaintext,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Enabled { client_ca_pem, .. } => f
                .debug_struct("Enabled")
                .field("mutual", &client_ca_pem.is_some())
                .finish_non_exhaustive(),
            Self::DangerousPlaintext => f.write_str("DangerousPlaintext"),
        }
    }
}

/// Validated server configuration.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The chaincode package id (`label:hash`) the peer knows this server by.
    pub chaincode_id: String,
    /// Where to listen.
    pub address: SocketAddr,
    /// Transport security.
    pub tls: TlsConfig,
}

impl ServerConfig {
    /// Reads the configuration Fabric's chaincode-as-a-service convention uses:
    /// `CHAINCODE_ID`, `CHAINCODE_SERVER_ADDRESS`, and either `CHAINCODE_TLS_CERT_FILE` +
    /// `CHAINCODE_TLS_KEY_FILE` (+ `CHAINCODE_TLS_CLIENT_CA_FILE` for mutual TLS) or
    /// `CHAINCODE_TLS_DISABLED=true`. `lookup` is the environment (passed in so that only
    /// `main` touches the process environment, and tests can pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ServerError> {
        let required = |name: &str| {
            lookup(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or_else(|| ServerError::Config(format!("{name} is not set")))
        };
        let chaincode_id = required("CHAINCODE_ID")?;
        if !chaincode_id.contains(':') {
            return Err(ServerError::Config(format!(
                "CHAINCODE_ID {chaincode_id:?} is not a package id (expected label:hash, see `peer lifecycle chaincode calculatepackageid`)"
            )));
        }
        let address_text = required("CHAINCODE_SERVER_ADDRESS")?;
        let address: SocketAddr = address_text.parse().map_err(|_| {
            ServerError::Config(format!(
                "CHAINCODE_SERVER_ADDRESS {address_text:?} is not host:port with an IP address"
            ))
        })?;
        let disabled = match lookup("CHAINCODE_TLS_DISABLED").as_deref().map(str::trim) {
            None | Some("") | Some("false") => false,
            Some("true") => true,
            Some(other) => {
                return Err(ServerError::Config(format!(
                    "CHAINCODE_TLS_DISABLED must be true or false, not {other:?}"
                )));
            }
        };
        let tls = if disabled {
            TlsConfig::DangerousPlaintext
        } else {
            let read = |name: &str| -> Result<Vec<u8>, ServerError> {
                let path = required(name).map_err(|_| {
                    ServerError::Config(format!(
                        "{name} is not set; TLS is on by default (set CHAINCODE_TLS_DISABLED=true only for development)"
                    ))
                })?;
                std::fs::read(&path).map_err(|source| ServerError::Io { path, source })
            };
            let cert_pem = read("CHAINCODE_TLS_CERT_FILE")?;
            let key_pem = read("CHAINCODE_TLS_KEY_FILE")?;
            let client_ca_pem =
                match lookup("CHAINCODE_TLS_CLIENT_CA_FILE").filter(|v| !v.trim().is_empty()) {
                    Some(path) => Some(
                        std::fs::read(&path).map_err(|source| ServerError::Io { path, source })?,
                    ),
                    None => None,
                };
            for (name, pem) in [("certificate", &cert_pem), ("private key", &key_pem)] {
                if !pem.starts_with(b"-----BEGIN") {
                    return Err(ServerError::Config(format!("TLS {name} file is not PEM")));
                }
            }
            TlsConfig::Enabled {
                cert_pem,
                key_pem,
                client_ca_pem,
            }
        };
        Ok(Self {
            chaincode_id,
            address,
            tls,
        })
    }
}

/// Serves `chaincode` until `shutdown` completes.
pub async fn serve(
    config: ServerConfig,
    chaincode: Arc<dyn Chaincode>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let listener = TcpListener::bind(config.address)
        .await
        .map_err(|source| ServerError::Io {
            path: config.address.to_string(),
            source,
        })?;
    serve_on(listener, config, chaincode, shutdown).await
}

/// Serves on an already bound listener (tests bind port 0).
pub async fn serve_on(
    listener: TcpListener,
    config: ServerConfig,
    chaincode: Arc<dyn Chaincode>,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), ServerError> {
    let mut builder = Server::builder();
    if let TlsConfig::Enabled {
        cert_pem,
        key_pem,
        client_ca_pem,
    } = &config.tls
    {
        let mut tls = ServerTlsConfig::new().identity(Identity::from_pem(cert_pem, key_pem));
        if let Some(ca) = client_ca_pem {
            tls = tls.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder.tls_config(tls)?;
    }
    let service = ChaincodeService {
        chaincode_id: config.chaincode_id.clone(),
        chaincode,
    };
    tracing::info!(address = %listener.local_addr().map(|a| a.to_string()).unwrap_or_default(), tls = ?config.tls, chaincode_id = %config.chaincode_id, "chaincode server listening");
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut stop_accepting = stopped.clone();
    let server = builder
        .add_service(
            ChaincodeServer::new(service)
                .max_decoding_message_size(MAX_MESSAGE_BYTES)
                .max_encoding_message_size(MAX_MESSAGE_BYTES),
        )
        // Small request/answer messages: without TCP_NODELAY, Nagle plus delayed ACKs add ~40 ms
        // to every ledger round trip.
        .serve_with_incoming_shutdown(
            TcpIncoming::from(listener).with_nodelay(Some(true)),
            async move {
                let _ = stop_accepting.wait_for(|stop| *stop).await;
            },
        );
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result.map_err(ServerError::from),
        () = shutdown => {}
    }
    let _ = stop.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, &mut server)
        .await
        .is_err()
    {
        tracing::info!("closing the remaining peer streams");
    }
    drop(stopped);
    Ok(())
}

struct ChaincodeService {
    chaincode_id: String,
    chaincode: Arc<dyn Chaincode>,
}

type MessageStream = Pin<Box<dyn Stream<Item = Result<ChaincodeMessage, Status>> + Send>>;

#[tonic::async_trait]
impl ChaincodeRpc for ChaincodeService {
    type ConnectStream = MessageStream;

    async fn connect(
        &self,
        request: Request<Streaming<ChaincodeMessage>>,
    ) -> Result<Response<Self::ConnectStream>, Status> {
        let peer = request
            .remote_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        let inbound = request.into_inner();
        let (outbound, receiver) = tokio::sync::mpsc::unbounded_channel();
        let session = handler::Session::new(
            self.chaincode_id.clone(),
            Arc::clone(&self.chaincode),
            outbound,
        );
        session.register();
        tokio::spawn(session.run(inbound, peer));
        let stream = tokio_stream::StreamExt::map(UnboundedReceiverStream::new(receiver), Ok);
        Ok(Response::new(Box::pin(stream)))
    }
}
