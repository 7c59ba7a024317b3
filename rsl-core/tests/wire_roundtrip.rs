//! Properties of the codec over generated messages of every id in every version (1–7):
//! encoding round-trips byte-exact (also as packets and log records), the core's messages
//! survive a trip through every version with exactly the implied values of §4.11 / version
//! 7, one byte less is always rejected, and each validation rule rejects what it should.

mod wire_support;

use bytes::Bytes;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rsl_core::paxos::{Ballot, Body, Decree, Member, MemberId, MemberSet, Message, Vote, VoteBody};
use rsl_core::wire::{
    decode, decode_packet, decode_record, encode_packet, encode_record, verify_checksum, DecodeError,
    EncodeError, Header, Limits, MessageId, Version, VoteFields, WireBody, WireMessage, WireVote,
    RECORD_ALIGN,
};
use std::sync::Arc;
use wire_support::{core_message, message_ids, message_with};

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
}

fn decode_vec(bytes: &[u8]) -> Result<WireMessage, DecodeError> {
    decode(&Bytes::copy_from_slice(bytes), &Limits::default())
}

#[test]
fn every_message_of_every_version_round_trips_byte_exact() {
    let limits = Limits::default();
    for v in Version::ALL {
        for id in message_ids() {
            runner(48)
                .run(&message_with(v, id), |m| {
                    let bytes = m.to_bytes().unwrap();
                    let decoded = decode(&Bytes::from(bytes.clone()), &limits).unwrap();
                    prop_assert_eq!(&decoded, &m);
                    prop_assert_eq!(decoded.to_bytes().unwrap(), bytes.clone());
                    verify_checksum(&bytes).unwrap();

                    let packet = encode_packet(&m).unwrap();
                    prop_assert_eq!(&packet[20..], &bytes[..]);
                    prop_assert_eq!(decode_packet(&Bytes::from(packet), &limits).unwrap(), m.clone());

                    let record = encode_record(&m).unwrap();
                    prop_assert_eq!(record.len() % RECORD_ALIGN, 0);
                    prop_assert!(record.len() - bytes.len() < RECORD_ALIGN);
                    prop_assert_eq!(decode_record(&Bytes::from(record), &limits).unwrap(), m);
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("v{} {id:?}: {e}", v.as_u16()));
        }
    }
}

/// What a message looks like after a trip through `v`: the values `v` does not carry
/// replaced by what a receiver implies for them.
fn implied(msg: &Message, v: Version) -> Message {
    let minus_one = |d: Decree| Decree(d.0.saturating_sub(1));
    let vote = |vote: &Vote| {
        let mut vote = vote.clone();
        if v < Version::V7 {
            vote.passed = minus_one(vote.decree);
        }
        if v < Version::V2 {
            vote.primary_cookie = Bytes::new();
        }
        vote
    };
    let mut msg = msg.clone();
    match &mut msg.body {
        Body::Vote(v0) => *v0 = Arc::new(vote(v0)),
        Body::VoteAccepted { payload, .. } if v < Version::V6 => *payload = 0,
        Body::Prepare { decree, passed, primary_cookie, .. } if v < Version::V7 => {
            *passed = minus_one(*decree);
            if v < Version::V2 {
                *primary_cookie = Bytes::new();
            }
        }
        Body::PrepareAccepted { decree, watermark, votes, .. } => {
            *votes = votes.iter().map(|x| Arc::new(vote(x))).collect();
            if v < Version::V7 {
                *watermark = minus_one(votes.first().map_or(*decree, |x| x.decree));
            }
        }
        Body::NotAccepted { decree, passed, .. } if v < Version::V7 => *passed = minus_one(*decree),
        Body::StatusResponse(s) if v < Version::V7 => s.passed = minus_one(s.decree),
        _ => {}
    }
    msg
}

#[test]
fn core_messages_survive_every_version_with_the_implied_values() {
    let limits = Limits::default();
    for v in Version::ALL {
        runner(512)
            .run(&core_message(v), |msg| {
                let wire = WireMessage::from_core(&msg, v).unwrap();
                let bytes = Bytes::from(wire.to_bytes().unwrap());
                let back = decode(&bytes, &limits).unwrap().into_core().unwrap();
                prop_assert_eq!(back, implied(&msg, v));
                Ok(())
            })
            .unwrap_or_else(|e| panic!("v{}: {e}", v.as_u16()));
    }
}

#[test]
fn version_7_is_identity_for_core_messages() {
    runner(512)
        .run(&core_message(Version::V7), |msg| {
            let bytes = Bytes::from(WireMessage::from_core(&msg, Version::V7).unwrap().to_bytes().unwrap());
            prop_assert_eq!(decode(&bytes, &Limits::default()).unwrap().into_core().unwrap(), msg);
            Ok(())
        })
        .unwrap();
}

#[test]
fn truncating_any_message_by_one_byte_is_rejected() {
    let limits = Limits::default();
    for v in Version::ALL {
        for id in message_ids() {
            runner(24)
                .run(&message_with(v, id), |m| {
                    let bytes = m.to_bytes().unwrap();
                    let short = &bytes[..bytes.len() - 1];
                    prop_assert!(decode_vec(short).is_err(), "input shorter than its length field");
                    // One byte less with a length field that agrees: the body parser must notice.
                    let mut patched = short.to_vec();
                    patched[2..6].copy_from_slice(&(short.len() as u32).to_le_bytes());
                    prop_assert!(decode_vec(&patched).is_err(), "body one byte short");
                    let packet = encode_packet(&m).unwrap();
                    let cut = Bytes::copy_from_slice(&packet[..packet.len() - 1]);
                    prop_assert!(decode_packet(&cut, &limits).is_err());
                    Ok(())
                })
                .unwrap_or_else(|e| panic!("v{} {id:?}: {e}", v.as_u16()));
        }
    }
}

fn id(s: &str) -> MemberId {
    MemberId::new(s).unwrap()
}

fn header(v: Version, decree: u64) -> Header {
    Header {
        version: v,
        from: id(if v <= Version::V3 { "5" } else { "r5" }),
        decree: Decree(decree),
        configuration: 1,
        ballot: Ballot::new(3, id(if v <= Version::V3 { "5" } else { "r5" })),
        payload: 0,
    }
}

fn heartbeat(v: Version, decree: u64) -> WireMessage {
    let passed = (v == Version::V7).then_some(Decree(decree - 1));
    let fields = VoteFields {
        passed,
        primary_cookie: Bytes::new(),
        relinquish: false,
        value: VoteBody::Requests(vec![]),
    };
    WireMessage { header: header(v, decree), body: WireBody::Vote(fields) }
}

#[test]
fn a_legacy_peer_implies_watermark_decree_minus_one() {
    let v6 = |body| WireMessage { header: header(Version::V6, 10), body }.into_core().unwrap().body;
    let Body::Vote(vote) = heartbeat(Version::V6, 10).into_core().unwrap().body else { panic!() };
    assert_eq!(vote.passed, Decree(9));
    let prepare = v6(WireBody::Prepare { passed: None, primary_cookie: Bytes::new() });
    assert!(matches!(prepare, Body::Prepare { passed: Decree(9), .. }));
    assert!(matches!(
        v6(WireBody::NotAccepted { passed: None }),
        Body::NotAccepted { passed: Decree(9), .. }
    ));
    // A promise embedding legacy's "nothing accepted" (empty ballot) carries no vote.
    let mut empty = heartbeat(Version::V6, 7);
    empty.header.ballot = Ballot::default();
    let WireBody::Vote(fields) = empty.body else { panic!() };
    let promise = v6(WireBody::PrepareAccepted {
        watermark: None,
        votes: vec![WireVote { header: empty.header, fields }],
    });
    assert!(
        matches!(promise, Body::PrepareAccepted { watermark: Decree(6), ref votes, .. } if votes.is_empty())
    );
}

#[test]
fn a_promise_of_nothing_reaches_a_legacy_candidate_as_an_empty_ballot_vote_at_the_echoed_decree() {
    let msg = Message {
        from: id("r5"),
        configuration: 2,
        body: Body::PrepareAccepted {
            decree: Decree(40),
            ballot: Ballot::new(9, id("r1")),
            watermark: Decree(39),
            votes: vec![],
        },
    };
    let WireBody::PrepareAccepted { votes, .. } = WireMessage::from_core(&msg, Version::V6).unwrap().body
    else {
        panic!()
    };
    assert_eq!(votes.len(), 1);
    assert_eq!(votes[0].header.decree, Decree(40));
    assert!(votes[0].header.ballot.is_empty());
}

#[test]
fn version_7_puts_the_watermark_at_offset_172_after_the_v6_header() {
    let mut msg =
        WireMessage { header: header(Version::V7, 10), body: WireBody::NotAccepted { passed: None } };
    msg.body = WireBody::NotAccepted { passed: Some(Decree(0x1122_3344_5566_7788)) };
    let bytes = msg.to_bytes().unwrap();
    assert_eq!(bytes.len(), 180);
    assert_eq!(&bytes[0..2], &[7, 0]);
    assert_eq!(&bytes[172..180], &0x1122_3344_5566_7788u64.to_le_bytes());
    assert_eq!(heartbeat(Version::V7, 10).to_bytes().unwrap().len(), 178 + 8);
    let promise = WireBody::PrepareAccepted { watermark: Some(Decree(3)), votes: vec![] };
    assert_eq!(WireMessage { header: header(Version::V7, 10), body: promise }.to_bytes().unwrap().len(), 180);
}

#[test]
fn a_v6_promise_may_embed_a_vote_of_an_older_version() {
    let WireBody::Vote(fields) = heartbeat(Version::V5, 4).body else { panic!() };
    let vote = WireVote { header: header(Version::V5, 4), fields };
    let msg = WireMessage {
        header: header(Version::V6, 4),
        body: WireBody::PrepareAccepted { watermark: None, votes: vec![vote] },
    };
    assert_eq!(decode_vec(&msg.to_bytes().unwrap()).unwrap(), msg);
}

/// Ids 8 and 9 belong to the learn port; every other id is a core message and survives a
/// trip into the core and back. (A fresh runner per id: a reused one runs no more cases.)
#[test]
fn only_the_learn_port_ids_are_not_core_messages() {
    for id in &message_ids()[7..] {
        let learn_port = matches!(id, MessageId::FetchVotes | MessageId::FetchCheckpoint);
        let cases = std::cell::Cell::new(0);
        runner(16)
            .run(&message_with(Version::V6, *id), |m| {
                cases.set(cases.get() + 1);
                match m.clone().into_core() {
                    None => prop_assert!(learn_port),
                    Some(core) => {
                        prop_assert!(!learn_port && WireMessage::from_core(&core, Version::V6).is_ok())
                    }
                }
                Ok(())
            })
            .unwrap_or_else(|e| panic!("{id:?}: {e}"));
        assert_eq!(cases.get(), 16, "{id:?}");
    }
}

#[test]
fn encoding_refuses_what_the_version_cannot_carry() {
    let not_in = |r: Result<Vec<u8>, EncodeError>| matches!(r, Err(EncodeError::NotInVersion { .. }));
    for bad in ["abc", "007", "0", "-1", "18446744073709551616", " 5"] {
        let mut m = heartbeat(Version::V3, 2);
        m.header.from = id(bad);
        assert!(matches!(m.to_bytes(), Err(EncodeError::MemberIdNotNumeric(_))), "{bad:?}");
    }
    let mut m = heartbeat(Version::V2, 2);
    m.header.configuration = 5;
    assert!(not_in(m.to_bytes()));
    let mut m = heartbeat(Version::V5, 2);
    m.header.payload = 1;
    assert!(not_in(m.to_bytes()));
    let with_fields = |v: Version, f: &dyn Fn(&mut VoteFields)| {
        let mut m = heartbeat(v, 2);
        let WireBody::Vote(fields) = &mut m.body else { panic!() };
        f(fields);
        m.to_bytes()
    };
    let set = MemberSet::of_ids(&["1", "2"]).unwrap();
    assert!(not_in(with_fields(Version::V2, &|f| f.value = VoteBody::Reconfiguration(set.clone()))));
    assert!(not_in(with_fields(Version::V4, &|f| f.relinquish = true)));
    assert!(not_in(with_fields(Version::V1, &|f| f.primary_cookie = Bytes::from_static(b"c"))));
    assert!(not_in(with_fields(Version::V6, &|f| f.passed = Some(Decree(1)))));
    assert!(matches!(with_fields(Version::V7, &|f| f.passed = None), Err(EncodeError::Invalid(_))));
    assert!(matches!(
        with_fields(Version::V6, &|f| f.value = VoteBody::Requests(vec![Bytes::new()])),
        Err(EncodeError::Invalid(_))
    ));
    let host = |name: &str| {
        let mut member = Member::named("r1").unwrap();
        member.host_name = name.into();
        let set = MemberSet::new(vec![member], Bytes::new()).unwrap();
        WireMessage { header: header(Version::V6, 0), body: WireBody::Bootstrap(set) }.to_bytes()
    };
    assert!(matches!(host(&"h".repeat(256)), Err(EncodeError::TooLong { .. })));
    assert!(host(&"h".repeat(255)).is_ok());
    assert!(matches!(host("a\0b"), Err(EncodeError::Invalid(_))));
    let WireBody::Vote(fields) = heartbeat(Version::V6, 2).body else { panic!() };
    let vote = WireVote { header: header(Version::V6, 2), fields };
    for votes in [vec![], vec![vote.clone(), vote]] {
        let body = WireBody::PrepareAccepted { watermark: None, votes };
        assert!(not_in(WireMessage { header: header(Version::V6, 2), body }.to_bytes()));
    }
    // From the core: a relinquish vote cannot be sent below version 5.
    let mut vote = Vote::empty(Decree(2), Ballot::new(1, id("7")), 1, Decree(1));
    vote.relinquish = true;
    let msg = Message { from: id("7"), configuration: 1, body: Body::Vote(Arc::new(vote)) };
    assert!(not_in(WireMessage::from_core(&msg, Version::V4).unwrap().to_bytes()));
    assert!(matches!(
        WireMessage::from_core(&Message { configuration: 2, ..msg }, Version::V6),
        Err(EncodeError::Invalid(_))
    ));
}

#[test]
fn failed_encoding_leaves_the_buffer_untouched() {
    let mut m = heartbeat(Version::V3, 2);
    m.header.from = id("x");
    let mut out = vec![1, 2, 3];
    assert!(m.encode(&mut out).is_err());
    assert_eq!(out, [1, 2, 3]);
}

/// A valid v6 message to corrupt, and a helper that patches bytes at an offset.
fn patched(bytes: &[u8], at: usize, with: &[u8]) -> Vec<u8> {
    let mut out = bytes.to_vec();
    out[at..at + with.len()].copy_from_slice(with);
    out
}

fn expect(result: Result<WireMessage, DecodeError>, what: &str) -> DecodeError {
    let err = result.expect_err(what);
    assert!(!err.to_string().is_empty());
    err
}

#[test]
fn decoding_rejects_each_malformed_header_field() {
    let good = heartbeat(Version::V6, 2).to_bytes().unwrap();
    assert!(decode_vec(&good).is_ok());
    let len = good.len() as u32;
    for version in [0u16, 8, 0xFFFF] {
        let e = expect(decode_vec(&patched(&good, 0, &version.to_le_bytes())), "version");
        assert!(matches!(e, DecodeError::BadValue { field: "version", .. }));
    }
    assert!(matches!(
        expect(decode_vec(&patched(&good, 14, &0xF00D_FACFu32.to_le_bytes())), "magic"),
        DecodeError::BadValue { field: "magic", .. }
    ));
    for msg_id in [0u16, 15, 0xFFFF] {
        let e = expect(decode_vec(&patched(&good, 18, &msg_id.to_le_bytes())), "id");
        assert!(matches!(e, DecodeError::BadValue { field: "message id", .. }));
    }
    // Length field below the v6 header size, and above the input.
    let e = expect(decode_vec(&patched(&good, 2, &171u32.to_le_bytes())), "short length");
    assert!(matches!(e, DecodeError::Length { .. }));
    assert!(decode_vec(&patched(&good, 2, &(len + 1).to_le_bytes())).is_err());
    // Above the limit, even when the input is that long.
    let small = Limits { max_message_size: good.len() - 1 };
    assert!(matches!(decode(&Bytes::from(good.clone()), &small), Err(DecodeError::Length { .. })));
    // A 64-byte member id without NUL, and one that is not UTF-8.
    assert!(matches!(
        expect(decode_vec(&patched(&good, 20, &[b'a'; 64])), "no NUL"),
        DecodeError::BadString(_)
    ));
    assert!(matches!(expect(decode_vec(&patched(&good, 20, &[0xFF, 0])), "utf8"), DecodeError::BadString(_)));
    // Legacy writers may leave garbage after the NUL: accepted, and ignored.
    let garbage = patched(&good, 22, &[0, 0xAB, 0xCD]);
    assert_eq!(decode_vec(&garbage).unwrap().header.from, id("r5"));
    // Bytes after the last field: a vote reads them as a request, a query refuses them.
    let mut trailing = patched(&good, 2, &(len + 1).to_le_bytes());
    trailing.push(0);
    assert!(matches!(expect(decode_vec(&trailing), "vote"), DecodeError::Truncated("request length")));
    let query = WireMessage { header: header(Version::V6, 2), body: WireBody::StatusQuery };
    let mut trailing = query.to_bytes().unwrap();
    trailing.extend([0, 0]);
    trailing[2..6].copy_from_slice(&174u32.to_le_bytes());
    assert!(matches!(expect(decode_vec(&trailing), "query"), DecodeError::TrailingBytes(2)));
}

#[test]
fn decoding_rejects_each_malformed_body_field() {
    let limits = Limits::default();
    let vote = |requests: &[&[u8]]| {
        let mut m = heartbeat(Version::V6, 2);
        let WireBody::Vote(fields) = &mut m.body else { panic!() };
        fields.value = VoteBody::Requests(requests.iter().map(|r| Bytes::copy_from_slice(r)).collect());
        m.to_bytes().unwrap()
    };
    let good = vote(&[b"abcd"]);
    // Body at 172: cookie len u32, reconfig u8, relinquish u8, then u32 len + request.
    assert!(matches!(decode_vec(&patched(&good, 176, &[2])), Err(DecodeError::BadValue { .. })));
    assert!(matches!(decode_vec(&patched(&good, 177, &[7])), Err(DecodeError::BadValue { .. })));
    // A zero-length request, and requests or cookies claiming 4 GiB in a small message.
    let zero = patched(&vote(&[b"a", b"b"]), 178, &0u32.to_le_bytes());
    assert!(matches!(decode_vec(&zero), Err(DecodeError::BadValue { field: "request length", .. })));
    assert!(matches!(
        decode_vec(&patched(&good, 178, &u32::MAX.to_le_bytes())),
        Err(DecodeError::Truncated(_))
    ));
    assert!(matches!(
        decode_vec(&patched(&good, 172, &u32::MAX.to_le_bytes())),
        Err(DecodeError::Truncated(_))
    ));

    let set = |members: Vec<Member>, cookie: usize| {
        let set = MemberSet::new(members, Bytes::from(vec![7u8; cookie])).unwrap();
        WireMessage { header: header(Version::V6, 0), body: WireBody::Bootstrap(set) }.to_bytes().unwrap()
    };
    let one = set(vec![Member::named("r1").unwrap()], 8192);
    assert!(decode_vec(&one).is_ok());
    // Member count 65535 with one member's bytes: truncated, without allocating for 65535.
    let bare = set(vec![Member::named("r1").unwrap()], 0);
    assert!(matches!(
        decode_vec(&patched(&bare, 172, &u16::MAX.to_le_bytes())),
        Err(DecodeError::Truncated(_))
    ));
    // Member at 174: id 64, ip 4, rslPort 2, learnPort 2, host name len 2 at 246, cookie len at 248.
    let e = decode_vec(&patched(&one, 246, &256u16.to_le_bytes()));
    assert!(matches!(e, Err(DecodeError::Length { field: "host name length", .. })));
    let e = decode_vec(&patched(&one, 248, &8193u32.to_le_bytes()));
    assert!(matches!(e, Err(DecodeError::Length { field: "member set cookie length", .. })));
    // Port 0 and an empty set are refused as legacy MemberSet::Verify refuses them.
    let e = decode_vec(&patched(&one, 242, &0u16.to_le_bytes()));
    assert!(matches!(e, Err(DecodeError::BadMemberSet(_))));
    let empty = patched(&patched(&bare[..178], 172, &[0; 6]), 2, &178u32.to_le_bytes());
    assert!(matches!(decode_vec(&empty), Err(DecodeError::BadMemberSet(_))));

    // StatusResponse state 5.
    let status = rsl_core::paxos::Status {
        query_decree: Decree(1),
        query_ballot: Ballot::default(),
        decree: Decree(1),
        ballot: Ballot::default(),
        passed: Decree(0),
        last_received_ago_ms: 0,
        min_decree_in_log: Decree(0),
        checkpointed_decree: Decree(0),
        checkpoint_size: 0,
        max_ballot: Ballot::default(),
        state: rsl_core::paxos::State::Primary,
    };
    let msg = Message { from: id("r5"), configuration: 1, body: Body::StatusResponse(Box::new(status)) };
    let bytes = WireMessage::from_core(&msg, Version::V6).unwrap().to_bytes().unwrap();
    let at = bytes.len() - 4;
    assert!(matches!(
        decode_vec(&patched(&bytes, at, &5u32.to_le_bytes())),
        Err(DecodeError::BadValue { .. })
    ));

    // A promise whose embedded message is not a vote.
    let WireBody::Vote(fields) = heartbeat(Version::V6, 2).body else { panic!() };
    let promise = WireMessage {
        header: header(Version::V6, 2),
        body: WireBody::PrepareAccepted {
            watermark: None,
            votes: vec![WireVote { header: header(Version::V6, 2), fields }],
        },
    };
    let bytes = promise.to_bytes().unwrap();
    let e = decode_vec(&patched(&bytes, 172 + 18, &(MessageId::Prepare as u16).to_le_bytes()));
    assert!(matches!(e, Err(DecodeError::BadValue { field: "embedded message id", .. })));

    // Checksums: the message's (verified on demand) and the packet's (always).
    let mut flipped = good.clone();
    flipped[180] ^= 1;
    assert!(matches!(verify_checksum(&flipped), Err(DecodeError::Checksum { .. })));
    let mut packet = encode_packet(&heartbeat(Version::V6, 2)).unwrap();
    packet[30] ^= 1;
    assert!(matches!(decode_packet(&Bytes::from(packet), &limits), Err(DecodeError::Checksum { .. })));
    for size in [0u32, 19, u32::MAX] {
        let mut packet = encode_packet(&heartbeat(Version::V6, 2)).unwrap();
        packet[..4].copy_from_slice(&size.to_le_bytes());
        assert!(matches!(decode_packet(&Bytes::from(packet), &limits), Err(DecodeError::Length { .. })));
    }
}

#[test]
fn reconfiguration_votes_carry_no_requests() {
    let mut m = heartbeat(Version::V4, 2);
    let WireBody::Vote(fields) = &mut m.body else { panic!() };
    fields.value = VoteBody::Reconfiguration(MemberSet::of_ids(&["a", "b"]).unwrap());
    let mut bytes = m.to_bytes().unwrap();
    bytes.extend(1u32.to_le_bytes());
    bytes.push(b'x');
    let len = bytes.len() as u32;
    bytes[2..6].copy_from_slice(&len.to_le_bytes());
    assert!(matches!(decode_vec(&bytes), Err(DecodeError::TrailingBytes(5))));
}

#[test]
fn default_limit_is_legacy_100_mb() {
    assert_eq!(Limits::default().max_message_size, 100 * 1024 * 1024 + 1024);
}
