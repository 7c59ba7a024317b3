//! Little-endian readers and writers for the legacy sub-structures (§4.14): integers,
//! member ids in both encodings, ballots, primary cookies and member sets. The [`Reader`]
//! never reads past its input and never allocates more than the bytes it consumed; byte
//! strings it returns are zero-copy slices of the input.
//!
//! The items marked `pub(crate)` are also used by the checkpoint header
//! (`storage::checkpoint`), which stores the same sub-structures; there the member list may
//! be empty, hence `Reader::member_list` and `Writer::member_list`.

use super::error::{DecodeError, EncodeError};
use super::Version;
use crate::paxos::{
    Ballot, Decree, Member, MemberId, MemberSet, MEMBER_ID_MAX_LEN, MEMBER_SET_COOKIE_MAX_LEN,
};
use bytes::Bytes;

/// Size of the member-id field from version 4 on: 63 bytes and a NUL.
pub(super) const MEMBER_ID_FIELD_LEN: usize = 64;
/// Longest host name a legacy receiver accepts (`RSLNode::m_hostName` is `char[256]`).
pub(super) const HOST_NAME_MAX_LEN: usize = 255;

/// Reads one message (or an embedded one) of a known version.
pub(crate) struct Reader {
    buf: Bytes,
    pos: usize,
    pub(crate) version: Version,
}

impl Reader {
    pub(crate) fn new(buf: Bytes, version: Version) -> Self {
        Self { buf, pos: 0, version }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The unread bytes, without consuming them.
    pub(super) fn rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// Fails unless every byte was consumed.
    pub(super) fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }

    pub(super) fn take(&mut self, len: usize, field: &'static str) -> Result<Bytes, DecodeError> {
        if len > self.remaining() {
            return Err(DecodeError::Truncated(field));
        }
        let bytes = self.buf.slice(self.pos..self.pos + len);
        self.pos += len;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.buf.get(self.pos..self.pos + N).ok_or(DecodeError::Truncated(field))?);
        self.pos += N;
        Ok(out)
    }

    pub(super) fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.array::<1>(field)?[0])
    }

    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_le_bytes)
    }

    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_le_bytes)
    }

    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_le_bytes)
    }

    pub(crate) fn decree(&mut self, field: &'static str) -> Result<Decree, DecodeError> {
        self.u64(field).map(Decree)
    }

    /// A legacy boolean byte. Legacy reads any non-zero byte as true; only 0 and 1 are
    /// accepted here so that a decoded message re-encodes to the same bytes.
    pub(crate) fn flag(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        match self.u8(field)? {
            0 => Ok(false),
            1 => Ok(true),
            value => Err(DecodeError::BadValue { field, value: value.into() }),
        }
    }

    /// Version 7's watermark: present right after the header in ids 1, 3, 4, 5 and 7.
    pub(super) fn watermark(&mut self) -> Result<Option<Decree>, DecodeError> {
        if self.version == Version::V7 {
            self.decree("passed watermark").map(Some)
        } else {
            Ok(None)
        }
    }

    /// A member id: a u64 up to version 3 (0 is the empty id), else 64 bytes holding a
    /// NUL-terminated string. Bytes after the NUL are ignored (legacy writers may leave
    /// garbage there).
    pub(crate) fn member_id(&mut self, field: &'static str) -> Result<MemberId, DecodeError> {
        let text = if self.version <= Version::V3 {
            match self.u64(field)? {
                0 => String::new(),
                n => n.to_string(),
            }
        } else {
            let raw = self.array::<MEMBER_ID_FIELD_LEN>(field)?;
            let len = raw.iter().position(|&b| b == 0).ok_or(DecodeError::BadString(field))?;
            std::str::from_utf8(&raw[..len]).map_err(|_| DecodeError::BadString(field))?.to_owned()
        };
        MemberId::new(&text).map_err(|_| DecodeError::BadString(field))
    }

    pub(crate) fn ballot(&mut self, field: &'static str) -> Result<Ballot, DecodeError> {
        let number = self.u32(field)?;
        Ok(Ballot::new(number, self.member_id(field)?))
    }

    /// A `u32` length and that many bytes (PrimaryCookie).
    pub(super) fn cookie(&mut self, field: &'static str) -> Result<Bytes, DecodeError> {
        let len = self.u32(field)?;
        self.take(len as usize, field)
    }

    /// A MemberSet; the learn-port slot holds the app port up to version 3 and is returned
    /// in [`Member::learn_port`] either way.
    pub(super) fn member_set(&mut self) -> Result<MemberSet, DecodeError> {
        let (members, cookie) = self.member_list()?;
        MemberSet::new(members, cookie).map_err(DecodeError::BadMemberSet)
    }

    /// A MemberSet's encoding, unvalidated: the members (possibly none, possibly
    /// duplicated) and the cookie. Checkpoints store empty sets.
    pub(crate) fn member_list(&mut self) -> Result<(Vec<Member>, Bytes), DecodeError> {
        let count = self.u16("member count")?;
        // No preallocation from `count`: each member consumes at least 18 input bytes.
        let mut members = Vec::new();
        for _ in 0..count {
            let id = self.member_id("member id")?;
            let ip = self.u32("member ip")?;
            let rsl_port = self.u16("member rslPort")?;
            let learn_port = self.u16("member learnPort")?;
            let name_len = usize::from(self.u16("host name length")?);
            if name_len > HOST_NAME_MAX_LEN {
                return Err(length_error("host name length", name_len, 0, HOST_NAME_MAX_LEN));
            }
            let name = self.take(name_len, "host name")?;
            let host_name = match std::str::from_utf8(&name) {
                Ok(s) if !s.contains('\0') => s.to_owned(),
                _ => return Err(DecodeError::BadString("host name")),
            };
            members.push(Member { id, ip, rsl_port, learn_port, host_name });
        }
        let cookie_len = self.u32("member set cookie length")? as usize;
        if cookie_len > MEMBER_SET_COOKIE_MAX_LEN {
            return Err(length_error("member set cookie length", cookie_len, 0, MEMBER_SET_COOKIE_MAX_LEN));
        }
        let cookie = self.take(cookie_len, "member set cookie")?;
        Ok((members, cookie))
    }
}

