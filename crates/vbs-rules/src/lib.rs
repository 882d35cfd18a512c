//! The field rules the VBS API reference states, as pure checks shared by the
//! gateway's request validation and the simulator, so both enforce one reading.
//! `taurusdb` and `zstack` hold the rules of those services' backup documents.

use std::ops::RangeInclusive;

pub mod csbs;
pub mod taurusdb;
pub mod zstack;

/// Backup names: 1 to 64 characters.
pub const BACKUP_NAME_MAX: usize = 64;
/// Backup names may not start with this (it marks policy backups).
pub const BACKUP_NAME_RESERVED_PREFIX: &str = "auto";
/// Descriptions of backups made with POST /cloudbackups.
pub const CLOUD_BACKUP_DESCRIPTION_MAX: usize = 64;
/// Descriptions of backups made with the native POST /backups.
pub const NATIVE_BACKUP_DESCRIPTION_MAX: usize = 255;
/// Tag keys: 1 to 36 characters.
pub const TAG_KEY_MAX: usize = 36;
/// Tag values: 0 to 43 characters.
pub const TAG_VALUE_MAX: usize = 43;
/// Policy names: 1 to 64 characters.
pub const POLICY_NAME_MAX: usize = 64;
/// Policy names may not start with this (it marks the default policy).
pub const POLICY_NAME_RESERVED_PREFIX: &str = "default";
/// A project holds at most this many backup policies.
pub const MAX_POLICIES: usize = 10;
/// Days between policy runs, on create.
pub const FREQUENCY_ON_CREATE: RangeInclusive<i64> = 1..=30;
/// Days between policy runs, on update.
pub const FREQUENCY_ON_UPDATE: RangeInclusive<i64> = 1..=14;
/// Backups a policy keeps, on create.
pub const RETENTION_NUM_ON_CREATE: RangeInclusive<i64> = 2..=99;
/// Backups a policy keeps, on update.
pub const RETENTION_NUM_ON_UPDATE: RangeInclusive<i64> = 2..=14;
/// Days a policy keeps backups.
pub const RETENTION_DAY: RangeInclusive<i64> = 2..=999_999;
/// Page sizes of list calls (VBS pages at 1000 at the most).
pub const LIST_LIMIT: RangeInclusive<i64> = 1..=1000;
/// Keys ListBackupDetails can sort by.
pub const BACKUP_SORT_KEYS: &[&str] = &[
    "name",
    "status",
    "container_format",
    "disk_format",
    "size",
    "id",
    "created_at",
    "updated_at",
];
/// The one key backup tasks can be sorted by.
pub const TASK_SORT_KEY: &str = "created_at";
/// Sort directions.
pub const SORT_DIRECTIONS: &[&str] = &["asc", "desc"];
/// Week days of `week_frequency`, in VBS spelling.
pub const WEEKDAYS: &[&str] = &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
/// Tags on one backup or policy. The VBS reference (001, error
/// VolumeBackup.0050 "The number of tags exceeded") names the limit without a
/// number; its CSBS companion (003, "The list can contain up to 10 keys") and
/// the cloud's tag quota give 10.
pub const TAGS_MAX: usize = 10;
/// Disks one AssociateResources or DisassociateResources call may name. The
/// reference states no number (only AutoBackup.0204 "number of volumes
/// reaches limit"): the gateway's own bound keeps one request body and one
/// upstream call small; callers split longer lists.
pub const POLICY_RESOURCES_MAX: usize = 100;
/// Run times in one `start_time`: the reference asks for full hours in
/// ascending order, so a day holds at most 24 of them.
pub const START_TIMES_MAX: usize = 24;
/// Days in `week_frequency`: the reference allows SUN to SAT, so a list of
/// more than the seven days of a week can only repeat one.
pub const WEEK_FREQUENCY_MAX: usize = 7;
/// Job ids one WatchJobs call may follow. The gateway's own bound (the
/// reference has no such call): each id is a poller upstream.
pub const WATCHED_JOB_IDS_MAX: usize = 100;
/// The `name` filter of the backup lists. The reference states no length for
/// the filter; a name longer than the reference's 64 characters
/// ([`BACKUP_NAME_MAX`]) can match no backup.
pub const NAME_FILTER_MAX: usize = BACKUP_NAME_MAX;
/// The `container` of a native backup. The reference states no length
/// ("reserved and will be skipped"); the gateway's own bound, the length of
/// the longest free text the same call takes (its description).
pub const CONTAINER_MAX: usize = NATIVE_BACKUP_DESCRIPTION_MAX;
/// Characters tag keys and values may not contain (besides ASCII 0-31).
const TAG_FORBIDDEN: &[char] = &['=', '*', '<', '>', '\\', ',', '|', '/'];
/// Longest id accepted as a path segment.
const ID_MAX: usize = 64;

