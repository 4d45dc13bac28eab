//! Hyperledger Fabric wire protocol bindings for medfabric.
//!
//! Generated at build time from the `.proto` files under `proto/`, which describe the subset of
//! Fabric's protocol that medfabric speaks: the chaincode shim stream, proposals and their
//! responses, envelopes and blocks, MSP identities, the Gateway service and block delivery.
//! Module names follow the protobuf packages so that gRPC paths (`/protos.Chaincode/Connect`,
//! `/gateway.Gateway/Endorse`) match Fabric's.

#![allow(clippy::all, clippy::pedantic, missing_docs)]

/// `common`: envelopes, headers, blocks, signature policies, MSP principals.
pub mod common {
    include!(concat!(env!("OUT_DIR"), "/common.rs"));
}

/// `msp`: serialized identities.
pub mod msp {
    include!(concat!(env!("OUT_DIR"), "/msp.rs"));
}

/// `protos`: chaincode shim, proposals, transactions, peer events, endorser.
pub mod protos {
    include!(concat!(env!("OUT_DIR"), "/protos.rs"));
}

/// `orderer`: seek positions and orderer block delivery.
pub mod orderer {
    include!(concat!(env!("OUT_DIR"), "/orderer.rs"));
}

/// `queryresult`: range and history query records.
pub mod queryresult {
    include!(concat!(env!("OUT_DIR"), "/queryresult.rs"));
}

/// `gateway`: the Fabric Gateway service.
pub mod gateway {
    include!(concat!(env!("OUT_DIR"), "/gateway.rs"));
}

pub use prost::Message;
pub use prost_types::Timestamp;
