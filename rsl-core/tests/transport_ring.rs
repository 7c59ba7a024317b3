//! The ring protocol of the one-sided transports, against random interleavings of sends,
//! reads, credit returns, torn writes and sender restarts. A model ring (a byte array both
//! sides see) stands for the shared mapping or the RDMA-written region.
//!
//! Checked at every step: the sender never writes over bytes the receiver has not read;
//! the receiver returns exactly the messages sent in the current session, in order, whole,
//! once — a torn frame is reported, never returned; and once the sides are left to run,
//! every message sent gets through (no lost credit, no deadlock).

use proptest::prelude::*;
use rsl_core::transport::ring::{Consumer, Full, Producer, RingError};
use std::collections::VecDeque;

#[derive(Clone, Debug)]
enum Op {
    /// A message of this many bytes joins the sender's queue.
    Send(usize),
    /// The sender writes queued fragments while credits allow, then publishes its tail.
    Pump,
    /// The receiver reads up to this many messages.
    Read(usize),
    /// The receiver returns credits (as when it is about to wait, if `idle`).
    Credit(bool),
    /// The next frame is published with some of its bytes not yet written.
    Tear(usize),
    /// The sender restarts: a new session from position 0, old bytes still in the ring.
    Restart,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0usize..700).prop_map(Op::Send),
        1 => (0usize..3000).prop_map(Op::Send),
        4 => Just(Op::Pump),
        4 => (1usize..4).prop_map(Op::Read),
        2 => any::<bool>().prop_map(Op::Credit),
        1 => (0usize..64).prop_map(Op::Tear),
        1 => Just(Op::Restart),
    ]
}

struct Model {
    ring: Vec<u8>,
    session: u64,
    producer: Producer,
    consumer: Consumer,
    /// The sender's queue: messages, and how much of the first was written.
    queue: VecDeque<Vec<u8>>,
    written: usize,
    /// The tail the receiver sees, and the head the sender sees.
    published: u64,
    credit: u64,
    /// Messages of this session whose every fragment is published, oldest first.
    in_flight: VecDeque<Vec<u8>>,
    serial: u8,
    /// A torn frame was published: the session is dead until the sender restarts.
    torn: bool,
}

const CAPACITY: u64 = 2048;
const MAX_MESSAGE: usize = 4096;

impl Model {
    fn new() -> Self {
        Self {
            ring: vec![0xEE; CAPACITY as usize],
            session: 1,
            producer: Producer::new(CAPACITY, 1),
            consumer: Consumer::new(CAPACITY, 1, MAX_MESSAGE),
            queue: VecDeque::new(),
            written: 0,
            published: 0,
            credit: 0,
            in_flight: VecDeque::new(),
            serial: 0,
            torn: false,
        }
    }

    fn write(&mut self, at: u64, bytes: &[u8]) {
        let unread = self.consumer.head();
        assert!(at + bytes.len() as u64 - unread <= CAPACITY, "the sender overwrote unread bytes");
        write_wrapped(&mut self.ring, at, bytes);
    }

    /// Writes fragments while credits allow; publishes the tail. Returns whether all went.
    fn pump(&mut self, tear: Option<usize>) -> bool {
        let mut tear = tear;
        while let Some(message) = self.queue.front() {
            let rest = &message[self.written..];
            let n = rest.len().min(self.producer.max_fragment());
            let more = n < rest.len();
            let frame = match self.producer.frame(&rest[..n], more, self.credit) {
                Ok(frame) => frame,
                Err(Full) => break,
            };
            match tear.take() {
                // Only the first `keep` bytes land before the tail is published.
                Some(keep) => {
                    let keep = keep.min(frame.bytes.len() - 1);
                    self.write(frame.at, &frame.bytes[..keep]);
                    self.torn = true;
                }
                None => self.write(frame.at, &frame.bytes),
            }
            self.written += n;
            if !more {
                let done = self.queue.pop_front().expect("the front message");
                self.in_flight.push_back(done);
                self.written = 0;
            }
        }
        self.published = self.producer.tail();
        self.queue.is_empty()
    }

