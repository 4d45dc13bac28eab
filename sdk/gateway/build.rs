//! `MEDFABRIC_REAL_NETWORK=1` turns on `cfg(real_network)`, which un-ignores the tests in
//! `tests/real_network.rs`: with it set, `cargo test` runs them and they fail when the test
//! network is unreachable; without it they are ignored unless asked for with `-- --ignored`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(real_network)");
    println!("cargo::rerun-if-env-changed=MEDFABRIC_REAL_NETWORK");
    if std::env::var("MEDFABRIC_REAL_NETWORK").as_deref() == Ok("1") {
        println!("cargo::rustc-cfg=real_network");
    }
}
