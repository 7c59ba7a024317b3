//! One checker per property, each in its own file named after it. A checker reads the
//! [`History`] of a run and returns the first violation it finds. Errors the core itself
//! raised (a refused input from a correct driver, a panic, a timer that never advances)
//! are violations too, reported as [`CORE`].

pub mod agreement;
pub mod configurations;
pub mod durability;
pub mod executed_prefix;
pub mod liveness;
pub mod log_pointers;
pub mod no_duplicate_execution;
pub mod one_primary_per_ballot;
pub mod validity;

use crate::history::History;
use std::fmt;

/// The core broke its contract with a correct driver.
pub const CORE: &str = "core_contract";

#[derive(Debug)]
pub struct Violation {
    pub checker: &'static str,
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.checker, self.detail)
    }
}

type Checker = fn(&History) -> Result<(), String>;

const CHECKERS: [(&str, Checker); 9] = [
    (agreement::NAME, agreement::check),
    (executed_prefix::NAME, executed_prefix::check),
    (validity::NAME, validity::check),
    (durability::NAME, durability::check),
    (no_duplicate_execution::NAME, no_duplicate_execution::check),
    (one_primary_per_ballot::NAME, one_primary_per_ballot::check),
    (log_pointers::NAME, log_pointers::check),
    (liveness::NAME, liveness::check),
    (configurations::NAME, configurations::check),
];

/// Every violation of the run: the core's own errors, then one per failing checker.
pub fn check(history: &History) -> Vec<Violation> {
    let core = history.core_errors.iter().map(|e| Violation { checker: CORE, detail: e.clone() });
    let checkers = CHECKERS
        .iter()
        .filter_map(|(checker, check)| check(history).err().map(|detail| Violation { checker, detail }));
    core.chain(checkers).collect()
}
