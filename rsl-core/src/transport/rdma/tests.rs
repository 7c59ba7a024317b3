//! The RDMA medium against a fake of the verbs that is as adversarial as RC allows: writes
//! are placed late, and those before a completion in any order; a tail write may be placed
//! before the frames it publishes (but its completion comes only after them); a link can
//! fail, losing what was in flight, and come back with a new queue pair.

use super::*;
use crate::paxos::{Ballot, Body, Decree, Member, MemberSet, Message, Vote, VoteBody};
use crate::transport::{SendError, Transport};
use crate::wire::Version;
use bytes::Bytes;
use std::collections::VecDeque;

const RING: u64 = 64 << 10;
const WAIT: Duration = Duration::from_secs(20);

struct Op {
    remote: usize,
    bytes: Vec<u8>,
    imm: Option<u32>,
}

/// One direction of a fake queue pair: posted writes not yet placed.
#[derive(Default)]
struct Wire {
    ops: Mutex<VecDeque<Op>>,
    broken: AtomicBool,
}

struct FakeVerbs {
    memory: Arc<Shared>,
    out: Arc<Wire>,
    inbound: Arc<Wire>,
    rng: u64,
}

impl FakeVerbs {
    fn random(&mut self, below: usize) -> usize {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        (self.rng % below as u64) as usize
    }

    fn place(&self, op: &Op) {
        if op.bytes.len() == 8 {
            self.memory.store(op.remote, u64::from_le_bytes(op.bytes[..].try_into().unwrap()));
            return;
        }
        assert!(op.remote + op.bytes.len() <= self.memory.map.len(), "a write past the buffer");
        // SAFETY: in bounds (checked above); ring bytes are read only below a completed tail.
        unsafe {
            std::ptr::copy_nonoverlapping(
                op.bytes.as_ptr(),
                self.memory.map.as_mut_ptr().add(op.remote),
                op.bytes.len(),
            )
        };
    }
}

impl Verbs for FakeVerbs {
    fn write(&mut self, local: usize, remote: usize, len: usize, imm: Option<u32>) -> Result<(), String> {
        if self.out.broken.load(Ordering::Acquire) {
            return Err("fake queue pair in error state".into());
        }
        assert!(local + len <= self.memory.map.len() && len > 0);
        let mut bytes = vec![0; len];
        // SAFETY: in bounds (asserted); a posted buffer is not rewritten until the peer
        // returns it, as with a real NIC reading it later.
        unsafe {
            std::ptr::copy_nonoverlapping(self.memory.map.as_ptr().add(local), bytes.as_mut_ptr(), len)
        };
        self.out.ops.lock().push_back(Op { remote, bytes, imm });
        Ok(())
    }

    fn poll(&mut self, imms: &mut Vec<u32>) -> Result<(), String> {
        if self.inbound.broken.load(Ordering::Acquire) {
            return Err("fake queue pair in error state".into());
        }
        let wire = Arc::clone(&self.inbound);
        let mut ops = wire.ops.lock();
        let n = self.random(ops.len() + 1);
        let mut done: Vec<Op> = ops.drain(..n).collect();
        // Placed in any order, except that writes of one word keep theirs.
        let (mut words, mut bytes): (Vec<Op>, Vec<Op>) = done.drain(..).partition(|op| op.imm.is_some());
        for i in (1..bytes.len()).rev() {
            bytes.swap(i, self.random(i + 1));
        }
        bytes.iter().for_each(|op| self.place(op));
        words.iter().for_each(|op| self.place(op));
        imms.extend(words.drain(..).filter_map(|op| op.imm));
        // A write with immediate not yet completed may already be placed.
        if self.random(3) == 0 {
            if let Some(early) = ops.iter().find(|op| op.imm.is_some()) {
                self.place(early);
            }
        }
        Ok(())
    }
}

fn id(s: &str) -> MemberId {
    MemberId::new(s).unwrap()
}

fn config(me: &str, n: usize) -> TransportConfig {
    let names = ["1", "2", "3"];
    let members = names[..n].iter().map(|n| Member::named(n).unwrap()).collect();
    let members = MemberSet::new(members, Bytes::new()).unwrap();
    TransportConfig { max_outstanding_per_replica: 64, ..TransportConfig::new(id(me), members, Version::V7) }
}

/// Brings up a fake queue pair between two links (each the other's peer).
fn connect(a: &Link, b: &Link, seed: u64) {
    let (ab, ba) = (Arc::new(Wire::default()), Arc::new(Wire::default()));
    let fake = |link: &Link, out: &Arc<Wire>, inbound: &Arc<Wire>, rng| FakeVerbs {
        memory: Arc::clone(&link.memory),
        out: Arc::clone(out),
        inbound: Arc::clone(inbound),
        rng,
    };
    a.up(Box::new(fake(a, &ab, &ba, seed | 1)));
    b.up(Box::new(fake(b, &ba, &ab, (seed << 1) | 1)));
}

