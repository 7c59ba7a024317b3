//! A planted bug per checker: each test plants a bug in the driver (never in the core),
//! runs seeds until the checker under test reports it (a bounded number of seeds), and
//! checks that the same seed without the bug does not trip that checker — so the checker
//! reacts to the bug, not to the seed.

use crate::checkers::{
    agreement, configurations, durability, executed_prefix, liveness, log_pointers, no_duplicate_execution,
    one_primary_per_ballot, validity,
};
use crate::sim::{Bugs, Params};

/// Runs seeds `0..tries`, with `shape` applied and `bugs` planted, until `checker` fires.
fn assert_fires(checker: &str, tries: u64, bugs: Bugs, shape: impl Fn(&mut Params)) {
    for seed in 0..tries {
        let mut params = Params::from_seed(seed);
        shape(&mut params);
        let clean = params.clone();
        params.bugs = bugs;
        if crate::run(params, false).iter().any(|v| v.checker == checker) {
            let without_bug = crate::run(clean, false);
            assert!(
                without_bug.iter().all(|v| v.checker != checker),
                "seed {seed} trips {checker} even without the bug: {without_bug:?}"
            );
            return;
        }
    }
    panic!("{checker} missed the planted bug in {tries} seeds");
}

fn three_nodes(params: &mut Params) {
    params.nodes = 3;
    params.universe = params.universe.max(3);
    params.keep_down = 0;
}

#[test]
fn agreement_catches_a_network_that_alters_votes() {
    let bugs = Bugs { alter_votes: true, ..Bugs::default() };
    assert_fires(agreement::NAME, 20, bugs, three_nodes);
}

#[test]
fn executed_prefix_catches_an_executor_that_skips_a_decree() {
    let bugs = Bugs { skip_execution: true, ..Bugs::default() };
    assert_fires(executed_prefix::NAME, 5, bugs, |_| {});
}

#[test]
fn no_duplicate_execution_catches_an_executor_that_repeats_a_decree() {
    let bugs = Bugs { repeat_execution: true, ..Bugs::default() };
    assert_fires(no_duplicate_execution::NAME, 5, bugs, |_| {});
}

#[test]
fn validity_catches_a_client_that_sneaks_in_a_request() {
    let bugs = Bugs { unregistered_requests: true, ..Bugs::default() };
    assert_fires(validity::NAME, 5, bugs, |_| {});
}

#[test]
fn durability_catches_a_disk_that_drops_acknowledged_writes() {
    let bugs = Bugs { lossy_disk: true, ..Bugs::default() };
    assert_fires(durability::NAME, 100, bugs, |params| {
        three_nodes(params);
        params.faults.crashes = true;
    });
}

#[test]
fn one_primary_per_ballot_catches_twin_member_ids() {
    let bugs = Bugs { twin_member_ids: true, ..Bugs::default() };
    assert_fires(one_primary_per_ballot::NAME, 100, bugs, three_nodes);
}

#[test]
fn log_pointers_catches_pointers_going_back() {
    let bugs = Bugs { pointers_go_back: true, ..Bugs::default() };
    assert_fires(log_pointers::NAME, 5, bugs, |_| {});
}

#[test]
fn liveness_catches_a_partition_never_healed() {
    let bugs = Bugs { permanent_partition: true, ..Bugs::default() };
    assert_fires(liveness::NAME, 5, bugs, three_nodes);
}

#[test]
fn configurations_catches_forged_acknowledgements() {
    let bugs = Bugs { forged_acks: true, ..Bugs::default() };
    assert_fires(configurations::NAME, 50, bugs, |params| {
        params.nodes = 5;
        params.universe = 5;
        params.keep_down = 0;
        params.faults.drop_pct = params.faults.drop_pct.max(20);
    });
}