pub(super) fn length_error(field: &'static str, value: usize, min: usize, max: usize) -> DecodeError {
    DecodeError::Length { field, value: value as u64, min: min as u64, max: max as u64 }
}

/// Appends one message's fields in a known version.
pub(crate) struct Writer<'a> {
    pub(crate) out: &'a mut Vec<u8>,
    pub(crate) version: Version,
}

impl Writer<'_> {
    pub(crate) fn u8(&mut self, v: u8) {
        self.out.push(v);
    }

    pub(crate) fn u16(&mut self, v: u16) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_le_bytes());
    }

    /// Writes version 7's watermark, which must be present exactly in version 7.
    pub(super) fn watermark(&mut self, passed: Option<Decree>) -> Result<(), EncodeError> {
        match (self.version == Version::V7, passed) {
            (true, Some(d)) => self.u64(d.0),
            (false, None) => {}
            (true, None) => return Err(EncodeError::Invalid("version 7 requires the passed watermark")),
            (false, Some(_)) => {
                return Err(EncodeError::NotInVersion { field: "passed watermark", version: self.version })
            }
        }
        Ok(())
    }

    pub(crate) fn member_id(&mut self, id: &MemberId) -> Result<(), EncodeError> {
        if self.version <= Version::V3 {
            let value = match id.as_str() {
                "" => 0,
                s => match s.parse::<u64>() {
                    // Canonical only (no sign, no leading zero, not "0"), so decoding gives `id` back.
                    Ok(n) if n != 0 && n.to_string() == s => n,
                    _ => return Err(EncodeError::MemberIdNotNumeric(id.clone())),
                },
            };
            self.u64(value);
        } else {
            let bytes = id.as_str().as_bytes();
            debug_assert!(bytes.len() <= MEMBER_ID_MAX_LEN, "MemberId::new bounds the length");
            self.out.extend_from_slice(bytes);
            self.out.resize(self.out.len() + MEMBER_ID_FIELD_LEN - bytes.len(), 0);
        }
        Ok(())
    }

    pub(crate) fn ballot(&mut self, ballot: &Ballot) -> Result<(), EncodeError> {
        self.u32(ballot.number);
        self.member_id(&ballot.member)
    }

    pub(super) fn cookie(&mut self, field: &'static str, bytes: &[u8]) -> Result<(), EncodeError> {
        let len = u32::try_from(bytes.len()).map_err(|_| EncodeError::TooLong {
            field,
            len: bytes.len(),
            max: u32::MAX as usize,
        })?;
        self.u32(len);
        self.out.extend_from_slice(bytes);
        Ok(())
    }

    pub(super) fn member_set(&mut self, set: &MemberSet) -> Result<(), EncodeError> {
        self.member_list(set.members(), set.cookie())
    }

    /// [`Writer::member_set`] for an unvalidated list (checkpoints store empty sets).
    pub(crate) fn member_list(&mut self, members: &[Member], cookie: &[u8]) -> Result<(), EncodeError> {
        let count = u16::try_from(members.len()).map_err(|_| EncodeError::TooLong {
            field: "member set",
            len: members.len(),
            max: u16::MAX.into(),
        })?;
        self.u16(count);
        for m in members {
            let name = m.host_name.as_bytes();
            if name.len() > HOST_NAME_MAX_LEN {
                return Err(EncodeError::TooLong {
                    field: "host name",
                    len: name.len(),
                    max: HOST_NAME_MAX_LEN,
                });
            }
            if name.contains(&0) {
                return Err(EncodeError::Invalid("a host name with a NUL byte"));
            }
            self.member_id(&m.id)?;
            self.u32(m.ip);
            self.u16(m.rsl_port);
            self.u16(m.learn_port);
            self.u16(name.len() as u16);
            self.out.extend_from_slice(name);
        }
        if cookie.len() > MEMBER_SET_COOKIE_MAX_LEN {
            let (field, len) = ("member set cookie", cookie.len());
            return Err(EncodeError::TooLong { field, len, max: MEMBER_SET_COOKIE_MAX_LEN });
        }
        self.cookie("member set cookie", cookie)
    }
}
