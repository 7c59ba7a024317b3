//! The wire format: legacy RSL's message encoding (protocol versions 1–6, bit-exact) and
//! rsl's pipelined version 7 (docs/protocol.md, "Version 7 on the wire"). It owns the
//! fingerprint, the common header, the fifteen message ids, Paxos-port packet framing and
//! log-record padding, and the mapping to and from the protocol core's
//! [`crate::paxos::Message`]. There is no IO here.
//!
//! Decoding is the validation gateway for bytes from peers and disks: every length, count,
//! id, flag and string is checked against the input and [`Limits`]; malformed input gives a
//! [`DecodeError`], never a panic, and nothing is allocated beyond what the input itself
//! holds (request and cookie bytes are zero-copy slices of the input). Encoding refuses a
//! value its version cannot carry with an [`EncodeError`] instead of silently dropping it.

mod codec;
mod convert;
mod error;
mod fingerprint;
mod framing;
mod header;
mod message;

/// The legacy sub-structure codec, shared with the checkpoint header (`storage::checkpoint`).
pub(crate) use codec::{Reader, Writer};
pub use error::{DecodeError, EncodeError};
pub use fingerprint::{fingerprint, fingerprint_continue, FINGERPRINT_SEED};
pub use framing::{
    decode_packet, decode_record, encode_packet, encode_record, packet_len, record_len, PACKET_HEADER_LEN,
    RECORD_ALIGN,
};
pub use header::{base_size, message_len, verify_checksum, Header, MAGIC};
pub use message::{decode, JoinFields, MessageId, StatusFields, VoteFields, WireBody, WireMessage, WireVote};

/// A protocol version. 1–6 are legacy RSL's (§4.11); 7 is rsl's pipelined extension, which
/// only rsl replicas speak.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub enum Version {
    V1 = 1,
    V2 = 2,
    V3 = 3,
    V4 = 4,
    V5 = 5,
    V6 = 6,
    V7 = 7,
}

impl Version {
    pub const ALL: [Version; 7] =
        [Version::V1, Version::V2, Version::V3, Version::V4, Version::V5, Version::V6, Version::V7];

    /// The version carried in a header's first two bytes, if supported.
    pub fn from_u16(value: u16) -> Option<Self> {
        Self::ALL.get(usize::from(value).checked_sub(1)?).copied()
    }

    pub fn as_u16(self) -> u16 {
        self as u16
    }
}

/// Receive-side limits. Every size the decoder accepts is bounded by these and by the input.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Limits {
    /// Largest message (learn port, disk) or packet (Paxos port, header included) accepted.
    pub max_message_size: usize,
}

impl Limits {
    /// Legacy's conversion of `m_maxMessageSizeMB`: `MB·2^20 + 1024`.
    pub fn from_max_message_size_mb(mb: u32) -> Self {
        Self { max_message_size: (mb as usize) * (1 << 20) + 1024 }
    }
}

impl Default for Limits {
    /// Legacy's default `m_maxMessageSizeMB` = 100.
    fn default() -> Self {
        Self::from_max_message_size_mb(100)
    }
}
