//! Replica-set change (legacy §4.8, §6.9): the primary drains its pipeline, proposes the
//! new set as a decree of its own and nothing above it; the decision switches every
//! replica that passes it to the next configuration; members of other configurations are
//! told or taught. "2" of {"1","2","3"} unless a test says otherwise.

mod common;

use bytes::Bytes;
use common::*;
use rsl_core::paxos::{
    Action, Ballot, Body, Config, Decree, Input, Member, Message, Record, Recovered, Replica, State, Vote,
    VoteBody,
};
use std::sync::Arc;

fn set(ids: &[&str]) -> rsl_core::paxos::MemberSet {
    rsl_core::paxos::MemberSet::of_ids(ids).unwrap()
}

fn change(ids: &[&str], cookie: u64) -> Input {
    Input::ChangeConfiguration { members: set(ids), cookie }
}

fn replicate(request: &str, cookie: u64) -> Input {
    Input::Replicate {
        request: Bytes::copy_from_slice(request.as_bytes()),
        cookie,
        exclusive: false,
        last: false,
    }
}

fn accepted(from: &str, decree: u64, b: &Ballot) -> Input {
    msg(from, Body::VoteAccepted { decree: Decree(decree), ballot: b.clone(), payload: 0 })
}

fn mine() -> Ballot {
    ballot(2, ME)
}

fn reconfiguration(decree: u64, b: &Ballot, passed: u64, ids: &[&str]) -> Arc<Vote> {
    Arc::new(Vote {
        body: VoteBody::Reconfiguration(set(ids)),
        ..Vote::empty(Decree(decree), b.clone(), 1, Decree(passed))
    })
}

#[test]
fn the_primary_drains_its_pipeline_then_decides_the_new_set_and_nothing_above_it() {
    let mut r = primary(Config { batch_requests_max: 1, ..config(8) });
    step(&mut r, T0, replicate("a", 10));
    persist_all(&mut r, T0);
    // Decree 2 is in flight: the change waits for it.
    let out = step(&mut r, T0, change(&["1", "2", "4"], 77));
    assert!(out.is_empty(), "{out:?}");
    step(&mut r, T0, replicate("b", 11));
    let out = step(&mut r, T0, accepted("1", 2, &mine()));
    assert_eq!(out[0], "execute 2 (1 requests, ours)");
    assert_eq!(out[1..].iter().filter(|l| l.contains("reconfiguration")).count(), 2, "{out:?}");
    assert!(out.iter().all(|l| !l.contains("Vote(4")), "a decree above the reconfiguration: {out:?}");
    persist_all(&mut r, T0);
    let out = step(&mut r, T0, accepted("3", 3, &mine()));
    assert_eq!(
        out,
        [
            "execute 3 (0 requests, ours)",
            "send 1 <- 2@1: ReconfigurationDecision(3 <2,2>)",
            "send 3 <- 2@1: ReconfigurationDecision(3 <2,2>)",
            "abort cookie 11 NotPrimary",
            "notify status primary=false",
            "persist #6 vote 1 <2,2>",
            "persist #7 vote 2 <2,2>",
            "persist #8 vote 3 <2,2>",
            "send 1 <- 2@2: StatusQuery(3 <2,2>)",
            "send 4 <- 2@2: StatusQuery(3 <2,2>)",
        ]
    );
    let c = r.configuration();
    assert_eq!((c.number, c.initial_decree, c.members.clone()), (2, Decree(4), set(&["1", "2", "4"])));
    assert_eq!(r.state(), State::Initializing);
}

