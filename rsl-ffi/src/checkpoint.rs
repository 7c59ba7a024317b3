//! Checkpoint streams (legacy `RSLCheckpointStreamReader` / `Writer`, spec §1.6) and
//! `RSLCheckpointUtility::GetLatestCheckpoint`. Return values are legacy's Win32 codes:
//! 0 (`NO_ERROR`), 38 at the end of the data, 23 for a checksum or size mismatch, 87 for
//! an invalid argument, otherwise the error of the failing system call.

use crate::types::RslNode;
use crate::{c_str, guard};
use libc::c_char;
use libc::c_void;
use rsl_core::paxos::{Ballot, Decree, MemberId, Vote};
use rsl_core::storage::checkpoint::{
    change_replica_set, list_checkpoints, win32, CheckpointConfiguration, CheckpointHeader, CheckpointReader,
    CheckpointWriter, ReadError, SaveError, DEFAULT_BLOCK_SIZE,
};
use rsl_core::wire::{Version, WireVote};
use std::path::Path;

/// Legacy `ERROR_INSUFFICIENT_BUFFER`.
const ERROR_INSUFFICIENT_BUFFER: u32 = 122;

/// A checkpoint being read: opened by the host, or lent to its `load_state` callback.
pub struct RslCheckpointReader {
    reader: Stream<CheckpointReader>,
}

/// A checkpoint being written, lent to the host's `save_state` callback.
pub struct RslCheckpointWriter {
    writer: Stream<CheckpointWriter>,
}

enum Stream<T> {
    Owned(T),
    /// Valid for the duration of one callback (see `lend`).
    Lent(*mut T),
}

impl<T> Stream<T> {
    fn get(&mut self) -> &mut T {
        match self {
            Self::Owned(t) => t,
            // SAFETY: a lent stream only exists inside the callback it was lent to, while
            // the `&mut T` it was made from is borrowed for that call (see `lend`).
            Self::Lent(t) => unsafe { &mut **t },
        }
    }
}

impl RslCheckpointReader {
    /// Runs `f` with a handle on `reader` for the host (valid only during `f`).
    pub(crate) fn lend<R>(reader: &mut CheckpointReader, f: impl FnOnce(*mut Self) -> R) -> R {
        let mut handle = Self { reader: Stream::Lent(reader) };
        f(&mut handle)
    }
}

impl RslCheckpointWriter {
    /// Runs `f` with a handle on `writer` for the host (valid only during `f`).
    pub(crate) fn lend<R>(writer: &mut CheckpointWriter, f: impl FnOnce(*mut Self) -> R) -> R {
        let mut handle = Self { writer: Stream::Lent(writer) };
        f(&mut handle)
    }
}

/// Legacy `Init(file)`: opens and checks a checkpoint. Returns a Win32 code; on success
/// `*out` is a reader to free with [`rsl_checkpoint_reader_free`].
///
/// # Safety
/// `path` is a NUL-terminated string; `out` is writable.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_reader_open(
    path: *const c_char,
    out: *mut *mut RslCheckpointReader,
) -> u32 {
    guard(win32::ERROR_GEN_FAILURE, || {
        // SAFETY: per the contract.
        let Some(path) = (unsafe { c_str(path) }) else { return win32::ERROR_INVALID_PARAMETER };
        if out.is_null() || path.len() >= 65_536 {
            return win32::ERROR_INVALID_PARAMETER;
        }
        match CheckpointReader::open(Path::new(path)) {
            Ok(reader) => {
                let handle = Box::new(RslCheckpointReader { reader: Stream::Owned(reader) });
                // SAFETY: `out` is writable per the contract.
                unsafe { *out = Box::into_raw(handle) };
                0
            }
            Err(e) => e.win32_code(),
        }
    })
}

/// Frees a reader from [`rsl_checkpoint_reader_open`] (null is ignored).
///
/// # Safety
/// `reader` came from `rsl_checkpoint_reader_open` and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_reader_free(reader: *mut RslCheckpointReader) {
    guard((), || {
        if !reader.is_null() {
            // SAFETY: it came from Box::into_raw in `rsl_checkpoint_reader_open`.
            drop(unsafe { Box::from_raw(reader) });
        }
    })
}

/// Runs `f` on the reader behind `reader`, or answers `ERROR_INVALID_PARAMETER`.
fn with_reader(reader: *mut RslCheckpointReader, f: impl FnOnce(&mut CheckpointReader) -> u32) -> u32 {
    guard(win32::ERROR_GEN_FAILURE, || {
        // SAFETY: a non-null handle is a live reader (owned or lent) per the C contract.
        match unsafe { reader.as_mut() } {
            Some(handle) => f(handle.reader.get()),
            None => win32::ERROR_INVALID_PARAMETER,
        }
    })
}

