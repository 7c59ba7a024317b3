//! The Paxos-port TCP transport on loopback (127.0.0.1–127.0.0.3 only, ports chosen by the
//! kernel): every core message type crosses in legacy's directions, each kind of bad input
//! is refused and counted while the transport keeps working, a restarted peer is
//! reconnected to, the send-queue bound holds, and two OS processes talk to each other.
//! Waits are on channels or sockets with generous deadlines; none is a bare sleep.

use bytes::Bytes;
use crossbeam_channel::{select, unbounded, Receiver};
use rsl_core::paxos::{
    Ballot, Body, Decree, Member, MemberId, MemberSet, Message, State, Status, Vote, VoteBody,
};
use rsl_core::transport::{
    member_ip, Refusal, SendError, TcpTransport, Transport, TransportConfig, TransportStats,
};
use rsl_core::wire::{encode_packet, fingerprint, Limits, Version, WireMessage};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Long enough for a loaded 2-core machine; a passing run takes milliseconds per wait.
const WAIT: Duration = Duration::from_secs(20);
const CHILD_ENV: &str = "RSL_TRANSPORT_TCP_CHILD";

fn loopback(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

fn id(s: &str) -> MemberId {
    MemberId::new(s).unwrap()
}

fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

/// Members "1".."n" on 127.0.0.1..n with the given ports.
fn members(ports: &[u16]) -> MemberSet {
    let members = ports
        .iter()
        .enumerate()
        .map(|(i, &port)| {
            let n = u8::try_from(i + 1).unwrap();
            Member { ip: member_ip(loopback(n)), rsl_port: port, ..Member::named(&n.to_string()).unwrap() }
        })
        .collect();
    MemberSet::new(members, Bytes::new()).unwrap()
}

fn cluster_ports(n: u8) -> Vec<u16> {
    (1..=n).map(|i| free_port(loopback(i))).collect()
}

fn config(me: &str, members: &MemberSet, version: Version) -> TransportConfig {
    TransportConfig {
        reconnect_min: Duration::from_millis(5),
        reconnect_max: Duration::from_millis(100),
        ..TransportConfig::new(id(me), members.clone(), version)
    }
}

fn start(me: &str, members: &MemberSet, version: Version) -> TcpTransport {
    TcpTransport::start(config(me, members, version)).unwrap()
}

/// The next message with its (gateway-checked) sender; it was sent in `t`'s version.
fn recv(t: &TcpTransport) -> (MemberId, Message) {
    let (version, message) = t.events().recv_timeout(WAIT).expect("a message within the deadline");
    assert_eq!(version, t.version(), "every transport here speaks one version");
    (message.from.clone(), message)
}

/// Polls a counter that no channel reports (only after the socket showed the refusal).
fn await_stats(t: &TcpTransport, done: impl Fn(&TransportStats) -> bool) -> TransportStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = t.stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::yield_now();
    }
}

fn ballot(n: u32, member: &str) -> Ballot {
    Ballot::new(n, id(member))
}

fn message(from: &MemberId, body: Body) -> Message {
    Message { from: from.clone(), configuration: 1, body }
}

fn vote() -> Vote {
    Vote {
        primary_cookie: Bytes::from_static(b"cookie"),
        body: VoteBody::Requests(vec![Bytes::from_static(b"alpha"), Bytes::from(vec![7u8; 3000])]),
        ..Vote::empty(Decree(7), ballot(3, "1"), 1, Decree(6))
    }
}

/// Vote, Prepare, StatusQuery: what client connections carry. Fields hold the values a
/// version-6 peer implies (passed = decree − 1), so they survive versions 6 and 7 unchanged.
fn requests(from: &MemberId) -> Vec<Message> {
    vec![
        message(from, Body::Vote(Arc::new(vote()))),
        message(
            from,
            Body::Prepare {
                decree: Decree(7),
                passed: Decree(6),
                ballot: ballot(4, "1"),
                primary_cookie: Bytes::from_static(b"c"),
            },
        ),
        message(from, Body::StatusQuery { decree: Decree(7), ballot: ballot(3, "1") }),
    ]
}

