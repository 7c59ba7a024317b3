//! `librsl.so`: the C ABI over rsl-core. Every entry point is `rsl_<type>_<verb>`, takes
//! opaque handles and checked pointers (a null or invalid one is
//! [`RslResult::RSL_RESULT_INVALID_PARAMETER`], never a crash), and runs inside one panic
//! boundary, [`guard`]: a panic becomes [`RslResult::RSL_RESULT_PANIC`] and a log line,
//! never an unwind into C. Callbacks into the host go through a table of C function
//! pointers with a `void *userdata` ([`replica::RslCallbacks`]); the C++ layer
//! (`include/rsl.h`) calls its virtuals from `noexcept` trampolines, so no C++ exception
//! unwinds into Rust either.
//!
//! Modules: `types` (the legacy structs, layout-compatible with `rsl.h`), `replica` (the
//! state machine), `checkpoint` (stream reader/writer and `RSLCheckpointUtility`), `log`
//! (`RSLInit`'s log routing).

pub mod checkpoint;
pub mod log;
pub mod membership;
pub mod replica;
pub mod types;

// The cdylib exports the symbols of the crates it references (platform-notes §5.2).
pub use rsl_core;

use rsl_core::transport::{SubjectRule, Tls, TlsConfig};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Mutex, PoisonError};

/// Results of the C ABI: legacy `RSLResponseCode` values 0–6, then rsl's own from 1000.
#[repr(u32)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[allow(non_camel_case_types, clippy::upper_case_acronyms)]
pub enum RslResult {
    RSL_RESULT_SUCCESS = 0,
    RSL_RESULT_FAST_READ_STALE = 1,
    RSL_RESULT_NOT_PRIMARY = 2,
    RSL_RESULT_SHUTTING_DOWN = 3,
    RSL_RESULT_ALREADY_BOOTSTRAPPED = 4,
    RSL_RESULT_BOOTSTRAP_FAILED = 5,
    RSL_RESULT_INVALID_PARAMETER = 6,
    /// A configuration value is out of range (the log names the field).
    RSL_RESULT_CONFIG = 1000,
    /// The replica could not start (data directory, ports, threads; see the log).
    RSL_RESULT_START = 1001,
    /// librsl panicked; the log has the message.
    RSL_RESULT_PANIC = 1003,
    /// The operation failed (the log says why).
    RSL_RESULT_FAILED = 1004,
}

impl From<rsl_core::ResponseCode> for RslResult {
    fn from(code: rsl_core::ResponseCode) -> Self {
        use rsl_core::ResponseCode as R;
        match code {
            R::Success => Self::RSL_RESULT_SUCCESS,
            R::FastReadStale => Self::RSL_RESULT_FAST_READ_STALE,
            R::NotPrimary => Self::RSL_RESULT_NOT_PRIMARY,
            R::ShuttingDown => Self::RSL_RESULT_SHUTTING_DOWN,
            R::AlreadyBootstrapped => Self::RSL_RESULT_ALREADY_BOOTSTRAPPED,
            R::BootstrapFailed => Self::RSL_RESULT_BOOTSTRAP_FAILED,
            R::InvalidParameter => Self::RSL_RESULT_INVALID_PARAMETER,
        }
    }
}

/// The panic boundary of every entry point: runs `f`, or logs its panic and returns
/// `on_panic`.
pub(crate) fn guard<T>(on_panic: T, f: impl FnOnce() -> T) -> T {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!("librsl panicked: {why}");
        on_panic
    })
}

/// Reads a NUL-terminated string the host passed; `None` for null or non-UTF-8.
///
/// # Safety
/// `s` is null or points to a NUL-terminated string that outlives the call.
pub(crate) unsafe fn c_str<'a>(s: *const libc::c_char) -> Option<&'a str> {
    if s.is_null() {
        return None;
    }
    // SAFETY: non-null and NUL-terminated per the caller's contract.
    unsafe { std::ffi::CStr::from_ptr(s) }.to_str().ok()
}

