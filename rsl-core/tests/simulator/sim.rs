//! The simulated cluster: a virtual clock, a network, a disk per node, and the event loop
//! that drives [`Replica`]s exactly as a production driver would — every drained action
//! performed in order, `Persisted` reported only once a record is durable (and then in
//! token order), fetches answered from the source's durable journal, and `Tick`s at each
//! replica's `next_deadline`. Every random choice comes from the seed, so a seed replays
//! the same run. Bugs can be planted in this driver (never in the core) to prove that
//! each checker can fail.

use crate::faults::{Fault, Faults};
use crate::history::{Ack, FinalNode, History, Incarnation, Observation};
use crate::workload::{self, Workload};
use bytes::Bytes;
use rsl_core::paxos::{
    chosen_votes, Action, Ballot, Body, Config, Configuration, Cookie, Decree, Input, InvalidInput, Member,
    MemberId, MemberSet, Message, Record, Recovered, Replica, Rng, Token, Vote, VoteBody,
};
use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Arc;

/// A run that handles more events than this is stuck in a loop.
const EVENT_BUDGET: u64 = 20_000_000;
/// `Tick`s at one instant after which a deadline that does not move is reported.
const TICKS_PER_INSTANT_MAX: u32 = 1_000;

/// Bugs planted in the driver, each to prove that one checker can fail.
#[derive(Clone, Copy, Default, Debug)]
pub struct Bugs {
    /// The network strips the requests from every vote it carries to node 1.
    pub alter_votes: bool,
    /// Node 0's executor skips decree 3 but reports it executed.
    pub skip_execution: bool,
    /// Node 0's executor applies the first decree with requests twice.
    pub repeat_execution: bool,
    /// Every 16th request is submitted without being registered.
    pub unregistered_requests: bool,
    /// The disk acknowledges every write but keeps none.
    pub lossy_disk: bool,
    /// Node 2 runs under node 1's member id.
    pub twin_member_ids: bool,
    /// One of node 0's pointer observations is recorded with `passed` one lower.
    pub pointers_go_back: bool,
    /// The heal cuts every link instead of restoring them.
    pub permanent_partition: bool,
    /// The network hands the primary each VoteAccepted also under every other member's id.
    pub forged_acks: bool,
}

/// Everything one run needs, derived from its seed.
#[derive(Clone, Debug)]
pub struct Params {
    pub seed: u64,
    /// Members of the first configuration: nodes `0..nodes`.
    pub nodes: usize,
    /// Nodes that run: more than `nodes` when replica-set changes may add members.
    pub universe: usize,
    pub config: Config,
    pub faults: Faults,
    pub workload: Workload,
    /// Length of the faulty phase.
    pub safety_us: u64,
    /// Length of the healed phase: the bound within which progress is demanded.
    pub liveness_us: u64,
    /// Nodes the heal leaves down (a minority), so that only a quorum is healed.
    pub keep_down: usize,
    /// The first set's nodes start in configuration 0; node 0's application bootstraps it.
    pub bootstrap: bool,
    /// With `bootstrap`, the nodes outside the first set start in configuration 0 too: a
    /// configuration that names them later needs legacy's "join later".
    pub late_joiners: bool,
    pub bugs: Bugs,
}

