//! The front door: who may call (callers.rs), what each role may do
//! (permissions.rs), per-caller limits (limits.rs), all applied by one layer (layer.rs).

mod callers;
mod layer;
mod limits;
mod permissions;

pub use callers::CallersFileError;
pub(crate) use callers::{key_sha256_line, load as load_callers};
pub(crate) use layer::{Admission, FrontDoor, FrontDoorSettings};
pub(crate) use limits::Limits;
