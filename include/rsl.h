// rsl.h — the legacy RSLib C++ API (Azure RSL's src/inc/rsl.h), source-compatible, on
// Linux. Header-only: every method calls librsl.so's C ABI (rsl_c.h), so the library
// exports only C symbols. Callbacks reach the virtuals through noexcept trampolines.
//
// Differences from legacy, all deliberate:
// - Legacy's periodic Join messages are not sent: a Join answers a JoinRequest (which a
//   replica that never took the bootstrap sends to join a later configuration).
// - SetThumbprintsForSsl / SetSubjectNamesForSsl return false (and log why) on a bad
//   thumbprint or a missing certificate, where legacy returned true.
// - Invalid arguments (a NULL or empty request, a NULL config) return RSLInvalidParameter
//   or false where legacy asserts.
// - Callbacks of lock class None (CanBecomePrimary, AcceptMessageFromReplica, unserialized
//   fast reads) run under the shared lock: stronger than legacy, never weaker.
#ifndef RSL_H
#define RSL_H

#include <cerrno>
#include <cstdarg>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <vector>

#include "rsl_c.h"

// ---- §1.8: the Windows names legacy code uses -------------------------------------------
#ifndef MAX_PATH
#define MAX_PATH 260
#endif
typedef uint32_t DWORD;
typedef uint16_t WORD;
#ifndef _SYSTEMTIME_DEFINED
#define _SYSTEMTIME_DEFINED
typedef struct _SYSTEMTIME {
    uint16_t wYear, wMonth, wDayOfWeek, wDay, wHour, wMinute, wSecond, wMilliseconds;
} SYSTEMTIME;
#endif
#ifndef NO_ERROR
#define NO_ERROR 0
#endif
#ifndef ERROR_FILE_NOT_FOUND
#define ERROR_FILE_NOT_FOUND 2
#endif
#ifndef ERROR_CRC
#define ERROR_CRC 23
#endif
#ifndef ERROR_HANDLE_EOF
#define ERROR_HANDLE_EOF 38
#endif
#ifndef ERROR_INVALID_PARAMETER
#define ERROR_INVALID_PARAMETER 87
#endif
#ifndef ERROR_INSUFFICIENT_BUFFER
#define ERROR_INSUFFICIENT_BUFFER 122
#endif
#ifndef STDCALL
#define STDCALL
#endif
#ifndef RSL_IMPORT_EXPORT
#define RSL_IMPORT_EXPORT
#endif

namespace RSLibImpl {
class Legislator;
class PrimaryCookie;
class MemberSet;
class CheckpointHeader;
class APSEQREAD;
class APSEQWRITE;
}  // namespace RSLibImpl
class TestEngine;

namespace RSLib {

class RSLCheckpointStreamWriter;
class RSLCheckpointUtility;
class RSLStateMachine;

// ---- §1.3–1.5: typedefs, enums ----------------------------------------------------------
typedef enum {
    CallBackLogLevel_Debug = 0,
    CallBackLogLevel_Info = 1,
    CallBackLogLevel_Status = 2,
    CallBackLogLevel_Warning = 3,
    CallBackLogLevel_Error = 4,
    CallBackLogLevel_Alert = 5,
    CallBackLogLevel_Assert = 6,
} CallBackLogLevel;

typedef void (*NotificationsCallback)(int level, int logId, const char* title, const char* message);
typedef void (*LogEntryCallback)(const char* file, const char* function, int line, int logId,
                                 CallBackLogLevel level, const char* title, const char* fmt, va_list args);

enum RSLResponseCode {
    RSLSuccess = 0,
    RSLFastReadStale = 1,
    RSLNotPrimary = 2,
    RSLShuttingDown = 3,
    RSLAlreadyBootstrapped = 4,
    RSLBootstrapFailed = 5,
    RSLInvalidParameter = 6,
};

enum ThreadPriority {
    Priority_Normal = 0,
    Priority_AboveNormal = 1,
    Priority_BelowNormal = 2,
    Priority_Highest = 3,
    Priority_Lowest = 4,
    Priority_OutOfGC = 16,
};

typedef void (*SpawnRoutine)(unsigned int (*)(void*), ThreadPriority, void*);

enum RSLProtocolVersion {
    RSLProtocolVersion_1 = 1,
    RSLProtocolVersion_2 = 2,
    RSLProtocolVersion_3 = 3,
    RSLProtocolVersion_4 = 4,
    RSLProtocolVersion_5 = 5,
    RSLProtocolVersion_6 = 6,
};

namespace detail {
// The callbacks RSLInit installed (the C ABI's log callback has no userdata).
inline LogEntryCallback& log_entry() {
    static LogEntryCallback cb = NULL;
    return cb;
}
inline NotificationsCallback& notifications() {
    static NotificationsCallback cb = NULL;
    return cb;
}
inline void forward_log(const char* file, const char* function, int line, int logId, CallBackLogLevel level,
                        const char* title, const char* fmt, ...) {
    va_list args;
    va_start(args, fmt);
    log_entry()(file, function, line, logId, level, title, fmt, args);
    va_end(args);
}
extern "C" inline void log_trampoline(const char* file, const char* function, int32_t line, int32_t logId,
                                      int32_t level, const char* title, const char* message) noexcept {
    forward_log(file, function, line, logId, static_cast<CallBackLogLevel>(level), title, "%s", message);
}
extern "C" inline void notify_trampoline(int32_t level, int32_t logId, const char* title,
                                         const char* message) noexcept {
    notifications()(level, logId, title, message);
}
inline unsigned long long monotonic_us() {
    timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<unsigned long long>(ts.tv_sec) * 1000000ULL + ts.tv_nsec / 1000;
}
}  // namespace detail

// ---- §1.2: free functions ----------------------------------------------------------------
inline bool STDCALL RSLInit(const char* debugLogPath, bool logDebugMessages = false,
                            NotificationsCallback callback = NULL, LogEntryCallback logEntryCallback = NULL) {
    detail::notifications() = callback;
    detail::log_entry() = logEntryCallback;
    return rsl_init(debugLogPath, logDebugMessages, callback ? detail::notify_trampoline : NULL,
                    logEntryCallback ? detail::log_trampoline : NULL);
}

// Linux has no minidumps; core dumps are the system's setting.
inline void STDCALL SetMinidumpEnabled(bool) {}

// TLS with pinned thumbprints on replicas started afterwards; certificates (PEM chain and
// key per file) come from $RSL_CERT_DIR (default /etc/rsl/certs). Unlike legacy, a bad
// thumbprint or a missing certificate returns false (and logs why).
inline bool STDCALL SetThumbprintsForSsl(const char* pThumbPrintA, const char* pThumbPrintB,
                                         bool validateCAChain, bool checkCertificateRevocation) {
    return rsl_set_thumbprints_for_ssl(pThumbPrintA, pThumbPrintB, validateCAChain,
                                       checkCertificateRevocation);
}

// Peers by subject name and issuer thumbprints (",;"-separated); see
// rsl_set_subject_names_for_ssl. Returns false, logging why, on any failure.
inline bool STDCALL SetSubjectNamesForSsl(const char* pSubjectA, const char* pThumbPrintsParentA,
                                          const char* pSubjectB, const char* pThumbPrintsParentB,
                                          bool considerIdentitiesWhitelist) {
    return rsl_set_subject_names_for_ssl(pSubjectA, pThumbPrintsParentA, pSubjectB,
                                         pThumbPrintsParentB, considerIdentitiesWhitelist);
}

inline void STDCALL EnableListenOnAllIPs() { rsl_enable_listen_on_all_ips(); }

// Nothing to stop: rsl has no global network library; replicas stop in UnloadThisOne.
inline void STDCALL RSLUnload() {}

// ---- §1.6: classes -----------------------------------------------------------------------
class RSL_IMPORT_EXPORT RSLCheckpointStreamReader {
public:
    RSLCheckpointStreamReader() : m_handle(NULL), m_owned(false), m_filename(NULL) {}
    ~RSLCheckpointStreamReader() { Close(); }

