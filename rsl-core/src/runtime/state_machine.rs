//! The application side of a replica (legacy `RSLStateMachine`'s virtuals, spec §1.6, §2).
//!
//! The replica holds the application behind the legacy callback lock, a readers-writer
//! lock: callbacks of legacy class *Exclusive* get `&mut self` (write lock), those of class
//! *Shared* get `&self` (read lock). Legacy class *None* (`CanBecomePrimary`,
//! `AcceptMessageFromReplica`, `ResolveNode`, unserialized fast reads) also runs under the
//! read lock here:
//! Rust cannot lend `&self` while `&mut self` is out, and the stronger guarantee breaks no
//! application written for the weaker one.

use crate::paxos::{Decree, Member, MemberId};
use crate::storage::checkpoint::{CheckpointReader, CheckpointWriter};
use std::io;
use std::path::Path;

/// Legacy `RSLResponseCode`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
#[repr(u32)]
pub enum ResponseCode {
    Success = 0,
    FastReadStale = 1,
    NotPrimary = 2,
    ShuttingDown = 3,
    AlreadyBootstrapped = 4,
    BootstrapFailed = 5,
    InvalidParameter = 6,
}

/// The replicated application.
pub trait StateMachine: Send + Sync + 'static {
    /// What the application attaches to a request and gets back on execute or abort.
    type Cookie: Send + 'static;

    /// Exclusive. Restores the state saved in a checkpoint, or starts empty (`None`);
    /// returning false makes the replica try an older checkpoint.
    fn load_state(&mut self, reader: Option<&mut CheckpointReader>) -> bool;

    /// Exclusive. Executes one request of a chosen decree, in decree and submission order.
    /// `cookie` is `Some` only on the replica the request was submitted to. Setting
    /// `save_state` asks for a checkpoint right after this decree.
    fn execute_replicated_request(
        &mut self,
        request: &[u8],
        cookie: Option<Self::Cookie>,
        save_state: &mut bool,
    );

    /// Exclusive. Brackets the requests of one decree (not called for empty decrees).
    fn before_execute_replicated_requests(&mut self) {}
    fn after_execute_replicated_requests(&mut self) {}

    /// Shared. Answers a fast read once the replica executed the decree the reader saw.
    fn execute_fast_read_request(&self, request: &[u8], cookie: Self::Cookie);

    /// Shared. Returns a request unexecuted: `NotPrimary` or `ShuttingDown` for replicated
    /// requests, `FastReadStale` or `ShuttingDown` for fast reads. An aborted replicated
    /// request may still be chosen later (re-proposed by another primary); it then
    /// executes everywhere without a cookie.
    fn abort_request(&self, status: ResponseCode, cookie: Self::Cookie);

    /// Shared. Writes the state as of the current decree into a checkpoint.
    fn save_state(&self, writer: &mut CheckpointWriter) -> io::Result<()>;

    /// Shared. Like `save_state`, but may decline (`Ok(false)`), which stops automatic
    /// checkpoints until [`super::Replica::allow_save_state`]`(true)`.
    fn try_save_state(&self, writer: &mut CheckpointWriter) -> io::Result<bool> {
        self.save_state(writer).map(|()| true)
    }

    /// Shared. The checkpoint of `decree` is in place at `path`.
    fn state_saved(&self, _decree: Decree, _path: &Path) {}

    /// Shared. A member's checkpoint of `decree` was copied to `path`: the end of a
    /// [`super::Replica::copy_state_from_replica`] (with its cookie; `None` and decree 0
    /// when no member had one as new as ours), or a primary's own copy of a secondary's
    /// checkpoint when its log filled (no cookie). The live state is unchanged; the copy is
    /// loaded at the next start.
    fn state_copied(&self, _decree: Decree, _path: Option<&Path>, _cookie: Option<Self::Cookie>) {}

    /// Exclusive. This replica became primary (after the first decree of its ballot was
    /// chosen) or stopped being primary (after every chosen decree executed and every
    /// pending request was aborted). Not called at start or on shutdown.
    fn notify_status(&mut self, is_primary: bool);

    /// Exclusive. Every decree accepted before this replica's election has executed.
    fn notify_primary_recovered(&mut self) {}

    /// Before each election attempt: `None` stays secondary (asked again a heartbeat
    /// later); `Some(cookie)` goes ahead and attaches `cookie` to this primary's messages.
    fn can_become_primary(&self) -> Option<Vec<u8>> {
        Some(Vec::new())
    }

    /// Legacy `ResolveNode`, asked for each peer of the set a replica starts with and of
    /// every configuration it installs, and again for every peer each
    /// `RslConfig::resolve_interval_ms` (30 s) on a thread of its own, with the address
    /// last resolved: may set where to reach `member` (`ip`, ports), or return false if it
    /// cannot (the address it had is kept). A changed address is dialled from then on.
    /// The default changes nothing: a member with IP 0 and a host name is looked up on
    /// every connection.
    fn resolve_node(&self, _member: &mut Member) -> bool {
        true
    }

    /// Whether to answer a Prepare or vote from `from`, whose primary cookie is
    /// `primary_cookie` (not asked when the global accept-messages flag is configured).
    fn accept_message_from_replica(&self, _from: &MemberId, _primary_cookie: &[u8]) -> bool {
        true
    }

    /// Exclusive. A replica-set change executed, on every replica of the old and the new
    /// set, in decree order (during start-up replay too); [`super::Replica::configuration`]
    /// returns the new set already. `cookie` is the `change_configuration` cookie on the
    /// replica that asked for the change, `None` elsewhere.
    fn notify_configuration_changed(&mut self, _cookie: Option<Self::Cookie>) {}

    /// Exclusive. A change asked of this replica will not be decided by it: it lost primacy
    /// first (`NotPrimary`) or stopped (`ShuttingDown`). Another primary may still decide
    /// the same change (`notify_configuration_changed(None)` then follows).
    fn abort_change_configuration(&mut self, _status: ResponseCode, _cookie: Self::Cookie) {}

    /// Exclusive. The replica stopped: on unload, or after its relinquish vote was chosen.
    fn shut_down(&mut self, status: ResponseCode);
}
