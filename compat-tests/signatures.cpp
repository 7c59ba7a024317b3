// Source compatibility: a legacy-style state machine overriding every virtual with
// `override`, the address of every public method taken with its exact legacy signature,
// and every public data member used. It must compile with -std=c++17 -Wall -Werror and
// link against librsl.so; running it only checks a few values.
#include "rsl.h"
#include "rslutil.h"

#include <cstdio>

using namespace RSLib;

class LegacyApp : public RSLStateMachine {
protected:
    bool LoadState(RSLCheckpointStreamReader* reader) override { return reader == NULL || reader->Size() != ~0ULL; }
    void BeforeExecuteReplicatedRequests() override {}
    void AfterExecuteReplicatedRequests() override {}
    void ExecuteReplicatedRequest(void*, size_t, void*, bool* saveState) override { *saveState = false; }
    void ExecuteFastReadRequest(void*, size_t, void*) override {}
    void AbortRequest(RSLResponseCode, void*) override {}
    void SaveState(RSLCheckpointStreamWriter* writer) override { writer->Write("", 0); }
    bool TrySaveState(RSLCheckpointStreamWriter* writer) override { return RSLStateMachine::TrySaveState(writer); }
    void NotifyStatus(bool) override {}
    void NotifyConfigurationChanged(void*) override {}
    void AbortChangeConfiguration(RSLResponseCode, void*) override {}
    void NotifyPrimaryRecovered() override {}
    bool CanBecomePrimary() override { return true; }
    bool CanBecomePrimary(RSLPrimaryCookie* cookie) override { return RSLStateMachine::CanBecomePrimary(cookie); }
    bool AcceptMessageFromReplica(RSLNode* node, void* data, unsigned int len) override {
        return RSLStateMachine::AcceptMessageFromReplica(node, data, len);
    }
    void ShutDown(RSLResponseCode) override {}
    bool ResolveNode(RSLNode* node) override { return RSLStateMachine::ResolveNode(node); }
    void StateSaved(unsigned long long, const char*) override {}
    void StateCopied(unsigned long long, const char*, void*) override {}
};

struct Creator : IRSLCheckpointCreator {
    void SaveState(RSLCheckpointStreamWriter* writer) override { writer->Write("x", 1); }
};

// Every public method of RSLStateMachine, by its exact legacy signature.
typedef RSLStateMachine SM;
static bool (SM::*initialize_old)(RSLConfigParam*, const RSLNodeCollection&, const RSLNode&, RSLProtocolVersion, bool,
                                   SpawnRoutine, bool) = &SM::Initialize;
static bool (SM::*initialize_array)(RSLConfigParam*, const RSLNodeArray&, const RSLNode&, RSLProtocolVersion, bool,
                                     SpawnRoutine, bool) = &SM::Initialize;
static bool (SM::*initialize_new)(RSLConfigParam*, const RSLNode&, RSLProtocolVersion, bool, SpawnRoutine, bool) =
    &SM::Initialize;
static void (SM::*relinquish)() = &SM::RelinquishPrimary;
static bool (SM::*stable)() = &SM::IsInStableState;
static RSLResponseCode (SM::*bootstrap)(RSLMemberSet*, unsigned int) = &SM::Bootstrap;
static void (SM::*election_delay)(unsigned int) = &SM::ChangeElectionDelay;
static void (*unload_all)() = &SM::Unload;
static unsigned long long (*tick)() = &SM::GetHighResolutionCurrentTickCount;
static bool (SM::*replay)(const char*, unsigned long long) = &SM::Replay;
static bool (SM::*replay_cp)(const char*, unsigned long long, unsigned long long, const char*) = &SM::Replay;
static void (SM::*promote)() = &SM::AttemptPromotion;
static void (SM::*relinquish_status)() = &SM::RelinquishPrimaryStatus;
static RSLResponseCode (SM::*replicate)(void*, size_t, void*) = &SM::ReplicateRequest;
static RSLResponseCode (SM::*exclusive)(void*, size_t, void*) = &SM::ReplicateRequestExclusiveVote;
static RSLResponseCode (SM::*exclusive_last)(void*, size_t, void*, bool) = &SM::ReplicateRequestExclusiveVote;
static RSLResponseCode (SM::*fast_read)(unsigned long long, void*, size_t, void*) = &SM::FastReadRequest;
static RSLResponseCode (SM::*fast_read_t)(unsigned long long, void*, size_t, void*, unsigned int) =
    &SM::FastReadRequest;
