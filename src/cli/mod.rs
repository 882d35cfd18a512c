//! The command line for people: `vbs-gateway backup|policy|job ...`, a gRPC
//! client of a running gateway in the same binary. It never starts the
//! server's machinery; it only calls the three services.
//!
//! Exit codes: 0 done (a followed job ended SUCCESS), 1 the gateway answered
//! with an error, 2 a followed job ended FAIL, 3 `job wait --timeout` ran out
//! before the job ended, 64 a flag or file that cannot be used, 69 the gateway
//! (or VBS behind it) is unavailable, 74 stdout could not be written, 130
//! interrupted (Ctrl-C) while following a job.

use std::process::ExitCode;

use clap::{Args, Subcommand};

mod backups;
mod connect;
mod jobs;
mod output;
mod policies;
mod progress;

pub use connect::{ClientArgs, KEY_ENV};
pub use output::Format;

/// The gateway answered with an error status.
pub const EXIT_ERROR: u8 = 1;
/// A followed job ended FAIL.
pub const EXIT_JOB_FAILED: u8 = 2;
/// `job wait --timeout` ran out before the job ended.
pub const EXIT_TIMEOUT: u8 = 3;
/// sysexits EX_USAGE: a flag or file that cannot be used.
pub const EXIT_USAGE: u8 = 64;
/// sysexits EX_UNAVAILABLE: the gateway cannot be reached, or answered UNAVAILABLE.
pub const EXIT_UNAVAILABLE: u8 = 69;
/// sysexits EX_IOERR: the output could not be written.
pub const EXIT_IO: u8 = 74;
/// 128 + SIGINT: stopped by Ctrl-C while following a job.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The client subcommands, each with the connection flags of `ClientArgs`.
#[derive(Debug, Subcommand)]
pub enum Client {
    /// Backups of disks: create, list, get, restore, delete (a client of a running gateway).
    Backup(BackupArgs),
    /// Backup policies: list, get, create, update, delete, execute, enable, disable, tasks.
    Policy(PolicyArgs),
    /// Jobs: get, watch (a live progress line), wait.
    Job(JobArgs),
}

/// `vbs-gateway backup ...`
#[derive(Debug, Args)]
pub struct BackupArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: backups::BackupCommand,
}

/// `vbs-gateway policy ...`
#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: policies::PolicyCommand,
}

/// `vbs-gateway job ...`
#[derive(Debug, Args)]
pub struct JobArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: jobs::JobCommand,
}

/// How a command that did not fail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Done; a followed job ended SUCCESS.
    Done,
    /// A followed job ended FAIL.
    JobFailed,
    /// The wait ran out before the job ended.
    TimedOut,
    /// Ctrl-C while following a job.
    Interrupted,
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Failure {
    /// A flag value or a file named by a flag cannot be used.
    #[error("{0}")]
    Usage(String),
    /// No connection to the gateway.
    #[error("{0}")]
    Unreachable(String),
    /// The gateway answered with an error.
    #[error("{}", output::describe_status(.0))]
    Status(#[from] tonic::Status),
    /// Writing the output failed.
    #[error("cannot write the output: {0}")]
    Output(#[from] std::io::Error),
    /// A reply the command cannot show (a gateway of another contract).
    #[error("{0}")]
    Reply(String),
}

impl Client {
    /// Runs the command and says how the process exits. Errors go to stderr.
    pub async fn run(self) -> ExitCode {
        let result = match self {
            Client::Backup(args) => match connect::connect(&args.client).await {
                Ok(session) => backups::run(session, args.command).await,
                Err(failure) => Err(failure),
            },
            Client::Policy(args) => match connect::connect(&args.client).await {
                Ok(session) => policies::run(session, args.command).await,
                Err(failure) => Err(failure),
            },
            Client::Job(args) => match connect::connect(&args.client).await {
                Ok(session) => jobs::run(session, args.command).await,
                Err(failure) => Err(failure),
            },
        };
        ExitCode::from(exit_code(result))
    }
}

fn exit_code(result: Result<Outcome, Failure>) -> u8 {
    match result {
        Ok(Outcome::Done) => 0,
        Ok(Outcome::JobFailed) => EXIT_JOB_FAILED,
        Ok(Outcome::TimedOut) => EXIT_TIMEOUT,
        Ok(Outcome::Interrupted) => EXIT_INTERRUPTED,
        Err(Failure::Output(error)) if error.kind() == std::io::ErrorKind::BrokenPipe => {
            // `vbs-gateway backup list | head`: the reader had enough.
            0
        }
        Err(failure) => {
            eprintln!("vbs-gateway: {failure}");
            match failure {
                Failure::Usage(_) => EXIT_USAGE,
                Failure::Unreachable(_) => EXIT_UNAVAILABLE,
                Failure::Status(status) if status.code() == tonic::Code::Unavailable => EXIT_UNAVAILABLE,
                Failure::Status(_) | Failure::Reply(_) => EXIT_ERROR,
                Failure::Output(_) => EXIT_IO,
            }
        }
    }
}