type Pair = (Arc<Link>, Arc<Link>);

/// `n` replicas' transports, fully connected; and each pair's links.
fn cluster(n: usize, seed: u64) -> (Vec<RingTransport>, Vec<Pair>) {
    let names = ["1", "2", "3"];
    let mut links: Vec<Vec<Arc<Link>>> = vec![Vec::new(); n];
    let mut pairs = Vec::new();
    for a in 0..n {
        for b in a + 1..n {
            let ab = Arc::new(Link::new(id(names[b]), RING).unwrap());
            let ba = Arc::new(Link::new(id(names[a]), RING).unwrap());
            links[a].push(Arc::clone(&ab));
            links[b].push(Arc::clone(&ba));
            pairs.push((ab, ba));
        }
    }
    let transports = links.into_iter().enumerate().map(|(i, links)| {
        let peers = links.iter().map(peer_lines).collect();
        start_over(&config(names[i], n), peers, links, None).unwrap()
    });
    let transports = transports.collect();
    for (i, (ab, ba)) in pairs.iter().enumerate() {
        connect(ab, ba, seed + i as u64 * 7919);
    }
    (transports, pairs)
}

fn vote(from: &str, decree: u64, len: usize) -> Message {
    let mut v = Vote::empty(Decree(decree), Ballot::new(1, id(from)), 1, Decree(decree - 1));
    v.body = VoteBody::Requests(vec![Bytes::from(vec![(decree % 251) as u8; len.max(1)])]);
    Message { from: id(from), configuration: 1, body: Body::Vote(Arc::new(v)) }
}

fn decree(m: &Message) -> u64 {
    match &m.body {
        Body::Vote(v) => v.decree.0,
        other => panic!("not a vote: {other:?}"),
    }
}

