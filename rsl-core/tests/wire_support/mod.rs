//! Proptest strategies shared by the wire tests: wire messages of every id in every
//! version (holding only values their version can carry), and core messages a version
//! can carry.

#![allow(dead_code)] // each test binary uses part of this module

use bytes::Bytes;
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use rsl_core::paxos::{
    Ballot, Body, Decree, Member, MemberId, MemberSet, Message, State, Status, Vote, VoteBody,
};
use rsl_core::wire::{
    Header, JoinFields, MessageId, StatusFields, Version, VoteFields, WireBody, WireMessage, WireVote,
};
use std::sync::Arc;

pub fn member_id(v: Version) -> BoxedStrategy<MemberId> {
    let text = if v <= Version::V3 {
        prop_oneof![Just(String::new()), (1u64..).prop_map(|n| n.to_string())].boxed()
    } else {
        prop_oneof!["[a-zA-Z0-9._-]{0,63}", "[α-ω]{0,31}"].boxed()
    };
    text.prop_map(|s| MemberId::new(&s).unwrap()).boxed()
}

pub fn decree() -> impl Strategy<Value = Decree> {
    prop_oneof![0u64..1000, any::<u64>()].prop_map(Decree)
}

pub fn ballot(v: Version) -> impl Strategy<Value = Ballot> {
    (any::<u32>(), member_id(v)).prop_map(|(n, m)| Ballot::new(n, m))
}

pub fn bytes(min: usize, max: usize) -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), min..max).prop_map(Bytes::from)
}

/// The v7 watermark: present exactly in version 7.
fn watermark(v: Version) -> BoxedStrategy<Option<Decree>> {
    if v == Version::V7 {
        decree().prop_map(Some).boxed()
    } else {
        Just(None).boxed()
    }
}

pub fn member_set(v: Version) -> impl Strategy<Value = MemberSet> {
    let member = (member_id(v), any::<u32>(), 1..=u16::MAX, any::<u16>(), "[a-z0-9.-]{0,40}").prop_map(
        |(id, ip, rsl_port, learn_port, host_name)| Member { id, ip, rsl_port, learn_port, host_name },
    );
    (vec(member, 1..5), bytes(0, 64)).prop_filter_map("duplicate ids", |(m, c)| MemberSet::new(m, c).ok())
}

pub fn header(v: Version) -> impl Strategy<Value = Header> {
    let configuration = if v <= Version::V2 { Just(1).boxed() } else { any::<u32>().boxed() };
    let payload = if v >= Version::V6 { any::<u64>().boxed() } else { Just(0).boxed() };
    (member_id(v), decree(), configuration, ballot(v), payload).prop_map(
        move |(from, decree, configuration, ballot, payload)| Header {
            version: v,
            from,
            decree,
            configuration,
            ballot,
            payload,
        },
    )
}

pub fn vote_body(v: Version) -> BoxedStrategy<VoteBody> {
    let requests = vec(bytes(1, 40), 0..4).prop_map(VoteBody::Requests);
    if v >= Version::V3 {
        prop_oneof![4 => requests, 1 => member_set(v).prop_map(VoteBody::Reconfiguration)].boxed()
    } else {
        requests.boxed()
    }
}

pub fn vote_fields(v: Version) -> impl Strategy<Value = VoteFields> {
    let cookie = if v >= Version::V2 { bytes(0, 24).boxed() } else { Just(Bytes::new()).boxed() };
    let relinquish = if v >= Version::V5 { any::<bool>().boxed() } else { Just(false).boxed() };
    (watermark(v), cookie, relinquish, vote_body(v)).prop_map(
        |(passed, primary_cookie, relinquish, value)| VoteFields {
            passed,
            primary_cookie,
            relinquish,
            value,
        },
    )
}

/// A vote of any version, as a PrepareAccepted may embed.
pub fn wire_vote() -> impl Strategy<Value = WireVote> {
    select(Version::ALL.to_vec())
        .prop_flat_map(|v| (header(v), vote_fields(v)))
        .prop_map(|(header, fields)| WireVote { header, fields })
}

pub fn state() -> impl Strategy<Value = State> {
    select(vec![State::Inactive, State::Primary, State::Secondary, State::Preparing, State::Initializing])
}

