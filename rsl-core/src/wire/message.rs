//! Every message id of §4.13 as wire-level structs that mirror the bytes exactly, with
//! [`decode`] and [`WireMessage::encode`]. The codec carries every id in every version, as
//! legacy's unmarshaller does; whether a message makes sense at a version is the
//! protocol's call. Version 7 adds one `u64` watermark right after the header of ids 1, 3,
//! 4, 5 and 7, and lets a PrepareAccepted carry any number of votes (docs/protocol.md).

use super::codec::{Reader, Writer};
use super::error::{DecodeError, EncodeError};
use super::header::{message_len, read_header, write_message, Header};
use super::{Limits, Version};
use crate::paxos::{Ballot, Decree, MemberSet, State, VoteBody};
use bytes::Bytes;

/// The message ids of legacy `message.h`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum MessageId {
    /// Never valid on the wire.
    None = 0,
    Vote = 1,
    VoteAccepted = 2,
    Prepare = 3,
    PrepareAccepted = 4,
    NotAccepted = 5,
    StatusQuery = 6,
    StatusResponse = 7,
    FetchVotes = 8,
    FetchCheckpoint = 9,
    ReconfigurationDecision = 10,
    DefunctConfiguration = 11,
    Join = 12,
    JoinRequest = 13,
    Bootstrap = 14,
}

impl MessageId {
    pub const ALL: [MessageId; 15] = [
        Self::None,
        Self::Vote,
        Self::VoteAccepted,
        Self::Prepare,
        Self::PrepareAccepted,
        Self::NotAccepted,
        Self::StatusQuery,
        Self::StatusResponse,
        Self::FetchVotes,
        Self::FetchCheckpoint,
        Self::ReconfigurationDecision,
        Self::DefunctConfiguration,
        Self::Join,
        Self::JoinRequest,
        Self::Bootstrap,
    ];

    pub fn from_u16(value: u16) -> Option<Self> {
        Self::ALL.get(usize::from(value)).copied()
    }
}

/// One message: the common header and the body its id implies.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WireMessage {
    pub header: Header,
    pub body: WireBody,
}

/// A vote inside a PrepareAccepted: a complete message of its own, with its own version.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct WireVote {
    pub header: Header,
    pub fields: VoteFields,
}

/// The body of a Vote (id 1).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct VoteFields {
    /// Version 7 only: the primary's passed watermark.
    pub passed: Option<Decree>,
    /// Version ≥ 2.
    pub primary_cookie: Bytes,
    /// Version ≥ 5.
    pub relinquish: bool,
    /// Requests (each non-empty), or a new member set (version ≥ 3).
    pub value: VoteBody,
}

/// The body of a StatusResponse (id 7); the header carries the responder's latest vote.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct StatusFields {
    /// Version 7 only: the responder's passed watermark.
    pub passed: Option<Decree>,
    pub query_decree: Decree,
    pub query_ballot: Ballot,
    /// Milliseconds since the responder last accepted a vote.
    pub last_received_ago_ms: i64,
    pub min_decree_in_log: Decree,
    pub checkpointed_decree: Decree,
    /// Bytes of the whole checkpoint file.
    pub checkpoint_size: u64,
    pub max_ballot: Ballot,
    pub state: State,
}

/// The body of a Join (id 12).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct JoinFields {
    pub learn_port: u16,
    pub min_decree_in_log: Decree,
    pub checkpointed_decree: Decree,
    pub checkpoint_size: u64,
}

