//! Transports move [`crate::paxos::Message`]s between replicas, behind [`Transport`]:
//! [`TcpTransport`] is the legacy Paxos port (§4.12); [`RingTransport`] carries messages
//! through rings the sender writes one-sidedly ([`ring`] is their protocol), in shared
//! memory between replicas on one host ([`start_shm`]) or over RDMA ([`start_rdma`]);
//! [`ChannelTransport`] connects the replicas of one process over channels (tests,
//! benchmarks).
//!
//! Layout: `tcp` owns sockets and threads; `gateway` turns untrusted stream bytes into
//! admitted messages (every refusal counted); `outbox` is the bounded per-connection send
//! queue with batched writes; `stats` holds the counters; [`inbox`] is the channel that
//! hands admitted messages to the runtime and wakes its engine. [`learn`] is the learn port
//! (§4.5: FetchVotes, FetchCheckpoint, StatusQuery over raw connections), server and
//! learner; `learn_stream` reads its records with the non-tolerant §5.2 rules.
//! Invariants: nothing a peer sends reaches the runtime without passing the gateway, and
//! no queue grows without bound.

mod channel;
mod gateway;
pub mod inbox;
pub mod learn;
mod learn_stream;
mod outbox;
mod rdma;
pub mod ring;
mod ring_transport;
mod shm;
mod stats;
mod tcp;
mod tls;

pub use channel::{ChannelNetwork, ChannelTransport};
pub use rdma::start_rdma;
pub use ring_transport::RingTransport;
pub use shm::start_shm;
pub use stats::{Counters, Refusal, TransportStats};
pub use tcp::{Packet, TcpTransport};
pub use tls::{SubjectRule, Tls, TlsConfig, TlsError};

use crate::paxos::{Member, MemberId, MemberSet, Message};
use crate::wire::{EncodeError, Limits, Version};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

/// What the runtime needs of a transport. Losing a message is allowed (Paxos re-sends);
/// reordering between two replicas is allowed too.
pub trait Transport: Send + 'static {
    /// Messages admitted from peers, each with the version it was sent in.
    fn events(&self) -> &inbox::Receiver<(Version, Message)>;
    /// Queues `message` for `to` (requests and responses alike); it may still be lost.
    fn send(&self, to: &MemberId, message: &Message) -> Result<(), SendError>;
    /// Encodes outgoing messages in `version` from now on (legacy raises it at run time).
    fn set_version(&self, version: Version);
    /// Stops delivering and sending; joins the transport's threads.
    fn stop(&mut self);
    /// The transport's refusal and connection counters, live.
    fn counters(&self) -> Arc<Counters>;
    /// Talks to the members of `members` it does not know yet too (a new configuration's);
    /// the members it knew stay reachable (a removed replica still learns and answers).
    fn add_members(&mut self, members: &MemberSet) -> Result<(), StartError>;
    /// The address `member`'s newest connection to us comes from, where connections have
    /// one: how a replica that knows no members reaches the one inviting it to join.
    fn source_of(&self, _member: &MemberId) -> Option<std::net::IpAddr> {
        None
    }
}

/// The settings of one replica's transport (legacy `RSLConfigParam` rows 13, 14, 17, 27 and
/// `EnableListenOnAllIPs`, plus the reconnect backoff).
#[derive(Clone, Debug)]
pub struct TransportConfig {
    /// This replica; must be in `members`.
    pub me: MemberId,
    /// The configuration: ids, IPs (0 = any source, for tests) and Paxos ports.
    pub members: MemberSet,
    /// The version outgoing messages are encoded in; every version is accepted.
    pub version: Version,
    /// Largest packet accepted (`m_maxMessageSizeMB`); a larger one drops the connection.
    pub limits: Limits,
    /// Connect and send timeout (`m_sendTimeoutSec`).
    pub send_timeout: Duration,
    /// Longest silence in the middle of a packet (`m_receiveTimeoutSec`); an idle
    /// connection between packets is kept.
    pub receive_timeout: Duration,
    /// Packets queued or being written per connection before new ones are dropped
    /// (`m_maxOutstandingPerReplica`).
    pub max_outstanding_per_replica: usize,
    /// Listen on every address and let the kernel choose outgoing source addresses
    /// (`EnableListenOnAllIPs`); otherwise both are bound to this member's IP.
    pub listen_on_all_ips: bool,
    /// The first reconnect delay; it doubles per failed attempt up to `reconnect_max`.
    pub reconnect_min: Duration,
    pub reconnect_max: Duration,
    /// TLS on every connection (legacy `SetThumbprintsForSsl`), or none.
    pub tls: Option<Arc<Tls>>,
    /// The cluster's name, exchanged when a connection opens: a peer naming another (or
    /// none) is refused. Every member must set the same; legacy replicas send none, so a
    /// cluster with legacy members leaves it unset. Not a secret: TLS authenticates.
    pub cluster: Option<String>,
}

impl TransportConfig {
    /// Legacy defaults: 5 s send and receive timeouts, 10 outstanding packets per peer,
    /// 100 MiB packets; reconnects back off from 15 ms (legacy's effective retry delay) to 1 s.
    pub fn new(me: MemberId, members: MemberSet, version: Version) -> Self {
        Self {
            me,
            members,
            version,
            limits: Limits::default(),
            send_timeout: Duration::from_secs(5),
            receive_timeout: Duration::from_secs(5),
            max_outstanding_per_replica: 10,
            listen_on_all_ips: false,
            reconnect_min: Duration::from_millis(15),
            reconnect_max: Duration::from_secs(1),
            tls: None,
            cluster: None,
        }
    }
}

