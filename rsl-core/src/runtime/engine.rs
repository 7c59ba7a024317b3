//! The engine thread of a replica: the only owner of the protocol core. Each turn it takes
//! everything queued on its three inputs (its own event channel, the Paxos port, the learn
//! port's status queries), parking until a send wakes it or the core's next deadline when
//! there is nothing, steps the core through all of it, and then hands the batch's journal
//! records to the writer in one message, so one sync covers the whole batch. Every action
//! meant for the application goes to the execute thread, in the order the core emitted it,
//! at the end of the batch: after the batch's messages, which waking that thread first
//! would delay (a secondary's acceptance, say, behind the execution of the decree before).
//!
//! A refusal of peer-derived input (a message, learned votes) is counted and dropped: peers
//! are not trusted. A refusal of the runtime's own input is a bug and stops the engine
//! with [`NodeError::Core`].

use super::copy_state::Copier;
use super::executor::Callback;
use super::journal::{append_all, timed, Writer, Writes};
use super::resolve::{reachable, Resolving};
use super::state_machine::{ResponseCode, StateMachine};
use super::{NodeError, Published};
use crate::paxos::{
    AbortReason, Action, Ballot, Body, Cookie, Decree, Input, InvalidInput, Member, MemberId, MemberSet,
    Message, Record, Replica, Token, Vote, VoteBody,
};
use crate::storage::checkpoint::{
    CheckpointConfiguration, CheckpointHeader, CheckpointWriter, DEFAULT_BLOCK_SIZE,
};
use crate::storage::defunct;
use crate::transport::learn::{learned_votes, LearnServer, StatusRequest};
use crate::transport::{inbox, member_socket, Transport};
use crate::wire::{Version, WireVote};
use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use parking_lot::RwLock;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What a question from the handle sees, on the engine thread.
pub(super) struct View<'a> {
    pub core: &'a Replica,
    /// Requests submitted here and not yet executed or aborted.
    pub pending: usize,
    /// The core's clock (µs).
    pub now_us: u64,
    pub version: Version,
}

