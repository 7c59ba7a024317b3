//! The legacy structs, laid out exactly as `rsl.h` declares them (`RSLNode`,
//! `RSLConfigParam`, `ReplicaHealth`, `RSLStats`), so the C++ layer passes its own objects
//! through the C ABI unconverted; `rsl.h` asserts the sizes and offsets.

use libc::{c_char, c_long};
use rsl_core::paxos::{Member, MemberId, MemberSet};
use rsl_core::runtime::RslConfig;
use std::path::PathBuf;
use std::time::SystemTime;

/// Legacy `RSLNode` (336 bytes).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct RslNode {
    pub member_id: [c_char; 64],
    pub host_name: [c_char; 256],
    /// IPv4 in network byte order (`inet_addr`).
    pub ip: u32,
    pub rsl_port: u16,
    /// 0 means `rsl_port + 1`.
    pub rsl_learn_port: u16,
    pub app_port: u16,
    pub priority: u32,
}

/// Legacy `RSLConfigParam` (432 bytes); see rsl-core's `RslConfig` for each field.
#[repr(C)]
pub struct RslConfigParam {
    pub new_leader_grace_period_sec: i64,
    pub heart_beat_interval_sec: i64,
    pub election_delay_sec: i64,
    pub max_election_randomize_sec: i64,
    pub initialize_retry_interval_sec: i64,
    pub prepare_retry_interval_sec: i64,
    pub vote_retry_interval_sec: i64,
    pub vote_max_outstanding_interval_sec: i64,
    pub c_p_query_retry_interval_sec: i64,
    pub max_checkpoint_interval_sec: i64,
    pub join_messages_interval_sec: i64,
    pub max_log_len_mb: i64,
    pub send_timeout_sec: u32,
    pub receive_timeout_sec: u32,
    pub max_cache_length_mb: u32,
    pub max_votes_in_log: u32,
    pub max_outstanding_per_replica: u32,
    pub max_checkpoints: u32,
    pub max_checkpoint_size_gb: u32,
    pub min_checkpoint_space_file_count: u32,
    pub max_logs: u32,
    pub log_len_randomize: u32,
    pub election_randomize: u32,
    pub fast_read_seq_threshold: u32,
    pub in_memory_execution_queue_size_mb: u32,
    pub num_reader_threads: u32,
    pub max_message_size_mb: u32,
    pub max_message_alert_size_mb: u32,
    pub allow_primary_promotion_while_catching_up: bool,
    pub working_dir: [c_char; 261],
    pub add_member_id_to_working_dir: bool,
    pub cancel_disk_io: bool,
    pub use_global_accept_messages_flag: bool,
}

/// Legacy `SYSTEMTIME` (UTC).
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub struct RslSystemTime {
    pub year: u16,
    pub month: u16,
    pub day_of_week: u16,
    pub day: u16,
    pub hour: u16,
    pub minute: u16,
    pub second: u16,
    pub milliseconds: u16,
}

/// Legacy `ReplicaHealth` (152 bytes on LP64).
#[repr(C)]
pub struct RslReplicaHealth {
    pub member_id: [c_char; 64],
    pub is_primary: bool,
    pub connected: bool,
    pub num_outstanding: c_long,
    pub failed_at: RslSystemTime,
    pub last_request_sent_at: RslSystemTime,
    pub last_request_voted_at: RslSystemTime,
    pub last_request_voted_decree: u64,
    pub consecutive_failures: u32,
    pub needs_resolve: bool,
    pub last_vote_payload: u64,
}

/// Legacy `RSLStats` (104 bytes): counters since the previous snapshot.
#[repr(C)]
pub struct RslStats {
    /// The caller sets it to `sizeof(RSLStats)`.
    pub size_of_this_struct: usize,
    pub capture_time_in_microseconds: u64,
    pub decrees_executed: u64,
    pub log_reads: u64,
    pub log_read_bytes: u64,
    pub log_read_microseconds: u64,
    pub log_read_max_microseconds: u32,
    pub log_writes: u64,
    pub log_write_bytes: u64,
    pub log_write_microseconds: u64,
    pub log_write_max_microseconds: u32,
    pub voting_time_microseconds: u64,
    pub voting_time_max_microseconds: u32,
}

const _: () = {
    assert!(size_of::<RslNode>() == 336);
    assert!(size_of::<RslConfigParam>() == 432);
    assert!(size_of::<RslReplicaHealth>() == 152);
    assert!(size_of::<RslStats>() == 104);
};

