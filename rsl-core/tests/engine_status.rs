//! Status rounds (legacy §4.4 Initializing, §6.2 TestStatusResponseMsg and
//! TestStatusResponseMsgInInitialize): answering StatusQuery in every state, and what a
//! quorum of StatusResponses decides. "2" accepted decree 1 under <1,1> (query (1, <1,1>)).

mod common;

use common::*;
use rsl_core::paxos::{Action, Ballot, Body, Decree, Input, Recovered, Replica, State, Status};

fn query(decree: u64, b: &Ballot) -> Input {
    msg("1", Body::StatusQuery { decree: Decree(decree), ballot: b.clone() })
}

const QUERY: [&str; 2] = ["send 1 <- 2@1: StatusQuery(1 <1,1>)", "send 3 <- 2@1: StatusQuery(1 <1,1>)"];

#[test]
fn every_state_answers_a_status_query() {
    let cases = [
        (secondary(config(1)), "StatusResponse(1 <1,1> passed=0 mb=<1,1> Secondary)"),
        (secondary_prepared(config(1)), "StatusResponse(1 <1,1> passed=0 mb=<11,3> Secondary)"),
        (initializing(config(1)), "StatusResponse(1 <1,1> passed=0 mb=<1,1> Initializing)"),
        (preparing(config(1)), "StatusResponse(1 <1,1> passed=0 mb=<2,2> Preparing)"),
        (primary(config(1)), "StatusResponse(1 <2,2> passed=1 mb=<2,2> Primary)"),
    ];
    for (mut r, response) in cases {
        assert_eq!(step(&mut r, T0, query(0, &Ballot::default())), [format!("send 1 <- 2@1: {response}")]);
    }
}

#[test]
fn a_status_response_echoes_the_query_and_reports_the_last_vote_age() {
    let mut r = secondary(config(1));
    r.step(T0 + 2_500, query(7, &ballot(3, "1"))).unwrap();
    let expected = Status {
        query_decree: Decree(7),
        query_ballot: ballot(3, "1"),
        decree: Decree(1),
        ballot: ballot(1, "1"),
        passed: Decree(0),
        last_received_ago_ms: 2,
        min_decree_in_log: Decree(0),
        checkpointed_decree: Decree(0),
        checkpoint_size: 0,
        max_ballot: ballot(1, "1"),
        state: State::Secondary,
    };
    let actions = r.drain_actions();
    assert!(
        matches!(&actions[..], [Action::Send { message, .. }] if message.body == Body::StatusResponse(Box::new(expected)))
    );
}

#[test]
fn status_answers_report_the_checkpoints_saved_and_the_logs_deleted_since_start() {
    let mut r = secondary(config(1));
    let report = |r: &mut Replica| {
        r.step(T0, query(1, &ballot(1, "1"))).unwrap();
        match &r.drain_actions()[..] {
            [Action::Send { message, .. }] => match &message.body {
                Body::StatusResponse(s) => (s.checkpointed_decree, s.min_decree_in_log),
                other => panic!("not a status response: {other:?}"),
            },
            other => panic!("not one answer: {other:?}"),
        }
    };
    assert_eq!(report(&mut r), (Decree(0), Decree(0)));
    r.step(T0, Input::Retained { checkpoint: Decree(40), first_logged: Decree(31) }).unwrap();
    assert_eq!(report(&mut r), (Decree(40), Decree(31)));
    // Older news (a checkpoint saved before the last one was reported) changes nothing.
    r.step(T0, Input::Retained { checkpoint: Decree(20), first_logged: Decree(0) }).unwrap();
    assert_eq!(report(&mut r), (Decree(40), Decree(31)));
}

#[test]
fn an_inactive_replica_answers_status_queries_only() {
    let outsider = member("4");
    let mut r =
        Replica::new(&outsider, config(1), configuration(&["1", "2", "3"]), Recovered::default(), 7, T0)
            .unwrap();
    assert_eq!(r.state(), State::Inactive);
    assert!(r.drain_actions().is_empty());
    // It may be the last to know its configuration: it queries the members every
    // `initialize_retry_us` while it is inactive.
    assert_eq!(r.next_deadline(), T0);
    let announce = ["1", "2", "3"].map(|to| format!("send {to} <- 4@1: StatusQuery(0 <0,>)"));
    assert_eq!(
        step(&mut r, T0, query(0, &Ballot::default())),
        [&["send 1 <- 4@1: StatusResponse(0 <0,> passed=0 mb=<0,> Inactive)".to_string()], &announce[..]]
            .concat()
    );
    let empty = Ballot::default();
    assert!(step(&mut r, T0, msg("2", status((0, &empty), 0, &empty, 0, &empty))).is_empty());
    assert!(step(&mut r, T0, vote_msg(&vote(1, &ballot(1, "1"), 0, &["a"]))).is_empty());
    assert_eq!(r.next_deadline(), T0 + config(1).initialize_retry_us);
}

