//! The checkpoint header (legacy `CheckpointHeader`, §5.3), every version 1–6, bit-exact.
//!
//! - v1–v2: the file starts with the next vote itself; memberId, maxBallot and
//!   lastExecutedDecree (= vote.decree − 1) come from the vote; the length field is the
//!   vote's own (unpadded), and the payload starts at that length rounded up to 512.
//! - v3: `version u16, headerLength u32, checksum u64 (always 0), memberId (u64),
//!   lastExecutedDecree u64, maxBallot, ConfigurationInfo`, then the next vote.
//! - v4+: memberIds are 64-byte strings, and `stateSaved u8, fileSize u64,
//!   checksumBlockSize u32` come between the configuration and the vote.
//!
//! The header length is legacy's `RoundUp512(RoundUp512(voteLen) + fieldsLen)`: the vote is
//! padded "from its own start" before the fields are added, so it can exceed the plain
//! rounding of the bytes written. Decoding is the validation gateway for the header: it
//! rejects what legacy rejects (bad version, truncation, a vote with a bad checksum,
//! `maxBallot < vote.ballot`) plus a stated length that disagrees with the computed one,
//! never panics, and allocates only what the input holds. Unlike the wire's member set, the
//! configuration's member list may be empty: legacy writes empty sets into checkpoints.
//! The sub-structures (member ids, ballots, the member list) use the wire's codec.

use crate::paxos::{Ballot, Decree, Member, MemberId};
use crate::wire::{
    decode, message_len, verify_checksum, DecodeError, EncodeError, Limits, Reader, Version, WireBody,
    WireVote, Writer,
};
use bytes::Bytes;

/// Headers and blocks are multiples of this (legacy `s_PageSize`).
pub const PAGE_SIZE: usize = 512;
/// The checksum block size legacy writes (`s_ChecksumBlockSize`).
pub const DEFAULT_BLOCK_SIZE: u32 = 4 << 20;
/// Size of the fingerprint after every block (`CHECKSUM_SIZE`).
pub const BLOCK_CHECKSUM_LEN: usize = 8;

/// Legacy `ConfigurationInfo`: the replica set the checkpointed state belongs to. The
/// member list is kept as legacy stores it (it may be empty: a new-API replica with no
/// configuration yet); the restart driver validates it into a `MemberSet`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CheckpointConfiguration {
    pub number: u32,
    pub initial_decree: Decree,
    pub members: Vec<Member>,
    pub cookie: Bytes,
}

/// A decoded (or to-be-written) checkpoint header.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct CheckpointHeader {
    /// 1–6. For v1–v2 it is the next vote's version.
    pub version: Version,
    /// The replica that wrote the file (v1–v2: the vote's sender).
    pub member_id: MemberId,
    /// N of `<N>.codex` (v1–v2: the vote's decree − 1, wrapping as legacy does).
    pub last_executed: Decree,
    /// At least `next_vote`'s ballot (v1–v2: the vote's ballot).
    pub max_ballot: Ballot,
    /// Present exactly from v3 on.
    pub configuration: Option<CheckpointConfiguration>,
    /// v4+: false means the payload holds no application state (`LoadState(NULL)`);
    /// always true before.
    pub state_saved: bool,
    /// v4+: the size of the whole file, header included (the writer fills it in); 0 before,
    /// where the file system's size counts.
    pub file_size: u64,
    /// v4+: bytes per checksummed block, a multiple of 512; 0 = raw payload (and always 0
    /// before v4).
    pub block_size: u32,
    /// The complete vote for decree N + 1, re-encoded with its checksum.
    pub next_vote: WireVote,
}

/// `len` rounded up to a multiple of 512 (`RoundUpToPage`). (`is_multiple_of` postdates
/// our MSRV, so multiples are tested as `round_up(n) == n`.)
fn round_up(len: usize) -> usize {
    len.div_ceil(PAGE_SIZE) * PAGE_SIZE
}

fn invalid(why: &'static str) -> EncodeError {
    EncodeError::Invalid(why)
}

impl CheckpointHeader {
    /// Whether the payload is cut into fingerprinted blocks.
    pub fn has_blocks(&self) -> bool {
        self.version >= Version::V4 && self.block_size > 0
    }

