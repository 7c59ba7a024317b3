//! Bootstrap (legacy §4.7, §6.10 BootstrapByMessage / BootstrapByAPI): a replica of
//! configuration 0 waits, inactive, until the API or a member's Bootstrap message gives it
//! the first set; it persists the set before anything else, and refuses sets it cannot
//! take with legacy's codes. Here "2" is bootstrapped into {"1","2","3"}.

mod common;

use common::*;
use rsl_core::paxos::{
    Action, Body, Configuration, Decree, Input, InvalidInput, MemberSet, Message, Recovered, Replica, State,
};

fn set(ids: &[&str]) -> MemberSet {
    MemberSet::of_ids(ids).unwrap()
}

fn waiting() -> Replica {
    let zero = Configuration { number: 0, initial_decree: Decree(0), members: MemberSet::default() };
    let mut r = Replica::new(&member(ME), config(8), zero, Recovered::default(), 7, T0).unwrap();
    assert_eq!(r.drain_actions(), []);
    r
}

fn bootstrap_msg(from: &str, ids: &[&str]) -> Input {
    Input::Message(Message { from: id(from), configuration: 0, body: Body::Bootstrap(set(ids)) })
}

#[test]
fn a_replica_of_configuration_zero_waits_inactive() {
    let mut r = waiting();
    assert_eq!((r.state(), r.configuration().number, r.is_bootstrapped()), (State::Inactive, 0, false));
    assert_eq!(r.next_deadline(), u64::MAX);
    // Votes of configuration 1 do not make it learn (it lacks the set): it answers with
    // its status, so a member can bootstrap it, then asks to join (legacy's answer).
    let out = step(&mut r, T0, vote_msg(&vote(5, &ballot(2, "1"), 4, &["x"])));
    assert_eq!(out.len(), 2);
    assert!(out[0].starts_with("send 1 <- 2@0: StatusResponse("), "{out:?}");
    assert_eq!(out[1], "send 1 <- 2@1: JoinRequest");
}

#[test]
fn a_bootstrap_message_from_a_member_of_its_set_starts_configuration_one() {
    let mut r = waiting();
    let out = step(&mut r, T0, bootstrap_msg("1", &["1", "2", "3"]));
    assert_eq!(
        out,
        [
            "persist bootstrap of 3 members",
            "send 1 <- 2@1: StatusQuery(0 <0,>)",
            "send 3 <- 2@1: StatusQuery(0 <0,>)"
        ]
    );
    let c = r.configuration();
    assert_eq!((c.number, c.initial_decree, c.members.clone()), (1, Decree(1), set(&["1", "2", "3"])));
    assert_eq!(r.state(), State::Initializing);
}

#[test]
fn bootstrap_messages_that_cannot_be_taken_change_nothing() {
    let mut r = waiting();
    // From outside the set it names: refused (legacy took it from anyone).
    assert_eq!(r.step(T0, bootstrap_msg("9", &["1", "2", "3"])), Err(InvalidInput::UnknownMember(id("9"))));
    // A set without us: ignored.
    assert!(step(&mut r, T0, bootstrap_msg("1", &["1", "3"])).is_empty());
    assert_eq!(r.configuration().number, 0);
    // Once bootstrapped, another set by message is ignored too.
    step(&mut r, T0, bootstrap_msg("1", &["1", "2", "3"]));
    assert!(step(&mut r, T0, bootstrap_msg("1", &["1", "2"])).is_empty());
    assert_eq!(r.configuration().members, set(&["1", "2", "3"]));
}

#[test]
fn the_bootstrap_call_returns_legacy_codes() {
    let mut r = waiting();
    let call = |ids: &[&str]| Input::Bootstrap(set(ids));
    assert_eq!(
        r.step(T0, call(&["1", "3"])),
        Err(InvalidInput::BootstrapFailed("this replica is not in the set"))
    );
    assert_eq!(r.configuration().number, 0);
    let out = step(&mut r, T0, call(&["1", "2", "3"]));
    assert_eq!(out[0], "persist bootstrap of 3 members");
    assert_eq!(out[3..], ["send 1 <- 2@0: Bootstrap(3 members)", "send 3 <- 2@0: Bootstrap(3 members)"]);
    // Asked again with the same set before any vote: it tells the members again.
    assert_eq!(
        step(&mut r, T0, call(&["1", "2", "3"])),
        ["send 1 <- 2@0: Bootstrap(3 members)", "send 3 <- 2@0: Bootstrap(3 members)"]
    );
    assert_eq!(
        r.step(T0, call(&["1", "2", "4"])),
        Err(InvalidInput::BootstrapFailed("another set was bootstrapped"))
    );
    // The first primary's vote makes it bootstrapped.
    let b = ballot(1, "1");
    step(&mut r, T0, msg("1", status((0, &Default::default()), 0, &Default::default(), 0, &b)));
    step(&mut r, T0, vote_msg(&vote(1, &b, 0, &[])));
    assert!(r.is_bootstrapped());
    assert_eq!(r.step(T0, call(&["1", "2", "3"])), Err(InvalidInput::AlreadyBootstrapped));
}

#[test]
fn a_member_that_missed_the_bootstrap_is_sent_it_again() {
    let mut r = secondary(config(8));
    let status = status((0, &Default::default()), 0, &Default::default(), 0, &Default::default());
    let out = step(&mut r, T0, Input::Message(Message { from: id("3"), configuration: 0, body: status }));
    assert_eq!(out, ["send 3 <- 2@0: Bootstrap(3 members)"]);
}

/// Legacy's TestReplicaJoinClusterLater: never bootstrapped, it hears from configuration
/// 3 (whose set it cannot know), asks the sender to Join it (once per retry period), and
/// on the Join copies the sender's checkpoint; the driver restarts it on that copy.
#[test]
fn a_replica_never_bootstrapped_asks_a_later_configuration_to_join_it_and_copies_a_checkpoint() {
    let mut r = waiting();
    let from_three =
        |from: &str, body: Body| Input::Message(Message { from: id(from), configuration: 3, body });
    let vote = vote_msg(&vote(40, &ballot(2, "1"), 39, &["x"]));
    let Input::Message(Message { body: vote_body, .. }) = vote else { unreachable!() };
    assert_eq!(step(&mut r, T0, from_three("1", vote_body.clone())), ["send 1 <- 2@3: JoinRequest"]);
    let retry = config(8).initialize_retry_us;
    assert!(step(&mut r, T0 + retry - 1, from_three("1", vote_body.clone())).is_empty(), "once per retry");
    let query = Body::StatusQuery { decree: Decree(40), ballot: ballot(2, "1") };
    let out = step(&mut r, T0 + retry, from_three("3", query));
    assert_eq!(out[0], "send 3 <- 2@3: JoinRequest", "a status query of a later configuration asks too");
    let join = Body::Join {
        decree: Decree(30),
        learn_port: 4001,
        min_decree_in_log: Decree(31),
        checkpointed_decree: Decree(35),
        checkpoint_size: 0,
    };
    let out = r.step(T0 + retry, from_three("3", join));
    assert_eq!(out, Ok(()));
    assert_eq!(
        r.drain_actions(),
        [Action::CopyCheckpoint { from: id("3"), learn_port: 4001, decree: Decree(35) }]
    );
    assert_eq!((r.state(), r.configuration().number), (State::Inactive, 0), "the restart changes it");
}
