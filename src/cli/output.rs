//! What the client prints: aligned tables and key/value blocks for people,
//! the canonical protobuf JSON mapping (through the contract's descriptors)
//! for scripts, and errors with their code, reason and field violations.

use std::io::Write;
use std::sync::OnceLock;

use clap::ValueEnum;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};
use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::Failure;
use crate::proto::{FILE_DESCRIPTOR_SET, longrunning, pb};

/// How answers are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns and key/value blocks for people.
    Table,
    /// The protobuf JSON mapping (lowerCamelCase names, enum names, RFC 3339 times).
    Json,
}

/// A message printable as JSON: its full protobuf name in the descriptor set.
pub(crate) trait ProtoName: prost::Message + Sized {
    const NAME: &'static str;
}

macro_rules! proto_names {
    ($($ty:ty => $name:literal,)*) => {
        $(impl ProtoName for $ty {
            const NAME: &'static str = $name;
        })*
    };
}

proto_names! {
    pb::Job => "vbs.v2.Job",
    pb::Backup => "vbs.v2.Backup",
    pb::BackupPolicy => "vbs.v2.BackupPolicy",
    pb::CreateBackupResponse => "vbs.v2.CreateBackupResponse",
    pb::RestoreBackupResponse => "vbs.v2.RestoreBackupResponse",
    pb::DeleteCloudBackupResponse => "vbs.v2.DeleteCloudBackupResponse",
    pb::ListBackupDetailsResponse => "vbs.v2.ListBackupDetailsResponse",
    pb::ListBackupPoliciesResponse => "vbs.v2.ListBackupPoliciesResponse",
    pb::ListBackupPolicyTasksResponse => "vbs.v2.ListBackupPolicyTasksResponse",
    pb::CreateBackupPolicyResponse => "vbs.v2.CreateBackupPolicyResponse",
    pb::UpdateBackupPolicyResponse => "vbs.v2.UpdateBackupPolicyResponse",
    pb::DeleteBackupPolicyResponse => "vbs.v2.DeleteBackupPolicyResponse",
    pb::ExecuteBackupPolicyResponse => "vbs.v2.ExecuteBackupPolicyResponse",
    pb::EnableBackupPolicyResponse => "vbs.v2.EnableBackupPolicyResponse",
    pb::DisableBackupPolicyResponse => "vbs.v2.DisableBackupPolicyResponse",
    pb::AssociateResourcesResponse => "vbs.v2.AssociateResourcesResponse",
    pb::DisassociateResourcesResponse => "vbs.v2.DisassociateResourcesResponse",
    pb::WaitJobResponse => "vbs.v2.WaitJobResponse",
    longrunning::Operation => "google.longrunning.Operation",
}

fn pool() -> Result<&'static DescriptorPool, Failure> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(FILE_DESCRIPTOR_SET).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| Failure::Reply(format!("the contract's descriptors do not load: {e}")))
}

/// The message in the canonical proto3 JSON mapping; `pretty` for a document,
/// otherwise one line (a stream of states, one per line).
pub(crate) fn json<M: ProtoName>(message: &M, pretty: bool) -> Result<String, Failure> {
    let descriptor = pool()?
        .get_message_by_name(M::NAME)
        .ok_or_else(|| Failure::Reply(format!("{} is not in the contract", M::NAME)))?;
    let dynamic = DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice())
        .map_err(|e| Failure::Reply(format!("{}: {e}", M::NAME)))?;
    let options = SerializeOptions::new();
    let mut text = Vec::new();
    let written = if pretty {
        dynamic.serialize_with_options(&mut serde_json::Serializer::pretty(&mut text), &options)
    } else {
        dynamic.serialize_with_options(&mut serde_json::Serializer::new(&mut text), &options)
    };
    written.map_err(|e| Failure::Reply(format!("{}: {e}", M::NAME)))?;
    String::from_utf8(text).map_err(|e| Failure::Reply(e.to_string()))
}

/// Prints the message as a JSON document on stdout.
pub(crate) fn print_json<M: ProtoName>(message: &M) -> Result<(), Failure> {
    let text = json(message, true)?;
    print(&format!("{text}\n"))
}

/// Writes text to stdout; a closed pipe is an error the caller ends quietly on.
pub(crate) fn print(text: &str) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_bytes())?;
    stdout.flush()?;
    Ok(())
}

/// Columns aligned under a header; the last column is not padded.
#[derive(Debug)]
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells.into_iter().map(|c| clean(&c)).collect());
    }

    pub(crate) fn render(&self) -> String {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (width, cell) in widths.iter_mut().zip(row) {
                *width = (*width).max(cell.chars().count());
            }
        }
        let header: Vec<String> = self.header.iter().map(|h| h.to_string()).collect();
        std::iter::once(&header)
            .chain(&self.rows)
            .map(|row| line(row, &widths))
            .collect()
    }
}

fn line(cells: &[String], widths: &[usize]) -> String {
    let mut text = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        if i + 1 == cells.len() {
            text.push_str(cell);
        } else {
            text.push_str(&format!("{cell:<width$}  "));
        }
    }
    format!("{}\n", text.trim_end())
}

