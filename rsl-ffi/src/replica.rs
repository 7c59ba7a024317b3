//! The state machine over the C ABI: the host's callbacks ([`RslCallbacks`], legacy
//! `RSLStateMachine`'s virtuals) and `rsl_replica_*` (its methods), on
//! [`rsl_core::Replica`]. Cookies are the host's `void *`, handed back untouched.

use crate::checkpoint::{RslCheckpointReader, RslCheckpointWriter};
use crate::types::{
    member_set, set_field, RslConfigParam, RslNode, RslReplicaHealth, RslStats, RslSystemTime,
};
use crate::{c_str, guard, RslResult};
use libc::{c_char, c_void};
use rsl_core::paxos::{Decree, Member, MemberId};
use rsl_core::runtime::NodeError;
use rsl_core::storage::checkpoint::{CheckpointReader, CheckpointWriter};
use rsl_core::wire::Version;
use rsl_core::{Replica, ResponseCode, RslConfig, StateMachine};
use std::ffi::CString;
use std::io;
use std::path::Path;
use std::time::{Duration, SystemTime};

/// The host's callbacks (legacy `RSLStateMachine`'s virtuals). `userdata` is passed back
/// to each. A null entry gets legacy's default behaviour where legacy has one (true for
/// `can_become_primary` and `accept_message_from_replica`, nothing for notifications); the
/// nine required ones must be set. Each runs under the legacy callback lock of its class.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RslCallbacks {
    pub userdata: *mut c_void,
    /// `reader` is null when there is no checkpoint to load; false refuses it.
    pub load_state: Option<unsafe extern "C" fn(*mut c_void, *mut RslCheckpointReader) -> bool>,
    pub before_execute_replicated_requests: Option<unsafe extern "C" fn(*mut c_void)>,
    pub after_execute_replicated_requests: Option<unsafe extern "C" fn(*mut c_void)>,
    /// (userdata, request, length, cookie or null, *save_state)
    pub execute_replicated_request:
        Option<unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut c_void, *mut bool)>,
    pub execute_fast_read_request: Option<unsafe extern "C" fn(*mut c_void, *const u8, usize, *mut c_void)>,
    /// (userdata, legacy response code, cookie)
    pub abort_request: Option<unsafe extern "C" fn(*mut c_void, u32, *mut c_void)>,
    /// Legacy `TrySaveState`: false declines (automatic checkpoints stop until allowed).
    pub save_state: Option<unsafe extern "C" fn(*mut c_void, *mut RslCheckpointWriter) -> bool>,
    pub state_saved: Option<unsafe extern "C" fn(*mut c_void, u64, *const c_char)>,
    pub notify_status: Option<unsafe extern "C" fn(*mut c_void, bool)>,
    pub notify_primary_recovered: Option<unsafe extern "C" fn(*mut c_void)>,
    /// Writes up to `*len` (8192) cookie bytes to `cookie` and sets `*len`; false refuses.
    pub can_become_primary: Option<unsafe extern "C" fn(*mut c_void, *mut u8, *mut usize) -> bool>,
    /// (userdata, member id, primary cookie, length)
    pub accept_message_from_replica:
        Option<unsafe extern "C" fn(*mut c_void, *const c_char, *const u8, usize) -> bool>,
    pub shut_down: Option<unsafe extern "C" fn(*mut c_void, u32)>,
    /// Legacy `NotifyConfigurationChanged`: (userdata, the change's cookie on the replica
    /// that asked for it, null elsewhere).
    pub notify_configuration_changed: Option<unsafe extern "C" fn(*mut c_void, *mut c_void)>,
    /// Legacy `AbortChangeConfiguration`: (userdata, legacy response code, cookie).
    pub abort_change_configuration: Option<unsafe extern "C" fn(*mut c_void, u32, *mut c_void)>,
    /// Legacy `StateCopied`: (userdata, decree, path of the copy or null, cookie; null for
    /// the primary's own copy of a secondary's checkpoint).
    pub state_copied: Option<unsafe extern "C" fn(*mut c_void, u64, *const c_char, *mut c_void)>,
    /// Legacy `ResolveNode`: (userdata, a peer's node to fill in); false if it cannot.
    pub resolve_node: Option<unsafe extern "C" fn(*mut c_void, *mut RslNode) -> bool>,
}

