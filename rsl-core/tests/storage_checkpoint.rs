//! Checkpoint files (`<N>.codex`, §5.3): the legacy TestCheckpointChecksum and
//! TestDifferentWritePatternsForCheckpoint scenarios (§6.7), headers of every version, a
//! version-4 header assembled by hand from the spec's table, malformed headers, the Win32
//! codes, retention and restart's fallback to an older checkpoint.

mod storage_support;

use bytes::Bytes;
use proptest::prelude::*;
use rsl_core::paxos::{Ballot, Decree, Member, MemberId, MemberSet, VoteBody};
use rsl_core::storage::checkpoint::{
    change_replica_set, list_checkpoints, restore_newest, retain_newest, win32, CheckpointConfiguration,
    CheckpointHeader, CheckpointReader, CheckpointWriter, DirError, ReadError, SaveError, DEFAULT_BLOCK_SIZE,
};
use rsl_core::wire::{
    base_size, fingerprint, DecodeError, EncodeError, Header, Version, VoteFields, WireBody, WireMessage,
    WireVote,
};
use std::io::Read;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use storage_support::TempDir;

fn id(s: &str) -> MemberId {
    MemberId::new(s).expect("valid id")
}

fn next_vote(version: Version, decree: u64, ballot: Ballot) -> WireVote {
    let header = Header {
        version,
        from: ballot.member.clone(),
        decree: Decree(decree),
        configuration: 1,
        ballot,
        payload: 0,
    };
    let primary_cookie = if version >= Version::V2 { Bytes::from_static(b"cookie") } else { Bytes::new() };
    let value = VoteBody::Requests(vec![Bytes::from_static(b"next request")]);
    WireVote { header, fields: VoteFields { passed: None, primary_cookie, relinquish: false, value } }
}

fn configuration() -> CheckpointConfiguration {
    let mut members = vec![Member::named("1").unwrap(), Member::named("2").unwrap()];
    members[1].host_name = "replica-2".into();
    CheckpointConfiguration {
        number: 3,
        initial_decree: Decree(40),
        members,
        cookie: Bytes::from_static(b"cfg"),
    }
}

/// A header for the checkpoint at `decree`, as RSL would write it in `version`.
fn header(version: Version, decree: u64, block_size: u32) -> CheckpointHeader {
    let ballot = Ballot::new(3, id("7"));
    let next_vote = next_vote(version, decree + 1, ballot.clone());
    let v3 = version >= Version::V3;
    CheckpointHeader {
        version,
        member_id: id("7"),
        last_executed: Decree(decree),
        max_ballot: if v3 { Ballot::new(4, id("7")) } else { ballot },
        configuration: v3.then(configuration),
        state_saved: true,
        file_size: 0,
        block_size: if version >= Version::V4 { block_size } else { 0 },
        next_vote,
    }
}

/// Bytes whose value depends on their offset, so a misplaced byte shows.
fn payload(len: usize) -> Vec<u8> {
    (0..len as u64).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()
}

fn save(dir: &Path, header: CheckpointHeader, data: &[u8], chunk: usize) -> PathBuf {
    let mut writer = CheckpointWriter::create(dir, header).expect("create");
    data.chunks(chunk).for_each(|c| writer.write(c).expect("write"));
    assert_eq!(writer.payload_len(), data.len() as u64);
    writer.finish().expect("finish")
}

fn read_all(reader: &mut CheckpointReader, max: usize, data_per_block: u64) -> Result<Vec<u8>, ReadError> {
    read_from(reader, 0, max, data_per_block)
}

/// Reads the payload from `from` on with `get_data_pointer(max)`, checking that no read
/// crosses the end of a block of `data_per_block` application bytes.
fn read_from(
    reader: &mut CheckpointReader,
    from: u64,
    max: usize,
    data_per_block: u64,
) -> Result<Vec<u8>, ReadError> {
    reader.seek(from)?;
    let mut out = Vec::new();
    loop {
        let at = from + out.len() as u64;
        match reader.get_data_pointer(max) {
            Ok(bytes) => {
                assert!(!bytes.is_empty() && bytes.len() <= max);
                assert!(
                    bytes.len() as u64 <= data_per_block - at % data_per_block,
                    "read crossed a block end"
                );
                out.extend_from_slice(bytes);
            }
            Err(ReadError::Eof) => return Ok(out),
            Err(e) => return Err(e),
        }
    }
}

