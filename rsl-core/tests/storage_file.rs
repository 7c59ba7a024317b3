//! The file journal: legacy `.log` files (§5.2). Round trips, group commit, the tolerant
//! restart rules (every torn-tail shape the legacy restart tests use, and a tear at every
//! byte offset of the last record), corruption in the middle, rotation, and a legacy
//! version-4 log assembled by hand from the spec's tables.

mod storage_support;

use bytes::Bytes;
use rsl_core::paxos::{Decree, MemberId, Record, VoteBody};
use rsl_core::storage::{read_log_dir, FileJournal, FileOptions, Journal, RecoverError};
use rsl_core::wire::{fingerprint, Version};
use std::path::Path;
use storage_support::{learned_vote, promise, sample_records, vote, TempDir};

fn options(version: Version) -> FileOptions {
    FileOptions { preallocate_bytes: 0, ..FileOptions::new(version) }
}

fn write_journal(dir: &Path, opts: FileOptions, records: &[Record]) {
    let (mut journal, recovery) = FileJournal::open(dir, opts).expect("open");
    assert!(recovery.recovered.records.is_empty());
    for r in records {
        journal.append(r).expect("append");
    }
    journal.sync().expect("sync");
}

fn records_in(dir: &Path) -> Vec<Record> {
    read_log_dir(dir).expect("recover").recovered.records
}

fn log_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<(u64, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter_map(|n| Some((n.strip_suffix(".log")?.parse().ok()?, n)))
        .collect();
    names.sort();
    names.into_iter().map(|(_, n)| n).collect()
}

#[test]
fn appended_records_come_back_in_order_in_every_version() {
    for version in Version::ALL {
        for preallocate_bytes in [0, 1 << 20] {
            let dir = TempDir::new("roundtrip");
            let opts = FileOptions { preallocate_bytes, ..FileOptions::new(version) };
            write_journal(dir.path(), opts.clone(), &sample_records());
            assert_eq!(log_names(dir.path()), ["0.log"]);
            let (_, recovery) = FileJournal::open(dir.path(), opts).expect("reopen");
            assert_eq!(recovery.recovered.records, sample_records(), "{version:?}");
            assert_eq!(recovery.cut, None);
        }
    }
}

#[test]
fn every_record_is_padded_to_512_in_its_version() {
    let dir = TempDir::new("padding");
    write_journal(dir.path(), options(Version::V4), &[vote(1, 1, &[b"a"]), learned_vote(2, 1)]);
    let bytes = std::fs::read(dir.path().join("0.log")).unwrap();
    assert_eq!(bytes.len(), 1024);
    assert_eq!(u16::from_le_bytes([bytes[0], bytes[1]]), 4);
    // The learned vote needs the version-7 watermark.
    assert_eq!(u16::from_le_bytes([bytes[512], bytes[513]]), 7);
    assert_eq!(records_in(dir.path()), [vote(1, 1, &[b"a"]), learned_vote(2, 1)]);
}

#[test]
fn appending_continues_after_the_last_record_across_restarts() {
    let dir = TempDir::new("restart");
    let records = sample_records();
    write_journal(dir.path(), FileOptions::new(Version::V6), &records[..3]);
    {
        let (mut journal, recovery) = FileJournal::open(dir.path(), FileOptions::new(Version::V6)).unwrap();
        assert_eq!(recovery.recovered.records, records[..3]);
        for r in &records[3..] {
            journal.append(r).unwrap();
        }
        journal.sync().unwrap();
    }
    assert_eq!(records_in(dir.path()), records);
}

/// The log of `sample_records`, and the offset where its last record starts.
fn sample_log() -> (Vec<u8>, usize) {
    let dir = TempDir::new("sample");
    let records = sample_records();
    write_journal(dir.path(), options(Version::V6), &records[..records.len() - 1]);
    let last_at = std::fs::metadata(dir.path().join("0.log")).unwrap().len() as usize;
    drop(dir);
    let dir = TempDir::new("sample");
    write_journal(dir.path(), options(Version::V6), &records);
    (std::fs::read(dir.path().join("0.log")).unwrap(), last_at)
}

fn recover_bytes(bytes: &[u8]) -> Result<rsl_core::storage::Recovery, RecoverError> {
    let dir = TempDir::new("bytes");
    std::fs::write(dir.path().join("0.log"), bytes).unwrap();
    read_log_dir(dir.path())
}