/// The answers to `request`, in the order they are sent.
fn responses(from: &MemberId, request: &Message) -> Vec<Message> {
    let bodies = match &request.body {
        Body::Vote(v) => vec![Body::VoteAccepted { decree: v.decree, ballot: v.ballot.clone(), payload: 99 }],
        Body::Prepare { decree, ballot, .. } => vec![
            Body::PrepareAccepted {
                decree: *decree,
                ballot: ballot.clone(),
                watermark: Decree(6),
                votes: vec![Arc::new(vote())],
            },
            Body::NotAccepted { decree: Decree(9), passed: Decree(8), ballot: ballot.clone() },
        ],
        Body::StatusQuery { decree, ballot } => vec![Body::StatusResponse(Box::new(Status {
            query_decree: *decree,
            query_ballot: ballot.clone(),
            decree: Decree(7),
            ballot: ballot.clone(),
            passed: Decree(6),
            last_received_ago_ms: 12,
            min_decree_in_log: Decree(1),
            checkpointed_decree: Decree(0),
            checkpoint_size: 0,
            max_ballot: ballot.clone(),
            state: State::Secondary,
        }))],
        other => panic!("not a request: {other:?}"),
    };
    bodies.into_iter().map(|body| message(from, body)).collect()
}

/// `a` sends every request to `b`, which answers each on the connection it arrived on.
fn exchange(a: &TcpTransport, a_id: &MemberId, b: &TcpTransport, b_id: &MemberId) {
    for request in requests(a_id) {
        a.send(b_id, &request).unwrap();
        assert_eq!(recv(b), (a_id.clone(), request.clone()));
        for response in responses(b_id, &request) {
            b.send(a_id, &response).unwrap();
            assert_eq!(recv(a), (b_id.clone(), response));
        }
    }
}

#[test]
fn three_transports_exchange_every_message_type_in_legacy_directions() {
    let members = members(&cluster_ports(3));
    let ids: Vec<MemberId> = members.ids().cloned().collect();
    let transports: Vec<TcpTransport> =
        ["1", "2", "3"].iter().map(|me| start(me, &members, Version::V7)).collect();

    // A response needs the peer's inbound connection, which exists only once the peer spoke.
    let early = &responses(&ids[1], &requests(&ids[0])[0])[0];
    assert_eq!(transports[1].send(&ids[0], early), Err(SendError::NoConnection));
    assert_eq!(transports[1].stats().no_connection, 1);

    for (a, b) in [(0, 1), (1, 0), (0, 2), (2, 0), (1, 2), (2, 1)] {
        exchange(&transports[a], &ids[a], &transports[b], &ids[b]);
    }
    // One encoding, queued to both peers.
    let vote = &requests(&ids[0])[0];
    let packet = transports[0].encode(vote).unwrap();
    for peer in [1, 2] {
        transports[0].send_packet(&ids[peer], &packet).unwrap();
        assert_eq!(recv(&transports[peer]), (ids[0].clone(), vote.clone()));
    }
    for t in &transports {
        let stats = t.stats();
        assert_eq!(stats.connects, 2, "one client connection per peer, never re-made: {stats:?}");
        assert_eq!(stats.accepts, 2, "{stats:?}");
    }
    assert_eq!(transports[1].send(&id("9"), vote), Err(SendError::UnknownPeer(id("9"))));
}

fn packet_bytes(from: &str, body: Body) -> Vec<u8> {
    let msg = message(&id(from), body);
    encode_packet(&WireMessage::from_core(&msg, Version::V6).unwrap()).unwrap()
}

fn query_packet(from: &str, decree: u64) -> Vec<u8> {
    packet_bytes(from, Body::StatusQuery { decree: Decree(decree), ballot: Ballot::default() })
}

/// A packet with a valid size and checksum whose content is not a message.
fn garbage_packet() -> Vec<u8> {
    let mut packet = vec![0u8; 20];
    packet.extend((0..60u8).map(|i| i.wrapping_mul(37)));
    let size = u32::try_from(packet.len()).unwrap();
    packet[..4].copy_from_slice(&size.to_le_bytes());
    let checksum = fingerprint(&packet);
    packet[12..20].copy_from_slice(&checksum.to_le_bytes());
    packet
}

/// A raw connection to `port` on 127.0.0.2, from 127.0.0.1 (the kernel's choice on lo).
fn raw_peer(port: u16) -> TcpStream {
    let stream = TcpStream::connect((loopback(2), port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
}

/// True once the transport closed `stream` (end of stream or reset).
fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Ok(0) | Err(_))
}

