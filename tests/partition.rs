//! A network partition under real processes. Three `rsl node` replicas run in a network
//! namespace made for the test (127.0.0.1–3 on its own loopback, so nothing reaches the
//! host's network); nftables in that namespace cuts the primary off from both peers. The
//! majority elects a new primary and keeps committing; the partition heals; the old
//! primary rejoins and catches up; at the end all three hold the same state and no request
//! executed twice.
//!
//! It needs root, `ip` (iproute2) and `nft` (nftables; `tools/test-all` installs it):
//! where any is missing it prints why and passes without running.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(60);

/// A network namespace, deleted on drop.
struct Namespace(String);

impl Namespace {
    /// A fresh namespace with its loopback up, or why there cannot be one here.
    fn create() -> Result<Self, String> {
        let name = format!("rsl-part-{}", std::process::id());
        run("ip", &["netns", "add", &name])?;
        let ns = Self(name);
        run("ip", &["-n", &ns.0, "link", "set", "lo", "up"])?;
        ns.nft("list tables")?;
        Ok(ns)
    }

    fn nft(&self, script: &str) -> Result<(), String> {
        let mut args = vec!["netns", "exec", &self.0, "nft"];
        args.extend(script.split_whitespace());
        run("ip", &args)
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = run("ip", &["netns", "del", &self.0]);
    }
}

fn run(program: &str, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{program} {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

fn field(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
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
    last: String,
}

struct Node {
    child: Child,
    stdin: Option<ChildStdin>,
}

fn start(
    ns: &Namespace,
    dir: &std::path::Path,
    id: u8,
    lines: &std::sync::mpsc::Sender<(usize, String)>,
) -> Node {
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.0, env!("CARGO_BIN_EXE_rsl"), "node", "--id", &id.to_string()])
        .args(["--members", "3", "--inflight", "16", "--status-ms", "100", "--election-delay-ms", "300"])
        .args(["--heartbeat-ms", "50", "--base-port", "20000", "--dir"])
        .arg(dir.join(id.to_string()))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start rsl node in the namespace");
    let stdout = child.stdout.take().unwrap();
    let lines = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines.send((usize::from(id) - 1, line));
        }
    });
    let stdin = child.stdin.take();
    Node { child, stdin }
}

/// Reads status lines into `status` until `done` holds (or the deadline passes: a panic
/// naming `what`).
fn until(
    lines: &Receiver<(usize, String)>,
    status: &mut [Status; 3],
    what: &str,
    done: impl Fn(&[Status; 3]) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    while !done(status) {
        let left = deadline.saturating_duration_since(Instant::now());
        let (i, line) =
            lines.recv_timeout(left).unwrap_or_else(|_| panic!("timed out waiting for {what}: {status:?}"));
        let s = &mut status[i];
        if let (Some(executed), Some(digest)) = (field(&line, "executed"), text(&line, "digest")) {
            s.executed = executed;
            s.digest = digest.to_owned();
        }
        s.primary = text(&line, "primary") == Some("true");
        s.dups = field(&line, "dups").unwrap_or(s.dups);
        s.inflight = field(&line, "inflight").unwrap_or(s.inflight);
        s.last = line;
    }
}

#[test]
fn a_partitioned_primary_is_replaced_and_rejoins_after_healing() {
    let ns = match Namespace::create() {
        Ok(ns) => ns,
        Err(why) => {
            println!("SKIPPED: no network namespace with nftables here ({why})");
            return;
        }
    };
    let dir = std::env::temp_dir().join(format!("rsl-partition-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let (tx, lines) = channel();
    let mut nodes: Vec<Node> = (1..=3).map(|id| start(&ns, &dir, id, &tx)).collect();
    let mut status: [Status; 3] = Default::default();
    until(&lines, &mut status, "a primary committing", |s| s.iter().any(|s| s.primary && s.executed > 200));
    let old = status.iter().position(|s| s.primary).unwrap();
    let addr = format!("127.0.0.{}", old + 1);

    // Cut the primary off: nothing between its address and the others', either way.
    ns.nft("add table inet part").unwrap();
    ns.nft("add chain inet part input { type filter hook input priority 0 ; policy accept ; }").unwrap();
    ns.nft(&format!("add rule inet part input ip saddr {addr} ip daddr != {addr} drop")).unwrap();
    ns.nft(&format!("add rule inet part input ip daddr {addr} ip saddr != {addr} drop")).unwrap();
    let cut_at = status.iter().map(|s| s.executed).max().unwrap();
    until(&lines, &mut status, "a new primary of the majority", |s| {
        s.iter().enumerate().any(|(i, s)| i != old && s.primary && s.executed > cut_at + 200)
    });
    let new = status.iter().enumerate().position(|(i, s)| i != old && s.primary).unwrap();
    let stuck = status[old].executed;
    assert!(stuck < status[new].executed, "the cut-off primary fell behind: {status:?}");

    // Heal: the old primary hears the new one, steps down and catches up.
    ns.nft("delete table inet part").unwrap();
    let healed_at = status[new].executed;
    until(&lines, &mut status, "the old primary caught up", |s| {
        !s[old].primary && s[old].executed > healed_at
    });

    // Quiet everyone, wait for equal state, stop.
    for node in &mut nodes {
        let _ = node.stdin.as_mut().unwrap().write_all(b"quiet\n");
    }
    // Nothing in flight, or a decree the primary executes as it stops could be missing
    // from the others' final state.
    until(&lines, &mut status, "equal state", |s| {
        s.iter().all(|x| {
            x.executed == s[0].executed && x.digest == s[0].digest && !x.digest.is_empty() && x.inflight == 0
        })
    });
    for node in &mut nodes {
        drop(node.stdin.take());
    }
    until(&lines, &mut status, "final lines", |s| s.iter().all(|x| x.last.contains(" final ")));
    for node in &mut nodes {
        assert!(node.child.wait().unwrap().success());
    }
    let digest = &status[0].digest;
    assert!(status.iter().all(|s| &s.digest == digest && s.dups == 0), "{status:?}");
    println!(
        "partition: primary {} cut off at decree {cut_at}, {} took over; healed at {healed_at}; all end at {} ({digest})",
        old + 1,
        new + 1,
        status[0].executed
    );
    let _ = std::fs::remove_dir_all(&dir);
}
