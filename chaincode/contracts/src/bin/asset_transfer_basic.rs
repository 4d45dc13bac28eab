//! The asset-transfer-basic chaincode as a chaincode-as-a-service server.

use std::sync::Arc;

fn main() -> std::process::ExitCode {
    medfabric_contracts::serve::run(Arc::new(medfabric_contracts::basic::chaincode()))
}
