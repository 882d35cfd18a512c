//! `vbs-gateway policy ...`: BackupPolicyService for people (list, get,
//! create, update, delete, execute, enable, disable, tasks, associate,
//! disassociate).

use clap::{Args, Subcommand, ValueEnum};

use super::backups::{MAX_PAGES, parse_tag};
use super::connect::Session;
use super::output::{Format, ProtoName, Table, fields, print, print_json, status_text, time};
use super::{Failure, Outcome};
use crate::proto::pb::{self, PolicyStatus, TaskStatus, Weekday};

/// What `vbs-gateway policy` does.
#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// List the project's backup policies (--all: every page).
    List(PageArgs),
    /// Show one policy (read from the list: VBS has no single-policy read).
    Get {
        /// Policy id (UUID).
        policy_id: String,
    },
    /// Create a policy; prints its id.
    Create(CreateArgs),
    /// Change a policy: only the options given change.
    Update(UpdateArgs),
    /// Delete a policy; its disks are disassociated, backups stay.
    Delete(PolicyIdArgs),
    /// Run a policy now: one backup task per associated disk (see `policy tasks`).
    Execute(PolicyIdArgs),
    /// Let a policy run on its schedule.
    Enable(PolicyIdArgs),
    /// Stop a policy from running on its schedule.
    Disable(PolicyIdArgs),
    /// List the backup tasks a policy started, newest first.
    Tasks(TasksArgs),
    /// Associate disks with a policy.
    Associate(ResourcesArgs),
    /// Disassociate disks from a policy.
    Disassociate(ResourcesArgs),
}

/// Paging of a list.
#[derive(Debug, Args)]
pub(crate) struct PageArgs {
    /// Items per page, 1 to 1000; default: all (policies) or the upstream default (tasks).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(i32).range(0..=1000))]
    page_size: i32,
    /// Start at this page (a previous list's next page token).
    #[arg(long, default_value = "")]
    page_token: String,
    /// Every page, following next_page_token to the last one.
    #[arg(long)]
    all: bool,
}

