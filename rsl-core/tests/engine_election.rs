//! Elections (legacy §4.4, §6.2 TestNotAcceptedMsg, TestNotAcceptedMsgInInitialize,
//! TestCanBecomePrimary): the election timer, NotAccepted in each state, the
//! application's veto, and the candidate's re-send and give-up timers. "2" accepted
//! decree 1 under <1,1> from "1" (d = 1, b = <1,1>).

mod common;

use bytes::Bytes;
use common::*;
use rsl_core::paxos::{Ballot, Body, Decree, Input, State};

fn not_accepted(from: &str, decree: u64, passed: u64, b: &Ballot) -> Input {
    msg(from, Body::NotAccepted { decree: Decree(decree), passed: Decree(passed), ballot: b.clone() })
}

const QUERY: [&str; 2] = ["send 1 <- 2@1: StatusQuery(1 <1,1>)", "send 3 <- 2@1: StatusQuery(1 <1,1>)"];

#[test]
fn a_silent_primary_sends_the_secondary_initializing() {
    let mut r = secondary(config(1));
    let at = r.next_deadline();
    assert_eq!(at, T0 + config(1).election_delay_us);
    assert!(step(&mut r, at - 1, Input::Tick).is_empty());
    assert_eq!(step(&mut r, at, Input::Tick), QUERY);
    assert_eq!(r.state(), State::Initializing);
}

#[test]
fn initializing_asks_again_when_no_quorum_answers() {
    let mut r = initializing(config(1));
    let at = r.next_deadline();
    assert_eq!(at, T0 + config(1).election_delay_us + config(1).initialize_retry_us);
    assert_eq!(step(&mut r, at, Input::Tick), QUERY);
}

#[test]
fn not_accepted_at_or_below_our_watermark_is_ignored() {
    for mut r in [secondary(config(1)), secondary_prepared(config(1)), preparing(config(1))] {
        let before = r.pointers();
        for decree in [0, 1] {
            for b in [ballot(0, "3"), ballot(1, "1")] {
                assert!(step(&mut r, T0, not_accepted("3", decree, 0, &b)).is_empty());
            }
        }
        assert_eq!(r.pointers(), before);
    }
}

#[test]
fn not_accepted_showing_a_higher_ballot_raises_the_promise() {
    let mut r = secondary(config(1));
    assert!(step(&mut r, T0, not_accepted("3", 1, 0, &ballot(2, "3"))).is_empty());
    assert_eq!((r.state(), r.pointers().max_ballot), (State::Secondary, ballot(2, "3")));
    let mut r = secondary_prepared(config(1));
    assert!(step(&mut r, T0, not_accepted("1", 1, 0, &ballot(12, "1"))).is_empty());
    assert_eq!((r.state(), r.pointers().max_ballot), (State::Secondary, ballot(12, "1")));
}

#[test]
fn not_accepted_showing_more_passed_starts_initializing() {
    // Legacy compares decrees (d+1 → Initializing) and ignores a lower ballot; we compare
    // passed watermarks: a peer that passed more proves decrees we lack were chosen,
    // whatever ballot it promised, so learning from it is always right.
    for b in [ballot(0, "3"), ballot(1, "1"), ballot(2, "3")] {
        for mut r in [secondary(config(1)), secondary_prepared(config(1))] {
            let max_ballot = r.pointers().max_ballot.max(b.clone());
            assert_eq!(step(&mut r, T0, not_accepted("3", 2, 1, &b)), QUERY);
            assert_eq!((r.state(), r.pointers().max_ballot), (State::Initializing, max_ballot));
        }
    }
}

#[test]
fn a_candidate_yields_to_a_higher_not_accepted() {
    let mut r = preparing(config(1));
    assert!(step(&mut r, T0, not_accepted("3", 1, 0, &ballot(3, "3"))).is_empty());
    assert_eq!((r.state(), r.pointers().max_ballot), (State::Secondary, ballot(3, "3")));
}

#[test]
fn a_primary_ignores_a_lower_not_accepted() {
    let mut r = primary(config(1));
    assert!(step(&mut r, T0, not_accepted("3", 1, 1, &ballot(1, "1"))).is_empty());
    assert!(r.is_primary());
}

#[test]
fn initializing_ignores_every_not_accepted() {
    let mut r = initializing(config(1));
    let before = r.pointers();
    for passed in 0..3 {
        for b in [ballot(0, "3"), ballot(1, "1"), ballot(2, "3")] {
            assert!(step(&mut r, T0, not_accepted("3", passed + 1, passed, &b)).is_empty());
        }
    }
    assert_eq!(r.pointers(), before);
}

#[test]
fn a_refused_promotion_settles_as_secondary() {
    // TestCanBecomePrimary: the application says no; retry after one heartbeat.
    let mut r = initializing(config(1));
    let now = r.next_deadline() - 1;
    let b = ballot(1, "1");
    assert_eq!(step(&mut r, now, msg("1", status((1, &b), 1, &b, 0, &b))), ["ask can become primary"]);
    assert!(step(&mut r, now, Input::CanBecomePrimary(None)).is_empty());
    assert_eq!(r.state(), State::Secondary);
    assert_eq!(r.next_deadline(), now + config(1).heartbeat_us);
}

#[test]
fn a_candidate_resends_prepare_to_peers_that_have_not_promised() {
    let mut r = preparing(config(1));
    let at = T0 + config(1).prepare_retry_us;
    assert_eq!(r.next_deadline(), at);
    assert_eq!(
        step(&mut r, at, Input::Tick),
        ["send 1 <- 2@1: Prepare(1 passed=0 <2,2>)", "send 3 <- 2@1: Prepare(1 passed=0 <2,2>)"]
    );
}

#[test]
fn a_candidate_gives_up_after_thirty_election_delays() {
    let mut r = preparing(config(1));
    assert_eq!(step(&mut r, T0 + 30 * config(1).election_delay_us, Input::Tick), QUERY);
    assert_eq!(r.state(), State::Initializing);
}

#[test]
fn attempt_promotion_prepares_above_every_ballot_seen() {
    let mut r = secondary(config(1));
    assert_eq!(step(&mut r, T0, Input::AttemptPromotion), QUERY);
    let b = ballot(1, "1");
    let response = status((1, &b), 1, &b, 0, &ballot(7, "3"));
    assert_eq!(step(&mut r, T0, msg("3", response)), ["ask can become primary"]);
    assert_eq!(
        step(&mut r, T0, Input::CanBecomePrimary(Some(Bytes::new()))),
        [
            "persist #2 promise <8,2>",
            "send 1 <- 2@1: Prepare(1 passed=0 <8,2>)",
            "send 3 <- 2@1: Prepare(1 passed=0 <8,2>)"
        ]
    );
    assert_eq!(r.state(), State::Preparing);
}
