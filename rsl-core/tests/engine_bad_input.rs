//! Untrusted input is rejected at the gateway with a reason, never with a panic, and
//! leaves the replica as it was (legacy §6.2 TestInvalidMessages; STYLE §3 tier 2).

mod common;

use bytes::Bytes;
use common::*;
use rsl_core::paxos::{
    Body, Config, ConfigError, Decree, Input, InvalidInput, Member, MemberId, MemberSet, Message, Recovered,
    Replica, Token, Vote, VoteBody, MEMBER_ID_MAX_LEN, MEMBER_SET_COOKIE_MAX_LEN,
};
use std::sync::Arc;

/// Steps `input` into `r` and checks that it is rejected with `expected`, that no action
/// comes out, and that the log pointers did not move.
fn rejects(r: &mut Replica, input: Input, expected: InvalidInput) {
    let before = r.pointers();
    assert_eq!(r.step(T0, input), Err(expected));
    assert_eq!(r.drain_actions(), []);
    assert_eq!(r.pointers(), before);
}

#[test]
fn a_message_from_a_non_member_is_rejected() {
    let mut r = secondary(config(1));
    let stranger = vote(2, &ballot(1, "500"), 1, &["x"]);
    let input = Input::Message(Message { from: id("500"), configuration: 1, body: Body::Vote(stranger) });
    rejects(&mut r, input, InvalidInput::UnknownMember(id("500")));
}

#[test]
fn a_message_carrying_our_own_id_is_rejected() {
    let mut r = secondary(config(1));
    rejects(&mut r, vote_msg(&vote(2, &ballot(3, ME), 1, &["x"])), InvalidInput::FromSelf);
}

#[test]
fn a_vote_whose_embedded_configuration_differs_is_rejected() {
    let mut r = secondary(config(1));
    let other = Arc::new(Vote { configuration: 2, ..Vote::clone(&vote(2, &ballot(1, "1"), 1, &["x"])) });
    rejects(&mut r, vote_msg(&other), InvalidInput::WrongConfiguration { ours: 1, theirs: 2 });
}

#[test]
fn a_vote_beyond_its_own_window_is_rejected() {
    let mut r = secondary(config(1));
    let future = vote(3, &ballot(1, "1"), 1, &["x"]);
    rejects(
        &mut r,
        vote_msg(&future),
        InvalidInput::DecreeFromTheFuture { decree: Decree(3), limit: Decree(2) },
    );
}

#[test]
fn a_vote_whose_watermark_is_not_below_its_decree_is_rejected() {
    let mut r = secondary(config(1));
    for passed in [2, 3] {
        let bad = vote(2, &ballot(1, "1"), passed, &["x"]);
        rejects(
            &mut r,
            vote_msg(&bad),
            InvalidInput::BadWatermark { decree: Decree(2), passed: Decree(passed) },
        );
    }
}

#[test]
fn a_vote_under_another_members_ballot_is_rejected() {
    let mut r = secondary(config(1));
    let forged = vote(2, &ballot(1, "1"), 1, &["x"]);
    let input = Input::Message(Message { from: id("3"), configuration: 1, body: Body::Vote(forged) });
    rejects(&mut r, input, InvalidInput::BadPromise("vote ballot names another member"));
}

#[test]
fn two_values_for_one_decree_and_ballot_are_rejected() {
    // The digest contract, planted: the primary "1" sends decree 2 twice under <1,1> with
    // different values. The second copy also carries a watermark that would pass decree 1;
    // it must not, because the whole message is rejected.
    let mut r = secondary(config(2));
    step(&mut r, T0, vote_msg(&vote(2, &ballot(1, "1"), 0, &["b"])));
    persist_all(&mut r, T0);
    let conflicting = vote(2, &ballot(1, "1"), 1, &["evil"]);
    rejects(
        &mut r,
        vote_msg(&conflicting),
        InvalidInput::ConflictingVote { decree: Decree(2), ballot: ballot(1, "1") },
    );
    // The same value again is a plain re-send.
    assert_eq!(
        step(&mut r, T0, vote_msg(&vote(2, &ballot(1, "1"), 0, &["b"]))),
        ["send 1 <- 2@1: VoteAccepted(2 <1,1>)"]
    );
}

