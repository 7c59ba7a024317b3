//! Restart from the journal (legacy §5 and §4.2: "on restart the last logged vote is never
//! executed"): which recovered decrees pass at once, what stays accepted, and the promise.

mod common;

use bytes::Bytes;
use common::*;
use rsl_core::paxos::{Ballot, Decree, Input, Record, Recovered, Replica, State};

fn restart(checkpoint: u64, records: Vec<Record>) -> (Replica, Vec<String>) {
    let recovered = Recovered { checkpoint: Decree(checkpoint), records };
    let mut r =
        Replica::new(&member(ME), config(4), configuration(&["1", "2", "3"]), recovered, 7, T0).unwrap();
    let actions = trace(&r.drain_actions());
    (r, actions)
}

fn votes(decrees: std::ops::RangeInclusive<u64>, b: &Ballot, passed: impl Fn(u64) -> u64) -> Vec<Record> {
    decrees.map(|d| Record::Vote(vote(d, b, passed(d), &["r"]))).collect()
}

#[test]
fn a_legacy_journal_passes_all_but_its_last_vote() {
    let b = ballot(1, "1");
    let (r, actions) = restart(0, votes(1..=3, &b, |d| d - 1));
    assert_eq!(
        actions,
        [
            "execute 1 (1 requests)",
            "execute 2 (1 requests)",
            "send 1 <- 2@1: StatusQuery(3 <1,1>)",
            "send 3 <- 2@1: StatusQuery(3 <1,1>)"
        ]
    );
    let p = r.pointers();
    assert_eq!(
        (p.executed, p.passed, p.max_accepted, p.max_ballot, p.state),
        (Decree(0), Decree(2), Decree(3), b, State::Initializing)
    );
}

#[test]
fn decrees_in_the_checkpoint_are_not_replayed() {
    let b = ballot(1, "1");
    let (r, actions) = restart(2, votes(1..=4, &b, |d| d - 1));
    assert_eq!(actions[0], "execute 3 (1 requests)");
    assert_eq!(actions.len(), 3);
    let p = r.pointers();
    assert_eq!((p.executed, p.passed, p.max_accepted), (Decree(2), Decree(3), Decree(4)));
}

#[test]
fn a_pipelined_journal_passes_up_to_the_highest_watermark() {
    let b = ballot(1, "1");
    let mut records = votes(1..=4, &b, |_| 0);
    records.push(Record::Vote(vote(5, &b, 3, &["r"])));
    let (r, actions) = restart(0, records);
    assert_eq!(actions.iter().filter(|a| a.starts_with("execute")).count(), 3);
    assert_eq!((r.pointers().passed, r.pointers().max_accepted), (Decree(3), Decree(5)));
}

#[test]
fn a_watermark_under_a_higher_ballot_does_not_prove_an_older_vote() {
    // <2,3> knew decree 1 chosen, but maybe under <1,3> with another value than our <1,1>.
    let records = vec![
        Record::Vote(vote(1, &ballot(1, "1"), 0, &["a"])),
        Record::Vote(vote(2, &ballot(2, "3"), 1, &["b"])),
    ];
    let (r, actions) = restart(0, records);
    assert!(actions.iter().all(|a| !a.starts_with("execute")));
    assert_eq!((r.pointers().passed, r.pointers().max_accepted), (Decree(0), Decree(2)));
}

#[test]
fn a_learned_record_proves_itself() {
    let learned = vote(1, &ballot(1, "1"), 1, &["a"]);
    let (r, actions) = restart(0, vec![Record::Vote(learned)]);
    assert_eq!(actions[0], "execute 1 (1 requests)");
    assert_eq!(r.pointers().passed, Decree(1));
}

#[test]
fn a_journaled_promise_restores_the_promise() {
    let mut records = votes(1..=1, &ballot(1, "1"), |_| 0);
    records.push(Record::Promise(ballot(5, "3")));
    let (r, _) = restart(0, records);
    assert_eq!(r.pointers().max_ballot, ballot(5, "3"));
}

#[test]
fn a_replica_that_led_before_the_restart_stands_again_at_once() {
    // Legacy: "a replica that was primary before the restart tries to become primary
    // again right away (its id is in maxBallot)".
    let (mut r, _) = restart(0, vec![Record::Promise(ballot(3, ME))]);
    let nobody = Ballot::default();
    assert_eq!(
        step(&mut r, T0, msg("1", status((0, &nobody), 0, &nobody, 0, &nobody))),
        ["ask can become primary"]
    );
    let trace = step(&mut r, T0, Input::CanBecomePrimary(Some(Bytes::new())));
    assert_eq!(trace[0], "persist #1 promise <4,2>");
}

#[test]
fn a_former_leader_waits_when_a_responder_knows_a_higher_ballot() {
    // Departs from legacy: a responder has promised <4,1>, so another replica leads now; a
    // restarted former primary standing at once would depose it (seen with `rsl node`).
    let (mut r, _) = restart(0, vec![Record::Promise(ballot(3, ME))]);
    let nobody = Ballot::default();
    let newer = ballot(4, "1");
    assert!(step(&mut r, T0, msg("1", status((0, &nobody), 0, &nobody, 0, &newer))).is_empty());
    assert_eq!(r.state(), State::Secondary);
}
