//! Fast-read workers (`m_numReaderThreads`): each takes reads whose decree has executed
//! and runs `execute_fast_read_request` under the shared callback lock, so reads run in
//! parallel with each other and never with an Exclusive callback. Reads still queued when
//! the replica shuts down are aborted with `ShuttingDown`.

use super::state_machine::{ResponseCode, StateMachine};
use super::{NodeError, Published};
use crate::paxos::Decree;
use crossbeam_channel::Receiver;
use parking_lot::RwLock;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// A fast read: run once the replica executed `max_seen`, or abort at `deadline`.
pub(super) struct FastRead<C> {
    pub request: Vec<u8>,
    pub cookie: C,
    pub max_seen: Decree,
    pub deadline: Instant,
}

pub(super) fn start<S: StateMachine>(
    count: usize,
    app: &Arc<RwLock<S>>,
    reads: &Receiver<FastRead<S::Cookie>>,
    published: &Arc<Published>,
) -> Result<Vec<JoinHandle<()>>, NodeError> {
    (0..count)
        .map(|i| {
            let (app, reads, published) = (Arc::clone(app), reads.clone(), Arc::clone(published));
            std::thread::Builder::new()
                .name(format!("rsl-fast-read-{i}"))
                .spawn(move || {
                    for read in reads {
                        let app = app.read();
                        if published.shutting_down.load(Ordering::Acquire) {
                            app.abort_request(ResponseCode::ShuttingDown, read.cookie);
                        } else {
                            app.execute_fast_read_request(&read.request, read.cookie);
                        }
                    }
                })
                .map_err(NodeError::Thread)
        })
        .collect()
}
