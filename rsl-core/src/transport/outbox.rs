//! The bounded send queue of one connection. [`Outbox`] (cloned by senders) refuses a
//! packet once `max` packets are outstanding — queued or being written — which is legacy's
//! `m_maxOutstandingPerReplica`; [`Queue`] (owned by the connection's writer thread) writes
//! every queued packet it can take in one vectored write. Packets are `Bytes` encoded once,
//! so a broadcast shares one buffer between all peers' queues and nothing is copied again.
//!
//! A sender writes a packet itself when nothing is outstanding and the connection is plain
//! TCP (the writer [`Queue::open`]ed it): one non-blocking send instead of waking the
//! writer thread, a thread hand-off saved on the commit path. What the socket does not take
//! at once (the tail) the writer writes before anything else, on that connection only; the
//! writer holds the line while it writes, and a sender only tries it, so neither framing
//! nor the sender's thread is ever at risk.

use bytes::Bytes;
use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;
use socket2::SockRef;
use std::io::{self, IoSlice, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Why a packet was not queued.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum PushError {
    Full,
    /// The writer is gone (connection closed or transport stopped).
    Closed,
}

/// The sending half: cheap to clone, shared by every thread that sends to this connection.
#[derive(Clone)]
pub(super) struct Outbox {
    tx: Sender<Bytes>,
    shared: Arc<Shared>,
    max: usize,
}

/// The writer's half.
pub(super) struct Queue {
    rx: Receiver<Bytes>,
    shared: Arc<Shared>,
    max: usize,
}

struct Shared {
    /// Packets queued or being written by the writer (the channel itself is unbounded).
    outstanding: AtomicUsize,
    line: Mutex<Line>,
}

/// The connection senders may write to themselves.
#[derive(Default)]
struct Line {
    /// The open connection (its serial) while it is plain TCP.
    open: Option<(u64, Arc<TcpStream>)>,
    /// What a sender's write left unsent, and on which connection.
    tail: Option<(u64, Bytes)>,
}

/// A queue that holds at most `max` outstanding packets.
pub(super) fn outbox(max: usize) -> (Outbox, Queue) {
    assert!(max > 0, "a queue must hold a packet");
    let (tx, rx) = unbounded();
    let shared = Arc::new(Shared { outstanding: AtomicUsize::new(0), line: Mutex::new(Line::default()) });
    (Outbox { tx, shared: Arc::clone(&shared), max }, Queue { rx, shared, max })
}

impl Outbox {
    pub(super) fn push(&self, packet: Bytes) -> Result<(), PushError> {
        let Some(packet) = self.write_directly(packet) else { return Ok(()) };
        let outstanding = &self.shared.outstanding;
        if outstanding.fetch_add(1, Ordering::AcqRel) >= self.max {
            outstanding.fetch_sub(1, Ordering::AcqRel);
            return Err(PushError::Full);
        }
        self.tx.send(packet).map_err(|_| {
            outstanding.fetch_sub(1, Ordering::AcqRel);
            PushError::Closed
        })
    }

    /// Sends `packet` on this thread if nothing is outstanding and the line is free: `None`
    /// once it is written whole; else what must still be queued (all of it, or an empty
    /// packet that wakes the writer for the tail it left).
    fn write_directly(&self, packet: Bytes) -> Option<Bytes> {
        if self.shared.outstanding.load(Ordering::Acquire) != 0 {
            return Some(packet);
        }
        let Some(mut line) = self.shared.line.try_lock() else { return Some(packet) };
        let Some((serial, stream)) = &line.open else { return Some(packet) };
        if self.shared.outstanding.load(Ordering::Acquire) != 0 {
            return Some(packet);
        }
        let flags = libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL;
        match SockRef::from(&**stream).send_with_flags(&packet, flags) {
            Ok(sent) if sent == packet.len() => None,
            Ok(sent) => {
                line.tail = Some((*serial, packet.slice(sent..)));
                Some(Bytes::new())
            }
            // Full, or broken: the writer sends it, or finds the connection broken.
            Err(_) => Some(packet),
        }
    }
}

impl Queue {
    /// For `select!`: a packet is ready, or every [`Outbox`] is gone.
    pub(super) fn receiver(&self) -> &Receiver<Bytes> {
        &self.rx
    }

    /// Lets senders write to connection `serial` themselves (a plain TCP one), until
    /// [`Queue::close`].
    pub(super) fn open(&self, serial: u64, stream: Arc<TcpStream>) {
        self.shared.line.lock().open = Some((serial, stream));
    }

    /// The connection ended: senders queue again, and a tail left on it is lost with it.
    pub(super) fn close(&self) {
        *self.shared.line.lock() = Line::default();
    }

    /// Writes the tail a sender left on connection `serial`, then `first` and every packet
    /// queued behind it, with as few syscalls as the socket allows. On an error the whole
    /// batch counts as lost (the peer may have received part of it; Paxos re-sends what
    /// matters).
    pub(super) fn write_batch(&self, first: Bytes, out: &mut impl Write, serial: u64) -> io::Result<()> {
        let mut batch: Vec<Bytes> = std::iter::once(first).chain(self.rx.try_iter().take(self.max)).collect();
        let taken = batch.len();
        let mut line = self.shared.line.lock();
        if let Some((_, tail)) = line.tail.take().filter(|(on, _)| *on == serial) {
            batch.insert(0, tail);
        }
        batch.retain(|packet| !packet.is_empty()); // a sender's wake-up for its tail
        let result = write_all_vectored(out, &batch);
        drop(line);
        self.shared.outstanding.fetch_sub(taken, Ordering::AcqRel);
        result
    }
}

fn write_all_vectored(out: &mut impl Write, packets: &[Bytes]) -> io::Result<()> {
    let mut slices: Vec<IoSlice<'_>> = packets.iter().map(|p| IoSlice::new(p)).collect();
    let mut slices = &mut slices[..];
    while !slices.is_empty() {
        match out.write_vectored(slices) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => IoSlice::advance_slices(&mut slices, n),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bound_counts_packets_until_they_are_written() {
        let (outbox, queue) = outbox(2);
        assert_eq!(outbox.push(Bytes::from_static(b"ab")), Ok(()));
        assert_eq!(outbox.push(Bytes::from_static(b"cd")), Ok(()));
        assert_eq!(outbox.push(Bytes::from_static(b"ef")), Err(PushError::Full));
        let first = queue.receiver().recv().unwrap();
        let mut written = Vec::new();
        queue.write_batch(first, &mut written, 0).unwrap();
        assert_eq!(written, b"abcd");
        assert_eq!(outbox.push(Bytes::from_static(b"gh")), Ok(()));
        drop(queue);
        assert_eq!(outbox.push(Bytes::from_static(b"ij")), Err(PushError::Closed));
    }

    /// A connected pair on loopback: (our end, the peer's).
    fn pair() -> (Arc<TcpStream>, TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        (Arc::new(ours), listener.accept().unwrap().0)
    }

    fn read_exactly(from: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut got = vec![0; n];
        io::Read::read_exact(from, &mut got).unwrap();
        got
    }

    #[test]
    fn a_sender_writes_itself_when_nothing_is_outstanding_and_its_tail_goes_first() {
        let (outbox, queue) = outbox(8);
        let (ours, mut theirs) = pair();
        queue.open(1, Arc::clone(&ours));
        // Written on this thread: nothing reaches the queue.
        outbox.push(Bytes::from_static(b"direct")).unwrap();
        assert!(queue.receiver().is_empty());
        assert_eq!(read_exactly(&mut theirs, 6), b"direct");

        // A packet larger than the socket takes at once leaves a tail; an empty packet wakes
        // the writer, which writes the tail before the packets queued behind it.
        SockRef::from(&*ours).set_send_buffer_size(4096).unwrap();
        let big: Vec<u8> = (0..4_000_000u32).map(|i| i as u8).collect();
        outbox.push(Bytes::from(big.clone())).unwrap();
        assert!(queue.shared.line.lock().tail.is_some(), "the socket took part of it");
        assert_eq!(queue.receiver().recv().unwrap(), Bytes::new(), "the wake-up for the tail");
        outbox.push(Bytes::from_static(b"after")).unwrap();
        let reader = std::thread::spawn(move || {
            read_exactly(&mut theirs, big.len() + 5) == [&big[..], b"after"].concat()
        });
        let mut wire = &*ours;
        queue.write_batch(Bytes::new(), &mut wire, 1).unwrap();
        assert!(reader.join().unwrap(), "the big packet whole, then the next");

        // A tail left on a connection that ended is not written on the next one.
        let (ours, _theirs) = pair();
        queue.shared.line.lock().tail = Some((1, Bytes::from_static(b"old tail")));
        queue.open(2, Arc::clone(&ours));
        let mut written = Vec::new();
        queue.write_batch(Bytes::from_static(b"new"), &mut written, 2).unwrap();
        assert_eq!(written, b"new");
        queue.close();
        assert!(queue.shared.line.lock().open.is_none());
    }
}
