//! The gRPC services, one file per area. This module holds what they share:
//! the per-call context (project, deadline), request validation, and the
//! conversions of upstream text (times, statuses in `wire`) into typed fields.

pub(crate) mod backups;
pub(crate) mod csbs;
pub(crate) mod follow;
pub(crate) mod jobs;
pub(crate) mod operations;
mod paging;
pub(crate) mod policies;
mod resource_ids;
pub(crate) mod taurusdb;
pub(crate) mod watched;
mod wire;
pub(crate) mod writes;
pub(crate) mod zstack;

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime};
use tonic::Request;

use crate::error::{Error, FieldViolation};
use crate::frontdoor::Admission;
use crate::observe::AccessNote;
use crate::rest::{CallContext, Secret, Transport};
use crate::store::operations::OperationLog;
use resource_ids::ResourceIds;
use vbs_rules::{self as rules, Problem};

/// What every service needs: the upstream transport and the call defaults.
#[derive(Debug, Clone)]
pub(crate) struct Upstream {
    pub(crate) transport: Arc<Transport>,
    /// Project used when a request leaves `project_id` empty.
    pub(crate) default_project_id: Option<String>,
    /// Whether a caller's `x-auth-token` metadata replaces the gateway's credentials.
    pub(crate) pass_through_token: bool,
    /// Runs the writes: once per `request_id`, detached once sent.
    pub(crate) writes: writes::Writes,
    /// What bounds a call whose caller sent no deadline, all its upstream
    /// calls together (`--default-deadline`).
    pub(crate) default_deadline: Duration,
    /// The jobs started through this gateway, for ListOperations.
    pub(crate) operations: Arc<dyn OperationLog>,
}

impl Upstream {
    /// The context of one call: the request's project (or the default) and
    /// the caller's deadline (or the default one, from now). First, whether
    /// the caller may act in that project.
    pub(crate) fn context<T: ResourceIds>(&self, request: &Request<T>, project_id: &str) -> Result<CallContext, Error> {
        let project_id = match (project_id, &self.default_project_id) {
            ("", Some(default)) => default.clone(),
            ("", None) => {
                return Err(Error::invalid(
                    "project_id",
                    Problem::Missing,
                    "required: the gateway has no default project configured",
                ));
            }
            (given, _) => given.to_string(),
        };
        Admission::permit(request.extensions(), &project_id)?;
        if let Some(note) = request.extensions().get::<Arc<AccessNote>>() {
            note.set_target(&project_id, request.get_ref().resource_ids());
        }
        let mut violations = Violations::default();
        violations.check("project_id", rules::path_id(&project_id));
        violations.finish()?;
        Ok(CallContext {
            project_id,
            deadline: Some(caller_deadline(request).unwrap_or_else(|| Instant::now() + self.default_deadline)),
            caller_token: self.caller_token(request)?,
            send_by: None,
            caller: Admission::caller_name(request.extensions()),
        })
    }

    /// The caller's own token, when pass-through is on and the caller sent one.
    fn caller_token<T>(&self, request: &Request<T>) -> Result<Option<Secret>, Error> {
        if !self.pass_through_token {
            return Ok(None);
        }
        let Some(value) = request.metadata().get(CALLER_TOKEN) else {
            return Ok(None);
        };
        match value.to_str() {
            Ok(token) if !token.is_empty() && token.len() <= MAX_TOKEN_LEN => Ok(Some(Secret::new(token))),
            _ => Err(Error::invalid(
                CALLER_TOKEN,
                Problem::BadFormat,
                format!("must be 1 to {MAX_TOKEN_LEN} visible ASCII characters"),
            )),
        }
    }
}

/// Metadata key of a caller's own IAM token (pass-through mode).
const CALLER_TOKEN: &str = "x-auth-token";
/// IAM tokens are large (PKI tokens run to several KB) but not unbounded.
const MAX_TOKEN_LEN: usize = 16 * 1024;

/// The caller's deadline, from the grpc-timeout header ("<digits><unit>").
pub(crate) fn caller_deadline<T>(request: &Request<T>) -> Option<Instant> {
    let value = request.metadata().get("grpc-timeout")?.to_str().ok()?;
    let (digits, unit) = value.split_at(value.len().checked_sub(1)?);
    let amount: u64 = digits.parse().ok()?;
    let timeout = match unit {
        "H" => Duration::from_secs(amount.saturating_mul(3600)),
        "M" => Duration::from_secs(amount.saturating_mul(60)),
        "S" => Duration::from_secs(amount),
        "m" => Duration::from_millis(amount),
        "u" => Duration::from_micros(amount),
        "n" => Duration::from_nanos(amount),
        _ => return None,
    };
    Instant::now().checked_add(timeout)
}

