//! Decides which real-server tests run by default.
//!
//! * `cfg(fabric_ca)` un-ignores `tests/real_ca.rs` (each test starts its own
//!   `fabric-ca-server` in a temporary folder): set when the pinned binary is there
//!   (`MEDFABRIC_CA_BIN`, else `$MEDFABRIC_CACHE` or `~/.cache/medfabric`, then
//!   `fabric-ca-v1.5.15/bin/fabric-ca-server`), and always when `MEDFABRIC_REAL_NETWORK=1` or
//!   `CI=true`, so that there a missing binary fails the tests instead of skipping them.
//! * `cfg(real_network)` (`MEDFABRIC_REAL_NETWORK=1`) un-ignores `tests/test_network_ca.rs`,
//!   which needs `test-network/network.sh up && deploy` running; as in medfabric-gateway.
//!
//! Without them the tests are ignored unless asked for with `-- --ignored`.

use std::path::PathBuf;

fn main() {
    println!("cargo::rustc-check-cfg=cfg(fabric_ca)");
    println!("cargo::rustc-check-cfg=cfg(real_network)");
    for var in [
        "MEDFABRIC_REAL_NETWORK",
        "CI",
        "MEDFABRIC_CA_BIN",
        "MEDFABRIC_CACHE",
        "HOME",
    ] {
        println!("cargo::rerun-if-env-changed={var}");
    }
    let real_network = std::env::var("MEDFABRIC_REAL_NETWORK").as_deref() == Ok("1");
    let ci = std::env::var("CI").as_deref() == Ok("true");
    if real_network {
        println!("cargo::rustc-cfg=real_network");
    }
    let binary = fabric_ca_server();
    if let Some(binary) = &binary {
        println!("cargo::rerun-if-changed={}", binary.display());
    }
    if real_network || ci || binary.is_some_and(|b| b.is_file()) {
        println!("cargo::rustc-cfg=fabric_ca");
    }
}

/// Where tests/real_ca.rs looks for the server (keep in sync with it).
fn fabric_ca_server() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("MEDFABRIC_CA_BIN") {
        return Some(PathBuf::from(dir).join("fabric-ca-server"));
    }
    let cache = std::env::var_os("MEDFABRIC_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/medfabric")))?;
    Some(cache.join("fabric-ca-v1.5.15/bin/fabric-ca-server"))
}
