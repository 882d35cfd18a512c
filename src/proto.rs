//! The generated contract (vbs.v2 and the other backup services' packages),
//! included once (lints are relaxed only here), and the codec every generated
//! service and client uses.
#![allow(clippy::all, clippy::pedantic, missing_docs)]

use std::marker::PhantomData;

use prost::Message;
use tonic::codec::{BufferSettings, Codec};
use tonic_prost::ProstCodec;

pub mod vbs {
    pub mod v2 {
        tonic::include_proto!("vbs.v2");
    }
}

pub mod google {
    pub mod longrunning {
        tonic::include_proto!("google.longrunning");
    }
    pub mod api {
        tonic::include_proto!("google.api");
    }
}

pub use google::longrunning;
pub mod csbs {
    pub mod v1 {
        tonic::include_proto!("csbs.v1");
    }
}

pub use csbs::v1 as csbs_pb;
/// TaurusDB manual backups (`taurusdb.v3.TaurusDbBackupService`).
pub mod taurusdb {
    pub mod v3 {
        tonic::include_proto!("taurusdb.v3");
    }
}

/// ZStack VM backups (`zstack.v1.ZStackBackupService`).
pub mod zstack {
    pub mod v1 {
        tonic::include_proto!("zstack.v1");
    }
}

pub use vbs::v2 as pb;

/// Encoded descriptors of the contract and google.rpc error details, for reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("vbs_descriptor");

/// Starting size of a call's encode and decode buffers. tonic starts at 8 KiB
/// and a stream keeps its buffer as long as it is open: with thousands of
/// open job watches that buffer is most of their memory, while our messages
/// are a few hundred bytes. Larger messages grow the buffer as needed.
const CODEC_BUFFER: usize = 256;
/// tonic's default: how much a stream encodes before yielding.
const CODEC_YIELD_THRESHOLD: usize = 32 * 1024;

/// prost encoding with small starting buffers (see `CODEC_BUFFER`).
#[derive(Debug, Clone)]
pub struct SmallBufferCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for SmallBufferCodec<T, U> {
    fn default() -> Self {
        SmallBufferCodec(PhantomData)
    }
}

impl<T, U> Codec for SmallBufferCodec<T, U>
where
    T: Message + Send + 'static,
    U: Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = <ProstCodec<T, U> as Codec>::Encoder;
    type Decoder = <ProstCodec<T, U> as Codec>::Decoder;

    fn encoder(&mut self) -> Self::Encoder {
        ProstCodec::<T, U>::raw_encoder(BufferSettings::new(CODEC_BUFFER, CODEC_YIELD_THRESHOLD))
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstCodec::<T, U>::raw_decoder(BufferSettings::new(CODEC_BUFFER, CODEC_YIELD_THRESHOLD))
    }
}
