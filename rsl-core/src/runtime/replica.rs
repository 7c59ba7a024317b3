//! [`Replica`]: the application's handle on one replica (legacy `RSLStateMachine`'s
//! non-virtual methods, spec §1.7).

use super::config::{JournalKind, RslConfig, TransportKind};
use super::engine::{Engine, Event, Inspect, Observed, View};
use super::executor::{Callback, Executor};
use super::journal::{self, Durable};
use super::readers::{self, FastRead};
use super::resolve::{reachable, Resolving};
use super::restore::restore;
use super::state_machine::{ResponseCode, StateMachine};
use super::{panic_message, NodeError, Published, LISTEN_ON_ALL_IPS};
use crate::paxos::{Configuration, Decree, Input, Member, MemberId, MemberSet, Record, Rng};
use crate::storage::{FileJournal, FileOptions, NvmJournal, NvmOptions};
use crate::transport::learn::{LearnConfig, LearnServer, LogReads};
use crate::transport::{
    inbox, start_rdma, start_shm, Counters, StartError, TcpTransport, Tls, Transport, TransportConfig,
    TransportStats,
};
use crate::wire::{Limits, Version};
use bytes::Bytes;
use crossbeam_channel::{bounded, unbounded, Sender};
use parking_lot::RwLock;
use std::collections::{HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A request the replica did not take, with the cookie handed back.
pub type Refused<C> = (ResponseCode, C);

/// One peer as the primary sees it (legacy `ReplicaHealth`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaHealth {
    pub member_id: MemberId,
    pub is_primary: bool,
    /// The highest decree the peer acknowledged, with its vote payload and how long ago.
    pub last_voted_decree: Decree,
    pub last_vote_payload: u64,
    pub last_voted_ago: Duration,
}

/// Counters since the previous snapshot (legacy `RSLStats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub capture_time: Duration,
    pub decrees_executed: u64,
    /// Journal reads serving learners (FetchVotes on the learn port).
    pub log_reads: u64,
    pub log_read_bytes: u64,
    pub log_read_micros: u64,
    pub log_read_max_micros: u64,
    /// Records journaled, their bytes, and the time of the group commits that wrote them.
    pub log_writes: u64,
    pub log_write_bytes: u64,
    pub log_write_micros: u64,
    pub log_write_max_micros: u64,
    /// On the primary: from persisting its vote for a decree to executing it.
    pub voting_micros: u64,
    pub voting_max_micros: u64,
}

/// A running replica of the application `S`. Dropping it unloads it.
pub struct Replica<S: StateMachine> {
    me: MemberId,
    events: inbox::Sender<Event<S::Cookie>>,
    callbacks: inbox::Sender<Callback<S::Cookie>>,
    reads: Option<Sender<FastRead<S::Cookie>>>,
    published: Arc<Published>,
    app: Arc<RwLock<S>>,
    fast_read_threshold: u64,
    threads: Option<Threads>,
    /// When the previous statistics snapshot was taken.
    last_stats: parking_lot::Mutex<Instant>,
    log_reads: Arc<LogReads>,
    recovered_records: usize,
    transport_counters: Arc<Counters>,
}

struct Threads {
    engine: JoinHandle<Result<(), NodeError>>,
    executor: JoinHandle<()>,
    readers: Vec<JoinHandle<()>>,
}

impl<S: StateMachine> Replica<S> {
    /// Legacy `Initialize` (the old API, versions 1–7): restores the newest loadable
    /// checkpoint into `app` (`load_state`) and replays the journal after it, starts the
    /// ports and the threads, and returns once the replayed decrees executed. The
    /// configuration is `members` (number 1) unless the checkpoint carries one.
    pub fn initialize(
        config: &RslConfig,
        members: MemberSet,
        me: &MemberId,
        version: Version,
        app: S,
    ) -> Result<Self, NodeError> {
        let member = member_of(&members, me)?;
        Self::start(config, Some(members), member, version, app, None)
    }

