//! `rsl cluster`: the main job on real processes. Starts three `rsl node` children of this
//! executable on loopback (127.0.0.1–3, durable journals in a temp dir), measures the
//! primary's steady-state throughput and latency, SIGKILLs the primary and reports how
//! long it took until another member served requests again, restarts the killed member
//! from its journal and reports how long it took to catch up, then stops the load and the
//! nodes and checks that all three end with identical state digests (exit 0 and `OK`;
//! otherwise exit 1 and `FAILED`). `--verbose` echoes the nodes' status lines to stderr.
//!
//! Every number comes from the nodes' status lines (`node.rs`), printed every 250 ms:
//! throughput is the primary's `ops=` summed over 1 s windows (median of the windows),
//! latency is the primary's own submit → executed percentiles (median over the
//! intervals), and failover and catch-up times are as of the first status line showing
//! them, so they are upper bounds with 250 ms resolution.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitCode, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

const STATUS_MS: u64 = 250;
const LINES_PER_SECOND: usize = (1000 / STATUS_MS) as usize;
const INFLIGHT: u64 = 64;
const ELECTION_DELAY_MS: u64 = 500;
const HEARTBEAT_MS: u64 = 50;
/// Seconds of status lines measured in steady state, and after the failover.
const STEADY_SECONDS: usize = 4;
const AFTER_SECONDS: usize = 3;
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
    recovered_records: Option<u64>,
    last: bool,
}

fn parse(line: &str) -> Option<(usize, Line)> {
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
            Some(("recovered_records", v)) => parsed.recovered_records = v.parse().ok(),
            None if word == "final" => parsed.last = true,
            _ => {}
        }
    }
    (1..=3).contains(&id).then_some((id, parsed))
}

struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// A status line: member, incarnation (lines of a killed process are dropped), arrival.
type Arrival = (usize, u32, Line, Instant);

/// The three processes, their data, and the latest line of each member (index 1–3).
/// Dropping it kills and reaps every child still running and removes the data.
struct Cluster {
    exe: PathBuf,
    dir: PathBuf,
    base_port: u16,
    verbose: bool,
    processes: [Option<Process>; 4],
    incarnation: [u32; 4],
    latest: [Line; 4],
    lines_tx: Sender<Arrival>,
    lines: Receiver<Arrival>,
}