    fn read(&mut self, count: usize) {
        for _ in 0..count {
            let ring = &self.ring;
            match self.consumer.pop(self.published, |at, buf| read_wrapped(ring, at, buf)) {
                Ok(Some(message)) => {
                    assert!(!self.torn || !self.in_flight.is_empty());
                    let expected = self.in_flight.pop_front().expect("a message was sent");
                    assert_eq!(message, expected, "a message came back changed");
                }
                Ok(None) => return,
                Err(RingError::Torn { .. }) => {
                    assert!(self.torn, "a frame written whole was reported torn");
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn restart(&mut self) {
        self.session += 1;
        self.producer = Producer::new(CAPACITY, self.session);
        // The receiver sees the new session, starts over and returns its head (0).
        self.consumer = Consumer::new(CAPACITY, self.session, MAX_MESSAGE);
        (self.published, self.credit, self.written, self.torn) = (0, 0, 0, false);
        self.in_flight.clear();
        self.queue.clear();
    }

    fn step(&mut self, op: Op) {
        match op {
            Op::Send(len) => {
                self.serial = self.serial.wrapping_add(1);
                let message: Vec<u8> = (0..len).map(|i| self.serial ^ (i as u8).wrapping_mul(31)).collect();
                self.queue.push_back(message);
            }
            Op::Pump => {
                self.pump(None);
            }
            Op::Read(n) => self.read(n),
            Op::Credit(idle) => {
                if let Some(head) = self.consumer.credit(idle) {
                    self.credit = head;
                }
            }
            Op::Tear(keep) if !self.torn && !self.queue.is_empty() => {
                self.pump(Some(keep));
            }
            Op::Tear(_) => {}
            Op::Restart => self.restart(),
        }
    }

    /// Runs both sides until everything queued got through (a live session).
    fn drain(&mut self) {
        if self.torn {
            self.restart();
            return;
        }
        for _ in 0..10_000 {
            let all_written = self.pump(None);
            self.read(usize::MAX);
            if let Some(head) = self.consumer.credit(true) {
                self.credit = head;
            }
            if all_written && self.in_flight.is_empty() {
                return;
            }
        }
        panic!("the ring stalled with {} queued and {} in flight", self.queue.len(), self.in_flight.len());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_interleaving_delivers_every_message_once_in_order(ops in prop::collection::vec(op(), 1..120)) {
        let mut model = Model::new();
        for op in ops {
            model.step(op);
        }
        model.drain();
    }
}

#[test]
fn stale_bytes_of_an_earlier_session_are_never_read_as_frames() {
    let mut model = Model::new();
    model.step(Op::Send(100));
    model.step(Op::Send(100));
    model.step(Op::Pump);
    model.step(Op::Restart);
    // The new session's receiver is told of a tail its sender never wrote to: the old
    // frames sit exactly there, keyed to the old session.
    let ring = &model.ring;
    let stale = model.consumer.pop(128, |at, buf| read_wrapped(ring, at, buf));
    assert_eq!(stale, Err(RingError::Torn { at: 0 }));
}

#[test]
fn a_message_larger_than_the_ring_passes_in_fragments() {
    let mut model = Model::new();
    model.step(Op::Send(MAX_MESSAGE));
    model.drain();
    let mut too_big = Model::new();
    too_big.queue.push_back(vec![7; MAX_MESSAGE + 1]);
    let mut result = Ok(None);
    for _ in 0..100 {
        too_big.pump(None);
        let ring = &too_big.ring;
        result = too_big.consumer.pop(too_big.published, |at, buf| read_wrapped(ring, at, buf));
        if result.is_err() {
            break;
        }
        too_big.credit = too_big.consumer.credit(true).unwrap_or(too_big.credit);
    }
    assert!(matches!(result, Err(RingError::TooLarge { .. })), "{result:?}");
}

/// The model can fail: a sender that ignores credits (treats everything it wrote as read)
/// overwrites unread bytes and is caught.
#[test]
#[should_panic(expected = "overwrote unread bytes")]
fn the_model_catches_a_sender_that_ignores_credits() {
    let mut model = Model::new();
    for _ in 0..10 {
        let head = model.producer.tail(); // the planted bug
        let frame = model.producer.frame(&[1; 400], false, head).unwrap();
        model.write(frame.at, &frame.bytes);
    }
}

/// Copies `bytes` into the model ring at position `at`, wrapping at its end.
fn write_wrapped(ring: &mut [u8], at: u64, bytes: &[u8]) {
    let start = (at % ring.len() as u64) as usize;
    let first = bytes.len().min(ring.len() - start);
    ring[start..start + first].copy_from_slice(&bytes[..first]);
    ring[..bytes.len() - first].copy_from_slice(&bytes[first..]);
}

/// Fills `buf` from `ring` at position `at`, wrapping at its end.
fn read_wrapped(ring: &[u8], at: u64, buf: &mut [u8]) {
    let start = (at % ring.len() as u64) as usize;
    let first = buf.len().min(ring.len() - start);
    buf[..first].copy_from_slice(&ring[start..start + first]);
    let rest = buf.len() - first;
    buf[first..].copy_from_slice(&ring[..rest]);
}
