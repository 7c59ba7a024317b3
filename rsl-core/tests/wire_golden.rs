//! Golden tests: byte strings assembled by hand from the spec's tables (§4.13 message
//! bodies, §4.14 header offsets and sub-structures), not by our encoder, for every message
//! id in versions 3, 4 and 6. Each must decode to the expected fields and re-encode to the
//! very same bytes.

use bytes::Bytes;
use rsl_core::paxos::{Ballot, Decree, Member, MemberId, MemberSet, State, VoteBody};
use rsl_core::wire::{
    decode, fingerprint, Header, JoinFields, Limits, StatusFields, Version, VoteFields, WireBody,
    WireMessage, WireVote,
};

const MAGIC: u32 = 0xF00D_FACE;

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A member id field: a u64 up to v3, else 64 bytes with NUL padding.
fn id_field(v: u16, id: &str) -> Vec<u8> {
    if v <= 3 {
        let n: u64 = if id.is_empty() { 0 } else { id.parse().unwrap() };
        n.to_le_bytes().to_vec()
    } else {
        let mut f = vec![0u8; 64];
        put(&mut f, 0, id.as_bytes());
        f
    }
}

/// The common header, field by field at the offsets of the §4.14 table; length and
/// checksum are filled in by `seal`.
#[allow(clippy::too_many_arguments)]
fn header(
    v: u16,
    msg_id: u16,
    from: &str,
    decree: u64,
    config: u32,
    ballot: (u32, &str),
    payload: u64,
) -> Vec<u8> {
    let (base, decree_at, config_at, ballot_at, ballot_member_at) = match v {
        1 | 2 => (48, 28, None, 36, 40),
        3 => (52, 28, Some(36), 40, 44),
        4 | 5 => (164, 84, Some(92), 96, 100),
        _ => (172, 84, Some(92), 96, 100),
    };
    let mut h = vec![0u8; base];
    put(&mut h, 0, &v.to_le_bytes());
    put(&mut h, 14, &MAGIC.to_le_bytes());
    put(&mut h, 18, &msg_id.to_le_bytes());
    put(&mut h, 20, &id_field(v, from));
    put(&mut h, decree_at, &decree.to_le_bytes());
    if let Some(at) = config_at {
        put(&mut h, at, &config.to_le_bytes());
    }
    put(&mut h, ballot_at, &ballot.0.to_le_bytes());
    put(&mut h, ballot_member_at, &id_field(v, ballot.1));
    if v >= 6 {
        put(&mut h, 164, &payload.to_le_bytes());
    }
    h
}

/// Fills in the length (offset 2) and the checksum of bytes `[14, length)` (offset 6).
fn seal(mut m: Vec<u8>) -> Vec<u8> {
    let len = m.len() as u32;
    put(&mut m, 2, &len.to_le_bytes());
    let checksum = fingerprint(&m[14..]);
    put(&mut m, 6, &checksum.to_le_bytes());
    m
}

fn len_prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u32).to_le_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

/// The sample member set's bytes (§4.14 MemberSet).
fn member_set_bytes(v: u16, ids: [&str; 3]) -> Vec<u8> {
    let mut out = 2u16.to_le_bytes().to_vec();
    for (i, (id, host)) in [(ids[0], "a.example"), (ids[1], "")].into_iter().enumerate() {
        out.extend(id_field(v, id));
        out.extend(0x0100_007f_u32.wrapping_add(i as u32).to_le_bytes()); // ip
        out.extend((20000 + i as u16).to_le_bytes()); // rslPort
        out.extend((30000 + i as u16).to_le_bytes()); // learnPort (appPort in v3)
        out.extend((host.len() as u16).to_le_bytes());
        out.extend(host.as_bytes());
    }
    out.extend(len_prefixed(b"cfg-cookie"));
    out
}

fn member_set(ids: [&str; 3]) -> MemberSet {
    let member = |i: u16, id: &str, host: &str| Member {
        id: MemberId::new(id).unwrap(),
        ip: 0x0100_007f + u32::from(i),
        rsl_port: 20000 + i,
        learn_port: 30000 + i,
        host_name: host.into(),
    };
    MemberSet::new(
        vec![member(0, ids[0], "a.example"), member(1, ids[1], "")],
        Bytes::from_static(b"cfg-cookie"),
    )
    .unwrap()
}

/// Member ids: numeric up to v3 (including u64::MAX), strings from v4 (one of the maximum
/// 63 bytes).
fn ids(v: u16) -> [&'static str; 3] {
    if v <= 3 {
        ["17", "42", "18446744073709551615"]
    } else {
        ["alpha", "bravo", "charlie-replica-whose-member-id-uses-all-sixty-three-bytes-xxxx"]
    }
}