pub fn body(v: Version, id: MessageId) -> BoxedStrategy<WireBody> {
    match id {
        MessageId::Vote => vote_fields(v).prop_map(WireBody::Vote).boxed(),
        MessageId::VoteAccepted => Just(WireBody::VoteAccepted).boxed(),
        MessageId::Prepare => {
            let cookie = if v >= Version::V2 { bytes(0, 24).boxed() } else { Just(Bytes::new()).boxed() };
            (watermark(v), cookie)
                .prop_map(|(passed, primary_cookie)| WireBody::Prepare { passed, primary_cookie })
                .boxed()
        }
        MessageId::PrepareAccepted => {
            let count = if v == Version::V7 { 0..4usize } else { 1..2 };
            (watermark(v), vec(wire_vote(), count))
                .prop_map(|(watermark, votes)| WireBody::PrepareAccepted { watermark, votes })
                .boxed()
        }
        MessageId::NotAccepted => watermark(v).prop_map(|passed| WireBody::NotAccepted { passed }).boxed(),
        MessageId::StatusQuery => Just(WireBody::StatusQuery).boxed(),
        MessageId::StatusResponse => (
            (watermark(v), decree(), ballot(v), any::<i64>()),
            (decree(), decree(), any::<u64>(), ballot(v), state()),
        )
            .prop_map(|((passed, query_decree, query_ballot, ago), (min, ckpt, size, max_ballot, state))| {
                WireBody::StatusResponse(Box::new(StatusFields {
                    passed,
                    query_decree,
                    query_ballot,
                    last_received_ago_ms: ago,
                    min_decree_in_log: min,
                    checkpointed_decree: ckpt,
                    checkpoint_size: size,
                    max_ballot,
                    state,
                }))
            })
            .boxed(),
        MessageId::FetchVotes => Just(WireBody::FetchVotes).boxed(),
        MessageId::FetchCheckpoint => Just(WireBody::FetchCheckpoint).boxed(),
        MessageId::ReconfigurationDecision => Just(WireBody::ReconfigurationDecision).boxed(),
        MessageId::DefunctConfiguration => Just(WireBody::DefunctConfiguration).boxed(),
        MessageId::Join => (any::<u16>(), decree(), decree(), any::<u64>())
            .prop_map(|(learn_port, min_decree_in_log, checkpointed_decree, checkpoint_size)| {
                WireBody::Join(JoinFields {
                    learn_port,
                    min_decree_in_log,
                    checkpointed_decree,
                    checkpoint_size,
                })
            })
            .boxed(),
        MessageId::JoinRequest => Just(WireBody::JoinRequest).boxed(),
        MessageId::Bootstrap => member_set(v).prop_map(WireBody::Bootstrap).boxed(),
        MessageId::None => panic!("id 0 has no body"),
    }
}

/// Ids 1–14: every id that has a message.
pub fn message_ids() -> Vec<MessageId> {
    MessageId::ALL[1..].to_vec()
}

pub fn message_with(v: Version, id: MessageId) -> impl Strategy<Value = WireMessage> {
    (header(v), body(v, id)).prop_map(|(header, body)| WireMessage { header, body })
}

pub fn message(v: Version) -> impl Strategy<Value = WireMessage> {
    select(message_ids()).prop_flat_map(move |id| message_with(v, id))
}

/// A core vote that `v` can carry, for configuration `configuration`, under a non-empty
/// ballot.
pub fn core_vote(v: Version, configuration: u32) -> impl Strategy<Value = Vote> {
    let ballot = (1u32.., member_id(v)).prop_map(|(n, m)| Ballot::new(n, m));
    let relinquish = if v >= Version::V5 { any::<bool>().boxed() } else { Just(false).boxed() };
    (decree(), decree(), ballot, bytes(0, 24), relinquish, vote_body(v)).prop_map(
        move |(decree, passed, ballot, primary_cookie, relinquish, body)| Vote {
            decree,
            ballot,
            configuration,
            passed,
            primary_cookie,
            relinquish,
            body,
        },
    )
}

/// A core message (ids 1–7) that `v` can carry.
pub fn core_message(v: Version) -> impl Strategy<Value = Message> {
    let configuration = if v <= Version::V2 { Just(1).boxed() } else { any::<u32>().boxed() };
    (member_id(v), configuration).prop_flat_map(move |(from, configuration)| {
        let max_votes = if v == Version::V7 { 4 } else { 2 };
        let body =
            prop_oneof![
                core_vote(v, configuration).prop_map(|vote| Body::Vote(Arc::new(vote))),
                (decree(), ballot(v), any::<u64>())
                    .prop_map(|(decree, ballot, payload)| Body::VoteAccepted { decree, ballot, payload }),
                (decree(), decree(), ballot(v), bytes(0, 24)).prop_map(
                    |(decree, passed, ballot, primary_cookie)| {
                        Body::Prepare { decree, passed, ballot, primary_cookie }
                    }
                ),
                (decree(), ballot(v), decree(), vec(core_vote(v, configuration), 0..max_votes)).prop_map(
                    |(decree, ballot, watermark, votes)| Body::PrepareAccepted {
                        decree,
                        ballot,
                        watermark,
                        votes: votes.into_iter().map(Arc::new).collect(),
                    }
                ),
                (decree(), decree(), ballot(v)).prop_map(|(decree, passed, ballot)| Body::NotAccepted {
                    decree,
                    passed,
                    ballot
                }),
                (decree(), ballot(v)).prop_map(|(decree, ballot)| Body::StatusQuery { decree, ballot }),
                (
                    (decree(), ballot(v), decree(), ballot(v), decree()),
                    (any::<i64>(), decree(), decree(), any::<u64>(), state())
                )
                    .prop_map(
                        |(
                            (query_decree, query_ballot, decree, ballot, passed),
                            (ago, min, ckpt, size, state),
                        )| {
                            Body::StatusResponse(Box::new(Status {
                                query_decree,
                                query_ballot,
                                decree,
                                ballot: ballot.clone(),
                                passed,
                                last_received_ago_ms: ago,
                                min_decree_in_log: min,
                                checkpointed_decree: ckpt,
                                checkpoint_size: size,
                                max_ballot: ballot,
                                state,
                            }))
                        }
                    ),
            ];
        body.prop_map(move |body| Message { from: from.clone(), configuration, body })
    })
}
