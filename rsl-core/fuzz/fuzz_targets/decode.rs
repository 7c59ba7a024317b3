//! Decodes arbitrary bytes as a message in every version (the input as is, then with its
//! version field set to each of 1–7 and its length field made to agree), as a packet and as
//! a log record. Nothing may panic, whatever decodes must re-encode to bytes that decode to
//! the same message, and its conversion to the core's message (what the gateway hands the
//! runtime) must not panic either.

#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use rsl_core::wire::{decode, decode_packet, decode_record, DecodeError, Limits, Version, WireMessage};

fn round_trip(result: Result<WireMessage, DecodeError>, limits: &Limits) {
    if let Ok(m) = result {
        let bytes = m.to_bytes().expect("a decoded message re-encodes");
        assert_eq!(decode(&Bytes::from(bytes), limits).expect("re-encoding decodes"), m);
        let _ = m.into_core();
    }
}

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    round_trip(decode(&Bytes::copy_from_slice(data), &limits), &limits);
    if data.len() >= 6 {
        for v in Version::ALL {
            let mut frame = data.to_vec();
            frame[..2].copy_from_slice(&v.as_u16().to_le_bytes());
            let len = frame.len() as u32;
            frame[2..6].copy_from_slice(&len.to_le_bytes());
            round_trip(decode(&Bytes::from(frame), &limits), &limits);
        }
    }
    round_trip(decode_packet(&Bytes::copy_from_slice(data), &limits), &limits);
    round_trip(decode_record(&Bytes::copy_from_slice(data), &limits), &limits);
});
