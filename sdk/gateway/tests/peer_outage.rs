//! The client's gateway peer stops mid-run: calls fail with a clear error naming the stage, and
//! once the peer is back the same `Gateway` works again, without reconnecting by hand.
//!
//! Stops and restarts a peer of the real test network (`network.sh stop-peer/start-peer`), so it
//! lives in its own test binary and must not run alongside other real-network tests:
//! `MEDFABRIC_REAL_NETWORK=1 cargo test -p medfabric-gateway --test peer_outage -- --include-ignored`.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use medfabric_gateway::{ConnectionProfile, Error};

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn network_dir() -> PathBuf {
    std::env::var_os("MEDFABRIC_NETWORK_DIR")
        .map_or_else(|| repo_root().join("test-network/.state"), PathBuf::from)
}

fn network_sh(args: &[&str]) {
    let status = Command::new(repo_root().join("test-network/network.sh"))
        .args(args)
        .env("MEDFABRIC_STATE", network_dir())
        .status()
        .unwrap();
    assert!(status.success(), "network.sh {args:?} failed");
}

/// Restarts the peer even when an assertion fails, so later steps find a whole network.
struct RestartOnDrop(bool);

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if self.0 {
            let _ = Command::new(repo_root().join("test-network/network.sh"))
                .args(["start-peer", "hospital1"])
                .env("MEDFABRIC_STATE", network_dir())
                .status();
        }
    }
}

async fn retry_until_ok<T, F, Fut>(what: &str, timeout: Duration, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let started = Instant::now();
    loop {
        match call().await {
            Ok(value) => return value,
            Err(e) if started.elapsed() < timeout => {
                eprintln!("{what}: not yet ({e})");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("{what} still failing after {timeout:?}: {e}"),
        }
    }
}

#[tokio::test]
#[cfg_attr(
    not(real_network),
    ignore = "needs the real test network (MEDFABRIC_REAL_NETWORK=1)"
)]
async fn a_stopped_peer_gives_a_clear_error_and_the_next_call_succeeds_after_it_returns() {
    let profile = ConnectionProfile::load_from_network_dir(network_dir(), "hospital1").unwrap();
    let gateway = profile.connect("User1", SystemTime::now()).await.unwrap();
    let contract = gateway.network("storage").contract("basic", None);
    let id = format!(
        "outage-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_millis()
    );
    let (c, i) = (&contract, id.as_str());
    retry_until_ok(
        "first submit",
        Duration::from_secs(30),
        move || async move { c.submit("CreateAsset", &[i, "red", "3", "Ann", "10"]).await },
    )
    .await;

    network_sh(&["stop-peer", "hospital1"]);
    let mut restart = RestartOnDrop(true);
    let error = contract.evaluate("ReadAsset", &[&id]).await.unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, Error::Evaluate { .. }),
        "expected an evaluate error, got {error:?}"
    );
    assert!(
        text.contains("evaluate") && (text.contains("Unavailable") || text.contains("unavailable")),
        "the error should name the stage and say the peer is unavailable: {text}"
    );
    let error = contract
        .submit(
            "CreateAsset",
            &[&format!("{id}-2"), "red", "3", "Ann", "10"],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::Endorse { .. }),
        "expected an endorse error, got {error:?}"
    );

    network_sh(&["start-peer", "hospital1"]);
    restart.0 = false;
    // Same Gateway, no reconnect by hand: the channel redials; gossip takes a few seconds to
    // find the other organisations again, which only endorsement needs.
    let asset = retry_until_ok(
        "evaluate after the restart",
        Duration::from_secs(30),
        move || async move { c.evaluate("ReadAsset", &[i]).await },
    )
    .await;
    assert!(String::from_utf8(asset).unwrap().contains(&id));
    retry_until_ok(
        "submit after the restart",
        Duration::from_secs(60),
        move || async move { c.submit("TransferAsset", &[i, "Max"]).await },
    )
    .await;
}
