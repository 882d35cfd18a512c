//! The front door, before any call reaches a service. Per connection: TLS
//! (tls.rs, reloaded on change, mutual with a client CA) and the connection
//! limits (listener.rs, streams.rs), served by server.rs. Per call: who may call
//! (callers.rs), what each role may do (permissions.rs) and per-caller limits
//! (limits.rs), all applied by one layer (layer.rs).

mod callers;
mod layer;
mod limits;
mod listener;
mod permissions;
mod server;
mod settings;
mod streams;
mod tls;

pub use callers::CallersFileError;
pub(crate) use callers::{key_sha256_line, load as load_callers};
pub(crate) use layer::{Admission, FrontDoor, FrontDoorSettings};
pub(crate) use limits::Limits;
pub use server::ServeError;
pub(crate) use server::{Listener, cores};
pub use settings::{FrontDoorConfig, TlsFiles};
pub(crate) use tls::check_tls_files;

#[cfg(test)]
mod tests;
