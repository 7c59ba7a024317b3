//! The learn port on loopback (127.0.0.x, ports chosen by the kernel, temp dirs removed):
//! the §6.8 fetch-service cases over a real rotated file journal, every §6.3
//! TestReadNextMessage bad stream from a fake server, StatusQuery and FetchCheckpoint
//! round trips, the receive timeout and the connection bound. Waits are on sockets or
//! channels with generous deadlines; none is a bare sleep.

mod storage_support;

use rsl_core::paxos::{
    chosen_votes, Ballot, Body, Decree, Member, MemberId, Message, Record, State, Status, Vote, VoteBody,
};
use rsl_core::storage::{read_log_dir, FileJournal, FileOptions, Journal};
use rsl_core::transport::learn::{
    learned_votes, BadRecord, LearnClient, LearnConfig, LearnError, LearnServer, LearnStats,
};
use rsl_core::transport::member_ip;
use rsl_core::wire::{encode_record, Header, Version, WireBody, WireMessage, RECORD_ALIGN};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};
use storage_support::{ballot, promise, vote, TempDir};

/// Long enough for a loaded 2-core machine; a passing run takes milliseconds per wait.
const WAIT: Duration = Duration::from_secs(20);

fn loopback(n: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, n)
}

fn config(dir: &Path) -> LearnConfig {
    let me = Member { ip: member_ip(loopback(2)), learn_port: 0, ..Member::named("2").unwrap() };
    LearnConfig::new(me, Version::V4, dir.to_owned())
}

fn client() -> LearnClient {
    LearnClient { timeout: WAIT, ..LearnClient::new(MemberId::new("1").unwrap(), Version::V4) }
}

/// Decrees 1..=12 (7 re-voted under ballot 2, 12 under ballot 3), rotated about every 2 KiB, so the
/// log spans several files; then the first file is removed, as log cleanup would.
/// Returns the records left on disk.
fn write_journal(dir: &Path) -> Vec<Record> {
    let options = FileOptions {
        max_log_len_bytes: 2048,
        log_len_randomize_percent: 0,
        ..FileOptions::new(Version::V4) // 1 MiB of zeros written ahead: never served
    };
    let (mut journal, _) = FileJournal::open(dir, options).unwrap();
    let mut records = vec![promise(1)];
    for d in 1..=12u64 {
        let size = [10usize, 600, 1300][(d % 3) as usize];
        let number = if d > 7 { 2 } else { 1 };
        records.push(vote(d, number, &[&vec![d as u8; size]]));
        if d == 7 || d == 12 {
            records.extend([promise(number + 1), vote(d, number + 1, &[&vec![d as u8; size]])]);
        }
    }
    for r in &records {
        journal.append(r).unwrap();
    }
    journal.sync().unwrap();
    drop(journal);
    read_log_dir(dir).unwrap().recovered.records
}

fn log_files(dir: &Path) -> Vec<(u64, std::path::PathBuf)> {
    let mut logs: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter_map(|p| Some((p.file_name()?.to_str()?.strip_suffix(".log")?.parse().ok()?, p)))
        .collect();
    logs.sort();
    logs
}

/// A file's records without the zero blocks written ahead of them.
fn records_part(path: &Path) -> Vec<u8> {
    let mut bytes = std::fs::read(path).unwrap();
    while bytes.len() >= RECORD_ALIGN && bytes[bytes.len() - RECORD_ALIGN..].iter().all(|&b| b == 0) {
        bytes.truncate(bytes.len() - RECORD_ALIGN);
    }
    bytes
}

/// Every byte the server sends for one raw request.
fn raw_answer(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    answer
}

fn decree_of(record: &Record) -> Option<u64> {
    match record {
        Record::Vote(v) => Some(v.decree.0),
        Record::Promise(_) => None,
    }
}

