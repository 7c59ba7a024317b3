//! Where peers are reached: the application's `resolve_node` (legacy `ResolveNode`), asked
//! for the peers a replica starts with and those of every configuration it installs (on
//! the engine), and again for every known peer each `resolve_interval_ms` on a thread of
//! its own, as legacy's IPLookup thread does.

use super::engine::Event;
use super::state_machine::StateMachine;
use crate::paxos::{Member, MemberId};
use crate::transport::inbox;
use parking_lot::RwLock;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where to reach `member`: as the application's `resolve_node` says, else as configured
/// (and this replica itself always as configured: it listens there).
pub(super) fn reachable<S: StateMachine>(app: &S, me: &MemberId, member: &Member) -> Member {
    let mut resolved = member.clone();
    if member.id == *me {
        return resolved;
    }
    match app.resolve_node(&mut resolved) {
        true if resolved.id == member.id && resolved.rsl_port != 0 && resolved.learn_port != 0 => resolved,
        true => {
            tracing::warn!("resolve_node changed the id or zeroed a port of {}: ignored", member.id);
            member.clone()
        }
        false => {
            tracing::warn!("resolve_node could not resolve {}: its configured address is used", member.id);
            member.clone()
        }
    }
}

/// The periodic lookup's schedule.
pub(super) struct Resolving {
    every: Duration,
    next: Instant,
    /// A lookup thread is out (the next starts after it answers, as [`Event::Resolved`]).
    running: bool,
}

impl Resolving {
    pub fn every(every: Duration) -> Self {
        Self { every, next: Instant::now() + every, running: false }
    }

    /// How long the engine may sleep before the next lookup is due.
    pub fn until_due(&self) -> Duration {
        self.next.saturating_duration_since(Instant::now())
    }

    /// If a lookup is due and none is out, asks `resolve_node` where each of `peers` is on
    /// a thread of its own (it may block: a name lookup, say); the answer comes on `reply`.
    pub fn start_if_due<S: StateMachine>(
        &mut self,
        app: &Arc<RwLock<S>>,
        me: &MemberId,
        peers: &[Member],
        reply: &inbox::Sender<Event<S::Cookie>>,
    ) {
        if self.running || Instant::now() < self.next {
            return;
        }
        let (app, me, peers, reply) = (Arc::clone(app), me.clone(), peers.to_vec(), reply.clone());
        let spawned = std::thread::Builder::new().name("rsl-resolve".to_owned()).spawn(move || {
            let resolved = peers.iter().map(|m| reachable(&*app.read(), &me, m)).collect();
            let _ = reply.send(Event::Resolved(resolved));
        });
        self.next = Instant::now() + self.every;
        match spawned {
            Ok(_) => self.running = true,
            Err(e) => tracing::warn!("cannot start a thread to resolve the peers: {e}; trying again later"),
        }
    }

    /// The lookup answered.
    pub fn answered(&mut self) {
        self.running = false;
    }
}