    unsigned int GetDataPointer(void** ppvBuffer, unsigned long dwNumBytes, unsigned long* pcbRead) {
        if (ppvBuffer == NULL || pcbRead == NULL) return ERROR_INVALID_PARAMETER;
        const uint8_t* data = NULL;
        size_t read = 0;
        unsigned int rc = rsl_checkpoint_reader_get_data_pointer(m_handle, &data, dwNumBytes, &read);
        *ppvBuffer = const_cast<uint8_t*>(data);
        *pcbRead = static_cast<unsigned long>(read);
        return rc;
    }
    unsigned int GetDataPointer(void** ppvBuffer, unsigned long dwNumBytes, unsigned int* pcbRead) {
        if (pcbRead == NULL) return ERROR_INVALID_PARAMETER;
        unsigned long read = 0;
        unsigned int rc = GetDataPointer(ppvBuffer, dwNumBytes, &read);
        *pcbRead = static_cast<unsigned int>(read);
        return rc;
    }
    unsigned int GetData(void* pvBuffer, unsigned long dwNumBytes, unsigned long* pcbRead) {
        if (pvBuffer == NULL) return ERROR_INVALID_PARAMETER;
        void* data = NULL;
        unsigned int rc = GetDataPointer(&data, dwNumBytes, pcbRead);
        if (rc == NO_ERROR) memcpy(pvBuffer, data, *pcbRead);
        return rc;
    }
    unsigned int GetData(void* pvBuffer, unsigned long dwNumBytes, unsigned int* pcbRead) {
        if (pcbRead == NULL) return ERROR_INVALID_PARAMETER;
        unsigned long read = 0;
        unsigned int rc = GetData(pvBuffer, dwNumBytes, &read);
        *pcbRead = static_cast<unsigned int>(read);
        return rc;
    }
    unsigned int Skip(unsigned long dwNumBytes) { return rsl_checkpoint_reader_skip(m_handle, dwNumBytes); }
    unsigned int Seek(unsigned long long offset) { return rsl_checkpoint_reader_seek(m_handle, offset); }
    unsigned long long Size() { return rsl_checkpoint_reader_size(m_handle); }
    unsigned int Init(const char* file) {
        Close();
        if (file == NULL) return ERROR_INVALID_PARAMETER;
        unsigned int rc = rsl_checkpoint_reader_open(file, &m_handle);
        if (rc == NO_ERROR) {
            m_owned = true;
            m_filename = strdup(file);
        }
        return rc;
    }
    char* GetFileName() { return m_filename; }
    unsigned int Init(const char* file, RSLibImpl::CheckpointHeader*) { return Init(file); }
    // A writer for a new checkpoint at `file` under this reader's header; NULL for a reader
    // handed to LoadState (as legacy) or on failure. Close it with CloseWriterForThisReader.
    RSLCheckpointStreamWriter* CreateWriterForThisReader(const char* file);
    // Writes the header with the payload's size and installs the file (failures are
    // logged; legacy asserted), then deletes the writer.
    void CloseWriterForThisReader(const char* file, RSLCheckpointStreamWriter* writer);

private:
    friend class RSLStateMachine;
    // A reader rsl lends to LoadState for the duration of the call.
    explicit RSLCheckpointStreamReader(RslCheckpointReader* lent) : m_handle(lent), m_owned(false), m_filename(NULL) {}
    RSLCheckpointStreamReader(const RSLCheckpointStreamReader&);
    RSLCheckpointStreamReader& operator=(const RSLCheckpointStreamReader&);
    void Close() {
        if (m_owned) rsl_checkpoint_reader_free(m_handle);
        free(m_filename);
        m_handle = NULL;
        m_owned = false;
        m_filename = NULL;
    }
    RslCheckpointReader* m_handle;
    bool m_owned;
    char* m_filename;
};

class RSL_IMPORT_EXPORT RSLCheckpointStreamWriter {
public:
    RSLCheckpointStreamWriter() : m_handle(NULL) {}
    ~RSLCheckpointStreamWriter() {}
    unsigned int Write(const void* pbWrite, unsigned long cbWrite) {
        return rsl_checkpoint_writer_write(m_handle, static_cast<const uint8_t*>(pbWrite), cbWrite);
    }
    // Applications only receive writers (in SaveState); rsl creates and closes them.
    unsigned int Init(const char*, RSLibImpl::CheckpointHeader*) { return ERROR_INVALID_PARAMETER; }
    unsigned int Close() { return NO_ERROR; }

private:
    friend class RSLStateMachine;
    friend class RSLCheckpointUtility;
    friend class RSLCheckpointStreamReader;
    explicit RSLCheckpointStreamWriter(RslCheckpointWriter* handle) : m_handle(handle) {}
    RSLCheckpointStreamWriter(const RSLCheckpointStreamWriter&);
    RSLCheckpointStreamWriter& operator=(const RSLCheckpointStreamWriter&);
    RslCheckpointWriter* m_handle;
};

inline RSLCheckpointStreamWriter* RSLCheckpointStreamReader::CreateWriterForThisReader(const char* file) {
    RslCheckpointWriter* handle = NULL;
    if (!m_owned || rsl_checkpoint_reader_create_writer(m_handle, file, &handle) != NO_ERROR) return NULL;
    return new RSLCheckpointStreamWriter(handle);
}

inline void RSLCheckpointStreamReader::CloseWriterForThisReader(const char*, RSLCheckpointStreamWriter* writer) {
    if (writer == NULL) return;
    rsl_checkpoint_writer_close(writer->m_handle);
    writer->m_handle = NULL;
    delete writer;
}

class RSL_IMPORT_EXPORT RSLNode {
public:
    static const size_t MaxMemberIdLength = 63;

