//! The primary: batching requests into decrees, keeping up to `window` decrees in flight,
//! counting durable acceptances, passing decrees strictly in order, heartbeats, re-sending,
//! relinquishing and replica-set change.
//!
//! A decree passes when a quorum accepted it under our ballot — our own acceptance counts
//! only once our record of the vote is durable — and every decree before it has passed.
//!
//! Replica-set change under pipelining (docs/protocol.md §Replica-set change): a ballot
//! proposes nothing above its reconfiguration vote — a recovered one included — and
//! proposes a fresh one only once every decree before it passed.

use super::config::Config;
use super::io::{AbortReason, Action, Cookie, Record, Token};
use super::message::{Body, Vote, VoteBody};
use super::replica::{Replica, Role, NEVER};
use super::types::{Ballot, Decree, InvalidInput, MemberId, MemberSet};
use bytes::Bytes;
use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

/// A request waiting for a decree.
enum Pending {
    Request { request: Bytes, cookie: Cookie, exclusive: bool },
    Relinquish,
    Reconfigure { members: MemberSet, cookie: Cookie },
}

/// A peer's latest acknowledgement to this primary.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerVote {
    pub decree: Decree,
    /// The peer's vote payload (legacy `SetVotePayload`, protocol v6).
    pub payload: u64,
    /// When it arrived, on the core's clock (µs).
    pub at_us: u64,
}

struct InFlight {
    vote: Arc<Vote>,
    /// Our own record of the vote.
    token: Token,
    acks: Vec<MemberId>,
    cookies: Option<Vec<Cookie>>,
}

pub(super) struct Primary {
    pub ballot: Ballot,
    primary_cookie: Bytes,
    in_flight: BTreeMap<Decree, InFlight>,
    queue: VecDeque<Pending>,
    /// Request bytes in `queue`.
    queued_bytes: usize,
    /// The last decree re-proposed after the election; NotifyStatus(true) once it passed.
    recovery: Decree,
    /// Decrees up to here were known chosen at the election (the promises' watermark); the
    /// re-proposals below it say so in their watermark.
    pub known_chosen: Decree,
    pub notified: bool,
    /// What each peer last acknowledged under our ballot (legacy ReplicaHealth).
    pub peer_votes: BTreeMap<MemberId, PeerVote>,
    /// No more proposals: the relinquish vote or the last decree was proposed.
    closed: bool,
    relinquish_decree: Option<Decree>,
    /// The decree of our reconfiguration vote: nothing is proposed above it.
    reconfiguration: Option<Decree>,
    last_proposed_at: u64,
    retry_at: u64,
}

impl Primary {
    /// Whether this term is ending by relinquish (its vote is proposed).
    pub(super) fn relinquishing(&self) -> bool {
        self.relinquish_decree.is_some()
    }

    pub fn deadline(&self, config: &Config) -> u64 {
        let heartbeat = if self.closed || !self.in_flight.is_empty() {
            NEVER
        } else {
            self.last_proposed_at.saturating_add(config.heartbeat_us)
        };
        let retry = if self.in_flight.is_empty() { NEVER } else { self.retry_at };
        heartbeat.min(retry)
    }

    /// Returns every request and replica-set change not yet chosen, in-flight ones first
    /// (legacy order).
    pub fn abort_all(self, reason: AbortReason, out: &mut Vec<Action>) {
        for f in self.in_flight.into_values() {
            let reconfiguration = matches!(f.vote.body, VoteBody::Reconfiguration(_));
            for cookie in f.cookies.into_iter().flatten() {
                out.push(if reconfiguration {
                    Action::AbortReconfiguration { cookie, reason }
                } else {
                    Action::Abort { cookie, reason }
                });
            }
        }
        for pending in self.queue {
            match pending {
                Pending::Request { cookie, .. } => out.push(Action::Abort { cookie, reason }),
                Pending::Reconfigure { cookie, .. } => {
                    out.push(Action::AbortReconfiguration { cookie, reason })
                }
                Pending::Relinquish => {}
            }
        }
    }