/// Legacy `RSLUtils::CalculateChecksum`: the CRC-64 fingerprint of `len` bytes at `data`
/// (0 for a null pointer with a non-zero length).
///
/// # Safety
/// `data` points to `len` readable bytes (or `len` is 0).
#[no_mangle]
pub unsafe extern "C" fn rsl_checksum(data: *const u8, len: usize) -> u64 {
    guard(0, || {
        if data.is_null() && len > 0 {
            return 0;
        }
        let bytes = if len == 0 {
            &[][..]
        } else {
            // SAFETY: `len` readable bytes at non-null `data`, per the contract.
            unsafe { std::slice::from_raw_parts(data, len) }
        };
        rsl_core::wire::fingerprint(bytes)
    })
}

/// Legacy's default `RSLStateMachine::ResolveNode`: true if `node` has an IP; otherwise
/// resolves its host name to an IPv4 address, stores it in `ip` and returns true. False,
/// logging why, for a null node, a zero Paxos port (legacy asserts) or a name that does
/// not resolve. Replicas resolve the host names of members without an IP themselves, again
/// on every connection.
///
/// # Safety
/// `node` is null or points to a writable `RslNode`.
#[no_mangle]
pub unsafe extern "C" fn rsl_resolve_node(node: *mut types::RslNode) -> bool {
    guard(false, || {
        // SAFETY: null or a writable node, per the contract.
        let Some(node) = (unsafe { node.as_mut() }) else { return false };
        if node.rsl_port == 0 {
            tracing::error!("ResolveNode: the node has no Paxos port");
            return false;
        }
        if node.ip != 0 {
            return true;
        }
        match rsl_core::transport::resolve_ipv4(&types::field_str(&node.host_name)) {
            Ok(addr) => {
                node.ip = rsl_core::transport::member_ip(addr);
                true
            }
            Err(e) => {
                tracing::warn!("ResolveNode: {e}");
                false
            }
        }
    })
}

/// Legacy `EnableListenOnAllIPs`: replicas started afterwards listen on every address.
#[no_mangle]
pub extern "C" fn rsl_enable_listen_on_all_ips() {
    guard((), rsl_core::runtime::enable_listen_on_all_ips)
}

/// The TLS settings of replicas started from now on (legacy's are process-wide too).
static SSL: Mutex<Option<TlsConfig>> = Mutex::new(None);

