//! The execute thread: the only thread that calls the application's Exclusive callbacks.
//! The engine queues every application-facing action on one channel in the order the core
//! emitted it, so the legacy orderings hold by construction: chosen decrees execute before
//! the aborts of a lost primacy, and those come before `NotifyStatus(false)`.
//!
//! It also holds the fast reads that wait for a decree (released when it executes, aborted
//! as stale at their deadline) and saves checkpoints: after a decree whose execution asked
//! for one, it downgrades the callback lock to shared, has the engine describe the
//! protocol state for the header, streams the application's state into `Temp/`, installs
//! the file and keeps the newest `m_maxCheckpoints`.

use super::engine::Event;
use super::readers::FastRead;
use super::state_machine::{ResponseCode, StateMachine};
use super::Published;
use crate::paxos::{Decree, Rng, Vote, VoteBody};
use crate::storage::checkpoint::{list_checkpoints, retain_newest, CheckpointHeader, CheckpointWriter};
use crate::storage::remove_covered_logs;
use crate::transport::inbox;
use crossbeam_channel::{bounded, RecvTimeoutError, Sender};
use parking_lot::{RwLock, RwLockWriteGuard};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Application-facing work, in the order the engine queued it.
pub(super) enum Callback<C> {
    Execute {
        vote: Arc<Vote>,
        cookies: Option<Vec<C>>,
    },
    Abort {
        cookie: C,
        status: ResponseCode,
    },
    AbortChange {
        cookie: C,
        status: ResponseCode,
    },
    NotifyStatus(bool),
    /// A copy of a member's checkpoint ended (its decree and path, if any): asked by the
    /// application (`cookie`), or the primary's own when its log filled.
    StateCopied {
        copied: Option<(Decree, PathBuf)>,
        cookie: Option<C>,
    },
    /// The bootstrap set is persisted: `notify_configuration_changed(None)`.
    Bootstrapped,
    PrimaryRecovered,
    /// Ask `can_become_primary`; the answer goes back as [`Event::CanBecomePrimary`].
    CanBecomePrimary,
    /// A fast read for a decree not executed yet.
    Wait(FastRead<C>),
    /// Told once everything queued before it has run (start-up replay).
    Ready(Sender<()>),
    /// A log file filled: checkpoint after the next decree.
    CheckpointDue,
    /// The last callback: abort waiting reads and call `shut_down`.
    ShutDown,
}

pub(super) struct Executor<S: StateMachine> {
    pub app: Arc<RwLock<S>>,
    pub callbacks: inbox::Receiver<Callback<S::Cookie>>,
    pub engine: inbox::Sender<Event<S::Cookie>>,
    pub readers: Sender<FastRead<S::Cookie>>,
    pub published: Arc<Published>,
    /// Where checkpoints go, and how many to keep.
    pub data_dir: PathBuf,
    pub max_checkpoints: NonZeroUsize,
    pub waiting: Vec<FastRead<S::Cookie>>,
    /// Time-based checkpoints (`m_maxCheckpointIntervalSec`), taken by secondaries: the
    /// interval, when the next one is due, and the jitter's randomness.
    pub checkpoint_interval: Option<Duration>,
    pub next_checkpoint: Option<Instant>,
    pub rng: Rng,
    /// A log file filled since the last checkpoint.
    pub rotated: bool,
    /// Logs kept after a checkpoint (`m_maxLogs`).
    pub max_logs: usize,
}