    char m_memberIdString[MaxMemberIdLength + 1];
    char m_hostName[256];
    unsigned int m_ip;
    unsigned short m_rslPort;
    unsigned short m_rslLearnPort;
    unsigned short m_appPort;
    unsigned int m_priority;

    RSLNode() : m_ip(0), m_rslPort(0), m_rslLearnPort(0), m_appPort(0), m_priority(0) {
        m_memberIdString[0] = '\0';
        m_hostName[0] = '\0';
    }
    void SetMemberIdAsUInt64(unsigned long long memberId) {
        snprintf(m_memberIdString, sizeof(m_memberIdString), "%llu", memberId);
    }
    unsigned long long GetMemberIdAsUInt64() { return ParseMemberIdAsUInt64(m_memberIdString); }
    // Legacy asserts (ends the process) on an id that is not a number; so does this.
    static unsigned long long ParseMemberIdAsUInt64(const char* memberId) {
        if (memberId == NULL || memberId[0] == '\0') return 0;
        char* end = NULL;
        errno = 0;
        unsigned long long value = strtoull(memberId, &end, 0);
        if (errno != 0 || end == memberId || *end != '\0') {
            fprintf(stderr, "rsl: member id \"%s\" is not a number\n", memberId);
            abort();
        }
        return value;
    }
};

typedef std::vector<RSLNode> RSLNodeArray;

class RSL_IMPORT_EXPORT ReplicaHealth {
public:
    char m_memberId[RSLNode::MaxMemberIdLength + 1];
    bool m_isPrimary;
    bool m_connected;
    long m_numOutstanding;
    SYSTEMTIME m_failedAt;
    SYSTEMTIME m_lastRequestSentAt;
    SYSTEMTIME m_lastRequestVotedAt;
    unsigned long long m_lastRequestVotedDecree;
    unsigned int m_consecutiveFailures;
    bool m_needsResolve;
    unsigned long long m_lastVotePayload;