/// Message bodies by id. The comments say what the header's decree and ballot mean.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum WireBody {
    /// 1: decree and ballot of the proposal.
    Vote(VoteFields),
    /// 2: the accepted decree, the receiver's promised ballot; payload (v6) = vote payload.
    VoteAccepted,
    /// 3: the candidate's latest accepted decree and its new ballot.
    Prepare { passed: Option<Decree>, primary_cookie: Bytes },
    /// 4: decree and ballot echo the Prepare. Up to version 6 exactly one vote, the
    /// responder's latest (an empty ballot when it accepted nothing); version 7 any number.
    PrepareAccepted { watermark: Option<Decree>, votes: Vec<WireVote> },
    /// 5: the responder's latest decree and promised ballot.
    NotAccepted { passed: Option<Decree> },
    /// 6: the sender's latest accepted decree and ballot.
    StatusQuery,
    /// 7: the responder's latest accepted decree and ballot.
    StatusResponse(Box<StatusFields>),
    /// 8 (learn port): decree = the first decree wanted.
    FetchVotes,
    /// 9 (learn port): decree = the checkpoint wanted; configuration 1, empty ballot.
    FetchCheckpoint,
    /// 10: decree and ballot of the reconfiguration vote that was chosen.
    ReconfigurationDecision,
    /// 11: configuration = the highest defunct configuration; decree 0.
    DefunctConfiguration,
    /// 12: decree = the current configuration's initial decree − 1.
    Join(JoinFields),
    /// 13: configuration = the higher configuration seen; decree 0.
    JoinRequest,
    /// 14: decree 0, configuration 0, empty ballot.
    Bootstrap(MemberSet),
}

impl WireBody {
    pub fn id(&self) -> MessageId {
        match self {
            Self::Vote(_) => MessageId::Vote,
            Self::VoteAccepted => MessageId::VoteAccepted,
            Self::Prepare { .. } => MessageId::Prepare,
            Self::PrepareAccepted { .. } => MessageId::PrepareAccepted,
            Self::NotAccepted { .. } => MessageId::NotAccepted,
            Self::StatusQuery => MessageId::StatusQuery,
            Self::StatusResponse(_) => MessageId::StatusResponse,
            Self::FetchVotes => MessageId::FetchVotes,
            Self::FetchCheckpoint => MessageId::FetchCheckpoint,
            Self::ReconfigurationDecision => MessageId::ReconfigurationDecision,
            Self::DefunctConfiguration => MessageId::DefunctConfiguration,
            Self::Join(_) => MessageId::Join,
            Self::JoinRequest => MessageId::JoinRequest,
            Self::Bootstrap(_) => MessageId::Bootstrap,
        }
    }
}

/// Decodes exactly one message: `buf` must be as long as the message's length field.
/// The checksum is not verified here (the Paxos port does not verify it); see
/// [`super::verify_checksum`].
pub fn decode(buf: &Bytes, limits: &Limits) -> Result<WireMessage, DecodeError> {
    let len = message_len(buf, limits)?;
    if len != buf.len() {
        let actual = buf.len() as u64;
        return Err(DecodeError::Length {
            field: "message length",
            value: len as u64,
            min: actual,
            max: actual,
        });
    }
    let mut r = Reader::new(buf.clone(), Version::V1);
    let (header, id) = read_header(&mut r)?;
    let body = match id {
        MessageId::Vote => WireBody::Vote(read_vote(&mut r)?),
        MessageId::VoteAccepted => WireBody::VoteAccepted,
        MessageId::Prepare => {
            let passed = r.watermark()?;
            let primary_cookie = read_primary_cookie(&mut r)?;
            WireBody::Prepare { passed, primary_cookie }
        }
        MessageId::PrepareAccepted => read_prepare_accepted(&mut r, limits)?,
        MessageId::NotAccepted => WireBody::NotAccepted { passed: r.watermark()? },
        MessageId::StatusQuery => WireBody::StatusQuery,
        MessageId::StatusResponse => WireBody::StatusResponse(Box::new(read_status(&mut r)?)),
        MessageId::FetchVotes => WireBody::FetchVotes,
        MessageId::FetchCheckpoint => WireBody::FetchCheckpoint,
        MessageId::ReconfigurationDecision => WireBody::ReconfigurationDecision,
        MessageId::DefunctConfiguration => WireBody::DefunctConfiguration,
        MessageId::Join => WireBody::Join(JoinFields {
            learn_port: r.u16("learn port")?,
            min_decree_in_log: r.decree("minDecreeInLog")?,
            checkpointed_decree: r.decree("checkpointedDecree")?,
            checkpoint_size: r.u64("checkpointSize")?,
        }),
        MessageId::JoinRequest => WireBody::JoinRequest,
        MessageId::Bootstrap => WireBody::Bootstrap(r.member_set()?),
        MessageId::None => return Err(DecodeError::BadValue { field: "message id", value: 0 }),
    };
    r.finish()?;
    Ok(WireMessage { header, body })
}

