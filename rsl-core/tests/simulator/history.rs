//! What the checkers observe: which request ids clients submitted, what every replica
//! incarnation executed and in which order, the log pointers it showed after every step,
//! which requests were acknowledged, and the cluster's state when the run ended. The
//! simulator only appends to it; the checkers only read it.

use rsl_core::paxos::{Configuration, Decree, MemberId, Pointers, Record, Vote, VoteBody};
use std::collections::HashSet;
use std::sync::Arc;

/// One life of one node, from start (or restart) to crash or the end of the run.
pub struct Incarnation {
    pub node: usize,
    /// The decrees the application executed, in execution order.
    pub executed: Vec<Arc<Vote>>,
    /// The pointers after every step that changed them.
    pub observations: Vec<Observation>,
}

pub struct Observation {
    pub pointers: Pointers,
    /// The last decree the application executed when the pointers were taken.
    pub executed_by_app: Decree,
}

/// A request executed with its cookie on the primary: the client was told it committed.
pub struct Ack {
    pub id: u64,
    pub decree: Decree,
}

/// A node when the run ended.
pub struct FinalNode {
    pub up: bool,
    pub primary: bool,
    /// A member of the newest configuration any node up at the end knows.
    pub member: bool,
    pub executed: Decree,
    /// Index of its last incarnation.
    pub incarnation: usize,
}

#[derive(Default)]
pub struct History {
    pub submitted: HashSet<u64>,
    pub incarnations: Vec<Incarnation>,
    pub acks: Vec<Ack>,
    pub aborted: HashSet<u64>,
    /// Requests submitted after the heal, and how many must be acknowledged.
    pub liveness_requests: Vec<u64>,
    pub liveness_target: usize,
    pub final_nodes: Vec<FinalNode>,
    /// The configuration the run started with.
    pub first_configuration: Option<Configuration>,
    /// Each node's durable journal at the end (journals are never truncated here).
    pub journals: Vec<(MemberId, Vec<Record>)>,
    /// `Err`s from `step`, panics, and timers that never advance.
    pub core_errors: Vec<String>,
    /// The run reached its end (no panic stopped it).
    pub completed: bool,
    /// Replicas that joined a later configuration by copying a checkpoint.
    pub joins: usize,
}

impl History {
    /// One line on what the run did, to see that a seed exercised something.
    pub fn summary(&self) -> String {
        let primaries: std::collections::HashSet<_> = self
            .incarnations
            .iter()
            .flat_map(|i| &i.observations)
            .filter(|o| o.pointers.state == rsl_core::paxos::State::Primary)
            .map(|o| &o.pointers.max_ballot)
            .collect();
        let changes =
            self.final_log().iter().filter(|v| matches!(v.body, VoteBody::Reconfiguration(_))).count();
        format!(
            "{} decrees chosen, {changes} replica-set changes, {} requests acknowledged ({} after the heal), {} incarnations, {} primary ballots, {} joins by checkpoint copy",
            self.final_log().len(),
            self.acks.len(),
            self.liveness_requests.len(),
            self.incarnations.len(),
            primaries.len(),
            self.joins
        )
    }

    /// The final converged log: the longest executed sequence among nodes up at the end.
    pub fn final_log(&self) -> &[Arc<Vote>] {
        self.final_nodes
            .iter()
            .filter(|n| n.up)
            .map(|n| self.incarnations[n.incarnation].executed.as_slice())
            .max_by_key(|log| log.len())
            .unwrap_or_default()
    }
}