/// A key/value block for one object; empty values are left out.
pub(crate) fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    pairs
        .iter()
        .filter(|(_, value)| !value.is_empty())
        .map(|(key, value)| format!("{key:<width$}  {}\n", clean(value)))
        .collect()
}

/// Text from the gateway (and from VBS behind it) with control characters
/// replaced, so a hostile name cannot move the cursor or recolour the terminal.
pub(crate) fn clean(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}

/// A timestamp as RFC 3339 UTC, or empty when unset.
pub(crate) fn time(timestamp: Option<&prost_types::Timestamp>) -> String {
    timestamp
        .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// An enum value's upstream spelling when the gateway passed one on, else its name.
pub(crate) fn status_text(raw: &str, name: &str, prefix: &str) -> String {
    if raw.is_empty() {
        name.strip_prefix(prefix).unwrap_or(name).to_string()
    } else {
        raw.to_string()
    }
}

/// An error status for people: code, message, ErrorInfo reason and metadata,
/// BadRequest field violations and RetryInfo, one per line.
pub(crate) fn describe_status(status: &Status) -> String {
    let mut text = format!(
        "{} ({}): {}",
        code_name(status.code()),
        status.code() as i32,
        clean(status.message())
    );
    let details = status.get_error_details();
    if let Some(info) = details.error_info() {
        text.push_str(&format!(
            "\n  reason: {} ({})",
            clean(&info.reason),
            clean(&info.domain)
        ));
        let mut metadata: Vec<_> = info.metadata.iter().collect();
        metadata.sort();
        for (key, value) in metadata {
            text.push_str(&format!("\n  {}: {}", clean(key), clean(value)));
        }
    }
    if let Some(bad_request) = details.bad_request() {
        for violation in &bad_request.field_violations {
            text.push_str(&format!(
                "\n  field {}: {}",
                clean(&violation.field),
                clean(&violation.description)
            ));
            if !violation.reason.is_empty() {
                text.push_str(&format!(" [{}]", clean(&violation.reason)));
            }
        }
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        text.push_str(&format!("\n  retry after: {:.1}s", delay.as_secs_f64()));
    }
    text
}

/// The canonical name of a gRPC code, as in google.rpc.Code.
pub(crate) fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_the_last_is_not_padded() {
        let mut table = Table::new(&["ID", "NAME", "STATUS"]);
        table.row(vec!["a".into(), "longer-name".into(), "available".into()]);
        table.row(vec!["bbbb".into(), "n".into(), "error".into()]);
        assert_eq!(
            table.render(),
            "ID    NAME         STATUS\na     longer-name  available\nbbbb  n            error\n"
        );
    }

    #[test]
    fn control_characters_from_upstream_never_reach_the_terminal() {
        let mut table = Table::new(&["NAME"]);
        table.row(vec!["evil\u{1b}[2Jname\r".into()]);
        let text = table.render();
        assert!(!text.contains('\u{1b}') && !text.contains('\r'), "{text:?}");
        assert!(fields(&[("name", "a\u{7}b".into())]).contains("a\u{fffd}b"));
    }

    #[test]
    fn json_is_the_canonical_mapping() {
        let job = pb::Job {
            job_id: "j1".into(),
            status: pb::JobStatus::Success as i32,
            begin_time: Some(prost_types::Timestamp {
                seconds: 1_700_000_000,
                nanos: 0,
            }),
            result: Some(pb::job::Result::Backup(pb::BackupJobResult {
                backup_id: "b1".into(),
                ..Default::default()
            })),
            ..Default::default()
        };
        let value: serde_json::Value = serde_json::from_str(&json(&job, false).unwrap()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({
                "jobId": "j1",
                "status": "JOB_STATUS_SUCCESS",
                "beginTime": "2023-11-14T22:13:20Z",
                "backup": {"backupId": "b1"},
            })
        );
    }

    #[test]
    fn an_error_names_code_reason_and_fields() {
        let status = tonic::Status::with_error_details_vec(
            Code::InvalidArgument,
            "volume_id: must be a UUID",
            vec![
                tonic_types::ErrorDetail::from(tonic_types::ErrorInfo::new(
                    "NOT_A_UUID",
                    "vbs-gateway",
                    [("httpStatus".to_string(), "400".to_string())],
                )),
                tonic_types::ErrorDetail::from(tonic_types::BadRequest::new(vec![tonic_types::FieldViolation {
                    field: "volume_id".into(),
                    description: "must be a UUID".into(),
                    reason: "NOT_A_UUID".into(),
                    localized_message: None,
                }])),
            ],
        );
        let text = describe_status(&status);
        assert!(
            text.starts_with("INVALID_ARGUMENT (3): volume_id: must be a UUID"),
            "{text}"
        );
        assert!(text.contains("\n  reason: NOT_A_UUID (vbs-gateway)"), "{text}");
        assert!(text.contains("\n  httpStatus: 400"), "{text}");
        assert!(
            text.contains("\n  field volume_id: must be a UUID [NOT_A_UUID]"),
            "{text}"
        );
    }
}
