//! The learn port's untrusted streams: a FetchVotes answer (log records) read to its end,
//! and one length-prefixed message as a StatusQuery answer or a request. Nothing may
//! panic; every record returned must re-encode.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rsl_core::paxos::Record;
use rsl_core::transport::learn::read_votes;
use rsl_core::wire::{Limits, Version, WireMessage};

fuzz_target!(|data: &[u8]| {
    let limits = Limits { max_message_size: 1 << 20, ..Limits::default() };
    if let Ok(records) = read_votes(data, &limits) {
        for record in records {
            if let Record::Vote(vote) = record {
                let message = rsl_core::paxos::Message {
                    from: vote.ballot.member.clone(),
                    configuration: vote.configuration,
                    body: rsl_core::paxos::Body::Vote(vote),
                };
                // A vote read from a peer's log can be journaled again.
                let _ = WireMessage::from_core(&message, Version::V7).and_then(|w| w.to_bytes());
            }
        }
    }
});