/// A policy and a request id.
#[derive(Debug, Args)]
pub(crate) struct PolicyIdArgs {
    /// Policy id (UUID).
    policy_id: String,
    /// A UUID that makes running the same command again safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

/// `policy create`
#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Policy name: 1 to 64 letters, digits, _ and -, not starting with "default".
    #[arg(long)]
    name: String,
    /// Run times in UTC, full hours, e.g. "22:00" or "22:00,02:00".
    #[arg(long)]
    start_time: String,
    #[command(flatten)]
    schedule: ScheduleArgs,
    /// Keep the first backup of each month.
    #[arg(long)]
    keep_first_backup_of_month: bool,
    /// Create it switched off (it runs only when executed).
    #[arg(long)]
    disabled: bool,
    /// A tag for the policy, KEY=VALUE; repeat for more.
    #[arg(long = "tag", value_name = "KEY=VALUE", value_parser = parse_tag)]
    tags: Vec<pb::Tag>,
    /// A UUID that makes running the same command again safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

/// How often a policy runs and what it keeps.
#[derive(Debug, Args)]
pub(crate) struct ScheduleArgs {
    /// Days between runs (1 to 30 at create, 1 to 14 at update).
    #[arg(long, conflicts_with = "weekday")]
    frequency: Option<i32>,
    /// Run on these days of the week instead (repeat, or comma-separated).
    #[arg(long, value_enum, value_delimiter = ',')]
    weekday: Vec<WeekdayArg>,
    /// Number of backups to keep.
    #[arg(long, conflicts_with = "retention_day")]
    retention_num: Option<i32>,
    /// Days to keep backups.
    #[arg(long)]
    retention_day: Option<i32>,
}

/// `policy update`
#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    /// Policy id (UUID).
    policy_id: String,
    /// New name.
    #[arg(long, default_value = "")]
    name: String,
    /// New run times in UTC, e.g. "22:00".
    #[arg(long, default_value = "")]
    start_time: String,
    #[command(flatten)]
    schedule: ScheduleArgs,
    /// Keep the first backup of each month (true or false).
    #[arg(long)]
    keep_first_backup_of_month: Option<bool>,
    /// Switch the policy on or off.
    #[arg(long, value_enum)]
    status: Option<OnOff>,
    /// A UUID that makes running the same command again safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

/// `policy tasks`
#[derive(Debug, Args)]
pub(crate) struct TasksArgs {
    /// Policy id (UUID).
    policy_id: String,
    /// Only tasks in this status.
    #[arg(long, value_enum)]
    status: Option<TaskStatusArg>,
    /// Oldest first instead of newest first.
    #[arg(long)]
    oldest_first: bool,
    #[command(flatten)]
    page: PageArgs,
}

/// `policy associate|disassociate`
#[derive(Debug, Args)]
pub(crate) struct ResourcesArgs {
    /// Policy id (UUID).
    policy_id: String,
    /// A disk (UUID); repeat, or comma-separated.
    #[arg(long, required = true, value_delimiter = ',')]
    volume_id: Vec<String>,
    /// A UUID that makes running the same command again safe.
    #[arg(long, default_value = "")]
    request_id: String,
}

/// A day of the week.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum WeekdayArg {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

impl From<WeekdayArg> for Weekday {
    fn from(day: WeekdayArg) -> Weekday {
        match day {
            WeekdayArg::Mon => Weekday::Mon,
            WeekdayArg::Tue => Weekday::Tue,
            WeekdayArg::Wed => Weekday::Wed,
            WeekdayArg::Thu => Weekday::Thu,
            WeekdayArg::Fri => Weekday::Fri,
            WeekdayArg::Sat => Weekday::Sat,
            WeekdayArg::Sun => Weekday::Sun,
        }
    }
}

/// A policy's status.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum OnOff {
    On,
    Off,
}

impl From<OnOff> for PolicyStatus {
    fn from(status: OnOff) -> PolicyStatus {
        match status {
            OnOff::On => PolicyStatus::On,
            OnOff::Off => PolicyStatus::Off,
        }
    }
}

/// A task status filter.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum TaskStatusArg {
    Running,
    Waiting,
    ExecuteSuccess,
    ExecuteFail,
    ExecuteTimeout,
    Skip,
}

impl From<TaskStatusArg> for TaskStatus {
    fn from(status: TaskStatusArg) -> TaskStatus {
        match status {
            TaskStatusArg::Running => TaskStatus::Running,
            TaskStatusArg::Waiting => TaskStatus::Waiting,
            TaskStatusArg::ExecuteSuccess => TaskStatus::ExecuteSuccess,
            TaskStatusArg::ExecuteFail => TaskStatus::ExecuteFail,
            TaskStatusArg::ExecuteTimeout => TaskStatus::ExecuteTimeout,
            TaskStatusArg::Skip => TaskStatus::Skip,
        }
    }
}

