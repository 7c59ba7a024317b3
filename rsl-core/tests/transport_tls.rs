//! TLS on the Paxos port with legacy's thumbprint pinning: pinned peers talk; a peer whose
//! certificate is not pinned, is expired, or who speaks no TLS at all is refused, counted
//! and logged; a handshake that never finishes times out without holding anyone up; and a
//! bad configuration (a malformed thumbprint, no such certificate, revocation checking)
//! fails to start, saying why. (A replica cluster with TLS fails over in `replica_api`.)

use bytes::Bytes;
use rcgen::{date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rsl_core::paxos::{Ballot, Body, Decree, Member, MemberId, MemberSet, Message};
use rsl_core::transport::{
    member_ip, SubjectRule, TcpTransport, Tls, TlsConfig, Transport, TransportConfig, TransportStats,
};
use rsl_core::wire::Version;
use sha1::{Digest, Sha1};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);

fn loopback(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

fn id(s: &str) -> MemberId {
    MemberId::new(s).unwrap()
}

fn members(n: u8) -> MemberSet {
    let members = (1..=n)
        .map(|i| {
            let port = TcpListener::bind((loopback(i), 0)).unwrap().local_addr().unwrap().port();
            Member { ip: member_ip(loopback(i)), rsl_port: port, ..Member::named(&i.to_string()).unwrap() }
        })
        .collect();
    MemberSet::new(members, Bytes::new()).unwrap()
}

/// Writes a self-signed certificate and its key as `<dir>/<name>.pem`, valid from `from`
/// to `to` (years); returns its thumbprint in hex.
fn certificate(dir: &Path, name: &str, from: i32, to: i32) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let mut params = CertificateParams::new(vec!["rsl".to_owned()]).unwrap();
    params.not_before = date_time_ymd(from, 1, 1);
    params.not_after = date_time_ymd(to, 1, 1);
    let key = KeyPair::generate().unwrap();
    let cert = params.self_signed(&key).unwrap();
    std::fs::write(dir.join(format!("{name}.pem")), cert.pem() + &key.serialize_pem()).unwrap();
    Sha1::digest(cert.der()).iter().map(|b| format!("{b:02X}")).collect()
}

fn temp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rsl-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn tls(dir: &Path, a: &str, b: Option<&str>) -> TlsConfig {
    TlsConfig {
        cert_dir: dir.to_owned(),
        thumbprints: [Some(a.to_owned()), b.map(str::to_owned)],
        subjects: Vec::new(),
        validate_ca_chain: false,
        check_revocation: false,
        handshake_timeout: Duration::from_millis(500),
    }
}

fn start(me: &str, members: &MemberSet, tls: &TlsConfig) -> TcpTransport {
    let config = TransportConfig {
        reconnect_min: Duration::from_millis(5),
        reconnect_max: Duration::from_millis(100),
        tls: Some(Arc::new(Tls::new(tls).unwrap())),
        ..TransportConfig::new(id(me), members.clone(), Version::V6)
    };
    TcpTransport::start(config).unwrap()
}

fn query(from: &str, decree: u64) -> Message {
    Message {
        from: id(from),
        configuration: 1,
        body: Body::StatusQuery { decree: Decree(decree), ballot: Ballot::default() },
    }
}

/// A connection from a member's address (the transport refuses others at once).
fn connect_from(from: Ipv4Addr, to: Ipv4Addr, port: u16) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.bind(&std::net::SocketAddr::from((from, 0)).into()).unwrap();
    socket.connect(&std::net::SocketAddr::from((to, port)).into()).unwrap();
    socket.into()
}

