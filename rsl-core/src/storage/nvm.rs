//! The NVM journal: one memory-mapped file, `journal.nvm`, in the data directory.
//!
//! Layout (all little-endian, everything on 64-byte cache-line boundaries):
//! - bytes 0..64, the superblock: `magic u64` (`RSLNVMJ1`), `commit u64` = the end of the
//!   records known durable, zeros;
//! - from byte 64, records: `checksum u64`, `len u32`, `0u32`, then `len` bytes of payload
//!   (the legacy message, as [`super::FileJournal`] would log it), zero-padded to 64. The
//!   checksum is the fingerprint of the record's own offset followed by its bytes after the
//!   checksum field, so a stale record at another offset never validates. An all-zero
//!   record header is the end.
//!
//! [`Journal::sync`] writes the new records' cache lines back (`clwb`/`clflushopt`/
//! `clflush`, then `sfence`), makes them durable with one `msync` (skipped on a DAX
//! mapping, [`NvmOptions::dax`]; this machine has no DAX/MAP_SYNC), and only then stores
//! the commit pointer and writes its line back. The
//! next `msync` (or the kernel's writeback) carries the pointer, so on disk it may lag but
//! never overstates what is durable; on a DAX mapping the fences alone give the same
//! order. Recovery reads records while their checksums hold: a bad record below the commit
//! pointer is corruption, one at or above it is a torn tail, which is zeroed so that no
//! stale record can surface behind a later one; valid records past the pointer are
//! persisted and committed before the replica relies on them. The bytes live in a
//! [`Medium`]: the mapped file, or a simulated one in the crash tests. The file grows by doubling when full; it
//! is left sparse, because on this machine's ext4 `msync` over a zero-filled file measured
//! about twice as slow as over a sparse one (the opposite of `pwrite`).

use super::medium::{Mapping, Medium};
use super::persist::{FlushInstruction, CACHE_LINE};
use super::record::{decode_message, Decoded, Encoder};
use super::{named, AppendError, Cut, Health, Journal, RecoverError, Recovery};
use crate::paxos::Record;
use crate::wire::{fingerprint, fingerprint_continue, record_len, Limits, Version};
use bytes::Bytes;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

const FILE_NAME: &str = "journal.nvm";
const MAGIC: u64 = u64::from_le_bytes(*b"RSLNVMJ1");
const COMMIT_AT: usize = 8;
const FIRST_RECORD: usize = CACHE_LINE;
const RECORD_HEADER: usize = 16;

/// How the NVM journal writes.
#[derive(Clone, Debug)]
pub struct NvmOptions {
    /// The protocol version of every record (a vote that needs the watermark gets 7).
    pub version: Version,
    /// Size of a new journal file; it doubles whenever it fills.
    pub capacity_bytes: u64,
    /// The write-back instruction; [`FlushInstruction::detect`] unless testing a fallback.
    pub flush: FlushInstruction,
    /// The file is on a DAX file system (persistent memory mapped directly): a record is
    /// durable once its cache lines are written back and fenced, so `msync` is skipped.
    /// On any other file system this leaves records in the page cache — durable only when
    /// the kernel writes them back — so set it only on DAX, or to emulate persistent
    /// memory in a benchmark (this machine has none, and `MAP_SYNC` fails here).
    pub dax: bool,
}

impl NvmOptions {
    /// 64 MiB to start, the best flush instruction this CPU has.
    pub fn new(version: Version) -> Self {
        Self { version, capacity_bytes: 64 << 20, flush: FlushInstruction::detect(), dax: false }
    }
}

/// A journal in persistent memory: a memory-mapped file unless a test supplies another
/// [`Medium`].
#[derive(Debug)]
pub struct NvmJournal<M = Mapping> {
    path: PathBuf,
    medium: M,
    encoder: Encoder,
    /// Where the next record goes.
    end: usize,
    /// The end of the records made durable by the last sync.
    synced: usize,
    health: Health,
}

impl Journal for NvmJournal {
    type Options = NvmOptions;

    fn open(dir: &Path, options: NvmOptions) -> Result<(Self, Recovery), RecoverError> {
        std::fs::create_dir_all(dir).map_err(RecoverError::io(dir))?;
        let path = dir.join(FILE_NAME);
        let io = |e| RecoverError::Io { path: path.clone(), source: e };
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
        let file = file.map_err(io)?;
        let fresh = file.metadata().map_err(io)?.len() == 0;
        if fresh {
            let capacity = options.capacity_bytes.max(2 * FIRST_RECORD as u64).next_multiple_of(4096);
            file.set_len(capacity).map_err(io)?;
        }
        let medium = Mapping::new(file, options.flush, options.dax).map_err(io)?;
        let opened = Self::on_medium(path.clone(), medium, options.version, fresh)?;
        if fresh {
            File::open(dir).and_then(|d| d.sync_all()).map_err(RecoverError::io(dir))?;
        }
        Ok(opened)
    }

