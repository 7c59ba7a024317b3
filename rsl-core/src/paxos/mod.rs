//! The protocol: a pure, deterministic multi-Paxos replica (legacy RSL's `Legislator`).
//!
//! [`Replica`] never touches a socket, a file, a thread, the clock or an unseeded random
//! number generator. The driver feeds it [`Input`]s with [`Replica::step`], performs the
//! [`Action`]s it drains with [`Replica::drain_actions`], and calls `step(now, Tick)` again
//! by [`Replica::next_deadline`]. The same code runs in production and in the simulator.
//!
//! Layout: `replica` owns the state, the durability gate and the invariants; `acceptor`
//! handles votes and prepares; `proposer` is the primary; `election` covers status rounds,
//! preparing and NotAccepted; `learner` catches a replica up from a peer's journal.

mod acceptor;
mod config;
mod election;
mod io;
mod learner;
mod membership;
mod message;
mod proposer;
mod replica;
mod rng;
mod types;

pub use config::{Config, ConfigError};
pub use io::{AbortReason, Action, Cookie, Input, Record, Recovered, Token};
pub use learner::chosen_votes;
pub use message::{Body, Message, State, Status, Vote, VoteBody};
pub use proposer::PeerVote;
pub use replica::{Pointers, Replica};
pub use rng::Rng;
pub use types::{
    Ballot, Configuration, Decree, InvalidInput, Member, MemberId, MemberSet, MEMBER_ID_MAX_LEN,
    MEMBER_SET_COOKIE_MAX_LEN,
};