    ReplicaHealth() { m_memberId[0] = '\0'; }
};

class RSL_IMPORT_EXPORT RSLNodeCollection {
public:
    RSLNodeCollection() : m_size(0), m_count(0), m_array(NULL) { EnsureSize(); }
    RSLNodeCollection(const RSLNodeCollection& other) : m_size(0), m_count(0), m_array(NULL) {
        EnsureSize();
        CopyFrom(other);
    }
    ~RSLNodeCollection() { delete[] m_array; }
    RSLNodeCollection& operator=(const RSLNodeCollection& other) {
        if (this != &other) {
            Clear();
            CopyFrom(other);
        }
        return *this;
    }
    size_t Count() const { return m_count; }
    void Append(const RSLNode& node) {
        EnsureSize();
        m_array[m_count++] = node;
    }
    void Remove(size_t index) {
        if (index >= m_count) {
            fprintf(stderr, "rsl: RSLNodeCollection::Remove(%zu) of %zu nodes\n", index, m_count);
            abort();
        }
        for (size_t i = index + 1; i < m_count; i++) m_array[i - 1] = m_array[i];
        m_count--;
    }
    RSLNode& operator[](size_t index) const {
        if (index >= m_size) {
            fprintf(stderr, "rsl: RSLNodeCollection[%zu] beyond capacity %zu\n", index, m_size);
            abort();
        }
        return m_array[index];
    }
    void Clear() { m_count = 0; }

private:
    static const size_t s_Increment = 5;
    void EnsureSize() {
        if (m_count < m_size) return;
        RSLNode* grown = new RSLNode[m_size + s_Increment];
        for (size_t i = 0; i < m_count; i++) grown[i] = m_array[i];
        delete[] m_array;
        m_array = grown;
        m_size += s_Increment;
    }
    void CopyFrom(const RSLNodeCollection& other) {
        for (size_t i = 0; i < other.m_count; i++) Append(other.m_array[i]);
    }
    size_t m_size, m_count;
    RSLNode* m_array;
};

class RSL_IMPORT_EXPORT RSLPrimaryCookie {
public:
    RSLPrimaryCookie() {}
    ~RSLPrimaryCookie() {}
    void Set(void* data, unsigned int len) {
        const char* bytes = static_cast<const char*>(data);
        m_data.assign(bytes, bytes + (data ? len : 0));
    }

private:
    friend class RSLStateMachine;
    std::vector<char> m_data;
};

class RSL_IMPORT_EXPORT RSLMemberSet {
public:
    static const unsigned int s_MaxMemberSetCookieLength = 8192;

    RSLMemberSet() {}
    RSLMemberSet(const RSLNodeCollection& members, void* cookie, unsigned int cookieLength) : m_members(members) {
        SetConfigurationCookie(cookie, cookieLength);
    }
    RSLMemberSet(const RSLNodeArray& members, void* cookie, unsigned int cookieLength) {
        for (size_t i = 0; i < members.size(); i++) m_members.Append(members[i]);
        SetConfigurationCookie(cookie, cookieLength);
    }
    ~RSLMemberSet() {}
    size_t GetNumMembers() const { return m_members.Count(); }
    const RSLNode* GetMemberInfo(unsigned short whichMember) const {
        return whichMember < m_members.Count() ? &m_members[whichMember] : NULL;
    }
    void GetMemberCollection(RSLNodeCollection& nodes) const { nodes = m_members; }
    const RSLNodeArray* GetMemberArray() const {
        m_array.assign(&m_members[0], &m_members[0] + m_members.Count());
        return &m_array;
    }
    bool IncludesMember(const char* memberId) const {
        for (size_t i = 0; memberId && i < m_members.Count(); i++) {
            if (strcmp(m_members[i].m_memberIdString, memberId) == 0) return true;
        }
        return false;
    }
    void SetConfigurationCookie(void* cookie, unsigned int cookieLength) {
        const char* bytes = static_cast<const char*>(cookie);
        m_cookie.assign(bytes, bytes + (cookie ? cookieLength : 0));
    }
    void* GetConfigurationCookie(unsigned int* length) const {
        if (length) *length = static_cast<unsigned int>(m_cookie.size());
        return m_cookie.empty() ? NULL : const_cast<char*>(m_cookie.data());
    }

private:
    friend class RSLStateMachine;
    friend class RSLCheckpointUtility;
    RSLMemberSet(const RSLMemberSet&);
    RSLMemberSet& operator=(const RSLMemberSet&);
    RSLNodeCollection m_members;
    std::vector<char> m_cookie;
    mutable RSLNodeArray m_array;
};

struct RSL_IMPORT_EXPORT RSLConfigParam {
    long long m_newLeaderGracePeriodSec;
    long long m_heartBeatIntervalSec;
    long long m_electionDelaySec;
    long long m_maxElectionRandomizeSec;
    long long m_initializeRetryIntervalSec;
    long long m_prepareRetryIntervalSec;
    long long m_voteRetryIntervalSec;
    long long m_voteMaxOutstandingIntervalSec;
    long long m_cPQueryRetryIntervalSec;
    long long m_maxCheckpointIntervalSec;
    long long m_joinMessagesIntervalSec;
    long long m_maxLogLenMB;
    unsigned int m_sendTimeoutSec;
    unsigned int m_receiveTimeoutSec;
    unsigned int m_maxCacheLengthMB;
    unsigned int m_maxVotesInLog;
    unsigned int m_maxOutstandingPerReplica;
    unsigned int m_maxCheckpoints;
    unsigned int m_maxCheckpointSizeGB;
    unsigned int m_minCheckpointSpaceFileCount;
    unsigned int m_maxLogs;
    unsigned int m_logLenRandomize;
    unsigned int m_electionRandomize;
    unsigned int m_fastReadSeqThreshold;
    unsigned int m_inMemoryExecutionQueueSizeMB;
    unsigned int m_numReaderThreads;
    unsigned int m_maxMessageSizeMB;
    unsigned int m_maxMessageAlertSizeMB;
    bool m_allowPrimaryPromotionWhileCatchingUp;
    char m_workingDir[MAX_PATH + 1];
    bool m_addMemberIdToWorkingDir;
    bool m_cancelDiskIo;
    bool m_useGlobalAcceptMessagesFlag;