impl Params {
    pub fn from_seed(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let nodes = [1, 3, 3, 5, 5][rng.below(5) as usize];
        let heartbeat_us = (20 + rng.below(81)) * 1000;
        let election_delay_us = ((100 + rng.below(401)) * 1000).max(3 * heartbeat_us);
        let config = Config {
            window: [1, 2, 8, 64][rng.below(4) as usize],
            batch_requests_max: [1, 4, 64][rng.below(3) as usize],
            heartbeat_us,
            election_delay_us,
            election_randomize_pct: 10 + rng.below(41),
            election_randomize_max_us: election_delay_us / 2,
            new_leader_grace_us: election_delay_us + rng.below(election_delay_us),
            initialize_retry_us: 2 * heartbeat_us,
            prepare_retry_us: 3 * heartbeat_us,
            vote_retry_us: 2 * heartbeat_us,
            learn_timeout_us: 2 * election_delay_us,
            ..Config::default()
        };
        let mut faults = Faults::from_rng(&mut rng, election_delay_us);
        let workload = Workload::from_rng(&mut rng);
        let mut keep_down = if rng.below(2) == 0 { 0 } else { rng.below(nodes as u64 / 2 + 1) as usize };
        let safety_us = (2 + rng.below(19)) * 1_000_000;
        // Drawn last, so that older seeds keep every other parameter.
        faults.reconfigure = rng.below(100) < 40;
        let universe = if faults.reconfigure { 5 } else { nodes };
        let bootstrap = rng.below(100) < 30;
        if faults.reconfigure {
            keep_down = 0; // which nodes form a quorum at the heal is not known in advance
        }
        let late_joiners = bootstrap && rng.below(2) == 0;
        Self {
            seed,
            nodes,
            universe,
            config,
            faults,
            workload,
            safety_us,
            liveness_us: 10_000_000 + 40 * election_delay_us,
            keep_down,
            bootstrap,
            late_joiners,
            bugs: Bugs::default(),
        }
    }
}

enum Event {
    Deliver {
        to: usize,
        message: Message,
    },
    DiskDone {
        incarnation: usize,
        token: Token,
    },
    /// A fetch request reaches `source`'s learn port.
    Fetch {
        source: usize,
        incarnation: usize,
        first: Decree,
    },
    Learned {
        incarnation: usize,
        from: MemberId,
        votes: Vec<Arc<Vote>>,
    },
    Fault,
    Restart {
        node: usize,
    },
    /// The application that submitted its last decree exits (and is restarted), unless
    /// that incarnation is gone already.
    Exit {
        node: usize,
        incarnation: usize,
    },
    Client,
    Heal,
    /// Node 0's application calls Bootstrap, and again every second until it took.
    Bootstrap,
}

struct Node {
    id: MemberId,
    /// `None` while crashed.
    replica: Option<Replica>,
    /// Index of the current (or last) incarnation in the history.
    incarnation: usize,
    clock_offset_us: u64,
    durable: Vec<Record>,
    /// Writes issued but not yet durable, in token order.
    pending: VecDeque<(Token, Record)>,
    disk_free_at: u64,
    /// (instant, ticks at it), to catch a deadline that never moves.
    ticks: (u64, u32),
    /// The bootstrapped set, saved durably (legacy `0.codex`).
    bootstrapped: Option<MemberSet>,
}

pub struct Sim {
    params: Params,
    rng: Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    configuration: Configuration,
    /// Directed links `(from, to)` that lose everything.
    cut: Vec<(usize, usize)>,
    healed: bool,
    kept_down: Vec<usize>,
    next_request: u64,
    /// Requests submitted and neither acknowledged nor aborted yet, with when they were
    /// submitted: clients are closed-loop, so a slow cluster is not buried in a backlog.
    unresolved: BTreeMap<u64, u64>,
    /// The first request id of the liveness phase.
    liveness_first: u64,
    liveness_acked: usize,
    /// The (incarnation, ballot) of the last primary asked to relinquish.
    relinquished: Option<(usize, Ballot)>,
    /// A one-shot planted bug already fired.
    bug_fired: bool,
    /// The next `ChangeConfiguration` cookie.
    next_reconfiguration: u64,
    trace: bool,
    pub history: History,
}

