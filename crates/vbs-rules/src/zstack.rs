//! The field rules of ZStack's CreateVmBackup
//! (POST /zstack/v1/volumes/{rootVolumeUuid}/vm-backups). The document marks
//! fields required or optional and gives their types, not their limits; the
//! limits here are ZStack's general ones (32-hex-digit UUIDs, names of at most
//! 255 characters) or the gateway's own bounds, each said where it is set.

use super::{Check, Problem, violation};

/// ZStack UUIDs: 32 hexadecimal digits, no hyphens (as every uuid in the document's examples).
pub const UUID_LEN: usize = 32;
/// Resource names: ZStack keeps them in 255-character columns.
pub const NAME_MAX: usize = 255;
/// Descriptions: ZStack keeps them in 2048-character columns.
pub const DESCRIPTION_MAX: usize = 2048;
/// System or user tags on one request: the gateway's own bound (the document sets none).
pub const TAGS_MAX: usize = 32;
/// One tag: the gateway's own bound (a tag is one `key::value` string).
pub const TAG_MAX: usize = 512;

/// A ZStack UUID: 32 hexadecimal digits.
pub fn uuid(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    if value.len() != UUID_LEN || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return violation(
            Problem::BadFormat,
            format!("must be a ZStack UUID: {UUID_LEN} hexadecimal digits without hyphens"),
        );
    }
    Ok(())
}

/// A name: 1 to 255 characters, no control characters.
pub fn name(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    free_text(value, NAME_MAX)
}

/// A description: at most 2048 characters, no control characters but line breaks.
pub fn description(value: &str) -> Check {
    free_text(value, DESCRIPTION_MAX)
}

/// A bandwidth limit in bytes per second: more than zero when given.
pub fn bandwidth(value: i64) -> Check {
    if value <= 0 {
        return violation(
            Problem::OutOfRange,
            format!("must be more than 0 bytes per second, got {value}"),
        );
    }
    Ok(())
}

/// One system or user tag: 1 to 512 characters, no control characters.
pub fn tag(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    free_text(value, TAG_MAX)
}

fn free_text(value: &str, max: usize) -> Check {
    let len = value.chars().count();
    if len > max {
        return violation(Problem::TooLong, format!("must be at most {max} characters, got {len}"));
    }
    if value.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return violation(Problem::BadCharacter, "must not contain control characters");
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
    fn uuids_are_32_hex_digits() {
        assert_eq!(uuid("2ae6b881bb1239cd907d48993e86a2e8"), Ok(()));
        assert_eq!(problem(uuid("")), Some(Problem::Missing));
        assert_eq!(
            problem(uuid("2ae6b881-bb12-39cd-907d-48993e86a2e8")),
            Some(Problem::BadFormat)
        );
        assert_eq!(
            problem(uuid("2ae6b881bb1239cd907d48993e86a2eg")),
            Some(Problem::BadFormat)
        );
    }

    #[test]
    fn names_descriptions_and_tags_are_bounded_text() {
        assert_eq!(name("Root-Volume-Backup-1"), Ok(()));
        assert_eq!(problem(name("")), Some(Problem::Missing));
        assert_eq!(problem(name(&"n".repeat(256))), Some(Problem::TooLong));
        assert_eq!(problem(name("a\u{7}b")), Some(Problem::BadCharacter));
        assert_eq!(description(""), Ok(()));
        assert_eq!(description("two\nlines"), Ok(()));
        assert_eq!(problem(description(&"d".repeat(2049))), Some(Problem::TooLong));
        assert_eq!(tag("ha::NeverStop"), Ok(()));
        assert_eq!(problem(tag("")), Some(Problem::Missing));
    }

    #[test]
    fn bandwidths_are_positive() {
        assert_eq!(bandwidth(1), Ok(()));
        assert_eq!(problem(bandwidth(0)), Some(Problem::OutOfRange));
        assert_eq!(problem(bandwidth(-5)), Some(Problem::OutOfRange));
    }
}