    RSLConfigParam()
        : m_newLeaderGracePeriodSec(15), m_heartBeatIntervalSec(2), m_electionDelaySec(10),
          m_maxElectionRandomizeSec(1), m_initializeRetryIntervalSec(1), m_prepareRetryIntervalSec(1),
          m_voteRetryIntervalSec(3), m_voteMaxOutstandingIntervalSec(480), m_cPQueryRetryIntervalSec(5),
          m_maxCheckpointIntervalSec(0), m_joinMessagesIntervalSec(1), m_maxLogLenMB(100), m_sendTimeoutSec(5),
          m_receiveTimeoutSec(5), m_maxCacheLengthMB(50), m_maxVotesInLog(10000), m_maxOutstandingPerReplica(10),
          m_maxCheckpoints(4), m_maxCheckpointSizeGB(0), m_minCheckpointSpaceFileCount(0), m_maxLogs(10),
          m_logLenRandomize(20), m_electionRandomize(10), m_fastReadSeqThreshold(0),
          m_inMemoryExecutionQueueSizeMB(0), m_numReaderThreads(1), m_maxMessageSizeMB(100),
          m_maxMessageAlertSizeMB(0), m_allowPrimaryPromotionWhileCatchingUp(false), m_addMemberIdToWorkingDir(true),
          m_cancelDiskIo(true), m_useGlobalAcceptMessagesFlag(false) {
        m_workingDir[0] = '\0';
    }
};

struct RSL_IMPORT_EXPORT RSLStats {
    size_t m_cbSizeOfThisStruct;
    unsigned long long m_cCaptureTimeInMicroseconds;
    unsigned long long m_cDecreesExecuted;
    unsigned long long m_cLogReads;
    unsigned long long m_cLogReadBytes;
    unsigned long long m_cLogReadMicroseconds;
    unsigned int m_cLogReadMaxMicroseconds;
    unsigned long long m_cLogWrites;
    unsigned long long m_cLogWriteBytes;
    unsigned long long m_cLogWriteMicroseconds;
    unsigned int m_cLogWriteMaxMicroseconds;
    unsigned long long m_cVotingTimeMicroseconds;
    unsigned int m_cVotingTimeMaxMicroseconds;
};

// The C ABI takes these objects as they are.
static_assert(sizeof(RSLNode) == 336 && sizeof(RSLNode) == sizeof(RslNode), "RSLNode layout");
static_assert(offsetof(RSLNode, m_ip) == offsetof(RslNode, ip), "RSLNode layout");
static_assert(offsetof(RSLNode, m_priority) == offsetof(RslNode, priority), "RSLNode layout");
static_assert(sizeof(RSLConfigParam) == 432 && sizeof(RSLConfigParam) == sizeof(RslConfigParam), "RSLConfigParam");
static_assert(offsetof(RSLConfigParam, m_workingDir) == offsetof(RslConfigParam, working_dir), "RSLConfigParam");
static_assert(offsetof(RSLConfigParam, m_useGlobalAcceptMessagesFlag) ==
                  offsetof(RslConfigParam, use_global_accept_messages_flag),
              "RSLConfigParam layout");
static_assert(sizeof(ReplicaHealth) == 152 && sizeof(ReplicaHealth) == sizeof(RslReplicaHealth), "ReplicaHealth");
static_assert(offsetof(ReplicaHealth, m_lastVotePayload) == offsetof(RslReplicaHealth, last_vote_payload),
              "ReplicaHealth layout");
static_assert(sizeof(RSLStats) == 104 && sizeof(RSLStats) == sizeof(RslStats), "RSLStats layout");
static_assert(offsetof(RSLStats, m_cVotingTimeMaxMicroseconds) == offsetof(RslStats, voting_time_max_microseconds),
              "RSLStats layout");

class RSL_IMPORT_EXPORT RSLStateMachine {
public:
    RSLStateMachine() : m_legislator(NULL), m_replica(NULL), m_exitOnShutdown(true), m_replayed(0) {
        Registry().push_back(this);
    }
    virtual ~RSLStateMachine() {}

