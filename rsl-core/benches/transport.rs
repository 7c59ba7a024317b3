//! Benchmark G: the shared-memory transport against TCP on loopback, side by side in one
//! run, for messages of 64 B to 64 KiB (a vote carrying one request of that size):
//! - latency: ping-pong between two transports (one thread echoes); the median and p99
//!   of half the round trip;
//! - throughput: one side streams votes as fast as the transport takes them (retrying
//!   when its queue is full), the other counts what arrives (a transport may drop).
//!
//! The 3-replica commit is measured by `rsl bench --transport tcp|shm` (README).
//!
//! Run: `cargo bench -p rsl-core --bench transport` (table) or `-- --json`.

use bytes::Bytes;
use rsl_core::paxos::{Ballot, Body, Decree, Member, MemberId, MemberSet, Message, Vote, VoteBody};
use rsl_core::transport::{member_ip, start_shm, SendError, TcpTransport, Transport, TransportConfig};
use rsl_core::wire::Version;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZES: [usize; 4] = [64, 1024, 4096, 65536];
const ROUND_TRIPS: usize = 3000;

fn id(n: u8) -> MemberId {
    MemberId::new(&n.to_string()).expect("valid id")
}

fn vote(from: u8, decree: u64, bytes: usize) -> Message {
    let mut v = Vote::empty(Decree(decree), Ballot::new(1, id(from)), 1, Decree(decree - 1));
    v.body = VoteBody::Requests(vec![Bytes::from(vec![0x5a; bytes])]);
    Message { from: id(from), configuration: 1, body: Body::Vote(Arc::new(v)) }
}