    /// Legacy `Initialize` without a member set (the new API, versions 4–7): a replica
    /// that was never bootstrapped starts inactive in configuration 0 and waits for
    /// [`Replica::bootstrap`] or a Bootstrap message from a member of the set it names; one
    /// that was comes back in the configuration its checkpoints and journal hold.
    pub fn initialize_for_bootstrap(
        config: &RslConfig,
        me: Member,
        version: Version,
        app: S,
    ) -> Result<Self, NodeError> {
        if version < Version::V4 {
            return Err(NodeError::Unsupported(
                "Initialize without a member set needs protocol version 4 or higher",
            ));
        }
        Self::start(config, None, me, version, app, None)
    }

    /// Like [`Replica::initialize`] for a replica outside `members` (the set the cluster
    /// started with): it stays inactive, answering status queries, until a replica-set
    /// change names it; then it learns every decree from the members' learn ports and takes
    /// part; when their logs no longer reach back that far, it installs a member's
    /// checkpoint and stops, as any replica too far behind does
    /// ([`Replica::installed_checkpoint`]). Restarted, it is a member of whichever
    /// configuration its checkpoint and journal reached.
    pub fn join(
        config: &RslConfig,
        members: MemberSet,
        me: Member,
        version: Version,
        app: S,
    ) -> Result<Self, NodeError> {
        Self::start(config, Some(members), me, version, app, None)
    }

    /// Like [`Replica::initialize`], over a transport of the caller's (an in-process
    /// [`crate::transport::ChannelNetwork`], say) instead of the TCP Paxos port.
    pub fn initialize_with_transport(
        config: &RslConfig,
        members: MemberSet,
        me: &MemberId,
        version: Version,
        app: S,
        transport: impl Transport,
    ) -> Result<Self, NodeError> {
        let member = member_of(&members, me)?;
        Self::start(config, Some(members), member, version, app, Some(Box::new(transport)))
    }

