//! The standalone VBS simulator: parse the options (exit 64 when they are
//! bad), log to stderr, serve the fake VBS REST API (and CSBS, TaurusDB and
//! ZStack where asked) until SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use vbs_simulator::cli::{SimulatorArgs, serve_alone};

/// sysexits EX_USAGE: the options are wrong.
const EXIT_BAD_CONFIG: u8 = 64;

/// A fake VBS REST endpoint with volumes, backups, policies and jobs in
/// memory, and fake CSBS, TaurusDB and ZStack endpoints beside it when asked.
#[derive(Debug, Parser)]
#[command(name = "vbs-simulator", version)]
struct Cli {
    #[command(flatten)]
    simulator: SimulatorArgs,
    /// Log filter in env-filter syntax, e.g. "info,vbs_simulator=debug".
    #[arg(long, env = "RUST_LOG", default_value = "info")]
    log_filter: String,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(&cli.log_filter))
        .with_writer(std::io::stderr)
        .init();
    let listen = cli.simulator.listen;
    let (config, beside) = match cli.simulator.into_config() {
        Ok(parts) => parts,
        Err(error) => {
            eprintln!("vbs-simulator: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("vbs-simulator: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve_alone(listen, config, beside, shutdown_signal())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vbs-simulator: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    let Ok(mut terminate) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) else {
        let _ = interrupt.await;
        return;
    };
    tokio::select! {
        _ = interrupt => {}
        _ = terminate.recv() => {}
    }
}
