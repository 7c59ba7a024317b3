//! The transport of the one-sided media (shared memory, RDMA): sessions of the
//! [`super::ring`] protocol over a ring per direction of each replica pair, whatever moves
//! the bytes. A medium provides [`Lines`] (the ring and its two control lines, seen from
//! one side) and a [`Doorbell`] (how an idle poller sleeps and is woken).
//!
//! A message is sent on the caller's thread — encode, copy into the peer's ring, publish
//! the tail, notify — so a commit crosses no thread of the sender; one poller thread per
//! replica reads every incoming ring (spinning briefly, then sleeping on its doorbell, so
//! an idle replica burns no core), returns credits, and retries sends that waited for
//! credits.
//!
//! A ring's two sides each pick a random *epoch* when they start (or, for a receiver, when
//! it finds the ring torn) and acknowledge the other's: the sender adopts the receiver's
//! epoch by restarting at position 0, the receiver adopts the sender's by reading from 0.
//! Frames are keyed by both epochs, so after either side restarts nothing of the old
//! session can be read; messages in flight then are lost, as on a broken TCP connection.
//! Every message read passes the same decoder as TCP's, and must come from the member whose
//! ring it is in.

use super::ring::{Consumer, Producer};
use super::stats::{Counters, Refusal};
use super::{inbox, SendError, StartError, Transport, TransportConfig};
use crate::paxos::{MemberId, MemberSet, Message};
use crate::wire::{decode, fingerprint, Limits, Version, WireMessage};
use crossbeam_channel::TrySendError;
use memmap2::MmapRaw;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;

/// Control words: the sender's line, then the receiver's; the ring follows.
pub(super) const SENDER_EPOCH: usize = 0;
pub(super) const TAIL: usize = 8;
const SEEN_RECEIVER: usize = 16;
pub(super) const RECEIVER_LINE: usize = 64;
pub(super) const RECEIVER_EPOCH: usize = 64;
const HEAD: usize = 72;
const SEEN_SENDER: usize = 80;
pub(super) const DATA: usize = 128;
/// Polls an idle poller makes before it sleeps: a reply often comes within them, and a
/// wake-up costs tens of microseconds here.
const SPINS: u32 = 200;
const EVENTS_CAPACITY: usize = 4096;

/// One side's view of a ring: the sender writes ring bytes and its line and reads the
/// receiver's; the receiver reads ring bytes and the sender's line and writes its own.
/// (Each side uses the half it needs.)
pub(super) trait Lines: Send {
    /// Ring bytes.
    fn capacity(&self) -> u64;
    /// The other side's control word at `at`.
    fn peer(&self, at: usize) -> u64;
    /// Sets our control word at `at`; the other side sees it after every earlier store
    /// and write.
    fn store(&mut self, at: usize, value: u64);
    /// Copies `bytes` to ring position `at` (wrapping).
    fn write(&mut self, at: u64, bytes: &[u8]);
    /// Fills `buf` from ring position `at` (wrapping).
    fn read(&self, at: u64, buf: &mut [u8]);
    /// Wakes the other side's poller if it sleeps.
    fn notify(&self);
}

/// How a poller sleeps when nothing arrives, and is woken.
pub(super) trait Doorbell: Send + Sync {
    /// A mark taken before polling.
    fn mark(&self) -> u64;
    /// Sleeps until woken after `mark` was taken, or for a short while.
    fn wait(&self, mark: u64);
    /// Wakes the poller (to stop it).
    fn wake(&self);
}

/// Memory shared with another process or a NIC: accessed only through raw pointers and
/// atomics, never as a Rust slice (someone else writes it).
pub(super) struct Shared {
    pub(super) map: MmapRaw,
}

impl Shared {
    pub(super) fn word(&self, at: usize) -> &AtomicU64 {
        assert!(at.is_multiple_of(8) && at + 8 <= self.map.len());
        // SAFETY: in bounds and 8-aligned (the map is page-aligned); the mapping lives as
        // long as `self`, and every writer touches this word only atomically (a NIC
        // writes it whole: 8 aligned bytes are placed at once).
        unsafe { &*self.map.as_ptr().add(at).cast::<AtomicU64>() }
    }

    pub(super) fn load(&self, at: usize) -> u64 {
        self.word(at).load(Ordering::Acquire)
    }

    pub(super) fn store(&self, at: usize, value: u64) {
        self.word(at).store(value, Ordering::Release);
    }
}

/// A ring in shared memory: control lines at `base`, then `capacity` ring bytes.
pub(super) struct RingMemory {
    pub(super) shared: Arc<Shared>,
    pub(super) base: usize,
    pub(super) capacity: u64,
}

