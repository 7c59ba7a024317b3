//! Paxos-port packets and log records (§4.12, §5.2). A packet is a 20-byte header — `u32
//! size` (the whole packet), `u32 protoVersion` = 0, `u32 xid` = 0, `u64 checksum` (the
//! fingerprint of the whole packet with this field zeroed) — and one message. A log record
//! is one message, checksum filled in, zero-padded to a multiple of 512 bytes, so every
//! record starts on a 512-byte boundary.

use super::codec::length_error;
use super::error::{DecodeError, EncodeError};
use super::fingerprint::{fingerprint, fingerprint_continue};
use super::header::{message_len, verify_checksum};
use super::message::{decode, WireMessage};
use super::Limits;
use bytes::Bytes;

pub const PACKET_HEADER_LEN: usize = 20;
/// Log records are padded to, and start at, multiples of this.
pub const RECORD_ALIGN: usize = 512;
const PACKET_CHECKSUM_AT: usize = 12;

/// The message as one Paxos-port packet.
pub fn encode_packet(msg: &WireMessage) -> Result<Vec<u8>, EncodeError> {
    let mut out = vec![0u8; PACKET_HEADER_LEN];
    msg.encode(&mut out)?;
    let size = u32::try_from(out.len()).map_err(|_| EncodeError::TooLong {
        field: "packet",
        len: out.len(),
        max: u32::MAX as usize,
    })?;
    out[..4].copy_from_slice(&size.to_le_bytes());
    let checksum = fingerprint(&out); // protoVersion, xid and the checksum field are still 0
    out[PACKET_CHECKSUM_AT..PACKET_HEADER_LEN].copy_from_slice(&checksum.to_le_bytes());
    Ok(out)
}

/// The size of the packet whose header starts `prefix` (at least 4 bytes), checked as the
/// legacy receiver does: a size below 20 or above the limit drops the connection.
pub fn packet_len(prefix: &[u8], limits: &Limits) -> Result<usize, DecodeError> {
    let [a, b, c, d, ..] = *prefix else { return Err(DecodeError::Truncated("packet size")) };
    let size = u32::from_le_bytes([a, b, c, d]) as usize;
    if size < PACKET_HEADER_LEN || size > limits.max_message_size {
        return Err(length_error("packet size", size, PACKET_HEADER_LEN, limits.max_message_size));
    }
    Ok(size)
}

/// Decodes one complete packet after checking its size and checksum. `protoVersion` and
/// `xid` are not checked: legacy always writes 0 and never reads them.
pub fn decode_packet(packet: &Bytes, limits: &Limits) -> Result<WireMessage, DecodeError> {
    let size = packet_len(packet, limits)?;
    if size != packet.len() {
        return Err(length_error("packet size", size, packet.len(), packet.len()));
    }
    let mut stored = [0u8; 8];
    stored.copy_from_slice(&packet[PACKET_CHECKSUM_AT..PACKET_HEADER_LEN]);
    let stored = u64::from_le_bytes(stored);
    let computed = fingerprint_continue(
        fingerprint_continue(fingerprint(&packet[..PACKET_CHECKSUM_AT]), &[0; 8]),
        &packet[PACKET_HEADER_LEN..],
    );
    if stored != computed {
        return Err(DecodeError::Checksum { stored, computed });
    }
    decode(&packet.slice(PACKET_HEADER_LEN..), limits)
}

/// The record size of a message of `message_len` bytes: rounded up to 512.
pub fn record_len(message_len: usize) -> usize {
    message_len.div_ceil(RECORD_ALIGN) * RECORD_ALIGN
}

/// The message as a log record: encoded with its checksum, zero-padded to 512.
pub fn encode_record(msg: &WireMessage) -> Result<Vec<u8>, EncodeError> {
    let mut out = msg.to_bytes()?;
    out.resize(record_len(out.len()), 0);
    Ok(out)
}

/// Decodes one whole record (message and padding), verifying the message checksum as disk
/// reads must. The padding's content is not checked; the journal's torn-tail rules decide
/// what zeros after a record mean.
pub fn decode_record(record: &Bytes, limits: &Limits) -> Result<WireMessage, DecodeError> {
    let len = message_len(record, limits)?;
    let padded = record_len(len);
    if record.len() != padded {
        return Err(length_error("record length", record.len(), padded, padded));
    }
    let message = record.slice(..len);
    verify_checksum(&message)?;
    decode(&message, limits)
}