#[test]
fn a_tear_at_any_byte_of_the_last_record_recovers_everything_before_it() {
    let (log, last_at) = sample_log();
    let records = sample_records();
    assert!(log.len() - last_at > 1024, "the last record spans several blocks");
    for cut in last_at..=log.len() {
        let recovery = recover_bytes(&log[..cut]).unwrap_or_else(|e| panic!("cut at {cut}: {e}"));
        let expected = if cut == log.len() { &records[..] } else { &records[..records.len() - 1] };
        assert_eq!(recovery.recovered.records, expected, "cut at {cut}");
        assert_eq!(recovery.cut.is_some(), cut > last_at && cut < log.len(), "cut at {cut}");
    }
}

#[test]
fn writing_after_a_tear_replaces_the_torn_bytes() {
    let (log, last_at) = sample_log();
    let records = sample_records();
    for cut in (last_at + 1..log.len()).step_by(97) {
        let dir = TempDir::new("rewrite");
        std::fs::write(dir.path().join("0.log"), &log[..cut]).unwrap();
        let (mut journal, recovery) = FileJournal::open(dir.path(), options(Version::V6)).unwrap();
        let torn = recovery.cut.expect("a torn tail");
        assert_eq!((torn.offset, torn.len), (last_at as u64, (cut - last_at) as u64));
        let short = vote(3, 3, &[b"short"]);
        journal.append(&short).unwrap();
        journal.sync().unwrap();
        let mut expected = records[..records.len() - 1].to_vec();
        expected.push(short);
        assert_eq!(records_in(dir.path()), expected, "cut at {cut}");
    }
}

#[test]
fn zero_tails_and_partial_vote_fragments_are_the_end_of_the_log() {
    let (log, last_at) = sample_log();
    let records = sample_records();
    // Legacy restart test: 5 KiB of zeros after the last record.
    let mut zeros = log.clone();
    zeros.extend(vec![0; 10 * 512]);
    let recovery = recover_bytes(&zeros).unwrap();
    assert_eq!((recovery.recovered.records, recovery.cut), (records.clone(), None));
    // Legacy restart test: a partial 512-byte piece of a (multi-block) vote.
    let mut fragment = log.clone();
    fragment.extend_from_slice(&log[last_at..last_at + 512]);
    assert_eq!(recover_bytes(&fragment).unwrap().recovered.records, records);
    // A one-block vote whose tail never reached the disk: checksum mismatch, zeros after.
    let mut half = log.clone();
    half.extend_from_slice(&log[..100]); // the first record is a one-block, 176-byte Prepare
    half.resize(half.len() + 412 + 4096, 0);
    let recovery = recover_bytes(&half).unwrap();
    assert_eq!(recovery.recovered.records, records);
    assert_eq!(recovery.cut.map(|c| c.offset), Some(log.len() as u64));
}

fn assert_corrupt_at(result: Result<rsl_core::storage::Recovery, RecoverError>, offset: u64) {
    match result {
        Err(RecoverError::Corrupt { path, offset: at, why }) => {
            assert_eq!(at, offset, "{why}");
            assert!(path.ends_with("0.log"));
        }
        other => panic!("expected corruption at {offset}, got {other:?}"),
    }
}

#[test]
fn damage_in_the_middle_is_an_error_naming_file_and_offset() {
    let (log, last_at) = sample_log();
    // A flipped bit inside the second record's message: valid records follow it.
    let mut flipped = log.clone();
    flipped[512 + 90] ^= 1;
    assert_corrupt_at(recover_bytes(&flipped), 512);
    // A flipped bit in the last record, but non-zero bytes after it.
    let mut flipped = log.clone();
    flipped[last_at + 300] ^= 1;
    flipped.extend_from_slice(&log[..512]);
    assert_corrupt_at(recover_bytes(&flipped), last_at as u64);
    // A zero block with records after it.
    let mut hole = log[..512].to_vec();
    hole.extend(vec![0; 512]);
    hole.extend_from_slice(&log[512..]);
    assert_corrupt_at(recover_bytes(&hole), 512);
    // A message id that does not belong in a log (VoteAccepted = 2), checksum and all.
    let mut id = log.clone();
    id[18] = 2;
    assert_corrupt_at(recover_bytes(&id), 0);
}

#[test]
fn a_torn_record_in_an_older_log_is_an_error() {
    let (log, last_at) = sample_log();
    let dir = TempDir::new("older");
    std::fs::write(dir.path().join("0.log"), &log[..last_at + 600]).unwrap();
    std::fs::write(dir.path().join("3.log"), &log[last_at..]).unwrap();
    assert!(
        matches!(read_log_dir(dir.path()), Err(RecoverError::Corrupt { offset, .. }) if offset == last_at as u64)
    );
}

