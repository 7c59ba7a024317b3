//! File-system faults under a real replica. `tests/faultfs/faultfs.c`, preloaded into
//! `rsl node` (a lone replica with 1 MiB logs and a checkpoint every 300 requests), counts
//! every call that changes a file of the data directory — journal writes and syncs, log
//! rotation, checkpoint writing, publication and cleanup, `Temp/` emptying — and at call N
//! crashes the process or fails the call.
//!
//! - **crash** at N, then a restart that crashes again at call M of its recovery, then a
//!   clean restart: every request acknowledged before the first crash is there, and none
//!   twice.
//! - **ENOSPC** from call N on (the disk stays full), **EROFS** from call N on, **EIO**
//!   once at call N: the replica stops with an error that names the failure (or, if it
//!   hit a checkpoint, logs it and goes on), and a clean restart loses nothing acknowledged.
//! - **EROFS from the first call**: the replica refuses to start and says why.
//!
//! Points are chosen in a calibrated fault-free run: every call of the first checkpoint's
//! writing, publication and cleanup, the first removals and file creations, and points
//! spread over the whole run (`FAULT_POINTS`, default 16, sets how many of each).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn work_dir() -> PathBuf {
    std::env::temp_dir().join(format!("rsl-file-faults-{}", std::process::id()))
}

/// The shim, built once per test process.
fn shim() -> &'static Path {
    static SHIM: OnceLock<PathBuf> = OnceLock::new();
    SHIM.get_or_init(|| {
        std::fs::create_dir_all(work_dir()).unwrap();
        let out = work_dir().join("faultfs.so");
        let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/faultfs/faultfs.c");
        let status = Command::new("gcc")
            .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
            .arg(&out)
            .arg(source)
            .arg("-ldl")
            .status()
            .expect("gcc builds the fault-injecting layer");
        assert!(status.success());
        out
    })
}

#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Counting only.
    None,
    Crash,
    Enospc,
    Eio,
    Erofs,
}

/// What one run of the node showed.
#[derive(Debug)]
struct Run {
    status: ExitStatus,
    /// Requests this run acknowledged (from its last status line).
    acked: u64,
    /// From the final line of a clean stop.
    executed: Option<u64>,
    requests: Option<u64>,
    dups: Option<u64>,
    stderr: String,
    /// Calls counted (only when asked for).
    calls: Option<u64>,
}

