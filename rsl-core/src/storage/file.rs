//! The file journal: legacy RSL's `.log` files (§5.2). Each record is the marshalled
//! message, zero-padded to 512 bytes, appended to `<firstDecree>.log`. Appends collect in
//! memory; [`Journal::sync`] writes them with one `pwrite` and makes them durable with one
//! `fdatasync` (group commit), plus a directory fsync after a file was created.
//!
//! Rotation follows legacy: when a vote for the next decree is about to be logged and the
//! current file is longer than its threshold (`max_log_len_bytes` ±
//! `log_len_randomize_percent`%, drawn from a seeded [`Rng`] for each file), the old file
//! is synced and `<decree>.log` is started. Writing after a restart continues at the end
//! of the newest file's valid prefix; a torn tail is truncated away first, so that a
//! shorter record written over it cannot leave stale bytes behind.

use super::log_reader::{list_logs, scan};
use super::record::Encoder;
use super::{named, AppendError, Health, Journal, RecoverError, Recovery};
use crate::paxos::{Record, Rng};
use crate::wire::{record_len, Version};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// How the file journal writes.
#[derive(Clone, Debug)]
pub struct FileOptions {
    /// The protocol version of every record (a vote that needs the watermark gets 7).
    pub version: Version,
    /// Legacy `m_maxLogLenMB · 2^20`: the rotation threshold.
    pub max_log_len_bytes: u64,
    /// Legacy `m_logLenRandomize`: each file's threshold is uniform in max ± this percent.
    pub log_len_randomize_percent: u32,
    /// Seeds the threshold draws.
    pub seed: u64,
    /// When a sync writes past the zeroed end of the file, this many zero bytes are written
    /// after the records in the same `pwrite`; later syncs then overwrite in place and skip
    /// the file-size update (0 disables). See `benches/journal.rs` for what it saves.
    pub preallocate_bytes: u64,
}

impl FileOptions {
    /// Legacy defaults: 100 MiB ± 20 %, and 1 MiB of zeros written ahead.
    pub fn new(version: Version) -> Self {
        Self {
            version,
            max_log_len_bytes: 100 << 20,
            log_len_randomize_percent: 20,
            seed: 0,
            preallocate_bytes: 1 << 20,
        }
    }
}

/// Legacy `.log` files in one data directory.
#[derive(Debug)]
pub struct FileJournal {
    dir: PathBuf,
    options: FileOptions,
    rng: Rng,
    encoder: Encoder,
    file: File,
    /// The decree in the current file's name.
    first_decree: u64,
    /// The highest vote decree in the journal.
    highest_vote: Option<u64>,
    /// Bytes of the current file holding records (written, maybe not yet synced).
    written: u64,
    /// Where the zeros written ahead end.
    zeroed_to: u64,
    /// Padded records appended since the last write.
    pending: Vec<u8>,
    /// This file's rotation threshold.
    limit: u64,
    /// Something was written or created since the last sync.
    unsynced: bool,
    /// A file was created since the last sync: its directory entry needs an fsync.
    dir_unsynced: bool,
    health: Health,
}

impl Journal for FileJournal {
    type Options = FileOptions;

    fn open(dir: &Path, options: FileOptions) -> Result<(Self, Recovery), RecoverError> {
        std::fs::create_dir_all(dir).map_err(RecoverError::io(dir))?;
        let (recovery, newest) = scan(dir)?;
        let mut encoder = Encoder::new(options.version);
        recovery.recovered.records.iter().for_each(|r| encoder.observe(r));
        let (path, valid_len, first_decree, highest_vote) = match newest {
            Some(newest) => (newest.path, newest.valid_len, newest.first_decree, newest.highest_vote),
            None => (dir.join("0.log"), 0, 0, None), // a brand-new replica starts with 0.log
        };
        let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
        let file = file.map_err(RecoverError::io(&path))?;
        let file_len = file.metadata().map_err(RecoverError::io(&path))?.len();
        if file_len > valid_len {
            file.set_len(valid_len).and_then(|()| file.sync_all()).map_err(RecoverError::io(&path))?;
        }
        let mut rng = Rng::new(options.seed);
        let limit = draw_limit(&options, &mut rng);
        let mut journal = Self {
            dir: dir.to_owned(),
            options,
            rng,
            encoder,
            file,
            first_decree,
            highest_vote,
            written: valid_len,
            zeroed_to: valid_len,
            pending: Vec::new(),
            limit,
            // Records a crashed process wrote but never synced may sit in the page cache
            // only: sync them before the replica relies on them.
            unsynced: true,
            dir_unsynced: file_len == 0 && valid_len == 0,
            health: Health::default(),
        };
        journal.sync().map_err(RecoverError::io(&path))?;
        Ok((journal, recovery))
    }

