//! Replica-set change under real processes: the legacy migration harness's script
//! {1,2,3} → {1,2,5} → {3,4,5} → {1} → {1,2,3,4,5} → {1,2,3} → {5} → {1,2,4}, and back to
//! all five, with five `rsl node` processes on
//! 127.0.0.1–5 under load (4 and 5 start outside the set), a kill -9 and restart at two
//! of the steps. After each change the new members report the new configuration and a
//! primary among them commits; at the end all five hold the same state and no request
//! executed twice.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);
const NODES: usize = 5;
const BASE_PORT: &str = "23000";

fn field(line: &str, name: &str) -> Option<u64> {
    text(line, name)?.parse().ok()
}

fn text<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
}

/// The latest status of each node, from its lines.
#[derive(Clone, Default, Debug)]
struct Status {
    primary: bool,
    executed: u64,
    /// Its own requests submitted and not yet acknowledged.
    inflight: u64,
    digest: String,
    dups: u64,
    requests: u64,
    configuration: u64,
    members: String,
    /// It declined the last replica-set change it was told (it was not primary).
    declined: bool,
    /// It restarted in-process on a member's checkpoint.
    reloaded: bool,
    last: String,
}

struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
    /// Options beyond the common ones, for a restart.
    extra: &'static [&'static str],
}

/// The two tests share 127.0.0.1–5 and the machine: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn start(dir: &Path, id: usize, lines: &Sender<(usize, String)>, extra: &'static [&'static str]) -> Node {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rsl"))
        .args(["node", "--id", &id.to_string(), "--members", "3", "--inflight", "16", "--status-ms", "100"])
        .args(["--election-delay-ms", "300", "--heartbeat-ms", "50", "--base-port", BASE_PORT])
        .args(extra)
        .arg("--dir")
        .arg(dir.join(id.to_string()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rsl node");
    let stdout = child.stdout.take().unwrap();
    let lines = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send((id - 1, line));
        }
    });
    let stdin = child.stdin.take();
    Node { child, stdin, extra }
}

/// Reads status lines until `done` holds, or panics naming `what` after [`WAIT`].
fn until(
    lines: &Receiver<(usize, String)>,
    status: &mut [Status],
    what: &str,
    done: impl Fn(&[Status]) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    while !done(status) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, line) =
            lines.recv_timeout(left).unwrap_or_else(|_| panic!("timed out waiting for {what}: {status:#?}"));
        let s = &mut status[i];
        if let (Some(executed), Some(digest)) = (field(&line, "executed"), text(&line, "digest")) {
            s.executed = executed;
            s.digest = digest.to_owned();
        }
        s.primary = text(&line, "primary") == Some("true");
        s.dups = field(&line, "dups").unwrap_or(s.dups);
        s.inflight = field(&line, "inflight").unwrap_or(s.inflight);
        s.requests = field(&line, "requests").unwrap_or(s.requests);
        s.configuration = field(&line, "config").unwrap_or(s.configuration);
        s.members = text(&line, "members").map_or(s.members.clone(), str::to_owned);
        s.declined |= line.contains(" declines members ");
        s.reloaded |= line.contains(" reloads checkpoint ");
        s.last = line;
    }
}

fn tell(nodes: &mut [Node], command: &str) {
    for node in nodes {
        if let Some(stdin) = node.stdin.as_mut() {
            let _ = writeln!(stdin, "{command}");
        }
    }
}

/// Asks the primary for `members` (again if it was no longer primary), and waits until
/// each new member reports the configuration `number` with exactly that set and one of
/// them, primary, committed 100 more decrees. Only the primary is told: a node told while
/// inactive might read it once it leads the new configuration, and change it again.
fn change(
    nodes: &mut [Node],
    lines: &Receiver<(usize, String)>,
    status: &mut [Status],
    members: &[usize],
    number: u64,
) {
    let list: Vec<String> = members.iter().map(usize::to_string).collect();
    let list = list.join(",");
    let from = status.iter().map(|s| s.executed).max().unwrap_or(0);
    let reached = |s: &[Status]| {
        members.iter().all(|&m| s[m - 1].configuration == number && s[m - 1].members == list)
            && members.iter().any(|&m| s[m - 1].primary && s[m - 1].executed > from + 100)
    };
    let what = format!("configuration {number} = {{{list}}} committing");
    loop {
        until(lines, status, "a primary", |s| s.iter().any(|s| s.primary));
        let primary = status.iter().position(|s| s.primary).expect("a primary");
        status[primary].declined = false;
        tell(&mut nodes[primary..=primary], &format!("members {list}"));
        until(lines, status, &what, |s| reached(s) || s[primary].declined);
        if reached(status) {
            return;
        }
    }
}

/// Stops the load, waits until every node holds the same state (executed decrees differ
/// by the heartbeats in flight; the state must not), ends them cleanly, and checks that
/// they executed the same requests and none twice.
fn finish(nodes: &mut [Node], lines: &Receiver<(usize, String)>, status: &mut [Status]) {
    tell(nodes, "quiet");
    // Nothing in flight, or a decree the primary executes as it stops could be missing
    // from the others' final state.
    until(lines, status, "equal state on every node", |s| {
        s.iter().all(|x| x.digest == s[0].digest && !x.digest.is_empty() && x.inflight == 0)
    });
    for node in nodes.iter_mut() {
        drop(node.stdin.take());
    }
    until(lines, status, "final lines", |s| s.iter().all(|x| x.last.contains(" final ")));
    for node in nodes.iter_mut() {
        assert!(node.child.wait().unwrap().success());
    }
    let (digest, requests) = (&status[0].digest, status[0].requests);
    assert!(
        status.iter().all(|s| &s.digest == digest && s.dups == 0 && s.requests == requests),
        "{status:#?}"
    );
}

