//! vbs-gateway: a gRPC gateway for the Volume Backup Service (VBS) of Huawei
//! Cloud and Open Telekom Cloud, with an embedded VBS simulator.
//!
//! # Architecture
//!
//! ```text
//!  gRPC client ──► frontdoor/ (per connection): TLS (reloaded on change, mutual with a client
//!                    │  CA), limits on streams per connection, connections and idle time; each
//!                    │  connection served on one of --serve-threads single-threaded runtimes
//!                  tonic server (app.rs: health, reflection, the services)
//!                    │  observe.rs: request id, rpc span, access log, metrics.rs counters per RPC
//!                    │  frontdoor/ (per call): the caller (bearer key or client certificate), its
//!                    │              limits; its role and projects are checked by grpc::Upstream::context
//!                    │
//!                    ├─ grpc/backups.rs   BackupService        ┐ validate (crate vbs-rules),
//!                    ├─ grpc/policies.rs  BackupPolicyService  ├ build the REST body,
//!                    ├─ grpc/jobs.rs      JobService           ┘ convert the reply (grpc/<area>/convert.rs,
//!                    │    │                                      enum spellings from grpc/wire.rs; lists
//!                    │    │                                      page alike, grpc/paging.rs)
//!                    │    ├─ grpc/writes.rs      writes with a request_id: once, detached, recorded in
//!                    │    │                      store/idempotency.rs (IdempotencyStore; in memory or Redis)
//!                    │    ├─ watch/              JobHub: one poller per watched job, shared by every
//!                    │    │                      WatchJob, WaitJob and WatchJobs stream; knows only the
//!                    │    │                      JobSource trait; schedule.rs: when to poll next (pure)
//!                    │    └─ grpc/jobs/job_source.rs  the VBS job API as a JobSource (to protobuf once per
//!                    │                           poll); grpc/watched.rs: what every service's hub follows
//!                    ├─ grpc/csbs/        CsbsBackupService      ┐ each: its rules (vbs-rules::csbs, ::taurusdb,
//!                    ├─ grpc/taurusdb.rs  TaurusDbBackupService  │ ::zstack), its own transport (rest/csbs.rs,
//!                    ├─ grpc/zstack.rs    ZStackBackupService    ┘ rest/taurusdb.rs, rest/zstack.rs; ZStack sessions
//!                    │                    in rest/auth/zstack_session.rs) and a JobHub of its own over a JobSource;
//!                    │                    grpc/follow.rs: watch and wait over any hub
//!                    └─ grpc/operations.rs  google.longrunning.Operations: every service's work as an operation,
//!                                           the typed result as `response` (store/operations.rs: every
//!                                           service's work started here, for ListOperations; in memory or Redis)
//!                    │
//!                    ├─ rest/backups.rs, rest/policies.rs, rest/jobs.rs   typed VBS calls + wire models
//!                    └─ rest/transport.rs  one pooled HTTP client: safe URL, deadline, one send loop;
//!                         │                    each attempt takes a slot of its project's budget
//!                         │                    (store/budget.rs: UpstreamBudget; in memory or Redis)
//!                         ├─ rest/retry.rs        send again? a pure function of method, failure, attempt
//!                         ├─ rest/auth/           one Authorizer per mode: AK/SK (crate apig-signer),
//!                         │                       IAM tokens (rest/iam.rs), static token, pass-through
//!                         └─ rest/observer.rs     reports each upstream request; metrics.rs counts them
//!                                            │
//!                                            ▼
//!                VBS (the cloud, or crate vbs-simulator: the same REST API in memory,
//!                     started by demo.rs when no endpoint is configured), and likewise
//!                CSBS, TaurusDB and ZStack (vbs-simulator's modules, each on a port of its own)
//! ```
//!
//! Beside the gateway, in `crates/`: `apig-signer` (AK/SK signing and
//! verification, pure), `vbs-rules` (the reference's field rules and the
//! stable reason of each, shared with the simulator) and `vbs-simulator` (the fake VBS and IAM, a library and a
//! binary). store/redis/ is the one Redis connection every shared store
//! uses (`--redis-url`). Dependencies point one way: grpc/ -> watch/, rest/ -> store/ -> the crates;
//! nothing below grpc/ knows a protobuf type.
//!
//! Job watches never poll per watcher: `watch::JobHub` keeps one poller per
//! watched job (for VBS: project, job, caller token) and hands its latest
//! state to every watcher through a `tokio::sync::watch` channel. The hub
//! knows no wire type or protobuf: it polls a `watch::JobSource`, and
//! `grpc::jobs::job_source` is the VBS one. Replicas share one poller per job
//! through a `watch::Fleet` (`store/redis/fleet.rs`: a lease per job, its
//! states stored and published in Redis).
//!
//! Errors travel up as values (`rest::RestError`, `error::Error`); only
//! `error.rs` turns them into a `tonic::Status`, by one table.
//!
//! # The path of one RPC
//!
//! `CreateBackup` passes `observe.rs` (request id, `rpc` span, access log)
//! and the front door (`frontdoor/`: which caller, within its limits?), then
//! arrives at `grpc::backups::Backups::create_backup`, which resolves the
//! project, checks that the caller's role and projects allow the call there,
//! and takes the caller's deadline (`grpc::Upstream::context`),
//! checks every field against the reference's rules (nothing is sent when one
//! fails), and hands a `rest::backups::CreateCloudBackup` body to
//! `rest::backups::BackupsApi`. The transport builds
//! `POST {endpoint}/v2/{project_id}/cloudbackups` from percent-encoded
//! segments, authorizes it, sends it within the deadline and decodes the
//! reply; the service answers with the job id.
//!
//! `config/` reads flags, environment and an optional config file once;
//! `main.rs` tells the process lifetime.
//!
//! `cli/` is the other use of the binary: `vbs-gateway backup|policy|job`,
//! a gRPC client of a running gateway (generated clients over one channel,
//! `cli/connect.rs`; tables and protobuf JSON, `cli/output.rs`; the live job
//! line, `cli/progress.rs`; one file per area). It starts nothing of the server.

pub mod app;
pub mod cli;
pub mod config;
#[cfg(feature = "embedded-simulator")]
pub mod demo;
pub(crate) mod error;
pub(crate) mod frontdoor;
pub(crate) mod grpc;
pub(crate) mod metrics;
pub(crate) mod observe;
pub mod proto;
pub mod rest;
pub(crate) mod store;
pub mod telemetry;
pub(crate) mod units;
pub mod watch;

#[cfg(test)]
mod fixture_tests;
