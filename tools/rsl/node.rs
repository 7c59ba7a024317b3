//! `rsl node`: one replica of a loopback cluster as a process of its own, with a durable
//! journal, running a replicated counter on the public API (`rsl_core::Replica` and a
//! `StateMachine`). Member N listens on 127.0.0.N, Paxos port P+10·N, learn port P+10·N+1,
//! journal in D/N. While it is primary it keeps `--inflight` requests outstanding (like
//! legacy RSLNetTest), each `--request-bytes` long and unique (this incarnation's tag and a
//! sequence number), and prints every `--status-ms`
//!
//! ```text
//! node N primary=<bool> executed=<decree> digest=<hex> ops=<acknowledged in the interval>
//!     p50_us= p99_us= p999_us= acked=<acknowledged by this incarnation>
//!     requests=<executed> dups=<executed twice> ...
//! ```
//!
//! (one line; the latencies are submit → executed of this node's own requests in the
//! interval, 0 when there were none).
//!
//! `--transport shm` exchanges Paxos messages through rings in `--shm-dir` (default
//! `D/shm`; all members give the same) instead of TCP; `--transport rdma` writes them into
//! the peers' rings over RDMA (`--rdma-device`, default the first; `--rdma-port`, default
//! 1; `--rdma-gid-index`, default 0; a build with the `rdma` feature). The learn port
//! stays TCP.
//!
//! With `--checkpoint-every N` the counter asks for a checkpoint after every N requests
//! and loads the newest at start; without, the whole journal replays. `--max-log-mb` and
//! `--max-logs` bound the logs kept after a checkpoint. A replica that finds the decrees
//! it needs gone from its members' logs installs their checkpoint and stops; the node
//! prints `node N reloads checkpoint <decree>` and initializes it again in-process.
//!
//! An `--id` above `--members` starts outside the initial set ([`Replica::join`]): inactive
//! until a replica-set change names it. Status lines end with `config=<number>
//! members=<ids>`.
//!
//! Stdin controls it: the line `quiet` stops the load; `members 1,2,5` asks for that
//! replica set (the primary takes it, the others decline); end of input (or SIGTERM) stops
//! the node cleanly and prints `node N final executed=<decree> digest=<hex> requests= dups=`.

use bytes::Bytes;
use crossbeam_channel::{unbounded, Receiver, Sender};
use rsl_core::paxos::{Config, Member, MemberId, MemberSet};
use rsl_core::runtime::{JournalKind, RdmaConfig, TransportKind};
use rsl_core::storage::checkpoint::{CheckpointReader, CheckpointWriter};
use rsl_core::transport::member_ip;
use rsl_core::wire::Version;
use rsl_core::{Replica, ResponseCode, RslConfig, StateMachine};
use std::collections::HashSet;
use std::io::{BufRead, Read};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

/// Set by the SIGTERM handler.
static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATED.store(true, Ordering::Relaxed); // an atomic store is async-signal-safe
}

/// The cookie of a replica-set change (no load slot has it).
const CHANGE: u64 = u64::MAX;

/// A request's identity: the submitting incarnation's tag and its sequence number.
type RequestId = (u64, u64);

/// The replicated counter: how many requests executed, which ones (to count any executed
/// twice), and an FNV-1a hash chained over every request applied, in order.
struct Counter {
    requests: u64,
    dups: u64,
    seen: HashSet<RequestId>,
    digest: u64,
    /// This replica's own acknowledgements: the slot of each executed request it submitted.
    acks: Sender<Result<u64, u64>>,
    /// Asks for a checkpoint after every this many requests (0: never).
    checkpoint_every: u64,
    id: u8,
}