/// kill -9 node `id` and start it again on its directory.
fn kill_and_restart(nodes: &mut [Node], dir: &Path, id: usize, tx: &Sender<(usize, String)>) {
    let node = &mut nodes[id - 1];
    node.child.kill().unwrap();
    node.child.wait().unwrap();
    *node = start(dir, id, tx, node.extra);
}

#[test]
fn a_set_walks_through_the_legacy_migration_script_with_restarts() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("rsl-walk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (tx, lines) = channel();
    let mut nodes: Vec<Node> = (1..=NODES).map(|id| start(&dir, id, &tx, &[])).collect();
    let mut status = vec![Status::default(); NODES];
    until(&lines, &mut status, "a primary of {1,2,3} committing", |s| {
        s.iter().any(|s| s.primary && s.executed > 100)
    });

    change(&mut nodes, &lines, &mut status, &[1, 2, 5], 2);
    kill_and_restart(&mut nodes, &dir, 2, &tx);
    let from = status[0].executed.max(status[4].executed);
    until(&lines, &mut status, "node 2 back in configuration 2", |s| {
        s[1].configuration == 2 && s[1].executed > from && s[1].last.contains("primary=")
    });

    change(&mut nodes, &lines, &mut status, &[3, 4, 5], 3);
    let primary = (3..=5).find(|&m| status[m - 1].primary).expect("a primary of {3,4,5}");
    kill_and_restart(&mut nodes, &dir, primary, &tx);
    let from = status.iter().map(|s| s.executed).max().unwrap();
    until(&lines, &mut status, "{3,4,5} committing after the primary's restart", |s| {
        (3..=5).any(|m| s[m - 1].primary && s[m - 1].executed > from + 100)
    });

    change(&mut nodes, &lines, &mut status, &[1], 4);
    change(&mut nodes, &lines, &mut status, &[1, 2, 3, 4, 5], 5);
    // The rest of the legacy script, then all five again so that every state can be compared.
    change(&mut nodes, &lines, &mut status, &[1, 2, 3], 6);
    change(&mut nodes, &lines, &mut status, &[5], 7);
    change(&mut nodes, &lines, &mut status, &[1, 2, 4], 8);
    change(&mut nodes, &lines, &mut status, &[1, 2, 3, 4, 5], 9);

    finish(&mut nodes, &lines, &mut status);
    let (digest, requests) = (&status[0].digest, status[0].requests);
    assert!(requests > 0, "{status:#?}");
    println!(
        "membership walk: 8 changes, 2 restarts; all five executed the same {requests} requests ({digest})"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// Healing: a replica killed while its members checkpointed and dropped the logs it needs
/// finds the decrees gone when it comes back, installs a member's checkpoint (it stops, and
/// `rsl node` initializes it again in-process on the copy), survives another kill -9 and
/// ends with the same state.
#[test]
fn a_replica_behind_its_members_logs_installs_their_checkpoint() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let dir = std::env::temp_dir().join(format!("rsl-behind-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    const SMALL_LOGS: &[&str] =
        &["--checkpoint-every", "200", "--max-log-mb", "1", "--max-logs", "1", "--request-bytes", "4096"];
    let (tx, lines) = channel();
    let mut nodes: Vec<Node> = (1..=3).map(|id| start(&dir, id, &tx, SMALL_LOGS)).collect();
    let mut status = vec![Status::default(); 3];
    until(&lines, &mut status, "a primary committing", |s| s.iter().any(|s| s.primary && s.executed > 100));
    let down = (1..=3).find(|&m| !status[m - 1].primary).expect("a secondary");
    nodes[down - 1].child.kill().unwrap();
    nodes[down - 1].child.wait().unwrap();
    // 4,000 requests of 4 KiB fill 16 logs of 1 MiB; each member keeps one after a checkpoint.
    let from = status[down - 1].requests;
    until(&lines, &mut status, "the others 4,000 requests further", |s| {
        s.iter().enumerate().all(|(i, s)| i == down - 1 || s.requests > from + 4000)
    });
    nodes[down - 1] = start(&dir, down, &tx, SMALL_LOGS);
    until(&lines, &mut status, "the restarted replica on a member's checkpoint", |s| s[down - 1].reloaded);
    // Its journal now skips from its old decrees to those after the checkpoint: it must
    // restart from it again (the checkpoint first) and keep up.
    let from = status.iter().map(|s| s.executed).max().unwrap_or(0);
    kill_and_restart(&mut nodes, &dir, down, &tx);
    until(&lines, &mut status, "the replica back after a second kill", |s| s[down - 1].executed > from + 100);
    finish(&mut nodes, &lines, &mut status);
    println!("caught up by checkpoint: node {down}, all three at {} requests", status[0].requests);
    let _ = std::fs::remove_dir_all(&dir);
}
