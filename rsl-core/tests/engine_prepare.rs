//! Phase 1 on both sides: a replica's answer to Prepare in each state (legacy §6.2
//! TestPrepareMsg, TestPrepareMsgInInitialize) and a candidate's handling of
//! PrepareAccepted (TestPrepareAcceptedMsg). "2" accepted decree 1 under <1,1> from "1".

mod common;

use bytes::Bytes;
use common::*;
use rsl_core::paxos::{
    Action, Ballot, Body, Decree, Input, InvalidInput, Record, Replica, State, Token, Vote,
};
use std::sync::Arc;

fn prepare(from: &str, decree: u64, passed: u64, b: &Ballot) -> Input {
    let body = Body::Prepare {
        decree: Decree(decree),
        passed: Decree(passed),
        ballot: b.clone(),
        primary_cookie: Bytes::new(),
    };
    msg(from, body)
}

fn promise(from: &str, b: &Ballot, watermark: u64, votes: &[Arc<Vote>]) -> Input {
    msg(
        from,
        Body::PrepareAccepted {
            decree: Decree(1),
            ballot: b.clone(),
            watermark: Decree(watermark),
            votes: votes.to_vec(),
        },
    )
}

/// The votes a step journaled, in order.
fn journaled(r: &mut Replica) -> Vec<Arc<Vote>> {
    r.drain_actions()
        .into_iter()
        .filter_map(|a| match a {
            Action::Persist { record: Record::Vote(v), .. } => Some(v),
            _ => None,
        })
        .collect()
}

#[test]
fn secondary_refuses_a_prepare_below_its_promise() {
    let mut r = secondary(config(1));
    assert_eq!(
        step(&mut r, T0, prepare("3", 1, 0, &ballot(0, "3"))),
        ["send 3 <- 2@1: NotAccepted(1 passed=0 <1,1>)"]
    );
    assert_eq!(r.pointers().max_ballot, ballot(1, "1"));
}

#[test]
fn secondary_promises_a_higher_ballot_once_the_promise_is_durable() {
    let mut r = secondary(config(1));
    let b = ballot(2, "3");
    assert_eq!(step(&mut r, T0, prepare("3", 1, 0, &b)), ["persist #2 promise <2,3>"]);
    assert_eq!((r.state(), r.pointers().max_ballot), (State::Secondary, b.clone()));
    r.step(T0, Input::Persisted(Token(2))).unwrap();
    let answer = r.drain_actions();
    let expected = Body::PrepareAccepted {
        decree: Decree(1),
        ballot: b,
        watermark: Decree(0),
        votes: vec![vote(1, &ballot(1, "1"), 0, &["a"])],
    };
    assert!(
        matches!(&answer[..], [Action::Send { to, message }] if *to == id("3") && message.body == expected)
    );
}

#[test]
fn secondary_promises_again_to_the_owner_of_its_ballot() {
    // Prepare(d, mb) from mb's owner; the promise is journaled again because mb may have
    // been raised only in memory (by a vote, here) and never promised durably.
    let mut r = secondary(config(1));
    assert_eq!(step(&mut r, T0, prepare("1", 1, 0, &ballot(1, "1"))), ["persist #2 promise <1,1>"]);
    assert_eq!(
        step(&mut r, T0, Input::Persisted(Token(2))),
        ["send 1 <- 2@1: PrepareAccepted(1 <1,1> watermark=0 votes=1)"]
    );
    assert_eq!(r.state(), State::Secondary);
}

#[test]
fn secondary_promises_a_candidate_that_passed_more_and_stays_secondary() {
    // Legacy: Prepare(d+1, ·) → PrepareAccepted then Initializing. Ours stays Secondary: the
    // candidate's votes will carry its watermark and we fetch what we miss. Our vote at 1
    // lies at or below the candidate's watermark, so the promise carries nothing.
    let mut r = secondary(config(1));
    step(&mut r, T0, prepare("3", 2, 1, &ballot(2, "3")));
    assert_eq!(
        step(&mut r, T0, Input::Persisted(Token(2))),
        ["send 3 <- 2@1: PrepareAccepted(2 <2,3> watermark=0 votes=0)"]
    );
    assert_eq!(r.state(), State::Secondary);
}

#[test]
fn secondary_refuses_a_candidate_that_passed_less() {
    // Legacy promises (d−1, > mb) and the candidate discards it; we answer NotAccepted so
    // the candidate learns first, and we promise nothing.
    let mut r = secondary(config(1));
    step(&mut r, T0, vote_msg(&vote(2, &ballot(1, "1"), 1, &["b"])));
    persist_all(&mut r, T0);
    assert_eq!(
        step(&mut r, T0, prepare("3", 1, 0, &ballot(2, "3"))),
        ["send 3 <- 2@1: NotAccepted(2 passed=1 <1,1>)"]
    );
    assert_eq!(r.pointers().max_ballot, ballot(1, "1"));
}