/// Collects every broken rule of a request, so the caller sees them all at
/// once, each with the [`Problem`] that names its reason.
#[derive(Debug, Default)]
pub(crate) struct Violations(Vec<FieldViolation>);

impl Violations {
    /// A request with a single rule: `check` of `field`.
    pub(crate) fn only(field: &str, check: rules::Check) -> Result<(), Error> {
        let mut v = Violations::default();
        v.check(field, check);
        v.finish()
    }

    pub(crate) fn check(&mut self, field: &str, check: rules::Check) {
        if let Err(violation) = check {
            self.add(field, violation.problem, violation.description);
        }
    }

    /// A rule the service checks itself (duplicates, empty lists, enums).
    pub(crate) fn add(&mut self, field: &str, problem: Problem, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.to_string(),
            problem,
            description: description.into(),
        });
    }

    /// A list that needs at least one entry.
    pub(crate) fn non_empty<T>(&mut self, field: &str, entries: &[T], what: &str) {
        if entries.is_empty() {
            self.add(field, Problem::Missing, format!("must list at least one {what}"));
        }
    }

    /// An entry that must not repeat an earlier one of its list.
    pub(crate) fn unique(&mut self, field: &str, repeated: bool, description: &str) {
        if repeated {
            self.add(field, Problem::Duplicate, description);
        }
    }

    /// A required UUID.
    pub(crate) fn uuid(&mut self, field: &str, value: &str) {
        self.check(field, rules::uuid(value));
    }

    /// A UUID that may be left empty.
    pub(crate) fn optional_uuid(&mut self, field: &str, value: &str) {
        if !value.is_empty() {
            self.uuid(field, value);
        }
    }

    /// A page size: 0 (upstream default) or within the list limit.
    pub(crate) fn limit(&mut self, field: &str, value: i32) {
        if value != 0 {
            self.check(field, rules::in_range(i64::from(value), &rules::LIST_LIMIT));
        }
    }

    /// A word from a fixed set, or empty for the upstream default.
    pub(crate) fn optional_word(&mut self, field: &str, value: &str, allowed: &[&str]) {
        if !value.is_empty() {
            self.check(field, rules::one_of(value, allowed));
        }
    }

    /// An enum field that needs a value: its unspecified zero is missing,
    /// a number the contract does not define is unknown.
    pub(crate) fn required_enum(&mut self, field: &str, value: i32, accepted: bool, description: &str) {
        if !accepted {
            let problem = if value == 0 {
                Problem::Missing
            } else {
                Problem::UnknownEnumValue
            };
            self.add(field, problem, description);
        }
    }

    /// An enum field: a value the contract defines.
    pub(crate) fn known_enum(&mut self, field: &str, known: bool) {
        if !known {
            self.add(field, Problem::UnknownEnumValue, "is not a value of the enum");
        }
    }

    pub(crate) fn finish(self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidArgument(self.0))
        }
    }
}

/// Upstream times come as "2013-06-27T08:48:03.000000", "2016-12-03T06:24:34.467"
/// (UTC without a zone), "2016-01-28T16:14:09.466Z" / "+08:00" or "+0800".
pub(crate) fn timestamp(text: Option<&str>) -> Option<prost_types::Timestamp> {
    let text = text?.trim();
    if text.is_empty() {
        return None;
    }
    match common_time(text).ok_or(()).or_else(|()| general_time(text)) {
        Ok(t) => Some(prost_types::Timestamp {
            seconds: t.timestamp(),
            nanos: t.timestamp_subsec_nanos() as i32,
        }),
        Err(_) => {
            tracing::debug!(text, "upstream time does not parse; leaving it unset");
            None
        }
    }
}

