//! Benchmark H: what thread hand-offs cost a one-client commit on this machine, with
//! nothing else in the way. Three "replicas" (threads of one process) exchange a commit's
//! messages over loopback TCP: the primary sends 128 B to both secondaries, each answers
//! 32 B, and the commit ends at the first answer (the second is read before the next
//! round). Side by side, in one run:
//! - `direct`: one thread per replica reads and writes its sockets (run to completion);
//! - `readers`: as the runtime does, a reader thread per socket hands each message to the
//!   replica's engine thread over a channel;
//! - `runtime`: `readers`, plus the primary's client → engine and engine → execute thread
//!   → client hand-offs: the runtime's commit path without the protocol's work.
//!
//! It prints each mode's p50 and p99 and the CPU time of the process per commit (medians
//! over trials), and the ratios to `direct`: compare with `rsl bench --inflight 1`'s
//! `cpu_us_per_op`, the same path with the protocol's work.
//! Run: `cargo bench -p rsl-core --bench hops`.

use crossbeam_channel::{unbounded, Receiver};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::thread;
use std::time::Instant;

const ROUNDS: usize = 4000;
const WARMUP: usize = 400;
const TRIALS: usize = 3;
const REQUEST: usize = 128;
const ANSWER: usize = 32;

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Direct,
    Readers,
    Runtime,
}

/// A connected pair of loopback sockets (primary side, secondary side).
fn pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
    let near = TcpStream::connect(listener.local_addr().expect("bound")).expect("connect");
    let (far, _) = listener.accept().expect("accept");
    for s in [&near, &far] {
        s.set_nodelay(true).expect("nodelay");
    }
    (near, far)
}

/// A secondary: answers every request until its connection closes.
fn secondary(mut stream: TcpStream, mode: Mode) {
    let mut request = [0u8; REQUEST];
    if mode == Mode::Direct {
        while stream.read_exact(&mut request).is_ok() {
            if stream.write_all(&[1; ANSWER]).is_err() {
                return;
            }
        }
        return;
    }
    let (tx, rx) = unbounded::<()>();
    let mut reading = stream.try_clone().expect("clone");
    let reader =
        thread::spawn(move || while reading.read_exact(&mut request).is_ok() && tx.send(()).is_ok() {});
    while rx.recv().is_ok() {
        if stream.write_all(&[1; ANSWER]).is_err() {
            break;
        }
    }
    let _ = reader.join();
}

/// Blocks until one of `streams` is readable; its index.
fn first_readable(streams: &[TcpStream; 2]) -> usize {
    let mut fds =
        streams.each_ref().map(|s| libc::pollfd { fd: s.as_raw_fd(), events: libc::POLLIN, revents: 0 });
    // SAFETY: `fds` is an array of two initialized pollfd entries, passed with its length.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
    assert!(ready > 0, "poll failed");
    fds.iter().position(|f| f.revents & libc::POLLIN != 0).expect("a readable socket")
}

/// One commit round on the primary's engine: both requests out, the first answer in.
/// `answers` is `None` when the engine reads its sockets itself.
fn round(streams: &mut [TcpStream; 2], answers: Option<&Receiver<usize>>) -> Instant {
    for s in streams.iter_mut() {
        s.write_all(&[0; REQUEST]).expect("request sent");
    }
    let mut answer = [0u8; ANSWER];
    let first = match answers {
        Some(rx) => rx.recv().expect("an answer"),
        None => {
            let i = first_readable(streams);
            streams[i].read_exact(&mut answer).expect("an answer");
            i
        }
    };
    let committed = Instant::now();
    match answers {
        Some(rx) => {
            rx.recv().expect("the second answer");
        }
        None => streams[1 - first].read_exact(&mut answer).expect("the second answer"),
    }
    committed
}

/// CPU time this process used so far (all threads), in µs.
fn cpu_micros() -> u64 {
    let mut t = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `t` is a valid timespec for the call to fill.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) } == 0;
    assert!(ok, "clock_gettime failed");
    t.tv_sec as u64 * 1_000_000 + t.tv_nsec as u64 / 1000
}

