//! Interim restart: the newest checkpoint `load` accepts, then the file journal.
//! (To be replaced by `storage::restore`, legacy's full §5.5 sequence.)

use crate::paxos::Record;
use crate::storage::checkpoint::{restore_newest, CheckpointHeader, CheckpointReader};
use crate::storage::{FileJournal, FileOptions, Journal, Recovery};
use std::path::Path;

pub(super) struct LoadedCheckpoint {
    pub header: CheckpointHeader,
}

pub(super) struct Restored {
    pub journal: FileJournal,
    pub recovery: Recovery,
    pub checkpoint: Option<LoadedCheckpoint>,
}

pub(super) fn restore(
    dir: &Path,
    options: FileOptions,
    mut load: impl FnMut(Option<&mut CheckpointReader>) -> bool,
) -> Result<Restored, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let restore = restore_newest(dir, |reader| load(Some(reader))).map_err(|e| e.to_string())?;
    let (journal, mut recovery) = FileJournal::open(dir, options).map_err(|e| e.to_string())?;
    let checkpoint = match restore.loaded {
        Some((decree, header)) => {
            recovery.recovered.checkpoint = decree;
            recovery.recovered.records.retain(|r| !matches!(r, Record::Vote(v) if v.decree <= decree));
            Some(LoadedCheckpoint { header })
        }
        None if load(None) => None,
        None => return Err("load_state(None) refused to start empty".to_owned()),
    };
    Ok(Restored { journal, recovery, checkpoint })
}