/// What is wrong with a field: the simulator picks its VBS error code by it,
/// the gateway answers its [`reason`](Problem::reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Problem {
    /// Required and absent, or empty (a text, or a list that needs an entry).
    Missing,
    /// Text longer than the reference allows.
    TooLong,
    /// A list with more entries than allowed.
    TooManyEntries,
    /// Holds a character the reference forbids.
    BadCharacter,
    /// Starts with a prefix the cloud keeps for itself.
    ReservedPrefix,
    /// Not a UUID in its canonical 8-4-4-4-12 form.
    NotAUuid,
    /// Not of the required form (run times, a duration, a credential, a
    /// reserved path segment).
    BadFormat,
    /// Not one of a fixed set of words.
    NotInSet,
    /// A number the contract's enum does not define, or one it defines but
    /// the field does not take (a day that is not a day).
    UnknownEnumValue,
    /// A number outside its documented range.
    OutOfRange,
    /// Repeats an earlier entry of the same list.
    Duplicate,
    /// Names the caller's own project where another one is needed.
    OwnProject,
    /// A page token the list did not hand out.
    NotAPageToken,
}

impl Problem {
    /// Every problem, for tables and tests.
    pub const ALL: [Problem; 13] = [
        Problem::Missing,
        Problem::TooLong,
        Problem::TooManyEntries,
        Problem::BadCharacter,
        Problem::ReservedPrefix,
        Problem::NotAUuid,
        Problem::BadFormat,
        Problem::NotInSet,
        Problem::UnknownEnumValue,
        Problem::OutOfRange,
        Problem::Duplicate,
        Problem::OwnProject,
        Problem::NotAPageToken,
    ];

    /// The stable UPPER_SNAKE name clients match on (the gateway's
    /// BadRequest violation `reason` and ErrorInfo `reason`). Never renamed.
    pub const fn reason(self) -> &'static str {
        match self {
            Problem::Missing => "FIELD_REQUIRED",
            Problem::TooLong => "TOO_LONG",
            Problem::TooManyEntries => "TOO_MANY_ENTRIES",
            Problem::BadCharacter => "BAD_CHARACTER",
            Problem::ReservedPrefix => "NAME_RESERVED_PREFIX",
            Problem::NotAUuid => "NOT_A_UUID",
            Problem::BadFormat => "BAD_FORMAT",
            Problem::NotInSet => "NOT_IN_SET",
            Problem::UnknownEnumValue => "UNKNOWN_ENUM_VALUE",
            Problem::OutOfRange => "OUT_OF_RANGE",
            Problem::Duplicate => "DUPLICATE_VALUE",
            Problem::OwnProject => "OWN_PROJECT",
            Problem::NotAPageToken => "INVALID_PAGE_TOKEN",
        }
    }
}

/// A broken rule: the kind of problem and a sentence for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// What kind of rule was broken.
    pub problem: Problem,
    /// What the caller must change, in one sentence.
    pub description: String,
}

/// The outcome of checking one field.
pub type Check = Result<(), Violation>;

