//! The checkpoints of one data directory (§5.1): `<N>.codex` files, N = the last executed
//! decree they contain, and the `Temp/` directory they are written in. Listing refuses a
//! `*.codex` name that is not `<decimal>.codex` (legacy fails startup on one) and skips
//! names starting with `.`. Restart walks checkpoints newest first and falls back to an
//! older one whenever a file does not open or the application cannot load it (§5.5).

use super::{CheckpointHeader, CheckpointReader, DirError, ReadError};
use crate::paxos::Decree;
use std::fs::File;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

/// Where checkpoints are written before the rename; emptied at every start.
pub(super) const TEMP_DIR: &str = "Temp";

pub(super) fn checkpoint_file_name(decree: Decree) -> String {
    format!("{}.codex", decree.0)
}

/// The checkpoints in `dir`, newest first.
pub fn list_checkpoints(dir: &Path) -> Result<Vec<(Decree, PathBuf)>, DirError> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(DirError::io(dir))? {
        let path = entry.map_err(DirError::io(dir))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()) else { continue };
        let Some(stem) = name.strip_suffix(".codex") else { continue };
        if name.starts_with('.') {
            continue;
        }
        if stem.is_empty() || !stem.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DirError::BadFileName(path));
        }
        let decree = stem.parse().map_err(|_| DirError::BadFileName(path.clone()))?;
        found.push((Decree(decree), path));
    }
    found.sort_by(|a, b| b.cmp(a));
    Ok(found)
}

/// Deletes all but the newest `keep` checkpoints (legacy `m_maxCheckpoints`) and syncs the
/// directory. Returns the deleted paths, newest first.
pub fn retain_newest(dir: &Path, keep: NonZeroUsize) -> Result<Vec<PathBuf>, DirError> {
    let old: Vec<PathBuf> = list_checkpoints(dir)?.into_iter().skip(keep.get()).map(|(_, p)| p).collect();
    for path in &old {
        std::fs::remove_file(path).map_err(DirError::io(path))?;
    }
    if !old.is_empty() {
        File::open(dir).and_then(|d| d.sync_all()).map_err(DirError::io(dir))?;
    }
    Ok(old)
}

/// What [`restore_newest`] did.
#[derive(Debug)]
pub struct Restore {
    /// The checkpoint that loaded, if any.
    pub loaded: Option<(Decree, CheckpointHeader)>,
    /// Newer checkpoints passed over, newest first.
    pub rejected: Vec<Rejected>,
}

/// A checkpoint that was passed over.
#[derive(Debug)]
pub struct Rejected {
    pub path: PathBuf,
    /// Why it did not open; `None` when `load` refused it.
    pub why: Option<ReadError>,
}

/// Legacy restart's choice (§5.5 step 2): opens checkpoints newest first and hands each to
/// `load` (legacy `LoadState`; when `header().state_saved` is false the application loads
/// nothing, as with `LoadState(NULL)`) until one opens and `load` returns true. A file whose
/// header names another decree than its file name is refused as well.
pub fn restore_newest(
    dir: &Path,
    mut load: impl FnMut(&mut CheckpointReader) -> bool,
) -> Result<Restore, DirError> {
    let mut rejected = Vec::new();
    for (decree, path) in list_checkpoints(dir)? {
        let why = match CheckpointReader::open(&path) {
            Ok(reader) if reader.header().last_executed != decree => Some(ReadError::Corrupt {
                why: format!("its header is for decree {}", reader.header().last_executed),
                path: path.clone(),
                offset: 0,
            }),
            Ok(mut reader) => {
                if load(&mut reader) {
                    let header = reader.header().clone();
                    return Ok(Restore { loaded: Some((decree, header)), rejected });
                }
                None
            }
            Err(e) => Some(e),
        };
        rejected.push(Rejected { path, why });
    }
    Ok(Restore { loaded: None, rejected })
}