/// Where the RDMA transport finds its device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RdmaConfig {
    /// The verbs device (`mlx5_0`, say); `None` takes the first one.
    pub device: Option<String>,
    /// Its port, from 1.
    pub port: u8,
    /// The GID table index (RoCE v2 is often 3; 0 on InfiniBand).
    pub gid_index: u8,
    /// Bytes of each receive ring.
    pub ring_bytes: u64,
}

impl Default for RdmaConfig {
    fn default() -> Self {
        Self { device: None, port: 1, gid_index: 0, ring_bytes: 4 << 20 }
    }
}

/// Why [`TcpTransport::start`] failed.
#[derive(Debug)]
pub enum StartError {
    /// `me` is not in the member set.
    NotAMember(MemberId),
    /// A setting that cannot work (zero timeout, zero queue bound, backoff out of order).
    Invalid(&'static str),
    /// The listener could not be bound.
    Listen(std::io::Error),
    /// A thread could not be started.
    Thread(std::io::Error),
    /// A shared-memory file could not be opened or mapped.
    Shm(String),
    /// RDMA is not available (no feature, no device) or its set-up failed.
    Rdma(String),
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAMember(id) => write!(f, "member {id} is not in the configuration"),
            Self::Invalid(why) => write!(f, "invalid transport setting: {why}"),
            Self::Listen(e) => write!(f, "cannot listen on the Paxos port: {e}"),
            Self::Thread(e) => write!(f, "cannot start a transport thread: {e}"),
            Self::Shm(why) => write!(f, "cannot open the shared-memory transport: {why}"),
            Self::Rdma(why) => write!(f, "cannot start the RDMA transport: {why}"),
        }
    }
}

impl std::error::Error for StartError {}

/// Why a message was not queued. Losing a message is normal for Paxos (it re-sends), so
/// the runtime may ignore these; [`SendError::QueueFull`] and [`SendError::NoConnection`]
/// are also counted in [`TransportStats`].
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The message cannot be carried by the configured version.
    Encode(EncodeError),
    /// The destination is not a peer in the configuration.
    UnknownPeer(MemberId),
    /// The peer already has `max_outstanding_per_replica` packets outstanding.
    QueueFull,
    /// A response to a peer that has no inbound connection to answer on.
    NoConnection,
    /// The transport was stopped.
    Stopped,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "cannot encode: {e}"),
            Self::UnknownPeer(id) => write!(f, "{id} is not a peer"),
            Self::QueueFull => f.write_str("the peer's send queue is full"),
            Self::NoConnection => f.write_str("no connection from the peer to respond on"),
            Self::Stopped => f.write_str("the transport is stopped"),
        }
    }
}

impl std::error::Error for SendError {}

/// A member's IPv4 address from the legacy `RSLNode::m_ip` value: network byte order in
/// memory, as `inet_addr` returns it on the little-endian hosts legacy runs on.
pub fn member_addr(ip: u32) -> Ipv4Addr {
    Ipv4Addr::from(ip.to_le_bytes())
}

/// Where `member` listens on `port`: at its IP, or else at its host name resolved now to
/// an IPv4 address, as legacy's default `ResolveNode` does. Callers resolve on every
/// connection, so a member whose name moves to another address is found there. A member
/// with neither is at IP 0: this host.
pub fn member_socket(member: &Member, port: u16) -> io::Result<SocketAddr> {
    if member.ip != 0 || member.host_name.is_empty() {
        return Ok(SocketAddr::from((member_addr(member.ip), port)));
    }
    Ok(SocketAddr::from((resolve_ipv4(&member.host_name)?, port)))
}

/// The first IPv4 address `host` resolves to (legacy resolves names to IPv4 only).
pub fn resolve_ipv4(host: &str) -> io::Result<Ipv4Addr> {
    let found = (host, 0).to_socket_addrs()?.find_map(|addr| match addr {
        SocketAddr::V4(addr) => Some(*addr.ip()),
        SocketAddr::V6(_) => None,
    });
    let why = || io::Error::new(io::ErrorKind::NotFound, format!("host name {host:?} has no IPv4 address"));
    found.ok_or_else(why)
}

/// The legacy `m_ip` value of `addr` (the inverse of [`member_addr`]).
pub fn member_ip(addr: Ipv4Addr) -> u32 {
    u32::from_le_bytes(addr.octets())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_is_at_its_ip_or_else_at_its_host_names_ipv4_address() {
        let at_ip = Member {
            ip: member_ip(Ipv4Addr::new(127, 0, 0, 3)),
            host_name: "localhost".to_owned(),
            ..Member::named("1").unwrap()
        };
        assert_eq!(member_socket(&at_ip, 7).unwrap(), "127.0.0.3:7".parse().unwrap());
        let named = Member { ip: 0, ..at_ip.clone() };
        assert_eq!(member_socket(&named, 7).unwrap(), "127.0.0.1:7".parse().unwrap());
        let neither = Member { ip: 0, host_name: String::new(), ..at_ip };
        assert_eq!(member_socket(&neither, 7).unwrap(), "0.0.0.0:7".parse().unwrap());
        assert!(resolve_ipv4("").is_err(), "an empty name resolves to nothing");
    }
}
