//! Crash points of the file journal, enumerated. A workload of group commits (1–5 records
//! each, requests of varied sizes) runs across several log-file rotations, and the
//! directory is captured after every sync. A crash between sync k and sync k + 1 leaves
//! the image of sync k plus some prefix of the bytes written since, in write order (the
//! end of the current file, then any new file): every such prefix ending at a 512-byte
//! boundary, and one ending inside each record, is a crash image. Each is recovered, and
//! must yield exactly a prefix of the appended records that holds every record synced by
//! sync k — nothing synced lost, nothing invented, nothing out of order.

mod storage_support;

use rsl_core::paxos::Record;
use rsl_core::storage::{FileJournal, FileOptions, Journal};
use rsl_core::wire::Version;
use std::collections::BTreeMap;
use std::path::Path;
use storage_support::{promise, vote, TempDir};

/// A directory's `.log` files and their bytes.
type Image = BTreeMap<String, Vec<u8>>;

fn capture(dir: &Path) -> Image {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .map(|p| (p.file_name().unwrap().to_str().unwrap().to_owned(), std::fs::read(&p).unwrap()))
        .collect()
}

fn decree_of(name: &str) -> u64 {
    name.trim_end_matches(".log").parse().unwrap()
}

/// The bytes written between two images, in write order: (file, offset, bytes).
fn written_since(before: &Image, after: &Image) -> Vec<(String, usize, Vec<u8>)> {
    let mut files: Vec<&String> = after.keys().collect();
    files.sort_by_key(|n| decree_of(n));
    files
        .into_iter()
        .filter_map(|name| {
            let old = before.get(name).map_or(0, Vec::len);
            let new = &after[name];
            (new.len() > old).then(|| (name.clone(), old, new[old..].to_vec()))
        })
        .collect()
}

/// `base` with the first `n` bytes of `writes` applied.
fn crash_image(base: &Image, writes: &[(String, usize, Vec<u8>)], mut n: usize) -> Image {
    let mut image = base.clone();
    for (name, offset, bytes) in writes {
        let take = n.min(bytes.len());
        if take == 0 && !image.contains_key(name) {
            break;
        }
        let file = image.entry(name.clone()).or_default();
        file.truncate(*offset);
        file.extend_from_slice(&bytes[..take]);
        n -= take;
    }
    image
}

fn recover(image: &Image, scratch: &Path) -> Vec<Record> {
    let _ = std::fs::remove_dir_all(scratch);
    std::fs::create_dir_all(scratch).unwrap();
    for (name, bytes) in image {
        std::fs::write(scratch.join(name), bytes).unwrap();
    }
    let options =
        FileOptions { preallocate_bytes: 0, max_log_len_bytes: 8 << 10, ..FileOptions::new(Version::V6) };
    let (_, recovery) = FileJournal::open(scratch, options).expect("a crash image recovers");
    recovery.recovered.records
}

#[test]
fn every_crash_point_recovers_a_prefix_holding_every_synced_record() {
    let dir = TempDir::new("crash-points");
    let live = dir.path().join("live");
    let scratch = dir.path().join("scratch");
    // Small files (8 KiB ± 20 %) so the workload rotates several times.
    let options =
        FileOptions { preallocate_bytes: 0, max_log_len_bytes: 8 << 10, ..FileOptions::new(Version::V6) };
    let (mut journal, _) = FileJournal::open(&live, options).unwrap();
    let mut appended = Vec::new();
    let mut images = vec![(capture(&live), 0usize)];
    let mut decree = 0;
    for batch in 0..24u64 {
        for i in 0..=(batch % 5) {
            decree += 1;
            let request = vec![b'r'; 1 + ((batch * 7 + i * 13) % 9) as usize * 150];
            let record = if decree % 11 == 0 { promise(decree as u32) } else { vote(decree, 1, &[&request]) };
            journal.append(&record).unwrap();
            appended.push(record);
        }
        journal.sync().unwrap();
        images.push((capture(&live), appended.len()));
    }
    drop(journal);
    assert!(images.last().unwrap().0.len() >= 3, "the workload rotated log files");

    let mut crash_points = 0;
    for pair in images.windows(2) {
        let ((before, synced), (after, written)) = (&pair[0], &pair[1]);
        let writes = written_since(before, after);
        let total: usize = writes.iter().map(|(_, _, b)| b.len()).sum();
        // Every 512-byte boundary, and a byte inside each 512-byte block.
        let cuts = (0..=total).step_by(512).chain((200..total).step_by(512)).chain([total]);
        for cut in cuts {
            let recovered = recover(&crash_image(before, &writes, cut), &scratch);
            crash_points += 1;
            assert!(
                recovered.len() >= *synced && recovered.len() <= *written,
                "cut {cut}/{total} after {synced} synced records: recovered {}",
                recovered.len()
            );
            assert_eq!(recovered[..], appended[..recovered.len()], "a prefix, in order, unaltered");
        }
    }
    println!("{crash_points} crash points, every one a prefix holding every synced record");
    assert!(crash_points > 100);
}
