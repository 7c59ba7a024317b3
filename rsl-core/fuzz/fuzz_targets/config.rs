//! Configuration validation: every numeric field from the input (8 bytes each). A value
//! out of its legacy range is an error naming the field; nothing may panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rsl_core::RslConfig;

fuzz_target!(|data: &[u8]| {
    let mut words = data.chunks(8).map(|c| {
        let mut w = [0u8; 8];
        w[..c.len()].copy_from_slice(c);
        u64::from_le_bytes(w)
    });
    let mut next = || words.next().unwrap_or(0);
    let config = RslConfig {
        new_leader_grace_period_sec: next(),
        heart_beat_interval_sec: next(),
        election_delay_sec: next(),
        max_election_randomize_sec: next(),
        initialize_retry_interval_sec: next(),
        prepare_retry_interval_sec: next(),
        vote_retry_interval_sec: next(),
        vote_max_outstanding_interval_sec: next(),
        c_p_query_retry_interval_sec: next(),
        max_checkpoint_interval_sec: next(),
        join_messages_interval_sec: next(),
        max_log_len_mb: next(),
        send_timeout_sec: next(),
        receive_timeout_sec: next(),
        max_cache_length_mb: next(),
        max_votes_in_log: next(),
        max_outstanding_per_replica: next(),
        max_checkpoints: next(),
        max_checkpoint_size_gb: next(),
        min_checkpoint_space_file_count: next(),
        max_logs: next(),
        log_len_randomize: next(),
        election_randomize: next(),
        fast_read_seq_threshold: next(),
        in_memory_execution_queue_size_mb: next(),
        num_reader_threads: next(),
        max_message_size_mb: next(),
        max_message_alert_size_mb: next(),
        window: next(),
        ..RslConfig::default()
    };
    if let Err(e) = config.validate() {
        assert!(!e.to_string().is_empty());
    }
});