fn loads_intact(path: &Path, data: &[u8], block_size: u32) -> bool {
    let Ok(mut reader) = CheckpointReader::open(path) else { return false };
    reader.size() == data.len() as u64
        && read_all(&mut reader, usize::MAX, u64::from(block_size) - 8).is_ok_and(|read| read == data)
}

fn patch(path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
    let mut bytes = std::fs::read(path).unwrap();
    f(&mut bytes);
    std::fs::write(path, bytes).unwrap();
}

const B: u32 = DEFAULT_BLOCK_SIZE;

#[test]
fn checksum_payload_sizes_load_intact() {
    let dir = TempDir::new("codex-sizes");
    let sizes = [1 << 20, B as usize / 2, B as usize - 8, B as usize * 3 / 2];
    for (decree, size) in (1..).zip(sizes) {
        let data = payload(size);
        let path = save(dir.path(), header(Version::V4, decree, B), &data, 64 << 10);
        assert_eq!(path, dir.path().join(format!("{decree}.codex")));
        let reader = CheckpointReader::open(&path).unwrap();
        assert_eq!(reader.header().file_size, std::fs::metadata(&path).unwrap().len());
        assert!(loads_intact(&path, &data, B), "payload of {size} bytes");
    }
    assert_eq!(std::fs::read_dir(dir.path().join("Temp")).unwrap().count(), 0, "temp files are renamed");
}

#[test]
fn eight_bytes_overwritten_near_the_end_fail_the_load_and_restart_falls_back() {
    let dir = TempDir::new("codex-crc");
    let data = payload(1 << 20);
    save(dir.path(), header(Version::V4, 5, B), &data, 4096);
    let newest = save(dir.path(), header(Version::V4, 9, B), &data, 4096);
    patch(&newest, |b| {
        let at = b.len() - 18;
        b[at..at + 8].copy_from_slice(&[0xAB; 8]);
    });
    let mut reader = CheckpointReader::open(&newest).expect("the size still matches");
    let err = read_all(&mut reader, usize::MAX, u64::from(B) - 8).unwrap_err();
    assert!(matches!(err, ReadError::Corrupt { .. }), "{err}");
    assert_eq!(err.win32_code(), win32::ERROR_CRC);

    let restore =
        restore_newest(dir.path(), |r| read_all(r, 1 << 16, u64::from(B) - 8).is_ok_and(|d| d == data))
            .expect("restore");
    assert_eq!(restore.loaded.map(|(d, h)| (d, h.last_executed)), Some((Decree(5), Decree(5))));
    assert_eq!(restore.rejected.len(), 1);
    assert_eq!(restore.rejected[0].path, newest);
    assert!(restore.rejected[0].why.is_none(), "the file opened; the load refused it");
}

#[test]
fn a_file_grown_or_shrunk_by_100_bytes_is_rejected() {
    for grow in [true, false] {
        let dir = TempDir::new("codex-size");
        let data = payload(B as usize / 2);
        let path = save(dir.path(), header(Version::V4, 3, B), &data, 1000);
        patch(&path, |b| if grow { b.extend_from_slice(&[0; 100]) } else { b.truncate(b.len() - 100) });
        let err = CheckpointReader::open(&path).unwrap_err();
        assert!(matches!(err, ReadError::Corrupt { .. }), "{err}");
        assert_eq!(err.win32_code(), win32::ERROR_CRC);
        // The only checkpoint is rejected: nothing loads (the replica starts without one).
        let restore = restore_newest(dir.path(), |_| panic!("a rejected file is never loaded")).unwrap();
        assert!(restore.loaded.is_none());
        assert!(matches!(restore.rejected[..], [ref r] if r.why.is_some()));
    }
}