/// Legacy `GetDataPointer`: `*data` points at up to `max` bytes (fewer at a block end),
/// valid until the next call on this reader; `*read` says how many.
///
/// # Safety
/// `data` and `read` are writable.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_reader_get_data_pointer(
    reader: *mut RslCheckpointReader,
    data: *mut *const u8,
    max: usize,
    read: *mut usize,
) -> u32 {
    with_reader(reader, |r| {
        if data.is_null() || read.is_null() {
            return win32::ERROR_INVALID_PARAMETER;
        }
        let (ptr, len, code) = match r.get_data_pointer(max) {
            Ok(bytes) => (bytes.as_ptr(), bytes.len(), 0),
            Err(e) => (std::ptr::null(), 0, e.win32_code()),
        };
        // SAFETY: both are writable per the contract.
        unsafe {
            *data = ptr;
            *read = len;
        }
        code
    })
}

/// Legacy `Seek`: to a payload offset.
///
/// # Safety
/// `reader` is null or a live reader.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_reader_seek(reader: *mut RslCheckpointReader, offset: u64) -> u32 {
    with_reader(reader, |r| r.seek(offset).map_or_else(|e| e.win32_code(), |()| 0))
}

/// Legacy `Skip`: forward by `len` payload bytes.
///
/// # Safety
/// `reader` is null or a live reader.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_reader_skip(reader: *mut RslCheckpointReader, len: u64) -> u32 {
    with_reader(reader, |r| r.skip(len).map_or_else(|e| e.win32_code(), |()| 0))
}

/// Legacy `Size`: payload bytes (checksums excluded); 0 for a null reader.
///
/// # Safety
/// `reader` is null or a live reader.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_reader_size(reader: *mut RslCheckpointReader) -> u64 {
    let mut size = 0;
    with_reader(reader, |r| {
        size = r.size();
        0
    });
    size
}

/// Legacy `Write`: appends payload bytes. Returns 0 or a Win32 code.
///
/// # Safety
/// `writer` is a live writer; `data` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_writer_write(
    writer: *mut RslCheckpointWriter,
    data: *const u8,
    len: usize,
) -> u32 {
    guard(win32::ERROR_GEN_FAILURE, || {
        // SAFETY: a non-null handle is a lent writer per the C contract.
        let Some(handle) = (unsafe { writer.as_mut() }) else { return win32::ERROR_INVALID_PARAMETER };
        if data.is_null() && len > 0 {
            return win32::ERROR_INVALID_PARAMETER;
        }
        let bytes = if len == 0 {
            &[][..]
        } else {
            // SAFETY: `len` readable bytes per the contract.
            unsafe { std::slice::from_raw_parts(data, len) }
        };
        match handle.writer.get().write(bytes) {
            Ok(()) => 0,
            Err(e) => ReadError::Io { path: Default::default(), source: e }.win32_code(),
        }
    })
}

/// Legacy `CreateWriterForThisReader(file)`: a writer for a new checkpoint at `path`
/// under this reader's header (tools rewrite a checkpoint's payload this way). Finish it
/// with [`rsl_checkpoint_writer_close`]. Returns a Win32 code: 87 also for a reader lent
/// to `load_state` (legacy returns NULL for those).
///
/// # Safety
/// `reader` is a live reader, `path` a NUL-terminated string, `out` writable.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_reader_create_writer(
    reader: *mut RslCheckpointReader,
    path: *const c_char,
    out: *mut *mut RslCheckpointWriter,
) -> u32 {
    guard(win32::ERROR_GEN_FAILURE, || {
        // SAFETY: per the contract.
        let (handle, path) = match (unsafe { reader.as_mut() }, unsafe { c_str(path) }) {
            (Some(handle), Some(path)) if !out.is_null() && !path.is_empty() => (handle, path),
            _ => return win32::ERROR_INVALID_PARAMETER,
        };
        let Stream::Owned(reader) = &handle.reader else { return win32::ERROR_INVALID_PARAMETER };
        match CheckpointWriter::create_file(Path::new(path), reader.header().clone()) {
            Ok(writer) => {
                let handle = Box::new(RslCheckpointWriter { writer: Stream::Owned(writer) });
                // SAFETY: `out` is writable per the contract.
                unsafe { *out = Box::into_raw(handle) };
                0
            }
            Err(e) => save_error_code(&e),
        }
    })
}

