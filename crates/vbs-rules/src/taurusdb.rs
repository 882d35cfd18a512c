//! The field rules of TaurusDB's "Creating a Manual Backup"
//! (POST /v3/{project_id}/backups/create), shared by the gateway and the
//! simulator so both read the document the same way.

use super::{Check, Problem, violation};

/// Instance ids: exactly this many characters...
pub const INSTANCE_ID_LEN: usize = 36;
/// ...ending in this suffix (the document: "36 characters with a suffix of in07").
pub const INSTANCE_ID_SUFFIX: &str = "in07";
/// Backup names: 4 to 64 characters.
pub const BACKUP_NAME_MIN: usize = 4;
/// Backup names: 4 to 64 characters.
pub const BACKUP_NAME_MAX: usize = 64;
/// Backup descriptions: up to 256 characters.
pub const BACKUP_DESCRIPTION_MAX: usize = 256;
/// Characters a description may not hold, besides carriage returns.
pub const DESCRIPTION_FORBIDDEN: &[char] = &['!', '<', '"', '=', '\'', '>', '&'];

/// An instance id: 36 letters and digits, the last four `in07`.
pub fn instance_id(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    let shaped = value.len() == INSTANCE_ID_LEN
        && value.bytes().all(|b| b.is_ascii_alphanumeric())
        && value.ends_with(INSTANCE_ID_SUFFIX);
    if !shaped {
        return violation(
            Problem::BadFormat,
            format!("must be {INSTANCE_ID_LEN} letters and digits ending in {INSTANCE_ID_SUFFIX}"),
        );
    }
    Ok(())
}

/// A backup name: 4 to 64 of `[A-Za-z0-9_-]`, starting with a letter.
pub fn backup_name(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    let len = value.chars().count();
    if len > BACKUP_NAME_MAX {
        return violation(
            Problem::TooLong,
            format!("must be at most {BACKUP_NAME_MAX} characters, got {len}"),
        );
    }
    if len < BACKUP_NAME_MIN {
        return violation(
            Problem::BadFormat,
            format!("must be at least {BACKUP_NAME_MIN} characters, got {len}"),
        );
    }
    if !value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return violation(
            Problem::BadCharacter,
            "may hold only letters, digits, hyphens and underscores",
        );
    }
    if !value.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return violation(Problem::BadFormat, "must start with a letter");
    }
    Ok(())
}

/// A backup description: up to 256 characters, no carriage return and none of `!<"='>&`.
pub fn backup_description(value: &str) -> Check {
    let len = value.chars().count();
    if len > BACKUP_DESCRIPTION_MAX {
        return violation(
            Problem::TooLong,
            format!("must be at most {BACKUP_DESCRIPTION_MAX} characters, got {len}"),
        );
    }
    if value.contains('\r') || value.contains(DESCRIPTION_FORBIDDEN) {
        return violation(
            Problem::BadCharacter,
            "must not contain carriage returns or any of ! < \" = ' > &",
        );
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
    fn instance_ids_are_36_characters_ending_in_in07() {
        assert_eq!(instance_id("07033b125fd94a8a96896f8bcfee6ddain07"), Ok(()));
        assert_eq!(problem(instance_id("")), Some(Problem::Missing));
        for bad in [
            "07033b125fd94a8a96896f8bcfee6ddain01",
            "07033b125fd94a8a96896f8bcfee6ddin07",
            "07033b12-fd94-4a8a-9689-6f8bcfeein07",
        ] {
            assert_eq!(problem(instance_id(bad)), Some(Problem::BadFormat), "{bad}");
        }
    }

    #[test]
    fn names_start_with_a_letter_and_are_4_to_64_long() {
        assert_eq!(backup_name("backup-1"), Ok(()));
        assert_eq!(backup_name("b_1-"), Ok(()));
        assert_eq!(problem(backup_name("")), Some(Problem::Missing));
        assert_eq!(problem(backup_name("bak")), Some(Problem::BadFormat));
        assert_eq!(problem(backup_name("1backup")), Some(Problem::BadFormat));
        assert_eq!(problem(backup_name("back up")), Some(Problem::BadCharacter));
        assert_eq!(problem(backup_name(&"b".repeat(65))), Some(Problem::TooLong));
        assert_eq!(backup_name(&"b".repeat(64)), Ok(()));
    }

    #[test]
    fn descriptions_refuse_the_listed_characters() {
        assert_eq!(backup_description(""), Ok(()));
        assert_eq!(backup_description("Manual backup, before the upgrade"), Ok(()));
        for bad in ["a!", "a<b", "\"", "a=b", "it's", "a>b", "a&b", "line\r"] {
            assert_eq!(problem(backup_description(bad)), Some(Problem::BadCharacter), "{bad:?}");
        }
        assert_eq!(problem(backup_description(&"d".repeat(257))), Some(Problem::TooLong));
        assert_eq!(backup_description(&"d".repeat(256)), Ok(()));
    }
}
