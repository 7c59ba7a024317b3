//! The in-process cluster that the demo and the benchmark run on: requests submitted to
//! the primary all execute, in the same order on every replica, and a new primary takes
//! over when the old one stops.

use bytes::Bytes;
use rsl_core::local::{App, Completion, LocalCluster};
use rsl_core::paxos::Config;
use std::time::{Duration, Instant};

/// Records every request it executes, in order.
#[derive(Default)]
struct Recorder(Vec<u64>);

impl App for Recorder {
    fn execute(&mut self, request: &[u8]) {
        self.0.push(u64::from_le_bytes(request.try_into().expect("8-byte request")));
    }

    fn digest(&self) -> u64 {
        self.0.iter().fold(0xcbf2_9ce4_8422_2325, |h, v| (h ^ v).wrapping_mul(0x0100_0000_01b3))
    }
}

fn config(window: u64) -> Config {
    Config {
        window,
        heartbeat_us: 20_000,
        election_delay_us: 150_000,
        election_randomize_max_us: 30_000,
        new_leader_grace_us: 150_000,
        ..Config::default()
    }
}

fn wait_for_primary(cluster: &LocalCluster) -> usize {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Some(p) = cluster.primary() {
            return p;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    panic!("no primary within 10 s");
}

/// Submits requests `first..first + count` to the primary, 64 at a time, and waits for
/// each to execute there.
fn replicate(cluster: &LocalCluster, first: u64, count: u64) {
    let primary = wait_for_primary(cluster);
    let end = first + count;
    let mut next = first;
    let submit = |next: &mut u64| {
        cluster.submit(primary, Bytes::copy_from_slice(&next.to_le_bytes()), *next);
        *next += 1;
    };
    while next < end.min(first + 64) {
        submit(&mut next);
    }
    for _ in 0..count {
        match cluster.completions().recv_timeout(Duration::from_secs(10)).expect("a completion within 10 s") {
            Completion::Executed { .. } if next < end => submit(&mut next),
            Completion::Executed { .. } => {}
            Completion::Aborted { cookie, reason } => {
                panic!("request {cookie} aborted ({reason:?}) on a stable cluster")
            }
        }
    }
}

#[test]
fn every_request_executes_in_the_same_order_on_every_replica() {
    for window in [1, 16] {
        let cluster = LocalCluster::start(3, &config(window), Duration::ZERO, Recorder::default);
        replicate(&cluster, 1, 2_000);
        // A heartbeat carries the last watermark to the secondaries.
        std::thread::sleep(Duration::from_millis(100));
        let reports: Vec<_> = cluster.shutdown().into_iter().map(|r| r.expect("running")).collect();
        assert!(reports.iter().all(|r| r.digest == reports[0].digest), "window {window}: {reports:?}");
        assert!(reports.iter().all(|r| r.executed.0 >= 1), "window {window}: nothing executed");
    }
}

#[test]
fn a_new_primary_takes_over_when_the_primary_stops() {
    let mut cluster = LocalCluster::start(3, &config(8), Duration::from_micros(50), Recorder::default);
    replicate(&cluster, 1, 500);
    let old = wait_for_primary(&cluster);
    cluster.stop(old);
    let new = wait_for_primary(&cluster);
    assert_ne!(new, old);
    replicate(&cluster, 501, 500);
    std::thread::sleep(Duration::from_millis(100));
    let reports: Vec<_> = cluster.shutdown().into_iter().flatten().collect();
    assert_eq!(reports.len(), 2);
    assert_eq!(reports[0].digest, reports[1].digest, "{reports:?}");
}