impl Sim {
    pub fn new(params: Params, trace: bool) -> Self {
        let ids: Vec<String> = (1..=params.universe).map(|i| i.to_string()).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        let members = MemberSet::of_ids(&refs[..params.nodes]).expect("valid member ids");
        let nodes = (0..params.universe)
            .map(|i| {
                let twin = params.bugs.twin_member_ids && i == 2;
                Node {
                    id: MemberId::new(&ids[if twin { 1 } else { i }]).expect("valid member id"),
                    replica: None,
                    incarnation: 0,
                    clock_offset_us: 0,
                    durable: Vec::new(),
                    pending: VecDeque::new(),
                    disk_free_at: 0,
                    ticks: (0, 0),
                    bootstrapped: None,
                }
            })
            .collect();
        let configuration = Configuration { number: 1, initial_decree: Decree(0), members };
        let history = History {
            liveness_target: params.workload.liveness_target,
            first_configuration: Some(configuration.clone()),
            ..History::default()
        };
        Self {
            rng: Rng::new(params.seed ^ 0x5157_5eed),
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            configuration,
            cut: Vec::new(),
            healed: false,
            kept_down: Vec::new(),
            next_request: 1,
            unresolved: BTreeMap::new(),
            liveness_first: u64::MAX,
            liveness_acked: 0,
            relinquished: None,
            bug_fired: false,
            next_reconfiguration: 1,
            trace,
            history,
            params,
        }
    }

    /// Runs both phases to the end, then records the final state.
    pub fn run(&mut self) {
        for node in 0..self.nodes.len() {
            self.start(node);
        }
        self.schedule(0, Event::Client);
        if self.params.bootstrap {
            self.schedule(0, Event::Bootstrap);
        }
        self.schedule(self.params.faults.interval_us, Event::Fault);
        self.schedule(self.params.safety_us, Event::Heal);
        let end = self.params.safety_us + self.params.liveness_us;
        for _ in 0..EVENT_BUDGET {
            let timer = (0..self.nodes.len()).filter_map(|i| Some((self.deadline(i)?, i))).min();
            let event = self.queue.first_key_value().map(|(&(at, _), _)| at);
            match (timer, event) {
                (Some((at, node)), _) if at <= end && event.is_none_or(|e| at <= e) => {
                    self.now = self.now.max(at);
                    if !self.tick(node) {
                        return;
                    }
                }
                (_, Some(at)) if at <= end => {
                    let (_, event) = self.queue.pop_first().expect("peeked");
                    self.now = at;
                    self.handle(event);
                }
                _ => return self.finish(),
            }
        }
        self.history.core_errors.push(format!("no end after {EVENT_BUDGET} events"));
    }

    fn finish(&mut self) {
        let newest = self
            .nodes
            .iter()
            .filter_map(|n| n.replica.as_ref().map(Replica::configuration))
            .max_by_key(|c| c.number)
            .cloned();
        self.history.final_nodes = self
            .nodes
            .iter()
            .map(|n| FinalNode {
                up: n.replica.is_some(),
                primary: n.replica.as_ref().is_some_and(Replica::is_primary),
                member: newest.as_ref().is_some_and(|c| c.members.contains(&n.id)),
                executed: n.replica.as_ref().map_or(Decree(0), |r| r.pointers().executed),
                incarnation: n.incarnation,
            })
            .collect();
        self.history.journals = self.nodes.iter().map(|n| (n.id.clone(), n.durable.clone())).collect();
        self.history.completed = true;
    }

