//! Why the simulated VBS refuses an operation: its error codes (reference
//! section 6.2), the message its table gives each, and the Rejection the
//! routes turn into the body shape of each API family.

use std::fmt::Display;

/// VBS error codes the simulator answers with (reference section 6.2).
pub(crate) mod code {
    pub(crate) const BAD_BODY: &str = "VolumeBackup.0002";
    pub(crate) const NAME_TOO_LONG: &str = "VolumeBackup.0003";
    pub(crate) const NAME_BAD_CHARACTER: &str = "VolumeBackup.0004";
    pub(crate) const NAME_RESERVED: &str = "VolumeBackup.0005";
    pub(crate) const DESCRIPTION_INVALID: &str = "VolumeBackup.0006";
    pub(crate) const NAME_MISSING: &str = "VolumeBackup.0007";
    pub(crate) const VOLUME_ID_MISSING: &str = "VolumeBackup.0010";
    pub(crate) const VOLUME_ID_NOT_UUID: &str = "VolumeBackup.0011";
    pub(crate) const VOLUME_BAD_STATUS: &str = "VolumeBackup.0012";
    pub(crate) const VOLUME_BACKUP_UNFINISHED: &str = "VolumeBackup.0013";
    pub(crate) const SNAPSHOT_NOT_FOUND: &str = "VolumeBackup.0020";
    pub(crate) const VOLUME_NOT_FOUND: &str = "VolumeBackup.0021";
    pub(crate) const TAG_INVALID: &str = "VolumeBackup.0049";
    pub(crate) const TOO_MANY_TAGS: &str = "VolumeBackup.0050";
    pub(crate) const BACKUP_NOT_AVAILABLE: &str = "VolumeBackup.0089";
    pub(crate) const RESTORE_NOT_FOUND: &str = "VolumeBackup.0111";
    pub(crate) const BACKUP_ID_NOT_UUID: &str = "VolumeBackup.0204";
    pub(crate) const RESTORE_TARGET_NOT_AVAILABLE: &str = "VolumeBackup.0205";
    pub(crate) const RESTORE_TARGET_BACKING_UP: &str = "VolumeBackup.0206";
    pub(crate) const RESTORE_VOLUME_ID_MISSING: &str = "VolumeBackup.0208";
    pub(crate) const RESTORE_TARGET_TOO_SMALL: &str = "VolumeBackup.0209";
    pub(crate) const RESTORE_BODY_EMPTY: &str = "VolumeBackup.0210";
    pub(crate) const JOB_NOT_FOUND: &str = "common.0011";
    pub(crate) const POLICY_BODY_EMPTY: &str = "AutoBackup.0000";
    pub(crate) const POLICY_EMPTY_STRUCTURE: &str = "AutoBackup.0001";
    pub(crate) const POLICY_ID_EMPTY: &str = "AutoBackup.0006";
    pub(crate) const POLICY_BAD_BODY: &str = "AutoBackup.0008";
    pub(crate) const POLICY_NAME_RESERVED: &str = "AutoBackup.0100";
    pub(crate) const POLICY_NAME_LENGTH: &str = "AutoBackup.0101";
    pub(crate) const POLICY_NAME_INVALID: &str = "AutoBackup.0102";
    pub(crate) const START_TIME_INVALID: &str = "AutoBackup.0103";
    pub(crate) const POLICY_STATUS_INVALID: &str = "AutoBackup.0104";
    pub(crate) const REMAIN_FIRST_INVALID: &str = "AutoBackup.0105";
    pub(crate) const FREQUENCY_INVALID: &str = "AutoBackup.0106";
    pub(crate) const RETENTION_NUM_INVALID: &str = "AutoBackup.0107";
    pub(crate) const RETENTION_DAY_INVALID: &str = "AutoBackup.0108";
    pub(crate) const WEEK_FREQUENCY_INVALID: &str = "AutoBackup.0109";
    pub(crate) const TOO_MANY_POLICIES: &str = "AutoBackup.0203";
    pub(crate) const POLICY_NOT_FOUND: &str = "AutoBackup.0205";
    pub(crate) const BIND_VOLUME_BAD_STATUS: &str = "AutoBackup.0206";
    pub(crate) const RESOURCES_EMPTY: &str = "AutoBackup.0207";
    pub(crate) const RESOURCE_NOT_FOUND: &str = "AutoBackup.0208";
    pub(crate) const RESOURCE_ID_EMPTY: &str = "AutoBackup.0209";
    pub(crate) const RESOURCE_TYPE_INVALID: &str = "AutoBackup.0211";
    pub(crate) const POLICY_TAG_INVALID: &str = "AutoBackup.0221";
    pub(crate) const POLICY_RUNNING: &str = "AutoBackup.0225";
    pub(crate) const RESOURCE_ILLEGAL: &str = "AutoBackup.1400";
}

