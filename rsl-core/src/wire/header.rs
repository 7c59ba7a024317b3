//! The common message header (§4.14). Every message starts with `version u16, length u32,
//! checksum u64, magic u32, msgId u16, memberId, decree u64, [configuration u32 (v ≥ 3)],
//! ballot, [payload u64 (v ≥ 6)]`, all little-endian; the member-id encoding sets the
//! offsets, so the header is 48 bytes (v1–v2), 52 (v3), 164 (v4–v5) or 172 (v6–v7). The
//! checksum covers bytes `[14, length)` and is verified only where legacy verifies it (the
//! learn port and disk reads), through [`verify_checksum`].

use super::codec::{length_error, Reader, Writer};
use super::error::{DecodeError, EncodeError};
use super::fingerprint::fingerprint;
use super::message::MessageId;
use super::{Limits, Version};
use crate::paxos::{Ballot, Decree, MemberId};

/// The header's magic number (`CE FA 0D F0` on the wire).
pub const MAGIC: u32 = 0xF00D_FACE;
/// Where the checksum lives, and where the bytes it covers start.
pub(super) const CHECKSUM_OFFSET: usize = 6;
pub(super) const CHECKSUMMED_FROM: usize = 14;

/// The header size of `version`; a message whose length field is smaller is rejected.
pub fn base_size(version: Version) -> usize {
    match version {
        Version::V1 | Version::V2 => 48,
        Version::V3 => 52,
        Version::V4 | Version::V5 => 164,
        Version::V6 | Version::V7 => 172,
    }
}

/// The header fields every message carries. What `decree` and `ballot` mean depends on the
/// message id (§4.13; see [`super::WireBody`]).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Header {
    pub version: Version,
    /// The sender.
    pub from: MemberId,
    pub decree: Decree,
    /// Not on the wire before version 3, where it reads as 1 (and must be 1 to encode).
    pub configuration: u32,
    pub ballot: Ballot,
    /// Version ≥ 6 (the secondary's vote payload in VoteAccepted); 0 before.
    pub payload: u64,
}

/// The length of the message starting at `prefix`, from its first six bytes: checks the
/// version and that the length field lies between the version's header size and the limit.
/// A stream reader calls this before reading the rest of a message.
pub fn message_len(prefix: &[u8], limits: &Limits) -> Result<usize, DecodeError> {
    let [v0, v1, l0, l1, l2, l3, ..] = *prefix else {
        return Err(DecodeError::Truncated("message length"));
    };
    let value = u16::from_le_bytes([v0, v1]);
    let version =
        Version::from_u16(value).ok_or(DecodeError::BadValue { field: "version", value: value.into() })?;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    let min = base_size(version);
    if len < min || len > limits.max_message_size {
        return Err(length_error("message length", len, min, limits.max_message_size));
    }
    Ok(len)
}

/// Checks the checksum of one complete message (`message.len()` is its length field).
pub fn verify_checksum(message: &[u8]) -> Result<(), DecodeError> {
    let stored = message.get(CHECKSUM_OFFSET..CHECKSUMMED_FROM).ok_or(DecodeError::Truncated("checksum"))?;
    let stored = u64::from_le_bytes(stored.try_into().map_err(|_| DecodeError::Truncated("checksum"))?);
    let computed = fingerprint(&message[CHECKSUMMED_FROM..]);
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    Ok(())
}

fn read_version(r: &mut Reader) -> Result<Version, DecodeError> {
    let value = r.u16("version")?;
    Version::from_u16(value).ok_or(DecodeError::BadValue { field: "version", value: value.into() })
}

/// Reads a header whose length field the caller has already checked against the input.
pub(super) fn read_header(r: &mut Reader) -> Result<(Header, MessageId), DecodeError> {
    let version = read_version(r)?;
    r.version = version;
    let _length = r.u32("message length")?;
    let _checksum = r.u64("checksum")?;
    let magic = r.u32("magic")?;
    if magic != MAGIC {
        return Err(DecodeError::BadValue { field: "magic", value: magic.into() });
    }
    let id = r.u16("message id")?;
    let id =
        MessageId::from_u16(id).ok_or(DecodeError::BadValue { field: "message id", value: id.into() })?;
    let from = r.member_id("member id")?;
    let decree = r.decree("decree")?;
    let configuration = if version >= Version::V3 { r.u32("configuration number")? } else { 1 };
    let ballot = r.ballot("ballot")?;
    let payload = if version >= Version::V6 { r.u64("payload")? } else { 0 };
    Ok((Header { version, from, decree, configuration, ballot, payload }, id))
}

/// Appends one message: its header, then whatever `body` writes; fills in the length and
/// the checksum. On error `out` is left as it was.
pub(super) fn write_message(
    header: &Header,
    id: MessageId,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Writer) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    let result = write_unchecked(header, id, out, body);
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn write_unchecked(
    header: &Header,
    id: MessageId,
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Writer) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let version = header.version;
    if version < Version::V3 && header.configuration != 1 {
        return Err(EncodeError::NotInVersion { field: "a configuration number other than 1", version });
    }
    if version < Version::V6 && header.payload != 0 {
        return Err(EncodeError::NotInVersion { field: "a non-zero payload", version });
    }
    let start = out.len();
    let mut w = Writer { out, version };
    w.u16(version.as_u16());
    w.u32(0); // length, patched below
    w.u64(0); // checksum, patched below
    w.u32(MAGIC);
    w.u16(id as u16);
    w.member_id(&header.from)?;
    w.u64(header.decree.0);
    if version >= Version::V3 {
        w.u32(header.configuration);
    }
    w.ballot(&header.ballot)?;
    if version >= Version::V6 {
        w.u64(header.payload);
    }
    debug_assert_eq!(w.out.len() - start, base_size(version));
    body(&mut w)?;
    let len = out.len() - start;
    let len32 = u32::try_from(len).map_err(|_| EncodeError::TooLong {
        field: "message",
        len,
        max: u32::MAX as usize,
    })?;
    out[start + 2..start + CHECKSUM_OFFSET].copy_from_slice(&len32.to_le_bytes());
    let checksum = fingerprint(&out[start + CHECKSUMMED_FROM..]);
    out[start + CHECKSUM_OFFSET..start + CHECKSUMMED_FROM].copy_from_slice(&checksum.to_le_bytes());
    Ok(())
}
