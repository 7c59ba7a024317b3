//! A full disk: `rsl node` runs with a file-size limit (`ulimit -f`, SIGXFSZ ignored, so a
//! write past it fails with EFBIG as a full disk fails with ENOSPC). The journal's failing
//! write stops the replica with an error that says so, and the process exits non-zero.
//! Restarted without the limit, the replica recovers every request it acknowledged.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn field(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

#[test]
fn a_full_disk_stops_the_replica_loudly_and_loses_nothing_acknowledged() {
    let dir = std::env::temp_dir().join(format!("rsl-disk-full-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let port = (26_000 + std::process::id() % 300 * 20).to_string();
    let rsl = env!("CARGO_BIN_EXE_rsl");
    let node = |limit: Option<u32>| {
        let script = match limit {
            Some(blocks) => format!("trap '' XFSZ; ulimit -f {blocks}; exec \"$0\" \"$@\""),
            None => "exec \"$0\" \"$@\"".to_owned(),
        };
        Command::new("sh")
            .args(["-c", &script, rsl, "node", "--id", "1", "--members", "1", "--inflight", "16"])
            .args(["--request-bytes", "4096", "--status-ms", "50", "--base-port", &port, "--dir"])
            .arg(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start rsl node")
    };

    // 16 MiB of journal at most (32768 blocks of 512 bytes): the node fills it and fails.
    let mut full = node(Some(32_768));
    let stdout = BufReader::new(full.stdout.take().unwrap());
    let acked = stdout.lines().map_while(Result::ok).filter_map(|l| field(&l, "acked")).max().unwrap_or(0);
    let output = full.wait_with_output().expect("the node ends by itself");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a replica whose journal failed must not exit 0");
    assert!(stderr.contains("journal failed") && stderr.contains("large"), "{stderr}");
    assert!(acked > 0, "it committed before the disk filled");

    // Without the limit it recovers every acknowledged request, then stops cleanly.
    let mut again = node(None);
    let mut lines = BufReader::new(again.stdout.take().unwrap()).lines().map_while(Result::ok);
    let started = lines.next().expect("a start line");
    drop(again.stdin.take());
    let last = lines.last().expect("a final line");
    assert!(again.wait().unwrap().success(), "{started} / {last}");
    let requests = field(&last, "requests").expect("requests=");
    assert!(requests >= acked, "{acked} acknowledged, {requests} recovered: {started}");
    let _ = std::fs::remove_dir_all(&dir);
}
