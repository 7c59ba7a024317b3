//! The decoder as a gateway for hostile input: a million random and mutated frames (valid
//! messages of every id and version with bytes flipped, integers replaced by boundary
//! values, cut, extended, spliced, re-versioned) never panic, and whatever decodes
//! re-encodes to something that decodes to the same message.

mod wire_support;

use bytes::Bytes;
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use rsl_core::paxos::Rng;
use rsl_core::wire::{decode, decode_packet, decode_record, fingerprint, Limits, Version, WireMessage};
use std::time::Instant;
use wire_support::{message_ids, message_with};

const FRAMES: u64 = 1_000_000;

/// Valid encodings of every id in every version, a few each.
fn corpus() -> Vec<Vec<u8>> {
    let mut runner = TestRunner::deterministic();
    let mut out = Vec::new();
    for v in Version::ALL {
        for id in message_ids() {
            for _ in 0..3 {
                let m = message_with(v, id).new_tree(&mut runner).unwrap().current();
                out.push(m.to_bytes().unwrap());
            }
        }
    }
    out
}

fn interesting(rng: &mut Rng, len: usize) -> u64 {
    const VALUES: [u64; 12] = [0, 1, 2, 7, 8, 48, 52, 164, 172, 255, 256, 8193];
    match rng.below(4) {
        0 => VALUES[rng.below(VALUES.len() as u64) as usize],
        1 => u64::MAX >> (8 * rng.below(8)),
        2 => (len as u64).wrapping_add(rng.below(5)).wrapping_sub(2),
        _ => rng.next_u64(),
    }
}

fn mutate(rng: &mut Rng, corpus: &[Vec<u8>], frame: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let len = frame.len().max(1) as u64;
        let at = rng.below(len) as usize;
        match rng.below(8) {
            0 | 1 => {
                if let Some(b) = frame.get_mut(at) {
                    *b ^= 1 << rng.below(8);
                }
            }
            2 | 3 => {
                let width = [1, 2, 4, 8][rng.below(4) as usize];
                let value = interesting(rng, frame.len()).to_le_bytes();
                let end = (at + width).min(frame.len());
                let n = end.saturating_sub(at);
                frame[at..end].copy_from_slice(&value[..n]);
            }
            4 => frame.truncate(at),
            5 => frame.extend((0..rng.below(40)).map(|_| rng.next_u64() as u8)),
            6 => {
                let other = &corpus[rng.below(corpus.len() as u64) as usize];
                let from = rng.below(other.len() as u64) as usize;
                let take = (rng.below(200) as usize).min(other.len() - from);
                frame.splice(
                    at.min(frame.len())..at.min(frame.len()),
                    other[from..from + take].iter().copied(),
                );
            }
            _ => {
                if frame.len() >= 2 {
                    frame[..2].copy_from_slice(&(1 + rng.below(7) as u16).to_le_bytes());
                }
            }
        }
    }
    // Usually make the length field agree, so the decoder gets past it and into the body.
    if rng.below(4) != 0 && frame.len() >= 6 {
        let len = frame.len() as u32;
        frame[2..6].copy_from_slice(&len.to_le_bytes());
    }
}

/// Whatever decodes must re-encode, and the re-encoding must decode to the same message.
fn check(result: Result<WireMessage, rsl_core::wire::DecodeError>, limits: &Limits) -> bool {
    let Ok(m) = result else { return false };
    let bytes = m.to_bytes().unwrap_or_else(|e| panic!("decoded but cannot re-encode: {e}: {m:?}"));
    assert_eq!(decode(&Bytes::from(bytes), limits).unwrap(), m);
    true
}

#[test]
fn a_million_random_and_mutated_frames_never_panic_and_decoded_ones_round_trip() {
    let started = Instant::now();
    let limits = Limits::default();
    let corpus = corpus();
    let mut rng = Rng::new(0x5EED_F00D_FACE);
    let mut decoded = 0u64;
    for i in 0..FRAMES {
        let mut frame = if i % 16 == 0 {
            // Random bytes behind a plausible prefix.
            let mut f: Vec<u8> = (0..rng.below(400)).map(|_| rng.next_u64() as u8).collect();
            if f.len() >= 20 {
                f[..2].copy_from_slice(&(1 + rng.below(7) as u16).to_le_bytes());
                f[14..18].copy_from_slice(&0xF00D_FACEu32.to_le_bytes());
                f[18..20].copy_from_slice(&(rng.below(16) as u16).to_le_bytes());
            }
            f
        } else {
            corpus[rng.below(corpus.len() as u64) as usize].clone()
        };
        mutate(&mut rng, &corpus, &mut frame);
        match i % 32 {
            // As a packet with a valid checksum, so the packet layer passes it on.
            0 => {
                let mut packet = vec![0u8; 20];
                packet.extend_from_slice(&frame);
                let size = packet.len() as u32;
                packet[..4].copy_from_slice(&size.to_le_bytes());
                let checksum = fingerprint(&packet);
                packet[12..20].copy_from_slice(&checksum.to_le_bytes());
                decoded += u64::from(check(decode_packet(&Bytes::from(packet), &limits), &limits));
            }
            // As a log record (checksum verified, so mostly rejected).
            1 => {
                frame.resize(frame.len().div_ceil(512) * 512, 0);
                decoded += u64::from(check(decode_record(&Bytes::from(frame), &limits), &limits));
            }
            _ => decoded += u64::from(check(decode(&Bytes::from(frame), &limits), &limits)),
        }
    }
    println!("{FRAMES} frames, {decoded} decoded, {:?}", started.elapsed());
    // The mutations must reach past the header checks often enough to mean something.
    assert!(decoded > FRAMES / 50, "only {decoded} of {FRAMES} frames decoded");
}
