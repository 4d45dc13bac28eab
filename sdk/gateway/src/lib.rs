//! A Hyperledger Fabric Gateway client for medfabric, in the shape of the official
//! fabric-gateway clients: [`Gateway`] → [`Network`] → [`Contract`] →
//! [`Proposal`] / [`Transaction`] / [`Commit`].
//!
//! ```no_run
//! use std::time::SystemTime;
//! use medfabric_gateway::{ChannelBuilder, Gateway, load_msp_dir};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! // An identity and its key from a Fabric MSP folder, checked to belong together and to
//! // be valid now, and a TLS channel to a peer of the organisation.
//! let msp = "crypto/peerOrganizations/hospital1.medfabric.local/users/User1@hospital1.medfabric.local/msp";
//! let (identity, signer) = load_msp_dir("Hospital1MSP", msp, SystemTime::now())?;
//! let tls_ca = std::fs::read("crypto/peerOrganizations/hospital1.medfabric.local/tlsca/tlsca.hospital1.medfabric.local-cert.pem")?;
//! let channel = ChannelBuilder::new("127.0.0.1:7051", tls_ca).connect().await?;
//!
//! let gateway = Gateway::connect(identity, signer, channel)?;
//! let contract = gateway.network("storage").contract("basic", None);
//!
//! // One-call helpers...
//! contract.submit("CreateAsset", &["asset1", "blue", "5", "Tom", "300"]).await?;
//! let asset = contract.evaluate("ReadAsset", &["asset1"]).await?;
//! println!("{}", String::from_utf8_lossy(&asset));
//!
//! // ...are shorthand for the staged flow, which also takes transient data and endorsing
//! // organisations, and whose every stage can be signed offline (`bytes()`, `digest()`,
//! // `Gateway::new_signed_*`).
//! let transaction = contract
//!     .new_proposal("TransferAsset")
//!     .args(["asset1", "Max"])
//!     .build()?
//!     .endorse()
//!     .await?;
//! let status = transaction.submit().await?.status().await?;
//! assert!(status.successful());
//!
//! // Chaincode events, replayable from a block or a persisted checkpoint.
//! use medfabric_gateway::{Checkpointer, FileCheckpointer};
//! let mut checkpointer = FileCheckpointer::open("events.checkpoint")?;
//! let mut events = gateway
//!     .network("storage")
//!     .chaincode_events("basic")
//!     .start_block(0)
//!     .checkpoint(&checkpointer)
//!     .events()
//!     .await?;
//! while let Some(event) = events.next().await {
//!     let event = event?;
//!     println!("{} in block {}", event.event_name, event.block_number);
//!     checkpointer.checkpoint_chaincode_event(&event)?;
//! }
//! # Ok(()) }
//! ```
//!
//! # Identities and signing
//! An [`Identity`] is an MSP id plus an X.509 certificate; a [`Signer`] signs SHA-256
//! digests, so keys can live in an HSM. [`P256Signer`] is the software signer; it always
//! produces low-S DER signatures, which Fabric requires. Bad identities are rejected with
//! an [`IdentityError`] before anything is sent.
//!
//! # Errors
//! One [`Error`] enum whose variants name the stage that failed (`Evaluate`, `Endorse`,
//! `Submit`, `CommitStatus`, `Commit`, `Events`, …) and carry the transaction id, the gRPC
//! status and the gateway's per-node [`ErrorDetail`]s.

mod block_events;
mod chaincode_events;
mod checkpoint;
mod commit;
mod connection;
mod contract;
mod error;
mod event_stream;
mod gateway;
mod identity;
mod network;
mod profile;
mod proposal;
mod rpc;
mod signer;
mod transaction;

#[cfg(test)]
mod tests;

pub use block_events::{BlockEventsBuilder, BlockEventsRequest};
pub use chaincode_events::{ChaincodeEvent, ChaincodeEventsBuilder, ChaincodeEventsRequest};
pub use checkpoint::{Checkpoint, Checkpointer, FileCheckpointer, InMemoryCheckpointer};
pub use commit::{Commit, Status};
pub use connection::ChannelBuilder;
pub use contract::Contract;
pub use error::{Error, ErrorDetail, GrpcStatus, IdentityError};
pub use event_stream::EventStream;
pub use gateway::{CallOptions, Gateway, GatewayBuilder};
pub use identity::{Identity, load_msp_dir};
pub use network::Network;
pub use profile::{CertificateAuthority, ConnectionProfile, Registrar};
pub use proposal::{Proposal, ProposalBuilder};
pub use signer::{P256Signer, Signer, is_low_s, to_low_s};
pub use transaction::Transaction;

/// The Fabric protocol bindings this crate speaks (blocks, validation codes, …).
pub use medfabric_protos;
/// Validation codes of committed transactions.
pub use medfabric_protos::protos::TxValidationCode;
/// The gRPC channel type [`Gateway`] runs on.
pub use tonic::transport::Channel;
