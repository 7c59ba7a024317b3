//! rsl-core: a multi-Paxos replication engine compatible with legacy RSL.
//!
//! - [`paxos`] is the protocol: a pure, deterministic state machine with no IO.
//! - [`local`] runs several replicas of one cluster inside one process over channels and an
//!   in-memory journal; the benchmarks and the demo use it until the real runtime lands.

pub mod local;
pub mod paxos;
