// SPDX-License-Identifier: Apache-2.0
// Test helpers for the bus transports: a real nats-server on a free loopback port (JetStream,
// storage in a temp dir), and the worker / result-consumer loops both transports are tested with.
#pragma once

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "fg/bus/bus.h"
#include "fg/bus/dedupe.h"
#include "fg/bus/messages.h"
#include "fg/testing/testing.h"

extern char** environ;

namespace fg::bus::testing {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

/// True once something accepts TCP connections on 127.0.0.1:port.
inline bool PortOpen(int port) {
    const int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return false;
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons(static_cast<std::uint16_t>(port));
    const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    close(fd);
    return ok;
}

/// nats-server -js on a free loopback port; Stop() is SIGTERM (a clean restart keeps the file
/// store), bounded, then SIGKILL.
class NatsServer {
  public:
    explicit NatsServer(std::filesystem::path dir) : dir_(std::move(dir)), port_(fg::testing::FreeLoopbackPort()) {}
    ~NatsServer() { Stop(); }
    NatsServer(const NatsServer&) = delete;
    NatsServer& operator=(const NatsServer&) = delete;

    /// Starts it and waits (bounded) until it accepts connections.
    bool Start() {
        const std::string port = std::to_string(port_);
        const std::string store = (dir_ / "js").string();
        const std::string log = (dir_ / "nats.log").string();
        std::vector<std::string> args = {"nats-server", "-a", "127.0.0.1", "-p", port, "-js",
                                         "-sd", store, "-l", log};
        std::vector<char*> argv;
        for (std::string& a : args) argv.push_back(a.data());
        argv.push_back(nullptr);
        if (posix_spawnp(&pid_, "nats-server", nullptr, nullptr, argv.data(), environ) != 0) {
            pid_ = -1;
            return false;
        }
        const auto deadline = Clock::now() + 10s;
        while (Clock::now() < deadline) {
            if (PortOpen(port_)) return true;
            int status = 0;
            if (waitpid(pid_, &status, WNOHANG) == pid_) {  // died (port taken?)
                pid_ = -1;
                return false;
            }
            std::this_thread::sleep_for(20ms);  // polling a readiness condition, bounded
        }
        return false;
    }

    void Stop() {
        if (pid_ <= 0) return;
        kill(pid_, SIGTERM);
        const auto deadline = Clock::now() + 10s;
        int status = 0;
        while (waitpid(pid_, &status, WNOHANG) == 0) {
            if (Clock::now() >= deadline) {
                kill(pid_, SIGKILL);
                waitpid(pid_, &status, 0);
                break;
            }
            std::this_thread::sleep_for(10ms);
        }
        pid_ = -1;
    }

    std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }

  private:
    std::filesystem::path dir_;
    int port_;
    pid_t pid_ = -1;
};

inline bool HaveNatsServer() { return std::system("command -v nats-server >/dev/null 2>&1") == 0; }

inline pipeline::FaceItem MakeItem(int i, int cameras) {
    pipeline::FaceItem item;
    item.stream_id = "cam" + std::to_string(i % cameras);
    item.track_id = static_cast<std::uint64_t>(i / cameras);
    item.frame_index = i;
    item.item_id = item.stream_id + "/0/" + std::to_string(item.track_id) + "/" + std::to_string(i);
    item.embed = false;  // no crop: the plumbing is under test here (envelope_test covers crops)
    return item;
}

/// What the result consumer saw, after dedupe by item id.
struct Outcome {
    std::mutex mu;
    std::map<std::string, int> results;  ///< item id -> results kept (must be 1 each)
    std::atomic<int> unique{0};
    std::atomic<int> face_deliveries{0};
    std::atomic<int> worker_errors{0};
};

/// A worker: fetch face items, "recognise" (a stub decision), publish the result (id = item id),
/// and only then ack. Settling errors are tolerated: the item comes again and is deduped.
inline void WorkerLoop(Bus& bus, Consumer& faces, const std::string& worker, std::atomic<bool>& stop,
                       Outcome& out) {
    while (!stop.load()) {
        auto batch = faces.Fetch(16, 200ms);
        if (!batch.ok()) {  // the bus is down: the client reconnects; try again shortly
            out.worker_errors.fetch_add(1);
            std::this_thread::sleep_for(50ms);
            continue;
        }
        for (auto& d : *batch) {
            out.face_deliveries.fetch_add(1);
            auto env = DecodeEnvelope(d->data());
            if (!env.ok()) {
                (void)d->Term();
                continue;
            }
            auto item = FaceItemFromEnvelope(*env);
            if (!item.ok()) {
                (void)d->Term();
                continue;
            }
            RecognitionResult r{.item_id = item->item_id, .stream_id = item->stream_id,
                                .track_id = item->track_id, .frame_index = item->frame_index,
                                .decision = "unknown", .worker_id = worker};
            auto renv = ResultEnvelope(r, env->region, env->camera, 0);
            if (!renv.ok() || !PublishEnvelope(bus, *renv).ok()) {
                (void)d->Nak(100ms);
                continue;
            }
            (void)d->Ack();
        }
    }
}

/// The result consumer: dedupe by item id (the at-least-once transport may repeat), record.
inline void ResultLoop(Consumer& results, DedupeWindow& window, std::atomic<bool>& stop, Outcome& out) {
    while (!stop.load()) {
        auto batch = results.Fetch(64, 200ms);
        if (!batch.ok()) {
            std::this_thread::sleep_for(50ms);
            continue;
        }
        for (auto& d : *batch) {
            auto env = DecodeEnvelope(d->data());
            if (env.ok() && window.FirstSeen(env->id)) {
                std::lock_guard lock(out.mu);
                ++out.results[env->id];
                out.unique.fetch_add(1);
            }
            (void)d->Ack();
        }
    }
}

/// Waits (bounded) until `done` holds.
template <typename F>
bool WaitFor(F done, std::chrono::milliseconds limit) {
    const auto deadline = Clock::now() + limit;
    while (!done()) {
        if (Clock::now() >= deadline) return false;
        std::this_thread::sleep_for(20ms);
    }
    return true;
}

}  // namespace fg::bus::testing