#[test]
fn bad_input_is_refused_counted_and_the_transport_keeps_working() {
    let members = members(&cluster_ports(3));
    let (two, three) = (start("2", &members, Version::V6), start("3", &members, Version::V6));
    let port = members.members()[1].rsl_port;

    // Dropped packets leave the connection open: the next good packet still arrives, and
    // the response goes back on this very socket.
    let mut peer = raw_peer(port);
    let mut corrupt = query_packet("1", 1);
    *corrupt.last_mut().unwrap() ^= 0x40;
    peer.write_all(&corrupt).unwrap();
    peer.write_all(&garbage_packet()).unwrap();
    peer.write_all(&query_packet("1", 2)).unwrap();
    let (from, query) = recv(&two);
    assert_eq!(
        (from.as_str(), &query.body),
        ("1", &Body::StatusQuery { decree: Decree(2), ballot: Ballot::default() })
    );
    let stats = two.stats();
    assert_eq!((stats.bad_checksum, stats.malformed), (1, 1), "{stats:?}");
    let answer = &responses(&id("2"), &query)[0];
    two.send(&id("1"), answer).unwrap();
    let mut got = vec![0u8; packet_bytes("2", answer.body.clone()).len()];
    peer.read_exact(&mut got).unwrap();
    assert_eq!(got, packet_bytes("2", answer.body.clone()), "the response came back on the request's socket");

    // Each of these closes the connection and bumps its counter.
    let cases: [(Vec<u8>, Refusal); 4] = [
        (query_packet("9", 3), Refusal::NonMember),
        (query_packet("3", 3), Refusal::WrongAddress), // "3" lives on 127.0.0.3
        (
            u32::try_from(Limits::default().max_message_size + 1).unwrap().to_le_bytes().to_vec(),
            Refusal::Oversize,
        ),
        (19u32.to_le_bytes().into_iter().chain([0u8; 40]).collect(), Refusal::Malformed),
    ];
    for (bytes, reason) in cases {
        let before = two.stats().refused(reason);
        let mut peer = raw_peer(port);
        peer.write_all(&bytes).unwrap();
        assert!(closed_by_peer(&mut peer), "{reason:?} closes the connection");
        let stats = await_stats(&two, |s| s.refused(reason) > before);
        assert_eq!(stats.refused(reason), before + 1, "{reason:?}: {stats:?}");
    }
    let stats = two.stats();
    assert_eq!(stats.wrong_direction + stats.unsupported + stats.queue_full + stats.stalled, 0, "{stats:?}");

    // Our own client connection carries responses only: play member "1" on 127.0.0.1,
    // accept `two`'s connection and send a request down it, then a response.
    let listener = TcpListener::bind((loopback(1), members.members()[0].rsl_port)).unwrap();
    let mut server_side = loop {
        let (stream, from) = listener.accept().unwrap();
        if from.ip() == loopback(2) {
            break stream; // not `three`'s connection
        }
    };
    server_side.write_all(&query_packet("1", 4)).unwrap();
    let accepted = Body::VoteAccepted { decree: Decree(1), ballot: ballot(1, "2"), payload: 0 };
    server_side.write_all(&packet_bytes("1", accepted.clone())).unwrap();
    let (from, got) = recv(&two);
    assert_eq!((from.as_str(), got.body), ("1", accepted));
    assert_eq!(two.stats().wrong_direction, 1);

    // The real peer is unaffected.
    exchange(&three, &id("3"), &two, &id("2"));
}

#[test]
fn a_restarted_peer_is_reconnected_to() {
    let members = members(&cluster_ports(2));
    let one = start("1", &members, Version::V6);
    let query = &requests(&id("1"))[2];
    let two = start("2", &members, Version::V6);
    one.send(&id("2"), query).unwrap();
    assert_eq!(recv(&two).1, *query);
    drop(two); // closes every connection, as a crash would

    let two = start("2", &members, Version::V6);
    // A query sent before `one` noticed the old connection die is lost with it, as on any
    // TCP transport; the protocol re-sends, and so does this loop.
    let deadline = Instant::now() + WAIT;
    let received = loop {
        let _ = one.send(&id("2"), query); // the queue may be full while reconnecting
        if let Ok(event) = two.events().recv_timeout(Duration::from_millis(200)) {
            break event;
        }
        assert!(Instant::now() < deadline, "no reconnection: {:?}", one.stats());
    };
    assert_eq!(received.1, query.clone());
    assert!(one.stats().connects >= 2, "{:?}", one.stats());
    let answer = &responses(&id("2"), query)[0];
    two.send(&id("1"), answer).unwrap();
    let (from, got) = recv(&one);
    assert_eq!((from, got), (id("2"), answer.clone()));
}

/// Sends `query` from `a` to `to` until `b` has it (a packet queued before a connection
/// came up may be lost with the connection it was written to).
fn deliver_eventually(a: &TcpTransport, to: &MemberId, b: &TcpTransport, query: &Message) {
    let deadline = Instant::now() + WAIT;
    loop {
        let _ = a.send(to, query);
        if let Ok((_, got)) = b.events().recv_timeout(Duration::from_millis(200)) {
            assert_eq!(got, *query);
            return;
        }
        assert!(Instant::now() < deadline, "not delivered: {:?}", a.stats());
    }
}

