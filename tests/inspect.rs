//! `rsl inspect` on a journal `rsl node` wrote: it lists and verifies every record, takes
//! a torn last record for what restart cuts, and reports a flipped byte in the middle as
//! corruption with the file and offset (exit 1).

use std::path::Path;
use std::process::{Command, Stdio};

fn rsl(args: &[&str]) -> (bool, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_rsl")).args(args).output().expect("run rsl");
    (output.status.success(), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn inspect_verifies_a_journal_and_finds_damage() {
    let dir = std::env::temp_dir().join(format!("rsl-inspect-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    // A one-member cluster commits on its own; end of input stops it.
    let mut node = Command::new(env!("CARGO_BIN_EXE_rsl"))
        .args(["node", "--id", "1", "--members", "1", "--inflight", "4", "--status-ms", "200"])
        .args(["--base-port", &(24_000 + std::process::id() % 400 * 20).to_string()])
        .arg("--dir")
        .arg(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("start rsl node");
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(node.stdin.take());
    assert!(node.wait().expect("rsl node ends").success());
    let log = dir.join("1").join("0.log");
    let path = log.to_str().expect("a UTF-8 path");

    let (ok, out) = rsl(&["inspect", path]);
    assert!(ok, "{out}");
    assert!(out.contains("Vote v7") && out.contains("checksums OK"), "{out}");
    let records: usize = out.lines().filter(|l| l.contains(" Vote ")).count();
    assert!(records > 10, "{out}");

    // Tear the last record: everything after it is zero, as after a crash mid-write.
    let mut bytes = std::fs::read(&log).unwrap();
    let last = out.lines().rev().find(|l| l.contains(" Vote ")).unwrap();
    let offset: usize = last.split_whitespace().next().unwrap().parse().unwrap();
    bytes[offset + 40] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let (ok, out) = rsl(&["inspect", path]);
    assert!(ok && out.contains("torn last record"), "{out}");

    // Damage in the middle is corruption, reported with the offset.
    let middle = out.lines().filter(|l| l.contains(" Vote ")).nth(records / 2).unwrap();
    let at: usize = middle.split_whitespace().next().unwrap().parse().unwrap();
    bytes[at + 40] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();
    let (ok, out) = rsl(&["inspect", path]);
    assert!(!ok && out.contains(&format!("CORRUPT: offset {at}")), "{out}");
    assert!(Path::new(&dir).exists());
    let _ = std::fs::remove_dir_all(&dir);
}
