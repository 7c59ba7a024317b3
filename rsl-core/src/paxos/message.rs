//! The protocol's messages, independent of any wire version. `wire/` maps them to legacy
//! bytes (versions 1–6) and to the pipelined version 7; fields that only version 7 carries
//! are marked, with the value a ≤ 6 peer implies.

use super::types::{Ballot, Decree, MemberId, MemberSet};
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// What a decree decides: application requests (none = heartbeat / no-op), or a new
/// replica set.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum VoteBody {
    Requests(Vec<Bytes>),
    Reconfiguration(MemberSet),
}

/// A proposal: the value `body` for `decree` under `ballot`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Vote {
    pub decree: Decree,
    pub ballot: Ballot,
    pub configuration: u32,
    /// Version 7: the proposer knew every decree ≤ `passed` chosen when it sent this vote.
    /// A ≤ 6 vote implies `decree − 1` (legacy's "d is chosen once d+1 arrives").
    pub passed: Decree,
    /// The proposer's `CanBecomePrimary` data (version ≥ 2).
    pub primary_cookie: Bytes,
    /// Version ≥ 5: the primary steps down once this vote is chosen.
    pub relinquish: bool,
    pub body: VoteBody,
}

impl Vote {
    /// An empty (heartbeat / hole-filling) vote.
    pub fn empty(decree: Decree, ballot: Ballot, configuration: u32, passed: Decree) -> Self {
        Self {
            decree,
            ballot,
            configuration,
            passed,
            primary_cookie: Bytes::new(),
            relinquish: false,
            body: VoteBody::Requests(Vec::new()),
        }
    }

    pub fn requests(&self) -> &[Bytes] {
        match &self.body {
            VoteBody::Requests(r) => r,
            VoteBody::Reconfiguration(_) => &[],
        }
    }

    /// FNV-1a digest of the value (the body), not of decree, ballot or the relinquish flag
    /// (which speaks of the proposer, not of what is decided): two votes for one
    /// (decree, ballot) must have equal digests.
    pub fn value_digest(&self) -> u64 {
        let mut h = Fnv::new();
        match &self.body {
            VoteBody::Requests(requests) => {
                h.write(&[0]);
                for r in requests {
                    h.write(&(r.len() as u64).to_le_bytes());
                    h.write(r);
                }
            }
            VoteBody::Reconfiguration(set) => {
                h.write(&[1]);
                for id in set.ids() {
                    h.write(&(id.as_str().len() as u64).to_le_bytes());
                    h.write(id.as_str().as_bytes());
                }
                h.write(set.cookie());
            }
        }
        h.0
    }

    /// Bytes of request payload, for batching limits.
    pub fn payload_len(&self) -> usize {
        self.requests().iter().map(Bytes::len).sum()
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
}

/// Replica states; the numbers are the legacy wire values of `StatusResponse.m_state`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum State {
    Inactive = 0,
    Primary = 1,
    Secondary = 2,
    Preparing = 3,
    Initializing = 4,
}

/// A replica's answer to a StatusQuery.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Status {
    /// Echo of the query being answered.
    pub query_decree: Decree,
    pub query_ballot: Ballot,
    /// The responder's most recent accepted vote.
    pub decree: Decree,
    pub ballot: Ballot,
    /// Version 7: the responder's passed watermark (≤ 6 implies `decree − 1`).
    pub passed: Decree,
    /// Milliseconds since the responder last accepted a vote (−1: never).
    pub last_received_ago_ms: i64,
    pub min_decree_in_log: Decree,
    pub checkpointed_decree: Decree,
    pub checkpoint_size: u64,
    pub max_ballot: Ballot,
    pub state: State,
}

