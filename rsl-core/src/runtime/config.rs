//! Legacy `RSLConfigParam` (spec §3): every field with its legacy default and range. It is
//! validated once, when a replica starts; a value out of range is an error naming the field
//! (legacy logs "Configuration Error" and `Initialize` returns false).

use crate::paxos::{Config, ConfigError};
use crate::transport::{RdmaConfig, TlsConfig};
use std::path::PathBuf;

const SECOND_US: u64 = 1_000_000;
const INT_MAX: u64 = i32::MAX as u64;

/// Legacy `RSLConfigParam`. Durations are in seconds and sizes in MB, as in legacy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RslConfig {
    pub new_leader_grace_period_sec: u64,
    pub heart_beat_interval_sec: u64,
    pub election_delay_sec: u64,
    pub max_election_randomize_sec: u64,
    pub initialize_retry_interval_sec: u64,
    pub prepare_retry_interval_sec: u64,
    pub vote_retry_interval_sec: u64,
    pub vote_max_outstanding_interval_sec: u64,
    pub c_p_query_retry_interval_sec: u64,
    /// Time-based checkpoints; 0 = never.
    pub max_checkpoint_interval_sec: u64,
    pub join_messages_interval_sec: u64,
    pub max_log_len_mb: u64,
    pub send_timeout_sec: u64,
    pub receive_timeout_sec: u64,
    pub max_cache_length_mb: u64,
    /// Validated but never used (as in legacy).
    pub max_votes_in_log: u64,
    pub max_outstanding_per_replica: u64,
    pub max_checkpoints: u64,
    pub max_checkpoint_size_gb: u64,
    pub min_checkpoint_space_file_count: u64,
    pub max_logs: u64,
    pub log_len_randomize: u64,
    pub election_randomize: u64,
    pub fast_read_seq_threshold: u64,
    pub in_memory_execution_queue_size_mb: u64,
    /// Fast-read worker threads; 0 = one per CPU.
    pub num_reader_threads: u64,
    pub max_message_size_mb: u64,
    pub max_message_alert_size_mb: u64,
    pub allow_primary_promotion_while_catching_up: bool,
    pub working_dir: PathBuf,
    pub add_member_id_to_working_dir: bool,
    /// Windows only in legacy; kept for source compatibility, no effect.
    pub cancel_disk_io: bool,
    pub use_global_accept_messages_flag: bool,
    /// Decrees in flight (rsl's pipelining; protocol version 7). Versions ≤ 6 force 1.
    pub window: u64,
    /// Protocol timers in microseconds, replacing every timer derived from the
    /// second-granularity fields above and the window (tests, sub-second failover).
    pub core_override: Option<Config>,
    /// Seeds election jitter and log-length randomization; 0 draws one at start.
    pub seed: u64,
    /// Where the journal lives (rsl's addition: legacy has only `.log` files).
    pub journal: JournalKind,
    /// How replicas exchange Paxos messages (rsl's addition: legacy has only TCP).
    pub transport: TransportKind,
    /// TLS on the Paxos and learn ports (legacy `SetThumbprintsForSsl`); none by default.
    pub tls: Option<TlsConfig>,
    /// The cluster's name, checked on every Paxos-port connection (rsl's addition: every
    /// member must set the same, so leave it unset beside legacy replicas).
    pub cluster_name: Option<String>,
    /// How often `resolve_node` is asked again where each peer is (legacy's IPLookup
    /// thread: every 30 s, not configurable there).
    pub resolve_interval_ms: u64,
}

/// The Paxos-message transport of a replica; every member of a configuration must use the
/// same. The learn port (catch-up, checkpoint transfer) is TCP with all of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TransportKind {
    /// The legacy Paxos port.
    #[default]
    Tcp,
    /// Rings in shared memory, for replicas on one host: files in `dir` (on tmpfs, such
    /// as `/dev/shm/<cluster>`), each ring `ring_bytes` long.
    Shm { dir: PathBuf, ring_bytes: u64 },
    /// Rings written by one-sided RDMA. Not built yet: starting a replica with it fails.
    Rdma(RdmaConfig),
}

