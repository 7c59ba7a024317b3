//! Catching up: which journal records prove a decree chosen, and applying chosen votes
//! fetched from a peer (legacy FetchVotes over the learn port).
//!
//! Proof rule (docs/protocol.md §Learning): a vote `r` tells that every decree
//! `≤ r.passed` was chosen under a ballot `≤ r.ballot` (its proposer's ballot exceeded every
//! ballot it had seen). So the highest-ballot record for decree `d` holds the chosen value
//! if some record `r` with `r.passed ≥ d` has `r.ballot ≤` that record's ballot: `d` was
//! chosen under some ballot `m ≤ r.ballot`, and every proposal for `d` with a ballot
//! above `m` carries the chosen value. Legacy votes carry `passed = decree − 1`, which
//! makes this legacy's implicit-commit rule. A learned vote is journaled with
//! `passed = decree`: it proves itself, since its ballot is at least `m`.

use super::io::{Action, Record};
use super::message::Vote;
use super::replica::{Replica, Role};
use super::types::{Ballot, Decree, InvalidInput, MemberId};
use std::collections::BTreeMap;
use std::sync::Arc;

/// An outstanding fetch.
pub(super) struct Learning {
    pub from: MemberId,
    pub deadline: u64,
}

impl Learning {
    /// Emits the FetchVotes action and returns the record of it.
    pub(super) fn start(from: MemberId, first: Decree, replica: &mut Replica) -> Self {
        replica.gate.ready.push(Action::FetchVotes { from: from.clone(), first });
        Self { from, deadline: replica.now.saturating_add(replica.config.learn_timeout_us) }
    }
}

/// The votes that `records` prove chosen, contiguous from `after + 1`, in decree order.
pub fn chosen_votes(records: &[Record], after: Decree) -> Vec<Arc<Vote>> {
    let mut best: BTreeMap<Decree, &Arc<Vote>> = BTreeMap::new();
    let mut covers: Vec<(Decree, &Ballot)> = Vec::new();
    for record in records {
        if let Record::Vote(v) = record {
            covers.push((v.passed, &v.ballot));
            if v.decree > after && best.get(&v.decree).is_none_or(|b| b.ballot < v.ballot) {
                best.insert(v.decree, v);
            }
        }
    }
    // Sorted by watermark; suffix minima give the lowest ballot covering each decree.
    covers.sort_by_key(|(passed, _)| *passed);
    let mut suffix_min: Vec<&Ballot> = covers.iter().map(|(_, b)| *b).collect();
    for i in (0..suffix_min.len().saturating_sub(1)).rev() {
        if suffix_min[i + 1] < suffix_min[i] {
            suffix_min[i] = suffix_min[i + 1];
        }
    }
    let mut chosen = Vec::new();
    let mut next = after.next();
    while let Some(vote) = best.get(&next) {
        let first_cover = covers.partition_point(|(passed, _)| *passed < next);
        match suffix_min.get(first_cover) {
            Some(lowest) if **lowest <= vote.ballot => chosen.push(Arc::clone(vote)),
            _ => break,
        }
        next = next.next();
    }
    chosen
}

impl Replica {
    pub(super) fn on_learned(&mut self, from: &MemberId, votes: Vec<Arc<Vote>>) -> Result<(), InvalidInput> {
        if self.learning.as_ref().is_none_or(|l| l.from != *from) {
            return Ok(()); // an answer we no longer wait for
        }
        self.learning = None;
        if matches!(self.role, Role::Primary(_) | Role::Preparing(_)) {
            return Ok(());
        }
        let before = self.passed;
        for vote in votes {
            if vote.decree <= self.passed {
                continue;
            }
            if vote.decree != self.passed.next() {
                return Err(InvalidInput::BadCompletion("learned votes are not contiguous"));
            }
            if vote.configuration != self.configuration.number {
                return Err(InvalidInput::WrongConfiguration {
                    ours: self.configuration.number,
                    theirs: vote.configuration,
                });
            }
            self.highest_ballot_number_seen = self.highest_ballot_number_seen.max(vote.ballot.number);
            // Journaled as its own proof (watermark = its decree), so our journal can show
            // it chosen to the next learner; sound because its ballot is at least the one
            // it was chosen under (see the module comment).
            let proof = Vote { passed: vote.decree, ..Vote::clone(&vote) };
            self.persist(Record::Vote(Arc::new(proof)));
            self.watermark_seen = self.watermark_seen.max(vote.decree);
            self.pass(vote, None);
        }
        // Votes held above the learned ones may now be covered by the primary's watermark.
        self.advance_passed();
        if matches!(self.role, Role::Initializing(_)) {
            if self.passed > before {
                self.start_initializing(); // maybe there is more to learn
            } else {
                // The peer cannot prove more yet (its newest decrees are covered only by
                // its next proposal). Wait as a secondary: a live primary's votes then
                // bring us along; a dead one's absence leads to an election.
                // Nor may we lead over it: it passed more. Let it (or the timer) decide.
                self.force_reelection = false;
                self.become_secondary();
                self.next_election = self.now + self.election_delay();
            }
        }
        Ok(())
    }
}