/// Message bodies; one variant per legacy message id the protocol core handles.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Body {
    /// Id 1: a proposal from the primary.
    Vote(Arc<Vote>),
    /// Id 2: the sender durably accepted `(decree, ballot)`.
    VoteAccepted { decree: Decree, ballot: Ballot, payload: u64 },
    /// Id 3: phase 1. `decree` is the candidate's latest accepted decree (legacy field);
    /// `passed` (version 7) its passed watermark, which bounds what promises must carry.
    Prepare { decree: Decree, passed: Decree, ballot: Ballot, primary_cookie: Bytes },
    /// Id 4: a promise for `ballot`, carrying every vote the responder accepted above the
    /// prepare's `passed` (legacy: only the latest one, which is all there is at window 1)
    /// and (version 7) the highest watermark the responder has seen (≤ 6: the embedded
    /// vote's decree − 1).
    PrepareAccepted { decree: Decree, ballot: Ballot, watermark: Decree, votes: Vec<Arc<Vote>> },
    /// Id 5: a refusal, showing the responder's latest decree, passed watermark
    /// (version 7) and promised ballot.
    NotAccepted { decree: Decree, passed: Decree, ballot: Ballot },
    /// Id 6: asks for the receiver's [`Status`]; echoes the sender's latest accepted vote.
    StatusQuery { decree: Decree, ballot: Ballot },
    /// Id 7.
    StatusResponse(Box<Status>),
    /// Id 10: the reconfiguration vote `(decree, ballot)` was chosen. Sent by its primary
    /// to the members of the configuration it ends; like a vote's watermark, it tells that
    /// every decree up to `decree` is chosen.
    ReconfigurationDecision { decree: Decree, ballot: Ballot },
    /// Id 14: start configuration 1 with this set (sent in configuration 0).
    Bootstrap(MemberSet),
    /// Id 11 (legacy): the message's configuration is dead, and so is every one before it.
    Defunct,
    /// Id 12 (legacy): the sender is a member of the message's configuration, whose first
    /// decree is `decree + 1`, and serves decrees from `min_decree_in_log` (and its
    /// checkpoint) on its learn port.
    Join {
        decree: Decree,
        learn_port: u16,
        min_decree_in_log: Decree,
        checkpointed_decree: Decree,
        checkpoint_size: u64,
    },
    /// Id 13 (legacy): the sender saw the message's configuration and asks its members to
    /// Join it.
    JoinRequest,
}

/// A message between replicas of one configuration.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Message {
    pub from: MemberId,
    pub configuration: u32,
    pub body: Body,
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}: ", self.from, self.configuration)?;
        match &self.body {
            Body::Vote(v) => write!(
                f,
                "Vote({} {} passed={} n={}{}{})",
                v.decree,
                v.ballot,
                v.passed,
                v.requests().len(),
                if v.relinquish { " relinquish" } else { "" },
                if matches!(v.body, VoteBody::Reconfiguration(_)) { " reconfiguration" } else { "" }
            ),
            Body::VoteAccepted { decree, ballot, .. } => write!(f, "VoteAccepted({decree} {ballot})"),
            Body::Prepare { decree, passed, ballot, .. } => {
                write!(f, "Prepare({decree} passed={passed} {ballot})")
            }
            Body::PrepareAccepted { decree, ballot, watermark, votes } => {
                write!(f, "PrepareAccepted({decree} {ballot} watermark={watermark} votes={})", votes.len())
            }
            Body::NotAccepted { decree, passed, ballot } => {
                write!(f, "NotAccepted({decree} passed={passed} {ballot})")
            }
            Body::StatusQuery { decree, ballot } => write!(f, "StatusQuery({decree} {ballot})"),
            Body::Bootstrap(set) => write!(f, "Bootstrap({} members)", set.len()),
            Body::Defunct => f.write_str("Defunct"),
            Body::Join { learn_port, min_decree_in_log, checkpointed_decree, .. } => {
                write!(f, "Join(learn port {learn_port}, log from {min_decree_in_log}, checkpoint {checkpointed_decree})")
            }
            Body::JoinRequest => f.write_str("JoinRequest"),
            Body::ReconfigurationDecision { decree, ballot } => {
                write!(f, "ReconfigurationDecision({decree} {ballot})")
            }
            Body::StatusResponse(s) => write!(
                f,
                "StatusResponse({} {} passed={} mb={} {:?})",
                s.decree, s.ballot, s.passed, s.max_ballot, s.state
            ),
        }
    }
}
