//! Protocol tunables of one replica (legacy `RSLConfigParam`, the parts the protocol uses),
//! in microseconds. Values are validated once, at construction, with the legacy ranges;
//! an out-of-range value is an error that names the field.

use std::fmt;

const SECOND_US: u64 = 1_000_000;

/// Timers and limits of the protocol core. Durations are in microseconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Decrees the primary may keep in flight. 1 = legacy stop-and-wait (protocol ≤ 6).
    pub window: u64,
    /// Most requests packed into one decree.
    pub batch_requests_max: usize,
    /// Most request bytes packed into one decree (legacy: 10 MiB).
    pub batch_bytes_max: usize,
    /// Idle time after which the primary proposes an empty decree.
    pub heartbeat_us: u64,
    /// Silence after which a secondary suspects the primary.
    pub election_delay_us: u64,
    /// Jitter of the election delay, percent of it (legacy `m_electionRandomize`).
    pub election_randomize_pct: u64,
    /// Cap on the jitter (legacy `m_maxElectionRandomizeSec`).
    pub election_randomize_max_us: u64,
    /// After seeing a higher ballot, wait at least this long before an election.
    pub new_leader_grace_us: u64,
    /// Re-send StatusQuery when Initializing gets no quorum in this time.
    pub initialize_retry_us: u64,
    /// Re-send Prepare this often (legacy hard-codes 1 s).
    pub prepare_retry_us: u64,
    /// Re-send unacknowledged votes this often.
    pub vote_retry_us: u64,
    /// Give up waiting for a learn (FetchVotes) stream after this long.
    pub learn_timeout_us: u64,
}

impl Default for Config {
    /// The legacy defaults, with pipelining on (window 64).
    fn default() -> Self {
        Self {
            window: 64,
            batch_requests_max: 1024,
            batch_bytes_max: 10 << 20,
            heartbeat_us: 2 * SECOND_US,
            election_delay_us: 10 * SECOND_US,
            election_randomize_pct: 10,
            election_randomize_max_us: SECOND_US,
            new_leader_grace_us: 15 * SECOND_US,
            initialize_retry_us: SECOND_US,
            prepare_retry_us: SECOND_US,
            vote_retry_us: 3 * SECOND_US,
            learn_timeout_us: 5 * SECOND_US,
        }
    }
}

/// A tunable outside its valid range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub field: &'static str,
    pub value: u64,
    pub min: u64,
    pub max: u64,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Configuration Error: {} = {} is outside {}..={}",
            self.field, self.value, self.min, self.max
        )
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Checks every field against its range (the legacy ranges where legacy has the field).
    pub fn validate(&self) -> Result<(), ConfigError> {
        const HOUR_US: u64 = 3600 * SECOND_US;
        let ms = SECOND_US / 1000;
        let checks: [(&'static str, u64, u64, u64); 12] = [
            ("window", self.window, 1, 4096),
            ("batch_requests_max", self.batch_requests_max as u64, 1, 1 << 20),
            ("batch_bytes_max", self.batch_bytes_max as u64, 1, 1 << 30),
            ("heartbeat_us", self.heartbeat_us, ms, HOUR_US),
            ("election_delay_us", self.election_delay_us, ms, HOUR_US),
            ("election_randomize_pct", self.election_randomize_pct, 0, 100),
            ("election_randomize_max_us", self.election_randomize_max_us, 0, i32::MAX as u64 * SECOND_US),
            ("new_leader_grace_us", self.new_leader_grace_us, ms, HOUR_US),
            ("initialize_retry_us", self.initialize_retry_us, ms, HOUR_US),
            ("prepare_retry_us", self.prepare_retry_us, ms, HOUR_US),
            ("vote_retry_us", self.vote_retry_us, ms, HOUR_US),
            ("learn_timeout_us", self.learn_timeout_us, ms, HOUR_US),
        ];
        for (field, value, min, max) in checks {
            if !(min..=max).contains(&value) {
                return Err(ConfigError { field, value, min, max });
            }
        }
        Ok(())
    }

    /// Largest jitter applied to the election delay.
    pub fn election_jitter_us(&self) -> u64 {
        (self.election_delay_us * self.election_randomize_pct / 100).min(self.election_randomize_max_us)
    }
}
