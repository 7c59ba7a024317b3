//! The replica's state, the `step` entry point, the durability gate and the invariants.
//!
//! Log pointers (see docs/protocol.md): `executed ≤ passed`; every accepted vote the replica
//! still holds (`log`) lies in `(passed, max(passed, watermark_seen) + window]`; every held
//! vote's ballot is ≤ `max_ballot`; `passed` and `max_ballot` never decrease within one
//! incarnation.
//! Messages that reveal durable state (an acceptance, a promise) wait in the durability
//! gate until the driver reports the record they depend on persisted.

use super::config::Config;
use super::election::{Initializing, Preparing};
use super::io::{AbortReason, Action, Cookie, Input, Record, Recovered, Token};
use super::learner::{chosen_votes, Learning};
use super::message::{Body, Message, State, Status, Vote, VoteBody};
use super::proposer::{PeerVote, Primary};
use super::rng::Rng;
use super::types::{Ballot, Configuration, Decree, InvalidInput, Member, MemberId};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// "Never" on the core's microsecond clock.
pub(super) const NEVER: u64 = u64::MAX;

pub(super) enum Role {
    /// Not a member of the current configuration: answers status queries, and learns
    /// when a newer configuration shows up (it may be a member again). It queries the
    /// members every `initialize_retry_us` for as long as it is inactive: members that were
    /// not in the old configuration hear of the new one that way when no one else is left
    /// to tell them, and it hears of a later one that names it even when that one's members
    /// are strangers to its transport (it learns their addresses from the decisions).
    Inactive {
        announce_at: u64,
    },
    /// Shut down (legacy Unload): answers status queries only.
    Stopped,
    Secondary,
    Initializing(Initializing),
    Preparing(Preparing),
    Primary(Primary),
}

/// Outgoing actions, and the messages held back until the record they reveal is durable.
#[derive(Default)]
pub(super) struct Gate {
    pub issued: Token,
    pub durable: Token,
    pub held: VecDeque<(Token, Action)>,
    pub ready: Vec<Action>,
}

/// A snapshot of the log pointers, for checkers and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pointers {
    pub executed: Decree,
    pub passed: Decree,
    pub max_accepted: Decree,
    pub max_ballot: Ballot,
    pub state: State,
}

pub struct Replica {
    pub(super) id: MemberId,
    pub(super) config: Config,
    pub(super) configuration: Configuration,
    pub(super) rng: Rng,
    pub(super) now: u64,
    pub(super) role: Role,
    /// The highest ballot promised or accepted.
    pub(super) max_ballot: Ballot,
    /// Accepted votes above `passed`, by decree (at most one per decree: the highest ballot).
    pub(super) log: BTreeMap<Decree, Arc<Vote>>,
    /// Every decree ≤ `passed` is chosen and was handed to execution.
    pub(super) passed: Decree,
    /// Ballot of the vote at `passed`.
    pub(super) passed_ballot: Ballot,
    /// The last `window` passed votes, oldest first, journaled as their own proof when the
    /// replica takes or leaves the primary role (see `journal_recent_proofs`).
    pub(super) recent_passed: VecDeque<Arc<Vote>>,
    pub(super) executed: Decree,
    /// The highest passed watermark heard from the current primary, and its ballot.
    pub(super) primary_passed: (Decree, Ballot),
    /// Whether the vote that carried `primary_passed` is in our journal.
    pub(super) primary_passed_journaled: bool,
    /// The highest watermark ever seen (votes, promises, the journal): every decree up to
    /// it is chosen, though we may not hold the values. Held votes lie below it + window.
    pub(super) watermark_seen: Decree,
    pub(super) learning: Option<Learning>,
    pub(super) gate: Gate,
    pub(super) next_election: u64,
    pub(super) last_vote_at: Option<u64>,
    pub(super) highest_ballot_number_seen: u32,
    pub(super) force_reelection: bool,
    pub(super) accept_messages: bool,
    pub(super) vote_payload: u64,
    /// The newest checkpoint saved, as recovered and then as `Input::Retained` reports.
    pub(super) checkpointed: Decree,
    /// The lowest decree the journal holds: as recovered, then as `Input::Retained` reports
    /// the logs a checkpoint covered deleted.
    pub(super) min_decree_in_log: Decree,
    /// When this replica, never bootstrapped, last asked a configuration past 1 to Join it.
    pub(super) join_requested_at: Option<u64>,
    /// Our learn port (a Join advertises it).
    pub(super) learn_port: u16,
    /// For the monotonicity invariants.
    checked: (Decree, Ballot),
}

