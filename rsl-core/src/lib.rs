//! rsl-core: a multi-Paxos replication engine compatible with legacy RSL.
//!
//! - [`paxos`] is the protocol: a pure, deterministic state machine with no IO.
//! - [`local`] runs several replicas of one cluster inside one process over channels and an
//!   in-memory journal, with a minimal [`local::App`], for benchmark P1 and `rsl demo`.
//! - [`wire`] is the legacy RSL wire format (versions 1–6) and rsl's version 7: messages,
//!   packets, log records and the fingerprint, with no IO.
//! - [`storage`] is the journal: legacy `.log` files or a memory-mapped (NVM) log, and
//!   recovery from either.
//! - [`runtime`] runs one replica of an application: [`StateMachine`] is legacy
//!   `RSLStateMachine`'s callbacks, [`Replica`] its methods; a durable file journal with
//!   group commit, the Paxos and learn ports over TCP, an engine thread, an execute thread
//!   and fast-read workers; checkpoints and offline [`runtime::replay`].
//! - [`transport`] moves protocol messages between replicas: the Paxos-port TCP transport
//!   with its validation gateway.

pub mod local;
pub mod paxos;
pub mod runtime;
pub mod storage;
pub mod transport;
pub mod wire;

pub use runtime::{Replica, ResponseCode, RslConfig, StateMachine};
