//! Legacy `CopyStateFromReplica` (§4.6): ask the members, in random order, for their
//! newest checkpoint over the learn port, and copy the first one at least as new as ours
//! into our directory. The live state does not change: the copy is one more checkpoint,
//! which the next start loads.

use crate::paxos::{Ballot, Decree, Member, Rng};
use crate::storage::checkpoint::{list_checkpoints, CheckpointReader};
use crate::transport::learn::LearnClient;
use crate::transport::member_addr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The copied checkpoint's decree and path, or `None` when no member had one as new as
/// ours (or every copy failed).
pub(super) fn copy_state(
    client: &LearnClient,
    mut peers: Vec<Member>,
    data_dir: &Path,
    latest: (Decree, Ballot),
    seed: u64,
) -> Option<(Decree, PathBuf)> {
    let ours = list_checkpoints(data_dir).ok()?.iter().map(|(decree, _)| *decree).max().unwrap_or_default();
    let mut rng = Rng::new(seed);
    while !peers.is_empty() {
        let peer = peers.swap_remove(rng.below(peers.len() as u64) as usize);
        let addr = SocketAddr::from((member_addr(peer.ip), peer.learn_port));
        let copied = client
            .fetch_status(addr, latest.0, latest.1.clone())
            .map_err(|e| e.to_string())
            .and_then(|status| match status.checkpointed_decree {
                theirs if theirs.0 > 0 && theirs >= ours => install(client, addr, theirs, data_dir),
                theirs => Err(format!("its newest checkpoint ({theirs}) is older than ours ({ours})")),
            });
        match copied {
            Ok(copied) => return Some(copied),
            Err(e) => tracing::warn!("no checkpoint copied from {}: {e}", peer.id),
        }
    }
    None
}

/// The checkpoint of the member at `addr` if it covers `first` (a decree this replica
/// needs and the member no longer logs), installed in `dir`.
pub(super) fn copy_past(
    client: &LearnClient,
    addr: SocketAddr,
    first: Decree,
    dir: &Path,
) -> Option<(Decree, PathBuf)> {
    let status = client.fetch_status(addr, first, Ballot::default()).ok()?;
    let theirs = status.checkpointed_decree;
    (theirs >= first).then(|| install(client, addr, theirs, dir)).and_then(|installed| {
        installed.map_err(|e| tracing::warn!("cannot install checkpoint {theirs}: {e}")).ok()
    })
}

/// Fetches `<decree>.codex` into `Temp/`, verifies every block, and moves it in place.
fn install(
    client: &LearnClient,
    addr: SocketAddr,
    decree: Decree,
    dir: &Path,
) -> Result<(Decree, PathBuf), String> {
    let temp = dir.join("Temp").join(format!("{}.codex", decree.0));
    let path = dir.join(format!("{}.codex", decree.0));
    client.fetch_checkpoint(addr, decree, &temp).map_err(|e| e.to_string())?;
    let verified =
        CheckpointReader::open(&temp).map_err(|e| e.to_string()).and_then(|mut reader| {
            match reader.header().last_executed == decree {
                true => reader.verify().map_err(|e| e.to_string()),
                false => Err(format!("the file sent for {decree} holds {}", reader.header().last_executed)),
            }
        });
    let installed = verified.and_then(|()| std::fs::rename(&temp, &path).map_err(|e| e.to_string()));
    if installed.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    installed.map(|()| (decree, path))
}
