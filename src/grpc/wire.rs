//! The VBS spelling of the contract's enums: one trait, and one macro that
//! writes both directions of an enum's table from a single list.

/// An enum of the contract that VBS spells as a word ("available", "ON", "MON").
///
/// `Unspecified` has no spelling: in a request it means "no filter, send
/// nothing", and in a reply it stands for any word this gateway does not know
/// yet (the raw word is kept beside it, so a new upstream value never breaks a
/// caller).
pub(crate) trait WireName: Sized {
    /// The word VBS uses for this value; `None` for `Unspecified`.
    fn wire(self) -> Option<&'static str>;
    /// The value VBS means by `raw`; `Unspecified` for a word not in the table.
    fn from_wire(raw: &str) -> Self;
}

/// Implements [`WireName`] for a protobuf enum from one table
/// `Variant <=> "wire"`. The enum's `Unspecified` stays off the table; the
/// match in `wire` is exhaustive, so a variant added to the proto without a
/// spelling does not compile. `ignore_ascii_case` makes `from_wire` accept any
/// letter case.
macro_rules! wire_enum {
    ($enum:ident { $($variant:ident <=> $wire:literal),+ $(,)? }) => {
        $crate::grpc::wire::wire_enum!(@impl $enum, str::eq, { $($variant <=> $wire),+ });
    };
    ($enum:ident, ignore_ascii_case { $($variant:ident <=> $wire:literal),+ $(,)? }) => {
        $crate::grpc::wire::wire_enum!(@impl $enum, str::eq_ignore_ascii_case, { $($variant <=> $wire),+ });
    };
    (@impl $enum:ident, $same:path, { $($variant:ident <=> $wire:literal),+ }) => {
        impl $crate::grpc::wire::WireName for $enum {
            fn wire(self) -> Option<&'static str> {
                match self {
                    $enum::Unspecified => None,
                    $($enum::$variant => Some($wire),)+
                }
            }

            fn from_wire(raw: &str) -> Self {
                $(if $same(raw, $wire) {
                    return $enum::$variant;
                })+
                $enum::Unspecified
            }
        }
    };
}
pub(crate) use wire_enum;

/// Checks a table: every value the proto defines but `Unspecified` has a
/// spelling that reads back as itself, and an unknown word reads as
/// `Unspecified`.
#[cfg(test)]
pub(crate) fn assert_round_trips<E>()
where
    E: WireName + TryFrom<i32> + Copy + PartialEq + std::fmt::Debug,
{
    let unspecified = E::try_from(0).ok().expect("every contract enum has a zero value");
    assert_eq!(unspecified.wire(), None, "the zero value has no spelling");
    // Proto enum values here are small and contiguous; 64 leaves room to grow.
    let named: Vec<E> = (1..64).filter_map(|n| E::try_from(n).ok()).collect();
    assert!(!named.is_empty());
    for value in named {
        let wire = value.wire().unwrap_or_else(|| panic!("{value:?} has no spelling"));
        assert_eq!(E::from_wire(wire), value, "{wire:?} does not read back");
    }
    assert_eq!(E::from_wire("no_such_value"), unspecified);
    assert_eq!(E::from_wire(""), unspecified);
}
