//! `rsl bench`: the main job on real processes. Starts `--replicas` (3 or 5) `rsl node`
//! children of this executable on loopback (127.0.0.1–N, durable journals in a temp dir),
//! measures the primary's steady-state throughput and commit latency under `--inflight`
//! closed-loop requests of `--request-bytes`, then `--kills` times SIGKILLs the primary,
//! reports how long until another member served requests again, and restarts the killed
//! member from its journal (waiting until it caught up). It ends by stopping the load and
//! checking that every replica holds identical state, that no request executed twice, and
//! that every request a primary acknowledged executed (exit 0 and `OK`; otherwise exit 1
//! and `FAILED`). `--json` prints the figures as one JSON object; `--verbose` echoes the
//! nodes' status lines to stderr.
//!
//! Every number but CPU comes from the nodes' status lines (`node.rs`), printed every 250 ms:
//! throughput is the primary's acknowledgements summed over 1 s windows (median of the
//! windows), latency is the primary's own submit → executed percentiles (median over the
//! intervals), failover and catch-up times are as of the first status line showing them
//! (upper bounds, 250 ms resolution), CPU per request is every node's user and system time
//! over the steady-state window (`/proc`) divided by the requests acknowledged in it.
//! Acknowledgements are counted as of each process's last status line, so a killed
//! process's last 250 ms of them are not checked.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

const STATUS_MS: u64 = 250;
const LINES_PER_SECOND: usize = (1000 / STATUS_MS) as usize;
const ELECTION_DELAY_MS: u64 = 500;
const HEARTBEAT_MS: u64 = 50;
/// Seconds of status lines measured after the (last) failover.
const AFTER_SECONDS: usize = 3;
/// Thread hand-offs on the commit path of the process runtime at low load (see
/// rsl-core/src/runtime/mod.rs): a journal writer thread adds two on each secondary; the nvm
/// journal on DAX is written on the engine thread.
fn handoffs_per_commit(journal: &str) -> u32 {
    if journal == "nvm-dax" {
        5
    } else {
        7
    }
}
/// How long any one step may take before the run fails (generous: a loaded 2-core box).
const WAIT: Duration = Duration::from_secs(30);

type Result<T> = std::result::Result<T, String>;

/// One parsed line of `rsl node` output.
#[derive(Clone, Copy, Debug, Default)]
struct Line {
    primary: bool,
    executed: u64,
    digest: u64,
    ops: u64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
    acked: u64,
    requests: u64,
    dups: u64,
    recovered_records: Option<u64>,
    last: bool,
}

fn parse(line: &str, replicas: usize) -> Option<(usize, Line)> {
    let mut words = line.split_whitespace();
    (words.next()? == "node").then_some(())?;
    let id: usize = words.next()?.parse().ok()?;
    let mut parsed = Line::default();
    for word in words {
        match word.split_once('=') {
            Some(("primary", v)) => parsed.primary = v == "true",
            Some(("executed", v)) => parsed.executed = v.parse().ok()?,
            Some(("digest", v)) => parsed.digest = u64::from_str_radix(v, 16).ok()?,
            Some(("ops", v)) => parsed.ops = v.parse().ok()?,
            Some(("p50_us", v)) => parsed.p50_us = v.parse().ok()?,
            Some(("p99_us", v)) => parsed.p99_us = v.parse().ok()?,
            Some(("p999_us", v)) => parsed.p999_us = v.parse().ok()?,
            Some(("acked", v)) => parsed.acked = v.parse().ok()?,
            Some(("requests", v)) => parsed.requests = v.parse().ok()?,
            Some(("dups", v)) => parsed.dups = v.parse().ok()?,
            Some(("recovered_records", v)) => parsed.recovered_records = v.parse().ok(),
            None if word == "final" => parsed.last = true,
            _ => {}
        }
    }
    (1..=replicas).contains(&id).then_some((id, parsed))
}

struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// A status line: member, incarnation (lines of a killed process are dropped), arrival.
type Arrival = (usize, u32, Line, Instant);

/// What to run.
struct Options {
    replicas: usize,
    inflight: u64,
    window: u64,
    batch: u64,
    request_bytes: u64,
    journal: String,
    transport: String,
    kills: usize,
    seconds: usize,
    json: bool,
    verbose: bool,
    /// Each node on one CPU of this process's, in turn (`--pin`).
    pin: bool,
}

/// The processes, their data, and the latest line of each member (index 1–N, 0 unused).
/// Dropping it kills and reaps every child still running and removes the data.
struct Cluster {
    exe: PathBuf,
    dir: PathBuf,
    base_port: u16,
    options: Options,
    processes: Vec<Option<Process>>,
    incarnation: Vec<u32>,
    latest: Vec<Line>,
    /// Acknowledgements of processes that were killed, as of their last status line.
    acked_by_killed: u64,
    /// Primaries lost while being measured, without a kill.
    unplanned_elections: u32,
    lines_tx: Sender<Arrival>,
    lines: Receiver<Arrival>,
    /// The CPUs the nodes are pinned to, in turn (empty: not pinned).
    cpus: Vec<usize>,
}

impl Cluster {
    fn new(options: Options) -> Result<Self> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("rsl-bench-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let (lines_tx, lines) = channel();
        // Below Linux's ephemeral range (32768+), where other connections' local ports would
        // collide with the replicas' listeners.
        let base_port = 20_000 + (pid % 300) as u16 * 40;
        let n = options.replicas + 1;
        let cpus = if options.pin { super::node::allowed_cpus() } else { Vec::new() };
        if options.pin && cpus.is_empty() {
            return Err("--pin: cannot read this process's CPUs".to_owned());
        }
        Ok(Self {
            exe,
            dir,
            base_port,
            options,
            processes: (0..n).map(|_| None).collect(),
            incarnation: vec![0; n],
            latest: vec![Line::default(); n],
            acked_by_killed: 0,
            unplanned_elections: 0,
            lines_tx,
            lines,
            cpus,
        })
    }

    /// Where `--transport shm` puts its rings: on tmpfs (never written back to a disk)
    /// where the machine has `/dev/shm`, else beside the journals.
    fn shm_dir(&self) -> PathBuf {
        let shm = Path::new("/dev/shm");
        if shm.is_dir() {
            shm.join(self.dir.file_name().expect("a named temp dir"))
        } else {
            self.dir.join("shm")
        }
    }

