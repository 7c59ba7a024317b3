//! The shared-memory transport, for replicas on one host: the [`super::ring`] protocol
//! over memory-mapped files in a directory all of them use (on tmpfs, `/dev/shm`).
//!
//! Files: `<from>-<to>.ring`, one per direction of each pair, holding two control lines
//! and the ring; `<member>.bell`, one per receiver, a futex word its senders ring. A
//! message is sent on the caller's thread — encode, copy into the peer's ring, publish the
//! tail, ring the bell — so a commit crosses no thread of the sender; one poller thread
//! per replica reads every incoming ring (spinning briefly, then sleeping on its bell, so
//! an idle replica burns no core), returns credits, and retries sends that waited for
//! credits.
//!
//! A ring's two sides each pick a random *epoch* when they start (or, for a receiver, when
//! it finds the ring torn) and acknowledge the other's: the sender adopts the receiver's
//! epoch by restarting at position 0, the receiver adopts the sender's by reading from 0.
//! Frames are keyed by both epochs, so after either side restarts nothing of the old
//! session can be read; messages in flight then are lost, as on a broken TCP connection.
//! Every message read passes the same decoder as TCP's, and must come from the member the
//! file names.

use super::ring::{Consumer, Producer};
use super::{SendError, StartError, Transport, TransportConfig};
use crate::paxos::{MemberId, Message};
use crate::wire::{decode, fingerprint, Limits, Version, WireMessage};
use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use memmap2::MmapRaw;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Control words: the sender's line, then the receiver's; the ring follows.
const SENDER_EPOCH: usize = 0;
const TAIL: usize = 8;
const SEEN_RECEIVER: usize = 16;
const RECEIVER_EPOCH: usize = 64;
const HEAD: usize = 72;
const SEEN_SENDER: usize = 80;
const DATA: usize = 128;
/// Polls an idle poller makes before it sleeps on its bell: a reply often comes within them, and a wake-up costs tens of microseconds here.
const SPINS: u32 = 200;
/// The longest sleep: how soon a new ring file or a stop is noticed.
const NAP: Duration = Duration::from_millis(5);
const EVENTS_CAPACITY: usize = 4096;

/// A mapped file shared with other processes: accessed only through raw pointers and
/// atomics, never as a Rust slice (another process writes it).
struct Shared {
    map: MmapRaw,
}

impl Shared {
    /// Maps `path`, creating it with `len` zero bytes if it does not exist.
    fn open(path: &Path, len: u64) -> std::io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let actual = file.metadata()?.len();
        if actual == 0 {
            file.set_len(len)?;
        } else if actual != len {
            let why =
                format!("{} has {actual} bytes, not {len}: another ring size is configured", path.display());
            return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
        }
        Ok(Self { map: MmapRaw::map_raw(&file)? })
    }

    fn word(&self, at: usize) -> &AtomicU64 {
        assert!(at.is_multiple_of(8) && at + 8 <= self.map.len());
        // SAFETY: in bounds and 8-aligned (the map is page-aligned); the mapping lives as
        // long as `self`, and every process touches this word only atomically.
        unsafe { &*self.map.as_ptr().add(at).cast::<AtomicU64>() }
    }

    fn load(&self, at: usize) -> u64 {
        self.word(at).load(Ordering::Acquire)
    }

    fn store(&self, at: usize, value: u64) {
        self.word(at).store(value, Ordering::Release);
    }
}

/// A ring file: control lines and `capacity` ring bytes.
struct RingFile {
    shared: Shared,
    capacity: u64,
}

impl RingFile {
    fn open(path: &Path, capacity: u64) -> std::io::Result<Self> {
        Ok(Self { shared: Shared::open(path, DATA as u64 + capacity)?, capacity })
    }

    /// Copies `bytes` to ring position `at` (wrapping).
    fn write(&self, at: u64, bytes: &[u8]) {
        let start = (at % self.capacity) as usize;
        let first = bytes.len().min(self.capacity as usize - start);
        // SAFETY: both pieces lie inside the ring (start + first ≤ capacity, and the rest
        // is shorter than the ring: frames are at most a quarter of it). The ring protocol
        // gives these bytes to this sender alone until it publishes them.
        unsafe {
            let ring = self.shared.map.as_mut_ptr().add(DATA);
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), ring.add(start), first);
            std::ptr::copy_nonoverlapping(bytes.as_ptr().add(first), ring, bytes.len() - first);
        }
    }

    /// Fills `buf` from ring position `at` (wrapping).
    fn read(&self, at: u64, buf: &mut [u8]) {
        let start = (at % self.capacity) as usize;
        let first = buf.len().min(self.capacity as usize - start);
        // SAFETY: as in `write`; these bytes are below the published tail, which the
        // sender does not touch again until the receiver returns them.
        unsafe {
            let ring = self.shared.map.as_ptr().add(DATA);
            std::ptr::copy_nonoverlapping(ring.add(start), buf.as_mut_ptr(), first);
            std::ptr::copy_nonoverlapping(ring, buf.as_mut_ptr().add(first), buf.len() - first);
        }
    }
}

