//! The primary (legacy §6.2 TestVoteAcceptedMsg, TestVoteAcceptedMsgInPrimary, §4.3):
//! counting acceptances, batching, the window, heartbeats, re-sends, the last decree and
//! relinquish. "2" leads under <2,2> and has passed decree 1 unless a test says otherwise.

mod common;

use bytes::Bytes;
use common::*;
use rsl_core::paxos::{Ballot, Body, Config, Decree, Input, InvalidInput, Replica, State, Token};

fn accepted(from: &str, decree: u64, b: &Ballot) -> Input {
    msg(from, Body::VoteAccepted { decree: Decree(decree), ballot: b.clone(), payload: 0 })
}

fn replicate(request: &str, cookie: u64) -> Input {
    Input::Replicate {
        request: Bytes::copy_from_slice(request.as_bytes()),
        cookie,
        exclusive: false,
        last: false,
    }
}

fn mine() -> Ballot {
    ballot(2, ME)
}

/// Primary "2" with `window` and decrees of at most `batch` requests.
fn primary_with(window: u64, batch: usize) -> Replica {
    primary(Config { batch_requests_max: batch, ..config(window) })
}

#[test]
fn a_new_primary_passes_its_reproposal_only_on_a_durable_quorum_under_its_ballot() {
    let mut r = preparing(config(1));
    step(
        &mut r,
        T0,
        msg(
            "1",
            Body::PrepareAccepted { decree: Decree(1), ballot: mine(), watermark: Decree(0), votes: vec![] },
        ),
    );
    // Wrong ballot, wrong decree: not counted.
    assert!(step(&mut r, T0, accepted("1", 1, &ballot(1, "1"))).is_empty());
    assert!(step(&mut r, T0, accepted("1", 2, &mine())).is_empty());
    // The right one, but our own record of decree 1 is not durable yet: 1 of 2.
    assert!(step(&mut r, T0, accepted("1", 1, &mine())).is_empty());
    assert_eq!(r.pointers().passed, Decree(0));
    assert_eq!(
        step(&mut r, T0, Input::Persisted(Token(3))),
        ["execute 1 (1 requests)", "notify status primary=true", "notify primary recovered"]
    );
    assert_eq!(r.pointers().passed, Decree(1));
    assert!(r.is_primary());
}

#[test]
fn requests_pass_in_turn_and_stepping_down_aborts_the_rest() {
    // TestVoteAcceptedMsgInPrimary with window 1 (legacy stop-and-wait).
    let mut r = primary(config(1));
    assert_eq!(
        step(&mut r, T0, replicate("a", 1)),
        [
            "persist #4 vote 2 <2,2>",
            "send 1 <- 2@1: Vote(2 <2,2> passed=1 n=1)",
            "send 3 <- 2@1: Vote(2 <2,2> passed=1 n=1)"
        ]
    );
    assert!(step(&mut r, T0, replicate("b", 2)).is_empty(), "waits for decree 2");
    assert!(step(&mut r, T0, accepted("3", 2, &mine())).is_empty(), "our record is not durable yet");
    assert_eq!(
        step(&mut r, T0, Input::Persisted(Token(4))),
        [
            "execute 2 (1 requests, ours)",
            "persist #5 vote 3 <2,2>",
            "send 1 <- 2@1: Vote(3 <2,2> passed=2 n=1)",
            "send 3 <- 2@1: Vote(3 <2,2> passed=2 n=1)"
        ]
    );
    assert!(step(&mut r, T0, replicate("c", 3)).is_empty());
    let higher = Body::NotAccepted { decree: Decree(3), passed: Decree(2), ballot: ballot(3, "1") };
    assert_eq!(
        step(&mut r, T0, msg("1", higher)),
        // Decree 2, passed last, is journaled as its own proof on the way out.
        [
            "abort cookie 2 NotPrimary",
            "abort cookie 3 NotPrimary",
            "notify status primary=false",
            "persist #6 vote 2 <2,2>"
        ]
    );
    assert_eq!((r.state(), r.pointers().passed), (State::Secondary, Decree(2)));
}

#[test]
fn vote_accepted_is_ignored_outside_primary() {
    for mut r in
        [secondary(config(1)), secondary_prepared(config(1)), preparing(config(1)), initializing(config(1))]
    {
        let before = r.pointers();
        for decree in 0..3 {
            for b in [ballot(0, "1"), ballot(1, "1"), ballot(2, ME), ballot(12, "3")] {
                assert!(step(&mut r, T0, accepted("1", decree, &b)).is_empty());
            }
        }
        assert_eq!(r.pointers(), before);
    }
}

#[test]
fn the_primary_records_each_peers_latest_acknowledgement_and_payload() {
    let mut r = primary(config(1));
    step(&mut r, T0, replicate("a", 1));
    let ack = Body::VoteAccepted { decree: Decree(2), ballot: mine(), payload: 42 };
    step(&mut r, T0 + 5, msg("3", ack));
    let peer = r.peer_votes().unwrap()[&id("3")];
    assert_eq!((peer.decree, peer.payload, peer.at_us), (Decree(2), 42, T0 + 5));
}