/// The host's `void *` cookie.
pub(crate) struct Cookie(pub(crate) *mut c_void);

// SAFETY: the cookie is the host's opaque token; rsl only carries it between threads and
// hands it back, as legacy does.
unsafe impl Send for Cookie {}

/// The host's state machine behind its callbacks.
pub(crate) struct Host(RslCallbacks);

// SAFETY: legacy's contract: the host's callbacks may be called from rsl's threads, under
// the callback lock of their class (spec §2), which `Replica` takes before each call.
unsafe impl Send for Host {}
// SAFETY: as above; shared-class callbacks may run concurrently, as legacy's do.
unsafe impl Sync for Host {}

impl StateMachine for Host {
    type Cookie = Cookie;

    fn load_state(&mut self, reader: Option<&mut CheckpointReader>) -> bool {
        let Some(f) = self.0.load_state else { return false };
        let ud = self.0.userdata;
        match reader {
            // SAFETY: the host's callback, called with its userdata and a handle valid
            // for the call.
            Some(reader) => RslCheckpointReader::lend(reader, |r| unsafe { f(ud, r) }),
            // SAFETY: as above, with no checkpoint.
            None => unsafe { f(ud, std::ptr::null_mut()) },
        }
    }

    fn execute_replicated_request(&mut self, request: &[u8], cookie: Option<Cookie>, save_state: &mut bool) {
        if let Some(f) = self.0.execute_replicated_request {
            let cookie = cookie.map_or(std::ptr::null_mut(), |c| c.0);
            // SAFETY: the request bytes and `save_state` live through the call.
            unsafe { f(self.0.userdata, request.as_ptr(), request.len(), cookie, save_state) }
        }
    }

    fn before_execute_replicated_requests(&mut self) {
        if let Some(f) = self.0.before_execute_replicated_requests {
            // SAFETY: the host's callback with its userdata.
            unsafe { f(self.0.userdata) }
        }
    }

    fn after_execute_replicated_requests(&mut self) {
        if let Some(f) = self.0.after_execute_replicated_requests {
            // SAFETY: the host's callback with its userdata.
            unsafe { f(self.0.userdata) }
        }
    }

    fn execute_fast_read_request(&self, request: &[u8], cookie: Cookie) {
        if let Some(f) = self.0.execute_fast_read_request {
            // SAFETY: the request bytes live through the call.
            unsafe { f(self.0.userdata, request.as_ptr(), request.len(), cookie.0) }
        }
    }

    fn abort_request(&self, status: ResponseCode, cookie: Cookie) {
        if let Some(f) = self.0.abort_request {
            // SAFETY: the host's callback with its userdata and its own cookie.
            unsafe { f(self.0.userdata, status as u32, cookie.0) }
        }
    }

    fn save_state(&self, writer: &mut CheckpointWriter) -> io::Result<()> {
        self.try_save_state(writer).map(drop)
    }

    fn try_save_state(&self, writer: &mut CheckpointWriter) -> io::Result<bool> {
        let Some(f) = self.0.save_state else { return Ok(false) };
        let ud = self.0.userdata;
        // SAFETY: the handle is valid for the call.
        Ok(RslCheckpointWriter::lend(writer, |w| unsafe { f(ud, w) }))
    }

    fn state_saved(&self, decree: Decree, path: &Path) {
        let (Some(f), Ok(path)) = (self.0.state_saved, CString::new(path.to_string_lossy().as_bytes()))
        else {
            return;
        };
        // SAFETY: the path string lives through the call.
        unsafe { f(self.0.userdata, decree.0, path.as_ptr()) }
    }