/// A receiver's doorbell: a sequence its senders bump, a futex its poller sleeps on.
struct Bell {
    shared: Shared,
}

impl Bell {
    fn open(dir: &Path, member: &MemberId) -> std::io::Result<Self> {
        Ok(Self { shared: Shared::open(&dir.join(format!("{}.bell", file_id(member))), 64)? })
    }

    fn sequence(&self) -> &AtomicU32 {
        // SAFETY: the first 4 bytes of a 64-byte, page-aligned mapping, used only atomically.
        unsafe { &*self.shared.map.as_ptr().cast::<AtomicU32>() }
    }

    fn waiting(&self) -> &AtomicU32 {
        // SAFETY: bytes 4..8 of the same mapping, used only atomically.
        unsafe { &*self.shared.map.as_ptr().add(4).cast::<AtomicU32>() }
    }

    fn ring(&self) {
        self.sequence().fetch_add(1, Ordering::SeqCst);
        if self.waiting().load(Ordering::SeqCst) != 0 {
            futex(self.sequence(), libc::FUTEX_WAKE, 1, None);
        }
    }

    /// Sleeps until rung after `seen` was read, or for `NAP`.
    fn wait(&self, seen: u32) {
        self.waiting().store(1, Ordering::SeqCst);
        if self.sequence().load(Ordering::SeqCst) == seen {
            futex(self.sequence(), libc::FUTEX_WAIT, seen, Some(NAP));
        }
        self.waiting().store(0, Ordering::SeqCst);
    }
}

fn futex(word: &AtomicU32, op: libc::c_int, value: u32, timeout: Option<Duration>) {
    let timespec =
        timeout.map(|t| libc::timespec { tv_sec: t.as_secs() as _, tv_nsec: t.subsec_nanos() as _ });
    let timeout = timespec.as_ref().map_or(std::ptr::null(), |t| t as *const libc::timespec);
    // SAFETY: `word` is a live, aligned u32 in a shared mapping (a process-shared futex,
    // hence no FUTEX_PRIVATE_FLAG); `timeout` is null or points to a live timespec. The
    // result is not needed: a wake may find no waiter, a wait may time out or be woken.
    unsafe { libc::syscall(libc::SYS_futex, word.as_ptr(), op, value, timeout, 0usize, 0u32) };
}

/// A file name for a member id: itself when plain, else its bytes in hex.
fn file_id(id: &MemberId) -> String {
    let plain = id.as_str().bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if plain && !id.as_str().is_empty() {
        id.as_str().to_owned()
    } else {
        id.as_str().bytes().map(|b| format!("x{b:02x}")).collect()
    }
}

fn new_epoch() -> u64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let seed = [now.as_nanos() as u64, u64::from(std::process::id()), &now as *const _ as u64];
    let bytes: Vec<u8> = seed.iter().flat_map(|w| w.to_le_bytes()).collect();
    fingerprint(&bytes) | 1
}

/// Both sides' epochs, as the ring's checksum key.
fn session(sender: u64, receiver: u64) -> u64 {
    fingerprint(&[sender.to_le_bytes(), receiver.to_le_bytes()].concat())
}

/// Starts a receiver epoch: no credits, the sender's epoch not acknowledged, then the
/// epoch itself (in this order, so a sender that sees it sees the rest).
fn reset_receiver(shared: &Shared, epoch: u64) {
    shared.store(SEEN_SENDER, 0);
    shared.store(HEAD, 0);
    shared.store(RECEIVER_EPOCH, epoch);
}

