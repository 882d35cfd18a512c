//! What the simulated API gateway adds to every request, whichever module
//! answers it: the body limit, request ids, and which paths are the
//! simulator's own admin API.

/// Requests above this are refused before routing (AK/SK signing allows 12 MB).
pub(crate) const MAX_BODY: usize = 12 * 1024 * 1024;

/// The simulator's admin API (clock, failures, volumes), not VBS's.
pub(crate) fn is_admin_path(path: &str) -> bool {
    path == "/simulator" || path.starts_with("/simulator/")
}

/// A request id like the API gateway's: 32 hex digits.
pub(crate) fn request_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}