impl Replica {
    /// Builds a replica from what the driver recovered from disk. Decrees the journal proves
    /// chosen are passed at once, and their `Execute` actions replay them.
    pub fn new(
        me: &Member,
        config: Config,
        configuration: Configuration,
        recovered: Recovered,
        seed: u64,
        now: u64,
    ) -> Result<Self, InvalidInput> {
        config.validate().map_err(InvalidInput::BadConfig)?;
        let mut max_ballot = Ballot::default();
        for r in &recovered.records {
            let b = match r {
                Record::Vote(v) => &v.ballot,
                Record::Promise(b) => b,
            };
            if *b > max_ballot {
                max_ballot = b.clone();
            }
        }
        let mut replica = Self {
            id: me.id.clone(),
            config,
            configuration,
            rng: Rng::new(seed),
            now,
            role: Role::Secondary,
            highest_ballot_number_seen: max_ballot.number,
            max_ballot,
            log: BTreeMap::new(),
            passed: recovered.checkpoint,
            passed_ballot: Ballot::default(),
            recent_passed: VecDeque::new(),
            executed: recovered.checkpoint,
            primary_passed: (recovered.checkpoint, Ballot::default()),
            primary_passed_journaled: true,
            watermark_seen: recovered.checkpoint,
            learning: None,
            gate: Gate::default(),
            next_election: NEVER,
            last_vote_at: None,
            force_reelection: false,
            accept_messages: true,
            vote_payload: 0,
            checkpointed: recovered.checkpoint,
            min_decree_in_log: recovered
                .records
                .iter()
                .filter_map(|r| match r {
                    Record::Vote(v) => Some(v.decree),
                    Record::Promise(_) => None,
                })
                .min()
                .unwrap_or(recovered.checkpoint),
            join_requested_at: None,
            learn_port: me.learn_port,
            checked: (recovered.checkpoint, Ballot::default()),
        };
        for vote in chosen_votes(&recovered.records, recovered.checkpoint) {
            if vote.configuration != replica.configuration.number {
                break; // a journal that contradicts itself: what follows must be learned
            }
            replica.pass(vote, None);
        }
        // Replaying a reconfiguration stepped through roles; only the executions count.
        replica.gate.ready.retain(|a| matches!(a, Action::Execute { .. }));
        // The journal's remaining votes are accepted but not known chosen: keep the highest
        // ballot per decree, every one of them — dropping an accepted vote could let a
        // later election miss a chosen value. Votes of a configuration that ended can
        // never be chosen.
        for r in recovered.records {
            if let Record::Vote(v) = r {
                replica.watermark_seen = replica.watermark_seen.max(v.passed);
                let keep = v.decree > replica.passed
                    && v.configuration == replica.configuration.number
                    && replica.log.get(&v.decree).is_none_or(|old| old.ballot < v.ballot);
                if keep {
                    replica.log.insert(v.decree, v);
                }
            }
        }
        replica.checked = (replica.passed, replica.max_ballot.clone());
        if replica.configuration.members.contains(&replica.id) {
            replica.start_initializing();
        } else {
            // It may be the last to know of its configuration: announce it (unless it
            // waits for bootstrap, and knows none).
            let waits = replica.configuration.number == 0;
            replica.role = Role::Inactive { announce_at: if waits { NEVER } else { now } };
        }
        replica.check_invariants();
        Ok(replica)
    }

