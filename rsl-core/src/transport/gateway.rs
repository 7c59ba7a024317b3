//! The gateway between a peer's byte stream and the runtime. [`PacketReader`] cuts the
//! stream into packets, checking each size before reading the body (below 20 bytes or
//! above the limit drops the connection, as legacy does); [`Gateway::admit`] decodes a
//! packet with `wire::decode_packet` and checks who sent it: a sender that is not a peer of
//! a configuration it knew (but for a Bootstrap that names the sender, and anyone while
//! the replica waits for its bootstrap), or a peer writing from another IP than its
//! configured one (unless that is 0 = any), closes the connection. A bad checksum, a
//! malformed message, a request on one of our client connections (which carry responses
//! only, §4.12) and a message the core does not handle yet drop only the packet. The
//! caller counts every refusal.

use super::member_addr;
use super::stats::Refusal;
use crate::paxos::{Body, Member, MemberId, MemberSet, Message};
use crate::wire::{decode_packet, packet_len, DecodeError, Limits, MessageId, Version, PACKET_HEADER_LEN};
use bytes::{Bytes, BytesMut};
use parking_lot::RwLock;
use std::io::{ErrorKind, Read};
use std::net::IpAddr;

/// Which side opened the connection a packet arrived on.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Side {
    /// We opened it to send requests; the peer answers on it.
    Client,
    /// The peer opened it (accepted by our listener); it carries the peer's requests.
    Server,
}

/// A refused packet or message, and whether the connection must be closed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) struct Refused {
    pub reason: Refusal,
    pub close: bool,
}

impl Refused {
    fn drop_packet(reason: Refusal) -> Self {
        Self { reason, close: false }
    }

    fn close(reason: Refusal) -> Self {
        Self { reason, close: true }
    }
}

/// Messages a replica accepts on its client connections (legacy's list, §4.12).
fn accepted_on_client_side(id: MessageId) -> bool {
    matches!(
        id,
        MessageId::VoteAccepted
            | MessageId::PrepareAccepted
            | MessageId::StatusResponse
            | MessageId::NotAccepted
            | MessageId::DefunctConfiguration
            | MessageId::Join
            | MessageId::JoinRequest
    )
}

/// Core messages that answer a request, and so go back on the connection it came on.
pub(super) fn is_response(body: &Body) -> bool {
    match body {
        Body::VoteAccepted { .. }
        | Body::PrepareAccepted { .. }
        | Body::NotAccepted { .. }
        | Body::StatusResponse(_)
        // A JoinRequest answers a message of a configuration the sender is not in (and
        // whose members it may not know).
        | Body::Defunct
        | Body::JoinRequest => true,
        // A Join goes out as a request, as legacy's do: its receiver may not know us.
        Body::Join { .. }
        | Body::Vote(_)
        | Body::Prepare { .. }
        | Body::StatusQuery { .. }
        | Body::ReconfigurationDecision { .. }
        | Body::Bootstrap(_) => false,
    }
}

/// What a replica admits: messages from its peers, from their configured IPs.
pub(super) struct Gateway {
    /// Every member but this replica of every configuration it knew, with its legacy
    /// `m_ip` (0 = any). The core decides which of them count in the current one.
    peers: RwLock<Vec<(MemberId, u32)>>,
    limits: Limits,
}

impl Gateway {
    /// How many peers a connection from `source` may come from: those configured at that
    /// address, and those at 0 (any). None: the connection is a stranger's. A replica that
    /// knows no peer yet (waiting for its bootstrap) counts anyone as one.
    pub(super) fn peers_at(&self, source: IpAddr) -> usize {
        let peers = self.peers.read();
        let at = peers.iter().filter(|(_, ip)| *ip == 0 || IpAddr::V4(member_addr(*ip)) == source).count();
        if peers.is_empty() {
            1
        } else {
            at
        }
    }

    pub(super) fn new(me: &MemberId, members: &MemberSet, limits: Limits) -> Self {
        let peers = members.members().iter().filter(|m| &m.id != me).map(|m| (m.id.clone(), m.ip)).collect();
        Self { peers: RwLock::new(peers), limits }
    }

    /// Admits `member` from now on (a member of a new configuration), from its new
    /// address if it had another.
    pub(super) fn add(&self, member: &Member) {
        let mut peers = self.peers.write();
        match peers.iter_mut().find(|(id, _)| *id == member.id) {
            Some((_, ip)) => *ip = member.ip,
            None => peers.push((member.id.clone(), member.ip)),
        }
    }

    pub(super) fn peer_count(&self) -> usize {
        self.peers.read().len()
    }