fn request_id(request: &[u8]) -> Option<RequestId> {
    let word = |i: usize| request.get(i..i + 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    Some((word(0)?, word(8)?))
}

impl StateMachine for Counter {
    /// The load slot the request was submitted from.
    type Cookie = u64;

    /// Starts empty, or from a checkpoint `save_state` wrote.
    fn load_state(&mut self, reader: Option<&mut CheckpointReader>) -> bool {
        let Some(reader) = reader else { return true };
        let mut words = Vec::new();
        if reader.read_to_end(&mut words).is_err() || words.len() % 8 != 0 || words.len() < 32 {
            return false;
        }
        let mut words = words.chunks_exact(8).map(|w| u64::from_le_bytes(w.try_into().expect("8 bytes")));
        let mut next = || words.next().unwrap_or_default();
        (self.requests, self.dups, self.digest) = (next(), next(), next());
        let seen = next();
        self.seen = (0..seen).map(|_| (next(), next())).collect();
        self.seen.len() as u64 == seen
    }

    fn execute_replicated_request(&mut self, request: &[u8], cookie: Option<u64>, save_state: &mut bool) {
        self.requests += 1;
        *save_state |= self.checkpoint_every > 0 && self.requests.is_multiple_of(self.checkpoint_every);
        if request_id(request).is_some_and(|id| !self.seen.insert(id)) {
            self.dups += 1;
        }
        for b in request {
            self.digest = (self.digest ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
        if let Some(slot) = cookie {
            let _ = self.acks.send(Ok(slot));
        }
    }

    /// `rsl node` issues no fast reads.
    fn execute_fast_read_request(&self, _request: &[u8], _cookie: u64) {}

    fn abort_request(&self, _status: ResponseCode, slot: u64) {
        let _ = self.acks.send(Err(slot));
    }

    /// The counters, then every request id seen, as little-endian words.
    fn save_state(&self, writer: &mut CheckpointWriter) -> std::io::Result<()> {
        let header = [self.requests, self.dups, self.digest, self.seen.len() as u64];
        let ids = self.seen.iter().flat_map(|&(tag, seq)| [tag, seq]);
        let bytes: Vec<u8> = header.into_iter().chain(ids).flat_map(u64::to_le_bytes).collect();
        writer.write(&bytes)
    }

    fn notify_status(&mut self, _is_primary: bool) {}

    /// A change this node took will not be decided by it: it says so as if it declined.
    fn abort_change_configuration(&mut self, status: ResponseCode, _cookie: u64) {
        println!("node {} declines members (aborted: {status:?})", self.id);
    }

    fn shut_down(&mut self, _status: ResponseCode) {}
}

struct Options {
    id: u8,
    members: u8,
    dir: PathBuf,
    base_port: u16,
    election_delay_ms: u64,
    heartbeat_ms: u64,
    inflight: u64,
    window: u64,
    batch: usize,
    request_bytes: usize,
    journal: JournalKind,
    /// `tcp`, `shm` or `rdma`.
    transport: String,
    shm_dir: Option<PathBuf>,
    rdma: RdmaConfig,
    status_ms: u64,
    checkpoint_every: u64,
    max_log_mb: u64,
    max_logs: u64,
    /// The one CPU every thread of this process runs on (`--cpu`).
    cpu: Option<usize>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        id: 0,
        members: 3,
        dir: PathBuf::new(),
        base_port: 20_000,
        election_delay_ms: 300,
        heartbeat_ms: 50,
        inflight: 64,
        window: 64,
        batch: 1024,
        request_bytes: 128,
        journal: JournalKind::File,
        transport: "tcp".to_owned(),
        shm_dir: None,
        rdma: RdmaConfig::default(),
        status_ms: 1000,
        checkpoint_every: 0,
        max_log_mb: RslConfig::default().max_log_len_mb,
        max_logs: RslConfig::default().max_logs,
        cpu: None,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<u64>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--id" => o.id = u8::try_from(number()?).map_err(|e| e.to_string())?,
            "--members" => o.members = u8::try_from(number()?).map_err(|e| e.to_string())?,
            "--dir" => o.dir = PathBuf::from(value),
            "--base-port" => o.base_port = u16::try_from(number()?).map_err(|e| e.to_string())?,
            "--election-delay-ms" => o.election_delay_ms = number()?,
            "--heartbeat-ms" => o.heartbeat_ms = number()?,
            "--inflight" => o.inflight = number()?,
            "--window" => o.window = number()?,
            "--batch" => o.batch = number()? as usize,
            "--journal" => o.journal = journal(value)?,
            "--transport" if matches!(value.as_str(), "tcp" | "shm" | "rdma") => o.transport = value.clone(),
            "--transport" => return Err(format!("--transport {value}: tcp, shm or rdma")),
            "--shm-dir" => o.shm_dir = Some(PathBuf::from(value)),
            "--rdma-device" => o.rdma.device = Some(value.clone()),
            "--rdma-port" => o.rdma.port = u8::try_from(number()?).map_err(|e| e.to_string())?,
            "--rdma-gid-index" => o.rdma.gid_index = u8::try_from(number()?).map_err(|e| e.to_string())?,
            "--request-bytes" => o.request_bytes = (number()? as usize).clamp(16, 1 << 20),
            "--status-ms" => o.status_ms = number()?.max(10),
            "--checkpoint-every" => o.checkpoint_every = number()?,
            "--max-log-mb" => o.max_log_mb = number()?,
            "--max-logs" => o.max_logs = number()?,
            "--cpu" => o.cpu = Some(number()? as usize),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.members == 0 || o.members > 9 || !(1..=9).contains(&o.id) || o.dir.as_os_str().is_empty() {
        return Err("--id 1..=9, --members 1..=9 and --dir D are required".to_owned());
    }
    if o.inflight > 1 << 20 {
        return Err("--inflight is at most 1048576".to_owned());
    }
    if u32::from(o.base_port) + 10 * 9 + 1 > u32::from(u16::MAX) {
        return Err("--base-port leaves no room for the members' ports".to_owned());
    }
    Ok(o)
}

/// The CPUs this process may run on.
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `set` is a plain bitmask the call fills; its size is passed with it.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Vec::new();
        }
        set
    };
    // SAFETY: reads bits of the mask filled above, below its size in bits.
    (0..libc::CPU_SETSIZE as usize).filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) }).collect()
}