/// One trial of `mode`: the commit latencies (µs), sorted, and the CPU per commit (µs).
fn trial(mode: Mode) -> (Vec<u64>, u64) {
    let cpu_before = cpu_micros();
    let (near1, far1) = pair();
    let (near2, far2) = pair();
    let secondaries = [far1, far2].map(|far| thread::spawn(move || secondary(far, mode)));
    let mut streams = [near1, near2];
    let (answers_tx, answers) = unbounded::<usize>();
    let readers: Vec<_> = if mode == Mode::Direct {
        Vec::new()
    } else {
        (0..2)
            .map(|i| {
                let (mut reading, tx) = (streams[i].try_clone().expect("clone"), answers_tx.clone());
                thread::spawn(move || {
                    let mut answer = [0u8; ANSWER];
                    while reading.read_exact(&mut answer).is_ok() && tx.send(i).is_ok() {}
                })
            })
            .collect()
    };
    let answers = (mode != Mode::Direct).then_some(&answers);
    let mut latencies = Vec::with_capacity(ROUNDS);
    if mode == Mode::Runtime {
        // Client → engine → (round) → execute thread → client.
        let (to_engine, engine_rx) = unbounded::<()>();
        let (to_execute, execute_rx) = unbounded::<()>();
        let (to_client, client_rx) = unbounded::<()>();
        let executor =
            thread::spawn(move || while execute_rx.recv().is_ok() && to_client.send(()).is_ok() {});
        thread::scope(|scope| {
            scope.spawn(|| {
                while engine_rx.recv().is_ok() {
                    round(&mut streams, answers);
                    let _ = to_execute.send(());
                }
                drop(to_execute);
            });
            for i in 0..WARMUP + ROUNDS {
                let started = Instant::now();
                to_engine.send(()).expect("engine running");
                client_rx.recv().expect("executed");
                if i >= WARMUP {
                    latencies.push(started.elapsed().as_micros() as u64);
                }
            }
            drop(to_engine);
        });
        let _ = executor.join();
    } else {
        for i in 0..WARMUP + ROUNDS {
            let started = Instant::now();
            let committed = round(&mut streams, answers);
            if i >= WARMUP {
                latencies.push((committed - started).as_micros() as u64);
            }
        }
    }
    for s in &streams {
        let _ = s.shutdown(std::net::Shutdown::Both);
    }
    drop(streams);
    drop(answers_tx);
    for t in readers.into_iter().chain(secondaries) {
        let _ = t.join();
    }
    latencies.sort_unstable();
    (latencies, (cpu_micros() - cpu_before) / (WARMUP + ROUNDS) as u64)
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values[values.len() / 2]
}

fn main() {
    let modes = [(Mode::Direct, "direct"), (Mode::Readers, "readers"), (Mode::Runtime, "runtime")];
    let mut p50 = vec![Vec::new(); modes.len()];
    let mut p99 = vec![Vec::new(); modes.len()];
    let mut cpu = vec![Vec::new(); modes.len()];
    for _ in 0..TRIALS {
        for (m, (mode, _)) in modes.iter().enumerate() {
            let (latencies, cpu_per_commit) = trial(*mode);
            p50[m].push(latencies[latencies.len() / 2]);
            p99[m].push(latencies[latencies.len() * 99 / 100]);
            cpu[m].push(cpu_per_commit);
        }
    }
    let [p50, p99, cpu] = [p50, p99, cpu].map(|v| v.into_iter().map(median).collect::<Vec<u64>>());
    println!(
        "one-client commit path, 3 replicas as threads, loopback TCP ({TRIALS} trials × {ROUNDS} rounds)"
    );
    println!("{:<8} {:>8} {:>8} {:>15} {:>10}", "mode", "p50 µs", "p99 µs", "CPU µs/commit", "p50 ratio");
    for (m, (_, name)) in modes.iter().enumerate() {
        let ratio = p50[m] as f64 / p50[0].max(1) as f64;
        println!("{name:<8} {:>8} {:>8} {:>15} {:>9.2}×", p50[m], p99[m], cpu[m], ratio);
    }
}