fn read_primary_cookie(r: &mut Reader) -> Result<Bytes, DecodeError> {
    if r.version >= Version::V2 {
        r.cookie("primary cookie")
    } else {
        Ok(Bytes::new())
    }
}

/// A vote body runs to the end of its message: the requests have no count.
fn read_vote(r: &mut Reader) -> Result<VoteFields, DecodeError> {
    let passed = r.watermark()?;
    let primary_cookie = read_primary_cookie(r)?;
    let reconfiguration = r.version >= Version::V3 && r.flag("isReconfiguration")?;
    let members = if reconfiguration { Some(r.member_set()?) } else { None };
    let relinquish = r.version >= Version::V5 && r.flag("relinquishPrimary")?;
    let value = match members {
        // Trailing request bytes in a reconfiguration vote are left for `finish` to refuse
        // (legacy asserts on them).
        Some(set) => VoteBody::Reconfiguration(set),
        None => {
            let mut requests = Vec::new();
            while r.remaining() > 0 {
                let len = r.u32("request length")?;
                if len == 0 {
                    return Err(DecodeError::BadValue { field: "request length", value: 0 });
                }
                requests.push(r.take(len as usize, "request")?);
            }
            VoteBody::Requests(requests)
        }
    };
    Ok(VoteFields { passed, primary_cookie, relinquish, value })
}

/// Embedded votes are complete messages with their own length, so each is read from a
/// reader bounded by that length; a vote cannot embed anything, so recursion stops here.
fn read_prepare_accepted(r: &mut Reader, limits: &Limits) -> Result<WireBody, DecodeError> {
    let watermark = r.watermark()?;
    let mut votes = Vec::new();
    // Up to version 6 exactly one vote; version 7 zero or more, up to the end.
    loop {
        if watermark.is_some() && r.remaining() == 0 {
            break;
        }
        let len = message_len(r.rest(), limits)?;
        let mut sub = Reader::new(r.take(len, "embedded vote")?, Version::V1);
        let (header, id) = read_header(&mut sub)?;
        if id != MessageId::Vote {
            return Err(DecodeError::BadValue { field: "embedded message id", value: id as u64 });
        }
        let fields = read_vote(&mut sub)?;
        sub.finish()?;
        votes.push(WireVote { header, fields });
        if watermark.is_none() {
            break;
        }
    }
    Ok(WireBody::PrepareAccepted { watermark, votes })
}

fn read_status(r: &mut Reader) -> Result<StatusFields, DecodeError> {
    Ok(StatusFields {
        passed: r.watermark()?,
        query_decree: r.decree("queryDecree")?,
        query_ballot: r.ballot("queryBallot")?,
        last_received_ago_ms: r.u64("lastReceivedAgo")? as i64,
        min_decree_in_log: r.decree("minDecreeInLog")?,
        checkpointed_decree: r.decree("checkpointedDecree")?,
        checkpoint_size: r.u64("checkpointSize")?,
        max_ballot: r.ballot("maxBallot")?,
        state: match r.u32("state")? {
            0 => State::Inactive,
            1 => State::Primary,
            2 => State::Secondary,
            3 => State::Preparing,
            4 => State::Initializing,
            value => return Err(DecodeError::BadValue { field: "state", value: value.into() }),
        },
    })
}