    /// Feeds one input at time `now` (µs, monotonic; a clock that steps back is held).
    pub fn step(&mut self, now: u64, input: Input) -> Result<(), InvalidInput> {
        self.now = self.now.max(now);
        let result = match input {
            Input::Tick => Ok(()),
            Input::Message(message) => self.on_message(message),
            Input::Replicate { request, cookie, exclusive, last } => {
                self.on_replicate(request, cookie, exclusive, last);
                Ok(())
            }
            Input::Persisted(token) => self.on_persisted(token),
            Input::Executed(decree) => self.on_executed(decree),
            Input::Learned { from, votes } => self.on_learned(&from, votes),
            Input::CanBecomePrimary(answer) => {
                self.on_can_become_primary(answer);
                Ok(())
            }
            Input::AcceptMessages(yes) => {
                self.accept_messages = yes;
                Ok(())
            }
            Input::SetVotePayload(payload) => {
                self.vote_payload = payload;
                Ok(())
            }
            Input::Retained { checkpoint, first_logged } => {
                self.checkpointed = self.checkpointed.max(checkpoint);
                self.min_decree_in_log = self.min_decree_in_log.max(first_logged);
                Ok(())
            }
            Input::Relinquish => self.on_relinquish(),
            Input::Bootstrap(members) => self.on_bootstrap(members, true),
            Input::ChangeConfiguration { members, cookie } => {
                self.on_change_configuration(members, cookie);
                Ok(())
            }
            Input::AttemptPromotion => {
                self.force_reelection = true;
                Ok(())
            }
            Input::Shutdown => {
                self.shut_down();
                Ok(())
            }
            Input::SetWindow(window) => {
                let config = Config { window, ..self.config.clone() };
                config.validate().map_err(InvalidInput::BadConfig).map(|()| {
                    self.config = config;
                    if matches!(self.role, Role::Primary(_)) {
                        self.propose_queued();
                    }
                })
            }
            Input::ChangeElectionDelay { delay_us } => {
                // Legacy does not validate this; we keep the config's range.
                let config = Config { election_delay_us: delay_us, ..self.config.clone() };
                config.validate().map_err(InvalidInput::BadConfig).map(|()| {
                    self.config = config;
                    if self.next_election != NEVER && matches!(self.role, Role::Secondary) {
                        self.next_election = self.now + self.election_delay();
                    }
                })
            }
        };
        self.on_timers();
        self.check_invariants();
        result
    }

