//! The medical chaincode as a chaincode-as-a-service server: one binary for the `storage` and
//! `sharing` channels (each transaction checks the channel it runs on).
//!
//! `MEDFABRIC_CHAINCODE_NAME` (default `medfabric`): the name the chaincode is deployed under
//! on `storage`, which `sharing` transactions call there (`Config::storage_chaincode`).

use std::sync::Arc;

use medfabric_contracts::medical::{self, Config};

fn main() -> std::process::ExitCode {
    let mut config = Config::default();
    if let Some(name) = std::env::var("MEDFABRIC_CHAINCODE_NAME")
        .ok()
        .filter(|n| !n.is_empty())
    {
        config.storage_chaincode = name;
    }
    medfabric_contracts::serve::run(Arc::new(medical::chaincode_with(config)))
}
