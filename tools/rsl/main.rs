//! The `rsl` command-line tool.
//!
//! `rsl demo`: a local 3-replica cluster in one process (channels as the network,
//! in-memory journals with an emulated 100 µs flush) replicating a key-value store under
//! 256 closed-loop clients; it prints throughput and latency, kills the primary, reports
//! how long the failover took, and checks that the survivors end with identical digests.
//!
//! `rsl inspect` dumps and verifies `.log` and `.codex` files (see `inspect.rs`).
//! `rsl node` runs one replica of a loopback cluster as a process (see `node.rs`).
//! `rsl bench` is the main job on such processes (see `bench.rs`): it starts 3 or 5,
//! measures, SIGKILLs the primary (as often as asked), restarts it and checks the replicas
//! agree; the multi-process failover tests (tests/node_failover.rs) run it.

mod bench;
mod inspect;
mod node;

use bytes::Bytes;
use rsl_core::local::{App, Completion, LocalCluster};
use rsl_core::paxos::Config;
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};

const CLIENTS: usize = 256;

/// The replicated application: a map from key to value, plus a digest of every request
/// applied, in order.
#[derive(Default)]
struct KvStore {
    map: HashMap<u64, u64>,
    digest: u64,
}

impl App for KvStore {
    fn execute(&mut self, request: &[u8]) {
        let Some((key, value)) = request.split_at_checked(8) else { return };
        let (Ok(key), Ok(value)) = (key.try_into(), value.try_into()) else { return };
        self.map.insert(u64::from_le_bytes(key), u64::from_le_bytes(value));
        for b in request {
            self.digest = (self.digest ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn digest(&self) -> u64 {
        self.digest
    }
}

fn main() -> ExitCode {
    match std::env::args().nth(1).as_deref() {
        None | Some("demo") => demo(),
        Some("node") => node::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        Some("bench") => bench::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        Some("inspect") => inspect::run(&std::env::args().skip(2).collect::<Vec<_>>()),
        Some("version") => {
            println!("rsl {} (commit {})", env!("CARGO_PKG_VERSION"), env!("RSL_BUILD_COMMIT"));
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!(
                "rsl: unknown command {other:?}\nusage: rsl [bench [options] | inspect <file-or-dir>... | demo | node ... | version]"
            );
            ExitCode::from(2)
        }
    }
}

/// Closed-loop clients: each slot keeps one request outstanding at the primary.
struct Clients {
    primary: usize,
    started: Vec<Instant>,
    generation: u64,
    next_value: u64,
}

struct Phase {
    ops: u64,
    latencies_us: Vec<u64>,
}

impl Clients {
    fn submit(&mut self, cluster: &LocalCluster, slot: usize) {
        self.next_value += 1;
        let mut request = Vec::with_capacity(16);
        request.extend_from_slice(&(slot as u64).to_le_bytes());
        request.extend_from_slice(&self.next_value.to_le_bytes());
        self.started[slot] = Instant::now();
        cluster.submit(self.primary, Bytes::from(request), self.generation << 32 | slot as u64);
    }

    /// Waits for a primary, then (re)submits every slot to it under a new generation.
    fn restart_on_primary(&mut self, cluster: &LocalCluster) -> Duration {
        let t0 = Instant::now();
        self.primary = loop {
            if let Some(p) = cluster.primary() {
                break p;
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        self.generation += 1;
        (0..CLIENTS).for_each(|slot| self.submit(cluster, slot));
        t0.elapsed()
    }

    /// Runs the load for `length`; returns completions and their latencies.
    fn run(&mut self, cluster: &LocalCluster, length: Duration) -> Phase {
        let end = Instant::now() + length;
        let mut phase = Phase { ops: 0, latencies_us: Vec::new() };
        while Instant::now() < end {
            match cluster.completions().recv_timeout(Duration::from_millis(100)) {
                Ok(Completion::Executed { cookie }) if cookie >> 32 == self.generation => {
                    let slot = (cookie & 0xffff_ffff) as usize;
                    phase.ops += 1;
                    phase.latencies_us.push(self.started[slot].elapsed().as_micros() as u64);
                    self.submit(cluster, slot);
                }
                Ok(Completion::Aborted { cookie, .. }) if cookie >> 32 == self.generation => {
                    self.restart_on_primary(cluster);
                }
                Ok(_) => {} // a completion from before the last failover
                Err(_) => {
                    if cluster.primary() != Some(self.primary) {
                        self.restart_on_primary(cluster);
                    }
                }
            }
        }
        phase
    }
}

fn report(name: &str, length: Duration, mut phase: Phase) {
    phase.latencies_us.sort_unstable();
    let pct = |p: f64| {
        let i = ((phase.latencies_us.len() as f64 - 1.0) * p) as usize;
        phase.latencies_us.get(i).copied().unwrap_or(0)
    };
    println!(
        "{name:<28} {:>10.0} ops/s   p50 {:>6} us   p99 {:>6} us",
        phase.ops as f64 / length.as_secs_f64(),
        pct(0.5),
        pct(0.99)
    );
}

fn demo() -> ExitCode {
    let config = Config {
        window: 64,
        heartbeat_us: 50_000,
        election_delay_us: 500_000,
        election_randomize_max_us: 100_000,
        new_leader_grace_us: 500_000,
        ..Config::default()
    };
    println!("rsl demo: 3 replicas of a key-value store, {CLIENTS} clients, window {}", config.window);
    println!("(one process; channels as the network; in-memory journals with a 100 us flush)\n");
    let mut cluster = LocalCluster::start(3, &config, Duration::from_micros(100), KvStore::default);
    let mut clients =
        Clients { primary: 0, started: vec![Instant::now(); CLIENTS], generation: 0, next_value: 0 };
    let elected = clients.restart_on_primary(&cluster);
    let first = clients.primary;
    println!("replica {} elected primary after {:.0} ms", first + 1, elected.as_secs_f64() * 1e3);
    let length = Duration::from_secs(3);
    let phase = clients.run(&cluster, length);
    report(&format!("steady state (primary {})", first + 1), length, phase);

    let killed_at = Instant::now();
    cluster.stop(first);
    println!("\nkilled primary {} ...", first + 1);
    clients.restart_on_primary(&cluster);
    let phase = clients.run(&cluster, length);
    let failover = killed_at.elapsed().saturating_sub(length);
    println!(
        "replica {} took over; failover within {:.0} ms",
        clients.primary + 1,
        failover.as_secs_f64() * 1e3
    );
    report(&format!("after failover (primary {})", clients.primary + 1), length, phase);

    // Let the secondary hear the last watermark (a heartbeat carries it), then compare.
    // A secondary may still trail by the newest empty heartbeat decree, as in legacy.
    std::thread::sleep(Duration::from_millis(200));
    let reports: Vec<_> = cluster.shutdown().into_iter().flatten().collect();
    for (i, r) in reports.iter().enumerate() {
        println!(
            "survivor {}: executed through decree {}, state digest {:016x}",
            i + 1,
            r.executed,
            r.digest
        );
    }
    if reports.len() == 2 && reports[0].digest == reports[1].digest {
        println!("\nOK: surviving replicas hold identical state");
        ExitCode::SUCCESS
    } else {
        println!("\nFAILED: surviving replicas diverge");
        ExitCode::FAILURE
    }
}
