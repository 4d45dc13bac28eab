//! The medical chaincode as a chaincode-as-a-service server: one binary for the `storage` and
//! `sharing` channels (each transaction checks the channel it runs on).

use std::sync::Arc;

fn main() -> std::process::ExitCode {
    medfabric_contracts::serve::run(Arc::new(medfabric_contracts::medical::chaincode()))
}
