//! `defunct.txt` (legacy §4.8, §5.5): the highest configuration number this replica knows
//! ended, a 4-byte little-endian u32. Legacy reads it at start to answer messages of those
//! configurations with DefunctConfiguration; this implementation knows the same from its
//! configuration (every configuration before the current one ended) and keeps the file
//! only so that a data directory moves between the two, either way.

use std::fs::File;
use std::io::{self, ErrorKind, Write};
use std::path::Path;

const FILE: &str = "defunct.txt";

/// The number recorded in `dir` (0 without a file); a file of another size is an error.
pub fn read(dir: &Path) -> Result<u32, String> {
    let path = dir.join(FILE);
    match std::fs::read(&path) {
        Ok(bytes) => <[u8; 4]>::try_from(bytes.as_slice()).map(u32::from_le_bytes).map_err(|_| {
            format!("{}: {} bytes, where legacy writes 4 (a little-endian u32)", path.display(), bytes.len())
        }),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(0),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Records `number` durably: written under `Temp/`, synced, renamed over the old file.
pub fn record(dir: &Path, number: u32) -> io::Result<()> {
    let temp = dir.join("Temp").join(FILE);
    let mut file = File::create(&temp)?;
    file.write_all(&number.to_le_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temp, dir.join(FILE))?;
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recorded_number_reads_back_and_a_bad_file_is_named() {
        let dir = std::env::temp_dir().join(format!("rsl-defunct-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("Temp")).unwrap();
        assert_eq!(read(&dir), Ok(0), "no file: nothing ended");
        record(&dir, 7).unwrap();
        assert_eq!(std::fs::read(dir.join(FILE)).unwrap(), [7, 0, 0, 0]);
        assert_eq!(read(&dir), Ok(7));
        std::fs::write(dir.join(FILE), b"7").unwrap();
        let err = read(&dir).unwrap_err();
        assert!(err.contains("defunct.txt: 1 bytes, where legacy writes 4"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