pub(crate) fn ssl_config() -> Option<TlsConfig> {
    SSL.lock().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Legacy `SetThumbprintsForSsl`: TLS on the Paxos and learn ports of replicas started
/// afterwards, each side presenting the certificate of thumbprint `a` (else `b`) and
/// accepting only those two. Certificates are PEM files (chain and key) in the directory
/// `RSL_CERT_DIR` names (default `/etc/rsl/certs`), CAs under its `ca/`. Both null turns
/// TLS off. Returns false, logging why, on a malformed thumbprint, a certificate that is
/// missing or expired, no CA for `validate_ca_chain`, or `check_revocation` (not built) —
/// legacy returned true for most of these.
///
/// # Safety
/// `a` and `b` are null or NUL-terminated strings.
#[no_mangle]
pub unsafe extern "C" fn rsl_set_thumbprints_for_ssl(
    a: *const libc::c_char,
    b: *const libc::c_char,
    validate_ca_chain: bool,
    check_revocation: bool,
) -> bool {
    guard(false, || {
        // SAFETY: null or NUL-terminated, per the contract.
        let (ta, tb) = unsafe { (c_str(a), c_str(b)) };
        if (!a.is_null() && ta.is_none()) || (!b.is_null() && tb.is_none()) {
            tracing::error!("SetThumbprintsForSsl: a thumbprint is not UTF-8");
            return false;
        }
        let mut ssl = SSL.lock().unwrap_or_else(PoisonError::into_inner);
        if ta.is_none() && tb.is_none() {
            *ssl = None; // legacy: both null turns TLS off
            return true;
        }
        let subjects = ssl.as_ref().map(|c| c.subjects.clone()).unwrap_or_default();
        let config = TlsConfig {
            thumbprints: [ta.map(str::to_owned), tb.map(str::to_owned)],
            validate_ca_chain,
            check_revocation,
            ..tls_config(subjects)
        };
        set_ssl(&mut ssl, config, "SetThumbprintsForSsl")
    })
}

/// TLS settings with the certificate directory and no peers yet.
fn tls_config(subjects: Vec<SubjectRule>) -> TlsConfig {
    TlsConfig {
        cert_dir: std::env::var_os("RSL_CERT_DIR").map_or_else(|| "/etc/rsl/certs".into(), Into::into),
        thumbprints: [None, None],
        subjects,
        validate_ca_chain: false,
        check_revocation: false,
        handshake_timeout: std::time::Duration::from_secs(5),
    }
}

/// Takes `config` if it sets up (none if it names no peer at all); false, logged, if not.
fn set_ssl(ssl: &mut Option<TlsConfig>, config: TlsConfig, caller: &str) -> bool {
    if config.thumbprints.iter().all(Option::is_none) && config.subjects.is_empty() {
        *ssl = None;
        return true;
    }
    match Tls::new(&config) {
        Ok(_) => {
            *ssl = Some(config);
            true
        }
        Err(e) => {
            tracing::error!("{caller}: {e}");
            false
        }
    }
}

/// Legacy `SetSubjectNamesForSsl`: TLS for replicas started afterwards, accepting a peer
/// whose certificate's subject is `subject_a` (or `subject_b`) and that one of the
/// certificates listed in `parents_a` (`parents_b`: thumbprints separated by `,` or `;`)
/// signed. `consider_thumbprints` keeps the peers `SetThumbprintsForSsl` pinned too;
/// false drops them. Our certificate is the first in `RSL_CERT_DIR` with one of the
/// subjects (unless a thumbprint names it). Returns false, logging why, on any failure —
/// legacy always returned true.
///
/// # Safety
/// Each pointer is null or a NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn rsl_set_subject_names_for_ssl(
    subject_a: *const libc::c_char,
    parents_a: *const libc::c_char,
    subject_b: *const libc::c_char,
    parents_b: *const libc::c_char,
    consider_thumbprints: bool,
) -> bool {
    guard(false, || {
        let mut subjects = Vec::new();
        for (subject, parents) in [(subject_a, parents_a), (subject_b, parents_b)] {
            // SAFETY: null or NUL-terminated, per the contract.
            let (name, list) = unsafe { (c_str(subject), c_str(parents)) };
            if (!subject.is_null() && name.is_none()) || (!parents.is_null() && list.is_none()) {
                tracing::error!("SetSubjectNamesForSsl: a subject or thumbprint list is not UTF-8");
                return false;
            }
            if let Some(name) = name.filter(|n| !n.trim().is_empty()) {
                let issuers =
                    list.unwrap_or_default().split([',', ';']).map(str::trim).filter(|t| !t.is_empty());
                subjects.push(SubjectRule {
                    subject: name.to_owned(),
                    issuers: issuers.map(str::to_owned).collect(),
                });
            }
        }
        let mut ssl = SSL.lock().unwrap_or_else(PoisonError::into_inner);
        let pinned = ssl.as_ref().filter(|_| consider_thumbprints);
        let config = match pinned {
            Some(old) => TlsConfig { subjects, ..old.clone() },
            None => tls_config(subjects),
        };
        set_ssl(&mut ssl, config, "SetSubjectNamesForSsl")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::Digest;
    use std::ffi::CString;

    #[test]
    fn set_thumbprints_for_ssl_takes_a_pinned_certificate_and_null_null_turns_tls_off() {
        let dir = std::env::temp_dir().join(format!("rsl-ffi-ssl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["rsl".to_owned()]).unwrap().self_signed(&key).unwrap();
        std::fs::write(dir.join("cluster.pem"), cert.pem() + &key.serialize_pem()).unwrap();
        let hex: String = sha1::Sha1::digest(cert.der()).iter().map(|b| format!("{b:02x}")).collect();
        std::env::set_var("RSL_CERT_DIR", &dir);
        let a = CString::new(hex).unwrap();
        // SAFETY: a NUL-terminated string and a null pointer.
        assert!(unsafe { rsl_set_thumbprints_for_ssl(a.as_ptr(), std::ptr::null(), false, false) });
        let config = ssl_config().expect("TLS is on for replicas started now");
        assert_eq!(config.cert_dir, dir);
        // SAFETY: two null pointers.
        assert!(unsafe { rsl_set_thumbprints_for_ssl(std::ptr::null(), std::ptr::null(), false, false) });
        assert!(ssl_config().is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
