//! P1 — framework overhead: 3 replicas in one process, channels as the transport, an
//! in-memory journal, empty requests, closed-loop clients (each keeps one request
//! outstanding). Every client count runs pipelined (window 64) and legacy stop-and-wait
//! (window 1), with batching on (≤ 1024 requests per decree) and off (1 per decree); the
//! ratio column compares the two windows measured side by side in this run. A second
//! scenario gives the in-memory journal a 100 µs flush (about one `fdatasync` here), which
//! is the latency pipelining exists to hide.
//!
//! Run: `cargo bench -p rsl-core --bench p1_framework` (table) or
//! `cargo bench -p rsl-core --bench p1_framework -- --json` (one JSON object per row).
//! `P1_SECONDS` sets the measured time per row (default 2).

use bytes::Bytes;
use rsl_core::local::{App, Completion, LocalCluster};
use rsl_core::paxos::Config;
use std::time::{Duration, Instant};

struct Nop(u64);

impl App for Nop {
    fn execute(&mut self, _request: &[u8]) {
        self.0 += 1;
    }

    fn digest(&self) -> u64 {
        self.0
    }
}

struct Row {
    clients: usize,
    window: u64,
    batch: usize,
    ops_per_sec: f64,
    p50_us: u64,
    p99_us: u64,
    messages_per_decree: f64,
    requests_per_decree: f64,
}

fn run(clients: usize, window: u64, batch: usize, flush: Duration, measure: Duration) -> Row {
    let config = Config {
        window,
        batch_requests_max: batch,
        heartbeat_us: 50_000,
        election_delay_us: 200_000,
        election_randomize_max_us: 50_000,
        new_leader_grace_us: 200_000,
        ..Config::default()
    };
    let cluster = LocalCluster::start(3, &config, flush, || Nop(0));
    let primary = loop {
        if let Some(p) = cluster.primary() {
            break p;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let mut started = vec![Instant::now(); clients];
    for (slot, start) in started.iter_mut().enumerate() {
        *start = Instant::now();
        cluster.submit(primary, Bytes::new(), slot as u64);
    }
    let warmup_end = Instant::now() + measure / 4;
    let end = warmup_end + measure;
    let mut latencies_us: Vec<u64> = Vec::new();
    let mut counted = 0u64;
    let (mut messages0, mut decrees0) = (0, 0);
    let mut warm = false;
    while let Ok(completion) = cluster.completions().recv_timeout(Duration::from_secs(5)) {
        let now = Instant::now();
        if !warm && now >= warmup_end {
            warm = true;
            messages0 = cluster.counters.messages.load(std::sync::atomic::Ordering::Relaxed);
            decrees0 = cluster.counters.decrees_passed_on_primary.load(std::sync::atomic::Ordering::Relaxed);
        }
        if now >= end {
            break;
        }
        let slot = match completion {
            Completion::Executed { cookie } => {
                let slot = cookie as usize;
                if warm {
                    latencies_us.push(now.duration_since(started[slot]).as_micros() as u64);
                    counted += 1;
                }
                slot
            }
            Completion::Aborted { cookie, reason } => panic!("request {cookie} aborted: {reason:?}"),
        };
        started[slot] = now;
        cluster.submit(primary, Bytes::new(), slot as u64);
    }
    let messages = cluster.counters.messages.load(std::sync::atomic::Ordering::Relaxed) - messages0;
    let decrees =
        cluster.counters.decrees_passed_on_primary.load(std::sync::atomic::Ordering::Relaxed) - decrees0;
    cluster.shutdown();
    latencies_us.sort_unstable();
    let pct =
        |p: f64| latencies_us.get(((latencies_us.len() as f64 - 1.0) * p) as usize).copied().unwrap_or(0);
    Row {
        clients,
        window,
        batch,
        ops_per_sec: counted as f64 / measure.as_secs_f64(),
        p50_us: pct(0.50),
        p99_us: pct(0.99),
        messages_per_decree: messages as f64 / decrees.max(1) as f64,
        requests_per_decree: counted as f64 / decrees.max(1) as f64,
    }
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let seconds: f64 = std::env::var("P1_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let measure = Duration::from_secs_f64(seconds);
    let scenarios = [("p1_framework", Duration::ZERO), ("p1_flush100us", Duration::from_micros(100))];
    for (scenario, flush) in scenarios {
        if !json {
            println!("\n{scenario}: 3 replicas, in-process channels, in-memory journal (flush {flush:?}), empty requests");
            println!(
                "{:>7} {:>6} {:>5} {:>12} {:>9} {:>9} {:>9} {:>9} {:>11}",
                "clients", "window", "batch", "ops/s", "p50 us", "p99 us", "req/dec", "msg/dec", "vs window1"
            );
        }
        for batch in [1024, 1] {
            for clients in [1, 64, 256, 1024, 4096] {
                let rows = [run(clients, 64, batch, flush, measure), run(clients, 1, batch, flush, measure)];
                let ratio = rows[0].ops_per_sec / rows[1].ops_per_sec.max(1.0);
                for (i, r) in rows.iter().enumerate() {
                    if json {
                        println!(
                            "{{\"scenario\":\"{scenario}\",\"replicas\":3,\"clients\":{},\"window\":{},\"batch\":{},\"ops_per_sec\":{:.0},\"p50_us\":{},\"p99_us\":{}}}",
                            r.clients, r.window, r.batch, r.ops_per_sec, r.p50_us, r.p99_us
                        );
                    } else {
                        let vs = if i == 0 { format!("{ratio:.1}x") } else { String::new() };
                        println!(
                            "{:>7} {:>6} {:>5} {:>12.0} {:>9} {:>9} {:>9.1} {:>9.1} {:>11}",
                            r.clients,
                            r.window,
                            r.batch,
                            r.ops_per_sec,
                            r.p50_us,
                            r.p99_us,
                            r.requests_per_decree,
                            r.messages_per_decree,
                            vs
                        );
                    }
                }
            }
        }
    }
}
