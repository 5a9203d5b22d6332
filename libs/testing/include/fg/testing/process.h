// SPDX-License-Identifier: Apache-2.0
// A program (usually `facegate serve`) run in the background by a test: stdout and stderr to
// files, Ctrl-C then SIGKILL when stopped or destroyed. Header-only.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

namespace fg::testing {

/// The whole file (empty when it cannot be read).
inline std::string ReadFile(const std::filesystem::path& p) {
    std::ifstream in(p, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), {}};
}

/// What `facegate serve --create-admin-key --json` prints once it listens.
struct ServeEndpoint {
    int port = 0;           ///< 0: it did not start in time
    std::string admin_key;
};

/// Reads serve's stdout file until its listening port appears (the JSON line with "port"), for
/// at most `limit` or until `alive` says it exited. Bounded polling of a readiness condition.
inline ServeEndpoint WaitForServe(const std::filesystem::path& stdout_file, std::chrono::seconds limit,
                                  const std::function<bool()>& alive = {}) {
    ServeEndpoint e;
    for (const auto deadline = std::chrono::steady_clock::now() + limit;
         std::chrono::steady_clock::now() < deadline && e.port == 0 && (!alive || alive());) {
        std::istringstream out(ReadFile(stdout_file));
        for (std::string line; std::getline(out, line);) {
            if (line.rfind("admin key: ", 0) == 0) e.admin_key = line.substr(11);
            // {"port": N, ...}: the number after "port": (no JSON library needed here).
            if (const auto at = line.find("\"port\":"); !line.empty() && line[0] == '{' && at != std::string::npos)
                e.port = std::atoi(line.c_str() + at + 7);
        }
        if (e.port == 0) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return e;
}

/// `argv[0]` (a path) with its arguments, in the background. Not thread-safe.
class Process {
  public:
    Process(const std::vector<std::string>& argv, const std::filesystem::path& out, const std::filesystem::path& err) {
        pid_ = fork();
        if (pid_ == 0) {
            const int o = open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            const int e = open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (o >= 0) dup2(o, 1);
            if (e >= 0) dup2(e, 2);
            std::vector<char*> args;
            for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
            args.push_back(nullptr);
            execv(args[0], args.data());
            _exit(127);
        }
    }
    ~Process() { Stop(); }
    Process(const Process&) = delete;
    Process& operator=(const Process&) = delete;
    bool running() const { return pid_ > 0 && waitpid(pid_, nullptr, WNOHANG) == 0; }
    /// Ctrl-C, up to 20 s for a clean stop, then SIGKILL. The exit code, or -1 when killed.
    int Stop() {
        if (pid_ <= 0) return code_;
        kill(pid_, SIGINT);
        int status = 0;
        for (int i = 0; i < 200; ++i) {
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                pid_ = -1;
                return code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(100));
        }
        kill(pid_, SIGKILL);
        waitpid(pid_, nullptr, 0);
        pid_ = -1;
        return code_ = -1;
    }

  private:
    pid_t pid_ = -1;
    int code_ = -1;
};

}  // namespace fg::testing
