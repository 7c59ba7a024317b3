//! Three `rsl node` processes on loopback (127.0.0.1–3, durable journals in a temp dir):
//! the primary is killed with SIGKILL under load, another member takes over and the load
//! goes on, the killed member restarts from its journal and catches up through the learn
//! port, and after the load stops all three hold the same state digest. Waits are on the
//! nodes' once-a-second status lines, with deadlines generous enough for a loaded 2-core
//! machine.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(90);

/// One parsed line of `rsl node` output.
#[derive(Clone, Copy, Debug, Default)]
struct Line {
    primary: bool,
    executed: u64,
    digest: u64,
    ops: u64,
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
            Some(("recovered_records", v)) => parsed.recovered_records = v.parse().ok(),
            None if word == "final" => parsed.last = true,
            _ => {}
        }
    }
    Some((id, parsed))
}

struct Process {
    child: Child,
    stdin: Option<ChildStdin>,
}

/// The cluster: its processes, their data, and the latest line of each member (index 1–3).
struct Cluster {
    dir: PathBuf,
    base_port: u16,
    processes: [Option<Process>; 4],
    latest: [Line; 4],
    lines_tx: Sender<(usize, Line)>,
    lines: Receiver<(usize, Line)>,
}

impl Cluster {
    fn new() -> Self {
        let pid = std::process::id();
        let dir = std::env::temp_dir().join(format!("rsl-node-failover-{pid}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (lines_tx, lines) = channel();
        let base_port = 20_000 + (pid % 1000) as u16 * 40;
        Self { dir, base_port, processes: Default::default(), latest: [Line::default(); 4], lines_tx, lines }
    }

    fn start(&mut self, id: usize) {
        let mut child = Command::new(env!("CARGO_BIN_EXE_rsl"))
            .args(["node", "--id", &id.to_string(), "--members", "3"])
            .arg("--dir")
            .arg(&self.dir)
            .args(["--base-port", &self.base_port.to_string(), "--election-delay-ms", "300"])
            .args(["--heartbeat-ms", "50", "--inflight", "32"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("start rsl node");
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let tx = self.lines_tx.clone();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                println!("{line}");
                if let Some(parsed) = parse(&line) {
                    let _ = tx.send(parsed);
                }
            }
        });
        let stdin = child.stdin.take();
        self.latest[id] = Line::default();
        self.processes[id] = Some(Process { child, stdin });
    }

    /// SIGKILL: the process gets no chance to flush or say goodbye.
    fn kill(&mut self, id: usize) {
        let mut process = self.processes[id].take().expect("running");
        process.child.kill().unwrap();
        process.child.wait().unwrap();
        self.latest[id] = Line::default();
    }

    fn tell_all(&mut self, command: &str) {
        for process in self.processes.iter_mut().flatten() {
            writeln!(process.stdin.as_mut().unwrap(), "{command}").unwrap();
        }
    }

    /// Reads lines until `done` holds for the latest lines (checked after each), or fails.
    fn wait_until(&mut self, what: &str, mut done: impl FnMut(&[Line; 4]) -> bool) {
        let deadline = Instant::now() + WAIT;
        while !done(&self.latest) {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((id, line)) => self.latest[id] = line,
                Err(_) => panic!("timed out waiting for {what}; latest lines {:?}", self.latest),
            }
        }
    }

    fn primary(&self) -> Option<usize> {
        (1..=3).find(|&i| self.latest[i].primary && self.latest[i].ops > 0)
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

#[test]
fn killed_primary_is_replaced_and_rejoins_with_identical_state() {
    let mut cluster = Cluster::new();
    let t0 = Instant::now();
    (1..=3).for_each(|id| cluster.start(id));
    cluster.wait_until("a primary under load", |l| (1..=3).any(|i| l[i].primary && l[i].ops > 0));
    let first = cluster.primary().unwrap();
    println!("primary {first} serving after {:?}", t0.elapsed());
    cluster.wait_until("300 decrees", |l| l[first].executed >= 300);

    let killed_at = cluster.latest[first].executed;
    let t_kill = Instant::now();
    cluster.kill(first);
    cluster.wait_until("a new primary making progress", |l| {
        (1..=3).any(|i| i != first && l[i].primary && l[i].ops > 0 && l[i].executed > killed_at + 100)
    });
    let second = cluster.primary().unwrap();
    assert_ne!(second, first);
    println!("primary {second} took over and progressed within {:?}", t_kill.elapsed());

    let t_restart = Instant::now();
    cluster.start(first);
    cluster.wait_until("the restarted node's recovery", |l| l[first].recovered_records.is_some());
    let recovered = cluster.latest[first].recovered_records.unwrap();
    assert!(recovered > 0, "the killed node's journal held records");
    let target = cluster.latest[second].executed;
    cluster.wait_until("the restarted node to catch up", |l| !l[first].last && l[first].executed >= target);
    println!("node {first} recovered {recovered} records and caught up within {:?}", t_restart.elapsed());
    let progress_at = cluster.latest[second].executed;
    cluster.wait_until("progress with all three up", |l| l[second].executed > progress_at + 100);

    cluster.tell_all("quiet");
    cluster.wait_until("identical digests after the load stopped", |l| {
        (1..=3).all(|i| l[i].ops == 0 && l[i].digest == l[1].digest && l[i].executed > 0)
    });
    for process in cluster.processes.iter_mut().flatten() {
        drop(process.stdin.take()); // end of input: a clean stop
    }
    cluster.wait_until("final lines", |l| (1..=3).all(|i| l[i].last));
    for process in cluster.processes.iter_mut().flatten() {
        assert!(process.child.wait().unwrap().success(), "clean exit");
    }
    let finals = &cluster.latest[1..];
    let executed: Vec<u64> = finals.iter().map(|l| l.executed).collect();
    assert!(finals.iter().all(|l| l.digest == finals[0].digest), "digests differ: {finals:?}");
    // Secondaries trail the primary by the heartbeat decrees it passed while they stopped.
    let spread = executed.iter().max().unwrap() - executed.iter().min().unwrap();
    assert!(spread <= 5, "executed decrees differ by {spread}: {executed:?}");
    println!("final executed {executed:?}, digest {:016x}, total {:?}", finals[0].digest, t0.elapsed());
}
