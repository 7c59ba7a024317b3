//! No duplicate execution: no replica incarnation executes a request id twice, and no id
//! appears in two decrees of the chosen sequence (clients never resubmit an id).

use crate::history::History;
use crate::workload::request_id;
use rsl_core::paxos::Decree;
use std::collections::{BTreeMap, HashMap, HashSet};

pub const NAME: &str = "no_duplicate_execution";

pub fn check(history: &History) -> Result<(), String> {
    let mut chosen = BTreeMap::new();
    for (i, incarnation) in history.incarnations.iter().enumerate() {
        let mut seen = HashSet::new();
        for vote in &incarnation.executed {
            chosen.entry(vote.decree).or_insert(vote);
            for id in vote.requests().iter().filter_map(|r| request_id(r)) {
                if !seen.insert(id) {
                    return Err(format!(
                        "incarnation {i} (node {}) executed request {id} twice",
                        incarnation.node
                    ));
                }
            }
        }
    }
    let mut decree_of: HashMap<u64, Decree> = HashMap::new();
    for (decree, vote) in chosen {
        for id in vote.requests().iter().filter_map(|r| request_id(r)) {
            if let Some(first) = decree_of.insert(id, decree) {
                return Err(format!("request {id} chosen in decrees {first} and {decree}"));
            }
        }
    }
    Ok(())
}
