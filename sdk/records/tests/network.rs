//! The demo story on the real test network (ignored by default):
//!
//! ```sh
//! cargo build --release -p medfabric-contracts
//! test-network/network.sh up
//! test-network/network.sh deploy --name medfabric --binary target/release/medfabric-chaincode \
//!     --channels "storage sharing" --port 9997 --collections collections/medfabric.json
//! cargo test -p medfabric-records --test network -- --ignored
//! ```
//!
//! `MEDFABRIC_NETWORK_DIR` (default `test-network/.state`) and `MEDFABRIC_MEDICAL_CHAINCODE`
//! (default `medfabric`) select the network and the chaincode.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use medfabric_records::demo::{self, DemoOptions, Environment, Outcome};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs the real test network with the medical chaincode deployed as `medfabric`"]
async fn the_demo_story_on_the_real_network() {
    let dir = std::env::var_os("MEDFABRIC_NETWORK_DIR").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../test-network/.state"),
        PathBuf::from,
    );
    let chaincode =
        std::env::var("MEDFABRIC_MEDICAL_CHAINCODE").unwrap_or_else(|_| "medfabric".into());
    let mut env = Environment::start_network(&DemoOptions::default(), &dir, &chaincode)
        .await
        .unwrap();
    env.bootstrap().await.unwrap();
    let sections = demo::default_sections().unwrap();
    let shared = demo::default_shared(&sections);
    let report = demo::run_story(&env, sections.clone(), shared.clone(), 2, &mut |_| {})
        .await
        .unwrap();
    use Outcome::{Denied, Done};
    let outcomes: Vec<Outcome> = report.steps.iter().map(|s| s.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Done, Done, Done, Denied, Done, Done, Denied, Done, Denied, Done
        ]
    );
    assert_eq!(report.opened, shared);
    assert!(report.opened_match_original);
    assert!(report.after_revoke_denial.contains("revoked"));
    let plaintexts: Vec<&[u8]> = sections.iter().map(|s| s.bytes.as_slice()).collect();
    let public = demo::public_metadata(&sections);
    let public: Vec<&str> = public.iter().map(String::as_str).collect();
    assert!(
        demo::scan_for_plaintext(&env, &plaintexts, &public)
            .findings
            .is_empty()
    );
    env.shutdown().await;
}
