//! `cfg(real_network)` un-ignores the S3 suite on a real MinIO (`tests/s3.rs`). It is on when
//! `MEDFABRIC_REAL_NETWORK=1`, `CI=true` or `MEDFABRIC_S3_ENDPOINT` is set: then `cargo test`
//! runs the S3 tests and they fail (never skip) when MinIO cannot be started or reached.
//! Without it they are ignored unless asked for with `-- --ignored`.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(real_network)");
    println!("cargo::rerun-if-env-changed=MEDFABRIC_REAL_NETWORK");
    println!("cargo::rerun-if-env-changed=CI");
    println!("cargo::rerun-if-env-changed=MEDFABRIC_S3_ENDPOINT");
    let env_is = |name: &str, value: &str| std::env::var(name).is_ok_and(|v| v == value);
    if env_is("MEDFABRIC_REAL_NETWORK", "1")
        || env_is("CI", "true")
        || std::env::var_os("MEDFABRIC_S3_ENDPOINT").is_some()
    {
        println!("cargo::rustc-cfg=real_network");
    }
}