fn hdr(v: u16, from: &str, decree: u64, configuration: u32, ballot: (u32, &str), payload: u64) -> Header {
    Header {
        version: Version::from_u16(v).unwrap(),
        from: MemberId::new(from).unwrap(),
        decree: Decree(decree),
        configuration,
        ballot: Ballot::new(ballot.0, MemberId::new(ballot.1).unwrap()),
        payload,
    }
}

/// Bytes and expected decoding of the sample vote: cookie "abc", two requests.
fn vote(v: u16, from: &str, decree: u64, ballot: (u32, &str)) -> (Vec<u8>, WireVote) {
    let payload = if v >= 6 { 5 } else { 0 };
    let mut m = header(v, 1, from, decree, 3, ballot, payload);
    m.extend(len_prefixed(b"abc")); // PrimaryCookie
    m.push(0); // isReconfiguration
    if v >= 5 {
        m.push(1); // relinquishPrimary
    }
    m.extend(len_prefixed(b"hello"));
    m.extend(len_prefixed(b"x"));
    let fields = VoteFields {
        passed: None,
        primary_cookie: Bytes::from_static(b"abc"),
        relinquish: v >= 5,
        value: VoteBody::Requests(vec![Bytes::from_static(b"hello"), Bytes::from_static(b"x")]),
    };
    (seal(m), WireVote { header: hdr(v, from, decree, 3, ballot, payload), fields })
}

/// One golden message per id (and a reconfiguration vote as id 1's second form).
fn goldens(v: u16) -> Vec<(Vec<u8>, WireMessage)> {
    let [a, b, c] = ids(v);
    let wire = |header: Header, body: WireBody| WireMessage { header, body };
    let bare = |id: u16, decree: u64, config: u32, ballot: (u32, &str), body: WireBody| {
        (seal(header(v, id, a, decree, config, ballot, 0)), wire(hdr(v, a, decree, config, ballot, 0), body))
    };
    let mut out = Vec::new();

    let (bytes, sample) = vote(v, a, 100, (7, a));
    out.push((bytes, wire(sample.header, WireBody::Vote(sample.fields))));

    let mut m = header(v, 1, a, 101, 3, (7, a), 0);
    m.extend(len_prefixed(b"")); // PrimaryCookie
    m.push(1); // isReconfiguration
    m.extend(member_set_bytes(v, [a, b, c]));
    if v >= 5 {
        m.push(0); // relinquishPrimary
    }
    let fields = VoteFields {
        passed: None,
        primary_cookie: Bytes::new(),
        relinquish: false,
        value: VoteBody::Reconfiguration(member_set([a, b, c])),
    };
    out.push((seal(m), wire(hdr(v, a, 101, 3, (7, a), 0), WireBody::Vote(fields))));

    let payload = if v >= 6 { 0xDEAD_BEEF_0000_0001 } else { 0 };
    out.push((
        seal(header(v, 2, b, 100, 3, (7, a), payload)),
        wire(hdr(v, b, 100, 3, (7, a), payload), WireBody::VoteAccepted),
    ));

    let mut m = header(v, 3, b, 100, 3, (8, b), 0);
    m.extend(len_prefixed(b"cookie!"));
    let body = WireBody::Prepare { passed: None, primary_cookie: Bytes::from_static(b"cookie!") };
    out.push((seal(m), wire(hdr(v, b, 100, 3, (8, b), 0), body)));

    let (vote_bytes, embedded) = vote(v, a, 100, (7, a));
    let mut m = header(v, 4, c, 100, 3, (8, b), 0);
    m.extend(&vote_bytes);
    let body = WireBody::PrepareAccepted { watermark: None, votes: vec![embedded] };
    out.push((seal(m), wire(hdr(v, c, 100, 3, (8, b), 0), body)));

    out.push(bare(5, 100, 3, (9, c), WireBody::NotAccepted { passed: None }));
    out.push(bare(6, 99, 3, (7, a), WireBody::StatusQuery));

    let mut m = header(v, 7, a, 100, 3, (7, a), 0);
    m.extend(99u64.to_le_bytes()); // queryDecree
    m.extend(6u32.to_le_bytes()); // queryBallot.ballotId
    m.extend(id_field(v, b)); // queryBallot.memberId
    m.extend((-1i64).to_le_bytes()); // lastReceivedAgo
    m.extend(50u64.to_le_bytes()); // minDecreeInLog
    m.extend(90u64.to_le_bytes()); // checkpointedDecree
    m.extend(123_456u64.to_le_bytes()); // checkpointSize
    m.extend(8u32.to_le_bytes()); // maxBallot.ballotId
    m.extend(id_field(v, c)); // maxBallot.memberId
    m.extend(2u32.to_le_bytes()); // state = Secondary
    let status = StatusFields {
        passed: None,
        query_decree: Decree(99),
        query_ballot: Ballot::new(6, MemberId::new(b).unwrap()),
        last_received_ago_ms: -1,
        min_decree_in_log: Decree(50),
        checkpointed_decree: Decree(90),
        checkpoint_size: 123_456,
        max_ballot: Ballot::new(8, MemberId::new(c).unwrap()),
        state: State::Secondary,
    };
    out.push((seal(m), wire(hdr(v, a, 100, 3, (7, a), 0), WireBody::StatusResponse(Box::new(status)))));

    out.push(bare(8, 40, 3, (7, a), WireBody::FetchVotes));
    out.push(bare(9, 90, 1, (0, ""), WireBody::FetchCheckpoint));
    out.push(bare(10, 101, 3, (7, a), WireBody::ReconfigurationDecision));
    out.push(bare(11, 0, 2, (0, ""), WireBody::DefunctConfiguration));

    let mut m = header(v, 12, a, 100, 3, (0, ""), 0);
    m.extend(30001u16.to_le_bytes());
    m.extend(50u64.to_le_bytes());
    m.extend(90u64.to_le_bytes());
    m.extend(123_456u64.to_le_bytes());
    let join = JoinFields {
        learn_port: 30001,
        min_decree_in_log: Decree(50),
        checkpointed_decree: Decree(90),
        checkpoint_size: 123_456,
    };
    out.push((seal(m), wire(hdr(v, a, 100, 3, (0, ""), 0), WireBody::Join(join))));

    out.push(bare(13, 0, 4, (0, ""), WireBody::JoinRequest));

    let mut m = header(v, 14, a, 0, 0, (0, ""), 0);
    m.extend(member_set_bytes(v, [a, b, c]));
    out.push((seal(m), wire(hdr(v, a, 0, 0, (0, ""), 0), WireBody::Bootstrap(member_set([a, b, c])))));
    out
}

