//! The RDMA transport: the one-sided [`super::ring_transport`] over reliable-connected
//! queue pairs. Each peer pair shares one [`Link`]: a registered buffer on each side
//! holding the peer's ring into us (`IN`) and a staging copy of our ring into the peer
//! (`OUT`), laid out alike on both sides, so our `OUT` mirrors the peer's `IN`:
//!
//! ```text
//! IN  = 0             sender line (written by the peer) | receiver line (ours) | ring
//! OUT = 128 + ring    sender line (ours) | receiver line (written by the peer) | ring (staging)
//! ```
//!
//! A sender copies frames into its staging ring and RDMA WRITEs them to the same place in
//! the peer's ring, then writes its tail with WRITE_WITH_IMM; a receiver writes credits
//! and epochs into the peer's `OUT` the same way. The rule that makes it safe: **a
//! receiver reads a tail only from a completion**. RC delivers writes in order, but only a
//! WRITE_WITH_IMM's completion guarantees that it and every write before it were placed;
//! a tail seen in memory before then may lead frames not yet placed. So the immediate
//! carries the tail (in 8-byte units, 31 bits), and the receiver takes the tail of the
//! newest completion, reading the full value from memory and stepping back to the
//! immediate's when a newer tail was already placed. A torn frame is still caught by the
//! ring's checksums and ends the session, as in shared memory.
//!
//! When a queue pair fails (an error completion, a failed post, its TCP set-up
//! connection closing), its link goes down: writes are dropped, as on a broken TCP
//! connection, and a new queue pair is set up; on coming up each side first re-sends both
//! of its lines, and the epochs start new sessions where bytes were lost. Pollers back off
//! from 20 µs to 1 ms between empty polls: the NIC cannot ring a futex.
//!
//! `verbs` (cargo feature `rdma`) holds the device, queue pairs and set-up over TCP; this
//! file is the medium logic, tested here against an in-process fake of the verbs. (A build
//! without the feature compiles and tests that logic but never starts it.)
#![cfg_attr(not(feature = "rdma"), allow(dead_code))]

use super::ring_transport::{
    Doorbell, Lines, PeerLines, RingMemory, Shared, DATA, RECEIVER_EPOCH, RECEIVER_LINE, TAIL,
};
use super::{RdmaConfig, RingTransport, StartError, TransportConfig};
use crate::paxos::MemberId;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "rdma")]
mod verbs;

/// An immediate with this bit carries a tail; without it, a control line changed.
const TAIL_IMM: u32 = 1 << 31;
const SHORTEST_NAP: Duration = Duration::from_micros(20);
const LONGEST_NAP: Duration = Duration::from_millis(1);

/// What a link needs of a queue pair.
pub(super) trait Verbs: Send {
    /// Posts an RDMA WRITE of `len` bytes at `local` in our link buffer to `remote` in the
    /// peer's, with an immediate if given. Writes on one link are placed in post order.
    fn write(&mut self, local: usize, remote: usize, len: usize, imm: Option<u32>) -> Result<(), String>;
    /// Collects the immediates of completed incoming writes, in order.
    fn poll(&mut self, imms: &mut Vec<u32>) -> Result<(), String>;
}

/// One peer pair's registered buffer and queue pair (while up).
pub(super) struct Link {
    // Dropped first: the queue pair and its registration before the memory they use.
    verbs: Mutex<Option<Box<dyn Verbs>>>,
    peer: MemberId,
    memory: Arc<Shared>,
    capacity: u64,
    /// The tail of the newest write-with-immediate completion into `IN`.
    tail: AtomicU64,
    /// Whether `tail` belongs to the session our receiver epoch asked for: cleared when
    /// we start a receiver epoch, set by the next tail of 0 (a sender starts every session
    /// there), so tails of the session we left are not read against the new one.
    armed: AtomicBool,
}

impl Link {
    pub(super) fn new(peer: MemberId, capacity: u64) -> std::io::Result<Self> {
        let map = memmap2::MmapMut::map_anon(2 * (DATA + capacity as usize))?;
        let memory = Arc::new(Shared { map: map.into() });
        let (tail, armed) = (AtomicU64::new(0), AtomicBool::new(false));
        Ok(Self { verbs: Mutex::new(None), peer, memory, capacity, tail, armed })
    }

    fn out(&self) -> usize {
        DATA + self.capacity as usize
    }

