//! Benchmark P4: append + persist of one record, and of groups of 16, for the file journal
//! (`fdatasync`, zeros written ahead) and the nvm journal — real (`clwb`/`clflushopt` +
//! `msync`, what this machine can make durable) and emulated persistent memory (`dax`:
//! cache-line write-back and fence only; not durable here, the figure a DAX device would
//! give) — at 64 B, 1 KiB, 4 KiB and 64 KiB requests, side by side in one run. Also the
//! persist primitive alone: writing back and fencing a 4 KiB record's cache lines.
//! Medians and p99 per group; the machine is shared.
//!
//! Run: `cargo bench -p rsl-core --bench p4_storage` (table) or `-- --json` (one JSON
//! object per row). `RSL_BENCH_DIR` picks the directory (default: the system temp dir).

use bytes::Bytes;
use rsl_core::paxos::{Ballot, Decree, MemberId, Record, Vote, VoteBody};
use rsl_core::storage::{FileJournal, FileOptions, FlushInstruction, Journal, NvmJournal, NvmOptions};
use rsl_core::wire::Version;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZES: [usize; 4] = [64, 1024, 4096, 65536];
const GROUPS: [usize; 2] = [1, 16];

fn vote(decree: u64, bytes: usize) -> Record {
    let ballot = Ballot::new(1, MemberId::new("1").expect("valid id"));
    let mut vote = Vote::empty(Decree(decree), ballot, 1, Decree(decree - 1));
    vote.body = VoteBody::Requests(vec![Bytes::from(vec![0x5a; bytes])]);
    Record::Vote(Arc::new(vote))
}

/// (median, p99) of append-`group`-then-sync rounds of `bytes`-byte requests.
fn measure<J: Journal>(dir: &Path, options: J::Options, bytes: usize, group: usize) -> (Duration, Duration) {
    let _ = std::fs::remove_dir_all(dir);
    let (mut journal, _) = J::open(dir, options).expect("open");
    let rounds = (4000 / group).clamp(50, 400) + 10;
    let mut decree = 1;
    let mut samples = Vec::with_capacity(rounds);
    for round in 0..rounds {
        let records: Vec<Record> = (0..group as u64).map(|i| vote(decree + i, bytes)).collect();
        decree += group as u64;
        let start = Instant::now();
        for r in &records {
            journal.append(r).expect("append");
        }
        journal.sync().expect("sync");
        if round >= 10 {
            samples.push(start.elapsed()); // the first ten warm up
        }
    }
    drop(journal);
    std::fs::remove_dir_all(dir).expect("clean up");
    samples.sort();
    (samples[samples.len() / 2], samples[samples.len() * 99 / 100])
}

/// Median time to write back and fence the cache lines of a 4 KiB record just written.
fn persist_4k(flush: FlushInstruction) -> Duration {
    let mut buffer = vec![0u8; 4096 + 64];
    let offset = buffer.as_ptr().align_offset(64);
    let mut samples: Vec<Duration> = (0..2000u32)
        .map(|i| {
            let record = &mut buffer[offset..offset + 4096];
            record.fill(i as u8);
            let start = Instant::now();
            flush.persist(record);
            start.elapsed()
        })
        .collect();
    samples.sort();
    samples[samples.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let json = std::env::args().any(|a| a == "--json");
    let base = std::env::var_os("RSL_BENCH_DIR").map_or_else(std::env::temp_dir, std::path::PathBuf::from);
    let base = base.join(format!("rsl-p4-{}", std::process::id()));
    let flush = FlushInstruction::detect();
    let persist = persist_4k(flush);
    if json {
        println!("{{\"bench\":\"p4\",\"row\":\"persist\",\"instruction\":\"{flush:?}\",\"bytes\":4096,\"median_us\":{:.3}}}", us(persist));
    } else {
        println!("P4: {flush:?} + sfence of a 4 KiB record's 64 cache lines: median {:.3} µs", us(persist));
        println!("append + persist, median (p99) µs per group; ratios are file / nvm at the median");
        println!(
            "{:>6} {:>3} {:>20} {:>20} {:>20} {:>9} {:>9}",
            "bytes", "N", "file fdatasync", "nvm clwb+msync", "nvm dax (emulated)", "file/nvm", "file/dax"
        );
    }
    for bytes in SIZES {
        for group in GROUPS {
            let file =
                measure::<FileJournal>(&base.join("file"), FileOptions::new(Version::V6), bytes, group);
            let nvm = measure::<NvmJournal>(&base.join("nvm"), NvmOptions::new(Version::V6), bytes, group);
            let dax = NvmOptions { dax: true, ..NvmOptions::new(Version::V6) };
            let dax = measure::<NvmJournal>(&base.join("dax"), dax, bytes, group);
            let (f, n, d) = (us(file.0), us(nvm.0), us(dax.0));
            if json {
                println!(
                    "{{\"bench\":\"p4\",\"bytes\":{bytes},\"group\":{group},\"file_median_us\":{f:.1},\"file_p99_us\":{:.1},\
                     \"nvm_median_us\":{n:.1},\"nvm_p99_us\":{:.1},\"dax_median_us\":{d:.2},\"dax_p99_us\":{:.2},\
                     \"file_over_nvm\":{:.2},\"file_over_dax\":{:.1}}}",
                    us(file.1),
                    us(nvm.1),
                    us(dax.1),
                    f / n,
                    f / d
                );
            } else {
                println!(
                    "{bytes:>6} {group:>3} {:>20} {:>20} {:>20} {:>9.2} {:>9.1}",
                    format!("{f:.1} ({:.1})", us(file.1)),
                    format!("{n:.1} ({:.1})", us(nvm.1)),
                    format!("{d:.2} ({:.2})", us(dax.1)),
                    f / n,
                    f / d
                );
            }
        }
    }
    let _ = std::fs::remove_dir_all(&base);
}