/// Legacy `CloseWriterForThisReader`: completes a writer from
/// [`rsl_checkpoint_reader_create_writer`] — the header with the payload's size, an fsync,
/// a read-back, the rename into place — and frees it, whatever the outcome. Returns 0 or
/// a Win32 code; a failure is also logged (legacy asserted).
///
/// # Safety
/// `writer` came from `rsl_checkpoint_reader_create_writer` and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_writer_close(writer: *mut RslCheckpointWriter) -> u32 {
    guard(win32::ERROR_GEN_FAILURE, || {
        // SAFETY: a non-null handle is a live writer per the C contract.
        match unsafe { writer.as_ref() } {
            Some(RslCheckpointWriter { writer: Stream::Owned(_) }) => {}
            Some(_) => {
                tracing::error!("a writer lent to save_state cannot be closed by the application; ignored");
                return win32::ERROR_INVALID_PARAMETER;
            }
            None => return win32::ERROR_INVALID_PARAMETER,
        }
        // SAFETY: an owned writer came from Box::into_raw in
        // `rsl_checkpoint_reader_create_writer` (lent ones live on rsl's stack, refused above).
        let Stream::Owned(writer) = unsafe { Box::from_raw(writer) }.writer else { unreachable!() };
        match writer.finish() {
            Ok(_) => 0,
            Err(e) => {
                tracing::error!("rewriting a checkpoint failed: {e}");
                save_error_code(&e)
            }
        }
    })
}

fn save_error_code(e: &SaveError) -> u32 {
    match e {
        SaveError::Encode(_) => win32::ERROR_INVALID_PARAMETER,
        SaveError::Io { path, source } => {
            ReadError::Io { path: path.clone(), source: std::io::Error::from(source.kind()) }.win32_code()
        }
        SaveError::Verify(e) => e.win32_code(),
    }
}

/// Legacy `RSLCheckpointUtility::GetLatestCheckpoint`: the path of the highest-numbered
/// `*.codex` in `dir`, NUL-terminated in `buf`. Returns 0, 87 (invalid argument), 2 (none)
/// or 122 (`buf` too small).
///
/// # Safety
/// `dir` is a NUL-terminated string; `buf` has `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_latest(dir: *const c_char, buf: *mut c_char, len: usize) -> u32 {
    guard(win32::ERROR_GEN_FAILURE, || {
        // SAFETY: per the contract.
        let dir = match unsafe { c_str(dir) } {
            Some(d) if !d.is_empty() && !buf.is_null() && len > 0 => d,
            _ => return win32::ERROR_INVALID_PARAMETER,
        };
        let newest = list_checkpoints(Path::new(dir)).ok().and_then(|all| all.into_iter().next());
        let Some((_, path)) = newest else { return win32::ERROR_FILE_NOT_FOUND };
        let path = path.to_string_lossy();
        if path.len() + 1 > len {
            return ERROR_INSUFFICIENT_BUFFER;
        }
        // SAFETY: `len` writable bytes, and the path and its NUL fit.
        let out = unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) };
        out[..path.len()].copy_from_slice(path.as_bytes());
        out[path.len()] = 0;
        0
    })
}