/// Any form chrono's parsers read: RFC 3339, an offset without a colon, or
/// no zone (UTC).
fn general_time(text: &str) -> chrono::ParseResult<DateTime<chrono::Utc>> {
    DateTime::parse_from_rfc3339(text)
        // TaurusDB writes offsets without a colon: "2020-07-07T01:17:05+0800".
        .or_else(|_| DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z"))
        .map(|t| t.to_utc())
        .or_else(|_| {
            let naive = text.trim_end_matches(['Z', 'z']).replacen(' ', "T", 1);
            NaiveDateTime::parse_from_str(&naive, "%Y-%m-%dT%H:%M:%S%.f").map(|t| t.and_utc())
        })
}

/// The forms above read by hand, with at most nanosecond digits: every
/// read of a backup has several times, and chrono's format-driven parsers
/// tried one after the other cost microseconds each. None for anything
/// else, which the general parsers then try.
fn common_time(text: &str) -> Option<DateTime<chrono::Utc>> {
    let b = text.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter()
            .try_fold(0u32, |n, &d| d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0')))
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(digits(0..4)? as i32, digits(5..7)?, digits(8..10)?)?;
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let mut at = 19;
    let mut nanos = 0;
    if b.get(at) == Some(&b'.') {
        let start = at + 1;
        let end = start + b[start..].iter().take_while(|d| d.is_ascii_digit()).count();
        if end == start || end - start > 9 {
            return None;
        }
        nanos = digits(start..end)? * 10u32.pow((9 - (end - start)) as u32);
        at = end;
    }
    let offset_seconds = match &b[at..] {
        [] | [b'Z' | b'z'] => 0,
        [sign @ (b'+' | b'-'), _, _, rest @ ..] => {
            let minutes_at = match rest {
                [b':', _, _] => at + 4,
                [_, _] => at + 3,
                _ => return None,
            };
            let hours = digits(at + 1..at + 3)?;
            let minutes = digits(minutes_at..minutes_at + 2)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            let seconds = (hours * 3600 + minutes * 60) as i64;
            if *sign == b'+' { seconds } else { -seconds }
        }
        _ => return None,
    };
    let local = date.and_hms_nano_opt(hour, minute, second, nanos)?;
    Some(local.and_utc() - chrono::Duration::seconds(offset_seconds))
}

/// Text that is empty when upstream sent nothing.
pub(crate) fn text(value: Option<String>) -> String {
    value.unwrap_or_default()
}

/// `Some(value)` unless empty: for optional upstream fields.
pub(crate) fn non_empty(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seconds(text: &str) -> Option<(i64, i32)> {
        timestamp(Some(text)).map(|t| (t.seconds, t.nanos))
    }

    #[test]
    fn reads_every_upstream_time_form() {
        assert_eq!(seconds("2013-06-27T08:48:03.000000"), Some((1_372_322_883, 0)));
        assert_eq!(seconds("2016-12-03T06:24:34.467"), Some((1_480_746_274, 467_000_000)));
        assert_eq!(seconds("2016-01-28T16:14:09.466Z"), Some((1_453_997_649, 466_000_000)));
        assert_eq!(seconds("2016-01-28T18:14:09+02:00"), Some((1_453_997_649, 0)));
        assert_eq!(seconds("2016-01-28 16:14:09"), Some((1_453_997_649, 0)));
        assert_eq!(seconds("2016-01-29T00:14:09+0800"), Some((1_453_997_649, 0)));
        assert_eq!(seconds("yesterday"), None);
        assert_eq!(seconds(""), None);
    }

    #[test]
    fn the_hand_reader_agrees_with_chrono_wherever_it_reads() {
        let forms = [
            "2013-06-27T08:48:03.000000",
            "2016-12-03T06:24:34.467",
            "2016-01-28T16:14:09.466Z",
            "2016-01-28T16:14:09.466z",
            "2016-01-28T18:14:09+02:00",
            "2016-01-28T18:14:09.1-05:30",
            "2016-01-28 16:14:09",
            "2016-01-29T00:14:09+0800",
            "2016-01-29T00:14:09.123456789+0800",
            "2020-02-29T23:59:59.999999999Z",
            "1970-01-01T00:00:00",
            "1969-12-31T23:59:59.5",
        ];
        for text in forms {
            let general = general_time(text).expect(text);
            assert_eq!(common_time(text), Some(general), "{text}");
        }
        // Not dates, or more than it reads: chrono decides.
        let others = [
            "2019-02-29T00:00:00",
            "2016-13-01T00:00:00",
            "2016-01-28T24:00:00",
            "2016-01-28T16:14:09.",
            "2016-01-28T16:14:09.1234567891",
            "2016-01-28T16:14:09+8",
            "2016-01-28T16:14:09+08:0",
            "2016-01-28T16:14:09 UTC",
            "2016-1-28T16:14:09",
            "+2016-01-28T16:14:09",
        ];
        for text in others {
            assert_eq!(common_time(text), None, "{text}");
        }
        assert_eq!(
            seconds("2016-01-28T16:14:09.1234567891Z"),
            Some((1_453_997_649, 123_456_789)),
            "chrono reads what the hand reader leaves"
        );
    }

    #[test]
    fn reads_grpc_timeouts() {
        let mut request = Request::new(());
        request.metadata_mut().insert("grpc-timeout", "250m".parse().unwrap());
        let left = caller_deadline(&request).unwrap() - Instant::now();
        assert!(left <= Duration::from_millis(250) && left > Duration::from_millis(200));
        request.metadata_mut().insert("grpc-timeout", "5X".parse().unwrap());
        assert!(caller_deadline(&request).is_none());
    }
}