pub(crate) async fn run(session: Session, command: PolicyCommand) -> Result<Outcome, Failure> {
    let project_id = session.project_id.clone();
    let mut client = session.policies.clone();
    match command {
        PolicyCommand::List(page) => list(&session, page).await,
        PolicyCommand::Get { policy_id } => get(&session, &policy_id).await,
        PolicyCommand::Create(args) => {
            let request = create_request(project_id, args);
            let reply = client
                .create_backup_policy(session.request(request))
                .await?
                .into_inner();
            done(&session, &reply, &[("policy", reply.backup_policy_id.clone())])
        }
        PolicyCommand::Update(args) => {
            let request = update_request(project_id, args);
            let reply = client
                .update_backup_policy(session.request(request))
                .await?
                .into_inner();
            done(&session, &reply, &[("updated", reply.backup_policy_id.clone())])
        }
        PolicyCommand::Delete(id) => {
            let request = pb::DeleteBackupPolicyRequest {
                project_id,
                backup_policy_id: id.policy_id.clone(),
                request_id: id.request_id,
            };
            let reply = client
                .delete_backup_policy(session.request(request))
                .await?
                .into_inner();
            done(&session, &reply, &[("deleted", id.policy_id)])
        }
        PolicyCommand::Execute(id) => {
            let request = pb::ExecuteBackupPolicyRequest {
                project_id,
                backup_policy_id: id.policy_id.clone(),
                request_id: id.request_id,
            };
            let reply = client
                .execute_backup_policy(session.request(request))
                .await?
                .into_inner();
            done(&session, &reply, &[("executing", id.policy_id)])
        }
        PolicyCommand::Enable(id) => {
            let request = pb::EnableBackupPolicyRequest {
                project_id,
                backup_policy_id: id.policy_id,
                request_id: id.request_id,
            };
            let reply = client
                .enable_backup_policy(session.request(request))
                .await?
                .into_inner();
            done(&session, &reply, &[("enabled", reply.backup_policy_id.clone())])
        }
        PolicyCommand::Disable(id) => {
            let request = pb::DisableBackupPolicyRequest {
                project_id,
                backup_policy_id: id.policy_id,
                request_id: id.request_id,
            };
            let reply = client
                .disable_backup_policy(session.request(request))
                .await?
                .into_inner();
            done(&session, &reply, &[("disabled", reply.backup_policy_id.clone())])
        }
        PolicyCommand::Tasks(args) => tasks(&session, args).await,
        PolicyCommand::Associate(args) => {
            let request = pb::AssociateResourcesRequest {
                project_id,
                backup_policy_id: args.policy_id,
                resources: volumes(args.volume_id),
                request_id: args.request_id,
            };
            let reply = client.associate_resources(session.request(request)).await?.into_inner();
            resources(&session, &reply, &reply.success_resources, &reply.fail_resources)
        }
        PolicyCommand::Disassociate(args) => {
            let request = pb::DisassociateResourcesRequest {
                project_id,
                backup_policy_id: args.policy_id,
                resources: volumes(args.volume_id),
                request_id: args.request_id,
            };
            let reply = client
                .disassociate_resources(session.request(request))
                .await?
                .into_inner();
            resources(&session, &reply, &reply.success_resources, &reply.fail_resources)
        }
    }
}

/// A write done: its reply in JSON, or a short confirmation.
fn done<M: ProtoName>(session: &Session, reply: &M, confirmation: &[(&str, String)]) -> Result<Outcome, Failure> {
    match session.format {
        Format::Json => print_json(reply)?,
        Format::Table => print(&fields(confirmation))?,
    }
    Ok(Outcome::Done)
}

fn create_request(project_id: String, args: CreateArgs) -> pb::CreateBackupPolicyRequest {
    let status = if args.disabled {
        PolicyStatus::Off
    } else {
        PolicyStatus::On
    };
    pb::CreateBackupPolicyRequest {
        project_id,
        backup_policy_name: args.name,
        scheduled_policy: Some(pb::ScheduledPolicy {
            start_time: args.start_time,
            frequency: args.schedule.frequency,
            week_frequency: weekdays(&args.schedule.weekday),
            retention_num: args.schedule.retention_num,
            retention_day: args.schedule.retention_day,
            remain_first_backup_of_cur_month: args.keep_first_backup_of_month.then_some(true),
            status: status as i32,
        }),
        tags: args.tags,
        request_id: args.request_id,
    }
}