fn field(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

fn spawn(dir: &Path, port: u16, env: &[(&str, String)]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_rsl"))
        .args(["node", "--id", "1", "--members", "1", "--inflight", "4", "--request-bytes", "4096"])
        .args(["--status-ms", "20", "--checkpoint-every", "300", "--max-log-mb", "1"])
        .args(["--election-delay-ms", "100", "--base-port", &port.to_string(), "--dir"])
        .arg(dir)
        .env("LD_PRELOAD", shim())
        .env("FAULTFS_DIR", dir)
        .envs(env.iter().map(|(k, v)| (*k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start rsl node")
}

/// Runs the node under `fault` at `Point` until it dies, or for `load` of
/// load after it becomes primary, then stops it cleanly. `quiet` runs it without load.
fn run(dir: &Path, port: u16, fault: Option<(Fault, Point)>, load: Duration, quiet: bool) -> Run {
    let count = dir.with_extension("count");
    let mut env = vec![("FAULTFS_COUNT", count.display().to_string())];
    if let Some((fault, Point { matching, at })) = fault {
        env.push(("FAULTFS_MATCH", matching.to_owned()));
        env.push(("FAULTFS_MODE", format!("{fault:?}").to_lowercase()));
        env.push(("FAULTFS_AT", at.to_string()));
    }
    let mut child = spawn(dir, port, &env);
    let mut stdin = child.stdin.take().unwrap();
    if quiet {
        let _ = stdin.write_all(b"quiet\n"); // it may have died already
    }
    let (lines, rx) = std::sync::mpsc::channel();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let reader = std::thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    let mut stderr = child.stderr.take().unwrap();
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let (mut acked, mut executed, mut requests, mut dups, mut primary_since) = (0, None, None, None, None);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut stdin = Some(stdin);
    loop {
        match rx.recv_timeout(Duration::from_millis(10)) {
            Ok(line) => {
                acked = acked.max(field(&line, "acked").unwrap_or(0));
                if line.contains(" final ") {
                    executed = field(&line, "executed");
                    requests = field(&line, "requests");
                    dups = field(&line, "dups");
                }
                if line.contains("primary=true") && primary_since.is_none() {
                    primary_since = Some(Instant::now());
                }
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            Err(_) => {}
        }
        let loaded = primary_since.is_some_and(|t| t.elapsed() >= load);
        if loaded || Instant::now() > deadline {
            stdin.take(); // end of input: a clean stop
        }
    }
    reader.join().unwrap();
    let status = child.wait().unwrap();
    let calls = std::fs::read_to_string(&count).ok().and_then(|c| c.trim().parse().ok());
    let _ = std::fs::remove_file(&count);
    Run { status, acked, executed, requests, dups, stderr: errors.join().unwrap(), calls }
}

/// A clean restart that must hold every acknowledged request, once.
fn check_recovers(dir: &Path, port: u16, acked: u64, what: &str) {
    let again = run(dir, port, None, Duration::ZERO, true);
    assert!(again.status.success(), "{what}: the clean restart failed: {}", again.stderr);
    let requests = again.requests.expect("a final line");
    assert!(requests >= acked, "{what}: {acked} acknowledged, {requests} recovered\n{}", again.stderr);
    assert_eq!(again.dups, Some(0), "{what}: a request executed twice");
}

/// A fault point: the `at`-th call whose description contains `matching`.
#[derive(Clone, Copy, Debug)]
struct Point {
    matching: &'static str,
    at: u64,
}

/// Checkpoint writing, publication and cleanup; log and checkpoint removal; file
/// creation (logs at rotation, checkpoints in `Temp/`).
const SPECIAL: [&str; 3] = [".codex", "unlink", "open"];

/// The points to try: for each of `patterns`, its first `FAULT_POINTS` (default 16)
/// calls in a calibrated run — for ".codex", the first checkpoint's every call — and
/// `FAULT_POINTS` points spread over all calls, the first three (start-up) included.
fn points(port: u16, patterns: &[&'static str]) -> Vec<Point> {
    let cap: u64 = std::env::var("FAULT_POINTS").map_or(16, |n| n.parse().expect("FAULT_POINTS: a number"));
    let all = calibrate(port, "");
    let mut points: Vec<Point> = (1..=all.min(3))
        .chain((1..=cap).map(|i| i * all / (cap + 1)))
        .map(|at| Point { matching: "", at })
        .collect();
    points.dedup_by_key(|p| p.at);
    for &matching in patterns {
        points.extend((1..=calibrate(port, matching).min(cap)).map(|at| Point { matching, at }));
    }
    points
}

/// The calls matching `matching` in a fault-free run with 300 ms of load (rotations and
/// checkpoints).
fn calibrate(port: u16, matching: &'static str) -> u64 {
    let dir = work_dir().join(format!("calibration-{port}"));
    let _ = std::fs::remove_dir_all(&dir);
    let no_fault = Some((Fault::None, Point { matching, at: 0 }));
    let first = run(&dir, port, no_fault, Duration::from_millis(300), false);
    assert!(first.status.success(), "{}", first.stderr);
    let _ = std::fs::remove_dir_all(&dir);
    first.calls.expect("counted")
}

/// Ports below the kernel's ephemeral range (32768 up), so no outgoing connection holds one.
fn port(offset: u16) -> u16 {
    21_000 + (std::process::id() % 50) as u16 * 200 + offset * 20
}

#[test]
fn a_crash_at_any_file_call_loses_nothing_acknowledged() {
    let port = port(0);
    let points = points(port, &SPECIAL);
    let mut crashed = 0;
    for (i, &point) in points.iter().enumerate() {
        let dir = work_dir().join(format!("crash-{i}"));
        let _ = std::fs::remove_dir_all(&dir);
        let first = run(&dir, port, Some((Fault::Crash, point)), Duration::from_secs(1), false);
        let what = format!("crash at {point:?}");
        if first.status.code() != Some(137) {
            assert!(first.status.success(), "{what}: {}", first.stderr);
            continue; // this run made fewer such calls than the calibration
        }
        crashed += 1;
        // Crash again inside the recovery, at a call that moves along with the point.
        let again = Point { matching: "", at: 1 + i as u64 % 12 };
        let second = run(&dir, port, Some((Fault::Crash, again)), Duration::ZERO, true);
        let what = format!("{what}, then at {again:?}");
        assert!(second.status.code() == Some(137) || second.status.success(), "{what}: {}", second.stderr);
        check_recovers(&dir, port, first.acked.max(second.acked), &what);
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!("crash: {crashed} of {} points reached", points.len());
    // A point past what a run makes (it is paced by a loaded machine) is skipped; most
    // must be reached, or the test would say nothing.
    assert!(crashed * 2 >= points.len(), "only {crashed} of {} points were reached", points.len());
}

/// A failed call stops the replica with an error naming the failure, or (in a checkpoint)
/// is logged and survived; nothing acknowledged is lost.
fn failures(fault: Fault, errno_text: &str, offset: u16) {
    let port = port(offset);
    let (points, mut stopped) = (points(port, &SPECIAL[..1]), 0);
    for (i, &point) in points.iter().enumerate() {
        let dir = work_dir().join(format!("{fault:?}-{i}"));
        let _ = std::fs::remove_dir_all(&dir);
        let first = run(&dir, port, Some((fault, point)), Duration::from_millis(500), false);
        let what = format!("{fault:?} at {point:?}");
        if !first.status.success() {
            stopped += 1;
            assert!(first.stderr.contains(errno_text), "{what}: {}", first.stderr);
            assert!(
                first.stderr.contains("rsl node 1:"),
                "{what}: no error of the node's own\n{}",
                first.stderr
            );
        }
        check_recovers(&dir, port, first.acked, &what);
        let _ = std::fs::remove_dir_all(&dir);
    }
    eprintln!("{fault:?}: {stopped} of {} points stopped the replica", points.len());
    assert!(stopped > 0, "no {fault:?} stopped the replica");
}

#[test]
fn a_full_disk_at_any_file_call_stops_the_replica_and_loses_nothing() {
    failures(Fault::Enospc, "No space left on device", 1);
}

#[test]
fn a_failed_sync_or_write_at_any_call_stops_the_replica_and_loses_nothing() {
    failures(Fault::Eio, "Input/output error", 2);
}

#[test]
fn a_read_only_file_system_refuses_the_start_or_stops_the_replica() {
    failures(Fault::Erofs, "Read-only file system", 3);
    let dir = work_dir().join("read-only");
    let _ = std::fs::remove_dir_all(&dir);
    let first_call = Point { matching: "", at: 1 };
    let refused = run(&dir, port(3), Some((Fault::Erofs, first_call)), Duration::ZERO, true);
    assert!(!refused.status.success());
    assert!(
        refused.stderr.contains("cannot start") && refused.stderr.contains("Read-only file system"),
        "{}",
        refused.stderr
    );
    assert!(refused.stderr.contains(dir.to_str().unwrap()), "the error names the path: {}", refused.stderr);
}

/// The check can fail: a journal that lost its newest records (as one that acknowledged
/// before writing would) is caught.
#[test]
fn the_check_catches_a_journal_that_lost_acknowledged_records() {
    let port = port(4);
    let dir = work_dir().join("planted");
    let newest = |extension: &str| {
        std::fs::read_dir(dir.join("1"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == extension))
            .map(|p| (p.file_stem().unwrap().to_str().unwrap().parse::<u64>().unwrap(), p))
            .max()
    };
    // A run whose newest log starts before its last executed decree and after its newest
    // checkpoint, so that the log surely holds acknowledged requests that nothing else
    // does (it starts with a new decree; the copies a clean stop writes after it as proofs
    // are of decrees before).
    let (first, newest) = loop {
        let _ = std::fs::remove_dir_all(&dir);
        let first = run(&dir, port, None, Duration::from_millis(300), false);
        assert!(first.status.success() && first.acked > 0, "{}", first.stderr);
        let (decree, log) = newest("log").unwrap();
        let checkpoint = newest("codex").map_or(0, |(decree, _)| decree);
        if decree < first.executed.unwrap() && checkpoint < decree {
            break (first, log);
        }
    };
    std::fs::OpenOptions::new().write(true).open(&newest).unwrap().set_len(0).unwrap();
    let caught = std::panic::catch_unwind(|| check_recovers(&dir, port, first.acked, "planted loss"));
    assert!(caught.is_err(), "the newest records gone, and the check did not notice");
    let _ = std::fs::remove_dir_all(&dir);
}