    fn schedule(&mut self, at: u64, event: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), event);
    }

    fn local_now(&self, node: usize) -> u64 {
        self.now + self.nodes[node].clock_offset_us
    }

    /// A node's next deadline on the global clock.
    fn deadline(&self, node: usize) -> Option<u64> {
        let n = &self.nodes[node];
        let local = n.replica.as_ref()?.next_deadline();
        (local != u64::MAX).then(|| local.saturating_sub(n.clock_offset_us))
    }

    fn log(&self, node: usize, what: impl fmt::Display) {
        if self.trace {
            println!("{:>12.3}ms n{node}: {what}", self.now as f64 / 1000.0);
        }
    }

    /// Ticks `node`; false when its deadline stays in the past (a core bug).
    fn tick(&mut self, node: usize) -> bool {
        let n = &mut self.nodes[node];
        n.ticks = if n.ticks.0 == self.now { (self.now, n.ticks.1 + 1) } else { (self.now, 1) };
        if n.ticks.1 > TICKS_PER_INSTANT_MAX {
            let error = format!("node {node}: next_deadline stays at or before now {}µs", self.now);
            self.history.core_errors.push(error);
            return false;
        }
        self.step(node, Input::Tick);
        true
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Deliver { to, message } => {
                if self.nodes[to].replica.is_some() {
                    self.log(to, format_args!("recv {message}"));
                    self.step(to, Input::Message(message));
                }
            }
            Event::DiskDone { incarnation, token } => self.disk_done(incarnation, token),
            Event::Fetch { source, incarnation, first } => self.serve_fetch(source, incarnation, first),
            Event::Learned { incarnation, from, votes } => {
                let node = self.history.incarnations[incarnation].node;
                if self.nodes[node].incarnation == incarnation {
                    self.log(node, format_args!("learned {} votes from {from}", votes.len()));
                    self.step(node, Input::Learned { from, votes });
                }
            }
            Event::Fault => self.fault(),
            Event::Restart { node } => {
                if self.nodes[node].replica.is_none() && !self.kept_down.contains(&node) {
                    self.start(node);
                }
            }
            Event::Exit { node, incarnation } => {
                if self.nodes[node].replica.is_some() && self.nodes[node].incarnation == incarnation {
                    self.stop(node);
                    self.schedule(self.now + 1_000, Event::Restart { node });
                }
            }
            Event::Client => self.client(),
            Event::Heal => self.heal(),
            Event::Bootstrap => self.bootstrap(),
        }
    }

    /// Starts (or restarts) `node` from its durable journal, as a new incarnation.
    fn start(&mut self, node: usize) {
        let incarnation = self.history.incarnations.len();
        self.history.incarnations.push(Incarnation { node, executed: Vec::new(), observations: Vec::new() });
        let now = self.local_now(node);
        let n = &mut self.nodes[node];
        n.incarnation = incarnation;
        let recovered = Recovered { checkpoint: Decree(0), records: n.durable.clone() };
        let seed = self.params.seed.rotate_left(17) ^ incarnation as u64;
        let config = self.params.config.clone();
        let records = recovered.records.len();
        // Nodes outside the first set start as a replica started with legacy's old API
        // does, knowing the first configuration, or (`late_joiners`) wait in configuration
        // 0 as those of the set do until they take the bootstrap. One that never takes it
        // may join a later configuration that names it (`copy_checkpoint`).
        let bootstraps = self.params.bootstrap && (node < self.params.nodes || self.params.late_joiners);
        let configuration = match (&n.bootstrapped, bootstraps) {
            (_, false) => self.configuration.clone(),
            (Some(members), true) => {
                Configuration { number: 1, initial_decree: Decree(1), members: members.clone() }
            }
            (None, true) => {
                Configuration { number: 0, initial_decree: Decree(0), members: MemberSet::default() }
            }
        };
        match Replica::new(
            &Member::named(n.id.as_str()).expect("a valid id"),
            config,
            configuration,
            recovered,
            seed,
            now,
        ) {
            Ok(replica) => n.replica = Some(replica),
            Err(e) => return self.history.core_errors.push(format!("node {node} failed to start: {e}")),
        }
        self.log(node, format_args!("start incarnation {incarnation} from {records} records"));
        self.settle(node);
    }

    /// Loses everything not durable: a prefix of the writes in flight reached the disk,
    /// the next one is torn (recovery cuts it), the rest never started.
    fn crash(&mut self, node: usize) {
        let n = &mut self.nodes[node];
        if n.replica.take().is_none() {
            return;
        }
        let reached = self.rng.below(n.pending.len() as u64 + 1) as usize;
        let keep = !self.params.bugs.lossy_disk;
        n.durable.extend(n.pending.drain(..).take(reached).filter(|_| keep).map(|(_, r)| r));
        n.disk_free_at = self.now;
        self.log(node, format_args!("crash ({reached} writes in flight reached the disk)"));
    }

    /// A clean stop (legacy Unload): the replica shuts down, the journal writes it issued,
    /// its last ones included, reach the disk, and the process ends.
    fn stop(&mut self, node: usize) {
        self.step(node, Input::Shutdown);
        let n = &mut self.nodes[node];
        if n.replica.take().is_none() {
            return;
        }
        let keep = !self.params.bugs.lossy_disk;
        n.durable.extend(n.pending.drain(..).filter(|_| keep).map(|(_, r)| r));
        n.disk_free_at = self.now;
        self.log(node, format_args!("clean stop"));
    }

    fn step(&mut self, node: usize, input: Input) {
        let now = self.local_now(node);
        let Some(replica) = self.nodes[node].replica.as_mut() else { return };
        if let Err(e) = replica.step(now, input) {
            self.history.core_errors.push(format!("node {node} refused an input at {}µs: {e}", self.now));
        }
        self.settle(node);
    }

    /// Performs the node's actions until it has none left; completions the driver owes
    /// (executed, can-become-primary) are stepped after the actions that caused them.
    fn settle(&mut self, node: usize) {
        let mut follow_ups = VecDeque::new();
        loop {
            let now = self.local_now(node);
            let Some(replica) = self.nodes[node].replica.as_mut() else { return };
            let actions = replica.drain_actions();
            if actions.is_empty() {
                let Some(input) = follow_ups.pop_front() else { break };
                if let Err(e) = replica.step(now, input) {
                    self.history.core_errors.push(format!("node {node} refused a completion: {e}"));
                }
                continue;
            }
            for action in actions {
                self.log(node, &action);
                self.perform(node, action, &mut follow_ups);
            }
        }
        self.observe(node);
    }

    fn perform(&mut self, node: usize, action: Action, follow_ups: &mut VecDeque<Input>) {
        match action {
            Action::Send { to, message } => self.send(node, &to, message),
            Action::Persist { token, record } => self.persist(node, token, record),
            Action::Execute { vote, cookies } => {
                follow_ups.push_back(Input::Executed(vote.decree));
                self.execute(node, vote, cookies);
            }
            Action::Abort { cookie, .. } => {
                self.unresolved.remove(&cookie);
                self.history.aborted.insert(cookie);
            }
            Action::AbortReconfiguration { .. } => {}
            Action::PersistBootstrap(members) => self.nodes[node].bootstrapped = Some(members),
            Action::FetchVotes { from, first } => self.fetch(node, &from, first),
            Action::CopyCheckpoint { from, .. } => self.copy_checkpoint(node, &from),
            Action::AskCanBecomePrimary => {
                // The application may refuse during the faulty phase.
                let veto = !self.healed && self.rng.below(100) < self.params.faults.veto_pct;
                follow_ups.push_back(Input::CanBecomePrimary((!veto).then(Bytes::new)));
            }
            Action::NotifyStatus { .. } | Action::NotifyPrimaryRecovered | Action::Relinquished => {}
        }
    }

    /// Legacy's "join later": `node` never took the bootstrap and copies `from`'s checkpoint,
    /// then exits so that its restart loads it. The simulated logs are never truncated, so
    /// the copy is the oldest checkpoint: the first configuration's set (its `0.codex`, or
    /// what a replica started with that set holds), after which everything is learned.
    fn copy_checkpoint(&mut self, node: usize, from: &MemberId) {
        let Some(source) = self.nodes.iter().find(|n| n.id == *from) else { return };
        let set = source.bootstrapped.clone().unwrap_or_else(|| self.configuration.members.clone());
        self.nodes[node].bootstrapped = Some(set);
        self.history.joins += 1;
        let exit = Event::Exit { node, incarnation: self.nodes[node].incarnation };
        self.schedule(self.now + 1_000, exit);
    }

    /// The application: records what it executed, and tells clients their requests
    /// committed when the cookies are ours.
    fn execute(&mut self, node: usize, vote: Arc<Vote>, cookies: Option<Vec<Cookie>>) {
        let reconfiguration = matches!(vote.body, VoteBody::Reconfiguration(_));
        if let Some(cookies) = cookies.filter(|_| !reconfiguration) {
            if cookies.len() != vote.requests().len() {
                let error = format!(
                    "decree {}: {} cookies for {} requests",
                    vote.decree,
                    cookies.len(),
                    vote.requests().len()
                );
                self.history.core_errors.push(error);
            }
            for id in cookies {
                self.unresolved.remove(&id);
                self.liveness_acked += usize::from(id >= self.liveness_first);
                self.history.acks.push(Ack { id, decree: vote.decree });
            }
        }
        let bugs = self.params.bugs;
        let executed = &mut self.history.incarnations[self.nodes[node].incarnation].executed;
        if bugs.skip_execution && node == 0 && vote.decree == Decree(3) {
            return;
        }
        if bugs.repeat_execution && node == 0 && !self.bug_fired && !vote.requests().is_empty() {
            self.bug_fired = true;
            executed.push(Arc::clone(&vote));
        }
        executed.push(vote);
    }

    /// Records the node's pointers when they changed.
    fn observe(&mut self, node: usize) {
        let n = &self.nodes[node];
        let Some(replica) = &n.replica else { return };
        let incarnation = &mut self.history.incarnations[n.incarnation];
        let mut pointers = replica.pointers();
        let executed_by_app = incarnation.executed.last().map_or(Decree(0), |v| v.decree);
        let last = incarnation.observations.last();
        if last.is_some_and(|o| o.pointers == pointers && o.executed_by_app == executed_by_app) {
            return;
        }
        let plant = self.params.bugs.pointers_go_back && node == 0 && incarnation.observations.len() >= 10;
        if plant && !self.bug_fired && pointers.passed > Decree(0) {
            self.bug_fired = true;
            pointers.passed = Decree(pointers.passed.0 - 1);
        }
        incarnation.observations.push(Observation { pointers, executed_by_app });
    }

    fn send(&mut self, from: usize, to: &MemberId, message: Message) {
        let faulty = !self.healed;
        for target in 0..self.nodes.len() {
            if self.nodes[target].id != *to || target == from || self.cut.contains(&(from, target)) {
                continue;
            }
            if faulty && self.rng.below(100) < self.params.faults.drop_pct {
                continue;
            }
            let copies = if faulty && self.rng.below(100) < self.params.faults.duplicate_pct { 2 } else { 1 };
            for _ in 0..copies {
                let at = self.now + self.params.faults.delay(&mut self.rng);
                if let Body::VoteAccepted { .. } = &message.body {
                    if self.params.bugs.forged_acks {
                        self.forge_acks(from, target, &message, at);
                    }
                }
                let message = match &message.body {
                    Body::Vote(vote)
                        if self.params.bugs.alter_votes && target == 1 && !vote.requests().is_empty() =>
                    {
                        let altered = Vote { body: VoteBody::Requests(Vec::new()), ..Vote::clone(vote) };
                        Message { body: Body::Vote(Arc::new(altered)), ..message.clone() }
                    }
                    _ => message.clone(),
                };
                self.schedule(at, Event::Deliver { to: target, message });
            }
        }
    }

    /// Node 0's application bootstraps the first configuration, and repeats it every
    /// second until node 0 accepted a vote (legacy `Bootstrap(set, timeout)`).
    fn bootstrap(&mut self) {
        let now = self.local_now(0);
        let members = self.configuration.members.clone();
        if let Some(replica) = self.nodes[0].replica.as_mut() {
            match replica.step(now, Input::Bootstrap(members)) {
                Ok(()) => {}
                Err(InvalidInput::AlreadyBootstrapped) => return,
                Err(e) => return self.history.core_errors.push(format!("bootstrap refused: {e}")),
            }
            self.settle(0);
        }
        self.schedule(self.now + 1_000_000, Event::Bootstrap);
    }

    /// The planted bug: `message` delivered at `at` to `target` also as if every other
    /// member had sent it.
    fn forge_acks(&mut self, from: usize, target: usize, message: &Message, at: u64) {
        for forger in (0..self.nodes.len()).filter(|&n| n != from && n != target) {
            let forged = Message { from: self.nodes[forger].id.clone(), ..message.clone() };
            self.schedule(at, Event::Deliver { to: target, message: forged });
        }
    }

    /// Writes behind the ones in flight (a disk completes in order), each taking up to
    /// the seed's disk latency.
    fn persist(&mut self, node: usize, token: Token, record: Record) {
        let latency = 1 + self.rng.below(self.params.faults.disk_latency_max_us);
        let n = &mut self.nodes[node];
        let at = n.disk_free_at.max(self.now + latency);
        n.disk_free_at = at;
        n.pending.push_back((token, record));
        let incarnation = n.incarnation;
        self.schedule(at, Event::DiskDone { incarnation, token });
    }

    fn disk_done(&mut self, incarnation: usize, token: Token) {
        let node = self.history.incarnations[incarnation].node;
        let n = &mut self.nodes[node];
        if n.incarnation != incarnation || n.replica.is_none() {
            return;
        }
        let done = n.pending.iter().take_while(|(t, _)| *t <= token).count();
        let keep = !self.params.bugs.lossy_disk;
        n.durable.extend(n.pending.drain(..done).filter(|_| keep).map(|(_, r)| r));
        self.log(node, format_args!("persisted #{}", token.0));
        self.step(node, Input::Persisted(token));
    }

    fn fetch(&mut self, node: usize, from: &MemberId, first: Decree) {
        let Some(source) = self.nodes.iter().position(|n| n.id == *from) else { return };
        if self.cut.contains(&(node, source)) {
            return; // lost: the learner times out
        }
        let at = self.now + self.params.faults.delay(&mut self.rng);
        let incarnation = self.nodes[node].incarnation;
        self.schedule(at, Event::Fetch { source, incarnation, first });
    }

    /// The learn port: streams the chosen votes from the source's durable journal.
    fn serve_fetch(&mut self, source: usize, incarnation: usize, first: Decree) {
        let requester = self.history.incarnations[incarnation].node;
        let n = &self.nodes[source];
        if n.replica.is_none() || self.cut.contains(&(source, requester)) {
            return;
        }
        let votes = chosen_votes(&n.durable, Decree(first.0.saturating_sub(1)));
        let from = n.id.clone();
        let at = self.now + self.params.faults.delay(&mut self.rng);
        self.schedule(at, Event::Learned { incarnation, from, votes });
    }

    fn primary(&self) -> Option<usize> {
        self.nodes.iter().position(|n| n.replica.as_ref().is_some_and(Replica::is_primary))
    }

    fn up_nodes(&self) -> Vec<usize> {
        (0..self.nodes.len()).filter(|&i| self.nodes[i].replica.is_some()).collect()
    }

    /// One client burst: during the safety phase to the primary (or, sometimes, any
    /// node), unless too many requests are unresolved (a request unresolved for long
    /// was lost with a crashed primary); after the heal, liveness requests to the
    /// primary, one burst at a time, until enough committed.
    fn client(&mut self) {
        let workload = &self.params.workload;
        let burst = 1 + self.rng.below(workload.burst_max);
        if !self.healed {
            let lost_before = self.now.saturating_sub(workload.give_up_us);
            self.unresolved.retain(|_, submitted_at| *submitted_at >= lost_before);
            if self.unresolved.len() as u64 >= workload.unresolved_max {
                let at = self.now + workload.interval_us;
                return self.schedule(at, Event::Client);
            }
            let up = self.up_nodes();
            let misdirect = self.rng.below(100) < workload.misdirect_pct;
            let random = up.get(self.rng.below(up.len() as u64) as usize).copied();
            let target = if misdirect { random } else { self.primary().or(random) };
            for _ in 0..burst {
                target.inspect(|&node| self.submit(node, false));
            }
        } else if self.unresolved.range(self.liveness_first..).next().is_none()
            && self.liveness_acked < self.history.liveness_target
            && self.now < self.params.safety_us + self.params.liveness_us / 2
        {
            if let Some(primary) = self.primary() {
                for _ in 0..burst {
                    self.history.liveness_requests.push(self.next_request);
                    self.submit(primary, false);
                }
            }
        }
        let at = self.now + self.params.workload.interval_us;
        self.schedule(at, Event::Client);
    }

    /// Submits a new request to `node`; `last` makes it the last decree of its term.
    fn submit(&mut self, node: usize, last: bool) {
        let id = self.next_request;
        self.next_request += 1;
        if !(self.params.bugs.unregistered_requests && id.trailing_zeros() >= 4) {
            self.history.submitted.insert(id);
        }
        self.unresolved.insert(id, self.now);
        let exclusive = self.rng.below(20) == 0;
        self.log(node, format_args!("submit request {id}"));
        self.step(node, Input::Replicate { request: workload::request(id), cookie: id, exclusive, last });
    }

    fn fault(&mut self) {
        if self.healed {
            return;
        }
        let Some(fault) = self.params.faults.pick(&mut self.rng, self.nodes.len()) else { return };
        self.log(0, format_args!("fault {fault:?}"));
        match fault {
            Fault::Cut(links) => self.cut = links,
            Fault::Crash { node, downtime_us } => {
                if self.nodes[node].replica.is_some() {
                    // A third of them are clean stops (legacy Unload) instead.
                    if self.rng.below(3) == 0 {
                        self.stop(node);
                    } else {
                        self.crash(node);
                    }
                    self.schedule(self.now + downtime_us, Event::Restart { node });
                }
            }
            Fault::ClockJump { node, jump_us } => self.nodes[node].clock_offset_us += jump_us,
            Fault::Relinquish => {
                // Once per primary term: the application asks a primary to relinquish once.
                let term = |n: &Node| n.replica.as_ref().map(|r| (n.incarnation, r.pointers().max_ballot));
                if let Some(primary) = self.primary() {
                    let term = term(&self.nodes[primary]);
                    if term != self.relinquished {
                        self.relinquished = term;
                        // Or it ends its term with a last decree (legacy `isLastDecree`).
                        if self.rng.below(2) == 0 {
                            self.step(primary, Input::Relinquish);
                        } else {
                            self.submit(primary, true);
                            let exit =
                                Event::Exit { node: primary, incarnation: self.nodes[primary].incarnation };
                            self.schedule(self.now + self.params.faults.interval_us / 2, exit);
                        }
                    }
                }
            }
            Fault::Reconfigure(nodes) => {
                if let Some(primary) = self.primary().filter(|_| !nodes.is_empty()) {
                    let ids: Vec<&str> = nodes.iter().map(|&n| self.nodes[n].id.as_str()).collect();
                    let members = MemberSet::of_ids(&ids).expect("distinct valid ids");
                    let cookie = self.next_reconfiguration;
                    self.next_reconfiguration += 1;
                    self.step(primary, Input::ChangeConfiguration { members, cookie });
                }
            }
        }
        self.schedule(self.now + self.params.faults.interval_us, Event::Fault);
    }

    /// Ends the faults: links restored, drops and duplicates stop, crashed nodes restart
    /// except a minority the seed leaves down (crashing them if they are up).
    fn heal(&mut self) {
        self.healed = true;
        self.liveness_first = self.next_request;
        let n = self.nodes.len();
        self.cut = if self.params.bugs.permanent_partition {
            (0..n).flat_map(|a| (0..n).map(move |b| (a, b))).filter(|(a, b)| a != b).collect()
        } else {
            Vec::new()
        };
        let first = self.rng.below(n as u64) as usize;
        self.kept_down = (0..self.params.keep_down).map(|k| (first + k) % n).collect();
        self.log(0, format_args!("heal; kept down: {:?}", self.kept_down));
        for node in 0..n {
            if self.kept_down.contains(&node) {
                self.crash(node);
            } else if self.nodes[node].replica.is_none() {
                self.start(node);
            }
        }
    }
}