impl RingMemory {
    /// Where ring position `at` lives in the mapping, and how many bytes fit before the
    /// ring's end.
    pub(super) fn place(&self, at: u64, len: usize) -> (usize, usize) {
        let start = (at % self.capacity) as usize;
        (self.base + DATA + start, len.min(self.capacity as usize - start))
    }

    pub(super) fn write(&self, at: u64, bytes: &[u8]) {
        let (start, first) = self.place(at, bytes.len());
        // SAFETY: both pieces lie inside the ring (start + first ≤ its end, and the rest
        // is shorter than the ring: frames are at most a quarter of it). The ring protocol
        // gives these bytes to this sender alone until it publishes them.
        unsafe {
            let map = self.shared.map.as_mut_ptr();
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), map.add(start), first);
            let ring = map.add(self.base + DATA);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), ring, bytes.len() - first);
        }
    }

    pub(super) fn read(&self, at: u64, buf: &mut [u8]) {
        let (start, first) = self.place(at, buf.len());
        // SAFETY: as in `write`; these bytes are below the published tail, which the
        // sender does not touch again until the receiver returns them.
        unsafe {
            let map = self.shared.map.as_ptr();
            std::ptr::copy_nonoverlapping(map.add(start), buf.as_mut_ptr(), first);
            let ring = map.add(self.base + DATA);
            std::ptr::copy_nonoverlapping(ring, buf.as_mut_ptr().add(first), buf.len() - first);
        }
    }

    pub(super) fn load(&self, at: usize) -> u64 {
        self.shared.load(self.base + at)
    }

    pub(super) fn store(&self, at: usize, value: u64) {
        self.shared.store(self.base + at, value)
    }
}

pub(super) fn new_epoch() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = [now.as_nanos() as u64, u64::from(std::process::id()), &now as *const _ as u64];
    let bytes: Vec<u8> = seed.iter().flat_map(|w| w.to_le_bytes()).collect();
    fingerprint(&bytes) | 1
}

/// Both sides' epochs, as the ring's checksum key.
fn session(sender: u64, receiver: u64) -> u64 {
    fingerprint(&[sender.to_le_bytes(), receiver.to_le_bytes()].concat())
}

/// Our ring into a peer.
struct Outgoing {
    lines: Box<dyn Lines>,
    epoch: u64,
    /// The session with the receiver epoch it was made for.
    producer: Option<(u64, Producer)>,
    /// Encoded messages not yet all in the ring (credits ran out, or the receiver has not
    /// answered our epoch yet), with how much of the first is in.
    pending: VecDeque<Vec<u8>>,
    written: usize,
    max_pending: usize,
}

impl Outgoing {
    fn new(mut lines: Box<dyn Lines>, max_pending: usize) -> Self {
        let epoch = new_epoch();
        // Until the receiver acknowledges this epoch, nothing of ours is read.
        lines.store(SEEN_RECEIVER, 0);
        lines.store(TAIL, 0);
        lines.store(SENDER_EPOCH, epoch);
        Self { lines, epoch, producer: None, pending: VecDeque::new(), written: 0, max_pending }
    }

    /// Writes pending messages while credits last; publishes the tail and notifies the
    /// receiver if anything went. Returns whether anything went.
    fn pump(&mut self) -> bool {
        let receiver = self.lines.peer(RECEIVER_EPOCH);
        if receiver == 0 {
            return false; // the peer never started
        }
        if self.producer.as_ref().is_none_or(|(r, _)| *r != receiver) {
            // A new receiver (or a new session it asked for): start over at 0.
            let capacity = self.lines.capacity();
            self.producer = Some((receiver, Producer::new(capacity, session(self.epoch, receiver))));
            self.written = 0;
            self.lines.store(TAIL, 0);
            self.lines.store(SEEN_RECEIVER, receiver);
        }
        if self.lines.peer(SEEN_SENDER) != self.epoch {
            return false; // our epoch not acknowledged yet
        }
        let Some((_, producer)) = self.producer.as_mut() else { return false };
        let head = self.lines.peer(HEAD);
        if head > producer.tail() {
            return false; // credits of a session being reset (or nonsense): none for now
        }
        let mut sent = false;
        while let Some(message) = self.pending.front() {
            let rest = &message[self.written..];
            let n = rest.len().min(producer.max_fragment());
            let Ok(frame) = producer.frame(&rest[..n], n < rest.len(), head) else { break };
            self.lines.write(frame.at, &frame.bytes);
            sent = true;
            self.written += n;
            if self.written == message.len() {
                self.pending.pop_front();
                self.written = 0;
            }
        }
        if sent {
            self.lines.store(TAIL, producer.tail());
            self.lines.notify();
        }
        sent
    }
}

