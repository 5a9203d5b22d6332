// SPDX-License-Identifier: Apache-2.0
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "fg/events/sink.h"

namespace fg::events {

Status JsonLinesSinkConfig::Validate() const { return Status::Ok(); }

namespace {

class JsonLinesSink : public Sink {
  public:
    JsonLinesSink(std::string path, std::FILE* file, bool owned)
        : path_(std::move(path)), file_(file), owned_(owned) {}
    ~JsonLinesSink() override {
        if (owned_) {
            std::fclose(file_);
        }
    }

    Status Publish(const Event& event) override {
        published_.fetch_add(1, std::memory_order_relaxed);
        std::string line = ToJsonLine(event);
        line += '\n';
        std::lock_guard lock(mu_);
        // One fwrite per line under the lock: lines from several streams never interleave.
        const bool ok = std::fwrite(line.data(), 1, line.size(), file_) == line.size() &&
                        std::fflush(file_) == 0;
        if (!ok) {
            const int err = errno;
            failed_.fetch_add(1, std::memory_order_relaxed);
            dropped_.fetch_add(1, std::memory_order_relaxed);
            std::clearerr(file_);
            return Unavailable(name() + ": write failed: " + std::strerror(err));
        }
        delivered_.fetch_add(1, std::memory_order_relaxed);
        return Status::Ok();
    }

    Status Flush(Deadline /*deadline*/) override {
        std::lock_guard lock(mu_);
        if (std::fflush(file_) != 0) {
            return Unavailable(name() + ": flush failed: " + std::strerror(errno));
        }
        return Status::Ok();
    }

    SinkStats stats() const override {
        return {published_.load(), delivered_.load(), dropped_.load(), failed_.load()};
    }

    std::string name() const override { return "jsonl:" + path_; }

  private:
    const std::string path_;
    std::mutex mu_;
    std::FILE* const file_;
    const bool owned_;
    std::atomic<std::uint64_t> published_{0};
    std::atomic<std::uint64_t> delivered_{0};
    std::atomic<std::uint64_t> dropped_{0};
    std::atomic<std::uint64_t> failed_{0};
};

}  // namespace

Result<std::unique_ptr<Sink>> CreateJsonLinesSink(const JsonLinesSinkConfig& config) {
    FG_RETURN_IF_ERROR(config.Validate());
    if (config.path.empty() || config.path == "-") {
        return std::unique_ptr<Sink>(std::make_unique<JsonLinesSink>("stdout", stdout, false));
    }
    std::FILE* f = std::fopen(config.path.c_str(), "a");
    if (f == nullptr) {
        return Unavailable("jsonl sink: cannot open " + config.path + " for appending: " +
                           std::strerror(errno));
    }
    return std::unique_ptr<Sink>(std::make_unique<JsonLinesSink>(config.path, f, true));
}

}  // namespace fg::events
