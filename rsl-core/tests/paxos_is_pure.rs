//! The protocol core does no IO (STYLE §1): no file under `src/paxos/` may name the
//! network, the file system, threads, the clock, the environment, processes, std::io, an
//! unseeded RNG or an async runtime. Time comes in as `now`; randomness from `paxos::Rng`.

use std::path::Path;

const FORBIDDEN: [&str; 11] = [
    "std::net",
    "std::fs",
    "std::thread",
    "std::time",
    "Instant::now",
    "SystemTime::now",
    "std::env",
    "std::process",
    "std::io",
    "rand::",
    "tokio",
];

/// `(line number, forbidden word)` for every line of `source` that names one, directly or
/// through a grouped import (`use std::{io, net::TcpStream};`, possibly over several lines).
fn violations(source: &str) -> Vec<(usize, &'static str)> {
    let line_of = |offset: usize| source[..offset].matches('\n').count() + 1;
    let mut paths: Vec<(usize, String)> =
        source.lines().enumerate().map(|(i, l)| (i + 1, l.to_string())).collect();
    for (start, _) in source.match_indices("std::{") {
        let group = &source[start + "std::{".len()..];
        let items = group.split('}').next().unwrap_or_default();
        paths.extend(items.split(',').map(|item| (line_of(start), format!("std::{}", item.trim()))));
    }
    let mut found: Vec<(usize, &'static str)> = paths
        .iter()
        .flat_map(|(line, text)| {
            FORBIDDEN.iter().filter(move |word| text.contains(*word)).map(move |word| (*line, *word))
        })
        .collect();
    found.sort_unstable();
    found.dedup();
    found
}

#[test]
fn the_scanner_catches_a_planted_forbidden_line() {
    let planted = "use super::types::Decree;\nuse std::time::Instant;\nfn f() { let _ = Instant::now(); }\n";
    assert_eq!(violations(planted), [(2, "std::time"), (3, "Instant::now")]);
    let grouped = "use std::{\n    collections::BTreeMap,\n    io::Write,\n    net,\n};\n";
    assert_eq!(violations(grouped), [(1, "std::io"), (1, "std::net")]);
    assert_eq!(violations("use std::{collections::BTreeMap, sync::Arc};"), []);
    for word in FORBIDDEN {
        assert_eq!(violations(&format!("x {word} y")), [(1, word)]);
    }
}

#[test]
fn paxos_does_no_io() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/paxos");
    let mut scanned = 0;
    let mut found = Vec::new();
    let mut pending = vec![dir];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                scanned += 1;
                let source = std::fs::read_to_string(&path).unwrap();
                found.extend(
                    violations(&source)
                        .into_iter()
                        .map(|(line, word)| format!("{}:{line}: {word}", path.display())),
                );
            }
        }
    }
    assert!(scanned >= 10, "expected the paxos sources, scanned {scanned} files");
    assert!(found.is_empty(), "IO in the protocol core:\n{}", found.join("\n"));
}
