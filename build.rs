//! Compiles the contract's protos (vbs.v2 and the other backup services') in
//! pure Rust (protox, no protoc) and writes the descriptor set that the
//! reflection service serves.

use std::{env, fs, path::PathBuf};

const CONTRACT: &[&str] = &[
    "vbs/v2/common.proto",
    "vbs/v2/backup.proto",
    "vbs/v2/backup_policy.proto",
    "vbs/v2/job.proto",
    "google/longrunning/operations.proto",
    "csbs/v1/csbs.proto",
    "taurusdb/v3/taurusdb.proto",
    "zstack/v1/zstack.proto",
];

/// Served by reflection beside the contract so grpcurl can decode error details.
const ERROR_DETAILS: &[&str] = &["google/rpc/error_details.proto", "google/rpc/status.proto"];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    let contract = protox::compile(CONTRACT, ["proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .codec_path("crate::proto::SmallBufferCodec")
        // google.rpc.Status (an Operation's error) is tonic-types' own, so the
        // error table's details encode into it directly.
        .extern_path(".google.rpc", "::tonic_types::pb")
        .compile_fds(contract)?;

    let reflection = protox::Compiler::new(["proto"])?
        .include_source_info(true)
        .include_imports(true)
        .open_files(CONTRACT.iter().chain(ERROR_DETAILS))?
        .encode_file_descriptor_set();
    fs::write(out_dir.join("vbs_descriptor.bin"), reflection)?;
    Ok(())
}