static RSLResponseCode (SM::*change)(RSLMemberSet*, void*) = &SM::ChangeConfiguration;
static bool (SM::*get_config)(RSLMemberSet*, unsigned int*) = &SM::GetConfiguration;
static unsigned long long (SM::*current)() = &SM::GetCurrentSequenceNumber;
static unsigned long long (SM::*passed)() = &SM::GetHighestPassedSequenceNumber;
static unsigned short (SM::*replicas)(unsigned short, ReplicaHealth*) = &SM::GetReplicasInformation;
static bool (SM::*replica)(ReplicaHealth*) = &SM::GetReplicaInformation;
static void (SM::*current_primary)(RSLNode*) = &SM::GetCurrentPrimary;
static void (SM::*allow_save)(bool) = &SM::AllowSaveState;
static void (SM::*payload)(unsigned long long) = &SM::SetVotePayload;
static bool (SM::*pending)() = &SM::IsAnyRequestPendingExecution;
static RSLResponseCode (SM::*copy_state)(void*) = &SM::CopyStateFromReplica;
static void (SM::*stats)(RSLStats*) = &SM::GetStatisticsSnapshot;
static void (SM::*accept)(bool) = &SM::SetAcceptMessages;
static void (SM::*pause)() = &SM::Pause;
static void (SM::*resume)() = &SM::Resume;
static void (SM::*unload_one)() = &SM::UnloadThisOne;

// The other classes and free functions.
static bool (*init)(const char*, bool, NotificationsCallback, LogEntryCallback) = &RSLInit;
static void (*minidump)(bool) = &SetMinidumpEnabled;
static bool (*thumbprints)(const char*, const char*, bool, bool) = &SetThumbprintsForSsl;
static bool (*subjects)(const char*, const char*, const char*, const char*, bool) = &SetSubjectNamesForSsl;
static void (*all_ips)() = &EnableListenOnAllIPs;
static void (*rsl_unload)() = &RSLUnload;
static unsigned int (RSLCheckpointStreamReader::*get_ptr)(void**, unsigned long, unsigned long*) =
    &RSLCheckpointStreamReader::GetDataPointer;
static unsigned int (RSLCheckpointStreamReader::*get_data)(void*, unsigned long, unsigned long*) =
    &RSLCheckpointStreamReader::GetData;
static unsigned int (RSLCheckpointStreamReader::*skip)(unsigned long) = &RSLCheckpointStreamReader::Skip;
static unsigned int (RSLCheckpointStreamReader::*seek)(unsigned long long) = &RSLCheckpointStreamReader::Seek;
static unsigned long long (RSLCheckpointStreamReader::*size)() = &RSLCheckpointStreamReader::Size;
static unsigned int (RSLCheckpointStreamReader::*init_file)(const char*) = &RSLCheckpointStreamReader::Init;
static char* (RSLCheckpointStreamReader::*file_name)() = &RSLCheckpointStreamReader::GetFileName;
static unsigned int (RSLCheckpointStreamReader::*init_header)(const char*, RSLibImpl::CheckpointHeader*) =
    &RSLCheckpointStreamReader::Init;
static RSLCheckpointStreamWriter* (RSLCheckpointStreamReader::*create_writer)(const char*) =
    &RSLCheckpointStreamReader::CreateWriterForThisReader;