/// Keeps this process on `cpu`; threads started afterwards inherit it. Called before the
/// replica starts, so all of its threads share one CPU and hand work to each other without
/// waking another one.
fn pin(cpu: usize) -> Result<(), String> {
    if cpu >= libc::CPU_SETSIZE as usize {
        return Err(format!("--cpu {cpu}: no such CPU"));
    }
    // SAFETY: `set` is a zeroed bitmask with one bit set below its size, passed with its size.
    let pinned = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if pinned == 0 {
        Ok(())
    } else {
        Err(format!("--cpu {cpu}: {}", std::io::Error::last_os_error()))
    }
}

/// `file`, `nvm` or `nvm-dax` (persistent memory emulated: msync skipped).
pub fn journal(name: &str) -> Result<JournalKind, String> {
    match name {
        "file" => Ok(JournalKind::File),
        "nvm" => Ok(JournalKind::Nvm { dax: false }),
        "nvm-dax" => Ok(JournalKind::Nvm { dax: true }),
        _ => Err(format!("--journal {name}: file, nvm or nvm-dax")),
    }
}

/// Member `n` of a cluster on `base_port`.
fn member(base_port: u16, n: u8) -> Member {
    let id = MemberId::new(&n.to_string()).expect("a one-digit id is valid");
    let port = base_port + 10 * u16::from(n);
    let ip = member_ip(Ipv4Addr::new(127, 0, 0, n));
    Member { id, ip, rsl_port: port, learn_port: port + 1, host_name: String::new() }
}

/// The set of the members named by `ids` (`1,2,5`).
fn member_set(base_port: u16, ids: &str) -> Result<MemberSet, String> {
    let ids = ids.split(',').map(|id| id.trim().parse::<u8>().ok().filter(|n| (1..=9).contains(n)));
    let members = ids.map(|n| n.map(|n| member(base_port, n)).ok_or("member ids are 1..=9"));
    let members = members.collect::<Result<Vec<_>, _>>()?;
    MemberSet::new(members, Bytes::new()).map_err(|e| e.to_string())
}

/// The initial member set, this member and its configuration.
fn replica_config(o: &Options) -> Result<(MemberSet, Member, RslConfig), String> {
    let members = (1..=o.members).map(|n| member(o.base_port, n)).collect();
    let members = MemberSet::new(members, Bytes::new()).map_err(|e| e.to_string())?;
    let election_delay_us = o.election_delay_ms * 1000;
    let core = Config {
        window: o.window,
        batch_requests_max: o.batch,
        heartbeat_us: o.heartbeat_ms * 1000,
        election_delay_us,
        election_randomize_pct: 30,
        election_randomize_max_us: election_delay_us,
        new_leader_grace_us: election_delay_us,
        ..Config::default()
    };
    let config = RslConfig {
        working_dir: o.dir.clone(),
        window: o.window,
        core_override: Some(core),
        seed: u64::from(o.id) * 0x9e37_79b9,
        journal: o.journal,
        transport: match o.transport.as_str() {
            "shm" => TransportKind::Shm {
                dir: o.shm_dir.clone().unwrap_or_else(|| o.dir.join("shm")),
                ring_bytes: 4 << 20,
            },
            "rdma" => TransportKind::Rdma(o.rdma.clone()),
            _ => TransportKind::Tcp,
        },
        max_log_len_mb: o.max_log_mb,
        max_logs: o.max_logs,
        ..RslConfig::default()
    };
    Ok((members, member(o.base_port, o.id), config))
}

