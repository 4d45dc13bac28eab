//! The conformance chaincode as a chaincode-as-a-service server (real-network suite only).

use std::sync::Arc;

fn main() -> std::process::ExitCode {
    medfabric_contracts::serve::run(Arc::new(medfabric_contracts::conformance::chaincode()))
}