#[test]
fn log_names_must_be_decimal() {
    let dir = TempDir::new("names");
    std::fs::write(dir.path().join("x1.log"), b"").unwrap();
    assert!(matches!(read_log_dir(dir.path()), Err(RecoverError::BadFileName(_))));
    std::fs::remove_file(dir.path().join("x1.log")).unwrap();
    std::fs::write(dir.path().join(".hidden.log"), b"junk").unwrap();
    std::fs::write(dir.path().join("5.codex"), b"junk").unwrap();
    assert!(read_log_dir(dir.path()).unwrap().recovered.records.is_empty());
}

#[test]
fn rotation_starts_a_file_named_after_its_first_decree() {
    let dir = TempDir::new("rotation");
    let opts = FileOptions { max_log_len_bytes: 2048, log_len_randomize_percent: 0, ..options(Version::V6) };
    let mut written = Vec::new();
    {
        let (mut journal, _) = FileJournal::open(dir.path(), opts.clone()).unwrap();
        for d in 1..=20 {
            // A re-vote and a promise never start a file: only a new decree does.
            let group = [vote(d, 1, &[b"v"]), promise(2), vote(d, 2, &[b"v"])];
            for r in group {
                journal.append(&r).unwrap();
                written.push(r);
            }
            if d % 3 == 0 {
                journal.sync().unwrap();
            }
        }
        journal.sync().unwrap();
    }
    // Three 512-byte records per decree: a file passes 2048 bytes after two decrees.
    assert_eq!(
        log_names(dir.path()),
        ["0.log", "3.log", "5.log", "7.log", "9.log", "11.log", "13.log", "15.log", "17.log", "19.log"]
    );
    for name in &log_names(dir.path())[1..] {
        let sub = TempDir::new("one-file");
        std::fs::copy(dir.path().join(name), sub.path().join("0.log")).unwrap();
        let first = records_in(sub.path()).into_iter().next();
        let Some(Record::Vote(v)) = first else { panic!("{name} starts with {first:?}") };
        assert_eq!(format!("{}.log", v.decree), *name);
    }
    assert_eq!(FileJournal::open(dir.path(), opts).unwrap().1.recovered.records, written);
}

#[test]
fn a_file_starts_only_at_the_next_decree_so_a_missing_file_shows_at_its_seam() {
    let dir = TempDir::new("seams");
    let opts = FileOptions { max_log_len_bytes: 1024, log_len_randomize_percent: 0, ..options(Version::V6) };
    {
        let (mut journal, _) = FileJournal::open(dir.path(), opts.clone()).unwrap();
        // Pipelined arrival with holes: 1 2 4 3 5 7 6 8 …; a vote after a hole never starts a file.
        for d in [1, 2, 4, 3, 5, 7, 6, 8, 10, 9, 11, 12, 14, 13, 15, 16] {
            journal.append(&vote(d, 1, &[b"v"])).unwrap();
            journal.sync().unwrap();
        }
    }
    let names = log_names(dir.path());
    assert!(names.len() >= 4, "{names:?}");
    let seams = read_log_dir(dir.path()).unwrap().seams;
    assert_eq!(seams.len(), names.len() - 1);
    for seam in &seams {
        assert_eq!(seam.highest_before, Some(seam.first_decree - 1), "{seam:?}");
        assert!(!seam.is_gap());
    }
    std::fs::remove_file(dir.path().join(&names[2])).unwrap();
    let seams = read_log_dir(dir.path()).unwrap().seams;
    let gap = seams.iter().find(|s| s.is_gap()).expect("the missing file shows");
    assert_eq!(gap.path.file_name().unwrap().to_str().unwrap(), names[3]);
}

#[test]
fn rotation_thresholds_are_randomised_per_file() {
    let dir = TempDir::new("randomised");
    let opts = FileOptions {
        max_log_len_bytes: 10_000,
        log_len_randomize_percent: 50,
        seed: 7,
        ..options(Version::V6)
    };
    let (mut journal, _) = FileJournal::open(dir.path(), opts).unwrap();
    for d in 1..=400 {
        journal.append(&vote(d, 1, &[b"v"])).unwrap();
    }
    journal.sync().unwrap();
    let names = log_names(dir.path());
    let sizes: Vec<u64> =
        names.iter().map(|n| std::fs::metadata(dir.path().join(n)).unwrap().len()).collect();
    let full = &sizes[..sizes.len() - 1];
    assert!(full.iter().all(|&s| (5_000..=15_000 + 512).contains(&s)), "{sizes:?}");
    assert!(full.iter().any(|&s| s != full[0]), "thresholds differ: {sizes:?}");
}