    pub(super) fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The message in `packet`, which arrived on a `side` connection from `source`, with
    /// the version it was sent in.
    pub(super) fn admit(
        &self,
        packet: &Bytes,
        side: Side,
        source: IpAddr,
    ) -> Result<(Version, Message), Refused> {
        let wire = decode_packet(packet, &self.limits).map_err(|e| match e {
            DecodeError::Checksum { .. } => Refused::drop_packet(Refusal::BadChecksum),
            _ => Refused::drop_packet(Refusal::Malformed),
        })?;
        let known = self.peers.read().iter().find(|(id, _)| *id == wire.header.from).map(|(_, ip)| *ip);
        // A replica waiting for its bootstrap knows no one: it hears strangers out (its core
        // takes only a Bootstrap naming the sender, and an invitation to join).
        let waiting = self.peers.read().is_empty();
        if known.is_none() && !waiting && wire.body.id() != MessageId::Bootstrap {
            return Err(Refused::close(Refusal::NonMember));
        }
        if side == Side::Client && !accepted_on_client_side(wire.body.id()) {
            return Err(Refused::drop_packet(Refusal::WrongDirection));
        }
        let version = wire.header.version;
        let message = wire.into_core().ok_or(Refused::drop_packet(Refusal::Unsupported))?;
        // Otherwise a stranger is admitted with one message only: a Bootstrap whose set
        // names it, from the address it gives.
        let named = || match &message.body {
            Body::Bootstrap(set) => set.members().iter().find(|m| m.id == message.from).map(|m| m.ip),
            _ => None,
        };
        let ip = known.or_else(named).or(waiting.then_some(0)).ok_or(Refused::close(Refusal::NonMember))?;
        if ip != 0 && source != IpAddr::V4(member_addr(ip)) {
            return Err(Refused::close(Refusal::WrongAddress));
        }
        Ok((version, message))
    }
}

/// Why a [`PacketReader`] stopped.
#[derive(Debug)]
pub(super) enum ReadEnd {
    /// End of stream, a socket error, or a local shutdown.
    Closed,
    /// The stream broke a rule that closes the connection.
    Refused(Refusal),
}

/// Bytes read per `read` call when no larger packet is pending.
const READ_CHUNK: usize = 64 * 1024;

/// Cuts a stream into packets. Each packet is a zero-copy slice of the read buffer, so
/// request payloads decoded from it are not copied again. `buf[..filled]` holds data read
/// but not yet returned; `buf[filled..]` is zeroed room for the next read.
pub(super) struct PacketReader<R> {
    stream: R,
    buf: BytesMut,
    filled: usize,
    limits: Limits,
}

impl<R: Read> PacketReader<R> {
    /// The stream's read timeout, if any, must be the receive timeout: a timeout between
    /// packets is ignored, one inside a packet ends the connection.
    pub(super) fn new(stream: R, limits: Limits) -> Self {
        Self { stream, buf: BytesMut::new(), filled: 0, limits }
    }

    /// The next whole packet.
    pub(super) fn next_packet(&mut self) -> Result<Bytes, ReadEnd> {
        loop {
            // Below 4 bytes the size is unknown; `packet_len` guarantees `want` ≥ 20 after.
            let want = if self.filled < 4 {
                4
            } else {
                packet_len(&self.buf[..4], &self.limits).map_err(|e| ReadEnd::Refused(size_refusal(&e)))?
            };
            if self.filled >= want {
                self.filled -= want;
                return Ok(self.buf.split_to(want).freeze());
            }
            self.read_more(want)?;
        }
    }

    /// Reads at least one byte towards a buffer of `want` bytes. The buffer grows with
    /// the data that arrives (at most doubling), not with the size a header claims, so a
    /// peer must send the bytes of a large packet before it costs their memory.
    fn read_more(&mut self, want: usize) -> Result<(), ReadEnd> {
        if self.buf.len() == self.filled {
            let room = READ_CHUNK.max(self.filled.min(want.saturating_sub(self.filled)));
            self.buf.resize(self.filled + room, 0);
        }
        loop {
            match self.stream.read(&mut self.buf[self.filled..]) {
                Ok(0) => return Err(ReadEnd::Closed),
                Ok(n) => {
                    self.filled += n;
                    return Ok(());
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if self.filled > 0 {
                        return Err(ReadEnd::Refused(Refusal::Stalled));
                    }
                }
                Err(_) => return Err(ReadEnd::Closed),
            }
        }
    }
}