/// The "Error Message" column of the reference's table, by code.
pub(crate) fn table_message(error_code: &str) -> &'static str {
    match error_code {
        code::BAD_BODY => "api request parameter instance null",
        code::NAME_TOO_LONG => "api request parameter name over length",
        code::NAME_BAD_CHARACTER => "api request parameter name invalid character",
        code::NAME_RESERVED => "api request parameter name invalid prefix",
        code::DESCRIPTION_INVALID => "api request parameter description is invalid",
        code::NAME_MISSING => "api request parameter name is null",
        code::VOLUME_ID_MISSING => "api request parameter volume_id null",
        code::VOLUME_ID_NOT_UUID => "api request parameter volume_id invalid UUID pattern",
        code::VOLUME_BAD_STATUS => "volume status is not available or in-use",
        code::VOLUME_BACKUP_UNFINISHED => "volume's last backup progress is not finished",
        code::SNAPSHOT_NOT_FOUND => "got snapshot detail is null",
        code::VOLUME_NOT_FOUND => "volume not exists",
        code::TAG_INVALID => "api request tag parameter is invalid",
        code::TOO_MANY_TAGS => "The number of tags exceeded",
        code::BACKUP_NOT_AVAILABLE => "backup status is not available",
        code::RESTORE_NOT_FOUND => "the volume info or backup detail is not exist",
        code::BACKUP_ID_NOT_UUID => "api request parameter backup_id invalid UUID pattern",
        code::RESTORE_TARGET_NOT_AVAILABLE => "volume for restore state is not available",
        code::RESTORE_TARGET_BACKING_UP => "volume for restore is creating backup",
        code::RESTORE_VOLUME_ID_MISSING => "volumeID in body is null or empty",
        code::RESTORE_TARGET_TOO_SMALL => "volume size is less than backup size",
        code::RESTORE_BODY_EMPTY => "body in request is empty",
        code::JOB_NOT_FOUND => "query job fail",
        code::POLICY_BODY_EMPTY => "request body is empty",
        code::POLICY_EMPTY_STRUCTURE => "request body exist empty structure",
        code::POLICY_ID_EMPTY => "request policy id is empty",
        code::POLICY_BAD_BODY => "convert request to JSON object failed",
        code::POLICY_NAME_RESERVED => "normal tenant has no right to operator default policy",
        code::POLICY_NAME_LENGTH => "backup policy name length is illegal",
        code::POLICY_NAME_INVALID => "backup policy name is invalid",
        code::START_TIME_INVALID => "schedule policy start time format error",
        code::POLICY_STATUS_INVALID => "schedule policy status is illegal",
        code::REMAIN_FIRST_INVALID => "schedule policy remain firstbackup of cur month is illegal",
        code::FREQUENCY_INVALID => "schedule policy frequency is out of range",
        code::RETENTION_NUM_INVALID => "schedule policy retention num is out of range",
        code::RETENTION_DAY_INVALID => "schedule policy retention day is out of range",
        code::WEEK_FREQUENCY_INVALID => {
            "schedule policy week frequency is illegal, must in (SUN, MON, TUE, WED, THU, FRI, SAT)"
        }
        code::TOO_MANY_POLICIES => "backup policy num over limit",
        code::POLICY_NOT_FOUND => "policyId is not exist",
        code::BIND_VOLUME_BAD_STATUS => "volume to bind is in bad status",
        code::RESOURCES_EMPTY => "resource to bind is empty",
        code::RESOURCE_NOT_FOUND => "unable to get specified resource detail, may be incorrect resource id",
        code::RESOURCE_ID_EMPTY => "resource id or resource name is empty",
        code::RESOURCE_TYPE_INVALID => "bad resource type",
        code::POLICY_TAG_INVALID => "The request contains invalid parameters",
        code::POLICY_RUNNING => "the backup policy is being executed, failed to execute the backup task",
        code::RESOURCE_ILLEGAL => "policy bind resources: resources illegal",
        _ => "request failed",
    }
}

/// Why an operation was refused; the routes choose the body shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// 400 with a VBS error code.
    Invalid { code: &'static str, message: String },
    /// 404: the named thing does not exist.
    NotFound {
        code: &'static str,
        resource: Resource,
        id: String,
    },
    /// 400 for a list parameter; VBS checks these the OpenStack way.
    BadQuery(String),
}

impl Rejection {
    pub(super) fn invalid(code: &'static str) -> Self {
        Rejection::Invalid {
            code,
            message: table_message(code).to_owned(),
        }
    }

    pub(super) fn invalid_because(code: &'static str, detail: impl Display) -> Self {
        Rejection::Invalid {
            code,
            message: format!("{}: {detail}", table_message(code)),
        }
    }

    pub(super) fn not_found(code: &'static str, resource: Resource, id: &str) -> Self {
        Rejection::NotFound {
            code,
            resource,
            id: id.to_owned(),
        }
    }
}

/// The kind of thing a NotFound is about; native 404 bodies name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resource {
    Backup,
    Volume,
    Policy,
    Job,
}

impl Resource {
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Resource::Backup => "Backup",
            Resource::Volume => "Volume",
            Resource::Policy => "Policy",
            Resource::Job => "Job",
        }
    }
}
