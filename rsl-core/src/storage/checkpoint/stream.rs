//! The payload of a `<N>.codex` file: [`CheckpointWriter`] (legacy
//! `RSLCheckpointStreamWriter`) and [`CheckpointReader`] (`RSLCheckpointStreamReader`).
//!
//! With blocks (v4+, block size B > 0) the payload is cut into blocks of B bytes on disk,
//! measured from the header's end: B − 8 application bytes and the LE fingerprint of
//! exactly those bytes; the last block holds 1..=B − 8 bytes and its fingerprint; an empty
//! payload has no blocks. Without blocks (v1–v3, or B = 0) the payload is raw.
//!
//! The reader holds one block in memory, allocated from what the file really holds (never
//! from a header field alone), and verifies a block's fingerprint every time it loads it.
//! It refuses a file whose size differs from the header's `fileSize` or whose last block
//! cannot hold a checksum, as legacy `Init` does; a bad block surfaces on the read that
//! reaches it, as in legacy, so `LoadState` fails and restart falls back to an older file.

use super::dir::{checkpoint_file_name, TEMP_DIR};
use super::header::{stated_len, CheckpointHeader, BLOCK_CHECKSUM_LEN, DEFAULT_BLOCK_SIZE, PAGE_SIZE};
use super::{ReadError, SaveError};
use crate::wire::{fingerprint, Version};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Application bytes per block: B − 8 with checksums, else the raw read/write chunk.
fn data_per_block(header: &CheckpointHeader) -> u64 {
    if header.has_blocks() {
        u64::from(header.block_size) - BLOCK_CHECKSUM_LEN as u64
    } else {
        u64::from(DEFAULT_BLOCK_SIZE)
    }
}

/// Streams application state into `<dir>/Temp/<N>.codex`; [`CheckpointWriter::finish`]
/// writes the header, syncs, verifies the file by reading it back and renames it to
/// `<dir>/<N>.codex`. Until then no `<N>.codex` exists; `Temp/` is emptied at startup.
/// [`CheckpointWriter::create_file`] writes any path the same way (legacy
/// `CreateWriterForThisReader`, for tools that rewrite a checkpoint's payload).
#[derive(Debug)]
pub struct CheckpointWriter {
    file: File,
    temp_path: PathBuf,
    /// Where `finish` installs the file.
    path: PathBuf,
    /// An existing file at `path` is replaced (else kept, and the new one discarded).
    replace: bool,
    header: CheckpointHeader,
    header_len: u64,
    data_per_block: usize,
    /// Application bytes of the current block, not yet on disk.
    block: Vec<u8>,
    /// Where the next block goes.
    offset: u64,
    payload_len: u64,
    /// A write failed: the file has a gap, so nothing more is written.
    failed: bool,
}

impl CheckpointWriter {
    /// Starts `<dir>/Temp/<N>.codex`, N = `header.last_executed`. The header's `file_size`
    /// is filled in by `finish`; its `block_size` sets the framing (4 MiB in production).
    pub fn create(dir: &Path, header: CheckpointHeader) -> Result<Self, SaveError> {
        let temp_dir = dir.join(TEMP_DIR);
        std::fs::create_dir_all(&temp_dir).map_err(SaveError::io(&temp_dir))?;
        let name = checkpoint_file_name(header.last_executed);
        Self::start(temp_dir.join(&name), dir.join(name), false, header)
    }

    /// Starts a checkpoint that `finish` installs at `path`, replacing any file there; it
    /// is written to `<path>.tmp` until then.
    pub fn create_file(path: &Path, header: CheckpointHeader) -> Result<Self, SaveError> {
        let mut temp = path.as_os_str().to_owned();
        temp.push(".tmp");
        Self::start(temp.into(), path.to_owned(), true, header)
    }

    fn start(
        temp_path: PathBuf,
        path: PathBuf,
        replace: bool,
        header: CheckpointHeader,
    ) -> Result<Self, SaveError> {
        let header_len = header.encode().map_err(SaveError::Encode)?.len() as u64;
        let file = File::create(&temp_path).map_err(SaveError::io(&temp_path))?;
        Ok(Self {
            file,
            temp_path,
            path,
            replace,
            data_per_block: data_per_block(&header) as usize,
            header,
            header_len,
            block: Vec::new(),
            offset: header_len,
            payload_len: 0,
            failed: false,
        })
    }

