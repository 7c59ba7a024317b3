//! The engine thread of a [`super::Node`]: the only owner of the replica. Each turn it
//! waits for the first input (or the core's next deadline), takes everything else already
//! queued on its three inputs (its own event channel, the Paxos port, the learn port's
//! status queries), steps the core through all of it, and then hands the batch's journal
//! records to the writer in one message, so one sync covers the whole batch.
//!
//! A refusal of peer-derived input (a message, learned votes) is counted and dropped: peers
//! are not trusted. A refusal of the runtime's own input is a bug and stops the engine
//! with [`NodeError::Core`].

use super::journal::{Writer, Writes};
use super::{execute, panic_message, App, Completion, NodeError, NodeReport};
use crate::paxos::{Action, Cookie, Decree, Input, MemberId, Message, Record, Replica, Token, Vote};
use crate::transport::learn::{learned_votes, LearnClient, LearnServer, StatusRequest};
use crate::transport::{member_addr, TcpTransport};
use crate::wire::Version;
use bytes::Bytes;
use crossbeam_channel::{select, Receiver, Sender};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Inputs on the engine's own channel.
pub(super) enum Event {
    Replicate { request: Bytes, cookie: Cookie },
    Learned { from: MemberId, votes: Vec<Arc<Vote>> },
    Persisted(Token),
    JournalFailed(String),
    Stop,
}

/// What the handle reads without asking the engine.
#[derive(Default)]
pub(super) struct Published {
    pub primary: AtomicBool,
    pub executed: AtomicU64,
    pub digest: AtomicU64,
    /// Peer messages and learned votes the core refused.
    pub refused: AtomicU64,
    /// Votes fetched from peers' learn ports.
    pub learned: AtomicU64,
}

enum Incoming {
    Event(Event),
    Message(Message),
    Status(StatusRequest),
}

pub(super) struct Engine<A> {
    pub replica: Replica,
    pub epoch: Instant,
    pub app: A,
    pub events: Receiver<Event>,
    /// Handed to learner threads, which report back on `events`.
    pub events_tx: Sender<Event>,
    pub done: Sender<Completion>,
    pub published: Arc<Published>,
    pub transport: TcpTransport,
    pub learn: LearnServer,
    pub writer: Writer,
    /// Told once the recovered decrees are replayed (dropped then).
    pub ready: Option<Sender<()>>,
    pub version: Version,
    /// Records persisted by this batch, with the newest token.
    pub pending: Vec<Record>,
    pub pending_token: Option<Token>,
}

impl<A: App> Engine<A> {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Runs until stopped or failed, then stops the ports and lets the writer finish.
    pub fn run(mut self) -> Result<NodeReport, NodeError> {
        let result = self.serve();
        self.transport.stop();
        self.learn.stop();
        let Writer { writes, thread } = self.writer;
        drop(writes); // the writer syncs what it has, then sees the channel closed
        let joined = thread.join().map_err(|p| NodeError::Panicked(panic_message(&p)));
        result.and(joined)?;
        Ok(NodeReport { executed: self.replica.pointers().executed, digest: self.app.digest() })
    }

    fn serve(&mut self) -> Result<(), NodeError> {
        let now = self.now();
        self.perform_actions(now)?; // replays the decrees recovery proved chosen
        self.end_batch()?;
        self.ready.take().map(|ready| ready.send(()));
        loop {
            for incoming in self.next_batch()? {
                let now = self.now();
                match incoming {
                    Incoming::Event(Event::Stop) => {
                        self.step(now, Input::Shutdown)?;
                        return self.end_batch();
                    }
                    Incoming::Event(Event::Replicate { request, cookie }) => {
                        let input = Input::Replicate { request, cookie, exclusive: false, last: false };
                        self.step(now, input)?;
                    }
                    Incoming::Event(Event::Learned { from, votes }) => {
                        self.published.learned.fetch_add(votes.len() as u64, Ordering::Relaxed);
                        self.step_untrusted(now, Input::Learned { from, votes })?;
                    }
                    Incoming::Event(Event::Persisted(token)) => self.step(now, Input::Persisted(token))?,
                    Incoming::Event(Event::JournalFailed(e)) => return Err(NodeError::Journal(e)),
                    Incoming::Message(message) => self.step_untrusted(now, Input::Message(message))?,
                    Incoming::Status(request) => {
                        let status = self.replica.status(request.decree, request.ballot.clone());
                        request.respond(self.replica.configuration().number, status);
                    }
                }
            }
            let now = self.now();
            self.step(now, Input::Tick)?;
            self.end_batch()?;
        }
    }

