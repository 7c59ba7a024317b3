//! The fault mix of one seed ("swarm testing"): each kind of fault is switched on or off
//! by the seed, and so is its strength. During the safety phase the simulator asks
//! [`Faults::pick`] for the next fault every `interval_us`; the liveness phase turns them
//! all off.

use rsl_core::paxos::Rng;

#[derive(Clone, Debug)]
pub struct Faults {
    /// Percent of messages lost.
    pub drop_pct: u64,
    /// Percent of messages delivered twice.
    pub duplicate_pct: u64,
    /// Network latency range; a wide range reorders messages.
    pub delay_min_us: u64,
    pub delay_max_us: u64,
    /// Cut the cluster in two groups.
    pub partitions: bool,
    /// Cut single links in one direction only.
    pub one_way_links: bool,
    /// Crash nodes (losing writes not yet durable) and restart them later.
    pub crashes: bool,
    /// Longest time a persist takes.
    pub disk_latency_max_us: u64,
    /// Let a node's clock skip forward.
    pub clock_jumps: bool,
    /// Have the primary relinquish its role.
    pub relinquish: bool,
    /// Have the primary change the replica set (any non-empty subset of the nodes).
    pub reconfigure: bool,
    /// Percent of `CanBecomePrimary` questions the application answers no.
    pub veto_pct: u64,
    /// Virtual time between two faults.
    pub interval_us: u64,
    /// Longest time a crashed node stays down.
    pub downtime_max_us: u64,
}

/// One fault to apply now.
#[derive(Debug)]
pub enum Fault {
    /// Replace the cut links by these directed ones (`(from, to)`); empty heals.
    Cut(Vec<(usize, usize)>),
    Crash {
        node: usize,
        downtime_us: u64,
    },
    ClockJump {
        node: usize,
        jump_us: u64,
    },
    /// The primary, if there is one, relinquishes or submits its last decree.
    Relinquish,
    /// The primary, if there is one, is asked to change the replica set to these nodes.
    Reconfigure(Vec<usize>),
}

impl Faults {
    pub fn from_rng(rng: &mut Rng, election_delay_us: u64) -> Self {
        let mut on = |pct: u64| rng.below(100) < pct;
        let (drop, duplicate, partitions, one_way_links, crashes, slow_disk, clock_jumps, reorder) =
            (on(50), on(30), on(50), on(30), on(50), on(50), on(30), on(50));
        let (relinquish, veto) = (on(20), on(20));
        let delay_min_us = 100 + rng.below(2_000);
        let spread = rng.below(if reorder { 20_000 } else { 500 });
        Self {
            drop_pct: if drop { 1 + rng.below(30) } else { 0 },
            duplicate_pct: if duplicate { 1 + rng.below(20) } else { 0 },
            delay_min_us,
            delay_max_us: delay_min_us + spread,
            partitions,
            one_way_links,
            crashes,
            disk_latency_max_us: if slow_disk { 1 + rng.below(50_000) } else { 100 },
            clock_jumps,
            relinquish,
            reconfigure: false, // drawn by the caller, after every older draw
            veto_pct: if veto { 1 + rng.below(50) } else { 0 },
            interval_us: election_delay_us / 4 + rng.below(2 * election_delay_us),
            downtime_max_us: 3 * election_delay_us,
        }
    }

    /// The next fault, among the kinds this seed switched on; `None` when none is.
    pub fn pick(&self, rng: &mut Rng, nodes: usize) -> Option<Fault> {
        let kinds: Vec<u8> = [
            self.partitions,
            self.one_way_links,
            self.crashes,
            self.clock_jumps,
            self.relinquish,
            self.reconfigure,
        ]
        .iter()
        .zip(0u8..)
        .filter(|(on, _)| **on)
        .map(|(_, kind)| kind)
        .collect();
        let kind = *kinds.get(rng.below(kinds.len() as u64) as usize)?;
        let node = rng.below(nodes as u64) as usize;
        Some(match kind {
            // A third of partition faults heal instead.
            0 if rng.below(3) == 0 => Fault::Cut(Vec::new()),
            0 => {
                let side: Vec<bool> = (0..nodes).map(|_| rng.below(2) == 0).collect();
                let cut = (0..nodes)
                    .flat_map(|a| (0..nodes).map(move |b| (a, b)))
                    .filter(|&(a, b)| side[a] != side[b])
                    .collect();
                Fault::Cut(cut)
            }
            1 => {
                let to = rng.below(nodes as u64) as usize;
                Fault::Cut(if to == node { Vec::new() } else { vec![(node, to)] })
            }
            2 => Fault::Crash { node, downtime_us: 1 + rng.below(self.downtime_max_us) },
            3 => Fault::ClockJump { node, jump_us: 1 + rng.below(self.downtime_max_us) },
            4 => Fault::Relinquish,
            _ => {
                // Shrink to one, grow to all, or anything between; never empty.
                let mut members: Vec<usize> = (0..nodes).filter(|_| rng.below(2) == 0).collect();
                if members.is_empty() {
                    members.push(node);
                }
                Fault::Reconfigure(members)
            }
        })
    }

    /// A latency within the configured range.
    pub fn delay(&self, rng: &mut Rng) -> u64 {
        self.delay_min_us + rng.below(self.delay_max_us - self.delay_min_us + 1)
    }
}
