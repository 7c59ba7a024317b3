//! The acceptor: votes and prepares from other replicas.
//!
//! Rules (docs/protocol.md §Acceptor): a vote or prepare below the promised ballot is
//! refused; an accepted vote is persisted before its VoteAccepted leaves; a promise is
//! persisted before its PrepareAccepted leaves; one value per (decree, ballot) — a second,
//! different value is rejected. Votes beyond `passed + window` are not accepted; a replica
//! that misses chosen decrees fetches them from the primary's journal.

use super::io::Record;
use super::learner::Learning;
use super::message::{Body, Vote};
use super::replica::{Replica, Role};
use super::types::{Ballot, Decree, InvalidInput, MemberId};
use std::sync::Arc;

impl Replica {
    pub(super) fn on_vote(&mut self, from: MemberId, vote: Arc<Vote>) -> Result<(), InvalidInput> {
        if vote.passed >= vote.decree {
            return Err(InvalidInput::BadWatermark { decree: vote.decree, passed: vote.passed });
        }
        if vote.ballot.member != from {
            return Err(InvalidInput::BadPromise("vote ballot names another member"));
        }
        let limit = vote.passed.plus(self.config.window);
        if vote.decree > limit {
            return Err(InvalidInput::DecreeFromTheFuture { decree: vote.decree, limit });
        }
        if vote.configuration != self.configuration.number {
            let (ours, theirs) = (self.configuration.number, vote.configuration);
            return Err(InvalidInput::WrongConfiguration { ours, theirs });
        }
        // One value per (decree, ballot), checked before anything moves: a proposer that
        // breaks it is not trusted for its watermark either.
        if let Some(held) = self.log.get(&vote.decree) {
            if held.ballot == vote.ballot && held.value_digest() != vote.value_digest() {
                return Err(InvalidInput::ConflictingVote {
                    decree: vote.decree,
                    ballot: vote.ballot.clone(),
                });
            }
        }
        if matches!(self.role, Role::Initializing(_)) {
            // Legacy caches these; we rely on the primary re-sending unacknowledged votes.
            return Ok(());
        }
        if vote.ballot < self.max_ballot {
            self.refuse(from);
            return Ok(());
        }
        self.observe_ballot(&vote.ballot);
        debug_assert!(matches!(self.role, Role::Secondary), "a higher ballot demotes");
        self.last_vote_at = Some(self.now);
        self.next_election = self.now + self.election_delay();
        if vote.relinquish {
            self.force_reelection = true;
        }
        self.watermark_seen = self.watermark_seen.max(vote.passed);
        if vote.passed > self.primary_passed.0 || vote.ballot != self.primary_passed.1 {
            self.primary_passed = (vote.passed, vote.ballot.clone());
            // A vote we will not journal (beyond our window once its watermark has passed
            // what it covers) proves nothing in our journal.
            self.primary_passed_journaled = vote.decree <= self.covered_through().plus(self.config.window);
        }
        self.advance_passed();
        let decree = vote.decree;
        let ballot = vote.ballot.clone();
        if decree > self.passed.plus(self.config.window) {
            // Chosen decrees below it are missing here; the fetch below brings them.
        } else if decree <= self.passed {
            // Already chosen here. Accept it again so a new primary finishing its
            // re-proposals can count us; the value is the chosen one (Paxos). Journal it
            // as its own proof: its ballot would otherwise outrank every record that
            // proves the decree chosen, and the decree could no longer be served.
            let proof = Vote { passed: decree, ..Vote::clone(&vote) };
            let token = self.persist(Record::Vote(Arc::new(proof)));
            self.ack(token, from.clone(), decree, ballot);
        } else {
            self.accept(from.clone(), vote);
        }
        self.fetch_if_behind(from);
        Ok(())
    }

    /// Logs `vote` (the highest ballot for its decree) and acknowledges it once durable.
    fn accept(&mut self, from: MemberId, vote: Arc<Vote>) {
        let (decree, ballot) = (vote.decree, vote.ballot.clone());
        if let Some(held) = self.log.get(&decree) {
            if held.ballot == ballot {
                debug_assert_eq!(held.value_digest(), vote.value_digest(), "checked in on_vote");
                // A re-sent vote: acknowledge again once everything issued is durable.
                let token = self.gate.issued;
                self.ack(token, from, decree, ballot);
                return;
            }
            assert!(held.ballot < ballot, "held ballot above the promise");
        }
        self.log.insert(decree, Arc::clone(&vote));
        let token = self.persist(Record::Vote(vote));
        self.ack(token, from, decree, ballot);
        self.advance_passed();
    }

