//! The process lifetime: parse and validate the configuration (exit 64 when it
//! is bad), start logging, start the embedded simulator when no endpoint is
//! set, serve gRPC, and drain in-flight calls on SIGINT or SIGTERM; or run one
//! client command (`backup`, `policy`, `job`: `vbs_gateway::cli`) and exit.

use std::process::ExitCode;

use tokio::net::TcpListener;
use vbs_gateway::app::App;
use vbs_gateway::config::{Cli, Config, LoadError, Mode};
use vbs_gateway::telemetry;
#[cfg(feature = "embedded-simulator")]
use {vbs_gateway::config::LogConfig, vbs_simulator::SimulatorConfig};

/// sysexits EX_USAGE: the configuration is wrong.
const EXIT_BAD_CONFIG: u8 = 64;

/// Every RPC allocates its request, its upstream call and its answer; glibc's
/// malloc took a tenth of the gateway's CPU in profiles, mimalloc much less.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let mode = match Cli::load() {
        Ok(mode) => mode,
        Err(LoadError::Usage(error)) if !error.use_stderr() => {
            // --help or --version
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(LoadError::Usage(error)) => {
            let _ = error.print();
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
        Err(LoadError::Config(error)) => {
            eprintln!("vbs-gateway: {error}");
            return ExitCode::from(EXIT_BAD_CONFIG);
        }
    };
    if let Mode::HashKey = mode {
        return hash_key();
    }
    let runtime = match runtime(mode.worker_threads()) {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("vbs-gateway: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    // The client calls a gateway and starts none of the server's machinery.
    let mode = match mode {
        Mode::Client(client) => return runtime.block_on(client.run()),
        mode => mode,
    };
    let result = runtime.block_on(async {
        match mode {
            Mode::Serve(config) => serve(*config).await,
            #[cfg(feature = "embedded-simulator")]
            Mode::Simulator {
                listen,
                simulator,
                beside,
                log,
                ..
            } => simulate(listen, *simulator, *beside, &log).await,
            Mode::HashKey | Mode::Client(_) => Ok(()),
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

/// `vbs-gateway hash-key`: the key on stdin (one trailing newline dropped)
/// becomes the `key_sha256` line of a callers file entry.
fn hash_key() -> ExitCode {
    let mut key = String::new();
    if let Err(error) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut key) {
        eprintln!("vbs-gateway hash-key: cannot read stdin: {error}");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    let key = key.strip_suffix('\n').unwrap_or(&key);
    let key = key.strip_suffix('\r').unwrap_or(key);
    if key.is_empty() {
        eprintln!("vbs-gateway hash-key: no key on stdin");
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    println!("{}", vbs_gateway::config::key_sha256_line(key));
    ExitCode::SUCCESS
}

/// The async runtime, with a chosen number of worker threads (default: one per core).
fn runtime(worker_threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = worker_threads {
        builder.worker_threads(threads);
    }
    builder.enable_all().build()
}

async fn serve(mut config: Config) -> Result<(), Failure> {
    telemetry::init(&config.log);
    warn_of_inline_secrets(&config);
    let embedded = start_embedded_simulator(&mut config).await?;
    let app = App::new(&config)?;
    if let Some(address) = config.metrics_listen {
        let listener = TcpListener::bind(address)
            .await
            .map_err(|e| format!("cannot listen for metrics on {address}: {e}"))?;
        println!("metrics at http://{}/metrics", listener.local_addr()?);
        if let Some(server) = app.serve_metrics(listener, std::future::pending()) {
            tokio::spawn(server);
        }
    }
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener.local_addr()?;
    println!("vbs-gateway listening for gRPC on {address}");
    match &embedded {
        Some(simulator) => describe_embedded(simulator, &config, &app.upstream_credentials()),
        None => println!(
            "upstream: {}",
            config.endpoint.as_ref().map_or("(none)".into(), |e| e.to_string())
        ),
    }
    tracing::info!(%address, "serving");
    app.serve(listener, shutdown_signal()).await?;
    tracing::info!("drained; exiting");
    if let Some(simulator) = embedded {
        stop_embedded(simulator);
    }
    Ok(())
}

/// A secret on the command line is readable by every local user (in
/// /proc/PID/cmdline and `ps`); files and the environment are not.
fn warn_of_inline_secrets(config: &Config) {
    if !config.bounds.inline_secrets.is_empty() {
        tracing::warn!(
            options = %config.bounds.inline_secrets.join(", "),
            "secrets given on the command line are visible to other local users; use the *-file options or the environment"
        );
    }
}

/// The simulator the demo runs in-process; a build without it has none.
#[cfg(feature = "embedded-simulator")]
type EmbeddedSimulator = vbs_gateway::demo::Embedded;
#[cfg(not(feature = "embedded-simulator"))]
type EmbeddedSimulator = std::convert::Infallible;

/// With no endpoint configured, the demo: the simulator in-process.
#[cfg(feature = "embedded-simulator")]
async fn start_embedded_simulator(config: &mut Config) -> Result<Option<EmbeddedSimulator>, Failure> {
    match config.endpoint {
        Some(_) => Ok(None),
        None => Ok(Some(vbs_gateway::demo::start(config).await?)),
    }
}

#[cfg(not(feature = "embedded-simulator"))]
async fn start_embedded_simulator(_: &mut Config) -> Result<Option<EmbeddedSimulator>, Failure> {
    Ok(None)
}

#[cfg(feature = "embedded-simulator")]
fn describe_embedded(simulator: &EmbeddedSimulator, config: &Config, credentials: &str) {
    println!(
        "upstream: embedded VBS simulator at {} ({credentials} checked)",
        simulator.url()
    );
    println!(
        "default project: {}",
        config.default_project_id.as_deref().unwrap_or("(none)")
    );
    println!(
        "simulated volumes:\n{}",
        vbs_simulator::describe_volumes(&simulator.volumes())
    );
    if let Some(csbs) = &simulator.csbs {
        println!("CSBS: embedded CSBS simulator at {}", csbs.url());
        println!(
            "simulated servers:\n{}",
            vbs_simulator::csbs::describe_servers(&csbs.servers())
        );
    }
    let others = vbs_gateway::demo::describe_other_services(&simulator.vbs);
    if !others.is_empty() {
        println!("{others}");
    }
}

#[cfg(not(feature = "embedded-simulator"))]
fn describe_embedded(simulator: &EmbeddedSimulator, _: &Config, _: &str) {
    match *simulator {}
}

#[cfg(feature = "embedded-simulator")]
fn stop_embedded(simulator: EmbeddedSimulator) {
    simulator.shutdown();
}

#[cfg(not(feature = "embedded-simulator"))]
fn stop_embedded(simulator: EmbeddedSimulator) {
    match simulator {}
}

#[cfg(feature = "embedded-simulator")]
async fn simulate(
    listen: std::net::SocketAddr,
    config: SimulatorConfig,
    beside: vbs_simulator::cli::Beside,
    log: &LogConfig,
) -> Result<(), Failure> {
    telemetry::init(log);
    vbs_simulator::cli::serve_alone(listen, config, beside, shutdown_signal()).await
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
