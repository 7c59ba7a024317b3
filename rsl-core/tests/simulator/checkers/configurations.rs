//! Configurations: walking the chosen sequence from the first configuration, each
//! reconfiguration decree starting the next one, every decree was decided by the
//! configuration that governs it — its vote names that configuration, and at least a
//! quorum of that configuration's members hold an acceptance of its value in their
//! journals. A removed member, or a member of another configuration, never counts.
//!
//! An acceptance is a vote record whose watermark lies below its decree; records that
//! prove a decree chosen (learned, or accepted again after passing) carry the decree as
//! their watermark and do not count. The first choice of a decree always had a quorum of
//! acceptances, which journals keep here (the simulator never truncates them).

use crate::history::History;
use rsl_core::paxos::{Decree, Record, Vote, VoteBody};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const NAME: &str = "configurations";

pub fn check(history: &History) -> Result<(), String> {
    let Some(mut configuration) = history.first_configuration.clone() else { return Ok(()) };
    let mut chosen: BTreeMap<Decree, &Arc<Vote>> = BTreeMap::new();
    for vote in history.incarnations.iter().flat_map(|i| &i.executed) {
        chosen.entry(vote.decree).or_insert(vote);
    }
    let mut expected = Decree(1);
    for (decree, vote) in chosen {
        if decree != expected {
            break; // a gap: executed prefixes are another checker's business
        }
        expected = decree.next();
        if vote.configuration != configuration.number {
            return Err(format!(
                "decree {decree} decided in configuration {}, governed by configuration {}",
                vote.configuration, configuration.number
            ));
        }
        let digest = vote.value_digest();
        let accepted = |records: &[Record]| {
            records.iter().any(|r| {
                matches!(r, Record::Vote(v) if v.decree == decree && v.passed < decree && v.value_digest() == digest)
            })
        };
        let holders = history
            .journals
            .iter()
            .filter(|(id, records)| configuration.members.contains(id) && accepted(records))
            .count();
        if holders < configuration.members.quorum() {
            return Err(format!(
                "decree {decree}: {holders} members of configuration {} accepted it, a quorum is {}",
                configuration.number,
                configuration.members.quorum()
            ));
        }
        if let VoteBody::Reconfiguration(members) = &vote.body {
            configuration.number += 1;
            configuration.initial_decree = decree.next();
            configuration.members = members.clone();
        }
    }
    Ok(())
}