/// Our ring into a peer.
struct Outgoing {
    file: RingFile,
    bell: Bell,
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
    /// Writes pending messages while credits last; publishes the tail and rings the bell
    /// if anything went. Returns whether anything went.
    fn pump(&mut self) -> bool {
        let receiver = self.file.shared.load(RECEIVER_EPOCH);
        if receiver == 0 {
            return false; // the peer never started
        }
        if self.producer.as_ref().is_none_or(|(r, _)| *r != receiver) {
            // A new receiver (or a new session it asked for): start over at 0.
            self.producer =
                Some((receiver, Producer::new(self.file.capacity, session(self.epoch, receiver))));
            self.written = 0;
            self.file.shared.store(TAIL, 0);
            self.file.shared.store(SEEN_RECEIVER, receiver);
        }
        if self.file.shared.load(SEEN_SENDER) != self.epoch {
            return false; // our epoch not acknowledged yet
        }
        let Some((_, producer)) = self.producer.as_mut() else { return false };
        let head = self.file.shared.load(HEAD);
        if head > producer.tail() {
            return false; // credits of a session being reset (or nonsense): none for now
        }
        let mut sent = false;
        while let Some(message) = self.pending.front() {
            let rest = &message[self.written..];
            let n = rest.len().min(producer.max_fragment());
            let Ok(frame) = producer.frame(&rest[..n], n < rest.len(), head) else { break };
            self.file.write(frame.at, &frame.bytes);
            sent = true;
            self.written += n;
            if self.written == message.len() {
                self.pending.pop_front();
                self.written = 0;
            }
        }
        if sent {
            self.file.shared.store(TAIL, producer.tail());
            self.bell.ring();
        }
        sent
    }
}

/// A peer's ring into us.
struct Incoming {
    peer: MemberId,
    file: RingFile,
    epoch: u64,
    /// The session with the sender epoch it was made for.
    consumer: Option<(u64, Consumer)>,
    /// The peer's bell, rung when credits go back.
    peer_bell: Bell,
}

impl Incoming {
    /// Reads what arrived; returns whether anything did.
    fn poll(&mut self, limits: &Limits, idle: bool, deliver: &mut dyn FnMut(&MemberId, Vec<u8>)) -> bool {
        let sender = self.file.shared.load(SENDER_EPOCH);
        if sender == 0 {
            return false;
        }
        if self.consumer.as_ref().is_none_or(|(s, _)| *s != sender) {
            let key = session(sender, self.epoch);
            self.consumer = Some((sender, Consumer::new(self.file.capacity, key, limits.max_message_size)));
            self.file.shared.store(HEAD, 0);
            self.file.shared.store(SEEN_SENDER, sender);
        }
        if self.file.shared.load(SEEN_RECEIVER) != self.epoch {
            return false; // the sender has not restarted for our epoch yet
        }
        let Some((_, consumer)) = self.consumer.as_mut() else { return false };
        let tail = self.file.shared.load(TAIL);
        let mut got = false;
        loop {
            match consumer.pop(tail, |at, buf| self.file.read(at, buf)) {
                Ok(Some(bytes)) => {
                    got = true;
                    deliver(&self.peer, bytes);
                }
                Ok(None) => break,
                Err(e) => {
                    tracing::warn!("shm ring from {}: {e}; starting a new session", self.peer);
                    self.epoch = new_epoch();
                    self.consumer = None;
                    reset_receiver(&self.file.shared, self.epoch);
                    return got;
                }
            }
        }
        if let Some(head) = consumer.credit(idle || !got) {
            self.file.shared.store(HEAD, head);
            self.peer_bell.ring();
        }
        got
    }
}

/// One replica's end of the shared-memory transport.
pub struct ShmTransport {
    outgoing: Arc<HashMap<MemberId, Mutex<Outgoing>>>,
    version: Arc<AtomicU16>,
    events: Receiver<(Version, Message)>,
    stop: Arc<AtomicBool>,
    bell: Arc<Bell>,
    poller: Option<std::thread::JoinHandle<()>>,
}

