//! The in-process transport: replicas of one process exchange messages over channels, for
//! tests and benchmarks of the whole runtime without sockets. It keeps what the wire would
//! do to a message: each one is encoded in the sender's version and decoded by the
//! receiver (so version-dependent fields are dropped exactly as on TCP), and queues are
//! bounded (`max_outstanding_per_replica`), so a full one drops, as TCP's outbox does.

use super::{inbox, Counters, SendError, StartError, Transport};
use crate::paxos::{MemberId, MemberSet, Message};
use crate::wire::{decode, Limits, Version, WireMessage};
use bytes::Bytes;
use crossbeam_channel::{bounded, Sender, TrySendError};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU16, AtomicU64, Ordering};
use std::sync::Arc;

/// Each member's inbox, with the serial of the join that made it.
type Inboxes = HashMap<MemberId, (u64, Sender<Bytes>)>;

/// The replicas of one process: each [`ChannelNetwork::join`] gets a [`ChannelTransport`].
#[derive(Clone, Default)]
pub struct ChannelNetwork {
    inboxes: Arc<Mutex<Inboxes>>,
    joins: Arc<AtomicU64>,
}

impl ChannelNetwork {
    /// `me`'s end of the network, with room for `capacity` messages in its inbox. A
    /// replica that joins again (a restart) replaces its old inbox.
    pub fn join(&self, me: MemberId, version: Version, capacity: usize) -> ChannelTransport {
        let (inbox, packets) = bounded(capacity);
        let serial = self.joins.fetch_add(1, Ordering::Relaxed);
        self.inboxes.lock().insert(me.clone(), (serial, inbox));
        let (events_tx, events) = inbox::bounded(capacity);
        let version = Arc::new(AtomicU16::new(version.as_u16()));
        let decoder = std::thread::Builder::new()
            .name(format!("rsl-channel-{me}"))
            .spawn(move || {
                for packet in packets {
                    // Anything that does not decode is dropped, as the TCP gateway does.
                    let Ok(wire) = decode(&packet, &Limits::default()) else { continue };
                    let version = wire.header.version;
                    let Some(message) = wire.into_core() else { continue };
                    if events_tx.send((version, message)).is_err() {
                        return;
                    }
                }
            })
            .expect("a decoder thread");
        ChannelTransport { network: self.clone(), me, serial, version, events, decoder: Some(decoder) }
    }
}

/// One replica's end of a [`ChannelNetwork`].
pub struct ChannelTransport {
    network: ChannelNetwork,
    me: MemberId,
    serial: u64,
    version: Arc<AtomicU16>,
    events: inbox::Receiver<(Version, Message)>,
    decoder: Option<std::thread::JoinHandle<()>>,
}

impl Transport for ChannelTransport {
    fn events(&self) -> &inbox::Receiver<(Version, Message)> {
        &self.events
    }

    fn send(&self, to: &MemberId, message: &Message) -> Result<(), SendError> {
        let version =
            Version::from_u16(self.version.load(Ordering::Relaxed)).expect("only versions are stored");
        let wire = WireMessage::from_core(message, version).map_err(SendError::Encode)?;
        let bytes = wire.to_bytes().map_err(SendError::Encode)?;
        let inbox = self.network.inboxes.lock().get(to).map(|(_, inbox)| inbox.clone());
        let inbox = inbox.ok_or_else(|| SendError::UnknownPeer(to.clone()))?;
        inbox.try_send(Bytes::from(bytes)).map_err(|e| match e {
            TrySendError::Full(_) => SendError::QueueFull,
            TrySendError::Disconnected(_) => SendError::NoConnection,
        })
    }

    fn set_version(&self, version: Version) {
        self.version.store(version.as_u16(), Ordering::Relaxed);
    }

    fn stop(&mut self) {
        // Only our own inbox (a restarted replica may have replaced it); once it is gone the
        // decoder sees its channel closed and ends.
        let mut inboxes = self.network.inboxes.lock();
        if inboxes.get(&self.me).is_some_and(|(serial, _)| *serial == self.serial) {
            inboxes.remove(&self.me);
        }
        drop(inboxes);
        if let Some(decoder) = self.decoder.take() {
            let _ = decoder.join();
        }
    }

    /// In-process channels refuse nothing: the counters stay at zero.
    fn counters(&self) -> Arc<Counters> {
        Arc::default()
    }

    /// Every replica of the network is reachable already.
    fn add_members(&mut self, _members: &MemberSet) -> Result<(), StartError> {
        Ok(())
    }
}