/// Legacy `RSLCheckpointUtility::SaveCheckpoint`: writes `<dir>/<last_executed>.codex` in
/// `version` (1–6) for configuration `configuration_number` of `count` members (the member
/// set is required from version 3), with the payload `save_state(userdata, writer)`
/// writes. Returns true once the file is in place; false (and a log line) otherwise.
///
/// # Safety
/// `dir` is a NUL-terminated string, `members` points to `count` nodes (or is null with
/// `count` 0), and `save_state` may be called with `userdata`.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_save(
    dir: *const c_char,
    version: u32,
    last_executed: u64,
    configuration_number: u32,
    members: *const RslNode,
    count: usize,
    save_state: Option<unsafe extern "C" fn(*mut c_void, *mut RslCheckpointWriter)>,
    userdata: *mut c_void,
) -> bool {
    guard(false, || {
        // SAFETY: per the contract.
        let dir = unsafe { c_str(dir) };
        let version = u16::try_from(version).ok().and_then(Version::from_u16).filter(|v| *v <= Version::V6);
        let nodes = if members.is_null() {
            &[][..]
        } else {
            // SAFETY: `count` nodes per the contract.
            unsafe { std::slice::from_raw_parts(members, count) }
        };
        let members = nodes.iter().map(RslNode::member).collect::<Option<Vec<_>>>();
        let (Some(dir), Some(version), Some(save_state), Some(members)) = (dir, version, save_state, members)
        else {
            tracing::error!("SaveCheckpoint: invalid directory, version, member set or callback");
            return false;
        };
        if last_executed == 0 || (version >= Version::V3 && members.is_empty()) {
            tracing::error!("SaveCheckpoint: needs a decree above 0 and, from version 3, a member set");
            return false;
        }
        let member_id = match members.first() {
            Some(m) if version >= Version::V3 => m.id.clone(),
            _ => MemberId::default(),
        };
        let ballot = Ballot::new(1, member_id.clone());
        let last = Decree(last_executed);
        let next = Vote::empty(last.next(), ballot.clone(), configuration_number, last);
        let header = CheckpointHeader {
            version,
            member_id,
            last_executed: last,
            max_ballot: ballot,
            configuration: (version >= Version::V3).then(|| CheckpointConfiguration {
                number: configuration_number,
                initial_decree: last,
                members,
                cookie: Default::default(),
            }),
            state_saved: true,
            file_size: 0,
            block_size: if version >= Version::V4 { DEFAULT_BLOCK_SIZE } else { 0 },
            next_vote: WireVote::from_core(&next, version),
        };
        let saved = CheckpointWriter::create(Path::new(dir), header).and_then(|mut writer| {
            // SAFETY: the host's callback with its userdata and a handle valid for the call.
            RslCheckpointWriter::lend(&mut writer, |w| unsafe { save_state(userdata, w) });
            writer.finish()
        });
        saved.map_err(|e| tracing::error!("SaveCheckpoint: {e}")).is_ok()
    })
}

/// Legacy `RSLCheckpointUtility::ChangeReplicaSet` (`version` 0: the file's own) and
/// `MigrateToVersion3/4` (`version` 3 or 4): rewrites the checkpoint at `path` for the
/// `count` members. False (and a log line) if the file does not open, the version is
/// below 3, or the set does not suit it; the file is then unchanged.
///
/// # Safety
/// `path` is a NUL-terminated string; `members` points to `count` nodes (or is null with
/// `count` 0).
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_change_replica_set(
    path: *const c_char,
    version: u32,
    members: *const RslNode,
    count: usize,
) -> bool {
    guard(false, || {
        // SAFETY: per the contract.
        let path = unsafe { c_str(path) };
        let version = match version {
            0 => Some(None),
            v => u16::try_from(v).ok().and_then(Version::from_u16).filter(|v| *v <= Version::V6).map(Some),
        };
        let nodes = if members.is_null() {
            &[][..]
        } else {
            // SAFETY: `count` nodes per the contract.
            unsafe { std::slice::from_raw_parts(members, count) }
        };
        let members = nodes.iter().map(RslNode::member).collect::<Option<Vec<_>>>();
        let (Some(path), Some(version), Some(members)) = (path, version, members) else {
            tracing::error!("ChangeReplicaSet: invalid path, version or member set");
            return false;
        };
        change_replica_set(Path::new(path), members, version)
            .map_err(|e| tracing::error!("ChangeReplicaSet {path}: {e}"))
            .is_ok()
    })
}

/// Legacy `RSLCheckpointUtility::GetReplicaSet`: up to `capacity` members of the
/// checkpoint's configuration into `nodes` and their number into `*count`. False for a
/// checkpoint older than version 3 or one that does not open.
///
/// # Safety
/// `path` is a NUL-terminated string; `nodes` has `capacity` writable entries; `count`
/// is writable.
#[no_mangle]
pub unsafe extern "C" fn rsl_checkpoint_replica_set(
    path: *const c_char,
    nodes: *mut RslNode,
    capacity: usize,
    count: *mut usize,
) -> bool {
    guard(false, || {
        // SAFETY: per the contract.
        let Some(path) = (unsafe { c_str(path) }) else { return false };
        let Ok(reader) = CheckpointReader::open(Path::new(path)) else { return false };
        let Some(configuration) = &reader.header().configuration else { return false };
        if !nodes.is_null() {
            for (i, member) in configuration.members.iter().take(capacity).enumerate() {
                // SAFETY: `capacity` writable entries per the contract.
                unsafe { *nodes.add(i) = RslNode::from_member(member) };
            }
        }
        // SAFETY: null or writable per the contract.
        if let Some(count) = unsafe { count.as_mut() } {
            *count = configuration.members.len();
        }
        true
    })
}
