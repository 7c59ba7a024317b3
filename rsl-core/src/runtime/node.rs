//! [`Node`]: a replica of a plain [`App`] (execute and digest, no checkpoints) whose
//! clients hear back on a channel — what the `rsl` tool runs. It adapts the `App` to a
//! [`StateMachine`] and runs it in a [`Replica`]. [`App`], [`Completion`] and
//! [`NodeReport`] are shared with the in-process cluster ([`crate::local`]).

use super::config::RslConfig;
use super::replica::Replica;
use super::state_machine::{ResponseCode, StateMachine};
use super::NodeError;
use crate::paxos::{AbortReason, Config, Cookie, Decree, MemberId, MemberSet, Vote};
use crate::storage::checkpoint::{CheckpointReader, CheckpointWriter};
use crate::wire::Version;
use bytes::Bytes;
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::io;
use std::path::PathBuf;

/// The replicated application: executes requests in decree order.
pub trait App: Send + Sync + 'static {
    fn execute(&mut self, request: &[u8]);
    /// A digest of the state, to compare replicas.
    fn digest(&self) -> u64;
}

/// What a client hears back about a request it submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    Executed { cookie: Cookie },
    Aborted { cookie: Cookie, reason: ResponseCode },
}

impl From<AbortReason> for ResponseCode {
    fn from(reason: AbortReason) -> Self {
        match reason {
            AbortReason::NotPrimary => Self::NotPrimary,
            AbortReason::ShuttingDown => Self::ShuttingDown,
        }
    }
}

/// Where a replica's application stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NodeReport {
    pub executed: Decree,
    pub digest: u64,
}

/// Executes a chosen decree's requests and tells the submitter (`cookies` is `Some` only
/// on the replica the requests were submitted to). Returns whether they were ours.
pub(crate) fn execute(
    app: &mut impl App,
    vote: &Vote,
    cookies: Option<Vec<Cookie>>,
    done: &Sender<Completion>,
) -> bool {
    for request in vote.requests() {
        app.execute(request);
    }
    let ours = cookies.is_some();
    for cookie in cookies.into_iter().flatten() {
        // A client that stopped listening loses only its own completions.
        let _ = done.send(Completion::Executed { cookie });
    }
    ours
}

/// How to run one replica.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub me: MemberId,
    /// Every member with its IP, Paxos port and learn port (configuration number 1).
    pub members: MemberSet,
    pub config: Config,
    /// The version of the journal, the Paxos port and the learn port.
    pub version: Version,
    /// The journal's directory (created if missing); the learn port serves it.
    pub data_dir: PathBuf,
    /// Seeds the core's election jitter and the journal's rotation thresholds.
    pub seed: u64,
}

struct AppMachine {
    app: Box<dyn App>,
    done: Sender<Completion>,
}

impl StateMachine for AppMachine {
    type Cookie = Cookie;

    /// An `App` keeps no checkpoints: it starts empty and replays the whole journal.
    fn load_state(&mut self, reader: Option<&mut CheckpointReader>) -> bool {
        reader.is_none()
    }

    fn execute_replicated_request(&mut self, request: &[u8], cookie: Option<Cookie>, _save_state: &mut bool) {
        self.app.execute(request);
        if let Some(cookie) = cookie {
            let _ = self.done.send(Completion::Executed { cookie });
        }
    }

    /// A `Node` issues no fast reads.
    fn execute_fast_read_request(&self, _request: &[u8], _cookie: Cookie) {}

    fn abort_request(&self, reason: ResponseCode, cookie: Cookie) {
        let _ = self.done.send(Completion::Aborted { cookie, reason });
    }

    /// Never asked: `execute_replicated_request` never requests a checkpoint.
    fn save_state(&self, _writer: &mut CheckpointWriter) -> io::Result<()> {
        Err(io::Error::other("an App keeps no checkpoints"))
    }

    fn notify_status(&mut self, _is_primary: bool) {}

    fn shut_down(&mut self, _status: ResponseCode) {}
}

/// A running replica of an [`App`]. Dropping it stops it (use [`Node::stop`] to hear how
/// it ended).
pub struct Node {
    replica: Replica<AppMachine>,
    completions: Receiver<Completion>,
    done: Sender<Completion>,
}

impl Node {
    /// Recovers the journal, starts the ports and the threads, and returns once the
    /// decrees the journal proves chosen are replayed into `app`.
    pub fn start(node: NodeConfig, app: impl App) -> Result<Self, NodeError> {
        let config = RslConfig {
            working_dir: node.data_dir,
            add_member_id_to_working_dir: false,
            window: node.config.window,
            core_override: Some(node.config),
            seed: node.seed,
            ..RslConfig::default()
        };
        let (done, completions) = unbounded();
        let machine = AppMachine { app: Box::new(app), done: done.clone() };
        let replica = Replica::initialize(&config, node.members, &node.me, node.version, machine)?;
        Ok(Self { replica, completions, done })
    }

    /// Submits a request; its completion arrives on [`Node::completions`].
    pub fn submit(&self, request: Bytes, cookie: Cookie) {
        if let Err((reason, cookie)) = self.replica.replicate_request(&request, cookie) {
            let _ = self.done.send(Completion::Aborted { cookie, reason });
        }
    }

    pub fn completions(&self) -> &Receiver<Completion> {
        &self.completions
    }

    /// Whether the replica is primary and takes requests.
    pub fn is_primary(&self) -> bool {
        self.replica.is_primary()
    }

    /// The executed decree and the application's digest, read together.
    pub fn progress(&self) -> NodeReport {
        self.replica.read_state(|m| NodeReport {
            executed: self.replica.current_sequence_number(),
            digest: m.app.digest(),
        })
    }

    /// Peer messages and learned votes the core refused so far.
    pub fn refused_inputs(&self) -> u64 {
        self.replica.refused_inputs()
    }

    /// Votes fetched from peers' learn ports so far (catching up).
    pub fn learned_votes(&self) -> u64 {
        self.replica.learned_votes()
    }

    /// How many journal records recovery found at start.
    pub fn recovered_records(&self) -> usize {
        self.replica.recovered_records()
    }

    /// Whether the replica is still running (false after it failed; [`Node::stop`] says why).
    pub fn is_running(&self) -> bool {
        self.replica.is_running()
    }

    /// Aborts pending requests (`ShuttingDown`), makes the journal durable, stops the ports
    /// and reports where the application stands, or why the replica failed.
    pub fn stop(self) -> Result<NodeReport, NodeError> {
        let executed = self.replica.current_sequence_number();
        let machine = self.replica.unload()?;
        Ok(NodeReport { executed, digest: machine.app.digest() })
    }
}