    fn start(&mut self, id: usize) -> Result<()> {
        let o = &self.options;
        let mut command = Command::new(&self.exe);
        command
            .args(["node", "--id", &id.to_string(), "--members", &o.replicas.to_string()])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--base-port", &self.base_port.to_string()])
            .args(["--election-delay-ms", &ELECTION_DELAY_MS.to_string()])
            .args(["--heartbeat-ms", &HEARTBEAT_MS.to_string()])
            .args(["--inflight", &o.inflight.to_string(), "--window", &o.window.to_string()])
            .args(["--batch", &o.batch.to_string(), "--journal", &o.journal])
            .args(["--transport", &o.transport, "--shm-dir"])
            .arg(self.shm_dir())
            .args(["--request-bytes", &o.request_bytes.to_string(), "--status-ms", &STATUS_MS.to_string()]);
        if !self.cpus.is_empty() {
            command.args(["--cpu", &self.cpus[(id - 1) % self.cpus.len()].to_string()]);
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        self.incarnation[id] += 1;
        let incarnation = self.incarnation[id];
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (tx, verbose, replicas) = (self.lines_tx.clone(), self.options.verbose, self.options.replicas);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(std::result::Result::ok) {
                if verbose {
                    eprintln!("  {line}");
                }
                if let Some((id, parsed)) = parse(&line, replicas) {
                    let _ = tx.send((id, incarnation, parsed, Instant::now()));
                }
            }
        });
        let stdin = child.stdin.take();
        self.latest[id] = Line::default();
        self.processes[id] = Some(Process { child, stdin });
        Ok(())
    }

    /// SIGKILL: the process gets no chance to flush or say goodbye.
    fn kill(&mut self, id: usize) -> Result<()> {
        let mut process = self.processes[id].take().ok_or(format!("node {id} is not running"))?;
        process.child.kill().map_err(|e| format!("cannot kill node {id}: {e}"))?;
        let _ = process.child.wait();
        self.acked_by_killed += self.latest[id].acked;
        self.latest[id] = Line::default();
        Ok(())
    }

    fn tell_all(&mut self, command: &str) -> Result<()> {
        for process in self.processes.iter_mut().flatten() {
            let stdin = process.stdin.as_mut().ok_or("stdin already closed")?;
            writeln!(stdin, "{command}").map_err(|e| format!("cannot write to a node: {e}"))?;
        }
        Ok(())
    }

    /// The next line of a live process (recorded as its member's latest), by `deadline`.
    fn next_line(&mut self, deadline: Instant) -> Option<(usize, Line, Instant)> {
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let (id, incarnation, line, at) = self.lines.recv_timeout(left).ok()?;
            if incarnation == self.incarnation[id] && self.processes[id].is_some() {
                self.latest[id] = line;
                return Some((id, line, at));
            }
        }
    }

    /// Reads lines until `done` holds for the latest lines (checked after each); returns
    /// when the line that made it hold arrived.
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&[Line]) -> bool) -> Result<Instant> {
        let deadline = Instant::now() + WAIT;
        if done(&self.latest) {
            return Ok(Instant::now());
        }
        loop {
            let Some((_, _, at)) = self.next_line(deadline) else {
                return Err(format!("timed out waiting for {what}; latest lines {:?}", &self.latest[1..]));
            };
            if done(&self.latest) {
                return Ok(at);
            }
        }
    }

    /// The next `seconds` of the serving primary's status lines, summarized. An election
    /// in the middle (a loaded 2-core box can starve heartbeats) restarts the measurement
    /// on the new primary, at most three times; the count of such elections is reported.
    fn measure(&mut self, seconds: usize) -> Result<(usize, Phase)> {
        for _ in 0..3 {
            let members = self.members();
            self.wait_until("a primary under load", |l| {
                members.clone().any(|i| l[i].primary && l[i].ops > 0)
            })?;
            let primary = self.serving_primary(0).ok_or("no primary")?;
            let deadline = Instant::now() + WAIT;
            let cpu_before = self.cpu_micros();
            let mut lines = Vec::new();
            while lines.len() < seconds * LINES_PER_SECOND {
                let Some((id, line, _)) = self.next_line(deadline) else {
                    return Err(format!("timed out measuring node {primary}"));
                };
                if id != primary {
                    continue;
                }
                if !line.primary {
                    self.unplanned_elections += 1;
                    break;
                }
                lines.push(line);
            }
            if lines.len() < seconds * LINES_PER_SECOND {
                continue;
            }
            let per_second = lines.chunks(LINES_PER_SECOND).map(|c| c.iter().map(|l| l.ops).sum()).collect();
            let busy = || lines.iter().filter(|l| l.ops > 0);
            let ops: u64 = lines.iter().map(|l| l.ops).sum();
            return Ok((
                primary,
                Phase {
                    cpu_us_per_op: self.cpu_micros().saturating_sub(cpu_before) / ops.max(1),
                    ops_per_second: median(per_second),
                    p50_us: median(busy().map(|l| l.p50_us).collect()),
                    p99_us: median(busy().map(|l| l.p99_us).collect()),
                    p999_us: median(busy().map(|l| l.p999_us).collect()),
                },
            ));
        }
        Err("the primary changed three times while being measured".to_owned())
    }

    /// The CPU time (user and system, µs) the running nodes used so far.
    fn cpu_micros(&self) -> u64 {
        // SAFETY: sysconf only reads a constant of the system.
        let ticks_per_second =
            u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100).max(1);
        let ticks = |pid: u32| -> Option<u64> {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            // After the command name in parentheses: state is field 3, utime 14, stime 15.
            let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
            Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
        };
        let running = self.processes.iter().flatten().filter_map(|p| ticks(p.child.id()));
        running.sum::<u64>() * 1_000_000 / ticks_per_second
    }

    /// A member other than `except` that is primary and made progress in its last interval.
    fn serving_primary(&self, except: usize) -> Option<usize> {
        self.members().find(|&i| i != except && self.latest[i].primary && self.latest[i].ops > 0)
    }

    fn members(&self) -> std::ops::RangeInclusive<usize> {
        1..=self.options.replicas
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for process in self.processes.iter_mut().flatten() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        let _ = std::fs::remove_dir_all(self.shm_dir());
    }
}