#[test]
fn secondary_prepared_refuses_below_its_promise_and_promises_above() {
    let mut r = secondary_prepared(config(1));
    assert_eq!(
        step(&mut r, T0, prepare("1", 1, 0, &ballot(5, "1"))),
        ["send 1 <- 2@1: NotAccepted(1 passed=0 <11,3>)"]
    );
    assert_eq!(step(&mut r, T0, prepare("1", 1, 0, &ballot(12, "1"))), ["persist #3 promise <12,1>"]);
    assert_eq!(r.pointers().max_ballot, ballot(12, "1"));
}

#[test]
fn primary_refuses_a_lower_prepare() {
    let mut r = primary(config(1));
    assert_eq!(
        step(&mut r, T0, prepare("3", 1, 1, &ballot(1, "3"))),
        ["send 3 <- 2@1: NotAccepted(1 passed=1 <2,2>)"]
    );
    assert!(r.is_primary());
}

#[test]
fn primary_steps_down_for_a_higher_prepare_and_promises() {
    let mut r = primary(config(1));
    assert_eq!(
        step(&mut r, T0, prepare("3", 1, 1, &ballot(3, "3"))),
        // The decree it passed last is journaled as its own proof: no later proposal of
        // ours will prove it chosen.
        ["notify status primary=false", "persist #4 vote 1 <2,2>", "persist #5 promise <3,3>"]
    );
    assert_eq!(
        step(&mut r, T0, Input::Persisted(Token(5))),
        ["send 3 <- 2@1: PrepareAccepted(1 <3,3> watermark=1 votes=0)"]
    );
    assert_eq!(r.state(), State::Secondary);
}

#[test]
fn preparing_refuses_a_lower_prepare_and_yields_to_a_higher_one() {
    let mut r = preparing(config(1));
    assert_eq!(
        step(&mut r, T0, prepare("3", 1, 0, &ballot(1, "3"))),
        ["send 3 <- 2@1: NotAccepted(1 passed=0 <2,2>)"]
    );
    assert_eq!(step(&mut r, T0, prepare("3", 1, 0, &ballot(3, "3"))), ["persist #3 promise <3,3>"]);
    assert_eq!((r.state(), r.pointers().max_ballot), (State::Secondary, ballot(3, "3")));
}

#[test]
fn initializing_refuses_a_lower_prepare_and_promises_a_higher_one() {
    // Legacy ignores every prepare that is not lower while Initializing. We promise and
    // settle as secondary: a replica that cannot yet learn the newest decree of the one
    // that passed most must still be able to elect it (simulator seed 941).
    let mut r = initializing(config(1));
    assert_eq!(
        step(&mut r, T0, prepare("3", 1, 0, &ballot(0, "3"))),
        ["send 3 <- 2@1: NotAccepted(1 passed=0 <1,1>)"]
    );
    assert_eq!(step(&mut r, T0, prepare("3", 2, 1, &ballot(2, "3"))), ["persist #2 promise <2,3>"]);
    assert_eq!(r.state(), State::Secondary);
    assert_eq!(r.pointers().max_ballot, ballot(2, "3"));
}

#[test]
fn refusing_messages_still_journals_the_promise_but_sends_nothing() {
    let mut r = secondary(config(1));
    step(&mut r, T0, Input::AcceptMessages(false));
    assert_eq!(step(&mut r, T0, prepare("3", 1, 0, &ballot(2, "3"))), ["persist #2 promise <2,3>"]);
    assert!(step(&mut r, T0, Input::Persisted(Token(2))).is_empty());
    assert_eq!(r.pointers().max_ballot, ballot(2, "3"));
}

#[test]
fn prepare_accepted_is_ignored_outside_preparing() {
    let b = ballot(2, ME);
    for mut r in
        [secondary(config(1)), secondary_prepared(config(1)), initializing(config(1)), primary(config(1))]
    {
        let before = r.pointers();
        assert!(step(&mut r, T0, promise("1", &b, 0, &[])).is_empty());
        assert_eq!(r.pointers(), before);
    }
}

#[test]
fn preparing_ignores_a_promise_for_another_ballot() {
    let mut r = preparing(config(1));
    assert!(step(&mut r, T0, promise("1", &ballot(1, "1"), 0, &[])).is_empty());
    assert_eq!(r.state(), State::Preparing);
}

#[test]
fn candidate_counts_its_own_promise_only_once_durable() {
    let mut r = secondary(config(1));
    step(&mut r, T0, Input::AttemptPromotion);
    let b = ballot(1, "1");
    step(&mut r, T0, msg("1", status((1, &b), 1, &b, 0, &b)));
    step(&mut r, T0, Input::CanBecomePrimary(Some(Bytes::new())));
    assert!(step(&mut r, T0, promise("1", &ballot(2, ME), 0, &[])).is_empty());
    assert_eq!(r.state(), State::Preparing);
    assert_eq!(step(&mut r, T0, Input::Persisted(Token(2)))[0], "persist #3 vote 1 <2,2>");
    assert_eq!(r.state(), State::Primary);
}

