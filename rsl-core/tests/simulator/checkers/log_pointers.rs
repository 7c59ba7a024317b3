//! Log pointers, per replica incarnation: `executed ≤ passed ≤ max_accepted`; `passed`
//! and `max_ballot` never decrease; and `executed` is exactly the last decree the
//! application executed.

use crate::history::History;

pub const NAME: &str = "log_pointers";

pub fn check(history: &History) -> Result<(), String> {
    for (i, incarnation) in history.incarnations.iter().enumerate() {
        let at = |k: usize| format!("incarnation {i} (node {}), observation {k}", incarnation.node);
        let mut previous = None;
        for (k, o) in incarnation.observations.iter().enumerate() {
            let p = &o.pointers;
            if p.executed > p.passed {
                return Err(format!("{}: executed {} > passed {}", at(k), p.executed, p.passed));
            }
            if p.passed > p.max_accepted {
                return Err(format!("{}: passed {} > max accepted {}", at(k), p.passed, p.max_accepted));
            }
            if p.executed != o.executed_by_app {
                return Err(format!(
                    "{}: executed {} but the application executed {}",
                    at(k),
                    p.executed,
                    o.executed_by_app
                ));
            }
            if let Some(before) = previous.replace(p) {
                if p.passed < before.passed {
                    return Err(format!(
                        "{}: passed went back from {} to {}",
                        at(k),
                        before.passed,
                        p.passed
                    ));
                }
                if p.max_ballot < before.max_ballot {
                    return Err(format!(
                        "{}: max ballot went back from {} to {}",
                        at(k),
                        before.max_ballot,
                        p.max_ballot
                    ));
                }
            }
        }
    }
    Ok(())
}
