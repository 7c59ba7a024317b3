//! Membership over the C ABI: legacy `Bootstrap`, `ChangeConfiguration`,
//! `GetConfiguration` (with the configuration cookie) and `CopyStateFromReplica`.

use crate::replica::{code, with, Cookie, RslReplica};
use crate::types::{member_set, RslNode};
use crate::RslResult;
use libc::c_void;
use rsl_core::paxos::MemberSet;
use std::time::Duration;

/// Legacy `Bootstrap(set, timeoutSec)`: returns `SUCCESS` once this replica accepted a
/// primary's vote, `ALREADY_BOOTSTRAPPED`, `BOOTSTRAP_FAILED` (a set without this replica,
/// another set than the one bootstrapped, or the timeout), `INVALID_PARAMETER` (a null
/// pointer, an invalid set). Blocks up to `timeout_sec`.
///
/// # Safety
/// `r` is a live replica; `members` points to `count` nodes and `set_cookie` to
/// `set_cookie_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_bootstrap(
    r: *const RslReplica,
    members: *const RslNode,
    count: usize,
    set_cookie: *const u8,
    set_cookie_len: usize,
    timeout_sec: u32,
) -> RslResult {
    with(r, RslResult::RSL_RESULT_INVALID_PARAMETER, |replica| {
        // SAFETY: per the contract.
        let Some(set) = (unsafe { member_set_at(members, count, set_cookie, set_cookie_len) }) else {
            tracing::error!("Bootstrap: an invalid member set");
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        };
        replica.bootstrap(&set, Duration::from_secs(u64::from(timeout_sec))).into()
    })
}

/// The member set of `count` nodes at `members` with the configuration cookie at
/// `set_cookie`; `None` for a null pointer or an invalid set.
///
/// # Safety
/// `members` points to `count` nodes and `set_cookie` to `set_cookie_len` readable bytes.
unsafe fn member_set_at(
    members: *const RslNode,
    count: usize,
    set_cookie: *const u8,
    set_cookie_len: usize,
) -> Option<MemberSet> {
    if members.is_null() || (set_cookie.is_null() && set_cookie_len > 0) {
        return None;
    }
    // SAFETY: per the contract.
    let (nodes, set_cookie) = unsafe {
        let set_cookie = if set_cookie_len == 0 {
            &[][..]
        } else {
            std::slice::from_raw_parts(set_cookie, set_cookie_len)
        };
        (std::slice::from_raw_parts(members, count), set_cookie)
    };
    member_set(nodes, set_cookie)
}

/// Legacy `ChangeConfiguration` (primary only): proposes the `count` members with the
/// configuration cookie `set_cookie` (`set_cookie_len` bytes, at most 8192; null when 0)
/// as the next configuration. `cookie` comes back in `notify_configuration_changed` or
/// `abort_change_configuration`. `RSL_RESULT_INVALID_PARAMETER` for a null pointer, an
/// empty set, a duplicate id, port 0 or a cookie too long; `NOT_PRIMARY`, `SHUTTING_DOWN`.
///
/// # Safety
/// `r` is a live replica; `members` points to `count` nodes and `set_cookie` to
/// `set_cookie_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_change_configuration(
    r: *const RslReplica,
    members: *const RslNode,
    count: usize,
    set_cookie: *const u8,
    set_cookie_len: usize,
    cookie: *mut c_void,
) -> RslResult {
    with(r, RslResult::RSL_RESULT_INVALID_PARAMETER, |replica| {
        // SAFETY: per the contract.
        let Some(set) = (unsafe { member_set_at(members, count, set_cookie, set_cookie_len) }) else {
            tracing::error!("ChangeConfiguration: an invalid member set");
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        };
        code(replica.change_configuration(set, Cookie(cookie)))
    })
}

/// Legacy `CopyStateFromReplica`: copies a member's newest checkpoint (at least as new as
/// ours) into this replica's directory in the background; `state_copied` reports the end
/// with `cookie`. `RSL_RESULT_SHUTTING_DOWN` once stopping.
///
/// # Safety
/// `r` is a live replica.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_copy_state(r: *const RslReplica, cookie: *mut c_void) -> RslResult {
    with(r, RslResult::RSL_RESULT_INVALID_PARAMETER, |replica| {
        code(replica.copy_state_from_replica(Cookie(cookie)))
    })
}

/// The configuration cookie of the current member set (legacy `RSLMemberSet`'s): up to
/// `capacity` bytes into `buf` (null when `capacity` is 0), its whole length into `*len`.
///
/// # Safety
/// `r` is a live replica; `buf` has `capacity` writable bytes; `len` is writable.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_get_configuration_cookie(
    r: *const RslReplica,
    buf: *mut u8,
    capacity: usize,
    len: *mut usize,
) -> RslResult {
    with(r, RslResult::RSL_RESULT_INVALID_PARAMETER, |replica| {
        if len.is_null() || (buf.is_null() && capacity > 0) {
            return RslResult::RSL_RESULT_INVALID_PARAMETER;
        }
        let Some((_, members)) = replica.configuration() else {
            return RslResult::RSL_RESULT_SHUTTING_DOWN;
        };
        let cookie = members.cookie();
        let n = cookie.len().min(capacity);
        // SAFETY: `buf` has `capacity` ≥ `n` writable bytes and `len` is writable, per the
        // contract; the cookie is ours, so the ranges do not overlap.
        unsafe {
            if n > 0 {
                std::ptr::copy_nonoverlapping(cookie.as_ptr(), buf, n);
            }
            *len = cookie.len();
        }
        RslResult::RSL_RESULT_SUCCESS
    })
}

/// Legacy `GetConfiguration`: up to `capacity` members into `nodes`, their count into
/// `*count` and the configuration number into `*number` (either may be null).
///
/// # Safety
/// `r` is a live replica; `nodes` has `capacity` writable entries.
#[no_mangle]
pub unsafe extern "C" fn rsl_replica_get_configuration(
    r: *const RslReplica,
    nodes: *mut RslNode,
    capacity: usize,
    count: *mut usize,
    number: *mut u32,
) -> RslResult {
    with(r, RslResult::RSL_RESULT_INVALID_PARAMETER, |replica| {
        let Some((configuration, members)) = replica.configuration() else {
            return RslResult::RSL_RESULT_SHUTTING_DOWN;
        };
        if !nodes.is_null() {
            for (i, member) in members.members().iter().take(capacity).enumerate() {
                // SAFETY: `capacity` writable entries per the contract.
                unsafe { *nodes.add(i) = RslNode::from_member(member) };
            }
        }
        // SAFETY: each is null or writable per the contract.
        unsafe {
            if let Some(count) = count.as_mut() {
                *count = members.len();
            }
            if let Some(number) = number.as_mut() {
                *number = configuration;
            }
        }
        RslResult::RSL_RESULT_SUCCESS
    })
}