    /// The actions produced so far, in the order the driver must perform them.
    #[must_use]
    pub fn drain_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.gate.ready)
    }

    /// When the driver must call `step(now, Tick)` next (`u64::MAX`: no timer is armed).
    pub fn next_deadline(&self) -> u64 {
        let role = match &self.role {
            Role::Inactive { announce_at } => *announce_at,
            Role::Stopped => NEVER,
            Role::Secondary => {
                if self.force_reelection {
                    self.now
                } else {
                    self.next_election
                }
            }
            // The status retry waits while a fetch is outstanding (see on_initializing_timer);
            // reporting it would have the driver spin on a deadline in the past.
            Role::Initializing(_) if self.learning.is_some() => NEVER,
            Role::Initializing(init) => init.deadline(),
            Role::Preparing(prep) => prep.retry_at.min(prep.give_up_at),
            Role::Primary(p) => p.deadline(&self.config),
        };
        role.min(self.learning.as_ref().map_or(NEVER, |l| l.deadline))
    }

    pub fn id(&self) -> &MemberId {
        &self.id
    }

    pub fn state(&self) -> State {
        match self.role {
            Role::Inactive { .. } | Role::Stopped => State::Inactive,
            Role::Secondary => State::Secondary,
            Role::Initializing(_) => State::Initializing,
            Role::Preparing(_) => State::Preparing,
            Role::Primary(_) => State::Primary,
        }
    }

    /// True once this replica is primary and has told the application so; requests are
    /// accepted only then (legacy's "is primary" flag).
    pub fn is_primary(&self) -> bool {
        matches!(&self.role, Role::Primary(p) if p.notified)
    }

    pub fn pointers(&self) -> Pointers {
        Pointers {
            executed: self.executed,
            passed: self.passed,
            max_accepted: self.max_accepted().0,
            max_ballot: self.max_ballot.clone(),
            state: self.state(),
        }
    }

    /// On a primary, each peer's latest acknowledgement (for replica health); else None.
    pub fn peer_votes(&self) -> Option<&BTreeMap<MemberId, PeerVote>> {
        match &self.role {
            Role::Primary(p) => Some(&p.peer_votes),
            _ => None,
        }
    }

    /// The vote held for `decree`: accepted above `passed`, or among the last passed ones
    /// (a checkpoint records the vote after its decree).
    pub fn vote(&self, decree: Decree) -> Option<&Arc<Vote>> {
        self.log.get(&decree).or_else(|| self.recent_passed.iter().find(|v| v.decree == decree))
    }

    pub fn configuration(&self) -> &Configuration {
        &self.configuration
    }

    /// The member whose ballot this replica last accepted a vote from (legacy
    /// `GetCurrentPrimary`), if any.
    pub fn current_primary(&self) -> Option<&MemberId> {
        let ballot = &self.max_accepted().1;
        (!ballot.member.is_empty()).then_some(&ballot.member)
    }

    /// The latest accepted vote's (decree, ballot): legacy `maxAcceptedVote`.
    pub(super) fn max_accepted(&self) -> (Decree, &Ballot) {
        match self.log.last_key_value() {
            Some((d, v)) => (*d, &v.ballot),
            None => (self.passed, &self.passed_ballot),
        }
    }

    /// This replica's answer to a StatusQuery echoing `(query_decree, query_ballot)`; the
    /// learn port serves it too. `checkpoint_size` is 0: the driver knows the file.
    pub fn status(&self, query_decree: Decree, query_ballot: Ballot) -> Status {
        let (decree, ballot) = self.max_accepted();
        Status {
            query_decree,
            query_ballot,
            decree,
            ballot: ballot.clone(),
            passed: self.passed,
            last_received_ago_ms: self.last_vote_at.map_or(-1, |t| ((self.now - t) / 1000) as i64),
            min_decree_in_log: self.min_decree_in_log,
            checkpointed_decree: self.checkpointed,
            checkpoint_size: 0,
            max_ballot: self.max_ballot.clone(),
            state: self.state(),
        }
    }

    /// Configuration checks (legacy §4.8, simplified): a status query is answered whatever
    /// its configuration (legacy too); a message of a newer configuration means ours ended,
    /// so we learn from its sender (or, never bootstrapped, ask to join it); a vote,
    /// prepare, Join or JoinRequest of an older one is told that its configuration ended
    /// (legacy's DefunctConfiguration). The rest must come from a member of our
    /// configuration.
    fn on_message(&mut self, message: Message) -> Result<(), InvalidInput> {
        let Message { from, configuration, body } = message;
        if from == self.id {
            return Err(InvalidInput::FromSelf);
        }
        if let Body::StatusQuery { decree, ballot } = body {
            if !matches!(self.role, Role::Stopped) && configuration > self.configuration.number {
                self.on_newer_configuration(from.clone(), configuration);
            }
            let status = self.status(decree, ballot);
            self.send(from, Body::StatusResponse(Box::new(status)));
            return Ok(());
        }
        if matches!(self.role, Role::Stopped) {
            return Ok(());
        }
        if let Body::Bootstrap(members) = body {
            // Legacy takes it from anyone; we only from a member of the set it names.
            if !members.contains(&from) {
                return Err(InvalidInput::UnknownMember(from));
            }
            // A set we cannot take is ignored, as legacy does for the message.
            let _ = self.on_bootstrap(members, false);
            return Ok(());
        }
        match body {
            // Legacy's exchange between configurations (rule 4 does the same between
            // replicas of this implementation): a Join of a newer configuration, or news
            // that ours is dead, make us learn from the sender; a JoinRequest for our
            // configuration is answered with a Join.
            Body::Join { learn_port, checkpointed_decree, .. }
                if self.configuration.number == 0 && configuration > 0 =>
            {
                self.join_by_checkpoint(from, learn_port, checkpointed_decree)
            }
            Body::Join { .. } if configuration > self.configuration.number => {
                self.on_newer_configuration(from, configuration)
            }
            Body::Defunct if configuration >= self.configuration.number => {
                self.on_newer_configuration(from, configuration)
            }
            Body::JoinRequest if configuration == self.configuration.number => self.send_join(from),
            Body::Join { .. } | Body::JoinRequest
                if configuration > 0 && configuration < self.configuration.number =>
            {
                self.send_defunct(from)
            }
            Body::Join { .. } | Body::Defunct | Body::JoinRequest => {}
            _ if configuration > self.configuration.number => {
                self.on_newer_configuration(from, configuration)
            }
            _ => return self.on_message_of_ours(from, configuration, body),
        }
        Ok(())
    }

    /// A message of our configuration or an older one.
    fn on_message_of_ours(
        &mut self,
        from: MemberId,
        configuration: u32,
        body: Body,
    ) -> Result<(), InvalidInput> {
        if configuration < self.configuration.number {
            let members = &self.configuration.members;
            if configuration == 0
                && self.configuration.number == 1
                && members.contains(&from)
                && members.contains(&self.id)
            {
                // A member missed the bootstrap: it takes it now, and learns the rest.
                self.send_bootstrap(&from);
            } else if configuration > 0 && matches!(body, Body::Vote(_) | Body::Prepare { .. }) {
                self.send_defunct(from);
            }
            return Ok(());
        }
        if !self.configuration.members.contains(&from) {
            // Anyone answers a status query: a member removed from our configuration too.
            return match body {
                Body::StatusResponse(_) => Ok(()),
                _ => Err(InvalidInput::UnknownMember(from)),
            };
        }
        if let Role::Inactive { .. } = self.role {
            return Ok(());
        }
        match body {
            Body::Vote(vote) => self.on_vote(from, vote),
            Body::VoteAccepted { decree, ballot, payload } => {
                self.on_vote_accepted(from, decree, ballot, payload);
                Ok(())
            }
            Body::Prepare { decree, passed, ballot, primary_cookie: _ } => {
                self.on_prepare(from, decree, passed, ballot)
            }
            Body::PrepareAccepted { decree: _, ballot, watermark, votes } => {
                self.on_prepare_accepted(from, ballot, watermark, votes)
            }
            Body::NotAccepted { decree: _, passed, ballot } => {
                self.on_not_accepted(passed, ballot);
                Ok(())
            }
            Body::StatusResponse(status) => {
                self.on_status_response(from, *status);
                Ok(())
            }
            Body::ReconfigurationDecision { decree, ballot } => {
                self.on_reconfiguration_decision(from, decree, ballot);
                Ok(())
            }
            Body::StatusQuery { .. }
            | Body::Bootstrap(_)
            | Body::Defunct
            | Body::Join { .. }
            | Body::JoinRequest => unreachable!("handled above"),
        }
    }

    fn on_persisted(&mut self, token: Token) -> Result<(), InvalidInput> {
        if token > self.gate.issued {
            return Err(InvalidInput::BadCompletion("persisted token never issued"));
        }
        if token <= self.gate.durable {
            return Ok(());
        }
        self.gate.durable = token;
        let held = std::mem::take(&mut self.gate.held);
        for (t, action) in held {
            if t <= token {
                self.gate.ready.push(action);
            } else {
                self.gate.held.push_back((t, action));
            }
        }
        match self.role {
            Role::Primary(_) => self.try_pass(),
            Role::Preparing(_) => return self.try_become_primary(),
            _ => {}
        }
        Ok(())
    }

    fn on_executed(&mut self, decree: Decree) -> Result<(), InvalidInput> {
        if decree > self.passed {
            return Err(InvalidInput::BadCompletion("executed beyond passed"));
        }
        self.executed = self.executed.max(decree);
        Ok(())
    }

    /// Marks `vote` chosen: it must be the next decree. Hands it to execution; a
    /// reconfiguration then starts the next configuration.
    pub(super) fn pass(&mut self, vote: Arc<Vote>, cookies: Option<Vec<Cookie>>) {
        assert_eq!(vote.decree, self.passed.next(), "decrees pass strictly in order");
        assert_eq!(
            vote.configuration, self.configuration.number,
            "decree {} of configuration {} passed in configuration {}",
            vote.decree, vote.configuration, self.configuration.number
        );
        self.log.remove(&vote.decree);
        self.passed = vote.decree;
        self.passed_ballot = vote.ballot.clone();
        if self.recent_passed.len() as u64 >= self.config.window {
            self.recent_passed.pop_front();
        }
        self.recent_passed.push_back(Arc::clone(&vote));
        let next = match &vote.body {
            VoteBody::Reconfiguration(members) => Some(members.clone()),
            VoteBody::Requests(_) => None,
        };
        self.gate.ready.push(Action::Execute { vote, cookies });
        if let Some(members) = next {
            self.enter_configuration(members);
        }
    }

    /// Raises the promise to `ballot` (not persisted: nothing was promised to anyone yet).
    /// A primary or candidate that sees a higher ballot steps down.
    pub(super) fn observe_ballot(&mut self, ballot: &Ballot) {
        self.highest_ballot_number_seen = self.highest_ballot_number_seen.max(ballot.number);
        if *ballot <= self.max_ballot {
            return;
        }
        self.max_ballot = ballot.clone();
        if matches!(self.role, Role::Primary(_) | Role::Preparing(_)) {
            self.become_secondary();
        }
        let grace = self.now.saturating_add(self.config.new_leader_grace_us);
        if self.next_election == NEVER || self.next_election < grace {
            self.next_election = grace;
        }
    }

    /// Leaves any role for Secondary. A primary first returns every pending request
    /// (chosen decrees were already handed to execution, which the driver performs first),
    /// then tells the application it is no longer primary.
    pub(super) fn become_secondary(&mut self) {
        if let Role::Primary(primary) = std::mem::replace(&mut self.role, Role::Secondary) {
            // A relinquishing primary's term is over once its vote is chosen, or once a
            // successor (elected at the relinquish vote's request) deposes it first.
            if primary.relinquishing() {
                self.gate.ready.push(Action::Relinquished);
            }
            let notified = primary.notified;
            primary.abort_all(AbortReason::NotPrimary, &mut self.gate.ready);
            if notified {
                self.gate.ready.push(Action::NotifyStatus { primary: false });
            }
            // Our last passes were to be proven by proposals we will no longer make.
            self.journal_recent_proofs();
        }
        if self.next_election == NEVER {
            self.next_election = self.now + self.election_delay();
        }
    }

    /// Journals the last `window` passed votes as their own proof (`passed = decree`), as
    /// the learner does. A primary's latest passes are proven in its journal only by its
    /// next proposal; at a change of primary that proposal may never come, and a replica
    /// still missing those decrees could then learn them from nobody. Sound: records
    /// become durable in token order, so each proof follows the record it vouches for,
    /// and a passed vote's ballot is at least the ballot it was chosen under.
    pub(super) fn journal_recent_proofs(&mut self) {
        for vote in std::mem::take(&mut self.recent_passed) {
            let proof = Vote { passed: vote.decree, ..Vote::clone(&vote) };
            self.persist(Record::Vote(Arc::new(proof)));
        }
    }

    /// Legacy Unload: every pending request goes back with `ShuttingDown` (no NotifyStatus
    /// on shutdown) and the replica stops taking part: from then on it only answers status
    /// queries.
    fn shut_down(&mut self) {
        if let Role::Primary(primary) = std::mem::replace(&mut self.role, Role::Stopped) {
            primary.abort_all(AbortReason::ShuttingDown, &mut self.gate.ready);
            // As when stepping down: no proposal will prove our last passes chosen, and a
            // clean restart should replay every decree it executed.
            self.journal_recent_proofs();
        }
        self.learning = None;
        self.force_reelection = false;
    }

    /// The election delay with its jitter, drawn anew each time.
    pub(super) fn election_delay(&mut self) -> u64 {
        let jitter = self.config.election_jitter_us();
        let offset = self.rng.below(2 * jitter + 1);
        (self.config.election_delay_us + offset).saturating_sub(jitter).max(1)
    }

    pub(super) fn send(&mut self, to: MemberId, body: Body) {
        let message = Message { from: self.id.clone(), configuration: self.configuration.number, body };
        self.gate.ready.push(Action::Send { to, message });
    }

    /// Sends once every record issued up to `token` is durable.
    pub(super) fn send_after(&mut self, token: Token, to: MemberId, body: Body) {
        let message = Message { from: self.id.clone(), configuration: self.configuration.number, body };
        let action = Action::Send { to, message };
        if token <= self.gate.durable {
            self.gate.ready.push(action);
        } else {
            self.gate.held.push_back((token, action));
        }
    }

    /// Sends `body` to every other member (no per-call allocation beyond the messages).
    pub(super) fn broadcast(&mut self, body: &Body) {
        let (me, number) = (&self.id, self.configuration.number);
        for to in self.configuration.members.ids().filter(|id| *id != me) {
            let message = Message { from: me.clone(), configuration: number, body: body.clone() };
            self.gate.ready.push(Action::Send { to: to.clone(), message });
        }
    }

    pub(super) fn persist(&mut self, record: Record) -> Token {
        self.gate.issued = Token(self.gate.issued.0 + 1);
        let token = self.gate.issued;
        self.gate.ready.push(Action::Persist { token, record });
        token
    }

    pub(super) fn quorum(&self) -> usize {
        self.configuration.members.quorum()
    }

    fn on_timers(&mut self) {
        if self.learning.as_ref().is_some_and(|l| self.now >= l.deadline) {
            self.learning = None;
            if matches!(self.role, Role::Initializing(_)) {
                self.start_initializing();
            }
        }
        match &self.role {
            Role::Inactive { announce_at } => {
                if self.now >= *announce_at {
                    let at = self.now + self.config.initialize_retry_us;
                    self.role = Role::Inactive { announce_at: at };
                    let (decree, ballot) = self.max_accepted();
                    let body = Body::StatusQuery { decree, ballot: ballot.clone() };
                    self.broadcast(&body);
                }
            }
            Role::Stopped => {}
            Role::Secondary => {
                if self.force_reelection || self.now >= self.next_election {
                    self.start_initializing();
                }
            }
            Role::Initializing(_) => self.on_initializing_timer(),
            Role::Preparing(_) => self.on_preparing_timer(),
            Role::Primary(_) => self.on_primary_timer(),
        }
    }

    /// The contracts that must hold after every step. Cheap ones always; the O(n) walk over
    /// the log only in debug builds.
    pub fn check_invariants(&mut self) {
        assert!(self.executed <= self.passed, "executed {} > passed {}", self.executed, self.passed);
        assert!(self.passed >= self.checked.0, "passed went back from {} to {}", self.checked.0, self.passed);
        assert!(
            self.max_ballot >= self.checked.1,
            "max ballot went back from {} to {}",
            self.checked.1,
            self.max_ballot
        );
        assert!(self.gate.durable <= self.gate.issued, "durable token beyond issued");
        if let Some((first, _)) = self.log.first_key_value() {
            assert!(*first > self.passed, "held vote {first} at or below passed {}", self.passed);
        }
        if let Some((last, _)) = self.log.last_key_value() {
            let limit = self.passed.max(self.watermark_seen).plus(self.config.window);
            assert!(*last <= limit, "held vote {last} beyond the highest watermark + window {limit}");
        }
        debug_assert!(self.log.iter().all(|(d, v)| v.decree == *d && v.ballot <= self.max_ballot));
        if let Role::Primary(p) = &self.role {
            assert_eq!(p.ballot, self.max_ballot, "a primary's ballot is its promise");
            p.check_invariants(self.passed, self.config.window, &self.log);
            assert!(p.known_chosen <= self.watermark_seen.max(self.passed), "primary's chosen mark unseen");
        }
        self.checked = (self.passed, self.max_ballot.clone());
    }
}
