//! Properties of the core's building blocks, over random inputs: the legacy order of
//! member ids and ballots, quorum intersection, the acceptor's rules under random message
//! sequences, and the soundness of `chosen_votes` on random journals.

mod common;

use common::*;
use proptest::prelude::*;
use rsl_core::paxos::{
    chosen_votes, Action, Ballot, Body, Decree, Input, MemberId, MemberSet, Record, Token, Vote,
};
use std::cmp::Ordering;
use std::sync::Arc;

fn member_id() -> impl Strategy<Value = MemberId> {
    "[a-c0-9AB]{0,4}".prop_map(|s| MemberId::new(&s).unwrap())
}

fn any_ballot() -> impl Strategy<Value = Ballot> {
    (0u32..4, member_id()).prop_map(|(n, m)| Ballot::new(n, m))
}

#[test]
fn member_ids_order_shorter_first_then_bytewise() {
    assert!(id("9") < id("10"));
    assert!(id("B") < id("AA"));
    assert!(MemberId::default() < id("0"));
    assert!(ballot(1, "10") > ballot(1, "9"));
    assert!(ballot(2, "1") > ballot(1, "99"));
    assert!(Ballot::default().is_empty() && Ballot::default() < ballot(0, "1"));
}

proptest! {
    #[test]
    fn member_id_order_is_the_legacy_total_order(a in member_id(), b in member_id(), c in member_id()) {
        let model = |x: &MemberId, y: &MemberId| {
            x.as_str().len().cmp(&y.as_str().len()).then(x.as_str().as_bytes().cmp(y.as_str().as_bytes()))
        };
        prop_assert_eq!(a.cmp(&b), model(&a, &b));
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a.cmp(&b) == Ordering::Equal, a == b);
        prop_assert_eq!(a.partial_cmp(&b), Some(a.cmp(&b)));
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
    }

    #[test]
    fn ballot_order_is_number_then_member(a in any_ballot(), b in any_ballot(), c in any_ballot()) {
        prop_assert_eq!(a.cmp(&b), a.number.cmp(&b.number).then(a.member.cmp(&b.member)));
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a.cmp(&b) == Ordering::Equal, a == b);
        if a <= b && b <= c {
            prop_assert!(a <= c);
        }
    }
}

#[test]
fn any_two_quorums_intersect_and_smaller_sets_need_not() {
    for n in 1..=9usize {
        let ids: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let quorum = MemberSet::of_ids(&refs).unwrap().quorum();
        assert_eq!(quorum, n / 2 + 1);
        let quorums: Vec<u32> = (0u32..1 << n).filter(|s| s.count_ones() as usize >= quorum).collect();
        for a in &quorums {
            for b in &quorums {
                assert_ne!(a & b, 0, "n={n}: quorums {a:b} and {b:b} are disjoint");
            }
        }
        // Tight: two disjoint sets of quorum − 1 members exist once n ≥ 2.
        if n >= 2 {
            let half = (1u32 << (quorum - 1)) - 1;
            assert!(2 * (quorum - 1) <= n && half & (half << (quorum - 1)) == 0);
        }
    }
}

/// One input from a random peer ("1" or "3") to the replica under test.
#[derive(Clone, Debug)]
enum Op {
    Vote {
        peer: bool,
        number: u32,
        decree: u64,
        lag: u64,
        value: u8,
    },
    Prepare {
        peer: bool,
        number: u32,
        passed: u64,
    },
    /// Report durable up to `durable + k` (capped at what was issued).
    Persist {
        k: u64,
    },
    Tick {
        advance_ms: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (any::<bool>(), 0u32..6, 1u64..10, 0u64..6, 0u8..3)
            .prop_map(|(peer, number, decree, lag, value)| Op::Vote { peer, number, decree, lag, value }),
        1 => (any::<bool>(), 0u32..6, 0u64..6).prop_map(|(peer, number, passed)| Op::Prepare { peer, number, passed }),
        3 => (1u64..4).prop_map(|k| Op::Persist { k }),
        1 => (0u64..4000).prop_map(|advance_ms| Op::Tick { advance_ms }),
    ]
}

