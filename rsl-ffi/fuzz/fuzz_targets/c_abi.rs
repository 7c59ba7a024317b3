//! librsl's C ABI with arguments the input chooses — null or valid pointers, any lengths
//! within the buffers given, strings of any bytes, any enum and version values — on a
//! checkpoint file of the input's bytes. Under AddressSanitizer every byte the library
//! hands back (data pointers, filled buffers) is read, so an out-of-bounds answer shows.
//! Errors are expected; a crash, a panic escaping, or a bad access is a finding.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rsl::checkpoint::*;
use rsl::types::RslNode;
use rsl::*;
use std::ffi::CString;
use std::ptr::{null, null_mut};

/// The input as a stream of choices.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }
    fn u64(&mut self) -> u64 {
        (0..8).fold(0, |acc, _| acc << 8 | u64::from(self.byte()))
    }
    fn bytes(&mut self, max: usize) -> Vec<u8> {
        let n = (usize::from(self.byte()) * 64).min(max).min(self.0.len());
        let (taken, rest) = self.0.split_at(n);
        self.0 = rest;
        taken.to_vec()
    }
    /// Null, or a string of the input's bytes (any encoding), or one of `paths`.
    fn string(&mut self, paths: &[&str]) -> Option<CString> {
        match self.byte() % 4 {
            0 => None,
            1 => Some(
                CString::new(self.bytes(300).into_iter().filter(|&b| b != 0).collect::<Vec<_>>()).unwrap(),
            ),
            _ => Some(CString::new(paths[usize::from(self.byte()) % paths.len()]).unwrap()),
        }
    }
    fn node(&mut self) -> RslNode {
        // SAFETY: RslNode is plain old data (byte arrays and integers): all zeros is valid.
        let mut node: RslNode = unsafe { std::mem::zeroed() };
        for (i, c) in node.member_id.iter_mut().enumerate().take(usize::from(self.byte() % 70)) {
            *c = (self.byte() | 1) as libc::c_char * if i == 63 { 0 } else { 1 };
        }
        node.ip = self.u64() as u32;
        node.rsl_port = self.u64() as u16;
        node
    }
}

fn ptr(s: &Option<CString>) -> *const libc::c_char {
    s.as_ref().map_or(null(), |s| s.as_ptr())
}

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("rsl-cabi-fuzz-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    let mut input = Input(data);
    let file = dir.join("7.codex");
    std::fs::write(&file, input.bytes(1 << 16)).unwrap();
    let (file, dir_s, out) =
        (file.to_string_lossy().into_owned(), dir.to_string_lossy().into_owned(), dir.join("out.codex"));
    let out = out.to_string_lossy().into_owned();
    let paths = [file.as_str(), dir_s.as_str(), out.as_str(), "/nonexistent/x.codex"];
    let mut reader: *mut RslCheckpointReader = null_mut();
    let mut writer: *mut RslCheckpointWriter = null_mut();
    for _ in 0..32 {
        if input.0.is_empty() {
            break;
        }
        // SAFETY (every call below): pointers are null or valid for what they claim;
        // strings are NUL-terminated; buffers are as long as the lengths passed.
        unsafe {
            match input.byte() % 14 {
                0 => {
                    let bytes = input.bytes(4096);
                    let len = if input.byte() % 8 == 0 { 0 } else { bytes.len() };
                    let p = if input.byte() % 8 == 0 { null() } else { bytes.as_ptr() };
                    rsl_checksum(p, len); // null with a length is allowed: it answers 0
                }
                1 => {
                    rsl_checkpoint_reader_free(reader);
                    reader = null_mut();
                    let path = input.string(&paths);
                    let out = if input.byte() % 8 == 0 { null_mut() } else { &mut reader as *mut _ };
                    rsl_checkpoint_reader_open(ptr(&path), out);
                }
                2 => {
                    let (mut at, mut read) = (null(), 0usize);
                    let max = input.u64() as usize % (1 << 20);
                    if rsl_checkpoint_reader_get_data_pointer(reader, &mut at, max, &mut read) == 0
                        && read > 0
                    {
                        assert!(read <= max && !at.is_null());
                        let bytes = std::slice::from_raw_parts(at, read);
                        std::hint::black_box(bytes.iter().fold(0u8, |a, b| a ^ b));
                    }
                }
                3 => drop(rsl_checkpoint_reader_seek(reader, input.u64() % (1 << 18))),
                4 => drop(rsl_checkpoint_reader_skip(reader, input.u64() % (1 << 18))),
                5 => drop(rsl_checkpoint_reader_size(reader)),
                6 => {
                    if !writer.is_null() {
                        rsl_checkpoint_writer_close(writer);
                    }
                    writer = null_mut();
                    let path = input.string(&paths);
                    rsl_checkpoint_reader_create_writer(reader, ptr(&path), &mut writer);
                }
                7 => {
                    let bytes = input.bytes(8192);
                    rsl_checkpoint_writer_write(writer, bytes.as_ptr(), bytes.len());
                }
                8 => {
                    rsl_checkpoint_writer_close(writer);
                    writer = null_mut();
                }
                9 => {
                    let len = usize::from(input.byte());
                    let mut buf = vec![0 as libc::c_char; len];
                    let path = input.string(&paths);
                    let p = if len == 0 { null_mut() } else { buf.as_mut_ptr() };
                    if rsl_checkpoint_latest(ptr(&path), p, len) == 0 {
                        assert!(buf.contains(&0), "the answer is NUL-terminated within the buffer");
                    }
                }
                10 => {
                    let capacity = usize::from(input.byte() % 8);
                    // SAFETY: all-zero RslNodes are valid.
                    let mut nodes = vec![std::mem::zeroed::<RslNode>(); capacity];
                    let mut count = 0usize;
                    let path = input.string(&paths);
                    let p = if capacity == 0 { null_mut() } else { nodes.as_mut_ptr() };
                    if rsl_checkpoint_replica_set(ptr(&path), p, capacity, &mut count) {
                        assert!(count <= capacity);
                    }
                }
                11 => {
                    let nodes: Vec<RslNode> = (0..input.byte() % 6).map(|_| input.node()).collect();
                    let path = input.string(&paths);
                    let version = u32::from(input.byte() % 9);
                    let p = if nodes.is_empty() { null() } else { nodes.as_ptr() };
                    rsl_checkpoint_change_replica_set(ptr(&path), version, p, nodes.len());
                }
                12 => {
                    let (a, b) =
                        (input.string(&["0123456789abcdef0123456789abcdef01234567"]), input.string(&["zz"]));
                    rsl_set_thumbprints_for_ssl(
                        ptr(&a),
                        ptr(&b),
                        input.byte() & 1 == 1,
                        input.byte() & 1 == 1,
                    );
                }
                _ => {
                    let nodes: Vec<RslNode> = (0..input.byte() % 4).map(|_| input.node()).collect();
                    let p = if nodes.is_empty() { null() } else { nodes.as_ptr() };
                    let (version, decree, config) =
                        (u32::from(input.byte() % 9), input.u64(), input.u64() as u32);
                    let dir = CString::new(dir_s.clone()).unwrap();
                    rsl_checkpoint_save(
                        dir.as_ptr(),
                        version,
                        decree % 1000,
                        config,
                        p,
                        nodes.len(),
                        None,
                        null_mut(),
                    );
                }
            }
        }
    }
    // SAFETY: a reader from rsl_checkpoint_reader_open (or null); a writer from create_writer (or null).
    unsafe {
        if !writer.is_null() {
            rsl_checkpoint_writer_close(writer);
        }
        rsl_checkpoint_reader_free(reader);
    }
});
