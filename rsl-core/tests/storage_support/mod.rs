//! Shared by the storage tests: unique temp directories that clean up after themselves,
//! and record builders.

#![allow(dead_code)] // each test binary uses a different subset

use bytes::Bytes;
use rsl_core::paxos::{Ballot, Decree, MemberId, Record, Vote, VoteBody};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!("rsl-storage-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn ballot(number: u32) -> Ballot {
    Ballot::new(number, MemberId::new("1").expect("valid id"))
}

/// A vote with the implied watermark (`decree − 1`), so any version carries it.
pub fn vote(decree: u64, number: u32, requests: &[&[u8]]) -> Record {
    let mut v = Vote::empty(Decree(decree), ballot(number), 1, Decree(decree.saturating_sub(1)));
    v.body = VoteBody::Requests(requests.iter().map(|r| Bytes::copy_from_slice(r)).collect());
    Record::Vote(Arc::new(v))
}

/// A learned vote: journaled with `passed = decree`, which needs version 7.
pub fn learned_vote(decree: u64, number: u32) -> Record {
    let mut v = Vote::empty(Decree(decree), ballot(number), 1, Decree(decree));
    v.body = VoteBody::Requests(vec![Bytes::from_static(b"learned")]);
    Record::Vote(Arc::new(v))
}

pub fn promise(number: u32) -> Record {
    Record::Promise(ballot(number))
}

/// A mixed sequence: votes of one to three 512-byte blocks, promises, a re-vote.
pub fn sample_records() -> Vec<Record> {
    vec![
        promise(1),
        vote(1, 1, &[b"first"]),
        vote(2, 1, &[&[7u8; 600], b"x"]),
        promise(2),
        vote(2, 2, &[&[7u8; 600], b"x"]),
        vote(3, 2, &[&[9u8; 1200]]),
    ]
}