    /// `members: None` is the new API: configuration 0 unless a checkpoint names one.
    fn start(
        config: &RslConfig,
        members: Option<MemberSet>,
        member: Member,
        version: Version,
        app: S,
        transport: Option<Box<dyn Transport>>,
    ) -> Result<Self, NodeError> {
        config.validate().map_err(NodeError::Config)?;
        let me = &member.id.clone();
        let data_dir = if config.add_member_id_to_working_dir {
            config.working_dir.join(me.as_str())
        } else {
            config.working_dir.clone()
        };
        let seed = if config.seed != 0 { config.seed } else { clock_seed(me) };
        let options = FileOptions {
            seed,
            max_log_len_bytes: config.max_log_len_mb << 20,
            log_len_randomize_percent: config.log_len_randomize as u32,
            ..FileOptions::new(version)
        };
        let mut app = app;
        let load = |reader: Option<&mut _>| app.load_state(reader);
        let (journal, recovery, loaded, defunct): (Box<dyn Durable>, _, _, _) = match config.journal {
            JournalKind::File => {
                let r = restore::<FileJournal>(&data_dir, options, load).map_err(NodeError::Restore)?;
                (Box::new(r.journal), r.recovery, r.checkpoint, r.defunct)
            }
            JournalKind::Nvm { dax } => {
                let options = NvmOptions { dax, ..NvmOptions::new(version) };
                let r = restore::<NvmJournal>(&data_dir, options, load).map_err(NodeError::Restore)?;
                (Box::new(r.journal), r.recovery, r.checkpoint, r.defunct)
            }
        };
        let mut known = members.as_ref().map_or_else(Vec::new, |m| m.members().to_vec());
        let number = u32::from(members.is_some());
        let mut configuration =
            Configuration { number, initial_decree: Decree(0), members: members.unwrap_or_default() };
        let mut recovered = recovery.recovered;
        let checkpointed_set = loaded.as_ref().is_some_and(|l| l.header.configuration.is_some());
        if configuration.number == 0
            && !checkpointed_set
            && recovered.records.iter().any(|r| matches!(r, Record::Vote(_)))
        {
            return Err(NodeError::Restore(
                "the journal holds votes but no checkpoint names the member set: start with the old Initialize".to_owned(),
            ));
        }
        let recovered_records = recovered.records.len();
        if let Some(loaded) = &loaded {
            if let Some(c) = &loaded.header.configuration {
                let members = MemberSet::new(c.members.clone(), c.cookie.clone()).map_err(NodeError::Core)?;
                configuration = Configuration { number: c.number, initial_decree: c.initial_decree, members };
            }
            // The checkpoint's promise outlives the logs it covers (they may be deleted).
            recovered.records.insert(0, Record::Promise(loaded.header.max_ballot.clone()));
        }
        // The window at version 7 (a lower version runs with 1 until it is raised).
        let pipelined_window = config.core(u64::MAX).window;
        let window = if version == Version::V7 { pipelined_window } else { 1 };
        let core = crate::paxos::Replica::new(
            &member,
            config.core(window),
            configuration.clone(),
            recovered,
            seed,
            0,
        )
        .map_err(NodeError::Core)?;
        // The transport knows the set it started with, the one recovered, and this replica.
        for m in core.configuration().members.members().iter().chain([&member]) {
            if known.iter().all(|k| k.id != m.id) {
                known.push(m.clone());
            }
        }
        let known: Vec<Member> = known.iter().map(|m| reachable(&app, &member.id, m)).collect();
        let peers = MemberSet::new(known.clone(), Bytes::new()).map_err(NodeError::Core)?;

        let listen_on_all_ips = LISTEN_ON_ALL_IPS.load(Ordering::Relaxed);
        let limits =
            Limits::from_max_message_size_mb(config.max_message_size_mb.min(u64::from(u32::MAX)) as u32);
        let send_timeout = Duration::from_secs(config.send_timeout_sec);
        let receive_timeout = Duration::from_secs(config.receive_timeout_sec);
        let tls = config.tls.as_ref().map(Tls::new).transpose().map_err(NodeError::Tls)?.map(Arc::new);
        if tls.is_some() && matches!(config.transport, TransportKind::Rdma(_)) {
            return Err(NodeError::Transport(StartError::Invalid(
                "TLS is configured, but the rdma transport has none: configure tcp, or no TLS",
            )));
        }
        let transport_config = TransportConfig {
            tls: tls.clone(),
            cluster: config.cluster_name.clone(),
            limits,
            send_timeout,
            receive_timeout,
            // A bound below the window would drop a burst of pipelined votes (legacy's
            // 10 was sized for one decree in flight).
            max_outstanding_per_replica: (config.max_outstanding_per_replica as usize)
                .max(2 * pipelined_window as usize + 8),
            listen_on_all_ips,
            ..TransportConfig::new(me.clone(), peers, version)
        };
        let transport = match (transport, &config.transport) {
            (Some(transport), _) => transport,
            (None, TransportKind::Tcp) => {
                Box::new(TcpTransport::start(transport_config).map_err(NodeError::Transport)?)
            }
            (None, TransportKind::Shm { dir, ring_bytes }) => {
                Box::new(start_shm(&transport_config, dir, *ring_bytes).map_err(NodeError::Transport)?)
            }
            (None, TransportKind::Rdma(rdma)) => {
                Box::new(start_rdma(&transport_config, rdma).map_err(NodeError::Transport)?)
            }
        };
        let log_reads = Arc::new(LogReads::default());
        let learn = LearnServer::start(LearnConfig {
            limits,
            log_reads: Arc::clone(&log_reads),
            send_timeout,
            receive_timeout,
            listen_on_all_ips,
            tls,
            ..LearnConfig::new(member, version, data_dir.clone())
        })
        .map_err(NodeError::Learn)?;

        let published = Arc::new(Published::default());
        published.executed.store(core.pointers().executed.0, Ordering::Release);
        let app = Arc::new(RwLock::new(app));
        let (events_tx, events) = inbox::unbounded();
        let (callbacks_tx, callbacks) = inbox::unbounded();
        let (reads_tx, reads) = unbounded();
        let inline = matches!(config.journal, JournalKind::Nvm { dax: true });
        let writer = journal::start(journal, inline, events_tx.clone(), Arc::clone(&published), me)?;
        let readers = readers::start(config.reader_threads(), &app, &reads, &published)?;
        let mut executor = Executor {
            app: Arc::clone(&app),
            callbacks,
            engine: events_tx.clone(),
            readers: reads_tx.clone(),
            published: Arc::clone(&published),
            data_dir: data_dir.clone(),
            max_checkpoints: NonZeroUsize::new(config.max_checkpoints as usize).unwrap_or(NonZeroUsize::MIN),
            waiting: Vec::new(),
            checkpoint_interval: config.checkpoint_interval(),
            next_checkpoint: None,
            rng: Rng::new(seed),
            rotated: false,
            max_logs: config.max_logs as usize,
        };
        executor.schedule_checkpoint(50); // the first interval gets ±50 %
        let executor = spawn(format!("rsl-execute-{me}"), move || executor.run())?;
        let (ready_tx, ready) = bounded(1);
        let transport_counters = transport.counters();
        let engine = Engine::<S> {
            replica: core,
            epoch: Instant::now(),
            events,
            events_tx: events_tx.clone(),
            callbacks: callbacks_tx.clone(),
            deferred: Vec::new(),
            app: Arc::clone(&app),
            global_accept_flag: config.use_global_accept_messages_flag,
            promote_while_catching_up: config.allow_primary_promotion_while_catching_up,
            published: Arc::clone(&published),
            transport,
            data_dir,
            defunct,
            copy_retry: Duration::from_secs(config.c_p_query_retry_interval_sec),
            resolving: Resolving::every(Duration::from_millis(config.resolve_interval_ms)),
            known,
            learn,
            writer,
            ready: Some(ready_tx),
            version,
            pipelined_window,
            pending: Vec::new(),
            pending_token: None,
            cookies: HashMap::new(),
            next_cookie: 0,
            paused: false,
            relinquished: false,
            observed: Observed::of(&published),
            copying: None,
            stopping: false,
            proposed: VecDeque::new(),
        };
        let engine = spawn(format!("rsl-engine-{me}"), move || engine.run())?;
        let mut replica = Self {
            me: me.clone(),
            events: events_tx,
            callbacks: callbacks_tx,
            reads: Some(reads_tx),
            published,
            app,
            fast_read_threshold: config.fast_read_seq_threshold,
            threads: Some(Threads { engine, executor, readers }),
            last_stats: parking_lot::Mutex::new(Instant::now()),
            log_reads,
            recovered_records,
            transport_counters,
        };
        if ready.recv().is_err() {
            return Err(replica
                .stop()
                .err()
                .unwrap_or_else(|| NodeError::Panicked("engine ended".to_owned())));
        }
        Ok(replica)
    }

