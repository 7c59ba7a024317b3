//! Counters of one transport: every refusal by reason, and the connections it made and
//! accepted. Threads bump relaxed atomics; [`TransportStats`] is a plain snapshot. There
//! is no logging (no logging crate is a dependency yet): a refusal is visible only here.

use std::sync::atomic::{AtomicU64, Ordering};

/// Why a packet, a message or a send was refused.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Refusal {
    /// The sender's member id is not a peer in the configuration, or the connection comes
    /// from an address no peer has (connection closed).
    NonMember,
    /// The sender is a member, but the packet came from another IP (connection closed).
    WrongAddress,
    /// The packet size exceeds `max_message_size` (connection closed).
    Oversize,
    /// The packet checksum does not match (packet dropped).
    BadChecksum,
    /// A size below 20 bytes (connection closed) or a message the codec rejects (packet
    /// dropped).
    Malformed,
    /// A send to a peer with `max_outstanding_per_replica` packets outstanding.
    QueueFull,
    /// A request arriving on one of our client connections, which carry responses only
    /// (packet dropped).
    WrongDirection,
    /// A well-formed message the protocol core does not handle yet (ids 8–14, packet
    /// dropped).
    Unsupported,
    /// A response to a peer with no inbound connection to answer on.
    NoConnection,
    /// A peer went silent for `receive_timeout` in the middle of a packet (connection closed).
    Stalled,
    /// An inbound connection over the limits (per source address, or in all): refused, or
    /// the oldest on which no peer has spoken evicted for it.
    ConnectionLimit,
    /// A TLS handshake that failed or timed out: no certificate, one not pinned, expired,
    /// or not TLS at all (connection closed).
    Tls,
    /// A connection whose peer named another cluster, or none, where one is configured
    /// (connection closed).
    OtherCluster,
}

const REFUSALS: usize = 13;
const _: () = assert!(Refusal::OtherCluster as usize + 1 == REFUSALS, "one counter per reason");

impl Refusal {
    fn index(self) -> usize {
        self as usize
    }
}

/// A snapshot of a transport's counters.
#[derive(Clone, Copy, PartialEq, Eq, Default, Debug)]
pub struct TransportStats {
    pub non_member: u64,
    pub wrong_address: u64,
    pub oversize: u64,
    pub bad_checksum: u64,
    pub malformed: u64,
    pub queue_full: u64,
    pub wrong_direction: u64,
    pub unsupported: u64,
    pub no_connection: u64,
    pub stalled: u64,
    pub connection_limit: u64,
    pub tls: u64,
    pub other_cluster: u64,
    /// Outgoing (client) connections established, reconnections included.
    pub connects: u64,
    /// Inbound connections accepted.
    pub accepts: u64,
}

impl TransportStats {
    /// The count of one refusal reason.
    pub fn refused(&self, reason: Refusal) -> u64 {
        match reason {
            Refusal::NonMember => self.non_member,
            Refusal::WrongAddress => self.wrong_address,
            Refusal::Oversize => self.oversize,
            Refusal::BadChecksum => self.bad_checksum,
            Refusal::Malformed => self.malformed,
            Refusal::QueueFull => self.queue_full,
            Refusal::WrongDirection => self.wrong_direction,
            Refusal::Unsupported => self.unsupported,
            Refusal::NoConnection => self.no_connection,
            Refusal::Stalled => self.stalled,
            Refusal::ConnectionLimit => self.connection_limit,
            Refusal::Tls => self.tls,
            Refusal::OtherCluster => self.other_cluster,
        }
    }
}

/// The live counters, shared by a transport's threads and whoever reports them.
#[derive(Default, Debug)]
pub struct Counters {
    refused: [AtomicU64; REFUSALS],
    connects: AtomicU64,
    accepts: AtomicU64,
}

impl Counters {
    pub(super) fn refuse(&self, reason: Refusal) {
        self.refused[reason.index()].fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn connected(&self) {
        self.connects.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn accepted(&self) {
        self.accepts.fetch_add(1, Ordering::Relaxed);
    }

    pub fn snapshot(&self) -> TransportStats {
        let r = |reason: Refusal| self.refused[reason.index()].load(Ordering::Relaxed);
        TransportStats {
            non_member: r(Refusal::NonMember),
            wrong_address: r(Refusal::WrongAddress),
            oversize: r(Refusal::Oversize),
            bad_checksum: r(Refusal::BadChecksum),
            malformed: r(Refusal::Malformed),
            queue_full: r(Refusal::QueueFull),
            wrong_direction: r(Refusal::WrongDirection),
            unsupported: r(Refusal::Unsupported),
            no_connection: r(Refusal::NoConnection),
            stalled: r(Refusal::Stalled),
            connection_limit: r(Refusal::ConnectionLimit),
            tls: r(Refusal::Tls),
            other_cluster: r(Refusal::OtherCluster),
            connects: self.connects.load(Ordering::Relaxed),
            accepts: self.accepts.load(Ordering::Relaxed),
        }
    }
}