#[test]
fn a_primary_that_removes_itself_goes_inactive_and_announces_the_new_set() {
    let mut r = primary(config(1));
    step(&mut r, T0, change(&["1", "3"], 5));
    persist_all(&mut r, T0);
    let out = step(&mut r, T0, accepted("1", 2, &mine()));
    assert!(out.contains(&"send 3 <- 2@1: ReconfigurationDecision(2 <2,2>)".to_string()), "{out:?}");
    assert!(out.contains(&"send 1 <- 2@2: StatusQuery(2 <2,2>)".to_string()), "{out:?}");
    assert_eq!(r.state(), State::Inactive);
    // It repeats for as long as it is inactive, answered or not: a later configuration
    // that names it again may have no member it can hear.
    let again = r.next_deadline();
    let out = step(&mut r, again, Input::Tick);
    assert_eq!(out, ["send 1 <- 2@2: StatusQuery(2 <2,2>)", "send 3 <- 2@2: StatusQuery(2 <2,2>)"]);
    let b = ballot(3, "1");
    let answer = status((2, &mine()), 2, &mine(), 2, &b);
    step(&mut r, again, Input::Message(Message { from: id("1"), configuration: 2, body: answer }));
    assert_eq!(r.next_deadline(), again + Config::default().initialize_retry_us);
    // Requests now go back: it is no one's primary.
    assert_eq!(step(&mut r, again, replicate("x", 9)), ["abort cookie 9 NotPrimary"]);
}

#[test]
fn a_change_asked_of_a_secondary_is_refused_and_changes_nothing() {
    let mut r = secondary(config(8));
    let before = r.pointers();
    assert_eq!(step(&mut r, T0, change(&["1", "2"], 3)), ["abort reconfiguration cookie 3 NotPrimary"]);
    assert_eq!((r.pointers(), r.configuration().number), (before, 1));
}

#[test]
fn a_primary_deposed_before_the_decision_aborts_the_change() {
    let mut r = primary(config(8));
    step(&mut r, T0, change(&["1", "2"], 3));
    persist_all(&mut r, T0);
    let higher = Body::Prepare {
        decree: Decree(1),
        passed: Decree(1),
        ballot: ballot(5, "3"),
        primary_cookie: Bytes::new(),
    };
    let out = step(&mut r, T0, msg("3", higher));
    assert_eq!(out[..2], ["abort reconfiguration cookie 3 NotPrimary", "notify status primary=false"]);
    assert_eq!(r.configuration().number, 1);
}

#[test]
fn a_secondary_follows_the_decision_into_the_new_configuration() {
    let mut r = secondary(config(8));
    let b = ballot(1, "1");
    step(&mut r, T0, vote_msg(&reconfiguration(2, &b, 1, &["1", "2", "5"])));
    persist_all(&mut r, T0);
    let out = step(&mut r, T0, msg("1", Body::ReconfigurationDecision { decree: Decree(2), ballot: b }));
    assert_eq!(out[..2], ["persist #3 vote 2 <1,1>", "execute 2 (0 requests)"], "{out:?}");
    assert!(out.contains(&"send 5 <- 2@2: StatusQuery(2 <1,1>)".to_string()), "{out:?}");
    assert_eq!((r.configuration().number, r.state()), (2, State::Initializing));
    // Its old configuration's votes, Joins and JoinRequests now hear that configuration
    // 1 ended (legacy's DefunctConfiguration).
    let out = step(&mut r, T0, vote_msg(&vote(3, &ballot(1, "1"), 2, &["late"])));
    assert_eq!(out, ["send 1 <- 2@1: Defunct"]);
    let request = msg("3", Body::JoinRequest);
    assert_eq!(step(&mut r, T0, request), ["send 3 <- 2@1: Defunct"]);
}

#[test]
fn a_decision_for_decrees_it_lacks_makes_it_learn_them() {
    let mut r = secondary(config(8));
    let out = step(
        &mut r,
        T0,
        msg("1", Body::ReconfigurationDecision { decree: Decree(4), ballot: ballot(1, "1") }),
    );
    assert_eq!(out, ["persist #2 vote 1 <1,1>", "execute 1 (1 requests)", "fetch votes from 1 at 2"]);
    assert_eq!(r.configuration().number, 1);
}