    fn notify_status(&mut self, is_primary: bool) {
        if let Some(f) = self.0.notify_status {
            // SAFETY: the host's callback with its userdata.
            unsafe { f(self.0.userdata, is_primary) }
        }
    }

    fn notify_primary_recovered(&mut self) {
        if let Some(f) = self.0.notify_primary_recovered {
            // SAFETY: the host's callback with its userdata.
            unsafe { f(self.0.userdata) }
        }
    }

    fn can_become_primary(&self) -> Option<Vec<u8>> {
        let Some(f) = self.0.can_become_primary else { return Some(Vec::new()) };
        let mut cookie = vec![0u8; 8192];
        let mut len = cookie.len();
        // SAFETY: `cookie` has `len` writable bytes; the host writes at most that many.
        let allowed = unsafe { f(self.0.userdata, cookie.as_mut_ptr(), &mut len) };
        cookie.truncate(len.min(8192));
        allowed.then_some(cookie)
    }

    fn resolve_node(&self, member: &mut Member) -> bool {
        let Some(f) = self.0.resolve_node else { return true };
        let mut node = RslNode::from_member(member);
        // SAFETY: `node` is a valid node, writable through the call.
        if !unsafe { f(self.0.userdata, &mut node) } {
            return false;
        }
        node.member().map(|resolved| *member = resolved).is_some()
    }

    fn accept_message_from_replica(&self, from: &MemberId, primary_cookie: &[u8]) -> bool {
        let (Some(f), Ok(id)) = (self.0.accept_message_from_replica, CString::new(from.as_str())) else {
            return true;
        };
        // SAFETY: the id and cookie bytes live through the call.
        unsafe { f(self.0.userdata, id.as_ptr(), primary_cookie.as_ptr(), primary_cookie.len()) }
    }

    fn state_copied(&self, decree: Decree, path: Option<&Path>, cookie: Option<Cookie>) {
        let Some(f) = self.0.state_copied else { return };
        let path = path.and_then(|p| CString::new(p.to_string_lossy().as_bytes()).ok());
        let path_ptr = path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr());
        let cookie = cookie.map_or(std::ptr::null_mut(), |c| c.0);
        // SAFETY: the path string (or null) lives through the call; the cookie is the host's.
        unsafe { f(self.0.userdata, decree.0, path_ptr, cookie) }
    }

    fn notify_configuration_changed(&mut self, cookie: Option<Cookie>) {
        if let Some(f) = self.0.notify_configuration_changed {
            // SAFETY: the host's callback with its userdata and its own cookie (or null).
            unsafe { f(self.0.userdata, cookie.map_or(std::ptr::null_mut(), |c| c.0)) }
        }
    }

    fn abort_change_configuration(&mut self, status: ResponseCode, cookie: Cookie) {
        if let Some(f) = self.0.abort_change_configuration {
            // SAFETY: the host's callback with its userdata and its own cookie.
            unsafe { f(self.0.userdata, status as u32, cookie.0) }
        }
    }

    fn shut_down(&mut self, status: ResponseCode) {
        if let Some(f) = self.0.shut_down {
            // SAFETY: the host's callback with its userdata.
            unsafe { f(self.0.userdata, status as u32) }
        }
    }
}

/// A running replica (legacy `RSLStateMachine` after `Initialize`).
pub struct RslReplica {
    replica: Replica<Host>,
}

fn version(v: u32) -> Option<Version> {
    u16::try_from(v).ok().and_then(Version::from_u16)
}

