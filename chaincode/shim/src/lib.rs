//! Write Hyperledger Fabric chaincode in Rust.
//!
//! Three layers, as in Fabric's own Go shim and contract API:
//! - [`ledger::Ledger`]: what a contract may ask of the ledger in one transaction, with
//!   conveniences in [`ext::LedgerExt`];
//! - [`contract`]: `Contract:Function` dispatch with typed arguments and metadata;
//! - [`server`]: the chaincode-as-a-service gRPC server a real peer dials, and
//!   [`memory`]: an in-memory ledger with the same semantics for tests and the embedded demo.
//!
//! ```
//! use std::sync::Arc;
//! use medfabric_shim::contract::{Contract, Router};
//! use medfabric_shim::error::ContractError;
//! use medfabric_shim::ledger::{Creator, Ledger};
//! use medfabric_shim::memory::{Invocation, MemoryChannel};
//!
//! let counter = Contract::new("Counter").submit("Set", &["value"], |ledger: &dyn Ledger, (value,): (u64,)| {
//!     ledger.put_state("counter", value.to_string().as_bytes())?;
//!     Ok::<_, ContractError>(())
//! });
//! let channel = MemoryChannel::new("storage");
//! channel.install("counter", Arc::new(Router::new("counter", "1.0").with(counter)));
//! let creator = Creator { msp_id: "Hospital1MSP".into(), id_bytes: Vec::new() };
//! let outcome = channel.submit(&Invocation::new("counter", creator, "Set", &["7"]));
//! assert!(outcome.is_committed());
//! ```

pub mod chaincode;
pub mod contract;
pub mod error;
pub mod ext;
pub mod ledger;
pub mod memory;
pub mod server;
