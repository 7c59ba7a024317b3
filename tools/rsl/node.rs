//! `rsl node`: one replica of a 3-member loopback cluster as a process of its own, with a
//! durable journal, running a replicated counter. Member N listens on 127.0.0.N, Paxos
//! port P+10·N, learn port P+10·N+1, journal in D/N. While it is primary it keeps
//! `--inflight` increments outstanding (like legacy RSLNetTest) and prints once a second
//! (every `--status-ms`)
//!
//! ```text
//! node N primary=<bool> executed=<decree> digest=<hex> ops=<executed in the last interval>
//!     p50_us=<latency> p99_us=<latency> ...
//! ```
//!
//! (one line; the latencies are submit → executed of this node's own requests in the
//! interval, 0 when there were none).
//!
//! Stdin controls it: the line `quiet` stops the load, end of input (or SIGTERM) stops the
//! node cleanly and prints `node N final executed=<decree> digest=<hex>`.

use bytes::Bytes;
use crossbeam_channel::{unbounded, Receiver};
use rsl_core::paxos::{Config, Member, MemberId, MemberSet};
use rsl_core::runtime::{App, Completion, Node, NodeConfig};
use rsl_core::transport::member_ip;
use rsl_core::wire::Version;
use std::io::BufRead;
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Set by the SIGTERM handler.
static TERMINATED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_sigterm(_: libc::c_int) {
    TERMINATED.store(true, Ordering::Relaxed); // an atomic store is async-signal-safe
}

/// The replicated counter: the sum of the increments, and an FNV-1a hash chained over
/// every request applied, in order.
struct Counter {
    sum: u64,
    digest: u64,
}