fn violation(problem: Problem, description: impl Into<String>) -> Check {
    Err(Violation {
        problem,
        description: description.into(),
    })
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// A name of letters, digits, `_` and `-`, of 1 to `max` characters, not
/// starting with `reserved`.
fn name(value: &str, max: usize, reserved: &str) -> Check {
    let len = value.chars().count();
    if len == 0 {
        return violation(Problem::Missing, "must not be empty");
    }
    if len > max {
        return violation(Problem::TooLong, format!("must be at most {max} characters, got {len}"));
    }
    if !value.chars().all(is_name_char) {
        return violation(
            Problem::BadCharacter,
            "may contain only letters, digits, underscores (_) and hyphens (-)",
        );
    }
    if value.starts_with(reserved) {
        return violation(Problem::ReservedPrefix, format!("must not start with \"{reserved}\""));
    }
    Ok(())
}

/// A backup name: 1 to 64 of `[A-Za-z0-9_-]`, not starting with `auto`.
pub fn backup_name(value: &str) -> Check {
    name(value, BACKUP_NAME_MAX, BACKUP_NAME_RESERVED_PREFIX)
}

/// A policy name: 1 to 64 of `[A-Za-z0-9_-]`, not starting with `default`.
pub fn policy_name(value: &str) -> Check {
    name(value, POLICY_NAME_MAX, POLICY_NAME_RESERVED_PREFIX)
}

/// A description of at most `max` characters without `<` or `>`.
pub fn description(value: &str, max: usize) -> Check {
    let len = value.chars().count();
    if len > max {
        return violation(Problem::TooLong, format!("must be at most {max} characters, got {len}"));
    }
    if value.contains(['<', '>']) {
        return violation(Problem::BadCharacter, "must not contain < or >");
    }
    Ok(())
}

/// Text of at most `max` characters.
pub fn text_at_most(value: &str, max: usize) -> Check {
    let len = value.chars().count();
    if len > max {
        return violation(Problem::TooLong, format!("must be at most {max} characters, got {len}"));
    }
    Ok(())
}

/// A list of at most `max` entries.
pub fn entries_at_most(len: usize, max: usize) -> Check {
    if len > max {
        return violation(
            Problem::TooManyEntries,
            format!("must have at most {max} entries, got {len}"),
        );
    }
    Ok(())
}

fn tag_text(value: &str, max: usize) -> Check {
    let len = value.chars().count();
    if len > max {
        return violation(Problem::TooLong, format!("must be at most {max} characters, got {len}"));
    }
    if value.chars().any(|c| (c as u32) < 32 || TAG_FORBIDDEN.contains(&c)) {
        return violation(
            Problem::BadCharacter,
            "must not contain control characters or any of = * < > \\ , | /",
        );
    }
    Ok(())
}

/// A tag key: 1 to 36 characters, no control characters, none of `=*<>\,|/`.
pub fn tag_key(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    tag_text(value, TAG_KEY_MAX)
}

/// A tag value: 0 to 43 characters, no control characters, none of `=*<>\,|/`.
pub fn tag_value(value: &str) -> Check {
    tag_text(value, TAG_VALUE_MAX)
}

/// Conditions in one set of a tag search (`tags`, `tags_any`, ...), and
/// values in one condition: the gateway's own bound, the tag limit
/// ([`TAGS_MAX`]), as a policy can match no more.
pub const TAG_MATCHES_MAX: usize = TAGS_MAX;

fn is_tag_api_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

fn tag_api_text(value: &str, max: usize) -> Check {
    let len = value.chars().count();
    if len > max {
        return violation(Problem::TooLong, format!("must be at most {max} characters, got {len}"));
    }
    if !value.chars().all(is_tag_api_char) {
        return violation(
            Problem::BadCharacter,
            "may contain only letters, digits, underscores (_), dots (.) and hyphens (-)",
        );
    }
    Ok(())
}

/// A key of the policy tag API: 1 to 36 of `[A-Za-z0-9_.-]` (the rule of
/// the clients in use, a superset of CSBS's documented letters, digits, `-`
/// and `_`). The key is a URL path segment on delete, so `.` and `..` are out.
pub fn tag_api_key(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    tag_api_text(value, TAG_KEY_MAX)?;
    if value == "." || value == ".." {
        return violation(Problem::BadFormat, "must not be \".\" or \"..\"");
    }
    Ok(())
}

/// A value of the policy tag API: 0 to 43 of `[A-Za-z0-9_.-]`.
pub fn tag_api_value(value: &str) -> Check {
    tag_api_text(value, TAG_VALUE_MAX)
}

/// A UUID in its canonical 8-4-4-4-12 hex form.
pub fn uuid(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    let groups: Vec<&str> = value.split('-').collect();
    let shaped = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, len)| group.len() == len && group.chars().all(|c| c.is_ascii_hexdigit()));
    if !shaped {
        return violation(Problem::NotAUuid, "must be a UUID (8-4-4-4-12 hex digits)");
    }
    Ok(())
}

