//! The generated vbs.v2 contract, included once; lints are relaxed only here.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

pub mod vbs {
    pub mod v2 {
        tonic::include_proto!("vbs.v2");
    }
}

pub use vbs::v2 as pb;

/// Encoded descriptors of the contract and google.rpc error details, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("vbs_descriptor");