impl App for Counter {
    fn execute(&mut self, request: &[u8]) {
        let increment = request.get(..8).and_then(|b| b.try_into().ok()).map_or(0, u64::from_le_bytes);
        self.sum = self.sum.wrapping_add(increment);
        for b in request {
            self.digest = (self.digest ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn digest(&self) -> u64 {
        self.digest ^ self.sum.rotate_left(32)
    }
}

struct Options {
    id: u8,
    members: u8,
    dir: PathBuf,
    base_port: u16,
    election_delay_ms: u64,
    heartbeat_ms: u64,
    inflight: u64,
    status_ms: u64,
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
        status_ms: 1000,
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
            "--status-ms" => o.status_ms = number()?.max(10),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if o.members == 0 || o.members > 9 || !(1..=o.members).contains(&o.id) || o.dir.as_os_str().is_empty() {
        return Err("--id N (1..=members), --members 1..=9 and --dir D are required".to_owned());
    }
    if o.inflight > 1 << 20 {
        return Err("--inflight is at most 1048576".to_owned());
    }
    if u32::from(o.base_port) + 10 * u32::from(o.members) + 1 > u32::from(u16::MAX) {
        return Err("--base-port leaves no room for the members' ports".to_owned());
    }
    Ok(o)
}

fn node_config(o: &Options) -> Result<NodeConfig, String> {
    let member = |n: u8| -> Result<Member, String> {
        let id = MemberId::new(&n.to_string()).map_err(|e| e.to_string())?;
        let port = o.base_port + 10 * u16::from(n);
        let ip = member_ip(Ipv4Addr::new(127, 0, 0, n));
        Ok(Member { id, ip, rsl_port: port, learn_port: port + 1, host_name: String::new() })
    };
    let members = (1..=o.members).map(member).collect::<Result<Vec<_>, _>>()?;
    let members = MemberSet::new(members, Bytes::new()).map_err(|e| e.to_string())?;
    let election_delay_us = o.election_delay_ms * 1000;
    let config = Config {
        heartbeat_us: o.heartbeat_ms * 1000,
        election_delay_us,
        election_randomize_pct: 30,
        election_randomize_max_us: election_delay_us,
        new_leader_grace_us: election_delay_us,
        ..Config::default()
    };
    Ok(NodeConfig {
        me: MemberId::new(&o.id.to_string()).map_err(|e| e.to_string())?,
        members,
        config,
        version: Version::V7,
        data_dir: o.dir.join(o.id.to_string()),
        seed: u64::from(o.id) * 0x9e37_79b9,
    })
}

enum Command {
    Quiet,
    Stop,
}

/// Stdin lines as commands; end of input stops the node.
fn read_commands() -> Receiver<Command> {
    let (tx, rx) = unbounded();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            match line.as_deref().map(str::trim) {
                Ok("quiet") => drop(tx.send(Command::Quiet)),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        let _ = tx.send(Command::Stop);
    });
    rx
}

/// Closed-loop load: `inflight` slots, each with one increment outstanding while we are
/// primary. A new generation starts at every promotion; older completions are ignored.
struct Load {
    inflight: u64,
    /// When each slot's outstanding request was submitted.
    started: Vec<Instant>,
    /// Latencies (µs) of the requests executed since the last status line.
    latencies_us: Vec<u64>,
    generation: u64,
    next: u64,
    quiet: bool,
    running: bool,
}

impl Load {
    fn submit(&mut self, node: &Node, slot: u64) {
        self.next += 1;
        self.started[slot as usize] = Instant::now();
        let mut request = Vec::with_capacity(16);
        request.extend_from_slice(&1u64.to_le_bytes());
        request.extend_from_slice(&self.next.to_le_bytes());
        node.submit(Bytes::from(request), self.generation << 32 | slot);
    }

    /// Starts a generation when we became primary, ends it when we stopped being it.
    fn follow(&mut self, node: &Node) {
        let primary = node.is_primary() && !self.quiet;
        if primary && !self.running {
            self.generation += 1;
            (0..self.inflight).for_each(|slot| self.submit(node, slot));
        }
        self.running = primary;
    }

    /// Returns whether `completion` executed one of this generation's requests.
    fn complete(&mut self, node: &Node, completion: Completion) -> bool {
        match completion {
            Completion::Executed { cookie } if cookie >> 32 == self.generation => {
                let slot = cookie & 0xffff_ffff;
                self.latencies_us.push(self.started[slot as usize].elapsed().as_micros() as u64);
                if self.running {
                    self.submit(node, slot);
                }
                true
            }
            // Aborted (no longer primary) or from an older generation: `follow` restarts.
            _ => false,
        }
    }

    /// The p50 and p99 latencies (µs) since the last call, which starts a new interval.
    fn take_percentiles(&mut self) -> (u64, u64) {
        self.latencies_us.sort_unstable();
        let n = self.latencies_us.len();
        let pct = |p: f64| self.latencies_us.get(((n as f64 - 1.0) * p) as usize).copied().unwrap_or(0);
        let percentiles = (pct(0.5), pct(0.99));
        self.latencies_us.clear();
        percentiles
    }
}

pub fn run(args: &[String]) -> ExitCode {
    let options = match parse(args).and_then(|o| Ok((node_config(&o)?, o))) {
        Ok(parsed) => parsed,
        Err(e) => {
            eprintln!(
                "rsl node: {e}\nusage: rsl node --id N --members 3 --dir D [--base-port P] \
                       [--election-delay-ms 300] [--heartbeat-ms 50] [--inflight 64] [--status-ms 1000]"
            );
            return ExitCode::from(2);
        }
    };
    let (config, o) = options;
    // SAFETY: installs an async-signal-safe handler (one atomic store) for SIGTERM.
    unsafe { libc::signal(libc::SIGTERM, on_sigterm as extern "C" fn(libc::c_int) as libc::sighandler_t) };
    let node = match Node::start(config, Counter { sum: 0, digest: 0xcbf2_9ce4_8422_2325 }) {
        Ok(node) => node,
        Err(e) => {
            eprintln!("rsl node {}: cannot start: {e}", o.id);
            return ExitCode::FAILURE;
        }
    };
    let started = node.progress();
    println!(
        "node {} started recovered_records={} executed={} digest={:016x}",
        o.id,
        node.recovered_records(),
        started.executed,
        started.digest
    );
    let commands = read_commands();
    let mut load = Load {
        inflight: o.inflight,
        started: vec![Instant::now(); o.inflight as usize],
        latencies_us: Vec::new(),
        generation: 0,
        next: 0,
        quiet: false,
        running: false,
    };
    let status_every = Duration::from_millis(o.status_ms);
    let mut ops = 0u64;
    let mut next_line = Instant::now() + status_every;
    while node.is_running() && !TERMINATED.load(Ordering::Relaxed) {
        match commands.try_recv() {
            Ok(Command::Quiet) => load.quiet = true,
            Ok(Command::Stop) => break,
            Err(_) => {}
        }
        load.follow(&node);
        if let Ok(completion) = node.completions().recv_timeout(Duration::from_millis(10)) {
            let completions =
                std::iter::once(completion).chain(node.completions().try_iter().collect::<Vec<_>>());
            ops += completions.filter(|c| load.complete(&node, *c)).count() as u64;
        }
        if Instant::now() >= next_line {
            let p = node.progress();
            let (p50, p99) = load.take_percentiles();
            println!(
                "node {} primary={} executed={} digest={:016x} ops={ops} p50_us={p50} p99_us={p99} \
                 learned={} refused={}",
                o.id,
                node.is_primary(),
                p.executed,
                p.digest,
                node.learned_votes(),
                node.refused_inputs()
            );
            ops = 0;
            next_line += status_every;
        }
    }
    match node.stop() {
        Ok(report) => {
            println!("node {} final executed={} digest={:016x}", o.id, report.executed, report.digest);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("rsl node {}: engine failed: {e}", o.id);
            ExitCode::FAILURE
        }
    }
}
