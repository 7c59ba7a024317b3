//! Identities and numbers every message carries: member ids, ballots, decrees, member sets
//! and configurations. Values here are validated on construction, so the rest of the core
//! never sees an over-long member id, an empty member set or a duplicate member.

use super::config::ConfigError;
use bytes::Bytes;
use std::cmp::Ordering;
use std::fmt;
use std::sync::Arc;

/// Longest member id legacy accepts (the wire field is 64 bytes with a terminating NUL).
pub const MEMBER_ID_MAX_LEN: usize = 63;
/// Largest member-set cookie a receiver accepts (legacy `s_MaxMemberSetCookieLength`).
pub const MEMBER_SET_COOKIE_MAX_LEN: usize = 8192;

/// A replica's name. Ordered as legacy orders them: a shorter id is smaller; ids of equal
/// length compare byte-wise (so "9" < "10" and "B" < "AA"). The empty id is the smallest.
#[derive(Clone, PartialEq, Eq, Hash, Default)]
pub struct MemberId(Arc<str>);

impl MemberId {
    /// Validates `id`: at most 63 bytes and no NUL (it must fit the legacy 64-byte field).
    pub fn new(id: &str) -> Result<Self, InvalidInput> {
        if id.len() > MEMBER_ID_MAX_LEN {
            return Err(InvalidInput::MemberIdTooLong(id.len()));
        }
        if id.contains('\0') {
            return Err(InvalidInput::MemberIdHasNul);
        }
        Ok(Self(id.into()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Ord for MemberId {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.len().cmp(&other.0.len()).then_with(|| self.0.as_bytes().cmp(other.0.as_bytes()))
    }
}

impl PartialOrd for MemberId {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", &*self.0)
    }
}

impl fmt::Display for MemberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A slot of the replicated log (legacy "decree" or "sequence number").
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Decree(pub u64);

impl Decree {
    pub fn next(self) -> Self {
        Decree(self.0 + 1)
    }

    /// `self + n`, saturating: decree numbers never wrap.
    pub fn plus(self, n: u64) -> Self {
        Decree(self.0.saturating_add(n))
    }
}

impl fmt::Display for Decree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A proposal number: `(number, member)`, compared number first, then member id.
#[derive(Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct Ballot {
    pub number: u32,
    pub member: MemberId,
}

impl Ballot {
    pub fn new(number: u32, member: MemberId) -> Self {
        Self { number, member }
    }

    pub fn is_empty(&self) -> bool {
        self.number == 0 && self.member.is_empty()
    }
}

impl fmt::Debug for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self)
    }
}

impl fmt::Display for Ballot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{},{}>", self.number, self.member)
    }
}

/// One member of a replica set, as legacy `RSLNode` describes it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Member {
    pub id: MemberId,
    /// IPv4 address in network order, as `inet_addr` returns it (opaque here).
    pub ip: u32,
    pub rsl_port: u16,
    pub learn_port: u16,
    pub host_name: String,
}

impl Member {
    /// A member known only by id, for tests and in-process clusters.
    pub fn named(id: &str) -> Result<Self, InvalidInput> {
        Ok(Self {
            id: MemberId::new(id)?,
            ip: 0x0100_007f,
            rsl_port: 1,
            learn_port: 2,
            host_name: String::new(),
        })
    }
}

/// A validated replica set: non-empty, no duplicate ids, no zero Paxos port, cookie within
/// the legacy limit (legacy `MemberSet::Verify`).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct MemberSet {
    members: Vec<Member>,
    cookie: Bytes,
}

impl MemberSet {
    pub fn new(members: Vec<Member>, cookie: Bytes) -> Result<Self, InvalidInput> {
        if members.is_empty() {
            return Err(InvalidInput::EmptyMemberSet);
        }
        if cookie.len() > MEMBER_SET_COOKIE_MAX_LEN {
            return Err(InvalidInput::CookieTooLong(cookie.len()));
        }
        for (i, m) in members.iter().enumerate() {
            if m.rsl_port == 0 {
                return Err(InvalidInput::ZeroPort(m.id.clone()));
            }
            if members[..i].iter().any(|o| o.id == m.id) {
                return Err(InvalidInput::DuplicateMember(m.id.clone()));
            }
        }
        Ok(Self { members, cookie })
    }