#[test]
fn fetch_votes_serves_the_log_from_the_decree_on_and_nothing_outside_it() {
    let dir = TempDir::new("learn-fetch");
    write_journal(dir.path());
    let logs = log_files(dir.path());
    assert!(logs.len() >= 4, "rotated: {logs:?}");
    std::fs::remove_file(&logs[0].1).unwrap(); // log cleanup took the oldest file
    let on_disk = read_log_dir(dir.path()).unwrap().recovered.records;
    let min_decree = on_disk.iter().find_map(decree_of).unwrap();
    assert_eq!(min_decree, logs[1].0, "a rotated file starts with its decree");
    let server = LearnServer::start(config(dir.path())).unwrap();
    let addr = server.listen_addr();
    assert_eq!(addr.ip(), loopback(2));

    // From the minimum decree in the log: exactly the records of every file, zeros cut.
    let request = |d: u64| {
        let header = Header {
            version: Version::V4,
            from: MemberId::new("1").unwrap(),
            decree: Decree(d),
            configuration: 1,
            ballot: Ballot::default(),
            payload: 0,
        };
        WireMessage { header, body: WireBody::FetchVotes }.to_bytes().unwrap()
    };
    let whole: Vec<u8> = logs[1..].iter().flat_map(|(_, p)| records_part(p)).collect();
    let answer = raw_answer(addr, &request(min_decree));
    assert!(answer == whole, "{} bytes served, {} in the files", answer.len(), whole.len());

    // From the minimum, the middle, a file's first decree, a re-voted decree, the last.
    let middle_of_a_file = on_disk.iter().filter_map(decree_of).find(|d| !logs.iter().any(|(n, _)| n == d));
    let wanted = [min_decree, middle_of_a_file.unwrap(), logs[2].0, 7, 12];
    for first in wanted {
        let fetched = client().fetch_votes(addr, Decree(first)).unwrap();
        // The stream starts at the decree's last record (legacy's offset) and runs to the end.
        let start = on_disk.iter().rposition(|r| decree_of(r) == Some(first)).unwrap();
        assert_eq!(fetched, on_disk[start..], "from {first}");
        let votes = learned_votes(&fetched, Decree(first));
        assert_eq!(votes, chosen_votes(&on_disk, Decree(first - 1)), "from {first}");
        // Every decree but the last is proven by a later record; a re-vote wins.
        let expect: Vec<u64> = (first..12).collect();
        assert_eq!(votes.iter().map(|v| v.decree.0).collect::<Vec<_>>(), expect, "from {first}");
        assert!(votes.iter().all(|v| v.decree != Decree(7) || v.ballot == ballot(2)));
    }

    // Below the minimum (in a removed file, and decree 0) and above the last: nothing.
    for absent in [0, min_decree - 1, 13, 1000] {
        assert!(raw_answer(addr, &request(absent)).is_empty(), "decree {absent}");
        assert_eq!(client().fetch_votes(addr, Decree(absent)).unwrap(), [], "decree {absent}");
    }
}

#[test]
fn a_torn_tail_of_the_newest_file_is_not_served() {
    let dir = TempDir::new("learn-torn");
    let on_disk = write_journal(dir.path());
    let (_, newest) = log_files(dir.path()).pop().unwrap();
    // Half a record being written after the last one (the zeros written ahead go first).
    let mut bytes = records_part(&newest);
    bytes.extend_from_slice(&encode_record(&vote_message(13)).unwrap()[..700]);
    std::fs::write(&newest, &bytes).unwrap();
    let server = LearnServer::start(config(dir.path())).unwrap();
    let fetched = client().fetch_votes(server.listen_addr(), Decree(1)).unwrap();
    let start = on_disk.iter().position(|r| decree_of(r) == Some(1)).unwrap();
    assert_eq!(fetched, on_disk[start..]);
}

fn vote_message(decree: u64) -> WireMessage {
    let vote = Vote::empty(Decree(decree), ballot(1), 1, Decree(decree - 1));
    let vote = Vote { body: VoteBody::Requests(vec![vec![9u8; 900].into()]), ..vote };
    let message =
        Message { from: MemberId::new("1").unwrap(), configuration: 1, body: Body::Vote(Arc::new(vote)) };
    WireMessage::from_core(&message, Version::V4).unwrap()
}

/// A bad stream: its name, its bytes, where the learner must find it bad, and how.
type BadStream = (&'static str, Vec<u8>, u64, fn(&BadRecord) -> bool);

/// A server that answers one connection with `bytes` and closes it.
fn fake_server(bytes: Vec<u8>) -> (SocketAddr, thread::JoinHandle<()>) {
    let listener = TcpListener::bind((loopback(3), 0)).unwrap();
    let addr = listener.local_addr().unwrap();
    let serve = thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        // Read the whole request first, so that closing sends FIN, not RST.
        let mut request = [0u8; 164];
        stream.read_exact(&mut request).unwrap();
        assert_eq!(u32::from_le_bytes(request[2..6].try_into().unwrap()), 164, "a v4 FetchVotes");
        let _ = stream.write_all(&bytes);
    });
    (addr, serve)
}

