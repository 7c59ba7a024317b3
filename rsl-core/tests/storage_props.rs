//! Property: any sequence of votes and promises, appended with syncs at random points,
//! comes back from either journal exactly, in order, after a restart; through rotation for
//! the file journal and through growth for the nvm journal.

mod storage_support;

use proptest::prelude::*;
use rsl_core::paxos::Record;
use rsl_core::storage::{FileJournal, FileOptions, Journal, NvmJournal, NvmOptions};
use rsl_core::wire::Version;
use storage_support::{learned_vote, promise, vote, TempDir};

/// A record and whether a sync follows it.
fn step() -> impl Strategy<Value = (Record, bool)> {
    let record = prop_oneof![
        (0u64..50, 1u32..5, prop::collection::vec(prop::collection::vec(any::<u8>(), 1..700), 0..4))
            .prop_map(|(d, b, reqs)| vote(d, b, &reqs.iter().map(Vec::as_slice).collect::<Vec<_>>())),
        (1u32..5).prop_map(promise),
        (0u64..50, 1u32..5).prop_map(|(d, b)| learned_vote(d, b)),
    ];
    (record, any::<bool>())
}

fn round_trip<J: Journal>(options: impl Fn() -> J::Options, steps: &[(Record, bool)]) -> Vec<Record> {
    let dir = TempDir::new("props");
    {
        let (mut journal, _) = J::open(dir.path(), options()).unwrap();
        for (record, sync) in steps {
            journal.append(record).unwrap();
            if *sync {
                journal.sync().unwrap();
            }
        }
        journal.sync().unwrap();
    }
    J::open(dir.path(), options()).unwrap().1.recovered.records
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn random_record_sequences_round_trip(steps in prop::collection::vec(step(), 0..40), version in 1u16..=7) {
        let version = Version::from_u16(version).unwrap();
        let expected: Vec<Record> = steps.iter().map(|(r, _)| r.clone()).collect();
        let file = || FileOptions { max_log_len_bytes: 3000, preallocate_bytes: 1024, ..FileOptions::new(version) };
        prop_assert_eq!(&round_trip::<FileJournal>(file, &steps), &expected);
        let nvm = || NvmOptions { capacity_bytes: 4096, ..NvmOptions::new(version) };
        prop_assert_eq!(&round_trip::<NvmJournal>(nvm, &steps), &expected);
    }
}
