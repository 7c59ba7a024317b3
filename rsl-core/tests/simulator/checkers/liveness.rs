//! Liveness: once the faults stop and a quorum is healed, within the liveness phase (the
//! bound) a primary exists, every liveness request it accepted is acknowledged, enough of
//! them are, and every live member of the newest configuration executed up to the last
//! acknowledged one. Needs a run that reached its end.

use crate::history::History;
use rsl_core::paxos::Decree;
use std::collections::HashMap;

pub const NAME: &str = "liveness";

pub fn check(history: &History) -> Result<(), String> {
    if !history.completed {
        return Ok(());
    }
    if !history.final_nodes.iter().any(|n| n.up && n.primary) {
        return Err("no primary at the end of the liveness phase".into());
    }
    let acked: HashMap<u64, Decree> = history.acks.iter().map(|a| (a.id, a.decree)).collect();
    let mut acked_count = 0;
    let mut last = Decree(0);
    for id in &history.liveness_requests {
        match acked.get(id) {
            Some(decree) => {
                acked_count += 1;
                last = last.max(*decree);
            }
            None if history.aborted.contains(id) => {}
            None => return Err(format!("liveness request {id} neither acknowledged nor aborted")),
        }
    }
    if acked_count < history.liveness_target {
        return Err(format!(
            "{acked_count} liveness requests acknowledged, {} demanded",
            history.liveness_target
        ));
    }
    for (node, n) in history.final_nodes.iter().enumerate().filter(|(_, n)| n.up && n.member) {
        if n.executed < last {
            return Err(format!("node {node} executed {} < last acknowledged decree {last}", n.executed));
        }
    }
    Ok(())
}
