//! The Paxos-port TCP transport (legacy NetPacketSvc, §4.12). Each replica listens on its
//! `rsl_port` and keeps one persistent client connection to every peer. Requests (Vote,
//! Prepare, StatusQuery) go out on the client connection; responses go back on the
//! connection the peer's requests arrive on, found through a per-peer handle that the
//! inbound connection registers when its first admitted message names the peer.
//!
//! Threads: one listener; per peer one client writer (which also connects and reconnects
//! with capped exponential backoff) and, while connected, one reader; per accepted
//! connection one reader and one writer. A replica of an n-member cluster thus runs
//! 1 + 4(n − 1) threads once connected: 9 in a 3-member cluster (27 in all), 17 in a
//! 5-member one (85 in all); all of them block in the kernel or on a channel when idle.
//! Every connection's queue is bounded by `max_outstanding_per_replica`; received messages
//! go to one bounded channel, so a runtime that stops reading pushes back through TCP.

use super::gateway::{is_response, Gateway, PacketReader, ReadEnd, Side};
use super::inbox;
use super::outbox::{outbox, Outbox, PushError, Queue};
use super::stats::{Counters, Refusal, TransportStats};
use super::tls::TlsConn;
use super::{member_addr, member_socket, SendError, StartError, Transport, TransportConfig};
use crate::paxos::{Member, MemberId, MemberSet, Message};
use crate::wire::{encode_packet, Version, WireMessage};
use bytes::Bytes;
use crossbeam_channel::{bounded, never, select, Receiver, Sender, TryRecvError};
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// Received messages buffered for the runtime before readers block.
const EVENTS_CAPACITY: usize = 4096;
/// Inbound connections one source address may hold per peer there: a peer needs one, a
/// few more while a reconnect overlaps the old connection's close.
const INBOUND_PER_SOURCE: usize = 4;
/// Inbound connections in all, per peer: beyond the peers' own, room for strangers that
/// have not spoken yet (and are evicted first, oldest first).
const INBOUND_PER_PEER: usize = 8;

/// A message encoded once for the configured version, ready to go to any number of peers.
#[derive(Clone, Debug)]
pub struct Packet {
    bytes: Bytes,
    response: bool,
}

/// One replica's Paxos port. Dropping it stops it.
pub struct TcpTransport {
    shared: Arc<Shared>,
    /// The client connection of every peer.
    peers: HashMap<MemberId, Client>,
    events: inbox::Receiver<(Version, Message)>,
    /// Dropped to stop: every thread's `Shared::stop` then reports disconnection.
    stop: Option<Sender<()>>,
    threads: Vec<JoinHandle<()>>,
    listen_addr: SocketAddr,
}

/// Our connection to one peer, kept by its thread (`client_loop`) for as long as this lives.
struct Client {
    outbox: Outbox,
    /// Where it connects.
    member: Member,
    /// Dropped to end the thread (the peer left, or moved).
    _retire: Sender<()>,
}

struct Shared {
    config: TransportConfig,
    me: Member,
    gateway: Gateway,
    counters: Arc<Counters>,
    events: inbox::Sender<(Version, Message)>,
    /// The version outgoing messages are encoded in (raised at run time, §4.11).
    version: AtomicU16,
    stop: Receiver<()>,
    /// The newest inbound connection of each peer (its serial, queue and source address),
    /// for responses.
    inbound: Mutex<HashMap<MemberId, (u64, Outbox, IpAddr)>>,
    /// Every open socket by serial, so `stop` can shut them down; `None` once stopped.
    sockets: Mutex<Option<HashMap<u64, Arc<TcpStream>>>>,
    /// Accepted connections still open, oldest first, for the connection limits.
    accepted: Mutex<Vec<Accepted>>,
    next_serial: AtomicU64,
}