    pub fn check_invariants(&self, passed: Decree, window: u64, log: &BTreeMap<Decree, Arc<Vote>>) {
        let in_flight = self.in_flight.len() as u64;
        // Re-proposals after an election may span more than a window; new decrees never do.
        let limit = window.max(self.recovery.0.saturating_sub(passed.0));
        assert!(in_flight <= limit, "more than window decrees in flight");
        if let (Some((first, _)), Some((last, _))) =
            (self.in_flight.first_key_value(), self.in_flight.last_key_value())
        {
            assert_eq!(*first, passed.next(), "in-flight decrees start right above passed");
            assert_eq!(*last, passed.plus(in_flight), "in-flight decrees are contiguous");
            if let Some(reconfiguration) = self.reconfiguration {
                assert_eq!(*last, reconfiguration, "a decree proposed above our reconfiguration vote");
            }
        }
        // O(window): debug builds only.
        debug_assert!(self.in_flight.iter().all(
            |(d, f)| f.vote.ballot == self.ballot && log.get(d).is_some_and(|v| Arc::ptr_eq(v, &f.vote))
        ));
    }
}

impl Replica {
    /// Phase 1 succeeded: re-propose `freshest` (holes filled with empty votes) under
    /// `ballot`, before any new request.
    pub(super) fn become_primary(
        &mut self,
        ballot: Ballot,
        primary_cookie: Bytes,
        freshest: BTreeMap<Decree, Arc<Vote>>,
        known_chosen: Decree,
    ) {
        // Promisers may hold our last passed decrees unpassed under an older ballot; our
        // proposals start above them, so they can only learn them from our journal.
        self.journal_recent_proofs();
        let last = freshest.keys().next_back().copied().unwrap_or(self.passed);
        let recovery = last.max(self.passed.next());
        self.role = Role::Primary(Primary {
            ballot,
            primary_cookie,
            in_flight: BTreeMap::new(),
            queue: VecDeque::new(),
            queued_bytes: 0,
            recovery,
            known_chosen,
            notified: false,
            closed: false,
            relinquish_decree: None,
            reconfiguration: None,
            peer_votes: BTreeMap::new(),
            last_proposed_at: self.now,
            retry_at: self.now + self.config.vote_retry_us,
        });
        // A recovered relinquish vote is re-proposed without its flag: the flag says "my
        // proposer steps down", which is not true of us (keeping it would make every
        // secondary depose each new primary in turn).
        let mut decree = self.passed.next();
        while decree <= recovery {
            let body = freshest.get(&decree).map_or(VoteBody::Requests(Vec::new()), |v| v.body.clone());
            let reconfiguration = matches!(body, VoteBody::Reconfiguration(_));
            self.propose(body, false, None);
            if reconfiguration {
                // Votes recovered above it belong to no configuration: the old one ends here.
                let p = self.primary();
                p.reconfiguration = Some(decree);
                p.recovery = decree;
                break;
            }
            decree = decree.next();
        }
    }

    fn primary(&mut self) -> &mut Primary {
        match &mut self.role {
            Role::Primary(p) => p,
            _ => unreachable!("caller checked the role"),
        }
    }

    /// Proposes the next decree: held in our log, persisted, sent to every peer. Sending
    /// before our own record is durable is safe: a proposal reveals no promise.
    fn propose(&mut self, body: VoteBody, relinquish: bool, cookies: Option<Vec<Cookie>>) {
        let passed = self.passed;
        let configuration = self.configuration.number;
        let p = self.primary();
        let decree = p.in_flight.keys().next_back().map_or(passed, |d| *d).next();
        let vote = Arc::new(Vote {
            decree,
            ballot: p.ballot.clone(),
            configuration,
            passed: passed.max(p.known_chosen.min(Decree(decree.0 - 1))),
            primary_cookie: p.primary_cookie.clone(),
            relinquish,
            body,
        });
        assert!(
            self.log.get(&decree).is_none_or(|held| held.ballot < vote.ballot),
            "re-proposing a decree under our own ballot"
        );
        self.log.insert(decree, Arc::clone(&vote));
        let token = self.persist(Record::Vote(Arc::clone(&vote)));
        let (now, retry) = (self.now, self.config.vote_retry_us);
        let p = self.primary();
        if p.in_flight.is_empty() {
            // The re-send clock starts with the first vote in flight, not with an old one.
            p.retry_at = now + retry;
        }
        p.in_flight.insert(decree, InFlight { vote: Arc::clone(&vote), token, acks: Vec::new(), cookies });
        p.last_proposed_at = now;
        self.broadcast(&Body::Vote(vote));
    }