fn update_request(project_id: String, args: UpdateArgs) -> pb::UpdateBackupPolicyRequest {
    let schedule = pb::ScheduledPolicyUpdate {
        start_time: args.start_time,
        frequency: args.schedule.frequency,
        week_frequency: weekdays(&args.schedule.weekday),
        retention_num: args.schedule.retention_num,
        retention_day: args.schedule.retention_day,
        remain_first_backup_of_cur_month: args.keep_first_backup_of_month,
        status: args.status.map_or(PolicyStatus::Unspecified, PolicyStatus::from) as i32,
    };
    pb::UpdateBackupPolicyRequest {
        project_id,
        backup_policy_id: args.policy_id,
        backup_policy_name: args.name,
        scheduled_policy: (schedule != pb::ScheduledPolicyUpdate::default()).then_some(schedule),
        request_id: args.request_id,
    }
}

fn weekdays(days: &[WeekdayArg]) -> Vec<i32> {
    days.iter().map(|d| Weekday::from(*d) as i32).collect()
}

fn volumes(ids: Vec<String>) -> Vec<pb::PolicyResource> {
    ids.into_iter()
        .map(|resource_id| pb::PolicyResource {
            resource_id,
            resource_type: "volume".into(),
        })
        .collect()
}

/// Every policy of the pages asked for.
async fn policies(session: &Session, page: &PageArgs) -> Result<pb::ListBackupPoliciesResponse, Failure> {
    let mut request = pb::ListBackupPoliciesRequest {
        project_id: session.project_id.clone(),
        page_size: page.page_size,
        page_token: page.page_token.clone(),
    };
    let mut all = pb::ListBackupPoliciesResponse::default();
    for _ in 0..MAX_PAGES {
        let reply = session
            .policies
            .clone()
            .list_backup_policies(session.request(request.clone()))
            .await?
            .into_inner();
        all.backup_policies.extend(reply.backup_policies);
        all.next_page_token = reply.next_page_token;
        if !page.all || all.next_page_token.is_empty() {
            return Ok(all);
        }
        if all.next_page_token == request.page_token {
            return Err(Failure::Reply(
                "the gateway handed back the same page token twice".into(),
            ));
        }
        request.page_token = all.next_page_token.clone();
    }
    Err(Failure::Reply(format!("more than {MAX_PAGES} pages")))
}

async fn list(session: &Session, page: PageArgs) -> Result<Outcome, Failure> {
    let all = policies(session, &page).await?;
    match session.format {
        Format::Json => print_json(&all)?,
        Format::Table => {
            let mut table = Table::new(&["ID", "NAME", "STATUS", "START", "RUNS", "KEEPS", "DISKS"]);
            for policy in &all.backup_policies {
                table.row(policy_row(policy));
            }
            print(&table.render())?;
            more(&all.next_page_token);
        }
    }
    Ok(Outcome::Done)
}

async fn get(session: &Session, policy_id: &str) -> Result<Outcome, Failure> {
    let every = PageArgs {
        page_size: 0,
        page_token: String::new(),
        all: true,
    };
    let all = policies(session, &every).await?;
    let Some(policy) = all
        .backup_policies
        .into_iter()
        .find(|p| p.backup_policy_id == policy_id)
    else {
        return Err(Failure::Status(tonic::Status::not_found(format!(
            "no backup policy {policy_id} in the project"
        ))));
    };
    match session.format {
        Format::Json => print_json(&policy)?,
        Format::Table => {
            let row = policy_row(&policy);
            let tags: Vec<String> = policy.tags.iter().map(|t| format!("{}={}", t.key, t.value)).collect();
            let [id, name, status, start, runs, keeps, disks] = row.try_into().unwrap_or_default();
            print(&fields(&[
                ("id", id),
                ("name", name),
                ("status", status),
                ("start", start),
                ("runs", runs),
                ("keeps", keeps),
                ("disks", disks),
                ("time zone", policy.time_zone.clone()),
                ("tags", tags.join(", ")),
            ]))?;
        }
    }
    Ok(Outcome::Done)
}