impl TcpTransport {
    /// Binds the listener and starts connecting to every peer.
    pub fn start(config: TransportConfig) -> Result<Self, StartError> {
        validate(&config)?;
        let me = config.members.members().iter().find(|m| m.id == config.me).cloned();
        let me = me.ok_or_else(|| StartError::NotAMember(config.me.clone()))?;
        let listen_addr = listen_addr(&me, config.listen_on_all_ips);
        let listener = bind(listen_addr).map_err(StartError::Listen)?;
        let (stop_tx, stop) = bounded(0);
        let (events_tx, events) = inbox::bounded(EVENTS_CAPACITY);
        let shared = Arc::new(Shared {
            gateway: Gateway::new(&me.id, &config.members, config.limits),
            me,
            counters: Arc::default(),
            events: events_tx,
            stop,
            inbound: Mutex::new(HashMap::new()),
            sockets: Mutex::new(Some(HashMap::new())),
            accepted: Mutex::new(Vec::new()),
            next_serial: AtomicU64::new(0),
            version: AtomicU16::new(config.version.as_u16()),
            config,
        });
        // On an early return `stop_tx` is dropped, which ends the threads already started;
        // the listener starts last because only a connection wakes it.
        let members = shared.config.members.clone();
        let mut transport = Self {
            shared,
            peers: HashMap::new(),
            events,
            stop: Some(stop_tx),
            threads: Vec::new(),
            listen_addr,
        };
        transport.add_members(&members)?;
        let listening = Arc::clone(&transport.shared);
        let listen = spawn("rsl-tcp-listen", move || accept_loop(&listening, &listener));
        transport.threads.push(listen.map_err(StartError::Thread)?);
        Ok(transport)
    }

    /// Admits and connects to the members of `members` it did not know (those of a new
    /// configuration), and to known members at their new address if it changed: the old
    /// connection ends, with what was queued on it.
    pub fn add_members(&mut self, members: &MemberSet) -> Result<(), StartError> {
        for peer in members.members() {
            let known = self.peers.get(&peer.id).map(|client| &client.member);
            if peer.id == self.shared.me.id || known == Some(peer) {
                continue;
            }
            self.shared.gateway.add(peer);
            let (outbox, queue) = outbox(self.shared.config.max_outstanding_per_replica);
            let (retire, retired) = bounded(0);
            let (client, peer_member) = (Arc::clone(&self.shared), peer.clone());
            let thread =
                spawn("rsl-tcp-client", move || client_loop(&client, &peer_member, &queue, &retired));
            self.threads.push(thread.map_err(StartError::Thread)?);
            self.peers.insert(peer.id.clone(), Client { outbox, member: peer.clone(), _retire: retire });
        }
        Ok(())
    }

    /// The version outgoing messages are encoded in (see [`Transport::set_version`]).
    pub fn version(&self) -> Version {
        Version::from_u16(self.shared.version.load(Ordering::Relaxed)).expect("only versions are stored")
    }

    /// Encodes `message` once; the packet may then go to several peers.
    pub fn encode(&self, message: &Message) -> Result<Packet, SendError> {
        let wire = WireMessage::from_core(message, self.version()).map_err(SendError::Encode)?;
        let bytes = Bytes::from(encode_packet(&wire).map_err(SendError::Encode)?);
        Ok(Packet { bytes, response: is_response(&message.body) })
    }

    /// Queues `message` for `to`: a request on our client connection to it, a response on
    /// its inbound connection to us.
    pub fn send(&self, to: &MemberId, message: &Message) -> Result<(), SendError> {
        self.send_packet(to, &self.encode(message)?)
    }

    /// Queues an encoded packet for `to` (the bytes are shared, not copied).
    pub fn send_packet(&self, to: &MemberId, packet: &Packet) -> Result<(), SendError> {
        if self.stop.is_none() {
            return Err(SendError::Stopped);
        }
        // A response may go to a stranger that wrote to us (a replica that knows no members
        // answers whoever invites it to join).
        let pushed = if packet.response {
            let inbound = self.shared.inbound.lock().unwrap_or_else(PoisonError::into_inner);
            match inbound.get(to) {
                Some((_, outbox, _)) => outbox.push(packet.bytes.clone()).map_err(|e| match e {
                    PushError::Full => SendError::QueueFull,
                    PushError::Closed => SendError::NoConnection,
                }),
                None if self.peers.contains_key(to) => Err(SendError::NoConnection),
                None => Err(SendError::UnknownPeer(to.clone())),
            }
        } else {
            let client = self.peers.get(to).ok_or_else(|| SendError::UnknownPeer(to.clone()))?;
            client.outbox.push(packet.bytes.clone()).map_err(|e| match e {
                PushError::Full => SendError::QueueFull,
                PushError::Closed => SendError::Stopped,
            })
        };
        match pushed {
            Err(SendError::QueueFull) => self.shared.counters.refuse(Refusal::QueueFull),
            Err(SendError::NoConnection) => self.shared.counters.refuse(Refusal::NoConnection),
            _ => {}
        }
        pushed
    }

