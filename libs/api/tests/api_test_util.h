// SPDX-License-Identifier: Apache-2.0
// Calls handlers in process through Router::Find, as the server would (no sockets).
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <optional>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

#include "fg/server/http.h"

namespace fg::api::testing {

struct Call {
    std::string method = "GET";
    std::string path;
    std::string body;
    std::string content_type;
    std::map<std::string, std::string> query;
    std::vector<std::pair<std::string, std::string>> headers;
};

/// Receives a deferred response (Response::Deferred) for Invoke.
class CapturingResponder : public server::Responder {
  public:
    void Send(server::Response r) override {
        std::lock_guard lock(mu_);
        if (!got_) got_ = std::move(r);
        cv_.notify_all();
    }
    server::Response Wait() {
        std::unique_lock lock(mu_);
        if (!cv_.wait_for(lock, std::chrono::seconds(20), [&] { return got_.has_value(); })) {
            return server::Response::Error(599, "test_timeout", "the deferred response never came");
        }
        return *got_;
    }

  private:
    std::mutex mu_;
    std::condition_variable cv_;
    std::optional<server::Response> got_;
};

inline server::Response Invoke(const server::Router& router, const Call& c) {
    const server::Router::Match m = router.Find(c.method, c.path);
    if (m.handler == nullptr) return server::Response::Error(m.path_known ? 405 : 404, "no_route", c.path);
    server::Request r;
    r.method = c.method;
    r.path = c.path;
    r.target = c.path;
    r.query = c.query;
    r.params = m.params;
    r.body = c.body;
    r.headers = c.headers;
    if (!c.content_type.empty()) r.headers.emplace_back("Content-Type", c.content_type);
    r.principal.key_id = "test";
    r.principal.scopes = {"admin"};
    server::Response out = (*m.handler)(r);
    if (!out.defer) return out;
    // As the server does: hand the handler's deferred part a responder and wait for its answer.
    auto responder = std::make_shared<CapturingResponder>();
    auto start = std::move(out.defer);
    start(responder);
    return responder->Wait();
}

inline nlohmann::json Json(const server::Response& r) {
    return nlohmann::json::parse(r.body, nullptr, false);
}
inline std::string ErrorCode(const server::Response& r) {
    const auto j = Json(r);
    return j.is_object() && j.contains("error") ? j["error"].value("code", "") : "";
}

/// Collects what a streaming response writes.
class FakeWriter : public server::StreamWriter {
  public:
    bool Write(std::string bytes) override {
        std::lock_guard lock(mu);
        if (!open) return false;
        data += bytes;
        return true;
    }
    bool Open() const override { return open; }
    void Close() override { open = false; }
    std::string Data() {
        std::lock_guard lock(mu);
        return data;
    }
    std::mutex mu;
    std::string data;
    std::atomic<bool> open{true};
};

}  // namespace fg::api::testing