    /// Why this replica takes no new request or replica-set change now, if it does not.
    fn refusal(&self) -> Option<AbortReason> {
        match &self.role {
            Role::Primary(p) if p.notified && !p.closed => None,
            Role::Primary(p) if p.closed => Some(AbortReason::ShuttingDown),
            _ => Some(AbortReason::NotPrimary),
        }
    }

    pub(super) fn on_change_configuration(&mut self, members: MemberSet, cookie: Cookie) {
        if let Some(reason) = self.refusal() {
            self.gate.ready.push(Action::AbortReconfiguration { cookie, reason });
            return;
        }
        self.primary().queue.push_back(Pending::Reconfigure { members, cookie });
        self.propose_queued();
    }

    pub(super) fn on_replicate(&mut self, request: Bytes, cookie: Cookie, exclusive: bool, last: bool) {
        if let Some(reason) = self.refusal() {
            self.gate.ready.push(Action::Abort { cookie, reason });
            return;
        }
        let p = self.primary();
        p.queued_bytes += request.len();
        p.queue.push_back(Pending::Request { request, cookie, exclusive: exclusive || last });
        p.closed |= last;
        self.propose_queued();
    }

    pub(super) fn on_relinquish(&mut self) -> Result<(), InvalidInput> {
        match &mut self.role {
            // Asked again while the term is already ending: nothing more to do.
            Role::Primary(p) if p.notified && p.closed => Ok(()),
            Role::Primary(p) if p.notified => {
                p.queue.push_back(Pending::Relinquish);
                p.closed = true;
                self.propose_queued();
                Ok(())
            }
            _ => Err(InvalidInput::WrongState("relinquish needs a primary")),
        }
    }

    /// Fills the window from the queue, batching by count and bytes; exclusive requests
    /// and the relinquish vote stand alone. While decrees are in flight only full batches
    /// go out: a partial batch waits for the pipeline to drain and keeps growing meanwhile,
    /// so pipelining never trades big decrees for many small ones. A reconfiguration vote
    /// waits for the pipeline to drain, and nothing follows it: the requests queued behind
    /// it belong to the next configuration, and are returned if we do not lead it.
    pub(super) fn propose_queued(&mut self) {
        let (max_requests, max_bytes, window) =
            (self.config.batch_requests_max, self.config.batch_bytes_max, self.config.window);
        loop {
            let p = self.primary();
            if p.queue.is_empty() || p.in_flight.len() as u64 >= window || p.reconfiguration.is_some() {
                return;
            }
            if matches!(p.queue.front(), Some(Pending::Reconfigure { .. })) {
                if !p.in_flight.is_empty() {
                    return;
                }
                let Some(Pending::Reconfigure { members, cookie }) = p.queue.pop_front() else {
                    unreachable!()
                };
                self.propose(VoteBody::Reconfiguration(members), false, Some(vec![cookie]));
                let p = self.primary();
                p.reconfiguration = p.in_flight.keys().next_back().copied();
                return;
            }
            let full = p.queue.len() >= max_requests || p.queued_bytes >= max_bytes;
            if !p.in_flight.is_empty() && !full {
                return;
            }
            if matches!(p.queue.front(), Some(Pending::Relinquish)) {
                p.queue.pop_front();
                self.propose(VoteBody::Requests(Vec::new()), true, Some(Vec::new()));
                let p = self.primary();
                p.relinquish_decree = p.in_flight.keys().next_back().copied();
                continue;
            }
            let (mut requests, mut cookies, mut bytes) = (Vec::new(), Vec::new(), 0);
            while let Some(Pending::Request { request, exclusive, .. }) = p.queue.front() {
                let alone = *exclusive;
                if !requests.is_empty()
                    && (alone || requests.len() >= max_requests || bytes + request.len() > max_bytes)
                {
                    break;
                }
                let Some(Pending::Request { request, cookie, .. }) = p.queue.pop_front() else {
                    unreachable!()
                };
                bytes += request.len();
                p.queued_bytes -= request.len();
                requests.push(request);
                cookies.push(cookie);
                if alone {
                    break;
                }
            }
            self.propose(VoteBody::Requests(requests), false, Some(cookies));
        }
    }