impl Cluster {
    fn new(verbose: bool) -> Result<Self> {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this executable: {e}"))?;
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("rsl-cluster-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let (lines_tx, lines) = channel();
        let base_port = 20_000 + (pid % 1000) as u16 * 40;
        Ok(Self {
            exe,
            dir,
            base_port,
            verbose,
            processes: Default::default(),
            incarnation: [0; 4],
            latest: [Line::default(); 4],
            lines_tx,
            lines,
        })
    }

    fn start(&mut self, id: usize) -> Result<()> {
        let mut child = Command::new(&self.exe)
            .args(["node", "--id", &id.to_string(), "--members", "3"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--base-port", &self.base_port.to_string()])
            .args(["--election-delay-ms", &ELECTION_DELAY_MS.to_string()])
            .args(["--heartbeat-ms", &HEARTBEAT_MS.to_string()])
            .args(["--inflight", &INFLIGHT.to_string(), "--status-ms", &STATUS_MS.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start node {id}: {e}"))?;
        self.incarnation[id] += 1;
        let incarnation = self.incarnation[id];
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let (tx, verbose) = (self.lines_tx.clone(), self.verbose);
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(std::result::Result::ok) {
                if verbose {
                    eprintln!("  {line}");
                }
                if let Some((id, parsed)) = parse(&line) {
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
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&[Line; 4]) -> bool) -> Result<Instant> {
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

    /// The next `seconds` of `primary`'s status lines, summarized.
    fn measure(&mut self, primary: usize, seconds: usize) -> Result<Phase> {
        let deadline = Instant::now() + WAIT;
        let mut lines = Vec::new();
        while lines.len() < seconds * LINES_PER_SECOND {
            let Some((id, line, _)) = self.next_line(deadline) else {
                return Err(format!("timed out measuring node {primary}"));
            };
            if id == primary {
                if !line.primary {
                    return Err(format!("node {primary} lost primacy while being measured"));
                }
                lines.push(line);
            }
        }
        let per_second = lines.chunks(LINES_PER_SECOND).map(|c| c.iter().map(|l| l.ops).sum()).collect();
        let busy = || lines.iter().filter(|l| l.ops > 0);
        Ok(Phase {
            ops_per_second: median(per_second),
            p50_us: median(busy().map(|l| l.p50_us).collect()),
            p99_us: median(busy().map(|l| l.p99_us).collect()),
        })
    }

    /// A member other than `except` that is primary and made progress in its last interval.
    fn serving_primary(&self, except: usize) -> Option<usize> {
        (1..=3).find(|&i| i != except && self.latest[i].primary && self.latest[i].ops > 0)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for process in self.processes.iter_mut().flatten() {
            let _ = process.child.kill();
            let _ = process.child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

struct Phase {
    ops_per_second: u64,
    p50_us: u64,
    p99_us: u64,
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

fn report(name: &str, phase: &Phase) {
    let little_us = (INFLIGHT as f64 * 1e6 / phase.ops_per_second.max(1) as f64) as u64;
    println!(
        "{name:<26} {:>7} ops/s   p50 {:>5} us   p99 {:>6} us   (in-flight/throughput {little_us} us)",
        phase.ops_per_second, phase.p50_us, phase.p99_us,
    );
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

pub fn run(args: &[String]) -> ExitCode {
    let verbose = match args {
        [] => false,
        [v] if v == "--verbose" || v == "-v" => true,
        _ => {
            eprintln!("usage: rsl cluster [--verbose]");
            return ExitCode::from(2);
        }
    };
    let t0 = Instant::now();
    let outcome = Cluster::new(verbose).and_then(|mut cluster| run_cluster(&mut cluster));
    // The cluster is dropped by now: every child killed and reaped, the data removed.
    match outcome {
        Ok(()) => {
            println!("OK: all three replicas hold identical state (total {})", secs(t0.elapsed()));
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("FAILED: {e} (after {})", secs(t0.elapsed()));
            ExitCode::FAILURE
        }
    }
}

fn run_cluster(cluster: &mut Cluster) -> Result<()> {
    println!(
        "rsl cluster: 3 `rsl node` processes on 127.0.0.1-3 (ports {}+), durable journals, \
         {INFLIGHT} requests in flight, election delay {ELECTION_DELAY_MS} ms",
        cluster.base_port + 10
    );
    let t0 = Instant::now();
    (1..=3).try_for_each(|id| cluster.start(id))?;
    let at = cluster.wait_until("a primary under load", |l| (1..=3).any(|i| l[i].primary && l[i].ops > 0))?;
    let first = cluster.serving_primary(0).ok_or("no primary")?;
    println!("node {first} primary and serving {} after start", secs(at - t0));
    let steady = cluster.measure(first, STEADY_SECONDS)?;
    report(&format!("steady state (primary {first})"), &steady);

    let killed_at = cluster.latest[first].executed;
    let t_kill = Instant::now();
    cluster.kill(first)?;
    let at = cluster.wait_until("a new primary making progress", |l| {
        (1..=3).any(|i| i != first && l[i].primary && l[i].ops > 0)
    })?;
    let second = cluster.serving_primary(first).ok_or("no new primary")?;
    println!(
        "SIGKILLed node {first} near decree {killed_at}; node {second} primary and serving {} later",
        secs(at - t_kill)
    );
    let after = cluster.measure(second, AFTER_SECONDS)?;
    report(&format!("after failover (primary {second})"), &after);

    let t_restart = Instant::now();
    cluster.start(first)?;
    let recovered_at =
        cluster.wait_until("the restarted node's recovery", |l| l[first].recovered_records.is_some())?;
    let recovered = cluster.latest[first].recovered_records.unwrap_or(0);
    if recovered == 0 {
        return Err(format!("node {first} recovered no journal records"));
    }
    // Caught up: its executed reached the primary's latest (at most one interval old).
    let caught_up_at = cluster.wait_until("the restarted node to catch up", |l| {
        !l[first].last && l[first].executed > 0 && l[first].executed >= l[second].executed
    })?;
    println!(
        "restarted node {first}: replayed {recovered} journal records in {}, caught up {} after restart",
        secs(recovered_at - t_restart),
        secs(caught_up_at - t_restart)
    );

    cluster.tell_all("quiet")?;
    cluster.wait_until("identical digests after the load stopped", |l| {
        (1..=3).all(|i| l[i].ops == 0 && l[i].executed > 0 && l[i].digest == l[1].digest)
    })?;
    for process in cluster.processes.iter_mut().flatten() {
        drop(process.stdin.take()); // end of input: a clean stop
    }
    cluster.wait_until("the final lines", |l| (1..=3).all(|i| l[i].last))?;
    for (id, process) in cluster.processes.iter_mut().enumerate() {
        if let Some(process) = process {
            let status = process.child.wait().map_err(|e| format!("node {id}: {e}"))?;
            if !status.success() {
                return Err(format!("node {id} exited with {status}"));
            }
        }
    }
    cluster.processes = Default::default(); // all reaped
    let finals = &cluster.latest[1..];
    let executed: Vec<u64> = finals.iter().map(|l| l.executed).collect();
    let digests: Vec<String> = finals.iter().map(|l| format!("{:016x}", l.digest)).collect();
    println!("final: executed {executed:?}, digests {}", digests.join(" "));
    if finals.iter().any(|l| l.digest != finals[0].digest) {
        return Err("the replicas' final digests differ".to_owned());
    }
    // Secondaries trail the primary by the heartbeat decrees it passed while they stopped.
    let spread = executed.iter().max().unwrap_or(&0) - executed.iter().min().unwrap_or(&0);
    if spread > 5 {
        return Err(format!("the replicas' executed decrees differ by {spread}"));
    }
    Ok(())
}
