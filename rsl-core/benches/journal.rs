//! Journal benchmark: append + sync of groups of 1, 8 and 64 records carrying one 4 KiB
//! request each (group 1 is "one 4 KiB record"), for the file journal (with and without
//! zeros written ahead) and the nvm journal, side by side. Prints the median time per
//! group and per record, and the file/nvm ratio. The machine is shared: medians only.
//!
//! Run: `cargo bench -p rsl-core --bench journal` (`RSL_BENCH_DIR` picks the directory;
//! the default is the system temp dir).

use bytes::Bytes;
use rsl_core::paxos::{Ballot, Decree, MemberId, Record, Vote, VoteBody};
use rsl_core::storage::{FileJournal, FileOptions, Journal, NvmJournal, NvmOptions};
use rsl_core::wire::Version;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

const REQUEST_BYTES: usize = 4096;
const GROUPS: [usize; 3] = [1, 8, 64];

fn vote(decree: u64) -> Record {
    let ballot = Ballot::new(1, MemberId::new("1").expect("valid id"));
    let mut vote = Vote::empty(Decree(decree), ballot, 1, Decree(decree.saturating_sub(1)));
    vote.body = VoteBody::Requests(vec![Bytes::from(vec![0x5a; REQUEST_BYTES])]);
    Record::Vote(Arc::new(vote))
}

/// Median time of one append-`group`-then-sync round, over `rounds` rounds.
fn measure<J: Journal>(journal: &mut J, group: usize, rounds: usize, decree: &mut u64) -> Duration {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let records: Vec<Record> = (0..group).map(|i| vote(*decree + i as u64)).collect();
        *decree += group as u64;
        let start = Instant::now();
        for r in &records {
            journal.append(r).expect("append");
        }
        journal.sync().expect("sync");
        samples.push(start.elapsed());
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn run<J: Journal>(dir: &PathBuf, options: J::Options) -> Vec<Duration> {
    let _ = std::fs::remove_dir_all(dir);
    let (mut journal, _) = J::open(dir, options).expect("open");
    let mut decree = 1;
    measure(&mut journal, 1, 20, &mut decree); // warm-up
    let medians =
        GROUPS.iter().map(|&g| measure(&mut journal, g, (2000 / g).clamp(40, 400), &mut decree)).collect();
    drop(journal);
    std::fs::remove_dir_all(dir).expect("clean up");
    medians
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() {
    let base = std::env::var_os("RSL_BENCH_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
    let base = base.join(format!("rsl-journal-bench-{}", std::process::id()));
    let mut plain = FileOptions::new(Version::V6);
    plain.preallocate_bytes = 0;
    let file_plain = run::<FileJournal>(&base.join("file-plain"), plain);
    let file = run::<FileJournal>(&base.join("file"), FileOptions::new(Version::V6));
    let nvm_options = NvmOptions::new(Version::V6);
    let flush = format!("{:?}", nvm_options.flush);
    let nvm = run::<NvmJournal>(&base.join("nvm"), nvm_options);
    let _ = std::fs::remove_dir_all(&base);

    println!("journal: append + sync of N records of one {REQUEST_BYTES}-byte request, median µs per group");
    println!("(file = fdatasync, 1 MiB zeros ahead; file-no-prealloc = appending; nvm = {flush} + msync)");
    println!(
        "{:>5} {:>18} {:>12} {:>10} {:>13} {:>14}",
        "N", "file-no-prealloc", "file", "nvm", "file/nvm", "nvm µs/record"
    );
    for (i, g) in GROUPS.iter().enumerate() {
        let (p, f, n) = (us(file_plain[i]), us(file[i]), us(nvm[i]));
        println!("{g:>5} {p:>18.1} {f:>12.1} {n:>10.1} {:>13.2} {:>14.1}", f / n, n / *g as f64);
    }
}
