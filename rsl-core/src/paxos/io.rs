//! What goes into the core ([`Input`]) and what comes out ([`Action`]). The driver performs
//! actions in the order they are drained; the orderings that safety needs (persist before
//! revealing, execute before abort) are already built into that order by the core.

use super::message::{Message, Vote};
use super::types::{Ballot, Decree, MemberId, MemberSet};
use bytes::Bytes;
use std::fmt;
use std::sync::Arc;

/// The application's handle for a replicated request; handed back on execute or abort.
pub type Cookie = u64;

/// Names one `Persist` action. Tokens grow by one per action; completions are cumulative.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug, Default, Hash)]
pub struct Token(pub u64);

/// A durable journal record.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Record {
    /// An accepted (or proposed) vote.
    Vote(Arc<Vote>),
    /// A promise not to accept ballots below this one (legacy logs the Prepare).
    Promise(Ballot),
}

/// What the driver read from disk at start: the decree the loaded checkpoint contains
/// (0 when none) and the journal records after it, in the order they were written.
#[derive(Clone, Debug, Default)]
pub struct Recovered {
    pub checkpoint: Decree,
    pub records: Vec<Record>,
}

/// Why a request goes back to the application unexecuted (the runtime maps it to legacy's
/// `RSLResponseCode`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum AbortReason {
    NotPrimary,
    ShuttingDown,
}

/// One input to [`super::Replica::step`].
#[derive(Clone, Debug)]
pub enum Input {
    /// Time passed; handle expired timers.
    Tick,
    /// A message from a peer.
    Message(Message),
    /// `ReplicateRequest`: `exclusive` puts the request in a decree of its own; `last`
    /// (legacy `isLastDecree`) makes it the last decree this primary proposes.
    Replicate { request: Bytes, cookie: Cookie, exclusive: bool, last: bool },
    /// Every `Persist` with a token ≤ this one is durable.
    Persisted(Token),
    /// The application executed every decree ≤ this one.
    Executed(Decree),
    /// Chosen votes fetched from `from` in answer to [`Action::FetchVotes`], in decree
    /// order; empty when the fetch failed.
    Learned { from: MemberId, votes: Vec<Arc<Vote>> },
    /// The answer to [`Action::AskCanBecomePrimary`]: `None` refuses, `Some(cookie)`
    /// allows and supplies the primary cookie.
    CanBecomePrimary(Option<Bytes>),
    /// Whether to answer Prepares and votes (the application's `AcceptMessageFromReplica`
    /// verdict, or legacy's global flag).
    AcceptMessages(bool),
    /// The value attached to every VoteAccepted this replica sends (legacy v6 payload).
    SetVotePayload(u64),
    /// Primary only: propose a relinquish vote and step down once it is chosen.
    Relinquish,
    /// Primary only: decide `members` as the next configuration (legacy
    /// `ChangeConfiguration`). The decision executes as a decree whose body is the set;
    /// `cookie` comes back with it on this replica, or with `AbortReconfiguration`.
    ChangeConfiguration { members: MemberSet, cookie: Cookie },
    /// Legacy `Bootstrap`: a replica of configuration 0 adopts `members` as configuration 1
    /// and tells them; asked again with the same set before it is bootstrapped (it
    /// accepted a vote), it tells them again.
    Bootstrap(MemberSet),
    /// Start an election now rather than when the election timer fires.
    AttemptPromotion,
    /// Decrees in flight from now on: the runtime raises it from 1 when the protocol
    /// version rises to 7. A smaller window only holds back new proposals.
    SetWindow(u64),
    /// Replace the base election delay (legacy `ChangeElectionDelay`).
    ChangeElectionDelay { delay_us: u64 },
    /// Stop (legacy Unload): pending requests are aborted with `ShuttingDown`; afterwards
    /// the replica only answers status queries.
    Shutdown,
    /// The newest checkpoint saved and the first decree the journal still holds, which rise
    /// as checkpoints are saved and the logs they cover deleted; status answers and Joins
    /// report them. Lower values than those known change nothing.
    Retained { checkpoint: Decree, first_logged: Decree },
}

