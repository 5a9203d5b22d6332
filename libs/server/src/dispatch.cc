// SPDX-License-Identifier: Apache-2.0
// Everything between a parsed request and its handler: routing (404/405), CORS preflight,
// authentication (401/403), per-key rate limits (429); plus the compute pool and log limiter.
#include <algorithm>
#include <cmath>
#include <exception>

#include <spdlog/spdlog.h>

#include "internal.h"

namespace fg::server::detail {

ComputePool::ComputePool(int threads, int queue) : queue_limit_(static_cast<std::size_t>(std::max(queue, 0))) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Loop(); });
}

ComputePool::~ComputePool() { Stop(); }

bool ComputePool::TrySubmit(std::function<void()> job) {
    std::lock_guard lock(mu_);
    if (stop_) return false;
    // Jobs not yet taken by an idle thread count against the queue.
    const std::size_t free_threads = static_cast<std::size_t>(idle_);
    if (jobs_.size() >= queue_limit_ + free_threads) return false;
    jobs_.push_back(std::move(job));
    cv_.notify_one();
    return true;
}

std::size_t ComputePool::waiting() const {
    std::lock_guard lock(mu_);
    return jobs_.size();
}

void ComputePool::Stop() {
    {
        std::lock_guard lock(mu_);
        if (stop_ && threads_.empty()) return;
        stop_ = true;
        jobs_.clear();
    }
    cv_.notify_all();
    for (auto& t : threads_) {
        if (t.joinable()) t.join();
    }
    threads_.clear();
}

void ComputePool::Loop() {
    std::unique_lock lock(mu_);
    for (;;) {
        ++idle_;
        cv_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        --idle_;
        if (stop_) return;
        auto job = std::move(jobs_.front());
        jobs_.pop_front();
        lock.unlock();
        const auto start = std::chrono::steady_clock::now();
        job();  // jobs catch their own exceptions (RunHandler)
        job = nullptr;
        busy_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
        lock.lock();
    }
}

bool RateLimiter::Allow(const std::string& key, double* retry_after_seconds) {
    if (rate_ <= 0) return true;
    const auto now = std::chrono::steady_clock::now();
    const double burst = std::max(1.0, 2.0 * rate_);
    std::lock_guard lock(mu_);
    auto [it, inserted] = buckets_.try_emplace(key, Bucket{burst, now});
    Bucket& b = it->second;
    b.tokens = std::min(burst, b.tokens + std::chrono::duration<double>(now - b.last).count() * rate_);
    b.last = now;
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return true;
    }
    *retry_after_seconds = (1.0 - b.tokens) / rate_;
    return false;
}

void LogLimiter::Warn(const std::string& line) {
    long suppressed = 0;
    {
        std::lock_guard lock(mu_);
        const auto now = std::chrono::steady_clock::now();
        if (now - window_ >= std::chrono::seconds(1)) {
            window_ = now;
            in_window_ = 0;
        }
        if (++in_window_ > per_second_) {
            ++suppressed_;
            return;
        }
        std::swap(suppressed, suppressed_);
    }
    if (suppressed > 0) {
        spdlog::warn("http: {} ({} similar lines suppressed)", line, suppressed);
    } else {
        spdlog::warn("http: {}", line);
    }
}

void LogRequestError(ServerState& state, const Request* request, const std::string& remote, int status,
                     const std::string& reason) {
    std::string line = std::to_string(status) + " " + reason + " from " + remote;
    if (request) line += " (" + request->method + " " + request->path.substr(0, 200) + ")";
    state.log.Warn(line);
}

namespace {
std::string Join(const std::vector<std::string>& items) {
    std::string out;
    for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
    return out;
}

// The CORS headers for this request's Origin, or none when CORS is off or the origin unknown.
std::vector<std::pair<std::string, std::string>> CorsHeaders(const ServerConfig& config, const Request& request) {
    const std::string origin = request.Header("Origin");
    if (origin.empty() || config.cors_origins.empty()) return {};
    const bool any = std::find(config.cors_origins.begin(), config.cors_origins.end(), "*") != config.cors_origins.end();
    if (!any && std::find(config.cors_origins.begin(), config.cors_origins.end(), origin) == config.cors_origins.end()) {
        return {};
    }
    return {{"Access-Control-Allow-Origin", origin},
            {"Vary", "Origin"},
            {"Access-Control-Expose-Headers", "Retry-After, Content-Type"}};
}

Response WithRetryAfter(Response r, double seconds) {
    r.headers.emplace_back("Retry-After", std::to_string(std::max(1, static_cast<int>(std::ceil(seconds)))));
    return r;
}
}  // namespace