/// An id that is safe as one URL path segment: 1 to 64 of `[A-Za-z0-9_-]`.
pub fn path_id(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    if value.len() > ID_MAX {
        return violation(
            Problem::TooLong,
            format!("must be 1 to {ID_MAX} letters, digits, underscores or hyphens"),
        );
    }
    if !value.chars().all(is_name_char) {
        return violation(
            Problem::BadCharacter,
            format!("must be 1 to {ID_MAX} letters, digits, underscores or hyphens"),
        );
    }
    Ok(())
}

/// Policy run times: full hours `HH:00` (UTC), several separated by commas.
pub fn start_time(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    let full_hour = |t: &str| {
        t.len() == 5
            && t.ends_with(":00")
            && t[..2].chars().all(|c| c.is_ascii_digit())
            && t[..2].parse::<u8>().is_ok_and(|h| h < 24)
    };
    let times = value.split(',').count();
    if times > START_TIMES_MAX {
        return violation(
            Problem::TooManyEntries,
            format!("must list at most {START_TIMES_MAX} full hours, got {times}"),
        );
    }
    if !value.split(',').all(full_hour) {
        return violation(
            Problem::BadFormat,
            "must be full hours HH:00 (UTC), several separated by commas, e.g. \"22:00,02:00\"",
        );
    }
    Ok(())
}

/// A number within `range`.
pub fn in_range(value: i64, range: &RangeInclusive<i64>) -> Check {
    if !range.contains(&value) {
        return violation(
            Problem::OutOfRange,
            format!("must be from {} to {}, got {value}", range.start(), range.end()),
        );
    }
    Ok(())
}

/// One of a fixed set of words.
pub fn one_of(value: &str, allowed: &[&str]) -> Check {
    if !allowed.contains(&value) {
        return violation(Problem::NotInSet, format!("must be one of {}", allowed.join(", ")));
    }
    Ok(())
}