/// TestDifferentWritePatternsForCheckpoint: every block size, payload shape and chunking.
#[test]
fn write_patterns_round_trip_bit_exact() {
    let dir = TempDir::new("codex-patterns");
    let mut decree = 0;
    for block in [512u32, 1024, 1536] {
        let (b, data_per_block) = (block as usize, block as usize - 8);
        for k in 0..=3 {
            for extra in [b / 2, b - 8, b - 4, b] {
                let size = k * data_per_block + extra;
                let data = payload(size);
                for chunk in [239, 252, 256, 512] {
                    decree += 1;
                    let expected = header(Version::V4, decree, block);
                    let path = save(dir.path(), expected.clone(), &data, chunk);
                    let file = std::fs::read(&path).unwrap();
                    let header_len = expected.encode().unwrap().len();
                    let (full, rest) = (size / data_per_block, size % data_per_block);
                    let framed = full * b + if rest > 0 { rest + 8 } else { 0 };
                    assert_eq!(file.len(), header_len + framed, "B {block} size {size} chunk {chunk}");
                    for (i, on_disk) in file[header_len..].chunks(b).enumerate() {
                        let (bytes, sum) = on_disk.split_at(on_disk.len() - 8);
                        assert_eq!(bytes, &data[i * data_per_block..][..bytes.len()]);
                        assert_eq!(sum, fingerprint(bytes).to_le_bytes());
                    }
                    let mut reader = CheckpointReader::open(&path).unwrap();
                    let written = CheckpointHeader { file_size: file.len() as u64, ..expected };
                    assert_eq!(reader.header(), &written);
                    assert_eq!(&file[..header_len], written.encode().unwrap());
                    assert_eq!(reader.size(), size as u64);
                    assert_eq!(read_all(&mut reader, chunk, data_per_block as u64).unwrap(), data);
                }
            }
        }
    }
}

#[test]
fn seek_skip_and_read_follow_the_payload() {
    let dir = TempDir::new("codex-seek");
    let data = payload(3 * 504 + 100);
    let path = save(dir.path(), header(Version::V5, 1, 512), &data, 300);
    let mut reader = CheckpointReader::open(&path).unwrap();
    for offset in [0, 1, 503, 504, 505, 1008, 1600, 1611] {
        let rest = read_from(&mut reader, offset, 77, 504).unwrap();
        assert_eq!(rest, data[offset as usize..], "from {offset}");
    }
    reader.seek(10).unwrap();
    reader.skip(490).unwrap();
    assert_eq!(reader.get_data_pointer(100).unwrap(), &data[500..504], "short read at the block end");
    assert!(matches!(reader.skip(2000), Err(ReadError::SeekPastEnd { .. })));
    reader.seek(data.len() as u64).unwrap();
    assert_eq!(reader.get_data_pointer(1).unwrap_err().win32_code(), win32::ERROR_HANDLE_EOF);
    let err = reader.seek(data.len() as u64 + 1).unwrap_err();
    assert_eq!(err.win32_code(), win32::ERROR_HANDLE_EOF);
    reader.seek(0).unwrap();
    let mut all = Vec::new();
    reader.read_to_end(&mut all).unwrap();
    assert_eq!(all, data);
}

#[test]
fn raw_payloads_round_trip_in_every_version_without_blocks() {
    let dir = TempDir::new("codex-raw");
    let data = payload(10_000);
    for (decree, version) in (1..).zip([Version::V1, Version::V2, Version::V3, Version::V4, Version::V6]) {
        let path = save(dir.path(), header(version, decree, 0), &data, 333);
        let file_len = std::fs::metadata(&path).unwrap().len();
        let header_len = header(version, decree, 0).encode().unwrap().len() as u64;
        assert_eq!(file_len, header_len + data.len() as u64, "{version:?}: no checksums");
        let mut reader = CheckpointReader::open(&path).unwrap();
        let expected_size = if version >= Version::V4 { file_len } else { 0 };
        assert_eq!(reader.header().file_size, expected_size);
        assert_eq!(read_all(&mut reader, 4096, u64::MAX).unwrap(), data);
    }
}

