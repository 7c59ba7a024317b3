//! Elections: the status round of Initializing, phase 1 (Preparing), and NotAccepted.
//!
//! A suspicious secondary first asks a quorum for its status. If someone has passed more
//! decrees it learns them; otherwise, when its election timer has fired (or it led
//! before, or promotion was requested) and the application agrees, it prepares a ballot
//! above every ballot it has seen. A quorum of durable promises — each carrying every vote
//! the responder accepted above the candidate's passed watermark — makes it primary.

use super::io::{Action, Record, Token};
use super::message::{Body, Status, Vote};
use super::replica::{Replica, Role, NEVER};
use super::types::{Ballot, Decree, InvalidInput, MemberId};
use bytes::Bytes;
use std::collections::BTreeMap;
use std::sync::Arc;

pub(super) struct Initializing {
    /// Our (latest decree, its ballot), which responses must echo.
    query: (Decree, Ballot),
    responses: BTreeMap<MemberId, Status>,
    retry_at: u64,
    awaiting_permission: bool,
}

impl Initializing {
    pub fn deadline(&self) -> u64 {
        if self.awaiting_permission {
            NEVER
        } else {
            self.retry_at
        }
    }
}

pub(super) struct Preparing {
    pub ballot: Ballot,
    primary_cookie: Bytes,
    /// The promise record of our own ballot; we count ourselves once it is durable.
    promise: Token,
    /// Our passed watermark when we prepared: promises carry votes above it.
    passed: Decree,
    /// Each promise's votes, and the highest watermark among the promises.
    promises: BTreeMap<MemberId, Vec<Arc<Vote>>>,
    watermark: Decree,
    pub retry_at: u64,
    pub give_up_at: u64,
}

impl Replica {
    /// Legacy StartInitializing: ask everyone for their status.
    pub(super) fn start_initializing(&mut self) {
        if let Role::Primary(_) | Role::Preparing(_) = self.role {
            self.become_secondary();
        }
        let (decree, ballot) = self.max_accepted();
        let query = (decree, ballot.clone());
        self.role = Role::Initializing(Initializing {
            query: query.clone(),
            responses: BTreeMap::new(),
            retry_at: self.now + self.config.initialize_retry_us,
            awaiting_permission: false,
        });
        self.broadcast(&Body::StatusQuery { decree: query.0, ballot: query.1 });
        if self.quorum() == 1 {
            self.decide();
        }
    }

    pub(super) fn on_initializing_timer(&mut self) {
        let Role::Initializing(init) = &mut self.role else { return };
        if init.awaiting_permission || self.now < init.retry_at || self.learning.is_some() {
            return;
        }
        init.retry_at = self.now + self.config.initialize_retry_us;
        let (decree, ballot) = init.query.clone();
        self.broadcast(&Body::StatusQuery { decree, ballot });
    }

    pub(super) fn on_status_response(&mut self, from: MemberId, status: Status) {
        let quorum = self.quorum();
        let Role::Initializing(init) = &mut self.role else { return };
        if init.awaiting_permission
            || (status.query_decree, &status.query_ballot) != (init.query.0, &init.query.1)
        {
            return;
        }
        self.highest_ballot_number_seen = self.highest_ballot_number_seen.max(status.max_ballot.number);
        init.responses.insert(from, status);
        if init.responses.len() + 1 >= quorum && self.learning.is_none() {
            self.decide();
        }
    }

    /// A quorum answered (legacy step 1–4 of Initializing): learn from whoever is ahead,
    /// else prepare or settle as secondary.
    fn decide(&mut self) {
        let Role::Initializing(init) = &self.role else { return };
        let ahead = init
            .responses
            .iter()
            .filter(|(_, s)| s.passed > self.passed)
            .max_by_key(|(_, s)| s.passed)
            .map(|(id, _)| id.clone());
        if let Some(from) = ahead {
            let first = self.passed.next();
            self.learning = Some(super::learner::Learning::start(from, first, self));
            return;
        }
        // Legacy: a replica whose own ballot is the highest it knows led before and stands
        // again at once. Not when a responder knows a higher ballot: someone else leads now
        // (a restarted primary would otherwise depose a healthy successor).
        let led_before = self.max_ballot.member == self.id
            && init.responses.values().all(|s| s.max_ballot <= self.max_ballot);
        if self.next_election == NEVER {
            // Just restarted: trust the freshest responder's view of when a vote was seen.
            let ago_us = init
                .responses
                .values()
                .filter(|s| s.last_received_ago_ms >= 0)
                .map(|s| s.last_received_ago_ms as u64 * 1000)
                .min();
            let base = ago_us.map_or(self.now, |ago| self.now.saturating_sub(ago));
            self.next_election = base + self.election_delay();
        }
        if self.now >= self.next_election || led_before || self.force_reelection {
            if let Role::Initializing(init) = &mut self.role {
                init.awaiting_permission = true;
            }
            self.gate.ready.push(Action::AskCanBecomePrimary);
        } else {
            self.become_secondary();
        }
    }

    pub(super) fn on_can_become_primary(&mut self, answer: Option<Bytes>) {
        let Role::Initializing(init) = &self.role else { return };
        if !init.awaiting_permission {
            return;
        }
        match answer {
            Some(cookie) => self.start_preparing(cookie),
            None => {
                self.become_secondary();
                self.next_election = self.now + self.config.heartbeat_us;
            }
        }
    }