    pub fn stats(&self) -> TransportStats {
        self.shared.counters.snapshot()
    }

    /// The address `member`'s newest connection to us comes from.
    pub fn source_of(&self, member: &MemberId) -> Option<IpAddr> {
        let inbound = self.shared.inbound.lock().unwrap_or_else(PoisonError::into_inner);
        inbound.get(member).map(|(_, _, source)| *source)
    }

    /// Closes every connection and joins every thread. A client writer in the middle of a
    /// connect finishes it first (at most `send_timeout`).
    pub fn stop(&mut self) {
        if self.stop.take().is_none() {
            return;
        }
        let sockets = self.shared.sockets.lock().unwrap_or_else(PoisonError::into_inner).take();
        for socket in sockets.into_iter().flat_map(HashMap::into_values) {
            let _ = socket.shutdown(Shutdown::Both);
        }
        // Wake the listener from `accept`; it sees the stop and exits.
        let mut wake = self.listen_addr;
        if wake.ip().is_unspecified() {
            wake.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
        }
        let _ = TcpStream::connect_timeout(&wake, self.shared.config.send_timeout);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

impl Drop for TcpTransport {
    fn drop(&mut self) {
        self.stop();
    }
}

fn validate(config: &TransportConfig) -> Result<(), StartError> {
    let checks = [
        (config.send_timeout.is_zero(), "send_timeout is zero"),
        (config.receive_timeout.is_zero(), "receive_timeout is zero"),
        (config.max_outstanding_per_replica == 0, "max_outstanding_per_replica is zero"),
        (config.reconnect_min.is_zero(), "reconnect_min is zero"),
        (config.reconnect_min > config.reconnect_max, "reconnect_min exceeds reconnect_max"),
        (
            config.cluster.as_ref().is_some_and(|c| c.is_empty() || c.len() > 255),
            "a cluster name of 1 to 255 bytes",
        ),
    ];
    match checks.into_iter().find(|(bad, _)| *bad) {
        Some((_, why)) => Err(StartError::Invalid(why)),
        None => Ok(()),
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> io::Result<JoinHandle<()>> {
    thread::Builder::new().name(name.to_owned()).spawn(f)
}

/// `EnableListenOnAllIPs`: every address, else only this member's.
pub(super) fn listen_addr(me: &Member, listen_on_all: bool) -> SocketAddr {
    let ip = if listen_on_all { Ipv4Addr::UNSPECIFIED } else { member_addr(me.ip) };
    SocketAddr::new(IpAddr::V4(ip), me.rsl_port)
}

pub(super) fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    // A restarted replica must rebind its port while old connections sit in TIME_WAIT.
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(128)?;
    Ok(socket.into())
}

/// A client connection to `peer`, from this member's IP (the peer identifies us by it)
/// unless listen-on-all lets the kernel choose.
fn connect(shared: &Shared, peer: &Member) -> io::Result<TcpStream> {
    let source = source_addr(&shared.me, shared.config.listen_on_all_ips);
    let to = member_socket(peer, peer.rsl_port)?;
    let stream = connect_from(source, to, shared.config.send_timeout)?;
    configure(&stream, &shared.config)?;
    Ok(stream)
}

/// The address this member connects from: its own, unless listen-on-all lets the kernel
/// choose (or it has none, IP 0).
pub(super) fn source_addr(me: &Member, listen_on_all: bool) -> Option<Ipv4Addr> {
    (!listen_on_all && me.ip != 0).then(|| member_addr(me.ip))
}

/// A connection to `to` from `source` (the kernel's choice if none).
pub(super) fn connect_from(
    source: Option<Ipv4Addr>,
    to: SocketAddr,
    timeout: Duration,
) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
    if let Some(source) = source {
        socket.bind(&SocketAddr::new(IpAddr::V4(source), 0).into())?;
    }
    socket.connect_timeout(&to.into(), timeout)?;
    Ok(socket.into())
}

fn configure(stream: &TcpStream, config: &TransportConfig) -> io::Result<()> {
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(config.receive_timeout))?;
    stream.set_write_timeout(Some(config.send_timeout))
}

impl Transport for TcpTransport {
    fn events(&self) -> &inbox::Receiver<(Version, Message)> {
        &self.events
    }

