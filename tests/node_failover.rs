//! `rsl node` processes on loopback (127.0.0.x, durable journals in a temp dir), driven
//! by `rsl bench` (tools/rsl/bench.rs, which owns the process handling). `rsl bench` exits
//! 0 and prints `OK` only if every step held within its (generous) deadline: a primary
//! served, each SIGKILLed primary was replaced and the killed member restarted from its
//! journal and caught up, and at the end every replica held the same digest, no request
//! executed twice and every acknowledged request executed. The full 30-kill run is a
//! documented command (README).

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let output =
        Command::new(env!("CARGO_BIN_EXE_rsl")).arg("bench").args(args).output().expect("run rsl bench");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "rsl bench {args:?} failed: {}", output.status);
    let last = stdout.lines().last().unwrap_or("");
    assert!(last.starts_with("OK:"), "last line {last:?}");
    stdout
}

#[test]
fn killed_primaries_are_replaced_and_rejoin_with_identical_state() {
    let stdout = bench(&["--kills", "3", "--seconds", "2", "--verbose"]);
    for step in ["primary and serving", "kill 3: SIGKILLed node", "replayed", "caught up", "duplicates 0"] {
        assert!(stdout.contains(step), "no {step:?} in the output");
    }
}

#[test]
fn five_replicas_fail_over() {
    // Pinned: the processes on this machine's CPUs in turn (a node that cannot pin exits).
    let stdout = bench(&["--replicas", "5", "--kills", "1", "--seconds", "2", "--pin"]);
    assert!(stdout.contains("kill 1: SIGKILLed node"), "no failover in the output");
    assert!(stdout.contains("pinned to CPUs"), "not pinned");
}

#[test]
fn a_node_refuses_a_cpu_it_cannot_run_on() {
    let dir = std::env::temp_dir().join(format!("rsl-cpu-{}", std::process::id()));
    for cpu in ["1023", "5000"] {
        let output = Command::new(env!("CARGO_BIN_EXE_rsl"))
            .args(["node", "--id", "1", "--members", "1", "--cpu", cpu, "--dir"])
            .arg(&dir)
            .output()
            .expect("run rsl node");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "rsl node --cpu {cpu} ran");
        assert!(stderr.contains(&format!("--cpu {cpu}")), "stderr {stderr:?}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn pipelined_decrees_of_one_request_each_keep_flowing() {
    // 64 single-request decrees in flight: the transport must not drop the burst.
    let stdout = bench(&["--no-kill", "--batch", "1", "--seconds", "2", "--json"]);
    assert!(stdout.contains("\"batch\":1"), "no JSON figures in the output");
    let cpu = stdout.split("\"cpu_us_per_op\":").nth(1).and_then(|rest| rest.split(',').next());
    assert!(cpu.and_then(|n| n.parse::<u64>().ok()).is_some_and(|n| n > 0), "CPU per request {cpu:?}");
}

#[test]
fn the_shared_memory_transport_fails_over_as_tcp_does() {
    let stdout = bench(&["--transport", "shm", "--kills", "3", "--seconds", "2", "--verbose"]);
    for step in ["shm transport", "kill 3: SIGKILLed node", "replayed", "caught up", "duplicates 0"] {
        assert!(stdout.contains(step), "no {step:?} in the output");
    }
}
