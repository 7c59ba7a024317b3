//! Legacy `RSLCheckpointUtility::ChangeReplicaSet` and `MigrateToVersion3/4`: a
//! checkpoint's header rewritten with a new member set (and maybe a new version), its
//! payload copied — re-framed in 4 MiB checksummed blocks when the new version has them —
//! into `<name>.tmp`, which then replaces the file.

use super::header::{CheckpointConfiguration, CheckpointHeader, DEFAULT_BLOCK_SIZE};
use super::{CheckpointReader, CheckpointWriter, ReadError, SaveError};
use crate::paxos::{Decree, Member, MemberSet};
use crate::wire::{EncodeError, Version, WireVote};
use bytes::Bytes;
use std::path::Path;

/// Rewrites `path` for `members`: in the file's own version (`version` None, which must be
/// 3 or later) or in `version` (3 or later). Migrating a v1–v2 file makes configuration 1
/// from decree 0, as legacy does; the ids must suit the version (numeric up to v3).
pub fn change_replica_set(
    path: &Path,
    members: Vec<Member>,
    version: Option<Version>,
) -> Result<(), SaveError> {
    rewrite(path, |old| {
        let version = version.unwrap_or(old.version);
        if version < Version::V3 {
            return Err(SaveError::Encode(EncodeError::NotInVersion { field: "a replica set", version }));
        }
        MemberSet::new(members.clone(), Bytes::new())
            .map_err(|_| SaveError::Encode(EncodeError::Invalid("the member set does not verify")))?;
        let configuration = match &old.configuration {
            Some(c) => CheckpointConfiguration { members, ..c.clone() },
            None => CheckpointConfiguration {
                number: 1,
                initial_decree: Decree(0),
                members,
                cookie: Bytes::new(),
            },
        };
        let next_vote = WireVote::from_core(&old.next_vote.clone().into_core(), version);
        let new_blocks = version >= Version::V4 && old.version < Version::V4;
        Ok(CheckpointHeader {
            version,
            configuration: Some(configuration),
            block_size: if new_blocks { DEFAULT_BLOCK_SIZE } else { old.block_size },
            state_saved: old.state_saved || old.version < Version::V4,
            next_vote,
            ..old.clone()
        })
    })
}

/// Rewrites `path` under the header `header` makes of the old one, the payload copied.
pub fn rewrite(
    path: &Path,
    header: impl FnOnce(&CheckpointHeader) -> Result<CheckpointHeader, SaveError>,
) -> Result<(), SaveError> {
    let mut reader = CheckpointReader::open(path).map_err(SaveError::Verify)?;
    let header = header(reader.header())?;
    let mut writer = CheckpointWriter::create_file(path, header)?;
    loop {
        match reader.get_data_pointer(usize::MAX) {
            Ok(bytes) => {
                writer.write(bytes).map_err(|e| SaveError::Io { path: path.to_owned(), source: e })?
            }
            Err(ReadError::Eof) => break,
            Err(e) => return Err(SaveError::Verify(e)),
        }
    }
    writer.finish().map(drop)
}
