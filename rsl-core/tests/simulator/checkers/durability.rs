//! Durability: a request acknowledged to its client (executed with its cookie on the
//! primary) is never lost — it sits at the same decree in the final converged log.
//! Needs a run that reached its end.

use crate::history::History;
use crate::workload::request_id;

pub const NAME: &str = "durability";

pub fn check(history: &History) -> Result<(), String> {
    if !history.completed {
        return Ok(());
    }
    let log = history.final_log();
    for ack in &history.acks {
        let present = log
            .get(ack.decree.0 as usize - 1)
            .is_some_and(|vote| vote.requests().iter().any(|r| request_id(r) == Some(ack.id)));
        if !present {
            return Err(format!(
                "request {} acknowledged at decree {} is missing from the final log ({} decrees)",
                ack.id,
                ack.decree,
                log.len()
            ));
        }
    }
    Ok(())
}