#[test]
fn queued_requests_are_batched_into_one_decree() {
    let mut r = primary(config(1));
    step(&mut r, T0, replicate("a", 1));
    step(&mut r, T0, replicate("b", 2));
    step(&mut r, T0, replicate("c", 3));
    step(&mut r, T0, accepted("1", 2, &mine()));
    let trace = step(&mut r, T0, Input::Persisted(Token(4)));
    assert_eq!(trace[..2], ["execute 2 (1 requests, ours)", "persist #5 vote 3 <2,2>"]);
    assert_eq!(trace[2], "send 1 <- 2@1: Vote(3 <2,2> passed=2 n=2)");
}

#[test]
fn an_exclusive_request_stands_alone() {
    let mut r = primary(config(1));
    step(&mut r, T0, replicate("a", 1));
    step(&mut r, T0, replicate("b", 2));
    let exclusive =
        Input::Replicate { request: Bytes::from_static(b"x"), cookie: 3, exclusive: true, last: false };
    step(&mut r, T0, exclusive);
    step(&mut r, T0, replicate("d", 4));
    step(&mut r, T0, accepted("1", 2, &mine()));
    // Each decree d (token d + 1) passes once our record is durable, and the next goes out:
    // b alone (the exclusive x may not join it), then x alone, then d.
    let mut proposed = Vec::new();
    for decree in 2..=4 {
        let trace = step(&mut r, T0, Input::Persisted(Token(decree + 2)));
        proposed.push(trace[2].clone());
        step(&mut r, T0, accepted("1", decree + 1, &mine()));
    }
    assert_eq!(
        proposed,
        [
            "send 1 <- 2@1: Vote(3 <2,2> passed=2 n=1)",
            "send 1 <- 2@1: Vote(4 <2,2> passed=3 n=1)",
            "send 1 <- 2@1: Vote(5 <2,2> passed=4 n=1)"
        ]
    );
}

#[test]
fn the_last_decree_closes_the_primary() {
    let mut r = primary(config(1));
    let last =
        Input::Replicate { request: Bytes::from_static(b"z"), cookie: 1, exclusive: false, last: true };
    assert_eq!(step(&mut r, T0, last)[0], "persist #4 vote 2 <2,2>");
    assert_eq!(step(&mut r, T0, replicate("late", 2)), ["abort cookie 2 ShuttingDown"]);
    step(&mut r, T0, accepted("1", 2, &mine()));
    // No later proposal will prove decree 2 chosen, so the primary journals its proof:
    // otherwise no replica could learn the term's last decree, and none could take over.
    assert_eq!(
        step(&mut r, T0, Input::Persisted(Token(4))),
        ["execute 2 (1 requests, ours)", "persist #5 vote 2 <2,2>"]
    );
    // No heartbeat follows the last decree.
    assert_eq!(r.next_deadline(), u64::MAX);
}

#[test]
fn requests_to_a_non_primary_are_aborted() {
    let mut r = secondary(config(1));
    assert_eq!(step(&mut r, T0, replicate("a", 9)), ["abort cookie 9 NotPrimary"]);
    // A primary whose re-proposal has not passed yet does not take requests either.
    let mut r = preparing(config(1));
    step(
        &mut r,
        T0,
        msg(
            "1",
            Body::PrepareAccepted { decree: Decree(1), ballot: mine(), watermark: Decree(0), votes: vec![] },
        ),
    );
    assert_eq!(r.state(), State::Primary);
    assert_eq!(step(&mut r, T0, replicate("a", 9)), ["abort cookie 9 NotPrimary"]);
}

#[test]
fn a_pipelined_primary_keeps_a_window_of_decrees_in_flight() {
    let mut r = primary_with(2, 1);
    assert_eq!(step(&mut r, T0, replicate("a", 1))[0], "persist #4 vote 2 <2,2>");
    // Pipelining: decree 3 goes out before decree 2 is chosen (legacy waits).
    assert_eq!(step(&mut r, T0, replicate("b", 2))[0], "persist #5 vote 3 <2,2>");
    assert!(step(&mut r, T0, replicate("c", 3)).is_empty(), "the window of 2 is full");
    persist_all(&mut r, T0);
    // Decrees pass strictly in order: decree 3's quorum passes nothing while 2 lacks one,
    // then 2's quorum passes both, and the next vote carries the new watermark.
    assert!(step(&mut r, T0, accepted("1", 3, &mine())).is_empty());
    assert_eq!(
        step(&mut r, T0, accepted("3", 2, &mine())),
        [
            "execute 2 (1 requests, ours)",
            "execute 3 (1 requests, ours)",
            "persist #6 vote 4 <2,2>",
            "send 1 <- 2@1: Vote(4 <2,2> passed=3 n=1)",
            "send 3 <- 2@1: Vote(4 <2,2> passed=3 n=1)"
        ]
    );
    assert_eq!(r.pointers().passed, Decree(3));
}

