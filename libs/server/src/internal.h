// SPDX-License-Identifier: Apache-2.0
// Server internals shared by server.cc, dispatch.cc and session.h: the compute pool, the per-key
// rate limiter, the log limiter and the state every connection shares.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "fg/server/http.h"

namespace fg::server::detail {

/// A fixed pool of threads with a bounded wait queue. Thread-safe.
class ComputePool {
  public:
    ComputePool(int threads, int queue);
    ~ComputePool();
    /// Runs `job` on a pool thread unless every thread is busy and `queue` jobs already wait.
    bool TrySubmit(std::function<void()> job);
    std::size_t waiting() const;
    /// Seconds the pool's threads spent running jobs since start (utilisation = its rate / threads).
    double busy_seconds() const { return static_cast<double>(busy_ns_.load()) / 1e9; }
    /// Finishes running jobs, drops waiting ones, joins. Idempotent.
    void Stop();

  private:
    void Loop();
    const std::size_t queue_limit_;
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    int idle_ = 0;
    bool stop_ = false;
    std::atomic<std::int64_t> busy_ns_{0};
    std::vector<std::thread> threads_;
};

/// Token bucket per API key: `rate` per second, burst of 2 s worth. Thread-safe.
class RateLimiter {
  public:
    explicit RateLimiter(double rate) : rate_(rate) {}
    /// True when the key may proceed; else the seconds until a token is back.
    bool Allow(const std::string& key, double* retry_after_seconds);

  private:
    struct Bucket {
        double tokens;
        std::chrono::steady_clock::time_point last;
    };
    const double rate_;
    std::mutex mu_;
    std::unordered_map<std::string, Bucket> buckets_;
};

/// At most `per_second` log lines a second; the rest are counted and reported with the next
/// line, so a flood of bad requests cannot fill the disk. Thread-safe.
class LogLimiter {
  public:
    explicit LogLimiter(int per_second) : per_second_(per_second) {}
    /// Logs the line at warn level (or counts it as suppressed).
    void Warn(const std::string& line);

  private:
    const int per_second_;
    std::mutex mu_;
    std::chrono::steady_clock::time_point window_{};
    int in_window_ = 0;
    long suppressed_ = 0;
};

/// What a connection exposes to Server::Stop.
class SessionBase {
  public:
    virtual ~SessionBase() = default;
    /// From any thread: ends the stream writer (if any) and closes the connection.
    virtual void RequestStop() = 0;
};

/// Shared by the server and every connection (connections keep it alive past Stop()).
struct ServerState {
    ServerState(ServerConfig c, Router r, Authenticator a, RequestObserver o)
        : config(std::move(c)), router(std::move(r)), auth(std::move(a)), observer(std::move(o)),
          pool(config.compute_threads, config.compute_queue), limiter(config.rate_limit_per_key), log(20) {}
    const ServerConfig config;
    const Router router;
    const Authenticator auth;
    const RequestObserver observer;
    ComputePool pool;
    RateLimiter limiter;
    LogLimiter log;
    std::atomic<std::size_t> connections{0};
    std::atomic<bool> stopping{false};
    std::mutex sessions_mu;
    std::map<const SessionBase*, std::weak_ptr<SessionBase>> sessions;
    // Deferred responses post to the IO context from other threads (the audit commit thread):
    // under post_mu, and never once io_gone (Server::Stop sets it before the context dies).
    std::mutex post_mu;
    bool io_gone = false;
};

/// The Responder of a deferred response: `deliver` runs once, with the first Send, or with a
/// 500 when the responder is dropped unsent. Thread-safe.
class DeferredResponder final : public Responder {
  public:
    explicit DeferredResponder(std::function<void(Response)> deliver) : deliver_(std::move(deliver)) {}
    ~DeferredResponder() override {
        if (deliver_) deliver_(Response::Error(500, "internal", "internal error: the response was never sent"));
    }
    void Send(Response r) override {
        std::function<void(Response)> d;
        {
            std::lock_guard lock(mu_);
            d = std::move(deliver_);
            deliver_ = nullptr;
        }
        if (d) d(std::move(r));
    }

  private:
    std::mutex mu_;
    std::function<void(Response)> deliver_;
};

/// What to do with a parsed request.
struct Routed {
    std::optional<Response> response;  ///< answered already (errors, preflight)
    const Handler* handler = nullptr;
    bool compute = false;
    std::string route;                 ///< label for the observer
    std::vector<std::pair<std::string, std::string>> extra_headers;  ///< CORS, added to any answer
};

/// Routing, CORS, authentication, scopes and rate limits: everything before the handler.
Routed Route(ServerState& state, Request& request);
/// Runs the handler; an exception becomes a 500 JSON error, logged here (*logged = true).
Response RunHandler(ServerState& state, const Handler& handler, Request& request, bool* logged);
/// Logs a request error once (rate-limited): method, path, status, reason; never the body.
void LogRequestError(ServerState& state, const Request* request, const std::string& remote, int status,
                     const std::string& reason);

}  // namespace fg::server::detail