    /// This replica's member id.
    pub fn id(&self) -> &MemberId {
        &self.me
    }

    /// Legacy `ReplicateRequest`: batches `request` into the next decree. Only a primary
    /// that has announced itself (`notify_status(true)`) takes requests.
    pub fn replicate_request(&self, request: &[u8], cookie: S::Cookie) -> Result<(), Refused<S::Cookie>> {
        self.replicate(request, cookie, false, false)
    }

    /// Legacy `ReplicateRequestExclusiveVote`: the request gets a decree of its own;
    /// `is_last_decree` makes it this primary's last (later requests get `ShuttingDown`).
    pub fn replicate_request_exclusive_vote(
        &self,
        request: &[u8],
        cookie: S::Cookie,
        is_last_decree: bool,
    ) -> Result<(), Refused<S::Cookie>> {
        self.replicate(request, cookie, true, is_last_decree)
    }

    fn replicate(
        &self,
        request: &[u8],
        cookie: S::Cookie,
        exclusive: bool,
        last: bool,
    ) -> Result<(), Refused<S::Cookie>> {
        if request.is_empty() {
            return Err((ResponseCode::InvalidParameter, cookie));
        }
        if self.published.shutting_down.load(Ordering::Acquire) {
            return Err((ResponseCode::ShuttingDown, cookie));
        }
        if !self.published.primary.load(Ordering::Acquire) {
            return Err((ResponseCode::NotPrimary, cookie));
        }
        if last {
            self.published.shutting_down.store(true, Ordering::Release);
        }
        let event = Event::Replicate { request: Bytes::copy_from_slice(request), cookie, exclusive, last };
        self.events.send(event).map_err(|e| match e.into_inner() {
            Event::Replicate { cookie, .. } => (ResponseCode::ShuttingDown, cookie),
            _ => unreachable!("the event sent is a Replicate"),
        })
    }