struct Phase {
    /// CPU time of all the nodes per request acknowledged, over the phase.
    cpu_us_per_op: u64,
    ops_per_second: u64,
    p50_us: u64,
    p99_us: u64,
    p999_us: u64,
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn report(name: &str, phase: &Phase, inflight: u64) {
    let little_us = (inflight as f64 * 1e6 / phase.ops_per_second.max(1) as f64) as u64;
    println!(
        "{name:<26} {:>7} ops/s   p50 {:>5} us   p99 {:>6} us   p999 {:>6} us   (in-flight/throughput {little_us} us, \
         CPU {} us/request)",
        phase.ops_per_second, phase.p50_us, phase.p99_us, phase.p999_us, phase.cpu_us_per_op,
    );
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

const USAGE: &str =
    "usage: rsl bench [--replicas 3|5] [--inflight 64] [--window 64] [--batch 1024] [--request-bytes 128] [--journal file|nvm|nvm-dax] [--transport tcp|shm|rdma] \
                     [--seconds 4] [--kills 1 | --no-kill] [--pin] [--json] [--verbose]";

fn parse_options(args: &[String]) -> Result<Options> {
    let mut o = Options {
        replicas: 3,
        inflight: 64,
        window: 64,
        batch: 1024,
        request_bytes: 128,
        journal: "file".to_owned(),
        transport: "tcp".to_owned(),
        kills: 1,
        seconds: 4,
        json: false,
        verbose: false,
        pin: false,
    };
    let mut args = args.iter();
    while let Some(flag) = args.next() {
        let mut number = || -> Result<u64> {
            let value = args.next().ok_or(format!("{flag} needs a value"))?;
            value.parse().map_err(|e| format!("{flag} {value}: {e}"))
        };
        match flag.as_str() {
            "--replicas" => o.replicas = number()? as usize,
            "--inflight" => o.inflight = number()?,
            "--window" => o.window = number()?,
            "--batch" => o.batch = number()?,
            "--journal" => {
                let name = args.next().ok_or("--journal needs a value")?;
                super::node::journal(name)?;
                o.journal = name.clone();
            }
            "--transport" => {
                let name = args.next().ok_or("--transport needs a value")?;
                if !matches!(name.as_str(), "tcp" | "shm" | "rdma") {
                    return Err(format!("--transport {name}: tcp, shm or rdma"));
                }
                o.transport = name.clone();
            }
            "--request-bytes" => o.request_bytes = number()?,
            "--seconds" => o.seconds = number()? as usize,
            "--kills" => o.kills = number()? as usize,
            "--no-kill" => o.kills = 0,
            "--json" => o.json = true,
            "--verbose" | "-v" => o.verbose = true,
            "--pin" => o.pin = true,
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    if !matches!(o.replicas, 3 | 5)
        || o.inflight == 0
        || o.seconds == 0
        || !(1..=4096).contains(&o.window)
        || o.batch == 0
    {
        return Err(
            "--replicas is 3 or 5; --inflight, --batch and --seconds are positive; --window is 1..=4096"
                .to_owned(),
        );
    }
    Ok(o)
}

pub fn run(args: &[String]) -> ExitCode {
    let options = match parse_options(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("rsl bench: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let t0 = Instant::now();
    let json = options.json;
    let outcome = Cluster::new(options).and_then(|mut cluster| run_cluster(&mut cluster));
    // The cluster is dropped by now: every child killed and reaped, the data removed.
    match outcome {
        Ok(figures) => {
            if json {
                println!("{figures}");
            }
            println!("OK: all replicas hold identical state (total {})", secs(t0.elapsed()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAILED: {e} (after {})", secs(t0.elapsed()));
            ExitCode::FAILURE
        }
    }
}

/// Runs the job; returns its figures as a JSON object.
fn run_cluster(cluster: &mut Cluster) -> Result<String> {
    let (replicas, inflight, window, kills) =
        (cluster.options.replicas, cluster.options.inflight, cluster.options.window, cluster.options.kills);
    println!(
        "rsl bench: {replicas} `rsl node` processes on 127.0.0.1-{replicas} (ports {}+), {} transport, {} journals, \
         {inflight} requests of {} bytes in flight, window {window}, batch {}, election delay {ELECTION_DELAY_MS} ms, \
         {kills} kill(s){}",
        cluster.base_port + 10,
        cluster.options.transport,
        cluster.options.journal,
        cluster.options.request_bytes,
        cluster.options.batch,
        if cluster.cpus.is_empty() { String::new() } else { format!(", pinned to CPUs {:?} in turn", cluster.cpus) },
    );
    let t0 = Instant::now();
    for id in cluster.members() {
        cluster.start(id)?;
    }
    let members = cluster.members();
    let at = cluster
        .wait_until("a primary under load", |l| members.clone().any(|i| l[i].primary && l[i].ops > 0))?;
    let first = cluster.serving_primary(0).ok_or("no primary")?;
    println!("node {first} primary and serving {} after start", secs(at - t0));
    let (mut primary, steady) = cluster.measure(cluster.options.seconds)?;
    report(&format!("steady state (primary {primary})"), &steady, inflight);

    let mut failovers = Vec::new();
    for kill in 1..=kills {
        // The current primary (primacy may have moved since the last kill).
        let members = cluster.members();
        cluster
            .wait_until("a primary under load", |l| members.clone().any(|i| l[i].primary && l[i].ops > 0))?;
        let killed = cluster.serving_primary(0).ok_or("no primary")?;
        let killed_at = cluster.latest[killed].executed;
        let t_kill = Instant::now();
        cluster.kill(killed)?;
        let members = cluster.members();
        let at = cluster.wait_until("a new primary making progress", |l| {
            members.clone().any(|i| i != killed && l[i].primary && l[i].ops > 0)
        })?;
        primary = cluster.serving_primary(killed).ok_or("no new primary")?;
        failovers.push(at - t_kill);
        let t_restart = Instant::now();
        cluster.start(killed)?;
        cluster.wait_until("the restarted node's recovery", |l| l[killed].recovered_records.is_some())?;
        let recovered = cluster.latest[killed].recovered_records.unwrap_or(0);
        // Caught up: its executed reached the primary's latest (at most one interval old).
        let caught_up_at = cluster.wait_until("the restarted node to catch up", |l| {
            !l[killed].last && l[killed].executed > 0 && l[killed].executed >= l[primary].executed
        })?;
        println!(
            "kill {kill}: SIGKILLed node {killed} near decree {killed_at}; node {primary} serving {} later; \
             node {killed} restarted, replayed {} records, caught up {} after restart",
            secs(at - t_kill),
            recovered,
            secs(caught_up_at - t_restart)
        );
    }
    let after = if kills > 0 {
        let (primary, after) = cluster.measure(AFTER_SECONDS)?;
        report(&format!("after failover (primary {primary})"), &after, inflight);
        Some(after)
    } else {
        None
    };

    cluster.tell_all("quiet")?;
    let members = cluster.members();
    cluster.wait_until("identical digests after the load stopped", |l| {
        members.clone().all(|i| l[i].ops == 0 && l[i].executed > 0 && l[i].digest == l[1].digest)
    })?;
    for process in cluster.processes.iter_mut().flatten() {
        drop(process.stdin.take()); // end of input: a clean stop
    }
    let members = cluster.members();
    cluster.wait_until("the final lines", |l| members.clone().all(|i| l[i].last))?;
    for (id, process) in cluster.processes.iter_mut().enumerate() {
        if let Some(process) = process {
            let status = process.child.wait().map_err(|e| format!("node {id}: {e}"))?;
            if !status.success() {
                return Err(format!("node {id} exited with {status}"));
            }
        }
    }
    cluster.processes.iter_mut().for_each(|p| *p = None); // all reaped
    let finals = &cluster.latest[1..];
    let executed: Vec<u64> = finals.iter().map(|l| l.executed).collect();
    let digests: Vec<String> = finals.iter().map(|l| format!("{:016x}", l.digest)).collect();
    let acked = cluster.acked_by_killed + finals.iter().map(|l| l.acked).sum::<u64>();
    println!(
        "final: executed {executed:?}, digests {}, {} requests executed, {acked} acknowledged, duplicates {}",
        digests.join(" "),
        finals[0].requests,
        finals.iter().map(|l| l.dups).sum::<u64>()
    );
    if finals.iter().any(|l| l.digest != finals[0].digest) {
        return Err("the replicas' final digests differ".to_owned());
    }
    if finals.iter().any(|l| l.dups > 0) {
        return Err("a request executed twice".to_owned());
    }
    if finals[0].requests < acked {
        return Err(format!("{acked} requests acknowledged but only {} executed", finals[0].requests));
    }
    // Secondaries trail the primary by the heartbeat decrees it passed while they stopped.
    let spread = executed.iter().max().unwrap_or(&0) - executed.iter().min().unwrap_or(&0);
    if spread > 5 {
        return Err(format!("the replicas' executed decrees differ by {spread}"));
    }
    failovers.sort();
    let ms = |d: &Duration| d.as_millis();
    let failover_ms: Vec<String> = failovers.iter().map(|d| ms(d).to_string()).collect();
    println!(
        "failover: median {} ms, max {} ms over {kills} kill(s), {} unplanned election(s) while measuring; \
         {} thread hand-offs per commit (counted in the runtime's design, \
         rsl-core/src/runtime/mod.rs)",
        failovers.get(failovers.len() / 2).map_or(0, ms),
        failovers.last().map_or(0, ms),
        cluster.unplanned_elections,
        handoffs_per_commit(&cluster.options.journal),
    );
    let after = after.as_ref().map_or("null".to_owned(), |a| a.ops_per_second.to_string());
    Ok(format!(
        "{{\"replicas\":{replicas},\"inflight\":{inflight},\"window\":{window},\"batch\":{},\"transport\":\"{}\",\"journal\":\"{}\",\"request_bytes\":{},\"pinned\":{},\
         \"ops_per_s\":{},\"cpu_us_per_op\":{},\"p50_us\":{},\"p99_us\":{},\"p999_us\":{},\"after_failover_ops_per_s\":{after},\
         \"kills\":{kills},\"failover_ms\":[{}],\"unplanned_elections\":{},\"handoffs_per_commit\":{},\
         \"requests\":{},\"acked\":{acked},\"duplicates\":0}}",
        cluster.options.batch,
        cluster.options.transport,
        cluster.options.journal,
        cluster.options.request_bytes,
        cluster.options.pin,
        steady.ops_per_second,
        steady.cpu_us_per_op,
        steady.p50_us,
        steady.p99_us,
        steady.p999_us,
        failover_ms.join(","),
        cluster.unplanned_elections,
        handoffs_per_commit(&cluster.options.journal),
        finals[0].requests,
    ))
}
