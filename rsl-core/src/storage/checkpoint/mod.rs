//! Checkpoints: legacy RSL's `<N>.codex` files (§5.3), bit-exact for versions 1–6. It owns
//! the header codec ([`CheckpointHeader`]), the block-checksummed payload stream
//! ([`CheckpointWriter`], [`CheckpointReader`]) and the directory rules (listing newest
//! first, retention, restart's fallback to older checkpoints).
//!
//! Invariants: a `<N>.codex` name only ever appears for a complete file (written in
//! `Temp/`, synced, read back and verified, renamed, directory synced); a reader returns
//! only bytes whose block checksum matched; a file whose size disagrees with its header is
//! refused before anything is read. Errors are Rust enums; [`ReadError::win32_code`] is the
//! one place that maps them to the Win32 codes legacy's stream reader returned (§1.6), for
//! the C ABI.

mod dir;
mod header;
mod rewrite;
mod stream;

pub use dir::{list_checkpoints, restore_newest, retain_newest, Rejected, Restore};
pub use header::{
    CheckpointConfiguration, CheckpointHeader, BLOCK_CHECKSUM_LEN, DEFAULT_BLOCK_SIZE, PAGE_SIZE,
};
pub use rewrite::{change_replica_set, rewrite};
pub use stream::{CheckpointReader, CheckpointWriter};

use crate::wire::{DecodeError, EncodeError};
use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// The Win32 codes of legacy `RSLCheckpointStreamReader`/`Writer` (§1.6), plus the OS
/// errors Linux failures are reported as.
pub mod win32 {
    pub const NO_ERROR: u32 = 0;
    pub const ERROR_FILE_NOT_FOUND: u32 = 2;
    pub const ERROR_ACCESS_DENIED: u32 = 5;
    pub const ERROR_CRC: u32 = 23;
    /// "A device attached to the system is not functioning": any other IO failure.
    pub const ERROR_GEN_FAILURE: u32 = 31;
    pub const ERROR_HANDLE_EOF: u32 = 38;
    /// Legacy: a file name of 64 KiB or more; the C ABI also returns it for bad arguments.
    pub const ERROR_INVALID_PARAMETER: u32 = 87;
    pub const ERROR_DISK_FULL: u32 = 112;
}

/// Why a checkpoint could not be opened or read.
#[derive(Debug)]
pub enum ReadError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// The header does not decode (legacy `Init(file)` answers ERROR_CRC).
    Header {
        path: PathBuf,
        source: DecodeError,
    },
    /// A block checksum mismatch, a file size that differs from the header's, or a last
    /// block too short for its checksum.
    Corrupt {
        path: PathBuf,
        offset: u64,
        why: String,
    },
    /// The end of the payload.
    Eof,
    /// A seek or skip beyond the end of the payload.
    SeekPastEnd {
        offset: u64,
        size: u64,
    },
}

impl ReadError {
    /// The code legacy returns for this failure (NO_ERROR is success, not an error).
    pub fn win32_code(&self) -> u32 {
        match self {
            Self::Io { source, .. } => match source.kind() {
                io::ErrorKind::NotFound => win32::ERROR_FILE_NOT_FOUND,
                io::ErrorKind::PermissionDenied => win32::ERROR_ACCESS_DENIED,
                io::ErrorKind::StorageFull => win32::ERROR_DISK_FULL,
                // The file shrank under the reader: legacy's reader hits EOF mid-block.
                io::ErrorKind::UnexpectedEof => win32::ERROR_CRC,
                _ => win32::ERROR_GEN_FAILURE,
            },
            Self::Header { .. } | Self::Corrupt { .. } => win32::ERROR_CRC,
            Self::Eof | Self::SeekPastEnd { .. } => win32::ERROR_HANDLE_EOF,
        }
    }
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Header { path, source } => write!(f, "{}: bad checkpoint header: {source}", path.display()),
            Self::Corrupt { path, offset, why } => {
                write!(f, "{} is corrupt at offset {offset}: {why}", path.display())
            }
            Self::Eof => f.write_str("end of the checkpoint payload"),
            Self::SeekPastEnd { offset, size } => {
                write!(f, "offset {offset} is past the payload's {size} bytes")
            }
        }
    }
}

impl std::error::Error for ReadError {}

/// Why a checkpoint was not saved. The temp file may remain in `Temp/`.
#[derive(Debug)]
pub enum SaveError {
    /// The header cannot be written in its version.
    Encode(EncodeError),
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// The file read back does not match what was written.
    Verify(ReadError),
}

impl SaveError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_owned(), source }
    }
}

impl fmt::Display for SaveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Encode(e) => write!(f, "cannot encode the checkpoint header: {e}"),
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::Verify(e) => write!(f, "the checkpoint did not verify: {e}"),
        }
    }
}

impl std::error::Error for SaveError {}

/// Why a data directory's checkpoints could not be listed or cleaned up.
#[derive(Debug)]
pub enum DirError {
    Io {
        path: PathBuf,
        source: io::Error,
    },
    /// A `*.codex` name that is not `<decimal>.codex` (legacy refuses to start too).
    BadFileName(PathBuf),
}

impl DirError {
    fn io(path: &Path) -> impl FnOnce(io::Error) -> Self + '_ {
        move |source| Self::Io { path: path.to_owned(), source }
    }
}

impl fmt::Display for DirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
            Self::BadFileName(path) => write!(f, "{}: not named <decree>.codex", path.display()),
        }
    }
}

impl std::error::Error for DirError {}
