//! The journal: where a replica's [`Record`]s become durable before the core reveals them,
//! and where they are read back at restart. Two backends share the [`Journal`] trait:
//!
//! - [`FileJournal`]: legacy RSL's `<firstDecree>.log` files (§5.2) of 512-byte-padded
//!   marshalled messages, one `fdatasync` per group commit, rotation by size; legacy
//!   directories (versions 1–6) read back unchanged.
//! - [`NvmJournal`]: one memory-mapped file of cache-line-aligned, checksummed records and a
//!   commit pointer, persisted with `clwb`/`clflushopt`/`clflush` + `sfence` and `msync`;
//!   it streams its records as legacy `.log` records on demand.
//!
//! Invariants both keep: records come back in write order, and only as a prefix of it —
//! a torn tail is cut (and reported in [`Recovery::cut`]), while damage before the last
//! valid record is a [`RecoverError::Corrupt`] naming file and offset, never skipped.
//! After an IO error a journal refuses every later call: what reached the disk is unknown.
//!
//! Beside the journal, [`checkpoint`] reads and writes legacy `<N>.codex` checkpoints
//! (§5.3, v1–6), and [`defunct`] legacy's `defunct.txt`.

pub mod checkpoint;
pub mod defunct;
mod file;
mod log_reader;
mod medium;
mod nvm;
mod persist;
mod record;

pub use file::{remove_covered_logs, FileJournal, FileOptions};
/// The `<decree>.log` files of a data directory, in decree order (the learn port serves them).
pub(crate) use log_reader::list_logs;
pub use log_reader::read_log_dir;
pub use medium::{Mapping, Medium};
pub use nvm::{read_legacy_log, NvmJournal, NvmOptions};
pub use persist::FlushInstruction;

use crate::paxos::{Record, Recovered};
use crate::wire::EncodeError;
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// A durable, append-only journal of protocol records.
pub trait Journal: Sized {
    type Options;

    /// Reads `dir` (created if missing), cuts a torn tail, and positions the journal to
    /// append after the last valid record.
    fn open(dir: &Path, options: Self::Options) -> Result<(Self, Recovery), RecoverError>;

    /// Appends one record. It is durable only once a later [`Journal::sync`] returns.
    /// Returns the bytes it takes in the journal.
    fn append(&mut self, record: &Record) -> Result<usize, AppendError>;

    /// Makes every record appended so far durable with one device flush (group commit).
    fn sync(&mut self) -> io::Result<()>;
}

/// What recovery found: the records in write order (no checkpoints yet, so
/// `recovered.checkpoint` is 0) and what it had to cut.
#[derive(Debug, Default)]
pub struct Recovery {
    pub recovered: Recovered,
    /// The bytes after the last valid record of the newest file, when any are non-zero
    /// (a torn or unflushed write). Zero tails (preallocation) are not reported.
    pub cut: Option<Cut>,
    /// Legacy ReconfigurationDecision records (id 10) read and not returned: the core has
    /// no record for them yet.
    pub reconfiguration_decisions: usize,
    /// Where each log file after the first follows the ones before it (file journal only).
    pub seams: Vec<Seam>,
}

/// Where a log file starts: the decree in its name and the highest vote decree logged in
/// the files before it. The writer starts `<d>.log` only when the highest vote logged is
/// `d - 1` (legacy rotates on the next decree too), so among the logs a restart replays,
/// `highest_before < first_decree - 1` means a log file between them is missing.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Seam {
    pub path: PathBuf,
    pub first_decree: u64,
    pub highest_before: Option<u64>,
}

impl Seam {
    /// Whether a log file that belongs before this one is missing.
    pub fn is_gap(&self) -> bool {
        self.highest_before.is_none_or(|h| h.saturating_add(1) < self.first_decree)
    }
}

/// A torn tail: `len` bytes from `offset` of `path`, dropped.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Cut {
    pub path: PathBuf,
    pub offset: u64,
    pub len: u64,
}

/// Why a journal could not be read or opened.
#[derive(Debug)]
pub enum RecoverError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// A `*.log` name that is not `<decimal>.log` (legacy refuses to start too).
    BadFileName(PathBuf),
    /// Damage that is not a torn tail.
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
    },
}

impl RecoverError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_owned(), source }
    }

    fn corrupt(path: &Path, offset: u64, why: impl fmt::Display) -> Self {
        Self::Corrupt { path: path.to_owned(), offset, why: why.to_string() }
    }
}

impl fmt::Display for RecoverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::BadFileName(path) => write!(f, "{}: not named <decree>.log", path.display()),
            Self::Corrupt { path, offset, why } => {
                write!(f, "{} is corrupt at offset {offset}: {why}", path.display())
            }
        }
    }
}

impl std::error::Error for RecoverError {}

/// Why a record was not appended.
#[derive(Debug)]
pub enum AppendError {
    /// The configured protocol version cannot carry the record.
    Encode(EncodeError),
    Io(io::Error),
}

impl fmt::Display for AppendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "cannot encode the record: {e}"),
            Self::Io(e) => write!(f, "write failed: {e}"),
        }
    }
}

impl std::error::Error for AppendError {}

impl From<io::Error> for AppendError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Names the file an IO error happened to, keeping its kind.
fn named(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |e| io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Latches the first IO failure: afterwards nothing is known about the disk's content
/// (a failed fsync may have dropped dirty pages), so every call fails.
#[derive(Debug, Default)]
struct Health(bool);

impl Health {
    fn check(&self) -> io::Result<()> {
        if self.0 {
            Err(io::Error::other("the journal failed earlier and is unusable"))
        } else {
            Ok(())
        }
    }

    fn watch<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        self.0 |= result.is_err();
        result
    }
}
