//! Validity: only requests a client submitted are executed. Every executed request's
//! bytes must decode to an id the clients registered before submitting it.

use crate::history::History;
use crate::workload::request_id;

pub const NAME: &str = "validity";

pub fn check(history: &History) -> Result<(), String> {
    for (i, incarnation) in history.incarnations.iter().enumerate() {
        for vote in &incarnation.executed {
            for request in vote.requests() {
                match request_id(request) {
                    Some(id) if history.submitted.contains(&id) => {}
                    Some(id) => {
                        return Err(format!(
                            "incarnation {i} (node {}) executed request {id} in decree {}, which no client submitted",
                            incarnation.node, vote.decree
                        ))
                    }
                    None => {
                        return Err(format!(
                            "incarnation {i} (node {}) executed bytes no client produced in decree {}",
                            incarnation.node, vote.decree
                        ))
                    }
                }
            }
        }
    }
    Ok(())
}
