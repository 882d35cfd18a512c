//! `vbs-gateway backup create|list|get|restore|delete`: BackupService for
//! people; the writes that start a job can follow it with --wait.

use clap::{Args, Subcommand, ValueEnum};

use super::connect::Session;
use super::jobs::follow_and_show;
use super::output::{Format, Table, fields, print, print_json, status_text, time};
use super::{Failure, Outcome};
use crate::proto::longrunning::Operation;
use crate::proto::pb::{self, BackupStatus};

/// `--all` stops after this many pages: a gateway that kept handing out
/// tokens would otherwise keep the command going for ever.
pub(crate) const MAX_PAGES: usize = 10_000;

/// What `vbs-gateway backup` does.
#[derive(Debug, Subcommand)]
pub(crate) enum BackupCommand {
    /// Back up a disk: prints the job that makes the backup (--wait follows it).
    Create(CreateArgs),
    /// List backups with their details, one page at a time (--all: every page).
    List(ListArgs),
    /// Show one backup.
    Get {
        /// Backup id (UUID).
        backup_id: String,
    },
    /// Restore a disk from a backup: prints the restore job (--wait follows it).
    Restore {
        /// Backup id (UUID).
        backup_id: String,
        /// Disk to restore onto (UUID): available and at least as large as the backup.
        #[arg(long)]
        volume_id: String,
        #[command(flatten)]
        write: WriteArgs,
    },
    /// Delete a backup: prints the delete job (--wait follows it).
    Delete {
        /// Backup id (UUID).
        backup_id: String,
        #[command(flatten)]
        write: WriteArgs,
    },
}

/// `backup create`
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Disk to back up (UUID).
    #[arg(long)]
    volume_id: String,
    /// Backup name: 1 to 64 letters, digits, _ and -, not starting with "auto".
    #[arg(long)]
    name: String,
    /// Description, up to 64 characters.
    #[arg(long, default_value = "")]
    description: String,
    /// Snapshot of the disk to back up from (UUID); default: VBS takes one.
    #[arg(long, default_value = "")]
    snapshot_id: String,
    /// A full backup, even where an incremental one is possible.
    #[arg(long)]
    full: bool,
    /// A tag for the backup, KEY=VALUE; repeat for more.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<pb::Tag>,
    #[command(flatten)]
    write: WriteArgs,
}

/// What every write that starts a job takes.
#[derive(Debug, Args)]
pub(crate) struct WriteArgs {
    /// Follow the job to its end (a live line on a terminal); exit 2 when it fails.
    #[arg(long)]
    wait: bool,
    /// A UUID that makes running the same command again safe: the gateway
    /// answers a repeat with the first answer instead of acting twice.
    #[arg(long, default_value = "")]
    request_id: String,
}

/// `backup list`
#[derive(Debug, Args)]
pub(crate) struct ListArgs {
    /// Only backups of this disk (UUID).
    #[arg(long, default_value = "")]
    volume_id: String,
    /// Only backups with exactly this name.
    #[arg(long, default_value = "")]
    name: String,
    /// Only backups in this status.
    #[arg(long, value_enum)]
    status: Option<StatusArg>,
    /// Backups per page, 1 to 1000; default: the upstream default.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=1000))]
    page_size: i32,
    /// Start at this page (a previous list's next page token).
    #[arg(long, default_value = "")]
    page_token: String,
    /// Every page, following next_page_token to the last one.
    #[arg(long)]
    all: bool,
}

/// A backup status filter.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum StatusArg {
    Available,
    Error,
    Restoring,
    Creating,
    Deleting,
    ErrorRestoring,
}

impl From<StatusArg> for BackupStatus {
    fn from(status: StatusArg) -> BackupStatus {
        match status {
            StatusArg::Available => BackupStatus::Available,
            StatusArg::Error => BackupStatus::Error,
            StatusArg::Restoring => BackupStatus::Restoring,
            StatusArg::Creating => BackupStatus::Creating,
            StatusArg::Deleting => BackupStatus::Deleting,
            StatusArg::ErrorRestoring => BackupStatus::ErrorRestoring,
        }
    }
}

/// `KEY=VALUE` (the value may be empty) as a tag.
pub(crate) fn parse_tag(text: &str) -> Result<pb::Tag, String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok(pb::Tag {
            key: key.to_string(),
            value: value.to_string(),
        }),
        _ => Err(format!("{text:?}: expected KEY=VALUE")),
    }
}

pub(crate) async fn run(session: Session, command: BackupCommand) -> Result<Outcome, Failure> {
    match command {
        BackupCommand::Create(args) => create(&session, args).await,
        BackupCommand::List(args) => list(&session, args).await,
        BackupCommand::Get { backup_id } => get(&session, backup_id).await,
        BackupCommand::Restore {
            backup_id,
            volume_id,
            write,
        } => {
            let request = pb::RestoreBackupRequest {
                project_id: session.project_id.clone(),
                backup_id,
                volume_id,
                request_id: write.request_id.clone(),
            };
            let reply = session
                .backups
                .clone()
                .restore_backup(session.request(request))
                .await?
                .into_inner();
            started(&session, &reply, &reply.job_id, reply.operation.as_ref(), write.wait).await
        }
        BackupCommand::Delete { backup_id, write } => {
            let request = pb::DeleteCloudBackupRequest {
                project_id: session.project_id.clone(),
                backup_id,
                request_id: write.request_id.clone(),
            };
            // The one delete that hands back a job, so --wait can follow it.
            #[allow(deprecated)]
            let reply = session
                .backups
                .clone()
                .delete_cloud_backup(session.request(request))
                .await?;
            let reply = reply.into_inner();
            started(&session, &reply, &reply.job_id, reply.operation.as_ref(), write.wait).await
        }
    }
}