    /// The header bytes, zero-padded to the header length (where the payload starts).
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        self.check_fields()?;
        let mut vote = Vec::new();
        self.next_vote.encode(&mut vote)?;
        let version = self.version;
        let mut out = Vec::new();
        let mut w = Writer { out: &mut out, version };
        if version >= Version::V3 {
            w.u16(version.as_u16());
            w.u32(0); // the header length, patched below
            w.u64(0); // legacy never computes this checksum
            w.member_id(&self.member_id)?;
            w.u64(self.last_executed.0);
            w.ballot(&self.max_ballot)?;
            let config = self.configuration.as_ref().ok_or(invalid("a v3+ header needs a configuration"))?;
            w.u32(config.number);
            w.u64(config.initial_decree.0);
            w.member_list(&config.members, &config.cookie)?;
        }
        if version >= Version::V4 {
            w.u8(u8::from(self.state_saved));
            w.u64(self.file_size);
            w.u32(self.block_size);
        }
        let header_len = round_up(round_up(vote.len()) + out.len());
        if version >= Version::V3 {
            let len = u32::try_from(header_len).map_err(|_| EncodeError::TooLong {
                field: "checkpoint header",
                len: header_len,
                max: u32::MAX as usize,
            })?;
            out[2..6].copy_from_slice(&len.to_le_bytes());
        }
        out.extend_from_slice(&vote);
        out.resize(header_len, 0);
        Ok(out)
    }

    /// Refuses field combinations the version cannot carry, so that decoding the encoded
    /// bytes gives `self` back.
    fn check_fields(&self) -> Result<(), EncodeError> {
        let (version, vote) = (self.version, &self.next_vote.header);
        if version > Version::V6 {
            return Err(EncodeError::NotInVersion { field: "a checkpoint header", version });
        }
        if version < Version::V3 {
            let derived = self.member_id == vote.from
                && self.max_ballot == vote.ballot
                && self.last_executed == Decree(vote.decree.0.wrapping_sub(1))
                && vote.version == version;
            if !derived || self.configuration.is_some() {
                return Err(invalid("a v1–v2 header is its next vote and holds nothing else"));
            }
        } else if self.max_ballot < vote.ballot {
            return Err(invalid("maxBallot is below the next vote's ballot"));
        }
        if version < Version::V4 && (!self.state_saved || self.file_size != 0 || self.block_size != 0) {
            return Err(EncodeError::NotInVersion { field: "stateSaved, fileSize or blockSize", version });
        }
        if round_up(self.block_size as usize) != self.block_size as usize {
            return Err(invalid("the checksum block size is not a multiple of 512"));
        }
        Ok(())
    }

    /// Decodes the header at the start of `bytes`, which must hold at least the header
    /// length (bytes after it are ignored).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let stated = stated_len(bytes)?;
        let region = bytes.get(..stated).ok_or(DecodeError::Truncated("checkpoint header"))?;
        let region = Bytes::copy_from_slice(region);
        let mut r = Reader::new(region.clone(), Version::V1);
        let value = r.u16("checkpoint version")?;
        r.version = checkpoint_version(value)?;
        if r.version < Version::V3 {
            let (next_vote, _) = read_vote(&region)?;
            let h = &next_vote.header;
            return Ok(Self {
                version: r.version,
                member_id: h.from.clone(),
                last_executed: Decree(h.decree.0.wrapping_sub(1)),
                max_ballot: h.ballot.clone(),
                configuration: None,
                state_saved: true,
                file_size: 0,
                block_size: 0,
                next_vote,
            });
        }
        let version = r.version;
        r.u32("checkpoint header length")?;
        r.u64("checkpoint checksum")?; // always 0 in legacy files, never verified
        let member_id = r.member_id("checkpoint member id")?;
        let last_executed = r.decree("lastExecutedDecree")?;
        let max_ballot = r.ballot("maxBallot")?;
        let number = r.u32("configuration number")?;
        let initial_decree = r.decree("initial decree")?;
        let (members, cookie) = r.member_list()?;
        let configuration = Some(CheckpointConfiguration { number, initial_decree, members, cookie });
        let (mut state_saved, mut file_size, mut block_size) = (true, 0, 0);
        if version >= Version::V4 {
            state_saved = r.flag("stateSaved")?;
            file_size = r.u64("checkpoint file size")?;
            block_size = r.u32("checksum block size")?;
            if round_up(block_size as usize) != block_size as usize {
                return Err(DecodeError::BadValue { field: "checksum block size", value: block_size.into() });
            }
        }
        let fields_len = region.len() - r.remaining();
        let (next_vote, vote_len) = read_vote(&region.slice(fields_len..))?;
        let computed = round_up(round_up(vote_len) + fields_len);
        if computed != stated {
            return Err(DecodeError::Length {
                field: "checkpoint header length",
                value: stated as u64,
                min: computed as u64,
                max: computed as u64,
            });
        }
        if max_ballot < next_vote.header.ballot {
            return Err(DecodeError::BadValue {
                field: "maxBallot (below the next vote's)",
                value: max_ballot.number.into(),
            });
        }
        Ok(Self {
            version,
            member_id,
            last_executed,
            max_ballot,
            configuration,
            state_saved,
            file_size,
            block_size,
            next_vote,
        })
    }
}

fn checkpoint_version(value: u16) -> Result<Version, DecodeError> {
    match Version::from_u16(value) {
        Some(v) if v <= Version::V6 => Ok(v),
        _ => Err(DecodeError::BadValue { field: "checkpoint version", value: value.into() }),
    }
}

/// The header length from the first six bytes (where the payload starts): v1–v2 the next
/// vote's length rounded up to 512, v3+ the stated length, which must be a positive
/// multiple of 512.
pub(super) fn stated_len(prefix: &[u8]) -> Result<usize, DecodeError> {
    let [v0, v1, l0, l1, l2, l3, ..] = *prefix else {
        return Err(DecodeError::Truncated("checkpoint header length"));
    };
    if checkpoint_version(u16::from_le_bytes([v0, v1]))? < Version::V3 {
        return message_len(prefix, &Limits::default()).map(round_up);
    }
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    if len == 0 || round_up(len) != len {
        return Err(DecodeError::BadValue { field: "checkpoint header length", value: len as u64 });
    }
    Ok(len)
}

/// The next vote at the start of `bytes` (a complete Vote message with a valid checksum)
/// and its length.
fn read_vote(bytes: &Bytes) -> Result<(WireVote, usize), DecodeError> {
    let len = message_len(bytes, &Limits::default())?;
    if len > bytes.len() {
        return Err(DecodeError::Truncated("next vote"));
    }
    let message = bytes.slice(..len);
    verify_checksum(&message)?;
    let wire = decode(&message, &Limits::default())?;
    match wire.body {
        WireBody::Vote(fields) => Ok((WireVote { header: wire.header, fields }, len)),
        body => Err(DecodeError::BadValue { field: "next vote message id", value: body.id() as u64 }),
    }
}