/// Legacy `Initialize` (the API with an initial member set, versions 1–7): restores the
/// state (`load_state`), replays the journal and starts the replica. Returns
/// `RSL_RESULT_SUCCESS` with `*out` set, `RSL_RESULT_INVALID_PARAMETER` (a null pointer, an
/// invalid member set or version, `me` not a member, a required callback missing),
/// `RSL_RESULT_CONFIG` (a value out of range) or `RSL_RESULT_START`; the log says why.
///
/// # Safety
/// `config`, `me` and `callbacks` point to valid structs, `members` to `count` nodes, and
/// `out` is writable. The callbacks stay callable until the replica is unloaded.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_initialize(
    config: *const RslConfigParam,
    members: *const RslNode,
    count: usize,
    me: *const RslNode,
    protocol_version: u32,
    callbacks: *const RslCallbacks,
    out: *mut *mut RslReplica,
) -> RslResult {
    guard(RslResult::RSL_RESULT_PANIC, || {
        if config.is_null() || members.is_null() || me.is_null() || callbacks.is_null() || out.is_null() {
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        }
        // SAFETY: all non-null and valid per the contract.
        let (config, nodes, me, callbacks) =
            unsafe { (&*config, std::slice::from_raw_parts(members, count), &*me, *callbacks) };
        let (Some(version), Some(members), Some(me)) =
            (version(protocol_version), member_set(nodes, &[]), me.member())
        else {
            tracing::error!(
                "Initialize: invalid member set, self node or protocol version {protocol_version}"
            );
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        };
        start(out, config, callbacks, |config, host| {
            Replica::initialize(config, members, &me.id, version, host)
        })
    })
}

/// Legacy `Initialize` without a member set (the new API, versions 4–7): a replica never
/// bootstrapped waits in configuration 0 for `rsl_replica_bootstrap` or a member's
/// Bootstrap message. Results as `rsl_replica_initialize` (a version below 4 is
/// `RSL_RESULT_INVALID_PARAMETER`).
///
/// # Safety
/// `config`, `me` and `callbacks` point to valid structs and `out` is writable. The
/// callbacks stay callable until the replica is unloaded.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_initialize_for_bootstrap(
    config: *const RslConfigParam,
    me: *const RslNode,
    protocol_version: u32,
    callbacks: *const RslCallbacks,
    out: *mut *mut RslReplica,
) -> RslResult {
    guard(RslResult::RSL_RESULT_PANIC, || {
        if config.is_null() || me.is_null() || callbacks.is_null() || out.is_null() {
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        }
        // SAFETY: all non-null and valid per the contract.
        let (config, me, callbacks) = unsafe { (&*config, &*me, *callbacks) };
        let (Some(version), Some(me)) =
            (version(protocol_version).filter(|v| *v >= Version::V4), me.member())
        else {
            tracing::error!(
                "Initialize: an invalid self node, or protocol version {protocol_version} (4 or higher)"
            );
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        };
        start(out, config, callbacks, |config, host| {
            Replica::initialize_for_bootstrap(config, me, version, host)
        })
    })
}

/// Checks the callbacks and the configuration, then starts the replica into `*out`.
fn start(
    out: *mut *mut RslReplica,
    config: &RslConfigParam,
    callbacks: RslCallbacks,
    initialize: impl FnOnce(&RslConfig, Host) -> Result<Replica<Host>, NodeError>,
) -> RslResult {
    let required = [
        callbacks.load_state.is_some(),
        callbacks.execute_replicated_request.is_some(),
        callbacks.execute_fast_read_request.is_some(),
        callbacks.abort_request.is_some(),
        callbacks.save_state.is_some(),
        callbacks.notify_status.is_some(),
        callbacks.shut_down.is_some(),
    ];
    if required.contains(&false) {
        tracing::error!("Initialize: a required callback is missing");
        return RslResult::RSL_RESULT_INVALID_PARAMETER;
    }
    let config = config.to_config();
    if let Err(e) = config.validate() {
        tracing::error!("{e}");
        return RslResult::RSL_RESULT_CONFIG;
    }
    match initialize(&config, Host(callbacks)) {
        Ok(replica) => {
            // SAFETY: `out` is writable per the callers' contract.
            unsafe { *out = Box::into_raw(Box::new(RslReplica { replica })) };
            RslResult::RSL_RESULT_SUCCESS
        }
        Err(e) => {
            tracing::error!("Initialize failed: {e}");
            RslResult::RSL_RESULT_START
        }
    }
}

