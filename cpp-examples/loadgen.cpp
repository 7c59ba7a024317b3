// Load generator for the replicated key-value store: three KvStore replicas (legacy
// RSLStateMachines) in this process on 127.0.0.1-3, closed-loop client threads putting
// keys through the primary; halfway through the primary is unloaded and the clients move
// to the new one. Prints throughput, latency percentiles and the failover time, then
// checks that the survivors agree (sizes, and a fast read of every client's last key).
//
//   loadgen [--seconds S] [--clients C] [--dir D]
#include "kvstore.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

using Clock = std::chrono::steady_clock;
using namespace RSLib;

static void spawn(unsigned int (*entry)(void*), ThreadPriority, void* arg) { std::thread(entry, arg).detach(); }

int main(int argc, char** argv) {
    int seconds = 6, clients = 32;
    std::string dir = "/tmp/rsl-loadgen-" + std::to_string(getpid());
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "--seconds") seconds = atoi(argv[i + 1]);
        else if (flag == "--clients") clients = atoi(argv[i + 1]);
        else if (flag == "--dir") dir = argv[i + 1];
    }
    if (seconds < 2 || clients < 1) {
        fprintf(stderr, "usage: loadgen [--seconds S>=2] [--clients C>=1] [--dir D]\n");
        return 2;
    }
    if (!RSLInit((dir + "-log").c_str())) return 1;

    RSLConfigParam cfg = ExampleConfig(dir);
    RSLNodeCollection members = LoopbackMembers(3, static_cast<unsigned short>(22000 + getpid() % 1000 * 10));
    KvStore replicas[3];
    for (int i = 0; i < 3; i++) {
        // Protocol version 6 keeps the wire legacy's; rsl pipelines only at version 7.
        if (!replicas[i].Initialize(&cfg, members, members[i], RSLProtocolVersion_6, true, spawn)) {
            fprintf(stderr, "loadgen: replica %d did not start (see %s-log/Logs)\n", i + 1, dir.c_str());
            return 1;
        }
    }
    std::atomic<int> primary{-1}, dead{-1};
    std::atomic<bool> stop{false}, killed{false};
    auto find_primary = [&] {
        for (int i = 0; i < 3; i++)
            if (i != dead && replicas[i].is_primary) primary = i;
    };
    std::vector<std::vector<double>> latencies(clients);
    std::vector<std::string> last_value(clients);
    std::vector<std::thread> threads;
    Clock::time_point killed_at, first_after_kill;
    std::atomic<bool> served_after_kill{false};
    std::mutex kill_mu;
    for (int c = 0; c < clients; c++) {
        threads.emplace_back([&, c] {
            for (unsigned long n = 0; !stop; n++) {
                int p = primary;
                if (p < 0) {
                    std::this_thread::sleep_for(std::chrono::milliseconds(5));
                    find_primary();
                    continue;
                }
                Pending pending;
                std::string value = std::to_string(n);
                auto start = Clock::now();
                if (replicas[p].Put("client" + std::to_string(c), value, &pending) != RSLSuccess ||
                    pending.wait() != RSLSuccess) {
                    primary = -1;
                    continue;
                }
                auto end = Clock::now();
                latencies[c].push_back(std::chrono::duration<double, std::micro>(end - start).count());
                last_value[c] = value;
                if (killed && p != dead && !served_after_kill.exchange(true)) {
                    std::lock_guard<std::mutex> lock(kill_mu);
                    first_after_kill = end;
                }
            }
        });
    }
    while (primary < 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    auto started = Clock::now();
    std::this_thread::sleep_for(std::chrono::seconds(seconds / 2));
    // Fail over: unload the primary; the clients look for the new one.
    int old = primary;
    {
        std::lock_guard<std::mutex> lock(kill_mu);
        killed_at = Clock::now();
    }
    dead = old;
    killed = true;
    primary = -1;
    replicas[old].UnloadThisOne();
    int survivors[2], k = 0;
    for (int i = 0; i < 3; i++)
        if (i != old) survivors[k++] = i;
    while (primary < 0 && Clock::now() - killed_at < std::chrono::seconds(30)) {
        find_primary();
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    std::this_thread::sleep_for(std::chrono::seconds(seconds - seconds / 2));
    stop = true;
    for (auto& t : threads) t.join();
    double elapsed = std::chrono::duration<double>(Clock::now() - started).count();

    std::vector<double> all;
    for (auto& l : latencies) all.insert(all.end(), l.begin(), l.end());
    std::sort(all.begin(), all.end());
    auto pct = [&](double q) { return all.empty() ? 0.0 : all[std::min(all.size() - 1, size_t(q * all.size()))]; };
    printf("loadgen: %d clients, %zu puts in %.1f s = %.0f ops/s, p50 %.0f us, p99 %.0f us, p999 %.0f us\n", clients,
           all.size(), elapsed, all.size() / elapsed, pct(0.5), pct(0.99), pct(0.999));
    double failover_ms = std::chrono::duration<double, std::milli>(first_after_kill - killed_at).count();
    printf("loadgen: primary %d unloaded; first put served by the new primary %.0f ms later\n", old + 1,
           served_after_kill ? failover_ms : -1.0);

    // The survivors agree: same number of keys, and every client's last value reads back.
    int bad = 0;
    int p = primary;
    if (p < 0) {
        fprintf(stderr, "loadgen: no primary after the failover\n");
        return 1;
    }
    unsigned long long seen = replicas[p].GetCurrentSequenceNumber();
    for (int i : survivors) {
        for (int c = 0; c < clients; c++) {
            Pending pending;
            if (last_value[c].empty()) continue;
            if (replicas[i].Get("client" + std::to_string(c), seen, &pending) != RSLSuccess ||
                pending.wait() != RSLSuccess || pending.answer != last_value[c]) {
                bad++;
            }
        }
    }
    for (int i : survivors) replicas[i].UnloadThisOne();
    std::string rm = "rm -rf " + dir + " " + dir + "-log";
    if (system(rm.c_str()) != 0) return 1;
    if (bad || !served_after_kill) {
        fprintf(stderr, "loadgen: FAILED (%d reads disagree)\n", bad);
        return 1;
    }
    printf("loadgen: OK, both survivors read every acknowledged last value\n");
    return 0;
}