    fn send(&self, to: &MemberId, message: &Message) -> Result<(), SendError> {
        TcpTransport::send(self, to, message)
    }

    fn set_version(&self, version: Version) {
        self.shared.version.store(version.as_u16(), Ordering::Relaxed);
    }

    fn stop(&mut self) {
        TcpTransport::stop(self);
    }

    fn counters(&self) -> Arc<Counters> {
        Arc::clone(&self.shared.counters)
    }

    fn add_members(&mut self, members: &MemberSet) -> Result<(), StartError> {
        TcpTransport::add_members(self, members)
    }

    fn source_of(&self, member: &MemberId) -> Option<IpAddr> {
        TcpTransport::source_of(self, member)
    }
}

impl Shared {
    fn stopped(&self) -> bool {
        matches!(self.stop.try_recv(), Err(TryRecvError::Disconnected))
    }

    /// Registers an open socket for `stop`; `None` (and the socket closed) once stopped.
    fn track(&self, stream: TcpStream) -> Option<(u64, Arc<TcpStream>)> {
        let stream = Arc::new(stream);
        let mut sockets = self.sockets.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(sockets) = sockets.as_mut() else {
            let _ = stream.shutdown(Shutdown::Both);
            return None;
        };
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        sockets.insert(serial, Arc::clone(&stream));
        Some((serial, stream))
    }

    fn close(&self, serial: u64, stream: &TcpStream) {
        let _ = stream.shutdown(Shutdown::Both);
        if let Some(sockets) = self.sockets.lock().unwrap_or_else(PoisonError::into_inner).as_mut() {
            sockets.remove(&serial);
        }
    }

    /// Admits an accepted connection under the limits — at most `INBOUND_PER_SOURCE` per
    /// peer at its address, `INBOUND_PER_PEER` per peer in all, counting connections being
    /// closed until their threads end, so threads stay bounded too. Over a limit the
    /// newcomer is refused (`None`) and the oldest connection no peer has spoken on is
    /// closed, making room for the next attempt: a peer's reconnect gets in, a stranger
    /// flooding only keeps evicting strangers.
    fn make_room(&self, serial: u64, source: IpAddr, stream: &Arc<TcpStream>) -> Option<Arc<AtomicBool>> {
        let mut accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        let total = INBOUND_PER_PEER * self.gateway.peer_count().max(1);
        let from_source = INBOUND_PER_SOURCE * self.gateway.peers_at(source);
        for (same_source, limit) in [(true, from_source), (false, total)] {
            let counted = |c: &&mut Accepted| !same_source || c.source == source;
            if accepted.iter_mut().filter(counted).count() < limit {
                continue;
            }
            let oldest =
                accepted.iter_mut().filter(counted).find(|c| !c.closing && !c.spoken.load(Ordering::Relaxed));
            if let Some(oldest) = oldest {
                oldest.closing = true;
                self.counters.refuse(Refusal::ConnectionLimit);
                let _ = oldest.stream.shutdown(Shutdown::Both); // its reader ends; it cleans up
            }
            return None;
        }
        let spoken = Arc::new(AtomicBool::new(false));
        let entry = Accepted {
            serial,
            source,
            spoken: Arc::clone(&spoken),
            closing: false,
            stream: Arc::clone(stream),
        };
        accepted.push(entry);
        Some(spoken)
    }

    /// Drops a closed connection from the limits.
    fn forget(&self, serial: u64) {
        self.accepted.lock().unwrap_or_else(PoisonError::into_inner).retain(|c| c.serial != serial);
    }

    /// Hands a message to the runtime; false once stopped.
    fn deliver(&self, version: Version, message: Message) -> bool {
        let sent = select! {
            send(self.events.channel(), (version, message)) -> sent => sent.is_ok(),
            recv(self.stop) -> _ => false,
        };
        self.events.wake();
        sent
    }