/// Accepts any server certificate: this client tests what the server refuses.
#[derive(Debug)]
struct AnyServer(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &rustls::pki_types::CertificateDer<'_>,
        _: &[rustls::pki_types::CertificateDer<'_>],
        _: &rustls::pki_types::ServerName<'_>,
        _: &[u8],
        _: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &rustls::pki_types::CertificateDer<'_>,
        d: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A TLS handshake with member 1's port from member 2's address, presenting `pem`.
fn handshake_with(pem: &Path, port: u16) -> Result<(), String> {
    use rustls::pki_types::pem::PemObject;
    let certs: Vec<_> =
        rustls::pki_types::CertificateDer::pem_file_iter(pem).unwrap().map(Result::unwrap).collect();
    let key = rustls::pki_types::PrivateKeyDer::from_pem_file(pem).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyServer(provider)))
        .with_client_auth_cert(certs, key)
        .unwrap();
    let name = rustls::pki_types::ServerName::IpAddress(std::net::IpAddr::V4(loopback(1)).into());
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).unwrap();
    let mut sock = connect_from(loopback(2), loopback(1), port);
    sock.set_read_timeout(Some(WAIT)).unwrap();
    while conn.is_handshaking() {
        conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    }
    // TLS 1.3: the server's verdict on our certificate arrives after our handshake ends.
    conn.writer().write_all(b"x").map_err(|e| e.to_string())?;
    conn.complete_io(&mut sock).map_err(|e| e.to_string())?;
    match conn.reader().read(&mut [0u8; 1]) {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
            conn.complete_io(&mut sock).map_err(|e| e.to_string()).map(|_| ())
        }
        other => other.map(|_| ()).map_err(|e| e.to_string()),
    }
}