#[test]
fn headers_of_every_version_round_trip() {
    for version in [Version::V1, Version::V2, Version::V3, Version::V4, Version::V5, Version::V6] {
        let mut h = header(version, 41, 1024);
        if version >= Version::V4 {
            (h.state_saved, h.file_size) = (false, 123_456);
        }
        let bytes = h.encode().unwrap();
        assert_eq!(bytes.len() % 512, 0);
        assert_eq!(CheckpointHeader::decode(&bytes).unwrap(), h, "{version:?}");
        let mut vote = Vec::new();
        h.next_vote.encode(&mut vote).unwrap();
        match version {
            Version::V1 | Version::V2 => {
                assert_eq!(bytes[..vote.len()], vote[..], "the file starts with the vote")
            }
            Version::V3 => assert_eq!(bytes[22..30], 41u64.to_le_bytes(), "lastExecutedDecree @22"),
            _ => assert_eq!(bytes[78..86], 41u64.to_le_bytes(), "lastExecutedDecree @78"),
        }
    }
}

/// A v4 header built from the spec's table (§5.3), with the member set encoded by the
/// wire's Bootstrap body rather than by the checkpoint code.
#[test]
fn hand_assembled_v4_header_decodes_and_matches_the_encoder() {
    let field = |s: &str| {
        let mut f = s.as_bytes().to_vec();
        f.resize(64, 0);
        f
    };
    let set = MemberSet::new(configuration().members, configuration().cookie).unwrap();
    let bootstrap_header = Header {
        version: Version::V4,
        from: MemberId::default(),
        decree: Decree(0),
        configuration: 0,
        ballot: Ballot::default(),
        payload: 0,
    };
    let bootstrap =
        WireMessage { header: bootstrap_header, body: WireBody::Bootstrap(set) }.to_bytes().unwrap();
    let expected = header(Version::V4, 77, 512);
    let mut vote = Vec::new();
    expected.next_vote.encode(&mut vote).unwrap();

    let mut fields = Vec::new();
    fields.extend_from_slice(&4u16.to_le_bytes()); // version @0
    fields.extend_from_slice(&[0; 4]); // headerLength @2, below
    fields.extend_from_slice(&0u64.to_le_bytes()); // checksum @6
    fields.extend_from_slice(&field("7")); // memberId @14
    fields.extend_from_slice(&77u64.to_le_bytes()); // lastExecutedDecree @78
    fields.extend_from_slice(&4u32.to_le_bytes()); // maxBallot @86
    fields.extend_from_slice(&field("7"));
    assert_eq!(fields.len(), 154);
    fields.extend_from_slice(&3u32.to_le_bytes()); // ConfigurationInfo @154
    fields.extend_from_slice(&40u64.to_le_bytes());
    fields.extend_from_slice(&bootstrap[base_size(Version::V4)..]);
    fields.push(1); // stateSaved
    let file_size_at = fields.len();
    fields.extend_from_slice(&0u64.to_le_bytes()); // fileSize, below
    fields.extend_from_slice(&512u32.to_le_bytes()); // checksumBlockSize
    let header_len = (vote.len().div_ceil(512) * 512 + fields.len()).div_ceil(512) * 512;
    fields[2..6].copy_from_slice(&(header_len as u32).to_le_bytes());
    let mut file = fields;
    file.extend_from_slice(&vote);
    file.resize(header_len, 0);
    assert_eq!(CheckpointHeader::decode(&file).unwrap(), expected);
    assert_eq!(expected.encode().unwrap(), file, "the encoder writes the same bytes");

    // One full block and a partial one, framed by hand; the reader returns the payload.
    let data = payload(504 + 10);
    for block in data.chunks(504) {
        file.extend_from_slice(block);
        file.extend_from_slice(&fingerprint(block).to_le_bytes());
    }
    let size = file.len() as u64;
    file[file_size_at..file_size_at + 8].copy_from_slice(&size.to_le_bytes());
    let dir = TempDir::new("codex-hand");
    let path = dir.path().join("77.codex");
    std::fs::write(&path, &file).unwrap();
    let mut reader = CheckpointReader::open(&path).unwrap();
    assert_eq!(reader.header(), &CheckpointHeader { file_size: size, ..expected });
    assert_eq!(read_all(&mut reader, 1000, 504).unwrap(), data);
}

