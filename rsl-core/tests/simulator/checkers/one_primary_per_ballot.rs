//! One primary per ballot: no two replica incarnations ever act as primary under the same
//! ballot (two would propose different values for one (decree, ballot)).

use crate::history::History;
use rsl_core::paxos::{Ballot, State};
use std::collections::HashMap;

pub const NAME: &str = "one_primary_per_ballot";

pub fn check(history: &History) -> Result<(), String> {
    let mut primary_of: HashMap<&Ballot, usize> = HashMap::new();
    for (i, incarnation) in history.incarnations.iter().enumerate() {
        let led = incarnation.observations.iter().filter(|o| o.pointers.state == State::Primary);
        for observation in led {
            let ballot = &observation.pointers.max_ballot;
            let first = *primary_of.entry(ballot).or_insert(i);
            if first != i {
                return Err(format!(
                    "incarnations {first} (node {}) and {i} (node {}) were both primary under ballot {ballot}",
                    history.incarnations[first].node, incarnation.node
                ));
            }
        }
    }
    Ok(())
}
