//! A panicking transaction with `RUST_BACKTRACE=1` set, as operators often run servers.
//!
//! Rust's default panic hook then symbolises a backtrace from the binary's debug information
//! and keeps what it parsed for the rest of the process's life; `log_panics_without_backtrace`
//! (installed by our chaincode server binaries) logs the panic without one. Each case runs in a
//! child process of this test binary, so the hook and the resident-memory figures are its own:
//! - with our hook, the panic is still that transaction's error and the process grows by less
//!   than [`HOOK_BOUND_KIB`];
//! - with the default hook, the same panic grows it by more than that, which shows this test
//!   measures what it claims (it fails if the hook is not what keeps memory flat).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::process::{Command, ExitCode};
use std::sync::Arc;

use medfabric_shim::chaincode::log_panics_without_backtrace;
use medfabric_shim::contract::{Contract, Router};
use medfabric_shim::error::ContractError;
use medfabric_shim::ledger::{Creator, Ledger};
use medfabric_shim::memory::{Invocation, MemoryChannel};

/// Set in a child: which hook it runs with (`ours` or `default`).
const CHILD: &str = "MEDFABRIC_PANIC_HOOK_CHILD";
/// The most a logged panic may add to the process with our hook.
const HOOK_BOUND_KIB: u64 = 8 * 1024;

fn main() -> ExitCode {
    match std::env::var(CHILD) {
        Ok(hook) => child(&hook),
        Err(_) => parent(),
    }
}

/// Runs both cases and checks them.
fn parent() -> ExitCode {
    let ours = run_child("ours");
    let default = run_child("default");
    println!(
        "panic_hook: resident growth after a panicking transaction with RUST_BACKTRACE=1: \
         our hook {ours} KiB, default hook {default} KiB"
    );
    let mut failed = false;
    if ours >= HOOK_BOUND_KIB {
        println!("FAILED: with our hook the process grew by {ours} KiB (bound {HOOK_BOUND_KIB})");
        failed = true;
    }
    if default <= HOOK_BOUND_KIB {
        println!(
            "FAILED: the default hook grew the process by only {default} KiB: this test no \
             longer shows what the hook saves (built without debug information?)"
        );
        failed = true;
    }
    if failed {
        ExitCode::FAILURE
    } else {
        println!("test panic_hook ... ok");
        ExitCode::SUCCESS
    }
}

/// Runs this binary as a child with `RUST_BACKTRACE=1`; returns the growth it reports.
fn run_child(hook: &str) -> u64 {
    let output = Command::new(std::env::current_exe().unwrap())
        .env(CHILD, hook)
        .env("RUST_BACKTRACE", "1")
        .output()
        .expect("start the child process");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "child ({hook} hook) failed: {}\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("growth_kib="))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or_else(|| panic!("child ({hook} hook) printed no growth: {stdout}"))
}

/// One panicking transaction on the in-memory ledger; prints how much resident memory grew.
fn child(hook: &str) -> ExitCode {
    if hook == "ours" {
        log_panics_without_backtrace();
    }
    let channel = MemoryChannel::new("storage");
    let router = Router::new("test", "1").with(
        Contract::new("Test")
            .evaluate("Ok", &[], |_l: &dyn Ledger, (): ()| {
                Ok::<_, ContractError>(())
            })
            .evaluate(
                "Boom",
                &[],
                |_l: &dyn Ledger, (): ()| -> Result<(), ContractError> { panic!("kaboom") },
            ),
    );
    channel.install("test", Arc::new(router));
    let creator = Creator {
        msp_id: "Hospital1MSP".into(),
        id_bytes: Vec::new(),
    };
    // Warm up everything a transaction touches, so the figure is the panic's alone.
    let ok = channel.evaluate(&Invocation::new("test", creator.clone(), "Test:Ok", &[]));
    assert!(ok.is_success(), "{ok:?}");
    let before = resident_kib();
    let response = channel.evaluate(&Invocation::new("test", creator, "Test:Boom", &[]));
    let after = resident_kib();
    assert!(!response.is_success(), "{response:?}");
    assert!(
        response.message.contains("panicked: kaboom"),
        "{}",
        response.message
    );
    println!("growth_kib={}", after.saturating_sub(before));
    ExitCode::SUCCESS
}

/// This process's resident set (`VmRSS`), in KiB.
fn resident_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/self/status")
}