    /// Waits for the first input or the next deadline, then takes everything queued.
    fn next_batch(&self) -> Result<Vec<Incoming>, NodeError> {
        let deadline = self.replica.next_deadline();
        let wait = Duration::from_micros(deadline.saturating_sub(self.now()).min(1_000_000));
        let closed = || NodeError::Panicked("an engine input channel closed".to_owned());
        let first = select! {
            recv(self.events) -> e => Some(Incoming::Event(e.map_err(|_| closed())?)),
            recv(self.transport.events()) -> m => Some(Incoming::Message(m.map_err(|_| closed())?.1)),
            recv(self.learn.status_requests()) -> r => Some(Incoming::Status(r.map_err(|_| closed())?)),
            default(wait) => None,
        };
        let mut batch: Vec<Incoming> = first.into_iter().collect();
        batch.extend(self.events.try_iter().map(Incoming::Event));
        batch.extend(self.transport.events().try_iter().map(|(_, m)| Incoming::Message(m)));
        batch.extend(self.learn.status_requests().try_iter().map(Incoming::Status));
        Ok(batch)
    }

    /// Hands the batch's records to the journal writer and publishes the new state.
    fn end_batch(&mut self) -> Result<(), NodeError> {
        if let Some(token) = self.pending_token.take() {
            let records = std::mem::take(&mut self.pending);
            if self.writer.writes.send(Writes { records, token }).is_err() {
                return Err(NodeError::Journal("the journal writer ended".to_owned()));
            }
        }
        let p = &self.published;
        p.primary.store(self.replica.is_primary(), Ordering::Release);
        p.executed.store(self.replica.pointers().executed.0, Ordering::Release);
        p.digest.store(self.app.digest(), Ordering::Release);
        Ok(())
    }

    /// Steps an input of the runtime's own; a refusal is a bug.
    fn step(&mut self, now: u64, input: Input) -> Result<(), NodeError> {
        self.replica.step(now, input).map_err(NodeError::Core)?;
        self.perform_actions(now)
    }

    /// Steps an input derived from a peer; a refusal is counted and the input dropped.
    fn step_untrusted(&mut self, now: u64, input: Input) -> Result<(), NodeError> {
        if self.replica.step(now, input).is_err() {
            self.published.refused.fetch_add(1, Ordering::Relaxed);
        }
        self.perform_actions(now)
    }

    fn perform_actions(&mut self, now: u64) -> Result<(), NodeError> {
        loop {
            let actions = self.replica.drain_actions();
            if actions.is_empty() {
                return Ok(());
            }
            for action in actions {
                self.perform(now, action)?;
            }
        }
    }

    fn perform(&mut self, now: u64, action: Action) -> Result<(), NodeError> {
        match action {
            // Paxos re-sends what is lost; a full queue or a missing connection is normal.
            Action::Send { to, message } => drop(self.transport.send(&to, &message)),
            Action::Persist { token, record } => {
                self.pending.push(record);
                self.pending_token = Some(token);
            }
            Action::Execute { vote, cookies } => {
                execute(&mut self.app, &vote, cookies, &self.done);
                self.replica.step(now, Input::Executed(vote.decree)).map_err(NodeError::Core)?;
            }
            Action::Abort { cookie, reason } => drop(self.done.send(Completion::Aborted { cookie, reason })),
            Action::FetchVotes { from, first } => self.fetch_votes(now, from, first)?,
            Action::AskCanBecomePrimary => {
                let allow = Input::CanBecomePrimary(Some(Bytes::new()));
                self.replica.step(now, allow).map_err(NodeError::Core)?;
            }
            Action::NotifyStatus { .. } | Action::NotifyPrimaryRecovered | Action::Relinquished => {}
        }
        Ok(())
    }

    /// Streams `from`'s journal on a thread of its own; its result (empty on any failure)
    /// comes back as [`Event::Learned`].
    fn fetch_votes(&mut self, now: u64, from: MemberId, first: Decree) -> Result<(), NodeError> {
        let member = self.replica.configuration().members.members().iter().find(|m| m.id == from);
        let addr = member.map(|m| SocketAddr::from((member_addr(m.ip), m.learn_port)));
        let client = LearnClient::new(self.replica.id().clone(), self.version);
        let reply = self.events_tx.clone();
        let peer = from.clone();
        let spawned = addr.map(|addr| {
            std::thread::Builder::new().name("rsl-learn-fetch".to_owned()).spawn(move || {
                let fetched = client.fetch_votes(addr, first);
                let votes = fetched.map(|records| learned_votes(&records, first)).unwrap_or_default();
                let _ = reply.send(Event::Learned { from: peer, votes });
            })
        });
        if !matches!(spawned, Some(Ok(_))) {
            self.step_untrusted(now, Input::Learned { from, votes: Vec::new() })?;
        }
        Ok(())
    }
}
