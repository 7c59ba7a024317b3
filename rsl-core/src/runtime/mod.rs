//! The production runtime: one replica per [`Node`], with a durable [`FileJournal`] in its
//! data directory, the TCP transport on its Paxos port and the learn port serving its own
//! journal. It owns the threads around the pure core; the core decides, the runtime does IO.
//!
//! Threads of one node (besides the transport's and the learn server's own):
//! - the engine (`engine`): owns the [`Replica`](crate::paxos::Replica), the application,
//!   the transport and the learn server. It takes every queued input at once (peer
//!   messages, client requests, status queries, journal completions, learn results), steps
//!   the core, and performs the actions; the application executes on this thread.
//! - the journal writer (`journal`): owns the journal; appends every record the engine
//!   handed over since its last sync, then makes them durable with one `sync` (group
//!   commit), and reports the last token back as `Persisted`.
//! - a short-lived learner per `FetchVotes`, streaming a peer's journal.
//!
//! Hand-offs per commit on the primary: client → engine, engine → transport (→ peers),
//! engine → journal writer → engine (in parallel with the peers), peers → engine,
//! engine → client. Nothing is shared but atomics the handle reads ([`Node::is_primary`],
//! [`Node::progress`]); every other exchange is a message on a channel.

mod engine;
mod journal;

use crate::paxos::{
    AbortReason, Config, Configuration, Cookie, Decree, InvalidInput, MemberId, MemberSet, Replica, Vote,
};
use crate::storage::{FileJournal, FileOptions, Journal, RecoverError};
use crate::transport::learn::{LearnConfig, LearnServer, LearnStartError};
use crate::transport::{StartError, TcpTransport, TransportConfig};
use crate::wire::Version;
use bytes::Bytes;
use crossbeam_channel::{bounded, unbounded, Receiver, Sender};
use engine::{Engine, Event, Published};
use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// The replicated application: executes requests in decree order.
pub trait App: Send + 'static {
    fn execute(&mut self, request: &[u8]);
    /// A digest of the state, to compare replicas.
    fn digest(&self) -> u64;
}

/// What a client hears back about a request it submitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Completion {
    Executed { cookie: Cookie },
    Aborted { cookie: Cookie, reason: AbortReason },
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

/// Why a node did not start, or why its engine stopped.
#[derive(Debug)]
pub enum NodeError {
    NotAMember(MemberId),
    Recover(RecoverError),
    /// The core refused the recovered state or a driver input (a bug in one of them).
    Core(InvalidInput),
    Transport(StartError),
    Learn(LearnStartError),
    Thread(std::io::Error),
    /// The journal failed; nothing after the last completion is known durable.
    Journal(String),
    /// A runtime thread panicked (the application's `execute`, say).
    Panicked(String),
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotAMember(id) => write!(f, "member {id} is not in the configuration"),
            Self::Recover(e) => write!(f, "journal recovery failed: {e}"),
            Self::Core(e) => write!(f, "the replica refused an input: {e}"),
            Self::Transport(e) => e.fmt(f),
            Self::Learn(e) => e.fmt(f),
            Self::Thread(e) => write!(f, "cannot start a runtime thread: {e}"),
            Self::Journal(e) => write!(f, "journal failed: {e}"),
            Self::Panicked(why) => write!(f, "a runtime thread panicked: {why}"),
        }
    }
}

impl std::error::Error for NodeError {}

/// A running replica. Dropping it stops it (use [`Node::stop`] to hear how it ended).
pub struct Node {
    events: Sender<Event>,
    completions: Receiver<Completion>,
    published: Arc<Published>,
    engine: Option<JoinHandle<Result<NodeReport, NodeError>>>,
    recovered_records: usize,
}

