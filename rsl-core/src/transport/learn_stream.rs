//! The bytes of the learn port (§4.5, §5.2): log records read with the non-tolerant
//! rules, and which part of a data directory answers `FetchVotes(d)`.
//!
//! [`RecordReader`] applies the rules the learner must apply to a peer's stream: 512-byte
//! reads, EOF only on a record boundary, a header that decodes (version, length within
//! the limit, magic), message id 1, 3 or 10, the whole padded record present, and the
//! message checksum right. Nothing is tolerated: zeros are not an end of log here. The
//! server reads its own files with the same reader, so it only ever sends records a
//! learner accepts: zeros where a record should start end a file (the journal writes
//! zeros ahead of its records, and they stay in a file after rotation), and any other
//! failure (a record still being written, damage) ends what it serves.

use crate::storage::{list_logs, read_legacy_log};
use crate::wire::{message_len, record_len, verify_checksum, DecodeError, Limits, MAGIC, RECORD_ALIGN};
use std::fmt;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::Path;

/// Message ids that may appear in a log: Vote, Prepare, ReconfigurationDecision.
const VOTE: u16 = 1;
const LOG_IDS: [u16; 3] = [VOTE, 3, 10];

/// Why bytes of a learn stream are not a log record (or not the expected message).
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum BadRecord {
    /// The stream ends inside a record: `got` of its `needed` bytes arrived.
    Truncated { got: usize, needed: usize },
    /// 512 zero bytes where a record should start: the end of a log file on disk (the
    /// journal writes zeros ahead of its records), never part of a stream.
    Zeros,
    /// The first bytes are no message header (version, length or magic).
    Header(DecodeError),
    /// A message id that does not belong here (a log holds only 1, 3 and 10).
    MessageId(u16),
    /// The message checksum does not match its bytes.
    Checksum { stored: u64, computed: u64 },
    /// The header is fine but the message does not decode.
    Message(DecodeError),
}

impl fmt::Display for BadRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { got, needed } => write!(f, "stream ends after {got} of {needed} bytes"),
            Self::Zeros => f.write_str("512 zero bytes instead of a record"),
            Self::Header(e) => write!(f, "not a message header: {e}"),
            Self::MessageId(id) => write!(f, "unexpected message id {id}"),
            Self::Checksum { stored, computed } => {
                write!(f, "checksum {stored:#018x} does not match the bytes ({computed:#018x})")
            }
            Self::Message(e) => write!(f, "malformed message: {e}"),
        }
    }
}

/// Why the next record or message could not be read.
#[derive(Debug)]
pub(super) enum ReadError {
    Io(io::Error),
    Bad(BadRecord),
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl From<BadRecord> for ReadError {
    fn from(e: BadRecord) -> Self {
        Self::Bad(e)
    }
}

/// What a record's first block says.
struct Head {
    /// The message length (unpadded).
    len: usize,
    id: u16,
    decree: u64,
}

/// Parses a record's first 512 bytes (rules 2 and 3).
fn parse_head(block: &[u8], limits: &Limits) -> Result<Head, BadRecord> {
    let len = message_len(block, limits).map_err(BadRecord::Header)?;
    let magic = u32::from_le_bytes([block[14], block[15], block[16], block[17]]);
    if magic != MAGIC {
        return Err(BadRecord::Header(DecodeError::BadValue { field: "magic", value: magic.into() }));
    }
    let id = u16::from_le_bytes([block[18], block[19]]);
    if !LOG_IDS.contains(&id) {
        return Err(BadRecord::MessageId(id));
    }
    // §4.14: the decree follows a u64 member id up to version 3, a 64-byte one after.
    let at = if u16::from_le_bytes([block[0], block[1]]) <= 3 { 28 } else { 84 };
    let mut decree = [0u8; 8];
    decree.copy_from_slice(&block[at..at + 8]);
    Ok(Head { len, id, decree: u64::from_le_bytes(decree) })
}

/// One record as stored: the padded bytes; the message is `bytes[..len]`.
pub(super) struct RawRecord {
    pub bytes: Vec<u8>,
    pub len: usize,
}

/// Reads records with the non-tolerant rules, counting the offset of the next one.
pub(super) struct RecordReader<R> {
    inner: R,
    offset: u64,
    limits: Limits,
}

impl<R: Read> RecordReader<R> {
    pub(super) fn new(inner: R, limits: Limits) -> Self {
        Self { inner, offset: 0, limits }
    }

