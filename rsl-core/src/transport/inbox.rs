//! Channels whose sends also wake one thread, so that a thread draining several of them
//! (the engine: its own events, the Paxos port's messages, the learn port's status
//! queries) waits with `thread::park` instead of `select!`, and a thread confined to one
//! CPU sleeps at once instead of spinning first.
//!
//! Why: a `select!` registers a waker on every channel and, once woken, unregisters them
//! all under each channel's lock. A sender notifies under that same lock, so the engine,
//! woken on the sender's CPU, preempted the sender still holding it and then slept on it:
//! two more futex calls and context switches, about once per commit at one client.
//! Unparking takes no lock. And crossbeam's blocking receive spins about a hundred
//! `pause`s and yields four times before it sleeps: where the thread may run on another
//! CPU, that keeps the CPU awake for the next message and saves the sender a cross-CPU
//! wake-up (tens of µs in a VM); on a CPU shared with the threads it waits for, it only
//! takes their time.
//!
//! Invariant: every value sent, and every sender dropped, is followed by a wake-up of the
//! reader, once the reader named itself; a reader that drains every channel before
//! parking misses nothing, not even the last sender gone.

use crossbeam_channel::{RecvTimeoutError, SendError, TryRecvError, TrySendError};
use crossbeam_utils::Backoff;
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::thread::{self, Thread};
use std::time::Instant;

/// The thread to wake: unset until the reader names itself.
type Reader = Arc<OnceLock<Thread>>;

pub fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let reader = Reader::default();
    (Sender { tx, reader: Arc::clone(&reader) }, Receiver { rx, reader })
}

pub fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let reader = Reader::default();
    (Sender { tx, reader: Arc::clone(&reader) }, Receiver { rx, reader })
}

pub struct Sender<T> {
    tx: crossbeam_channel::Sender<T>,
    reader: Reader,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self { tx: self.tx.clone(), reader: Arc::clone(&self.reader) }
    }
}

impl<T> Sender<T> {
    pub fn send(&self, value: T) -> Result<(), SendError<T>> {
        self.tx.send(value)?;
        self.wake();
        Ok(())
    }

    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        self.tx.try_send(value)?;
        self.wake();
        Ok(())
    }

    /// The channel itself, for a `select!` that sends on it; call [`Sender::wake`] after.
    pub fn channel(&self) -> &crossbeam_channel::Sender<T> {
        &self.tx
    }

    pub fn wake(&self) {
        if let Some(reader) = self.reader.get() {
            reader.unpark();
        }
    }
}

/// The last sender gone disconnects the channel, which a parked reader must see.
impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.wake();
    }
}

/// Whether the calling thread should spin briefly before it parks: only where it may run
/// on more than one CPU. Asked once per thread: it reads the thread's CPU affinity.
pub fn spins() -> bool {
    thread::available_parallelism().is_ok_and(|n| n.get() > 1)
}

/// A channel's receiving end; it reads as a plain crossbeam receiver too.
pub struct Receiver<T> {
    rx: crossbeam_channel::Receiver<T>,
    reader: Reader,
}

impl<T> Receiver<T> {
    /// Makes the calling thread the one every send wakes, for the channel's life.
    /// Returns false if another thread was named before.
    pub fn wake_me(&self) -> bool {
        let me = thread::current();
        self.reader.get_or_init(|| me.clone()).id() == me.id()
    }

    /// Waits for a value until `deadline` (`None`: for ever), spinning first if `spin`
    /// (see [`spins`]), then parked; the calling thread must be the one named by
    /// [`Receiver::wake_me`].
    pub fn park_recv(&self, deadline: Option<Instant>, spin: bool) -> Result<T, RecvTimeoutError> {
        let backoff = Backoff::new();
        loop {
            match self.rx.try_recv() {
                Ok(value) => return Ok(value),
                Err(TryRecvError::Disconnected) => return Err(RecvTimeoutError::Disconnected),
                Err(TryRecvError::Empty) => {}
            }
            if spin && !backoff.is_completed() {
                backoff.snooze();
                continue;
            }
            match deadline.map(|d| d.checked_duration_since(Instant::now())) {
                None => thread::park(),
                Some(Some(wait)) if !wait.is_zero() => thread::park_timeout(wait),
                Some(_) => return Err(RecvTimeoutError::Timeout),
            }
        }
    }
}

impl<T> Deref for Receiver<T> {
    type Target = crossbeam_channel::Receiver<T>;

    fn deref(&self) -> &Self::Target {
        &self.rx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_send_wakes_the_parked_reader_and_only_the_named_one_is_woken() {
        let (tx, rx) = unbounded();
        let reader = std::thread::spawn(move || {
            assert!(rx.wake_me());
            let started = Instant::now();
            while rx.try_recv().is_err() {
                std::thread::park_timeout(Duration::from_secs(30));
            }
            assert!(!std::thread::scope(|s| s.spawn(|| rx.wake_me()).join().unwrap()), "named once");
            started.elapsed()
        });
        std::thread::sleep(Duration::from_millis(50));
        tx.send(7).unwrap();
        let waited = reader.join().unwrap();
        assert!(waited < Duration::from_secs(10), "woken by the send, not the timeout: {waited:?}");
    }

    #[test]
    fn a_parked_reader_gets_the_value_a_timeout_or_the_last_sender_gone() {
        let (tx, rx) = unbounded::<u32>();
        let spare = tx.clone();
        let reader = std::thread::spawn(move || {
            assert!(rx.wake_me());
            let soon = Some(Instant::now() + Duration::from_millis(20));
            assert_eq!(rx.park_recv(soon, true), Err(RecvTimeoutError::Timeout));
            let values = [rx.park_recv(None, false), rx.park_recv(None, true)];
            (values, rx.park_recv(Some(Instant::now() + Duration::from_secs(30)), false))
        });
        std::thread::sleep(Duration::from_millis(100));
        tx.send(1).unwrap();
        drop(tx);
        std::thread::sleep(Duration::from_millis(50));
        spare.send(2).unwrap();
        std::thread::sleep(Duration::from_millis(50));
        drop(spare); // wakes the parked reader, or it times out
        let (values, last) = reader.join().unwrap();
        assert_eq!(values, [Ok(1), Ok(2)]);
        assert_eq!(last, Err(RecvTimeoutError::Disconnected));
    }

    #[test]
    fn a_full_or_closed_channel_refuses() {
        let (tx, rx) = bounded(1);
        assert!(rx.wake_me());
        tx.try_send(1).unwrap();
        assert!(matches!(tx.try_send(2), Err(TrySendError::Full(2))));
        drop(rx);
        assert!(tx.send(3).is_err());
    }
}
