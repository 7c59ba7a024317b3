//! Membership (docs/protocol.md §Replica-set change, §Bootstrap): taking the bootstrap,
//! entering the next configuration once its reconfiguration decree passes, hearing of a
//! newer configuration, and answering legacy's JoinRequest.

use super::io::Action;
use super::message::{Body, Message};
use super::replica::{Replica, Role};
use super::types::{Ballot, Configuration, Decree, InvalidInput, MemberId, MemberSet};

impl Replica {
    /// Legacy "bootstrapped": this replica accepted a vote, so configuration 1 is in use.
    pub fn is_bootstrapped(&self) -> bool {
        let (decree, ballot) = self.max_accepted();
        !ballot.is_empty() || decree > Decree(1)
    }

    /// Bootstrap with `members` (legacy §4.7 and §1.7's checks): adopt them as
    /// configuration 1, persisted first; `announce` sends Bootstrap to the other members.
    pub(super) fn on_bootstrap(&mut self, members: MemberSet, announce: bool) -> Result<(), InvalidInput> {
        if !members.contains(&self.id) {
            return Err(InvalidInput::BootstrapFailed("this replica is not in the set"));
        }
        if self.is_bootstrapped() {
            return Err(InvalidInput::AlreadyBootstrapped);
        }
        if self.configuration.number == 0 {
            self.configuration = Configuration { number: 1, initial_decree: self.passed.next(), members };
            self.gate.ready.push(Action::PersistBootstrap(self.configuration.members.clone()));
            self.start_initializing();
        } else if self.configuration.number > 1 || self.configuration.members != members {
            return Err(InvalidInput::BootstrapFailed("another set was bootstrapped"));
        }
        if announce {
            let others: Vec<MemberId> =
                self.configuration.members.ids().filter(|id| **id != self.id).cloned().collect();
            for to in &others {
                self.send_bootstrap(to);
            }
        }
        Ok(())
    }

    /// Legacy's answer to a JoinRequest for our configuration, from a member of it or of
    /// an earlier one (the members of a new set may all be new: they learn from us).
    pub(super) fn send_join(&mut self, to: MemberId) {
        let body = Body::Join {
            decree: Decree(self.configuration.initial_decree.0.saturating_sub(1)),
            learn_port: self.learn_port,
            min_decree_in_log: self.min_decree_in_log,
            checkpointed_decree: self.checkpointed,
            checkpoint_size: 0,
        };
        self.send(to, body);
    }

    /// Legacy's "join later" (§4.7, TestReplicaJoinClusterLater), second half: a replica
    /// that never took the bootstrap was invited to Join; only a checkpoint carries the
    /// configuration's set, so it copies the sender's, and the runtime restarts it on that.
    pub(super) fn join_by_checkpoint(&mut self, from: MemberId, learn_port: u16, decree: Decree) {
        self.gate.ready.push(Action::CopyCheckpoint { from, learn_port, decree });
    }

    /// Legacy's DefunctConfiguration, to a sender of configuration 1 or later, ours being
    /// later still: every configuration before ours ended. (Legacy records the highest it
    /// knows in `defunct.txt`; ours follows from our configuration.)
    pub(super) fn send_defunct(&mut self, to: MemberId) {
        assert!(self.configuration.number >= 2, "configuration 1 follows none that ended");
        let configuration = self.configuration.number - 1;
        let message = Message { from: self.id.clone(), configuration, body: Body::Defunct };
        self.gate.ready.push(Action::Send { to, message });
    }

    /// Bootstrap with our configuration-1 set, stamped configuration 0.
    pub(super) fn send_bootstrap(&mut self, to: &MemberId) {
        let body = Body::Bootstrap(self.configuration.members.clone());
        let message = Message { from: self.id.clone(), configuration: 0, body };
        self.gate.ready.push(Action::Send { to: to.clone(), message });
    }

    /// A newer configuration exists, so every decree of ours up to its first one is
    /// chosen, and no other decree of ours will be: leave any leading role and learn the
    /// decisions from `from`.
    pub(super) fn on_newer_configuration(&mut self, from: MemberId, configuration: u32) {
        if self.configuration.number == 0 {
            self.on_configuration_unknown(from, configuration);
            return;
        }
        if matches!(self.role, Role::Primary(_) | Role::Preparing(_)) {
            self.become_secondary();
        }
        if self.learning.is_none() {
            self.learning = Some(super::learner::Learning::start(from, self.passed.next(), self));
        }
    }

    /// Not bootstrapped, we hear from `configuration`: legacy's "join later", first half.
    /// We ask the sender to Join us, at most once per `initialize_retry_us`. Of
    /// configuration 1, our status goes first: a member of ours that reads it bootstraps us
    /// before its Join arrives, which then changes nothing (a legacy member only answers
    /// the JoinRequest).
    fn on_configuration_unknown(&mut self, from: MemberId, configuration: u32) {
        if configuration == 1 {
            let status = self.status(Decree(0), Ballot::default());
            self.send(from.clone(), Body::StatusResponse(Box::new(status)));
        }
        if self.join_requested_at.is_some_and(|at| self.now < at + self.config.initialize_retry_us) {
            return;
        }
        self.join_requested_at = Some(self.now);
        let message = Message { from: self.id.clone(), configuration, body: Body::JoinRequest };
        self.gate.ready.push(Action::Send { to: from, message });
    }

    /// The reconfiguration at `passed` was chosen: the next configuration governs from the
    /// next decree. Its primary tells the old members; votes held above the decision can
    /// never be chosen; a member stands for election (its old primary at once, since it
    /// led before), a non-member goes inactive.
    pub(super) fn enter_configuration(&mut self, members: MemberSet) {
        if let Role::Primary(p) = &self.role {
            let body = Body::ReconfigurationDecision { decree: self.passed, ballot: p.ballot.clone() };
            self.broadcast(&body);
        }
        if matches!(self.role, Role::Primary(_) | Role::Preparing(_)) {
            self.become_secondary();
        }
        self.log.clear();
        self.configuration = Configuration {
            number: self.configuration.number + 1,
            initial_decree: self.passed.next(),
            members,
        };
        self.primary_passed = (self.passed, Ballot::default());
        self.primary_passed_journaled = true;
        if self.configuration.members.contains(&self.id) {
            self.start_initializing();
        } else {
            self.role = Role::Inactive { announce_at: self.now };
            self.force_reelection = false;
        }
    }
}
