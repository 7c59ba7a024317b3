//! The production runtime: one replica of an application ([`StateMachine`]) per
//! [`Replica`], with a durable file journal in its data directory, the TCP transport on its
//! Paxos port and the learn port serving its own journal. It owns the threads around the
//! pure core; the core decides, the runtime does IO and calls the application.
//!
//! Threads of one replica (besides the transport's and the learn server's own):
//! - the engine (`engine`): owns the protocol core, the transport and the learn server. It
//!   takes every queued input at once (peer messages, client requests, status queries,
//!   journal completions, learn results), steps the core, and performs the actions.
//! - the journal writer (`journal`): appends every record the engine handed over since its
//!   last sync, then makes them durable with one `sync` (group commit). The nvm journal on
//!   DAX (no `msync`) is written by the engine itself at the end of each batch.
//! - the execute thread (`executor`): every callback of the application that legacy runs
//!   on its execute or main loop, in the order the core emitted them; checkpoints.
//! - `m_numReaderThreads` fast-read workers (`readers`).
//! - a short-lived learner per `FetchVotes`, streaming a peer's journal, and a short-lived
//!   resolver every `resolve_interval_ms`, asking `resolve_node` where the peers are.
//!
//! Hand-offs per commit, seven on the critical path with the file journal: client →
//! engine; on each secondary, reader → engine → journal writer → engine; on the primary,
//! reader → engine → execute thread (which calls the application with the cookie) → the
//! client waiting on it. The primary's own engine → journal writer → engine runs in
//! parallel with the secondaries. The engine writes a packet to the socket itself when
//! nothing is queued for that connection (`transport::outbox`), so the transport's writer
//! threads take part only under load, where they batch. With the nvm journal on DAX a
//! secondary's engine persists the vote itself: five. The threads share
//! only atomics (`Published`) and the application behind the callback lock; every other
//! exchange is a message on a channel. The engine and the execute thread wait parked on
//! `transport::inbox` channels; the execute thread spins first where it may run on
//! another CPU, the engine never (that cost pipelined throughput).

mod config;
mod copy_state;
mod engine;
mod executor;
mod journal;
mod readers;
mod replay;
mod replica;
mod resolve;
mod restore;
mod state_machine;

pub use crate::transport::{RdmaConfig, TlsConfig};
pub use config::{JournalKind, RslConfig, RslConfigError, TransportKind};
pub use replay::{replay, replay_into_checkpoint};
pub use replica::{Refused, Replica, ReplicaHealth, Stats};
pub use state_machine::{ResponseCode, StateMachine};

use crate::paxos::{InvalidInput, MemberId};
use crate::transport::learn::LearnStartError;
use crate::transport::{StartError, TlsError};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64};

/// Legacy `EnableListenOnAllIPs`: replicas started afterwards listen on every address.
static LISTEN_ON_ALL_IPS: AtomicBool = AtomicBool::new(false);

/// Legacy `EnableListenOnAllIPs` (process-wide; call before starting replicas).
pub fn enable_listen_on_all_ips() {
    LISTEN_ON_ALL_IPS.store(true, std::sync::atomic::Ordering::Relaxed);
}

/// What the threads of one replica publish for the handle.
pub(crate) struct Published {
    /// The primary has announced itself (legacy's "is primary" flag).
    pub primary: AtomicBool,
    /// The decree executed last, or executing now (`GetCurrentSequenceNumber`).
    pub executed: AtomicU64,
    pub shutting_down: AtomicBool,
    pub saving_checkpoint: AtomicBool,
    /// The newest checkpoint saved since start (status answers name it).
    pub checkpointed: AtomicU64,
    /// The first decree of the oldest log kept, once covered logs were deleted (0 before).
    pub first_logged: AtomicU64,
    /// The decree of a member's checkpoint installed for the next start (`u64::MAX`: none).
    pub installed: AtomicU64,
    pub allow_save_state: AtomicBool,
    /// Peer messages and learned votes the core refused.
    pub refused: AtomicU64,
    /// Votes fetched from peers' learn ports.
    pub learned: AtomicU64,
    pub decrees_executed: AtomicU64,
    pub log_writes: AtomicU64,
    pub log_write_bytes: AtomicU64,
    pub log_write_micros: AtomicU64,
    pub log_write_max_micros: AtomicU64,
    /// On the primary: from persisting its vote for a decree to executing it.
    pub voting_micros: AtomicU64,
    pub voting_max_micros: AtomicU64,
}

impl Default for Published {
    fn default() -> Self {
        Self {
            primary: AtomicBool::new(false),
            executed: AtomicU64::new(0),
            shutting_down: AtomicBool::new(false),
            saving_checkpoint: AtomicBool::new(false),
            checkpointed: AtomicU64::new(0),
            first_logged: AtomicU64::new(0),
            installed: AtomicU64::new(u64::MAX),
            allow_save_state: AtomicBool::new(true),
            refused: AtomicU64::new(0),
            learned: AtomicU64::new(0),
            decrees_executed: AtomicU64::new(0),
            log_writes: AtomicU64::new(0),
            log_write_bytes: AtomicU64::new(0),
            log_write_micros: AtomicU64::new(0),
            log_write_max_micros: AtomicU64::new(0),
            voting_micros: AtomicU64::new(0),
            voting_max_micros: AtomicU64::new(0),
        }
    }
}

/// Why a replica did not start, or why it stopped.
#[derive(Debug)]
pub enum NodeError {
    Config(RslConfigError),
    NotAMember(MemberId),
    /// Restart (§5.5) failed: the checkpoints and journal in the data directory.
    Restore(String),
    /// The core refused the recovered state or a driver input (a bug in one of them).
    Core(InvalidInput),
    Transport(StartError),
    Learn(LearnStartError),
    /// TLS is configured but cannot be set up (a thumbprint, a certificate, a CA).
    Tls(TlsError),
    Thread(std::io::Error),
    /// The journal failed; nothing after the last completion is known durable.
    Journal(String),
    /// A runtime thread panicked (the application's `execute`, say).
    Panicked(String),
    /// A legacy feature asked for in a form this replica does not offer.
    Unsupported(&'static str),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Config(e) => e.fmt(f),
            Self::NotAMember(id) => write!(f, "member {id} is not in the configuration"),
            Self::Restore(e) => write!(f, "restart failed: {e}"),
            Self::Core(e) => write!(f, "the replica refused an input: {e}"),
            Self::Transport(e) => e.fmt(f),
            Self::Learn(e) => e.fmt(f),
            Self::Tls(e) => e.fmt(f),
            Self::Thread(e) => write!(f, "cannot start a runtime thread: {e}"),
            Self::Journal(e) => write!(f, "journal failed: {e}"),
            Self::Panicked(why) => write!(f, "a runtime thread panicked: {why}"),
            Self::Unsupported(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for NodeError {}

/// The message of a caught panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "non-string panic payload".to_owned(),
    }
}