fn policy_row(policy: &pb::BackupPolicy) -> Vec<String> {
    let schedule = policy.scheduled_policy.clone().unwrap_or_default();
    let runs = match schedule.frequency {
        Some(1) => "every day".to_string(),
        Some(days) => format!("every {days} days"),
        None => schedule
            .week_frequency()
            .map(|d| d.as_str_name().trim_start_matches("WEEKDAY_").to_string())
            .collect::<Vec<_>>()
            .join(","),
    };
    let mut keeps = match (schedule.retention_num, schedule.retention_day) {
        (Some(count), _) => format!("{count} backups"),
        (None, Some(days)) => format!("{days} days"),
        (None, None) => String::new(),
    };
    if schedule.remain_first_backup_of_cur_month == Some(true) {
        keeps.push_str(" + first of month");
    }
    vec![
        policy.backup_policy_id.clone(),
        policy.backup_policy_name.clone(),
        status_text(&policy.status_raw, schedule.status().as_str_name(), "POLICY_STATUS_"),
        schedule.start_time.clone(),
        runs,
        keeps,
        policy.policy_resource_count.to_string(),
    ]
}

async fn tasks(session: &Session, args: TasksArgs) -> Result<Outcome, Failure> {
    let mut request = pb::ListBackupPolicyTasksRequest {
        project_id: session.project_id.clone(),
        backup_policy_id: args.policy_id,
        sort_order: if args.oldest_first { "asc" } else { "" }.into(),
        page_size: args.page.page_size,
        page_token: args.page.page_token.clone(),
        status: args.status.map_or(TaskStatus::Unspecified, TaskStatus::from) as i32,
        ..Default::default()
    };
    let mut all = pb::ListBackupPolicyTasksResponse::default();
    for _ in 0..MAX_PAGES {
        let reply = session
            .policies
            .clone()
            .list_backup_policy_tasks(session.request(request.clone()))
            .await?
            .into_inner();
        all.total_size = reply.total_size;
        all.tasks.extend(reply.tasks);
        all.next_page_token = reply.next_page_token;
        if !args.page.all || all.next_page_token.is_empty() {
            break;
        }
        if all.next_page_token == request.page_token {
            return Err(Failure::Reply(
                "the gateway handed back the same page token twice".into(),
            ));
        }
        request.page_token = all.next_page_token.clone();
    }
    match session.format {
        Format::Json => print_json(&all)?,
        Format::Table => {
            let mut table = Table::new(&["TASK", "STATUS", "DISK", "BACKUP", "CREATED", "FINISHED", "JOB"]);
            for task in &all.tasks {
                table.row(vec![
                    task.task_id.clone(),
                    status_text(&task.status_raw, task.status().as_str_name(), "TASK_STATUS_"),
                    task.resource_id.clone(),
                    task.backup_name.clone(),
                    time(task.created_at.as_ref()),
                    time(task.finished_at.as_ref()),
                    task.vbs_job_id.clone(),
                ]);
            }
            print(&table.render())?;
            more(&all.next_page_token);
        }
    }
    Ok(Outcome::Done)
}

fn resources<M: ProtoName>(
    session: &Session,
    reply: &M,
    succeeded: &[pb::ResourceResult],
    failed: &[pb::ResourceResult],
) -> Result<Outcome, Failure> {
    match session.format {
        Format::Json => print_json(reply)?,
        Format::Table => {
            let mut table = Table::new(&["DISK", "RESULT", "CODE", "MESSAGE"]);
            for done in succeeded {
                table.row(vec![
                    done.resource_id.clone(),
                    "ok".into(),
                    String::new(),
                    String::new(),
                ]);
            }
            for failure in failed {
                table.row(vec![
                    failure.resource_id.clone(),
                    "failed".into(),
                    failure.code.clone(),
                    failure.message.clone(),
                ]);
            }
            print(&table.render())?;
        }
    }
    Ok(Outcome::Done)
}

/// Says on stderr how to read the next page, so stdout stays the table.
fn more(next_page_token: &str) {
    if !next_page_token.is_empty() {
        eprintln!("more: --page-token {next_page_token} (or --all)");
    }
}
