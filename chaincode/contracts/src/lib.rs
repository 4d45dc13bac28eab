//! medfabric's chaincode: the contracts, written against `medfabric_shim::ledger::Ledger`.
//!
//! - [`basic`]: `asset-transfer-basic`, wire-compatible with Fabric's sample;
//! - [`conformance`]: transactions that exercise every ledger operation, so one suite can
//!   check the in-memory ledger and a real peer against the same expectations;
//! - [`medical`]: the medical record contracts on the `storage` and `sharing` channels.

pub mod basic;
pub mod conformance;
pub mod medical;
pub mod serve;
