//! The protocol core's messages (ids 1–7) to and from [`WireMessage`]s.
//!
//! From a version ≤ 6 peer, every version-7 field takes its implied value: a watermark of
//! `decree − 1` (legacy's "decree d is chosen once d + 1 arrives under the same ballot"),
//! and a PrepareAccepted carries its one vote unless that vote has the empty ballot, which
//! is legacy's "nothing accepted". Towards a version, fields it does not carry are dropped
//! exactly where a legacy replica of that version never had them (the primary cookie below
//! 2, the payload below 6, the watermarks below 7); anything whose loss would change the
//! meaning (a relinquish vote below 5, a reconfiguration below 3, a configuration other
//! than 1 below 3, several votes in one promise below 7) is an [`EncodeError`].

use super::error::EncodeError;
use super::header::Header;
use super::message::{JoinFields, StatusFields, VoteFields, WireBody, WireMessage, WireVote};
use super::Version;
use crate::paxos::{Ballot, Body, Decree, Message, Status, Vote};
use bytes::Bytes;
use std::sync::Arc;

/// The watermark a version ≤ 6 message implies.
fn implied(decree: Decree) -> Decree {
    Decree(decree.0.saturating_sub(1))
}

fn vote_into_core(header: Header, fields: VoteFields) -> Vote {
    Vote {
        decree: header.decree,
        passed: fields.passed.unwrap_or(implied(header.decree)),
        ballot: header.ballot,
        configuration: header.configuration,
        primary_cookie: fields.primary_cookie,
        relinquish: fields.relinquish,
        body: fields.value,
    }
}

fn vote_fields(vote: &Vote, version: Version) -> VoteFields {
    VoteFields {
        passed: (version == Version::V7).then_some(vote.passed),
        primary_cookie: primary_cookie(version, &vote.primary_cookie),
        relinquish: vote.relinquish,
        value: vote.body.clone(),
    }
}

/// Legacy hands `AcceptMessageFromReplica` no cookie before version 2.
fn primary_cookie(version: Version, cookie: &Bytes) -> Bytes {
    if version >= Version::V2 {
        cookie.clone()
    } else {
        Bytes::new()
    }
}

impl WireVote {
    /// `vote` as `version` carries it, sent by its ballot's member (a checkpoint's next vote).
    pub fn from_core(vote: &Vote, version: Version) -> Self {
        let header = Header {
            version,
            from: vote.ballot.member.clone(),
            decree: vote.decree,
            configuration: vote.configuration,
            ballot: vote.ballot.clone(),
            payload: 0,
        };
        Self { header, fields: vote_fields(vote, version) }
    }

    /// The core's view of this vote (to re-encode a checkpoint's next vote in another
    /// version).
    pub fn into_core(self) -> Vote {
        vote_into_core(self.header, self.fields)
    }
}

impl WireMessage {
    /// The core's view of this message, or `None` for ids 8 and 9, which belong to the
    /// learn port.
    pub fn into_core(self) -> Option<Message> {
        let WireMessage { header: h, body } = self;
        let (from, configuration) = (h.from.clone(), h.configuration);
        let body = match body {
            WireBody::Vote(fields) => Body::Vote(Arc::new(vote_into_core(h, fields))),
            WireBody::VoteAccepted => {
                Body::VoteAccepted { decree: h.decree, ballot: h.ballot, payload: h.payload }
            }
            WireBody::Prepare { passed, primary_cookie } => Body::Prepare {
                decree: h.decree,
                passed: passed.unwrap_or(implied(h.decree)),
                ballot: h.ballot,
                primary_cookie,
            },
            WireBody::PrepareAccepted { watermark, votes } => {
                let implied_watermark = votes.first().map_or(implied(h.decree), |v| implied(v.header.decree));
                let votes = votes
                    .into_iter()
                    .filter(|v| !v.header.ballot.is_empty())
                    .map(|v| Arc::new(vote_into_core(v.header, v.fields)))
                    .collect();
                Body::PrepareAccepted {
                    decree: h.decree,
                    ballot: h.ballot,
                    watermark: watermark.unwrap_or(implied_watermark),
                    votes,
                }
            }
            WireBody::NotAccepted { passed } => Body::NotAccepted {
                decree: h.decree,
                passed: passed.unwrap_or(implied(h.decree)),
                ballot: h.ballot,
            },
            WireBody::StatusQuery => Body::StatusQuery { decree: h.decree, ballot: h.ballot },
            WireBody::StatusResponse(s) => Body::StatusResponse(Box::new(Status {
                query_decree: s.query_decree,
                query_ballot: s.query_ballot,
                decree: h.decree,
                passed: s.passed.unwrap_or(implied(h.decree)),
                ballot: h.ballot,
                last_received_ago_ms: s.last_received_ago_ms,
                min_decree_in_log: s.min_decree_in_log,
                checkpointed_decree: s.checkpointed_decree,
                checkpoint_size: s.checkpoint_size,
                max_ballot: s.max_ballot,
                state: s.state,
            })),
            WireBody::ReconfigurationDecision => {
                Body::ReconfigurationDecision { decree: h.decree, ballot: h.ballot }
            }
            WireBody::DefunctConfiguration => Body::Defunct,
            WireBody::Join(j) => Body::Join {
                decree: h.decree,
                learn_port: j.learn_port,
                min_decree_in_log: j.min_decree_in_log,
                checkpointed_decree: j.checkpointed_decree,
                checkpoint_size: j.checkpoint_size,
            },
            WireBody::JoinRequest => Body::JoinRequest,
            WireBody::FetchVotes | WireBody::FetchCheckpoint => return None,
            WireBody::Bootstrap(set) => Body::Bootstrap(set),
        };
        Some(Message { from, configuration, body })
    }

