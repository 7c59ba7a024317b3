//! The NVM journal against a model of persistent memory that loses what was not flushed.
//! The model keeps two images: what the CPU sees, and what is durable. A cache-line
//! write-back (`persist`) makes its lines durable; `msync` makes its range durable unless
//! the mapping is DAX. At any `persist` or `msync`, other dirty lines may be evicted on
//! their own. At a power failure each dirty line is kept, dropped, or torn at 8-byte
//! granularity (the unit x86 stores atomically), at random. A process crash keeps the
//! CPU's image but not its durability, and a power failure may follow later.
//!
//! Every seed runs several generations of random appends and syncs, each ended by a crash,
//! then recovers: the records must be exactly a prefix of those appended that holds every
//! record a returned sync covered. Then every bit of a final image is flipped in turn: the
//! journal either refuses to open, naming the damage, or recovers a prefix of the records
//! appended — a changed record is never returned.

mod storage_support;

use rsl_core::paxos::{Record, Rng};
use rsl_core::storage::{Medium, NvmJournal, RecoverError};
use rsl_core::wire::Version;
use std::io;
use std::ops::Range;
use std::path::PathBuf;
use storage_support::{promise, vote};

const LINE: usize = 64;

struct ModelPmem {
    seen: Vec<u8>,
    durable: Vec<u8>,
    dax: bool,
    rng: Rng,
}

impl ModelPmem {
    fn new(len: usize, dax: bool, seed: u64) -> Self {
        Self { seen: vec![0; len], durable: vec![0; len], dax, rng: Rng::new(seed) }
    }

    /// After a power failure, from `image`.
    fn from_image(image: Vec<u8>, dax: bool, seed: u64) -> Self {
        Self { seen: image.clone(), durable: image, dax, rng: Rng::new(seed) }
    }

    fn write_back(&mut self, lines: Range<usize>) {
        let (start, end) = (lines.start / LINE * LINE, lines.end.next_multiple_of(LINE).min(self.seen.len()));
        self.durable[start..end].copy_from_slice(&self.seen[start..end]);
    }

    fn dirty_lines(&self) -> Vec<usize> {
        (0..self.seen.len())
            .step_by(LINE)
            .filter(|&l| self.seen[l..l + LINE] != self.durable[l..l + LINE])
            .collect()
    }

    /// Some of a dirty line reaches memory: all of it, or some of its 8-byte words.
    fn leak(&mut self, image: &mut [u8], line: usize) {
        if self.rng.below(2) == 0 {
            image[line..line + LINE].copy_from_slice(&self.seen[line..line + LINE]);
        } else {
            for word in (line..line + LINE).step_by(8) {
                if self.rng.below(2) == 0 {
                    image[word..word + 8].copy_from_slice(&self.seen[word..word + 8]);
                }
            }
        }
    }

    /// Lines evicted by the cache on its own.
    fn evict_some(&mut self) {
        let mut durable = std::mem::take(&mut self.durable);
        for line in self.dirty_lines_of(&durable) {
            if self.rng.below(8) == 0 {
                self.leak(&mut durable, line);
            }
        }
        self.durable = durable;
    }

    fn dirty_lines_of(&self, durable: &[u8]) -> Vec<usize> {
        (0..self.seen.len())
            .step_by(LINE)
            .filter(|&l| self.seen[l..l + LINE] != durable[l..l + LINE])
            .collect()
    }

    /// What memory holds after a power failure now.
    fn power_failure(&mut self) -> Vec<u8> {
        let mut image = self.durable.clone();
        for line in self.dirty_lines() {
            if self.rng.below(3) != 0 {
                self.leak(&mut image, line);
            }
        }
        image
    }
}

impl Medium for ModelPmem {
    fn bytes(&self) -> &[u8] {
        &self.seen
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.seen
    }

    fn persist(&mut self, range: Range<usize>) {
        self.evict_some();
        self.write_back(range);
    }

    fn sync(&mut self, range: Range<usize>) -> io::Result<()> {
        self.evict_some();
        if !self.dax {
            self.write_back(range);
        }
        Ok(())
    }

    fn grow(&mut self, len: usize) -> io::Result<()> {
        self.seen.resize(len, 0);
        self.durable.resize(len, 0);
        Ok(())
    }
}

fn open(medium: ModelPmem, fresh: bool) -> Result<(NvmJournal<ModelPmem>, Vec<Record>), RecoverError> {
    let (journal, recovery) = NvmJournal::on_medium(PathBuf::from("model.nvm"), medium, Version::V7, fresh)?;
    Ok((journal, recovery.recovered.records))
}

fn random_record(rng: &mut Rng, decree: &mut u64) -> Record {
    if rng.below(5) == 0 {
        return promise(rng.below(100) as u32 + 1);
    }
    *decree += 1;
    let size = [1, 40, 200, 700, 5000][rng.below(5) as usize];
    vote(*decree, 1, &[&vec![(*decree % 251) as u8; size]])
}

