// SPDX-License-Identifier: Apache-2.0
// `facegate` as a child process for the multi-process cluster tests: stdout and stderr into
// <log>.out / <log>.err, killed with -9 at destruction if still alive.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace fg::cluster::testing {

class Child {
  public:
    Child(std::vector<std::string> args, const std::filesystem::path& log) {
        args.insert(args.begin(), FG_FACEGATE_BIN);
        std::vector<char*> argv;
        for (auto& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 1, (log.string() + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        posix_spawn_file_actions_addopen(&fa, 2, (log.string() + ".err").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (posix_spawn(&pid_, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid_ = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    ~Child() {
        if (pid_ > 0 && !code_) {
            kill(pid_, SIGKILL);
            waitpid(pid_, nullptr, 0);
        }
    }
    Child(const Child&) = delete;
    Child& operator=(const Child&) = delete;
    bool started() const { return pid_ > 0; }
    void Signal(int sig) const {
        if (pid_ > 0 && !code_) kill(pid_, sig);
    }
    /// Exit code (-1 if killed by a signal) once it exited; nullopt if still running after `limit`.
    std::optional<int> Wait(std::chrono::milliseconds limit) {
        const auto until = std::chrono::steady_clock::now() + limit;
        while (!code_) {
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {
                code_ = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
            } else if (std::chrono::steady_clock::now() >= until) {
                return std::nullopt;
            } else {
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
        }
        return code_;
    }

  private:
    pid_t pid_ = -1;
    std::optional<int> code_;
};

inline std::string ReadAll(const std::filesystem::path& p) {
    std::ifstream in(p);
    return {std::istreambuf_iterator<char>(in), {}};
}

}  // namespace fg::cluster::testing
