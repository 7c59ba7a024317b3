//! `RSLInit`'s log routing: every `tracing` event of rsl goes either to the host's
//! callback (legacy `LogEntryCallback`, here with the message already formatted) or to
//! `<debugLogPath>/Logs/rsl.log`. Error-level events also reach the notifications
//! callback (legacy sends asserts and `Initialize` failures there).

use crate::{c_str, guard};
use libc::c_char;
use std::ffi::CString;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::sync::Mutex;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::Layer;

/// Legacy `LogEntryCallback` minus the `va_list`: (file, function, line, log id, level
/// as `CallBackLogLevel`, title, formatted message).
/// Null means none.
pub type RslLogEntryCallback =
    Option<unsafe extern "C" fn(*const c_char, *const c_char, i32, i32, i32, *const c_char, *const c_char)>;

/// Legacy `NotificationsCallback`: (level as internal `LogLevel`, log id, title, message).
/// Null means none.
pub type RslNotificationsCallback = Option<unsafe extern "C" fn(i32, i32, *const c_char, *const c_char)>;

/// Legacy log id of the RSL area.
const LOG_ID_RSL: i32 = 3;

struct Callbacks {
    entry: RslLogEntryCallback,
    notify: RslNotificationsCallback,
}

impl<S: Subscriber> Layer<S> for Callbacks {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut message = Message(String::new());
        event.record(&mut message);
        let meta = event.metadata();
        let level = *meta.level();
        let text = |s: &str| CString::new(s.replace('\0', " ")).unwrap_or_default();
        let (file, module, message) =
            (text(meta.file().unwrap_or("")), text(meta.module_path().unwrap_or("")), text(&message.0));
        if let Some(entry) = self.entry {
            // CallBackLogLevel: Debug 0, Info 1, Status 2, Warning 3, Error 4.
            let level = match level {
                Level::TRACE | Level::DEBUG => 0,
                Level::INFO => 1,
                Level::WARN => 3,
                Level::ERROR => 4,
            };
            let line = meta.line().map_or(0, |l| l as i32);
            // SAFETY: the host's callback; every string lives through the call.
            unsafe {
                entry(
                    file.as_ptr(),
                    module.as_ptr(),
                    line,
                    LOG_ID_RSL,
                    level,
                    c"RSL".as_ptr(),
                    message.as_ptr(),
                )
            }
        }
        if let (Some(notify), Level::ERROR) = (self.notify, level) {
            // SAFETY: as above (internal LogLevel Error = 4).
            unsafe { notify(4, LOG_ID_RSL, message.as_ptr(), std::ptr::null()) }
        }
    }
}

struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// Legacy `RSLInit`: routes rsl's log to `log_entry` if given, else to
/// `<debug_log_path>/Logs/rsl.log` (the current directory for null or empty); errors also
/// go to `notifications`. Debug events only with `log_debug`. Returns false if the log
/// file cannot be created or logging was already set up in this process.
///
/// # Safety
/// `debug_log_path` is null or a NUL-terminated string; the callbacks stay callable.
#[no_mangle]
pub unsafe extern "C" fn rsl_init(
    debug_log_path: *const c_char,
    log_debug: bool,
    notifications: RslNotificationsCallback,
    log_entry: RslLogEntryCallback,
) -> bool {
    guard(false, || {
        let max_level = if log_debug { Level::DEBUG } else { Level::INFO };
        let filter = tracing_subscriber::filter::LevelFilter::from_level(max_level);
        let callbacks = Callbacks { entry: log_entry, notify: notifications };
        let subscriber = tracing_subscriber::registry().with(callbacks.with_filter(filter));
        let installed = if log_entry.is_some() {
            tracing::subscriber::set_global_default(subscriber)
        } else {
            // SAFETY: per the contract.
            let dir = unsafe { c_str(debug_log_path) }.filter(|p| !p.is_empty()).unwrap_or(".");
            let dir = PathBuf::from(dir).join("Logs");
            let file = std::fs::create_dir_all(&dir)
                .and_then(|()| OpenOptions::new().create(true).append(true).open(dir.join("rsl.log")));
            let Ok(file) = file else { return false };
            let to_file = tracing_subscriber::fmt::layer().with_ansi(false).with_writer(Mutex::new(file));
            tracing::subscriber::set_global_default(subscriber.with(to_file.with_filter(filter)))
        };
        installed.is_ok()
    })
}