#[test]
fn a_message_of_a_newer_configuration_makes_even_a_non_member_learn() {
    let mut r = fresh(&["1", "3", "4"], config(8));
    assert_eq!(r.state(), State::Inactive);
    let b = ballot(4, "1");
    let query = Body::StatusQuery { decree: Decree(9), ballot: b };
    let out = step(&mut r, T0, Input::Message(Message { from: id("1"), configuration: 2, body: query }));
    assert_eq!(out[0], "fetch votes from 1 at 1");
    assert!(out[1].starts_with("send 1 <- 2@1: StatusResponse("), "{out:?}");
    // The fetch brings the change that adds it: it becomes a member and stands.
    let old = ballot(1, "1");
    let votes = vec![vote(1, &old, 0, &["a"]), reconfiguration(2, &old, 1, &["1", "2"])];
    let out = step(&mut r, T0, Input::Learned { from: id("1"), votes });
    assert!(out.contains(&"send 1 <- 2@2: StatusQuery(2 <1,1>)".to_string()), "{out:?}");
    assert_eq!((r.configuration().number, r.state()), (2, State::Initializing));
}

#[test]
fn a_new_primary_re_proposes_a_recovered_change_and_nothing_above_it() {
    let mut r = preparing(config(8));
    let old = ballot(1, "1");
    let promise = Body::PrepareAccepted {
        decree: Decree(1),
        ballot: mine(),
        watermark: Decree(1),
        votes: vec![
            vote(1, &old, 0, &["a"]),
            reconfiguration(2, &old, 1, &["1", "2", "3", "4"]),
            vote(3, &ballot(1, "3"), 1, &["stale"]),
        ],
    };
    let out = step(&mut r, T0, msg("1", promise));
    let proposed: Vec<&String> = out.iter().filter(|l| l.starts_with("send 1 <- 2@1: Vote(")).collect();
    assert_eq!(
        proposed,
        [
            "send 1 <- 2@1: Vote(1 <2,2> passed=0 n=1)",
            "send 1 <- 2@1: Vote(2 <2,2> passed=1 n=0 reconfiguration)"
        ]
    );
}

#[test]
fn the_same_set_proposed_again_still_starts_a_new_configuration() {
    let mut r = primary(config(1));
    step(&mut r, T0, change(&["1", "2", "3"], 1));
    persist_all(&mut r, T0);
    step(&mut r, T0, accepted("1", 2, &mine()));
    let c = r.configuration();
    assert_eq!((c.number, c.members.clone()), (2, set(&["1", "2", "3"])));
    // The old primary stands again at once (it led before). Its Prepare names decree 3,
    // the next one: a version-6 acceptor reads decree − 1 as the candidate's watermark,
    // and refuses a candidate that passed less than itself.
    assert_eq!(r.state(), State::Initializing);
    let answer = status((2, &mine()), 2, &mine(), 2, &mine());
    step(&mut r, T0, Input::Message(Message { from: id("1"), configuration: 2, body: answer }));
    let out = step(&mut r, T0, Input::CanBecomePrimary(Some(Bytes::new())));
    assert!(out.contains(&"send 1 <- 2@2: Prepare(3 passed=2 <3,2>)".to_string()), "{out:?}");
}

#[test]
fn a_restart_replays_the_change_from_the_journal() {
    let old = ballot(1, "1");
    let records = vec![
        Record::Vote(vote(1, &old, 0, &["a"])),
        Record::Vote(reconfiguration(2, &old, 1, &["1", "2", "4"])),
        // Decree 2 journaled as its own proof (as a replica that passes it does), and a
        // vote of the next configuration.
        Record::Vote(reconfiguration(2, &old, 2, &["1", "2", "4"])),
        Record::Vote(Arc::new(Vote {
            configuration: 2,
            ..Vote::clone(&vote(3, &ballot(3, "1"), 2, &["c"]))
        })),
        // A vote of the old configuration above the change: never chosen, dropped.
        Record::Vote(vote(3, &ballot(2, "3"), 1, &["stale"])),
    ];
    let recovered = Recovered { checkpoint: Decree(0), records };
    let mut r =
        Replica::new(&member(ME), config(8), configuration(&["1", "2", "3"]), recovered, 7, T0).unwrap();
    let executed: Vec<String> = r
        .drain_actions()
        .iter()
        .filter(|a| matches!(a, Action::Execute { .. }))
        .map(ToString::to_string)
        .collect();
    assert_eq!(executed, ["execute 1 (1 requests)", "execute 2 (0 requests)"]);
    let c = r.configuration();
    assert_eq!((c.number, c.initial_decree, c.members.clone()), (2, Decree(3), set(&["1", "2", "4"])));
    assert_eq!(r.vote(Decree(3)).map(|v| v.configuration), Some(2));
}