async fn create(session: &Session, args: CreateArgs) -> Result<Outcome, Failure> {
    let request = pb::CreateBackupRequest {
        project_id: session.project_id.clone(),
        volume_id: args.volume_id,
        snapshot_id: args.snapshot_id,
        name: args.name,
        description: args.description,
        tags: args.tags,
        full_backup: args.full.then_some(true),
        request_id: args.write.request_id,
    };
    let reply = session
        .backups
        .clone()
        .create_backup(session.request(request))
        .await?
        .into_inner();
    started(
        session,
        &reply,
        &reply.job_id,
        reply.operation.as_ref(),
        args.write.wait,
    )
    .await
}

/// A write started a job: follow it with --wait, or say how to.
async fn started<M: super::output::ProtoName>(
    session: &Session,
    reply: &M,
    job_id: &str,
    operation: Option<&Operation>,
    wait: bool,
) -> Result<Outcome, Failure> {
    if wait {
        return follow_and_show(session, job_id, false).await;
    }
    match session.format {
        Format::Json => print_json(reply)?,
        Format::Table => {
            let operation = operation.map(|o| o.name.clone()).unwrap_or_default();
            print(&fields(&[("job", job_id.to_string()), ("operation", operation)]))?;
            eprintln!("follow it with: vbs-gateway job watch {job_id}");
        }
    }
    Ok(Outcome::Done)
}

async fn list(session: &Session, args: ListArgs) -> Result<Outcome, Failure> {
    let mut request = pb::ListBackupDetailsRequest {
        project_id: session.project_id.clone(),
        name: args.name,
        status: args.status.map_or(BackupStatus::Unspecified, BackupStatus::from) as i32,
        volume_id: args.volume_id,
        page_size: args.page_size,
        page_token: args.page_token,
        ..Default::default()
    };
    let mut all = pb::ListBackupDetailsResponse::default();
    for _ in 0..MAX_PAGES {
        let page = session
            .backups
            .clone()
            .list_backup_details(session.request(request.clone()))
            .await?
            .into_inner();
        all.backups.extend(page.backups);
        all.next_page_token = page.next_page_token;
        if !args.all || all.next_page_token.is_empty() {
            break;
        }
        if all.next_page_token == request.page_token {
            return Err(Failure::Reply(
                "the gateway handed back the same page token twice".into(),
            ));
        }
        request.page_token = all.next_page_token.clone();
    }
    if args.all && !all.next_page_token.is_empty() {
        return Err(Failure::Reply(format!(
            "more than {MAX_PAGES} pages; narrow the list with filters"
        )));
    }
    match session.format {
        Format::Json => print_json(&all)?,
        Format::Table => {
            print(&backup_rows(&all.backups))?;
            if !all.next_page_token.is_empty() {
                eprintln!("more: --page-token {} (or --all)", all.next_page_token);
            }
        }
    }
    Ok(Outcome::Done)
}

fn backup_rows(backups: &[pb::Backup]) -> String {
    let mut table = Table::new(&["ID", "NAME", "STATUS", "VOLUME", "SIZE", "CREATED"]);
    for backup in backups {
        table.row(vec![
            backup.id.clone(),
            backup.name.clone(),
            backup_status(backup),
            backup.volume_id.clone(),
            format!("{} GB", backup.size),
            time(backup.created_at.as_ref()),
        ]);
    }
    table.render()
}

fn backup_status(backup: &pb::Backup) -> String {
    status_text(&backup.status_raw, backup.status().as_str_name(), "BACKUP_STATUS_")
}

async fn get(session: &Session, backup_id: String) -> Result<Outcome, Failure> {
    let request = pb::GetBackupRequest {
        project_id: session.project_id.clone(),
        backup_id,
    };
    let reply = session
        .backups
        .clone()
        .get_backup(session.request(request))
        .await?
        .into_inner();
    let backup = reply.backup.unwrap_or_default();
    match session.format {
        Format::Json => print_json(&backup)?,
        Format::Table => print(&backup_fields(&backup))?,
    }
    Ok(Outcome::Done)
}

fn backup_fields(backup: &pb::Backup) -> String {
    let description = backup.description.as_ref();
    let incremental = backup
        .is_incremental
        .or(description.and_then(|d| d.incremental))
        .map_or(String::new(), |yes| if yes { "yes" } else { "no" }.to_string());
    fields(&[
        ("id", backup.id.clone()),
        ("name", backup.name.clone()),
        ("status", backup_status(backup)),
        ("volume", backup.volume_id.clone()),
        ("size", format!("{} GB", backup.size)),
        ("incremental", incremental),
        ("description", description.map(|d| d.text.clone()).unwrap_or_default()),
        ("availability zone", backup.availability_zone.clone()),
        ("snapshot", backup.snapshot_id.clone()),
        ("created", time(backup.created_at.as_ref())),
        ("updated", time(backup.updated_at.as_ref())),
        ("data from", time(backup.data_timestamp.as_ref())),
        ("fail reason", backup.fail_reason.clone()),
        ("project", backup.tenant_id.clone()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_key_equals_value() {
        let tag = parse_tag("team=storage=ops").unwrap();
        assert_eq!((tag.key.as_str(), tag.value.as_str()), ("team", "storage=ops"));
        assert_eq!(parse_tag("empty=").unwrap().value, "");
        assert!(parse_tag("novalue").is_err());
        assert!(parse_tag("=value").is_err());
    }
}