    /// Where the next record starts (the failing one, after an error).
    pub(super) fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, checksum verified; `None` at EOF on a record boundary. The
    /// buffer grows with the bytes that arrive, not with the length a header claims.
    pub(super) fn next_record(&mut self) -> Result<Option<RawRecord>, ReadError> {
        let mut bytes = vec![0u8; RECORD_ALIGN];
        let got = read_full(&mut self.inner, &mut bytes)?;
        if got == 0 {
            return Ok(None);
        }
        if got < RECORD_ALIGN {
            return Err(BadRecord::Truncated { got, needed: RECORD_ALIGN }.into());
        }
        if bytes.iter().all(|&b| b == 0) {
            return Err(BadRecord::Zeros.into());
        }
        let head = parse_head(&bytes, &self.limits)?;
        let padded = record_len(head.len);
        (&mut self.inner).take((padded - RECORD_ALIGN) as u64).read_to_end(&mut bytes)?;
        if bytes.len() < padded {
            return Err(BadRecord::Truncated { got: bytes.len(), needed: padded }.into());
        }
        verify_checksum(&bytes[..head.len]).map_err(|e| match e {
            DecodeError::Checksum { stored, computed } => BadRecord::Checksum { stored, computed },
            other => BadRecord::Message(other),
        })?;
        self.offset += padded as u64;
        Ok(Some(RawRecord { bytes, len: head.len }))
    }
}

/// Reads one raw message (learn-port requests and StatusResponse: no padding, no
/// checksum check, as legacy); `None` if the stream ends before its first byte.
pub(super) fn read_message(r: &mut impl Read, limits: &Limits) -> Result<Option<Vec<u8>>, ReadError> {
    let mut buf = vec![0u8; 6];
    let got = read_full(r, &mut buf)?;
    if got == 0 {
        return Ok(None);
    }
    if got < buf.len() {
        return Err(BadRecord::Truncated { got, needed: buf.len() }.into());
    }
    let len = message_len(&buf, limits).map_err(BadRecord::Header)?;
    r.take((len - buf.len()) as u64).read_to_end(&mut buf)?;
    if buf.len() < len {
        return Err(BadRecord::Truncated { got: buf.len(), needed: len }.into());
    }
    Ok(Some(buf))
}

/// Fills `buf` unless EOF comes first; the number of bytes read.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(m) => n += m,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Writes the answer to `FetchVotes(decree)`: the log from the record of `decree` to the
/// end of every later file, or nothing if the log does not hold `decree`. Checks
/// `stopped` between records.
///
/// Legacy (`HandleFetchVotesMsg`) starts at the *last* record of the decree in the file
/// that holds it (a re-vote under a higher ballot replaces the offset), and so do we. A
/// decree is first logged in the newest file named at or below it (files are named after
/// the new decree that started them), so that is the only file searched.
pub(super) fn send_votes(
    dir: &Path,
    decree: u64,
    limits: &Limits,
    out: &mut impl Write,
    stopped: &dyn Fn() -> bool,
) -> io::Result<()> {
    // A replica with an nvm journal serves its records as one legacy log.
    if let Some(log) = read_legacy_log(dir)? {
        let Some(start) = last_record_of(io::Cursor::new(&log), decree, limits)? else { return Ok(()) };
        return stream(io::Cursor::new(&log[start as usize..]), limits, out, stopped).map(drop);
    }
    let logs = list_logs(dir).map_err(io::Error::other)?;
    let Some(first) = logs.iter().rposition(|(name, _)| *name <= decree) else { return Ok(()) };
    let opened = BufReader::with_capacity(1 << 16, File::open(&logs[first].1)?);
    let Some(start) = last_record_of(opened, decree, limits)? else { return Ok(()) };
    for (i, (_, path)) in logs[first..].iter().enumerate() {
        let mut file = File::open(path)?;
        if i == 0 {
            file.seek(SeekFrom::Start(start))?;
        }
        if !stream(BufReader::with_capacity(1 << 16, file), limits, out, stopped)? {
            return Ok(());
        }
    }
    Ok(())
}

/// Copies `log`'s valid records to `out`; false when they end before the log does (a
/// later file would leave a gap) or the server stopped.
fn stream(
    log: impl Read,
    limits: &Limits,
    out: &mut impl Write,
    stopped: &dyn Fn() -> bool,
) -> io::Result<bool> {
    let mut reader = RecordReader::new(log, *limits);
    loop {
        if stopped() {
            return Ok(false);
        }
        match reader.next_record() {
            Ok(Some(record)) => out.write_all(&record.bytes)?,
            Ok(None) | Err(ReadError::Bad(BadRecord::Zeros)) => return Ok(true),
            Err(_) => return Ok(false),
        }
    }
}

/// The offset of the last vote record for `decree` in `log`, reading headers only.
fn last_record_of(mut file: impl Read + Seek, decree: u64, limits: &Limits) -> io::Result<Option<u64>> {
    let mut block = [0u8; RECORD_ALIGN];
    let (mut offset, mut found) = (0u64, None);
    while read_full(&mut file, &mut block)? == RECORD_ALIGN {
        let Ok(head) = parse_head(&block, limits) else { break };
        if head.id == VOTE && head.decree == decree {
            found = Some(offset);
        }
        let padded = record_len(head.len);
        file.seek_relative((padded - RECORD_ALIGN) as i64)?;
        offset += padded as u64;
    }
    Ok(found)
}