#[test]
fn malformed_headers_are_errors_never_panics() {
    let good = header(Version::V4, 9, 512).encode().unwrap();
    for len in 0..good.len() {
        assert!(CheckpointHeader::decode(&good[..len]).is_err(), "truncated to {len}");
    }
    for at in 0..good.len() {
        for bit in [0x01, 0x80] {
            let mut bad = good.clone();
            bad[at] ^= bit;
            let _ = CheckpointHeader::decode(&bad); // any verdict but a panic
        }
    }
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut b = good.clone();
        f(&mut b);
        CheckpointHeader::decode(&b)
    };
    assert!(with(&|b| b[0] = 7).is_err(), "version 7 is no checkpoint version");
    assert!(with(&|b| b[0] = 0).is_err());
    let longer = |b: &mut Vec<u8>| {
        b.resize(b.len() + 512, 0);
        let len = b.len() as u32;
        b[2..6].copy_from_slice(&len.to_le_bytes());
    };
    assert!(matches!(with(&longer), Err(DecodeError::Length { .. })), "length ≠ computed");
    assert!(
        with(&|b| b[2..6].copy_from_slice(&100u32.to_le_bytes())).is_err(),
        "length not a multiple of 512"
    );
    assert!(with(&|b| b[86] = 2).is_err(), "maxBallot below the vote's ballot");
    let block_at = 154 + 4 + 8 + 2 + 2 * (64 + 10) + "replica-2".len() + 4 + 3 + 1 + 8;
    assert_eq!(good[block_at..block_at + 4], 512u32.to_le_bytes());
    assert!(with(&|b| b[block_at..block_at + 4].copy_from_slice(&100u32.to_le_bytes())).is_err());
    let vote_at = block_at + 4;
    assert!(with(&|b| b[vote_at + 40] ^= 1).is_err(), "the vote's checksum is verified");
    let as_prepare = |b: &mut Vec<u8>| {
        b[vote_at + 18] = 3; // a Prepare, checksum fixed up
        let len = u32::from_le_bytes(b[vote_at + 2..vote_at + 6].try_into().unwrap()) as usize;
        let sum = fingerprint(&b[vote_at + 14..vote_at + len]);
        b[vote_at + 6..vote_at + 14].copy_from_slice(&sum.to_le_bytes());
    };
    assert!(with(&as_prepare).is_err(), "the next vote must be a Vote");

    // A stated length far beyond the file: refused before anything is allocated.
    let dir = TempDir::new("codex-huge");
    let path = dir.path().join("9.codex");
    let mut huge = good.clone();
    huge[2..6].copy_from_slice(&0xFFFF_FE00u32.to_le_bytes());
    std::fs::write(&path, &huge).unwrap();
    let err = CheckpointReader::open(&path).unwrap_err();
    assert!(matches!(err, ReadError::Header { .. }), "{err}");
    assert_eq!(err.win32_code(), win32::ERROR_CRC);
    // A last block too short to hold its checksum.
    let mut short = good.clone();
    short.extend_from_slice(&[0; 8]);
    let size_at = block_at - 8;
    let short_len = short.len() as u64;
    short[size_at..size_at + 8].copy_from_slice(&short_len.to_le_bytes());
    std::fs::write(&path, &short).unwrap();
    assert!(matches!(CheckpointReader::open(&path), Err(ReadError::Corrupt { .. })));
    let missing = CheckpointReader::open(&dir.path().join("1.codex")).unwrap_err();
    assert_eq!(missing.win32_code(), win32::ERROR_FILE_NOT_FOUND);
}

