//! A cluster of replicas inside one process: one engine thread per replica, crossbeam
//! channels as the transport, an in-memory journal with group commit, and the
//! application executed on the engine thread. The journal can emulate a flush latency
//! (`flush`): a writer thread per replica then sleeps that long per group commit, the way
//! an `fdatasync` would block it, while the engine goes on. The P1 benchmark and the `rsl demo` command
//! run on it; the production runtime (threads per replica, real journal and TCP) replaces
//! it without touching the protocol core.
//!
//! A commit crosses four thread hand-offs: client → primary, primary → each secondary,
//! secondary → primary, primary → client. Nothing else is shared between threads except
//! one atomic "is primary" flag per replica that clients read to find the primary.

use crate::paxos::AbortReason;
use crate::paxos::{
    chosen_votes, Action, Config, Configuration, Cookie, Decree, Input, MemberId, MemberSet, Message, Record,
    Recovered, Replica, Token, Vote,
};
use crate::runtime::ResponseCode;
use bytes::Bytes;
use crossbeam_channel::{unbounded, Receiver, RecvTimeoutError, Sender};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

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
fn execute(app: &mut impl App, vote: &Vote, cookies: Option<Vec<Cookie>>, done: &Sender<Completion>) -> bool {
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

enum Event {
    Message(Message),
    Replicate {
        request: Bytes,
        cookie: Cookie,
    },
    /// A peer asks for the chosen votes from `first` on.
    Fetch {
        first: Decree,
        reply: Sender<Event>,
    },
    Learned {
        from: MemberId,
        votes: Vec<Arc<Vote>>,
    },
    Persisted(Token),
    Stop,
}

/// Counters shared by all engine threads (relaxed atomics, read by the benchmark).
#[derive(Default, Debug)]
pub struct Counters {
    pub messages: AtomicU64,
    pub decrees_passed_on_primary: AtomicU64,
}

struct Node {
    tx: Sender<Event>,
    join: Option<JoinHandle<NodeReport>>,
    primary: Arc<AtomicBool>,
}

pub struct LocalCluster {
    nodes: Vec<Node>,
    completions: Receiver<Completion>,
    pub counters: Arc<Counters>,
}

impl LocalCluster {
    /// Starts `n` replicas named "1".."n", each with an app from `make_app`. With a
    /// non-zero `flush`, each group commit of the journal takes that long.
    pub fn start<A: App>(
        n: usize,
        config: &Config,
        flush: Duration,
        mut make_app: impl FnMut() -> A,
    ) -> Self {
        let ids: Vec<String> = (1..=n).map(|i| i.to_string()).collect();
        let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let members = MemberSet::of_ids(&id_refs).expect("valid ids");
        let configuration = Configuration { number: 1, initial_decree: Decree(0), members };
        let channels: Vec<(Sender<Event>, Receiver<Event>)> = (0..n).map(|_| unbounded()).collect();
        let peers: Vec<(MemberId, Sender<Event>)> =
            configuration.members.ids().cloned().zip(channels.iter().map(|(tx, _)| tx.clone())).collect();
        let (done_tx, completions) = unbounded();
        let counters = Arc::new(Counters::default());
        let epoch = Instant::now();
        let nodes = channels
            .into_iter()
            .enumerate()
            .map(|(i, (tx, rx))| {
                let primary = Arc::new(AtomicBool::new(false));
                let replica = Replica::new(
                    &configuration.members.members()[i],
                    config.clone(),
                    configuration.clone(),
                    Recovered::default(),
                    0x5eed + i as u64,
                    0,
                )
                .expect("valid replica");
                let flusher = (!flush.is_zero()).then(|| {
                    let (flush_tx, flush_rx) = unbounded();
                    let engine_tx = tx.clone();
                    std::thread::Builder::new()
                        .name(format!("rsl-journal-{}", i + 1))
                        .spawn(move || flush_loop(&flush_rx, &engine_tx, flush))
                        .expect("spawn journal thread");
                    flush_tx
                });
                let engine = Engine {
                    flusher,
                    replica,
                    rx,
                    peers: peers.clone(),
                    done: done_tx.clone(),
                    journal: Vec::new(),
                    app: make_app(),
                    primary: Arc::clone(&primary),
                    counters: Arc::clone(&counters),
                    epoch,
                };
                let join = std::thread::Builder::new()
                    .name(format!("rsl-engine-{}", i + 1))
                    .spawn(move || engine.run())
                    .expect("spawn engine thread");
                Node { tx, join: Some(join), primary }
            })
            .collect();
        Self { nodes, completions, counters }
    }

    /// Submits a request to replica `node` (index from 0).
    pub fn submit(&self, node: usize, request: Bytes, cookie: Cookie) {
        // A stopped replica's channel is closed; the request is then simply lost, as it
        // would be with a crashed process.
        let _ = self.nodes[node].tx.send(Event::Replicate { request, cookie });
    }

    pub fn completions(&self) -> &Receiver<Completion> {
        &self.completions
    }

    /// The index of a replica that currently acts as primary, if any.
    pub fn primary(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.join.is_some() && n.primary.load(Ordering::Acquire))
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Stops replica `node` as a crash would (its in-flight messages are lost).
    pub fn stop(&mut self, node: usize) -> Option<NodeReport> {
        let n = &mut self.nodes[node];
        let _ = n.tx.send(Event::Stop);
        n.primary.store(false, Ordering::Release);
        n.join.take().map(|j| j.join().expect("engine thread panicked"))
    }

    /// Stops every replica and returns their reports (None for replicas already stopped).
    pub fn shutdown(mut self) -> Vec<Option<NodeReport>> {
        (0..self.nodes.len()).map(|i| self.stop(i)).collect()
    }
}

/// The journal writer: one emulated flush covers every token that arrived before it.
fn flush_loop(tokens: &Receiver<Token>, engine: &Sender<Event>, flush: Duration) {
    while let Ok(first) = tokens.recv() {
        let token = tokens.try_iter().fold(first, Token::max);
        std::thread::sleep(flush);
        if engine.send(Event::Persisted(token)).is_err() {
            return;
        }
    }
}

struct Engine<A> {
    /// The journal writer thread, when flushes take time; else records are durable at once.
    flusher: Option<Sender<Token>>,
    replica: Replica,
    rx: Receiver<Event>,
    peers: Vec<(MemberId, Sender<Event>)>,
    done: Sender<Completion>,
    /// The in-memory journal: every record ever persisted.
    journal: Vec<Record>,
    app: A,
    primary: Arc<AtomicBool>,
    counters: Arc<Counters>,
    epoch: Instant,
}

impl<A: App> Engine<A> {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    fn run(mut self) -> NodeReport {
        loop {
            let deadline = self.replica.next_deadline();
            let wait = Duration::from_micros(deadline.saturating_sub(self.now()).min(1_000_000));
            let first = match self.rx.recv_timeout(wait) {
                Ok(event) => Some(event),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            // Take everything queued, so one journal flush covers it all (group commit).
            let events: Vec<Event> = first.into_iter().chain(self.rx.try_iter()).collect();
            if events.iter().any(|e| matches!(e, Event::Stop)) {
                break;
            }
            let now = self.now();
            self.input(now, Input::Tick);
            for event in events {
                match event {
                    Event::Message(m) => self.input(now, Input::Message(m)),
                    Event::Replicate { request, cookie } => {
                        self.input(now, Input::Replicate { request, cookie, exclusive: false, last: false })
                    }
                    Event::Fetch { first, reply } => {
                        let after = Decree(first.0.saturating_sub(1));
                        let votes = chosen_votes(&self.journal, after);
                        let from = self.replica.id().clone();
                        let _ = reply.send(Event::Learned { from, votes });
                    }
                    Event::Learned { from, votes } => self.input(now, Input::Learned { from, votes }),
                    Event::Persisted(token) => self.input(now, Input::Persisted(token)),
                    Event::Stop => unreachable!("handled above"),
                }
            }
            self.primary.store(self.replica.is_primary(), Ordering::Release);
        }
        NodeReport { executed: self.replica.pointers().executed, digest: self.app.digest() }
    }

    /// Steps one input and performs the resulting actions; persisted records complete at
    /// once (the journal is memory), which may release more actions.
    fn input(&mut self, now: u64, input: Input) {
        // Inputs come from correct peers and this engine; a refusal is a bug to surface.
        if let Err(e) = self.replica.step(now, input) {
            panic!("replica {} refused an input: {e}", self.replica.id());
        }
        loop {
            let actions = self.replica.drain_actions();
            if actions.is_empty() {
                return;
            }
            let mut persisted = None;
            for action in actions {
                match action {
                    Action::Persist { token, record } => {
                        self.journal.push(record);
                        persisted = Some(token);
                    }
                    other => self.perform(now, other),
                }
            }
            match (persisted, &self.flusher) {
                (Some(token), None) => self.replica.step(now, Input::Persisted(token)).expect("token issued"),
                (Some(token), Some(flusher)) => {
                    let _ = flusher.send(token);
                }
                (None, _) => {}
            }
        }
    }

    fn perform(&mut self, now: u64, action: Action) {
        match action {
            Action::Send { to, message } => {
                self.counters.messages.fetch_add(1, Ordering::Relaxed);
                if let Some((_, tx)) = self.peers.iter().find(|(id, _)| *id == to) {
                    let _ = tx.send(Event::Message(message));
                }
            }
            Action::Execute { vote, cookies } => {
                if execute(&mut self.app, &vote, cookies, &self.done) {
                    self.counters.decrees_passed_on_primary.fetch_add(1, Ordering::Relaxed);
                }
                self.replica.step(now, Input::Executed(vote.decree)).expect("executed a passed decree");
            }
            Action::Abort { cookie, reason } => {
                let _ = self.done.send(Completion::Aborted { cookie, reason: reason.into() });
            }
            // The local cluster issues no ChangeConfiguration and starts bootstrapped.
            Action::AbortReconfiguration { .. }
            | Action::PersistBootstrap(_)
            | Action::CopyCheckpoint { .. } => {}
            Action::FetchVotes { from, first } => {
                if let Some((_, tx)) = self.peers.iter().find(|(id, _)| *id == from) {
                    let reply =
                        self.peers.iter().find(|(id, _)| id == self.replica.id()).map(|(_, t)| t.clone());
                    if let Some(reply) = reply {
                        let _ = tx.send(Event::Fetch { first, reply });
                    }
                }
            }
            Action::AskCanBecomePrimary => {
                self.replica.step(now, Input::CanBecomePrimary(Some(Bytes::new()))).expect("asked");
            }
            Action::Persist { .. } => unreachable!("handled by input"),
            Action::NotifyStatus { .. } | Action::NotifyPrimaryRecovered | Action::Relinquished => {}
        }
    }
}