    fn ack(&mut self, token: super::io::Token, to: MemberId, decree: Decree, ballot: Ballot) {
        if self.accept_messages {
            let payload = self.vote_payload;
            self.send_after(token, to, Body::VoteAccepted { decree, ballot, payload });
        }
    }

    /// Passes held votes covered by the primary's watermark: a vote at `d ≤ watermark`
    /// accepted under the watermark's own ballot holds the chosen value.
    ///
    /// When the vote that carried the watermark is not in our journal, each decree passed
    /// here is journaled as its own proof: otherwise our journal could never show it
    /// chosen, and a replica missing it could not learn it from us.
    pub(super) fn advance_passed(&mut self) {
        let through = self.covered_through();
        while self.passed < through {
            let vote = Arc::clone(&self.log[&self.passed.next()]);
            if !self.primary_passed_journaled {
                let proof = Vote { passed: vote.decree, ..Vote::clone(&vote) };
                self.persist(Record::Vote(Arc::new(proof)));
            }
            self.pass(vote, None);
        }
    }

    /// The highest decree the primary's watermark lets us pass: held votes under the
    /// watermark's ballot, contiguous from `passed`.
    fn covered_through(&self) -> Decree {
        let (watermark, ballot) = (self.primary_passed.0, &self.primary_passed.1);
        let mut through = self.passed;
        while through < watermark && self.log.get(&through.next()).is_some_and(|v| v.ballot == *ballot) {
            through = through.next();
        }
        through
    }

    /// The reconfiguration vote `(decree, ballot)` was chosen: a watermark from its
    /// primary, which passes it (and the old configuration's last decrees) if we hold them,
    /// or fetches them. Not journaled itself: each decree it passes is journaled as its
    /// own proof, as for any watermark whose vote we did not journal.
    pub(super) fn on_reconfiguration_decision(&mut self, from: MemberId, decree: Decree, ballot: Ballot) {
        if decree <= self.passed {
            return;
        }
        if matches!(self.role, Role::Primary(_) | Role::Preparing(_)) {
            self.become_secondary(); // some other ballot decided our configuration's end
        }
        self.watermark_seen = self.watermark_seen.max(decree);
        self.primary_passed = (decree, ballot);
        self.primary_passed_journaled = false;
        self.advance_passed();
        self.fetch_if_behind(from);
    }

    /// Starts a fetch from `from` when its watermark shows chosen decrees we lack.
    pub(super) fn fetch_if_behind(&mut self, from: MemberId) {
        if self.primary_passed.0 > self.passed && self.learning.is_none() {
            self.learning = Some(Learning::start(from, self.passed.next(), self));
        }
    }

    /// NotAccepted showing our latest decree, passed watermark and promise.
    pub(super) fn refuse(&mut self, to: MemberId) {
        let (decree, _) = self.max_accepted();
        let body = Body::NotAccepted { decree, passed: self.passed, ballot: self.max_ballot.clone() };
        self.send(to, body);
    }

    pub(super) fn on_prepare(
        &mut self,
        from: MemberId,
        decree: Decree,
        passed: Decree,
        ballot: Ballot,
    ) -> Result<(), InvalidInput> {
        if ballot.member != from {
            return Err(InvalidInput::BadPromise("prepare ballot names another member"));
        }
        if ballot < self.max_ballot {
            self.refuse(from);
            return Ok(());
        }
        if passed < self.passed {
            // The candidate misses decrees we know chosen: it must learn before leading.
            self.refuse(from);
            return Ok(());
        }
        // Journal the promise even when `max_ballot` already equals it: that value may
        // come from a NotAccepted or a vote seen in memory only, never promised durably.
        self.observe_ballot(&ballot);
        let token = self.persist(Record::Promise(ballot.clone()));
        if self.accept_messages {
            let votes = self.log.range(passed.next()..).map(|(_, v)| Arc::clone(v)).collect();
            let watermark = self.watermark_seen.max(self.passed);
            self.send_after(token, from, Body::PrepareAccepted { decree, ballot, watermark, votes });
        }
        // Legacy ignores prepares while Initializing. We promise: a replica that cannot
        // learn from the one that passed most (it cannot yet prove its newest decree)
        // must still be able to elect it.
        if matches!(self.role, Role::Initializing(_)) {
            self.become_secondary();
        }
        Ok(())
    }
}