fn send_retrying(t: &RingTransport, to: &str, m: &Message) {
    loop {
        match t.send(&id(to), m) {
            Ok(()) => return,
            Err(SendError::QueueFull) => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn completed_tail_steps_back_to_the_immediate() {
    assert_eq!(completed_tail(4096, tail_imm(4096)), 4096);
    assert_eq!(completed_tail(4096 + 800, tail_imm(4096)), 4096, "a newer tail already placed");
    let far = (1u64 << 34) + 64; // past 2³¹ units: the immediate wraps
    assert_eq!(completed_tail(far, tail_imm(far - 24)), far - 24);
    assert_eq!(completed_tail(far + 8, tail_imm(far)), far);
}

#[test]
fn three_replicas_exchange_in_order_under_adversarial_placement() {
    for seed in [1u64, 77, 4242] {
        let (transports, _pairs) = cluster(3, seed);
        let transports = Arc::new(transports);
        const N: u64 = 1500;
        let senders: Vec<_> = (0..3)
            .map(|i| {
                let transports = Arc::clone(&transports);
                std::thread::spawn(move || {
                    let me = ["1", "2", "3"][i];
                    for d in 1..=N {
                        for to in ["1", "2", "3"].iter().filter(|&&to| to != me) {
                            // Up to 40 KB: most messages wrap, many are fragmented.
                            send_retrying(&transports[i], to, &vote(me, d, (d as usize * 7919) % 40_000));
                        }
                    }
                })
            })
            .collect();
        for (i, t) in transports.iter().enumerate() {
            let mut next = [1u64; 3];
            for _ in 0..2 * N {
                let (_, m) = t.events().recv_timeout(WAIT).expect("every message arrives");
                let from: usize = m.from.as_str().parse::<usize>().unwrap() - 1;
                assert_ne!(from, i);
                assert_eq!(decree(&m), next[from], "seed {seed}: in order, none lost, none twice");
                assert_eq!(m, vote(m.from.as_str(), next[from], (next[from] as usize * 7919) % 40_000));
                next[from] += 1;
            }
        }
        senders.into_iter().for_each(|s| s.join().unwrap());
    }
}

#[test]
fn a_failed_queue_pair_comes_back_and_traffic_resumes() {
    let (transports, pairs) = cluster(2, 9);
    let (one, two) = (&transports[0], &transports[1]);
    let (ab, ba) = &pairs[0];
    for d in 1..=100 {
        send_retrying(one, "2", &vote("1", d, 3000));
    }
    for d in 1..=100 {
        assert_eq!(decree(&two.events().recv_timeout(WAIT).unwrap().1), d);
    }
    // The queue pair fails with writes in flight: both sides notice on their next post
    // or poll and drop their links.
    let wire_broken = |link: &Link| link.verbs.lock().is_none();
    for d in 101..=120 {
        let _ = one.send(&id("2"), &vote("1", d, 3000));
    }
    ab.down("test: queue pair failed");
    ba.down("test: queue pair failed");
    assert!(wire_broken(ab) && wire_broken(ba));
    for d in 121..=140 {
        let _ = one.send(&id("2"), &vote("1", d, 3000)); // dropped or held: the link is down
    }
    connect(ab, ba, 99);
    // Messages around the failure may be lost while the sessions start over (a receiver
    // that finds its ring torn starts another); what arrives is in order, never twice.
    // Traffic resumes: soon 20 in a row arrive, and from then on every one.
    let (mut last, mut run, mut d) = (100, 0, 141);
    while run < 20 {
        send_retrying(one, "2", &vote("1", d, 3000));
        d += 1;
        while let Ok((_, m)) = two.events().recv_timeout(Duration::from_millis(20)) {
            assert!(decree(&m) > last, "in order, never twice");
            run = if decree(&m) == last + 1 { run + 1 } else { 1 };
            last = decree(&m);
        }
    }
    for next in d..d + 50 {
        send_retrying(one, "2", &vote("1", next, 3000));
    }
    let mut got = Vec::new();
    while got.last() != Some(&(d + 49)) {
        got.push(decree(&two.events().recv_timeout(WAIT).expect("the last one arrives").1));
    }
    let tail: Vec<u64> = got.iter().copied().filter(|&x| x >= d).collect();
    assert_eq!(tail, (d..d + 50).collect::<Vec<_>>(), "once resumed, none lost");
    send_retrying(two, "1", &vote("2", 7, 10));
    assert_eq!(decree(&one.events().recv_timeout(WAIT).unwrap().1), 7, "and the other way too");
}

#[test]
fn a_restarted_peer_starts_new_sessions() {
    let (mut transports, pairs) = cluster(2, 5);
    send_retrying(&transports[0], "2", &vote("1", 1, 10));
    assert_eq!(decree(&transports[1].events().recv_timeout(WAIT).unwrap().1), 1);
    // Replica 2 restarts: new memory, a new queue pair with the old link of replica 1.
    let mut old = transports.pop().unwrap();
    old.stop();
    drop(old);
    let (ab, _) = pairs.into_iter().next().unwrap();
    ab.down("test: the peer went away");
    let fresh = Arc::new(Link::new(id("1"), RING).unwrap());
    let two = start_over(&config("2", 2), vec![peer_lines(&fresh)], vec![Arc::clone(&fresh)], None).unwrap();
    connect(&ab, &fresh, 31);
    let one = &transports[0];
    let mut d = 2;
    loop {
        send_retrying(one, "2", &vote("1", d, 10));
        d += 1;
        if two.events().recv_timeout(Duration::from_millis(20)).is_ok() {
            break;
        }
    }
    send_retrying(&two, "1", &vote("2", 50, 10));
    assert_eq!(decree(&one.events().recv_timeout(WAIT).unwrap().1), 50);
}

/// A receiver that takes the tail from memory instead of from a completion.
struct TailFromMemory(Box<dyn Lines>, Arc<Link>);

impl Lines for TailFromMemory {
    fn capacity(&self) -> u64 {
        self.0.capacity()
    }
    fn peer(&self, at: usize) -> u64 {
        if at == TAIL {
            self.1.memory.load(TAIL)
        } else {
            self.0.peer(at)
        }
    }
    fn store(&mut self, at: usize, value: u64) {
        self.0.store(at, value)
    }
    fn write(&mut self, at: u64, bytes: &[u8]) {
        self.0.write(at, bytes)
    }
    fn read(&self, at: u64, buf: &mut [u8]) {
        self.0.read(at, buf)
    }
    fn notify(&self) {}
}

#[test]
fn planted_bug_a_tail_read_from_memory_tears_frames() {
    let ab = Arc::new(Link::new(id("2"), RING).unwrap());
    let ba = Arc::new(Link::new(id("1"), RING).unwrap());
    let one = start_over(&config("1", 2), vec![peer_lines(&ab)], vec![Arc::clone(&ab)], None).unwrap();
    let mut peers = vec![peer_lines(&ba)];
    peers[0].incoming = Box::new(TailFromMemory(peer_lines(&ba).incoming, Arc::clone(&ba)));
    let two = start_over(&config("2", 2), peers, vec![Arc::clone(&ba)], None).unwrap();
    connect(&ab, &ba, 3);
    let sender = std::thread::spawn(move || {
        for d in 1..=1500 {
            send_retrying(&one, "2", &vote("1", d, (d as usize * 7919) % 40_000));
        }
        one
    });
    let mut got = Vec::new();
    while let Ok((_, m)) = two.events().recv_timeout(Duration::from_secs(2)) {
        got.push(decree(&m));
    }
    drop(sender.join().unwrap());
    assert!(got.len() < 1500 && got.windows(2).any(|w| w[1] != w[0] + 1), "the planted bug went unnoticed");
}