/// Runs `f` on the replica behind `r`, or returns `invalid` for a null handle.
pub(crate) fn with<T>(r: *const RslReplica, invalid: T, f: impl FnOnce(&Replica<Host>) -> T) -> T {
    // SAFETY: a non-null handle came from `rsl_replica_initialize` and is not unloaded.
    match unsafe { r.as_ref() } {
        Some(r) => guard(invalid, || f(&r.replica)),
        None => invalid,
    }
}

/// The bytes of a request; `None` for a null pointer or an empty request.
///
/// # Safety
/// `data` points to `len` readable bytes.
unsafe fn request<'a>(data: *const c_void, len: usize) -> Option<&'a [u8]> {
    // SAFETY: per the contract.
    (!data.is_null() && len > 0).then(|| unsafe { std::slice::from_raw_parts(data.cast::<u8>(), len) })
}

pub(crate) fn code<C>(result: Result<(), (ResponseCode, C)>) -> RslResult {
    result.map_or_else(|(code, _)| code.into(), |()| RslResult::RSL_RESULT_SUCCESS)
}

/// Legacy `ReplicateRequest` / `ReplicateRequestExclusiveVote`: the bytes are copied;
/// `cookie` comes back in `execute_replicated_request` or `abort_request`.
///
/// # Safety
/// `r` is a live replica; `data` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_replicate(
    r: *const RslReplica,
    data: *const c_void,
    len: usize,
    cookie: *mut c_void,
    exclusive: bool,
    is_last_decree: bool,
) -> RslResult {
    with(r, RslResult::RSL_RESULT_INVALID_PARAMETER, |replica| {
        // SAFETY: per the contract.
        let Some(request) = (unsafe { request(data, len) }) else {
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        };
        let cookie = Cookie(cookie);
        code(if exclusive || is_last_decree {
            replica.replicate_request_exclusive_vote(request, cookie, is_last_decree)
        } else {
            replica.replicate_request(request, cookie)
        })
    })
}

/// Legacy `FastReadRequest` (`timeout_ms` 0 = the four-argument form).
///
/// # Safety
/// `r` is a live replica; `data` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_fast_read(
    r: *const RslReplica,
    max_seen: u64,
    data: *const c_void,
    len: usize,
    cookie: *mut c_void,
    timeout_ms: u32,
) -> RslResult {
    with(r, RslResult::RSL_RESULT_INVALID_PARAMETER, |replica| {
        // SAFETY: per the contract.
        let Some(request) = (unsafe { request(data, len) }) else {
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        };
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        code(replica.fast_read_request(Decree(max_seen), request, Cookie(cookie), timeout))
    })
}

/// Legacy `GetCurrentSequenceNumber` (0 for a null handle).
///
/// # Safety
/// `r` is null or a live replica.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_current_sequence_number(r: *const RslReplica) -> u64 {
    with(r, 0, |replica| replica.current_sequence_number().0)
}

/// Legacy `GetHighestPassedSequenceNumber` (0 for a null handle or a stopped replica).
///
/// # Safety
/// `r` is null or a live replica.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_highest_passed_sequence_number(r: *const RslReplica) -> u64 {
    with(r, 0, |replica| replica.highest_passed_sequence_number().map_or(0, |d| d.0))
}

