//! The gateway as a fleet: real `redis-server`, `nginx` balancing gRPC over
//! three replicas (processes of this crate's binary) and one standalone
//! simulator, all on loopback. Without redis-server or nginx every test says
//! SKIPPED (and fails in CI, where they must be installed).

mod budget;
mod harness;
mod operations;
mod outage;
mod services;
mod smoke;
mod watch;
mod writes;
