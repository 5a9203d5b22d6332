// SPDX-License-Identifier: Apache-2.0
// Internal to fg::api: what the handlers share besides ApiContext — pools of inference sessions
// (a Worker is not thread-safe and costly to create, so handlers borrow one per call), the
// stream specs, and the broadcaster thread that feeds SSE heartbeats and MJPEG frames.
#pragma once

#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "fg/api/api.h"
#include "fg/base/status.h"
#include "fg/vision/engine.h"

namespace fg::api {

/// Objects that are expensive to make and used by one thread at a time. Thread-safe.
/// At most as many exist as calls ever ran at once (bounded by the server's compute pool).
template <typename T>
class Pool {
  public:
    using Make = std::function<Result<std::unique_ptr<T>>()>;
    explicit Pool(Make make) : make_(std::move(make)) {}

    class Lease {
      public:
        Lease(Pool* pool, std::unique_ptr<T> item) : pool_(pool), item_(std::move(item)) {}
        Lease(Lease&&) = default;
        ~Lease() {
            if (item_) pool_->Return(std::move(item_));
        }
        T* operator->() { return item_.get(); }
        T& operator*() { return *item_; }

      private:
        Pool* pool_;
        std::unique_ptr<T> item_;
    };

    Result<Lease> Acquire() {
        {
            std::lock_guard lock(mu_);
            if (!free_.empty()) {
                std::unique_ptr<T> item = std::move(free_.back());
                free_.pop_back();
                return Lease(this, std::move(item));
            }
        }
        FG_ASSIGN_OR_RETURN(std::unique_ptr<T> item, make_());
        return Lease(this, std::move(item));
    }

  private:
    void Return(std::unique_ptr<T> item) {
        std::lock_guard lock(mu_);
        free_.push_back(std::move(item));
    }
    Make make_;
    std::mutex mu_;
    std::vector<std::unique_ptr<T>> free_;
};

/// One thread for every long-lived response: SSE heartbeats (comment lines) and MJPEG frames at
/// ApiOptions::mjpeg_fps. Clients whose writer is closed or full are dropped.
/// Thread-safety: everything may be called from any thread.
class Broadcaster {
  public:
    Broadcaster(std::shared_ptr<EventHub> hub, std::shared_ptr<LiveView> live, const ApiOptions& options);
    ~Broadcaster();
    void Stop();
    /// False when the limit of SSE clients is reached.
    bool AddSse(std::shared_ptr<server::StreamWriter> writer, std::uint64_t subscription);
    bool AddMjpeg(std::shared_ptr<server::StreamWriter> writer, std::string stream_id);
    std::size_t sse_clients() const;
    std::size_t mjpeg_clients() const;

  private:
    struct Sse {
        std::shared_ptr<server::StreamWriter> writer;
        std::uint64_t subscription;
    };
    struct Mjpeg {
        std::shared_ptr<server::StreamWriter> writer;
        std::string stream_id;
        std::uint64_t sent_version = 0;
    };
    void Run();

    std::shared_ptr<EventHub> hub_;
    std::shared_ptr<LiveView> live_;
    ApiOptions options_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    bool stop_ = false;
    std::vector<Sse> sse_;
    std::vector<Mjpeg> mjpeg_;
    std::thread thread_;
};

struct ApiRuntime {
    explicit ApiRuntime(ApiContext& ctx);
    Pool<vision::Worker> workers;
    Pool<vision::LivenessChecker> liveness;
    Pool<vision::AttributeEstimator> attributes;
    std::mutex streams_mu;  // serialises stream changes and guards specs
    std::map<std::string, nlohmann::json> specs;
    Broadcaster broadcaster;
};

/// The MJPEG part boundary.
inline constexpr const char* kMjpegBoundary = "fgframe";

}  // namespace fg::api