#[test]
fn an_idle_primary_proposes_a_heartbeat() {
    let mut r = primary(config(1));
    let at = r.next_deadline();
    assert_eq!(at, T0 + config(1).heartbeat_us);
    assert_eq!(
        step(&mut r, at, Input::Tick),
        [
            "persist #4 vote 2 <2,2>",
            "send 1 <- 2@1: Vote(2 <2,2> passed=1 n=0)",
            "send 3 <- 2@1: Vote(2 <2,2> passed=1 n=0)"
        ]
    );
}

#[test]
fn unacknowledged_votes_are_resent_to_silent_peers_only() {
    let mut r = primary(config(1));
    step(&mut r, T0, replicate("a", 1));
    step(&mut r, T0, accepted("1", 2, &mine()));
    let at = T0 + config(1).vote_retry_us;
    assert_eq!(r.next_deadline(), at);
    assert!(step(&mut r, at - 1, Input::Tick).is_empty());
    assert_eq!(step(&mut r, at, Input::Tick), ["send 3 <- 2@1: Vote(2 <2,2> passed=1 n=1)"]);
}

#[test]
fn relinquishing_proposes_a_final_vote_and_steps_down_once_it_passes() {
    let mut r = primary(config(1));
    assert_eq!(
        step(&mut r, T0, Input::Relinquish),
        [
            "persist #4 vote 2 <2,2>",
            "send 1 <- 2@1: Vote(2 <2,2> passed=1 n=0 relinquish)",
            "send 3 <- 2@1: Vote(2 <2,2> passed=1 n=0 relinquish)"
        ]
    );
    assert_eq!(step(&mut r, T0, replicate("late", 5)), ["abort cookie 5 ShuttingDown"]);
    step(&mut r, T0, Input::Persisted(Token(4)));
    assert_eq!(
        step(&mut r, T0, accepted("3", 2, &mine())),
        [
            "execute 2 (0 requests, ours)",
            "relinquished",
            "notify status primary=false",
            "persist #5 vote 2 <2,2>"
        ]
    );
    assert_eq!(r.state(), State::Secondary);
}

#[test]
fn only_a_primary_can_relinquish() {
    let mut r = secondary(config(1));
    assert_eq!(r.step(T0, Input::Relinquish), Err(InvalidInput::WrongState("relinquish needs a primary")));
    assert!(r.drain_actions().is_empty());
}

#[test]
fn a_single_replica_elects_itself_and_executes_alone() {
    // TestSingleReplica: a quorum of one needs no peer for anything.
    let mut r = fresh(&[ME], config(1));
    assert_eq!(r.state(), State::Secondary, "its election time has not come at start");
    let at = r.next_deadline();
    assert_eq!(step(&mut r, at, Input::Tick), ["ask can become primary"]);
    assert_eq!(step(&mut r, at, Input::CanBecomePrimary(Some(Bytes::new()))), ["persist #1 promise <1,2>"]);
    assert_eq!(step(&mut r, at, Input::Persisted(Token(1))), ["persist #2 vote 1 <1,2>"]);
    assert_eq!(
        step(&mut r, at, Input::Persisted(Token(2))),
        ["execute 1 (0 requests)", "notify status primary=true", "notify primary recovered"]
    );
    assert_eq!(step(&mut r, at, replicate("a", 1)), ["persist #3 vote 2 <1,2>"]);
    assert_eq!(step(&mut r, at, Input::Persisted(Token(3))), ["execute 2 (1 requests, ours)"]);
}

#[test]
fn shutdown_returns_every_pending_request_and_leaves_the_replica_inert() {
    // Legacy Unload: RSLShuttingDown for each pending request, and no NotifyStatus. The
    // last passed decree is journaled as its own proof, so a restart replays it.
    let mut r = primary_with(1, 1);
    step(&mut r, T0, replicate("a", 1)); // decree 2, in flight
    step(&mut r, T0, replicate("b", 2)); // waits for the window
    assert_eq!(
        step(&mut r, T0, Input::Shutdown),
        ["abort cookie 1 ShuttingDown", "abort cookie 2 ShuttingDown", "persist #5 vote 1 <2,2>"]
    );
    assert_eq!(r.state(), State::Inactive);
    assert_eq!(r.next_deadline(), u64::MAX);
    assert_eq!(step(&mut r, T0, replicate("c", 3)), ["abort cookie 3 NotPrimary"]);
    assert!(step(&mut r, T0, accepted("1", 2, &mine())).is_empty());
    let query = Body::StatusQuery { decree: Decree(1), ballot: mine() };
    assert_eq!(step(&mut r, T0, msg("1", query)).len(), 1, "status queries are still answered");
}
