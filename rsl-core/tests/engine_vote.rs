//! The acceptor's answer to a Vote in each state (legacy §6.2 TestVoteMsg,
//! TestVoteMsgInPrepared, TestAcceptMessageFromReplica). The replica is "2"; its primary is
//! "1" under <1,1> and it accepted decree 1 (d = 1, b = <1,1>) unless a test says otherwise.

mod common;

use common::*;
use rsl_core::paxos::{Action, Body, Decree, Input, Message, Pointers, State, Token};

fn pointers(passed: u64, max_accepted: u64, max_ballot: (u32, &str), state: State) -> Pointers {
    Pointers {
        executed: Decree(0),
        passed: Decree(passed),
        max_accepted: Decree(max_accepted),
        max_ballot: ballot(max_ballot.0, max_ballot.1),
        state,
    }
}

#[test]
fn secondary_acks_the_next_vote_only_once_it_is_durable() {
    let mut r = secondary(config(1));
    let v2 = vote(2, &ballot(1, "1"), 1, &["b"]);
    // Window 1 is legacy's implicit commit: decree 1 executes when decree 2 arrives.
    assert_eq!(step(&mut r, T0, vote_msg(&v2)), ["execute 1 (1 requests)", "persist #2 vote 2 <1,1>"]);
    assert_eq!(r.pointers(), pointers(1, 2, (1, "1"), State::Secondary));
    assert_eq!(step(&mut r, T0, Input::Persisted(Token(2))), ["send 1 <- 2@1: VoteAccepted(2 <1,1>)"]);
}

#[test]
fn secondary_acks_a_resent_vote_again_without_logging_it_twice() {
    let mut r = secondary(config(1));
    let v1 = vote(1, &ballot(1, "1"), 0, &["a"]);
    assert_eq!(step(&mut r, T0, vote_msg(&v1)), ["send 1 <- 2@1: VoteAccepted(1 <1,1>)"]);
    assert_eq!(r.pointers(), pointers(0, 1, (1, "1"), State::Secondary));
}

#[test]
fn secondary_refuses_a_lower_ballot_at_any_decree_without_logging_it() {
    // Legacy logs a lower vote at d and still answers NotAccepted; we do not log it.
    for decree in [1, 2] {
        let mut r = secondary(config(1));
        let low = vote(decree, &ballot(0, "3"), decree - 1, &["x"]);
        assert_eq!(step(&mut r, T0, vote_msg(&low)), ["send 3 <- 2@1: NotAccepted(1 passed=0 <1,1>)"]);
        assert_eq!(r.pointers(), pointers(0, 1, (1, "1"), State::Secondary));
    }
}

#[test]
fn secondary_accepts_a_higher_ballot_at_its_decree() {
    let mut r = secondary(config(1));
    let high = vote(1, &ballot(2, "3"), 0, &["c"]);
    assert_eq!(step(&mut r, T0, vote_msg(&high)), ["persist #2 vote 1 <2,3>"]);
    assert_eq!(step(&mut r, T0, Input::Persisted(Token(2))), ["send 3 <- 2@1: VoteAccepted(1 <2,3>)"]);
    assert_eq!(r.pointers(), pointers(0, 1, (2, "3"), State::Secondary));
    assert_eq!(r.current_primary(), Some(&id("3")));
}

#[test]
fn secondary_fetches_instead_of_accepting_a_higher_ballot_past_its_window() {
    // Legacy: (d+1, higher ballot) → Initializing. Ours: the vote says decree 1 is chosen
    // (watermark 1) under a ballot our vote at 1 does not have, so we fetch decree 1 from
    // the new primary and stay Secondary; decree 2 lies beyond passed + window and waits
    // for the primary's re-send.
    let mut r = secondary(config(1));
    let ahead = vote(2, &ballot(2, "3"), 1, &["c"]);
    assert_eq!(step(&mut r, T0, vote_msg(&ahead)), ["fetch votes from 3 at 1"]);
    assert_eq!(r.pointers(), pointers(0, 1, (2, "3"), State::Secondary));
}

