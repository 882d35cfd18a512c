//! One paging pattern for every List RPC: `page_size` and an opaque
//! `page_token` in, `next_page_token` out. A token is what VBS pages by: the
//! last item's id (a marker) for lists VBS pages by marker, a position for
//! lists paged by offset. Callers pass tokens back unchanged.

use super::Violations;
use vbs_rules::Problem;

/// The request field every token arrives in.
const FIELD: &str = "page_token";
/// What a caller is told about a token this list did not hand out.
const NOT_A_TOKEN: &str = "is not a page token of this list: pass the previous response's next_page_token unchanged";

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PageStart {
    /// At the first item.
    First,
    /// After the item with this id (VBS's `marker`).
    After(String),
    /// At this position (VBS's `offset`).
    At(u32),
}

impl PageStart {
    /// The marker to send, if the page starts after an item.
    pub(crate) fn marker(&self) -> Option<String> {
        match self {
            PageStart::After(id) => Some(id.clone()),
            _ => None,
        }
    }

    /// The offset to send, if the page starts at a position other than the first.
    pub(crate) fn offset(&self) -> Option<u32> {
        match self {
            PageStart::At(0) | PageStart::First | PageStart::After(_) => None,
            PageStart::At(position) => Some(*position),
        }
    }

    /// The position of the page's first item (0 unless it starts at one).
    pub(crate) fn position(&self) -> u32 {
        match self {
            PageStart::At(position) => *position,
            _ => 0,
        }
    }
}

/// A token of a list VBS pages by marker: empty, or the id (UUID) of the
/// previous page's last item.
pub(crate) fn after_marker(v: &mut Violations, token: &str) -> PageStart {
    if token.is_empty() {
        return PageStart::First;
    }
    if vbs_rules::uuid(token).is_err() {
        v.add(FIELD, Problem::NotAPageToken, NOT_A_TOKEN);
        return PageStart::First;
    }
    PageStart::After(token.to_string())
}

/// A token of a list paged by offset: empty, or a position.
pub(crate) fn at_position(v: &mut Violations, token: &str) -> PageStart {
    if token.is_empty() {
        return PageStart::First;
    }
    match parse_position(token) {
        Some(position) => PageStart::At(position),
        None => {
            v.add(FIELD, Problem::NotAPageToken, NOT_A_TOKEN);
            PageStart::First
        }
    }
}

/// A token of a list whose next link names a marker or an offset (shares).
pub(crate) fn marker_or_position(v: &mut Violations, token: &str) -> PageStart {
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
        at_position(v, token)
    } else {
        after_marker(v, token)
    }
}

/// The token of the page after `returned` items that started at `start`,
/// when `total` says more follow; empty on the last page.
pub(crate) fn next_position(start: &PageStart, returned: usize, total: usize) -> String {
    let next = (start.position() as usize).saturating_add(returned);
    if returned == 0 || next >= total {
        return String::new();
    }
    u32::try_from(next).map(|n| n.to_string()).unwrap_or_default()
}

/// A position a token may name: the offsets VBS takes are 32-bit.
fn parse_position(token: &str) -> Option<u32> {
    // "+1" and "01" parse as numbers but are not tokens this gateway writes.
    if token.len() > 1 && token.starts_with('0') || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse::<u32>().ok().filter(|n| i32::try_from(*n).is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3b5c2a0e-0000-4000-8000-000000000001";

    fn read(token: &str, reader: fn(&mut Violations, &str) -> PageStart) -> Result<PageStart, ()> {
        let mut v = Violations::default();
        let start = reader(&mut v, token);
        v.finish().map(|()| start).map_err(|_| ())
    }

    #[test]
    fn marker_lists_take_an_id_and_nothing_else() {
        assert_eq!(read("", after_marker), Ok(PageStart::First));
        assert_eq!(read(ID, after_marker), Ok(PageStart::After(ID.into())));
        assert!(read("20", after_marker).is_err());
        assert!(read("../x", after_marker).is_err());
    }

    #[test]
    fn offset_lists_take_a_plain_position() {
        assert_eq!(read("", at_position), Ok(PageStart::First));
        assert_eq!(read("40", at_position), Ok(PageStart::At(40)));
        for bad in ["-1", "+4", "04", "4294967296", "2147483648", ID, "1e3"] {
            assert!(read(bad, at_position).is_err(), "{bad}");
        }
    }

    #[test]
    fn share_tokens_are_either() {
        assert_eq!(read("7", marker_or_position), Ok(PageStart::At(7)));
        assert_eq!(read(ID, marker_or_position), Ok(PageStart::After(ID.into())));
        assert!(read("x7", marker_or_position).is_err());
    }

    #[test]
    fn the_next_position_is_empty_on_the_last_page() {
        assert_eq!(next_position(&PageStart::First, 10, 25), "10");
        assert_eq!(next_position(&PageStart::At(20), 5, 25), "");
        assert_eq!(next_position(&PageStart::At(20), 0, 25), "");
        assert_eq!(next_position(&PageStart::First, 3, 3), "");
    }
}