    pub(super) fn on_vote_accepted(&mut self, from: MemberId, decree: Decree, ballot: Ballot, payload: u64) {
        let now = self.now;
        let Role::Primary(p) = &mut self.role else { return };
        if ballot != p.ballot {
            return;
        }
        let last = p.peer_votes.entry(from.clone()).or_default();
        if decree >= last.decree {
            *last = PeerVote { decree, payload, at_us: now };
        }
        if let Some(f) = p.in_flight.get_mut(&decree) {
            if !f.acks.contains(&from) {
                f.acks.push(from);
                self.try_pass();
            }
        }
    }

    /// Passes every in-flight decree, in order, that has a quorum of acceptances.
    pub(super) fn try_pass(&mut self) {
        let quorum = self.quorum();
        let durable = self.gate.durable;
        loop {
            let Role::Primary(p) = &mut self.role else { return };
            let Some(entry) = p.in_flight.first_entry() else { break };
            let f = entry.get();
            let votes = f.acks.len() + usize::from(f.token <= durable);
            if votes < quorum {
                break;
            }
            let f = entry.remove();
            let relinquished = p.relinquish_decree == Some(f.vote.decree);
            let decree = f.vote.decree;
            self.pass(f.vote, f.cookies);
            let Role::Primary(p) = &mut self.role else { return }; // a reconfiguration passed
            if !p.notified && decree >= p.recovery {
                p.notified = true;
                self.gate.ready.push(Action::NotifyStatus { primary: true });
                self.gate.ready.push(Action::NotifyPrimaryRecovered);
            }
            if relinquished {
                self.become_secondary(); // announces Relinquished
                self.next_election = self.now.saturating_add(self.config.new_leader_grace_us);
                return;
            }
        }
        let p = self.primary();
        if p.closed && p.in_flight.is_empty() && p.queue.is_empty() {
            // The last decree of a closed term passed and no proposal will ever prove it:
            // journal the proofs now, or no one could learn the term's last decrees.
            self.journal_recent_proofs();
        }
        self.propose_queued();
    }

    pub(super) fn on_primary_timer(&mut self) {
        let now = self.now;
        let (heartbeat, retry) = (self.config.heartbeat_us, self.config.vote_retry_us);
        let Role::Primary(p) = &mut self.role else { return };
        if p.in_flight.is_empty() && !p.closed && now >= p.last_proposed_at.saturating_add(heartbeat) {
            self.propose(VoteBody::Requests(Vec::new()), false, None);
            return;
        }
        if p.in_flight.is_empty() || now < p.retry_at {
            return;
        }
        p.retry_at = now + retry;
        let resend: Vec<(MemberId, Arc<Vote>)> = p
            .in_flight
            .values()
            .flat_map(|f| {
                self.configuration
                    .members
                    .ids()
                    .filter(|id| **id != self.id && !f.acks.contains(id))
                    .map(|id| (id.clone(), Arc::clone(&f.vote)))
            })
            .collect();
        for (to, vote) in resend {
            self.send(to, Body::Vote(vote));
        }
    }
}