fn input(op: &Op) -> Option<Input> {
    let peer = |p: bool| if p { "1" } else { "3" };
    match op {
        Op::Vote { peer: p, number, decree, lag, value } => {
            let passed = decree.saturating_sub(1 + lag);
            Some(vote_msg(&vote(*decree, &ballot(*number, peer(*p)), passed, &[&value.to_string()])))
        }
        Op::Prepare { peer: p, number, passed } => Some(msg(
            peer(*p),
            Body::Prepare {
                decree: Decree(*passed + 1),
                passed: Decree(*passed),
                ballot: ballot(*number, peer(*p)),
                primary_cookie: bytes::Bytes::new(),
            },
        )),
        Op::Persist { .. } | Op::Tick { .. } => None,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random votes, prepares, persist completions and time to one secondary: it never
    /// reveals a record before it is durable, never accepts below its promise, holds at
    /// most `window` votes above `passed`, and its promise and `passed` never go back.
    #[test]
    fn acceptor_rules_hold_under_random_inputs(window in 1u64..5, ops in prop::collection::vec(op(), 1..60)) {
        let mut r = secondary(config(window));
        let mut now = T0;
        let (mut issued, mut durable) = (Token(1), Token(1));
        let mut journal: Vec<(Token, Record)> = vec![];
        for op in &ops {
            let before = r.pointers();
            let result = match op {
                Op::Persist { k } => {
                    let token = Token((durable.0 + k).min(issued.0));
                    let result = r.step(now, Input::Persisted(token));
                    durable = durable.max(token);
                    result
                }
                Op::Tick { advance_ms } => {
                    now += advance_ms * 1000;
                    r.step(now, Input::Tick)
                }
                _ => r.step(now, input(op).unwrap()),
            };
            prop_assert!(result.is_ok() || matches!(op, Op::Vote { .. } | Op::Prepare { .. }), "{result:?}");
            let after = r.pointers();
            for action in r.drain_actions() {
                match action {
                    Action::Persist { token, record } => {
                        if let (Record::Vote(v), Op::Vote { .. }) = (&record, op) {
                            prop_assert!(v.ballot >= before.max_ballot, "accepted {} below promise {}", v.ballot, before.max_ballot);
                        }
                        issued = issued.max(token);
                        journal.push((token, record));
                    }
                    Action::Send { message, .. } => match message.body {
                        Body::VoteAccepted { decree, ballot, .. } => prop_assert!(
                            journal.iter().any(|(t, rec)| *t <= durable
                                && matches!(rec, Record::Vote(v) if v.decree == decree && v.ballot == ballot)),
                            "VoteAccepted({decree} {ballot}) before its record is durable"
                        ),
                        Body::PrepareAccepted { ballot, .. } => prop_assert!(
                            journal.iter().any(|(t, rec)| *t <= durable && *rec == Record::Promise(ballot.clone())),
                            "PrepareAccepted({ballot}) before its promise is durable"
                        ),
                        _ => {}
                    },
                    _ => {}
                }
            }
            prop_assert!(after.max_ballot >= before.max_ballot);
            prop_assert!(after.passed >= before.passed);
            prop_assert!(after.max_accepted <= after.passed.plus(window), "{after:?} window {window}");
        }
    }
}

/// A random journal record: a vote for `decree` under `(number, member)`, with a watermark
/// `lag` below its decree (a learned vote's watermark equals its decree: lag −1).
fn record() -> impl Strategy<Value = Record> {
    (1u64..9, 0u32..4, prop::sample::select(vec!["1", "2", "3"]), 0u64..5, any::<bool>(), 0u8..2).prop_map(
        |(decree, number, member, lag, learned, value)| {
            let passed = if learned { decree } else { decree.saturating_sub(1 + lag) };
            Record::Vote(vote(decree, &ballot(number, member), passed, &[&value.to_string()]))
        },
    )
}

/// `v` is the highest-ballot record of its decree and some record's watermark covers it
/// under a ballot no higher than `v`'s.
fn provable(records: &[&Arc<Vote>], decree: Decree) -> bool {
    let Some(best) = records.iter().filter(|v| v.decree == decree).map(|v| &v.ballot).max() else {
        return false;
    };
    records.iter().any(|r| r.passed >= decree && r.ballot <= *best)
}

proptest! {
    #[test]
    fn chosen_votes_returns_only_proven_decrees_contiguously(
        records in prop::collection::vec(record(), 0..24),
        after in 0u64..4,
    ) {
        let votes: Vec<&Arc<Vote>> = records.iter().filter_map(|r| match r { Record::Vote(v) => Some(v), _ => None }).collect();
        let chosen = chosen_votes(&records, Decree(after));
        for (i, v) in chosen.iter().enumerate() {
            prop_assert_eq!(v.decree, Decree(after + 1 + i as u64), "not contiguous from {}", after + 1);
            prop_assert!(votes.iter().any(|r| Arc::ptr_eq(r, v)), "not a journal record");
            let best = votes.iter().filter(|r| r.decree == v.decree).map(|r| &r.ballot).max().unwrap();
            prop_assert_eq!(&v.ballot, best, "not the highest ballot of decree {}", v.decree);
            prop_assert!(provable(&votes, v.decree), "decree {} returned without a covering watermark", v.decree);
        }
        // And it stops only where the proof stops.
        let next = Decree(after + 1 + chosen.len() as u64);
        prop_assert!(!provable(&votes, next), "stopped before provable decree {next}");
    }
}
