//! The field rules of Cloud Server Backup Service (CSBS) "Creating a Backup
//! for a Resource" (reference 003), shared by the gateway and the simulator.

use super::{Check, Problem, TAGS_MAX, description as plain_description, violation};

/// The one backup provider of CSBS: every backup of a server names it.
pub const PROVIDER_ID: &str = "fc4d5750-22e7-4798-8a46-f48f62c4c1da";
/// The one resource type CSBS backs up (an ECS), and its default.
pub const SERVER_RESOURCE_TYPE: &str = "OS::Nova::Server";
/// Backup names: 1 to 255 characters.
pub const BACKUP_NAME_MAX: usize = 255;
/// Backup descriptions: 0 to 255 characters.
pub const DESCRIPTION_MAX: usize = 255;
/// Tags on one backup: "The list can contain up to 10 keys."
pub const BACKUP_TAGS_MAX: usize = TAGS_MAX;
/// Tag keys: "up to 36 characters", not empty.
pub const TAG_KEY_MAX: usize = 36;
/// Tag values: "up to 43 characters", may be empty.
pub const TAG_VALUE_MAX: usize = 43;
/// Entries of `extra_info`: the reference sets no bound (a Dict); the
/// gateway's own, so one request stays small.
pub const EXTRA_INFO_MAX: usize = 20;
/// Keys and values of `extra_info`: the gateway's own bound, as above.
pub const EXTRA_INFO_TEXT_MAX: usize = 255;

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn letters_digits_dash_underscore(value: &str, max: usize) -> Check {
    let len = value.chars().count();
    if len > max {
        return violation(Problem::TooLong, format!("must be at most {max} characters, got {len}"));
    }
    if !value.chars().all(is_name_char) {
        return violation(
            Problem::BadCharacter,
            "may contain only letters, digits, underscores (_) and hyphens (-)",
        );
    }
    Ok(())
}

/// A backup name: 1 to 255 of `[A-Za-z0-9_-]`.
pub fn backup_name(value: &str) -> Check {
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    letters_digits_dash_underscore(value, BACKUP_NAME_MAX)
}

/// A backup description: 0 to 255 characters without `<` or `>`.
pub fn description(value: &str) -> Check {
    plain_description(value, DESCRIPTION_MAX)
}

/// A tag key as CSBS keeps it (spaces around it are dropped first): 1 to 36
/// of `[A-Za-z0-9_-]`.
pub fn tag_key(value: &str) -> Check {
    let value = value.trim();
    if value.is_empty() {
        return violation(Problem::Missing, "must not be empty");
    }
    letters_digits_dash_underscore(value, TAG_KEY_MAX)
}

/// A tag value as CSBS keeps it (spaces around it are dropped first): 0 to
/// 43 of `[A-Za-z0-9_-]`.
pub fn tag_value(value: &str) -> Check {
    letters_digits_dash_underscore(value.trim(), TAG_VALUE_MAX)
}

/// The resource type: only servers can be backed up.
pub fn resource_type(value: &str) -> Check {
    if value == SERVER_RESOURCE_TYPE {
        Ok(())
    } else {
        violation(Problem::BadFormat, format!("must be {SERVER_RESOURCE_TYPE}"))
    }
}

/// The backup provider: the one CSBS id.
pub fn provider_id(value: &str) -> Check {
    if value == PROVIDER_ID {
        Ok(())
    } else {
        violation(Problem::BadFormat, format!("must be the CSBS provider {PROVIDER_ID}"))
    }
}

/// The index of the first tag whose key (trimmed) repeats an earlier one.
pub fn repeated_tag_key<'a>(keys: impl IntoIterator<Item = &'a str>) -> Option<usize> {
    let mut seen = std::collections::HashSet::new();
    keys.into_iter().position(|key| !seen.insert(key.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_reference() {
        assert!(backup_name("backup").is_ok());
        assert!(backup_name(&"a".repeat(255)).is_ok());
        assert_eq!(backup_name("").unwrap_err().problem, Problem::Missing);
        assert_eq!(backup_name(&"a".repeat(256)).unwrap_err().problem, Problem::TooLong);
        assert_eq!(backup_name("a b").unwrap_err().problem, Problem::BadCharacter);
        // Unlike VBS, CSBS keeps no "auto" prefix for itself.
        assert!(backup_name("autobackup").is_ok());
    }

    #[test]
    fn tags_are_trimmed_then_checked() {
        assert!(tag_key(" key_1 ").is_ok());
        assert!(tag_key("   ").is_err());
        assert!(tag_key(&"k".repeat(37)).is_err());
        assert!(tag_value("").is_ok());
        assert!(tag_value(&"v".repeat(43)).is_ok());
        assert!(tag_value(&"v".repeat(44)).is_err());
        assert!(tag_value("a.b").is_err());
        assert_eq!(repeated_tag_key(["a", "b", " a"]), Some(2));
        assert_eq!(repeated_tag_key(["a", "b"]), None);
    }

    #[test]
    fn only_servers_of_the_one_provider() {
        assert!(resource_type(SERVER_RESOURCE_TYPE).is_ok());
        assert!(resource_type("OS::Cinder::Volume").is_err());
        assert!(provider_id(PROVIDER_ID).is_ok());
        assert!(provider_id("fc4d5750-22e7-4798-8a46-f48f62c4c1db").is_err());
        assert!(description(&"d".repeat(255)).is_ok());
        assert!(description("a<b").is_err());
    }
}
