// SPDX-License-Identifier: Apache-2.0
// Calls handlers in process through Router::Find, as the server would (no sockets).
#pragma once

#include <map>
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
    return (*m.handler)(r);
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