    /// Reads, admits and delivers packets until the connection ends. On a server-side
    /// connection, each peer that speaks makes `outbox` its response route; returns them.
    /// (Several peers share a connection only when their configured IP is 0 = any.)
    fn read_loop(
        &self,
        wire: &Wire,
        side: Side,
        route: Option<(u64, &Outbox, &AtomicBool)>,
    ) -> Vec<MemberId> {
        let mut speakers: Vec<MemberId> = Vec::new();
        let Ok(source) = wire.stream().peer_addr().map(|a| a.ip()) else { return speakers };
        let mut reader = PacketReader::new(wire.reader(), *self.gateway.limits());
        loop {
            let packet = match reader.next_packet() {
                Ok(packet) => packet,
                Err(ReadEnd::Closed) => return speakers,
                Err(ReadEnd::Refused(reason)) => {
                    self.counters.refuse(reason);
                    return speakers;
                }
            };
            let (version, message) = match self.gateway.admit(&packet, side, source) {
                Ok(admitted) => admitted,
                Err(refused) => {
                    self.counters.refuse(refused.reason);
                    if refused.close {
                        return speakers;
                    }
                    continue;
                }
            };
            if let Some((serial, outbox, spoken)) = route.filter(|_| !speakers.contains(&message.from)) {
                spoken.store(true, Ordering::Relaxed);
                let mut inbound = self.inbound.lock().unwrap_or_else(PoisonError::into_inner);
                inbound.insert(message.from.clone(), (serial, outbox.clone(), source));
                speakers.push(message.from.clone());
            }
            if !self.deliver(version, message) {
                return speakers;
            }
        }
    }
}

/// Writes queued packets until the connection breaks (false) or the queue's senders are
/// gone or the transport stops (true). `closed` fires when the connection's reader ends.
/// On a plain connection, senders may write themselves meanwhile (see `outbox`).
fn pump(shared: &Shared, queue: &Queue, wire: &Wire, serial: u64, closed: &Receiver<()>) -> bool {
    if let Wire::Plain(stream) = wire {
        queue.open(serial, Arc::clone(stream));
    }
    let stopped = loop {
        select! {
            recv(queue.receiver()) -> packet => match packet {
                Ok(first) => {
                    if queue.write_batch(first, &mut wire.writer(), serial).is_err() {
                        break false;
                    }
                }
                Err(_) => break true,
            },
            recv(closed) -> _ => break false,
            recv(shared.stop) -> _ => break true,
        }
    };
    queue.close();
    stopped
}

const CLUSTER_MAGIC: &[u8; 8] = b"RSLCLUS1";

/// Sends our cluster name (`"RSLCLUS1"`, a u16 length, the name) and checks the peer's
/// (both sides send first, so neither waits on the other; reads time out as the
/// connection's do).
fn same_cluster(stream: &TcpStream, name: &str) -> io::Result<()> {
    let mut hello = CLUSTER_MAGIC.to_vec();
    hello.extend_from_slice(&(name.len() as u16).to_le_bytes());
    hello.extend_from_slice(name.as_bytes());
    io::Write::write_all(&mut NoSigPipe(stream), &hello)?;
    let mut head = [0u8; 10];
    io::Read::read_exact(&mut &*stream, &mut head)?;
    let refused = |why: String| io::Error::new(io::ErrorKind::PermissionDenied, why);
    if &head[..8] != CLUSTER_MAGIC {
        return Err(refused(format!("the peer sent no cluster name (ours is {name:?})")));
    }
    let mut theirs = vec![0u8; usize::from(u16::from_le_bytes([head[8], head[9]]))];
    io::Read::read_exact(&mut &*stream, &mut theirs)?;
    if theirs != name.as_bytes() {
        let theirs = String::from_utf8_lossy(&theirs);
        return Err(refused(format!("the peer is of cluster {theirs:?}, not {name:?}")));
    }
    Ok(())
}

/// A connection's bytes: as they are, or through TLS.
#[derive(Clone)]
enum Wire {
    Plain(Arc<TcpStream>),
    Tls(Arc<TcpStream>, Arc<TlsConn>),
}

impl Wire {
    /// The connection as configured: both sides' cluster names exchanged and equal (if
    /// one is configured), then through TLS (its handshake done, with the deadline of the
    /// TLS settings) or as it is. `client_of` is the peer we connected to, if we did.
    fn open(
        shared: &Shared,
        stream: &Arc<TcpStream>,
        client_of: Option<IpAddr>,
    ) -> Result<Self, (Refusal, io::Error)> {
        if let Some(name) = &shared.config.cluster {
            same_cluster(stream, name).map_err(|e| (Refusal::OtherCluster, e))?;
        }
        let Some(tls) = &shared.config.tls else { return Ok(Self::Plain(Arc::clone(stream))) };
        let conn = match client_of {
            Some(peer) => tls.connect(Arc::clone(stream), peer),
            None => tls.accept(Arc::clone(stream)),
        };
        Ok(Self::Tls(Arc::clone(stream), Arc::new(conn.map_err(|e| (Refusal::Tls, e))?)))
    }

