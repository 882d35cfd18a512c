//! A policy's schedule: what VBS keeps of `scheduled_policy`, and the checks,
//! whose limits differ between creating a policy and updating one.

use serde::Deserialize;

use crate::state::{Rejection, check, code};
use vbs_rules as rules;

/// A policy's schedule, holding only the keys that were set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Schedule {
    pub(crate) start_time: Option<String>,
    pub(crate) frequency: Option<i64>,
    pub(crate) week_frequency: Option<Vec<String>>,
    pub(crate) retention_num: Option<i64>,
    pub(crate) retention_day: Option<i64>,
    pub(crate) remain_first_backup_of_cur_month: Option<String>,
    pub(crate) status: Option<String>,
}

/// `scheduled_policy`, with VBS's own spelling of the retention keys.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ScheduleInput {
    pub(crate) start_time: Option<String>,
    pub(crate) frequency: Option<i64>,
    pub(crate) week_frequency: Option<Vec<String>>,
    #[serde(rename = "rentention_num")]
    pub(crate) retention_num: Option<i64>,
    #[serde(rename = "rentention_day")]
    pub(crate) retention_day: Option<i64>,
    /// Taken as any JSON value so a wrong type is a 0105, not a parse error.
    #[serde(rename = "remain_first_backup_of_curMonth")]
    pub(crate) remain_first_backup_of_cur_month: Option<serde_json::Value>,
    pub(crate) status: Option<String>,
}

impl ScheduleInput {
    pub(super) fn is_empty(&self) -> bool {
        self.start_time.is_none()
            && self.frequency.is_none()
            && self.week_frequency.is_none()
            && self.retention_num.is_none()
            && self.retention_day.is_none()
            && self.remain_first_backup_of_cur_month.is_none()
            && self.status.is_none()
    }
}

/// The limits that differ between creating and updating a policy.
pub(super) struct ScheduleRanges {
    frequency: std::ops::RangeInclusive<i64>,
    retention_num: std::ops::RangeInclusive<i64>,
    /// On create, start time and status must be given.
    creating: bool,
}

pub(super) const CREATE_RANGES: ScheduleRanges = ScheduleRanges {
    frequency: rules::FREQUENCY_ON_CREATE,
    retention_num: rules::RETENTION_NUM_ON_CREATE,
    creating: true,
};

pub(super) const UPDATE_RANGES: ScheduleRanges = ScheduleRanges {
    frequency: rules::FREQUENCY_ON_UPDATE,
    retention_num: rules::RETENTION_NUM_ON_UPDATE,
    creating: false,
};

/// Checks a schedule and lays it over `current`. Frequency and week days
/// are two ways of saying when to run, so setting one drops the other.
pub(super) fn checked_schedule(
    input: &ScheduleInput,
    current: Schedule,
    ranges: &ScheduleRanges,
) -> Result<Schedule, Rejection> {
    let mut schedule = current;
    match (&input.start_time, ranges.creating) {
        (Some(start_time), _) => {
            check(rules::start_time(start_time), "start_time", |_| {
                code::START_TIME_INVALID
            })?;
            schedule.start_time = Some(start_time.clone());
        }
        (None, true) => {
            return Err(Rejection::invalid_because(
                code::START_TIME_INVALID,
                "start_time is required",
            ));
        }
        (None, false) => {}
    }
    if input.frequency.is_none() && input.week_frequency.is_none() {
        return Err(Rejection::invalid_because(
            code::FREQUENCY_INVALID,
            "frequency or week_frequency is required",
        ));
    }
    if let Some(frequency) = input.frequency {
        check(rules::in_range(frequency, &ranges.frequency), "frequency", |_| {
            code::FREQUENCY_INVALID
        })?;
    }
    if let Some(days) = &input.week_frequency {
        if days.is_empty() {
            return Err(Rejection::invalid_because(
                code::WEEK_FREQUENCY_INVALID,
                "week_frequency must name at least one day",
            ));
        }
        for day in days {
            check(rules::one_of(day, rules::WEEKDAYS), "week_frequency", |_| {
                code::WEEK_FREQUENCY_INVALID
            })?;
        }
    }
    schedule.frequency = input.frequency;
    schedule.week_frequency = input.week_frequency.clone();
    if let Some(num) = input.retention_num {
        check(rules::in_range(num, &ranges.retention_num), "rentention_num", |_| {
            code::RETENTION_NUM_INVALID
        })?;
        schedule.retention_num = Some(num);
    }
    if let Some(days) = input.retention_day {
        check(rules::in_range(days, &rules::RETENTION_DAY), "rentention_day", |_| {
            code::RETENTION_DAY_INVALID
        })?;
        schedule.retention_day = Some(days);
    }
    if let Some(value) = &input.remain_first_backup_of_cur_month {
        let text = value.as_str().unwrap_or_default();
        check(
            rules::one_of(text, &["Y", "N"]),
            "remain_first_backup_of_curMonth",
            |_| code::REMAIN_FIRST_INVALID,
        )?;
        schedule.remain_first_backup_of_cur_month = Some(text.to_owned());
    }
    match (&input.status, ranges.creating) {
        (Some(status), _) => {
            check(rules::one_of(status, &["ON", "OFF"]), "status", |_| {
                code::POLICY_STATUS_INVALID
            })?;
            schedule.status = Some(status.clone());
        }
        (None, true) => {
            return Err(Rejection::invalid_because(
                code::POLICY_STATUS_INVALID,
                "status is required",
            ));
        }
        (None, false) => {}
    }
    Ok(schedule)
}
