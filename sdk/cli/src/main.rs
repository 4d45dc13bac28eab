//! `medfabric`: the embedded demo, benchmarks, and record, policy and proxy commands.
//!
//! Configuration precedence (highest first): command-line flags, environment variables
//! (`MEDFABRIC_*`), the configuration file (`--config`, else `$MEDFABRIC_CONFIG`, else
//! `./medfabric.toml`, else `~/.config/medfabric/config.toml`), built-in defaults. See
//! `medfabric config --help` and `config.rs`.

mod bench;
mod config;
mod demo;
mod network;
mod progress;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Privacy-preserving medical record sharing on Hyperledger Fabric.
#[derive(Debug, Parser)]
#[command(name = "medfabric", version, about, long_about = None)]
struct Cli {
    /// Machine-readable output (JSON on stdout).
    #[arg(long, global = true)]
    json: bool,
    /// Configuration file (default: $MEDFABRIC_CONFIG, ./medfabric.toml, ~/.config/medfabric/config.toml).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Log filter (e.g. `info`, `medfabric_records=debug`); default `warn`.
    #[arg(long, global = true, env = "MEDFABRIC_LOG", value_name = "FILTER")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole story on this machine: no Fabric, no cloud (or on a real network with --network).
    Demo(demo::DemoArgs),
    /// End-to-end latency and throughput: store, share, access, upload, proxy re-encryption.
    Bench(bench::BenchArgs),
    /// Enrol users at your organisation's Fabric CA, show the acting identity, register
    /// pseudonyms.
    #[command(subcommand)]
    Identity(network::IdentityCommand),
    /// Store, read, share and audit records (needs a network: see `medfabric config`).
    #[command(subcommand)]
    Record(network::RecordCommand),
    /// Named access policies on the channels.
    #[command(subcommand)]
    Policy(network::PolicyCommand),
    /// Re-encryption proxy.
    #[command(subcommand)]
    Proxy(network::ProxyCommand),
    /// Remove stored objects that no index references (after a grace period).
    Gc(network::GcArgs),
    /// Show the effective configuration and where each value came from.
    Config,
}

fn init_logging(filter: Option<&str>) {
    let filter = tracing_subscriber::EnvFilter::try_new(filter.unwrap_or("warn"))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let settings = config::Settings::load(cli.config.as_deref())?;
        match cli.command {
            Command::Demo(args) => demo::run(args, &settings, cli.json).await,
            Command::Bench(args) => bench::run(args, cli.json).await,
            Command::Identity(cmd) => network::identity(cmd, &settings, cli.json).await,
            Command::Record(cmd) => network::record(cmd, &settings, cli.json).await,
            Command::Policy(cmd) => network::policy(cmd, &settings, cli.json).await,
            Command::Proxy(cmd) => network::proxy(cmd, &settings, cli.json).await,
            Command::Gc(args) => network::gc(args, &settings, cli.json).await,
            Command::Config => {
                settings.print(cli.json);
                Ok(())
            }
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