/// `packet_len` refuses sizes below the header (malformed) and above the limit (oversize).
fn size_refusal(e: &DecodeError) -> Refusal {
    match e {
        DecodeError::Length { value, .. } if *value >= PACKET_HEADER_LEN as u64 => Refusal::Oversize,
        _ => Refusal::Malformed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paxos::{Ballot, Decree, Member};
    use crate::transport::member_ip;
    use crate::wire::{encode_packet, Version, WireMessage};
    use std::net::Ipv4Addr;

    fn members() -> MemberSet {
        let member = |id: &str, ip: u32| Member { ip, ..Member::named(id).unwrap() };
        MemberSet::new(
            vec![member("1", 0), member("2", member_ip(Ipv4Addr::new(127, 0, 0, 2))), member("3", 0)],
            Bytes::new(),
        )
        .unwrap()
    }

    fn packet(from: &str, body: Body) -> Bytes {
        let msg = Message { from: MemberId::new(from).unwrap(), configuration: 1, body };
        Bytes::from(encode_packet(&WireMessage::from_core(&msg, Version::V6).unwrap()).unwrap())
    }

    fn query(from: &str) -> Bytes {
        packet(from, Body::StatusQuery { decree: Decree(4), ballot: Ballot::default() })
    }

    const LOCAL2: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
    const LOCAL9: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9));

    fn refusal(r: Result<(Version, Message), Refused>) -> Refused {
        r.expect_err("refused")
    }

    #[test]
    fn admits_peers_from_their_address_and_any_address_when_ip_is_zero() {
        let gate = Gateway::new(&MemberId::new("1").unwrap(), &members(), Limits::default());
        assert!(gate.admit(&query("2"), Side::Server, LOCAL2).is_ok());
        assert!(gate.admit(&query("3"), Side::Server, LOCAL9).is_ok());
        assert_eq!(
            refusal(gate.admit(&query("2"), Side::Server, LOCAL9)),
            Refused::close(Refusal::WrongAddress)
        );
        assert_eq!(
            refusal(gate.admit(&query("4"), Side::Server, LOCAL2)),
            Refused::close(Refusal::NonMember)
        );
        // A replica is not its own peer.
        assert_eq!(
            refusal(gate.admit(&query("1"), Side::Server, LOCAL2)),
            Refused::close(Refusal::NonMember)
        );
    }

    #[test]
    fn client_connections_take_responses_only() {
        let gate = Gateway::new(&MemberId::new("1").unwrap(), &members(), Limits::default());
        let refused = refusal(gate.admit(&query("3"), Side::Client, LOCAL9));
        assert_eq!(refused, Refused::drop_packet(Refusal::WrongDirection));
        let answer = packet(
            "3",
            Body::NotAccepted { decree: Decree(2), passed: Decree(1), ballot: Ballot::default() },
        );
        assert!(gate.admit(&answer, Side::Client, LOCAL9).is_ok());
    }

    #[test]
    fn a_corrupt_packet_is_dropped_and_a_bad_size_closes() {
        let gate = Gateway::new(&MemberId::new("1").unwrap(), &members(), Limits { max_message_size: 200 });
        let mut bad = query("3").to_vec();
        *bad.last_mut().unwrap() ^= 1;
        let refused = refusal(gate.admit(&Bytes::from(bad), Side::Server, LOCAL9));
        assert_eq!(refused, Refused::drop_packet(Refusal::BadChecksum));

        let mut stream: Vec<u8> = query("3").to_vec();
        stream.extend_from_slice(&201u32.to_le_bytes());
        let mut reader = PacketReader::new(&stream[..], *gate.limits());
        assert_eq!(reader.next_packet().unwrap(), query("3"));
        assert!(matches!(reader.next_packet(), Err(ReadEnd::Refused(Refusal::Oversize))));
        let short = 19u32.to_le_bytes();
        let mut reader = PacketReader::new(&short[..], *gate.limits());
        assert!(matches!(reader.next_packet(), Err(ReadEnd::Refused(Refusal::Malformed))));
        let truncated = query("3");
        let mut reader = PacketReader::new(&truncated[..30], *gate.limits());
        assert!(matches!(reader.next_packet(), Err(ReadEnd::Closed)));
    }

    /// Yields at most 7,000 bytes per read, as a socket may.
    struct Trickle<'a>(&'a [u8]);

    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = out.len().min(self.0.len()).min(7000);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn packets_larger_than_a_read_come_out_whole() {
        let big = crate::paxos::Vote {
            body: crate::paxos::VoteBody::Requests(vec![Bytes::from(vec![5u8; 300_000])]),
            ..crate::paxos::Vote::empty(Decree(3), Ballot::default(), 1, Decree(2))
        };
        let big = packet("2", Body::Vote(std::sync::Arc::new(big)));
        let stream: Vec<u8> = [&big[..], &query("3")[..], &big[..]].concat();
        let mut reader = PacketReader::new(Trickle(&stream), Limits::default());
        for expected in [&big, &query("3"), &big] {
            assert_eq!(&reader.next_packet().unwrap(), expected);
        }
        assert!(matches!(reader.next_packet(), Err(ReadEnd::Closed)));
    }

    /// Replays read results: data, or a timeout (`None`).
    struct Scripted(Vec<Option<Vec<u8>>>);

    impl Read for Scripted {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            match self.0.remove(0) {
                Some(data) => {
                    out[..data.len()].copy_from_slice(&data);
                    Ok(data.len())
                }
                None => Err(ErrorKind::WouldBlock.into()),
            }
        }
    }

    #[test]
    fn a_timeout_between_packets_is_idle_but_inside_one_is_a_stall() {
        let packet = query("3");
        let script = vec![
            None,
            Some(packet[..10].to_vec()),
            Some(packet[10..].to_vec()),
            None,
            Some(packet[..10].to_vec()),
            None,
        ];
        let mut reader = PacketReader::new(Scripted(script), Limits::default());
        assert_eq!(reader.next_packet().unwrap(), packet);
        assert!(matches!(reader.next_packet(), Err(ReadEnd::Refused(Refusal::Stalled))));
    }
}