#[test]
fn every_bad_stream_of_test_read_next_message_fails_the_learner_cleanly() {
    let good = encode_record(&vote_message(1)).unwrap();
    let prepare = {
        let body = Body::Prepare {
            decree: Decree(1),
            passed: Decree(0),
            ballot: ballot(2),
            primary_cookie: Default::default(),
        };
        let message = Message { from: MemberId::new("1").unwrap(), configuration: 1, body };
        WireMessage::from_core(&message, Version::V4).unwrap().to_bytes().unwrap()
    };
    let second = encode_record(&vote_message(2)).unwrap();
    assert_eq!(second.len(), 1536);
    let mut invalid_id = second.clone();
    invalid_id[18] = 2; // VoteAccepted, which is never logged
    let mut wrong_checksum = second.clone();
    wrong_checksum[600] ^= 0x40; // inside the request bytes
    let garbage: Vec<u8> = (0..1000u32).map(|i| (i * 7 + 3) as u8).collect();
    let at = good.len() as u64;
    let cases: Vec<BadStream> = vec![
        ("1000 garbage bytes", garbage, 0, |e| matches!(e, BadRecord::Header(_))),
        ("zeros after a record", [&good[..], &[0; 512]].concat(), at, |e| *e == BadRecord::Zeros),
        ("an invalid message id", [&good[..], &invalid_id].concat(), at, |e| *e == BadRecord::MessageId(2)),
        ("a Prepare not padded to 512", [&good[..], &prepare].concat(), at, |e| {
            matches!(e, BadRecord::Truncated { needed: 512, .. })
        }),
        ("a vote truncated to 1000 bytes", [&good[..], &second[..1000]].concat(), at, |e| {
            *e == BadRecord::Truncated { got: 1000, needed: 1536 }
        }),
        ("a padded vote with a wrong checksum", [&good[..], &wrong_checksum].concat(), at, |e| {
            matches!(e, BadRecord::Checksum { .. })
        }),
    ];
    assert!(prepare.len() < RECORD_ALIGN);
    for (name, stream, offset, expected) in cases {
        let (addr, serve) = fake_server(stream);
        match client().fetch_votes(addr, Decree(1)) {
            Err(LearnError::Corrupt { offset: o, why }) => {
                assert!(expected(&why), "{name}: {why:?}");
                assert_eq!(o, offset, "{name}");
                assert!(!LearnError::Corrupt { offset: o, why }.to_string().is_empty());
            }
            other => panic!("{name}: {other:?}"),
        }
        serve.join().unwrap();
    }
    // The same stream served intact is learned.
    let (addr, serve) = fake_server([&good[..], &second].concat());
    assert_eq!(client().fetch_votes(addr, Decree(1)).unwrap().len(), 2);
    serve.join().unwrap();
}

fn sample_status(decree: Decree, ballot: Ballot) -> Status {
    Status {
        query_decree: decree,
        query_ballot: ballot,
        decree: Decree(41),
        ballot: storage_support::ballot(3),
        passed: Decree(40),
        last_received_ago_ms: 12,
        min_decree_in_log: Decree(5),
        checkpointed_decree: Decree(30),
        checkpoint_size: 4096,
        max_ballot: storage_support::ballot(4),
        state: State::Secondary,
    }
}

#[test]
fn a_status_query_gets_the_runtimes_answer_or_nothing() {
    let dir = TempDir::new("learn-status");
    let server = LearnServer::start(config(dir.path())).unwrap();
    let requests = crossbeam_channel::Receiver::clone(server.status_requests());
    let runtime = thread::spawn(move || {
        // The first query is answered, the second dropped (legacy's relinquishing primary).
        let first = requests.recv_timeout(WAIT).unwrap();
        let status = sample_status(first.decree, first.ballot.clone());
        first.respond(1, status);
        drop(requests.recv_timeout(WAIT).unwrap());
    });
    let addr = server.listen_addr();
    let status = client().fetch_status(addr, Decree(9), ballot(2)).unwrap();
    assert_eq!(status, sample_status(Decree(9), ballot(2)));
    assert!(matches!(client().fetch_status(addr, Decree(9), ballot(2)), Err(LearnError::NothingServed)));
    runtime.join().unwrap();
}

