//! The public Rust API ([`Replica`] + [`StateMachine`]) on a 3-replica loopback cluster:
//! the legacy callback contracts (spec §1.7, §2.3) as an application sees them.

use rsl_core::paxos::{Ballot, Config, Decree, Member, MemberId, MemberSet};
use rsl_core::runtime::{
    replay, replay_into_checkpoint, JournalKind, RdmaConfig, Replica, ResponseCode, RslConfig,
    RslConfigError, StateMachine, TlsConfig, TransportKind,
};
use rsl_core::storage::checkpoint::{CheckpointReader, CheckpointWriter};
use rsl_core::transport::learn::LearnClient;
use rsl_core::transport::{member_ip, ChannelNetwork};
use rsl_core::wire::Version;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

mod membership;

/// What the application heard, in order.
#[derive(Debug, PartialEq, Eq)]
enum Heard {
    Executed { value: u64, cookie: Option<u64> },
    Read { cookie: u64, sum: u64 },
    Aborted { status: ResponseCode, cookie: u64 },
    Status(bool),
    Saved(u64),
    Loaded(Option<u64>),
    ConfigurationChanged(Option<u64>),
    Copied { decree: u64, path: Option<PathBuf>, cookie: Option<u64> },
    ChangeAborted { status: ResponseCode, cookie: u64 },
    ShutDown,
}

/// Sums the u64 requests it executes; checkpoints hold the sum. What it hears goes to
/// `heard` while someone listens.
struct Summer {
    sum: u64,
    /// Ask for a checkpoint after executing this value.
    save_after: Option<u64>,
    in_decree: bool,
    heard: Sender<Heard>,
    /// While set, `resolve_node` places every peer at 127.0.0.99, where nothing listens;
    /// otherwise at 127.0.0.<id>, as `member` configures it.
    hidden: Option<Arc<AtomicBool>>,
}

impl StateMachine for Summer {
    type Cookie = u64;

    fn load_state(&mut self, reader: Option<&mut CheckpointReader>) -> bool {
        let loaded = match reader {
            None => None,
            Some(reader) => {
                let mut bytes = Vec::new();
                while let Ok(chunk) = reader.get_data_pointer(8 - bytes.len()) {
                    bytes.extend_from_slice(chunk);
                    if bytes.len() == 8 {
                        break;
                    }
                }
                let Ok(bytes) = bytes.try_into() else { return false };
                Some(u64::from_le_bytes(bytes))
            }
        };
        self.sum = loaded.unwrap_or(0);
        let _ = self.heard.send(Heard::Loaded(loaded));
        true
    }

    fn before_execute_replicated_requests(&mut self) {
        assert!(!self.in_decree, "Before/After bracket one decree");
        self.in_decree = true;
    }

    fn after_execute_replicated_requests(&mut self) {
        assert!(self.in_decree);
        self.in_decree = false;
    }

    fn execute_replicated_request(&mut self, request: &[u8], cookie: Option<u64>, save_state: &mut bool) {
        assert!(self.in_decree, "executed inside Before/After");
        let value = u64::from_le_bytes(request[..8].try_into().unwrap());
        self.sum += value;
        *save_state |= self.save_after == Some(value);
        let _ = self.heard.send(Heard::Executed { value, cookie });
    }

    fn execute_fast_read_request(&self, _request: &[u8], cookie: u64) {
        let _ = self.heard.send(Heard::Read { cookie, sum: self.sum });
    }

    fn abort_request(&self, status: ResponseCode, cookie: u64) {
        let _ = self.heard.send(Heard::Aborted { status, cookie });
    }

    fn save_state(&self, writer: &mut CheckpointWriter) -> io::Result<()> {
        writer.write(&self.sum.to_le_bytes())
    }

    fn state_saved(&self, decree: Decree, path: &Path) {
        assert!(path.ends_with(format!("{}.codex", decree.0)));
        let _ = self.heard.send(Heard::Saved(decree.0));
    }

    fn notify_status(&mut self, is_primary: bool) {
        let _ = self.heard.send(Heard::Status(is_primary));
    }

    fn state_copied(&self, decree: Decree, path: Option<&Path>, cookie: Option<u64>) {
        let _ = self.heard.send(Heard::Copied { decree: decree.0, path: path.map(Path::to_owned), cookie });
    }

    fn notify_configuration_changed(&mut self, cookie: Option<u64>) {
        let _ = self.heard.send(Heard::ConfigurationChanged(cookie));
    }

    fn abort_change_configuration(&mut self, status: ResponseCode, cookie: u64) {
        let _ = self.heard.send(Heard::ChangeAborted { status, cookie });
    }

    fn resolve_node(&self, member: &mut Member) -> bool {
        if let Some(hidden) = &self.hidden {
            let last = if hidden.load(Ordering::Relaxed) { 99 } else { member.id.as_str().parse().unwrap() };
            member.ip = member_ip(Ipv4Addr::new(127, 0, 0, last));
        }
        true
    }

