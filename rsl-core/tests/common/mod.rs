//! Shared setup for the engine tests: one replica, member "2" of {"1","2","3"} in
//! configuration 1 (the legacy RslStateMachine layout), driven into a named state with the
//! same messages a peer would send. Every helper drains the actions it caused, so a test
//! sees only what its own input produced.
#![allow(dead_code)] // each test binary uses a different subset of the helpers

use bytes::Bytes;
use rsl_core::paxos::{
    Action, Ballot, Body, Config, Configuration, Decree, Input, Member, MemberId, MemberSet, Message,
    Recovered, Replica, State, Status, Token, Vote, VoteBody,
};
use std::sync::Arc;

/// The replica under test.
pub const ME: &str = "2";
/// Start time of every scenario (µs).
pub const T0: u64 = 1_000_000;

pub fn id(s: &str) -> MemberId {
    MemberId::new(s).unwrap()
}

/// Member `s` as a set built from ids names it.
pub fn member(s: &str) -> Member {
    Member::named(s).unwrap()
}

pub fn ballot(number: u32, member: &str) -> Ballot {
    Ballot::new(number, id(member))
}

/// Legacy defaults with the given window and no election jitter, so timers are exact.
pub fn config(window: u64) -> Config {
    Config { window, election_randomize_pct: 0, ..Config::default() }
}

pub fn configuration(ids: &[&str]) -> Configuration {
    Configuration { number: 1, initial_decree: Decree(1), members: MemberSet::of_ids(ids).unwrap() }
}

pub fn vote(decree: u64, b: &Ballot, passed: u64, requests: &[&str]) -> Arc<Vote> {
    let requests = requests.iter().map(|r| Bytes::copy_from_slice(r.as_bytes())).collect();
    Arc::new(Vote {
        body: VoteBody::Requests(requests),
        ..Vote::empty(Decree(decree), b.clone(), 1, Decree(passed))
    })
}

pub fn msg(from: &str, body: Body) -> Input {
    Input::Message(Message { from: id(from), configuration: 1, body })
}

pub fn vote_msg(v: &Arc<Vote>) -> Input {
    msg(v.ballot.member.as_str(), Body::Vote(Arc::clone(v)))
}

/// A StatusResponse from a peer whose latest vote is (decree, b), passed `passed`, and
/// whose promise is `max_ballot`, answering our query (query_decree, query_ballot).
pub fn status(query: (u64, &Ballot), decree: u64, b: &Ballot, passed: u64, max_ballot: &Ballot) -> Body {
    Body::StatusResponse(Box::new(Status {
        query_decree: Decree(query.0),
        query_ballot: query.1.clone(),
        decree: Decree(decree),
        ballot: b.clone(),
        passed: Decree(passed),
        last_received_ago_ms: -1,
        min_decree_in_log: Decree(0),
        checkpointed_decree: Decree(0),
        checkpoint_size: 0,
        max_ballot: max_ballot.clone(),
        state: State::Secondary,
    }))
}

/// Steps one input and returns the drained actions as trace lines.
pub fn step(r: &mut Replica, now: u64, input: Input) -> Vec<String> {
    r.step(now, input).unwrap();
    trace(&r.drain_actions())
}

pub fn trace(actions: &[Action]) -> Vec<String> {
    actions.iter().map(ToString::to_string).collect()
}

/// Reports every record issued so far durable.
pub fn persist_all(r: &mut Replica, now: u64) -> Vec<String> {
    let issued = (1..).take_while(|t| r.step(now, Input::Persisted(Token(*t))).is_ok()).count();
    assert!(issued < 1000, "token loop ran away");
    trace(&r.drain_actions())
}

/// A fresh replica of `ids`: StatusQuery already sent (Initializing, unless alone).
pub fn fresh(ids: &[&str], config: Config) -> Replica {
    let mut r = Replica::new(&member(ME), config, configuration(ids), Recovered::default(), 7, T0).unwrap();
    let _ = r.drain_actions();
    r
}

/// `secondary` whose election timer fired: Initializing, StatusQuery(1 <1,1>) sent; its
/// clock stands at T0 + election delay (an earlier `now` is held there).
pub fn initializing(config: Config) -> Replica {
    let delay = config.election_delay_us;
    let mut r = secondary(config);
    let at = r.next_deadline();
    assert_eq!(at, T0 + delay);
    step(&mut r, at, Input::Tick);
    assert_eq!(r.state(), State::Initializing);
    r
}

/// Secondary of primary "1" under ballot <1,1>, having accepted decree 1 (passed 0).
pub fn secondary(config: Config) -> Replica {
    let mut r = fresh(&["1", "2", "3"], config);
    let empty = Ballot::default();
    step(&mut r, T0, msg("1", status((0, &empty), 0, &empty, 0, &empty)));
    step(&mut r, T0, vote_msg(&vote(1, &ballot(1, "1"), 0, &["a"])));
    persist_all(&mut r, T0);
    assert_eq!((r.state(), r.pointers().max_accepted), (State::Secondary, Decree(1)));
    r
}

/// `secondary` that then promised <11,3> to candidate "3" (ballot 10 above the accepted one).
pub fn secondary_prepared(config: Config) -> Replica {
    let mut r = secondary(config);
    let prepare = Body::Prepare {
        decree: Decree(1),
        passed: Decree(0),
        ballot: ballot(11, "3"),
        primary_cookie: Bytes::new(),
    };
    step(&mut r, T0, msg("3", prepare));
    persist_all(&mut r, T0);
    assert_eq!(r.pointers().max_ballot, ballot(11, "3"));
    r
}

/// `secondary` that started its own election: Preparing ballot <2,2>, promise durable.
pub fn preparing(config: Config) -> Replica {
    let mut r = secondary(config);
    step(&mut r, T0, Input::AttemptPromotion);
    let b = ballot(1, "1");
    step(&mut r, T0, msg("1", status((1, &b), 1, &b, 0, &b)));
    step(&mut r, T0, Input::CanBecomePrimary(Some(Bytes::new())));
    persist_all(&mut r, T0);
    assert_eq!((r.state(), r.pointers().max_ballot.clone()), (State::Preparing, ballot(2, ME)));
    r
}

/// `preparing` that won: primary under <2,2>, decree 1 re-proposed, chosen and executed by
/// the application; `is_primary()` holds.
pub fn primary(config: Config) -> Replica {
    let mut r = preparing(config);
    let b = ballot(2, ME);
    step(
        &mut r,
        T0,
        msg(
            "1",
            Body::PrepareAccepted {
                decree: Decree(1),
                ballot: b.clone(),
                watermark: Decree(0),
                votes: vec![],
            },
        ),
    );
    step(&mut r, T0, msg("1", Body::VoteAccepted { decree: Decree(1), ballot: b, payload: 0 }));
    persist_all(&mut r, T0);
    step(&mut r, T0, Input::Executed(Decree(1)));
    assert!(r.is_primary());
    r
}
