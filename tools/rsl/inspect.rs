//! `rsl inspect <file-or-dir>...`: dumps and verifies legacy `.log` journals and `.codex`
//! checkpoints (a directory: every `*.log` and `*.codex` in it, logs in decree order).
//!
//! A log is listed record by record (offset, message, version, sender, decree, ballot, and
//! a vote's passed watermark and requests), each checksum verified; zeros after the last
//! record are a preallocated or unwritten tail, and a bad record followed only by zeros is
//! a torn last write (both reported, neither an error: restart cuts them). Anything else
//! that does not decode is corruption: the file and offset are printed and the exit
//! status is 1. A checkpoint's header is printed and every 4 MiB block's CRC-64 verified.

use bytes::Bytes;
use rsl_core::paxos::VoteBody;
use rsl_core::storage::checkpoint::CheckpointReader;
use rsl_core::wire::{decode, message_len, record_len, verify_checksum, Limits, WireBody};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `println!` that ends the program quietly when stdout closes (`rsl inspect … | head`).
macro_rules! say {
    ($($t:tt)*) => {
        if writeln!(std::io::stdout().lock(), $($t)*).is_err() {
            std::process::exit(0)
        }
    };
}

pub fn run(args: &[String]) -> ExitCode {
    if args.is_empty() {
        eprintln!("usage: rsl inspect <file.log | file.codex | data-dir>...");
        return ExitCode::from(2);
    }
    let mut failed = false;
    for arg in args {
        for path in files(Path::new(arg)) {
            let result = match path.extension().and_then(|e| e.to_str()) {
                Some("log") => inspect_log(&path),
                Some("codex") => inspect_checkpoint(&path),
                _ => Err("not a .log or .codex file".to_owned()),
            };
            if let Err(e) = result {
                say!("{}: CORRUPT: {e}", path.display());
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

/// `path` itself, or a directory's logs (in decree order) and checkpoints.
fn files(path: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(path) else { return vec![path.to_owned()] };
    let mut found: Vec<(u8, u64, PathBuf)> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            let kind = match p.extension()?.to_str()? {
                "log" => 0,
                "codex" => 1,
                _ => return None,
            };
            let number = p.file_stem()?.to_str()?.parse().ok()?;
            Some((kind, number, p))
        })
        .collect();
    found.sort();
    found.into_iter().map(|(_, _, p)| p).collect()
}

fn inspect_log(path: &Path) -> Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    let limits = Limits::default();
    say!("{}: {} bytes", path.display(), bytes.len());
    let (mut offset, mut records) = (0usize, 0usize);
    while offset < bytes.len() {
        let rest = &bytes[offset..];
        if rest.iter().all(|&b| b == 0) {
            say!("  {offset:>10}  zero tail, {} bytes", rest.len());
            break;
        }
        let claimed = message_len(rest, &limits).ok();
        let decoded = claimed
            .ok_or_else(|| "no valid record header".to_owned())
            .and_then(|len| rest.get(..len).map(|m| (len, m)).ok_or_else(|| "truncated record".to_owned()))
            .and_then(|(len, m)| {
                verify_checksum(m)
                    .and_then(|()| decode(&Bytes::copy_from_slice(m), &limits))
                    .map(|w| (len, w))
                    .map_err(|e| e.to_string())
            });
        let (len, wire) = match decoded {
            Ok(decoded) => decoded,
            Err(why) => {
                // A torn last write: nothing but zeros after the record's extent.
                let extent = record_len(claimed.unwrap_or(1)).min(rest.len());
                if rest[extent..].iter().all(|&b| b == 0) {
                    say!("  {offset:>10}  torn last record ({why}); restart cuts it");
                    break;
                }
                return Err(format!("offset {offset}: {why}"));
            }
        };
        let h = &wire.header;
        let detail = match &wire.body {
            WireBody::Vote(v) => {
                let value = match &v.value {
                    VoteBody::Requests(r) => {
                        format!("{} requests, {} bytes", r.len(), r.iter().map(|q| q.len()).sum::<usize>())
                    }
                    VoteBody::Reconfiguration(set) => format!("reconfiguration to {} members", set.len()),
                };
                let passed = v.passed.map_or(String::new(), |p| format!(" passed {}", p.0));
                format!("{value}{passed}{}", if v.relinquish { " relinquish" } else { "" })
            }
            _ => String::new(),
        };
        say!(
            "  {offset:>10}  {:?} v{} from {:?} decree {} ballot {} config {} {detail}",
            wire.body.id(),
            h.version.as_u16(),
            h.from.as_str(),
            h.decree.0,
            h.ballot,
            h.configuration
        );
        records += 1;
        offset += record_len(len);
    }
    say!("  {records} records, checksums OK");
    Ok(())
}

fn inspect_checkpoint(path: &Path) -> Result<(), String> {
    let mut reader = CheckpointReader::open(path).map_err(|e| e.to_string())?;
    let h = reader.header().clone();
    say!(
        "{}: checkpoint v{} of decree {} by {:?}, max ballot {}, state saved {}, {} payload bytes, block size {}",
        path.display(),
        h.version.as_u16(),
        h.last_executed.0,
        h.member_id.as_str(),
        h.max_ballot,
        h.state_saved,
        reader.size(),
        h.block_size
    );
    if let Some(c) = &h.configuration {
        let ids: Vec<&str> = c.members.iter().map(|m| m.id.as_str()).collect();
        say!("  configuration {} from decree {}: {ids:?}", c.number, c.initial_decree.0);
    }
    say!("  next vote: decree {} ballot {}", h.next_vote.header.decree.0, h.next_vote.header.ballot);
    reader.verify().map_err(|e| e.to_string())?;
    say!("  every block's checksum OK");
    Ok(())
}
