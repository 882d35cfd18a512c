//! `vbs-gateway job get|watch|wait`, and how a job is shown and followed for
//! every command that starts one (`--wait`).

use std::time::Duration;

use clap::Subcommand;

use super::connect::Session;
use super::output::{Format, fields, print, print_json, status_text, time};
use super::progress::{Followed, follow, is_terminal, outcome};
use super::{Failure, Outcome};
use crate::proto::pb::{self, WaitOutcome, job};
use crate::units::parse_duration;

/// What `vbs-gateway job` does.
#[derive(Debug, Subcommand)]
pub(crate) enum JobCommand {
    /// Show a job's current state.
    Get {
        /// Job id.
        job_id: String,
    },
    /// Follow a job to its end: a live line on a terminal, one line per change
    /// when piped (with -o json: each state as one JSON line). Exit 2 when it fails.
    Watch {
        /// Job id.
        job_id: String,
    },
    /// Wait (in one call) until a job is over, then show it. Exit 2 when it
    /// failed, 3 when --timeout ran out first.
    Wait {
        /// Job id.
        job_id: String,
        /// Longest time to wait, up to 1h (e.g. 90s, 10m); default: until the job is over.
        #[arg(long, value_parser = parse_duration)]
        timeout: Option<Duration>,
    },
}

pub(crate) async fn run(session: Session, command: JobCommand) -> Result<Outcome, Failure> {
    match command {
        JobCommand::Get { job_id } => {
            let request = pb::GetJobRequest {
                project_id: session.project_id.clone(),
                job_id,
            };
            let reply = session
                .jobs
                .clone()
                .get_job(session.request(request))
                .await?
                .into_inner();
            show_job(session.format, &reply.job.unwrap_or_default())?;
            Ok(Outcome::Done)
        }
        JobCommand::Watch { job_id } => follow_and_show(&session, &job_id, true).await,
        JobCommand::Wait { job_id, timeout } => wait(&session, job_id, timeout).await,
    }
}

/// Follows the job to its end, then shows its last state in the output
/// format; `each_state` (job watch) prints every state in JSON output.
pub(crate) async fn follow_and_show(session: &Session, job_id: &str, each_state: bool) -> Result<Outcome, Failure> {
    let each_state = each_state && session.format == Format::Json;
    match follow(session, job_id, each_state).await? {
        Followed::Over(job) => {
            if !each_state {
                show_job(session.format, &job)?;
            }
            Ok(outcome(&job))
        }
        Followed::Interrupted => {
            eprintln!("vbs-gateway: stopped watching; the job goes on (vbs-gateway job watch {job_id})");
            Ok(Outcome::Interrupted)
        }
    }
}

async fn wait(session: &Session, job_id: String, timeout: Option<Duration>) -> Result<Outcome, Failure> {
    let wire_timeout = timeout
        .map(prost_types::Duration::try_from)
        .transpose()
        .map_err(|e| Failure::Usage(format!("--timeout: {e}")))?;
    let mut request = tonic::Request::new(pb::WaitJobRequest {
        project_id: session.project_id.clone(),
        job_id,
        timeout: wire_timeout,
    });
    // The gateway answers when --timeout runs out; the deadline only guards against a silent gateway.
    if let Some(timeout) = timeout {
        request.set_timeout(timeout + session.call_timeout);
    }
    let reply = session.jobs.clone().wait_job(request).await?.into_inner();
    let job = reply.job.clone().unwrap_or_default();
    match session.format {
        Format::Json => print_json(&reply)?,
        Format::Table => print(&job_table(&job))?,
    }
    if reply.outcome() == WaitOutcome::Terminal || is_terminal(&job) {
        return Ok(outcome(&job));
    }
    eprintln!(
        "vbs-gateway: job {} is still {} (waited {})",
        job.job_id,
        status_text(&job.status_raw, job.status().as_str_name(), "JOB_STATUS_"),
        timeout.map_or("until the deadline".into(), |t| format!("{t:?}"))
    );
    Ok(Outcome::TimedOut)
}

/// Prints one job in the output format.
pub(crate) fn show_job(format: Format, job: &pb::Job) -> Result<(), Failure> {
    match format {
        Format::Json => print_json(job),
        Format::Table => print(&job_table(job)),
    }
}

/// A job as a key/value block: what it is, how it went, what it made.
pub(crate) fn job_table(job: &pb::Job) -> String {
    let mut pairs = vec![
        ("job", job.job_id.clone()),
        ("type", job.job_type.clone()),
        (
            "status",
            status_text(&job.status_raw, job.status().as_str_name(), "JOB_STATUS_"),
        ),
    ];
    pairs.extend(result_pairs(job));
    pairs.extend([
        ("began", time(job.begin_time.as_ref())),
        ("ended", time(job.end_time.as_ref())),
        ("error code", job.error_code.clone()),
        ("fail reason", job.fail_reason.clone()),
        ("operation", job.operation_name.clone()),
    ]);
    if !job.sub_jobs.is_empty() {
        let over = job.sub_jobs.iter().filter(|s| is_terminal(s)).count();
        pairs.push(("sub-jobs", format!("{over}/{} over", job.sub_jobs.len())));
    }
    fields(&pairs)
}

/// The typed result of the job types the gateway knows; the raw entities otherwise.
fn result_pairs(job: &pb::Job) -> Vec<(&'static str, String)> {
    match &job.result {
        Some(job::Result::Backup(result)) => vec![
            ("backup", result.backup_id.clone()),
            ("volume", result.volume_id.clone()),
            ("volume name", result.volume_name.clone()),
            ("snapshot", result.snapshot_id.clone()),
        ],
        Some(job::Result::Restore(result)) => vec![
            ("backup", result.backup_id.clone()),
            ("restored to", result.target_volume_id.clone()),
        ],
        Some(job::Result::Delete(result)) => vec![("backup", result.backup_id.clone())],
        None => {
            let mut entities: Vec<_> = job.entities.iter().collect();
            entities.sort();
            entities
                .into_iter()
                .map(|(key, value)| ("entity", format!("{key}={value}")))
                .collect()
        }
    }
}