/// The journal backend of a replica.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JournalKind {
    /// Legacy `.log` files with `fdatasync` per group commit.
    #[default]
    File,
    /// One memory-mapped file (`journal.nvm`) persisted by cache-line write-back; `dax`
    /// skips `msync` and is durable only on a DAX (persistent-memory) file system (see
    /// `storage::NvmOptions::dax`).
    Nvm { dax: bool },
}

impl Default for RslConfig {
    fn default() -> Self {
        Self {
            new_leader_grace_period_sec: 15,
            heart_beat_interval_sec: 2,
            election_delay_sec: 10,
            max_election_randomize_sec: 1,
            initialize_retry_interval_sec: 1,
            prepare_retry_interval_sec: 1,
            vote_retry_interval_sec: 3,
            vote_max_outstanding_interval_sec: 480,
            c_p_query_retry_interval_sec: 5,
            max_checkpoint_interval_sec: 0,
            join_messages_interval_sec: 1,
            max_log_len_mb: 100,
            send_timeout_sec: 5,
            receive_timeout_sec: 5,
            max_cache_length_mb: 50,
            max_votes_in_log: 10_000,
            max_outstanding_per_replica: 10,
            max_checkpoints: 4,
            max_checkpoint_size_gb: 0,
            min_checkpoint_space_file_count: 0,
            max_logs: 10,
            log_len_randomize: 20,
            election_randomize: 10,
            fast_read_seq_threshold: 0,
            in_memory_execution_queue_size_mb: 0,
            num_reader_threads: 1,
            max_message_size_mb: 100,
            max_message_alert_size_mb: 0,
            allow_primary_promotion_while_catching_up: false,
            working_dir: PathBuf::new(),
            add_member_id_to_working_dir: true,
            cancel_disk_io: true,
            use_global_accept_messages_flag: false,
            window: 64,
            core_override: None,
            seed: 0,
            journal: JournalKind::File,
            transport: TransportKind::Tcp,
            tls: None,
            cluster_name: None,
            resolve_interval_ms: 30_000,
        }
    }
}

/// Why a configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RslConfigError {
    Range(ConfigError),
    EmptyWorkingDir,
}

impl std::fmt::Display for RslConfigError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Range(e) => e.fmt(f),
            Self::EmptyWorkingDir => f.write_str("Configuration Error: m_workingDir is empty"),
        }
    }
}

impl std::error::Error for RslConfigError {}