impl ShmTransport {
    /// Opens (creating where missing) this member's rings and bell in `dir`, each ring of
    /// `ring_bytes` (a multiple of 32 from 4 KiB; every member must use the same), and
    /// starts the poller. `config.max_outstanding_per_replica` bounds the messages waiting
    /// for credits per peer.
    pub fn start(config: &TransportConfig, dir: &Path, ring_bytes: u64) -> Result<Self, StartError> {
        if ring_bytes < 4096 || !ring_bytes.is_multiple_of(32) {
            return Err(StartError::Invalid(
                "a shared-memory ring is a multiple of 32 bytes, at least 4 KiB",
            ));
        }
        let me = &config.me;
        if !config.members.members().iter().any(|m| m.id == *me) {
            return Err(StartError::NotAMember(me.clone()));
        }
        let io = |path: PathBuf| move |e: std::io::Error| StartError::Shm(format!("{}: {e}", path.display()));
        std::fs::create_dir_all(dir).map_err(io(dir.to_owned()))?;
        let bell = Arc::new(Bell::open(dir, me).map_err(io(dir.to_owned()))?);
        let mut outgoing = HashMap::new();
        let mut incoming = Vec::new();
        for peer in config.members.members().iter().map(|m| &m.id).filter(|id| *id != me) {
            let path = dir.join(format!("{}-{}.ring", file_id(me), file_id(peer)));
            let file = RingFile::open(&path, ring_bytes).map_err(io(path.clone()))?;
            let epoch = new_epoch();
            // Until the receiver acknowledges this epoch, nothing of ours is read.
            file.shared.store(SEEN_RECEIVER, 0);
            file.shared.store(TAIL, 0);
            file.shared.store(SENDER_EPOCH, epoch);
            let out = Outgoing {
                file,
                bell: Bell::open(dir, peer).map_err(io(dir.to_owned()))?,
                epoch,
                producer: None,
                pending: VecDeque::new(),
                written: 0,
                max_pending: config.max_outstanding_per_replica,
            };
            outgoing.insert(peer.clone(), Mutex::new(out));
            let path = dir.join(format!("{}-{}.ring", file_id(peer), file_id(me)));
            let file = RingFile::open(&path, ring_bytes).map_err(io(path.clone()))?;
            let epoch = new_epoch();
            reset_receiver(&file.shared, epoch);
            let peer_bell = Bell::open(dir, peer).map_err(io(dir.to_owned()))?;
            incoming.push(Incoming { peer: peer.clone(), file, epoch, consumer: None, peer_bell });
        }
        let outgoing = Arc::new(outgoing);
        let (events_tx, events) = bounded(EVENTS_CAPACITY);
        let stop = Arc::new(AtomicBool::new(false));
        let poller = {
            let (outgoing, stop, bell, limits) =
                (Arc::clone(&outgoing), Arc::clone(&stop), Arc::clone(&bell), config.limits);
            std::thread::Builder::new()
                .name(format!("rsl-shm-{me}"))
                .spawn(move || poll_loop(&mut incoming, &outgoing, &bell, &stop, &limits, &events_tx))
                .map_err(StartError::Thread)?
        };
        Ok(Self {
            outgoing,
            version: Arc::new(AtomicU16::new(config.version.as_u16())),
            events,
            stop,
            bell,
            poller: Some(poller),
        })
    }
}

fn poll_loop(
    incoming: &mut [Incoming],
    outgoing: &HashMap<MemberId, Mutex<Outgoing>>,
    bell: &Bell,
    stop: &AtomicBool,
    limits: &Limits,
    events: &Sender<(Version, Message)>,
) {
    let mut deliver = |peer: &MemberId, bytes: Vec<u8>| {
        // The same gateway as TCP: it decodes, or it is dropped; and it is from the peer.
        let message = decode(&bytes::Bytes::from(bytes), limits).ok().and_then(|wire| {
            let version = wire.header.version;
            wire.into_core().map(|m| (version, m))
        });
        match message {
            Some((version, message)) if message.from == *peer => {
                if let Err(TrySendError::Full(_)) = events.try_send((version, message)) {
                    tracing::warn!("shm: the runtime is behind; a message from {peer} dropped");
                }
            }
            Some((_, message)) => {
                tracing::warn!("shm: a message from {} in {peer}'s ring; refused", message.from)
            }
            None => tracing::warn!("shm: a message from {peer} that does not decode; refused"),
        }
    };
    let mut idle_polls = 0u32;
    while !stop.load(Ordering::Acquire) {
        let seen = bell.sequence().load(Ordering::SeqCst);
        let idle = idle_polls >= SPINS;
        let mut progress = false;
        for ring in incoming.iter_mut() {
            progress |= ring.poll(limits, idle, &mut deliver);
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
            bell.wait(seen);
        } else {
            idle_polls += 1;
            std::hint::spin_loop();
        }
    }
}

impl Transport for ShmTransport {
    fn events(&self) -> &Receiver<(Version, Message)> {
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

    fn stop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.bell.ring();
        if let Some(poller) = self.poller.take() {
            let _ = poller.join();
        }
    }
}

impl Drop for ShmTransport {
    fn drop(&mut self) {
        self.stop();
    }
}
