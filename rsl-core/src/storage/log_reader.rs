//! Reads a directory of legacy `<firstDecree>.log` files with the tolerant restart rules
//! of §5.2, exactly: 512-byte reads; EOF at a record boundary is the end; a header that
//! does not decode is the end only if it and everything after it are zero; only ids 1, 3
//! and 10; a record cut short by EOF is a torn last write and ignored; a checksum mismatch
//! is a torn last write only if everything after it is zero. Anything else is a
//! [`RecoverError::Corrupt`] naming the file and offset.
//!
//! Two deliberate additions to legacy: a short first block at EOF is also a torn last
//! write (legacy wrote whole sectors unbuffered, we write through the page cache), and a
//! torn record in any file but the newest is corruption, because the writer syncs a file
//! before it starts the next one (so a tear there is damage in the middle).

use super::record::{decode_message, Decoded};
use super::{Cut, RecoverError, Recovery, Seam};
use crate::paxos::Record;
use crate::wire::{message_len, record_len, DecodeError, Limits, MAGIC, RECORD_ALIGN};
use bytes::Bytes;
use std::fs::File;
use std::io::{self, BufReader, Read};
use std::path::{Path, PathBuf};

/// The newest log file and the length of its valid prefix: where writing continues.
pub(super) struct Newest {
    pub first_decree: u64,
    pub path: PathBuf,
    pub valid_len: u64,
    /// The highest vote decree in any file.
    pub highest_vote: Option<u64>,
}

/// Reads every log file of `dir` in decree order (legacy `Replay`: nothing is written).
pub fn read_log_dir(dir: &Path) -> Result<Recovery, RecoverError> {
    scan(dir).map(|(recovery, _)| recovery)
}

pub(super) fn scan(dir: &Path) -> Result<(Recovery, Option<Newest>), RecoverError> {
    let logs = list_logs(dir)?;
    let limits = Limits::default();
    let mut recovery = Recovery::default();
    let mut newest = None;
    let mut highest_vote = None;
    for (i, (first_decree, path)) in logs.iter().enumerate() {
        if i > 0 {
            recovery.seams.push(Seam {
                path: path.clone(),
                first_decree: *first_decree,
                highest_before: highest_vote,
            });
        }
        let read_from = recovery.recovered.records.len();
        let (valid_len, torn) = read_file(path, &limits, &mut recovery)?;
        for record in &recovery.recovered.records[read_from..] {
            if let Record::Vote(vote) = record {
                highest_vote = highest_vote.max(Some(vote.decree.0));
            }
        }
        let is_newest = i + 1 == logs.len();
        if torn && !is_newest {
            return Err(RecoverError::corrupt(
                path,
                valid_len,
                "torn record in a log that is not the newest",
            ));
        }
        if torn {
            let file_len = std::fs::metadata(path).map_err(RecoverError::io(path))?.len();
            recovery.cut = Some(Cut { path: path.clone(), offset: valid_len, len: file_len - valid_len });
        }
        if is_newest {
            newest =
                Some(Newest { first_decree: *first_decree, path: path.clone(), valid_len, highest_vote });
        }
    }
    Ok((recovery, newest))
}

/// `<decimal>.log` files, sorted by decree; names starting with `.` are skipped.
pub(crate) fn list_logs(dir: &Path) -> Result<Vec<(u64, PathBuf)>, RecoverError> {
    let mut logs = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(RecoverError::io(dir))? {
        let path = entry.map_err(RecoverError::io(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(stem) = name.strip_suffix(".log") else { continue };
        if name.starts_with('.') {
            continue;
        }
        if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
            return Err(RecoverError::BadFileName(path));
        }
        let decree = stem.parse().map_err(|_| RecoverError::BadFileName(path.clone()))?;
        logs.push((decree, path));
    }
    logs.sort();
    Ok(logs)
}

/// Reads one file's records into `recovery`. Returns the length of the valid prefix and
/// whether non-zero bytes after it were dropped as a torn last write.
fn read_file(path: &Path, limits: &Limits, recovery: &mut Recovery) -> Result<(u64, bool), RecoverError> {
    let file = File::open(path).map_err(RecoverError::io(path))?;
    let mut reader = BufReader::with_capacity(1 << 16, file);
    let mut offset = 0u64;
    loop {
        let mut block = vec![0u8; RECORD_ALIGN];
        let n = read_full(&mut reader, &mut block).map_err(RecoverError::io(path))?;
        if n < RECORD_ALIGN {
            // 0: EOF at a boundary. Otherwise a torn last write (zeros are no record).
            return Ok((offset, block[..n].iter().any(|&b| b != 0)));
        }
        let len = match header_len(&block, limits) {
            Ok(len) => len,
            Err(why) if is_zero(&block) => {
                if rest_is_zero(&mut reader).map_err(RecoverError::io(path))? {
                    return Ok((offset, false));
                }
                return Err(RecoverError::corrupt(path, offset, format!("{why}, and non-zero bytes follow")));
            }
            Err(why) => return Err(RecoverError::corrupt(path, offset, why)),
        };
        let id = u16::from_le_bytes([block[18], block[19]]);
        if !matches!(id, 1 | 3 | 10) {
            return Err(RecoverError::corrupt(path, offset, format!("message id {id} in a log")));
        }
        let padded = record_len(len);
        block.resize(padded, 0);
        let more = read_full(&mut reader, &mut block[RECORD_ALIGN..]).map_err(RecoverError::io(path))?;
        if more < padded - RECORD_ALIGN {
            return Ok((offset, true));
        }
        match decode_message(&Bytes::from(block).slice(..len), limits) {
            Ok(Decoded::Record(record)) => recovery.recovered.records.push(record),
            Ok(Decoded::ReconfigurationDecision) => recovery.reconfiguration_decisions += 1,
            Err(DecodeError::Checksum { .. })
                if rest_is_zero(&mut reader).map_err(RecoverError::io(path))? =>
            {
                return Ok((offset, true));
            }
            Err(why) => return Err(RecoverError::corrupt(path, offset, why)),
        }
        offset += padded as u64;
    }
}

/// The message length a record's first block announces (version, length, magic checked).
fn header_len(block: &[u8], limits: &Limits) -> Result<usize, DecodeError> {
    let len = message_len(block, limits)?;
    let magic = u32::from_le_bytes([block[14], block[15], block[16], block[17]]);
    if magic != MAGIC {
        return Err(DecodeError::BadValue { field: "magic", value: magic.into() });
    }
    Ok(len)
}

fn is_zero(bytes: &[u8]) -> bool {
    bytes.iter().all(|&b| b == 0)
}

/// Reads to EOF; whether every byte was zero.
fn rest_is_zero(reader: &mut impl Read) -> io::Result<bool> {
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => return Ok(true),
            Ok(n) if is_zero(&chunk[..n]) => {}
            Ok(_) => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// Fills `buf` unless EOF comes first; the number of bytes read.
fn read_full(reader: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match reader.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}
