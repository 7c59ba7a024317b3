//! A flood at a primary's Paxos port — thousands of connections: silent ones from the
//! peers' addresses, garbage, frames claiming 1 GiB, a stranger's address — while the
//! cluster commits one request at a time. Threads and memory stay bounded, every refused
//! connection is counted. (Its own test binary: the thread count is this cluster's alone.)

use rsl_core::paxos::{Member, MemberId, MemberSet};
use rsl_core::runtime::{Replica, ResponseCode, RslConfig, StateMachine};
use rsl_core::storage::checkpoint::{CheckpointReader, CheckpointWriter};
use rsl_core::transport::member_ip;
use rsl_core::wire::Version;
use std::net::{Ipv4Addr, TcpListener};
use std::path::Path;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

/// Sums the u64 requests it executes; reports the cookies of its own.
struct Sum {
    sum: u64,
    executed: Sender<u64>,
}

impl StateMachine for Sum {
    type Cookie = u64;

    fn load_state(&mut self, _: Option<&mut CheckpointReader>) -> bool {
        true
    }

    fn execute_replicated_request(&mut self, request: &[u8], cookie: Option<u64>, _: &mut bool) {
        self.sum += u64::from_le_bytes(request[..8].try_into().unwrap());
        if let Some(cookie) = cookie {
            let _ = self.executed.send(cookie);
        }
    }

    fn execute_fast_read_request(&self, _: &[u8], _: u64) {}

    fn abort_request(&self, status: ResponseCode, cookie: u64) {
        panic!("request {cookie} aborted: {status:?}");
    }

    fn save_state(&self, writer: &mut CheckpointWriter) -> std::io::Result<()> {
        writer.write(&self.sum.to_le_bytes())
    }

    fn notify_status(&mut self, _: bool) {}

    fn shut_down(&mut self, _: ResponseCode) {}
}

struct Node {
    replica: Replica<Sum>,
    executed: Receiver<u64>,
}

fn members() -> MemberSet {
    let member = |n: u8| {
        let ip = Ipv4Addr::new(127, 0, 0, n);
        let port = |_| TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port();
        Member {
            ip: member_ip(ip),
            rsl_port: port(0),
            learn_port: port(1),
            ..Member::named(&n.to_string()).unwrap()
        }
    };
    MemberSet::new((1..=3).map(member).collect(), Default::default()).unwrap()
}

fn start(dir: &Path, members: &MemberSet, id: &str) -> Node {
    let core = rsl_core::paxos::Config {
        heartbeat_us: 50_000,
        election_delay_us: 300_000,
        new_leader_grace_us: 300_000,
        ..rsl_core::paxos::Config::default()
    };
    let config = RslConfig { working_dir: dir.to_owned(), core_override: Some(core), ..RslConfig::default() };
    let (tx, executed) = channel();
    let app = Sum { sum: 0, executed: tx };
    let replica =
        Replica::initialize(&config, members.clone(), &MemberId::new(id).unwrap(), Version::V7, app);
    Node { replica: replica.unwrap(), executed }
}

fn primary(nodes: &[Node]) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(p) = nodes.iter().position(|n| n.replica.is_primary()) {
            return p;
        }
        assert!(Instant::now() < deadline, "no primary");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Waits until `node` executed its own request `cookie`.
fn executed(node: &Node, cookie: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while node
        .executed
        .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        .expect("executed in time")
        != cookie
    {}
}

/// Threads of this process, from /proc.
fn threads() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status.lines().find_map(|l| l.strip_prefix("Threads:")).unwrap().trim().parse().unwrap()
}

/// Resident memory of this process, in KiB.
fn rss_kib() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).unwrap();
    line.trim().trim_end_matches("kB").trim().parse().unwrap()
}

#[test]
fn a_flood_of_connections_and_garbage_leaves_the_cluster_committing_with_bounded_threads() {
    use std::io::Write;
    use std::sync::atomic::{AtomicBool, Ordering};
    let dir = std::env::temp_dir().join(format!("rsl-flood-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let members = members();
    let nodes: Vec<Node> = ["1", "2", "3"].iter().map(|id| start(&dir, &members, id)).collect();
    let p = primary(&nodes);
    nodes[p].replica.replicate_request(&1u64.to_le_bytes(), 1).unwrap();
    executed(&nodes[p], 1);
    let target = {
        let addr = Ipv4Addr::new(127, 0, 0, p as u8 + 1);
        let port = members.members()[p].rsl_port;
        std::net::SocketAddr::from((addr, port))
    };
    let (threads_before, rss_before) = (threads(), rss_kib());
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let rounds = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let flood = {
        let (stop, rounds) = (std::sync::Arc::clone(&stop), std::sync::Arc::clone(&rounds));
        std::thread::spawn(move || {
            let connect = |from: u8| {
                let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
                socket.bind(&std::net::SocketAddr::from((Ipv4Addr::new(127, 0, 0, from), 0)).into()).ok()?;
                socket.connect_timeout(&target.into(), Duration::from_secs(1)).ok()?;
                Some(std::net::TcpStream::from(socket))
            };
            let (mut silent, mut max_threads) = (std::collections::VecDeque::new(), 0);
            while !stop.load(Ordering::Relaxed) {
                rounds.fetch_add(1, Ordering::Relaxed);
                // Silent connections from the members' addresses, kept open.
                for from in [2u8, 3] {
                    silent.extend(connect(from));
                }
                while silent.len() > 400 {
                    silent.pop_front();
                }
                // Garbage, a frame claiming 1 GiB, and a stranger's address.
                if let Some(mut s) = connect(2) {
                    let _ = s.write_all(&[0xa5; 4096]);
                }
                if let Some(mut s) = connect(3) {
                    let _ = s.write_all(&(1u32 << 30).to_le_bytes());
                }
                drop(connect(9));
                max_threads = max_threads.max(threads());
            }
            max_threads
        })
    };
    // Requests one at a time, each acknowledged, until the flood made 1,000 rounds (5,000
    // connections).
    let mut last = 1u64;
    while last < 100 || rounds.load(Ordering::Relaxed) < 1000 {
        last += 1;
        nodes[p].replica.replicate_request(&last.to_le_bytes(), last).unwrap();
        executed(&nodes[p], last);
    }
    stop.store(true, Ordering::Relaxed);
    let max_threads = flood.join().unwrap();
    let rss = rss_kib();
    eprintln!("flood: {last} requests; threads {threads_before} → at most {max_threads}; rss {rss_before} → {rss} KiB");
    // Each replica holds at most 8 inbound connections per peer, two threads each.
    assert!(max_threads <= threads_before + 40, "threads {threads_before} → {max_threads} under the flood");
    assert!(rss < rss_before + 256 * 1024, "memory grew from {rss_before} to {rss} KiB");
    assert_eq!(nodes[p].replica.read_state(|s| s.sum), (1..=last).sum::<u64>());
    let stats = nodes[p].replica.transport_stats();
    // Every connection but the few kept was refused and counted: a stranger's address (or
    // the primary's own), garbage, an oversized frame, or over the limits.
    let refused = stats.non_member + stats.malformed + stats.oversize + stats.connection_limit;
    assert!(refused >= 4000, "{stats:?}");
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