    fn shut_down(&mut self, status: ResponseCode) {
        assert_eq!(status, ResponseCode::ShuttingDown);
        let _ = self.heard.send(Heard::ShutDown);
    }
}

fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0)).unwrap().local_addr().unwrap().port()
}

/// Member `n` at 127.0.0.`n`, on free ports.
fn member(n: u8) -> Member {
    let ip = Ipv4Addr::new(127, 0, 0, n);
    Member {
        ip: member_ip(ip),
        rsl_port: free_port(ip),
        learn_port: free_port(ip),
        ..Member::named(&n.to_string()).unwrap()
    }
}

fn members() -> MemberSet {
    MemberSet::new((1..=3).map(member).collect(), Default::default()).unwrap()
}

fn config(dir: &Path) -> RslConfig {
    let core = Config {
        heartbeat_us: 50_000,
        election_delay_us: 300_000,
        new_leader_grace_us: 300_000,
        initialize_retry_us: 100_000,
        prepare_retry_us: 100_000,
        vote_retry_us: 100_000,
        learn_timeout_us: 1_000_000,
        ..Config::default()
    };
    RslConfig {
        working_dir: dir.to_owned(),
        fast_read_seq_threshold: 5,
        core_override: Some(core),
        ..RslConfig::default()
    }
}

struct Node {
    replica: Replica<Summer>,
    heard: Receiver<Heard>,
}

fn start(dir: &Path, members: &MemberSet, id: &str, save_after: Option<u64>) -> Node {
    start_with(&config(dir), members, id, save_after, Version::V7)
}

fn start_with(
    config: &RslConfig,
    members: &MemberSet,
    id: &str,
    save_after: Option<u64>,
    version: Version,
) -> Node {
    let (heard, rx) = channel();
    let app = Summer { sum: 0, save_after, in_decree: false, heard, hidden: None };
    let id = MemberId::new(id).unwrap();
    let replica = Replica::initialize(config, members.clone(), &id, version, app).unwrap();
    Node { replica, heard: rx }
}

/// Waits for the next callback matching `want`, skipping others.
fn expect(node: &Node, what: &str, mut want: impl FnMut(&Heard) -> bool) -> Heard {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let heard = node.heard.recv_timeout(left).unwrap_or_else(|_| panic!("timed out waiting for {what}"));
        if want(&heard) {
            return heard;
        }
    }
}