    /// Legacy `FastReadRequest`: runs `request` on this replica once it executed
    /// `max_seen`; waits up to `timeout` for that (aborted as stale afterwards). A read too
    /// far ahead (more than `m_fastReadSeqThreshold` decrees), with a zero timeout, or
    /// during a checkpoint is refused as stale at once.
    pub fn fast_read_request(
        &self,
        max_seen: Decree,
        request: &[u8],
        cookie: S::Cookie,
        timeout: Duration,
    ) -> Result<(), Refused<S::Cookie>> {
        if self.published.shutting_down.load(Ordering::Acquire) {
            return Err((ResponseCode::ShuttingDown, cookie));
        }
        let current = self.current_sequence_number();
        let ahead = max_seen.0.saturating_sub(current.0);
        let saving = self.published.saving_checkpoint.load(Ordering::Acquire);
        if ahead > 0 && (ahead > self.fast_read_threshold || timeout.is_zero() || saving) {
            return Err((ResponseCode::FastReadStale, cookie));
        }
        let read =
            FastRead { request: request.to_vec(), cookie, max_seen, deadline: Instant::now() + timeout };
        let sent = if ahead == 0 {
            let reads = self.reads.as_ref().expect("reads close only on unload");
            reads.send(read).map_err(|e| e.into_inner())
        } else {
            self.callbacks.send(Callback::Wait(read)).map_err(|e| match e.into_inner() {
                Callback::Wait(read) => read,
                _ => unreachable!("the callback sent is a Wait"),
            })
        };
        sent.map_err(|read| (ResponseCode::ShuttingDown, read.cookie))
    }

    /// Legacy `GetCurrentSequenceNumber`: the decree executed last (or executing now).
    pub fn current_sequence_number(&self) -> Decree {
        Decree(self.published.executed.load(Ordering::Acquire))
    }

    /// Legacy `GetHighestPassedSequenceNumber`: every decree up to it is chosen.
    pub fn highest_passed_sequence_number(&self) -> Option<Decree> {
        self.inspect(|v| v.core.pointers().passed)
    }

    /// Legacy `GetCurrentPrimary`: the member whose vote this replica accepted last.
    pub fn current_primary(&self) -> Option<MemberId> {
        self.inspect(|v| v.core.current_primary().cloned()).flatten()
    }

    /// The protocol version this replica speaks (configured, or raised by a primary's).
    pub fn protocol_version(&self) -> Option<Version> {
        self.inspect(|v| v.version)
    }