impl Node {
    /// Recovers the journal, starts the ports and the engine, and returns once the engine
    /// has replayed the decrees the journal proves chosen into `app`.
    pub fn start<A: App>(node: NodeConfig, app: A) -> Result<Self, NodeError> {
        let me = node.members.members().iter().find(|m| m.id == node.me).cloned();
        let me = me.ok_or_else(|| NodeError::NotAMember(node.me.clone()))?;
        let options = FileOptions { seed: node.seed, ..FileOptions::new(node.version) };
        let (journal, recovery) = FileJournal::open(&node.data_dir, options).map_err(NodeError::Recover)?;
        let recovered_records = recovery.recovered.records.len();
        let configuration =
            Configuration { number: 1, initial_decree: Decree(0), members: node.members.clone() };
        let epoch = Instant::now();
        let replica =
            Replica::new(node.me.clone(), node.config, configuration, recovery.recovered, node.seed, 0)
                .map_err(NodeError::Core)?;
        let transport_config = TransportConfig::new(node.me.clone(), node.members, node.version);
        let transport = TcpTransport::start(transport_config).map_err(NodeError::Transport)?;
        let learn_config = LearnConfig::new(me, node.version, node.data_dir);
        let learn = LearnServer::start(learn_config).map_err(NodeError::Learn)?;
        let (events_tx, events) = unbounded();
        let writer = journal::start(journal, events_tx.clone(), &node.me)?;
        let (done, completions) = unbounded();
        let published = Arc::new(Published::default());
        let (ready_tx, ready) = bounded(1);
        let engine = Engine {
            replica,
            epoch,
            app,
            events,
            events_tx: events_tx.clone(),
            done,
            published: Arc::clone(&published),
            transport,
            learn,
            writer,
            ready: Some(ready_tx),
            version: node.version,
            pending: Vec::new(),
            pending_token: None,
        };
        let engine = std::thread::Builder::new()
            .name(format!("rsl-engine-{}", node.me))
            .spawn(move || engine.run())
            .map_err(NodeError::Thread)?;
        let mut node =
            Self { events: events_tx, completions, published, engine: Some(engine), recovered_records };
        if ready.recv().is_err() {
            return Err(node
                .shut_down()
                .err()
                .unwrap_or_else(|| NodeError::Panicked("engine ended".to_owned())));
        }
        Ok(node)
    }

    /// Submits a request; its completion arrives on [`Node::completions`]. A stopped
    /// node's request is lost, as with a crashed process.
    pub fn submit(&self, request: Bytes, cookie: Cookie) {
        let _ = self.events.send(Event::Replicate { request, cookie });
    }

    pub fn completions(&self) -> &Receiver<Completion> {
        &self.completions
    }

    /// Whether the replica acted as primary after its latest batch of inputs.
    pub fn is_primary(&self) -> bool {
        self.published.primary.load(Ordering::Acquire)
    }

    /// The executed decree and the application's digest after the latest batch (read
    /// separately, so they may straddle a batch; [`Node::stop`] reports them exactly).
    pub fn progress(&self) -> NodeReport {
        NodeReport {
            executed: Decree(self.published.executed.load(Ordering::Acquire)),
            digest: self.published.digest.load(Ordering::Acquire),
        }
    }

    /// Peer messages and learned votes the core refused so far.
    pub fn refused_inputs(&self) -> u64 {
        self.published.refused.load(Ordering::Relaxed)
    }

    /// Votes fetched from peers' learn ports so far (catching up).
    pub fn learned_votes(&self) -> u64 {
        self.published.learned.load(Ordering::Relaxed)
    }

    /// How many journal records recovery found at start.
    pub fn recovered_records(&self) -> usize {
        self.recovered_records
    }

    /// Whether the engine is still running (false after it failed; [`Node::stop`] says why).
    pub fn is_running(&self) -> bool {
        self.engine.as_ref().is_some_and(|e| !e.is_finished())
    }

    /// Aborts pending requests (`ShuttingDown`), makes the journal durable, stops the ports
    /// and reports where the application stands, or why the engine failed.
    pub fn stop(mut self) -> Result<NodeReport, NodeError> {
        self.shut_down()
    }

    fn shut_down(&mut self) -> Result<NodeReport, NodeError> {
        let _ = self.events.send(Event::Stop);
        let engine = self.engine.take().ok_or_else(|| NodeError::Panicked("stopped twice".to_owned()))?;
        engine.join().map_err(|p| NodeError::Panicked(panic_message(&p)))?
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        if self.engine.is_some() {
            let _ = self.shut_down();
        }
    }
}

/// The message of a caught panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(s), _) => (*s).to_owned(),
        (_, Some(s)) => s.clone(),
        _ => "non-string panic payload".to_owned(),
    }
}
