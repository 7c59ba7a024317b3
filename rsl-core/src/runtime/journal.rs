//! The journal writer thread: it owns the journal (file or nvm, behind [`Durable`]). The engine hands over each
//! batch's records with the batch's last token; the writer appends every batch queued
//! since its last sync, syncs once (group commit: one `fdatasync` however many batches
//! and records), then reports the newest token as `Persisted`. Tokens are cumulative, so
//! one completion covers every record before it. After a failure it reports the error
//! and ends: nothing after the last completion is known durable. It also reports each
//! switch to a new log file (legacy answers it with a checkpoint).

use super::engine::Event;
use super::{NodeError, Published};
use crate::paxos::{MemberId, Record, Token};
use crate::storage::{AppendError, FileJournal, Journal, NvmJournal};
use crossbeam_channel::{unbounded, Receiver, Sender};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

/// What the writer needs of a journal, whichever backend.
pub(super) trait Durable: Send {
    fn append(&mut self, record: &Record) -> Result<usize, AppendError>;
    fn sync(&mut self) -> std::io::Result<()>;
    /// The first decree of the file being appended to; it changes at each new log file.
    fn current_log(&self) -> u64;
}

impl Durable for FileJournal {
    fn append(&mut self, record: &Record) -> Result<usize, AppendError> {
        Journal::append(self, record)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Journal::sync(self)
    }

    fn current_log(&self) -> u64 {
        FileJournal::current_log(self)
    }
}

/// One file that never rotates.
impl Durable for NvmJournal {
    fn append(&mut self, record: &Record) -> Result<usize, AppendError> {
        Journal::append(self, record)
    }

    fn sync(&mut self) -> std::io::Result<()> {
        Journal::sync(self)
    }

    fn current_log(&self) -> u64 {
        0
    }
}

/// One engine batch's records, in the order the core issued them.
pub(super) struct Writes {
    pub records: Vec<Record>,
    pub token: Token,
}

/// The engine's end of the writer thread.
pub(super) struct Writer {
    pub writes: Sender<Writes>,
    pub thread: JoinHandle<()>,
}

pub(super) fn start<C: Send + 'static>(
    journal: Box<dyn Durable>,
    engine: Sender<Event<C>>,
    published: Arc<Published>,
    me: &MemberId,
) -> Result<Writer, NodeError> {
    let (writes, queue) = unbounded();
    let thread = std::thread::Builder::new()
        .name(format!("rsl-journal-{me}"))
        .spawn(move || write_loop(journal, &queue, &engine, &published))
        .map_err(NodeError::Thread)?;
    Ok(Writer { writes, thread })
}

fn write_loop<C>(
    mut journal: Box<dyn Durable>,
    queue: &Receiver<Writes>,
    engine: &Sender<Event<C>>,
    published: &Published,
) {
    let mut log = journal.current_log();
    while let Ok(first) = queue.recv() {
        let started = Instant::now();
        let mut token = first.token;
        let mut result = Ok(());
        for writes in std::iter::once(first).chain(queue.try_iter()) {
            assert!(writes.token >= token, "tokens grow");
            token = writes.token;
            published.log_writes.fetch_add(writes.records.len() as u64, Ordering::Relaxed);
            for record in &writes.records {
                if result.is_ok() {
                    result = journal.append(record).map_err(|e| e.to_string()).map(|bytes| {
                        published.log_write_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
                    });
                }
            }
        }
        let result = result.and_then(|()| journal.sync().map_err(|e| e.to_string()));
        let micros = started.elapsed().as_micros() as u64;
        published.log_write_micros.fetch_add(micros, Ordering::Relaxed);
        published.log_write_max_micros.fetch_max(micros, Ordering::Relaxed);
        if journal.current_log() != log {
            log = journal.current_log();
            let _ = engine.send(Event::LogRotated);
        }
        let event = match result {
            Ok(()) => Event::Persisted(token),
            Err(e) => Event::JournalFailed(e),
        };
        let failed = matches!(event, Event::JournalFailed(_));
        if engine.send(event).is_err() || failed {
            return;
        }
    }
}