    fn append(&mut self, record: &Record) -> Result<usize, AppendError> {
        NvmJournal::append(self, record)
    }

    fn sync(&mut self) -> io::Result<()> {
        NvmJournal::sync(self)
    }
}

impl NvmJournal {
    /// The instruction that writes cache lines back.
    pub fn flush_instruction(&self) -> FlushInstruction {
        self.medium.flush_instruction()
    }
}

impl<M: Medium> NvmJournal<M> {
    /// Opens the journal held in `medium` (`path` names it in errors), writing an empty
    /// journal's superblock first when `fresh`; recovers as [`Journal::open`] does.
    pub fn on_medium(
        path: PathBuf,
        medium: M,
        version: Version,
        fresh: bool,
    ) -> Result<(Self, Recovery), RecoverError> {
        let mut journal = Self {
            path,
            medium,
            encoder: Encoder::new(version),
            end: FIRST_RECORD,
            synced: FIRST_RECORD,
            health: Health::default(),
        };
        if fresh {
            journal.medium.bytes_mut()[..8].copy_from_slice(&MAGIC.to_le_bytes());
            journal.set_commit(FIRST_RECORD);
            journal.medium.sync(0..FIRST_RECORD).map_err(RecoverError::io(&journal.path))?;
        }
        let recovery = journal.recover()?;
        Ok((journal, recovery))
    }

    /// What outlives the journal: its medium, as a crash of this process leaves it.
    pub fn into_medium(self) -> M {
        self.medium
    }

    /// [`Journal::append`].
    pub fn append(&mut self, record: &Record) -> Result<usize, AppendError> {
        self.health.check()?;
        let payload = self.encoder.encode(record).map_err(AppendError::Encode)?;
        let total = (RECORD_HEADER + payload.len()).next_multiple_of(CACHE_LINE);
        if self.end + total > self.medium.bytes().len() {
            let capacity = (self.end + total).max(2 * self.medium.bytes().len()).next_multiple_of(4096);
            let result = self.medium.grow(capacity);
            let result = result.map_err(named(&self.path));
            self.health.watch(result)?;
        }
        let at = self.end;
        let len = u32::try_from(payload.len()).map_err(io::Error::other)?;
        let map = self.medium.bytes_mut();
        map[at + 8..at + 12].copy_from_slice(&len.to_le_bytes());
        map[at + RECORD_HEADER..at + RECORD_HEADER + payload.len()].copy_from_slice(&payload);
        let checksum = record_checksum(at, &map[at + 8..at + RECORD_HEADER + payload.len()]);
        map[at..at + 8].copy_from_slice(&checksum.to_le_bytes());
        self.end += total;
        self.encoder.observe(record);
        Ok(total)
    }

    /// [`Journal::sync`].
    pub fn sync(&mut self) -> io::Result<()> {
        self.health.check()?;
        if self.end == self.synced {
            return Ok(());
        }
        self.medium.persist(self.synced..self.end);
        // From 0, so that the pointer stored by the previous sync goes along.
        let result = self.medium.sync(0..self.end);
        let result = result.map_err(named(&self.path));
        self.health.watch(result)?;
        self.synced = self.end;
        self.set_commit(self.end);
        Ok(())
    }

    /// Streams the durable records as a legacy `.log` file would hold them (each message
    /// zero-padded to 512), for a legacy reader or the learn port. Returns bytes written.
    pub fn write_legacy_log(&self, out: &mut impl Write) -> io::Result<u64> {
        let mut written = 0u64;
        let mut at = FIRST_RECORD;
        while at < self.synced {
            let payload = payload(self.medium.bytes(), at);
            let padded = record_len(payload.len());
            out.write_all(payload)?;
            out.write_all(&vec![0; padded - payload.len()])?;
            written += padded as u64;
            at += (RECORD_HEADER + payload.len()).next_multiple_of(CACHE_LINE);
        }
        Ok(written)
    }

    fn set_commit(&mut self, end: usize) {
        self.medium.bytes_mut()[COMMIT_AT..COMMIT_AT + 8].copy_from_slice(&(end as u64).to_le_bytes());
        self.medium.persist(COMMIT_AT..COMMIT_AT + 8);
    }