enum Command {
    Quiet,
    /// Change the replica set (taken by the primary only).
    Members(String),
    Stop,
}

/// Stdin lines as commands; end of input stops the node.
fn read_commands() -> Receiver<Command> {
    let (tx, rx) = unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line.as_deref().map(str::trim) {
                Ok("quiet") => drop(tx.send(Command::Quiet)),
                Ok(line) => match line.strip_prefix("members ") {
                    Some(ids) => drop(tx.send(Command::Members(ids.to_owned()))),
                    None => eprintln!("rsl node: unknown command {line:?} (quiet, members 1,2,5)"),
                },
                Err(_) => break,
            }
        }
        let _ = tx.send(Command::Stop);
    });
    rx
}

/// Closed-loop load: `inflight` slots, each with one request outstanding while we are
/// primary. Slots are refilled when their request executes or is aborted.
struct Load {
    /// This incarnation's tag: its requests never collide with another's.
    tag: u64,
    request_bytes: usize,
    /// When each slot's outstanding request was submitted (`None`: idle).
    started: Vec<Option<Instant>>,
    /// Latencies (µs) of the requests executed since the last status line.
    latencies_us: Vec<u64>,
    next: u64,
    acked: u64,
    quiet: bool,
}

impl Load {
    fn submit(&mut self, replica: &Replica<Counter>, slot: u64) {
        if self.quiet || !replica.is_primary() {
            return;
        }
        self.next += 1;
        let mut request = vec![0u8; self.request_bytes];
        request[..8].copy_from_slice(&self.tag.to_le_bytes());
        request[8..16].copy_from_slice(&self.next.to_le_bytes());
        // Timed from before the call: the engine may run the commit before it returns.
        let submitted = Instant::now();
        if replica.replicate_request(&request, slot).is_ok() {
            self.started[slot as usize] = Some(submitted);
        }
    }

    /// Refills idle slots (after a promotion, or after refusals).
    fn refill(&mut self, replica: &Replica<Counter>) {
        for slot in 0..self.started.len() as u64 {
            if self.started[slot as usize].is_none() {
                self.submit(replica, slot);
            }
        }
    }

    /// Handles one completion; returns whether it acknowledged a request.
    fn complete(&mut self, replica: &Replica<Counter>, completion: Result<u64, u64>) -> bool {
        let (Ok(slot) | Err(slot)) = completion;
        let started = self.started[slot as usize].take();
        if let (Ok(_), Some(started)) = (completion, started) {
            self.latencies_us.push(started.elapsed().as_micros() as u64);
            self.acked += 1;
        }
        self.submit(replica, slot);
        completion.is_ok()
    }

    /// The p50, p99 and p999 latencies (µs) since the last call, which starts a new interval.
    fn take_percentiles(&mut self) -> (u64, u64, u64) {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        let pct = |p: f64| self.latencies_us.get(((n as f64 - 1.0) * p) as usize).copied().unwrap_or(0);
        let percentiles = (pct(0.5), pct(0.99), pct(0.999));
        self.latencies_us.clear();
        percentiles
    }
}

