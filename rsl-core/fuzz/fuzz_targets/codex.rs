//! A `.codex` checkpoint of arbitrary bytes: the header decoder, then the reader opening,
//! verifying and reading the file through. Errors are expected; panics are findings.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rsl_core::storage::checkpoint::{CheckpointHeader, CheckpointReader};

fuzz_target!(|data: &[u8]| {
    let _ = CheckpointHeader::decode(data);
    let path = std::env::temp_dir().join(format!("rsl-fuzz-{}.codex", std::process::id()));
    std::fs::write(&path, data).unwrap();
    if let Ok(mut reader) = CheckpointReader::open(&path) {
        let _ = reader.verify();
        if reader.seek(0).is_ok() {
            while let Ok(chunk) = reader.get_data_pointer(4096) {
                if chunk.is_empty() {
                    break;
                }
            }
        }
    }
});