/// A fixed C string field as text (up to its first NUL).
pub(crate) fn field_str(field: &[c_char]) -> String {
    let bytes: Vec<u8> = field.iter().take_while(|&&c| c != 0).map(|&c| c as u8).collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Copies `s` into a fixed C string field, truncated so the NUL fits.
pub(crate) fn set_field(field: &mut [c_char], s: &str) {
    let n = s.len().min(field.len() - 1);
    for (dst, &src) in field.iter_mut().zip(&s.as_bytes()[..n]) {
        *dst = src as c_char;
    }
    field[n] = 0;
}

impl RslNode {
    /// The member this node describes; `None` for an invalid id or a zero Paxos port.
    pub(crate) fn member(&self) -> Option<Member> {
        let id = MemberId::new(&field_str(&self.member_id)).ok()?;
        (self.rsl_port != 0).then(|| Member {
            id,
            ip: self.ip,
            rsl_port: self.rsl_port,
            learn_port: if self.rsl_learn_port == 0 {
                self.rsl_port.wrapping_add(1)
            } else {
                self.rsl_learn_port
            },
            host_name: field_str(&self.host_name),
        })
    }

    pub(crate) fn from_member(member: &Member) -> Self {
        let mut node = RslNode {
            member_id: [0; 64],
            host_name: [0; 256],
            ip: member.ip,
            rsl_port: member.rsl_port,
            rsl_learn_port: member.learn_port,
            app_port: 0,
            priority: 0,
        };
        set_field(&mut node.member_id, member.id.as_str());
        set_field(&mut node.host_name, &member.host_name);
        node
    }
}

/// The member set of `nodes` (legacy `RSLMemberSet::Verify`: non-empty, unique ids, no
/// zero port); `None` if it is not valid.
pub(crate) fn member_set(nodes: &[RslNode], cookie: &[u8]) -> Option<MemberSet> {
    let members = nodes.iter().map(RslNode::member).collect::<Option<Vec<_>>>()?;
    MemberSet::new(members, bytes::Bytes::copy_from_slice(cookie)).ok()
}

impl RslConfigParam {
    /// rsl-core's configuration (validated when the replica starts). A negative value
    /// becomes one that is out of every range, so validation names its field.
    pub(crate) fn to_config(&self) -> RslConfig {
        let s = |v: i64| u64::try_from(v).unwrap_or(u64::MAX);
        let u = u64::from;
        RslConfig {
            new_leader_grace_period_sec: s(self.new_leader_grace_period_sec),
            heart_beat_interval_sec: s(self.heart_beat_interval_sec),
            election_delay_sec: s(self.election_delay_sec),
            max_election_randomize_sec: s(self.max_election_randomize_sec),
            initialize_retry_interval_sec: s(self.initialize_retry_interval_sec),
            prepare_retry_interval_sec: s(self.prepare_retry_interval_sec),
            vote_retry_interval_sec: s(self.vote_retry_interval_sec),
            vote_max_outstanding_interval_sec: s(self.vote_max_outstanding_interval_sec),
            c_p_query_retry_interval_sec: s(self.c_p_query_retry_interval_sec),
            max_checkpoint_interval_sec: s(self.max_checkpoint_interval_sec),
            join_messages_interval_sec: s(self.join_messages_interval_sec),
            max_log_len_mb: s(self.max_log_len_mb),
            send_timeout_sec: u(self.send_timeout_sec),
            receive_timeout_sec: u(self.receive_timeout_sec),
            max_cache_length_mb: u(self.max_cache_length_mb),
            max_votes_in_log: u(self.max_votes_in_log),
            max_outstanding_per_replica: u(self.max_outstanding_per_replica),
            max_checkpoints: u(self.max_checkpoints),
            max_checkpoint_size_gb: u(self.max_checkpoint_size_gb),
            min_checkpoint_space_file_count: u(self.min_checkpoint_space_file_count),
            max_logs: u(self.max_logs),
            log_len_randomize: u(self.log_len_randomize),
            election_randomize: u(self.election_randomize),
            fast_read_seq_threshold: u(self.fast_read_seq_threshold),
            in_memory_execution_queue_size_mb: u(self.in_memory_execution_queue_size_mb),
            num_reader_threads: u(self.num_reader_threads),
            max_message_size_mb: u(self.max_message_size_mb),
            max_message_alert_size_mb: u(self.max_message_alert_size_mb),
            allow_primary_promotion_while_catching_up: self.allow_primary_promotion_while_catching_up,
            // Legacy strips a trailing separator.
            working_dir: PathBuf::from(field_str(&self.working_dir).trim_end_matches(['/', '\\'])),
            add_member_id_to_working_dir: self.add_member_id_to_working_dir,
            cancel_disk_io: self.cancel_disk_io,
            use_global_accept_messages_flag: self.use_global_accept_messages_flag,
            tls: crate::ssl_config(),
            ..RslConfig::default()
        }
    }
}

impl RslSystemTime {
    /// `at` in UTC (days to civil date: Howard Hinnant's algorithm).
    pub(crate) fn from(at: SystemTime) -> Self {
        let since = at.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
        let (days, secs) = ((since.as_secs() / 86_400) as i64, since.as_secs() % 86_400);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self {
            year: year as u16,
            month: month as u16,
            day_of_week: ((days + 4).rem_euclid(7)) as u16, // 1970-01-01 was a Thursday
            day: day as u16,
            hour: (secs / 3600) as u16,
            minute: (secs / 60 % 60) as u16,
            second: (secs % 60) as u16,
            milliseconds: since.subsec_millis() as u16,
        }
    }
}