pub fn run(args: &[String]) -> ExitCode {
    let options = match parse(args).and_then(|o| Ok((replica_config(&o)?, o))) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!(
                "rsl node: {e}\nusage: rsl node --id N --members 3 --dir D [--base-port P] \
                       [--election-delay-ms 300] [--heartbeat-ms 50] [--inflight 64] [--window 64] \
                       [--batch 1024] [--request-bytes 128] [--journal file|nvm|nvm-dax] [--status-ms 1000] \
                       [--checkpoint-every 0] [--max-log-mb 100] [--max-logs 10] [--transport tcp|shm|rdma] [--shm-dir D/shm] \
                       [--rdma-device NAME] [--rdma-port 1] [--rdma-gid-index 0] [--cpu N]"
            );
            return ExitCode::from(2);
        }
    };
    let ((members, me, config), o) = options;
    if let Some(cpu) = o.cpu {
        if let Err(e) = pin(cpu) {
            eprintln!("rsl node {}: {e}", o.id);
            return ExitCode::FAILURE;
        }
        println!("node {} pinned to CPU {cpu}", o.id);
    }
    // SAFETY: installs an async-signal-safe handler (one atomic store) for SIGTERM.
    unsafe { libc::signal(libc::SIGTERM, on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    let (acks, completions) = unbounded();
    let counter = Counter {
        requests: 0,
        dups: 0,
        seen: HashSet::new(),
        digest: 0xcbf2_9ce4_8422_2325,
        acks,
        checkpoint_every: o.checkpoint_every,
        id: o.id,
    };
    let start = |counter| {
        let started = if members.contains(&me.id) {
            Replica::initialize(&config, members.clone(), &me.id, Version::V7, counter)
        } else {
            Replica::join(&config, members.clone(), me.clone(), Version::V7, counter)
        };
        started.map_err(|e| eprintln!("rsl node {}: cannot start: {e}", o.id))
    };
    let Ok(mut replica) = start(counter) else { return ExitCode::FAILURE };
    let report =
        |r: &Replica<Counter>| r.read_state(|c| (r.current_sequence_number(), c.digest, c.requests, c.dups));
    let (executed, digest, ..) = report(&replica);
    println!(
        "node {} started recovered_records={} executed={executed} digest={digest:016x}",
        o.id,
        replica.recovered_records(),
    );
    let commands = read_commands();
    let since_epoch = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let mut load = Load {
        tag: (u64::from(o.id) << 56) ^ since_epoch.as_nanos() as u64,
        request_bytes: o.request_bytes,
        started: vec![None; o.inflight as usize],
        latencies_us: Vec::new(),
        next: 0,
        acked: 0,
        quiet: false,
    };
    let status_every = Duration::from_millis(o.status_ms);
    let mut ops = 0u64;
    let mut next_line = Instant::now() + status_every;
    let mut stop = false;
    while !stop && !TERMINATED.load(Ordering::Relaxed) {
        if !replica.is_running() {
            let Some(decree) = replica.installed_checkpoint() else { break };
            // Legacy exits here for its restart to load the checkpoint; we restart in-process.
            let counter = match replica.unload() {
                Ok(counter) => counter,
                Err(e) => {
                    eprintln!("rsl node {}: replica failed: {e}", o.id);
                    return ExitCode::FAILURE;
                }
            };
            println!("node {} reloads checkpoint {decree}", o.id);
            let Ok(restarted) = start(counter) else { return ExitCode::FAILURE };
            replica = restarted;
        }
        match commands.try_recv() {
            Ok(Command::Quiet) => load.quiet = true,
            Ok(Command::Members(ids)) => match member_set(o.base_port, &ids) {
                // Only the primary takes it; the others say why not.
                Ok(set) => match replica.change_configuration(set, CHANGE) {
                    Ok(()) => println!("node {} proposes members {ids}", o.id),
                    Err((code, _)) => println!("node {} declines members {ids}: {code:?}", o.id),
                },
                Err(e) => eprintln!("rsl node: members {ids}: {e}"),
            },
            Ok(Command::Stop) => stop = true,
            Err(_) => {}
        }
        load.refill(&replica);
        if let Ok(completion) = completions.recv_timeout(Duration::from_millis(10)) {
            for completion in std::iter::once(completion).chain(completions.try_iter().collect::<Vec<_>>()) {
                ops += u64::from(load.complete(&replica, completion));
            }
        }
        if Instant::now() >= next_line {
            let (executed, digest, requests, dups) = report(&replica);
            let (p50, p99, p999) = load.take_percentiles();
            let (config, members) = replica.configuration().unwrap_or_default();
            let members: Vec<&str> = members.ids().map(MemberId::as_str).collect();
            println!(
                "node {} primary={} executed={executed} digest={digest:016x} ops={ops} p50_us={p50} \
                 p99_us={p99} p999_us={p999} acked={} inflight={} requests={requests} dups={dups} learned={} \
                 refused={} config={config} members={}",
                o.id,
                replica.is_primary(),
                load.acked,
                load.started.iter().filter(|s| s.is_some()).count(),
                replica.learned_votes(),
                replica.refused_inputs(),
                members.join(",")
            );
            ops = 0;
            next_line += status_every;
        }
    }
    let (executed, digest, requests, dups) = report(&replica);
    match replica.unload() {
        Ok(_) => {
            println!(
                "node {} final executed={executed} digest={digest:016x} requests={requests} dups={dups} acked={}",
                o.id, load.acked
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rsl node {}: replica failed: {e}", o.id);
            ExitCode::FAILURE
        }
    }
}