pub(super) type Inspect = Box<dyn FnOnce(&View<'_>) + Send>;

/// Inputs on the engine's own channel.
pub(super) enum Event<C> {
    Replicate {
        request: Bytes,
        cookie: C,
        exclusive: bool,
        last: bool,
    },
    Learned {
        from: MemberId,
        votes: Vec<Arc<Vote>>,
    },
    Persisted(Token),
    JournalFailed(String),
    /// The journal started a new log file.
    LogRotated,
    CanBecomePrimary(Option<Vec<u8>>),
    /// The execute thread saves a checkpoint of `decree` and needs its header.
    CheckpointHeader {
        decree: Decree,
        reply: Sender<CheckpointHeader>,
    },
    /// Legacy `Bootstrap`, from the handle: the core's verdict goes back on `reply`.
    Bootstrap {
        members: MemberSet,
        reply: Sender<Result<(), InvalidInput>>,
    },
    /// Legacy `CopyStateFromReplica`, from the handle.
    CopyState(C),
    /// A member's checkpoint of this decree was installed, for the next start to load: the
    /// decrees this replica needs are gone from its members' logs, or it joins a
    /// configuration it never knew.
    CheckpointInstalled(Decree),
    /// Legacy `ChangeConfiguration`, from the handle.
    ChangeConfiguration {
        members: MemberSet,
        cookie: C,
    },
    /// An input from the handle: relinquish, promotion, election delay, payload, accept flag.
    Control(Input),
    /// Runs with the core and the number of pending requests.
    Inspect(Inspect),
    /// Testing (legacy Pause/Resume): while paused, peer messages are dropped.
    Pause(bool),
    Stop,
    /// A checkpoint copy of the engine's own (not `CopyState`'s) ended.
    CopyDone,
    /// Where `resolve_node` now says each peer is.
    Resolved(Vec<Member>),
}

enum Incoming<C> {
    Event(Event<C>),
    Message((Version, Message)),
    Status(StatusRequest),
}

/// What the other threads published that the core must hear of.
#[derive(Clone, Copy)]
pub(super) struct Observed {
    executed: Decree,
    checkpoint: Decree,
    first_logged: Decree,
}

impl Observed {
    pub fn of(published: &Published) -> Self {
        let load = |value: &AtomicU64| Decree(value.load(Ordering::Acquire));
        Self {
            executed: load(&published.executed),
            checkpoint: load(&published.checkpointed),
            first_logged: load(&published.first_logged),
        }
    }
}

pub(super) struct Engine<S: StateMachine> {
    pub replica: Replica,
    pub epoch: Instant,
    pub events: inbox::Receiver<Event<S::Cookie>>,
    /// Handed to learner threads, which report back on `events`.
    pub events_tx: inbox::Sender<Event<S::Cookie>>,
    pub callbacks: inbox::Sender<Callback<S::Cookie>>,
    /// This batch's callbacks, sent at its end.
    pub deferred: Vec<Callback<S::Cookie>>,
    /// For the callbacks of legacy class None, asked on this thread.
    pub app: Arc<RwLock<S>>,
    /// `m_useGlobalAcceptMessagesFlag`: the handle's flag decides instead of
    /// `accept_message_from_replica`.
    pub global_accept_flag: bool,
    /// `m_allowPrimaryPromotionWhileCatchingUp`: ask `can_become_primary` at once rather
    /// than after every decree queued for execution ran.
    pub promote_while_catching_up: bool,
    pub published: Arc<Published>,
    pub transport: Box<dyn Transport>,
    /// Where the bootstrap checkpoint and copied checkpoints go.
    pub data_dir: PathBuf,
    /// The highest configuration `defunct.txt` records as ended.
    pub defunct: u32,
    /// `m_cPQueryRetryIntervalSec`: how often a primary asks for a checkpoint to copy.
    pub copy_retry: Duration,
    pub resolving: Resolving,
    /// Every member of every configuration this replica knew, for their learn ports (a
    /// replica learns from a newer configuration's members too).
    pub known: Vec<Member>,
    pub learn: LearnServer,
    pub writer: Writer,
    /// Told once the recovered decrees are replayed (dropped then).
    pub ready: Option<Sender<()>>,
    /// The version this replica speaks: the configured one, raised when a primary of a
    /// higher version is followed.
    pub version: Version,
    /// The window once the version is 7 (`RslConfig::window`).
    pub pipelined_window: u64,
    /// Records persisted by this batch, with the newest token.
    pub pending: Vec<Record>,
    pub pending_token: Option<Token>,
    /// The application's cookies of requests in the core, by the core's cookie.
    pub cookies: HashMap<Cookie, S::Cookie>,
    pub next_cookie: Cookie,
    pub paused: bool,
    /// The relinquish vote was chosen: shut down at the end of this batch.
    pub relinquished: bool,
    /// A checkpoint copy of the engine's own is in flight; true once the log rotated again
    /// meanwhile (a primary then copies again when it ends).
    pub copying: Option<bool>,
    /// Shut down: `Callback::ShutDown` was the last callback; end after this batch.
    pub stopping: bool,
    /// On the primary, its decrees proposed and not yet executed, with when (for the
    /// voting-time statistic).
    pub proposed: VecDeque<(Decree, Instant)>,
    /// What the core was last told of (`Engine::observe`).
    pub observed: Observed,
}

impl<S: StateMachine> Engine<S> {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }

    /// Runs until stopped or failed, then stops the ports and lets the writer finish.
    pub fn run(mut self) -> Result<(), NodeError> {
        // A failed batch still delivers the callbacks it emitted before failing.
        let result = self.serve().and(self.send_callbacks());
        self.transport.stop();
        self.learn.stop();
        let Writer::Thread { writes, thread } = self.writer else { return result };
        drop(writes); // the writer syncs what it has, then sees the channel closed
        let joined = thread.join().map_err(|p| NodeError::Panicked(super::panic_message(&p)));
        result.and(joined)
    }

    fn serve(&mut self) -> Result<(), NodeError> {
        let (events, messages, status) =
            (&self.events, self.transport.events(), self.learn.status_requests());
        if !(events.wake_me() && messages.wake_me() && status.wake_me()) {
            return Err(NodeError::Panicked("another thread drains this engine's inputs".to_owned()));
        }
        let now = self.now();
        self.perform_actions(now)?; // replays the decrees recovery proved chosen
        if let Some(ready) = self.ready.take() {
            self.callback(Callback::Ready(ready));
        }
        self.end_batch()?;
        while !self.stopping {
            let batch = self.next_batch()?;
            self.observe()?;
            for incoming in batch {
                if self.stopping {
                    break;
                }
                let now = self.now();
                match incoming {
                    Incoming::Event(event) => self.on_event(now, event)?,
                    Incoming::Message(_) if self.paused => {}
                    Incoming::Message((version, message)) => self.on_message(now, version, message)?,
                    Incoming::Status(request) => {
                        let status = self.replica.status(request.decree, request.ballot.clone());
                        request.respond(self.replica.configuration().number, status);
                    }
                }
            }
            let now = self.now();
            if self.relinquished && !self.stopping {
                self.shut_down(now)?;
            } else if !self.stopping {
                self.step(now, Input::Tick)?;
            }
            self.end_batch()?;
            self.resolving.start_if_due(&self.app, self.replica.id(), &self.known, &self.events_tx);
        }
        Ok(())
    }

    fn on_event(&mut self, now: u64, event: Event<S::Cookie>) -> Result<(), NodeError> {
        match event {
            Event::Stop => self.shut_down(now)?,
            Event::Replicate { request, cookie, exclusive, last } => {
                let cookie = self.hold(cookie);
                self.step(now, Input::Replicate { request, cookie, exclusive, last })?;
            }
            Event::Bootstrap { members, reply } => {
                let verdict = self.replica.step(now, Input::Bootstrap(members));
                self.perform_actions(now)?;
                let _ = reply.send(verdict);
            }
            Event::CopyState(cookie) => self.copy_state(cookie)?,
            // The log filled again while the primary copied: that copy covers too little.
            Event::CopyDone if self.copying.take() == Some(true) && self.replica.is_primary() => {
                self.copy_from_secondary()?
            }
            Event::CopyDone => {}
            Event::Resolved(members) => {
                self.resolving.answered();
                let moved: Vec<Member> = members.into_iter().filter(|m| !self.known.contains(m)).collect();
                if !moved.is_empty() {
                    tracing::info!("resolve_node moved {} peer(s)", moved.len());
                    self.reach(moved);
                }
            }
            Event::CheckpointInstalled(decree) => {
                tracing::warn!(
                    "installed a member's checkpoint {decree} (the members' logs no longer hold the decrees \
                     this replica needs, or it joins a configuration it never knew); it stops so that a \
                     restart loads it"
                );
                self.published.installed.store(decree.0, Ordering::Release);
                self.shut_down(now)?;
            }
            Event::ChangeConfiguration { members, cookie } => {
                let cookie = self.hold(cookie);
                self.step(now, Input::ChangeConfiguration { members, cookie })?;
            }
            Event::Learned { from, votes } => {
                self.published.learned.fetch_add(votes.len() as u64, Ordering::Relaxed);
                self.step_untrusted(now, Input::Learned { from, votes })?;
            }
            Event::Persisted(token) => self.step(now, Input::Persisted(token))?,
            Event::JournalFailed(e) => return Err(NodeError::Journal(e)),
            // Legacy: secondaries, and a primary alone, checkpoint when a log fills; a primary
            // with peers copies one.
            Event::LogRotated
                if self.replica.is_primary() && self.replica.configuration().members.len() > 1 =>
            {
                self.copy_from_secondary()?
            }
            Event::LogRotated => self.callback(Callback::CheckpointDue),
            Event::CanBecomePrimary(cookie) => {
                self.step(now, Input::CanBecomePrimary(cookie.map(Bytes::from)))?
            }
            Event::CheckpointHeader { decree, reply } => drop(reply.send(self.checkpoint_header(decree))),
            Event::Control(input) => {
                if let Err(e) = self.replica.step(now, input) {
                    tracing::error!("refused: {e}");
                }
                self.perform_actions(now)?;
            }
            Event::Inspect(inspect) => inspect(&View {
                core: &self.replica,
                pending: self.cookies.len(),
                now_us: now,
                version: self.version,
            }),
            Event::Pause(paused) => self.paused = paused,
        }
        Ok(())
    }

    /// Keeps the application's cookie until the core hands back the id it gets.
    fn hold(&mut self, cookie: S::Cookie) -> Cookie {
        let id = self.next_cookie;
        self.next_cookie += 1;
        self.cookies.insert(id, cookie);
        id
    }

    /// A peer's message; Prepares and votes first go through `accept_message_from_replica`.
    fn on_message(&mut self, now: u64, version: Version, message: Message) -> Result<(), NodeError> {
        let raise = match &message.body {
            Body::Vote(vote) if version > self.version => Some((vote.decree, vote.ballot.clone())),
            _ => None,
        };
        if !self.global_accept_flag {
            let cookie = match &message.body {
                Body::Prepare { primary_cookie, .. } => Some(primary_cookie),
                Body::Vote(vote) => Some(&vote.primary_cookie),
                _ => None,
            };
            if let Some(cookie) = cookie {
                let accept = self.app.read().accept_message_from_replica(&message.from, cookie);
                self.step(now, Input::AcceptMessages(accept))?;
            }
        }
        self.step_untrusted(now, Input::Message(message))?;
        // Legacy raises its version when it executes a vote of a higher one (§4.11); we
        // raise it once we accepted such a vote, which only a primary of that version sends.
        match raise {
            Some((decree, ballot)) if self.replica.vote(decree).is_some_and(|v| v.ballot == ballot) => {
                self.raise_version(now, version)
            }
            _ => Ok(()),
        }
    }

    /// Speaks `version` from now on; at version 7 the configured window applies.
    fn raise_version(&mut self, now: u64, version: Version) -> Result<(), NodeError> {
        tracing::info!("protocol version raised from {:?} to {version:?}", self.version);
        self.version = version;
        self.transport.set_version(version);
        if version == Version::V7 {
            self.step(now, Input::SetWindow(self.pipelined_window))?;
        }
        Ok(())
    }

    /// Legacy's ShutDown path: pending requests are aborted, then the application hears
    /// `shut_down` once everything before it ran.
    fn shut_down(&mut self, now: u64) -> Result<(), NodeError> {
        self.published.shutting_down.store(true, Ordering::Release);
        self.step(now, Input::Shutdown)?;
        self.callback(Callback::ShutDown);
        self.stopping = true;
        Ok(())
    }

    /// The header of a checkpoint of `decree`: the promise, the configuration and the vote
    /// after `decree` (an empty vote under the empty ballot when this replica holds none).
    fn checkpoint_header(&self, decree: Decree) -> CheckpointHeader {
        let version = self.version.min(Version::V6);
        let configuration = self.replica.configuration();
        let next = decree.next();
        let empty;
        let next_vote = match self.replica.vote(next) {
            Some(vote) => vote.as_ref(),
            None => {
                empty = Vote::empty(next, Ballot::default(), configuration.number, decree);
                &empty
            }
        };
        CheckpointHeader {
            version,
            member_id: self.replica.id().clone(),
            last_executed: decree,
            max_ballot: self.replica.pointers().max_ballot,
            configuration: (version >= Version::V3).then(|| CheckpointConfiguration {
                number: configuration.number,
                initial_decree: configuration.initial_decree,
                members: configuration.members.members().to_vec(),
                cookie: configuration.members.cookie().clone(),
            }),
            state_saved: true,
            file_size: 0,
            block_size: if version >= Version::V4 { DEFAULT_BLOCK_SIZE } else { 0 },
            next_vote: WireVote::from_core(next_vote, version),
        }
    }

    /// Tells the core what the other threads did since it last heard: decrees executed,
    /// checkpoints saved, logs deleted. Read here rather than sent, so that executing a
    /// decree wakes no engine.
    fn observe(&mut self) -> Result<(), NodeError> {
        let now = Observed::of(&self.published);
        let (was, time) = (std::mem::replace(&mut self.observed, now), self.now());
        if now.executed > was.executed {
            self.step(time, Input::Executed(now.executed))?;
        }
        if (now.checkpoint, now.first_logged) != (was.checkpoint, was.first_logged) {
            let Observed { checkpoint, first_logged, .. } = now;
            self.step(time, Input::Retained { checkpoint, first_logged })?;
        }
        Ok(())
    }

    /// Takes everything queued on the three inputs; if there is nothing, parks until a
    /// send wakes it (see [`inbox`]) or the next deadline passes, and takes again. It does
    /// not spin first: that took a fifth of pipelined throughput (one request per decree,
    /// 64 in flight) for 8 % of one client's unpinned latency.
    fn next_batch(&self) -> Result<Vec<Incoming<S::Cookie>>, NodeError> {
        let mut batch = self.take_queued()?;
        if batch.is_empty() {
            let wait = self.replica.next_deadline().saturating_sub(self.now()).min(1_000_000);
            std::thread::park_timeout(Duration::from_micros(wait).min(self.resolving.until_due()));
            batch = self.take_queued()?;
        }
        Ok(batch)
    }

    fn take_queued(&self) -> Result<Vec<Incoming<S::Cookie>>, NodeError> {
        type Batch<C> = Vec<Incoming<C>>;
        fn take<T, C>(
            from: &Receiver<T>,
            to: &mut Batch<C>,
            wrap: fn(T) -> Incoming<C>,
        ) -> Result<(), NodeError> {
            loop {
                match from.try_recv() {
                    Ok(value) => to.push(wrap(value)),
                    Err(TryRecvError::Empty) => return Ok(()),
                    Err(TryRecvError::Disconnected) => {
                        return Err(NodeError::Panicked("an engine input channel closed".to_owned()))
                    }
                }
            }
        }
        let mut batch = Vec::new();
        take(&self.events, &mut batch, Incoming::Event)?;
        take(self.transport.events(), &mut batch, Incoming::Message)?;
        take(self.learn.status_requests(), &mut batch, Incoming::Status)?;
        Ok(batch)
    }

    /// Hands the batch's records to the journal writer (or, inline, makes them durable and
    /// steps on, until no record is pending) and publishes the new state.
    fn end_batch(&mut self) -> Result<(), NodeError> {
        while let Some(token) = self.pending_token.take() {
            let records = std::mem::take(&mut self.pending);
            match &mut self.writer {
                Writer::Thread { writes, .. } => {
                    if writes.send(Writes { records, token }).is_err() {
                        return Err(NodeError::Journal("the journal writer ended".to_owned()));
                    }
                }
                Writer::Inline(journal) => {
                    let started = Instant::now();
                    append_all(journal.as_mut(), &records, &self.published)
                        .and_then(|()| journal.sync().map_err(|e| e.to_string()))
                        .map_err(NodeError::Journal)?;
                    timed(&self.published, started);
                    let now = self.now();
                    self.step(now, Input::Persisted(token))?;
                }
            }
        }
        self.published.primary.store(self.replica.is_primary(), Ordering::Release);
        self.send_callbacks()
    }

    fn send_callbacks(&mut self) -> Result<(), NodeError> {
        for callback in self.deferred.drain(..) {
            if self.callbacks.send(callback).is_err() {
                return Err(NodeError::Panicked("the execute thread ended".to_owned()));
            }
        }
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

    /// Queues `callback` for the execute thread at the end of the batch.
    fn callback(&mut self, callback: Callback<S::Cookie>) {
        self.deferred.push(callback);
    }

    fn perform(&mut self, now: u64, action: Action) -> Result<(), NodeError> {
        match action {
            // Paxos re-sends what is lost; a full queue or a missing connection is normal.
            Action::Send { to, message } => drop(self.transport.send(&to, &message)),
            Action::Persist { token, record } => {
                if let Record::Vote(vote) = &record {
                    let ours = self.replica.is_primary() && vote.ballot.member == *self.replica.id();
                    if ours && self.proposed.back().is_none_or(|(d, _)| *d < vote.decree) {
                        self.proposed.push_back((vote.decree, Instant::now()));
                    }
                }
                self.pending.push(record);
                self.pending_token = Some(token);
            }
            Action::Execute { vote, cookies } => {
                while let Some((decree, proposed)) = self.proposed.front().copied() {
                    if decree > vote.decree {
                        break;
                    }
                    self.proposed.pop_front();
                    if decree == vote.decree {
                        let micros = proposed.elapsed().as_micros() as u64;
                        self.published.voting_micros.fetch_add(micros, Ordering::Relaxed);
                        self.published.voting_max_micros.fetch_max(micros, Ordering::Relaxed);
                    }
                }
                if let VoteBody::Reconfiguration(members) = &vote.body {
                    self.meet(members);
                    self.record_defunct(vote.configuration);
                }
                let cookies = cookies.map(|ids| {
                    let take =
                        |id| self.cookies.remove(&id).expect("the core returns only cookies it was given");
                    ids.into_iter().map(take).collect()
                });
                self.callback(Callback::Execute { vote, cookies });
            }
            Action::Abort { cookie, reason } | Action::AbortReconfiguration { cookie, reason } => {
                let change = matches!(action, Action::AbortReconfiguration { .. });
                let cookie =
                    self.cookies.remove(&cookie).expect("the core returns only cookies it was given");
                let status = match reason {
                    AbortReason::NotPrimary => ResponseCode::NotPrimary,
                    AbortReason::ShuttingDown => ResponseCode::ShuttingDown,
                };
                self.callback(if change {
                    Callback::AbortChange { cookie, status }
                } else {
                    Callback::Abort { cookie, status }
                });
            }
            Action::PersistBootstrap(members) => self.persist_bootstrap(&members)?,
            Action::FetchVotes { from, first } => self.fetch_votes(now, from, first)?,
            Action::CopyCheckpoint { from, learn_port, decree } => {
                self.copy_to_join(&from, learn_port, decree)?
            }
            Action::AskCanBecomePrimary if self.promote_while_catching_up => {
                let answer = self.app.read().can_become_primary().map(Bytes::from);
                self.step(now, Input::CanBecomePrimary(answer))?;
            }
            // Behind the execution queue: asked once every chosen decree has executed.
            Action::AskCanBecomePrimary => self.callback(Callback::CanBecomePrimary),
            Action::NotifyStatus { primary } => {
                self.published.primary.store(primary, Ordering::Release);
                self.proposed.clear();
                self.callback(Callback::NotifyStatus(primary));
            }
            Action::NotifyPrimaryRecovered => self.callback(Callback::PrimaryRecovered),
            // Legacy's ShutDown path, once this batch's remaining actions are performed.
            Action::Relinquished => self.relinquished = true,
        }
        Ok(())
    }

    /// Legacy §4.7: the bootstrap set becomes checkpoint `0.codex` (no saved state, the
    /// set as configuration 1) before anything later happens, so a restart comes back
    /// bootstrapped; then the application hears of it and the set's members are met.
    fn persist_bootstrap(&mut self, members: &MemberSet) -> Result<(), NodeError> {
        let header = CheckpointHeader { state_saved: false, ..self.checkpoint_header(Decree(0)) };
        let written = CheckpointWriter::create(&self.data_dir, header).and_then(CheckpointWriter::finish);
        written.map_err(|e| NodeError::Journal(format!("cannot persist the bootstrap set: {e}")))?;
        self.meet(members);
        self.callback(Callback::Bootstrapped);
        Ok(())
    }

    /// Copies a member's checkpoint on a thread of its own; `state_copied` reports the end.
    fn copy_state(&mut self, cookie: S::Cookie) -> Result<(), NodeError> {
        let (copier, peers, callbacks) = (self.copier(), self.peers(), self.callbacks.clone());
        let seed = self.epoch.elapsed().as_nanos() as u64;
        let copy = move || {
            let copied = copier.newest_of(peers, Decree(0), seed);
            let _ = callbacks.send(Callback::StateCopied { copied, cookie: Some(cookie) });
        };
        std::thread::Builder::new()
            .name("rsl-copy-state".to_owned())
            .spawn(copy)
            .map(drop)
            .map_err(NodeError::Thread)
    }

    /// Legacy §4.6: a primary with peers does not stall to save a checkpoint when its log
    /// fills; it copies a secondary's that covers the full log (asking every
    /// `m_cPQueryRetryIntervalSec` until one has), so that log can go.
    fn copy_from_secondary(&mut self) -> Result<(), NodeError> {
        if let Some(again) = &mut self.copying {
            *again = true;
            return Ok(());
        }
        self.copying = Some(false);
        let (copier, peers, callbacks) = (self.copier(), self.peers(), self.callbacks.clone());
        let (published, retry, done) = (Arc::clone(&self.published), self.copy_retry, self.events_tx.clone());
        let at_least = Decree(published.executed.load(Ordering::Acquire));
        let seed = self.epoch.elapsed().as_nanos() as u64;
        let copy = move || {
            while !published.shutting_down.load(Ordering::Acquire) {
                if let Some(copied) = copier.newest_of(peers.clone(), at_least, seed) {
                    let _ = callbacks.send(Callback::StateCopied { copied: Some(copied), cookie: None });
                    break;
                }
                std::thread::sleep(retry);
            }
            let _ = done.send(Event::CopyDone);
        };
        let spawned = std::thread::Builder::new().name("rsl-copy-checkpoint".to_owned()).spawn(copy);
        spawned.map(drop).map_err(NodeError::Thread)
    }

    /// Legacy's "join later": this replica never took the bootstrap, and `from` invites it
    /// into a later configuration. Its checkpoint (at least `decree`), copied on a thread
    /// of its own, brings that configuration; once it is installed the replica stops so
    /// that a restart loads it.
    fn copy_to_join(&mut self, from: &MemberId, learn_port: u16, decree: Decree) -> Result<(), NodeError> {
        let Some(ip) = self.transport.source_of(from) else {
            tracing::warn!("{from} invites this replica to join, but its transport cannot tell from where");
            return Ok(());
        };
        if self.copying.is_some() {
            return Ok(());
        }
        self.copying = Some(false);
        tracing::info!("{from} invites this replica to join: copying its checkpoint");
        let (copier, reply) = (self.copier(), self.events_tx.clone());
        let copy = move || {
            if let Some((decree, _)) = copier.past(SocketAddr::new(ip, learn_port), decree) {
                let _ = reply.send(Event::CheckpointInstalled(decree));
            }
            let _ = reply.send(Event::CopyDone);
        };
        let spawned = std::thread::Builder::new().name("rsl-copy-to-join".to_owned()).spawn(copy);
        spawned.map(drop).map_err(NodeError::Thread)
    }

    fn copier(&self) -> Copier {
        let ballot = self.replica.pointers().max_ballot;
        Copier { client: self.learn.client(self.version), dir: self.data_dir.clone(), ballot }
    }

    /// The other members of the configuration, where they are reached.
    fn peers(&self) -> Vec<Member> {
        let (me, members) = (self.replica.id(), &self.replica.configuration().members);
        self.known.iter().filter(|m| m.id != *me && members.contains(&m.id)).cloned().collect()
    }

    /// Configuration `number` ended: legacy's `defunct.txt` says so, for a legacy replica
    /// that may take this directory over. Nothing here depends on it, so a failure is
    /// only logged.
    fn record_defunct(&mut self, number: u32) {
        if number <= self.defunct {
            return;
        }
        match defunct::record(&self.data_dir, number) {
            Ok(()) => self.defunct = number,
            Err(e) => tracing::warn!("cannot record configuration {number} as ended in defunct.txt: {e}"),
        }
    }

    /// Talks to the members of a new configuration it did not know, and at their new
    /// addresses (as the application resolves them) to those it knew elsewhere.
    fn meet(&mut self, members: &MemberSet) {
        let reachable = {
            let app = self.app.read();
            members.members().iter().map(|m| reachable(&*app, self.replica.id(), m)).collect()
        };
        self.reach(reachable);
    }

    /// Reaches the members of `reachable` at these addresses from now on: learning, copies
    /// and the transport.
    fn reach(&mut self, reachable: Vec<Member>) {
        for member in &reachable {
            match self.known.iter_mut().find(|m| m.id == member.id) {
                Some(known) => known.clone_from(member),
                None => self.known.push(member.clone()),
            }
        }
        let reachable = MemberSet::new(reachable, Bytes::new()).expect("resolving keeps ids and ports valid");
        if let Err(e) = self.transport.add_members(&reachable) {
            tracing::error!(
                "cannot reach the members of configuration {}: {e}",
                self.replica.configuration().number
            );
        }
    }

    /// Streams `from`'s journal on a thread of its own; its result (empty on any failure)
    /// comes back as [`Event::Learned`].
    fn fetch_votes(&mut self, now: u64, from: MemberId, first: Decree) -> Result<(), NodeError> {
        let member = self.known.iter().find(|m| m.id == from).cloned();
        let copier = self.copier();
        let reply = self.events_tx.clone();
        let peer = from.clone();
        let spawned = member.map(|member| {
            std::thread::Builder::new().name("rsl-learn-fetch".to_owned()).spawn(move || {
                let addr = match member_socket(&member, member.learn_port) {
                    Ok(addr) => addr,
                    Err(e) => {
                        tracing::warn!("cannot learn from {}: {e}", member.id);
                        let _ = reply.send(Event::Learned { from: peer, votes: Vec::new() });
                        return;
                    }
                };
                let fetched = copier.client.fetch_votes(addr, first);
                let served = fetched.as_ref().is_ok_and(|records| !records.is_empty());
                let votes = fetched.map(|records| learned_votes(&records, first)).unwrap_or_default();
                // Nothing served for `first` by a member that checkpointed past it: the log
                // that held it is gone. Legacy copies the checkpoint and restarts on it.
                if !served {
                    if let Some((decree, _)) = copier.past(addr, first) {
                        let _ = reply.send(Event::CheckpointInstalled(decree));
                        return;
                    }
                }
                let _ = reply.send(Event::Learned { from: peer, votes });
            })
        });
        if !matches!(spawned, Some(Ok(_))) {
            self.step_untrusted(now, Input::Learned { from, votes: Vec::new() })?;
        }
        Ok(())
    }
}
