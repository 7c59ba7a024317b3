//! The bounded send queue of one connection. [`Outbox`] (cloned by senders) refuses a
//! packet once `max` packets are outstanding — queued or being written — which is legacy's
//! `m_maxOutstandingPerReplica`; [`Queue`] (owned by the connection's writer thread) writes
//! every queued packet it can take in one vectored write. Packets are `Bytes` encoded once,
//! so a broadcast shares one buffer between all peers' queues and nothing is copied again.

use bytes::Bytes;
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::io::{self, IoSlice, Write};
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
    outstanding: Arc<AtomicUsize>,
    max: usize,
}

/// The writer's half.
pub(super) struct Queue {
    rx: Receiver<Bytes>,
    outstanding: Arc<AtomicUsize>,
    max: usize,
}

/// A queue that holds at most `max` outstanding packets.
pub(super) fn outbox(max: usize) -> (Outbox, Queue) {
    assert!(max > 0, "a queue must hold a packet");
    // The channel itself is unbounded; the counter bounds it and also covers the packets
    // the writer has taken but not yet written.
    let (tx, rx) = unbounded();
    let outstanding = Arc::new(AtomicUsize::new(0));
    (Outbox { tx, outstanding: Arc::clone(&outstanding), max }, Queue { rx, outstanding, max })
}

impl Outbox {
    pub(super) fn push(&self, packet: Bytes) -> Result<(), PushError> {
        if self.outstanding.fetch_add(1, Ordering::AcqRel) >= self.max {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            return Err(PushError::Full);
        }
        self.tx.send(packet).map_err(|_| {
            self.outstanding.fetch_sub(1, Ordering::AcqRel);
            PushError::Closed
        })
    }
}

impl Queue {
    /// For `select!`: a packet is ready, or every [`Outbox`] is gone.
    pub(super) fn receiver(&self) -> &Receiver<Bytes> {
        &self.rx
    }

    /// Writes `first` and every packet queued behind it with as few syscalls as the
    /// socket allows. On an error the whole batch counts as lost (the peer may have
    /// received part of it; Paxos re-sends what matters).
    pub(super) fn write_batch(&self, first: Bytes, out: &mut impl Write) -> io::Result<()> {
        let batch: Vec<Bytes> = std::iter::once(first).chain(self.rx.try_iter().take(self.max)).collect();
        let result = write_all_vectored(out, &batch);
        self.outstanding.fetch_sub(batch.len(), Ordering::AcqRel);
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
        queue.write_batch(first, &mut written).unwrap();
        assert_eq!(written, b"abcd");
        assert_eq!(outbox.push(Bytes::from_static(b"gh")), Ok(()));
        drop(queue);
        assert_eq!(outbox.push(Bytes::from_static(b"ij")), Err(PushError::Closed));
    }
}