    /// The buffer to register: its address and length.
    pub(super) fn buffer(&self) -> (*mut u8, usize) {
        (self.memory.map.as_mut_ptr(), self.memory.map.len())
    }

    pub(super) fn is_up(&self) -> bool {
        self.verbs.lock().is_some()
    }

    /// Takes a new queue pair into use and re-sends both our lines through it.
    pub(super) fn up(&self, verbs: Box<dyn Verbs>) {
        let mut slot = self.verbs.lock();
        *slot = Some(verbs);
        let out = self.out();
        let tail = self.memory.load(out + TAIL);
        // Our receiver line (in IN) to the peer's OUT; our sender line (in OUT) to its IN.
        self.post(&mut slot, RECEIVER_LINE, out + RECEIVER_LINE, DATA - RECEIVER_LINE, Some(0));
        self.post(&mut slot, out, 0, RECEIVER_LINE, Some(tail_imm(tail)));
        tracing::info!("rdma link to {} is up", self.peer);
    }

    /// Stops using the queue pair: writes are dropped until the next `up`.
    pub(super) fn down(&self, why: &str) {
        if self.verbs.lock().take().is_some() {
            tracing::warn!("rdma link to {} is down: {why}", self.peer);
        }
    }

    fn post(
        &self,
        slot: &mut Option<Box<dyn Verbs>>,
        local: usize,
        remote: usize,
        len: usize,
        imm: Option<u32>,
    ) {
        let Some(verbs) = slot.as_mut() else { return };
        if let Err(e) = verbs.write(local, remote, len, imm) {
            tracing::warn!("rdma link to {} is down: {e}", self.peer);
            *slot = None;
        }
    }

    /// Takes in completions; returns whether there were any.
    fn poll(&self, imms: &mut Vec<u32>) -> bool {
        imms.clear();
        let mut slot = self.verbs.lock();
        let Some(verbs) = slot.as_mut() else { return false };
        if let Err(e) = verbs.poll(imms) {
            tracing::warn!("rdma link to {} is down: {e}", self.peer);
            *slot = None;
        }
        let in_memory = self.memory.load(TAIL);
        for tail in imms.iter().filter(|&&imm| imm & TAIL_IMM != 0).map(|&imm| completed_tail(in_memory, imm))
        {
            if tail == 0 {
                self.armed.store(true, Ordering::Release);
            }
            if self.armed.load(Ordering::Acquire) {
                self.tail.store(tail, Ordering::Release);
            }
        }
        !imms.is_empty()
    }
}

fn tail_imm(tail: u64) -> u32 {
    TAIL_IMM | ((tail / 8) as u32 & !TAIL_IMM)
}

/// The tail a completion's immediate stands for, given the tail now in memory (that one,
/// or a newer one placed since: at most a ring ahead, so within 2³¹ units).
fn completed_tail(in_memory: u64, imm: u32) -> u64 {
    let ahead = ((in_memory / 8) as u32).wrapping_sub(imm) & !TAIL_IMM;
    in_memory.wrapping_sub(u64::from(ahead) * 8)
}

/// One direction of a link, as [`Lines`].
struct RdmaLines {
    link: Arc<Link>,
    outgoing: bool,
}

impl RdmaLines {
    fn ring(&self) -> RingMemory {
        let base = if self.outgoing { self.link.out() } else { 0 };
        RingMemory { shared: Arc::clone(&self.link.memory), base, capacity: self.link.capacity }
    }

    /// Our copy of a place, and where it lives on the other side.
    fn places(&self, at: usize) -> (usize, usize) {
        let out = self.link.out();
        if self.outgoing {
            (out + at, at)
        } else {
            (at, out + at)
        }
    }
}

impl Lines for RdmaLines {
    fn capacity(&self) -> u64 {
        self.link.capacity
    }

    fn peer(&self, at: usize) -> u64 {
        if !self.outgoing && at == TAIL {
            return self.link.tail.load(Ordering::Acquire);
        }
        self.link.memory.load(self.places(at).0)
    }

    fn store(&mut self, at: usize, value: u64) {
        if !self.outgoing && at == RECEIVER_EPOCH {
            self.link.armed.store(false, Ordering::Release);
            self.link.tail.store(0, Ordering::Release);
        }
        let (local, remote) = self.places(at);
        self.link.memory.store(local, value);
        let imm = if self.outgoing && at == TAIL { tail_imm(value) } else { 0 };
        self.link.post(&mut self.link.verbs.lock(), local, remote, 8, Some(imm));
    }

