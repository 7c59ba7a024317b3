//! Executed prefixes: every replica incarnation executes decrees 1, 2, 3, … in order,
//! without a gap or a repeat (no checkpoints are taken yet, so each starts at 1), and any
//! two incarnations executed the same values up to the shorter one's end.

use crate::history::History;
use rsl_core::paxos::Decree;

pub const NAME: &str = "executed_prefix";

pub fn check(history: &History) -> Result<(), String> {
    let Some(longest) = history.incarnations.iter().max_by_key(|i| i.executed.len()) else { return Ok(()) };
    for (i, incarnation) in history.incarnations.iter().enumerate() {
        for (k, (vote, reference)) in incarnation.executed.iter().zip(&longest.executed).enumerate() {
            let expected = Decree(k as u64 + 1);
            if vote.decree != expected {
                return Err(format!(
                    "incarnation {i} (node {}) executed decree {} where {expected} was next",
                    incarnation.node, vote.decree
                ));
            }
            if vote.value_digest() != reference.value_digest() {
                return Err(format!(
                    "incarnation {i} (node {}) diverges from the longest executed log at decree {expected}",
                    incarnation.node
                ));
            }
        }
    }
    Ok(())
}