/// Something the driver must do, in drain order.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum Action {
    Send {
        to: MemberId,
        message: Message,
    },
    /// Append `record` to the journal; report [`Input::Persisted`] once it is durable.
    Persist {
        token: Token,
        record: Record,
    },
    /// Execute a chosen decree. `cookies` holds one cookie per request on the replica that
    /// submitted them, and is `None` everywhere else. A reconfiguration decree (its body
    /// is the new set; its one cookie is the `ChangeConfiguration` cookie) ends the
    /// configuration: from the next decree on, [`super::Replica::configuration`] is the
    /// new one.
    Execute {
        vote: Arc<Vote>,
        cookies: Option<Vec<Cookie>>,
    },
    /// Return a request to the application unexecuted.
    Abort {
        cookie: Cookie,
        reason: AbortReason,
    },
    /// A replica-set change this replica was asked for will not be decided by it (legacy
    /// `AbortChangeConfiguration`); another primary may still decide the same change.
    AbortReconfiguration {
        cookie: Cookie,
        reason: AbortReason,
    },
    /// Save `members` as configuration 1 (legacy: checkpoint `0.codex`) before performing
    /// any later action: a bootstrapped replica must come back bootstrapped.
    PersistBootstrap(MemberSet),
    /// Legacy `NotifyStatus(isPrimary)`.
    NotifyStatus {
        primary: bool,
    },
    /// Legacy `NotifyPrimaryRecovered`: every decree accepted before the election executed.
    NotifyPrimaryRecovered,
    /// Stream the chosen votes from `first` on out of `from`'s journal (the learn port),
    /// then report [`Input::Learned`].
    FetchVotes {
        from: MemberId,
        first: Decree,
    },
    /// Legacy FetchCheckpoint on a Join (see [`super::Replica`]'s "join later"): copy the
    /// newest checkpoint (at least `decree`) of `from`, whose learn port is `learn_port`
    /// at the address its messages come from, then stop so that a restart loads it. Only
    /// a replica that never took the bootstrap asks for this.
    CopyCheckpoint {
        from: MemberId,
        learn_port: u16,
        decree: Decree,
    },
    /// Ask the application's `CanBecomePrimary`; answer with [`Input::CanBecomePrimary`].
    AskCanBecomePrimary,
    /// The relinquish vote was chosen, or a successor deposed this relinquishing primary
    /// first; legacy shuts the process down here.
    Relinquished,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Action::Send { to, message } => write!(f, "send {to} <- {message}"),
            Action::Persist { token, record } => match record {
                Record::Vote(v) => write!(f, "persist #{} vote {} {}", token.0, v.decree, v.ballot),
                Record::Promise(b) => write!(f, "persist #{} promise {b}", token.0),
            },
            Action::Execute { vote, cookies } => write!(
                f,
                "execute {} ({} requests{})",
                vote.decree,
                vote.requests().len(),
                if cookies.is_some() { ", ours" } else { "" }
            ),
            Action::Abort { cookie, reason } => write!(f, "abort cookie {cookie} {reason:?}"),
            Action::AbortReconfiguration { cookie, reason } => {
                write!(f, "abort reconfiguration cookie {cookie} {reason:?}")
            }
            Action::NotifyStatus { primary } => write!(f, "notify status primary={primary}"),
            Action::PersistBootstrap(set) => write!(f, "persist bootstrap of {} members", set.len()),
            Action::NotifyPrimaryRecovered => f.write_str("notify primary recovered"),
            Action::FetchVotes { from, first } => write!(f, "fetch votes from {from} at {first}"),
            Action::CopyCheckpoint { from, decree, .. } => write!(f, "copy checkpoint {decree}+ from {from}"),
            Action::AskCanBecomePrimary => f.write_str("ask can become primary"),
            Action::Relinquished => f.write_str("relinquished"),
        }
    }
}
