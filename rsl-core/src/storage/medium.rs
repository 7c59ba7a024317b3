//! Where the NVM journal's bytes live. [`Medium`] is the seam between the journal's
//! layout and the hardware: the bytes as the CPU sees them, plus the two ways of making
//! them durable — writing cache lines back (on persistent memory, all it takes) and
//! `msync` (on an ordinary mapping). [`Mapping`] is the real one, a memory-mapped file;
//! the crash tests supply one that keeps durable and volatile bytes apart and loses or
//! tears unflushed cache lines at a crash.

use super::persist::FlushInstruction;
use memmap2::MmapMut;
use std::fs::File;
use std::io;
use std::ops::Range;

/// Persistent memory as the journal uses it.
pub trait Medium {
    /// The bytes as the CPU sees them (stores not yet durable included).
    fn bytes(&self) -> &[u8];
    fn bytes_mut(&mut self) -> &mut [u8];
    /// Writes back every cache line overlapping `range`, then fences: on persistent
    /// memory these stores are durable, and ordered before every later store.
    fn persist(&mut self, range: Range<usize>);
    /// Makes `range` durable where write-back is not enough (`msync` on a page-cache
    /// mapping); nothing on persistent memory.
    fn sync(&mut self, range: Range<usize>) -> io::Result<()>;
    /// Grows to `len` bytes, zero-filled.
    fn grow(&mut self, len: usize) -> io::Result<()>;
}

/// A memory-mapped file: a DAX file on persistent memory, or an ordinary one whose pages
/// `msync` writes out.
#[derive(Debug)]
pub struct Mapping {
    file: File,
    map: MmapMut,
    flush: FlushInstruction,
    dax: bool,
}

impl Mapping {
    pub(super) fn new(file: File, flush: FlushInstruction, dax: bool) -> io::Result<Self> {
        // SAFETY: the data directory belongs to this replica, and the file only to this
        // journal; nothing else maps or truncates it while the map lives.
        let map = unsafe { MmapMut::map_mut(&file) }?;
        Ok(Self { file, map, flush, dax })
    }

    pub(super) fn flush_instruction(&self) -> FlushInstruction {
        self.flush
    }
}

impl Medium for Mapping {
    fn bytes(&self) -> &[u8] {
        &self.map
    }

    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.map
    }

    fn persist(&mut self, range: Range<usize>) {
        self.flush.persist(&self.map[range]);
    }

    fn sync(&mut self, range: Range<usize>) -> io::Result<()> {
        if self.dax {
            return Ok(());
        }
        self.map.flush_range(range.start, range.len())
    }

    fn grow(&mut self, len: usize) -> io::Result<()> {
        self.file.set_len(len as u64)?;
        // SAFETY: as in `new`; the old map is dropped by this assignment, and the new one
        // sees its stores, which live in the same page cache pages.
        self.map = unsafe { MmapMut::map_mut(&self.file) }?;
        Ok(())
    }
}
