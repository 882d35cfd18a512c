//! The crate's error type and the ONE table that turns errors into gRPC
//! statuses with google.rpc details (ErrorInfo always, BadRequest with a
//! reason per field for bad input, RetryInfo when waiting helps). Nothing
//! else builds a Status.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::proto::pb;
use crate::rest::error::{CLIENT_TEXT_LIMIT, TransportKind, UpstreamFault, cut};
use crate::rest::{Operation, RestError};
use crate::store::idempotency::{Answer, StoreError};
use crate::watch::WatchError;
use vbs_rules::Problem;

/// The ErrorInfo domain of every error this gateway returns.
pub(crate) const DOMAIN: &str = "vbs-gateway";

/// VBS codes that mean "not in this state now", answered with HTTP 400.
const STATE_CODES: &[&str] = &[
    "VolumeBackup.0012",
    "VolumeBackup.0013",
    "VolumeBackup.0089",
    "VolumeBackup.0113",
    "VolumeBackup.0202",
    "VolumeBackup.0205",
    "VolumeBackup.0206",
    "AutoBackup.0206",
    "AutoBackup.0225",
    // CSBS (its error code table): the server is stopped, busy, of a type or
    // status that cannot be protected, has no disk or a shared disk, or is restoring.
    "CSBS.6001",
    "CSBS.6005",
    "CSBS.6006",
    "CSBS.6007",
    "CSBS.6010",
    "CSBS.6015",
];

/// Codes that mean "no such resource" though answered with HTTP 400.
const NOT_FOUND_CODES: &[&str] = &[
    // CSBS: "server do not exist".
    "CSBS.6000",
];

/// VBS codes that mean "a quota or limit is used up", answered with HTTP 400.
const QUOTA_CODES: &[&str] = &[
    "VolumeBackup.0040",
    "VolumeBackup.0050",
    "VolumeBackup.0071",
    "VolumeBackup.0072",
    "VolumeBackup.0073",
    "VolumeBackup.0074",
    "VolumeBackup.0075",
    "VolumeBackup.0076",
    "VolumeBackup.0077",
    "VolumeBackup.0078",
    "VolumeBackup.0079",
    "VolumeBackup.0080",
    "VolumeBackup.0081",
    "VolumeBackup.0082",
    "VolumeBackup.0083",
    "VolumeBackup.0084",
    "AutoBackup.0203",
    "AutoBackup.0204",
    "AutoBackup.0217",
    "AutoBackup.0218",
    // CSBS: "Service over limit".
    "CSBS.0001",
];

/// ErrorInfo reason of an invalid request whose violations have different
/// reasons; each BadRequest violation still carries its own.
pub(crate) const MULTIPLE_VIOLATIONS: &str = "MULTIPLE_VIOLATIONS";

