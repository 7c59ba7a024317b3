//! The shared-memory transport: three replicas' transports in one directory exchange
//! messages in both directions; a message much larger than the ring passes in fragments;
//! a receiver that is not there yet holds messages back up to the bound and then gets
//! them; a restarted side starts a new session and traffic resumes; under load the ring
//! wraps hundreds of times without loss or reordering; a message in the wrong peer's ring
//! is refused. (The multi-process failover runs in `tests/node_failover.rs`.)

use bytes::Bytes;
use rsl_core::paxos::{Ballot, Body, Decree, Member, MemberId, MemberSet, Message, Vote, VoteBody};
use rsl_core::transport::{start_shm, RingTransport, SendError, Transport, TransportConfig};
use rsl_core::wire::Version;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(20);
const RING: u64 = 64 << 10;

fn id(s: &str) -> MemberId {
    MemberId::new(s).unwrap()
}

fn members() -> MemberSet {
    let members = ["1", "2", "3"].iter().map(|n| Member::named(n).unwrap()).collect();
    MemberSet::new(members, Bytes::new()).unwrap()
}

fn dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rsl-shm-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn start(me: &str, dir: &Path) -> RingTransport {
    let config = TransportConfig {
        max_outstanding_per_replica: 64,
        ..TransportConfig::new(id(me), members(), Version::V7)
    };
    start_shm(&config, dir, RING).unwrap()
}

/// A vote from `from` for `decree` carrying `len` bytes.
fn vote(from: &str, decree: u64, len: usize) -> Message {
    let mut v = Vote::empty(Decree(decree), Ballot::new(1, id(from)), 1, Decree(decree - 1));
    v.body = VoteBody::Requests(vec![Bytes::from(vec![(decree % 251) as u8; len.max(1)])]);
    Message { from: id(from), configuration: 1, body: Body::Vote(Arc::new(v)) }
}

fn recv(t: &RingTransport) -> Message {
    t.events().recv_timeout(WAIT).expect("a message within the deadline").1
}

fn decree(m: &Message) -> u64 {
    match &m.body {
        Body::Vote(v) => v.decree.0,
        other => panic!("not a vote: {other:?}"),
    }
}

#[test]
fn messages_cross_both_ways_and_large_ones_pass_in_fragments() {
    let dir = dir("basic");
    let (one, two, three) = (start("1", &dir), start("2", &dir), start("3", &dir));
    one.send(&id("2"), &vote("1", 1, 10)).unwrap();
    assert_eq!(recv(&two), vote("1", 1, 10));
    two.send(&id("1"), &vote("2", 2, 10)).unwrap();
    three.send(&id("1"), &vote("3", 3, 10)).unwrap();
    let mut got: Vec<u64> = (0..2).map(|_| decree(&recv(&one))).collect();
    got.sort();
    assert_eq!(got, [2, 3]);
    // 1 MiB through a 64 KiB ring: fragments, credits and the poller's retries.
    let big = vote("1", 9, 1 << 20);
    one.send(&id("3"), &big).unwrap();
    assert_eq!(recv(&three), big);
    assert!(matches!(one.send(&id("9"), &big), Err(SendError::UnknownPeer(_))));
}

#[test]
fn a_late_receiver_gets_what_waited_and_a_full_queue_refuses() {
    let dir = dir("late");
    let one = start("1", &dir);
    for d in 1..=64 {
        one.send(&id("2"), &vote("1", d, 100)).unwrap();
    }
    assert_eq!(one.send(&id("2"), &vote("1", 65, 100)), Err(SendError::QueueFull));
    let two = start("2", &dir);
    for d in 1..=64 {
        assert_eq!(decree(&recv(&two)), d, "in order, none lost");
    }
}

#[test]
fn after_either_side_restarts_traffic_resumes_in_a_new_session() {
    let dir = dir("restart");
    let (one, mut two) = (start("1", &dir), start("2", &dir));
    one.send(&id("2"), &vote("1", 1, 10)).unwrap();
    assert_eq!(decree(&recv(&two)), 1);
    two.stop();
    drop(two);
    let two = start("2", &dir); // the receiver restarts
    let mut next = 2;
    // Messages sent around the restart may be lost (as on a broken connection); the
    // sender keeps sending until one arrives, then all later ones arrive in order.
    let first = loop {
        one.send(&id("2"), &vote("1", next, 10)).unwrap();
        next += 1;
        if let Ok((_, m)) = two.events().recv_timeout(Duration::from_millis(50)) {
            break decree(&m);
        }
    };
    assert!(first >= 2);
    two.send(&id("1"), &vote("2", 100, 10)).unwrap();
    assert_eq!(decree(&recv(&one)), 100);
    let mut one = one;
    one.stop();
    drop(one);
    let one = start("1", &dir); // the sender restarts
    one.send(&id("2"), &vote("1", 200, 10)).unwrap();
    loop {
        let d = decree(&recv(&two));
        if d == 200 {
            break;
        }
        assert!(d < 200, "only older messages before the new one");
    }
}

#[test]
fn under_load_the_ring_wraps_hundreds_of_times_in_order() {
    let dir = dir("load");
    let (one, two) = (start("1", &dir), start("2", &dir));
    let receiver = std::thread::spawn(move || {
        let mut expected = 1;
        while expected <= 20_000 {
            let d = decree(&recv(&two));
            assert_eq!(d, expected, "in order, none lost");
            expected += 1;
        }
    });
    let mut d = 1;
    while d <= 20_000 {
        match one.send(&id("2"), &vote("1", d, 1 + (d as usize * 37) % 3000)) {
            Ok(()) => d += 1,
            Err(SendError::QueueFull) => std::thread::yield_now(), // back-pressure: retry
            Err(e) => panic!("{e}"),
        }
    }
    receiver.join().unwrap();
}

#[test]
fn a_message_in_the_wrong_peers_ring_is_refused() {
    let dir = dir("wrong-peer");
    let (one, two) = (start("1", &dir), start("2", &dir));
    one.send(&id("2"), &vote("3", 1, 10)).unwrap(); // claims to be from 3, in 1's ring
    one.send(&id("2"), &vote("1", 2, 10)).unwrap();
    assert_eq!(decree(&recv(&two)), 2, "the forged one was dropped");
}

#[test]
fn a_ring_of_another_size_is_refused_at_start() {
    let dir = dir("size");
    let _one = start("1", &dir);
    let config = TransportConfig::new(id("2"), members(), Version::V7);
    let err = start_shm(&config, &dir, 2 * RING).err().expect("refused").to_string();
    assert!(err.contains("another ring size"), "{err}");
}
