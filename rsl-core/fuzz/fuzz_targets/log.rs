//! A data directory whose `.log` files hold arbitrary bytes (split at the first byte's
//! choice into two consecutive logs): recovery must return records or an error naming
//! the file, never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rsl_core::storage::read_log_dir;

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("rsl-fuzz-log-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let split = data.first().map_or(0, |&b| usize::from(b) * data.len() / 256);
    std::fs::write(dir.join("1.log"), &data[..split]).unwrap();
    if split < data.len() {
        std::fs::write(dir.join("2.log"), &data[split..]).unwrap();
    }
    let _ = read_log_dir(&dir);
});