/// One broken rule of a request field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FieldViolation {
    /// Field path as in the proto, e.g. "scheduled_policy.frequency".
    pub(crate) field: String,
    /// The kind of rule broken; its reason is what clients match on.
    pub(crate) problem: Problem,
    pub(crate) description: String,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum Error {
    /// The request breaks documented rules; nothing was sent upstream.
    #[error("invalid request: {}", describe(.0))]
    InvalidArgument(Vec<FieldViolation>),
    /// The gateway looked for something upstream and it is not there.
    #[error("{what} {id} not found")]
    NotFound { what: &'static str, id: String },
    #[error(transparent)]
    Rest(#[from] RestError),
    /// A job watch ended without the job's terminal state.
    #[error(transparent)]
    Watch(#[from] WatchError<RestError>),
    /// A `request_id` already used for a different request.
    #[error("request_id was already used for a different request")]
    RequestIdReused,
    /// The caller's deadline passed while its write, already sent, goes on.
    #[error("the caller's deadline passed while its write goes on")]
    WriteContinues,
    /// The idempotency records cannot be read or written.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A failure after the write was done upstream (a follow-up lookup).
    #[error("after the write was done: {0}")]
    AfterWrite(Box<Error>),
    /// The gateway's drain timeout passed while the call was still running.
    #[error("the gateway shut down before the call finished")]
    Drained,
    /// The front door turned the call away; nothing was read or sent.
    #[error("{0}")]
    Refused(Refusal),
    /// The shared log of started operations cannot be read.
    #[error("the operation log is unavailable: {0}")]
    OperationLog(StoreError),
    /// An Operations call VBS jobs cannot support.
    #[error("{what}")]
    OperationUnsupported { reason: &'static str, what: &'static str },
    /// A service the gateway has no upstream for (no endpoint, no embedded
    /// simulator); `flag` is what configures one.
    #[error("{service} is not configured: give {flag}")]
    NotConfigured { service: &'static str, flag: &'static str },
}

/// Why the front door turned a call away. Never holds a key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refusal {
    /// No known identity: no key, an unknown key, or an unknown certificate.
    /// The request of an unknown caller is never read, so its project is not known.
    #[error("no known caller identity for {method}")]
    CallerUnknown { method: String },
    /// A known caller outside its role or its projects.
    #[error("caller {caller} ({role}) may not call {method} in project {project}")]
    CallerNotAllowed {
        caller: Arc<str>,
        role: &'static str,
        method: String,
        project: String,
    },
    /// The caller used up its calls per second.
    #[error("caller {caller} is over its call rate")]
    RateLimited {
        caller: Arc<str>,
        method: String,
        retry_after: Duration,
    },
    /// The caller holds its maximum of open job watches.
    #[error("caller {caller} holds its maximum of {limit} open watches")]
    TooManyWatches {
        caller: Arc<str>,
        method: String,
        limit: usize,
    },
}

/// A watch slot frees when another watch of the caller ends; a hint, not a promise.
const WATCH_RETRY_AFTER: Duration = Duration::from_secs(1);
/// A shutting-down gateway answers no more; another instance behind the same
/// address can, at once: a short pause lets the balancer take this one out.
const SHUTDOWN_RETRY_AFTER: Duration = Duration::from_secs(1);

impl Refusal {
    /// The stable reason, also the metrics label of the refusal.
    pub(crate) fn reason(&self) -> &'static str {
        match self {
            Refusal::CallerUnknown { .. } => "CALLER_UNKNOWN",
            Refusal::CallerNotAllowed { .. } => "CALLER_NOT_ALLOWED",
            Refusal::RateLimited { .. } => "CALLER_RATE_LIMITED",
            Refusal::TooManyWatches { .. } => "CALLER_TOO_MANY_WATCHES",
        }
    }
}

fn refusal_status(refusal: &Refusal) -> Status {
    // The access-log line already says who was refused; this adds why.
    tracing::debug!(reason = refusal.reason(), "{refusal}");
    let (code, message, metadata, retry_after) = match refusal {
        Refusal::CallerUnknown { method } => (
            Code::Unauthenticated,
            "a known caller identity is required: send `authorization: Bearer <key>` or a client certificate"
                .to_string(),
            HashMap::from([("method".to_string(), method.clone())]),
            None,
        ),
        Refusal::CallerNotAllowed {
            role, method, project, ..
        } => (
            Code::PermissionDenied,
            format!("the caller's role ({role}) or projects do not allow {method} in project {project}"),
            HashMap::from([
                ("method".to_string(), method.clone()),
                ("project".to_string(), project.clone()),
            ]),
            None,
        ),
        Refusal::RateLimited {
            method, retry_after, ..
        } => (
            Code::ResourceExhausted,
            "the caller is over its calls per second; retry later".to_string(),
            HashMap::from([("method".to_string(), method.clone())]),
            Some(*retry_after),
        ),
        Refusal::TooManyWatches { method, limit, .. } => (
            Code::ResourceExhausted,
            format!("the caller holds its maximum of {limit} open watches; end one first"),
            HashMap::from([("method".to_string(), method.clone())]),
            Some(WATCH_RETRY_AFTER),
        ),
    };
    let mut details = error_info(refusal.reason(), metadata);
    if let Some(delay) = retry_after {
        details.set_retry_info(Some(delay));
    }
    Status::with_error_details(code, message, details)
}

fn describe(violations: &[FieldViolation]) -> String {
    violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ")
}

impl Error {
    /// Failures that prove nothing was done upstream and that a retry may
    /// cure: the request was never sent (no connection, no credentials), or
    /// the API gateway turned it away before VBS saw it (429, 503). An
    /// idempotent write does not record them, so a retry with the same
    /// `request_id` runs again. Every other failure, a timeout above all
    /// (VBS may have acted), is recorded and replayed.
    pub(crate) fn left_nothing_upstream(&self) -> bool {
        matches!(
            self,
            Error::Rest(
                RestError::Transport {
                    kind: TransportKind::Connect,
                    ..
                } | RestError::Credentials { .. }
                    | RestError::BudgetExhausted { .. }
                    | RestError::Status { status: 429 | 503, .. }
            ) | Error::Store(_)
        )
    }

    pub(crate) fn invalid(field: impl Into<String>, problem: Problem, description: impl Into<String>) -> Error {
        Error::InvalidArgument(vec![FieldViolation {
            field: field.into(),
            problem,
            description: description.into(),
        }])
    }
}

/// A row of the table: what the client sees.
struct Row {
    code: Code,
    reason: &'static str,
    message: String,
}

impl Row {
    fn new(code: Code, reason: &'static str, message: impl Into<String>) -> Row {
        Row {
            code,
            reason,
            message: message.into(),
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::InvalidArgument(violations) => invalid_argument_status(&violations),
            Error::NotFound { what, id } => {
                let message = format!("{what} {id} not found");
                Status::with_error_details(Code::NotFound, message, error_info("NOT_FOUND", HashMap::new()))
            }
            Error::Rest(rest) => Status::from(rest),
            Error::Watch(WatchError::Upstream(rest)) => rest_status(&rest),
            Error::Watch(WatchError::ShuttingDown) => Status::with_error_details(
                Code::Unavailable,
                "the gateway is shutting down; watch again, on another instance, to resume",
                shutting_down(),
            ),
            Error::Drained => Status::with_error_details(
                Code::Unavailable,
                "the gateway shut down before the call finished; it may or may not have reached VBS",
                shutting_down(),
            ),
            Error::Watch(WatchError::TooManyJobs { limit }) => {
                let mut details = error_info("TOO_MANY_WATCHED_JOBS", HashMap::new());
                details.set_retry_info(Some(WATCH_RETRY_AFTER));
                Status::with_error_details(
                    Code::ResourceExhausted,
                    format!("the gateway already polls its maximum of {limit} jobs (--max-watched-jobs); retry later"),
                    details,
                )
            }
            Error::Watch(WatchError::Interrupted) => Status::with_error_details(
                Code::Unavailable,
                "the watch was interrupted; watch again to resume",
                error_info("WATCH_INTERRUPTED", HashMap::new()),
            ),
            Error::RequestIdReused => {
                let mut details = error_info("REQUEST_ID_REUSED", HashMap::new());
                details.set_bad_request(vec![tonic_types::FieldViolation {
                    field: "request_id".into(),
                    description: "was already used for a different request".into(),
                    reason: "REQUEST_ID_REUSED".into(),
                    localized_message: None,
                }]);
                Status::with_error_details(
                    Code::InvalidArgument,
                    "request_id was already used for a different request; use a new one",
                    details,
                )
            }
            Error::WriteContinues => Status::with_error_details(
                Code::DeadlineExceeded,
                "the call's deadline passed before VBS answered; the write goes on, \
                 and a retry with the same request_id gets its answer",
                error_info("DEADLINE_EXCEEDED", HashMap::new()),
            ),
            Error::Store(error) => {
                tracing::warn!(%error, "idempotency store failed");
                Status::with_error_details(
                    Code::Unavailable,
                    "the gateway cannot check request_id now; retry",
                    error_info("IDEMPOTENCY_STORE_UNAVAILABLE", HashMap::new()),
                )
            }
            Error::AfterWrite(error) => Status::from(*error),
            Error::Refused(refusal) => refusal_status(&refusal),
            Error::OperationLog(error) => {
                tracing::warn!(%error, "operation log failed");
                Status::with_error_details(
                    Code::Unavailable,
                    "the gateway cannot read its list of operations now; retry",
                    error_info("OPERATION_LOG_UNAVAILABLE", HashMap::new()),
                )
            }
            Error::OperationUnsupported { reason, what } => {
                Status::with_error_details(Code::Unimplemented, what, error_info(reason, HashMap::new()))
            }
            Error::NotConfigured { service, flag } => Status::with_error_details(
                Code::Unimplemented,
                format!("{service} is not configured on this gateway; start it with {flag}"),
                error_info(
                    "SERVICE_NOT_CONFIGURED",
                    HashMap::from([
                        ("service".to_string(), service.to_string()),
                        ("flag".to_string(), flag.to_string()),
                    ]),
                ),
            ),
        }
    }
}

/// A failed backup of another service (CSBS) as an operation's `error`:
/// UNKNOWN, the fail reason, and ErrorInfo BACKUP_FAILED with the upstream's
/// failure code and the backup id.
pub(crate) fn backup_failure(fail_code: &str, fail_reason: &str, backup_id: &str) -> tonic_types::pb::Status {
    let mut metadata = HashMap::from([("backupId".to_string(), backup_id.to_string())]);
    if !fail_code.is_empty() {
        metadata.insert("upstreamCode".to_string(), fail_code.to_string());
    }
    let message = match fail_reason {
        "" => "the backup failed".to_string(),
        reason => cut(reason, CLIENT_TEXT_LIMIT).into_owned(),
    };
    rpc_status(Status::with_error_details(
        Code::Unknown,
        message,
        error_info("BACKUP_FAILED", metadata),
    ))
}

/// A status as the google.rpc.Status message its details already are.
fn rpc_status(status: Status) -> tonic_types::pb::Status {
    prost::Message::decode(status.details()).unwrap_or_else(|_| tonic_types::pb::Status {
        code: status.code() as i32,
        message: status.message().to_string(),
        details: Vec::new(),
    })
}

/// A failed job as an operation's `error`: the code its VBS error code
/// means (UNKNOWN when it says nothing the table knows), the fail reason,
/// and ErrorInfo JOB_FAILED with the VBS code and the job id.
pub(crate) fn job_failure(job: &pb::Job) -> tonic_types::pb::Status {
    let vbs_code = job.error_code.as_str();
    let code = if STATE_CODES.contains(&vbs_code) {
        Code::FailedPrecondition
    } else if QUOTA_CODES.contains(&vbs_code) {
        Code::ResourceExhausted
    } else {
        Code::Unknown
    };
    let mut metadata = HashMap::from([("jobId".to_string(), job.job_id.clone())]);
    if !vbs_code.is_empty() {
        metadata.insert("vbsCode".to_string(), vbs_code.to_string());
    }
    let message = match job.fail_reason.as_str() {
        "" => "the job failed".to_string(),
        reason => cut(reason, CLIENT_TEXT_LIMIT).into_owned(),
    };
    // The details tonic encodes are the google.rpc.Status itself.
    rpc_status(Status::with_error_details(
        code,
        message,
        error_info("JOB_FAILED", metadata),
    ))
}

/// ErrorInfo reason: the violations' one reason, or MULTIPLE_VIOLATIONS;
/// metadata `fields` names the fields. BadRequest carries each violation
/// with its own reason.
fn invalid_argument_status(violations: &[FieldViolation]) -> Status {
    tracing::debug!(error = %describe(violations), "rejected an invalid request");
    let reason = match violations.split_first() {
        Some((first, rest)) if rest.iter().all(|v| v.problem == first.problem) => first.problem.reason(),
        _ => MULTIPLE_VIOLATIONS,
    };
    let mut fields: Vec<&str> = Vec::new();
    for v in violations {
        if !fields.contains(&v.field.as_str()) {
            fields.push(&v.field);
        }
    }
    let mut details = error_info(reason, HashMap::from([("fields".to_string(), fields.join(","))]));
    details.set_bad_request(
        violations
            .iter()
            .map(|v| tonic_types::FieldViolation {
                field: v.field.clone(),
                description: v.description.clone(),
                reason: v.problem.reason().to_string(),
                localized_message: None,
            })
            .collect::<Vec<_>>(),
    );
    Status::with_error_details(
        Code::InvalidArgument,
        format!("invalid request: {}", describe(violations)),
        details,
    )
}

/// SHUTTING_DOWN, with the pause before asking again (elsewhere).
fn shutting_down() -> ErrorDetails {
    let mut details = error_info("SHUTTING_DOWN", HashMap::new());
    details.set_retry_info(Some(SHUTDOWN_RETRY_AFTER));
    details
}

/// A status in the parts an idempotency store keeps.
pub(crate) fn recordable(status: Status) -> Answer {
    Answer::Failure {
        code: status.code() as i32,
        message: status.message().to_string(),
        details: status.details().to_vec(),
    }
}

/// A recorded failure as the status it was first answered with.
pub(crate) fn replayed(answer: Answer) -> Status {
    match answer {
        Answer::Failure { code, message, details } => Status::with_details(Code::from(code), message, details.into()),
        Answer::Reply(_) => Status::internal("a recorded reply is not a failure"),
    }
}

impl From<RestError> for Status {
    fn from(error: RestError) -> Status {
        rest_status(&error)
    }
}

/// By reference, because a failed poll is shared by every watcher of the job.
fn rest_status(error: &RestError) -> Status {
    log(error);
    let row = row_for(error);
    let mut metadata = HashMap::from([("operation".to_string(), error.operation().name().to_string())]);
    if error.operation().service() != "VBS" {
        metadata.insert("service".into(), error.operation().service().to_string());
    }
    let mut retry_after = None;
    if let RestError::Status {
        status,
        fault,
        retry_after: after,
        ..
    } = error
    {
        metadata.insert("httpStatus".into(), status.to_string());
        if let Some(code) = &fault.code {
            metadata.insert("vbsCode".into(), code.clone());
        }
        if let Some(message) = &fault.message {
            metadata.insert("vbsMessage".into(), cut(message, CLIENT_TEXT_LIMIT).into_owned());
        }
        retry_after = retry_delay(*status, *after);
    }
    if let RestError::BudgetExhausted { retry_after: after, .. } = error {
        retry_after = Some(*after);
    }
    if let Some(status) = error.http_status() {
        metadata
            .entry("httpStatus".into())
            .or_insert_with(|| status.to_string());
    }
    let mut details = error_info(row.reason, metadata);
    if let Some(delay) = retry_after {
        details.set_retry_info(Some(delay));
    }
    Status::with_error_details(row.code, row.message, details)
}

fn error_info(reason: &'static str, metadata: HashMap<String, String>) -> ErrorDetails {
    let mut details = ErrorDetails::new();
    details.set_error_info(reason, DOMAIN, metadata);
    details
}

/// RetryInfo only where waiting helps and upstream said how long.
fn retry_delay(status: u16, retry_after: Option<Duration>) -> Option<Duration> {
    matches!(status, 429 | 503).then_some(retry_after).flatten()
}

fn row_for(error: &RestError) -> Row {
    let operation = error.operation();
    let service = operation.service();
    match error {
        RestError::UnsafePathSegment { segment, .. } => Row::new(
            Code::InvalidArgument,
            "UNSAFE_ID",
            format!("{segment:?} is not a valid id"),
        ),
        RestError::Build { .. } => Row::new(
            Code::Internal,
            "REQUEST_BUILD_FAILED",
            "the gateway could not build the upstream request",
        ),
        RestError::Transport {
            kind: TransportKind::Timeout,
            ..
        } => Row::new(
            Code::DeadlineExceeded,
            "UPSTREAM_TIMEOUT",
            format!("{service} did not answer in time"),
        ),
        RestError::Transport { .. } => Row::new(
            Code::Unavailable,
            "UPSTREAM_UNAVAILABLE",
            format!("{service} is unreachable"),
        ),
        RestError::DeadlineExceeded { .. } => Row::new(
            Code::DeadlineExceeded,
            "DEADLINE_EXCEEDED",
            format!("the call's deadline passed before {service} answered"),
        ),
        RestError::Decode { .. } => Row::new(
            Code::Internal,
            "UPSTREAM_BAD_RESPONSE",
            format!("{service} sent a response the gateway cannot read"),
        ),
        // INTERNAL, not UNAVAILABLE: the same request would most likely get
        // the same oversized answer, so a client should not simply retry.
        RestError::BodyTooLarge { limit, .. } => Row::new(
            Code::Internal,
            "UPSTREAM_BODY_TOO_LARGE",
            format!("{service} sent a response over the gateway's {limit}-byte limit (--max-upstream-body)"),
        ),
        RestError::BudgetExhausted { .. } => Row::new(
            Code::ResourceExhausted,
            "UPSTREAM_BUDGET_EXHAUSTED",
            "the project's budget of upstream requests (--upstream-rate) is used up; retry later",
        ),
        // ZStack sessions come from ZStack's own login, not from IAM.
        RestError::Credentials { rejected: true, .. } if service == "ZStack" => Row::new(
            Code::Unauthenticated,
            "CREDENTIALS_REJECTED",
            "ZStack refused the gateway's login; check --zstack-account and its password",
        ),
        RestError::Credentials { .. } if service == "ZStack" => Row::new(
            Code::Unavailable,
            "CREDENTIALS_UNAVAILABLE",
            "the gateway could not log in to ZStack",
        ),
        RestError::Credentials { rejected: true, .. } => Row::new(
            Code::Unauthenticated,
            "CREDENTIALS_REJECTED",
            "IAM rejected the gateway's user; check its configuration",
        ),
        RestError::Credentials { .. } => Row::new(
            Code::Unavailable,
            "CREDENTIALS_UNAVAILABLE",
            "the gateway could not obtain an IAM token",
        ),
        RestError::Status { status, fault, .. } => status_row(*status, fault, operation),
    }
}

fn status_row(status: u16, fault: &UpstreamFault, operation: Operation) -> Row {
    let creates = operation.creates();
    let code_is = |set: &[&str]| fault.code.as_deref().is_some_and(|c| set.contains(&c));
    let (code, reason, summary) = match status {
        400 if code_is(NOT_FOUND_CODES) => (
            Code::NotFound,
            "UPSTREAM_NOT_FOUND",
            "{service} could not find the resource",
        ),
        400 if code_is(STATE_CODES) => (
            Code::FailedPrecondition,
            "UPSTREAM_FAILED_PRECONDITION",
            "the resource is not in a state that allows this",
        ),
        400 if code_is(QUOTA_CODES) => (
            Code::ResourceExhausted,
            "UPSTREAM_QUOTA_EXCEEDED",
            "a {service} quota or limit is used up",
        ),
        401 => (
            Code::Unauthenticated,
            "UPSTREAM_UNAUTHENTICATED",
            "{service} did not accept the call's credentials",
        ),
        403 => (
            Code::PermissionDenied,
            "UPSTREAM_PERMISSION_DENIED",
            "{service} denied the operation",
        ),
        404 => (
            Code::NotFound,
            "UPSTREAM_NOT_FOUND",
            "{service} could not find the resource",
        ),
        405 | 501 => (
            Code::Unimplemented,
            "UPSTREAM_UNIMPLEMENTED",
            "{service} does not support this operation",
        ),
        408 | 504 => (
            Code::DeadlineExceeded,
            "UPSTREAM_TIMEOUT",
            "{service} did not answer in time",
        ),
        409 if creates => (
            Code::AlreadyExists,
            "UPSTREAM_ALREADY_EXISTS",
            "the resource already exists",
        ),
        409 => (
            Code::Aborted,
            "UPSTREAM_CONFLICT",
            "the operation conflicted with another change",
        ),
        429 => (
            Code::ResourceExhausted,
            "UPSTREAM_RATE_LIMITED",
            "{service} is rate limiting the gateway",
        ),
        500 => (Code::Internal, "UPSTREAM_INTERNAL", "{service} failed internally"),
        502 | 503 => (Code::Unavailable, "UPSTREAM_UNAVAILABLE", "{service} is unavailable"),
        400..=499 => (
            Code::InvalidArgument,
            "UPSTREAM_INVALID_ARGUMENT",
            "{service} rejected the request",
        ),
        _ => (Code::Unavailable, "UPSTREAM_UNAVAILABLE", "{service} is unavailable"),
    };
    // One sentence per status for every upstream service: the service is named in it.
    let summary = summary.replace("{service}", operation.service());
    let message = match (&fault.code, &fault.message) {
        (Some(c), Some(m)) => format!("{summary} ({c}: {})", cut(m, CLIENT_TEXT_LIMIT)),
        (Some(c), None) => format!("{summary} ({c})"),
        _ => summary.to_string(),
    };
    Row::new(code, reason, message)
}

/// Client faults are routine; upstream and gateway faults get the whole chain.
fn log(error: &RestError) {
    let mut chain = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        chain.push_str(": ");
        chain.push_str(&cause.to_string());
        source = cause.source();
    }
    match error.http_status() {
        _ if matches!(error, RestError::BudgetExhausted { .. }) => {
            tracing::info!(error = %chain, "upstream budget used up; call refused")
        }
        Some(400..=499) => tracing::info!(error = %chain, "upstream rejected a call"),
        _ => tracing::warn!(error = %chain, "upstream call failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(status: u16, code: Option<&str>, operation: Operation) -> Status {
        Status::from(RestError::Status {
            operation,
            status,
            fault: UpstreamFault {
                code: code.map(str::to_string),
                message: Some("upstream says".into()),
            },
            retry_after: Some(Duration::from_secs(3)),
        })
    }

    #[test]
    fn maps_upstream_statuses_by_the_table() {
        let cases = [
            (400, None, Code::InvalidArgument),
            (400, Some("VolumeBackup.0013"), Code::FailedPrecondition),
            (400, Some("AutoBackup.0203"), Code::ResourceExhausted),
            (401, None, Code::Unauthenticated),
            (403, None, Code::PermissionDenied),
            (404, Some("VolumeBackup.0021"), Code::NotFound),
            (405, None, Code::Unimplemented),
            (501, None, Code::Unimplemented),
            (408, None, Code::DeadlineExceeded),
            (504, None, Code::DeadlineExceeded),
            (429, None, Code::ResourceExhausted),
            (500, None, Code::Internal),
            (502, None, Code::Unavailable),
            (503, None, Code::Unavailable),
        ];
        for (http, vbs, expected) in cases {
            let status = upstream(http, vbs, Operation::GetBackup);
            assert_eq!(status.code(), expected, "HTTP {http} {vbs:?}");
            let info = status.get_error_details().error_info().cloned().expect("ErrorInfo");
            assert_eq!(info.domain, DOMAIN);
            assert_eq!(info.metadata.get("httpStatus"), Some(&http.to_string()));
            assert_eq!(
                info.metadata.get("vbsMessage").map(String::as_str),
                Some("upstream says")
            );
        }
        assert_eq!(upstream(409, None, Operation::CreateBackup).code(), Code::AlreadyExists);
        assert_eq!(upstream(409, None, Operation::UpdateBackupPolicy).code(), Code::Aborted);
    }

    #[test]
    fn retry_info_only_for_429_and_503() {
        let details = upstream(503, None, Operation::GetJob).get_error_details();
        assert_eq!(
            details.retry_info().and_then(|r| r.retry_delay),
            Some(Duration::from_secs(3))
        );
        assert!(
            upstream(500, None, Operation::GetJob)
                .get_error_details()
                .retry_info()
                .is_none()
        );
    }

    #[test]
    fn a_recorded_failure_comes_back_as_it_was_answered() {
        let first = upstream(404, Some("VolumeBackup.0021"), Operation::CreateBackup);
        let again = replayed(recordable(first.clone()));
        assert_eq!(again.code(), first.code());
        assert_eq!(again.message(), first.message());
        assert_eq!(again.details(), first.details());
        let reused = Status::from(Error::RequestIdReused);
        assert_eq!(reused.code(), Code::InvalidArgument);
        assert_eq!(
            reused.get_error_details().error_info().unwrap().reason,
            "REQUEST_ID_REUSED"
        );
    }

    #[test]
    fn only_failures_that_left_nothing_upstream_are_retried_afresh() {
        let status = |status: u16| {
            Error::Rest(RestError::Status {
                operation: Operation::CreateBackup,
                status,
                fault: UpstreamFault::default(),
                retry_after: None,
            })
        };
        assert!(status(429).left_nothing_upstream());
        assert!(status(503).left_nothing_upstream());
        for sent in [400, 404, 500, 502, 504] {
            assert!(!status(sent).left_nothing_upstream(), "HTTP {sent}");
        }
        assert!(!Error::AfterWrite(Box::new(status(503))).left_nothing_upstream());
        let timeout = Error::Rest(RestError::DeadlineExceeded {
            operation: Operation::CreateBackup,
        });
        assert!(!timeout.left_nothing_upstream());
    }

    #[test]
    fn long_upstream_messages_are_cut_for_the_client() {
        let status = Status::from(RestError::Status {
            operation: Operation::GetBackup,
            status: 500,
            fault: UpstreamFault {
                code: Some("VBS.0001".into()),
                message: Some("x".repeat(4096)),
            },
            retry_after: None,
        });
        assert!(
            status.message().len() < CLIENT_TEXT_LIMIT + 100,
            "{}",
            status.message().len()
        );
        assert!(status.message().ends_with("…[cut])"), "{}", status.message());
        let message = error_metadata_of(&status).remove("vbsMessage").unwrap();
        assert!(message.len() < CLIENT_TEXT_LIMIT + 16 && message.ends_with("…[cut]"));
    }

    #[test]
    fn an_oversized_body_is_internal_and_named() {
        let status = Status::from(RestError::BodyTooLarge {
            operation: Operation::ListBackups,
            status: 200,
            limit: 1024,
        });
        assert_eq!(status.code(), Code::Internal);
        let info = status.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "UPSTREAM_BODY_TOO_LARGE");
        assert_eq!(info.metadata.get("httpStatus").map(String::as_str), Some("200"));
    }

    fn error_metadata_of(status: &Status) -> HashMap<String, String> {
        status.get_error_details().error_info().unwrap().metadata.clone()
    }

    fn violation(field: &str, problem: Problem) -> FieldViolation {
        FieldViolation {
            field: field.into(),
            problem,
            description: "is wrong".into(),
        }
    }

    #[test]
    fn validation_errors_name_every_field_with_its_reason() {
        let status = Status::from(Error::InvalidArgument(vec![
            violation("name", Problem::Missing),
            violation("volume_id", Problem::NotAUuid),
        ]));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations: Vec<_> = details
            .bad_request()
            .unwrap()
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.reason.as_str()))
            .collect();
        assert_eq!(violations, [("name", "FIELD_REQUIRED"), ("volume_id", "NOT_A_UUID")]);
        let info = details.error_info().unwrap();
        assert_eq!(info.reason, MULTIPLE_VIOLATIONS);
        assert_eq!(info.metadata.get("fields").map(String::as_str), Some("name,volume_id"));
    }

    #[test]
    fn violations_of_one_kind_give_error_info_their_reason() {
        let status = Status::from(Error::InvalidArgument(vec![
            violation("job_ids[1]", Problem::Duplicate),
            violation("job_ids[3]", Problem::Duplicate),
        ]));
        assert_eq!(
            status.get_error_details().error_info().unwrap().reason,
            "DUPLICATE_VALUE"
        );
        let one = Status::from(Error::invalid(
            "name",
            Problem::ReservedPrefix,
            "must not start with \"auto\"",
        ));
        let info = one.get_error_details().error_info().cloned().unwrap();
        assert_eq!(info.reason, "NAME_RESERVED_PREFIX");
        assert_eq!(info.metadata.get("fields").map(String::as_str), Some("name"));
    }

    #[test]
    fn shutting_down_says_when_to_ask_again() {
        for error in [Error::Drained, Error::Watch(WatchError::ShuttingDown)] {
            let status = Status::from(error);
            assert_eq!(status.code(), Code::Unavailable);
            let details = status.get_error_details();
            assert_eq!(details.error_info().unwrap().reason, "SHUTTING_DOWN");
            assert_eq!(
                details.retry_info().and_then(|r| r.retry_delay),
                Some(SHUTDOWN_RETRY_AFTER)
            );
        }
    }
}