/// Legacy TestABC_BCD_CDE_ADE: a removed replica hears, from a member of a configuration
/// three changes later, that it is a member again, and learns across every change.
#[test]
fn a_removed_replica_learns_across_several_changes_and_rejoins() {
    let mut r = primary(config(8));
    step(&mut r, T0, change(&["1", "3", "4"], 1));
    persist_all(&mut r, T0);
    step(&mut r, T0, accepted("1", 2, &mine()));
    assert_eq!((r.configuration().number, r.state()), (2, State::Inactive));
    let in_configuration =
        |number: u32, v: Arc<Vote>| Arc::new(Vote { configuration: number, ..Vote::clone(&v) });
    let query = Body::StatusQuery { decree: Decree(5), ballot: ballot(9, "4") };
    let out = step(&mut r, T0, Input::Message(Message { from: id("4"), configuration: 4, body: query }));
    assert_eq!(out[0], "fetch votes from 4 at 3");
    let votes = vec![
        in_configuration(2, reconfiguration(3, &ballot(5, "1"), 2, &["3", "4", "5"])),
        in_configuration(3, reconfiguration(4, &ballot(7, "3"), 3, &["2", "4", "5"])),
        in_configuration(4, vote(5, &ballot(9, "4"), 4, &["e"])),
    ];
    let out = step(&mut r, T0, Input::Learned { from: id("4"), votes });
    let executed: Vec<&String> = out.iter().filter(|l| l.starts_with("execute")).collect();
    assert_eq!(executed, ["execute 3 (0 requests)", "execute 4 (0 requests)", "execute 5 (1 requests)"]);
    let c = r.configuration();
    assert_eq!((c.number, c.initial_decree, c.members.clone()), (4, Decree(5), set(&["2", "4", "5"])));
    assert_eq!((r.pointers().passed, r.state()), (Decree(5), State::Initializing));
}

/// A learner handed a vote of a configuration other than the one its decree belongs to
/// refuses it: the proof rule never crosses configurations unnoticed.
#[test]
fn a_learned_vote_of_the_wrong_configuration_is_refused() {
    let mut r = secondary(config(8));
    step(&mut r, T0, msg("1", Body::ReconfigurationDecision { decree: Decree(3), ballot: ballot(1, "1") }));
    let stale = Arc::new(Vote { configuration: 2, ..Vote::clone(&vote(2, &ballot(1, "1"), 1, &["x"])) });
    let learned = Input::Learned { from: id("1"), votes: vec![stale] };
    assert_eq!(
        r.step(T0, learned),
        Err(rsl_core::paxos::InvalidInput::WrongConfiguration { ours: 1, theirs: 2 })
    );
    assert_eq!(r.pointers().passed, Decree(1));
}