    fn stream(&self) -> &TcpStream {
        match self {
            Self::Plain(stream) | Self::Tls(stream, _) => stream,
        }
    }

    fn reader(&self) -> Box<dyn io::Read + '_> {
        match self {
            Self::Plain(stream) => Box::new(&**stream),
            Self::Tls(_, conn) => Box::new(conn.stream()),
        }
    }

    fn writer(&self) -> Box<dyn io::Write + '_> {
        match self {
            Self::Plain(stream) => Box::new(NoSigPipe(stream)),
            Self::Tls(_, conn) => Box::new(&**conn),
        }
    }
}

/// Writes to a socket with `MSG_NOSIGNAL`: a peer that closed its end fails the write with
/// `EPIPE` instead of raising SIGPIPE, which would kill a host process that does not ignore
/// it (Rust programs do; C++ hosts of librsl often do not). std's `write_vectored` is
/// `writev`, which has no such flag.
struct NoSigPipe<'a>(&'a TcpStream);

impl io::Write for NoSigPipe<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        SockRef::from(self.0).send_with_flags(buf, libc::MSG_NOSIGNAL)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        SockRef::from(self.0).send_vectored_with_flags(bufs, libc::MSG_NOSIGNAL)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// An accepted connection, for the limits: where it comes from, and whether a peer has
/// spoken on it (a connection no member has spoken on is a stranger's, evicted first).
struct Accepted {
    serial: u64,
    source: IpAddr,
    spoken: Arc<AtomicBool>,
    /// Shut down for the limits; counted until its thread ends.
    closing: bool,
    stream: Arc<TcpStream>,
}

