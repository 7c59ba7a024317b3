//! Restart of a data directory (legacy §5.5, steps 1–3): empty `Temp/`; read
//! `defunct.txt`; walk the checkpoints newest first, failing at once when the logs do not
//! reach back to the candidate (legacy's "missing logs"); hand each to `load_state`, falling
//! back to older ones; with none, start empty only when the logs start at decree 0. Then
//! the journal (file or nvm) is opened after its last valid record, a log missing between
//! the checkpoint and the newest log fails the start (legacy would replay past the hole),
//! and the records after the checkpoint are the core's to replay.

use crate::paxos::Record;
use crate::storage::checkpoint::{list_checkpoints, CheckpointHeader, CheckpointReader};
use crate::storage::{defunct, list_logs, Journal, Recovery};
use std::path::Path;

pub(super) struct LoadedCheckpoint {
    pub header: CheckpointHeader,
}

pub(super) struct Restored<J> {
    pub journal: J,
    pub recovery: Recovery,
    pub checkpoint: Option<LoadedCheckpoint>,
    /// The highest configuration `defunct.txt` records as ended (0: none).
    pub defunct: u32,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> String + '_ {
    move |e| format!("{}: {e}", path.display())
}

pub(super) fn restore<J: Journal>(
    dir: &Path,
    options: J::Options,
    mut load: impl FnMut(Option<&mut CheckpointReader>) -> bool,
) -> Result<Restored<J>, String> {
    let temp = dir.join("Temp");
    std::fs::create_dir_all(&temp).map_err(io(&temp))?;
    for entry in std::fs::read_dir(&temp).map_err(io(&temp))? {
        let path = entry.map_err(io(&temp))?.path();
        std::fs::remove_file(&path).map_err(io(&path))?;
    }
    let defunct = defunct::read(dir)?;
    let oldest_log = list_logs(dir).map_err(|e| e.to_string())?.first().map(|(decree, _)| *decree);
    let mut loaded = None;
    let mut rejected = Vec::new();
    for (decree, path) in list_checkpoints(dir).map_err(|e| e.to_string())? {
        if oldest_log.is_some_and(|first| first > decree.0 + 1) {
            return Err(format!(
                "missing logs: checkpoint {} needs decree {} but the oldest log starts at {}",
                path.display(),
                decree.0 + 1,
                oldest_log.unwrap_or_default()
            ));
        }
        let why = match CheckpointReader::open(&path) {
            Ok(mut reader) if reader.header().last_executed == decree => {
                let accepted = if reader.header().state_saved { load(Some(&mut reader)) } else { load(None) };
                if accepted {
                    loaded = Some((decree, reader.header().clone()));
                    break;
                }
                format!("{}: load_state refused it", path.display())
            }
            Ok(_) => format!("{}: its header names another decree", path.display()),
            Err(e) => e.to_string(),
        };
        tracing::warn!("{why}; trying an older checkpoint");
        rejected.push(why);
    }
    if loaded.is_none() {
        if let Some(first) = oldest_log.filter(|&first| first > 0) {
            let why = if rejected.is_empty() { "none exists".to_owned() } else { rejected.join("; ") };
            return Err(format!(
                "no checkpoint loads ({why}) and the oldest log starts at decree {first}, not 0"
            ));
        }
        if !load(None) {
            return Err("load_state(None) refused to start empty".to_owned());
        }
    }
    let (journal, mut recovery) = J::open(dir, options).map_err(|e| e.to_string())?;
    let replay_from = loaded.as_ref().map_or(0, |(decree, _)| decree.0 + 1);
    if let Some(seam) = recovery.seams.iter().find(|s| s.first_decree > replay_from && s.is_gap()) {
        return Err(format!(
            "missing logs: {} starts at decree {} but the logs before it end at {}",
            seam.path.display(),
            seam.first_decree,
            seam.highest_before.map_or("no vote".to_owned(), |h| format!("decree {h}"))
        ));
    }
    let checkpoint = loaded.map(|(decree, header)| {
        recovery.recovered.checkpoint = decree;
        recovery.recovered.records.retain(|r| !matches!(r, Record::Vote(v) if v.decree <= decree));
        LoadedCheckpoint { header }
    });
    if let Some(cut) = &recovery.cut {
        tracing::warn!(
            "{}: cut a torn tail of {} bytes at offset {}",
            cut.path.display(),
            cut.len,
            cut.offset
        );
    }
    Ok(Restored { journal, recovery, checkpoint, defunct })
}