impl RslConfig {
    /// Checks every field against the legacy range; the error names the legacy field.
    pub fn validate(&self) -> Result<(), RslConfigError> {
        let hour = (1, 3600);
        let checks: [(&'static str, u64, (u64, u64)); 30] = [
            ("m_newLeaderGracePeriodSec", self.new_leader_grace_period_sec, hour),
            ("m_heartBeatIntervalSec", self.heart_beat_interval_sec, hour),
            ("m_electionDelaySec", self.election_delay_sec, hour),
            ("m_maxElectionRandomizeSec", self.max_election_randomize_sec, (0, INT_MAX)),
            ("m_initializeRetryIntervalSec", self.initialize_retry_interval_sec, hour),
            ("m_prepareRetryIntervalSec", self.prepare_retry_interval_sec, hour),
            ("m_voteRetryIntervalSec", self.vote_retry_interval_sec, hour),
            ("m_voteMaxOutstandingIntervalSec", self.vote_max_outstanding_interval_sec, hour),
            ("m_cPQueryRetryIntervalSec", self.c_p_query_retry_interval_sec, hour),
            ("m_maxCheckpointIntervalSec", self.max_checkpoint_interval_sec, (0, i64::MAX as u64)),
            ("m_joinMessagesIntervalSec", self.join_messages_interval_sec, hour),
            ("m_maxLogLenMB", self.max_log_len_mb, (1, 102_400)),
            ("m_sendTimeoutSec", self.send_timeout_sec, hour),
            ("m_receiveTimeoutSec", self.receive_timeout_sec, hour),
            ("m_maxCacheLengthMB", self.max_cache_length_mb, (1, 1024)),
            ("m_maxVotesInLog", self.max_votes_in_log, (1, INT_MAX)),
            ("m_maxOutstandingPerReplica", self.max_outstanding_per_replica, (1, INT_MAX)),
            ("m_maxCheckpoints", self.max_checkpoints, (1, INT_MAX)),
            ("m_maxCheckpointSizeGB", self.max_checkpoint_size_gb, (0, INT_MAX)),
            ("m_minCheckpointSpaceFileCount", self.min_checkpoint_space_file_count, (0, INT_MAX)),
            ("m_maxLogs", self.max_logs, (1, INT_MAX)),
            ("m_logLenRandomize", self.log_len_randomize, (0, 100)),
            ("m_electionRandomize", self.election_randomize, (0, 100)),
            ("m_fastReadSeqThreshold", self.fast_read_seq_threshold, (0, INT_MAX)),
            ("m_inMemoryExecutionQueueSizeMB", self.in_memory_execution_queue_size_mb, (0, INT_MAX)),
            ("m_numReaderThreads", self.num_reader_threads, (0, 100)),
            ("m_maxMessageSizeMB", self.max_message_size_mb, (1, INT_MAX)),
            ("m_maxMessageAlertSizeMB", self.max_message_alert_size_mb, (0, INT_MAX)),
            ("window", self.window, (1, 4096)),
            ("resolve_interval_ms", self.resolve_interval_ms, (1, 3_600_000)),
        ];
        for (field, value, (min, max)) in checks {
            if !(min..=max).contains(&value) {
                return Err(RslConfigError::Range(ConfigError { field, value, min, max }));
            }
        }
        if let Some(core) = &self.core_override {
            core.validate().map_err(RslConfigError::Range)?;
        }
        if self.working_dir.as_os_str().is_empty() {
            return Err(RslConfigError::EmptyWorkingDir);
        }
        Ok(())
    }

    /// The protocol core's tunables; `window` is the protocol version's cap.
    pub(crate) fn core(&self, window: u64) -> Config {
        if let Some(core) = &self.core_override {
            return Config { window: core.window.min(window), ..core.clone() };
        }
        Config {
            window: self.window.min(window),
            heartbeat_us: self.heart_beat_interval_sec * SECOND_US,
            election_delay_us: self.election_delay_sec * SECOND_US,
            election_randomize_pct: self.election_randomize,
            election_randomize_max_us: self.max_election_randomize_sec * SECOND_US,
            new_leader_grace_us: self.new_leader_grace_period_sec * SECOND_US,
            initialize_retry_us: self.initialize_retry_interval_sec * SECOND_US,
            prepare_retry_us: self.prepare_retry_interval_sec * SECOND_US,
            vote_retry_us: self.vote_retry_interval_sec * SECOND_US,
            learn_timeout_us: self.receive_timeout_sec * SECOND_US,
            ..Config::default()
        }
    }

    /// The time-based checkpoint interval; none when 0 (or too large to schedule).
    pub(crate) fn checkpoint_interval(&self) -> Option<std::time::Duration> {
        let interval = std::time::Duration::from_secs(self.max_checkpoint_interval_sec);
        (self.max_checkpoint_interval_sec > 0
            && std::time::Instant::now().checked_add(interval * 2).is_some())
        .then_some(interval)
    }

    /// Fast-read workers to start (`0` means one per CPU).
    pub(crate) fn reader_threads(&self) -> usize {
        match self.num_reader_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n as usize,
        }
    }
}
