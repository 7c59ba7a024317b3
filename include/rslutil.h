// rslutil.h — legacy RSL's checkpoint tools (src/inc/rslutil.h), header-only over librsl.so.
#ifndef RSLUTIL_H
#define RSLUTIL_H

#include "rsl.h"

namespace RSLib {

class RSL_IMPORT_EXPORT IRSLCheckpointCreator {
public:
    virtual void SaveState(RSLCheckpointStreamWriter* writer) = 0;  // no virtual destructor, as legacy
};

class RSL_IMPORT_EXPORT RSLCheckpointUtility {
public:
    // Writes <directoryName>/<lastExecutedSequenceNumber>.codex. Legacy asserts on a NULL
    // directory or creator, decree 0, or (version > 2) an invalid member set; rsl ends the
    // process too, with a message, since the call has no way to report failure.
    static void SaveCheckpoint(char* directoryName, RSLProtocolVersion version,
                               unsigned long long lastExecutedSequenceNumber, unsigned int configurationNumber,
                               RSLMemberSet* memberSet, IRSLCheckpointCreator* checkpointCreator) {
        std::vector<RSLNode> nodes;
        for (size_t i = 0; memberSet && i < memberSet->GetNumMembers(); i++) nodes.push_back(*memberSet->GetMemberInfo(i));
        bool saved = checkpointCreator != NULL &&
                     rsl_checkpoint_save(directoryName, static_cast<uint32_t>(version), lastExecutedSequenceNumber,
                                         configurationNumber, reinterpret_cast<const RslNode*>(nodes.data()),
                                         nodes.size(), OnSaveState, checkpointCreator);
        if (!saved) {
            fprintf(stderr, "rsl: RSLCheckpointUtility::SaveCheckpoint failed (see the rsl log)\n");
            abort();
        }
    }
    // Rewrites the checkpoint's header with memberSet, in the file's version (3 or later).
    static bool ChangeReplicaSet(const char* checkpointName, const RSLMemberSet* memberSet) {
        return Rewrite(checkpointName, 0, memberSet);
    }
    // The same in version 3 (member ids must be numeric) or 4 (checksum blocks added).
    static bool MigrateToVersion3(const char* checkpointName, const RSLMemberSet* memberSet) {
        return Rewrite(checkpointName, 3, memberSet);
    }
    static bool MigrateToVersion4(const char* checkpointName, const RSLMemberSet* memberSet) {
        return Rewrite(checkpointName, 4, memberSet);
    }
    static bool GetReplicaSet(const char* checkpointName, RSLMemberSet* memberSet) {
        if (memberSet == NULL) return false;
        RslNode nodes[64];
        size_t count = 0;
        if (!rsl_checkpoint_replica_set(checkpointName, nodes, 64, &count)) return false;
        memberSet->m_members.Clear();
        for (size_t i = 0; i < count && i < 64; i++) memberSet->m_members.Append(*reinterpret_cast<RSLNode*>(&nodes[i]));
        return true;
    }
    static DWORD GetLatestCheckpoint(const char* directoryName, char* buf, size_t bufSize) {
        return rsl_checkpoint_latest(directoryName, buf, bufSize);
    }

private:
    RSLCheckpointUtility();
    static void OnSaveState(void* creator, RslCheckpointWriter* lent) noexcept {
        RSLCheckpointStreamWriter writer(lent);
        static_cast<IRSLCheckpointCreator*>(creator)->SaveState(&writer);
    }
    static bool Rewrite(const char* checkpointName, uint32_t version, const RSLMemberSet* memberSet) {
        if (memberSet == NULL) return false;
        std::vector<RSLNode> nodes;
        for (size_t i = 0; i < memberSet->GetNumMembers(); i++) nodes.push_back(*memberSet->GetMemberInfo(i));
        return rsl_checkpoint_change_replica_set(checkpointName, version, reinterpret_cast<const RslNode*>(nodes.data()),
                                                 nodes.size());
    }
};

}  // namespace RSLib

#endif  // RSLUTIL_H