    /// Reads the records, cuts a torn tail and positions `end` after the last valid one.
    /// Valid records past the commit pointer (written before a crash of this process,
    /// their sync unfinished) are made durable and committed before anything relies on
    /// them.
    fn recover(&mut self) -> Result<Recovery, RecoverError> {
        let map = self.medium.bytes();
        let magic = u64::from_le_bytes(map[..8].try_into().expect("8 bytes"));
        if magic != MAGIC {
            return Err(RecoverError::corrupt(&self.path, 0, format!("bad magic {magic:#018x}")));
        }
        let commit = u64::from_le_bytes(map[COMMIT_AT..COMMIT_AT + 8].try_into().expect("8 bytes"));
        let commit = usize::try_from(commit).unwrap_or(usize::MAX);
        if commit < FIRST_RECORD || commit > map.len() || commit % CACHE_LINE != 0 {
            return Err(RecoverError::corrupt(
                &self.path,
                COMMIT_AT as u64,
                format!("commit pointer {commit}"),
            ));
        }
        let mut recovery = Recovery::default();
        let limits = Limits::default();
        let mut at = FIRST_RECORD;
        while let Some(total) = valid_record(map, at) {
            let payload = Bytes::copy_from_slice(payload(map, at));
            match decode_message(&payload, &limits) {
                Ok(Decoded::Record(record)) => {
                    self.encoder.observe(&record);
                    recovery.recovered.records.push(record);
                }
                Ok(Decoded::ReconfigurationDecision) => recovery.reconfiguration_decisions += 1,
                Err(why) => return Err(RecoverError::corrupt(&self.path, at as u64, why)),
            }
            at += total;
        }
        if at < commit {
            let why = "a record below the commit pointer fails its checksum";
            return Err(RecoverError::corrupt(&self.path, at as u64, why));
        }
        if let Some(last) = map[at..].iter().rposition(|&b| b != 0) {
            recovery.cut = Some(Cut { path: self.path.clone(), offset: at as u64, len: (last + 1) as u64 });
            self.medium.bytes_mut()[at..=at + last].fill(0);
            self.medium.persist(at..at + last + 1);
            self.medium.sync(at..at + last + 1).map_err(RecoverError::io(&self.path))?;
        }
        if at > commit {
            self.medium.persist(commit..at);
            self.medium.sync(commit..at).map_err(RecoverError::io(&self.path))?;
            self.set_commit(at);
            self.medium.sync(0..FIRST_RECORD).map_err(RecoverError::io(&self.path))?;
        }
        self.end = at;
        self.synced = at;
        Ok(recovery)
    }
}

/// The payload of the (valid) record at `at` of a journal image.
fn payload(map: &[u8], at: usize) -> &[u8] {
    let len = u32::from_le_bytes(map[at + 8..at + 12].try_into().expect("4 bytes")) as usize;
    &map[at + RECORD_HEADER..at + RECORD_HEADER + len]
}

/// The size of the record at `at` of a journal image if its header is non-zero and its
/// checksum holds.
fn valid_record(map: &[u8], at: usize) -> Option<usize> {
    let header = map.get(at..at + RECORD_HEADER)?;
    let stored = u64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
    let len = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes")) as usize;
    let total = (RECORD_HEADER + len).next_multiple_of(CACHE_LINE);
    let bytes = map.get(at + 8..at + RECORD_HEADER + len)?;
    (at + total <= map.len() && stored == record_checksum(at, bytes)).then_some(total)
}

/// The records of `dir`'s nvm journal below its commit pointer, as a legacy `.log` file
/// would hold them (each message zero-padded to 512), read without writing anything (the
/// learn port serves them while the journal appends); `None` when there is no nvm journal.
pub fn read_legacy_log(dir: &Path) -> io::Result<Option<Vec<u8>>> {
    let image = match std::fs::read(dir.join(FILE_NAME)) {
        Ok(image) => image,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let word = |at: usize| image.get(at..at + 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    if word(0) != Some(MAGIC) {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "not an nvm journal"));
    }
    let commit = word(COMMIT_AT).map_or(0, |c| usize::try_from(c).unwrap_or(usize::MAX));
    let mut out = Vec::new();
    let mut at = FIRST_RECORD;
    while at < commit {
        let Some(total) = valid_record(&image, at) else { break };
        let message = payload(&image, at);
        out.extend_from_slice(message);
        out.resize(out.len() + record_len(message.len()) - message.len(), 0);
        at += total;
    }
    Ok(Some(out))
}

fn record_checksum(at: usize, bytes: &[u8]) -> u64 {
    fingerprint_continue(fingerprint(&(at as u64).to_le_bytes()), bytes)
}