fn accept_loop(shared: &Arc<Shared>, listener: &TcpListener) {
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    for stream in listener.incoming() {
        if shared.stopped() {
            break;
        }
        let Ok(stream) = stream else {
            // Out of descriptors or similar: do not spin; retry shortly.
            if shared.stop.recv_timeout(shared.config.reconnect_min).is_err_and(|e| e.is_disconnected()) {
                break;
            }
            continue;
        };
        shared.counters.accepted();
        let Ok(source) = stream.peer_addr().map(|a| a.ip()) else { continue };
        if shared.gateway.peers_at(source) == 0 {
            shared.counters.refuse(Refusal::NonMember);
            continue; // dropping the stream closes it
        }
        let Some((serial, stream)) = shared.track(stream) else { break };
        let Some(spoken) = shared.make_room(serial, source, &stream) else {
            shared.counters.refuse(Refusal::ConnectionLimit);
            shared.close(serial, &stream);
            continue;
        };
        connections.retain(|c| !c.is_finished());
        let serving = Arc::clone(shared);
        // A connection that cannot get a thread is dropped, closing it.
        match spawn("rsl-tcp-serve", move || serve(&serving, serial, stream, &spoken)) {
            Ok(thread) => connections.push(thread),
            Err(_) => shared.forget(serial),
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// One accepted connection: this thread reads the peer's requests, a second one writes
/// our responses.
fn serve(shared: &Arc<Shared>, serial: u64, stream: Arc<TcpStream>, spoken: &AtomicBool) {
    if configure(&stream, &shared.config).is_err() {
        shared.close(serial, &stream);
        shared.forget(serial);
        return;
    }
    let wire = match Wire::open(shared, &stream, None) {
        Ok(wire) => wire,
        Err(e) => {
            let from = stream.peer_addr().map_or_else(|_| "?".to_owned(), |a| a.to_string());
            tracing::warn!("refused a connection from {from}: {}", e.1);
            shared.counters.refuse(e.0);
            shared.close(serial, &stream);
            shared.forget(serial);
            return;
        }
    };
    let (outbox, queue) = outbox(shared.config.max_outstanding_per_replica);
    let (writing, write_wire) = (Arc::clone(shared), wire.clone());
    let writer = spawn("rsl-tcp-respond", move || {
        pump(&writing, &queue, &write_wire, serial, &never());
        let _ = write_wire.stream().shutdown(Shutdown::Both);
    });
    let speakers = match &writer {
        Ok(_) => shared.read_loop(&wire, Side::Server, Some((serial, &outbox, spoken))),
        Err(_) => Vec::new(),
    };
    let mut inbound = shared.inbound.lock().unwrap_or_else(PoisonError::into_inner);
    for speaker in speakers {
        // A newer connection from the same peer may have taken over the route.
        if inbound.get(&speaker).is_some_and(|(s, _, _)| *s == serial) {
            inbound.remove(&speaker);
        }
    }
    drop(inbound);
    drop(outbox); // with the route gone, the writer's queue disconnects and it exits
    shared.close(serial, &stream);
    shared.forget(serial);
    if let Ok(writer) = writer {
        let _ = writer.join();
    }
}

/// The client connection to `peer`: connect, write requests, reconnect after a failure.
/// Packets queued while disconnected wait (bounded) for the next connection. The backoff
/// doubles after each failed connect or short-lived connection and resets after a
/// connection that lasted `reconnect_max`.
fn client_loop(shared: &Arc<Shared>, peer: &Member, queue: &Queue, retired: &Receiver<()>) {
    let config = &shared.config;
    let mut backoff = config.reconnect_min;
    loop {
        if let Ok(stream) = connect(shared, peer) {
            let peer_ip = stream.peer_addr().map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |a| a.ip());
            let Some((serial, stream)) = shared.track(stream) else { return };
            let wire = match Wire::open(shared, &stream, Some(peer_ip)) {
                Ok(wire) => wire,
                Err(e) => {
                    tracing::warn!("connection to {} at {peer_ip} refused: {}", peer.id, e.1);
                    shared.counters.refuse(e.0);
                    shared.close(serial, &stream);
                    if ends_within(shared, retired, backoff) {
                        return;
                    }
                    backoff = (backoff * 2).min(config.reconnect_max);
                    continue;
                }
            };
            shared.counters.connected();
            let since = Instant::now();
            let (closed_tx, closed) = bounded::<()>(0);
            let (reading, read_wire) = (Arc::clone(shared), wire.clone());
            let reader = spawn("rsl-tcp-client-read", move || {
                reading.read_loop(&read_wire, Side::Client, None);
                drop(closed_tx);
            });
            // Without a reader thread the connection is useless: close it and retry later.
            let stopped = reader.is_ok() && pump(shared, queue, &wire, serial, &closed);
            shared.close(serial, &stream);
            if let Ok(reader) = reader {
                let _ = reader.join();
            }
            if stopped {
                return;
            }
            if since.elapsed() >= config.reconnect_max {
                backoff = config.reconnect_min;
            }
        }
        if ends_within(shared, retired, backoff) {
            return;
        }
        backoff = (backoff * 2).min(config.reconnect_max);
    }
}

/// Waits `backoff`; true if meanwhile the transport stopped or the client was retired.
fn ends_within(shared: &Shared, retired: &Receiver<()>, backoff: Duration) -> bool {
    select! {
        recv(shared.stop) -> _ => true,
        recv(retired) -> _ => true,
        default(backoff) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::member_ip;

    #[test]
    fn listens_on_its_own_address_unless_told_to_listen_on_all() {
        let me = Member {
            rsl_port: 4000,
            ip: member_ip(Ipv4Addr::new(127, 0, 0, 2)),
            ..Member::named("1").unwrap()
        };
        assert_eq!(listen_addr(&me, false), "127.0.0.2:4000".parse().unwrap());
        assert_eq!(listen_addr(&me, true), "0.0.0.0:4000".parse().unwrap());
    }
}
