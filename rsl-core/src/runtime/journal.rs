//! The journal writer: the file journal, and the nvm journal on a file that needs
//! `msync`, get a thread of their own, since a sync blocks for a fraction of a
//! millisecond or more; the nvm journal on DAX is written on the engine thread, since its
//! sync (a few cache-line flushes and a fence) costs less than waking another thread, and
//! the two hand-offs it saves are on the commit path of every secondary.
//!
//! The engine hands over each batch's records with the batch's last token; the writer
//! thread appends every batch queued since its last sync, syncs once (group commit: one
//! `fdatasync` however many batches and records), then reports the newest token as
//! `Persisted`. Tokens are cumulative, so one completion covers every record before it.
//! After a failure it reports the error and ends: nothing after the last completion is
//! known durable. It also reports each switch to a new log file (legacy answers it with a
//! checkpoint).

use super::engine::Event;
use super::{NodeError, Published};
use crate::paxos::{MemberId, Record, Token};
use crate::storage::{AppendError, FileJournal, Journal, NvmJournal};
use crate::transport::inbox;
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

/// The engine's end of the journal.
pub(super) enum Writer {
    Thread {
        writes: Sender<Writes>,
        thread: JoinHandle<()>,
    },
    /// Written and synced by the engine itself ([`append_all`], then `sync`).
    Inline(Box<dyn Durable>),
}

/// A writer thread for `journal`, or the journal itself to be written `inline`.
pub(super) fn start<C: Send + 'static>(
    journal: Box<dyn Durable>,
    inline: bool,
    engine: inbox::Sender<Event<C>>,
    published: Arc<Published>,
    me: &MemberId,
) -> Result<Writer, NodeError> {
    if inline {
        return Ok(Writer::Inline(journal));
    }
    let (writes, queue) = unbounded();
    let thread = std::thread::Builder::new()
        .name(format!("rsl-journal-{me}"))
        .spawn(move || write_loop(journal, &queue, &engine, &published))
        .map_err(NodeError::Thread)?;
    Ok(Writer::Thread { writes, thread })
}

/// Appends `records`, counting them; the first error ends it.
pub(super) fn append_all(
    journal: &mut dyn Durable,
    records: &[Record],
    published: &Published,
) -> Result<(), String> {
    published.log_writes.fetch_add(records.len() as u64, Ordering::Relaxed);
    for record in records {
        let bytes = journal.append(record).map_err(|e| e.to_string())?;
        published.log_write_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }
    Ok(())
}

/// Counts one sync's time, `started` being when its batch's appends began.
pub(super) fn timed(published: &Published, started: Instant) {
    let micros = started.elapsed().as_micros() as u64;
    published.log_write_micros.fetch_add(micros, Ordering::Relaxed);
    published.log_write_max_micros.fetch_max(micros, Ordering::Relaxed);
}

fn write_loop<C>(
    mut journal: Box<dyn Durable>,
    queue: &Receiver<Writes>,
    engine: &inbox::Sender<Event<C>>,
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
            if result.is_ok() {
                result = append_all(journal.as_mut(), &writes.records, published);
            }
        }
        let result = result.and_then(|()| journal.sync().map_err(|e| e.to_string()));
        timed(published, started);
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