/// A list offset: zero or more.
pub fn offset(value: i64) -> Check {
    if value < 0 {
        return violation(Problem::OutOfRange, format!("must be 0 or more, got {value}"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(check: Check) -> Option<Problem> {
        check.err().map(|v| v.problem)
    }

    #[test]
    fn backup_names() {
        assert_eq!(problem(backup_name("nightly-01_a")), None);
        assert_eq!(problem(backup_name("")), Some(Problem::Missing));
        assert_eq!(problem(backup_name(&"a".repeat(65))), Some(Problem::TooLong));
        assert_eq!(problem(backup_name(&"a".repeat(64))), None);
        assert_eq!(problem(backup_name("has space")), Some(Problem::BadCharacter));
        assert_eq!(problem(backup_name("autobk_1")), Some(Problem::ReservedPrefix));
        assert_eq!(problem(backup_name("Auto")), None);
    }

    #[test]
    fn policy_names() {
        assert_eq!(problem(policy_name("policy_01")), None);
        assert_eq!(problem(policy_name("default_x")), Some(Problem::ReservedPrefix));
        assert_eq!(problem(policy_name("p.1")), Some(Problem::BadCharacter));
    }

    #[test]
    fn tag_api_keys_and_values() {
        assert_eq!(problem(tag_api_key("0f187b65-8d0e.x_Y")), None);
        assert_eq!(problem(tag_api_key("")), Some(Problem::Missing));
        assert_eq!(problem(tag_api_key("..")), Some(Problem::BadFormat));
        assert_eq!(problem(tag_api_key("a b")), Some(Problem::BadCharacter));
        assert_eq!(problem(tag_api_key(&"k".repeat(37))), Some(Problem::TooLong));
        assert_eq!(problem(tag_api_value("")), None);
        assert_eq!(problem(tag_api_value("a:b")), Some(Problem::BadCharacter));
        assert_eq!(problem(tag_api_value(&"v".repeat(44))), Some(Problem::TooLong));
    }

    #[test]
    fn descriptions_and_tags() {
        assert_eq!(problem(description("", 64)), None);
        assert_eq!(problem(description("a<b", 64)), Some(Problem::BadCharacter));
        assert_eq!(problem(description(&"é".repeat(64), 64)), None);
        assert_eq!(problem(description(&"é".repeat(65), 64)), Some(Problem::TooLong));
        assert_eq!(problem(tag_key("")), Some(Problem::Missing));
        assert_eq!(problem(tag_key("a/b")), Some(Problem::BadCharacter));
        assert_eq!(problem(tag_key("a\u{7}")), Some(Problem::BadCharacter));
        assert_eq!(problem(tag_value("")), None);
        assert_eq!(problem(tag_value(&"v".repeat(44))), Some(Problem::TooLong));
    }

    #[test]
    fn ids() {
        assert_eq!(problem(uuid("c68ae7fb-0aa5-4a97-ab01-ed02c5b7e768")), None);
        assert_eq!(
            problem(uuid("c68ae7fb0aa54a97ab01ed02c5b7e768")),
            Some(Problem::NotAUuid)
        );
        assert_eq!(
            problem(uuid("g68ae7fb-0aa5-4a97-ab01-ed02c5b7e768")),
            Some(Problem::NotAUuid)
        );
        assert_eq!(problem(path_id("4010b39b5281d3590152874bfa3b1604")), None);
        assert_eq!(problem(path_id("../etc")), Some(Problem::BadCharacter));
        assert_eq!(problem(path_id("a%2Fb")), Some(Problem::BadCharacter));
        assert_eq!(problem(path_id(&"a".repeat(65))), Some(Problem::TooLong));
        assert_eq!(problem(path_id("")), Some(Problem::Missing));
    }

    #[test]
    fn start_times() {
        assert_eq!(problem(start_time("12:00")), None);
        assert_eq!(problem(start_time("22:00,00:00,02:00")), None);
        assert_eq!(problem(start_time("12:30")), Some(Problem::BadFormat));
        assert_eq!(problem(start_time("24:00")), Some(Problem::BadFormat));
        assert_eq!(problem(start_time("12:00,")), Some(Problem::BadFormat));
        assert_eq!(problem(start_time("")), Some(Problem::Missing));
        let every_hour: Vec<String> = (0..24).map(|h| format!("{h:02}:00")).collect();
        assert_eq!(problem(start_time(&every_hour.join(","))), None);
        let one_too_many = format!("{},00:00", every_hour.join(","));
        assert_eq!(problem(start_time(&one_too_many)), Some(Problem::TooManyEntries));
    }

    #[test]
    fn ranges_and_words() {
        assert_eq!(problem(in_range(1, &FREQUENCY_ON_CREATE)), None);
        assert_eq!(problem(in_range(31, &FREQUENCY_ON_CREATE)), Some(Problem::OutOfRange));
        assert_eq!(problem(one_of("asc", SORT_DIRECTIONS)), None);
        assert_eq!(problem(one_of("up", SORT_DIRECTIONS)), Some(Problem::NotInSet));
        assert_eq!(problem(offset(-1)), Some(Problem::OutOfRange));
    }

    #[test]
    fn bounds() {
        assert_eq!(problem(text_at_most(&"é".repeat(64), NAME_FILTER_MAX)), None);
        assert_eq!(
            problem(text_at_most(&"é".repeat(65), NAME_FILTER_MAX)),
            Some(Problem::TooLong)
        );
        assert_eq!(problem(entries_at_most(TAGS_MAX, TAGS_MAX)), None);
        assert_eq!(
            problem(entries_at_most(TAGS_MAX + 1, TAGS_MAX)),
            Some(Problem::TooManyEntries)
        );
    }

    #[test]
    fn reasons_are_distinct_upper_snake_names() {
        let reasons: std::collections::HashSet<&str> = Problem::ALL.iter().map(|p| p.reason()).collect();
        assert_eq!(reasons.len(), Problem::ALL.len());
        for reason in reasons {
            assert!(
                !reason.is_empty() && reason.chars().all(|c| c.is_ascii_uppercase() || c == '_'),
                "{reason}"
            );
        }
    }
}
