//! Shared `main` for chaincode server binaries: configuration from the environment, logging,
//! graceful shutdown on SIGINT/SIGTERM.

use std::io::IsTerminal as _;
use std::sync::Arc;

use medfabric_shim::chaincode::Chaincode;
use medfabric_shim::server::{ServerConfig, serve};

/// Runs `chaincode` as a chaincode-as-a-service server configured from the environment
/// (`CHAINCODE_ID`, `CHAINCODE_SERVER_ADDRESS`, `CHAINCODE_TLS_*`). Returns the process exit
/// code.
pub fn run(chaincode: Arc<dyn Chaincode>) -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CHAINCODE_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour codes only on a terminal: servers usually log to a file.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    // A panicking transaction is answered as that transaction's error; logging it must not
    // cost the server a symbolised backtrace held for its whole life.
    medfabric_shim::chaincode::log_panics_without_backtrace();
    let config = match ServerConfig::from_lookup(|name| std::env::var(name).ok()) {
        Ok(config) => config,
        Err(error) => {
            eprintln!("error: {error}");
            return std::process::ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(serve(config, chaincode, shutdown_signal()));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(_) => {
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
    tracing::info!("shutting down");
}