impl WireMessage {
    /// Appends the message to `out`, checksum included. On error `out` is unchanged.
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_message(&self.header, self.body.id(), out, |w| match &self.body {
            WireBody::Vote(fields) => write_vote(w, fields),
            WireBody::Prepare { passed, primary_cookie } => {
                w.watermark(*passed)?;
                write_primary_cookie(w, primary_cookie)
            }
            WireBody::PrepareAccepted { watermark, votes } => {
                w.watermark(*watermark)?;
                if w.version < Version::V7 && votes.len() != 1 {
                    let field = "a PrepareAccepted without exactly one vote";
                    return Err(EncodeError::NotInVersion { field, version: w.version });
                }
                for vote in votes {
                    vote.encode(&mut *w.out)?;
                }
                Ok(())
            }
            WireBody::NotAccepted { passed } => w.watermark(*passed),
            WireBody::StatusResponse(s) => write_status(w, s),
            WireBody::Join(j) => {
                w.u16(j.learn_port);
                w.u64(j.min_decree_in_log.0);
                w.u64(j.checkpointed_decree.0);
                w.u64(j.checkpoint_size);
                Ok(())
            }
            WireBody::Bootstrap(set) => w.member_set(set),
            WireBody::VoteAccepted
            | WireBody::StatusQuery
            | WireBody::FetchVotes
            | WireBody::FetchCheckpoint
            | WireBody::ReconfigurationDecision
            | WireBody::DefunctConfiguration
            | WireBody::JoinRequest => Ok(()),
        })
    }

    /// The message as a fresh buffer.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        self.encode(&mut out)?;
        Ok(out)
    }
}

impl WireVote {
    pub fn encode(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        write_message(&self.header, MessageId::Vote, out, |w| write_vote(w, &self.fields))
    }
}

fn write_primary_cookie(w: &mut Writer, cookie: &[u8]) -> Result<(), EncodeError> {
    if w.version >= Version::V2 {
        w.cookie("primary cookie", cookie)
    } else if cookie.is_empty() {
        Ok(())
    } else {
        Err(EncodeError::NotInVersion { field: "a primary cookie", version: w.version })
    }
}

fn write_vote(w: &mut Writer, v: &VoteFields) -> Result<(), EncodeError> {
    let version = w.version;
    w.watermark(v.passed)?;
    write_primary_cookie(w, &v.primary_cookie)?;
    match &v.value {
        VoteBody::Reconfiguration(_) if version < Version::V3 => {
            return Err(EncodeError::NotInVersion { field: "a reconfiguration vote", version });
        }
        VoteBody::Reconfiguration(set) => {
            w.u8(1);
            w.member_set(set)?;
        }
        VoteBody::Requests(_) if version >= Version::V3 => w.u8(0),
        VoteBody::Requests(_) => {}
    }
    if version >= Version::V5 {
        w.u8(u8::from(v.relinquish));
    } else if v.relinquish {
        return Err(EncodeError::NotInVersion { field: "the relinquish flag", version });
    }
    if let VoteBody::Requests(requests) = &v.value {
        for request in requests {
            if request.is_empty() {
                return Err(EncodeError::Invalid("an empty request"));
            }
            w.cookie("request", request)?;
        }
    }
    Ok(())
}

fn write_status(w: &mut Writer, s: &StatusFields) -> Result<(), EncodeError> {
    w.watermark(s.passed)?;
    w.u64(s.query_decree.0);
    w.ballot(&s.query_ballot)?;
    w.u64(s.last_received_ago_ms as u64);
    w.u64(s.min_decree_in_log.0);
    w.u64(s.checkpointed_decree.0);
    w.u64(s.checkpoint_size);
    w.ballot(&s.max_ballot)?;
    w.u32(s.state as u32);
    Ok(())
}
