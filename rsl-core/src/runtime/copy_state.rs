//! Copying a member's checkpoint over the learn port (§4.6): legacy
//! `CopyStateFromReplica`, the primary's copy of a secondary's checkpoint when its log
//! rotates, and the copy a replica makes when the decrees it needs are gone from its
//! members' logs. The live state does not change: the copy is one more checkpoint, which
//! the next start loads.

use crate::paxos::{Ballot, Decree, Member, Rng};
use crate::storage::checkpoint::{list_checkpoints, rewrite, CheckpointHeader, CheckpointReader};
use crate::transport::learn::LearnClient;
use crate::transport::member_socket;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Copies into `dir` for a replica whose promise is `ballot`.
pub(super) struct Copier {
    pub client: LearnClient,
    pub dir: PathBuf,
    /// A copy's promise is raised to ours: the logs that hold ours may go once the copy is
    /// the oldest checkpoint kept, and a restart must not forget the promise.
    pub ballot: Ballot,
}

impl Copier {
    /// Asks `peers` in random order; copies the first checkpoint at least as new as ours
    /// and as `at_least`. Its decree and path, or `None` when no member had one (or every
    /// copy failed).
    pub fn newest_of(
        &self,
        mut peers: Vec<Member>,
        at_least: Decree,
        seed: u64,
    ) -> Option<(Decree, PathBuf)> {
        let ours =
            list_checkpoints(&self.dir).ok()?.iter().map(|(decree, _)| *decree).max().unwrap_or_default();
        let wanted = ours.max(at_least).max(Decree(1));
        let mut rng = Rng::new(seed);
        while !peers.is_empty() {
            let peer = peers.swap_remove(rng.below(peers.len() as u64) as usize);
            let addr = member_socket(&peer, peer.learn_port).map_err(|e| e.to_string());
            let copied = addr.and_then(|addr| match self.status(addr)? {
                theirs if theirs >= wanted => self.install(addr, theirs),
                theirs => Err(format!("its newest checkpoint ({theirs}) is older than {wanted}")),
            });
            match copied {
                Ok(copied) => return Some(copied),
                Err(e) => tracing::debug!("no checkpoint copied from {}: {e}", peer.id),
            }
        }
        None
    }

    /// The checkpoint of the member at `addr` if it covers `first` (a decree this replica
    /// needs and the member no longer logs), installed.
    pub fn past(&self, addr: SocketAddr, first: Decree) -> Option<(Decree, PathBuf)> {
        let theirs = self.status(addr).ok().filter(|theirs| *theirs >= first)?;
        self.install(addr, theirs).map_err(|e| tracing::warn!("cannot install checkpoint {theirs}: {e}")).ok()
    }

    /// The newest checkpoint the member at `addr` has.
    fn status(&self, addr: SocketAddr) -> Result<Decree, String> {
        let status =
            self.client.fetch_status(addr, Decree(0), Ballot::default()).map_err(|e| e.to_string())?;
        Ok(status.checkpointed_decree)
    }

    /// Fetches `<decree>.codex` into `Temp/`, verifies every block, raises its promise to
    /// ours, and moves it in place.
    fn install(&self, addr: SocketAddr, decree: Decree) -> Result<(Decree, PathBuf), String> {
        let temp = self.dir.join("Temp").join(format!("{}.codex", decree.0));
        let path = self.dir.join(format!("{}.codex", decree.0));
        self.client.fetch_checkpoint(addr, decree, &temp).map_err(|e| e.to_string())?;
        let installed = self
            .verify(&temp, decree)
            .and_then(|()| std::fs::rename(&temp, &path).map_err(|e| e.to_string()));
        if installed.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        installed.map(|()| (decree, path))
    }

    fn verify(&self, temp: &Path, decree: Decree) -> Result<(), String> {
        let mut reader = CheckpointReader::open(temp).map_err(|e| e.to_string())?;
        if reader.header().last_executed != decree {
            return Err(format!("the file sent for {decree} holds {}", reader.header().last_executed));
        }
        reader.verify().map_err(|e| e.to_string())?;
        if reader.header().max_ballot < self.ballot {
            drop(reader);
            let raise =
                |h: &CheckpointHeader| Ok(CheckpointHeader { max_ballot: self.ballot.clone(), ..h.clone() });
            rewrite(temp, raise).map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}
