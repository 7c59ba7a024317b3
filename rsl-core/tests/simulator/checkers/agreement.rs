//! Agreement: at most one value is chosen per decree. Every value any replica
//! incarnation executed for a decree must have the same digest.

use crate::history::History;
use rsl_core::paxos::Decree;
use std::collections::HashMap;

pub const NAME: &str = "agreement";

pub fn check(history: &History) -> Result<(), String> {
    let mut chosen: HashMap<Decree, (u64, usize)> = HashMap::new();
    for (i, incarnation) in history.incarnations.iter().enumerate() {
        for vote in &incarnation.executed {
            let digest = vote.value_digest();
            let (first_digest, first) = *chosen.entry(vote.decree).or_insert((digest, i));
            if first_digest != digest {
                return Err(format!(
                    "decree {} executed with two values: incarnation {first} (node {}) and {i} (node {})",
                    vote.decree, history.incarnations[first].node, incarnation.node
                ));
            }
        }
    }
    Ok(())
}