/// A peer's ring into us.
struct Incoming {
    peer: MemberId,
    lines: Box<dyn Lines>,
    epoch: u64,
    /// The session with the sender epoch it was made for.
    consumer: Option<(u64, Consumer)>,
}

impl Incoming {
    fn new(peer: MemberId, mut lines: Box<dyn Lines>) -> Self {
        let epoch = new_epoch();
        reset_receiver(lines.as_mut(), epoch);
        Self { peer, lines, epoch, consumer: None }
    }

    /// Reads what arrived; returns whether anything did.
    fn poll(&mut self, limits: &Limits, idle: bool, deliver: &mut dyn FnMut(&MemberId, Vec<u8>)) -> bool {
        let sender = self.lines.peer(SENDER_EPOCH);
        if sender == 0 {
            return false;
        }
        if self.consumer.as_ref().is_none_or(|(s, _)| *s != sender) {
            let key = session(sender, self.epoch);
            let capacity = self.lines.capacity();
            self.consumer = Some((sender, Consumer::new(capacity, key, limits.max_message_size)));
            self.lines.store(HEAD, 0);
            self.lines.store(SEEN_SENDER, sender);
        }
        if self.lines.peer(SEEN_RECEIVER) != self.epoch {
            return false; // the sender has not restarted for our epoch yet
        }
        let Some((_, consumer)) = self.consumer.as_mut() else { return false };
        let tail = self.lines.peer(TAIL);
        let mut got = false;
        loop {
            match consumer.pop(tail, |at, buf| self.lines.read(at, buf)) {
                Ok(Some(bytes)) => {
                    got = true;
                    deliver(&self.peer, bytes);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("ring from {}: {e}; starting a new session", self.peer);
                    self.epoch = new_epoch();
                    self.consumer = None;
                    reset_receiver(self.lines.as_mut(), self.epoch);
                    return got;
                }
            }
        }
        if let Some(head) = consumer.credit(idle || !got) {
            self.lines.store(HEAD, head);
            self.lines.notify();
        }
        got
    }
}

/// Starts a receiver epoch: no credits, the sender's epoch not acknowledged, then the
/// epoch itself (in this order, so a sender that sees it sees the rest).
fn reset_receiver(lines: &mut dyn Lines, epoch: u64) {
    lines.store(SEEN_SENDER, 0);
    lines.store(HEAD, 0);
    lines.store(RECEIVER_EPOCH, epoch);
}

/// One peer's two rings, as a medium provides them.
pub(super) struct PeerLines {
    pub(super) peer: MemberId,
    pub(super) outgoing: Box<dyn Lines>,
    pub(super) incoming: Box<dyn Lines>,
}

/// One replica's end of a one-sided transport (shared memory or RDMA).
pub struct RingTransport {
    me: MemberId,
    outgoing: Arc<HashMap<MemberId, Mutex<Outgoing>>>,
    version: Arc<AtomicU16>,
    events: inbox::Receiver<(Version, Message)>,
    stop: Arc<AtomicBool>,
    bell: Arc<dyn Doorbell>,
    poller: Option<std::thread::JoinHandle<()>>,
    /// What else the medium runs (RDMA's connection threads), stopped after the poller.
    medium: Option<Box<dyn FnOnce() + Send + Sync>>,
    counters: Arc<Counters>,
}

impl RingTransport {
    /// Starts sessions on every peer's rings and the poller. `name` names the poller
    /// thread and the log lines; `medium_stop` stops what else the medium runs.
    pub(super) fn start(
        config: &TransportConfig,
        name: &str,
        peers: Vec<PeerLines>,
        bell: Arc<dyn Doorbell>,
        medium_stop: Option<Box<dyn FnOnce() + Send + Sync>>,
    ) -> Result<Self, StartError> {
        let mut outgoing = HashMap::new();
        let mut incoming = Vec::new();
        for PeerLines { peer, outgoing: out, incoming: inc } in peers {
            outgoing.insert(peer.clone(), Mutex::new(Outgoing::new(out, config.max_outstanding_per_replica)));
            incoming.push(Incoming::new(peer, inc));
        }
        let outgoing = Arc::new(outgoing);
        let (events_tx, events) = inbox::bounded(EVENTS_CAPACITY);
        let stop = Arc::new(AtomicBool::new(false));
        let counters = Arc::new(Counters::default());
        let poller = {
            let (outgoing, stop, bell, limits, counters) = (
                Arc::clone(&outgoing),
                Arc::clone(&stop),
                Arc::clone(&bell),
                config.limits,
                Arc::clone(&counters),
            );
            let poll = move || {
                let sink = Sink { events: &events_tx, limits: &limits, counters: &counters };
                poll_loop(&mut incoming, &outgoing, bell.as_ref(), &stop, &sink)
            };
            std::thread::Builder::new()
                .name(format!("rsl-{name}-{}", config.me))
                .spawn(poll)
                .map_err(StartError::Thread)?
        };
        Ok(Self {
            me: config.me.clone(),
            outgoing,
            version: Arc::new(AtomicU16::new(config.version.as_u16())),
            events,
            stop,
            bell,
            poller: Some(poller),
            medium: medium_stop,
            counters,
        })
    }
}

