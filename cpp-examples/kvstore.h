// A replicated key-value store on the legacy RSLib API: the kind of service RSL is
// embedded in. Requests are "put key value" (replicated) and "get key" (a fast read);
// the state is checkpointed as a sequence of length-prefixed key/value pairs.
#ifndef KVSTORE_H
#define KVSTORE_H

#include "rsl.h"

#include <arpa/inet.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>

// The examples' settings: one-second heartbeats, a two-second election delay, fast reads
// up to 1000 decrees ahead, and `dir` as the working directory.
inline RSLib::RSLConfigParam ExampleConfig(const std::string& dir) {
    RSLib::RSLConfigParam cfg;
    cfg.m_heartBeatIntervalSec = 1;
    cfg.m_electionDelaySec = 2;
    cfg.m_newLeaderGracePeriodSec = 2;
    cfg.m_fastReadSeqThreshold = 1000;
    snprintf(cfg.m_workingDir, sizeof(cfg.m_workingDir), "%s", dir.c_str());
    return cfg;
}

// Members "1".."n" on 127.0.0.1..n, Paxos ports base+2i (learn ports one above: legacy's
// default when m_rslLearnPort is 0).
inline RSLib::RSLNodeCollection LoopbackMembers(int n, unsigned short base) {
    RSLib::RSLNodeCollection members;
    for (int i = 1; i <= n; i++) {
        RSLib::RSLNode node;
        snprintf(node.m_memberIdString, sizeof(node.m_memberIdString), "%d", i);
        node.m_ip = inet_addr(("127.0.0." + std::to_string(i)).c_str());
        node.m_rslPort = static_cast<unsigned short>(base + 2 * i);
        members.Append(node);
    }
    return members;
}

// What a client waits on: filled in by the execute or abort callback.
struct Pending {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    RSLib::RSLResponseCode status = RSLib::RSLSuccess;
    std::string answer;

    void finish(RSLib::RSLResponseCode code, const std::string& text) {
        std::lock_guard<std::mutex> lock(mu);
        status = code;
        answer = text;
        done = true;
        cv.notify_all();
    }
    RSLib::RSLResponseCode wait() {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [this] { return done; });
        return status;
    }
};

class KvStore : public RSLib::RSLStateMachine {
public:
    std::atomic<bool> is_primary{false};

    // Replicates "put key value"; the answer is the previous value.
    RSLib::RSLResponseCode Put(const std::string& key, const std::string& value, Pending* pending) {
        std::string request = "put " + key + " " + value;
        return ReplicateRequest(const_cast<char*>(request.data()), request.size(), pending);
    }

    // Reads on this replica once it has executed `seen` (a fast read).
    RSLib::RSLResponseCode Get(const std::string& key, unsigned long long seen, Pending* pending) {
        std::string request = "get " + key;
        return FastReadRequest(seen, const_cast<char*>(request.data()), request.size(), pending, 1000);
    }

    size_t Size() {
        std::lock_guard<std::mutex> lock(mu_);
        return map_.size();
    }

protected:
    bool LoadState(RSLib::RSLCheckpointStreamReader* reader) override {
        std::lock_guard<std::mutex> lock(mu_);
        map_.clear();
        if (reader == NULL) return true;
        std::string key, field;
        bool have_key = false;
        while (true) {
            unsigned int rc = ReadField(reader, &field);
            if (rc == ERROR_HANDLE_EOF && !have_key) return true;
            if (rc != NO_ERROR) return false;
            if (have_key) map_[key] = field;
            else key = field;
            have_key = !have_key;
        }
    }

    void ExecuteReplicatedRequest(void* request, size_t len, void* cookie, bool* saveState) override {
        std::string text(static_cast<char*>(request), len);
        std::string previous;
        {
            std::lock_guard<std::mutex> lock(mu_);
            size_t a = text.find(' ', 4);
            if (text.compare(0, 4, "put ") == 0 && a != std::string::npos) {
                std::string& slot = map_[text.substr(4, a - 4)];
                previous = slot;
                slot = text.substr(a + 1);
            }
            *saveState = ++executed_ % 10000 == 0;  // a checkpoint every 10,000 requests
        }
        if (cookie) static_cast<Pending*>(cookie)->finish(RSLib::RSLSuccess, previous);
    }

    void ExecuteFastReadRequest(void* request, size_t len, void* cookie) override {
        std::string key(static_cast<char*>(request) + 4, len - 4);
        std::lock_guard<std::mutex> lock(mu_);
        auto it = map_.find(key);
        static_cast<Pending*>(cookie)->finish(RSLib::RSLSuccess, it == map_.end() ? "" : it->second);
    }

    void AbortRequest(RSLib::RSLResponseCode status, void* cookie) override {
        static_cast<Pending*>(cookie)->finish(status, "");
    }

    void SaveState(RSLib::RSLCheckpointStreamWriter* writer) override {
        std::lock_guard<std::mutex> lock(mu_);
        for (auto& kv : map_) {
            WriteField(writer, kv.first);
            WriteField(writer, kv.second);
        }
    }

    void NotifyStatus(bool isPrimary) override { is_primary = isPrimary; }
    void NotifyConfigurationChanged(void*) override {}
    void AbortChangeConfiguration(RSLib::RSLResponseCode, void*) override {}
    void ShutDown(RSLib::RSLResponseCode) override {}

private:
    static void WriteField(RSLib::RSLCheckpointStreamWriter* writer, const std::string& s) {
        uint32_t len = static_cast<uint32_t>(s.size());
        writer->Write(&len, sizeof(len));
        writer->Write(s.data(), len);
    }
    // Reads exactly n bytes: a read may come back short at a checkpoint block's end.
    static unsigned int ReadExactly(RSLib::RSLCheckpointStreamReader* reader, char* out, unsigned long n) {
        unsigned long got = 0;
        for (unsigned long done = 0; done < n; done += got) {
            unsigned int rc = reader->GetData(out + done, n - done, &got);
            if (rc != NO_ERROR) return done == 0 ? rc : ERROR_CRC;
        }
        return NO_ERROR;
    }
    static unsigned int ReadField(RSLib::RSLCheckpointStreamReader* reader, std::string* field) {
        uint32_t len = 0;
        unsigned int rc = ReadExactly(reader, reinterpret_cast<char*>(&len), sizeof(len));
        if (rc != NO_ERROR) return rc;
        field->resize(len);
        return len ? ReadExactly(reader, &(*field)[0], len) : NO_ERROR;
    }

    std::mutex mu_;
    std::map<std::string, std::string> map_;
    unsigned long long executed_ = 0;
};

#endif  // KVSTORE_H
