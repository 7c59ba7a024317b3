//! The two ways the codec refuses: [`DecodeError`] for malformed or oversized input (from a
//! peer or a disk), [`EncodeError`] for a value its target version cannot carry. Each names
//! the offending field so a log line says what was wrong without a hex dump.

use super::Version;
use crate::paxos::{InvalidInput, MemberId};
use std::fmt;

/// Why bytes were rejected.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum DecodeError {
    /// The input ends inside `field`.
    Truncated(&'static str),
    /// Bytes left over after a message's last field.
    TrailingBytes(usize),
    /// A length or size outside what the format, the input or the [`super::Limits`] allow.
    Length { field: &'static str, value: u64, min: u64, max: u64 },
    /// A field holding a value the format forbids (a version, id, magic, flag, state…).
    BadValue { field: &'static str, value: u64 },
    /// A string field without its NUL terminator, with an inner NUL, or not UTF-8.
    BadString(&'static str),
    /// A member set that legacy `MemberSet::Verify` would refuse.
    BadMemberSet(InvalidInput),
    /// A checksum that does not match the bytes it covers.
    Checksum { stored: u64, computed: u64 },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated(field) => write!(f, "input ends inside {field}"),
            Self::TrailingBytes(n) => write!(f, "{n} bytes after the last field"),
            Self::Length { field, value, min, max } => {
                write!(f, "{field} is {value}, allowed {min}..={max}")
            }
            Self::BadValue { field, value } => write!(f, "invalid {field} {value:#x}"),
            Self::BadString(field) => write!(f, "{field} is not a NUL-free UTF-8 string"),
            Self::BadMemberSet(why) => write!(f, "invalid member set: {why}"),
            Self::Checksum { stored, computed } => {
                write!(f, "checksum {stored:#018x} does not match the bytes ({computed:#018x})")
            }
        }
    }
}

impl std::error::Error for DecodeError {}

/// Why a message could not be encoded.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum EncodeError {
    /// `field` does not exist in `version` (or must hold its implied value there).
    NotInVersion { field: &'static str, version: Version },
    /// Versions ≤ 3 carry member ids as a u64: the id must be empty or a canonical decimal.
    MemberIdNotNumeric(MemberId),
    /// `field` is longer than its length prefix or the legacy limit allows.
    TooLong { field: &'static str, len: usize, max: usize },
    /// A value the format cannot express at all.
    Invalid(&'static str),
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotInVersion { field, version } => {
                write!(f, "{field} cannot be carried by protocol version {}", version.as_u16())
            }
            Self::MemberIdNotNumeric(id) => {
                write!(f, "member id {id:?} is not a canonical u64 decimal (required up to version 3)")
            }
            Self::TooLong { field, len, max } => write!(f, "{field} of {len} bytes (max {max})"),
            Self::Invalid(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for EncodeError {}