#[test]
fn the_encoder_refuses_what_the_version_cannot_carry() {
    let refuse = |h: CheckpointHeader| match h.encode() {
        Err(e) => e,
        Ok(_) => panic!("{h:?} encoded"),
    };
    let mut h = header(Version::V3, 1, 0);
    h.member_id = id("alpha");
    assert!(matches!(refuse(h), EncodeError::MemberIdNotNumeric(_)));
    let h = CheckpointHeader { configuration: Some(configuration()), ..header(Version::V2, 1, 0) };
    assert!(matches!(refuse(h), EncodeError::Invalid(_)));
    let h = CheckpointHeader { block_size: 512, ..header(Version::V3, 1, 0) };
    assert!(matches!(refuse(h), EncodeError::NotInVersion { .. }));
    let h = CheckpointHeader { max_ballot: Ballot::new(1, id("7")), ..header(Version::V4, 1, 512) };
    assert!(matches!(refuse(h), EncodeError::Invalid(_)));
    let h = CheckpointHeader { block_size: 1000, ..header(Version::V4, 1, 512) };
    assert!(matches!(refuse(h), EncodeError::Invalid(_)));
    let dir = TempDir::new("codex-refuse");
    let h = CheckpointHeader { configuration: None, ..header(Version::V4, 1, 512) };
    assert!(matches!(CheckpointWriter::create(dir.path(), h), Err(SaveError::Encode(_))));
}

#[test]
fn retention_keeps_the_newest_and_listing_is_newest_first() {
    let dir = TempDir::new("codex-retain");
    for decree in [3, 10, 7, 20, 1] {
        save(dir.path(), header(Version::V4, decree, 512), b"state", 5);
    }
    std::fs::write(dir.path().join(".hidden.codex"), b"").unwrap();
    let decrees = |d: &Path| list_checkpoints(d).unwrap().into_iter().map(|(d, _)| d.0).collect::<Vec<_>>();
    assert_eq!(decrees(dir.path()), [20, 10, 7, 3, 1]);
    let deleted = retain_newest(dir.path(), NonZeroUsize::new(2).unwrap()).unwrap();
    assert_eq!(deleted, [7, 3, 1].map(|d| dir.path().join(format!("{d}.codex"))));
    assert_eq!(decrees(dir.path()), [20, 10]);
    std::fs::write(dir.path().join("x1.codex"), b"").unwrap();
    assert!(matches!(list_checkpoints(dir.path()), Err(DirError::BadFileName(_))));
}

#[test]
fn restart_refuses_a_file_named_for_another_decree_and_keeps_an_existing_one() {
    let dir = TempDir::new("codex-names");
    let first = save(dir.path(), header(Version::V6, 5, 512), b"first", 5);
    assert_eq!(save(dir.path(), header(Version::V6, 5, 512), b"second", 6), first);
    assert!(loads_intact(&first, b"first", 512), "legacy keeps an existing <N>.codex");
    std::fs::copy(&first, dir.path().join("6.codex")).unwrap();
    let restore = restore_newest(dir.path(), |_| true).unwrap();
    assert_eq!(restore.loaded.map(|(d, _)| d), Some(Decree(5)));
    assert!(matches!(restore.rejected[..], [ref r] if matches!(r.why, Some(ReadError::Corrupt { .. }))));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn any_payload_in_any_chunking_round_trips(
        block in prop::sample::select(vec![512u32, 1024, 1536, 4096]),
        size in 0usize..6000,
        chunks in prop::collection::vec(1usize..700, 1..8),
        max_read in 1usize..2000,
    ) {
        let dir = TempDir::new("codex-prop");
        let data = payload(size);
        let mut writer = CheckpointWriter::create(dir.path(), header(Version::V4, 1, block)).unwrap();
        let mut rest = &data[..];
        for &chunk in chunks.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (now, later) = rest.split_at(chunk.min(rest.len()));
            writer.write(now).unwrap();
            rest = later;
        }
        let path = writer.finish().unwrap();
        let mut reader = CheckpointReader::open(&path).unwrap();
        prop_assert_eq!(reader.size(), size as u64);
        prop_assert_eq!(read_all(&mut reader, max_read, u64::from(block) - 8).unwrap(), data);
    }
}