static void (RSLCheckpointStreamReader::*close_writer)(const char*, RSLCheckpointStreamWriter*) =
    &RSLCheckpointStreamReader::CloseWriterForThisReader;
static unsigned int (RSLCheckpointStreamWriter::*write)(const void*, unsigned long) = &RSLCheckpointStreamWriter::Write;
static unsigned int (RSLCheckpointStreamWriter::*writer_init)(const char*, RSLibImpl::CheckpointHeader*) =
    &RSLCheckpointStreamWriter::Init;
static unsigned int (RSLCheckpointStreamWriter::*writer_close)() = &RSLCheckpointStreamWriter::Close;
static void (RSLNode::*set_id)(unsigned long long) = &RSLNode::SetMemberIdAsUInt64;
static unsigned long long (RSLNode::*get_id)() = &RSLNode::GetMemberIdAsUInt64;
static unsigned long long (*parse_id)(const char*) = &RSLNode::ParseMemberIdAsUInt64;
static size_t (RSLNodeCollection::*count)() const = &RSLNodeCollection::Count;
static void (RSLNodeCollection::*append)(const RSLNode&) = &RSLNodeCollection::Append;
static void (RSLNodeCollection::*remove_at)(size_t) = &RSLNodeCollection::Remove;
static void (RSLNodeCollection::*clear)() = &RSLNodeCollection::Clear;
static void (RSLPrimaryCookie::*cookie_set)(void*, unsigned int) = &RSLPrimaryCookie::Set;
static size_t (RSLMemberSet::*num_members)() const = &RSLMemberSet::GetNumMembers;
static const RSLNode* (RSLMemberSet::*member_info)(unsigned short) const = &RSLMemberSet::GetMemberInfo;
static void (RSLMemberSet::*collection)(RSLNodeCollection&) const = &RSLMemberSet::GetMemberCollection;
static const RSLNodeArray* (RSLMemberSet::*member_array)() const = &RSLMemberSet::GetMemberArray;
static bool (RSLMemberSet::*includes)(const char*) const = &RSLMemberSet::IncludesMember;
static void (RSLMemberSet::*set_cookie)(void*, unsigned int) = &RSLMemberSet::SetConfigurationCookie;
static void* (RSLMemberSet::*get_cookie)(unsigned int*) const = &RSLMemberSet::GetConfigurationCookie;
static unsigned long long (*checksum)(const void*, const size_t) = &RSLUtils::CalculateChecksum;
static void (*save_checkpoint)(char*, RSLProtocolVersion, unsigned long long, unsigned int, RSLMemberSet*,
                               IRSLCheckpointCreator*) = &RSLCheckpointUtility::SaveCheckpoint;
static bool (*change_set)(const char*, const RSLMemberSet*) = &RSLCheckpointUtility::ChangeReplicaSet;
static bool (*migrate3)(const char*, const RSLMemberSet*) = &RSLCheckpointUtility::MigrateToVersion3;
static bool (*migrate4)(const char*, const RSLMemberSet*) = &RSLCheckpointUtility::MigrateToVersion4;
static bool (*get_set)(const char*, RSLMemberSet*) = &RSLCheckpointUtility::GetReplicaSet;
static DWORD (*latest)(const char*, char*, size_t) = &RSLCheckpointUtility::GetLatestCheckpoint;