    /// Legacy `Bootstrap`: gives a replica of configuration 0 `members` as configuration 1
    /// (persisted first) and tells them, again every second until this replica accepted a
    /// primary's vote (`Success`) or `timeout` passed (`BootstrapFailed`).
    /// `AlreadyBootstrapped` if it had accepted one before the call; `BootstrapFailed` at
    /// once for a set without this replica, or another set than one bootstrapped already.
    pub fn bootstrap(&self, members: &MemberSet, timeout: Duration) -> ResponseCode {
        use crate::paxos::InvalidInput;
        let deadline = Instant::now() + timeout;
        let mut resend = Instant::now();
        let mut first = true;
        loop {
            if Instant::now() >= resend {
                let (reply, verdict) = bounded(1);
                let asked = self.events.send(Event::Bootstrap { members: members.clone(), reply });
                match asked.ok().and_then(|()| verdict.recv().ok()) {
                    None => return ResponseCode::ShuttingDown,
                    Some(Ok(())) => {}
                    Some(Err(InvalidInput::AlreadyBootstrapped)) if first => {
                        return ResponseCode::AlreadyBootstrapped
                    }
                    Some(Err(InvalidInput::AlreadyBootstrapped)) => return ResponseCode::Success,
                    Some(Err(e)) => {
                        tracing::error!("Bootstrap refused: {e}");
                        return ResponseCode::BootstrapFailed;
                    }
                }
                first = false;
                resend += Duration::from_secs(1);
            }
            if self.inspect(|v| v.core.is_bootstrapped()) == Some(true) {
                return ResponseCode::Success;
            }
            let now = Instant::now();
            if now >= deadline {
                return ResponseCode::BootstrapFailed;
            }
            std::thread::sleep(
                deadline.min(resend).saturating_duration_since(now).min(Duration::from_millis(20)),
            );
        }
    }

    /// Legacy `CopyStateFromReplica`: copies the newest checkpoint of a member (tried in
    /// random order) that is at least as new as ours into this replica's directory, on a
    /// thread of its own; `state_copied` reports the end. `ShuttingDown` once stopping.
    pub fn copy_state_from_replica(&self, cookie: S::Cookie) -> Result<(), Refused<S::Cookie>> {
        if self.published.shutting_down.load(Ordering::Acquire) {
            return Err((ResponseCode::ShuttingDown, cookie));
        }
        self.events.send(Event::CopyState(cookie)).map_err(|e| match e.into_inner() {
            Event::CopyState(cookie) => (ResponseCode::ShuttingDown, cookie),
            _ => unreachable!("the event sent is a CopyState"),
        })
    }

    /// Legacy `ChangeConfiguration` (primary only): proposes `members` as the next
    /// configuration once every decree in flight is chosen, as a decree of its own.
    /// `notify_configuration_changed(Some(cookie))` follows once it executes, or
    /// `abort_change_configuration` if this replica loses primacy first. A set is
    /// validated when it is built ([`MemberSet::new`]: not empty, no duplicate id, no
    /// port 0, a cookie of at most 8192 bytes).
    pub fn change_configuration(
        &self,
        members: MemberSet,
        cookie: S::Cookie,
    ) -> Result<(), Refused<S::Cookie>> {
        if self.published.shutting_down.load(Ordering::Acquire) {
            return Err((ResponseCode::ShuttingDown, cookie));
        }
        if !self.published.primary.load(Ordering::Acquire) {
            return Err((ResponseCode::NotPrimary, cookie));
        }
        self.events.send(Event::ChangeConfiguration { members, cookie }).map_err(|e| match e.into_inner() {
            Event::ChangeConfiguration { cookie, .. } => (ResponseCode::ShuttingDown, cookie),
            _ => unreachable!("the event sent is a ChangeConfiguration"),
        })
    }

    /// Legacy `GetConfiguration`: the configuration number and its member set.
    pub fn configuration(&self) -> Option<(u32, MemberSet)> {
        self.inspect(|v| (v.core.configuration().number, v.core.configuration().members.clone()))
    }

    /// Legacy `IsInStableState`: stable primary or secondary (not electing).
    pub fn is_in_stable_state(&self) -> bool {
        use crate::paxos::State;
        self.inspect(|v| matches!(v.core.state(), State::Primary | State::Secondary)).unwrap_or(false)
    }

    /// Legacy `IsAnyRequestPendingExecution`: requests submitted here and not yet executed
    /// or aborted, or chosen decrees not yet executed.
    pub fn is_any_request_pending_execution(&self) -> bool {
        self.inspect(|v| v.pending > 0 || v.core.pointers().passed > v.core.pointers().executed)
            .unwrap_or(false)
    }