impl<S: StateMachine> Executor<S> {
    pub fn run(mut self) {
        let (named, spin) = (self.callbacks.wake_me(), inbox::spins());
        debug_assert!(named, "the channel is the execute thread's alone");
        loop {
            let deadline = self.waiting.iter().map(|r| r.deadline).min();
            let mut next = match self.callbacks.park_recv(deadline, spin) {
                Ok(callback) => Some(callback),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            while let Some(callback) = next {
                if !self.handle(callback) {
                    return;
                }
                next = self.callbacks.try_recv().ok();
            }
            self.release_reads();
        }
    }

    fn executed(&self) -> Decree {
        Decree(self.published.executed.load(Ordering::Acquire))
    }

    /// Performs one callback; false after the last one.
    fn handle(&mut self, callback: Callback<S::Cookie>) -> bool {
        match callback {
            Callback::Execute { vote, cookies } => self.execute(&vote, cookies),
            Callback::Abort { cookie, status } => self.app.read().abort_request(status, cookie),
            Callback::AbortChange { cookie, status } => {
                self.app.write().abort_change_configuration(status, cookie)
            }
            Callback::NotifyStatus(primary) => self.app.write().notify_status(primary),
            Callback::PrimaryRecovered => self.app.write().notify_primary_recovered(),
            Callback::Bootstrapped => self.app.write().notify_configuration_changed(None),
            Callback::StateCopied { copied, cookie } => {
                let (decree, path) = copied.map_or((Decree(0), None), |(d, p)| (d, Some(p)));
                self.published.checkpointed.fetch_max(decree.0, Ordering::AcqRel);
                let automatic = cookie.is_none();
                self.app.read().state_copied(decree, path.as_deref(), cookie);
                if automatic {
                    self.clean_up(); // the copy covers the full logs
                }
            }
            Callback::CanBecomePrimary => {
                let answer = self.app.read().can_become_primary();
                let _ = self.engine.send(Event::CanBecomePrimary(answer));
            }
            Callback::Wait(read) => self.waiting.push(read),
            Callback::Ready(ready) => drop(ready.send(())),
            Callback::CheckpointDue => self.rotated = true,
            Callback::ShutDown => {
                let app = self.app.read();
                for read in self.waiting.drain(..) {
                    app.abort_request(ResponseCode::ShuttingDown, read.cookie);
                }
                drop(app);
                self.app.write().shut_down(ResponseCode::ShuttingDown);
                return false;
            }
        }
        true
    }

    /// Executes one chosen decree under the exclusive lock, then saves a checkpoint if the
    /// application asked for one.
    fn execute(&mut self, vote: &Vote, cookies: Option<Vec<S::Cookie>>) {
        let mut app = self.app.write();
        self.published.executed.store(vote.decree.0, Ordering::Release);
        let asked = execute_decree(&mut *app, vote, cookies);
        self.published.decrees_executed.fetch_add(1, Ordering::Relaxed);
        let due = (self.rotated || self.next_checkpoint.is_some_and(|t| Instant::now() >= t))
            && !self.published.primary.load(Ordering::Acquire);
        if (asked || due) && self.published.allow_save_state.load(Ordering::Acquire) {
            self.save_checkpoint(app, vote.decree);
            self.schedule_checkpoint(20);
            self.rotated = false;
        }
    }

    /// Schedules the next time-based checkpoint one interval ± `jitter_pct` from now.
    pub fn schedule_checkpoint(&mut self, jitter_pct: u64) {
        let Some(interval) = self.checkpoint_interval else { return };
        let spread = interval.as_micros() as u64 * jitter_pct / 100;
        let offset = self.rng.below(2 * spread + 1);
        let delay = (interval + Duration::from_micros(offset)).saturating_sub(Duration::from_micros(spread));
        self.next_checkpoint = Instant::now().checked_add(delay);
    }

    /// Writes `<decree>.codex` under the shared lock. A failure is logged and costs only the
    /// checkpoint: the journal still holds everything.
    fn save_checkpoint(&self, app: RwLockWriteGuard<'_, S>, decree: Decree) {
        let app = RwLockWriteGuard::downgrade(app);
        self.published.saving_checkpoint.store(true, Ordering::Release);
        let (reply, header) = bounded(1);
        let header: Option<CheckpointHeader> = self
            .engine
            .send(Event::CheckpointHeader { decree, reply })
            .ok()
            .and_then(|()| header.recv().ok());
        let saved = header.ok_or_else(|| "the engine stopped".to_owned()).and_then(|header| {
            let mut writer = CheckpointWriter::create(&self.data_dir, header).map_err(|e| e.to_string())?;
            match app.try_save_state(&mut writer) {
                Ok(true) => writer.finish().map(Some).map_err(|e| e.to_string()),
                Ok(false) => Ok(None),
                Err(e) => Err(format!("the application's save_state failed: {e}")),
            }
        });
        self.published.saving_checkpoint.store(false, Ordering::Release);
        match saved {
            Ok(Some(path)) => {
                self.published.checkpointed.fetch_max(decree.0, Ordering::AcqRel);
                app.state_saved(decree, &path);
                self.clean_up();
            }
            // TrySaveState declined: no automatic checkpoints until allowed again.
            Ok(None) => self.published.allow_save_state.store(false, Ordering::Release),
            Err(e) => tracing::error!("checkpoint {decree} not saved: {e}"),
        }
    }

    /// Keeps the newest `m_maxCheckpoints` checkpoints, then deletes the logs the oldest
    /// of them covers, keeping at least `m_maxLogs`.
    fn clean_up(&self) {
        let cleaned = retain_newest(&self.data_dir, self.max_checkpoints)
            .map_err(|e| e.to_string())
            .and_then(|_| list_checkpoints(&self.data_dir).map_err(|e| e.to_string()))
            .and_then(|kept| match kept.last() {
                Some((oldest, _)) => {
                    remove_covered_logs(&self.data_dir, oldest.0, self.max_logs).map_err(|e| e.to_string())
                }
                None => Ok((Vec::new(), None)),
            });
        match cleaned {
            Ok((removed, Some(first_kept))) => {
                tracing::info!("removed {} covered log files", removed.len());
                self.published.first_logged.fetch_max(first_kept, Ordering::AcqRel);
            }
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot remove old checkpoints or logs: {e}"),
        }
    }

    /// Hands waiting reads whose decree executed to the readers; aborts expired ones.
    fn release_reads(&mut self) {
        if self.waiting.is_empty() {
            return;
        }
        let executed = self.executed();
        let now = Instant::now();
        let (ready, rest): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.waiting).into_iter().partition(|r| r.max_seen <= executed);
        for read in ready {
            let _ = self.readers.send(read);
        }
        let (expired, rest): (Vec<_>, Vec<_>) = rest.into_iter().partition(|r| r.deadline <= now);
        self.waiting = rest;
        if !expired.is_empty() {
            let app = self.app.read();
            for read in expired {
                app.abort_request(ResponseCode::FastReadStale, read.cookie);
            }
        }
    }
}

/// Executes one decree's requests between `before`/`after` (not for an empty decree), or
/// announces the replica-set change it decided; returns whether the application asked for
/// a checkpoint.
pub(super) fn execute_decree<S: StateMachine>(
    app: &mut S,
    vote: &Vote,
    cookies: Option<Vec<S::Cookie>>,
) -> bool {
    if let VoteBody::Reconfiguration(_) = vote.body {
        app.notify_configuration_changed(cookies.and_then(|c| c.into_iter().next()));
        return false;
    }
    let mut save = false;
    if !vote.requests().is_empty() {
        app.before_execute_replicated_requests();
        let mut cookies = cookies.map(Vec::into_iter);
        for request in vote.requests() {
            let cookie = cookies.as_mut().and_then(Iterator::next);
            app.execute_replicated_request(request, cookie, &mut save);
        }
        app.after_execute_replicated_requests();
    }
    save
}