    /// Appends application bytes; chunk sizes do not matter to the file's content.
    pub fn write(&mut self, mut bytes: &[u8]) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other("an earlier checkpoint write failed"));
        }
        while !bytes.is_empty() {
            let n = bytes.len().min(self.data_per_block - self.block.len());
            self.block.extend_from_slice(&bytes[..n]);
            self.payload_len += n as u64;
            bytes = &bytes[n..];
            if self.block.len() == self.data_per_block {
                self.flush_block()?;
            }
        }
        Ok(())
    }

    /// Application bytes written so far.
    pub fn payload_len(&self) -> u64 {
        self.payload_len
    }

    fn flush_block(&mut self) -> io::Result<()> {
        if self.header.has_blocks() {
            let checksum = fingerprint(&self.block);
            self.block.extend_from_slice(&checksum.to_le_bytes());
        }
        let result = self.file.write_all_at(&self.block, self.offset);
        self.failed = result.is_err();
        self.offset += self.block.len() as u64;
        self.block.clear();
        result
    }

    /// Completes the file and installs it as `<dir>/<N>.codex`: the last partial block and
    /// its checksum, the header (v4+: with `fileSize`), an fsync, a full read-back, the
    /// rename and an fsync of the directory. Returns the installed path. As in legacy, an
    /// existing `<N>.codex` is kept and the new file discarded (both hold the state at
    /// decree N); a file from `create_file` replaces what is there.
    pub fn finish(mut self) -> Result<PathBuf, SaveError> {
        let temp = self.temp_path.clone();
        if self.failed {
            return Err(SaveError::Io { path: temp, source: io::Error::other("a checkpoint write failed") });
        }
        if !self.block.is_empty() {
            self.flush_block().map_err(SaveError::io(&temp))?;
        }
        if self.header.version >= Version::V4 {
            self.header.file_size = self.offset;
        }
        let header = self.header.encode().map_err(SaveError::Encode)?;
        assert_eq!(header.len() as u64, self.header_len, "fileSize does not change the header length");
        self.file
            .write_all_at(&header, 0)
            .and_then(|()| self.file.sync_all())
            .map_err(SaveError::io(&temp))?;
        let mut reader = CheckpointReader::open(&temp).map_err(SaveError::Verify)?;
        reader.verify().map_err(SaveError::Verify)?;
        if reader.size() != self.payload_len || reader.header() != &self.header {
            let why = "the file read back differs from what was written".to_owned();
            return Err(SaveError::Verify(ReadError::Corrupt { path: temp, offset: 0, why }));
        }
        let path = self.path;
        if !self.replace && path.try_exists().map_err(SaveError::io(&path))? {
            std::fs::remove_file(&temp).map_err(SaveError::io(&temp))?;
            return Ok(path);
        }
        std::fs::rename(&temp, &path).map_err(SaveError::io(&path))?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        File::open(dir).and_then(|d| d.sync_all()).map_err(SaveError::io(dir))?;
        Ok(path)
    }
}

/// Reads a checkpoint's application state. Reads are short at block ends: a read returns
/// at most what is left of the current block, so callers loop (as with legacy).
#[derive(Debug)]
pub struct CheckpointReader {
    file: File,
    path: PathBuf,
    header: CheckpointHeader,
    header_len: u64,
    /// Application bytes in the file.
    size: u64,
    data_per_block: u64,
    /// The loaded block's application bytes (checksum verified and removed).
    block: Vec<u8>,
    loaded: Option<u64>,
    /// The next payload byte to return.
    position: u64,
}

