//! An NVM journal image of arbitrary bytes (in memory, behind the `Medium` trait): recovery
//! must refuse it or return what it holds, and then take appends; never panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use rsl_core::paxos::{Ballot, MemberId, Record};
use rsl_core::storage::{Medium, NvmJournal};
use rsl_core::wire::Version;
use std::ops::Range;

struct Image(Vec<u8>);

impl Medium for Image {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
    fn bytes_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }
    fn persist(&mut self, _: Range<usize>) {}
    fn sync(&mut self, _: Range<usize>) -> std::io::Result<()> {
        Ok(())
    }
    fn grow(&mut self, len: usize) -> std::io::Result<()> {
        self.0.resize(len, 0);
        Ok(())
    }
}

fuzz_target!(|data: &[u8]| {
    let mut image = data.to_vec();
    image.resize(image.len().max(4096), 0);
    let opened = NvmJournal::on_medium("fuzz.nvm".into(), Image(image), Version::V7, false);
    if let Ok((mut journal, _recovery)) = opened {
        let promise = Record::Promise(Ballot { number: 7, member: MemberId::new("1").unwrap() });
        if journal.append(&promise).is_ok() {
            let _ = journal.sync();
        }
    }
});