/// Legacy `GetCurrentPrimary`: fills `node` with the primary this replica follows
/// (its id, and address and ports from the configuration); an empty id when unknown.
///
/// # Safety
/// `r` is a live replica; `node` is writable.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_current_primary(r: *const RslReplica, node: *mut RslNode) -> RslResult {
    with(r, RslResult::RSL_RESULT_INVALID_PARAMETER, |replica| {
        // SAFETY: writable per the contract.
        let Some(node) = (unsafe { node.as_mut() }) else { return RslResult::RSL_RESULT_INVALID_PARAMETER };
        node.member_id[0] = 0;
        let primary = replica.current_primary().zip(replica.configuration());
        if let Some(member) =
            primary.and_then(|(id, (_, set))| set.members().iter().find(|m| m.id == id).cloned())
        {
            *node = RslNode::from_member(&member);
        }
        RslResult::RSL_RESULT_SUCCESS
    })
}

/// Legacy `GetReplicasInformation`: on the primary, one entry per peer (up to
/// `capacity`); returns how many were written.
///
/// # Safety
/// `r` is a live replica; `health` has `capacity` writable entries.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_replicas_information(
    r: *const RslReplica,
    capacity: u16,
    health: *mut RslReplicaHealth,
) -> u16 {
    with(r, 0, |replica| {
        if health.is_null() {
            return 0;
        }
        let now = SystemTime::now();
        let peers = replica.replicas_information();
        let mut written = 0;
        for (i, peer) in peers.iter().take(usize::from(capacity)).enumerate() {
            let mut entry = RslReplicaHealth {
                member_id: [0; 64],
                is_primary: peer.is_primary,
                connected: true,
                num_outstanding: 0,
                failed_at: RslSystemTime::default(),
                last_request_sent_at: RslSystemTime::default(),
                last_request_voted_at: RslSystemTime::from(now - peer.last_voted_ago),
                last_request_voted_decree: peer.last_voted_decree.0,
                consecutive_failures: 0,
                needs_resolve: false,
                last_vote_payload: peer.last_vote_payload,
            };
            set_field(&mut entry.member_id, peer.member_id.as_str());
            // SAFETY: `capacity` writable entries per the contract.
            unsafe { health.add(i).write(entry) };
            written += 1;
        }
        written
    })
}

/// Legacy `GetStatisticsSnapshot`: counters since the previous call. `stats` must have
/// `size_of_this_struct` set to its size (legacy's check); otherwise nothing is written.
///
/// # Safety
/// `r` is a live replica; `stats` is writable.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_statistics(r: *const RslReplica, stats: *mut RslStats) -> RslResult {
    with(r, RslResult::RSL_RESULT_INVALID_PARAMETER, |replica| {
        // SAFETY: writable per the contract.
        let Some(out) = (unsafe { stats.as_mut() }) else { return RslResult::RSL_RESULT_INVALID_PARAMETER };
        if out.size_of_this_struct != size_of::<RslStats>() {
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        }
        let s = replica.statistics_snapshot();
        let u32_max = |v: u64| v.min(u64::from(u32::MAX)) as u32;
        *out = RslStats {
            size_of_this_struct: size_of::<RslStats>(),
            capture_time_in_microseconds: s.capture_time.as_micros() as u64,
            decrees_executed: s.decrees_executed,
            log_reads: s.log_reads,
            log_read_bytes: s.log_read_bytes,
            log_read_microseconds: s.log_read_micros,
            log_read_max_microseconds: u32_max(s.log_read_max_micros),
            log_writes: s.log_writes,
            log_write_bytes: s.log_write_bytes,
            log_write_microseconds: s.log_write_micros,
            log_write_max_microseconds: u32_max(s.log_write_max_micros),
            voting_time_microseconds: s.voting_micros,
            voting_time_max_microseconds: u32_max(s.voting_max_micros),
        };
        RslResult::RSL_RESULT_SUCCESS
    })
}

/// The replica's boolean state: 0 `IsInStableState`, 1 `IsAnyRequestPendingExecution`,
/// 2 is primary (accepts requests). False for a null handle or another `which`.
///
/// # Safety
/// `r` is null or a live replica.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_query(r: *const RslReplica, which: u32) -> bool {
    with(r, false, |replica| match which {
        0 => replica.is_in_stable_state(),
        1 => replica.is_any_request_pending_execution(),
        2 => replica.is_primary(),
        _ => false,
    })
}

