//! The shared-memory transport, for replicas on one host: the one-sided
//! [`super::ring_transport`] over memory-mapped files in a directory all of them use (on
//! tmpfs, `/dev/shm`).
//!
//! Files: `<from>-<to>.ring`, one per direction of each pair, holding two control lines
//! and the ring; `<member>.bell`, one per receiver, a futex word its senders ring (after
//! publishing a tail or returning credits) and its poller sleeps on.

use super::ring_transport::{Doorbell, Lines, PeerLines, RingMemory, RingTransport, Shared, DATA};
use super::{StartError, TransportConfig};
use crate::paxos::MemberId;
use memmap2::MmapRaw;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The longest sleep: how soon a new ring file or a stop is noticed.
const NAP: Duration = Duration::from_millis(5);

/// Maps `path`, creating it with `len` zero bytes if it does not exist.
fn open(path: &Path, len: u64) -> std::io::Result<Shared> {
    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
    let actual = file.metadata()?.len();
    if actual == 0 {
        file.set_len(len)?;
    } else if actual != len {
        let why =
            format!("{} has {actual} bytes, not {len}: another ring size is configured", path.display());
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, why));
    }
    Ok(Shared { map: MmapRaw::map_raw(&file)? })
}

/// A ring file, with the bell of the member at its other end.
struct ShmLines {
    ring: RingMemory,
    peer_bell: Arc<Bell>,
}

impl ShmLines {
    fn open(path: &Path, capacity: u64, peer_bell: Arc<Bell>) -> std::io::Result<Self> {
        let shared = Arc::new(open(path, DATA as u64 + capacity)?);
        Ok(Self { ring: RingMemory { shared, base: 0, capacity }, peer_bell })
    }
}

impl Lines for ShmLines {
    fn capacity(&self) -> u64 {
        self.ring.capacity
    }

    fn peer(&self, at: usize) -> u64 {
        self.ring.load(at)
    }

    fn store(&mut self, at: usize, value: u64) {
        self.ring.store(at, value)
    }

    fn write(&mut self, at: u64, bytes: &[u8]) {
        self.ring.write(at, bytes)
    }

    fn read(&self, at: u64, buf: &mut [u8]) {
        self.ring.read(at, buf)
    }

    fn notify(&self) {
        self.peer_bell.ring()
    }
}

/// A receiver's doorbell: a sequence its senders bump, a futex its poller sleeps on.
struct Bell {
    shared: Shared,
}

impl Bell {
    fn open(dir: &Path, member: &MemberId) -> std::io::Result<Self> {
        Ok(Self { shared: open(&dir.join(format!("{}.bell", file_id(member))), 64)? })
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

impl Doorbell for Bell {
    fn mark(&self) -> u64 {
        self.sequence().load(Ordering::SeqCst).into()
    }

    fn wait(&self, mark: u64) {
        Bell::wait(self, mark as u32)
    }

    fn wake(&self) {
        self.ring()
    }
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

/// Opens (creating where missing) this member's rings and bell in `dir`, each ring of
/// `ring_bytes` (a multiple of 32 from 4 KiB; every member must use the same), and starts
/// the transport. `config.max_outstanding_per_replica` bounds the messages waiting for
/// credits per peer.
pub fn start_shm(config: &TransportConfig, dir: &Path, ring_bytes: u64) -> Result<RingTransport, StartError> {
    if ring_bytes < 4096 || !ring_bytes.is_multiple_of(32) {
        return Err(StartError::Invalid("a shared-memory ring is a multiple of 32 bytes, at least 4 KiB"));
    }
    let me = &config.me;
    if !config.members.members().iter().any(|m| m.id == *me) {
        return Err(StartError::NotAMember(me.clone()));
    }
    let io = |path: PathBuf| move |e: std::io::Error| StartError::Shm(format!("{}: {e}", path.display()));
    std::fs::create_dir_all(dir).map_err(io(dir.to_owned()))?;
    let bell = Arc::new(Bell::open(dir, me).map_err(io(dir.to_owned()))?);
    let mut peers = Vec::new();
    for peer in config.members.members().iter().map(|m| &m.id).filter(|id| *id != me) {
        let peer_bell = Arc::new(Bell::open(dir, peer).map_err(io(dir.to_owned()))?);
        let ring = |from, to| {
            let path = dir.join(format!("{}-{}.ring", file_id(from), file_id(to)));
            ShmLines::open(&path, ring_bytes, Arc::clone(&peer_bell)).map_err(io(path))
        };
        let (outgoing, incoming) = (Box::new(ring(me, peer)?), Box::new(ring(peer, me)?));
        peers.push(PeerLines { peer: peer.clone(), outgoing, incoming });
    }
    RingTransport::start(config, "shm", peers, bell, None)
}