    /// Legacy `GetReplicasInformation`: on the primary, each peer's latest acknowledgement;
    /// empty elsewhere.
    pub fn replicas_information(&self) -> Vec<ReplicaHealth> {
        self.inspect(|v| {
            let primary = v.core.current_primary().cloned();
            v.core
                .peer_votes()
                .into_iter()
                .flatten()
                .map(|(id, peer)| ReplicaHealth {
                    member_id: id.clone(),
                    is_primary: primary.as_ref() == Some(id),
                    last_voted_decree: peer.decree,
                    last_vote_payload: peer.payload,
                    last_voted_ago: Duration::from_micros(v.now_us.saturating_sub(peer.at_us)),
                })
                .collect()
        })
        .unwrap_or_default()
    }

    /// Legacy `GetStatisticsSnapshot`: counters since the previous call, which it resets.
    pub fn statistics_snapshot(&self) -> Stats {
        let take = |counter: &AtomicU64| counter.swap(0, Ordering::Relaxed);
        let (p, r) = (&self.published, &self.log_reads);
        let since = std::mem::replace(&mut *self.last_stats.lock(), Instant::now());
        Stats {
            capture_time: since.elapsed(),
            decrees_executed: take(&p.decrees_executed),
            log_reads: take(&r.reads),
            log_read_bytes: take(&r.bytes),
            log_read_micros: take(&r.micros),
            log_read_max_micros: take(&r.max_micros),
            log_writes: take(&p.log_writes),
            log_write_bytes: take(&p.log_write_bytes),
            log_write_micros: take(&p.log_write_micros),
            log_write_max_micros: take(&p.log_write_max_micros),
            voting_micros: take(&p.voting_micros),
            voting_max_micros: take(&p.voting_max_micros),
        }
    }

    /// Legacy `SetVotePayload`: attached to every acknowledgement this replica sends (v6+).
    pub fn set_vote_payload(&self, payload: u64) {
        self.control(Input::SetVotePayload(payload));
    }

    /// Legacy `SetAcceptMessages` (with `m_useGlobalAcceptMessagesFlag`).
    pub fn set_accept_messages(&self, accept: bool) {
        self.control(Input::AcceptMessages(accept));
    }

    /// Legacy `AllowSaveState`: turns automatic checkpoints on or off.
    pub fn allow_save_state(&self, allow: bool) {
        self.published.allow_save_state.store(allow, Ordering::Release);
    }

    /// Legacy `RelinquishPrimary`: the primary proposes a relinquish vote and, once it is
    /// chosen, shuts down (`shut_down` is called); elsewhere nothing happens.
    pub fn relinquish_primary(&self) {
        self.control(Input::Relinquish);
    }

    /// Legacy `AttemptPromotion`: start an election now.
    pub fn attempt_promotion(&self) {
        self.control(Input::AttemptPromotion);
    }

    /// Legacy `ChangeElectionDelay`.
    pub fn change_election_delay(&self, delay: Duration) {
        self.control(Input::ChangeElectionDelay { delay_us: delay.as_micros() as u64 });
    }

    /// Testing only (legacy `Pause`/`Resume`): drop every peer message while paused.
    pub fn pause(&self) {
        let _ = self.events.send(Event::Pause(true));
    }

    pub fn resume(&self) {
        let _ = self.events.send(Event::Pause(false));
    }

    /// Runs `f` on the application under the shared callback lock.
    pub fn read_state<T>(&self, f: impl FnOnce(&S) -> T) -> T {
        f(&self.app.read())
    }

    /// What the Paxos port refused (non-members, wrong addresses, bad packets, TLS,
    /// connection limits) and the connections it made, since start: cumulative.
    pub fn transport_stats(&self) -> TransportStats {
        self.transport_counters.snapshot()
    }

    /// Whether this replica is primary and takes requests (legacy's "is primary" flag).
    pub fn is_primary(&self) -> bool {
        self.published.primary.load(Ordering::Acquire)
    }