fn await_stats(t: &TcpTransport, done: impl Fn(&TransportStats) -> bool) -> TransportStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = t.stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn pinned_peers_talk_and_others_are_refused_and_counted() {
    let (good, other) = (temp("good"), temp("other"));
    let a = certificate(&good, "cluster", 2020, 2090);
    let b = certificate(&good, "next", 2020, 2090); // the rotation slot: also accepted
    let stranger = certificate(&other, "stranger", 2020, 2090);
    let expired = certificate(&other, "expired", 2000, 2001);
    let members = members(3);
    let one = start("1", &members, &tls(&good, &a, Some(&b)));
    // Member 2 presents B's certificate (A's is not in its directory).
    let only_b = temp("only-b");
    std::fs::create_dir_all(&only_b).unwrap();
    std::fs::copy(good.join("next.pem"), only_b.join("next.pem")).unwrap();
    let two = start("2", &members, &tls(&only_b, &a, Some(&b)));
    two.send(&id("1"), &query("2", 7)).unwrap();
    let (_, got) = one.events().recv_timeout(WAIT).unwrap();
    assert_eq!(got, query("2", 7), "over TLS, pinned by B");

    // Member 3 with a certificate 1 does not pin: 1 refuses it.
    let three = start("3", &members, &tls(&other, &stranger, Some(&a)));
    three.send(&id("1"), &query("3", 8)).unwrap();
    let stats = await_stats(&one, |s| s.tls >= 1);
    assert!(stats.tls >= 1, "{stats:?}");
    assert!(one.events().recv_timeout(Duration::from_millis(300)).is_err(), "nothing from the unpinned peer");
    drop(three);

    // An expired certificate cannot even start (ours must be valid), and a peer that
    // presents one anyway — pinned, but expired — is refused.
    let err = Tls::new(&tls(&other, &expired, None)).unwrap_err().to_string();
    assert!(err.contains("expired") || err.contains("Expired"), "{err}");
    let before = one.stats().tls;
    assert!(handshake_with(&other.join("expired.pem"), members.members()[0].rsl_port).is_err());
    assert!(await_stats(&one, |s| s.tls > before).tls > before, "the expired certificate was counted");

    // ... and a peer speaking plain TCP, or nothing at all, is refused after the deadline.
    let port = members.members()[0].rsl_port;
    let before = one.stats().tls;
    let mut plain = connect_from(loopback(2), loopback(1), port);
    plain.write_all(&[0u8; 64]).unwrap();
    let mut silent = connect_from(loopback(2), loopback(1), port);
    let started = Instant::now();
    let stats = await_stats(&one, |s| s.tls >= before + 2);
    assert!(stats.tls >= before + 2, "{stats:?}");
    assert!(started.elapsed() < Duration::from_secs(5), "the stalled handshake timed out");
    silent.set_read_timeout(Some(WAIT)).unwrap();
    assert!(matches!(silent.read(&mut [0u8; 1]), Ok(0) | Err(_)), "the silent connection was closed");
    // Meanwhile the pinned peer is served as before.
    two.send(&id("1"), &query("2", 9)).unwrap();
    assert_eq!(one.events().recv_timeout(WAIT).unwrap().1, query("2", 9));
    for dir in [good, other, only_b] {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn bad_tls_settings_fail_to_start_and_say_why() {
    let dir = temp("settings");
    let a = certificate(&dir, "cluster", 2020, 2090);
    let cases = [
        (tls(&dir, "12:34", None), "not 40 hex digits"),
        // Found by the C ABI fuzz target: a multi-byte character once split a digit pair.
        (tls(&dir, &format!("é{}", "0".repeat(38)), None), "not 40 hex digits"),
        (tls(&dir, &"0".repeat(41), None), "not 40 hex digits"),
        (tls(&dir, &"0".repeat(40), None), "no certificate with thumbprint"),
        (TlsConfig { check_revocation: true, ..tls(&dir, &a, None) }, "revocation checking is not built"),
        (TlsConfig { validate_ca_chain: true, ..tls(&dir, &a, None) }, "holds no CA certificate"),
        (tls(&dir.join("missing"), &a, None), "missing"),
    ];
    for (config, why) in cases {
        let err = Tls::new(&config).unwrap_err().to_string();
        assert!(err.contains(why), "{err} (wanted {why:?})");
    }
    // Thumbprints are read as Windows shows them too: spaced, any case.
    let spaced: String = a
        .to_lowercase()
        .as_bytes()
        .chunks(2)
        .map(|p| std::str::from_utf8(p).unwrap())
        .collect::<Vec<_>>()
        .join(" ");
    Tls::new(&tls(&dir, &spaced, None)).unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_learn_port_serves_pinned_clients_only() {
    use rsl_core::transport::learn::{LearnClient, LearnConfig, LearnServer};
    let dir = temp("learn");
    let a = certificate(&dir.join("certs"), "cluster", 2020, 2090);
    let tls = Some(Arc::new(Tls::new(&tls(&dir.join("certs"), &a, None)).unwrap()));
    let me = Member { ip: member_ip(loopback(1)), learn_port: 0, ..Member::named("1").unwrap() };
    let server = LearnServer::start(LearnConfig {
        tls: tls.clone(),
        ..LearnConfig::new(me, Version::V6, dir.clone())
    })
    .unwrap();
    let addr = server.listen_addr();
    let pinned = LearnClient { tls, ..LearnClient::new(id("2"), Version::V6) };
    assert_eq!(pinned.fetch_votes(addr, Decree(1)).unwrap().len(), 0, "served over TLS (an empty log)");
    let plain = LearnClient::new(id("3"), Version::V6);
    assert!(plain.fetch_votes(addr, Decree(1)).is_err(), "a client without TLS gets nothing");
    let deadline = Instant::now() + WAIT;
    while server.stats().tls == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(server.stats().tls, 1, "{:?}", server.stats());
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}

fn hex(der: &[u8]) -> String {
    Sha1::digest(der).iter().map(|b| format!("{b:02x}")).collect()
}

/// A CA: its certificate's thumbprint, and the issuer to sign with.
fn ca(name: &str) -> (String, CertifiedIssuer<'static, KeyPair>) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    (hex(issuer.as_ref().der()), issuer)
}

/// `<dir>/<file>.pem`: a certificate for `cn` signed by `issuer`, with the issuer's
/// certificate after it (the chain a peer presents) and the key.
fn issued(dir: &Path, file: &str, cn: &str, issuer: &CertifiedIssuer<'static, KeyPair>) {
    std::fs::create_dir_all(dir).unwrap();
    let mut params = CertificateParams::new(vec!["rsl".to_owned()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, cn);
    let key = KeyPair::generate().unwrap();
    let cert = params.signed_by(&key, issuer).unwrap();
    let pem = cert.pem() + &issuer.as_ref().pem() + &key.serialize_pem();
    std::fs::write(dir.join(format!("{file}.pem")), pem).unwrap();
}

#[test]
fn subject_names_accept_peers_their_issuers_signed() {
    let (ca_thumb, ca_issuer) = ca("rsl test CA");
    let (_, rogue) = ca("rogue CA");
    let dirs: Vec<PathBuf> = ["s1", "s2", "s3", "s4"].iter().map(|n| temp(n)).collect();
    issued(&dirs[0], "node", "rsl-node", &ca_issuer);
    issued(&dirs[1], "node", "rsl-node", &ca_issuer);
    issued(&dirs[2], "node", "rsl-node", &rogue); // the right name, the wrong issuer
    issued(&dirs[3], "node", "intruder", &ca_issuer); // the right issuer, the wrong name
    let config = |dir: &Path, subject: &str| TlsConfig {
        cert_dir: dir.to_owned(),
        thumbprints: [None, None],
        subjects: vec![SubjectRule { subject: subject.to_owned(), issuers: vec![ca_thumb.clone()] }],
        validate_ca_chain: false,
        check_revocation: false,
        handshake_timeout: Duration::from_millis(500),
    };
    let members = members(4);
    let one = start("1", &members, &config(&dirs[0], "CN=rsl-node"));
    let two = start("2", &members, &config(&dirs[1], "rsl-node"));
    two.send(&id("1"), &query("2", 1)).unwrap();
    assert_eq!(one.events().recv_timeout(WAIT).unwrap().1, query("2", 1), "accepted by subject and issuer");
    let three = start("3", &members, &config(&dirs[2], "rsl-node"));
    let four = start("4", &members, &config(&dirs[3], "intruder"));
    three.send(&id("1"), &query("3", 2)).unwrap();
    four.send(&id("1"), &query("4", 3)).unwrap();
    let stats = await_stats(&one, |s| s.tls >= 2);
    assert!(stats.tls >= 2, "{stats:?}");
    assert!(one.events().recv_timeout(Duration::from_millis(300)).is_err(), "neither got in");
    for dir in dirs {
        let _ = std::fs::remove_dir_all(dir);
    }
}

#[test]
fn a_server_that_never_finishes_the_handshake_times_the_client_out() {
    let dir = temp("client-timeout");
    let a = certificate(&dir, "cluster", 2020, 2090);
    let members = members(2);
    // Member 2's port: accepts and then says nothing.
    let port = members.members()[1].rsl_port;
    let silent = TcpListener::bind((loopback(2), port)).unwrap();
    silent.set_nonblocking(true).unwrap();
    let held = std::thread::spawn(move || {
        let mut held = Vec::new();
        let until = Instant::now() + Duration::from_secs(3);
        while Instant::now() < until {
            held.extend(silent.accept().ok());
            std::thread::sleep(Duration::from_millis(10));
        }
        held
    });
    let one = start("1", &members, &tls(&dir, &a, None));
    one.send(&id("2"), &query("1", 1)).unwrap();
    let started = Instant::now();
    let stats = await_stats(&one, |s| s.tls >= 2);
    assert!(stats.tls >= 2, "each attempt timed out and was counted: {stats:?}");
    assert!(started.elapsed() < Duration::from_secs(10), "after the 500 ms deadline, not forever");
    drop(one);
    drop(held.join());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn large_messages_cross_both_ways_at_once_over_tls() {
    use rsl_core::paxos::{Vote, VoteBody};
    let dir = temp("both-ways");
    let a = certificate(&dir, "cluster", 2020, 2090);
    let members = members(2);
    let config = |me: &str| TransportConfig {
        max_outstanding_per_replica: 1000,
        tls: Some(Arc::new(Tls::new(&tls(&dir, &a, None)).unwrap())),
        ..TransportConfig::new(id(me), members.clone(), Version::V6)
    };
    let (one, two) = (TcpTransport::start(config("1")).unwrap(), TcpTransport::start(config("2")).unwrap());
    let vote = |from: &str, decree: u64| {
        let mut v = Vote::empty(Decree(decree), Ballot::new(1, id(from)), 1, Decree(decree - 1));
        v.body = VoteBody::Requests(vec![Bytes::from(vec![decree as u8; 256 << 10])]);
        Message { from: id(from), configuration: 1, body: Body::Vote(Arc::new(v)) }
    };
    // Votes are requests: each side's go out on its own client connection, and both
    // connections are saturated in both directions at once.
    const N: u64 = 100;
    std::thread::scope(|s| {
        for (from, to, t) in [("1", "2", &one), ("2", "1", &two)] {
            s.spawn(move || {
                for d in 1..=N {
                    while t.send(&id(to), &vote(from, d)).is_err() {
                        std::thread::sleep(Duration::from_millis(1));
                    }
                }
            });
        }
        for (t, from) in [(&two, "1"), (&one, "2")] {
            s.spawn(move || {
                for d in 1..=N {
                    let (_, m) = t.events().recv_timeout(WAIT).expect("every vote arrives");
                    assert_eq!(m, vote(from, d), "in order, intact");
                }
            });
        }
    });
    let _ = std::fs::remove_dir_all(&dir);
}