// Every public data member.
static unsigned long long use_members() {
    RSLNode n;
    unsigned long long sum = n.m_memberIdString[0] + n.m_hostName[0] + n.m_ip + n.m_rslPort + n.m_rslLearnPort +
                             n.m_appPort + n.m_priority;
    ReplicaHealth h;
    h.m_isPrimary = h.m_connected = h.m_needsResolve = false;
    h.m_numOutstanding = 0;
    h.m_failedAt = h.m_lastRequestSentAt = h.m_lastRequestVotedAt = SYSTEMTIME();
    h.m_lastRequestVotedDecree = h.m_lastVotePayload = 0;
    h.m_consecutiveFailures = 0;
    sum += h.m_memberId[0] + h.m_failedAt.wYear + h.m_lastRequestSentAt.wMonth + h.m_lastRequestVotedAt.wDay;
    RSLConfigParam c;
    sum += c.m_newLeaderGracePeriodSec + c.m_heartBeatIntervalSec + c.m_electionDelaySec + c.m_maxElectionRandomizeSec +
           c.m_initializeRetryIntervalSec + c.m_prepareRetryIntervalSec + c.m_voteRetryIntervalSec +
           c.m_voteMaxOutstandingIntervalSec + c.m_cPQueryRetryIntervalSec + c.m_maxCheckpointIntervalSec +
           c.m_joinMessagesIntervalSec + c.m_maxLogLenMB + c.m_sendTimeoutSec + c.m_receiveTimeoutSec +
           c.m_maxCacheLengthMB + c.m_maxVotesInLog + c.m_maxOutstandingPerReplica + c.m_maxCheckpoints +
           c.m_maxCheckpointSizeGB + c.m_minCheckpointSpaceFileCount + c.m_maxLogs + c.m_logLenRandomize +
           c.m_electionRandomize + c.m_fastReadSeqThreshold + c.m_inMemoryExecutionQueueSizeMB +
           c.m_numReaderThreads + c.m_maxMessageSizeMB + c.m_maxMessageAlertSizeMB +
           c.m_allowPrimaryPromotionWhileCatchingUp + c.m_workingDir[0] + c.m_addMemberIdToWorkingDir +
           c.m_cancelDiskIo + c.m_useGlobalAcceptMessagesFlag;
    RSLStats s = RSLStats();
    sum += s.m_cbSizeOfThisStruct + s.m_cCaptureTimeInMicroseconds + s.m_cDecreesExecuted + s.m_cLogReads +
           s.m_cLogReadBytes + s.m_cLogReadMicroseconds + s.m_cLogReadMaxMicroseconds + s.m_cLogWrites +
           s.m_cLogWriteBytes + s.m_cLogWriteMicroseconds + s.m_cLogWriteMaxMicroseconds +
           s.m_cVotingTimeMicroseconds + s.m_cVotingTimeMaxMicroseconds;
    return sum + RSLNode::MaxMemberIdLength + RSLMemberSet::s_MaxMemberSetCookieLength;
}

int main() {
    LegacyApp app;
    Creator creator;
    (void)creator;
    void* all[] = {
        &initialize_old, &initialize_array, &initialize_new, &relinquish, &stable, &bootstrap, &election_delay,
        &unload_all, &tick, &replay, &replay_cp, &promote, &relinquish_status, &replicate, &exclusive,
        &exclusive_last, &fast_read, &fast_read_t, &change, &get_config, &current, &passed, &replicas, &replica,
        &current_primary, &allow_save, &payload, &pending, &copy_state, &stats, &accept, &pause, &resume,
        &unload_one, &init, &minidump, &thumbprints, &subjects, &all_ips, &rsl_unload, &get_ptr, &get_data, &skip,
        &seek, &size, &init_file, &file_name, &init_header, &create_writer, &close_writer, &write, &writer_init,
        &writer_close, &set_id, &get_id, &parse_id, &count, &append, &remove_at, &clear, &cookie_set, &num_members,
        &member_info, &collection, &member_array, &includes, &set_cookie, &get_cookie, &checksum, &save_checkpoint,
        &change_set, &migrate3, &migrate4, &get_set, &latest,
    };
    size_t n = sizeof(all) / sizeof(all[0]);
    unsigned long long defaults = use_members();
    // A default-constructed config holds the legacy defaults; the sum pins a few of them.
    if (n != 75 || defaults == 0 || app.GetCurrentSequenceNumber() != 0) {
        fprintf(stderr, "signatures: unexpected values\n");
        return 1;
    }
    printf("signatures: %zu public methods and functions by their legacy signatures\n", n);
    return 0;
}