    fn append(&mut self, record: &Record) -> Result<usize, AppendError> {
        self.health.check()?;
        let bytes = self.encoder.encode(record).map_err(AppendError::Encode)?;
        if let Record::Vote(vote) = record {
            // Only on the next decree, so that a missing file shows (see [`super::Seam`]).
            let next_decree = self.highest_vote.is_some_and(|d| vote.decree.0 == d + 1);
            self.highest_vote = self.highest_vote.max(Some(vote.decree.0));
            if next_decree
                && vote.decree.0 > self.first_decree
                && self.written + self.pending.len() as u64 > self.limit
            {
                let path = self.dir.join(format!("{}.log", vote.decree));
                let result = self.rotate(vote.decree.0).map_err(named(&path));
                self.health.watch(result)?;
            }
        }
        let start = self.pending.len();
        self.pending.extend_from_slice(&bytes);
        self.pending.resize(start + record_len(bytes.len()), 0);
        self.encoder.observe(record);
        self.unsynced = true;
        Ok(record_len(bytes.len()))
    }

    fn sync(&mut self) -> io::Result<()> {
        self.health.check()?;
        let path = self.dir.join(format!("{}.log", self.first_decree));
        let result = self.sync_now().map_err(named(&path));
        self.health.watch(result)
    }
}

impl FileJournal {
    /// The first decree of the log file being appended to (it changes at each rotation,
    /// which legacy answers with a checkpoint).
    pub fn current_log(&self) -> u64 {
        self.first_decree
    }

    fn sync_now(&mut self) -> io::Result<()> {
        if self.unsynced {
            self.write_pending()?;
            self.file.sync_data()?;
            self.unsynced = false;
        }
        if self.dir_unsynced {
            File::open(&self.dir)?.sync_all()?;
            self.dir_unsynced = false;
        }
        Ok(())
    }

    /// One `pwrite` of the pending records (and of zeros ahead, when preallocating).
    fn write_pending(&mut self) -> io::Result<()> {
        let end = self.written + self.pending.len() as u64;
        if self.options.preallocate_bytes > 0 && end > self.zeroed_to {
            self.zeroed_to = end + self.options.preallocate_bytes;
            self.pending.resize((self.zeroed_to - self.written) as usize, 0);
        }
        self.file.write_all_at(&self.pending, self.written)?;
        self.written = end;
        self.pending.clear();
        Ok(())
    }

    /// Finishes the current file (written and synced, so a later file never follows a
    /// torn one) and starts `<decree>.log`.
    fn rotate(&mut self, decree: u64) -> io::Result<()> {
        self.sync_now()?;
        let path = self.dir.join(format!("{decree}.log"));
        self.file = OpenOptions::new().read(true).write(true).create_new(true).open(path)?;
        self.first_decree = decree;
        self.written = 0;
        self.zeroed_to = 0;
        self.limit = draw_limit(&self.options, &mut self.rng);
        self.dir_unsynced = true;
        Ok(())
    }
}

/// `max ± randomize%`, uniform (legacy re-draws it at each switch).
fn draw_limit(options: &FileOptions, rng: &mut Rng) -> u64 {
    let max = options.max_log_len_bytes;
    let delta = max / 100 * u64::from(options.log_len_randomize_percent.min(100));
    max - delta + rng.below(2 * delta + 1)
}

/// Legacy log cleanup after a checkpoint: deletes the oldest `<decree>.log` files whose
/// every decree is at or below `covered_through` (the oldest checkpoint kept), while more
/// than `keep` logs (`m_maxLogs`) remain. The newest log is never deleted. Returns the
/// files deleted, and the first decree of the oldest log kept once any was.
pub fn remove_covered_logs(
    dir: &Path,
    covered_through: u64,
    keep: usize,
) -> Result<(Vec<PathBuf>, Option<u64>), RecoverError> {
    let logs = list_logs(dir)?;
    let mut removed = Vec::new();
    for (i, window) in logs.windows(2).enumerate() {
        let next_first = window[1].0;
        if logs.len() - i <= keep.max(1) || next_first > covered_through.saturating_add(1) {
            break;
        }
        std::fs::remove_file(&window[0].1).map_err(RecoverError::io(&window[0].1))?;
        removed.push(window[0].1.clone());
    }
    let first_kept = (!removed.is_empty()).then(|| logs[removed.len()].0);
    Ok((removed, first_kept))
}