Routed Route(ServerState& state, Request& request) {
    Routed out;
    out.extra_headers = CorsHeaders(state.config, request);
    const Router& router = state.router;

    if (request.method == "OPTIONS") {
        const auto methods = router.AllowedMethods(request.path);
        out.route = "preflight";
        if (methods.empty() && request.path != "*") {
            out.response = Response::Error(404, "not_found", "no such path: " + request.path);
            return out;
        }
        Response r;
        r.status = 204;
        r.content_type.clear();
        r.headers.emplace_back("Allow", Join(methods) + (methods.empty() ? "OPTIONS" : ", OPTIONS"));
        if (!out.extra_headers.empty() && !request.Header("Access-Control-Request-Method").empty()) {
            r.headers.emplace_back("Access-Control-Allow-Methods", Join(methods));
            r.headers.emplace_back("Access-Control-Allow-Headers",
                                   "Authorization, X-API-Key, Content-Type, Last-Event-ID");
            r.headers.emplace_back("Access-Control-Max-Age", "600");
        }
        out.response = std::move(r);
        return out;
    }

    auto match = router.Find(request.method, request.path);
    if (!match.handler) {
        out.route = "unmatched";
        if (match.path_known) {
            Response r = Response::Error(405, "method_not_allowed", request.method + " is not allowed on " + request.path);
            r.headers.emplace_back("Allow", Join(router.AllowedMethods(request.path)));
            out.response = std::move(r);
        } else {
            out.response = Response::Error(404, "not_found", "no such path: " + request.path);
        }
        return out;
    }
    out.route = match.options->name.empty() ? match.pattern : match.options->name;
    request.params = std::move(match.params);
    const std::string& scope = match.options->scope;

    if (state.auth) {
        auto principal = state.auth(request);
        if (!principal.ok()) {
            if (!scope.empty()) {
                const StatusCode code = principal.status().code();
                const std::string& message = principal.status().message();
                if (code == StatusCode::kPermissionDenied) {
                    out.response = Response::Error(403, "forbidden", message);
                } else if (code == StatusCode::kUnavailable || code == StatusCode::kInternal) {
                    // The key store failed, not the caller.
                    out.response = WithRetryAfter(Response::Error(503, "unavailable", message), 1);
                } else {
                    Response r = Response::Error(401, "unauthorized", message);
                    r.headers.emplace_back("WWW-Authenticate", "Bearer");
                    out.response = std::move(r);
                }
                return out;
            }
        } else {
            request.principal = std::move(*principal);
        }
        if (!scope.empty()) {
            if (request.principal.key_id.empty()) {
                Response r = Response::Error(401, "unauthorized",
                                             "an API key is required (Authorization: Bearer <key> or X-API-Key)");
                r.headers.emplace_back("WWW-Authenticate", "Bearer");
                out.response = std::move(r);
                return out;
            }
            if (!request.principal.Has(scope)) {
                out.response = Response::Error(403, "forbidden", "this key lacks the scope '" + scope + "'");
                return out;
            }
        }
    }
    if (!request.principal.key_id.empty()) {
        double retry = 0;
        if (!state.limiter.Allow(request.principal.key_id, &retry)) {
            out.response = WithRetryAfter(Response::Error(429, "rate_limited", "too many requests for this key"), retry);
            return out;
        }
    }
    out.handler = match.handler;
    // A compute route may answer cheap requests inline (RouteOptions::inline_if).
    out.compute = match.options->compute && !(match.options->inline_if && match.options->inline_if(request));
    return out;
}

Response RunHandler(ServerState& state, const Handler& handler, Request& request, bool* logged) {
    *logged = false;
    try {
        return handler(request);
    } catch (const std::exception& e) {
        LogRequestError(state, &request, request.remote, 500, std::string("handler threw: ") + e.what());
    } catch (...) {
        LogRequestError(state, &request, request.remote, 500, "handler threw a non-exception");
    }
    *logged = true;
    return Response::Error(500, "internal", "internal error");
}

}  // namespace fg::server::detail