fn pair(kind: &str, run: usize) -> (Box<dyn Transport>, Box<dyn Transport>) {
    let members: Vec<Member> = (1..=2u8)
        .map(|n| {
            let ip = Ipv4Addr::new(127, 0, 0, n);
            let port = TcpListener::bind((ip, 0)).and_then(|l| l.local_addr()).expect("a free port").port();
            Member { ip: member_ip(ip), rsl_port: port, ..Member::named(&n.to_string()).expect("valid id") }
        })
        .collect();
    let members = MemberSet::new(members, Bytes::new()).expect("a member set");
    let config = |n| TransportConfig {
        max_outstanding_per_replica: 256,
        ..TransportConfig::new(id(n), members.clone(), Version::V7)
    };
    match kind {
        "tcp" => (
            Box::new(TcpTransport::start(config(1)).expect("tcp")),
            Box::new(TcpTransport::start(config(2)).expect("tcp")),
        ),
        _ => {
            let dir = std::path::PathBuf::from(format!(
                "/dev/shm/rsl-bench-transport-{}-{run}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            let start = |n| start_shm(&config(n), &dir, 8 << 20).expect("shm");
            (Box::new(start(1)), Box::new(start(2)))
        }
    }
}

fn send(t: &dyn Transport, to: u8, message: &Message) {
    loop {
        match t.send(&id(to), message) {
            Ok(()) => return,
            Err(SendError::QueueFull) => std::thread::yield_now(),
            Err(e) => panic!("{e}"),
        }
    }
}

/// (median, p99) of half a round trip.
fn latency(a: &dyn Transport, b: Box<dyn Transport>, bytes: usize) -> (Duration, Duration) {
    let echo = std::thread::spawn(move || {
        for _ in 0..ROUND_TRIPS + 100 {
            let (_, m) = b.events().recv().expect("a ping");
            let Body::Vote(v) = &m.body else { unreachable!() };
            send(b.as_ref(), 1, &vote(2, v.decree.0, bytes));
        }
        b
    });
    let ping = vote(1, 1, bytes);
    // A first message opens TCP's connections (and the rings' sessions).
    send(a, 2, &ping);
    a.events().recv_timeout(Duration::from_secs(10)).expect("the first echo");
    let mut samples = Vec::with_capacity(ROUND_TRIPS);
    for i in 0..ROUND_TRIPS + 99 {
        let start = Instant::now();
        send(a, 2, &ping);
        a.events().recv_timeout(Duration::from_secs(10)).expect("an echo");
        if i >= 99 {
            samples.push(start.elapsed() / 2);
        }
    }
    let mut b = echo.join().expect("the echo thread");
    b.stop();
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

/// Messages per second streamed from `a` to `b`; gives `a` back.
fn throughput(a: Box<dyn Transport>, b: &dyn Transport, bytes: usize) -> (f64, Box<dyn Transport>) {
    let count = (200_000_000 / (bytes + 200)).clamp(2000, 100_000);
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        let message = vote(1, 1, bytes);
        for _ in 0..count {
            send(a.as_ref(), 2, &message);
        }
        a
    });
    // A transport may drop a message (its receiver's queue full): count what arrives
    // until the stream has been quiet for a while.
    let (mut received, mut last) = (0, start);
    while received < count {
        match b.events().recv_timeout(Duration::from_millis(500)) {
            Ok(_) => (received, last) = (received + 1, Instant::now()),
            Err(_) => break,
        }
    }
    let rate = received as f64 / (last - start).as_secs_f64();
    (rate, sender.join().expect("the sender"))
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    if !json {
        println!(
            "{:>7}  {:>22}  {:>22}  {:>8}  {:>22}  {:>22}  {:>7}",
            "bytes",
            "tcp one-way p50/p99",
            "shm one-way p50/p99",
            "tcp/shm",
            "tcp msgs/s (MB/s)",
            "shm msgs/s (MB/s)",
            "shm/tcp"
        );
    }
    for (run, &bytes) in SIZES.iter().enumerate() {
        let mut figures = Vec::new();
        for kind in ["tcp", "shm"] {
            let (mut a, b) = pair(kind, 2 * run);
            let (p50, p99) = latency(a.as_ref(), b, bytes);
            a.stop();
            let (a, mut b) = pair(kind, 2 * run + 1);
            // Open the connections (and sessions) before timing.
            send(a.as_ref(), 2, &vote(1, 1, bytes));
            b.events().recv_timeout(Duration::from_secs(10)).expect("the first message");
            let (rate, mut a) = throughput(a, b.as_ref(), bytes);
            a.stop();
            b.stop();
            figures.push((p50, p99, rate));
        }
        let [(tp50, tp99, trate), (sp50, sp99, srate)] = figures[..] else { unreachable!() };
        let mb = |rate: f64| rate * bytes as f64 / 1e6;
        if json {
            println!(
                "{{\"bench\":\"transport\",\"bytes\":{bytes},\"tcp_p50_us\":{:.1},\"tcp_p99_us\":{:.1},\"shm_p50_us\":{:.1},\"shm_p99_us\":{:.1},\"latency_ratio\":{:.2},\"tcp_msgs_per_s\":{trate:.0},\"shm_msgs_per_s\":{srate:.0},\"throughput_ratio\":{:.2}}}",
                tp50.as_secs_f64() * 1e6, tp99.as_secs_f64() * 1e6, sp50.as_secs_f64() * 1e6, sp99.as_secs_f64() * 1e6,
                tp50.as_secs_f64() / sp50.as_secs_f64(), srate / trate
            );
        } else {
            println!(
                "{bytes:>7}  {:>9.1} / {:>7.1} µs  {:>9.1} / {:>7.1} µs  {:>7.2}×  {:>10.0} ({:>7.1})  {:>10.0} ({:>7.1})  {:>6.2}×",
                tp50.as_secs_f64() * 1e6, tp99.as_secs_f64() * 1e6, sp50.as_secs_f64() * 1e6, sp99.as_secs_f64() * 1e6,
                tp50.as_secs_f64() / sp50.as_secs_f64(), trate, mb(trate), srate, mb(srate), srate / trate
            );
        }
        for r in [2 * run, 2 * run + 1] {
            let _ =
                std::fs::remove_dir_all(format!("/dev/shm/rsl-bench-transport-{}-{r}", std::process::id()));
        }
    }
}