    /// A set of members known only by their ids.
    pub fn of_ids(ids: &[&str]) -> Result<Self, InvalidInput> {
        let members = ids.iter().map(|id| Member::named(id)).collect::<Result<_, _>>()?;
        Self::new(members, Bytes::new())
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn cookie(&self) -> &Bytes {
        &self.cookie
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn contains(&self, id: &MemberId) -> bool {
        self.members.iter().any(|m| &m.id == id)
    }

    pub fn ids(&self) -> impl Iterator<Item = &MemberId> {
        self.members.iter().map(|m| &m.id)
    }

    /// Votes needed to decide, counting the proposer itself: `n/2 + 1`.
    pub fn quorum(&self) -> usize {
        self.members.len() / 2 + 1
    }
}

/// The set of configuration 0: a replica not bootstrapped yet has no members.
impl Default for MemberSet {
    fn default() -> Self {
        Self { members: Vec::new(), cookie: Bytes::new() }
    }
}

/// A membership epoch: its number, the first decree it governs, and its members.
/// Configuration 0, with no members, is that of a replica waiting for `Bootstrap`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Configuration {
    pub number: u32,
    pub initial_decree: Decree,
    pub members: MemberSet,
}

/// Why the core refused an input. Untrusted input (messages, driver calls) is rejected with
/// one of these, never with a panic.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum InvalidInput {
    MemberIdTooLong(usize),
    MemberIdHasNul,
    EmptyMemberSet,
    DuplicateMember(MemberId),
    ZeroPort(MemberId),
    CookieTooLong(usize),
    /// The sender is not a member of the current configuration.
    UnknownMember(MemberId),
    /// A message that claims to come from this replica.
    FromSelf,
    /// A message stamped with another configuration number than ours.
    WrongConfiguration {
        ours: u32,
        theirs: u32,
    },
    /// A vote beyond the window its own watermark allows.
    DecreeFromTheFuture {
        decree: Decree,
        limit: Decree,
    },
    /// Two different values for the same (decree, ballot) from one proposer.
    ConflictingVote {
        decree: Decree,
        ballot: Ballot,
    },
    /// A promise that carries a vote its prepare could not have produced.
    BadPromise(&'static str),
    /// A vote whose watermark is not below its own decree.
    BadWatermark {
        decree: Decree,
        passed: Decree,
    },
    /// A driver completion that reports more than was asked for.
    BadCompletion(&'static str),
    /// Bootstrap of a replica that already accepted a vote (legacy `RSLAlreadyBootstrapped`).
    AlreadyBootstrapped,
    /// Bootstrap refused (legacy `RSLBootstrapFailed`).
    BootstrapFailed(&'static str),
    /// The replica is in a state where this input makes no sense.
    WrongState(&'static str),
    /// A tunable outside its range.
    BadConfig(ConfigError),
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MemberIdTooLong(n) => write!(f, "member id of {n} bytes (max {MEMBER_ID_MAX_LEN})"),
            Self::MemberIdHasNul => f.write_str("member id contains NUL"),
            Self::EmptyMemberSet => f.write_str("empty member set"),
            Self::DuplicateMember(id) => write!(f, "member {id} appears twice"),
            Self::ZeroPort(id) => write!(f, "member {id} has Paxos port 0"),
            Self::CookieTooLong(n) => {
                write!(f, "member-set cookie of {n} bytes (max {MEMBER_SET_COOKIE_MAX_LEN})")
            }
            Self::UnknownMember(id) => write!(f, "message from non-member {id}"),
            Self::FromSelf => f.write_str("message carries our own member id"),
            Self::WrongConfiguration { ours, theirs } => {
                write!(f, "message for configuration {theirs}, ours is {ours}")
            }
            Self::DecreeFromTheFuture { decree, limit } => {
                write!(f, "vote for decree {decree} beyond the window limit {limit}")
            }
            Self::ConflictingVote { decree, ballot } => {
                write!(f, "two different values for decree {decree} ballot {ballot}")
            }
            Self::BadPromise(why) => write!(f, "malformed PrepareAccepted: {why}"),
            Self::BadWatermark { decree, passed } => {
                write!(f, "vote {decree} claims passed watermark {passed}")
            }
            Self::BadCompletion(why) => write!(f, "bad completion from the driver: {why}"),
            Self::WrongState(why) => write!(f, "input not valid now: {why}"),
            Self::AlreadyBootstrapped => f.write_str("already bootstrapped"),
            Self::BootstrapFailed(why) => write!(f, "bootstrap failed: {why}"),
            Self::BadConfig(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for InvalidInput {}
