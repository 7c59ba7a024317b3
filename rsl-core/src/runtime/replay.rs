//! Offline replay (legacy `RSLStateMachine::Replay`, spec §1.7): restore an application
//! from a data directory without starting a replica or writing to the directory.

use super::executor::execute_decree;
use super::state_machine::StateMachine;
use super::NodeError;
use crate::paxos::{chosen_votes, Ballot, Decree, MemberId, Vote};
use crate::storage::checkpoint::{
    restore_newest, CheckpointConfiguration, CheckpointHeader, CheckpointWriter,
};
use crate::storage::read_log_dir;
use crate::wire::{Version, WireVote};
use std::path::{Path, PathBuf};

/// Loads the newest checkpoint of `dir` that `app` accepts (or none, when the logs start
/// at decree 0), then executes every decree up to `max` that the logs prove chosen.
/// Returns the last decree executed. `max == 0` does nothing (as in legacy).
pub fn replay<S: StateMachine>(app: &mut S, dir: &Path, max: Decree) -> Result<Decree, NodeError> {
    if max == Decree(0) {
        return Ok(Decree(0));
    }
    let restored = restore_newest(dir, |reader| app.load_state(Some(reader))).map_err(restore_error)?;
    let checkpoint = match restored.loaded {
        Some((decree, _)) => decree,
        None if app.load_state(None) => Decree(0),
        None => return Err(NodeError::Restore("load_state(None) refused to start empty".to_owned())),
    };
    let recovery = read_log_dir(dir).map_err(restore_error)?;
    let mut executed = checkpoint;
    for vote in chosen_votes(&recovery.recovered.records, checkpoint) {
        if vote.decree > max {
            break;
        }
        execute_decree(app, &vote, None);
        executed = vote.decree;
    }
    Ok(executed)
}

/// Legacy `Replay(dir, max, cpSeq, cpDir)`: replays, then saves the state as checkpoint
/// `checkpoint` (legacy `cpSeq`) in `checkpoint_dir`, which must differ from `dir`.
/// Returns the checkpoint's path.
pub fn replay_into_checkpoint<S: StateMachine>(
    app: &mut S,
    dir: &Path,
    max: Decree,
    checkpoint: Decree,
    checkpoint_dir: &Path,
) -> Result<PathBuf, NodeError> {
    if checkpoint == Decree(0) || same_dir(dir, checkpoint_dir) {
        return Err(NodeError::Restore(format!(
            "the checkpoint needs a decree above 0 and a directory other than {}",
            dir.display()
        )));
    }
    replay(app, dir, max)?;
    let member = MemberId::new("replay").map_err(NodeError::Core)?;
    let next = Vote::empty(checkpoint.next(), Ballot::default(), 1, checkpoint);
    let header = CheckpointHeader {
        version: Version::V6,
        member_id: member,
        last_executed: checkpoint,
        max_ballot: Ballot::default(),
        configuration: Some(CheckpointConfiguration {
            number: 1,
            initial_decree: checkpoint,
            members: Vec::new(),
            cookie: Default::default(),
        }),
        state_saved: true,
        file_size: 0,
        block_size: crate::storage::checkpoint::DEFAULT_BLOCK_SIZE,
        next_vote: WireVote::from_core(&next, Version::V6),
    };
    std::fs::create_dir_all(checkpoint_dir)
        .map_err(|e| NodeError::Restore(format!("{}: {e}", checkpoint_dir.display())))?;
    let mut writer =
        CheckpointWriter::create(checkpoint_dir, header).map_err(|e| NodeError::Restore(e.to_string()))?;
    app.save_state(&mut writer).map_err(|e| NodeError::Restore(format!("save_state failed: {e}")))?;
    writer.finish().map_err(|e| NodeError::Restore(e.to_string()))
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

fn restore_error(e: impl std::fmt::Display) -> NodeError {
    NodeError::Restore(e.to_string())
}