    /// How many journal records restart read after the checkpoint.
    pub fn recovered_records(&self) -> usize {
        self.recovered_records
    }

    /// Set when the replica stopped because it installed a member's checkpoint of this
    /// decree (legacy exits the process here): the decrees it needed were gone from its
    /// members' logs, or, never bootstrapped, it was invited into a later configuration.
    /// `unload` returns the application; initializing it again loads the checkpoint and
    /// the replica catches up from there.
    pub fn installed_checkpoint(&self) -> Option<Decree> {
        Some(Decree(self.published.installed.load(Ordering::Acquire))).filter(|d| d.0 != u64::MAX)
    }

    /// Whether the replica is running (false after a relinquish, an unload or a failure).
    pub fn is_running(&self) -> bool {
        self.threads.as_ref().is_some_and(|t| !t.engine.is_finished())
    }

    /// Peer messages and learned votes the core refused so far.
    pub fn refused_inputs(&self) -> u64 {
        self.published.refused.load(Ordering::Relaxed)
    }

    /// Votes fetched from peers' learn ports so far (catching up).
    pub fn learned_votes(&self) -> u64 {
        self.published.learned.load(Ordering::Relaxed)
    }

    /// Legacy `UnloadThisOne`, without ending the process: pending requests and queued fast
    /// reads are aborted (`ShuttingDown`), `shut_down` is called, the journal is made
    /// durable, every thread stops, and the application comes back to be dropped or
    /// initialized again. The error says why the replica had failed, if it had.
    pub fn unload(mut self) -> Result<S, NodeError> {
        self.stop()?;
        let app = Arc::clone(&self.app);
        drop(self);
        Ok(Arc::try_unwrap(app).ok().expect("every thread holding the application has stopped").into_inner())
    }

    fn stop(&mut self) -> Result<(), NodeError> {
        let threads = self.threads.take().ok_or_else(|| NodeError::Panicked("stopped twice".to_owned()))?;
        let _ = self.events.send(Event::Stop);
        let engine = threads.engine.join().map_err(|p| NodeError::Panicked(panic_message(&p)));
        // An engine that failed (a journal error, say) sent no ShutDown: the application
        // hears it now, and the execute thread ends (after a clean stop it has already).
        self.published.shutting_down.store(true, Ordering::Release);
        let _ = self.callbacks.send(Callback::ShutDown);
        let executor = threads.executor.join().map_err(|p| NodeError::Panicked(panic_message(&p)));
        self.reads = None;
        for reader in threads.readers {
            reader.join().map_err(|p| NodeError::Panicked(panic_message(&p)))?;
        }
        engine??;
        executor
    }

    fn control(&self, input: Input) {
        let _ = self.events.send(Event::Control(input));
    }

    /// Asks the engine; `None` once it stopped.
    fn inspect<T: Send + 'static>(&self, f: impl FnOnce(&View<'_>) -> T + Send + 'static) -> Option<T> {
        let (tx, rx) = bounded(1);
        let ask: Inspect = Box::new(move |view| drop(tx.send(f(view))));
        self.events.send(Event::Inspect(ask)).ok()?;
        rx.recv().ok()
    }
}

impl<S: StateMachine> Drop for Replica<S> {
    fn drop(&mut self) {
        if self.threads.is_some() {
            let _ = self.stop();
        }
    }
}

/// `me`'s entry in `members`.
fn member_of(members: &MemberSet, me: &MemberId) -> Result<Member, NodeError> {
    members.members().iter().find(|m| m.id == *me).cloned().ok_or_else(|| NodeError::NotAMember(me.clone()))
}

fn spawn<T: Send + 'static>(
    name: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<JoinHandle<T>, NodeError> {
    std::thread::Builder::new().name(name).spawn(f).map_err(NodeError::Thread)
}

/// A seed for election jitter when the configuration gives none.
fn clock_seed(me: &MemberId) -> u64 {
    use std::hash::BuildHasher;
    std::collections::hash_map::RandomState::new().hash_one((me, std::time::SystemTime::now())) | 1
}
