//! Three `rsl node` processes on loopback (127.0.0.1–3, durable journals in a temp dir),
//! driven by `rsl cluster` (tools/rsl/cluster.rs, which owns the process handling): the
//! primary is killed with SIGKILL under load, another member takes over and the load
//! goes on, the killed member restarts from its journal (and must replay records) and
//! catches up through the learn port, and after the load stops all three exit cleanly with
//! the same state digest and executed decrees within 5 of each other. `rsl cluster` exits
//! 0 and prints `OK` only if every step held within its (generous) deadline.

use std::process::Command;

#[test]
fn killed_primary_is_replaced_and_rejoins_with_identical_state() {
    let output = Command::new(env!("CARGO_BIN_EXE_rsl"))
        .args(["cluster", "--verbose"])
        .output()
        .expect("run rsl cluster");
    let stdout = String::from_utf8_lossy(&output.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "rsl cluster failed: {}", output.status);
    let last = stdout.lines().last().unwrap_or("");
    assert!(last.starts_with("OK:"), "last line {last:?}");
    for step in ["primary and serving", "SIGKILLed node", "replayed", "caught up", "final:"] {
        assert!(stdout.contains(step), "no {step:?} in the output");
    }
}