#[test]
fn hand_assembled_messages_of_every_id_decode_and_reencode_byte_exact_in_v3_v4_v6() {
    let limits = Limits::default();
    assert_eq!(ids(4)[2].len(), 63);
    for v in [3u16, 4, 6] {
        let goldens = goldens(v);
        let mut seen: Vec<u16> =
            goldens.iter().map(|(bytes, _)| u16::from_le_bytes([bytes[18], bytes[19]])).collect();
        seen.dedup();
        assert_eq!(seen, (1..=14).collect::<Vec<_>>(), "one golden per id");
        for (bytes, expected) in goldens {
            let what = format!("v{v} id {:?}", expected.body.id());
            let decoded =
                decode(&Bytes::from(bytes.clone()), &limits).unwrap_or_else(|e| panic!("{what}: {e}"));
            assert_eq!(decoded, expected, "{what}");
            assert_eq!(expected.to_bytes().unwrap(), bytes, "{what}: re-encoding differs");
            rsl_core::wire::verify_checksum(&bytes).unwrap();
        }
    }
}

#[test]
fn magic_is_ce_fa_0d_f0_at_offset_14() {
    let (bytes, _) = &goldens(6)[0];
    assert_eq!(&bytes[14..18], &[0xCE, 0xFA, 0x0D, 0xF0]);
}

#[test]
fn empty_heartbeat_votes_are_169_170_178_bytes_in_v4_v5_v6() {
    for (v, size) in [(4u16, 169usize), (5, 170), (6, 178)] {
        let mut m = header(v, 1, "p", 5, 1, (1, "p"), 0);
        m.extend(0u32.to_le_bytes()); // empty primary cookie
        m.push(0); // isReconfiguration
        if v >= 5 {
            m.push(0); // relinquishPrimary
        }
        let m = seal(m);
        assert_eq!(m.len(), size, "v{v} hand-assembled");
        let heartbeat = WireMessage {
            header: hdr(v, "p", 5, 1, (1, "p"), 0),
            body: WireBody::Vote(VoteFields {
                passed: None,
                primary_cookie: Bytes::new(),
                relinquish: false,
                value: VoteBody::Requests(Vec::new()),
            }),
        };
        assert_eq!(heartbeat.to_bytes().unwrap(), m, "v{v} encoder");
    }
}
