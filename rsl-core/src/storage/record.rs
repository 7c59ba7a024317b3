//! A journal [`Record`] as the legacy message that stands for it on disk, and back: a
//! vote is a Vote message (id 1), a promise a Prepare (id 3, as legacy logs it), and a
//! ReconfigurationDecision (id 10) is recognised but has no record in the core. Both
//! backends store exactly these bytes, so either can hand out legacy `.log` records.
//!
//! Records are written in the configured protocol version, except that a vote whose
//! `passed` differs from the implied `decree − 1` (a learned vote, its own proof) is
//! written in version 7, the only one that carries the watermark.

use crate::paxos::{Ballot, Body, Decree, Message, Record};
use crate::wire::{
    decode, verify_checksum, DecodeError, EncodeError, Limits, MessageId, Version, WireMessage,
};
use bytes::Bytes;
use std::sync::Arc;

/// Encodes records; remembers the latest vote so that a promise's Prepare carries the
/// decree and configuration a legacy Prepare would (the core's promise has only a ballot).
#[derive(Clone, Debug)]
pub(super) struct Encoder {
    version: Version,
    last_vote: Option<(Decree, u32)>,
}

/// What one valid message on disk holds.
pub(super) enum Decoded {
    Record(Record),
    ReconfigurationDecision,
}

impl Encoder {
    pub(super) fn new(version: Version) -> Self {
        Self { version, last_vote: None }
    }

    /// Notes a record that is already in the journal (at recovery, or just appended).
    pub(super) fn observe(&mut self, record: &Record) {
        if let Record::Vote(v) = record {
            self.last_vote = Some((v.decree, v.configuration));
        }
    }

    /// The complete message (checksum filled in, not padded) for `record`.
    pub(super) fn encode(&self, record: &Record) -> Result<Vec<u8>, EncodeError> {
        let (message, version) = match record {
            Record::Vote(vote) => {
                let implied = Decree(vote.decree.0.saturating_sub(1));
                let version = if vote.passed == implied { self.version } else { Version::V7 };
                let message = Message {
                    from: vote.ballot.member.clone(),
                    configuration: vote.configuration,
                    body: Body::Vote(Arc::clone(vote)),
                };
                (message, version)
            }
            Record::Promise(ballot) => (self.prepare(ballot), self.version),
        };
        WireMessage::from_core(&message, version)?.to_bytes()
    }

    fn prepare(&self, ballot: &Ballot) -> Message {
        let (decree, configuration) = self.last_vote.unwrap_or((Decree(0), 1));
        Message {
            from: ballot.member.clone(),
            configuration,
            body: Body::Prepare {
                decree,
                passed: Decree(decree.0.saturating_sub(1)),
                ballot: ballot.clone(),
                primary_cookie: Bytes::new(),
            },
        }
    }
}

/// Decodes one complete message (exactly its length field's bytes), checksum verified.
pub(super) fn decode_message(message: &Bytes, limits: &Limits) -> Result<Decoded, DecodeError> {
    verify_checksum(message)?;
    let wire = decode(message, limits)?;
    match wire.body.id() {
        MessageId::ReconfigurationDecision => Ok(Decoded::ReconfigurationDecision),
        MessageId::Prepare => Ok(Decoded::Record(Record::Promise(wire.header.ballot))),
        MessageId::Vote => match wire.into_core() {
            Some(Message { body: Body::Vote(v), .. }) => Ok(Decoded::Record(Record::Vote(v))),
            _ => unreachable!("a Vote message converts to a core vote"),
        },
        id => Err(DecodeError::BadValue { field: "log record message id", value: id as u64 }),
    }
}