/// Legacy `CreateWriterForThisReader` / `CloseWriterForThisReader`: a tool rewrites a
/// checkpoint's payload into a new file under the same header; the result is a valid
/// checkpoint whose size is the new payload's, and a file already at the path is replaced.
#[test]
fn a_checkpoint_rewritten_under_its_header_reads_back_with_the_new_payload() {
    let dir = TempDir::new("codex-rewrite");
    for version in [Version::V4, Version::V5, Version::V6] {
        let source = save(dir.path(), header(version, 9, B), &payload(3 * B as usize), 4096);
        let mut reader = CheckpointReader::open(&source).unwrap();
        let old = read_all(&mut reader, usize::MAX, u64::from(B) - 8).unwrap();
        let target = dir.path().join("rewritten.codex");
        std::fs::write(&target, b"an older file, replaced").unwrap();
        let mut writer = CheckpointWriter::create_file(&target, reader.header().clone()).unwrap();
        let new: Vec<u8> = old.iter().rev().copied().chain(*b"tail").collect();
        new.chunks(1000).for_each(|c| writer.write(c).unwrap());
        assert_eq!(writer.finish().unwrap(), target);
        let mut rewritten = CheckpointReader::open(&target).unwrap();
        assert_eq!(rewritten.size(), new.len() as u64);
        assert_eq!(read_all(&mut rewritten, usize::MAX, u64::from(B) - 8).unwrap(), new);
        let (was, is) = (reader.header(), rewritten.header());
        assert_eq!(
            (&is.member_id, is.last_executed, &is.configuration),
            (&was.member_id, was.last_executed, &was.configuration)
        );
        assert!(!dir.path().join("rewritten.codex.tmp").exists());
        std::fs::remove_file(&source).unwrap();
    }
}

/// TestRSLUtilCreateCheckpoint's rewrites: ChangeReplicaSet on a v2 file fails;
/// MigrateToVersion3 needs numeric ids and keeps lastExecuted and the payload; ChangeReplicaSet
/// on a v4 file takes string ids; MigrateToVersion4 adds checksum blocks. A refused
/// rewrite leaves the file as it was.
#[test]
fn change_replica_set_and_migrations_rewrite_the_header_and_keep_the_payload() {
    let dir = TempDir::new("codex-replica-set");
    let data = b"Hello World!".repeat(1000);
    let named = |ids: &[&str]| ids.iter().map(|i| Member::named(i).unwrap()).collect::<Vec<_>>();
    let payload_of = |path: &Path| {
        let mut reader = CheckpointReader::open(path).unwrap();
        let mut all = Vec::new();
        std::io::Read::read_to_end(&mut reader, &mut all).unwrap();
        (reader.header().clone(), all)
    };

    let v2 = save(dir.path(), header(Version::V2, 7, 0), &data, 999);
    let before = std::fs::read(&v2).unwrap();
    assert!(change_replica_set(&v2, named(&["1", "2"]), None).is_err(), "a v2 file has no replica set");
    assert!(change_replica_set(&v2, named(&["a", "b"]), Some(Version::V3)).is_err(), "v3 ids are numeric");
    assert_eq!(std::fs::read(&v2).unwrap(), before, "a refused rewrite changes nothing");
    change_replica_set(&v2, named(&["1", "2", "3"]), Some(Version::V3)).unwrap();
    let (h, payload) = payload_of(&v2);
    assert_eq!((h.version, h.last_executed, payload), (Version::V3, Decree(7), data.clone()));
    let c = h.configuration.unwrap();
    assert_eq!((c.number, c.initial_decree, c.members.len()), (1, Decree(0), 3));

    change_replica_set(&v2, named(&["1", "2"]), Some(Version::V4)).unwrap();
    let (h, payload) = payload_of(&v2);
    assert_eq!((h.version, h.block_size, payload), (Version::V4, DEFAULT_BLOCK_SIZE, data.clone()));

    let v4 = save(dir.path(), header(Version::V4, 9, B), &data, 4096);
    change_replica_set(&v4, named(&["alpha", "beta", "gamma"]), None).unwrap();
    let (h, payload) = payload_of(&v4);
    let ids: Vec<_> =
        h.configuration.as_ref().unwrap().members.iter().map(|m| m.id.as_str().to_owned()).collect();
    assert_eq!(
        (h.version, h.block_size, ids),
        (Version::V4, B, vec!["alpha".into(), "beta".into(), "gamma".into()])
    );
    assert_eq!(h.configuration.unwrap().number, 3, "the configuration number stays");
    assert_eq!(payload, data);
    assert!(change_replica_set(&v4, Vec::new(), None).is_err(), "an empty set does not verify");
}