    fn write(&mut self, at: u64, bytes: &[u8]) {
        let ring = self.ring();
        ring.write(at, bytes);
        let (start, first) = ring.place(at, bytes.len());
        let out = self.link.out();
        let mut slot = self.link.verbs.lock();
        self.link.post(&mut slot, start, start - out, first, None);
        if first < bytes.len() {
            self.link.post(&mut slot, out + DATA, DATA, bytes.len() - first, None);
        }
    }

    fn read(&self, at: u64, buf: &mut [u8]) {
        self.ring().read(at, buf)
    }

    /// The write-with-immediate already woke the peer.
    fn notify(&self) {}
}

/// Polls every link's completions; naps, backing off, while none come.
struct Completions {
    links: Vec<Arc<Link>>,
    seen: AtomicU64,
    nap_micros: AtomicU64,
    woken: AtomicBool,
}

impl Doorbell for Completions {
    fn mark(&self) -> u64 {
        let mut imms = Vec::new();
        let mut any = false;
        for link in &self.links {
            any |= link.poll(&mut imms);
        }
        if any {
            self.nap_micros.store(0, Ordering::Relaxed);
            return self.seen.fetch_add(1, Ordering::Relaxed) + 1;
        }
        self.seen.load(Ordering::Relaxed)
    }

    fn wait(&self, mark: u64) {
        if self.seen.load(Ordering::Relaxed) != mark || self.woken.swap(false, Ordering::AcqRel) {
            return;
        }
        let nap =
            Duration::from_micros(self.nap_micros.load(Ordering::Relaxed)).clamp(SHORTEST_NAP, LONGEST_NAP);
        std::thread::sleep(nap);
        self.nap_micros.store((2 * nap).min(LONGEST_NAP).as_micros() as u64, Ordering::Relaxed);
    }

    fn wake(&self) {
        self.woken.store(true, Ordering::Release);
    }
}

/// A link's two directions, as the ring transport takes them.
fn peer_lines(link: &Arc<Link>) -> PeerLines {
    PeerLines {
        peer: link.peer.clone(),
        outgoing: Box::new(RdmaLines { link: Arc::clone(link), outgoing: true }),
        incoming: Box::new(RdmaLines { link: Arc::clone(link), outgoing: false }),
    }
}

/// Starts the transport on `peers` over `links`, whose queue pairs someone else brings up
/// and down; `medium_stop` stops that someone.
fn start_over(
    config: &TransportConfig,
    peers: Vec<PeerLines>,
    links: Vec<Arc<Link>>,
    medium_stop: Option<Box<dyn FnOnce() + Send + Sync>>,
) -> Result<RingTransport, StartError> {
    let bell = Completions {
        links,
        seen: AtomicU64::new(0),
        nap_micros: AtomicU64::new(0),
        woken: AtomicBool::new(false),
    };
    RingTransport::start(config, "rdma", peers, Arc::new(bell), medium_stop)
}

/// Checks the settings both builds share.
fn check(config: &TransportConfig, rdma: &RdmaConfig) -> Result<(), StartError> {
    if rdma.ring_bytes < 4096 || !rdma.ring_bytes.is_multiple_of(32) || rdma.ring_bytes > 1 << 33 {
        return Err(StartError::Invalid("an RDMA ring is a multiple of 32 bytes from 4 KiB to 8 GiB"));
    }
    if !config.members.members().iter().any(|m| m.id == config.me) {
        return Err(StartError::NotAMember(config.me.clone()));
    }
    Ok(())
}

/// Starts the RDMA transport: opens the configured device and port, registers a link
/// buffer per peer, and sets up queue pairs with each peer over TCP on the Paxos ports.
/// Without a device (or in a build without the `rdma` feature) it fails, saying so and
/// naming the transports to configure instead.
pub fn start_rdma(config: &TransportConfig, rdma: &RdmaConfig) -> Result<RingTransport, StartError> {
    check(config, rdma)?;
    #[cfg(feature = "rdma")]
    return verbs::start(config, rdma);
    #[cfg(not(feature = "rdma"))]
    Err(StartError::Rdma(
        "this build has no RDMA support (cargo feature `rdma`); rebuild with it, or configure the tcp or \
         shm transport"
            .to_owned(),
    ))
}

#[cfg(test)]
mod tests;
