//! The clients: they submit requests with unique ids and never resubmit an id (a request
//! that was aborted is replaced by a new one), so "no id twice in the chosen sequence" is a
//! property the protocol must keep. A request's bytes encode its id, so the checkers can
//! tell which request a replica executed from the bytes alone.

use bytes::Bytes;
use rsl_core::paxos::Rng;

/// How hard the clients push, derived from the seed.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Virtual time between two client bursts.
    pub interval_us: u64,
    /// Most requests one burst submits.
    pub burst_max: u64,
    /// Clients stop submitting while this many requests are unresolved...
    pub unresolved_max: u64,
    /// ...unless a request stays unresolved this long (lost with a crashed primary).
    pub give_up_us: u64,
    /// Percent of bursts sent to a random replica instead of the primary (they may abort).
    pub misdirect_pct: u64,
    /// Requests the liveness phase must get acknowledged.
    pub liveness_target: usize,
}

impl Workload {
    pub fn from_rng(rng: &mut Rng) -> Self {
        Self {
            interval_us: 2_000 + rng.below(60_000),
            burst_max: 1 + rng.below(16),
            unresolved_max: 8 + rng.below(57),
            give_up_us: 3_000_000,
            misdirect_pct: rng.below(30),
            liveness_target: 5 + rng.below(20) as usize,
        }
    }
}

/// The bytes of request `id`: its id, little-endian, then a tag.
pub fn request(id: u64) -> Bytes {
    let mut bytes = id.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"req");
    Bytes::from(bytes)
}

/// The id a request's bytes encode; `None` for bytes no client produced.
pub fn request_id(bytes: &[u8]) -> Option<u64> {
    match bytes {
        [id @ .., b'r', b'e', b'q'] => Some(u64::from_le_bytes(id.try_into().ok()?)),
        _ => None,
    }
}