#[test]
fn secondary_reacknowledges_a_passed_decree_reproposed_by_a_new_primary() {
    let mut r = secondary(config(1));
    step(&mut r, T0, vote_msg(&vote(2, &ballot(1, "1"), 1, &["b"])));
    persist_all(&mut r, T0);
    // Decree 1 passed here; the new primary "3" finishes its re-proposal of it. Legacy
    // ignores such a (d−1, higher) vote; we acknowledge it so the new primary can count
    // us (the value is the chosen one: Paxos).
    let again = vote(1, &ballot(2, "3"), 0, &["a"]);
    assert_eq!(step(&mut r, T0, vote_msg(&again)), ["persist #3 vote 1 <2,3>"]);
    assert_eq!(step(&mut r, T0, Input::Persisted(Token(3))), ["send 3 <- 2@1: VoteAccepted(1 <2,3>)"]);
    assert_eq!(r.pointers().passed, Decree(1));
}

#[test]
fn secondary_holds_a_window_of_votes_and_passes_them_by_watermark() {
    let mut r = secondary(config(4));
    for decree in 2..=4 {
        step(&mut r, T0, vote_msg(&vote(decree, &ballot(1, "1"), 0, &["p"])));
    }
    persist_all(&mut r, T0);
    assert_eq!(r.pointers(), pointers(0, 4, (1, "1"), State::Secondary));
    // Pipelining: decree 5 carries watermark 3, which passes decrees 1..=3 at once. With
    // window 1 a secondary could only pass decree 4 − 1.
    let v5 = vote(5, &ballot(1, "1"), 3, &["q"]);
    assert_eq!(
        step(&mut r, T0, vote_msg(&v5)),
        [
            "execute 1 (1 requests)",
            "execute 2 (1 requests)",
            "execute 3 (1 requests)",
            "persist #5 vote 5 <1,1>"
        ]
    );
    assert_eq!(r.pointers(), pointers(3, 5, (1, "1"), State::Secondary));
}

#[test]
fn secondary_does_not_pass_a_held_vote_of_another_ballot() {
    let mut r = secondary(config(2));
    // New primary "3" says decree 1 is chosen, but we hold decree 1 under <1,1>, not <2,3>:
    // the chosen value may differ, so we fetch it rather than execute ours.
    let v2 = vote(2, &ballot(2, "3"), 1, &["c"]);
    assert_eq!(step(&mut r, T0, vote_msg(&v2)), ["persist #2 vote 2 <2,3>", "fetch votes from 3 at 1"]);
    assert_eq!(r.pointers(), pointers(0, 2, (2, "3"), State::Secondary));
}

#[test]
fn primary_refuses_a_lower_ballot() {
    let mut r = primary(config(1));
    let low = vote(2, &ballot(1, "3"), 1, &["x"]);
    assert_eq!(step(&mut r, T0, vote_msg(&low)), ["send 3 <- 2@1: NotAccepted(1 passed=1 <2,2>)"]);
    assert!(r.is_primary());
}

#[test]
fn primary_steps_down_for_a_higher_ballot_and_accepts_it() {
    let mut r = primary(config(1));
    let high = vote(2, &ballot(3, "3"), 1, &["c"]);
    // Decree 1, which it passed last, is journaled as its own proof on the way out.
    assert_eq!(
        step(&mut r, T0, vote_msg(&high)),
        ["notify status primary=false", "persist #4 vote 1 <2,2>", "persist #5 vote 2 <3,3>"]
    );
    assert_eq!(step(&mut r, T0, Input::Persisted(Token(5))), ["send 3 <- 2@1: VoteAccepted(2 <3,3>)"]);
    assert_eq!(r.state(), State::Secondary);
    assert!(!r.is_primary());
}

#[test]
fn secondary_prepared_accepts_its_promised_ballot() {
    let mut r = secondary_prepared(config(1));
    let v = vote(1, &ballot(11, "3"), 0, &["c"]);
    assert_eq!(step(&mut r, T0, vote_msg(&v)), ["persist #3 vote 1 <11,3>"]);
    assert_eq!(step(&mut r, T0, Input::Persisted(Token(3))), ["send 3 <- 2@1: VoteAccepted(1 <11,3>)"]);
}