impl CheckpointReader {
    /// Opens and validates a checkpoint: the header, and with blocks the file size against
    /// `fileSize` and the last block's length. Block checksums are checked as blocks are read.
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        let io_error = |source| ReadError::Io { path: path.to_owned(), source };
        let header_error = |source| ReadError::Header { path: path.to_owned(), source };
        let corrupt = |offset, why: String| ReadError::Corrupt { path: path.to_owned(), offset, why };
        let file = File::open(path).map_err(io_error)?;
        let file_len = file.metadata().map_err(io_error)?.len();
        let mut first = [0u8; PAGE_SIZE];
        if file_len < PAGE_SIZE as u64 {
            return Err(header_error(crate::wire::DecodeError::Truncated("checkpoint header")));
        }
        file.read_exact_at(&mut first, 0).map_err(io_error)?;
        let header_len = stated_len(&first).map_err(header_error)?;
        if header_len as u64 > file_len {
            return Err(header_error(crate::wire::DecodeError::Truncated("checkpoint header")));
        }
        let mut bytes = first.to_vec();
        bytes.resize(header_len, 0);
        file.read_exact_at(&mut bytes[PAGE_SIZE..], PAGE_SIZE as u64).map_err(io_error)?;
        let header = CheckpointHeader::decode(&bytes).map_err(header_error)?;
        let header_len = header_len as u64;
        let payload = file_len - header_len;
        let data_per_block = data_per_block(&header);
        let size = if header.has_blocks() {
            if file_len != header.file_size {
                let why = format!("the file has {file_len} bytes, its header says {}", header.file_size);
                return Err(corrupt(file_len, why));
            }
            let block = u64::from(header.block_size);
            let last = payload % block;
            if (1..=BLOCK_CHECKSUM_LEN as u64).contains(&last) {
                return Err(corrupt(file_len - last, format!("a last block of {last} bytes")));
            }
            payload / block * data_per_block + last.saturating_sub(BLOCK_CHECKSUM_LEN as u64)
        } else {
            payload
        };
        Ok(Self {
            file,
            path: path.to_owned(),
            header,
            header_len,
            size,
            data_per_block,
            block: Vec::new(),
            loaded: None,
            position: 0,
        })
    }

    pub fn header(&self) -> &CheckpointHeader {
        &self.header
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Application bytes in the file (checksums excluded).
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Legacy `GetDataPointer`: up to `max` bytes from the current position, never past
    /// the end of the current block. [`ReadError::Eof`] at the end of the payload.
    pub fn get_data_pointer(&mut self, max: usize) -> Result<&[u8], ReadError> {
        if self.position == self.size {
            return Err(ReadError::Eof);
        }
        let index = self.position / self.data_per_block;
        let within = (self.position % self.data_per_block) as usize;
        if self.loaded != Some(index) {
            self.load(index)?;
        }
        let n = max.min(self.block.len() - within);
        self.position += n as u64;
        Ok(&self.block[within..within + n])
    }

    /// Legacy `Seek`: moves to a payload offset (at most [`Self::size`]). The block there
    /// is read, and its checksum verified, by the next read.
    pub fn seek(&mut self, offset: u64) -> Result<(), ReadError> {
        if offset > self.size {
            return Err(ReadError::SeekPastEnd { offset, size: self.size });
        }
        self.position = offset;
        Ok(())
    }

    /// Legacy `Skip`: moves forward `len` payload bytes.
    pub fn skip(&mut self, len: u64) -> Result<(), ReadError> {
        self.seek(self.position.saturating_add(len))
    }

    /// Reads every block, verifying each checksum, then rewinds to the start.
    pub fn verify(&mut self) -> Result<(), ReadError> {
        self.seek(0)?;
        loop {
            match self.get_data_pointer(usize::MAX) {
                Ok(_) => {}
                Err(ReadError::Eof) => return self.seek(0),
                Err(e) => return Err(e),
            }
        }
    }

    /// Loads block `index`, which holds the byte at `self.position`.
    fn load(&mut self, index: u64) -> Result<(), ReadError> {
        self.loaded = None;
        let data_len = self.data_per_block.min(self.size - index * self.data_per_block) as usize;
        let checksummed = self.header.has_blocks();
        let framed = data_len + if checksummed { BLOCK_CHECKSUM_LEN } else { 0 };
        let stride = self.data_per_block + if checksummed { BLOCK_CHECKSUM_LEN as u64 } else { 0 };
        let offset = self.header_len + index * stride;
        self.block.resize(framed, 0);
        let path = &self.path;
        self.file
            .read_exact_at(&mut self.block, offset)
            .map_err(|source| ReadError::Io { path: path.clone(), source })?;
        if checksummed {
            let mut stored = [0u8; BLOCK_CHECKSUM_LEN];
            stored.copy_from_slice(&self.block[data_len..]);
            let (stored, computed) = (u64::from_le_bytes(stored), fingerprint(&self.block[..data_len]));
            if stored != computed {
                let why = format!("block checksum {stored:#018x}, computed {computed:#018x}");
                return Err(ReadError::Corrupt { path: path.clone(), offset, why });
            }
            self.block.truncate(data_len);
        }
        self.loaded = Some(index);
        Ok(())
    }
}

/// `read` into a buffer: short at block ends, `Ok(0)` at the end; a bad block is
/// `InvalidData`.
impl io::Read for CheckpointReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.get_data_pointer(buf.len()) {
            Ok(bytes) => {
                buf[..bytes.len()].copy_from_slice(bytes);
                Ok(bytes.len())
            }
            Err(ReadError::Eof) => Ok(0),
            Err(ReadError::Io { source, .. }) => Err(source),
            Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        }
    }
}