#[test]
fn the_digest_tells_values_apart() {
    let b = ballot(1, "1");
    let digest = |requests: &[&str]| vote(1, &b, 0, requests).value_digest();
    assert_eq!(digest(&["ab"]), digest(&["ab"]));
    assert_ne!(digest(&["ab"]), digest(&["a", "b"]));
    assert_ne!(digest(&[]), digest(&[""]));
    // The relinquish flag speaks of the proposer, not of the value.
    let relinquish = Vote { relinquish: true, ..Vote::clone(&vote(1, &b, 0, &[])) };
    assert_eq!(relinquish.value_digest(), digest(&[]));
    let reconfiguration =
        Vote { body: VoteBody::Reconfiguration(MemberSet::of_ids(&["1"]).unwrap()), ..relinquish.clone() };
    assert_ne!(reconfiguration.value_digest(), relinquish.value_digest());
}

#[test]
fn driver_completions_beyond_what_was_asked_are_rejected() {
    let mut r = secondary(config(1));
    rejects(&mut r, Input::Persisted(Token(2)), InvalidInput::BadCompletion("persisted token never issued"));
    rejects(&mut r, Input::Executed(Decree(1)), InvalidInput::BadCompletion("executed beyond passed"));
}

#[test]
fn learned_votes_with_a_gap_are_rejected() {
    let mut r = initializing(config(1));
    let b = ballot(1, "1");
    step(&mut r, T0, msg("3", status((1, &b), 4, &b, 3, &b)));
    let gap = vec![vote(2, &b, 1, &["b"])];
    rejects(
        &mut r,
        Input::Learned { from: id("3"), votes: gap },
        InvalidInput::BadCompletion("learned votes are not contiguous"),
    );
}

#[test]
fn malformed_member_sets_are_rejected() {
    let named = |s: &str| Member::named(s).unwrap();
    assert_eq!(MemberSet::new(vec![], Bytes::new()), Err(InvalidInput::EmptyMemberSet));
    assert_eq!(
        MemberSet::new(vec![named("1"), named("1")], Bytes::new()),
        Err(InvalidInput::DuplicateMember(id("1")))
    );
    let no_port = Member { rsl_port: 0, ..named("1") };
    assert_eq!(MemberSet::new(vec![no_port], Bytes::new()), Err(InvalidInput::ZeroPort(id("1"))));
    let cookie = Bytes::from(vec![0; MEMBER_SET_COOKIE_MAX_LEN + 1]);
    assert_eq!(MemberSet::new(vec![named("1")], cookie), Err(InvalidInput::CookieTooLong(8193)));
    assert!(MemberSet::new(vec![named("1")], Bytes::from(vec![0; MEMBER_SET_COOKIE_MAX_LEN])).is_ok());
    let long = "x".repeat(MEMBER_ID_MAX_LEN + 1);
    assert_eq!(MemberId::new(&long), Err(InvalidInput::MemberIdTooLong(64)));
    assert!(MemberId::new(&long[1..]).is_ok());
    assert_eq!(MemberId::new("a\0b"), Err(InvalidInput::MemberIdHasNul));
}

#[test]
fn an_out_of_range_config_field_is_named() {
    let bad = Config { window: 0, ..config(1) };
    let error = ConfigError { field: "window", value: 0, min: 1, max: 4096 };
    assert_eq!(bad.validate(), Err(error.clone()));
    let built = Replica::new(&member(ME), bad, configuration(&["1", "2", "3"]), Recovered::default(), 7, T0);
    assert_eq!(built.err(), Some(InvalidInput::BadConfig(error)));
    let slow = Config { heartbeat_us: 0, ..config(1) };
    assert_eq!(slow.validate().unwrap_err().field, "heartbeat_us");
    assert_eq!(Config::default().validate(), Ok(()));
}

#[test]
fn an_election_delay_out_of_range_is_rejected() {
    // Legacy ChangeElectionDelay validates nothing; we hold it to the config's range.
    let mut r = secondary(config(1));
    let error = ConfigError { field: "election_delay_us", value: 0, min: 1_000, max: 3_600_000_000 };
    rejects(&mut r, Input::ChangeElectionDelay { delay_us: 0 }, InvalidInput::BadConfig(error));
    assert_eq!(r.step(T0, Input::ChangeElectionDelay { delay_us: 5_000_000 }), Ok(()));
}