/// One seed: generations of appends and syncs, each ended by a process crash or a power
/// failure; after each, what comes back must be a prefix holding everything synced.
fn run(seed: u64, dax: bool) -> NvmJournal<ModelPmem> {
    let mut rng = Rng::new(seed);
    let mut appended: Vec<Record> = Vec::new();
    let mut synced = 0;
    let mut decree = 0;
    let (mut journal, recovered) = open(ModelPmem::new(4096, dax, seed), true).unwrap();
    assert!(recovered.is_empty());
    for generation in 0..6 {
        for _ in 0..rng.below(40) {
            let record = random_record(&mut rng, &mut decree);
            journal.append(&record).unwrap();
            appended.push(record);
            if rng.below(3) == 0 {
                journal.sync().unwrap();
                synced = appended.len();
            }
        }
        let mut state = journal.into_medium();
        let power = rng.below(2) == 0;
        let after = if power {
            let image = state.power_failure();
            ModelPmem::from_image(image, dax, seed ^ generation)
        } else {
            state // a process crash: the CPU's stores stay, durable or not
        };
        let (reopened, records) = open(after, false)
            .unwrap_or_else(|e| panic!("seed {seed} dax {dax} generation {generation}: {e}"));
        assert!(
            records.len() >= synced && records[..] == appended[..records.len()],
            "seed {seed} dax {dax} generation {generation}: recovered {} of {} appended, {synced} synced",
            records.len(),
            appended.len()
        );
        appended.truncate(records.len());
        synced = records.len();
        decree = records
            .iter()
            .filter_map(|r| if let Record::Vote(v) = r { Some(v.decree.0) } else { None })
            .max()
            .unwrap_or(0);
        journal = reopened;
    }
    journal
}

#[test]
fn every_crash_recovers_a_prefix_holding_every_synced_record() {
    for seed in 0..400 {
        run(seed, true);
        run(seed, false);
    }
}

#[test]
fn a_flipped_bit_is_refused_or_cut_and_never_returned_changed() {
    let mut journal = run(7, true);
    journal.sync().unwrap();
    let mut decree = 1 << 20;
    let mut rng = Rng::new(7);
    for _ in 0..3 {
        journal.append(&random_record(&mut rng, &mut decree)).unwrap(); // an unsynced tail
    }
    let image = journal.into_medium().seen;
    let (_, clean) = open(ModelPmem::from_image(image.clone(), true, 0), false).unwrap();
    let used = image.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    // Every bit of the superblock, the first records and the tail; a sample of the rest.
    let bits = (0..8 << 10).chain((used.saturating_sub(12 << 10) * 8)..used * 8);
    let bits: Vec<usize> = bits.chain((0..4000).map(|_| rng.below(used as u64 * 8) as usize)).collect();
    let (mut refused, mut cut, mut unchanged) = (0, 0, 0);
    for bit in bits {
        let mut flipped = image.clone();
        flipped[bit / 8] ^= 1 << (bit % 8);
        match open(ModelPmem::from_image(flipped, true, 0), false) {
            Err(RecoverError::Corrupt { .. }) => refused += 1,
            Err(e) => panic!("bit {bit}: {e}"),
            Ok((_, records)) => {
                assert!(records[..] == clean[..records.len()], "bit {bit}: a changed record came back");
                if records.len() < clean.len() {
                    cut += 1;
                } else {
                    unchanged += 1; // padding, or the superblock's unused bytes
                }
            }
        }
    }
    assert!(refused > 0 && cut > 0 && unchanged > 0, "{refused} refused, {cut} cut, {unchanged} unchanged");
}

/// The model can fail: a journal that stores its commit pointer before its records are
/// durable (the planted bug: the records' write-back skipped) loses synced records.
#[test]
fn the_model_catches_a_commit_pointer_written_before_its_records() {
    let mut lost = 0;
    for seed in 0..50 {
        let mut rng = Rng::new(seed);
        let mut medium = ModelPmem::new(4096, true, seed);
        medium.bytes_mut()[..8].copy_from_slice(b"RSLNVMJ1");
        medium.bytes_mut()[8..16].copy_from_slice(&64u64.to_le_bytes());
        medium.persist(0..16);
        let (mut journal, _) = open(medium, false).unwrap();
        let mut decree = 0;
        let mut appended = Vec::new();
        for _ in 0..10 {
            let record = random_record(&mut rng, &mut decree);
            journal.append(&record).unwrap();
            appended.push(record);
        }
        // The bug: the commit pointer covers every record, and only its own line is
        // written back.
        let mut state = journal.into_medium();
        let end = state.seen.iter().rposition(|&b| b != 0).unwrap().next_multiple_of(LINE) + LINE;
        state.bytes_mut()[8..16].copy_from_slice(&(end as u64).to_le_bytes());
        state.write_back(8..16);
        let image = state.power_failure();
        match open(ModelPmem::from_image(image, true, seed), false) {
            Err(RecoverError::Corrupt { .. }) => lost += 1,
            Ok((_, records)) if records.len() < appended.len() => lost += 1,
            Ok(_) => {}
            Err(e) => panic!("seed {seed}: {e}"),
        }
    }
    assert!(lost > 25, "the model showed the planted bug in only {lost} of 50 seeds");
}