#[test]
fn a_member_that_moves_is_reached_and_admitted_at_its_new_address() {
    let (old_port, new_port) = (free_port(loopback(2)), free_port(loopback(4)));
    let before = members(&[free_port(loopback(1)), old_port]);
    let mut one = start("1", &before, Version::V6);
    let query = &requests(&id("1"))[2];
    let two = start("2", &before, Version::V6);
    deliver_eventually(&one, &id("2"), &two, query);
    drop(two);

    // Member 2 comes back on another address and port, named so by the next configuration.
    let mut moved: Vec<Member> = before.members().to_vec();
    moved[1].ip = member_ip(loopback(4));
    moved[1].rsl_port = new_port;
    let after = MemberSet::new(moved, Bytes::new()).unwrap();
    one.add_members(&after).unwrap();
    let two = start("2", &after, Version::V6);
    deliver_eventually(&one, &id("2"), &two, query);
    // Its answer comes from 127.0.0.4, which `one` now admits for member 2.
    let answer = &responses(&id("2"), query)[0];
    two.send(&id("1"), answer).unwrap();
    assert_eq!(recv(&one), (id("2"), answer.clone()));

    // Nothing connects to the old address any more.
    let old = TcpListener::bind((loopback(2), old_port)).unwrap();
    old.set_nonblocking(true).unwrap();
    std::thread::sleep(Duration::from_millis(500)); // five times the longest reconnect backoff
    assert!(old.accept().is_err(), "the old address is still dialled");
}

#[test]
fn a_member_known_by_host_name_only_is_reached_at_its_address() {
    // Member 2 listens on every address, so its port must be free on all of them.
    let ports = [free_port(loopback(1)), free_port(Ipv4Addr::UNSPECIFIED)];
    let mut named: Vec<Member> = members(&ports).members().to_vec();
    named[1].ip = 0;
    named[1].host_name = "localhost".to_owned();
    let named = MemberSet::new(named, Bytes::new()).unwrap();
    let one = start("1", &named, Version::V6);
    let two = start("2", &named, Version::V6); // listens on every address: it has no IP
    let query = &requests(&id("1"))[2];
    deliver_eventually(&one, &id("2"), &two, query);
    let answer = &responses(&id("2"), query)[0];
    two.send(&id("1"), answer).unwrap();
    assert_eq!(recv(&one), (id("2"), answer.clone()));
}

#[test]
fn the_send_queue_bound_holds_while_a_peer_is_down() {
    let members = members(&cluster_ports(2));
    let config = TransportConfig { max_outstanding_per_replica: 4, ..config("1", &members, Version::V6) };
    let one = TcpTransport::start(config).unwrap();
    let query = |decree: u64| {
        message(&id("1"), Body::StatusQuery { decree: Decree(decree), ballot: Ballot::default() })
    };
    // Nobody listens on 127.0.0.2 yet: packets wait for a connection, four at most.
    for decree in 0..10 {
        let sent = one.send(&id("2"), &query(decree));
        assert_eq!(sent.is_ok(), decree < 4, "packet {decree}: {sent:?}");
    }
    assert_eq!(one.stats().queue_full, 6);

    let two = start("2", &members, Version::V6);
    for decree in 0..4 {
        assert_eq!(recv(&two).1, query(decree));
    }
    // Nothing else was queued: the next packet sent is the next one received.
    one.send(&id("2"), &query(100)).unwrap();
    assert_eq!(recv(&two).1, query(100));
}

