//! The process lifetime: parse and validate the configuration (exit 64 when it
//! is bad), start logging, start the embedded simulator when no endpoint is
//! set, serve gRPC, and drain in-flight calls on SIGINT or SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use vbs_gateway::app::App;
use vbs_gateway::config::{Cli, Config, LogConfig, Mode};
use vbs_gateway::simulator::{self, Simulator, SimulatorConfig};
use vbs_gateway::telemetry;

/// sysexits EX_USAGE: the configuration is wrong.
const EXIT_BAD_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let mode = match Cli::parse().into_mode() {
        Ok(mode) => mode,
        Err(error) => {
            eprintln!("vbs-gateway: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("vbs-gateway: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match mode {
            Mode::Serve(config) => serve(*config).await,
            Mode::Simulator { listen, simulator, log } => simulate(listen, simulator, &log).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("vbs-gateway: {error}");
            ExitCode::FAILURE
        }
    }
}

type Failure = Box<dyn std::error::Error>;

async fn serve(mut config: Config) -> Result<(), Failure> {
    telemetry::init(&config.log);
    let embedded = match config.endpoint {
        Some(_) => None,
        None => {
            let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
            let simulator = Simulator::start(config.simulator.clone(), listener).await?;
            config.endpoint = Some(simulator.url().parse()?);
            Some(simulator)
        }
    };
    let app = App::new(&config)?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr()?;
    println!("vbs-gateway listening for gRPC on {address}");
    match (&embedded, &config.endpoint) {
        (Some(simulator), _) => {
            println!("upstream: embedded VBS simulator at {}", simulator.url());
            println!(
                "default project: {}",
                config.default_project_id.as_deref().unwrap_or("(none)")
            );
            println!(
                "simulated volumes:\n{}",
                simulator::describe_volumes(&simulator.volumes())
            );
        }
        (None, Some(endpoint)) => println!("upstream: {endpoint}"),
        (None, None) => {}
    }
    tracing::info!(%address, "serving");
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("drained; exiting");
    if let Some(simulator) = embedded {
        simulator.shutdown();
    }
    Ok(())
}

async fn simulate(listen: std::net::SocketAddr, config: SimulatorConfig, log: &LogConfig) -> Result<(), Failure> {
    telemetry::init(log);
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let simulator = Simulator::start(config, listener).await?;
    println!("VBS simulator serving the VBS REST API at {}", simulator.url());
    println!(
        "simulated volumes:\n{}",
        simulator::describe_volumes(&simulator.volumes())
    );
    shutdown_signal().await;
    simulator.shutdown();
    Ok(())
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(signal) => signal,
            Err(error) => {
                tracing::warn!(%error, "cannot watch SIGTERM; only Ctrl-C stops the gateway");
                let _ = interrupt.await;
                return;
            }
        };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown requested; draining in-flight calls");
}