// ---- a legacy version-4 log, assembled by hand (§4.14 offsets, §4.13 bodies) ----

fn put(buf: &mut [u8], at: usize, bytes: &[u8]) {
    buf[at..at + bytes.len()].copy_from_slice(bytes);
}

/// A v4 header: version@0, length@2, checksum@6, magic@14, id@18, member id (64 B)@20,
/// decree@84, configuration@92, ballot number@96, ballot member (64 B)@100.
fn v4_header(id: u16, decree: u64, ballot: u32) -> Vec<u8> {
    let mut h = vec![0u8; 164];
    put(&mut h, 0, &4u16.to_le_bytes());
    put(&mut h, 14, &0xF00D_FACEu32.to_le_bytes());
    put(&mut h, 18, &id.to_le_bytes());
    put(&mut h, 20, b"alpha");
    put(&mut h, 84, &decree.to_le_bytes());
    put(&mut h, 92, &1u32.to_le_bytes());
    put(&mut h, 96, &ballot.to_le_bytes());
    put(&mut h, 100, b"alpha");
    h
}

/// Fills in length and checksum, then pads to 512 as legacy's log writer does.
fn seal_and_pad(mut m: Vec<u8>) -> Vec<u8> {
    let len = m.len() as u32;
    put(&mut m, 2, &len.to_le_bytes());
    let checksum = fingerprint(&m[14..]);
    put(&mut m, 6, &checksum.to_le_bytes());
    m.resize(m.len().div_ceil(512) * 512, 0);
    m
}

fn v4_vote(decree: u64, requests: &[&[u8]]) -> Vec<u8> {
    let mut m = v4_header(1, decree, 3);
    m.extend(2u32.to_le_bytes()); // primary cookie
    m.extend(b"pc");
    m.push(0); // isReconfiguration
    for r in requests {
        m.extend((r.len() as u32).to_le_bytes());
        m.extend(*r);
    }
    seal_and_pad(m)
}

#[test]
fn a_hand_assembled_legacy_v4_log_is_read() {
    let dir = TempDir::new("legacy-v4");
    let mut log = seal_and_pad({
        let mut prepare = v4_header(3, 0, 3);
        prepare.extend(0u32.to_le_bytes()); // empty primary cookie
        prepare
    });
    log.extend(v4_vote(1, &[b"hello", b"world"]));
    log.extend(seal_and_pad(v4_header(10, 1, 3))); // ReconfigurationDecision
    log.extend(v4_vote(2, &[&[0xAB; 700]]));
    log.extend(vec![0; 5 * 1024]); // legacy restart test: zeros after the last record
    std::fs::write(dir.path().join("0.log"), &log).unwrap();

    let (mut journal, recovery) = FileJournal::open(dir.path(), options(Version::V4)).unwrap();
    assert_eq!(recovery.reconfiguration_decisions, 1);
    let records = &recovery.recovered.records;
    assert_eq!(records.len(), 3);
    let alpha = MemberId::new("alpha").unwrap();
    assert_eq!(records[0], Record::Promise(rsl_core::paxos::Ballot::new(3, alpha.clone())));
    let Record::Vote(v1) = &records[1] else { panic!("{:?}", records[1]) };
    assert_eq!((v1.decree, v1.passed, v1.configuration), (Decree(1), Decree(0), 1));
    assert_eq!(v1.ballot, rsl_core::paxos::Ballot::new(3, alpha));
    assert_eq!(v1.primary_cookie, Bytes::from_static(b"pc"));
    assert_eq!(v1.body, VoteBody::Requests(vec![Bytes::from_static(b"hello"), Bytes::from_static(b"world")]));
    let Record::Vote(v2) = &records[2] else { panic!("{:?}", records[2]) };
    assert_eq!(v2.requests(), [Bytes::from(vec![0xAB; 700])]);

    // Writing continues in place of the zeros, in version 4, byte-identical to legacy's.
    let next = Record::Vote(std::sync::Arc::new({
        let mut v = (**v2).clone();
        v.decree = Decree(3);
        v.passed = Decree(2);
        v
    }));
    journal.append(&next).unwrap();
    journal.sync().unwrap();
    let after = std::fs::read(dir.path().join("0.log")).unwrap();
    let end = 3 * 512 + 1024;
    assert!(after[..end] == log[..end], "the legacy records are untouched");
    assert!(after[end..] == v4_vote(3, &[&[0xAB; 700]]), "the new record is what legacy would write");
}