/// Starts this test binary again, running this same test as member "2" on 127.0.0.2
/// (`child_role`, selected by the environment).
#[test]
fn two_processes_exchange_every_message_type() {
    if let Ok(ports) = std::env::var(CHILD_ENV) {
        return child_role(&ports);
    }
    let ports = [free_port(loopback(1)), free_port(loopback(2))];
    let members = members(&ports);
    let one = start("1", &members, Version::V6);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "two_processes_exchange_every_message_type", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, format!("{},{}", ports[0], ports[1]))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Reap(Option<std::process::Child>);
    impl Drop for Reap {
        fn drop(&mut self) {
            if let Some(child) = self.0.as_mut() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
    let stdin = child.stdin.take();
    let mut guard = Reap(Some(child));

    // Requests are queued until the child listens; its answers come back on our
    // client connection.
    for request in requests(&id("1")) {
        one.send(&id("2"), &request).unwrap();
        for response in responses(&id("2"), &request) {
            assert_eq!(recv(&one), (id("2"), response));
        }
    }
    drop(stdin); // tells the child to stop
    let output = guard.0.take().unwrap().wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "child failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The child of `two_processes_exchange_every_message_type`: answers each request from
/// "1" (checking it is exactly what was sent) until its stdin closes.
fn child_role(ports: &str) {
    let ports: Vec<u16> = ports.split(',').map(|p| p.parse().unwrap()).collect();
    let two = start("2", &members(&ports), Version::V6);
    let stdin_closed = stdin_closed();
    let mut expected = requests(&id("1")).into_iter();
    let deadline = crossbeam_channel::after(WAIT);
    loop {
        select! {
            recv(two.events()) -> event => {
                let (_, request) = event.unwrap();
                let from = request.from.clone();
                assert_eq!((&from, Some(&request)), (&id("1"), expected.next().as_ref()));
                for response in responses(&id("2"), &request) {
                    two.send(&from, &response).unwrap();
                }
            }
            recv(stdin_closed) -> _ => break,
            recv(deadline) -> _ => panic!("the parent never closed stdin"),
        }
    }
    assert!(expected.next().is_none(), "every request arrived");
}

fn stdin_closed() -> Receiver<()> {
    let (tx, rx) = unbounded();
    std::thread::spawn(move || {
        let _ = std::io::stdin().read_to_end(&mut Vec::new());
        let _ = tx.send(());
    });
    rx
}

/// A connection to `port` on `to` from the address `from`.
fn connect_from(from: Ipv4Addr, to: Ipv4Addr, port: u16) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&std::net::SocketAddr::from((to, port)).into()).unwrap();
    socket.into()
}

/// Whether the transport still holds `stream` open (a read waits instead of ending).
fn still_open(stream: &mut TcpStream) -> bool {
    stream.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
    let mut byte = [0u8; 1];
    matches!(stream.read(&mut byte), Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut))
}

#[test]
fn a_connection_flood_is_bounded_and_counted_and_peers_keep_talking() {
    let members = members(&cluster_ports(3));
    let (two, three) = (start("2", &members, Version::V6), start("3", &members, Version::V6));
    let port = members.members()[1].rsl_port;
    exchange(&three, &id("3"), &two, &id("2"));

    // From an address no member has: closed at once.
    for _ in 0..50 {
        let mut stranger = connect_from(loopback(9), loopback(2), port);
        assert!(closed_by_peer(&mut stranger));
    }
    assert!(await_stats(&two, |s| s.non_member >= 50).non_member >= 50);

    // From a member's address (member 1 is not running), 200 silent connections: each
    // beyond the per-address limit evicts the oldest that no peer has spoken on.
    let before = two.stats().connection_limit;
    let mut silent: Vec<TcpStream> = (0..200).map(|_| connect_from(loopback(1), loopback(2), port)).collect();
    let stats = await_stats(&two, |s| s.connection_limit >= before + 196);
    assert!(stats.connection_limit >= before + 196, "{stats:?}");
    let open = silent.iter_mut().filter_map(|s| still_open(s).then_some(())).count();
    assert!(open <= 4, "{open} silent connections from one address still open");

    // Member 3's connections (another address, and spoken on) were never touched.
    exchange(&three, &id("3"), &two, &id("2"));
}

#[test]
fn a_peer_of_another_cluster_or_of_none_is_refused_and_counted() {
    let members = members(&cluster_ports(3));
    let named = |me: &str, cluster: Option<&str>| {
        let config =
            TransportConfig { cluster: cluster.map(str::to_owned), ..config(me, &members, Version::V6) };
        TcpTransport::start(config).unwrap()
    };
    let one = named("1", Some("prod"));
    let two = named("2", Some("prod"));
    exchange(&two, &id("2"), &one, &id("1"));
    // Member 3 of a test cluster with the same ids and addresses: refused both ways.
    let three = named("3", Some("test"));
    let _ = three.send(&id("1"), &requests(&id("3"))[0]);
    let stats = await_stats(&one, |s| s.other_cluster >= 1);
    assert!(stats.other_cluster >= 1, "{stats:?}");
    assert!(one.events().recv_timeout(Duration::from_millis(300)).is_err(), "nothing from the other cluster");
    drop(three);
    // A peer that names no cluster at all is refused too.
    let none = named("3", None);
    let _ = none.send(&id("1"), &requests(&id("3"))[0]);
    let before = stats.other_cluster;
    assert!(await_stats(&one, |s| s.other_cluster > before).other_cluster > before);
    let err = TcpTransport::start(TransportConfig {
        cluster: Some(String::new()),
        ..config("1", &members, Version::V6)
    });
    assert!(err.err().unwrap().to_string().contains("cluster name"));
}