/// Where the poller hands what it read: decoded, checked, counted.
struct Sink<'a> {
    events: &'a inbox::Sender<(Version, Message)>,
    limits: &'a Limits,
    counters: &'a Counters,
}

impl Sink<'_> {
    /// The same gateway as TCP's: it decodes, or it is dropped; and it is from the peer.
    fn deliver(&self, peer: &MemberId, bytes: Vec<u8>) {
        let message = decode(&bytes::Bytes::from(bytes), self.limits).ok().and_then(|wire| {
            let version = wire.header.version;
            wire.into_core().map(|m| (version, m))
        });
        match message {
            Some((version, message)) if message.from == *peer => {
                if let Err(TrySendError::Full(_)) = self.events.try_send((version, message)) {
                    tracing::warn!("ring transport: the runtime is behind; a message from {peer} dropped");
                    self.counters.refuse(Refusal::QueueFull);
                }
            }
            Some((_, message)) => {
                tracing::warn!("ring transport: a message from {} in {peer}'s ring; refused", message.from);
                self.counters.refuse(Refusal::NonMember);
            }
            None => {
                tracing::warn!("ring transport: a message from {peer} that does not decode; refused");
                self.counters.refuse(Refusal::Malformed);
            }
        }
    }
}

fn poll_loop(
    incoming: &mut [Incoming],
    outgoing: &HashMap<MemberId, Mutex<Outgoing>>,
    bell: &dyn Doorbell,
    stop: &AtomicBool,
    sink: &Sink<'_>,
) {
    let mut deliver = |peer: &MemberId, bytes: Vec<u8>| sink.deliver(peer, bytes);
    let mut idle_polls = 0u32;
    // Confined to one CPU, polling on would only take the time of the threads it waits for.
    let spins = if inbox::spins() { SPINS } else { 0 };
    while !stop.load(Ordering::Acquire) {
        let mark = bell.mark();
        let idle = idle_polls >= spins;
        let mut progress = false;
        for ring in incoming.iter_mut() {
            progress |= ring.poll(sink.limits, idle, &mut deliver);
        }
        for out in outgoing.values() {
            let mut out = out.lock();
            if !out.pending.is_empty() {
                progress |= out.pump();
            }
        }
        if progress {
            idle_polls = 0;
        } else if idle {
            bell.wait(mark);
        } else {
            idle_polls += 1;
            std::hint::spin_loop();
        }
    }
}

impl Transport for RingTransport {
    fn events(&self) -> &inbox::Receiver<(Version, Message)> {
        &self.events
    }

    fn send(&self, to: &MemberId, message: &Message) -> Result<(), SendError> {
        if self.stop.load(Ordering::Acquire) {
            return Err(SendError::Stopped);
        }
        let version =
            Version::from_u16(self.version.load(Ordering::Relaxed)).expect("only versions are stored");
        let bytes = WireMessage::from_core(message, version)
            .and_then(|wire| wire.to_bytes())
            .map_err(SendError::Encode)?;
        let out = self.outgoing.get(to).ok_or_else(|| SendError::UnknownPeer(to.clone()))?;
        let mut out = out.lock();
        if out.pending.len() >= out.max_pending {
            return Err(SendError::QueueFull);
        }
        out.pending.push_back(bytes);
        out.pump();
        Ok(())
    }

    fn set_version(&self, version: Version) {
        self.version.store(version.as_u16(), Ordering::Relaxed);
    }

    fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.counters)
    }

    /// Rings are set up at start, for the members then known; a member it was not started
    /// with is refused (growing the rings at run time is not built).
    fn add_members(&mut self, members: &MemberSet) -> Result<(), StartError> {
        if members.ids().any(|id| *id != self.me && !self.outgoing.contains_key(id)) {
            return Err(StartError::Invalid(
                "the shm and rdma transports cannot add members they were not started with (not built): \
                 use tcp for replica-set changes that add members",
            ));
        }
        Ok(())
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.bell.wake();
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
        if let Some(stop) = self.medium.take() {
            stop();
        }
    }
}

impl Drop for RingTransport {
    fn drop(&mut self) {
        self.stop();
    }
}