    /// `msg` as `version` carries it (see the module documentation for what is dropped).
    /// Errors surface here or when the result is encoded.
    pub fn from_core(msg: &Message, version: Version) -> Result<Self, EncodeError> {
        let v7 = version == Version::V7;
        let header = |decree: Decree, ballot: &Ballot, payload: u64| Header {
            version,
            from: msg.from.clone(),
            decree,
            configuration: msg.configuration,
            ballot: ballot.clone(),
            payload,
        };
        let (header, body) = match &msg.body {
            Body::Vote(vote) => {
                if vote.configuration != msg.configuration {
                    return Err(EncodeError::Invalid(
                        "a vote whose configuration differs from its message's",
                    ));
                }
                (header(vote.decree, &vote.ballot, 0), WireBody::Vote(vote_fields(vote, version)))
            }
            Body::VoteAccepted { decree, ballot, payload } => {
                let payload = if version >= Version::V6 { *payload } else { 0 };
                (header(*decree, ballot, payload), WireBody::VoteAccepted)
            }
            Body::Prepare { decree, passed, ballot, primary_cookie: cookie } => (
                header(*decree, ballot, 0),
                WireBody::Prepare {
                    passed: v7.then_some(*passed),
                    primary_cookie: primary_cookie(version, cookie),
                },
            ),
            Body::PrepareAccepted { decree, ballot, watermark, votes } => {
                let mut wire_votes: Vec<WireVote> = votes
                    .iter()
                    .map(|v| WireVote {
                        header: Header {
                            version,
                            from: v.ballot.member.clone(),
                            decree: v.decree,
                            configuration: v.configuration,
                            ballot: v.ballot.clone(),
                            payload: 0,
                        },
                        fields: vote_fields(v, version),
                    })
                    .collect();
                if !v7 && wire_votes.is_empty() {
                    // Legacy always embeds its latest vote. An empty ballot at the echoed
                    // decree says "nothing above your watermark": a legacy candidate keeps
                    // its own vote, and `into_core` drops it.
                    let empty = Vote::empty(*decree, Ballot::default(), msg.configuration, Decree(0));
                    let header = header(*decree, &Ballot::default(), 0);
                    wire_votes.push(WireVote { header, fields: vote_fields(&empty, version) });
                }
                let body =
                    WireBody::PrepareAccepted { watermark: v7.then_some(*watermark), votes: wire_votes };
                (header(*decree, ballot, 0), body)
            }
            Body::NotAccepted { decree, passed, ballot } => {
                (header(*decree, ballot, 0), WireBody::NotAccepted { passed: v7.then_some(*passed) })
            }
            Body::StatusQuery { decree, ballot } => (header(*decree, ballot, 0), WireBody::StatusQuery),
            Body::ReconfigurationDecision { decree, ballot } => {
                (header(*decree, ballot, 0), WireBody::ReconfigurationDecision)
            }
            Body::Bootstrap(set) => {
                (header(Decree(0), &Ballot::default(), 0), WireBody::Bootstrap(set.clone()))
            }
            Body::Defunct => (header(Decree(0), &Ballot::default(), 0), WireBody::DefunctConfiguration),
            Body::JoinRequest => (header(Decree(0), &Ballot::default(), 0), WireBody::JoinRequest),
            Body::Join { decree, learn_port, min_decree_in_log, checkpointed_decree, checkpoint_size } => {
                let fields = JoinFields {
                    learn_port: *learn_port,
                    min_decree_in_log: *min_decree_in_log,
                    checkpointed_decree: *checkpointed_decree,
                    checkpoint_size: *checkpoint_size,
                };
                (header(*decree, &Ballot::default(), 0), WireBody::Join(fields))
            }
            Body::StatusResponse(s) => {
                let fields = StatusFields {
                    passed: v7.then_some(s.passed),
                    query_decree: s.query_decree,
                    query_ballot: s.query_ballot.clone(),
                    last_received_ago_ms: s.last_received_ago_ms,
                    min_decree_in_log: s.min_decree_in_log,
                    checkpointed_decree: s.checkpointed_decree,
                    checkpoint_size: s.checkpoint_size,
                    max_ballot: s.max_ballot.clone(),
                    state: s.state,
                };
                (header(s.decree, &s.ballot, 0), WireBody::StatusResponse(Box::new(fields)))
            }
        };
        Ok(WireMessage { header, body })
    }
}
