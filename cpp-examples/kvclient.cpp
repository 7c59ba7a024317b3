// A small client of kvserver. It finds the primary by asking the servers in turn, and
// keeps a connection to each.
//
//   kvclient --port BASE put KEY VALUE
//   kvclient --port BASE get KEY [SEQ [SERVER]]
//   kvclient --port BASE fill PREFIX COUNT          puts PREFIX0..: "v0".., through failovers
//   kvclient --port BASE check PREFIX COUNT SEQ SERVER   reads them back from SERVER
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

using Clock = std::chrono::steady_clock;

class Servers {
public:
    explicit Servers(int base) : base_(base) {}
    ~Servers() {
        for (FILE* f : conn_)
            if (f != NULL) fclose(f);
    }

    // Server `id`'s answer to `request` ("" when it cannot be reached).
    std::string Ask(int id, const std::string& request) {
        FILE*& f = conn_[id - 1];
        if (f == NULL) f = Connect(id);
        char line[4096];
        if (f == NULL || fputs((request + "\n").c_str(), f) < 0 || fflush(f) != 0 ||
            fgets(line, sizeof(line), f) == NULL) {
            if (f != NULL) fclose(f);
            f = NULL;
            return "";
        }
        line[strcspn(line, "\n")] = 0;
        return line;
    }

    // Puts through whichever server is primary, trying each in turn until one takes it
    // (at most `patience`); returns the "ok SEQ" answer and leaves `primary` at its id.
    std::string Put(const std::string& key, const std::string& value, int* primary,
                    std::chrono::seconds patience = std::chrono::seconds(30)) {
        auto deadline = Clock::now() + patience;
        while (Clock::now() < deadline) {
            std::string answer = Ask(*primary, "put " + key + " " + value);
            if (answer.compare(0, 3, "ok ") == 0) return answer;
            *primary = *primary % 3 + 1;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        return "";
    }

private:
    FILE* Connect(int id) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = inet_addr(("127.0.0." + std::to_string(id)).c_str());
        addr.sin_port = htons(static_cast<unsigned short>(base_ + 100 + id));
        if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
            close(fd);
            return NULL;
        }
        return fdopen(fd, "r+");
    }

    int base_;
    FILE* conn_[3] = {NULL, NULL, NULL};
};

int main(int argc, char** argv) {
    if (argc < 5 || strcmp(argv[1], "--port") != 0) {
        fprintf(stderr, "usage: kvclient --port BASE put|get|fill|check ...\n");
        return 2;
    }
    Servers servers(atoi(argv[2]));
    std::string op = argv[3];
    int primary = 1;
    if (op == "put" && argc == 6) {
        std::string answer = servers.Put(argv[4], argv[5], &primary);
        printf("%s (server %d)\n", answer.empty() ? "no primary" : answer.c_str(), primary);
        return answer.empty();
    }
    if (op == "get") {
        int id = argc > 6 ? atoi(argv[6]) : 1;
        std::string seq = argc > 5 ? argv[5] : "0";
        std::string answer = servers.Ask(id, std::string("get ") + argv[4] + " " + seq);
        printf("%s\n", answer.empty() ? "unreachable" : answer.c_str());
        return answer.compare(0, 6, "value ") != 0;
    }
    if (op == "fill" && argc == 6) {
        long count = atol(argv[5]);
        double longest_ms = 0;
        std::string answer;
        auto last = Clock::now();
        for (long i = 0; i < count; i++) {
            answer = servers.Put(argv[4] + std::to_string(i), "v" + std::to_string(i), &primary);
            if (answer.empty()) {
                fprintf(stderr, "kvclient: no primary took %s%ld\n", argv[4], i);
                return 1;
            }
            auto now = Clock::now();
            longest_ms = std::max(longest_ms, std::chrono::duration<double, std::milli>(now - last).count());
            last = now;
        }
        printf("filled %ld keys; primary %d; seq %s; longest wait for a primary %.0f ms\n", count, primary,
               answer.substr(3).c_str(), longest_ms);
        return 0;
    }
    if (op == "check" && argc == 8) {
        long count = atol(argv[5]);
        int id = atoi(argv[7]);
        long bad = 0;
        for (long i = 0; i < count; i++) {
            std::string key = argv[4] + std::to_string(i);
            std::string answer = servers.Ask(id, "get " + key + " " + argv[6]);
            if (answer != "value v" + std::to_string(i)) {
                if (bad++ < 3) fprintf(stderr, "kvclient: server %d: %s -> \"%s\"\n", id, key.c_str(), answer.c_str());
            }
        }
        printf("server %d: %ld of %ld keys read back%s\n", id, count - bad, count, bad ? " (MISMATCH)" : "");
        return bad != 0;
    }
    fprintf(stderr, "usage: kvclient --port BASE put|get|fill|check ...\n");
    return 2;
}