    bool Initialize(RSLConfigParam* cfg, const RSLNodeCollection& membersOfInitialConfiguration, const RSLNode& self,
                    RSLProtocolVersion version, bool serializeFastReadsWithReplicates, SpawnRoutine spawnRoutine = NULL,
                    bool IndependentHeartbeat = false) {
        (void)serializeFastReadsWithReplicates;  // fast reads always run under the shared lock
        (void)IndependentHeartbeat;              // heartbeats never wait on execution in rsl
        if (cfg == NULL || m_replica != NULL) return false;
        std::vector<RSLNode> nodes;
        for (size_t i = 0; i < membersOfInitialConfiguration.Count(); i++) {
            nodes.push_back(membersOfInitialConfiguration[i]);
        }
        m_exitOnShutdown = spawnRoutine == NULL;
        RslCallbacks callbacks = Callbacks();
        return rsl_replica_initialize(reinterpret_cast<const RslConfigParam*>(cfg),
                                      reinterpret_cast<const RslNode*>(nodes.data()), nodes.size(),
                                      reinterpret_cast<const RslNode*>(&self), static_cast<uint32_t>(version),
                                      &callbacks, &m_replica) == RSL_RESULT_SUCCESS;
    }
    void RelinquishPrimary() { rsl_replica_control(m_replica, 0, 0); }
    bool IsInStableState() { return rsl_replica_query(m_replica, 0); }
    bool Initialize(RSLConfigParam* cfg, const RSLNodeArray& membersOfInitialConfiguration, const RSLNode& self,
                    RSLProtocolVersion version, bool serializeFastReadsWithReplicates, SpawnRoutine spawnRoutine = NULL,
                    bool IndependentHeartbeat = false) {
        RSLNodeCollection members;
        for (size_t i = 0; i < membersOfInitialConfiguration.size(); i++) members.Append(membersOfInitialConfiguration[i]);
        return Initialize(cfg, members, self, version, serializeFastReadsWithReplicates, spawnRoutine,
                          IndependentHeartbeat);
    }
    bool Initialize(RSLConfigParam* cfg, const RSLNode& self, RSLProtocolVersion version,
                    bool serializeFastReadsWithReplicates, SpawnRoutine spawnRoutine = NULL,
                    bool IndependentHeartbeat = false) {
        (void)serializeFastReadsWithReplicates, (void)IndependentHeartbeat;
        if (cfg == NULL || m_replica != NULL) return false;
        m_exitOnShutdown = spawnRoutine == NULL;
        RslCallbacks callbacks = Callbacks();
        return rsl_replica_initialize_for_bootstrap(reinterpret_cast<const RslConfigParam*>(cfg),
                                                    reinterpret_cast<const RslNode*>(&self),
                                                    static_cast<uint32_t>(version), &callbacks,
                                                    &m_replica) == RSL_RESULT_SUCCESS;
    }
    RSLResponseCode Bootstrap(RSLMemberSet* memberSet, unsigned int timeout) {
        if (memberSet == NULL || memberSet->m_members.Count() == 0) return RSLInvalidParameter;
        std::vector<RSLNode> nodes(&memberSet->m_members[0], &memberSet->m_members[0] + memberSet->m_members.Count());
        return Code(rsl_replica_bootstrap(m_replica, reinterpret_cast<const RslNode*>(nodes.data()), nodes.size(),
                                          reinterpret_cast<const uint8_t*>(memberSet->m_cookie.data()),
                                          memberSet->m_cookie.size(), timeout));
    }
    void ChangeElectionDelay(unsigned int delayInSecs) { rsl_replica_control(m_replica, 7, delayInSecs); }
    static void Unload() {
        for (size_t i = 0; i < Registry().size(); i++) Registry()[i]->UnloadThisOne();
    }
    static unsigned long long GetHighResolutionCurrentTickCount() { return detail::monotonic_us(); }
    bool Replay(const char* directory, unsigned long long maxSeqNo) {
        RslCallbacks callbacks = Callbacks();
        return rsl_replay(&callbacks, directory, maxSeqNo, 0, NULL, &m_replayed) == RSL_RESULT_SUCCESS;
    }
    bool Replay(const char* directory, unsigned long long maxSeqNo, unsigned long long checkpointSeqNo,
                const char* checkpointDirectory) {
        if ((checkpointSeqNo == 0) != (checkpointDirectory == NULL)) return false;
        RslCallbacks callbacks = Callbacks();
        return rsl_replay(&callbacks, directory, maxSeqNo, checkpointSeqNo, checkpointDirectory, &m_replayed) ==
               RSL_RESULT_SUCCESS;
    }
    void AttemptPromotion() { rsl_replica_control(m_replica, 1, 0); }
    void RelinquishPrimaryStatus() { RelinquishPrimary(); }
    RSLResponseCode ReplicateRequest(void* request, size_t len, void* cookie) {
        return Code(rsl_replica_replicate(m_replica, request, len, cookie, false, false));
    }
    RSLResponseCode ReplicateRequestExclusiveVote(void* request, size_t len, void* cookie) {
        return Code(rsl_replica_replicate(m_replica, request, len, cookie, true, false));
    }
    RSLResponseCode ReplicateRequestExclusiveVote(void* request, size_t len, void* cookie, bool isLastDecree) {
        return Code(rsl_replica_replicate(m_replica, request, len, cookie, true, isLastDecree));
    }
    RSLResponseCode FastReadRequest(unsigned long long maxSeenSeqNo, void* request, size_t len, void* cookie) {
        return FastReadRequest(maxSeenSeqNo, request, len, cookie, 0);
    }
    RSLResponseCode FastReadRequest(unsigned long long maxSeenSeqNo, void* request, size_t len, void* cookie,
                                    unsigned int timeout) {
        return Code(rsl_replica_fast_read(m_replica, maxSeenSeqNo, request, len, cookie, timeout));
    }
    RSLResponseCode ChangeConfiguration(RSLMemberSet* memberSet, void* cookie) {
        if (memberSet == NULL || memberSet->m_members.Count() == 0) return RSLInvalidParameter;
        std::vector<RSLNode> nodes(&memberSet->m_members[0], &memberSet->m_members[0] + memberSet->m_members.Count());
        return Code(rsl_replica_change_configuration(
            m_replica, reinterpret_cast<const RslNode*>(nodes.data()), nodes.size(),
            reinterpret_cast<const uint8_t*>(memberSet->m_cookie.data()), memberSet->m_cookie.size(), cookie));
    }
    bool GetConfiguration(RSLMemberSet* membersSet, unsigned int* configuratioNumber = NULL) {
        if (membersSet == NULL) return false;
        membersSet->m_members.Clear();
        size_t count = 0;
        unsigned int number = 0;
        if (m_replica != NULL) {
            RslNode nodes[64];
            rsl_replica_get_configuration(m_replica, nodes, 64, &count, &number);
            for (size_t i = 0; i < count && i < 64; i++) {
                membersSet->m_members.Append(*reinterpret_cast<const RSLNode*>(&nodes[i]));
            }
            std::vector<char> cookie(RSLMemberSet::s_MaxMemberSetCookieLength);
            size_t len = 0;
            rsl_replica_get_configuration_cookie(m_replica, reinterpret_cast<uint8_t*>(cookie.data()), cookie.size(),
                                                 &len);
            membersSet->SetConfigurationCookie(len ? cookie.data() : NULL,
                                               static_cast<unsigned int>(len < cookie.size() ? len : cookie.size()));
        }
        if (configuratioNumber) *configuratioNumber = number;
        return true;
    }
    unsigned long long GetCurrentSequenceNumber() {
        return m_replica ? rsl_replica_current_sequence_number(m_replica) : m_replayed;
    }
    unsigned long long GetHighestPassedSequenceNumber() {
        return rsl_replica_highest_passed_sequence_number(m_replica);
    }
    unsigned short GetReplicasInformation(unsigned short numEntries, ReplicaHealth* replicaSetHealth) {
        return rsl_replica_replicas_information(m_replica, numEntries,
                                                reinterpret_cast<RslReplicaHealth*>(replicaSetHealth));
    }
    bool GetReplicaInformation(ReplicaHealth* replicaHealth) {
        if (replicaHealth == NULL) return false;
        ReplicaHealth all[64];
        unsigned short n = GetReplicasInformation(64, all);
        for (unsigned short i = 0; i < n; i++) {
            if (strcmp(all[i].m_memberId, replicaHealth->m_memberId) == 0) {
                *replicaHealth = all[i];
                return true;
            }
        }
        return false;
    }
    void GetCurrentPrimary(RSLNode* node) {
        if (node) rsl_replica_current_primary(m_replica, reinterpret_cast<RslNode*>(node));
    }
    void AllowSaveState(bool yes) { rsl_replica_control(m_replica, 6, yes); }
    void SetVotePayload(unsigned long long payload) { rsl_replica_control(m_replica, 4, payload); }
    bool IsAnyRequestPendingExecution() { return rsl_replica_query(m_replica, 1); }
    RSLResponseCode CopyStateFromReplica(void* cookie) { return Code(rsl_replica_copy_state(m_replica, cookie)); }
    void GetStatisticsSnapshot(RSLStats* pStats) {
        rsl_replica_statistics(m_replica, reinterpret_cast<RslStats*>(pStats));
    }
    void SetAcceptMessages(bool acceptMessages) { rsl_replica_control(m_replica, 5, acceptMessages); }
    void Pause() { rsl_replica_control(m_replica, 2, 0); }
    void Resume() { rsl_replica_control(m_replica, 3, 0); }
    // Without a SpawnRoutine the process exits (code 0) once ShutDown returned, as in legacy.
    void UnloadThisOne() {
        RslReplica* replica = m_replica;
        m_replica = NULL;
        if (replica) rsl_replica_unload(replica);
    }

protected:
    virtual bool LoadState(RSLCheckpointStreamReader* reader) = 0;
    virtual void BeforeExecuteReplicatedRequests() {}
    virtual void AfterExecuteReplicatedRequests() {}
    virtual void ExecuteReplicatedRequest(void* request, size_t len, void* cookie, bool* saveState) = 0;
    virtual void ExecuteFastReadRequest(void* request, size_t len, void* cookie) = 0;
    virtual void AbortRequest(RSLResponseCode status, void* cookie) = 0;
    virtual void SaveState(RSLCheckpointStreamWriter* writer) = 0;
    virtual bool TrySaveState(RSLCheckpointStreamWriter* writer) {
        SaveState(writer);
        return true;
    }
    virtual void NotifyStatus(bool isPrimary) = 0;
    virtual void NotifyConfigurationChanged(void* cookie) = 0;
    virtual void AbortChangeConfiguration(RSLResponseCode status, void* cookie) = 0;
    virtual void NotifyPrimaryRecovered() {}
    virtual bool CanBecomePrimary() { return true; }
    virtual bool CanBecomePrimary(RSLPrimaryCookie* cookie) {
        (void)cookie;
        return CanBecomePrimary();
    }
    virtual bool AcceptMessageFromReplica(RSLNode* node, void* data, unsigned int len) {
        (void)node, (void)data, (void)len;
        return true;
    }
    virtual void ShutDown(RSLResponseCode status) = 0;
    // Legacy's default: the IP, else the host name resolved to IPv4 (see rsl_resolve_node).
    // Called for each peer of the initial set and of every configuration installed.
    virtual bool ResolveNode(RSLNode* node) { return rsl_resolve_node(reinterpret_cast<RslNode*>(node)); }
    virtual void StateSaved(unsigned long long seqNo, const char* fileName) { (void)seqNo, (void)fileName; }
    virtual void StateCopied(unsigned long long seqNo, const char* fileName, void* cookie) {
        (void)seqNo, (void)fileName, (void)cookie;
    }

private:
    friend class RSLibImpl::Legislator;
    friend class ::TestEngine;