/// Legacy's exchange between configurations (§4.8 rules 4–6), for clusters that mix in
/// legacy replicas: a JoinRequest for our configuration is answered with a Join; a Join of
/// a newer configuration, or a DefunctConfiguration naming ours, makes us learn from its
/// sender; anything else of theirs is ignored.
#[test]
fn legacy_join_requests_joins_and_defunct_messages() {
    let at = |configuration: u32, from: &str, body: Body| {
        Input::Message(Message { from: id(from), configuration, body })
    };
    let mut r = secondary(config(8));
    let out = step(&mut r, T0, at(1, "3", Body::JoinRequest));
    assert_eq!(out, ["send 3 <- 2@1: Join(learn port 2, log from 0, checkpoint 0)"]);
    assert!(step(&mut r, T0, at(2, "3", Body::JoinRequest)).is_empty(), "not our configuration");
    let join = Body::Join {
        decree: Decree(9),
        learn_port: 7,
        min_decree_in_log: Decree(1),
        checkpointed_decree: Decree(0),
        checkpoint_size: 0,
    };
    assert!(step(&mut r, T0, at(1, "3", join.clone())).is_empty(), "a Join of our own configuration");
    assert_eq!(step(&mut r, T0, at(2, "4", join)), ["fetch votes from 4 at 1"]);
    assert_eq!(r.configuration().number, 1, "it learns its way into the new configuration");

    let mut r = secondary(config(8));
    assert!(
        step(&mut r, T0, at(0, "3", Body::Defunct)).is_empty(),
        "an older configuration is dead: news to no one"
    );
    assert_eq!(step(&mut r, T0, at(1, "3", Body::Defunct)), ["fetch votes from 3 at 1"]);
}

/// A replica outside the set (removed from it, say) still answers a JoinRequest of the
/// configuration it knows: the members of a new set may all be new, and learn from it.
#[test]
fn a_replica_outside_the_set_answers_join_requests_with_its_learn_port() {
    let me = Member { learn_port: 4242, ..member("4") };
    let mut r =
        Replica::new(&me, config(8), configuration(&["1", "2", "3"]), Recovered::default(), 7, T0).unwrap();
    assert_eq!(r.state(), State::Inactive);
    let request = Input::Message(Message { from: id("1"), configuration: 1, body: Body::JoinRequest });
    let out = step(&mut r, T0, request);
    let joins: Vec<&String> = out.iter().filter(|a| a.contains("Join")).collect();
    assert_eq!(joins, ["send 1 <- 4@1: Join(learn port 4242, log from 0, checkpoint 0)"], "{out:?}");
}

/// Legacy's TestNewConfigOldBallot: "3" proposes {3} at decree 2 and decides it alone; "1"
/// re-proposes the same change under a higher ballot, which this replica accepts, but no
/// decision reaches it. Later {3} changes to {2, 3} and tells it: it learns decree 2 from
/// "3"'s journal, where the change carries the older ballot, and still reaches the new
/// configuration.
#[test]
fn a_change_learned_under_an_older_ballot_than_the_one_held_still_moves_on() {
    let mut r = secondary(config(8));
    // Decree 1's proof came under another ballot than the one it holds: it learns it from "3".
    let out = step(&mut r, T0, vote_msg(&reconfiguration(2, &ballot(2, "3"), 1, &["3"])));
    assert_eq!(out, ["persist #2 vote 2 <2,3>", "fetch votes from 3 at 1"]);
    step(&mut r, T0, vote_msg(&reconfiguration(2, &ballot(3, "1"), 1, &["3"])));
    persist_all(&mut r, T0);
    assert_eq!(r.configuration().number, 1);
    let query = Body::StatusQuery { decree: Decree(3), ballot: ballot(4, "3") };
    let out = step(&mut r, T0, Input::Message(Message { from: id("3"), configuration: 3, body: query }));
    assert!(out[0].starts_with("send 3 <- 2@1: StatusResponse("), "already learning from 3: {out:?}");
    let in_two = Arc::new(Vote {
        configuration: 2,
        ..Vote::clone(&reconfiguration(3, &ballot(4, "3"), 2, &["2", "3"]))
    });
    let votes =
        vec![vote(1, &ballot(1, "1"), 0, &["a"]), reconfiguration(2, &ballot(2, "3"), 1, &["3"]), in_two];
    let out = step(&mut r, T0, Input::Learned { from: id("3"), votes });
    let executed: Vec<&String> = out.iter().filter(|l| l.starts_with("execute")).collect();
    assert_eq!(executed, ["execute 1 (1 requests)", "execute 2 (0 requests)", "execute 3 (0 requests)"]);
    let c = r.configuration();
    assert_eq!((c.number, c.members.clone()), (3, set(&["2", "3"])));
    assert_eq!(r.state(), State::Initializing);
}
