// SPDX-License-Identifier: Apache-2.0
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>

#include "fg/base/log.h"
#include "fg/events/sink.h"

namespace fg::events {

Status JsonLinesSinkConfig::Validate() const {
    if (max_queued < 1) return InvalidArgument("jsonl sink: max_queued must be >= 1");
    return Status::Ok();
}

namespace {

using Clock = std::chrono::steady_clock;

/// What the sink and its writer thread share. The thread keeps it alive: a writer stuck on a
/// blocked pipe at shutdown is left behind rather than waited for.
struct Shared {
    std::string path;
    std::FILE* file = nullptr;
    bool owned = false;
    std::size_t max_queued = 0;
    std::mutex mu;
    std::condition_variable cv;       // work for the writer
    std::condition_variable idle_cv;  // the queue drained (Flush)
    std::deque<std::string> queue;
    bool writing = false;
    bool stop = false;
    Clock::time_point last_drop_log{};
    std::atomic<std::uint64_t> published{0};
    std::atomic<std::uint64_t> delivered{0};
    std::atomic<std::uint64_t> dropped{0};
    std::atomic<std::uint64_t> failed{0};

    ~Shared() {
        if (owned && file != nullptr) std::fclose(file);
    }

    void Run() {
        std::deque<std::string> batch;
        for (;;) {
            {
                std::unique_lock lock(mu);
                writing = false;
                idle_cv.notify_all();
                cv.wait(lock, [&] { return stop || !queue.empty(); });
                if (queue.empty()) return;  // stop, and nothing left to write
                batch.swap(queue);
                writing = true;
            }
            for (const std::string& line : batch) {
                // One fwrite and fflush per line (one writer: lines never interleave); a full
                // disk shows at the flush, and is counted per event.
                const bool ok = std::fwrite(line.data(), 1, line.size(), file) == line.size() &&
                                std::fflush(file) == 0;
                if (ok) {
                    delivered.fetch_add(1, std::memory_order_relaxed);
                } else {
                    failed.fetch_add(1, std::memory_order_relaxed);
                    dropped.fetch_add(1, std::memory_order_relaxed);
                    std::clearerr(file);
                }
            }
            batch.clear();
        }
    }
};

class JsonLinesSink : public Sink {
  public:
    explicit JsonLinesSink(std::shared_ptr<Shared> shared) : s_(std::move(shared)) {
        thread_ = std::thread([s = s_] { s->Run(); });
    }
    ~JsonLinesSink() override {
        {
            std::lock_guard lock(s_->mu);
            s_->stop = true;
        }
        s_->cv.notify_all();
        // A writer blocked on a full pipe nobody reads must not hang the process's exit.
        std::unique_lock lock(s_->mu);
        const bool drained = s_->idle_cv.wait_for(lock, std::chrono::seconds(2), [&] {
            return s_->queue.empty() && !s_->writing;
        });
        lock.unlock();
        if (drained) {
            s_->cv.notify_all();
            thread_.join();
        } else {
            spdlog::warn("{}: writer still blocked at shutdown; {} event(s) left behind", name(),
                         s_->queue.size());
            thread_.detach();
        }
    }

    Status Publish(const Event& event) override {
        s_->published.fetch_add(1, std::memory_order_relaxed);
        std::string line = ToJsonLine(event);
        line += '\n';
        bool dropped = false;
        {
            std::lock_guard lock(s_->mu);
            // Bounded: a slow disk or a stdout nobody reads costs the oldest queued events,
            // never a stalled stream thread.
            if (s_->queue.size() >= s_->max_queued) {
                s_->queue.pop_front();
                dropped = true;
                const auto now = Clock::now();
                if (now - s_->last_drop_log >= std::chrono::seconds(10)) {
                    s_->last_drop_log = now;
                    spdlog::warn("{}: writer behind, dropping the oldest queued events ({} dropped so far)",
                                 name(), s_->dropped.load() + 1);
                }
            }
            s_->queue.push_back(std::move(line));
        }
        if (dropped) s_->dropped.fetch_add(1, std::memory_order_relaxed);
        s_->cv.notify_one();
        return Status::Ok();
    }

    Status Flush(Deadline deadline) override {
        std::unique_lock lock(s_->mu);
        if (!s_->idle_cv.wait_until(lock, deadline, [&] { return s_->queue.empty() && !s_->writing; })) {
            return Status(StatusCode::kDeadlineExceeded,
                          name() + ": " + std::to_string(s_->queue.size()) + " event(s) still queued");
        }
        return Status::Ok();
    }

    SinkStats stats() const override {
        return {s_->published.load(), s_->delivered.load(), s_->dropped.load(), s_->failed.load()};
    }

    std::string name() const override { return "jsonl:" + s_->path; }

  private:
    std::shared_ptr<Shared> s_;
    std::thread thread_;
};

}  // namespace

Result<std::unique_ptr<Sink>> CreateJsonLinesSink(const JsonLinesSinkConfig& config) {
    FG_RETURN_IF_ERROR(config.Validate());
    auto s = std::make_shared<Shared>();
    s->max_queued = config.max_queued;
    if (config.path.empty() || config.path == "-") {
        s->path = "stdout";
        s->file = stdout;
        return std::unique_ptr<Sink>(std::make_unique<JsonLinesSink>(std::move(s)));
    }
    // 0600 whatever the umask: events name people and carry their faces (best shots).
    const int fd = ::open(config.path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    std::FILE* f = fd >= 0 ? ::fdopen(fd, "a") : nullptr;
    if (f == nullptr) {
        const int err = errno;
        if (fd >= 0) ::close(fd);
        return Unavailable("jsonl sink: cannot open " + config.path + " for appending: " +
                           std::strerror(err));
    }
    s->path = config.path;
    s->file = f;
    s->owned = true;
    return std::unique_ptr<Sink>(std::make_unique<JsonLinesSink>(std::move(s)));
}

}  // namespace fg::events