#[test]
fn a_quorum_of_promises_makes_a_primary_that_reproposes_its_decree() {
    let mut r = preparing(config(1));
    assert_eq!(
        step(&mut r, T0, promise("1", &ballot(2, ME), 0, &[])),
        [
            "persist #3 vote 1 <2,2>",
            "send 1 <- 2@1: Vote(1 <2,2> passed=0 n=1)",
            "send 3 <- 2@1: Vote(1 <2,2> passed=0 n=1)"
        ]
    );
    assert_eq!(r.state(), State::Primary);
    // Not primary for the application until the re-proposal is chosen.
    assert!(!r.is_primary());
}

#[test]
fn the_freshest_promised_vote_is_reproposed() {
    let mut r = preparing(config(1));
    let fresher = vote(1, &ballot(1, "3"), 0, &["b"]);
    r.step(T0, promise("3", &ballot(2, ME), 0, &[fresher])).unwrap();
    let proposed = journaled(&mut r);
    assert_eq!(proposed.len(), 1);
    assert_eq!((proposed[0].decree, &proposed[0].requests()[0][..]), (Decree(1), &b"b"[..]));
}

#[test]
fn an_older_promised_vote_loses_to_our_own() {
    let mut r = preparing(config(1));
    let older = vote(1, &ballot(0, "3"), 0, &["old"]);
    r.step(T0, promise("3", &ballot(2, ME), 0, &[older])).unwrap();
    assert_eq!(&journaled(&mut r)[0].requests()[0][..], b"a");
}

#[test]
fn every_promised_decree_in_the_window_is_reproposed() {
    let mut r = preparing(config(4));
    let votes = [vote(2, &ballot(1, "1"), 0, &["b"]), vote(4, &ballot(1, "1"), 0, &["d"])];
    r.step(T0, promise("1", &ballot(2, ME), 0, &votes)).unwrap();
    // Decree 3 is a hole nobody holds: it is filled with an empty vote.
    let proposed: Vec<(u64, usize)> =
        journaled(&mut r).iter().map(|v| (v.decree.0, v.requests().len())).collect();
    assert_eq!(proposed, [(1, 1), (2, 1), (3, 0), (4, 1)]);
}

#[test]
fn a_promise_with_a_bad_embedded_vote_is_rejected() {
    // Legacy also rejects votes above the prepared ballot or decree.
    let cases = [
        (vote(1, &ballot(2, ME), 0, &["x"]), "carries a vote at or above the prepared ballot"),
        (vote(1, &ballot(3, "1"), 0, &["x"]), "carries a vote at or above the prepared ballot"),
        (vote(2, &ballot(1, "1"), 1, &["x"]), "carries a vote beyond its watermark + window"),
    ];
    for (bad, why) in cases {
        let mut r = preparing(config(1));
        let before = r.pointers();
        assert_eq!(r.step(T0, promise("1", &ballot(2, ME), 0, &[bad])), Err(InvalidInput::BadPromise(why)));
        assert!(r.drain_actions().is_empty());
        assert_eq!(r.pointers(), before);
    }
}

#[test]
fn a_promise_embedding_a_vote_at_or_below_our_watermark_still_counts() {
    // A legacy responder always embeds its latest vote, which may be one we passed.
    let mut r = preparing(config(1));
    let settled = Arc::new(Vote::empty(Decree(0), ballot(1, "1"), 1, Decree(0)));
    r.step(T0, promise("1", &ballot(2, ME), 0, &[settled])).unwrap();
    assert_eq!(r.state(), State::Primary);
    // Only our own held decree 1 is re-proposed; the settled vote is not.
    let proposed: Vec<u64> = journaled(&mut r).iter().map(|v| v.decree.0).collect();
    assert_eq!(proposed, [1]);
}

#[test]
fn a_promise_quorum_missing_a_decree_below_its_watermark_abandons_the_election() {
    // "1" says decree 2 is chosen but nobody in the quorum holds it: a broken promise.
    let mut r = preparing(config(2));
    let result = r.step(T0, promise("1", &ballot(2, ME), 2, &[]));
    assert_eq!(result, Err(InvalidInput::BadPromise("a promise quorum lacks a decree below its watermark")));
    assert_eq!(
        trace(&r.drain_actions()),
        ["send 1 <- 2@1: StatusQuery(1 <1,1>)", "send 3 <- 2@1: StatusQuery(1 <1,1>)"]
    );
    assert_eq!(r.state(), State::Initializing);
}
