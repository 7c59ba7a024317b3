//! The nvm journal: round trips with every flush instruction, growth, crash simulation
//! (torn and unflushed records above the commit pointer are cut; a bad record below it is
//! an error), and the legacy `.log` stream read back by the file journal's reader.

mod storage_support;

use rsl_core::paxos::Record;
use rsl_core::storage::{read_log_dir, FlushInstruction, Journal, NvmJournal, NvmOptions, RecoverError};
use rsl_core::wire::Version;
use std::path::Path;
use storage_support::{learned_vote, promise, sample_records, vote, TempDir};

fn options() -> NvmOptions {
    NvmOptions { capacity_bytes: 4096, ..NvmOptions::new(Version::V6) }
}

fn write(dir: &Path, opts: NvmOptions, records: &[Record]) {
    let (mut journal, recovery) = NvmJournal::open(dir, opts).expect("open");
    assert!(recovery.recovered.records.is_empty());
    for r in records {
        journal.append(r).expect("append");
    }
    journal.sync().expect("sync");
}

fn journal_file(dir: &Path) -> std::path::PathBuf {
    dir.join("journal.nvm")
}

#[test]
fn records_round_trip_with_every_flush_instruction_and_grow_the_file() {
    let mut records = sample_records();
    records.extend((4..40).map(|d| vote(d, 2, &[&[d as u8; 300]])));
    records.push(learned_vote(40, 2));
    let detected = FlushInstruction::detect();
    let all = [FlushInstruction::Clwb, FlushInstruction::Clflushopt, FlushInstruction::Clflush];
    // Only what this CPU supports: executing the others would fault.
    let usable = all.iter().skip_while(|&&f| f != detected);
    for &flush in usable {
        let dir = TempDir::new("nvm-roundtrip");
        write(dir.path(), NvmOptions { flush, ..options() }, &records);
        assert!(std::fs::metadata(journal_file(dir.path())).unwrap().len() > 4096, "grew");
        let (journal, recovery) = NvmJournal::open(dir.path(), options()).unwrap();
        assert_eq!(recovery.recovered.records, records, "{flush:?}");
        assert_eq!(recovery.cut, None);
        assert_eq!(journal.flush_instruction(), detected);
    }
}

#[test]
fn appending_continues_after_a_restart() {
    let dir = TempDir::new("nvm-restart");
    let records = sample_records();
    write(dir.path(), options(), &records[..2]);
    {
        let (mut journal, recovery) = NvmJournal::open(dir.path(), options()).unwrap();
        assert_eq!(recovery.recovered.records, records[..2]);
        for r in &records[2..] {
            journal.append(r).unwrap();
        }
        journal.sync().unwrap();
    }
    assert_eq!(NvmJournal::open(dir.path(), options()).unwrap().1.recovered.records, records);
}

/// Offsets of each record in a journal of `records` (from its legacy size, 64-aligned).
fn record_offsets(records: &[Record]) -> (Vec<u8>, Vec<usize>) {
    let dir = TempDir::new("nvm-offsets");
    let mut offsets = vec![64];
    for n in 1..=records.len() {
        let sub = TempDir::new("nvm-offsets-n");
        write(sub.path(), options(), &records[..n]);
        let bytes = std::fs::read(journal_file(sub.path())).unwrap();
        // The commit pointer says where the last record ends.
        offsets.push(u64::from_le_bytes(bytes[8..16].try_into().unwrap()) as usize);
    }
    write(dir.path(), options(), records);
    (std::fs::read(journal_file(dir.path())).unwrap(), offsets)
}

fn recover_image(image: &[u8]) -> Result<rsl_core::storage::Recovery, RecoverError> {
    let dir = TempDir::new("nvm-image");
    std::fs::write(journal_file(dir.path()), image).unwrap();
    let result = NvmJournal::open(dir.path(), options()).map(|(_, r)| r);
    if result.is_ok() {
        // The cut was zeroed: a second recovery sees the same records and nothing to cut.
        let again = NvmJournal::open(dir.path(), options()).unwrap().1;
        assert_eq!(again.cut, None);
    }
    result
}

#[test]
fn a_torn_or_unflushed_last_record_is_cut_at_any_byte() {
    let records = sample_records();
    let (image, offsets) = record_offsets(&records);
    let (last_at, end) = (offsets[records.len() - 1], offsets[records.len()]);
    let mut image = image;
    // The crash came before the last sync finished: the pointer still names the previous end.
    image[8..16].copy_from_slice(&(last_at as u64).to_le_bytes());
    // Bytes of the record itself; the padding after them is zero anyway.
    let len = u32::from_le_bytes(image[last_at + 8..last_at + 12].try_into().unwrap()) as usize;
    assert!(last_at + 16 + len <= end);
    for lost in last_at..last_at + 16 + len {
        // Everything from `lost` on never reached the media.
        let mut torn = image.clone();
        torn[lost..end].fill(0);
        let recovery = recover_image(&torn).unwrap_or_else(|e| panic!("lost from {lost}: {e}"));
        assert_eq!(recovery.recovered.records, records[..records.len() - 1], "lost from {lost}");
        assert_eq!(recovery.cut.is_some(), lost > last_at, "lost from {lost}");
    }
    // One line of the record never written back, the rest was.
    let mut hole = image.clone();
    hole[last_at + 1024..last_at + 1088].fill(0); // inside the 1200-byte request
    assert_eq!(recover_image(&hole).unwrap().recovered.records, records[..records.len() - 1]);
    // Nothing lost: the record is valid even though the pointer lags.
    assert_eq!(recover_image(&image).unwrap().recovered.records, records);
}

#[test]
fn a_bad_record_below_the_commit_pointer_is_an_error() {
    let records = sample_records();
    let (mut image, offsets) = record_offsets(&records);
    image[offsets[2] + 40] ^= 1;
    match recover_image(&image) {
        Err(RecoverError::Corrupt { offset, path, .. }) => {
            assert_eq!(offset, offsets[2] as u64);
            assert!(path.ends_with("journal.nvm"));
        }
        other => panic!("expected corruption, got {other:?}"),
    }
    let mut magic = image.clone();
    magic[0] ^= 1;
    assert!(matches!(recover_image(&magic), Err(RecoverError::Corrupt { offset: 0, .. })));
}

#[test]
fn the_journal_streams_as_a_legacy_log() {
    let dir = TempDir::new("nvm-legacy");
    let records = sample_records();
    let (mut journal, _) = NvmJournal::open(dir.path(), options()).unwrap();
    for r in &records {
        journal.append(r).unwrap();
    }
    journal.append(&promise(9)).unwrap(); // not synced: not streamed
    let mut log = Vec::new();
    assert_eq!(journal.write_legacy_log(&mut log).unwrap(), 0);
    journal.sync().unwrap();
    let written = journal.write_legacy_log(&mut log).unwrap();
    assert_eq!(written as usize, log.len());
    assert_eq!(log.len() % 512, 0);

    let legacy = TempDir::new("nvm-legacy-log");
    std::fs::write(legacy.path().join("0.log"), &log).unwrap();
    let mut expected = records.clone();
    expected.push(promise(9));
    assert_eq!(read_log_dir(legacy.path()).unwrap().recovered.records, expected);
}