/// The replica's controls: 0 `RelinquishPrimary`, 1 `AttemptPromotion`, 2 `Pause`,
/// 3 `Resume`, 4 `SetVotePayload(value)`, 5 `SetAcceptMessages(value != 0)`,
/// 6 `AllowSaveState(value != 0)`, 7 `ChangeElectionDelay(value seconds)`.
///
/// # Safety
/// `r` is null or a live replica.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_control(r: *const RslReplica, which: u32, value: u64) -> RslResult {
    with(r, RslResult::RSL_RESULT_INVALID_PARAMETER, |replica| {
        match which {
            0 => replica.relinquish_primary(),
            1 => replica.attempt_promotion(),
            2 => replica.pause(),
            3 => replica.resume(),
            4 => replica.set_vote_payload(value),
            5 => replica.set_accept_messages(value != 0),
            6 => replica.allow_save_state(value != 0),
            7 => replica.change_election_delay(Duration::from_secs(value)),
            _ => return RslResult::RSL_RESULT_INVALID_PARAMETER,
        }
        RslResult::RSL_RESULT_SUCCESS
    })
}

/// Legacy `UnloadThisOne` without the process exit (the C++ layer exits, as legacy does
/// without a SpawnRoutine): aborts what is pending, calls `shut_down`, stops every thread
/// and frees the replica. Null is ignored.
///
/// # Safety
/// `r` came from `rsl_replica_initialize` and is not used afterwards.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_unload(r: *mut RslReplica) -> RslResult {
    guard(RslResult::RSL_RESULT_PANIC, || {
        if r.is_null() {
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        }
        // SAFETY: it came from Box::into_raw in `rsl_replica_initialize`.
        let replica = unsafe { Box::from_raw(r) }.replica;
        match replica.unload() {
            Ok(_) => RslResult::RSL_RESULT_SUCCESS,
            Err(e) => {
                tracing::error!("the replica had failed: {e}");
                RslResult::RSL_RESULT_FAILED
            }
        }
    })
}

/// Legacy `Replay(dir, maxSeqNo)` and, with a non-null `checkpoint_dir`, the form that
/// then saves checkpoint `checkpoint_decree` there. `*executed` (if non-null) gets the
/// last decree executed.
///
/// # Safety
/// `callbacks` is valid; `dir` and `checkpoint_dir` are null or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn rsl_replay(
    callbacks: *const RslCallbacks,
    dir: *const c_char,
    max_decree: u64,
    checkpoint_decree: u64,
    checkpoint_dir: *const c_char,
    executed: *mut u64,
) -> RslResult {
    guard(RslResult::RSL_RESULT_PANIC, || {
        // SAFETY: per the contract.
        let (Some(callbacks), Some(dir)) = (unsafe { callbacks.as_ref() }, unsafe { c_str(dir) }) else {
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        };
        let mut host = Host(*callbacks);
        // SAFETY: per the contract.
        let result = match unsafe { c_str(checkpoint_dir) } {
            None => rsl_core::runtime::replay(&mut host, Path::new(dir), Decree(max_decree)),
            Some(cp_dir) => rsl_core::runtime::replay_into_checkpoint(
                &mut host,
                Path::new(dir),
                Decree(max_decree),
                Decree(checkpoint_decree),
                Path::new(cp_dir),
            )
            .map(|_| Decree(checkpoint_decree)),
        };
        match result {
            Ok(last) => {
                // SAFETY: null or writable per the contract.
                if let Some(executed) = unsafe { executed.as_mut() } {
                    *executed = last.0;
                }
                RslResult::RSL_RESULT_SUCCESS
            }
            Err(e) => {
                tracing::error!("Replay failed: {e}");
                RslResult::RSL_RESULT_FAILED
            }
        }
    })
}
