// One replica of the replicated key-value store per process, serving clients a line
// protocol on 127.0.0.<id>, port base + 100 + id:
//   put KEY VALUE      -> "ok SEQ" (SEQ: a decree at or after the put's) | "notprimary" | "error CODE"
//   get KEY [SEQ]      -> "value VALUE" once this replica executed SEQ (a fast read) | "error CODE"
// Members "1".."3" on 127.0.0.1-3 (Paxos ports base + 2 * id). Runs until killed.
//
//   kvserver --id N --port BASE --dir D
#include "kvstore.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <thread>

using namespace RSLib;

static void spawn(unsigned int (*entry)(void*), ThreadPriority, void* arg) { std::thread(entry, arg).detach(); }

static std::string Answer(KvStore& kv, const std::string& line) {
    std::istringstream in(line);
    std::string op, key, value;
    in >> op >> key;
    Pending pending;
    if (op == "put" && in >> value) {
        if (!kv.is_primary) return "notprimary";
        RSLResponseCode code = kv.Put(key, value, &pending);
        if (code == RSLSuccess) code = pending.wait();
        if (code == RSLNotPrimary) return "notprimary";
        if (code != RSLSuccess) return "error " + std::to_string(code);
        return "ok " + std::to_string(kv.GetCurrentSequenceNumber());
    }
    if (op == "get" && !key.empty()) {
        unsigned long long seen = 0;
        in >> seen;
        RSLResponseCode code = kv.Get(key, seen, &pending);
        if (code == RSLSuccess) code = pending.wait();
        if (code != RSLSuccess) return "error " + std::to_string(code);
        return "value " + pending.answer;
    }
    return "error bad request";
}

static void Serve(KvStore& kv, int fd) {
    FILE* in = fdopen(fd, "r+");
    char line[4096];
    while (in != NULL && fgets(line, sizeof(line), in) != NULL) {
        std::string answer = Answer(kv, line) + "\n";
        if (fputs(answer.c_str(), in) < 0 || fflush(in) != 0) break;
    }
    if (in != NULL) fclose(in);
    else close(fd);
}

int main(int argc, char** argv) {
    int id = 0, base = 0;
    std::string dir;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string flag = argv[i];
        if (flag == "--id") id = atoi(argv[i + 1]);
        else if (flag == "--port") base = atoi(argv[i + 1]);
        else if (flag == "--dir") dir = argv[i + 1];
    }
    if (id < 1 || id > 3 || base < 1024 || base > 65000 || dir.empty()) {
        fprintf(stderr, "usage: kvserver --id 1|2|3 --port BASE --dir D\n");
        return 2;
    }
    if (!RSLInit((dir + "/logs-" + std::to_string(id)).c_str())) return 1;
    RSLConfigParam cfg = ExampleConfig(dir);
    RSLNodeCollection members = LoopbackMembers(3, static_cast<unsigned short>(base));
    KvStore kv;
    if (!kv.Initialize(&cfg, members, members[id - 1], RSLProtocolVersion_6, true, spawn)) {
        fprintf(stderr, "kvserver %d: the replica did not start (see %s/logs-%d)\n", id, dir.c_str(), id);
        return 1;
    }
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int on = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = members[id - 1].m_ip;
    addr.sin_port = htons(static_cast<unsigned short>(base + 100 + id));
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 || listen(listener, 64) != 0) {
        perror("kvserver: client port");
        return 1;
    }
    printf("kvserver %d: serving on 127.0.0.%d:%d\n", id, id, base + 100 + id);
    fflush(stdout);
    for (int fd; (fd = accept(listener, NULL, NULL)) >= 0;) {
        std::thread(Serve, std::ref(kv), fd).detach();
    }
    perror("kvserver: accept");
    return 1;
}
