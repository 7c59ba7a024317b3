// The smallest service on the legacy RSLib API: a counter held by one replica (a set of
// one is its own primary). Each run adds --increments to what earlier runs left: the
// journal and checkpoint in the working directory bring the count back at start.
//
//   counter [--dir D] [--increments N]
#include "rsl.h"

#include <arpa/inet.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

using namespace RSLib;

class Counter : public RSLStateMachine {
public:
    std::atomic<bool> primary{false};
    std::atomic<unsigned long long> value{0}, acked{0};

protected:
    bool LoadState(RSLCheckpointStreamReader* reader) override {
        unsigned long long saved = 0;
        unsigned long got = 0;
        if (reader != NULL && (reader->GetData(&saved, sizeof(saved), &got) != NO_ERROR || got != sizeof(saved)))
            return false;
        value = saved;
        return true;
    }
    void ExecuteReplicatedRequest(void*, size_t, void* cookie, bool* saveState) override {
        *saveState = ++value % 50 == 0;  // a checkpoint every 50 increments
        if (cookie) acked++;
    }
    void SaveState(RSLCheckpointStreamWriter* writer) override {
        unsigned long long v = value;
        writer->Write(&v, sizeof(v));
    }
    void NotifyStatus(bool isPrimary) override { primary = isPrimary; }
    void ExecuteFastReadRequest(void*, size_t, void*) override {}
    void AbortRequest(RSLResponseCode, void*) override {}
    void NotifyConfigurationChanged(void*) override {}
    void AbortChangeConfiguration(RSLResponseCode, void*) override {}
    void ShutDown(RSLResponseCode) override {}
};

static void spawn(unsigned int (*entry)(void*), ThreadPriority, void* arg) { std::thread(entry, arg).detach(); }

int main(int argc, char** argv) {
    std::string dir = "/tmp/rsl-counter";
    unsigned long long increments = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "--dir") dir = argv[i + 1];
        else if (flag == "--increments") increments = strtoull(argv[i + 1], NULL, 10);
    }
    if (!RSLInit((dir + "/logs").c_str())) return 1;
    RSLConfigParam cfg;
    snprintf(cfg.m_workingDir, sizeof(cfg.m_workingDir), "%s", dir.c_str());
    RSLNode self;
    snprintf(self.m_memberIdString, sizeof(self.m_memberIdString), "1");
    self.m_ip = inet_addr("127.0.0.1");
    self.m_rslPort = static_cast<unsigned short>(20000 + getpid() % 12000);
    RSLNodeCollection members;
    members.Append(self);
    Counter counter;
    if (!counter.Initialize(&cfg, members, self, RSLProtocolVersion_6, true, spawn)) {
        fprintf(stderr, "counter: the replica did not start (see %s/logs)\n", dir.c_str());
        return 1;
    }
    while (!counter.primary) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    char increment = '+';
    for (unsigned long long i = 0; i < increments;) {
        if (counter.ReplicateRequest(&increment, 1, &increment) == RSLSuccess) i++;
        else std::this_thread::sleep_for(std::chrono::milliseconds(1));  // the queue is full
    }
    while (counter.acked < increments) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    printf("counter: %llu\n", counter.value.load());
    counter.UnloadThisOne();
    return 0;
}