#[test]
fn secondary_prepared_refuses_a_ballot_between_accepted_and_promised() {
    // Legacy logs this vote (b ≤ ballot < mb) and answers NotAccepted; we only answer.
    let mut r = secondary_prepared(config(1));
    let between = vote(1, &ballot(5, "1"), 0, &["x"]);
    assert_eq!(step(&mut r, T0, vote_msg(&between)), ["send 1 <- 2@1: NotAccepted(1 passed=0 <11,3>)"]);
    assert_eq!(r.pointers(), pointers(0, 1, (11, "3"), State::Secondary));
}

#[test]
fn secondary_prepared_accepts_a_ballot_above_its_promise() {
    let mut r = secondary_prepared(config(1));
    let above = vote(1, &ballot(12, "1"), 0, &["c"]);
    assert_eq!(step(&mut r, T0, vote_msg(&above)), ["persist #3 vote 1 <12,1>"]);
    assert_eq!(r.pointers(), pointers(0, 1, (12, "1"), State::Secondary));
}

#[test]
fn preparing_refuses_a_vote_below_its_ballot_and_yields_to_a_higher_one() {
    let mut r = preparing(config(1));
    let low = vote(1, &ballot(1, "3"), 0, &["x"]);
    assert_eq!(step(&mut r, T0, vote_msg(&low)), ["send 3 <- 2@1: NotAccepted(1 passed=0 <2,2>)"]);
    assert_eq!(r.state(), State::Preparing);
    let high = vote(1, &ballot(3, "3"), 0, &["c"]);
    assert_eq!(step(&mut r, T0, vote_msg(&high)), ["persist #3 vote 1 <3,3>"]);
    assert_eq!(r.pointers(), pointers(0, 1, (3, "3"), State::Secondary));
}

#[test]
fn initializing_ignores_votes() {
    // Legacy caches votes while Initializing; we drop them and rely on the primary's
    // re-send once we are Secondary again.
    let mut r = initializing(config(1));
    let before = r.pointers();
    assert!(step(&mut r, T0, vote_msg(&vote(2, &ballot(1, "1"), 1, &["b"]))).is_empty());
    assert_eq!(r.pointers(), before);
}

#[test]
fn refusing_messages_still_logs_the_vote_but_sends_nothing() {
    // TestAcceptMessageFromReplica: the application's veto silences the answer only.
    let mut r = secondary(config(1));
    step(&mut r, T0, Input::AcceptMessages(false));
    assert_eq!(step(&mut r, T0, vote_msg(&vote(2, &ballot(1, "1"), 1, &["b"]))).len(), 2);
    assert!(step(&mut r, T0, Input::Persisted(Token(2))).is_empty());
    assert_eq!(r.pointers(), pointers(1, 2, (1, "1"), State::Secondary));
}

#[test]
fn vote_accepted_carries_the_vote_payload() {
    let mut r = secondary(config(1));
    step(&mut r, T0, Input::SetVotePayload(42));
    step(&mut r, T0, vote_msg(&vote(2, &ballot(1, "1"), 1, &["b"])));
    r.step(T0, Input::Persisted(Token(2))).unwrap();
    let expected = Action::Send {
        to: id("1"),
        message: Message {
            from: id(ME),
            configuration: 1,
            body: Body::VoteAccepted { decree: Decree(2), ballot: ballot(1, "1"), payload: 42 },
        },
    };
    assert_eq!(r.drain_actions(), [expected]);
}

#[test]
fn a_relinquish_vote_is_accepted_and_starts_an_election_at_once() {
    let mut r = secondary(config(1));
    let mut relinquish = vote(2, &ballot(1, "1"), 1, &[]);
    std::sync::Arc::make_mut(&mut relinquish).relinquish = true;
    assert_eq!(
        step(&mut r, T0, vote_msg(&relinquish)),
        [
            "execute 1 (1 requests)",
            "persist #2 vote 2 <1,1>",
            "send 1 <- 2@1: StatusQuery(2 <1,1>)",
            "send 3 <- 2@1: StatusQuery(2 <1,1>)"
        ]
    );
    assert_eq!(r.state(), State::Initializing);
    // The acceptance still leaves once durable, so the old primary can pass its last vote.
    assert_eq!(step(&mut r, T0, Input::Persisted(Token(2))), ["send 1 <- 2@1: VoteAccepted(2 <1,1>)"]);
}
