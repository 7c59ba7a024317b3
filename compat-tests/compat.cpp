// The legacy RSLib API, exercised only through include/rsl.h and rslutil.h against
// librsl.so: layout and constants, the data classes, checksums, checkpoint streams, log
// routing, and a three-replica cluster in one process (legacy runs several state machines
// per process): election, replication with cookies, fast reads, checkpoints, failover,
// unload and restart from the checkpoint.
#include "rsl.h"
#include "rslutil.h"

#include <arpa/inet.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <mutex>
#include <string>
#include <thread>

using namespace RSLib;

static int failures = 0;
#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond)) {                                                         \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            failures++;                                                        \
        }                                                                      \
    } while (0)

static bool wait_for(const std::function<bool()>& done, int seconds = 30) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
    while (!done()) {
        if (std::chrono::steady_clock::now() > deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    return true;
}

// ---- layout, enums, constants -------------------------------------------------------------
static void test_layout() {
    CHECK(sizeof(RSLNode) == 336);
    CHECK(sizeof(RSLConfigParam) == 432);
    CHECK(sizeof(RSLStats) == 104);
    CHECK(sizeof(ReplicaHealth) == 152);
    CHECK(sizeof(DWORD) == 4);
    CHECK(RSLNode::MaxMemberIdLength == 63);
    CHECK(RSLMemberSet::s_MaxMemberSetCookieLength == 8192);
    CHECK(RSLSuccess == 0 && RSLFastReadStale == 1 && RSLNotPrimary == 2 && RSLShuttingDown == 3);
    CHECK(RSLAlreadyBootstrapped == 4 && RSLBootstrapFailed == 5 && RSLInvalidParameter == 6);
    CHECK(CallBackLogLevel_Alert == 5 && CallBackLogLevel_Assert == 6);
    CHECK(Priority_OutOfGC == 16 && RSLProtocolVersion_6 == 6);
    RSLConfigParam cfg;
    CHECK(cfg.m_newLeaderGracePeriodSec == 15 && cfg.m_electionDelaySec == 10);
    CHECK(cfg.m_voteMaxOutstandingIntervalSec == 480 && cfg.m_maxLogLenMB == 100);
    CHECK(cfg.m_numReaderThreads == 1 && cfg.m_maxMessageSizeMB == 100);
    CHECK(cfg.m_addMemberIdToWorkingDir && cfg.m_cancelDiskIo && !cfg.m_useGlobalAcceptMessagesFlag);
    CHECK(cfg.m_workingDir[0] == '\0');
}

// ---- RSLNode, RSLNodeCollection, RSLMemberSet, RSLPrimaryCookie -----------------------------
static void test_data_classes() {
    RSLNode node;
    node.SetMemberIdAsUInt64(42);
    CHECK(strcmp(node.m_memberIdString, "42") == 0);
    CHECK(node.GetMemberIdAsUInt64() == 42);
    CHECK(RSLNode::ParseMemberIdAsUInt64("0x10") == 16 && RSLNode::ParseMemberIdAsUInt64("010") == 8);
    CHECK(RSLNode::ParseMemberIdAsUInt64("") == 0);

    RSLNodeCollection nodes;
    for (int i = 0; i < 12; i++) {
        RSLNode n;
        n.SetMemberIdAsUInt64(i);
        nodes.Append(n);
    }
    CHECK(nodes.Count() == 12);
    nodes.Remove(0);
    CHECK(nodes.Count() == 11 && strcmp(nodes[0].m_memberIdString, "1") == 0);
    RSLNodeCollection copy(nodes);
    copy = copy;  // self-assignment keeps the contents (legacy cleared them)
    CHECK(copy.Count() == 11);
    nodes.Clear();
    CHECK(nodes.Count() == 0 && copy.Count() == 11);

    char cookie[] = "configuration cookie";
    RSLMemberSet set(copy, cookie, sizeof(cookie));
    CHECK(set.GetNumMembers() == 11);
    CHECK(set.IncludesMember("5") && !set.IncludesMember("0") && !set.IncludesMember(NULL));
    CHECK(set.GetMemberInfo(10) != NULL && set.GetMemberInfo(11) == NULL);
    unsigned int len = 0;
    CHECK(memcmp(set.GetConfigurationCookie(&len), cookie, sizeof(cookie)) == 0 && len == sizeof(cookie));
    CHECK(set.GetMemberArray()->size() == 11);
    RSLNodeCollection out;
    set.GetMemberCollection(out);
    CHECK(out.Count() == 11);

    RSLPrimaryCookie primaryCookie;
    primaryCookie.Set(cookie, sizeof(cookie));
}

// ---- §5.4 checksum vectors -----------------------------------------------------------------
static void test_checksum() {
    CHECK(RSLUtils::CalculateChecksum("", 0) == 0xA795D0F29B4DCDF8ULL);
    CHECK(RSLUtils::CalculateChecksum("123456789", 9) == 0x69BC7A5D9767AF72ULL);
    CHECK(RSLUtils::CalculateChecksum("a", 1) == 0xD62BAFC94E2152F3ULL);
    char zeros[8] = {0};
    CHECK(RSLUtils::CalculateChecksum(zeros, 8) == 0x17F9BFD1A8E88335ULL);
    CHECK(RSLUtils::CalculateChecksum("Hello World!", 13) == 0x055513690431935AULL);
}

// ---- TLS settings: refusals say false (legacy said true), NULL/NULL turns TLS off ----------
static void test_ssl_settings() {
    setenv("RSL_CERT_DIR", "/nonexistent-rsl-certs", 1);
    CHECK(!SetThumbprintsForSsl("12 34", NULL, false, false));  // malformed
    CHECK(!SetThumbprintsForSsl("0123456789abcdef0123456789abcdef01234567", NULL, false, false));
    CHECK(!SetThumbprintsForSsl(NULL, "0123456789abcdef0123456789abcdef01234567", true, true));
    CHECK(SetThumbprintsForSsl(NULL, NULL, false, false));  // off: replicas start without TLS
    CHECK(!SetSubjectNamesForSsl("CN=rsl", "zz", NULL, NULL, false));    // malformed issuer
    CHECK(!SetSubjectNamesForSsl("CN=rsl", "0123456789abcdef0123456789abcdef01234567", NULL, NULL,
                                 false));                                 // no such certificate
    CHECK(SetSubjectNamesForSsl(NULL, NULL, NULL, NULL, false));          // off
}

// ---- checkpoints through RSLCheckpointUtility and the stream reader -------------------------
struct PatternCreator : IRSLCheckpointCreator {
    size_t size;
    explicit PatternCreator(size_t n) : size(n) {}
    void SaveState(RSLCheckpointStreamWriter* writer) override {
        std::vector<unsigned char> chunk(100000);
        for (size_t done = 0; done < size;) {
            size_t n = std::min(chunk.size(), size - done);
            for (size_t i = 0; i < n; i++) chunk[i] = static_cast<unsigned char>((done + i) * 7);
            CHECK(writer->Write(chunk.data(), n) == NO_ERROR);
            done += n;
        }
    }
};

static std::string temp_dir(const char* name) {
    std::string dir = std::string("/tmp/rsl-compat-") + name + "-" + std::to_string(getpid());
    std::string rm = "rm -rf " + dir;
    CHECK(system(rm.c_str()) == 0);
    mkdir(dir.c_str(), 0755);
    return dir;
}

struct HelloCreator : IRSLCheckpointCreator {
    void SaveState(RSLCheckpointStreamWriter* writer) override { writer->Write("Hello World!", 12); }
};

static RSLNodeCollection nodes_named(std::initializer_list<const char*> ids) {
    RSLNodeCollection nodes;
    for (const char* id : ids) {
        RSLNode node;
        strcpy(node.m_memberIdString, id);
        node.m_rslPort = 5000;
        nodes.Append(node);
    }
    return nodes;
}

// TestRSLUtilCreateCheckpoint: the header rewrites, on v2 and on v6 files.
static void test_replica_set_rewrites(const std::string& dir, const char* v6_file) {
    RSLMemberSet strings(nodes_named({"alpha", "beta"}), NULL, 0), numbers(nodes_named({"1", "2", "3"}), NULL, 0);
    CHECK(RSLCheckpointUtility::ChangeReplicaSet(v6_file, &strings));
    RSLMemberSet back;
    CHECK(RSLCheckpointUtility::GetReplicaSet(v6_file, &back) && back.GetNumMembers() == 2 && back.IncludesMember("beta"));
    CHECK(!RSLCheckpointUtility::ChangeReplicaSet(v6_file, NULL));

    std::string v2_dir = dir + "/v2";
    mkdir(v2_dir.c_str(), 0755);
    std::vector<char> path(v2_dir.begin(), v2_dir.end());
    path.push_back('\0');
    HelloCreator hello;
    RSLCheckpointUtility::SaveCheckpoint(path.data(), RSLProtocolVersion_2, 77, 1, NULL, &hello);
    std::string v2 = v2_dir + "/77.codex";
    CHECK(!RSLCheckpointUtility::ChangeReplicaSet(v2.c_str(), &numbers));  // v2 has no replica set
    CHECK(!RSLCheckpointUtility::MigrateToVersion3(v2.c_str(), &strings));  // v3 ids are numeric
    CHECK(RSLCheckpointUtility::MigrateToVersion3(v2.c_str(), &numbers));
    RSLCheckpointStreamReader reader;
    CHECK(reader.Init(v2.c_str()) == NO_ERROR && reader.Size() == 12);
    char text[13] = {0};
    unsigned long got = 0;
    CHECK(reader.GetData(text, 12, &got) == NO_ERROR && strcmp(text, "Hello World!") == 0);
    CHECK(RSLCheckpointUtility::GetReplicaSet(v2.c_str(), &back) && back.GetNumMembers() == 3);
    CHECK(RSLCheckpointUtility::MigrateToVersion4(v2.c_str(), &strings));
    CHECK(RSLCheckpointUtility::GetReplicaSet(v2.c_str(), &back) && back.IncludesMember("alpha"));
}

static void test_checkpoints() {
    std::string dir = temp_dir("codex");
    char buf[512];
    CHECK(RSLCheckpointUtility::GetLatestCheckpoint(dir.c_str(), buf, sizeof(buf)) == ERROR_FILE_NOT_FOUND);
    CHECK(RSLCheckpointUtility::GetLatestCheckpoint(NULL, buf, sizeof(buf)) == ERROR_INVALID_PARAMETER);
    CHECK(RSLCheckpointUtility::GetLatestCheckpoint("", buf, sizeof(buf)) == ERROR_INVALID_PARAMETER);

    RSLNodeCollection nodes;
    RSLNode node;
    strcpy(node.m_memberIdString, "alpha");
    node.m_rslPort = 5000;
    nodes.Append(node);
    RSLMemberSet set(nodes, NULL, 0);
    // Sizes around the 4 MiB block boundary (4 MiB - 8 payload bytes per block).
    const size_t block = (4u << 20) - 8;
    const size_t sizes[] = {0, 1, block - 1, block, block + 1, 2 * block + 12345};
    unsigned long long decree = 10;
    for (size_t size : sizes) {
        PatternCreator creator(size);
        std::vector<char> path(dir.begin(), dir.end());
        path.push_back('\0');
        RSLCheckpointUtility::SaveCheckpoint(path.data(), RSLProtocolVersion_6, decree, 1, &set, &creator);
        CHECK(RSLCheckpointUtility::GetLatestCheckpoint(dir.c_str(), buf, sizeof(buf)) == NO_ERROR);
        std::string expected = dir + "/" + std::to_string(decree) + ".codex";
        CHECK(expected == buf);
        char tiny[4];
        CHECK(RSLCheckpointUtility::GetLatestCheckpoint(dir.c_str(), tiny, sizeof(tiny)) == ERROR_INSUFFICIENT_BUFFER);
        RSLMemberSet back;
        CHECK(RSLCheckpointUtility::GetReplicaSet(buf, &back) && back.IncludesMember("alpha"));

        // Every read pattern returns the same bytes; reads are short at block ends.
        const unsigned long patterns[] = {1, 4096, 65536, 1u << 20, 8u << 20};
        for (unsigned long want : patterns) {
            RSLCheckpointStreamReader reader;
            CHECK(reader.Init(buf) == NO_ERROR);
            CHECK(reader.Size() == size);
            CHECK(strcmp(reader.GetFileName(), buf) == 0);
            size_t total = 0;
            bool ok = true;
            for (;;) {
                void* data = NULL;
                unsigned long got = 0;
                unsigned int rc = reader.GetDataPointer(&data, want, &got);
                if (rc == ERROR_HANDLE_EOF) break;
                if (rc != NO_ERROR || got == 0 || got > want) {
                    ok = false;
                    break;
                }
                size_t block_left = block - total % block;
                if (got > block_left) ok = false;
                for (unsigned long i = 0; i < got; i++) {
                    ok &= static_cast<unsigned char*>(data)[i] == static_cast<unsigned char>((total + i) * 7);
                }
                total += got;
            }
            CHECK(ok && total == size);
        }
        // Seek, Skip and GetData with the DWORD overload legacy code uses.
        RSLCheckpointStreamReader reader;
        CHECK(reader.Init(buf) == NO_ERROR);
        if (size > 3) {
            CHECK(reader.Seek(size - 3) == NO_ERROR);
            unsigned char last[3];
            DWORD got = 0, total = 0;
            // Short at a block end: the last bytes of a block + 1 payload come in two reads.
            while (total < 3 && reader.GetData(last + total, 3 - total, &got) == NO_ERROR) total += got;
            CHECK(total == 3 && last[2] == static_cast<unsigned char>((size - 1) * 7));
        }
        CHECK(reader.Seek(size + 1) != NO_ERROR);
        decree++;
    }
    RSLCheckpointStreamReader missing;
    CHECK(missing.Init((dir + "/404.codex").c_str()) == ERROR_FILE_NOT_FOUND);
    CHECK(missing.Init(NULL) == ERROR_INVALID_PARAMETER);
    // A reader that never opened refuses politely.
    void* data = NULL;
    unsigned long got = 0;
    CHECK(missing.GetDataPointer(&data, 10, &got) == ERROR_INVALID_PARAMETER);
    CHECK(missing.CreateWriterForThisReader((dir + "/x.codex").c_str()) == NULL);

    // A tool rewrites the newest checkpoint's payload under its header.
    RSLCheckpointStreamReader source;
    CHECK(source.Init(buf) == NO_ERROR);
    std::string rewritten = dir + "/rewritten.bin";
    RSLCheckpointStreamWriter* writer = source.CreateWriterForThisReader(rewritten.c_str());
    CHECK(writer != NULL);
    if (writer != NULL) {
        const char text[] = "rewritten payload";
        CHECK(writer->Write(text, sizeof(text)) == NO_ERROR);
        source.CloseWriterForThisReader(rewritten.c_str(), writer);
        RSLCheckpointStreamReader back;
        CHECK(back.Init(rewritten.c_str()) == NO_ERROR && back.Size() == sizeof(text));
        char read[sizeof(text)] = {0};
        unsigned long n = 0;
        CHECK(back.GetData(read, sizeof(read), &n) == NO_ERROR && n == sizeof(text) && strcmp(read, text) == 0);
        RSLMemberSet members;
        CHECK(RSLCheckpointUtility::GetReplicaSet(rewritten.c_str(), &members) && members.IncludesMember("alpha"));
    }
    test_replica_set_rewrites(dir, buf);
}

// ---- log routing --------------------------------------------------------------------------
static std::atomic<int> log_entries(0), error_entries(0);
static void on_log(const char*, const char*, int, int logId, CallBackLogLevel level, const char*, const char* fmt,
                   va_list args) {
    char text[1024];
    vsnprintf(text, sizeof(text), fmt, args);
    log_entries++;
    if (level == CallBackLogLevel_Error && logId == 3 && text[0] != '\0') error_entries++;
}

// ---- a replicated counter ------------------------------------------------------------------
class Counter : public RSLStateMachine {
public:
    std::mutex mu;
    unsigned long long sum = 0, executed = 0, with_cookie = 0, reads = 0, stale = 0, saved = 0;
    long long loaded = -1;  // -1: LoadState(NULL)
    std::atomic<bool> primary{false}, shut_down{false};
    std::atomic<int> status_false{0}, aborts{0}, not_primary_aborts{0}, aborted_before_status_false{0};
    int before = 0, after = 0;
    unsigned long long save_at = 0;
    // Knobs for the veto and checkpoint-control scenarios.
    bool may_lead = true, decline_save = false;
    long long refuse_above = -1;  // LoadState refuses checkpoints holding more than this
    std::string primary_cookie;
    std::atomic<int> recovered{0}, try_saves{0}, accept_calls{0};
    std::atomic<bool> veto_messages{false};
    std::mutex seen_mu;
    std::string seen_cookie;

    bool LoadState(RSLCheckpointStreamReader* reader) override {
        if (reader == NULL) return true;
        // As legacy: a reader handed to LoadState cannot make a writer.
        if (reader->CreateWriterForThisReader("/nonexistent/x.codex") != NULL) return false;
        unsigned long long value = 0;
        unsigned long got = 0;
        if (reader->GetData(&value, sizeof(value), &got) != NO_ERROR || got != sizeof(value)) return false;
        if (refuse_above >= 0 && static_cast<long long>(value) > refuse_above) return false;
        sum = value;
        loaded = static_cast<long long>(value);
        return true;
    }
    void BeforeExecuteReplicatedRequests() override { before++; }
    void AfterExecuteReplicatedRequests() override { after++; }
    void ExecuteReplicatedRequest(void* request, size_t len, void* cookie, bool* saveState) override {
        unsigned long long v = 0;
        memcpy(&v, request, len < sizeof(v) ? len : sizeof(v));
        std::lock_guard<std::mutex> lock(mu);
        sum += v;
        executed++;
        if (cookie) with_cookie++;
        if (v == save_at) *saveState = true;
    }
    void ExecuteFastReadRequest(void*, size_t, void* cookie) override {
        CHECK(cookie != NULL);
        reads++;
    }
    void AbortRequest(RSLResponseCode status, void*) override {
        if (status == RSLFastReadStale) stale++;
        if (status == RSLNotPrimary) not_primary_aborts++;
        aborts++;
    }
    void SaveState(RSLCheckpointStreamWriter* writer) override { writer->Write(&sum, sizeof(sum)); }
    bool TrySaveState(RSLCheckpointStreamWriter* writer) override {
        try_saves++;
        if (decline_save) return false;
        SaveState(writer);
        return true;
    }
    void NotifyPrimaryRecovered() override { recovered++; }
    bool CanBecomePrimary(RSLPrimaryCookie* cookie) override {
        if (!may_lead) return false;
        cookie->Set(const_cast<char*>(primary_cookie.data()), static_cast<unsigned int>(primary_cookie.size()));
        return true;
    }
    bool AcceptMessageFromReplica(RSLNode*, void* data, unsigned int len) override {
        accept_calls++;
        std::lock_guard<std::mutex> lock(seen_mu);
        seen_cookie.assign(static_cast<char*>(data ? data : const_cast<char*>("")), len);
        return !veto_messages;
    }
    void StateSaved(unsigned long long, const char* fileName) override {
        CHECK(fileName != NULL && strstr(fileName, ".codex") != NULL);
        saved++;
    }
    void NotifyStatus(bool isPrimary) override {
        primary = isPrimary;
        if (!isPrimary) {
            aborted_before_status_false = not_primary_aborts.load();
            status_false++;
        }
    }
    std::atomic<int> config_changes{0}, change_aborts{0};
    std::atomic<bool> copied{false}, copied_consistent{false};
    std::atomic<unsigned long long> copied_seq{0};
    void StateCopied(unsigned long long seqNo, const char* fileName, void* cookie) override {
        if (cookie == NULL) return;  // a primary's own copy of a secondary's checkpoint
        copied_seq = seqNo;
        copied_consistent = (seqNo == 0) == (fileName == NULL) && (fileName == NULL || strstr(fileName, ".codex"));
        copied = true;
    }
    std::atomic<void*> change_cookie{NULL};
    void NotifyConfigurationChanged(void* cookie) override {
        if (cookie) change_cookie = cookie;
        config_changes++;
    }
    void AbortChangeConfiguration(RSLResponseCode status, void* cookie) override {
        CHECK(status == RSLNotPrimary || status == RSLShuttingDown);
        if (cookie) change_aborts++;
    }
    void ShutDown(RSLResponseCode status) override {
        CHECK(status == RSLShuttingDown);
        shut_down = true;
    }
    unsigned long long Sum() {
        std::lock_guard<std::mutex> lock(mu);
        return sum;
    }
};

// A SpawnRoutine marks the managed-host case: Unload returns instead of ending the process.
static void spawn(unsigned int (*entry)(void*), ThreadPriority, void* arg) { std::thread(entry, arg).detach(); }

// Ports below Linux's ephemeral range (32768+): there another connection's local port
// could hold the one a replica must listen on.
static unsigned short free_port(const char* ip) {
    static unsigned short next = static_cast<unsigned short>(20000 + getpid() % 1000 * 12);
    (void)ip;
    next = static_cast<unsigned short>(next + 3);
    return next;
}

static RSLNode make_node(int i) {
    RSLNode node;
    snprintf(node.m_memberIdString, sizeof(node.m_memberIdString), "%d", i);
    char ip[32];
    snprintf(ip, sizeof(ip), "127.0.0.%d", i);
    node.m_ip = inet_addr(ip);
    node.m_rslPort = free_port(ip);
    node.m_rslLearnPort = static_cast<unsigned short>(node.m_rslPort + 1);
    return node;
}

// Legacy's test harness uses 60 s timers; these use the smallest legal ones (seconds).
static RSLConfigParam fast_config(const std::string& dir, long long election_delay_sec) {
    RSLConfigParam cfg;
    cfg.m_heartBeatIntervalSec = 1;
    cfg.m_electionDelaySec = election_delay_sec;
    cfg.m_newLeaderGracePeriodSec = election_delay_sec;
    snprintf(cfg.m_workingDir, sizeof(cfg.m_workingDir), "%s/", dir.c_str());  // a trailing '/' is stripped
    return cfg;
}

static RSLNodeCollection three_members() {
    RSLNodeCollection members;
    for (int i = 1; i <= 3; i++) members.Append(make_node(i));
    return members;
}

// The index of the replica that announced itself primary, or -1 (a failed check) if none did.
static int primary_of(Counter (&nodes)[3]) {
    int p = -1;
    CHECK(wait_for([&] {
        for (int i = 0; i < 3; i++)
            if (nodes[i].primary) p = i;
        return p >= 0;
    }));
    return p;
}

static void test_cluster() {
    std::string dir = temp_dir("cluster");
    RSLConfigParam cfg = fast_config(dir, 2);
    cfg.m_fastReadSeqThreshold = 5;
    cfg.m_maxCheckpoints = 2;
    RSLNodeCollection members = three_members();

    // An out-of-range value fails Initialize and reaches the log callback.
    RSLConfigParam bad = cfg;
    bad.m_electionRandomize = 101;
    Counter refused;
    int errors_before = error_entries;
    CHECK(!refused.Initialize(&bad, members, members[0], RSLProtocolVersion_6, false, spawn));
    CHECK(!refused.Initialize(NULL, members, members[0], RSLProtocolVersion_6, false, spawn));
    CHECK(error_entries > errors_before);
    CHECK(refused.ReplicateRequest(NULL, 0, NULL) == RSLInvalidParameter);  // before Initialize: no crash

    Counter nodes[3];
    for (int i = 0; i < 3; i++) {
        nodes[i].save_at = 1000;
        CHECK(nodes[i].Initialize(&cfg, members, members[i], RSLProtocolVersion_6, true, spawn));
        CHECK(nodes[i].loaded == -1);
    }
    int p = primary_of(nodes);
    if (p < 0) return;
    Counter& primary = nodes[p];
    Counter& secondary = nodes[(p + 1) % 3];
    unsigned long long one = 1, big = 1000;
    CHECK(secondary.ReplicateRequest(&one, sizeof(one), &one) == RSLNotPrimary);
    CHECK(primary.ReplicateRequest(&one, 0, &one) == RSLInvalidParameter);
    for (int i = 0; i < 100; i++) CHECK(primary.ReplicateRequest(&one, sizeof(one), &one) == RSLSuccess);
    CHECK(primary.ReplicateRequestExclusiveVote(&big, sizeof(big), &big) == RSLSuccess);
    for (int i = 0; i < 3; i++) CHECK(wait_for([&] { return nodes[i].Sum() == 1100; }));
    CHECK(primary.with_cookie == 101 && secondary.with_cookie == 0);
    CHECK(primary.before == primary.after && primary.before > 0);
    CHECK(wait_for([&] { return nodes[0].saved > 0 && nodes[1].saved > 0 && nodes[2].saved > 0; }));
    // CopyStateFromReplica: a member's checkpoint, as new as ours, lands in our directory.
    int token = 1;
    CHECK(secondary.CopyStateFromReplica(&token) == RSLSuccess);
    CHECK(wait_for([&] { return secondary.copied.load(); }));
    CHECK(secondary.copied_seq > 0 && secondary.copied_consistent);

    RSLNode who;
    secondary.GetCurrentPrimary(&who);
    CHECK(strcmp(who.m_memberIdString, members[p].m_memberIdString) == 0);
    CHECK(who.m_rslPort == members[p].m_rslPort);
    RSLMemberSet config;
    unsigned int number = 0;
    CHECK(secondary.GetConfiguration(&config, &number) && number == 1 && config.GetNumMembers() == 3);
    CHECK(primary.GetHighestPassedSequenceNumber() >= primary.GetCurrentSequenceNumber());
    ReplicaHealth health[8];
    CHECK(primary.GetReplicasInformation(8, health) == 2);
    RSLStats stats;
    memset(&stats, 0, sizeof(stats));
    stats.m_cbSizeOfThisStruct = sizeof(stats);
    primary.GetStatisticsSnapshot(&stats);
    CHECK(stats.m_cDecreesExecuted > 0 && stats.m_cLogWrites > 0);
    CHECK(stats.m_cLogWriteBytes >= 512 * stats.m_cLogWrites && stats.m_cVotingTimeMicroseconds > 0);

    // Fast reads: at once when seen, stale when too far ahead.
    unsigned long long seen = secondary.GetCurrentSequenceNumber();
    CHECK(secondary.FastReadRequest(seen, &one, sizeof(one), &one) == RSLSuccess);
    CHECK(wait_for([&] { return secondary.reads == 1; }));
    CHECK(secondary.FastReadRequest(seen + 100, &one, sizeof(one), &one, 1000) == RSLFastReadStale);
    CHECK(secondary.FastReadRequest(seen + 3, &one, sizeof(one), &one, 0) == RSLFastReadStale);
    // A read that waits longer than its timeout comes back through AbortRequest as stale.
    unsigned long long stale_before = secondary.stale;
    CHECK(secondary.FastReadRequest(secondary.GetCurrentSequenceNumber() + 5, &one, sizeof(one), &one, 50) ==
          RSLSuccess);
    CHECK(wait_for([&] { return secondary.stale == stale_before + 1; }));

    // A replica of the old API is bootstrapped already.
    CHECK(primary.Bootstrap(&config, 1) == RSLAlreadyBootstrapped);

    // Failover: cut the primary off with requests it cannot commit (value 0: whoever
    // decides them later leaves the sums alone), promote another; the old one aborts
    // them all, and only then hears NotifyStatus(false).
    primary.Pause();
    unsigned long long zero = 0;
    for (int i = 0; i < 3; i++) CHECK(primary.ReplicateRequest(&zero, sizeof(zero), &zero) == RSLSuccess);
    int next = (p + 1) % 3;
    nodes[next].AttemptPromotion();
    CHECK(wait_for([&] { return nodes[next].primary.load(); }));
    primary.Resume();
    CHECK(wait_for([&] { return primary.status_false > 0; }));
    CHECK(primary.aborted_before_status_false == 3);
    CHECK(primary.ReplicateRequest(&one, sizeof(one), &one) == RSLNotPrimary);
    CHECK(nodes[next].ReplicateRequest(&one, sizeof(one), &one) == RSLSuccess);
    for (int i = 0; i < 3; i++) CHECK(wait_for([&] { return nodes[i].Sum() == 1101; }));

    // Unload every replica (with a SpawnRoutine: no process exit), then restart one from
    // its directory: it loads the checkpoint and replays the rest.
    for (int i = 0; i < 3; i++) {
        nodes[i].UnloadThisOne();
        CHECK(nodes[i].shut_down);
    }
    Counter again;
    CHECK(again.Initialize(&cfg, members, members[p], RSLProtocolVersion_6, true, spawn));
    CHECK(again.loaded == 1100);
    CHECK(again.Sum() == 1101);
    again.UnloadThisOne();

    // Offline replay reads the same state.
    Counter replayed;
    std::string member_dir = dir + "/" + members[p].m_memberIdString;
    CHECK(replayed.Replay(member_dir.c_str(), ~0ULL));
    CHECK(replayed.Sum() == 1101 && replayed.GetCurrentSequenceNumber() > 0);
    // The second form also writes the replayed state as a checkpoint, elsewhere only.
    Counter into;
    std::string cp_dir = temp_dir("cluster-replayed");
    CHECK(!into.Replay(member_dir.c_str(), ~0ULL, 0, cp_dir.c_str()));
    CHECK(!into.Replay(member_dir.c_str(), ~0ULL, 77, member_dir.c_str()));
    CHECK(into.Replay(member_dir.c_str(), ~0ULL, 77, cp_dir.c_str()));
    RSLCheckpointStreamReader reader;
    CHECK(reader.Init((cp_dir + "/77.codex").c_str()) == NO_ERROR);
    unsigned long long saved_sum = 0;
    unsigned long got = 0;
    CHECK(reader.GetData(&saved_sum, sizeof(saved_sum), &got) == NO_ERROR && saved_sum == 1101);
}

// One replica is its own quorum: it leads, recovers, and obeys the checkpoint controls.
static void test_single_replica_and_checkpoint_control() {
    std::string dir = temp_dir("single");
    RSLConfigParam cfg = fast_config(dir, 1);
    RSLNodeCollection members;
    members.Append(make_node(1));
    Counter solo;
    solo.save_at = 5;
    solo.decline_save = true;
    CHECK(solo.Initialize(&cfg, members, members[0], RSLProtocolVersion_6, false, spawn));
    CHECK(wait_for([&] { return solo.primary.load() && solo.recovered > 0; }));
    unsigned long long five = 5, one = 1;
    // TrySaveState declines: no checkpoint, and none asked for until AllowSaveState(true).
    CHECK(solo.ReplicateRequestExclusiveVote(&five, sizeof(five), &five) == RSLSuccess);
    CHECK(wait_for([&] { return solo.Sum() == 5; }));
    CHECK(solo.try_saves == 1 && solo.saved == 0);
    CHECK(solo.ReplicateRequestExclusiveVote(&five, sizeof(five), &five) == RSLSuccess);
    CHECK(wait_for([&] { return solo.Sum() == 10; }));
    CHECK(solo.try_saves == 1);
    solo.AllowSaveState(true);
    solo.decline_save = false;
    CHECK(solo.ReplicateRequestExclusiveVote(&five, sizeof(five), &five) == RSLSuccess);
    CHECK(wait_for([&] { return solo.saved == 1; }));
    CHECK(solo.ReplicateRequestExclusiveVote(&one, sizeof(one), &one) == RSLSuccess);
    CHECK(solo.ReplicateRequestExclusiveVote(&five, sizeof(five), &five) == RSLSuccess);
    CHECK(wait_for([&] { return solo.saved == 2 && solo.Sum() == 21; }));
    solo.UnloadThisOne();
    // LoadState refuses the newest checkpoint (sum 21): the older one (sum 15) loads and
    // the log replays the rest.
    Counter picky;
    picky.refuse_above = 20;
    CHECK(picky.Initialize(&cfg, members, members[0], RSLProtocolVersion_6, false, spawn));
    CHECK(picky.loaded == 15 && picky.Sum() == 21);
    picky.UnloadThisOne();
}

// Only the replica whose CanBecomePrimary allows it leads, and its cookie reaches every
// AcceptMessageFromReplica.
static void test_vetoes() {
    std::string dir = temp_dir("veto");
    RSLConfigParam cfg = fast_config(dir, 1);
    RSLNodeCollection members = three_members();
    Counter nodes[3];
    for (int i = 0; i < 3; i++) {
        nodes[i].may_lead = i == 2;
        nodes[i].primary_cookie = "lead-3";
        CHECK(nodes[i].Initialize(&cfg, members, members[i], RSLProtocolVersion_6, false, spawn));
    }
    CHECK(wait_for([&] { return nodes[2].primary.load(); }));
    unsigned long long one = 1;
    CHECK(nodes[2].ReplicateRequest(&one, sizeof(one), &one) == RSLSuccess);
    for (int i = 0; i < 3; i++) CHECK(wait_for([&] { return nodes[i].Sum() == 1; }));
    CHECK(!nodes[0].primary && !nodes[1].primary);
    for (int i = 0; i < 2; i++) {
        CHECK(nodes[i].accept_calls > 0);
        std::lock_guard<std::mutex> lock(nodes[i].seen_mu);
        CHECK(nodes[i].seen_cookie == "lead-3");
    }
    // Secondaries that refuse the primary's messages leave it without a quorum: nothing
    // commits until one accepts again.
    nodes[0].veto_messages = nodes[1].veto_messages = true;
    unsigned long long two = 2;
    CHECK(nodes[2].ReplicateRequest(&two, sizeof(two), &two) == RSLSuccess);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(nodes[2].Sum() == 1);
    nodes[1].veto_messages = false;
    CHECK(wait_for([&] { return nodes[2].Sum() == 3; }));
    for (int i = 0; i < 3; i++) nodes[i].UnloadThisOne();
}

// ResolveNode overridden: members named only by host names no resolver knows ("node-N.invalid",
// IP 0) are reached where the application's directory says (127.0.0.1, listening on every
// address as members without an IP do).
class Directory : public Counter {
protected:
    bool ResolveNode(RSLNode* node) override {
        resolved++;
        if (strncmp(node->m_hostName, "node-", 5) != 0) return false;
        node->m_ip = inet_addr("127.0.0.1");
        return true;
    }

public:
    std::atomic<int> resolved{0};
};

static void test_resolve_node_override() {
    std::string dir = temp_dir("directory");
    RSLConfigParam cfg = fast_config(dir, 1);
    RSLNodeCollection members;
    for (int i = 1; i <= 3; i++) {
        RSLNode node;
        snprintf(node.m_memberIdString, sizeof(node.m_memberIdString), "%d", i);
        snprintf(node.m_hostName, sizeof(node.m_hostName), "node-%d.invalid", i);
        node.m_rslPort = free_port("0.0.0.0");
        node.m_rslLearnPort = free_port("0.0.0.0");
        members.Append(node);
    }
    Directory nodes[3];
    for (int i = 0; i < 3; i++) CHECK(nodes[i].Initialize(&cfg, members, members[i], RSLProtocolVersion_6, false, spawn));
    for (int i = 0; i < 3; i++) CHECK(nodes[i].resolved == 2);  // each peer, at start
    int p = -1;
    CHECK(wait_for([&] {
        for (int i = 0; i < 3; i++)
            if (nodes[i].primary) p = i;
        return p >= 0;
    }));
    if (p >= 0) {
        unsigned long long one = 1;
        CHECK(nodes[p].ReplicateRequest(&one, sizeof(one), &one) == RSLSuccess);
        for (int i = 0; i < 3; i++) CHECK(wait_for([&] { return nodes[i].Sum() == 1; }));
    }
    for (int i = 0; i < 3; i++) nodes[i].UnloadThisOne();
}

// ChangeConfiguration: bad sets are refused and change nothing; a good one reaches every
// replica of the old set (the issuer gets its cookie back); the removed one stops counting.
static void test_change_configuration() {
    std::string dir = temp_dir("change");
    RSLConfigParam cfg = fast_config(dir, 1);
    RSLNodeCollection members = three_members();
    Counter nodes[3];
    for (int i = 0; i < 3; i++) CHECK(nodes[i].Initialize(&cfg, members, members[i], RSLProtocolVersion_6, false, spawn));
    int p = primary_of(nodes);
    if (p < 0) return;
    int removed = (p + 2) % 3, kept = (p + 1) % 3;
    RSLNodeCollection two;
    two.Append(members[p]);
    two.Append(members[kept]);
    static char cookie_bytes[RSLMemberSet::s_MaxMemberSetCookieLength + 1];
    RSLNodeCollection empty, duplicate = two, no_port = two;
    duplicate.Append(members[p]);
    no_port[1].m_rslPort = 0;
    RSLMemberSet empty_set(empty, NULL, 0), duplicate_set(duplicate, NULL, 0), no_port_set(no_port, NULL, 0);
    RSLMemberSet long_cookie(two, cookie_bytes, sizeof(cookie_bytes));
    RSLMemberSet good(two, const_cast<char*>("two"), 3);
    int cookie = 42;
    CHECK(nodes[p].ChangeConfiguration(NULL, &cookie) == RSLInvalidParameter);
    CHECK(nodes[p].ChangeConfiguration(&empty_set, &cookie) == RSLInvalidParameter);
    CHECK(nodes[p].ChangeConfiguration(&duplicate_set, &cookie) == RSLInvalidParameter);
    CHECK(nodes[p].ChangeConfiguration(&no_port_set, &cookie) == RSLInvalidParameter);
    CHECK(nodes[p].ChangeConfiguration(&long_cookie, &cookie) == RSLInvalidParameter);
    CHECK(nodes[kept].ChangeConfiguration(&good, &cookie) == RSLNotPrimary);
    RSLMemberSet now;
    unsigned int number = 0;
    CHECK(nodes[p].GetConfiguration(&now, &number) && number == 1 && now.GetNumMembers() == 3);
    CHECK(nodes[p].ChangeConfiguration(&good, &cookie) == RSLSuccess);
    for (int i = 0; i < 3; i++) CHECK(wait_for([&] { return nodes[i].config_changes.load() == 1; }));
    CHECK(nodes[p].change_cookie.load() == &cookie && nodes[kept].change_cookie.load() == NULL);
    for (int i = 0; i < 3; i++) {
        CHECK(nodes[i].GetConfiguration(&now, &number) && number == 2 && now.GetNumMembers() == 2);
        CHECK(!now.IncludesMember(members[removed].m_memberIdString));
        unsigned int cookie_len = 0;
        const char* set_cookie = static_cast<const char*>(now.GetConfigurationCookie(&cookie_len));
        CHECK(cookie_len == 3 && set_cookie != NULL && memcmp(set_cookie, "two", 3) == 0);
    }
    // The two members commit; with one of them paused the removed one makes no quorum.
    int q = -1;
    CHECK(wait_for([&] {
        q = nodes[p].primary ? p : nodes[kept].primary ? kept : -1;
        return q >= 0;
    }));
    if (q < 0) return;
    unsigned long long one = 1;
    int other = q == p ? kept : p;
    nodes[other].Pause();
    CHECK(nodes[q].ReplicateRequest(&one, sizeof(one), &one) == RSLSuccess);
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    CHECK(nodes[q].Sum() == 0);
    nodes[other].Resume();
    CHECK(wait_for([&] { return nodes[q].Sum() == 1 && nodes[other].Sum() == 1; }));
    CHECK(nodes[removed].Sum() == 0 && nodes[p].change_aborts == 0);
    for (int i = 0; i < 3; i++) nodes[i].UnloadThisOne();
}

// The new API: three replicas wait in configuration 0; one Bootstrap call brings them all
// into configuration 1 (the others by message), and a restart comes back bootstrapped.
static void test_bootstrap() {
    std::string dir = temp_dir("bootstrap");
    RSLConfigParam cfg = fast_config(dir, 1);
    RSLNodeCollection members = three_members();
    Counter old_version;
    CHECK(!old_version.Initialize(&cfg, members[0], RSLProtocolVersion_3, false, spawn));
    Counter nodes[3];
    for (int i = 0; i < 3; i++) CHECK(nodes[i].Initialize(&cfg, members[i], RSLProtocolVersion_6, false, spawn));
    RSLMemberSet set(members, NULL, 0), now;
    unsigned int number = 7;
    CHECK(nodes[1].GetConfiguration(&now, &number) && number == 0 && now.GetNumMembers() == 0);
    RSLNodeCollection others;
    others.Append(members[1]);
    others.Append(members[2]);
    RSLMemberSet without_me(others, NULL, 0);
    CHECK(nodes[0].Bootstrap(&without_me, 1) == RSLBootstrapFailed);
    CHECK(nodes[0].Bootstrap(NULL, 1) == RSLInvalidParameter);
    CHECK(nodes[0].Bootstrap(&set, 15) == RSLSuccess);
    for (int i = 0; i < 3; i++) {
        CHECK(wait_for([&] { return nodes[i].config_changes.load() == 1; }));
        CHECK(nodes[i].GetConfiguration(&now, &number) && number == 1 && now.GetNumMembers() == 3);
    }
    int p = primary_of(nodes);
    if (p < 0) return;
    unsigned long long five = 5;
    CHECK(nodes[p].ReplicateRequest(&five, sizeof(five), &five) == RSLSuccess);
    for (int i = 0; i < 3; i++) CHECK(wait_for([&] { return nodes[i].Sum() == 5; }));
    CHECK(nodes[(p + 1) % 3].Bootstrap(&set, 0) == RSLAlreadyBootstrapped);
    for (int i = 0; i < 3; i++) nodes[i].UnloadThisOne();
    Counter again;
    CHECK(again.Initialize(&cfg, members[p], RSLProtocolVersion_6, false, spawn));
    CHECK(again.GetConfiguration(&now, &number) && number == 1 && now.GetNumMembers() == 3);
    CHECK(again.Sum() == 5 && again.Bootstrap(&set, 0) == RSLAlreadyBootstrapped);
    again.UnloadThisOne();
}

// ---- ResolveNode's default: the IP, else the host name resolved to IPv4 --------------------
struct Resolver : Counter {
    using RSLStateMachine::ResolveNode;  // protected, as in legacy
};

static void test_resolve_node() {
    Resolver machine;
    RSLNode node;
    CHECK(!machine.ResolveNode(NULL));
    CHECK(!machine.ResolveNode(&node));  // no Paxos port (legacy asserts)
    node.m_rslPort = 4000;
    node.m_ip = inet_addr("127.0.0.9");
    CHECK(machine.ResolveNode(&node) && node.m_ip == inet_addr("127.0.0.9"));  // kept, not looked up
    node.m_ip = 0;
    CHECK(!machine.ResolveNode(&node) && node.m_ip == 0);  // neither an IP nor a name
    strcpy(node.m_hostName, "localhost");
    CHECK(machine.ResolveNode(&node) && node.m_ip == inet_addr("127.0.0.1"));
}

int main() {
    CHECK(RSLInit(NULL, true, NULL, on_log));
    test_resolve_node();
    test_layout();
    test_data_classes();
    test_checksum();
    test_ssl_settings();
    test_checkpoints();
    CHECK(log_entries > 0);  // ChangeReplicaSet's refusal was logged through the callback
    test_cluster();
    test_single_replica_and_checkpoint_control();
    test_vetoes();
    test_change_configuration();
    test_resolve_node_override();
    test_bootstrap();
    if (failures) {
        fprintf(stderr, "compat: %d check(s) failed\n", failures);
        return 1;
    }
    printf("compat: all checks passed\n");
    return 0;
}