#[test]
fn fetch_checkpoint_streams_the_file_or_nothing() {
    let dir = TempDir::new("learn-checkpoint");
    let content: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(dir.path().join("30.codex"), &content).unwrap();
    let server = LearnServer::start(config(dir.path())).unwrap();
    let dest = TempDir::new("learn-checkpoint-dest");
    let copy = dest.path().join("copy.codex");
    let size = client().fetch_checkpoint(server.listen_addr(), Decree(30), &copy).unwrap();
    assert_eq!(size, content.len() as u64);
    assert_eq!(std::fs::read(&copy).unwrap(), content);
    for absent in [29, 31] {
        let result = client().fetch_checkpoint(server.listen_addr(), Decree(absent), &copy);
        assert!(matches!(result, Err(LearnError::NothingServed)), "{absent}: {result:?}");
        assert!(!copy.exists(), "no file is left behind");
    }
}

fn await_stats(server: &LearnServer, done: impl Fn(&LearnStats) -> bool) -> LearnStats {
    let deadline = Instant::now() + WAIT;
    loop {
        let stats = server.stats();
        if done(&stats) || Instant::now() > deadline {
            return stats;
        }
        thread::yield_now();
    }
}

#[test]
fn a_silent_client_times_out_while_others_are_served() {
    let dir = TempDir::new("learn-silent");
    write_journal(dir.path());
    let receive_timeout = Duration::from_secs(2);
    let server = LearnServer::start(LearnConfig { receive_timeout, ..config(dir.path()) }).unwrap();
    let addr = server.listen_addr();
    let started = Instant::now();
    let mut silent = TcpStream::connect(addr).unwrap();
    silent.write_all(&[4, 0, 0]).unwrap(); // half a header, then nothing
    let fetched = client().fetch_votes(addr, Decree(1)).unwrap();
    assert_eq!(learned_votes(&fetched, Decree(1)).len(), 11);
    assert!(started.elapsed() < receive_timeout, "served while the silent client waits");
    silent.set_read_timeout(Some(WAIT)).unwrap();
    let mut answer = Vec::new();
    silent.read_to_end(&mut answer).unwrap(); // closed by the server, unanswered
    assert!(answer.is_empty());
    assert!(started.elapsed() >= receive_timeout);
    assert_eq!(await_stats(&server, |s| s.timed_out == 1).timed_out, 1);

    // A request that is not for the learn port is closed unanswered too.
    let vote = vote_message(1).to_bytes().unwrap();
    assert!(raw_answer(addr, &vote).is_empty());
    assert_eq!(await_stats(&server, |s| s.bad_requests == 1).bad_requests, 1);
}

#[test]
fn connections_beyond_the_bound_are_closed_at_once() {
    let dir = TempDir::new("learn-bound");
    write_journal(dir.path());
    let bound = LearnConfig { max_connections: 2, ..config(dir.path()) };
    let server = LearnServer::start(bound).unwrap();
    let addr = server.listen_addr();
    let silent: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert_eq!(await_stats(&server, |s| s.accepted == 2).accepted, 2);
    let started = Instant::now();
    // Closed unanswered: an empty answer, or a reset if the request was not read yet.
    match client().fetch_votes(addr, Decree(1)) {
        Ok(records) => assert!(records.is_empty()),
        Err(LearnError::Connect(_) | LearnError::Read { .. }) => {}
        Err(other) => panic!("{other}"),
    }
    assert!(started.elapsed() < Duration::from_secs(5), "refused at once, not after a timeout");
    assert_eq!(server.stats().busy, 1);
    // Once the silent clients leave, their slots serve again.
    drop(silent);
    assert_eq!(await_stats(&server, |s| s.bad_requests == 2).bad_requests, 2);
    let deadline = Instant::now() + WAIT;
    while client().fetch_votes(addr, Decree(1)).map_or(true, |r| r.is_empty()) {
        assert!(Instant::now() < deadline, "a slot frees up");
        thread::yield_now();
    }
}