/// Waits until one of `nodes` (other than `not`) takes requests; returns its index.
fn primary(nodes: &[Node], not: Option<usize>) -> usize {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = nodes.iter().enumerate().position(|(i, n)| Some(i) != not && n.replica.is_primary());
        if let Some(p) = found {
            return p;
        }
        assert!(Instant::now() < deadline, "no primary");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn cluster(name: &str) -> (PathBuf, Vec<Node>) {
    let dir = temp_dir(name);
    let members = members();
    let nodes = ["1", "2", "3"].iter().map(|id| start(&dir, &members, id, None)).collect();
    (dir, nodes)
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rsl-api-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn value(n: u64) -> [u8; 8] {
    n.to_le_bytes()
}

#[test]
fn callbacks_keep_the_legacy_contracts() {
    let dir = temp_dir("contracts");
    let members = members();
    let nodes: Vec<Node> = ["1", "2", "3"].iter().map(|id| start(&dir, &members, id, Some(7))).collect();
    for node in &nodes {
        assert_eq!(expect(node, "load", |h| matches!(h, Heard::Loaded(_))), Heard::Loaded(None));
    }
    // Exactly one replica announces itself; the others refuse requests.
    let deadline = Instant::now() + Duration::from_secs(20);
    let primary = loop {
        if let Some(p) = nodes.iter().position(|n| n.replica.is_primary()) {
            break p;
        }
        assert!(Instant::now() < deadline, "no primary");
        std::thread::sleep(Duration::from_millis(10));
    };
    let p = &nodes[primary];
    expect(p, "NotifyStatus(true)", |h| *h == Heard::Status(true));
    let secondary = &nodes[(primary + 1) % 3];
    assert_eq!(secondary.replica.replicate_request(&value(1), 99), Err((ResponseCode::NotPrimary, 99)));
    assert_eq!(p.replica.replicate_request(&[], 98), Err((ResponseCode::InvalidParameter, 98)));

    // Requests execute in order, with the cookie only where they were submitted. Each has
    // a decree of its own, so the checkpoint after value 7 holds 1 + … + 7.
    for v in 1..=10 {
        p.replica.replicate_request_exclusive_vote(&value(v), 100 + v, false).unwrap();
    }
    for (node, ours) in [(p, true), (secondary, false)] {
        let mut heard = Vec::new();
        while heard.iter().filter(|h| matches!(h, Heard::Executed { .. })).count() < 10 {
            heard.push(expect(node, "execution", |h| matches!(h, Heard::Executed { .. } | Heard::Saved(_))));
        }
        let executed: Vec<_> = heard
            .iter()
            .filter_map(|h| match h {
                Heard::Executed { value, cookie } => Some((*value, *cookie)),
                _ => None,
            })
            .collect();
        let expected: Vec<_> = (1..=10).map(|v| (v, ours.then_some(100 + v))).collect();
        assert_eq!(executed, expected);
        // Value 7 asked for a checkpoint: saved before the next decree executed.
        let saved = heard.iter().position(|h| matches!(h, Heard::Saved(_))).expect("a checkpoint");
        assert_eq!(heard[saved - 1], Heard::Executed { value: 7, cookie: ours.then_some(107) });
    }
    let third = &nodes[(primary + 2) % 3];
    expect(third, "StateSaved", |h| matches!(h, Heard::Saved(_)));

    // Fast reads: at once when seen, stale when too far ahead or with no time to wait,
    // executed when the decree arrives within the timeout, stale when it does not.
    let current = p.replica.current_sequence_number();
    p.replica.fast_read_request(current, b"r", 1, Duration::ZERO).unwrap();
    assert_eq!(expect(p, "read 1", |h| matches!(h, Heard::Read { .. })), Heard::Read { cookie: 1, sum: 55 });
    let far = Decree(current.0 + 100);
    assert_eq!(
        p.replica.fast_read_request(far, b"r", 2, Duration::from_secs(5)),
        Err((ResponseCode::FastReadStale, 2))
    );
    let next = Decree(current.0 + 1);
    assert_eq!(
        p.replica.fast_read_request(next, b"r", 3, Duration::ZERO),
        Err((ResponseCode::FastReadStale, 3))
    );
    let s = secondary.replica.current_sequence_number();
    // Five decrees take five 50 ms heartbeats; the read gives up after 30 ms.
    secondary.replica.fast_read_request(Decree(s.0 + 5), b"r", 4, Duration::from_millis(30)).unwrap();
    assert_eq!(
        expect(secondary, "stale abort", |h| matches!(h, Heard::Aborted { .. })),
        Heard::Aborted { status: ResponseCode::FastReadStale, cookie: 4 }
    );
    // A read of what the primary executed waits on the secondary until it gets there.
    p.replica.replicate_request(&value(1000), 200).unwrap();
    expect(p, "execution of 1000", |h| matches!(h, Heard::Executed { value: 1000, .. }));
    let seen = p.replica.current_sequence_number();
    secondary.replica.fast_read_request(seen, b"r", 5, Duration::from_secs(10)).unwrap();
    assert_eq!(
        expect(secondary, "waiting read", |h| matches!(h, Heard::Read { .. })),
        Heard::Read { cookie: 5, sum: 1055 }
    );
    assert!(!p.replica.replicas_information().is_empty(), "the primary reports its peers");
    let stats = p.replica.statistics_snapshot();
    assert!(stats.decrees_executed > 0 && stats.log_writes > 0, "{stats:?}");
    assert!(stats.log_write_bytes >= 512 * stats.log_writes, "each record is padded to 512: {stats:?}");
    assert!(stats.voting_micros > 0 && stats.voting_max_micros > 0, "the primary times its votes: {stats:?}");
    let again = p.replica.statistics_snapshot();
    assert!(again.decrees_executed < stats.decrees_executed, "deltas since the last snapshot: {again:?}");

    // Unload: shut_down is the last callback; the replica restarts from its checkpoint.
    let mut nodes = nodes;
    let node = nodes.remove((primary + 2) % 3);
    let executed = node.replica.current_sequence_number();
    let Node { replica, heard } = node;
    let summer = replica.unload().unwrap();
    assert!(heard.try_iter().any(|h| h == Heard::ShutDown));
    let id = ["1", "2", "3"][(primary + 2) % 3];
    let restarted = start(&dir, &members, id, None);
    let loaded = expect(&restarted, "load", |h| matches!(h, Heard::Loaded(_)));
    assert!(
        matches!(loaded, Heard::Loaded(Some(28))),
        "the checkpoint after value 7 holds 1+…+7, got {loaded:?}"
    );
    assert!(
        restarted.replica.current_sequence_number() >= executed,
        "restart replays the journal after the checkpoint"
    );
    assert_eq!(restarted.replica.read_state(|s| s.sum), summer.sum);
    // Every replica executes everything before it stops, so each journal proves it all.
    let deadline = Instant::now() + Duration::from_secs(20);
    while nodes.iter().chain([&restarted]).any(|n| n.replica.read_state(|s| s.sum) != 1055) {
        assert!(Instant::now() < deadline, "a replica did not execute everything");
        std::thread::sleep(Duration::from_millis(5));
    }
    drop(restarted);
    drop(nodes);

    // Offline replay reads the same directory to the same state, or stops at a decree.
    let (heard, _rx) = channel();
    let mut replayed = Summer { sum: 0, save_after: None, in_decree: false, heard, hidden: None };
    let one = dir.join("1");
    let last = replay(&mut replayed, &one, Decree(u64::MAX)).unwrap();
    assert_eq!(replayed.sum, 1055);
    assert!(last >= executed);
    let early = replay(&mut replayed, &one, Decree(3)).unwrap();
    assert!(early <= Decree(8), "stops at the checkpoint or at decree 3, got {early:?}");
    let copy = dir.join("copy");
    let path = replay_into_checkpoint(&mut replayed, &one, Decree(u64::MAX), Decree(500), &copy).unwrap();
    assert!(path.ends_with("500.codex"));
    replay(&mut replayed, &copy, Decree(u64::MAX)).unwrap();
    assert_eq!(replayed.sum, 1055, "the checkpoint written by replay loads back");
    assert!(replay_into_checkpoint(&mut replayed, &one, Decree(9), Decree(9), &one).is_err());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_config_value_out_of_range_names_the_field() {
    let dir = temp_dir("config");
    let jittery = RslConfig { election_randomize: 101, ..config(&dir) };
    let Err(RslConfigError::Range(e)) = jittery.validate() else { panic!("accepted") };
    assert_eq!(e.field, "m_electionRandomize");
    let nowhere = RslConfig { working_dir: PathBuf::new(), ..RslConfig::default() };
    assert_eq!(nowhere.validate(), Err(RslConfigError::EmptyWorkingDir));
    let (heard, _rx) = channel();
    let app = Summer { sum: 0, save_after: None, in_decree: false, heard, hidden: None };
    let members = members();
    let bad = RslConfig { max_log_len_mb: 0, ..config(&dir) };
    let err =
        Replica::initialize(&bad, members, &MemberId::new("1").unwrap(), Version::V7, app).err().unwrap();
    assert!(err.to_string().contains("m_maxLogLenMB"), "{err}");
}

#[test]
fn a_deposed_primary_aborts_its_requests_before_notify_status_false() {
    let (dir, nodes) = cluster("deposed");
    let old = primary(&nodes, None);
    let p = &nodes[old];
    expect(p, "NotifyStatus(true)", |h| *h == Heard::Status(true));
    // Cut the primary off from its peers' answers, queue requests it cannot commit, and
    // let a secondary take over with a higher ballot.
    p.replica.pause();
    for cookie in 1..=5 {
        p.replica.replicate_request(&value(cookie), cookie).unwrap();
    }
    nodes[(old + 1) % 3].replica.attempt_promotion();
    let new = primary(&nodes, Some(old));
    p.replica.resume();
    let mut heard = Vec::new();
    while heard.last() != Some(&Heard::Status(false)) {
        heard.push(expect(p, "step down", |h| matches!(h, Heard::Aborted { .. } | Heard::Status(false))));
    }
    let aborted: Vec<_> = heard[..heard.len() - 1].iter().collect();
    let expected: Vec<_> =
        (1..=5).map(|cookie| Heard::Aborted { status: ResponseCode::NotPrimary, cookie }).collect();
    assert_eq!(aborted, expected.iter().collect::<Vec<_>>(), "every pending request, then the status");
    assert!(!p.replica.is_primary());
    assert_eq!(p.replica.replicate_request(&value(9), 9), Err((ResponseCode::NotPrimary, 9)));
    assert!(nodes[new].replica.is_primary());
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn relinquish_and_last_decree_hand_primacy_over() {
    let (dir, nodes) = cluster("relinquish");
    let first = primary(&nodes, None);
    nodes[first].replica.relinquish_primary();
    expect(&nodes[first], "shut_down after relinquishing", |h| *h == Heard::ShutDown);
    let second = primary(&nodes, Some(first));
    let s = &nodes[second];
    s.replica.replicate_request_exclusive_vote(&value(1), 1, true).unwrap();
    assert_eq!(s.replica.replicate_request(&value(2), 2), Err((ResponseCode::ShuttingDown, 2)));
    expect(s, "the last decree executes", |h| *h == Heard::Executed { value: 1, cookie: Some(1) });
    let third = 3 - first - second;
    nodes[third].replica.attempt_promotion();
    expect(&nodes[third], "the remaining replica takes over", |h| *h == Heard::Status(true));
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn secondaries_take_time_based_checkpoints() {
    let dir = temp_dir("timed");
    let members = members();
    let config = RslConfig { max_checkpoint_interval_sec: 1, ..config(&dir) };
    let nodes: Vec<Node> =
        ["1", "2", "3"].iter().map(|id| start_with(&config, &members, id, None, Version::V7)).collect();
    let p = primary(&nodes, None);
    for (i, node) in nodes.iter().enumerate().filter(|(i, _)| *i != p) {
        let saved = expect(node, "a time-based checkpoint", |h| matches!(h, Heard::Saved(_)));
        assert!(matches!(saved, Heard::Saved(d) if d > 0), "replica {i}: {saved:?}");
    }
    assert!(
        !nodes[p].heard.try_iter().any(|h| matches!(h, Heard::Saved(_))),
        "the primary does not stall for a checkpoint"
    );
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_primary_of_a_higher_version_raises_its_followers() {
    // Replica 1 speaks version 7, replicas 2 and 3 version 6 (legacy's upgrade: every
    // binary new, then one replica given the new version).
    let dir = temp_dir("versions");
    let members = members();
    let config = config(&dir);
    let versions = [Version::V7, Version::V6, Version::V6];
    let nodes: Vec<Node> = ["1", "2", "3"]
        .iter()
        .zip(versions)
        .map(|(id, version)| start_with(&config, &members, id, None, version))
        .collect();
    let first = primary(&nodes, None);
    if first != 0 {
        // A version-6 primary is not raised by its version-7 follower's answers.
        nodes[first].replica.replicate_request(&value(1), 1).unwrap();
        expect(&nodes[first], "execution", |h| matches!(h, Heard::Executed { .. }));
        assert_eq!(nodes[first].replica.protocol_version(), Some(Version::V6));
        nodes[0].replica.attempt_promotion();
        expect(&nodes[0], "replica 1 leads", |h| *h == Heard::Status(true));
    }
    let p = &nodes[0];
    for v in 1..=20 {
        p.replica.replicate_request(&value(v), 100 + v).unwrap();
    }
    for node in &nodes[1..] {
        expect(node, "the last request", |h| matches!(h, Heard::Executed { value: 20, .. }));
        assert_eq!(node.replica.protocol_version(), Some(Version::V7), "raised by the primary's votes");
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Legacy asks `ResolveNode` again every 30 s: peers it could not find at start are
/// reached once it can (a name that resolves later, a member that moved).
#[test]
fn peers_resolve_node_finds_only_later_are_reached_there() {
    let dir = temp_dir("resolve");
    let (members, hidden) = (members(), Arc::new(AtomicBool::new(true)));
    let config = RslConfig { resolve_interval_ms: 100, ..config(&dir) };
    let start = |id: &str| {
        let (heard, rx) = channel();
        let app =
            Summer { sum: 0, save_after: None, in_decree: false, heard, hidden: Some(Arc::clone(&hidden)) };
        let replica =
            Replica::initialize(&config, members.clone(), &MemberId::new(id).unwrap(), Version::V7, app);
        Node { replica: replica.unwrap(), heard: rx }
    };
    let nodes: Vec<Node> = ["1", "2", "3"].iter().map(|id| start(id)).collect();
    std::thread::sleep(Duration::from_secs(1));
    assert!(nodes.iter().all(|n| !n.replica.is_primary()), "no election while every peer is hidden");
    hidden.store(false, Ordering::Relaxed);
    let first = primary(&nodes, None);
    nodes[first].replica.replicate_request(&value(7), 7).unwrap();
    for node in &nodes {
        expect(node, "the request, everywhere", |h| matches!(h, Heard::Executed { value: 7, .. }));
    }
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cluster_over_the_in_process_transport_commits_and_fails_over() {
    let dir = temp_dir("channels");
    let members = members();
    let network = ChannelNetwork::default();
    let start = |id: &str| {
        let (heard, rx) = channel();
        let app = Summer { sum: 0, save_after: None, in_decree: false, heard, hidden: None };
        let id = MemberId::new(id).unwrap();
        let transport = network.join(id.clone(), Version::V7, 1024);
        let replica = Replica::initialize_with_transport(
            &config(&dir),
            members.clone(),
            &id,
            Version::V7,
            app,
            transport,
        );
        Node { replica: replica.unwrap(), heard: rx }
    };
    let mut nodes: Vec<Node> = ["1", "2", "3"].iter().map(|id| start(id)).collect();
    let first = primary(&nodes, None);
    for v in 1..=50 {
        nodes[first].replica.replicate_request(&value(v), v).unwrap();
    }
    expect(&nodes[first], "the 50th request", |h| *h == Heard::Executed { value: 50, cookie: Some(50) });
    let gone = nodes.remove(first).replica.unload().unwrap();
    assert_eq!(gone.sum, 1275);
    let next = primary(&nodes, None);
    nodes[next].replica.replicate_request(&value(1000), 1000).unwrap();
    expect(&nodes[next], "a request after the failover", |h| {
        *h == Heard::Executed { value: 1000, cookie: Some(1000) }
    });
    assert_eq!(nodes[next].replica.read_state(|s| s.sum), 2275);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn full_logs_make_secondaries_checkpoint_and_covered_logs_go() {
    let dir = temp_dir("rotation");
    let members = members();
    // 1 MiB logs (± 20 %), 2 checkpoints and 1 log kept: 8 MiB of requests rotate often.
    let config = RslConfig {
        max_log_len_mb: 1,
        max_checkpoints: 2,
        max_logs: 1,
        c_p_query_retry_interval_sec: 1,
        ..config(&dir)
    };
    let nodes: Vec<Node> =
        ["1", "2", "3"].iter().map(|id| start_with(&config, &members, id, None, Version::V7)).collect();
    let p = primary(&nodes, None);
    let big = vec![1u8; 64 << 10];
    for v in 1..=128u64 {
        let mut request = big.clone();
        request[..8].copy_from_slice(&value(v));
        nodes[p].replica.replicate_request_exclusive_vote(&request, v, false).unwrap();
    }
    let total: u64 = (1..=128).sum();
    let s = (p + 1) % 3;
    let deadline = Instant::now() + Duration::from_secs(30);
    while nodes[s].replica.read_state(|a| a.sum) != total {
        assert!(Instant::now() < deadline, "the secondary did not execute everything");
        std::thread::sleep(Duration::from_millis(10));
    }
    let saved = nodes[s].heard.try_iter().filter(|h| matches!(h, Heard::Saved(_))).count();
    assert!(saved >= 2, "a checkpoint per filled log, got {saved}");
    let files = |ext: &str| {
        let dir = dir.join(nodes[s].replica.id().as_str());
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().unwrap_or_default() == ext)
            .count()
    };
    assert!(files("codex") <= 2, "m_maxCheckpoints");
    assert!(files("log") <= 3, "covered logs are removed, {} remain", files("log"));
    // Its status answers say so: the newest checkpoint, and where its logs now start.
    let member = members.members().iter().find(|m| m.id == *nodes[s].replica.id()).unwrap().clone();
    let client = LearnClient::new(MemberId::new("9").unwrap(), Version::V7);
    let addr = SocketAddr::from((Ipv4Addr::from(member.ip.to_le_bytes()), member.learn_port));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let status = client.fetch_status(addr, Decree(0), Ballot::default()).unwrap();
        if status.checkpointed_decree > Decree(0) && status.min_decree_in_log > Decree(1) {
            assert!(status.min_decree_in_log.0 <= status.checkpointed_decree.0 + 1, "{status:?}");
            break;
        }
        assert!(Instant::now() < deadline, "status still reports the start's: {status:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The primary saved none: it copied a secondary's (no cookie), and its full logs went.
    let mut saved_by_primary = false;
    let copied = expect(&nodes[p], "the primary's copy", |h| {
        saved_by_primary |= matches!(h, Heard::Saved(_));
        matches!(h, Heard::Copied { .. })
    });
    assert!(
        matches!(copied, Heard::Copied { decree, path: Some(_), cookie: None } if decree > 0),
        "{copied:?}"
    );
    let primary_logs = || {
        let dir = dir.join(nodes[p].replica.id().as_str());
        std::fs::read_dir(dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().unwrap_or_default() == "log")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while primary_logs() > 3 {
        assert!(Instant::now() < deadline, "the primary keeps {} logs", primary_logs());
        std::thread::sleep(Duration::from_millis(50));
    }
    saved_by_primary |= nodes[p].heard.try_iter().any(|h| matches!(h, Heard::Saved(_)));
    assert!(!saved_by_primary, "a primary with peers does not stall to save");
    // The secondary restarts from its newest checkpoint and the logs after it.
    let mut nodes = nodes;
    let secondary = nodes.remove(s);
    let id = secondary.replica.id().clone();
    secondary.replica.unload().unwrap();
    let restarted = start_with(&config, &members, id.as_str(), None, Version::V7);
    let loaded = expect(&restarted, "load", |h| matches!(h, Heard::Loaded(_)));
    assert!(matches!(loaded, Heard::Loaded(Some(_))), "{loaded:?}");
    assert_eq!(restarted.replica.read_state(|a| a.sum), total);
    restarted.replica.unload().unwrap();
    // Its checkpoints grown by 100 bytes, none loads, and the logs no longer reach decree
    // 0: the start fails, naming each file and why, and changes nothing on disk.
    let data = dir.join(id.as_str());
    let codex: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "codex"))
        .collect();
    let grow = |by: &[u8]| {
        for path in &codex {
            let mut bytes = std::fs::read(path).unwrap();
            if by.is_empty() {
                bytes.truncate(bytes.len() - 100);
            } else {
                bytes.extend_from_slice(by);
            }
            std::fs::write(path, bytes).unwrap();
        }
    };
    grow(&[0; 100]);
    let (heard, _) = channel();
    let app = Summer { sum: 0, save_after: None, in_decree: false, heard, hidden: None };
    let err = Replica::initialize(&config, members.clone(), &id, Version::V7, app).err().unwrap().to_string();
    assert!(err.contains("no checkpoint loads") && err.contains("its header says"), "{err}");
    for path in &codex {
        assert!(err.contains(path.file_name().unwrap().to_str().unwrap()), "{err}");
    }
    grow(&[]);
    let restarted = start_with(&config, &members, id.as_str(), None, Version::V7);
    assert_eq!(restarted.replica.read_state(|a| a.sum), total, "nothing was lost");
    drop(restarted);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn restart_empties_temp_reads_defunct_txt_and_refuses_missing_logs() {
    let dir = temp_dir("restart");
    let one = MemberSet::new(members().members()[..1].to_vec(), Default::default()).unwrap();
    let node = start(&dir, &one, "1", Some(3));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !node.replica.is_primary() {
        assert!(Instant::now() < deadline, "a lone replica elects itself");
        std::thread::sleep(Duration::from_millis(5));
    }
    for v in 1..=5 {
        node.replica.replicate_request_exclusive_vote(&value(v), v, false).unwrap();
    }
    expect(&node, "the checkpoint after value 3", |h| matches!(h, Heard::Saved(_)));
    expect(&node, "value 5", |h| matches!(h, Heard::Executed { value: 5, .. }));
    node.replica.unload().unwrap();
    let data = dir.join("1");
    let restart = || {
        let (heard, _) = channel();
        let app = Summer { sum: 0, save_after: None, in_decree: false, heard, hidden: None };
        Replica::initialize(&config(&dir), one.clone(), &MemberId::new("1").unwrap(), Version::V7, app)
    };

    // Leftovers of a checkpoint being written go; the state comes back.
    std::fs::write(data.join("Temp").join("7.codex"), b"half a checkpoint").unwrap();
    let replica = restart().unwrap();
    assert_eq!(replica.read_state(|s| s.sum), 15);
    replica.unload().unwrap();
    assert_eq!(std::fs::read_dir(data.join("Temp")).unwrap().count(), 0, "Temp/ emptied");

    // The logs must reach back to the checkpoint, or to decree 0 without one.
    std::fs::rename(data.join("0.log"), data.join("100.log")).unwrap();
    let err = restart().err().expect("missing logs refused").to_string();
    assert!(
        err.contains("missing logs") && err.contains("100.log") || err.contains("starts at 100"),
        "{err}"
    );
    for entry in std::fs::read_dir(&data).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "codex") {
            std::fs::remove_file(path).unwrap();
        }
    }
    let err = restart().err().expect("logs not from 0 refused").to_string();
    assert!(err.contains("oldest log starts at decree 100"), "{err}");

    // Legacy's defunct.txt is read: four bytes start, any other size is named.
    std::fs::rename(data.join("100.log"), data.join("0.log")).unwrap();
    std::fs::write(data.join("defunct.txt"), 3u32.to_le_bytes()).unwrap();
    restart().unwrap().unload().unwrap();
    std::fs::write(data.join("defunct.txt"), b"3").unwrap();
    let err = restart().err().expect("a bad defunct.txt refused").to_string();
    assert!(err.contains("defunct.txt: 1 bytes, where legacy writes 4"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_log_missing_between_others_fails_the_restart_and_loses_nothing() {
    let dir = temp_dir("log-gap");
    let one = MemberSet::new(members().members()[..1].to_vec(), Default::default()).unwrap();
    let config = RslConfig { max_log_len_mb: 1, ..config(&dir) };
    let node = start_with(&config, &one, "1", None, Version::V7);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !node.replica.is_primary() {
        assert!(Instant::now() < deadline, "a lone replica elects itself");
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut request = vec![0u8; 64 << 10];
    for v in 1..=60u64 {
        request[..8].copy_from_slice(&value(v));
        node.replica.replicate_request_exclusive_vote(&request, v, false).unwrap();
    }
    expect(&node, "value 60", |h| matches!(h, Heard::Executed { value: 60, .. }));
    node.replica.unload().unwrap();
    let data = dir.join("1");
    let mut logs: Vec<(u64, PathBuf)> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| (p.file_stem().unwrap().to_str().unwrap().parse().unwrap(), p))
        .collect();
    logs.sort();
    assert!(logs.len() >= 3, "3.75 MiB of requests fill several 1 MiB logs: {logs:?}");
    let restart = || {
        let (heard, _) = channel();
        let app = Summer { sum: 0, save_after: None, in_decree: false, heard, hidden: None };
        Replica::initialize(&config, one.clone(), &MemberId::new("1").unwrap(), Version::V7, app)
    };

    let (middle, aside) = (&logs[1].1, dir.join("aside.log"));
    std::fs::rename(middle, &aside).unwrap();
    let err = restart().err().expect("a hole in the logs is refused").to_string();
    let next = logs[2].1.file_name().unwrap().to_str().unwrap();
    assert!(err.contains("missing logs") && err.contains(next), "{err}");

    // Nothing was touched: with the file back, every request is there.
    std::fs::rename(&aside, middle).unwrap();
    let replica = restart().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while replica.read_state(|s| s.sum) != (1..=60).sum::<u64>() {
        assert!(Instant::now() < deadline, "the restarted replica replays every request");
        std::thread::sleep(Duration::from_millis(5));
    }
    replica.unload().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// With `msync` the journal has a writer thread; on DAX the engine writes it itself.
#[test]
fn replicas_on_the_nvm_journal_commit_restart_and_serve_learners() {
    nvm_cluster(false);
    nvm_cluster(true);
}

fn nvm_cluster(dax: bool) {
    let dir = temp_dir(if dax { "nvm-dax" } else { "nvm" });
    let members = members();
    let config = RslConfig { journal: JournalKind::Nvm { dax }, ..config(&dir) };
    let mut nodes: Vec<Node> =
        ["1", "2", "3"].iter().map(|id| start_with(&config, &members, id, None, Version::V7)).collect();
    let p = primary(&nodes, None);
    for v in 1..=50 {
        nodes[p].replica.replicate_request(&value(v), v).unwrap();
    }
    expect(&nodes[p], "the 50th", |h| matches!(h, Heard::Executed { value: 50, .. }));
    // A secondary misses the next 150; restarted from its nvm journal, it learns them
    // from its peers' nvm journals through the learn port.
    let s = (p + 1) % 3;
    let gone = nodes.remove(s);
    let id = gone.replica.id().clone();
    gone.replica.unload().unwrap();
    assert!(dir.join(id.as_str()).join("journal.nvm").exists());
    let p = primary(&nodes, None);
    // A decree each, more than the window: the primary cannot simply send them again.
    for v in 51..=200 {
        nodes[p].replica.replicate_request_exclusive_vote(&value(v), v, false).unwrap();
    }
    expect(&nodes[p], "the 200th", |h| matches!(h, Heard::Executed { value: 200, .. }));
    let back = start_with(&config, &members, id.as_str(), None, Version::V7);
    let deadline = Instant::now() + Duration::from_secs(20);
    while back.replica.read_state(|a| a.sum) != 20100 {
        assert!(Instant::now() < deadline, "the restarted replica did not catch up");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(back.replica.learned_votes() > 0, "it learned from its peers");
    let served: Vec<_> = nodes.iter().map(|n| n.replica.statistics_snapshot()).collect();
    assert!(
        served.iter().any(|s| s.log_reads > 0 && s.log_read_bytes > 0),
        "a peer counts the journal reads it served: {served:?}"
    );
    drop(back);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn the_rdma_transport_refuses_to_start_and_names_the_alternatives() {
    let dir = temp_dir("rdma");
    let one = MemberSet::new(members().members()[..1].to_vec(), Default::default()).unwrap();
    let config = RslConfig { transport: TransportKind::Rdma(RdmaConfig::default()), ..config(&dir) };
    let (heard, _) = channel();
    let app = Summer { sum: 0, save_after: None, in_decree: false, heard, hidden: None };
    let err =
        Replica::initialize(&config, one, &MemberId::new("1").unwrap(), Version::V7, app).err().unwrap();
    let err = err.to_string();
    // Built without verbs, it says so; with them, this machine has no RDMA device.
    let why = if cfg!(feature = "rdma") { "no RDMA device" } else { "this build has no RDMA support" };
    assert!(err.contains(why) && err.contains("tcp or shm"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_cluster_with_tls_commits_fails_over_and_takes_a_restarted_replica_back() {
    let dir = temp_dir("tls");
    let certs = dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["rsl".to_owned()]).unwrap().self_signed(&key).unwrap();
    std::fs::write(certs.join("cluster.pem"), cert.pem() + &key.serialize_pem()).unwrap();
    use sha1::Digest;
    let thumbprint: String = sha1::Sha1::digest(cert.der()).iter().map(|b| format!("{b:02x}")).collect();
    let tls = TlsConfig {
        cert_dir: certs,
        thumbprints: [Some(thumbprint), None],
        subjects: Vec::new(),
        validate_ca_chain: false,
        check_revocation: false,
        handshake_timeout: Duration::from_secs(2),
    };
    let config = RslConfig { tls: Some(tls), ..config(&dir) };
    let members = members();
    let mut nodes: Vec<Node> =
        ["1", "2", "3"].iter().map(|id| start_with(&config, &members, id, None, Version::V7)).collect();
    let first = primary(&nodes, None);
    for v in 1..=50 {
        nodes[first].replica.replicate_request(&value(v), v).unwrap();
    }
    expect(&nodes[first], "the 50th request", |h| *h == Heard::Executed { value: 50, cookie: Some(50) });
    let gone_id = (first + 1).to_string();
    assert_eq!(nodes.remove(first).replica.unload().unwrap().sum, 1275);
    let next = primary(&nodes, None);
    for v in 51..=60 {
        nodes[next].replica.replicate_request(&value(v), v).unwrap();
    }
    expect(&nodes[next], "a request after the failover", |h| {
        *h == Heard::Executed { value: 60, cookie: Some(60) }
    });
    // The old primary restarts from its journal and catches up over TLS.
    let back = start_with(&config, &members, &gone_id, None, Version::V7);
    let deadline = Instant::now() + Duration::from_secs(20);
    while back.replica.read_state(|s| s.sum) != 1830 {
        assert!(Instant::now() < deadline, "the restarted replica caught up");
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(back);
    drop(nodes);
    let _ = std::fs::remove_dir_all(&dir);
}