#[test]
fn status_responses_are_ignored_outside_initializing() {
    // Legacy lets a non-primary that sees (d+1, higher ballot) fetch at once; we learn
    // from the primary's watermark instead, so only Initializing reads responses.
    let b = ballot(1, "1");
    let ahead = status((1, &b), 3, &ballot(4, "3"), 2, &ballot(4, "3"));
    for mut r in
        [secondary(config(1)), secondary_prepared(config(1)), preparing(config(1)), primary(config(1))]
    {
        let before = r.pointers();
        assert!(step(&mut r, T0, msg("3", ahead.clone())).is_empty());
        assert_eq!(r.pointers(), before);
    }
}

#[test]
fn initializing_ignores_a_response_to_another_query() {
    let mut r = initializing(config(1));
    let stale = status((0, &Ballot::default()), 1, &ballot(1, "1"), 0, &ballot(1, "1"));
    assert!(step(&mut r, T0, msg("1", stale)).is_empty());
    assert_eq!(r.state(), State::Initializing);
}

#[test]
fn initializing_with_nobody_ahead_prepares_above_the_highest_ballot_seen() {
    // Nobody passed more than we did: lower decree; same decree, lower ballot; lower
    // decree, higher ballot; higher decree (not passed), lower ballot.
    let b = ballot(1, "1");
    let cases = [
        (0, Ballot::default(), ballot(1, "1"), "<2,2>"),
        (1, ballot(0, "3"), ballot(1, "1"), "<2,2>"),
        (0, Ballot::default(), ballot(5, "3"), "<6,2>"),
        (2, ballot(0, "3"), ballot(1, "1"), "<2,2>"),
    ];
    for (decree, accepted, max_ballot, prepared) in cases {
        let mut r = initializing(config(1));
        let now = r.next_deadline() - 1;
        let response = status((1, &b), decree, &accepted, 0, &max_ballot);
        assert_eq!(step(&mut r, now, msg("3", response)), ["ask can become primary"]);
        let trace = step(&mut r, now, Input::CanBecomePrimary(Some(bytes::Bytes::new())));
        assert_eq!(trace[0], format!("persist #2 promise {prepared}"));
        assert_eq!(r.state(), State::Preparing);
    }
}

#[test]
fn initializing_settles_as_secondary_before_its_election_time() {
    // A replica that just started has no election time yet: it waits one election delay.
    let mut r = fresh(&["1", "2", "3"], config(1));
    let nobody = Ballot::default();
    assert!(step(&mut r, T0, msg("1", status((0, &nobody), 0, &nobody, 0, &nobody))).is_empty());
    assert_eq!(r.state(), State::Secondary);
    assert_eq!(r.next_deadline(), T0 + config(1).election_delay_us);
}

#[test]
fn initializing_fetches_from_a_responder_that_passed_more() {
    let mut r = initializing(config(1));
    let b = ballot(1, "1");
    assert_eq!(step(&mut r, T0, msg("3", status((1, &b), 4, &b, 3, &b))), ["fetch votes from 3 at 1"]);
    assert_eq!(r.state(), State::Initializing);
}

#[test]
fn learned_votes_are_journaled_as_their_own_proof_and_executed() {
    let mut r = initializing(config(1));
    let b = ballot(1, "1");
    step(&mut r, T0, msg("3", status((1, &b), 3, &b, 2, &b)));
    let votes = vec![vote(1, &b, 0, &["a"]), vote(2, &b, 1, &["b"])];
    assert_eq!(
        step(&mut r, T0, Input::Learned { from: id("3"), votes }),
        [
            "persist #2 vote 1 <1,1>",
            "execute 1 (1 requests)",
            "persist #3 vote 2 <1,1>",
            "execute 2 (1 requests)",
            "send 1 <- 2@1: StatusQuery(2 <1,1>)",
            "send 3 <- 2@1: StatusQuery(2 <1,1>)"
        ]
    );
    assert_eq!((r.state(), r.pointers().passed), (State::Initializing, Decree(2)));
}

#[test]
fn a_learn_that_brings_nothing_settles_as_secondary() {
    let mut r = initializing(config(1));
    let b = ballot(1, "1");
    step(&mut r, T0, msg("3", status((1, &b), 3, &b, 2, &b)));
    assert!(step(&mut r, T0, Input::Learned { from: id("3"), votes: vec![] }).is_empty());
    assert_eq!((r.state(), r.pointers().passed), (State::Secondary, Decree(0)));
}

#[test]
fn an_answer_from_a_peer_we_did_not_ask_is_ignored() {
    let mut r = initializing(config(1));
    let b = ballot(1, "1");
    step(&mut r, T0, msg("3", status((1, &b), 3, &b, 2, &b)));
    let votes = vec![vote(1, &b, 0, &["a"])];
    assert!(step(&mut r, T0, Input::Learned { from: id("1"), votes }).is_empty());
    assert_eq!(r.pointers().passed, Decree(0));
}

#[test]
fn a_learn_that_times_out_starts_a_new_status_round() {
    let mut r = initializing(config(1));
    let b = ballot(1, "1");
    step(&mut r, T0, msg("3", status((1, &b), 3, &b, 2, &b)));
    let at = r.next_deadline();
    // `initializing` left the clock at the election time.
    assert_eq!(at, T0 + config(1).election_delay_us + config(1).learn_timeout_us);
    assert_eq!(step(&mut r, at, Input::Tick), QUERY);
}