    static std::vector<RSLStateMachine*>& Registry() {
        static std::vector<RSLStateMachine*> all;
        return all;
    }
    static RSLResponseCode Code(RslResult rc) {
        return rc <= RSL_RESULT_INVALID_PARAMETER ? static_cast<RSLResponseCode>(rc) : RSLInvalidParameter;
    }
    static RSLStateMachine* Self(void* userdata) { return static_cast<RSLStateMachine*>(userdata); }

    // The trampolines: rsl calls these; they call the virtuals. noexcept: an exception
    // escaping a callback ends the process rather than unwinding into rsl.
    static bool OnLoadState(void* ud, RslCheckpointReader* lent) noexcept {
        if (lent == NULL) return Self(ud)->LoadState(NULL);
        RSLCheckpointStreamReader reader(lent);
        return Self(ud)->LoadState(&reader);
    }
    static void OnBefore(void* ud) noexcept { Self(ud)->BeforeExecuteReplicatedRequests(); }
    static void OnAfter(void* ud) noexcept { Self(ud)->AfterExecuteReplicatedRequests(); }
    static void OnExecute(void* ud, const uint8_t* request, size_t len, void* cookie, bool* saveState) noexcept {
        Self(ud)->ExecuteReplicatedRequest(const_cast<uint8_t*>(request), len, cookie, saveState);
    }
    static void OnFastRead(void* ud, const uint8_t* request, size_t len, void* cookie) noexcept {
        Self(ud)->ExecuteFastReadRequest(const_cast<uint8_t*>(request), len, cookie);
    }
    static void OnAbort(void* ud, uint32_t status, void* cookie) noexcept {
        Self(ud)->AbortRequest(static_cast<RSLResponseCode>(status), cookie);
    }
    static bool OnSaveState(void* ud, RslCheckpointWriter* lent) noexcept {
        RSLCheckpointStreamWriter writer(lent);
        return Self(ud)->TrySaveState(&writer);
    }
    static void OnStateSaved(void* ud, uint64_t seqNo, const char* fileName) noexcept {
        Self(ud)->StateSaved(seqNo, fileName);
    }
    static void OnNotifyStatus(void* ud, bool isPrimary) noexcept { Self(ud)->NotifyStatus(isPrimary); }
    static void OnPrimaryRecovered(void* ud) noexcept { Self(ud)->NotifyPrimaryRecovered(); }
    static bool OnCanBecomePrimary(void* ud, uint8_t* data, size_t* len) noexcept {
        RSLPrimaryCookie cookie;
        if (!Self(ud)->CanBecomePrimary(&cookie)) return false;
        *len = cookie.m_data.size() < *len ? cookie.m_data.size() : *len;
        if (*len) memcpy(data, cookie.m_data.data(), *len);
        return true;
    }
    static bool OnAcceptMessage(void* ud, const char* memberId, const uint8_t* data, size_t len) noexcept {
        RSLNode node;
        snprintf(node.m_memberIdString, sizeof(node.m_memberIdString), "%s", memberId);
        return Self(ud)->AcceptMessageFromReplica(&node, const_cast<uint8_t*>(len ? data : NULL),
                                                  static_cast<unsigned int>(len));
    }
    static void OnStateCopied(void* ud, uint64_t seqNo, const char* fileName, void* cookie) noexcept {
        Self(ud)->StateCopied(seqNo, fileName, cookie);
    }
    static void OnConfigurationChanged(void* ud, void* cookie) noexcept {
        Self(ud)->NotifyConfigurationChanged(cookie);
    }
    static void OnAbortChange(void* ud, uint32_t status, void* cookie) noexcept {
        Self(ud)->AbortChangeConfiguration(static_cast<RSLResponseCode>(status), cookie);
    }
    static bool OnResolveNode(void* ud, RslNode* node) noexcept {
        return Self(ud)->ResolveNode(reinterpret_cast<RSLNode*>(node));
    }
    static void OnShutDown(void* ud, uint32_t status) noexcept {
        Self(ud)->ShutDown(static_cast<RSLResponseCode>(status));
        if (Self(ud)->m_exitOnShutdown) exit(0);
    }
    RslCallbacks Callbacks() {
        RslCallbacks cb;
        cb.userdata = this;
        cb.load_state = OnLoadState;
        cb.before_execute_replicated_requests = OnBefore;
        cb.after_execute_replicated_requests = OnAfter;
        cb.execute_replicated_request = OnExecute;
        cb.execute_fast_read_request = OnFastRead;
        cb.abort_request = OnAbort;
        cb.save_state = OnSaveState;
        cb.state_saved = OnStateSaved;
        cb.notify_status = OnNotifyStatus;
        cb.notify_primary_recovered = OnPrimaryRecovered;
        cb.can_become_primary = OnCanBecomePrimary;
        cb.accept_message_from_replica = OnAcceptMessage;
        cb.shut_down = OnShutDown;
        cb.notify_configuration_changed = OnConfigurationChanged;
        cb.abort_change_configuration = OnAbortChange;
        cb.state_copied = OnStateCopied;
        cb.resolve_node = OnResolveNode;
        return cb;
    }

    RSLibImpl::Legislator* m_legislator;  // unused; legacy's private member, kept for friends
    RslReplica* m_replica;
    bool m_exitOnShutdown;
    uint64_t m_replayed;
};

class RSL_IMPORT_EXPORT RSLUtils {
public:
    static unsigned long long CalculateChecksum(const void* blob, const size_t dataSize) {
        return rsl_checksum(static_cast<const uint8_t*>(blob), dataSize);
    }
};

}  // namespace RSLib

#endif  // RSL_H