    fn start_preparing(&mut self, primary_cookie: Bytes) {
        self.force_reelection = false;
        let number = self.max_ballot.number.max(self.highest_ballot_number_seen) + 1;
        let ballot = Ballot::new(number, self.id.clone());
        self.observe_ballot(&ballot);
        let promise = self.persist(Record::Promise(ballot.clone()));
        let decree = self.prepare_decree();
        self.role = Role::Preparing(Preparing {
            ballot: ballot.clone(),
            primary_cookie: primary_cookie.clone(),
            promise,
            passed: self.passed,
            promises: BTreeMap::new(),
            watermark: self.watermark_seen.max(self.passed),
            retry_at: self.now + self.config.prepare_retry_us,
            give_up_at: self.now.saturating_add(30 * self.config.election_delay_us),
        });
        let passed = self.passed;
        self.broadcast(&Body::Prepare { decree, passed, ballot, primary_cookie });
    }

    /// The decree a Prepare names: our latest accepted one, and at least `passed + 1` —
    /// legacy's `maxAcceptedVote`, which after a replica-set change (or once every held
    /// vote passed) is the next, empty vote. A version ≤ 6 acceptor reads `decree − 1` as
    /// our passed watermark, and refuses a candidate that passed less than itself.
    fn prepare_decree(&self) -> Decree {
        self.max_accepted().0.max(self.passed.next())
    }

    pub(super) fn on_preparing_timer(&mut self) {
        let decree = self.prepare_decree();
        let Role::Preparing(prep) = &mut self.role else { return };
        if self.now >= prep.give_up_at {
            self.start_initializing();
            return;
        }
        if self.now < prep.retry_at {
            return;
        }
        prep.retry_at = self.now + self.config.prepare_retry_us;
        let silent: Vec<MemberId> = self
            .configuration
            .members
            .ids()
            .filter(|id| **id != self.id && !prep.promises.contains_key(*id))
            .cloned()
            .collect();
        let body = Body::Prepare {
            decree,
            passed: prep.passed,
            ballot: prep.ballot.clone(),
            primary_cookie: prep.primary_cookie.clone(),
        };
        for to in silent {
            self.send(to, body.clone());
        }
    }

    pub(super) fn on_prepare_accepted(
        &mut self,
        from: MemberId,
        ballot: Ballot,
        watermark: Decree,
        votes: Vec<Arc<Vote>>,
    ) -> Result<(), InvalidInput> {
        let window = self.config.window;
        let Role::Preparing(prep) = &mut self.role else { return Ok(()) };
        if ballot != prep.ballot {
            return Ok(());
        }
        // A responder holds votes up to its highest watermark + window.
        let limit = prep.passed.max(watermark).plus(window);
        for v in &votes {
            if v.ballot >= prep.ballot {
                return Err(InvalidInput::BadPromise("carries a vote at or above the prepared ballot"));
            }
            if v.decree > limit {
                return Err(InvalidInput::BadPromise("carries a vote beyond its watermark + window"));
            }
        }
        // Votes at or below our passed watermark are already settled for us; a legacy
        // responder always embeds its latest vote, which may be one of them.
        let votes = votes.into_iter().filter(|v| v.decree > prep.passed).collect();
        prep.watermark = prep.watermark.max(watermark);
        prep.promises.insert(from, votes);
        self.try_become_primary()
    }

    /// With a quorum of durable promises (ours included), become primary and re-propose
    /// the highest-ballot vote of every decree above our passed watermark.
    ///
    /// Every decree up to the promises' highest watermark is chosen, so some promiser must
    /// hold it (the choosing quorum meets ours, and a member that passed it would have
    /// refused us); the highest-ballot vote held is the chosen value. A quorum that lacks
    /// one is a broken promise: the election is abandoned with an error.
    pub(super) fn try_become_primary(&mut self) -> Result<(), InvalidInput> {
        let quorum = self.quorum();
        let Role::Preparing(prep) = &self.role else { return Ok(()) };
        if prep.promise > self.gate.durable || prep.promises.len() + 1 < quorum {
            return Ok(());
        }
        let mut freshest: BTreeMap<Decree, Arc<Vote>> = BTreeMap::new();
        let promised = prep.promises.values().flatten().chain(self.log.values());
        for v in promised {
            if freshest.get(&v.decree).is_none_or(|f| f.ballot < v.ballot) {
                freshest.insert(v.decree, Arc::clone(v));
            }
        }
        let known_chosen = prep.watermark;
        let mut decree = prep.passed.next();
        while decree <= known_chosen {
            if !freshest.contains_key(&decree) {
                self.start_initializing();
                return Err(InvalidInput::BadPromise("a promise quorum lacks a decree below its watermark"));
            }
            decree = decree.next();
        }
        let Role::Preparing(prep) = std::mem::replace(&mut self.role, Role::Secondary) else {
            unreachable!()
        };
        self.watermark_seen = self.watermark_seen.max(known_chosen);
        self.become_primary(prep.ballot, prep.primary_cookie, freshest, known_chosen);
        Ok(())
    }

    pub(super) fn on_not_accepted(&mut self, passed: Decree, ballot: Ballot) {
        if matches!(self.role, Role::Initializing(_)) {
            return;
        }
        if passed > self.passed {
            self.observe_ballot(&ballot);
            self.start_initializing();
        } else if ballot > self.max_ballot {
            self.observe_ballot(&ballot);
        }
    }
}
